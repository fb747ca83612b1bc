"""Declared parameters: parsing, validation with named messages, atomic updates."""

import math

import pytest

from workbench.i18n import set_language
from workbench.params import Choice, Param, ParamError, ParamSet, Preset

LR = Param("lr", "float", 0.1, "Learning rate", "学习率", "step", "步长", lo=1e-4, hi=10.0, log=True)
STEPS = Param("steps", "int", 100, "Steps", "步数", "n", "步", lo=1, hi=1000)
KIND = Param("kind", "choice", "a", "Kind", "种类", "k", "种", choices=(Choice("a", "A", "甲"), Choice("b", "B", "乙")))
FLAG = Param("flag", "bool", False, "Flag", "开关", "f", "开")


def make_set(**kw):
    return ParamSet([LR, STEPS, KIND, FLAG], **kw)


@pytest.mark.parametrize("raw, expected", [("0.5", 0.5), (2, 2.0), (" 1e-3 ", 1e-3), (10, 10.0)])
def test_float_parses(raw, expected):
    assert LR.parse(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "", "nan", float("nan"), "inf", 0, -1, 11, None, True, "1.2.3"])
def test_float_refuses_with_name_and_range(raw):
    with pytest.raises(ParamError) as error:
        LR.parse(raw)
    message = str(error.value)
    assert "(lr)" in message and "0.0001" in message and "10" in message


def test_int_bool_choice():
    assert STEPS.parse("12") == 12 and STEPS.parse(12.0) == 12
    with pytest.raises(ParamError):
        STEPS.parse("1.5")
    assert FLAG.parse("on") is True and FLAG.parse("false") is False
    with pytest.raises(ParamError, match="flag"):
        FLAG.parse("maybe")
    assert KIND.parse("b") == "b"
    with pytest.raises(ParamError, match="one of a, b"):
        KIND.parse("c")


def test_update_is_all_or_nothing_and_lists_every_problem():
    params = make_set()
    base = params.defaults()
    with pytest.raises(ParamError) as error:
        params.update(base, {"lr": "0.5", "steps": "-3", "nope": 1})
    assert len(error.value.problems) == 2
    assert any("steps" in p for p in error.value.problems) and any("nope" in p for p in error.value.problems)
    assert base == params.defaults()  # unchanged


def test_cross_check_and_follow():
    params = make_set(check=lambda v: ["steps: must be even"] if v["steps"] % 2 else [],
                      follow=lambda values, changes: {"steps": 200} if values["kind"] == "b" else {})
    assert params.resolve({"kind": "b"})["steps"] == 200  # follows the parsed value (" b" -> "b")
    assert params.resolve({"kind": " b"})["steps"] == 200
    assert params.resolve({"kind": "b", "steps": 10})["steps"] == 10  # an explicit value wins
    with pytest.raises(ParamError, match="even"):
        params.resolve({"steps": 3})


def test_broken_preset_fails_at_declaration():
    with pytest.raises(ParamError):
        make_set(presets=[Preset("bad", "Bad", "坏", {"lr": 100})])


def test_assignments_and_caption():
    params = make_set()
    assert params.parse_assignments(["lr=0.2", "kind = b"]) == {"lr": "0.2", "kind": " b"}
    with pytest.raises(ParamError, match="name=value"):
        params.parse_assignments(["lr"])
    assert params.caption(params.defaults(), ["lr", "kind"]) == "Learning rate = 0.1, Kind = A"
    set_language("zh_CN")
    assert params.caption(params.defaults(), ["lr", "kind"]) == "学习率 = 0.1, 种类 = 甲"


def test_messages_are_translated():
    set_language("zh_CN")
    with pytest.raises(ParamError) as error:
        LR.parse("abc")
    assert "学习率" in str(error.value) and not math.isnan(LR.parse("1"))


def test_declaration_errors():
    with pytest.raises(TypeError):
        Param("x", "float", 1.0, "X", "X", "", "", lo=0.0, hi=1.0, log=True)
    with pytest.raises(ParamError):
        Param("x", "float", 5.0, "X", "X", "", "", lo=0.0, hi=1.0)
