"""Question cards: the data in assets/cards is complete and bilingual, every scene is valid for its
panel, and the schema refuses broken data with messages that name the file, the card and the field."""

import copy
import subprocess
import sys
from collections import Counter

import pytest

from workbench.cards import (Card, CardError, cards_in_topic, check_scenes, find_card, load_cards, parse,
                             parse_cards, search)
from workbench.i18n import set_language
from workbench.registry import PANELS

SEEDS = {"000", "001", "002", "003", "004"}


def cjk(text: str) -> int:
    return sum("\u4e00" <= ch <= "\u9fff" for ch in text)


# ---- the shipped cards ------------------------------------------------------------------------------
def test_cards_load_and_every_scene_resolves_against_its_panel():
    topics, cards = load_cards(validate_scenes=True)
    assert len(cards) >= 40
    assert len(topics) >= 6


def test_every_panel_has_cards():
    _, cards = load_cards()
    per_panel = Counter(card.panel for card in cards)
    assert {panel: per_panel[panel] for panel in PANELS if per_panel[panel] < 5} == {}


def test_ids_are_unique_and_start_with_the_panel():
    _, cards = load_cards()
    ids = [card.id for card in cards]
    assert len(ids) == len(set(ids))
    assert all(card.id.startswith(card.panel + ".") for card in cards)


def test_every_text_is_in_english_and_chinese():
    _, cards = load_cards()
    for card in cards:
        for which in ("question", "answer", "look"):
            en, zh = card.text(which, "en"), card.text(which, "zh_CN")
            assert en.strip() and zh.strip(), (card.id, which)
            assert en != zh, (card.id, which)
            assert cjk(zh) >= 5, (card.id, which)
        assert cjk(card.text("answer", "en")) < cjk(card.text("answer", "zh_CN")) / 4, card.id


def test_topics_are_known_and_all_used():
    topics, cards = load_cards()
    known = {topic.id for topic in topics}
    used = {card.topic for card in cards}
    assert used <= known
    assert known - used == set()
    assert all(topic.en and cjk(topic.zh_CN) for topic in topics)


NO_SEED = {"receptive_field.dilated"}  # no seed mentions dilation; the card extends 002's receptive-field question


def test_sources_name_seed_files():
    _, cards = load_cards()
    for card in cards:
        assert set(card.sources) <= SEEDS, card.id
        assert bool(card.sources) != (card.id in NO_SEED), card.id


def test_cards_are_immutable_and_hashable():
    _, cards = load_cards()
    card = cards[0]
    assert len({hash(c) for c in cards}) == len(cards)
    with pytest.raises(AttributeError):
        card.topic = "x"
    assert isinstance(card.scene, tuple)


def test_text_follows_the_interface_language():
    card = find_card("attention.sqrt-dk")
    assert "sqrt" in card.text("question").lower() or "√" in card.text("question")
    set_language("zh_CN")
    assert cjk(card.text("question")) > 0
    assert card.text("question", "en") == card.question.en
    topics, _ = load_cards()
    assert cjk(topics[0].label()) > 0
    with pytest.raises(KeyError):
        card.text("hint")


# ---- finding cards ---------------------------------------------------------------------------------
def test_search_in_chinese_and_in_english():
    _, cards = load_cards()
    assert "activations.sigmoid-vanishing" in [c.id for c in search(cards, "梯度消失")]
    assert "floats.loss-scaling" in [c.id for c in search(cards, "Loss Scaling")]
    assert "attention.sqrt-dk" in [c.id for c in search(cards, "softmax √d_k")]  # every word must match
    assert search(cards, "梯度消失", lang="en") == []
    assert search(cards, "") == cards
    assert search(cards, "no such words anywhere") == []


def test_find_card_and_topics():
    assert find_card("floats.range").panel == "floats"
    with pytest.raises(KeyError, match="floats.nope"):
        find_card("floats.nope")
    _, cards = load_cards()
    in_floats = cards_in_topic(cards, "floats")
    assert in_floats and all(card.topic == "floats" for card in in_floats)


def test_cards_load_without_qt():
    code = ("import sys\nfrom workbench.cards import load_cards\nload_cards()\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'superqt', 'widgets', 'torch', 'shiboken6'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---- the schema refuses broken data ----------------------------------------------------------------
TOPICS = {"version": 1, "topics": [{"id": "attention", "en": "Attention", "zh": "注意力"}]}


def good_card(**changes):
    card = {"id": "attention.sqrt-dk", "topic": "attention", "panel": "attention", "scene": {"scale": False},
            "question": {"en": "Why divide by sqrt(d_k)?", "zh_CN": "为什么除以 sqrt(d_k)？"},
            "answer": {"en": "To keep the softmax out of saturation.", "zh_CN": "避免 softmax 饱和。"},
            "look": {"en": "Turn scaling off.", "zh_CN": "关闭缩放。"}, "source": "000,003"}
    card.update(changes)
    return card


def files(*cards, version=1):
    return {"attention.json": {"version": version, "cards": list(cards)}}


def problems_of(topics, data) -> str:
    with pytest.raises(CardError) as caught:
        parse_cards(topics, data)
    return str(caught.value)


def test_a_good_card_parses():
    topics, cards = parse(TOPICS, files(good_card()))
    assert [t.id for t in topics] == ["attention"] and topics[0].zh_CN == "注意力"
    card = cards[0]
    assert isinstance(card, Card) and dict(card.scene) == {"scale": False} and card.sources == ("000", "003")


def without_chinese_answer():
    card = good_card()
    del card["answer"]["zh_CN"]
    return card


BROKEN = {
    "missing zh_CN": (files(without_chinese_answer()), ["attention.sqrt-dk", "answer", "zh_CN"]),
    "empty text": (files(good_card(look={"en": "Look.", "zh_CN": "  "})), ["attention.sqrt-dk", "look", "zh_CN"]),
    "unknown language": (files(good_card(question={"en": "Q", "zh_CN": "问", "fr": "Q"})),
                         ["attention.sqrt-dk", "question", "fr"]),
    "duplicate id": (files(good_card(), good_card()), ["attention.sqrt-dk", "id", "duplicate"]),
    "unknown key": (files(good_card(hint="psst")), ["attention.sqrt-dk", "unknown keys", "hint"]),
    "missing field": (files({k: v for k, v in good_card().items() if k != "look"}), ["attention.sqrt-dk", "look"]),
    "unknown topic": (files(good_card(topic="poetry")), ["attention.sqrt-dk", "topic", "poetry"]),
    "unknown panel": (files(good_card(id="normalisation.bn", panel="normalisation")),
                      ["normalisation.bn", "panel", "not a panel of this workbench"]),
    "panel of another file": (files(good_card(id="floats.bits", panel="floats")),
                              ["floats.bits", "panel", "floats.json"]),
    "bad id": (files(good_card(id="attention.Sqrt DK")), ["attention.Sqrt DK", "id"]),
    "id of another panel": (files(good_card(id="floats.sqrt-dk")), ["floats.sqrt-dk", "id", "attention."]),
    "newer version": (files(good_card(), version=2), ["attention.json", "version", "newer"]),
    "scene not a mapping": (files(good_card(scene=["scale", False])), ["attention.sqrt-dk", "scene"]),
    "scene value not a scalar": (files(good_card(scene={"scale": [False]})), ["attention.sqrt-dk", "scene", "scale"]),
    "topic not text": (files(good_card(topic=3)), ["attention.sqrt-dk", "topic", "text"]),
    "question not an object": (files(good_card(question="Why?")), ["attention.sqrt-dk", "question"]),
    "bad source": (files(good_card(source="seed 2")), ["attention.sqrt-dk", "source"]),
    "cards not a list": ({"attention.json": {"version": 1, "cards": {}}}, ["attention.json", "cards"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_schema_refuses_broken_cards(case):
    data, expected = BROKEN[case]
    message = problems_of(TOPICS, copy.deepcopy(data))
    for part in expected:
        assert part in message, (case, part, message)


@pytest.mark.parametrize("topics, expected", [
    ({"version": 2, "topics": []}, ["topics.json", "version", "newer"]),
    ({"version": 1, "topics": [{"id": "attention", "en": "Attention"}]}, ["topics.json", "attention", "zh"]),
    ({"version": 1, "topics": [{"id": "attention", "en": "A", "zh": "注意力", "fr": "Attention"}]},
     ["topics.json", "unknown keys", "fr"]),
    ({"version": 1, "topics": [{"id": "attention", "en": "A", "zh": "注"}] * 2}, ["topics.json", "duplicate"]),
])
def test_the_schema_refuses_broken_topics(topics, expected):
    message = problems_of(topics, files(good_card()))
    for part in expected:
        assert part in message, (part, message)


def test_every_problem_is_reported_at_once():
    broken = without_chinese_answer()
    broken["topic"] = "poetry"
    other = good_card(id="attention.other", scene=[1, 2], hint="x")
    with pytest.raises(CardError) as caught:
        parse_cards(TOPICS, files(broken, other))
    problems = caught.value.problems
    assert len(problems) >= 4
    assert any("attention.sqrt-dk: answer: zh_CN" in p for p in problems)
    assert any("attention.sqrt-dk: topic" in p for p in problems)
    assert any("attention.other: scene" in p for p in problems)
    assert any("attention.other: unknown keys: hint" in p for p in problems)
    assert all(p.startswith("attention.json: card ") for p in problems)


def test_scenes_are_checked_against_the_panels_parameters():
    cards = parse_cards(TOPICS, files(good_card(scene={"d_model": 7, "sclae": True})))
    with pytest.raises(CardError) as caught:
        check_scenes(cards)
    message = str(caught.value)
    assert "attention.sqrt-dk: scene" in message and "d_model" in message and "sclae" in message
