"""Floats panel, two views.

Formats: the bits of FP64 ... FP4 (the OCP, FNUZ and MX formats, and a custom ExMy format), the
rounding error, the range, every representable value near the input, every bit pattern by kind,
and loss scaling. Block scaling: a whole tensor quantized with shared scales (per tensor, per row,
per block, per tile; MXFP8 / MXFP6 / MXFP4, NVFP4, per-tensor and DeepSeek-V3 FP8), side by side.

Each view is built the first time it is shown. On the formats view every format's strip, table
row, range label and loss-scaling lines exist from the start and are shown or hidden, and the
strips and the table live in their own scrolled area above the plots: showing a format never
resizes the plots' view (which would regenerate every axis)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QPixmap, QStaticText
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QGraphicsItem, QGraphicsScene, QHBoxLayout, QHeaderView,
                               QLabel, QScrollArea, QSizePolicy, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QToolTip, QVBoxLayout, QWidget)

from widgets.controls import OneLine
from widgets.items import CellImage, DecadeAxis, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import floats as fl
from workbench.i18n import ntr, pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

STANDARD = tuple(fl.FORMATS)
SHOWN_BY_DEFAULT = ("fp32", "fp16", "bf16", "fp8_e4m3")
ROW_KEYS = STANDARD + ("custom",)
DENSITY_FORMATS = ("fp4_e2m1", "fp8_e4m3", "fp8_e5m2", "fp8_e4m3fnuz", "fp8_e5m2fnuz", "fp8_e4m3_ieee", "fp8_e3m4",
                   "e8m0", "fp6_e2m3", "fp6_e3m2")
ELEMENTS = ("fp8_e4m3", "fp8_e5m2", "fp8_e4m3fnuz", "fp8_e5m2fnuz", "fp8_e4m3_ieee", "fp8_e3m4", "fp6_e2m3",
            "fp6_e3m2", "fp4_e2m1")
SCALE_FORMATS = ("e8m0", "fp8_e4m3", "fp32")
SIDE_BY_SIDE = ("fp8_tensor", "mxfp8_e4m3", "mxfp4", "nvfp4")
SAMPLES = 1_000_000
HISTOGRAM_BINS = 120
COMPACT_ROWS = 8  # more formats than this: range and share labels go on their bar's row, not above it
ROW_SLOTS = 16.0  # the y range the range and share rows divide among themselves, whatever their number
FIELD_COLORS = {"sign": "#D55E00", "exponent": "#0072B2", "mantissa": "#009E73"}  # Okabe-Ito
SHARE_COLORS = {"zero": "#D55E00", "subnormal": "#E69F00", "normal": "#009E73", "overflow": "#CC79A7"}
KIND_COLORS = {"zero": "#D55E00", "subnormal": "#E69F00", "normal": "#009E73", "inf": "#0072B2", "nan": "#CC79A7"}
NAN_COLOR = (204, 0, 204, 255)  # NaN (and inf) cells of the tensor maps: magenta, outside every colormap


def words(key: str) -> str:
    """Translated names of bit fields, value kinds and casting outcomes."""
    return {"sign": tr("sign"), "exponent": tr("exponent"), "mantissa": tr("mantissa"), "zero": tr("zero"),
            "subnormal": tr("subnormal"), "normal": tr("normal"), "inf": tr("infinity"), "nan": tr("NaN"),
            "overflow": tr("overflow")}[key]


def _label(name: str) -> str:
    return "custom ExMy" if name == "custom" else fl.FORMATS[name].label


def _format_choices(names) -> tuple[Choice, ...]:
    return tuple(Choice(n, _label(n), _label(n)) for n in names)


def _input_error_text(error: fl.InputError) -> str:
    """The backend's reason for refusing an input, in the interface language."""
    f = dict(error.fields)
    if "base" in f:
        f["base"] = tr("hex") if f["base"] == "hex" else tr("binary")
    f["help"] = tr("expected a decimal (0.1, -2.5e-3), a bit pattern (0x3c00, 0b0011_1100), inf, -inf or nan")
    templates = {
        "empty": tr("empty input: {help}"),
        "too_long": tr("input too long ({length} characters, at most {limit})"),
        "signed_pattern": tr("a bit pattern cannot have a sign: '{text}'"),
        "no_nan": tr("{format} has no NaN encoding"),
        "no_negative": tr("{format} is unsigned and has no NaN: a negative value has no encoding"),
        "no_zero": tr("{format} has no zero and no NaN: 0 has no encoding"),
        "no_digits": tr("no {base} digits after '{prefix}' in '{text}'"),
        "bad_digits": tr("invalid {base} digit(s) '{digits}' in '{text}'"),
        "too_wide": tr("{base} pattern '{text}' is wider than {format}'s {bits} bits"),
        "not_a_number": tr("not a number: '{text}'; {help}"),
    }
    return templates[error.reason].format(**f)


def _check_value(text: str) -> None:
    """Parses as a value or as a pattern of the widest format (the chosen format is checked later)."""
    try:
        fl.parse_value(text, fl.FP64)
    except fl.InputError as error:
        raise ValueError(_input_error_text(error)) from None


TYPED_LIMIT = 4096


def _tensor_error_text(error: fl.TensorTextError) -> str:
    templates = {"empty": tr("empty tensor: type numbers separated by commas"),
                 "not_a_number": tr("'{token}' is not a number"),
                 "too_many": tr("at most {limit} values, got {count}"),
                 "ragged": tr("rows of different lengths ({lengths})")}
    return templates[error.reason].format(**error.fields)


def _check_tensor_text(text: str) -> None:
    try:
        fl.parse_tensor(text, name="typed_values", limit=TYPED_LIMIT)
    except fl.TensorTextError as error:
        raise ValueError(_tensor_error_text(error)) from None


VIEWS = (Choice("formats", "Formats: one value", "格式：单个数值"),
         Choice("scaling", "Block scaling: a tensor", "块缩放：整个张量"))
SPECIALS = (Choice("ieee", "IEEE-style: ±inf and NaN", "IEEE 风格：±inf 和 NaN"),
            Choice("fn", "fn: no inf, one NaN (OCP E4M3)", "fn：无 inf，一个 NaN（OCP E4M3）"),
            Choice("fnuz", "fnuz: no inf, no −0, NaN = 0x80", "fnuz：无 inf、无 −0，NaN = 0x80"),
            Choice("none", "none: every pattern a number", "none：每个位模式都是数"))
TENSOR_KINDS = (Choice("gaussian", "Gaussian", "高斯分布"),
                Choice("heavy_tailed", "Heavy-tailed (Student t, 3 dof)", "重尾（学生 t 分布，自由度 3）"),
                Choice("outliers", "Gaussian with k outliers of size s", "高斯分布加 k 个大小为 s 的离群值"),
                Choice("activation", "Activations: k large channels", "激活值：k 个大通道"),
                Choice("typed", "Typed values", "手动输入的数值"))
INJECT = (Choice("none", "none", "无"), Choice("nan", "one NaN", "一个 NaN"), Choice("inf", "one +inf", "一个 +inf"),
          Choice("zeros", "a block of zeros", "一块零"))
RECIPE_ZH = {"fp8_tensor": "FP8 逐张量缩放"}  # the other recipes' labels are names, the same in Chinese


def _recipe_label(name: str) -> str:
    return pick(fl.RECIPES[name].label, RECIPE_ZH.get(name, fl.RECIPES[name].label))


RECIPE_CHOICES = (Choice("custom", "Custom: the controls below", "自定义：按下面的控件"),) + tuple(
    Choice(r.name, r.label, RECIPE_ZH.get(r.name, r.label)) for r in fl.RECIPES.values())
GRANULARITY = (Choice("tensor", "per tensor", "每个张量"), Choice("row", "per row (channel)", "每行（通道）"),
               Choice("block", "per block along a row", "每块（沿行）"),
               Choice("tile", "per tile (block × block)", "每个方块（块 × 块）"))
BLOCK_SIZES = ("8", "16", "32", "64", "128")
ROLES = (Choice("activation", "activations: 1 × 128", "激活：1 × 128"),
         Choice("weight", "weights: 128 × 128", "权重：128 × 128"))

PARAMETERS = [
    Param("view", "choice", "formats", "View", "视图",
          "Formats: one value in every format (bits, range, every value, loss scaling). Block scaling: a whole "
          "tensor stored as small elements times shared scales (MX, NVFP4, FP8 per tensor).",
          "格式：一个数值在各种格式中的样子（位、范围、全部取值、损失缩放）。块缩放：整个张量存为小格式元素乘以共享的"
          "缩放因子（MX、NVFP4、每张量 FP8）。", choices=VIEWS, group="View"),
    Param("value", "text", "0.1", "Value", "数值",
          "A number (0.1, -2.5e-3, 1e99999), inf, -inf, nan, -0, or a bit pattern (0x3c00, 0b0011…) "
          "of the format chosen below.",
          "一个数（0.1、-2.5e-3、1e99999）、inf、-inf、nan、-0，或下面所选格式的位模式（0x3c00、0b0011…）。",
          check=_check_value, group="Input"),
    Param("pattern_format", "choice", "fp16", "Bit patterns are read as", "位模式按此格式解读",
          "Which format a 0x… or 0b… entry is a bit pattern of.", "输入 0x… 或 0b… 时，它是哪种格式的位模式。",
          choices=_format_choices(ROW_KEYS), group="Input"),
    *[Param(f"show_{name}", "bool", name in SHOWN_BY_DEFAULT, f"Show {_label(name)}", f"显示 {_label(name)}",
            f"Add a bit strip, table row and range bar for {_label(name)}.",
            f"为 {_label(name)} 显示位条、表格行和范围条。", group="Formats") for name in STANDARD],
    Param("show_custom", "bool", False, "Show custom ExMy", "显示自定义 ExMy",
          "Add your own format with the exponent and mantissa widths, bias and special values below.",
          "加入一个自定义格式，其指数和尾数位数、偏置与特殊值见下。", group="Formats"),
    Param("custom_exponent", "int", 4, "Custom exponent bits E", "自定义指数位数 E",
          "Exponent width of the custom format.", "自定义格式的指数位数。", lo=1, hi=11, group="Formats"),
    Param("custom_mantissa", "int", 3, "Custom mantissa bits M", "自定义尾数位数 M",
          "Mantissa (fraction) width of the custom format.", "自定义格式的尾数（小数）位数。", lo=0, hi=52, group="Formats"),
    Param("custom_bias_shift", "int", 0, "Custom bias: 2^(E−1) − 1 +", "自定义偏置：2^(E−1) − 1 +",
          "Shift of the custom format's exponent bias from the IEEE one (the FNUZ formats use +1: one more binade "
          "of small values, one less of large ones).",
          "自定义格式的指数偏置相对 IEEE 偏置的偏移（FNUZ 格式用 +1：小数多一个指数段，大数少一个）。",
          lo=-8, hi=8, group="Formats"),
    Param("custom_specials", "choice", "ieee", "Custom special values", "自定义特殊值",
          "Which patterns of the custom format are not numbers (IEEE-style with 1 exponent bit: none).",
          "自定义格式中哪些位模式不是数（只有 1 位指数时，IEEE 风格也没有特殊值）。",
          choices=SPECIALS, group="Formats"),
    Param("custom_signed", "bool", True, "Custom has a sign bit", "自定义格式带符号位",
          "Without it (as E8M0) the format has no negative values.", "没有符号位时（如 E8M0），该格式没有负值。",
          group="Formats"),
    Param("density_format", "choice", "fp8_e4m3", "Every-value view format", "全部取值视图的格式",
          "Draw every representable value and every bit pattern of this format.", "画出该格式的全部可表示值和全部位模式。",
          choices=_format_choices(DENSITY_FORMATS), group="Density"),
    Param("density_log", "bool", False, "Logarithmic axis", "对数坐标",
          "Place values by log2|x| instead of x (positive values).", "按 log2|x| 而不是 x 摆放（仅正值）。",
          group="Density"),
    Param("grad_median", "float", 1e-6, "Gradient median", "梯度中位数",
          "Median |gradient| of the synthetic log-normal distribution.", "合成的对数正态梯度分布的 |梯度| 中位数。",
          lo=1e-12, hi=1e4, log=True, group="Loss scaling"),
    Param("grad_spread", "float", 1.5, "Spread", "分布宽度", "Standard deviation of log10|gradient|, in decades.",
          "log10|梯度| 的标准差，单位为数量级。", lo=0.0, hi=5.0, step=0.05, unit="decades", group="Loss scaling"),
    Param("scale_exp", "int", 0, "Loss scale exponent k", "损失缩放指数 k",
          "Multiply the loss (hence every gradient) by 2^k before casting.", "转换前把损失（从而每个梯度）乘以 2^k。",
          lo=-40, hi=60, group="Loss scaling"),
    Param("tensor_kind", "choice", "outliers", "Tensor", "张量", "What the quantized tensor holds.", "被量化的张量是什么样的。",
          choices=TENSOR_KINDS, group="Tensor"),
    Param("tensor_rows", "int", 16, "Rows", "行数", "Rows of the tensor (tokens, or a weight's output channels).",
          "张量的行数（词元，或权重的输出通道）。", lo=1, hi=64, group="Tensor"),
    Param("tensor_cols", "int", 256, "Columns", "列数", "Columns of the tensor: blocks run along a row.",
          "张量的列数：块沿行划分。", lo=16, hi=1024, group="Tensor"),
    Param("tensor_std", "float", 1.0, "Typical size (std)", "典型大小（标准差）",
          "Standard deviation of the values: tiny or huge tensors show the scales' own range.",
          "数值的标准差：极小或极大的张量会显出缩放因子自身的范围。", lo=1e-40, hi=1e36, log=True, group="Tensor"),
    Param("outliers", "int", 2, "Outliers k", "离群值个数 k",
          "How many outliers (or, for activations, how many large channels).", "离群值的个数（对激活值：大通道的个数）。",
          lo=0, hi=64, group="Tensor"),
    Param("outlier_size", "float", 100.0, "Outlier size s (× std)", "离群值大小 s（× 标准差）",
          "How large the outliers (or large channels) are.", "离群值（或大通道）有多大。", lo=1.0, hi=1e4, log=True,
          group="Tensor"),
    Param("tensor_seed", "int", 0, "Seed", "随机种子", "Random draw of the tensor.", "张量的随机抽样。", lo=0, hi=999,
          group="Tensor"),
    Param("inject", "choice", "none", "Special values", "特殊值",
          "Put a NaN, a +inf or a block of zeros into row 0.", "在第 0 行放入一个 NaN、一个 +inf 或一块零。",
          choices=INJECT, group="Tensor"),
    Param("typed_values", "text", "0.5, -1.25, 3, 0.01, 1000, -7, 0.2, 42", "Typed values", "手动输入的数值",
          "Numbers separated by commas or spaces (rows by ';'); inf, -inf and nan are values.",
          "用逗号或空格分隔的数（用 ';' 分行）；inf、-inf 和 nan 也是数值。", check=_check_tensor_text,
          max_length=4000, group="Tensor"),
    Param("recipe", "choice", "mxfp4", "Recipe", "方案",
          "A recipe used in practice, or Custom to choose element, granularity and scale below.",
          "实际使用的方案，或选“自定义”在下面选择元素格式、粒度和缩放因子。", choices=RECIPE_CHOICES,
          group="Quantization"),
    Param("element", "choice", "fp4_e2m1", "Element format", "元素格式", "The format of each stored value.",
          "每个存储值的格式。", choices=_format_choices(ELEMENTS), group="Quantization"),
    Param("granularity", "choice", "block", "One scale per", "缩放粒度", "How many values share one scale.",
          "多少个数值共享一个缩放因子。", choices=GRANULARITY, group="Quantization"),
    Param("block_size", "choice", "32", "Block size", "块大小", "Values per block along a row (tiles: block × block).",
          "每块沿行的数值个数（方块：块 × 块）。", choices=tuple(Choice(b, b, b) for b in BLOCK_SIZES),
          group="Quantization"),
    Param("scale_format", "choice", "e8m0", "Scale format", "缩放因子格式",
          "E8M0: a power of two (MX). FP8 E4M3 or FP32: max|v| / max element, rounded.",
          "E8M0：2 的幂（MX）。FP8 E4M3 或 FP32：max|v| / 元素最大值，再舍入。",
          choices=(Choice("e8m0", "E8M0 (power of two)", "E8M0（2 的幂）"),
                   Choice("fp8_e4m3", "FP8 E4M3", "FP8 E4M3"), Choice("fp32", "FP32", "FP32")), group="Quantization"),
    Param("role", "choice", "activation", "DeepSeek-V3 tiles for", "DeepSeek-V3 的分块对象",
          "DeepSeek-V3 scales activations per 1 × 128 and weights per 128 × 128.",
          "DeepSeek-V3 对激活每 1 × 128 一个缩放因子，对权重每 128 × 128 一个。", choices=ROLES, group="Quantization"),
    Param("amax_history", "int", 0, "FP8 per tensor: amax history", "每张量 FP8：amax 历史长度",
          "0: current scaling (this tensor's max). n > 0: delayed scaling from the largest max of the n steps before.",
          "0：即时缩放（用本张量的最大值）。n > 0：延迟缩放，取之前 n 步中最大的最大值。", lo=0, hi=64,
          group="Quantization"),
    Param("amax_growth", "float", 1.0, "Growth per step", "每步增长倍数",
          "How the tensor's max grew at each of those steps (> 1: the delayed scale is too small and values saturate).",
          "之前每一步张量最大值的增长倍数（> 1：延迟缩放因子偏小，数值饱和）。", lo=0.25, hi=4.0, log=True,
          group="Quantization"),
    Param("row_shown", "int", -1, "Row drawn (−1: the largest value's)", "绘制的行（−1：最大值所在行）",
          "Which row the before/after plot shows; −1 picks the row holding the largest |value|.",
          "前后对比图显示哪一行；−1 表示 |数值| 最大的那一行。", lo=-1, hi=63, group="Quantization"),
]


def _custom(values: Mapping[str, Any]) -> fl.FloatFormat:
    specials = values["custom_specials"]
    e = values["custom_exponent"]
    m = values["custom_mantissa"]
    bias = (1 << (e - 1)) - 1 + values["custom_bias_shift"]
    return fl.custom_format(e, m, bias=bias, specials=None if specials == "ieee" else specials,
                            signed=values["custom_signed"])


def _custom_problems(values: Mapping[str, Any]) -> list[str]:
    e, m, specials = values["custom_exponent"], values["custom_mantissa"], values["custom_specials"]
    if specials == "fnuz" and not values["custom_signed"]:
        return [tr("custom_specials: FNUZ keeps its NaN where −0 would be, so it needs the sign bit")]
    if specials == "fn" and e + m < 2:
        return [tr("custom_specials: 'fn' needs at least 2 exponent and mantissa bits together")]
    lo, hi = fl.custom_bias_range(e, m, None if specials == "ieee" else specials)
    standard = (1 << (e - 1)) - 1
    if not lo <= standard + values["custom_bias_shift"] <= hi:
        return [tr("custom_bias_shift: with E = {e} and M = {m} the shift must be from {lo} to {hi}").format(
            e=e, m=m, lo=max(lo - standard, -8), hi=min(hi - standard, 8))]
    return []


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if not any(values[f"show_{n}"] for n in ROW_KEYS):
        problems.append(tr("show_*: select at least one format"))
    custom_problems = _custom_problems(values)
    problems += custom_problems
    try:
        fmt = _pattern_format(values) if not (custom_problems and values["pattern_format"] == "custom") else fl.FP64
        parsed = fl.parse_value(values["value"], fmt)
        shown = [_format(n, values) for n in ROW_KEYS if values[f"show_{n}"] and not (n == "custom" and custom_problems)]
        if parsed.kind == "nan" and not any(f.has_nan for f in shown):
            problems.append(tr("value: no selected format can store NaN"))
    except fl.InputError as error:
        problems.append(tr("value: {reason}").format(reason=_input_error_text(error)))
    return problems


PRESETS = [
    Preset("point_one", "0.1 is not exact in any binary format", "0.1 在任何二进制格式里都不精确",
           {"value": "0.1"}),
    Preset("fp16_vs_bf16", "FP16 vs BF16: 70000 overflows FP16, not BF16", "FP16 与 BF16：70000 让 FP16 上溢，BF16 不会",
           {"value": "70000", "show_fp16": True, "show_bf16": True, "show_fp32": True, "show_fp8_e4m3": False}),
    Preset("tiny_gradient", "A tiny gradient underflows in FP16", "很小的梯度在 FP16 中下溢为 0",
           {"value": "2e-8", "show_fp16": True, "show_bf16": True, "show_fp32": True}),
    Preset("loss_scaling", "Loss scaling: 2^16 rescues FP16 gradients", "损失缩放：乘以 2^16 挽救 FP16 梯度",
           {"grad_median": 1e-7, "grad_spread": 1.5, "scale_exp": 16, "show_fp16": True, "show_bf16": True,
            "show_fp8_e4m3": True, "show_fp8_e5m2": True}),
    Preset("fp8_ties", "FP8 E4M3: a tie goes to the even neighbour", "FP8 E4M3：恰在中点时舍入到偶数",
           {"value": "1.0625", "density_format": "fp8_e4m3", "show_fp8_e4m3": True}),
    Preset("fp4_grid", "FP4 E2M1: all 15 values", "FP4 E2M1：全部 15 个值",
           {"value": "2.5", "density_format": "fp4_e2m1", "show_fp4_e2m1": True, "show_fp8_e4m3": False}),
    Preset("fnuz_vs_ocp", "FP8: OCP E4M3 vs E4M3FNUZ", "FP8：OCP E4M3 与 E4M3FNUZ",
           {"value": "-0", "show_fp32": False, "show_fp16": False, "show_bf16": False, "show_fp8_e4m3": True,
            "show_fp8_e4m3fnuz": True, "show_fp8_e5m2": True, "show_fp8_e5m2fnuz": True,
            "density_format": "fp8_e4m3fnuz"}),
    Preset("e8m0_scale", "E8M0: the MX scale is a power of two", "E8M0：MX 缩放因子是 2 的幂",
           {"value": "3", "show_fp32": False, "show_fp16": False, "show_bf16": False, "show_fp8_e4m3": False,
            "show_e8m0": True, "show_fp4_e2m1": True, "density_format": "e8m0", "density_log": True}),
    Preset("mx_elements", "The MX element formats: FP8, FP6, FP4", "MX 元素格式：FP8、FP6、FP4",
           {"value": "5.3", "show_fp32": False, "show_fp16": False, "show_bf16": False, "show_fp8_e4m3": True,
            "show_fp8_e5m2": True, "show_fp6_e2m3": True, "show_fp6_e3m2": True, "show_fp4_e2m1": True,
            "density_format": "fp6_e2m3"}),
    Preset("one_outlier", "One outlier vs a per-tensor scale", "一个离群值与每张量缩放",
           {"view": "scaling", "tensor_kind": "outliers", "outliers": 1, "outlier_size": 1000.0, "recipe": "fp8_tensor"}),
    Preset("mxfp4", "MXFP4: 32 values share a power of two", "MXFP4：32 个值共享一个 2 的幂",
           {"view": "scaling", "tensor_kind": "outliers", "outliers": 2, "outlier_size": 100.0, "recipe": "mxfp4"}),
    Preset("nvfp4", "NVFP4: 16 values share an E4M3 scale", "NVFP4：16 个值共享一个 E4M3 缩放因子",
           {"view": "scaling", "tensor_kind": "outliers", "outliers": 2, "outlier_size": 100.0, "recipe": "nvfp4"}),
    Preset("activation_channels", "LLM activations: a few huge channels", "大模型激活：少数巨大通道",
           {"view": "scaling", "tensor_kind": "activation", "outliers": 3, "outlier_size": 50.0, "recipe": "custom",
            "element": "fp8_e4m3", "granularity": "row", "scale_format": "fp32"}),
    Preset("deepseek_fp8", "DeepSeek-V3: FP8 with 1 × 128 tiles", "DeepSeek-V3：每 1 × 128 一个缩放因子的 FP8",
           {"view": "scaling", "tensor_kind": "activation", "outliers": 3, "outlier_size": 50.0,
            "recipe": "deepseek_fp8"}),
    Preset("delayed_scaling", "Delayed scaling: a growing tensor saturates", "延迟缩放：增长的张量会饱和",
           {"view": "scaling", "tensor_kind": "gaussian", "recipe": "fp8_tensor", "amax_history": 16,
            "amax_growth": 1.5}),
    Preset("nan_in_block", "A NaN or inf poisons its block's scale", "NaN 或 inf 会污染所在块的缩放因子",
           {"view": "scaling", "tensor_kind": "gaussian", "inject": "inf", "recipe": "mxfp8_e4m3"}),
    Preset("tiny_tensor", "A tiny tensor: the scale's own range", "极小的张量：缩放因子自身的范围",
           {"view": "scaling", "tensor_kind": "gaussian", "tensor_std": 1e-38, "recipe": "mxfp8_e4m3"}),
]


def _pattern_format(values: Mapping[str, Any]) -> fl.FloatFormat:
    return _format(values["pattern_format"], values)


def _format(name: str, values: Mapping[str, Any]) -> fl.FloatFormat:
    if name == "custom":
        return _custom(values)
    return fl.FORMATS[name]


PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS)


# ---- the formats view: compute ------------------------------------------------------------------


@dataclass(frozen=True)
class FormatRow:
    """One format's view of the input: the format, its description (None if it cannot store the
    input, with ``problem`` saying why), and its range."""

    key: str
    fmt: fl.FloatFormat
    description: fl.Description | None
    problem: str
    range: fl.RangeInfo


@dataclass(frozen=True)
class FloatsView:
    """What the formats view draws."""

    parsed: fl.ParsedInput
    rows: tuple[FormatRow, ...]
    density_values: np.ndarray  # (n,) every finite value of the density format
    pattern_kinds: np.ndarray  # (2**bits,) int8: index into fl.KINDS of every bit pattern of the density format
    neighbours: fl.Neighbours | None
    scaling: tuple[fl.ScalingStats, ...]  # one per row, same order
    histogram: fl.LogHistogram


@lru_cache(maxsize=16)
def _density_values(name: str) -> np.ndarray:
    return fl.representable_values(fl.FORMATS[name])


@lru_cache(maxsize=16)
def _pattern_kinds(name: str) -> np.ndarray:
    """The kind (index into fl.KINDS) of every bit pattern of a format of at most 8 bits."""
    fmt = fl.FORMATS[name]
    values = fl.decode_array(np.arange(1 << fmt.total_bits), fmt)
    magnitude = np.abs(values)
    kinds = np.full(values.shape, fl.KINDS.index("normal"), dtype=np.int8)
    kinds[(magnitude < fmt.smallest_normal) & (magnitude > 0)] = fl.KINDS.index("subnormal")
    kinds[magnitude == 0] = fl.KINDS.index("zero")
    kinds[np.isinf(values)] = fl.KINDS.index("inf")
    kinds[np.isnan(values)] = fl.KINDS.index("nan")
    kinds.setflags(write=False)
    return kinds


def _samples(median: float, spread: float):
    return fl.lognormal_samples(median, spread, n=SAMPLES, seed=0)


@lru_cache(maxsize=64)
def _range_info(fmt: fl.FloatFormat) -> fl.RangeInfo:
    return fl.range_info(fmt)


@lru_cache(maxsize=8)
def _histogram(median: float, spread: float, scale_exp: int) -> fl.LogHistogram:
    samples = _samples(median, spread)
    centre = math.log10(median) + scale_exp * math.log10(2)
    half = max(4 * spread, 2.0)
    return fl.log_histogram(samples, HISTOGRAM_BINS, centre - half, centre + half, scale_exp=scale_exp)


@lru_cache(maxsize=256)
def _scaling_stats(median: float, spread: float, fmt: fl.FloatFormat, scale_exp: int) -> fl.ScalingStats:
    return fl.scaling_stats(_samples(median, spread), fmt, scale_exp)


def compute_formats(values: Mapping[str, Any]) -> FloatsView:
    pattern = _pattern_format(values)
    parsed = fl.parse_value(values["value"], pattern)
    keys = [n for n in ROW_KEYS if values[f"show_{n}"]]
    rows = []
    for key in keys:
        fmt = _format(key, values)
        try:
            description = fl.describe(parsed, fmt)  # a pattern as is in its own format; NaN stays NaN in the others
            problem = ""
        except fl.InputError as error:
            description, problem = None, _input_error_text(error)
        except ValueError as error:
            description, problem = None, str(error)
        rows.append(FormatRow(key, fmt, description, problem, _range_info(fmt)))
    density = fl.FORMATS[values["density_format"]]
    near = None
    if parsed.kind in ("number", "bits") and parsed.value is not None and math.isfinite(parsed.value):
        try:
            near = fl.neighbours(parsed if parsed.kind == "number" else parsed.value, density)
        except ValueError:
            near = None
    median, spread, k = values["grad_median"], values["grad_spread"], values["scale_exp"]
    scaling = tuple(_scaling_stats(median, spread, row.fmt, k) for row in rows)
    return FloatsView(parsed, tuple(rows), _density_values(density.name), _pattern_kinds(density.name), near, scaling,
                      _histogram(median, spread, k))


# ---- the block-scaling view: compute -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ScalingView:
    """What the block-scaling view draws: the tensor (2-D), its quantization under the chosen
    recipe (``main``) and under the four side-by-side recipes (``side``, in SIDE_BY_SIDE order),
    the row drawn, and the amax history used by delayed per-tensor scaling (empty: current)."""

    tensor: np.ndarray
    main: fl.Quantized
    main_label: str
    side: tuple[fl.Quantized, ...]
    row: int
    amax_history: tuple[float, ...]


def _tensor_key(values: Mapping[str, Any]) -> tuple:
    v = values
    if v["tensor_kind"] == "typed":
        return ("typed", v["typed_values"])
    return (v["tensor_kind"], v["tensor_rows"], v["tensor_cols"], v["tensor_std"], v["outliers"], v["outlier_size"],
            v["tensor_seed"], v["inject"])


@lru_cache(maxsize=8)
def _tensor(key: tuple) -> np.ndarray:
    """The tensor (always 2-D: typed values are one row, or the rows typed)."""
    if key[0] == "typed":
        tensor = fl.parse_tensor(key[1], name="typed_values", limit=TYPED_LIMIT)
        tensor = tensor.reshape(1, -1) if tensor.ndim == 1 else tensor
    else:
        kind, rows, cols, std, outliers, size, seed, inject = key
        tensor = fl.example_tensor(kind, rows, cols, std=std, outliers=outliers, outlier_size=size, seed=seed)
        if inject == "nan":
            tensor[0, cols // 3] = np.nan
        elif inject == "inf":
            tensor[0, cols // 3] = np.inf
        elif inject == "zeros":
            tensor[0, :min(128, cols)] = 0.0
    tensor.setflags(write=False)
    return tensor


def _history(amax_now: float, length: int, growth: float) -> tuple[float, ...]:
    """The amax of the ``length`` steps before this one, the tensor having grown by ``growth`` per step."""
    if length == 0 or not math.isfinite(amax_now) or amax_now == 0:
        return ()
    with np.errstate(over="ignore", under="ignore"):
        history = amax_now / np.power(growth, np.arange(1, length + 1, dtype=np.float64))
    return tuple(float(a) for a in history if math.isfinite(a))


@lru_cache(maxsize=32)
def _quantized(key: tuple, recipe: str, custom: tuple | None, role: str, history: tuple[float, ...]) -> fl.Quantized:
    tensor = _tensor(key)
    if custom is not None:
        element, granularity, block, scale_format = custom
        return fl.quantize(tensor, element, scaling=granularity, block_size=block, scale_format=scale_format)
    return fl.quantize_recipe(tensor, recipe, amax_history=history if recipe == "fp8_tensor" and history else None,
                              role=role)


def compute_scaling(values: Mapping[str, Any]) -> ScalingView:
    v = values
    key = _tensor_key(v)
    tensor = _tensor(key)
    finite = np.abs(tensor[np.isfinite(tensor)])
    amax = float(finite.max()) if finite.size else 0.0
    history = _history(amax, v["amax_history"], v["amax_growth"])
    if v["recipe"] == "custom":
        custom = (v["element"], v["granularity"], int(v["block_size"]), v["scale_format"])
        main = _quantized(key, "custom", custom, v["role"], ())
        label = tr("Custom: {element}, one {scale} scale {per}").format(
            element=fl.FORMATS[v["element"]].label, scale=_scale_label(v["scale_format"]),
            per=_granularity_text(v["granularity"], int(v["block_size"])))
    else:
        main = _quantized(key, v["recipe"], None, v["role"], history)
        label = _recipe_label(v["recipe"])
    side = tuple(_quantized(key, name, None, v["role"], history) for name in SIDE_BY_SIDE)
    if v["row_shown"] < 0:  # the row of the largest finite |value|: where an outlier does its damage
        magnitude = np.where(np.isfinite(tensor), np.abs(tensor), -1.0)
        row = int(np.argmax(magnitude.max(axis=1)))
    else:
        row = min(v["row_shown"], tensor.shape[0] - 1)
    return ScalingView(tensor, main, label, side, row, history)


def _scale_label(name: str) -> str:
    return "E8M0" if name == "e8m0" else fl.FORMATS[name].label


def _granularity_text(granularity: str, block: int) -> str:
    return {"tensor": tr("per tensor"), "row": tr("per row"), "block": tr("per {n} values").format(n=block),
            "tile": tr("per {n} × {n} tile").format(n=block)}[granularity]


def compute_floats(values: Mapping[str, Any]) -> FloatsView | ScalingView:
    """The view the values ask for."""
    if values["view"] == "scaling":
        return compute_scaling(values)
    return compute_formats(values)


# ---- text helpers --------------------------------------------------------------------------------


def _format_tooltip(fmt: fl.FloatFormat) -> str:
    return (f"{pick(fmt.usage_en, fmt.usage_zh)}\n{pick(fmt.standard_en, fmt.standard_zh)}"
            f"\ntorch: {pick(fmt.torch_en, fmt.torch_zh)}")


def _number(value: float | None) -> str:
    """A value for the table: exact-looking, never 'nan' for a missing number."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:.10g}"


def _share(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.1%}" if value >= 0.001 else "<0.1%"


def _short(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}g}"


ZOOM_Y_RANGE = (-1.0, 4.2)  # ticks at y = 0, the caption (up to three lines) in the space above them
ZOOM_X_RANGE = (-1.5, 2.5)  # in units of the gap between the input's neighbours: lower at 0, upper at 1
EXACT_SHOWN = 32  # longer exact decimals (FP64) show 17 digits on the strip and in full in the tooltip


# ---- bit strips ------------------------------------------------------------------------------------


class BitCells(QWidget):
    """A row of bit cells, most significant first, coloured sign / exponent / mantissa (E8M0: no
    sign or mantissa cells); a cell is filled when its bit is 1. Click a cell (or move with arrow keys
    and press Space) to flip it: ``flipped(index)`` reports the bit index, 0 = least significant."""

    flipped = Signal(int)

    def __init__(self, fmt: fl.FloatFormat, style):
        super().__init__()
        self.style_ = style
        self.bits = 0
        self.setFocusPolicy(Qt.StrongFocus)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)
        self.gap = 4
        self.font_ = QFont("monospace")
        self.font_.setStyleHint(QFont.Monospace)
        self.font_.setPointSizeF(style.point_size * 0.9)
        self.index_font = QFont(self.font_)
        self.index_font.setPointSizeF(style.point_size * 0.7)
        self._digits = {digit: QStaticText(digit) for digit in "01"}
        for label in self._digits.values():
            label.prepare(font=self.font_)
        self.set_format(fmt)

    def set_format(self, fmt: fl.FloatFormat) -> None:
        """Another format (the custom one changed): its cells, redrawn."""
        self.fmt = fmt
        self.bits &= (1 << fmt.total_bits) - 1
        self.cursor = fmt.total_bits - 1
        self.updateGeometry()
        self.update()

    def field(self, index: int) -> str:
        if index == self.fmt.total_bits - 1 and self.fmt.signed:
            return "sign"
        return "mantissa" if index < self.fmt.mantissa_bits else "exponent"

    def text(self) -> str:
        """The bits as drawn, most significant first."""
        return format(self.bits, f"0{self.fmt.total_bits}b")

    def set_bits(self, bits: int) -> None:
        if bits != self.bits:
            self.bits = bits
            self.update()

    def _gaps_before(self, position: int) -> int:
        """Gaps left of the cell at ``position`` (0 = sign): after the sign and after the exponent."""
        return ((position >= 1 and self.fmt.signed)
                + (position >= self.fmt.total_bits - self.fmt.mantissa_bits and self.fmt.mantissa_bits > 0))

    def cell_rect(self, index: int) -> QRect:
        key = (self.width(), self.height(), self.fmt.total_bits, self.fmt.mantissa_bits, self.fmt.signed)
        if self._rects_key != key:
            self._rects_key = key
            self._rects = [self._cell_rect(i) for i in range(self.fmt.total_bits)]
        return QRect(self._rects[index])

    _rects_key: tuple = ()
    _rects: list = []

    def _cell_rect(self, index: int) -> QRect:
        n = self.fmt.total_bits
        widest = 1.25 if n <= 16 else 1.2  # 32 bits leave room beside them for FP32's exact 0.1 on one line
        width = min((self.width() - 2 * self.gap) / n, self.style_.point_size * widest)
        position = n - 1 - index
        left = position * width + self._gaps_before(position) * self.gap
        top = self._index_height()
        return QRect(int(left), top, max(int(width) - 1, 1), self.height() - 1 - top)

    def _index_height(self) -> int:
        return int(self.style_.point_size * 1.1)

    def labelled_indices(self) -> list[int]:
        """The bit indices written above the cells: where each field starts and ends."""
        n, m = self.fmt.total_bits, self.fmt.mantissa_bits
        return sorted({n - 1, n - 2, m, m - 1, 0} & set(range(n)), reverse=True)

    def index_at(self, point: QPoint) -> int | None:
        for index in range(self.fmt.total_bits):
            if self.cell_rect(index).adjusted(0, 0, 1, 1).contains(point):
                return index
        return None

    def sizeHint(self) -> QSize:
        pt = self.style_.point_size
        widest = 1.25 if self.fmt.total_bits <= 16 else 1.2
        return QSize(int(self.fmt.total_bits * pt * widest + 2 * self.gap + 1), int(pt * 1.8) + self._index_height())

    def minimumSizeHint(self) -> QSize:
        pt = self.style_.point_size
        return QSize(int(self.fmt.total_bits * pt * 0.85 + 2 * self.gap + 1), int(pt * 1.8) + self._index_height())

    def paintEvent(self, event) -> None:
        """Each cell is one of six tiles (field x digit) and the bit indices one layer, drawn once
        per size: a new pattern costs a blit per cell, not a rectangle, a pen and a glyph each."""
        self._prepare()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._labels)
        n, tiles, rects, fields = self.fmt.total_bits, self._tiles, self._rects, self._fields
        for position, digit in enumerate(self.text()):
            index = n - 1 - position
            painter.drawPixmap(rects[index].topLeft(), tiles[fields[index], digit])
        if self.hasFocus():
            painter.setPen(QPen(QColor(self.style_.foreground), 2, Qt.DotLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(self.cell_rect(self.cursor).adjusted(-1, -1, 1, 1))
        painter.end()

    _tiles_key: tuple = ()

    def _prepare(self) -> None:
        ratio = self.devicePixelRatioF()
        rect = self.cell_rect(0)
        key = (self.width(), self.height(), ratio, self.fmt.total_bits, self.fmt.mantissa_bits, self.fmt.signed)
        if self._tiles_key == key:
            return
        self._tiles_key = key
        self._fields = [self.field(i) for i in range(self.fmt.total_bits)]
        ink = {"1": QColor("#FFFFFF"), "0": QColor(self.style_.foreground)}
        self._tiles = {}
        for field, color in FIELD_COLORS.items():
            for digit in "01":
                tile = QPixmap(int((rect.width() + 1) * ratio), int((rect.height() + 1) * ratio))
                tile.setDevicePixelRatio(ratio)
                tile.fill(Qt.transparent)
                painter = QPainter(tile)
                painter.setFont(self.font_)
                painter.setPen(QPen(QColor(color), 1))
                painter.setBrush(QColor(color) if digit == "1" else Qt.NoBrush)
                painter.drawRect(QRect(0, 0, rect.width(), rect.height()))
                painter.setPen(ink[digit])
                label = self._digits[digit]  # laid out once: drawText would shape the digit at every paint
                size = label.size()
                painter.drawStaticText(QPoint(int(rect.width() / 2 - size.width() / 2 + 1),
                                              int(rect.height() / 2 - size.height() / 2 + 1)), label)
                painter.end()
                self._tiles[field, digit] = tile
        self._labels = QPixmap(max(int(self.width() * ratio), 1), max(int(self.height() * ratio), 1))
        self._labels.setDevicePixelRatio(ratio)
        self._labels.fill(Qt.transparent)
        painter = QPainter(self._labels)
        painter.setFont(self.index_font)
        painter.setPen(QColor(self.style_.muted))
        metrics, free_from = painter.fontMetrics(), float("-inf")
        for index in self.labelled_indices():  # most significant first, left to right
            cell, text = self.cell_rect(index), str(index)
            half = metrics.horizontalAdvance(text) / 2 + 2
            if cell.center().x() - half < free_from:
                continue  # narrow cells (presentation mode): "31" and "30" would run into "3130"
            free_from = cell.center().x() + half
            painter.drawText(QRect(cell.left() - 8, 0, cell.width() + 16, self._index_height()),
                             Qt.AlignHCenter | Qt.AlignBottom, text)
        painter.end()

    def mousePressEvent(self, event) -> None:
        index = self.index_at(event.position().toPoint())
        if event.button() == Qt.LeftButton and index is not None:
            self.cursor = index
            self.flipped.emit(index)

    def keyPressEvent(self, event) -> None:
        key, n = event.key(), self.fmt.total_bits
        if key in (Qt.Key_Left, Qt.Key_Right):
            self.cursor = (self.cursor + (1 if key == Qt.Key_Left else -1)) % n
            self.update()
        elif key in (Qt.Key_Space, Qt.Key_Return, Qt.Key_Enter):
            self.flipped.emit(self.cursor)
        else:
            super().keyPressEvent(event)

    def event(self, event) -> bool:
        if event.type() == QEvent.ToolTip:
            index = self.index_at(event.position().toPoint() if hasattr(event, "position") else event.pos())
            if index is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), tr("bit {index} ({field}): click to flip").format(
                    index=index, field=words(self.field(index))), self)
            return True
        return super().event(event)


class BitStrip(QWidget):
    """One format: its name, its bit cells and the decoded value with the formula; a flipped bit
    becomes the new input (as a hex pattern read in this format). Built once per format and shown
    or hidden; the custom strip takes a new format in place."""

    def __init__(self, panel: "FloatsPanel", key: str, fmt: fl.FloatFormat):
        super().__init__()
        self.panel, self.key = panel, key
        st = panel.style_
        row = QHBoxLayout()
        row.setSpacing(1)
        row.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel()
        self.name.setMinimumWidth(int(st.point_size * 10))
        row.addWidget(self.name)
        self.cells = BitCells(fmt, st)
        self.cells.setObjectName(f"bits_{key}")
        self.cells.flipped.connect(self.flip)
        row.addWidget(self.cells)
        row.addSpacing(8)
        self.value = QLabel()  # plain text: rich text costs a document layout on every change
        self.value.setTextFormat(Qt.PlainText)
        # not selectable: a selectable label lays its text out as a rich-text document at every change
        self.value.setFont(st.font(1.0, bold=True))
        self.row = row
        self.formula = QLabel()
        self.formula.setTextFormat(Qt.PlainText)
        self.formula.setStyleSheet(f"color: {st.muted};")
        # at fixed heights (two lines; the formula of a wide format two, else one): a new value is
        # repainted where it is, never a re-layout of the strips, the table and the window above them
        self.value_box = OneLine(self.value, lines=2)
        self.formula_box = OneLine(self.formula, lines=2 if key in ("fp32", "tf32", "fp64", "custom") else 1)
        if panel.style_.presentation:  # fewer characters to a line
            self.value_box = OneLine(self.value, lines=3 if key in ("fp64", "custom") else 2)
        self.setSizePolicy(QSizePolicy.Preferred, QSizePolicy.Fixed)  # scrolled, never squeezed: a new row moves the others
        self.column = QVBoxLayout(self)
        self.column.setContentsMargins(0, 1, 0, 1)
        self.column.setSpacing(0)
        self.column.addLayout(row)
        self._wide = None
        self.set_format(fmt)

    def set_format(self, fmt: fl.FloatFormat) -> None:
        self.fmt = fmt
        self.name.setText(f"<b>{html.escape(_label(self.key) if self.key != 'custom' else fmt.label)}</b>")
        self.name.setToolTip(_format_tooltip(fmt))
        self.cells.set_format(fmt)
        # 64 bits (on a projector 32) leave no room beside them: the value goes below the cells
        wide = fmt.total_bits > (16 if self.panel.style_.presentation else 32)
        if wide != self._wide:
            self._wide = wide
            for widget in (self.value_box, self.formula_box):
                self.row.removeWidget(widget)
                self.column.removeWidget(widget)
            stretch = self.row.itemAt(self.row.count() - 1)
            if stretch is not None and stretch.spacerItem() is not None and stretch.spacerItem().expandingDirections():
                self.row.removeItem(stretch)
            if wide:
                self.row.addStretch(1)
                self.column.addWidget(self.value_box)
            else:
                self.row.addWidget(self.value_box, 1)
            self.column.addWidget(self.formula_box)
            # a fixed height: when a strip comes or goes the others move, they are never squeezed and re-grown
            self.setFixedHeight(self.column.sizeHint().height())

    def flip(self, index: int) -> None:
        bits = self.cells.bits ^ (1 << index)
        digits = (self.fmt.total_bits + 3) // 4
        self.panel.set_values({"value": f"0x{bits:0{digits}x}", "pattern_format": self.key})

    def display(self, row: FormatRow) -> None:
        d = row.description
        if d is None:
            text = tr("cannot store this input: {reason}").format(reason=row.problem)
            if self.value.text() != text:
                self.value.setText(text)
                self.formula.setText("")
            return
        self.cells.set_bits(d.bits)
        exact = _number(d.value) if d.exact is None else d.exact
        shown = exact if len(exact) <= EXACT_SHOWN else _shortened(d.exact_scientific)
        text = f"=\u00a0{shown}  ({words(d.kind)}, {d.hex_string})"
        if self.value.text() != text:
            self.value.setText(text)
            self.value.setToolTip(tr("exact stored value: {value}").format(value=exact) if shown != exact else "")
        formula = _formula_text(d, self.fmt)
        if self.formula.text() != formula:
            self.formula.setText(formula)


def _shortened(scientific: str) -> str:
    """The leading digits of an exact scientific decimal with an ellipsis: never a rounded value."""
    mantissa, _, exponent = scientific.partition("e")
    return f"{mantissa[:EXACT_SHOWN - 10]}…e{exponent}"


_SUPERSCRIPT = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")


def _formula_text(d: fl.Description, fmt: fl.FloatFormat | None = None) -> str:
    """(−1)^s × 2^(e − bias) × 1.m with the numbers in, as plain text with Unicode superscripts
    (cheaper to lay out and paint on every change than rich text)."""
    f = d.formula
    if d.kind in ("inf", "nan"):
        if fmt is not None and fmt.specials == "fnuz":
            return tr("sign 1 and every other bit 0 (where −0 would be): NaN in FNUZ formats")
        return tr("exponent all ones: {kind}").format(kind=words(d.kind))
    exponent = f"{f.exponent_field}−{f.bias}" if d.kind == "normal" else f"1−{f.bias}"
    mantissa = f"{f.leading_bit}.{d.mantissa_binary}" if d.mantissa_binary else f"{f.leading_bit}"
    up = lambda text: str(text).translate(_SUPERSCRIPT)  # noqa: E731
    if fmt is not None and not fmt.signed:  # E8M0: no sign, no mantissa: a power of two
        return f"2{up(exponent)} × {mantissa}₂ = 2{up(f.exponent)}"
    return (f"(−1){up(f.sign_bit)} × 2{up(exponent)} × {mantissa}₂"
            f" = {f.sign_factor} × 2{up(f.exponent)} × {f.significand:.17g}")


def _specials_text(fmt: fl.FloatFormat) -> str:
    """Where a format keeps its special values, in a few words."""
    if fmt.specials == "fnuz":
        return tr("0x80 is NaN (no −0), no ±inf")
    if not fmt.signed:
        return tr("0xff is NaN; no sign, no zero, no inf")
    if fmt.specials == "fn":
        return tr("only S.1…1 is NaN; no ±inf")
    if fmt.specials == "none":
        return tr("no inf, no NaN: every pattern is a number")
    return tr("exponent all ones: ±inf and NaN")


# ---- the panel -------------------------------------------------------------------------------------


class Dots(pg.GraphicsObject):
    """Points drawn as round dots of a fixed pixel size: one antialiased sprite, stamped at every point
    in one ``drawPixmapFragments`` call (a ScatterPlotItem keeps a record per point and costs ~0.5 ms
    per update of a few hundred; antialiased ``drawPoints`` ~0.8 ms per paint). ``data()`` gives (x, y)."""

    def __init__(self, size: float, color: str, symbol: str = "o"):
        super().__init__()
        self.size, self.color, self.symbol = size, QColor(color), symbol  # symbol: "o" dot, "x" cross, "t" triangle
        self._x = self._y = np.zeros(0)
        self._bounds = QRectF()
        self._sprite: QPixmap | None = None
        self._fragments = pg.Qt.internals.PrimitiveArray(QPainter.PixmapFragment, 10)

    def setData(self, x, y) -> None:
        self.prepareGeometryChange()
        self._x, self._y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if self._x.size:
            x0, y0 = float(self._x.min()), float(self._y.min())
            self._bounds = QRectF(x0, y0, float(self._x.max()) - x0, float(self._y.max()) - y0)
        else:
            self._bounds = QRectF()
        self.update()

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        return self._x, self._y

    def boundingRect(self) -> QRectF:
        if not self._x.size:
            return QRectF()
        pad_x, pad_y = (self.size / 2 + 1) * (self.pixelWidth() or 0), (self.size / 2 + 1) * (self.pixelHeight() or 0)
        return self._bounds.adjusted(-pad_x, -pad_y, pad_x, pad_y)

    def _sprite_for(self, ratio: float) -> QPixmap:
        if self._sprite is None or self._sprite.devicePixelRatio() != ratio:
            side = int(math.ceil(self.size)) + 2
            sprite = QPixmap(int(side * ratio), int(side * ratio))
            sprite.setDevicePixelRatio(ratio)
            sprite.fill(Qt.transparent)
            painter = QPainter(sprite)
            painter.setRenderHint(QPainter.Antialiasing, True)
            c, r = side / 2, self.size / 2
            if self.symbol == "x":
                painter.setPen(QPen(self.color, max(self.size / 5, 1.5)))
                painter.drawLine(QPointF(c - r * 0.7, c - r * 0.7), QPointF(c + r * 0.7, c + r * 0.7))
                painter.drawLine(QPointF(c - r * 0.7, c + r * 0.7), QPointF(c + r * 0.7, c - r * 0.7))
            else:
                painter.setPen(Qt.NoPen)
                painter.setBrush(self.color)
                if self.symbol == "t":
                    painter.drawPolygon([QPointF(c, c - r), QPointF(c + r, c + r * 0.8), QPointF(c - r, c + r * 0.8)])
                else:
                    painter.drawEllipse(QPointF(c, c), r, r)
            painter.end()
            self._sprite = sprite
        return self._sprite

    def paint(self, painter, option, widget=None) -> None:
        if not self._x.size:
            return
        ratio = widget.devicePixelRatioF() if widget is not None else 1.0
        sprite = self._sprite_for(ratio)
        t = painter.transform()
        self._fragments.resize(self._x.size)
        fragments = self._fragments.ndarray()
        fragments[:, 0] = t.m11() * self._x + t.m21() * self._y + t.dx()
        fragments[:, 1] = t.m12() * self._x + t.m22() * self._y + t.dy()
        fragments[:, 2:4] = 0.0
        fragments[:, 4], fragments[:, 5] = sprite.width(), sprite.height()
        fragments[:, 6:10] = [1 / ratio, 1 / ratio, 0.0, 1.0]  # scale x, scale y, rotation, opacity
        painter.save()
        painter.resetTransform()
        painter.drawPixmapFragments(*self._fragments.drawargs(), sprite)
        painter.restore()


class Marks(pg.GraphicsObject):
    """A few circles of a fixed pixel size, each filled or hollow: ``data`` holds their "x", "y" and
    "brush" (as a ScatterPlotItem's records do), without a ScatterPlotItem's per-update cost."""

    def __init__(self, size: float, color: str):
        super().__init__()
        self.size, self.color = size, QColor(color)
        self.data = {"x": np.zeros(0), "y": np.zeros(0), "brush": []}

    def setData(self, x, y, filled=()) -> None:
        self.prepareGeometryChange()
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        brushes = [pg.mkBrush(self.color) if f else pg.mkBrush(None) for f in filled] or [pg.mkBrush(None)] * x.size
        self.data = {"x": x, "y": y, "brush": brushes}
        self.update()

    def boundingRect(self) -> QRectF:
        x, y = self.data["x"], self.data["y"]
        if not x.size:
            return QRectF()
        pad_x, pad_y = self.size * (self.pixelWidth() or 0), self.size * (self.pixelHeight() or 0)
        return QRectF(float(x.min()) - pad_x, float(y.min()) - pad_y, float(np.ptp(x)) + 2 * pad_x,
                      float(np.ptp(y)) + 2 * pad_y)

    def paint(self, painter, *args) -> None:
        t = painter.transform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.Antialiasing, True)
        painter.setPen(QPen(self.color, 2))
        r = self.size / 2
        for x, y, brush in zip(self.data["x"], self.data["y"], self.data["brush"]):
            centre = t.map(QPointF(float(x), float(y)))
            painter.setBrush(brush)
            painter.drawEllipse(centre, r, r)
        painter.restore()


class RowsArea(QScrollArea):
    """The scrolled area of the strips and the table: it asks for the height of the default rows
    (``reserved``), whatever it holds, so the plots below keep their size when formats come and go."""

    reserved = 0

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.reserved or super().sizeHint().height())

    def show_every_row(self) -> None:
        """As tall as its rows (an export: nothing scrolled out of the picture)."""
        self.setMinimumHeight(self.widget().sizeHint().height() + 2 * self.frameWidth())


def _heat_lut(name: str) -> np.ndarray:
    """256 RGBA entries: 0..253 the colormap, 254 exact zero (grey), 255 NaN or inf (magenta)."""
    lut = pg.colormap.get(name).getLookupTable(0.0, 1.0, 254, alpha=True)
    return np.vstack([lut, [[150, 150, 150, 255]], [NAN_COLOR]]).astype(np.uint8)


def _error_index(q: fl.Quantized, tensor: np.ndarray) -> np.ndarray:
    """The relative error |q - v| / |v| of each value as a colour index (1e-4 .. 1; an exact value,
    0 included, is the exact-zero grey; NaN magenta)."""
    shape = tensor.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(q.error.reshape(shape)) / np.abs(tensor)
    rel = np.where(np.isfinite(tensor) & (tensor != 0), np.minimum(rel, 1.0), 0.0)
    rel[np.isnan(q.dequantized.reshape(shape))] = np.nan
    return _log_index(rel, -3.0, 0.0)


def _log_index(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """log10|values| mapped to 0..253 over [lo, hi]; 254 where 0, 255 where NaN or inf."""
    magnitude = np.abs(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(magnitude)
        index = np.clip((logs - lo) * (253.0 / max(hi - lo, 1e-9)), 0, 253)
    index = np.nan_to_num(index, nan=0.0, posinf=253.0, neginf=0.0).astype(np.uint8)
    index[magnitude == 0] = 254
    index[~np.isfinite(values)] = 255
    return index


class FloatsPanel(Panel):
    NAME = "floats"
    TITLE_EN = "Floats"
    TITLE_ZH = "浮点格式"
    PARAMS = PARAMS
    BENCH_SWEEPS = {  # typed decimals, then fp16 bit patterns as a bit click makes them, then the sliders
        "value": [f"{m:.4g}e{e}" for m, e in zip(np.linspace(1.1, 9.9, 30), range(-15, 15))]
        + [f"0x{(0x3c00 ^ (1 << (i % 16))):04x}" for i in range(30)],
        "show_fp64": [True, False] * 30,  # a format shown and hidden: nothing below the rows moves
        "grad_median": (1e-10, 1e2),
        "scale_exp": (-20, 40),
        "outlier_size (scaling, 4096 values)": {"param": "outlier_size", "sweep": (1.0, 1e4), "base": {"view": "scaling"}},
        "tensor_seed (scaling, 4096 values)": {"param": "tensor_seed", "sweep": (0, 59), "base": {"view": "scaling"}},
        "recipe (scaling, 4096 values)": {"param": "recipe", "sweep": [r for r in fl.RECIPES] * 8,
                                          "base": {"view": "scaling"}},
    }
    BENCH_BUDGETS_MS = {"value": 8.0}  # typing a value or flipping a bit
    OPEN_GROUPS = ("View", "Input", "Formats")

    compute = staticmethod(compute_floats)

    def caption(self) -> str:
        v = self.values
        if v["view"] == "scaling":
            if v["tensor_kind"] == "typed":
                tensor = v["typed_values"]
            else:
                shown = ["tensor_std"] + (["outliers", "outlier_size"] if v["tensor_kind"] in ("outliers", "activation")
                                          else []) + (["inject"] if v["inject"] != "none" else [])
                tensor = (f"{self.PARAMS['tensor_kind'].format(v['tensor_kind'])} {v['tensor_rows']} × {v['tensor_cols']} "
                          f"({self.PARAMS.caption(v, shown)})")
            names = ["recipe"] + (["element", "granularity", "block_size", "scale_format"] if v["recipe"] == "custom" else [])
            names += ["amax_history", "amax_growth"] if v["recipe"] == "fp8_tensor" and v["amax_history"] else []
            return f"{self.title()}: {tensor}; " + self.PARAMS.caption(v, names)
        shown = ", ".join(_label(n) for n in ROW_KEYS if v[f"show_{n}"])
        return (f"{self.title()}: {self.PARAMS['value'].label()} = {v['value']} ({shown}); "
                + self.PARAMS.caption(v, ["grad_median", "grad_spread", "scale_exp"]))

    def values_changed(self, names: list[str]) -> None:
        """The controls of the view shown are enabled and their groups open; the recipe's own
        settings disable the custom ones."""
        v = self.values
        if not {"view", "recipe", "tensor_kind"} & set(names) and self._enabled_once:
            return
        self._enabled_once = True
        scaling = v["view"] == "scaling"
        groups = {"Input": not scaling, "Formats": not scaling, "Density": not scaling, "Loss scaling": not scaling,
                  "Tensor": scaling, "Quantization": scaling}
        custom = v["recipe"] == "custom"
        for name, control in self.controls.items():
            group = self.PARAMS[name].group
            enabled = groups.get(group, True)
            if name in ("element", "granularity", "block_size", "scale_format"):
                enabled = enabled and custom
            elif name == "role":
                enabled = enabled and v["recipe"] == "deepseek_fp8"
            elif name == "typed_values":
                enabled = enabled and v["tensor_kind"] == "typed"
            elif name in ("tensor_rows", "tensor_cols", "tensor_std", "tensor_seed", "inject"):
                enabled = enabled and v["tensor_kind"] != "typed"
            elif name in ("outliers", "outlier_size"):
                enabled = enabled and v["tensor_kind"] in ("outliers", "activation")
            control.setEnabled(enabled)
        if "view" in names:
            for group, shown in groups.items():
                box = self.groups.get(group)
                if box is not None and group != "Density" and group != "Loss scaling" and box.isExpanded() != shown:
                    box.expand(animate=False) if shown else box.collapse(animate=False)

    _enabled_once = False

    # ---- figure ---------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        figure = QWidget()
        figure.setAutoFillBackground(True)
        column = QVBoxLayout(figure)
        column.setContentsMargins(8, 8, 8, 8)
        self.pages = QStackedWidget()
        column.addWidget(self.pages)
        self.page_widgets: dict[str, QWidget] = {}  # each view built when first shown
        self.strips: dict[str, BitStrip] = {}  # the strips shown, in order
        return figure

    def page(self, view: str) -> QWidget:
        """The view's page, built the first time it is asked for."""
        widget = self.page_widgets.get(view)
        if widget is None:
            widget = self.page_widgets[view] = getattr(self, f"_build_{view}_page")()
            self.pages.addWidget(widget)
        return widget

    # ---- the formats page -------------------------------------------------------------------
    def _build_formats_page(self) -> QWidget:
        st = self.style_
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        legend = QLabel(" ".join(f"<span style='color:{c}'>■</span> {words(f)}" for f, c in FIELD_COLORS.items()))
        column.addWidget(legend)
        # The strips and the table scroll in their own area: a format shown or hidden changes what is
        # inside it, never the size of the plots below (a resized view regenerates every axis).
        self.rows_area = RowsArea()
        self.rows_area.setObjectName("format_rows")
        self.rows_area.setFrameShape(QFrame.NoFrame)
        self.rows_area.setWidgetResizable(True)
        # a strip wider than the room (FP64 on a projector) scrolls sideways here, never widening the figure
        self.rows_area.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        # always there: a scroll bar that came and went with the fifth format would re-lay out every strip
        self.rows_area.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOn)
        rows = QWidget()
        rows_layout = QVBoxLayout(rows)
        rows_layout.setContentsMargins(0, 0, 4, 0)
        self.strips_box = QWidget()
        self.strips_layout = QVBoxLayout(self.strips_box)
        self.strips_layout.setContentsMargins(0, 0, 0, 0)
        self.all_strips = {key: BitStrip(self, key, _format(key, self.PARAMS.defaults())) for key in ROW_KEYS}
        for strip in self.all_strips.values():
            strip.hide()
            self.strips_layout.addWidget(strip)
        rows_layout.addWidget(self.strips_box)
        self._build_table()
        rows_layout.addWidget(self.table)
        rows_layout.addStretch(1)
        self.rows_area.setWidget(rows)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setObjectName("format_plots")
        self.plots.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.plots.setBackground(st.background)
        self.plots.setMinimumHeight(int(st.point_size * 34))
        self.rows_split = QSplitter(Qt.Vertical)
        self.rows_split.setChildrenCollapsible(False)
        self.rows_split.addWidget(self.rows_area)
        self.rows_split.addWidget(self.plots)
        self.rows_split.setStretchFactor(0, 0)
        self.rows_split.setStretchFactor(1, 1)
        self.rows_area.setMinimumHeight(int(st.point_size * 6))
        per_strip = self.all_strips["fp16"].sizeHint().height() + self.strips_layout.spacing()
        self.rows_area.reserved = (len(SHOWN_BY_DEFAULT) * per_strip + self.table.horizontalHeader().sizeHint().height()
                                   + len(SHOWN_BY_DEFAULT) * self.table.verticalHeader().defaultSectionSize()
                                   + int(st.point_size * 2))
        column.addWidget(self.rows_split, 1)
        self._build_range_plot()
        self._build_density_plot()
        self._build_scaling_plots()
        self._build_row_items()
        for index in (0, 1):  # equal halves across and down, whatever the titles and captions say
            self.plots.ci.layout.setColumnStretchFactor(index, 1)
            self.plots.ci.layout.setColumnPreferredWidth(index, 1)
            self.plots.ci.layout.setRowStretchFactor(index, 1)
            self.plots.ci.layout.setRowPreferredHeight(index, 1)
        plots = (self.range_plot, self.density_plot, self.zoom_plot, self.hist_plot, self.share_plot, self.kinds_plot)
        for plot in plots:  # a long title (a projector's font, Chinese) overhangs its plot, never widens the figure
            never_widens(plot.titleLabel)
        for item in (self.range_bars, self.share_bars, self.density_ticks, self.kinds_image,
                     *(p.titleLabel for p in plots), *(p.getAxis(side) for p in plots for side in ("left", "bottom"))):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged items repaint as a blit
        return page

    def _build_table(self) -> None:
        st = self.style_
        self.table = QTableWidget(len(ROW_KEYS), 6)
        self.table.setObjectName("comparison")
        self.table.setHorizontalHeaderLabels([tr("Format"), tr("Stored value"), tr("Abs. error"), tr("Rel. error"),
                                              tr("Bits"), tr("What happened")])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)  # long cells are elided, whole in their tooltip
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(int(st.point_size * 4))
        header.setSectionResizeMode(QHeaderView.Interactive)
        header.setStretchLastSection(True)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(int(st.point_size * 2.2))
        metrics = self.table.fontMetrics()
        widest = max(metrics.horizontalAdvance(_label(k)) for k in STANDARD)
        # fixed widths for the text a cell usually holds (longer text is elided, whole in its tooltip):
        # no resize pass over the columns at every new value
        samples = ("-0.09997558594", "1.490116119e-09", "1.490116119e-09", "0x3dcccccd")
        for c, width in enumerate([widest] + [metrics.horizontalAdvance(s) for s in samples]):
            self.table.setColumnWidth(c, width + 14)
        for r, key in enumerate(ROW_KEYS):
            for c in range(6):
                self.table.setItem(r, c, QTableWidgetItem("—"))
            self.table.item(r, 0).setText(_label(key))
            self.table.setRowHidden(r, True)

    def _build_range_plot(self) -> None:
        st = self.style_
        self.range_plot = self.plots.addPlot(row=0, col=0)
        st.style_plot(self.range_plot, tr("Range (log2 |x|)"), "", "log2 |x|")
        self.range_plot.showGrid(x=True, y=False, alpha=st.grid_alpha)  # rows: no horizontal grid to regenerate
        self.range_plot.getAxis("left").setStyle(showValues=False)
        self.range_plot.setMouseEnabled(x=True, y=False)
        self.range_bars = pg.BarGraphItem(x0=[0], y=[0], height=0.5, width=[0], brush=None, pen=None)
        self.range_plot.addItem(self.range_bars)
        self.range_marker = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.range_plot.addItem(self.range_marker, ignoreBounds=True)
        self.range_plot.setYRange(0, ROW_SLOTS, padding=0)

    def _build_density_plot(self) -> None:
        st = self.style_
        column = self.plots.addLayout(row=0, col=1)
        self.density_plot = column.addPlot(row=0, col=0)
        self.kinds_plot = column.addPlot(row=0, col=1)
        self.zoom_plot = column.addPlot(row=1, col=0, colspan=2)
        column.layout.setRowStretchFactor(0, 2)
        column.layout.setRowStretchFactor(1, 3)  # the zoom carries a two-line caption
        self.kinds_plot.setMinimumWidth(st.point_size * 13)  # the grid and its key, at a fixed width:
        self.kinds_plot.setMaximumWidth(st.point_size * 13)  # the number line takes the rest
        st.style_plot(self.density_plot, tr("Every representable value"), "", "")
        st.style_plot(self.zoom_plot, tr("Around the input"), "", "")
        st.style_plot(self.kinds_plot, "", "", "")  # its name heads its key: two titles side by side would collide
        self.density_ticks = pg.ScatterPlotItem(symbol="|", size=st.marker_size * 1.4, pen=None,
                                                brush=pg.mkBrush(st.foreground))
        # the zoom works in units of the neighbours' gap (lower at 0, upper at 1): its view and axis
        # stay put while the input moves, only its items and the two tick labels change
        self.zoom_ticks = pg.PlotCurveItem(x=[0.0, 0.0], y=[0.0, 0.0], connect="pairs", pen=st.pen(st.foreground, 2.5))
        self.density_near = Marks(st.marker_size * 1.1, st.error)  # on the whole line
        self.zoom_near = Marks(st.marker_size * 1.4, st.error)
        self.density_input = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.zoom_input = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.zoom_mid = pg.InfiniteLine(angle=90, pen=st.pen(st.muted, 1, Qt.DotLine))
        # inside the plot, not its title: a title that changes width re-lays out every plot
        self.zoom_caption = pg.TextItem(color=st.foreground, anchor=(0.5, 0))
        self.zoom_caption.setFont(st.font(0.9, bold=True))
        self.density_caption = pg.TextItem(color=st.muted, anchor=(0.5, 0))
        self.density_caption.setFont(st.font(0.8))
        for plot, items in ((self.density_plot, (self.density_ticks, self.density_input, self.density_caption)),
                            (self.zoom_plot, (self.zoom_ticks, self.zoom_mid, self.zoom_input, self.zoom_near,
                                            self.zoom_caption))):
            plot.getAxis("left").setStyle(showValues=False)
            plot.getAxis("left").setWidth(int(st.point_size))
            plot.setMouseEnabled(y=False)
            plot.showGrid(x=False, y=False)
            for item in items:
                plot.addItem(item, ignoreBounds=True)
        self.density_plot.addItem(self.density_near, ignoreBounds=True)
        self.zoom_plot.setRange(xRange=ZOOM_X_RANGE, yRange=ZOOM_Y_RANGE, padding=0)
        self.zoom_plot.setMouseEnabled(x=False, y=False)
        self.zoom_plot.getAxis("bottom").setStyle(showValues=False)  # the caption names the neighbours
        self.zoom_caption.setPos(0.5, ZOOM_Y_RANGE[1])
        # every pattern of the density format, coloured by kind: FNUZ's NaN sits where -0 would be
        self.kinds_image = pg.ImageItem(axisOrder="row-major")
        lut = np.array([QColor(KIND_COLORS[k]).getRgb() for k in fl.KINDS], dtype=np.uint8)
        self.kinds_image.setLookupTable(lut)
        self.kinds_image.setLevels((0, len(fl.KINDS) - 1))
        self.kinds_plot.addItem(self.kinds_image)
        self.kinds_plot.invertY(True)
        self.kinds_plot.setMouseEnabled(x=False, y=False)
        self.kinds_plot.showGrid(x=False, y=False)
        self.kinds_plot.hideAxis("left")
        self.kinds_plot.hideAxis("bottom")
        self.kinds_caption = pg.TextItem(color=st.foreground, anchor=(0, 0))
        self.kinds_caption.setFont(st.font(0.7))

    def _build_scaling_plots(self) -> None:
        st = self.style_
        self.hist_plot = self.plots.addPlot(row=1, col=0)
        st.style_plot(self.hist_plot, tr("Gradients × 2^k (log10 |g|)"), tr("share"), "log10 |g × 2^k|")
        # what the lines mean, inside the plot's top-left corner: beside the axis label it ran into the next plot's
        note = pg.TextItem(tr("dashed: smallest subnormal, solid: max"), color=st.muted, anchor=(0, 0))
        note.setFont(st.font(0.75))
        note.setParentItem(self.hist_plot.vb)  # in the view's own pixels: it stays put as the data range moves
        note.setPos(4, 2)
        self.hist_plot.showGrid(x=False, y=True, alpha=st.grid_alpha)  # the x axis moves with every change:
        # its grid (a line per tick of every level) took ~3.5 ms to redraw
        self.hist_curve = pg.PlotCurveItem(x=[0.0, 1.0], y=[0.0], stepMode="center", fillLevel=0,
                                           pen=st.pen(st.foreground, 1.5), brush=pg.mkBrush(st.series[5] + "80"))
        self.hist_curve.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # lines shown beside it: a blit, not a fill
        self.hist_plot.addItem(self.hist_curve)
        self.share_plot = self.plots.addPlot(row=1, col=1)
        keys = "  ".join(f"<span style='color:{c}'>■</span> {words(n)}" for n, c in SHARE_COLORS.items())
        st.style_plot(self.share_plot, tr("After casting"), "", tr("share") + ":  " + keys)
        self.share_plot.setRange(xRange=(0, 1), yRange=(0, ROW_SLOTS), padding=0)
        self.share_plot.showGrid(x=True, y=False, alpha=st.grid_alpha)
        self.share_plot.getAxis("left").setStyle(showValues=False)
        self.share_plot.setMouseEnabled(x=False, y=False)
        self.share_bars = pg.BarGraphItem(x0=[0], y=[0], height=0.6, width=[0], brush=None, pen=None)
        self.share_plot.addItem(self.share_bars)
        self._share_brushes = {name: pg.mkBrush(color) for name, color in SHARE_COLORS.items()}

    def _build_row_items(self) -> None:
        """Every format's range label, loss-scaling threshold lines and share label, made once and
        shown or hidden: the plots' item lists never change."""
        st = self.style_
        self.row_labels: dict[str, pg.TextItem] = {}
        self.row_lines: dict[str, tuple[pg.InfiniteLine, pg.InfiniteLine]] = {}
        self.row_shares: dict[str, pg.TextItem] = {}
        self._compact = {}
        for key in ROW_KEYS:
            color = self._color(key)
            text = pg.TextItem(color=st.foreground, anchor=(0, 1))
            text.setFont(st.font(0.85))
            text.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            text.hide()
            self.range_plot.addItem(text, ignoreBounds=True)
            self.row_labels[key] = text
            lines = tuple(pg.InfiniteLine(0.0, angle=90, pen=st.pen(color, 1.5, style))
                          for style in (Qt.DashLine, Qt.SolidLine))
            for line in lines:
                line.hide()
                self.hist_plot.addItem(line, ignoreBounds=True)
            self.row_lines[key] = lines
            label = pg.TextItem(color="#FFFFFF", anchor=(0, 0.5), fill=pg.mkBrush(0, 0, 0, 130))
            label.setFont(st.font(0.8, bold=True))
            label.hide()
            self.share_plot.addItem(label)
            self.row_shares[key] = label
        self.range_labels: list[pg.TextItem] = []  # the shown ones, in row order
        self.hist_lines: list[pg.InfiniteLine] = []
        self.share_labels: list[pg.TextItem] = []
        self.kinds_plot.addItem(self.kinds_caption, ignoreBounds=True)

    # ---- the block-scaling page ---------------------------------------------------------------
    def _build_scaling_page(self) -> QWidget:
        st = self.style_
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        self.scaling_status = QLabel()
        self.scaling_status.setObjectName("scaling_status")
        self.scaling_status.setFont(st.font(1.0, bold=True))
        self.scaling_legend = QLabel()
        self.scaling_legend.setObjectName("scaling_legend")
        self.scaling_legend.setStyleSheet(f"color: {st.muted};")
        for label in (self.scaling_status, self.scaling_legend):  # plain, not selectable: no document layout per change
            label.setTextFormat(Qt.PlainText)
            column.addWidget(OneLine(label, lines=2))  # wrapped on a projector, never pushing the figure
        self.qcanvas = pg.GraphicsLayoutWidget()
        self.qcanvas.setObjectName("scaling_plots")
        self.qcanvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.qcanvas.setBackground(st.background)
        self.qcanvas.setMinimumHeight(int(st.point_size * 44))
        column.addWidget(self.qcanvas, 1)
        ci = self.qcanvas.ci
        maps = ci.addLayout(row=0, col=0)
        self.heat_plots, self.heat_images = {}, {}
        titles = {"values": tr("|values|"), "scales": tr("Scale of each value"), "error": tr("Relative error")}
        self._luts = {"values": _heat_lut("viridis"), "scales": _heat_lut("cividis"), "error": _heat_lut("inferno")}
        for c, name in enumerate(("values", "scales", "error")):
            plot = maps.addPlot(row=0, col=c)
            st.style_plot(plot, titles[name], tr("row") if c == 0 else "", tr("column"))
            plot.showGrid(x=False, y=False)
            plot.invertY(True)
            plot.setMouseEnabled(x=False, y=False)
            image = CellImage(axisOrder="row-major")  # RGBA cells, the colour map applied here (no LUT per paint)
            plot.addItem(image)
            self.heat_plots[name], self.heat_images[name] = plot, image
        self.row_plot = ci.addPlot(row=1, col=0, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.row_plot, tr("One row before and after (log |value|)"), "|v|", tr("column"))
        self.row_plot.setMouseEnabled(x=True, y=False)
        # side by side: the relative error of the same tensor under four recipes (same colours as above)
        side = ci.addLayout(row=2, col=0)
        self.side_plots, self.side_images = [], []
        for c, name in enumerate(SIDE_BY_SIDE):
            plot = side.addPlot(row=0, col=c)
            st.style_plot(plot, _recipe_label(name), tr("relative error") if c == 0 else "", "")
            plot.showGrid(x=False, y=False)
            plot.invertY(True)
            plot.setMouseEnabled(x=False, y=False)
            image = CellImage(axisOrder="row-major")
            plot.addItem(image)
            self.side_plots.append(plot)
            self.side_images.append(image)
        for layout, count in ((maps, 3), (side, len(SIDE_BY_SIDE))):  # equal columns, whatever the titles say
            for c in range(count):
                layout.layout.setColumnStretchFactor(c, 1)
                layout.layout.setColumnPreferredWidth(c, 1)
        self.row_marker = pg.InfiniteLine(angle=0, pen=pg.mkPen(st.error, width=2, style=Qt.DashLine))
        self.heat_plots["values"].addItem(self.row_marker, ignoreBounds=True)
        self.row_items = self._row_items(self.row_plot, st.series[0])
        self.row_plot.showGrid(x=False, y=True, alpha=st.grid_alpha)
        ci.layout.setRowStretchFactor(0, 3)
        ci.layout.setRowStretchFactor(1, 3)
        ci.layout.setRowStretchFactor(2, 3)
        for plot in (*self.heat_plots.values(), self.row_plot, *self.side_plots):
            never_widens(plot.titleLabel)  # a long title (in Chinese, on a projector) overhangs, never widens the figure
            for item in (plot.titleLabel, plot.getAxis("left"), plot.getAxis("bottom")):
                item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.summary = QTableWidget(1 + len(SIDE_BY_SIDE), 8)
        self.summary.setObjectName("scaling_summary")
        headers = [(tr("Recipe"), ""), (tr("bits/value"), tr("bits per value, the scales included")),
                   (tr("SQNR dB"), tr("signal-to-quantization-noise ratio: 10 log10(Σv² / Σ(q − v)²)")),
                   (tr("mean rel."), tr("mean relative error |q − v| / |v|")),
                   (tr("max rel."), tr("largest relative error |q − v| / |v|")),
                   (tr("→ 0"), tr("share of the non-zero values stored as 0 (flushed)")),
                   (tr("saturated"), tr("share of the values clamped to the element's largest value")),
                   (tr("NaN"), tr("share of the values that came out NaN"))]
        for c, (text, tip) in enumerate(headers):
            item = QTableWidgetItem(text)
            item.setToolTip(tip)
            self.summary.setHorizontalHeaderItem(c, item)
        self.summary.verticalHeader().hide()
        self.summary.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.summary.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.summary.setHorizontalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.summary.verticalHeader().setDefaultSectionSize(int(st.point_size * 2.2))
        header = self.summary.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        header.setSectionResizeMode(0, QHeaderView.Interactive)
        metrics = self.summary.fontMetrics()
        self.summary.setColumnWidth(0, metrics.horizontalAdvance(tr("This view: {label}").format(label="MXFP8 (E4M3)")) + 24)
        for r in range(self.summary.rowCount()):
            for c in range(8):
                self.summary.setItem(r, c, QTableWidgetItem("—"))
        self.summary.setFixedHeight(header.sizeHint().height() + 4 + self.summary.rowCount() * self.summary.rowHeight(0))
        self.summary.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        column.addWidget(self.summary)
        self._scaling_ranges: tuple = (None, None)
        return page

    def _row_items(self, plot: pg.PlotItem, color: str) -> dict[str, Any]:
        """A row's before/after items: the band each value's scale can store (bars), the values
        before (sticks), after (dots), values flushed to zero (crosses at the floor) and NaN ones."""
        st = self.style_
        items = {
            "band": pg.BarGraphItem(x0=[0], y0=[0], width=[0], height=[0], brush=pg.mkBrush(color + "30"), pen=None),
            "before": Dots(st.marker_size * 0.95, "#B8BCC4" if not st.dark else "#6A6E75"),  # grey: the value
            "after": Dots(st.marker_size * 0.5, color),  # its colour inside: what was stored
            "flushed": Dots(st.marker_size, st.error, "x"),  # red crosses at the floor: flushed to 0
            "nan": Dots(st.marker_size, QColor(*NAN_COLOR).name(), "t"),  # magenta triangles at the top: NaN
        }
        for name, item in items.items():
            plot.addItem(item, ignoreBounds=True)
        return items

    # ---- drawing ----------------------------------------------------------------------------
    def draw(self, view: FloatsView | ScalingView) -> Iterator[None]:
        """The page shown, drawn in steps of about one part each (see Panel)."""
        name = "scaling" if isinstance(view, ScalingView) else "formats"
        self.pages.setCurrentWidget(self.page(name))
        if name == "scaling":
            yield from self._draw_scaling_view(view)
        else:
            yield from self._draw_formats(view)

    _rows_key: tuple = ()
    _range_x: tuple = ()
    _compact: dict
    _row_ys = np.zeros(0)
    _hist_id = None
    _scaling_key: tuple = ()

    def _draw_formats(self, view: FloatsView) -> Iterator[None]:
        rows_key = tuple((row.key, row.fmt) for row in view.rows)
        if rows_key != self._rows_key:  # formats shown or hidden: their items shown or hidden, in place
            self._rows_key = rows_key
            self._show_rows(view)
        for row in view.rows:
            self.strips[row.key].display(row)
        yield
        self._draw_table(view)
        yield
        if self.testAttribute(Qt.WA_DontShowOnScreen):  # an export grows to every format shown
            self.rows_area.show_every_row()
        value = view.parsed.value
        visible = value is not None and math.isfinite(value) and value != 0
        self.range_marker.setVisible(visible)
        if visible:
            self.range_marker.setPos(math.log2(abs(value)))
        self._draw_density(view)
        scaling_key = (rows_key, *(self.values[n] for n in ("grad_median", "grad_spread", "scale_exp")))
        if scaling_key != self._scaling_key:  # a new value leaves the gradient histogram as it was
            yield
            self._scaling_key = scaling_key
            self._draw_scaling(view)

    def _color(self, key: str) -> str:
        series = self.style_.series
        return series[ROW_KEYS.index(key) % len(series)]

    def _show_rows(self, view: FloatsView) -> None:
        """Strips, table rows, range bars, threshold lines and share labels of the selected formats:
        each made once, here shown or hidden and moved."""
        st = self.style_
        shown = [row.key for row in view.rows]
        for row in view.rows:
            strip = self.all_strips[row.key]
            if strip.fmt != row.fmt:
                strip.set_format(row.fmt)
        for key, strip in self.all_strips.items():
            if strip.isVisibleTo(self.strips_box) != (key in shown):
                strip.setVisible(key in shown)
        self.strips = {key: self.all_strips[key] for key in shown}
        for r, key in enumerate(ROW_KEYS):
            hidden = key not in shown
            if hidden != self.table.isRowHidden(r):
                if hidden:
                    for c in range(1, 6):
                        self.table.item(r, c).setText("—")
                self.table.setRowHidden(r, hidden)
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 2
                                  + len(shown) * self.table.verticalHeader().defaultSectionSize())
        n = len(view.rows)
        label_px = QFontMetricsF(st.font(0.85)).height()
        room = self.range_plot.vb.height() or self.style_.point_size * 16
        compact = n > COMPACT_ROWS or room / n < 2.3 * label_px  # no room for a label above each bar
        slot = ROW_SLOTS / n  # rows share a fixed y range: the axes stay as they are
        bottoms = np.arange(n)[::-1] * slot  # the top row first
        ys = bottoms + (0.5 if compact else 0.3) * slot  # the bars; above each its label, unless rows are many
        narrow = [r.range for r in view.rows if r.key != "fp64"] or [r.range for r in view.rows]
        lo_all = min(i.log2_smallest_subnormal for i in narrow)
        x0, widths, brushes = [], [], []
        self.range_labels, self.hist_lines, self.share_labels = [], [], []
        for key in ROW_KEYS:
            if key not in shown:
                self.row_labels[key].hide()
                for line in self.row_lines[key]:
                    line.hide()
                self.row_shares[key].hide()
        for y, row in zip(ys, view.rows):
            info, color = row.range, self._color(row.key)
            x0 += [info.log2_smallest_subnormal, info.log2_smallest_normal]
            widths += [info.log2_smallest_normal - info.log2_smallest_subnormal, info.log2_max - info.log2_smallest_normal]
            brushes += [pg.mkBrush(color + "55"), pg.mkBrush(color)]
            text = self.row_labels[row.key]
            words_ = f"{row.fmt.label}: {info.decades_total:.1f} " + tr("decades") + f", ε = 2^{info.log2_epsilon:.0f}"
            if text.toPlainText() != words_:
                text.setText(words_)
            if self._compact.get(row.key) != compact:  # on its bar's row, on a background, when rows are many
                self._compact[row.key] = compact
                text.fill = pg.mkBrush(QColor(st.background)) if compact else pg.mkBrush(None)
                text.setAnchor((0, 0.5) if compact else (0, 1))
                text.update()
            text.setPos(lo_all - 3, y if compact else y + 0.22 * slot)  # all at the left edge: never off the plot
            text.show()
            self.range_labels.append(text)
            for line, bound in zip(self.row_lines[row.key], (info.smallest_subnormal, info.max_value)):
                line.setPos(math.log10(bound))
                line.show()
                self.hist_lines.append(line)
        share_room = (self.share_plot.vb.height() or room) / n >= 1.15 * QFontMetricsF(st.font(0.8, bold=True)).height()
        for bottom, row in zip(bottoms, view.rows):
            label = self.row_shares[row.key]
            label.setPos(0.01, bottom + 0.5 * slot)
            label.setVisible(n <= COMPACT_ROWS and share_room)  # too many rows: bars only, labels would overlap
            self.share_labels.append(label)
        self._row_ys = bottoms + 0.5 * slot
        height = (0.6 if compact else 0.36) * slot
        self.range_bars.setOpts(x0=x0, y=np.repeat(ys, 2), width=widths, height=height, brushes=brushes,
                                pens=[pg.mkPen(None)] * len(brushes))
        lo, hi = lo_all, max(i.log2_max for i in narrow)
        x_range = (lo - 4, hi + 4)
        if x_range != self._range_x:  # the widest formats shown decide it; a toggle of a narrower one keeps it
            self._range_x = x_range
            self.range_plot.setXRange(*x_range, padding=0)
            self.range_plot.vb.prepareForPaint()

    def _draw_table(self, view: FloatsView) -> None:
        for row in view.rows:
            r = ROW_KEYS.index(row.key)
            d = row.description
            outcome = pick(*fl.OUTCOMES[d.outcome]) if d is not None else row.problem
            cells = [row.fmt.label, _number(d.value) if d else "—", _number(d.abs_error) if d else "—",
                     _number(d.rel_error) if d else "—", d.hex_string if d else "—", outcome]
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item.text() != text:
                    item.setText(text)
                    # the format's usage for its name; elsewhere the full text of a cell elided on a projector
                    item.setToolTip(_format_tooltip(row.fmt) if c == 0 else text)

    def _draw_density(self, view: FloatsView) -> None:
        """The whole grid of values (linear or log2), every bit pattern by kind, and a zoom on the
        input's two neighbours: the filled one is where round-to-nearest-even goes, the dotted line
        the midpoint."""
        log = self.values["density_log"]
        values = view.density_values
        xs = np.log2(values[values > 0]) if log else values
        if self._density_key != (id(values), log):  # the grid of values changes with the format only
            self._density_key = (id(values), log)
            self.density_ticks.setData(x=xs, y=np.zeros(len(xs)))
            pad = 0.04 * (xs.max() - xs.min() or 1)
            self.density_plot.setRange(xRange=(xs.min() - pad, xs.max() + pad), yRange=(-1, 1.6), padding=0)
            self.density_plot.vb.prepareForPaint()
            self.density_plot.getAxis("bottom").setLabel("log2 x" if log else "x", color=self.style_.foreground)
            self.zoom_plot.getAxis("bottom").setLabel(tr("the two neighbours, 1 gap apart (log spacing)") if log else
                                                      tr("the two neighbours, 1 gap apart"), color=self.style_.foreground)
            fmt = fl.FORMATS[self.values["density_format"]]
            self.density_caption.setText(_specials_text(fmt))
            self.density_caption.setPos((xs.min() + xs.max()) / 2, 1.6)
            self._draw_kinds(view.pattern_kinds, fmt)
        near, parsed = view.neighbours, view.parsed.value
        shown = parsed is not None and math.isfinite(parsed) and (parsed > 0 or not log)
        self.density_input.setVisible(shown)
        if shown:
            self.density_input.setPos(math.log2(parsed) if log else parsed)
        if near is not None and near.lower is not None and near.upper is not None and (not log or near.lower > 0):
            points = np.array([near.lower, near.upper])
            px = np.log2(points) if log else points
            filled = [p == near.chosen for p in points]
            self.density_near.setData(px, [0.0, 0.0], filled)
            self.zoom_near.setData([0.0, 1.0], [0.0, 0.0], filled)
            gap = px[1] - px[0] or 1.0
            unit = lambda x: ((math.log2(x) if log else x) - px[0]) / gap  # noqa: E731
            self.zoom_mid.setVisible(True)
            self.zoom_mid.setPos(unit(near.midpoint))
            self.zoom_input.setVisible(shown)
            if shown:
                self.zoom_input.setPos(unit(parsed))
            around = values if not log else values[values > 0]
            i = int(np.searchsorted(around, near.lower))
            nearby = (np.log2(around[max(i - 2, 0):i + 4]) if log else around[max(i - 2, 0):i + 4]) - px[0]
            nearby = nearby[(nearby / gap > ZOOM_X_RANGE[0]) & (nearby / gap < ZOOM_X_RANGE[1])] / gap
            self.zoom_ticks.setData(x=np.repeat(nearby, 2), y=np.tile([-0.35, 0.35], nearby.size))
            self._caption_width()
            self.zoom_caption.setText(tr("{lower} ← input → {upper}\n{reason}").format(
                lower=_number(near.lower), upper=_number(near.upper), reason=pick(*fl.REASONS[near.reason])))
        else:
            self.density_near.setData([], [])
            self.zoom_near.setData([], [])
            self.zoom_ticks.setData(x=[], y=[])
            self.zoom_mid.setVisible(False)
            self.zoom_input.setVisible(False)
            self.zoom_caption.setText(tr("the input is outside this format's finite range") if shown else "")

    def _caption_width(self) -> None:
        """The zoom's caption wraps, centred, within the plot: a long reason never runs past its edges."""
        width = int(self.zoom_plot.vb.width() * 0.96)
        if width > 0 and width != self._caption_px:
            self._caption_px = width
            self.zoom_caption.setTextWidth(width)
            option = self.zoom_caption.textItem.document().defaultTextOption()
            option.setAlignment(Qt.AlignHCenter)
            self.zoom_caption.textItem.document().setDefaultTextOption(option)

    _caption_px = 0

    def _draw_kinds(self, kinds: np.ndarray, fmt: fl.FloatFormat) -> None:
        """Every pattern as a cell, 16 to a row (8 for FP6, 4 for FP4): 0x00 top left, coloured by kind."""
        per_row = {4: 4, 6: 8}.get(fmt.total_bits, 16)
        grid = kinds.reshape(-1, per_row)
        self.kinds_image.setImage(grid, levels=(0, len(fl.KINDS) - 1), autoLevels=False)
        self.kinds_image.setRect(0, 0, per_row, grid.shape[0])
        counts = {k: int(np.count_nonzero(kinds == i)) for i, k in enumerate(fl.KINDS)}
        parts = [f"<span style='color:{KIND_COLORS[k]}'>■</span> {html.escape(words(k))} {counts[k]}"
                 for k in fl.KINDS if counts[k]]
        self.kinds_caption.setHtml(f"<span style='color:{self.style_.foreground}'><b>{html.escape(tr('Bit patterns'))}</b>"
                                   "<br>" + "<br>".join(parts) + "</span>")
        self.kinds_plot.setRange(xRange=(0, per_row * 2.6), yRange=(0, grid.shape[0]), padding=0)  # room for the key
        self.kinds_caption.setPos(per_row * 1.05, 0)
        self.kinds_plot.vb.prepareForPaint()

    _density_key: tuple = ()
    _hist_ranges: tuple = (None, None)

    def _draw_scaling(self, view: FloatsView) -> None:
        hist = view.histogram
        if id(hist) != self._hist_id:  # the same histogram (a format shown or hidden): left as drawn
            self._hist_id = id(hist)
            total = max(int(hist.counts.sum() + hist.below + hist.above + hist.zeros), 1)
            shares = hist.counts / total
            self.hist_curve.setData(hist.edges, shares)
            x_range = held_range(self._hist_ranges[0], (float(hist.edges[0]), float(hist.edges[-1])))
            y_range = held_range(self._hist_ranges[1], (0.0, max(float(shares.max()), 1e-3) * 1.1))
            if (x_range, y_range) != self._hist_ranges:  # the axis holds while the histogram moves inside it
                self._hist_ranges = (x_range, y_range)
                self.hist_plot.setRange(xRange=x_range, yRange=y_range, padding=0)
            self.hist_plot.vb.prepareForPaint()
        ys = self._row_ys
        x0, widths, brushes, ybars = [], [], [], []
        for y, stats in zip(ys, view.scaling):
            start = 0.0
            for name, share in zip(SHARE_COLORS, (stats.underflow, stats.subnormal, stats.normal, stats.overflow)):
                x0.append(start)
                widths.append(share)
                brushes.append(self._share_brushes[name])
                ybars.append(y)
                start += share
        height = (0.75 if len(view.scaling) > COMPACT_ROWS else 0.6) * ROW_SLOTS / max(len(view.scaling), 1)
        self.share_bars.setOpts(x0=x0, y=ybars, width=widths, height=height, brushes=brushes,
                                pens=[pg.mkPen(None)] * len(brushes))
        for label, row, stats in zip(self.share_labels, view.rows, view.scaling):
            label.setText(f"{row.fmt.label}: " + tr("{zero} → 0, {over} overflow").format(
                zero=f"{stats.underflow:.1%}", over=f"{stats.overflow:.1%}"))

    # ---- drawing the block-scaling page ----------------------------------------------------------
    def _draw_scaling_view(self, view: ScalingView) -> Iterator[None]:
        q, tensor = view.main, view.tensor
        rows, cols = tensor.shape
        self._draw_status(view)
        finite = np.abs(tensor[np.isfinite(tensor) & (tensor != 0)])
        top = math.ceil(math.log10(finite.max())) if finite.size else 0
        bottom = max(math.floor(math.log10(finite.min())) if finite.size else -1, top - 8)
        scale = q.element_scale.reshape(rows, cols)
        good_scales = scale[np.isfinite(scale) & (scale > 0)]
        s_lo = math.floor(math.log10(good_scales.min())) if good_scales.size else -1
        s_hi = math.ceil(math.log10(good_scales.max())) if good_scales.size else 0
        s_hi = max(s_hi, s_lo + 1)
        images = {"values": _log_index(tensor, bottom, top), "scales": _log_index(scale, s_lo, s_hi),
                  "error": _error_index(q, tensor)}
        for name, index in images.items():
            image = self.heat_images[name]
            image.setImage(self._luts[name][index], autoLevels=False, levels=None)
            image.setRect(0, 0, cols, rows)
        for image, result in zip(self.side_images, view.side):
            image.setImage(self._luts["error"][_error_index(result, tensor)], autoLevels=False, levels=None)
            image.setRect(0, 0, cols, rows)
        yield
        self.row_marker.setPos(view.row + 0.5)
        if self._scaling_shape != (rows, cols):
            self._scaling_shape = (rows, cols)
            for plot in (*self.heat_plots.values(), *self.side_plots):
                plot.setRange(xRange=(0, cols), yRange=(0, rows), padding=0)
                plot.vb.prepareForPaint()
        self.scaling_legend.setText(tr(
            "Colours (log scale): |values| 1e{bottom} → 1e{top}; scales 1e{s_lo} → 1e{s_hi}; relative error "
            "1e-3 → 1 (bright: lost). Grey: exact (0). Magenta: NaN or inf. Band: what each scale can store.").format(
            bottom=bottom, top=top, s_lo=s_lo, s_hi=s_hi))
        row = view.row
        floor = bottom - 1.0
        y_range = held_range(self._scaling_ranges[1], (floor - 0.3, top + 0.6))
        if y_range != self._scaling_ranges[1] or self._scaling_ranges[0] != cols:
            self._scaling_ranges = (cols, y_range)
            self.row_plot.setRange(xRange=(-0.5, cols - 0.5), yRange=y_range, padding=0)
            self.row_plot.vb.prepareForPaint()
        self._draw_row(self.row_items, tensor[row], q, row, floor, y_range[1])
        yield
        self._draw_summary(view)

    _scaling_shape: tuple = ()

    def _draw_status(self, view: ScalingView) -> None:
        q = view.main
        rows, cols = view.tensor.shape
        stats = q.stats
        extra = []
        if stats.nan_blocks:
            extra.append(ntr("{n} NaN scale: its block is NaN", "{n} NaN scales: their blocks are NaN",
                             stats.nan_blocks).format(n=stats.nan_blocks))
        if stats.clamped_scales:
            extra.append(ntr("{n} scale clamped to 2^-127", "{n} scales clamped to 2^-127",
                             stats.clamped_scales).format(n=stats.clamped_scales))
        if stats.zero_scales:
            extra.append(ntr("{n} scale rounded to 0: its block is 0", "{n} scales rounded to 0: their blocks are 0",
                             stats.zero_scales).format(n=stats.zero_scales))
        if q.amax_used is not None:
            extra.append(tr("delayed scaling: amax {amax} from the history, this tensor's is {now}").format(
                amax=_short(q.amax_used), now=_short(float(np.nanmax(np.abs(np.where(np.isfinite(view.tensor),
                                                                                    view.tensor, 0)))))))
        scales = ntr("{n} scale", "{n} scales", q.scales.size).format(n=q.scales.size)
        text = tr("{recipe} on {rows} × {cols} values (row {row} drawn): {scales}, {bits} bits per value, "
                  "SQNR {sqnr} dB").format(recipe=view.main_label, rows=rows, cols=cols, row=view.row,
                                          scales=scales, bits=f"{stats.bits_per_value:.4g}",
                                          sqnr=_short(stats.sqnr_db))
        self.scaling_status.setText(text + ("; " + "; ".join(extra) if extra else ""))

    def _draw_row(self, items: dict, values: np.ndarray, q: fl.Quantized, row: int, floor: float, ceiling: float) -> None:
        after = q.dequantized[row] if q.dequantized.ndim == 2 else q.dequantized
        scale = q.element_scale[row] if q.element_scale.ndim == 2 else q.element_scale
        cols = np.arange(values.size, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            before_log = np.log10(np.abs(values))
            after_log = np.log10(np.abs(after))
        present = np.isfinite(before_log)
        items["before"].setData(x=cols[present], y=before_log[present])
        kept = np.isfinite(after_log)
        items["after"].setData(x=cols[kept], y=after_log[kept])
        flushed = present & (after == 0)
        items["flushed"].setData(x=cols[flushed], y=np.full(int(flushed.sum()), floor + 0.15))
        nan = np.isnan(after)
        items["nan"].setData(x=cols[nan], y=np.full(int(nan.sum()), ceiling - 0.3))
        # the band: one bar per run of equal scales, from the element's smallest subnormal to its max
        usable = np.isfinite(scale) & (scale > 0)
        edges = np.flatnonzero(np.diff(scale) != 0) + 1 if scale.size > 1 else np.empty(0, dtype=np.int64)
        starts = np.concatenate([[0], edges]).astype(np.int64)
        ends = np.concatenate([edges, [scale.size]]).astype(np.int64)
        keep = usable[starts]
        starts, ends = starts[keep], ends[keep]
        s = scale[starts]
        element = q.element
        with np.errstate(divide="ignore"):
            low = np.log10(element.smallest_subnormal * s)
            high = np.log10(element.max_value * s)
        items["band"].setOpts(x0=starts - 0.5, width=ends - starts, y0=np.maximum(low, floor), height=high - np.maximum(low, floor))

    def _draw_summary(self, view: ScalingView) -> None:
        results = (view.main, *view.side)
        labels = [tr("This view: {label}").format(label=view.main_label)] + [_recipe_label(n) for n in SIDE_BY_SIDE]
        if view.amax_history:
            labels[1 + SIDE_BY_SIDE.index("fp8_tensor")] += " " + tr("(delayed, {n} steps)").format(n=len(view.amax_history))
        for r, (label, q) in enumerate(zip(labels, results)):
            s = q.stats
            cells = [label, f"{s.bits_per_value:.4g}", _short(s.sqnr_db, 3), _short(s.mean_rel_error),
                     _short(s.max_rel_error), _share(s.flushed), _share(s.saturated), _share(s.nan)]
            for c, text in enumerate(cells):
                item = self.summary.item(r, c)
                if item.text() != text:
                    item.setText(text)
                    if c == 0:
                        item.setToolTip(pick(fl.RECIPES[q.recipe].en, fl.RECIPES[q.recipe].zh)
                                        if q.recipe in fl.RECIPES else text)
