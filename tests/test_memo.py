"""The bounded caches: by entries, by their own bytes and by the bytes all of them share."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench import memo


@pytest.fixture(autouse=True)
def _empty_shared():
    yield
    for key, (entries, _) in list(memo._RECENT.items()):
        memo._drop(entries, key[1])


def test_caches_are_bounded_by_bytes():
    calls = []

    @memo.bounded_cache(maxsize=10, max_bytes=3000)
    def make(n):
        calls.append(n)
        return np.zeros(n)
    make(200), make(200), make(100)  # 1600 + 800 bytes
    assert calls == [200, 100]
    make(150)  # 1200 more: 3600 > 3000, the oldest (200) goes
    make(100)
    make(200)
    assert calls == [200, 100, 150, 200]
    big = make(10_000)  # alone above the budget: kept as the newest
    assert make(10_000) is big
    make.cache_clear()
    make(10_000)
    assert calls[-1] == 10_000 and len(calls) == 6


def test_caches_are_bounded_by_entries():
    @memo.bounded_cache(maxsize=2, max_bytes=10 ** 9)
    def make(n):
        return np.zeros(n)
    first = make(1)
    make(2), make(3)
    assert make(1) is not first
    assert memo.shared_bytes() == 8 * (3 + 1)


def test_all_caches_share_one_budget_least_recently_used_first(monkeypatch):
    monkeypatch.setattr(memo, "SHARED_MAX_BYTES", 10_000)
    calls = []

    @memo.bounded_cache(maxsize=10, max_bytes=10 ** 9)
    def ones(n):
        calls.append(("ones", n))
        return np.ones(n)

    @memo.bounded_cache(maxsize=10, max_bytes=10 ** 9)
    def zeros(n):
        calls.append(("zeros", n))
        return np.zeros(n)
    ones(500), zeros(400)  # 4000 + 3200 bytes
    ones(500)  # used again: zeros(400) is now the least recently used
    zeros(300)  # 2400 more: 9600, within
    assert memo.shared_bytes() == 9600
    ones(200)  # 1600 more: 11200 > 10000, zeros(400) goes (from the other cache)
    assert memo.shared_bytes() == 8 * (500 + 300 + 200)
    calls.clear()
    ones(500), zeros(300), ones(200), zeros(400)
    assert calls == [("zeros", 400)]  # and ones(500), the least recently used then, went
    assert memo.shared_bytes() == 8 * (300 + 200 + 400)
    zeros.cache_clear()
    assert memo.shared_bytes() == 8 * 200


def test_views_and_shared_buffers_are_counted_once():
    base = np.zeros(100)
    assert memo.array_bytes((base, base[:10], base.reshape(10, 10))) == 800
    assert memo.array_bytes([np.zeros(3), None, 1.0]) == 24


def test_threads_computing_the_same_arguments_keep_one_entry():
    barrier = threading.Barrier(2)

    @memo.bounded_cache(maxsize=10, max_bytes=10 ** 9)
    def slow(n):
        barrier.wait(timeout=5)
        return np.zeros(n)
    threads = [threading.Thread(target=slow, args=(10,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert memo.shared_bytes() == 80
