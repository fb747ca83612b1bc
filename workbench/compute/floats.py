"""Exact models of the floating-point formats used in deep learning.

Everything here is plain Python + numpy (no torch, no Qt) so the GUI panels can
call it freely and the tests can check it against torch.

Formats
    ``FORMATS`` maps a name (``"fp64"``, ``"fp32"``, ``"tf32"``, ``"fp16"``,
    ``"bf16"``, ``"fp8_e4m3"``, ``"fp8_e5m2"``, ``"fp4_e2m1"``) to a frozen
    :class:`FloatFormat`.  :func:`custom_format` builds IEEE-style ExMy formats
    and :func:`with_overflow` switches a format's overflow policy (for example
    to show OCP's non-saturating FP8 E4M3 conversion).

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
    * fp4_e2m1: no inf/NaN encodings, so overflow saturates to +-6 and a NaN
      input raises ``ValueError``;
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

import math
import numbers
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping, Union

import numpy as np

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
    "get_format",
    "custom_format",
    "with_overflow",
    "ParsedInput",
    "parse_value",
    "encode",
    "decode",
    "decode_array",
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
]

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
    }
)

_SPECIALS = ("ieee", "fn", "none")
_OVERFLOWS = ("inf", "nan", "saturate")
_CLAMP_EXPONENT10 = 400
_CLAMP_POWER2 = 1400
_MAX_INPUT_CHARS = 4000


# --------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format (sign, exponent field, mantissa field).

    Values: normal ``(-1)^s * 2^(e - bias) * 1.m``, subnormal (exponent field
    0) ``(-1)^s * 2^(1 - bias) * 0.m``.  ``specials`` says which patterns are
    not numbers:

    * ``"ieee"``: exponent all ones is inf (mantissa 0) or NaN (mantissa != 0);
    * ``"fn"``: (OCP FP8 E4M3) no inf; only exponent and mantissa all ones is NaN;
    * ``"none"``: every pattern is a finite number (OCP FP4 E2M1).

    ``overflow`` is what :func:`encode` does with values beyond ``max_value``
    (and with infinite inputs): ``"inf"``, ``"nan"`` or ``"saturate"`` (clamp to
    +-max).  ``standard_*`` describe the standard's rules, ``torch_*`` what
    torch 2.13 actually does when casting; ``usage_*`` where the format is
    used.  All magnitudes are float64 (every value of every format here is
    exactly representable in float64).
    """

    name: str
    label: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    total_bits: int
    specials: str
    max_value: float
    smallest_normal: float
    smallest_subnormal: float
    epsilon: float
    has_inf: bool
    has_nan: bool
    nan_encoding: str
    nan_bits: int | None
    nan_keeps_sign: bool
    overflow: str
    standard_en: str
    standard_zh: str
    torch_en: str
    torch_zh: str
    usage_en: str
    usage_zh: str
    torch_dtype: str | None

    @property
    def precision(self) -> int:
        """Significand bits including the implicit leading bit."""
        return self.mantissa_bits + 1

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest normal (also of subnormals): 1 - bias."""
        return 1 - self.bias

    @property
    def max_exponent(self) -> int:
        """Unbiased exponent of the largest finite value."""
        return self._top_exponent_field - self.bias

    @property
    def _top_exponent_field(self) -> int:
        all_ones = (1 << self.exponent_bits) - 1
        return all_ones - 1 if self.specials == "ieee" else all_ones

    @property
    def _top_mantissa(self) -> int:
        all_ones = (1 << self.mantissa_bits) - 1
        return all_ones - 1 if self.specials == "fn" else all_ones

    @property
    def max_finite_code(self) -> int:
        """Bit pattern (without sign) of ``max_value``; patterns 0..this are finite."""
        return (self._top_exponent_field << self.mantissa_bits) | self._top_mantissa


def _format_limits(exponent_bits: int, mantissa_bits: int, specials: str) -> dict:
    bias = (1 << (exponent_bits - 1)) - 1
    all_ones = (1 << exponent_bits) - 1
    top_field = all_ones - 1 if specials == "ieee" else all_ones
    top_mantissa = (1 << mantissa_bits) - (2 if specials == "fn" else 1)
    min_exponent = 1 - bias
    return dict(
        bias=bias,
        total_bits=1 + exponent_bits + mantissa_bits,
        max_value=math.ldexp((1 << mantissa_bits) + top_mantissa, top_field - bias - mantissa_bits),
        smallest_normal=math.ldexp(1.0, min_exponent),
        smallest_subnormal=math.ldexp(1.0, min_exponent - mantissa_bits),
        epsilon=math.ldexp(1.0, -mantissa_bits),
    )


def _make_format(name: str, label: str, exponent_bits: int, mantissa_bits: int, *, specials: str,
                 overflow: str, nan_bits: int | None, nan_keeps_sign: bool, nan_encoding: str,
                 standard: tuple[str, str], torch: tuple[str, str], usage: tuple[str, str],
                 torch_dtype: str | None) -> FloatFormat:
    return FloatFormat(
        name=name,
        label=label,
        exponent_bits=exponent_bits,
        mantissa_bits=mantissa_bits,
        specials=specials,
        has_inf=specials == "ieee",
        has_nan=nan_bits is not None,
        nan_encoding=nan_encoding,
        nan_bits=nan_bits,
        nan_keeps_sign=nan_keeps_sign,
        overflow=overflow,
        standard_en=standard[0],
        standard_zh=standard[1],
        torch_en=torch[0],
        torch_zh=torch[1],
        usage_en=usage[0],
        usage_zh=usage[1],
        torch_dtype=torch_dtype,
        **_format_limits(exponent_bits, mantissa_bits, specials),
    )


def _ieee_text(name: str, max_text: str) -> tuple[str, str]:
    return (
        f"{name}: IEEE-style; exponent all ones is +-inf (mantissa 0) or NaN (mantissa != 0); "
        f"overflow (beyond {max_text} by half an ULP or more) rounds to +-inf.",
        f"{name}：IEEE 风格；指数全 1 表示 ±inf（尾数为 0）或 NaN（尾数非 0）；"
        f"超过 {max_text} 半个 ULP 及以上时上溢为 ±inf。",
    )


_VIA_FP32_EN = ("torch casts float64 to this dtype through float32 (double rounding: "
                "use via_fp32=True to match bit for bit)")
_VIA_FP32_ZH = "torch 将 float64 转为该类型时先舍入到 float32 再舍入（双重舍入；via_fp32=True 可逐位复现）"

FP64 = _make_format(
    "fp64", "FP64 (double)", 11, 52, specials="ieee", overflow="inf",
    nan_bits=0x7FF8000000000000, nan_keeps_sign=True,
    nan_encoding="S.11111111111.(mantissa != 0); quiet NaN 0x7ff8000000000000",
    standard=_ieee_text("IEEE 754 binary64", "1.797e308"),
    torch=("torch.float64 is this format; Python floats are float64.",
           "torch.float64 即此格式；Python 浮点数就是 float64。"),
    usage=("scientific computing and reference results; rarely used for training",
           "科学计算与参考结果；训练中很少使用"),
    torch_dtype="float64",
)

FP32 = _make_format(
    "fp32", "FP32 (single)", 8, 23, specials="ieee", overflow="inf",
    nan_bits=0x7FC00000, nan_keeps_sign=True,
    nan_encoding="S.11111111.(mantissa != 0); quiet NaN 0x7fc00000",
    standard=_ieee_text("IEEE 754 binary32", "3.403e38"),
    torch=("torch float64 -> float32 rounds to nearest even; overflow -> +-inf; "
           "NaN keeps its sign (0x7fc00000 / 0xffc00000).",
           "torch float64 → float32 为就近舍入（平局取偶）；上溢为 ±inf；NaN 保留符号（0x7fc00000 / 0xffc00000）。"),
    usage=("default training precision; master weights and optimizer state in mixed precision",
           "默认训练精度；混合精度中的主权重和优化器状态"),
    torch_dtype="float32",
)

TF32 = _make_format(
    "tf32", "TF32 (TensorFloat-32)", 8, 10, specials="ieee", overflow="inf",
    nan_bits=0x3FE00, nan_keeps_sign=True,
    nan_encoding="S.11111111.(mantissa != 0); quiet NaN 0x3fe00 (fp32 0x7fc00000)",
    standard=("NVIDIA TensorFloat-32 (Ampere and later): fp32's sign and 8-bit exponent with only "
              "10 mantissa bits (the low 13 fp32 mantissa bits rounded away); overflow -> +-inf.",
              "NVIDIA TensorFloat-32（Ampere 及之后）：fp32 的符号位和 8 位指数，只保留 10 位尾数"
              "（fp32 尾数低 13 位被舍入）；上溢为 ±inf。"),
    torch=("torch has no tf32 dtype: with torch.backends.cuda.matmul.allow_tf32 = True, tensor cores "
           "round fp32 matmul inputs to tf32 internally. Bits here are the 19-bit pattern "
           "(fp32 bits = tf32 bits << 13).",
           "torch 没有 tf32 类型：设置 torch.backends.cuda.matmul.allow_tf32 = True 时，张量核心在内部把 "
           "fp32 矩阵乘法输入舍入为 tf32。这里的位模式为 19 位（fp32 位 = tf32 位 << 13）。"),
    usage=("fp32 matmuls/convolutions on tensor cores (A100, H100)",
           "张量核心上的 fp32 矩阵乘法/卷积（A100、H100）"),
    torch_dtype=None,
)

FP16 = _make_format(
    "fp16", "FP16 (half)", 5, 10, specials="ieee", overflow="inf",
    nan_bits=0x7E00, nan_keeps_sign=True,
    nan_encoding="S.11111.(mantissa != 0); quiet NaN 0x7e00",
    standard=_ieee_text("IEEE 754 binary16", "65504"),
    torch=(f"overflow -> +-inf; NaN keeps its sign (0x7e00 / 0xfe00); {_VIA_FP32_EN}.",
           f"上溢为 ±inf；NaN 保留符号（0x7e00 / 0xfe00）；{_VIA_FP32_ZH}。"),
    usage=("mixed-precision training with loss scaling; inference",
           "配合损失缩放的混合精度训练；推理"),
    torch_dtype="float16",
)

BF16 = _make_format(
    "bf16", "BF16 (bfloat16)", 8, 7, specials="ieee", overflow="inf",
    nan_bits=0x7FC0, nan_keeps_sign=False,
    nan_encoding="S.11111111.(mantissa != 0); quiet NaN 0x7fc0",
    standard=_ieee_text("bfloat16 (Google Brain)", "3.390e38"),
    torch=(f"overflow -> +-inf; every NaN becomes 0x7fc0 (the sign is dropped); {_VIA_FP32_EN}.",
           f"上溢为 ±inf；所有 NaN 都变为 0x7fc0（丢弃符号）；{_VIA_FP32_ZH}。"),
    usage=("mixed-precision training without loss scaling (same range as fp32)",
           "无需损失缩放的混合精度训练（范围与 fp32 相同）"),
    torch_dtype="bfloat16",
)

FP8_E4M3 = _make_format(
    "fp8_e4m3", "FP8 E4M3", 4, 3, specials="fn", overflow="saturate",
    nan_bits=0x7F, nan_keeps_sign=True,
    nan_encoding="S.1111.111 only (0x7f / 0xff); no infinities",
    standard=("OCP FP8 E4M3 ('fn'): no infinities, only S.1111.111 is NaN, max +-448. OCP defines a "
              "saturating conversion (out-of-range -> +-448) and a non-saturating one (overflow -> NaN).",
              "OCP FP8 E4M3（“fn”）：没有无穷大，只有 S.1111.111 是 NaN，最大 ±448。OCP 定义了饱和转换"
              "（超出范围 → ±448）和非饱和转换（上溢 → NaN）。"),
    torch=("torch 2.13 float8_e4m3fn casts saturate: anything beyond +-448, including +-inf, becomes "
           f"+-448 (0x7e / 0xfe); NaN -> 0x7f / 0xff (sign kept); {_VIA_FP32_EN}.",
           "torch 2.13 的 float8_e4m3fn 转换是饱和的：超出 ±448 的值（包括 ±inf）都变为 ±448"
           f"（0x7e / 0xfe）；NaN → 0x7f / 0xff（保留符号）；{_VIA_FP32_ZH}。"),
    usage=("forward activations/weights in FP8 training (H100)",
           "FP8 训练中的前向激活和权重（H100）"),
    torch_dtype="float8_e4m3fn",
)

FP8_E5M2 = _make_format(
    "fp8_e5m2", "FP8 E5M2", 5, 2, specials="ieee", overflow="inf",
    nan_bits=0x7F, nan_keeps_sign=True,
    nan_encoding="S.11111.{01,10,11}; torch writes 0x7f / 0xff",
    standard=("OCP FP8 E5M2: IEEE-style with +-inf (S.11111.00) and NaN (S.11111.{01,10,11}), max "
              "+-57344. Non-saturating conversion: overflow (|x| >= 61440) -> +-inf; the saturating "
              "mode clamps to +-57344.",
              "OCP FP8 E5M2：IEEE 风格，有 ±inf（S.11111.00）和 NaN（S.11111.{01,10,11}），最大 ±57344。"
              "非饱和转换：上溢（|x| ≥ 61440）→ ±inf；饱和模式钳位到 ±57344。"),
    torch=(f"torch float8_e5m2 casts do not saturate: overflow -> +-inf; NaN -> 0x7f / 0xff; {_VIA_FP32_EN}.",
           f"torch 的 float8_e5m2 转换不饱和：上溢 → ±inf；NaN → 0x7f / 0xff；{_VIA_FP32_ZH}。"),
    usage=("gradients in FP8 training (more range, less precision)",
           "FP8 训练中的梯度（范围更大、精度更低）"),
    torch_dtype="float8_e5m2",
)

FP4_E2M1 = _make_format(
    "fp4_e2m1", "FP4 E2M1", 2, 1, specials="none", overflow="saturate",
    nan_bits=None, nan_keeps_sign=False,
    nan_encoding="none: every pattern is a number (MX keeps NaN in the shared block scale)",
    standard=("OCP MX FP4 E2M1: no inf or NaN; values +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}. Out-of-range "
              "values can only be clamped to +-6 (saturation); a NaN input has no encoding.",
              "OCP MX FP4 E2M1：没有 inf 和 NaN；取值 ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}。超出范围的值只能钳位到 ±6"
              "（饱和）；NaN 输入无法编码。"),
    torch=("torch 2.13 has the float4_e2m1fn_x2 dtype (two values per byte) but cannot cast to or from "
           "it ('copy_kernel' not implemented); values here follow the closed-form rules.",
           "torch 2.13 有 float4_e2m1fn_x2 类型（每字节两个值），但不能与之相互转换"
           "（'copy_kernel' 未实现）；这里按闭式规则计算。"),
    usage=("block-scaled (MX) weights/activations for inference (MXFP4/NVFP4, Blackwell)",
           "块缩放（MX）推理中的权重和激活（MXFP4/NVFP4，Blackwell）"),
    torch_dtype="float4_e2m1fn_x2",
)

#: Preset formats by name, widest first.
FORMATS: Mapping[str, FloatFormat] = MappingProxyType(
    {f.name: f for f in (FP64, FP32, TF32, FP16, BF16, FP8_E4M3, FP8_E5M2, FP4_E2M1)}
)


def get_format(name: str) -> FloatFormat:
    """Return the preset format called ``name``; ValueError lists the valid names."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; expected one of {', '.join(FORMATS)}") from None


def _check_int_range(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def custom_format(exponent_bits: int, mantissa_bits: int) -> FloatFormat:
    """Build an IEEE-style ``E{exponent_bits}M{mantissa_bits}`` format.

    ``exponent_bits`` in 1..11, ``mantissa_bits`` in 0..52 (ValueError naming
    the parameter otherwise); bias = 2^(E-1) - 1, round-to-nearest-even,
    overflow -> +-inf, NaN = exponent all ones with mantissa MSB set.

    Two corner cases, chosen so every format still has a normal range:

    * ``exponent_bits == 1``: strict IEEE would spend the only non-zero
      exponent value on inf/NaN and leave no normal numbers, so (like OCP
      FP4/FP6) the all-ones exponent is an ordinary normal binade: the format
      has no inf/NaN, overflow saturates to +-max and NaN inputs raise.
    * ``mantissa_bits == 0``: the all-ones exponent with mantissa 0 is +-inf
      and there is no pattern left for NaN (``has_nan`` False: NaN inputs
      raise); there are no subnormals (``smallest_subnormal ==
      smallest_normal``).
    """
    e = _check_int_range("exponent_bits", exponent_bits, 1, 11)
    m = _check_int_range("mantissa_bits", mantissa_bits, 0, 52)
    specials = "none" if e == 1 else "ieee"
    has_nan = specials == "ieee" and m > 0
    nan_bits = ((((1 << e) - 1) << m) | (1 << (m - 1))) if has_nan else None
    if specials == "none":
        nan_text = "none: exponent 1 bit, the all-ones exponent is a normal binade"
        overflow, std_en, std_zh = "saturate", (
            f"E{e}M{m}: 1 exponent bit, so the all-ones exponent holds normal numbers (no inf/NaN); "
            "overflow saturates to +-max."), (
            f"E{e}M{m}：只有 1 位指数，全 1 指数用于正规数（无 inf/NaN）；上溢饱和到 ±最大值。")
    else:
        nan_text = ("S.1...1.(mantissa != 0)" if has_nan
                    else "none: with 0 mantissa bits the all-ones exponent is only +-inf")
        overflow = "inf"
        std_en, std_zh = _ieee_text(f"E{e}M{m} (IEEE-style)", "max")
    return _make_format(
        f"e{e}m{m}", f"E{e}M{m} (custom)", e, m, specials=specials, overflow=overflow,
        nan_bits=nan_bits, nan_keeps_sign=has_nan, nan_encoding=nan_text,
        standard=(std_en, std_zh),
        torch=("no torch dtype; computed exactly here.", "没有对应的 torch 类型；此处精确计算。"),
        usage=("custom format for experiments", "用于实验的自定义格式"),
        torch_dtype=None,
    )


def with_overflow(fmt: FloatFormat, overflow: str) -> FloatFormat:
    """Return ``fmt`` with another overflow policy (``"inf"``, ``"nan"``, ``"saturate"``).

    E.g. ``with_overflow(FORMATS["fp8_e4m3"], "nan")`` is OCP's non-saturating
    E4M3 conversion.  ValueError if the format cannot encode the result.
    """
    if overflow not in _OVERFLOWS:
        raise ValueError(f"overflow must be one of {_OVERFLOWS}, got {overflow!r}")
    if overflow == "inf" and not fmt.has_inf:
        raise ValueError(f"{fmt.name} has no infinity, so overflow cannot go to inf")
    if overflow == "nan" and not fmt.has_nan:
        raise ValueError(f"{fmt.name} has no NaN, so overflow cannot go to NaN")
    return replace(fmt, overflow=overflow, label=f"{fmt.label} (overflow -> {overflow})")


def _narrower_than_fp32(fmt: FloatFormat) -> bool:
    """True if every value of ``fmt`` is an fp32 value (so torch rounds through fp32)."""
    return fmt.exponent_bits <= 8 and fmt.mantissa_bits < 23


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
    "no_digits": "no {base} digits after {prefix!r} in {text!r}",
    "bad_digits": "invalid {base} digit(s) {digits!r} in {text!r}",
    "too_wide": "{base} pattern {text!r} is wider than {format}'s {bits} bits",
    "not_a_number": "not a number: {text!r}; {help}",
}

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
    """Sign-less bit pattern of the RNE rounding of ``magnitude`` (>= 0), or None on overflow."""
    if magnitude == 0:
        return 0
    significand, exponent = _round_significand(magnitude, fmt)
    m = fmt.mantissa_bits
    if significand < (1 << m):  # subnormal (or rounded to zero)
        return significand
    exponent_field = exponent + m + fmt.bias
    code = (exponent_field << m) | (significand - (1 << m))
    return None if code > fmt.max_finite_code else code


def _overflow_bits(negative: bool, fmt: FloatFormat) -> int:
    sign = (1 << (fmt.total_bits - 1)) if negative else 0
    if fmt.overflow == "inf":
        return sign | (((1 << fmt.exponent_bits) - 1) << fmt.mantissa_bits)
    if fmt.overflow == "nan":
        return _nan_pattern(negative, fmt)
    return sign | fmt.max_finite_code


def _nan_pattern(negative: bool, fmt: FloatFormat) -> int:
    if fmt.nan_bits is None:
        raise InputError("no_nan", format=fmt.name)
    keep_sign = negative and fmt.nan_keeps_sign
    return fmt.nan_bits | ((1 << (fmt.total_bits - 1)) if keep_sign else 0)


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
    if x.kind == "inf":
        return _overflow_bits(x.negative, fmt)
    code = _magnitude_code(x.magnitude, fmt)
    if code is None:
        return _overflow_bits(x.negative, fmt)
    return code | ((1 << (fmt.total_bits - 1)) if x.negative else 0)


def encode(value: Scalar, fmt: FloatFormat, *, via_fp32: bool = False) -> int:
    """Bit pattern (int in ``[0, 2**fmt.total_bits)``) of ``value`` rounded into ``fmt``.

    Round to nearest, ties to even, from the exact input; subnormals; overflow
    and infinite inputs follow ``fmt.overflow``; NaN gives ``fmt``'s canonical
    NaN (ValueError if it has none).  ``via_fp32=True`` rounds to float32
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


def _value_kind(exponent_field: int, mantissa_field: int, fmt: FloatFormat) -> str:
    all_ones = (1 << fmt.exponent_bits) - 1
    if fmt.specials == "ieee" and exponent_field == all_ones:
        return "inf" if mantissa_field == 0 else "nan"
    if fmt.specials == "fn" and exponent_field == all_ones and mantissa_field == (1 << fmt.mantissa_bits) - 1:
        return "nan"
    if exponent_field == 0:
        return "zero" if mantissa_field == 0 else "subnormal"
    return "normal"


def _significand_exponent(exponent_field: int, mantissa_field: int, fmt: FloatFormat) -> tuple[int, int]:
    """Finite value of the fields as ``significand * 2**exponent`` (integers)."""
    m = fmt.mantissa_bits
    if exponent_field == 0:
        return mantissa_field, fmt.min_exponent - m
    return (1 << m) | mantissa_field, exponent_field - fmt.bias - m


def _decode_exact(bits: int, fmt: FloatFormat) -> _Decoded:
    m = fmt.mantissa_bits
    negative = bool(bits >> (fmt.total_bits - 1))
    exponent_field = (bits >> m) & ((1 << fmt.exponent_bits) - 1)
    mantissa_field = bits & ((1 << m) - 1)
    value_kind = _value_kind(exponent_field, mantissa_field, fmt)
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
    m = fmt.mantissa_bits
    sign = -1.0 if bits >> (fmt.total_bits - 1) else 1.0
    exponent_field = (bits >> m) & ((1 << fmt.exponent_bits) - 1)
    mantissa_field = bits & ((1 << m) - 1)
    kind = _value_kind(exponent_field, mantissa_field, fmt)
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
    codes = codes.astype(np.uint64)
    if codes.size and int(codes.max()) >> fmt.total_bits:
        raise ValueError(f"bit patterns out of range for {fmt.name} ({fmt.total_bits} bits)")
    if fmt.exponent_bits == 11 and fmt.mantissa_bits == 52 and fmt.specials == "ieee":
        return codes.view(np.float64).copy()
    m = fmt.mantissa_bits
    negative = (codes >> np.uint64(fmt.total_bits - 1)).astype(bool)
    exponent_field = ((codes >> np.uint64(m)) & np.uint64((1 << fmt.exponent_bits) - 1)).astype(np.int64)
    mantissa_field = (codes & np.uint64((1 << m) - 1)).astype(np.int64)
    is_subnormal = exponent_field == 0
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
    return np.where(negative, -values, values)


def round_to_format(values: np.ndarray, fmt: FloatFormat, *, via_fp32: bool = False) -> np.ndarray:
    """Vectorised ``decode(encode(x, fmt))``: float64 array (any shape) in, float64 array out.

    Round to nearest even, with subnormals, signed zeros and ``fmt.overflow``
    for values beyond ``max_value`` and infinities.  NaN stays NaN (even for
    formats without NaN, where :func:`encode` would raise).  ``via_fp32`` as
    in :func:`encode`.
    """
    x = np.array(values, dtype=np.float64)
    if via_fp32 and _narrower_than_fp32(fmt):
        with np.errstate(over="ignore"):
            x = x.astype(np.float32).astype(np.float64)
    if fmt.exponent_bits == 11 and fmt.mantissa_bits == 52 and fmt.specials == "ieee":
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
    rounded[np.isnan(magnitude)] = np.nan
    return np.copysign(rounded, x)


def _overflow_magnitude(fmt: FloatFormat) -> float:
    return {"inf": math.inf, "nan": math.nan, "saturate": fmt.max_value}[fmt.overflow]


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
        text=f"(-1)^{sign_bit} × 2^({field_text}) × {significand_text}",
    )


def _step_value(code: int, negative: bool, fmt: FloatFormat) -> float:
    return decode(code | ((1 << (fmt.total_bits - 1)) if negative else 0), fmt)


def _adjacent(decoded: _Decoded, bits: int, fmt: FloatFormat) -> tuple[float | None, float | None]:
    """(previous, next) representable values around a decoded pattern, in numeric order."""
    if decoded.value_kind == "nan":
        return None, None
    top = fmt.max_finite_code
    if decoded.value_kind == "inf":
        maximum = _step_value(top, decoded.negative, fmt)
        return (None, maximum) if decoded.negative else (maximum, None)
    code = bits & ((1 << (fmt.total_bits - 1)) - 1)
    away = _step_value(code + 1, decoded.negative, fmt) if code < top else None
    if code == 0:
        toward = _step_value(1, not decoded.negative, fmt)
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
    if stored.value_kind == "nan":
        return "overflow_nan"
    if stored.value_kind == "inf":
        return "exact" if x.kind == "inf" else "overflow_inf"
    if x.kind == "inf" or _magnitude_code(x.magnitude, fmt) is None:
        return "saturated"
    if stored.magnitude == x.magnitude:
        return "exact"
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
    exact; ``upper``/``lower`` None beyond +-max).  ``midpoint`` is their
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

    Exact arithmetic (no float32 detour).  ValueError for inf/NaN inputs.
    """
    x = _to_exact(value)
    if x.kind != "finite":
        raise ValueError(f"neighbours need a finite value, got {x.kind}")
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
                          ) -> tuple[Fraction, Fraction | None, str, bool]:
    """(lower, upper, reason, tie) for a non-negative magnitude; reason in magnitude terms."""
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
    if upper is None:
        tie = _is_tie(magnitude, lower, fmt)
        return lower, None, "tie_to_even" if tie else "nearer_lower", tie
    twice = 2 * magnitude
    if twice == lower + upper:
        return lower, upper, "tie_to_even", True
    return lower, upper, "nearer_lower" if twice < lower + upper else "nearer_upper", False


def _is_tie(magnitude: Fraction, maximum: Fraction, fmt: FloatFormat) -> bool:
    """Whether ``magnitude`` is exactly half a top-binade quantum above ``maximum``."""
    quantum = Fraction(2) ** (fmt.max_exponent - fmt.mantissa_bits)
    return magnitude == maximum + quantum / 2


# --------------------------------------------------------------------------
# Range and value sets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeInfo:
    """Range summary of a format; ``log2_*`` are base-2 logs, ``decades_*`` base-10 spans.

    ``decades_total = log10(max / smallest_subnormal)``, ``decades_normal =
    log10(max / smallest_normal)``; ``binades_normal`` counts normal exponents
    and ``values_per_binade = 2**mantissa_bits``.
    """

    format_name: str
    smallest_subnormal: float
    smallest_normal: float
    max_value: float
    epsilon: float
    log2_smallest_subnormal: float
    log2_smallest_normal: float
    log2_max: float
    log2_epsilon: float
    decades_total: float
    decades_normal: float
    binades_normal: int
    values_per_binade: int


def range_info(fmt: FloatFormat) -> RangeInfo:
    """Smallest subnormal/normal, max, epsilon, their log2 and the dynamic range in decades."""
    log10_max = math.log10(fmt.max_value)
    return RangeInfo(
        format_name=fmt.name,
        smallest_subnormal=fmt.smallest_subnormal,
        smallest_normal=fmt.smallest_normal,
        max_value=fmt.max_value,
        epsilon=fmt.epsilon,
        log2_smallest_subnormal=float(fmt.min_exponent - fmt.mantissa_bits),
        log2_smallest_normal=float(fmt.min_exponent),
        log2_max=math.log2(fmt.max_value),
        log2_epsilon=float(-fmt.mantissa_bits),
        decades_total=log10_max - math.log10(fmt.smallest_subnormal),
        decades_normal=log10_max - math.log10(fmt.smallest_normal),
        binades_normal=fmt.max_exponent - fmt.min_exponent + 1,
        values_per_binade=1 << fmt.mantissa_bits,
    )


def representable_values(fmt: FloatFormat) -> np.ndarray:
    """Sorted float64 array of every distinct finite value (one zero), shape ``(k,)``.

    Only for formats of at most 16 bits (ValueError otherwise).
    """
    if fmt.total_bits > 16:
        raise ValueError(f"{fmt.name} has {fmt.total_bits} bits; representable_values needs <= 16")
    values = decode_array(np.arange(1 << fmt.total_bits, dtype=np.int64), fmt)
    values = np.unique(values[np.isfinite(values)])
    values[values == 0] = 0.0  # unique keeps whichever zero came first; make it +0
    return values


# --------------------------------------------------------------------------
# Loss-scaling demo
# --------------------------------------------------------------------------


def gradient_samples(median: float, spread_decades: float, n: int = 1_000_000, seed: int = 0) -> np.ndarray:
    """Log-normal gradient magnitudes: ``log10|g| ~ Normal(log10(median), spread_decades)``.

    Returns a float64 array of shape ``(n,)``, all > 0 unless a draw is below
    float64's range (then 0.0) or above it (then inf).  ``seed`` feeds
    ``np.random.default_rng``.  :func:`lognormal_samples` describes the same
    draws (``Generator.normal(loc, scale)`` is ``loc + scale *
    standard_normal()``) without materialising them.
    """
    if not median > 0 or not math.isfinite(median):
        raise ValueError(f"median must be a positive finite number, got {median!r}")
    if not spread_decades >= 0 or not math.isfinite(spread_decades):
        raise ValueError(f"spread_decades must be >= 0, got {spread_decades!r}")
    n = _check_int_range("n", n, 0, 1 << 40)
    log10_values = np.random.default_rng(seed).normal(math.log10(median), spread_decades, n)
    with np.errstate(over="ignore", under="ignore"):
        return np.power(10.0, log10_values)


@dataclass(frozen=True, eq=False)
class PreparedSamples:
    """Samples sorted once for fast classification: ``sorted_magnitudes`` (read-only float64, shape ``(n,)``,
    |samples| ascending, NaNs removed and counted in ``nan_count``)."""

    sorted_magnitudes: np.ndarray
    nan_count: int

    @property
    def n(self) -> int:
        """Number of non-NaN samples."""
        return int(self.sorted_magnitudes.size)


def prepare(samples: np.ndarray) -> PreparedSamples:
    """Sort |samples| (any shape, flattened) once so :func:`scaling_stats` is O(log n) per format."""
    magnitudes = np.abs(np.asarray(samples, dtype=np.float64).ravel())
    nan_mask = np.isnan(magnitudes)
    nan_count = int(nan_mask.sum())
    if nan_count:
        magnitudes = magnitudes[~nan_mask]
    magnitudes.sort()
    magnitudes.setflags(write=False)
    return PreparedSamples(magnitudes, nan_count)


@dataclass(frozen=True, eq=False)
class LogNormalSamples:
    """The samples of :func:`gradient_samples` without the samples: build with :func:`lognormal_samples`.

    ``sorted_z``: the standard-normal draws ``np.random.default_rng(seed).standard_normal(n)``
    sorted ascending (read-only float64, shape ``(n,)``, shared between instances with the
    same ``(n, seed)``).  Sample ``i`` is ``g = 10 ** (log10_median + spread_decades * z)``
    stored as a float64, which is bit for bit what :func:`gradient_samples` returns (sorted)
    for ``spread_decades > 0``: draws below float64's range are 0.0 (``zeros`` of them) and
    draws above it inf (``infinities``), exactly as there.

    With ``spread_decades == 0`` every sample is ``median`` itself (``gradient_samples``
    returns ``10 ** log10(median)``, which can differ from ``median`` by one rounding).

    :func:`scaling_stats` and :func:`log_histogram` answer in O(log n) per threshold by
    mapping the threshold ``t`` to ``z = (log10(t) - log10_median) / spread_decades`` and
    binary-searching ``sorted_z``.  Counts can differ from the float path
    (``prepare(gradient_samples(...))``) only for samples within float rounding of a
    threshold (the float path rounds ``10 ** x`` once more).  The one place that rounding is
    coarse is float64's own subnormal range (|g| < 2.2e-308, reachable only with extreme
    medians and spreads): there gradient_samples keeps few significant bits, while the
    z-space answer uses the exact draw and is the more accurate of the two.
    """

    median: float
    spread_decades: float
    seed: int
    sorted_z: np.ndarray
    log10_median: float = field(init=False)
    zeros: int = field(init=False)
    infinities: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "log10_median", math.log10(self.median))
        zero_max, _, overflow_at, overflow_inclusive = _class_thresholds(FP64)
        object.__setattr__(self, "zeros", 0)
        object.__setattr__(self, "infinities", 0)
        zeros = self._count_below(zero_max, 0, inclusive=True)
        finite = self._count_below(overflow_at, 0, inclusive=not overflow_inclusive)
        object.__setattr__(self, "zeros", zeros)
        object.__setattr__(self, "infinities", self.n - finite)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.sorted_z.size)

    @property
    def nan_count(self) -> int:
        """Always 0 (for symmetry with :class:`PreparedSamples`)."""
        return 0

    def _count_below(self, threshold: Fraction, scale_exp: int, *, inclusive: bool) -> int:
        """Samples with ``g * 2**scale_exp < threshold`` (``<=`` if ``inclusive``); threshold > 0."""
        n = self.n
        if self.spread_decades == 0:
            scaled = Fraction(self.median) * Fraction(2) ** scale_exp
            return n if scaled < threshold or (inclusive and scaled == threshold) else 0
        log10_threshold = (_log2_fraction(threshold) - scale_exp) * _LOG10_2
        z = (log10_threshold - self.log10_median) / self.spread_decades
        count = int(np.searchsorted(self.sorted_z, z, side="right" if inclusive else "left"))
        return min(max(count, self.zeros), n - self.infinities)


_LOG10_2 = math.log10(2.0)


def _log2_fraction(value: Fraction) -> float:
    """log2 of a positive Fraction of any size (no float under/overflow)."""
    return math.log2(value.numerator) - math.log2(value.denominator)


@lru_cache(maxsize=4)
def _sorted_standard_normal(n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(n)
    z.sort()
    z.setflags(write=False)
    return z


def _check_real(name: str, value: object, *, positive: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        need = "a positive finite number" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return x


def lognormal_samples(median: float, spread_decades: float, n: int = 1_000_000,
                      seed: int = 0) -> LogNormalSamples:
    """The log-normal set ``gradient_samples(median, spread_decades, n, seed)`` in sorted z-space.

    The sorted draws are computed once per ``(n, seed)`` (~0.1 s for 1e6) and cached, so
    moving the median or spread slider costs microseconds.  ValueError names the bad
    parameter (``median`` positive finite, ``spread_decades`` finite >= 0, ``n`` in
    0..2**30, ``seed`` a non-negative integer).
    """
    median = _check_real("median", median, positive=True)
    spread_decades = _check_real("spread_decades", spread_decades, positive=False)
    n = _check_int_range("n", n, 0, 1 << 30)
    seed = _check_int_range("seed", seed, 0, (1 << 128) - 1)
    return LogNormalSamples(median, spread_decades, seed, _sorted_standard_normal(n, seed))


@dataclass(frozen=True)
class ScalingStats:
    """Where samples land after ``x * 2**scale_exp`` is cast to a format (fractions of ``n``).

    ``underflow``: became 0; ``subnormal``: non-zero but below the smallest
    normal (precision loss); ``normal``; ``overflow``: beyond the format's
    range, result ``overflow_to`` (``"inf"``, ``"nan"`` or ``"saturate"``).
    The four fractions sum to 1 (0 each when ``n == 0``).  Exact
    round-to-nearest-even thresholds (no float32 detour).
    """

    format_name: str
    scale_exp: int
    n: int
    underflow: float
    subnormal: float
    normal: float
    overflow: float
    overflow_to: str


@lru_cache(maxsize=256)
def _class_thresholds(fmt: FloatFormat) -> tuple[Fraction, Fraction, Fraction, bool]:
    """Exact magnitudes where the rounded class changes.

    Returns ``(zero_max, normal_min, overflow_at, overflow_inclusive)``:
    |x| <= zero_max rounds to 0, |x| >= normal_min rounds to a normal, and
    |x| > overflow_at (>= if ``overflow_inclusive``) overflows.
    """
    smallest = Fraction(2) ** (fmt.min_exponent - fmt.mantissa_bits)
    zero_max = smallest / 2
    normal_min = Fraction(2) ** fmt.min_exponent - smallest / 2
    top_quantum = Fraction(2) ** (fmt.max_exponent - fmt.mantissa_bits)
    maximum = _decode_exact(fmt.max_finite_code, fmt).magnitude
    top_significand_odd = bool((maximum / top_quantum).numerator & 1)
    return zero_max, normal_min, maximum + top_quantum / 2, top_significand_odd


def _float_floor(value: Fraction) -> tuple[float, bool]:
    """(largest float64 <= value, whether it equals value) for value >= 0."""
    approx = _fraction_to_float(value)
    if math.isinf(approx):
        return float(np.finfo(np.float64).max), False
    if Fraction(approx) > value:
        approx = math.nextafter(approx, 0.0)
    return approx, Fraction(approx) == value


def _count_below(sorted_values: np.ndarray, threshold: Fraction, *, inclusive: bool) -> int:
    """Number of sorted float64 values < threshold (<= if ``inclusive``), exactly."""
    floor, exact = _float_floor(threshold)
    side = "right" if inclusive or not exact else "left"
    return int(np.searchsorted(sorted_values, floor, side=side))


def scaling_stats(samples: np.ndarray | PreparedSamples | LogNormalSamples, fmt: FloatFormat,
                  scale_exp: int) -> ScalingStats:
    """Classify ``samples * 2**scale_exp`` cast to ``fmt`` (see :class:`ScalingStats`).

    ``samples``: any float64 array (sorted on every call), a :class:`PreparedSamples` from
    :func:`prepare` (three binary searches) or a :class:`LogNormalSamples` from
    :func:`lognormal_samples` (three binary searches in z-space; no per-sample work when the
    median or spread changes).
    """
    scale_exp = _check_int_range("scale_exp", scale_exp, -4096, 4096)
    zero_max, normal_min, overflow_at, overflow_inclusive = _class_thresholds(fmt)
    if isinstance(samples, LogNormalSamples):
        n = samples.n

        def count_below(threshold: Fraction, inclusive: bool) -> int:
            return samples._count_below(threshold, scale_exp, inclusive=inclusive)
    else:
        prepared = samples if isinstance(samples, PreparedSamples) else prepare(samples)
        unscale = Fraction(2) ** -scale_exp
        values = prepared.sorted_magnitudes
        n = values.size

        def count_below(threshold: Fraction, inclusive: bool) -> int:
            return _count_below(values, threshold * unscale, inclusive=inclusive)
    to_zero = count_below(zero_max, True)
    below_normal = max(count_below(normal_min, False), to_zero)
    not_overflowing = count_below(overflow_at, not overflow_inclusive)
    counts = (to_zero, below_normal - to_zero, not_overflowing - below_normal, n - not_overflowing)
    fractions = [c / n if n else 0.0 for c in counts]
    return ScalingStats(fmt.name, scale_exp, n, *fractions, overflow_to=fmt.overflow)


@dataclass(frozen=True, eq=False)
class LogHistogram:
    """Histogram of log10|x|: ``edges`` shape ``(bins + 1,)`` in decades, ``counts`` shape ``(bins,)``
    int64; ``below``/``above`` count finite non-zero values outside ``[lo, hi)``, ``zeros`` exact
    zeros, ``non_finite`` inf/NaN."""

    edges: np.ndarray
    counts: np.ndarray
    below: int
    above: int
    zeros: int
    non_finite: int


def log_histogram(samples: np.ndarray | PreparedSamples | LogNormalSamples, bins: int, lo: float,
                  hi: float, *, scale_exp: int = 0) -> LogHistogram:
    """Vectorised histogram of ``log10|samples * 2**scale_exp|`` over ``[lo, hi)`` in ``bins`` bins.

    ``lo``/``hi`` are in decades (log10 units).  With :class:`PreparedSamples` or
    :class:`LogNormalSamples` it is ``bins + 1`` binary searches; with a raw array one
    log10 pass.
    """
    bins = _check_int_range("bins", bins, 1, 1 << 24)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    edges = np.linspace(lo, hi, bins + 1)
    shift = scale_exp * math.log10(2.0)
    if isinstance(samples, LogNormalSamples):
        return _histogram_lognormal(samples, edges, shift)
    if isinstance(samples, PreparedSamples):
        return _histogram_sorted(samples, edges, shift)
    return _histogram_raw(np.asarray(samples, dtype=np.float64).ravel(), edges, shift)


def _histogram_sorted(prepared: PreparedSamples, edges: np.ndarray, shift: float) -> LogHistogram:
    values = prepared.sorted_magnitudes
    zeros = int(np.searchsorted(values, 0.0, side="right"))
    finite_end = int(np.searchsorted(values, np.inf, side="left"))
    with np.errstate(over="ignore", under="ignore"):
        boundaries = np.power(10.0, edges - shift)
    positions = np.searchsorted(values, boundaries, side="left")
    positions = np.clip(positions, zeros, finite_end)
    return LogHistogram(
        edges=edges,
        counts=np.diff(positions).astype(np.int64),
        below=int(positions[0]) - zeros,
        above=finite_end - int(positions[-1]),
        zeros=zeros,
        non_finite=values.size - finite_end + prepared.nan_count,
    )


def _histogram_lognormal(samples: LogNormalSamples, edges: np.ndarray, shift: float) -> LogHistogram:
    n, zeros, finite_end = samples.n, samples.zeros, samples.n - samples.infinities
    if samples.spread_decades == 0:
        with np.errstate(over="ignore", under="ignore"):
            boundaries = np.power(10.0, edges - shift)
        positions = np.where(samples.median < boundaries, n, 0)
    else:
        with np.errstate(over="ignore"):
            z = (edges - shift - samples.log10_median) / samples.spread_decades
        positions = np.searchsorted(samples.sorted_z, z, side="left")
    positions = np.clip(positions, zeros, finite_end)
    return LogHistogram(
        edges=edges,
        counts=np.diff(positions).astype(np.int64),
        below=int(positions[0]) - zeros,
        above=finite_end - int(positions[-1]),
        zeros=zeros,
        non_finite=n - finite_end,
    )


def _histogram_raw(values: np.ndarray, edges: np.ndarray, shift: float) -> LogHistogram:
    magnitudes = np.abs(values)
    finite = np.isfinite(magnitudes)
    nonzero = finite & (magnitudes > 0)
    with np.errstate(divide="ignore"):
        logs = np.log10(magnitudes[nonzero]) + shift
    lo, hi, bins = edges[0], edges[-1], edges.size - 1
    index = np.floor((logs - lo) * (bins / (hi - lo))).astype(np.int64)
    inside = (logs >= lo) & (logs < hi)
    counts = np.bincount(np.clip(index[inside], 0, bins - 1), minlength=bins).astype(np.int64)
    return LogHistogram(
        edges=edges,
        counts=counts,
        below=int(np.count_nonzero(logs < lo)),
        above=int(np.count_nonzero(logs >= hi)),
        zeros=int(np.count_nonzero(finite & (magnitudes == 0))),
        non_finite=int(values.size - np.count_nonzero(finite)),
    )
