"""Soak: many random parameter changes in one window, watching memory, plot items and the GUI thread.

``python -m workbench.soak [--changes N] [--seed S]`` prints one line; the benchmark runs the same
(`workbench.bench`, its soak row). Values are drawn from each panel's declarations (extremes
included); a change the cross-field rules refuse counts as refused, not as an error.
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import statistics
import sys
import time
from typing import Any

from workbench import offscreen, one_blas_thread

one_blas_thread()  # as the app: before numpy loads its BLAS

import numpy as np  # noqa: E402

from workbench.params import Param, ParamSet

BUDGET_RSS_GROWTH_MB = 20.0
READINGS = 10  # RSS readings over a run (after the one before it)
BUDGET_BLOCK_MS = 16.0


def text_samples(params: ParamSet, name: str) -> list[str]:
    """Texts a text parameter can take: its default and every preset's value for it."""
    samples = {params[name].default}
    samples.update(p.values[name] for p in params.presets.values() if name in p.values)
    return sorted(samples)


def random_value(param: Param, rng: np.random.Generator, texts: list[str]) -> Any:
    """A value inside the declaration: an end of the range one time in five, else uniform
    (log-uniform on a log scale)."""
    if param.kind in ("float", "int"):
        lo, hi = float(param.lo), float(param.hi)
        if rng.random() < 0.2:
            value = lo if rng.random() < 0.5 else hi
        elif param.log:
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            value = rng.uniform(lo, hi)
        if param.kind == "int":
            return int(min(max(round(value), math.ceil(lo)), math.floor(hi)))
        return float(min(max(value, lo), hi))
    if param.kind == "bool":
        return bool(rng.random() < 0.5)
    if param.kind == "choice":
        return param.choices[int(rng.integers(len(param.choices)))].value
    return texts[int(rng.integers(len(texts)))]


def random_changes(params: ParamSet, rng: np.random.Generator, most: int = 2) -> dict[str, Any]:
    """One to ``most`` parameters with random values, or now and then a preset's values."""
    if params.presets and rng.random() < 0.05:
        presets = list(params.presets.values())
        return {**params.defaults(), **presets[int(rng.integers(len(presets)))].values}
    names = list(params.params)
    chosen = rng.choice(len(names), size=min(most, len(names)) if rng.random() < 0.3 else 1, replace=False)
    return {names[i]: random_value(params[names[i]], rng, text_samples(params, names[i])
                                   if params[names[i]].kind == "text" else []) for i in chosen}


def item_counts(panel) -> dict[str, int]:
    """Graphics items per scene of the panel's figure and items per PlotItem: constant when plot
    items are updated in place, growing when they accumulate."""
    import pyqtgraph as pg

    counts: dict[str, int] = {}
    for view in panel.figure.findChildren(pg.GraphicsView):
        name = f"{view.objectName() or type(view).__name__}@{id(view):x}"
        items = view.scene().items()
        counts[name] = len(items)
        for plot in (i for i in items if isinstance(i, pg.PlotItem)):
            counts[f"{name} plot@{id(plot):x}"] = len(plot.items)
    return counts


def rss_mb() -> float:
    """Resident set size now, MB (Linux: /proc; elsewhere the peak)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize() / 2 ** 20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_memory() -> None:
    """Empty every result cache of the panels and the backend (``cache_clear``) and Qt's pixmap cache, collect garbage and
    hand freed heap memory back to the OS (cli.hand_back_freed_memory), so that what RSS still holds
    afterwards is memory in use: caches are bounded by design, a leak is what stays."""
    from workbench.cli import hand_back_freed_memory

    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("widgets", "workbench")):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name:
                value.cache_clear()
    if "PySide6.QtGui" in sys.modules:  # Qt's pixmap cache (the items' DeviceCoordinateCache; up to 10 MB)
        sys.modules["PySide6.QtGui"].QPixmapCache.clear()
    gc.collect()
    hand_back_freed_memory()


def visit_presets(app, panel) -> None:
    """Every preset of the panel drawn once, then its defaults: the pages and item pools a panel
    builds on first use are built (a warm-up, before items or memory are counted)."""
    for preset in panel.PARAMS.presets.values():
        panel.set_all(panel.PARAMS.resolve(preset.values))
        settle(app, [panel])
    panel.set_all(panel.PARAMS.defaults())
    settle(app, [panel])


def counts_after_presets(app, window, panels) -> dict[str, dict[str, int]]:
    """Item counts of every panel after the same walk through its presets: a page that is not shown
    keeps what it last drew (a legend's rows), so counts compare after the same scenes."""
    counts = {}
    for panel in panels:
        window.show_panel(panel.NAME)
        visit_presets(app, panel)
        counts[panel.NAME] = item_counts(panel)
    return counts


def settle(app, panels, timeout_s: float = 60.0) -> None:
    """Run the event loop until no panel has a compute in flight."""
    end = time.perf_counter() + timeout_s
    while any(p.busy() for p in panels) and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    app.processEvents()


def soak(app, window, changes: int = 10_000, seed: int = 0, per_visit: int = 50) -> dict:
    """``changes`` random changes across every panel of ``window`` (``per_visit`` in a row on one
    panel, as a user drags), each followed by one pass of the event loop and a 60 Hz frame's pause
    when a compute is in flight. Returns RSS before and after (every panel visited once first, so
    start-up allocations are not counted), the worst time the GUI thread spent in one change or one
    pass of the event loop (a panel switch, which paints the whole panel, is timed apart), where
    the changes over budget spent it (``over_budget_in``: in set_values, in the event loop mostly
    drawing, or mostly painting and laying out), the numbers of refused changes and of exceptions, and item counts. RSS
    is read before and READINGS times over the run, each time with the result caches emptied and
    freed memory handed back (release_memory); the growth is :func:`trend` of the readings."""
    from widgets.panel import Panel
    from workbench.registry import PANELS

    rng = np.random.default_rng(seed)
    errors: list[str] = []
    hook = sys.excepthook
    sys.excepthook = lambda kind, value, tb: errors.append(f"{kind.__name__}: {value}")  # slots' exceptions
    try:
        panels = [window.show_panel(name) for name in PANELS]
        failures = []
        for panel in panels:
            panel.message.connect(lambda text, is_error: is_error and text.startswith("Could not compute")
                                  and failures.append(text))
        for panel in panels:  # warm-up: every preset and a few hundred changes per panel, then back to defaults
            window.show_panel(panel.NAME)
            visit_presets(app, panel)
            for _ in range(200):
                panel.set_values(random_changes(panel.PARAMS, rng))
                app.processEvents()
            panel.set_all(panel.PARAMS.defaults())
            settle(app, panels)
        before_counts = counts_after_presets(app, window, panels)
        release_memory()
        gc.freeze()  # as the app does once it has started: the long-lived widgets leave the collector's view
        before = rss_mb()
        blocks: list[tuple[float, str]] = []
        over_in = {"set_values": 0, "drawing": 0, "painting and layout": 0}
        switches: list[float] = []
        Panel.longest_wait_ms = 0.0
        refused, done, readings = 0, 0, [before]
        while done < changes:
            start = time.perf_counter()
            panel = window.show_panel(panels[int(rng.integers(len(panels)))].NAME)
            app.processEvents()  # the whole panel painted: a switch, timed on its own, not a change
            switches.append((time.perf_counter() - start) * 1000)
            for k in range(min(per_visit, changes - done)):
                change = random_changes(panel.PARAMS, rng)
                start = time.perf_counter()
                refused += not panel.set_values(change)
                in_change = time.perf_counter() - start
                drawn_before, start = Panel.drawing_ms, time.perf_counter()
                app.processEvents()
                in_events = time.perf_counter() - start
                drawing = Panel.drawing_ms - drawn_before
                if in_change >= in_events:
                    where, part = "in set_values", "set_values"
                else:  # the pass draws and paints what arrived in it: an earlier change's result too
                    where = f"in the event loop, {drawing:.0f} ms of it drawing"
                    part = "drawing" if drawing >= in_events * 1000 / 2 else "painting and layout"  # ms against s
                ms = max(in_change, in_events) * 1000
                over_in[part] += ms >= BUDGET_BLOCK_MS
                blocks.append((ms, f"{panel.NAME} {where}, change {k + 1} of a visit: {change}"[:200]))
                if panel.busy():
                    time.sleep(1 / 60)
                done += 1
            panel.set_all(panel.PARAMS.defaults())
            settle(app, panels)
            if done >= len(readings) * changes / READINGS:  # RSS in use, READINGS times over the run
                release_memory()
                readings.append(rss_mb())
        for panel in panels:
            panel.set_all(panel.PARAMS.defaults())
        settle(app, panels)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        release_memory()
        after = rss_mb()
        after_counts = counts_after_presets(app, window, panels)  # after RSS: the walk fills caches
    finally:
        sys.excepthook = hook
    grown = {f"{name} {key}": (before_counts[name].get(key, 0), count)
             for name, counts in after_counts.items() for key, count in counts.items()
             if count != before_counts[name].get(key, 0)}
    return {"changes": changes, "rss_before_mb": before, "rss_after_mb": after,
            "rss_growth_mb": trend(readings + [after]), "rss_readings_mb": readings + [after], "peak_rss_mb": peak,
            "worst_block_ms": max(ms for ms, _ in blocks),
            "p99_block_ms": float(np.percentile([ms for ms, _ in blocks], 99)),
            "blocks_over_budget": sum(ms >= BUDGET_BLOCK_MS for ms, _ in blocks), "over_budget_in": over_in,
            "worst_blocks": sorted(blocks, reverse=True)[:5],
            "panel_switch_ms": (float(np.percentile(switches, 50)), float(np.percentile(switches, 95)), max(switches)),
            "longest_compute_wait_ms": Panel.longest_wait_ms,
            "per_panel_block_ms": {name: (float(np.percentile(times, 50)), float(np.percentile(times, 95)), max(times))
                                   for name in PANELS if (times := [ms for ms, what in blocks if what.split()[0] == name])},
            "refused": refused, "exceptions": len(errors), "compute_failures": len(failures),
            "first_problems": (errors + failures)[:5], "item_counts_changed": grown}


def trend(readings: list[float]) -> float:
    """Growth from the start to the end of a run of RSS readings, each end the median of its first
    (last) three: one reading taken while an allocator arena or a cache happens to be full moves
    it little, a leak that grows throughout moves it fully."""
    return statistics.median(readings[-3:]) - statistics.median(readings[:3])


def soak_line(result: dict) -> str:
    ok = lambda good: "ok" if good else "OVER BUDGET"  # noqa: E731
    return (f"soak, {result['changes']} random changes across all panels: RSS {result['rss_before_mb']:.0f} -> "
            f"{result['rss_after_mb']:.0f} MB, growth {result['rss_growth_mb']:+.1f} (median of the first three readings "
            f"to the last three; budget < {BUDGET_RSS_GROWTH_MB:.0f}; readings "
            f"{' '.join(f'{r:.0f}' for r in result['rss_readings_mb'])}) "
            f"{ok(result['rss_growth_mb'] < BUDGET_RSS_GROWTH_MB)}, peak {result['peak_rss_mb']:.0f} MB; worst GUI-thread block "
            f"{result['worst_block_ms']:.1f} ms (budget < {BUDGET_BLOCK_MS:.0f}) {ok(result['worst_block_ms'] < BUDGET_BLOCK_MS)}, "
            f"p99 {result['p99_block_ms']:.1f} ms, {result['blocks_over_budget']} changes over 16 ms ("
            f"{', '.join(f'{n} {part}' for part, n in result['over_budget_in'].items())}); "
            f"longest wait on a compute {result['longest_compute_wait_ms']:.1f} ms; "
            f"a panel switch (the whole panel painted, not a change) p50 {result['panel_switch_ms'][0]:.0f} ms, "
            f"max {result['panel_switch_ms'][2]:.0f} ms; "
            f"exceptions {result['exceptions']}, compute failures {result['compute_failures']} "
            f"{ok(result['exceptions'] + result['compute_failures'] == 0)}; refused {result['refused']}; "
            f"item counts changed: {len(result['item_counts_changed'])} {ok(not result['item_counts_changed'])}")


def main(argv: list[str] | None = None) -> int:
    import os
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m workbench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ["QT_QPA_PLATFORM"] = offscreen.platform()  # a desktop screen: the 1500 x 920 window fits
    os.environ.setdefault("WORKBENCH_CONFIG_DIR", tempfile.mkdtemp(prefix="workbench-soak-"))
    from PySide6.QtWidgets import QApplication

    from widgets.style import Style
    from workbench.app import MainWindow
    from workbench.cli import _quiet_qt_messages, hand_over_quickly, keep_freed_memory
    from workbench.i18n import set_language
    from workbench.registry import PANELS

    set_language("en")
    _quiet_qt_messages()
    keep_freed_memory()
    hand_over_quickly()
    app = QApplication.instance() or QApplication([])
    window = MainWindow(Style(), next(iter(PANELS)))
    window.show()
    app.processEvents()
    result = soak(app, window, args.changes, args.seed)
    print(soak_line(result))
    for problem in result["first_problems"]:
        print("  problem:", problem)
    for name, (p50, p95, most) in result["per_panel_block_ms"].items():
        print(f"  {name:<16} change + draw + paint: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {most:.1f} ms")
    for ms, what in result["worst_blocks"]:
        print(f"  block {ms:.1f} ms: {what}")
    for key, (old, new) in list(result["item_counts_changed"].items())[:20]:
        print(f"  items {key}: {old} -> {new}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
