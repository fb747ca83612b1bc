"""Animated exports: a panel's figure rendered off screen frame by frame and encoded as a GIF, an
MP4 or an animated WebP.

What moves: for a panel that plays (the optimizers' race, the training run, the Transformer
panel's decoding) the played steps; for every panel, one parameter swept from one value to
another (``name=FROM:TO``), log-spaced where the parameter's slider is (``name=FROM:TO:linear`` or
``:log`` says otherwise). The caption's first line names what changes and its value.

Encoding uses maintained libraries: Pillow for GIF (one palette for all frames, taken from frames
across the animation, so a heatmap's colours mean the same in every frame; each frame stores only
the rectangle that changed), and the ffmpeg that the ``imageio-ffmpeg`` wheel ships for MP4 (H.264,
yuv420p with its colour matrix tagged, "faststart": browsers and slide tools play it) and WebP (libwebp). The file is
written all at once (:func:`workbench.scene.write_atomic`): a failed or cancelled export leaves
nothing behind.

The sweep and the checks are Qt-free; rendering imports Qt (``widgets.render``) when it starts.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from workbench.i18n import tr
from workbench.params import BRIEF, ParamError, ParamSet, brief

FORMATS = (".gif", ".mp4", ".webp")
DEFAULT_FPS = 20  # a GIF stores delays in 1/100 s: 20 fps is exact
DEFAULT_SECONDS = 4.0
MAX_FPS = 60
GIF_MAX_FPS = 50  # browsers slow GIF frames shorter than 20 ms down to 100 ms
MAX_SECONDS = 120.0
MAX_FRAMES = 3600
PALETTE_PROBES = 5  # frames across the animation the GIF palette is taken from
EXACT_COLOURS = 96  # of 256: the most frequent colours kept exactly (background, text, lines)


class AnimationError(ValueError):
    """Input an animation cannot be made from; the message (one line) names the option."""


class Cancelled(Exception):
    """The export was cancelled (the progress callback returned False); nothing was written."""


# ---- what moves -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sweep:
    """One parameter from ``start`` to ``stop`` (either way), log-spaced when ``log``."""

    name: str
    start: float
    stop: float
    log: bool
    kind: str  # the parameter's kind: "float", "int" or "text" (a number written as text)

    def values(self, n: int) -> list:
        """``n`` values from start to stop, ends included (integers rounded; repeats are held frames)."""
        if n == 1:
            points = np.array([self.start])
        elif self.log:
            points = np.geomspace(self.start, self.stop, n)
        else:
            points = np.linspace(self.start, self.stop, n)
        if self.kind == "int":
            points[-1] = self.stop
            return [int(round(v)) for v in points]
        # four significant digits between the ends (a caption reads 0.3162, not 0.316228), within them
        points = np.clip([float(f"{v:.4g}") for v in points], min(self.start, self.stop), max(self.start, self.stop))
        points[0], points[-1] = self.start, self.stop  # exactly
        if self.kind == "text":
            return [f"{v:.6g}" for v in points]
        return [float(v) for v in points]


def parse_sweep(text: str, params: ParamSet) -> Sweep:
    """``name=FROM:TO`` (optionally ``:log`` or ``:linear``) checked against the declaration:
    AnimationError naming the parameter when it is unknown, not a number, FROM or TO is not
    allowed, or FROM = TO."""
    name, sep, span = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise AnimationError(tr("--sweep {text}: expected NAME=FROM:TO").format(text=brief(text)))
    numeric = [p.name for p in params if _sweepable(p)]
    param = params.params.get(name)
    if param is None:
        raise AnimationError(tr("--sweep {name}: unknown parameter; parameters that can be swept: {known}").format(
            name=name if len(name) <= BRIEF else brief(name), known=", ".join(numeric)))
    if not _sweepable(param):
        raise AnimationError(tr("--sweep {name}: {label} is not a number ({allowed}); parameters that can be swept: "
                                "{known}").format(name=name, label=param.label(), allowed=param.allowed(),
                                                  known=", ".join(numeric)))
    parts = span.split(":")
    if len(parts) not in (2, 3) or parts[2:] not in ([], ["log"], ["linear"]):
        raise AnimationError(tr("--sweep {name}={span}: expected FROM:TO, FROM:TO:log or FROM:TO:linear").format(
            name=name, span=brief(span)))
    ends = []
    for raw in parts[:2]:
        try:
            ends.append(float(param.parse(raw.strip())))
        except (ParamError, ValueError):
            raise AnimationError(tr("--sweep {name}: {raw} is not allowed; {label} ({name}) allows {allowed}").format(
                name=name, raw=brief(raw.strip()), label=param.label(), allowed=param.allowed())) from None
    start, stop = ends
    if start == stop:
        raise AnimationError(tr("--sweep {name}: FROM and TO are both {value}; give two different values").format(
            name=name, value=param.format(param.parse(parts[0].strip()))))
    log = param.log if len(parts) == 2 else parts[2] == "log"
    if log and start * stop <= 0:
        raise AnimationError(tr("--sweep {name}: a log sweep needs FROM and TO of one sign and not 0; "
                                "add :linear").format(name=name))
    kind = param.kind
    if kind == "int" and abs(stop - start) < 1:
        raise AnimationError(tr("--sweep {name}: FROM and TO are both {value}; give two different values").format(
            name=name, value=int(start)))
    return Sweep(name, start, stop, log, kind)


def _sweepable(param) -> bool:
    """Numbers, and text that holds a number (the floats panel's value)."""
    if param.kind in ("float", "int"):
        return True
    if param.kind != "text":
        return False
    try:
        float(param.default)
    except (TypeError, ValueError):
        return False
    return True


def frame_count(fps: int, seconds: float, suffix: str = ".mp4") -> int:
    """Frames of a ``seconds`` long clip at ``fps``; AnimationError naming --fps or --seconds."""
    most = GIF_MAX_FPS if suffix == ".gif" else MAX_FPS
    if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= most:
        raise AnimationError(tr("--fps {fps}: expected a whole number from 1 to {most}{why}").format(
            fps=brief(fps), most=most, why=tr(" (GIF players slow shorter frames down)") if suffix == ".gif" else ""))
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise AnimationError(tr("--seconds {seconds}: expected a number above 0 and at most {most}").format(
            seconds=brief(seconds), most=f"{MAX_SECONDS:g}"))
    n = max(int(round(fps * seconds)), 2)
    if n > MAX_FRAMES:
        raise AnimationError(tr("--fps {fps} --seconds {seconds}: {n} frames; at most {most}").format(
            fps=fps, seconds=f"{seconds:g}", n=n, most=MAX_FRAMES))
    return n


def check_target(path: str | os.PathLike) -> str:
    """The format (".gif", ".mp4" or ".webp") of ``path``, after checking it can be written (the
    folder exists and is writable; an existing file is neither a folder nor read-only), before a
    frame is rendered. AnimationError for a wrong suffix, OSError naming the path otherwise."""
    from workbench.scene import _mode_for

    suffix = os.path.splitext(str(path))[1].lower()
    if suffix not in FORMATS:
        raise AnimationError(tr("-o {path}: an animation's file name must end in .gif, .mp4 or .webp").format(path=path))
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        _mode_for(target)
        if not folder.is_dir():
            raise FileNotFoundError(2, tr("no such folder"))
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, tr("the folder is not writable"))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(path)) from None
    return suffix


def sweep_frames(sweep: Sweep, params: ParamSet, base: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """The values of each frame of a sweep, all validated before anything is rendered (a value the
    panel refuses, e.g. a d_model its heads do not divide, is an AnimationError naming it)."""
    frames, seen = [], {}
    for value in sweep.values(n):
        if value not in seen:
            try:
                seen[value] = params.update(base, {sweep.name: value})
            except ParamError as error:
                raise AnimationError(tr("--sweep {name}: at {name} = {value}: {error}").format(
                    name=sweep.name, value=value, error=error)) from None
        frames.append(seen[value])
    return frames


def positions(first: int, last: int, n: int) -> list[int]:
    """``n`` steps from ``first`` to ``last``: each step held equally long when there are no more
    steps than frames, else evenly spread with both ends shown."""
    count = last - first + 1
    if count <= n:
        return [first + (i * count) // n for i in range(n)]
    return [int(round(v)) for v in np.linspace(first, last, n)]


# ---- frames -------------------------------------------------------------------------------------
def _apply(panel, changes: Mapping[str, Any]) -> None:
    """Set values through the panel's own path (controls, hooks) and compute synchronously, once."""
    panel.schedule = lambda: None  # set_values would start a compute on the worker thread too
    try:
        accepted = panel.set_values(changes)
    finally:
        del panel.schedule
    if not accepted:
        raise AnimationError(tr("the panel refused {changes}").format(changes=brief(dict(changes))))
    panel.compute_now()


class _Sweeping:
    def __init__(self, panel, sweep: Sweep, n: int):
        self.param = panel.PARAMS[sweep.name]
        self.frames = sweep_frames(sweep, panel.PARAMS, panel.values, n)
        self.shown: dict | None = None

    def show(self, panel, i: int) -> str:
        values = self.frames[i]
        if values != self.shown:
            _apply(panel, {self.param.name: values[self.param.name]})
            self.shown = values
        return f"{self.param.label()} = {self.param.format(values[self.param.name])}"


class _Race:
    """The optimizers' race: every path up to the step, as Play shows it."""

    def __init__(self, panel, n: int):
        self.total = max([len(t.points) - 1 for t in panel.result.traces.values()] + [0])
        self.steps = positions(0, self.total, n)

    def show(self, panel, i: int) -> str:
        panel.show_step(self.steps[i])
        return tr("Step {step} of {total}").format(step=self.steps[i], total=self.total)


class _Training:
    """The training run from epoch 0 to the epoch limit (or what an export trains), as Play shows it."""

    def __init__(self, panel, n: int):
        from widgets.training import EXPORT_EPOCHS

        self.total = panel.values["epochs"] or EXPORT_EPOCHS
        self.epochs = positions(0, self.total, n)

    def show(self, panel, i: int) -> str:
        target = self.epochs[i]
        if panel.run is None or panel.run.epoch > target:
            panel.rewind()
        if target > panel.run.epoch and not panel.run.finished:
            panel.step(epochs=target - panel.run.epoch)
        return tr("Epoch {epoch} of {total}").format(epoch=panel.run.epoch, total=self.total)


class _Decoding:
    """The Transformer panel's decoding page, one generated token after another."""

    def __init__(self, panel, n: int):
        self.total = panel.values["tokens"]
        self.steps = positions(1, self.total, n)
        self.shown = None

    def show(self, panel, i: int) -> str:
        step = self.steps[i]
        if step != self.shown:
            _apply(panel, {"view": "decoding", "step": step})
            self.shown = step
        return tr("Generated tokens: {step} of {total}").format(step=step, total=self.total)


PLAYS = {"optimizers": _Race, "training": _Training, "transformer": _Decoding}


def plays(panel_name: str) -> bool:
    """Whether the panel has played steps to animate without a sweep."""
    return panel_name in PLAYS


class Frames:
    """The frames of one animation of ``panel`` (shown off screen, its first result computed),
    each a (height, width, 4) uint8 array of B, G, R, A (A = 255), all of one size: the figure and
    a caption whose first line names what changes. Random access: ``frame(i)`` for 0 <= i < n."""

    def __init__(self, panel, style, n: int, sweep: Sweep | None = None, scale: int = 1, caption: bool = True):
        from widgets.render import caption_height, check_image_size

        if sweep is not None:
            self.mover = _Sweeping(panel, sweep, n)
        elif panel.NAME in PLAYS:
            self.mover = PLAYS[panel.NAME](panel, n)
        else:
            raise AnimationError(tr("panel {panel} does not play: animate a parameter with --sweep NAME=FROM:TO "
                                    "(see 'workbench list {panel}')").format(panel=panel.NAME))
        self.panel, self.style, self.n, self.scale, self.caption = panel, style, n, scale, caption
        width = panel.figure.width()
        # room for the longest caption: the first frame's, and a value a dozen characters longer
        sample = self._caption(self.mover.show(panel, 0)) + " " + "0" * 12 if caption else ""
        self.height = panel.figure.height() + caption_height(style, sample, width)
        check_image_size(width, self.height, scale)
        self.size = (width * scale, self.height * scale)  # pixels: width, height

    def __len__(self) -> int:
        return self.n

    def _caption(self, line: str) -> str:
        return f"{line}\n{self.panel.caption()}"

    def frame(self, i: int) -> np.ndarray:
        from PySide6.QtWidgets import QApplication

        from widgets.render import render_image

        line = self.mover.show(self.panel, i)
        QApplication.processEvents()  # deferred layout and range updates, as before a paint
        caption = self._caption(line) if self.caption else ""
        image = render_image(self.panel.figure, self.style, self.scale, caption, self.height)
        pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        return pixels[:, : image.width() * 4].reshape(image.height(), image.width(), 4).copy()


# ---- encoding -----------------------------------------------------------------------------------
def gif_palette(frames: list[np.ndarray]) -> np.ndarray:
    """One 256-colour palette (256 x 3 uint8, R G B) for every frame: the EXACT_COLOURS most frequent
    colours of ``frames`` as they are (background, text, lines, series colours), the rest by median
    cut of the other pixels, where heatmaps and gradients dominate."""
    from PIL import Image

    packed = np.concatenate([_packed(f).reshape(-1) for f in frames])
    colours, counts = np.unique(packed, return_counts=True)
    if len(colours) <= 256:
        exact, rest = colours, np.empty(0, np.uint32)
    else:
        exact = colours[np.argsort(-counts, kind="stable")[:EXACT_COLOURS]]
        rest = packed[~np.isin(packed, exact)]
    table = [_rgb_of(exact)]
    if len(rest):
        side = int(math.ceil(math.sqrt(len(rest))))
        square = np.empty(side * side, np.uint32)
        square[: len(rest)] = rest
        square[len(rest):] = rest[0]
        cut = Image.fromarray(_rgb_of(square).reshape(side, side, 3)).quantize(256 - len(exact),
                                                                               method=Image.Quantize.MEDIANCUT)
        table.append(np.array(cut.getpalette()[: 3 * (256 - len(exact))], np.uint8).reshape(-1, 3))
    table = np.concatenate(table)
    return np.concatenate([table, np.repeat(table[-1:], 256 - len(table), axis=0)])


def _packed(frame: np.ndarray) -> np.ndarray:
    """0xRRGGBB of each pixel of a B, G, R, A frame (a view of its bytes as little-endian words)."""
    return np.ascontiguousarray(frame).view("<u4")[..., 0] & 0xFFFFFF


def _rgb_of(packed: np.ndarray) -> np.ndarray:
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)


class GifWriter:
    """A looping GIF with one global palette, one GIF frame per frame added: each stores only the
    rectangle that changed since the one before (a frame equal to it stores one pixel). Each colour
    becomes its nearest palette entry, exactly (a palette colour stays itself). Delays are exact on
    average (GIF counts 1/100 s). ``data()`` gives the file's bytes."""

    def __init__(self, size: tuple[int, int], fps: int, palette: np.ndarray):
        self.size, self.fps = size, fps
        self.palette = palette.astype(np.int32)
        self.palette_bytes = palette.astype(np.uint8).tobytes()
        self.lookup = np.full(1 << 24, -1, np.int16)  # 0xRRGGBB -> palette index, filled as colours appear
        self.out = io.BytesIO()
        self.count = 0  # frames added
        self.previous: np.ndarray | None = None

    def indices(self, frame: np.ndarray) -> np.ndarray:
        """Each pixel's palette index."""
        packed = _packed(frame)
        found = self.lookup[packed]
        missing = found < 0
        if missing.any():
            colours = np.unique(packed[missing])
            for chunk in range(0, len(colours), 8192):
                part = colours[chunk: chunk + 8192]
                distance = ((_rgb_of(part).astype(np.int32)[:, None, :] - self.palette[None]) ** 2).sum(axis=2)
                self.lookup[part] = distance.argmin(axis=1)
            found = self.lookup[packed]
        return found.astype(np.uint8)

    def add(self, frame: np.ndarray) -> None:
        from PIL import GifImagePlugin, Image

        indices = self.indices(frame)
        delay = round((self.count + 1) * 100 / self.fps) - round(self.count * 100 / self.fps)  # 1/100 s
        self.count += 1
        if self.previous is None:
            top, bottom, left, right = 0, indices.shape[0], 0, indices.shape[1]
        else:
            rows, columns = np.nonzero(indices != self.previous)
            if len(rows):
                top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
            else:  # unchanged: a frame all the same, so that the GIF has as many frames as the animation
                top, bottom, left, right = 0, 1, 0, 1
        part = np.ascontiguousarray(indices[top:bottom, left:right])
        image = Image.frombytes("P", (part.shape[1], part.shape[0]), part.tobytes())
        image.putpalette(self.palette_bytes)
        if self.previous is None:
            header, _ = GifImagePlugin.getheader(image, info={"loop": 0, "duration": 10 * delay})
            self.out.write(b"".join(header))
        self.out.write(b"".join(GifImagePlugin.getdata(image, (int(left), int(top)), duration=10 * delay, disposal=1)))
        self.previous = indices

    def data(self) -> bytes:
        self.out.write(b";")
        return self.out.getvalue()

    def close(self) -> None:
        self.out.close()


class FfmpegWriter:
    """MP4 (H.264, yuv420p, colours tagged, moov atom first) or animated WebP through the ffmpeg that the
    imageio-ffmpeg wheel ships, streamed frame by frame into a private temporary folder; ``data()``
    gives the finished file's bytes, ``close()`` removes the folder."""

    def __init__(self, suffix: str, size: tuple[int, int], fps: int):
        import imageio_ffmpeg

        width, height = size
        self.pad = (height % 2, width % 2)  # yuv420p needs even sides: a row or column of the edge repeated
        size = (width + self.pad[1], height + self.pad[0])
        self.folder = tempfile.TemporaryDirectory(prefix="workbench-animation-")
        self.path = Path(self.folder.name) / f"animation{suffix}"
        if suffix == ".mp4":
            codec, pix_fmt = "libx264", "yuv420p"
            params = ["-preset", "superfast", "-crf", "20", "-tune", "animation", "-profile:v", "high",
                      # ffmpeg's fast RGB -> YUV conversion uses the BT.601 matrix: the stream says so (players
                      # assume BT.709 for untagged HD video and would shift the colours); sRGB primaries
                      "-vf", "setparams=range=tv:colorspace=smpte170m:color_primaries=bt709:color_trc=bt709",
                      "-movflags", "+faststart"]
        else:
            codec, pix_fmt = "libwebp_anim", "yuv420p"
            params = ["-lossless", "0", "-quality", "90", "-compression_level", "4", "-loop", "0"]
        self.writer = imageio_ffmpeg.write_frames(str(self.path), size, pix_fmt_in="bgra", pix_fmt_out=pix_fmt, fps=fps,
                                                  codec=codec, quality=None, macro_block_size=1,
                                                  ffmpeg_log_level="error", output_params=params)
        self.writer.send(None)  # starts ffmpeg
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        if any(self.pad):
            frame = np.pad(frame, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        self.writer.send(np.ascontiguousarray(frame))
        self.count += 1

    def data(self) -> bytes:
        self.writer.close()  # ffmpeg finishes the file
        self.writer = None
        return self.path.read_bytes()

    def close(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # a cancelled or failed export: the file is dropped anyway
                pass
            self.writer = None
        self.folder.cleanup()


def probe_indices(n: int) -> list[int]:
    """Frames the GIF palette is taken from: PALETTE_PROBES across the animation, ends included."""
    return sorted({round(i * (n - 1) / (PALETTE_PROBES - 1)) for i in range(PALETTE_PROBES)})


def encode(frames: Frames, suffix: str, fps: int, progress: Callable[[int, int], bool] | None = None) -> bytes:
    """Render every frame and encode it; ``progress(done, total)`` after each frame (and the
    palette's frames first, for a GIF) returns False to cancel (Cancelled)."""
    n = len(frames)
    kept: dict[int, np.ndarray] = {}
    extra = probe_indices(n) if suffix == ".gif" else []
    total = n + len(extra)
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None and progress(done, total) is False:
            raise Cancelled()

    if suffix == ".gif":
        for i in extra:
            kept[i] = frames.frame(i)
            step()
        writer = GifWriter(frames.size, fps, gif_palette(list(kept.values())))
    else:
        writer = FfmpegWriter(suffix, frames.size, fps)
    try:
        for i in range(n):
            frame = kept.pop(i, None)
            writer.add(frame if frame is not None else frames.frame(i))
            step()
        return writer.data()
    finally:
        writer.close()


def export_animation(panel_name: str, values: Mapping[str, Any], style, path: str | os.PathLike, *,
                     fps: int = DEFAULT_FPS, seconds: float = DEFAULT_SECONDS, sweep: str | None = None,
                     scale: int = 1, size: tuple[int, int] | None = None, caption: bool = True,
                     progress: Callable[[int, int], bool] | None = None) -> int:
    """Render ``panel_name`` with ``values`` off screen as an animation and write it to ``path``
    (.gif, .mp4 or .webp) all at once; the number of frames. Everything is checked before the first
    frame (AnimationError, OSError naming the path); Cancelled when ``progress`` says so, and then
    nothing is written."""
    from widgets.render import offscreen_panel
    from workbench.registry import panel_class
    from workbench.scene import write_atomic

    suffix = check_target(path)
    n = frame_count(fps, seconds, suffix)
    params = panel_class(panel_name).PARAMS
    parsed = parse_sweep(sweep, params) if sweep else None
    if parsed is not None:
        sweep_frames(parsed, params, values, n)  # every frame's values, before the panel is built
    elif not plays(panel_name):
        raise AnimationError(tr("panel {panel} does not play: animate a parameter with --sweep NAME=FROM:TO "
                                "(see 'workbench list {panel}')").format(panel=panel_name))
    with offscreen_panel(panel_name, values, style, size) as panel:
        frames = Frames(panel, style, n, parsed, scale, caption)
        data = encode(frames, suffix, fps, progress)
    write_atomic(path, data)
    return n
