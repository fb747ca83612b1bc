"""A format's range (:func:`range_info`) and every value it can store (:func:`representable_values`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .codec import decode_array
from .formats import FloatFormat


# --------------------------------------------------------------------------
# Range and value sets
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeInfo:
    """Range summary of a format; ``log2_*`` are base-2 logs, ``decades_*`` base-10 spans.

    ``decades_total = log10(max / smallest_subnormal)``, ``decades_normal =
    log10(max / smallest_normal)``; ``binades_normal`` counts normal exponents
    and ``values_per_binade = 2**mantissa_bits``.
    """

    format_name: str
    smallest_subnormal: float
    smallest_normal: float
    max_value: float
    epsilon: float
    log2_smallest_subnormal: float
    log2_smallest_normal: float
    log2_max: float
    log2_epsilon: float
    decades_total: float
    decades_normal: float
    binades_normal: int
    values_per_binade: int


def range_info(fmt: FloatFormat) -> RangeInfo:
    """Smallest subnormal/normal, max, epsilon, their log2 and the dynamic range in decades."""
    log10_max = math.log10(fmt.max_value)
    return RangeInfo(
        format_name=fmt.name,
        smallest_subnormal=fmt.smallest_subnormal,
        smallest_normal=fmt.smallest_normal,
        max_value=fmt.max_value,
        epsilon=fmt.epsilon,
        log2_smallest_subnormal=float(fmt.min_exponent - (fmt.mantissa_bits if fmt.subnormals else 0)),
        log2_smallest_normal=float(fmt.min_exponent),
        log2_max=math.log2(fmt.max_value),
        log2_epsilon=float(-fmt.mantissa_bits),
        decades_total=log10_max - math.log10(fmt.smallest_subnormal),
        decades_normal=log10_max - math.log10(fmt.smallest_normal),
        binades_normal=fmt.max_exponent - fmt.min_exponent + 1,
        values_per_binade=1 << fmt.mantissa_bits,
    )


def representable_values(fmt: FloatFormat) -> np.ndarray:
    """Sorted float64 array of every distinct finite value (one zero), shape ``(k,)``.

    Only for formats of at most 16 bits (ValueError otherwise).
    """
    if fmt.total_bits > 16:
        raise ValueError(f"{fmt.name} has {fmt.total_bits} bits; representable_values needs <= 16")
    values = decode_array(np.arange(1 << fmt.total_bits, dtype=np.int64), fmt)
    values = np.unique(values[np.isfinite(values)])
    values[values == 0] = 0.0  # unique keeps whichever zero came first; make it +0
    return values
