"""Inputs held exactly: :class:`ParsedInput`, :class:`InputError` and the exact scalar form every
rounding starts from."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Union


_CLAMP_EXPONENT10 = 400
_CLAMP_POWER2 = 1400
_MAX_INPUT_CHARS = 4000

# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedInput:
    """A user-typed value, kept exactly.

    kind: ``"number"`` (decimal/scientific text), ``"bits"`` (hex/binary
    pattern of ``bits_format``), ``"inf"`` or ``"nan"``.  ``exact`` is the
    exact signed value for finite inputs (``Fraction``; for ``-0`` it is 0 and
    ``negative`` is True), ``value`` its nearest float64 (+-inf beyond float64,
    None for NaN).  ``clamped`` is True when a literal's magnitude was beyond
    1e+-400 and ``exact`` holds the stand-in 2**+-1400 (see module doc).
    """

    text: str
    kind: str
    negative: bool
    exact: Fraction | None
    value: float | None
    bits: int | None = None
    bits_format: str | None = None
    clamped: bool = False


class InputError(ValueError):
    """A value or pattern the user typed that cannot be read (or stored). ``reason`` is one of
    ``INPUT_ERRORS`` and ``fields`` fills its message, so a front end can word it in its own
    language; ``str(error)`` is the English message."""

    def __init__(self, reason: str, **fields: Any):
        self.reason, self.fields = reason, fields
        super().__init__(INPUT_ERRORS[reason].format(**fields))


INPUT_ERRORS = {  # reason -> English message template
    "empty": "empty input: " + "{help}",
    "too_long": "input too long ({length} characters, at most {limit})",
    "signed_pattern": "a bit pattern cannot have a sign: {text!r}",
    "no_nan": "{format} has no NaN encoding",
    "no_negative": "{format} is unsigned and has no NaN: a negative value has no encoding",
    "no_zero": "{format} has no zero and no NaN: 0 has no encoding",
    "no_digits": "no {base} digits after {prefix!r} in {text!r}",
    "bad_digits": "invalid {base} digit(s) {digits!r} in {text!r}",
    "too_wide": "{base} pattern {text!r} is wider than {format}'s {bits} bits",
    "not_a_number": "not a number: {text!r}; {help}",
}

@dataclass(frozen=True)
class _Exact:
    """Internal normalised scalar: sign, kind ("finite"/"inf"/"nan") and exact magnitude."""

    negative: bool
    kind: str
    magnitude: Fraction = Fraction(0)

    def as_float(self) -> float | None:
        if self.kind == "nan":
            return None
        value = math.inf if self.kind == "inf" else _fraction_to_float(self.magnitude)
        return -value if self.negative else value


Scalar = Union[float, int, Fraction, Decimal, ParsedInput]


def _to_exact(value: Scalar) -> _Exact:
    """Normalise any accepted scalar input (see module doc) to an ``_Exact``."""
    if isinstance(value, ParsedInput):
        return _parsed_to_exact(value)
    if isinstance(value, bool):
        raise TypeError("expected a number, got bool")
    if isinstance(value, numbers.Rational):  # int, numpy integers, Fraction
        frac = Fraction(int(value.numerator), int(value.denominator))
        return _Exact(frac < 0, "finite", abs(frac))
    if isinstance(value, Decimal):
        return _decimal_to_exact(value)
    if not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number or ParsedInput, got {type(value).__name__}")
    x = float(value)
    negative = math.copysign(1.0, x) < 0
    if math.isnan(x):
        return _Exact(negative, "nan")
    if math.isinf(x):
        return _Exact(negative, "inf")
    return _Exact(negative, "finite", abs(Fraction(x)))


def _parsed_to_exact(parsed: ParsedInput) -> _Exact:
    if parsed.kind in ("inf", "nan"):
        return _Exact(parsed.negative, parsed.kind)
    if parsed.exact is None:  # a bit pattern that decodes to inf or NaN
        return _Exact(parsed.negative, "nan" if parsed.value is None else "inf")
    return _Exact(parsed.negative, "finite", abs(parsed.exact))


def _decimal_to_exact(value: Decimal) -> _Exact:
    negative = value.is_signed()
    if value.is_nan():
        return _Exact(negative, "nan")
    if value.is_infinite():
        return _Exact(negative, "inf")
    if value.is_zero():
        return _Exact(negative, "finite")
    order = value.adjusted() + 1
    if abs(order) > _CLAMP_EXPONENT10:
        return _Exact(negative, "finite", Fraction(2) ** (_CLAMP_POWER2 if order > 0 else -_CLAMP_POWER2))
    return _Exact(negative, "finite", abs(Fraction(value)))


def _fraction_to_float(value: Fraction) -> float:
    """Nearest float64 to ``value``; +-inf instead of OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
