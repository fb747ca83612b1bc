"""The optimizers panel, driven through its real controls; asserts on what is drawn."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from widgets.optimizers import NAMES, OptimizersPanel, hyper_for
from workbench.compute import optimizers as opt


@pytest.fixture
def panel(open_panel):
    return open_panel(OptimizersPanel, 1400, 900)


def expected(values, name):
    surface = opt.make_surface(values["surface"], kappa=values["kappa"], theta=values["theta"])
    return opt.trace(surface, name, (values["start_x"], values["start_y"]), values["steps"], **hyper_for(name, values))


def drawn_path(panel, name):
    x, y = panel.paths[name].getData()
    return np.column_stack([x, y])


def assert_draws(panel, name, points):
    """The drawn path is the trace, less only points within half a pixel of their predecessor."""
    drawn = drawn_path(panel, name)
    np.testing.assert_array_equal(drawn[0], points[0])
    np.testing.assert_array_equal(drawn[-1], points[-1])
    kept = {tuple(p) for p in drawn}
    assert kept <= {tuple(p) for p in points}
    cell = np.array(panel.map.vb.viewPixelSize()) / 2
    dropped = [i for i in range(1, len(points) - 1) if tuple(points[i]) not in kept]
    for i in dropped:
        assert np.all(np.floor(points[i] / cell) == np.floor(points[i - 1] / cell))


def type_into(qtbot, panel, name, text):
    edit = panel.controls[name].edit
    edit.setFocus()
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key_Return)


def test_default_scene_draws_every_optimizer(panel):
    for name in NAMES:
        assert_draws(panel, name, expected(panel.values, name).points)
        assert panel.paths[name].isVisible()
    assert panel.image.image.shape == (240, 240)
    assert len(panel.legend.items) == len(NAMES)


def test_typing_a_learning_rate_redraws_that_path(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        type_into(qtbot, panel, "adam_lr", "0.2")
    assert panel.values["adam_lr"] == 0.2
    assert_draws(panel, "adam", expected(panel.values, "adam").points)
    assert panel.controls["adam_lr"].slider.value() == panel.controls["adam_lr"].to_slider(0.2)


def test_slider_moves_the_start_point(qtbot, panel):
    slider = panel.controls["start_x"].slider
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        slider.setValue(slider.value() + 7)
    x = panel.values["start_x"]
    assert x != -1.5
    assert drawn_path(panel, "sgd")[0, 0] == pytest.approx(x)
    assert panel.controls["start_x"].edit.text() == panel.PARAMS["start_x"].format(x)


@pytest.mark.parametrize("text", ["abc", "", "nan", "-1", "1e9", "0"])
def test_bad_learning_rate_is_refused_and_nothing_changes(qtbot, panel, text):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda text, error: messages.append((text, error)))
    type_into(qtbot, panel, "sgd_lr", text)
    assert panel.values == before
    control = panel.controls["sgd_lr"]
    assert control.error_label.isVisibleTo(panel) and "sgd_lr" in control.error_label.text()
    assert control.edit.text() == "0.001"
    assert messages and messages[-1][1] is True
    with qtbot.waitSignal(panel.drawn, timeout=10_000):  # a good value clears the message
        type_into(qtbot, panel, "sgd_lr", "0.002")
    assert not control.error_label.isVisibleTo(panel)


def test_start_outside_window_and_no_optimizer_are_refused(panel):
    before = dict(panel.values)
    assert not panel.set_values({"start_x": 50})
    assert not panel.set_values({f"use_{n}": False for n in NAMES})
    assert panel.values == before


def test_click_on_the_map_sets_the_start(qtbot, panel):
    target = QPointF(0.5, 2.5)
    scene_pos = panel.map.vb.mapViewToScene(target)
    view_pos = panel.map_view.mapFromScene(scene_pos)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        qtbot.mouseClick(panel.map_view.viewport(), Qt.LeftButton, pos=view_pos)
    assert panel.values["start_x"] == pytest.approx(0.5, abs=0.03)
    assert panel.values["start_y"] == pytest.approx(2.5, abs=0.03)


def test_surface_change_brings_its_start_and_window(qtbot, panel):
    combo = panel.controls["surface"].combo
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        combo.setCurrentIndex(combo.findData("saddle"))
    saddle = opt.make_surface("saddle")
    assert (panel.values["start_x"], panel.values["start_y"]) == saddle.start
    assert not panel.controls["kappa"].isEnabled()
    (xmin, xmax), (ymin, ymax) = panel.map.vb.viewRange()
    assert xmin == pytest.approx(saddle.window[0]) and ymax == pytest.approx(saddle.window[3])


def test_divergence_is_shown_not_raised(qtbot, panel):
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("lr_too_large")
    diverged = {n: t.diverged_at for n, t in panel.result.traces.items() if t.diverged_at is not None}
    assert diverged
    name, step = next(iter(diverged.items()))
    labels = {label.text for _, label in panel.legend.items}
    assert {"Adam", "Momentum"} <= labels  # the ones that did not diverge keep their plain names
    assert sum("✗ diverged" in text for text in labels) == len(diverged)
    assert np.isfinite(drawn_path(panel, name)).all()
    assert len(panel.ends.data) == len(diverged)
    np.testing.assert_allclose([panel.ends.data["x"][0], panel.ends.data["y"][0]], panel.result.traces[name].points[-1])
    assert any(f"diverged at step {step}" in m for m in messages)


def test_playback_scrubber_shows_a_prefix(qtbot, panel):
    panel.scrubber.setValue(40)
    assert_draws(panel, "adam", panel.result.traces["adam"].points[:41])
    np.testing.assert_allclose(panel.head_of("adam"), panel.result.traces["adam"].points[40])
    assert "40" in panel.scrub_label.text()
    panel.toggle_play()
    qtbot.waitUntil(lambda: panel.shown_step > 0 and panel.shown_step != 40, timeout=5000)
    panel.pause()


def test_presets_restore_a_full_scene(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("rotated_bowl")
    assert panel.values["surface"] == "bowl" and panel.values["theta"] == 45.0
    assert set(panel.result.traces) == {"sgd", "momentum", "rmsprop", "adam"}
    assert not panel.paths["nesterov"].isVisible()
    assert panel.controls["theta"].edit.text() == "45"


def test_notes_show_only_the_racing_optimizers(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("saddle_escape")
    html = panel.notes_html()
    assert "<!--rule:" not in html
    assert "Nesterov" not in panel.notes.toPlainText() or "nesterov" not in html.lower().split("rule")[0]


def test_schedule_lr_curve(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"schedule": "cosine", "T_max": 100})
    steps, lrs = panel.lr_curves["adam"].xData, 10 ** panel.lr_curves["adam"].yData  # drawn as log10
    expected_lrs = panel.result.traces["adam"].lrs
    np.testing.assert_allclose(lrs, expected_lrs[steps.astype(int) - 1])
    assert steps[0] == 1 and steps[-1] == 500 and 0 not in lrs
    zero = np.flatnonzero(expected_lrs == 0) + 1  # cosine with eta_min = 0: no point on a log axis
    assert len(zero) and not np.isin(zero, steps).any()
    assert lrs.min() < 1e-3 * lrs[0]
    assert panel.controls["T_max"].isEnabled() and not panel.controls["step_size"].isEnabled()


def test_paths_are_smooth_once_changes_settle(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"start_x": -1.0})
    assert not panel.paths["adam"].opts["antialias"]  # while changes arrive: the fast path
    qtbot.waitUntil(lambda: panel.paths["adam"].opts["antialias"], timeout=2000)  # then smooth
    panel.compute_now()
    assert panel.paths["adam"].opts["antialias"]  # exports are always smooth


def test_nesterov_momentum_starts_above_zero_as_torch_requires():
    import torch

    from widgets.optimizers import PARAMS, compute_race
    from workbench.params import ParamError

    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum"):
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.0, nesterov=True)
    with pytest.raises(ParamError, match="nesterov_momentum.*0.001 to 0.999"):
        PARAMS.update(PARAMS.defaults(), {"nesterov_momentum": 0})
    lowest = PARAMS.update(PARAMS.defaults(), {"nesterov_momentum": PARAMS["nesterov_momentum"].lo})
    race = compute_race(lowest)  # the slider's left end computes: all but plain SGD
    sgd = opt.trace(opt.make_surface("rosenbrock"), "sgd", (-1.5, 2.0), 500, lr=lowest["nesterov_lr"])
    assert np.abs(race.traces["nesterov"].points - sgd.points).max() < 0.01


# ---- schedules, the compared schedule and the moving-average page ------------------------------------
from widgets.optimizers import (EWA_LEVELS, EWA_STEPS, SCHEDULE_FIELDS, EwaPage, parse_milestones,  # noqa: E402
                                schedule_of)

NEW_KINDS = {
    "multistep": {"milestones": "100, 250, 250", "gamma": 0.5},
    "cosine_restarts": {"T_0": 60, "T_mult": 2, "eta_min": 1e-5},
    "inverse_sqrt": {"warmup_steps": 40, "d_model": 64},
    "onecycle": {"pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
    "plateau": {"factor": 0.5, "patience": 5, "threshold": 0.001},
}


def drawn_lrs(panel, name, curves=None):
    curve = (curves or panel.lr_curves)[name]
    return curve.xData.astype(int), 10 ** curve.yData  # drawn as log10


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_every_new_schedule_kind_drives_the_traces_and_the_lr_plot(qtbot, panel, kind):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"schedule": kind, **NEW_KINDS[kind]})
    schedule = schedule_of(panel.values, kind)
    assert schedule.kind == kind
    for name in ("sgd", "adam"):
        expected_trace = opt.trace(opt.make_surface("rosenbrock"), name, (-1.5, 2.0), 500, schedule=schedule,
                                   **hyper_for(name, panel.values))
        np.testing.assert_array_equal(panel.result.traces[name].points, expected_trace.points)
        steps, lrs = drawn_lrs(panel, name)
        np.testing.assert_allclose(lrs, expected_trace.lrs[steps - 1], rtol=1e-12)
        losses = expected_trace.losses if kind == "plateau" else None
        np.testing.assert_array_equal(expected_trace.lrs, opt.learning_rates(schedule, panel.values[f"{name}_lr"], 500,
                                                                             losses=losses))
    used = set(SCHEDULE_FIELDS[kind])
    for field in {f for fields in SCHEDULE_FIELDS.values() for f in fields}:
        assert panel.controls[field].isEnabled() == (field in used), field


def test_inverse_sqrt_takes_the_warmup_steps_as_its_warmup(panel):
    schedule = schedule_of({**panel.values, "warmup_steps": 40, "d_model": 64}, "inverse_sqrt")
    assert (schedule.warmup, schedule.d_model) == (40, 64)
    assert schedule_of(panel.values, "constant") is None
    assert parse_milestones(" 300,150 ; 150 ") == (150, 150, 300)


@pytest.mark.parametrize("text, words", [("abc", "abc is not a step"), ("0, 10", "0 is not a step"),
                                         ("10.5", "10.5 is not a step"), ("9999", "9999 is not a step"),
                                         (",".join(["5"] * 40), "at most 32"), ("²", "is not a step")])
def test_bad_milestones_are_refused_naming_the_parameter(qtbot, panel, text, words):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda message, error: messages.append(message))
    assert not panel.set_values({"milestones": text})
    assert panel.values == before
    assert messages and "milestones" in messages[-1] and words in messages[-1]
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"schedule": "multistep"})
    panel.groups["Learning-rate schedule"].expand(animate=False)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):  # the control takes a good list
        type_into(qtbot, panel, "milestones", "50 400")
    assert panel.values["milestones"] == "50 400"
    assert panel.result.traces["sgd"].lrs[[49, 50, 399, 400]].tolist() == [1e-3, 5e-4, 5e-4, 2.5e-4]


def test_a_one_cycle_torch_cannot_run_is_refused_and_nothing_changes(panel):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda message, error: messages.append(message))
    assert not panel.set_values({"schedule": "onecycle", "pct_start": 0.2, "steps": 5})
    assert panel.values == before and "pct_start" in messages[-1]
    assert not panel.set_values({"compare_schedule": "onecycle", "pct_start": 0.01, "steps": 100})
    assert panel.values == before


def test_the_compared_schedule_races_every_optimizer_again_dashed(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("restarts_rastrigin")
    race = panel.result
    assert set(race.traces) == set(race.twins) == {"sgd"}
    restarts, plain = race.traces["sgd"], race.twins["sgd"]
    np.testing.assert_array_equal(plain.lrs, opt.learning_rates(opt.Schedule("cosine", T_max=500), 0.015, 500))
    assert panel.twin_paths["sgd"].isVisible() and not panel.twin_paths["adam"].isVisible()
    assert panel.twin_paths["sgd"].opts["pen"].style() == Qt.DashLine
    x, y = panel.twin_paths["sgd"].getData()
    np.testing.assert_array_equal([x[-1], y[-1]], plain.points[-1])
    steps, lrs = drawn_lrs(panel, "sgd", panel.twin_lr)
    np.testing.assert_allclose(lrs, plain.lrs[steps - 1])
    assert panel.legend.items[-1][1].text == "dashed: Cosine annealing"
    # each restart throws SGD out of the minimum it found: it ends in the global one, the plain cosine beside it
    assert restarts.losses[-1] < 1e-9 < 0.5 < plain.losses[-1] < 1.5
    jumps = np.flatnonzero(np.diff(restarts.lrs) > 0) + 1
    np.testing.assert_array_equal(jumps, np.arange(50, 500, 50))
    assert all(restarts.losses[k + 10] > 100 * restarts.losses[k] for k in jumps[3:])
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"compare_schedule": "none"})
    assert not panel.twin_paths["sgd"].isVisible() and panel.result.twins == {}
    assert len(panel.legend.items) == 1


def test_playback_replays_the_compared_paths_too(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"compare_schedule": "cosine"})
    panel.scrubber.setValue(30)
    x, y = panel.twin_paths["adam"].getData()
    np.testing.assert_array_equal([x[-1], y[-1]], panel.result.twins["adam"].points[30])


def test_the_moving_average_page_is_built_when_first_shown(qtbot, panel):
    assert panel.ewa_view is None  # opening the panel built the race only
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"view": "ewa", "beta": 0.9})
    page = panel.ewa_view
    assert page is not None and panel.pages.currentWidget() is page
    assert not panel.playback.isVisibleTo(panel)
    clean, noisy = opt.step_series(EWA_STEPS, 60, *EWA_LEVELS, sigma=0.3, seed=0)
    corrected, raw = opt.ewa(noisy, 0.9), opt.ewa(noisy, 0.9, bias_correction=False)
    for curve, expected in ((page.values_curve, noisy), (page.clean_curve, clean), (page.corrected_curve, corrected.average),
                            (page.raw_curve, raw.average), (page.correction_curve, corrected.correction)):
        x, y = curve.getData()
        np.testing.assert_array_equal(x, np.arange(1, EWA_STEPS + 1))
        np.testing.assert_array_equal(y, expected)
    assert page.band.getRegion() == pytest.approx((60.5, 70.5))  # the window 1/(1 - 0.9) = 10 after the change
    assert page.lag_line.isVisible() and page.lag_line.value() == 61 + 7 - 1  # ceil(log 0.5 / log 0.9) = 7
    text = page.readout.text()
    assert "window 1/(1 − β) = 10 steps" in text and "half the jump after 7 steps" in text
    assert f"{raw.average[0]:.3g} without correction" in text and f"{corrected.average[0]:.3g} with it" in text
    assert "69%" not in page.weights_label.toPlainText() and "65%" in page.weights_label.toPlainText()
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"view": "race"})
    assert panel.pages.currentWidget() is panel.race_page and panel.playback.isVisibleTo(panel)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"view": "ewa"})
    assert panel.ewa_view is page  # built once


def test_the_beta_slider_redraws_the_averages_in_place(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("ewa_bias")
    page = panel.ewa_view
    items = len(page.canvas.scene().items())
    curve = page.corrected_curve
    slider = panel.controls["beta"].slider
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        slider.setValue(slider.value() - 80)
    beta = panel.values["beta"]
    assert beta < 0.98 and page.corrected_curve is curve and len(page.canvas.scene().items()) == items
    _, noisy = opt.step_series(EWA_STEPS, 100, *EWA_LEVELS, sigma=0.3, seed=0)
    np.testing.assert_array_equal(curve.getData()[1], opt.ewa(noisy, beta).average)
    np.testing.assert_allclose(page.weights_curve.getData()[1][:5], beta ** np.arange(5))  # relative to the newest's 1 − β
    assert page.weights_band.getRegion() == pytest.approx((0, 1 / (1 - beta)))
    assert not curve.opts["antialias"]  # drawn plain while the slider moves, smooth once it settles
    qtbot.waitUntil(lambda: curve.opts["antialias"], timeout=2000)


def test_the_average_of_the_gradient_sgd_saw(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"view": "ewa", "ewa_series": "sgd_y", "noise_sigma": 5.0, "seed": 3})
    sgd = opt.trace(opt.make_surface("rosenbrock"), "sgd", (-1.5, 2.0), 500, noise=(5.0, 16), seed=3, lr=1e-3)
    seen = opt.seen_gradients("rosenbrock", sgd, (5.0, 16), 3)[:, 1]
    page = panel.ewa_view
    np.testing.assert_array_equal(page.values_curve.getData()[1], seen)
    np.testing.assert_array_equal(page.raw_curve.getData()[1], opt.ewa(seen, 0.9, bias_correction=False).average)
    assert not page.clean_curve.isVisible() and not page.lag_line.isVisible()
    assert not panel.controls["change_at"].isEnabled() and panel.controls["beta"].isEnabled()
    # a walk that diverges at its first step (beyond the panel's ranges, not the backend's) leaves nothing to average
    empty = EwaPage("sgd_x", 0.9, np.zeros(0), None, None, None, None, opt.ewa_weights(0.9, EWA_STEPS), None, None)
    page.draw(empty)
    assert "no gradient to average" in page.readout.text()
    assert not page.corrected_curve.isVisible() and not page.raw_curve.isVisible()


@pytest.mark.parametrize("changes, words", [({"beta": 1.0}, "beta"), ({"beta": "nan"}, "beta"),
                                            ({"change_at": 0}, "change_at"), ({"ewa_noise": -1}, "ewa_noise"),
                                            ({"view": "surface"}, "view"), ({"T_mult": 1.5}, "T_mult"),
                                            ({"compare_schedule": "linear"}, "compare_schedule")])
def test_bad_moving_average_and_schedule_input_is_refused(panel, changes, words):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda message, error: messages.append(message))
    assert not panel.set_values(changes)
    assert panel.values == before and words in messages[-1]
