"""workbench.compute.optimizers against the real torch.optim (the oracle in optimizers_torch).

The trace comparisons use learning rates well inside each optimizer's stable range: torch's
CPU kernels round some multiply-adds differently (FMA) from plain Python, and a chaotic walk
(e.g. Adam hovering around a minimum with a large lr) amplifies last-bit differences without
bound, which would test the dynamics, not the implementation. On the walks below a 1e-16
perturbation per step grows to at most ~1e-11, so 1e-9 is a strict but stable tolerance.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compute import optimizers as opt
from workbench.compute.optimizers import (
    BOUND,
    DEFAULT_HYPER,
    OPTIMIZERS,
    SURFACES,
    Schedule,
    gradient_noise,
    learning_rates,
    make_surface,
    race,
    surface_grid,
    trace,
)
from workbench.compute.optimizers_torch import torch_loss, torch_trace

RTOL, ATOL = 1e-9, 1e-12
STEPS = 300
FUZZ = settings(max_examples=40, deadline=None, database=None)

# surface case -> (surface, start, noise for the run, clip threshold that bites early on)
CASES = {
    "rosenbrock": (make_surface("rosenbrock"), (-1.5, 2.0), None, 20.0),
    "rotated-bowl": (make_surface("bowl", kappa=20.0, theta=30.0), (-2.5, 1.5), (2.0, 8), 3.0),
    "saddle": (make_surface("saddle"), (1.5, 1e-3), (0.5, 4), 1.0),
}
# Stable learning rates per case and optimizer (see the module docstring).
CASE_LR = {
    "rosenbrock": dict(sgd=1e-3, momentum=5e-4, nesterov=5e-4, adagrad=0.1, rmsprop=2e-3,
                       adam=1e-2, adamw=1e-2),
    "rotated-bowl": dict(sgd=0.05, momentum=0.02, nesterov=0.02, adagrad=0.3, rmsprop=0.01,
                         adam=0.02, adamw=0.02),
    "saddle": dict(sgd=0.05, momentum=0.02, nesterov=0.02, adagrad=0.3, rmsprop=0.01,
                   adam=0.02, adamw=0.02),
}
SCHEDULES = {
    "constant": None,
    "step": Schedule("step", step_size=50, gamma=0.7),
    "exponential": Schedule("exponential", gamma=0.995),
    "cosine": Schedule("cosine", T_max=120, eta_min=1e-5),  # 300 steps: past T_max, climbs back
    "warmup": Schedule("warmup", warmup_steps=40, T_max=200, eta_min=1e-5),
}


def assert_traces_equal(ours, theirs, rtol=RTOL, atol=ATOL):
    assert ours.diverged_at == theirs.diverged_at
    for name in ("points", "losses", "lrs", "grad_norms"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.shape == b.shape, name
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)


def assert_well_formed(t, steps):
    n = len(t.points) - 1
    assert t.points.shape == (n + 1, 2) and t.losses.shape == (n + 1,)
    assert t.lrs.shape == (n,) and t.grad_norms.shape == (n,)
    for array in (t.points, t.losses, t.lrs, t.grad_norms):
        assert array.dtype == np.float64
        assert np.all(np.isfinite(array))
        assert not array.flags.writeable
    assert np.all(np.abs(t.points) <= BOUND)
    if t.diverged_at is None:
        assert n == steps
    else:
        assert 1 <= t.diverged_at <= steps and n == t.diverged_at - 1


# --------------------------------------------------------------------------- against torch.optim


@pytest.mark.parametrize("clipped", [False, True], ids=["noclip", "clip"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("case", CASES)
def test_trace_matches_torch_optim(case, optimizer, schedule, clipped):
    surface, start, noise, clip = CASES[case]
    kwargs = dict(schedule=SCHEDULES[schedule], clip=clip if clipped else None, noise=noise,
                  seed=7, lr=CASE_LR[case][optimizer])
    ours = trace(surface, optimizer, start, STEPS, **kwargs)
    theirs = torch_trace(surface, optimizer, start, STEPS, **kwargs)
    assert ours.diverged_at is None
    assert_well_formed(ours, STEPS)
    assert_traces_equal(ours, theirs)


# Every non-default option, incl. both branches of torch's lerp (weight < 0.5 and >= 0.5).
VARIANTS = [
    ("sgd", dict(lr=1e-3, weight_decay=0.5)),
    ("momentum", dict(lr=5e-4, momentum=0.6, dampening=0.3, weight_decay=0.2)),
    ("nesterov", dict(lr=5e-4, momentum=0.7, weight_decay=0.2)),
    ("adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5,
                     eps=1e-6)),
    ("rmsprop", dict(lr=2e-3, alpha=0.9, centered=True)),
    ("rmsprop", dict(lr=5e-4, momentum=0.5, weight_decay=0.1)),
    ("rmsprop", dict(lr=5e-4, alpha=0.3, centered=True, momentum=0.3)),
    ("adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("adam", dict(lr=5e-3, betas=(0.3, 0.5), eps=1e-6)),
    ("adamw", dict(lr=1e-2, amsgrad=True, weight_decay=0.3, betas=(0.8, 0.99))),
]


@pytest.mark.parametrize("optimizer, hyper", VARIANTS, ids=[f"{o}-{i}" for i, (o, _) in enumerate(VARIANTS)])
def test_hyper_variants_match_torch_optim(optimizer, hyper):
    kwargs = dict(schedule=SCHEDULES["warmup"], clip=20.0, noise=(1.0, 4), seed=3, **hyper)
    ours = trace("rosenbrock", optimizer, (-1.5, 2.0), STEPS, **kwargs)
    assert ours.diverged_at is None
    assert_traces_equal(ours, torch_trace("rosenbrock", optimizer, (-1.5, 2.0), STEPS, **kwargs))


def test_defaults_match_torch_optim_on_every_surface():
    for name in SURFACES:
        surface = make_surface(name)
        for optimizer in ("sgd", "adam"):
            ours = trace(surface, optimizer, surface.start, 100)
            assert_traces_equal(ours, torch_trace(surface, optimizer, surface.start, 100), rtol=1e-8)


def _torch_lrs(schedule, lr, steps):
    """The documented torch scheduler composition, built here independently of the oracle."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    o = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler
    if schedule.kind == "step":
        s = sched.StepLR(o, step_size=schedule.step_size, gamma=schedule.gamma)
    elif schedule.kind == "exponential":
        s = sched.ExponentialLR(o, gamma=schedule.gamma)
    elif schedule.kind == "cosine":
        s = sched.CosineAnnealingLR(o, T_max=schedule.T_max, eta_min=schedule.eta_min)
    else:
        k = schedule.warmup_steps
        s = sched.SequentialLR(o, [
            sched.LinearLR(o, start_factor=1.0 / (k + 1), end_factor=1.0, total_iters=k),
            sched.CosineAnnealingLR(o, T_max=schedule.T_max, eta_min=schedule.eta_min),
        ], milestones=[k])
    out = []
    for _ in range(steps):
        out.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    return out


@pytest.mark.parametrize("schedule, steps", [
    (Schedule("step", step_size=7, gamma=0.5), 40),
    (Schedule("exponential", gamma=0.97), 60),
    (Schedule("cosine", T_max=10, eta_min=0.0), 65),  # several periods, both torch branches
    (Schedule("cosine", T_max=1, eta_min=0.01), 9),
    (Schedule("cosine", T_max=33, eta_min=0.02), 120),
    (Schedule("warmup", warmup_steps=5, T_max=10, eta_min=0.001), 40),
    (Schedule("warmup", warmup_steps=1, T_max=20, eta_min=0.0), 30),
    (Schedule("warmup", warmup_steps=50, T_max=20, eta_min=0.0), 20),  # never leaves warmup
])
def test_learning_rates_are_torch_schedulers_bit_for_bit(schedule, steps):
    ours = learning_rates(schedule, 0.3, steps)
    np.testing.assert_array_equal(ours, _torch_lrs(schedule, 0.3, steps))


def test_warmup_ramps_linearly_then_follows_cosine():
    k, lr = 4, 0.5
    lrs = learning_rates(Schedule("warmup", warmup_steps=k, T_max=8, eta_min=0.0), lr, 13)
    np.testing.assert_allclose(lrs[:k], [lr * (i + 1) / (k + 1) for i in range(k)], rtol=1e-14)
    np.testing.assert_allclose(lrs[k:], [lr * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(9)],
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(learning_rates(None, lr, 5), [lr] * 5)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_divergence_matches_torch_and_stays_finite(optimizer):
    # The adaptive methods take steps of about lr whatever the gradient, so only a huge lr
    # escapes the box; AdamW also blows up once lr * weight_decay > 2 (x *= 1 - lr * wd).
    lr = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 6e5, "rmsprop": 1e5,
          "adam": 1e5, "adamw": 1e3}[optimizer]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = trace("rosenbrock", optimizer, (-1.5, 2.0), 500, lr=lr)
    assert ours.diverged_at is not None
    assert_well_formed(ours, 500)
    assert_traces_equal(ours, torch_trace("rosenbrock", optimizer, (-1.5, 2.0), 500, lr=lr))


def test_huge_gradient_noise_diverges_without_nan():
    t = trace("bowl", "sgd", (1.0, 1.0), 50, noise=(1e300, 1), lr=1.0)
    assert t.diverged_at == 1 and t.points.shape == (1, 2)


def test_sgd_lr_one_on_rosenbrock_diverges_within_a_few_steps():
    t = trace("rosenbrock", "sgd", (-1.5, 2.0), 100, lr=1.0)
    assert t.diverged_at is not None and t.diverged_at <= 5
    assert len(t.points) == t.diverged_at and len(t.lrs) == t.diverged_at - 1
    assert np.all(np.isfinite(t.points)) and np.all(np.isfinite(t.losses))


def test_divergence_on_the_very_first_step_leaves_only_the_start():
    t = trace("beale", "sgd", (1.0, 1.5), 10, lr=1e6)
    assert t.diverged_at == 1
    assert t.points.tolist() == [[1.0, 1.5]] and t.lrs.shape == (0,) and t.grad_norms.shape == (0,)


# --------------------------------------------------------------------------- surfaces

points_in_box = st.tuples(st.floats(-6, 6), st.floats(-6, 6))


@FUZZ
@given(name=st.sampled_from(SURFACES), point=points_in_box,
       kappa=st.floats(1, 1000), theta=st.floats(0, 90))
def test_closed_form_gradient_matches_autograd(name, point, kappa, theta):
    surface = make_surface(name, kappa=kappa, theta=theta)
    p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    loss = torch_loss(surface)(p)
    loss.backward()
    expected = p.grad.numpy()
    scale = np.abs(expected).max() + 1.0
    np.testing.assert_allclose(surface.grad(*point), expected, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(surface.f(np.array(point[0]), np.array(point[1])), loss.item(),
                               rtol=1e-12, atol=1e-12)


MINIMUM_VALUE = {"saddle": -0.25}


@pytest.mark.parametrize("name", SURFACES)
def test_known_minima_have_zero_gradient_and_are_minima(name):
    surface = make_surface(name, kappa=50.0, theta=20.0)
    assert surface.minima
    for mx, my in surface.minima:
        assert math.hypot(*surface.grad(mx, my)) < 1e-9
        value = float(surface.f(np.float64(mx), np.float64(my)))
        assert value == pytest.approx(MINIMUM_VALUE.get(name, 0.0), abs=1e-12)
        ring = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        around = surface.f(mx + 1e-3 * np.cos(ring), my + 1e-3 * np.sin(ring))
        assert np.all(around > value)


@pytest.mark.parametrize("name", SURFACES)
def test_default_start_and_minima_lie_in_the_default_window(name):
    surface = make_surface(name)
    xmin, xmax, ymin, ymax = surface.window
    for x, y in (surface.start, *surface.minima):
        assert xmin <= x <= xmax and ymin <= y <= ymax


def test_surface_formulas_at_known_points():
    assert make_surface("rosenbrock").f(0.0, 0.0) == 1.0
    assert make_surface("himmelblau").f(0.0, 0.0) == 170.0
    assert make_surface("beale").f(0.0, 0.0) == pytest.approx(1.5**2 + 2.25**2 + 2.625**2)
    assert make_surface("rastrigin").f(0.5, 0.0) == pytest.approx(20.25 + 10.0 + 0.0 - 10.0)
    assert make_surface("saddle").f(0.0, 0.0) == 0.0
    # bowl: a unit step along the rotated v axis costs kappa / 2
    bowl = make_surface("bowl", kappa=9.0, theta=30.0)
    t = math.radians(30.0)
    assert bowl.f(-math.sin(t), math.cos(t)) == pytest.approx(4.5)
    assert bowl.f(math.cos(t), math.sin(t)) == pytest.approx(0.5)


def test_surface_grid_is_f_on_the_grid():
    surface = make_surface("himmelblau")
    xs, ys, z = surface_grid(surface, 7, 5)
    assert xs.shape == (7,) and ys.shape == (5,) and z.shape == (5, 7)
    assert (xs[0], xs[-1], ys[0], ys[-1]) == surface.window
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            assert z[j, i] == pytest.approx(surface.f(x, y), rel=1e-14)
    assert not z.flags.writeable
    xs, ys, z = surface_grid("saddle", 3, 4, window=(0.0, 1.0, -1.0, 1.0))
    np.testing.assert_array_equal(xs, [0.0, 0.5, 1.0])
    assert z.shape == (4, 3)


def test_surface_grid_overflow_gives_inf_without_warning():
    _, _, z = surface_grid("beale", 3, 3, window=(-1e120, 1e120, -1e120, 1e120))
    assert np.isinf(z).any()


def test_sgd_is_rotation_invariant_but_adam_is_not():
    """On the rotated bowl SGD's walk is the axis-aligned walk rotated; Adam's is not."""
    theta, kappa, start = 30.0, 20.0, (2.0, 1.0)
    c, s = math.cos(math.radians(theta)), math.sin(math.radians(theta))
    rotate = np.array([[c, s], [-s, c]])  # (x, y) -> (u, v)
    start_uv = tuple(rotate @ np.array(start))
    for optimizer, lr, same in (("sgd", 0.05, True), ("momentum", 0.02, True), ("adam", 0.05, False)):
        rotated = trace(make_surface("bowl", kappa=kappa, theta=theta), optimizer, start, 200, lr=lr)
        aligned = trace(make_surface("bowl", kappa=kappa, theta=0.0), optimizer, start_uv, 200, lr=lr)
        gap = np.abs(rotated.points @ rotate.T - aligned.points).max()
        assert (gap < 1e-12) if same else (gap > 1e-2), (optimizer, gap)


# --------------------------------------------------------------------------- trace contract


def test_trace_fields_are_consistent():
    surface = make_surface("rosenbrock")
    t = trace(surface, "momentum", (-1.0, 1.5), 50, schedule=Schedule("step", step_size=10))
    assert_well_formed(t, 50)
    assert t.points[0].tolist() == [-1.0, 1.5]
    np.testing.assert_allclose(t.losses, surface.f(t.points[:, 0], t.points[:, 1]), rtol=1e-15)
    norms = [math.hypot(*surface.grad(x, y)) for x, y in t.points[:-1]]
    np.testing.assert_allclose(t.grad_norms, norms, rtol=1e-14)
    np.testing.assert_array_equal(t.lrs, learning_rates(Schedule("step", step_size=10), 1e-3, 50))
    assert t.optimizer == "momentum" and t.hyper["momentum"] == 0.9 and t.hyper["lr"] == 1e-3
    with pytest.raises(ValueError):
        t.points[0, 0] = 3.0


@pytest.mark.parametrize("name", SURFACES)
def test_gradient_takes_arrays_and_norms_match_the_per_step_ones(name):
    """Without noise or clipping the norms are computed from the points afterwards, through the
    gradient on arrays: the same numbers as the loops' per-step gradient."""
    surface = make_surface(name, kappa=30.0, theta=25.0)
    t = trace(surface, "adam", surface.start, 200, lr=0.05)
    xs, ys = t.points[:-1, 0], t.points[:-1, 1]
    gx, gy = surface.grad(xs, ys)
    scalar = np.array([surface.grad(float(x), float(y)) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(np.column_stack([gx, gy]), scalar, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(t.grad_norms, [math.hypot(*g) for g in scalar], rtol=1e-14)
    clipped = trace(surface, "adam", surface.start, 200, lr=0.05, clip=1e300)  # per-step norms
    np.testing.assert_allclose(clipped.grad_norms, t.grad_norms, rtol=1e-14)


def test_clipping_caps_the_step_of_sgd():
    t = trace("rosenbrock", "sgd", (-1.5, 2.0), 1, lr=0.01, clip=1.0)
    step = np.linalg.norm(t.points[1] - t.points[0])
    assert step == pytest.approx(0.01 / (1 + 1e-6 / 163.0), rel=1e-6)  # |g| = 163 > clip
    assert t.grad_norms[0] == pytest.approx(math.hypot(155.0, 50.0))  # recorded before clipping


def test_gradient_noise_is_seeded_gaussian_with_minibatch_scale():
    a = gradient_noise((2.0, 16), 5000, seed=5)
    np.testing.assert_array_equal(a, gradient_noise((2.0, 16), 5000, seed=5))
    assert not np.array_equal(a, gradient_noise((2.0, 16), 5000, seed=6))
    assert a.shape == (5000, 2)
    assert a.std() == pytest.approx(2.0 / 4.0, rel=0.03) and abs(a.mean()) < 0.02
    np.testing.assert_array_equal(gradient_noise(None, 3), np.zeros((3, 2)))
    # the walk sees exactly these draws: SGD on a flat direction (saddle, y = 0 start) moves y by -lr*noise
    t = trace("saddle", "sgd", (0.0, 0.0), 3, lr=1e-3, noise=(2.0, 16), seed=5)
    y_moves = np.diff(t.points[:, 1])
    np.testing.assert_allclose(y_moves[0], -1e-3 * a[0, 1], rtol=1e-12)


def test_race_is_the_individual_traces_with_shared_noise():
    surface = make_surface("bowl", kappa=10.0, theta=45.0)
    kwargs = dict(schedule=Schedule("cosine", T_max=50), clip=2.0, noise=(1.0, 2), seed=9)
    specs = {"sgd": None, "adam": {"lr": 0.1}, "slow adam": {"optimizer": "adam", "lr": 0.001}}
    result = race(surface, specs, (1.0, -2.0), 80, **kwargs)
    assert list(result) == ["sgd", "adam", "slow adam"]
    expected = {
        "sgd": trace(surface, "sgd", (1.0, -2.0), 80, **kwargs),
        "adam": trace(surface, "adam", (1.0, -2.0), 80, lr=0.1, **kwargs),
        "slow adam": trace(surface, "adam", (1.0, -2.0), 80, lr=0.001, **kwargs),
    }
    for label, t in result.items():
        np.testing.assert_array_equal(t.points, expected[label].points)
        np.testing.assert_array_equal(t.grad_norms, expected[label].grad_norms)
    assert result["slow adam"].optimizer == "adam"


def test_default_hyper_are_torch_defaults_apart_from_lr_and_momentum():
    assert tuple(DEFAULT_HYPER) == OPTIMIZERS
    torch_classes = {"sgd": torch.optim.SGD, "momentum": torch.optim.SGD, "nesterov": torch.optim.SGD,
                     "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
                     "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    p = [torch.nn.Parameter(torch.zeros(2))]
    for name, hyper in DEFAULT_HYPER.items():
        defaults = torch_classes[name](p).defaults
        for key, value in hyper.items():
            if key == "lr" or (key == "momentum" and name in ("momentum", "nesterov")):
                continue
            assert defaults[key] == value, (name, key)
    # defaults give a real race on rosenbrock: nobody diverges, momentum beats plain SGD
    traces = race("rosenbrock", {name: None for name in OPTIMIZERS}, (-1.5, 2.0), 500)
    assert all(t.diverged_at is None for t in traces.values())
    assert traces["momentum"].losses[-1] < 0.01 < traces["sgd"].losses[-1]


def test_unknown_hyper_for_optimizer_is_named():
    with pytest.raises(ValueError, match="'momentum'.*'sgd'"):
        trace("rosenbrock", "sgd", (0.0, 0.0), 10, momentum=0.9)
    with pytest.raises(ValueError, match="'dampening'"):
        trace("rosenbrock", "nesterov", (0.0, 0.0), 10, dampening=0.1)
    with pytest.raises(ValueError, match="'centered'"):
        race("rosenbrock", {"adam": {"centered": True}}, (0.0, 0.0), 10)


BAD_TRACE_ARGS = [
    (dict(lr=0.0), "lr"), (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(lr=float("inf")), "lr"), (dict(lr="0.1"), "lr"), (dict(lr=True), "lr"),
    (dict(steps=0), "steps"), (dict(steps=5001), "steps"), (dict(steps=10.0), "steps"),
    (dict(start=(float("nan"), 0.0)), "start"), (dict(start=(0.0, float("inf"))), "start"),
    (dict(start=(1.0,)), "start"), (dict(start=(2e6, 0.0)), "start"), (dict(start=None), "start"),
    (dict(surface="volcano"), "surface"), (dict(surface=3), "surface"),
    (dict(optimizer="lion"), "optimizer"),
    (dict(optimizer="adam", betas=(1.0, 0.9)), "beta1"), (dict(optimizer="adam", betas=(0.9, -0.1)), "beta2"),
    (dict(optimizer="adamw", betas=0.9), "betas"), (dict(optimizer="adam", eps=0.0), "eps"),
    (dict(optimizer="adagrad", eps=-1e-8), "eps"), (dict(weight_decay=-0.1), "weight_decay"),
    (dict(optimizer="momentum", momentum=1.0), "momentum"),
    (dict(optimizer="rmsprop", momentum=-0.1), "momentum"),
    (dict(optimizer="nesterov", momentum=0.0), "momentum"),
    (dict(optimizer="momentum", dampening=1.5), "dampening"),
    (dict(optimizer="rmsprop", alpha=1.0), "alpha"), (dict(optimizer="rmsprop", centered="yes"), "centered"),
    (dict(optimizer="adam", amsgrad=1), "amsgrad"), (dict(optimizer="adagrad", lr_decay=-1.0), "lr_decay"),
    (dict(optimizer="adagrad", initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (dict(clip=0.0), "clip"), (dict(clip=-1.0), "clip"), (dict(clip=float("nan")), "clip"),
    (dict(noise=(-1.0, 4)), "sigma"), (dict(noise=(1.0, 0)), "batch_size"), (dict(noise=1.0), "noise"),
    (dict(seed=-1), "seed"), (dict(schedule="cosine"), "schedule"),
]


@pytest.mark.parametrize("bad, name", BAD_TRACE_ARGS, ids=[f"{i}-{n}" for i, (_, n) in enumerate(BAD_TRACE_ARGS)])
def test_bad_input_raises_value_error_naming_the_parameter(bad, name):
    args = dict(surface="rosenbrock", optimizer="sgd", start=(0.0, 0.0), steps=10)
    args.update(bad)
    with pytest.raises(ValueError, match=re.escape(name)):
        trace(args.pop("surface"), args.pop("optimizer"), args.pop("start"), args.pop("steps"), **args)


@pytest.mark.parametrize("make, name", [
    (lambda: Schedule("linear"), "kind"), (lambda: Schedule("step", step_size=0), "step_size"),
    (lambda: Schedule("step", gamma=0.0), "gamma"), (lambda: Schedule("exponential", gamma=1.5), "gamma"),
    (lambda: Schedule("cosine", T_max=0), "T_max"), (lambda: Schedule("cosine", eta_min=-1.0), "eta_min"),
    (lambda: Schedule("warmup", warmup_steps=0), "warmup_steps"),
    (lambda: make_surface("bowl", kappa=0.5), "kappa"), (lambda: make_surface("bowl", kappa=2000.0), "kappa"),
    (lambda: make_surface("bowl", theta=-1.0), "theta"), (lambda: make_surface("bowl", theta=91.0), "theta"),
    (lambda: make_surface("cliff"), "surface"),
    (lambda: surface_grid("bowl", 1, 10), "nx"), (lambda: surface_grid("bowl", 10, 5000), "ny"),
    (lambda: surface_grid("bowl", 10, 10, window=(1.0, 0.0, 0.0, 1.0)), "window"),
    (lambda: learning_rates(None, 0.0, 10), "lr"), (lambda: gradient_noise((1.0, 2), 0), "steps"),
])
def test_bad_schedule_surface_and_helper_input(make, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        make()


@FUZZ
@given(
    surface=st.sampled_from(SURFACES),
    optimizer=st.sampled_from(OPTIMIZERS),
    log_lr=st.floats(-6, 6),
    start=st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)),
    clip=st.none() | st.floats(1e-3, 1e3),
    noise=st.none() | st.tuples(st.floats(0, 1e300), st.integers(1, 64)),
    kind=st.sampled_from(opt.SCHEDULE_KINDS),
    rmsprop_centered=st.booleans(),
)
def test_any_valid_input_gives_a_finite_trace_without_warnings(surface, optimizer, log_lr, start, clip,
                                                               noise, kind, rmsprop_centered):
    hyper = {"lr": 10.0**log_lr}
    if optimizer == "rmsprop":
        hyper.update(centered=rmsprop_centered, momentum=0.5)
    if optimizer in ("adam", "adamw"):
        hyper.update(amsgrad=rmsprop_centered, weight_decay=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = trace(surface, optimizer, start, 150, schedule=Schedule(kind, step_size=20, T_max=30,
                  warmup_steps=10), clip=clip, noise=noise, seed=1, **hyper)
    assert_well_formed(t, 150)
