"""Write question cards as Markdown notes with their figures (2x PNG) beside them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from widgets.panel import Panel
from widgets.render import offscreen_panel, save_png
from widgets.style import Style
from workbench.cards import Card, Topic, card_values
from workbench.i18n import language
from workbench.notes import card_markdown, image_name, note_name, topic_markdown, topic_note_name
from workbench.scene import write_atomic

NOTE_SCALE = 2


def _figure(card: Card, folder: Path, style: Style, panel: Panel | None) -> str:
    """Render the card's figure into ``folder``; return its caption. ``panel``: a panel already
    showing the card's scene (the app's); otherwise the figure is rendered off screen."""
    path = str(folder / image_name(card))
    if panel is not None:
        save_png(panel.figure, path, style, NOTE_SCALE)
        return panel.caption()
    with offscreen_panel(card.panel, card_values(card), style) as shown:
        save_png(shown.figure, path, style, NOTE_SCALE)
        return shown.caption()


def write_card_note(card: Card, topic: Topic, folder: str | os.PathLike, style: Style,
                    panel: Panel | None = None) -> Path:
    """``folder/<id>.md`` and ``folder/<id>.png`` in the interface language; returns the note's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    caption = _figure(card, folder, style, panel)
    path = folder / note_name(card)
    write_atomic(str(path), card_markdown(card, topic, language(), caption).encode("utf-8"))
    return path


def write_topic_note(topic: Topic, cards: Iterable[Card], folder: str | os.PathLike, style: Style) -> Path:
    """``folder/<topic>.md`` with every card of the topic and each figure beside it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cards = list(cards)
    captions = {card.id: _figure(card, folder, style, None) for card in cards}
    path = folder / topic_note_name(topic)
    write_atomic(str(path), topic_markdown(topic, cards, language(), captions).encode("utf-8"))
    return path
