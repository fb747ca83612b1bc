"""Transformer panel: positional encodings (sinusoidal, learned, RoPE, ALiBi), the block (pre- vs
post-norm, FFN variants, grouped-query attention) and its gradients through depth, the kinds of
attention and their masks, and decoding token by token with a KV cache.

One page at a time (the ``view`` parameter); each page computes only what it draws, remembered per
page, so a slider on one page never recomputes another's."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsRectItem, QGraphicsScene, QHBoxLayout, QLabel, QPushButton,
                               QStackedWidget, QVBoxLayout, QWidget)

from widgets.attention import Heatmap, HeadMosaic, nice_ceiling, set_bar_levels
from widgets.controls import OneLine
from widgets.items import DecadeAxis, PixelCurve, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import attention as att
from workbench.compute import transformer as tf
from workbench.i18n import pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

VIEWS = {"positions": ("Positions: sinusoidal and learned", "位置编码：正弦与可学习"),
         "rope": ("RoPE and ALiBi", "RoPE 与 ALiBi"),
         "block": ("The block and depth", "Transformer 块与深度"),
         "kinds": ("Attention kinds and masks", "注意力类型与掩码"),
         "decoding": ("Decoding with a KV cache", "KV 缓存逐词解码")}
LAYOUTS = {"half": ("Half (GPT-NeoX, Llama: i with i + d/2)", "前后两半（GPT-NeoX、Llama：i 与 i + d/2）"),
           "interleaved": ("Interleaved (RoFormer, GPT-J: 2i with 2i + 1)", "相邻交错（RoFormer、GPT-J：2i 与 2i + 1）")}
FFNS = {"relu": ("ReLU (original)", "ReLU（原版）"), "gelu": ("GELU (BERT, GPT-2)", "GELU（BERT、GPT-2）"),
        "swiglu": ("SwiGLU (gated, Llama)", "SwiGLU（门控，Llama）"), "geglu": ("GeGLU (gated)", "GeGLU（门控）")}
CACHE_FORMATS = {"fp32": ("FP32 (4 bytes)", "FP32（4 字节）", 4), "fp16": ("FP16 / BF16 (2 bytes)", "FP16 / BF16（2 字节）", 2),
                 "fp8": ("FP8 (1 byte)", "FP8（1 字节）", 1)}
MAX_ALIBI_TILES = 16
WARMUP_STEPS = 100_000  # training steps the warm-up plot spans
MAX_STACK_PARAMETERS = 1 << 25  # weights of the stack the block and decoding pages build (256 MB in float64)  # heads drawn in the ALiBi mosaic; the rest are counted


def _choices(names: Mapping[str, tuple]) -> tuple[Choice, ...]:
    return tuple(Choice(key, label[0], label[1]) for key, label in names.items())


PARAMETERS = [
    Param("view", "choice", "positions", "Page", "页面", "Which part of the Transformer the figure shows.",
          "图中显示 Transformer 的哪一部分。", choices=_choices(VIEWS), group="View"),
    Param("d_model", "int", 64, "d_model", "模型维度 d_model",
          "Width of the embeddings, the encodings and the block (even: sin/cos and RoPE work in pairs).",
          "词向量、位置编码和 Transformer 块的宽度（须为偶数：sin/cos 和 RoPE 两两成对）。",
          lo=4, hi=512, step=2, group="Model"),
    Param("heads", "int", 4, "Heads", "头数 heads", "Attention heads; each works in d_k = d_model / heads dimensions.",
          "注意力头数；每个头的维度 d_k = d_model / heads。", lo=1, hi=16, group="Model"),
    Param("kv_heads", "int", 4, "KV heads", "KV 头数",
          "Key/value heads: equal to Heads is multi-head attention, fewer is grouped-query attention (GQA), "
          "1 is multi-query attention (MQA). Must divide Heads.",
          "键/值头数：等于头数是多头注意力，更少是分组查询注意力（GQA），1 是多查询注意力（MQA）。必须整除头数。",
          lo=1, hi=16, group="Model"),
    Param("tokens", "int", 16, "Tokens", "词数（序列长度）", "Sequence length T of the maps, the block and the decoding.",
          "热力图、Transformer 块和解码所用的序列长度 T。", lo=2, hi=64, group="Model"),
    Param("base", "float", 10000.0, "Base", "底数 base",
          "Base of the wavelengths: pair i turns at the angle p / base^(2i/d) per position (10000 in the paper; "
          "Llama 3 uses 500000 for long contexts).",
          "波长的底数：第 i 对维度在位置 p 处转过角度 p / base^(2i/d)（论文取 10000；Llama 3 为长上下文取 500000）。",
          lo=10.0, hi=1e6, log=True, group="Model"),
    Param("seed", "int", 0, "Seed", "随机种子", "Seed of the embeddings, queries, keys and weights.",
          "词向量、查询、键和权重的随机种子。", lo=0, hi=9999, group="Model"),
    Param("n_positions", "int", 128, "Positions shown", "显示的位置数",
          "Rows of the encoding heatmap and the offsets of the similarity curve.", "位置编码热力图的行数，以及相似度曲线的最大偏移。",
          lo=8, hi=1024, group="Positions"),
    Param("learned_max", "int", 64, "Learned table length", "可学习位置表长度",
          "A learned position table has this many rows (BERT and GPT-2: 512, 1024): positions beyond it have no vector.",
          "可学习的位置表只有这么多行（BERT、GPT-2 分别为 512、1024）：超出的位置没有向量。",
          lo=4, hi=1024, group="Positions"),
    Param("layout", "choice", "half", "RoPE pairing", "RoPE 配对方式",
          "Which dimensions RoPE rotates together. The two differ by a fixed permutation of the dimensions: the same "
          "vectors score differently, and a model trained with one needs its weights permuted to run with the other.",
          "RoPE 把哪些维度成对旋转。两种方式只差一个固定的维度置换：同样的向量得到的分数不同，用一种方式训练的模型要把权重重新排列才能用另一种方式运行。", choices=_choices(LAYOUTS), group="RoPE and ALiBi"),
    Param("rope_pair", "int", 0, "Pair drawn", "画出的维度对",
          "Which pair of dimensions the arrows show: pair 0 turns fastest (1 radian per position), the last slowest.",
          "箭头显示哪一对维度：第 0 对转得最快（每个位置 1 弧度），最后一对最慢。", lo=0, hi=255, group="RoPE and ALiBi"),
    Param("shift", "int", 0, "Shift both tokens", "同时平移两个词",
          "Moves the key and the query by the same number of positions: the arrows turn, their angle and q·k stay.",
          "把键和查询平移同样多的位置：箭头旋转，但夹角和 q·k 不变。", lo=0, hi=512, group="RoPE and ALiBi"),
    Param("gap", "int", 3, "Query − key offset", "查询与键的距离",
          "How many positions the query comes after the key.", "查询比键晚多少个位置。", lo=0, hi=64, group="RoPE and ALiBi"),
    Param("alibi_heads", "int", 8, "ALiBi heads", "ALiBi 头数",
          "Heads of the ALiBi bias; head h gets slope 2^(-8h/n) (for 8 heads 1/2, 1/4, …, 1/256).",
          "ALiBi 偏置的头数；第 h 个头的斜率为 2^(-8h/n)（8 个头时为 1/2、1/4、…、1/256）。",
          lo=1, hi=64, group="RoPE and ALiBi"),
    Param("activation", "choice", "relu", "FFN", "前馈网络 FFN",
          "The feed-forward network: two layers with ReLU or GELU, or a gated one (three matrices, no biases).",
          "前馈网络：两层，ReLU 或 GELU 激活；或门控版本（三个矩阵，无偏置）。", choices=_choices(FFNS), group="Block"),
    Param("norm_first", "bool", False, "Pre-norm (LayerNorm first)", "Pre-norm（先做 LayerNorm）",
          "Off: post-norm, x = LN(x + f(x)) as in the original Transformer. On: pre-norm, x = x + f(LN(x)) as in "
          "GPT-2 and Llama, with a final LayerNorm after the last block.",
          "关闭：post-norm，x = LN(x + f(x))，即原版 Transformer。打开：pre-norm，x = x + f(LN(x))，即 GPT-2、Llama 的做法，"
          "最后一个块之后再加一个 LayerNorm。", group="Block"),
    Param("d_ff", "int", 0, "FFN width d_ff", "FFN 宽度 d_ff",
          "Hidden width of the FFN; 0 = the usual choice: 4·d_model, or 8/3·d_model for the gated FFNs (same parameters).",
          "FFN 隐藏层宽度；0 = 常用取值：4·d_model，门控 FFN 为 8/3·d_model（参数量相同）。", lo=0, hi=4096, group="Block"),
    Param("depth", "int", 12, "Layers", "层数", "Blocks stacked for the gradient curves and the decoding.",
          "梯度曲线和解码所用的块数。", lo=1, hi=48, group="Block"),
    Param("batch", "int", 8, "Batch", "批大小", "Sequences in the batch the gradients are computed on.",
          "计算梯度所用批次中的序列数。", lo=1, hi=32, group="Block"),
    Param("warmup", "int", 4000, "Warm-up steps", "预热步数",
          "Steps of linear warm-up in lr = d^-0.5 · min(step^-0.5, step · warmup^-1.5) (Vaswani et al.: 4000).",
          "学习率 lr = d^-0.5 · min(step^-0.5, step · warmup^-1.5) 中线性预热的步数（原论文为 4000）。",
          lo=1, hi=50000, log=True, group="Block"),
    Param("prefix", "int", 4, "Prefix length", "前缀长度",
          "Prefix LM: the first tokens (the prompt) see each other both ways; the rest are causal.",
          "前缀语言模型：前面这些词（提示）彼此双向可见，其余因果。", lo=0, hi=64, group="Attention kinds"),
    Param("step", "int", 6, "Generated tokens", "已生成的词数",
          "Decoding: how many tokens have been generated; the cache holds their keys and values.",
          "解码：已经生成了多少个词；缓存里存着它们的键和值。", lo=1, hi=64, group="Decoding"),
    Param("model_layers", "int", 32, "Model layers", "模型层数", "Layers of the model whose cost and cache are counted.",
          "计算成本和缓存大小所用模型的层数。", lo=1, hi=160, group="Decoding"),
    Param("model_d", "int", 4096, "Model d_model", "模型 d_model", "Width of that model.", "该模型的宽度。",
          lo=64, hi=32768, step=64, group="Decoding"),
    Param("model_heads", "int", 32, "Model heads", "模型头数", "Query heads of that model.", "该模型的查询头数。",
          lo=1, hi=256, group="Decoding"),
    Param("model_kv_heads", "int", 32, "Model KV heads", "模型 KV 头数",
          "Key/value heads of that model (32 of 32: multi-head; 8: GQA; 1: MQA).", "该模型的键/值头数（32/32：多头；8：GQA；1：MQA）。",
          lo=1, hi=256, group="Decoding"),
    Param("context", "int", 4096, "Context length", "上下文长度", "Tokens in the sequence when the cache is measured.",
          "计算缓存大小时序列中的词数。", lo=16, hi=1_048_576, log=True, group="Decoding"),
    Param("cache_format", "choice", "fp16", "Cache format", "缓存格式", "Bytes per cached number.", "缓存中每个数的字节数。",
          choices=tuple(Choice(k, en, zh) for k, (en, zh, _) in CACHE_FORMATS.items()), group="Decoding"),
]


def d_ff_of(values: Mapping[str, Any]) -> int | None:
    """The FFN width to build (None: the backend's default for the activation)."""
    return values["d_ff"] or None


def _largest_divisor(n: int, most: int) -> int:
    return next(k for k in range(min(most, n), 0, -1) if n % k == 0)


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """Counts that must stay inside what they count follow it down: heads to a divisor of d_model
    (an even one), KV heads to a divisor of heads (the same for the model counted), the pair
    drawn, the prefix and the generated tokens. A value typed explicitly does not follow: it is
    checked."""
    follow = {}
    heads = values["heads"]
    if values["d_model"] % 2 == 0 and values["d_model"] % heads and "heads" not in changes:
        heads = follow["heads"] = _largest_divisor(values["d_model"], heads)
    if heads % values["kv_heads"]:
        follow["kv_heads"] = math.gcd(heads, values["kv_heads"])
    model_heads = values["model_heads"]
    if values["model_d"] % model_heads and "model_heads" not in changes:
        model_heads = follow["model_heads"] = _largest_divisor(values["model_d"], model_heads)
    if model_heads % values["model_kv_heads"]:
        follow["model_kv_heads"] = math.gcd(model_heads, values["model_kv_heads"])
    if values["rope_pair"] >= values["d_model"] // 2:
        follow["rope_pair"] = values["d_model"] // 2 - 1
    for name in ("prefix", "step"):
        if values[name] > values["tokens"]:
            follow[name] = values["tokens"]
    return follow


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    d, heads, kv = values["d_model"], values["heads"], values["kv_heads"]
    if d % 2:
        problems.append(tr("d_model (d_model): {d} is odd; sin/cos and RoPE need pairs of dimensions").format(d=d))
    if d % heads:
        problems.append(tr("heads (heads): {h} does not divide d_model = {d}").format(h=heads, d=d))
    if heads % kv:
        problems.append(tr("kv_heads (kv_heads): {kv} does not divide heads = {h}").format(kv=kv, h=heads))
    if values["rope_pair"] >= d // 2:
        problems.append(tr("rope_pair (rope_pair): {i}, but d_model = {d} has {n} pairs (0 to {last})").format(
            i=values["rope_pair"], d=d, n=d // 2, last=d // 2 - 1))
    for name in ("prefix", "step"):
        if values[name] > values["tokens"]:
            problems.append(tr("{name} ({name}): {n} is more than the {t} tokens").format(
                name=name, n=values[name], t=values["tokens"]))
    if not problems and values["view"] in ("block", "decoding"):  # the pages that build a stack of blocks
        kept = tf.gradient_values(values["depth"], d, heads, d_ff_of(values), seq_len=values["tokens"],
                                  batch=values["batch"], activation=values["activation"], n_kv_heads=kv)
        weights = values["depth"] * tf.parameter_counts(d, heads, d_ff_of(values), values["activation"], kv).total
        if weights > MAX_STACK_PARAMETERS:
            problems.append(tr("depth (depth): {layers} layers of {per:,} parameters = {total:,}, at most {most:,} "
                               "(a stack this panel computes at every change); lower layers, d_model or FFN width").format(
                layers=values["depth"], per=weights // values["depth"], total=weights, most=MAX_STACK_PARAMETERS))
        if kept > tf.MAX_STORED_VALUES and values["view"] == "block":
            problems.append(tr("batch (batch): the gradients through depth would keep {kept:,} values, at most "
                               "{most:,}; lower batch, tokens, d_model, FFN width or layers").format(
                kept=kept, most=tf.MAX_STORED_VALUES))
    md, mh, mkv = values["model_d"], values["model_heads"], values["model_kv_heads"]
    if md % mh:
        problems.append(tr("model_heads (model_heads): {h} does not divide model_d = {d}").format(h=mh, d=md))
    if mh % mkv:
        problems.append(tr("model_kv_heads (model_kv_heads): {kv} does not divide model_heads = {h}").format(kv=mkv, h=mh))
    return problems


def _model(layers: int, d: int, heads: int, kv: int, context: int, fmt: str = "fp16") -> dict:
    return {"view": "decoding", "model_layers": layers, "model_d": d, "model_heads": heads, "model_kv_heads": kv,
            "context": context, "cache_format": fmt}


PRESETS = [
    Preset("sinusoid", "Sinusoidal encoding, base 10000", "正弦位置编码，底数 10000", {"view": "positions"}),
    Preset("beyond_learned", "Past the end of a learned table", "超出可学习位置表的长度",
           {"view": "positions", "n_positions": 512, "learned_max": 128}),
    Preset("rope_offset", "RoPE: the score depends on the offset only", "RoPE：分数只取决于相对距离",
           {"view": "rope", "shift": 40, "gap": 3}),
    Preset("alibi_12", "ALiBi with 12 heads (not a power of 2)", "12 个头的 ALiBi（不是 2 的幂）",
           {"view": "rope", "alibi_heads": 12}),
    Preset("post_norm_deep", "Post-norm, 48 layers: why warm-up", "Post-norm、48 层：为什么需要预热",
           {"view": "block", "depth": 48, "norm_first": False}),
    Preset("pre_norm_deep", "Pre-norm, 48 layers", "Pre-norm、48 层", {"view": "block", "depth": 48, "norm_first": True}),
    Preset("llama_block", "Llama-style block: pre-norm, SwiGLU, GQA", "Llama 式的块：pre-norm、SwiGLU、GQA",
           {"view": "block", "norm_first": True, "activation": "swiglu", "heads": 8, "kv_heads": 2}),
    Preset("dot_vs_additive", "Dot product vs additive attention", "点积注意力与加性注意力", {"view": "kinds"}),
    Preset("prefix_lm", "Encoder, decoder and prefix-LM masks", "编码器、解码器与前缀 LM 的掩码",
           {"view": "kinds", "tokens": 12, "prefix": 5}),
    Preset("decode_7b", "7B model, multi-head: 32 layers, d 4096", "7B 模型，多头：32 层，d 4096", _model(32, 4096, 32, 32, 4096)),
    Preset("decode_7b_gqa", "7B with GQA: 8 KV heads", "7B + GQA：8 个 KV 头", _model(32, 4096, 32, 8, 4096)),
    Preset("decode_7b_mqa", "7B with MQA: 1 KV head", "7B + MQA：1 个 KV 头", _model(32, 4096, 32, 1, 4096)),
    Preset("decode_70b", "70B with GQA, 32k context", "70B + GQA，32k 上下文", _model(80, 8192, 64, 8, 32768)),
    Preset("decode_fp8", "7B, 32k context, FP8 cache", "7B、32k 上下文、FP8 缓存", _model(32, 4096, 32, 32, 32768, "fp8")),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)


# ---- what each page computes --------------------------------------------------------------------
@dataclass(frozen=True)
class PositionsPage:
    """encoding: (n_positions, d) PE; wavelengths: (d/2,) in positions; offsets, similarity: (K,)
    PE(p)·PE(p + k); terms: content·content, content·position, position·content, position·position and
    their sum, each (T, T) (scores / sqrt(d) of queries and keys made from embedding + encoding)."""

    encoding: np.ndarray
    wavelengths: np.ndarray
    offsets: np.ndarray
    similarity: np.ndarray
    terms: tuple[np.ndarray, ...]
    learned_max: int


@dataclass(frozen=True)
class RopePage:
    """q_pos, k_pos: positions of the query and the key; pair: the pair drawn, theta its angle per
    position (radians); q_pair, k_pair: its (2,) coordinates before and q_rot, k_rot after rotation;
    score: q·k / sqrt(d) of the whole rotated vectors; positions (T,) and qk_map (T, T) the score of
    the same two contents at every pair of positions (rows: query, columns: key); spread: the
    largest difference along one diagonal; slopes (h,), bias (h, T, T) of ALiBi."""

    q_pos: int
    k_pos: int
    pair: int
    theta: float
    q_pair: np.ndarray
    k_pair: np.ndarray
    q_rot: np.ndarray
    k_rot: np.ndarray
    score: float
    positions: np.ndarray
    qk_map: np.ndarray
    spread: float
    slopes: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class BlockPage:
    """counts: parameter counts of one block (with the FFN width built); shapes: (name, shape) along it; grads: norm placement (False post, True pre) -> gradient norms through depth; steps (S,),
    lr (S,): the warm-up schedule at S steps from 1 to WARMUP_STEPS."""

    counts: Any
    shapes: tuple
    grads: dict
    steps: np.ndarray
    lr: np.ndarray


@dataclass(frozen=True)
class KindsPage:
    """dot, additive: (T, T) scores of the same queries and keys; costs: multiply-adds per score;
    masks: kind -> (T, T) True = may attend; weights: kind -> (T, T) softmax weights under it."""

    dot: np.ndarray
    additive: np.ndarray
    costs: Any
    masks: dict
    weights: dict


@dataclass(frozen=True)
class TransformerScene:
    view: str
    page: Any


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7919, stream])


@lru_cache(maxsize=8)
def positions_page(n_positions: int, d_model: int, base: float, tokens: int, seed: int, learned_max: int) -> PositionsPage:
    """The encoding, its wavelengths and offset similarity, and the four score terms of T tokens
    whose unit-variance embeddings get the encoding added (projections as a head of d_k = d/4)."""
    rng = _rng(seed, 0)
    content = rng.standard_normal((tokens, d_model))
    d_k = max(d_model // 4, 1)
    w_q, w_k = (rng.uniform(-1, 1, (d_k, d_model)) * math.sqrt(3 / d_model) for _ in range(2))
    terms = tf.score_terms(content, tf.sinusoidal_encoding(tokens, d_model, base), w_q, w_k)
    similarity = tf.offset_similarity(d_model, n_positions - 1, base)
    return PositionsPage(tf.sinusoidal_encoding(n_positions, d_model, base), tf.wavelengths(d_model, base),
                         similarity.offsets, similarity.similarity,
                         (terms.content_content, terms.content_position, terms.position_content,
                          terms.position_position, terms.total), learned_max)


def _pair(x: np.ndarray, pair: int, layout: str) -> np.ndarray:
    """The two coordinates RoPE turns together for ``pair`` (reshaping only)."""
    d = x.shape[-1]
    return x[..., [pair, pair + d // 2]] if layout == "half" else x[..., [2 * pair, 2 * pair + 1]]


@lru_cache(maxsize=8)
def rope_page(d_model: int, base: float, layout: str, pair: int, shift: int, gap: int, tokens: int, seed: int,
              alibi_heads: int) -> RopePage:
    rng = _rng(seed, 1)
    q, k = rng.standard_normal(d_model), rng.standard_normal(d_model)
    q_pos, k_pos = shift + gap, shift
    q_rot = tf.rope(q[None, :], np.array([q_pos]), base, layout)[0]
    k_rot = tf.rope(k[None, :], np.array([k_pos]), base, layout)[0]
    positions = np.arange(shift, shift + tokens)
    qk = (tf.rope(np.broadcast_to(q, (tokens, d_model)), positions, base, layout)  # the shown positions only
          @ tf.rope(np.broadcast_to(k, (tokens, d_model)), positions, base, layout).T) / math.sqrt(d_model)
    diagonals = [np.ptp(np.diagonal(qk, offset)) for offset in range(-tokens + 1, tokens)]
    return RopePage(q_pos, k_pos, pair, float(tf.inverse_frequencies(d_model, base)[pair]),
                    _pair(q, pair, layout), _pair(k, pair, layout), _pair(q_rot, pair, layout),
                    _pair(k_rot, pair, layout), float(q_rot @ k_rot / math.sqrt(d_model)), positions, qk,
                    float(max(diagonals)), tf.alibi_slopes(alibi_heads), tf.alibi_bias(alibi_heads, tokens))


@lru_cache(maxsize=8)
def block_page(d_model: int, heads: int, kv_heads: int, d_ff: int | None, activation: str, depth: int, tokens: int,
               batch: int, seed: int, warmup: int, norm_first: bool) -> BlockPage:
    counts = tf.parameter_counts(d_model, heads, d_ff, activation, kv_heads)
    shapes = tuple(tf.block_shapes(d_model, heads, d_ff, seq_len=tokens, batch=batch, activation=activation,
                                   n_kv_heads=kv_heads, norm_first=norm_first))
    grads = {first: replace(tf.gradient_norms(depth, d_model, heads, d_ff, norm_first=first, seq_len=tokens, batch=batch,
                                              seed=seed, activation=activation, n_kv_heads=kv_heads),
                            weights=(), inputs=None, upstream=None)  # the norms only: the weights stay in one cache
             for first in (False, True)}
    shown = np.unique(np.append(np.geomspace(1, WARMUP_STEPS, 400).round().astype(np.int64), warmup))  # log axes; the peak
    return BlockPage(counts, shapes, grads, shown, tf.warmup_schedule(WARMUP_STEPS, d_model, warmup)[shown - 1])


@lru_cache(maxsize=8)
def kinds_page(d_model: int, heads: int, tokens: int, seed: int, prefix: int) -> KindsPage:
    """One head's queries and keys (d_k = d_model / heads) scored both ways (additive with
    d_attn = d_k), and the dot-product weights under the encoder, decoder and prefix-LM masks."""
    rng = _rng(seed, 2)
    d_k = d_model // heads
    q, k, v_values = (rng.standard_normal((tokens, d_k)) for _ in range(3))
    w_q, w_k = (rng.uniform(-1, 1, (d_k, d_k)) * math.sqrt(3 / d_k) for _ in range(2))
    v = rng.uniform(-1, 1, d_k) * math.sqrt(3 / d_k)
    dot = tf.dot_product_scores(q, k)
    blocked = {"encoder": tf.encoder_mask(tokens), "decoder": tf.decoder_mask(tokens),
               "prefix": tf.prefix_lm_mask(tokens, prefix)}
    masks = {kind: ~mask for kind, mask in blocked.items()}
    weights = {kind: att.scaled_dot_product(q, k, v_values, mask).weights for kind, mask in masks.items()}
    return KindsPage(dot, tf.additive_scores(q, k, w_q, w_k, v), tf.score_costs(d_k, d_k), masks, weights)


@lru_cache(maxsize=4)
def _decoded(d_model: int, heads: int, kv_heads: int, d_ff: int | None, activation: str, depth: int, tokens: int,
             seed: int, norm_first: bool):
    blocks = [tf.init_block(d_model, heads, d_ff, seed=seed + layer, activation=activation, n_kv_heads=kv_heads)
              for layer in range(depth)]
    x = _rng(seed, 3).standard_normal((1, tokens, d_model))
    decoded = tf.decode_steps(x, blocks, norm_first=norm_first, cache=True)
    parallel = tf.causal_parallel(x, blocks, norm_first)
    first = tf.block_trace(x, blocks[0], norm_first=norm_first, mask=tf.decoder_mask(tokens))
    error = np.abs(decoded.outputs - parallel).max(axis=(0, 2))
    return first.attention_weights[0].mean(axis=0), error, decoded


@dataclass(frozen=True)
class DecodingPage:
    """weights: (T, T) the first layer's attention weights in the parallel (training) pass, mean over
    heads; error: (T,) largest |decoded with the cache − parallel| per row; trace: the decoding
    (MACs actually done per step); lengths (L,), flops_with, flops_without (L,): FLOPs per generated
    token of the model counted below at context lengths; cost: decode_cost at the context length."""

    weights: np.ndarray
    error: np.ndarray
    trace: Any
    lengths: np.ndarray
    flops_with: np.ndarray
    flops_without: np.ndarray
    cost: Any


@lru_cache(maxsize=8)
def _costs(layers: int, d: int, heads: int, kv: int, context: int, size: int):
    lengths = np.unique(np.geomspace(1, context, 200).round().astype(np.int64))
    costs = [tf.decode_cost(layers, d, heads, kv, int(n), size) for n in lengths]
    return (lengths, np.array([c.flops_with_cache for c in costs], dtype=float),
            np.array([c.flops_without_cache for c in costs], dtype=float), costs[-1])


def decoding_page(v: Mapping[str, Any]) -> DecodingPage:
    weights, error, trace = _decoded(v["d_model"], v["heads"], v["kv_heads"], d_ff_of(v), v["activation"], v["depth"],
                                     v["tokens"], v["seed"], v["norm_first"])
    lengths, flops_with, flops_without, cost = _costs(v["model_layers"], v["model_d"], v["model_heads"],
                                                      v["model_kv_heads"], v["context"], CACHE_FORMATS[v["cache_format"]][2])
    return DecodingPage(weights, error, trace, lengths, flops_with, flops_without, cost)


def compute_scene(values: Mapping[str, Any]) -> TransformerScene:
    """The page the values show (each page remembered by what it depends on)."""
    v, view = values, values["view"]
    if view == "positions":
        page = positions_page(v["n_positions"], v["d_model"], v["base"], v["tokens"], v["seed"], v["learned_max"])
    elif view == "rope":
        page = rope_page(v["d_model"], v["base"], v["layout"], v["rope_pair"], v["shift"], v["gap"], v["tokens"],
                         v["seed"], v["alibi_heads"])
    elif view == "block":
        page = block_page(v["d_model"], v["heads"], v["kv_heads"], d_ff_of(v), v["activation"], v["depth"], v["tokens"],
                          v["batch"], v["seed"], v["warmup"], v["norm_first"])
    elif view == "kinds":
        page = kinds_page(v["d_model"], v["heads"], v["tokens"], v["seed"], v["prefix"])
    else:
        page = decoding_page(v)
    return TransformerScene(view, page)


# ---- drawing helpers ----------------------------------------------------------------------------------
def _canvas(st) -> pg.GraphicsLayoutWidget:
    canvas = pg.GraphicsLayoutWidget()
    canvas.setBackground(st.background)
    canvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
    canvas.ci.setSpacing(6)
    return canvas


def _plot(layout, row: int, col: int, st, title: str, left: str = "", bottom: str = "", **kwargs) -> pg.PlotItem:
    plot = layout.addPlot(row=row, col=col, enableMenu=False, **kwargs)
    st.style_plot(plot, title, left, bottom)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.setMouseEnabled(x=False, y=False)
    never_widens(plot.titleLabel)
    return plot


def _heat(layout, row: int, col: int, st, title: str, cmap: pg.ColorMap, left: str = "", bottom: str = "",
          **kwargs) -> tuple[pg.PlotItem, Heatmap]:
    """A heatmap plot, row 0 at the top; NaN cells hatched."""
    plot = _plot(layout, row, col, st, title, left, bottom, **kwargs)
    plot.showGrid(x=False, y=False)
    plot.invertY(True)
    return plot, Heatmap(plot.vb, st, cmap)


def _set_title(plot: pg.PlotItem, title: str) -> None:
    if plot.titleLabel.text != title:
        plot.setTitle(title)


def _set_range(plot: pg.PlotItem, x: tuple[float, float], y: tuple[float, float], padding: float = 0.0) -> None:
    """A new view range only when it differs: an unchanged one would still redraw the axes."""
    wanted = (x, y, padding)
    if getattr(plot, "_wanted_range", None) != wanted:
        plot._wanted_range = wanted
        plot.setRange(xRange=x, yRange=y, padding=padding)
        plot.vb.prepareForPaint()


def _set_ticks(axis: pg.AxisItem, ticks: list) -> None:
    if getattr(axis, "_set_ticks", None) != ticks:
        axis._set_ticks = ticks
        axis.setTicks(ticks)


def _nice_bound(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return nice_ceiling(float(finite.max())) if finite.size and finite.max() > 0 else 1.0


def _slope_text(slope: float) -> str:
    """1/2, 1/4, ... for ALiBi's powers of two; else 3 digits."""
    inverse = 1 / slope
    return f"1/{inverse:.0f}" if abs(inverse - round(inverse)) < 1e-9 else f"{slope:.3g}"


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _flops(n: float) -> str:
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} FLOP"


def _bytes(n: float) -> str:
    for unit, size in (("TiB", 2 ** 40), ("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


DIAGRAM_ROWS = 8
PAGE_GROUPS = {"positions": "Positions", "rope": "RoPE and ALiBi", "block": "Block", "kinds": "Attention kinds",
               "decoding": "Decoding"}  # the control group of each page
KINDS = {"encoder": ("Encoder: bidirectional", "编码器：双向"), "decoder": ("Decoder: causal", "解码器：因果"),
         "prefix": ("Prefix LM", "前缀 LM")}
TERMS = ("e·e", "e·p", "p·e", "p·p", "= sum")  # e: a token's content (embedding), p: its position (encoding)


class TransformerPanel(Panel):
    NAME = "transformer"
    TITLE_EN = "Transformer"
    TITLE_ZH = "Transformer"
    PARAMS = PARAMS
    OPEN_GROUPS = ("View", "Model")
    BENCH_SWEEPS = {
        "base": (100.0, 100000.0),
        "n_positions": (64, 512),
        "shift (RoPE)": {"param": "shift", "sweep": (0, 120), "base": {"view": "rope"}},
        "alibi_heads (RoPE)": {"param": "alibi_heads", "sweep": (1, 32), "base": {"view": "rope"}},
        "depth (block)": {"param": "depth", "sweep": (1, 12), "base": {"view": "block"}},
        "seed (block)": {"param": "seed", "sweep": (0, 59), "base": {"view": "block"}},
        "warmup (block)": {"param": "warmup", "sweep": (100, 20000), "base": {"view": "block"}},
        "prefix (kinds)": {"param": "prefix", "sweep": (0, 16), "base": {"view": "kinds"}},
        "step (decoding)": {"param": "step", "sweep": (1, 16), "base": {"view": "decoding"}},
        "context (decoding)": {"param": "context", "sweep": (256, 131072), "base": {"view": "decoding"}},
    }
    BENCH_BUDGETS_MS = {"base": 8.0, "n_positions": 8.0, "shift (RoPE)": 8.0, "alibi_heads (RoPE)": 8.0}

    compute = staticmethod(compute_scene)

    def __init__(self, style, values=None, parent=None):
        self._play_timer = QTimer()
        self._play_timer.setInterval(350)
        super().__init__(style, values, parent)
        self._play_timer.timeout.connect(self._play_step)

    # ---- figure -----------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        st = self.style_
        figure = QWidget()
        column = QVBoxLayout(figure)
        column.setContentsMargins(4, 4, 4, 0)
        column.setSpacing(2)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setFont(st.font(1.0, bold=True))
        self.detail = QLabel()
        self.detail.setObjectName("detail")
        self.detail.setStyleSheet(f"color: {st.muted};")
        for label in (self.status, self.detail):
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            column.addWidget(OneLine(label, lines=2))  # wrapped on a projector, never pushing the figure
        self.pages = QStackedWidget()
        column.addWidget(self.pages, 1)
        self.diverging = pg.colormap.get("CET-D1A")
        self.sequential = pg.colormap.get("viridis")
        self.page_canvas: dict[str, pg.GraphicsLayoutWidget] = {}  # each page built when first shown
        return figure

    def page(self, view: str) -> pg.GraphicsLayoutWidget:
        """The page's canvas, built the first time it is asked for (opening the panel builds one page,
        not five)."""
        canvas = self.page_canvas.get(view)
        if canvas is None:
            canvas = self.page_canvas[view] = _canvas(self.style_)
            getattr(self, f"_build_{view}")(canvas.ci)
            for item in canvas.scene().items():
                if isinstance(item, (pg.AxisItem, pg.LabelItem)):
                    item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged ones repaint as a blit
            self.pages.addWidget(canvas)
        return canvas

    def _build_positions(self, ci) -> None:
        st = self.style_
        top = ci.addLayout(row=0, col=0)
        self.pe_plot, self.pe_map = _heat(top, 0, 0, st, tr("Sinusoidal encoding PE(p, i)"), self.diverging,
                                          tr("position p"), tr("dimension i (even: sin, odd: cos)"))
        self.pe_plot.showAxis("top")
        self.pe_plot.getAxis("top").setStyle(tickFont=st.font(0.8))
        self.pe_plot.getAxis("top").setTextPen(pg.mkPen(st.muted))
        self.learned_line = pg.InfiniteLine(angle=0, pen=st.pen(st.error, 2, Qt.DashLine))
        self.learned_shade = QGraphicsRectItem()
        shade = QColor(st.background)
        shade.setAlpha(170)
        self.learned_shade.setBrush(QBrush(shade))
        self.learned_shade.setPen(QPen(Qt.NoPen))
        self.learned_text = pg.TextItem(color=st.error, anchor=(0.5, -0.1))
        self.learned_text.setFont(st.font(0.9, bold=True))
        for item in (self.learned_shade, self.learned_line, self.learned_text):
            self.pe_plot.addItem(item, ignoreBounds=True)
        self.sim_plot = _plot(top, 0, 1, st, tr("PE(p) · PE(p + k)"), "", tr("offset k (positions)"))
        self.sim_curve = PixelCurve(pen=st.pen(st.series[0]))
        self.sim_plot.addItem(self.sim_curve)
        self.sim_zero = pg.InfiniteLine(angle=0, pen=pg.mkPen(st.muted, width=1))
        self.sim_plot.addItem(self.sim_zero, ignoreBounds=True)
        top.layout.setColumnStretchFactor(0, 3)
        top.layout.setColumnStretchFactor(1, 2)
        bottom = ci.addLayout(row=1, col=0)
        self.term_plots, self.term_maps = [], []
        for col, title in enumerate(TERMS):
            plot, heat = _heat(bottom, 0, col, st, title, self.diverging)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            self.term_plots.append(plot)
            self.term_maps.append(heat)
        self.terms_bar = pg.ColorBarItem(colorMap=self.diverging, interactive=False, width=12, values=(-1, 1))
        self.terms_bar.axis.setTextPen(pg.mkPen(st.foreground))
        bottom.addItem(self.terms_bar, row=0, col=len(TERMS))
        for col in range(len(TERMS)):
            bottom.layout.setColumnStretchFactor(col, 1)
        ci.layout.setRowStretchFactor(0, 3)
        ci.layout.setRowStretchFactor(1, 2)

    def _build_rope(self, ci) -> None:
        st = self.style_
        top = ci.addLayout(row=0, col=0)
        self.arrow_plot = _plot(top, 0, 0, st, " ")
        self.arrow_plot.setAspectLocked(True)
        self.arrow_plot.showGrid(x=False, y=False)
        self.circle = pg.PlotCurveItem(pen=pg.mkPen(st.muted, width=1, style=Qt.DotLine))
        self.arrows = {}
        for key, color in (("q", st.series[0]), ("k", st.series[1])):
            before = pg.PlotCurveItem(pen=pg.mkPen(color, width=1.5, style=Qt.DashLine))
            after = pg.PlotCurveItem(pen=st.pen(color, st.line_width * 1.5))
            tip = pg.ScatterPlotItem(size=st.marker_size * 1.5, pen=None, brush=pg.mkBrush(color))
            label = pg.TextItem(color=color, anchor=(0.5, 0.5))
            label.setFont(st.font(1.0, bold=True))
            self.arrows[key] = (before, after, tip, label)
            for item in (before, after, tip, label):
                self.arrow_plot.addItem(item, ignoreBounds=True)
        self.arrow_plot.addItem(self.circle, ignoreBounds=True)
        self.qk_plot, self.qk_map = _heat(top, 0, 1, st, tr("q·k/√d after RoPE"),
                                          self.diverging, tr("query position m"), tr("key position n"))
        self.qk_cell = QGraphicsRectItem()
        self.qk_cell.setPen(pg.mkPen(st.foreground, width=2.5))
        self.qk_plot.addItem(self.qk_cell, ignoreBounds=True)
        self.qk_bar = pg.ColorBarItem(colorMap=self.diverging, interactive=False, width=12, values=(-1, 1))
        self.qk_bar.axis.setTextPen(pg.mkPen(st.foreground))
        top.addItem(self.qk_bar, row=0, col=2)
        self.alibi_plot = _plot(ci, 1, 0, st, " ")
        self.alibi_plot.hideAxis("left")
        self.alibi_plot.hideAxis("bottom")
        self.alibi_plot.showGrid(x=False, y=False)
        self.alibi_plot.invertY(True)
        self.alibi_plot.setAspectLocked(True)
        self.alibi = HeadMosaic(self.alibi_plot.vb, st, self.sequential, most=MAX_ALIBI_TILES)
        self.alibi.frame.setVisible(False)
        ci.layout.setRowStretchFactor(0, 5)
        ci.layout.setRowStretchFactor(1, 2)

    def _build_block(self, ci) -> None:
        st = self.style_
        self.diagram = pg.ViewBox(enableMouse=False, enableMenu=False)
        self.diagram.setMenuEnabled(False)
        self.diagram.invertY(True)
        self.diagram.setRange(xRange=(0, 10), yRange=(-0.6, DIAGRAM_ROWS - 0.4), padding=0)
        ci.addItem(self.diagram, row=0, col=0, rowspan=2)
        self.boxes, self.box_texts = [], []
        for row in range(DIAGRAM_ROWS):
            box = QGraphicsRectItem(1.0, row - 0.4, 8.9, 0.8)
            box.setPen(pg.mkPen(st.foreground, width=1))
            self.diagram.addItem(box, ignoreBounds=True)
            text = pg.TextItem(color=st.foreground, anchor=(0, 0.5))
            text.setFont(st.font(0.8))
            text.setPos(1.1, row)
            self.diagram.addItem(text, ignoreBounds=True)
            self.boxes.append(box)
            self.box_texts.append(text)
        rows = np.arange(DIAGRAM_ROWS - 1, dtype=float)
        self.flow = pg.PlotCurveItem(np.full(2 * len(rows), 5.4), np.ravel([rows + 0.4, rows + 0.6], order="F"),
                                     pen=st.pen(st.foreground, 1.5), connect="pairs")  # the arrows between boxes
        self.skips = pg.PlotCurveItem(pen=st.pen(st.series[3], 2), connect="pairs")
        for item in (self.flow, self.skips):
            self.diagram.addItem(item, ignoreBounds=True)
        self.box_brushes = {}
        for kind, color in (("attention", st.series[0]), ("ffn", st.series[1]), ("norm", st.series[2]),
                            ("add", st.muted), ("io", st.background)):
            fill = QColor(color)
            fill.setAlpha(70 if kind != "io" else 255)
            self.box_brushes[kind] = QBrush(fill)
        right = ci.addLayout(row=0, col=1, rowspan=2)
        self.grad_plot = _plot(right, 0, 0, st, tr("Gradient norm per layer at initialisation"), "‖∂L/∂·‖",
                               tr("layer (1 = input side)"), axisItems={"left": DecadeAxis("left")})
        self.grad_curves = {}
        for first, color in ((False, st.series[0]), (True, st.series[1])):
            for kind, style in (("weights", Qt.SolidLine), ("stream", Qt.DashLine)):
                curve = pg.PlotCurveItem(pen=st.pen(color, style=style))
                self.grad_plot.addItem(curve, ignoreBounds=True)
                self.grad_curves[first, kind] = curve
        legend = pg.LegendItem(labelTextColor=st.foreground, labelTextSize=f"{st.point_size * 0.85:.0f}pt", colCount=2)
        right.addItem(legend, row=1, col=0)  # under the plot: at 48 layers the curves fill every corner
        for (first, kind), text in (((False, "weights"), tr("post-norm: block weights")),
                                    ((False, "stream"), tr("post-norm: residual stream")),
                                    ((True, "weights"), tr("pre-norm: block weights")),
                                    ((True, "stream"), tr("pre-norm: residual stream"))):
            legend.addItem(self.grad_curves[first, kind], text)
        self.warm_plot = _plot(right, 2, 0, st, tr("Warm-up: lr = d^-0.5 · min(s^-0.5, s · w^-1.5)"), "lr", tr("step s"),
                               axisItems={"left": DecadeAxis("left"), "bottom": DecadeAxis("bottom")})
        self.warm_curve = PixelCurve(pen=st.pen(st.series[4]))
        self.warm_peak = pg.ScatterPlotItem(size=st.marker_size * 1.3, pen=pg.mkPen(st.foreground, width=1.5),
                                            brush=pg.mkBrush(st.background))
        self.warm_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(st.muted, width=1, style=Qt.DashLine))
        for item in (self.warm_curve, self.warm_line, self.warm_peak):
            self.warm_plot.addItem(item, ignoreBounds=True)
        for plot in (self.grad_plot, self.warm_plot):
            plot.getAxis("left").setWidth(int(st.point_size * 5))
        right.layout.setRowStretchFactor(0, 5)
        right.layout.setRowStretchFactor(2, 4)
        ci.layout.setColumnStretchFactor(0, 5)
        ci.layout.setColumnStretchFactor(1, 4)
        self._grad_pens: tuple | None = None

    def _build_kinds(self, ci) -> None:
        st = self.style_
        top = ci.addLayout(row=0, col=0)
        self.dot_plot, self.dot_map = _heat(top, 0, 0, st, tr("Dot product: q·k/√d_k"), self.diverging, tr("query"),
                                            tr("key"))
        self.add_plot, self.add_map = _heat(top, 0, 1, st, tr("Additive: v·tanh(W_q q + W_k k)"), self.diverging,
                                            tr("query"), tr("key"))
        self.kinds_bar = pg.ColorBarItem(colorMap=self.diverging, interactive=False, width=12, values=(-1, 1))
        self.kinds_bar.axis.setTextPen(pg.mkPen(st.foreground))
        top.addItem(self.kinds_bar, row=0, col=2)
        bottom = ci.addLayout(row=1, col=0)
        self.mask_plots, self.mask_maps = {}, {}
        for col, (kind, (en, zh)) in enumerate(KINDS.items()):
            plot, heat = _heat(bottom, 0, col, st, pick(en, zh), self.sequential, tr("query"), tr("key"))
            self.mask_plots[kind], self.mask_maps[kind] = plot, heat
        self.weights_bar = pg.ColorBarItem(colorMap=self.sequential, interactive=False, width=12, values=(0, 1))
        self.weights_bar.axis.setTextPen(pg.mkPen(st.foreground))
        bottom.addItem(self.weights_bar, row=0, col=len(KINDS))
        for layout, count in ((top, 2), (bottom, len(KINDS))):
            for col in range(count):
                layout.layout.setColumnStretchFactor(col, 1)
        self._kinds_ticks: list | None = None

    def _build_decoding(self, ci) -> None:
        st = self.style_
        top = ci.addLayout(row=0, col=0)
        self.train_plot, self.train_map = _heat(top, 0, 0, st, tr("Training: all rows"),
                                                self.sequential, tr("query (position)"), tr("key"))
        self.infer_plot, self.infer_map = _heat(top, 0, 1, st, " ", self.sequential, tr("query (position)"), tr("key"))
        self.cache_plot, self.cache_map = _heat(top, 0, 2, st, " ", pg.ColorMap([0, 1], [st.series[0], st.series[1]]),
                                                tr("cached position"), tr("layer (K and V)"))
        self.rows = {}
        for key, plot in (("train", self.train_plot), ("infer", self.infer_plot), ("cache", self.cache_plot)):
            frame = QGraphicsRectItem()
            frame.setPen(pg.mkPen(st.error, width=2.5))
            plot.addItem(frame, ignoreBounds=True)
            self.rows[key] = frame
        for col in range(3):
            top.layout.setColumnStretchFactor(col, 1)
        self.cost_plot = _plot(ci, 1, 0, st, tr("FLOPs per generated token"), "FLOPs", tr("position of the generated token"),
                               axisItems={"left": DecadeAxis("left"), "bottom": DecadeAxis("bottom")})
        self.cost_curves = {True: PixelCurve(pen=st.pen(st.series[2])), False: PixelCurve(pen=st.pen(st.series[3]))}
        legend = pg.LegendItem(offset=(6, 6), labelTextColor=st.foreground, labelTextSize=f"{st.point_size * 0.85:.0f}pt")
        legend.setParentItem(self.cost_plot.vb)
        for cached, text in ((True, tr("with the KV cache: the new token only")),
                             (False, tr("without: the whole prefix again"))):
            self.cost_plot.addItem(self.cost_curves[cached], ignoreBounds=True)
            legend.addItem(self.cost_curves[cached], text)
        self.context_line = pg.InfiniteLine(angle=90, pen=pg.mkPen(st.muted, width=1, style=Qt.DashLine))
        self.cost_plot.addItem(self.context_line, ignoreBounds=True)
        self.cost_plot.getAxis("left").setWidth(int(st.point_size * 5))
        ci.layout.setRowStretchFactor(0, 3)
        ci.layout.setRowStretchFactor(1, 2)

    # ---- controls -----------------------------------------------------------------------------------
    def extra_controls(self) -> list[QWidget]:
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 6)
        self.play_button = QPushButton(tr("Play decoding"))
        self.play_button.setObjectName("play")
        self.play_button.setToolTip(tr("Generate the tokens one by one, from the first"))
        self.play_button.clicked.connect(self.toggle_play)
        row.addWidget(self.play_button)
        return [box]

    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self.pause()
            return
        self.set_values({"view": "decoding", "step": 1})
        self._play_timer.start()
        self.play_button.setText(tr("Pause"))

    def pause(self) -> None:
        self._play_timer.stop()
        self.play_button.setText(tr("Play decoding"))

    def _play_step(self) -> None:
        if self.values["view"] != "decoding" or self.values["step"] >= self.values["tokens"]:
            self.pause()
            return
        self.set_values({"step": self.values["step"] + 1})

    def values_changed(self, names: list[str]) -> None:
        """The controls of the page shown are enabled and their group open; the other pages' are
        disabled (the decoding page also uses the block's FFN, norm placement and layers)."""
        view = self.values["view"]
        own = PAGE_GROUPS[view]
        for name, control in self.controls.items():
            group = self.PARAMS[name].group
            control.setEnabled(group in ("View", "Model", own) or (
                view == "decoding" and name in ("activation", "norm_first", "d_ff", "depth")))
        if "view" in names:
            for page, group in PAGE_GROUPS.items():
                box = self.groups.get(group)
                if box is not None and box.isExpanded() != (page == view):
                    box.expand(animate=False) if page == view else box.collapse(animate=False)

    def retire(self) -> None:
        self.pause()
        super().retire()

    def data_result(self) -> Any:
        """The page without the block weights, inputs and upstream gradients the gradient norms
        carry (tens of MB): they are drawn again from the seed, as gradient_norms documents."""
        page = self.result.page if self.result is not None else None
        if isinstance(page, BlockPage):
            light = {("pre_norm" if first else "post_norm"): {
                name: getattr(g, name) for name in ("depth", "final_norm", "weight_grad_norms", "attention_grad_norms",
                                                    "ffn_grad_norms", "norm_grad_norms", "stream_grad_norms",
                                                    "stream_norms", "loss")} for first, g in page.grads.items()}
            return TransformerScene(self.result.view, replace(page, grads=light))
        return self.result

    def caption(self) -> str:
        v, p = self.values, self.PARAMS
        shown = [n for n in p.params if self.controls[n].isEnabled()] if self.controls else list(p.params)
        return f"{self.title()}: {p.caption(v, shown)}"

    # ---- drawing ------------------------------------------------------------------------------------
    def draw(self, scene: TransformerScene) -> Iterator[None]:
        """The page shown, drawn in steps where it has several plots (see Panel)."""
        self.pages.setCurrentWidget(self.page(scene.view))
        steps = getattr(self, f"_draw_{scene.view}")(scene.page)
        if steps is not None:
            yield from steps

    _sim_x: tuple | None = None

    def _draw_positions(self, page: PositionsPage) -> Iterator[None]:
        v = self.values
        n, d = page.encoding.shape
        self.pe_map.show(page.encoding, (-1.0, 1.0))
        pairs = sorted({int(round(f * (d // 2 - 1))) for f in (0.1, 0.37, 0.63, 0.9)})  # inside: none clipped at an edge
        _set_ticks(self.pe_plot.getAxis("top"), [[(2 * i + 1, f"λ {page.wavelengths[i]:.3g}") for i in pairs], []])
        cut = page.learned_max < n
        for item in (self.learned_line, self.learned_shade, self.learned_text):
            item.setVisible(cut)
        if cut:
            self.learned_line.setPos(page.learned_max)
            self.learned_shade.setRect(QRectF(0, page.learned_max, d, n - page.learned_max))
            self.learned_text.setText(tr("a learned table of {n} rows ends here;\nthe sinusoid goes on").format(
                n=page.learned_max))
            self.learned_text.setPos(d / 2, page.learned_max)
        yield
        self.sim_curve.setData(page.offsets.astype(float), page.similarity)
        k = float(page.offsets[-1])
        self._sim_x = held_range(self._sim_x, (-k, k), fill=0.3)  # an axis that holds still while n grows a little
        _set_range(self.sim_plot, self._sim_x, (-d / 2, d / 2), padding=0.02)  # y: the dot product's bounds
        yield
        bound = _nice_bound(np.concatenate([t.ravel() for t in page.terms]))
        for heat, term in zip(self.term_maps, page.terms):
            heat.show(term, (-bound, bound))
        set_bar_levels(self.terms_bar, (-bound, bound))
        share = [float(np.abs(t).mean()) for t in page.terms[:4]]
        self.status.setText(tr("Score of (content e + position p): four terms, mean |e·e| {cc:.2f}, |e·p| {cp:.2f}, "
                               "|p·e| {pc:.2f}, |p·p| {pp:.2f}").format(
            cc=share[0], cp=share[1], pc=share[2], pp=share[3]))
        self.detail.setText(tr("Base {base:g}: wavelengths λ from {lo:.3g} to {hi:.3g} positions (top axis); "
                               "PE(p)·PE(p + k) = Σ cos(k θᵢ) = {half} at k = 0, the same at every p").format(
            base=v["base"], half=d // 2, lo=page.wavelengths[0], hi=page.wavelengths[-1]))

    _rope_keys: tuple = (None, None)

    def _draw_rope(self, page: RopePage) -> Iterator[None]:
        v = self.values
        rope_key = tuple(v[n] for n in ("d_model", "base", "layout", "rope_pair", "shift", "gap", "tokens", "seed"))
        alibi_key = (v["alibi_heads"], v["tokens"])
        if rope_key != self._rope_keys[0]:
            self._rope_keys = (None, self._rope_keys[1])  # until drawn (a newer result may replace this one between steps)
            self._draw_rope_pair(page)
            self._rope_keys = (rope_key, self._rope_keys[1])
            yield
        if alibi_key != self._rope_keys[1]:
            self._rope_keys = (self._rope_keys[0], None)
            self._draw_alibi(page)
            self._rope_keys = (self._rope_keys[0], alibi_key)
            yield
        angle = (page.q_pos - page.k_pos) * page.theta
        self.status.setText(tr("q at position {m}, k at {n}: pair {i} of q is turned {a:.3g} rad more than k's; "
                               "q·k/√d = {score:.4f} for every shift").format(
            m=page.q_pos, n=page.k_pos, i=page.pair, a=angle, score=page.score))
        self.detail.setText(tr("Constant along each diagonal m − n (spread ≤ {spread:.1e}): the score depends on the "
                               "offset only").format(spread=page.spread))

    def _draw_rope_pair(self, page: RopePage) -> None:
        v = self.values
        radius = max(float(np.hypot(*page.q_pair)), float(np.hypot(*page.k_pair)), 1e-9)
        angles = np.linspace(0, 2 * np.pi, 97)
        self.circle.setData(radius * np.cos(angles), radius * np.sin(angles))
        for key, before, after, position in (("q", page.q_pair, page.q_rot, page.q_pos),
                                             ("k", page.k_pair, page.k_rot, page.k_pos)):
            line0, line, tip, label = self.arrows[key]
            line0.setData([0.0, before[0]], [0.0, before[1]])
            line.setData([0.0, after[0]], [0.0, after[1]])
            tip.setData([after[0]], [after[1]])
            if label.toPlainText() != f"{key} @ {position}":
                label.setText(f"{key} @ {position}")
            length = max(float(np.hypot(*after)), 1e-12)
            label.setPos(*(after * (1 + 0.3 * radius / length)))  # beyond the tip, whatever the arrow's length
        _set_range(self.arrow_plot, (-1.45 * radius, 1.45 * radius), (-1.45 * radius, 1.45 * radius))
        _set_title(self.arrow_plot, tr("Pair {i}: turns θ = {theta:.3g} rad per position").format(
            i=page.pair, theta=page.theta))
        bound = _nice_bound(page.qk_map)
        self.qk_map.show(page.qk_map, (-bound, bound))
        set_bar_levels(self.qk_bar, (-bound, bound))
        tokens = len(page.positions)
        self.qk_cell.setVisible(v["gap"] < tokens)
        self.qk_cell.setRect(QRectF(0, v["gap"], 1, 1))
        ticks = [[(i + 0.5, str(int(p))) for i, p in enumerate(page.positions) if i % max(1, tokens // 8) == 0], []]
        for side in ("left", "bottom"):
            _set_ticks(self.qk_plot.getAxis(side), ticks)

    def _draw_alibi(self, page: RopePage) -> None:
        heads = len(page.slopes)
        shown = min(heads, MAX_ALIBI_TILES)
        span = float(np.abs(page.bias[np.isfinite(page.bias)]).max()) or 1.0
        tiles = [np.where(np.isfinite(b), 1 + b / span, np.nan) for b in page.bias[:shown]]
        self.alibi.show(tiles, [f"m = {_slope_text(s)}" for s in page.slopes[:shown]], -1)
        for label in self.alibi.labels[:shown]:
            label.setColor(self.style_.foreground)
        more = tr(" (the first {n} drawn)").format(n=shown) if heads > shown else ""
        _set_title(self.alibi_plot, tr("ALiBi bias −m·(i − j), {h} heads{more}: bright 0, dark −{span:.3g}").format(
            h=heads, more=more, span=span))

    def _diagram_rows(self, page: BlockPage) -> list[tuple[str, str]]:
        v, c = self.values, page.counts
        b, t, d = v["batch"], v["tokens"], v["d_model"]
        shape = f"(B, T, d) = ({b}, {t}, {d})"
        ffn_name = FFNS[v["activation"]][0].split(" (")[0]
        gated = v["activation"] in ("swiglu", "geglu")
        kv = v["kv_heads"]
        kind = tr("multi-head") if kv == v["heads"] else tr("multi-query") if kv == 1 else tr("grouped-query")
        shapes = dict(page.shapes)
        shape_of = lambda prefix: next(str(s) for n, s in shapes.items() if n.startswith(prefix))  # noqa: E731
        hidden = next(str(s) for s in shapes.values() if s[-1] == c.d_ff and len(s) == 3)
        attention = (tr("Attention, {kind}: {h} heads × d_k {dk}\nq {q}, k and v {k} each\n"
                        "KV heads: {kv} · {w} weights + {bias} biases").format(
            kind=kind, h=v["heads"], dk=c.d_k, kv=kv, q=shape_of("q ="), k=shape_of("k ="),
            w=_count(c.attention), bias=_count(c.attention_bias)), "attention")
        ffn = (tr("FFN {name}: {d} → {dff} → {d}\nhidden {hidden}\n{m} matrices · {w} weights + {bias} biases").format(
            name=ffn_name, d=d, dff=c.d_ff, hidden=hidden, m=3 if gated else 2, w=_count(c.ffn), bias=_count(c.ffn_bias)),
            "ffn")
        norm = lambda i: (tr("LayerNorm {i}: each token over d = {d}\n{n} parameters").format(  # noqa: E731
            i=i, d=d, n=2 * d), "norm")
        add = lambda what: (tr("Add: {what} (residual)").format(what=what), "add")  # noqa: E731
        first = (tr("Input x {shape}").format(shape=shape), "io")
        if v["norm_first"]:
            return [first, norm(1), attention, add(tr("x + attention(LN(x))")), norm(2), ffn,
                    add(tr("x + FFN(LN(x))")),
                    (tr("Output {shape}\nafter the last block: a final LayerNorm").format(shape=shape), "io")]
        return [first, attention, add(tr("x + attention(x)")), norm(1), ffn, add(tr("x + FFN(x)")), norm(2),
                (tr("Output {shape}").format(shape=shape), "io")]

    _warm_y: tuple | None = None

    def _draw_block(self, page: BlockPage) -> None:
        v = self.values
        rows = self._diagram_rows(page)
        for box, text, (words, kind) in zip(self.boxes, self.box_texts, rows):
            if text.toPlainText() != words:
                text.setText(words)
            box.setBrush(self.box_brushes[kind])
        skips = ((0, 3), (3, 6)) if v["norm_first"] else ((0, 2), (3, 5))
        xs, ys = [], []
        for start, end in skips:
            xs += [1.0, 0.45, 0.45, 0.45, 0.45, 1.0]
            ys += [start, start, start, end, end, end]
        self.skips.setData(np.array(xs), np.array(ys))
        depth = v["depth"]
        layers = np.arange(1, depth + 1, dtype=float)
        for (first, kind), curve in self.grad_curves.items():
            g = page.grads[first]
            values = g.weight_grad_norms if kind == "weights" else g.stream_grad_norms[:depth]
            curve.setData(layers, np.log10(np.maximum(values, 1e-300)))
        pens = (v["norm_first"],)
        if pens != self._grad_pens:
            self._grad_pens = pens
            st = self.style_
            for (first, kind), curve in self.grad_curves.items():
                color = st.series[1] if first else st.series[0]
                width = st.line_width * (1.8 if first == v["norm_first"] else 0.8)
                curve.setPen(pg.mkPen(color, width=width, style=Qt.SolidLine if kind == "weights" else Qt.DashLine))
        every = np.concatenate([np.log10(np.maximum(g.weight_grad_norms, 1e-300)) for g in page.grads.values()]
                               + [np.log10(np.maximum(g.stream_grad_norms[:depth], 1e-300)) for g in page.grads.values()])
        _set_range(self.grad_plot, (0.5, depth + 0.5), (math.floor(every.min()), math.ceil(every.max())), padding=0.04)
        log_lr = np.log10(page.lr)
        self.warm_curve.setData(np.log10(page.steps.astype(float)), log_lr)
        peak = float(page.lr.max())
        self.warm_line.setPos(math.log10(v["warmup"]))
        self.warm_peak.setData([math.log10(v["warmup"])], [math.log10(peak)])
        self._warm_y = held_range(self._warm_y, (math.floor(float(log_lr.min())), math.ceil(math.log10(peak))), fill=0.7)
        _set_range(self.warm_plot, (0, math.log10(WARMUP_STEPS)), self._warm_y, padding=0.03)
        post, pre = page.grads[False].weight_grad_norms, page.grads[True].weight_grad_norms
        self.status.setText(tr("{total} parameters per block. Weight gradient of layer {n} (the last): post-norm "
                               "{post:.3g}, pre-norm {pre:.3g} ({ratio:.2g}×)").format(
            total=_count(page.counts.total), n=depth, post=post[-1], pre=pre[-1], ratio=post[-1] / pre[-1]))
        self.detail.setText(tr("Warm-up: lr rises linearly to {peak:.3g} at step {w} (d^-0.5 · w^-0.5), then falls as "
                               "1/√step").format(peak=peak, w=v["warmup"]))

    def _draw_kinds(self, page: KindsPage) -> Iterator[None]:
        v = self.values
        bound = _nice_bound(np.concatenate([page.dot.ravel(), page.additive.ravel()]))
        self.dot_map.show(page.dot, (-bound, bound))
        self.add_map.show(page.additive, (-bound, bound))
        set_bar_levels(self.kinds_bar, (-bound, bound))
        yield
        for kind, heat in self.mask_maps.items():
            heat.show(np.where(page.masks[kind], page.weights[kind], np.nan), (0.0, 1.0))
        tokens = page.dot.shape[0]
        ticks = [[(i + 0.5, str(i)) for i in range(0, tokens, max(1, tokens // 8))], []]  # at cell centres
        for plot in (self.dot_plot, self.add_plot, *self.mask_plots.values()):
            for side in ("left", "bottom"):
                _set_ticks(plot.getAxis(side), ticks)
        _set_title(self.mask_plots["prefix"], tr("Prefix LM: prefix of {p}").format(p=v["prefix"]))
        c = page.costs
        self.status.setText(tr("Per score: dot product {dot} multiply-adds, all scores one matrix product; additive "
                               "{adds} additions, {tanh} tanh and {macs} multiply-adds, and a (T, T, {n}) tensor").format(
            dot=c.dot_product_macs, adds=c.additive_adds, tanh=c.additive_tanh, macs=c.additive_macs, n=c.additive_values))
        self.detail.setText(tr("Same queries and keys (d_k = {dk}); hatched: masked, weight 0. Encoder (BERT) both "
                               "ways, decoder (GPT) causal, prefix LM (T5, GLM) both ways inside the prefix").format(
            dk=v["d_model"] // v["heads"]))

    _cache_ticks: list | None = None

    def _draw_decoding(self, page: DecodingPage) -> None:
        v = self.values
        t, step = v["tokens"], v["step"]
        upper = np.triu(np.ones((t, t), dtype=bool), 1)
        self.train_map.show(np.where(upper, np.nan, page.weights), (0.0, 1.0))
        generated = np.where(upper | (np.arange(t)[:, None] >= step), np.nan, page.weights)
        self.infer_map.show(generated, (0.0, 1.0))
        layers = v["depth"]
        cache = np.full((t, 2 * layers), np.nan)
        cache[:step, 0::2], cache[:step, 1::2] = 0.0, 1.0
        self.cache_map.show(cache, (0.0, 1.0))
        every = max(1, layers // 6)
        ticks = [[(2 * l + 1, str(l + 1)) for l in range(0, layers, every)], []]
        if ticks != self._cache_ticks:
            self._cache_ticks = ticks
            self.cache_plot.getAxis("bottom").setTicks(ticks)
        for key in ("train", "infer"):
            self.rows[key].setRect(QRectF(0, step - 1, step, 1))
        self.rows["cache"].setRect(QRectF(0, step - 1, 2 * layers, 1))
        _set_title(self.infer_plot, tr("Inference: step {s}").format(s=step))
        _set_title(self.cache_plot, tr("KV cache: {s} of {t}").format(s=step, t=t))
        cost = page.cost
        lengths = page.lengths.astype(float)
        self.cost_curves[True].setData(np.log10(lengths), np.log10(page.flops_with))
        self.cost_curves[False].setData(np.log10(lengths), np.log10(page.flops_without))
        self.context_line.setPos(math.log10(v["context"]))
        top = math.log10(page.flops_without[-1])
        _set_range(self.cost_plot, (0, math.log10(v["context"])), (math.floor(math.log10(page.flops_with[0])), math.ceil(top)),
                   padding=0.03)
        macs = int(page.trace.macs[step - 1])
        self.status.setText(tr("Step {s} of {t}: one new query, keys in the cache: {s}; decoded = parallel pass "
                               "(max |Δ| {err:.1e}); {macs} multiply-adds").format(s=step, t=t, err=float(page.error[:step].max()), macs=_count(macs)))
        fmt = CACHE_FORMATS[v["cache_format"]]
        self.detail.setText(tr("{l} layers, d {d}, {h} heads, {kv} KV heads, token {n}: {with_} with the cache, {without} "
                               "without ({ratio:.0f}×); KV cache {size} per sequence in {fmt}").format(
            l=v["model_layers"], d=v["model_d"], h=v["model_heads"], kv=v["model_kv_heads"], n=_count(v["context"]),
            with_=_flops(cost.flops_with_cache), without=_flops(cost.flops_without_cache),
            ratio=cost.flops_without_cache / cost.flops_with_cache, size=_bytes(cost.cache_bytes),
            fmt=fmt[0].split(" ")[0]))
