"""The loss-scaling demo: log-normal gradient magnitudes and where they land after ``x * 2**k`` is
cast to a format (:func:`scaling_stats`, :func:`log_histogram`), in O(log n) per change."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .codec import _decode_exact
from .exact import _fraction_to_float
from .formats import FP64, FloatFormat, _check_int_range


# --------------------------------------------------------------------------
# Loss-scaling demo
# --------------------------------------------------------------------------


def gradient_samples(median: float, spread_decades: float, n: int = 1_000_000, seed: int = 0) -> np.ndarray:
    """Log-normal gradient magnitudes: ``log10|g| ~ Normal(log10(median), spread_decades)``.

    Returns a float64 array of shape ``(n,)``, all > 0 unless a draw is below
    float64's range (then 0.0) or above it (then inf).  ``seed`` feeds
    ``np.random.default_rng``.  :func:`lognormal_samples` describes the same
    draws (``Generator.normal(loc, scale)`` is ``loc + scale *
    standard_normal()``) without materialising them.
    """
    if not median > 0 or not math.isfinite(median):
        raise ValueError(f"median must be a positive finite number, got {median!r}")
    if not spread_decades >= 0 or not math.isfinite(spread_decades):
        raise ValueError(f"spread_decades must be >= 0, got {spread_decades!r}")
    n = _check_int_range("n", n, 0, 1 << 40)
    log10_values = np.random.default_rng(seed).normal(math.log10(median), spread_decades, n)
    with np.errstate(over="ignore", under="ignore"):
        return np.power(10.0, log10_values)


@dataclass(frozen=True, eq=False)
class PreparedSamples:
    """Samples sorted once for fast classification: ``sorted_magnitudes`` (read-only float64, shape ``(n,)``,
    |samples| ascending, NaNs removed and counted in ``nan_count``)."""

    sorted_magnitudes: np.ndarray
    nan_count: int

    @property
    def n(self) -> int:
        """Number of non-NaN samples."""
        return int(self.sorted_magnitudes.size)


def prepare(samples: np.ndarray) -> PreparedSamples:
    """Sort |samples| (any shape, flattened) once so :func:`scaling_stats` is O(log n) per format."""
    magnitudes = np.abs(np.asarray(samples, dtype=np.float64).ravel())
    nan_mask = np.isnan(magnitudes)
    nan_count = int(nan_mask.sum())
    if nan_count:
        magnitudes = magnitudes[~nan_mask]
    magnitudes.sort()
    magnitudes.setflags(write=False)
    return PreparedSamples(magnitudes, nan_count)


@dataclass(frozen=True, eq=False)
class LogNormalSamples:
    """The samples of :func:`gradient_samples` without the samples: build with :func:`lognormal_samples`.

    ``sorted_z``: the standard-normal draws ``np.random.default_rng(seed).standard_normal(n)``
    sorted ascending (read-only float64, shape ``(n,)``, shared between instances with the
    same ``(n, seed)``).  Sample ``i`` is ``g = 10 ** (log10_median + spread_decades * z)``
    stored as a float64, which is bit for bit what :func:`gradient_samples` returns (sorted)
    for ``spread_decades > 0``: draws below float64's range are 0.0 (``zeros`` of them) and
    draws above it inf (``infinities``), exactly as there.

    With ``spread_decades == 0`` every sample is ``median`` itself (``gradient_samples``
    returns ``10 ** log10(median)``, which can differ from ``median`` by one rounding).

    :func:`scaling_stats` and :func:`log_histogram` answer in O(log n) per threshold by
    mapping the threshold ``t`` to ``z = (log10(t) - log10_median) / spread_decades`` and
    binary-searching ``sorted_z``.  Counts can differ from the float path
    (``prepare(gradient_samples(...))``) only for samples within float rounding of a
    threshold (the float path rounds ``10 ** x`` once more).  The one place that rounding is
    coarse is float64's own subnormal range (|g| < 2.2e-308, reachable only with extreme
    medians and spreads): there gradient_samples keeps few significant bits, while the
    z-space answer uses the exact draw and is the more accurate of the two.
    """

    median: float
    spread_decades: float
    seed: int
    sorted_z: np.ndarray
    log10_median: float = field(init=False)
    zeros: int = field(init=False)
    infinities: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "log10_median", math.log10(self.median))
        zero_max, _, overflow_at, overflow_inclusive = _class_thresholds(FP64)
        object.__setattr__(self, "zeros", 0)
        object.__setattr__(self, "infinities", 0)
        zeros = self._count_below(zero_max, 0, inclusive=True)
        finite = self._count_below(overflow_at, 0, inclusive=not overflow_inclusive)
        object.__setattr__(self, "zeros", zeros)
        object.__setattr__(self, "infinities", self.n - finite)

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.sorted_z.size)

    @property
    def nan_count(self) -> int:
        """Always 0 (for symmetry with :class:`PreparedSamples`)."""
        return 0

    def _count_below(self, threshold: Fraction, scale_exp: int, *, inclusive: bool) -> int:
        """Samples with ``g * 2**scale_exp < threshold`` (``<=`` if ``inclusive``); threshold > 0."""
        n = self.n
        if self.spread_decades == 0:
            scaled = Fraction(self.median) * Fraction(2) ** scale_exp
            return n if scaled < threshold or (inclusive and scaled == threshold) else 0
        log10_threshold = (_log2_fraction(threshold) - scale_exp) * _LOG10_2
        z = (log10_threshold - self.log10_median) / self.spread_decades
        count = int(np.searchsorted(self.sorted_z, z, side="right" if inclusive else "left"))
        return min(max(count, self.zeros), n - self.infinities)


_LOG10_2 = math.log10(2.0)


def _log2_fraction(value: Fraction) -> float:
    """log2 of a positive Fraction of any size (no float under/overflow)."""
    return math.log2(value.numerator) - math.log2(value.denominator)


@lru_cache(maxsize=4)
def _sorted_standard_normal(n: int, seed: int) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal(n)
    z.sort()
    z.setflags(write=False)
    return z


def _check_real(name: str, value: object, *, positive: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        need = "a positive finite number" if positive else "a finite number >= 0"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return x


def lognormal_samples(median: float, spread_decades: float, n: int = 1_000_000,
                      seed: int = 0) -> LogNormalSamples:
    """The log-normal set ``gradient_samples(median, spread_decades, n, seed)`` in sorted z-space.

    The sorted draws are computed once per ``(n, seed)`` (~0.1 s for 1e6) and cached, so
    moving the median or spread slider costs microseconds.  ValueError names the bad
    parameter (``median`` positive finite, ``spread_decades`` finite >= 0, ``n`` in
    0..2**30, ``seed`` a non-negative integer).
    """
    median = _check_real("median", median, positive=True)
    spread_decades = _check_real("spread_decades", spread_decades, positive=False)
    n = _check_int_range("n", n, 0, 1 << 30)
    seed = _check_int_range("seed", seed, 0, (1 << 128) - 1)
    return LogNormalSamples(median, spread_decades, seed, _sorted_standard_normal(n, seed))


@dataclass(frozen=True)
class ScalingStats:
    """Where samples land after ``x * 2**scale_exp`` is cast to a format (fractions of ``n``).

    ``underflow``: became 0; ``subnormal``: non-zero but below the smallest
    normal (precision loss); ``normal``; ``overflow``: beyond the format's
    range, result ``overflow_to`` (``"inf"``, ``"nan"`` or ``"saturate"``).
    The four fractions sum to 1 (0 each when ``n == 0``).  Exact
    round-to-nearest-even thresholds (no float32 detour).
    """

    format_name: str
    scale_exp: int
    n: int
    underflow: float
    subnormal: float
    normal: float
    overflow: float
    overflow_to: str


@lru_cache(maxsize=256)
def _class_thresholds(fmt: FloatFormat) -> tuple[Fraction, Fraction, Fraction, bool]:
    """Exact magnitudes where the rounded class changes.

    Returns ``(zero_max, normal_min, overflow_at, overflow_inclusive)``:
    |x| <= zero_max rounds to 0, |x| >= normal_min rounds to a normal, and
    |x| > overflow_at (>= if ``overflow_inclusive``) overflows.
    """
    if fmt.has_zero:
        smallest = Fraction(2) ** (fmt.min_exponent - fmt.mantissa_bits)
        zero_max = smallest / 2
        normal_min = Fraction(2) ** fmt.min_exponent - smallest / 2
    else:  # E8M0: nothing positive becomes 0 or subnormal (below the smallest value is the smallest)
        zero_max = normal_min = Fraction(0)
    top_quantum = Fraction(2) ** (fmt.max_exponent - fmt.mantissa_bits)
    maximum = _decode_exact(fmt.max_finite_code, fmt).magnitude
    top_significand_odd = bool((maximum / top_quantum).numerator & 1)
    return zero_max, normal_min, maximum + top_quantum / 2, top_significand_odd


def _float_floor(value: Fraction) -> tuple[float, bool]:
    """(largest float64 <= value, whether it equals value) for value >= 0."""
    approx = _fraction_to_float(value)
    if math.isinf(approx):
        return float(np.finfo(np.float64).max), False
    if Fraction(approx) > value:
        approx = math.nextafter(approx, 0.0)
    return approx, Fraction(approx) == value


def _count_below(sorted_values: np.ndarray, threshold: Fraction, *, inclusive: bool) -> int:
    """Number of sorted float64 values < threshold (<= if ``inclusive``), exactly."""
    floor, exact = _float_floor(threshold)
    side = "right" if inclusive or not exact else "left"
    return int(np.searchsorted(sorted_values, floor, side=side))


def scaling_stats(samples: np.ndarray | PreparedSamples | LogNormalSamples, fmt: FloatFormat,
                  scale_exp: int) -> ScalingStats:
    """Classify ``samples * 2**scale_exp`` cast to ``fmt`` (see :class:`ScalingStats`).

    ``samples``: any float64 array (sorted on every call), a :class:`PreparedSamples` from
    :func:`prepare` (three binary searches) or a :class:`LogNormalSamples` from
    :func:`lognormal_samples` (three binary searches in z-space; no per-sample work when the
    median or spread changes).
    """
    scale_exp = _check_int_range("scale_exp", scale_exp, -4096, 4096)
    zero_max, normal_min, overflow_at, overflow_inclusive = _class_thresholds(fmt)
    if isinstance(samples, LogNormalSamples):
        n = samples.n

        def count_below(threshold: Fraction, inclusive: bool) -> int:
            if threshold == 0:
                return samples.zeros if inclusive else 0
            return samples._count_below(threshold, scale_exp, inclusive=inclusive)
    else:
        prepared = samples if isinstance(samples, PreparedSamples) else prepare(samples)
        unscale = Fraction(2) ** -scale_exp
        values = prepared.sorted_magnitudes
        n = values.size

        def count_below(threshold: Fraction, inclusive: bool) -> int:
            return _count_below(values, threshold * unscale, inclusive=inclusive)
    to_zero = count_below(zero_max, True)
    below_normal = max(count_below(normal_min, False), to_zero)
    not_overflowing = count_below(overflow_at, not overflow_inclusive)
    counts = (to_zero, below_normal - to_zero, not_overflowing - below_normal, n - not_overflowing)
    fractions = [c / n if n else 0.0 for c in counts]
    return ScalingStats(fmt.name, scale_exp, n, *fractions, overflow_to=fmt.overflow)


@dataclass(frozen=True, eq=False)
class LogHistogram:
    """Histogram of log10|x|: ``edges`` shape ``(bins + 1,)`` in decades, ``counts`` shape ``(bins,)``
    int64; ``below``/``above`` count finite non-zero values outside ``[lo, hi)``, ``zeros`` exact
    zeros, ``non_finite`` inf/NaN."""

    edges: np.ndarray
    counts: np.ndarray
    below: int
    above: int
    zeros: int
    non_finite: int


def log_histogram(samples: np.ndarray | PreparedSamples | LogNormalSamples, bins: int, lo: float,
                  hi: float, *, scale_exp: int = 0) -> LogHistogram:
    """Vectorised histogram of ``log10|samples * 2**scale_exp|`` over ``[lo, hi)`` in ``bins`` bins.

    ``lo``/``hi`` are in decades (log10 units).  With :class:`PreparedSamples` or
    :class:`LogNormalSamples` it is ``bins + 1`` binary searches; with a raw array one
    log10 pass.
    """
    bins = _check_int_range("bins", bins, 1, 1 << 24)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite lo < hi, got lo={lo!r}, hi={hi!r}")
    edges = np.linspace(lo, hi, bins + 1)
    shift = scale_exp * math.log10(2.0)
    if isinstance(samples, LogNormalSamples):
        return _histogram_lognormal(samples, edges, shift)
    if isinstance(samples, PreparedSamples):
        return _histogram_sorted(samples, edges, shift)
    return _histogram_raw(np.asarray(samples, dtype=np.float64).ravel(), edges, shift)


def _histogram_sorted(prepared: PreparedSamples, edges: np.ndarray, shift: float) -> LogHistogram:
    values = prepared.sorted_magnitudes
    zeros = int(np.searchsorted(values, 0.0, side="right"))
    finite_end = int(np.searchsorted(values, np.inf, side="left"))
    with np.errstate(over="ignore", under="ignore"):
        boundaries = np.power(10.0, edges - shift)
    positions = np.searchsorted(values, boundaries, side="left")
    return _counted(edges, positions, zeros, finite_end, values.size - finite_end + prepared.nan_count)


def _histogram_lognormal(samples: LogNormalSamples, edges: np.ndarray, shift: float) -> LogHistogram:
    n, zeros, finite_end = samples.n, samples.zeros, samples.n - samples.infinities
    if samples.spread_decades == 0:
        with np.errstate(over="ignore", under="ignore"):
            boundaries = np.power(10.0, edges - shift)
        positions = np.where(samples.median < boundaries, n, 0)
    else:
        with np.errstate(over="ignore"):
            z = (edges - shift - samples.log10_median) / samples.spread_decades
        positions = np.searchsorted(samples.sorted_z, z, side="left")
    return _counted(edges, positions, zeros, finite_end, n - finite_end)


def _counted(edges: np.ndarray, positions: np.ndarray, zeros: int, finite_end: int, non_finite: int) -> LogHistogram:
    """The histogram from where each edge falls among the sorted magnitudes (``positions``): the
    zeros come first and the non-finite ones from ``finite_end`` on, so positions are clipped to
    [zeros, finite_end]."""
    positions = np.clip(positions, zeros, finite_end)
    return LogHistogram(edges=edges, counts=np.diff(positions).astype(np.int64), below=int(positions[0]) - zeros,
                        above=finite_end - int(positions[-1]), zeros=zeros, non_finite=non_finite)


def _histogram_raw(values: np.ndarray, edges: np.ndarray, shift: float) -> LogHistogram:
    magnitudes = np.abs(values)
    finite = np.isfinite(magnitudes)
    nonzero = finite & (magnitudes > 0)
    with np.errstate(divide="ignore"):
        logs = np.log10(magnitudes[nonzero]) + shift
    lo, hi, bins = edges[0], edges[-1], edges.size - 1
    index = np.floor((logs - lo) * (bins / (hi - lo))).astype(np.int64)
    inside = (logs >= lo) & (logs < hi)
    counts = np.bincount(np.clip(index[inside], 0, bins - 1), minlength=bins).astype(np.int64)
    return LogHistogram(
        edges=edges,
        counts=counts,
        below=int(np.count_nonzero(logs < lo)),
        above=int(np.count_nonzero(logs >= hi)),
        zeros=int(np.count_nonzero(finite & (magnitudes == 0))),
        non_finite=int(values.size - np.count_nonzero(finite)),
    )
