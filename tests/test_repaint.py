"""RepaintGate: a change that redraws several plots and relays out the figure repaints each plot
once, after the layout, and the window shows what an ungated one shows."""

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


def figure(qtbot, gated: bool):
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
    if gated:
        RepaintGate(window, lambda: [plot.scene() for plot in plots])
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
    counters = [PaintCounter([plot.viewport() for plot in plots]) for _, _, plots, _ in (gated, plain)]
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


def test_a_scene_deleted_since_it_was_listed_is_passed_over(qtbot):
    import shiboken6

    window, label, plots, curves = figure(qtbot, gated=False)
    gone = pg.PlotWidget()
    stale = gone.scene()
    shiboken6.delete(gone)
    RepaintGate(window, lambda: [stale, *(plot.scene() for plot in plots)])
    counter = PaintCounter([plot.viewport() for plot in plots])
    change(label, curves, 1)
    QApplication.processEvents()  # an exception in the filter would fail the test (pytest-qt)
    assert list(counter.counts.values()) == [1, 1, 1]
