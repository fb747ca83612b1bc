"""Command line: open the workbench, export a panel headless, or list panels and parameters.

    workbench [--panel NAME] [--set name=value]... [--scene FILE] [--lang en|zh_CN]
              [--theme light|dark] [--presentation]
    workbench export PANEL -o OUT.png|OUT.svg|OUT.pdf [--scale 1|2|3] [--set ...] [--scene FILE]
              [--data OUT.json] [--lang ...] [--theme ...] [--presentation] [--no-caption]
    workbench export PANEL --animate -o OUT.gif|OUT.mp4|OUT.webp [--sweep NAME=FROM:TO] [--fps N]
              [--seconds S] [--scale 1|2|3] [--set ...] [--size WxH]
    workbench list [PANEL]
    workbench cards [--lang en|zh_CN] [--topic T] [--due]
    workbench review [--stats] [--topic T] [--new-per-day N] [--lang en|zh_CN]
    workbench note ID|--topic T -o DIR [--lang en|zh_CN] [--pdf]
    workbench --card ID / workbench export --card ID -o OUT.png|OUT.svg|OUT.pdf [--scale N]

Bad input prints one line naming the problem and exits with status 2 (a corrupt card file: one
line per problem).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import time
from typing import Any

from workbench import __version__, one_blas_thread
from workbench.i18n import LANGUAGES, set_language, system_language
from workbench.cards import CardError
from workbench.params import ParamError, brief
from workbench.registry import PANELS
from workbench.scene import SceneError, read_scene

THEMES = ("light", "dark")


class UsageError(Exception):
    """Bad command-line input: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter (repeatable); see 'workbench list PANEL'")
    parser.add_argument("--scene", metavar="FILE", help="load a scene file (JSON)")
    parser.add_argument("--lang", choices=tuple(LANGUAGES), help="interface language")
    parser.add_argument("--theme", choices=THEMES, help="colour theme")
    parser.add_argument("--presentation", action="store_true", help="projector mode: large fonts, thick lines")


def _gui_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description="Deep-learning workbench. Subcommands: export, list, cards, note, review.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("--panel", help="panel to open: " + ", ".join(PANELS))
    parser.add_argument("--card", metavar="ID", help="open on a question card (see 'workbench cards')")
    _common(parser)
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench export", description="Render a panel to PNG, SVG or PDF without a display.")
    parser.add_argument("panel", nargs="?", help="panel: " + ", ".join(PANELS))
    parser.add_argument("--card", metavar="ID", help="the figure of a question card (see 'workbench cards')")
    parser.add_argument("-o", "--output", help="OUT.png, OUT.svg or OUT.pdf (vector, one page fitted to the figure; required unless --script is given); "
                                               "with --animate OUT.gif, OUT.mp4 or OUT.webp")
    parser.add_argument("--script", metavar="OUT.py",
                        help="also (or only) write the run as a standalone PyTorch script (panels that train: training)")
    parser.add_argument("--scale", type=int, choices=(1, 2, 3), default=None,
                        help="pixel scale (default 2 for a PNG, 1 for an animation); at most 16384 pixels a side")
    parser.add_argument("--animate", action="store_true",
                        help="an animation: the played steps (optimizers, training, transformer) or --sweep")
    parser.add_argument("--sweep", metavar="NAME=FROM:TO",
                        help="animate one number parameter from FROM to TO (log-spaced where its slider is; "
                             "NAME=FROM:TO:linear or :log to choose)")
    parser.add_argument("--fps", type=int, default=None, help="animation frames per second (default 20; a GIF at most 50)")
    parser.add_argument("--seconds", type=float, default=None, help="animation length in seconds (default 4)")
    parser.add_argument("--data", metavar="OUT.json", help="also write the computed arrays as JSON")
    parser.add_argument("--no-caption", action="store_true", help="leave the parameter caption off")
    parser.add_argument("--size", default=None,
                        help="figure size in logical pixels, WxH (default 1280 wide, at least 800 high: as high as the figure needs)")
    _common(parser)
    return parser


def resolve_values(panel: str | None, scene: str | None, assignments: list[str]) -> tuple[str, dict[str, Any]]:
    """Panel name and its validated values from --panel, --scene and --set (applied in that order)."""
    from workbench.registry import panel_class

    raw: dict[str, Any] = {}
    if scene:
        try:
            scene_panel, raw = read_scene(scene)
        except SceneError as error:
            raise UsageError(str(error)) from None
        if panel and panel != scene_panel:
            raise UsageError(f"--scene {scene} is for panel {brief(scene_panel)}, not {panel!r}")
        panel = scene_panel
    panel = panel or next(iter(PANELS))
    if panel not in PANELS:
        raise UsageError(f"unknown panel {brief(panel)}; panels: {', '.join(PANELS)}")
    params = panel_class(panel).PARAMS
    try:
        values = params.resolve({**raw, **params.parse_assignments(assignments)})
    except ParamError as error:
        raise UsageError(str(error)) from None
    return panel, values


def _language(choice: str | None, stored: str | None = None) -> None:
    set_language(choice or stored or system_language())


def _app_icon():
    from importlib import resources

    from PySide6.QtGui import QIcon, QPixmap

    data = resources.files("assets").joinpath("icons", "workbench.svg").read_bytes()
    pixmap = QPixmap()
    pixmap.loadFromData(data, "SVG")
    return QIcon(pixmap)


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM") or sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def gui_main(argv: list[str], review: bool = False) -> int:
    """Open the window (``review``: on the Questions window's Review tab)."""
    args = _gui_parser().parse_args(argv)
    _language(args.lang)
    card = None
    if args.card:
        if args.panel or args.set or args.scene:
            raise UsageError("--card ID sets the panel and its scene: leave out --panel, --set and --scene")
        card = _card(args.card)
        panel, values = card.panel, _card_values(card)
    else:
        panel, values = resolve_values(args.panel, args.scene, args.set)
    if not _has_display():
        print("workbench: no display found (DISPLAY is not set). To render a panel without a display, use: "
              "workbench export PANEL -o out.png", file=sys.stderr)
        return 1
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from widgets.style import Style
    from workbench.app import MainWindow, read_settings, settings_store

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("dl-workbench")
    app.setDesktopFileName("dl-workbench")  # assets/dl-workbench.desktop: the launcher's entry and icon on Wayland
    app.setWindowIcon(_app_icon())
    store = settings_store()
    stored = read_settings(store)
    _language(args.lang, stored["language"])
    style = Style(theme=args.theme or stored["theme"], presentation=args.presentation,
                  font_scale=stored["font_scale"])
    first = panel if (args.panel or args.scene or card) else stored["panel"]
    if not (args.panel or args.scene or args.set or card):
        values = None
    window = MainWindow(style, first, {panel: values} if values else None, store, stored["notes"])
    if card is not None:
        window.open_card(card)
    if review:
        window.show_review()
    if report := os.environ.get("WORKBENCH_STARTUP_REPORT"):
        _report_startup(window, report)
    if args.presentation:
        window.showFullScreen()
    else:
        window.show()
    QTimer.singleShot(0, gc.freeze)  # the long-lived widgets leave the GC's view: shorter pauses while dragging
    try:
        return app.exec()
    finally:
        _dispose(window)


def _report_startup(window, path: str) -> None:
    """For the benchmark: write the wall-clock times of the first paint and first drawn panel, quit."""
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication

    times: dict[str, float] = {}

    class FirstPaint(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Paint and "paint" not in times:
                times["paint"] = time.time()
            return False

    def drawn():
        if "drawn" not in times:
            window.panel.figure.repaint()
            times["drawn"] = time.time()
            with open(path, "w") as handle:
                handle.write(f"{times.get('paint', times['drawn'])} {times['drawn']}\n")
            QTimer.singleShot(0, QApplication.quit)

    window._startup_filter = FirstPaint(window)
    QApplication.instance().installEventFilter(window._startup_filter)  # any widget's first paint
    window.panel.drawn.connect(drawn)
    if window.panel.result is not None and not window.panel.busy():  # drawn while the window was built
        QTimer.singleShot(0, drawn)


def export_main(argv: list[str]) -> int:
    args = _export_parser().parse_args(argv)
    _language(args.lang, "en")
    if args.card:
        if args.panel or args.set or args.scene:
            raise UsageError("--card ID sets the panel and its scene: leave out PANEL, --set and --scene")
        card = _card(args.card)
        panel_name, values = card.panel, _card_values(card)
    elif not args.panel:
        raise UsageError("name a panel (" + ", ".join(PANELS) + ") or --card ID")
    else:
        panel_name, values = resolve_values(args.panel, args.scene, args.set)
        if args.panel != panel_name:
            raise UsageError(f"unknown panel {args.panel!r}; panels: {', '.join(PANELS)}")
    if args.animate:
        return _animate(args, panel_name, values)
    for flag, given in (("--sweep", args.sweep), ("--fps", args.fps), ("--seconds", args.seconds)):
        if given is not None:
            raise UsageError(f"{flag} goes with --animate (an animated GIF, MP4 or WebP)")
    scale = args.scale or 2
    if args.script:
        from workbench.registry import panel_class

        cls = panel_class(panel_name)
        if not hasattr(cls, "script"):
            raise UsageError(f"--script: panel {panel_name!r} has no PyTorch script (only panels that train do)")
        if not args.script.endswith(".py"):
            raise UsageError(f"--script {args.script}: the file name must end in .py")
    if not args.output:
        if not args.script:
            raise UsageError("-o OUT.png|OUT.svg|OUT.pdf is required (or --script OUT.py alone)")
        return _write_script(args.script, cls.script(values))
    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in (".png", ".svg", ".pdf"):
        extra = " (or add --animate)" if suffix in (".gif", ".mp4", ".webp") else ""
        raise UsageError(f"-o {args.output}: the file name must end in .png, .svg or .pdf{extra}")
    if args.data and os.path.abspath(args.data) == os.path.abspath(args.output):
        raise UsageError(f"--data {args.data}: name another file than -o")
    size = _size(args.size)
    from widgets.render import ImageTooLarge, check_image_size, offscreen_panel, pdf_bytes, png_bytes, svg_bytes
    from workbench.export_data import data_bytes
    from workbench.scene import write_files_atomic

    try:
        if size and suffix == ".png":
            check_image_size(*size, scale)  # refused before anything is computed
        style = _headless_style(args.theme, args.presentation)
        with offscreen_panel(panel_name, values, style, size) as panel:
            caption = "" if args.no_caption else panel.caption()
            if suffix == ".png":  # the figure as grown to its content, caption included
                files = {args.output: png_bytes(panel.figure, style, scale, caption)}
            elif suffix == ".pdf":
                files = {args.output: pdf_bytes(panel.figure, style, panel.title(), caption)}
            else:
                files = {args.output: svg_bytes(panel.figure, style, panel.title(), caption)}
            if args.data:
                files[args.data] = data_bytes(panel_name, values, panel.data_result())
            if args.script:
                files[args.script] = panel.export_script().encode("utf-8")
            write_files_atomic(files)  # both files or neither
    except ImageTooLarge as error:
        raise _too_large(args, scale, error) from None
    except OSError as error:
        return _cannot_write(error, args.output)
    print(f"workbench: wrote {args.output}" + "".join(f" and {f}" for f in (args.data, args.script) if f))
    return 0


def _too_large(args, scale: int, error: Exception) -> UsageError:
    return UsageError(f"--size {args.size or 'default'} --scale {scale}: {error}; choose a smaller --size or --scale")


def _cannot_write(error: OSError, output: str) -> int:
    """Say which file could not be written; the exit status 2."""
    print(f"workbench: cannot write {error.filename or output}: {error.strerror or error}", file=sys.stderr)
    return 2


def _animate(args, panel_name: str, values: dict[str, Any]) -> int:
    """``workbench export PANEL --animate``: every option checked before the first frame."""
    from workbench.animate import DEFAULT_FPS, DEFAULT_SECONDS, AnimationError, export_animation

    if not args.output:
        raise UsageError("-o OUT.gif|OUT.mp4|OUT.webp is required with --animate")
    for flag, given in (("--data", args.data), ("--script", args.script)):
        if given:
            raise UsageError(f"{flag} goes with a still export, not with --animate")
    scale = args.scale or 1
    size = _size(args.size)
    from widgets.render import ImageTooLarge

    try:
        if size:
            from widgets.render import check_image_size

            check_image_size(*size, scale)
        style = _headless_style(args.theme, args.presentation)
        frames = export_animation(panel_name, values, style, args.output, fps=DEFAULT_FPS if args.fps is None else args.fps,
                                  seconds=DEFAULT_SECONDS if args.seconds is None else args.seconds,
                                  sweep=args.sweep, scale=scale, size=size, caption=not args.no_caption)
    except AnimationError as error:
        raise UsageError(str(error)) from None
    except ImageTooLarge as error:
        raise _too_large(args, scale, error) from None
    except OSError as error:
        return _cannot_write(error, args.output)
    print(f"workbench: wrote {args.output} ({frames} frames, {os.path.getsize(args.output) / 1e6:.1f} MB)")
    return 0


def _write_script(path: str, text: str) -> int:
    from workbench.scene import write_atomic

    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as error:
        return _cannot_write(error, path)
    print(f"workbench: wrote {path}")
    return 0


def _size(text: str | None) -> tuple[int, int] | None:
    """--size WxH as (width, height) in logical pixels; None when not given."""
    if not text:
        return None
    try:
        size = tuple(int(v) for v in text.lower().split("x"))
        if len(size) != 2 or not (200 <= size[0] <= 8000 and 150 <= size[1] <= 8000):
            raise ValueError
    except ValueError:
        raise UsageError(f"--size {text}: expected WxH with 200<=W<=8000 and 150<=H<=8000") from None
    return size


def _headless_style(theme: str | None, presentation: bool):
    """A QApplication for rendering without a display, and the style to render in."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from widgets.style import Style

    _quiet_qt_messages()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    style = Style(theme=theme or "light", presentation=presentation)
    style.apply_to_app(app)
    return style


def _card(card_id: str):
    """The card called ``card_id``, or a UsageError naming it."""
    from workbench.cards import find_card

    try:
        return find_card(card_id)
    except KeyError:
        raise UsageError(f"unknown card {card_id!r}; 'workbench cards' lists them") from None


def _card_values(card) -> dict[str, Any]:
    from workbench.cards import card_values

    try:
        return card_values(card)
    except ParamError as error:
        raise UsageError(f"card {card.id}: {error}") from None


def _topic(topic_id: str):
    from workbench.cards import load_cards

    topics, _ = load_cards()
    for topic in topics:
        if topic.id == topic_id:
            return topic
    raise UsageError(f"unknown topic {topic_id!r}; topics: {', '.join(t.id for t in topics)}")


def cards_main(argv: list[str]) -> int:
    parser = _Parser(prog="workbench cards", description="List the question cards: id, panel, question.")
    parser.add_argument("--lang", choices=tuple(LANGUAGES), help="language of the questions (default English)")
    parser.add_argument("--topic", help="only this topic's cards")
    parser.add_argument("--due", action="store_true",
                        help="only the cards Review shows now (due, then today's new ones): id, topic, due date, question")
    args = parser.parse_args(argv)
    set_language(args.lang or "en")
    from workbench.cards import cards_in_topic, load_cards

    _, cards = load_cards()
    if args.topic:
        cards = cards_in_topic(cards, _topic(args.topic).id)
    if args.due:
        return _due(cards)
    width = max(len(card.id) for card in cards)
    panel_width = max(len(card.panel) for card in cards)
    for card in cards:
        print(f"{card.id:<{width}}  {card.panel:<{panel_width}}  {card.text('question')}")
    return 0


def _config_folder():
    """The folder of the settings and the review states, found as workbench.app.settings_store
    finds it (WORKBENCH_CONFIG_DIR, else Qt's per-user config folder), without loading the GUI."""
    from pathlib import Path

    folder = os.environ.get("WORKBENCH_CONFIG_DIR")
    if folder:
        return Path(folder)
    from PySide6.QtCore import QCoreApplication, QStandardPaths

    QCoreApplication.setApplicationName("dl-workbench")
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppConfigLocation)
                or Path.home() / ".config" / "dl-workbench")


def _review_store(cards):
    """The review states from the config folder; a file that cannot be used is set aside and said
    so on stderr. Quiz marks not carried over yet are applied in memory, as the window will."""
    from PySide6.QtCore import QSettings

    from workbench.review import FILE_NAME, ReviewStore, parse_marks

    folder = _config_folder()
    store = ReviewStore.open(folder / FILE_NAME)
    if store.problem:
        print(f"workbench: {store.problem}", file=sys.stderr)
    if not store.marks_imported:
        settings = QSettings(str(folder / "settings.ini"), QSettings.IniFormat)
        store.import_marks(parse_marks(settings.value("quiz_marks", "{}")), [c.id for c in cards], save=False)
    return store


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    space = " " * max(width - _width(text), 0)
    return space + text if right else text + space


def _due(cards) -> int:
    """``workbench cards --due``: what Review shows now."""
    from workbench.i18n import tr
    from workbench.review import due_text, local_text

    store = _review_store(cards)
    now = store.now()
    queue = store.queue(cards, now)
    if not queue:
        later = store.next_due(cards, now)
        print("workbench: " + (tr("Nothing is due now; the next card is due {when}.").format(when=due_text(later, now))
                               if later else tr("Nothing is due now.")), file=sys.stderr)
        return 0
    rows = []
    for card in queue:
        state = store.state(card.id)
        rows.append((card.id, card.topic, local_text(state.due) if state else tr("new"), card.text("question")))
    widths = [max(_width(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(_pad(text, width) for text, width in zip(row[:3], widths)) + "  " + row[3])
    return 0


def review_main(argv: list[str]) -> int:
    parser = _Parser(prog="workbench review", description="Spaced repetition of the question cards (FSRS): "
                                                          "without options, open the window on Review.")
    parser.add_argument("--stats", action="store_true", help="print per topic how many cards are due, learning, "
                                                             "learned and new")
    parser.add_argument("--topic", help="only this topic (with --stats)")
    parser.add_argument("--new-per-day", type=int, metavar="N", help="set the daily limit of new cards (0 to 999)")
    parser.add_argument("--lang", choices=tuple(LANGUAGES), help="interface language")
    parser.add_argument("--theme", choices=THEMES, help="colour theme (the window)")
    args = parser.parse_args(argv)
    if not args.stats and args.new_per_day is None:
        if args.topic:
            raise UsageError("--topic goes with --stats")
        return gui_main([*(["--lang", args.lang] if args.lang else []), *(["--theme", args.theme] if args.theme else [])],
                        review=True)
    set_language(args.lang or "en")
    from workbench.cards import load_cards
    from workbench.i18n import tr
    from workbench.review import ReviewError

    topics, cards = load_cards()
    cards = [card for card in cards if card.panel in PANELS]
    topic = _topic(args.topic) if args.topic else None
    store = _review_store(cards)
    if args.new_per_day is not None:
        try:
            store.set_new_per_day(args.new_per_day)
        except ReviewError as error:
            raise UsageError(f"--new-per-day {args.new_per_day}: {error}") from None
        except OSError as error:
            return _cannot_write(error, str(store.path))
        if not args.stats:
            print(tr("New cards a day: {n}").format(n=store.new_per_day))
            return 0
    counts = store.counts(cards)
    head = [tr("Topic"), tr("Due"), tr("Learning"), tr("Learned"), tr("New"), tr("Total")]
    rows = [(t.label(), counts[t.id]) for t in topics if t.id in counts and (topic is None or t.id == topic.id)]
    if topic is None:
        rows.append((tr("All topics"), counts[""]))
    table = [[label, *(str(getattr(c, f)) for f in ("due", "learning", "learned", "new", "total"))] for label, c in rows]
    widths = [max(_width(line[i]) for line in [head, *table]) for i in range(len(head))]
    for line in [head, *table]:
        print("  ".join(_pad(text, width, right=i > 0) for i, (text, width) in enumerate(zip(line, widths))))
    print(tr("New cards a day: {n} ({left} left today)").format(n=store.new_per_day, left=store.new_left_today()))
    return 0


def note_main(argv: list[str]) -> int:
    parser = _Parser(prog="workbench note", description="Write a card (or a whole topic) as a Markdown note with "
                                                        "its figures as 2x PNGs (or vector PDFs) beside it.")
    parser.add_argument("card", nargs="?", help="card id (see 'workbench cards')")
    parser.add_argument("--topic", help="every card of this topic in one note")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the note and its images")
    parser.add_argument("--lang", choices=tuple(LANGUAGES), help="language of the note (default English)")
    parser.add_argument("--theme", choices=THEMES, help="colour theme of the figures")
    parser.add_argument("--pdf", action="store_true", help="figures as vector PDFs (for LaTeX) instead of 2x PNGs")
    args = parser.parse_args(argv)
    if bool(args.card) == bool(args.topic):
        raise UsageError("give a card id or --topic T (one of them)")
    set_language(args.lang or "en")
    from workbench.cards import cards_in_topic, load_cards

    topics, cards = load_cards()
    topic = _topic(args.topic) if args.topic else None
    card = _card(args.card) if args.card else None
    from widgets.note_export import write_card_note, write_topic_note

    style = _headless_style(args.theme, False)
    image_format = "pdf" if args.pdf else "png"
    try:
        if card is not None:
            topic_of = next(t for t in topics if t.id == card.topic)
            path = write_card_note(card, topic_of, args.output, style, image_format=image_format)
        else:
            path = write_topic_note(topic, cards_in_topic(cards, topic.id), args.output, style, image_format)
    except OSError as error:
        return _cannot_write(error, args.output)
    except ParamError as error:
        raise UsageError(str(error)) from None
    print(f"workbench: wrote {path}")
    return 0


def _dispose(widget) -> None:
    """Delete Qt widgets before the interpreter exits (otherwise teardown order can segfault)."""
    from PySide6.QtCore import QCoreApplication, QEvent

    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)


def _quiet_qt_messages() -> None:
    """Drop the offscreen platform's harmless 'propagateSizeHints' notice and the PDF engine's
    'gradient between colors of different spec' (a Fusion scroll bar or header shading, drawn
    flat in a PDF, once per gradient); keep the rest."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(kind, context, text):
        if "propagateSizeHints" not in text and "gradient between colors of different spec" not in text:
            print(text, file=sys.stderr)
    qInstallMessageHandler(handler)


def list_main(argv: list[str]) -> int:
    parser = _Parser(prog="workbench list", description="List panels, or one panel's parameters.")
    parser.add_argument("panel", nargs="?")
    args = parser.parse_args(argv)
    set_language("en")
    from workbench.registry import panel_class

    if args.panel is None:
        for name in PANELS:
            print(f"{name:<16}{panel_class(name).TITLE_EN}")
        return 0
    if args.panel not in PANELS:
        raise UsageError(f"unknown panel {args.panel!r}; panels: {', '.join(PANELS)}")
    for param in panel_class(args.panel).PARAMS:
        default = param.default if param.kind == "choice" else param.format(param.default)
        print(f"{param.name:<34} {param.kind:<7} default {default!s:<18} {param.allowed()}  ({param.en})")
    return 0


def keep_freed_memory() -> None:
    """Have glibc keep freed blocks of up to 32 MB for reuse instead of handing everything above
    128 KB back to the OS: numpy's temporaries of a few MB would page-fault afresh at every change
    (~0.3 ms per MB on this VM; the depth view's statistics took 3.7 ms instead of 1.3). The
    panels' worker threads share one heap besides the GUI thread's (glibc gives each thread its own,
    up to eight per core, and each keeps its freed blocks: measured 36 MB more after the benchmark's
    sweeps). A no-op where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    mallopt(m_arena_max, 2)
    mallopt(m_mmap_threshold, 32 * 2 ** 20)
    mallopt(m_trim_threshold, 64 * 2 ** 20)


def hand_back_freed_memory() -> None:
    """Return the free pages glibc still holds (kept by keep_freed_memory for reuse, or stranded
    between blocks in use) to the OS: called once the window has been idle for a while, so that
    RSS shows what is in use (measured after 500 soak changes: 60-240 MB held free). A no-op where
    the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def hand_over_quickly() -> None:
    """A worker thread running Python code hands the interpreter lock back to the GUI thread after
    1 ms instead of 5: the GUI thread's bounded wait on a compute (widgets.panel.INLINE_WAIT_MS)
    then ends close to its bound (measured: up to 17.6 ms at 5 ms)."""
    sys.setswitchinterval(0.001)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    one_blas_thread()  # numpy is not imported yet
    keep_freed_memory()
    hand_over_quickly()
    try:
        if argv[:1] == ["export"]:
            return export_main(argv[1:])
        if argv[:1] == ["list"]:
            return list_main(argv[1:])
        if argv[:1] == ["cards"]:
            return cards_main(argv[1:])
        if argv[:1] == ["note"]:
            return note_main(argv[1:])
        if argv[:1] == ["review"]:
            return review_main(argv[1:])
        return gui_main(argv)
    except UsageError as error:
        print(f"workbench: {error}", file=sys.stderr)
        return 2
    except CardError as error:  # as the Questions window reports them
        for problem in error.problems:
            print(f"workbench: question cards: {problem}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `workbench cards | head`: the reader left, nothing is wrong
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
