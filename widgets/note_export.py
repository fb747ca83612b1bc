"""Write question cards as Markdown notes with their figures (2x PNG) beside them."""

from __future__ import annotations

import os
from itertools import takewhile
from pathlib import Path
from typing import Iterable

from widgets.panel import Panel
from widgets.render import offscreen_panel, png_bytes
from widgets.style import Style
from workbench.cards import Card, Topic, card_values
from workbench.i18n import language
from workbench.notes import card_markdown, image_name, note_name, topic_markdown, topic_note_name
from workbench.scene import write_files_atomic

NOTE_SCALE = 2


def _figure(card: Card, style: Style, panel: Panel | None) -> tuple[bytes, str]:
    """The card's figure as PNG data, and its caption. ``panel``: a panel already showing the
    card's scene (the app's); otherwise the figure is rendered off screen."""
    if panel is not None:
        return png_bytes(panel.figure, style, NOTE_SCALE), panel.caption()
    with offscreen_panel(card.panel, card_values(card), style) as shown:
        return png_bytes(shown.figure, style, NOTE_SCALE), shown.caption()


def _write_into(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``name: data`` into ``folder``, made (with missing parents) if need be; all files or
    none (see write_files_atomic). When writing fails, the folders made here are removed again."""
    made = list(takewhile(lambda p: not p.exists(), (folder, *folder.parents)))  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_files_atomic({folder / name: data for name, data in files.items()})
    except BaseException:
        for made_folder in made:
            try:
                made_folder.rmdir()
            except FileNotFoundError:  # never made
                continue
            except OSError:  # something else put a file there meanwhile: leave it
                break
        raise


def write_card_note(card: Card, topic: Topic, folder: str | os.PathLike, style: Style,
                    panel: Panel | None = None) -> Path:
    """``folder/<id>.md`` and ``folder/<id>.png`` in the interface language; returns the note's path.
    Everything is rendered before anything is written: a card that fails leaves nothing behind."""
    folder = Path(folder)
    image, caption = _figure(card, style, panel)
    note = card_markdown(card, topic, language(), caption).encode("utf-8")
    _write_into(folder, {image_name(card): image, note_name(card): note})
    return folder / note_name(card)


def write_topic_note(topic: Topic, cards: Iterable[Card], folder: str | os.PathLike, style: Style) -> Path:
    """``folder/<topic>.md`` with every card of the topic and each figure beside it (all or nothing,
    as :func:`write_card_note`)."""
    folder = Path(folder)
    cards = list(cards)
    figures = {card.id: _figure(card, style, None) for card in cards}
    note = topic_markdown(topic, cards, language(), {id_: caption for id_, (_, caption) in figures.items()})
    files = {image_name(card): figures[card.id][0] for card in cards}
    _write_into(folder, {**files, topic_note_name(topic): note.encode("utf-8")})
    return folder / topic_note_name(topic)
