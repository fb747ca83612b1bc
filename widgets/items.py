"""Small helpers for pyqtgraph items shared by the panels."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.PlotCurveItem import arrayToLineSegments
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetricsF, QPainter

SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def never_widens(label: pg.LabelItem) -> None:
    """A label whose text sets its row's height but no minimum width: a long title in a narrow
    window overhangs its plot instead of pushing the figure wider than the window."""
    update = label.updateMin

    def update_min():
        update()
        label.setMinimumWidth(0)
        label._sizeHint[Qt.SizeHint.MinimumSize] = (0, label._sizeHint[Qt.SizeHint.MinimumSize][1])
    label.updateMin = update_min
    update_min()


def held_range(shown: tuple[float, float] | None, wanted: tuple[float, float], fill: float = 0.5) -> tuple[float, float]:
    """The range to show: ``shown`` while it contains ``wanted`` and ``wanted`` spans at least
    ``fill`` of it, else ``wanted``. An axis then holds still while its data moves a little inside
    it (redrawing an axis and its labels costs a few ms), and the data is seen to move."""
    if shown is not None and shown[0] <= wanted[0] and wanted[1] <= shown[1] and (
            wanted[1] - wanted[0] >= fill * (shown[1] - shown[0])):
        return shown
    return wanted


def decade_label(k: int) -> str:
    """How the decade 10**k is written on an axis: 0.001 to 1000 as numbers, the rest as 10ᵏ."""
    return f"{10.0 ** k:g}" if -3 <= k <= 3 else "10" + str(k).translate(SUPERSCRIPT)


class DecadeAxis(pg.AxisItem):
    """An axis for curves that carry log10 values: a tick at every whole decade (every 2nd, 5th,
    10th... when they would crowd), read as 10ᵏ. pyqtgraph's own log axis adds ticks at 2..9 x 10ᵏ
    and measures every candidate label, which costs 3-5 ms whenever the range changes."""

    def __init__(self, orientation: str, **kwargs):
        super().__init__(orientation, **kwargs)
        self.logMode = True  # read by the grid and label code; the view keeps linear limits

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        lo, hi = sorted((minVal, maxVal))
        if not (math.isfinite(lo) and math.isfinite(hi)) or size <= 0:
            return []
        metrics = QFontMetricsF(self.style["tickFont"] or self.font())
        label = 1.8 * metrics.height() if self.orientation in ("left", "right") else 1.3 * metrics.horizontalAdvance("10⁻¹⁰")
        decades = label * max(hi - lo, 1e-9) / size  # the decades one label needs
        power = 10 ** max(0, math.floor(math.log10(decades))) if decades > 1 else 1
        stride = next(step * power for step in (1, 2, 5, 10) if step * power >= decades)  # 1, 2, 5, 10, 20, ...
        first = math.ceil(lo / stride - 1e-9) * stride
        return [(float(stride), [float(k) for k in range(first, math.floor(hi + 1e-9) + 1, stride)])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [decade_label(round(v)) for v in values]


FAR_PX = 16000.0  # segment rasterisation works in 16.16 fixed point: beyond this, leave it to the stroker


class PixelCurve(pg.PlotCurveItem):
    """A PlotCurveItem whose line is drawn as segments in device pixels.

    Qt rasterises the segments of a line wider than 1 px directly only when the painter's
    transform scales x and y alike; a plot's data-to-pixel transform almost never does, and then
    every line goes through the outline stroker: a 2 px line of 500 points costs ~0.35 ms plain
    and ~3.4 ms antialiased, against ~0.11 and ~0.5 ms mapped to pixels first. Histogram steps
    (stepMode "center") are drawn so too; fills, other step modes, shadows, translucent pens and
    1 px lines (already fast) are drawn by PlotCurveItem as before."""

    def paint(self, p, opt, widget):
        pen = self.opts["pen"]
        if (self.xData is None or len(self.xData) < 2 or self.opts["fillLevel"] is not None
                or self.opts["stepMode"] not in (None, False, True, "center")
                or self.opts["shadowPen"] is not None or pen.widthF() <= 1
                or not pen.isCosmetic() or pen.color().alpha() < 255  # translucent segments darken where they meet
                or self.opts["connect"] not in ("all", "finite")):
            return super().paint(p, opt, widget)
        x, y = self.getData()
        if self.opts["stepMode"]:  # x: the n + 1 bin edges, y: the n heights; level runs joined by risers
            x, y = np.repeat(x, 2)[1:-1], np.repeat(y, 2)
        t = p.transform()
        px = t.m11() * x + t.m21() * y + t.dx()
        py = t.m12() * x + t.m22() * y + t.dy()
        with np.errstate(invalid="ignore"):
            if not np.all((np.abs(px) < FAR_PX) & (np.abs(py) < FAR_PX) | ~np.isfinite(px + py)):
                return super().paint(p, opt, widget)  # Qt's stroker clips lines that leave far off-screen
        self._pixel_segments = arrayToLineSegments(px, py, self.opts["connect"], not self.opts["skipFiniteCheck"],
                                                   out=getattr(self, "_pixel_segments", None))
        aa = self._exportOpts.get("antialias", True) if self._exportOpts is not False else self.opts["antialias"]
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.Antialiasing, aa)
        p.setPen(pen)
        p.drawLines(*self._pixel_segments.drawargs())
        p.restore()


class CellImage(pg.ImageItem):
    """An ImageItem of cells (a heat map): drawn without antialiasing, so a scaled-up image keeps
    crisp cell edges and takes the raster engine's plain scaling path (not the antialiased one)."""

    def paint(self, painter, *args):
        painter.setRenderHint(QPainter.Antialiasing, False)
        super().paint(painter, *args)
