"""Training panel: a small network learning live on 2-D data (as TensorFlow Playground), with
dropout, L1 / L2, weight decay, normalization, early stopping and a PyTorch script of the run.

The declared values give the data, the network and the training configuration (``compute``: the
data set and the initial state). The run itself is view state, played by a timer: a change of the
data or the network starts it again from the same initial weights; a change of the training
configuration (learning rate, regularization, batch size, ...) goes on from the current weights.
"""

from __future__ import annotations

import html
import math
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsScene, QHBoxLayout, QLabel, QPushButton, QSlider, QVBoxLayout,
                               QWidget)

from widgets.activations import NAMES as ACTIVATION_NAMES
from widgets.controls import OneLine
from widgets.items import CellImage, DecadeAxis, PixelCurve, held_range
from widgets.panel import Panel
from widgets.repaint import work_done
from workbench.compute import training as trn
from workbench.compute import training_run as runs
from workbench.i18n import ntr, pick, tr
from workbench.params import Choice, Param, ParamError, ParamSet, Preset

DATASET_NAMES = {
    "circle": ("Circle", "圆"), "xor": ("XOR", "异或 XOR"), "gauss": ("Two Gaussians", "两团高斯"),
    "spiral": ("Spiral", "螺旋"), "sine": ("Above / below a sine", "正弦曲线上下"),
    "cubic": ("Above / below a cubic", "三次曲线上下"), "abs": ("Above / below |x|", "|x| 上下"),
    "plane": ("Plane (regression)", "平面（回归）"), "multigauss": ("Gaussian bumps (regression)", "多个高斯峰（回归）"),
    "csv": ("From a CSV file", "来自 CSV 文件"),
}
FEATURE_PARAMS = {"x1": "x1", "x2": "x2", "x1^2": "x1_sq", "x2^2": "x2_sq", "x1*x2": "x1_x2", "sin x1": "sin_x1",
                  "sin x2": "sin_x2"}  # backend feature -> parameter suffix
ACTIVATIONS = {"linear": ("Linear (none)", "线性（无激活）"), **ACTIVATION_NAMES}
INITS = {"xavier_uniform": ("Xavier uniform (Glorot)", "Xavier 均匀（Glorot）"),
         "xavier_normal": ("Xavier normal (Glorot)", "Xavier 正态（Glorot）"),
         "kaiming_uniform": ("He / Kaiming uniform", "He / Kaiming 均匀"),
         "kaiming_normal": ("He / Kaiming normal", "He / Kaiming 正态"),
         "normal": ("Normal with a chosen std", "指定标准差的正态分布"), "zeros": ("Zeros", "全零")}
OPTIMIZERS = {"sgd": ("SGD", "SGD"), "adam": ("Adam", "Adam"), "adamw": ("AdamW", "AdamW"), "rmsprop": ("RMSProp", "RMSProp")}
MAX_LAYERS, MAX_UNITS = 8, 64
SHOWN_UNITS = 10  # unit pictures drawn per layer; the rest are counted
UNIT_CELLS = 24  # pixels per side of a unit's picture
COLUMN_GAP, ROW_GAP = 2.75, 1.25  # the diagram's spacing, in unit-picture sizes (whole pixels at UNIT_CELLS)
EXPORT_EPOCHS = 500  # what an export trains when the run has no epoch limit


def parse_layers(text: str) -> tuple[tuple[int, str | None], ...]:
    """Hidden layers as text: "8, 8" -> ((8, None), (8, None)); a layer may name its own
    activation, "8 relu, 8 tanh" -> ((8, "relu"), (8, "tanh")) (None: the Activation parameter's);
    "0" or "none" -> () (no hidden layer: a linear model). ValueError says what is wrong."""
    text = text.strip().lower()
    if text in ("0", "none", "-"):
        return ()
    layers = []
    for part in text.replace(";", ",").split(","):
        words = part.split()
        if not 1 <= len(words) <= 2 or not words[0].isdigit():
            raise ValueError(tr("units per layer as whole numbers separated by commas, e.g. 8,8 or 8 relu, 8 tanh "
                                "(0: none)"))
        if len(words) == 2 and words[1] not in ACTIVATIONS:
            raise ValueError(tr("unknown activation {name} (known: {known})").format(
                name=words[1], known=", ".join(ACTIVATIONS)))
        layers.append((int(words[0]), words[1] if len(words) == 2 else None))
    if len(layers) > MAX_LAYERS:
        raise ValueError(tr("at most {n} hidden layers").format(n=MAX_LAYERS))
    if any(not 1 <= size <= MAX_UNITS for size, _ in layers):
        raise ValueError(tr("every layer needs 1 to {n} units").format(n=MAX_UNITS))
    return tuple(layers)


def parse_hidden(text: str) -> tuple[int, ...]:
    """The units per hidden layer of :func:`parse_layers`."""
    return tuple(size for size, _ in parse_layers(text))


def layers_text(layers) -> str:
    """The inverse of :func:`parse_layers`."""
    return ", ".join(f"{size} {name}" if name else str(size) for size, name in layers) if layers else "0"


def _choices(names: Mapping[str, tuple[str, str]]) -> tuple[Choice, ...]:
    return tuple(Choice(key, *labels) for key, labels in names.items())


PARAMETERS = [
    Param("dataset", "choice", "spiral", "Data set", "数据集", "The 2-D points to learn (as in TensorFlow Playground).",
          "要学习的二维数据（与 TensorFlow Playground 相同）。", choices=_choices(DATASET_NAMES), group="Data"),
    Param("n_points", "int", 500, "Points", "点数", "Training and test points together.", "训练点与测试点的总数。",
          lo=20, hi=1000, step=10, group="Data"),
    Param("train_fraction", "float", 0.5, "Training share", "训练集比例", "Share of the points used for training; the rest test.",
          "用于训练的点所占的比例，其余用于测试。", lo=0.1, hi=0.9, step=0.05, group="Data"),
    Param("noise", "float", 0.0, "Noise", "噪声", "Label noise: how far points scatter across the true boundary.",
          "噪声：点越过真实边界散开的程度。", lo=0.0, hi=0.5, step=0.05, group="Data"),
    Param("data_seed", "int", 0, "Data seed", "数据种子", "Seed of the points and of the train / test split.",
          "数据点与训练 / 测试划分的随机种子。", lo=0, hi=9999, group="Data"),
    Param("csv_file", "text", "points.csv", "CSV file", "CSV 文件", "Data set 'From a CSV file': rows of x1, x2 and a "
          "label (0 / 1) or a value; a header row is optional (or press Load CSV…).", "数据集选“来自 CSV 文件”时使用："
          "每行 x1、x2 和标签（0 / 1）或数值；表头可有可无（也可以点“载入 CSV…”）。", max_length=1000, group="Data"),
    Param("show_test", "bool", False, "Show test points", "显示测试点", "Draw the test points too (outlined).",
          "同时画出测试点（空心）。", group="Data"),
    *[Param(f"feature_{suffix}", "bool", name in ("x1", "x2"), f"Feature {name}", f"特征 {name}",
            f"Feed {name} of each point to the network.", f"把每个点的 {name} 输入网络。", group="Features")
      for name, suffix in FEATURE_PARAMS.items()],
    Param("hidden", "text", "8,8", "Hidden layers", "隐藏层", "Units per hidden layer, comma separated (at most 8 layers of "
          "64), each optionally with its own activation (8 relu, 8 tanh); 0 = none, a linear model.",
          "每个隐藏层的单元数，用逗号分隔（最多 8 层、每层 64），每层可另写自己的激活函数（8 relu, 8 tanh）；0 = 没有隐藏层（线性模型）。",
          check=parse_layers, max_length=200, group="Network"),
    Param("activation", "choice", "tanh", "Activation", "激活函数", "The non-linearity of every hidden unit.",
          "每个隐藏单元的非线性函数。", choices=_choices(ACTIVATIONS), group="Network"),
    Param("init", "choice", "xavier_uniform", "Initialisation", "初始化", "torch.nn.init scheme of the weights "
          "(gain = calculate_gain of the activation); biases start at 0.", "权重的 torch.nn.init 初始化方式（gain 按激活函数取 "
          "calculate_gain）；偏置从 0 开始。", choices=_choices(INITS), group="Network"),
    Param("init_std", "float", 0.1, "Normal std", "正态分布标准差", "Standard deviation of the 'normal' init.",
          "“正态”初始化的标准差。", lo=1e-3, hi=10.0, log=True, group="Network"),
    Param("norm", "choice", "none", "Normalization", "归一化", "Linear -> norm -> activation in every hidden layer.",
          "每个隐藏层按 线性 -> 归一化 -> 激活 排列。",
          choices=(Choice("none", "None", "无"), Choice("batch", "BatchNorm1d", "BatchNorm1d"),
                   Choice("layer", "LayerNorm", "LayerNorm")), group="Network"),
    Param("loss", "choice", "bce", "Loss", "损失函数", "Classification: binary cross-entropy on the logit, or the squared "
          "error of the probability. Regression always uses the squared error.", "分类：对 logit 的二元交叉熵，或概率的平方误差。"
          "回归总是用平方误差。", choices=(Choice("bce", "Binary cross-entropy", "二元交叉熵"),
                                       Choice("mse", "Squared error of sigmoid", "sigmoid 的平方误差")), group="Network"),
    Param("init_seed", "int", 0, "Weights seed", "权重种子", "Seed of the initial weights, dropout and minibatch order.",
          "初始权重、dropout 与小批量顺序的随机种子。", lo=0, hi=9999, group="Network"),
    Param("optimizer", "choice", "sgd", "Optimizer", "优化器", "torch.optim's update rule.", "torch.optim 的更新规则。",
          choices=_choices(OPTIMIZERS), group="Training"),
    Param("lr", "float", 0.03, "Learning rate", "学习率", "Step size of the optimizer.", "优化器的步长。",
          lo=1e-4, hi=10.0, log=True, group="Training"),
    Param("batch_size", "int", 10, "Batch size", "批大小", "Points per step; an epoch is one pass over the training set.",
          "每步用的点数；一个 epoch 是把训练集完整过一遍。", lo=1, hi=1000, group="Training"),
    Param("momentum", "float", 0.0, "Momentum", "动量", "SGD and RMSProp: weight of the running velocity.",
          "SGD 与 RMSProp：速度缓冲的系数。", lo=0.0, hi=0.99, step=0.01, group="Training"),
    Param("l1", "float", 0.0, "L1 penalty", "L1 正则", "Adds l1 * sum|w| of the weight matrices to the loss: many weights "
          "become exactly 0.", "在损失上加 l1 * sum|w|（只算权重矩阵）：许多权重变成正好为 0。",
          lo=0.0, hi=0.1, step=0.0005, group="Regularization"),
    Param("l2", "float", 0.0, "L2 penalty", "L2 正则", "Adds (l2 / 2) * sum w^2 of the weight matrices: every weight "
          "shrinks.", "在损失上加 (l2 / 2) * sum w^2（只算权重矩阵）：所有权重一起变小。",
          lo=0.0, hi=0.1, step=0.0005, group="Regularization"),
    Param("weight_decay", "float", 0.0, "Weight decay", "权重衰减", "torch.optim's weight_decay on the weight matrices "
          "(decoupled for AdamW).", "torch.optim 的 weight_decay，作用于权重矩阵（AdamW 为解耦形式）。",
          lo=0.0, hi=0.5, step=0.001, group="Regularization"),
    Param("dropout", "float", 0.0, "Dropout p", "Dropout 概率 p", "Share of hidden units dropped in each training step "
          "(the kept ones scaled by 1/(1-p)); none at evaluation.", "每个训练步随机丢弃的隐藏单元比例（保留的乘以 1/(1-p)）；"
          "评估时不丢弃。", lo=0.0, hi=0.9, step=0.05, group="Regularization"),
    Param("patience", "int", 0, "Early-stopping patience", "早停耐心值", "Stop when the test loss has not improved for "
          "this many epochs, and go back to the best epoch's weights (0: off).",
          "测试损失连续这么多个 epoch 没有改善就停止，并回到最好那个 epoch 的权重（0：关闭）。",
          lo=0, hi=1000, group="Regularization"),
    Param("epochs", "int", 0, "Stop at epoch", "训练到第几个 epoch", "Play stops at this epoch (0: no limit; an export "
          "then trains 500).", "播放到这个 epoch 为止（0：不限；此时导出训练 500 个 epoch）。", lo=0, hi=20000, group="Run"),
]

DATA_PARAMS = ("dataset", "n_points", "train_fraction", "noise", "data_seed", "csv_file")
NETWORK_PARAMS = ("hidden", "activation", "init", "init_std", "norm", "loss", "init_seed", "dropout",
                  *(f"feature_{s}" for s in FEATURE_PARAMS.values()))


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if not any(values[f"feature_{s}"] for s in FEATURE_PARAMS.values()):
        problems.append(tr("feature_*: choose at least one input feature"))
    if values["dataset"] == "csv":
        try:
            _csv_dataset(values["csv_file"], values["train_fraction"], values["data_seed"])
        except ValueError as error:  # names the file, the line and the problem
            problems.append(f"csv_file: {error}")
    if values["norm"] == "batch" and values["batch_size"] < 2:
        problems.append(tr("batch_size: BatchNorm needs at least 2 points per batch (one point has no variance)"))
    return problems


def _scene(**values) -> dict:
    return values


OVERFIT = dict(dataset="xor", n_points=60, noise=0.5, hidden="32,32,32", activation="relu", init="kaiming_uniform",
               optimizer="sgd", lr=0.03, momentum=0.9, batch_size=10, epochs=1500, show_test=True)
SPIRAL = dict(dataset="spiral", activation="tanh", optimizer="adam", lr=0.01, epochs=600, show_test=True)
CONFIDENT = dict(dataset="gauss", hidden="0", init="normal", init_std=5.0, init_seed=8, lr=0.1, epochs=50)  # starts 100 % wrong

PRESETS = [
    Preset("underfit", "Underfitting: a linear model on circle", "欠拟合：用线性模型学圆形数据",
           _scene(dataset="circle", hidden="0", epochs=300, show_test=True)),
    Preset("overfit", "Overfitting: a big net on a few noisy points", "过拟合：大网络学少量带噪声的点", _scene(**OVERFIT)),
    Preset("l2_fix", "L2 penalty against overfitting", "L2 正则对抗过拟合", _scene(**OVERFIT, l2=0.01)),
    Preset("l1_sparse", "L1 penalty: sparse weights", "L1 正则：稀疏的权重", _scene(**OVERFIT, l1=0.003)),
    Preset("dropout_fix", "Dropout against overfitting", "Dropout 对抗过拟合", _scene(**OVERFIT, dropout=0.3)),
    Preset("early_stop", "Early stopping at the best epoch", "早停：停在最好的 epoch", _scene(**OVERFIT, patience=100)),
    Preset("more_data", "More data against overfitting", "更多数据对抗过拟合", _scene(**{**OVERFIT, "n_points": 600})),
    Preset("all_linear", "Linear activations collapse to a linear model", "线性激活退化为线性模型",
           _scene(dataset="circle", hidden="8,8,8", activation="linear", epochs=300, show_test=True)),
    Preset("spiral_shallow", "Spiral: one layer of 8 units", "螺旋：一层 8 个单元", _scene(**SPIRAL, hidden="8")),
    Preset("spiral_deep", "Spiral: four layers of 8 units", "螺旋：四层、每层 8 个单元", _scene(**SPIRAL, hidden="8,8,8,8")),
    Preset("mse_confident", "Squared error on a confidently wrong start", "自信地错误起步时的平方误差",
           _scene(**CONFIDENT, loss="mse")),
    Preset("bce_confident", "Cross-entropy on the same start", "同样起点下的交叉熵", _scene(**CONFIDENT, loss="bce")),
    Preset("batch_one", "Batch size 1: noisy steps", "批大小 1：步子很吵", _scene(dataset="circle", batch_size=1, epochs=50)),
    Preset("batch_full", "Full batch: smooth but few steps", "全批量：平稳但步数少",
           _scene(dataset="circle", batch_size=250, epochs=50)),
    Preset("bn_dropout", "BatchNorm + dropout: train and eval disagree", "BatchNorm + Dropout：训练与评估不一致",
           _scene(dataset="circle", hidden="16,16", activation="relu", norm="batch", dropout=0.5, optimizer="adam",
                  lr=0.01, epochs=200, show_test=True)),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS)


@dataclass(frozen=True)
class Setup:
    """What ``compute`` gives: the data, the network and training configuration, and the
    initial state (the run starts from it)."""

    dataset_args: dict
    data: Any  # trn.Dataset
    spec: Any  # trn.NetworkSpec
    config: Any  # trn.TrainConfig
    initial: Any  # trn.TrainState
    network_key: tuple  # what, changed, starts the run again
    # a fresh run from ``initial`` and its first picture, made on the worker thread (compute_start):
    # a new data set or network is then drawn without a forward pass on the GUI thread
    run: Any = field(default=None, compare=False)  # runs.Run, untrained
    view: Any = field(default=None, compare=False)  # runs.RunView of ``run`` at epoch 0


@lru_cache(maxsize=8)
def _dataset(name: str, n: int, noise: float, train_fraction: float, seed: int):
    return trn.make_dataset(name, n=n, noise=noise, train_fraction=train_fraction, seed=seed)


def _csv_dataset(path: str, train_fraction: float, seed: int):
    """trn.load_dataset, remembered while the file is unchanged (its size and time stamp)."""
    try:
        info = os.stat(path)
        stamp = (info.st_mtime_ns, info.st_size)
    except OSError:
        stamp = None  # load_dataset says why
    return _csv_loaded(path, stamp, train_fraction, seed)


@lru_cache(maxsize=4)
def _csv_loaded(path: str, stamp: tuple | None, train_fraction: float, seed: int):
    return trn.load_dataset(path, train_fraction=train_fraction, seed=seed)


def dataset_args(values: Mapping[str, Any]) -> dict:
    """The keyword arguments of make_dataset (or load_dataset) for these values."""
    if values["dataset"] == "csv":
        return {"path": values["csv_file"], "train_fraction": values["train_fraction"], "seed": values["data_seed"]}
    return {"name": values["dataset"], "n": values["n_points"], "noise": values["noise"],
            "train_fraction": values["train_fraction"], "seed": values["data_seed"]}


def spec_of(values: Mapping[str, Any], task: str):
    features = tuple(name for name, suffix in FEATURE_PARAMS.items() if values[f"feature_{suffix}"])
    layers = parse_layers(values["hidden"])
    activation = tuple(name or values["activation"] for _, name in layers) if any(n for _, n in layers) \
        else values["activation"]
    return trn.NetworkSpec(hidden=tuple(size for size, _ in layers), activation=activation, features=features,
                           init=values["init"], init_std=values["init_std"], dropout=values["dropout"],
                           norm=None if values["norm"] == "none" else values["norm"], task=task,
                           loss=values["loss"] if task == "classification" else "mse")


def config_of(values: Mapping[str, Any]):
    return trn.TrainConfig(optimizer=values["optimizer"], lr=values["lr"], batch_size=values["batch_size"],
                           momentum=values["momentum"] if values["optimizer"] in ("sgd", "rmsprop") else 0.0,
                           l1=values["l1"], l2=values["l2"], weight_decay=values["weight_decay"], seed=values["init_seed"])


@lru_cache(maxsize=8)
def _initial(spec, config, seed: int):
    return trn.init_state(spec, config, seed=seed)


def plane_cells(values: Mapping[str, Any]) -> int:
    """Cells per side of the decision plane: fewer for wide networks (a frame stays cheap)."""
    return 64 if max(parse_hidden(values["hidden"]) or (1,)) <= 16 else 40


def compute_setup(values: Mapping[str, Any]) -> Setup:
    args = dataset_args(values)
    if values["dataset"] == "csv":
        data = _csv_dataset(args["path"], args["train_fraction"], args["seed"])
    else:
        data = _dataset(args["name"], args["n"], args["noise"], args["train_fraction"], args["seed"])
    spec = spec_of(values, data.task)
    config = config_of(values)
    initial = _initial(spec, trn.TrainConfig(seed=values["init_seed"]), values["init_seed"])
    key = tuple(values[n] for n in DATA_PARAMS + NETWORK_PARAMS)
    return Setup(args, data, spec, config, trn.with_config(initial, config), key)


def compute_start(values: Mapping[str, Any]) -> Setup:
    """The panel's compute: the setup, with the run from its initial state and that run's picture."""
    setup = compute_setup(values)
    run = runs.Run(setup.initial, setup.data, patience=values["patience"])
    return replace(setup, run=run, view=run.view(plane_cells=plane_cells(values), unit_cells=UNIT_CELLS))


class _HoverView(pg.ViewBox):
    """The network diagram's view box: reports the mouse position in view coordinates."""

    def __init__(self, on_hover):
        super().__init__(enableMouse=False, enableMenu=False)
        self._on_hover = on_hover
        self.setAcceptHoverEvents(True)

    def hoverMoveEvent(self, event):
        self._on_hover(self.mapToView(event.pos()))

    def hoverLeaveEvent(self, event):
        self._on_hover(None)


ORANGE, BLUE = "#F59322", "#0877BD"  # the Playground's class colours: 0 / negative, 1 / positive
FRAME_S = 1 / 60  # a playing run's frames: at most one per display frame
POINT_SHADES = 32  # colours of a regression's points (the plane behind them is shaded in 256)


def _diverging_lut(dark: bool) -> np.ndarray:
    """256 RGBA entries from orange (0) through the background to blue (1)."""
    middle = (40, 42, 46) if dark else (245, 245, 245)
    lo, hi = QColor(ORANGE), QColor(BLUE)
    t = np.linspace(-1.0, 1.0, 256)[:, None]
    ends = np.where(t < 0, np.array([lo.red(), lo.green(), lo.blue()]), np.array([hi.red(), hi.green(), hi.blue()]))
    rgb = np.array(middle) + np.abs(t) * 0.85 * (ends - np.array(middle))
    return np.concatenate([rgb, np.full((256, 1), 255)], axis=1).astype(np.ubyte)


LOSS_FLOOR = 1e-30  # a loss of exactly 0 (a perfect fit) is drawn here on the log axis


def log_loss(loss: np.ndarray) -> np.ndarray:
    """log10 of losses for the log axis: 0 drawn at LOSS_FLOOR, inf and NaN (a diverged epoch) NaN."""
    finite = np.isfinite(loss)
    return np.where(finite, np.log10(np.maximum(np.where(finite, loss, 1.0), LOSS_FLOOR)), np.nan)


class TrainingPanel(Panel):
    NAME = "training"
    TITLE_EN = "Training"
    TITLE_ZH = "训练"
    PARAMS = PARAMS
    OPEN_GROUPS = ("Data", "Features", "Network", "Training")
    BENCH_SWEEPS = {"noise": (0.0, 0.5), "init_seed": (0, 59)}  # a training setting while paused changes nothing drawn

    compute = staticmethod(compute_start)
    _trained = Signal(object)  # a frame of training done on the worker (its Future)

    def __init__(self, style, values=None, parent=None):
        self.run: runs.Run | None = None
        self._key: tuple | None = None
        self.playing = False
        self._frame_started = 0.0  # perf_counter when the frame in flight was asked for
        self._job: Future | None = None  # a frame of training in flight on the worker: the run is its own till then
        super().__init__(style, values, parent)
        self._trained.connect(self._frame_trained, Qt.QueuedConnection)

    # ---- figure -------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        self.status = QLabel()
        self.status.setFont(st.font(1.0, bold=True))
        self.hover = QLabel()
        self.hover.setStyleSheet(f"color: {st.muted};")
        views = []
        for _ in range(3):
            view = pg.GraphicsLayoutWidget()
            view.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
            view.setBackground(st.background)
            views.append(view)
        plane_view, net_view, curves_view = views
        figure = QWidget()
        column = QVBoxLayout(figure)
        column.setContentsMargins(4, 2, 4, 2)
        column.setSpacing(2)
        column.addWidget(OneLine(self.status))
        row = QHBoxLayout()
        row.setSpacing(0)
        row.addWidget(net_view, 1)
        row.addWidget(plane_view, 1)
        column.addLayout(row, 5)
        column.addWidget(OneLine(self.hover))
        column.addWidget(curves_view, 3)
        self._build_plane(plane_view)
        self._build_network(net_view)
        self._build_curves(curves_view)
        return figure

    def _build_plane(self, view: pg.GraphicsLayoutWidget) -> None:
        st = self.style_
        self.plane = view.addPlot(row=0, col=0, enableMenu=False)
        st.style_plot(self.plane, tr("Output over the input plane"), "x2", "x1")
        self.plane.setMouseEnabled(x=False, y=False)
        self.plane.hideButtons()
        self.plane.setMenuEnabled(False)
        self.plane.setAspectLocked(True)
        self.plane.showGrid(x=False, y=False)
        self.heat = CellImage(axisOrder="row-major")
        self.lut = _diverging_lut(st.dark)
        self.heat.setLookupTable(self.lut)
        self.plane.addItem(self.heat, ignoreBounds=True)
        self.boundary = pg.PlotCurveItem(pen=st.pen(st.foreground, st.thin_line_width), connect="pairs")
        self.plane.addItem(self.boundary, ignoreBounds=True)
        size = st.marker_size * 0.8
        edge = pg.mkPen("#FFFFFF" if not st.dark else "#000000", width=1)
        self.train_points = pg.ScatterPlotItem(size=size, pen=edge)
        self.test_points = pg.ScatterPlotItem(size=size, pen=pg.mkPen(st.foreground, width=1.5), brush=None)
        self.wrong_points = pg.ScatterPlotItem(symbol="x", size=size, pen=None, brush=pg.mkBrush(st.error))
        for item in (self.train_points, self.test_points, self.wrong_points):
            self.plane.addItem(item, ignoreBounds=True)
        self.brushes = (pg.mkBrush(ORANGE), pg.mkBrush(BLUE))
        for item in (self.plane.titleLabel, self.plane.getAxis("left"), self.plane.getAxis("bottom")):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged while training: repainting is a blit

    def _build_network(self, view: pg.GraphicsLayoutWidget) -> None:
        st = self.style_
        self.net = _HoverView(self._hovered)
        self.net.setAspectLocked(True)
        view.addItem(self.net, row=0, col=0)
        self.net_view = view
        most_columns = MAX_LAYERS + 2
        self.mosaic = CellImage(axisOrder="row-major")  # every unit's picture in one RGBA image: one item to paint
        self.net.addItem(self.mosaic, ignoreBounds=True)
        frame = pg.mkPen(st.muted, width=1)
        self.unit_frames = pg.PlotCurveItem(pen=frame, connect="pairs")
        widths = (0.6, 1.5, 3.0, 5.0) if not st.presentation else (1.0, 2.5, 4.5, 7.0)
        self.links = {(sign, w): pg.PlotCurveItem(pen=pg.mkPen(BLUE if sign > 0 else ORANGE, width=width), connect="pairs")
                      for sign in (1, -1) for w, width in enumerate(widths)}
        for link in self.links.values():
            link.setZValue(-5)
            self.net.addItem(link, ignoreBounds=True)
        self.net.addItem(self.unit_frames, ignoreBounds=True)
        self.unit_frames.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.headers = [pg.TextItem(color=st.foreground, anchor=(0.5, 1.0)) for _ in range(most_columns)]
        self.more = [pg.TextItem(color=st.muted, anchor=(0.5, 0.0)) for _ in range(most_columns)]  # below the column
        for text in self.headers + self.more:
            text.setFont(st.font(0.85))
            self.net.addItem(text, ignoreBounds=True)
        self.dropped = pg.ScatterPlotItem(symbol="x", size=st.marker_size * 1.6, pen=None, brush=pg.mkBrush(st.error))
        self.net.addItem(self.dropped, ignoreBounds=True)
        self._layout_key: tuple | None = None
        self._positions: list[np.ndarray] = []  # per column: (shown, 2) unit centres

    def _build_curves(self, view: pg.GraphicsLayoutWidget) -> None:
        st = self.style_
        self.loss_plot = view.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")}, enableMenu=False)
        st.style_plot(self.loss_plot, tr("Loss per epoch"), tr("loss"), tr("epoch"))
        self.train_curve = PixelCurve(pen=st.pen(st.series[0]))
        self.test_curve = PixelCurve(pen=st.pen(st.series[1]))
        self.batch_curve = pg.PlotCurveItem(pen=pg.mkPen(st.muted, width=1, style=Qt.DotLine))
        gap = QColor(st.series[1])
        gap.setAlpha(60)
        self.gap = pg.FillBetweenItem(self.train_curve, self.test_curve, brush=pg.mkBrush(gap))
        self.best_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(st.series[2], width=2, style=Qt.DashLine))
        self.loss_note = pg.TextItem(color=st.foreground, anchor=(1, 0))
        self.loss_note.setFont(st.font(0.85))
        for item in (self.gap, self.batch_curve, self.train_curve, self.test_curve, self.best_line, self.loss_note):
            self.loss_plot.addItem(item, ignoreBounds=True)
        self.loss_legend = pg.LegendItem(offset=(6, -6), labelTextColor=st.foreground,  # bottom left: the curves fall away from it
                                         labelTextSize=f"{st.point_size * 0.85:.0f}pt")
        self.loss_legend.setParentItem(self.loss_plot.vb)
        self.loss_legend.addItem(self.train_curve, tr("train"))
        self.loss_legend.addItem(self.test_curve, tr("test"))
        self.loss_legend.addItem(self.batch_curve, tr("minibatch (training mode)"))
        self.weight_plot = view.addPlot(row=0, col=1, enableMenu=False)
        st.style_plot(self.weight_plot, tr("Weights"), tr("share"), "w")
        self.weight_hist = PixelCurve(x=[0.0, 1.0], y=[0.0], pen=st.pen(st.series[4]), stepMode="center")
        self.weight_note = pg.TextItem(color=st.foreground, anchor=(0, 0))
        self.weight_note.setFont(st.font(0.85))
        for item in (self.weight_hist, self.weight_note):
            self.weight_plot.addItem(item, ignoreBounds=True)
        self.grad_plot = view.addPlot(row=0, col=2, axisItems={"left": DecadeAxis("left")}, enableMenu=False)
        st.style_plot(self.grad_plot, tr("Gradient norm per layer"), "‖∂L/∂W‖", tr("epoch"))
        self.grad_curves = [PixelCurve(pen=st.pen(st.series[i % len(st.series)], st.thin_line_width))
                            for i in range(MAX_LAYERS + 1)]
        for curve in self.grad_curves:
            self.grad_plot.addItem(curve, ignoreBounds=True)
        self.grad_legend = pg.LegendItem(offset=(-6, -6), labelTextColor=st.foreground, colCount=3,
                                         labelTextSize=f"{st.point_size * 0.8:.0f}pt")
        self.grad_legend.setParentItem(self.grad_plot.vb)
        self._grad_layers = 0
        for plot in (self.loss_plot, self.weight_plot, self.grad_plot):
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.showGrid(x=False, y=False)
            plot.getAxis("left").setWidth(int(st.point_size * 5))
            for item in (plot.titleLabel, plot.getAxis("bottom"), plot.getAxis("left")):
                item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self._ranges: dict[str, tuple] = {}

    # ---- controls -----------------------------------------------------------------------------
    def extra_controls(self) -> list[QWidget]:
        box = QWidget()
        box.setObjectName("playback")
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 6)
        first, second, third = QHBoxLayout(), QHBoxLayout(), QHBoxLayout()
        self.play_button = QPushButton(tr("Play"))
        self.play_button.setObjectName("play")
        self.play_button.setToolTip(tr("Train until paused or the epoch limit"))
        self.play_button.clicked.connect(self.toggle_play)
        buttons = [(first, self.play_button)]
        for text, tip, slot, row in (
                (tr("Step"), tr("Train one minibatch"), lambda: self.step(batches=1), first),
                (tr("Epoch"), tr("Train one epoch"), lambda: self.step(epochs=1), first),
                (tr("Rewind"), tr("Back to epoch 0 with the same initial weights"), self.rewind, second),
                (tr("Load CSV…"), tr("Train on your own points: a CSV file of x1, x2, label or value"), self.load_csv_dialog,
                 second),
                (tr("New weights"), tr("Start again from new initial weights (the next weights seed)"), self.new_weights, second),
                (tr("+ layer"), tr("Add a hidden layer"), lambda: self.change_layers(+1), third),
                (tr("− layer"), tr("Remove the last hidden layer"), lambda: self.change_layers(-1), third),
                (tr("+ units"), tr("Two more units in every hidden layer"), lambda: self.change_units(+2), third),
                (tr("− units"), tr("Two fewer units in every hidden layer"), lambda: self.change_units(-2), third)):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            buttons.append((row, button))
        for row, button in buttons:
            row.addWidget(button)
        speed_row = QHBoxLayout()
        speed_row.addWidget(QLabel(tr("Speed (epochs per frame)")))
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setObjectName("speed")
        self.speed.setRange(1, 50)
        self.speed.setValue(2)
        speed_row.addWidget(self.speed)
        for row in (first, second, third, speed_row):
            column.addLayout(row)
        return [box]

    # ---- the run ------------------------------------------------------------------------------
    def draw(self, setup: Setup) -> Iterator[None]:
        """A new setup: a changed data set or network starts the run again from its initial
        state; a changed training configuration goes on from the current weights. While a frame of
        training is in flight, the run is the worker's: the setup waits for it (passes of the event
        loop, not a block)."""
        while self._job is not None:
            yield
        if self.run is None or setup.network_key != self._key or self._autoplay:
            fresh = setup.run is not None and setup.run.state.step == 0 and setup.run is not self.run
            self.run = setup.run if fresh else runs.Run(setup.initial, setup.data, patience=self.values["patience"])
            self._ready_view = (self.run, setup.view) if fresh else None
            self._key = setup.network_key
        else:
            self.run.set_config(setup.config)
            self.run.patience = self.values["patience"]
        self._frame()
        if self._autoplay:
            self._autoplay = False
            self.play()
        elif self.playing:
            self._train_frame()

    _autoplay = False  # a scene was loaded: play its run from epoch 0 once it is drawn

    def scene_loaded(self) -> None:
        """A preset, card or scene file plays from epoch 0 to its epoch limit: the story unfolds."""
        self.pause()
        self._autoplay = True

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def play(self) -> None:
        if self.run is None or self.run.diverged_epoch is not None:
            return
        if self.run.stopped_epoch is not None or self._at_limit():
            return
        self.playing = True
        self.play_button.setText(tr("Pause"))
        self._train_frame()

    def pause(self) -> None:
        """Stop; a frame of training in flight is waited for and drawn (the run is where it shows)."""
        self.playing = False
        self.play_button.setText(tr("Play"))
        self._settle()

    def _at_limit(self) -> bool:
        return bool(self.values["epochs"]) and self.run.epoch >= self.values["epochs"]

    def _train_frame(self) -> None:
        """One frame on the worker thread: train up to `speed` epochs (at most ~12 ms of training),
        then the run's picture; drawn by _frame_trained, which asks for the next while playing."""
        run = self.run
        if not self.playing or self._job is not None or run is None or self._drawing is not None:
            return
        limit = self.values["epochs"] or None
        epochs = self.speed.value()
        if limit is not None:
            epochs = min(epochs, limit - run.epoch)
        cells = plane_cells(self.values)

        def frame():
            run.train_epochs(epochs, deadline=time.perf_counter() + 0.012)
            return run, run.view(plane_cells=cells, unit_cells=UNIT_CELLS)
        self._frame_started = time.perf_counter()
        self._job = self.worker().submit(frame)
        self._job.add_done_callback(self._announce_trained)

    def _announce_trained(self, job: Future) -> None:
        try:
            self._trained.emit(job)
        except RuntimeError:  # the panel's Qt side was deleted meanwhile
            pass

    def _frame_trained(self, job: Future) -> None:
        if job is not self._job:  # settled meanwhile (a step, a rewind, an export)
            return
        self._job = None
        try:
            run, view = job.result()
        except Exception as error:  # shown in the status bar, never a crash
            self.pause()
            self._report_failure(str(error))
            return
        if run is not self.run:
            return
        if run.diverged_epoch is not None or run.stopped_epoch is not None or self._at_limit():
            self.pause()
        self._frame(view)
        if self.playing:  # the next frame one display frame after this one's start, not sooner
            wait = FRAME_S - (time.perf_counter() - self._frame_started)
            QTimer.singleShot(max(int(wait * 1000), 0), self, self._train_frame)

    def _settle(self) -> None:
        """Before the GUI thread touches the run: wait for a frame of training in flight (its work
        is bounded, ~12 ms of training and one picture) and draw it."""
        if self._job is not None:
            try:
                self._job.result()
            except Exception:
                pass
            self._frame_trained(self._job)

    def busy(self) -> bool:
        return super().busy() or self._job is not None

    def step(self, batches: int = 0, epochs: int = 0) -> None:
        self.pause()
        if self.run is None:
            return
        if batches:
            self.run.train_batches(batches)
        if epochs:
            self.run.train_epochs(epochs)
        self._frame()

    def rewind(self) -> None:
        """Back to epoch 0 with the same initial weights (the Playground's #25)."""
        self.pause()
        if self.result is not None:
            self.run = runs.Run(self.result.initial, self.result.data, patience=self.values["patience"])
            self._frame()

    def load_csv(self, path: str) -> bool:
        """Use the points of a CSV file; a bad file is refused with its line and problem, nothing changes."""
        return self.set_values({"dataset": "csv", "csv_file": path})

    def load_csv_dialog(self) -> None:
        from PySide6.QtWidgets import QFileDialog
        path, _ = QFileDialog.getOpenFileName(self, tr("Load CSV…"), "", tr("CSV files (*.csv);;All files (*)"))
        if path:
            self.load_csv(path)

    def new_weights(self) -> None:
        self.set_values({"init_seed": (self.values["init_seed"] + 1) % 10_000})

    def change_layers(self, delta: int) -> None:
        """Add a copy of the last hidden layer (+1) or remove the last (-1), as the Playground's +/-."""
        layers = list(parse_layers(self.values["hidden"]))
        layers = layers + [layers[-1] if layers else (4, None)] if delta > 0 else layers[:-1]
        self._set_hidden(layers)

    def change_units(self, delta: int) -> None:
        self._set_hidden([(min(max(size + delta, 1), MAX_UNITS), name) for size, name in parse_layers(self.values["hidden"])])

    def _set_hidden(self, layers: list) -> None:
        if len(layers) > MAX_LAYERS:
            self.message.emit(tr("hidden: at most {n} hidden layers").format(n=MAX_LAYERS), True)
            return
        self.set_values({"hidden": layers_text(layers)})

    def compute_now(self) -> None:
        """Compute and train to the epoch limit synchronously (export, CLI, cards), then draw."""
        self.pause()
        self._autoplay = False
        self._generation += 1
        setup = self.compute(dict(self.values))
        self.result = setup
        self.run = setup.run
        self._key = setup.network_key
        self.run.train_epochs(self.values["epochs"] or EXPORT_EPOCHS)
        self._frame()
        self.drawn.emit()

    @staticmethod
    def script(values: Mapping[str, Any]) -> str:
        """The scene's run from epoch 0 as a standalone PyTorch script (torch and numpy only): the
        same data, initial weights, minibatches and losses, for the epoch limit (or 500)."""
        setup = compute_setup(values)
        return trn.pytorch_script(setup.spec, setup.config, setup.dataset_args, values["epochs"] or EXPORT_EPOCHS,
                                  init_seed=values["init_seed"])

    def export_script(self) -> str:
        return self.script(self.values)

    def data_result(self) -> Any:
        """The live run for the data export: its weights, normalization parameters and history (a
        run that plays is read between two frames and goes on)."""
        playing = self.playing
        self.pause()
        if self.run is None:
            return self.result
        data = runs.run_data(self.run)
        if playing:
            self.play()
        return data

    # ---- drawing ------------------------------------------------------------------------------
    _points_key: tuple | None = None
    _frame_key: tuple | None = None
    _frame_parameters = None
    _ready_view: tuple | None = None  # (run, its view at epoch 0) from the compute

    def _frame(self, view: runs.RunView | None = None) -> None:
        """Draw the run as it is now (``view``: its picture, made on the worker)."""
        start = time.perf_counter()
        try:
            self._draw_frame(view)
        finally:
            work_done((time.perf_counter() - start) * 1000)  # a playing run's frame: its repaint may wait a pass

    def _draw_frame(self, view: runs.RunView | None) -> None:
        run = self.run
        if run is None:
            return
        self._dropped_seen = int(run.state.step)
        key = (run, run.state.step, run.epoch, run.finished, self.values["show_test"])
        first = run.state.weights[0][0]
        parameters = first if first.base is None else first.base  # the weights are views of one parameter array
        if key == self._frame_key and parameters is self._frame_parameters:
            return  # e.g. a new learning rate while paused: nothing on screen changes
        self._frame_key, self._frame_parameters = key, parameters
        ready, self._ready_view = self._ready_view, None
        if view is not None:
            pass
        elif ready is not None and ready[0] is run and run.state.step == 0:  # drawn before it trained: made on the worker
            view = ready[1]
        else:
            view = run.view(plane_cells=plane_cells(self.values), unit_cells=UNIT_CELLS)
        self._view = view
        self._draw_status(view)
        self._draw_plane(view)
        self._draw_network(view)
        self._draw_curves(view)

    def _draw_status(self, view) -> None:
        parts = [tr("epoch {n}").format(n=view.epoch), tr("step {n}").format(n=view.step)]
        if view.train_loss is not None:
            parts.append(tr("train loss {v}").format(v=f"{view.train_loss:.4g}"))
            parts.append(tr("test loss {v}").format(v=f"{view.test_loss:.4g}"))
        if view.test_accuracy is not None:
            parts.append(tr("test accuracy {v}").format(v=f"{view.test_accuracy:.1%}"))
        if view.diverged_epoch is not None:
            parts.append(tr("diverged at epoch {n}: the last finite weights are shown").format(n=view.diverged_epoch))
        elif view.stopped_epoch is not None:
            parts.append(tr("stopped early at epoch {n}; best epoch {best}").format(n=view.stopped_epoch, best=view.best_epoch))
        text = " · ".join(parts)
        if self.status.text() != text:
            self.status.setText(text)
            self.status.setStyleSheet(f"color: {self.style_.error};" if view.diverged_epoch is not None else "")

    def _draw_plane(self, view) -> None:
        (x0, x1), (y0, y1) = view.extent
        self.heat.setImage(view.plane, levels=view.levels, autoLevels=False)
        self.heat.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.boundary.setData(view.boundary[:, 0], view.boundary[:, 1]) if len(view.boundary) else self.boundary.setData([], [])
        data = self.run.data
        show_test = self.values["show_test"]
        if self._points_key != (id(data), show_test):  # the points move only with the data
            self._points_key = (id(data), show_test)
            self.train_points.setData(data.x_train[:, 0], data.x_train[:, 1], brush=self._brushes(data.y_train, view))
            self.test_points.setVisible(show_test)
            if show_test:
                self.test_points.setData(data.x_test[:, 0], data.x_test[:, 1], pen=self._pens(data.y_test, view))
        wrong = view.wrong_train if not show_test else np.concatenate([view.wrong_train, view.wrong_test])
        self.wrong_points.setData(wrong[:, 0], wrong[:, 1])
        if self._ranges.get("plane") != view.extent:
            self._ranges["plane"] = view.extent
            self.plane.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            self.plane.vb.prepareForPaint()

    def _brushes(self, y: np.ndarray, view) -> list:
        if view.task == "classification":
            return [self.brushes[int(label)] for label in y]
        if self._level_brushes is None:  # 32 shades, made once: the scatter draws one symbol per distinct brush
            self._level_brushes = [pg.mkBrush(*self.lut[i]) for i in np.linspace(0, 255, POINT_SHADES).round().astype(int)]
        lo, hi = view.levels
        index = np.clip(np.rint((y - lo) / max(hi - lo, 1e-12) * (POINT_SHADES - 1)).astype(int), 0, POINT_SHADES - 1)
        return [self._level_brushes[i] for i in index]

    def _pens(self, y: np.ndarray, view) -> list:
        if self._point_pens is None:
            self._point_pens = (pg.mkPen(ORANGE, width=2), pg.mkPen(BLUE, width=2),
                                pg.mkPen(self.style_.foreground, width=1.5))
        orange, blue, plain = self._point_pens
        if view.task == "classification":
            return [orange if label < 0.5 else blue for label in y]
        return [plain] * len(y)

    _level_brushes: list | None = None
    _point_pens: tuple | None = None

    def _draw_network(self, view) -> None:
        columns = view.columns
        key = tuple((c.kind, c.total, len(c.pictures)) for c in columns) + (view.activations,)
        if key != self._layout_key:
            self._lay_out(view)
            self._layout_key = key
        elif (self._net_drawn is not None and self._net_drawn[0] is self._frame_parameters
              and self._net_drawn[1:] == (view.extent, self._dropped_seen)):
            return  # the same weights over the same window (e.g. new data points): the diagram stands
        self._net_drawn = (self._frame_parameters, view.extent, self._dropped_seen)
        self.mosaic.setImage(self._mosaic_pixels(columns), autoLevels=False)
        self.mosaic.setRect(self._mosaic_rect)
        for bin_key, segments in self._links(view).items():
            self.links[bin_key].setData(segments[:, 0], segments[:, 1]) if len(segments) else self.links[bin_key].setData([], [])
        dropped = np.array([self._positions[layer + 1][unit] for layer, mask in enumerate(view.dropped)
                            for unit in np.flatnonzero(mask[:len(self._positions[layer + 1])])]).reshape(-1, 2)
        self.dropped.setData(dropped[:, 0], dropped[:, 1])

    _view = None
    _net_drawn: tuple | None = None
    _dropped_seen: int = 0  # the step whose dropout masks are drawn

    def _lay_out(self, view) -> None:
        """Place the unit pictures, frames, headers and '+N more' labels for this network's shape."""
        columns = view.columns
        self._positions = [np.array([(c * COLUMN_GAP, ((len(col.pictures) - 1) / 2 - i) * ROW_GAP)  # unit 1 on top
                                     for i in range(len(col.pictures))]) for c, col in enumerate(columns)]
        frames = []
        for c, (header, more) in enumerate(zip(self.headers, self.more)):
            column = columns[c] if c < len(columns) else None
            shown = len(column.pictures) if column else 0
            for x, y in self._positions[c] if column else ():
                corners = [(x - 0.5, y - 0.5), (x + 0.5, y - 0.5), (x + 0.5, y + 0.5), (x - 0.5, y + 0.5)]
                frames += [p for k in range(4) for p in (corners[k], corners[(k + 1) % 4])]
            header.setVisible(column is not None)
            more.setVisible(column is not None and column.total > shown)
            if column is None:
                continue
            x = c * COLUMN_GAP
            header.setText(self._column_title(c, column, view))
            header.setPos(x, float(self._positions[c][:, 1].max()) + 0.6)
            more.setText(tr("+{n} more").format(n=column.total - shown))
            more.setPos(x, float(self._positions[c][:, 1].min()) - 0.6)
        frames = np.array(frames, dtype=float).reshape(-1, 2)
        self.unit_frames.setData(frames[:, 0], frames[:, 1])
        ys = np.concatenate([p[:, 1] for p in self._positions])
        x0, y0 = -0.5, float(ys.min()) - 0.5
        self._mosaic_origin = (x0, y0)
        self._mosaic_rect = QRectF(x0, y0, (len(columns) - 1) * COLUMN_GAP + 1.0, float(ys.max() - ys.min()) + 1.0)
        self.net.setRange(xRange=(-1.4, (len(columns) - 1) * COLUMN_GAP + 1.4),
                          yRange=(float(ys.min()) - 1.5, float(ys.max()) + 1.8), padding=0.02)
        self.net.prepareForPaint()

    def _mosaic_pixels(self, columns) -> np.ndarray:
        """The unit pictures coloured by the panel's look-up table (each column on its own colour
        scale) at their places in one transparent RGBA image, UNIT_CELLS pixels per unit."""
        x0, y0 = self._mosaic_origin
        rect = self._mosaic_rect
        pixels = np.zeros((round(rect.height() * UNIT_CELLS), round(rect.width() * UNIT_CELLS), 4), dtype=np.ubyte)
        for c, column in enumerate(columns):
            lo, hi = column.levels
            index = np.nan_to_num((column.pictures - lo) * (255 / max(hi - lo, 1e-12)), nan=127.5)
            colours = self.lut[np.clip(index, 0, 255).astype(np.intp)]  # (k, cells, cells, 4)
            for colour, (x, y) in zip(colours, self._positions[c]):
                row, col = round((y - 0.5 - y0) * UNIT_CELLS), round((x - 0.5 - x0) * UNIT_CELLS)
                pixels[row:row + UNIT_CELLS, col:col + UNIT_CELLS] = colour
        return pixels

    def _column_title(self, index: int, column, view) -> str:
        if column.kind == "input":
            return tr("features")
        if column.kind == "output":
            return tr("output")
        return f"{column.total} {pick(*ACTIVATIONS[view.activations[index - 1]])}"

    def _links(self, view) -> dict:
        """Connection segments between shown units, binned by sign and by |w| relative to the
        largest shown weight (quarters): one curve item per bin."""
        segments: dict[tuple[int, int], list] = {key: [] for key in self.links}
        shown = [(w[:len(a), :len(b)], a, b) for (w, _), a, b in
                 zip(view.weights, self._positions[:-1], self._positions[1:])]
        top = max((float(np.max(np.abs(w))) for w, _, _ in shown if w.size and np.all(np.isfinite(w))), default=0.0)
        if top <= 0:
            return {key: np.empty((0, 2)) for key in self.links}
        for w, a, b in shown:
            i, j = np.nonzero(np.isfinite(w) & (w != 0))
            values = w[i, j]
            bins = np.minimum((np.abs(values) / top * 4).astype(int), 3)
            starts = a[i] + [0.5, 0.0]
            ends = b[j] - [0.5, 0.0]
            for sign in (1, -1):
                for width in range(4):
                    chosen = (np.sign(values) == sign) & (bins == width)
                    if chosen.any():
                        pairs = np.stack([starts[chosen], ends[chosen]], 1).reshape(-1, 2)
                        segments[sign, width].append(pairs)
        return {key: np.concatenate(parts) if parts else np.empty((0, 2)) for key, parts in segments.items()}

    def _draw_curves(self, view) -> None:
        h = view.history
        if len(h.epochs):
            curves = [(curve, log_loss(loss)) for curve, loss in ((self.train_curve, h.train_loss),
                                                                  (self.test_curve, h.test_loss),
                                                                  (self.batch_curve, h.minibatch_loss))]
            for curve, logs in curves:  # a diverged run's inf / NaN epochs are gaps
                curve.setData(h.epochs, logs, connect="finite", skipFiniteCheck=bool(np.isfinite(logs).all()))
            logs = np.concatenate([logs for _, logs in curves])
            logs = logs[np.isfinite(logs)] if np.isfinite(logs).any() else np.zeros(1)
            self._set_range(self.loss_plot, "loss", (0.0, max(float(h.epochs[-1]), 1.0)),
                            (math.floor(float(logs.min()) - 0.05), math.ceil(float(logs.max()) + 0.05)))
            layers = h.grad_norm.shape[1]
            if layers != self._grad_layers:  # one legend entry per weight matrix, rebuilt only when the count changes
                self.grad_legend.clear()
                for index in range(layers):
                    self.grad_legend.addItem(self.grad_curves[index],
                                             tr("output") if index == layers - 1 else f"W{index + 1}")
                self._grad_layers = layers
            trained = np.all(np.isfinite(h.grad_norm), axis=1)  # epoch 0 has taken no step yet
            grads = np.log10(np.maximum(h.grad_norm[trained], 1e-12))
            for index, curve in enumerate(self.grad_curves):
                curve.setVisible(index < grads.shape[1])
                if index < grads.shape[1]:
                    curve.setData(h.epochs[trained], grads[:, index], skipFiniteCheck=True)
            if grads.size:
                self._set_range(self.grad_plot, "grad", (0.0, max(float(h.epochs[-1]), 1.0)),
                                (math.floor(float(grads.min()) - 0.05), math.ceil(float(grads.max()) + 0.05)))
        else:
            for curve in (self.train_curve, self.test_curve, self.batch_curve, *self.grad_curves):
                curve.setData([], [])
        best = view.best_epoch
        self.best_line.setVisible(best is not None)
        if best is not None:
            self.best_line.setPos(best)
        note = ""
        if view.diverged_epoch is not None:
            note = tr("diverged at epoch {n}").format(n=view.diverged_epoch)
        elif best is not None:
            note = tr("best test loss: epoch {n}").format(n=best)
        if self.loss_note.toPlainText() != note:
            self.loss_note.setText(note)
        if "loss" in self._ranges:
            (x0, x1), (y0, y1) = self._ranges["loss"]
            self.loss_note.setPos(x1, y1)
        edges, shares = view.weight_edges, view.weight_shares
        self.weight_hist.setData(edges, shares, skipFiniteCheck=True)
        self._set_range(self.weight_plot, "weights", (float(edges[0]), float(edges[-1])),
                        (0.0, max(float(shares.max()) * 1.1, 1e-3)))
        note = ntr("|w| < 0.001: {share}\nof {n} weight", "|w| < 0.001: {share}\nof {n} weights", view.n_weights).format(
            share=f"{view.near_zero:.0%}", n=view.n_weights)
        if self.weight_note.toPlainText() != note:
            self.weight_note.setText(note)
        (x0, x1), (y0, y1) = self._ranges["weights"]
        self.weight_note.setPos(x0, y1)

    def _set_range(self, plot: pg.PlotItem, key: str, x: tuple, y: tuple) -> None:
        x = held_range(self._ranges.get(key, (None, None))[0] if key in self._ranges else None, x)
        y = held_range(self._ranges.get(key, (None, None))[1] if key in self._ranges else None, y)
        if self._ranges.get(key) != (x, y):
            self._ranges[key] = (x, y)
            plot.setRange(xRange=x, yRange=y, padding=0)
            plot.vb.prepareForPaint()

    # ---- hover read-out -----------------------------------------------------------------------
    def _hovered(self, point) -> None:
        text = "" if point is None or self._view is None else self._describe(point.x(), point.y())
        if self.hover.text() != text:
            self.hover.setText(text)

    def _describe(self, x: float, y: float) -> str:
        """The live numbers under the cursor: a unit (what it computes) or a connection (its weight)."""
        view = self._view
        for c, centres in enumerate(self._positions):
            inside = np.flatnonzero((np.abs(centres[:, 0] - x) <= 0.5) & (np.abs(centres[:, 1] - y) <= 0.5))
            if inside.size:
                return self._describe_unit(view, c, int(inside[0]))
        best = None
        for c, ((w, _), a, b) in enumerate(zip(view.weights, self._positions[:-1], self._positions[1:])):
            if not (a[0, 0] + 0.5 <= x <= b[0, 0] - 0.5):
                continue
            t = (x - a[0, 0] - 0.5) / (b[0, 0] - a[0, 0] - 1.0)
            line_y = a[:, None, 1] + t * (b[None, :, 1] - a[:, None, 1])  # (shown in, shown out)
            distance = np.abs(line_y - y)
            i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
            if distance[i, j] < 0.15 and (best is None or distance[i, j] < best[0]):
                best = (distance[i, j], c, i, j)
        if best is None:
            return ""
        _, c, i, j = best
        return tr("weight from {a} to {b}: w = {w}").format(
            a=self._unit_name(view, c, i), b=self._unit_name(view, c + 1, j), w=f"{view.weights[c][0][i, j]:.4g}")

    def _unit_name(self, view, column: int, unit: int) -> str:
        kind = view.columns[column].kind
        if kind == "input":
            return view.columns[0].names[unit]
        if kind == "output":
            return tr("the output")
        return tr("unit {u} of layer {l}").format(u=unit + 1, l=column)

    def _describe_unit(self, view, column: int, unit: int) -> str:
        kind = view.columns[column].kind
        if kind == "input":
            return tr("input feature {name}: its value over the plane").format(name=view.columns[0].names[unit])
        w, b = view.weights[column - 1]
        if kind == "output":
            what = tr("sigmoid(z) is the probability of class 1") if view.task == "classification" else tr("z is the predicted value")
            return tr("output: z = Σ w·h + b, b = {b}; {what}").format(b=f"{b[unit]:.4g}", what=what)
        activation = view.activations[column - 1]
        return tr("{name}: h = {f}(z), z = Σ w·x + b over {inputs}, b = {b}; the picture is h over the plane").format(
            name=self._unit_name(view, column, unit), f=activation, b=f"{b[unit]:.4g}",
            inputs=ntr("{n} input", "{n} inputs", w.shape[0]).format(n=w.shape[0]))

    def caption(self) -> str:
        v, p = self.values, self.PARAMS
        names = ["dataset", "n_points", "train_fraction", "noise", "hidden", "activation", "init", "norm", "loss",
                 "optimizer", "lr", "batch_size"]
        names += [n for n in ("momentum", "l1", "l2", "weight_decay", "dropout", "patience") if v[n]]
        features = ", ".join(name for name, suffix in FEATURE_PARAMS.items() if v[f"feature_{suffix}"])
        epoch = self.run.epoch if self.run is not None else 0
        return (f"{self.title()}: {p.caption(v, names)}, {tr('features')} = {features}, "
                f"{tr('epoch')} = {epoch}")

    def values_changed(self, names: list[str]) -> None:
        v = self.values
        self.controls["init_std"].setEnabled(v["init"] == "normal")
        self.controls["momentum"].setEnabled(v["optimizer"] in ("sgd", "rmsprop"))
        csv = v["dataset"] == "csv"
        for name in ("n_points", "noise"):
            self.controls[name].setEnabled(not csv)
        self.controls["csv_file"].setEnabled(csv)
        task = (_csv_dataset(v["csv_file"], v["train_fraction"], v["data_seed"]).task if csv
                else trn.DATASET_TASKS[v["dataset"]])
        self.controls["loss"].setEnabled(task == "classification")

    def retire(self) -> None:
        self.pause()
        self.run = None
        super().retire()

    def bench_background(self) -> dict[str, tuple[list[float], float]]:
        """Playing the default scene for 4 s: frame intervals (budget p95 33 ms) with the epochs per
        second in the label; and the largest network's training step (budget: 300 steps a second)."""
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        saved = dict(self.values)
        self.set_all(self.PARAMS.defaults())
        while self.busy():
            app.processEvents()
        self.rewind()
        frames = []
        self.speed.setValue(2)
        start = last = time.perf_counter()
        first_epoch = self.run.epoch
        self.play()
        while time.perf_counter() - start < 4.0 and self.playing:
            app.processEvents()
            now = time.perf_counter()
            if now - last > 0.0005:
                frames.append((now - last) * 1000)
            last = now
        self.pause()
        rate = (self.run.epoch - first_epoch) / (time.perf_counter() - start)
        big = trn.NetworkSpec(hidden=(64,) * 8, activation="tanh", features=("x1", "x2"))
        data = trn.make_dataset("spiral", n=2000, train_fraction=0.5)
        state = trn.init_state(big, trn.TrainConfig(batch_size=10))
        steps = []
        for _ in range(20):
            t = time.perf_counter()
            state, _ = trn.train(state, data, 10)
            steps.append((time.perf_counter() - t) * 100)  # ms per step
        self.set_all(saved)
        return {f"play default scene: frame interval ({rate:.0f} epochs/s)": (frames, 33.0),
                "8 x 64 network, 1000 training points: ms per step": (steps, 1000 / 300)}
