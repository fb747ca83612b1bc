"""The formats hardware uses now (FNUZ, E8M0, FP6, E3M4, IEEE-style E4M3) and block scaling
(MX, NVFP4, per-tensor and DeepSeek-V3 FP8): ml_dtypes and torch are the oracles, bit for bit."""

from __future__ import annotations

import dataclasses
import math
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch

from workbench.compute import floats as F
from workbench.compute.floats import (E8M0, FORMATS, FP4_E2M1, FP6_E2M3, FP6_E3M2, FP8_E3M4, FP8_E4M3, FP8_E4M3_IEEE,
                                      FP8_E4M3FNUZ, FP8_E5M2, FP8_E5M2FNUZ, RECIPES, custom_format, decode, decode_array,
                                      describe, describe_bits, encode, encode_array, neighbours, quantize,
                                      quantize_recipe, range_info, representable_values, round_to_format,
                                      scaling_stats, with_overflow)

NEW = [FP8_E4M3FNUZ, FP8_E5M2FNUZ, E8M0, FP6_E2M3, FP6_E3M2, FP8_E3M4, FP8_E4M3_IEEE]
ML = [f for f in FORMATS.values() if f.ml_dtype is not None]  # the new ones and bf16, fp8_e4m3, fp8_e5m2, fp4_e2m1
ids = lambda fmt: fmt.name  # noqa: E731


def ml(fmt):
    return getattr(ml_dtypes, fmt.ml_dtype)


def as_ml(values, fmt) -> np.ndarray:
    """values (float64) cast by ml_dtypes (its warnings for NaN in formats without one are expected)."""
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(values, dtype=np.float64).astype(ml(fmt))


def ml_bits(values, fmt) -> np.ndarray:
    cast = as_ml(values, fmt)
    return cast.view(np.uint16 if fmt.total_bits == 16 else np.uint8).astype(np.int64)


def ml_values(values, fmt) -> np.ndarray:
    return as_ml(values, fmt).astype(np.float64)


def ml_decode_all(fmt) -> np.ndarray:
    patterns = np.arange(1 << fmt.total_bits, dtype=np.uint16 if fmt.total_bits == 16 else np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return patterns.view(ml(fmt)).astype(np.float64)


def ml_overflow(fmt):
    """The format with ml_dtypes' overflow rule: it casts OCP E4M3 non-saturating (overflow -> NaN),
    where this model follows torch (saturating)."""
    return with_overflow(fmt, "nan") if fmt.name == "fp8_e4m3" else fmt


def same_floats(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all((np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))))


def probes(fmt, seed=0) -> np.ndarray:
    """Every value, every tie between neighbours and the float64s beside them, the edges of the range and
    beyond, specials, and random values over the whole exponent range; both signs."""
    values = representable_values(fmt)
    ties = (values[:-1] + values[1:]) / 2
    top_quantum = math.ldexp(1.0, fmt.max_exponent - fmt.mantissa_bits)
    edges = [fmt.max_value + top_quantum / 2, fmt.max_value + top_quantum / 4, 2 * fmt.max_value, 1e300,
             fmt.smallest_subnormal / 2, fmt.smallest_subnormal / 4, fmt.smallest_subnormal * 0.75, 5e-324]
    rng = np.random.default_rng(seed)
    randoms = (1 + rng.random(20_000)) * np.ldexp(1.0, rng.integers(fmt.min_exponent - fmt.mantissa_bits - 3,
                                                                    min(fmt.max_exponent + 3, 1023), 20_000))
    finite = np.concatenate([values, ties, np.nextafter(ties, np.inf), np.nextafter(ties, -np.inf), edges, randoms])
    return np.concatenate([finite, -finite, [0.0, -0.0, np.inf, -np.inf, np.nan]])


# ---------------------------------------------------------------- the format table


def test_new_formats_by_their_names_and_their_constants_are_ml_dtypes_finfo():
    assert [FORMATS[n] for n in ("fp8_e4m3fnuz", "fp8_e5m2fnuz", "e8m0", "fp6_e2m3", "fp6_e3m2", "fp8_e3m4",
                                 "fp8_e4m3_ieee")] == NEW
    for fmt in ML:
        info = ml_dtypes.finfo(ml(fmt))
        assert (fmt.max_value, fmt.smallest_normal, fmt.epsilon) == (float(info.max), float(info.smallest_normal),
                                                                     float(info.eps)), fmt.name
        assert fmt.smallest_subnormal == float(info.smallest_subnormal) and fmt.total_bits == info.bits, fmt.name
    assert (FP8_E4M3FNUZ.bias, FP8_E5M2FNUZ.bias, E8M0.bias, FP6_E2M3.bias, FP6_E3M2.bias, FP8_E3M4.bias) == (8, 16, 127,
                                                                                                             1, 3, 3)
    assert (E8M0.signed, E8M0.total_bits, E8M0.has_zero, E8M0.nan_bits) == (False, 8, False, 0xFF)
    assert (FP8_E4M3FNUZ.specials, FP8_E4M3FNUZ.nan_bits, FP8_E4M3FNUZ.has_negative_zero) == ("fnuz", 0x80, False)
    assert not FP6_E2M3.has_nan and not FP6_E3M2.has_inf and FP8_E3M4.has_inf and FP8_E4M3_IEEE.max_value == 240
    for fmt in NEW:
        assert all((fmt.standard_en, fmt.standard_zh, fmt.torch_en, fmt.torch_zh, fmt.usage_en, fmt.usage_zh))
        assert F.get_format(fmt.name) is fmt


@pytest.mark.parametrize("fmt", ML, ids=ids)
def test_decode_of_every_pattern_is_ml_dtypes(fmt):
    expected = ml_decode_all(fmt)
    patterns = np.arange(1 << fmt.total_bits)
    assert same_floats(decode_array(patterns, fmt), expected)
    assert same_floats([decode(int(b), fmt) for b in patterns], expected)


@pytest.mark.parametrize("fmt", ML, ids=ids)
def test_round_to_nearest_even_at_ties_and_edges_is_ml_dtypes_bit_for_bit(fmt):
    fmt = ml_overflow(fmt)
    values = probes(fmt)
    if not fmt.has_nan:  # ml_dtypes writes a NaN into a format without one as some pattern; here it has none
        values = values[~np.isnan(values)]
    assert same_floats(round_to_format(values, fmt), ml_values(values, fmt))
    codes, expected = encode_array(values, fmt), ml_bits(values, fmt)
    number = ~np.isnan(ml_values(values, fmt))  # a NaN's sign and payload are the caster's choice
    assert np.array_equal(codes[number], expected[number])
    assert np.all(np.isnan(decode_array(codes[~number], fmt)))
    sample = values[:: max(1, values.size // 1500)]
    assert np.array_equal([encode(float(x), fmt) for x in sample], encode_array(sample, fmt))


@pytest.mark.parametrize("fmt", [FP8_E4M3FNUZ, FP8_E5M2FNUZ, E8M0], ids=ids)
def test_torch_float8_dtypes_decode_and_cast_as_here(fmt):
    dtype = getattr(torch, fmt.torch_dtype)
    patterns = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    assert same_floats(decode_array(np.arange(256), fmt), patterns.view(dtype).to(torch.float64).numpy())
    values = probes(fmt, seed=1)
    if not fmt.signed:  # torch's E8M0 cast differs from ml_dtypes (and the OCP spec) off the normal range:
        # it drops the sign, stores 0 as 2^-127 and rounds every float32 subnormal above 2^-127 up to 2^-126
        quirks = torch.tensor([-1.0, 0.0, 1.02 * 2.0 ** -127], dtype=torch.float32).to(dtype)
        assert quirks.view(torch.uint8).tolist() == [127, 0, 1]
        assert [encode(x, fmt) for x in (-1.0, 0.0, 1.02 * 2.0 ** -127)] == [0xFF, 0xFF, 0]
        values = values[(values >= 2.0 ** -126) | np.isinf(values)]
    cast = torch.from_numpy(values).to(dtype)
    bits = cast.view(torch.uint8).numpy().astype(np.int64)
    assert np.array_equal(encode_array(values, fmt, via_fp32=True), bits)
    assert same_floats(round_to_format(values, fmt, via_fp32=True), cast.to(torch.float64).numpy())


def test_fnuz_has_no_negative_zero_and_keeps_nan_where_it_would_be():
    for fmt in (FP8_E4M3FNUZ, FP8_E5M2FNUZ):
        assert encode(-0.0, fmt) == 0 and encode(-1e-30, fmt) == 0 and encode(math.nan, fmt) == 0x80
        assert encode(-math.inf, fmt) == 0x80 and encode(1e9, fmt) == 0x80  # overflow -> NaN
        assert np.isnan(decode(0x80, fmt)) and describe_bits(0x80, fmt).kind == "nan"
        assert describe(-0.0, fmt).outcome == "no_negative_zero" and describe(-1e-30, fmt).outcome == "underflow"
        assert same_floats(round_to_format([-0.0, -1e-30, 5.0], fmt), [0.0, 0.0, 5.0])
        assert describe_bits(0x7F, fmt).value == fmt.max_value  # S.1111.111 is a number here
    assert decode(0x01, FP8_E4M3FNUZ) == 2.0 ** -10 and decode(0x81, FP8_E4M3FNUZ) == -(2.0 ** -10)
    assert neighbours(0.0, FP8_E4M3FNUZ).lower == neighbours(0.0, FP8_E4M3FNUZ).upper == 0.0
    previous, following = describe_bits(0x00, FP8_E4M3FNUZ).prev_value, describe_bits(0x00, FP8_E4M3FNUZ).next_value
    assert (previous, following) == (-(2.0 ** -10), 2.0 ** -10)


def test_e8m0_is_an_unsigned_power_of_two_without_zero():
    assert [encode(x, E8M0) for x in (1.0, 1.5, 3.0, 6.0, 2.0 ** -127, 2.0 ** 127)] == [127, 128, 129, 130, 0, 254]
    assert encode(3.0, E8M0) == encode(4.0, E8M0)  # a tie goes up: no mantissa bit to be even
    assert encode(0.0, E8M0) == encode(-1.0, E8M0) == encode(math.inf, E8M0) == encode(2.0 ** 128, E8M0) == 0xFF
    assert encode(1e-45, E8M0) == 0  # below the smallest value: the smallest value
    assert [describe(x, E8M0).outcome for x in (0.0, -1.0, 1e-45, 3.0, 4.0)] == [
        "no_zero", "negative_unsigned", "underflow_min", "rounded", "exact"]
    d = describe(0.5, E8M0)
    assert (d.sign, d.exponent_field, d.mantissa_binary, d.kind) == (0, 126, "", "normal")
    assert d.formula.text == "2^(126 - 127) × 1" and describe_bits(0, E8M0).value == 2.0 ** -127
    assert neighbours(3.0, E8M0).reason == "tie_to_larger" and neighbours(3.0, E8M0).chosen == 4.0
    below = neighbours(1e-45, E8M0)
    assert below.lower is None and below.upper == 2.0 ** -127 and below.reason == "below_smallest"
    with pytest.raises(ValueError, match="unsigned"):
        neighbours(-2.0, E8M0)
    with pytest.raises(ValueError, match="no zero"):
        neighbours(0.0, E8M0)
    assert describe_bits(0, E8M0).prev_value is None and describe_bits(0xFE, E8M0).next_value is None
    values = representable_values(E8M0)
    assert values.size == 255 and values[0] == 2.0 ** -127 and values[-1] == 2.0 ** 127
    info = range_info(E8M0)
    assert info.log2_smallest_subnormal == info.log2_smallest_normal == -127 and info.decades_total == pytest.approx(
        254 * math.log10(2))
    assert same_floats(round_to_format([0.0, -2.0, 1e-300, 2.9], E8M0), [math.nan, math.nan, 2.0 ** -127, 2.0])


@pytest.mark.parametrize("fmt", NEW, ids=ids)
def test_every_function_works_for_the_new_formats(fmt):
    for bits in range(1 << fmt.total_bits):
        d = describe_bits(bits, fmt)
        value = decode(bits, fmt)
        assert (d.kind == "nan") == math.isnan(value)
        if d.kind not in ("inf", "nan"):
            assert d.value == value and d.formula.value == value
            assert d.prev_value is None or d.prev_value < value or (d.prev_value == value == 0)
    rng = np.random.default_rng(3)
    for x in rng.uniform(-fmt.max_value, fmt.max_value, 200):
        if (x < 0 and not fmt.signed) or x == 0:
            continue
        near = neighbours(float(x), fmt)
        assert near.chosen == round_to_format([x], fmt)[0]
        assert near.lower is None or near.lower <= x <= near.upper
    info = range_info(fmt)
    assert info.values_per_binade == 1 << fmt.mantissa_bits and info.log2_max == math.log2(fmt.max_value)
    samples = np.abs(rng.standard_normal(20_000)) * fmt.max_value / 4
    stats = scaling_stats(samples, fmt, 0)
    rounded = np.abs(round_to_format(samples, fmt if fmt.overflow != "saturate" else with_overflow(fmt, "nan")
                                     if fmt.has_nan else fmt))
    assert stats.underflow == pytest.approx(np.mean(rounded == 0), abs=1e-12)
    assert sum((stats.underflow, stats.subnormal, stats.normal, stats.overflow)) == pytest.approx(1.0)
    lognormal = F.lognormal_samples(fmt.smallest_normal, 1.0, n=10_000, seed=0)
    stats = scaling_stats(lognormal, fmt, 0)
    assert sum((stats.underflow, stats.subnormal, stats.normal, stats.overflow)) == pytest.approx(1.0)


def test_the_custom_format_builds_the_new_formats():
    pairs = [(custom_format(4, 3, bias=8, specials="fnuz"), FP8_E4M3FNUZ),
             (custom_format(5, 2, bias=16, specials="fnuz"), FP8_E5M2FNUZ),
             (custom_format(2, 3, specials="none"), FP6_E2M3), (custom_format(3, 2, specials="none"), FP6_E3M2),
             (custom_format(3, 4), FP8_E3M4), (custom_format(4, 3), FP8_E4M3_IEEE),
             (custom_format(4, 3, specials="fn"), with_overflow(FP8_E4M3, "nan"))]
    values = probes(FP8_E5M2, seed=5)
    for custom, preset in pairs:
        assert np.array_equal(representable_values(custom), representable_values(preset)), custom.name
        finite = values if preset.has_nan else values[~np.isnan(values)]
        assert same_floats(round_to_format(finite, custom), round_to_format(finite, preset)), custom.name
    assert custom_format(4, 3, bias=8, specials="fnuz").name == "e4m3_fnuz_b8"
    unsigned = custom_format(8, 0, specials="fn", signed=False)
    assert unsigned.total_bits == 8 and unsigned.nan_bits == 0xFF and encode(-1.0, unsigned) == 0xFF
    assert custom_format(5, 10).name == "e5m10" and custom_format(5, 10).bias == 15  # the default is unchanged


@pytest.mark.parametrize("kwargs, name", [
    ({"bias": 2000}, "bias"), ({"bias": 1.5}, "bias"), ({"specials": "fnu"}, "specials"),
    ({"specials": "fnuz", "signed": False}, "specials"), ({"signed": "yes"}, "signed")])
def test_custom_format_refuses_bad_options_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        custom_format(4, 3, **kwargs)
    with pytest.raises(ValueError, match="specials"):
        custom_format(1, 0, specials="fn")
    with pytest.raises(ValueError, match="specials"):
        custom_format(1, 3, specials="ieee")


# ---------------------------------------------------------------- block scaling: the oracles


def mx_reference(block: np.ndarray, element) -> tuple[float, np.ndarray, np.ndarray]:
    """OCP MX v1.0 section 6.3 for one block: X = 2^(floor(log2(max|v|)) - emax), elements = v / X
    rounded by ml_dtypes after clamping to the element's largest value (X clamped to [2^-127, 2^127],
    NaN beyond, as in the reference implementation)."""
    amax = np.max(np.abs(block))
    if not np.isfinite(amax):
        return math.nan, np.full(block.shape, math.nan), None
    exponent = -127 if amax == 0 else max(math.frexp(amax)[1] - 1 - element.max_exponent, -127)
    if exponent > 127:
        return math.nan, np.full(block.shape, math.nan), None
    scale = math.ldexp(1.0, exponent)
    clipped = np.clip(block / scale, -element.max_value, element.max_value)
    return scale, ml_values(clipped, element) * scale, ml_bits(clipped, element)


def tensors(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    gauss = rng.standard_normal((8, 96))
    outliers = gauss.copy()
    outliers.flat[rng.choice(outliers.size, 5, replace=False)] *= 300
    return [gauss, outliers, gauss * 1e-30, gauss * 1e30, rng.standard_t(2, (4, 100)), gauss * 2.0 ** -130,
            np.zeros((2, 64))]


@pytest.mark.parametrize("recipe", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4"])
def test_mx_recipes_are_the_spec_formula_with_ml_dtypes_rounding(recipe):
    element = RECIPES[recipe].element
    for x in tensors(seed=7):
        q = quantize_recipe(x, recipe)
        assert q.scales.shape == x.shape[:-1] + (-(-x.shape[-1] // 32),)
        for r in range(x.shape[0]):
            for b in range(q.scales.shape[-1]):
                block = x[r, 32 * b: 32 * b + 32]
                scale, dequantized, bits = mx_reference(block, element)
                assert same_floats([q.scales[r, b]], [scale])
                assert q.scale_codes[r, b] == ml_bits([scale], E8M0)[0]
                assert same_floats(q.dequantized[r, 32 * b: 32 * b + 32], dequantized)
                assert np.array_equal(q.codes[r, 32 * b: 32 * b + 32], bits)
        assert same_floats(q.error, q.dequantized - x)
    assert quantize_recipe(np.ones(64), "mxfp4").stats.bits_per_value == 4.25
    assert quantize_recipe(np.ones(64), "mxfp6_e2m3").stats.bits_per_value == 6.25
    assert quantize_recipe(np.ones(64), recipe).stats.bits_per_value == element.total_bits + 0.25


def test_quantize_with_e8m0_is_mx_and_takes_formats_by_name():
    x = tensors(seed=2)[1]
    by_name = quantize(x, "fp4_e2m1", scaling="block", block_size=32, scale_format="e8m0")
    by_object = quantize(x, FP4_E2M1, block_size=32, scale_format=E8M0)
    assert same_floats(by_name.dequantized, quantize_recipe(x, "mxfp4").dequantized)
    assert same_floats(by_name.dequantized, by_object.dequantized)


def test_nvfp4_is_two_level_with_an_e4m3_block_scale():
    for x in tensors(seed=4)[:5]:
        q = quantize_recipe(x, "nvfp4")
        amax = np.max(np.abs(x))
        tensor_scale = float(np.float32(amax / (448 * 6)))
        assert q.tensor_scale == tensor_scale
        for r in range(x.shape[0]):
            for b in range(q.scales.shape[-1]):
                block = x[r, 16 * b: 16 * b + 16]
                raw = np.max(np.abs(block)) / 6 / tensor_scale
                scale = ml_values([raw], FP8_E4M3)[0]
                assert q.scales[r, b] == scale and q.scale_codes[r, b] == ml_bits([raw], FP8_E4M3)[0]
                if scale == 0:
                    assert np.all(q.dequantized[r, 16 * b: 16 * b + 16] == 0)
                    continue
                clipped = np.clip(block / (scale * tensor_scale), -6, 6)
                assert same_floats(q.dequantized[r, 16 * b: 16 * b + 16],
                                   ml_values(clipped, FP4_E2M1) * (scale * tensor_scale))
        assert q.stats.bits_per_value == pytest.approx(4 + (8 * q.scales.size + 32) / x.size)
        if x.shape[-1] % 16 == 0:
            assert q.stats.bits_per_value == pytest.approx(4.5 + 32 / x.size)


def test_fp8_per_tensor_and_deepseek_scales_are_amax_over_448_in_fp32():
    x = tensors(seed=5)[1]
    q = quantize_recipe(x, "fp8_tensor")
    scale = float(np.float32(np.max(np.abs(x)) / 448))
    assert q.scales.shape == (1, 1) and q.scales[0, 0] == scale and q.stats.bits_per_value == 8 + 32 / x.size
    assert same_floats(q.dequantized, ml_values(np.clip(x / scale, -448, 448), FP8_E4M3) * scale)
    activations = quantize_recipe(np.tile(x, (1, 4)), "deepseek_fp8")  # 8 x 384: 1 x 128 tiles
    assert activations.scales.shape == (8, 3) and activations.stats.bits_per_value == 8.25
    weights = quantize_recipe(np.tile(x, (20, 3)), "deepseek_fp8", role="weight")
    assert weights.scales.shape == (2, 3)  # 160 x 288 in 128 x 128 tiles
    tile = np.tile(x, (20, 3))[:128, :128]
    assert weights.scales[0, 0] == float(np.float32(np.max(np.abs(tile)) / 448))


def test_delayed_scaling_takes_the_history_and_saturates_a_grown_tensor():
    x = np.linspace(-10, 10, 64)
    q = quantize_recipe(x, "fp8_tensor", amax_history=[2.0, 5.0, 1.0])
    assert q.amax_used == 5.0 and q.scales.shape == (1,) and q.scales[0] == float(np.float32(5.0 / 448))
    assert q.stats.saturated == np.mean(np.abs(x) / q.scales[0] > 448 + 16)  # beyond half the top spacing
    assert np.max(np.abs(q.dequantized)) == pytest.approx(5.0, rel=1e-6)
    current = quantize_recipe(x, "fp8_tensor", amax_history=[0.0])  # nothing seen yet: current scaling
    assert current.amax_used is None and current.stats.saturated == 0


def test_zero_blocks_nan_inf_and_scales_that_under_or_overflow():
    x = np.ones((2, 64))
    x[0, :32] = 0.0
    x[1, 5] = np.inf
    x[1, 40] = np.nan
    q = quantize_recipe(x, "mxfp8_e4m3")
    assert q.scale_codes[0, 0] == 0 and np.all(q.dequantized[0, :32] == 0) and np.all(q.codes[0, :32] == 0)
    assert q.scale_codes[1, 0] == 0xFF and q.scale_codes[1, 1] == 0xFF and np.all(np.isnan(q.dequantized[1]))
    assert same_floats(q.dequantized[0, 32:], np.ones(32)) and q.stats.nan_blocks == 2
    assert q.stats.nan == pytest.approx(0.5) and q.stats.sqnr_db == math.inf
    per_tensor = quantize_recipe(x, "fp8_tensor")  # 448 / inf: the whole tensor is lost, as torch's amax scaling
    assert np.all(np.isnan(per_tensor.dequantized)) and per_tensor.stats.sqnr_db is None
    delayed = quantize_recipe(x, "fp8_tensor", amax_history=[1.0])  # element by element
    assert delayed.dequantized[1, 5] == 448 * float(np.float32(1 / 448))  # +inf saturates to 448 x scale
    assert np.isnan(delayed.dequantized[1, 40]) and delayed.stats.nan == 1 / 128
    nv = quantize_recipe(x, "nvfp4")  # the tensor scale from the finite values; the NaN block's scale is NaN
    assert np.isnan(nv.scales[1, 0]) and nv.scale_codes[1, 0] == 0x7F
    assert nv.dequantized[1, 16:32] == pytest.approx(np.ones(16), rel=1e-7)
    tiny = quantize_recipe(np.full(32, 1e-42), "mxfp8_e4m3")
    assert tiny.scales[0] == 2.0 ** -127 and tiny.stats.clamped_scales == 1 and tiny.stats.flushed == 1.0
    huge = quantize_recipe(np.full(32, 1e300), "mxfp4")
    assert np.isnan(huge.scales[0]) and huge.stats.nan == 1.0 and huge.stats.nan_blocks == 1
    underflowing = quantize(np.array([1e-45, 1.0]), "fp4_e2m1", scaling="block", block_size=1, scale_format="fp8_e4m3")
    assert underflowing.stats.zero_scales == 1 and underflowing.dequantized[0] == 0  # E4M3 has no 1e-45 / 6


def test_the_summary_numbers():
    x = np.array([1.0, 2.0, 3.0, 100.0, -0.01, 0.0, 5.5, 7.0] * 4)
    q = quantize_recipe(x, "mxfp4")
    v, d = x, q.dequantized
    assert q.stats.sqnr_db == pytest.approx(10 * math.log10(np.sum(v ** 2) / np.sum((d - v) ** 2)))
    nonzero = v != 0
    rel = np.abs(d - v)[nonzero] / np.abs(v)[nonzero]
    assert (q.stats.mean_rel_error, q.stats.max_rel_error) == (pytest.approx(rel.mean()), pytest.approx(rel.max()))
    assert q.stats.flushed == np.mean(d[nonzero] == 0) and q.stats.flushed > 0
    assert q.stats.n == 32 and q.stats.finite == 32
    assert q.stats.saturated == 0 and q.dequantized[3] == 96.0  # 100 / 2^(6 - 2) = 6.25: clamped, but 6 anyway
    big = quantize_recipe([1.0, 127.0] * 16, "mxfp4")  # 127 / 2^(6 - 2) = 7.9: rounding alone would give 8
    assert big.stats.saturated == 0.5 and big.dequantized[1] == 96.0
    exact = quantize_recipe([1.0, 2.0, 4.0], "mxfp8_e4m3")
    assert exact.stats.sqnr_db == math.inf and exact.stats.max_rel_error == 0


@pytest.mark.parametrize("scaling, shape", [("tensor", (1, 1)), ("row", (6, 1)), ("block", (6, 4)), ("tile", (1, 4))])
def test_granularities_and_their_scales(scaling, shape):
    x = np.random.default_rng(1).standard_normal((6, 100))
    q = quantize(x, "fp8_e4m3", scaling=scaling, block_size=32, scale_format="fp32")
    assert q.scales.shape == shape and q.element_scale.shape == x.shape and q.dequantized.shape == x.shape
    assert q.stats.bits_per_value == pytest.approx(8 + 32 * math.prod(shape) / x.size)
    by_column = quantize(x.T, "fp8_e4m3", scaling="row", scale_format="fp32", axis=0)
    assert by_column.scales.shape == (1, 6)
    assert same_floats(by_column.dequantized, quantize(x, "fp8_e4m3", scaling="row", scale_format="fp32").dequantized.T)
    rectangle = quantize(x, "fp8_e4m3", scaling="tile", block_size=(2, 50), scale_format="fp32")
    assert rectangle.scales.shape == (3, 2)


def test_the_result_is_frozen_and_read_only():
    q = quantize_recipe(np.arange(1.0, 33.0), "mxfp4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.scales = None
    for array in (q.values, q.dequantized, q.codes, q.error, q.scales, q.scale_codes, q.element_scale):
        with pytest.raises(ValueError):
            array[0] = 1


@pytest.mark.parametrize("call, name", [
    (lambda: quantize([], "fp4_e2m1"), "values"),
    (lambda: quantize("1, 2", "fp4_e2m1"), "values"),
    (lambda: quantize(["a", "b"], "fp4_e2m1"), "values"),
    (lambda: quantize([1j, 2], "fp4_e2m1"), "values"),
    (lambda: quantize([1.0], "fp5"), "element"),
    (lambda: quantize([1.0], "e8m0"), "element"),
    (lambda: quantize([1.0], "fp4_e2m1", scaling="column"), "scaling"),
    (lambda: quantize([1.0], "fp4_e2m1", block_size=0), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", block_size=-32), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", block_size=1.5), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", block_size=True), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", block_size="32"), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", scaling="tile", block_size=(2, 0)), "block_size"),
    (lambda: quantize([1.0], "fp4_e2m1", scale_format="fp9"), "scale_format"),
    (lambda: quantize([1.0], "fp4_e2m1", axis=1), "axis"),
    (lambda: quantize_recipe([1.0], "mxfp5"), "recipe"),
    (lambda: quantize_recipe([1.0], 3), "recipe"),
    (lambda: quantize_recipe([1.0], "mxfp4", amax_history=[1.0]), "amax_history"),
    (lambda: quantize_recipe([1.0], "fp8_tensor", amax_history=[math.nan]), "amax_history"),
    (lambda: quantize_recipe([1.0], "fp8_tensor", amax_history=[]), "amax_history"),
    (lambda: quantize_recipe([1.0], "deepseek_fp8", role="bias"), "role"),
])
def test_bad_input_is_refused_naming_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_typed_tensors():
    assert F.parse_tensor("1, 2.5e-3 -inf; 4 nan 6").shape == (2, 3)
    assert same_floats(F.parse_tensor(" 1,2 ,3 "), [1, 2, 3])
    for text, reason in (("", "empty"), ("1, two", "not_a_number"), ("1 2; 3", "ragged"), ("1 " * 11, "too_many")):
        with pytest.raises(F.TensorTextError, match="typed") as caught:
            F.parse_tensor(text, name="typed", limit=10)
        assert caught.value.reason == reason
    q = quantize_recipe(F.parse_tensor("1, nan, inf, 3"), "mxfp4")
    assert np.all(np.isnan(q.dequantized))


def test_example_tensors():
    for kind in F.TENSOR_KINDS:
        x = F.example_tensor(kind, 4, 64, std=2.0, outliers=3, outlier_size=50.0, seed=1)
        assert x.shape == (4, 64) and np.all(np.isfinite(x))
    outliers = F.example_tensor("outliers", 4, 64, outliers=3, outlier_size=50.0)
    assert np.count_nonzero(np.abs(outliers) == 50.0) == 3
    activation = F.example_tensor("activation", 16, 64, outliers=2, outlier_size=50.0)
    assert np.count_nonzero(np.abs(activation).mean(axis=0) > 10) == 2
    with pytest.raises(ValueError, match="kind"):
        F.example_tensor("uniform", 2, 2)
    with pytest.raises(ValueError, match="std"):
        F.example_tensor("gaussian", 2, 2, std=0.0)


def test_the_package_is_split_along_its_seams():  # and stays Qt-, torch- and ml_dtypes-free: tests/test_layers.py
    import workbench.compute.floats as package

    assert package.__path__ and {"formats", "codec", "parse", "describe", "ranges", "loss_scaling",
                                 "block_scaling"} <= {m for m in dir(package)}
