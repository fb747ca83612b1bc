"""User-visible text in English and Simplified Chinese.

Every string shown to a user goes through ``tr(english)``; the Chinese text lives in
``assets/i18n/zh_CN.json`` keyed by the English text. A test fails when a ``tr`` literal has
no translation. Parameter labels carry both languages in their declaration instead.
"""

from __future__ import annotations

import json
import locale
import os
from functools import lru_cache
from importlib import resources

LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
_current = "en"


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str]:
    """English text -> translated text for ``lang`` (empty for English)."""
    if lang == "en":
        return {}
    text = resources.files("assets").joinpath("i18n", f"{lang}.json").read_text(encoding="utf-8")
    return json.loads(text)


def set_language(lang: str) -> None:
    global _current
    if lang not in LANGUAGES:
        raise ValueError(f"language: {lang!r} is not one of {', '.join(LANGUAGES)}")
    _current = lang


def language() -> str:
    return _current


def system_language() -> str:
    """zh_CN when the system locale is Chinese, else en."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            return "zh_CN" if value.lower().startswith("zh") else "en"
    code = locale.getlocale()[0] or ""
    return "zh_CN" if code.lower().startswith("zh") else "en"


def tr(text: str) -> str:
    """``text`` in the current language (English text is the key)."""
    return catalogue(_current).get(text, text) if _current != "en" else text


def ntr(singular: str, plural: str, n: int) -> str:
    """The form of a text with a count that suits ``n``, in the current language: ``singular`` for
    n = 1 ("1 cell"), ``plural`` otherwise ("0 cells", "2 cells"). Both are catalogue keys (the test
    collects them as it collects ``tr``'s); Chinese has no plural, so both take one translation.
    Like ``tr`` it returns the template: ``ntr("{n} cell", "{n} cells", n).format(n=n)``."""
    return tr(singular if n == 1 else plural)


def pick(en: str, zh: str) -> str:
    """Choose between an inline English/Chinese pair (declarations carry both)."""
    return zh if _current == "zh_CN" else en
