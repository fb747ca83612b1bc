"""Optimizers panel: SGD, Momentum, Nesterov, Adagrad, RMSProp, Adam and AdamW racing over a
2-D loss surface, with LR schedules (compared side by side if asked), gradient clipping and
minibatch noise; and, on its own page built when first shown, the exponentially weighted average
behind Momentum's and Adam's moments."""

from __future__ import annotations

import math
import re
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QGraphicsItem, QGraphicsScene, QHBoxLayout, QLabel, QPushButton, QSlider,
                               QStackedWidget, QVBoxLayout, QWidget)

from widgets.controls import OneLine
from widgets.items import DecadeAxis, PixelCurve, held_range, never_widens
from widgets.panel import Panel
from workbench.compute import optimizers as opt
from workbench.i18n import pick, tr
from workbench.params import Choice, Param, ParamSet, Preset

NAMES = {"sgd": ("SGD", "SGD"), "momentum": ("Momentum", "动量 Momentum"), "nesterov": ("Nesterov", "Nesterov"),
         "adagrad": ("Adagrad", "Adagrad"), "rmsprop": ("RMSProp", "RMSProp"), "adam": ("Adam", "Adam"),
         "adamw": ("AdamW", "AdamW")}
SURFACES = {"rosenbrock": ("Rosenbrock valley", "Rosenbrock 香蕉谷"), "bowl": ("Quadratic bowl", "二次碗"),
            "saddle": ("Saddle", "鞍点"), "himmelblau": ("Himmelblau (4 minima)", "Himmelblau（4 个极小值）"),
            "beale": ("Beale", "Beale"), "rastrigin": ("Rastrigin (many local minima)", "Rastrigin（大量局部极小）")}
SCHEDULES = {"constant": ("Constant", "恒定"), "step": ("Step decay", "阶梯衰减"),
             "exponential": ("Exponential decay", "指数衰减"), "cosine": ("Cosine annealing", "余弦退火"),
             "warmup": ("Linear warmup + cosine", "线性预热 + 余弦"),
             "multistep": ("Multi-step decay", "多步衰减"),
             "cosine_restarts": ("Cosine with warm restarts", "带热重启的余弦退火"),
             "inverse_sqrt": ("Transformer: warmup, then 1/√t", "Transformer：预热后按 1/√t 衰减"),
             "onecycle": ("One cycle (OneCycleLR)", "单周期（OneCycleLR）"),
             "plateau": ("Reduce on plateau (own loss)", "损失停滞时降低（按自身损失）")}
COMPARE = {"none": ("None", "不比较"), **SCHEDULES}
VIEWS = {"race": ("Race on the loss surface", "在损失曲面上赛跑"),
         "ewa": ("Moving average (EWA) behind Momentum and Adam", "Momentum 与 Adam 背后的指数加权平均")}
EWA_SERIES = {"step": ("Noisy series with a step change", "带阶跃变化的噪声序列"),
              "sgd_x": ("Gradient SGD saw in the race, x", "赛跑中 SGD 看到的梯度（x 分量）"),
              "sgd_y": ("Gradient SGD saw in the race, y", "赛跑中 SGD 看到的梯度（y 分量）")}
EWA_STEPS = 200  # length of the synthetic series
EWA_LEVELS = (1.0, 2.0)  # the synthetic series' level before and after its step change

DEFAULTS = opt.DEFAULT_HYPER  # torch's defaults, with learning rates picked for a good race


def _lr(name: str) -> Param:
    return Param(f"{name}_lr", "float", DEFAULTS[name]["lr"], "Learning rate lr", "学习率 lr",
                 "Step size; every optimizer multiplies it by the schedule's factor.",
                 "步长；各优化器都会再乘以学习率调度的系数。", lo=1e-5, hi=10.0, log=True, group=NAMES[name][0])


def _on(name: str, default: bool = True) -> Param:
    en, zh = NAMES[name]
    return Param(f"use_{name}", "bool", default, f"Race {en}", f"参加比赛：{zh}",
                 f"Trace {en} on the surface.", f"在曲面上画出 {zh} 的路径。", group=en)


def _momentum(name: str) -> Param:
    # torch.optim.SGD(nesterov=True) refuses momentum 0 ("Nesterov momentum requires a momentum"), and so
    # does the backend: the declaration starts at the slider's first step, and the help says why
    nesterov = name == "nesterov"
    return Param(f"{name}_momentum", "float", DEFAULTS[name]["momentum"], "Momentum", "动量系数 momentum",
                 "Weight of the running velocity buffer (torch's momentum)."
                 + (" Nesterov needs one above 0 (torch refuses 0; near 0 it is plain SGD)." if nesterov else ""),
                 "速度缓冲的衰减系数（torch 的 momentum）。"
                 + ("Nesterov 需要大于 0 的动量（torch 不接受 0；接近 0 时就是普通 SGD）。" if nesterov else ""),
                 lo=0.001 if nesterov else 0.0, hi=0.999, step=0.001, group=NAMES[name][0])


def _eps(name: str) -> Param:
    return Param(f"{name}_eps", "float", DEFAULTS[name]["eps"], "eps", "eps", "Added to the denominator for numerical stability.",
                 "加在分母上防止除零。", lo=1e-12, hi=1.0, log=True, group=NAMES[name][0])


def _betas(name: str) -> list[Param]:
    group = NAMES[name][0]
    return [Param(f"{name}_beta1", "float", DEFAULTS[name]["betas"][0], "beta1 (momentum)", "beta1（一阶矩）",
                  "Decay of the running mean of gradients (first moment).", "梯度一阶矩（滑动平均）的衰减系数。",
                  lo=0.0, hi=0.999, step=0.001, group=group),
            Param(f"{name}_beta2", "float", DEFAULTS[name]["betas"][1], "beta2 (second moment)", "beta2（二阶矩）",
                  "Decay of the running mean of squared gradients.", "梯度平方滑动平均的衰减系数。",
                  lo=0.5, hi=0.9999, step=0.0001, group=group)]


def _wd(name: str) -> Param:
    return Param(f"{name}_weight_decay", "float", DEFAULTS[name]["weight_decay"], "Weight decay", "权重衰减 weight_decay",
                 "L2 penalty (SGD adds wd*x to the gradient; AdamW shrinks x by lr*wd directly).",
                 "L2 惩罚（SGD 在梯度上加 wd*x；AdamW 直接把 x 缩小 lr*wd）。",
                 lo=0.0, hi=1.0, step=0.001, group=NAMES[name][0])


def parse_milestones(text: str) -> tuple[int, ...]:
    """"150, 300" -> (150, 300): steps (integers 1..opt.MAX_STEPS, at most opt.MAX_MILESTONES) separated
    by commas or spaces; ValueError with the reason otherwise."""
    words = [w for w in re.split(r"[,\s;]+", text.strip()) if w]
    if not words:
        raise ValueError(tr("give at least one step, e.g. 150, 300"))
    if len(words) > opt.MAX_MILESTONES:
        raise ValueError(tr("at most {n} steps").format(n=opt.MAX_MILESTONES))
    steps = []
    for word in words:
        if not re.fullmatch(r"[0-9]{1,6}", word) or not 1 <= int(word) <= opt.MAX_STEPS:
            raise ValueError(tr("{word} is not a step from 1 to {n}").format(word=word, n=opt.MAX_STEPS))
        steps.append(int(word))
    return tuple(sorted(steps))


PARAMETERS = [
    Param("view", "choice", "race", "Figure", "图", "The race on the loss surface, or the exponentially weighted "
          "average that Momentum and Adam keep of the gradient.", "损失曲面上的赛跑，或 Momentum 和 Adam 对梯度所做的指数加权平均。",
          choices=tuple(Choice(k, *v) for k, v in VIEWS.items()), group="View"),
    Param("ewa_series", "choice", "step", "Series", "序列",
          "What is averaged: a noisy series with a step change, or a component of the gradient SGD saw in the race.",
          "被平均的序列：带阶跃变化的噪声序列，或赛跑中 SGD 看到的梯度的一个分量。",
          choices=tuple(Choice(k, *v) for k, v in EWA_SERIES.items()), group="Moving average (EWA)"),
    Param("beta", "float", 0.9, "beta", "衰减系数 beta",
          "m_t = beta · m_(t−1) + (1 − beta) · x_t: Momentum's beta, Adam's beta1 (0.9) or beta2 (0.999).",
          "m_t = beta · m_(t−1) + (1 − beta) · x_t：Momentum 的 beta，Adam 的 beta1（0.9）或 beta2（0.999）。",
          lo=0.0, hi=0.999, step=0.001, group="Moving average (EWA)"),
    Param("change_at", "int", 60, "Step change at", "阶跃位置",
          f"Step series: the value jumps from {EWA_LEVELS[0]:g} to {EWA_LEVELS[1]:g} at this step.",
          f"阶跃序列：在这一步从 {EWA_LEVELS[0]:g} 跳到 {EWA_LEVELS[1]:g}。", lo=1, hi=EWA_STEPS - 1,
          group="Moving average (EWA)"),
    Param("ewa_noise", "float", 0.3, "Noise sigma", "噪声 sigma", "Step series: standard deviation of the Gaussian noise.",
          "阶跃序列：高斯噪声的标准差。", lo=0.0, hi=2.0, step=0.01, group="Moving average (EWA)"),
    Param("surface", "choice", "rosenbrock", "Loss surface", "损失曲面", "The 2-D function every optimizer minimises.",
          "各优化器要最小化的二维函数。", choices=tuple(Choice(k, *v) for k, v in SURFACES.items()), group="Surface"),
    Param("kappa", "float", 10.0, "Condition number kappa", "条件数 kappa",
          "Bowl only: curvature ratio between the steep and the flat axis.", "仅碗形：陡轴与缓轴的曲率之比。",
          lo=1.0, hi=1000.0, log=True, group="Surface"),
    Param("theta", "float", 0.0, "Rotation theta", "旋转角 theta",
          "Bowl only: rotate the axes; at 45° no coordinate is an eigen-direction.", "仅碗形：旋转坐标轴；45° 时没有哪个坐标轴是特征方向。",
          lo=0.0, hi=90.0, step=1.0, unit="°", group="Surface"),
    Param("start_x", "float", -1.5, "Start x", "起点 x", "Where every optimizer starts (or click/drag on the map).",
          "所有优化器的起点（也可在图上点击或拖动）。", lo=-100.0, hi=100.0, step=0.01, group="Surface"),
    Param("start_y", "float", 2.0, "Start y", "起点 y", "Where every optimizer starts (or click/drag on the map).",
          "所有优化器的起点（也可在图上点击或拖动）。", lo=-100.0, hi=100.0, step=0.01, group="Surface"),
    Param("steps", "int", 500, "Steps", "迭代步数", "Number of optimizer steps traced.", "每个优化器迭代的步数。",
          lo=1, hi=2000, group="Surface"),
    _on("sgd"), _lr("sgd"), _wd("sgd"),
    _on("momentum"), _lr("momentum"), _momentum("momentum"),
    Param("momentum_dampening", "float", DEFAULTS["momentum"]["dampening"], "Dampening", "阻尼 dampening",
          "torch: buf = momentum*buf + (1 - dampening)*grad.", "torch：buf = momentum*buf + (1 - dampening)*grad。",
          lo=0.0, hi=0.99, step=0.01, group="Momentum"),
    _on("nesterov"), _lr("nesterov"), _momentum("nesterov"),
    _on("adagrad"), _lr("adagrad"),
    Param("adagrad_lr_decay", "float", DEFAULTS["adagrad"]["lr_decay"], "lr_decay", "学习率衰减 lr_decay",
          "torch: lr / (1 + (t - 1) * lr_decay).", "torch：lr / (1 + (t - 1) * lr_decay)。",
          lo=0.0, hi=1.0, step=0.001, group="Adagrad"),
    Param("adagrad_initial_accumulator_value", "float", DEFAULTS["adagrad"]["initial_accumulator_value"], "Initial accumulator", "累加器初值",
          "Starting value of the sum of squared gradients.", "梯度平方和的初始值。", lo=0.0, hi=10.0, step=0.01, group="Adagrad"),
    _eps("adagrad"),
    _on("rmsprop"), _lr("rmsprop"),
    Param("rmsprop_alpha", "float", DEFAULTS["rmsprop"]["alpha"], "alpha (smoothing)", "alpha（平滑系数）",
          "Decay of the running mean of squared gradients.", "梯度平方滑动平均的衰减系数。",
          lo=0.5, hi=0.9999, step=0.0001, group="RMSProp"),
    _eps("rmsprop"), _momentum("rmsprop"),
    Param("rmsprop_centered", "bool", DEFAULTS["rmsprop"]["centered"], "Centered", "中心化 centered",
          "Divide by the estimated variance instead of the raw second moment.", "用估计的方差而非原始二阶矩作分母。",
          group="RMSProp"),
    _on("adam"), _lr("adam"), *_betas("adam"), _eps("adam"),
    Param("adam_amsgrad", "bool", DEFAULTS["adam"]["amsgrad"], "AMSGrad", "AMSGrad", "Use the running maximum of the second moment.",
          "使用二阶矩的历史最大值。", group="Adam"),
    _on("adamw"), _lr("adamw"), *_betas("adamw"), _eps("adamw"), _wd("adamw"),
    Param("schedule", "choice", "constant", "Schedule", "学习率调度", "How the learning rate changes over the steps.",
          "学习率随步数如何变化。", choices=tuple(Choice(k, *v) for k, v in SCHEDULES.items()), group="Learning-rate schedule"),
    Param("step_size", "int", 100, "Step size", "间隔步数 step_size", "Step decay: multiply by gamma every step_size steps.",
          "阶梯衰减：每 step_size 步乘以 gamma。", lo=1, hi=2000, group="Learning-rate schedule"),
    Param("gamma", "float", 0.5, "gamma", "衰减因子 gamma", "Step, multi-step and exponential decay: the factor.",
          "阶梯、多步和指数衰减的乘法因子。", lo=0.01, hi=1.0, step=0.001, group="Learning-rate schedule"),
    Param("milestones", "text", "150, 300", "Milestones", "里程碑 milestones",
          "Multi-step decay: multiply by gamma at each of these steps (MultiStepLR).",
          "多步衰减：在这些步各乘一次 gamma（MultiStepLR）。", group="Learning-rate schedule", check=parse_milestones,
          max_length=200),
    Param("T_max", "int", 500, "T_max", "周期 T_max", "Cosine: steps from lr down to eta_min.",
          "余弦：从 lr 降到 eta_min 所用的步数。", lo=1, hi=5000, group="Learning-rate schedule"),
    Param("T_0", "int", 100, "T_0 (first period)", "首个周期 T_0",
          "Cosine with warm restarts: steps until the first restart (CosineAnnealingWarmRestarts).",
          "带热重启的余弦：到第一次重启的步数（CosineAnnealingWarmRestarts）。", lo=1, hi=2000, group="Learning-rate schedule"),
    Param("T_mult", "int", 1, "T_mult", "周期倍增 T_mult", "Cosine with warm restarts: each period is T_mult times the one before.",
          "带热重启的余弦：每个周期是上一个的 T_mult 倍长。", lo=1, hi=4, group="Learning-rate schedule"),
    Param("eta_min", "float", 0.0, "eta_min", "最小学习率 eta_min", "Cosine (with or without restarts): the lowest learning rate (absolute).",
          "余弦（有无重启）：最低学习率（绝对值）。", lo=0.0, hi=1.0, step=0.0001, group="Learning-rate schedule"),
    Param("warmup_steps", "int", 50, "Warmup steps", "预热步数",
          "Warmup + cosine: steps of linear increase before the cosine; Transformer: the warmup of lr · d_model^-0.5 · min(t^-0.5, t · warmup^-1.5).",
          "预热 + 余弦：余弦之前线性增长的步数；Transformer：lr · d_model^-0.5 · min(t^-0.5, t · warmup^-1.5) 中的 warmup。",
          lo=1, hi=1000, group="Learning-rate schedule"),
    Param("d_model", "int", 512, "d_model", "模型维度 d_model",
          "Transformer schedule: the model width; the peak is lr / sqrt(d_model · warmup) (the paper: lr = 1, d_model = 512).",
          "Transformer 调度：模型宽度；峰值为 lr / sqrt(d_model · warmup)（论文中 lr = 1，d_model = 512）。",
          lo=1, hi=4096, group="Learning-rate schedule"),
    Param("pct_start", "float", 0.3, "pct_start", "上升比例 pct_start",
          "One cycle: the share of the steps spent rising from lr / div_factor to lr (OneCycleLR).",
          "单周期：从 lr / div_factor 升到 lr 所占的步数比例（OneCycleLR）。", lo=0.0, hi=0.95, step=0.01,
          group="Learning-rate schedule"),
    Param("div_factor", "float", 25.0, "div_factor", "起始除数 div_factor", "One cycle: it starts at lr / div_factor.",
          "单周期：从 lr / div_factor 开始。", lo=1.0, hi=1000.0, log=True, group="Learning-rate schedule"),
    Param("final_div_factor", "float", 1e4, "final_div_factor", "最终除数 final_div_factor",
          "One cycle: it ends at lr / (div_factor · final_div_factor).", "单周期：结束于 lr / (div_factor · final_div_factor)。",
          lo=1.0, hi=1e6, log=True, group="Learning-rate schedule"),
    Param("factor", "float", 0.1, "factor", "缩小因子 factor",
          "Reduce on plateau: multiply lr by this when the loss stops improving (ReduceLROnPlateau).",
          "损失停滞时：学习率乘以此因子（ReduceLROnPlateau）。", lo=0.01, hi=0.99, step=0.01, group="Learning-rate schedule"),
    Param("patience", "int", 10, "patience", "耐心 patience",
          "Reduce on plateau: steps without improvement tolerated before lr drops.",
          "损失停滞时：在降低学习率之前容忍多少步没有改善。", lo=0, hi=500, group="Learning-rate schedule"),
    Param("threshold", "float", 1e-4, "threshold", "阈值 threshold",
          "Reduce on plateau: an improvement counts only if the loss falls below best · (1 − threshold).",
          "损失停滞时：只有损失低于 best · (1 − threshold) 才算改善。", lo=0.0, hi=0.5, step=0.0001,
          group="Learning-rate schedule"),
    Param("compare_schedule", "choice", "none", "Compare with schedule", "对比另一种调度",
          "Race every optimizer a second time under this schedule (dashed), with the same settings.",
          "用这种调度让每个优化器再跑一次（虚线），其余设置相同。",
          choices=tuple(Choice(k, *v) for k, v in COMPARE.items()), group="Learning-rate schedule"),
    Param("clip", "bool", False, "Clip gradient norm", "梯度裁剪", "clip_grad_norm_: rescale the gradient to at most max_norm.",
          "clip_grad_norm_：把梯度范数缩放到不超过 max_norm。", group="Gradient"),
    Param("max_norm", "float", 1.0, "max_norm", "最大范数 max_norm", "Largest allowed gradient norm.",
          "允许的最大梯度范数。", lo=1e-3, hi=1e3, log=True, group="Gradient"),
    Param("noise_sigma", "float", 0.0, "Gradient noise sigma", "梯度噪声 sigma",
          "Minibatch noise: Gaussian with std sigma/sqrt(batch). 0 = full batch.",
          "小批量噪声：标准差 sigma/sqrt(batch) 的高斯噪声。0 = 全批量。", lo=0.0, hi=100.0, step=0.1, group="Gradient"),
    Param("batch_size", "int", 16, "Batch size", "批大小 batch size", "Larger batches average out more noise.",
          "批越大，噪声被平均得越多。", lo=1, hi=1024, group="Gradient"),
    Param("seed", "int", 0, "Noise seed", "噪声种子", "Seed of the gradient noise (and of the moving-average page's series).",
          "梯度噪声（以及滑动平均页中序列）的随机种子。", lo=0, hi=9999, group="Gradient"),
]


SCHEDULE_FIELDS = {"constant": (), "step": ("step_size", "gamma"), "exponential": ("gamma",),
                   "cosine": ("T_max", "eta_min"), "warmup": ("warmup_steps", "T_max", "eta_min"),
                   "multistep": ("milestones", "gamma"), "cosine_restarts": ("T_0", "T_mult", "eta_min"),
                   "inverse_sqrt": ("warmup_steps", "d_model"), "onecycle": ("pct_start", "div_factor", "final_div_factor"),
                   "plateau": ("factor", "patience", "threshold")}  # schedule kind -> the parameters it reads
SCHEDULE_ARGS = {("inverse_sqrt", "warmup_steps"): "warmup"}  # (kind, parameter) -> opt.Schedule field, where not alike


def schedule_of(values: Mapping[str, Any], kind: str) -> opt.Schedule | None:
    """The opt.Schedule of ``kind`` from the panel's values (None for constant)."""
    if kind == "constant":
        return None
    fields = {SCHEDULE_ARGS.get((kind, name), name): values[name] for name in SCHEDULE_FIELDS[kind]}
    if "milestones" in fields:
        fields["milestones"] = parse_milestones(fields["milestones"])
    return opt.Schedule(kind, **fields)


def _follow(values: Mapping[str, Any], changes: Mapping[str, Any]) -> dict:
    """A new surface brings its own start point unless one is given."""
    if "surface" in changes:
        x, y = opt.make_surface(values["surface"]).start
        return {"start_x": x, "start_y": y}
    return {}


def _check(values: Mapping[str, Any]) -> list[str]:
    problems = []
    xmin, xmax, ymin, ymax = opt.make_surface(values["surface"]).window
    for name, lo, hi in (("start_x", xmin, xmax), ("start_y", ymin, ymax)):
        if not lo <= values[name] <= hi:
            problems.append(tr("{name}: {value} is outside the surface's window [{lo}, {hi}]").format(
                name=name, value=values[name], lo=lo, hi=hi))
    if not any(values[f"use_{n}"] for n in NAMES):
        problems.append(tr("use_*: select at least one optimizer"))
    for kind in sorted({values["schedule"], values["compare_schedule"]} - {"none", "constant"}):
        try:
            schedule_of(values, kind).check_steps(values["steps"])
        except ValueError:  # the one rule check_steps has: OneCycleLR's rising phase of 0 steps
            problems.append(tr("pct_start: pct_start × steps = 1 leaves OneCycleLR's rising phase 0 steps long "
                               "(torch divides by its length); change pct_start or steps"))
    return problems


def _only(names: str, base: Mapping[str, Any] | None = None, **values) -> dict:
    """Preset helper: race only ``names`` (space separated), with ``values``."""
    chosen = names.split()
    return {**{f"use_{n}": n in chosen for n in NAMES}, **values}


PRESETS = [
    Preset("ill_conditioned", "Ill-conditioned bowl: SGD zig-zags, momentum damps", "病态碗：SGD 之字形，动量抑制振荡",
           _only("sgd momentum nesterov", surface="bowl", kappa=50.0, theta=30.0, start_x=-2.5, start_y=2.0, steps=150,
                 sgd_lr=0.038, momentum_lr=0.01, momentum_momentum=0.8, nesterov_lr=0.01, nesterov_momentum=0.8)),
    Preset("rotated_bowl", "Rotated bowl: Adam loses its edge", "旋转的碗：Adam 失去优势",
           _only("sgd momentum rmsprop adam", surface="bowl", kappa=100.0, theta=45.0, start_x=-2.5, start_y=1.5,
                 steps=300, sgd_lr=0.019, momentum_lr=0.005, rmsprop_lr=0.05, adam_lr=0.1)),
    Preset("saddle_escape", "Saddle escape: with and without momentum", "逃离鞍点：有无动量",
           _only("sgd momentum adam", surface="saddle", start_x=-1.5, start_y=0.001, steps=300,
                 sgd_lr=0.05, momentum_lr=0.05, adam_lr=0.05)),
    Preset("lr_too_large", "Learning rate too large: divergence", "学习率过大：发散",
           _only("sgd momentum adam", surface="rosenbrock", start_x=-1.5, start_y=2.0, steps=300,
                 sgd_lr=0.003, momentum_lr=0.002, adam_lr=0.5)),
    Preset("warmup_cosine", "Warmup + cosine: a large lr survives the first steps", "预热 + 余弦：大学习率挺过最初几步",
           _only("sgd adam", surface="rosenbrock", start_x=-1.5, start_y=2.0, steps=500, schedule="warmup",
                 warmup_steps=50, T_max=450, sgd_lr=0.0025, adam_lr=0.1)),
    Preset("noisy_minibatch", "Noisy minibatch SGD vs full batch", "带噪声的小批量 SGD 与全批量",
           _only("sgd", surface="bowl", kappa=10.0, theta=20.0, start_x=-2.5, start_y=2.0, steps=200, sgd_lr=0.1,
                 noise_sigma=20.0, batch_size=4)),
    Preset("restarts_rastrigin", "Rastrigin: cosine with warm restarts vs one cosine (dashed)",
           "Rastrigin：带热重启的余弦与单次余弦（虚线）",
           _only("sgd", surface="rastrigin", start_x=-3.3, start_y=2.6, steps=500, sgd_lr=0.015,
                 schedule="cosine_restarts", T_0=50, T_mult=1, eta_min=0.0, compare_schedule="cosine", T_max=500)),
    Preset("ewa_bias", "Moving average: why Adam corrects its bias", "滑动平均：Adam 为什么要做偏差修正",
           {"view": "ewa", "ewa_series": "step", "beta": 0.98, "change_at": 100, "ewa_noise": 0.3}),
]

PARAMS = ParamSet(PARAMETERS, check=_check, presets=PRESETS, follow=_follow)

HYPER = {  # optimizer -> {torch keyword: parameter name}
    "sgd": {"lr": "sgd_lr", "weight_decay": "sgd_weight_decay"},
    "momentum": {"lr": "momentum_lr", "momentum": "momentum_momentum", "dampening": "momentum_dampening"},
    "nesterov": {"lr": "nesterov_lr", "momentum": "nesterov_momentum"},
    "adagrad": {"lr": "adagrad_lr", "lr_decay": "adagrad_lr_decay", "eps": "adagrad_eps",
                "initial_accumulator_value": "adagrad_initial_accumulator_value"},
    "rmsprop": {"lr": "rmsprop_lr", "alpha": "rmsprop_alpha", "eps": "rmsprop_eps", "momentum": "rmsprop_momentum",
                "centered": "rmsprop_centered"},
    "adam": {"lr": "adam_lr", "eps": "adam_eps", "amsgrad": "adam_amsgrad"},
    "adamw": {"lr": "adamw_lr", "eps": "adamw_eps", "weight_decay": "adamw_weight_decay"},
}


def hyper_for(name: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """torch.optim keyword arguments of optimizer ``name`` from the panel's values."""
    hyper = {key: values[param] for key, param in HYPER[name].items()}
    if name in ("adam", "adamw"):
        hyper["betas"] = (values[f"{name}_beta1"], values[f"{name}_beta2"])
    return hyper


@lru_cache(maxsize=8)
def _grid(surface: str, kappa: float, theta: float, n: int = 240) -> np.ndarray:
    """log10(f - f_min + 1e-3) on an n x n grid over the default window, shape (n, n) indexed [x, y]."""
    s = opt.make_surface(surface, kappa=kappa, theta=theta)
    _, _, z = opt.surface_grid(s, n, n)
    fmin = min(float(s.f(np.array(m[0]), np.array(m[1]))) for m in s.minima) if s.minima else float(np.min(z))
    out = np.log10(np.maximum(z - fmin, 0.0) + 1e-3).T
    out.setflags(write=False)
    return out


SETTLE_MS = 150  # after the last change, the paths are redrawn antialiased


@dataclass(frozen=True)
class EwaPage:
    """What the moving-average page draws.

    series: the ewa_series choice. values (n,): the series averaged (n may be 0: SGD diverged at its
    first step). clean (n,): the step series without its noise (None for a gradient series).
    change_at: index of its first new value (None for a gradient series). corrected, raw: opt.EWA of
    the values with and without bias correction (None when n = 0). weights (k,): the weight
    (1 - beta) beta^age of the value ``age`` steps back, for ages 0..k-1. lag, lag_raw: values after
    the change until the corrected / raw EWA of the clean series covers half the jump (None: not
    within the series, or no step).
    """

    series: str
    beta: float
    values: np.ndarray
    clean: np.ndarray | None
    change_at: int | None
    corrected: Any
    raw: Any
    weights: np.ndarray
    lag: int | None
    lag_raw: int | None


@dataclass(frozen=True)
class Race:
    """What the panel draws: the surface (log heat map), its minima and one trace per optimizer, the
    same optimizers under the compared schedule (``twins``, empty if none), and on the moving-average
    page (``view`` "ewa") that page instead of the traces."""

    surface: str
    window: tuple[float, float, float, float]
    minima: tuple[tuple[float, float], ...]
    log_loss_grid: np.ndarray  # (n, n) indexed [x, y]
    f_min: float  # lowest loss among the known minima
    traces: dict[str, Any]  # optimizer -> opt.Trace
    twins: dict[str, Any] = field(default_factory=dict)  # optimizer -> opt.Trace under compare_schedule
    view: str = "race"
    ewa: EwaPage | None = None


@lru_cache(maxsize=160)  # every optimizer under every schedule kind and a few more: switching kinds recomputes nothing
def _trace(surface: tuple, name: str, start: tuple, steps: int, schedule, clip, noise, seed: int, hyper: tuple):
    """opt.trace, remembered: changing one optimizer's setting re-traces only that optimizer."""
    name_, kappa, theta = surface
    return opt.trace(opt.make_surface(name_, kappa=kappa, theta=theta), name, start, steps, schedule=schedule,
                     clip=clip, noise=noise, seed=seed, **dict(hyper))


def _race_args(values: Mapping[str, Any]) -> tuple:
    """The arguments every trace of the race shares: surface key, start, steps, clip, noise, seed."""
    noise = (values["noise_sigma"], values["batch_size"]) if values["noise_sigma"] > 0 else None
    clip = values["max_norm"] if values["clip"] else None
    return ((values["surface"], values["kappa"], values["theta"]), (values["start_x"], values["start_y"]),
            values["steps"], clip, noise, values["seed"])


def _traces(values: Mapping[str, Any], kind: str, names) -> dict[str, Any]:
    key, start, steps, clip, noise, seed = _race_args(values)
    schedule = schedule_of(values, kind)
    return {name: _trace(key, name, start, steps, schedule, clip, noise, seed,
                         tuple(sorted(hyper_for(name, values).items()))) for name in names}


@lru_cache(maxsize=16)
def _step_series(change_at: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return opt.step_series(EWA_STEPS, change_at, *EWA_LEVELS, sigma=sigma, seed=seed)


@lru_cache(maxsize=64)
def _ewa_pair(values: tuple, beta: float) -> tuple[Any, Any]:
    """opt.ewa of ``values`` (a tuple, for the cache) with and without bias correction."""
    return opt.ewa(values, beta), opt.ewa(values, beta, bias_correction=False)


def compute_ewa(values: Mapping[str, Any]) -> EwaPage:
    """The moving-average page: the chosen series, its EWA with and without bias correction, the
    weights of past values and, for the step series, the lag after the change."""
    v, beta = values, values["beta"]
    weights = opt.ewa_weights(beta, EWA_STEPS)
    if v["ewa_series"] == "step":
        clean, noisy = _step_series(v["change_at"], v["ewa_noise"], v["seed"])
        corrected, raw = opt.ewa(noisy, beta), opt.ewa(noisy, beta, bias_correction=False)
        clean_corrected, clean_raw = _ewa_pair(tuple(clean.tolist()), beta)
        lag = opt.half_lag(clean_corrected.average, v["change_at"], *EWA_LEVELS)
        lag_raw = opt.half_lag(clean_raw.average, v["change_at"], *EWA_LEVELS)
        return EwaPage("step", beta, noisy, clean, v["change_at"], corrected, raw, weights, lag, lag_raw)
    key, start, steps, clip, noise, seed = _race_args(v)
    sgd = _traces(v, v["schedule"], ["sgd"])["sgd"]
    surface = opt.make_surface(v["surface"], kappa=v["kappa"], theta=v["theta"])
    series = opt.seen_gradients(surface, sgd, noise, seed)[:, 0 if v["ewa_series"] == "sgd_x" else 1]
    if not len(series):
        return EwaPage(v["ewa_series"], beta, series, None, None, None, None, weights, None, None)
    return EwaPage(v["ewa_series"], beta, series, None, None, opt.ewa(series, beta),
                   opt.ewa(series, beta, bias_correction=False), weights, None, None)


def compute_race(values: Mapping[str, Any]) -> Race:
    surface = opt.make_surface(values["surface"], kappa=values["kappa"], theta=values["theta"])
    grid = _grid(values["surface"], values["kappa"], values["theta"])
    f_min = min(float(surface.f(np.float64(x), np.float64(y))) for x, y in surface.minima)
    layout = (values["surface"], tuple(surface.window), tuple(map(tuple, surface.minima)), grid, f_min)
    if values["view"] == "ewa":
        return Race(*layout, {}, {}, "ewa", compute_ewa(values))
    names = [name for name in NAMES if values[f"use_{name}"]]
    traces = _traces(values, values["schedule"], names)
    compare = values["compare_schedule"]
    twins = _traces(values, compare, names) if compare != "none" else {}
    return Race(*layout, traces, twins)


def on_screen_changes(points: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Mask of the points (n, 2) worth drawing: the first, the last, and each one that lands in
    another screen cell (``cell``: (2,) data units) than the point before it. A converging tail
    of hundreds of sub-pixel steps then costs a few vertices instead of hundreds."""
    keep = np.ones(len(points), dtype=bool)
    if len(points) > 2 and np.all(cell > 0):
        cells = np.floor(points / cell)
        keep[1:-1] = np.any(cells[1:-1] != cells[:-2], axis=1)
    return keep


class _PickViewBox(pg.ViewBox):
    """A view box where a left click or drag sets the start point; the wheel still zooms."""

    def __init__(self, on_pick):
        super().__init__()
        self._on_pick = on_pick
        self.setMouseEnabled(x=False, y=False)

    def mouseClickEvent(self, event):
        if event.button() == Qt.LeftButton:
            event.accept()
            self._on_pick(self.mapSceneToView(event.scenePos()))
        else:
            super().mouseClickEvent(event)

    def mouseDragEvent(self, event, axis=None):
        if event.button() == Qt.LeftButton:
            event.accept()
            self._on_pick(self.mapSceneToView(event.scenePos()))
        else:
            super().mouseDragEvent(event, axis)


class ViewCurve(PixelCurve):
    """A PixelCurve whose bounding rectangle is its view box's visible range: what its view box shows
    of it (the view box clips the rest). pyqtgraph measures a curve's data (min and max, pen
    padding in pixels) after every setData, about 0.1 ms per curve; the race re-draws up to 21
    curves per change. Only for curves that span their plot, added with ignoreBounds (auto-range
    never asks for their bounds) to a scene without an index."""

    def boundingRect(self):
        box = self.getViewBox()
        return box.viewRect() if box is not None else super().boundingRect()


def _snapped(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] widened to whole steps of 1, 2 or 5 x 10^k (about five per range) plus a margin."""
    span = max(hi - lo, 1e-9 * max(abs(lo), abs(hi), 1.0))
    power = 10.0 ** math.floor(math.log10(span / 5))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= span / 5)
    return math.floor(lo / step) * step - 0.25 * step, math.ceil(hi / step) * step + 0.25 * step


class EwaView(QWidget):
    """The moving-average page: a series and its EWA with and without bias correction, the effective
    window 1/(1 - beta) marked, the lag after a step change; below, the weights of past values and
    the bias-correction factor 1 - beta^t. Its items are made once and updated in place."""

    def __init__(self, style):
        super().__init__()
        self.setObjectName("ewa_page")
        st = self.style_ = style
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 0)
        column.setSpacing(2)
        self.readout = QLabel()
        self.readout.setObjectName("ewa_readout")
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        column.addWidget(OneLine(self.readout, lines=2))
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.setBackground(st.background)
        self.canvas.scene().setItemIndexMethod(QGraphicsScene.NoIndex)
        self.canvas.ci.setSpacing(8)
        column.addWidget(self.canvas, 1)
        ci = self.canvas.ci
        muted, ground = QColor(st.muted), QColor(st.background)
        # the bands' shade, opaque (a translucent fill over a whole plot costs a blend per pixel on every change)
        shade = pg.mkBrush(*(round(b + (m - b) * 45 / 255) for m, b in ((muted.red(), ground.red()),
                                                                         (muted.green(), ground.green()),
                                                                         (muted.blue(), ground.blue()))))
        self.series_plot = self._plot(ci, 0, 0, tr("The series and its exponentially weighted average"), "x", tr("step t"),
                                      colspan=2)
        self.band = pg.LinearRegionItem(movable=False, brush=shade, pen=pg.mkPen(None))
        self.band.setZValue(-20)
        self.series_plot.addItem(self.band, ignoreBounds=True)
        self.band_label = pg.TextItem(color=st.foreground, anchor=(0, 0))
        self.band_label.setFont(st.font(0.85))
        self.series_plot.addItem(self.band_label, ignoreBounds=True)
        self.values_curve = PixelCurve(pen=st.pen(st.muted, st.thin_line_width))
        self.clean_curve = PixelCurve(pen=st.pen(st.foreground, st.thin_line_width, Qt.DashLine))
        self.raw_curve = PixelCurve(pen=st.pen(st.series[1], st.line_width))
        self.corrected_curve = PixelCurve(pen=st.pen(st.series[0], st.line_width))
        for curve in (self.values_curve, self.clean_curve, self.raw_curve, self.corrected_curve):
            self.series_plot.addItem(curve, ignoreBounds=True)
        self.change_line = pg.InfiniteLine(angle=90, movable=False, pen=st.pen(st.foreground, st.thin_line_width))
        self.lag_line = pg.InfiniteLine(angle=90, movable=False, pen=st.pen(st.series[0], st.thin_line_width, Qt.DashLine))
        self.lag_label = pg.TextItem(color=st.series[0], anchor=(0, 1))
        self.lag_label.setFont(st.font(0.85))
        for item in (self.change_line, self.lag_line, self.lag_label):
            self.series_plot.addItem(item, ignoreBounds=True)
        self.legend = pg.LegendItem(labelTextColor=st.foreground, labelTextSize=f"{st.point_size * 0.9:.0f}pt",
                                    colCount=4, horSpacing=12)
        ci.addItem(self.legend, row=1, col=0, colspan=2)
        self._legend_rows: tuple | None = None
        self.weights_plot = self._plot(ci, 2, 0, tr("Weight of the value k steps back: (1 − β) βᵏ"),
                                       tr("weight / (1 − β)"), tr("age k (steps)"))
        self.weights_curve = PixelCurve(pen=st.pen(st.series[2]))
        self.weights_plot.addItem(self.weights_curve, ignoreBounds=True)
        self.weights_band = pg.LinearRegionItem(movable=False, brush=shade, pen=pg.mkPen(None))
        self.weights_band.setZValue(-20)
        self.weights_plot.addItem(self.weights_band, ignoreBounds=True)
        self.weights_label = pg.TextItem(color=st.foreground, anchor=(0, 0))
        self.weights_label.setFont(st.font(0.85))
        self.weights_plot.addItem(self.weights_label, ignoreBounds=True)
        self.correction_plot = self._plot(ci, 2, 1, tr("Bias correction 1 − βᵗ (Adam divides by it)"), "1 − βᵗ",
                                          tr("step t"))
        self.correction_curve = PixelCurve(pen=st.pen(st.series[3]))
        self.correction_plot.addItem(self.correction_curve, ignoreBounds=True)
        self.window_line = pg.InfiniteLine(angle=90, movable=False, pen=st.pen(st.muted, st.thin_line_width, Qt.DashLine))
        self.correction_plot.addItem(self.window_line, ignoreBounds=True)
        self.correction_plot.addItem(pg.InfiniteLine(pos=1.0, angle=0, pen=st.pen(st.muted, st.thin_line_width)),
                                     ignoreBounds=True)
        for row, stretch in enumerate((5, 0, 3)):
            ci.layout.setRowStretchFactor(row, stretch)
        plots = (self.series_plot, self.weights_plot, self.correction_plot)
        static = [self.legend, *(plot.titleLabel for plot in plots),
                  *(plot.getAxis(side) for plot in plots for side in ("left", "bottom"))]
        for item in static:
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged: repainting is a blit
        self._series_y: tuple[float, float] | None = None
        self._drawn: tuple | None = None

    def _plot(self, ci, row: int, col: int, title: str, left: str, bottom: str, **kwargs) -> pg.PlotItem:
        plot = ci.addPlot(row=row, col=col, enableMenu=False, **kwargs)
        self.style_.style_plot(plot, title, left, bottom)
        plot.showGrid(x=False, y=False)  # a grid repaints as many translucent lines on every change
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.getAxis("left").setWidth(int(self.style_.point_size * 5))
        never_widens(plot.titleLabel)
        return plot

    def draw(self, page: EwaPage) -> None:
        """Show ``page``; a page equal to the one shown (the same series and beta) is not drawn again."""
        key = (page.series, page.beta, page.values.tobytes(), page.change_at)
        if key == self._drawn:
            return
        self._drawn = key
        n, beta = len(page.values), page.beta
        window = 1.0 / (1.0 - beta)
        t = np.arange(1, n + 1, dtype=float)
        self.values_curve.setData(t, page.values, skipFiniteCheck=True)
        step = page.clean is not None
        self.clean_curve.setVisible(step)
        self._update_legend(step)
        if step:
            self.clean_curve.setData(t, page.clean, skipFiniteCheck=True)
        for curve, ewa in ((self.corrected_curve, page.corrected), (self.raw_curve, page.raw)):
            curve.setVisible(ewa is not None)
            if ewa is not None:
                curve.setData(t, ewa.average, skipFiniteCheck=True)
        if n:
            shown = [page.values] + [e.average for e in (page.corrected, page.raw) if e is not None]
            lo, hi = min(float(a.min()) for a in shown), max(float(a.max()) for a in shown)
            self._series_y = held_range(self._series_y, _snapped(lo, hi))
            self._set_range(self.series_plot, (0, max(n, 2) + 1), self._series_y)
        start = page.change_at + 1 if step else 1  # the window after the change, or the first steps
        self.band.setRegion((start - 0.5, start - 0.5 + window))
        top = self._series_y[1] if self._series_y else 1.0
        self.band_label.setPos(start, top)
        self.band_label.setText(tr("window 1/(1 − β) = {w} steps").format(w=_steps_text(window)))
        self.change_line.setVisible(step)
        lag_shown = step and page.lag is not None
        self.lag_line.setVisible(lag_shown)
        self.lag_label.setVisible(lag_shown)
        if step:
            self.change_line.setValue(start - 0.5)
        if lag_shown:
            self.lag_line.setValue(start + page.lag - 1)
            self.lag_label.setPos(start + page.lag - 1, self._series_y[0] if self._series_y else 0.0)
            self.lag_label.setText(" " + tr("half the jump after {k} steps").format(k=page.lag))
        # relative to the newest value's weight (1 - beta), over the page's steps: fixed axes, whatever beta
        ages = np.arange(len(page.weights), dtype=float)
        self.weights_curve.setData(ages, page.weights / page.weights[0], skipFiniteCheck=True)
        self._set_range(self.weights_plot, (0, len(page.weights)), (0.0, 1.08))
        self.weights_band.setRegion((0, window))
        inside = float(page.weights[: int(math.ceil(window - 1e-9))].sum())  # 1/(1 - 0.9) is 10.000000000000002
        right = window > 0.5 * len(page.weights)  # a wide window: the label left of its edge, inside the plot
        self.weights_label.setAnchor((1, 0) if right else (0, 0))
        self.weights_label.setPos(min(window, len(page.weights)), 1.0)
        self.weights_label.setText(tr("the first {w} hold {share} of the weight").format(
            w=_steps_text(window), share=f"{inside:.0%}"))
        if page.corrected is not None:
            self.correction_curve.setData(t, page.corrected.correction, skipFiniteCheck=True)
        self._set_range(self.correction_plot, (0, max(n, 2) + 1), (0.0, 1.08))
        self.window_line.setValue(window)
        self.readout.setText(self.readout_text(page))

    def _update_legend(self, step: bool) -> None:
        """The legend's rows: the noise-free line only for the step series (re-laid out only when that changes)."""
        rows = [(self.values_curve, tr("series x_t"))] + ([(self.clean_curve, tr("without noise"))] if step else [])
        rows += [(self.corrected_curve, tr("EWA, bias-corrected m_t / (1 − βᵗ)")),
                 (self.raw_curve, tr("EWA, not corrected m_t"))]
        key = tuple(text for _, text in rows)
        if key != self._legend_rows:
            self.legend.clear()
            for curve, text in rows:
                self.legend.addItem(curve, text)
            self._legend_rows = key

    def set_smooth(self, smooth: bool) -> None:
        """Antialiased curves (smooth) or plain ones (a third of the cost: while a slider is dragged)."""
        for curve in (self.values_curve, self.clean_curve, self.raw_curve, self.corrected_curve, self.weights_curve,
                      self.correction_curve):
            if curve.opts["antialias"] != smooth:
                curve.opts["antialias"] = smooth
                curve.update()

    @staticmethod
    def _set_range(plot: pg.PlotItem, x: tuple[float, float], y: tuple[float, float]) -> None:
        """A new view range only when it differs (an unchanged one would still redraw the axes), applied
        before the paint (else the paint re-ranges and asks for a second one)."""
        wanted = (tuple(x), tuple(y))
        if getattr(plot, "_wanted_range", None) != wanted:
            plot._wanted_range = wanted
            plot.setRange(xRange=x, yRange=y, padding=0)
            plot.vb.prepareForPaint()

    @staticmethod
    def readout_text(page: EwaPage) -> str:
        """The numbers of the page in words: window, lag, and the first average with and without correction."""
        window = 1.0 / (1.0 - page.beta)
        parts = [tr("β = {beta}: window 1/(1 − β) = {w} steps").format(beta=f"{page.beta:g}", w=_steps_text(window))]
        if page.corrected is None:
            parts.append(tr("SGD diverged at its first step: no gradient to average"))
            return " · ".join(parts)
        if page.lag is not None:
            lag = tr("half the jump after {k} steps").format(k=page.lag)
            if page.lag_raw is None:
                lag += " " + tr("(not within the series without correction)")
            elif page.lag_raw != page.lag:
                lag += " " + tr("({k} without correction)").format(k=page.lag_raw)
            parts.append(lag)
        elif page.clean is not None:
            parts.append(tr("the average does not reach half the jump within the series"))
        parts.append(tr("first average: {raw} without correction, {corrected} with it").format(
            raw=f"{page.raw.average[0]:.3g}", corrected=f"{page.corrected.average[0]:.3g}"))
        return " · ".join(parts)


def _steps_text(window: float) -> str:
    """An effective window in steps as printed: 3 significant digits."""
    return f"{window:.3g}"


class OptimizersPanel(Panel):
    NAME = "optimizers"
    TITLE_EN = "Optimizers"
    TITLE_ZH = "优化器"
    PARAMS = PARAMS
    BENCH_SWEEPS = {
        "start_x": (-1.9, 1.9), "adam_lr": (1e-3, 1.0),
        # every optimizer under each schedule kind in turn: all seven traces and their lr curves change
        "schedule": list(opt.SCHEDULE_KINDS) * 6,
        "beta (EWA)": {"param": "beta", "sweep": (0.5, 0.995), "base": {"view": "ewa"}},
    }
    BENCH_BUDGETS_MS = {"schedule": 8.0, "beta (EWA)": 8.0}
    OPEN_GROUPS = ("View", "Surface")

    compute = staticmethod(compute_race)

    def __init__(self, style, values=None, parent=None):
        self.shown_step: int | None = None  # None: the whole path
        self._timer = QTimer()
        self._timer.setInterval(16)
        self._moving = False  # changes are arriving (a drag): paths are drawn without antialiasing
        self._settle = QTimer()
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        super().__init__(style, values, parent)
        self._timer.timeout.connect(self._advance)
        self._settle.timeout.connect(self._settled)

    # ---- figure -------------------------------------------------------------------------------
    def build_figure(self) -> QWidget:
        """Two pages: the race (built now: the panel opens on it) and the moving average (built the
        first time it is shown)."""
        figure = QWidget()
        column = QVBoxLayout(figure)
        column.setContentsMargins(0, 0, 0, 0)
        self.pages = QStackedWidget()
        column.addWidget(self.pages)
        self.race_page = self._build_race_page()
        self.pages.addWidget(self.race_page)
        self.ewa_view: EwaView | None = None
        return figure

    def ewa_page(self) -> "EwaView":
        """The moving-average page, built the first time it is asked for."""
        if self.ewa_view is None:
            self.ewa_view = EwaView(self.style_)
            self.pages.addWidget(self.ewa_view)
        return self.ewa_view

    def _build_race_page(self) -> QWidget:
        st = self.style_
        # One graphics view per plot (and one for the legend): a change repaints only the views whose
        # items changed; the learning rates, for one, do not move with the start point.
        views = []
        for _ in range(4):
            view = pg.GraphicsLayoutWidget()
            view.scene().setItemIndexMethod(QGraphicsScene.NoIndex)  # items move every frame: no BSP upkeep
            view.setBackground(st.background)
            views.append(view)
        map_view, loss_view, lr_view, legend_view = views
        self.map_view = map_view
        figure = QWidget()
        row = QHBoxLayout(figure)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        column = QVBoxLayout()
        column.setSpacing(0)
        for view, stretch in ((loss_view, 5), (lr_view, 5), (legend_view, 0)):
            column.addWidget(view, stretch)
        row.addWidget(map_view, 3)
        row.addLayout(column, 2)
        self.map = map_view.addPlot(row=0, col=0, viewBox=_PickViewBox(self._picked))
        st.style_plot(self.map, tr("Loss surface and paths"), "y", "x")
        self.map.setToolTip(tr("Click or drag on the map to move the start point"))
        self.map.showGrid(x=False, y=False)
        self.image = pg.ImageItem(axisOrder="col-major")
        self.map.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("viridis"), interactive=False, width=14)
        self.colorbar.setImageItem(self.image, insert_in=self.map)
        axis = self.colorbar.axis
        axis.setTextPen(pg.mkPen(st.foreground))
        axis.setStyle(tickFont=st.font(0.9))
        axis.setLabel(tr("log10(loss − min + 0.001)"), color=st.foreground, **{"font-size": f"{st.point_size:.0f}pt"})
        self.minima = pg.ScatterPlotItem(symbol="star", size=st.marker_size * 1.6, pen=pg.mkPen("#000000", width=1),
                                         brush=pg.mkBrush("#FFFFFF"))
        self.map.addItem(self.minima)
        self.loss_plot = loss_view.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.loss_plot, tr("Loss per step"), tr("loss − min"), tr("step"))
        self.lr_plot = lr_view.addPlot(row=0, col=0, axisItems={"left": DecadeAxis("left")})
        st.style_plot(self.lr_plot, tr("Learning rate per step"), "lr", tr("step"))
        self.legend = pg.LegendItem(labelTextColor=st.foreground, labelTextSize=f"{st.point_size:.0f}pt",
                                    colCount=2, horSpacing=12)
        legend_view.addItem(self.legend, row=0, col=0)
        self.legend_view = legend_view
        for plot in (self.loss_plot, self.lr_plot):
            plot.showGrid(x=False, y=False)  # a log-axis grid alone costs ~5 ms per paint
        for plot in (self.map, self.loss_plot, self.lr_plot):  # fixed widths: new tick labels never re-lay out
            plot.getAxis("left").setWidth(int(st.point_size * 5.5))
        # Plain curve items (PlotDataItem's extra processing costs ~0.1 ms per setData), left out of
        # auto-range (ranges are set in draw), so a change never asks every item for its bounds.
        self.paths: dict[str, pg.PlotCurveItem] = {}
        self.loss_curves: dict[str, pg.PlotCurveItem] = {}
        self.lr_curves: dict[str, pg.PlotCurveItem] = {}
        for index, name in enumerate(NAMES):
            color = st.series[index]
            self.paths[name] = ViewCurve(pen=st.pen(color), antialias=True)
            self.map.addItem(self.paths[name], ignoreBounds=True)
            self.loss_curves[name] = ViewCurve(pen=st.pen(color, st.thin_line_width))
            self.loss_plot.addItem(self.loss_curves[name], ignoreBounds=True)
            self.lr_curves[name] = ViewCurve(pen=st.pen(color, st.thin_line_width))
            self.lr_plot.addItem(self.lr_curves[name], ignoreBounds=True)
        self.colors = dict(zip(NAMES, st.series))
        # the same optimizers under the compared schedule: thin dashed lines (a wide dashed path strokes slowly)
        self.twin_paths: dict[str, pg.PlotCurveItem] = {}
        self.twin_loss: dict[str, pg.PlotCurveItem] = {}
        self.twin_lr: dict[str, pg.PlotCurveItem] = {}
        for name, color in self.colors.items():
            for items, plot in ((self.twin_paths, self.map), (self.twin_loss, self.loss_plot), (self.twin_lr, self.lr_plot)):
                items[name] = ViewCurve(pen=st.pen(color, st.thin_line_width, Qt.DashLine))
                items[name].setVisible(False)
                plot.addItem(items[name], ignoreBounds=True)
        self.brushes = {name: pg.mkBrush(color) for name, color in self.colors.items()}
        self.heads = pg.ScatterPlotItem(symbol="o", size=st.marker_size, pen=pg.mkPen(st.foreground, width=1.5))
        self.ends = pg.ScatterPlotItem(symbol="x", size=st.marker_size * 1.8, pen=None)
        self.start_marker = pg.ScatterPlotItem(symbol="o", size=st.marker_size * 1.3, pen=pg.mkPen(st.foreground, width=2),
                                               brush=pg.mkBrush("#FFFFFF"))
        for item in (self.heads, self.ends, self.start_marker):
            self.map.addItem(item, ignoreBounds=True)
        for item in (self.map.titleLabel, self.loss_plot.titleLabel, self.lr_plot.titleLabel, self.colorbar,
                     *(plot.getAxis(side) for plot in (self.map, self.loss_plot, self.lr_plot)
                       for side in ("left", "bottom"))):
            item.setCacheMode(QGraphicsItem.DeviceCoordinateCache)  # unchanged: repainting is a blit
        self.image.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self._drawn_grid: np.ndarray | None = None
        self._drawn_with: dict = {}  # curve item -> (trace, scale) it shows (see _stale)
        self._drawn_start: tuple | None = None
        self._legend_rows: list[str] = []
        return figure

    def extra_controls(self) -> list[QWidget]:
        box = QWidget()
        box.setObjectName("playback")
        self.playback = box
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 6)
        buttons = QHBoxLayout()
        self.play_button = QPushButton(tr("Play"))
        self.play_button.setToolTip(tr("Animate the race from step 0"))
        self.play_button.clicked.connect(self.toggle_play)
        step_button = QPushButton(tr("Step"))
        step_button.setToolTip(tr("Advance one step"))
        step_button.clicked.connect(lambda: self.show_step((self.shown_step or 0) + 1))
        restart = QPushButton(tr("Restart"))
        restart.setToolTip(tr("Back to step 0"))
        restart.clicked.connect(lambda: (self.pause(), self.show_step(0)))
        for button in (self.play_button, step_button, restart):
            buttons.addWidget(button)
        column.addLayout(buttons)
        speed_row = QHBoxLayout()
        speed_row.addWidget(QLabel(tr("Speed (steps per frame)")))
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, 20)
        self.speed.setValue(2)
        speed_row.addWidget(self.speed)
        column.addLayout(speed_row)
        self.scrub_label = QLabel()
        self.scrubber = QSlider(Qt.Horizontal)
        self.scrubber.setObjectName("scrubber")
        self.scrubber.setToolTip(tr("Drag to scrub through the steps"))
        self.scrubber.valueChanged.connect(lambda v: (self.pause(), self.show_step(v)))
        column.addWidget(self.scrub_label)
        column.addWidget(self.scrubber)
        return [box]

    def set_values(self, changes) -> bool:
        """While values keep changing (a drag), the paths skip antialiasing (a third of a frame on
        this machine); SETTLE_MS after the last change they are drawn smooth again."""
        self._moving = True
        self._settle.start()
        return super().set_values(changes)

    def compute_now(self) -> None:
        self._moving = False  # export and tests: smooth at once
        super().compute_now()

    def _settled(self) -> None:
        self._moving = False
        for path in self.paths.values():
            path.opts["antialias"] = True
            path.update()
        if self.ewa_view is not None:
            self.ewa_view.set_smooth(True)

    def data_result(self) -> Any:
        """The race, or on the moving-average page that page alone (not the surface it does not show)."""
        if self.result is not None and self.result.view == "ewa":
            return self.result.ewa
        return self.result

    def caption(self) -> str:
        """Title and only the values that shape this figure: racing optimizers and active options (on
        the moving-average page: the series, beta, and what the series comes from)."""
        v, p = self.values, self.PARAMS
        names = ["surface"] + (["kappa", "theta"] if v["surface"] == "bowl" else []) + ["start_x", "start_y", "steps"]
        names += ["schedule", *SCHEDULE_FIELDS[v["schedule"]]]
        names += ["max_norm"] if v["clip"] else []
        names += ["noise_sigma", "batch_size", "seed"] if v["noise_sigma"] > 0 else []
        if v["view"] == "ewa":  # the series, and what it comes from
            source = ["change_at", "ewa_noise", "seed"] if v["ewa_series"] == "step" else [*names, "sgd_lr", "sgd_weight_decay"]
            return f"{self.title()}: " + p.caption(v, ["view", "ewa_series", "beta", *source])
        if v["compare_schedule"] != "none":
            names += ["compare_schedule", *(n for n in SCHEDULE_FIELDS[v["compare_schedule"]] if n not in names)]
        parts = [p.caption(v, names)]
        for name in NAMES:
            if v[f"use_{name}"]:
                hyper = ", ".join(f"{key}={p[param].format(v[param])}" for key, param in HYPER[name].items())
                if name in ("adam", "adamw"):
                    hyper += f", betas=({v[name + '_beta1']}, {v[name + '_beta2']})"
                parts.append(f"{pick(*NAMES[name])}({hyper})")
        return f"{self.title()}: " + "; ".join(parts)

    # ---- interaction --------------------------------------------------------------------------
    def _picked(self, point) -> None:
        xmin, xmax, ymin, ymax = opt.make_surface(self.values["surface"]).window
        x = min(max(point.x(), xmin), xmax)
        y = min(max(point.y(), ymin), ymax)
        self.set_values({"start_x": round(x, 3), "start_y": round(y, 3)})

    def values_changed(self, names: list[str]) -> None:
        bowl = self.values["surface"] == "bowl"
        for name in ("kappa", "theta"):
            self.controls[name].setEnabled(bowl)
        v = self.values
        used = {*SCHEDULE_FIELDS[v["schedule"]], *SCHEDULE_FIELDS.get(v["compare_schedule"], ())}
        for name in {name for fields in SCHEDULE_FIELDS.values() for name in fields}:
            self.controls[name].setEnabled(name in used)
        self.controls["max_norm"].setEnabled(v["clip"])
        noisy = v["noise_sigma"] > 0
        ewa, step_series = v["view"] == "ewa", v["ewa_series"] == "step"
        self.controls["batch_size"].setEnabled(noisy)
        self.controls["seed"].setEnabled(noisy or (ewa and step_series))
        for name in ("ewa_series", "beta"):
            self.controls[name].setEnabled(ewa)
        for name in ("change_at", "ewa_noise"):
            self.controls[name].setEnabled(ewa and step_series)
        if hasattr(self, "playback"):
            self.playback.setVisible(not ewa)  # the race's playback: nothing to play on the moving-average page
        if "view" in names and "Moving average (EWA)" in getattr(self, "groups", {}):
            box = self.groups["Moving average (EWA)"]
            box.expand(animate=False) if ewa else box.collapse(animate=False)
        for optimizer in NAMES:
            on = self.values[f"use_{optimizer}"]
            for param in self.PARAMS:
                if param.group == NAMES[optimizer][0] and param.name != f"use_{optimizer}":
                    self.controls[param.name].setEnabled(on)
        if any(n.startswith("use_") for n in names) and hasattr(self, "notes"):
            self.refresh_notes()

    def notes_html(self) -> str:
        """The notes with the update rule of each selected optimizer only."""
        html = super().notes_html()

        def keep(match: re.Match) -> str:
            return match.group(2) if self.values.get(f"use_{match.group(1)}", True) else ""
        return re.sub(r"<!--rule:(\w+)-->(.*?)<!--/rule-->", keep, html, flags=re.S)

    def toggle_play(self) -> None:
        if self._timer.isActive():
            self.pause()
            return
        if self.result is None:
            return
        if self.shown_step is None or self.shown_step >= self._longest():
            self.shown_step = 0
        self._timer.start()
        self.play_button.setText(tr("Pause"))

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setText(tr("Play"))

    def _advance(self) -> None:
        step = (self.shown_step or 0) + self.speed.value()
        if step >= self._longest():
            self.pause()
            step = self._longest()
        self.show_step(step)

    def _longest(self) -> int:
        if self.result is None or not self.result.traces:
            return 0
        return max(len(t.points) - 1 for t in (*self.result.traces.values(), *self.result.twins.values()))

    def show_step(self, step: int) -> None:
        """Show every path up to ``step`` (clamped); the full path when step is the last one."""
        last = self._longest()
        self.shown_step = min(max(int(step), 0), last)
        if self.result is not None and self.result.view == "race":
            self._draw_paths(self.result)

    # ---- drawing ------------------------------------------------------------------------------
    def draw(self, race: Race) -> Iterator[None]:
        """In steps, one graphics view each (see Panel): the surface, the loss and lr curves, the paths and legend."""
        if race.view == "ewa":
            page = self.ewa_page()
            self.pages.setCurrentWidget(page)
            page.set_smooth(not self._moving)  # while a slider is dragged: plain lines, smooth once it settles
            page.draw(race.ewa)
            return
        self.pages.setCurrentWidget(self.race_page)
        if race.log_loss_grid is not self._drawn_grid:
            xmin, xmax, ymin, ymax = race.window
            grid = race.log_loss_grid
            self.image.setImage(grid, autoLevels=False)
            self.image.setRect(xmin, ymin, xmax - xmin, ymax - ymin)
            self.colorbar.setLevels((float(grid.min()), float(grid.max())))
            self.map.setRange(xRange=(xmin, xmax), yRange=(ymin, ymax), padding=0)
            self.minima.setData(pos=np.array(race.minima, dtype=float).reshape(-1, 2))
            self._drawn_grid = grid
        start = (self.values["start_x"], self.values["start_y"])
        if start != self._drawn_start:  # a marker set again repaints its neighbourhood
            self.start_marker.setData(pos=[start])
            self._drawn_start = start
        yield
        for name in NAMES:
            for item in (self.paths[name], self.loss_curves[name], self.lr_curves[name]):
                item.setVisible(name in race.traces)
            for item in (self.twin_paths[name], self.twin_loss[name], self.twin_lr[name]):
                item.setVisible(name in race.twins)
        runs = [(name, trace, self.loss_curves[name], self.lr_curves[name]) for name, trace in race.traces.items()]
        runs += [(name, trace, self.twin_loss[name], self.twin_lr[name]) for name, trace in race.twins.items()]
        steps = max([len(t.losses) - 1 for _, t, _, _ in runs] + [1])
        # the axes hold while the curves fill a quarter of them: settings switched back and forth (schedules,
        # optimizers) are compared on one axis, and a change re-labels it only now and then
        self._fit(self.loss_plot, steps, [_log_loss(t, race.f_min) for _, t, _, _ in runs], fill=0.25)
        self._fit(self.lr_plot, steps, [_log_lr(t)[1] for _, t, _, _ in runs if len(t.lrs)], fill=0.25)
        loss_cell = np.array(self.loss_plot.vb.viewPixelSize()) / 2
        lr_cell = np.array(self.lr_plot.vb.viewPixelSize()) / 2
        for name, trace, loss_curve, lr_curve in runs:
            # a curve is set again only when its trace or the plot's scale changed: a cached trace is the
            # same object, so a change of one optimizer's setting re-draws that optimizer's curves only
            if self._stale(loss_curve, trace, race.f_min, tuple(loss_cell)):
                shown = _decimated(trace, f"loss {race.f_min!r}", lambda t=trace: np.column_stack(
                    [np.arange(len(t.losses)), _log_loss(t, race.f_min)]), tuple(loss_cell))
                loss_curve.setData(shown[:, 0], shown[:, 1], skipFiniteCheck=True)
            if self._stale(lr_curve, trace, tuple(lr_cell)):
                shown = _decimated(trace, "lr", lambda t=trace: np.column_stack(_log_lr(t)), tuple(lr_cell))
                lr_curve.setData(shown[:, 0], shown[:, 1], skipFiniteCheck=True)
        yield
        longest = self._longest()
        with QSignalBlocker(self.scrubber):
            self.scrubber.setRange(0, longest)
        if self.shown_step is not None and not self._timer.isActive():
            self.shown_step = min(self.shown_step, longest)
        self._draw_paths(race)
        self._update_legend(race)

    def _stale(self, item, trace, *scale) -> bool:
        """Whether ``item`` must be set again to show ``trace`` at ``scale`` (and note that it will be)."""
        old = self._drawn_with.get(item)
        if old is not None and old[0] is trace and old[1] == scale:
            return False
        self._drawn_with[item] = (trace, scale)
        return True


    @staticmethod
    def _fit(plot: pg.PlotItem, steps: int, ys: list[np.ndarray], fill: float = 0.5) -> None:
        """Set a side plot's range here, before the paint, so a change costs one paint
        (auto-range would re-range during the paint and ask for a second one). ``ys`` are log10
        values: the range snaps out to whole decades and is kept while the curves fit inside it and
        fill at least ``fill`` of it, so a drag re-labels the axis only now and then."""
        if ys:
            lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
            shown = getattr(plot, "_decades", None) if getattr(plot, "_steps", None) == steps else None
            decades = held_range(shown, (math.floor(lo - 0.05), math.ceil(hi + 0.05)), fill)
            if decades == shown:
                return
            plot._decades, plot._steps = decades, steps
            plot.setRange(xRange=(0, steps), yRange=decades, padding=0)
            plot.vb.prepareForPaint()  # apply the new view transform now, not during the paint

    def _draw_paths(self, race: Race) -> None:
        step = self._longest() if self.shown_step is None else self.shown_step
        heads, head_brushes, ends, end_pens = [], [], [], []
        cell = tuple(np.array(self.map.vb.viewPixelSize()) / 2)  # half a pixel, in data units
        antialias = not self._moving
        for paths, traces in ((self.paths, race.traces), (self.twin_paths, race.twins)):
            for name, trace in traces.items():
                shown = trace.points[: step + 1]
                if self._stale(paths[name], trace, step, cell, antialias):
                    drawn = _decimated(trace, "path", shown, cell) if step + 1 >= len(trace.points) \
                        else shown[on_screen_changes(shown, np.array(cell))]  # a replayed prefix: made once, drawn once
                    paths[name].setData(drawn[:, 0], drawn[:, 1], skipFiniteCheck=True, antialias=antialias)
                if paths is self.twin_paths:
                    continue
                heads.append(shown[-1])
                head_brushes.append(self.brushes[name])
                if trace.diverged_at is not None and step >= len(trace.points) - 1:
                    ends.append(trace.points[-1])
                    end_pens.append(pg.mkPen(self.colors[name], width=3))
        self.heads.setData(pos=np.array(heads).reshape(-1, 2), brush=head_brushes)
        if ends or self.ends.data.size:  # no divergence before or now: nothing to set
            self.ends.setData(pos=np.array(ends).reshape(-1, 2), pen=end_pens, brush=None)
        with QSignalBlocker(self.scrubber):
            self.scrubber.setValue(step)
        text = tr("Step {step} of {total}").format(step=step, total=self._longest())
        if self.scrub_label.text() != text:
            self.scrub_label.setText(text)

    def head_of(self, name: str) -> np.ndarray:
        """Where the moving marker of optimizer ``name`` is drawn, (2,)."""
        index = list(self.result.traces).index(name)
        return np.array([self.heads.data["x"][index], self.heads.data["y"][index]])

    def _update_legend(self, race: Race) -> None:
        """One legend row per racing optimizer, marked when it diverged, and one for the dashed compared
        schedule; the step goes to the status bar (a legend text that changes with every drag re-lays
        out every plot)."""
        rows = list(race.traces) + (["twin"] if race.twins else [])
        if self._legend_rows != rows:
            self.legend.clear()
            for name in race.traces:
                self.legend.addItem(self.paths[name], name)
            if race.twins:
                self.legend.addItem(self.twin_paths[next(iter(race.twins))], "twin")
            self._legend_rows = rows
        diverged = []
        for (_, label), (name, trace) in zip(self.legend.items, race.traces.items()):
            text = pick(*NAMES[name])
            if trace.diverged_at is not None:
                diverged.append(text + " " + tr("diverged at step {k}").format(k=trace.diverged_at))
                text += "  ✗ " + tr("diverged")
            if label.text != text:  # a new text re-lays out the legend: only when it changes
                label.setText(text)
        if race.twins:
            compare = pick(*COMPARE[self.values["compare_schedule"]])
            label = self.legend.items[-1][1]
            text = tr("dashed: {schedule}").format(schedule=compare)
            if label.text != text:
                label.setText(text)
            for name, trace in race.twins.items():
                if trace.diverged_at is not None:
                    diverged.append(tr("{name} with {schedule} diverged at step {k}").format(
                        name=pick(*NAMES[name]), schedule=compare, k=trace.diverged_at))
        height = int(self.legend.minimumHeight() + 2 * self.style_.point_size)
        if self.legend_view.height() != height:  # the legend's own view is as tall as its rows
            self.legend_view.setFixedHeight(height)
        if diverged:
            self.message.emit("; ".join(diverged), False)


_DRAWN = weakref.WeakKeyDictionary()  # trace -> {what: array}: a cached trace is drawn from arrays made once


def _memo(trace, key: tuple, make) -> np.ndarray:
    """``make()``, remembered for ``trace`` (as long as the trace lives) under ``key``."""
    arrays = _DRAWN.get(trace)
    if arrays is None:
        arrays = _DRAWN[trace] = {}
    if key not in arrays:
        if len(arrays) >= 8:  # a few curves at the current scales per trace (a few MB for all cached traces)
            arrays.clear()
        arrays[key] = make()
    return arrays[key]


def _log_loss(trace, f_min: float) -> np.ndarray:
    """log10(loss − min) per point, (n + 1,), floored at 1e-12 (the minimum itself)."""
    return _memo(trace, ("loss", f_min), lambda: np.log10(np.maximum(trace.losses - f_min, 1e-12)))


def _log_lr(trace) -> tuple[np.ndarray, np.ndarray]:
    """(steps, log10 lr) of the steps whose lr is above 0 (a log axis cannot show lr = 0: cosine at
    T_max with eta_min = 0), each (k,)."""
    def make():
        positive = trace.lrs > 0
        return np.arange(1, len(trace.lrs) + 1)[positive], np.log10(trace.lrs[positive])
    return _memo(trace, ("lr",), make)


def _decimated(trace, what: str, xy, cell: tuple) -> np.ndarray:
    """The points of curve ``what`` of ``trace`` worth drawing at half-pixel ``cell`` (see
    on_screen_changes), remembered per trace and scale. ``xy``: the (n, 2) points, or a function making them."""
    def make():
        points = xy() if callable(xy) else xy
        return points[on_screen_changes(points, np.array(cell))] if len(points) else points
    return _memo(trace, (what, cell), make)
