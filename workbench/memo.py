"""Least-recently-used caches bounded by entries and by the bytes of the numpy arrays they hold,
each on its own and all together.

``functools.lru_cache(maxsize=8)`` keeps eight results whatever their size: eight results of a
100-layer network are hundreds of MB. Every cache made by :func:`bounded_cache` also shares one
budget, SHARED_MAX_BYTES: when the caches of all panels together hold more, the least recently
used result of any of them goes first. Qt-free.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

SHARED_MAX_BYTES = 64 * 2 ** 20  # all bounded caches together, beyond each one's newest result

_LOCK = threading.Lock()  # guards every cache's entries and the shared order
_RECENT: OrderedDict[tuple[int, tuple], tuple[OrderedDict, int]] = OrderedDict()  # (cache, args) -> (its entries, bytes)
_total = 0  # bytes in _RECENT


def array_bytes(value: Any, seen: set | None = None) -> int:
    """Bytes of the numpy arrays ``value`` holds (an array, or dataclasses and tuples of them),
    each underlying buffer counted once."""
    seen = set() if seen is None else seen
    if isinstance(value, np.ndarray):
        owner = value if value.base is None else value.base
        if id(owner) in seen:
            return 0
        seen.add(id(owner))
        return owner.nbytes if isinstance(owner, np.ndarray) else value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(array_bytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(array_bytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return 0


def _drop(entries: OrderedDict, args: tuple) -> int:
    """Remove one result from its cache and the shared order (the lock held); its bytes."""
    global _total
    entries.pop(args, None)
    size = _RECENT.pop((id(entries), args))[1]
    _total -= size
    return size


def bounded_cache(maxsize: int, max_bytes: int) -> Callable:
    """Decorator: cache a function of hashable positional arguments, keeping at most ``maxsize``
    results and, beyond the newest one, at most ``max_bytes`` of their arrays (the oldest go
    first), within the budget all such caches share. Thread-safe; ``cache_clear()`` empties it."""
    def decorate(function: Callable) -> Callable:
        entries: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()

        @functools.wraps(function)
        def cached(*args):
            global _total
            with _LOCK:
                hit = entries.get(args)
                if hit is not None:
                    entries.move_to_end(args)
                    _RECENT.move_to_end((id(entries), args))
                    return hit[0]
            result = function(*args)
            size = array_bytes(result)
            with _LOCK:
                if args in entries:  # computed twice meanwhile (two threads)
                    _drop(entries, args)
                entries[args] = (result, size)
                _RECENT[(id(entries), args)] = (entries, size)
                _total += size
                total = sum(s for _, s in entries.values())
                while len(entries) > maxsize or (len(entries) > 1 and total > max_bytes):
                    total -= _drop(entries, next(iter(entries)))
                while len(_RECENT) > 1 and _total > SHARED_MAX_BYTES:
                    (_, oldest), (owner, _) = next(iter(_RECENT.items()))
                    _drop(owner, oldest)
            return result

        def cache_clear() -> None:
            with _LOCK:
                for args in list(entries):
                    _drop(entries, args)

        cached.cache_clear = cache_clear
        return cached
    return decorate


def shared_bytes() -> int:
    """Bytes all bounded caches hold now."""
    with _LOCK:
        return _total
