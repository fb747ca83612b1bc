"""The formats: :class:`FloatFormat`, the presets in ``FORMATS``, custom ExMy formats and overflow policies."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Mapping


_SPECIALS = ("ieee", "fn", "fnuz", "none")
_OVERFLOWS = ("inf", "nan", "saturate")


@dataclass(frozen=True)
class FloatFormat:
    """A binary floating-point format (sign bit, exponent field, mantissa field).

    Values: normal ``(-1)^s * 2^(e - bias) * 1.m``, subnormal (exponent field
    0) ``(-1)^s * 2^(1 - bias) * 0.m``.  ``bias`` is explicit: ``2^(E-1) - 1``
    for IEEE and OCP formats, one more for the FNUZ formats, 127 for E8M0.
    ``specials`` says which patterns are not numbers:

    * ``"ieee"``: exponent all ones is inf (mantissa 0) or NaN (mantissa != 0);
    * ``"fn"``: (OCP FP8 E4M3, E8M0) no inf; only exponent and mantissa all ones is NaN;
    * ``"fnuz"``: (FP8 E4M3FNUZ / E5M2FNUZ: AMD MI300, Graphcore) no inf and no
      negative zero: the pattern of -0 (sign 1, everything else 0, e.g. 0x80)
      is the only NaN;
    * ``"none"``: every pattern is a finite number (OCP FP4 E2M1, FP6 E2M3 / E3M2).

    ``signed`` False: no sign bit (E8M0: ``total_bits == exponent_bits +
    mantissa_bits``); a negative input has no encoding (NaN if the format has
    one).  ``subnormals`` False: the exponent field 0 is an ordinary normal
    binade, so there are no subnormals and no zero (E8M0: 0x00 is 2^-127); a
    positive input below the smallest value rounds up to it, a zero has no
    encoding (NaN).

    ``overflow`` is what :func:`encode` does with values beyond ``max_value``
    (and with infinite inputs): ``"inf"``, ``"nan"`` or ``"saturate"`` (clamp to
    +-max).  ``standard_*`` describe the standard's rules, ``torch_*`` what
    torch 2.13 actually does when casting; ``usage_*`` where the format is
    used; ``torch_dtype`` and ``ml_dtype`` name the torch and ml_dtypes dtypes
    of the same format (None where there is none).  All magnitudes are float64
    (every value of every format here is exactly representable in float64).
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
    signed: bool = True
    subnormals: bool = True
    ml_dtype: str | None = None

    @property
    def precision(self) -> int:
        """Significand bits including the implicit leading bit."""
        return self.mantissa_bits + 1

    @property
    def min_exponent(self) -> int:
        """Unbiased exponent of the smallest normal (also of subnormals): 1 - bias (-bias without subnormals)."""
        return (1 if self.subnormals else 0) - self.bias

    @property
    def max_exponent(self) -> int:
        """Unbiased exponent of the largest finite value."""
        return self._top_exponent_field - self.bias

    @property
    def has_zero(self) -> bool:
        """Whether 0 is a value (False for E8M0)."""
        return self.subnormals

    @property
    def has_negative_zero(self) -> bool:
        """Whether -0 has its own pattern (False for FNUZ and unsigned formats)."""
        return self.signed and self.has_zero and self.specials != "fnuz"

    @property
    def sign_mask(self) -> int:
        """The sign bit (``1 << (total_bits - 1)``), 0 for unsigned formats."""
        return (1 << (self.exponent_bits + self.mantissa_bits)) if self.signed else 0

    @property
    def magnitude_mask(self) -> int:
        """The exponent and mantissa fields: ``bits & magnitude_mask`` is the pattern without its sign."""
        return (1 << (self.exponent_bits + self.mantissa_bits)) - 1

    @property
    def _top_exponent_field(self) -> int:
        return self.max_finite_code >> self.mantissa_bits

    @property
    def max_finite_code(self) -> int:
        """Bit pattern (without sign) of ``max_value``; patterns 0..this are finite."""
        return _max_finite_code(self.exponent_bits, self.mantissa_bits, self.specials)

    @property
    def is_binary64(self) -> bool:
        """Whether the format is IEEE binary64 itself (float64 arithmetic is then exact)."""
        return (self.exponent_bits, self.mantissa_bits, self.bias, self.specials, self.signed, self.subnormals) == (
            11, 52, 1023, "ieee", True, True)


def _max_finite_code(exponent_bits: int, mantissa_bits: int, specials: str) -> int:
    magnitude_mask = (1 << (exponent_bits + mantissa_bits)) - 1
    if specials == "ieee":  # the all-ones exponent is inf/NaN
        return (((1 << exponent_bits) - 2) << mantissa_bits) | ((1 << mantissa_bits) - 1)
    if specials == "fn":  # only the all-ones pattern is NaN
        return magnitude_mask - 1
    return magnitude_mask  # fnuz (NaN is the -0 pattern) and none


def _format_limits(exponent_bits: int, mantissa_bits: int, specials: str, bias: int | None = None,
                   signed: bool = True, subnormals: bool = True) -> dict:
    bias = (1 << (exponent_bits - 1)) - 1 if bias is None else bias
    m = mantissa_bits
    top_code = _max_finite_code(exponent_bits, m, specials)
    top_field, top_mantissa = top_code >> m, top_code & ((1 << m) - 1)
    min_exponent = (1 if subnormals else 0) - bias
    if top_field == 0 and subnormals:  # only zero and subnormals are finite (a degenerate custom format)
        max_value = math.ldexp(top_mantissa, min_exponent - m)
    else:
        max_value = math.ldexp((1 << m) + top_mantissa, top_field - bias - m)
    return dict(
        bias=bias,
        total_bits=(1 if signed else 0) + exponent_bits + m,
        max_value=max_value,
        smallest_normal=math.ldexp(1.0, min_exponent),
        smallest_subnormal=math.ldexp(1.0, min_exponent - (m if subnormals else 0)),
        epsilon=math.ldexp(1.0, -m),
    )


def _make_format(name: str, label: str, exponent_bits: int, mantissa_bits: int, *, specials: str,
                 overflow: str, nan_bits: int | None, nan_keeps_sign: bool, nan_encoding: str,
                 standard: tuple[str, str], torch: tuple[str, str], usage: tuple[str, str],
                 torch_dtype: str | None, bias: int | None = None, signed: bool = True, subnormals: bool = True,
                 ml_dtype: str | None = None) -> FloatFormat:
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
        signed=signed,
        subnormals=subnormals,
        ml_dtype=ml_dtype,
        **_format_limits(exponent_bits, mantissa_bits, specials, bias, signed, subnormals),
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
    torch_dtype="bfloat16", ml_dtype="bfloat16",
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
    torch_dtype="float8_e4m3fn", ml_dtype="float8_e4m3fn",
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
    torch_dtype="float8_e5m2", ml_dtype="float8_e5m2",
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
    torch_dtype="float4_e2m1fn_x2", ml_dtype="float4_e2m1fn",
)

_FNUZ_TORCH_EN = ("torch.{dtype}: overflow and +-inf -> NaN (0x80); -0 -> +0; every NaN -> 0x80; "
                  f"{_VIA_FP32_EN}.")
_FNUZ_TORCH_ZH = ("torch.{dtype}：上溢和 ±inf → NaN（0x80）；−0 → +0；所有 NaN → 0x80；"
                  f"{_VIA_FP32_ZH}。")

FP8_E4M3FNUZ = _make_format(
    "fp8_e4m3fnuz", "FP8 E4M3FNUZ", 4, 3, specials="fnuz", overflow="nan", bias=8,
    nan_bits=0x80, nan_keeps_sign=False,
    nan_encoding="1.0000.000 only (0x80, where -0 would be); no infinities, no negative zero",
    standard=("FNUZ E4M3 (AMD MI300, Graphcore): bias 8 (OCP's 7 + 1), no infinities and no negative "
              "zero: the pattern of -0 (0x80) is the only NaN, so S.1111.111 is a number and the max is "
              "+-240. Overflow and +-inf give NaN.",
              "FNUZ E4M3（AMD MI300、Graphcore）：偏置 8（OCP 的 7 再加 1），没有无穷大也没有负零：−0 的位模式"
              "（0x80）是唯一的 NaN，因此 S.1111.111 也是数，最大 ±240。上溢和 ±inf 都变为 NaN。"),
    torch=(_FNUZ_TORCH_EN.format(dtype="float8_e4m3fnuz"), _FNUZ_TORCH_ZH.format(dtype="float8_e4m3fnuz")),
    usage=("FP8 forward pass on AMD MI300 (CDNA3) and Graphcore IPUs",
           "AMD MI300（CDNA3）和 Graphcore IPU 上 FP8 的前向计算"),
    torch_dtype="float8_e4m3fnuz", ml_dtype="float8_e4m3fnuz",
)

FP8_E5M2FNUZ = _make_format(
    "fp8_e5m2fnuz", "FP8 E5M2FNUZ", 5, 2, specials="fnuz", overflow="nan", bias=16,
    nan_bits=0x80, nan_keeps_sign=False,
    nan_encoding="1.00000.00 only (0x80, where -0 would be); no infinities, no negative zero",
    standard=("FNUZ E5M2 (AMD MI300, Graphcore): bias 16 (OCP's 15 + 1), no infinities and no negative "
              "zero; 0x80 is the only NaN, so the top binade holds numbers: max +-57344 as OCP E5M2, but "
              "one more binade at the bottom (smallest normal 2^-15). Overflow and +-inf give NaN.",
              "FNUZ E5M2（AMD MI300、Graphcore）：偏置 16（OCP 的 15 再加 1），没有无穷大也没有负零；0x80 是唯一的 "
              "NaN，最高的指数段也用来表示数：最大值与 OCP E5M2 同为 ±57344，但底部多出一个指数段（最小正规数 "
              "2^-15）。上溢和 ±inf 都变为 NaN。"),
    torch=(_FNUZ_TORCH_EN.format(dtype="float8_e5m2fnuz"), _FNUZ_TORCH_ZH.format(dtype="float8_e5m2fnuz")),
    usage=("FP8 gradients on AMD MI300 (CDNA3) and Graphcore IPUs",
           "AMD MI300（CDNA3）和 Graphcore IPU 上的 FP8 梯度"),
    torch_dtype="float8_e5m2fnuz", ml_dtype="float8_e5m2fnuz",
)

FP8_E4M3_IEEE = _make_format(
    "fp8_e4m3_ieee", "FP8 E4M3 (IEEE-style)", 4, 3, specials="ieee", overflow="inf",
    nan_bits=0x7C, nan_keeps_sign=True,
    nan_encoding="S.1111.(mantissa != 0); ml_dtypes writes 0x7c / 0xfc",
    standard=("E4M3 with IEEE-style specials (ml_dtypes float8_e4m3): the all-ones exponent holds +-inf "
              "(S.1111.000) and NaN, so the max is +-240 where OCP's E4M3, which has no inf, reaches +-448. "
              "Overflow (|x| >= 248) -> +-inf.",
              "带 IEEE 风格特殊值的 E4M3（ml_dtypes float8_e4m3）：全 1 指数用于 ±inf（S.1111.000）和 NaN，"
              "因此最大值是 ±240，而没有 inf 的 OCP E4M3 可达 ±448。上溢（|x| ≥ 248）→ ±inf。"),
    torch=("torch 2.13 has no dtype for it (float8_e4m3fn is the OCP one); ml_dtypes.float8_e4m3 is the reference.",
           "torch 2.13 没有对应类型（float8_e4m3fn 是 OCP 的那种）；以 ml_dtypes.float8_e4m3 为参照。"),
    usage=("what reserving inf and NaN costs an 8-bit format: compare with OCP E4M3",
           "在 8 位格式里保留 inf 和 NaN 的代价：与 OCP E4M3 对比"),
    torch_dtype=None, ml_dtype="float8_e4m3",
)

FP8_E3M4 = _make_format(
    "fp8_e3m4", "FP8 E3M4", 3, 4, specials="ieee", overflow="inf",
    nan_bits=0x78, nan_keeps_sign=True,
    nan_encoding="S.111.(mantissa != 0); ml_dtypes writes 0x78 / 0xf8",
    standard=("E3M4, IEEE-style (ml_dtypes float8_e3m4): bias 3, +-inf and NaN in the all-ones exponent, "
              "max +-15.5, smallest normal 0.25: more precision (epsilon 1/16) and far less range than "
              "E4M3. Overflow (|x| >= 15.75) -> +-inf.",
              "E3M4，IEEE 风格（ml_dtypes float8_e3m4）：偏置 3，全 1 指数表示 ±inf 和 NaN，最大 ±15.5，最小正规数 "
              "0.25：精度比 E4M3 高（ε = 1/16），范围却小得多。上溢（|x| ≥ 15.75）→ ±inf。"),
    torch=("torch 2.13 has no E3M4 dtype; ml_dtypes.float8_e3m4 is the reference.",
           "torch 2.13 没有 E3M4 类型；以 ml_dtypes.float8_e3m4 为参照。"),
    usage=("8-bit values that need precision more than range (e.g. normalised activations)",
           "更看重精度而非范围的 8 位数值（例如归一化后的激活）"),
    torch_dtype=None, ml_dtype="float8_e3m4",
)

E8M0 = _make_format(
    "e8m0", "E8M0 (MX scale)", 8, 0, specials="fn", overflow="nan", bias=127, signed=False, subnormals=False,
    nan_bits=0xFF, nan_keeps_sign=False,
    nan_encoding="11111111 (0xff) only; no sign bit, no zero, no infinities",
    standard=("OCP MX E8M0: an unsigned 8-bit exponent with no mantissa and no sign bit: the powers of two "
              "2^-127 ... 2^127 (0x00 ... 0xfe) and NaN (0xff); no zero, no infinities. It is the shared "
              "scale of every MX block. Positive values round to the nearest power of two (a tie, 3, goes up "
              "to 4), below 2^-127 to 2^-127; zero, negatives, overflow and inf give NaN.",
              "OCP MX E8M0：无符号的 8 位指数，没有尾数，也没有符号位：只表示 2 的幂 2^-127 … 2^127（0x00 … 0xfe）"
              "和 NaN（0xff）；没有零，没有无穷大。它是每个 MX 块共享的缩放因子。正数舍入到最近的 2 的幂（恰在中点时，"
              "例如 3，向上取 4），小于 2^-127 的取 2^-127；零、负数、上溢和 inf 都变为 NaN。"),
    torch=("torch.float8_e8m0fnu decodes every pattern as here and rounds positive values the same way, but "
           "its cast drops the sign (-1 -> 1.0) and stores 0 as 2^-127 (0x00); ml_dtypes and this model give "
           "NaN for both.",
           "torch.float8_e8m0fnu 对每个位模式的解码与这里相同，正数的舍入也相同；但它的转换会丢掉符号（−1 → 1.0），"
           "并把 0 存为 2^-127（0x00）；ml_dtypes 和这里对两者都给出 NaN。"),
    usage=("the shared block scale of MXFP8 / MXFP6 / MXFP4 (Blackwell tensor cores)",
           "MXFP8 / MXFP6 / MXFP4 的块共享缩放因子（Blackwell 张量核心）"),
    torch_dtype="float8_e8m0fnu", ml_dtype="float8_e8m0fnu",
)

_NO_TORCH_FP6 = ("torch 2.13 has no FP6 dtype; ml_dtypes.{dtype} is the reference (same values and rounding).",
                 "torch 2.13 没有 FP6 类型；以 ml_dtypes.{dtype} 为参照（取值与舍入相同）。")

FP6_E2M3 = _make_format(
    "fp6_e2m3", "FP6 E2M3", 2, 3, specials="none", overflow="saturate",
    nan_bits=None, nan_keeps_sign=False,
    nan_encoding="none: every pattern is a number (MX keeps NaN in the shared block scale)",
    standard=("OCP MX FP6 E2M3: bias 1, no inf or NaN; values +-{0, 0.125, ..., 7.5} in steps of 0.125 up to 2. "
              "Out-of-range values are clamped to +-7.5 (saturation); a NaN input has no encoding.",
              "OCP MX FP6 E2M3：偏置 1，没有 inf 和 NaN；取值 ±{0, 0.125, …, 7.5}，2 以内间距为 0.125。超出范围的值"
              "钳位到 ±7.5（饱和）；NaN 输入无法编码。"),
    torch=(_NO_TORCH_FP6[0].format(dtype="float6_e2m3fn"), _NO_TORCH_FP6[1].format(dtype="float6_e2m3fn")),
    usage=("MXFP6 elements with more precision (OCP Microscaling; Blackwell)",
           "精度较高的 MXFP6 元素（OCP 微缩放；Blackwell）"),
    torch_dtype=None, ml_dtype="float6_e2m3fn",
)

FP6_E3M2 = _make_format(
    "fp6_e3m2", "FP6 E3M2", 3, 2, specials="none", overflow="saturate",
    nan_bits=None, nan_keeps_sign=False,
    nan_encoding="none: every pattern is a number (MX keeps NaN in the shared block scale)",
    standard=("OCP MX FP6 E3M2: bias 3, no inf or NaN; max +-28, smallest normal 0.25, smallest subnormal "
              "0.0625. Out-of-range values are clamped to +-28 (saturation); a NaN input has no encoding.",
              "OCP MX FP6 E3M2：偏置 3，没有 inf 和 NaN；最大 ±28，最小正规数 0.25，最小次正规数 0.0625。"
              "超出范围的值钳位到 ±28（饱和）；NaN 输入无法编码。"),
    torch=(_NO_TORCH_FP6[0].format(dtype="float6_e3m2fn"), _NO_TORCH_FP6[1].format(dtype="float6_e3m2fn")),
    usage=("MXFP6 elements with more range (OCP Microscaling; Blackwell)",
           "范围较大的 MXFP6 元素（OCP 微缩放；Blackwell）"),
    torch_dtype=None, ml_dtype="float6_e3m2fn",
)

#: Preset formats by name, widest first (the eight of the first release first among their width).
FORMATS: Mapping[str, FloatFormat] = MappingProxyType(
    {f.name: f for f in (FP64, FP32, TF32, FP16, BF16, FP8_E4M3, FP8_E5M2, FP8_E4M3FNUZ, FP8_E5M2FNUZ,
                         FP8_E4M3_IEEE, FP8_E3M4, E8M0, FP6_E2M3, FP6_E3M2, FP4_E2M1)}
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


def custom_bias_range(exponent_bits: int, mantissa_bits: int, specials: str | None = None) -> tuple[int, int]:
    """The biases :func:`custom_format` accepts for ``E{exponent_bits}M{mantissa_bits}``: every value
    then is a finite float64 (largest exponent <= 1023, smallest quantum >= 2^-1074)."""
    e = _check_int_range("exponent_bits", exponent_bits, 1, 11)
    m = _check_int_range("mantissa_bits", mantissa_bits, 0, 52)
    specials = _custom_specials(e, m, specials, True)
    top_field = _max_finite_code(e, m, specials) >> m
    return top_field - 1023, 1075 - m


def _custom_specials(e: int, m: int, specials: str | None, signed: bool) -> str:
    if specials is None:
        return "none" if e == 1 else "ieee"
    if specials not in _SPECIALS:
        raise ValueError(f"specials must be one of {', '.join(_SPECIALS)}, got {specials!r}")
    if specials == "ieee" and e < 2:
        raise ValueError("specials: 'ieee' needs exponent_bits >= 2 (the all-ones exponent goes to inf/NaN)")
    if specials == "fn" and e + m < 2:
        raise ValueError("specials: 'fn' needs exponent_bits + mantissa_bits >= 2 (one pattern goes to NaN)")
    if specials == "fnuz" and not signed:
        raise ValueError("specials: 'fnuz' keeps NaN where -0 would be, so it needs a sign bit (signed=True)")
    return specials


_CUSTOM_SPECIALS_TEXT = {
    "ieee": ("IEEE-style: exponent all ones is +-inf (mantissa 0) or NaN; overflow -> +-inf",
             "IEEE 风格：全 1 指数表示 ±inf（尾数为 0）或 NaN；上溢 → ±inf"),
    "fn": ("'fn': no inf, only the all-ones pattern is NaN; overflow -> NaN",
           "“fn”：没有 inf，只有全 1 位模式是 NaN；上溢 → NaN"),
    "fnuz": ("'fnuz': no inf, no -0: the pattern of -0 is the only NaN; overflow -> NaN",
             "“fnuz”：没有 inf 和 −0：−0 的位模式是唯一的 NaN；上溢 → NaN"),
    "none": ("no inf or NaN: every pattern is a number; overflow saturates to +-max",
             "没有 inf 和 NaN：每个位模式都是数；上溢饱和到 ±最大值"),
}


def custom_format(exponent_bits: int, mantissa_bits: int, *, bias: int | None = None, specials: str | None = None,
                  signed: bool = True) -> FloatFormat:
    """Build an ``E{exponent_bits}M{mantissa_bits}`` format, IEEE-style unless told otherwise.

    ``exponent_bits`` in 1..11, ``mantissa_bits`` in 0..52 (ValueError naming
    the parameter otherwise); by default bias = 2^(E-1) - 1, round-to-nearest-even,
    overflow -> +-inf, NaN = exponent all ones with mantissa MSB set.

    Two corner cases of the default, chosen so every format still has a normal range:

    * ``exponent_bits == 1``: strict IEEE would spend the only non-zero
      exponent value on inf/NaN and leave no normal numbers, so (like OCP
      FP4/FP6) the all-ones exponent is an ordinary normal binade: the format
      has no inf/NaN, overflow saturates to +-max and NaN inputs raise.
    * ``mantissa_bits == 0``: the all-ones exponent with mantissa 0 is +-inf
      and there is no pattern left for NaN (``has_nan`` False: NaN inputs
      raise); there are no subnormals (``smallest_subnormal ==
      smallest_normal``).

    Options (the models of the FNUZ and MX formats): ``bias`` any integer in
    :func:`custom_bias_range` (FNUZ formats use the default + 1);
    ``specials`` ``"ieee"``, ``"fn"`` (overflow -> NaN), ``"fnuz"`` (overflow ->
    NaN, no -0) or ``"none"`` (overflow saturates), see :class:`FloatFormat`;
    ``signed=False`` drops the sign bit.  The name is ``e{E}m{M}`` followed by
    what differs from the default (``e4m3_fnuz_b8``).
    """
    e = _check_int_range("exponent_bits", exponent_bits, 1, 11)
    m = _check_int_range("mantissa_bits", mantissa_bits, 0, 52)
    if not isinstance(signed, bool):
        raise ValueError(f"signed must be True or False, got {signed!r}")
    default_specials = "none" if e == 1 else "ieee"
    specials = _custom_specials(e, m, specials, signed)
    standard_bias = (1 << (e - 1)) - 1
    lo, hi = custom_bias_range(e, m, specials)
    bias = standard_bias if bias is None else _check_int_range("bias", bias, lo, hi)
    sign_mask = (1 << (e + m)) if signed else 0
    if specials == "ieee":
        nan_bits = ((((1 << e) - 1) << m) | (1 << (m - 1))) if m > 0 else None
        overflow = "inf"
    elif specials == "fn":
        nan_bits, overflow = (1 << (e + m)) - 1, "nan"
    elif specials == "fnuz":
        nan_bits, overflow = sign_mask, "nan"
    else:
        nan_bits, overflow = None, "saturate"
    has_nan = nan_bits is not None
    suffix = "".join((f"_{specials}" if specials != default_specials else "",
                      f"_b{bias}" if bias != standard_bias else "", "" if signed else "_unsigned"))
    notes = [f"bias {bias}" if bias != standard_bias else "", specials if specials != default_specials else "",
             "unsigned" if not signed else ""]
    label = f"E{e}M{m} (custom" + "".join(f", {n}" for n in notes if n) + ")"
    if specials == "ieee" and specials == default_specials and bias == standard_bias and signed:
        nan_text = ("S.1...1.(mantissa != 0)" if has_nan
                    else "none: with 0 mantissa bits the all-ones exponent is only +-inf")
        std_en, std_zh = _ieee_text(f"E{e}M{m} (IEEE-style)", "max")
    elif specials == "none" and specials == default_specials and bias == standard_bias and signed:
        nan_text = "none: exponent 1 bit, the all-ones exponent is a normal binade"
        std_en, std_zh = (
            f"E{e}M{m}: 1 exponent bit, so the all-ones exponent holds normal numbers (no inf/NaN); "
            "overflow saturates to +-max."), (
            f"E{e}M{m}：只有 1 位指数，全 1 指数用于正规数（无 inf/NaN）；上溢饱和到 ±最大值。")
    else:
        nan_text = (f"{nan_bits:#x}" + (" (and with the sign bit)" if specials in ("ieee", "fn") and signed else "")
                    if has_nan else "none")
        what_en, what_zh = _CUSTOM_SPECIALS_TEXT[specials]
        sign_en, sign_zh = ("", "") if signed else ("; no sign bit: negative inputs have no encoding",
                                                    "；没有符号位：负数无法编码")
        std_en = f"E{e}M{m}, bias {bias}: {what_en}{sign_en}."
        std_zh = f"E{e}M{m}，偏置 {bias}：{what_zh}{sign_zh}。"
    return _make_format(
        f"e{e}m{m}{suffix}", label, e, m, specials=specials, overflow=overflow, bias=bias, signed=signed,
        nan_bits=nan_bits, nan_keeps_sign=has_nan and specials in ("ieee", "fn") and signed, nan_encoding=nan_text,
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
    """True if every value of ``fmt`` is an fp32 value and fp32 has more (so torch rounds through fp32)."""
    return (fmt.mantissa_bits < 23 and fmt.max_exponent <= 127
            and fmt.min_exponent - (fmt.mantissa_bits if fmt.subnormals else 0) >= -149)
