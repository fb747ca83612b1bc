"""Qt's own strings (standard buttons, file dialogs, message boxes) in the interface language.

The workbench's texts go through ``workbench.i18n.tr``; what Qt draws itself (OK, Cancel, File
name, Copy, ...) comes from Qt's catalogues, which PySide6 ships as ``qtbase_<lang>.qm`` in its
translations folder. ``apply_qt_language`` installs the one for the current language on the
application (and removes it again for English), so a language switched at run time reaches the
next dialog too. A missing catalogue leaves Qt's strings in English; nothing fails.

Native file dialogs (Windows, macOS, GTK and portal dialogs on Linux) follow the system's language
and ignore Qt's translator, so while the interface language differs from the system's, Qt draws its
own dialogs (``Qt.AA_DontUseNativeDialogs``) and they speak the interface language.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, Qt, QTranslator

CATALOGUES = ("qtbase", "qt")  # qtbase holds the widgets' strings; qt_<lang> is a meta catalogue of all modules

_installed: dict[str, object] = {"app": None, "language": "en", "translator": None}


def translation_folders() -> list[str]:
    """Where Qt's .qm files may be: Qt's own answer first, then PySide6's folders."""
    import PySide6

    package = Path(PySide6.__file__).parent
    folders = [QLibraryInfo.path(QLibraryInfo.TranslationsPath),
               str(package / "Qt" / "translations"), str(package / "translations")]
    return list(dict.fromkeys(f for f in folders if f and Path(f).is_dir()))


def load_translator(lang: str) -> QTranslator | None:
    """A translator holding Qt's strings for ``lang`` (e.g. zh_CN); None when none is found."""
    for catalogue in CATALOGUES:
        for folder in translation_folders():
            translator = QTranslator()
            if translator.load(f"{catalogue}_{lang}", folder):
                return translator
    return None


def system_ui_language() -> str:
    """zh_CN when the system's interface language is Chinese, else en (as native dialogs speak)."""
    languages = QLocale.system().uiLanguages() or [QLocale.system().name()]
    return "zh_CN" if languages[0].lower().replace("_", "-").startswith("zh") else "en"


def apply_qt_language(lang: str, app: QCoreApplication | None = None) -> bool:
    """Install Qt's translation for ``lang`` on ``app`` (default: the running application) in place
    of the previous one; English removes it. True when Qt's strings are now in ``lang``."""
    app = app or QCoreApplication.instance()
    if app is None:
        return False
    QCoreApplication.setAttribute(Qt.AA_DontUseNativeDialogs, lang != system_ui_language())
    if _installed["app"] is not app:  # a new application: nothing of ours is installed on it
        _installed.update(app=app, language="en", translator=None)
    if lang == _installed["language"]:
        return lang == "en" or _installed["translator"] is not None
    if _installed["translator"] is not None:
        app.removeTranslator(_installed["translator"])
    translator = load_translator(lang) if lang != "en" else None
    if translator is not None:
        app.installTranslator(translator)
    _installed.update(language=lang, translator=translator)  # kept referenced while installed
    return lang == "en" or translator is not None
