"""One value explained: :func:`describe` (bits, fields, formula, rounding error) and :func:`neighbours`
(the two representable values around an input and the one round-to-nearest-even picks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping

from .codec import (_check_bits, _Decoded, _decode_exact, _encode_exact, _magnitude_code, _significand_exponent,
                    decode)
from .exact import Scalar, ParsedInput, _Exact, _fraction_to_float, _to_exact
from .formats import FloatFormat


#: Kinds of a stored value.
KINDS = ("zero", "subnormal", "normal", "inf", "nan")

#: ``Description.outcome`` values with (English, Chinese) explanations.
OUTCOMES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "exact": ("stored exactly", "精确表示"),
        "rounded": ("rounded to the nearest representable value", "舍入到最近的可表示值"),
        "underflow": ("too small: underflowed to zero", "太小：下溢为零"),
        "overflow_inf": ("too large: overflowed to infinity", "太大：上溢为无穷大"),
        "overflow_nan": ("too large: overflowed to NaN", "太大：上溢为 NaN"),
        "saturated": ("too large: clamped to the largest finite value", "太大：饱和到最大有限值"),
        "nan": ("NaN input stays NaN", "NaN 输入仍为 NaN"),
        "no_negative_zero": ("−0 has no pattern of its own here: stored as +0", "该格式没有 −0：存为 +0"),
        "underflow_min": ("too small: raised to the smallest value (there is no zero)",
                          "太小：取最小值（该格式没有零）"),
        "negative_unsigned": ("negative: an unsigned format has no negative values (NaN)",
                              "负数：无符号格式没有负值（存为 NaN）"),
        "no_zero": ("zero: this format has no zero (NaN)", "零：该格式没有零（存为 NaN）"),
        "from_bits": ("decoded from a bit pattern", "由位模式解码"),
    }
)

#: ``Neighbours.reason`` values with (English, Chinese) explanations.
REASONS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "exact": ("the value is representable", "该值可以精确表示"),
        "nearer_lower": ("the lower neighbour is nearer", "下邻值更近"),
        "nearer_upper": ("the upper neighbour is nearer", "上邻值更近"),
        "tie_to_even": (
            "exactly halfway: ties go to the neighbour whose last mantissa bit is 0",
            "恰好在中点：平局时取尾数最低位为 0 的邻值",
        ),
        "overflow": ("beyond the largest finite value", "超出最大有限值"),
        "tie_to_larger": ("exactly halfway: no mantissa bit, so the tie goes up",
                          "恰好在中点：没有尾数位，平局向上取"),
        "below_smallest": ("below the smallest value: there is no zero, so it goes up to it",
                           "低于最小值：该格式没有零，只能取最小值"),
    }
)

# --------------------------------------------------------------------------
# Description of one value
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FormulaTerms:
    """Numbers to substitute into ``(-1)^s x 2^(e - bias) x 1.m`` (or ``0.m x 2^(1 - bias)``).

    ``exponent`` is ``exponent_field - bias`` for normals and ``1 - bias`` for
    subnormals/zero; ``significand = leading_bit + mantissa_field / 2**mantissa_bits``;
    ``value = sign_factor * power_of_two * significand``.  ``text`` is the
    whole expression, e.g. ``"(-1)^0 × 2^(15 - 15) × 1.0000000000"``.
    """

    sign_bit: int
    sign_factor: int
    exponent_field: int
    bias: int
    exponent: int
    leading_bit: int
    mantissa_field: int
    mantissa_bits: int
    mantissa_fraction: float
    significand: float
    power_of_two: float
    value: float
    text: str


@dataclass(frozen=True)
class Description:
    """Everything the float panel shows about one stored value.

    Fields: ``kind`` (one of ``KINDS``), ``sign`` (0/1), ``exponent_field``
    (raw, int) and ``exponent_binary``, ``unbiased_exponent`` (effective:
    ``1 - bias`` for subnormals/zero, None for inf/NaN), ``mantissa_field``
    and ``mantissa_binary``, ``bits`` / ``bit_string`` / ``hex_string``,
    ``value`` (float64; None for NaN), ``exact`` (exact decimal expansion,
    full length; None for inf/NaN) and ``exact_scientific``.

    About the input: ``input_kind`` (``"number"``, ``"inf"``, ``"nan"``,
    ``"bits"``), ``input_value`` (float64 of the input, None for NaN),
    ``outcome`` (one of ``OUTCOMES``), ``abs_error`` = |stored - input| and
    ``rel_error`` = abs_error / |input|, computed exactly then rounded to
    float64 (None when undefined: inf/NaN input or result, zero input,
    bit-pattern input; +inf if the error exceeds float64).

    Neighbourhood: ``ulp`` = spacing of the format at the value (quantum
    2^(exponent - mantissa_bits); None for inf/NaN), ``prev_value`` /
    ``next_value`` the adjacent representable values below/above (None beyond
    the finite ends; +-inf step to +-max).  ``formula`` is None for inf/NaN.
    """

    format_name: str
    kind: str
    sign: int
    exponent_field: int
    exponent_binary: str
    unbiased_exponent: int | None
    mantissa_field: int
    mantissa_binary: str
    bits: int
    bit_string: str
    hex_string: str
    value: float | None
    exact: str | None
    exact_scientific: str | None
    input_kind: str
    input_value: float | None
    outcome: str
    abs_error: float | None
    rel_error: float | None
    ulp: float | None
    prev_value: float | None
    next_value: float | None
    formula: FormulaTerms | None


def _exact_decimal(significand: int, exponent: int) -> str:
    """Exact decimal expansion of ``significand * 2**exponent`` (non-negative)."""
    if exponent >= 0:
        return str(significand << exponent)
    places = -exponent
    digits = str(significand * 5 ** places).rjust(places + 1, "0")
    text = f"{digits[:-places]}.{digits[-places:]}".rstrip("0")
    return text.rstrip(".")


def _scientific(plain: str) -> str:
    """``"0.0999755859375"`` -> ``"9.99755859375e-2"`` (exact, no rounding)."""
    whole, _, frac = plain.partition(".")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return "0e0"
    exponent = len(whole) - 1 if whole != "0" else -(len(frac) - len(frac.lstrip("0")) + 1)
    digits = digits.rstrip("0") or "0"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mantissa}e{exponent}"


def _formula(decoded: _Decoded, fmt: FloatFormat) -> FormulaTerms:
    m = fmt.mantissa_bits
    normal = decoded.value_kind == "normal"
    exponent = decoded.exponent_field - fmt.bias if normal else fmt.min_exponent
    leading = 1 if normal else 0
    fraction = math.ldexp(decoded.mantissa_field, -m)
    mantissa_text = format(decoded.mantissa_field, f"0{m}b") if m else ""
    sign_bit = int(decoded.negative)
    field_text = f"{decoded.exponent_field} - {fmt.bias}" if normal else f"1 - {fmt.bias}"
    significand_text = f"{leading}.{mantissa_text}" if m else f"{leading}"
    value = (-1.0 if decoded.negative else 1.0) * float(decoded.magnitude)
    return FormulaTerms(
        sign_bit=sign_bit,
        sign_factor=-1 if decoded.negative else 1,
        exponent_field=decoded.exponent_field,
        bias=fmt.bias,
        exponent=exponent,
        leading_bit=leading,
        mantissa_field=decoded.mantissa_field,
        mantissa_bits=m,
        mantissa_fraction=fraction,
        significand=leading + fraction,
        power_of_two=math.ldexp(1.0, exponent),
        value=value,
        text=(f"(-1)^{sign_bit} × " if fmt.signed else "") + f"2^({field_text}) × {significand_text}",
    )


def _step_value(code: int, negative: bool, fmt: FloatFormat) -> float:
    return decode(code | (fmt.sign_mask if negative else 0), fmt)


def _adjacent(decoded: _Decoded, bits: int, fmt: FloatFormat) -> tuple[float | None, float | None]:
    """(previous, next) representable values around a decoded pattern, in numeric order."""
    if decoded.value_kind == "nan":
        return None, None
    top = fmt.max_finite_code
    if decoded.value_kind == "inf":
        maximum = _step_value(top, decoded.negative, fmt)
        return (None, maximum) if decoded.negative else (maximum, None)
    code = bits & fmt.magnitude_mask
    away = _step_value(code + 1, decoded.negative, fmt) if code < top else None
    if code == 0:  # across zero (or, without zero, to the other sign's smallest value)
        toward = None if not fmt.signed else _step_value(1 if fmt.has_zero else 0, not decoded.negative, fmt)
    else:
        toward = _step_value(code - 1, decoded.negative, fmt)
    return (away, toward) if decoded.negative else (toward, away)


def _ulp(decoded: _Decoded, fmt: FloatFormat) -> float | None:
    if decoded.value_kind in ("inf", "nan"):
        return None
    exponent = decoded.exponent_field - fmt.bias if decoded.value_kind == "normal" else fmt.min_exponent
    return math.ldexp(1.0, exponent - fmt.mantissa_bits)


def _pattern_description(bits: int, fmt: FloatFormat, decoded: _Decoded, *, input_kind: str,
                         input_value: float | None, outcome: str, abs_error: float | None,
                         rel_error: float | None) -> Description:
    m, e = fmt.mantissa_bits, fmt.exponent_bits
    finite = decoded.kind == "finite"
    if finite:
        significand, exponent = _significand_exponent(decoded.exponent_field, decoded.mantissa_field, fmt)
        plain = ("-" if decoded.negative else "") + _exact_decimal(significand, exponent)
        scientific = ("-" if decoded.negative else "") + _scientific(plain.lstrip("-"))
    else:
        plain = scientific = None
    previous, following = _adjacent(decoded, bits, fmt)
    return Description(
        format_name=fmt.name,
        kind=decoded.value_kind,
        sign=int(decoded.negative),
        exponent_field=decoded.exponent_field,
        exponent_binary=format(decoded.exponent_field, f"0{e}b"),
        unbiased_exponent=(None if not finite else decoded.exponent_field - fmt.bias
                           if decoded.value_kind == "normal" else fmt.min_exponent),
        mantissa_field=decoded.mantissa_field,
        mantissa_binary=format(decoded.mantissa_field, f"0{m}b") if m else "",
        bits=bits,
        bit_string=format(bits, f"0{fmt.total_bits}b"),
        hex_string="0x" + format(bits, f"0{-(-fmt.total_bits // 4)}x"),
        value=decoded.as_float(),
        exact=plain,
        exact_scientific=scientific,
        input_kind=input_kind,
        input_value=input_value,
        outcome=outcome,
        abs_error=abs_error,
        rel_error=rel_error,
        ulp=_ulp(decoded, fmt),
        prev_value=previous,
        next_value=following,
        formula=_formula(decoded, fmt) if finite else None,
    )


def describe_bits(bits: int, fmt: FloatFormat) -> Description:
    """Describe the value stored in bit pattern ``bits`` (any pattern; never raises for valid bits).

    ``input_kind`` is ``"bits"``, ``outcome`` ``"from_bits"`` and the errors None.
    """
    bits = _check_bits(bits, fmt)
    decoded = _decode_exact(bits, fmt)
    return _pattern_description(bits, fmt, decoded, input_kind="bits", input_value=decoded.as_float(),
                                outcome="from_bits", abs_error=None, rel_error=None)


def describe(value: Scalar, fmt: FloatFormat, *, via_fp32: bool = False) -> Description:
    """Round ``value`` into ``fmt`` and describe the result and the rounding error.

    ``value``: float, int, Fraction, Decimal or :class:`ParsedInput` (a
    ParsedInput bit pattern of the same format is described as is, see
    :func:`describe_bits`).  Two functions instead of one with a ``bits=``
    keyword: ``describe(value, fmt)`` and ``describe_bits(bits, fmt)``.
    ValueError for NaN in a format without NaN (fp4_e2m1).
    """
    if isinstance(value, ParsedInput) and value.kind == "bits" and value.bits_format == fmt.name:
        return describe_bits(value.bits, fmt)
    x = _to_exact(value)
    bits = _encode_exact(x, fmt, via_fp32)
    stored = _decode_exact(bits, fmt)
    abs_error, rel_error = _errors(x, stored)
    return _pattern_description(
        bits, fmt, stored,
        input_kind="number" if x.kind == "finite" else x.kind,
        input_value=x.as_float(),
        outcome=_outcome(x, stored, fmt),
        abs_error=abs_error,
        rel_error=rel_error,
    )


def _outcome(x: _Exact, stored: _Decoded, fmt: FloatFormat) -> str:
    if x.kind == "nan":
        return "nan"
    zero = x.kind == "finite" and x.magnitude == 0
    if x.negative and not fmt.signed and not zero:
        return "negative_unsigned"
    if zero and not fmt.has_zero:
        return "no_zero"
    if stored.value_kind == "nan":
        return "overflow_nan"
    if stored.value_kind == "inf":
        return "exact" if x.kind == "inf" else "overflow_inf"
    if x.kind == "inf" or _magnitude_code(x.magnitude, fmt) is None:
        return "saturated"
    if stored.magnitude == x.magnitude:
        return "no_negative_zero" if zero and x.negative and stored.negative != x.negative else "exact"
    if not fmt.has_zero and x.magnitude < stored.magnitude == Fraction(fmt.smallest_normal):
        return "underflow_min"
    return "underflow" if stored.magnitude == 0 else "rounded"


def _errors(x: _Exact, stored: _Decoded) -> tuple[float | None, float | None]:
    if x.kind != "finite" or stored.kind != "finite":
        return None, None
    stored_signed = -stored.magnitude if stored.negative else stored.magnitude
    input_signed = -x.magnitude if x.negative else x.magnitude
    error = abs(stored_signed - input_signed)
    relative = None if x.magnitude == 0 else _fraction_to_float(error / x.magnitude)
    return _fraction_to_float(error), relative


# --------------------------------------------------------------------------
# Neighbours and rounding explanation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbours:
    """The representable values around an input and the round-to-nearest-even choice.

    ``lower <= input <= upper`` in numeric order (``lower == upper`` when
    exact; ``upper``/``lower`` None beyond +-max, ``lower`` None below E8M0's smallest value).  ``midpoint`` is their
    average (None if one is missing), ``chosen`` what :func:`encode` stores
    (float64; None if NaN, e.g. OCP non-saturating overflow), ``chosen_bits``
    its pattern, ``reason`` one of ``REASONS`` and ``tie`` whether the input
    was exactly halfway.  Distances are |input - neighbour| (float64, exact
    then rounded).
    """

    input_value: float
    lower: float | None
    upper: float | None
    midpoint: float | None
    chosen: float | None
    chosen_bits: int
    reason: str
    tie: bool
    distance_lower: float | None
    distance_upper: float | None


def neighbours(value: Scalar, fmt: FloatFormat) -> Neighbours:
    """Representable neighbours of a finite ``value`` in ``fmt`` and which one RNE picks, and why.

    Exact arithmetic (no float32 detour).  ValueError for inf/NaN inputs, for
    a negative value in an unsigned format and for 0 in a format without zero
    (E8M0: nothing to round between); below E8M0's smallest value ``lower`` is None.
    """
    x = _to_exact(value)
    if x.kind != "finite":
        raise ValueError(f"neighbours need a finite value, got {x.kind}")
    if x.negative and x.magnitude and not fmt.signed:
        raise ValueError(f"{fmt.name} is unsigned: it has no negative values")
    if x.magnitude == 0 and not fmt.has_zero:
        raise ValueError(f"{fmt.name} has no zero")
    bits = _encode_exact(x, fmt, via_fp32=False)
    chosen = _decode_exact(bits, fmt)
    code = _magnitude_code(x.magnitude, fmt)
    below, above, reason, tie = _magnitude_neighbours(x.magnitude, code, fmt)
    if x.negative:
        below, above = (None if above is None else -above), (None if below is None else -below)
        reason = {"nearer_lower": "nearer_upper", "nearer_upper": "nearer_lower"}.get(reason, reason)
    signed_input = -x.magnitude if x.negative else x.magnitude

    def as_float(v: Fraction | None) -> float | None:
        return None if v is None else _fraction_to_float(v)

    def distance(v: Fraction | None) -> float | None:
        return None if v is None else _fraction_to_float(abs(signed_input - v))

    midpoint = None if below is None or above is None else (below + above) / 2
    return Neighbours(
        input_value=_fraction_to_float(signed_input) if x.magnitude else (-0.0 if x.negative else 0.0),
        lower=as_float(below),
        upper=as_float(above),
        midpoint=as_float(midpoint),
        chosen=chosen.as_float(),
        chosen_bits=bits,
        reason=reason,
        tie=tie,
        distance_lower=distance(below),
        distance_upper=distance(above),
    )


def _magnitude_neighbours(magnitude: Fraction, code: int | None, fmt: FloatFormat
                          ) -> tuple[Fraction | None, Fraction | None, str, bool]:
    """(lower, upper, reason, tie) for a non-negative magnitude; reason in magnitude terms."""
    smallest = Fraction(fmt.smallest_normal)
    if not fmt.has_zero and magnitude < smallest:
        return None, smallest, "below_smallest", False
    top = fmt.max_finite_code
    maximum = _decode_exact(top, fmt).magnitude
    if code is None:
        return maximum, None, "overflow", _is_tie(magnitude, maximum, fmt)
    rounded = _decode_exact(code, fmt).magnitude
    if rounded == magnitude:
        return rounded, rounded, "exact", False
    if rounded < magnitude:
        lower = rounded
        upper = _decode_exact(code + 1, fmt).magnitude if code < top else None
    else:
        lower, upper = _decode_exact(code - 1, fmt).magnitude, rounded
    tie_reason = "tie_to_even" if fmt.mantissa_bits else "tie_to_larger"
    if upper is None:
        tie = _is_tie(magnitude, lower, fmt)
        return lower, None, tie_reason if tie else "nearer_lower", tie
    twice = 2 * magnitude
    if twice == lower + upper:
        return lower, upper, tie_reason, True
    return lower, upper, "nearer_lower" if twice < lower + upper else "nearer_upper", False


def _is_tie(magnitude: Fraction, maximum: Fraction, fmt: FloatFormat) -> bool:
    """Whether ``magnitude`` is exactly half a top-binade quantum above ``maximum``."""
    quantum = Fraction(2) ** (fmt.max_exponent - fmt.mantissa_bits)
    return magnitude == maximum + quantum / 2
