"""Optimizer race on 2-D loss surfaces: where SGD, momentum, Adam & co. actually walk; and the
exponentially weighted average behind Momentum's and Adam's moments (:func:`ewa`).

Qt-free and torch-free (numpy + stdlib only). The optimizers, schedulers, clipping and
weight decay follow ``torch.optim`` formula by formula in float64 (same operations in the
same order, learning rates bit-identical), and ``workbench.compute.optimizers_torch`` drives
the real ``torch.optim`` to check it. Agreement is to rounding: torch's CPU kernels fuse some
multiply-adds (FMA), plain Python cannot, so single steps can differ in the last bit; on a
non-chaotic walk the traces agree to ~1e-12 relative. Speed comes from tight scalar loops
over (x, y) instead of tensors: all 7 optimizers x 500 steps take a few milliseconds.

One step of :func:`trace`, in this order (as a torch training loop would do it)::

    g = grad f(x, y)                     closed form, see make_surface
    g = g + noise[i]                     if noise=(sigma, batch_size): N(0, sigma^2/batch_size)
    n = ||g||                            recorded in Trace.grad_norms
    g = g * min(1, clip / (n + 1e-6))    if clip: torch.nn.utils.clip_grad_norm_
    (x, y) = optimizer step with lr_i    weight decay inside the optimizer, as torch does
    lr_{i+1} = scheduler step            torch.optim.lr_scheduler semantics

Learning-rate schedules (``Schedule.kind``), each exactly one torch scheduler stepped once
per optimizer step:

- ``constant``: no scheduler.
- ``step``: ``StepLR(step_size, gamma)``.
- ``exponential``: ``ExponentialLR(gamma)``.
- ``cosine``: ``CosineAnnealingLR(T_max, eta_min)`` (torch's recursive form; after ``T_max``
  steps the rate climbs back up, as torch's does).
- ``warmup``: ``SequentialLR([LinearLR(start_factor=1/(k+1), end_factor=1.0, total_iters=k),
  CosineAnnealingLR(T_max, eta_min)], milestones=[k])`` with ``k = warmup_steps``: the rate
  ramps lr/(k+1), 2 lr/(k+1), ..., k lr/(k+1), then the cosine starts from lr at step k and
  reaches ``eta_min`` ``T_max`` steps later.
- ``multistep``: ``MultiStepLR(milestones, gamma)``: multiply by gamma at each milestone step (by
  gamma^k at a milestone listed k times).
- ``cosine_restarts``: ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``: a cosine from lr down
  towards ``eta_min`` over T_0 steps, then back to lr (a warm restart), each period T_mult times
  longer than the one before.
- ``inverse_sqrt``: the original Transformer's schedule as ``LambdaLR``: lr * d_model^-0.5 *
  min(t^-0.5, t * warmup^-1.5) at step t = 1, 2, ... (lr = 1 gives the paper's absolute rate):
  linear warm-up for ``warmup`` steps, then decay as 1/sqrt(t).
- ``onecycle``: ``OneCycleLR(max_lr=lr, total_steps=steps, pct_start, div_factor,
  final_div_factor)`` with its default cos annealing and two phases: from lr/div_factor up to lr
  over the first pct_start of the steps, then down to lr/(div_factor * final_div_factor).
  ``cycle_momentum=False``: the rate only (the optimizers here keep their own momentum; Adagrad
  has none to cycle, and torch refuses to cycle it).
- ``plateau``: ``ReduceLROnPlateau(factor, patience, threshold)`` (mode "min", relative
  threshold, no cooldown, min_lr 0, eps 1e-8) stepped with the loss each step started from,
  i.e. on the trace's own loss: once the loss has not improved on its best by more than the
  relative ``threshold`` for more than ``patience`` steps, the rate is multiplied by ``factor``.
  Its rates depend on the walk, so :func:`learning_rates` needs the losses.

Divergence never raises, warns or yields NaN: a trace stops before the first point that is
not finite or leaves the box ``|x|, |y| <= BOUND`` and reports that step in
``Trace.diverged_at``. Bad input raises ``ValueError`` naming the parameter and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from workbench.compute.checks import flag, integer, is_real, number

__all__ = [
    "BOUND",
    "DEFAULT_HYPER",
    "EWA",
    "MAX_MILESTONES",
    "MAX_SERIES",
    "MAX_STEPS",
    "OPTIMIZERS",
    "SCHEDULE_KINDS",
    "SURFACES",
    "Schedule",
    "Surface",
    "Trace",
    "ewa",
    "ewa_weights",
    "gradient_noise",
    "half_lag",
    "inverse_sqrt_factor",
    "learning_rates",
    "make_surface",
    "race",
    "seen_gradients",
    "step_series",
    "surface_grid",
    "trace",
]

SURFACES = ("bowl", "rosenbrock", "himmelblau", "saddle", "beale", "rastrigin")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULE_KINDS = ("constant", "step", "exponential", "cosine", "warmup", "multistep", "cosine_restarts",
                  "inverse_sqrt", "onecycle", "plateau")

BOUND = 1e6
"""A point with ``|x|`` or ``|y|`` above this (or not finite) counts as diverged."""
MAX_STEPS = 5000
"""Largest ``steps`` accepted by :func:`trace`."""
CLIP_EPS = 1e-6
"""torch.nn.utils.clip_grad_norm_'s guard: coefficient = max_norm / (norm + 1e-6)."""

KAPPA_RANGE = (1.0, 1000.0)
THETA_RANGE = (0.0, 90.0)
GRID_RANGE = (2, 4096)

_TWO_PI = 2.0 * math.pi


# --------------------------------------------------------------------------- validation


def _point(name: str, value: object) -> tuple[float, float]:
    """A finite (x, y) inside the divergence box."""
    try:
        px, py = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (x, y) of finite numbers, got {value!r}") from None
    return (number(f"{name}[0] (x)", px, -BOUND, BOUND),
            number(f"{name}[1] (y)", py, -BOUND, BOUND))


def _window(value: object) -> tuple[float, float, float, float]:
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"window must be (xmin, xmax, ymin, ymax), got {value!r}") from None
    if not (all(math.isfinite(v) for v in (xmin, xmax, ymin, ymax)) and xmin < xmax and ymin < ymax):
        raise ValueError(f"window must be finite with xmin < xmax and ymin < ymax, got {value!r}")
    return xmin, xmax, ymin, ymax


# --------------------------------------------------------------------------- surfaces

ScalarGrad = Callable[[float, float], "tuple[float, float]"]


@dataclass(frozen=True, eq=False)
class Surface:
    """A 2-D loss surface.

    name: one of SURFACES. ``f(x, y)``: loss, vectorised over numpy arrays of any (equal)
    shape. ``grad(x, y)``: closed-form gradient (df/dx, df/dy) at python floats (the optimizer
    loops) or numpy arrays.
    ``minima``: global/known local minima (x, y). ``window``: default view
    (xmin, xmax, ymin, ymax). ``start``: default start point (x, y). ``params``: the shape
    parameters used (``kappa``, ``theta`` in degrees for the bowl; empty otherwise).
    """

    name: str
    f: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: ScalarGrad
    minima: tuple[tuple[float, float], ...]
    window: tuple[float, float, float, float]
    start: tuple[float, float]
    params: Mapping[str, float]


def _bowl(kappa: float, theta: float):
    """f = 0.5 (u^2 + kappa v^2), (u, v) = (x, y) rotated by theta degrees."""
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))

    def f(x, y):
        u = c * x + s * y
        v = c * y - s * x
        return 0.5 * (u * u + kappa * v * v)

    def grad(x, y):
        u = c * x + s * y
        kv = kappa * (c * y - s * x)
        return c * u - s * kv, s * u + c * kv

    return f, grad


def _rosenbrock():
    """f = (1 - x)^2 + 100 (y - x^2)^2."""

    def f(x, y):
        d = y - x * x
        return (1.0 - x) ** 2 + 100.0 * d * d

    def grad(x, y):
        gy = 200.0 * (y - x * x)
        return -2.0 * (1.0 - x) - gy * (2.0 * x), gy  # autograd's rounding order

    return f, grad


def _himmelblau():
    """f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2."""

    def f(x, y):
        a = x * x + y - 11.0
        b = x + y * y - 7.0
        return a * a + b * b

    def grad(x, y):
        a = x * x + y - 11.0
        b = x + y * y - 7.0
        return 4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b

    return f, grad


def _saddle():
    """f = x^2 + y^4/4 - y^2/2: a saddle at the origin, minima at (0, +-1)."""

    def f(x, y):
        yy = y * y
        return x * x + 0.25 * yy * yy - 0.5 * yy

    def grad(x, y):
        return 2.0 * x, y * y * y - y

    return f, grad


def _beale():
    """f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2."""

    def f(x, y):
        y2 = y * y
        a1 = 1.5 - x + x * y
        a2 = 2.25 - x + x * y2
        a3 = 2.625 - x + x * y2 * y
        return a1 * a1 + a2 * a2 + a3 * a3

    def grad(x, y):
        y2 = y * y
        y3 = y2 * y
        a1 = 1.5 - x + x * y
        a2 = 2.25 - x + x * y2
        a3 = 2.625 - x + x * y3
        gx = 2.0 * (a1 * (y - 1.0) + a2 * (y2 - 1.0) + a3 * (y3 - 1.0))
        gy = 2.0 * x * (a1 + 2.0 * a2 * y + 3.0 * a3 * y2)
        return gx, gy

    return f, grad


def _rastrigin():
    """f = 20 + x^2 - 10 cos(2 pi x) + y^2 - 10 cos(2 pi y)."""
    cos = np.cos
    two_pi = _TWO_PI

    def f(x, y):
        return 20.0 + x * x - 10.0 * cos(two_pi * x) + y * y - 10.0 * cos(two_pi * y)

    def grad(x, y):
        sin = math.sin if isinstance(x, float) else np.sin
        return 2.0 * x + 10.0 * sin(two_pi * x) * two_pi, 2.0 * y + 10.0 * sin(two_pi * y) * two_pi

    return f, grad


# name -> (minima, window, start); the bowl's minimum is the origin whatever kappa/theta.
_SURFACE_LAYOUT: dict[str, tuple[tuple[tuple[float, float], ...], tuple, tuple[float, float]]] = {
    "bowl": (((0.0, 0.0),), (-3.0, 3.0, -3.0, 3.0), (-2.5, 1.5)),
    "rosenbrock": (((1.0, 1.0),), (-2.0, 2.0, -1.0, 3.0), (-1.5, 2.0)),
    "himmelblau": (
        ((3.0, 2.0),
         (-2.805118086952745, 3.131312518250573),
         (-3.779310253377747, -3.283185991286169),
         (3.5844283403304917, -1.8481265269644034)),
        (-5.0, 5.0, -5.0, 5.0),
        (-0.3, -0.9),
    ),
    "saddle": (((0.0, 1.0), (0.0, -1.0)), (-2.0, 2.0, -1.5, 1.5), (1.5, 1e-3)),
    "beale": (((3.0, 0.5),), (-1.0, 4.5, -1.5, 2.5), (1.0, 1.5)),
    "rastrigin": (((0.0, 0.0),), (-5.12, 5.12, -5.12, 5.12), (-3.3, 2.6)),
}

_SURFACE_BUILDERS = {
    "rosenbrock": _rosenbrock,
    "himmelblau": _himmelblau,
    "saddle": _saddle,
    "beale": _beale,
    "rastrigin": _rastrigin,
}


def make_surface(name: str, *, kappa: float = 10.0, theta: float = 0.0) -> Surface:
    """The surface called ``name`` (one of SURFACES).

    kappa: the bowl's condition number (curvature ratio), 1..1000. theta: the bowl's rotation
    in degrees, 0..90 (0 = axes aligned with x, y). Both are validated for every surface and
    only shape the bowl.
    """
    if name not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}; got {name!r}")
    kappa = number("kappa", kappa, *KAPPA_RANGE)
    theta = number("theta", theta, *THETA_RANGE)
    if name == "bowl":
        f, grad = _bowl(kappa, theta)
        params: dict[str, float] = {"kappa": kappa, "theta": theta}
    else:
        f, grad = _SURFACE_BUILDERS[name]()
        params = {}
    minima, window, start = _SURFACE_LAYOUT[name]
    return Surface(name, f, grad, minima, window, start, MappingProxyType(params))


def _resolve_surface(surface: Surface | str) -> Surface:
    if isinstance(surface, Surface):
        return surface
    if isinstance(surface, str):
        return make_surface(surface)
    raise ValueError(f"surface must be a Surface or one of {', '.join(SURFACES)}; got {surface!r}")


def surface_grid(surface: Surface | str, nx: int, ny: int,
                 window: tuple[float, float, float, float] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss sampled on a regular grid, for a heatmap.

    Returns ``(xs, ys, Z)``: xs (nx,) and ys (ny,) evenly spaced over ``window`` (default:
    the surface's), ``Z`` (ny, nx) float64 with ``Z[j, i] = f(xs[i], ys[j])`` (rows are y).
    nx, ny: 2..4096. Values too large for float64 come out as inf (no warning).
    """
    surface = _resolve_surface(surface)
    nx = integer("nx", nx, *GRID_RANGE)
    ny = integer("ny", ny, *GRID_RANGE)
    xmin, xmax, ymin, ymax = _window(surface.window if window is None else window)
    xs = np.linspace(xmin, xmax, nx)
    ys = np.linspace(ymin, ymax, ny)
    with np.errstate(over="ignore", invalid="ignore"):
        z = surface.f(xs[np.newaxis, :], ys[:, np.newaxis])
    z = np.ascontiguousarray(np.broadcast_to(z, (ny, nx)), dtype=np.float64)
    for array in (xs, ys, z):
        array.flags.writeable = False
    return xs, ys, z


# --------------------------------------------------------------------------- hyper-parameters

# torch.optim's defaults, except: lr picked per optimizer for a good 500-step race on
# rosenbrock from its default start (SGD crawls along the valley, the momentum methods at the
# same lr reach the minimum, Adam gets there by a different road), and momentum 0.9 for the
# momentum methods (torch's default 0 would make them plain SGD).
DEFAULT_HYPER: dict[str, dict] = {
    "sgd": {"lr": 1e-3, "weight_decay": 0.0},
    "momentum": {"lr": 1e-3, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0},
    "nesterov": {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
    "adagrad": {"lr": 0.5, "lr_decay": 0.0, "weight_decay": 0.0,
                "initial_accumulator_value": 0.0, "eps": 1e-10},
    "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                "momentum": 0.0, "centered": False},
    "adam": {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
             "amsgrad": False},
    "adamw": {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01,
              "amsgrad": False},
}
_DEFAULTS = MappingProxyType({k: MappingProxyType(dict(v)) for k, v in DEFAULT_HYPER.items()})


def _betas(value: object) -> tuple[float, float]:
    try:
        b1, b2 = value  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2) in [0, 1), got {value!r}") from None
    return (number("betas[0] (beta1)", b1, 0.0, 1.0, hi_open=True),
            number("betas[1] (beta2)", b2, 0.0, 1.0, hi_open=True))


_HYPER_CHECKS: dict[str, Callable[[str, object], object]] = {
    "lr": lambda n, v: number(n, v, 0.0, lo_open=True),
    "weight_decay": lambda n, v: number(n, v, 0.0),
    "momentum": lambda n, v: number(n, v, 0.0, 1.0, hi_open=True),
    "dampening": lambda n, v: number(n, v, 0.0, 1.0),
    "lr_decay": lambda n, v: number(n, v, 0.0),
    "initial_accumulator_value": lambda n, v: number(n, v, 0.0),
    "eps": lambda n, v: number(n, v, 0.0, lo_open=True),
    "alpha": lambda n, v: number(n, v, 0.0, 1.0, hi_open=True),
    "centered": flag,
    "amsgrad": flag,
    "betas": lambda n, v: _betas(v),
}


def _resolve_hyper(optimizer: str, hyper: Mapping[str, object]) -> dict:
    """DEFAULT_HYPER[optimizer] updated with ``hyper``, every value validated."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    defaults = _DEFAULTS[optimizer]
    for key in hyper:
        if key not in defaults:
            raise ValueError(f"unknown hyper-parameter {key!r} for optimizer {optimizer!r}; "
                             f"allowed: {', '.join(defaults)}")
    resolved = {key: _HYPER_CHECKS[key](key, hyper.get(key, default)) for key, default in defaults.items()}
    if optimizer == "nesterov" and resolved["momentum"] == 0.0:
        raise ValueError("momentum must be in (0, 1) for nesterov (Nesterov needs a momentum), got 0.0")
    return resolved


# --------------------------------------------------------------------------- schedules


MAX_MILESTONES = 32
"""Most milestones a ``multistep`` schedule takes."""


def _milestones(value: object) -> tuple[int, ...]:
    """Milestone steps, each an integer from 1 to MAX_STEPS, sorted (a repeat counts twice, as in torch)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"milestones: must be a sequence of integers from 1 to {MAX_STEPS}, got {value!r}")
    items = list(value)  # type: ignore[call-overload]
    if len(items) > MAX_MILESTONES:
        raise ValueError(f"milestones: at most {MAX_MILESTONES} steps, got {len(items)}")
    return tuple(sorted(integer("milestones", v, 1, MAX_STEPS) for v in items))


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule, one scheduler step per optimizer step (see module doc).

    kind: one of SCHEDULE_KINDS. Each field is named as the torch scheduler's parameter:

    - step_size (steps, >= 1) and gamma (factor in (0, 1]) for ``step``; gamma (per-step factor)
      for ``exponential``; milestones (steps 1..MAX_STEPS, a sequence, stored sorted as a tuple)
      and gamma for ``multistep``.
    - T_max (steps, >= 1) and eta_min (absolute lr, >= 0) for ``cosine`` and ``warmup``;
      warmup_steps (>= 1) for ``warmup``.
    - T_0 (steps of the first period, >= 1), T_mult (integer growth of the period, >= 1) and
      eta_min for ``cosine_restarts``.
    - warmup (steps, >= 1) and d_model (model width, >= 1) for ``inverse_sqrt``.
    - pct_start (share of the steps spent rising, in [0, 1)), div_factor (> 0: the start is
      lr / div_factor) and final_div_factor (> 0: the end is lr / (div_factor * final_div_factor))
      for ``onecycle``; total_steps is the trace's ``steps``.
    - factor (in (0, 1)), patience (steps, >= 0) and threshold (relative, in [0, 1)) for ``plateau``.

    Every field is validated whatever the kind, so the defaults (torch's, where torch has one;
    the paper's d_model = 512 and warmup = 4000) are all valid.
    """

    kind: str = "constant"
    step_size: int = 100
    gamma: float = 0.5
    T_max: int = 500
    eta_min: float = 0.0
    warmup_steps: int = 50
    milestones: tuple[int, ...] = (150, 300)
    T_0: int = 100
    T_mult: int = 1
    warmup: int = 4000
    d_model: int = 512
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"schedule kind must be one of {', '.join(SCHEDULE_KINDS)}; got {self.kind!r}")
        integer("step_size", self.step_size, 1)
        number("gamma", self.gamma, 0.0, 1.0, lo_open=True)
        integer("T_max", self.T_max, 1)
        number("eta_min", self.eta_min, 0.0)
        integer("warmup_steps", self.warmup_steps, 1)
        object.__setattr__(self, "milestones", _milestones(self.milestones))
        integer("T_0", self.T_0, 1)
        integer("T_mult", self.T_mult, 1)
        integer("warmup", self.warmup, 1)
        integer("d_model", self.d_model, 1)
        number("pct_start", self.pct_start, 0.0, 1.0, hi_open=True)
        number("div_factor", self.div_factor, 0.0, lo_open=True)
        number("final_div_factor", self.final_div_factor, 0.0, lo_open=True)
        number("factor", self.factor, 0.0, 1.0, lo_open=True, hi_open=True)
        integer("patience", self.patience, 0)
        number("threshold", self.threshold, 0.0, 1.0, hi_open=True)

    def check_steps(self, steps: int) -> None:
        """Refuse a schedule that torch cannot run for ``steps`` steps (ValueError naming the field):
        OneCycleLR divides by the length of its rising phase, pct_start * steps - 1 steps, which is
        0 when pct_start * steps = 1."""
        if self.kind == "onecycle" and float(self.pct_start * steps) == 1.0:
            raise ValueError(f"pct_start: pct_start * steps must not be 1 (OneCycleLR's rising phase would last "
                             f"0 steps and torch divides by its length), got pct_start={self.pct_start!r} "
                             f"with steps={steps}")


def _step_lrs(lr: float, steps: int, step_size: int, gamma: float) -> list[float]:
    """StepLR: multiply by gamma at every non-zero multiple of step_size."""
    out, current = [], lr
    for epoch in range(steps):
        if epoch and epoch % step_size == 0:
            current = current * gamma
        out.append(current)
    return out


def _exponential_lrs(lr: float, steps: int, gamma: float) -> list[float]:
    """ExponentialLR: multiply by gamma every step."""
    out, current = [lr], lr
    for _ in range(steps - 1):
        current = current * gamma
        out.append(current)
    return out


@lru_cache(maxsize=64)
def _cosine_factors(t_max: int, count: int) -> tuple[float | None, ...]:
    """CosineAnnealingLR's per-epoch ratio for epochs 1..count-1 (None: the additive branch).

    Depends on T_max only, so a race computes the cosines once for all optimizers.
    """
    pi, cos = math.pi, math.cos
    factors: list[float | None] = []
    previous = 1 + cos(pi * 0 / t_max)
    for epoch in range(1, count):
        current = 1 + cos(pi * epoch / t_max)
        factors.append(None if (epoch - 1 - t_max) % (2 * t_max) == 0 else current / previous)
        previous = current
    return tuple(factors)


def _cosine_lrs(base: float, first: float, count: int, t_max: int, eta_min: float) -> list[float]:
    """CosineAnnealingLR's recursive get_lr from ``first`` at its epoch 0, ``count`` values.

    torch: lr <- (1 + cos(pi e/T)) / (1 + cos(pi (e-1)/T)) * (lr - eta_min) + eta_min, except
    lr <- lr + (base - eta_min) (1 - cos(pi/T)) / 2 where the denominator would vanish.
    """
    bump = (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
    out, current = [first], first
    append = out.append
    for factor in _cosine_factors(t_max, count):
        current = current + bump if factor is None else factor * (current - eta_min) + eta_min
        append(current)
    return out


def _warmup_lrs(lr: float, steps: int, k: int, t_max: int, eta_min: float) -> list[float]:
    """SequentialLR([LinearLR(1/(k+1), 1.0, k), CosineAnnealingLR(t_max, eta_min)], [k])."""
    start, end = 1.0 / (k + 1), 1.0
    out, current = [], lr * start
    for epoch in range(min(k, steps)):
        if epoch:
            current = current * (1.0 + (end - start) / (k * start + (epoch - 1) * (end - start)))
        out.append(current)
    if steps > k:
        # At the milestone torch calls the cosine's closed form at its epoch 0.
        first = eta_min + (lr - eta_min) * (1 + math.cos(math.pi * 0 / t_max)) / 2
        out.extend(_cosine_lrs(lr, first, steps - k, t_max, eta_min))
    return out


def _multistep_lrs(lr: float, steps: int, milestones: tuple[int, ...], gamma: float) -> list[float]:
    """MultiStepLR (recursive form): at a milestone epoch, lr * gamma ** (times it is listed)."""
    counts: dict[int, int] = {}
    for m in milestones:
        counts[m] = counts.get(m, 0) + 1
    out, current = [], lr
    for epoch in range(steps):
        if epoch in counts:
            current = current * gamma ** counts[epoch]
        out.append(current)
    return out


def _restart_lrs(lr: float, steps: int, t_0: int, t_mult: int, eta_min: float) -> list[float]:
    """CosineAnnealingWarmRestarts stepped without an epoch: T_cur counts the steps since the last
    restart, T_i is the current period (T_0, then T_mult times longer at each restart)."""
    pi, cos = math.pi, math.cos
    t_cur, t_i = 0, t_0
    out = []
    for epoch in range(steps):
        if epoch:
            t_cur = t_cur + 1
            if t_cur >= t_i:
                t_cur = t_cur % t_i
                t_i = t_i * t_mult
        out.append(eta_min + (lr - eta_min) * (1 + cos(pi * t_cur / t_i)) / 2)
    return out


def inverse_sqrt_factor(epoch: int, warmup: int, d_model: int) -> float:
    """The original Transformer's rate at step t = epoch + 1, as a LambdaLR factor (times lr):
    d_model^-0.5 * min(t^-0.5, t * warmup^-1.5). Rises linearly to d_model^-0.5 * warmup^-0.5
    at t = warmup, then falls as t^-0.5."""
    t = epoch + 1
    return d_model ** -0.5 * min(t ** -0.5, t * warmup ** -1.5)


def _inverse_sqrt_lrs(lr: float, steps: int, warmup: int, d_model: int) -> list[float]:
    """LambdaLR(inverse_sqrt_factor): base lr times the factor at each epoch."""
    return [lr * inverse_sqrt_factor(epoch, warmup, d_model) for epoch in range(steps)]


def _onecycle_lrs(lr: float, steps: int, pct_start: float, div_factor: float,
                  final_div_factor: float) -> list[float]:
    """OneCycleLR(max_lr=lr, total_steps=steps), two phases, cos annealing, torch's arithmetic:
    (end_step, start_lr, end_lr) = (pct_start * steps - 1, lr / div, lr), (steps - 1, lr, lr / div / final)."""
    initial = lr / div_factor
    phases = ((float(pct_start * steps) - 1, initial, lr), (steps - 1, lr, initial / final_div_factor))
    pi, cos = math.pi, math.cos
    out = []
    for step_num in range(steps):
        start_step = 0.0
        for i, (end_step, start_lr, end_lr) in enumerate(phases):
            if step_num <= end_step or i == len(phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                out.append(end_lr + (start_lr - end_lr) / 2.0 * (cos(pi * pct) + 1))
                break
            start_step = end_step
    return out


class _Plateau:
    """ReduceLROnPlateau's state (mode "min", threshold_mode "rel", cooldown 0, min_lr 0, eps 1e-8)."""

    def __init__(self, lr: float, factor: float, patience: int, threshold: float):
        self.lr, self.factor, self.patience, self.threshold = lr, factor, patience, threshold
        self.best, self.bad = math.inf, 0

    def step(self, loss: float) -> float:
        """One scheduler.step(loss); returns the learning rate of the next optimizer step."""
        if loss < self.best * (1.0 - self.threshold):
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        if self.bad > self.patience:
            new = max(self.lr * self.factor, 0)
            if self.lr - new > 1e-8:
                self.lr = new
            self.bad = 0
        return self.lr


def _plateau_lrs(lr: float, steps: int, schedule: "Schedule", losses) -> list[float]:
    """The rate of each of ``steps`` steps, given the loss each step started from."""
    state = _Plateau(lr, schedule.factor, schedule.patience, schedule.threshold)
    return [lr] + [state.step(float(losses[i])) for i in range(steps - 1)]


class _PlateauRates:
    """The rates of a plateau schedule inside a trace, where they depend on the walk itself: the
    optimizer loop iterates this object (one rate per step) and calls the gradient that
    :meth:`watch` wraps, which records the loss at each point. The rate of step i + 1 is
    scheduler.step(loss at the point step i started from), as in a torch loop that steps the
    scheduler with the loss it just computed; ``used`` lists the rates handed out."""

    def __init__(self, lr: float, steps: int, schedule: "Schedule", f):
        self.state = _Plateau(lr, schedule.factor, schedule.patience, schedule.threshold)
        self.first, self.steps, self.f = lr, steps, f
        self.losses: list[float] = []
        self.used: list[float] = []

    def watch(self, gradient: "GradientStep") -> "GradientStep":
        f, record = self.f, self.losses.append

        def watched(x, y):
            record(f(x, y))
            return gradient(x, y)
        return watched

    def __iter__(self):
        lr, used, state, losses = self.first, self.used, self.state, self.losses
        for i in range(self.steps):
            if i:
                lr = state.step(float(losses[i - 1]))
            used.append(lr)
            yield lr


def learning_rates(schedule: Schedule | None, lr: float, steps: int, *, losses=None) -> np.ndarray:
    """The lr used at each of ``steps`` optimizer steps, shape (steps,), exactly as torch's
    scheduler sets ``param_groups[0]["lr"]`` before each ``optimizer.step()``.

    losses: only for ``plateau`` (required there): the loss each step started from, at least
    steps - 1 finite values (losses[i] is passed to ``scheduler.step`` after step i + 1; the last
    step's is not needed), e.g. ``Trace.losses`` of a plateau trace.
    """
    lr = number("lr", lr, 0.0, lo_open=True)
    steps = integer("steps", steps, 1, MAX_STEPS)
    schedule = _check_schedule(schedule)
    if schedule is not None:
        schedule.check_steps(steps)
    if schedule is not None and schedule.kind == "plateau":
        metric = np.asarray(losses if losses is not None else [], dtype=np.float64).ravel()
        if losses is None or metric.size < steps - 1 or not np.all(np.isfinite(metric[: steps - 1])):
            raise ValueError(f"losses: the plateau schedule needs at least steps - 1 = {steps - 1} finite losses "
                             f"(the loss each step started from), got {None if losses is None else metric.size}")
        out = np.array(_plateau_lrs(lr, steps, schedule, metric.tolist()), dtype=np.float64)
    else:
        out = np.array(_schedule_lrs(schedule, lr, steps), dtype=np.float64)
    out.flags.writeable = False
    return out


def _schedule_lrs(schedule: Schedule | None, lr: float, steps: int) -> list[float]:
    """The rates of every kind but plateau (which needs the losses: see _PlateauRates)."""
    if schedule is None or schedule.kind == "constant":
        return [lr] * steps
    s = schedule
    if s.kind == "step":
        return _step_lrs(lr, steps, s.step_size, s.gamma)
    if s.kind == "exponential":
        return _exponential_lrs(lr, steps, s.gamma)
    if s.kind == "cosine":
        return _cosine_lrs(lr, lr, steps, s.T_max, s.eta_min)
    if s.kind == "warmup":
        return _warmup_lrs(lr, steps, s.warmup_steps, s.T_max, s.eta_min)
    if s.kind == "multistep":
        return _multistep_lrs(lr, steps, s.milestones, s.gamma)
    if s.kind == "cosine_restarts":
        return _restart_lrs(lr, steps, s.T_0, s.T_mult, s.eta_min)
    if s.kind == "inverse_sqrt":
        return _inverse_sqrt_lrs(lr, steps, s.warmup, s.d_model)
    if s.kind == "onecycle":
        return _onecycle_lrs(lr, steps, s.pct_start, s.div_factor, s.final_div_factor)
    raise ValueError("plateau: its rates depend on the losses (learning_rates(..., losses=...))")


def _check_schedule(schedule: object) -> Schedule | None:
    if schedule is not None and not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule or None, got {schedule!r}")
    return schedule


# --------------------------------------------------------------------------- noise and clipping


def _check_noise(noise: object) -> tuple[float, int] | None:
    if noise is None:
        return None
    try:
        sigma, batch_size = noise  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ValueError(f"noise must be None or (sigma, batch_size), got {noise!r}") from None
    return number("noise sigma", sigma, 0.0), integer("noise batch_size", batch_size, 1)


def gradient_noise(noise: tuple[float, int] | None, steps: int, seed: int = 0) -> np.ndarray:
    """The noise added to the gradient at each step, shape (steps, 2) (columns x, y).

    ``noise=(sigma, batch_size)``: ``np.random.default_rng(seed).standard_normal((steps, 2))
    * (sigma / sqrt(batch_size))`` -- the jitter of a minibatch gradient whose per-example
    spread is sigma. ``None``: zeros.
    """
    checked = _check_noise(noise)
    steps = integer("steps", steps, 1, MAX_STEPS)
    seed = integer("seed", seed, 0)
    if checked is None:
        out = np.zeros((steps, 2))
    else:
        out = _noise_rows(checked, steps, seed)
    out.flags.writeable = False
    return out


def _noise_rows(noise: tuple[float, int], steps: int, seed: int) -> np.ndarray:
    sigma, batch_size = noise
    with np.errstate(over="ignore"):  # an absurd sigma gives inf draws, hence a diverged trace
        return np.random.default_rng(seed).standard_normal((steps, 2)) * (sigma / math.sqrt(batch_size))


GradientStep = Callable[[float, float], "tuple[float, float]"]


def _gradient_pipeline(grad: ScalarGrad, noise_rows: list | None, clip: float | None
                       ) -> tuple[GradientStep, list | None]:
    """``(x, y) -> (gx, gy)``: gradient, + next noise row, clipped (in that order), and the list
    the pipeline appends each gradient's norm to (before clipping: what clip_grad_norm_ returns),
    or None when there is neither noise nor clipping: the surface's own gradient is then the
    pipeline (no wrapper call per step) and the norms are computed from the points afterwards.

    Norms use ``math.hypot``, finite for any finite gradient (torch's sum of squares overflows to
    inf beyond ~1e154 and then zeroes a clipped gradient; here the gradient is clipped properly).
    Each call consumes one noise row: a pipeline serves one trace only.
    """
    if noise_rows is None and clip is None:
        return grad, None
    hypot = math.hypot
    norms: list[float] = []
    add_norm = norms.append
    if clip is None:
        next_noise = iter(noise_rows).__next__

        def gradient(x, y):
            gx, gy = grad(x, y)
            nx, ny = next_noise()
            gx += nx
            gy += ny
            add_norm(hypot(gx, gy))
            return gx, gy
    else:
        next_noise = None if noise_rows is None else iter(noise_rows).__next__
        max_norm = clip

        def gradient(x, y):
            gx, gy = grad(x, y)
            if next_noise is not None:
                nx, ny = next_noise()
                gx += nx
                gy += ny
            norm = hypot(gx, gy)
            add_norm(norm)
            coef = (1.0 / (norm + CLIP_EPS)) * max_norm  # as torch: reciprocal, then multiply
            if coef < 1.0:
                gx *= coef
                gy *= coef
            return gx, gy
    return gradient, norms


# --------------------------------------------------------------------------- optimizer loops
#
# Each loop takes the gradient pipeline, the start (x, y), the per-step learning rates and
# the optimizer's resolved hyper-parameters, and returns the visited xs and ys, stopping before the first point outside [-BOUND, BOUND]^2 (NaN fails the test too).
# Arithmetic follows torch's single-tensor kernels operation by operation (x - a*b is
# bit-identical to torch's x + (-a)*b).

Run = tuple[list, list]


def _run_sgd(gradient: GradientStep, x: float, y: float, lrs: list, *, weight_decay: float) -> Run:
    xs, ys = [x], [y]
    add_x, add_y = xs.append, ys.append
    wd, hi, lo = weight_decay, BOUND, -BOUND
    for lr in lrs:
        gx, gy = gradient(x, y)
        if wd:
            gx = gx + wd * x
            gy = gy + wd * y
        x = x - lr * gx
        y = y - lr * gy
        if not (lo <= x <= hi and lo <= y <= hi):
            break
        add_x(x)
        add_y(y)
    return xs, ys


def _run_momentum(gradient: GradientStep, x: float, y: float, lrs: list, *, momentum: float,
                  dampening: float = 0.0, weight_decay: float, nesterov: bool = False) -> Run:
    """torch SGD with momentum (and nesterov): buf = g at step 1, then mu buf + (1-d) g."""
    if momentum == 0.0:
        return _run_sgd(gradient, x, y, lrs, weight_decay=weight_decay)
    xs, ys = [x], [y]
    add_x, add_y = xs.append, ys.append
    wd, mu, keep, hi, lo = weight_decay, momentum, 1.0 - dampening, BOUND, -BOUND
    bx = by = 0.0
    first = True
    for lr in lrs:
        gx, gy = gradient(x, y)
        if wd:
            gx = gx + wd * x
            gy = gy + wd * y
        if first:
            bx, by, first = gx, gy, False
        else:
            bx = bx * mu + keep * gx
            by = by * mu + keep * gy
        if nesterov:
            gx = gx + mu * bx
            gy = gy + mu * by
        else:
            gx, gy = bx, by
        x = x - lr * gx
        y = y - lr * gy
        if not (lo <= x <= hi and lo <= y <= hi):
            break
        add_x(x)
        add_y(y)
    return xs, ys


def _run_adagrad(gradient: GradientStep, x: float, y: float, lrs: list, *, lr_decay: float,
                 weight_decay: float, initial_accumulator_value: float, eps: float) -> Run:
    xs, ys = [x], [y]
    add_x, add_y = xs.append, ys.append
    sqrt, wd, hi, lo = math.sqrt, weight_decay, BOUND, -BOUND
    sx = sy = initial_accumulator_value
    step = 0.0
    for lr in lrs:
        gx, gy = gradient(x, y)
        step += 1.0
        if wd:
            gx = gx + wd * x
            gy = gy + wd * y
        clr = lr / (1 + (step - 1) * lr_decay)
        sx = sx + gx * gx
        sy = sy + gy * gy
        x = x - clr * gx / (sqrt(sx) + eps)
        y = y - clr * gy / (sqrt(sy) + eps)
        if not (lo <= x <= hi and lo <= y <= hi):
            break
        add_x(x)
        add_y(y)
    return xs, ys


def _run_rmsprop(gradient: GradientStep, x: float, y: float, lrs: list, *, alpha: float,
                 eps: float, weight_decay: float, momentum: float, centered: bool) -> Run:
    """torch RMSprop. Centered: sqrt(E[g^2] - E[g]^2); a negative difference from rounding
    gives NaN in torch, hence here a NaN step that ends the trace as diverged."""
    xs, ys = [x], [y]
    add_x, add_y = xs.append, ys.append
    sqrt, wd, hi, lo, nan = math.sqrt, weight_decay, BOUND, -BOUND, math.nan
    rho, w = alpha, 1.0 - alpha
    small_w, w_rest = w < 0.5, 1.0 - w  # torch lerp's two branches
    sqx = sqy = gax = gay = bx = by = 0.0
    for lr in lrs:
        gx, gy = gradient(x, y)
        if wd:
            gx = gx + wd * x
            gy = gy + wd * y
        sqx = sqx * rho + w * gx * gx
        sqy = sqy * rho + w * gy * gy
        if centered:
            if small_w:
                gax = gax + w * (gx - gax)
                gay = gay + w * (gy - gay)
            else:
                gax = gx - (gx - gax) * w_rest
                gay = gy - (gy - gay) * w_rest
            vx = sqx - gax * gax
            vy = sqy - gay * gay
            avg_x = (sqrt(vx) if vx >= 0.0 else nan) + eps
            avg_y = (sqrt(vy) if vy >= 0.0 else nan) + eps
        else:
            avg_x = sqrt(sqx) + eps
            avg_y = sqrt(sqy) + eps
        if momentum > 0.0:
            bx = bx * momentum + gx / avg_x
            by = by * momentum + gy / avg_y
            x = x - lr * bx
            y = y - lr * by
        else:
            x = x - lr * gx / avg_x
            y = y - lr * gy / avg_y
        if not (lo <= x <= hi and lo <= y <= hi):
            break
        add_x(x)
        add_y(y)
    return xs, ys


def _run_adam(gradient: GradientStep, x: float, y: float, lrs: list, *, betas: tuple[float, float],
              eps: float, weight_decay: float, amsgrad: bool, decoupled: bool = False) -> Run:
    """torch Adam (decoupled=False: L2 added to the gradient) and AdamW (decoupled=True:
    the parameter shrinks by 1 - lr * weight_decay before the step)."""
    xs, ys = [x], [y]
    add_x, add_y = xs.append, ys.append
    sqrt, hi, lo = math.sqrt, BOUND, -BOUND
    b1, b2 = betas
    w1, w2 = 1 - b1, 1 - b2
    small_w1, w1_rest = w1 < 0.5, 1.0 - w1  # torch lerp's two branches
    l2 = 0.0 if decoupled else weight_decay
    shrink = weight_decay if decoupled else 0.0
    mx = my = vx = vy = vmax_x = vmax_y = 0.0
    step = 0.0
    for lr in lrs:
        gx, gy = gradient(x, y)
        step += 1.0
        if shrink:
            keep = 1 - lr * shrink
            x = x * keep
            y = y * keep
        elif l2:
            gx = gx + l2 * x
            gy = gy + l2 * y
        if small_w1:
            mx = mx + w1 * (gx - mx)
            my = my + w1 * (gy - my)
        else:
            mx = gx - (gx - mx) * w1_rest
            my = gy - (gy - my) * w1_rest
        vx = vx * b2 + w2 * gx * gx
        vy = vy * b2 + w2 * gy * gy
        step_size = lr / (1 - b1 ** step)
        bias2_sqrt = (1 - b2 ** step) ** 0.5
        if amsgrad:
            if vx > vmax_x:
                vmax_x = vx
            if vy > vmax_y:
                vmax_y = vy
            x = x - step_size * mx / (sqrt(vmax_x) / bias2_sqrt + eps)
            y = y - step_size * my / (sqrt(vmax_y) / bias2_sqrt + eps)
        else:
            x = x - step_size * mx / (sqrt(vx) / bias2_sqrt + eps)
            y = y - step_size * my / (sqrt(vy) / bias2_sqrt + eps)
        if not (lo <= x <= hi and lo <= y <= hi):
            break
        add_x(x)
        add_y(y)
    return xs, ys


def _runner(optimizer: str, hyper: dict) -> Callable[[GradientStep, float, float, list], Run]:
    """The loop for ``optimizer`` with its hyper-parameters bound (lr comes per step)."""
    options = {k: v for k, v in hyper.items() if k != "lr"}
    loops = {
        "sgd": lambda g, x, y, lrs: _run_sgd(g, x, y, lrs, **options),
        "momentum": lambda g, x, y, lrs: _run_momentum(g, x, y, lrs, **options),
        "nesterov": lambda g, x, y, lrs: _run_momentum(g, x, y, lrs, nesterov=True, **options),
        "adagrad": lambda g, x, y, lrs: _run_adagrad(g, x, y, lrs, **options),
        "rmsprop": lambda g, x, y, lrs: _run_rmsprop(g, x, y, lrs, **options),
        "adam": lambda g, x, y, lrs: _run_adam(g, x, y, lrs, **options),
        "adamw": lambda g, x, y, lrs: _run_adam(g, x, y, lrs, decoupled=True, **options),
    }
    return loops[optimizer]


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True, eq=False)
class Trace:
    """One optimizer's walk over a surface; all arrays float64 and read-only.

    points (n+1, 2): (x, y) before the first step and after each of the n completed steps.
    losses (n+1,): f at each point. lrs (n,): learning rate used by each step.
    grad_norms (n,): norm of the (noisy, not yet clipped) gradient each step started from.
    diverged_at: None, or the 1-based step k whose result was non-finite or outside
    ``|x|, |y| <= BOUND`` (then n = k - 1 and that point is not included).
    optimizer, hyper: the optimizer's name and its full resolved hyper-parameters.
    """

    points: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray
    grad_norms: np.ndarray
    diverged_at: int | None
    optimizer: str = ""
    hyper: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


def _readonly(values) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


def _finish(surface: Surface, run: Run, norms: list | None, lrs: list, steps: int, optimizer: str,
            hyper: dict) -> Trace:
    """Arrays from the loop's lists, losses (and, without noise or clipping, the gradient norms)
    vectorised; trims at a non-finite loss too."""
    xs, ys = run
    px, py = np.fromiter(xs, np.float64, len(xs)), np.fromiter(ys, np.float64, len(ys))
    with np.errstate(over="ignore", invalid="ignore"):
        losses = np.asarray(surface.f(px, py), dtype=np.float64)
    n_points = len(xs)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:  # cannot happen inside BOUND for the built-in surfaces; kept as a guard
        n_points = max(int(bad[0]), 1)
    diverged_at = n_points if n_points <= steps else None
    points = np.empty((n_points, 2))
    points[:, 0] = px[:n_points]
    points[:, 1] = py[:n_points]
    points.flags.writeable = False
    if norms is None:  # the closed-form gradients are plain arithmetic: they take arrays too
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.hypot(*surface.grad(px[: n_points - 1], py[: n_points - 1]))
    return Trace(
        points=points,
        losses=_readonly(losses[:n_points]),
        lrs=_readonly(lrs[: n_points - 1]),
        grad_norms=_readonly(norms[: n_points - 1]),
        diverged_at=diverged_at,
        optimizer=optimizer,
        hyper=MappingProxyType(hyper),
    )


def _check_common(surface, start, steps, schedule, clip, noise, seed):
    surface = _resolve_surface(surface)
    start = _point("start", start)
    steps = integer("steps", steps, 1, MAX_STEPS)
    schedule = _check_schedule(schedule)
    if schedule is not None:
        schedule.check_steps(steps)
    if clip is not None:
        clip = number("clip", clip, 0.0, lo_open=True)
    noise = _check_noise(noise)
    seed = integer("seed", seed, 0)
    return surface, start, steps, schedule, clip, noise, seed


def _trace_checked(surface: Surface, optimizer: str, hyper: dict, start, steps, schedule,
                   clip, noise_rows: list | None) -> Trace:
    gradient, norms = _gradient_pipeline(surface.grad, noise_rows, clip)
    if schedule is not None and schedule.kind == "plateau":  # the rates follow the walk's own loss
        rates = _PlateauRates(hyper["lr"], steps, schedule, surface.f)
        run = _runner(optimizer, hyper)(rates.watch(gradient), start[0], start[1], rates)
        lrs = rates.used
    else:
        lrs = _schedule_lrs(schedule, hyper["lr"], steps)
        run = _runner(optimizer, hyper)(gradient, start[0], start[1], lrs)
    return _finish(surface, run, norms, lrs, steps, optimizer, hyper)


def trace(surface: Surface | str, optimizer: str, start: tuple[float, float], steps: int, *,
          schedule: Schedule | None = None, clip: float | None = None,
          noise: tuple[float, int] | None = None, seed: int = 0, **hyper) -> Trace:
    """Run ``optimizer`` for ``steps`` steps on ``surface`` from ``start``.

    surface: a Surface or a name in SURFACES. optimizer: a name in OPTIMIZERS; ``hyper``
    overrides DEFAULT_HYPER[optimizer] with torch.optim's keyword names. start: (x, y),
    finite, within BOUND. steps: 1..MAX_STEPS. schedule: Schedule or None (constant).
    clip: max gradient norm (> 0) or None. noise: (sigma >= 0, batch_size >= 1) or None;
    ``seed`` (>= 0) seeds it (see gradient_noise). Never raises for divergence: see
    Trace.diverged_at. Raises ValueError naming the offending parameter.
    """
    surface, start, steps, schedule, clip, noise, seed = _check_common(
        surface, start, steps, schedule, clip, noise, seed)
    resolved = _resolve_hyper(optimizer, hyper)
    noise_rows = None if noise is None else _noise_rows(noise, steps, seed).tolist()
    return _trace_checked(surface, optimizer, resolved, start, steps, schedule, clip, noise_rows)


def race(surface: Surface | str, specs: Mapping[str, Mapping[str, object] | None],
         start: tuple[float, float], steps: int, *, schedule: Schedule | None = None,
         clip: float | None = None, noise: tuple[float, int] | None = None,
         seed: int = 0) -> dict[str, Trace]:
    """Trace several optimizers from the same start under the same schedule, clipping and
    noise (the same noise draws for all), in ``specs`` order.

    specs: label -> hyper overrides (None or {} for the defaults). The label is the optimizer
    name, unless the overrides carry ``"optimizer": name`` (so one optimizer can race itself
    with different settings, e.g. ``{"adam lr=0.1": {"optimizer": "adam", "lr": 0.1}}``).
    Everything is validated before anything runs.
    """
    surface, start, steps, schedule, clip, noise, seed = _check_common(
        surface, start, steps, schedule, clip, noise, seed)
    plans = []
    for label, overrides in specs.items():
        overrides = dict(overrides or {})
        optimizer = overrides.pop("optimizer", label)
        plans.append((label, optimizer, _resolve_hyper(optimizer, overrides)))
    noise_rows = None if noise is None else _noise_rows(noise, steps, seed).tolist()
    return {label: _trace_checked(surface, optimizer, hyper, start, steps, schedule, clip, noise_rows)
            for label, optimizer, hyper in plans}


# --------------------------------------------------------------------------- exponentially weighted averages


@dataclass(frozen=True, eq=False)
class EWA:
    """An exponentially weighted average of a series; arrays float64, read-only.

    values (n,): the series x_1..x_n. average (n,): m_t = beta m_{t-1} + (1 - beta) x_t from
    m_0 = 0, divided by correction[t] when ``bias_correction``. correction (n,): 1 - beta^t for
    t = 1..n (what Adam divides its moments by; its sum of weights so far). beta: in [0, 1).
    window: the effective window 1 / (1 - beta) in steps (the mean age of the weights plus one).
    """

    values: np.ndarray
    average: np.ndarray
    correction: np.ndarray
    beta: float
    bias_correction: bool

    @property
    def window(self) -> float:
        return 1.0 / (1.0 - self.beta)


MAX_SERIES = 100_000
"""Longest series :func:`ewa` takes."""


def ewa(values, beta: float, *, bias_correction: bool = True) -> EWA:
    """The exponentially weighted average of ``values`` (1-D, 1..MAX_SERIES finite numbers) with
    decay ``beta`` in [0, 1): the first moment of Momentum and both moments of Adam. Values
    beyond ±SERIES_BOUND are refused (ValueError naming ``values``), so every result is finite.

    m_t is updated as torch.optim.Adam updates exp_avg (``exp_avg.lerp_(x, 1 - beta)``, both of
    torch's lerp branches), so ``ewa(g, beta1, bias_correction=False).average`` is Adam's exp_avg
    after each step and ``ewa(g * g, beta2, ...)`` its exp_avg_sq (which torch forms as
    ``beta2 v + (1 - beta2) g^2``), both to rounding (torch's CPU kernels fuse multiply-adds).
    With ``bias_correction`` the average is m_t / (1 - beta^t), ``1 - beta ** t`` as torch's
    bias_correction1 (t a float). Without it the first values are pulled towards 0:
    m_1 = (1 - beta) x_1.
    """
    beta = number("beta", beta, 0.0, 1.0, hi_open=True)
    bias_correction = flag("bias_correction", bias_correction)
    x = _series("values", values)
    raw, correction = _ewa_loop(x.tolist(), beta)
    average = raw / correction if bias_correction else raw
    for array in (x, average, correction):
        array.flags.writeable = False
    return EWA(x, average, correction, beta, bias_correction)


SERIES_BOUND = 1e300
"""Largest magnitude :func:`ewa` takes in a series (no difference of two values overflows)."""


def _series(name: str, values: object) -> np.ndarray:
    """``values`` as a new 1-D float64 array of 1..MAX_SERIES finite numbers within
    +-SERIES_BOUND, else ValueError naming ``name``."""
    allowed = f"a 1-D series of 1 to {MAX_SERIES} finite numbers within ±{SERIES_BOUND:g}"
    if isinstance(values, (str, bytes)) or values is None:
        raise ValueError(f"{name}: must be {allowed}, got {values!r}")
    try:
        x = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: must be {allowed}, got {values!r:.60}") from None
    if x.ndim != 1 or not 1 <= x.size <= MAX_SERIES:
        raise ValueError(f"{name}: must be {allowed}, got shape {x.shape}")
    if not np.all(np.abs(x) <= SERIES_BOUND):  # NaN fails the test too
        raise ValueError(f"{name}: must be {allowed}, got a non-finite or larger value")
    return x


def _ewa_loop(xs: list[float], beta: float) -> tuple[np.ndarray, np.ndarray]:
    """(m_t, 1 - beta^t) for t = 1..n, each (n,): torch's lerp (weight w = 1 - beta: m + w (x - m)
    when w < 0.5, else x - (x - m)(1 - w)) and its bias_correction1."""
    w = 1.0 - beta
    rest = 1.0 - w
    m, t = 0.0, 0.0
    out, corrections = [], []
    add, add_c = out.append, corrections.append
    small = w < 0.5
    with np.errstate(over="ignore", invalid="ignore"):
        for x in xs:
            t += 1.0
            m = m + w * (x - m) if small else x - (x - m) * rest
            add(m)
            add_c(1.0 - beta ** t)
    return np.array(out), np.array(corrections)


def ewa_weights(beta: float, count: int) -> np.ndarray:
    """The weight of the value ``age`` steps back in an EWA with decay ``beta`` in [0, 1), for
    ages 0..count-1 (count 1..MAX_SERIES), shape (count,): m_t = sum over ages of
    (1 - beta) beta^age x_(t - age). They sum to 1 - beta^count (the rest is on the m_0 = 0 that
    bias correction divides out); the first 1 / (1 - beta) of them (the effective window) hold
    about 1 - 1/e = 63% of the weight."""
    beta = number("beta", beta, 0.0, 1.0, hi_open=True)
    count = integer("count", count, 1, MAX_SERIES)
    with np.errstate(under="ignore"):
        out = (1.0 - beta) * beta ** np.arange(count, dtype=np.float64)
    out.flags.writeable = False
    return out


def step_series(n: int, change_at: int, before: float = 1.0, after: float = 2.0, sigma: float = 0.0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic noisy series with a step change, for watching an EWA lag: ``(clean, noisy)``,
    each (n,). clean[t] = before for t < change_at, else after (t = 0..n-1, so change_at is the
    0-based index of the first new value, 1..n-1); noisy = clean + sigma *
    ``np.random.default_rng(seed).standard_normal(n)``. n: 2..MAX_SERIES; sigma >= 0 and the
    levels finite; seed >= 0."""
    n = integer("n", n, 2, MAX_SERIES)
    change_at = integer("change_at", change_at, 1, n - 1)
    before = number("before", before, -BOUND, BOUND)
    after = number("after", after, -BOUND, BOUND)
    sigma = number("sigma", sigma, 0.0, BOUND)
    seed = integer("seed", seed, 0)
    clean = np.where(np.arange(n) < change_at, before, after).astype(np.float64)
    noisy = clean + sigma * np.random.default_rng(seed).standard_normal(n)
    for array in (clean, noisy):
        array.flags.writeable = False
    return clean, noisy


def half_lag(average: np.ndarray, change_at: int, before: float, after: float) -> int | None:
    """How many values after a step change an average takes to cover half the jump: the smallest
    k >= 1 such that average[change_at + k - 1] is past (before + after) / 2 (in the jump's
    direction), or None if it never gets there (or before == after). For an EWA that had settled
    at ``before`` this is ceil(log(1/2) / log(beta)), about 0.69 / (1 - beta) for beta near 1."""
    average = np.asarray(average, dtype=np.float64)
    change_at = integer("change_at", change_at, 0, max(len(average) - 1, 0))
    if after == before:
        return None
    middle = 0.5 * (before + after)
    tail = average[change_at:]
    past = tail >= middle if after > before else tail <= middle
    hits = np.flatnonzero(past)
    return int(hits[0]) + 1 if hits.size else None


def seen_gradients(surface: Surface | str, trace: Trace, noise: tuple[float, int] | None = None,
                   seed: int = 0) -> np.ndarray:
    """The gradient each step of ``trace`` started from, (n, 2) (columns x, y): the surface's
    gradient at trace.points[:-1] plus that step's noise row (``noise`` and ``seed`` as given to
    :func:`trace`), before clipping: what ``clip_grad_norm_`` sees and its norm is grad_norms.
    For a trace run with noise, pass the same noise and seed."""
    surface = _resolve_surface(surface)
    n = len(trace.points) - 1
    points = trace.points[:n]
    with np.errstate(over="ignore", invalid="ignore"):
        gx, gy = surface.grad(points[:, 0], points[:, 1])
    out = np.column_stack([np.asarray(gx, dtype=np.float64), np.asarray(gy, dtype=np.float64)]).reshape(n, 2)
    checked = _check_noise(noise)
    if checked is not None and n:
        with np.errstate(over="ignore", invalid="ignore"):
            out = out + _noise_rows(checked, n, integer("seed", seed, 0))
    out.flags.writeable = False
    return out
