"""The Questions window (Ctrl+K): search and filter the question cards, open one in its panel,
step through them, quiz yourself (answer hidden until revealed, "got it" / "again" marks kept),
and export a card or a whole topic as a Markdown note. Its Review tab (Ctrl+Shift+K) schedules the
cards with FSRS (widgets.review)."""

from __future__ import annotations

import html
from typing import Callable

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QSplitter, QTabWidget, QTextBrowser,
                               QVBoxLayout, QWidget)

from widgets.review import ReviewPane, card_html
from widgets.style import Style
from workbench.cards import Card, Topic, search
from workbench.i18n import tr
from workbench.review import ReviewStore

MARKS = ("got", "again")


class QuestionsDialog(QDialog):
    """``opened(card, answer_shown)`` when a card is chosen; ``export_card(card)`` and
    ``export_topic(topic)`` when a note is asked for. ``marks`` (card id -> "got" | "again") is
    shared with the caller, which stores it through ``save_marks``; ``review`` holds the FSRS
    states of the Review tab (default: in memory), and the marks are carried over to it once."""

    opened = Signal(object, bool)
    export_card = Signal(object)
    export_topic = Signal(object)

    def __init__(self, style: Style, topics: list[Topic], cards: list[Card], marks: dict[str, str],
                 save_marks: Callable[[dict[str, str]], None], parent: QWidget | None = None,
                 review: ReviewStore | None = None):
        super().__init__(parent)
        self.setObjectName("questions")
        self.setWindowTitle(tr("Questions"))
        self.style_ = style
        self.topics = {t.id: t for t in topics}
        self.cards = cards
        self.marks = marks
        self.save_marks = save_marks
        self.shown: list[Card] = []
        self.revealed = False
        self.search_box = QLineEdit()
        self.search_box.setObjectName("search")
        self.search_box.setPlaceholderText(tr("Search questions and answers (English or 中文)…"))
        self.search_box.setClearButtonEnabled(True)
        self.topic_box = QComboBox()
        self.topic_box.setObjectName("topic")
        self.topic_box.addItem(tr("All topics"), "")
        for topic in topics:
            self.topic_box.addItem(topic.label(), topic.id)
        self.quiz_box = QCheckBox(tr("Quiz mode"))
        self.quiz_box.setObjectName("quiz")
        self.quiz_box.setToolTip(tr("The answer stays hidden until you reveal it; mark each card 'got it' or 'again'"))
        self.list = QListWidget()
        self.list.setObjectName("card_list")
        self.list.setWordWrap(True)
        self.list.setSpacing(3)
        self.list.setAlternatingRowColors(True)
        self.view = QTextBrowser()
        self.view.setObjectName("card_view")
        self.progress = QLabel()
        self.progress.setObjectName("progress")
        self.progress.setWordWrap(True)
        self.buttons = {}
        for key, text in (("previous", tr("◀ Previous")), ("next", tr("Next ▶")), ("reveal", tr("Reveal answer")),
                          ("got", tr("Got it")), ("again", tr("Again")), ("note", tr("Export as note…")),
                          ("topic_note", tr("Export topic as note…"))):
            button = QPushButton(text)
            button.setObjectName(f"button_{key}")
            self.buttons[key] = button
        self.buttons["previous"].setShortcut("Alt+Left")
        self.buttons["next"].setShortcut("Alt+Right")
        self.buttons["reveal"].setShortcut("Space")
        top = QHBoxLayout()
        top.addWidget(self.search_box, 3)
        top.addWidget(self.topic_box, 2)
        top.addWidget(self.quiz_box)
        right = QWidget()
        right_column = QVBoxLayout(right)
        right_column.setContentsMargins(0, 0, 0, 0)
        right_column.addWidget(self.view, 1)
        right_column.addWidget(self.progress)
        grid = QGridLayout()
        for i, key in enumerate(("previous", "next", "reveal", "got", "again")):
            grid.addWidget(self.buttons[key], 0, i)
        grid.addWidget(self.buttons["note"], 1, 0, 1, 2)
        grid.addWidget(self.buttons["topic_note"], 1, 2, 1, 3)
        right_column.addLayout(grid)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.list)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        browse = QWidget()
        browse_column = QVBoxLayout(browse)
        browse_column.setContentsMargins(0, 0, 0, 0)
        browse_column.addLayout(top)
        browse_column.addWidget(splitter, 1)
        store = review if review is not None else ReviewStore(None)
        if not store.marks_imported:
            try:
                store.import_marks(marks, [c.id for c in cards])
            except OSError as error:  # kept in memory for now, said on the Review tab
                store.problem = tr("Could not save the review file {path}: {error}").format(
                    path=error.filename, error=error.strerror or error)
        self.review = ReviewPane(style, topics, cards, store)
        self.review.opened.connect(self.opened)
        self.review.changed.connect(self._review_title)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("question_tabs")
        self.tabs.addTab(browse, tr("Browse and quiz"))
        self.tabs.addTab(self.review, "")
        self._review_title()
        column = QVBoxLayout(self)
        column.addWidget(self.tabs)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.resize(int(style.point_size * 90), int(style.point_size * 55))
        self.search_box.textChanged.connect(self.refilter)
        self.topic_box.currentIndexChanged.connect(self.refilter)
        self.quiz_box.toggled.connect(self._quiz_toggled)
        self.list.currentRowChanged.connect(self._row_changed)
        self.buttons["previous"].clicked.connect(lambda: self.step(-1))
        self.buttons["next"].clicked.connect(lambda: self.step(+1))
        self.buttons["reveal"].clicked.connect(self.reveal)
        self.buttons["got"].clicked.connect(lambda: self.mark("got"))
        self.buttons["again"].clicked.connect(lambda: self.mark("again"))
        self.buttons["note"].clicked.connect(lambda: self.card and self.export_card.emit(self.card))
        self.buttons["topic_note"].clicked.connect(self._export_topic)
        self.refilter()

    # ---- tabs ------------------------------------------------------------------------------------
    def show_review(self) -> None:
        """Switch to the Review tab (its first card opens in its panel)."""
        if self.tabs.currentWidget() is self.review:
            if not self.review.active:
                self.review.activate()
        else:
            self.tabs.setCurrentWidget(self.review)

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.review:
            self.review.activate()
        else:
            self.review.deactivate()
            if self.card is not None:  # back to the card chosen in the list
                self.opened.emit(self.card, self.revealed)

    def _review_title(self) -> None:
        self.tabs.setTabText(1, tr("Review ({n} to do)").format(n=self.review.due_count()))

    # ---- the list --------------------------------------------------------------------------------
    @property
    def card(self) -> Card | None:
        row = self.list.currentRow()
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def refilter(self) -> None:
        """The cards matching the search text and topic; the chosen card stays chosen if it matches."""
        chosen = self.card
        topic = self.topic_box.currentData()
        found = search(self.cards, self.search_box.text())
        self.shown = [c for c in found if not topic or c.topic == topic]
        with QSignalBlocker(self.list):
            self.list.clear()
            for card in self.shown:
                item = QListWidgetItem(self._item_text(card))
                item.setToolTip(f"{card.id} · {self.topics[card.topic].label()}")
                self.list.addItem(item)
            if chosen in self.shown:
                self.list.setCurrentRow(self.shown.index(chosen))
        if self.card is None:
            self._show_card()
        self._show_progress()

    def _item_text(self, card: Card) -> str:
        mark = {"got": "✓ ", "again": "↻ "}.get(self.marks.get(card.id, ""), "")
        return mark + card.text("question")

    def open_card(self, card_id: str) -> bool:
        """Choose the card called ``card_id`` (clearing filters that hide it)."""
        if all(c.id != card_id for c in self.shown):
            with QSignalBlocker(self.search_box), QSignalBlocker(self.topic_box):
                self.search_box.clear()
                self.topic_box.setCurrentIndex(0)
            self.refilter()
        for row, card in enumerate(self.shown):
            if card.id == card_id:
                self.list.setCurrentRow(row)
                return True
        return False

    def step(self, direction: int) -> None:
        if self.shown:
            row = self.list.currentRow()
            self.list.setCurrentRow((row + direction) % len(self.shown) if row >= 0 else 0)

    def _row_changed(self, row: int) -> None:
        self.revealed = not self.quiz_box.isChecked()
        self._show_card()
        if self.card is not None:
            self.opened.emit(self.card, self.revealed)

    # ---- quiz ------------------------------------------------------------------------------------
    def _quiz_toggled(self, on: bool) -> None:
        self.revealed = not on
        self._show_card()
        if self.card is not None:
            self.opened.emit(self.card, self.revealed)

    def reveal(self) -> None:
        if self.card is not None and not self.revealed:
            self.revealed = True
            self._show_card()
            self.opened.emit(self.card, True)

    def mark(self, how: str) -> None:
        card = self.card
        if card is None:
            return
        self.marks[card.id] = how
        self.save_marks(self.marks)
        self.list.currentItem().setText(self._item_text(card))
        self._show_progress()
        if self.quiz_box.isChecked():
            self.step(+1)

    # ---- showing ---------------------------------------------------------------------------------
    def _show_card(self) -> None:
        card = self.card
        quiz = self.quiz_box.isChecked()
        for key in ("previous", "next"):
            self.buttons[key].setEnabled(bool(self.shown))
        for key in ("got", "again", "note"):
            self.buttons[key].setEnabled(card is not None)
        self.buttons["reveal"].setEnabled(card is not None and quiz and not self.revealed)
        self.buttons["topic_note"].setEnabled(bool(self.shown))
        if card is None:
            self.view.setHtml(f"<p>{html.escape(tr('No card matches.'))}</p>" if not self.shown else "")
            return
        self.view.setHtml(card_html(card, self.topics[card.topic].label(), self.revealed, self.style_.muted))

    def _show_progress(self) -> None:
        """'got it' counts per topic of the cards listed."""
        topic = self.topic_box.currentData()
        lines = []
        for topic_id, label in ((t.id, t.label()) for t in self.topics.values()):
            if topic and topic_id != topic:
                continue
            ids = [c.id for c in self.cards if c.topic == topic_id]
            got = sum(self.marks.get(i) == "got" for i in ids)
            again = sum(self.marks.get(i) == "again" for i in ids)
            if got or again or topic:
                lines.append(tr("{topic}: {got} of {n} got it, {again} to see again").format(
                    topic=label, got=got, n=len(ids), again=again))
        total = sum(self.marks.get(c.id) == "got" for c in self.cards)
        head = tr("Progress: {got} of {n} cards got it").format(got=total, n=len(self.cards))
        self.progress.setText("\n".join([head] + lines))

    def _export_topic(self) -> None:
        topic = self.topic_box.currentData() or (self.card.topic if self.card else "")
        if topic:
            self.export_topic.emit(self.topics[topic])
