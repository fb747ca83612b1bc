"""RepaintGate: a change that redraws several plots and relays out the figure repaints each plot
once, after the layout, and the window shows what an ungated one shows; past its paint budget a
repaint leaves the plots still to come for the next pass."""

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from widgets.repaint import RepaintGate, plot_cells, work_done, work_in_pass
from workbench.registry import PANELS


class CountedPlot(pg.PlotWidget):
    """A plot that counts its paints (Qt's, or the gate's cell by cell)."""

    paints = 0

    def paintEvent(self, event):
        self.paints += 1
        super().paintEvent(event)


class PaintCounter:
    def __init__(self, plots):
        self.plots = plots

    @property
    def counts(self) -> dict:
        return {plot: plot.paints for plot in self.plots}

    def reset(self):
        for plot in self.plots:
            plot.paints = 0


def figure(qtbot, gated: bool, budget_ms: float = 1e9):
    """A label above three plots (three scenes), shown and settled."""
    window = QWidget()
    layout = QVBoxLayout(window)
    label = QLabel("a note above the plots")
    layout.addWidget(label)
    plots = [CountedPlot() for _ in range(3)]
    for plot in plots:
        plot.setRange(xRange=(0, 2), yRange=(0, 3), padding=0)
        plot.disableAutoRange()
        layout.addWidget(plot)
    curves = [plot.plot([0, 1], [0, 1], pen=pg.mkPen("y", width=2)) for plot in plots]
    window.painted = PaintCounter(plots)
    if gated:
        window.gate = RepaintGate(window, lambda: plots, budget_ms)
    qtbot.addWidget(window)
    window.resize(360, 600)
    window.show()
    qtbot.waitExposed(window)
    for _ in range(5):
        QApplication.processEvents()
    return window, label, plots, curves


def change(label, curves, k: int) -> None:
    """Every plot's curve changes, and the label grows: the plots below it move."""
    for curve in curves:
        curve.setData([0, 1, 2], [k % 3, 0, 3 - k % 3])
    label.setMinimumHeight(label.sizeHint().height() + 10 * k)


def screen_image(window) -> np.ndarray:
    """What the window shows (its backing store), not a fresh render."""
    image = window.screen().grabWindow(window.winId()).toImage()
    return np.array(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine()).copy()


def test_every_plot_repaints_once_after_the_layout_and_the_window_shows_the_change(qtbot):
    gated = figure(qtbot, gated=True)
    plain = figure(qtbot, gated=False)
    counters = [gated[0].painted, plain[0].painted]
    twice = 0
    for k in range(1, 5):
        for (window, label, _, curves), counter in zip((gated, plain), counters):
            counter.reset()
            change(label, curves, k)
            QApplication.processEvents()
        assert list(counters[0].counts.values()) == [1, 1, 1], k
        twice += sum(counters[1].counts.values()) > 3  # Qt alone: a plot painted before and after the relayout
        for _ in range(3):  # nothing was left for later
            QApplication.processEvents()
        assert list(counters[0].counts.values()) == [1, 1, 1], k
        assert np.array_equal(screen_image(gated[0]), screen_image(plain[0])), k
    assert twice  # the case the gate is for happened


def test_a_view_deleted_since_it_was_listed_is_passed_over(qtbot):
    import shiboken6

    window, label, plots, curves = figure(qtbot, gated=False)
    stale = pg.PlotWidget()
    shiboken6.delete(stale)
    RepaintGate(window, lambda: [stale, *plots])
    counter = window.painted
    counter.reset()
    change(label, curves, 1)
    QApplication.processEvents()  # an exception in the filter would fail the test (pytest-qt)
    assert list(counter.counts.values()) == [1, 1, 1]


def test_past_its_budget_a_repaint_leaves_the_plots_to_come_for_the_next_pass(qtbot):
    """Budget 0: the first plot of a repaint paints, the others keep their old picture for one pass
    and paint in the next; then the window shows what an ungated one shows. A plot just moved (the
    label grew above it) is never left with its old picture."""
    gated = figure(qtbot, gated=True, budget_ms=0.0)
    plain = figure(qtbot, gated=False)
    window, label, plots, curves = gated
    counter = window.painted
    for k in range(1, 4):
        counter.reset()
        for curve in gated[3] + plain[3]:
            curve.setData([0, 1, 2], [k % 3, 0, 3 - k % 3])
        QApplication.processEvents()
        assert sum(counter.counts.values()) == 1, k  # one plot; two wait (their old pictures on screen)
        assert not np.array_equal(screen_image(window), screen_image(plain[0])), k
        qtbot.waitUntil(lambda: sum(counter.counts.values()) == 3, timeout=2000)
        for _ in range(4):
            QApplication.processEvents()
        assert list(counter.counts.values()) == [1, 1, 1], k  # each painted once
        assert np.array_equal(screen_image(window), screen_image(plain[0])), k
    counter.reset()
    change(label, curves, 5)  # every plot moves: none keeps its old picture
    QApplication.processEvents()
    assert list(counter.counts.values()) == [1, 1, 1]


class CountedLayout(pg.GraphicsLayoutWidget):
    """One view, three plots in its layout; records the region of each of its paints."""

    def __init__(self):
        super().__init__()
        self.regions = []

    def paintEvent(self, event):
        self.regions.append(event.region().boundingRect())
        super().paintEvent(event)


def layout_figure(qtbot, gated: bool, budget_ms: float):
    view = CountedLayout()
    view.resize(300, 600)
    curves = []
    for row in range(3):
        plot = view.addPlot(row=row, col=0)
        plot.setRange(xRange=(0, 2), yRange=(0, 3), padding=0)
        plot.disableAutoRange()
        curves.append(plot.plot([0, 1], [0, 1], pen=pg.mkPen("y", width=2)))
    if gated:
        view.gate = RepaintGate(view, lambda: [view], budget_ms)
    else:
        view.move(400, 0)  # not over the gated one: the screen is grabbed
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    qtbot.wait(50)  # settled: whatever a gated first paint left over is painted
    return view, curves


def test_the_plots_of_one_view_past_the_budget_paint_one_per_pass(qtbot):
    """Budget 0: a change to the three plots of one pyqtgraph layout paints one plot's cell in
    the first pass, the cells left over in later passes, each once; then the view shows what an
    ungated one shows."""
    view, curves = layout_figure(qtbot, gated=True, budget_ms=0.0)
    plain, plain_curves = layout_figure(qtbot, gated=False, budget_ms=0.0)
    cells = plot_cells(view)
    assert len(cells) == 3 and all(cell.height() < view.height() / 2 for cell in cells)
    for k in range(1, 3):
        view.regions.clear()
        for curve in curves + plain_curves:
            curve.setData([0, 1, 2], [k % 3, 0, 3 - k % 3])
        QApplication.processEvents()
        assert len(view.regions) == 1 and any(cell.contains(view.regions[0]) for cell in cells), k
        assert not np.array_equal(screen_image(view), screen_image(plain)), k
        qtbot.waitUntil(lambda: len(view.regions) >= 3, timeout=2000)
        for _ in range(4):
            QApplication.processEvents()
        painted = [next((i for i, cell in enumerate(cells) if cell.contains(region)), region) for region in view.regions]
        assert [painted.count(i) for i in range(3)] == [1, 1, 1], (k, painted)  # (a loaded machine may repaint it all too)
        assert np.array_equal(screen_image(view), screen_image(plain)), k


def test_a_repaint_after_long_drawing_in_the_same_pass_waits_for_the_next(qtbot):
    view, curves = layout_figure(qtbot, gated=True, budget_ms=5.0)
    view.regions.clear()
    QTimer.singleShot(0, lambda: (work_done(10.0), curves[0].setData([0, 1, 2], [1, 2, 0])))  # 10 ms of drawing
    QApplication.processEvents()
    assert view.regions == []  # the old picture, for one pass
    qtbot.waitUntil(lambda: len(view.regions) == 1, timeout=2000)
    view.regions.clear()
    curves[0].setData([0, 1, 2], [2, 1, 0])  # no drawing at length before it: painted at once
    QApplication.processEvents()
    assert len(view.regions) == 1


def test_plots_moved_in_their_view_paint_at_once(qtbot):
    """Budget 0, and the layout gives the plots new places in the view (no old picture of them is
    where they are now): they all paint in the first pass; the screen shows the change at once."""
    view, curves = layout_figure(qtbot, gated=True, budget_ms=0.0)
    plain, plain_curves = layout_figure(qtbot, gated=False, budget_ms=0.0)
    before = plot_cells(view)
    for figure in (view, plain):
        figure.ci.layout.setRowStretchFactor(0, 3)
    QApplication.processEvents()
    assert not set(map(tuple, (c.getRect() for c in plot_cells(view)))) & set(map(tuple, (c.getRect() for c in before)))
    assert np.array_equal(screen_image(view), screen_image(plain))


def test_work_is_counted_per_pass_of_the_event_loop(qtbot):
    QApplication.processEvents()
    assert work_in_pass() == 0.0
    work_done(3.0)
    work_done(4.0)
    assert work_in_pass() == 7.0
    QApplication.processEvents()
    assert work_in_pass() == 0.0


def shown_on_screen(window, viewport) -> np.ndarray:
    """The pixels of ``viewport`` the window shows (its backing store), the part not scrolled away."""
    shown = viewport.visibleRegion().boundingRect().translated(viewport.mapTo(window, QPoint(0, 0)))
    image = window.screen().grabWindow(window.winId()).toImage().convertToFormat(QImage.Format.Format_RGB32).copy(shown)
    return np.array(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine()).copy()


STALE_NETWORK = pytest.mark.xfail(strict=False, reason=(
    "known, not from the gate (the tree before it shows it too, 7 runs in 10): after these changes "
    "the training network diagram's links and unit pictures on screen can differ from a repaint "
    "of the same items (the region painted was the change's, the items' data the same)"))


@pytest.mark.parametrize("name", [pytest.param(name, marks=STALE_NETWORK) if name == "training" else name
                                  for name in PANELS])
def test_after_changes_every_plot_on_screen_is_what_a_fresh_paint_of_it_shows(qtbot, style, name):
    """Random changes on a panel of the main window, painted cell by cell over passes, then settled:
    no part of a plot keeps an old picture. Each plot on screen is compared with the same plot just
    repainted whole; a few pixels may differ where antialiased edges meet (a curve under a legend's
    frame), a stale part differs in thousands (a region lost between passes: 1.1 % of a view)."""
    from workbench.app import MainWindow
    from workbench.soak import random_changes

    window = MainWindow(style, name)
    qtbot.addWidget(window)
    window.show()
    panel = window.panel
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy(), timeout=10_000)
    rng = np.random.default_rng(7)
    for _ in range(12):
        panel.set_values(random_changes(panel.PARAMS, rng))
        QApplication.processEvents()
    qtbot.waitUntil(lambda: not panel.busy(), timeout=20_000)
    qtbot.wait(500)  # and what a panel redraws once changes stop (optimizers: antialiased paths after 150 ms)
    views = [view for view in panel.findChildren(pg.GraphicsView) if view.isVisible()]
    assert views
    for view in views:
        viewport = view.viewport()
        before = shown_on_screen(window, viewport)
        viewport.repaint()  # whole, now, outside the gate
        after = shown_on_screen(window, viewport)
        differing = (before != after).reshape(before.shape[0], -1, 4).any(axis=2).mean()
        assert differing < 0.005, (view.objectName() or type(view).__name__, differing)
