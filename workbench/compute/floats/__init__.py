"""Exact models of the floating-point formats used in deep learning.

Everything here is plain Python + numpy (no torch, no Qt) so the GUI panels can
call it freely and the tests can check it against torch and ml_dtypes.

The package, by topic: ``formats`` (the format model and the presets),
``exact`` (inputs held exactly), ``parse`` (typed text), ``codec`` (bits and
values, exact and vectorised), ``describe`` (one value explained, its
neighbours), ``ranges`` (range and every value), ``loss_scaling`` (the
loss-scaling demo) and ``block_scaling`` (a tensor with shared scales: MX,
NVFP4, per-tensor and DeepSeek-V3 FP8).  Every public name is importable from
``workbench.compute.floats`` itself.

Formats
    ``FORMATS`` maps a name (``"fp64"``, ``"fp32"``, ``"tf32"``, ``"fp16"``,
    ``"bf16"``, ``"fp8_e4m3"``, ``"fp8_e5m2"``, ``"fp8_e4m3fnuz"``,
    ``"fp8_e5m2fnuz"``, ``"fp8_e4m3_ieee"``, ``"fp8_e3m4"``, ``"e8m0"``,
    ``"fp6_e2m3"``, ``"fp6_e3m2"``, ``"fp4_e2m1"``) to a frozen
    :class:`FloatFormat` (explicit bias; specials ``"ieee"``, ``"fn"``,
    ``"fnuz"`` or ``"none"``; signed or not).  :func:`custom_format` builds ExMy
    formats (IEEE-style by default, or with another bias, kind of specials or no
    sign bit) and :func:`with_overflow` switches a format's overflow policy (for
    example to show OCP's non-saturating FP8 E4M3 conversion).

Bits
    A format's bit pattern is an ``int`` in ``[0, 2**total_bits)``: sign bit on
    top, then the exponent field, then the mantissa (trailing significand)
    field.  TF32 patterns are 19 bits wide (fp32 bits = tf32 bits << 13).

Rounding
    :func:`encode` and :func:`round_to_format` round to nearest, ties to even,
    computed exactly (``fractions.Fraction``) from the true input.  torch does
    *not* do that when casting float64 tensors to 16/8-bit dtypes: it rounds to
    float32 first and then to the target (double rounding), so a float64 just
    above a tie can land on the other side.  Pass ``via_fp32=True`` to
    reproduce torch bit for bit.  Both modes use the same overflow and NaN
    encodings, which follow what torch 2.13 does (see ``FloatFormat.torch_en``):

    * fp16, bf16, fp8_e5m2, fp32: overflow -> +-inf;
    * fp8_e4m3: torch *saturates* (anything beyond +-448, even +-inf, -> +-448);
      the OCP spec also defines a non-saturating mode (overflow -> NaN), see
      ``with_overflow(FORMATS["fp8_e4m3"], "nan")``;
    * fp4_e2m1, fp6_e2m3, fp6_e3m2: no inf/NaN encodings, so overflow
      saturates to +-max and a NaN input raises ``ValueError``;
    * fp8_e4m3fnuz, fp8_e5m2fnuz: overflow and +-inf -> NaN (0x80), -0 -> +0
      (torch and ml_dtypes alike); e8m0: below 2^-127 -> 2^-127, zero,
      negatives, overflow and inf -> NaN (ml_dtypes; torch drops the sign and
      stores 0 as 2^-127); fp8_e3m4, fp8_e4m3_ieee: overflow -> +-inf
      (ml_dtypes);
    * NaN encodes as the format's canonical quiet NaN; torch keeps the NaN's
      sign except for bfloat16 (always 0x7fc0).

Inputs
    Scalar functions take a float, int, ``Fraction``, ``Decimal`` or a
    :class:`ParsedInput` from :func:`parse_value`.  Parsed decimal text keeps
    its exact value as a ``Fraction`` so rounding errors are measured against
    the number the user typed (``"0.1"`` is 1/10, not the float64 nearest to
    it).  Literals with a decimal exponent outside +-400 (e.g. ``1e99999``) are
    beyond every format here; they are kept as a stand-in of 2**+-1400 (flag
    ``ParsedInput.clamped``), which rounds and produces float errors exactly as
    the true value would.

Block scaling
    :func:`quantize` and :func:`quantize_recipe` (``RECIPES``) store a tensor as
    element codes times shared scales and return a frozen :class:`Quantized`
    (scales, dequantized values, codes, error, summary numbers); see
    ``block_scaling``'s docstring for the rules and their edge cases.

Display
    Results meant for display never contain NaN: undefined numbers are
    ``None`` and a ``kind`` / ``outcome`` string says why.

Loss-scaling demo
    :func:`gradient_samples` draws log-normal magnitudes, :func:`prepare`
    sorts them once, and :func:`scaling_stats` classifies them for any format
    and scale with a handful of ``np.searchsorted`` calls (O(log n)).
    :func:`lognormal_samples` is the fast path for the median/spread sliders:
    it keeps one cached, sorted set of standard-normal draws and maps each
    threshold into that z-space, so changing the median or the spread costs
    no per-sample work at all.
"""

from __future__ import annotations

from .block_scaling import (MAX_TENSOR_VALUES, RECIPES, ROLES, SCALINGS, TENSOR_KINDS, TENSOR_TEXT_ERRORS,
                            QuantStats, Quantized, Recipe, TensorTextError, example_tensor, parse_tensor, quantize,
                            quantize_recipe)
from .codec import decode, decode_array, encode, encode_array, round_to_format
from .describe import (KINDS, OUTCOMES, REASONS, Description, FormulaTerms, Neighbours, describe, describe_bits,
                       neighbours)
from .exact import INPUT_ERRORS, InputError, ParsedInput
from .formats import (BF16, E8M0, FORMATS, FP4_E2M1, FP6_E2M3, FP6_E3M2, FP8_E3M4, FP8_E4M3, FP8_E4M3_IEEE,
                      FP8_E4M3FNUZ, FP8_E5M2, FP8_E5M2FNUZ, FP16, FP32, FP64, TF32, FloatFormat, custom_bias_range,
                      custom_format, get_format, with_overflow)
from .loss_scaling import (LogHistogram, LogNormalSamples, PreparedSamples, ScalingStats, gradient_samples,
                           log_histogram, lognormal_samples, prepare, scaling_stats)
from .parse import parse_value
from .ranges import RangeInfo, range_info, representable_values

__all__ = [
    "INPUT_ERRORS",
    "InputError",
    "FloatFormat",
    "FORMATS",
    "FP64",
    "FP32",
    "TF32",
    "FP16",
    "BF16",
    "FP8_E4M3",
    "FP8_E5M2",
    "FP4_E2M1",
    "FP8_E4M3FNUZ",
    "FP8_E5M2FNUZ",
    "FP8_E4M3_IEEE",
    "FP8_E3M4",
    "E8M0",
    "FP6_E2M3",
    "FP6_E3M2",
    "get_format",
    "custom_format",
    "custom_bias_range",
    "with_overflow",
    "ParsedInput",
    "parse_value",
    "encode",
    "decode",
    "decode_array",
    "encode_array",
    "round_to_format",
    "FormulaTerms",
    "Description",
    "describe",
    "describe_bits",
    "Neighbours",
    "neighbours",
    "RangeInfo",
    "range_info",
    "representable_values",
    "gradient_samples",
    "PreparedSamples",
    "prepare",
    "LogNormalSamples",
    "lognormal_samples",
    "ScalingStats",
    "scaling_stats",
    "LogHistogram",
    "log_histogram",
    "KINDS",
    "OUTCOMES",
    "REASONS",
    "SCALINGS",
    "QuantStats",
    "Quantized",
    "quantize",
    "Recipe",
    "RECIPES",
    "quantize_recipe",
    "parse_tensor",
    "TensorTextError",
    "TENSOR_TEXT_ERRORS",
    "ROLES",
    "TENSOR_KINDS",
    "example_tensor",
    "MAX_TENSOR_VALUES",
]
