"""The panel base class: declared controls + figure + notes, and the one update path.

control edited -> ``set_values`` (validated by the declaration) -> compute(values) -> ``draw(result)``.
Every compute runs on the panel's worker thread; the GUI thread waits for it at most INLINE_WAIT_MS,
so a quick one is drawn inside ``set_values`` (the change and its result share one repaint) and a
slow one when it arrives, without freezing input. While a compute runs, further changes only bump a
generation counter; when it returns, a stale result is dropped and the newest values are computed
once, so a dragged slider costs at most one compute in flight.

A draw may come in steps: a ``draw`` that is a generator yields between parts of the figure, and
each part is drawn (and painted) in its own pass of the event loop, so no pass blocks input for
long. A drawing in progress counts as a compute in flight: changes meanwhile are coalesced and the
newest values are computed once it is complete, so every figure shown is whole and from one result.
"""

from __future__ import annotations

import html
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import resources
from typing import Any, Iterator, Mapping

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QPushButton, QScrollArea, QSplitter,
                               QTextBrowser, QVBoxLayout, QWidget)
from superqt import QCollapsible

import widgets.items  # noqa: F401  (before any plot is made: every plot's axes are items.QuickAxis)
from widgets.controls import ParamControl, make_control
from widgets.repaint import PAINT_BUDGET_MS, work_done, work_in_pass
from widgets.style import Style
from workbench.i18n import language, pick, tr
from workbench.params import ParamError, ParamSet

RETIRED: list["Panel"] = []  # panels taken out of use, kept referenced until the process ends (see Panel.retire)
INLINE_WAIT_MS = 6.0  # how long the GUI thread waits for a compute before it goes back to the event loop


class Panel(QWidget):
    """Subclasses set NAME, TITLE_EN/ZH, PARAMS and implement build_figure, compute, draw."""

    NAME = ""
    TITLE_EN = ""
    TITLE_ZH = ""
    PARAMS: ParamSet
    # parameter -> (lo, hi) or the values to sweep; or label -> {"param", "sweep", "base": values set first}
    BENCH_SWEEPS: dict[str, tuple[float, float] | list | dict] = {}
    BENCH_BUDGETS_MS: dict[str, float] = {}  # parameter -> p95 budget where the issue sets one below 16 ms
    CAPTION_PARAMS: tuple[str, ...] | None = None  # None: every parameter
    OPEN_GROUPS: tuple[str, ...] = ()  # control groups shown expanded at first
    # A draw in steps (draw yields) runs its steps back to back for this long, then lets the event loop
    # run: a cheap change is drawn and painted once, an expensive one never holds the GUI thread long.
    DRAW_SLICE_MS = 6.0

    message = Signal(str, bool)  # text, is_error
    drawn = Signal()
    notes_closed = Signal()  # the notes pane was dragged shut at the splitter handle
    _finished = Signal(int, object)  # generation, the compute's Future (from the worker thread)

    def __init__(self, style: Style, values: Mapping[str, Any] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"panel_{self.NAME}")
        self.style_ = style
        self.values = self.PARAMS.defaults() if values is None else dict(values)
        self.result: Any = None
        self._generation = 0
        self._executor: ThreadPoolExecutor | None = None  # one worker per panel: a slow panel never delays another
        self._pending: Future | None = None  # the compute in flight
        self._drawing: Iterator | None = None  # the steps of a draw in progress (a generator ``draw``)
        self._drawing_generation = 0
        self._drawing_values: dict = {}  # the values the drawing's result was computed from
        self._next_step = QTimer(self, singleShot=True, interval=0)  # a timer, not a posted call: see _draw_step
        self._next_step.timeout.connect(lambda: self._draw_step(self._next_steps))
        self._next_steps: Iterator | None = None
        self._finished.connect(self._on_finished, Qt.QueuedConnection)
        self.controls: dict[str, ParamControl] = {}
        self.figure = self.build_figure()
        self.figure.setObjectName("figure")
        self.notes = QTextBrowser()
        self.notes.setOpenExternalLinks(True)
        self.notes.setObjectName("notes")
        self._build_layout()
        self.refresh_notes()
        self._show_all_values()

    # ---- subclass hooks -------------------------------------------------------------------
    @classmethod
    def title(cls) -> str:
        return pick(cls.TITLE_EN, cls.TITLE_ZH)

    def build_figure(self) -> QWidget:
        raise NotImplementedError

    @staticmethod
    def compute(values: Mapping[str, Any]) -> Any:
        """Pure function of the values; runs off the GUI thread."""
        raise NotImplementedError

    def draw(self, result: Any) -> Iterator[None] | None:
        raise NotImplementedError

    def notes_html(self) -> str:
        """The notes pane: assets/notes/<panel>.<lang>.html."""
        name = f"{self.NAME}.{language()}.html"
        return resources.files("assets").joinpath("notes", name).read_text(encoding="utf-8")

    def extra_controls(self) -> list[QWidget]:
        """Widgets placed above the declared controls (view-only state, e.g. playback)."""
        return []

    def caption(self) -> str:
        return f"{self.title()}: {self.PARAMS.caption(self.values, self.CAPTION_PARAMS)}"

    def data_result(self) -> Any:
        """What the data export (JSON) writes: the computed result; a panel whose figure shows more
        (e.g. a training run's live weights) says so here."""
        return self.result

    # ---- layout ---------------------------------------------------------------------------
    def _build_layout(self) -> None:
        side = QWidget()
        side.setObjectName("controls")
        column = QVBoxLayout(side)
        column.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.preset_box = QComboBox()
        self.preset_box.setObjectName("presets")
        self.preset_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.preset_box.setMinimumContentsLength(12)
        self.preset_box.addItem(tr("Presets…"), "")
        for preset in self.PARAMS.presets.values():
            self.preset_box.addItem(preset.label(), preset.key)
        self.preset_box.setToolTip(tr("Load a prepared scene"))
        self.preset_box.activated.connect(self._preset_chosen)
        reset = QPushButton(tr("Reset"))
        reset.setToolTip(tr("Every parameter back to its default"))
        reset.clicked.connect(self.reset)
        top.addWidget(self.preset_box, 1)
        top.addWidget(reset)
        column.addLayout(top)
        for widget in self.extra_controls():
            column.addWidget(widget)
        groups: dict[str, QVBoxLayout | QCollapsible] = {}
        for param in self.PARAMS:
            control = make_control(param, self.style_)
            control.edited.connect(self._control_edited)
            self.controls[param.name] = control
            if not param.group:
                column.addWidget(control)
                continue
            if param.group not in groups:
                box = QCollapsible(tr(param.group))
                box.setObjectName(f"group_{param.group}")
                box.setDuration(0)
                if param.group in self.OPEN_GROUPS:
                    box.expand(animate=False)
                column.addWidget(box)
                groups[param.group] = box
            groups[param.group].addWidget(control)
        self.groups = groups
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        # its room kept: a scroll bar that comes and goes as groups open re-lays out every control twice
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOn)
        scroll.setMinimumWidth(side.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.notes.setMinimumWidth(int(self.style_.point_size * 20))
        self.notes.setMaximumWidth(int(self.style_.point_size * 36))
        self.splitter = QSplitter(Qt.Horizontal)
        self.splitter.addWidget(scroll)
        # a figure taller than the room it gets scrolls, never clips and never makes the window taller
        # than the screen: a laptop's 1366 x 768, a projector, the floats panel with every format shown
        figure_area = QScrollArea()
        figure_area.setObjectName("figure_area")
        figure_area.setFrameShape(QFrame.NoFrame)
        figure_area.setWidget(self.figure)
        figure_area.setWidgetResizable(True)
        figure_area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff if self.style_.presentation else Qt.ScrollBarAsNeeded)
        self.splitter.addWidget(figure_area)
        self.splitter.addWidget(self.notes)
        for index, stretch in enumerate((0, 1, 0)):  # the figure takes what the window gains
            self.splitter.setStretchFactor(index, stretch)
        self.splitter.setCollapsible(1, False)  # the figure never goes; controls and notes fold away at their handles
        self.splitter.splitterMoved.connect(self._splitter_moved)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._split_once:  # first show: controls and notes at their narrow widths, the figure the rest
            self._split_once = True
            side = self.splitter.widget(0)
            natural = min(side.sizeHint().width(), int(0.22 * self.splitter.width()))  # the figure comes first
            controls, notes = max(side.minimumWidth(), natural), self.notes.minimumWidth()
            self.splitter.setSizes([controls, max(self.splitter.width() - controls - notes, 1), notes])

    _split_once = False

    def retire(self) -> None:
        """Take the panel out of use for good (its window closes or is rebuilt): its result is
        dropped, but the Python object stays referenced until the process ends. Letting the garbage
        collector destroy pyqtgraph view boxes and items whose Qt side is already deleted can crash
        the process (a known pyqtgraph / Qt-binding problem: mantidproject/mantidimaging#894,
        #3086); a retired panel keeps only its small Python shell."""
        self.result = None
        self._pending = None
        self._drawing = None
        if self._executor is not None:  # its thread ends once a compute in flight returns
            self._executor.shutdown(wait=False, cancel_futures=True)
        RETIRED.append(self)

    def set_notes_visible(self, visible: bool) -> None:
        self.notes.setVisible(visible)
        if visible and self._notes_folded:  # dragged shut before: its narrow width back, from the figure
            self._notes_folded = False
            sizes = self.splitter.sizes()
            width = min(self.notes.minimumWidth(), max(sizes[1] - 1, 0))
            self.splitter.setSizes([sizes[0], sizes[1] - width, width])

    _notes_folded = False

    def _splitter_moved(self, _pos: int, index: int) -> None:
        if index == 2 and self.notes.isVisible() and self.splitter.sizes()[2] == 0:
            self._notes_folded = True
            self.notes_closed.emit()

    def refresh_notes(self) -> None:
        self.notes.setHtml(self._card_html() + self.notes_html())

    question_card: Any = None  # the question card shown above the notes (workbench.cards.Card), if any
    card_answer_shown = True

    def show_card(self, card: Any, answer_shown: bool = True) -> None:
        """Show a question card at the top of the notes (None: no card); in a quiz the answer
        waits until it is revealed."""
        self.question_card, self.card_answer_shown = card, answer_shown
        self.refresh_notes()
        if card is not None:
            self.notes.verticalScrollBar().setValue(0)

    def _card_html(self) -> str:
        if self.question_card is None:
            return ""
        c = self.question_card
        answer = html.escape(c.text("answer")) if self.card_answer_shown else f"<i>{html.escape(tr('(hidden: reveal it in the Questions window)'))}</i>"
        return (f"<table width='100%' cellpadding='8' style='background-color: {self.style_.card_background};'><tr><td>"
                f"<p><b>{html.escape(tr('Question'))}</b> <span style='color: {self.style_.muted};'>{html.escape(c.id)}</span></p>"
                f"<h3>{html.escape(c.text('question'))}</h3>"
                f"<p><b>{html.escape(tr('Answer'))}</b> {answer}</p>"
                f"<p><b>{html.escape(tr('What to look at'))}</b> {html.escape(c.text('look'))}</p>"
                "</td></tr></table>")

    def refresh_notes_later(self) -> None:
        """Refresh the notes once changes settle (200 ms after the last call): notes that show the
        current numbers follow a drag without re-laying out their HTML on every frame."""
        if self._notes_timer is None:
            self._notes_timer = QTimer(self)
            self._notes_timer.setSingleShot(True)
            self._notes_timer.setInterval(200)
            self._notes_timer.timeout.connect(self.refresh_notes)
        self._notes_timer.start()

    _notes_timer: QTimer | None = None

    # ---- the update path ------------------------------------------------------------------
    def _control_edited(self, name: str, raw: Any) -> None:
        self.set_values({name: raw})

    def set_values(self, changes: Mapping[str, Any]) -> bool:
        """Validate and apply ``changes``; on a problem, say so and keep the state."""
        try:
            new = self.PARAMS.update(self.values, changes)
        except ParamError as error:
            for name in changes:
                if name in self.controls:
                    self.controls[name].show_value(self.values[name])
                    mine = [p for p in error.problems if f"({name})" in p or p.startswith(f"{name}:")]
                    self.controls[name].show_error("\n".join(mine or error.problems))
            self.message.emit(str(error), True)
            return False
        changed = [n for n in new if new[n] != self.values.get(n)]
        self.values = new
        for name in set(changed) | set(changes):
            if name in self.controls:
                self.controls[name].show_value(new[name])
        for control in self.controls.values():  # a refusal's message goes stale once anything is accepted
            if not control.error_label.isHidden():
                control.show_error("")
        self.values_changed(changed)
        self.schedule()
        return True

    def values_changed(self, names: list[str]) -> None:
        """Hook: react to accepted changes before the compute (e.g. enable/disable controls)."""

    def scene_loaded(self) -> None:
        """Hook: a whole scene (preset, question card, scene file) is about to be set (e.g. a panel
        that plays starts its run once it is drawn)."""

    def apply_preset(self, key: str) -> None:
        if self.question_card is not None:
            self.show_card(None)  # the scene leaves the card's
        preset = self.PARAMS.presets[key]
        self.scene_loaded()
        self.set_all(self.PARAMS.resolve(preset.values))
        self.message.emit(tr("Preset: {name}").format(name=preset.label()), False)

    def set_all(self, values: Mapping[str, Any]) -> bool:
        """Replace every value at once (reset, preset, scene); missing names take defaults."""
        return self.set_values({**self.PARAMS.defaults(), **values})

    def reset(self) -> None:
        if self.question_card is not None:
            self.show_card(None)
        self.set_all(self.PARAMS.defaults())
        self.message.emit(tr("Parameters reset to defaults"), False)

    def _preset_chosen(self, index: int) -> None:
        key = self.preset_box.itemData(index)
        with QSignalBlocker(self.preset_box):
            self.preset_box.setCurrentIndex(0)
        if key:
            self.apply_preset(key)

    def _show_all_values(self) -> None:
        for name, control in self.controls.items():
            control.show_value(self.values[name])
        self.values_changed(list(self.values))

    def schedule(self) -> None:
        """Ask for a recompute; coalesced with any compute already in flight."""
        self._generation += 1
        if self._pending is None and self._drawing is None:
            self._start()

    longest_wait_ms = 0.0  # the longest the GUI thread has waited for a compute (the benchmark's soak reads it)
    drawing_ms = 0.0  # time spent in draw steps, all panels together (the soak splits its blocks by it)

    def busy(self) -> bool:
        """Whether a compute or a draw in steps is in flight (its result not yet drawn or dropped)."""
        return self._pending is not None or self._drawing is not None

    def _start(self) -> None:
        """Compute the newest values on the panel's worker thread and wait for the result at most
        INLINE_WAIT_MS: a quick compute is drawn at once (the change and its result share one
        repaint), a slow one is drawn when it arrives, and the GUI thread never waits longer,
        whatever the compute costs (a cached result is quick, the next one may take seconds)."""
        generation = self._generation
        future = self.worker().submit(self.compute, dict(self.values))
        self._pending = future
        start = time.perf_counter()
        try:
            future.result(timeout=INLINE_WAIT_MS / 1000)
        except FutureTimeout:
            Panel.longest_wait_ms = max(Panel.longest_wait_ms, (time.perf_counter() - start) * 1000)
            future.add_done_callback(lambda done: self._announce(generation, done))
            return
        except Exception:
            pass  # reported by _finish
        Panel.longest_wait_ms = max(Panel.longest_wait_ms, (time.perf_counter() - start) * 1000)
        self._finish(generation, future)

    def worker(self) -> ThreadPoolExecutor:
        """The panel's one worker thread: its computes, and any other work that must not block the
        GUI thread, run there one at a time in the order submitted."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"compute-{self.NAME}")
        return self._executor

    def _announce(self, generation: int, future: Future) -> None:
        """On the worker thread: hand a finished compute to the GUI thread, unless the panel was
        retired meanwhile (its Qt side may be gone)."""
        if future is self._pending:
            try:
                self._finished.emit(generation, future)
            except RuntimeError:  # the Qt object was deleted after the check
                pass

    def _on_finished(self, generation: int, future: Future) -> None:
        if future is self._pending:  # not yet taken inline
            self._finish(generation, future)

    def _finish(self, generation: int, future: Future) -> None:
        """Draw (or report) a finished compute if it is the latest; else compute the latest once."""
        self._pending = None
        if generation != self._generation:
            self._start()
            return
        try:
            result = future.result()
        except Exception as error:  # shown in the status bar, never a crash
            self._report_failure(str(error))
            return
        self._show(result, generation)

    def _report_failure(self, message: str) -> None:
        self.message.emit(tr("Could not compute: {error}").format(error=message), True)

    def compute_now(self) -> None:
        """Compute and draw synchronously, every step at once (export, CLI, tests)."""
        self._generation += 1
        self._drawing = None
        self._show(self.compute(dict(self.values)), self._generation, at_once=True)

    def _show(self, result: Any, generation: int, at_once: bool = False) -> None:
        self.result = result
        steps = self.draw(result)
        if steps is None:
            self.drawn.emit()
            return
        self._drawing, self._drawing_generation, self._drawing_values = steps, generation, self.values
        if at_once:
            try:
                for _ in steps:
                    pass
            finally:
                self._drawing = None
            self.drawn.emit()
            return
        self._draw_step(steps)

    def _draw_step(self, steps: Iterator) -> None:
        """Draw the next parts of the figure, back to back until DRAW_SLICE_MS have gone; the rest in
        the next pass of the event loop (input and paint in between). Once the last is drawn:
        ``drawn``, or if the values changed meanwhile, their compute."""
        if steps is not self._drawing:  # retired, or replaced by a synchronous draw
            return
        if work_in_pass() > PAINT_BUDGET_MS:  # this pass has done its share (a repaint): the next one
            self._next_steps = steps
            self._next_step.start()
            return
        current, self.values = self.values, self._drawing_values  # every step sees the values of its result
        start = time.perf_counter()
        try:
            next(steps)
            while (time.perf_counter() - start) * 1000 < self.DRAW_SLICE_MS:
                next(steps)
        except StopIteration:
            self._drawing = None
        except BaseException:
            self._drawing = None
            raise
        finally:
            self.values = current
            elapsed_ms = (time.perf_counter() - start) * 1000
            Panel.drawing_ms += elapsed_ms
            work_done(elapsed_ms)
        if self._drawing is not None:  # a timer fires in the next pass; a call posted now could run in this one
            self._next_steps = steps
            self._next_step.start()
        elif self._generation == self._drawing_generation:
            self.drawn.emit()
        elif self._pending is None:  # changed meanwhile: the newest values next (drawn announced then)
            self._start()
