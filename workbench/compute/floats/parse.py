"""Reading what a user typed: decimals of any size, inf/nan and bit patterns (:func:`parse_value`)."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .codec import _decode_exact
from .exact import (_CLAMP_EXPONENT10, _CLAMP_POWER2, _MAX_INPUT_CHARS, InputError, ParsedInput,
                    _fraction_to_float)
from .formats import FloatFormat


_DECIMAL_RE = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_SPECIAL_WORDS = {"inf": "inf", "infinity": "inf", "nan": "nan"}
_PARSE_HELP = ("expected a decimal (0.1, -2.5e-3), a bit pattern (0x3c00, 0b0011_1100_0000_0000), "
               "inf, -inf or nan")


def parse_value(text: str, fmt: FloatFormat) -> ParsedInput:
    """Parse user text for ``fmt``; raise ValueError with a message naming the problem.

    Accepts decimal and scientific notation (``"0.1"``, ``"-1e-5"``, ``"-0"``,
    any size: ``"1e99999"`` is valid and overflows), ``"inf"``/``"infinity"``
    and ``"nan"`` (optional sign, any case), and bit patterns ``"0x3c00"`` /
    ``"0b0011110000000000"`` (underscores allowed, no sign, at most the
    format's width in digits and value).
    """
    if not isinstance(text, str):
        raise TypeError(f"input must be text, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InputError("empty", help=_PARSE_HELP)
    if len(stripped) > _MAX_INPUT_CHARS:
        raise InputError("too_long", length=len(stripped), limit=_MAX_INPUT_CHARS)
    lowered = stripped.lower()
    unsigned = lowered.lstrip("+-")
    if unsigned.startswith(("0x", "0b")):
        if unsigned != lowered:
            raise InputError("signed_pattern", text=stripped)
        return _parse_bits(stripped, unsigned, fmt)
    negative = lowered.startswith("-")
    word = lowered[1:] if lowered[:1] in ("+", "-") else lowered
    if word in _SPECIAL_WORDS:
        kind = _SPECIAL_WORDS[word]
        if kind == "nan" and not fmt.has_nan:
            raise InputError("no_nan", format=fmt.name)
        value = None if kind == "nan" else (-math.inf if negative else math.inf)
        return ParsedInput(stripped, kind, negative, None, value)
    return _parse_decimal(stripped)


def _parse_bits(text: str, lowered: str, fmt: FloatFormat) -> ParsedInput:
    base, name = (16, "hex") if lowered.startswith("0x") else (2, "binary")
    digits = lowered[2:].replace("_", "")
    if not digits:
        raise InputError("no_digits", base=name, prefix=lowered[:2], text=text)
    allowed = "0123456789abcdef" if base == 16 else "01"
    bad = sorted({c for c in lowered[2:] if c not in allowed and c != "_"})
    if bad or "__" in lowered or lowered.endswith("_"):
        shown = "".join(bad) if bad else "_"
        raise InputError("bad_digits", base=name, digits=shown, text=text)
    max_digits = -(-fmt.total_bits // 4) if base == 16 else fmt.total_bits
    bits = int(digits, base)
    if len(digits) > max_digits or bits >> fmt.total_bits:
        raise InputError("too_wide", base=name, text=text, format=fmt.name, bits=fmt.total_bits)
    decoded = _decode_exact(bits, fmt)
    kind = decoded.kind
    if kind == "nan":
        return ParsedInput(text, "bits", decoded.negative, None, None, bits, fmt.name)
    value = decoded.as_float()
    exact = None if kind == "inf" else (-decoded.magnitude if decoded.negative else decoded.magnitude)
    return ParsedInput(text, "bits", decoded.negative, exact, value, bits, fmt.name)


def _parse_decimal(text: str) -> ParsedInput:
    match = _DECIMAL_RE.fullmatch(text)
    if match is None or not (match.group(2) or match.group(3)):
        raise InputError("not_a_number", text=text, help=_PARSE_HELP)
    sign, whole, frac, exp = match.groups()
    frac = frac or ""
    coefficient = int(whole + frac or "0")
    exponent10 = int(exp or "0") - len(frac)
    negative = sign == "-"
    if coefficient == 0:
        return ParsedInput(text, "number", negative, Fraction(0), -0.0 if negative else 0.0)
    order = len(str(coefficient)) + exponent10  # 10**(order-1) <= |x| < 10**order
    clamped = abs(order) > _CLAMP_EXPONENT10
    if clamped:
        magnitude = Fraction(2) ** (_CLAMP_POWER2 if order > 0 else -_CLAMP_POWER2)
        value = math.inf if order > 0 else 0.0
    else:
        magnitude = coefficient * Fraction(10) ** exponent10
        value = _fraction_to_float(magnitude)
    signed = -magnitude if negative else magnitude
    return ParsedInput(text, "number", negative, signed, -value if negative else value, clamped=clamped)
