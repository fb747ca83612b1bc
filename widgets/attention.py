"""Attention panel: score and weight heatmaps of multi-head self- and cross-attention under
padding, causal and custom masks, per head and averaged, and why scores are divided by sqrt(d_k)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetricsF, QImage, QPainter, QPen, QStaticText, QTransform
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QLabel, QSizePolicy, QVBoxLayout, QWidget

from widgets.controls import OneLine
from widgets.items import CellImage, DecadeAxis, PixelCurve, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import attention as att
from workbench.i18n import ntr, tr
from workbench.memo import bounded_cache
from workbench.params import Choice, Param, ParamSet, Preset

MASKS = {"none": ("No mask", "不加掩码"), "padding": ("Padding (key [PAD] hidden)", "填充掩码（遮住 [PAD] 键）"),
         "causal": ("Causal (no looking ahead)", "因果掩码（不能看后面）"),
         "padding_causal": ("Padding + causal", "填充 + 因果"), "custom": ("Custom (click cells)", "自定义（点击格子）")}
MODES = {"self": ("Self-attention", "自注意力"), "cross": ("Cross-attention (decoder queries, encoder keys)",
                                                          "交叉注意力（解码器查询，编码器键）")}
D_KS = tuple(2 ** e for e in range(11))  # 1 .. 1024
LABEL_CHARS = 10  # longer tokens are shortened on the axes (whole in the hover read-out)


# ---- the custom mask as text: rows of 0/1 separated by "/" ------------------------------------------
def mask_text(mask: np.ndarray) -> str:
    """(n_q, n_k) boolean -> "110/111": one row of 0/1 per query, True (1) = may attend."""
    return "/".join("".join("1" if cell else "0" for cell in row) for row in np.asarray(mask, dtype=bool))


@lru_cache(maxsize=8)
def parse_mask(text: str) -> np.ndarray:
    """The inverse of :func:`mask_text` (read-only); ValueError saying what is wrong."""
    rows = text.strip().split("/")
    if any(set(row) - {"0", "1"} for row in rows):
        raise ValueError(tr("only 0 (hidden) and 1 (visible) in rows separated by /"))
    if len({len(row) for row in rows}) != 1 or not rows[0]:
        raise ValueError(tr("every row needs the same number of cells (one per key)"))
    mask = np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), -1) == ord("1")
    mask.setflags(write=False)
    return mask


def resized(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``mask`` cut or extended to ``shape``; new cells are visible."""
    out = np.ones(shape, dtype=bool)
    rows, cols = min(shape[0], mask.shape[0]), min(shape[1], mask.shape[1])
    out[:rows, :cols] = mask[:rows, :cols]
    return out


def _check_text(text: str) -> None:
    n = len(att.tokenize(text))
    if n == 0:
        raise ValueError(tr("no tokens: type at least one word or character"))
    if n > att.MAX_TOKENS:
        raise ValueError(tr("{n} tokens, at most {limit}").format(n=n, limit=att.MAX_TOKENS))


def token_lists(values: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(query tokens, key tokens): keys are the text padded to the pad length; queries are the
    same tokens for self-attention, the decoder text for cross-attention."""
    keys = att.pad(att.tokenize(values["text"]), values["pad_to"])
    queries = att.tokenize(values["query_text"]) if values["mode"] == "cross" else keys
    return queries, keys


def mask_of(values: Mapping[str, Any], queries: list[str], keys: list[str], kind: str | None = None) -> np.ndarray | None:
    """The (n_q, n_k) mask the values ask for (None: every key visible)."""
    kind = kind or values["mask"]
    n_q, n_k = len(queries), len(keys)
    if kind == "custom":
        return parse_mask(values["custom_mask"])
    return att.combine_masks(att.padding_mask(keys, n_q) if "padding" in kind else None,
                             att.causal_mask(n_q, n_k) if "causal" in kind else None)


DEFAULT_TEXT = "the cat sat on the mat because it was tired"
DEFAULT_PAD = 12

PARAMETERS = [
    Param("text", "text", DEFAULT_TEXT, "Sentence (keys)", "句子（键）",
          "Tokens: words split on spaces, each Chinese character its own token. In cross-attention these are "
          "the encoder's tokens (keys and values).",
          "分词：按空格切分单词，每个汉字单独成词。交叉注意力时这是编码器的词（键和值）。",
          check=_check_text, max_length=2000, group="Tokens"),
    Param("pad_to", "int", DEFAULT_PAD, "Pad to length", "填充到长度",
          "Append [PAD] tokens until the key sequence has this length (a batch pads every sentence to the longest).",
          "在键序列后补 [PAD] 直到这个长度（一个批次里的句子都要补齐到最长的那句）。",
          lo=1, hi=att.MAX_TOKENS, group="Tokens"),
    Param("mode", "choice", "self", "Attention", "注意力类型",
          "Self-attention: queries, keys and values from the same tokens. Cross-attention: queries from the "
          "decoder text below, keys and values from the sentence above.",
          "自注意力：Q、K、V 来自同一组词。交叉注意力：Q 来自下面的解码器文本，K 和 V 来自上面的句子。",
          choices=tuple(Choice(k, *v) for k, v in MODES.items()), group="Tokens"),
    Param("query_text", "text", "猫坐在垫子上", "Decoder text (queries)", "解码器文本（查询）",
          "Cross-attention only: the decoder's tokens, one query each.", "仅交叉注意力：解码器的词，每个词一个查询。",
          check=_check_text, max_length=2000, group="Tokens"),
    Param("mask", "choice", "padding", "Mask", "掩码",
          "Which keys each query may attend to. Masked scores become -inf, so softmax gives them weight 0.",
          "每个查询能看到哪些键。被遮住的分数置为 -inf，softmax 后权重为 0。",
          choices=tuple(Choice(k, *v) for k, v in MASKS.items()), group="Mask"),
    Param("custom_mask", "text", mask_text(np.ones((DEFAULT_PAD, DEFAULT_PAD), dtype=bool)), "Custom mask", "自定义掩码",
          "Rows of 0/1 separated by /, one row per query and one digit per key (1 = may attend). "
          "Click cells of the mask matrix to edit it.",
          "用 / 分隔的 0/1 行，每个查询一行、每个键一位（1 = 可以关注）。点击掩码矩阵的格子来编辑。",
          check=parse_mask, max_length=att.MAX_TOKENS * (att.MAX_TOKENS + 1), group="Mask"),
    Param("d_model", "int", 32, "d_model", "模型维度 d_model", "Width of the embeddings and of every projection.",
          "词向量及各投影矩阵的宽度。", lo=8, hi=512, step=8, group="Model"),
    Param("heads", "int", 4, "Heads", "头数 heads", "Number of heads; each works in d_k = d_model / heads dimensions.",
          "注意力头的个数；每个头的维度 d_k = d_model / heads。", lo=1, hi=16, group="Model"),
    Param("scale", "bool", True, "Divide scores by sqrt(d_k)", "分数除以 sqrt(d_k)",
          "Scaled dot-product attention; off: raw q·k, whose spread grows like sqrt(d_k).",
          "缩放点积注意力；关闭时用原始 q·k，其标准差随 sqrt(d_k) 增长。", group="Model"),
    Param("temperature", "float", 1.0, "Softmax temperature T", "softmax 温度 T",
          "Scores are divided by T before softmax: T < 1 sharpens the rows, T > 1 flattens them.",
          "softmax 之前分数除以 T：T < 1 让每行更尖锐，T > 1 让其更平坦。", lo=0.05, hi=20.0, log=True, group="Model"),
    Param("tie_qk", "bool", False, "Tie W_Q = W_K", "共享 W_Q = W_K",
          "Use one matrix for queries and keys: self-attention scores turn symmetric.",
          "查询和键用同一个矩阵：自注意力的分数矩阵变成对称的。", group="Model"),
    Param("positional", "bool", True, "Sinusoidal positional encoding", "正弦位置编码",
          "Add sin/cos position vectors to the embeddings (Vaswani et al.).", "把正弦/余弦位置向量加到词向量上（Vaswani 等）。",
          group="Model"),
    Param("embed_scale", "bool", True, "Scale embeddings by sqrt(d_model)", "词向量乘以 sqrt(d_model)",
          "The Transformer multiplies embeddings (initialised with std 1/sqrt(d_model)) by sqrt(d_model) so the "
          "positional encoding does not drown them.",
          "Transformer 把词向量（初始化标准差为 1/sqrt(d_model)）乘以 sqrt(d_model)，以免被位置编码淹没。", group="Model"),
    Param("seed", "int", 0, "Seed", "随机种子", "Seed of the embeddings and the projection matrices.",
          "词向量和投影矩阵的随机种子。", lo=0, hi=9999, group="Model"),
    Param("head", "int", 0, "Head shown large", "大图显示的头",
          "Which head the large heatmaps show; 0 = the average over heads. Or click a small heatmap.",
          "大热力图显示哪个头；0 = 各头平均。也可以点击下方的小热力图。", lo=0, hi=16, group="Model"),
]


def shape_of(values: Mapping[str, Any]) -> tuple[int, int]:
    queries, keys = token_lists(values)
    return len(queries), len(keys)


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """The shown head stays one that exists; the custom mask keeps the shape of the score matrix."""
    follow = {}
    if values["head"] > values["heads"]:
        follow["head"] = values["heads"]
    shape = shape_of(values)
    try:
        mask = parse_mask(values["custom_mask"])
    except ValueError:
        return follow
    if mask.shape != shape:
        follow["custom_mask"] = mask_text(resized(mask, shape))
    return follow


def _queries(n: int) -> str:
    return ntr("{n} query", "{n} queries", n).format(n=n)


def _keys(n: int) -> str:
    return ntr("{n} key", "{n} keys", n).format(n=n)


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    d_model, heads = values["d_model"], values["heads"]
    if d_model % heads:
        divisors = ", ".join(str(h) for h in range(1, 17) if d_model % h == 0)
        problems.append(tr("heads (heads): {heads} does not divide d_model = {d_model}; allowed: {divisors}").format(
            heads=heads, d_model=d_model, divisors=divisors))
    if values["head"] > heads:
        problems.append(ntr("head (head): {head} is more than the {heads} head", "head (head): {head} is more than the {heads} heads",
                            heads).format(head=values["head"], heads=heads))
    if values["mask"] == "custom":
        shape = shape_of(values)
        got = parse_mask(values["custom_mask"]).shape
        if got != shape:
            problems.append(tr("custom_mask (custom_mask): {rows} x {cols} cells, but the attention has {queries} and "
                               "{keys}").format(rows=got[0], cols=got[1], queries=_queries(shape[0]), keys=_keys(shape[1])))
    return problems


def _custom_with_row_hidden() -> str:
    mask = att.causal_mask(DEFAULT_PAD, DEFAULT_PAD)
    mask[4] = False
    return mask_text(mask)


PRESETS = [
    Preset("encoder_padding", "Encoder self-attention with padding", "编码器自注意力 + 填充掩码",
           {"text": "the cat sat on the mat", "pad_to": 9, "mask": "padding"}),
    Preset("decoder_causal", "Decoder causal self-attention", "解码器因果自注意力",
           {"text": "我喜欢深度学习", "pad_to": 9, "mask": "padding_causal"}),
    Preset("cross", "Cross-attention: decoder over encoder", "交叉注意力：解码器看编码器",
           {"mode": "cross", "text": "the cat sat on the mat", "query_text": "猫坐在垫子上", "pad_to": 8,
            "mask": "padding"}),
    Preset("unscaled", "No sqrt(d_k) at d_k = 512: rows saturate", "d_k = 512 且不缩放：每行饱和",
           {"d_model": 512, "heads": 1, "scale": False, "mask": "padding"}),
    Preset("tied_qk", "Tied W_Q = W_K: symmetric scores", "共享 W_Q = W_K：分数对称",
           {"tie_qk": True, "mask": "none"}),
    Preset("fully_masked", "A query that sees nothing: weights 0, not NaN", "看不到任何键的查询：权重为 0 而非 NaN",
           {"mask": "custom", "custom_mask": _custom_with_row_hidden()}),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)


@dataclass(frozen=True)
class AttentionScene:
    """What the panel draws. mask: (n_q, n_k), True = visible (all True without a mask);
    result: the multi-head attention; curves: softmax saturation against d_k with and without
    scaling (random q, k, temperature 1); here: the same statistics at the current d_k, scaling
    and temperature."""

    queries: tuple[str, ...]
    keys: tuple[str, ...]
    mask: np.ndarray
    result: att.MultiHeadResult
    d_k: int
    curves: dict[bool, att.Saturation]
    here: att.Saturation


@lru_cache(maxsize=16)
def _embedded(tokens: tuple[str, ...], d_model: int, seed: int, positional: bool, scale: bool) -> np.ndarray:
    """att.embed, remembered: a drag of the temperature or a mask edit re-embeds nothing."""
    x = att.embed(list(tokens), d_model, seed, positional=positional, scale=scale)
    x.setflags(write=False)
    return x


@bounded_cache(maxsize=16, max_bytes=32 * 2 ** 20)  # 8 MB each at d_model 512
def _weights(d_model: int, heads: int, seed: int, tie_qk: bool) -> att.MultiHeadWeights:
    return att.init_weights(d_model, heads, seed, tie_qk=tie_qk)


@lru_cache(maxsize=32)
def saturation_curves(n_keys: int) -> dict[bool, att.Saturation]:
    """Softmax saturation against d_k with (True) and without (False) the division by sqrt(d_k), at
    temperature 1: the reference the current setting (the ring, with its temperature) is compared to."""
    scores = att.random_scores(D_KS, n_keys)
    return {scaled: att.saturation(scores, D_KS, scaled=scaled) for scaled in (True, False)}


def nice_ceiling(x: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7 times a power of ten that is >= x (> 0): colour scales
    snap to these, so a drag changes the colour bar's labels only now and then."""
    power = 10.0 ** math.floor(math.log10(x))
    return next(m * power for m in (1, 1.5, 2, 3, 5, 7, 10) if m * power >= x * (1 - 1e-12))


def compute_scene(values: Mapping[str, Any]) -> AttentionScene:
    queries, keys = token_lists(values)
    mask = mask_of(values, queries, keys)
    d_model, heads, seed = values["d_model"], values["heads"], values["seed"]
    x_kv = _embedded(tuple(keys), d_model, seed, values["positional"], values["embed_scale"])
    x_q = x_kv if values["mode"] == "self" else _embedded(tuple(queries), d_model, seed, values["positional"],
                                                          values["embed_scale"])
    weights = _weights(d_model, heads, seed, values["tie_qk"])
    scale = None if values["scale"] else 1.0
    result = att.multi_head(x_q, x_kv, weights, mask=mask, scale=scale, temperature=values["temperature"])
    d_k = weights.d_k
    n_keys = max(len(keys), 2)
    curves = saturation_curves(n_keys)
    here = att.saturation(att.random_scores((d_k,), n_keys), (d_k,), scaled=values["scale"],
                          temperature=values["temperature"])
    full = np.ones((len(queries), len(keys)), dtype=bool) if mask is None else mask
    return AttentionScene(tuple(queries), tuple(keys), full, result, d_k, curves, here)


def set_bar_levels(bar: pg.ColorBarItem, levels: tuple[float, float]) -> None:
    """New levels only when they differ: setting them re-lays out the bar's axis, even unchanged."""
    if tuple(bar.levels()) != levels:
        bar.setLevels(levels)


def short(token: str) -> str:
    return token if len(token) <= LABEL_CHARS else token[: LABEL_CHARS - 1] + "…"


class TokenAxis(pg.AxisItem):
    """An axis labelled with tokens, one per unit cell (cell i spans [i, i+1]). Left: horizontal
    text; bottom: text turned upright so every label fits. Labels thin out (every k-th) when the
    cells are smaller than a line of text."""

    def __init__(self, orientation: str, style):
        super().__init__(orientation, showValues=False)
        self.style_ = style
        self.tokens: tuple[str, ...] = ()
        self.upright = False
        self.setStyle(tickFont=style.font(0.9), tickLength=4)
        self.setPen(pg.mkPen(style.foreground))
        self.setTextPen(pg.mkPen(style.foreground))
        self._metrics = QFontMetricsF(style.font(0.9))
        self._widths: dict[str, float] = {}  # text -> advance in the tick font
        self._size = 0  # the width (left) or height (bottom) set, px

    def set_tokens(self, tokens: tuple[str, ...]) -> None:
        if tokens == self.tokens:
            return
        self.tokens = tokens
        widest = max((self._width(short(t)) for t in set(tokens)), default=0)
        line = self._metrics.height()
        self.upright = self.orientation == "bottom" and widest > 1.3 * line  # single characters stay level
        # the size holds while the labels fit and fill half of it: a new sentence does not re-lay out every plot
        wanted = widest + 10 if self.orientation == "left" else (widest if self.upright else line) + 10
        size = int(held_range((0, self._size), (0, wanted))[1]) if self._size else int(wanted)
        if size != self._size:
            self._size = size
            self.setWidth(size) if self.orientation == "left" else self.setHeight(size)
        self.picture = None
        self.update()

    def _width(self, text: str) -> float:
        width = self._widths.get(text)
        if width is None:
            if len(self._widths) > 4000:
                self._widths.clear()
            width = self._widths[text] = self._metrics.horizontalAdvance(text)
        return width

    def paint(self, p, *args) -> None:
        """The axis line, a tick per token and the labels, drawn directly (AxisItem's general tick
        machinery costs ~0.5 ms per axis whenever the tokens or the view change)."""
        view = self.linkedView()
        if view is None or not self.tokens:
            return
        left = self.orientation == "left"
        rect = self.boundingRect()
        edge = rect.right() if left else rect.top()
        ends = []  # cell centres are evenly spaced: map the first two, step on from there
        for index in (0, 1):
            point = self.mapFromScene(view.mapViewToScene(QPointF(0.5, index + 0.5) if left else QPointF(index + 0.5, 0.5)))
            ends.append(point.y() if left else point.x())
        positions = [ends[0] + index * (ends[1] - ends[0]) for index in range(len(self.tokens))]
        if left:
            ticks = [QLineF(edge - 4, at, edge, at) for at in positions]
            ticks.append(QLineF(edge, min(positions) - 100, edge, max(positions) + 100))
        else:
            ticks = [QLineF(at, edge, at, edge + 4) for at in positions]
        p.setPen(self.pen())
        p.drawLines(ticks)
        p.setClipRect(rect)
        line = self._metrics.height()
        cell = abs(ends[1] - ends[0]) if len(positions) > 1 else line
        every = max(1, math.ceil((line if left or self.upright else 1.3 * line) / max(cell, 1e-9)))
        p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        look = (self.style["tickFont"].key(), self.textPen().color().rgba(), p.device().devicePixelRatioF())
        for index in range(0, len(self.tokens), every):
            text, at = short(self.tokens[index]), positions[index]
            if self.upright and self._exportOpts is not False:  # SVG / PDF: the text, not a picture of it
                label = self._static_label(text, look[0])  # laid out as the level labels are
                width, height = math.ceil(self._width(text)) + 2, math.ceil(self._metrics.height())
                p.save()  # placed as _upright_label's image is: right-aligned, then turned
                p.translate(at - height / 2, edge + 6 + width)
                p.rotate(-90)
                p.drawStaticText(QPointF(width - label.size().width(), (height - label.size().height()) / 2), label)
                p.restore()
                continue
            if self.upright:  # reads upwards, ending at the axis
                image = self._upright_label(text, look)
                p.drawImage(QPointF(at - image.deviceIndependentSize().width() / 2, edge + 6), image)
                continue
            label = self._static_label(text, look[0])
            size = label.size()
            if left:
                p.drawStaticText(QPointF(edge - 6 - size.width(), at - size.height() / 2), label)
            else:
                p.drawStaticText(QPointF(at - size.width() / 2, edge + 5), label)

    _STATIC: dict[tuple, QStaticText] = {}  # laid-out labels: drawText would shape the text at every paint

    def _static_label(self, text: str, font_key: str) -> QStaticText:
        key = (text, font_key)
        label = self._STATIC.get(key)
        if label is None:
            if len(self._STATIC) > 4000:
                self._STATIC.clear()
            label = QStaticText(text)
            label.setTextFormat(Qt.PlainText)
            label.prepare(QTransform(), self.style["tickFont"])
            self._STATIC[key] = label
        return label

    _UPRIGHT: dict[tuple, QImage] = {}  # turned labels, drawn once: text along a turned baseline is slow to draw

    def _upright_label(self, text: str, look: tuple) -> QImage:
        """``text`` turned to read upwards; look: (font key, text colour, device pixel ratio)."""
        font, ratio = self.style["tickFont"], look[2]
        key = (text, *look)
        image = self._UPRIGHT.get(key)
        if image is None:
            if len(self._UPRIGHT) > 4000:
                self._UPRIGHT.clear()
            metrics = QFontMetricsF(font)
            width, height = math.ceil(metrics.horizontalAdvance(text)) + 2, math.ceil(metrics.height())
            flat = QImage(round(width * ratio), round(height * ratio), QImage.Format_ARGB32_Premultiplied)
            flat.setDevicePixelRatio(ratio)
            flat.fill(Qt.transparent)
            painter = QPainter(flat)
            painter.setRenderHint(QPainter.TextAntialiasing)
            painter.setFont(font)
            painter.setPen(self.textPen())
            painter.drawText(QRectF(0, 0, width, height), int(Qt.AlignRight | Qt.AlignVCenter), text)
            painter.end()
            image = flat.transformed(QTransform().rotate(-90))
            image.setDevicePixelRatio(ratio)
            self._UPRIGHT[key] = image
        return image


class _ClickViewBox(pg.ViewBox):
    """A fixed view box that reports left clicks (in data coordinates)."""

    def __init__(self, on_click=None):
        super().__init__(enableMouse=False, invertY=True, lockAspect=False, enableMenu=False)
        self._on_click = on_click
        self.setMenuEnabled(False)

    def mouseClickEvent(self, event):
        if self._on_click is not None and event.button() == Qt.LeftButton:
            event.accept()
            self._on_click(self.mapSceneToView(event.scenePos()))
        else:
            event.ignore()

    def mouseDragEvent(self, event, axis=None):
        event.ignore()

    def wheelEvent(self, event, axis=None):
        event.ignore()


class Heatmap:
    """An image of a (rows, cols) matrix in a view box, hatched where a cell is masked (NaN)."""

    def __init__(self, view: pg.ViewBox, style, cmap: pg.ColorMap):
        self.view = view
        self.image = CellImage(axisOrder="row-major")
        self.lut = cmap.getLookupTable(nPts=256, alpha=True)  # (256, 4) uint8
        self.hatch = QGraphicsRectItem(0, 0, 1, 1)
        brush = QBrush(QColor(style.muted), Qt.BDiagPattern)
        self.hatch.setBrush(brush)
        self.hatch.setPen(QPen(Qt.NoPen))
        self.hatch.setZValue(-10)
        view.addItem(self.hatch, ignoreBounds=True)
        view.addItem(self.image, ignoreBounds=True)
        self.shape: tuple[int, int] | None = None
        self.drawn: np.ndarray | None = None
        self.levels: tuple[float, float] | None = None

    def show(self, values: np.ndarray, levels: tuple[float, float]) -> None:
        """Draw ``values`` (rows, cols), NaN = masked, coloured from levels[0] to levels[1]."""
        if (self.drawn is not None and levels == self.levels and self.drawn.shape == values.shape
                and np.array_equal(self.drawn, values, equal_nan=True)):
            return  # unchanged: no repaint
        self.drawn, self.levels = values, levels
        rows, cols = values.shape
        self.image.setImage(self.colours(values, levels), autoLevels=False)
        if self.shape != (rows, cols):
            self.image.setRect(QRectF(0, 0, cols, rows))
            self.hatch.setRect(QRectF(0, 0, cols, rows))
            self.view.setRange(xRange=(0, cols), yRange=(0, rows), padding=0)
            self.view.prepareForPaint()  # the new view transform now: applied during the paint, it asks for a second one
            self.shape = (rows, cols)

    def colours(self, values: np.ndarray, levels: tuple[float, float]) -> np.ndarray:
        """RGBA, transparent where masked: the hatching behind shows through."""
        return colour_map(values, levels, self.lut, (0, 0, 0, 0))

    def cell_at(self, point: QPointF) -> tuple[int, int] | None:
        if self.shape is None:
            return None
        row, col = math.floor(point.y()), math.floor(point.x())
        if 0 <= row < self.shape[0] and 0 <= col < self.shape[1]:
            return row, col
        return None


def colour_map(values: np.ndarray, levels: tuple[float, float], lut: np.ndarray, masked_rgba) -> np.ndarray:
    """(rows, cols, 4) uint8: ``values`` through the (256, 4) ``lut`` from levels[0] to levels[1];
    NaN cells (masked) get ``masked_rgba``. Mapped here, once, not by the image item at paint time."""
    lo, hi = levels
    masked = np.isnan(values)
    t = (values - lo) * (255.0 / (hi - lo)) + 0.5
    np.clip(t, 0, 255.5, out=t, where=~masked)
    index = np.where(masked, 0, t).astype(np.uint8)  # truncating t + 0.5: rounding to the nearest level
    rgba = lut[index]
    rgba[masked] = masked_rgba
    return rgba


class HeadMosaic:
    """Every head's weights and their mean as tiles of one image (one item to paint, not one per
    head), each tile named above it, a frame around the tile shown large; masked cells are grey."""

    PER_ROW = 9

    def __init__(self, view: pg.ViewBox, style, cmap: pg.ColorMap, most: int):
        """``most``: the largest number of tiles; their labels are made once, here."""
        self.view, self.style_ = view, style
        self.lut = cmap.getLookupTable(nPts=256, alpha=True)
        grey = QColor(style.muted)
        self.masked_rgba = (grey.red(), grey.green(), grey.blue(), 150)
        self.image = CellImage(axisOrder="row-major")
        view.addItem(self.image, ignoreBounds=True)
        self.frame = QGraphicsRectItem()
        self.frame.setPen(pg.mkPen(style.foreground, width=2.5 if style.presentation else 1.5))
        view.addItem(self.frame, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        for _ in range(most):
            label = pg.TextItem(anchor=(0.5, 1.0))
            label.setFont(style.font(0.85))
            label.setVisible(False)
            view.addItem(label, ignoreBounds=True)
            self.labels.append(label)
        self.tiles: list[np.ndarray] = []  # what each tile shows, (n_q, n_k), NaN = masked
        self.geometry: tuple | None = None  # (count, n_q, n_k, per_row, gap, headroom)
        self.selected = -1

    def _origin(self, index: int) -> tuple[float, float]:
        _, n_q, n_k, per_row, gap, headroom = self.geometry
        row, col = divmod(index, per_row)
        return col * (n_k + gap), row * (n_q + headroom) + headroom

    def show(self, matrices: list[np.ndarray], names: list[str], selected: int) -> None:
        count, (n_q, n_k) = len(matrices), matrices[0].shape
        per_row = min(count, self.PER_ROW)
        geometry = (count, n_q, n_k, per_row, max(1, round(n_k / 5)), max(1, round(n_q / 3)))
        if geometry != self.geometry:
            self.geometry = geometry
            self._lay_out(names)
            self.selected = -1
        changed = len(self.tiles) != count or not all(
            np.array_equal(a, b, equal_nan=True) for a, b in zip(self.tiles, matrices))
        if changed:
            self.tiles = matrices
            self._paint_tiles()
        if selected != self.selected:
            x, y = self._origin(selected)
            self.frame.setRect(QRectF(x - 0.5, y - 0.5, n_k + 1, n_q + 1))
            for index, label in enumerate(self.labels[:count]):
                label.setColor(self.style_.foreground if index == selected else self.style_.muted)
            self.selected = selected

    def _lay_out(self, names: list[str]) -> None:
        count, n_q, n_k, per_row, gap, headroom = self.geometry
        rows = -(-count // per_row)
        for index, label in enumerate(self.labels):
            label.setVisible(index < count)
            if index < count:
                x, y = self._origin(index)
                if label.toPlainText() != names[index]:
                    label.setText(names[index])
                label.setPos(x + n_k / 2, y - headroom * 0.1)
        width, height = per_row * n_k + (per_row - 1) * gap, rows * (n_q + headroom)
        self.extent = (width, height)
        self.view.setRange(xRange=(0, width), yRange=(0, height), padding=0.02)
        self.view.prepareForPaint()

    def _paint_tiles(self) -> None:
        count, n_q, n_k, per_row, gap, headroom = self.geometry
        width, height = self.extent
        canvas = np.zeros((height, width, 4), dtype=np.uint8)  # transparent between the tiles
        for index, matrix in enumerate(self.tiles):
            x, y = self._origin(index)
            canvas[y: y + n_q, x: x + n_k] = colour_map(matrix, (0.0, 1.0), self.lut, self.masked_rgba)
        self.image.setImage(canvas, autoLevels=False)
        self.image.setRect(QRectF(0, 0, width, height))

    def tile_at(self, point: QPointF) -> int | None:
        """The index of the tile under ``point`` (view coordinates), or None."""
        if self.geometry is None:
            return None
        count, n_q, n_k, per_row, gap, headroom = self.geometry
        for index in range(count):
            x, y = self._origin(index)
            if x <= point.x() < x + n_k and y - headroom <= point.y() < y + n_q:
                return index
        return None


class AttentionPanel(Panel):
    _levels: tuple | None = None  # the scores' colour levels shown
    NAME = "attention"
    TITLE_EN = "Attention"
    TITLE_ZH = "注意力"
    PARAMS = PARAMS
    OPEN_GROUPS = ("Tokens", "Mask", "Model")
    BENCH_SWEEPS = {
        "temperature": (0.2, 5.0),
        "seed": (0, 59),
        "pad_to": (10, 24),
        "temperature (128 tokens, 8 heads)": {"param": "temperature", "sweep": (0.2, 5.0),
                                             "base": {"text": " ".join(f"w{i}" for i in range(120)), "pad_to": 128,
                                                      "d_model": 256, "heads": 8}},
    }
    BENCH_BUDGETS_MS = {"temperature": 8.0, "seed": 8.0, "pad_to": 8.0}  # the default scene

    compute = staticmethod(compute_scene)

    def __init__(self, style, values=None, parent=None):
        super().__init__(style, values, parent)
        self.controls["custom_mask"].hide()  # edited by clicking the mask matrix

    # ---- figure ---------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        box = QWidget()
        column = QVBoxLayout(box)
        column.setContentsMargins(4, 4, 4, 0)
        column.setSpacing(2)
        self.formula = QLabel()
        self.formula.setObjectName("formula")
        self.formula.setFont(st.font(1.05))
        self.readout = QLabel(tr("Hatched cells are masked: score −∞, weight 0. Hover a cell to read its query, key, "
                                 "score and weight."))
        self.readout.setObjectName("readout")
        self.readout.setStyleSheet(f"color: {st.muted};")
        self.warning = QLabel()
        self.warning.setObjectName("warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(f"color: {st.error};")
        for label in (self.formula, self.readout, self.warning):
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # long text never widens the figure
        column.addWidget(OneLine(self.formula))  # new with every pad length and every hovered cell
        column.addWidget(OneLine(self.readout))
        column.addWidget(OneLine(self.warning, lines=2))  # room kept: a warning that comes and goes moves no plot
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(st.background)
        self.canvas.ci.setSpacing(6)
        self.canvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        column.addWidget(self.canvas, 1)
        ci = self.canvas.ci
        scores_cmap = pg.colormap.get("CET-D1A")
        weights_cmap = pg.colormap.get("viridis")
        self.plots: dict[str, pg.PlotItem] = {}
        self.maps: dict[str, Heatmap] = {}
        for col, key, cmap in ((0, "scores", scores_cmap), (2, "weights", weights_cmap), (4, "mask", None)):
            view = _ClickViewBox(self._mask_clicked if key == "mask" else None)
            plot = ci.addPlot(row=0, col=col, viewBox=view,
                              axisItems={"left": TokenAxis("left", st), "bottom": TokenAxis("bottom", st)})
            plot.setTitle(" ", color=st.foreground, size=f"{st.point_size * 1.05:.0f}pt", bold=True)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            never_widens(plot.titleLabel)
            for side in ("left", "bottom", "right", "top"):  # token and hidden axes: no unit prefix to find
                plot.getAxis(side).enableAutoSIPrefix(False)
            self.plots[key] = plot
            self.maps[key] = Heatmap(view, st, cmap or pg.ColorMap([0, 1], [st.muted, st.series[0]]))
        self.plots["mask"].setToolTip(tr("Click a cell to hide or show that key for that query"))
        for key, cmap in (("scores", scores_cmap), ("weights", weights_cmap)):
            bar = pg.ColorBarItem(colorMap=cmap, interactive=False, width=12, values=(0, 1))
            # not linked to the image (setImageItem would re-colour it): the images arrive as RGBA
            bar.axis.setTextPen(pg.mkPen(st.foreground))
            bar.axis.setStyle(tickFont=st.font(0.85))
            bar.axis.setWidth(int(st.point_size * 4))
            ci.addItem(bar, row=0, col=col_of_bar(key))
            setattr(self, f"{key}_bar", bar)
        heads_view = _ClickViewBox(self._head_clicked)
        heads_view.setAspectLocked(True)
        heads_view.setToolTip(tr("Click to show this head in the large heatmaps"))
        ci.addItem(heads_view, row=1, col=0, colspan=5)
        self.mosaic = HeadMosaic(heads_view, st, weights_cmap, most=int(PARAMS["heads"].hi) + 1)  # every head and their mean
        bottom = ci.addLayout(row=2, col=0, colspan=5)
        self.std_plot = bottom.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left"), "bottom": DecadeAxis("bottom")},
                                        enableMenu=False)
        st.style_plot(self.std_plot, tr("Score spread"), tr("std of the logits"), "d_k")
        self.sat_plot = bottom.addPlot(row=0, col=1, axisItems={"bottom": DecadeAxis("bottom")}, enableMenu=False)
        st.style_plot(self.sat_plot, tr("Saturation at T = 1"), "", "d_k")
        for plot in (self.std_plot, self.sat_plot):
            never_widens(plot.titleLabel)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.getAxis("left").setWidth(int(st.point_size * 4.5))
        self.std_plot.setRange(xRange=(0, math.log10(D_KS[-1])), yRange=(-1.5, 2.0), padding=0.02)
        self.sat_plot.setRange(xRange=(0, math.log10(D_KS[-1])), yRange=(0, 1), padding=0.02)
        legend_style = {"labelTextColor": st.foreground, "labelTextSize": f"{st.point_size * 0.85:.0f}pt"}
        self.sat_legend = pg.LegendItem(**legend_style)  # beside the plots: their curves fill every corner
        bottom.addItem(self.sat_legend, row=0, col=2)
        dashed = Qt.DashLine
        # Plain curve items (PlotDataItem's extra processing costs ~0.15 ms per setData), kept out of auto-range.
        self.std_curves = {True: PixelCurve(pen=st.pen(st.series[0])),
                           False: PixelCurve(pen=st.pen(st.series[0], style=dashed))}
        for curve in self.std_curves.values():
            self.std_plot.addItem(curve, ignoreBounds=True)
        metrics = (("max_weight", tr("largest weight")), ("entropy", tr("entropy / log n")),
                   ("jacobian_norm", tr("Jacobian norm")))
        self.sat_curves: dict[tuple[str, bool], pg.PlotCurveItem] = {}
        for index, (metric, label) in enumerate(metrics):
            color = st.series[index + 2]
            for scaled in (True, False):
                curve = PixelCurve(pen=st.pen(color) if scaled else st.pen(color, style=dashed))
                self.sat_plot.addItem(curve, ignoreBounds=True)
                self.sat_curves[metric, scaled] = curve
            self.sat_legend.addItem(self.sat_curves[metric, True], label)
        self.metric_brushes = [pg.mkBrush(st.series[index + 2]) for index in range(len(metrics))]
        self.sat_legend.addItem(pg.PlotDataItem(pen=st.pen(st.muted)), tr("solid: ÷ sqrt(d_k)"))
        self.sat_legend.addItem(pg.PlotDataItem(pen=st.pen(st.muted, style=dashed)), tr("dashed: raw q·k"))
        self.here_lines = [pg.InfiniteLine(angle=90, pen=pg.mkPen(st.foreground, width=1, style=Qt.DotLine))
                           for _ in range(2)]
        self.std_plot.addItem(self.here_lines[0], ignoreBounds=True)
        self.sat_plot.addItem(self.here_lines[1], ignoreBounds=True)
        self.here_std = pg.ScatterPlotItem(size=st.marker_size * 1.3, pen=pg.mkPen(st.foreground, width=1.5),
                                           brush=pg.mkBrush(st.background))
        self.std_plot.addItem(self.here_std, ignoreBounds=True)
        self.here_sat = pg.ScatterPlotItem(size=st.marker_size * 1.3, pen=pg.mkPen(st.foreground, width=1.5))
        self.sat_plot.addItem(self.here_sat, ignoreBounds=True)
        self.sat_legend.addItem(self.here_std, tr("ring: current setting"))
        for col, stretch in enumerate((5, 0, 5, 0, 3)):
            ci.layout.setColumnStretchFactor(col, stretch)
        for row, stretch in enumerate((5, 2, 3)):
            ci.layout.setRowStretchFactor(row, stretch)
        for plot in (self.std_plot, self.sat_plot):
            for side in ("left", "bottom"):
                plot.getAxis(side).setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        static = [self.std_plot.titleLabel, self.sat_plot.titleLabel, self.sat_legend,
                  *(plot.titleLabel for plot in self.plots.values())]
        for item in static:  # they change only with the language: repainting them is a blit
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.canvas.scene().sigMouseMoved.connect(self._hovered)
        self._drawn_curves: tuple | None = None
        self._drawn_here: tuple | None = None
        return box

    def _head_clicked(self, point: QPointF) -> None:
        index = self.mosaic.tile_at(point)
        if index is not None:
            self.set_values({"head": index})

    # ---- drawing ----------------------------------------------------------------------------------
    def draw(self, scene: AttentionScene) -> Iterator[None]:
        """In steps (see Panel): the score and weight maps, the mask and the token axes, the heads, the rest."""
        r, v = scene.result, self.values
        heads = r.weights.shape[0]
        head = min(v["head"], heads)
        hidden = ~scene.mask
        scores = r.scores.mean(axis=0) if head == 0 else r.scores[head - 1]
        weights = r.mean_weights if head == 0 else r.weights[head - 1]
        shown_scores = np.where(hidden, np.nan, scores)
        finite = np.abs(shown_scores[~hidden]) if np.any(~hidden) else np.zeros(1)
        bound = nice_ceiling(float(finite.max())) if finite.size and finite.max() > 0 else 1.0
        self._levels = held_range(self._levels, (-bound, bound))  # the colour bar holds while the scores fit
        bound = self._levels[1]
        self.maps["scores"].show(shown_scores, (-bound, bound))
        set_bar_levels(self.scores_bar, (-bound, bound))
        self.maps["weights"].show(np.where(hidden, np.nan, weights), (0.0, 1.0))
        yield
        self.maps["mask"].show(np.where(hidden, np.nan, 1.0), (0.0, 1.0))
        for key, plot in self.plots.items():
            plot.getAxis("left").set_tokens(scene.queries)
            plot.getAxis("bottom").set_tokens(scene.keys)
        which = tr("mean") if head == 0 else tr("head {h}").format(h=head)
        titles = {"scores": tr("Scores: {which}").format(which=which),
                  "weights": tr("Weights: {which}").format(which=which),
                  "mask": tr("Mask")}
        for key, title in titles.items():
            if self.plots[key].titleLabel.text != title:
                self.plots[key].setTitle(title)
        yield
        names = [tr("mean")] + [tr("head {h}").format(h=h) for h in range(1, heads + 1)]
        self.mosaic.show([np.where(hidden, np.nan, m) for m in (r.mean_weights, *r.weights)], names, head)
        yield
        self._draw_saturation(scene)
        self._show_text(scene)
        self.refresh_notes_later()  # the formula with numbers follows once a drag settles

    def _draw_saturation(self, scene: AttentionScene) -> None:
        key = len(scene.keys)
        if key != self._drawn_curves:  # the curves depend on the number of keys only
            x = np.log10(np.asarray(D_KS, dtype=float))
            for scaled, curves in scene.curves.items():
                self.std_curves[scaled].setData(x, np.log10(curves.score_std))
                for metric in ("max_weight", "entropy", "jacobian_norm"):
                    self.sat_curves[metric, scaled].setData(x, getattr(curves, metric))
            self._drawn_curves = key
        lx = math.log10(scene.d_k)
        h = scene.here
        here = (lx, float(h.score_std[0]), float(h.max_weight[0]), float(h.entropy[0]), float(h.jacobian_norm[0]))
        if here == self._drawn_here:
            return  # the markers sit over every curve: re-setting them repaints both plots
        self._drawn_here = here
        for line in self.here_lines:
            line.setValue(lx)
        self.here_std.setData([lx], [math.log10(here[1])])
        self.here_sat.setData([lx] * 3, list(here[2:]), brush=self.metric_brushes)

    def _show_text(self, scene: AttentionScene) -> None:
        v = self.values
        heads, d_k = scene.result.weights.shape[0], scene.d_k
        scale = f"/ √{d_k}" if v["scale"] else ""
        temp = "" if v["temperature"] == 1 else " / T"  # T's value is on its control: a drag of T re-lays out nothing
        pads = sum(t == att.PAD for t in scene.keys)
        text = (f"softmax(Q·Kᵀ {scale}{temp}) · V    d_model {v['d_model']} = {heads} × d_k {d_k}    "
                + tr("{queries} × {keys} ({pads} [PAD])").format(queries=_queries(len(scene.queries)),
                                                                 keys=_keys(len(scene.keys)), pads=pads))
        if self.formula.text() != text:
            self.formula.setText(text)
        rows = scene.result.fully_masked_rows
        if rows:
            names = ", ".join(f"{i} “{scene.queries[i]}”" for i in rows[:6]) + (" …" if len(rows) > 6 else "")
            warning = tr("Query {rows} sees no key: its weights and output are 0 here (softmax over only -inf "
                         "gives NaN in torch.softmax)").format(rows=names)
        else:
            warning = ""
        if self.warning.text() != warning:
            self.warning.setText(warning)
            if warning:
                self.message.emit(warning, False)

    # ---- interaction --------------------------------------------------------------------------------
    def _hovered(self, pos) -> None:
        scene = self.result
        if scene is None:
            return
        for key in ("scores", "weights", "mask"):
            view = self.plots[key].vb
            if not view.sceneBoundingRect().contains(pos):
                continue
            cell = self.maps[key].cell_at(view.mapSceneToView(pos))
            if cell is None:
                return
            self.readout.setText(self.cell_text(*cell))
            return

    def cell_text(self, row: int, col: int) -> str:
        """The read-out for one cell of the large heatmaps: query, key, score and weight."""
        scene, r = self.result, self.result.result
        head = min(self.values["head"], r.weights.shape[0])
        scores = r.scores.mean(axis=0) if head == 0 else r.scores[head - 1]
        weights = r.mean_weights if head == 0 else r.weights[head - 1]
        visible = scene.mask[row, col]
        score = f"{scores[row, col]:.4g}" if visible else tr("−∞ (masked)")
        return tr("query {i} “{q}” → key {j} “{k}”: score {score}, weight {weight}").format(
            i=row, q=scene.queries[row], j=col, k=scene.keys[col], score=score, weight=f"{weights[row, col]:.4f}")

    def _mask_clicked(self, point: QPointF) -> None:
        """Toggle one cell; from a padding or causal mask this starts a custom mask from it."""
        if self.result is None:
            return
        cell = self.maps["mask"].cell_at(point)
        if cell is None:
            return
        mask = self.result.mask.copy()
        mask[cell] = not mask[cell]
        self.set_values({"mask": "custom", "custom_mask": mask_text(mask)})

    def _control_edited(self, name: str, raw: Any) -> None:
        if name == "mask" and raw == "custom" and self.result is not None:  # start from the mask on screen
            self.set_values({"mask": "custom", "custom_mask": mask_text(self.result.mask)})
            return
        super()._control_edited(name, raw)

    def values_changed(self, names: list[str]) -> None:
        self.controls["query_text"].setEnabled(self.values["mode"] == "cross")
        with QSignalBlocker(self.controls["head"].slider):  # the slider reaches the last head, no further
            self.controls["head"].slider.setMaximum(self.values["heads"])

    def notes_html(self) -> str:
        """The notes, with the formula filled in with the current numbers."""
        html = super().notes_html()
        v = self.values
        try:
            n_q, n_k = shape_of(v)
        except ValueError:
            n_q = n_k = 0
        d_k = v["d_model"] // v["heads"]
        numbers = {"d_model": v["d_model"], "heads": v["heads"], "d_k": d_k, "sqrt_d_k": f"{math.sqrt(d_k):.3g}",
                   "T": f"{v['temperature']:.3g}", "n_q": n_q, "n_k": n_k,
                   "divide": f"√{d_k} = {math.sqrt(d_k):.3g}" if v["scale"] else "1"}
        for name, value in numbers.items():
            html = html.replace("{" + name + "}", str(value))
        return html

    def caption(self) -> str:
        v, p = self.values, self.PARAMS
        names = ["mode", "text"] + (["query_text"] if v["mode"] == "cross" else []) + [
            "pad_to", "mask", "d_model", "heads", "scale", "temperature", "tie_qk", "positional", "embed_scale", "seed",
            "head"]
        return f"{self.title()}: {p.caption(v, names)}"


def col_of_bar(key: str) -> int:
    """Grid columns: scores 0, its colour bar 1, weights 2, its colour bar 3, mask 4."""
    return {"scores": 1, "weights": 3}[key]
