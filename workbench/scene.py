"""Scene files: one panel's parameters as versioned JSON, saved atomically.

Format: ``{"format": "dl-workbench-scene", "version": 1, "panel": NAME, "params": {...}}``.
Loading checks everything before anything is applied and reports every problem at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from workbench.i18n import tr

FORMAT = "dl-workbench-scene"
VERSION = 1


class SceneError(ValueError):
    """The scene file cannot be used; the message says why."""


def scene_dict(panel: str, values: Mapping[str, Any]) -> dict:
    return {"format": FORMAT, "version": VERSION, "panel": panel, "params": dict(values)}


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename, so a
    crash never leaves half a file. Raises OSError with the path in its message."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_scene(path: str | os.PathLike, panel: str, values: Mapping[str, Any]) -> None:
    text = json.dumps(scene_dict(panel, values), indent=2, ensure_ascii=False, allow_nan=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


def read_scene(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """(panel name, raw params) from a scene file; values are validated by the panel's ParamSet."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SceneError(tr("cannot read scene {path}: {error}").format(path=path, error=error)) from None
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
            version=version, supported=VERSION))
    if not isinstance(data.get("panel"), str):
        problems.append(tr("panel must be a panel name"))
    if not isinstance(data.get("params"), dict):
        problems.append(tr("params must be an object of name: value"))
    unknown = sorted(set(data) - {"format", "version", "panel", "params"})
    if unknown:
        problems.append(tr("unknown keys: {keys}").format(keys=", ".join(unknown)))
    if problems:
        raise SceneError(tr("scene {path}: {problems}").format(path=path, problems="; ".join(problems)))
    return data["panel"], data["params"]


def _refuse_constant(name: str):
    raise ValueError(tr("{name} is not allowed in a scene").format(name=name))
