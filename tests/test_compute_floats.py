"""Tests for workbench.compute.floats, with torch (and struct) as the oracle."""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compute import floats as F
from workbench.compute.floats import (
    FORMATS,
    custom_format,
    decode,
    decode_array,
    describe,
    describe_bits,
    encode,
    gradient_samples,
    log_histogram,
    lognormal_samples,
    neighbours,
    parse_value,
    prepare,
    range_info,
    representable_values,
    round_to_format,
    scaling_stats,
    with_overflow,
)

FP64, FP32, TF32 = FORMATS["fp64"], FORMATS["fp32"], FORMATS["tf32"]
FP16, BF16 = FORMATS["fp16"], FORMATS["bf16"]
E4M3, E5M2, FP4 = FORMATS["fp8_e4m3"], FORMATS["fp8_e5m2"], FORMATS["fp4_e2m1"]
TORCH_FORMATS = [FP16, BF16, E4M3, E5M2]
SMALL_FORMATS = [FP16, BF16, E4M3, E5M2, FP4]
HYPOTHESIS = settings(max_examples=150, deadline=None, database=None)
ids = lambda fmt: fmt.name  # noqa: E731


# ---------------------------------------------------------------- helpers


def torch_dtype(fmt):
    return getattr(torch, fmt.torch_dtype)


def torch_cast_bits(values, fmt) -> np.ndarray:
    """Bits of ``torch.tensor(values, dtype=float64).to(dtype)`` as int64."""
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(torch_dtype(fmt))
    view = {8: torch.uint8, 16: torch.int16, 32: torch.int32}[fmt.total_bits]
    return tensor.view(view).numpy().astype(np.int64) & ((1 << fmt.total_bits) - 1)


def torch_cast_values(values, fmt) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64)).to(torch_dtype(fmt))
    return tensor.to(torch.float64).numpy()


def torch_decode_all(fmt) -> np.ndarray:
    patterns = torch.arange(1 << fmt.total_bits, dtype=torch.int32)
    raw = patterns.to(torch.uint8) if fmt.total_bits == 8 else patterns.to(torch.int16)
    return raw.view(torch_dtype(fmt)).to(torch.float64).numpy()


def is_float32(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return values.astype(np.float32).astype(np.float64) == values


def same_floats(a, b) -> bool:
    """Elementwise identical float64 arrays: equal values, same zero signs, NaN where NaN."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) & (np.signbit(a) == np.signbit(b))
    return bool(np.all(both_nan | same))


def edge_values(fmt) -> np.ndarray:
    """Ties, subnormal boundaries, max, overflow, specials, and their float64 neighbours, both signs."""
    sub, norm, top, eps = fmt.smallest_subnormal, fmt.smallest_normal, fmt.max_value, fmt.epsilon
    top_quantum = math.ldexp(1.0, fmt.max_exponent - fmt.mantissa_bits)
    base = [
        sub, sub / 2, sub / 4, sub * 0.75, sub * 1.5, sub * 2.5, norm, norm - sub / 2, norm - sub,
        norm + sub / 2, norm * (1 + eps / 2), 1.0, 1 + eps / 2, 1 + 1.5 * eps, 1 + 2.5 * eps, 1 - eps / 4,
        1 - eps / 8, 0.1, 1 / 3, top, top + top_quantum / 4, top + top_quantum / 2, top + top_quantum,
        2 * top, 448.0, 464.0, 480.0, 57344.0, 61440.0, 65504.0, 65520.0, 3.4e38, 1e300,
    ]
    finite = np.array(base)
    around = np.concatenate([finite, np.nextafter(finite, np.inf), np.nextafter(finite, 0.0)])
    values = np.concatenate([around, [0.0, math.inf]])
    return np.concatenate([values, -values, [math.nan, -math.nan]])


def random_values(fmt, n: int, seed: int) -> np.ndarray:
    """Random float64 spread over the format's whole exponent range (and a bit beyond)."""
    rng = np.random.default_rng(seed)
    low = fmt.min_exponent - fmt.mantissa_bits - 3
    high = min(fmt.max_exponent + 3, 1023)
    significands = 1.0 + rng.random(n)
    signs = rng.choice([-1.0, 1.0], n)
    return signs * np.ldexp(significands, rng.integers(low, high, n))


def midpoints(fmt) -> np.ndarray:
    values = representable_values(fmt)
    return (values[:-1] + values[1:]) / 2


# ---------------------------------------------------------------- format table


@pytest.mark.parametrize("fmt", TORCH_FORMATS + [FP32, FP64], ids=ids)
def test_format_constants_match_torch_finfo(fmt):
    info = torch.finfo(torch_dtype(fmt))
    assert fmt.max_value == info.max
    assert fmt.smallest_normal == info.smallest_normal
    assert fmt.epsilon == info.eps
    assert fmt.total_bits == info.bits
    assert fmt.smallest_subnormal == math.ldexp(info.smallest_normal, -fmt.mantissa_bits)


def test_format_table_facts():
    assert list(FORMATS) == ["fp64", "fp32", "tf32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp8_e4m3fnuz",
                             "fp8_e5m2fnuz", "fp8_e4m3_ieee", "fp8_e3m4", "e8m0", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1"]
    assert (E4M3.max_value, E4M3.has_inf, E4M3.has_nan, E4M3.nan_bits) == (448.0, False, True, 0x7F)
    assert (E5M2.max_value, E5M2.has_inf, E5M2.has_nan) == (57344.0, True, True)
    assert (FP4.max_value, FP4.has_inf, FP4.has_nan, FP4.smallest_subnormal) == (6.0, False, False, 0.5)
    assert (TF32.total_bits, TF32.exponent_bits, TF32.mantissa_bits) == (19, 8, 10)
    for fmt in FORMATS.values():
        assert fmt.total_bits == fmt.signed + fmt.exponent_bits + fmt.mantissa_bits  # E8M0 has no sign bit
        assert fmt.bias == (1 << (fmt.exponent_bits - 1)) - 1 + (fmt.specials == "fnuz")  # FNUZ: bias + 1
        assert fmt.overflow in ("inf", "nan", "saturate")
        assert all(text for text in (fmt.label, fmt.usage_en, fmt.usage_zh, fmt.standard_en,
                                     fmt.standard_zh, fmt.torch_en, fmt.torch_zh, fmt.nan_encoding))
    assert "H100" in E4M3.usage_en and "loss scaling" in BF16.usage_en
    assert "saturate" in E4M3.torch_en and "NaN" in E4M3.standard_en
    assert F.get_format("fp16") is FP16
    with pytest.raises(ValueError, match="unknown format"):
        F.get_format("fp12")


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_recorded_overflow_is_what_torch_does(fmt):
    big = np.array([2 * fmt.max_value, 1e300, math.inf, -2 * fmt.max_value, -math.inf])
    torch_out = torch_cast_values(big, fmt)
    expected = {"inf": np.sign(big) * math.inf, "saturate": np.sign(big) * fmt.max_value}[fmt.overflow]
    assert same_floats(torch_out, expected)
    assert same_floats(round_to_format(big, fmt), expected)


def test_torch_overflow_behaviours_found():
    # What torch 2.13 actually does (recorded in FloatFormat.torch_en / overflow).
    assert E4M3.overflow == "saturate"
    assert list(torch_cast_bits([1e6, math.inf, -math.inf, math.nan], E4M3)) == [0x7E, 0x7E, 0xFE, 0x7F]
    assert list(torch_cast_bits([1e6, math.inf, math.nan, -math.nan], E5M2)) == [0x7C, 0x7C, 0x7F, 0xFF]
    assert list(torch_cast_bits([1e6, math.nan, -math.nan], FP16)) == [0x7C00, 0x7E00, 0xFE00]
    assert list(torch_cast_bits([1e39, math.nan, -math.nan], BF16)) == [0x7F80, 0x7FC0, 0x7FC0]


# ---------------------------------------------------------------- decode


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_decode_every_pattern_matches_torch(fmt):
    expected = torch_decode_all(fmt)
    patterns = np.arange(1 << fmt.total_bits)
    assert same_floats(decode_array(patterns, fmt), expected)
    scalar = np.array([decode(int(b), fmt) for b in patterns])
    assert same_floats(scalar, expected)


def test_decode_rejects_out_of_range_bits():
    with pytest.raises(ValueError, match="out of range"):
        decode(1 << 16, FP16)
    with pytest.raises(ValueError, match="out of range"):
        decode(-1, E4M3)
    with pytest.raises(ValueError, match="out of range"):
        decode_array(np.array([256]), E4M3)
    with pytest.raises(TypeError):
        decode(1.0, FP16)


# ---------------------------------------------------------------- encode vs torch


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_encode_edge_values_match_torch(fmt):
    values = edge_values(fmt)
    expected = torch_cast_bits(values, fmt)
    via_fp32 = np.array([encode(float(x), fmt, via_fp32=True) for x in values])
    assert np.array_equal(via_fp32, expected)
    # Exact rounding agrees with torch wherever torch's float32 detour cannot change the result.
    exact = np.array([encode(float(x), fmt) for x in values])
    representable = is_float32(values) | np.isnan(values)
    assert np.array_equal(exact[representable], expected[representable])
    # ... and elsewhere it matches the independent vectorised implementation.
    assert same_floats([decode(int(b), fmt) for b in exact], round_to_format(values, fmt))
    assert same_floats(round_to_format(values, fmt, via_fp32=True), torch_cast_values(values, fmt))


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_encode_scalar_tensor_path(fmt):
    # The literal oracle from the spec, one value at a time.
    for x in (0.0, -0.0, fmt.smallest_subnormal / 2, fmt.max_value, 2 * fmt.max_value, math.inf,
              -math.inf, math.nan, 1 + fmt.epsilon / 2, 0.1):
        tensor = torch.tensor(x, dtype=torch.float64).to(torch_dtype(fmt))
        view = torch.uint8 if fmt.total_bits == 8 else torch.int16
        expected = int(tensor.view(view).item()) & ((1 << fmt.total_bits) - 1)
        assert encode(x, fmt) == expected == encode(x, fmt, via_fp32=True)


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_every_midpoint_and_value_matches_torch(fmt):
    ties = midpoints(fmt)
    values = representable_values(fmt)
    for points in (ties, values):
        assert np.all(is_float32(points))  # so torch's float32 detour is harmless here
        assert same_floats(round_to_format(points, fmt), torch_cast_values(points, fmt))
    step = max(1, ties.size // 1500)
    sample = ties[::step]
    assert np.array_equal([encode(float(x), fmt) for x in sample], torch_cast_bits(sample, fmt))


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
def test_random_values_match_torch(fmt):
    values = random_values(fmt, 200_000, seed=1)
    expected = torch_cast_values(values, fmt)
    assert same_floats(round_to_format(values, fmt, via_fp32=True), expected)
    with np.errstate(over="ignore"):
        as_fp32 = values.astype(np.float32).astype(np.float64)
    assert same_floats(round_to_format(as_fp32, fmt), torch_cast_values(as_fp32, fmt))
    few = values[:3000]
    bits = torch_cast_bits(few, fmt)
    assert np.array_equal([encode(float(x), fmt, via_fp32=True) for x in few], bits)
    exact = np.array([encode(float(x), fmt) for x in few])
    assert same_floats(decode_array(exact, fmt), round_to_format(few, fmt))


@pytest.mark.parametrize("fmt", TORCH_FORMATS, ids=ids)
@HYPOTHESIS
@given(x=st.floats(allow_nan=True, allow_infinity=True))
def test_hypothesis_encode_matches_torch(fmt, x):
    expected = int(torch_cast_bits([x], fmt)[0])
    if np.isnan(x) and decode(expected, fmt) != decode(expected, fmt):
        # A NaN's payload is implementation-defined: torch's SIMD cast keeps its top bits (a float64 NaN
        # 0x7ff9f8cf... became fp16 0x7e7e), its scalar cast returns the canonical 0x7e00. Same sign, a NaN.
        got = encode(x, fmt, via_fp32=True)
        assert np.isnan(decode(got, fmt)) and got >> (fmt.total_bits - 1) == expected >> (fmt.total_bits - 1)
        return
    assert encode(x, fmt, via_fp32=True) == expected
    if np.isnan(x) or is_float32(np.array([x]))[0]:
        assert encode(x, fmt) == expected


def test_torch_double_rounds_through_float32():
    # 1 + half an fp16 ULP + a hair: exactly rounded it goes up, torch (via float32) ties to 1.0.
    x = 1 + 2.0**-11 + 2.0**-40
    assert torch_cast_values([x], FP16)[0] == 1.0
    assert decode(encode(x, FP16, via_fp32=True), FP16) == 1.0
    assert decode(encode(x, FP16), FP16) == 1 + 2.0**-10
    just_below_overflow = np.nextafter(61440.0, 0.0)
    assert decode(encode(just_below_overflow, E5M2), E5M2) == 57344.0
    assert np.isinf(torch_cast_values([np.nextafter(65520.0, 0.0)], FP16)[0])
    assert decode(encode(np.nextafter(65520.0, 0.0), FP16), FP16) == 65504.0


@pytest.mark.parametrize("fmt", [E4M3, E5M2, FP4], ids=ids)
@HYPOTHESIS
@given(x=st.fractions(min_value=-8, max_value=70000, max_denominator=1 << 20))
def test_hypothesis_exact_rne_against_brute_force(fmt, x):
    values = [Fraction(v) for v in representable_values(fmt)]
    if abs(x) > fmt.max_value:
        return
    best = min(abs(v - x) for v in values)
    candidates = [v for v in values if abs(v - x) == best]
    stored = Fraction(decode(encode(x, fmt), fmt))
    if len(candidates) == 1:
        assert stored == candidates[0]
    else:  # a tie: the chosen one has an even pattern
        assert stored in candidates
        assert encode(stored, fmt) % 2 == 0


# ---------------------------------------------------------------- fp32, fp64, tf32


def test_fp32_and_fp64_agree_with_struct():
    rng = np.random.default_rng(3)
    values = list(random_values(FP32, 3000, seed=4)) + [0.0, -0.0, 1.0, 0.1, FP32.max_value]
    for x in values:
        x = float(x)
        if abs(x) <= FP32.max_value:
            assert encode(x, FP32) == struct.unpack("<I", struct.pack("<f", x))[0]
        assert encode(x, FP64) == struct.unpack("<Q", struct.pack("<d", x))[0]
    for bits in rng.integers(0, 1 << 32, 3000):
        expected = struct.unpack("<f", struct.pack("<I", int(bits)))[0]
        assert same_floats([decode(int(bits), FP32)], [expected])
    for x in (math.inf, -math.inf, math.nan, -math.nan, 5e-324, 1e308):
        assert encode(x, FP64) == struct.unpack("<Q", struct.pack("<d", x))[0]
        assert encode(x, FP32, via_fp32=True) == int(torch_cast_bits([x], FP32)[0])


def test_fp32_random_values_match_torch():
    values = random_values(FP32, 100_000, seed=5)
    assert same_floats(round_to_format(values, FP32), torch_cast_values(values, FP32))
    few = values[:2000]
    assert np.array_equal([encode(float(x), FP32) for x in few], torch_cast_bits(few, FP32))


def tf32_reference(x32: np.ndarray) -> np.ndarray:
    """Round float32 values to tf32 by bit manipulation (RNE on the low 13 mantissa bits)."""
    bits = x32.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0xFFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)
    return rounded.astype(np.uint32)


def test_tf32_is_fp32_rounded_to_ten_mantissa_bits():
    generator = torch.Generator().manual_seed(0)
    x32 = (torch.randn(100_000, generator=generator) * torch.exp2(torch.randint(-140, 120, (100_000,),
                                                                                 generator=generator))).numpy()
    x32 = np.concatenate([x32, np.array([1 + 2.0**-11, 1 + 3 * 2.0**-11, 3.4e38, 1e-40], dtype=np.float32)])
    reference_bits = tf32_reference(x32)
    reference = reference_bits.view(np.float32).astype(np.float64)
    assert same_floats(round_to_format(x32.astype(np.float64), TF32), reference)
    for x, bits in zip(x32[:2000], reference_bits[:2000]):
        assert encode(float(x), TF32) == int(bits) >> 13
    # torch's float64 -> float32 cast followed by that rounding is TF32's via_fp32 mode.
    x64 = random_values(TF32, 50_000, seed=6)
    via_torch = tf32_reference(torch.from_numpy(x64).to(torch.float32).numpy())
    assert same_floats(round_to_format(x64, TF32, via_fp32=True), via_torch.view(np.float32).astype(np.float64))
    assert decode(encode(1.0, TF32), TF32) == 1.0 and encode(1.0, TF32) == 0x3F800000 >> 13


# ---------------------------------------------------------------- fp4


def test_fp4_cannot_be_cast_by_torch_so_use_closed_form():
    try:
        cast = torch.tensor([1.0, 2.0]).to(torch.float4_e2m1fn_x2)
    except (NotImplementedError, RuntimeError):
        cast = None
    assert cast is None, "torch can now cast to fp4: compare against it here"
    magnitudes = [0, 0.5, 1, 1.5, 2, 3, 4, 6]
    assert [decode(b, FP4) for b in range(8)] == magnitudes
    assert [decode(b | 8, FP4) for b in range(8)] == [-m for m in magnitudes]
    assert list(representable_values(FP4)) == sorted({-m for m in magnitudes} | set(magnitudes))


@pytest.mark.parametrize(
    "x, expected",
    [(0.25, 0.0), (0.26, 0.5), (0.75, 1.0), (1.25, 1.0), (1.75, 2.0), (2.5, 2.0), (3.5, 4.0), (5.0, 4.0),
     (5.01, 6.0), (7.0, 6.0), (100.0, 6.0), (math.inf, 6.0), (-0.1, -0.0), (-5.5, -6.0), (-math.inf, -6.0)],
)
def test_fp4_round_to_nearest_even_and_saturate(x, expected):
    assert same_floats([decode(encode(x, FP4), FP4)], [expected])
    assert same_floats(round_to_format(np.array([x]), FP4), [expected])


def test_fp4_has_no_nan():
    with pytest.raises(ValueError, match="no NaN"):
        encode(math.nan, FP4)
    with pytest.raises(ValueError, match="no NaN"):
        parse_value("nan", FP4)
    assert describe(7.0, FP4).outcome == "saturated"


# ---------------------------------------------------------------- describe


def test_describe_point_one_in_fp16():
    d = describe(0.1, FP16)
    assert d.exact == "0.0999755859375"
    assert d.exact_scientific == "9.99755859375e-2"
    assert (d.sign, d.exponent_field, d.unbiased_exponent, d.mantissa_field) == (0, 11, -4, 614)
    assert (d.bit_string, d.hex_string, d.kind, d.outcome) == ("0010111001100110", "0x2e66", "normal", "rounded")
    assert d.ulp == 2.0**-14
    assert d.prev_value < d.value < d.next_value
    f = d.formula
    assert f.sign_factor * f.power_of_two * f.significand == d.value
    assert f.text == "(-1)^0 × 2^(11 - 15) × 1.1001100110"
    typed = describe(parse_value("0.1", FP16), FP16)
    assert typed.abs_error == float(abs(Fraction(d.exact) - Fraction(1, 10)))  # vs the typed 1/10
    assert d.abs_error == float(abs(Fraction(d.exact) - Fraction(0.1)))  # vs float64(0.1)
    assert typed.rel_error == pytest.approx(typed.abs_error * 10)


def test_describe_special_values_have_no_nan_strings():
    for d in (describe(math.nan, FP16), describe(math.inf, FP16), describe(-math.inf, E5M2),
              describe(1e6, FP16), describe(1e6, with_overflow(E4M3, "nan")), describe_bits(0x7F, E4M3)):
        assert d.abs_error is None and d.rel_error is None and d.exact is None
        assert d.formula is None and d.ulp is None
        for value in vars(d).values():
            assert not (isinstance(value, float) and math.isnan(value))
        assert "nan" not in (d.bit_string + d.hex_string + d.exponent_binary + d.mantissa_binary).lower()
    assert describe(math.nan, FP16).outcome == "nan"
    assert describe(1e6, FP16).outcome == "overflow_inf"
    assert describe(1e6, with_overflow(E4M3, "nan")).outcome == "overflow_nan"
    assert describe(math.inf, E4M3).outcome == "saturated"
    assert describe(1e-30, FP16).outcome == "underflow"
    assert describe(1.0, FP16).outcome == "exact"


def test_describe_subnormal_formula_and_huge_input():
    d = describe_bits(0x0001, FP16)
    assert d.kind == "subnormal" and d.exact == "0.000000059604644775390625"
    assert d.formula.text == "(-1)^0 × 2^(1 - 15) × 0.0000000001" and d.formula.leading_bit == 0
    assert d.prev_value == 0.0 and d.next_value == 2 * d.value
    assert describe_bits(0x0000, FP16).prev_value == -d.value
    huge = describe(parse_value("1e99999", FP16), FP16)
    assert huge.kind == "inf" and huge.outcome == "overflow_inf" and huge.input_value == math.inf
    clamp = describe(parse_value("-1e99999", E4M3), E4M3)
    assert clamp.value == -448.0 and clamp.abs_error == math.inf and clamp.rel_error == 1.0
    tiny = describe(parse_value("1e-99999", FP16), FP16)
    assert tiny.kind == "zero" and tiny.outcome == "underflow" and tiny.rel_error == 1.0
    assert describe(Decimal("0.1"), FP16).abs_error == describe(parse_value("0.1", FP16), FP16).abs_error
    assert describe_bits(0x8000, FP16).exact == "-0"


def test_describe_fp64_exact_expansion_is_full():
    d = describe(5e-324, FP64)
    assert d.kind == "subnormal" and Fraction(d.exact) == Fraction(5e-324)
    assert describe(0.1, FP64).exact == "0.1000000000000000055511151231257827021181583404541015625"
    assert Fraction(describe(FP64.max_value, FP64).exact) == Fraction(FP64.max_value)
    assert describe(FP64.max_value, FP64).next_value is None


@pytest.mark.parametrize("fmt", SMALL_FORMATS + [custom_format(1, 2), custom_format(5, 0), custom_format(3, 2)],
                         ids=ids)
def test_every_pattern_describes_with_adjacent_neighbours(fmt):
    values = representable_values(fmt)
    for bits in range(1 << fmt.total_bits):
        d = describe_bits(bits, fmt)
        assert d.bits == bits and len(d.bit_string) == fmt.total_bits
        if d.kind == "nan":
            assert d.value is None and math.isnan(decode(bits, fmt))
            continue
        assert same_floats([d.value], [decode(bits, fmt)])
        if d.kind == "inf":
            continue
        assert Fraction(d.exact) == Fraction(d.value)
        index = int(np.searchsorted(values, d.value))
        assert values[index] == d.value
        assert d.prev_value == (values[index - 1] if index > 0 else None)
        assert d.next_value == (values[index + 1] if index + 1 < values.size else None)
        f = d.formula
        assert f.sign_factor * f.power_of_two * f.significand == d.value


# ---------------------------------------------------------------- neighbours


def test_neighbours_explain_round_to_nearest_even():
    tie = neighbours(1 + FP16.epsilon / 2, FP16)
    assert (tie.lower, tie.upper, tie.chosen, tie.reason, tie.tie) == (1.0, 1 + FP16.epsilon, 1.0,
                                                                         "tie_to_even", True)
    tie_up = neighbours(1 + 1.5 * FP16.epsilon, FP16)
    assert tie_up.chosen == tie_up.upper and tie_up.reason == "tie_to_even"
    near = neighbours(-0.1, FP16)
    assert near.lower < -0.1 < near.upper and near.reason == "nearer_upper" and near.chosen == near.upper
    assert near.distance_upper < near.distance_lower
    exact = neighbours(0.5, E4M3)
    assert exact.lower == exact.upper == exact.chosen == 0.5 and exact.reason == "exact"
    over = neighbours(1e5, E5M2)
    assert (over.lower, over.upper, over.chosen, over.reason) == (57344.0, None, math.inf, "overflow")
    assert neighbours(0.25, FP4).chosen == 0.0 and neighbours(0.25, FP4).tie
    assert set(F.REASONS) >= {tie.reason, near.reason, exact.reason, over.reason}
    with pytest.raises(ValueError, match="finite"):
        neighbours(math.inf, FP16)


# ---------------------------------------------------------------- parse_value


@pytest.mark.parametrize(
    "text, kind, value",
    [("0.1", "number", 0.1), ("  -2.5e-3 ", "number", -2.5e-3), ("1E3", "number", 1000.0), (".5", "number", 0.5),
     ("5.", "number", 5.0), ("+7", "number", 7.0), ("inf", "inf", math.inf), ("-INF", "inf", -math.inf),
     ("Infinity", "inf", math.inf), ("1e99999", "number", math.inf), ("0x3c00", "bits", 1.0),
     ("0b0011_1100_0000_0000", "bits", 1.0), ("0xFC00", "bits", -math.inf)],
)
def test_parse_value_accepts(text, kind, value):
    parsed = parse_value(text, FP16)
    assert parsed.kind == kind and parsed.value == value


def test_parse_value_keeps_exact_input_and_signs():
    assert parse_value("0.1", FP16).exact == Fraction(1, 10)
    minus_zero = parse_value("-0", FP16)
    assert minus_zero.negative and minus_zero.exact == 0 and math.copysign(1, minus_zero.value) < 0
    assert encode(minus_zero, FP16) == 0x8000
    nan = parse_value("-nan", FP16)
    assert nan.kind == "nan" and nan.value is None and encode(nan, FP16) == 0xFE00
    assert parse_value("1e99999", FP16).clamped and encode(parse_value("1e99999", FP16), FP16) == 0x7C00
    bits = parse_value("0x7e01", FP16)
    assert bits.bits == 0x7E01 and describe(bits, FP16).bits == 0x7E01 and describe(bits, FP16).kind == "nan"
    assert encode(parse_value("0x3c00", FP16), E4M3) == 0x38  # a pattern's value, re-encoded
    assert parse_value("0x7", FP4).value == 6.0


@pytest.mark.parametrize(
    "text, fmt, message",
    [("abc", FP16, "not a number"), ("", FP16, "empty"), ("   ", FP16, "empty"), ("0x", FP16, "no hex digits"),
     ("0b", FP16, "no binary digits"), ("1.2.3", FP16, "not a number"), ("0x1ffff", FP16, "wider than"),
     ("0x00000", FP16, "wider than"), ("0b1_0000_0000", E4M3, "wider than"), ("0x1f", FP4, "wider than"),
     ("0b012", FP16, "invalid binary"), ("0x3g", FP16, "invalid hex"), ("-0x3c00", FP16, "sign"),
     ("1e", FP16, "not a number"), ("e5", FP16, "not a number"), ("--1", FP16, "not a number"),
     ("nan", FP4, "no NaN")],
)
def test_parse_value_rejects(text, fmt, message):
    with pytest.raises(ValueError, match=message):
        parse_value(text, fmt)


# ---------------------------------------------------------------- custom formats


def test_custom_format_validation_names_parameter():
    for args, name in (((0, 3), "exponent_bits"), ((12, 3), "exponent_bits"), ((5, -1), "mantissa_bits"),
                       ((5, 53), "mantissa_bits"), ((2.0, 1), "exponent_bits"), ((True, 1), "exponent_bits")):
        with pytest.raises(ValueError, match=name):
            custom_format(*args)


def test_custom_formats_behave_like_the_presets():
    half = custom_format(5, 10)
    values = random_values(FP16, 20_000, seed=7)
    assert same_floats(round_to_format(values, half), round_to_format(values, FP16))
    assert custom_format(11, 52).max_value == FP64.max_value
    assert custom_format(4, 3).max_value == 240.0  # IEEE-style E4M3 spends a binade on inf/NaN
    one_bit = custom_format(1, 2)
    assert (one_bit.has_inf, one_bit.has_nan, one_bit.overflow) == (False, False, "saturate")
    assert list(representable_values(one_bit)) == [-3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5,
                                                    3, 3.5]
    no_mantissa = custom_format(5, 0)
    assert no_mantissa.has_inf and not no_mantissa.has_nan
    assert no_mantissa.smallest_subnormal == no_mantissa.smallest_normal
    assert decode(encode(3.0, no_mantissa), no_mantissa) == 4.0  # tie between 2 and 4 -> even (4)
    with pytest.raises(ValueError, match="no NaN"):
        encode(math.nan, no_mantissa)


def test_with_overflow_switches_policy():
    ocp = with_overflow(E4M3, "nan")
    assert encode(500.0, ocp) == 0x7F and encode(-math.inf, ocp) == 0xFF and encode(460.0, ocp) == 0x7E
    assert encode(500.0, E4M3) == 0x7E
    assert encode(1e6, with_overflow(E5M2, "saturate")) == 0x7B
    with pytest.raises(ValueError, match="no infinity"):
        with_overflow(E4M3, "inf")
    with pytest.raises(ValueError, match="overflow must be"):
        with_overflow(FP16, "wrap")


# ---------------------------------------------------------------- range and value sets


def test_range_info_fp16():
    info = range_info(FP16)
    assert (info.smallest_subnormal, info.smallest_normal, info.max_value) == (2.0**-24, 2.0**-14, 65504.0)
    assert (info.log2_smallest_subnormal, info.log2_smallest_normal, info.log2_epsilon) == (-24, -14, -10)
    assert info.decades_total == pytest.approx(math.log10(65504 / 2.0**-24))
    assert info.decades_normal == pytest.approx(math.log10(65504 / 2.0**-14))
    assert info.binades_normal == 30 and info.values_per_binade == 1024
    assert math.isfinite(range_info(FP64).decades_total)


def test_representable_values():
    # all patterns - inf/NaN patterns - the duplicate zero
    sizes = {"fp16": 65536 - 2048 - 1, "bf16": 65536 - 256 - 1, "fp8_e4m3": 256 - 2 - 1, "fp8_e5m2": 256 - 8 - 1,
             "fp4_e2m1": 16 - 1}
    for fmt in SMALL_FORMATS:
        values = representable_values(fmt)
        assert values.size == sizes[fmt.name]
        assert np.all(np.diff(values) > 0) and np.all(np.isfinite(values))
        assert not np.signbit(values[values == 0]).any()
    with pytest.raises(ValueError, match="16"):
        representable_values(FP32)


# ---------------------------------------------------------------- loss-scaling demo


def test_gradient_samples_distribution():
    g = gradient_samples(1e-5, 1.5, n=200_000, seed=3)
    assert g.shape == (200_000,) and g.dtype == np.float64 and np.all(g > 0)
    logs = np.log10(g)
    assert np.median(logs) == pytest.approx(-5, abs=0.02)
    assert np.std(logs) == pytest.approx(1.5, rel=0.01)
    assert np.array_equal(g, gradient_samples(1e-5, 1.5, n=200_000, seed=3))
    with pytest.raises(ValueError, match="median"):
        gradient_samples(0.0, 1.0)
    with pytest.raises(ValueError, match="spread"):
        gradient_samples(1.0, -1.0)


def brute_force_classes(samples, fmt, scale_exp):
    """(underflow, subnormal, normal, overflow) counts by actually rounding every sample."""
    scaled = np.ldexp(samples, scale_exp)
    probe = with_overflow(fmt, "nan") if fmt.has_nan and fmt.overflow == "saturate" else fmt
    rounded = np.abs(round_to_format(scaled, probe))
    overflow = ~np.isfinite(rounded)
    underflow = rounded == 0
    subnormal = (rounded > 0) & (rounded < fmt.smallest_normal)
    return [int(underflow.sum()), int(subnormal.sum()), int((~overflow & ~underflow & ~subnormal).sum()),
            int(overflow.sum())]


@pytest.mark.parametrize("fmt", [FP16, BF16, E4M3, E5M2, TF32, FP32], ids=ids)
def test_scaling_stats_match_brute_force(fmt):
    samples = gradient_samples(1e-4, 3.0, n=100_000, seed=11)
    prepared = prepare(samples)
    for scale_exp in (-20, 0, 8, 24):
        stats = scaling_stats(prepared, fmt, scale_exp)
        counts = [round(f * stats.n) for f in (stats.underflow, stats.subnormal, stats.normal, stats.overflow)]
        assert counts == brute_force_classes(samples, fmt, scale_exp)
        assert stats.overflow_to == fmt.overflow and stats.n == samples.size
    assert scaling_stats(samples[:1000], fmt, 3) == scaling_stats(prepare(samples[:1000]), fmt, 3)


def test_scaling_stats_exact_thresholds():
    sub, norm = FP16.smallest_subnormal, FP16.smallest_normal
    edges = np.array([sub / 2, np.nextafter(sub / 2, 1), norm - sub / 2, np.nextafter(norm - sub / 2, 0),
                      65520.0, np.nextafter(65520.0, 0), 65504.0, norm])
    for scale_exp in (0, -3, 5):
        samples = np.ldexp(edges, -scale_exp)
        stats = scaling_stats(samples, FP16, scale_exp)
        counts = [round(f * stats.n) for f in (stats.underflow, stats.subnormal, stats.normal, stats.overflow)]
        assert counts == brute_force_classes(samples, FP16, scale_exp) == [1, 2, 4, 1]
    fp4_samples = np.array([0.25, 0.26, 0.75, 6.9, 7.0, 100.0])
    stats = scaling_stats(fp4_samples, FP4, 0)
    assert [round(f * 6) for f in (stats.underflow, stats.subnormal, stats.normal, stats.overflow)] == [1, 1, 2, 2]
    assert [describe(float(x), FP4).outcome for x in fp4_samples[3:]] == ["rounded", "saturated", "saturated"]


def test_log_histogram_matches_numpy():
    samples = gradient_samples(1e-3, 2.0, n=100_000, seed=5)
    samples = np.concatenate([samples, [0.0, 0.0, math.inf, math.nan]])
    finite = samples[np.isfinite(samples) & (samples > 0)]
    for scale_exp in (0, 10):
        reference, _ = np.histogram(np.log10(finite) + scale_exp * math.log10(2), bins=60, range=(-9, 3))
        for source in (samples, prepare(samples)):
            hist = log_histogram(source, 60, -9.0, 3.0, scale_exp=scale_exp)
            assert hist.edges.shape == (61,) and hist.counts.shape == (60,)
            assert np.array_equal(hist.counts, reference)
            assert hist.zeros == 2 and hist.non_finite == 2
            assert hist.below + hist.above + hist.counts.sum() == finite.size
    with pytest.raises(ValueError, match="lo < hi"):
        log_histogram(samples, 10, 1.0, 1.0)


# ---------------------------------------------------------------- log-normal fast path

LOGNORMAL_N = 200_000
CLASSES = ("underflow", "subnormal", "normal", "overflow")


def class_counts(stats):
    return [round(getattr(stats, name) * stats.n) for name in CLASSES]


def test_lognormal_samples_are_the_gradient_samples_draws():
    median, spread, seed = 3e-6, 1.7, 4
    fast = lognormal_samples(median, spread, n=LOGNORMAL_N, seed=seed)
    z = np.random.default_rng(seed).standard_normal(LOGNORMAL_N)
    assert np.array_equal(fast.sorted_z, np.sort(z))
    # Generator.normal(loc, scale) is loc + scale * standard_normal: the same numbers, bit for bit.
    logs = np.random.default_rng(seed).normal(math.log10(median), spread, LOGNORMAL_N)
    assert np.array_equal(logs, fast.log10_median + spread * z)
    rebuilt = np.power(10.0, fast.log10_median + spread * fast.sorted_z)
    assert np.array_equal(rebuilt, np.sort(gradient_samples(median, spread, n=LOGNORMAL_N, seed=seed)))
    assert fast.n == LOGNORMAL_N and fast.nan_count == 0 and fast.zeros == fast.infinities == 0
    assert fast.log10_median == math.log10(median) and fast.median == median
    # The sorted draws are computed once per (n, seed), shared and read-only; the object is frozen.
    again = lognormal_samples(1e-2, 0.3, n=LOGNORMAL_N, seed=seed)
    assert again.sorted_z is fast.sorted_z
    assert lognormal_samples(median, spread, n=LOGNORMAL_N, seed=seed + 1).sorted_z is not fast.sorted_z
    assert not fast.sorted_z.flags.writeable
    with pytest.raises(ValueError):
        fast.sorted_z[0] = 0.0
    with pytest.raises(AttributeError):
        fast.median = 1.0


@pytest.mark.parametrize(
    "median, spread, seed",
    [
        (1e-4, 3.0, 11),  # the default demo shape: every class populated somewhere
        (2e-8, 0.8, 1),  # straddles the fp16 subnormal band
        (5e3, 1.2, 2),  # straddles the fp16 / fp8 overflow
        (1e-300, 10.0, 3),  # some draws are below float64's range: gradient_samples stores 0.0
        (1e300, 5.0, 4),  # some draws are above float64's range: gradient_samples stores inf
        (1e-7, 1e-300, 5),  # a spread so small every draw rounds to the median
    ],
)
def test_lognormal_stats_and_histogram_match_the_float_path(median, spread, seed):
    fast = lognormal_samples(median, spread, n=LOGNORMAL_N, seed=seed)
    samples = gradient_samples(median, spread, n=LOGNORMAL_N, seed=seed)
    prepared = prepare(samples)
    assert fast.zeros == np.count_nonzero(samples == 0)
    assert fast.infinities == np.count_nonzero(np.isinf(samples))
    formats = [*FORMATS.values(), custom_format(3, 4), custom_format(1, 2), with_overflow(E4M3, "nan")]
    for fmt in formats:
        for scale_exp in (-4096, -300, -40, 0, 8, 24, 300, 4096):
            stats = scaling_stats(fast, fmt, scale_exp)
            reference = scaling_stats(prepared, fmt, scale_exp)
            assert stats.n == LOGNORMAL_N and stats.overflow_to == fmt.overflow
            assert stats.format_name == fmt.name and stats.scale_exp == scale_exp
            # Only samples within float rounding of a threshold may land differently.
            assert np.abs(np.subtract(class_counts(stats), class_counts(reference))).max() <= 3
            assert sum(class_counts(stats)) == LOGNORMAL_N
    # Bin edges stay clear of float64's subnormal range, where the float path's boundaries
    # 10**(edge - shift) keep only a few significant bits and the z-space answer is the better one.
    for scale_exp in (0, 17, -60):
        hist = log_histogram(fast, 61, -300.0, 310.0, scale_exp=scale_exp)
        reference = log_histogram(prepared, 61, -300.0, 310.0, scale_exp=scale_exp)
        assert (hist.zeros, hist.non_finite) == (reference.zeros, reference.non_finite)
        assert np.abs(hist.counts - reference.counts).max() <= 3
        assert abs(hist.below - reference.below) <= 3 and abs(hist.above - reference.above) <= 3
        assert hist.counts.sum() + hist.below + hist.above + hist.zeros + hist.non_finite == LOGNORMAL_N


def test_lognormal_extreme_scales_underflow_or_overflow_everything():
    fast = lognormal_samples(1e-4, 2.0, n=LOGNORMAL_N, seed=0)
    for fmt in (FP16, BF16, E4M3, E5M2, FP4):
        assert class_counts(scaling_stats(fast, fmt, -4096)) == [LOGNORMAL_N, 0, 0, 0]
        assert class_counts(scaling_stats(fast, fmt, 4096)) == [0, 0, 0, LOGNORMAL_N]
    with pytest.raises(ValueError, match="scale_exp"):
        scaling_stats(fast, FP16, 4097)


def test_lognormal_spread_zero_compares_the_median_itself():
    fast = lognormal_samples(1e-5, 0.0, n=LOGNORMAL_N, seed=0)
    prepared = prepare(gradient_samples(1e-5, 0.0, n=LOGNORMAL_N, seed=0))
    for fmt in (FP16, BF16, E4M3, E5M2, FP4):
        for scale_exp in (-30, -10, 0, 10, 20, 40):
            stats = scaling_stats(fast, fmt, scale_exp)
            assert class_counts(stats) == class_counts(scaling_stats(prepared, fmt, scale_exp))
            assert sorted(class_counts(stats)) == [0, 0, 0, LOGNORMAL_N]  # all samples in one class
    hist = log_histogram(fast, 20, -10.0, 0.0)
    assert hist.counts.tolist() == [0] * 10 + [LOGNORMAL_N] + [0] * 9  # log10(1e-5) = -5 is in bin 10
    # 2**-25 is exactly halfway between 0 and fp16's smallest subnormal: the tie rounds to 0.
    # gradient_samples would hold 10**log10(2**-25), which is off by a rounding and lands on the other side.
    tie = 2.0**-25
    fast = lognormal_samples(tie, 0.0, n=10, seed=0)
    assert describe(tie, FP16).outcome == "underflow"
    assert class_counts(scaling_stats(fast, FP16, 0)) == [10, 0, 0, 0]
    assert class_counts(scaling_stats(fast, FP16, 1)) == [0, 10, 0, 0]
    assert 10.0 ** math.log10(tie) != tie


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(median=0.0, spread_decades=1.0), "median"),
        (dict(median=-1e-3, spread_decades=1.0), "median"),
        (dict(median=math.inf, spread_decades=1.0), "median"),
        (dict(median=math.nan, spread_decades=1.0), "median"),
        (dict(median="1e-3", spread_decades=1.0), "median"),
        (dict(median=True, spread_decades=1.0), "median"),
        (dict(median=1e-3, spread_decades=-0.5), "spread_decades"),
        (dict(median=1e-3, spread_decades=math.nan), "spread_decades"),
        (dict(median=1e-3, spread_decades=math.inf), "spread_decades"),
        (dict(median=1e-3, spread_decades=1.0, n=-1), "n"),
        (dict(median=1e-3, spread_decades=1.0, n=10.5), "n"),
        (dict(median=1e-3, spread_decades=1.0, seed=-1), "seed"),
        (dict(median=1e-3, spread_decades=1.0, seed="0"), "seed"),
    ],
)
def test_lognormal_samples_validate_inputs(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} "):
        lognormal_samples(**kwargs)


def test_lognormal_empty_set():
    empty = lognormal_samples(1e-3, 1.0, n=0)
    assert class_counts(scaling_stats(empty, FP16, 0)) == [0, 0, 0, 0]
    hist = log_histogram(empty, 4, -5.0, 0.0)
    assert hist.counts.tolist() == [0, 0, 0, 0] and hist.below == hist.above == hist.zeros == 0
