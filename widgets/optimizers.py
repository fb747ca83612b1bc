"""Optimizers panel: SGD, Momentum, Nesterov, Adagrad, RMSProp, Adam and AdamW racing over a
2-D loss surface, with LR schedules, gradient clipping and minibatch noise."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from widgets.items import DecadeAxis, PixelCurve, held_range
from widgets.panel import Panel
from workbench.compute import optimizers as opt
from workbench.i18n import pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

NAMES = {"sgd": ("SGD", "SGD"), "momentum": ("Momentum", "动量 Momentum"), "nesterov": ("Nesterov", "Nesterov"),
         "adagrad": ("Adagrad", "Adagrad"), "rmsprop": ("RMSProp", "RMSProp"), "adam": ("Adam", "Adam"),
         "adamw": ("AdamW", "AdamW")}
SURFACES = {"rosenbrock": ("Rosenbrock valley", "Rosenbrock 香蕉谷"), "bowl": ("Quadratic bowl", "二次碗"),
            "saddle": ("Saddle", "鞍点"), "himmelblau": ("Himmelblau (4 minima)", "Himmelblau（4 个极小值）"),
            "beale": ("Beale", "Beale"), "rastrigin": ("Rastrigin (many local minima)", "Rastrigin（大量局部极小）")}
SCHEDULES = {"constant": ("Constant", "恒定"), "step": ("Step decay", "阶梯衰减"),
             "exponential": ("Exponential decay", "指数衰减"), "cosine": ("Cosine annealing", "余弦退火"),
             "warmup": ("Linear warmup + cosine", "线性预热 + 余弦")}

DEFAULTS = opt.DEFAULT_HYPER  # torch's defaults, with learning rates picked for a good race


def _lr(name: str) -> Param:
    return Param(f"{name}_lr", "float", DEFAULTS[name]["lr"], "Learning rate lr", "学习率 lr",
                 "Step size; every optimizer multiplies it by the schedule's factor.",
                 "步长；各优化器都会再乘以学习率调度的系数。", lo=1e-5, hi=10.0, log=True, group=NAMES[name][0])


def _on(name: str, default: bool = True) -> Param:
    en, zh = NAMES[name]
    return Param(f"use_{name}", "bool", default, f"Race {en}", f"参加比赛：{zh}",
                 f"Trace {en} on the surface.", f"在曲面上画出 {zh} 的路径。", group=en)


def _momentum(name: str) -> Param:
    # torch.optim.SGD(nesterov=True) refuses momentum 0 ("Nesterov momentum requires a momentum"), and so
    # does the backend: the declaration starts at the slider's first step, and the help says why
    nesterov = name == "nesterov"
    return Param(f"{name}_momentum", "float", DEFAULTS[name]["momentum"], "Momentum", "动量系数 momentum",
                 "Weight of the running velocity buffer (torch's momentum)."
                 + (" Nesterov needs one above 0 (torch refuses 0; near 0 it is plain SGD)." if nesterov else ""),
                 "速度缓冲的衰减系数（torch 的 momentum）。"
                 + ("Nesterov 需要大于 0 的动量（torch 不接受 0；接近 0 时就是普通 SGD）。" if nesterov else ""),
                 lo=0.001 if nesterov else 0.0, hi=0.999, step=0.001, group=NAMES[name][0])


def _eps(name: str) -> Param:
    return Param(f"{name}_eps", "float", DEFAULTS[name]["eps"], "eps", "eps", "Added to the denominator for numerical stability.",
                 "加在分母上防止除零。", lo=1e-12, hi=1.0, log=True, group=NAMES[name][0])


def _betas(name: str) -> list[Param]:
    group = NAMES[name][0]
    return [Param(f"{name}_beta1", "float", DEFAULTS[name]["betas"][0], "beta1 (momentum)", "beta1（一阶矩）",
                  "Decay of the running mean of gradients (first moment).", "梯度一阶矩（滑动平均）的衰减系数。",
                  lo=0.0, hi=0.999, step=0.001, group=group),
            Param(f"{name}_beta2", "float", DEFAULTS[name]["betas"][1], "beta2 (second moment)", "beta2（二阶矩）",
                  "Decay of the running mean of squared gradients.", "梯度平方滑动平均的衰减系数。",
                  lo=0.5, hi=0.9999, step=0.0001, group=group)]


def _wd(name: str) -> Param:
    return Param(f"{name}_weight_decay", "float", DEFAULTS[name]["weight_decay"], "Weight decay", "权重衰减 weight_decay",
                 "L2 penalty (SGD adds wd*x to the gradient; AdamW shrinks x by lr*wd directly).",
                 "L2 惩罚（SGD 在梯度上加 wd*x；AdamW 直接把 x 缩小 lr*wd）。",
                 lo=0.0, hi=1.0, step=0.001, group=NAMES[name][0])


PARAMETERS = [
    Param("surface", "choice", "rosenbrock", "Loss surface", "损失曲面", "The 2-D function every optimizer minimises.",
          "各优化器要最小化的二维函数。", choices=tuple(Choice(k, *v) for k, v in SURFACES.items()), group="Surface"),
    Param("kappa", "float", 10.0, "Condition number kappa", "条件数 kappa",
          "Bowl only: curvature ratio between the steep and the flat axis.", "仅碗形：陡轴与缓轴的曲率之比。",
          lo=1.0, hi=1000.0, log=True, group="Surface"),
    Param("theta", "float", 0.0, "Rotation theta", "旋转角 theta",
          "Bowl only: rotate the axes; at 45° no coordinate is an eigen-direction.", "仅碗形：旋转坐标轴；45° 时没有哪个坐标轴是特征方向。",
          lo=0.0, hi=90.0, step=1.0, unit="°", group="Surface"),
    Param("start_x", "float", -1.5, "Start x", "起点 x", "Where every optimizer starts (or click/drag on the map).",
          "所有优化器的起点（也可在图上点击或拖动）。", lo=-100.0, hi=100.0, step=0.01, group="Surface"),
    Param("start_y", "float", 2.0, "Start y", "起点 y", "Where every optimizer starts (or click/drag on the map).",
          "所有优化器的起点（也可在图上点击或拖动）。", lo=-100.0, hi=100.0, step=0.01, group="Surface"),
    Param("steps", "int", 500, "Steps", "迭代步数", "Number of optimizer steps traced.", "每个优化器迭代的步数。",
          lo=1, hi=2000, group="Surface"),
    _on("sgd"), _lr("sgd"), _wd("sgd"),
    _on("momentum"), _lr("momentum"), _momentum("momentum"),
    Param("momentum_dampening", "float", DEFAULTS["momentum"]["dampening"], "Dampening", "阻尼 dampening",
          "torch: buf = momentum*buf + (1 - dampening)*grad.", "torch：buf = momentum*buf + (1 - dampening)*grad。",
          lo=0.0, hi=0.99, step=0.01, group="Momentum"),
    _on("nesterov"), _lr("nesterov"), _momentum("nesterov"),
    _on("adagrad"), _lr("adagrad"),
    Param("adagrad_lr_decay", "float", DEFAULTS["adagrad"]["lr_decay"], "lr_decay", "学习率衰减 lr_decay",
          "torch: lr / (1 + (t - 1) * lr_decay).", "torch：lr / (1 + (t - 1) * lr_decay)。",
          lo=0.0, hi=1.0, step=0.001, group="Adagrad"),
    Param("adagrad_initial_accumulator_value", "float", DEFAULTS["adagrad"]["initial_accumulator_value"], "Initial accumulator", "累加器初值",
          "Starting value of the sum of squared gradients.", "梯度平方和的初始值。", lo=0.0, hi=10.0, step=0.01, group="Adagrad"),
    _eps("adagrad"),
    _on("rmsprop"), _lr("rmsprop"),
    Param("rmsprop_alpha", "float", DEFAULTS["rmsprop"]["alpha"], "alpha (smoothing)", "alpha（平滑系数）",
          "Decay of the running mean of squared gradients.", "梯度平方滑动平均的衰减系数。",
          lo=0.5, hi=0.9999, step=0.0001, group="RMSProp"),
    _eps("rmsprop"), _momentum("rmsprop"),
    Param("rmsprop_centered", "bool", DEFAULTS["rmsprop"]["centered"], "Centered", "中心化 centered",
          "Divide by the estimated variance instead of the raw second moment.", "用估计的方差而非原始二阶矩作分母。",
          group="RMSProp"),
    _on("adam"), _lr("adam"), *_betas("adam"), _eps("adam"),
    Param("adam_amsgrad", "bool", DEFAULTS["adam"]["amsgrad"], "AMSGrad", "AMSGrad", "Use the running maximum of the second moment.",
          "使用二阶矩的历史最大值。", group="Adam"),
    _on("adamw"), _lr("adamw"), *_betas("adamw"), _eps("adamw"), _wd("adamw"),
    Param("schedule", "choice", "constant", "Schedule", "学习率调度", "How the learning rate changes over the steps.",
          "学习率随步数如何变化。", choices=tuple(Choice(k, *v) for k, v in SCHEDULES.items()), group="Learning-rate schedule"),
    Param("step_size", "int", 100, "Step size", "间隔步数 step_size", "Step decay: multiply by gamma every step_size steps.",
          "阶梯衰减：每 step_size 步乘以 gamma。", lo=1, hi=2000, group="Learning-rate schedule"),
    Param("gamma", "float", 0.5, "gamma", "衰减因子 gamma", "Step decay / exponential decay factor.",
          "阶梯衰减 / 指数衰减的乘法因子。", lo=0.01, hi=1.0, step=0.001, group="Learning-rate schedule"),
    Param("T_max", "int", 500, "T_max", "周期 T_max", "Cosine: steps from lr down to eta_min.",
          "余弦：从 lr 降到 eta_min 所用的步数。", lo=1, hi=5000, group="Learning-rate schedule"),
    Param("eta_min", "float", 0.0, "eta_min", "最小学习率 eta_min", "Cosine: the lowest learning rate (absolute).",
          "余弦：最低学习率（绝对值）。", lo=0.0, hi=1.0, step=0.0001, group="Learning-rate schedule"),
    Param("warmup_steps", "int", 50, "Warmup steps", "预热步数", "Warmup: steps of linear increase before the cosine.",
          "预热：余弦之前线性增长的步数。", lo=1, hi=1000, group="Learning-rate schedule"),
    Param("clip", "bool", False, "Clip gradient norm", "梯度裁剪", "clip_grad_norm_: rescale the gradient to at most max_norm.",
          "clip_grad_norm_：把梯度范数缩放到不超过 max_norm。", group="Gradient"),
    Param("max_norm", "float", 1.0, "max_norm", "最大范数 max_norm", "Largest allowed gradient norm.",
          "允许的最大梯度范数。", lo=1e-3, hi=1e3, log=True, group="Gradient"),
    Param("noise_sigma", "float", 0.0, "Gradient noise sigma", "梯度噪声 sigma",
          "Minibatch noise: Gaussian with std sigma/sqrt(batch). 0 = full batch.",
          "小批量噪声：标准差 sigma/sqrt(batch) 的高斯噪声。0 = 全批量。", lo=0.0, hi=100.0, step=0.1, group="Gradient"),
    Param("batch_size", "int", 16, "Batch size", "批大小 batch size", "Larger batches average out more noise.",
          "批越大，噪声被平均得越多。", lo=1, hi=1024, group="Gradient"),
    Param("seed", "int", 0, "Noise seed", "噪声种子", "Seed of the gradient noise.", "梯度噪声的随机种子。",
          lo=0, hi=9999, group="Gradient"),
]


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """A new surface brings its own start point unless one is given."""
    if "surface" in changes:
        x, y = opt.make_surface(values["surface"]).start
        return {"start_x": x, "start_y": y}
    return {}


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    xmin, xmax, ymin, ymax = opt.make_surface(values["surface"]).window
    for name, lo, hi in (("start_x", xmin, xmax), ("start_y", ymin, ymax)):
        if not lo <= values[name] <= hi:
            problems.append(tr("{name}: {value} is outside the surface's window [{lo}, {hi}]").format(
                name=name, value=values[name], lo=lo, hi=hi))
    if not any(values[f"use_{n}"] for n in NAMES):
        problems.append(tr("use_*: select at least one optimizer"))
    return problems


def _only(names: str, base: Mapping[str, Any] | None = None, **values) -> dict:
    """Preset helper: race only ``names`` (space separated), with ``values``."""
    chosen = names.split()
    return {**{f"use_{n}": n in chosen for n in NAMES}, **values}


PRESETS = [
    Preset("ill_conditioned", "Ill-conditioned bowl: SGD zig-zags, momentum damps", "病态碗：SGD 之字形，动量抑制振荡",
           _only("sgd momentum nesterov", surface="bowl", kappa=50.0, theta=30.0, start_x=-2.5, start_y=2.0, steps=150,
                 sgd_lr=0.038, momentum_lr=0.01, momentum_momentum=0.8, nesterov_lr=0.01, nesterov_momentum=0.8)),
    Preset("rotated_bowl", "Rotated bowl: Adam loses its edge", "旋转的碗：Adam 失去优势",
           _only("sgd momentum rmsprop adam", surface="bowl", kappa=100.0, theta=45.0, start_x=-2.5, start_y=1.5,
                 steps=300, sgd_lr=0.019, momentum_lr=0.005, rmsprop_lr=0.05, adam_lr=0.1)),
    Preset("saddle_escape", "Saddle escape: with and without momentum", "逃离鞍点：有无动量",
           _only("sgd momentum adam", surface="saddle", start_x=-1.5, start_y=0.001, steps=300,
                 sgd_lr=0.05, momentum_lr=0.05, adam_lr=0.05)),
    Preset("lr_too_large", "Learning rate too large: divergence", "学习率过大：发散",
           _only("sgd momentum adam", surface="rosenbrock", start_x=-1.5, start_y=2.0, steps=300,
                 sgd_lr=0.003, momentum_lr=0.002, adam_lr=0.5)),
    Preset("warmup_cosine", "Warmup + cosine: a large lr survives the first steps", "预热 + 余弦：大学习率挺过最初几步",
           _only("sgd adam", surface="rosenbrock", start_x=-1.5, start_y=2.0, steps=500, schedule="warmup",
                 warmup_steps=50, T_max=450, sgd_lr=0.0025, adam_lr=0.1)),
    Preset("noisy_minibatch", "Noisy minibatch SGD vs full batch", "带噪声的小批量 SGD 与全批量",
           _only("sgd", surface="bowl", kappa=10.0, theta=20.0, start_x=-2.5, start_y=2.0, steps=200, sgd_lr=0.1,
                 noise_sigma=20.0, batch_size=4)),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)

HYPER = {  # optimizer -> {torch keyword: parameter name}
    "sgd": {"lr": "sgd_lr", "weight_decay": "sgd_weight_decay"},
    "momentum": {"lr": "momentum_lr", "momentum": "momentum_momentum", "dampening": "momentum_dampening"},
    "nesterov": {"lr": "nesterov_lr", "momentum": "nesterov_momentum"},
    "adagrad": {"lr": "adagrad_lr", "lr_decay": "adagrad_lr_decay", "eps": "adagrad_eps",
                "initial_accumulator_value": "adagrad_initial_accumulator_value"},
    "rmsprop": {"lr": "rmsprop_lr", "alpha": "rmsprop_alpha", "eps": "rmsprop_eps", "momentum": "rmsprop_momentum",
                "centered": "rmsprop_centered"},
    "adam": {"lr": "adam_lr", "eps": "adam_eps", "amsgrad": "adam_amsgrad"},
    "adamw": {"lr": "adamw_lr", "eps": "adamw_eps", "weight_decay": "adamw_weight_decay"},
}
SCHEDULE_FIELDS = {"constant": (), "step": ("step_size", "gamma"), "exponential": ("gamma",),
                   "cosine": ("T_max", "eta_min"), "warmup": ("warmup_steps", "T_max", "eta_min")}


def hyper_for(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """torch.optim keyword arguments of optimizer ``name`` from the panel's values."""
    hyper = {key: values[param] for key, param in HYPER[name].items()}
    if name in ("adam", "adamw"):
        hyper["betas"] = (values[f"{name}_beta1"], values[f"{name}_beta2"])
    return hyper


@lru_cache(maxsize=8)
def _grid(surface: str, kappa: float, theta: float, n: int = 240) -> np.ndarray:
    """log10(f - f_min + 1e-3) on an n x n grid over the default window, shape (n, n) indexed [x, y]."""
    s = opt.make_surface(surface, kappa=kappa, theta=theta)
    _, _, z = opt.surface_grid(s, n, n)
    fmin = min(float(s.f(np.array(m[0]), np.array(m[1]))) for m in s.minima) if s.minima else float(np.min(z))
    out = np.log10(np.maximum(z - fmin, 0.0) + 1e-3).T
    out.setflags(write=False)
    return out


SETTLE_MS = 150  # after the last change, the paths are redrawn antialiased


@dataclass(frozen=True)
class Race:
    """What the panel draws: the surface (log heat map), its minima and one trace per optimizer."""

    surface: str
    window: tuple[float, float, float, float]
    minima: tuple[tuple[float, float], ...]
    log_loss_grid: np.ndarray  # (n, n) indexed [x, y]
    f_min: float  # lowest loss among the known minima
    traces: dict[str, Any]  # optimizer -> opt.Trace


@lru_cache(maxsize=64)
def _trace(surface: tuple, name: str, start: tuple, steps: int, schedule, clip, noise, seed: int, hyper: tuple):
    """opt.trace, remembered: changing one optimizer's setting re-traces only that optimizer."""
    name_, kappa, theta = surface
    return opt.trace(opt.make_surface(name_, kappa=kappa, theta=theta), name, start, steps, schedule=schedule,
                     clip=clip, noise=noise, seed=seed, **dict(hyper))


def compute_race(values: Mapping[str, Any]) -> Race:
    surface = opt.make_surface(values["surface"], kappa=values["kappa"], theta=values["theta"])
    kind = values["schedule"]
    schedule = None if kind == "constant" else opt.Schedule(kind, **{f: values[f] for f in SCHEDULE_FIELDS[kind]})
    noise = (values["noise_sigma"], values["batch_size"]) if values["noise_sigma"] > 0 else None
    clip = values["max_norm"] if values["clip"] else None
    start = (values["start_x"], values["start_y"])
    key = (values["surface"], values["kappa"], values["theta"])
    traces = {name: _trace(key, name, start, values["steps"], schedule, clip, noise, values["seed"],
                           tuple(sorted(hyper_for(name, values).items())))
              for name in NAMES if values[f"use_{name}"]}
    grid = _grid(values["surface"], values["kappa"], values["theta"])
    f_min = min(float(surface.f(np.float64(x), np.float64(y))) for x, y in surface.minima)
    return Race(values["surface"], tuple(surface.window), tuple(map(tuple, surface.minima)), grid, f_min, traces)


def on_screen_changes(points: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Mask of the points (n, 2) worth drawing: the first, the last, and each one that lands in
    another screen cell (``cell``: (2,) data units) than the point before it. A converging tail
    of hundreds of sub-pixel steps then costs a few vertices instead of hundreds."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) > 2 and np.all(cell > 0):
        cells = np.floor(points / cell)
        keep[1:-1] = np.any(cells[1:-1] != cells[:-2], axis=1)
    return keep


class _PickViewBox(pg.ViewBox):
    """A view box where a left click or drag sets the start point; the wheel still zooms."""

    def __init__(self, on_pick):
        super().__init__()
        self._on_pick = on_pick
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, event):
        if event.button() == Qt.LeftButton:
            event.accept()
            self._on_pick(self.mapSceneToView(event.scenePos()))
        else:
            super().mouseClickEvent(event)

    def mouseDragEvent(self, event, axis=None):
        if event.button() == Qt.LeftButton:
            event.accept()
            self._on_pick(self.mapSceneToView(event.scenePos()))
        else:
            super().mouseDragEvent(event, axis)


class OptimizersPanel(Panel):
    NAME = "optimizers"
    TITLE_EN = "Optimizers"
    TITLE_ZH = "优化器"
    PARAMS = PARAMS
    BENCH_SWEEPS = {"start_x": (-1.9, 1.9), "adam_lr": (1e-3, 1.0)}
    OPEN_GROUPS = ("Surface",)

    compute = staticmethod(compute_race)

    def __init__(self, style, values=None, parent=None):
        self.shown_step: int | None = None  # None: the whole path
        self._timer = QTimer()
        self._timer.setInterval(16)
        self._moving = False  # changes are arriving (a drag): paths are drawn without antialiasing
        self._settle = QTimer()
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        super().__init__(style, values, parent)
        self._timer.timeout.connect(self._advance)
        self._settle.timeout.connect(self._settled)

    # ---- figure -------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        # One graphics view per plot (and one for the legend): a change repaints only the views whose
        # items changed; the learning rates, for one, do not move with the start point.
        views = []
        for _ in range(4):
            view = pg.GraphicsLayoutWidget()
            view.scene().setItemIndexMethod(QGraphicsScene.NoIndex)  # items move every frame: no BSP upkeep
            view.setBackground(st.background)
            views.append(view)
        map_view, loss_view, lr_view, legend_view = views
        self.map_view = map_view
        figure = QWidget()
        row = QHBoxLayout(figure)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        column = QVBoxLayout()
        column.setSpacing(0)
        for view, stretch in ((loss_view, 5), (lr_view, 5), (legend_view, 0)):
            column.addWidget(view, stretch)
        row.addWidget(map_view, 3)
        row.addLayout(column, 2)
        self.map = map_view.addPlot(row=0, col=0, viewBox=_PickViewBox(self._picked))
        st.style_plot(self.map, tr("Loss surface and paths"), "y", "x")
        self.map.setToolTip(tr("Click or drag on the map to move the start point"))
        self.map.showGrid(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.map.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=self.map)
        axis = self.colorbar.axis
        axis.setTextPen(pg.mkPen(st.foreground))
        axis.setStyle(tickFont=st.font(0.9))
        axis.setLabel(tr("log10(loss − min + 0.001)"), color=st.foreground, **{"font-size": f"{st.point_size:.0f}pt"})
        self.minima = pg.ScatterPlotItem(symbol="star", size=st.marker_size * 1.6, pen=pg.mkPen("#000000", width=1),
                                         brush=pg.mkBrush("#FFFFFF"))
        self.map.addItem(self.minima)
        self.loss_plot = loss_view.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.loss_plot, tr("Loss per step"), tr("loss − min"), tr("step"))
        self.lr_plot = lr_view.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.lr_plot, tr("Learning rate per step"), "lr", tr("step"))
        self.legend = pg.LegendItem(labelTextColor=st.foreground, labelTextSize=f"{st.point_size:.0f}pt",
                                    colCount=2, horSpacing=12)
        legend_view.addItem(self.legend, row=0, col=0)
        self.legend_view = legend_view
        for plot in (self.loss_plot, self.lr_plot):
            plot.showGrid(x=False, y=False)  # a log-axis grid alone costs ~5 ms per paint
        for plot in (self.map, self.loss_plot, self.lr_plot):  # fixed widths: new tick labels never re-lay out
            plot.getAxis("left").setWidth(int(st.point_size * 5.5))
        # Plain curve items (PlotDataItem's extra processing costs ~0.1 ms per setData), left out of
        # auto-range (ranges are set in draw), so a change never asks every item for its bounds.
        self.paths: dict[str, pg.PlotCurveItem] = {}
        self.loss_curves: dict[str, pg.PlotCurveItem] = {}
        self.lr_curves: dict[str, pg.PlotCurveItem] = {}
        for index, name in enumerate(NAMES):
            color = st.series[index]
            self.paths[name] = PixelCurve(pen=st.pen(color), antialias=True)
            self.map.addItem(self.paths[name], ignoreBounds=True)
            self.loss_curves[name] = PixelCurve(pen=st.pen(color, st.thin_line_width))
            self.loss_plot.addItem(self.loss_curves[name], ignoreBounds=True)
            self.lr_curves[name] = PixelCurve(pen=st.pen(color, st.thin_line_width))
            self.lr_plot.addItem(self.lr_curves[name], ignoreBounds=True)
        self.colors = dict(zip(NAMES, st.series))
        self.brushes = {name: pg.mkBrush(color) for name, color in self.colors.items()}
        self.heads = pg.ScatterPlotItem(symbol="o", size=st.marker_size, pen=pg.mkPen(st.foreground, width=1.5))
        self.ends = pg.ScatterPlotItem(symbol="x", size=st.marker_size * 1.8, pen=None)
        self.start_marker = pg.ScatterPlotItem(symbol="o", size=st.marker_size * 1.3, pen=pg.mkPen(st.foreground, width=2),
                                               brush=pg.mkBrush("#FFFFFF"))
        for item in (self.heads, self.ends, self.start_marker):
            self.map.addItem(item, ignoreBounds=True)
        for item in (self.map.titleLabel, self.loss_plot.titleLabel, self.lr_plot.titleLabel, self.colorbar,
                     *(plot.getAxis(side) for plot in (self.map, self.loss_plot, self.lr_plot)
                       for side in ("left", "bottom"))):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged: repainting is a blit
        self.image.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self._drawn_grid: np.ndarray | None = None
        self._legend_rows: list[str] = []
        return figure

    def extra_controls(self) -> list[QWidget]:
        box = QWidget()
        box.setObjectName("playback")
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 6)
        buttons = QHBoxLayout()
        self.play_button = QPushButton(tr("Play"))
        self.play_button.setToolTip(tr("Animate the race from step 0"))
        self.play_button.clicked.connect(self.toggle_play)
        step_button = QPushButton(tr("Step"))
        step_button.setToolTip(tr("Advance one step"))
        step_button.clicked.connect(lambda: self.show_step((self.shown_step or 0) + 1))
        restart = QPushButton(tr("Restart"))
        restart.setToolTip(tr("Back to step 0"))
        restart.clicked.connect(lambda: (self.pause(), self.show_step(0)))
        for button in (self.play_button, step_button, restart):
            buttons.addWidget(button)
        column.addLayout(buttons)
        speed_row = QHBoxLayout()
        speed_row.addWidget(QLabel(tr("Speed (steps per frame)")))
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, 20)
        self.speed.setValue(2)
        speed_row.addWidget(self.speed)
        column.addLayout(speed_row)
        self.scrub_label = QLabel()
        self.scrubber = QSlider(Qt.Horizontal)
        self.scrubber.setObjectName("scrubber")
        self.scrubber.setToolTip(tr("Drag to scrub through the steps"))
        self.scrubber.valueChanged.connect(lambda v: (self.pause(), self.show_step(v)))
        column.addWidget(self.scrub_label)
        column.addWidget(self.scrubber)
        return [box]

    def set_values(self, changes) -> bool:
        """While values keep changing (a drag), the paths skip antialiasing (a third of a frame on
        this machine); SETTLE_MS after the last change they are drawn smooth again."""
        self._moving = True
        self._settle.start()
        return super().set_values(changes)

    def compute_now(self) -> None:
        self._moving = False  # export and tests: smooth at once
        super().compute_now()

    def _settled(self) -> None:
        self._moving = False
        for path in self.paths.values():
            path.opts["antialias"] = True
            path.update()

    def caption(self) -> str:
        """Title and only the values that shape this figure: racing optimizers and active options."""
        v, p = self.values, self.PARAMS
        names = ["surface"] + (["kappa", "theta"] if v["surface"] == "bowl" else []) + ["start_x", "start_y", "steps"]
        names += ["schedule", *SCHEDULE_FIELDS[v["schedule"]]]
        names += ["max_norm"] if v["clip"] else []
        names += ["noise_sigma", "batch_size", "seed"] if v["noise_sigma"] > 0 else []
        parts = [p.caption(v, names)]
        for name in NAMES:
            if v[f"use_{name}"]:
                hyper = ", ".join(f"{key}={p[param].format(v[param])}" for key, param in HYPER[name].items())
                if name in ("adam", "adamw"):
                    hyper += f", betas=({v[name + '_beta1']}, {v[name + '_beta2']})"
                parts.append(f"{pick(*NAMES[name])}({hyper})")
        return f"{self.title()}: " + "; ".join(parts)

    # ---- interaction --------------------------------------------------------------------------
    def _picked(self, point) -> None:
        xmin, xmax, ymin, ymax = opt.make_surface(self.values["surface"]).window
        x = min(max(point.x(), xmin), xmax)
        y = min(max(point.y(), ymin), ymax)
        self.set_values({"start_x": round(x, 3), "start_y": round(y, 3)})

    def values_changed(self, names: list[str]) -> None:
        bowl = self.values["surface"] == "bowl"
        for name in ("kappa", "theta"):
            self.controls[name].setEnabled(bowl)
        used = SCHEDULE_FIELDS[self.values["schedule"]]
        for name in ("step_size", "gamma", "T_max", "eta_min", "warmup_steps"):
            self.controls[name].setEnabled(name in used)
        self.controls["max_norm"].setEnabled(self.values["clip"])
        noisy = self.values["noise_sigma"] > 0
        for name in ("batch_size", "seed"):
            self.controls[name].setEnabled(noisy)
        for optimizer in NAMES:
            on = self.values[f"use_{optimizer}"]
            for param in self.PARAMS:
                if param.group == NAMES[optimizer][0] and param.name != f"use_{optimizer}":
                    self.controls[param.name].setEnabled(on)
        if any(n.startswith("use_") for n in names) and hasattr(self, "notes"):
            self.refresh_notes()

    def notes_html(self) -> str:
        """The notes with the update rule of each selected optimizer only."""
        html = super().notes_html()

        def keep(match: re.Match) -> str:
            return match.group(2) if self.values.get(f"use_{match.group(1)}", True) else ""
        return re.sub(r"<!--rule:(\w+)-->(.*?)<!--/rule-->", keep, html, flags=re.S)

    def toggle_play(self) -> None:
        if self._timer.isActive():
            self.pause()
            return
        if self.result is None:
            return
        if self.shown_step is None or self.shown_step >= self._longest():
            self.shown_step = 0
        self._timer.start()
        self.play_button.setText(tr("Pause"))

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setText(tr("Play"))

    def _advance(self) -> None:
        step = (self.shown_step or 0) + self.speed.value()
        if step >= self._longest():
            self.pause()
            step = self._longest()
        self.show_step(step)

    def _longest(self) -> int:
        if self.result is None or not self.result.traces:
            return 0
        return max(len(t.points) - 1 for t in self.result.traces.values())

    def show_step(self, step: int) -> None:
        """Show every path up to ``step`` (clamped); the full path when step is the last one."""
        last = self._longest()
        self.shown_step = min(max(int(step), 0), last)
        if self.result is not None:
            self._draw_paths(self.result)

    # ---- drawing ------------------------------------------------------------------------------
    def draw(self, race: Race) -> None:
        if race.log_loss_grid is not self._drawn_grid:
            xmin, xmax, ymin, ymax = race.window
            grid = race.log_loss_grid
            self.image.setImage(grid, autoLevels=False)
            self.image.setRect(xmin, ymin, xmax - xmin, ymax - ymin)
            self.colorbar.setLevels((float(grid.min()), float(grid.max())))
            self.map.setRange(xRange=(xmin, xmax), yRange=(ymin, ymax), padding=0)
            self.minima.setData(pos=np.array(race.minima, dtype=float).reshape(-1, 2))
            self._drawn_grid = grid
        self.start_marker.setData(pos=[(self.values["start_x"], self.values["start_y"])])
        loss, lr = {}, {}
        for name in NAMES:
            trace = race.traces.get(name)
            for item in (self.paths[name], self.loss_curves[name], self.lr_curves[name]):
                item.setVisible(trace is not None)
            if trace is None:
                continue
            loss[name] = np.column_stack([np.arange(len(trace.losses)),
                                          np.log10(np.maximum(trace.losses - race.f_min, 1e-12))])
            positive = trace.lrs > 0  # a log axis cannot show lr = 0 (cosine at T_max with eta_min = 0)
            lr[name] = np.column_stack([np.arange(1, len(trace.lrs) + 1)[positive], np.log10(trace.lrs[positive])])
        steps = max([len(t.losses) - 1 for t in race.traces.values()] + [1])
        for plot, curves, series in ((self.loss_plot, self.loss_curves, loss), (self.lr_plot, self.lr_curves, lr)):
            self._fit(plot, steps, [xy[:, 1] for xy in series.values() if len(xy)])
            cell = np.array(plot.vb.viewPixelSize()) / 2
            for name, xy in series.items():
                if curves is self.lr_curves and np.array_equal(self._drawn_lr.get(name), xy):
                    continue  # a new start or surface leaves the schedule as it was: no repaint
                shown = xy[on_screen_changes(xy, cell)] if len(xy) else xy
                curves[name].setData(shown[:, 0], shown[:, 1], skipFiniteCheck=True)
            if curves is self.lr_curves:
                self._drawn_lr = series
        longest = self._longest()
        with QSignalBlocker(self.scrubber):
            self.scrubber.setRange(0, longest)
        if self.shown_step is not None and not self._timer.isActive():
            self.shown_step = min(self.shown_step, longest)
        self._draw_paths(race)
        self._update_legend(race)

    _drawn_lr: dict = {}

    @staticmethod
    def _fit(plot: pg.PlotItem, steps: int, ys: list[np.ndarray]) -> None:
        """Set a side plot's range here, before the paint, so a change costs one paint
        (auto-range would re-range during the paint and ask for a second one). ``ys`` are log10
        values: the range snaps out to whole decades and is kept while the curves fit inside it and
        fill at least half of it, so a drag re-labels the axis only now and then."""
        if ys:
            lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
            shown = getattr(plot, "_decades", None) if getattr(plot, "_steps", None) == steps else None
            decades = held_range(shown, (math.floor(lo - 0.05), math.ceil(hi + 0.05)))
            if decades == shown:
                return
            plot._decades, plot._steps = decades, steps
            plot.setRange(xRange=(0, steps), yRange=decades, padding=0)
            plot.vb.prepareForPaint()  # apply the new view transform now, not during the paint

    def _draw_paths(self, race: Race) -> None:
        step = self._longest() if self.shown_step is None else self.shown_step
        heads, head_brushes, ends, end_pens = [], [], [], []
        cell = np.array(self.map.vb.viewPixelSize()) / 2  # half a pixel, in data units
        for name, trace in race.traces.items():
            shown = trace.points[: step + 1]
            drawn = shown[on_screen_changes(shown, cell)]
            self.paths[name].setData(drawn[:, 0], drawn[:, 1], skipFiniteCheck=True, antialias=not self._moving)
            heads.append(shown[-1])
            head_brushes.append(self.brushes[name])
            if trace.diverged_at is not None and step >= len(trace.points) - 1:
                ends.append(trace.points[-1])
                end_pens.append(pg.mkPen(self.colors[name], width=3))
        self.heads.setData(pos=np.array(heads).reshape(-1, 2), brush=head_brushes)
        self.ends.setData(pos=np.array(ends).reshape(-1, 2), pen=end_pens, brush=None)
        with QSignalBlocker(self.scrubber):
            self.scrubber.setValue(step)
        self.scrub_label.setText(tr("Step {step} of {total}").format(step=step, total=self._longest()))

    def head_of(self, name: str) -> np.ndarray:
        """Where the moving marker of optimizer ``name`` is drawn, (2,)."""
        index = list(self.result.traces).index(name)
        return np.array([self.heads.data["x"][index], self.heads.data["y"][index]])

    def _update_legend(self, race: Race) -> None:
        """One legend row per racing optimizer, marked when it diverged; the step goes to the status
        bar (a legend text that changes with every drag re-lays out every plot)."""
        if self._legend_rows != list(race.traces):
            self.legend.clear()
            for name in race.traces:
                self.legend.addItem(self.paths[name], name)
            self._legend_rows = list(race.traces)
        diverged = []
        for (_, label), (name, trace) in zip(self.legend.items, race.traces.items()):
            text = pick(*NAMES[name])
            if trace.diverged_at is not None:
                diverged.append(text + " " + tr("diverged at step {k}").format(k=trace.diverged_at))
                text += "  ✗ " + tr("diverged")
            if label.text != text:  # a new text re-lays out the legend: only when it changes
                label.setText(text)
        height = int(self.legend.minimumHeight() + 2 * self.style_.point_size)
        if self.legend_view.height() != height:  # the legend's own view is as tall as its rows
            self.legend_view.setFixedHeight(height)
        if diverged:
            self.message.emit("; ".join(diverged), False)
