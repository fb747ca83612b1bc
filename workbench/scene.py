"""Scene files: one panel's parameters as versioned JSON, saved atomically.

Format: ``{"format": "dl-workbench-scene", "version": 1, "panel": NAME, "params": {...}}``.
Loading checks everything before anything is applied and reports every problem at once.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Mapping

from workbench.i18n import tr
from workbench.params import brief

FORMAT = "dl-workbench-scene"
VERSION = 1
MAX_BYTES = 1_000_000  # a scene is a few hundred bytes; anything this large is not one


class SceneError(ValueError):
    """The scene file cannot be used; the message says why."""


def scene_dict(panel: str, values: Mapping[str, Any]) -> dict:
    return {"format": FORMAT, "version": VERSION, "panel": panel, "params": dict(values)}


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename, so a
    crash never leaves half a file (see :func:`write_files_atomic`)."""
    write_files_atomic({path: data})


def write_files_atomic(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write each ``path: data`` via a temporary file in the path's folder and a rename. Every
    temporary file is written before any is renamed, so when one cannot be written no target is
    touched. A new file gets the mode the umask gives (``0o666 & ~umask``), a replaced one keeps
    its mode; a target that is a folder, or read-only, is refused. Raises OSError naming the path."""
    staged: list[tuple[str, Path]] = []
    path = None
    try:
        for path, data in files.items():
            path = Path(path)
            mode = _mode_for(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)  # mkstemp makes 0600
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as error:  # named after the target, not a temporary file
        raise OSError(error.errno, error.strerror, str(path)) from None
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)  # already renamed, unless something failed


def _mode_for(path: Path) -> int:
    """The mode ``path`` is written with: its own when it exists, else what the umask gives.
    A folder or a read-only file (no write bit for anyone, or not writable by this user) is refused."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return 0o666 & ~_umask()
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not mode & 0o222 or not os.access(path, os.W_OK):  # root may write anything: ask the mode too
        raise PermissionError(errno.EACCES, tr("is read-only"))
    return stat.S_IMODE(mode)


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_scene(path: str | os.PathLike, panel: str, values: Mapping[str, Any]) -> None:
    text = json.dumps(scene_dict(panel, values), indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


def read_scene(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """(panel name, raw params) from a scene file; values are validated by the panel's ParamSet.
    Only a regular file of at most MAX_BYTES is read (not a FIFO, a device or a folder)."""
    try:
        text = _read_regular(path, MAX_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SceneError(tr("cannot read scene {path}: {error}").format(
            path=path, error=getattr(error, "strerror", None) or error)) from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise SceneError(tr("scene {path} is not valid JSON: {error}").format(path=path, error=error)) from None
    problems = []
    if not isinstance(data, dict):
        raise SceneError(tr("scene {path}: expected a JSON object").format(path=path))
    if data.get("format") != FORMAT:
        problems.append(tr("format must be {format!r}").format(format=FORMAT))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append(tr("version must be an integer"))
    elif version > VERSION:
        problems.append(tr("version {version} is newer than this workbench reads ({supported}); update the workbench").format(
            version=brief(version), supported=VERSION))
    elif version < 1:
        problems.append(tr("version {version} is not a scene version (1 to {supported})").format(
            version=brief(version), supported=VERSION))
    if not isinstance(data.get("panel"), str):
        problems.append(tr("panel must be a panel name"))
    if not isinstance(data.get("params"), dict):
        problems.append(tr("params must be an object of name: value"))
    unknown = sorted(set(data) - {"format", "version", "panel", "params"})
    if unknown:
        problems.append(tr("unknown keys: {keys}").format(keys=", ".join(brief(key) for key in unknown)))
    if problems:
        raise SceneError(tr("scene {path}: {problems}").format(path=path, problems="; ".join(problems)))
    return data["panel"], data["params"]


def _read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file ``path``; OSError when it is something else or holds more
    than ``limit`` bytes. Opened non-blocking, so a FIFO cannot hang the open."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, tr("not a regular file"), str(path))
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, limit + 1 - size)):  # the file may grow meanwhile
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, tr("larger than {limit} bytes").format(limit=limit), str(path))
    return b"".join(chunks)


def _refuse_constant(name: str):
    raise ValueError(tr("{name} is not allowed in a scene").format(name=name))
