"""Scaled dot-product and multi-head attention, with padding, causal and custom masks.

Qt-free and torch-free (numpy + stdlib), float64 throughout. The numbers equal
``torch.nn.functional.scaled_dot_product_attention`` and ``torch.nn.MultiheadAttention``
(``bias=False``) loaded with the same weights; the tests check both.

Masks follow torch's boolean ``attn_mask`` of ``scaled_dot_product_attention``: shape
(n_q, n_k), ``True`` = the query may attend to that key. (``nn.MultiheadAttention`` uses the
opposite convention, ``True`` = blocked; convert with ``~mask``.) Where torch returns NaN, for a
query whose keys are all masked, this module returns weights and output of 0 and lists the
row in ``fully_masked_rows``.

Tokens: whitespace separates words, and each CJK character (ideographs, kana, CJK and
full-width punctuation) is its own token. Embeddings are seeded by the token's CRC-32 and the
seed, so a token has the same vector on every run and machine.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "MAX_TOKENS",
    "PAD",
    "AttentionResult",
    "MultiHeadResult",
    "MultiHeadWeights",
    "Saturation",
    "causal_mask",
    "combine_masks",
    "embed",
    "init_weights",
    "multi_head",
    "pad",
    "padding_mask",
    "random_scores",
    "saturation",
    "scaled_dot_product",
    "sinusoidal_encoding",
    "softmax",
    "tokenize",
]

PAD = "[PAD]"
MAX_TOKENS = 128
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


# ---- tokens and embeddings ---------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens: runs of non-space, non-CJK characters, and single CJK characters.

    ``tokenize("the cat 坐在垫子上")`` -> ``["the", "cat", "坐", "在", "垫", "子", "上"]``.
    """
    return _TOKEN.findall(text)


def pad(tokens: list[str], length: int) -> list[str]:
    """``tokens`` followed by ``[PAD]`` up to ``length`` (unchanged when already that long)."""
    return list(tokens) + [PAD] * max(length - len(tokens), 0)


def _token_vector(token: str, d_model: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([zlib.crc32(token.encode("utf-8")), seed])
    return rng.standard_normal(d_model) / math.sqrt(d_model)


def sinusoidal_encoding(n: int, d: int) -> np.ndarray:
    """Vaswani et al.'s positional encoding, (n, d): PE[p, 2i] = sin(p / 10000^(2i/d)),
    PE[p, 2i+1] = cos(p / 10000^(2i/d))."""
    position = np.arange(n, dtype=np.float64)[:, None]
    rate = 10000.0 ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    angles = position * rate
    out = np.empty((n, d))
    out[:, 0::2] = np.sin(angles)
    out[:, 1::2] = np.cos(angles[:, : d // 2])
    return out


def embed(tokens: list[str], d_model: int, seed: int = 0, positional: bool = True,
          scale: bool = False) -> np.ndarray:
    """Token embeddings, (len(tokens), d_model).

    Each token's vector is N(0, 1/d_model) per component (the usual embedding initialisation),
    fixed by the token string and ``seed``; ``scale`` multiplies it by sqrt(d_model) (the
    Transformer's embedding scale, which brings it to the size of the positional encoding);
    ``positional`` adds :func:`sinusoidal_encoding`.
    """
    x = np.array([_token_vector(t, d_model, seed) for t in tokens]).reshape(len(tokens), d_model)
    if scale:
        x = x * math.sqrt(d_model)
    if positional:
        x = x + sinusoidal_encoding(len(tokens), d_model)
    return x


# ---- masks --------------------------------------------------------------------------------------
def causal_mask(n_q: int, n_k: int) -> np.ndarray:
    """(n_q, n_k) boolean, True on and below the diagonal: query i sees keys 0..i (torch's
    ``is_causal``: ``torch.ones(n_q, n_k).tril()``)."""
    return np.tri(n_q, n_k, dtype=bool)


def padding_mask(key_tokens: list[str], n_q: int) -> np.ndarray:
    """(n_q, n_k) boolean, False in every column whose key is ``[PAD]`` (a key padding mask)."""
    real = np.array([t != PAD for t in key_tokens], dtype=bool)
    return np.broadcast_to(real, (n_q, len(key_tokens))).copy()


def combine_masks(*masks: np.ndarray | None) -> np.ndarray | None:
    """Cells visible in every given mask (None entries are ignored; all None gives None)."""
    given = [m for m in masks if m is not None]
    if not given:
        return None
    return np.logical_and.reduce(np.broadcast_arrays(*given))


# ---- attention ----------------------------------------------------------------------------------
def softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; -inf entries get weight 0 and an all -inf row is all 0."""
    top = np.max(scores, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(scores - top)
    total = np.sum(e, axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@dataclass(frozen=True)
class AttentionResult:
    """One scaled dot-product attention.

    scores: (..., n_q, n_k) scale * q.k, -inf where masked (the temperature is not in them).
    weights: (..., n_q, n_k) softmax(scores / temperature); each row sums to 1 (all 0 if fully masked).
    output: (..., n_q, d_v) weights @ v.
    fully_masked_rows: indices of the queries that see no key (over the last two axes).
    """

    scores: np.ndarray
    weights: np.ndarray
    output: np.ndarray
    fully_masked_rows: tuple[int, ...]


def scaled_dot_product(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray | None = None,
                       scale: float | None = None, temperature: float = 1.0) -> AttentionResult:
    """softmax(scale * q k^T / temperature, masked) v; the temperature is softmax's, the scores are
    reported without it.

    q: (..., n_q, d_k); k: (..., n_k, d_k); v: (..., n_k, d_v); mask: boolean broadcastable to
    (..., n_q, n_k), True = may attend. ``scale=None`` means 1/sqrt(d_k). With temperature 1
    this is ``F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)``.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature: must be a finite number > 0, got {temperature!r}")
    d_k = q.shape[-1]
    factor = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    scores = (q @ np.swapaxes(k, -1, -2)) * factor
    fully: tuple[int, ...] = ()
    if mask is not None:
        mask = np.broadcast_to(np.asarray(mask, dtype=bool), scores.shape)
        scores = np.where(mask, scores, -np.inf)
        seen = np.any(mask, axis=-1).reshape(-1, scores.shape[-2])
        fully = tuple(int(i) for i in np.flatnonzero(~np.all(seen, axis=0)))
    weights = softmax(scores / temperature if temperature != 1 else scores)
    return AttentionResult(scores, weights, weights @ v, fully)


@dataclass(frozen=True)
class MultiHeadWeights:
    """Projections of multi-head attention, each (d_model, d_model), applied as x @ W.T (torch's
    ``nn.Linear``): ``in_proj_weight = cat(w_q, w_k, w_v)``, ``out_proj.weight = w_o``."""

    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    w_o: np.ndarray
    heads: int

    @property
    def d_model(self) -> int:
        return self.w_q.shape[0]

    @property
    def d_k(self) -> int:
        return self.d_model // self.heads


def init_weights(d_model: int, heads: int, seed: int = 0, tie_qk: bool = False) -> MultiHeadWeights:
    """Seeded Xavier-uniform projections (as torch initialises ``in_proj_weight``), bound
    sqrt(6 / (2 d_model)). ``tie_qk`` uses W_K = W_Q, which makes self-attention scores symmetric.
    Raises ValueError when ``heads`` does not divide ``d_model``."""
    if d_model < 1 or heads < 1 or d_model % heads:
        raise ValueError(f"heads: {heads} does not divide d_model = {d_model}")
    bound = math.sqrt(6.0 / (2 * d_model))
    w_q, w_k, w_v, w_o = (np.random.default_rng([seed, i]).uniform(-bound, bound, (d_model, d_model))
                          for i in range(4))
    return MultiHeadWeights(w_q, w_q if tie_qk else w_k, w_v, w_o, heads)


@dataclass(frozen=True)
class MultiHeadResult:
    """Multi-head attention of n_q queries over n_k keys.

    q, k, v: (heads, n, d_k) per-head projections; scores, weights: (heads, n_q, n_k) as in
    :class:`AttentionResult`; mean_weights: (n_q, n_k) the head average (what
    ``nn.MultiheadAttention`` returns as its weights); output: (n_q, d_model) after W_O.
    """

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray
    weights: np.ndarray
    mean_weights: np.ndarray
    output: np.ndarray
    fully_masked_rows: tuple[int, ...]


def _split(x: np.ndarray, heads: int) -> np.ndarray:
    n, d = x.shape
    return x.reshape(n, heads, d // heads).transpose(1, 0, 2)


def multi_head(x_q: np.ndarray, x_kv: np.ndarray, weights: MultiHeadWeights, mask: np.ndarray | None = None,
               scale: float | None = None, temperature: float = 1.0) -> MultiHeadResult:
    """Multi-head attention: queries from ``x_q`` (n_q, d_model), keys and values from ``x_kv``
    (n_k, d_model); ``x_kv is x_q`` is self-attention, anything else cross-attention. ``mask``
    (n_q, n_k), True = may attend, is shared by every head; ``scale`` and ``temperature`` as in
    :func:`scaled_dot_product`."""
    h = weights.heads
    q, k, v = _split(x_q @ weights.w_q.T, h), _split(x_kv @ weights.w_k.T, h), _split(x_kv @ weights.w_v.T, h)
    result = scaled_dot_product(q, k, v, mask=mask, scale=scale, temperature=temperature)
    joined = result.output.transpose(1, 0, 2).reshape(x_q.shape[0], weights.d_model)
    return MultiHeadResult(q, k, v, result.scores, result.weights, result.weights.mean(axis=0),
                           joined @ weights.w_o.T, result.fully_masked_rows)


# ---- why sqrt(d_k) -------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def random_scores(d_ks: tuple[int, ...], n_keys: int, samples: int = 1024, seed: int = 0) -> np.ndarray:
    """Unscaled scores q.k of random q, k ~ N(0, I_dk), (len(d_ks), rows, n_keys) with rows =
    max(samples // n_keys, 16): for each d_k, each row is one query against n_keys keys.

    Drawn without the d_k-long vectors: given q, each q.k is N(0, |q|^2) and the keys are
    independent, so a row is |q| * z with |q|^2 ~ chi-square(d_k) and z ~ N(0, I_n_keys). The rows'
    |q|^2 are stratified (the quantiles (i + 1/2) / rows of a large chi-square sample), so even a
    few rows cover the distribution evenly. The standard deviation of the scores is sqrt(d_k).
    Cached; read-only."""
    rows = max(samples // n_keys, 16)
    levels = (np.arange(rows) + 0.5) / rows
    out = np.empty((len(d_ks), rows, n_keys))
    for i, d_k in enumerate(d_ks):
        sample = _chi_square_sample(d_k, seed)
        norm = np.sqrt(np.interp(levels * (len(sample) - 1), np.arange(len(sample)), sample))  # = np.quantile
        rng = np.random.default_rng([seed, d_k, n_keys])
        out[i] = norm[:, None] * rng.standard_normal((rows, n_keys))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=64)
def _chi_square_sample(d_k: int, seed: int, size: int = 20_000) -> np.ndarray:
    """``size`` draws of chi-square(d_k), sorted; shared by every number of keys (drawing and
    sorting them is most of the work of :func:`random_scores`)."""
    sample = np.sort(np.random.default_rng([seed, d_k]).chisquare(d_k, size))
    sample.setflags(write=False)
    return sample


@dataclass(frozen=True)
class Saturation:
    """How saturated softmax gets, per d_k, averaged over the rows of random scores.

    d_k: (m,); score_std: (m,) standard deviation of the logits softmax sees; entropy: (m,)
    mean row entropy in nats, divided by log(n_keys) (1 = uniform, 0 = one-hot); max_weight:
    (m,) mean of each row's largest weight; jacobian_norm: (m,) mean Frobenius norm of the
    softmax Jacobian diag(p) - p p^T with respect to the logits (0 when one-hot: no gradient).
    """

    d_k: np.ndarray
    score_std: np.ndarray
    entropy: np.ndarray
    max_weight: np.ndarray
    jacobian_norm: np.ndarray


def saturation(scores: np.ndarray, d_ks: tuple[int, ...], scaled: bool = True, temperature: float = 1.0) -> Saturation:
    """Softmax saturation of ``scores`` (m, rows, n) from :func:`random_scores` (finite, no ties at a
    row's maximum) when divided by sqrt(d_k) (``scaled``) or not, and by ``temperature``."""
    d = np.asarray(d_ks, dtype=float)
    factor = (1 / np.sqrt(d) if scaled else np.ones_like(d)) / temperature
    logits = scores * factor[:, None, None]
    z = logits - logits.max(axis=-1, keepdims=True)  # 0 at each row's maximum, < 0 elsewhere
    e = np.exp(z)
    total = e.sum(axis=-1, keepdims=True)
    p = e / total
    n = p.shape[-1]
    entropy = -np.sum(p * (z - np.log(total)), axis=-1).mean(axis=-1) / math.log(n) if n > 1 else np.zeros(len(d))
    others = np.where(z < 0, p, 0.0)
    top = 1.0 / total[..., 0]  # the maximum's weight: e = 1 there
    return Saturation(d, logits.reshape(len(d), -1).std(axis=-1), entropy, top.mean(axis=-1),
                      _jacobian_norm(top, others).mean(axis=-1))


def _jacobian_norm(a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """||diag(p) - p p^T||_F per row, given each row's largest weight a (...,) and the other weights
    r (..., n) (0 in a's place). Written so that nearly one-hot rows lose no precision: 1 - a is
    the sum of the others, not a difference. ||J||^2 = (a(1-a))^2 + sum (r(1-r))^2 + 2 a^2 sum r^2
    + (sum r^2)^2 - sum r^4."""
    rest = np.sum(r, axis=-1)
    r2 = r * r
    s2, s4 = np.sum(r2, axis=-1), np.sum(r2 * r2, axis=-1)
    squared = (a * rest) ** 2 + np.sum((r - r2) ** 2, axis=-1) + 2 * a * a * s2 + s2 * s2 - s4
    return np.sqrt(np.maximum(squared, 0.0))
