"""Normalization panel: which cells of an N x C x H x W tensor (or a B x T x D batch of padded
sentences) share one mean and variance under BatchNorm, LayerNorm, InstanceNorm, GroupNorm and
RMSNorm; how the data looks before and after; BatchNorm with small batches and at test time."""

from __future__ import annotations

import colorsys
import html
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (QAbstractItemView, QGraphicsItem, QHeaderView, QLabel, QSizePolicy, QSplitter,
                               QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from widgets.cube import CubePicture, CubeView
from widgets.items import PixelCurve, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import normalization as nz
from workbench.i18n import ntr, pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

METHODS = {"batch": ("BatchNorm", "批归一化 BatchNorm"), "layer": ("LayerNorm", "层归一化 LayerNorm"),
           "instance": ("InstanceNorm", "实例归一化 InstanceNorm"), "group": ("GroupNorm", "组归一化 GroupNorm"),
           "rms": ("RMSNorm", "均方根归一化 RMSNorm")}
MAX_SENTENCES = 8
TABLE_ROWS = 64  # statistics listed in the table (the rest are summarised in a last row)
HIST_GROUPS = 8  # channels or samples drawn in the histograms
SPREAD_BATCH_SIZES = np.arange(1, 65)


def parse_lengths(text: str) -> tuple[int, ...]:
    """"7,5,3" -> (7, 5, 3): one length per sentence, 1 to 8 sentences of 1 to 16 tokens."""
    parts = [p.strip() for p in text.replace("，", ",").split(",")]
    try:
        lengths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(tr("whole numbers separated by commas, e.g. 7,5,3,6")) from None
    if not 1 <= len(lengths) <= MAX_SENTENCES:
        raise ValueError(tr("1 to {n} sentences").format(n=MAX_SENTENCES))
    if any(not 1 <= n <= 16 for n in lengths):
        raise ValueError(tr("every length from 1 to 16 tokens"))
    return lengths


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _number(name, default, en, zh, help_en, help_zh, lo, hi, group, **extra) -> Param:
    kind = "int" if isinstance(default, int) and not isinstance(default, bool) else "float"
    return Param(name, kind, default, en, zh, help_en, help_zh, lo=lo, hi=hi, group=group, **extra)


PARAMETERS = [
    Param("method", "choice", "batch", "Method", "方法", "Which normalization: the cells that share one mean and variance.",
          "哪种归一化：哪些格子共用一组均值和方差。", choices=tuple(Choice(k, en, zh) for k, (en, zh) in METHODS.items())),
    _number("groups", 2, "Groups G", "组数 G", "GroupNorm's number of groups; must divide the channels (the slider "
            "steps over the divisors).", "GroupNorm 的组数，必须整除通道数（滑块只停在约数上）。", 1, 64, ""),
    Param("layout", "choice", "images", "Tensor", "张量", "Images N x C x H x W, or a batch of padded sentences B x T x D.",
          "图像 N x C x H x W，或补齐长度的一批句子 B x T x D。",
          choices=(Choice("images", "Images N x C x H x W", "图像 N x C x H x W"),
                   Choice("sentences", "Sentences B x T x D", "句子 B x T x D"))),
    Param("view", "choice", "histograms", "Beside the cube", "立方体旁边显示",
          "What the plots beside the cube show.", "立方体旁边的图显示什么。",
          choices=(Choice("histograms", "Histograms before / after", "归一化前后的直方图"),
                   Choice("small_batches", "BatchNorm with small batches", "小批量下的 BatchNorm"),
                   Choice("train_eval", "BatchNorm: training vs evaluation", "BatchNorm：训练与推理"))),
    _number("batch", 4, "Batch N", "批大小 N", "Samples in the batch (images).", "一批中的样本数（图像）。", 1, 8, "Sizes"),
    _number("channels", 6, "Channels C (features D)", "通道数 C（特征数 D）", "Channels of the images, or features per "
            "token of the sentences.", "图像的通道数，或句子中每个词元的特征数。", 1, 64, "Sizes"),
    _number("height", 3, "Height H", "高 H", "Image height in cells.", "图像高度（格子数）。", 1, 8, "Sizes"),
    _number("width", 3, "Width W", "宽 W", "Image width in cells.", "图像宽度（格子数）。", 1, 8, "Sizes"),
    Param("lengths", "text", "7,5,3,6", "Sentence lengths", "句子长度", "Real tokens of each sentence, comma separated "
          "(B = how many); the rest up to T is padding.", "每个句子的真实词元数，用逗号分隔（B = 个数）；其余直到 T 都是填充。",
          check=parse_lengths, max_length=60, group="Sizes"),
    _number("tokens", 8, "Padded length T", "补齐长度 T", "Every sentence is padded to this many tokens.",
            "每个句子都补齐到这么多个词元。", 1, 16, "Sizes"),
    Param("include_padding", "bool", True, "BatchNorm counts padding", "BatchNorm 统计填充",
          "BatchNorm's statistics include the padded tokens (what nn.BatchNorm1d does); off: real tokens only.",
          "BatchNorm 的统计量包含填充词元（nn.BatchNorm1d 的做法）；关闭则只用真实词元。", group="Sizes"),
    _number("cell_n", 0, "Cell: sample", "格子：样本", "The highlighted cell's sample (or hover the cube).",
            "高亮格子的样本序号（也可在立方体上悬停）。", 0, 63, "Cell"),
    _number("cell_c", 0, "Cell: channel", "格子：通道", "The highlighted cell's channel (feature).",
            "高亮格子的通道（特征）序号。", 0, 63, "Cell"),
    _number("cell_s", 0, "Cell: position", "格子：位置", "The highlighted cell's spatial position (token).",
            "高亮格子的空间位置（词元）序号。", 0, 63, "Cell"),
    _number("yaw", 35.0, "Yaw", "偏航角", "Turn the cube: 0 shows the front (C x H·W), 90 the side (N x H·W).",
            "转动立方体：0 度看正面（C x H·W），90 度看侧面（N x H·W）。", 0.0, 90.0, "Cell", unit="°"),
    _number("seed", 0, "Seed", "随机种子", "Seed of the input data.", "输入数据的随机种子。", 0, 9999, "Data"),
    _number("channel_shift", 2.0, "Channel offsets", "通道偏移", "How much channels differ in mean and scale.",
            "各通道均值和尺度的差异大小。", 0.0, 5.0, "Data"),
    _number("sample_shift", 1.0, "Sample offsets", "样本偏移", "How much samples differ in mean and scale.",
            "各样本均值和尺度的差异大小。", 0.0, 5.0, "Data"),
    _number("eps", 1e-5, "eps", "eps", "Added to the variance before the square root.", "开方前加到方差上的小常数。",
            1e-8, 1.0, "Data", log=True),
    Param("hist_by", "choice", "channel", "Histograms per", "直方图分组", "One histogram per channel or per sample.",
          "每个通道或每个样本画一条直方图。", group="Data",
          choices=(Choice("channel", "Channel (feature)", "通道（特征）"), Choice("sample", "Sample (sentence)", "样本（句子）"))),
    _number("batch_size", 8, "Batch size", "批大小", "The batch size marked in the small-batch view.",
            "小批量视图中标出的批大小。", 1, 64, "BatchNorm"),
    _number("momentum", 0.1, "Momentum", "动量 momentum", "Running statistics: new = (1 − m)·old + m·batch (torch's "
            "convention).", "滑动统计量：new = (1 − m)·old + m·batch（torch 的约定）。", 0.0, 1.0, "BatchNorm"),
    Param("cumulative", "bool", False, "Cumulative average", "累积平均", "momentum=None: the running statistics are the "
          "plain average of every batch so far.", "momentum=None：滑动统计量是迄今所有批次的简单平均。", group="BatchNorm"),
    _number("drift", 0.5, "Drift", "漂移", "How far the data's true mean moves over the stream of batches.",
            "数据的真实均值在整个批次流中漂移多远。", 0.0, 2.0, "BatchNorm"),
    _number("batches", 50, "Batches", "批次数", "Batches in the training stream.", "训练流中的批次数。", 1, 200, "BatchNorm"),
]


def tensor_shape(values: Mapping[str, Any]) -> tuple[int, int, int]:
    """(N, C, S): samples, channels (features) and spatial positions (tokens) of the cube."""
    if values["layout"] == "sentences":
        return len(parse_lengths(values["lengths"])), values["channels"], values["tokens"]
    return values["batch"], values["channels"], values["height"] * values["width"]


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """Groups follow the channels to a divisor; lengths and the padded length follow each other; the
    highlighted cell stays inside the tensor."""
    follow: dict[str, Any] = {}
    c = values["channels"]
    if c % values["groups"]:
        follow["groups"] = max(d for d in divisors(c) if d <= values["groups"])
    try:
        lengths = parse_lengths(values["lengths"])
    except ValueError:
        return follow
    if "tokens" in changes and max(lengths) > values["tokens"]:
        follow["lengths"] = ",".join(str(min(n, values["tokens"])) for n in lengths)
    elif max(lengths) > values["tokens"]:
        follow["tokens"] = max(lengths)
    shape = tensor_shape({**values, **follow})
    for name, size in zip(("cell_n", "cell_c", "cell_s"), shape):
        if values[name] > size - 1:
            follow[name] = size - 1
    return follow


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    c, g = values["channels"], values["groups"]
    if c % g:
        problems.append(tr("Groups G (groups): {g} does not divide the {channels}; divisors: {d}").format(
            g=g, channels=ntr("{n} channel", "{n} channels", c).format(n=c), d=", ".join(map(str, divisors(c)))))
    lengths = parse_lengths(values["lengths"])
    if max(lengths) > values["tokens"]:
        problems.append(tr("Sentence lengths (lengths): {n} tokens do not fit the padded length T = {t}").format(
            n=max(lengths), t=values["tokens"]))
    for name, size in zip(("cell_n", "cell_c", "cell_s"), tensor_shape(values)):
        if values[name] > size - 1:
            problems.append(tr("{name} ({name}): {value} is outside 0..{last}").format(
                name=name, value=values[name], last=size - 1))
    return problems


PRESETS = [
    Preset("bn_cnn", "BatchNorm in a CNN", "CNN 中的 BatchNorm", {"method": "batch", "cell_c": 2}),
    Preset("ln_transformer", "LayerNorm in a Transformer", "Transformer 中的 LayerNorm",
           {"method": "layer", "layout": "sentences", "channels": 8, "lengths": "7,5,3,6", "tokens": 8, "cell_s": 2,
            "hist_by": "sample"}),
    Preset("in_style", "InstanceNorm for style transfer", "风格迁移中的 InstanceNorm",
           {"method": "instance", "batch": 2, "channels": 3, "height": 4, "width": 4, "sample_shift": 3.0,
            "cell_n": 1, "cell_c": 1, "hist_by": "sample"}),
    Preset("gn32", "GroupNorm, G = 32", "GroupNorm，G = 32",
           {"method": "group", "batch": 2, "channels": 64, "groups": 32, "height": 2, "width": 2, "cell_c": 10}),
    Preset("gn_layer", "GroupNorm, G = 1 (= LayerNorm)", "GroupNorm，G = 1（= LayerNorm）",
           {"method": "group", "channels": 8, "groups": 1}),
    Preset("gn_instance", "GroupNorm, G = C (= InstanceNorm)", "GroupNorm，G = C（= InstanceNorm）",
           {"method": "group", "channels": 8, "groups": 8, "cell_c": 3}),
    Preset("batch2", "Batch size 2", "批大小为 2", {"method": "batch", "view": "small_batches", "batch_size": 2}),
    Preset("padded", "Padded sentences", "补齐的句子",
           {"method": "batch", "layout": "sentences", "channels": 8, "lengths": "8,3,2,5", "tokens": 8,
            "include_padding": True, "cell_n": 1, "cell_c": 0, "cell_s": 1}),
    Preset("rms_llama", "RMSNorm vs LayerNorm (LLaMA)", "RMSNorm 与 LayerNorm（LLaMA）",
           {"method": "rms", "layout": "sentences", "channels": 8, "lengths": "7,5,3,6", "hist_by": "sample"}),
    Preset("train_eval", "BatchNorm: training vs evaluation", "BatchNorm：训练与推理",
           {"method": "batch", "view": "train_eval", "drift": 1.0, "momentum": 0.1, "batches": 60}),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)


# ---- compute ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Histograms:
    """Per group (channel or sample, at most HIST_GROUPS): counts over shared bins, before and after."""

    labels: tuple[str, ...]
    before_edges: np.ndarray  # (bins + 1,)
    before: np.ndarray  # (groups, bins)
    after_edges: np.ndarray
    after: np.ndarray


@dataclass(frozen=True)
class NormScene:
    """What the panel draws. Cube arrays are (N, C, S): samples, channels (features), positions (tokens)."""

    values: Mapping[str, Any]
    norm: nz.NormResult
    x: np.ndarray  # (N, C, S) input
    y: np.ndarray  # (N, C, S) output
    stat: np.ndarray  # (N, C, S) int: which statistic each cell uses
    padded: np.ndarray  # (N, C, S) bool: padding cells (all False for images)
    counted: np.ndarray  # (N, C, S) bool: cells that enter their statistic
    mean: np.ndarray  # (n_stats,)
    var: np.ndarray  # (n_stats,)
    cell: tuple[int, int, int]
    box: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    histograms: Histograms
    padding_effect: tuple[float, float, float, float] | None  # BatchNorm on sentences: the cell's feature's
    # (mean, var) with padding counted, then without
    spread: Any = None  # nz.SpreadResult for the small-batch view
    stream: Any = None  # nz.StreamResult for the train-vs-eval view


@lru_cache(maxsize=8)
def _input(layout: str, n: int, c: int, height: int, width: int, lengths: str, tokens: int, seed: int,
           channel_shift: float, sample_shift: float) -> tuple[np.ndarray, np.ndarray | None]:
    if layout == "sentences":
        return nz.make_sentences(parse_lengths(lengths), tokens, c, seed=seed)
    return nz.make_input((n, c, height, width), seed=seed, channel_shift=channel_shift, sample_shift=sample_shift), None


@lru_cache(maxsize=4)
def _spread(channels: int, spatial: int, groups: int, seed: int) -> Any:
    return nz.batch_size_spread(SPREAD_BATCH_SIZES, channels=channels, spatial=spatial, groups=groups, seed=seed)


@lru_cache(maxsize=4)
def _stream(batches: int, channels: int, spatial: int, drift: float, momentum: float | None, seed: int) -> Any:
    return nz.running_stream(batches, channels=channels, spatial=spatial, drift=drift, momentum=momentum, seed=seed)


def _cube(array: np.ndarray, layout: str) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H·W); (B, T, D) -> (B, D, T)."""
    if layout == "sentences":
        return array.transpose(0, 2, 1)
    return array.reshape(array.shape[0], array.shape[1], -1)


def _histograms(x: np.ndarray, y: np.ndarray, real: np.ndarray, by: str, names: tuple[str, str],
                bins: int = 24) -> Histograms:
    """Histograms of the real cells of x and y per channel (axis 1) or per sample (axis 0)."""
    count = min(x.shape[1] if by == "channel" else x.shape[0], HIST_GROUPS)
    take = (lambda a, i: a[:, i][real[:, i]]) if by == "channel" else (lambda a, i: a[i][real[i]])
    out = []
    for data in (x, y):
        shown = data[:count] if by == "sample" else data[:, :count]
        mask = real[:count] if by == "sample" else real[:, :count]
        values = shown[mask]
        if data is y:  # normalized: symmetric whole-number bins, the same for every method most of the time
            bound = max(4.0, float(np.ceil(np.abs(values).max())))
        else:  # symmetric, 1-2-5 steps: the axis holds still while sizes and seeds change the data a little
            bound = nice_bound(max(float(np.abs(values).max()), 1.0))
        edges = np.linspace(-bound, bound, bins + 1)
        out.append((edges, np.array([np.histogram(take(data, i), edges)[0] for i in range(count)], dtype=float)))
    labels = tuple(f"{names[0] if by == 'sample' else names[1]} = {i}" for i in range(count))
    return Histograms(labels, out[0][0], out[0][1], out[1][0], out[1][1])


def nice_bound(x: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= x (> 0)."""
    power = 10.0 ** np.floor(np.log10(max(x, 1e-9)))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= x))


def _box(stat: np.ndarray, k: int) -> tuple[tuple[int, int], ...]:
    where = np.nonzero(stat == k)
    return tuple((int(w.min()), int(w.max()) + 1) for w in where)


@dataclass(frozen=True)
class Normalized:
    """The tensor and its normalization, in cube order (N, C, S); shared by every cell's scene."""

    x: np.ndarray
    mask: np.ndarray | None  # (B, T) real tokens, sentences only
    norm: nz.NormResult
    stat: np.ndarray
    padded: np.ndarray
    counted: np.ndarray
    histograms: Histograms


@lru_cache(maxsize=16)
def normalized(layout: str, method: str, groups: int | None, eps: float, include_padding: bool, shape: tuple[int, int, int],
               height: int, width: int, lengths: str, seed: int, channel_shift: float, sample_shift: float,
               hist_by: str) -> Normalized:
    n, c, s = shape
    x, mask = _input(layout, n, c, height, width, lengths, s, seed, channel_shift, sample_shift)
    backend_layout = "NTD" if layout == "sentences" else "NCHW"
    norm = nz.normalize(x, method, groups=groups, eps=eps, layout=backend_layout, mask=mask,
                        include_padding=include_padding)
    stat = _cube(nz.stat_index(method, x.shape, groups=groups, layout=backend_layout), layout)
    x3, y3 = _cube(x, layout), _cube(norm.y, layout)
    padded = np.zeros(x3.shape, dtype=bool) if mask is None else np.broadcast_to(~mask[:, None, :], x3.shape)
    counted = ~padded if (method == "batch" and mask is not None and not include_padding) else np.ones(x3.shape, bool)
    histograms = _histograms(x3, y3, ~padded, hist_by, ("b", "d") if layout == "sentences" else ("n", "c"))
    return Normalized(x, mask, norm, stat, padded, counted, histograms)


def compute_scene(values: Mapping[str, Any]) -> NormScene:
    v = values
    layout = v["layout"]
    shape = tensor_shape(v)
    t = normalized(layout, v["method"], v["groups"] if v["method"] == "group" else None, v["eps"], v["include_padding"],
                   shape, v["height"], v["width"], v["lengths"], v["seed"], v["channel_shift"], v["sample_shift"],
                   v["hist_by"])
    norm = t.norm
    cell = (v["cell_n"], v["cell_c"], v["cell_s"])
    padding_effect = None
    if layout == "sentences" and v["method"] == "batch":
        other = nz.normalize(t.x, "batch", eps=v["eps"], layout="NTD", mask=t.mask, include_padding=not v["include_padding"])
        pair = [(float(norm.mean[cell[1]]), float(norm.var[cell[1]])), (float(other.mean[cell[1]]), float(other.var[cell[1]]))]
        if not v["include_padding"]:
            pair.reverse()
        padding_effect = (*pair[0], *pair[1])
    spread = stream = None
    n, c, s = shape
    if v["view"] == "small_batches":
        spread = _spread(c, s, v["groups"] if c % v["groups"] == 0 else 1, v["seed"])
    elif v["view"] == "train_eval":
        stream = _stream(v["batches"], c, s, v["drift"], None if v["cumulative"] else v["momentum"], v["seed"])
    return NormScene(v, norm, _cube(t.x, layout), _cube(norm.y, layout), t.stat, t.padded, t.counted, np.ravel(norm.mean),
                     np.ravel(norm.var), cell, _box(t.stat, int(t.stat[cell])), t.histograms, padding_effect, spread, stream)


# ---- colours ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def stat_palette(n_stats: int, dark: bool) -> np.ndarray:
    """(n_stats, 4) RGBA uint8 pale colours per statistic: neighbouring statistics get distant hues."""
    rows = [colorsys.hsv_to_rgb((0.08 + k * 0.618034) % 1.0, *((0.45, 0.5) if dark else (0.22, 0.97)))
            for k in range(n_stats)]
    return np.concatenate([np.round(np.array(rows) * 255), np.full((n_stats, 1), 255)], 1).astype(np.uint8)


LIT = {False: (255, 140, 26, 255), True: (255, 176, 0, 255)}  # the lit statistic, light / dark theme: one accent
LIT_CELL = {False: (190, 80, 0, 255), True: (255, 225, 120, 255)}  # the hovered cell itself


def cube_colors(scene: NormScene, dark: bool) -> np.ndarray:
    """(N, C, S, 4) RGBA: each statistic a pale hue, the lit one (the hovered cell's) in the accent
    colour, padding grey (padding left out of the statistic stays grey when lit)."""
    pale = stat_palette(int(scene.norm.n_stats), dark)
    lit = scene.stat == scene.stat[scene.cell]
    colors = pale[scene.stat]
    colors[lit & scene.counted] = LIT[dark]
    if scene.padded.any():
        colors[scene.padded & ~(lit & scene.counted)] = (70, 70, 74, 255) if dark else (205, 205, 208, 255)
        colors[scene.padded & lit & scene.counted] = (200, 130, 60, 255) if dark else (225, 165, 110, 255)
    colors[scene.cell] = LIT_CELL[dark]
    return colors


# ---- the panel -------------------------------------------------------------------------------------------
class NormalizationPanel(Panel):
    NAME = "normalization"
    TITLE_EN = "Normalization"
    TITLE_ZH = "归一化"
    PARAMS = PARAMS
    OPEN_GROUPS = ("Sizes", "BatchNorm")
    BENCH_SWEEPS = {
        "cell_c (hover)": {"param": "cell_c", "sweep": [0, 1, 2, 3, 4, 5] * 10},
        "method": {"param": "method", "sweep": list(METHODS) * 12},
        "channels": {"param": "channels", "sweep": [4, 6, 8, 12] * 15},
        "groups (C = 12)": {"param": "groups", "sweep": [1, 2, 3, 4, 6, 12] * 10,
                            "base": {"method": "group", "channels": 12}},
        "batch_size (small-batch view)": {"param": "batch_size", "sweep": list(range(1, 61)),
                                          "base": {"view": "small_batches"}},
        "momentum (train vs eval)": {"param": "momentum", "sweep": [round(0.05 + 0.015 * i, 3) for i in range(60)],
                                     "base": {"view": "train_eval"}},
    }
    BENCH_BUDGETS_MS = {"cell_c (hover)": 8.0, "method": 8.0, "channels": 8.0, "groups (C = 12)": 8.0}
    compute = staticmethod(compute_scene)

    # ---- figure ------------------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(4, 4, 4, 0)
        self.readout = QLabel()
        self.readout.setObjectName("readout")
        self.readout.setWordWrap(True)
        self.readout.setTextFormat(Qt.RichText)
        self.readout.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.readout.setMinimumHeight(int(st.point_size * 5.5))
        self.readout.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.cube = CubeView(st)
        self.cube.setObjectName("cube")
        self.cube.setToolTip(tr("Hover a cell: every cell that shares its mean and variance lights up"))
        self.cube.hovered.connect(lambda n, c, s: self.set_values({"cell_n": n, "cell_c": c, "cell_s": s}))
        left = QWidget()
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 0, 0)
        left_column.addWidget(self.readout)
        left_column.addWidget(self.cube, 1)
        self.stack = QStackedWidget()
        self.views = {name: self._plots(name) for name in ("histograms", "small_batches", "train_eval")}
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("stats_table")
        self.table.setHorizontalHeaderLabels([tr("statistic"), tr("mean"), tr("variance"), tr("count")])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(int(st.point_size * 5))
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(int(st.point_size * 2.1))
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.itemSelectionChanged.connect(self._row_chosen)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.stack)
        right.addWidget(self.table)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 1 if st.presentation else 5)  # a projector's large text needs the plots wider
        splitter.setStretchFactor(1, 1 if st.presentation else 4)
        column.addWidget(splitter, 1)
        self._table_key: Any = None
        self._drawn_view: dict[str, Any] = {}
        return box

    def _plots(self, view: str) -> dict[str, Any]:
        """One GraphicsLayoutWidget with two plots per view, made once; switching views flips the stack."""
        st = self.style_
        canvas = QWidget()  # one graphics view per plot: a change in one plot repaints only that view
        canvas_column = QVBoxLayout(canvas)
        canvas_column.setContentsMargins(0, 0, 0, 0)
        canvas_column.setSpacing(0)
        self.stack.addWidget(canvas)
        titles = {"histograms": ((tr("Before: x"), tr("value"), ""), (tr("After: y"), tr("value"), "")),
                  "small_batches": ((tr("Channel 0: the batch statistics one sample sees in 64 random batches"), tr("batch size"), ""),
                                    (tr("How much one sample's output depends on its batch"), tr("batch size"), "")),
                  "train_eval": ((tr("Channel 0: running vs true statistics"), tr("batch"), ""),
                                 (tr("Last batch: training vs evaluation output"), tr("value"), ""))}[view]
        plots = []
        for row, (title, bottom, left) in enumerate(titles):
            graphics = pg.GraphicsLayoutWidget()
            graphics.setBackground(st.background)
            canvas_column.addWidget(graphics)
            plot = graphics.ci.addPlot(row=0, col=0, enableMenu=False)
            st.style_plot(plot, title, left, bottom)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.titleLabel.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            for axis in ("left", "bottom"):  # repainted from a pixmap when the plot beside them changes
                plot.getAxis(axis).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            if not left and view != "small_batches" and not (view == "train_eval" and row == 0):
                plot.hideAxis("left")  # histograms: the shape matters, counts would only repaint an axis per change
                plot.showGrid(x=False, y=False)  # the grid is redrawn with its axis whenever the range moves
            never_widens(plot.titleLabel)
            plots.append(plot)
        items: dict[str, Any] = {"canvas": canvas, "plots": plots}
        if view == "histograms":
            items["key"] = []  # coloured names at the top left of "after": text items, no layout to redo per change
            for i in range(HIST_GROUPS):
                text = pg.TextItem(color=st.series[i % len(st.series)], anchor=(0, 0))
                text.setFont(st.font(0.85, bold=True))
                text.setParentItem(plots[1].vb)
                text.setPos(4, 2 + i * st.point_size * 1.7)
                items["key"].append(text)
            items["before"] = [self._curve(plots[0], st.series[i % len(st.series)], step=True) for i in range(HIST_GROUPS)]
            items["after"] = [self._curve(plots[1], st.series[i % len(st.series)], step=True) for i in range(HIST_GROUPS)]
        elif view == "small_batches":
            top, bottom = plots
            for plot in plots:  # batch size on a log axis, ticks at the powers of two
                plot.getAxis("bottom").setTicks([[(float(np.log10(b)), str(b)) for b in (1, 2, 4, 8, 16, 32, 64)], []])
            items["legend_top"], items["legend_bottom"] = self._legend(top), self._legend(bottom)
            items["mean_band"] = self._band(top, st.series[0])
            items["var_band"] = self._band(top, st.series[1])
            items["mean_curve"] = self._curve(top, st.series[0])
            items["var_curve"] = self._curve(top, st.series[1])
            items["true_mean"] = self._curve(top, st.series[0], dashed=True)
            items["true_var"] = self._curve(top, st.series[1], dashed=True)
            items["legend_top"].addItem(items["mean_curve"], tr("batch mean ± std"))
            items["legend_top"].addItem(items["var_curve"], tr("batch variance ± std"))
            items["legend_top"].addItem(items["true_mean"], tr("population (dashed)"))
            items["bn"] = self._curve(bottom, st.series[0])
            items["ln"] = self._curve(bottom, st.series[2])
            items["gn"] = self._curve(bottom, st.series[3], dashed=True)
            items["legend_bottom"].addItem(items["bn"], "BatchNorm")
            items["legend_bottom"].addItem(items["ln"], "LayerNorm")
            items["legend_bottom"].addItem(items["gn"], "GroupNorm")
            items["markers"] = []
            for plot in plots:
                marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(st.muted, width=1.5, style=Qt.DashLine))
                plot.addItem(marker, ignoreBounds=True)
                items["markers"].append(marker)
        else:
            top, bottom = plots
            items["legend_top"], items["legend_bottom"] = self._legend(top, (6, 6)), self._legend(bottom)
            items["true_mean"] = self._curve(top, st.series[0], dashed=True)
            items["batch_mean"] = pg.ScatterPlotItem(size=st.marker_size * 0.55, pen=None, brush=pg.mkBrush(st.series[0]))
            top.addItem(items["batch_mean"])
            items["running_mean"] = self._curve(top, st.series[0])
            items["true_var"] = self._curve(top, st.series[1], dashed=True)
            items["running_var"] = self._curve(top, st.series[1])
            items["legend_top"].addItem(items["running_mean"], tr("running mean"))
            items["legend_top"].addItem(items["batch_mean"], tr("batch mean"))
            items["legend_top"].addItem(items["true_mean"], tr("true mean (dashed)"))
            items["legend_top"].addItem(items["running_var"], tr("running variance"))
            items["train"] = self._curve(bottom, st.series[2], step=True)
            items["eval"] = self._curve(bottom, st.series[3], step=True)
            items["legend_bottom"].addItem(items["train"], tr("training mode (batch statistics)"))
            items["legend_bottom"].addItem(items["eval"], tr("evaluation mode (running statistics)"))
        return items

    def _legend(self, plot, offset: tuple[int, int] = (-6, 6)) -> pg.LegendItem:
        st = self.style_
        legend = pg.LegendItem(offset=offset, labelTextColor=st.foreground, labelTextSize=f"{st.point_size * 0.85:.0f}pt",
                               brush=pg.mkBrush(st.background), pen=pg.mkPen(st.muted))
        legend.setParentItem(plot.vb)
        return legend

    def _curve(self, plot, color: str, step: bool = False, dashed: bool = False) -> pg.PlotCurveItem:
        width = self.style_.thin_line_width * 1.5 if step else None  # many overlapping steps: thinner, and cheaper
        pen = self.style_.pen(color, width=width, style=Qt.DashLine if dashed else None)
        curve = PixelCurve(pen=pen, antialias=not step)  # steps are level and upright: crisp without it
        if step:
            curve.setData(np.zeros(2), np.zeros(1), stepMode="center")
        plot.addItem(curve)
        return curve

    def _band(self, plot, color: str) -> tuple[pg.PlotCurveItem, pg.PlotCurveItem, pg.FillBetweenItem]:
        low, high = pg.PlotCurveItem(pen=None), pg.PlotCurveItem(pen=None)
        fill = pg.mkBrush(color)
        c = fill.color()
        c.setAlpha(60)
        band = pg.FillBetweenItem(low, high, brush=pg.mkBrush(c))
        plot.addItem(band)
        return low, high, band

    # ---- drawing -------------------------------------------------------------------------------------------
    def draw(self, scene: NormScene) -> Iterator[None]:
        """In steps (see Panel): the cube, the readout and table, the chosen view."""
        v = self.values
        axes = ("B", "D", "T") if v["layout"] == "sentences" else ("N", "C", "H×W")
        title = pick(METHODS[v["method"]][0], METHODS[v["method"]][1])
        if v["method"] == "group":
            title += f" (G = {v['groups']})"
        self.cube.show_picture(CubePicture(cube_colors(scene, self.style_.dark), scene.box, scene.cell, axes, title),
                               v["yaw"])
        yield
        self._draw_readout(scene)
        self._fill_table(scene)
        yield
        self.stack.setCurrentWidget(self.views[v["view"]]["canvas"])
        {"histograms": self._draw_histograms, "small_batches": self._draw_spread,
         "train_eval": self._draw_stream}[v["view"]](scene)

    def _stat_name(self, k: int) -> str:
        v = self.values
        n, c, s = tensor_shape(v)
        sentences = v["layout"] == "sentences"
        sample, channel = ("b", "d") if sentences else ("n", "c")
        method = v["method"]
        if method == "batch":
            return f"{channel} = {k}"
        if method in ("layer", "rms"):
            return f"b = {k // s}, t = {k % s}" if sentences else f"n = {k}"
        if method == "instance":
            return f"{sample} = {k // c}, {channel} = {k % c}"
        return f"{sample} = {k // v['groups']}, g = {k % v['groups']}"

    def _draw_readout(self, scene: NormScene) -> None:
        v = self.values
        n, c, s = scene.cell
        k = int(scene.stat[scene.cell])
        sentences = v["layout"] == "sentences"
        where = (f"b = {n}, d = {c}, t = {s}" if sentences else
                 f"n = {n}, c = {c}, h = {s // v['width']}, w = {s % v['width']}")
        x, y = scene.x[scene.cell], scene.y[scene.cell]
        count = int(scene.norm.count)
        cells = ntr("{n} cell", "{n} cells", count).format(n=count)
        mean, var = scene.mean[k], scene.var[k]
        lines = [tr("Cell {where}: x = {x:.3f} → y = {y:.3f}").format(where=where, x=x, y=y)]
        if v["method"] == "rms":
            lines.append(tr("its statistic ({stat}, {cells}): mean square {var:.3f}; y = x / √(mean square + ε)").format(
                stat=self._stat_name(k), cells=cells, var=var))
        else:
            lines.append(tr("its statistic ({stat}, {cells}): mean {mean:.3f}, variance {var:.3f}; "
                            "y = (x − mean) / √(variance + ε)").format(stat=self._stat_name(k), cells=cells, mean=mean,
                                                                         var=var))
        if scene.padded[scene.cell]:
            lines.append(tr("This cell is padding."))
        if scene.padding_effect is not None:
            m1, v1, m0, v0 = scene.padding_effect
            lines.append(tr("Feature d = {d}: with padding counted mean {m1:.3f}, variance {v1:.3f}; real tokens only "
                            "mean {m0:.3f}, variance {v0:.3f}").format(d=c, m1=m1, v1=v1, m0=m0, v0=v0))
        if scene.spread is not None:
            b = v["batch_size"]
            if b == 1:
                lines.append(tr("Batch size 1: BatchNorm's statistics are the sample's own, as InstanceNorm's; with "
                                "H × W = 1 every output would be 0."))
            lines.append(tr("Batch size {b}: channel 0's batch mean varies by ± {m:.3f} between batches; one sample's "
                            "BatchNorm output moves by {d:.3f} (LayerNorm, GroupNorm: {z:.3f})").format(
                b=b, m=scene.spread.batch_mean_std[b - 1], d=scene.spread.probe_spread_batch[b - 1],
                z=max(scene.spread.probe_spread_layer[b - 1], scene.spread.probe_spread_group[b - 1])))
        if scene.stream is not None:
            st = scene.stream
            lines.append(tr("After {batches}: running mean {rm:.3f} (true {tm:.3f}), running variance {rv:.3f} "
                            "(true {tv:.3f}); training and evaluation outputs differ by {d:.3f} on average").format(
                batches=ntr("{n} batch", "{n} batches", len(st.true_mean)).format(n=len(st.true_mean)), rm=st.running_mean[-1], tm=st.true_mean[-1], rv=st.running_var[-1],
                tv=st.true_var[-1], d=float(np.mean(np.abs(st.train_output - st.eval_output)))))
        text = "<br>".join(html.escape(line.replace("-0.000", "0.000")) for line in lines)
        if self.readout.text() != text:
            self.readout.setText(text)

    def _fill_table(self, scene: NormScene) -> None:
        """The statistics (refilled when they change; a hover only moves the selection)."""
        v = self.values
        key = scene.norm
        if key is not self._table_key:
            self._table_key = key
            n_stats = int(scene.norm.n_stats)
            shown = min(n_stats, TABLE_ROWS)
            is_rms = v["method"] == "rms"
            self.table.horizontalHeaderItem(1).setText(tr("mean") if not is_rms else tr("mean (0: no centring)"))
            self.table.horizontalHeaderItem(2).setText(tr("variance") if not is_rms else tr("mean square"))
            with QSignalBlocker(self.table):
                self.table.setUpdatesEnabled(False)
                self.table.setRowCount(shown + (1 if n_stats > shown else 0))
                for r in range(shown):
                    cells = (self._stat_name(r), f"{scene.mean[r]:.4f}", f"{scene.var[r]:.4f}", str(int(scene.norm.count)))
                    self._set_row(r, cells)
                if n_stats > shown:
                    self._set_row(shown, (tr("… {n} more").format(n=n_stats - shown), "", "", ""))
                self.table.setUpdatesEnabled(True)
        k = int(scene.stat[scene.cell])
        with QSignalBlocker(self.table):
            if k < TABLE_ROWS and self.table.currentRow() != k:
                self.table.selectRow(k)
                self.table.scrollToItem(self.table.item(k, 0))
            elif k >= TABLE_ROWS:
                self.table.clearSelection()

    def _set_row(self, r: int, cells: tuple[str, ...]) -> None:
        for col, text in enumerate(cells):
            item = self.table.item(r, col)
            if item is None:
                item = QTableWidgetItem()
                item.setTextAlignment((Qt.AlignLeft if col == 0 else Qt.AlignRight) | Qt.AlignVCenter)
                self.table.setItem(r, col, item)
            if item.text() != text:
                item.setText(text)

    def _row_chosen(self) -> None:
        """Choosing a statistic in the table highlights its first cell."""
        row = self.table.currentRow()
        if self.result is None or not 0 <= row < min(int(self.result.norm.n_stats), TABLE_ROWS):
            return
        cell = np.argwhere(self.result.stat == row)[0]
        self.set_values({"cell_n": int(cell[0]), "cell_c": int(cell[1]), "cell_s": int(cell[2])})

    def _draw_histograms(self, scene: NormScene) -> None:
        items = self.views["histograms"]
        h = scene.histograms
        if self._drawn_view.get("histograms") is h:
            return
        self._drawn_view["histograms"] = h
        # heights relative to the tallest bar of each plot: the y range (unlabelled) never moves, so
        # the axes are not redrawn for it
        for curves, edges, counts in ((items["before"], h.before_edges, h.before / max(h.before.max(), 1)),
                                      (items["after"], h.after_edges, h.after / max(h.after.max(), 1))):
            drawn = curves[0].getData()[0]
            if (drawn is not None and np.array_equal(drawn, edges) and len(counts) == sum(c.isVisible() for c in curves)
                    and all(np.array_equal(curves[i].getData()[1], counts[i]) for i in range(len(counts)))):
                continue  # e.g. the input is unchanged by a new method: its view is not repainted
            for i, curve in enumerate(curves):
                curve.setVisible(i < len(counts))
                if i < len(counts):
                    curve.setData(edges, counts[i])
        if items.get("labels") != h.labels:
            items["labels"] = h.labels
            for i, key in enumerate(items["key"]):
                key.setVisible(i < len(h.labels))
                if i < len(h.labels):
                    key.setText(h.labels[i])
        for plot, edges in zip(items["plots"], (h.before_edges, h.after_edges)):
            self._set_range(plot, edges[0], edges[-1], 0.0, 1.0)

    def _set_range(self, plot, x0: float, x1: float, y0: float, y1: float) -> None:
        """Ranges rounded outward to whole steps and held while the data fits them (held_range), set
        only when they change: the axes (slow to paint) stay as they are while the data moves inside them."""
        def outward(low: float, high: float) -> tuple[float, float]:
            span = max(high - low, 1e-9)
            step = 10 ** np.floor(np.log10(span)) / 2
            return float(np.floor(low / step) * step), float(np.ceil(high / step) * step)
        shown = getattr(plot, "_ranges", (None, None))
        ranges = (held_range(shown[0], outward(x0, x1)),
                  held_range(shown[1], (0.0, nice_bound(y1)) if y0 == 0 else outward(min(y0, y1), max(y0, y1))))
        if shown != ranges:
            plot._ranges = ranges
            plot.setRange(xRange=ranges[0], yRange=ranges[1], padding=0.02)
            plot.vb.prepareForPaint()  # the new view transform now: applied during the paint, it asks for a second one

    def _draw_spread(self, scene: NormScene) -> None:
        items = self.views["small_batches"]
        spread = scene.spread
        for marker in items["markers"]:
            marker.setValue(np.log10(self.values["batch_size"]))
        if self._drawn_view.get("small_batches") is spread:
            return
        self._drawn_view["small_batches"] = spread
        sizes = np.log10(np.asarray(spread.batch_sizes, dtype=float))
        for (low, high, _), centre, std, curve, true, truth in (
                (items["mean_band"], spread.batch_mean_avg, spread.batch_mean_std, items["mean_curve"], items["true_mean"],
                 spread.population_mean),
                (items["var_band"], spread.batch_var_avg, spread.batch_var_std, items["var_curve"], items["true_var"],
                 spread.population_var)):
            low.setData(sizes, centre - std)
            high.setData(sizes, centre + std)
            curve.setData(sizes, centre)
            true.setData(sizes, np.full(len(sizes), float(truth)))
        items["bn"].setData(sizes, spread.probe_spread_batch)
        items["ln"].setData(sizes, spread.probe_spread_layer)
        items["gn"].setData(sizes, spread.probe_spread_group)
        top, bottom = items["plots"]
        low = min(float(np.min(spread.batch_mean_avg - spread.batch_mean_std)), spread.population_mean)
        high = max(float(np.max(spread.batch_var_avg + spread.batch_var_std)), spread.population_var,
                   float(np.max(spread.batch_mean_avg + spread.batch_mean_std)))
        self._set_range(top, 0.0, float(sizes[-1]), low, high)
        self._set_range(bottom, 0.0, float(sizes[-1]), 0.0, max(float(np.max(spread.probe_spread_batch)), 1e-3))

    def _draw_stream(self, scene: NormScene) -> None:
        items = self.views["train_eval"]
        stream = scene.stream
        if self._drawn_view.get("train_eval") is stream:
            return
        self._drawn_view["train_eval"] = stream
        k = np.arange(1, len(stream.true_mean) + 1, dtype=float)
        items["true_mean"].setData(k, stream.true_mean)
        items["batch_mean"].setData(k, stream.batch_mean)
        items["running_mean"].setData(k, stream.running_mean)
        items["true_var"].setData(k, stream.true_var)
        items["running_var"].setData(k, stream.running_var)
        train, evaluation = np.ravel(stream.train_output), np.ravel(stream.eval_output)
        low, high = float(min(train.min(), evaluation.min())), float(max(train.max(), evaluation.max()))
        edges = np.linspace(low, high if high > low else low + 1, 31)
        counts = [np.histogram(data, edges)[0].astype(float) for data in (train, evaluation)]
        items["train"].setData(edges, counts[0])
        items["eval"].setData(edges, counts[1])
        top, bottom = items["plots"]
        curves = np.concatenate([stream.true_mean, stream.batch_mean, stream.running_mean, stream.true_var,
                                 stream.running_var])
        self._set_range(top, 1.0, float(k[-1]), float(curves.min()), float(curves.max()))
        self._set_range(bottom, edges[0], edges[-1], 0.0, float(max(counts[0].max(), counts[1].max())))

    # ---- controls and text -----------------------------------------------------------------------------------
    def _control_edited(self, name: str, raw: Any) -> None:
        """The groups slider steps over the divisors of C (typed values must divide C)."""
        if name == "groups" and not isinstance(raw, str):
            options = divisors(self.values["channels"])
            current = self.values["groups"]
            nearest = min(options, key=lambda d: (abs(d - raw), -d if raw > current else d))
            if nearest == current and raw != current:
                moved = [d for d in options if (d > current if raw > current else d < current)]
                nearest = (min(moved) if raw > current else max(moved)) if moved else current
            raw = nearest
            if raw == current:
                self.controls["groups"].show_value(current)
                return
        super()._control_edited(name, raw)

    def values_changed(self, names: list[str]) -> None:
        v = self.values
        sentences = v["layout"] == "sentences"
        enabled = {"groups": v["method"] == "group", "batch": not sentences, "height": not sentences,
                   "width": not sentences, "lengths": sentences, "tokens": sentences,
                   "include_padding": sentences and v["method"] == "batch", "momentum": not v["cumulative"]}
        for name, on in enabled.items():
            self.controls[name].setEnabled(on)
        if set(names) - {"cell_n", "cell_c", "cell_s", "yaw", "view"}:
            self.refresh_notes_later()

    def caption(self) -> str:
        v = self.values
        names = ["method"] + (["groups"] if v["method"] == "group" else []) + ["layout"]
        names += ["lengths", "tokens", "channels"] if v["layout"] == "sentences" else ["batch", "channels", "height", "width"]
        if v["layout"] == "sentences" and v["method"] == "batch":
            names.append("include_padding")
        if v["view"] == "small_batches":
            names.append("batch_size")
        elif v["view"] == "train_eval":
            names += ["cumulative", "drift", "batches"] if v["cumulative"] else ["momentum", "drift", "batches"]
        return f"{self.title()}: {self.PARAMS.caption(v, names)}"

    def notes_html(self) -> str:
        text = super().notes_html()
        v = self.values
        n, c, s = tensor_shape(v)
        reduced = {"batch": ("N × H × W", "B × T"), "layer": ("C × H × W", "D"), "instance": ("H × W", "T"),
                   "group": ("C/G × H × W", "D/G × T"), "rms": ("C × H × W", "D")}[v["method"]]
        count = {"batch": n * s, "layer": c * s, "instance": s, "group": c // v["groups"] * s, "rms": c * s}[v["method"]]
        n_stats = {"batch": c, "layer": n, "instance": n * c, "group": n * v["groups"], "rms": n}[v["method"]]
        if v["layout"] == "sentences":
            count = {"batch": n * s, "layer": c, "instance": s, "group": c // v["groups"] * s, "rms": c}[v["method"]]
            n_stats = {"batch": c, "layer": n * s, "instance": n * c, "group": n * v["groups"], "rms": n * s}[v["method"]]
        numbers = {"method": pick(*METHODS[v["method"]]), "axes": reduced[v["layout"] == "sentences"],
                   "count": str(count), "n_stats": str(n_stats), "shape": f"{n} × {c} × {s}"}
        for key, value in numbers.items():
            text = text.replace("{" + key + "}", html.escape(value))
        return text
