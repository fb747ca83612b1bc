"""The played run (workbench.compute.training_run) against the backend's own fit and closed forms."""

import math

import numpy as np
import pytest

from workbench.compute import training as trn
from workbench.compute import training_run as runs


@pytest.fixture(scope="module")
def data():
    return trn.make_dataset("circle", n=120, noise=0.1, seed=3)


def state(**spec):
    return trn.init_state(trn.NetworkSpec(**{"hidden": (6,), **spec}), trn.TrainConfig(lr=0.1, batch_size=12), seed=2)


def test_history_is_fits_evaluation_epoch_by_epoch(data):
    run = runs.Run(state(), data)
    run.train_epochs(7)
    run.train_batches(3)  # part of an epoch: not recorded yet
    reference = trn.fit(state(), data, 7)
    h = run.history()
    np.testing.assert_array_equal(h.epochs, np.arange(8))
    np.testing.assert_allclose(h.train_loss[1:], reference.train_loss, rtol=1e-12)
    np.testing.assert_allclose(h.test_loss[1:], reference.test_loss, rtol=1e-12)
    assert h.train_loss[0] == trn.evaluate(state(), data).train_loss
    assert run.state.step == reference.state.step + 3


def test_minibatch_loss_and_gradient_norm_are_the_epochs_means(data):
    run = runs.Run(state(), data)
    run.train_epochs(2)
    s, first = trn.train_epoch(state(), data)
    _, second = trn.train_epoch(s, data)
    h = run.history()
    assert h.minibatch_loss[2] == pytest.approx(np.mean(second.loss), rel=1e-12)
    np.testing.assert_allclose(h.grad_norm[1], first.grad_norms.mean(axis=0), rtol=1e-12)


def test_early_stopping_matches_the_backends_and_restores_the_best_weights(data):
    noisy = trn.make_dataset("xor", n=40, noise=0.5, seed=1)
    spec = {"hidden": (32, 32), "activation": "relu"}
    run = runs.Run(state(**spec), noisy, patience=20)
    run.train_epochs(1000)
    reference = trn.fit(state(**spec), noisy, 1000, early_stopping=trn.EarlyStopping(20))
    assert run.stopped_epoch == reference.state.epoch and run.best_epoch == reference.early_stopping.best_epoch
    for (w, b), (rw, rb) in zip(run.state.weights, reference.early_stopping.best_state.weights):
        np.testing.assert_array_equal(w, rw)
    assert run.view().epoch == run.best_epoch  # the weights shown are the best epoch's


def test_history_is_decimated_and_memory_stays_bounded(data, monkeypatch):
    monkeypatch.setattr(runs, "MAX_HISTORY", 50)
    tiny = trn.make_dataset("gauss", n=20, seed=0)
    run = runs.Run(trn.init_state(trn.NetworkSpec(hidden=()), trn.TrainConfig(batch_size=20)), tiny)
    run.train_epochs(400)
    h = run.history()
    assert len(h.epochs) <= 51 and h.epochs[0] == 0 and np.all(np.diff(h.epochs) > 0)
    assert h.epochs[-1] >= 400 - 16  # the newest epochs are still there, at the coarser stride


def test_view_plane_is_the_prediction_on_the_grid_and_boundary_lies_on_the_half_level(data):
    run = runs.Run(state(), data)
    run.train_epochs(30)
    view = run.view(plane_cells=40)
    (lo, hi), _ = view.extent
    xs = np.linspace(lo, hi, 40)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)
    np.testing.assert_allclose(view.plane, trn.predict(run.state, grid).reshape(40, 40), rtol=1e-12)
    assert len(view.boundary) > 10
    at_boundary = trn.predict(run.state, view.boundary)
    assert np.max(np.abs(at_boundary - 0.5)) < 0.1  # linear interpolation between grid points
    wrong = (trn.predict(run.state, data.x_train) > 0.5) != (data.y_train > 0.5)
    np.testing.assert_array_equal(view.wrong_train, data.x_train[wrong])
    assert view.near_zero == np.mean(np.abs(np.concatenate([w.ravel() for w, _ in run.state.weights])) < 1e-3)
    assert view.weight_shares.sum() == pytest.approx(1.0)


def test_contour_of_a_cone_is_a_circle():
    xs = np.linspace(-2, 2, 81)
    x, y = np.meshgrid(xs, xs)
    segments = runs.contour_segments(np.hypot(x, y), 1.0, xs, xs)
    radii = np.hypot(segments[:, 0], segments[:, 1])
    assert len(segments) > 100 and np.max(np.abs(radii - 1.0)) < 2e-3
    assert len(runs.contour_segments(np.ones((5, 5)), 0.5, xs[:5], xs[:5])) == 0


def test_divergence_keeps_the_last_finite_state():
    data = trn.make_dataset("plane", n=60, seed=0)
    spec = trn.NetworkSpec(hidden=(8,), activation="linear", task="regression")
    run = runs.Run(trn.init_state(spec, trn.TrainConfig(lr=5.0)), data)
    run.train_epochs(50)
    assert run.diverged_epoch is not None and run.finished
    view = run.view()
    assert all(np.all(np.isfinite(w)) for w, _ in view.weights) and np.all(np.isfinite(view.plane))
    assert all(math.isfinite(v) for v in view.history.train_loss)


def test_dropout_masks_drawn_for_one_example():
    spec = trn.NetworkSpec(hidden=(64, 64), dropout=0.5)
    run = runs.Run(trn.init_state(spec, trn.TrainConfig()), trn.make_dataset("xor", n=40))
    dropped = run.view().dropped
    assert [len(m) for m in dropped] == [64, 64] and 10 < sum(m.sum() for m in dropped) < 118
    none = runs.Run(trn.init_state(trn.NetworkSpec(hidden=(8,)), trn.TrainConfig()), trn.make_dataset("xor", n=40))
    assert not any(m.any() for m in none.view().dropped)
