"""A least-recently-used cache bounded by entries and by the bytes of the numpy arrays it holds.

``functools.lru_cache(maxsize=8)`` keeps eight results whatever their size: eight results of a
100-layer network are hundreds of MB. Qt-free.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np


def array_bytes(result: Any) -> int:
    """Bytes of the numpy arrays in ``result``: an array, or a dataclass's array fields (shallow)."""
    if isinstance(result, np.ndarray):
        return result.nbytes
    if dataclasses.is_dataclass(result):
        return sum(v.nbytes for f in dataclasses.fields(result)
                   if isinstance(v := getattr(result, f.name), np.ndarray))
    return 0


def bounded_cache(maxsize: int, max_bytes: int) -> Callable:
    """Decorator: cache a function of hashable positional arguments, keeping at most ``maxsize``
    results and, beyond the newest one, at most ``max_bytes`` of their arrays (the oldest go
    first). Thread-safe; ``cache_clear()`` empties it."""
    def decorate(function: Callable) -> Callable:
        entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(function)
        def cached(*args):
            with lock:
                if args in entries:
                    entries.move_to_end(args)
                    return entries[args][0]
            result = function(*args)
            with lock:
                entries[args] = (result, array_bytes(result))
                total = sum(size for _, size in entries.values())
                while len(entries) > maxsize or (len(entries) > 1 and total > max_bytes):
                    total -= entries.popitem(last=False)[1][1]
            return result

        cached.cache_clear = entries.clear
        return cached
    return decorate
