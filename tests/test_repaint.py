"""RepaintGate: a change that redraws several plots and relays out the figure repaints each plot
once, after the layout, and the window shows what an ungated one shows; past its paint budget a
repaint leaves the plots still to come for the next pass."""

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication, QLabel, QVBoxLayout, QWidget

from widgets.repaint import RepaintGate


class PaintCounter(QObject):
    def __init__(self, widgets):
        super().__init__()
        self.counts = {widget: 0 for widget in widgets}
        for widget in widgets:
            widget.installEventFilter(self)

    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint:
            self.counts[watched] += 1
        return False

    def reset(self):
        self.counts = dict.fromkeys(self.counts, 0)


def figure(qtbot, gated: bool, budget_ms: float = 1e9):
    """A label above three plots (three scenes), shown and settled."""
    window = QWidget()
    layout = QVBoxLayout(window)
    label = QLabel("a note above the plots")
    layout.addWidget(label)
    plots = [pg.PlotWidget() for _ in range(3)]
    for plot in plots:
        plot.setRange(xRange=(0, 2), yRange=(0, 3), padding=0)
        plot.disableAutoRange()
        layout.addWidget(plot)
    curves = [plot.plot([0, 1], [0, 1], pen=pg.mkPen("y", width=2)) for plot in plots]
    window.painted = PaintCounter([plot.viewport() for plot in plots])  # before the gate: counts the paints it lets through
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
        for _ in range(4):
            QApplication.processEvents()
        assert list(counter.counts.values()) == [1, 1, 1], k  # each painted once: a plot waits one pass at most
        assert np.array_equal(screen_image(window), screen_image(plain[0])), k
    counter.reset()
    change(label, curves, 5)  # every plot moves: none keeps its old picture
    QApplication.processEvents()
    assert list(counter.counts.values()) == [1, 1, 1]
