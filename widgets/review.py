"""The Questions window's Review tab: the cards due now (FSRS, see workbench.review), one at a time,
the answer hidden until revealed (Space), rated Again / Hard / Good / Easy (keys 1-4) with the
interval each rating gives on its button; the next due date after each rating; new cards at a
daily limit; per topic, how many cards are due, learning, learned and new."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSpinBox, QSplitter,
                               QTableWidget, QTableWidgetItem, QTextBrowser, QVBoxLayout, QWidget)

from widgets.style import Style
from workbench.cards import Card, Topic
from workbench.i18n import tr
from workbench.review import MAX_NEW_PER_DAY, RATINGS, ReviewError, ReviewStore, due_text, interval_text



def rating_texts() -> dict[str, str]:
    """Each rating's button text, with the interval it gives."""
    return {"again": tr("Again · {interval}"), "hard": tr("Hard · {interval}"), "good": tr("Good · {interval}"),
            "easy": tr("Easy · {interval}")}

COLUMNS = ("due", "learning", "learned", "new")


def card_html(card: Card, topic: str, revealed: bool, muted: str, kind: str = "") -> str:
    """A card as the Questions window shows it (quiz and Review): topic, id and ``kind`` in ``muted``
    colour, the question, the answer or a prompt to reveal it, and what to look at in its scene."""
    answer = (html.escape(card.text("answer")) if revealed
              else f"<i>{html.escape(tr('Think it through, then reveal the answer (Space).'))}</i>")
    head = " · ".join(html.escape(part) for part in (topic, card.id, kind) if part)
    return (f"<p style='color: {muted};'>{head}</p>"
            f"<h2>{html.escape(card.text('question'))}</h2>"
            f"<p><b>{html.escape(tr('Answer'))}</b> {answer}</p>"
            f"<p><b>{html.escape(tr('What to look at'))}</b> {html.escape(card.text('look'))}</p>")


class ReviewPane(QWidget):
    """``opened(card, answer_shown)`` when a card is shown or its answer revealed; ``changed()``
    after a rating or a new daily limit (the Questions window updates its tab title)."""

    opened = Signal(object, bool)
    changed = Signal()

    def __init__(self, style: Style, topics: list[Topic], cards: list[Card], store: ReviewStore,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("review")
        self.style_ = style
        self.topics = {t.id: t for t in topics}
        self.cards = cards
        self.store = store
        self.topic = ""  # "" = all topics
        self.queue: list[Card] = []
        self.revealed = False
        self.shown_at = 0.0
        self.active = False  # cards are shown (and opened in their panel) once the tab is first shown
        self.summary = QLabel()
        self.summary.setObjectName("review_summary")
        self.limit = QSpinBox()
        self.limit.setObjectName("new_per_day")
        self.limit.setRange(0, MAX_NEW_PER_DAY)
        self.limit.setValue(store.new_per_day)
        self.limit.setKeyboardTracking(False)  # a typed number counts once it is finished
        self.limit.setToolTip(tr("How many cards you have never reviewed are introduced each day"))
        self.problem = QLabel(store.problem)
        self.problem.setObjectName("review_problem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"color: {style.error};")
        self.problem.setVisible(bool(store.problem))
        self.table = QTableWidget(0, 1 + len(COLUMNS))
        self.table.setObjectName("topic_counts")
        self.table.setHorizontalHeaderLabels([tr("Topic"), tr("Due"), tr("Learning"), tr("Learned"), tr("New")])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(int(self.table.fontMetrics().height() * 1.5))
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setFocusPolicy(Qt.ClickFocus)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Fixed)  # fitted once per fill (fast)
        self.table.setToolTip(tr("Choose a topic to review only its cards"))
        self.view = QTextBrowser()
        self.view.setObjectName("review_card")
        self.status = QLabel()
        self.status.setObjectName("review_status")
        self.status.setWordWrap(True)
        self.reveal_button = QPushButton(tr("Reveal answer (Space)"))
        self.reveal_button.setObjectName("button_review_reveal")
        self.reveal_button.setShortcut("Space")
        self.reveal_button.setFocusPolicy(Qt.NoFocus)  # keys reach it by its shortcut; a focused button would take Space twice
        self.reveal_button.setToolTip(tr("Space"))
        self.rate_buttons: dict[str, QPushButton] = {}
        for key, name in enumerate(RATINGS, start=1):
            button = QPushButton()
            button.setObjectName(f"button_rate_{name}")
            button.setFocusPolicy(Qt.NoFocus)
            button.setToolTip(tr("Key {key}").format(key=key))
            button.clicked.connect(lambda _=False, n=name: self.rate(n))
            self.rate_buttons[name] = button
        top = QHBoxLayout()
        top.addWidget(self.summary, 1)
        top.addWidget(QLabel(tr("New cards a day")))
        top.addWidget(self.limit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reveal_button)
        for button in self.rate_buttons.values():
            buttons.addWidget(button)
        right = QWidget()
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.addWidget(self.view, 1)
        right_column.addLayout(buttons)
        right_column.addWidget(self.status)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(1, False)
        self.splitter = splitter
        column = QVBoxLayout(self)
        column.addLayout(top)
        column.addWidget(self.problem)
        column.addWidget(splitter, 1)
        self.reveal_button.clicked.connect(self.reveal)
        self.limit.valueChanged.connect(self._limit_changed)
        self.limit.editingFinished.connect(self.view.setFocus)
        self.table.itemSelectionChanged.connect(self._topic_chosen)
        self.timer = QTimer(self)  # a card in a learning step falls due while the tab is open
        self.timer.setInterval(30_000)
        self.timer.timeout.connect(self._tick)

    # ---- state ------------------------------------------------------------------------------------
    @property
    def card(self) -> Card | None:
        return self.queue[0] if self.queue else None

    def due_count(self) -> int:
        """Cards Review would show now (due, and today's new ones), of every topic."""
        return len(self.store.queue(self.cards))

    def activate(self) -> None:
        """The tab is shown: fill it and show the first card (opened in its panel)."""
        first = not self._sized
        self.active = True
        self.refresh()
        self.timer.start()
        if first:
            self._size_once()

    _sized = False

    def _size_once(self) -> None:
        """The topic table as wide as its names and counts, the card the rest; the window widened
        (within the screen) so that the card keeps room to read."""
        self._sized = True
        table = self.table
        width = (table.horizontalHeader().length() + table.verticalScrollBar().sizeHint().width()
                 + 2 * table.frameWidth() + 2)
        table.setMinimumWidth(width)
        card = int(self.style_.point_size * 50)
        window = self.window()
        screen = window.screen().availableGeometry().width() if window.screen() is not None else 10_000
        extra = width + card + 60 - window.width()
        if extra > 0:
            window.resize(min(window.width() + extra, screen), window.height())
        self.splitter.setSizes([width, max(self.splitter.width() - width, card)])

    def deactivate(self) -> None:
        self.active = False
        self.timer.stop()

    def refresh(self) -> None:
        """Counts, queue and the card shown, from the store; the card shown stays if still queued."""
        now = self.store.now()
        shown = self.card
        cards = [c for c in self.cards if not self.topic or c.topic == self.topic]
        self.queue = self.store.queue(cards, now)
        if shown is not None and shown in self.queue:
            self.queue.remove(shown)
            self.queue.insert(0, shown)
        self._fill_table(now)
        everything = self.store.queue(self.cards, now)
        new = sum(1 for c in everything if self.store.state(c.id) is None)
        self.summary.setText(tr("To review now: {n} ({due} due again, {new} new; {limit} new cards a day)").format(
            n=len(everything), due=len(everything) - new, new=new, limit=self.store.new_per_day))
        if self.card is not self.displayed or self.card is None:
            self._show_card()
        else:
            self._show_buttons()

    def _fill_table(self, now) -> None:
        counts = self.store.counts(self.cards, now)
        rows = [("", tr("All topics"))] + [(t.id, t.label()) for t in self.topics.values() if t.id in counts]
        with QSignalBlocker(self.table):
            self.table.setRowCount(len(rows))
            for row, (topic_id, label) in enumerate(rows):
                values = counts.get(topic_id)
                item = QTableWidgetItem(label)
                item.setData(Qt.UserRole, topic_id)
                if not topic_id:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, 0, item)
                for column, field in enumerate(COLUMNS, start=1):
                    cell = QTableWidgetItem(str(getattr(values, field)))
                    cell.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                    self.table.setItem(row, column, cell)
                if topic_id == self.topic:
                    self.table.selectRow(row)
            self.table.resizeColumnsToContents()

    # ---- one card ---------------------------------------------------------------------------------
    displayed: Card | None = None  # the card in the view

    def _show_card(self) -> None:
        card = self.card
        self.displayed = card
        self.revealed = False
        self.shown_at = time.monotonic()
        self._show_view()
        self._show_buttons()
        if self.active:  # keys go to the review: Space and 1-4 are not typed into the daily limit
            self.view.setFocus()
        if card is not None and self.active:
            self.opened.emit(card, False)

    def _show_view(self) -> None:
        card = self.card
        if card is None:
            self.view.setHtml(self._empty_html())
            return
        state = self.store.state(card.id)
        kind = tr("New card") if state is None else tr("due {when}").format(when=due_text(state.due, self.store.now()))
        self.view.setHtml(
            card_html(card, self.topics[card.topic].label(), self.revealed, self.style_.muted, kind)
            + (f"<p style='color: {self.style_.muted};'>{html.escape(tr('How well did you know it? Press 1 to 4.'))}</p>"
               if self.revealed else ""))

    def _empty_html(self) -> str:
        now = self.store.now()
        cards = [c for c in self.cards if not self.topic or c.topic == self.topic]
        lines = [tr("Nothing to review now.")]
        later = self.store.next_due(cards, now)
        if later is not None:
            lines.append(tr("The next card is due {when}.").format(when=due_text(later, now)))
        unseen = sum(1 for c in cards if self.store.state(c.id) is None)
        if unseen and not self.store.new_left_today(now):
            lines.append(tr("Today's new cards are done ({limit} a day); {n} more come on the next days, or raise "
                            "“New cards a day”.").format(limit=self.store.new_per_day, n=unseen))
        return "".join(f"<p>{html.escape(line)}</p>" for line in lines)

    def _show_buttons(self) -> None:
        card = self.card
        self.reveal_button.setEnabled(card is not None and not self.revealed)
        preview = self.store.preview(card.id) if card is not None else {}
        now = self.store.now()
        texts = rating_texts()
        for key, (name, button) in enumerate(self.rate_buttons.items(), start=1):
            interval = interval_text(preview[name] - now) if name in preview else "–"
            button.setText(f"{key}  " + texts[name].format(interval=interval))
            button.setShortcut(str(key))  # setText put the text's mnemonic (none) in its place
            button.setEnabled(card is not None and self.revealed)

    def reveal(self) -> None:
        if self.card is not None and not self.revealed:
            self.revealed = True
            self._show_view()
            self._show_buttons()
            self.opened.emit(self.card, True)

    def rate(self, name: str) -> None:
        """Rate the card shown (once revealed), save, say when it is due next, show the next card."""
        card = self.card
        if card is None or not self.revealed:
            return
        now = self.store.now()
        duration = int((time.monotonic() - self.shown_at) * 1000)
        try:
            due = self.store.rate(card.id, name, now, duration_ms=duration)
        except OSError as error:  # kept in memory; said, not lost silently
            self._say(tr("Could not save the review file {path}: {error}").format(
                path=error.filename, error=error.strerror or error), True)
        else:
            self._say(tr("{question} — next review {when}").format(
                question=_short(card.text("question")), when=due_text(due, now)))
        self.queue.pop(0)
        self.refresh()
        self.changed.emit()

    def _say(self, text: str, is_error: bool = False) -> None:
        self.status.setStyleSheet(f"color: {self.style_.error};" if is_error else "")
        self.status.setText(text)

    # ---- choices ----------------------------------------------------------------------------------
    def _limit_changed(self, value: int) -> None:
        try:
            self.store.set_new_per_day(value)
        except ReviewError as error:
            self._say(str(error), True)
            return
        except OSError as error:  # the new limit holds for this session; said, not lost silently
            self._say(tr("Could not save the review file {path}: {error}").format(
                path=error.filename, error=error.strerror or error), True)
        self.refresh()
        self.changed.emit()
        self.view.setFocus()  # Space and 1-4 review again, and are not typed into the limit

    def _topic_chosen(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        topic = self.table.item(rows[0].row(), 0).data(Qt.UserRole) if rows else ""
        if topic != self.topic:
            self.topic = topic
            self.queue = []
            self.refresh()

    def _tick(self) -> None:
        if self.card is None and self.isVisible():
            self.refresh()


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
