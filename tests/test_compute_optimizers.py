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
    "multistep": Schedule("multistep", milestones=(60, 120, 120), gamma=0.7),  # a repeated milestone: gamma^2
    "cosine_restarts": Schedule("cosine_restarts", T_0=40, T_mult=2, eta_min=1e-5),
    "inverse_sqrt": Schedule("inverse_sqrt", warmup=30, d_model=4),
    "onecycle": Schedule("onecycle", pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
    "plateau": Schedule("plateau", factor=0.5, patience=5, threshold=1e-3),  # on the trace's own loss
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


def _torch_lrs(schedule, lr, steps, losses=None):
    """The documented torch scheduler composition, built here independently of the oracle
    (ReduceLROnPlateau stepped with ``losses[i]`` after step i + 1)."""
    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    o = torch.optim.SGD([p], lr=lr)
    sched = torch.optim.lr_scheduler
    if schedule.kind == "multistep":
        s = sched.MultiStepLR(o, milestones=list(schedule.milestones), gamma=schedule.gamma)
    elif schedule.kind == "cosine_restarts":
        s = sched.CosineAnnealingWarmRestarts(o, T_0=schedule.T_0, T_mult=schedule.T_mult, eta_min=schedule.eta_min)
    elif schedule.kind == "inverse_sqrt":  # the original Transformer's lr, step t = epoch + 1
        s = sched.LambdaLR(o, lambda epoch: schedule.d_model ** -0.5 * min((epoch + 1) ** -0.5,
                                                                           (epoch + 1) * schedule.warmup ** -1.5))
    elif schedule.kind == "onecycle":
        s = sched.OneCycleLR(o, max_lr=lr, total_steps=steps, pct_start=schedule.pct_start,
                             div_factor=schedule.div_factor, final_div_factor=schedule.final_div_factor,
                             cycle_momentum=False)
    elif schedule.kind == "plateau":
        s = sched.ReduceLROnPlateau(o, factor=schedule.factor, patience=schedule.patience, threshold=schedule.threshold)
    elif schedule.kind == "step":
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
    for i in range(steps):
        out.append(o.param_groups[0]["lr"])
        o.step()
        s.step(losses[i]) if schedule.kind == "plateau" else s.step()
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
    (Schedule("multistep", milestones=(5, 12, 12, 30), gamma=0.5), 40),  # a repeat, and one past the end
    (Schedule("multistep", milestones=(1,), gamma=0.1), 5),
    (Schedule("cosine_restarts", T_0=10, T_mult=1, eta_min=0.01), 65),
    (Schedule("cosine_restarts", T_0=3, T_mult=2, eta_min=0.0), 100),
    (Schedule("cosine_restarts", T_0=1, T_mult=3, eta_min=0.0), 50),
    (Schedule("inverse_sqrt", warmup=10, d_model=64), 60),
    (Schedule("inverse_sqrt", warmup=1, d_model=1), 20),
    (Schedule("inverse_sqrt", warmup=4000, d_model=512), 30),  # the paper's: all warm-up
    (Schedule("onecycle"), 100),  # torch's defaults
    (Schedule("onecycle", pct_start=0.0, div_factor=5.0, final_div_factor=3.0), 17),
    (Schedule("onecycle", pct_start=0.4, div_factor=2.0, final_div_factor=1.0), 2),
    (Schedule("onecycle", pct_start=0.3, div_factor=25.0, final_div_factor=1e4), 1),
    (Schedule("onecycle", pct_start=0.9, div_factor=25.0, final_div_factor=1e4), 7),
])
def test_learning_rates_are_torch_schedulers_bit_for_bit(schedule, steps):
    ours = learning_rates(schedule, 0.3, steps)
    np.testing.assert_array_equal(ours, _torch_lrs(schedule, 0.3, steps))


LOSS_SHAPES = {
    "falling then flat": np.concatenate([np.linspace(10, 1, 30), np.full(50, 1.0)]),
    "noisy": np.abs(np.random.default_rng(4).standard_normal(80)) + 1,
    "negative and rising": -np.linspace(5, 0, 80),  # a loss below 0 (the saddle): the relative threshold flips
    "tiny improvements": 1 - 1e-5 * np.arange(80),  # below a threshold of 1e-4: no improvement counts
}


@pytest.mark.parametrize("shape", LOSS_SHAPES)
@pytest.mark.parametrize("schedule", [Schedule("plateau"), Schedule("plateau", factor=0.5, patience=0, threshold=0.0),
                                      Schedule("plateau", factor=0.9, patience=3, threshold=0.01)],
                         ids=["defaults", "impatient", "gentle"])
def test_plateau_rates_are_reduce_lr_on_plateau_fed_the_same_losses(schedule, shape):
    losses = LOSS_SHAPES[shape]
    for lr in (0.3, 1e-6):  # near 1e-8, reductions smaller than eps = 1e-8 are skipped, as in torch
        ours = learning_rates(schedule, lr, 80, losses=losses)
        np.testing.assert_array_equal(ours, _torch_lrs(schedule, lr, 80, losses.tolist()))
    assert learning_rates(schedule, 0.3, 80, losses=losses[:79]).shape == (80,)  # the last loss is not needed


def test_plateau_inside_a_trace_follows_the_walks_own_loss():
    schedule = Schedule("plateau", factor=0.5, patience=5, threshold=1e-3)
    for optimizer, lr in (("momentum", 1e-3), ("adam", 0.05)):
        t = trace("rosenbrock", optimizer, (-1.5, 2.0), 400, schedule=schedule, lr=lr)
        np.testing.assert_array_equal(t.lrs, learning_rates(schedule, lr, 400, losses=t.losses))
        assert len(set(t.lrs.tolist())) > 1  # it did reduce
    a, b = (trace("rosenbrock", o, (-1.5, 2.0), 400, schedule=schedule, lr=lr).lrs for o, lr in (("sgd", 1e-3),
                                                                                                ("momentum", 1e-3)))
    assert not np.array_equal(a, b)  # each optimizer's rate follows its own loss


def test_restart_schedule_restarts_and_lengthens_its_periods():
    lrs = learning_rates(Schedule("cosine_restarts", T_0=4, T_mult=2, eta_min=0.0), 1.0, 30)
    restarts = [i for i in range(1, 30) if lrs[i] > lrs[i - 1]]
    assert restarts == [4, 12, 28] and all(lrs[i] == 1.0 for i in [0] + restarts)  # periods 4, 8, 16


def test_inverse_sqrt_peaks_at_warmup_then_falls_as_one_over_sqrt_t():
    lrs = learning_rates(Schedule("inverse_sqrt", warmup=25, d_model=16), 2.0, 200)
    assert int(np.argmax(lrs)) == 24  # step t = 25
    assert lrs[24] == pytest.approx(2.0 / math.sqrt(16 * 25))
    np.testing.assert_allclose(lrs[99] / lrs[24], math.sqrt(25 / 100))
    np.testing.assert_allclose(lrs[:25], [2.0 * 16 ** -0.5 * t * 25 ** -1.5 for t in range(1, 26)])


def test_onecycle_rises_to_lr_then_falls_far_below_its_start():
    lrs = learning_rates(Schedule("onecycle", pct_start=0.3, div_factor=25.0, final_div_factor=1e4), 0.5, 100)
    assert lrs[0] == pytest.approx(0.5 / 25) and int(np.argmax(lrs)) == 29 and lrs.max() == pytest.approx(0.5)
    assert lrs[-1] == pytest.approx(0.5 / 25 / 1e4)


def test_onecycle_that_torch_cannot_run_is_refused_naming_pct_start():
    with pytest.raises(ZeroDivisionError):  # OneCycleLR's rising phase lasts 0 steps: torch divides by 0
        _torch_lrs(Schedule("onecycle", pct_start=0.1), 0.1, 10)
    for call in (lambda: learning_rates(Schedule("onecycle", pct_start=0.1), 0.1, 10),
                 lambda: trace("bowl", "sgd", (1.0, 1.0), 10, schedule=Schedule("onecycle", pct_start=0.1)),
                 lambda: race("bowl", {"sgd": None}, (1.0, 1.0), 20, schedule=Schedule("onecycle", pct_start=0.05))):
        with pytest.raises(ValueError, match="pct_start"):
            call()
    assert learning_rates(Schedule("onecycle", pct_start=0.1), 0.1, 11).shape == (11,)


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
    (lambda: Schedule("multistep", milestones=(0, 10)), "milestones"),
    (lambda: Schedule("multistep", milestones="150, 300"), "milestones"),
    (lambda: Schedule("multistep", milestones=(10.5,)), "milestones"),
    (lambda: Schedule("multistep", milestones=tuple(range(1, 40))), "milestones"),
    (lambda: Schedule("multistep", milestones=(5001,)), "milestones"),
    (lambda: Schedule("cosine_restarts", T_0=0), "T_0"), (lambda: Schedule("cosine_restarts", T_mult=0), "T_mult"),
    (lambda: Schedule("cosine_restarts", T_mult=1.5), "T_mult"),
    (lambda: Schedule("inverse_sqrt", warmup=0), "warmup"), (lambda: Schedule("inverse_sqrt", d_model=0), "d_model"),
    (lambda: Schedule("onecycle", pct_start=1.0), "pct_start"), (lambda: Schedule("onecycle", pct_start=-0.1), "pct_start"),
    (lambda: Schedule("onecycle", div_factor=0.0), "div_factor"),
    (lambda: Schedule("onecycle", final_div_factor=float("inf")), "final_div_factor"),
    (lambda: Schedule("plateau", factor=1.0), "factor"), (lambda: Schedule("plateau", factor=0.0), "factor"),
    (lambda: Schedule("plateau", patience=-1), "patience"), (lambda: Schedule("plateau", threshold=1.0), "threshold"),
    (lambda: Schedule("plateau", threshold=float("nan")), "threshold"),
    (lambda: learning_rates(Schedule("plateau"), 0.1, 10), "losses"),
    (lambda: learning_rates(Schedule("plateau"), 0.1, 10, losses=[1.0] * 8), "losses"),
    (lambda: learning_rates(Schedule("plateau"), 0.1, 3, losses=[1.0, float("nan")]), "losses"),
    (lambda: learning_rates("cosine", 0.1, 10), "schedule"),
    (lambda: opt.ewa([1.0, 2.0], 1.0), "beta"), (lambda: opt.ewa([1.0], -0.1), "beta"),
    (lambda: opt.ewa([], 0.9), "values"), (lambda: opt.ewa([[1.0, 2.0]], 0.9), "values"),
    (lambda: opt.ewa([1.0, float("nan")], 0.9), "values"), (lambda: opt.ewa([1e301], 0.9), "values"),
    (lambda: opt.ewa("12", 0.9), "values"), (lambda: opt.ewa(["a"], 0.9), "values"), (lambda: opt.ewa(None, 0.9), "values"),
    (lambda: opt.ewa([1.0], 0.9, bias_correction=1), "bias_correction"),
    (lambda: opt.ewa_weights(0.9, 0), "count"), (lambda: opt.ewa_weights(1.5, 3), "beta"),
    (lambda: opt.step_series(1, 1), "n"), (lambda: opt.step_series(10, 0), "change_at"),
    (lambda: opt.step_series(10, 10), "change_at"), (lambda: opt.step_series(10, 5, sigma=-1.0), "sigma"),
    (lambda: opt.step_series(10, 5, before=float("inf")), "before"), (lambda: opt.step_series(10, 5, seed=-1), "seed"),
    (lambda: opt.half_lag(np.ones(5), 7, 1.0, 2.0), "change_at"),
    (lambda: opt.seen_gradients("volcano", trace("bowl", "sgd", (1.0, 1.0), 3)), "surface"),
    (lambda: opt.seen_gradients("bowl", trace("bowl", "sgd", (1.0, 1.0), 3), noise=(-1.0, 2)), "sigma"),
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


# --------------------------------------------------------------------------- exponentially weighted averages


def adam_buffers(gradients, betas):
    """torch.optim.Adam fed ``gradients`` (n,) one by one: exp_avg, exp_avg_sq and 1 - beta1^step after each step."""
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    adam = torch.optim.Adam([p], lr=1e-3, betas=betas, foreach=False)
    first, second, correction = [], [], []
    for g in gradients:
        p.grad = torch.tensor([g], dtype=torch.float64)
        adam.step()
        state = adam.state[p]
        first.append(state["exp_avg"].item())
        second.append(state["exp_avg_sq"].item())
        correction.append(1 - betas[0] ** state["step"].item())
    return np.array(first), np.array(second), np.array(correction)


# beta1 = 0.9: torch's lerp with weight 0.1 (< 0.5); 0.3: weight 0.7 (the other branch)
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.3, 0.5), (0.0, 0.9), (0.99, 0.9999)])
@pytest.mark.parametrize("kind", ["noisy", "step", "rosenbrock"])
def test_ewa_is_adams_first_and_second_moment(betas, kind):
    if kind == "noisy":
        g = np.random.default_rng(3).standard_normal(300) * 5 + 2
    elif kind == "step":
        g = opt.step_series(300, 120, -1.0, 4.0, sigma=0.5, seed=8)[1]
    else:  # the gradient SGD saw on its walk, noise included
        t = trace("rosenbrock", "sgd", (-1.5, 2.0), 300, noise=(3.0, 4), seed=2)
        g = opt.seen_gradients("rosenbrock", t, (3.0, 4), 2)[:, 0]
    exp_avg, exp_avg_sq, correction = adam_buffers(g, betas)
    first = opt.ewa(g, betas[0], bias_correction=False)
    second = opt.ewa(g * g, betas[1], bias_correction=False)
    np.testing.assert_allclose(first.average, exp_avg, rtol=1e-13, atol=1e-13 * np.abs(g).max())
    np.testing.assert_allclose(second.average, exp_avg_sq, rtol=1e-13)
    np.testing.assert_array_equal(first.correction, correction)  # 1 - beta1 ** step, as Adam's bias_correction1
    corrected = opt.ewa(g, betas[0])
    np.testing.assert_allclose(corrected.average, exp_avg / correction, rtol=1e-12, atol=1e-13 * np.abs(g).max())
    np.testing.assert_array_equal(corrected.correction, first.correction)
    for result in (first, corrected):
        assert result.average.shape == result.correction.shape == (300,)
        assert not result.average.flags.writeable and not result.correction.flags.writeable


def test_ewa_bias_correction_removes_the_pull_towards_zero():
    x = np.full(50, 3.0)
    raw, corrected = opt.ewa(x, 0.9, bias_correction=False), opt.ewa(x, 0.9)
    assert raw.average[0] == pytest.approx(0.3) and raw.average[9] == pytest.approx(3 * (1 - 0.9 ** 10))
    np.testing.assert_allclose(corrected.average, 3.0, rtol=1e-14)  # a constant is its own average
    np.testing.assert_allclose(raw.correction, 1 - 0.9 ** np.arange(1, 51), rtol=1e-15)
    assert corrected.window == pytest.approx(10.0) and opt.ewa(x, 0.0).window == 1.0
    np.testing.assert_array_equal(opt.ewa([1.0, -2.0, 5.0], 0.0).average, [1.0, -2.0, 5.0])  # beta 0: no memory
    assert opt.ewa([7.0], 0.999).average[0] == pytest.approx(7.0)


def test_ewa_weights_are_the_averages_weights():
    beta, n = 0.8, 40
    x = np.random.default_rng(1).standard_normal(n)
    w = opt.ewa_weights(beta, n)
    assert w.sum() == pytest.approx(1 - beta ** n)
    assert opt.ewa(x, beta, bias_correction=False).average[-1] == pytest.approx(float(w @ x[::-1]), rel=1e-12)
    window = opt.ewa_weights(0.9, 10).sum()  # the effective window 1/(1 - 0.9) = 10 steps
    assert window == pytest.approx(1 - 0.9 ** 10) and 0.6 < window < 0.7


def test_step_series_and_the_lag_of_a_settled_average():
    clean, noisy = opt.step_series(300, 200, 1.0, 2.0, sigma=0.5, seed=4)
    np.testing.assert_array_equal(clean[:200], 1.0)
    np.testing.assert_array_equal(clean[200:], 2.0)
    np.testing.assert_allclose(noisy - clean, 0.5 * np.random.default_rng(4).standard_normal(300))
    for beta in (0.5, 0.9, 0.95):
        lag = opt.half_lag(opt.ewa(clean, beta, bias_correction=False).average, 200, 1.0, 2.0)
        assert lag == math.ceil(math.log(0.5) / math.log(beta))  # settled before the change: 1 - beta^k
    assert opt.half_lag(opt.ewa(clean, 0.0).average, 200, 1.0, 2.0) == 1
    assert opt.half_lag(opt.ewa(clean, 0.999).average, 200, 1.0, 2.0) is None  # not within the 100 values after
    falling, _ = opt.step_series(50, 10, 3.0, -1.0)
    assert opt.half_lag(opt.ewa(falling, 0.5).average, 10, 3.0, -1.0) == 1
    assert opt.half_lag(np.ones(5), 2, 1.0, 1.0) is None


def test_uncorrected_average_lags_more_when_the_change_comes_early():
    clean, _ = opt.step_series(200, 20, 1.0, 2.0)
    raw = opt.half_lag(opt.ewa(clean, 0.98, bias_correction=False).average, 20, 1.0, 2.0)
    corrected = opt.half_lag(opt.ewa(clean, 0.98).average, 20, 1.0, 2.0)
    assert corrected < raw  # still climbing from m_0 = 0 when the step comes


@pytest.mark.parametrize("noise, clip", [(None, None), ((4.0, 2), None), ((4.0, 2), 5.0)])
def test_seen_gradients_are_the_gradients_torch_computed_on_the_walk(noise, clip):
    surface = make_surface("bowl", kappa=20.0, theta=30.0)
    t = trace(surface, "sgd", (-2.5, 1.5), 60, noise=noise, clip=clip, seed=6, lr=0.02)
    seen = opt.seen_gradients(surface, t, noise, 6)
    rows = gradient_noise(noise, 60, 6)
    loss = torch_loss(surface)
    for i, point in enumerate(t.points[:-1]):
        p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        loss(p).backward()
        np.testing.assert_allclose(seen[i], p.grad.numpy() + rows[i], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.hypot(seen[:, 0], seen[:, 1]), t.grad_norms, rtol=1e-12)
    assert seen.shape == (60, 2) and not seen.flags.writeable
