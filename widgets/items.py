"""Small helpers for pyqtgraph items shared by the panels."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from pyqtgraph.graphicsItems.PlotCurveItem import arrayToLineSegments
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QImage, QPainter, QPaintEngine, QPen, QTransform

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


TEXT_FLAGS = {"left": Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip,
              "right": Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip,
              "top": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom | Qt.TextFlag.TextDontClip,
              "bottom": Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextDontClip}


class QuickAxis(pg.AxisItem):
    """pyqtgraph's AxisItem with its tick picture built in less than half the time: the same
    ticks, labels and text placement (``generateDrawSpecs`` returns what pyqtgraph's does), built
    with QPointF instead of pyqtgraph's Point and each label's text box measured once per font.
    Every range change of a plot rebuilds its axes' pictures, ~1 ms each with pyqtgraph's: the
    largest single part of repainting a page of plots. Every plot the panels make uses it."""

    _text_sizes: dict[tuple[str, str], tuple[float, float]] = {}  # (font key, label) -> (width, height)

    def _text_size(self, painter: QPainter, font: str, text: str) -> tuple[float, float]:
        """The box pyqtgraph gives ``text`` in the painter's font (whose ``key()`` is ``font``)."""
        size = QuickAxis._text_sizes.get((font, text))
        if size is None:
            if len(QuickAxis._text_sizes) >= 4096:
                QuickAxis._text_sizes.clear()
            box = painter.boundingRect(QRectF(0, 0, 100, 100), Qt.AlignmentFlag.AlignCenter, text)
            size = QuickAxis._text_sizes[font, text] = (box.width(), box.height() * 0.8)  # pyqtgraph's 0.8
        return size

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        """pyqtgraph's tick values (each level without the ticks of the levels before it), with the
        comparison to those ticks written out instead of np.isclose (the same test: |a - b| <= atol)."""
        low, high = sorted((minVal, maxVal))
        low, high = low * self.scale, high * self.scale
        levels = []
        taken = np.array([])
        for spacing, offset in self.tickSpacing(low, high, size):
            start = math.ceil((low - offset) / spacing) * spacing + offset
            values = (np.arange(int((high - start) / spacing) + 1) * spacing + start) / self.scale
            if taken.size:
                values = values[~(np.abs(values[:, None] - taken) <= spacing / self.scale * 0.01).any(axis=1)]
            taken = np.concatenate([taken, values])
            levels.append((spacing / self.scale, values.tolist()))
        return self.logTickValues(low, high, size, levels) if self.logMode else levels

    def generateDrawSpecs(self, p: QPainter):
        style = self.style
        if style["tickFont"] is not None:
            p.setFont(style["tickFont"])
        bounds = self.mapRectFromParent(self.geometry())
        view = self.linkedView()
        tick_bounds = bounds if view is None or self.grid is False else view.mapRectToItem(self, view.boundingRect())
        side = self.orientation
        if side == "left":
            span = (bounds.topRight() + QPointF(-1, -1), bounds.bottomRight() + QPointF(-1, 1))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.right(), bounds.right(), -1, 0
        elif side == "right":
            span = (bounds.topLeft() + QPointF(1, -1), bounds.bottomLeft() + QPointF(1, 1))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.left(), bounds.left(), 1, 0
        elif side == "top":
            span = (bounds.bottomLeft() + QPointF(-1, -1), bounds.bottomRight() + QPointF(1, -1))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.bottom(), bounds.bottom(), -1, 1
        else:
            span = (bounds.topLeft() + QPointF(-1, 1), bounds.topRight() + QPointF(1, 1))
            tick_start, tick_stop, tick_dir, axis = tick_bounds.top(), bounds.top(), 1, 1
        ends = [self.mapToDevice(point) for point in span]
        if None in ends:
            return None
        length = ((ends[1].x() - ends[0].x()) ** 2 + (ends[1].y() - ends[0].y()) ** 2) ** 0.5  # as pyqtgraph's Point.length
        if length == 0:
            return None
        if self._tickLevels is None:
            levels = self.tickValues(self.range[0], self.range[1], length)
            given_strings = None
        else:
            levels = [(None, [value for value, _ in level]) for level in self._tickLevels]
            given_strings = [[text for _, text in level] for level in self._tickLevels]
        low, high = self.range
        if high - low == 0:
            scale, offset = 1, 0
        elif axis == 0:
            scale = -bounds.height() / (high - low)
            offset = low * scale - bounds.height()
        else:
            scale = bounds.width() / (high - low)
            offset = low * scale
        x_min, x_max = sorted((low * scale - offset, high * scale - offset))

        positions: list[list[float | None]] = []
        tick_specs = []
        for i, (_, values) in enumerate(levels):
            level_positions = []
            positions.append(level_positions)
            tick_length = style["tickLength"] / (i * 0.5 + 1.0)
            alpha = style["tickAlpha"]
            if alpha is None:
                alpha = 255 / (i + 1)
                if self.grid is not False:
                    alpha *= self.grid / 255.0 * fn.clip_scalar(0.05 * length / (len(values) + 1), 0.0, 1.0)
            elif isinstance(alpha, float):
                alpha = min(255, max(0, int(round(alpha * 255))))
            elif isinstance(alpha, int):
                if alpha > 255 or alpha < 0:
                    raise ValueError("lineAlpha should be [0..255]")
            else:
                raise TypeError("Line Alpha should be of type None, float or int")
            pen = self.tickPen()
            if pen.brush().style() == Qt.BrushStyle.SolidPattern:
                pen = QPen(pen)
                color = QColor(pen.color())
                color.setAlpha(int(alpha))
                pen.setColor(color)
            stop = tick_stop + tick_length * tick_dir if self.grid is False else tick_stop
            for value in values:
                x = value * scale - offset
                if x < x_min or x > x_max:
                    level_positions.append(None)
                    continue
                level_positions.append(x)
                if axis == 0:
                    tick_specs.append((pen, QPointF(tick_start, x), QPointF(stop, x)))
                else:
                    tick_specs.append((pen, QPointF(x, tick_start), QPointF(x, stop)))

        for end, (tick, bound) in enumerate(((min, max), (max, min))):  # the line's ends at the outer ticks
            if style["stopAxisAtTick"][end] is True:
                outer = tick(map(tick, positions))
                if axis == 0:
                    span[end].setY(bound(span[end].y(), outer))
                else:
                    span[end].setX(bound(span[end].x(), outer))
        axis_spec = (self.pen(), span[0], span[1])
        if not style["showValues"]:
            return axis_spec, tick_specs, []

        text_offset = style["tickTextOffset"][axis]
        across = across_before = 0
        sizes_so_far: list[tuple[float, float]] = []
        text_specs = []
        item_box = self.boundingRect()
        distance = max(0, style["tickLength"]) + text_offset
        flags = TEXT_FLAGS[side]
        font = p.font().key()
        for i in range(min(len(levels), style["maxTextLevel"] + 1)):
            if given_strings is None:
                spacing, values = levels[i]
                strings = self.tickStrings(values, self.autoSIPrefixScale * self.scale, spacing)
            else:
                strings = given_strings[i]
            if len(strings) == 0:
                continue
            sizes = [None if x is None else self._text_size(p, font, text) for x, text in zip(positions[i], strings)]
            sizes_so_far += [size for size in sizes if size is not None]
            if sizes_so_far:
                along = sum(size[1 - axis] for size in sizes_so_far)
                across = max(size[axis] for size in sizes_so_far)
            else:
                along = across = 0
            if i > 0 and any(len(text_specs) >= count and along / length >= limit
                             for count, limit in style["textFillLimits"]):
                break
            across_before = across
            for j, text in enumerate(strings):
                if sizes[j] is None:
                    continue
                x, (width, height) = positions[i][j], sizes[j]
                if side == "left":
                    rect = QRectF(tick_stop - distance - width, x - height / 2, width, height)
                elif side == "right":
                    rect = QRectF(tick_stop + distance, x - height / 2, width, height)
                elif side == "top":
                    rect = QRectF(x - width / 2.0, tick_stop - distance - height, width, height)
                else:
                    rect = QRectF(x - width / 2.0, tick_stop + distance, width, height)
                if item_box & rect != rect:
                    continue
                text_specs.append((rect, flags, text))
        self._updateMaxTextSize(across_before)
        return axis_spec, tick_specs, text_specs

    _fills: tuple[list, list] = ([], [])  # translucent tick lines along x and along y, drawn by paint

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs) -> None:
        """As pyqtgraph's, but translucent axis-aligned tick and grid lines are left to ``paint``
        (kept as (x1, y1, x2, y2, colour, spec) in the item's coordinates)."""
        along_x, along_y, lines = [], [], []
        fillable: dict[int, QColor | None] = {}  # by pen: every tick of a level has the same one
        for spec in tickSpecs:
            pen, p1, p2 = spec
            color = fillable.get(id(pen), False)
            if color is False:
                color = fillable[id(pen)] = pen.color() if (pen.color().alpha() < 255 and pen.style() == Qt.SolidLine
                                                             and pen.widthF() <= 1 and pen.isCosmetic()) else None
            if color is None:
                lines.append(spec)
                continue
            x1, y1, x2, y2 = p1.x(), p1.y(), p2.x(), p2.y()
            if y1 == y2 or x1 == x2:
                (along_x if y1 == y2 else along_y).append((x1, y1, x2, y2, color, spec))
            else:
                lines.append(spec)
        self._fills = (along_x, along_y)
        super().drawPicture(p, axisSpec, lines, textSpecs)

    def paint(self, p, opt, widget) -> None:
        """The picture, then its translucent lines as fills in device pixels. The raster engine
        blends a translucent 1 px line pixel by pixel (27 grid lines across a 440 px plot: 3.4 ms,
        with an opaque pen 0.1 ms); here each line along x is a one-row fill, and the lines along
        y are one fill of their band with a one-row texture (0.1 ms): the pixels the lines cover."""
        super().paint(p, opt, widget)
        along_x, along_y = self._fills
        if not (along_x or along_y):
            return
        t = p.transform()
        p.save()
        if t.m12() or t.m21() or p.paintEngine().type() != QPaintEngine.Raster:  # turned, or a PDF or SVG: lines
            for *_, (pen, p1, p2) in (*along_x, *along_y):
                p.setPen(pen)
                p.drawLine(p1, p2)
            p.restore()
            return
        p.resetTransform()
        sx, sy, dx, dy = t.m11(), t.m22(), t.dx(), t.dy()  # device = item * scale + shift (no turn: checked above)
        floor = math.floor
        for x1, y, x2, _, color, _ in along_x:
            a, b = x1 * sx + dx, x2 * sx + dx
            p.fillRect(QRectF(floor(min(a, b)), floor(y * sy + dy), floor(abs(b - a)) + 1, 1), color)
        bands: dict[tuple[int, int], dict[int, QColor]] = {}
        for x, y1, _, y2, color, _ in along_y:
            a, b = y1 * sy + dy, y2 * sy + dy
            band = bands.setdefault((floor(min(a, b)), floor(max(a, b))), {})
            band.setdefault(floor(x * sx + dx), color)  # one line per pixel column (lines closer than 1 px: the first)
        for (top, bottom), columns in bands.items():
            left = min(columns)
            row = QImage(max(columns) - left + 1, 1, QImage.Format_ARGB32_Premultiplied)
            row.fill(0)
            for x, color in columns.items():
                row.setPixelColor(x - left, 0, color)
            brush = QBrush(row)
            brush.setTransform(QTransform.fromTranslate(left, 0))
            p.fillRect(QRect(left, top, row.width(), bottom - top + 1), brush)
        p.restore()


importlib.import_module("pyqtgraph.graphicsItems.PlotItem.PlotItem").AxisItem = QuickAxis  # the axes PlotItem makes itself


def decade_label(k: int) -> str:
    """How the decade 10**k is written on an axis: 0.001 to 1000 as numbers, the rest as 10ᵏ."""
    return f"{10.0 ** k:g}" if -3 <= k <= 3 else "10" + str(k).translate(SUPERSCRIPT)


class DecadeAxis(QuickAxis):
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


FAR_PX = 16000.0  # segment rasterisation works in 16.16 fixed point: lines reaching beyond are clipped first
# A line is cut at the view's edges from an end within this many px (float64 keeps 1e-4 px there); a
# line between two ends farther out (a diverged path's later steps) is not drawn: where it would cross
# the view is lost to rounding (Qt's stroker draws nothing of a line that reaches 1e20 px).
PRECISE_PX = 1e12


def clip_lines(lines: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The parts of line segments inside a box, cut at its edges one edge after another.

    lines: (n, 4) float, rows x0, y0, x1, y1; box: (left, top, right, bottom), same units.
    Returns (m, 4), m <= n: the segments that meet the box, in order, each end that lay outside
    moved along its line onto the edge. Each cut interpolates from the end inside that edge, so a
    path that leaves by 1e300 px keeps its visible part exact."""
    ends = [lines[:, :2].astype(float), lines[:, 2:].astype(float)]
    keep = np.isfinite(lines).all(axis=1)
    left, top, right, bottom = box
    with np.errstate(all="ignore"):
        for axis, edge, side in ((0, left, 1.0), (0, right, -1.0), (1, top, 1.0), (1, bottom, -1.0)):
            inside = [side * (end[:, axis] - edge) >= 0 for end in ends]
            keep &= inside[0] | inside[1]
            other = 1 - axis
            for out, into in ((0, 1), (1, 0)):
                cut = ~inside[out] & inside[into]
                far, near = ends[out][cut], ends[into][cut]
                share = (edge - near[:, axis]) / (far[:, axis] - near[:, axis])  # of the way from near to far
                ends[out][cut, other] = near[:, other] + share * (far[:, other] - near[:, other])
                ends[out][cut, axis] = edge
    return np.hstack(ends)[keep]


class PixelCurve(pg.PlotCurveItem):
    """A PlotCurveItem whose line is drawn as segments in device pixels.

    Qt rasterises the segments of a line wider than 1 px directly only when the painter's
    transform scales x and y alike; a plot's data-to-pixel transform almost never does, and then
    every line goes through the outline stroker: a 2 px line of 500 points costs ~0.35 ms plain
    and ~3.4 ms antialiased, against ~0.11 and ~0.5 ms mapped to pixels first (lines that reach
    far off-screen, as a diverged path's, are clipped to the device first). Histogram steps
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
            far = not np.all((np.abs(px) < FAR_PX) & (np.abs(py) < FAR_PX) | ~np.isfinite(px + py))
        segments = self._pixel_segments = arrayToLineSegments(
            px, py, self.opts["connect"], not self.opts["skipFiniteCheck"], out=getattr(self, "_pixel_segments", None))
        if far:  # a diverged path: Qt's stroker takes ~45 ms for a few such lines, clipped ones ~0.1 ms
            lines = segments.ndarray()
            reach = np.abs(lines).reshape(-1, 2, 2).max(axis=2)  # of each end: its larger coordinate
            lines = lines[reach.min(axis=1) < PRECISE_PX]  # where a line crosses the view is known to a pixel
            margin = 2 * pen.widthF() + 2
            device = p.device()
            inside = clip_lines(lines, (-margin, -margin, device.width() + margin, device.height() + margin))
            segments.resize(len(inside))
            segments.ndarray()[:] = inside
        aa = self._exportOpts.get("antialias", True) if self._exportOpts is not False else self.opts["antialias"]
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.Antialiasing, aa)
        p.setPen(pen)
        p.drawLines(*segments.drawargs())
        p.restore()


class CellImage(pg.ImageItem):
    """An ImageItem of cells (a heat map): drawn without antialiasing, so a scaled-up image keeps
    crisp cell edges and takes the raster engine's plain scaling path (not the antialiased one)."""

    def paint(self, painter, *args):
        painter.setRenderHint(QPainter.Antialiasing, False)
        super().paint(painter, *args)
