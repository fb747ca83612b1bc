"""The shell's garbage-collection policy: full collections (tens of ms with every panel open) wait
until no panel has changed for a moment, unless they are long overdue."""

import gc
import time

from widgets.panel import Panel
from workbench import cli


def test_full_collections_wait_for_a_pause_in_the_changes(qapp, monkeypatch):
    threshold = gc.get_threshold()
    timer = cli.collect_when_idle()
    try:
        assert gc.get_threshold()[:2] == threshold[:2] and gc.get_threshold()[2] >= 10 ** 9  # no automatic full one
        collected, due = [], [cli.FULL_COLLECTION_DUE]
        monkeypatch.setattr(gc, "collect", lambda *args: collected.append(due[0]))
        monkeypatch.setattr(gc, "get_count", lambda: (0, 0, due[0]))
        Panel.last_change = time.monotonic()  # the user is dragging
        timer.timeout.emit()
        assert collected == []
        Panel.last_change = time.monotonic() - cli.IDLE_S - 0.1  # a pause
        timer.timeout.emit()
        assert collected == [cli.FULL_COLLECTION_DUE]
        due[0] = cli.FULL_COLLECTION_DUE - 1  # paused, but not due yet
        timer.timeout.emit()
        assert len(collected) == 1
        Panel.last_change, due[0] = time.monotonic(), cli.FULL_COLLECTION_FORCED  # long overdue: even while dragging
        timer.timeout.emit()
        assert collected[-1] == cli.FULL_COLLECTION_FORCED
    finally:
        timer.stop()
        gc.set_threshold(*threshold)


def test_a_change_to_a_panel_is_noted(open_panel):
    from workbench.registry import panel_class

    panel = open_panel(panel_class("optimizers"), 1200, 800)
    before = time.monotonic()
    panel.set_values({"steps": 120})
    assert Panel.last_change >= before
