"""Argument checks shared by the backend modules: each returns the value in its plain type or
raises ValueError naming the parameter and what is allowed (Qt-free)."""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np


def is_real(value: object) -> bool:
    """A real number that is not a bool (numpy scalars included)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def number(name: str, value: object, lo: float, hi: float = math.inf, *, lo_open: bool = False,
           hi_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the interval, else ValueError."""
    ok = is_real(value) and math.isfinite(value)
    if ok:
        value = float(value)
        ok = (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
    if not ok:
        if hi == math.inf:
            allowed = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            allowed = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{name}: must be a finite number {allowed}, got {value!r}")
    return value


def integer(name: str, value: object, lo: int, hi: int | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) in [lo, hi], else ValueError."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
    ok = ok and lo <= value and (hi is None or value <= hi)
    if not ok:
        allowed = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        raise ValueError(f"{name}: must be an integer {allowed}, got {value!r}")
    return int(value)


def choice(name: str, value: object, known: Sequence) -> object:
    """``value`` if it is one of ``known`` (None matched by identity), else ValueError listing them."""
    if not any(value is k or (isinstance(value, str) and value == k) for k in known):
        raise ValueError(f"{name}: unknown {value!r} (known: {', '.join(map(str, known))})")
    return value


def flag(name: str, value: object) -> bool:
    """``value`` as a bool if it is one (numpy's included), else ValueError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be True or False, got {value!r}")
    return bool(value)
