"""The main window: navigation, languages, themes, presentation, settings, scenes, export."""

import json
import os
import stat

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from workbench.app import read_settings
from workbench.i18n import language
from workbench.registry import PANELS
from workbench.scene import read_scene


def menu_texts(window):
    return [action.text() for action in window.menuBar().actions()]


def test_menus_and_status(window):
    assert menu_texts(window) == ["&File", "&View", "&Help"]
    assert window.nav.count() == len(PANELS) and window.nav.currentRow() == 0
    window.show_message("hello")
    assert window.statusBar().currentMessage() == "hello"


def test_language_switch_rebuilds_in_chinese_and_keeps_values(qtbot, window):
    window.panel.set_values({"adam_lr": 0.2})
    window.set_language("zh_CN")
    assert language() == "zh_CN"
    assert menu_texts(window) == ["文件(&F)", "视图(&V)", "帮助(&H)"]
    assert window.panel.values["adam_lr"] == 0.2
    assert window.panel.controls["adam_lr"].label.text() == "学习率 lr"
    assert window.windowTitle() == "深度学习工作台"
    assert "优化器" in window.nav.item(0).text()
    qtbot.waitUntil(lambda: window.panel.result is not None, timeout=10_000)


def test_theme_presentation_and_font_scale(qtbot, window):
    window.set_style(theme="dark")
    assert window.panel.style_.dark
    assert QApplication.instance().palette().window().color().name() == "#26272b"
    window.set_style(presentation=True)
    assert window.panel.style_.presentation and window.panel.style_.line_width == 4.0
    assert window.panel.paths["adam"].opts["pen"].widthF() == 4.0
    before = window.style_.font_scale
    window.step_font(+1)
    assert window.style_.font_scale > before
    window.step_font(-1)
    assert window.style_.font_scale == before
    window.set_style(presentation=False)


def test_settings_persist_and_corrupt_settings_fall_back(qtbot, window, store):
    window.set_style(theme="dark")
    window.set_language("zh_CN")
    window.close()
    stored = read_settings(store)
    assert stored["theme"] == "dark" and stored["language"] == "zh_CN" and stored["panel"] == "optimizers"
    store.setValue("theme", "purple")
    store.setValue("font_scale", "huge")
    store.setValue("panel", 42)
    store.setValue("geometry", "garbage")
    stored = read_settings(store)
    assert stored["theme"] == "light" and stored["font_scale"] == 1.0 and stored["panel"] == "optimizers"
    assert stored["geometry"] is None


def test_scene_round_trip(qtbot, window, tmp_path):
    window.panel.set_values({"surface": "saddle", "adam_lr": 0.3})
    path = tmp_path / "scene.json"
    assert window.save_scene(str(path))
    panel, params = read_scene(path)
    assert panel == "optimizers" and params["adam_lr"] == 0.3
    window.panel.reset()
    assert window.panel.values["surface"] == "rosenbrock"
    assert window.open_scene(str(path))
    assert window.panel.values["surface"] == "saddle" and window.panel.values["adam_lr"] == 0.3
    assert window.panel.controls["surface"].combo.currentData() == "saddle"


BAD_SCENES = {
    "corrupt.json": ("{not json", "not valid JSON"),
    "newer.json": ({"format": "dl-workbench-scene", "version": 99, "panel": "optimizers", "params": {}}, "newer"),
    "unknown_key.json": ({"format": "dl-workbench-scene", "version": 1, "panel": "optimizers", "params": {"foo": 1}},
                         "foo: unknown parameter"),
    "wrong_type.json": ({"format": "dl-workbench-scene", "version": 1, "panel": "optimizers",
                         "params": {"adam_lr": "fast", "steps": 1e9}}, "adam_lr"),
    "nan.json": ('{"format": "dl-workbench-scene", "version": 1, "panel": "optimizers", "params": {"adam_lr": NaN}}',
                 "NaN"),
    "panel.json": ({"format": "dl-workbench-scene", "version": 1, "panel": "nope", "params": {}}, "unknown panel"),
    "list.json": ([1, 2], "JSON object"),
}


@pytest.mark.parametrize("name", list(BAD_SCENES))
def test_bad_scenes_are_refused_whole(window, tmp_path, name):
    content, expected = BAD_SCENES[name]
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    window.panel.set_values({"adam_lr": 0.07})
    before = dict(window.panel.values)
    assert not window.open_scene(str(path))
    assert window.panel.values == before
    assert expected in window.statusBar().currentMessage()


def test_wrong_type_lists_every_problem(window, tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"format": "dl-workbench-scene", "version": 1, "panel": "optimizers",
                                "params": {"adam_lr": "fast", "steps": 1e9}}))
    window.open_scene(str(path))
    message = window.statusBar().currentMessage()
    assert "adam_lr" in message and "steps" in message


def test_export_png_at_2x_svg_and_data(window, tmp_path):
    figure = window.panel.figure
    assert window.export(str(tmp_path / "a.png"), "png", 2)
    image = QImage(str(tmp_path / "a.png"))
    assert image.width() == 2 * figure.width() and image.height() > 2 * figure.height()  # + caption
    assert window.export(str(tmp_path / "a.svg"), "svg")
    import xml.etree.ElementTree as ET
    root = ET.parse(tmp_path / "a.svg").getroot()
    tags = {element.tag.split("}")[-1] for element in root.iter()}
    assert {"path", "image"} <= tags or "path" in tags
    assert "Optimizers" in (tmp_path / "a.svg").read_text()
    assert window.export(str(tmp_path / "a.json"), "data")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["panel"] == "optimizers" and len(data["result"]["traces"]["adam"]["points"]) == 501


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_export_to_unwritable_path_is_a_message_nonroot(window, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    assert not window.export(str(folder / "x.png"), "png")


def test_export_to_missing_folder_is_a_message(window, tmp_path):
    assert not window.export(str(tmp_path / "missing" / "x.png"), "png")
    assert "Could not export" in window.statusBar().currentMessage()
    assert not window.save_scene(str(tmp_path / "missing" / "x.json"))


def test_copy_image_to_clipboard(window):
    window.copy_image()
    image = QApplication.clipboard().image()
    assert image.width() >= window.panel.figure.width()


def test_ctrl_1_and_reset_shortcut(qtbot, window):
    window.panel.set_values({"adam_lr": 0.3})
    qtbot.keyClick(window, Qt.Key_R, Qt.ControlModifier)
    assert window.panel.values["adam_lr"] == window.panel.PARAMS["adam_lr"].default
    qtbot.keyClick(window, Qt.Key_1, Qt.ControlModifier)
    assert window.current == "optimizers"


def test_ctrl_2_opens_the_second_panel(qtbot, window):
    qtbot.keyClick(window, Qt.Key_2, Qt.ControlModifier)
    assert window.current == list(PANELS)[1] and window.nav.currentRow() == 1
    qtbot.waitUntil(lambda: window.panel.result is not None, timeout=10_000)


def test_app_icon_is_packaged_and_loads(qapp):
    from workbench.cli import _app_icon

    icon = _app_icon()
    assert not icon.isNull()
    assert not icon.pixmap(32, 32).isNull()


def test_titles_come_from_the_registry_as_the_classes_declare_them():
    from workbench.registry import TITLES, panel_class
    assert list(TITLES) == list(PANELS)
    for name in PANELS:
        cls = panel_class(name)
        assert TITLES[name] == (cls.TITLE_EN, cls.TITLE_ZH)


def test_only_the_panel_shown_is_imported_at_start(tmp_path):
    """Start-up pays for the first panel only: the navigation and the View menu name the others
    from the registry."""
    import subprocess
    import sys
    script = """
import sys
from PySide6.QtWidgets import QApplication
from widgets.style import Style
from workbench.app import MainWindow
app = QApplication([])
window = MainWindow(Style(), "optimizers")
window.show()
app.processEvents()
print(" ".join(sorted(m for m in sys.modules if m.startswith("widgets."))))
"""
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(done.stdout.split())
    assert "widgets.optimizers" in loaded
    assert not loaded & {f"widgets.{name}" for name in PANELS if name != "optimizers"}, loaded


def test_a_window_a_script_leaves_undeleted_is_deleted_at_exit_before_pyside_cleans_up(tmp_path):
    """PySide6's own clean-up at exit deletes what Python owns in no set order (a plot item before
    its window could crash the process); workbench.app deletes its main windows first. The script's
    own exit hook, registered between PySide6's and workbench.app's, runs between the two."""
    import subprocess
    import sys
    script = """
import atexit, shiboken6
from PySide6.QtWidgets import QApplication
atexit.register(lambda: print("at exit, window alive:", shiboken6.isValid(window), "panel retired:", window.panel in RETIRED))
from widgets.panel import RETIRED
from widgets.style import Style
from workbench.app import MainWindow
app = QApplication([])
window = MainWindow(Style(), "optimizers")
window.show()
window.show_panel("activations")
app.processEvents()
"""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "WORKBENCH_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "at exit, window alive: False panel retired: True"


def test_free_memory_goes_back_to_the_os_once_the_window_is_idle(qtbot, window, monkeypatch):
    """Every draw (re)starts a single-shot wait of IDLE_HAND_BACK_MS; when it runs out, glibc's free
    pages go back to the OS."""
    from workbench import app
    calls = []
    monkeypatch.setattr(app, "hand_back_freed_memory", lambda: calls.append(True))
    assert window.idle.interval() == app.IDLE_HAND_BACK_MS and window.idle.isSingleShot()
    window.idle.stop()
    assert window.panel.set_values({"start_x": -1.0})  # a real draw starts the wait
    qtbot.waitUntil(lambda: window.idle.isActive(), timeout=10_000)
    window.idle.setInterval(60_000)  # restarts it
    qtbot.wait(1500)
    before = window.idle.remainingTime()
    window.panel.drawn.emit()  # as every draw: the wait starts again, whole
    assert window.idle.remainingTime() > before + 500  # (a coarse timer: its remaining time is within 5%)
    assert calls == []
    window.idle.setInterval(50)
    qtbot.waitUntil(lambda: len(calls) >= 1, timeout=10_000)


def test_the_window_gathers_the_scenes_of_the_plots_on_show_before_it_repaints(qtbot, window):
    """widgets.repaint.RepaintGate sits on the main window; its scenes are those of the visible plots
    of the panel on show (looked up again at a panel switch)."""
    import pyqtgraph as pg

    def visible_views(panel):
        return [view for view in panel.findChildren(pg.GraphicsView) if view.isVisible()]

    assert window.repaint_gate.window is window
    assert window.views_on_show() == visible_views(window.panel) != []
    panel = window.show_panel("transformer")
    qtbot.waitUntil(lambda: panel.result is not None and not panel.busy(), timeout=10_000)
    hidden = [view for view in panel.findChildren(pg.GraphicsView) if not view.isVisible()]
    qtbot.waitUntil(lambda: window.views_on_show() == visible_views(panel) != [], timeout=3_000)  # pages built since: within SCENES_LOOKUP_S
    assert not {id(view) for view in hidden} & {id(view) for view in window.views_on_show()}


def test_the_first_status_message_leaves_the_panels_where_they_are(qtbot, style):
    """The status bar is there from the start: a first message neither shrinks nor repaints the panel."""
    from workbench.app import MainWindow
    window = MainWindow(style, "training")
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.panel.result is not None, timeout=10_000)
    before = window.centralWidget().geometry()
    window.show_message("a first message")
    QApplication.processEvents()
    assert window.statusBar().isVisible() and window.centralWidget().geometry() == before


def test_plots_without_a_context_menu_never_build_one(qtbot, style, monkeypatch):
    """pyqtgraph builds a view box's menu (a QMenu of ~20 widgets, ~6 ms a plot here) unless told not
    to at construction; disabling it afterwards deletes it again, and deleting menus is where PySide6
    has crashed (pyqtgraph/pyqtgraph#2520)."""
    import sys

    import pyqtgraph as pg

    from workbench.app import MainWindow
    viewbox_module = sys.modules["pyqtgraph.graphicsItems.ViewBox.ViewBox"]
    built = []

    class CountedMenu(viewbox_module.ViewBoxMenu):
        def __init__(self, view):
            built.append(view)
            super().__init__(view)
    monkeypatch.setattr(viewbox_module, "ViewBoxMenu", CountedMenu)
    window = MainWindow(style, "optimizers")
    qtbot.addWidget(window)
    without = 0
    for name in PANELS:
        panel = window.show_panel(name)
        boxes = [item for view in panel.findChildren(pg.GraphicsView) for item in view.scene().items()
                 if isinstance(item, pg.ViewBox) and not isinstance(item.parentItem(), pg.ColorBarItem)]  # pyqtgraph's own
        kept = {id(box) for box in boxes if box.menuEnabled()}
        assert {id(box) for box in built if box in boxes} == kept, name
        without += len(boxes) - len(kept)
    assert without >= 20  # the plots of the panels (floats builds its pages when first shown)
    for panel in window.panels.values():
        panel.retire()
