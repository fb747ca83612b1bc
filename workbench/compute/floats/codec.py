"""Bits and values: exact round-to-nearest-even encoding, decoding, and their vectorised forms."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .exact import InputError, Scalar, _Exact, _to_exact
from .formats import FP32, FloatFormat, _narrower_than_fp32


# --------------------------------------------------------------------------
# Exact rounding core
# --------------------------------------------------------------------------


def _floor_log2(magnitude: Fraction) -> int:
    """floor(log2(magnitude)) for a positive Fraction."""
    num, den = magnitude.numerator, magnitude.denominator
    e = num.bit_length() - den.bit_length()
    below = (num << -e) < den if e < 0 else num < (den << e)
    return e - 1 if below else e


def _round_significand(magnitude: Fraction, fmt: FloatFormat) -> tuple[int, int]:
    """Round a positive magnitude to nearest-even on ``fmt``'s grid, ignoring the top of the range.

    Returns ``(significand, exponent)`` with value ``significand * 2**exponent``,
    ``significand <= 2**(mantissa_bits + 1)`` an integer (< 2**mantissa_bits
    only for subnormals/zero) and ``exponent >= min_exponent - mantissa_bits``.
    """
    m = fmt.mantissa_bits
    exponent = max(_floor_log2(magnitude), fmt.min_exponent) - m
    num, den = magnitude.numerator, magnitude.denominator
    if exponent <= 0:
        quotient, remainder = divmod(num << -exponent, den)
    else:
        den <<= exponent
        quotient, remainder = divmod(num, den)
    twice = remainder << 1
    if twice > den or (twice == den and quotient & 1):
        quotient += 1
    if quotient >> (m + 1):  # carried into the next binade
        quotient >>= 1
        exponent += 1
    return quotient, exponent


def _magnitude_code(magnitude: Fraction, fmt: FloatFormat) -> int | None:
    """Sign-less bit pattern of the RNE rounding of ``magnitude`` (>= 0), or None on overflow.

    In a format without zero (E8M0) anything below the smallest value gives its pattern, 0."""
    if magnitude == 0:
        return 0
    significand, exponent = _round_significand(magnitude, fmt)
    m = fmt.mantissa_bits
    if significand < (1 << m):  # subnormal (or rounded to zero)
        return significand if fmt.subnormals else 0
    exponent_field = exponent + m + fmt.bias
    code = (exponent_field << m) | (significand - (1 << m))
    return None if code > fmt.max_finite_code else code


def _overflow_bits(negative: bool, fmt: FloatFormat) -> int:
    sign = fmt.sign_mask if negative else 0
    if fmt.overflow == "inf":
        return sign | (((1 << fmt.exponent_bits) - 1) << fmt.mantissa_bits)
    if fmt.overflow == "nan":
        return _nan_pattern(negative, fmt)
    return sign | fmt.max_finite_code


def _nan_pattern(negative: bool, fmt: FloatFormat) -> int:
    if fmt.nan_bits is None:
        raise InputError("no_nan", format=fmt.name)
    keep_sign = negative and fmt.nan_keeps_sign
    return fmt.nan_bits | (fmt.sign_mask if keep_sign else 0)


def _no_encoding(fmt: FloatFormat, reason: str) -> int:
    """A value the format has no pattern for (a negative in an unsigned format, zero where there is
    none): its NaN, as ml_dtypes casts; InputError (``reason``) if it has no NaN either."""
    if fmt.nan_bits is None:
        raise InputError(reason, format=fmt.name)
    return fmt.nan_bits


def _through_fp32(x: _Exact) -> _Exact:
    """Round ``x`` to float32 first, as torch does before casting to 16/8-bit dtypes."""
    if x.kind != "finite":
        return x
    code = _magnitude_code(x.magnitude, FP32)
    if code is None:
        return _Exact(x.negative, "inf")
    return _Exact(x.negative, "finite", _decode_exact(code, FP32).magnitude)


def _encode_exact(x: _Exact, fmt: FloatFormat, via_fp32: bool) -> int:
    if via_fp32 and _narrower_than_fp32(fmt):
        x = _through_fp32(x)
    if x.kind == "nan":
        return _nan_pattern(x.negative, fmt)
    zero = x.kind == "finite" and x.magnitude == 0
    if x.negative and not fmt.signed and not zero:
        return _no_encoding(fmt, "no_negative")
    if x.kind == "inf":
        return _overflow_bits(x.negative, fmt)
    if zero and not fmt.has_zero:
        return _no_encoding(fmt, "no_zero")
    code = _magnitude_code(x.magnitude, fmt)
    if code is None:
        return _overflow_bits(x.negative, fmt)
    if code == 0 and not fmt.has_negative_zero:  # FNUZ: -0 (and what rounds to it) is +0
        return code
    return code | (fmt.sign_mask if x.negative else 0)


def encode(value: Scalar, fmt: FloatFormat, *, via_fp32: bool = False) -> int:
    """Bit pattern (int in ``[0, 2**fmt.total_bits)``) of ``value`` rounded into ``fmt``.

    Round to nearest, ties to even, from the exact input; subnormals; overflow
    and infinite inputs follow ``fmt.overflow``; NaN gives ``fmt``'s canonical
    NaN (ValueError if it has none).  FNUZ formats store -0 as +0; a format
    without zero (E8M0) stores values below its smallest one as the smallest
    and 0 as NaN; an unsigned one stores negatives as NaN (as ml_dtypes casts;
    :class:`InputError` where there is no NaN either).  ``via_fp32=True`` rounds to float32
    first, reproducing torch's ``tensor(x, dtype=float64).to(dtype)``.
    """
    return _encode_exact(_to_exact(value), fmt, via_fp32)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Decoded(_Exact):
    """A decoded pattern: ``_Exact`` plus its fields and kind of stored value."""

    value_kind: str = "zero"
    exponent_field: int = 0
    mantissa_field: int = 0


def _check_bits(bits: int, fmt: FloatFormat) -> int:
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be an integer, got {type(bits).__name__}")
    bits = int(bits)
    if not 0 <= bits < (1 << fmt.total_bits):
        raise ValueError(f"bits {bits:#x} out of range for {fmt.name} ({fmt.total_bits} bits)")
    return bits


def _value_kind(exponent_field: int, mantissa_field: int, fmt: FloatFormat, negative: bool = False) -> str:
    all_ones = (1 << fmt.exponent_bits) - 1
    if fmt.specials == "ieee" and exponent_field == all_ones:
        return "inf" if mantissa_field == 0 else "nan"
    if fmt.specials == "fn" and exponent_field == all_ones and mantissa_field == (1 << fmt.mantissa_bits) - 1:
        return "nan"
    if fmt.specials == "fnuz" and negative and exponent_field == 0 and mantissa_field == 0:
        return "nan"
    if exponent_field == 0 and fmt.subnormals:
        return "zero" if mantissa_field == 0 else "subnormal"
    return "normal"


def _significand_exponent(exponent_field: int, mantissa_field: int, fmt: FloatFormat) -> tuple[int, int]:
    """Finite value of the fields as ``significand * 2**exponent`` (integers)."""
    m = fmt.mantissa_bits
    if exponent_field == 0 and fmt.subnormals:
        return mantissa_field, fmt.min_exponent - m
    return (1 << m) | mantissa_field, exponent_field - fmt.bias - m


def _fields(bits: int, fmt: FloatFormat) -> tuple[bool, int, int]:
    """(negative, exponent field, mantissa field) of a pattern."""
    m = fmt.mantissa_bits
    return bool(bits & fmt.sign_mask), (bits >> m) & ((1 << fmt.exponent_bits) - 1), bits & ((1 << m) - 1)


def _decode_exact(bits: int, fmt: FloatFormat) -> _Decoded:
    negative, exponent_field, mantissa_field = _fields(bits, fmt)
    value_kind = _value_kind(exponent_field, mantissa_field, fmt, negative)
    if value_kind in ("inf", "nan"):
        return _Decoded(negative, value_kind, Fraction(0), value_kind, exponent_field, mantissa_field)
    significand, exponent = _significand_exponent(exponent_field, mantissa_field, fmt)
    magnitude = Fraction(significand << exponent) if exponent >= 0 else Fraction(significand, 1 << -exponent)
    return _Decoded(negative, "finite", magnitude, value_kind, exponent_field, mantissa_field)


def decode(bits: int, fmt: FloatFormat) -> float:
    """float64 value of a bit pattern of ``fmt`` (every pattern decodes; NaN patterns give nan).

    ValueError if ``bits`` is outside ``[0, 2**fmt.total_bits)``.
    """
    bits = _check_bits(bits, fmt)
    negative, exponent_field, mantissa_field = _fields(bits, fmt)
    sign = -1.0 if negative else 1.0
    kind = _value_kind(exponent_field, mantissa_field, fmt, negative)
    if kind == "nan":
        return math.nan
    if kind == "inf":
        return sign * math.inf
    significand, exponent = _significand_exponent(exponent_field, mantissa_field, fmt)
    return sign * math.ldexp(float(significand), exponent)


def decode_array(bits: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Vectorised :func:`decode`: integer array of patterns (any shape) -> float64 array.

    Patterns outside ``[0, 2**fmt.total_bits)`` raise ValueError.
    """
    codes = np.asarray(bits)
    if codes.dtype.kind not in "iu":
        raise TypeError(f"bits must be an integer array, got dtype {codes.dtype}")
    if codes.size and codes.dtype.kind == "i" and int(codes.min()) < 0:
        raise ValueError(f"bit patterns out of range for {fmt.name} ({fmt.total_bits} bits)")
    codes = codes.astype(np.uint64)
    if codes.size and int(codes.max()) >> fmt.total_bits:
        raise ValueError(f"bit patterns out of range for {fmt.name} ({fmt.total_bits} bits)")
    if fmt.is_binary64:
        return codes.view(np.float64).copy()
    m = fmt.mantissa_bits
    negative = (codes & np.uint64(fmt.sign_mask)) != 0
    exponent_field = ((codes >> np.uint64(m)) & np.uint64((1 << fmt.exponent_bits) - 1)).astype(np.int64)
    mantissa_field = (codes & np.uint64((1 << m) - 1)).astype(np.int64)
    is_subnormal = (exponent_field == 0) & fmt.subnormals
    significand = np.where(is_subnormal, mantissa_field, mantissa_field + (1 << m)).astype(np.float64)
    exponent = np.where(is_subnormal, fmt.min_exponent, exponent_field - fmt.bias) - m
    with np.errstate(over="ignore"):
        values = np.ldexp(significand, exponent)
    all_ones = (1 << fmt.exponent_bits) - 1
    if fmt.specials == "ieee":
        top = exponent_field == all_ones
        values[top] = np.where(mantissa_field[top] == 0, np.inf, np.nan)
    elif fmt.specials == "fn":
        values[(exponent_field == all_ones) & (mantissa_field == (1 << m) - 1)] = np.nan
    elif fmt.specials == "fnuz":
        values[negative & (exponent_field == 0) & (mantissa_field == 0)] = np.nan
    return np.where(negative, -values, values)


def round_to_format(values: np.ndarray, fmt: FloatFormat, *, via_fp32: bool = False) -> np.ndarray:
    """Vectorised ``decode(encode(x, fmt))``: float64 array (any shape) in, float64 array out.

    Round to nearest even, with subnormals, signed zeros and ``fmt.overflow``
    for values beyond ``max_value`` and infinities.  NaN stays NaN (even for
    formats without NaN, where :func:`encode` would raise), and so does what a
    format cannot store (a negative in an unsigned format, a zero where there
    is none); FNUZ formats give +0 for -0.  ``via_fp32`` as in :func:`encode`.
    """
    x = np.array(values, dtype=np.float64)
    if via_fp32 and _narrower_than_fp32(fmt):
        with np.errstate(over="ignore"):
            x = x.astype(np.float32).astype(np.float64)
    if fmt.is_binary64:
        return x
    magnitude = np.abs(x)
    m = fmt.mantissa_bits
    with np.errstate(over="ignore", invalid="ignore"):
        _, frexp_exponent = np.frexp(magnitude)  # magnitude = f * 2**frexp_exponent, f in [0.5, 1)
        grid_exponent = np.maximum(frexp_exponent.astype(np.int64) - 1, fmt.min_exponent) - m
        significand = np.rint(np.ldexp(magnitude, -grid_exponent))
        rounded = np.ldexp(significand, grid_exponent)
        overflow = ~(rounded <= fmt.max_value) & ~np.isnan(magnitude)
    rounded[overflow] = _overflow_magnitude(fmt)
    nan = np.isnan(magnitude)
    if not fmt.has_zero:  # E8M0: below the smallest value is the smallest; zero has no pattern
        rounded[rounded < fmt.smallest_normal] = fmt.smallest_normal
        nan |= magnitude == 0
    if not fmt.signed:
        nan |= (x < 0)
    rounded[nan] = np.nan
    if not fmt.has_negative_zero:
        return np.where((x < 0) & (rounded != 0), -rounded, rounded) if fmt.signed else rounded
    return np.copysign(rounded, x)


def encode_array(values: np.ndarray, fmt: FloatFormat, *, via_fp32: bool = False) -> np.ndarray:
    """Vectorised :func:`encode`: the bit pattern of every value (any shape) rounded into ``fmt``.

    Returns int64 patterns (uint64 for 64-bit formats), the same as ``encode`` one by one; a NaN
    (or a value with no pattern) in a format without NaN raises :class:`InputError` as ``encode``
    does.
    """
    x = np.array(values, dtype=np.float64)
    if via_fp32 and _narrower_than_fp32(fmt):
        with np.errstate(over="ignore"):
            x = x.astype(np.float32).astype(np.float64)
    if fmt.is_binary64:
        return x.view(np.uint64).copy()
    return _codes(round_to_format(x, fmt), x, fmt)


def _codes(rounded: np.ndarray, x: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    """Bit patterns of values already rounded into ``fmt`` (``rounded``, from ``round_to_format(x)``),
    the sign of NaN and zero taken from the input ``x``."""
    negative = np.signbit(x)
    nan = np.isnan(rounded)
    if nan.any() and fmt.nan_bits is None:
        reasons = (np.isnan(x), negative & (x != 0) & (not fmt.signed), (x == 0) & (not fmt.has_zero))
        reason = ("no_nan", "no_negative", "no_zero")[next(i for i, r in enumerate(reasons) if (r & nan).any())]
        raise InputError(reason, format=fmt.name)
    m = fmt.mantissa_bits
    finite = np.isfinite(rounded)
    magnitude = np.where(finite, np.abs(rounded), 0.0)
    _, frexp_exponent = np.frexp(magnitude)  # 0 for 0
    exponent = np.maximum(frexp_exponent.astype(np.int64) - 1, fmt.min_exponent)
    significand = np.ldexp(magnitude, m - exponent).astype(np.int64)  # < 2^m: subnormal (or 0)
    field = np.where(significand >> m, exponent + fmt.bias, 0)
    codes = (field << m) | (significand & ((1 << m) - 1))
    if not fmt.subnormals:  # the exponent field 0 is a normal binade: no implicit-bit exception
        codes = ((exponent + fmt.bias) << m) | (significand & ((1 << m) - 1))
    codes = np.where(np.isinf(rounded), ((1 << fmt.exponent_bits) - 1) << m, codes)
    signed_result = negative & ~nan & ((rounded != 0) | fmt.has_negative_zero) & fmt.signed
    codes |= np.where(signed_result, fmt.sign_mask, 0)
    if fmt.nan_bits is not None and nan.any():
        codes = np.where(nan, fmt.nan_bits | np.where(negative & fmt.nan_keeps_sign, fmt.sign_mask, 0), codes)
    return codes


def _overflow_magnitude(fmt: FloatFormat) -> float:
    return {"inf": math.inf, "nan": math.nan, "saturate": fmt.max_value}[fmt.overflow]
