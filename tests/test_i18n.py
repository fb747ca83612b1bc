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
