"""Question cards: a question from the syllabus, a short answer in English and Chinese, and the
panel scene that shows the answer, with one line saying what to look at.

Cards are data: ``assets/cards/topics.json`` lists the topics and ``assets/cards/<panel>.json``
holds that panel's cards (``WORKBENCH_CARDS_DIR`` names another folder, e.g. for tests).
Everything is checked against the schema when it is read, and every problem is reported at once
(:class:`CardError`)::

    {"version": 1, "topics": [{"id": "attention", "en": "Attention", "zh": "注意力"}, ...]}
    {"version": 1, "cards": [{"id": "attention.sqrt-dk", "topic": "attention", "panel": "attention",
      "scene": {"scale": false}, "question": {"en": ..., "zh_CN": ...}, "answer": {...},
      "look": {...}, "source": "000,003"}, ...]}

``scene`` holds parameter changes over the panel's defaults (as a preset or ``--set``);
``source`` names the seed file(s) the question comes from. Qt-free: the panels' declarations are
imported only when scenes are validated (``validate_scenes=True``, :func:`check_scenes`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from workbench.i18n import language
from workbench.registry import PANELS

VERSION = 1
LANGS = ("en", "zh_CN")
TEXTS = ("question", "answer", "look")
TOPICS_FILE = "topics.json"
_CARD_KEYS = ("id", "topic", "panel", "scene", "question", "answer", "look", "source")
_TOPIC_KEYS = ("id", "en", "zh")
_ID = re.compile(r"([a-z][a-z0-9_]*)\.([a-z0-9]+(?:-[a-z0-9]+)*)")
_TOPIC_ID = re.compile(r"[a-z][a-z0-9_]*")
_SOURCE = re.compile(r"(?:\d{3}(?:,\d{3})*)?")  # empty: no seed asks it (the card extends one)


class CardError(ValueError):
    """The cards cannot be used; ``problems`` lists one message each (file, card id, field)."""

    def __init__(self, problems: Iterable[str]):
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class Text:
    """One text in both languages."""

    en: str
    zh_CN: str

    def get(self, lang: str | None = None) -> str:
        """The text in ``lang`` (default: the interface language)."""
        return self.zh_CN if (lang or language()) == "zh_CN" else self.en


@dataclass(frozen=True)
class Topic:
    """A topic cards are grouped by (its Chinese name is "zh" in topics.json)."""

    id: str
    en: str
    zh_CN: str

    def label(self, lang: str | None = None) -> str:
        return self.zh_CN if (lang or language()) == "zh_CN" else self.en


@dataclass(frozen=True)
class Card:
    """One question card. ``scene``: (name, value) pairs of parameter changes over the panel's
    defaults, hashable; ``dict(card.scene)`` is what ``PARAMS.resolve`` takes."""

    id: str
    topic: str
    panel: str
    scene: tuple[tuple[str, Any], ...] = field(repr=False)
    question: Text = field(repr=False)
    answer: Text = field(repr=False)
    look: Text = field(repr=False)
    source: str = ""

    def text(self, which: str, lang: str | None = None) -> str:
        """``which`` text ("question", "answer" or "look") in ``lang`` (default: the interface language)."""
        if which not in TEXTS:
            raise KeyError(f"{which!r} is not one of {', '.join(TEXTS)}")
        return getattr(self, which).get(lang)

    @property
    def sources(self) -> tuple[str, ...]:
        """The seed files' numbers, e.g. ("002", "004"); () for a card no seed asks."""
        return tuple(self.source.split(",")) if self.source else ()


def _check_top(data: Any, where: str, key: str, problems: list[str]) -> list:
    """The list under ``key`` of a file's top-level object, after checking its version and keys."""
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a JSON object")
        return []
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append(f"{where}: version: must be the integer {VERSION}")
    elif version > VERSION:
        problems.append(f"{where}: version: {version} is newer than this workbench reads ({VERSION}); "
                        "update the workbench")
    elif version != VERSION:
        problems.append(f"{where}: version: {version} is not {VERSION}")
    unknown = sorted(set(data) - {"version", key})
    if unknown:
        problems.append(f"{where}: unknown keys: {', '.join(unknown)}")
    items = data.get(key)
    if not isinstance(items, list):
        problems.append(f"{where}: {key}: must be a list")
        return []
    return items


def _text(raw: Any, where: str, problems: list[str]) -> Text | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object with {' and '.join(LANGS)}")
        return None
    ok = True
    for lang in LANGS:
        value = raw.get(lang)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where}: {lang} is missing or empty")
            ok = False
    unknown = sorted(set(raw) - set(LANGS))
    if unknown:
        problems.append(f"{where}: unknown languages: {', '.join(unknown)} (known: {', '.join(LANGS)})")
        ok = False
    return Text(raw["en"].strip(), raw["zh_CN"].strip()) if ok else None


def _scene(raw: Any, where: str, problems: list[str]) -> tuple | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object of parameter: value")
        return None
    bad = [str(name) for name, value in raw.items() if not isinstance(name, str)
           or not isinstance(value, (str, int, float, bool)) or (isinstance(value, float) and not math.isfinite(value))]
    if bad:
        problems.append(f"{where}: {', '.join(bad)}: values must be numbers, true/false or text")
        return None
    return tuple(raw.items())


def _topics(data: Any, problems: list[str]) -> list[Topic]:
    topics = []
    for index, raw in enumerate(_check_top(data, TOPICS_FILE, "topics", problems)):
        if not isinstance(raw, dict):
            problems.append(f"{TOPICS_FILE}: topic #{index}: expected an object")
            continue
        name = raw.get("id") if isinstance(raw.get("id"), str) else f"#{index}"
        where = f"{TOPICS_FILE}: topic {name}"
        bad = [k for k in _TOPIC_KEYS if not isinstance(raw.get(k), str) or not raw[k].strip()]
        problems.extend(f"{where}: {k}: missing or empty" for k in bad)
        if set(raw) - set(_TOPIC_KEYS):
            problems.append(f"{where}: unknown keys: {', '.join(sorted(set(raw) - set(_TOPIC_KEYS)))}")
        if "id" not in bad and not _TOPIC_ID.fullmatch(raw["id"]):
            problems.append(f"{where}: id: lowercase letters, digits and _ only")
        if any(t.id == name for t in topics):
            problems.append(f"{where}: id: duplicate")
        elif not bad:
            topics.append(Topic(raw["id"], raw["en"].strip(), raw["zh"].strip()))
    return topics


def _card(raw: Any, index: int, file: str, topic_ids: set[str], problems: list[str]) -> Card | None:
    if not isinstance(raw, dict):
        problems.append(f"{file}: card #{index}: expected an object")
        return None
    card_id = raw.get("id") if isinstance(raw.get("id"), str) else f"#{index}"
    where = f"{file}: card {card_id}"
    before = len(problems)
    missing = [k for k in _CARD_KEYS if k not in raw]
    if missing:
        problems.append(f"{where}: missing fields: {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_CARD_KEYS))
    if unknown:
        problems.append(f"{where}: unknown keys: {', '.join(unknown)}")
    for key in ("id", "topic", "panel", "source"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"{where}: {key}: must be text")
    panel = raw.get("panel")
    if isinstance(panel, str):
        if panel not in PANELS:
            problems.append(f"{where}: panel: {panel!r} is not a panel of this workbench "
                            f"(known: {', '.join(PANELS)})")
        elif file != f"{panel}.json":
            problems.append(f"{where}: panel: {panel!r}, but the card is in {file} (expected {panel}.json)")
    if isinstance(raw.get("id"), str):
        match = _ID.fullmatch(card_id)
        if not match:
            problems.append(f"{where}: id: expected <panel>.<slug>, lowercase, slug words joined by -")
        elif isinstance(panel, str) and match.group(1) != panel:
            problems.append(f"{where}: id: must start with the panel, {panel}.")
    if isinstance(raw.get("topic"), str) and raw["topic"] not in topic_ids:
        problems.append(f"{where}: topic: {raw['topic']!r} is not in {TOPICS_FILE}")
    if isinstance(raw.get("source"), str) and not _SOURCE.fullmatch(raw["source"]):
        problems.append(f"{where}: source: seed numbers like \"002\" or \"002,004\", or \"\" for none")
    scene = _scene(raw["scene"], f"{where}: scene", problems) if "scene" in raw else None
    texts = {k: _text(raw[k], f"{where}: {k}", problems) for k in TEXTS if k in raw}
    if len(problems) > before:
        return None
    return Card(card_id, raw["topic"], panel, scene, texts["question"], texts["answer"], texts["look"], raw["source"])


def parse(topics_data: Any, files: Mapping[str, Any]) -> tuple[list[Topic], list[Card]]:
    """(topics, cards) from decoded JSON: ``topics_data`` is topics.json, ``files`` maps a file
    name ("optimizers.json") to its content. Raises CardError listing every problem."""
    problems: list[str] = []
    topics = _topics(topics_data, problems)
    topic_ids = {t.id for t in topics}
    cards: list[Card] = []
    seen: dict[str, str] = {}
    for file, data in files.items():
        for index, raw in enumerate(_check_top(data, file, "cards", problems)):
            card = _card(raw, index, file, topic_ids, problems)
            if card is None:
                continue
            if card.id in seen:
                problems.append(f"{file}: card {card.id}: id: duplicate (also in {seen[card.id]})")
                continue
            seen[card.id] = file
            cards.append(card)
    if problems:
        raise CardError(problems)
    return topics, cards


def parse_cards(topics_data: Any, files: Mapping[str, Any]) -> list[Card]:
    """The cards of :func:`parse` (which see)."""
    return parse(topics_data, files)[1]


def card_values(card: Card) -> dict[str, Any]:
    """The card's scene over its panel's defaults (imports the panel, hence Qt); ParamError when
    the scene is not valid for the panel."""
    from workbench.registry import panel_class

    return panel_class(card.panel).PARAMS.resolve(dict(card.scene))


def check_scenes(cards: Iterable[Card]) -> None:
    """Resolve every card's scene against its panel's declared parameters (imports the panels,
    hence Qt); raise CardError listing every refused value."""
    from workbench.params import ParamError

    problems = []
    for card in cards:
        try:
            card_values(card)
        except ParamError as error:
            problems.extend(f"{card.panel}.json: card {card.id}: scene: {p}" for p in error.problems)
    if problems:
        raise CardError(problems)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not allowed")


def _folder():
    """The cards' folder: ``assets/cards``, or the folder named by WORKBENCH_CARDS_DIR (e.g. for tests)."""
    folder = os.environ.get("WORKBENCH_CARDS_DIR")
    return Path(folder) if folder else resources.files("assets").joinpath("cards")


@lru_cache(maxsize=1)
def _loaded() -> tuple[tuple[Topic, ...], tuple[Card, ...]]:
    folder = _folder()
    try:
        names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    except OSError as error:
        raise CardError([f"assets/cards: cannot read: {error}"]) from None
    if TOPICS_FILE not in names:
        raise CardError([f"assets/cards: {TOPICS_FILE} is missing"])
    order = {f"{panel}.json": i for i, panel in enumerate(PANELS)}  # the navigation order, then the rest
    names.sort(key=lambda n: (order.get(n, len(order)), n))
    data, problems = {}, []
    for name in names:
        try:
            data[name] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            problems.append(f"{name}: cannot be read as JSON: {error}")
    if problems:
        raise CardError(problems)
    topics, cards = parse(data.pop(TOPICS_FILE), data)
    return tuple(topics), tuple(cards)


def load_cards(validate_scenes: bool = False) -> tuple[list[Topic], list[Card]]:
    """(topics, cards) from assets/cards, schema-checked (read once, then cached); with
    ``validate_scenes`` every scene is also resolved against its panel (see :func:`check_scenes`)."""
    topics, cards = _loaded()
    if validate_scenes:
        check_scenes(cards)
    return list(topics), list(cards)


def find_card(card_id: str) -> Card:
    """The card called ``card_id``; KeyError naming it when there is none."""
    for card in _loaded()[1]:
        if card.id == card_id:
            return card
    raise KeyError(f"no card {card_id!r}")


def search(cards: Iterable[Card], query: str, lang: str | None = None) -> list[Card]:
    """Cards whose id, topic, question, answer or look contain every word of ``query``
    (case-insensitive), in ``lang`` or, by default, in both languages. "" matches every card."""
    words = query.casefold().split()
    langs = (lang,) if lang else LANGS
    found = []
    for card in cards:
        texts = [getattr(card, which).get(lang_) for which in TEXTS for lang_ in langs]
        haystack = " ".join([card.id, card.topic, *texts]).casefold()
        if all(word in haystack for word in words):
            found.append(card)
    return found


def cards_in_topic(cards: Iterable[Card], topic_id: str) -> list[Card]:
    """The cards of one topic, in their order."""
    return [card for card in cards if card.topic == topic_id]
