"""Every user-visible string has its Chinese text."""

import ast
import json
from importlib import resources
from pathlib import Path

import pytest

from workbench.registry import PANELS, panel_class

ROOT = Path(__file__).resolve().parents[1]


def tr_literals():
    found = {}
    for path in list((ROOT / "workbench").rglob("*.py")) + list((ROOT / "widgets").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tr" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found[node.args[0].value] = f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "ntr":  # both forms are keys
                for arg in node.args[:2]:
                    assert isinstance(arg, ast.Constant), f"ntr with a form that is not a literal: {path.name}:{node.lineno}"
                    found[arg.value] = f"{path.name}:{node.lineno}"
    return found


def test_every_tr_string_has_a_chinese_translation():
    catalogue = json.loads(resources.files("assets").joinpath("i18n", "zh_CN.json").read_text(encoding="utf-8"))
    literals = tr_literals()
    assert len(literals) > 50
    missing = {text: where for text, where in literals.items() if not catalogue.get(text, "").strip()}
    assert not missing, f"strings without a Chinese translation: {missing}"
    for text, translated in catalogue.items():  # placeholders survive translation
        assert sorted(_fields(text)) == sorted(_fields(translated)), text


def _fields(text):
    import string
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


@pytest.mark.parametrize("panel", list(PANELS))
def test_declarations_and_notes_are_bilingual(panel):
    cls = panel_class(panel)
    assert cls.TITLE_EN and cls.TITLE_ZH
    catalogue = json.loads(resources.files("assets").joinpath("i18n", "zh_CN.json").read_text(encoding="utf-8"))
    for param in cls.PARAMS:
        assert param.en and param.zh and param.help_en and param.help_zh, param.name
        assert not param.group or catalogue.get(param.group), f"group {param.group!r} has no Chinese name"
        for choice in param.choices:
            assert choice.en and choice.zh
    for preset in cls.PARAMS.presets.values():
        assert preset.en and preset.zh
    for lang in ("en", "zh_CN"):
        notes = resources.files("assets").joinpath("notes", f"{panel}.{lang}.html").read_text(encoding="utf-8")
        assert len(notes) > 500
    zh = resources.files("assets").joinpath("notes", f"{panel}.zh_CN.html").read_text(encoding="utf-8")
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in zh) > 200


# ---- counts: "1 cell", "2 cells" ------------------------------------------------------------------
def test_ntr_picks_the_form_for_the_count_and_chinese_has_one():
    from workbench.i18n import ntr, set_language

    assert [ntr("{n} cell", "{n} cells", n).format(n=n) for n in (0, 1, 2)] == ["0 cells", "1 cell", "2 cells"]
    set_language("zh_CN")
    assert [ntr("{n} cell", "{n} cells", n).format(n=n) for n in (1, 2)] == ["1 个格子", "2 个格子"]


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_counts_in_messages_agree_with_their_number(lang):
    from widgets import attention, normalization, receptive_field
    from workbench.compute import receptive_field as rf
    from workbench.i18n import set_language

    set_language(lang)

    def problems(module, **values):
        return " ".join(module._check({**module.PARAMS.defaults(), **values}))
    one_layer = rf.format_layers([rf.Layer("conv", 3, padding=1)])
    two_layers = rf.format_layers([rf.Layer("conv", 3, padding=1)] * 2)
    said = {
        "layer 1": problems(receptive_field, layers=one_layer, layer=2),
        "layer 2": problems(receptive_field, layers=two_layers, layer=3),
        "head 1": problems(attention, d_model=32, heads=1, head=2),
        "head 2": problems(attention, d_model=32, heads=2, head=3),
        "channel 1": problems(normalization, channels=1, groups=2),
        "channel 6": problems(normalization, channels=6, groups=4),
        "query 1": attention._queries(1) + " " + attention._keys(1),
        "query 2": attention._queries(2) + " " + attention._keys(2),
    }
    if lang == "en":
        assert "more than the 1 layer" in said["layer 1"] and "1 layers" not in said["layer 1"]
        assert "more than the 2 layers" in said["layer 2"]
        assert said["head 1"].endswith("more than the 1 head") and said["head 2"].endswith("more than the 2 heads")
        assert "the 1 channel;" in said["channel 1"] and "the 6 channels;" in said["channel 6"]
        assert said["query 1"] == "1 query 1 key" and said["query 2"] == "2 queries 2 keys"
    else:
        assert "超过了层数 1" in said["layer 1"] and "超过了层数 2" in said["layer 2"]
        assert "超过了头数 1" in said["head 1"] and "1 个通道" in said["channel 1"]
        assert said["query 1"] == "1 个查询 1 个键" and said["query 2"] == "2 个查询 2 个键"


def test_a_statistic_of_one_cell_says_cell(open_panel):
    from widgets.normalization import NormalizationPanel

    panel = open_panel(NormalizationPanel, 1200, 800)
    assert "36 cells" in panel.readout.text()
    panel.set_values({"method": "instance", "height": 1, "width": 1})
    panel.compute_now()
    assert "1 cell)" in panel.readout.text() and "1 cells" not in panel.readout.text()
