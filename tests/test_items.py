"""Shared plot helpers: held axis ranges, the quick and the decade axis."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest

from widgets.items import DecadeAxis, PixelCurve, QuickAxis, clip_lines, decade_label, held_range


@pytest.mark.parametrize("shown, wanted, expected", [
    (None, (-3, 3), (-3, 3)),
    ((-4, 4), (-3, 3), (-4, 4)),          # inside and fills 6/8
    ((-3, 11), (-3, 3), (-3, 3)),         # inside but fills 6/14: re-ranged
    ((-3, 3), (-3, 4), (-3, 4)),          # no longer fits
])
def test_held_range(shown, wanted, expected):
    assert held_range(shown, wanted) == expected


def test_decade_labels_read_as_numbers_near_one_and_powers_beyond():
    assert [decade_label(k) for k in (-12, -4, -3, -1, 0, 1, 3, 4, 22)] == [
        "10⁻¹²", "10⁻⁴", "0.001", "0.1", "1", "10", "1000", "10⁴", "10²²"]


def test_decade_axis_ticks_whole_decades_thinned_to_fit(qtbot):
    plot = pg.PlotItem(axisItems={"left": DecadeAxis("left")})
    axis = plot.getAxis("left")
    line = pg.QtGui.QFontMetricsF(axis.style["tickFont"] or axis.font()).height()
    (stride, values), = axis.tickValues(-3.2, 3.5, 100 * line)  # roomy: every decade
    assert stride == 1 and values == [-3, -2, -1, 0, 1, 2, 3]
    (stride, values), = axis.tickValues(-12.0, 23.0, 20 * line)  # 35 decades in 20 lines
    assert stride == 5 and values == [-10, -5, 0, 5, 10, 15, 20]
    assert axis.tickStrings(values, 1.0, stride)[:3] == ["10⁻¹⁰", "10⁻⁵", "1"]
    assert axis.tickValues(float("nan"), 1.0, 100) == []


def _specs(generate, axis):
    """What ``generate`` (a generateDrawSpecs) gives for ``axis``, as plain numbers and text."""
    picture = pg.QtGui.QPicture()
    painter = pg.QtGui.QPainter(picture)
    try:
        specs = generate(axis, painter)
    finally:
        painter.end()
    if specs is None:
        return None
    (pen, start, end), ticks, texts = specs
    return ((pen.color().rgba(), start.x(), start.y(), end.x(), end.y()),
            [(pen.color().rgba(), a.x(), a.y(), b.x(), b.y()) for pen, a, b in ticks],
            [(r.x(), r.y(), r.width(), r.height(), int(flags), text) for r, flags, text in texts])


def test_quick_axis_draws_exactly_what_pyqtgraphs_axis_draws(qtbot):
    view = pg.GraphicsLayoutWidget()
    qtbot.addWidget(view)
    plot = view.addPlot()
    plot.showAxes(True)
    view.resize(520, 380)
    view.show()
    rng = np.random.default_rng(3)
    compared = 0
    for trial in range(120):
        low = float(rng.uniform(-1e3, 1e3) * 10.0 ** rng.integers(-7, 4))
        high = low + float(rng.exponential()) * 10.0 ** float(rng.integers(-8, 6))
        plot.setXRange(low, high, padding=0)
        plot.setYRange(low, high, padding=0)
        plot.showGrid(x=trial % 4 == 1, y=trial % 4 == 1, alpha=0.4)
        view.resize(int(rng.integers(160, 700)), int(rng.integers(120, 500)))
        for side in ("left", "bottom", "right", "top"):
            axis = plot.getAxis(side)
            fixed = trial % 5 == 2  # given ticks inside the range, the axis line stopped at the outer ones
            axis.setTicks([[(low + 0.1 * (high - low), "low"), ((low + high) / 2, "middle"),
                            (high - 0.1 * (high - low), "high")]] if fixed else None)
            axis.setStyle(tickAlpha=[None, 0.5, 100][trial % 3], stopAxisAtTick=(fixed, fixed))
        pg.QtWidgets.QApplication.processEvents()
        for side in ("left", "bottom", "right", "top"):
            axis = plot.getAxis(side)
            assert isinstance(axis, QuickAxis)  # what every plot gets (panels import widgets.items first)
            for size in (37.0, 300.0, 1234.5):
                assert axis.tickValues(low, high, size) == pg.AxisItem.tickValues(axis, low, high, size)
            expected = _specs(pg.AxisItem.generateDrawSpecs, axis)
            assert _specs(QuickAxis.generateDrawSpecs, axis) == expected, (side, low, high)
            compared += expected is not None and len(expected[2]) > 0
    assert compared > 200  # about half with labels drawn (tiny spans and sizes leave some without)


def _plot_pixels(qtbot, axis_type, x_range, y_range, size=(400, 300), scale=1.0):
    """A plot with grids drawn by ``axis_type`` axes, rendered at ``scale``, as RGB."""
    from PySide6.QtGui import QColor, QImage, QPainter

    widget = pg.PlotWidget(axisItems={side: axis_type(side) for side in ("left", "bottom", "right")})
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.setBackground("w")
    widget.showAxis("right")
    widget.setRange(xRange=x_range, yRange=y_range, padding=0)
    widget.showGrid(x=True, y=True, alpha=0.3)
    widget.show()
    qtbot.waitExposed(widget)
    width, height = int(size[0] * scale), int(size[1] * scale)
    image = QImage(width, height, QImage.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.scale(scale, scale)
    widget.render(painter)
    painter.end()
    return np.frombuffer(image.constBits(), np.uint8).reshape(height, width, 4)[..., :3].astype(int)


def test_quick_axis_grid_lines_cover_the_pixels_pyqtgraphs_do(qtbot):
    """Translucent tick and grid lines are drawn as fills (a tenth of the time): the same pixels
    in the same shades; scaled (an export), within a few crossing pixels."""
    rng = np.random.default_rng(5)
    for trial in range(6):
        low, span = rng.uniform(-100, 100), 10 ** rng.uniform(-2, 3)
        y_low, y_span = rng.uniform(-5, 5), 10 ** rng.uniform(-1, 2)
        ranges = ((low, low + span), (y_low, y_low + y_span))
        ours, theirs = _plot_pixels(qtbot, QuickAxis, *ranges), _plot_pixels(qtbot, pg.AxisItem, *ranges)
        assert (theirs.min(axis=2) < 250).sum() > 3000  # grid lines, ticks and labels drawn
        np.testing.assert_array_equal(ours, theirs)
    ours = _plot_pixels(qtbot, QuickAxis, (0, 10), (2, 10.5), scale=0.625)
    theirs = _plot_pixels(qtbot, pg.AxisItem, (0, 10), (2, 10.5), scale=0.625)
    differ = np.abs(ours - theirs).max(axis=2) > 0
    assert differ.sum() < 0.01 * differ.size and np.abs(ours - theirs).max() < 40


def test_quick_axis_grid_lines_stay_lines_in_a_vector_file(qtbot, tmp_path):
    """A PDF gets the grid as line paths, as pyqtgraph's axis draws it, not a texture image."""
    from PySide6.QtCore import QMarginsF, QSizeF
    from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

    def pdf(axis_type):
        widget = pg.PlotWidget(axisItems={side: axis_type(side) for side in ("left", "bottom")})
        qtbot.addWidget(widget)
        widget.resize(400, 300)
        widget.setRange(xRange=(0, 10), yRange=(-1, 1), padding=0)
        widget.showGrid(x=True, y=True, alpha=0.3)
        path = tmp_path / f"{axis_type.__name__}.pdf"
        writer = QPdfWriter(str(path))
        writer.setPageLayout(QPageLayout(QPageSize(QSizeF(400, 300), QPageSize.Point), QPageLayout.Portrait, QMarginsF()))
        painter = QPainter(writer)
        widget.render(painter)
        painter.end()
        return path.read_bytes()

    ours, theirs = pdf(QuickAxis), pdf(pg.AxisItem)
    assert b"/Subtype /Image" not in ours and b"/Subtype/Image" not in ours
    assert abs(len(ours) - len(theirs)) < 0.05 * len(theirs)  # the same drawing, give or take


def _drawn_pixels(qtbot, curve_type, x, y, **opts):
    """Where a curve of ``curve_type`` paints in a 300 x 200 plot whose x and y scales differ."""
    from PySide6.QtGui import QColor, QImage, QPainter

    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(300, 200)
    widget.setBackground("w")
    widget.hideAxis("left")
    widget.hideAxis("bottom")
    widget.setRange(xRange=(0, 10), yRange=(-1, 1), padding=0)
    widget.addItem(curve_type(x=x, y=y, pen=pg.mkPen("#000000", width=3), **opts))
    image = QImage(300, 200, QImage.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    widget.render(painter)
    painter.end()
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(200, 300, 4)
    return pixels[..., :3].min(axis=2) < 128


def test_pixel_curve_draws_the_pixels_plot_curve_item_draws(qtbot):
    x = np.linspace(0, 10, 400)
    y = 0.8 * np.sin(3 * x)
    for antialias in (False, True):
        ours = _drawn_pixels(qtbot, PixelCurve, x, y, antialias=antialias)
        theirs = _drawn_pixels(qtbot, pg.PlotCurveItem, x, y, antialias=antialias)
        overlap = (ours & theirs).sum() / (ours | theirs).sum()
        assert ours.sum() > 1500 and overlap > 0.8, (antialias, ours.sum(), overlap)


def test_pixel_curve_draws_histogram_steps_as_plot_curve_item_does(qtbot):
    edges = np.linspace(0, 10, 31)
    heights = 0.8 * np.cos(edges[:-1])
    for antialias in (False, True):
        ours = _drawn_pixels(qtbot, PixelCurve, edges, heights, stepMode="center", antialias=antialias)
        theirs = _drawn_pixels(qtbot, pg.PlotCurveItem, edges, heights, stepMode="center", antialias=antialias)
        overlap = (ours & theirs).sum() / (ours | theirs).sum()
        assert ours.sum() > 1500 and overlap > 0.8, (antialias, ours.sum(), overlap)


def test_pixel_curve_clips_far_off_screen_lines_and_draws_what_qts_stroker_draws(qtbot):
    x = np.array([0.0, 5.0, 5.0, 8.0])
    y = np.array([0.0, 0.0, 1e9, -0.5])  # a diverged path: it leaves by a billion pixels and comes back
    for antialias in (False, True):
        ours = _drawn_pixels(qtbot, PixelCurve, x, y, antialias=antialias)
        theirs = _drawn_pixels(qtbot, pg.PlotCurveItem, x, y, antialias=antialias)
        overlap = (ours & theirs).sum() / (ours | theirs).sum()
        assert ours.sum() > 300 and overlap > 0.9, (antialias, ours.sum(), overlap)
    # Qt's stroker draws nothing of a line that reaches 1e20 px or more; the clipped line is drawn as
    # the one that reaches 1e9 px, which the stroker draws the same
    def same(ours, theirs):
        return (ours & theirs).sum() / (ours | theirs).sum() > 0.95

    x = np.array([0.0, 5.0, 5.0])
    near = _drawn_pixels(qtbot, pg.PlotCurveItem, x, np.array([0.0, 0.0, 1e9]), antialias=False)
    assert near.sum() > 300
    for far in (1e20, 1e300):
        assert same(_drawn_pixels(qtbot, PixelCurve, x, np.array([0.0, 0.0, far]), antialias=False), near)
    # a later step between two points 1e20 px out is left out, though it passes through (5, 0): where it
    # crosses the view is lost to rounding
    ray = _drawn_pixels(qtbot, pg.PlotCurveItem, np.array([0.0, 5.0, 5.0 + 1e9]), np.array([0.0, 0.0, 1e9]),
                        antialias=False)
    beyond = _drawn_pixels(qtbot, PixelCurve, np.array([0.0, 5.0, 5.0 + 1e20, 5.0 - 1e20]),
                           np.array([0.0, 0.0, 1e20, -1e20]), antialias=False)
    assert ray.sum() > 300 and same(beyond, ray)


def test_clip_lines_keeps_exactly_the_parts_inside_the_box():
    rng = np.random.default_rng(3)
    box = (-5.0, -2.0, 300.0, 200.0)
    scale = 10.0 ** rng.integers(0, 12, size=(2000, 1))  # ends from near the box to a trillion pixels away
    lines = rng.uniform(-1, 1, size=(2000, 4)) * scale + 100
    clipped = clip_lines(lines, box)
    t = np.linspace(0, 1, 401)
    kept = 0
    for x0, y0, x1, y1 in lines:
        xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        kept += np.any((xs > box[0]) & (xs < box[2]) & (ys > box[1]) & (ys < box[3]))
    assert len(clipped) >= kept > 200  # every segment seen inside the box is kept (and few that only touch it)
    tolerance = 1e-6 * 300
    assert np.all(clipped[:, [0, 2]] >= box[0] - tolerance) and np.all(clipped[:, [0, 2]] <= box[2] + tolerance)
    assert np.all(clipped[:, [1, 3]] >= box[1] - tolerance) and np.all(clipped[:, [1, 3]] <= box[3] + tolerance)
    inside = np.all((lines[:, [0, 2]] >= box[0]) & (lines[:, [0, 2]] <= box[2])
                    & (lines[:, [1, 3]] >= box[1]) & (lines[:, [1, 3]] <= box[3]), axis=1)
    assert inside.sum() > 20
    np.testing.assert_array_equal(clip_lines(lines[inside], box), lines[inside])  # inside already: unchanged
    vertical = clip_lines(np.array([[5.0, -1e300, 5.0, 1e300]]), box)
    np.testing.assert_array_equal(vertical, [[5.0, box[1], 5.0, box[3]]])  # exact, though the ends are 1e300 away
    slanted = clip_lines(np.array([[100.0, 100.0, 1e300, 5e299]]), (0.0, 0.0, 1000.0, 1000.0))
    np.testing.assert_allclose(slanted, [[100.0, 100.0, 1000.0, 550.0]])
    assert len(clip_lines(np.array([[-50.0, 1.0, -10.0, -5.0], [np.nan, 0, 1, 1]]), box)) == 0  # outside; not finite


def test_one_line_keeps_its_height_and_layout_whatever_the_text(qtbot):
    from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

    from widgets.controls import OneLine

    box = QWidget()
    qtbot.addWidget(box)
    layout = QVBoxLayout(box)
    label = QLabel("short")
    line = OneLine(label)
    layout.addWidget(line)
    box.resize(300, 200)
    box.show()
    qtbot.waitExposed(box)
    height, geometry = line.height(), line.geometry()
    assert height >= label.fontMetrics().height() and label.text() == "short"
    label.setText("个查询 " * 40)  # far wider than the box
    qtbot.wait(10)
    assert line.geometry() == geometry and label.geometry() == line.rect()
    assert box.width() == 300  # the long text did not widen the window
