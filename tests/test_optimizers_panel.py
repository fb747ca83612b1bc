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
    panel.set_values({"start_x": -1.0})
    qtbot.waitUntil(lambda: panel.result is not None and panel.values["start_x"] == -1.0)
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
