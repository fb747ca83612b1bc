"""Floats panel: the bits of FP64/FP32/TF32/FP16/BF16/FP8/FP4 (and a custom ExMy format), the
rounding error, the range, the representable values near the input, and loss scaling."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QStaticText
from PySide6.QtWidgets import (QAbstractItemView, QGraphicsItem, QGraphicsScene, QHBoxLayout, QHeaderView, QLabel,
                               QSizePolicy, QTableWidget, QTableWidgetItem, QToolTip,
                               QVBoxLayout, QWidget)

from widgets.items import held_range
from widgets.panel import Panel
from workbench.compute import floats as fl
from workbench.i18n import pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

STANDARD = ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp4_e2m1")
SHOWN_BY_DEFAULT = ("fp32", "fp16", "bf16", "fp8_e4m3")
DENSITY_FORMATS = ("fp4_e2m1", "fp8_e4m3", "fp8_e5m2")
SAMPLES = 1_000_000
HISTOGRAM_BINS = 120
FIELD_COLORS = {"sign": "#D55E00", "exponent": "#0072B2", "mantissa": "#009E73"}  # Okabe-Ito
SHARE_COLORS = {"zero": "#D55E00", "subnormal": "#E69F00", "normal": "#009E73", "overflow": "#CC79A7"}


def words(key: str) -> str:
    """Translated names of bit fields, value kinds and casting outcomes."""
    return {"sign": tr("sign"), "exponent": tr("exponent"), "mantissa": tr("mantissa"), "zero": tr("zero"),
            "subnormal": tr("subnormal"), "normal": tr("normal"), "inf": tr("infinity"), "nan": tr("NaN"),
            "overflow": tr("overflow")}[key]


def _format_choices(with_custom: bool) -> tuple[Choice, ...]:
    names = STANDARD + (("custom",) if with_custom else ())
    return tuple(Choice(n, _label(n), _label(n)) for n in names)


def _label(name: str) -> str:
    return "custom ExMy" if name == "custom" else fl.FORMATS[name].label


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


PARAMETERS = [
    Param("value", "text", "0.1", "Value", "数值",
          "A number (0.1, -2.5e-3, 1e99999), inf, -inf, nan, -0, or a bit pattern (0x3c00, 0b0011…) "
          "of the format chosen below.",
          "一个数（0.1、-2.5e-3、1e99999）、inf、-inf、nan、-0，或下面所选格式的位模式（0x3c00、0b0011…）。",
          check=_check_value, group="Input"),
    Param("pattern_format", "choice", "fp16", "Bit patterns are read as", "位模式按此格式解读",
          "Which format a 0x… or 0b… entry is a bit pattern of.", "输入 0x… 或 0b… 时，它是哪种格式的位模式。",
          choices=_format_choices(True), group="Input"),
    *[Param(f"show_{name}", "bool", name in SHOWN_BY_DEFAULT, f"Show {_label(name)}", f"显示 {_label(name)}",
            f"Add a bit strip, table row and range bar for {_label(name)}.",
            f"为 {_label(name)} 显示位条、表格行和范围条。", group="Formats") for name in STANDARD],
    Param("show_custom", "bool", False, "Show custom ExMy", "显示自定义 ExMy",
          "Add your own IEEE-style format with the exponent and mantissa widths below.",
          "加入一个自定义的 IEEE 风格格式，指数和尾数位数见下。", group="Formats"),
    Param("custom_exponent", "int", 4, "Custom exponent bits E", "自定义指数位数 E",
          "Exponent width of the custom format.", "自定义格式的指数位数。", lo=1, hi=11, group="Formats"),
    Param("custom_mantissa", "int", 3, "Custom mantissa bits M", "自定义尾数位数 M",
          "Mantissa (fraction) width of the custom format.", "自定义格式的尾数（小数）位数。", lo=0, hi=52, group="Formats"),
    Param("density_format", "choice", "fp8_e4m3", "Density view format", "密度图格式",
          "Draw every representable value of this format.", "画出该格式的全部可表示值。",
          choices=tuple(Choice(n, _label(n), _label(n)) for n in DENSITY_FORMATS), group="Density"),
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
]


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if not any(values[f"show_{n}"] for n in STANDARD + ("custom",)):
        problems.append(tr("show_*: select at least one format"))
    try:
        fmt = _pattern_format(values)
        parsed = fl.parse_value(values["value"], fmt)
        shown = [_format(n, values) for n in STANDARD + ("custom",) if values[f"show_{n}"]]
        if parsed.kind == "nan" and not any(f.has_nan for f in shown):
            problems.append(tr("value: no selected format can store NaN"))
    except fl.InputError as error:
        problems.append(tr("value: {reason}").format(reason=_input_error_text(error)))
    except ValueError as error:
        problems.append(tr("value: {reason}").format(reason=error))
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
]


def _pattern_format(values: Mapping[str, Any]) -> fl.FloatFormat:
    return _format(values["pattern_format"], values)


def _format(name: str, values: Mapping[str, Any]) -> fl.FloatFormat:
    if name == "custom":
        return fl.custom_format(values["custom_exponent"], values["custom_mantissa"])
    return fl.FORMATS[name]


PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS)


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
    """What the floats panel draws."""

    parsed: fl.ParsedInput
    rows: tuple[FormatRow, ...]
    density_values: np.ndarray  # (n,) every finite value of the density format
    neighbours: fl.Neighbours | None
    scaling: tuple[fl.ScalingStats, ...]  # one per row, same order
    histogram: fl.LogHistogram


@lru_cache(maxsize=8)
def _density_values(name: str) -> np.ndarray:
    return fl.representable_values(fl.FORMATS[name])


def _samples(median: float, spread: float):
    return fl.lognormal_samples(median, spread, n=SAMPLES, seed=0)


def compute_floats(values: Mapping[str, Any]) -> FloatsView:
    pattern = _pattern_format(values)
    parsed = fl.parse_value(values["value"], pattern)
    keys = [n for n in STANDARD + ("custom",) if values[f"show_{n}"]]
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
        rows.append(FormatRow(key, fmt, description, problem, fl.range_info(fmt)))
    density = fl.FORMATS[values["density_format"]]
    near = None
    if parsed.kind in ("number", "bits") and parsed.value is not None and math.isfinite(parsed.value):
        try:
            near = fl.neighbours(parsed if parsed.kind == "number" else parsed.value, density)
        except ValueError:
            near = None
    samples = _samples(values["grad_median"], values["grad_spread"])
    scaling = tuple(fl.scaling_stats(samples, row.fmt, values["scale_exp"]) for row in rows)
    centre = math.log10(values["grad_median"]) + values["scale_exp"] * math.log10(2)
    half = max(4 * values["grad_spread"], 2.0)
    histogram = fl.log_histogram(samples, HISTOGRAM_BINS, centre - half, centre + half, scale_exp=values["scale_exp"])
    return FloatsView(parsed, tuple(rows), _density_values(density.name), near, scaling, histogram)


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


ZOOM_Y_RANGE = (-1.0, 3.0)  # ticks at y = 0, the caption in the space above them
EXACT_SHOWN = 32  # longer exact decimals (FP64) show 17 digits on the strip and in full in the tooltip


class BitCells(QWidget):
    """A row of bit cells, most significant first, coloured sign / exponent / mantissa; a cell is
    filled when its bit is 1. Click a cell (or move with arrow keys and press Space) to flip it:
    ``flipped(index)`` reports the bit index, 0 = least significant."""

    flipped = Signal(int)

    def __init__(self, fmt: fl.FloatFormat, style):
        super().__init__()
        self.fmt, self.style_ = fmt, style
        self.bits = 0
        self.cursor = fmt.total_bits - 1
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

    def field(self, index: int) -> str:
        if index == self.fmt.total_bits - 1:
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
        return (position >= 1) + (position >= self.fmt.total_bits - self.fmt.mantissa_bits and self.fmt.mantissa_bits > 0)

    def cell_rect(self, index: int) -> QRect:
        n = self.fmt.total_bits
        width = min((self.width() - 2 * self.gap) / n, self.style_.point_size * 1.25)
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
        return QSize(int(self.fmt.total_bits * pt * 1.25 + 2 * self.gap + 1), int(pt * 1.8) + self._index_height())

    def minimumSizeHint(self) -> QSize:
        pt = self.style_.point_size
        return QSize(int(self.fmt.total_bits * pt * 0.85 + 2 * self.gap + 1), int(pt * 1.8) + self._index_height())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setFont(self.font_)
        colors = {field: QColor(color) for field, color in FIELD_COLORS.items()}
        ink = {"1": QColor("#FFFFFF"), "0": QColor(self.style_.foreground)}
        for position, digit in enumerate(self.text()):
            index = self.fmt.total_bits - 1 - position
            rect, color = self.cell_rect(index), colors[self.field(index)]
            painter.setPen(QPen(color, 1))
            painter.setBrush(color if digit == "1" else Qt.NoBrush)
            painter.drawRect(rect)
            painter.setPen(ink[digit])
            label = self._digits[digit]  # laid out once: drawText would shape the digit at every paint
            size = label.size()
            painter.drawStaticText(QPoint(int(rect.center().x() - size.width() / 2 + 1),
                                          int(rect.center().y() - size.height() / 2 + 1)), label)
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
        if self.hasFocus():
            painter.setPen(QPen(QColor(self.style_.foreground), 2, Qt.DotLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawRect(self.cell_rect(self.cursor).adjusted(-1, -1, 1, 1))
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
    becomes the new input (as a hex pattern read in this format)."""

    def __init__(self, panel: "FloatsPanel", key: str, fmt: fl.FloatFormat):
        super().__init__()
        self.panel, self.key, self.fmt = panel, key, fmt
        st = panel.style_
        row = QHBoxLayout()
        row.setSpacing(1)
        row.setContentsMargins(0, 0, 0, 0)
        self.name = QLabel(f"<b>{html.escape(_label(key) if key != 'custom' else fmt.label)}</b>")
        self.name.setMinimumWidth(int(st.point_size * 11))
        row.addWidget(self.name)
        self.cells = BitCells(fmt, st)
        self.cells.setObjectName(f"bits_{key}")
        self.cells.flipped.connect(self.flip)
        row.addWidget(self.cells)
        row.addSpacing(8)
        self.value = QLabel()  # plain text: rich text costs a document layout on every change
        self.value.setWordWrap(True)
        self.value.setTextFormat(Qt.PlainText)
        self.value.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.value.setFont(st.font(1.0, bold=True))
        wide = fmt.total_bits > 32  # 64 bits leave no room beside them on a projector: value goes below
        if not wide:
            row.addWidget(self.value, 1)
        self.formula = QLabel()
        self.formula.setWordWrap(True)
        self.formula.setTextFormat(Qt.PlainText)
        self.formula.setStyleSheet(f"color: {st.muted};")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 1, 0, 1)
        column.setSpacing(0)
        column.addLayout(row)
        if wide:
            row.addStretch(1)
            column.addWidget(self.value)
        column.addWidget(self.formula)

    def flip(self, index: int) -> None:
        bits = self.cells.bits ^ (1 << index)
        digits = (self.fmt.total_bits + 3) // 4
        self.panel.set_values({"value": f"0x{bits:0{digits}x}", "pattern_format": self.key})

    def display(self, row: FormatRow) -> None:
        d = row.description
        if d is None:
            self.value.setText(tr("cannot store this input: {reason}").format(reason=row.problem))
            self.formula.setText("")
            return
        self.cells.set_bits(d.bits)
        exact = _number(d.value) if d.exact is None else d.exact
        shown = exact if len(exact) <= EXACT_SHOWN else _shortened(d.exact_scientific)
        self.value.setText(f"=\u00a0{shown}  ({words(d.kind)}, {d.hex_string})")
        self.value.setToolTip(tr("exact stored value: {value}").format(value=exact) if shown != exact else "")
        self.formula.setText(_formula_text(d))


def _shortened(scientific: str) -> str:
    """The leading digits of an exact scientific decimal with an ellipsis: never a rounded value."""
    mantissa, _, exponent = scientific.partition("e")
    return f"{mantissa[:EXACT_SHOWN - 10]}…e{exponent}"


_SUPERSCRIPT = str.maketrans("0123456789-−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁻")


def _formula_text(d: fl.Description) -> str:
    """(−1)^s × 2^(e − bias) × 1.m with the numbers in, as plain text with Unicode superscripts
    (cheaper to lay out and paint on every change than rich text)."""
    f = d.formula
    if d.kind in ("inf", "nan"):
        return tr("exponent all ones: {kind}").format(kind=words(d.kind))
    exponent = f"{f.exponent_field}−{f.bias}" if d.kind == "normal" else f"1−{f.bias}"
    mantissa = f"{f.leading_bit}.{d.mantissa_binary}" if d.mantissa_binary else f"{f.leading_bit}"
    up = lambda text: str(text).translate(_SUPERSCRIPT)  # noqa: E731
    return (f"(−1){up(f.sign_bit)} × 2{up(exponent)} × {mantissa}₂"
            f" = {f.sign_factor} × 2{up(f.exponent)} × {f.significand:.17g}")


class FloatsPanel(Panel):
    NAME = "floats"
    TITLE_EN = "Floats"
    TITLE_ZH = "浮点格式"
    PARAMS = PARAMS
    BENCH_SWEEPS = {  # typed decimals, then fp16 bit patterns as a bit click makes them, then the sliders
        "value": [f"{m:.4g}e{e}" for m, e in zip(np.linspace(1.1, 9.9, 30), range(-15, 15))]
        + [f"0x{(0x3c00 ^ (1 << (i % 16))):04x}" for i in range(30)],
        "grad_median": (1e-10, 1e2),
        "scale_exp": (-20, 40),
    }
    BENCH_BUDGETS_MS = {"value": 8.0}  # typing a value or flipping a bit
    OPEN_GROUPS = ("Input", "Formats")

    compute = staticmethod(compute_floats)

    def caption(self) -> str:
        v = self.values
        shown = ", ".join(_label(n) for n in STANDARD + ("custom",) if v[f"show_{n}"])
        return (f"{self.title()}: {self.PARAMS['value'].label()} = {v['value']} ({shown}); "
                + self.PARAMS.caption(v, ["grad_median", "grad_spread", "scale_exp"]))

    # ---- figure ---------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        figure = QWidget()
        figure.setAutoFillBackground(True)
        column = QVBoxLayout(figure)
        column.setContentsMargins(8, 8, 8, 8)
        self.strips_box = QWidget()
        self.strips_layout = QVBoxLayout(self.strips_box)
        self.strips_layout.setContentsMargins(0, 0, 0, 0)
        self.strips: dict[str, BitStrip] = {}
        legend = QLabel(" ".join(f"<span style='color:{c}'>■</span> {words(f)}" for f, c in FIELD_COLORS.items()))
        column.addWidget(legend)
        column.addWidget(self.strips_box)
        self.table = QTableWidget(0, 6)
        self.table.setObjectName("comparison")
        self.table.setHorizontalHeaderLabels([tr("Format"), tr("Stored value"), tr("Abs. error"), tr("Rel. error"),
                                              tr("Bits"), tr("What happened")])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Minimum)
        self.table.verticalHeader().setDefaultSectionSize(int(st.point_size * 2.2))
        column.addWidget(self.table)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.plots.setBackground(st.background)
        self.plots.setMinimumHeight(int(st.point_size * 34))
        column.addWidget(self.plots, 1)
        self._build_range_plot()
        self._build_density_plot()
        self._build_scaling_plots()
        for index in (0, 1):  # equal halves across and down, whatever the titles and captions say
            self.plots.ci.layout.setColumnStretchFactor(index, 1)
            self.plots.ci.layout.setColumnPreferredWidth(index, 1)
            self.plots.ci.layout.setRowStretchFactor(index, 1)
            self.plots.ci.layout.setRowPreferredHeight(index, 1)
        plots = (self.range_plot, self.density_plot, self.zoom_plot, self.hist_plot, self.share_plot)
        for item in (self.range_bars, self.share_bars, self.density_ticks,
                     *(p.titleLabel for p in plots), *(p.getAxis(side) for p in plots for side in ("left", "bottom"))):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged items repaint as a blit
        return figure

    def _build_range_plot(self) -> None:
        st = self.style_
        self.range_plot = self.plots.addPlot(row=0, col=0)
        st.style_plot(self.range_plot, tr("Range (log2 |x|)"), "", "log2 |x|")
        self.range_plot.getAxis("left").setStyle(showValues=False)
        self.range_plot.setMouseEnabled(x=True, y=False)
        self.range_bars = pg.BarGraphItem(x0=[0], y=[0], height=0.5, width=[0], brush=None, pen=None)
        self.range_plot.addItem(self.range_bars)
        self.range_marker = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.range_plot.addItem(self.range_marker, ignoreBounds=True)

    def _build_density_plot(self) -> None:
        st = self.style_
        column = self.plots.addLayout(row=0, col=1)
        self.density_plot = column.addPlot(row=0, col=0)
        self.zoom_plot = column.addPlot(row=1, col=0)
        column.layout.setRowStretchFactor(0, 2)
        column.layout.setRowStretchFactor(1, 3)  # the zoom carries a two-line caption
        st.style_plot(self.density_plot, tr("Every representable value"), "", "")
        st.style_plot(self.zoom_plot, tr("Around the input"), "", "")
        self.density_ticks = pg.ScatterPlotItem(symbol="|", size=st.marker_size * 1.4, pen=None,
                                                brush=pg.mkBrush(st.foreground))
        self.zoom_ticks = pg.ScatterPlotItem(symbol="|", size=st.marker_size * 2, pen=None, brush=pg.mkBrush(st.foreground))
        self.density_near = pg.ScatterPlotItem(symbol="o", size=st.marker_size * 1.4)
        self.density_input = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.zoom_input = pg.InfiniteLine(angle=90, pen=st.pen(st.error, 2))
        self.zoom_mid = pg.InfiniteLine(angle=90, pen=st.pen(st.muted, 1, Qt.DotLine))
        # inside the plot, not its title: a title that changes width re-lays out every plot
        self.zoom_caption = pg.TextItem(color=st.foreground, anchor=(0.5, 0))
        self.zoom_caption.setFont(st.font(0.9, bold=True))
        for plot, items in ((self.density_plot, (self.density_ticks, self.density_input)),
                            (self.zoom_plot, (self.zoom_ticks, self.zoom_mid, self.zoom_input, self.density_near,
                                            self.zoom_caption))):
            plot.getAxis("left").setStyle(showValues=False)
            plot.getAxis("left").setWidth(int(st.point_size))
            plot.setMouseEnabled(y=False)
            plot.showGrid(x=False, y=False)
            for item in items:
                plot.addItem(item, ignoreBounds=True)

    def _build_scaling_plots(self) -> None:
        st = self.style_
        self.hist_plot = self.plots.addPlot(row=1, col=0)
        st.style_plot(self.hist_plot, tr("Gradients × 2^k (log10 |g|)"), tr("share"),
                      tr("log10 |g × 2^k|   (dashed: smallest subnormal, solid: max)"))
        self.hist_plot.showGrid(x=False, y=True, alpha=st.grid_alpha)  # the x axis moves with every change:
        # its grid (a line per tick of every level) took ~3.5 ms to redraw
        self.hist_curve = pg.PlotCurveItem(x=[0.0, 1.0], y=[0.0], stepMode="center", fillLevel=0,
                                           pen=st.pen(st.foreground, 1.5), brush=pg.mkBrush(st.series[5] + "80"))
        self.hist_plot.addItem(self.hist_curve)
        self.share_plot = self.plots.addPlot(row=1, col=1)
        keys = "  ".join(f"<span style='color:{c}'>■</span> {words(n)}" for n, c in SHARE_COLORS.items())
        st.style_plot(self.share_plot, tr("After casting"), "", tr("share") + ":  " + keys)
        self.share_plot.setXRange(0, 1, padding=0)
        self.share_plot.getAxis("left").setStyle(showValues=False)
        self.share_plot.setMouseEnabled(x=False, y=False)
        self.share_bars = pg.BarGraphItem(x0=[0], y=[0], height=0.6, width=[0], brush=None, pen=None)
        self.share_plot.addItem(self.share_bars)
        self._share_brushes = {name: pg.mkBrush(color) for name, color in SHARE_COLORS.items()}
        self.range_labels, self.hist_lines, self.share_labels = [], [], []


    # ---- drawing ----------------------------------------------------------------------------
    def draw(self, view: FloatsView) -> None:
        rows_key = tuple((row.key, row.fmt) for row in view.rows)
        if rows_key != self._rows_key:  # formats added or removed: rebuild their items once
            self._rows_key = rows_key
            self._rebuild_rows(view)
        for row in view.rows:
            self.strips[row.key].display(row)
        needed = self.strips_box.sizeHint().height()
        if needed > self.strips_box.minimumHeight():  # grow only: the plots below do not jump as you type
            self.strips_box.setMinimumHeight(needed)
        self._draw_table(view)
        value = view.parsed.value
        visible = value is not None and math.isfinite(value) and value != 0
        self.range_marker.setVisible(visible)
        if visible:
            self.range_marker.setPos(math.log2(abs(value)))
        self._draw_density(view)
        scaling_key = (rows_key, *(self.values[n] for n in ("grad_median", "grad_spread", "scale_exp")))
        if scaling_key != self._scaling_key:  # a new value leaves the gradient histogram as it was
            self._scaling_key = scaling_key
            self._draw_scaling(view)

    _rows_key: tuple = ()
    _scaling_key: tuple = ()

    def _color(self, key: str) -> str:
        series = self.style_.series
        return series[STANDARD.index(key) % len(series)] if key in STANDARD else series[7]

    def _rebuild_rows(self, view: FloatsView) -> None:
        """Strips, range bars, threshold lines and share labels for the selected formats."""
        st = self.style_
        kept = {row.key: self.strips[row.key] for row in view.rows
                if row.key in self.strips and self.strips[row.key].fmt == row.fmt}  # a strip is rebuilt only for a new format
        for key, strip in self.strips.items():
            self.strips_layout.removeWidget(strip)
            if kept.get(key) is not strip:
                strip.setParent(None)  # deleted now, with its last reference: not left to a later event loop pass
        self.strips_box.setMinimumHeight(0)
        self.strips = {}
        self.plots.setMinimumHeight(int(self.style_.point_size * (30 + 5 * len(view.rows))))  # room per bar row
        for row in view.rows:
            self.strips[row.key] = kept.get(row.key) or BitStrip(self, row.key, row.fmt)
            self.strips_layout.addWidget(self.strips[row.key])
        ys = np.arange(len(view.rows))[::-1].astype(float)
        narrow = [r.range for r in view.rows if r.key != "fp64"] or [r.range for r in view.rows]
        lo_all = min(i.log2_smallest_subnormal for i in narrow)
        x0, widths, brushes = [], [], []
        for plot, items in ((self.range_plot, self.range_labels), (self.hist_plot, self.hist_lines),
                            (self.share_plot, self.share_labels)):
            for item in items:  # out of the plot's item lists too, not only its scene
                plot.removeItem(item)
        self.range_labels, self.hist_lines, self.share_labels = [], [], []
        for y, row in zip(ys, view.rows):
            info, color = row.range, self._color(row.key)
            x0 += [info.log2_smallest_subnormal, info.log2_smallest_normal]
            widths += [info.log2_smallest_normal - info.log2_smallest_subnormal, info.log2_max - info.log2_smallest_normal]
            brushes += [pg.mkBrush(color + "55"), pg.mkBrush(color)]
            text = pg.TextItem(f"{row.fmt.label}: {info.decades_total:.1f} " + tr("decades")
                               + f", ε = 2^{info.log2_epsilon:.0f}", color=st.foreground, anchor=(0, 1))
            text.setFont(st.font(0.85))
            text.setPos(lo_all - 3, y + 0.28)  # all at the left edge: a label never runs off the plot
            text.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            self.range_plot.addItem(text, ignoreBounds=True)
            self.range_labels.append(text)
            for bound, style in ((info.smallest_subnormal, Qt.DashLine), (info.max_value, Qt.SolidLine)):
                line = pg.InfiniteLine(math.log10(bound), angle=90, pen=st.pen(color, 1.5, style))
                self.hist_plot.addItem(line, ignoreBounds=True)
                self.hist_lines.append(line)
            label = pg.TextItem(color="#FFFFFF", anchor=(0, 0.5), fill=pg.mkBrush(0, 0, 0, 130))
            label.setFont(st.font(0.8, bold=True))
            label.setPos(0.01, y)
            self.share_plot.addItem(label)
            self.share_labels.append(label)
        self.range_bars.setOpts(x0=x0, y=np.repeat(ys, 2), width=widths, height=0.4, brushes=brushes,
                                pens=[pg.mkPen(None)] * len(brushes))
        lo, hi = lo_all, max(i.log2_max for i in narrow)
        self.range_plot.setRange(xRange=(lo - 4, hi + 4), yRange=(-0.6, len(view.rows) - 0.1), padding=0)
        self.share_plot.setYRange(-0.6, len(view.rows) - 0.4, padding=0)
        for plot in (self.range_plot, self.share_plot):  # the new view now: applied in the paint, it asks for a second
            plot.vb.prepareForPaint()

    def _draw_table(self, view: FloatsView) -> None:
        self.table.setRowCount(len(view.rows))
        changed = False
        for r, row in enumerate(view.rows):
            d = row.description
            outcome = pick(*fl.OUTCOMES[d.outcome]) if d is not None else row.problem
            cells = [row.fmt.label, _number(d.value) if d else "—", _number(d.abs_error) if d else "—",
                     _number(d.rel_error) if d else "—", d.hex_string if d else "—", outcome]
            for c, text in enumerate(cells):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                if item.text() != text:
                    item.setText(text)
                    # the format's usage for its name; elsewhere the full text of a cell elided on a projector
                    item.setToolTip(_format_tooltip(row.fmt) if c == 0 else text)
                    changed = True
        if changed:  # one pass over the columns, not one per changed cell
            self.table.resizeColumnsToContents()
        height = self.table.horizontalHeader().height() + 2 + sum(self.table.rowHeight(r) for r in range(len(view.rows)))
        if self.table.height() != height:
            self.table.setFixedHeight(height)

    def _draw_density(self, view: FloatsView) -> None:
        """The whole grid of values (linear or log2), and a zoom on the input's two neighbours:
        the filled one is where round-to-nearest-even goes, the dotted line the midpoint."""
        log = self.values["density_log"]
        values = view.density_values
        xs = np.log2(values[values > 0]) if log else values
        if self._density_key != (id(values), log):  # the grid of values changes with the format only
            self._density_key = (id(values), log)
            self.density_ticks.setData(x=xs, y=np.zeros(len(xs)))
            self.zoom_ticks.setData(x=xs, y=np.zeros(len(xs)))
            pad = 0.04 * (xs.max() - xs.min() or 1)
            self.density_plot.setRange(xRange=(xs.min() - pad, xs.max() + pad), yRange=(-1, 1), padding=0)
            self.density_plot.vb.prepareForPaint()
            self.density_plot.getAxis("bottom").setLabel("log2 x" if log else "x", color=self.style_.foreground)
            self.zoom_plot.getAxis("bottom").setLabel("log2 x" if log else "x", color=self.style_.foreground)
        near, parsed = view.neighbours, view.parsed.value
        shown = parsed is not None and math.isfinite(parsed) and (parsed > 0 or not log)
        for line in (self.density_input, self.zoom_input):
            line.setVisible(shown)
            if shown:
                line.setPos(math.log2(parsed) if log else parsed)
        if near is not None and near.lower is not None and near.upper is not None and (not log or near.lower > 0):
            points = np.array([near.lower, near.upper])
            px = np.log2(points) if log else points
            brushes = [pg.mkBrush(self.style_.error) if p == near.chosen else pg.mkBrush(None) for p in points]
            self.density_near.setData(x=px, y=[0, 0], brush=brushes, pen=pg.mkPen(self.style_.error, width=2))
            self.zoom_mid.setVisible(True)
            self.zoom_mid.setPos(math.log2(near.midpoint) if log else near.midpoint)
            gap = px[1] - px[0] or 1.0
            self.zoom_plot.setRange(xRange=(px[0] - 1.5 * gap, px[1] + 1.5 * gap), yRange=ZOOM_Y_RANGE, padding=0)
            self.zoom_plot.vb.prepareForPaint()
            self.zoom_caption.setText(tr("{lower} ← input → {upper}\n{reason}").format(
                lower=_number(near.lower), upper=_number(near.upper), reason=pick(*fl.REASONS[near.reason])))
            self.zoom_caption.setPos((px[0] + px[1]) / 2, ZOOM_Y_RANGE[1])
        else:
            self.density_near.setData(x=[], y=[])
            self.zoom_mid.setVisible(False)
            self.zoom_caption.setText(tr("the input is outside this format's finite range") if shown else "")
            self.zoom_caption.setPos(float(np.mean(self.zoom_plot.viewRange()[0])), ZOOM_Y_RANGE[1])

    _density_key: tuple = ()
    _hist_ranges: tuple = (None, None)

    def _draw_scaling(self, view: FloatsView) -> None:
        hist = view.histogram
        total = max(int(hist.counts.sum() + hist.below + hist.above + hist.zeros), 1)
        shares = hist.counts / total
        self.hist_curve.setData(hist.edges, shares)
        x_range = held_range(self._hist_ranges[0], (float(hist.edges[0]), float(hist.edges[-1])))
        y_range = held_range(self._hist_ranges[1], (0.0, max(float(shares.max()), 1e-3) * 1.1))
        if (x_range, y_range) != self._hist_ranges:  # the axis holds while the histogram moves inside it
            self._hist_ranges = (x_range, y_range)
            self.hist_plot.setRange(xRange=x_range, yRange=y_range, padding=0)
        self.hist_plot.vb.prepareForPaint()
        ys = np.arange(len(view.scaling))[::-1].astype(float)
        x0, widths, brushes, ybars = [], [], [], []
        for y, stats in zip(ys, view.scaling):
            start = 0.0
            for name, share in zip(SHARE_COLORS, (stats.underflow, stats.subnormal, stats.normal, stats.overflow)):
                x0.append(start)
                widths.append(share)
                brushes.append(self._share_brushes[name])
                ybars.append(y)
                start += share
        self.share_bars.setOpts(x0=x0, y=ybars, width=widths, height=0.6, brushes=brushes,
                                pens=[pg.mkPen(None)] * len(brushes))
        for label, row, stats in zip(self.share_labels, view.rows, view.scaling):
            label.setText(f"{row.fmt.label}: " + tr("{zero} → 0, {over} overflow").format(
                zero=f"{stats.underflow:.1%}", over=f"{stats.overflow:.1%}"))
