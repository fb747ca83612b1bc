"""Oracle for ``workbench.compute.optimizers``: the same traces from the real torch.optim.

Slow on purpose (one autograd pass and one ``optimizer.step()`` per step): used only by the
tests and the benchmark. Each surface is written again with torch ops and differentiated by
autograd, which also checks the backend's closed-form gradients. The per-step order is the
backend's: loss.backward() -> p.grad += noise (the same numpy draws) -> clip_grad_norm_ ->
optimizer.step() -> scheduler.step() (``scheduler.step(loss)`` for ReduceLROnPlateau, with the
loss this step started from). Optimizers run with ``foreach=False`` in float64.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Callable

import numpy as np
import torch

from workbench.compute import optimizers as backend
from workbench.compute.optimizers import BOUND, Schedule, Surface, Trace

__all__ = ["torch_loss", "torch_trace"]


def torch_loss(surface: Surface | str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``p -> f(p[0], p[1])`` for the surface, written with torch ops (p: tensor of shape (2,))."""
    surface = surface if isinstance(surface, Surface) else backend.make_surface(surface)
    name = surface.name
    if name == "bowl":
        theta = math.radians(surface.params["theta"])
        c, s, kappa = math.cos(theta), math.sin(theta), surface.params["kappa"]

        def bowl(p):
            u = c * p[0] + s * p[1]
            v = c * p[1] - s * p[0]
            return 0.5 * (u**2 + kappa * v**2)

        return bowl
    if name == "rosenbrock":
        return lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2
    if name == "himmelblau":
        return lambda p: (p[0] ** 2 + p[1] - 11) ** 2 + (p[0] + p[1] ** 2 - 7) ** 2
    if name == "saddle":
        return lambda p: p[0] ** 2 + p[1] ** 4 / 4 - p[1] ** 2 / 2
    if name == "beale":
        return lambda p: ((1.5 - p[0] + p[0] * p[1]) ** 2
                          + (2.25 - p[0] + p[0] * p[1] ** 2) ** 2
                          + (2.625 - p[0] + p[0] * p[1] ** 3) ** 2)
    if name == "rastrigin":
        two_pi = 2 * math.pi
        return lambda p: (20 + p[0] ** 2 - 10 * torch.cos(two_pi * p[0])
                          + p[1] ** 2 - 10 * torch.cos(two_pi * p[1]))
    raise ValueError(f"no torch formula for surface {name!r}")


def _optimizer(name: str, params: list, hyper: dict) -> torch.optim.Optimizer:
    h = dict(hyper)
    if name in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, foreach=False, nesterov=name == "nesterov", **h)
    if name == "adagrad":
        return torch.optim.Adagrad(params, foreach=False, **h)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, foreach=False, **h)
    if name == "adam":
        return torch.optim.Adam(params, foreach=False, **h)
    if name == "adamw":
        return torch.optim.AdamW(params, foreach=False, **h)
    raise ValueError(f"unknown optimizer {name!r}")


def _scheduler(opt: torch.optim.Optimizer, schedule: Schedule | None, steps: int):
    """The torch scheduler documented in the backend for ``schedule`` (None for constant);
    ``steps`` is OneCycleLR's total_steps."""
    lr_scheduler = torch.optim.lr_scheduler
    if schedule is None or schedule.kind == "constant":
        return None
    if schedule.kind == "step":
        return lr_scheduler.StepLR(opt, step_size=schedule.step_size, gamma=schedule.gamma)
    if schedule.kind == "exponential":
        return lr_scheduler.ExponentialLR(opt, gamma=schedule.gamma)
    if schedule.kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=schedule.T_max, eta_min=schedule.eta_min)
    if schedule.kind == "multistep":
        return lr_scheduler.MultiStepLR(opt, milestones=list(schedule.milestones), gamma=schedule.gamma)
    if schedule.kind == "cosine_restarts":
        return lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=schedule.T_0, T_mult=schedule.T_mult,
                                                        eta_min=schedule.eta_min)
    if schedule.kind == "inverse_sqrt":
        d_model, warmup = schedule.d_model, schedule.warmup
        return lr_scheduler.LambdaLR(opt, lambda e: d_model ** -0.5 * min((e + 1) ** -0.5, (e + 1) * warmup ** -1.5))
    if schedule.kind == "onecycle":
        return lr_scheduler.OneCycleLR(opt, max_lr=opt.param_groups[0]["lr"], total_steps=steps,
                                       pct_start=schedule.pct_start, div_factor=schedule.div_factor,
                                       final_div_factor=schedule.final_div_factor, cycle_momentum=False)
    if schedule.kind == "plateau":
        return lr_scheduler.ReduceLROnPlateau(opt, factor=schedule.factor, patience=schedule.patience,
                                              threshold=schedule.threshold)
    k = schedule.warmup_steps
    warm = lr_scheduler.LinearLR(opt, start_factor=1.0 / (k + 1), end_factor=1.0, total_iters=k)
    cool = lr_scheduler.CosineAnnealingLR(opt, T_max=schedule.T_max, eta_min=schedule.eta_min)
    return lr_scheduler.SequentialLR(opt, [warm, cool], milestones=[k])


def _inside(values: list[float]) -> bool:
    return all(-BOUND <= v <= BOUND for v in values)


def torch_trace(surface: Surface | str, optimizer: str, start: tuple[float, float], steps: int, *,
                schedule: Schedule | None = None, clip: float | None = None,
                noise: tuple[float, int] | None = None, seed: int = 0, **hyper) -> Trace:
    """Same contract as ``optimizers.trace``, computed by torch.optim in float64.

    Inputs are validated by the backend's rules (so both refuse the same things); the noise is
    drawn with numpy exactly as documented in ``optimizers.gradient_noise``.
    """
    surface, start, steps, schedule, clip, noise, seed = backend._check_common(
        surface, start, steps, schedule, clip, noise, seed)
    resolved = backend._resolve_hyper(optimizer, hyper)
    if noise is None:
        noise_rows = np.zeros((steps, 2))
    else:
        sigma, batch_size = noise
        noise_rows = np.random.default_rng(seed).standard_normal((steps, 2)) * (sigma / math.sqrt(batch_size))

    loss_fn = torch_loss(surface)
    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = _optimizer(optimizer, [p], resolved)
    sched = _scheduler(opt, schedule, steps)
    on_loss = isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)

    points, losses, lrs, norms = [list(start)], [], [], []
    diverged_at = None
    for i in range(steps):
        opt.zero_grad()
        loss = loss_fn(p)
        loss.backward()
        losses.append(loss.item())
        if noise is not None:
            p.grad.add_(torch.from_numpy(noise_rows[i]))
        if clip is not None:
            norm = torch.nn.utils.clip_grad_norm_([p], max_norm=clip, foreach=False)
        else:
            norm = torch.linalg.vector_norm(p.grad)
        lr = opt.param_groups[0]["lr"]
        opt.step()
        if on_loss:
            sched.step(loss.item())  # the loss this step started from
        elif sched is not None:
            sched.step()
        point = p.detach().tolist()
        if not _inside(point):
            diverged_at = i + 1
            break
        points.append(point)
        lrs.append(lr)
        norms.append(norm.item())
    if diverged_at is None:
        with torch.no_grad():
            losses.append(loss_fn(p).item())
    losses = losses[: len(points)]

    def frozen(values, shape=None):
        array = np.array(values, dtype=np.float64)
        if shape is not None:
            array = array.reshape(shape)
        array.flags.writeable = False
        return array

    return Trace(
        points=frozen(points, (-1, 2)),
        losses=frozen(losses),
        lrs=frozen(lrs),
        grad_norms=frozen(norms),
        diverged_at=diverged_at,
        optimizer=optimizer,
        hyper=MappingProxyType(resolved),
    )
