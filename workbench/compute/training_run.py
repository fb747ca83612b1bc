"""A training run played epoch by epoch, and what a view of it shows (Qt-free, numpy).

:class:`Run` wraps :mod:`workbench.compute.training`: it trains a state batch by batch or epoch by
epoch, records the per-epoch history (train and test loss in evaluation mode, the minibatch loss in
training mode, the gradient norm per layer), stops early on the test loss, and reports divergence.
:meth:`Run.view` gives every number a picture of the run needs: the output over the input plane
with its decision boundary, each unit's output over the plane, the weights, the history and the
weight statistics. Usable from a notebook::

    run = Run(init_state(spec, config), make_dataset("spiral"))
    run.train_epochs(100)
    view = run.view()
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.compute import training as trn

NEVER = 10 ** 6  # the patience of a run without early stopping
MAX_HISTORY = 2000  # recorded epochs kept; beyond it every other one is dropped (an hour of play stays small)
NEAR_ZERO = 1e-3  # |w| below this counts as a zero weight
HISTOGRAM_BINS = 40


@dataclass(frozen=True)
class History:
    """Per recorded epoch (decimated past MAX_HISTORY): epochs (k,) int; train_loss, test_loss (k,)
    mean data loss in evaluation mode; minibatch_loss (k,) mean minibatch data loss in training mode
    (dropout and batch statistics on) over the epoch's steps; grad_norm (k, layers) mean Frobenius norm
    of dL/dW per linear layer over the epoch's steps; near_zero (k,) share of weights |w| < 1e-3."""

    epochs: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    minibatch_loss: np.ndarray
    grad_norm: np.ndarray
    near_zero: np.ndarray


@dataclass(frozen=True)
class Column:
    """One column of the network diagram: the input features, a hidden layer or the output.
    pictures (k, cells, cells): the first k units' outputs over the plane (row = x2, col = x1);
    total: units in the layer; levels: (lo, hi) of the pictures' colour scale; kind: "input",
    "hidden" or "output"; names: the features' names (input column) or ()."""

    kind: str
    total: int
    pictures: np.ndarray
    levels: tuple[float, float]
    names: tuple[str, ...]


@dataclass(frozen=True)
class RunView:
    """What a picture of the run shows, at its current epoch.

    plane (cells, cells): the prediction (probability or value) over the plane, row = x2, col = x1;
    extent ((x1_lo, x1_hi), (x2_lo, x2_hi)); levels (lo, hi) of its colour scale; boundary (m, 2):
    segment end points (pairs) of the 0.5 contour (classification) or of the 0 contour (regression);
    wrong_train / wrong_test (k, 2): misclassified points (none for regression); columns: the
    diagram's columns; weights: the (W (fan_in, fan_out), b (fan_out,)) of each linear layer;
    dropped: per hidden layer, a bool mask (units,) of the units dropout dropped in the last
    training step (all False without dropout); history; weight_edges (41,), weight_shares (40,):
    histogram of the weight matrices' entries as shares; near_zero: share of |w| < 1e-3; n_weights.
    epoch, step: the shown weights' completed epochs and steps (after early stopping: the best
    epoch's, while the history goes on to the stopping epoch); train_loss, test_loss (eval mode), test_accuracy
    (classification, else None); best_epoch (lowest test loss so far),
    stopped_epoch (early stopping), diverged_epoch.
    """

    task: str
    plane: np.ndarray
    extent: tuple[tuple[float, float], tuple[float, float]]
    levels: tuple[float, float]
    boundary: np.ndarray
    wrong_train: np.ndarray
    wrong_test: np.ndarray
    columns: tuple[Column, ...]
    weights: tuple
    activations: tuple[str, ...]
    dropped: tuple[np.ndarray, ...]
    history: History
    weight_edges: np.ndarray
    weight_shares: np.ndarray
    near_zero: float
    n_weights: int
    epoch: int
    step: int
    train_loss: float
    test_loss: float
    test_accuracy: float | None
    best_epoch: int | None
    stopped_epoch: int | None
    diverged_epoch: int | None


def contour_segments(values: np.ndarray, level: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Marching squares: the line segments where ``values`` (ny, nx), sampled at ``xs`` (nx,) by
    ``ys`` (ny,), crosses ``level``, as (2m, 2) end points in pairs. Saddle cells are split by their
    centre value. Linear interpolation along the cell edges."""
    v = np.asarray(values, dtype=float) - level
    a, b, c, d = v[:-1, :-1], v[:-1, 1:], v[1:, 1:], v[1:, :-1]  # corners: (y0,x0) (y0,x1) (y1,x1) (y1,x0)
    x0, x1 = xs[:-1][None, :], xs[1:][None, :]
    y0, y1 = ys[:-1][:, None], ys[1:][:, None]

    def cut(p, q):  # where the edge from value p to value q crosses 0, as a fraction
        with np.errstate(divide="ignore", invalid="ignore"):
            t = p / (p - q)
        return np.clip(np.nan_to_num(t, nan=0.5), 0.0, 1.0)

    shape = a.shape
    edges = {  # edge -> (x, y) of the crossing on it
        "bottom": (x0 + cut(a, b) * (x1 - x0), np.broadcast_to(y0, shape)),
        "right": (np.broadcast_to(x1, shape), y0 + cut(b, c) * (y1 - y0)),
        "top": (x0 + cut(d, c) * (x1 - x0), np.broadcast_to(y1, shape)),
        "left": (np.broadcast_to(x0, shape), y0 + cut(a, d) * (y1 - y0)),
    }
    crosses = {"bottom": (a > 0) != (b > 0), "right": (b > 0) != (c > 0), "top": (d > 0) != (c > 0),
               "left": (a > 0) != (d > 0)}
    count = sum(m.astype(int) for m in crosses.values())
    centre = (a + b + c + d) / 4
    pairs = []
    two = count == 2
    order = ("bottom", "right", "top", "left")
    for i, first in enumerate(order):  # cells with two crossings: join them
        for second in order[i + 1:]:
            mask = two & crosses[first] & crosses[second]
            pairs.append((first, second, mask))
    four = count == 4  # saddle: join so that the centre's side is kept together
    same = (centre > 0) == (a > 0)
    pairs += [("bottom", "left", four & ~same), ("right", "top", four & ~same),
              ("bottom", "right", four & same), ("top", "left", four & same)]
    points = []
    for first, second, mask in pairs:
        if not mask.any():
            continue
        (ax, ay), (bx, by) = edges[first], edges[second]
        seg = np.stack([np.stack([ax[mask], ay[mask]], 1), np.stack([bx[mask], by[mask]], 1)], 1)
        points.append(seg.reshape(-1, 2))
    return np.concatenate(points) if points else np.empty((0, 2))


class Run:
    """A live training run: ``state`` (a :class:`training.TrainState`) on ``data``, its history and
    early stopping (``patience`` epochs on the test loss, 0: off; the best epoch's state is kept
    and restored when it stops; the best epoch is tracked either way)."""

    def __init__(self, state: Any, data: Any, patience: int = 0):
        self.state, self.data = state, data
        self.epoch = int(state.epoch)
        self.diverged_epoch: int | None = None
        self.stopping = trn.EarlyStopping(patience or NEVER)  # tracks the best epoch even when it never stops
        self._rows: list[tuple] = []  # epoch, train, test, minibatch, grad norms, near-zero
        self._epoch_losses: list[np.ndarray] = []  # the current epoch's minibatch losses so far
        self._epoch_grads: list[np.ndarray] = []
        self._last = trn.evaluate(state, data)
        self._stride = 1  # record every stride-th epoch (grows as the history is decimated)
        self._record(initial=True)

    @property
    def patience(self) -> int:
        return 0 if self.stopping.patience == NEVER else self.stopping.patience

    @patience.setter
    def patience(self, patience: int) -> None:
        s = self.stopping
        if patience != self.patience and not s.stopped:
            self.stopping = trn.EarlyStopping(patience or NEVER, s.min_delta, s.best_epoch, s.best_loss, s.best_state,
                                              False, s.since)

    @property
    def best_epoch(self) -> int | None:
        return self.stopping.best_epoch

    @property
    def stopped_epoch(self) -> int | None:
        return self.epoch if self.stopping.stopped and self.diverged_epoch is None else None

    # ---- training ---------------------------------------------------------------------------
    def set_config(self, config: Any) -> None:
        """Go on with another training configuration (learning rate, penalties, batch size, ...)."""
        if not self.finished:
            self.state = trn.with_config(self.state, config)

    @property
    def finished(self) -> bool:
        return self.stopping.stopped or self.diverged_epoch is not None

    def train_batches(self, steps: int) -> None:
        """Train ``steps`` minibatches (recording each epoch they complete)."""
        for _ in range(steps):
            if self.finished:
                return
            self._absorb(*trn.train(self.state, self.data, 1))

    def train_epochs(self, epochs: int, deadline: float | None = None) -> int:
        """Train ``epochs`` whole epochs (the current one finished first), or fewer when
        ``deadline`` (time.perf_counter) passes or the run stops; returns how many."""
        done = 0
        while done < epochs and not self.finished:
            self._absorb(*trn.train_epoch(self.state, self.data))
            done += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        return done

    def _absorb(self, state: Any, history: Any) -> None:
        self.state = state
        if len(history.loss):
            self._epoch_losses.append(history.loss)
            self._epoch_grads.append(history.grad_norms)
        if history.diverged_step is not None:
            self.diverged_epoch = self.epoch + 1
            return
        if history.epochs:
            self.epoch = int(state.epoch)
            self._end_of_epoch()

    def _end_of_epoch(self) -> None:
        self._last = trn.evaluate(self.state, self.data)
        if not (math.isfinite(self._last.test_loss) and math.isfinite(self._last.train_loss)):
            self.diverged_epoch = self.epoch
            return
        self._record()
        self.stopping = self.stopping.update(self.state, self._last.test_loss)
        if self.stopping.stopped:  # back to the best weights, as early stopping keeps them
            self.state = self.stopping.best_state
            self._last = trn.evaluate(self.state, self.data)

    def _record(self, initial: bool = False) -> None:
        self._history = None
        losses = np.concatenate(self._epoch_losses) if self._epoch_losses else np.array([np.nan])
        grads = np.concatenate(self._epoch_grads) if self._epoch_grads else None
        self._epoch_losses, self._epoch_grads = [], []
        layers = len(self.state.weights)
        grad = grads.mean(axis=0) if grads is not None and len(grads) else np.full(layers, np.nan)
        if initial or self.epoch % self._stride == 0:
            self._rows.append((self.epoch, float(self._last.train_loss), float(self._last.test_loss),
                               float(np.mean(losses)), grad, near_zero_share(self.state.weights)))
        if len(self._rows) > MAX_HISTORY:  # keep every other row: memory stays flat over hours of play
            self._rows = self._rows[::2]
            self._stride *= 2

    # ---- what a picture shows -----------------------------------------------------------------
    def history(self) -> History:
        """The recorded epochs as arrays (made once per recorded epoch, not per frame drawn)."""
        if self._history is None:
            self._history = self._history_arrays()
        return self._history

    _history: History | None = None

    def _history_arrays(self) -> History:
        rows = [r for r in self._rows if math.isfinite(r[3]) or r[0] == 0]
        layers = len(self.state.weights)
        if not rows:
            empty = np.empty(0)
            return History(empty.astype(int), empty, empty, empty, np.empty((0, layers)), empty)
        epochs = np.array([r[0] for r in rows])
        minibatch = np.array([r[3] if math.isfinite(r[3]) else r[1] for r in rows])
        return History(epochs, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]), minibatch,
                       np.array([r[4] if len(r[4]) == layers else np.full(layers, np.nan) for r in rows]),
                       np.array([r[5] for r in rows]))

    def view(self, plane_cells: int = 64, unit_cells: int = 24, shown_units: int = 10) -> RunView:
        """Everything a picture of the run shows now (see :class:`RunView`)."""
        state, data = self.state, self.data
        (x_lo, x_hi), (y_lo, y_hi) = extent = plane_extent(data)
        xs, ys = np.linspace(x_lo, x_hi, plane_cells), np.linspace(y_lo, y_hi, plane_cells)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        plane = np.asarray(trn.predict(state, grid), dtype=float).reshape(plane_cells, plane_cells)
        classification = data.task == "classification"
        if classification:
            levels, level = (0.0, 1.0), 0.5
        else:
            top = float(max(np.max(np.abs(data.y_train)), 1e-9))
            levels, level = (-top, top), 0.0
        plane = np.nan_to_num(np.clip(plane, *levels), nan=level)
        boundary = contour_segments(plane, level, xs, ys)
        wrong_train = wrong_test = np.empty((0, 2))
        if classification:
            wrong_train = data.x_train[(np.asarray(trn.predict(state, data.x_train)) > 0.5) != (data.y_train > 0.5)]
            wrong_test = data.x_test[(np.asarray(trn.predict(state, data.x_test)) > 0.5) != (data.y_test > 0.5)]
        weights = tuple(state.weights)
        entries = np.concatenate([w.ravel() for w, _ in weights])
        finite = entries[np.isfinite(entries)]
        top = float(np.max(np.abs(finite))) if finite.size else 1.0
        top = top if top > 0 else 1.0
        counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(-top, top))
        evaluation = self._last
        accuracy = getattr(evaluation, "test_accuracy", None)
        return RunView(
            task=data.task, plane=plane, extent=extent, levels=levels, boundary=boundary,
            wrong_train=wrong_train, wrong_test=wrong_test,
            columns=self._columns(extent, unit_cells, shown_units), weights=weights,
            activations=state.spec.layer_activations, dropped=self._dropped(),
            history=self.history(), weight_edges=edges, weight_shares=counts / max(finite.size, 1),
            near_zero=near_zero_share(weights), n_weights=int(entries.size), epoch=int(state.epoch),
            step=int(state.step), train_loss=float(evaluation.train_loss), test_loss=float(evaluation.test_loss),
            test_accuracy=None if accuracy is None else float(accuracy), best_epoch=self.best_epoch,
            stopped_epoch=self.stopped_epoch, diverged_epoch=self.diverged_epoch)

    def _dropped(self) -> tuple[np.ndarray, ...]:
        """Which hidden units dropout drops for one example in a training step (a fresh draw per
        step, as :func:`training.forward` draws them in training mode)."""
        masks = trn.dropout_masks(self.state.spec, 1, seed=int(self.state.step))
        return tuple(~mask[0] for mask in masks)

    def _columns(self, extent, cells: int, shown: int) -> tuple[Column, ...]:
        (x_lo, x_hi), (y_lo, y_hi) = extent
        xs, ys = np.linspace(x_lo, x_hi, cells), np.linspace(y_lo, y_hi, cells)
        grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
        spec = self.state.spec
        inputs = trn.features(grid, spec.features)  # (cells^2, features)
        result = trn.forward(self.state, grid)
        columns = [Column("input", inputs.shape[1], _pictures(inputs, cells, shown), _symmetric(inputs), tuple(spec.features))]
        for hidden in result.hidden:
            columns.append(Column("hidden", hidden.shape[1], _pictures(hidden, cells, shown), _symmetric(hidden), ()))
        output = np.asarray(trn.predict(self.state, grid), dtype=float)[:, None]
        levels = (0.0, 1.0) if self.data.task == "classification" else _symmetric(output)
        columns.append(Column("output", 1, _pictures(output, cells, 1), levels, ()))
        return tuple(columns)

    def describe_unit(self, column: int, unit: int) -> dict:
        """The numbers of one unit, for a read-out: bias, mean |weight in|, mean output on the
        training set."""
        if column == 0:
            return {"kind": "input", "name": self.state.spec.features[unit]}
        w, b = self.state.weights[column - 1]
        return {"kind": "output" if column == len(self.state.weights) else "hidden", "bias": float(b[unit]),
                "fan_in": int(w.shape[0]), "weights_in": w[:, unit].copy()}


@dataclass(frozen=True)
class RunData:
    """A run as data (the panel's JSON export): epoch and step, every linear layer's (W (fan_in,
    fan_out), b (fan_out,)), the normalization layers' parameters and statistics, the history, the
    best / stopped / diverged epochs, and the data set."""

    epoch: int
    step: int
    weights: tuple
    norms: tuple
    history: History
    best_epoch: int | None
    stopped_epoch: int | None
    diverged_epoch: int | None
    data: Any


def run_data(run: Run) -> RunData:
    return RunData(run.epoch, int(run.state.step), tuple(run.state.weights), tuple(run.state.norms), run.history(),
                   run.best_epoch, run.stopped_epoch, run.diverged_epoch, run.data)


def near_zero_share(weights) -> float:
    """Share of the weight-matrix entries with |w| < 1e-3 (biases not counted)."""
    entries = np.concatenate([w.ravel() for w, _ in weights])
    return float(np.mean(np.abs(entries) < NEAR_ZERO)) if entries.size else 0.0


def plane_extent(data) -> tuple[tuple[float, float], tuple[float, float]]:
    """The square window a data set is drawn in, centred on 0: the Playground's [-6, 6], grown in
    half steps where points lie beyond it (noise, a CSV file)."""
    points = np.concatenate([data.x_train, data.x_test])
    top = float(np.max(np.abs(points))) if points.size else 0.0
    top = max(trn.EXTENT, math.ceil(top * 1.02 * 2) / 2)
    return (-top, top), (-top, top)


def _pictures(values: np.ndarray, cells: int, shown: int) -> np.ndarray:
    """The first ``shown`` columns of ``values`` (cells^2, units) as (k, cells, cells) pictures."""
    k = min(shown, values.shape[1])
    return np.ascontiguousarray(values[:, :k].T.reshape(k, cells, cells))


def _symmetric(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    top = float(np.max(np.abs(finite))) if finite.size else 1.0
    return (-top, top) if top > 0 else (-1.0, 1.0)
