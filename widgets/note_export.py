"""Write question cards as Markdown notes with their figures (2x PNG, or vector PDF) beside them."""

from __future__ import annotations

import os
from itertools import takewhile
from pathlib import Path
from typing import Iterable

from widgets.panel import Panel
from widgets.render import offscreen_panel, pdf_bytes, png_bytes
from widgets.style import Style
from workbench.cards import Card, Topic, card_values
from workbench.i18n import language
from workbench.notes import card_markdown, image_name, note_name, topic_markdown, topic_note_name
from workbench.scene import write_files_atomic

NOTE_SCALE = 2


def _image(panel: Panel, style: Style, image_format: str) -> bytes:
    """The panel's figure (no caption: the note has it) as 2x PNG or vector PDF data."""
    if image_format == "pdf":
        return pdf_bytes(panel.figure, style, panel.title())
    return png_bytes(panel.figure, style, NOTE_SCALE)


def _figure(card: Card, style: Style, panel: Panel | None, image_format: str = "png") -> tuple[bytes, str]:
    """The card's figure as PNG (or PDF) data, and its caption. ``panel``: a panel already showing
    the card's scene (the app's); otherwise the figure is rendered off screen."""
    image_name(card, image_format)  # an unknown format is refused before anything is rendered
    if panel is not None:
        return _image(panel, style, image_format), panel.caption()
    with offscreen_panel(card.panel, card_values(card), style) as shown:
        return _image(shown, style, image_format), shown.caption()


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
                    panel: Panel | None = None, image_format: str = "png") -> Path:
    """``folder/<id>.md`` and ``folder/<id>.png`` (``image_format="pdf"``: ``<id>.pdf``) in the
    interface language; returns the note's path. Everything is rendered before anything is
    written: a card that fails leaves nothing behind."""
    folder = Path(folder)
    image, caption = _figure(card, style, panel, image_format)
    name = image_name(card, image_format)
    note = card_markdown(card, topic, language(), caption, name).encode("utf-8")
    _write_into(folder, {name: image, note_name(card): note})
    return folder / note_name(card)


def write_topic_note(topic: Topic, cards: Iterable[Card], folder: str | os.PathLike, style: Style,
                     image_format: str = "png") -> Path:
    """``folder/<topic>.md`` with every card of the topic and each figure (PNG or PDF) beside it
    (all or nothing, as :func:`write_card_note`)."""
    folder = Path(folder)
    cards = list(cards)
    figures = {card.id: _figure(card, style, None, image_format) for card in cards}
    note = topic_markdown(topic, cards, language(), {id_: caption for id_, (_, caption) in figures.items()},
                          image_format)
    files = {image_name(card, image_format): figures[card.id][0] for card in cards}
    _write_into(folder, {**files, topic_note_name(topic): note.encode("utf-8")})
    return folder / topic_note_name(topic)
