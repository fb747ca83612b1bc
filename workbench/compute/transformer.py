"""Transformer mechanics: positional encodings (sinusoidal, RoPE, ALiBi), dot-product and
additive attention scores, one encoder block (post- or pre-norm; ReLU, GELU, SwiGLU, GEGLU
feed-forward; grouped-query attention), gradients through a stack of blocks at initialisation,
and decoding token by token with a KV cache.

Qt-free and torch-free (numpy + stdlib), float64 throughout. The numbers equal PyTorch's (the
tests check to 1e-10): :func:`block` equals ``torch.nn.TransformerEncoderLayer(d_model, n_heads,
d_ff, dropout=0.0, activation=..., batch_first=True, norm_first=..., dtype=torch.float64)``
loaded with ``BlockWeights.state_dict()``; :func:`gradient_norms` equals autograd through a stack
of those layers.

Conventions
-----------
* Linear maps are torch's ``nn.Linear``: ``y = x @ W.T + b`` with W (out_features, in_features).
* Shapes: B batch, T tokens (positions), d = d_model, h = n_heads, g = n_kv_heads,
  d_k = d / h per head, d_ff the feed-forward width.
* Masks of this module (:func:`block`'s ``mask``, :func:`encoder_mask`, :func:`decoder_mask`,
  :func:`prefix_lm_mask`) follow torch.nn's boolean ``src_mask`` / ``attn_mask`` of
  ``TransformerEncoderLayer`` and ``MultiheadAttention``: (T, T), ``True`` = the query (row) may
  NOT attend to the key (column). ``workbench.compute.attention`` uses the opposite convention
  (``True`` = may attend, as ``F.scaled_dot_product_attention``); convert with ``~mask``. A float
  mask is added to the scores, as torch does (``-inf`` blocks). A query that may attend to no key
  gets weights 0 and attention output 0 here, where torch returns NaN.
* Positions are 0-based. Frequencies of the sinusoidal encoding and of RoPE are
  ``theta_i = base^(-2i/d)`` for pair i = 0 .. d/2 - 1, in radians per position.
* LayerNorm: biased variance, eps = 1e-5 (torch's default).
* Costs: a multiply-add (MAC) is one multiplication and one addition; 1 MAC = 2 FLOPs. Only
  matrix products are counted (projections, q.k scores, weights @ v, the feed-forward);
  elementwise work (biases, residual additions, softmax, LayerNorm, activations) is not.

Validation: every public function checks its arguments and raises ValueError whose message
starts with the parameter's name (``"n_heads: must divide d_model 64, got 5"``). Pure results of
hashable arguments are cached (``functools.lru_cache`` for small results, ``workbench.memo``'s
caches, bounded by bytes, for large ones) and returned read-only.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from workbench.compute import checks
from workbench.compute.attention import causal_mask, softmax
from workbench.memo import bounded_cache

__all__ = [
    "ACTIVATIONS",
    "ALIBI_FORMS",
    "GATED",
    "LAYER_NORM_EPS",
    "LAYOUTS",
    "MAX_DEPTH",
    "BlockTrace",
    "BlockWeights",
    "DecodeCost",
    "DecodeTrace",
    "GradientNorms",
    "OffsetSimilarity",
    "ParameterCounts",
    "ScoreCosts",
    "ScoreTerms",
    "additive_scores",
    "alibi_bias",
    "alibi_slopes",
    "block",
    "block_shapes",
    "block_trace",
    "causal_parallel",
    "decode",
    "decode_cost",
    "decode_steps",
    "decoder_mask",
    "default_d_ff",
    "dot_product_scores",
    "encoder_mask",
    "feed_forward",
    "gradient_norms",
    "gradient_norms_for",
    "gradient_values",
    "init_block",
    "inverse_frequencies",
    "offset_similarity",
    "parameter_counts",
    "prefix_lm_mask",
    "rope",
    "rope_scores",
    "rotation_matrix",
    "score_costs",
    "score_terms",
    "sinusoidal_encoding",
    "warmup_schedule",
    "wavelengths",
]

LAYOUTS = ("half", "interleaved")
ACTIVATIONS = ("relu", "gelu", "swiglu", "geglu")
GATED = ("swiglu", "geglu")
ALIBI_FORMS = ("causal", "symmetric", "reference")
LAYER_NORM_EPS = 1e-5
MAX_DEPTH = 48
MAX_D_MODEL = 8192  # encodings and frequencies
MAX_BLOCK_D_MODEL = 2048  # blocks with weights (d_ff up to MAX_D_FF)
MAX_D_FF = 16384
MAX_FORMULA_SIZE = 1 << 20  # d_model, d_ff in closed forms (parameter counts, shapes, decoding cost)
MAX_POSITIONS = 1 << 16
MAX_TABLE_VALUES = 1 << 24  # values of one position table (encoding, offset similarity)
MAX_MASK_POSITIONS = 4096  # a (T, T) mask
MAX_DENSE_D_MODEL = 2048  # a (d, d) rotation matrix
MAX_BASE = 1e12
MAX_ALIBI_CELLS = 1 << 23  # n_heads * T * T of one bias tensor: 64 MiB of float64
MAX_STORED_VALUES = 1 << 25  # values gradient_norms keeps for its backward pass: 256 MiB
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Seed streams: every random tensor is np.random.default_rng([seed, stream, index, tag]).
_WEIGHTS, _INPUTS, _UPSTREAM = range(3)


# ---- validation ---------------------------------------------------------------------------------
def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _even_d_model(value: object, purpose: str, hi: int = MAX_D_MODEL) -> int:
    d = checks.integer("d_model", value, 1, hi)
    if d % 2:
        raise ValueError(f"d_model: must be even for {purpose} (pairs), got {d}")
    return d


def _base(value: object) -> float:
    return checks.number("base", value, 1.0, MAX_BASE, lo_open=True)


def _heads(d_model: int, n_heads: object, n_kv_heads: object = None) -> tuple[int, int]:
    """(n_heads, n_kv_heads) checked: n_heads divides d_model, n_kv_heads divides n_heads
    (None means n_heads: plain multi-head attention)."""
    h = checks.integer("n_heads", n_heads, 1, d_model)
    if d_model % h:
        raise ValueError(f"n_heads: must divide d_model {d_model}, got {h}")
    if n_kv_heads is None:
        return h, h
    g = checks.integer("n_kv_heads", n_kv_heads, 1, h)
    if h % g:
        raise ValueError(f"n_kv_heads: must divide n_heads {h}, got {g}")
    return h, g


def _activation(value: object) -> str:
    return str(checks.choice("activation", value, ACTIVATIONS))


def _d_ff(value: object, d_model: int, activation: str, hi: int = MAX_D_FF) -> int:
    if value is None:
        return _default_d_ff(d_model, activation)
    return checks.integer("d_ff", value, 1, hi)


def _array(name: str, value: object, ndim: int | None = None, min_ndim: int = 0) -> np.ndarray:
    """``value`` as a float64 array of finite numbers (no copy when it already is one)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name}: must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: must have {ndim} dimensions, got shape {array.shape}")
    if array.ndim < min_ndim:
        raise ValueError(f"{name}: must have at least {min_ndim} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: must contain only finite numbers (no NaN or inf)")
    return array


def _shaped(name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    array = _array(name, value)
    if array.shape != shape:
        raise ValueError(f"{name}: must have shape {shape}, got {array.shape}")
    return array


def _positions(value: object, n: int) -> np.ndarray:
    if value is None:
        return np.arange(n, dtype=np.float64)
    positions = _array("positions", value, ndim=1)
    if positions.shape[0] != n:
        raise ValueError(f"positions: must have one entry per token ({n}), got {positions.shape[0]}")
    return positions


# ---- sinusoidal encoding ------------------------------------------------------------------------
@lru_cache(maxsize=64)
def _inverse_frequencies(d: int, base: float) -> np.ndarray:
    return _read_only(1.0 / base ** (np.arange(0, d, 2, dtype=np.float64) / d))


def inverse_frequencies(d_model: int, base: float = 10000.0) -> np.ndarray:
    """theta_i = base^(-2i/d) for pair i = 0 .. d/2 - 1, (d/2,), in radians per position: the
    angular frequencies of the sinusoidal encoding and of RoPE. Cached, read-only."""
    return _inverse_frequencies(_even_d_model(d_model, "frequencies"), _base(base))


def wavelengths(d_model: int, base: float = 10000.0) -> np.ndarray:
    """2 pi / theta_i = 2 pi base^(2i/d), (d/2,), in positions: pair 0 repeats every 2 pi
    positions, the last pair every 2 pi base^((d-2)/d) (almost 2 pi base). Read-only."""
    return _read_only(2.0 * math.pi / inverse_frequencies(d_model, base))


@bounded_cache(maxsize=16, max_bytes=16 * 2 ** 20)
def _sinusoid(n: int, d: int, base: float) -> np.ndarray:
    angles = np.arange(n, dtype=np.float64)[:, None] * _inverse_frequencies(d, base)
    out = np.empty((n, d))
    out[:, 0::2] = np.sin(angles)
    out[:, 1::2] = np.cos(angles)
    return _read_only(out)


def sinusoidal_encoding(n_positions: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """Vaswani et al.'s positional encoding, (n_positions, d_model): PE[p, 2i] = sin(p theta_i),
    PE[p, 2i+1] = cos(p theta_i), theta_i = base^(-2i/d). d_model must be even. Each row has
    squared norm d/2. Cached, read-only."""
    n = checks.integer("n_positions", n_positions, 1, MAX_POSITIONS)
    d = _even_d_model(d_model, "sinusoidal encoding")
    if n * d > MAX_TABLE_VALUES:
        raise ValueError(f"n_positions: n_positions * d_model must be at most {MAX_TABLE_VALUES}, got {n} * {d}")
    return _sinusoid(n, d, _base(base))


@dataclass(frozen=True)
class OffsetSimilarity:
    """PE(p) . PE(p + k) against the offset k.

    offsets: (2K+1,) k = -K .. K, in positions; similarity: (2K+1,) the dot products, which equal
    sum_i cos(k theta_i) whatever p (sin a sin b + cos a cos b = cos(a - b)): symmetric in k,
    d/2 at k = 0; cosine: (2K+1,) similarity / (d/2), the cosine of the angle between the two
    encodings. position: the p used.
    """

    offsets: np.ndarray
    similarity: np.ndarray
    cosine: np.ndarray
    position: int


def offset_similarity(d_model: int, max_offset: int, base: float = 10000.0, position: int = 0) -> OffsetSimilarity:
    """Dot products of the sinusoidal encoding at ``position`` with the encodings at
    position + k, k = -max_offset .. max_offset, computed explicitly from both encodings (positions
    below 0 use the same formula). Cached, read-only."""
    d = _even_d_model(d_model, "sinusoidal encoding")
    k = checks.integer("max_offset", max_offset, 0, MAX_POSITIONS)
    p = checks.integer("position", position, 0, MAX_POSITIONS)
    if (2 * k + 1) * d > MAX_TABLE_VALUES:
        raise ValueError(f"max_offset: (2 max_offset + 1) * d_model must be at most {MAX_TABLE_VALUES}, "
                         f"got {2 * k + 1} * {d}")
    return _offset_similarity(d, k, _base(base), p)


@lru_cache(maxsize=32)
def _offset_similarity(d: int, max_offset: int, base: float, p: int) -> OffsetSimilarity:
    theta = _inverse_frequencies(d, base)
    offsets = np.arange(-max_offset, max_offset + 1)
    here = p * theta
    there = (p + offsets)[:, None] * theta
    similarity = np.sin(there) @ np.sin(here) + np.cos(there) @ np.cos(here)
    return OffsetSimilarity(_read_only(offsets), _read_only(similarity), _read_only(similarity / (d / 2)), p)


def rotation_matrix(k: float, d_model: int, base: float = 10000.0) -> np.ndarray:
    """M(k), (d, d), with PE(p + k) = M(k) PE(p) for every p: block diagonal, the 2x2 block of
    pair i (rows and columns 2i, 2i+1) is [[cos k theta_i, sin k theta_i], [-sin k theta_i,
    cos k theta_i]] (the pair is (sin, cos), so this turns its angle by k theta_i). It does not
    depend on p: a fixed linear map takes any position to the one k further on. ``k`` is an offset
    in positions (any real number). Cached, read-only."""
    offset = checks.number("k", k, -MAX_POSITIONS, MAX_POSITIONS)
    return _rotation_matrix(offset, _even_d_model(d_model, "sinusoidal encoding", hi=MAX_DENSE_D_MODEL), _base(base))


@bounded_cache(maxsize=16, max_bytes=16 * 2 ** 20)
def _rotation_matrix(k: float, d: int, base: float) -> np.ndarray:
    angle = k * _inverse_frequencies(d, base)
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros((d, d))
    even, odd = np.arange(0, d, 2), np.arange(1, d, 2)
    m[even, even], m[even, odd], m[odd, even], m[odd, odd] = c, s, -s, c
    return _read_only(m)


@dataclass(frozen=True)
class ScoreTerms:
    """The attention scores of (content + position) queries and keys, split in four (T, T) maps.

    With e the content (token embeddings), p the positional encodings, q = (e + p) W_q^T and
    k = (e + p) W_k^T, the score q_i . k_j * scale is the sum of
    content_content (e_i W_q^T)(e_j W_k^T) * scale, content_position (e_i W_q^T)(p_j W_k^T) * scale,
    position_content (p_i W_q^T)(e_j W_k^T) * scale and position_position (p_i W_q^T)(p_j W_k^T) *
    scale; total is computed directly from (e + p) (the four terms sum to it up to rounding).
    scale: the factor used.
    """

    content_content: np.ndarray
    content_position: np.ndarray
    position_content: np.ndarray
    position_position: np.ndarray
    total: np.ndarray
    scale: float


def score_terms(content: np.ndarray, positions: np.ndarray, w_q: np.ndarray | None = None,
                w_k: np.ndarray | None = None, *, scale: float | None = None) -> ScoreTerms:
    """Split the scores of absolute-position attention into content and position terms.

    content: (T, d) token embeddings; positions: (T, d) their positional encodings (e.g.
    :func:`sinusoidal_encoding`); w_q, w_k: (d_k, d) projections applied as x @ W.T (None = the
    identity, d_k = d: raw dot products); scale: None = 1/sqrt(d_k).
    """
    e = _array("content", content, ndim=2)
    p = _shaped("positions", positions, e.shape)
    d = e.shape[1]
    wq = np.eye(d) if w_q is None else _array("w_q", w_q, ndim=2)
    wk = np.eye(d) if w_k is None else _array("w_k", w_k, ndim=2)
    if wq.shape[1] != d:
        raise ValueError(f"w_q: must have shape (d_k, {d}), got {wq.shape}")
    if wk.shape != wq.shape:
        raise ValueError(f"w_k: must have the shape of w_q {wq.shape}, got {wk.shape}")
    factor = 1.0 / math.sqrt(wq.shape[0]) if scale is None else checks.number("scale", scale, 0.0, lo_open=True)
    qe, qp, ke, kp = e @ wq.T, p @ wq.T, e @ wk.T, p @ wk.T
    total = ((e + p) @ wq.T) @ ((e + p) @ wk.T).T * factor
    return ScoreTerms(qe @ ke.T * factor, qe @ kp.T * factor, qp @ ke.T * factor, qp @ kp.T * factor,
                      total, factor)


# ---- RoPE ---------------------------------------------------------------------------------------
def rope(x: np.ndarray, positions: np.ndarray | None = None, base: float = 10000.0,
         layout: str = "half") -> np.ndarray:
    """Rotary position embedding (Su et al., RoFormer): x (..., T, d) with each pair of features
    turned by the angle position * theta_i, theta_i = base^(-2i/d), i = 0 .. d/2 - 1.

    positions: (T,) (None = 0 .. T-1; any real numbers). layout "half" pairs feature i with
    i + d/2 (``rotate_half``: GPT-NeoX, Hugging Face Llama); "interleaved" pairs 2i with 2i + 1
    (RoFormer, GPT-J, Meta's Llama via complex numbers). For pair (a, b) at angle t:
    (a cos t - b sin t, a sin t + b cos t). Rotations keep norms, and
    rope(q, m) . rope(k, n) depends on m - n only. Returns a new array, x's shape.
    """
    x = _array("x", x, min_ndim=2)
    d = _even_d_model(x.shape[-1], "rope", hi=1 << 30)
    pos = _positions(positions, x.shape[-2])
    layout = checks.choice("layout", layout, LAYOUTS)
    angles = pos[:, None] * _inverse_frequencies(d, _base(base))
    cos, sin = np.cos(angles), np.sin(angles)
    if layout == "half":
        a, b = x[..., : d // 2], x[..., d // 2:]
        return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def rope_scores(q: np.ndarray, k: np.ndarray, n_positions: int, base: float = 10000.0,
                layout: str = "half") -> np.ndarray:
    """(T, T) dot products rope(q, m) . rope(k, n) of one query vector q (d,) placed at every
    position m (rows) and one key vector k (d,) at every position n (columns): constant along each
    diagonal (it depends on m - n only). Unscaled."""
    q = _array("q", q, ndim=1)
    k = _shaped("k", k, q.shape)
    n = checks.integer("n_positions", n_positions, 1, MAX_MASK_POSITIONS)
    rq = rope(np.broadcast_to(q, (n, q.shape[0])), None, base, layout)
    rk = rope(np.broadcast_to(k, (n, k.shape[0])), None, base, layout)
    return rq @ rk.T


# ---- ALiBi --------------------------------------------------------------------------------------
def _reference_slopes(n: int) -> list[float]:
    """The slopes of the ALiBi paper's reference code (ofirpress/attention_with_linear_biases,
    ``get_slopes``), the same float arithmetic: a geometric sequence starting at 2^(-8/n) with that
    ratio for n a power of 2; otherwise those of the closest power of 2 below n, then every other
    slope of twice that power, up to n."""
    def power_of_2(m: int) -> list[float]:
        start = 2 ** (-2 ** -(math.log2(m) - 3))
        return [start * start ** i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_2(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_2(closest) + _reference_slopes(2 * closest)[0::2][: n - closest]


@lru_cache(maxsize=128)
def _alibi_slopes(n: int) -> np.ndarray:
    return _read_only(np.array(_reference_slopes(n)))


def alibi_slopes(n_heads: int) -> np.ndarray:
    """ALiBi's per-head slopes m_h, (n_heads,), as the paper's reference ``get_slopes``: for 8
    heads 1/2, 1/4, ..., 1/256. Cached, read-only."""
    return _alibi_slopes(checks.integer("n_heads", n_heads, 1, 1024))


def alibi_bias(n_heads: int, n_positions: int, form: str = "causal") -> np.ndarray:
    """ALiBi's additive attention bias, (n_heads, T, T), query i (rows), key j (columns); add it to
    the scores q.k / sqrt(d_k) (e.g. as :func:`block`'s float ``mask``).

    form "causal" (the paper): -m_h (i - j) for j <= i, -inf for j > i (the causal mask folded in);
    "symmetric": -m_h |i - j| everywhere (a bidirectional variant, no mask); "reference": what the
    reference code adds, m_h j for j <= i and -inf above (a bias per key, not per distance). Within a
    row "reference" is "causal" plus the constant m_h i, so softmax gives the same weights. Cached,
    read-only.
    """
    h = checks.integer("n_heads", n_heads, 1, 1024)
    n = checks.integer("n_positions", n_positions, 1, MAX_POSITIONS)
    form = checks.choice("form", form, ALIBI_FORMS)
    if h * n * n > MAX_ALIBI_CELLS:
        raise ValueError(f"n_positions: n_heads * n_positions^2 must be at most {MAX_ALIBI_CELLS}, "
                         f"got {h} * {n}^2")
    return _alibi_bias(h, n, form)


@bounded_cache(maxsize=16, max_bytes=16 * 2 ** 20)
def _alibi_bias(h: int, n: int, form: str) -> np.ndarray:
    i = np.arange(n)
    distance = (i[:, None] - i[None, :]).astype(np.float64)
    slopes = _alibi_slopes(h)[:, None, None]
    if form == "symmetric":
        return _read_only(-slopes * np.abs(distance))
    value = slopes * i[None, None, :].astype(np.float64) if form == "reference" else -slopes * distance
    return _read_only(np.where(distance >= 0, value, -np.inf))


# ---- dot-product and additive scores --------------------------------------------------------------
def dot_product_scores(q: np.ndarray, k: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Scaled dot-product scores q k^T * scale, (..., n_q, n_k), for q (..., n_q, d_k) and
    k (..., n_k, d_k); scale None = 1/sqrt(d_k) (Vaswani et al.)."""
    q = _array("q", q, min_ndim=2)
    k = _array("k", k, min_ndim=2)
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k: must have q's feature size {q.shape[-1]}, got {k.shape[-1]}")
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else checks.number("scale", scale, 0.0, lo_open=True)
    return (q @ np.swapaxes(k, -1, -2)) * factor


def additive_scores(q: np.ndarray, k: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Additive (Bahdanau) scores, (..., n_q, n_k): score[i, j] = v . tanh(W_q q_i + W_k k_j).

    q: (..., n_q, d_q); k: (..., n_k, d_kv); w_q: (d_attn, d_q); w_k: (d_attn, d_kv); v: (d_attn,).
    The (..., n_q, n_k, d_attn) tensor of tanh values is formed: d_attn values per score.
    """
    q = _array("q", q, min_ndim=2)
    k = _array("k", k, min_ndim=2)
    wq = _array("w_q", w_q, ndim=2)
    wk = _array("w_k", w_k, ndim=2)
    v = _array("v", v, ndim=1)
    if wq.shape[1] != q.shape[-1]:
        raise ValueError(f"w_q: must have shape (d_attn, {q.shape[-1]}), got {wq.shape}")
    if wk.shape != (wq.shape[0], k.shape[-1]):
        raise ValueError(f"w_k: must have shape ({wq.shape[0]}, {k.shape[-1]}), got {wk.shape}")
    if v.shape != (wq.shape[0],):
        raise ValueError(f"v: must have shape ({wq.shape[0]},), got {v.shape}")
    a = (q @ wq.T)[..., :, None, :]
    b = (k @ wk.T)[..., None, :, :]
    return np.tanh(a + b) @ v


@dataclass(frozen=True)
class ScoreCosts:
    """The cost of one attention score, both kinds, without the per-token projections (q = x W_q
    and W_q q_i, W_k k_j are computed once per query or key and shared by all its scores).

    dot_product_macs: d_k (q_i . k_j); dot_product_flops: 2 d_k. The 1/sqrt(d_k) scale is one
    multiplication per score, not counted (it can be folded into W_q).
    additive_macs: d_attn (the dot product with v); additive_adds: d_attn (W_q q_i + W_k k_j);
    additive_tanh: d_attn evaluations of tanh; additive_flops: 2 d_attn + d_attn = 3 d_attn
    (tanh not counted as FLOPs); additive_values: d_attn intermediate values per score (the
    (n_q, n_k, d_attn) tensor; the dot product needs none, it is one matrix product).
    """

    dot_product_macs: int
    dot_product_flops: int
    additive_macs: int
    additive_adds: int
    additive_tanh: int
    additive_flops: int
    additive_values: int


def score_costs(d_k: int, d_attn: int) -> ScoreCosts:
    """Multiply-adds and FLOPs per score of scaled dot-product attention (key size d_k) and of
    additive attention (hidden size d_attn); see :class:`ScoreCosts` for the counting."""
    dk = checks.integer("d_k", d_k, 1)
    da = checks.integer("d_attn", d_attn, 1)
    return ScoreCosts(dk, 2 * dk, da, da, da, 3 * da, da)


# ---- one block: weights -------------------------------------------------------------------------
def default_d_ff(d_model: int, activation: str = "relu") -> int:
    """The feed-forward width when none is given: 4 d for relu and gelu (Vaswani et al.); for the
    gated swiglu and geglu int(8 d / 3) rounded up to a multiple of 8, which keeps the parameter
    count of a 4 d ungated FFN (3 matrices of 8/3 d instead of 2 of 4 d; Shazeer 2020; Llama rounds
    to a multiple of 256: 11008 for d = 4096, here 10928). d = 64 gives 176."""
    return _default_d_ff(checks.integer("d_model", d_model, 1, MAX_FORMULA_SIZE), _activation(activation))


def _default_d_ff(d: int, activation: str) -> int:
    return -(-(8 * d // 3) // 8) * 8 if activation in GATED else 4 * d


_ATTENTION_FIELDS = ("w_q", "w_k", "w_v", "b_q", "b_k", "b_v", "w_o", "b_o")
_FFN_FIELDS = ("w_up", "b_up", "w_gate", "w_down", "b_down")
_NORM_FIELDS = ("norm1_weight", "norm1_bias", "norm2_weight", "norm2_bias")


@dataclass(frozen=True, eq=False)
class BlockWeights:
    """The parameters of one Transformer encoder block, float64, as ``nn.Linear`` weights
    (out_features, in_features), applied as x @ W.T + b.

    Attention: w_q (d, d), w_k and w_v (g d_k, d), biases b_q (d,), b_k and b_v (g d_k,), w_o (d, d),
    b_o (d,). With g = n_kv_heads < n_heads (grouped-query attention; g = 1 multi-query), query
    head j uses key/value head j // (n_heads / g), as ``repeat_interleave`` of the k/v heads.
    Feed-forward: relu and gelu: hidden = act(x w_up^T + b_up), w_up (d_ff, d); gated swiglu and
    geglu (no biases): hidden = act(x w_gate^T) * (x w_up^T), act = silu or gelu, w_gate and w_up
    (d_ff, d); out = hidden w_down^T + b_down, w_down (d, d_ff). In Shazeer's (2020) notation
    (act(xW) * xV) W2: W = w_gate, V = w_up, W2 = w_down (Llama: gate_proj, up_proj, down_proj).
    Unused fields are None (b_up, b_down when gated; w_gate when not). Norms: norm1_* and norm2_*
    (d,), LayerNorm weight and bias (norm1 is the attention sublayer's).

    The weights hold their own float64 copies (w_q, w_k, w_v are views of one stacked matrix,
    w_gate and w_up too). Equality is identity (arrays do not compare as one value): compare
    ``state_dict()`` instead.
    """

    d_model: int
    n_heads: int
    n_kv_heads: int
    d_ff: int
    activation: str
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray
    b_k: np.ndarray
    b_v: np.ndarray
    w_o: np.ndarray
    b_o: np.ndarray
    w_up: np.ndarray
    b_up: np.ndarray | None
    w_gate: np.ndarray | None
    w_down: np.ndarray
    b_down: np.ndarray | None
    norm1_weight: np.ndarray
    norm1_bias: np.ndarray
    norm2_weight: np.ndarray
    norm2_bias: np.ndarray
    _w_qkv: np.ndarray = field(init=False, repr=False)
    _b_qkv: np.ndarray = field(init=False, repr=False)
    _w_in: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        d = checks.integer("d_model", self.d_model, 1, MAX_BLOCK_D_MODEL)
        h, g = _heads(d, self.n_heads, self.n_kv_heads)
        activation = _activation(self.activation)
        d_ff = checks.integer("d_ff", self.d_ff, 1, MAX_D_FF)
        for name, value in (("d_model", d), ("n_heads", h), ("n_kv_heads", g), ("d_ff", d_ff),
                            ("activation", activation)):
            object.__setattr__(self, name, value)
        gated = activation in GATED
        kv = g * (d // h)
        shapes = {"w_q": (d, d), "w_k": (kv, d), "w_v": (kv, d), "b_q": (d,), "b_k": (kv,), "b_v": (kv,),
                  "w_o": (d, d), "b_o": (d,), "w_up": (d_ff, d), "b_up": None if gated else (d_ff,),
                  "w_gate": (d_ff, d) if gated else None, "w_down": (d, d_ff), "b_down": None if gated else (d,),
                  "norm1_weight": (d,), "norm1_bias": (d,), "norm2_weight": (d,), "norm2_bias": (d,)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if shape is None:
                if value is not None:
                    raise ValueError(f"{name}: must be None for activation {activation}")
                continue
            if value is None:
                raise ValueError(f"{name}: missing (shape {shape}) for activation {activation}")
            object.__setattr__(self, name, _shaped(name, value, shape))
        # one copy each, the fields views of it: q, k, v (and gate, up) in one matrix product
        w_qkv = np.concatenate([self.w_q, self.w_k, self.w_v])
        b_qkv = np.concatenate([self.b_q, self.b_k, self.b_v])
        w_in = np.concatenate([self.w_gate, self.w_up] if gated else [self.w_up])
        views = {"_w_qkv": w_qkv, "_b_qkv": b_qkv, "_w_in": w_in,
                 "w_q": w_qkv[:d], "w_k": w_qkv[d:d + kv], "w_v": w_qkv[d + kv:],
                 "b_q": b_qkv[:d], "b_k": b_qkv[d:d + kv], "b_v": b_qkv[d + kv:],
                 "w_up": w_in[w_in.shape[0] - d_ff:], "w_gate": w_in[:d_ff] if gated else None}
        for name, value in views.items():
            object.__setattr__(self, name, value)
        for name in ("w_o", "b_o", "w_down", "b_down", "b_up", *_NORM_FIELDS):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, np.array(value))  # its own copy

    @property
    def d_k(self) -> int:
        """Features per head, d_model / n_heads."""
        return self.d_model // self.n_heads

    @property
    def group_size(self) -> int:
        """Query heads per key/value head, n_heads / n_kv_heads."""
        return self.n_heads // self.n_kv_heads

    @property
    def gated(self) -> bool:
        return self.activation in GATED

    @property
    def torch_compatible(self) -> bool:
        """True when ``state_dict()`` loads into ``nn.TransformerEncoderLayer`` (relu or gelu and
        n_kv_heads == n_heads)."""
        return not self.gated and self.n_kv_heads == self.n_heads

    def state_dict(self) -> dict[str, np.ndarray]:
        """Fresh writable float64 copies under torch's names.

        relu/gelu with n_kv_heads == n_heads: exactly ``nn.TransformerEncoderLayer``'s keys
        (``self_attn.in_proj_weight`` = cat(w_q, w_k, w_v), ``self_attn.in_proj_bias``,
        ``self_attn.out_proj.weight``/``.bias``, ``linear1.weight``/``.bias`` = w_up/b_up,
        ``linear2.weight``/``.bias`` = w_down/b_down, ``norm1.weight``/``.bias``,
        ``norm2.weight``/``.bias``). Load with ``layer.load_state_dict({k: torch.from_numpy(v)})``.
        Grouped-query attention: ``self_attn.q_proj.weight``/``.bias``, ``self_attn.k_proj.*``,
        ``self_attn.v_proj.*`` instead of in_proj_*. Gated FFN: ``linear_gate.weight`` = w_gate,
        ``linear1.weight`` = w_up, ``linear2.weight`` = w_down, no FFN biases.
        """
        out: dict[str, np.ndarray] = {}
        if self.n_kv_heads == self.n_heads:
            out["self_attn.in_proj_weight"] = self._w_qkv.copy()
            out["self_attn.in_proj_bias"] = self._b_qkv.copy()
        else:
            for part in "qkv":
                out[f"self_attn.{part}_proj.weight"] = getattr(self, f"w_{part}").copy()
                out[f"self_attn.{part}_proj.bias"] = getattr(self, f"b_{part}").copy()
        out["self_attn.out_proj.weight"] = self.w_o.copy()
        out["self_attn.out_proj.bias"] = self.b_o.copy()
        out["linear1.weight"] = self.w_up.copy()
        if self.gated:
            out["linear_gate.weight"] = self.w_gate.copy()
        else:
            out["linear1.bias"] = self.b_up.copy()
        out["linear2.weight"] = self.w_down.copy()
        if not self.gated:
            out["linear2.bias"] = self.b_down.copy()
        for i in (1, 2):
            out[f"norm{i}.weight"] = getattr(self, f"norm{i}_weight").copy()
            out[f"norm{i}.bias"] = getattr(self, f"norm{i}_bias").copy()
        return out

    @classmethod
    def from_state_dict(cls, state: Mapping[str, object], n_heads: int, activation: str = "relu") -> BlockWeights:
        """The inverse of :meth:`state_dict` (values: arrays, or CPU torch tensors without grad);
        d_model, n_kv_heads and d_ff are read from the shapes."""
        get = {name: np.array(value, dtype=np.float64) for name, value in state.items()}
        activation = _activation(activation)
        try:
            if "self_attn.in_proj_weight" in get:
                w_q, w_k, w_v = np.split(get["self_attn.in_proj_weight"], 3)
                b_q, b_k, b_v = np.split(get["self_attn.in_proj_bias"], 3)
            else:
                w_q, w_k, w_v = (get[f"self_attn.{p}_proj.weight"] for p in "qkv")
                b_q, b_k, b_v = (get[f"self_attn.{p}_proj.bias"] for p in "qkv")
            d = w_q.shape[0]
            h = checks.integer("n_heads", n_heads, 1, d)
            g = w_k.shape[0] * h // d if d % h == 0 else h
            gated = activation in GATED
            return cls(d, h, g, get["linear1.weight"].shape[0], activation, w_q, w_k, w_v, b_q, b_k, b_v,
                       get["self_attn.out_proj.weight"], get["self_attn.out_proj.bias"],
                       get["linear1.weight"], None if gated else get["linear1.bias"],
                       get["linear_gate.weight"] if gated else None, get["linear2.weight"],
                       None if gated else get["linear2.bias"], get["norm1.weight"], get["norm1.bias"],
                       get["norm2.weight"], get["norm2.bias"])
        except KeyError as missing:
            raise ValueError(f"state: missing {missing.args[0]!r}") from None


def init_block(d_model: int, n_heads: int, d_ff: int | None = None, *, seed: int = 0, activation: str = "relu",
               n_kv_heads: int | None = None) -> BlockWeights:
    """Seeded weights initialised as torch initialises ``nn.TransformerEncoderLayer``.

    q, k, v projections: Xavier-uniform over the stacked (d + 2 g d_k, d) matrix, bound
    sqrt(6 / (2 d + 2 g d_k)) (= torch's in_proj_weight, sqrt(6 / 4d), when g = n_heads); their
    biases 0. out-projection: U(-1/sqrt(d), 1/sqrt(d)), bias 0. Feed-forward layers as
    ``nn.Linear``: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)). LayerNorms: weight 1,
    bias 0. d_ff None: :func:`default_d_ff`. Every tensor has its own stream
    ``np.random.default_rng([seed, 0, 0, tag])`` (layer 0 of :func:`gradient_norms` with that seed).
    Cached; the arrays are read-only.
    """
    d = checks.integer("d_model", d_model, 1, MAX_BLOCK_D_MODEL)
    h, g = _heads(d, n_heads, n_kv_heads)
    activation = _activation(activation)
    return _init_block(d, h, g, _d_ff(d_ff, d, activation), activation, checks.integer("seed", seed, 0), 0)


@bounded_cache(maxsize=256, max_bytes=32 * 2 ** 20)
def _init_block(d: int, h: int, g: int, d_ff: int, activation: str, seed: int, layer: int) -> BlockWeights:
    def uniform(tag: int, bound: float, shape: tuple[int, ...]) -> np.ndarray:
        return np.random.default_rng([seed, _WEIGHTS, layer, tag]).uniform(-bound, bound, shape)

    kv = g * (d // h)
    w_qkv = uniform(0, math.sqrt(6.0 / (2 * d + 2 * kv)), (d + 2 * kv, d))
    gated = activation in GATED
    arrays = dict(
        w_q=w_qkv[:d], w_k=w_qkv[d:d + kv], w_v=w_qkv[d + kv:], b_q=np.zeros(d), b_k=np.zeros(kv),
        b_v=np.zeros(kv), w_o=uniform(1, 1 / math.sqrt(d), (d, d)), b_o=np.zeros(d),
        w_up=uniform(2, 1 / math.sqrt(d), (d_ff, d)), b_up=None if gated else uniform(3, 1 / math.sqrt(d), (d_ff,)),
        w_gate=uniform(4, 1 / math.sqrt(d), (d_ff, d)) if gated else None,
        w_down=uniform(5, 1 / math.sqrt(d_ff), (d, d_ff)),
        b_down=None if gated else uniform(6, 1 / math.sqrt(d_ff), (d,)),
        norm1_weight=np.ones(d), norm1_bias=np.zeros(d), norm2_weight=np.ones(d), norm2_bias=np.zeros(d))
    weights = BlockWeights(d, h, g, d_ff, activation, **arrays)
    for name in (*_ATTENTION_FIELDS, *_FFN_FIELDS, *_NORM_FIELDS, "_w_qkv", "_b_qkv", "_w_in"):
        value = getattr(weights, name)
        if value is not None:
            value.setflags(write=False)
    return weights


@dataclass(frozen=True)
class ParameterCounts:
    """Parameters of one block.

    attention: the projection weights, d^2 (q) + 2 d g d_k (k, v) + d^2 (out) = 4 d^2 for full
    multi-head attention; attention_bias: d + 2 g d_k + d; ffn: weights 2 d d_ff (gated 3 d d_ff);
    ffn_bias: d_ff + d (0 when gated); norms: 4 d (two LayerNorms, weight and bias); total: all of
    these (= sum of numel over the torch layer's parameters). d_k: features per head; d_ff: the
    width used.
    """

    attention: int
    attention_bias: int
    ffn: int
    ffn_bias: int
    norms: int
    total: int
    d_k: int
    d_ff: int


def parameter_counts(d_model: int, n_heads: int, d_ff: int | None = None, activation: str = "relu",
                     n_kv_heads: int | None = None) -> ParameterCounts:
    """Parameter counts of one block (see :class:`ParameterCounts`); d_ff None: :func:`default_d_ff`."""
    d = checks.integer("d_model", d_model, 1, MAX_FORMULA_SIZE)
    h, g = _heads(d, n_heads, n_kv_heads)
    activation = _activation(activation)
    d_ff = _d_ff(d_ff, d, activation, MAX_FORMULA_SIZE)
    d_k = d // h
    attention = 2 * d * d + 2 * d * g * d_k
    attention_bias = 2 * d + 2 * g * d_k
    gated = activation in GATED
    ffn = (3 if gated else 2) * d * d_ff
    ffn_bias = 0 if gated else d_ff + d
    norms = 4 * d
    return ParameterCounts(attention, attention_bias, ffn, ffn_bias, norms,
                           attention + attention_bias + ffn + ffn_bias + norms, d_k, d_ff)


def block_shapes(d_model: int, n_heads: int, d_ff: int | None = None, *, seq_len: int, batch: int = 1,
                 activation: str = "relu", n_kv_heads: int | None = None,
                 norm_first: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """The tensors along one block, in order, for a diagram: [(name, shape)], B = batch,
    T = seq_len. Heads are shown as (B, heads, T, d_k)."""
    d = checks.integer("d_model", d_model, 1, MAX_FORMULA_SIZE)
    h, g = _heads(d, n_heads, n_kv_heads)
    activation = _activation(activation)
    d_ff = _d_ff(d_ff, d, activation, MAX_FORMULA_SIZE)
    t = checks.integer("seq_len", seq_len, 1, MAX_POSITIONS)
    b = checks.integer("batch", batch, 1)
    norm_first = checks.flag("norm_first", norm_first)
    d_k, x = d // h, (b, t, d)
    shapes: list[tuple[str, tuple[int, ...]]] = [("input x", x)]
    if norm_first:
        shapes.append(("norm1(x)", x))
    shapes += [("q = x W_q^T + b_q, split into heads", (b, h, t, d_k)),
               ("k = x W_k^T + b_k, split into heads", (b, g, t, d_k)),
               ("v = x W_v^T + b_v, split into heads", (b, g, t, d_k)),
               ("scores q k^T / sqrt(d_k)", (b, h, t, t)),
               ("weights softmax(scores)", (b, h, t, t)),
               ("weights v", (b, h, t, d_k)),
               ("heads concatenated", x),
               ("attention out (W_o)", x)]
    shapes.append(("x + attention", x) if norm_first else ("norm1(x + attention)", x))
    if norm_first:
        shapes.append(("norm2(.)", x))
    if activation in GATED:
        shapes += [("gate x W_gate^T", (b, t, d_ff)), ("up x W_up^T", (b, t, d_ff)),
                   (f"{'silu' if activation == 'swiglu' else 'gelu'}(gate) * up", (b, t, d_ff))]
    else:
        shapes += [("x W_1^T + b_1", (b, t, d_ff)), (f"{activation}(.)", (b, t, d_ff))]
    shapes.append(("ffn out (W_2)", x))
    shapes.append(("output: stream + ffn", x) if norm_first else ("output: norm2(stream + ffn)", x))
    return shapes


# ---- one block: forward and backward ---------------------------------------------------------------
class _Count:
    """Multiply-adds of the matrix products done through :func:`_matmul`."""

    __slots__ = ("macs",)

    def __init__(self):
        self.macs = 0


def _matmul(a: np.ndarray, b: np.ndarray, count: _Count | None, out: np.ndarray | None = None) -> np.ndarray:
    """a @ b, its multiply-adds added to ``count`` (operands with equal batch axes, or one 2-D)."""
    if count is not None:
        batch = max(math.prod(a.shape[:-2]), math.prod(b.shape[:-2]))
        count.macs += batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    return np.matmul(a, b, out=out)


class _Arena:
    """Reusable memory for one pass through blocks: fresh large arrays cost page faults, which
    were half of :func:`gradient_norms`'s time (activations.py's workspaces answer the same).

    ``keep(shape)``: consecutive slices of one buffer, for what the backward pass reads; reset by
    :meth:`start`. What does not fit gets a new array, and the next pass starts with a buffer
    that fits (up to _ARENA_MAX_BYTES). ``temp(name, shape)``: scratch reused by name, within a
    pass and between passes (each up to _TEMP_MAX_BYTES). One arena per thread (:func:`_arena`)."""

    def __init__(self):
        self.buffer = np.empty(0)
        self.used = 0
        self.temps: dict[str, np.ndarray] = {}

    def start(self) -> _Arena:
        if self.buffer.size < self.used <= _ARENA_MAX_BYTES // 8:
            self.buffer = np.empty(self.used)
        self.used = 0
        return self

    def keep(self, shape: tuple[int, ...]) -> np.ndarray:
        buffer, begin = self.buffer, self.used  # one read: cache_clear may swap the buffer meanwhile
        size = math.prod(shape)
        self.used = begin + -(-size // 8) * 8  # 64-byte steps
        if self.used > buffer.size:
            return np.empty(shape)
        return buffer[begin:begin + size].reshape(shape)

    def temp(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        buffer = self.temps.get(name)
        if buffer is None or buffer.size < size:
            buffer = np.empty(size)
            if size * 8 <= _TEMP_MAX_BYTES:
                self.temps[name] = buffer
        return buffer[:size].reshape(shape)


class _Fresh:
    """The arena interface with new arrays every time: for arrays handed to the caller."""

    @staticmethod
    def keep(shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape)

    @staticmethod
    def temp(name: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape)


_FRESH = _Fresh()
_ARENA_MAX_BYTES = 32 * 2 ** 20  # kept between passes (per thread); more, and gradients are checkpointed
_TEMP_MAX_BYTES = 16 * 2 ** 20  # per scratch buffer kept between passes
_ARENAS = threading.local()  # one per thread: a thread's arena goes with it
_ALL_ARENAS: weakref.WeakSet = weakref.WeakSet()


def _arena() -> _Arena:
    """This thread's arena, emptied for a new pass."""
    arena = getattr(_ARENAS, "arena", None)
    if arena is None:
        arena = _ARENAS.arena = _Arena()
        _ALL_ARENAS.add(arena)
    return arena.start()


def _clear_arenas() -> None:
    for arena in list(_ALL_ARENAS):  # a pass running now keeps the arrays it holds
        arena.buffer = np.empty(0)
        arena.temps = {}


_arena.cache_clear = _clear_arenas  # as functools' caches: emptied by whoever measures memory in use


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, work=_FRESH) -> tuple[np.ndarray, tuple]:
    """LayerNorm over the last axis of x (N, d): the output and (normed, rstd, weight)."""
    normed = np.subtract(x, x.mean(axis=-1, keepdims=True), out=work.keep(x.shape))
    rstd = 1.0 / np.sqrt(np.einsum("ij,ij->i", normed, normed)[:, None] * (1.0 / x.shape[-1]) + LAYER_NORM_EPS)
    normed *= rstd
    out = np.multiply(normed, weight, out=work.keep(x.shape))
    out += bias
    return out, (normed, rstd, weight)


def _layer_norm_backward(dy: np.ndarray, saved: tuple) -> tuple[np.ndarray, float]:
    """dL/dx and the squared norm of (dL/dweight, dL/dbias)."""
    normed, rstd, weight = saved
    sq = _sq(np.einsum("ij,ij->j", dy, normed)) + _sq(dy.sum(axis=0))
    dx = dy * weight
    scale = 1.0 / dy.shape[-1]
    along = np.einsum("ij,ij->i", dx, normed)[:, None] * scale
    dx -= dx.sum(axis=-1, keepdims=True) * scale
    dx -= normed * along
    dx *= rstd
    return dx, sq


def _sq(a: np.ndarray) -> float:
    flat = a.ravel()
    return float(np.dot(flat, flat))


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
# as in netlib's CALERF (and activations.py): erf on |y| <= 0.46875, erfc on (0.46875, 4] and above.
_ERF_P = (0.185777706184603153, 3.16112374387056560, 113.864154151050156, 377.485237685302021,
          3209.37758913846947)
_ERF_Q = (1.0, 23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062)
_ERFC_P = (2.15311535474403846e-8, 0.564188496988670089, 8.88314979438837594, 66.1191906371416295,
           298.635138197400131, 881.952221241769090, 1712.04761263407058, 2051.07837782607147,
           1230.33935479799725)
_ERFC_Q = (1.0, 15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019,
           3290.79923573345963, 4362.61909014324716, 3439.36767414372164, 1230.33935480374942)
_ERFC_TAIL_P = (0.0163153871373020978, 0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
                0.0160837851487422766, 6.58749161529837803e-4)
_ERFC_TAIL_Q = (1.0, 2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191,
                0.00233520497626869185)
_ERF_SMALL, _ERF_LARGE = 0.46875, 4.0


def _horner(coefficients: tuple[float, ...], t: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The polynomial with ``coefficients`` (highest degree first) at t, into out."""
    np.multiply(t, coefficients[0], out=out)
    for c in coefficients[1:-1]:
        out += c
        out *= t
    out += coefficients[-1]
    return out


def _normal_cdf(x: np.ndarray, out: np.ndarray, work=_FRESH) -> np.ndarray:
    """Phi(x) = erfc(-x / sqrt 2) / 2 elementwise into out, to a few ulp, also relative in the left
    tail (Phi = erfc(|x| / sqrt 2) / 2 is formed without cancellation; there the relative error
    grows as x^2 eps, as the rounding of x / sqrt 2 alone makes it). Both of Cody's main pieces are
    evaluated on every element and blended arithmetically, in place (faster than gathering each
    piece's elements or masked copies); the tail beyond |x| = 4 sqrt 2 is gathered."""
    y, a, b, small, d = (work.temp(f"cdf{i}", x.shape) for i in range(5))
    np.abs(x, out=y)
    y *= _SQRT1_2
    np.minimum(y, _ERF_SMALL, out=a)
    np.multiply(a, a, out=b)
    _horner(_ERF_P, b, small)
    small /= _horner(_ERF_Q, b, d)
    small *= a
    np.subtract(1.0, small, out=small)           # erfc(y) for y <= 0.46875
    np.minimum(y, _ERF_LARGE, out=a)
    np.maximum(a, _ERF_SMALL, out=a)
    np.multiply(a, a, out=b)
    b *= -1.0
    np.exp(b, out=b)
    _horner(_ERFC_P, a, out)
    out /= _horner(_ERFC_Q, a, d)
    out *= b                                     # erfc(y) for 0.46875 < y <= 4
    small -= out
    small *= y <= _ERF_SMALL
    out += small                                 # erfc(y) for y <= 4
    far = np.flatnonzero(y > _ERF_LARGE)
    if far.size:
        yf = np.minimum(y.ravel()[far], 30.0)  # erfc(30) is below the smallest double
        s = 1.0 / (yf * yf)
        ratio = _horner(_ERFC_TAIL_P, s, np.empty_like(s)) / _horner(_ERFC_TAIL_Q, s, np.empty_like(s))
        out.ravel()[far] = np.exp(-yf * yf) / yf * (1.0 / math.sqrt(math.pi) - s * ratio)
    out *= 0.5                                   # Phi(-|x|)
    np.multiply(out, -2.0, out=b)
    b += 1.0
    b *= ~np.signbit(x)
    out += b                                     # x >= +0: 1 - Phi(-|x|) = Phi(|x|); else Phi(x) exactly
    return out


def _sigmoid(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.multiply(x, 0.5, out=out)
    np.tanh(out, out=out)  # no overflow for any x
    out *= 0.5
    out += 0.5
    return out


def _mask_addend(mask: object, n_heads: int, n_kv_heads: int, n: int) -> np.ndarray | None:
    """A block's ``mask`` as an additive term broadcastable to the scores (B, g, r, T, T)."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape not in ((n, n), (n_heads, n, n)):
        raise ValueError(f"mask: must have shape ({n}, {n}) or ({n_heads}, {n}, {n}), got {m.shape}")
    if m.dtype == bool:
        add = np.where(m, -np.inf, 0.0)
    elif m.dtype.kind in "iuf":
        add = m.astype(np.float64)
        if np.any(np.isnan(add)) or np.any(add == np.inf):
            raise ValueError("mask: a float mask must hold finite numbers or -inf")
    else:
        raise ValueError(f"mask: must be boolean (True = may not attend) or float (added), got dtype {m.dtype}")
    return add.reshape(n_kv_heads, n_heads // n_kv_heads, n, n) if add.ndim == 3 else add


def _softmax_in_place(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of finite scores, overwriting them."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


def _attention(z: np.ndarray, w: BlockWeights, batch: int, addend: np.ndarray | None,
               kv_cache: np.ndarray | None = None, start: int = 0, count: _Count | None = None, work=_FRESH):
    """Self-attention of z (B*n, d), the n new tokens of B sequences. Query head j = (group,
    member) is row block (j // r, j % r) of q (B, g, r*n, d_k), so each group's r query heads share
    one key/value head and one matrix product. With ``kv_cache`` (2, B, g, T_max, d_k) the new keys
    and values are written at start .. start+n and the queries attend to positions 0 .. start+n
    (unmasked: decoding passes one new token). Returns the output (B*n, d) and what the backward
    pass needs (kept in ``work``)."""
    d, g, r, d_k = w.d_model, w.n_kv_heads, w.group_size, w.d_k
    n = z.shape[0] // batch
    qkv = _matmul(z, w._w_qkv.T, count, work.keep((z.shape[0], w._w_qkv.shape[0])))
    qkv += w._b_qkv
    heads = qkv[:, :d].reshape(batch, n, g, r, d_k).transpose(0, 2, 3, 1, 4)  # (B, g, r, n, d_k)
    if r == 1:
        q = heads.reshape(batch, g, n, d_k)  # a view
    else:
        q = work.keep((batch, g, r, n, d_k))
        q[...] = heads
        q = q.reshape(batch, g, r * n, d_k)
    k = qkv[:, d:d + g * d_k].reshape(batch, n, g, d_k).transpose(0, 2, 1, 3)  # (B, g, n, d_k)
    v = qkv[:, d + g * d_k:].reshape(batch, n, g, d_k).transpose(0, 2, 1, 3)
    if kv_cache is not None:
        kv_cache[0, :, :, start:start + n] = k
        kv_cache[1, :, :, start:start + n] = v
        k, v = kv_cache[0, :, :, :start + n], kv_cache[1, :, :, :start + n]
    n_k = k.shape[2]
    scores = _matmul(q, k.swapaxes(-1, -2), count, work.keep((batch, g, r * n, n_k)))
    scores *= 1.0 / math.sqrt(d_k)
    if addend is None:
        p = _softmax_in_place(scores)
    else:  # attention.softmax: weight 0 at -inf, a row with no key all 0
        p = softmax((scores.reshape(batch, g, r, n, n_k) + addend).reshape(batch, g, r * n, n_k))
    o = _matmul(p, v, count)                                                     # (B, g, r n, d_k)
    c = work.keep((batch * n, d))
    c.reshape(batch, n, g, r, d_k)[...] = o.reshape(batch, g, r, n, d_k).transpose(0, 3, 1, 2, 4)
    out = _matmul(c, w.w_o.T, count)
    out += w.b_o
    return out, (z, q, k, v, p, c)


def _attention_backward(da: np.ndarray, w: BlockWeights, batch: int, saved: tuple,
                        work=_FRESH) -> tuple[np.ndarray, float]:
    """dL/dz and the squared norm of the attention parameters' gradients."""
    z, q, k, v, p, c = saved
    d, g, r, d_k = w.d_model, w.n_kv_heads, w.group_size, w.d_k
    n = z.shape[0] // batch
    sq = _sq(da.T @ c) + _sq(da.sum(axis=0))
    dc = da @ w.w_o
    do = dc.reshape(batch, n, g, r, d_k).transpose(0, 2, 3, 1, 4).reshape(batch, g, r * n, d_k)
    ds = do @ v.swapaxes(-1, -2)                                                 # dL/dp
    dv = p.swapaxes(-1, -2) @ do                                                 # summed over the group
    ds -= np.einsum("...ij,...ij->...i", ds, p)[..., None]                       # softmax backward
    ds *= p
    ds *= 1.0 / math.sqrt(d_k)
    dq = ds @ k
    dk = ds.swapaxes(-1, -2) @ q
    dqkv = work.temp("grad_qkv", (batch * n, d + 2 * g * d_k))
    dqkv[:, :d].reshape(batch, n, g, r, d_k)[...] = dq.reshape(batch, g, r, n, d_k).transpose(0, 3, 1, 2, 4)
    dqkv[:, d:d + g * d_k].reshape(batch, n, g, d_k)[...] = dk.transpose(0, 2, 1, 3)
    dqkv[:, d + g * d_k:].reshape(batch, n, g, d_k)[...] = dv.transpose(0, 2, 1, 3)
    sq += _sq(np.matmul(dqkv.T, z, out=work.temp("grad_w_qkv", w._w_qkv.shape))) + _sq(dqkv.sum(axis=0))
    return dqkv @ w._w_qkv, sq


def _ffn(z: np.ndarray, w: BlockWeights, count: _Count | None = None, work=_FRESH):
    """The feed-forward sublayer of z (N, d): the output (N, d) and what the backward pass needs
    (kept in ``work``; the last item is the hidden activations)."""
    pre = _matmul(z, w._w_in.T, count, work.keep((z.shape[0], w._w_in.shape[0])))
    if w.gated:
        gate, up = pre[:, :w.d_ff], pre[:, w.d_ff:]
        squash = work.keep(gate.shape)
        if w.activation == "swiglu":
            _sigmoid(gate, squash)
        else:
            _normal_cdf(gate, squash, work)
        acted = np.multiply(gate, squash, out=work.keep(gate.shape))
        hidden = np.multiply(acted, up, out=work.keep(gate.shape))
        saved = (z, gate, up, squash, acted, hidden)
    else:
        pre += w.b_up
        if w.activation == "relu":
            hidden = np.maximum(pre, 0.0, out=pre)  # relu(x) > 0 exactly where x > 0: pre is not needed
            saved = (z, hidden, None, hidden)
        else:
            cdf = _normal_cdf(pre, work.keep(pre.shape), work)
            hidden = np.multiply(pre, cdf, out=work.keep(pre.shape))
            saved = (z, pre, cdf, hidden)
    out = _matmul(hidden, w.w_down.T, count)
    if w.b_down is not None:
        out += w.b_down
    return out, saved


def _activation_slope(x: np.ndarray, squash: np.ndarray, silu: bool, out: np.ndarray) -> np.ndarray:
    """d act(x) / dx into out, for act(x) = x * squash(x), squash = sigmoid (silu) or Phi (gelu)."""
    if silu:
        np.subtract(1.0, squash, out=out)
        out *= x
        out += 1.0
        out *= squash
        return out
    np.multiply(x, x, out=out)
    np.minimum(out, 1500.0, out=out)
    out *= -0.5
    np.exp(out, out=out)
    out *= x
    out *= _INV_SQRT_2PI
    out += squash  # Phi(x) + x phi(x)
    return out


def _ffn_backward(df: np.ndarray, w: BlockWeights, saved: tuple, work=_FRESH) -> tuple[np.ndarray, float]:
    """dL/dz and the squared norm of the feed-forward parameters' gradients."""
    hidden = saved[-1]
    sq = _sq(np.matmul(df.T, hidden, out=work.temp("grad_w_down", w.w_down.shape)))
    sq += 0.0 if w.gated else _sq(df.sum(axis=0))
    n = df.shape[0]
    if w.gated:
        z, gate, up, squash, acted, _ = saved
        dh = np.matmul(df, w.w_down, out=work.temp("grad_hidden", hidden.shape))
        dpre = work.temp("grad_pre", (n, 2 * w.d_ff))
        np.multiply(dh, up, out=dpre[:, :w.d_ff])
        dpre[:, :w.d_ff] *= _activation_slope(gate, squash, w.activation == "swiglu", work.temp("slope", gate.shape))
        np.multiply(dh, acted, out=dpre[:, w.d_ff:])
    else:
        z, pre, cdf, _ = saved
        dpre = np.matmul(df, w.w_down, out=work.temp("grad_pre", hidden.shape))
        if w.activation == "relu":
            dpre *= pre > 0
        else:
            dpre *= _activation_slope(pre, cdf, False, work.temp("slope", pre.shape))
        sq += _sq(dpre.sum(axis=0))
    sq += _sq(np.matmul(dpre.T, z, out=work.temp("grad_w_in", w._w_in.shape)))
    return dpre @ w._w_in, sq


def _block_forward(x: np.ndarray, w: BlockWeights, norm_first: bool, batch: int, addend: np.ndarray | None,
                   kv_cache: np.ndarray | None = None, start: int = 0, count: _Count | None = None, work=_FRESH):
    """One block on x (B*n, d). Returns the output (B*n, d) and the saved intermediates
    (norm1, attention, norm2, ffn, attention output, stream after attention, ffn output)."""
    if norm_first:
        z, n1 = _layer_norm(x, w.norm1_weight, w.norm1_bias, work)
        a, att = _attention(z, w, batch, addend, kv_cache, start, count, work)
        mid = x + a
        z2, n2 = _layer_norm(mid, w.norm2_weight, w.norm2_bias, work)
        f, ff = _ffn(z2, w, count, work)
        return mid + f, (n1, att, n2, ff, a, mid, f)
    a, att = _attention(x, w, batch, addend, kv_cache, start, count, work)
    mid, n1 = _layer_norm(x + a, w.norm1_weight, w.norm1_bias, work)
    f, ff = _ffn(mid, w, count, work)
    y, n2 = _layer_norm(mid + f, w.norm2_weight, w.norm2_bias, work)
    return y, (n1, att, n2, ff, a, mid, f)


def _block_backward(dy: np.ndarray, w: BlockWeights, norm_first: bool, batch: int, saved: tuple,
                    work=_FRESH) -> tuple[np.ndarray, float, float, float]:
    """dL/dx and the squared gradient norms of the attention, feed-forward and norm parameters."""
    n1, att, n2, ff = saved[:4]
    if norm_first:
        dz2, sq_ffn = _ffn_backward(dy, w, ff, work)
        dmid, sq_n2 = _layer_norm_backward(dz2, n2)
        dmid += dy
        dz, sq_att = _attention_backward(dmid, w, batch, att, work)
        dx, sq_n1 = _layer_norm_backward(dz, n1)
        dx += dmid
        return dx, sq_att, sq_ffn, sq_n1 + sq_n2
    dsum2, sq_n2 = _layer_norm_backward(dy, n2)
    dmid, sq_ffn = _ffn_backward(dsum2, w, ff, work)
    dmid += dsum2
    dsum1, sq_n1 = _layer_norm_backward(dmid, n1)
    dx, sq_att = _attention_backward(dsum1, w, batch, att, work)
    dx += dsum1
    return dx, sq_att, sq_ffn, sq_n1 + sq_n2


def _tokens(name: str, x: object, d_model: int) -> np.ndarray:
    x = _array(name, x, ndim=3)
    if x.shape[2] != d_model:
        raise ValueError(f"{name}: must have shape (B, T, {d_model}), got {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name}: needs at least one sequence and one token, got shape {x.shape}")
    return x


def _weights(value: object, name: str = "weights") -> BlockWeights:
    if not isinstance(value, BlockWeights):
        raise ValueError(f"{name}: must be a BlockWeights (see init_block), got {type(value).__name__}")
    return value


def block(x: np.ndarray, weights: BlockWeights, *, norm_first: bool, mask: np.ndarray | None = None) -> np.ndarray:
    """One Transformer encoder block on x (B, T, d) -> (B, T, d).

    Post-norm (norm_first False, Vaswani et al., torch's default): y = norm1(x + attn(x)),
    out = norm2(y + ffn(y)). Pre-norm (norm_first True, GPT-2): y = x + attn(norm1(x)),
    out = y + ffn(norm2(y)). Attention is multi-head (grouped-query when n_kv_heads < n_heads)
    with scores q k^T / sqrt(d_k). mask: (T, T) or (n_heads, T, T); boolean, True = may NOT attend
    (torch.nn's convention, e.g. :func:`decoder_mask`), or float, added to the scores (e.g.
    :func:`alibi_bias`). Equals ``nn.TransformerEncoderLayer(..., batch_first=True)`` on the
    weights' ``state_dict()`` (src_mask=mask), except that a query seeing no key gives 0, not NaN.
    """
    w = _weights(weights)
    x = _tokens("x", x, w.d_model)
    norm_first = checks.flag("norm_first", norm_first)
    b, t, d = x.shape
    addend = _mask_addend(mask, w.n_heads, w.n_kv_heads, t)
    y, _ = _block_forward(x.reshape(b * t, d), w, norm_first, b, addend, work=_arena())
    return np.array(y.reshape(b, t, d))  # a copy: y may live in the arena


@dataclass(frozen=True)
class BlockTrace:
    """One block's intermediate tensors (see :func:`block`).

    output: (B, T, d); attention_weights: (B, h, T, T) softmax weights per head (rows sum to 1);
    attention_output: (B, T, d) the attention sublayer after W_o; after_attention: (B, T, d) the
    stream after the first sublayer (x + attn for pre-norm, norm1(x + attn) for post-norm);
    ffn_hidden: (B, T, d_ff) the feed-forward activations (after act, or act(gate) * up);
    ffn_output: (B, T, d) after W_2.
    """

    output: np.ndarray
    attention_weights: np.ndarray
    attention_output: np.ndarray
    after_attention: np.ndarray
    ffn_hidden: np.ndarray
    ffn_output: np.ndarray


def block_trace(x: np.ndarray, weights: BlockWeights, *, norm_first: bool,
                mask: np.ndarray | None = None) -> BlockTrace:
    """:func:`block` with its intermediate tensors, for drawing."""
    w = _weights(weights)
    x = _tokens("x", x, w.d_model)
    norm_first = checks.flag("norm_first", norm_first)
    b, t, d = x.shape
    addend = _mask_addend(mask, w.n_heads, w.n_kv_heads, t)
    y, saved = _block_forward(x.reshape(b * t, d), w, norm_first, b, addend)
    _, att, _, ff, a, mid, f = saved
    p = att[4].reshape(b, w.n_kv_heads, w.group_size, t, t).reshape(b, w.n_heads, t, t)
    return BlockTrace(y.reshape(b, t, d), p, a.reshape(b, t, d), mid.reshape(b, t, d),
                      ff[-1].reshape(b, t, w.d_ff), f.reshape(b, t, d))


def feed_forward(x: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """The block's feed-forward sublayer alone, x (..., d) -> (..., d): relu/gelu
    act(x W_up^T + b_up) W_down^T + b_down; swiglu/geglu (act(x W_gate^T) * (x W_up^T)) W_down^T."""
    w = _weights(weights)
    x = _array("x", x, min_ndim=1)
    if x.shape[-1] != w.d_model:
        raise ValueError(f"x: last axis must be d_model {w.d_model}, got {x.shape[-1]}")
    out, _ = _ffn(x.reshape(-1, w.d_model), w)
    return out.reshape(x.shape)


# ---- depth: gradients at initialisation -----------------------------------------------------------
@dataclass(frozen=True)
class GradientNorms:
    """Gradient norms through a stack of blocks (at initialisation for :func:`gradient_norms`), one
    forward and one backward pass.

    Loss L = sum(output * upstream): a fixed random read-out, so dL/d(output) = upstream exactly.
    weight_grad_norms: (depth,) Frobenius norm of dL/d(all parameters of block l), l = 0 (input
    side) .. depth-1; attention_grad_norms, ffn_grad_norms, norm_grad_norms: (depth,) the same over
    the attention projections and their biases, the feed-forward weights and biases, the two
    LayerNorms. stream_grad_norms: (depth+1,) Frobenius norm of dL/d(input of block l) over the
    whole (B, T, d) batch; entry depth is dL/d(output of the last block) (before the final norm).
    stream_norms: (depth+1,) Frobenius norm of those inputs (entry depth: the last block's output).
    final_norm: whether a LayerNorm (weight 1, bias 0, eps 1e-5) follows the last block.
    weights: the blocks (layer 0 first); inputs: x (B, T, d); upstream: (B, T, d); loss: L.
    """

    depth: int
    norm_first: bool
    final_norm: bool
    weight_grad_norms: np.ndarray
    attention_grad_norms: np.ndarray
    ffn_grad_norms: np.ndarray
    norm_grad_norms: np.ndarray
    stream_grad_norms: np.ndarray
    stream_norms: np.ndarray
    loss: float
    weights: tuple[BlockWeights, ...]
    inputs: np.ndarray
    upstream: np.ndarray


def gradient_norms(depth: int, d_model: int, n_heads: int, d_ff: int | None = None, *, norm_first: bool,
                   seq_len: int, batch: int, seed: int = 0, activation: str = "relu",
                   n_kv_heads: int | None = None, final_norm: bool | None = None) -> GradientNorms:
    """Per-layer gradient norms of a stack of ``depth`` blocks (1 .. 48) at initialisation.

    Block l's weights are drawn as :func:`init_block` draws them, from the streams
    ``[seed, 0, l, tag]`` (layer 0 is ``init_block(..., seed=seed)``; a layer's weights do not
    depend on the depth); inputs x ~ N(0, 1) (B, T, d); upstream gradient ~ N(0, 1) (B, T, d); no
    mask. final_norm None means: a final LayerNorm for pre-norm
    stacks (GPT-2, Xiong et al. 2020: without it the pre-norm output is the un-normalised
    residual stream), none for post-norm (whose last block already ends with a norm). torch's
    ``nn.TransformerEncoder`` adds one only when given ``norm=``. Forward and backward are done
    here by hand (numpy) and equal torch autograd through a stack of ``nn.TransformerEncoderLayer``
    loaded from the result's ``weights`` (for relu and gelu; any block in a functional torch
    rebuild). Cached; the arrays are read-only. :func:`gradient_norms_for` takes given weights.

    Memory: each block keeps about K = B T (9 d + c d_ff) + B h T^2 values for the backward pass
    (c = 1 for relu, 3 for gelu, 5 for the gated FFNs). Up to 32 MiB in all (_ARENA_MAX_BYTES) they are kept in
    reused memory; beyond, only each block's input is kept and the block is run again before its
    backward pass (gradient checkpointing, about 1/3 more time), depth * B T d + K values. More
    than MAX_STORED_VALUES (2^25) is refused (ValueError naming ``batch``).
    """
    depth = checks.integer("depth", depth, 1, MAX_DEPTH)
    d = checks.integer("d_model", d_model, 1, MAX_BLOCK_D_MODEL)
    h, g = _heads(d, n_heads, n_kv_heads)
    activation = _activation(activation)
    d_ff = _d_ff(d_ff, d, activation)
    norm_first = checks.flag("norm_first", norm_first)
    t = checks.integer("seq_len", seq_len, 1, MAX_POSITIONS)
    b = checks.integer("batch", batch, 1)
    seed = checks.integer("seed", seed, 0)
    final = norm_first if final_norm is None else checks.flag("final_norm", final_norm)
    stored = gradient_values(depth, d, h, d_ff, seq_len=t, batch=b, activation=activation, n_kv_heads=g)
    if stored > MAX_STORED_VALUES:
        raise ValueError(f"batch: the {depth} layers would keep {stored} values for the backward pass, more than "
                         f"{MAX_STORED_VALUES}; use a smaller batch, seq_len, d_model, d_ff or depth")
    return _gradient_norms(depth, d, h, g, d_ff, activation, norm_first, t, b, seed, final)


def gradient_values(depth: int, d_model: int, n_heads: int, d_ff: int | None = None, *, seq_len: int, batch: int,
                    activation: str = "relu", n_kv_heads: int | None = None) -> int:
    """How many values :func:`gradient_norms` keeps for its backward pass with these sizes (it
    refuses more than MAX_STORED_VALUES): a caller can check sizes before asking."""
    d = checks.integer("d_model", d_model, 1, MAX_BLOCK_D_MODEL)
    h, g = _heads(d, n_heads, n_kv_heads)
    activation = _activation(activation)
    b, t = checks.integer("batch", batch, 1), checks.integer("seq_len", seq_len, 1, MAX_POSITIONS)
    kept = _kept_per_layer(b, t, d, h, g, _d_ff(d_ff, d, activation), activation)
    return _stored_values([kept] * checks.integer("depth", depth, 1, MAX_DEPTH), b * t * d)


def _stored_values(kept: list[int], stream: int) -> int:
    """Values a pass keeps: every block's intermediates, or with checkpointing (see _backprop) every
    block's input and one block's intermediates."""
    total = sum(kept)
    return total if total <= _ARENA_MAX_BYTES // 8 else len(kept) * stream + max(kept)


def _kept_per_layer(b: int, t: int, d: int, h: int, g: int, d_ff: int, activation: str) -> int:
    """Values one block keeps for its backward pass (see _block_forward), batch b of t tokens."""
    n, kv = b * t, g * (d // h)
    ffn = {"relu": 1, "gelu": 3}.get(activation, 5) * d_ff
    return n * (4 * d + d + 2 * kv + (d if g < h else 0) + d + ffn) + b * h * t * t


@bounded_cache(maxsize=8, max_bytes=32 * 2 ** 20)
def _gradient_norms(depth: int, d: int, h: int, g: int, d_ff: int, activation: str, norm_first: bool,
                    t: int, b: int, seed: int, final: bool) -> GradientNorms:
    blocks = tuple(_init_block(d, h, g, d_ff, activation, seed, layer) for layer in range(depth))
    x = _read_only(np.random.default_rng([seed, _INPUTS, 0, 0]).standard_normal((b, t, d)))
    upstream = _read_only(np.random.default_rng([seed, _UPSTREAM, 0, 0]).standard_normal((b, t, d)))
    return _backprop(blocks, x, upstream, norm_first, final)


def gradient_norms_for(x: np.ndarray, blocks: Sequence[BlockWeights], upstream: np.ndarray, *, norm_first: bool,
                       final_norm: bool | None = None) -> GradientNorms:
    """:func:`gradient_norms` for given inputs x (B, T, d), blocks and upstream gradient (B, T, d):
    L = sum(stack(x) * upstream), with a final LayerNorm (weight 1, bias 0) when ``final_norm``
    (None: for pre-norm only). Not cached; the result holds read-only copies of x and upstream."""
    blocks = _blocks(blocks)
    x = _tokens("x", x, blocks[0].d_model)
    upstream = _shaped("upstream", upstream, x.shape)
    norm_first = checks.flag("norm_first", norm_first)
    final = norm_first if final_norm is None else checks.flag("final_norm", final_norm)
    b, t, _ = x.shape
    kept = [_kept_per_layer(b, t, w.d_model, w.n_heads, w.n_kv_heads, w.d_ff, w.activation) for w in blocks]
    stored = _stored_values(kept, x.size)
    if stored > MAX_STORED_VALUES:
        raise ValueError(f"x: the {len(blocks)} blocks would keep {stored} values for the backward pass, more than "
                         f"{MAX_STORED_VALUES}")
    return _backprop(blocks, _read_only(x.copy()), _read_only(upstream.copy()), norm_first, final)


def _backprop(blocks: tuple[BlockWeights, ...], x: np.ndarray, upstream: np.ndarray, norm_first: bool,
              final: bool) -> GradientNorms:
    """Forward through the stack keeping each block's intermediates, then backward by hand. When
    they would not fit in the arena (_ARENA_MAX_BYTES), only each block's input is kept and the
    block's forward pass is run again just before its backward pass (gradient checkpointing: one
    more forward pass, memory for one block): the same operations, the same numbers."""
    b, t, d = x.shape
    depth = len(blocks)
    checkpoint = sum(_kept_per_layer(b, t, w.d_model, w.n_heads, w.n_kv_heads, w.d_ff, w.activation)
                     for w in blocks) > _ARENA_MAX_BYTES // 8
    stream = x.reshape(b * t, d)
    stream_norms = np.empty(depth + 1)
    saved, inputs = [], []
    arena = _arena()
    for layer, w in enumerate(blocks):
        stream_norms[layer] = math.sqrt(_sq(stream))
        if checkpoint:
            stream = np.array(stream)  # kept; the arena is reused by the next block
            inputs.append(stream)
            stream, _ = _block_forward(stream, w, norm_first, b, None, work=arena.start())
        else:
            stream, s = _block_forward(stream, w, norm_first, b, None, work=arena)
            saved.append(s[:4])
    stream_norms[depth] = math.sqrt(_sq(stream))
    grad = upstream.reshape(b * t, d)
    out = stream
    if final:
        out, final_saved = _layer_norm(stream, np.ones(d), np.zeros(d))
        grad = _layer_norm_backward(grad, final_saved)[0]
    loss = float(np.dot(out.ravel(), upstream.ravel()))
    squares = np.empty((3, depth))
    stream_grads = np.empty(depth + 1)
    stream_grads[depth] = math.sqrt(_sq(grad))
    for layer in range(depth - 1, -1, -1):
        w = blocks[layer]
        if checkpoint:
            kept = _block_forward(inputs.pop(), w, norm_first, b, None, work=arena.start())[1][:4]
        else:
            kept = saved.pop()
        grad, *sq = _block_backward(grad, w, norm_first, b, kept, arena)
        squares[:, layer] = sq
        stream_grads[layer] = math.sqrt(_sq(grad))
    norms = np.sqrt(squares)
    return GradientNorms(depth, norm_first, final, _read_only(np.sqrt(squares.sum(axis=0))), _read_only(norms[0]),
                         _read_only(norms[1]), _read_only(norms[2]), _read_only(stream_grads),
                         _read_only(stream_norms), loss, blocks, x, upstream)


# ---- masks and decoding ---------------------------------------------------------------------------
def encoder_mask(n_positions: int) -> np.ndarray:
    """(T, T) all False: every token may attend to every token (True = may NOT attend).
    Cached, read-only."""
    return _mask("encoder", checks.integer("n_positions", n_positions, 1, MAX_MASK_POSITIONS), 0)


def decoder_mask(n_positions: int) -> np.ndarray:
    """(T, T) True above the diagonal: token i may not attend to j > i (causal; True = may NOT
    attend; = ~attention.causal_mask(T, T), = torch's
    ``nn.Transformer.generate_square_subsequent_mask(T) == -inf``). Cached, read-only."""
    return _mask("decoder", checks.integer("n_positions", n_positions, 1, MAX_MASK_POSITIONS), 0)


def prefix_lm_mask(n_positions: int, prefix: int) -> np.ndarray:
    """(T, T) prefix LM (T5, UniLM): the first ``prefix`` tokens see each other in both directions,
    the rest causally. True = may NOT attend: token i may attend to j when j <= i or j < prefix.
    prefix 0 is :func:`decoder_mask`, prefix T :func:`encoder_mask`. Cached, read-only."""
    n = checks.integer("n_positions", n_positions, 1, MAX_MASK_POSITIONS)
    return _mask("prefix", n, checks.integer("prefix", prefix, 0, n))


@bounded_cache(maxsize=32, max_bytes=8 * 2 ** 20)
def _mask(kind: str, n: int, prefix: int) -> np.ndarray:
    if kind == "encoder":
        return _read_only(np.zeros((n, n), dtype=bool))
    blocked = ~causal_mask(n, n)
    blocked[:, :prefix] = False
    return _read_only(blocked)


def _blocks(value: object) -> tuple[BlockWeights, ...]:
    try:
        blocks = tuple(value)
    except TypeError:
        raise ValueError(f"blocks: must be a sequence of BlockWeights, got {type(value).__name__}") from None
    if not blocks:
        raise ValueError("blocks: needs at least one block")
    for i, w in enumerate(blocks):
        _weights(w, f"blocks[{i}]")
        if w.d_model != blocks[0].d_model:
            raise ValueError(f"blocks[{i}]: d_model {w.d_model} differs from blocks[0]'s {blocks[0].d_model}")
    return blocks


def causal_parallel(x: np.ndarray, blocks: Sequence[BlockWeights], norm_first: bool = False) -> np.ndarray:
    """The stack of blocks on the whole sequence at once with :func:`decoder_mask`: x (B, T, d) ->
    (B, T, d). What training computes; decoding must give the same rows."""
    blocks = _blocks(blocks)
    x = _tokens("x", x, blocks[0].d_model)
    norm_first = checks.flag("norm_first", norm_first)
    return _parallel(x, blocks, norm_first, None)


def _parallel(x: np.ndarray, blocks: tuple[BlockWeights, ...], norm_first: bool, count: _Count | None) -> np.ndarray:
    b, t, d = x.shape
    addend = np.where(_mask("decoder", t, 0), -np.inf, 0.0)
    h = x.reshape(b * t, d)
    arena = _arena()
    for w in blocks:
        h, _ = _block_forward(h, w, norm_first, b, addend, count=count, work=arena)
    return np.array(h.reshape(b, t, d))  # a copy: h may live in the arena


@dataclass(frozen=True)
class DecodeTrace:
    """Token-by-token decoding (see :func:`decode_steps`).

    outputs: (B, T, d) the last block's output for each position; macs: (T,) multiply-adds of the
    matrix products actually done at each step, for the whole batch (B times :class:`DecodeCost`'s
    per-sequence count); keys: (T,) the keys each new query attends to at each step (1 .. T);
    cache_values: (T,) values held in the KV cache after each step, all layers, per sequence
    (2 * sum over layers of n_kv_heads * d_k * (t + 1); 0 without the cache); cache: whether the
    KV cache was used.
    """

    outputs: np.ndarray
    macs: np.ndarray
    keys: np.ndarray
    cache_values: np.ndarray
    cache: bool


def decode_steps(x: np.ndarray, blocks: Sequence[BlockWeights], *, norm_first: bool = False,
                 cache: bool = True) -> DecodeTrace:
    """Process x (B, T, d) one position at a time through the stack, as autoregressive generation
    does (the next input is given here, teacher-forced). With ``cache`` each step runs the new
    token only, keeping every layer's keys and values (B, n_kv_heads, t, d_k) in a KV cache; without
    it each step reruns the whole prefix 0 .. t through every layer (the dense causal pass, all
    (t+1)^2 scores) and keeps the last row. Both equal :func:`causal_parallel` row by row."""
    blocks = _blocks(blocks)
    x = _tokens("x", x, blocks[0].d_model)
    norm_first = checks.flag("norm_first", norm_first)
    cache = checks.flag("cache", cache)
    b, t, d = x.shape
    outputs = np.empty_like(x)
    macs = np.empty(t, dtype=np.int64)
    per_token = 2 * sum(w.n_kv_heads * w.d_k for w in blocks)
    caches = [np.empty((2, b, w.n_kv_heads, t, w.d_k)) for w in blocks] if cache else []
    for step in range(t):
        count = _Count()
        if cache:
            h, arena = x[:, step], _arena()
            for w, kv in zip(blocks, caches):
                h, _ = _block_forward(h, w, norm_first, b, None, kv, step, count, arena)
            outputs[:, step] = h
        else:
            outputs[:, step] = _parallel(x[:, :step + 1], blocks, norm_first, count)[:, -1]
        macs[step] = count.macs
    keys = np.arange(1, t + 1)
    cache_values = per_token * keys if cache else np.zeros(t, dtype=np.int64)
    return DecodeTrace(outputs, macs, keys, cache_values, cache)


def decode(x: np.ndarray, blocks: Sequence[BlockWeights], *, norm_first: bool = False,
           cache: bool = True) -> np.ndarray:
    """The outputs (B, T, d) of decoding x one token at a time, with a KV cache or recomputing the
    prefix (see :func:`decode_steps`); equal to :func:`causal_parallel` row by row."""
    return decode_steps(x, blocks, norm_first=norm_first, cache=cache).outputs


@dataclass(frozen=True)
class DecodeCost:
    """The cost of generating with and without a KV cache, per sequence, at context length n.

    The step that produces position n (1-based; its query attends to n keys) costs, per layer, in
    multiply-adds (MACs; FLOPs = 2 MACs):
      with the cache: d (d + 2 g d_k) [q, k, v of the new token] + n d [q.k over h heads]
      + n d [weights @ v] + d^2 [W_o] + c d d_ff [FFN, c = 2, or 3 when gated];
    without it the whole prefix is recomputed densely: n d (d + 2 g d_k) + n^2 d + n^2 d + n d^2
      + n c d d_ff.
    flops_with_cache, flops_without_cache: that step, all layers, 2 per MAC; macs_*: the same in
    MACs; total_flops_with_cache, total_flops_without_cache: generating positions 1 .. n, the sum
    of the steps (quadratic in n with the cache, cubic without). cache_bytes: 2 (K and V) *
    n_layers * n_kv_heads * d_k * n * bytes_per_value, per sequence (float). d_ff: the width used.
    Elementwise work is not counted (see the module docstring); neither is an embedding or LM head.
    """

    macs_with_cache: int
    macs_without_cache: int
    flops_with_cache: int
    flops_without_cache: int
    total_flops_with_cache: int
    total_flops_without_cache: int
    cache_bytes: float
    d_ff: int


def decode_cost(n_layers: int, d_model: int, n_heads: int, n_kv_heads: int | None, seq_len: int,
                bytes_per_value: float, *, d_ff: int | None = None, activation: str = "relu") -> DecodeCost:
    """FLOPs per generated token with and without a KV cache, and the cache's size (see
    :class:`DecodeCost`). n_kv_heads None = n_heads; d_ff None = 4 d_model (relu/gelu) or
    :func:`default_d_ff` for gated activations; bytes_per_value e.g. 2 for FP16/BF16, 1 for FP8."""
    layers = checks.integer("n_layers", n_layers, 1, 100_000)
    d = checks.integer("d_model", d_model, 1, MAX_FORMULA_SIZE)
    h, g = _heads(d, n_heads, n_kv_heads)
    n = checks.integer("seq_len", seq_len, 1, 1 << 30)
    size = checks.number("bytes_per_value", bytes_per_value, 0.0, 1e6, lo_open=True)
    activation = _activation(activation)
    width = _d_ff(d_ff, d, activation, MAX_FORMULA_SIZE)
    d_k = d // h
    per_token = d * (d + 2 * g * d_k) + d * d + (3 if activation in GATED else 2) * d * width
    with_cache = layers * (per_token + 2 * n * d)
    without = layers * (n * per_token + 2 * n * n * d)
    sum_n, sum_n2 = n * (n + 1) // 2, n * (n + 1) * (2 * n + 1) // 6
    total_with = layers * (n * per_token + 2 * sum_n * d)
    total_without = layers * (sum_n * per_token + 2 * sum_n2 * d)
    return DecodeCost(with_cache, without, 2 * with_cache, 2 * without, 2 * total_with, 2 * total_without,
                      2.0 * layers * g * d_k * n * size, width)


# ---- learning-rate warm-up ------------------------------------------------------------------------
def warmup_schedule(steps: int, d_model: int, warmup_steps: int) -> np.ndarray:
    """The original Transformer's learning rate (Vaswani et al. 2017, eq. 3), (steps,), entry s-1
    for step s = 1 .. steps: lr = d^-0.5 min(s^-0.5, s warmup^-1.5). It rises linearly to its peak
    d^-0.5 warmup^-0.5 at s = warmup_steps, then decays as s^-0.5. Cached, read-only."""
    return _warmup(checks.integer("steps", steps, 1, 1_000_000), checks.integer("d_model", d_model, 1, 1 << 20),
                   checks.integer("warmup_steps", warmup_steps, 1, 10_000_000))


@bounded_cache(maxsize=16, max_bytes=8 * 2 ** 20)
def _warmup(steps: int, d: int, warmup: int) -> np.ndarray:
    s = np.arange(1, steps + 1, dtype=np.float64)
    return _read_only(d ** -0.5 * np.minimum(s ** -0.5, s * warmup ** -1.5))
