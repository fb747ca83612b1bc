"""The training panel: driven through its real controls, checked against the backend."""

import json
import subprocess
import sys
import math
import warnings

import numpy as np
import pytest
from PySide6.QtCore import Qt

from widgets.training import TrainingPanel, layers_text, parse_hidden, parse_layers
from workbench.compute import training as trn


@pytest.fixture
def panel(open_panel):
    return open_panel(TrainingPanel, 1500, 900)


def weights_equal(a, b):
    return all(np.array_equal(wa, wb) and np.array_equal(ba, bb) for (wa, ba), (wb, bb) in zip(a, b))


def test_default_scene_draws_the_initial_state(panel):
    run, setup = panel.run, panel.result
    assert run.epoch == 0 and weights_equal(run.state.weights, setup.initial.weights)
    assert panel.heat.image.shape == (64, 64)
    assert np.all(np.isfinite(panel.heat.image)) and 0.0 <= panel.heat.image.min() <= panel.heat.image.max() <= 1.0
    x, y = panel.train_points.getData()
    np.testing.assert_array_equal(x, setup.data.x_train[:, 0])
    assert len(x) == 250 and not panel.test_points.isVisible()
    assert "epoch 0" in panel.status.text()
    assert [len(c.pictures) for c in panel._view.columns] == [2, 8, 8, 1]  # features x1, x2; two layers of 8; the output
    opaque = panel.mosaic.image[..., 3] > 0
    assert opaque.sum() == 19 * 24 * 24  # every picture in the one mosaic image


def test_the_heat_map_is_the_backends_prediction(panel):
    view = panel.run.view(plane_cells=64)
    (lo, hi), _ = view.extent
    xs = np.linspace(lo, hi, 64)
    expected = trn.predict(panel.run.state, np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)).reshape(64, 64)
    np.testing.assert_allclose(panel.heat.image, expected, rtol=1e-12)


def test_play_trains_and_pause_stops(qtbot, panel):
    qtbot.mouseClick(panel.play_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.run.epoch >= 5, timeout=10_000)
    qtbot.mouseClick(panel.play_button, Qt.LeftButton)
    epoch = panel.run.epoch
    qtbot.wait(100)
    assert panel.run.epoch == epoch and panel.play_button.text() == "Play"
    x, y = panel.train_curve.getData()
    assert len(x) == epoch + 1 and np.all(np.isfinite(y))
    reference = trn.fit(panel.result.initial, panel.result.data, epoch)
    np.testing.assert_allclose(10 ** y[1:], reference.train_loss, rtol=1e-9)
    assert weights_equal(panel.run.state.weights, reference.state.weights)


def test_step_epoch_rewind_and_new_weights(qtbot, panel):
    panel.step(batches=1)
    assert panel.run.state.step == 1 and panel.run.epoch == 0
    panel.step(epochs=1)
    assert panel.run.epoch == 1 and panel.run.state.step == 25
    panel.rewind()
    assert panel.run.epoch == 0 and weights_equal(panel.run.state.weights, panel.result.initial.weights)
    before = panel.result.initial.weights
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.new_weights()
    assert panel.values["init_seed"] == 1 and not weights_equal(panel.run.state.weights, before)


def test_a_training_change_goes_on_from_the_current_weights(qtbot, panel):
    panel.step(epochs=3)
    weights = panel.run.state.weights
    assert panel.set_values({"lr": 0.1, "l2": 0.01})
    qtbot.waitUntil(lambda: panel.run.state.config.lr == 0.1, timeout=5_000)
    assert panel.run.epoch == 3 and weights_equal(panel.run.state.weights, weights)
    assert panel.run.state.config.l2 == 0.01
    assert panel.set_values({"hidden": "4"})  # a network change starts again
    qtbot.waitUntil(lambda: panel.run.epoch == 0 and len(panel.run.state.weights) == 2, timeout=5_000)


def test_layer_and_unit_buttons_edit_the_hidden_layers(qtbot, panel):
    for action, expected in ((lambda: panel.change_layers(+1), "8, 8, 8"), (lambda: panel.change_units(+2), "10, 10, 10"),
                             (lambda: panel.change_layers(-1), "10, 10"), (lambda: panel.change_units(-2), "8, 8")):
        action()
        assert panel.values["hidden"] == expected
        assert panel.controls["hidden"].edit.text() == expected


def test_hidden_layers_are_validated():
    assert parse_hidden("8, 4") == (8, 4) and parse_hidden("0") == ()
    assert parse_layers("8 relu, 4") == ((8, "relu"), (4, None)) and layers_text(parse_layers("8 relu,4")) == "8 relu, 4"
    for bad in ("8,0", "65", "a", ",".join(["2"] * 9), "8 swoosh", "8 relu tanh"):
        with pytest.raises(ValueError):
            parse_layers(bad)


def test_each_layer_may_have_its_own_activation(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"hidden": "6 relu, 4", "activation": "sigmoid"})
    assert panel.run.state.spec.layer_activations == ("relu", "sigmoid")
    assert [h.toPlainText() for h in panel.headers[1:3]] == ["6 ReLU", "4 Sigmoid"]
    panel.change_units(+2)
    assert panel.values["hidden"] == "8 relu, 6"


@pytest.mark.parametrize("changes, words", [
    ({"hidden": "8,99"}, "hidden"), ({"hidden": "x"}, "hidden"), ({"lr": 0.0}, "lr"), ({"lr": "fast"}, "lr"),
    ({"feature_x1": False, "feature_x2": False}, "feature_"), ({"dropout": 0.95}, "dropout")])
def test_bad_input_is_refused_and_nothing_changes(panel, changes, words):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda text, error: messages.append((text, error)))
    assert not panel.set_values(changes)
    assert panel.values == before and messages and messages[-1][1] and words in messages[-1][0]


def test_divergence_is_shown_not_drawn_as_nan(qtbot, panel):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            panel.set_values({"lr": 10.0, "activation": "relu", "init": "kaiming_normal", "hidden": "64,64,64"})
        panel.step(epochs=30)
    assert panel.run.diverged_epoch is not None
    assert "diverged at epoch" in panel.status.text()
    assert np.all(np.isfinite(panel.heat.image))
    assert all(np.all(np.isfinite(w)) for w, _ in panel.run.state.weights)
    for curve in (panel.train_curve, panel.test_curve):
        assert np.all(np.isfinite(curve.getData()[1]))


def test_linear_activations_draw_a_straight_boundary(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):  # the new run is made on the worker
        panel.apply_preset("all_linear")
    panel.pause()
    panel.step(epochs=20)
    segments = panel.boundary.getData()
    points = np.stack(segments, 1)
    assert len(points) > 4
    centred = points - points.mean(axis=0)
    assert np.linalg.svd(centred, compute_uv=False)[1] < 1e-6 * np.abs(centred).max() * len(points)


def test_hovering_a_unit_and_a_connection_reads_its_numbers(panel):
    view = panel._view
    x, y = panel._positions[1][0]
    text = panel._describe(x, y)
    b = view.weights[0][1][0]
    assert "unit 1 of layer 1" in text and f"{b:.4g}" in text and "tanh" in text
    (x0, y0), (x1, y1) = panel._positions[0][0], panel._positions[1][0]
    mid = ((x0 + 0.5 + x1 - 0.5) / 2, (y0 + y1) / 2)
    text = panel._describe(*mid)
    assert f"w = {view.weights[0][0][0, 0]:.4g}" in text and "x1" in text


def test_dropout_marks_dropped_units(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"dropout": 0.5})
    panel.step(batches=3)
    dropped = panel.dropped.getData()[0]
    assert 0 < len(dropped) < 16


def test_early_stopping_keeps_the_best_epoch(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):  # the new run is made on the worker
        panel.apply_preset("early_stop")
    panel.pause()
    panel.run.train_epochs(2000)
    panel._frame()
    run = panel.run
    assert run.stopped_epoch is not None and run.stopped_epoch - run.best_epoch >= 100
    assert weights_equal(run.state.weights, run.stopping.best_state.weights)
    assert panel.best_line.isVisible() and panel.best_line.value() == run.best_epoch
    assert "stopped early" in panel.status.text()


def test_data_export_holds_the_live_weights(panel):
    from workbench.export_data import to_jsonable
    panel.step(epochs=2)
    data = to_jsonable(panel.data_result())
    assert data["epoch"] == 2
    np.testing.assert_allclose(np.array(data["weights"][0][0]), panel.run.state.weights[0][0])


def test_cli_exports_figure_data_and_script(tmp_path):
    png, js, py = tmp_path / "t.png", tmp_path / "t.json", tmp_path / "t.py"
    done = subprocess.run([sys.executable, "-m", "workbench", "export", "training", "--set", "epochs=3", "-o", str(png),
                           "--data", str(js), "--script", str(py)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["result"]["epoch"] == 3
    assert "torch" in py.read_text()
    only = subprocess.run([sys.executable, "-m", "workbench", "export", "optimizers", "--script", str(py)],
                          capture_output=True, text=True, timeout=120)
    assert only.returncode == 2 and "no PyTorch script" in only.stderr


def test_a_csv_file_trains_and_a_bad_one_is_refused_naming_file_and_line(qtbot, panel, tmp_path):
    good = tmp_path / "mine.csv"
    rows = ["x1,x2,label"] + [f"{x:.3f},{y:.3f},{int(x * y > 0)}" for x, y in
                              np.random.default_rng(0).uniform(-5, 5, (80, 2))]
    good.write_text("\n".join(rows) + "\n")
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.load_csv(str(good))
    assert panel.values["dataset"] == "csv" and len(panel.run.data.y_train) == 40
    assert not panel.controls["noise"].isEnabled()
    panel.step(epochs=3)
    assert panel.run.epoch == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,0\n3,4,1\n5,six,0\n7,8,1\n9,10,0\n")
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    before = dict(panel.values)
    assert not panel.load_csv(str(bad))
    assert panel.values == before and "bad.csv, line 3" in messages[-1] and "csv_file" in messages[-1]
    script = TrainingPanel.script({**panel.values, "epochs": 2})
    assert "torch" in script and "-4." in script  # the file's points are embedded


def test_a_loss_of_zero_or_infinity_draws_as_a_floor_or_a_gap(qtbot, panel):
    """Found by the soak: a run whose loss reached exactly 0 (saturated cross-entropy) crashed the
    loss axis (log10(0) = -inf)."""
    from dataclasses import replace
    panel.step(epochs=3)
    view = panel._view
    h = view.history
    losses = np.array([1.0, 0.0, np.inf, 0.5][:len(h.epochs)] + [0.5] * max(0, len(h.epochs) - 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel._draw_curves(replace(view, history=replace(h, train_loss=losses, minibatch_loss=losses)))
    y = panel.train_curve.getData()[1]
    assert y[1] == -30 and np.isnan(y[2])  # 0 at the floor, inf a gap
    (x0, x1), (y0, y1) = panel._ranges["loss"]
    assert all(map(math.isfinite, (x0, x1, y0, y1)))


def test_regression_points_are_shaded_in_a_few_shared_brushes(qtbot, panel):
    """A regression's points take the plane's colour scale in POINT_SHADES steps: one brush per shade,
    shared (the scatter renders one symbol per distinct brush), each the shade nearest its value."""
    from widgets.training import POINT_SHADES
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"dataset": "multigauss", "n_points": 1000})
    qtbot.waitUntil(lambda: not panel.busy(), timeout=10_000)
    view, data = panel._view, panel.run.data
    brushes = panel.train_points.data["brush"]
    assert len({id(b) for b in brushes}) <= POINT_SHADES < len(data.y_train)
    lo, hi = view.levels
    for y, brush in zip(data.y_train[:50], brushes[:50]):
        shade = round((min(max(y, lo), hi) - lo) / (hi - lo) * (POINT_SHADES - 1))
        expected = panel.lut[round(shade * 255 / (POINT_SHADES - 1))]
        assert brush.color().getRgb()[:3] == tuple(int(c) for c in expected[:3])


def test_a_playing_run_trains_on_the_worker_thread(qtbot, panel):
    """Training and the run's picture happen on the panel's worker; the GUI thread draws, and pause
    waits for the frame in flight so the run stops where the figure shows it."""
    import threading
    threads = set()
    run = panel.run
    original = run.train_epochs

    def train_epochs(*args, **kwargs):
        threads.add(threading.current_thread().name)
        return original(*args, **kwargs)
    run.train_epochs = train_epochs
    panel.play()
    qtbot.waitUntil(lambda: panel.run.epoch >= 6, timeout=10_000)
    panel.pause()
    assert threads and all(name.startswith("compute-training") for name in threads)
    assert not panel.busy() and panel._view.epoch == panel.run.epoch
    epoch = panel.run.epoch
    qtbot.wait(50)
    assert panel.run.epoch == epoch
