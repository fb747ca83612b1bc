"""Activations panel: activation curves and their derivatives, gradients through a deep MLP under
Xavier / He initialisation, and softmax with its Jacobian."""

from __future__ import annotations

import html
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets.items import CellImage, DecadeAxis, PixelCurve, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import activations as act
from workbench.i18n import pick, tr
from workbench.memo import bounded_cache
from workbench.params import Choice, Param, ParamSet, Preset

NAMES = {"sigmoid": ("Sigmoid", "Sigmoid"), "tanh": ("Tanh", "Tanh"), "relu": ("ReLU", "ReLU"),
         "leaky_relu": ("Leaky ReLU", "Leaky ReLU"), "elu": ("ELU", "ELU"), "selu": ("SELU", "SELU"),
         "gelu": ("GELU", "GELU"), "gelu_tanh": ("GELU (tanh approx.)", "GELU（tanh 近似）"),
         "swish": ("Swish / SiLU", "Swish / SiLU"), "mish": ("Mish", "Mish"), "softplus": ("Softplus", "Softplus"),
         "hardsigmoid": ("Hard sigmoid", "Hard Sigmoid"), "hardswish": ("Hard swish", "Hard Swish"),
         "relu6": ("ReLU6", "ReLU6"), "linear": ("Linear (identity, no activation)", "线性（恒等，无激活）")}
INITS = {"xavier_uniform": ("Xavier uniform (Glorot)", "Xavier 均匀（Glorot）"),
         "xavier_normal": ("Xavier normal (Glorot)", "Xavier 正态（Glorot）"),
         "kaiming_uniform": ("He / Kaiming uniform", "He / Kaiming 均匀"),
         "kaiming_normal": ("He / Kaiming normal", "He / Kaiming 正态"),
         "normal": ("Normal with a chosen std", "指定标准差的正态分布")}
GAIN_MODES = {"default": ("torch's default for the init", "torch 对该初始化的默认值"),
              "recommended": ("calculate_gain for the activation", "按激活函数取 calculate_gain"),
              "custom": ("Custom gain", "自定义 gain")}
SHOWN_BY_DEFAULT = ("sigmoid", "tanh", "relu")
ACTIVATION_PARAMS = {  # activation -> {backend keyword: panel parameter}
    "leaky_relu": {"negative_slope": "negative_slope"}, "elu": {"alpha": "elu_alpha"}, "swish": {"beta": "swish_beta"},
    "softplus": {"beta": "softplus_beta", "threshold": "softplus_threshold"},
}
LOGITS = 5
# One colour per activation, all 15 distinct: Okabe-Ito first, then Tableau's remaining hues, then
# ColorBrewer Dark2's mustard for the linear one.
CURVE_COLORS_LIGHT = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B",
                      "#9467BD", "#7F7F7F", "#BCBD22", "#17BECF", "#D62728", "#1F3A93", "#A6761D")
CURVE_COLORS_DARK = ("#56B4E9", "#FF7F3F", "#2BD19A", "#E59ACB", "#F0C000", "#9AD8FF", "#FFFFFF", "#C49A85",
                     "#C5A3FF", "#B0B0B0", "#DADB5C", "#5FE3F0", "#FF6B6B", "#7FA8FF", "#B8E186")
GRID_POINTS = 401
SATURATED = 0.01  # |f'| below this counts as saturated


def _choices(table: Mapping[str, tuple[str, str]]) -> tuple[Choice, ...]:
    return tuple(Choice(key, en, zh) for key, (en, zh) in table.items())


PARAMETERS = [
    *[Param(f"show_{name}", "bool", name in SHOWN_BY_DEFAULT, f"Show {en}", f"显示 {zh}",
            f"Draw {en} and its derivatives.", f"画出 {zh} 及其导数。", group="Curves") for name, (en, zh) in NAMES.items()],
    Param("show_dy", "bool", True, "First derivative f′", "一阶导数 f′", "Dashed: the derivative every gradient is multiplied by.",
          "虚线：每个梯度都要乘上的导数。", group="Curves"),
    Param("show_d2y", "bool", False, "Second derivative f″", "二阶导数 f″", "Dotted: the curvature.", "点线：曲率。",
          group="Curves"),
    Param("negative_slope", "float", 0.01, "Leaky ReLU negative_slope", "Leaky ReLU 斜率 negative_slope",
          "Slope for x < 0 (torch's default 0.01).", "x < 0 时的斜率（torch 默认 0.01）。", lo=0.0, hi=1.0, step=0.01,
          group="Curves"),
    Param("elu_alpha", "float", 1.0, "ELU alpha", "ELU alpha", "ELU approaches -alpha for x -> -inf.",
          "x -> -inf 时 ELU 趋于 -alpha。", lo=0.05, hi=5.0, step=0.05, group="Curves"),
    Param("swish_beta", "float", 1.0, "Swish beta", "Swish beta", "x * sigmoid(beta x); beta = 1 is SiLU.",
          "x * sigmoid(beta x)；beta = 1 即 SiLU。", lo=0.1, hi=10.0, log=True, group="Curves"),
    Param("softplus_beta", "float", 1.0, "Softplus beta", "Softplus beta", "log(1 + exp(beta x)) / beta.",
          "log(1 + exp(beta x)) / beta。", lo=0.1, hi=10.0, log=True, group="Curves"),
    Param("softplus_threshold", "float", 20.0, "Softplus threshold", "Softplus 阈值 threshold",
          "Above beta x > threshold softplus is x itself (torch).", "beta x > threshold 时 softplus 直接取 x（torch）。",
          lo=1.0, hi=50.0, step=0.5, group="Curves"),
    Param("x_min", "float", -6.0, "x from", "x 起点", "Left end of the curves' x range.", "曲线 x 范围的左端。",
          lo=-50.0, hi=50.0, step=0.5, group="Curves"),
    Param("x_max", "float", 6.0, "x to", "x 终点", "Right end of the curves' x range.", "曲线 x 范围的右端。",
          lo=-50.0, hi=50.0, step=0.5, group="Curves"),
    Param("probe_x", "float", 1.0, "Probe x", "探针 x", "Where the read-out evaluates every curve (or drag the line).",
          "读数处的 x（也可拖动竖线）。", lo=-50.0, hi=50.0, step=0.01, group="Curves"),
    Param("depth_activation", "choice", "sigmoid", "Activation", "激活函数",
          "The activation of every layer of the deep MLP (its saturation bands are shaded on the curves).",
          "深层 MLP 每一层的激活函数（其饱和区在曲线图上以阴影标出）。", choices=_choices(NAMES), group="Depth"),
    Param("init", "choice", "xavier_uniform", "Initialisation", "初始化", "torch.nn.init scheme of every weight matrix.",
          "每个权重矩阵所用的 torch.nn.init 初始化方法。", choices=_choices(INITS), group="Depth"),
    Param("gain_mode", "choice", "default", "Gain", "增益 gain",
          "torch's default (Xavier 1, Kaiming sqrt 2), the gain calculate_gain recommends for the activation, or your own.",
          "torch 默认（Xavier 为 1，Kaiming 为 sqrt 2）、calculate_gain 为该激活推荐的值，或自定义。",
          choices=_choices(GAIN_MODES), group="Depth"),
    Param("gain", "float", 1.0, "Custom gain", "自定义 gain", "Multiplies the init's standard deviation.",
          "乘在初始化的标准差上。", lo=0.1, hi=10.0, log=True, group="Depth"),
    Param("init_std", "float", 0.05, "Normal std", "正态分布标准差", "Standard deviation of the 'normal' init.",
          "“正态”初始化的标准差。", lo=1e-4, hi=10.0, log=True, group="Depth"),
    Param("depth", "int", 20, "Depth (layers)", "深度（层数）", "Number of square layers.", "方阵层的层数。",
          lo=1, hi=100, group="Depth"),
    Param("width", "int", 128, "Width", "宽度", "Units per layer (fan_in = fan_out).", "每层的单元数（fan_in = fan_out）。",
          lo=8, hi=256, step=8, group="Depth"),
    Param("batch", "int", 64, "Batch", "批大小", "Standard-normal input rows.", "标准正态输入的行数。", lo=8, hi=256, step=8,
          group="Depth"),
    Param("bias", "float", 0.0, "Bias", "偏置", "The same constant bias on every unit (very negative: ReLUs die).",
          "每个单元相同的常数偏置（很负时 ReLU 会“死亡”）。", lo=-10.0, hi=10.0, step=0.1, group="Depth"),
    Param("residual", "bool", False, "Residual connections", "残差连接", "h ← h + f(W h): the gradient has a path around f.",
          "h ← h + f(W h)：梯度有一条绕过 f 的通路。", group="Depth"),
    Param("layer_norm", "bool", False, "LayerNorm before the activation", "激活前加 LayerNorm",
          "Normalise each layer's pre-activations to mean 0, variance 1.", "把每层的激活前值归一化为均值 0、方差 1。",
          group="Depth"),
    Param("seed", "int", 0, "Seed", "随机种子", "Seed of the weights, inputs and upstream gradient.",
          "权重、输入和上游梯度的随机种子。", lo=0, hi=9999, group="Depth"),
    *[Param(f"logit_{i}", "float", value, f"Logit {i}", f"logit {i}", "One input of softmax.", "softmax 的一个输入。",
            lo=-10.0, hi=10.0, step=0.1, group="Softmax") for i, value in enumerate((2.0, 1.0, 0.1, -1.0, -2.0), start=1)],
    Param("temperature", "float", 1.0, "Temperature T", "温度 T", "softmax(z / T): T < 1 sharpens, T > 1 flattens.",
          "softmax(z / T)：T < 1 更尖锐，T > 1 更平坦。", lo=0.05, hi=20.0, log=True, group="Softmax"),
]


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values["x_min"] >= values["x_max"]:
        problems.append(tr("x_min (x_min): {lo} must be less than x_max = {hi}").format(lo=values["x_min"], hi=values["x_max"]))
    elif not values["x_min"] <= values["probe_x"] <= values["x_max"]:
        problems.append(tr("probe_x (probe_x): {x} is outside the x range [{lo}, {hi}]").format(
            x=values["probe_x"], lo=values["x_min"], hi=values["x_max"]))
    return problems


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """A narrower x range pulls the probe inside it."""
    if values["x_min"] < values["x_max"] and not values["x_min"] <= values["probe_x"] <= values["x_max"]:
        return {"probe_x": min(max(values["probe_x"], values["x_min"]), values["x_max"])}
    return {}


def _only(*names: str, **values) -> dict:
    """Preset helper: show only ``names`` on the curves."""
    return {**{f"show_{n}": n in names for n in NAMES}, **values}


PRESETS = [
    Preset("sigmoid_vanishing", "Sigmoid through 10 layers: the gradient vanishes", "Sigmoid 叠 10 层：梯度消失",
           _only("sigmoid", depth_activation="sigmoid", init="xavier_uniform", depth=10)),
    Preset("relu_xavier", "ReLU + Xavier at 50 layers: the signal fades", "ReLU + Xavier，50 层：信号衰减",
           _only("relu", depth_activation="relu", init="xavier_normal", depth=50)),
    Preset("relu_he", "ReLU + He at 50 layers: the signal holds", "ReLU + He，50 层：信号保持",
           _only("relu", depth_activation="relu", init="kaiming_normal", depth=50)),
    Preset("tanh_xavier", "Tanh + Xavier with gain 5/3: the signal holds", "Tanh + Xavier，gain 5/3：信号保持",
           _only("tanh", depth_activation="tanh", init="xavier_uniform", gain_mode="recommended", depth=30)),
    Preset("dying_relu", "Dying ReLU: a large negative bias", "ReLU 死亡：很大的负偏置",
           _only("relu", "leaky_relu", depth_activation="relu", negative_slope=0.3, init="kaiming_normal", bias=-2.0,
                 depth=10)),
    Preset("leaky_rescue", "Leaky ReLU, same bias: no unit dies, the gradient gets through",
           "同样偏置下的 Leaky ReLU：没有单元死亡，梯度能传回",
           _only("relu", "leaky_relu", depth_activation="leaky_relu", negative_slope=0.3, init="kaiming_normal",
                 bias=-2.0, depth=10)),
    Preset("residual_rescue", "Residual connections rescue a deep sigmoid net", "残差连接拯救深层 sigmoid 网络",
           _only("sigmoid", depth_activation="sigmoid", init="xavier_uniform", depth=50, residual=True)),
    Preset("softmax_sharp", "Softmax at T = 0.2: nearly one-hot, tiny Jacobian", "T = 0.2 的 softmax：接近 one-hot，雅可比很小",
           {"temperature": 0.2}),
    Preset("linear_collapse", "20 linear layers: one matrix", "20 个线性层：只是一个矩阵",
           _only("linear", "relu", depth_activation="linear", init="xavier_normal", depth=20, width=32)),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)


def activation_params(name: str, values: Mapping[str, Any]) -> dict[str, float]:
    """The backend keyword arguments of activation ``name`` from the panel's values."""
    return {key: values[param] for key, param in ACTIVATION_PARAMS.get(name, {}).items()}


def _key(params: Mapping[str, float]) -> tuple:
    return tuple(sorted(params.items()))


@lru_cache(maxsize=64)
def _curves(name: str, x_min: float, x_max: float, params: tuple) -> act.Curves:
    return act.evaluate(name, np.linspace(x_min, x_max, GRID_POINTS), **dict(params))


@lru_cache(maxsize=32)
def _properties(name: str, params: tuple, x_lim: float) -> act.Properties:
    """Properties over [-x_lim, x_lim]; softplus's threshold (torch's shortcut to x for large
    inputs) is left out: properties describe the function itself, and `threshold` there is the
    saturation level."""
    shape = {key: value for key, value in params if not (name == "softplus" and key == "threshold")}
    return act.properties(name, threshold=SATURATED, x_lim=x_lim, **shape)


@bounded_cache(maxsize=8, max_bytes=64 * 2 ** 20)
def _flow(activation: str, init: str, depth: int, width: int, batch: int, seed: int, gain: float | None, std: float,
          bias: float, residual: bool, layer_norm: bool, params: tuple) -> act.GradientFlow:
    return act.gradient_flow(activation, init, depth, width, batch=batch, seed=seed, gain=gain, std=std, bias=bias,
                             residual=residual, layer_norm=layer_norm, **dict(params))


def gain_for(values: Mapping[str, Any]) -> float | None:
    """The gain the depth view uses: None (torch's default), the recommended one, or the custom one."""
    mode = values["gain_mode"]
    if mode == "recommended":
        name = values["depth_activation"]
        return act.recommended_gain(name, **activation_params(name, values))
    return values["gain"] if mode == "custom" else None


_PRODUCTS: OrderedDict[tuple, act.Product] = OrderedDict()
_PRODUCTS_LOCK = threading.Lock()


def weight_product(key: tuple, weights: np.ndarray, residual: bool) -> act.Product:
    """act.weight_product of the MLP's weights, remembered (the last 8) by ``key``: what the weights
    are drawn from (init, depth, width, batch, seed, gain, std), so a change of the activation, the
    bias, layer norm or the softmax multiplies no matrices."""
    key = (*key, residual)
    with _PRODUCTS_LOCK:
        if key in _PRODUCTS:
            _PRODUCTS.move_to_end(key)
            return _PRODUCTS[key]
    product = act.weight_product(weights, residual)
    with _PRODUCTS_LOCK:
        _PRODUCTS[key] = product
        while len(_PRODUCTS) > 8:
            _PRODUCTS.popitem(last=False)
    return product


weight_product.cache_clear = _PRODUCTS.clear  # as functools' caches: emptied by whoever measures memory


@dataclass(frozen=True)
class ActivationsScene:
    """What the panel draws: the curves of the shown activations, each one at the probe, the
    properties of the depth view's activation, the gradient flow through the MLP, whether the MLP
    is one matrix, and softmax."""

    curves: dict[str, act.Curves]
    probe: dict[str, act.Curves]
    focus: str
    focus_properties: act.Properties
    flow: act.GradientFlow
    gain: float | None
    softmax: act.SoftmaxResult
    collapse: act.Collapse


def compute_scene(values: Mapping[str, Any]) -> ActivationsScene:
    shown = [name for name in NAMES if values[f"show_{name}"]]
    curves = {name: _curves(name, values["x_min"], values["x_max"], _key(activation_params(name, values))) for name in shown}
    probe = {name: act.evaluate(name, np.array([values["probe_x"]]), **activation_params(name, values)) for name in shown}
    focus = values["depth_activation"]
    focus_params = _key(activation_params(focus, values))
    gain = gain_for(values)
    flow = _flow(focus, values["init"], values["depth"], values["width"], values["batch"], values["seed"], gain,
                 values["init_std"], values["bias"], values["residual"], values["layer_norm"], focus_params)
    logits = np.array([values[f"logit_{i}"] for i in range(1, LOGITS + 1)])
    x_lim = max(10.0, abs(values["x_min"]), abs(values["x_max"]))  # the bands cover the whole view
    drawn_from = (values["init"], values["depth"], values["width"], values["batch"], values["seed"], gain,
                  values["init_std"])
    product = weight_product(drawn_from, flow.weights, values["residual"])
    collapse = act.collapse(flow.weights, flow.inputs, flow.outputs, bias=values["bias"], residual=values["residual"],
                            product=product)
    return ActivationsScene(curves, probe, focus, _properties(focus, focus_params, x_lim), flow, gain,
                            act.softmax(logits, values["temperature"]), collapse)


def log10_clipped(values: np.ndarray, floor: float = 1e-30) -> np.ndarray:
    """log10 for a log axis: zeros sit at the floor, infinities (overflow) at 1/floor."""
    return np.log10(np.clip(np.nan_to_num(values, nan=floor, posinf=1 / floor), floor, 1 / floor))


def plot_floor(*series: np.ndarray) -> float:
    """Where exact zeros are drawn on a log axis: a decade below the smallest positive value."""
    positive = np.concatenate([s[np.isfinite(s) & (s > 0)] for s in series])
    if not positive.size:
        return 1e-30
    return max(10.0 ** (math.floor(math.log10(float(positive.min()))) - 1), 1e-300)


def dead_zone(dy: np.ndarray) -> np.ndarray | None:
    """Mask of the grid points inside a stretch (two or more points in a row) where f' is exactly
    0, or None when there is none."""
    zero = dy == 0
    inside = zero & (np.roll(zero, 1) | np.roll(zero, -1))
    inside[0], inside[-1] = zero[0] and zero[1], zero[-1] and zero[-2]
    return inside if inside.any() else None


def snapped_range(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to whole steps of 1, 2 or 5 x 10^k (about five per range) plus a margin: the
    y axis then keeps its labels while a drag changes the curves only a little."""
    span = max(hi - lo, 1e-9)
    power = 10.0 ** math.floor(math.log10(span / 5))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= span / 5)
    return math.floor(lo / step) * step - 0.25 * step, math.ceil(hi / step) * step + 0.25 * step


class ActivationsPanel(Panel):
    _curve_y = _depth_y = _hist_x = _hist_y = None  # ranges shown, held while the data fits (held_range)
    NAME = "activations"
    TITLE_EN = "Activations"
    TITLE_ZH = "激活函数"
    PARAMS = PARAMS
    OPEN_GROUPS = ("Curves", "Depth")
    BENCH_SWEEPS = {
        "negative_slope (Leaky ReLU shown)": {"param": "negative_slope", "sweep": (0.0, 0.5),
                                              "base": {"show_leaky_relu": True}},
        "x_max": (2.0, 12.0),
        "probe_x": (-5.0, 5.0),
        "seed (depth view)": {"param": "seed", "sweep": (0, 59)},  # new random weights on every change
        "bias (depth view)": {"param": "bias", "sweep": (-1.0, 1.0)},  # the same weights, a new forward/backward
        # the same network with and without a non-linearity: one matrix or not (flows and the product remembered)
        "depth_activation (linear vs others)": {"param": "depth_activation",
                                                "sweep": ["linear", "relu", "linear", "tanh", "linear", "sigmoid"] * 10},
        # linear layers: the same weights (their product remembered), a new forward/backward pass and offset
        "bias (depth view, linear)": {"param": "bias", "sweep": (-1.0, 1.0), "base": {"depth_activation": "linear"}},
        # new layers: a new forward/backward pass, a new product of 2..40 matrices and its singular values
        "depth (depth view, linear)": {"param": "depth", "sweep": (2, 40), "base": {"depth_activation": "linear"}},
    }
    BENCH_BUDGETS_MS = {"negative_slope (Leaky ReLU shown)": 8.0, "x_max": 8.0, "probe_x": 8.0,
                        "depth_activation (linear vs others)": 8.0}

    compute = staticmethod(compute_scene)

    # ---- figure ---------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(4, 4, 4, 0)
        column.setSpacing(2)
        self.readout = QLabel()
        self.readout.setObjectName("readout")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.RichText)
        self.readout.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        column.addWidget(self.readout)
        # One graphics view per row (curves; depth; softmax): a change repaints only the views whose items
        # changed, so a new bias or depth leaves the curves and softmax as they were painted.
        self.canvases = []
        for stretch in (4, 4, 3):
            canvas = pg.GraphicsLayoutWidget()
            canvas.setBackground(st.background)
            canvas.ci.setSpacing(8)
            canvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
            column.addWidget(canvas, stretch)
            self.canvases.append(canvas)
        self.canvas = self.canvases[0]
        curve_ci, depth_ci, softmax_ci = (canvas.ci for canvas in self.canvases)
        self.colors = dict(zip(NAMES, CURVE_COLORS_DARK if st.dark else CURVE_COLORS_LIGHT))
        # curves
        self.curve_plot = curve_ci.addPlot(row=0, col=0, enableMenu=False)
        st.style_plot(self.curve_plot, tr("Activation functions and their derivatives"), "f(x)", "x")
        self.curve_plot.setMenuEnabled(False)
        self.curve_plot.hideButtons()
        self.curve_plot.setMouseEnabled(x=False, y=False)
        self.curve_plot.getAxis("left").setWidth(int(st.point_size * 4.5))
        self.bands = [pg.LinearRegionItem(movable=False, brush=pg.mkBrush(QColor(st.muted).red(), QColor(st.muted).green(),
                                                                           QColor(st.muted).blue(), 45),
                                          pen=pg.mkPen(None)) for _ in range(4)]
        self.band_labels = [pg.TextItem(color=st.muted, anchor=(0.5, 1.0)) for _ in range(4)]
        for band, label in zip(self.bands, self.band_labels):
            band.setZValue(-20)
            self.curve_plot.addItem(band, ignoreBounds=True)
            self.curve_plot.addItem(label, ignoreBounds=True)
            label.setFont(st.font(0.85))
        self.lines: dict[tuple[str, str], pg.PlotCurveItem] = {}
        for name in NAMES:
            color = self.colors[name]
            for kind, style in (("y", Qt.SolidLine), ("dy", Qt.DashLine), ("d2y", Qt.DotLine)):
                width = st.line_width if kind == "y" else st.thin_line_width  # a dashed path wider than 1 px strokes slowly
                curve = PixelCurve(pen=st.pen(color, width, style))
                self.curve_plot.addItem(curve, ignoreBounds=True)
                self.lines[name, kind] = curve
        self.dead_marks: dict[str, pg.PlotCurveItem] = {}
        for name in NAMES:  # a wide translucent stroke over any stretch where f' is exactly 0
            color = QColor(self.colors[name])
            color.setAlpha(90)
            mark = pg.PlotCurveItem(pen=pg.mkPen(color, width=st.line_width * 4), connect="finite")
            mark.setToolTip(tr("{name}: dead zone, f′ = 0").format(name=pick(*NAMES[name])))
            self.curve_plot.addItem(mark, ignoreBounds=True)
            self.dead_marks[name] = mark
        self.curve_legend = pg.LegendItem(offset=(6, 6), labelTextColor=st.foreground,
                                          labelTextSize=f"{st.point_size * 0.9:.0f}pt", brush=pg.mkBrush(st.background),
                                          pen=pg.mkPen(st.muted))
        self.curve_legend.setParentItem(self.curve_plot.vb)
        self._legend_names: list[str] = []
        # every curve's row made now, hidden until listed: the scene's items stay as many
        self._legend_rows = {name: self._legend_row(name) for name in NAMES}
        self.probe_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(st.foreground, width=1.5),
                                          hoverPen=pg.mkPen(st.series[0], width=3))
        self.probe_line.setToolTip(tr("Drag to probe every curve at one x"))
        self.probe_line.sigPositionChanged.connect(self._probe_dragged)
        self.curve_plot.addItem(self.probe_line, ignoreBounds=True)
        self.probe_dots = pg.ScatterPlotItem(size=st.marker_size, pen=pg.mkPen(st.foreground, width=1))
        self.curve_plot.addItem(self.probe_dots, ignoreBounds=True)
        self.brushes = {name: pg.mkBrush(color) for name, color in self.colors.items()}
        # depth
        self.depth_plot = depth_ci.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")}, enableMenu=False)
        st.style_plot(self.depth_plot, tr("Through the layers"), "", tr("layer"))
        legend_style = {"labelTextColor": st.foreground, "labelTextSize": f"{st.point_size * 0.85:.0f}pt"}
        self.depth_legend = pg.LegendItem(**legend_style)  # below the plot: the curves cross every corner
        depth_ci.addItem(self.depth_legend, row=1, col=0)
        self.depth_curves = {}
        for index, (key, label) in enumerate((("activation_std", tr("activation std")),
                                              ("grad_norm", tr("gradient norm ‖∂L/∂h‖")),
                                              ("derivative_product", tr("product of mean |f′| (chain rule)")))):
            curve = PixelCurve(pen=st.pen(st.series[index], style=Qt.DashLine if index == 2 else Qt.SolidLine))
            self.depth_plot.addItem(curve, ignoreBounds=True)
            self.depth_legend.addItem(curve, label)
            self.depth_curves[key] = curve
        self.depth_note = pg.TextItem(color=st.foreground, anchor=(0, 0))  # fixed in the corner, whatever the range
        self.depth_note.setFont(st.font(0.85))
        self.depth_note.setParentItem(self.depth_plot.vb)
        self.depth_note.setPos(6, 2)
        self.hist_plot = depth_ci.addPlot(row=0, col=1, enableMenu=False)
        st.style_plot(self.hist_plot, tr("Activation histograms"), tr("share"), "h")
        self.hist_legend = pg.LegendItem(**legend_style)
        depth_ci.addItem(self.hist_legend, row=1, col=1)
        self.hist_curves = [PixelCurve(np.array([0.0, 1.0]), np.zeros(1), stepMode="center",
                                             pen=st.pen(st.series[i + 3], st.thin_line_width * 1.5)) for i in range(3)]
        for curve in self.hist_curves:
            self.hist_plot.addItem(curve, ignoreBounds=True)
        self._hist_labels: list[str] = []
        # one matrix?
        self.collapse_plot = depth_ci.addPlot(row=0, col=2, axisItems={"left": DecadeAxis("left")}, enableMenu=False)
        st.style_plot(self.collapse_plot, tr("One matrix?"), "σᵢ(M)", tr("i (largest σ first)"))
        self.sv_curve = PixelCurve(pen=st.pen(st.series[0]))
        self.collapse_plot.addItem(self.sv_curve, ignoreBounds=True)
        self.sv_dots = pg.ScatterPlotItem(size=st.marker_size * 0.6, pen=None, brush=pg.mkBrush(st.series[0]))
        self.collapse_plot.addItem(self.sv_dots, ignoreBounds=True)
        # the singular values fall from the top left: the bottom left corner stays free for the verdict
        self.collapse_note = pg.TextItem(color=st.foreground, anchor=(0, 1))
        self.collapse_note.setFont(st.font(0.85))
        self.collapse_note.setParentItem(self.collapse_plot.vb)
        self.product_label = pg.TextItem("M = W_L ⋯ W_1", color=st.foreground, anchor=(1, 0))  # the top right stays free too
        self.product_label.setFont(st.font(0.85))
        self.product_label.setParentItem(self.collapse_plot.vb)
        self.collapse_plot.vb.sigResized.connect(self._place_collapse_note)
        # softmax
        self.bar_plot = softmax_ci.addPlot(row=0, col=0, enableMenu=False)
        st.style_plot(self.bar_plot, tr("softmax(z / T)"), "p", tr("logit"))
        self.bars = pg.BarGraphItem(x=np.arange(1, LOGITS + 1), height=np.zeros(LOGITS), width=0.6,
                                    brush=pg.mkBrush(st.series[0]), pen=pg.mkPen(None))
        self.bar_plot.addItem(self.bars)
        self.bar_plot.setRange(xRange=(0.4, LOGITS + 0.6), yRange=(0, 1), padding=0)
        self.bar_plot.getAxis("bottom").setTicks([[(i, f"z{i}") for i in range(1, LOGITS + 1)]])
        self.bar_texts = [pg.TextItem(color=st.foreground, anchor=(0.5, 1.0)) for _ in range(LOGITS)]
        for i, text in enumerate(self.bar_texts, start=1):
            text.setFont(st.font(0.85))
            self.bar_plot.addItem(text, ignoreBounds=True)
        self.jac_plot = softmax_ci.addPlot(row=0, col=1, enableMenu=False)
        st.style_plot(self.jac_plot, tr("Jacobian ∂p_i/∂z_j = (diag(p) − p pᵀ) / T"), "i", "j")
        self.jac_plot.getViewBox().invertY(True)
        self.jac_image = CellImage(axisOrder="row-major")
        self.jac_image.setLookupTable(pg.colormap.get("CET-D1A").getLookupTable(nPts=256))
        self.jac_plot.addItem(self.jac_image)
        self.jac_plot.setRange(xRange=(0.5, LOGITS + 0.5), yRange=(0.5, LOGITS + 0.5), padding=0)
        for side in ("left", "bottom"):
            self.jac_plot.getAxis(side).setTicks([[(i, str(i)) for i in range(1, LOGITS + 1)]])
        self.jac_texts = [[pg.TextItem(color=st.foreground, anchor=(0.5, 0.5)) for _ in range(LOGITS)] for _ in range(LOGITS)]
        for i, row in enumerate(self.jac_texts, start=1):
            for j, text in enumerate(row, start=1):
                text.setFont(st.font(0.75))
                text.setPos(j, i)
                self.jac_plot.addItem(text, ignoreBounds=True)
        zero = pg.mkPen(st.muted, width=1)
        self.curve_plot.addItem(pg.InfiniteLine(pos=0, angle=0, pen=zero), ignoreBounds=True)
        self.curve_plot.addItem(pg.InfiniteLine(pos=0, angle=90, pen=zero), ignoreBounds=True)
        for plot in (self.curve_plot, self.depth_plot, self.hist_plot, self.collapse_plot, self.bar_plot, self.jac_plot):
            plot.showGrid(x=False, y=False)  # a grid repaints as hundreds of translucent lines on every change
        for plot in (self.depth_plot, self.hist_plot, self.collapse_plot, self.bar_plot, self.jac_plot):
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.getAxis("left").setWidth(int(st.point_size * 4.5))
        self.hist_plot.getAxis("left").setWidth(int(st.point_size * 5.5))  # "0.08" and the turned label beside it
        self.collapse_plot.getAxis("left").setWidth(int(st.point_size * 5.5))  # "10⁻¹⁰" and the turned σᵢ(M)
        depth_ci.layout.setRowStretchFactor(0, 1)
        depth_ci.layout.setRowStretchFactor(1, 0)
        for plot in (self.curve_plot, self.depth_plot, self.hist_plot, self.collapse_plot, self.bar_plot, self.jac_plot):
            never_widens(plot.titleLabel)  # a long title (or its translation) never pushes the figure wider
        for ci, stretches in ((depth_ci, (1, 1, 1)), (softmax_ci, (1, 2))):  # whatever titles and legends ask for
            for col, stretch in enumerate(stretches):
                ci.layout.setColumnStretchFactor(col, stretch)
                ci.layout.setColumnPreferredWidth(col, 10)
        static = [plot.titleLabel for plot in (self.curve_plot, self.depth_plot, self.hist_plot, self.collapse_plot,
                                               self.bar_plot, self.jac_plot)]
        static += [self.depth_legend, self.jac_plot.getAxis("left"), self.jac_plot.getAxis("bottom"),
                   self.bar_plot.getAxis("left"), self.bar_plot.getAxis("bottom")]
        # the depth row's axes too: a change of the network re-labels one or two of them, the rest repaint as a blit
        static += [plot.getAxis(side) for plot in (self.curve_plot, self.depth_plot, self.hist_plot, self.collapse_plot)
                   for side in ("left", "bottom")]
        for item in static:
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self._drawn: dict[str, Any] = {}
        return box

    # ---- drawing ----------------------------------------------------------------------------------
    def draw(self, scene: ActivationsScene) -> Iterator[None]:
        """In steps, one graphics view each (see Panel): the curves and probe, the depth view, the softmax."""
        self._draw_curves(scene)
        self._draw_probe(scene)
        yield
        self._draw_depth(scene)
        self._draw_collapse(scene)
        yield
        self._draw_softmax(scene)
        self.refresh_notes_later()

    def _changed(self, key: str, *state: Any) -> bool:
        """Whether ``state`` differs from what ``key`` drew last: results are compared by identity
        (a cached result is the same object), plain values by equality."""
        old = self._drawn.get(key)
        same = old is not None and len(old) == len(state) and all(
            a is b or (isinstance(a, (bool, int, float, str, tuple)) and a == b) for a, b in zip(old, state))
        self._drawn[key] = state
        return not same

    def _draw_curves(self, scene: ActivationsScene) -> None:
        v = self.values
        if self._changed("curves", *scene.curves.values(), tuple(scene.curves), v["show_dy"], v["show_d2y"],
                         v["x_min"], v["x_max"]):
            self._draw_lines(scene)
        # a new depth-view activation moves the bands only: the curves stay as they were painted
        if self._changed("bands", scene.focus_properties, scene.focus, v["x_min"], v["x_max"], self._curve_y):
            self._draw_bands(scene)

    def _draw_lines(self, scene: ActivationsScene) -> None:
        v = self.values
        lows, highs = [], []
        for name in NAMES:
            curves = scene.curves.get(name)
            for kind in ("y", "dy", "d2y"):
                item = self.lines[name, kind]
                on = curves is not None and (kind == "y" or v["show_" + kind])
                item.setVisible(on)
                if on:
                    values = getattr(curves, kind)
                    item.setData(curves.x, values, skipFiniteCheck=True)
                    lows.append(float(values.min()))
                    highs.append(float(values.max()))
        if lows:
            self._curve_y = held_range(self._curve_y, snapped_range(min(lows), max(highs)))
            self.curve_plot.setRange(xRange=(v["x_min"], v["x_max"]), yRange=self._curve_y, padding=0)
        else:
            self.curve_plot.setRange(xRange=(v["x_min"], v["x_max"]), padding=0)
        self.curve_plot.vb.prepareForPaint()  # apply the new view now, not in a second paint
        for name, mark in self.dead_marks.items():
            curves = scene.curves.get(name)
            dead = dead_zone(curves.dy) if curves is not None else None
            mark.setVisible(dead is not None)
            if dead is not None:
                mark.setData(curves.x, np.where(dead, curves.y, np.nan))
        names = list(scene.curves)
        if names != self._legend_names:
            self._show_legend(names)
            self._legend_names = names

    def _show_legend(self, names: list[str]) -> None:
        """The legend lists ``names`` in order. Each curve's row (sample and label) is made with the
        figure and kept: LegendItem.clear and addItem made new labels at every change (4.2 ms)."""
        legend = self.curve_legend
        for row in legend.items:
            for item in row:
                legend.layout.removeItem(item)
                item.hide()
        legend.items = [self._legend_rows[name] for name in names]
        for index, (sample, label) in enumerate(legend.items):
            legend.layout.addItem(sample, index, 0, alignment=Qt.AlignmentFlag.AlignVCenter)
            legend.layout.addItem(label, index, 1)
            sample.show()
            label.show()
        legend.updateSize()

    def _legend_row(self, name: str) -> tuple[pg.ItemSample, pg.LabelItem]:
        """The sample and label of ``name``'s curve, as LegendItem.addItem makes them; hidden."""
        legend = self.curve_legend
        label = pg.LabelItem(pick(*NAMES[name]), color=legend.opts["labelTextColor"], justify="left",
                             size=legend.opts["labelTextSize"])
        row = (legend.sampleType(self.lines[name, "y"]), label)
        for item in row:
            item.setParentItem(legend)
            item.hide()
        return row

    def _draw_bands(self, scene: ActivationsScene) -> None:
        """Shade where the depth view's activation saturates (|f'| < 0.01) or is dead (f' = 0)."""
        v = self.values
        intervals = [(max(a, v["x_min"]), min(b, v["x_max"])) for a, b in scene.focus_properties.saturation]
        intervals = [(a, b) for a, b in intervals if b > a]
        bottom = self.curve_plot.vb.viewRange()[1][0]
        params = activation_params(scene.focus, v)
        for index, (band, label) in enumerate(zip(self.bands, self.band_labels)):
            visible = index < len(intervals)
            band.setVisible(visible)
            label.setVisible(visible)
            if not visible:
                continue
            a, b = intervals[index]
            band.setRegion((a, b))
            middle = act.evaluate(scene.focus, np.array([(a + b) / 2]), **params).dy[0]
            name = pick(*NAMES[scene.focus])
            label.setText(tr("dead: f′ = 0") if middle == 0 else tr("saturated"))
            label.setPos((a + b) / 2, bottom)
            tip = (tr("{name}: dead zone, f′ = 0") if middle == 0 else tr("{name}: saturated, |f′| < 0.01")).format(name=name)
            band.setToolTip(tip)

    def _draw_probe(self, scene: ActivationsScene) -> None:
        v = self.values
        x = v["probe_x"]
        points = tuple((name, float(p.y[0]), float(p.dy[0])) for name, p in scene.probe.items())
        if not self._changed("probe", x, v["show_dy"], points):
            return  # a change of the depth view leaves the top plot unpainted
        with QSignalBlocker(self.probe_line):
            self.probe_line.setValue(x)
        xs, ys, brushes, parts = [], [], [], [f"x = {x:.4g}"]
        for name, point in scene.probe.items():
            y, dy = float(point.y[0]), float(point.dy[0])
            xs.append(x)
            ys.append(y)
            brushes.append(self.brushes[name])
            if v["show_dy"]:
                xs.append(x)
                ys.append(dy)
                brushes.append(self.brushes[name])
            color = self.colors[name]
            parts.append(f"<span style='color:{color}'>■</span> {html.escape(pick(*NAMES[name]))}: "
                         f"f = {y:.4g}, f′ = {dy:.4g}")
        self.probe_dots.setData(xs, ys, brush=brushes)
        text = " &nbsp; ".join(parts)
        if self.readout.text() != text:
            self.readout.setText(text)
            # its height grows, never shrinks: fewer curves shown do not move (and repaint) every plot below
            needed = self.readout.heightForWidth(max(self.readout.width(), 1))
            if needed > self.readout.minimumHeight():
                self.readout.setFixedHeight(needed)

    def _draw_depth(self, scene: ActivationsScene) -> None:
        flow = scene.flow
        if not self._changed("flow", flow):
            return
        layers = np.arange(1, len(flow.activation_std) + 1, dtype=float)
        ys = []
        series = [getattr(flow, key) for key in self.depth_curves]
        floor = plot_floor(*series)
        for curve, values in zip(self.depth_curves.values(), series):
            y = log10_clipped(values, floor)
            curve.setData(layers, y, skipFiniteCheck=True)
            ys.append(y)
        zeros = any(np.any(values == 0) for values in series)
        lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
        self._depth_y = held_range(self._depth_y, (math.floor(lo - 0.1), math.ceil(hi + 0.1)))
        self.depth_plot.setRange(xRange=(1, max(layers[-1], 2)), yRange=self._depth_y, padding=0.02)
        depth = len(layers)
        note = tr("last layer: {dead} dead,\n{saturated} saturated").format(
            dead=f"{flow.dead_fraction[-1]:.0%}", saturated=f"{flow.saturated_fraction[-1]:.0%}")
        if zeros:
            note += "\n" + tr("exactly 0 is drawn on the bottom edge")
        self.depth_note.setText(note)
        chosen = sorted({0, (depth - 1) // 2, depth - 1})
        labels = []
        for curve, layer in zip(self.hist_curves, chosen + [None] * (3 - len(chosen))):
            curve.setVisible(layer is not None)
            if layer is None:
                continue
            counts, edges = flow.histograms[layer], flow.histogram_edges[layer]
            total = counts.sum()
            curve.setData(edges, counts / total if total else counts.astype(float), skipFiniteCheck=True)
            labels.append(tr("layer {k}").format(k=layer + 1))  # no numbers: a changing legend re-lays out the figure
        if labels != self._hist_labels:
            self.hist_legend.clear()
            for curve, label in zip(self.hist_curves, labels):
                self.hist_legend.addItem(curve, label)
            self._hist_labels = labels
        edges = flow.histogram_edges[chosen]
        edges = edges[np.isfinite(edges)]
        shares = flow.histograms[chosen] / np.maximum(flow.histograms[chosen].sum(axis=1, keepdims=True), 1)
        if edges.size:  # snapped, so a new seed or bias re-labels the axes only now and then
            self._hist_x = held_range(self._hist_x, snapped_range(float(edges.min()), float(edges.max())))
            self._hist_y = held_range(self._hist_y, (0, snapped_range(0.0, float(shares.max()) or 1.0)[1]))
            self.hist_plot.setRange(xRange=self._hist_x, yRange=self._hist_y, padding=0)
        self.hist_plot.vb.prepareForPaint()
        self.depth_plot.vb.prepareForPaint()
        problems = []
        if not np.all(np.isfinite(flow.activation_std)):
            layer = int(np.argmin(np.isfinite(flow.activation_std))) + 1
            problems.append(tr("activations overflow from layer {k} on").format(k=layer))
        if problems:
            self.message.emit("; ".join(problems), False)

    def _draw_collapse(self, scene: ActivationsScene) -> None:
        """The product's singular values (log10, largest first) and whether the network is that one
        matrix on its probe inputs."""
        c, flow = scene.collapse, scene.flow
        if not self._changed("collapse", flow, c.product):
            return
        logs = c.product.log10_singular_values
        finite = logs[np.isfinite(logs)]
        floor = (math.floor(float(finite.min())) - 1) if finite.size else 0.0  # an exact 0 sits a decade below
        ys = np.where(np.isfinite(logs), logs, floor)
        xs = np.arange(1, len(ys) + 1, dtype=float)
        self.sv_curve.setData(xs, ys, skipFiniteCheck=True)
        self.sv_dots.setData(xs, ys)
        lo, hi = float(ys.min()), float(ys.max())
        self._sv_y = held_range(self._sv_y, (math.floor(lo - 0.1), math.ceil(hi + 0.1)))
        self.collapse_plot.setRange(xRange=(1, max(len(ys), 2)), yRange=self._sv_y, padding=0.02)
        self.collapse_plot.vb.prepareForPaint()
        self.collapse_note.setText(self.collapse_text(scene))

    def collapse_text(self, scene: ActivationsScene) -> str:
        """Whether the network is the one matrix M (plus the offset c of its biases) on its probe
        inputs, with the relative difference that says so."""
        c = scene.collapse
        if not math.isfinite(c.error):
            return tr("beyond float64: overflow")
        difference = tr("rel. diff. {error}").format(error=f"{c.error:.2g}")
        if c.error < 1e-9:
            return "\n".join([tr("net(x) = M x + c"), tr("on {n} probe inputs:").format(n=len(scene.flow.inputs)), difference])
        if scene.focus == "linear":
            return tr("net(x) ≠ M x + c: LayerNorm") + "\n" + difference
        return tr("net(x) ≠ M x + c: {name}").format(name=pick(*NAMES[scene.focus])) + "\n" + difference

    def _place_collapse_note(self, *_) -> None:
        self.collapse_note.setPos(6, self.collapse_plot.vb.height() - 2)
        self.product_label.setPos(self.collapse_plot.vb.width() - 6, 2)

    _sv_y = None

    def _draw_softmax(self, scene: ActivationsScene) -> None:
        sm = scene.softmax
        if not self._changed("softmax", tuple(sm.probabilities.tolist()), tuple(sm.jacobian.ravel().tolist())):
            return
        p = sm.probabilities
        self.bars.setOpts(height=p)
        for i, text in enumerate(self.bar_texts):
            text.setText(f"{p[i]:.3f}")
            text.setPos(i + 1, p[i] + 0.02 if p[i] < 0.9 else p[i] - 0.08)
        jac = sm.jacobian
        bound = max(float(np.abs(jac).max()), 1e-12)
        self.jac_image.setImage(jac, levels=(-bound, bound), autoLevels=False)
        self.jac_image.setRect(QRectF(0.5, 0.5, LOGITS, LOGITS))
        for i in range(LOGITS):
            for j in range(LOGITS):
                text = self.jac_texts[i][j]
                text.setText(f"{jac[i, j]:.2f}")
                text.setColor("#FFFFFF" if abs(jac[i, j]) > 0.55 * bound else "#000000")  # readable on dark cells

    # ---- interaction --------------------------------------------------------------------------------
    def _probe_dragged(self, line) -> None:
        self.set_values({"probe_x": round(float(line.value()), 3)})

    def values_changed(self, names: list[str]) -> None:
        v = self.values
        self.controls["gain"].setEnabled(v["gain_mode"] == "custom")
        self.controls["init_std"].setEnabled(v["init"] == "normal")
        self.controls["gain_mode"].setEnabled(v["init"] != "normal")
        shown = {name for name in NAMES if v[f"show_{name}"]} | {v["depth_activation"]}
        for name, fields in ACTIVATION_PARAMS.items():
            for param in fields.values():
                self.controls[param].setEnabled(name in shown)

    def notes_html(self) -> str:
        """The notes, with the current activation, init and softmax numbers filled in."""
        text = super().notes_html()
        v = self.values
        name = v["depth_activation"]
        gain = gain_for(v)
        init = v["init"]
        shown_gain = gain if gain is not None else (1.0 if init.startswith("xavier") else math.sqrt(2))
        fan = v["width"]
        std = {"xavier_uniform": shown_gain * math.sqrt(2 / (2 * fan)), "xavier_normal": shown_gain * math.sqrt(2 / (2 * fan)),
               "kaiming_uniform": shown_gain / math.sqrt(fan), "kaiming_normal": shown_gain / math.sqrt(fan),
               "normal": v["init_std"]}[init]
        numbers = {"activation": pick(*NAMES[name]), "init": pick(*INITS[init]), "gain": f"{shown_gain:.4g}",
                   "fan": str(fan), "std": f"{std:.4g}", "depth": str(v["depth"]), "T": f"{v['temperature']:.3g}"}
        for key, value in numbers.items():
            text = text.replace("{" + key + "}", html.escape(value))
        return text

    def caption(self) -> str:
        v, p = self.values, self.PARAMS
        shown = ", ".join(pick(*NAMES[n]) for n in NAMES if v[f"show_{n}"])
        names = ["x_min", "x_max", "probe_x", "depth_activation", "init", "gain_mode"]
        names += ["gain"] if v["gain_mode"] == "custom" else []
        names += ["init_std"] if v["init"] == "normal" else []
        names += ["depth", "width", "batch", "bias", "residual", "layer_norm", "seed", "temperature"]
        return f"{self.title()}: {shown}; {p.caption(v, names)}"
