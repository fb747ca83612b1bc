"""Desktop conventions: Qt's own strings in the interface language, the entry points, the Linux
launcher entry and icon, the licence."""

import configparser
import shlex
import shutil
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QFileDialog, QMessageBox

from workbench import qt_translations
from workbench.i18n import set_language

ROOT = Path(__file__).resolve().parent.parent
DESKTOP = ROOT / "assets" / "dl-workbench.desktop"


# ---- Qt's own strings ---------------------------------------------------------------------------
def button_texts():
    """The texts of a fresh OK / Cancel button box and of a question box's standard buttons."""
    box = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
    message = QMessageBox(QMessageBox.Question, "t", "?", QMessageBox.Ok | QMessageBox.Cancel)
    texts = (box.button(QDialogButtonBox.Cancel).text(), message.button(QMessageBox.Cancel).text(),
             message.button(QMessageBox.Ok).text())
    box.deleteLater()
    message.deleteLater()
    return texts


def test_qtbase_chinese_catalogue_ships_with_pyside6():
    assert any((Path(folder) / "qtbase_zh_CN.qm").is_file() for folder in qt_translations.translation_folders())
    assert qt_translations.load_translator("zh_CN") is not None


def test_qt_buttons_follow_the_language_switched_at_run_time(window):
    assert button_texts() == ("Cancel", "Cancel", "OK")
    window.set_language("zh_CN")
    cancel, message_cancel, ok = button_texts()
    assert "取消" in cancel and "取消" in message_cancel and "确定" in ok
    window.set_style(theme="dark")  # a rebuild in the same language keeps one translator
    assert "取消" in button_texts()[0]
    window.set_language("en")
    assert button_texts() == ("Cancel", "Cancel", "OK")


def test_a_window_opened_in_chinese_has_chinese_qt_dialogs(qtbot, store, style):
    from workbench.app import MainWindow

    set_language("zh_CN")  # as the app does: the language first, then the window
    window = MainWindow(style, "activations", store=store)
    qtbot.addWidget(window)
    window.show()
    seen = {}

    def answer():  # the app's own Save scene dialog, as it opens it
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, answer)
            return
        box = dialog.findChild(QDialogButtonBox)
        seen["buttons"] = [b.text() for b in box.buttons()]
        seen["title"] = dialog.windowTitle()
        dialog.reject()
    QTimer.singleShot(0, answer)
    window.save_scene_dialog()
    assert seen["title"] == "保存场景"
    assert any("取消" in text for text in seen["buttons"]), seen["buttons"]
    for panel in window.panels.values():
        panel.retire()


def test_native_dialogs_only_while_they_speak_the_interface_language(window, monkeypatch):
    monkeypatch.setattr(qt_translations, "system_ui_language", lambda: "zh_CN")
    window.set_language("zh_CN")
    assert not QCoreApplication.testAttribute(Qt.AA_DontUseNativeDialogs)  # the system's own dialogs: Chinese
    window.set_language("en")
    assert QCoreApplication.testAttribute(Qt.AA_DontUseNativeDialogs)  # a native one would be Chinese
    monkeypatch.setattr(qt_translations, "system_ui_language", lambda: "en")
    window.set_language("zh_CN")
    assert QCoreApplication.testAttribute(Qt.AA_DontUseNativeDialogs)
    window.set_language("en")
    assert not QCoreApplication.testAttribute(Qt.AA_DontUseNativeDialogs)


def test_a_missing_qt_catalogue_leaves_qt_in_english(window, monkeypatch, tmp_path):
    monkeypatch.setattr(qt_translations, "translation_folders", lambda: [str(tmp_path)])
    window.set_language("zh_CN")  # no crash; the workbench's own texts are Chinese still
    assert window.windowTitle() == "深度学习工作台"
    assert button_texts()[0] == "Cancel"
    assert qt_translations.apply_qt_language("zh_CN") is False


# ---- entry points, launcher, icon, licence -------------------------------------------------------------
def scripts(group):
    return {e.name: e.value for e in metadata.entry_points(group=group)}


def test_workbench_is_a_console_script_and_workbench_gui_a_gui_script():
    assert scripts("console_scripts").get("workbench") == "workbench.cli:main"
    assert scripts("gui_scripts").get("workbench-gui") == "workbench.cli:main"
    assert "workbench" not in scripts("gui_scripts")


def installed(name):
    return shutil.which(name) or shutil.which(name, path=sysconfig.get_path("scripts"))


def test_desktop_entry_parses_and_launches_an_installed_script():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive: Name[zh_CN]
    entry.read(DESKTOP, encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    for key in ("Name", "Name[zh_CN]", "Comment", "Comment[zh_CN]", "Exec", "Icon", "Categories"):
        assert desktop.get(key, "").strip(), key
    assert any("\u4e00" <= c <= "\u9fff" for c in desktop["Name[zh_CN]"] + desktop["Comment[zh_CN]"])
    command = shlex.split(desktop["Exec"])[0]
    assert command == "workbench-gui" and command in scripts("gui_scripts")
    assert installed(command), f"{command} is not installed"
    assert desktop["Icon"] == "workbench"
    icon = ROOT / "assets" / "icons" / f"{desktop['Icon']}.svg"
    assert "<svg" in icon.read_text(encoding="utf-8")
    assert desktop.get("Terminal") == "false"
    assert desktop["Categories"].endswith(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed")
def test_desktop_entry_passes_desktop_file_validate():
    import subprocess

    result = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_desktop_entry_is_package_data():
    from importlib import resources

    assert resources.files("assets").joinpath(DESKTOP.name).is_file()


def test_licence_is_mit_shipped_and_named():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the deep-learning workbench authors" in text
    assert "WITHOUT WARRANTY OF ANY KIND" in text
    meta = metadata.metadata("dl-workbench")
    assert meta.get("License-Expression") == "MIT"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "LICENSE" in readme and "MIT" in readme
    assert "dl-workbench.desktop" in readme and "workbench-gui" in readme


@pytest.mark.parametrize("command", ["workbench", "workbench-gui"])
def test_both_commands_are_installed(command):
    assert installed(command), f"{command} is not on the PATH: pip install -e ."
