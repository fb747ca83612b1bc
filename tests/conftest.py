"""Test configuration: offscreen Qt, a private settings folder, English by default."""

import gc
import os
import sys
import tempfile

from workbench import offscreen, one_blas_thread  # Qt-free

one_blas_thread()  # as the app: before numpy loads its BLAS (the cards' training runs need its kernels)

os.environ["QT_QPA_PLATFORM"] = offscreen.platform()  # a desktop's screen: the window keeps its 1500 x 920
os.environ["WORKBENCH_CONFIG_DIR"] = tempfile.mkdtemp(prefix="workbench-test-config-")

import pytest  # noqa: E402

from workbench.i18n import set_language  # noqa: E402


@pytest.fixture(autouse=True)
def english():
    set_language("en")
    yield
    set_language("en")
    if "workbench.qt_translations" in sys.modules:  # Qt's own strings back in English too
        sys.modules["workbench.qt_translations"].apply_qt_language("en")


@pytest.fixture
def style():
    from widgets.style import Style
    return Style()


@pytest.fixture
def open_panel(qtbot, style):
    """open_panel(PanelClass, width, height): the panel shown at that size with its first result
    drawn; retired at teardown (never garbage-collected: see Panel.retire)."""
    opened = []

    def open_(cls, width, height):
        panel = cls(style)
        qtbot.addWidget(panel)
        panel.resize(width, height)
        panel.show()
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            panel.schedule()
        opened.append(panel)
        return panel
    yield open_
    for panel in opened:
        panel.retire()


@pytest.fixture
def store(tmp_path):
    """Settings in a private INI file."""
    from PySide6.QtCore import QSettings
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


@pytest.fixture
def window(qtbot, store, style):
    """The main window on the optimizers panel, its first result drawn."""
    from workbench.app import MainWindow
    window = MainWindow(style, "optimizers", store=store)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.panel.result is not None, timeout=10_000)
    return window


@pytest.fixture(autouse=True)
def earlier_widgets_collected():
    """Before each test, the widgets earlier tests closed are deleted and their Python objects
    collected: here, between tests, and not whenever the garbage collector happens to run, which
    can be in the middle of a later test's paint (a pyqtgraph item deleted there aborts the process
    with 'pure virtual method called')."""
    from PySide6.QtCore import QCoreApplication, QEvent
    if QCoreApplication.instance() is not None:
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        gc.collect()
    gc.freeze()  # what lives on is not scanned again: the next collection sees only this test's objects
    yield
