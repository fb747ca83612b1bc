"""Batch, layer, instance, group and RMS normalization: what each averages over, which cells
share a mean and variance, and how batch norm's statistics depend on the batch.

Qt-free and torch-free (numpy + stdlib), float64. The numbers equal torch's (tested to 1e-10)::

    batch     F.batch_norm(x, None, None, w, b, training=True)   per channel over N, H, W
    layer     F.layer_norm(x, x.shape[1:], w, b)                 per sample over C, H, W
    instance  F.instance_norm(x, weight=w, bias=b)               per (sample, channel) over H, W
    group     F.group_norm(x, G, w, b)                           per (sample, group) over C/G channels, H, W
    rms       F.rms_norm(x, x.shape[1:], w, eps)                 per sample over C, H, W

y = (x - mean) / sqrt(var + eps) * weight + bias with the biased variance. RMS norm does not
centre: mean 0, var = mean(x^2) (+ bias, which torch's RMSNorm lacks: pass None to match).

Layouts. "NCHW": x is (N, C, *spatial), e.g. (N, C, H, W), or (N, C, L) and (N, C) as
BatchNorm1d takes them. "NTD": x is (B, T, D), B sentences of T tokens with D features; layer and
rms norm work per token over D (``F.layer_norm(x, (D,))``), batch, instance and group norm are
torch's on ``x.transpose(1, 2)``. A bool ``mask`` (B, T) marks the real tokens; with
``include_padding=False`` batch norm takes its statistics from the real tokens only (padded
tokens are still normalized, with them). Other kinds ignore the flag: layer and rms norm never
mix tokens, instance and group norm count padding as torch does on the padded tensor.

Where torch refuses (batch norm in training with one value per channel, instance norm over one
cell), the statistic is that value with var 0, so y = bias. Any constant set of cells gets mean =
the value exactly and var = 0, hence y = 0 (+ bias), never NaN.

Running statistics (:func:`update_running`) follow ``nn.BatchNorm``: new = (1 - momentum) old +
momentum batch, the variance with the unbiased batch variance, count / (count - 1) times the
biased; momentum None averages cumulatively (momentum = 1 / num_batches). With one value per
channel there is no unbiased variance (torch raises): the running variance is kept, the running
mean and num_batches update as usual.

x, weight, bias, running means and pad values must lie within +-MAX_ABS and eps >= MIN_EPS, so
no square, sum or quotient overflows and numpy never warns.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "KINDS",
    "LAYOUTS",
    "MAX_ABS",
    "MIN_EPS",
    "BatchNormState",
    "NormResult",
    "SpreadResult",
    "StreamResult",
    "batch_size_spread",
    "make_input",
    "make_sentences",
    "normalize",
    "running_stream",
    "shares_stats",
    "stat_index",
    "update_running",
]

KINDS = ("batch", "layer", "instance", "group", "rms")
LAYOUTS = ("NCHW", "NTD")
MAX_ABS = 1e100
MIN_EPS = 1e-100
_MAX_SHIFT = 10.0  # make_input's shifts and running_stream's drift: keeps exp() scales modest
# Seed tags: each random quantity has its own stream, np.random.default_rng([seed, tag, ...]).
_CHANNEL_OFFSET, _CHANNEL_SCALE, _SAMPLE_OFFSET, _SAMPLE_SCALE, _NOISE, _DRAWS, _STREAM = range(7)


# ---- validation -----------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _integer(name: str, value: object, low: int = 1) -> int:
    if not (_is_int(value) and value >= low):
        raise ValueError(f"{name}: must be an integer >= {low}, got {value!r}")
    return int(value)


def _real(name: str, value: object, low: float, high: float) -> float:
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high):
        raise ValueError(f"{name}: must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if not (isinstance(value, str) and value in options):
        raise ValueError(f"{name}: must be one of {', '.join(options)}, got {value!r}")
    return value


def _values(name: str, value: object, shape: tuple[int, ...] | None = None, limit: float = MAX_ABS) -> np.ndarray:
    """``value`` as a float64 array (no copy when it already is one; never written to)."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if array.size and np.max(np.abs(array)) > limit:
        raise ValueError(f"{name}: magnitudes above {limit:g} are not supported")
    return array


def _shape(name: str, shape: object, layout: str) -> tuple[int, ...]:
    try:
        shape = tuple(shape)
    except TypeError:
        raise ValueError(f"{name}: expected a tuple of sizes, got {shape!r}") from None
    if not all(_is_int(s) and s >= 1 for s in shape):
        raise ValueError(f"{name}: every size must be an integer >= 1, got {shape}")
    if layout == "NTD" and len(shape) != 3:
        raise ValueError(f"{name}: layout NTD needs (B, T, D), got {len(shape)} dimensions")
    if layout == "NCHW" and len(shape) < 2:
        raise ValueError(f"{name}: layout NCHW needs (N, C, *spatial), got {len(shape)} dimensions")
    return tuple(int(s) for s in shape)


def _channels(shape: tuple[int, ...], layout: str) -> int:
    """C in NCHW, D in NTD: the axis batch, instance and group norm (and their weights) are per."""
    return shape[-1] if layout == "NTD" else shape[1]


def _groups(kind: str, groups: object, shape: tuple[int, ...], layout: str) -> int | None:
    """The number of groups for group norm (validated); None for the other kinds, which ignore it."""
    if kind != "group":
        return None
    channels = _channels(shape, layout)
    if not (_is_int(groups) and groups >= 1 and channels % groups == 0):
        raise ValueError(f"groups: must be a positive integer dividing the {channels} channels, got {groups!r}")
    return int(groups)


# ---- which cells share statistics -----------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """x reshaped to ``view_shape`` so that each statistic reduces whole axes ``view_axes``."""

    view_shape: tuple[int, ...]
    view_axes: tuple[int, ...]
    stats_shape: tuple[int, ...]
    reduced_axes: tuple[int, ...]  # in x's own layout

    @property
    def keep_shape(self) -> tuple[int, ...]:
        return tuple(1 if i in self.view_axes else s for i, s in enumerate(self.view_shape))

    @property
    def count(self) -> int:
        return math.prod(self.view_shape[i] for i in self.view_axes)


def _plan(shape: tuple[int, ...], kind: str, layout: str, groups: int | None) -> _Plan:
    if layout == "NTD":
        b, t, d = shape
        if kind == "batch":
            return _Plan(shape, (0, 1), (d,), (0, 1))
        if kind in ("layer", "rms"):
            return _Plan(shape, (2,), (b, t), (2,))
        if kind == "instance":
            return _Plan(shape, (1,), (b, d), (1,))
        return _Plan((b, t, groups, d // groups), (1, 3), (b, groups), (1, 2))
    n, c, *spatial = shape
    rest = tuple(range(2, len(shape)))
    if kind == "batch":
        return _Plan(shape, (0, *rest), (c,), (0, *rest))
    if kind in ("layer", "rms"):
        return _Plan(shape, (1, *rest), (n,), (1, *rest))
    if kind == "instance":
        return _Plan(shape, rest, (n, c), rest)
    return _Plan((n, groups, c // groups, *spatial), tuple(range(2, len(shape) + 1)), (n, groups), (1, *rest))


def stat_index(kind: str, shape: Sequence[int], groups: int | None = None, layout: str = "NCHW") -> np.ndarray:
    """Integer array of ``shape``: each cell's statistic number, 0 .. n_stats - 1, in the order of
    :class:`NormResult`'s ``mean.ravel()``. Cells with the same number share mean and variance.

    NCHW: batch c; layer and rms n; instance n C + c; group n G + c // (C / G).
    NTD: batch d; layer and rms b T + t; instance b D + d; group b G + d // (D / G).
    """
    _choice("kind", kind, KINDS)
    _choice("layout", layout, LAYOUTS)
    shape = _shape("shape", shape, layout)
    plan = _plan(shape, kind, layout, _groups(kind, groups, shape, layout))
    labels = np.arange(math.prod(plan.stats_shape)).reshape(plan.keep_shape)
    return np.array(np.broadcast_to(labels, plan.view_shape)).reshape(shape)


def shares_stats(kind: str, shape: Sequence[int], index: Sequence[int], groups: int | None = None,
                 layout: str = "NCHW") -> np.ndarray:
    """Boolean array of ``shape``: the cells normalized with the same mean and variance as the
    cell at ``index`` (a tuple, one non-negative coordinate per axis)."""
    labels = stat_index(kind, shape, groups, layout)
    coordinates = tuple(index) if isinstance(index, (tuple, list)) else ()
    if len(coordinates) != labels.ndim or not all(_is_int(i) and 0 <= i < s for i, s in zip(coordinates, labels.shape)):
        raise ValueError(f"index: must be {labels.ndim} coordinates within {labels.shape}, got {index!r}")
    return labels == labels[coordinates]


# ---- normalization --------------------------------------------------------------------------------
@dataclass(frozen=True)
class NormResult:
    """One normalization. Arrays are float64 and read-only.

    y: x's shape, the output. mean, var: the statistics, shaped batch (C,), layer and rms (N,)
    (NTD: (B, T)), instance (N, C), group (N, G); var is the biased variance used (rms: the mean
    square, and mean is 0). reduced_axes: the axes of x averaged over (group norm reduces the
    channel axis only within each group). n_stats: the number of statistics. count: the cells
    behind each statistic (NTD batch norm without padding: the real tokens; with running
    statistics: the cells each one is applied to).
    """

    y: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    reduced_axes: tuple[int, ...]
    n_stats: int
    count: int


def _moments(values: np.ndarray, axes: tuple[int, ...], rms: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and biased variance over ``axes`` (keepdims); rms: 0 and the mean square."""
    if rms:
        square = np.mean(np.square(values), axis=axes, keepdims=True)
        return np.zeros_like(square), square
    mean = np.mean(values, axis=axes, keepdims=True)
    top = np.max(values, axis=axes, keepdims=True)
    # The sum's rounding would give a constant a mean a hair off its value and a tiny variance.
    mean = np.where(top == np.min(values, axis=axes, keepdims=True), top, mean)
    return mean, np.mean(np.square(values - mean), axis=axes, keepdims=True)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def normalize(x: np.ndarray, kind: str, *, groups: int | None = None, eps: float = 1e-5,
              weight: np.ndarray | None = None, bias: np.ndarray | None = None, layout: str = "NCHW",
              mask: np.ndarray | None = None, include_padding: bool = True,
              running: BatchNormState | None = None) -> NormResult:
    """Normalize ``x`` with ``kind`` (one of :data:`KINDS`) in ``layout`` (see the module doc).

    weight, bias: NCHW layer and rms norm x.shape[1:], otherwise (C,) (NTD: (D,)); None = 1 and 0.
    groups: group norm's G, dividing C (NTD: D); ignored by the other kinds. mask: NTD only, (B, T)
    bool, True = real token, at least one. running: a :class:`BatchNormState` puts batch norm in
    evaluation mode, y = (x - running_mean) / sqrt(running_var + eps) * w + b, and the result's
    mean and var are the running ones. x is never modified.
    """
    _choice("kind", kind, KINDS)
    _choice("layout", layout, LAYOUTS)
    x = _values("x", x)
    shape = _shape("x", x.shape, layout)
    groups = _groups(kind, groups, shape, layout)
    if not (isinstance(eps, numbers.Real) and not isinstance(eps, bool) and MIN_EPS <= eps < math.inf):
        raise ValueError(f"eps: must be a finite number >= {MIN_EPS:g}, got {eps!r}")
    channels = _channels(shape, layout)
    per_sample = layout == "NCHW" and kind in ("layer", "rms")
    affine_shape = shape[1:] if per_sample else (channels,)
    affine_broadcast = affine_shape if per_sample or layout == "NTD" else (channels,) + (1,) * (len(shape) - 2)
    weight = None if weight is None else _values("weight", weight, affine_shape).reshape(affine_broadcast)
    bias = None if bias is None else _values("bias", bias, affine_shape).reshape(affine_broadcast)
    if mask is not None:
        if layout != "NTD":
            raise ValueError("mask: only layout NTD has padding to mask")
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != shape[:2]:
            raise ValueError(f"mask: expected a bool array of shape {shape[:2]}, got {mask.dtype} {mask.shape}")
        if not mask.any():
            raise ValueError("mask: needs at least one real token (True), got only padding")
    if not isinstance(include_padding, bool):
        raise ValueError(f"include_padding: must be True or False, got {include_padding!r}")

    plan = _plan(shape, kind, layout, groups)
    view = x.reshape(plan.view_shape)
    count = plan.count
    if running is not None:
        if kind != "batch":
            raise ValueError(f"running: only batch norm has running statistics, kind is {kind!r}")
        if not isinstance(running, BatchNormState):
            raise ValueError(f"running: expected a BatchNormState, got {type(running).__name__}")
        if running.running_mean.shape != (channels,):
            raise ValueError(f"running: has {running.running_mean.shape[0]} channels, x has {channels}")
        mean = running.running_mean.reshape(plan.keep_shape)
        var = running.running_var.reshape(plan.keep_shape)
    elif kind == "batch" and mask is not None and not include_padding:
        real = x[mask]  # (real tokens, D)
        mean, var = (m.reshape(plan.keep_shape) for m in _moments(real, (0,), rms=False))
        count = real.shape[0]
    else:
        mean, var = _moments(view, plan.view_axes, rms=kind == "rms")
    y = ((view - mean) / np.sqrt(var + eps)).reshape(shape)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return NormResult(_frozen(y), _frozen(mean.reshape(plan.stats_shape)), _frozen(var.reshape(plan.stats_shape)),
                      plan.reduced_axes, math.prod(plan.stats_shape), count)


# ---- running statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchNormState:
    """Batch norm's running statistics, as ``nn.BatchNorm``'s buffers: running_mean and
    running_var (C,) (read-only float64 copies), num_batches = num_batches_tracked."""

    running_mean: np.ndarray
    running_var: np.ndarray
    num_batches: int = 0

    def __post_init__(self) -> None:
        mean = np.array(_values("running_mean", self.running_mean))
        if mean.ndim != 1 or mean.size == 0:
            raise ValueError(f"running_mean: expected shape (C,), got {mean.shape}")
        var = np.array(_values("running_var", self.running_var, mean.shape, limit=math.inf))
        if np.any(var < 0):
            raise ValueError("running_var: a variance cannot be negative")
        object.__setattr__(self, "running_mean", _frozen(mean))
        object.__setattr__(self, "running_var", _frozen(var))
        object.__setattr__(self, "num_batches", _integer("num_batches", self.num_batches, 0))

    @classmethod
    def initial(cls, channels: int) -> BatchNormState:
        """torch's initial buffers: mean 0, variance 1, no batches seen."""
        channels = _integer("channels", channels)
        return cls(np.zeros(channels), np.ones(channels), 0)


def _ema_step(mean: np.ndarray, var: np.ndarray, num_batches: int, batch_mean: np.ndarray, batch_var: np.ndarray,
              count: int, momentum: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Running mean and variance after batch number ``num_batches`` (1, 2, ...), given its mean
    and biased variance over ``count`` cells."""
    factor = 1.0 / num_batches if momentum is None else momentum
    if count > 1:
        var = (1.0 - factor) * var + factor * (batch_var * (count / (count - 1)))
    return (1.0 - factor) * mean + factor * batch_mean, var


def update_running(state: BatchNormState, x: np.ndarray, momentum: float | None = 0.1, *, layout: str = "NCHW",
                   mask: np.ndarray | None = None, include_padding: bool = True) -> BatchNormState:
    """The state after batch norm in training mode has seen ``x`` (as ``nn.BatchNorm``'s forward).

    momentum in [0, 1], or None for the cumulative average. With one value per channel the
    running variance is kept (see the module doc). mask, include_padding: as in :func:`normalize`.
    """
    if not isinstance(state, BatchNormState):
        raise ValueError(f"state: expected a BatchNormState, got {type(state).__name__}")
    momentum = None if momentum is None else _real("momentum", momentum, 0.0, 1.0)
    batch = normalize(x, "batch", layout=layout, mask=mask, include_padding=include_padding)
    if batch.mean.shape != state.running_mean.shape:
        raise ValueError(f"state: has {state.running_mean.shape[0]} channels, x has {batch.mean.shape[0]}")
    num_batches = state.num_batches + 1
    mean, var = _ema_step(state.running_mean, state.running_var, num_batches, batch.mean, batch.var, batch.count,
                          momentum)
    return BatchNormState(mean, var, num_batches)


# ---- inputs for the views -------------------------------------------------------------------------
def _normal(seed: int, *tags: int, size: int | tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng([seed, *tags]).standard_normal(size)


def make_input(shape: Sequence[int], *, seed: int = 0, channel_shift: float = 2.0, sample_shift: float = 1.0,
               layout: str = "NCHW") -> np.ndarray:
    """A float64 tensor of ``shape`` whose channels and samples differ in offset and scale::

        x[n, c, ...] = a_n b_c z[n, c, ...] + channel_shift m_c + sample_shift s_n
        b_c = exp(channel_shift u_c / 4),   a_n = exp(sample_shift v_n / 4)

    with m, u (per channel), s, v (per sample) and z standard normal. NTD: the channel is the
    feature d (last axis) and the sample the sentence b. Each quantity has its own stream of
    ``np.random.default_rng([seed, tag])`` (z: one per channel) drawn in index order, so a larger
    N or C keeps the first samples and channels. Shifts in [0, 10].
    """
    layout = _choice("layout", layout, LAYOUTS)
    shape = _shape("shape", shape, layout)
    seed = _integer("seed", seed, 0)
    channel_shift = _real("channel_shift", channel_shift, 0.0, _MAX_SHIFT)
    sample_shift = _real("sample_shift", sample_shift, 0.0, _MAX_SHIFT)
    samples, channels = shape[0], _channels(shape, layout)
    channel_axis = len(shape) - 1 if layout == "NTD" else 1
    z = np.moveaxis(np.stack([_normal(seed, _NOISE, c, size=shape[:channel_axis] + shape[channel_axis + 1:])
                              for c in range(channels)], axis=1), 1, channel_axis)
    channel = [1] * len(shape)
    channel[channel_axis] = channels
    sample = (samples,) + (1,) * (len(shape) - 1)
    b = np.exp(channel_shift / 4 * _normal(seed, _CHANNEL_SCALE, size=channels)).reshape(channel)
    m = _normal(seed, _CHANNEL_OFFSET, size=channels).reshape(channel)
    a = np.exp(sample_shift / 4 * _normal(seed, _SAMPLE_SCALE, size=samples)).reshape(sample)
    s = _normal(seed, _SAMPLE_OFFSET, size=samples).reshape(sample)
    return a * b * z + channel_shift * m + sample_shift * s


def make_sentences(lengths: Sequence[int], tokens: int, features: int, *, seed: int = 0,
                   pad_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A padded batch of sentences: x (B, T, D) float64 and mask (B, T) bool, B = len(lengths).

    Sentence b's first lengths[b] tokens are real (mask True): :func:`make_input` of (B, T, D)
    in layout NTD, so each feature has its own offset and scale (batch norm and layer norm
    differ). The rest hold ``pad_value``. Each length in 1 .. tokens.
    """
    tokens = _integer("tokens", tokens)
    features = _integer("features", features)
    lengths = list(lengths) if not isinstance(lengths, (str, bytes)) else None
    if not lengths or not all(_is_int(n) and 1 <= n <= tokens for n in lengths):
        raise ValueError(f"lengths: expected one or more integers in 1..{tokens}, got {lengths!r}")
    pad_value = _real("pad_value", pad_value, -MAX_ABS, MAX_ABS)
    x = make_input((len(lengths), tokens, features), seed=seed, layout="NTD")
    mask = np.arange(tokens) < np.array(lengths)[:, None]
    x[~mask] = pad_value
    return x, mask


# ---- batch-size dependence ------------------------------------------------------------------------
@dataclass(frozen=True)
class SpreadResult:
    """How batch norm's statistics for channel 0 vary with the batch, per batch size, each (K,).

    batch_mean_avg, batch_var_avg: the mean over draws of the batch's channel-0 mean and biased
    variance; batch_mean_std, batch_var_std: their standard deviation over draws (ddof 0).
    probe_spread_batch, _layer, _group: the standard deviation over draws of the probe sample's
    normalized channel 0, averaged over its cells, under batch, layer and group norm (eps 1e-5).
    population_mean, population_var: channel 0 over the whole population (biased).
    """

    batch_sizes: np.ndarray
    batch_mean_avg: np.ndarray
    batch_var_avg: np.ndarray
    batch_mean_std: np.ndarray
    batch_var_std: np.ndarray
    probe_spread_batch: np.ndarray
    probe_spread_layer: np.ndarray
    probe_spread_group: np.ndarray
    population_mean: float
    population_var: float


def _std_over_draws(values: np.ndarray) -> np.ndarray:
    """Std over axis 1, taken of the differences from draw 0 so that identical draws give
    exactly 0 (the mean of equal numbers need not round back to them)."""
    return np.std(values - values[:, :1], axis=1)


def batch_size_spread(batch_sizes: Sequence[int], *, channels: int = 4, spatial: int = 9, population: int = 512,
                      draws: int = 64, groups: int = 2, seed: int = 0) -> SpreadResult:
    """Draw ``draws`` batches of each size B from a population and watch one probe sample.

    The population is ``make_input((population, channels, spatial), seed=seed)``; the probe is
    sample 0. Draw j holds the probe and the first B - 1 of a random order j of the other
    samples (one order per draw, shared by all B, so the batches of a draw are nested). B = 1:
    the batch statistics are the probe's own, as instance norm's. Layer and group norm read only
    the probe, whatever the batch, so their spread comes out 0.
    """
    sizes = list(batch_sizes) if not isinstance(batch_sizes, (str, bytes)) else None
    population = _integer("population", population)
    if not sizes or not all(_is_int(b) and 1 <= b <= population for b in sizes):
        raise ValueError(f"batch_sizes: expected one or more integers in 1..{population}, got {batch_sizes!r}")
    channels, spatial = _integer("channels", channels), _integer("spatial", spatial)
    draws = _integer("draws", draws)
    groups = _groups("group", groups, (population, channels, spatial), "NCHW")
    x = make_input((population, channels, spatial), seed=_integer("seed", seed, 0))
    eps = 1e-5

    cells = x[:, 0, :]  # (population, spatial)
    population_mean, population_var = float(cells.mean()), float(cells.var())
    centred = cells - population_mean  # sums of squares of centred values lose less to cancellation
    sums, squares = centred.sum(axis=1), np.square(centred).sum(axis=1)
    others = np.tile(np.arange(1, population), (draws, 1))
    order = np.random.default_rng([seed, _DRAWS]).permuted(others, axis=1)[:, : max(sizes) - 1]
    members = np.concatenate([np.zeros((draws, 1), dtype=int), order], axis=1)  # (draws, max B)
    size = np.array(sizes)
    n = size * spatial
    shifted_mean = np.cumsum(sums[members], axis=1)[:, size - 1].T / n[:, None]  # (K, draws)
    batch_var = np.maximum(np.cumsum(squares[members], axis=1)[:, size - 1].T / n[:, None] - shifted_mean**2, 0.0)
    batch_mean = population_mean + shifted_mean
    probe = cells[0]
    batch_out = (probe - batch_mean[..., None]) / np.sqrt(batch_var[..., None] + eps)  # (K, draws, spatial)

    def own_stats_output(channel_count: int) -> np.ndarray:
        """The probe's channel 0 normalized over channels 0..channel_count-1 of the batch's first
        member (the probe): layer norm with all channels, group norm with channel 0's group."""
        own = x[members[:, 0], :channel_count, :].reshape(draws, -1)
        mean, var = _moments(own, (1,), rms=False)  # (draws, 1) each
        out = (probe - mean) / np.sqrt(var + eps)  # (draws, spatial)
        return np.broadcast_to(out, (len(sizes), draws, spatial))

    return SpreadResult(_frozen(size), _frozen(batch_mean.mean(axis=1)), _frozen(batch_var.mean(axis=1)),
                        _frozen(_std_over_draws(batch_mean)), _frozen(_std_over_draws(batch_var)),
                        *(_frozen(_std_over_draws(out).mean(axis=-1)) for out in
                          (batch_out, own_stats_output(channels), own_stats_output(channels // groups))),
                        population_mean, population_var)


# ---- a drifting stream ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamResult:
    """Batch norm trained on a drifting stream. Arrays read-only.

    inputs: (batches, batch_size, channels, spatial) every batch. For channel 0, each (batches,):
    true_mean, true_var of the distribution batch k came from; batch_mean, batch_var (biased) of
    batch k; running_mean, running_var after batch k. train_output, eval_output: the last batch
    normalized with its own statistics and with the final running ones (no affine). state: the
    final :class:`BatchNormState`.
    """

    inputs: np.ndarray
    true_mean: np.ndarray
    true_var: np.ndarray
    batch_mean: np.ndarray
    batch_var: np.ndarray
    running_mean: np.ndarray
    running_var: np.ndarray
    train_output: np.ndarray
    eval_output: np.ndarray
    state: BatchNormState


def running_stream(batches: int, *, batch_size: int = 8, channels: int = 4, spatial: int = 9, drift: float = 0.5,
                   momentum: float | None = 0.1, seed: int = 0) -> StreamResult:
    """Feed ``batches`` batches (batch_size, channels, spatial) through :func:`update_running`
    from :meth:`BatchNormState.initial`. Batch k = 0 .. batches-1 is drawn from::

        x[n, c, l] = mu_c + drift k / batches + sigma_c exp(drift k / batches) z[n, c, l]
        mu_c = 2 m_c, sigma_c = exp(u_c / 2)    (make_input's channel terms, channel_shift 2)

    so the true mean moves by ``drift`` over the stream and the standard deviation by a factor
    exp(drift). z ~ N(0, 1) is drawn batch by batch (a longer stream keeps the first batches' z).
    momentum: in [0, 1], None = cumulative average. drift in [-10, 10].
    """
    batches, batch_size = _integer("batches", batches), _integer("batch_size", batch_size)
    channels, spatial = _integer("channels", channels), _integer("spatial", spatial)
    drift = _real("drift", drift, -_MAX_SHIFT, _MAX_SHIFT)
    momentum = None if momentum is None else _real("momentum", momentum, 0.0, 1.0)
    seed = _integer("seed", seed, 0)
    progress = drift * np.arange(batches) / batches
    mu = 2.0 * _normal(seed, _CHANNEL_OFFSET, size=channels)
    sigma = np.exp(_normal(seed, _CHANNEL_SCALE, size=channels) / 2)
    true_mean = mu + progress[:, None]  # (batches, channels)
    true_std = sigma * np.exp(progress)[:, None]
    z = _normal(seed, _STREAM, size=(batches, batch_size, channels, spatial))
    inputs = true_mean[:, None, :, None] + true_std[:, None, :, None] * z
    batch_mean, batch_var = (m.reshape(batches, channels) for m in _moments(inputs, (1, 3), rms=False))
    mean, var = np.zeros(channels), np.ones(channels)
    running_mean, running_var = np.empty(batches), np.empty(batches)
    for k in range(batches):
        mean, var = _ema_step(mean, var, k + 1, batch_mean[k], batch_var[k], batch_size * spatial, momentum)
        running_mean[k], running_var[k] = mean[0], var[0]
    state = BatchNormState(mean, var, batches)
    last = inputs[-1]
    return StreamResult(_frozen(inputs), _frozen(true_mean[:, 0]), _frozen(true_std[:, 0] ** 2),
                        _frozen(batch_mean[:, 0]), _frozen(batch_var[:, 0]), _frozen(running_mean),
                        _frozen(running_var), normalize(last, "batch").y, normalize(last, "batch", running=state).y,
                        state)
