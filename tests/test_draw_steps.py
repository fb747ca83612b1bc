"""A draw in steps (Panel): steps back to back for at most DRAW_SLICE_MS in one pass of the event
loop, changes meanwhile coalesced, every step drawn with the values of its result, ``drawn`` only
for the newest values."""

import time

import pytest
from PySide6.QtWidgets import QApplication

from widgets.attention import AttentionPanel


@pytest.fixture
def panel(open_panel):
    panel = open_panel(AttentionPanel, 1500, 950)
    panel.DRAW_SLICE_MS = 0.0  # one step per pass
    return panel


def watch_steps(panel, seen):
    """Wrap the panel's draw: record (temperature drawn, temperature in panel.values) at each step."""
    original = type(panel).draw

    def draw(result):
        for _ in original(panel, result):
            seen.append(panel.values["temperature"])
            yield
        seen.append(panel.values["temperature"])
    panel.draw = draw


def test_each_pass_of_the_event_loop_draws_one_step(qtbot, panel):
    seen = []
    watch_steps(panel, seen)
    computes = []
    original = type(panel).compute
    panel.compute = lambda values: computes.append(values["temperature"]) or original(values)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"temperature": 2.0})
        qtbot.waitUntil(lambda: len(seen) >= 1, timeout=10_000)
        counts = []
        while panel.busy():
            before = len(seen)
            QApplication.processEvents()
            counts.append(len(seen) - before)
    assert max(counts) <= 1 and len(seen) == 4  # four steps, never two in one pass
    assert computes == [2.0] and seen == [2.0] * 4


def test_steps_run_back_to_back_until_the_slice_is_used(qtbot, panel):
    panel.DRAW_SLICE_MS = 6.0
    seen = []
    original = type(panel).draw

    def draw(result):
        for _ in original(panel, result):
            time.sleep(0.004)
            seen.append(time.perf_counter())
            yield
    panel.draw = draw
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"temperature": 2.0})
        qtbot.waitUntil(lambda: len(seen) >= 1, timeout=10_000)
        counts = [len(seen)]
        while panel.busy():
            before = len(seen)
            QApplication.processEvents()
            counts.append(len(seen) - before)
    assert len(seen) == 3 and max(counts) == 2  # two 4 ms steps fill a 6 ms slice, never a third


def test_changes_during_a_drawing_are_coalesced_and_every_step_sees_its_own_values(qtbot, panel):
    seen, computes = [], []
    watch_steps(panel, seen)
    original = type(panel).compute
    panel.compute = lambda values: computes.append(values["temperature"]) or original(values)
    drawn = []
    panel.drawn.connect(lambda: drawn.append(panel.values["temperature"]))
    assert panel.set_values({"temperature": 2.0})
    qtbot.waitUntil(lambda: len(seen) >= 1, timeout=10_000)
    assert panel.busy()
    for value in (3.0, 4.0, 5.0):  # while the 2.0 drawing is in progress
        assert panel.set_values({"temperature": value})
        assert panel.values["temperature"] == value
    qtbot.waitUntil(lambda: not panel.busy(), timeout=10_000)
    assert computes == [2.0, 5.0]  # 3 and 4 were stale before they could start
    assert seen == [2.0] * 4 + [5.0] * 4  # the 2.0 result's later steps drawn with 2.0, not the newer values
    assert drawn == [5.0] and panel.values["temperature"] == 5.0  # announced once, for the newest values


def test_a_step_that_fails_leaves_the_panel_ready_for_the_next_change(qtbot, panel):
    errors = []
    original = type(panel).draw

    def draw(result):
        steps = original(panel, result)
        next(steps)
        yield
        if panel.values["temperature"] == 2.0:
            raise RuntimeError("broken on purpose")
        yield from steps
    panel.draw = draw
    import sys
    hook = sys.excepthook
    sys.excepthook = lambda kind, value, tb: errors.append(str(value))
    try:
        assert panel.set_values({"temperature": 2.0})
        qtbot.waitUntil(lambda: not panel.busy(), timeout=10_000)
    finally:
        sys.excepthook = hook
    assert errors == ["broken on purpose"]
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"temperature": 3.0})
    assert not panel.busy()


def test_compute_now_draws_every_step_at_once(panel):
    seen = []
    watch_steps(panel, seen)
    panel.values = {**panel.values, "temperature": 0.5}
    panel.compute_now()
    assert seen == [0.5] * 4 and not panel.busy()


def test_time_in_draw_steps_is_counted(qtbot, panel):
    """Panel.drawing_ms adds up the time spent in draw steps (the soak splits its blocks by it)."""
    original = type(panel).draw

    def draw(result):
        for _ in original(panel, result):
            time.sleep(0.005)
            yield
    panel.draw = draw
    before = type(panel).drawing_ms
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"temperature": 1.7})
    counted = type(panel).drawing_ms - before
    assert 3 * 5 <= counted < 1000  # at least the three sleeps between the four steps
