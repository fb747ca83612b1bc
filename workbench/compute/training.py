"""Training a small network on 2-D data, live: the backend of the training panel (as TensorFlow
Playground does it, with torch's semantics).

Qt-free and torch-free (numpy + stdlib), float64 throughout. The network, its initialisation,
losses, penalties, normalisation layers and optimizers follow torch (``torch.nn.Linear``,
``torch.nn.init``, ``BatchNorm1d``, ``LayerNorm``, ``BCEWithLogitsLoss``, ``MSELoss``,
``torch.optim``) formula by formula; the tests train the same ``torch.nn.Sequential`` with
``torch.optim`` on the same minibatches and compare losses, gradient norms, weights and running
statistics after 200 steps to 1e-9 relative. One exception, inherited from the activations
module: hardsigmoid's slope is exactly 1/6 here, torch's float64 kernel uses the float32 constant
(3e-8 off). tanh, sigmoid and relu are differentiated by torch's autograd formulas (1 - y^2,
y (1 - y), z > 0), the other activations by the activations module's kernels.

Speed: a step is hand-written numpy on one flat vector holding parameters, optimizer buffers and
running statistics (one copy per step keeps the last finite state); no autograd, no per-step
object creation. The default scene (2 x 8 tanh, batch 10) takes about 0.05 ms a step;
8 x 64 units about 0.3-0.7 ms.

Data
    :func:`make_dataset` builds the Playground's data sets (circle, xor, gauss, spiral; plane and
    multigauss for regression) with its formulas and coordinates (about [-6, 6]), plus three
    boundaries of our own (sine, cubic, abs: points above y = f(x) are class 1).
    ``noise`` is a fraction in [0, 1]: the Playground's noise slider 0..50 % is 0..0.5 here,
    entering its formulas exactly as there. :func:`load_dataset` reads a CSV of x1, x2, label or
    value. Labels are 0 / 1 (the Playground's -1 / 1).

Network (:class:`NetworkSpec`)
    features (:data:`FEATURES`, computed from the raw points) -> [Linear -> norm -> activation ->
    dropout] per hidden layer -> Linear to one output: a logit (classification) or a value
    (regression). ``y = x @ W + b`` with W (fan_in, fan_out), i.e. torch's weight transposed.

Training (:func:`init_state`, :func:`train`, :func:`train_epoch`, :func:`with_config`)
    Minibatch gradient descent on mean data loss + l1 * sum|W| + (l2 / 2) * sum W^2 (weight
    matrices only), with torch.optim's SGD (momentum, Nesterov), Adam, AdamW or RMSprop; weight
    decay on the weight matrices only (as a torch parameter group). Each epoch visits a fresh
    permutation of the training set, drawn from ``np.random.default_rng([config.seed, epoch])``
    (dropout masks from ``np.random.default_rng([config.seed, epoch, 1])``), in consecutive
    slices of ``batch_size`` (the last one of an epoch may be smaller; with batch norm a last
    slice of a single point is skipped, as torch's BatchNorm1d refuses a batch of one). A state
    is a value: training it again from the same state gives the same result, and training in
    pieces equals training at once (``==`` compares every field, arrays by value).

Evaluation and the rest
    :func:`forward` (every hidden unit, for pictures), :func:`predict`, :func:`evaluate`,
    :class:`EarlyStopping` (patience in epochs on the test loss, keeping the best state),
    :func:`fit` (whole epochs with evaluation) and :func:`pytorch_script` (the same run as a
    stand-alone PyTorch script that prints the same per-epoch losses).

Divergence is a result, never an exception or a numpy warning: see :func:`train`. Bad input
raises ValueError naming the parameter or field.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from dataclasses import dataclass, field, fields
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from workbench.compute.activations import _KERNELS, ACTIVATIONS, recommended_gain
from workbench.compute.checks import choice, flag, integer, is_real, number

__all__ = [
    "ACTIVATION_NAMES",
    "DATASETS",
    "DATASET_TASKS",
    "EXTENT",
    "FEATURES",
    "INITS",
    "LOSSES",
    "NORMS",
    "OPTIMIZERS",
    "TASKS",
    "TORCH_ACTIVATIONS",
    "Dataset",
    "EarlyStopping",
    "Evaluation",
    "FitResult",
    "ForwardResult",
    "History",
    "NetworkSpec",
    "NormState",
    "TrainConfig",
    "TrainState",
    "evaluate",
    "features",
    "fit",
    "forward",
    "grid",
    "init_state",
    "load_dataset",
    "make_dataset",
    "predict",
    "pytorch_script",
    "train",
    "train_epoch",
    "dropout_masks",
    "with_config",
]

DATASETS = ("circle", "xor", "gauss", "spiral", "sine", "cubic", "abs", "plane", "multigauss")
DATASET_TASKS: Mapping[str, str] = MappingProxyType(
    {name: ("regression" if name in ("plane", "multigauss") else "classification") for name in DATASETS})
FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin x1", "sin x2")
ACTIVATION_NAMES = tuple(ACTIVATIONS)  # the activations panel's list, "linear" (no activation) included
INITS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "zeros", "normal")
NORMS = (None, "batch", "layer")
TASKS = ("classification", "regression")
LOSSES = ("bce", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
EXTENT = 6.0
"""The data live in about [-EXTENT, EXTENT]^2 (the Playground's axes)."""

MAX_HIDDEN_LAYERS = 8
MAX_WIDTH = 64
MAX_POINTS = 100_000
MIN_POINTS = 4
MAX_CSV_BYTES = 20 * 2 ** 20
MAX_STEPS = 1_000_000
NORM_EPS = 1e-5
BN_MOMENTUM = 0.1

# ---- validation ---------------------------------------------------------------------------------


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _same(a: object, b: object) -> bool:
    """Deep equality of result values: arrays by shape and values, containers item by item."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and bool(np.array_equal(a, b)))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _hash_part(v: object) -> object:
    if isinstance(v, np.ndarray):
        return v.shape
    if isinstance(v, (tuple, list)):
        return tuple(_hash_part(x) for x in v)
    if isinstance(v, Mapping):
        return tuple(v)
    try:
        return hash(v)
    except TypeError:
        return 0


class _Value:
    """Equality for frozen dataclasses holding arrays: two results are equal when every field is
    (arrays: same shape and values), so ``train(train(s, d, a)[0], d, b)[0] == train(s, d, a + b)[0]``
    is meaningful. Hashable, consistently (by the shapes and the scalar fields)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self) if f.compare)

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(_hash_part(getattr(self, f.name)) for f in fields(self)
                                                   if f.compare))


# ---- features -----------------------------------------------------------------------------------

_FEATURE_FNS = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1^2": lambda x1, x2: x1 * x1,
    "x2^2": lambda x1, x2: x2 * x2,
    "x1*x2": lambda x1, x2: x1 * x2,
    "sin x1": lambda x1, x2: np.sin(x1),
    "sin x2": lambda x1, x2: np.sin(x2),
}


def _check_features(name: str, names: object) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise ValueError(f"{name}: must be a tuple of feature names from {FEATURES}, got {names!r}")
    names = tuple(names)
    if not names:
        raise ValueError(f"{name}: needs at least one feature")
    for n in names:
        choice(name, n, FEATURES)
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: a feature is listed twice: {names!r}")
    return names


def _points(name: str, x: ArrayLike) -> np.ndarray:
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be an (n, 2) array of numbers") from None
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name}: must be an (n, 2) array of points, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: must contain only finite numbers")
    return x


def _features(x: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    out = np.empty((len(x), len(names)))
    x1, x2 = x[:, 0], x[:, 1]
    with np.errstate(over="ignore"):  # x1^2 of a point beyond 1e154 is inf, silently
        for j, n in enumerate(names):
            out[:, j] = _FEATURE_FNS[n](x1, x2)
    return out


def features(x: ArrayLike, names: Sequence[str] = ("x1", "x2")) -> np.ndarray:
    """The input features ``names`` (from :data:`FEATURES`) of the points ``x`` (n, 2):
    (n, len(names)), column j = feature names[j]: x1, x2, x1^2, x2^2, x1*x2, sin x1, sin x2."""
    return _features(_points("x", x), _check_features("names", names))


def grid(n: int = 64, extent: float = EXTENT) -> np.ndarray:
    """(n * n, 2) points of an n x n grid over [-extent, extent]^2, row by row from the bottom:
    point i * n + j = (x1_j, x2_i); reshape a result to (n, n) for an image."""
    n = integer("n", n, 2, 2048)
    extent = number("extent", extent, 0.0, lo_open=True)
    axis = np.linspace(-extent, extent, n)
    out = np.empty((n * n, 2))
    out[:, 0] = np.tile(axis, n)
    out[:, 1] = np.repeat(axis, n)
    return out


# ---- datasets -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dataset(_Value):
    """A 2-D data set split into training and test points.

    name: the generator's name (or the CSV file's name); task: "classification" (labels 0 / 1)
    or "regression" (values); x_train (n_train, 2), y_train (n_train,), x_test (n_test, 2),
    y_test (n_test,): float64, read-only, coordinates in about [-6, 6].
    """

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ValueError(f"name: must be a string, got {self.name!r}")
        choice("task", self.task, TASKS)
        for part in ("train", "test"):
            x = _points(f"x_{part}", getattr(self, f"x_{part}"))
            try:
                y = np.asarray(getattr(self, f"y_{part}"), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"y_{part}: must be a 1-D array of numbers") from None
            if y.shape != (len(x),) or not np.all(np.isfinite(y)):
                raise ValueError(f"y_{part}: must be {len(x)} finite numbers (one per point), got shape {y.shape}")
            if self.task == "classification" and not np.all((y == 0.0) | (y == 1.0)):
                raise ValueError(f"y_{part}: classification labels must be 0 or 1")
            object.__setattr__(self, f"x_{part}", x if not x.flags.writeable else _read_only(x.copy()))
            object.__setattr__(self, f"y_{part}", y if not y.flags.writeable else _read_only(y.copy()))
        if len(self.x_train) == 0:
            raise ValueError("x_train: needs at least one training point")

    def train_features(self, names: tuple[str, ...]) -> np.ndarray:
        """features(x_train, names), computed once per names (read-only)."""
        key = ("train", names)
        if key not in self._cache:
            self._cache[key] = _read_only(_features(self.x_train, names))
        return self._cache[key]

    def test_features(self, names: tuple[str, ...]) -> np.ndarray:
        """features(x_test, names), computed once per names (read-only)."""
        key = ("test", names)
        if key not in self._cache:
            self._cache[key] = _read_only(_features(self.x_test, names))
        return self._cache[key]


def _split_count(n: int, train_fraction: float) -> int:
    return min(max(int(math.floor(n * train_fraction + 1e-9)), 1), n - 1)


def _split(name: str, task: str, x: np.ndarray, y: np.ndarray, order: np.ndarray,
           train_fraction: float) -> Dataset:
    n_train = _split_count(len(x), train_fraction)
    tr, te = order[:n_train], order[n_train:]
    return Dataset(name, task, _read_only(x[tr]), _read_only(y[tr]), _read_only(x[te]), _read_only(y[te]))


def _circle(rng, n, noise):
    radius = 5.0
    n_pos = (n + 1) // 2
    parts = []
    for count, r_lo, r_hi in ((n_pos, 0.0, radius * 0.5), (n - n_pos, radius * 0.7, radius)):
        r = rng.uniform(r_lo, r_hi, count)
        angle = rng.uniform(0.0, 2.0 * math.pi, count)
        px, py = r * np.sin(angle), r * np.cos(angle)
        nx = rng.uniform(-radius, radius, count) * noise
        ny = rng.uniform(-radius, radius, count) * noise
        label = (np.hypot(px + nx, py + ny) < radius * 0.5).astype(np.float64)
        parts.append((np.column_stack([px, py]), label))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _xor(rng, n, noise):
    px = rng.uniform(-5.0, 5.0, n)
    px += np.where(px > 0, 0.3, -0.3)
    py = rng.uniform(-5.0, 5.0, n)
    py += np.where(py > 0, 0.3, -0.3)
    nx = rng.uniform(-5.0, 5.0, n) * noise
    ny = rng.uniform(-5.0, 5.0, n) * noise
    label = ((px + nx) * (py + ny) >= 0).astype(np.float64)
    return np.column_stack([px, py]), label


def _gauss(rng, n, noise):
    sd = math.sqrt(0.5 + noise * 7.0)  # the Playground's variance: noise 0..0.5 -> 0.5..4
    n_pos = (n + 1) // 2
    pos = rng.normal(2.0, sd, (n_pos, 2))
    neg = rng.normal(-2.0, sd, (n - n_pos, 2))
    return np.concatenate([pos, neg]), np.concatenate([np.ones(n_pos), np.zeros(n - n_pos)])


def _spiral(rng, n, noise):
    n_pos = (n + 1) // 2
    parts = []
    for count, delta, label in ((n_pos, 0.0, 1.0), (n - n_pos, math.pi, 0.0)):
        i = np.arange(count, dtype=np.float64)
        r = i / count * 5.0
        t = 1.75 * i / count * 2.0 * math.pi + delta
        px = r * np.sin(t) + rng.uniform(-1.0, 1.0, count) * noise
        py = r * np.cos(t) + rng.uniform(-1.0, 1.0, count) * noise
        parts.append((np.column_stack([px, py]), np.full(count, label)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


_BOUNDARIES = {
    "sine": lambda x: 3.0 * np.sin(x),
    "cubic": lambda x: x * x * x / 36.0,
    "abs": lambda x: np.abs(x) - 3.0,
}


def _uniform_box(rng, n, noise):
    p = rng.uniform(-EXTENT, EXTENT, (n, 2))
    shift = rng.uniform(-EXTENT, EXTENT, (n, 2)) * noise
    return p, p + shift


def _boundary(kind):
    def make(rng, n, noise):
        p, q = _uniform_box(rng, n, noise)
        return p, (q[:, 1] > _BOUNDARIES[kind](q[:, 0])).astype(np.float64)
    return make


def _plane(rng, n, noise):
    p, q = _uniform_box(rng, n, noise)
    return p, (q[:, 0] + q[:, 1]) / 10.0


_GAUSSIANS = ((-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0),
              (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0))


def _multigauss(rng, n, noise):
    p, q = _uniform_box(rng, n, noise)
    value = np.zeros(n)
    for cx, cy, sign in _GAUSSIANS:
        new = sign * np.clip(1.0 - np.hypot(q[:, 0] - cx, q[:, 1] - cy) / 2.0, 0.0, 1.0)
        value = np.where(np.abs(new) > np.abs(value), new, value)
    return p, value


_GENERATORS = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral,
               "sine": _boundary("sine"), "cubic": _boundary("cubic"), "abs": _boundary("abs"),
               "plane": _plane, "multigauss": _multigauss}


def _check_split(n: int, train_fraction: object, seed: object) -> tuple[float, int]:
    train_fraction = number("train_fraction", train_fraction, 0.0, 1.0, lo_open=True, hi_open=True)
    seed = integer("seed", seed, 0, 2 ** 63 - 1)
    return train_fraction, seed


def make_dataset(name: str, *, n: int = 500, noise: float = 0.0, train_fraction: float = 0.5,
                 seed: int = 0) -> Dataset:
    """``n`` points of data set ``name`` (:data:`DATASETS`), shuffled and split.

    Classification (labels 1 / 0 for the Playground's positive / negative class):

    - circle: class 1 uniform in radius [0, 2.5], class 0 in [3.5, 5] (uniform radius and angle);
      the label is whether the point shifted by noise * U(-5, 5)^2 lies within 2.5.
    - xor: U(-5, 5)^2 pushed 0.3 away from the axes; label x1 * x2 >= 0 of the point shifted
      by noise * U(-5, 5)^2.
    - gauss: N((2, 2), s^2) for class 1, N((-2, -2), s^2) for class 0, s^2 = 0.5 + 7 noise.
    - spiral: two arms, r = 5 i / m, angle 3.5 pi i / m (+ pi for class 0), plus
      noise * U(-1, 1) per coordinate.
    - sine, cubic, abs (ours): U(-6, 6)^2, class 1 where the point shifted by noise * U(-6, 6)^2
      lies above y = 3 sin x, y = x^3 / 36, y = |x| - 3.

    Regression: plane, value (x1 + x2) / 10; multigauss, six bumps of height +-1 and radius 2
    (the one of largest magnitude counts), both at the point shifted by noise * U(-6, 6)^2;
    points U(-6, 6)^2.

    Classes get ceil(n / 2) and floor(n / 2) points. ``noise`` is a fraction in [0, 1]
    (the Playground's 0..50 % slider is 0..0.5). Training points: floor(n * train_fraction),
    at least 1 and at most n - 1. One ``np.random.default_rng(seed)`` draws everything, so the
    result depends only on the arguments. ValueError names a bad argument.
    """
    name = choice("name", name, DATASETS)
    n = integer("n", n, MIN_POINTS, MAX_POINTS)
    noise = number("noise", noise, 0.0, 1.0)
    train_fraction, seed = _check_split(n, train_fraction, seed)
    rng = np.random.default_rng(seed)
    x, y = _GENERATORS[name](rng, n, noise)
    return _split(name, DATASET_TASKS[name], x, y, rng.permutation(n), train_fraction)


def load_dataset(path: str | os.PathLike, *, train_fraction: float = 0.5, seed: int = 0) -> Dataset:
    """A data set from a CSV file of rows ``x1, x2, label`` or ``x1, x2, value`` (a header row of
    names is optional; blank lines are skipped).

    The task is classification if every label is 0 or 1, regression otherwise; a header that
    names the third column "label" or "class" asks for classification, and then a label other
    than 0 or 1 is refused with its line. The rows are
    shuffled by ``np.random.default_rng(seed).permutation`` and split as in :func:`make_dataset`.
    Refused with a ValueError naming the file (and the line, for its content): not a regular
    file, larger than 20 MB, not UTF-8 text, a row without exactly three columns, a value that is
    not a number or not finite, fewer than 4 or more than 100000 rows.
    """
    train_fraction, seed = _check_split(MIN_POINTS, train_fraction, seed)
    shown = os.fspath(path)
    try:
        info = os.stat(path)
    except OSError as error:
        raise ValueError(f"{shown}: cannot read the file ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{shown}: not a regular file")
    if info.st_size > MAX_CSV_BYTES:
        raise ValueError(f"{shown}: too large ({info.st_size} bytes; at most {MAX_CSV_BYTES} bytes, 20 MB)")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CSV_BYTES + 1)
    except OSError as error:
        raise ValueError(f"{shown}: cannot read the file ({error.strerror or error})") from None
    if len(raw) > MAX_CSV_BYTES:
        raise ValueError(f"{shown}: too large (more than {MAX_CSV_BYTES} bytes, 20 MB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ValueError(f"{shown}, line {line}: not UTF-8 text") from None

    rows: list[tuple[float, float, float]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    seen = False  # a non-blank row: a header may only come first
    labelled = False  # the header names the third column "label" or "class": classification, 0 / 1 only
    line_no = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise ValueError(f"{shown}, line {reader.line_num}: not readable as CSV ({error})") from None
        line_no = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        values = []
        for c in cells:
            try:
                values.append(float(c))
            except ValueError:
                values.append(None)
        if not seen and all(v is None for v in values):
            seen = True
            if len(cells) != 3:
                raise ValueError(f"{shown}, line {line_no}: the header has {len(cells)} columns, expected 3 "
                                 "(x1, x2, label or value)")
            labelled = cells[2].strip().lower() in ("label", "class")
            continue  # the header
        seen = True
        if len(cells) != 3:
            raise ValueError(f"{shown}, line {line_no}: {len(cells)} columns, expected 3 (x1, x2, label or value)")
        for column, (c, v) in enumerate(zip(cells, values), start=1):
            if v is None:
                raise ValueError(f"{shown}, line {line_no}: column {column} is not a number: {c.strip()!r}")
            if not math.isfinite(v):
                raise ValueError(f"{shown}, line {line_no}: column {column} is not finite: {c.strip()!r}")
        if len(rows) >= MAX_POINTS:
            raise ValueError(f"{shown}, line {line_no}: more than {MAX_POINTS} rows")
        rows.append((values[0], values[1], values[2]))
        lines.append(line_no)
    last_line = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if len(rows) < MIN_POINTS:
        raise ValueError(f"{shown}, line {max(last_line, 1)}: only {len(rows)} data rows, "
                         f"at least {MIN_POINTS} needed")
    data = np.array(rows, dtype=np.float64)
    labels = data[:, 2]
    binary = (labels == 0.0) | (labels == 1.0)
    if labelled and not binary.all():
        first = int(np.argmin(binary))
        raise ValueError(f"{shown}, line {lines[first]}: label {labels[first]:g} is not 0 or 1 "
                         "(the header says label: classification)")
    task = "classification" if binary.all() else "regression"
    order = np.random.default_rng(seed).permutation(len(data))
    return _split(os.path.basename(shown) or shown, task, data[:, :2], labels + 0.0, order, train_fraction)


# ---- the network --------------------------------------------------------------------------------


@dataclass(frozen=True)
class NetworkSpec:
    """The network: features -> hidden layers -> one output.

    hidden: widths of 0..8 hidden layers, each 1..64 (0 layers: a linear / logistic model).
    activation: one name of :data:`ACTIVATION_NAMES` (the activations panel's, with their default
    parameters, or "linear") for every hidden layer, or a tuple with one per hidden layer.
    features: input features, a non-empty tuple from :data:`FEATURES` without repeats.
    init: torch.nn.init's xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal (mode
    fan_in), zeros or normal (mean 0, std ``init_std``); each layer's gain is torch's
    calculate_gain of the activation after it (recommended_gain; 1 for "linear", for activations
    torch has no gain for, and for the output layer). Biases start at 0.
    dropout: probability in [0, 1) of zeroing a hidden unit in training (inverted dropout), one
    value or one per hidden layer. norm: None, "batch" (BatchNorm1d) or "layer" (LayerNorm), both
    with eps 1e-5 and affine parameters (gamma 1, beta 0), BatchNorm with momentum 0.1; a hidden
    layer is Linear -> norm -> activation -> dropout.
    task: "classification" (output a logit; loss "bce" = BCEWithLogitsLoss or "mse" = mean of
    (sigmoid(z) - y)^2) or "regression" (output a value; loss is always the mean squared error,
    so ``loss`` is stored as "mse" whatever was given).
    Lists are accepted for the tuple fields and stored as tuples. Bad values raise ValueError
    naming the field.
    """

    hidden: tuple[int, ...] = (8, 8)
    activation: str | tuple[str, ...] = "tanh"
    features: tuple[str, ...] = ("x1", "x2")
    init: str = "xavier_uniform"
    dropout: float | tuple[float, ...] = 0.0
    norm: str | None = None
    task: str = "classification"
    loss: str = "bce"
    init_std: float = 0.1

    def __post_init__(self):
        hidden = self.hidden
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)):
            raise ValueError(f"hidden: must be a tuple of layer widths, got {hidden!r}")
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise ValueError(f"hidden: at most {MAX_HIDDEN_LAYERS} hidden layers, got {len(hidden)}")
        hidden = tuple(integer("hidden", w, 1, MAX_WIDTH) for w in hidden)
        object.__setattr__(self, "hidden", hidden)
        activation = self.activation
        if isinstance(activation, (tuple, list)):
            if len(activation) != len(hidden):
                raise ValueError(f"activation: needs one name per hidden layer ({len(hidden)}), "
                                 f"got {len(activation)}")
            activation = tuple(choice("activation", a, ACTIVATION_NAMES) for a in activation)
        else:
            choice("activation", activation, ACTIVATION_NAMES)
        object.__setattr__(self, "activation", activation)
        object.__setattr__(self, "features", _check_features("features", self.features))
        choice("init", self.init, INITS)
        object.__setattr__(self, "init_std", number("init_std", self.init_std, 0.0, lo_open=True))
        dropout = self.dropout
        if isinstance(dropout, (tuple, list)):
            if len(dropout) != len(hidden):
                raise ValueError(f"dropout: needs one probability per hidden layer ({len(hidden)}), "
                                 f"got {len(dropout)}")
            dropout = tuple(number("dropout", p, 0.0, 1.0, hi_open=True) for p in dropout)
        else:
            dropout = number("dropout", dropout, 0.0, 1.0, hi_open=True)
        object.__setattr__(self, "dropout", dropout)
        choice("norm", self.norm, NORMS)
        choice("task", self.task, TASKS)
        choice("loss", self.loss, LOSSES)
        if self.task == "regression":
            object.__setattr__(self, "loss", "mse")

    @property
    def layer_activations(self) -> tuple[str, ...]:
        """The activation of each hidden layer."""
        a = self.activation
        return a if isinstance(a, tuple) else (a,) * len(self.hidden)

    @property
    def layer_dropouts(self) -> tuple[float, ...]:
        """The dropout probability of each hidden layer."""
        d = self.dropout
        return d if isinstance(d, tuple) else (d,) * len(self.hidden)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer: (n_features, *hidden, 1)."""
        return (len(self.features),) + self.hidden + (1,)

    def gains(self) -> tuple[float, ...]:
        """The init gain of each linear layer (the last, the output layer, is 1)."""
        return tuple(1.0 if a == "linear" else recommended_gain(a) for a in self.layer_activations) + (1.0,)


@dataclass(frozen=True)
class TrainConfig:
    """How to train: torch.optim's optimizer ``optimizer`` ("sgd", "adam", "adamw", "rmsprop")
    with learning rate ``lr`` (> 0), and the minibatch size (>= 1; a batch never crosses an
    epoch).

    sgd uses momentum ([0, 1)) and nesterov (with momentum 0 it is plain SGD; torch refuses that
    combination, here it is harmless); adam and adamw use betas (each in [0, 1)) and eps (> 0);
    rmsprop uses alpha ([0, 1)), eps and momentum. Defaults are torch's except lr (the
    Playground's 0.03) and AdamW's weight decay, which is ``weight_decay`` as given (torch's
    default is 0.01).

    The loss minimised is mean data loss + l1 * sum |W| + (l2 / 2) * sum W^2 over the weight
    matrices (not biases or norm parameters; d|w|/dw = sign(w), 0 at 0). ``weight_decay`` is
    torch.optim's, on the weight matrices only: added to the gradient (sgd, adam, rmsprop) or
    decoupled (adamw: W *= 1 - lr * weight_decay before the step). ``seed`` draws the epoch
    permutations and dropout masks (the initial weights come from :func:`init_state`'s seed).
    """

    optimizer: str = "sgd"
    lr: float = 0.03
    batch_size: int = 10
    momentum: float = 0.0
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99
    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        choice("optimizer", self.optimizer, OPTIMIZERS)
        s = object.__setattr__
        s(self, "lr", number("lr", self.lr, 0.0, lo_open=True))
        s(self, "batch_size", integer("batch_size", self.batch_size, 1, MAX_POINTS))
        s(self, "momentum", number("momentum", self.momentum, 0.0, 1.0, hi_open=True))
        s(self, "nesterov", flag("nesterov", self.nesterov))
        betas = self.betas
        if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: must be a pair (beta1, beta2), got {betas!r}")
        s(self, "betas", (number("betas", betas[0], 0.0, 1.0, hi_open=True),
                          number("betas", betas[1], 0.0, 1.0, hi_open=True)))
        s(self, "eps", number("eps", self.eps, 0.0, lo_open=True))
        s(self, "alpha", number("alpha", self.alpha, 0.0, 1.0, hi_open=True))
        s(self, "l1", number("l1", self.l1, 0.0))
        s(self, "l2", number("l2", self.l2, 0.0))
        s(self, "weight_decay", number("weight_decay", self.weight_decay, 0.0))
        s(self, "seed", integer("seed", self.seed, 0, 2 ** 63 - 1))


class _Layout:
    """Where everything lives in a state's one flat float64 vector:
    [params | buffer 1 | buffer 2 | running statistics], params = [W_0 .. W_L | b_0 .. b_L |
    gamma_0, beta_0, .. per normalised layer]. Buffer 1 is SGD's momentum buffer, Adam's exp_avg or
    RMSprop's square_avg; buffer 2 Adam's exp_avg_sq or RMSprop's momentum buffer."""

    def __init__(self, spec: NetworkSpec):
        sizes = spec.sizes
        self.sizes = sizes
        self.n_linear = len(sizes) - 1
        self.n_hidden = len(spec.hidden)
        offset = 0
        self.w = []
        for i in range(self.n_linear):
            shape = (sizes[i], sizes[i + 1])
            self.w.append((offset, offset + shape[0] * shape[1], shape))
            offset += shape[0] * shape[1]
        self.n_weights = offset
        self.b = []
        for i in range(self.n_linear):
            self.b.append((offset, offset + sizes[i + 1]))
            offset += sizes[i + 1]
        self.gamma, self.beta = [], []
        if spec.norm is not None:
            for width in spec.hidden:
                self.gamma.append((offset, offset + width))
                offset += width
                self.beta.append((offset, offset + width))
                offset += width
        self.n_params = offset
        offset *= 3
        self.rmean, self.rvar = [], []
        if spec.norm == "batch":
            for width in spec.hidden:
                self.rmean.append((offset, offset + width))
                offset += width
                self.rvar.append((offset, offset + width))
                offset += width
        self.size = offset
        self.w_starts = np.array([a for a, _, _ in self.w], dtype=np.intp)

    def views(self, flat: np.ndarray, base: int = 0):
        """(Ws, bs, gammas, betas) as views of ``flat`` starting at ``base`` (0 = the params)."""
        ws = [flat[base + a: base + b].reshape(shape) for a, b, shape in self.w]
        bs = [flat[base + a: base + b] for a, b in self.b]
        gs = [flat[base + a: base + b] for a, b in self.gamma]
        be = [flat[base + a: base + b] for a, b in self.beta]
        return ws, bs, gs, be

    def running(self, flat: np.ndarray):
        return ([flat[a:b] for a, b in self.rmean], [flat[a:b] for a, b in self.rvar])


@lru_cache(maxsize=64)
def _layout(spec: NetworkSpec) -> _Layout:
    return _Layout(spec)


@dataclass(frozen=True, eq=False)
class NormState(_Value):
    """One normalised hidden layer: gamma, beta (width,) (torch's weight and bias); BatchNorm's
    running_mean and running_var (width,) (None for LayerNorm, which has none)."""

    gamma: np.ndarray
    beta: np.ndarray
    running_mean: np.ndarray | None
    running_var: np.ndarray | None


@dataclass(frozen=True, eq=False)
class TrainState(_Value):
    """Everything a run needs to continue: a training session as a value.

    weights: ((W, b), ...) per linear layer, W (fan_in, fan_out), b (fan_out,): y = x @ W + b
    (torch's Linear weight is W.T). norms: one :class:`NormState` per hidden layer if the spec
    has a norm, else (). optimizer_buffers: torch's per-parameter state names -> flat arrays over
    all parameters in :meth:`parameters` order (sgd: momentum_buffer once momentum was used;
    adam/adamw: exp_avg, exp_avg_sq; rmsprop: square_avg, momentum_buffer); optimizer_step: steps
    taken by the current optimizer (Adam's bias corrections count them). step: minibatch steps
    taken; epoch: completed epochs; position: training points of the current epoch already
    visited; permutation: the current epoch's order of the training points (None at an epoch
    boundary: the next epoch draws its own); rng_state: the dropout generator's PCG64 state
    mid-epoch (None otherwise or without dropout). diverged_step: None, or the step whose loss or
    update was not finite (the state is the last finite one, and training it does nothing).
    seed: the init seed. All arrays are read-only.
    """

    spec: NetworkSpec
    config: TrainConfig
    weights: tuple[tuple[np.ndarray, np.ndarray], ...]
    norms: tuple[NormState, ...]
    optimizer_buffers: Mapping[str, np.ndarray]
    optimizer_step: int
    step: int
    epoch: int
    position: int
    permutation: np.ndarray | None
    rng_state: tuple[int, int, int, int] | None
    diverged_step: int | None
    seed: int
    _flat: np.ndarray = field(repr=False)
    _momentum_started: bool = field(default=False, repr=False)

    def parameters(self) -> tuple[np.ndarray, ...]:
        """All trainable parameters, in the order of the flat optimizer buffers: W_0..W_L, b_0..b_L,
        then gamma, beta of each normalised layer."""
        lay = _layout(self.spec)
        ws, bs, gs, be = lay.views(self._flat)
        return tuple(ws) + tuple(bs) + tuple(x for pair in zip(gs, be) for x in pair)


def _freeze(spec, config, flat, opt_step, step, epoch, position, perm, rng_state, diverged,
            seed, momentum_started) -> TrainState:
    lay = _layout(spec)
    _read_only(flat)
    ws, bs, gs, be = lay.views(flat)
    rms, rvs = lay.running(flat)
    if spec.norm == "batch":
        norms = tuple(NormState(g, b, m, v) for g, b, m, v in zip(gs, be, rms, rvs))
    elif spec.norm == "layer":
        norms = tuple(NormState(g, b, None, None) for g, b in zip(gs, be))
    else:
        norms = ()
    n = lay.n_params
    b1, b2 = flat[n:2 * n], flat[2 * n:3 * n]
    if config.optimizer == "sgd":
        buffers = {"momentum_buffer": b1} if momentum_started else {}
    elif config.optimizer == "rmsprop":
        buffers = {"square_avg": b1, "momentum_buffer": b2}
    else:
        buffers = {"exp_avg": b1, "exp_avg_sq": b2}
    return TrainState(spec, config, tuple(zip(ws, bs)), norms, MappingProxyType(buffers), opt_step, step,
                      epoch, position, perm, rng_state, diverged, seed, flat, momentum_started)


def _check_spec_config(spec: object, config: object) -> None:
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec: must be a NetworkSpec, got {type(spec).__name__}")
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: must be a TrainConfig, got {type(config).__name__}")
    if spec.norm == "batch" and config.batch_size < 2:
        raise ValueError("batch_size: must be at least 2 with batch norm (a batch of one has no variance)")


def init_state(spec: NetworkSpec, config: TrainConfig, seed: int = 0) -> TrainState:
    """The untrained network: step 0, epoch 0, zero optimizer buffers, BatchNorm running mean 0
    and variance 1, gammas 1, betas and biases 0.

    Layer i's weights are drawn by ``np.random.default_rng([seed, i])`` in torch's layout
    (fan_out, fan_in), row by row, and transposed: so they depend only on the seed, the sizes,
    ``init``, ``init_std`` and the activations (through the gain), and a unit added to a layer
    leaves the other units' draws alone. With g the layer's gain (:meth:`NetworkSpec.gains`):
    xavier_uniform U(-a, a), a = g sqrt(6 / (fan_in + fan_out)); xavier_normal
    N(0, g^2 2 / (fan_in + fan_out)); kaiming_uniform U(-a, a), a = g sqrt(3 / fan_in);
    kaiming_normal N(0, g^2 / fan_in); normal N(0, init_std^2); zeros 0.
    """
    _check_spec_config(spec, config)
    seed = integer("seed", seed, 0, 2 ** 63 - 1)
    lay = _layout(spec)
    flat = np.zeros(lay.size)
    ws, _, gs, _ = lay.views(flat)
    for i, (w, gain) in enumerate(zip(ws, spec.gains())):
        fan_in, fan_out = w.shape
        rng = np.random.default_rng([seed, i])
        shape = (fan_out, fan_in)
        if spec.init == "zeros":
            continue
        if spec.init == "xavier_uniform":
            a = gain * math.sqrt(6.0 / (fan_in + fan_out))
            draw = rng.uniform(-a, a, shape)
        elif spec.init == "xavier_normal":
            draw = rng.normal(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), shape)
        elif spec.init == "kaiming_uniform":
            a = gain * math.sqrt(3.0 / fan_in)
            draw = rng.uniform(-a, a, shape)
        elif spec.init == "kaiming_normal":
            draw = rng.normal(0.0, gain / math.sqrt(fan_in), shape)
        else:
            draw = rng.normal(0.0, spec.init_std, shape)
        w[...] = draw.T
    for g in gs:
        g[:] = 1.0
    for v in lay.running(flat)[1]:
        v[:] = 1.0
    return _freeze(spec, config, flat, 0, 0, 0, 0, None, None, None, seed, False)


def with_config(state: TrainState, config: TrainConfig) -> TrainState:
    """``state`` continuing under ``config``: weights, norms, running statistics, position and
    the current epoch's permutation are kept. The optimizer's buffers and step count are kept
    while the optimizer stays the same (a change of lr, momentum, betas, penalties ... acts from
    the next step, as editing a torch param_group would); another optimizer starts from fresh
    buffers, as a new torch optimizer would. A new batch size acts from the next step: the rest
    of the current epoch is sliced with it. A new seed acts from the next epoch."""
    if not isinstance(state, TrainState):
        raise ValueError(f"state: must be a TrainState, got {type(state).__name__}")
    _check_spec_config(state.spec, config)
    flat = state._flat
    opt_step, started = state.optimizer_step, state._momentum_started
    if config.optimizer != state.config.optimizer:
        flat = flat.copy()
        n = _layout(state.spec).n_params
        flat[n:3 * n] = 0.0
        opt_step, started = 0, False
    return _freeze(state.spec, config, flat, opt_step, state.step, state.epoch, state.position,
                   state.permutation, state.rng_state, state.diverged_step, state.seed, started)


# ---- activations ------------------------------------------------------------------------------------

_LINEAR, _TANH, _RELU, _SIGMOID, _KERNEL = range(5)


def _act_code(name: str) -> int:
    return {"linear": _LINEAR, "tanh": _TANH, "relu": _RELU, "sigmoid": _SIGMOID}.get(name, _KERNEL)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))
    r = 1.0 / (1.0 + e)
    return np.where(z >= 0, r, e * r)


def _activate(code: int, name: str, z: np.ndarray, slope: bool):
    """(f(z), f'(z) or None): tanh, relu and sigmoid by torch's autograd formulas (1 - y^2,
    z > 0, y (1 - y)); the others by the activations module's kernels (torch's derivatives)."""
    if code == _LINEAR:
        return z, None
    if code == _TANH:
        y = np.tanh(z)
        return y, (1.0 - y * y) if slope else None
    if code == _RELU:
        return np.maximum(z, 0.0), (z > 0) if slope else None
    if code == _SIGMOID:
        y = _sigmoid(z)
        return y, (1.0 - y) * y if slope else None
    y, dy, _ = _KERNELS[name](z, ACTIVATIONS[name].params, False)
    return y, dy if slope else None


# ---- losses -------------------------------------------------------------------------------------


def _loss_and_grad(kind: str, z: np.ndarray, y: np.ndarray, grad: bool):
    """Mean data loss over the batch and (if ``grad``) its gradient with respect to z (m,)."""
    m = len(z)
    if kind == "bce":  # torch: (1 - y) z - log_sigmoid(z), log_sigmoid(z) = min(z, 0) - log1p(exp(-|z|))
        loss = float(np.add.reduce((1.0 - y) * z - (np.minimum(z, 0.0) - np.log1p(np.exp(-np.abs(z)))))) / m
        return loss, ((_sigmoid(z) - y) * (1.0 / m) if grad else None)
    if kind == "mse_sigmoid":
        s = _sigmoid(z)
        d = s - y
        loss = float(np.add.reduce(d * d)) / m
        return loss, ((2.0 * d * (1.0 / m)) * (1.0 - s) * s if grad else None)
    d = z - y
    loss = float(np.add.reduce(d * d)) / m
    return loss, (2.0 * d * (1.0 / m) if grad else None)


def _loss_kind(spec: NetworkSpec) -> str:
    if spec.task == "regression":
        return "mse"
    return "bce" if spec.loss == "bce" else "mse_sigmoid"


# ---- forward ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ForwardResult(_Value):
    """The network at n points: inputs (n, n_features) the features; hidden, one (n, width) per
    hidden layer, each layer's output (after norm, activation and, in training mode, dropout);
    output (n,) the logit (classification) or value (regression)."""

    inputs: np.ndarray
    hidden: tuple[np.ndarray, ...]
    output: np.ndarray


def _forward(state: TrainState, x: np.ndarray, train: bool, rng) -> tuple[np.ndarray, list]:
    """Output (n,) and the hidden layers' outputs (n, width), worked on in place in one block."""
    spec = state.spec
    lay = _layout(spec)
    ws, bs, gs, be = lay.views(state._flat)
    rms, rvs = lay.running(state._flat)
    h = x
    hidden = []
    names = spec.layer_activations
    drops = spec.layer_dropouts
    # one block for every hidden layer: a single large allocation is reused by the allocator
    # between calls, where several separate ones would be page-faulted in afresh every time
    block = np.empty(len(x) * sum(spec.hidden))
    offset = 0
    with np.errstate(all="ignore"):
        for i in range(lay.n_hidden):
            z = block[offset: offset + len(x) * spec.hidden[i]].reshape(len(x), spec.hidden[i])
            offset += z.size
            np.matmul(h, ws[i], out=z)
            z += bs[i]
            if spec.norm == "batch":
                if train:
                    mu = z.mean(axis=0)
                    c = z - mu
                    var = (c * c).mean(axis=0)
                else:
                    mu, var = rms[i], rvs[i]
                alpha = (1.0 / np.sqrt(var + NORM_EPS)) * gs[i]
                z *= alpha
                z += be[i] - mu * alpha
            elif spec.norm == "layer":
                z -= z.mean(axis=1, keepdims=True)
                inv = 1.0 / np.sqrt((z * z).mean(axis=1, keepdims=True) + NORM_EPS)
                z *= inv
                z *= gs[i]
                z += be[i]
            code = _act_code(names[i])
            if code == _TANH:
                h = np.tanh(z, out=z)
            elif code == _RELU:
                h = np.maximum(z, 0.0, out=z)
            elif code == _LINEAR:
                h = z
            else:
                h, _ = _activate(code, names[i], z, False)
            if train and drops[i] > 0:
                h *= (rng.random(h.shape) >= drops[i]) * (1.0 / (1.0 - drops[i]))
            hidden.append(h)
        out = h @ ws[-1]
        out += bs[-1]
    return out[:, 0], hidden


def forward(state: TrainState, x: ArrayLike, *, train: bool = False, seed: int | None = None) -> ForwardResult:
    """The network of ``state`` at the raw points ``x`` (n, 2) (features are computed here).

    Evaluation mode (``train=False``): no dropout, BatchNorm with its running statistics. Training
    mode: inverted dropout (a unit is zeroed with probability p, the kept ones scaled by
    1 / (1 - p)) with masks from ``np.random.default_rng(seed)`` (fresh entropy if None), layer
    by layer, and BatchNorm with the statistics of ``x`` (the running statistics are not
    updated: the state is a value). Output and hidden values may be +-inf or NaN for a state that
    was driven near overflow; no numpy warning is emitted.
    """
    if not isinstance(state, TrainState):
        raise ValueError(f"state: must be a TrainState, got {type(state).__name__}")
    train = flag("train", train)
    if seed is not None:
        seed = integer("seed", seed, 0, 2 ** 63 - 1)
    inputs = _read_only(_features(_points("x", x), state.spec.features))
    rng = np.random.default_rng(seed) if train else None
    out, hidden = _forward(state, inputs, train, rng)
    return ForwardResult(inputs, tuple(_read_only(h) for h in hidden), _read_only(out.copy()))


def predict(state: TrainState, x: ArrayLike) -> np.ndarray:
    """(n,) in evaluation mode: the probability of class 1 (sigmoid of the logit) or the value."""
    out = forward(state, x).output
    if state.spec.task == "classification":
        with np.errstate(all="ignore"):
            out = _sigmoid(out)
    return _read_only(np.array(out))


@dataclass(frozen=True)
class Evaluation:
    """Data loss (without the penalty) on the training and test sets in evaluation mode, and for
    classification the accuracy (logit > 0 predicts class 1; None for regression). A loss is inf
    or NaN if the network's outputs are not finite."""

    train_loss: float
    test_loss: float
    train_accuracy: float | None
    test_accuracy: float | None


def _check_data(state: object, data: object) -> None:
    if not isinstance(state, TrainState):
        raise ValueError(f"state: must be a TrainState, got {type(state).__name__}")
    if not isinstance(data, Dataset):
        raise ValueError(f"data: must be a Dataset, got {type(data).__name__}")
    if data.task != state.spec.task:
        raise ValueError(f"data: a {data.task} data set, but the network's task is {state.spec.task}")


def _loss_on(state: TrainState, x: np.ndarray, y: np.ndarray) -> tuple[float, float | None]:
    if len(x) == 0:
        return math.nan, (math.nan if state.spec.task == "classification" else None)
    out, _ = _forward(state, x, False, None)
    with np.errstate(all="ignore"):
        loss, _ = _loss_and_grad(_loss_kind(state.spec), out, y, False)
    accuracy = None
    if state.spec.task == "classification":
        accuracy = float(np.mean((out > 0) == (y == 1.0)))
    return loss, accuracy


def evaluate(state: TrainState, data: Dataset) -> Evaluation:
    """Train and test data loss (and accuracy) of ``state`` on ``data`` in evaluation mode."""
    _check_data(state, data)
    names = state.spec.features
    tr = _loss_on(state, data.train_features(names), data.y_train)
    te = _loss_on(state, data.test_features(names), data.y_test)
    return Evaluation(tr[0], te[0], tr[1], te[1])


# ---- training -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class History(_Value):
    """What one :func:`train` call did, one row per step taken (k steps; k < the steps asked for
    if training diverged or the state had diverged before).

    first_step: the global index of row 0 (the state's step count before the call).
    loss: (k,) the minibatch's mean data loss (without the penalty) before the step.
    grad_norms: (k, n_linear) the Frobenius norm of the minimised loss's gradient (data loss +
    penalty, before weight decay) with respect to each linear layer's weight matrix W.
    batches: k read-only index arrays into the training set, the minibatch of each step.
    epoch_ends: the rows after which an epoch was completed (a skipped single-point BatchNorm
    batch completes its epoch on the last row). epochs: how many epochs were completed.
    diverged_step: the global step index whose loss or update was not finite (that step was not
    taken; the returned state is the last finite one), or None.
    """

    first_step: int
    loss: np.ndarray
    grad_norms: np.ndarray
    batches: tuple[np.ndarray, ...]
    epoch_ends: tuple[int, ...]
    epochs: int
    diverged_step: int | None


def _pcg_state(rng) -> tuple[int, int, int, int]:
    s = rng.bit_generator.state
    return (s["state"]["state"], s["state"]["inc"], s["has_uint32"], s["uinteger"])


def _restore_rng(state: tuple[int, int, int, int]):
    bg = np.random.PCG64()
    bg.state = {"bit_generator": "PCG64", "state": {"state": state[0], "inc": state[1]},
                "has_uint32": state[2], "uinteger": state[3]}
    return np.random.Generator(bg)


def _all_finite(a: np.ndarray) -> bool:
    if math.isfinite(float(a.sum())):
        return True
    return bool(np.isfinite(a).all())


def train(state: TrainState, data: Dataset, steps: int) -> tuple[TrainState, History]:
    """``steps`` minibatch steps from ``state`` on ``data``'s training set.

    Each epoch the training points are visited in the order of a fresh permutation
    (``np.random.default_rng([config.seed, epoch]).permutation(n_train)``), in consecutive
    slices of ``batch_size``; the last slice of an epoch may be smaller, and never reaches into
    the next epoch (with batch norm a last slice of one point is skipped). One step: forward in
    training mode (dropout masks drawn layer by layer from ``np.random.default_rng([config.seed,
    epoch, 1])``, continued through the epoch; BatchNorm on batch statistics, running statistics
    updated as torch does), the mean data loss, its gradient plus the penalty's, and the
    optimizer's update (see :class:`TrainConfig`). The state carries the permutation, position
    and generator state, so ``train(train(s, d, a)[0], d, b)`` equals ``train(s, d, a + b)``
    exactly. If the training set's size differs from the one the current epoch started on, the
    epoch starts over on the new data.

    Divergence: if a step's loss is not finite, or its update leaves a parameter, buffer or
    running statistic that is not finite, the step is not taken; its global index is reported
    (``History.diverged_step`` and ``TrainState.diverged_step``) and the state returned is the last
    finite one. Training a diverged state does nothing. No numpy warning is ever emitted.
    """
    return _train(state, data, steps, False)


def train_epoch(state: TrainState, data: Dataset) -> tuple[TrainState, History]:
    """Train to the end of the current epoch (a whole epoch from an epoch boundary): as
    :func:`train` with just enough steps (``History.epochs`` is 1 unless training diverged)."""
    _check_data(state, data)
    return _train(state, data, max(len(data.y_train), 1), True)


def dropout_masks(spec: NetworkSpec, n: int, *, seed: int | None = None) -> tuple[np.ndarray, ...]:
    """The dropout masks :func:`forward` uses in training mode for ``n`` points with this
    ``seed``: one boolean (n, width) array per hidden layer, True where the unit is kept (all
    True for a layer without dropout, which draws nothing)."""
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec: must be a NetworkSpec, got {type(spec).__name__}")
    n = integer("n", n, 0, 10 ** 7)
    if seed is not None:
        seed = integer("seed", seed, 0, 2 ** 63 - 1)
    rng = np.random.default_rng(seed)
    return tuple(_read_only(rng.random((n, w)) >= p if p > 0 else np.ones((n, w), dtype=bool))
                 for w, p in zip(spec.hidden, spec.layer_dropouts))


def _train(state: TrainState, data: Dataset, steps: int, to_epoch_end: bool) -> tuple[TrainState, History]:
    _check_data(state, data)
    steps = integer("steps", steps, 0, MAX_STEPS)
    spec, cfg = state.spec, state.config
    lay = _layout(spec)
    n_lin = lay.n_linear
    first_step = state.step
    n = len(data.y_train)
    if spec.norm == "batch" and n < 2:
        raise ValueError("data: batch norm needs at least 2 training points")
    if state.diverged_step is not None or steps == 0:
        return state, History(first_step, _read_only(np.zeros(0)), _read_only(np.zeros((0, n_lin))), (), (), 0,
                              state.diverged_step)

    X = data.train_features(spec.features)
    Yall = data.y_train
    S = state._flat.copy()
    backup = np.empty_like(S)
    NP, NW = lay.n_params, lay.n_weights
    P, B1, B2 = S[:NP], S[NP:2 * NP], S[2 * NP:3 * NP]
    PW, B1W = P[:NW], B1[:NW]
    G = np.zeros(NP)
    GW = G[:NW]
    Ws, Bs, Gams, Bets = lay.views(S)
    gWs, gBs, gGams, gBets = lay.views(G)
    Rms, Rvs = lay.running(S)
    w_starts = lay.w_starts

    n_hidden = lay.n_hidden
    names = spec.layer_activations
    codes = [_act_code(a) for a in names]
    drops = spec.layer_dropouts
    any_dropout = any(p > 0 for p in drops)
    keep_scale = [1.0 / (1.0 - p) if p > 0 else 1.0 for p in drops]
    norm = spec.norm
    batch_norm, layer_norm = norm == "batch", norm == "layer"
    kind = _loss_kind(spec)

    opt = cfg.optimizer
    lr, mu, nesterov = cfg.lr, cfg.momentum, cfg.nesterov
    b1, b2 = cfg.betas
    w1, w2 = 1.0 - b1, 1.0 - b2
    small_w1, w1_rest = w1 < 0.5, 1.0 - w1
    eps, alpha = cfg.eps, cfg.alpha
    l1, l2, wd = cfg.l1, cfg.l2, cfg.weight_decay
    bs_size = cfg.batch_size
    seed = cfg.seed
    opt_step = state.optimizer_step
    started = state._momentum_started

    epoch, pos = state.epoch, state.position
    perm = state.permutation
    rng = None
    if perm is not None and len(perm) != n:
        perm, pos = None, 0  # the data changed size: the epoch starts over
    if perm is not None and any_dropout:
        rng = _restore_rng(state.rng_state) if state.rng_state is not None else \
            np.random.default_rng([seed, epoch, 1])

    losses = np.empty(steps)
    norms = np.empty((steps, n_lin))
    batches = []
    epoch_ends = []
    epochs_done = 0
    diverged = None
    t = 0
    hs = [None] * (n_hidden + 1)
    ds = [None] * n_hidden
    masks = [None] * n_hidden
    zhats = [None] * n_hidden
    invs = [None] * n_hidden
    m_prev = -1
    add_reduce = np.add.reduce
    with np.errstate(all="ignore"):
        while t < steps:
            if perm is None:
                perm = _read_only(np.random.default_rng([seed, epoch]).permutation(n))
                pos = 0
                if any_dropout:
                    rng = np.random.default_rng([seed, epoch, 1])
            m = min(bs_size, n - pos)
            if batch_norm and m == 1:  # torch's BatchNorm1d refuses a batch of one: skip it
                epoch += 1
                perm, pos, rng = None, 0, None
                epochs_done += 1
                if t:
                    epoch_ends.append(t - 1)
                if to_epoch_end:
                    break
                continue
            np.copyto(backup, S)  # BatchNorm's running statistics change in the forward pass
            idx = perm[pos:pos + m]
            h = X[idx]
            y = Yall[idx]
            hs[0] = h
            if m != m_prev:
                inv_m = 1.0 / m
                m_prev = m
            # forward
            for i in range(n_hidden):
                z = h @ Ws[i]
                z += Bs[i]
                if batch_norm:
                    mean = z.mean(axis=0)
                    c = z - mean
                    var_sum = (c * c).sum(axis=0)
                    var = var_sum * inv_m
                    inv = 1.0 / np.sqrt(var + NORM_EPS)
                    zhats[i] = c * inv
                    invs[i] = inv
                    a = inv * Gams[i]
                    z = z * a + (Bets[i] - mean * a)
                    rm, rv = Rms[i], Rvs[i]
                    rm *= 1.0 - BN_MOMENTUM
                    rm += BN_MOMENTUM * mean
                    rv *= 1.0 - BN_MOMENTUM
                    rv += BN_MOMENTUM * (var_sum / (m - 1))
                elif layer_norm:
                    c = z - z.mean(axis=1, keepdims=True)
                    inv = 1.0 / np.sqrt((c * c).mean(axis=1, keepdims=True) + NORM_EPS)
                    zh = c * inv
                    zhats[i] = zh
                    invs[i] = inv
                    z = zh * Gams[i] + Bets[i]
                code = codes[i]
                if code == _TANH:
                    h = np.tanh(z)
                    ds[i] = 1.0 - h * h
                elif code == _LINEAR:
                    h = z
                    ds[i] = None
                else:
                    h, ds[i] = _activate(code, names[i], z, True)
                if drops[i] > 0:
                    mask = (rng.random(h.shape) >= drops[i]) * keep_scale[i]
                    masks[i] = mask
                    h = h * mask
                hs[i + 1] = h
            out = h @ Ws[n_hidden]
            out += Bs[n_hidden]
            loss, dz = _loss_and_grad(kind, out[:, 0], y, True)
            if not math.isfinite(loss):
                np.copyto(S, backup)
                diverged = first_step + t
                break
            # backward
            g = dz[:, None]
            for li in range(n_hidden, -1, -1):
                np.matmul(hs[li].T, g, out=gWs[li])
                add_reduce(g, 0, None, gBs[li])
                if li == 0:
                    break
                i = li - 1
                g = g @ Ws[li].T
                if drops[i] > 0:
                    g *= masks[i]
                if ds[i] is not None:
                    g = g * ds[i]
                if norm is not None:
                    zh = zhats[i]
                    add_reduce(g * zh, 0, None, gGams[i])
                    add_reduce(g, 0, None, gBets[i])
                    dx = g * Gams[i]
                    if batch_norm:
                        g = invs[i] * (dx - dx.mean(axis=0) - zh * (dx * zh).mean(axis=0))
                    else:
                        g = invs[i] * (dx - dx.mean(axis=1, keepdims=True)
                                       - zh * (dx * zh).mean(axis=1, keepdims=True))
            if l1:
                GW += l1 * np.sign(PW)
            if l2:
                GW += l2 * PW
            np.sqrt(np.add.reduceat(GW * GW, w_starts), out=norms[t])
            # optimizer (torch.optim's single-tensor kernels; weight decay on the weights only)
            if opt == "sgd":
                if wd:
                    GW += wd * PW
                if mu != 0.0:
                    if not started:
                        B1[:] = G
                        started = True
                    else:
                        B1 *= mu
                        B1 += G
                    if nesterov:
                        G += mu * B1
                        P -= lr * G
                    else:
                        P -= lr * B1
                else:
                    P -= lr * G
            elif opt == "rmsprop":
                if wd:
                    GW += wd * PW
                B1 *= alpha
                B1 += (1.0 - alpha) * (G * G)
                avg = np.sqrt(B1)
                avg += eps
                if mu > 0.0:
                    B2 *= mu
                    B2 += G / avg
                    P -= lr * B2
                else:
                    P -= lr * (G / avg)
            else:
                opt_step += 1
                if opt == "adamw":
                    if wd:
                        PW *= 1.0 - lr * wd
                elif wd:
                    GW += wd * PW
                if small_w1:
                    B1 += w1 * (G - B1)
                else:
                    B1[:] = G - (G - B1) * w1_rest
                B2 *= b2
                B2 += w2 * (G * G)
                step_size = lr / (1.0 - b1 ** opt_step)
                denom = np.sqrt(B2)
                denom /= (1.0 - b2 ** opt_step) ** 0.5
                denom += eps
                P -= step_size * (B1 / denom)
            if not _all_finite(S):
                np.copyto(S, backup)
                if opt in ("adam", "adamw"):
                    opt_step -= 1
                diverged = first_step + t
                break
            losses[t] = loss
            batches.append(idx)
            pos += m
            t += 1
            if pos >= n:
                epoch += 1
                perm, pos, rng = None, 0, None
                epochs_done += 1
                epoch_ends.append(t - 1)
                if to_epoch_end:
                    break
    rng_state = _pcg_state(rng) if (rng is not None and perm is not None) else None
    new = _freeze(spec, cfg, S, opt_step, first_step + t, epoch, pos, perm, rng_state, diverged,
                  state.seed, started)
    history = History(first_step, _read_only(losses[:t].copy()), _read_only(norms[:t].copy()),
                      tuple(batches), tuple(epoch_ends), epochs_done, diverged)
    return new, history


# ---- early stopping and whole epochs ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EarlyStopping(_Value):
    """Early stopping on the test (validation) loss, with ``patience`` in epochs.

    Call :meth:`update` after each epoch (or after each batch of epochs: only epoch numbers
    count) with the state and its test loss. A loss below best_loss - min_delta makes that
    state the best (best_epoch = state.epoch, best_loss, best_state). Training should stop
    (``stopped``) once state.epoch - best_epoch >= patience; before any finite loss was seen the
    wait counts from the first update's epoch. Once stopped, update returns the same object.
    """

    patience: int = 10
    min_delta: float = 0.0
    best_epoch: int | None = None
    best_loss: float = math.inf
    best_state: TrainState | None = None
    stopped: bool = False
    since: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "patience", integer("patience", self.patience, 1, 1_000_000))
        object.__setattr__(self, "min_delta", number("min_delta", self.min_delta, 0.0))

    def update(self, state: TrainState, test_loss: float) -> EarlyStopping:
        """The early-stopping record after ``state`` (at epoch ``state.epoch``) scored ``test_loss``."""
        if self.stopped:
            return self
        if not isinstance(state, TrainState):
            raise ValueError(f"state: must be a TrainState, got {type(state).__name__}")
        if not is_real(test_loss) or math.isnan(test_loss):
            test_loss = math.inf
        test_loss = float(test_loss)
        epoch = state.epoch
        if math.isfinite(test_loss) and test_loss < self.best_loss - self.min_delta:
            return EarlyStopping(self.patience, self.min_delta, epoch, test_loss, state, False, epoch)
        since = epoch if self.since is None else self.since
        return EarlyStopping(self.patience, self.min_delta, self.best_epoch, self.best_loss, self.best_state,
                             epoch - since >= self.patience or state.diverged_step is not None, since)


@dataclass(frozen=True, eq=False)
class FitResult(_Value):
    """:func:`fit`'s result: the final state; per completed epoch (k of them) train_loss,
    test_loss (k,) and, for classification, train_accuracy, test_accuracy (k,) (None for
    regression), all in evaluation mode after the epoch; epochs (k,) the epoch numbers;
    early_stopping (None if not used) and diverged_step."""

    state: TrainState
    epochs: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    train_accuracy: np.ndarray | None
    test_accuracy: np.ndarray | None
    early_stopping: EarlyStopping | None
    diverged_step: int | None


def fit(state: TrainState, data: Dataset, epochs: int, *,
        early_stopping: EarlyStopping | None = None) -> FitResult:
    """Train to the end of the current epoch, ``epochs`` times (fewer if training diverges or
    ``early_stopping`` stops it), evaluating after each (:func:`evaluate`) and updating
    ``early_stopping`` with the test loss."""
    _check_data(state, data)
    epochs = integer("epochs", epochs, 0, 1_000_000)
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise ValueError(f"early_stopping: must be an EarlyStopping, got {type(early_stopping).__name__}")
    rows = []
    numbers_ = []
    for _ in range(epochs):
        if state.diverged_step is not None or (early_stopping is not None and early_stopping.stopped):
            break
        state, _history = train_epoch(state, data)
        if state.diverged_step is not None:
            break
        ev = evaluate(state, data)
        rows.append((ev.train_loss, ev.test_loss, ev.train_accuracy, ev.test_accuracy))
        numbers_.append(state.epoch)
        if early_stopping is not None:
            early_stopping = early_stopping.update(state, ev.test_loss)
    table = np.array([r[:2] for r in rows], dtype=np.float64).reshape(-1, 2)
    classification = state.spec.task == "classification"
    acc = np.array([r[2:] for r in rows], dtype=np.float64).reshape(-1, 2) if classification else None
    return FitResult(state, _read_only(np.array(numbers_, dtype=np.int64)), _read_only(table[:, 0].copy()),
                     _read_only(table[:, 1].copy()),
                     _read_only(acc[:, 0].copy()) if classification else None,
                     _read_only(acc[:, 1].copy()) if classification else None,
                     early_stopping, state.diverged_step)


# ---- the same run in PyTorch --------------------------------------------------------------------

TORCH_ACTIVATIONS: Mapping[str, str] = MappingProxyType({
    "sigmoid": "torch.nn.Sigmoid()",
    "tanh": "torch.nn.Tanh()",
    "relu": "torch.nn.ReLU()",
    "leaky_relu": "torch.nn.LeakyReLU(0.01)",
    "elu": "torch.nn.ELU(alpha=1.0)",
    "selu": "torch.nn.SELU()",
    "gelu": "torch.nn.GELU()",
    "gelu_tanh": "torch.nn.GELU(approximate='tanh')",
    "swish": "torch.nn.SiLU()",
    "mish": "torch.nn.Mish()",
    "softplus": "torch.nn.Softplus(beta=1.0, threshold=20.0)",
    "hardsigmoid": "torch.nn.Hardsigmoid()",
    "hardswish": "torch.nn.Hardswish()",
    "relu6": "torch.nn.ReLU6()",
    "linear": "torch.nn.Identity()",
})
"""Each activation name as the torch module :func:`pytorch_script` writes for it."""

_FEATURE_CODE = {
    "x1": "x1", "x2": "x2", "x1^2": "x1 * x1", "x2^2": "x2 * x2", "x1*x2": "x1 * x2",
    "sin x1": "np.sin(x1)", "sin x2": "np.sin(x2)",
}


def _literal(a: np.ndarray, indent: str = "    ") -> str:
    """A float array as a Python literal that reads back bit for bit (repr of each float): a
    vector six numbers a line, a matrix one row a line."""
    if a.ndim == 1:
        numbers_ = [repr(float(v)) for v in a]
        if len(numbers_) <= 6:
            return "[" + ", ".join(numbers_) + "]"
        lines = [", ".join(numbers_[i:i + 6]) for i in range(0, len(numbers_), 6)]
        return "[\n" + ",\n".join(indent + "    " + line for line in lines) + "]"
    return "[\n" + ",\n".join(indent + "    " + _literal(row, indent + "    ") for row in a) + "]"


_SCRIPT = '''"""{title}

Generated by the deep-learning workbench (training panel). Stand-alone: torch and numpy only.
Prints the training and test data loss (evaluation mode) after every epoch; the workbench's
backend computes the same numbers (float64) to ~1e-9.
"""

import numpy as np
import torch

torch.manual_seed(0)
DTYPE = torch.float64
EPOCHS = {epochs}
BATCH_SIZE = {batch_size}
SEED = {seed}  # epoch permutations and dropout masks: numpy, as the workbench draws them
L1, L2 = {l1!r}, {l2!r}
BATCH_NORM = {batch_norm}

# the data set: make_dataset(**{dataset_args}), train / test split as in the workbench
X_TRAIN = np.array({x_train}, dtype=np.float64).reshape(-1, 2)
Y_TRAIN = np.array({y_train}, dtype=np.float64)
X_TEST = np.array({x_test}, dtype=np.float64).reshape(-1, 2)
Y_TEST = np.array({y_test}, dtype=np.float64)


def features(x):
    """The input features {features}."""
    x1, x2 = x[:, 0], x[:, 1]
    return np.stack([{feature_code}], axis=1)


F_TRAIN = torch.from_numpy(features(X_TRAIN))
F_TEST = torch.from_numpy(features(X_TEST))
T_TRAIN = torch.from_numpy(Y_TRAIN)
T_TEST = torch.from_numpy(Y_TEST)


class Dropout(torch.nn.Module):
    """Inverted dropout with masks drawn from numpy (torch.nn.Dropout draws from torch's own
    generator, so its masks would differ from the workbench's)."""

    rng = None  # set at the start of every epoch

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = Dropout.rng.random(tuple(x.shape)) >= self.p
        return x * torch.from_numpy(keep * (1.0 / (1.0 - self.p)))


model = torch.nn.Sequential(
{layers}
).to(DTYPE)

# the initial weights of the workbench's init_state (seed {init_seed}), in torch's (out, in) layout
INITIAL = {initial}
with torch.no_grad():
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for layer, (weight, bias) in zip(linears, INITIAL):
        layer.weight.copy_(torch.tensor(weight, dtype=DTYPE))
        layer.bias.copy_(torch.tensor(bias, dtype=DTYPE))

weights = [m.weight for m in linears]
others = [p for p in model.parameters() if all(p is not w for w in weights)]
optimizer = {optimizer}


def data_loss(z, y):
    {loss_code}


def penalty():
    total = torch.zeros((), dtype=DTYPE)
    if L1:
        total = total + L1 * sum(w.abs().sum() for w in weights)
    if L2:
        total = total + (L2 / 2) * sum(w.pow(2).sum() for w in weights)
    return total


n = len(F_TRAIN)
for epoch in range(EPOCHS):
    model.train()
    order = np.random.default_rng([SEED, epoch]).permutation(n)
    Dropout.rng = np.random.default_rng([SEED, epoch, 1])
    for start in range(0, n, BATCH_SIZE):
        idx = torch.from_numpy(order[start:start + BATCH_SIZE])
        if BATCH_NORM and len(idx) == 1:
            continue  # BatchNorm1d refuses a batch of one
        optimizer.zero_grad()
        z = model(F_TRAIN[idx])[:, 0]
        loss = data_loss(z, T_TRAIN[idx]) + penalty()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        train_loss = data_loss(model(F_TRAIN)[:, 0], T_TRAIN).item()
        test_loss = data_loss(model(F_TEST)[:, 0], T_TEST).item()
    print(f"epoch {{epoch + 1}} train_loss {{train_loss!r}} test_loss {{test_loss!r}}")
'''


def pytorch_script(spec: NetworkSpec, config: TrainConfig, dataset_args: Mapping[str, object], epochs: int,
                   *, init_seed: int = 0) -> str:
    """The text of a stand-alone Python script (torch and numpy only) that trains the same
    network on the same data in PyTorch: the data set ``make_dataset(**dataset_args)`` (or
    ``load_dataset(**dataset_args)`` when they name a ``path``) embedded as literals, the initial weights of ``init_state(spec, config, seed=init_seed)`` embedded, a
    ``torch.nn.Sequential`` of Linear / BatchNorm1d / LayerNorm / activation modules (dropout as a
    small module drawing its masks from numpy as the workbench does), ``torch.optim``'s optimizer
    with two parameter groups (weight decay on the weight matrices only), BCEWithLogitsLoss or
    MSELoss plus the L1 / L2 penalty, and the same minibatches (numpy's generator, as
    :func:`train`). It prints ``epoch k train_loss L test_loss L`` after each of ``epochs``
    epochs: the numbers :func:`fit` gives for the same run, to rounding (~1e-9 relative).
    """
    _check_spec_config(spec, config)
    csv = isinstance(dataset_args, Mapping) and "path" in dataset_args
    if not isinstance(dataset_args, Mapping) or not ("name" in dataset_args or csv):
        raise ValueError("dataset_args: must be make_dataset's keyword arguments, name included "
                         "(or load_dataset's, path included)")
    known = {"path", "train_fraction", "seed"} if csv else {"name", "n", "noise", "train_fraction", "seed"}
    unknown = sorted(set(dataset_args) - known)
    if unknown:
        raise ValueError(f"dataset_args: {unknown[0]!r} is not an argument of "
                         f"{'load_dataset' if csv else 'make_dataset'}")
    epochs = integer("epochs", epochs, 0, 100_000)
    args = dict(dataset_args)
    data = load_dataset(args.pop("path"), **args) if csv else make_dataset(args.pop("name"), **args)
    if data.task != spec.task:
        raise ValueError(f"dataset_args: a {data.task} data set, but the network's task is {spec.task}")
    state = init_state(spec, config, seed=init_seed)

    layers = []
    sizes = spec.sizes
    for i, width in enumerate(spec.hidden):
        layers.append(f"torch.nn.Linear({sizes[i]}, {width})")
        if spec.norm == "batch":
            layers.append(f"torch.nn.BatchNorm1d({width})")
        elif spec.norm == "layer":
            layers.append(f"torch.nn.LayerNorm({width})")
        layers.append(TORCH_ACTIVATIONS[spec.layer_activations[i]])
        if spec.layer_dropouts[i] > 0:
            layers.append(f"Dropout({spec.layer_dropouts[i]!r})")
    layers.append(f"torch.nn.Linear({sizes[-2]}, 1)")
    initial = "[\n" + ",\n".join(
        f"    ({_literal(np.ascontiguousarray(w.T), '    ')},\n     {_literal(b, '    ')})"
        for w, b in state.weights) + "]"

    c = config
    groups = (f"[{{'params': weights, 'weight_decay': {c.weight_decay!r}}}, "
              "{'params': others, 'weight_decay': 0.0}]")
    if c.optimizer == "sgd":
        nesterov = c.nesterov and c.momentum > 0
        optimizer = f"torch.optim.SGD({groups}, lr={c.lr!r}, momentum={c.momentum!r}, nesterov={nesterov})"
    elif c.optimizer == "rmsprop":
        optimizer = (f"torch.optim.RMSprop({groups}, lr={c.lr!r}, alpha={c.alpha!r}, eps={c.eps!r}, "
                     f"momentum={c.momentum!r})")
    else:
        cls = "Adam" if c.optimizer == "adam" else "AdamW"
        optimizer = f"torch.optim.{cls}({groups}, lr={c.lr!r}, betas={c.betas!r}, eps={c.eps!r})"
    kind = _loss_kind(spec)
    loss_code = {
        "bce": "return torch.nn.BCEWithLogitsLoss()(z, y)",
        "mse_sigmoid": "return torch.nn.MSELoss()(torch.sigmoid(z), y)  # mse on the probability",
        "mse": "return torch.nn.MSELoss()(z, y)",
    }[kind]
    title = (f"{spec.task.capitalize()} of '{data.name}' by a {'-'.join(map(str, spec.sizes))} network, "
             f"{c.optimizer} lr {c.lr!r}, {epochs} epochs.")
    return _SCRIPT.format(
        title=title, epochs=epochs, batch_size=c.batch_size, seed=c.seed, l1=c.l1, l2=c.l2,
        batch_norm=spec.norm == "batch", dataset_args=repr(dict(dataset_args)),
        x_train=_literal(data.x_train, ""), y_train=_literal(data.y_train, ""),
        x_test=_literal(data.x_test, ""), y_test=_literal(data.y_test, ""),
        features=", ".join(spec.features),
        feature_code=", ".join(_FEATURE_CODE[f] for f in spec.features),
        layers="\n".join(f"    {layer}," for layer in layers), init_seed=init_seed, initial=initial,
        optimizer=optimizer, loss_code=loss_code)
