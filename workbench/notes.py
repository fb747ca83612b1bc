"""Markdown notes from question cards: the question, the answer, what to look at, the parameter
values and the figure beside it (a relative link). Qt-free; the figures are rendered by
``widgets.note_export``."""

from __future__ import annotations

from typing import Iterable, Mapping

from workbench.cards import Card, Topic
from workbench.i18n import ntr, tr


IMAGE_FORMATS = ("png", "pdf")  # a note's figures: 2x PNG (the default) or vector PDF


def image_name(card: Card, image_format: str = "png") -> str:
    """The figure's file name beside the note: ``<card id>.png`` (or ``.pdf``)."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format {image_format!r}: expected one of {', '.join(IMAGE_FORMATS)}")
    return f"{card.id}.{image_format}"


def note_name(card: Card) -> str:
    return f"{card.id}.md"


def topic_note_name(topic: Topic) -> str:
    return f"{topic.id}.md"


def _section(card: Card, lang: str, caption: str, image: str, level: int) -> list[str]:
    hashes = "#" * level
    question = card.text("question", lang)
    return [
        f"{hashes} {question}", "",
        f"**{tr('Answer')}** {card.text('answer', lang)}", "",
        f"**{tr('What to look at')}** {card.text('look', lang)}", "",
        f"![{question}]({image})", "",
        f"*{caption}*", "",
        f"<sub>{tr('Card')} `{card.id}`" + (f" · {tr('interview notes')} {', '.join(card.sources)}" if card.sources else "")
        + "</sub>", "",
    ]


def card_markdown(card: Card, topic: Topic, lang: str, caption: str, image: str | None = None) -> str:
    """One card as a Markdown note; ``caption`` names the parameter values of the figure, ``image``
    its relative path (default :func:`image_name`). Texts in ``lang``; labels in the interface language."""
    lines = [f"<sub>{topic.label(lang)}</sub>", ""]
    lines += _section(card, lang, caption, image or image_name(card), 1)
    return "\n".join(lines).rstrip() + "\n"


def topic_markdown(topic: Topic, cards: Iterable[Card], lang: str, captions: Mapping[str, str],
                   image_format: str = "png") -> str:
    """Every card of a topic in one note, each with its figure (:func:`image_name`) beside it."""
    cards = list(cards)
    lines = [f"# {topic.label(lang)}", "", ntr("{n} question", "{n} questions", len(cards)).format(n=len(cards)), ""]
    for card in cards:
        lines += _section(card, lang, captions[card.id], image_name(card, image_format), 2)
    return "\n".join(lines).rstrip() + "\n"
