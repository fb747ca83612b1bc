"""A laptop's 1366 x 768 screen: the first window and a restored one fit its available geometry,
every panel stays inside it in both languages (a tall figure scrolls), and the notes pane folds away
(menu or splitter handle), remembered."""

import json
import os
import subprocess
import sys

from PySide6.QtCore import QRect, QSettings
from PySide6.QtWidgets import QScrollArea

from widgets.style import Style
from workbench import offscreen
from workbench.app import DEFAULT_WINDOW_SIZE, MainWindow, read_settings

LAPTOP = """
import json, sys
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from widgets.style import Style
from workbench.app import MainWindow
from workbench.i18n import set_language
from workbench.registry import PANELS

app = QApplication([])
area = app.primaryScreen().availableGeometry()
report = {"area": area.getRect(), "windows": {}}

def seen(window, key):
    app.processEvents()
    report["windows"][key] = {"frame": window.frameGeometry().getRect(), "inside": area.contains(window.frameGeometry()),
                              "figure": window.panel.figure.parentWidget().size().toTuple()}

restored = MainWindow(Style(), "optimizers", store=QSettings(sys.argv[1], QSettings.IniFormat))
restored.show()
seen(restored, "restored")
restored.close()
for lang in ("en", "zh_CN"):
    set_language(lang)
    window = MainWindow(Style(), "optimizers")
    window.show()
    for name in PANELS:
        window.show_panel(name)
        window.panel.compute_now()
        seen(window, f"{lang} {name}")
    for panel in window.panels.values():
        panel.retire()
    window.close()
print(json.dumps(report))
"""


def test_first_and_restored_windows_fit_a_1366x768_screen_with_every_panel(qtbot, tmp_path):
    big = MainWindow(Style(), "optimizers")  # saved on a desktop screen (1920 x 1080 here), larger than a laptop's
    qtbot.addWidget(big)
    big.setGeometry(300, 120, 1600, 940)
    ini = str(tmp_path / "settings.ini")
    store = QSettings(ini, QSettings.IniFormat)
    store.setValue("geometry", big.saveGeometry())
    store.sync()
    big.panel.retire()
    env = {**os.environ, "QT_QPA_PLATFORM": offscreen.platform(1366, 768), "WORKBENCH_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", LAPTOP, ini], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["area"] == [0, 0, 1366, 768]
    for key, window in report["windows"].items():
        assert window["inside"], (key, window["frame"])
        width, height = window["figure"]
        assert width >= 600 and height >= 600, (key, window["figure"])  # the figure keeps the room to be legible
    assert len(report["windows"]) == 1 + 2 * 8


def test_fit_to_screen_shrinks_and_moves_into_the_available_geometry(qtbot):
    window = MainWindow(Style(), "optimizers")
    qtbot.addWidget(window)
    assert (window.width(), window.height()) == DEFAULT_WINDOW_SIZE  # a desktop's screen: the default fits
    area = QRect(40, 30, 1326, 700)  # a laptop less a task bar on the left and a panel on top
    window.fit_to_screen(area)
    assert area.contains(window.frameGeometry()), window.frameGeometry()
    assert window.frameGeometry().size() == area.size()
    window.move(900, 500)  # half off the screen: moved back in, the size kept
    window.fit_to_screen(area)
    assert area.contains(window.frameGeometry()) and window.frameGeometry().size() == area.size()
    window.panel.retire()


def test_a_restored_oversized_geometry_fits_a_smaller_available_geometry(qtbot, store, monkeypatch):
    big = MainWindow(Style(), "optimizers")
    qtbot.addWidget(big)
    big.setGeometry(200, 100, 1700, 960)
    store.setValue("geometry", big.saveGeometry())
    area = QRect(0, 0, 1366, 728)
    monkeypatch.setattr(MainWindow, "available_area", lambda self: area)
    window = MainWindow(Style(), "optimizers", store=store)
    qtbot.addWidget(window)
    assert area.contains(window.frameGeometry()), window.frameGeometry()
    window.show()
    qtbot.wait(10)
    assert area.contains(window.frameGeometry()), window.frameGeometry()
    big.panel.retire()
    window.panel.retire()


def test_every_figure_scrolls_rather_than_making_the_window_taller(window):
    for name in ("floats", "training"):
        panel = window.show_panel(name)
        area = panel.figure.parentWidget().parentWidget()
        assert isinstance(area, QScrollArea) and area.widget() is panel.figure
        assert panel.minimumSizeHint().height() < 400  # the figure's own minimum does not reach the window


def test_notes_fold_at_the_splitter_handle_like_ctrl_n_and_are_remembered(qtbot, window, store):
    panel = window.panel
    assert window.notes_action.isChecked() and panel.notes.isVisible()
    splitter = panel.splitter
    splitter.moveSplitter(splitter.width(), 2)  # the handle between figure and notes dragged to the right edge
    assert not window.notes_action.isChecked() and not window.show_notes
    assert not panel.notes.isVisible()
    window.show_panel("floats")
    assert not window.panel.notes.isVisible()  # every panel, as Ctrl+N does
    window.show_panel("optimizers")
    window.notes_action.trigger()  # Ctrl+N: back, at its narrow width
    assert panel.notes.isVisible()
    qtbot.waitUntil(lambda: splitter.sizes()[2] >= panel.notes.minimumWidth())
    window.notes_action.trigger()
    window.close()
    assert read_settings(store)["notes"] is False
    again = MainWindow(Style(), "optimizers", store=store, show_notes=read_settings(store)["notes"])  # as the cli
    qtbot.addWidget(again)
    assert not again.notes_action.isChecked() and not again.panel.notes.isVisible()
    again.panel.retire()
