"""The main window: panel navigation, menus, status bar, settings, scenes and export."""

from __future__ import annotations

import atexit
import html
import json
import os
import platform
import time
import weakref
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pyqtgraph as pg
import PySide6
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QRect, QSettings, QStandardPaths, Qt, QTimer, QUrl
from PySide6.QtGui import QAction, QActionGroup, QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QFileDialog, QHBoxLayout, QLabel, QListWidget, QMainWindow,
                               QMessageBox, QStackedWidget, QWidget)

from widgets.panel import Panel
from widgets.render import ImageTooLarge, render_image, save_pdf, save_png, save_svg
from widgets.repaint import RepaintGate
from widgets.style import THEMES, Style
from workbench import __version__
from workbench.cli import hand_back_freed_memory
from workbench.export_data import save_data
from workbench.i18n import LANGUAGES, language, set_language, tr
from workbench.params import ParamError, brief
from workbench.qt_translations import apply_qt_language
from workbench.registry import PANELS, panel_class, panel_title
from workbench.scene import SceneError, read_scene, save_scene, write_atomic

FONT_SCALES = (0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0)
DEFAULT_WINDOW_SIZE = (1500, 920)  # without stored (or with unusable) geometry
SCENES_LOOKUP_S = 0.5  # a panel's plots are looked up again at most this often (see MainWindow.views_on_show)
IDLE_HAND_BACK_MS = 2000  # after the last draw: free memory glibc holds goes back to the OS (cli.hand_back_freed_memory)


def settings_store() -> QSettings:
    """Settings in an INI file (WORKBENCH_CONFIG_DIR overrides the folder, e.g. for tests)."""
    folder = os.environ.get("WORKBENCH_CONFIG_DIR") or QStandardPaths.writableLocation(
        QStandardPaths.AppConfigLocation) or str(Path.home() / ".config" / "dl-workbench")
    return QSettings(str(Path(folder) / "settings.ini"), QSettings.IniFormat)


def read_settings(store: QSettings) -> dict[str, Any]:
    """Stored preferences, each checked; anything corrupt falls back to its default."""
    def get(key, ok, default):
        try:
            value = store.value(key, default)
        except Exception:
            return default
        return value if ok(value) else default
    scale = get("font_scale", lambda v: _float(v) in FONT_SCALES, 1.0)
    return {
        "panel": get("panel", lambda v: v in PANELS, next(iter(PANELS))),
        "theme": get("theme", lambda v: v in THEMES, "light"),
        "language": get("language", lambda v: v in LANGUAGES, None),
        "font_scale": _float(scale),
        "geometry": get("geometry", lambda v: hasattr(v, "size"), None),
        "notes": get("notes", lambda v: str(v).lower() in ("true", "false"), "true") in (True, "true"),
    }


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


LIVE_WINDOWS: "weakref.WeakSet[MainWindow]" = weakref.WeakSet()


def delete_windows_left_at_exit() -> None:
    """Delete the main windows a script (a test, a notebook) left undeleted, before PySide6's own
    clean-up does: atexit runs the last registered first, and PySide6 registered its clean-up when
    it was imported, before this module. That clean-up deletes every Qt object Python owns in no set
    order; a plot item deleted before its window then calls back into Python from half-deleted
    parts and the process crashed as it exited (SIGSEGV after the laptop-screen test's last line)."""
    if QCoreApplication.instance() is None:  # the script deleted it: its windows went with it
        return
    windows = [window for window in LIVE_WINDOWS if shiboken6.isValid(window)]
    for window in windows:
        for panel in window.panels.values():
            panel.retire()
        window.deleteLater()
    if windows:
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


atexit.register(delete_windows_left_at_exit)


class MainWindow(QMainWindow):
    """Sidebar of panels, a stack of panel widgets (created on first visit), menus."""

    def __init__(self, style: Style, panel: str, values: Mapping[str, Mapping[str, Any]] | None = None,
                 store: QSettings | None = None, show_notes: bool = True):
        super().__init__()
        LIVE_WINDOWS.add(self)
        self.setObjectName("main_window")
        self.style_ = style
        self.store = store
        self.show_notes = show_notes and not style.presentation  # a projector needs the room for the figure
        self.saved_values: dict[str, dict[str, Any]] = {k: dict(v) for k, v in (values or {}).items()}
        self.panels: dict[str, Panel] = {}
        self.idle = QTimer(self, singleShot=True, interval=IDLE_HAND_BACK_MS)  # restarted by every draw
        self.idle.timeout.connect(lambda: hand_back_freed_memory())  # looked up when called (tests replace it)
        self.current = panel
        self.caption_on_export = True
        self.questions = None  # the Questions window, made on first use
        self.nav = QListWidget()
        self.nav.setObjectName("navigation")
        self.stack = QStackedWidget()
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.nav)
        row.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.statusBar()  # there from the start: the first message does not shrink (and repaint) every panel
        self.nav.currentRowChanged.connect(lambda row: self.show_panel(list(PANELS)[row]))
        self.repaint_gate = RepaintGate(self, self.views_on_show)
        self.rebuild()
        geometry = read_settings(self.store)["geometry"] if self.store is not None else None
        restored = geometry is not None and self.restoreGeometry(geometry)
        if not restored or self.size() != self.size().expandedTo(self.minimumSizeHint()):
            self.resize(*DEFAULT_WINDOW_SIZE)  # none stored, or junk (refused, or smaller than the window can be)
        self.fit_to_screen()  # a laptop's 1366 x 768, or a geometry saved on a larger (or a missing) screen

    def views_on_show(self) -> list:
        """The plots on show (those a change redraws). The panel's plots are looked up again at a
        panel switch and, at most every SCENES_LOOKUP_S, after a finished draw (a look-up walks
        every widget of the panel, ~0.5 ms; a page built since is gathered from then on, until
        then Qt repaints its plots on their own)."""
        panel = self.stack.currentWidget()
        if panel is not self._views_of or (self._views_stale and time.monotonic() - self._views_at >= SCENES_LOOKUP_S):
            self._views = panel.findChildren(pg.GraphicsView) if panel is not None else []
            self._views_of, self._views_at, self._views_stale = panel, time.monotonic(), False
        shown = []
        for view in self._views:
            try:
                if view.isVisible():  # a page not shown has nothing to paint
                    shown.append(view)
            except RuntimeError:  # deleted (a page rebuilt): found again at the next look-up
                self._views_stale = True
        return shown

    def forget_scenes(self) -> None:
        self._views_stale = True

    _views: list = []
    _views_of = None
    _views_at = 0.0
    _views_stale = False

    # ---- the window on its screen ------------------------------------------------------------
    def available_area(self) -> QRect:
        """The available geometry (the desktop less task bars and docks) of the screen the window is
        on, or would be on: the one under its centre, else its own, else the primary screen."""
        screen = (QGuiApplication.screenAt(self.geometry().center()) or self.screen()
                  or QGuiApplication.primaryScreen())
        return screen.availableGeometry() if screen is not None else QRect()

    def fit_to_screen(self, area: QRect | None = None) -> None:
        """Shrink and move the window so that it, with its frame once the window manager has given
        it one, lies inside ``area`` (default: :meth:`available_area`), never below the smallest
        size the window can take. A window that fits stays where it is; a maximised or full-screen
        one is the window manager's."""
        area = self.available_area() if area is None else area
        if area.isEmpty() or self.windowState() & (Qt.WindowMaximized | Qt.WindowFullScreen):
            return
        frame, inner = self.frameGeometry(), self.geometry()
        margin_w, margin_h = frame.width() - inner.width(), frame.height() - inner.height()
        smallest = self.minimumSizeHint().expandedTo(self.minimumSize())
        width = max(min(self.width(), area.width() - margin_w), smallest.width())
        height = max(min(self.height(), area.height() - margin_h), smallest.height())
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        frame = self.frameGeometry()
        x = max(min(frame.left(), area.left() + area.width() - frame.width()), area.left())
        y = max(min(frame.top(), area.top() + area.height() - frame.height()), area.top())
        if (x, y) != (frame.left(), frame.top()):
            self.move(x, y)  # the frame's corner: the title bar and the menus stay on the screen

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once:  # once more when the window manager has framed it (title bar, borders)
            self._shown_once = True
            QTimer.singleShot(0, self, self.fit_to_screen)

    _shown_once = False

    # ---- building ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        """(Re)create texts, menus and panels for the current language and style; values are kept."""
        for name, panel in self.panels.items():
            self.saved_values[name] = dict(panel.values)
            self.stack.removeWidget(panel)
            panel.retire()
            panel.deleteLater()
        self.panels = {}
        reopen = self.questions is not None and self.questions.isVisible()
        reviewing = reopen and self.questions.tabs.currentWidget() is self.questions.review
        if self.questions is not None:  # made again, in the new language, when next asked for
            self.questions.close()
            self.questions.deleteLater()
            self.questions = None
        self.setWindowTitle(tr("Deep-learning workbench"))
        app = QApplication.instance()
        apply_qt_language(language(), app)  # Qt's own buttons and dialogs in the same language
        self.style_.apply_to_app(app)
        pg.setConfigOptions(antialias=True, background=self.style_.background, foreground=self.style_.foreground)
        self.nav.blockSignals(True)
        self.nav.clear()
        for index, name in enumerate(PANELS):
            self.nav.addItem(f"{index + 1}  {panel_title(name)}")
        self.nav.setFont(self.style_.font(1.1))
        self.nav.setFixedWidth(int(self.style_.point_size * 14))
        self.nav.setVisible(not self.style_.presentation)  # Ctrl+1..6 and View still switch panels
        self.nav.blockSignals(False)
        self._build_menus()
        self.show_panel(self.current)
        if reopen:
            self.show_review() if reviewing else self.show_questions()

    def _action(self, menu, text: str, slot, shortcut=None, checkable=False, checked=False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if checkable:
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        bar.clear()
        file = bar.addMenu(tr("&File"))
        self._action(file, tr("Open scene…"), self.open_scene_dialog, QKeySequence.Open)
        self._action(file, tr("Save scene…"), self.save_scene_dialog, QKeySequence.Save)
        file.addSeparator()
        for scale in (1, 2, 3):
            self._action(file, tr("Export PNG at {scale}x…").format(scale=scale),
                         lambda _=False, s=scale: self.export_png_dialog(s), "Ctrl+E" if scale == 2 else None)
        self._action(file, tr("Export SVG…"), self.export_svg_dialog)
        self._action(file, tr("Export PDF…"), self.export_pdf_dialog)
        self._action(file, tr("Export data (JSON)…"), self.export_data_dialog)
        self.script_action = self._action(file, tr("Export as PyTorch script…"), self.export_script_dialog)
        self._action(file, tr("Export animation…"), self.export_animation_dialog)
        self._action(file, tr("Copy image"), self.copy_image, "Ctrl+Shift+C")
        self._action(file, tr("Caption on exported images"), self._set_caption, checkable=True,
                     checked=self.caption_on_export)
        file.addSeparator()
        self._action(file, tr("Quit"), self.close, QKeySequence.Quit)

        view = bar.addMenu(tr("&View"))
        for index, name in enumerate(PANELS):
            self._action(view, panel_title(name), lambda _=False, n=name: self.show_panel(n),
                         f"Ctrl+{index + 1}")
        view.addSeparator()
        self._action(view, tr("Questions…"), self.show_questions, "Ctrl+K")
        self._action(view, tr("Review due cards…"), self.show_review, "Ctrl+Shift+K")
        self._action(view, tr("Reset parameters"), lambda: self.panel.reset(), "Ctrl+R")
        self.notes_action = self._action(view, tr("Show notes"), self._set_notes, "Ctrl+N", checkable=True,
                                         checked=self.show_notes)  # kept with the settings
        view.addSeparator()
        languages = view.addMenu(tr("Language"))
        group = QActionGroup(self)
        for code, label in LANGUAGES.items():
            action = self._action(languages, label, lambda on, c=code: on and self.set_language(c),
                                  checkable=True, checked=code == language())
            group.addAction(action)
        themes = view.addMenu(tr("Theme"))
        group = QActionGroup(self)
        for theme, label in (("light", tr("Light")), ("dark", tr("Dark"))):
            action = self._action(themes, label, lambda on, t=theme: on and self.set_style(theme=t),
                                  checkable=True, checked=theme == self.style_.theme)
            group.addAction(action)
        self._action(view, tr("Presentation mode"), lambda on: self.set_style(presentation=on), "F11",
                     checkable=True, checked=self.style_.presentation)
        self._action(view, tr("Larger text"), lambda: self.step_font(+1), "Ctrl+=")
        self._action(view, tr("Smaller text"), lambda: self.step_font(-1), "Ctrl+-")

        help_menu = bar.addMenu(tr("&Help"))
        self._action(help_menu, tr("Notes for this panel"), lambda: self.notes_action.setChecked(True), "F1")
        self._action(help_menu, tr("About"), self.about)

    # ---- navigation and state -------------------------------------------------------------------
    @property
    def panel(self) -> Panel:
        return self.panels[self.current]

    def show_panel(self, name: str) -> Panel:
        if name not in self.panels:
            panel = panel_class(name)(self.style_, self.saved_values.get(name))
            panel.message.connect(self.show_message)
            panel.drawn.connect(self.idle.start)
            panel.drawn.connect(self.forget_scenes)  # its pages may have changed
            panel.set_notes_visible(self.show_notes)
            panel.notes_closed.connect(lambda: self.notes_action.setChecked(False))  # dragged shut: as Ctrl+N
            panel.figure.setFocusPolicy(Qt.ClickFocus)
            copy = QShortcut(QKeySequence.Copy, panel.figure)
            copy.setContext(Qt.WidgetWithChildrenShortcut)
            copy.activated.connect(self.copy_image)
            self.panels[name] = panel
            self.stack.addWidget(panel)
            panel.schedule()
        self.current = name
        self.stack.setCurrentWidget(self.panels[name])
        self.script_action.setEnabled(hasattr(self.panels[name], "export_script"))
        self.nav.blockSignals(True)
        self.nav.setCurrentRow(list(PANELS).index(name))
        self.nav.blockSignals(False)
        return self.panels[name]

    def show_message(self, text: str, is_error: bool = False) -> None:
        self.statusBar().setStyleSheet(f"color: {self.style_.error};" if is_error else "")
        self.statusBar().showMessage(text, 0 if is_error else 6000)

    def set_language(self, lang: str) -> None:
        if lang != language():
            set_language(lang)
            self.rebuild()

    def set_style(self, **changes) -> None:
        style = Style(**{**self.style_.__dict__, **changes})
        if style != self.style_:
            self.style_ = style
            if "presentation" in changes:
                self.show_notes = not style.presentation
                self.showFullScreen() if style.presentation else self.showNormal()
            self.rebuild()

    def step_font(self, direction: int) -> None:
        index = min(range(len(FONT_SCALES)), key=lambda i: abs(FONT_SCALES[i] - self.style_.font_scale))
        index = min(max(index + direction, 0), len(FONT_SCALES) - 1)
        self.set_style(font_scale=FONT_SCALES[index])

    def _set_notes(self, visible: bool) -> None:
        self.show_notes = visible
        for panel in self.panels.values():
            panel.set_notes_visible(visible)

    def _set_caption(self, on: bool) -> None:
        self.caption_on_export = on

    def closeEvent(self, event) -> None:
        if self.store is not None:
            self.store.setValue("geometry", self.saveGeometry())
            self.store.setValue("panel", self.current)
            self.store.setValue("theme", self.style_.theme)
            self.store.setValue("language", language())
            self.store.setValue("font_scale", self.style_.font_scale)
            self.store.setValue("notes", "true" if self.show_notes else "false")
            self.store.sync()
        for panel in self.panels.values():
            panel.retire()
        super().closeEvent(event)

    def about(self) -> None:
        import sys
        text = tr("Deep-learning workbench {version}").format(version=__version__) + "<br><br>" + "<br>".join([
            f"Python {platform.python_version()}", f"PySide6 {PySide6.__version__}", f"pyqtgraph {pg.__version__}",
            f"numpy {np.__version__}",
            f"torch {sys.modules['torch'].__version__}" if "torch" in sys.modules else tr("torch: not loaded yet"),
        ])
        QMessageBox.about(self, tr("About"), text)

    # ---- scenes -----------------------------------------------------------------------------
    def open_scene(self, path: str) -> bool:
        """Load a scene; every problem is reported and nothing is applied unless all is well."""
        try:
            name, raw = read_scene(path)
            if name not in PANELS:
                raise SceneError(tr("scene {path}: unknown panel {panel} (known: {known})").format(
                    path=path, panel=brief(name), known=", ".join(PANELS)))
            values = panel_class(name).PARAMS.resolve(raw)
        except (SceneError, ParamError) as error:
            self.show_message(str(error), True)
            return False
        panel = self.show_panel(name)
        panel.scene_loaded()
        panel.set_all(values)
        self.show_message(tr("Opened scene {path}").format(path=path))
        return True

    def save_scene(self, path: str) -> bool:
        try:
            save_scene(path, self.current, self.panel.values)
        except OSError as error:
            self.show_message(tr("Could not save {path}: {error}").format(path=path, error=error.strerror or error), True)
            return False
        self.show_message(tr("Saved scene {path}").format(path=path))
        return True

    def open_scene_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Open scene"), "", tr("Scenes (*.json)"))
        if path:
            self.open_scene(path)

    def save_scene_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("Save scene"), f"{self.current}.json", tr("Scenes (*.json)"))
        if path:
            self.save_scene(path)

    # ---- export -----------------------------------------------------------------------------
    def _caption(self) -> str:
        return self.panel.caption() if self.caption_on_export else ""

    def export(self, path: str, kind: str, scale: int = 2) -> bool:
        """kind: png | svg | pdf | data. A failure is reported in the status bar."""
        panel = self.panel

        def write() -> str:
            if kind == "png":
                save_png(panel.figure, path, self.style_, scale, self._caption())
            elif kind == "svg":
                save_svg(panel.figure, path, self.style_, panel.title(), self._caption())
            elif kind == "pdf":
                save_pdf(panel.figure, path, self.style_, panel.title(), self._caption())
            else:
                save_data(path, self.current, panel.values, panel.data_result())
            return path
        return self._exported(path, write)

    def _exported(self, target: str, write) -> bool:
        """Run ``write`` (it returns the path written) and say in the status bar what came of it."""
        try:
            path = write()
        except (OSError, ParamError, ImageTooLarge) as error:
            self.show_message(tr("Could not export to {path}: {error}").format(
                path=target, error=getattr(error, "strerror", None) or error), True)
            return False
        self.show_message(tr("Exported {path}").format(path=path))
        return True

    def _export_dialog(self, kind: str, suffix: str, pattern: str, scale: int = 2) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("Export"), f"{self.current}.{suffix}", pattern)
        if path:
            self.export(path, kind, scale)

    def export_png_dialog(self, scale: int) -> None:
        self._export_dialog("png", "png", tr("PNG images (*.png)"), scale)

    def export_svg_dialog(self) -> None:
        self._export_dialog("svg", "svg", tr("SVG images (*.svg)"))

    def export_pdf_dialog(self) -> None:
        self._export_dialog("pdf", "pdf", tr("PDF documents (*.pdf)"))

    def export_data_dialog(self) -> None:
        self._export_dialog("data", "json", tr("JSON data (*.json)"))

    def export_script(self, path: str) -> bool:
        """The current panel's run as a standalone PyTorch script (panels that train have one)."""
        panel = self.panel
        return self._exported(path, lambda: write_atomic(path, panel.export_script().encode("utf-8")) or path)

    def export_script_dialog(self) -> None:
        if not hasattr(self.panel, "export_script"):
            return
        path, _ = QFileDialog.getSaveFileName(self, tr("Export as PyTorch script…"), f"{self.current}.py",
                                              tr("Python scripts (*.py)"))
        if path:
            self.export_script(path)

    def copy_image(self) -> None:
        try:
            image = render_image(self.panel.figure, self.style_, 2, self._caption())
        except ImageTooLarge as error:
            self.show_message(str(error), True)
            return
        QApplication.clipboard().setImage(image)
        self.show_message(tr("Figure copied to the clipboard"))

    # ---- question cards -----------------------------------------------------------------------------
    def _marks(self) -> dict[str, str]:
        """Quiz marks (card id -> got | again) from the settings: a flat JSON object; anything else
        (not JSON, nested too deep to parse, not an object) gives no marks, other entries are dropped."""
        if self.store is None:
            return dict(self._session_marks)
        try:
            marks = json.loads(str(self.store.value("quiz_marks", "{}")))
        except (TypeError, ValueError, RecursionError):
            return {}
        if not isinstance(marks, dict):
            return {}
        return {k: v for k, v in marks.items() if isinstance(k, str) and v in ("got", "again")}

    _session_marks: dict[str, str] = {}

    def _save_marks(self, marks: dict[str, str]) -> None:
        if self.store is None:
            self._session_marks = dict(marks)
            return
        self.store.setValue("quiz_marks", json.dumps(marks, sort_keys=True))
        self.store.sync()

    def show_questions(self) -> None:
        """The Questions window (Ctrl+K)."""
        if self.questions is None:
            from widgets.questions import QuestionsDialog
            from workbench.cards import CardError, load_cards

            try:
                topics, cards = load_cards()
            except CardError as error:
                self.show_message(str(error), True)
                return
            self.questions = QuestionsDialog(self.style_, topics, [c for c in cards if c.panel in PANELS],
                                             self._marks(), self._save_marks, self, review=self.review_store())
            self.questions.opened.connect(self.open_card)
            self.questions.export_card.connect(self.export_card_note_dialog)
            self.questions.export_topic.connect(self.export_topic_note_dialog)
        self.questions.show()
        self.questions.raise_()
        self.questions.activateWindow()

    def show_review(self) -> None:
        """The Questions window on its Review tab (Ctrl+Shift+K): the cards due now."""
        self.show_questions()
        if self.questions is not None:
            self.questions.show_review()

    _review = None  # the FSRS states (workbench.review.ReviewStore), read on first use

    def review_store(self):
        """The review states kept beside the settings (in memory without a settings store); a file
        that cannot be used is set aside, and the status bar says so."""
        if self._review is None:
            from workbench.review import FILE_NAME, ReviewStore

            path = Path(self.store.fileName()).parent / FILE_NAME if self.store is not None else None
            self._review = ReviewStore.open(path)
            if self._review.problem:
                self.show_message(self._review.problem, True)
        return self._review

    def export_animation_dialog(self) -> None:
        """File > Export animation…: what moves, frames, size; then where; then a progress bar with Cancel."""
        from widgets.animation import AnimationDialog

        dialog = AnimationDialog(self.style_, self.current, self.panel.values, self.caption_on_export, self)
        if dialog.exec() != AnimationDialog.Accepted:
            return
        options = dialog.options()
        suffix = options.pop("suffix")
        patterns = {".gif": tr("GIF animations (*.gif)"), ".mp4": tr("MP4 videos (*.mp4)"), ".webp": tr("WebP animations (*.webp)")}
        path, _ = QFileDialog.getSaveFileName(self, tr("Export animation"), f"{self.current}{suffix}", patterns[suffix])
        if path:
            self.export_animation(path, **options)

    def export_animation(self, path: str, **options) -> bool:
        """Render the current panel's values as an animation to ``path`` with a progress bar and Cancel
        (options: sweep, fps, seconds, scale, caption); the status bar says what came of it."""
        from widgets.animation import run_export

        ok, message = run_export(self, self.current, dict(self.panel.values), self.style_, path, **options)
        self.show_message(message, not ok)
        return ok

    def open_card(self, card, answer_shown: bool = True) -> bool:
        """Switch to the card's panel and scene; the notes show the question (and the answer)."""
        from workbench.cards import card_values

        try:
            values = card_values(card)
        except ParamError as error:
            self.show_message(tr("Card {id}: {error}").format(id=card.id, error=error), True)
            return False
        panel = self.show_panel(card.panel)
        panel.scene_loaded()
        panel.set_all(values)
        panel.show_card(card, answer_shown)
        if not self.show_notes:
            panel.set_notes_visible(True)
        self.show_message(tr("Card {id}").format(id=card.id))
        return True

    def export_card_note(self, card, folder: str) -> bool:
        """Write the card as a Markdown note with its 2x figure into ``folder``."""
        from widgets.note_export import write_card_note
        from workbench.cards import load_cards

        if not self.open_card(card, self.panels[card.panel].card_answer_shown if card.panel in self.panels else True):
            return False
        topic = next(t for t in load_cards()[0] if t.id == card.topic)
        self.panel.compute_now()
        return (self._exported(folder, lambda: write_card_note(card, topic, folder, self.style_, self.panel))
                and self._offer_folder(folder))

    def export_topic_note(self, topic, folder: str) -> bool:
        """Every card of ``topic`` in one Markdown note, the figures beside it, into ``folder``."""
        from widgets.note_export import write_topic_note
        from workbench.cards import cards_in_topic, load_cards

        cards = [c for c in cards_in_topic(load_cards()[1], topic.id) if c.panel in PANELS]
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            done = self._exported(folder, lambda: write_topic_note(topic, cards, folder, self.style_))
        finally:
            QApplication.restoreOverrideCursor()
        return done and self._offer_folder(folder)

    def export_card_note_dialog(self, card) -> None:
        folder = self._note_folder_dialog()
        if folder:
            self.export_card_note(card, folder)

    def export_topic_note_dialog(self, topic) -> None:
        folder = self._note_folder_dialog()
        if folder:
            self.export_topic_note(topic, folder)

    _session_note_folder = ""  # without a settings store (tests, bench): remembered for the session

    def note_folder(self) -> str:
        """The folder the last note went to (kept with the settings), if it still exists; else ""."""
        folder = self.store.value("note_folder", "") if self.store is not None else self._session_note_folder
        return folder if isinstance(folder, str) and folder and os.path.isdir(folder) else ""

    def _note_folder_dialog(self) -> str:
        """Ask for the note's folder, starting at the last one; the one chosen is remembered."""
        folder = QFileDialog.getExistingDirectory(self, tr("Folder for the note"), self.note_folder())
        if folder:
            if self.store is None:
                self._session_note_folder = folder
            else:
                self.store.setValue("note_folder", folder)
                self.store.sync()
        return folder

    def _offer_folder(self, folder: str) -> bool:
        """Keep the status bar's "Exported …" longer, with a link beside it that opens ``folder`` in
        the file manager; the link goes when the message does. Returns True."""
        bar = self.statusBar()
        if self.folder_link is None:
            self.folder_link = QLabel()
            self.folder_link.setObjectName("open_folder")
            self.folder_link.setTextFormat(Qt.RichText)
            self.folder_link.linkActivated.connect(lambda url: QDesktopServices.openUrl(QUrl(url)))
            bar.addPermanentWidget(self.folder_link)
            bar.messageChanged.connect(lambda text: text == self._offered_message or self.folder_link.hide())
        url = QUrl.fromLocalFile(os.path.abspath(folder)).toString()
        self.folder_link.setText(f'<a href="{html.escape(url)}">{html.escape(tr("Open folder"))}</a>')
        self.folder_link.setToolTip(os.path.abspath(folder))
        self._offered_message = bar.currentMessage()
        bar.showMessage(self._offered_message, 20000)  # time to reach the link
        self.folder_link.show()
        return True

    folder_link: QLabel | None = None
    _offered_message = ""
