"""Activation functions, their derivatives and properties, softmax, weight initialisation and
gradient flow through a deep MLP.

Qt-free and torch-free (numpy + stdlib), float64 throughout. Every activation follows
``torch.nn.functional`` (names, parameters, defaults and the derivative autograd uses at a kink);
the tests check values, first and second derivatives against torch autograd.

Activations
    :data:`ACTIVATIONS` maps a name to an :class:`Activation` (label, parameters with torch's
    defaults, formula, kinks); "linear" is the identity (torch.nn.Identity: no activation at all). :func:`evaluate` gives f, f' and f'' in closed form. At a kink the
    first derivative is the one torch's autograd uses: relu'(0) = 0, leaky_relu'(0) =
    negative_slope, elu'(0) = alpha, selu'(0) = scale * alpha, relu6'(0) = relu6'(6) = 0,
    hardsigmoid'(+-3) = 0, hardswish'(-3) = 0 and hardswish'(3) = 1; the second derivative there
    is 0, as torch's double backward gives. Deviations from torch: hardsigmoid' is exactly 1/6
    inside (-3, 3) (torch's float64 kernel uses the float32 constant 0.16666667163..., 3e-8 off),
    and where torch's formula overflows or cancels (softplus with a large threshold, hardswish
    beyond 3e307, 1 - tanh^2 and 1 + erf in the tails) the value here is the accurate one.

    Nothing here emits a numpy warning for finite input: the formulas are written so that no
    intermediate overflows (sigmoid via exp(-|x|), softplus via log1p(exp(-|z|)), ELU via expm1 of
    min(x, 0), Mish and the tanh GELU via sigmoids, the exact GELU via W. J. Cody's rational
    approximations of erfc). A result that is itself beyond float64 (leaky_relu(-1e308) with
    negative_slope=2) is +-inf.

Properties
    :func:`properties` measures range, steepest slope, saturation, zero-centring, monotonicity and
    the minimum from :func:`evaluate` on a dense grid, one-sided limits at the kinks, far points
    (+-1e6) for the limits at +-inf, and a refinement of interior extrema to machine precision.

Networks
    :func:`gradient_flow` runs a seeded MLP forward and backward by hand and reports per-layer
    statistics; it equals the same network built from ``torch.nn.Linear`` layers.
    :func:`collapse` multiplies its weight matrices into one: with the linear activation (and no
    layer norm) the whole network is that single matrix (plus a constant offset from the biases),
    which it checks on the network's own inputs; with any other activation it is not.
"""

from __future__ import annotations

import math
import numbers
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "Activation",
    "Curves",
    "GradientFlow",
    "Product",
    "Properties",
    "SoftmaxResult",
    "Collapse",
    "calculate_gain",
    "collapse",
    "evaluate",
    "gradient_flow",
    "properties",
    "recommended_gain",
    "softmax",
    "weight_product",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT1_2 = 0.707106781186547524401  # torch's M_SQRT1_2
_INV_SQRT_2PI = 0.398942280401432677940  # M_2_SQRTPI * M_SQRT1_2 * 0.5
_TANH_GELU_K = 0.797884560802865355880  # sqrt(2 / pi) = M_SQRT2 * M_2_SQRTPI * 0.5
_TANH_GELU_C = 0.044715


# ---- validation ---------------------------------------------------------------------------------
def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(name: str, value: object) -> float:
    if not _is_real(value):
        raise ValueError(f"{name}: must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return float(value)


def _positive(name: str, value: object) -> float:
    value = _finite(name, value)
    if value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")
    return value


def _integer(name: str, value: object, lo: int, hi: int) -> int:
    if not (isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= value <= hi):
        raise ValueError(f"{name}: must be an integer from {lo} to {hi}, got {value!r}")
    return int(value)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: must be True or False, got {value!r}")
    return bool(value)


def _choice(name: str, value: object, known) -> str:
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"{name}: unknown {value!r} (known: {', '.join(known)})")
    return value


# ---- numerical helpers --------------------------------------------------------------------------
def _sigmoid_pair(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigmoid(z) and sigmoid(-z) = 1 - sigmoid(z), each to full relative precision."""
    e = np.exp(-np.abs(z))
    r = 1.0 / (1.0 + e)
    er = e * r
    positive = z >= 0
    return np.where(positive, r, er), np.where(positive, er, r)


def _scale(a, x: np.ndarray) -> np.ndarray:
    """a * x, +-inf (silently) where the true product is beyond float64."""
    with np.errstate(over="ignore"):
        return a * x


def _rational(coefficients: np.ndarray, x: np.ndarray) -> np.ndarray:
    """p(x) / q(x) for 1-D x, from ``_stacked`` coefficients: both polynomials go through one
    Horner pass on a stacked array (half the numpy calls)."""
    out = np.empty((2, x.size))
    out[:] = coefficients[0]
    for c in coefficients[1:]:
        out *= x
        out += c
    return out[0] / out[1]


def _stacked(p: tuple[float, ...], q: tuple[float, ...]) -> np.ndarray:
    """(degree + 1, 2, 1) coefficients of p and q (equal length, highest degree first)."""
    return np.array([p, q]).T[:, :, None].copy()


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969)
# 631-637, as in netlib's specfun CALERF: erf on |x| <= 0.46875, erfc on (0.46875, 4] and above.
_ERF = _stacked(
    (0.185777706184603153, 3.16112374387056560, 113.864154151050156, 377.485237685302021, 3209.37758913846947),
    (1.0, 23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062))
_ERFC = _stacked(
    (2.15311535474403846e-8, 0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131,
     881.952221241769090, 1712.04761263407058, 2051.07837782607147, 1230.33935479799725),
    (1.0, 15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
     4362.61909014324716, 3439.36767414372164, 1230.33935480374942))
_ERFC_TAIL = _stacked(
    (0.0163153871373020978, 0.305326634961232344, 0.360344899949804439, 0.125781726111229246,
     0.0160837851487422766, 6.58749161529837803e-4),
    (1.0, 2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191,
     0.00233520497626869185))
_ONE_OVER_SQRT_PI = 0.56418958354775628695


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """exp(-y^2) without the rounding error of forming y^2: y = a + (y - a), a = y to 1/16."""
    a = np.trunc(y * 16.0) / 16.0
    return np.exp(-a * a) * np.exp(-(y - a) * (y + a))


def _erfc_positive(y: np.ndarray, tail: bool) -> np.ndarray:
    """erfc(y) for 1-D y in (0.46875, 4] (tail False) or y > 4 (tail True)."""
    if not tail:
        return _exp_minus_square(y) * _rational(_ERFC, y)
    y = np.minimum(y, 30.0)  # erfc(30) is below the smallest double
    s = 1.0 / (y * y)
    return _exp_minus_square(y) * (_ONE_OVER_SQRT_PI - s * _rational(_ERFC_TAIL, s)) / y


def _erfc(x: np.ndarray) -> np.ndarray:
    """The complementary error function, elementwise, to a few ulp (relative, also in the tail)."""
    flat = x.ravel()
    y = np.abs(flat)
    out = np.empty_like(y)
    small, beyond = y <= 0.46875, y > 4.0
    inside = np.flatnonzero(small)
    if inside.size:
        xs = flat[inside]
        out[inside] = 1.0 - xs * _rational(_ERF, xs * xs)
    for part, tail in ((np.flatnonzero(~(small | beyond)), False), (np.flatnonzero(beyond), True)):
        if part.size:
            value = _erfc_positive(y[part], tail)
            out[part] = np.where(flat[part] < 0, 2.0 - value, value)  # erfc(-y) = 2 - erfc(y)
    return out.reshape(x.shape)


# ---- activation kernels: (x, params, second) -> (f, f', f'' or None) ---------------------------
_Result = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _zeros_if(second: bool, x: np.ndarray) -> np.ndarray | None:
    return np.zeros_like(x) if second else None


def _sigmoid(x, p, second) -> _Result:
    s, c = _sigmoid_pair(x)
    dy = s * c
    return s, dy, dy * (c - s) if second else None


def _tanh(x, p, second) -> _Result:
    y = np.tanh(x)
    e = np.exp(-2.0 * np.minimum(np.abs(x), 400.0))
    dy = 4.0 * e / ((1.0 + e) * (1.0 + e))  # sech^2, accurate where 1 - tanh^2 cancels
    return y, dy, -2.0 * y * dy if second else None


def _relu(x, p, second) -> _Result:
    return np.maximum(x, 0.0), (x > 0).astype(np.float64), _zeros_if(second, x)


def _leaky_relu(x, p, second) -> _Result:
    slope = p["negative_slope"]
    positive = x > 0
    return (np.where(positive, x, _scale(slope, x)), np.where(positive, 1.0, slope),
            _zeros_if(second, x))


def _elu_parts(x: np.ndarray, alpha: float, scale: float, second: bool) -> _Result:
    # torch's elu kernel: scale * x for x > 0, (alpha * scale) * (exp(x) - 1) otherwise
    negative = np.minimum(x, 0.0)
    positive = x > 0
    coefficient = alpha * scale
    slope = coefficient * np.exp(negative)
    y = np.where(positive, _scale(scale, x), coefficient * np.expm1(negative))
    return y, np.where(positive, scale, slope), np.where(x < 0, slope, 0.0) if second else None


def _elu(x, p, second) -> _Result:
    return _elu_parts(x, p["alpha"], 1.0, second)


def _selu(x, p, second) -> _Result:
    return _elu_parts(x, _SELU_ALPHA, _SELU_SCALE, second)


def _gelu(x, p, second) -> _Result:
    cdf = 0.5 * _erfc(-x * _SQRT1_2)
    clipped = np.clip(x, -40.0, 40.0)  # the density is 0 in float64 beyond
    pdf = np.exp(-0.5 * clipped * clipped) * _INV_SQRT_2PI
    dy = cdf + x * pdf
    return x * cdf, dy, pdf * (2.0 - clipped * clipped) if second else None


def _gelu_tanh(x, p, second) -> _Result:
    # 0.5 (1 + tanh(u)) = sigmoid(2u) and 1 - tanh(u)^2 = 4 sigmoid(2u) sigmoid(-2u)
    xc = np.clip(x, -1e3, 1e3)  # sigmoid(2u) is exactly 0 or 1 beyond
    x2 = xc * xc
    u = _TANH_GELU_K * (xc + _TANH_GELU_C * x2 * xc)
    du = _TANH_GELU_K * (1.0 + 3.0 * _TANH_GELU_C * x2)
    s, c = _sigmoid_pair(2.0 * u)
    sc = s * c
    dy = s + 2.0 * sc * du * xc
    if not second:
        return x * s, dy, None
    d2y = sc * (4.0 * du + 4.0 * xc * (c - s) * du * du + 12.0 * _TANH_GELU_K * _TANH_GELU_C * x2)
    return x * s, dy, d2y


def _swish(x, p, second) -> _Result:
    beta = p["beta"]
    z = np.clip(_scale(beta, x), -1e3, 1e3)  # sigmoid(z) is exactly 0 or 1 beyond
    s, c = _sigmoid_pair(z)
    sc = s * c
    dy = s + sc * z
    return x * s, dy, beta * sc * (2.0 + z * (c - s)) if second else None


def _mish(x, p, second) -> _Result:
    # t = tanh(softplus(x)) = n / d with n = e^2 + 2e, d = n + 2, e = exp(x); for x > 0 divide
    # through by e^2 (w = exp(-x)), so that nothing overflows and 1 - t^2 keeps its precision.
    w = np.exp(-np.abs(x))
    positive = x > 0
    n_neg = w * (w + 2.0)
    d_neg = n_neg + 2.0
    d_pos = 1.0 + 2.0 * w + 2.0 * w * w
    t = np.where(positive, (1.0 + 2.0 * w) / d_pos, n_neg / d_neg)
    one_minus_t2 = np.where(positive, 4.0 * (w * (1.0 + w)) ** 2 / (d_pos * d_pos),
                            4.0 * (n_neg + 1.0) / (d_neg * d_neg))
    s, c = _sigmoid_pair(x)
    slope = one_minus_t2 * s  # d t / dx
    dy = t + slope * x
    return x * t, dy, 2.0 * slope + slope * (c - 2.0 * t * s) * x if second else None


def _softplus(x, p, second) -> _Result:
    beta, threshold = p["beta"], p["threshold"]
    z = _scale(beta, x)
    linear = z > threshold  # torch: x itself where beta * x > threshold
    zc = np.where(linear, 0.0, z)
    s, c = _sigmoid_pair(zc)
    with np.errstate(over="ignore"):  # only a subnormal beta overflows here
        curved = (np.maximum(zc, 0.0) + np.log1p(np.exp(-np.abs(zc)))) / beta
    y = np.where(linear, x, curved)
    dy = np.where(linear, 1.0, s)
    return y, dy, np.where(z < threshold, beta * s * c, 0.0) if second else None


def _hardsigmoid(x, p, second) -> _Result:
    inside = (x > -3.0) & (x < 3.0)
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0, np.where(inside, 1.0 / 6.0, 0.0), _zeros_if(second, x)


def _hardswish(x, p, second) -> _Result:
    xc = np.clip(x, -3.0, 3.0)
    y = np.where(x > 3.0, x, xc * (xc + 3.0) / 6.0)
    dy = np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 3.0 + 0.5, 1.0))
    return y, dy, np.where((x > -3.0) & (x < 3.0), 1.0 / 3.0, 0.0) if second else None


def _relu6(x, p, second) -> _Result:
    inside = (x > 0.0) & (x < 6.0)
    return np.clip(x, 0.0, 6.0), inside.astype(np.float64), _zeros_if(second, x)


def _linear(x, p, second) -> _Result:
    return x.copy(), np.ones_like(x), _zeros_if(second, x)


# ---- the catalogue -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """One activation function.

    name: the key in :data:`ACTIVATIONS`; label: display name; params: parameter name -> torch's
    default (read-only, empty if none); formula: plain-text formula; kinks: the x where the pieces
    of a piecewise definition meet, so f' jumps (f'' for ELU with alpha = 1) and torch's autograd
    uses one side's derivative. Softplus has none listed: its switch to x above
    threshold / beta is a float64 shortcut, not part of the function.
    """

    name: str
    label: str
    params: Mapping[str, float]
    formula: str
    kinks: tuple[float, ...]


_TABLE: tuple[tuple[Activation, Callable[..., _Result]], ...] = tuple(
    (Activation(name, label, MappingProxyType(dict(params)), formula, kinks), kernel)
    for name, label, params, formula, kinks, kernel in (
        ("sigmoid", "Sigmoid", {}, "1 / (1 + exp(-x))", (), _sigmoid),
        ("tanh", "Tanh", {}, "(exp(x) - exp(-x)) / (exp(x) + exp(-x))", (), _tanh),
        ("relu", "ReLU", {}, "max(0, x)", (0.0,), _relu),
        ("leaky_relu", "Leaky ReLU", {"negative_slope": 0.01},
         "max(0, x) + negative_slope * min(0, x)", (0.0,), _leaky_relu),
        ("elu", "ELU", {"alpha": 1.0}, "x if x > 0 else alpha * (exp(x) - 1)", (0.0,), _elu),
        ("selu", "SELU", {},
         "scale * (x if x > 0 else alpha * (exp(x) - 1)), scale = 1.0507..., alpha = 1.6733...",
         (0.0,), _selu),
        ("gelu", "GELU", {}, "x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))", (), _gelu),
        ("gelu_tanh", "GELU (tanh approx.)", {},
         "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))", (), _gelu_tanh),
        ("swish", "Swish / SiLU", {"beta": 1.0}, "x * sigmoid(beta * x)", (), _swish),
        ("mish", "Mish", {}, "x * tanh(softplus(x)) = x * tanh(log(1 + exp(x)))", (), _mish),
        ("softplus", "Softplus", {"beta": 1.0, "threshold": 20.0},
         "log(1 + exp(beta * x)) / beta, or x where beta * x > threshold", (), _softplus),
        ("hardsigmoid", "Hard sigmoid", {}, "min(max(x + 3, 0), 6) / 6", (-3.0, 3.0), _hardsigmoid),
        ("hardswish", "Hard swish", {}, "x * min(max(x + 3, 0), 6) / 6", (-3.0, 3.0), _hardswish),
        ("relu6", "ReLU6", {}, "min(max(0, x), 6)", (0.0, 6.0), _relu6),
        ("linear", "Linear (identity)", {}, "x", (), _linear),
    )
)
ACTIVATIONS: Mapping[str, Activation] = MappingProxyType({a.name: a for a, _ in _TABLE})
_KERNELS: Mapping[str, Callable[..., _Result]] = MappingProxyType({a.name: k for a, k in _TABLE})


def _activation_params(name: str, given: Mapping[str, object]) -> dict[str, float]:
    """The defaults of ``name`` overridden by ``given``, checked (ValueError naming the parameter)."""
    defaults = ACTIVATIONS[name].params
    unknown = [key for key in given if key not in defaults]
    if unknown:
        known = ", ".join(defaults) or "none"
        raise ValueError(f"{unknown[0]}: not a parameter of {name} (its parameters: {known})")
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _finite(key, value)
    if name == "softplus" and out["beta"] <= 0:
        raise ValueError(f"beta: must be > 0 for softplus, got {out['beta']!r}")
    return out


# ---- evaluate -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curves:
    """An activation sampled at ``x``: x, y = f(x), dy = f'(x), d2y = f''(x), all shaped like x."""

    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    d2y: np.ndarray


def evaluate(name: str, x: ArrayLike, **params: float) -> Curves:
    """f, f' and f'' of activation ``name`` at ``x`` (any shape, finite), in closed form.

    ``params`` override torch's defaults (``ACTIVATIONS[name].params``); unknown names and
    non-finite values raise ValueError, as does softplus with beta <= 0. At a kink f' is the
    value torch's autograd uses (see the module docstring) and f'' is 0.
    """
    name = _choice("name", name, ACTIVATIONS)
    p = _activation_params(name, params)
    x = np.array(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("x: must contain only finite numbers")
    y, dy, d2y = _KERNELS[name](x, p, True)
    return Curves(x, np.asarray(y), np.asarray(dy), np.asarray(d2y))


# ---- properties ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Properties:
    """Measured properties of an activation (see :func:`properties` for the rules).

    output_range: (inf f, sup f), -inf/inf where unbounded. max_derivative, argmax_derivative:
    sup f' and where. saturation: the intervals of [-x_lim, x_lim] where |f'| < threshold,
    ascending, endpoints rounded to 9 decimals. zero_centred: f(0) = 0 and inf f < 0 < sup f.
    monotonic: f' >= 0 everywhere (non-decreasing). minimum, argmin: inf f and where.
    """

    output_range: tuple[float, float]
    max_derivative: float
    argmax_derivative: float
    saturation: tuple[tuple[float, float], ...]
    zero_centred: bool
    monotonic: bool
    minimum: float
    argmin: float


_FAR = 1e6  # far enough that every activation here has reached its asymptote in float64
_REFINE_ROUNDS = 10


def _feature_scale(p: Mapping[str, float]) -> float:
    """How far the features of an activation reach, in units of the default: 1 / beta for the
    beta-parameterised ones (swish, softplus), 1 otherwise."""
    beta = abs(p.get("beta", 1.0))
    return 1.0 if beta == 0 else max(1.0, 1.0 / beta)


def _symmetric_grid(half_width: float, n_half: int) -> np.ndarray:
    half = np.linspace(0.0, half_width, n_half + 1)
    return np.concatenate([-half[:0:-1], half])


def _first_switch(predicate: Callable[[np.ndarray], np.ndarray], inside: np.ndarray,
                  outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Narrow brackets [inside, outside] (predicate True at inside, False at outside, either order)
    around the first switch seen from ``inside``, by 64-way subdivision, to about an ulp."""
    a, b = inside.astype(np.float64), outside.astype(np.float64)
    steps = np.linspace(0.0, 1.0, 65)
    for _ in range(_REFINE_ROUNDS):
        points = a[:, None] + (b - a)[:, None] * steps
        points[:, 0], points[:, -1] = a, b
        holds = predicate(points)
        holds[:, 0], holds[:, -1] = True, False
        j = np.argmax(~holds, axis=1)
        rows = np.arange(len(a))
        a, b = points[rows, j - 1], points[rows, j]
    return a, b


@dataclass(frozen=True)
class _Extremum:
    value: float
    where: float


def _infimum(kernel, p, grid: np.ndarray, kinks: tuple[float, ...], far: float, which: int) -> _Extremum:
    """inf over the real line of g = -f' (which = 1), f (which = 0) or -f (which = -1).

    Candidates: the grid (refined where its minimum is interior), the one-sided limits at each
    kink (reported at the kink) and g(+-inf) from the far points. A value attained on a flat
    stretch (g' exactly 0) is reported at the attaining point nearest 0; one that is only
    approached towards +-inf (float64 rounding may reach it at finite x) at +-inf.
    """
    def g_and_slope(x):
        y, dy, d2y = kernel(x, p, which == 1)
        if which == 1:
            return -dy, -d2y
        return (y, dy) if which == 0 else (-y, -dy)

    sided = np.array([np.nextafter(k, side) for k in kinks for side in (-np.inf, np.inf)])
    xs = np.concatenate([grid, sided])
    at = np.concatenate([grid, np.repeat(np.asarray(kinks, dtype=np.float64), 2)])
    g, slope = g_and_slope(xs)

    ends = np.array([-far, far])
    y_far, dy_far, d2y_far = kernel(ends, p, True)
    if which == 1:
        g_far = -dy_far
    else:  # f is unbounded on a side where f' has not died out
        limit = np.where(dy_far == 0, y_far, np.where(dy_far * np.array([-1.0, 1.0]) > 0, np.inf, -np.inf))
        g_far = limit if which == 0 else -limit
    side = int(np.argmin(g_far))
    best_far = float(g_far[side])

    i = int(np.argmin(g))
    best = float(g[i])
    tol = 1e-12 * max(1.0, abs(best))
    if best_far < best - tol:
        return _Extremum(best_far, (-math.inf, math.inf)[side])
    attaining = g <= best + tol
    if best_far <= best + tol:
        attaining &= slope == 0
        if not attaining.any():
            return _Extremum(best_far, (-math.inf, math.inf)[side])
    if np.count_nonzero(attaining) > 1:
        j = int(np.argmin(np.where(attaining, np.abs(at), np.inf)))
        return _Extremum(best, float(at[j]))
    if 0 < i < len(grid) - 1 and slope[i] != 0:  # an isolated interior minimum: sharpen it
        before, after = (i - 1, i) if slope[i] > 0 else (i, i + 1)
        if slope[before] < 0 < slope[after]:
            a, b = _first_switch(lambda x: g_and_slope(x)[1] < 0, xs[[before]], xs[[after]])
            x_star = np.array([a[0], b[0]])
            g_star = g_and_slope(x_star)[0]
            k = int(np.argmin(g_star))
            if g_star[k] <= best:
                return _Extremum(float(g_star[k]), float(x_star[k]))
    return _Extremum(best, float(at[i]))


def _saturation(kernel, p, x_lim: float, threshold: float, kinks) -> tuple[tuple[float, float], ...]:
    grid = np.union1d(_symmetric_grid(x_lim, 2000), [k for k in kinks if -x_lim < k < x_lim])

    def saturated(x):
        return np.abs(kernel(x, p, False)[1]) < threshold

    inside = saturated(grid)
    step = np.diff(np.concatenate([[0], inside.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(step == 1), np.flatnonzero(step == -1) - 1
    if not len(starts):
        return ()

    lo = grid[starts].copy()
    hi = grid[stops].copy()
    open_lo, open_hi = starts > 0, stops < len(grid) - 1
    if open_lo.any():
        a, b = _first_switch(saturated, grid[starts[open_lo]], grid[starts[open_lo] - 1])
        lo[open_lo] = 0.5 * (a + b)
    if open_hi.any():
        a, b = _first_switch(saturated, grid[stops[open_hi]], grid[stops[open_hi] + 1])
        hi[open_hi] = 0.5 * (a + b)
    lo, hi = np.round(lo, 9), np.round(hi, 9)
    lo[~open_lo], hi[~open_hi] = -x_lim, x_lim
    return tuple((float(a), float(b)) for a, b in zip(lo, hi) if a < b)


def properties(name: str, threshold: float = 0.01, x_lim: float = 10.0, **params: float) -> Properties:
    """Range, steepest slope, saturation, zero-centring, monotonicity and minimum of activation
    ``name`` with ``params`` (as in :func:`evaluate`).

    Everything is measured from :func:`evaluate`: a dense grid over [-R, R], R = max(x_lim, 30)
    (times 1/beta for a small beta), the one-sided limits at each kink, and the far points +-1e6
    (times 1/beta) for the limits at +-inf: a side where f' is still nonzero there is unbounded.
    Interior extrema are refined to machine precision (GELU: minimum -0.16997 at -0.75179).

    Rules: an extremum reached on a whole stretch (relu's minimum on (-inf, 0], its slope 1 on
    (0, inf)) is reported at the stretch's point nearest 0, a kink's one-sided limit counting as
    the kink (relu: min 0 at 0, max slope 1 at 0); one only approached as x -> +-inf at +-inf
    (sigmoid: minimum 0 at -inf; softplus: slope 1 at inf). ``saturation`` lists the intervals of
    [-x_lim, x_lim] where |f'| < ``threshold``, found on a 4001-point grid and sharpened by
    bisection (an end at +-x_lim means the interval runs on). zero_centred: f(0) = 0 and
    inf f < 0 < sup f. monotonic: f' >= 0 everywhere.

    Softplus is analysed without its threshold (a float64 shortcut that changes its value by at
    most log1p(exp(-threshold)) / beta), so its ``threshold`` is not accepted here; ``threshold``
    is the saturation level.
    """
    name = _choice("name", name, ACTIVATIONS)
    threshold = _positive("threshold", threshold)
    x_lim = _positive("x_lim", x_lim)
    p = _activation_params(name, params)
    if name == "softplus":
        p["threshold"] = math.inf
    kernel = _KERNELS[name]
    kinks = ACTIVATIONS[name].kinks
    scale = _feature_scale(p)
    reach = max(x_lim, 30.0 * scale)
    grid = np.union1d(_symmetric_grid(reach, 6000), kinks)
    far = _FAR * scale

    low = _infimum(kernel, p, grid, kinks, far, 0)
    high = _infimum(kernel, p, grid, kinks, far, -1)
    steepest = _infimum(kernel, p, grid, kinks, far, 1)

    sided = [np.nextafter(k, s) for k in kinks for s in (-np.inf, np.inf)]
    slopes = kernel(np.concatenate([grid, sided, [-far, far]]), p, False)[1]
    f0 = float(kernel(np.zeros(1), p, False)[0][0])
    return Properties(
        output_range=(low.value, -high.value),
        max_derivative=-steepest.value,
        argmax_derivative=steepest.where,
        saturation=_saturation(kernel, p, x_lim, threshold, kinks),
        zero_centred=bool(abs(f0) <= 1e-12 and low.value < 0 < -high.value),
        monotonic=bool(np.all(slopes >= 0)),
        minimum=low.value,
        argmin=low.where,
    )


# ---- softmax ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SoftmaxResult:
    """probabilities: (n,) softmax(logits / T); jacobian: (n, n) d p / d logits = (diag(p) - p p^T) / T."""

    probabilities: np.ndarray
    jacobian: np.ndarray


def softmax(logits: ArrayLike, temperature: float = 1.0) -> SoftmaxResult:
    """Softmax of ``logits`` (n,) at ``temperature`` T (finite, > 0) and its Jacobian, computed
    stably (the largest logit is subtracted first), so [1000, 0, -1000] gives [1, 0, 0]."""
    temperature = _positive("temperature", temperature)
    z = np.array(logits, dtype=np.float64)
    if z.ndim != 1 or z.size == 0 or not np.all(np.isfinite(z)):
        raise ValueError(f"logits: must be a non-empty 1-D array of finite numbers, got shape {z.shape}")
    z = z / temperature
    e = np.exp(z - z.max())
    p = e / e.sum()
    return SoftmaxResult(p, (np.diag(p) - np.outer(p, p)) / temperature)


# ---- initialisation -----------------------------------------------------------------------------
INITS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal")
_LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d")
_GAIN_NAMES = _LINEAR_FNS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain``: 1 for the linear/conv names and sigmoid, 5/3 for tanh,
    sqrt(2) for relu, sqrt(2 / (1 + negative_slope^2)) for leaky_relu (``param`` = negative_slope,
    default 0.01), 3/4 for selu. ``param`` is ignored for the others, as in torch."""
    nonlinearity = _choice("nonlinearity", nonlinearity, _GAIN_NAMES)
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    slope = 0.01 if param is None else _finite("param", param)
    return math.sqrt(2.0 / (1 + slope ** 2))


def recommended_gain(activation: str, **params: float) -> float:
    """The gain torch recommends for our activation ``activation``: sigmoid 1, tanh 5/3, relu
    sqrt(2), leaky_relu sqrt(2 / (1 + negative_slope^2)), selu 3/4, linear 1 (torch's "linear").
    torch has no entry for the others (elu, gelu, gelu_tanh, swish, mish, softplus, hardsigmoid,
    hardswish, relu6): 1.0."""
    activation = _choice("activation", activation, ACTIVATIONS)
    p = _activation_params(activation, params)
    if activation in ("sigmoid", "tanh", "relu", "selu", "linear"):
        return calculate_gain(activation)
    if activation == "leaky_relu":
        return calculate_gain("leaky_relu", p["negative_slope"])
    return 1.0


def _init_scale(init: str, width: int, gain: float | None, std: float) -> float:
    """The standard deviation (normal inits) or bound (uniform inits) of torch.nn.init's ``init``
    for a (width, width) weight: fan_in = fan_out = width."""
    if init == "normal":
        return std
    if gain is None:
        gain = 1.0 if init.startswith("xavier") else calculate_gain("leaky_relu", 0)
    if init == "xavier_uniform":
        return gain * math.sqrt(6.0 / (2 * width))
    if init == "xavier_normal":
        return gain * math.sqrt(2.0 / (2 * width))
    if init == "kaiming_uniform":
        return gain * math.sqrt(3.0 / width)
    return gain / math.sqrt(width)  # kaiming_normal, mode fan_in


class _Draws:
    """The random numbers of one (seed, batch, width, family): inputs, upstream, and unit weights
    (standard normal, or uniform on [0, 1)) for as many layers as have been asked for so far. The
    weights continue the generator's stream, so a deeper network extends a shallower one. The last
    scaled weights are kept too. All arrays handed out are read-only."""

    def __init__(self, seed: int, batch: int, width: int, uniform: bool):
        self.rng = np.random.default_rng(seed)
        self.inputs = _read_only(self.rng.standard_normal((batch, width)))
        self.upstream = _read_only(self.rng.standard_normal((batch, width)))
        self.uniform = uniform
        self.unit = np.empty((0, width, width))
        self.scaled: tuple[tuple[int, float], np.ndarray] | None = None

    @property
    def nbytes(self) -> int:
        return self.unit.nbytes + (self.scaled[1].nbytes if self.scaled else 0)

    def weights(self, depth: int, scale: float) -> np.ndarray:
        """(depth, width, width): N(0, scale^2), or U(-scale, scale) computed as numpy's uniform."""
        if self.scaled is not None and self.scaled[0] == (depth, scale):
            return self.scaled[1]
        missing = depth - len(self.unit)
        if missing > 0:
            shape = (missing,) + self.unit.shape[1:]
            more = self.rng.random(shape) if self.uniform else self.rng.standard_normal(shape)
            self.unit = np.concatenate([self.unit, more]) if len(self.unit) else more
        unit = self.unit[:depth]
        weights = unit * (2.0 * scale) - scale if self.uniform else unit * scale
        self.scaled = ((depth, scale), _read_only(weights))
        return weights


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


_DRAWS: OrderedDict[tuple, _Draws] = OrderedDict()
_DRAWS_BUDGET = 48 * 2 ** 20  # bytes; a bigger network is drawn afresh every time
_DRAWS_LOCK = threading.Lock()


def _draws(seed: int, batch: int, width: int, depth: int, uniform: bool,
           scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """inputs, upstream and weights, read-only, cached for the latest (seed, batch, width, family)
    combinations within a memory budget: a slider that changes anything else draws nothing."""
    key = (seed, batch, width, uniform)
    with _DRAWS_LOCK:
        draws = _DRAWS.pop(key, None) or _Draws(seed, batch, width, uniform)
        result = draws.inputs, draws.upstream, draws.weights(depth, scale)
        _DRAWS[key] = draws
        while _DRAWS and sum(d.nbytes for d in _DRAWS.values()) > _DRAWS_BUDGET:
            _DRAWS.popitem(last=False)  # the oldest first; the newest too if it alone is too big
        return result


def _clear_draws() -> None:
    with _DRAWS_LOCK:
        _DRAWS.clear()


def _clear_workspaces() -> None:
    for buffers in list(_ALL_BUFFERS):  # a compute running now keeps its buffers until it returns
        buffers.arrays.clear()


_draws.cache_clear = _clear_draws  # as functools' caches: emptied by whoever measures memory in use


class _Buffers:
    """One thread's reusable buffers (``arrays``: name -> array), held weakly by _ALL_BUFFERS."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}


_WORKSPACE = threading.local()  # a thread's buffers go with it
_ALL_BUFFERS: weakref.WeakSet = weakref.WeakSet()  # every live thread's, to empty them all at once
_WORKSPACE_MAX = 8 * 2 ** 20  # bytes per buffer kept between calls


def _workspace(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float64 array of ``shape``, reused between calls on the same thread when
    small (fresh large allocations cost page faults that dominate the run time)."""
    size = math.prod(shape)
    if size * 8 > _WORKSPACE_MAX:
        return np.empty(shape)
    mine = getattr(_WORKSPACE, "buffers", None)
    if mine is None:
        mine = _WORKSPACE.buffers = _Buffers()
        _ALL_BUFFERS.add(mine)
    mine = mine.arrays
    buffer = mine.get(name)
    if buffer is None or buffer.size < size:
        buffer = np.empty(size)
        mine[name] = buffer
    return buffer[:size].reshape(shape)


_workspace.cache_clear = _clear_workspaces


# ---- gradient flow ------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradientFlow:
    """Per-layer statistics of one forward and backward pass through a deep MLP (l = 1..depth).

    activation_mean, activation_std: (depth,) mean and population std (ddof 0) of h_l over batch
    and units. saturated_fraction: (depth,) fraction of units with |f'(z_l)| < 0.01;
    dead_fraction: (depth,) with f'(z_l) == 0; mean_derivative: (depth,) mean |f'(z_l)|;
    derivative_product: (depth,) its cumulative product. grad_norm: (depth,) Frobenius norm of
    dL/dh_l; weight_grad_norm: (depth,) of dL/dW_l. histograms: (depth, 60) counts of h_l;
    histogram_edges: (depth, 61), spanning each layer's [min, max]. weights: (depth, width,
    width) W_l, applied as h @ W_l.T; inputs: (batch, width); upstream: (batch, width) = dL/dh_depth.
    weights, inputs and upstream are read-only: they are shared with a cache of the random draws.
    outputs: (batch, width) h_depth, the network's map of the inputs (inf throughout once the
    forward pass has overflowed).

    Overflow: from the first layer whose values overflow float64, the forward statistics
    (activation_mean, activation_std, mean_derivative, derivative_product) are inf, the fractions
    0, the histograms all zeros, and every gradient norm is inf (the loss is not finite). If only
    the backward pass overflows, grad_norm and weight_grad_norm are inf from that layer down.
    Nothing is NaN.
    """

    activation_mean: np.ndarray
    activation_std: np.ndarray
    saturated_fraction: np.ndarray
    dead_fraction: np.ndarray
    mean_derivative: np.ndarray
    derivative_product: np.ndarray
    grad_norm: np.ndarray
    weight_grad_norm: np.ndarray
    histograms: np.ndarray
    histogram_edges: np.ndarray
    weights: np.ndarray
    inputs: np.ndarray
    upstream: np.ndarray
    outputs: np.ndarray


_BINS = 60
_UNIT_EDGES = np.linspace(0.0, 1.0, _BINS + 1)
_BIGGEST = np.finfo(np.float64).max
_LAYER_NORM_EPS = 1e-5
_SATURATED = 0.01


def _all_finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite; a finite sum proves it (NaN and inf propagate)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(np.sum(a))):
            return True
    return bool(np.all(np.isfinite(a)))


def _safe_norm(a: np.ndarray) -> float:
    """Frobenius norm, inf if ``a`` holds a non-finite value; no overflow or underflow in the squares."""
    with np.errstate(over="ignore", invalid="ignore"):
        squares = float(np.vdot(a, a))
    if 1e-290 < squares < math.inf:
        return math.sqrt(squares)
    top = float(np.max(np.abs(a)))
    if not math.isfinite(top):
        return math.inf
    if top == 0.0:
        return 0.0
    scaled = a / top
    return top * math.sqrt(float(np.vdot(scaled, scaled)))


def _layer_norm(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F.layer_norm over the last axis without affine: (normalised z, 1 / sqrt(var + eps)). Where
    the squares overflow (|z| > 1e154) the rows are scaled to max |z| = 1 first."""
    with np.errstate(over="ignore", invalid="ignore"):
        centred = z - z.mean(axis=1, keepdims=True)
        var = np.mean(centred * centred, axis=1, keepdims=True)
    if not np.all(np.isfinite(var)):
        top = np.maximum(np.max(np.abs(z), axis=1, keepdims=True), 1.0)
        y = z / top
        centred = y - y.mean(axis=1, keepdims=True)
        root = np.sqrt(np.mean(centred * centred, axis=1, keepdims=True) + _LAYER_NORM_EPS / top / top)
        return centred / root, 1.0 / (root * top)
    root = np.sqrt(var + _LAYER_NORM_EPS)
    return centred / root, 1.0 / root


_STATS_CHUNK = 2 ** 20  # values per batch of layers whose statistics are computed together


def _layer_statistics(h: np.ndarray, slopes: np.ndarray, stats: np.ndarray, histograms: np.ndarray,
                      edges: np.ndarray) -> None:
    """Per layer of finite h (layers, batch, width) and its slopes f'(z): into stats (5, layers)
    the mean and population std of h (scaled down first where the squares could overflow), the
    fractions of |f'| < 0.01 and of f' == 0, and mean |f'|; into histograms (layers, 60) and
    edges (layers, 61) the 60-bin histogram of h over its [min, max] (a single value v, or values
    less than 1e-290 apart, span v +- max(|v|, 1) / 1000)."""
    layers = len(h)
    h = h.reshape(layers, -1)
    slopes = slopes.reshape(layers, -1)
    n = h.shape[1]
    lo, hi = h.min(axis=1), h.max(axis=1)
    factor = np.where(np.maximum(-lo, hi) > 1e150, np.maximum(-lo, hi), 1.0)[:, None]
    scaled = h / factor if np.any(factor != 1.0) else h
    mean = scaled.sum(axis=1) / n
    centred = scaled - mean[:, None]
    stats[0] = mean * factor[:, 0]
    stats[1] = np.sqrt(np.einsum("ij,ij->i", centred, centred) / n) * factor[:, 0]
    magnitude = np.abs(slopes)
    stats[2] = np.count_nonzero(magnitude < _SATURATED, axis=1) / n
    stats[3] = np.count_nonzero(slopes == 0, axis=1) / n
    stats[4] = magnitude.sum(axis=1) / n
    # a single value, or values only subnormal steps apart (a span the bin arithmetic cannot divide by)
    pad = np.where(0.5 * hi - 0.5 * lo < 1e-290, np.maximum(np.abs(lo), 1.0) * 1e-3, 0.0)
    lo, hi = np.maximum(lo - pad, -_BIGGEST), np.minimum(hi + pad, _BIGGEST)
    half_span = 0.5 * hi - 0.5 * lo  # the span itself may exceed float64
    position = h * 0.5
    position -= 0.5 * lo[:, None]
    position *= (_BINS / half_span)[:, None]
    bins = position.astype(np.intp)
    np.minimum(bins, _BINS - 1, out=bins)
    bins += np.arange(layers)[:, None] * _BINS
    histograms[:] = np.bincount(bins.ravel(), minlength=layers * _BINS).reshape(layers, _BINS)
    edges[:] = lo[:, None] * (1.0 - _UNIT_EDGES) + hi[:, None] * _UNIT_EDGES


def gradient_flow(activation: str, init: str, depth: int, width: int, batch: int = 64, seed: int = 0,
                  gain: float | None = None, std: float = 0.01, bias: float = 0.0,
                  residual: bool = False, layer_norm: bool = False, **params: float) -> GradientFlow:
    """One forward and backward pass through a seeded MLP of ``depth`` layers of ``width`` units.

    h_0 = inputs (batch, width), standard normal; for l = 1..depth: z_l = h_{l-1} @ W_l.T + bias
    (the same constant on every unit); with ``layer_norm`` z_l is normalised over the units
    ((z - mean) / sqrt(var + 1e-5), biased var, no affine: F.layer_norm); a_l = f(z_l) with
    activation ``activation`` and ``params``; h_l = h_{l-1} + a_l if ``residual`` else a_l. The
    loss is sum(h_depth * upstream), upstream standard normal, and the gradients are
    backpropagated by hand. f'(z_l) in the statistics is at the normalised z_l with layer norm.

    One ``np.random.default_rng(seed)`` draws the inputs, then upstream, then the weights
    (depth, width, width), layer after layer, so the first layers keep their weights when
    ``depth`` grows. ``init`` follows torch.nn.init with fan_in = fan_out = width:
    xavier_uniform U(-b, b), b = gain sqrt(6 / (2 width)); xavier_normal N(0, gain^2 / width);
    kaiming_uniform U(-b, b), b = gain sqrt(3 / width); kaiming_normal N(0, gain^2 / width) (mode
    fan_in); normal N(0, std^2), gain ignored. ``gain=None`` is torch's default: 1 for xavier_*,
    sqrt(2) for kaiming_* (nonlinearity 'leaky_relu' with a = 0).

    Valid: depth 1..100, width 1..512, batch 1..1024, seed >= 0, gain finite >= 0, std finite
    > 0, bias finite; anything else raises ValueError naming the parameter. See
    :class:`GradientFlow` for what is reported, including after overflow.
    """
    activation = _choice("activation", activation, ACTIVATIONS)
    init = _choice("init", init, INITS)
    depth = _integer("depth", depth, 1, 100)
    width = _integer("width", width, 1, 512)
    batch = _integer("batch", batch, 1, 1024)
    if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    if gain is not None and _finite("gain", gain) < 0:
        raise ValueError(f"gain: must be a finite number >= 0, got {gain!r}")
    std = _positive("std", std)
    bias = _finite("bias", bias)
    residual = _flag("residual", residual)
    layer_norm = _flag("layer_norm", layer_norm)
    p = _activation_params(activation, params)
    kernel = _KERNELS[activation]

    uniform = init.endswith("uniform")
    scale = _init_scale(init, width, None if gain is None else float(gain), std)
    inputs, upstream, weights = _draws(int(seed), batch, width, depth, uniform, scale)

    h = _workspace("h", (depth + 1, batch, width))
    slopes = _workspace("slopes", (depth, batch, width))
    normalised = _workspace("normalised", (depth, batch, width)) if layer_norm else None
    rstd = np.empty((depth, batch, 1)) if layer_norm else None
    stats = np.zeros((5, depth))  # mean, std, saturated fraction, dead fraction, mean |f'|
    histograms = np.zeros((depth, _BINS), dtype=np.int64)
    edges = np.tile(np.linspace(-1.0, 1.0, _BINS + 1), (depth, 1))
    h[0] = inputs
    reached = depth  # layers 1..reached are finite
    for l in range(depth):
        with np.errstate(over="ignore", invalid="ignore"):
            z = h[l] @ weights[l].T
            if bias:
                z += bias
        if not _all_finite(z):
            reached = l
            break
        if layer_norm:
            z, rstd[l] = _layer_norm(z)
            normalised[l] = z
        a, slope, _ = kernel(z, p, False)
        if residual:
            with np.errstate(over="ignore"):
                np.add(h[l], a, out=h[l + 1])
        else:
            h[l + 1] = a
        if not _all_finite(h[l + 1]):
            reached = l
            break
        slopes[l] = slope
    chunk = max(1, _STATS_CHUNK // (batch * width))
    for first in range(0, reached, chunk):  # a few layers at a time
        last = min(reached, first + chunk)
        _layer_statistics(h[first + 1: last + 1], slopes[first:last], stats[:, first:last],
                          histograms[first:last], edges[first:last])

    grad_norm = np.full(depth, math.inf)
    weight_grad_norm = np.full(depth, math.inf)
    if reached == depth:
        g = upstream
        for l in range(depth - 1, -1, -1):
            grad_norm[l] = _safe_norm(g)
            with np.errstate(over="ignore", invalid="ignore"):
                dz = g * slopes[l]
                if layer_norm:
                    dz = rstd[l] * (dz - dz.mean(axis=1, keepdims=True)
                                    - normalised[l] * np.mean(dz * normalised[l], axis=1, keepdims=True))
                weight_grad_norm[l] = _safe_norm(dz.T @ h[l])
                g = dz @ weights[l] + g if residual else dz @ weights[l]
            if not _all_finite(g):
                break  # dL/dh below this layer overflowed: those norms stay inf

    overflowed = np.arange(depth) >= reached
    stats[[0, 1, 4], reached:] = math.inf
    factors = np.where(overflowed, 1.0, stats[4])
    with np.errstate(over="ignore", invalid="ignore"):
        product = np.cumprod(factors)
    product[np.cumsum(factors == 0) > 0] = 0.0  # a dead layer zeroes the chain, even after an overflow
    product[overflowed] = math.inf
    return GradientFlow(
        activation_mean=stats[0],
        activation_std=stats[1],
        saturated_fraction=stats[2],
        dead_fraction=stats[3],
        mean_derivative=stats[4],
        derivative_product=product,
        grad_norm=grad_norm,
        weight_grad_norm=weight_grad_norm,
        histograms=histograms,
        histogram_edges=edges,
        weights=weights,
        inputs=inputs,
        upstream=upstream,
        outputs=h[depth].copy() if reached == depth else np.full((batch, width), math.inf),
    )


# ---- linear layers collapse ---------------------------------------------------------------------
@dataclass(frozen=True)
class Product:
    """The product of a network's layer maps, A_depth ... A_1 with A_l = W_l (or I + W_l with
    residual connections), kept as ``scale * unit`` so that no entry overflows or underflows.

    unit: (width, width), largest |entry| 1 (all zeros if the product is exactly 0).
    log10_scale: log10 of the factor (finite). singular_values: (width,) descending, of the
    product itself (inf or 0 where beyond float64). log10_singular_values: (width,) their log10,
    finite but for -inf where a singular value is exactly 0 (to rounding: below 1e-300 of the
    largest counts as 0).
    """

    unit: np.ndarray
    log10_scale: float
    singular_values: np.ndarray
    log10_singular_values: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """The product itself, (width, width); inf where an entry is beyond float64."""
        scale = self.log10_scale
        if scale > 616:  # beyond float64 wherever the entry is not 0
            return np.where(self.unit == 0, 0.0, np.copysign(math.inf, self.unit))
        half = 10.0 ** (max(scale, -700.0) / 2)  # two steps: each factor stays within float64
        with np.errstate(over="ignore", under="ignore"):
            return (self.unit * half) * half


def weight_product(weights: np.ndarray, residual: bool = False) -> Product:
    """The single matrix a stack of linear layers computes: h_depth = h_0 @ M.T (+ offset, see
    :func:`collapse`) with M = A_depth ... A_1, A_l = W_l, or I + W_l with ``residual``
    (h_l = h_{l-1} + h_{l-1} @ W_l.T). weights: (depth, width, width), finite, as in
    :class:`GradientFlow` (applied as h @ W_l.T). After each factor the running product is
    divided by its largest entry and the factor kept in log10, so any depth stays finite.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 3 or weights.shape[1] != weights.shape[2] or not len(weights) or not _all_finite(weights):
        raise ValueError(f"weights: must be finite, shape (depth >= 1, width, width), got shape {weights.shape}")
    residual = _flag("residual", residual)
    width = weights.shape[1]
    unit, log_scale = np.eye(width), 0.0
    with np.errstate(under="ignore"):  # entries far below the largest may become subnormal or 0
        for w in weights:
            unit = w @ unit + unit if residual else w @ unit
            top = float(np.max(np.abs(unit)))
            if top == 0.0:
                break
            unit /= top
            log_scale += math.log10(top)
    top = float(np.max(np.abs(unit)))
    if top == 0.0:  # an exact zero product: every singular value is 0
        zeros = np.zeros(width)
        return Product(_read_only(unit), 0.0, _read_only(zeros), _read_only(np.full(width, -math.inf)))
    unit_values = np.linalg.svd(unit, compute_uv=False)
    with np.errstate(divide="ignore"):
        logs = np.where(unit_values > 1e-300 * unit_values[0], np.log10(np.maximum(unit_values, 1e-300)), -math.inf)
    logs = logs + log_scale
    with np.errstate(over="ignore", under="ignore"):
        values = np.where(np.isfinite(logs), 10.0 ** np.clip(logs, -400, 400), 0.0)
    return Product(_read_only(unit), log_scale, _read_only(values), _read_only(logs))


@dataclass(frozen=True)
class Collapse:
    """Whether a network is one matrix on its inputs.

    product: the :class:`Product` of its layers' weights. offset: (width,) where the layers'
    constant biases end up if every layer is linear: c_l = A_l c_{l-1} + bias. single: (batch,
    width) inputs @ M.T + offset, what that one matrix computes. error: ||outputs - single|| /
    max(||outputs||, ||single||) (Frobenius norms), from 0 to 2 (0 when both are 0; inf when
    either is beyond float64): about 1e-15 for a linear network (rounding), of order 0.1 to 1
    with a non-linear activation or layer norm.
    """

    product: Product
    offset: np.ndarray
    single: np.ndarray
    error: float


def collapse(weights: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, *, bias: float = 0.0,
             residual: bool = False, product: Product | None = None) -> Collapse:
    """Compare a network's map with the single matrix its layers multiply into.

    weights: (depth, width, width) and inputs, outputs: (batch, width), as in
    :class:`GradientFlow` (``flow.weights, flow.inputs, flow.outputs``); bias and residual: the
    network's. product: :func:`weight_product` of these weights (computed if None; pass a
    remembered one to save the depth matrix products). Raises ValueError naming a bad argument.
    """
    weights = np.asarray(weights, dtype=np.float64)
    inputs = np.asarray(inputs, dtype=np.float64)
    outputs = np.asarray(outputs, dtype=np.float64)
    bias = _finite("bias", bias)
    residual = _flag("residual", residual)
    if weights.ndim != 3 or weights.shape[1] != weights.shape[2]:
        raise ValueError(f"weights: must have shape (depth, width, width), got {weights.shape}")
    width = weights.shape[1]
    for name, array in (("inputs", inputs), ("outputs", outputs)):
        if array.ndim != 2 or array.shape[1] != width or array.shape != inputs.shape:
            raise ValueError(f"{name}: must have shape (batch, {width}) like inputs, got {array.shape}")
    if product is None:
        product = weight_product(weights, residual)
    elif not isinstance(product, Product) or product.unit.shape != (width, width):
        raise ValueError(f"product: must be the Product of these weights ({width} x {width})")
    with np.errstate(over="ignore", invalid="ignore"):
        offset = np.zeros(width)
        if bias:
            for w in weights:
                offset = w @ offset + offset + bias if residual else w @ offset + bias
        matrix = product.matrix
        single = inputs @ matrix.T + offset if _all_finite(matrix) else np.full(inputs.shape, math.inf)
        single[np.isnan(single)] = math.inf  # inf - inf in an overflowing sum: beyond float64 all the same
        if not (_all_finite(single) and _all_finite(outputs)):
            error = math.inf
        else:
            gap = _safe_norm(outputs - single)
            error = 0.0 if gap == 0.0 else gap / max(_safe_norm(outputs), _safe_norm(single))
    return Collapse(product, _read_only(offset), _read_only(single), float(error))
