"""workbench.compute.activations against torch autograd, torch.nn.init and an nn.Linear MLP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workbench.compute import activations as act
from workbench.compute.activations import (
    ACTIVATIONS,
    INITS,
    calculate_gain,
    evaluate,
    gradient_flow,
    properties,
    recommended_gain,
    softmax,
)

FUZZ = settings(max_examples=40, deadline=None, database=None)
RTOL, ATOL = 1e-10, 1e-12

# every activation with torch's defaults, and the parameterised ones with other values
CASES = [(name, {}) for name in ACTIVATIONS] + [
    ("leaky_relu", {"negative_slope": 0.2}),
    ("leaky_relu", {"negative_slope": -0.5}),
    ("elu", {"alpha": 0.5}),
    ("elu", {"alpha": 2.0}),
    ("swish", {"beta": 2.0}),
    ("swish", {"beta": 0.3}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}),
    ("softplus", {"beta": 0.5}),
]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]


def t(x):
    return torch.from_numpy(np.array(x, dtype=np.float64))  # a writable copy


def torch_fn(name, params=None):
    p = {**ACTIVATIONS[name].params, **(params or {})}
    return {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, p["negative_slope"]),
        "elu": lambda x: F.elu(x, p["alpha"]),
        "selu": F.selu,
        "gelu": F.gelu,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "swish": lambda x: x * torch.sigmoid(p["beta"] * x),
        "mish": F.mish,
        "softplus": lambda x: F.softplus(x, p["beta"], p["threshold"]),
        "hardsigmoid": F.hardsigmoid,
        "hardswish": F.hardswish,
        "relu6": F.relu6,
        "linear": torch.nn.Identity(),
    }[name]


def torch_curves(name, params, x):
    """f, f' and f'' from torch autograd (f'' None for hardsigmoid: torch has no double backward)."""
    xt = t(x).requires_grad_(True)
    y = torch_fn(name, params)(xt)
    (dy,) = torch.autograd.grad(y.sum(), xt, create_graph=True)
    if name == "hardsigmoid":
        d2y = None
    elif not dy.requires_grad:  # f' is a constant (the identity): autograd's f'' is 0
        d2y = np.zeros_like(np.asarray(x, dtype=np.float64))
    else:
        d2y = torch.autograd.grad(dy.sum(), xt)[0].numpy()
    return y.detach().numpy(), dy.detach().numpy(), d2y


def away_from_kinks(name, params, x):
    """x without the points within 1e-6 of a kink (or of softplus's switch to linear)."""
    p = {**ACTIVATIONS[name].params, **params}
    kinks = list(ACTIVATIONS[name].kinks)
    if name == "softplus":
        kinks.append(p["threshold"] / p["beta"])
    keep = np.ones(x.shape, dtype=bool)
    for k in kinks:
        keep &= np.abs(x - k) >= 1e-6
    return x[keep]


def assert_matches_torch(name, params, x):
    ours = evaluate(name, x, **params)
    y, dy, d2y = torch_curves(name, params, x)
    np.testing.assert_allclose(ours.y, y, rtol=RTOL, atol=ATOL)
    if name == "hardsigmoid":  # torch's float64 kernel multiplies by the float32 constant 1/6
        np.testing.assert_allclose(ours.dy, dy, rtol=1e-7, atol=0)
        np.testing.assert_array_equal(ours.dy[np.abs(x) < 3], 1 / 6)
        np.testing.assert_array_equal(ours.d2y, 0.0)  # torch has no double backward here
    else:
        np.testing.assert_allclose(ours.dy, dy, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(ours.d2y, d2y, rtol=RTOL, atol=ATOL)


# ---- the catalogue ---------------------------------------------------------------------------------
def test_catalogue_order_labels_and_torch_defaults():
    assert list(ACTIVATIONS) == ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh",
                                 "swish", "mish", "softplus", "hardsigmoid", "hardswish", "relu6", "linear"]
    assert ACTIVATIONS["linear"].label == "Linear (identity)" and ACTIVATIONS["linear"].formula == "x"
    assert ACTIVATIONS["leaky_relu"].label == "Leaky ReLU"
    assert ACTIVATIONS["gelu_tanh"].label == "GELU (tanh approx.)"
    assert ACTIVATIONS["swish"].label == "Swish / SiLU"
    assert dict(ACTIVATIONS["leaky_relu"].params) == {"negative_slope": 0.01}
    assert dict(ACTIVATIONS["elu"].params) == {"alpha": 1.0}
    assert dict(ACTIVATIONS["swish"].params) == {"beta": 1.0}
    assert dict(ACTIVATIONS["softplus"].params) == {"beta": 1.0, "threshold": 20.0}
    assert ACTIVATIONS["leaky_relu"].formula == "max(0, x) + negative_slope * min(0, x)"
    kinks = {name: a.kinks for name, a in ACTIVATIONS.items() if a.kinks}
    assert kinks == {"relu": (0.0,), "leaky_relu": (0.0,), "elu": (0.0,), "selu": (0.0,), "hardsigmoid": (-3.0, 3.0),
                     "hardswish": (-3.0, 3.0), "relu6": (0.0, 6.0)}
    for a in ACTIVATIONS.values():
        assert a.label and a.formula and a.name in ACTIVATIONS
        for value in a.params.values():
            assert isinstance(value, float)
    with pytest.raises(TypeError):
        ACTIVATIONS["relu"].params["x"] = 1.0  # read-only


def test_defaults_are_torchs():
    x = np.linspace(-30, 30, 601)  # torch called without parameters
    for name, fn in [("leaky_relu", F.leaky_relu), ("elu", F.elu), ("softplus", F.softplus), ("swish", F.silu)]:
        np.testing.assert_allclose(evaluate(name, x).y, fn(t(x)).numpy(), rtol=RTOL, atol=ATOL)


# ---- values and derivatives vs torch autograd -------------------------------------------------------
@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_values_and_derivatives_equal_torch_autograd(name, params):
    x = away_from_kinks(name, params, np.linspace(-8, 8, 2001))
    assert_matches_torch(name, params, x)


@FUZZ
@given(case=st.sampled_from(CASES), x=st.lists(st.floats(-60, 60, allow_nan=False), min_size=1, max_size=8))
def test_fuzzed_points_equal_torch_autograd(case, x):
    name, params = case
    x = np.array(x)
    assume(len(away_from_kinks(name, params, x)) == len(x))
    assert_matches_torch(name, params, x)


def test_exact_gelu_matches_the_error_function_to_a_few_ulp():
    # the same argument as torch (x * M_SQRT1_2), then libm's erfc: only erfc's own error is left
    x = np.concatenate([np.linspace(-37, 8, 4501), -np.geomspace(1e-12, 37, 300), np.geomspace(1e-300, 1e-3, 30)])
    reference = np.array([v * 0.5 * math.erfc(-v * 0.7071067811865476) for v in x])
    np.testing.assert_allclose(evaluate("gelu", x).y, reference, rtol=4e-15, atol=0)


KINKS = [(name, params, k) for name, params in CASES for k in ACTIVATIONS[name].kinks]


@pytest.mark.parametrize("name,params,kink", KINKS, ids=[f"{n}{p}@{k}" for n, p, k in KINKS])
def test_at_a_kink_the_derivative_is_torchs(name, params, kink):
    ours = evaluate(name, [kink], **params)
    y, dy, d2y = torch_curves(name, params, [kink])
    assert ours.y[0] == y[0]
    assert ours.dy[0] == dy[0]  # exactly the side torch's autograd picks
    if d2y is not None:
        assert ours.d2y[0] == d2y[0]


def test_kink_derivatives_documented_values():
    def slope(name, x, **params):
        return float(evaluate(name, [x], **params).dy[0])

    assert slope("relu", 0) == 0.0
    assert slope("leaky_relu", 0) == 0.01 and slope("leaky_relu", 0, negative_slope=0.2) == 0.2
    assert slope("elu", 0, alpha=0.5) == 0.5  # torch takes the negative side: alpha * exp(0)
    assert slope("selu", 0) == pytest.approx(1.0507009873554805 * 1.6732632423543772, rel=1e-15)
    assert slope("relu6", 0) == 0.0 and slope("relu6", 6) == 0.0
    assert slope("hardsigmoid", -3) == 0.0 and slope("hardsigmoid", 3) == 0.0
    assert slope("hardswish", -3) == 0.0 and slope("hardswish", 3) == 1.0  # torch: open interval (-3, 3)
    assert slope("hardswish", -2.999999) == pytest.approx(-0.5, abs=1e-6)


def test_softplus_switches_to_x_above_threshold_like_torch():
    x = np.array([2.4999999, 2.5, 2.5000001, 30.0])
    ours = evaluate("softplus", x, beta=2.0, threshold=5.0)
    y, dy, d2y = torch_curves("softplus", {"beta": 2.0, "threshold": 5.0}, x)
    np.testing.assert_array_equal(ours.y[2:], x[2:])
    np.testing.assert_allclose(ours.y, y, rtol=1e-15)
    np.testing.assert_allclose(ours.dy, dy, rtol=1e-15)
    np.testing.assert_allclose(ours.d2y, d2y, rtol=1e-12)  # 0 from the switch on, as in torch


BIG = np.array([-1.7e308, -1e300, -1e6, -800.0, -50.0, 50.0, 800.0, 1e6, 1e300, 1.7e308])


@pytest.mark.parametrize("name,params", CASES, ids=CASE_IDS)
def test_huge_inputs_stay_finite_quiet_and_equal_torch(name, params):
    ours = evaluate(name, BIG, **params)  # pytest turns any numpy RuntimeWarning into an error
    for array in (ours.y, ours.dy, ours.d2y):
        assert np.all(np.isfinite(array)), array
    y, dy, d2y = torch_curves(name, params, BIG)
    pairs = [(ours.y, y), (ours.dy, dy)] + ([(ours.d2y, d2y)] if d2y is not None else [])
    assert np.isfinite(y[2:-2]).all() and np.isfinite(dy[2:-2]).all()  # +-1e6, +-800, +-50
    for mine, theirs in pairs:
        finite = np.isfinite(theirs)  # torch overflows in places (hardswish: x * 6 / 6; gelu_tanh: x^3)
        if name == "hardsigmoid" and mine is ours.dy:
            continue
        np.testing.assert_allclose(mine[finite], theirs[finite], rtol=RTOL, atol=ATOL)


def test_extreme_parameters_stay_quiet():
    x = np.concatenate([BIG, np.linspace(-5, 5, 11)])
    for name, params in [("swish", {"beta": 1e10}), ("swish", {"beta": -1e10}), ("swish", {"beta": 0.0}),
                         ("leaky_relu", {"negative_slope": 1e10}), ("elu", {"alpha": 1e300}),
                         ("softplus", {"beta": 1e-300, "threshold": 1e300}), ("softplus", {"beta": 1e300})]:
        c = evaluate(name, x, **params)
        for array in (c.y, c.dy, c.d2y):
            assert not np.any(np.isnan(array)), (name, params)


def test_evaluate_keeps_the_shape_and_copies_x():
    x = np.linspace(-2, 2, 12).reshape(3, 4)
    c = evaluate("gelu", x)
    assert c.x.shape == c.y.shape == c.dy.shape == c.d2y.shape == (3, 4)
    assert c.x is not x and c.x.dtype == np.float64
    s = evaluate("tanh", 0.5)
    assert s.y.shape == () and isinstance(s.y, np.ndarray)
    assert evaluate("relu", [1, -2]).y.tolist() == [1.0, 0.0]


# ---- properties ------------------------------------------------------------------------------------
def test_sigmoid_properties():
    p = properties("sigmoid")
    assert p.max_derivative == pytest.approx(0.25, abs=1e-15) and p.argmax_derivative == pytest.approx(0, abs=1e-9)
    assert p.output_range == (0.0, 1.0)
    assert (p.minimum, p.argmin) == (0.0, -math.inf)  # an infimum, approached as x -> -inf
    assert not p.zero_centred and p.monotonic
    (lo, hi), (lo2, hi2) = p.saturation
    assert lo == -10.0 and hi2 == 10.0
    edge = math.log((1 - math.sqrt(0.96)) / (1 + math.sqrt(0.96)))  # sigmoid' = s(1 - s) = 0.01
    assert hi == pytest.approx(edge, abs=1e-8) and lo2 == pytest.approx(-edge, abs=1e-8)


def test_tanh_properties():
    p = properties("tanh")
    assert (p.max_derivative, p.argmax_derivative) == (1.0, 0.0)
    assert p.output_range == (-1.0, 1.0)
    assert p.zero_centred and p.monotonic
    edge = math.acosh(10.0)  # sech^2 = 0.01
    assert p.saturation == ((-10.0, pytest.approx(-edge, abs=1e-8)), (pytest.approx(edge, abs=1e-8), 10.0))


def test_relu_properties_dead_zone_and_plateaus():
    p = properties("relu")
    assert p.output_range == (0.0, math.inf)
    assert p.saturation == ((-10.0, 0.0),)  # f' == 0 on the whole negative side
    assert (p.max_derivative, p.argmax_derivative) == (1.0, 0.0)  # slope 1 from 0+ on: reported at the kink
    assert (p.minimum, p.argmin) == (0.0, 0.0)  # 0 on (-inf, 0]: the point nearest 0
    assert not p.zero_centred and p.monotonic
    assert properties("relu", x_lim=3.0).saturation == ((-3.0, 0.0),)


def test_elu_and_selu_ranges():
    assert properties("elu").output_range == (-1.0, math.inf)
    assert properties("elu", alpha=0.5).output_range == (-0.5, math.inf)
    p = properties("selu")
    assert p.output_range[0] == pytest.approx(-1.0507009873554805 * 1.6732632423543772, rel=1e-15)
    assert p.max_derivative == pytest.approx(1.0507009873554805 * 1.6732632423543772, rel=1e-15)
    assert p.argmax_derivative == 0.0


def test_gelu_minimum_is_refined_to_the_stationary_point():
    p = properties("gelu")
    assert p.minimum == pytest.approx(-0.16997, abs=1e-5) and p.argmin == pytest.approx(-0.7518, abs=1e-4)
    x = t([p.argmin]).requires_grad_(True)
    y = F.gelu(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert abs(float(slope[0])) < 1e-14  # Phi(x) + x phi(x) = 0
    assert p.minimum == pytest.approx(float(y.detach()[0]), rel=1e-15)
    assert p.output_range == (p.minimum, math.inf)
    # gelu'' = phi(x) (2 - x^2): the steepest point is x = sqrt(2)
    assert p.argmax_derivative == pytest.approx(math.sqrt(2), abs=1e-9)
    expected = 0.5 * math.erfc(-1.0) + math.sqrt(2) * math.exp(-1.0) / math.sqrt(2 * math.pi)
    assert p.max_derivative == pytest.approx(expected, rel=1e-14)
    assert p.zero_centred and not p.monotonic


@pytest.mark.parametrize("beta", [1.0, 2.0, 0.5])
def test_swish_minimum_in_closed_form(beta):
    p = properties("swish", beta=beta)
    # at the minimum sigmoid(bx) (1 + bx (1 - sigmoid(bx))) = 0, so f = x + 1/b there
    assert p.minimum == pytest.approx(p.argmin + 1 / beta, abs=1e-12)
    assert p.argmin * beta == pytest.approx(-1.2784645427610738, abs=1e-9)  # -(1 + W(1/e))
    if beta == 1.0:
        assert p.minimum == pytest.approx(-0.278, abs=1e-3) and p.argmin == pytest.approx(-1.278, abs=1e-3)


def test_monotonicity_and_zero_centring_follow_the_documented_rules():
    monotonic = {name: properties(name).monotonic for name in ACTIVATIONS}
    assert {name for name, m in monotonic.items() if not m} == {"gelu", "gelu_tanh", "swish", "mish", "hardswish"}
    centred = {name for name in ACTIVATIONS if properties(name).zero_centred}
    assert centred == {"tanh", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "swish", "mish", "hardswish", "linear"}
    assert not properties("leaky_relu", negative_slope=-0.5).monotonic


def test_piecewise_and_asymptotic_extrema():
    hs = properties("hardsigmoid")
    assert hs.output_range == (0.0, 1.0) and hs.argmin == -3.0
    assert hs.saturation == ((-10.0, -3.0), (3.0, 10.0))
    assert hs.max_derivative == 1 / 6
    hw = properties("hardswish")
    assert (hw.minimum, hw.argmin) == (-0.375, -1.5)
    assert hw.max_derivative == pytest.approx(1.5, abs=1e-15) and hw.argmax_derivative == 3.0  # the limit from the left
    r6 = properties("relu6")
    assert r6.output_range == (0.0, 6.0) and r6.saturation == ((-10.0, 0.0), (6.0, 10.0))
    sp = properties("softplus")
    assert (sp.max_derivative, sp.argmax_derivative) == (1.0, math.inf)
    assert sp.output_range == (0.0, math.inf) and sp.argmin == -math.inf
    lr = properties("leaky_relu")
    assert lr.output_range == (-math.inf, math.inf) and lr.saturation == ()
    assert properties("leaky_relu", negative_slope=2.0).argmax_derivative == 0.0
    m = properties("mish")
    x = t([m.argmin]).requires_grad_(True)
    (slope,) = torch.autograd.grad(F.mish(x).sum(), x)
    assert abs(float(slope[0])) < 1e-14 and m.minimum == pytest.approx(-0.30884, abs=1e-5)


def test_saturation_threshold_and_limits():
    wide = properties("sigmoid", threshold=0.1, x_lim=20.0)
    edge = math.log((1 - math.sqrt(0.6)) / (1 + math.sqrt(0.6)))
    assert wide.saturation == ((-20.0, pytest.approx(edge, abs=1e-8)), (pytest.approx(-edge, abs=1e-8), 20.0))
    assert properties("sigmoid", threshold=0.3).saturation == ((-10.0, 10.0),)
    assert properties("relu", threshold=1e-9).saturation == ((-10.0, 0.0),)
    sw = properties("swish")  # the minimum is a stationary point: |f'| is small around it too
    assert any(lo < -1.2785 < hi for lo, hi in sw.saturation)


def test_properties_are_quiet_for_unusual_parameters():
    for name, params in [("swish", {"beta": -1.0}), ("swish", {"beta": 0.0}), ("swish", {"beta": 0.05}),
                         ("elu", {"alpha": -1.0}), ("leaky_relu", {"negative_slope": 0.0}),
                         ("softplus", {"beta": 10.0})]:
        p = properties(name, **params)
        numbers = (*p.output_range, p.max_derivative, p.argmax_derivative, p.minimum, p.argmin)
        assert not any(math.isnan(v) for v in numbers)
    assert properties("swish", beta=-1.0).output_range[0] == -math.inf
    assert properties("leaky_relu", negative_slope=0.0).output_range == (0.0, math.inf)
    assert properties("swish", beta=0.05).argmin == pytest.approx(-1.2784645427610738 / 0.05, abs=1e-6)


# ---- softmax -------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [1.0, 0.25, 3.0])
@pytest.mark.parametrize("logits", [[0.5, -1.0, 2.0, 0.0], [3.0], [1000.0, 0.0, -1000.0], list(np.linspace(-4, 4, 9))])
def test_softmax_and_its_jacobian_equal_torch(logits, temperature):
    result = softmax(logits, temperature)
    z = t(logits)
    p = torch.softmax(z / temperature, dim=-1).numpy()
    jac = torch.autograd.functional.jacobian(lambda v: torch.softmax(v / temperature, dim=-1), z).numpy()
    np.testing.assert_allclose(result.probabilities, p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(result.jacobian, jac, rtol=1e-12, atol=1e-12)
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.isfinite(result.jacobian))


def test_saturated_softmax_is_one_hot_with_a_zero_jacobian():
    r = softmax([1000.0, 0.0, -1000.0])
    np.testing.assert_array_equal(r.probabilities, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(r.jacobian, np.zeros((3, 3)))


# ---- gains and initialisation ----------------------------------------------------------------------
GAINS = [("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
         ("leaky_relu", 0), ("selu", None), ("linear", None), ("conv2d", None), ("conv_transpose3d", None)]


@pytest.mark.parametrize("nonlinearity,param", GAINS)
def test_calculate_gain_equals_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


def test_recommended_gain_maps_our_activations():
    assert recommended_gain("sigmoid") == 1.0
    assert recommended_gain("tanh") == pytest.approx(5 / 3)
    assert recommended_gain("relu") == pytest.approx(math.sqrt(2))
    assert recommended_gain("leaky_relu") == pytest.approx(torch.nn.init.calculate_gain("leaky_relu", 0.01))
    assert recommended_gain("leaky_relu", negative_slope=0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert recommended_gain("selu") == 0.75
    assert recommended_gain("linear") == torch.nn.init.calculate_gain("linear") == 1.0
    for name in ("elu", "gelu", "gelu_tanh", "swish", "mish", "softplus", "hardsigmoid", "hardswish", "relu6"):
        assert recommended_gain(name) == 1.0  # torch has no entry
    assert recommended_gain("swish", beta=2.0) == 1.0


def expected_weight_std(init, width, gain):
    if init == "normal":
        return 0.05
    default = gain is None
    g = (1.0 if init.startswith("xavier") else torch.nn.init.calculate_gain("leaky_relu", 0)) if default else gain
    return {"xavier_uniform": g * math.sqrt(6 / (2 * width)) / math.sqrt(3),  # U(-b, b) has std b / sqrt(3)
            "xavier_normal": g * math.sqrt(2 / (2 * width)),
            "kaiming_uniform": g * math.sqrt(3 / width) / math.sqrt(3),
            "kaiming_normal": g / math.sqrt(width)}[init]


@pytest.mark.parametrize("gain", [None, 0.5])
@pytest.mark.parametrize("init", INITS)
def test_init_statistics_follow_torch_formulas(init, gain):
    width = 512
    r = gradient_flow("tanh", init, depth=2, width=width, batch=1, gain=gain, std=0.05)
    w = r.weights
    assert w.shape == (2, width, width)
    np.testing.assert_allclose(w.std(), expected_weight_std(init, width, gain), rtol=0.05)
    # the same statistics as torch.nn.init on a tensor of that shape (torch's kaiming_* take no gain)
    torch.manual_seed(0)
    ref = torch.empty(width, width, dtype=torch.float64)
    if init == "normal":
        torch.nn.init.normal_(ref, 0.0, 0.05)
    elif init.startswith("xavier"):
        getattr(torch.nn.init, init + "_")(ref, gain=1.0 if gain is None else gain)
    else:
        getattr(torch.nn.init, init + "_")(ref)  # a=0, fan_in, leaky_relu: gain sqrt(2)
        ref *= (math.sqrt(2) if gain is None else gain) / math.sqrt(2)
    np.testing.assert_allclose(w[0].std(), float(ref.std()), rtol=0.05)
    if init.endswith("uniform"):
        bound = expected_weight_std(init, width, gain) * math.sqrt(3)
        assert np.abs(w).max() <= bound


def test_draws_are_seeded_shared_and_extend_with_depth():
    a = gradient_flow("relu", "kaiming_normal", depth=3, width=16, batch=4, seed=7)
    b = gradient_flow("relu", "kaiming_normal", depth=5, width=16, batch=4, seed=7)
    c = gradient_flow("tanh", "xavier_normal", depth=5, width=16, batch=4, seed=7)
    d = gradient_flow("relu", "kaiming_normal", depth=3, width=16, batch=4, seed=8)
    np.testing.assert_array_equal(b.weights[:3], a.weights)  # a deeper network keeps the first layers
    np.testing.assert_array_equal(a.inputs, c.inputs)
    np.testing.assert_array_equal(a.upstream, c.upstream)
    np.testing.assert_allclose(c.weights, b.weights / math.sqrt(2), rtol=1e-15)  # the same normal draws
    assert not np.array_equal(a.inputs, d.inputs)
    rng = np.random.default_rng(7)  # inputs, upstream, then the weights, from one generator
    np.testing.assert_array_equal(a.inputs, rng.standard_normal((4, 16)))
    np.testing.assert_array_equal(a.upstream, rng.standard_normal((4, 16)))
    np.testing.assert_allclose(a.weights, rng.standard_normal((3, 16, 16)) * math.sqrt(2 / 16), rtol=1e-15)
    u = gradient_flow("relu", "xavier_uniform", depth=2, width=16, batch=4, seed=7)
    rng = np.random.default_rng(7)
    rng.standard_normal((2, 4, 16))
    np.testing.assert_allclose(u.weights, rng.uniform(-math.sqrt(6 / 32), math.sqrt(6 / 32), (2, 16, 16)), rtol=1e-14)


# ---- gradient flow vs an nn.Linear MLP ----------------------------------------------------------------
def torch_mlp(r, name, params, bias, residual, layer_norm):
    """Forward and backward of the same MLP in torch; per layer h_l (with .grad), W_l.grad and f'(z_l)."""
    depth, width, _ = r.weights.shape
    fn = torch_fn(name, params)
    layers = []
    for w in r.weights:
        linear = torch.nn.Linear(width, width, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(t(w))
            linear.bias.fill_(bias)
        layers.append(linear)
    h, outputs, slopes = t(r.inputs), [], []
    for linear in layers:
        z = linear(h)
        if layer_norm:
            z = F.layer_norm(z, (width,), eps=1e-5)
        u = z.detach().clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(fn(u).sum(), u)
        slopes.append(slope)
        a = fn(z)
        h = h + a if residual else a
        h.retain_grad()
        outputs.append(h)
    (h * t(r.upstream)).sum().backward()
    return layers, outputs, slopes


MLP_CASES = [("relu", {}), ("tanh", {}), ("gelu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("selu", {}),
             ("swish", {"beta": 2.0}), ("softplus", {"beta": 2.0, "threshold": 5.0}), ("hardswish", {}),
             ("mish", {}), ("sigmoid", {}), ("elu", {"alpha": 0.5}), ("gelu_tanh", {}), ("relu6", {}), ("linear", {})]


@pytest.mark.parametrize("layer_norm", [False, True], ids=["plain", "layer_norm"])
@pytest.mark.parametrize("residual", [False, True], ids=["chain", "residual"])
@pytest.mark.parametrize("name,params", MLP_CASES, ids=[n + str(p or "") for n, p in MLP_CASES])
def test_gradient_flow_equals_torch_mlp(name, params, residual, layer_norm):
    bias = 0.1
    r = gradient_flow(name, "kaiming_uniform", depth=6, width=24, batch=10, seed=3, bias=bias,
                      residual=residual, layer_norm=layer_norm, **params)
    layers, outputs, slopes = torch_mlp(r, name, params, bias, residual, layer_norm)
    h = [o.detach() for o in outputs]
    np.testing.assert_allclose(r.activation_mean, [float(x.mean()) for x in h], rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(r.activation_std, [float(x.std(correction=0)) for x in h], rtol=1e-9)
    np.testing.assert_allclose(r.grad_norm, [float(o.grad.norm()) for o in outputs], rtol=1e-9)
    np.testing.assert_allclose(r.weight_grad_norm, [float(layer.weight.grad.norm()) for layer in layers], rtol=1e-9)
    magnitude = [s.abs() for s in slopes]
    np.testing.assert_allclose(r.mean_derivative, [float(m.mean()) for m in magnitude], rtol=1e-9)
    np.testing.assert_allclose(r.derivative_product, np.cumprod([float(m.mean()) for m in magnitude]), rtol=1e-9)
    size = 10 * 24
    saturated = [float((m < 0.01).double().mean()) for m in magnitude]
    np.testing.assert_allclose(r.saturated_fraction, saturated, atol=1.5 / size)  # a slope rounding across 0.01
    if ACTIVATIONS[name].kinks:  # f' == 0 on whole intervals; smooth ones reach 0 only by underflow,
        # and torch's 1 - tanh^2 or 1 + tanh(u) gives exact zeros well before the true slope underflows
        np.testing.assert_allclose(r.dead_fraction, [float((s == 0).double().mean()) for s in slopes], atol=1.5 / size)
    else:
        assert np.all(r.dead_fraction <= [float((s == 0).double().mean()) for s in slopes])
    for counts, edges, x in zip(r.histograms, r.histogram_edges, h):
        values = x.numpy().ravel()
        assert counts.sum() == values.size
        assert edges[0] == pytest.approx(values.min(), rel=1e-12)
        assert edges[-1] == pytest.approx(values.max(), rel=1e-12)
        assert np.abs(counts - np.histogram(values, bins=edges)[0]).sum() <= 2  # rounding at a bin edge


def test_gradient_flow_shapes_and_types():
    r = gradient_flow("relu", "xavier_normal", depth=4, width=8, batch=3)
    for field in ("activation_mean", "activation_std", "saturated_fraction", "dead_fraction", "mean_derivative",
                  "derivative_product", "grad_norm", "weight_grad_norm"):
        assert getattr(r, field).shape == (4,), field
    assert r.histograms.shape == (4, 60) and r.histogram_edges.shape == (4, 61)
    assert r.weights.shape == (4, 8, 8) and r.inputs.shape == (3, 8) and r.upstream.shape == (3, 8)
    assert np.all(np.diff(r.histogram_edges, axis=1) > 0)


def test_dying_relu_with_a_large_negative_bias():
    r = gradient_flow("relu", "kaiming_normal", depth=5, width=32, batch=16, bias=-50.0)
    np.testing.assert_array_equal(r.dead_fraction, 1.0)
    np.testing.assert_array_equal(r.saturated_fraction, 1.0)
    np.testing.assert_array_equal(r.activation_std, 0.0)
    np.testing.assert_array_equal(r.grad_norm[:-1], 0.0)  # nothing flows below the top layer
    assert r.grad_norm[-1] > 0 and np.all(r.weight_grad_norm == 0)
    np.testing.assert_array_equal(r.derivative_product, 0.0)
    for counts, edges in zip(r.histograms, r.histogram_edges):  # one value, 0: a small span around it
        assert counts.sum() == 16 * 32 and edges[0] == -1e-3 and edges[-1] == 1e-3


def test_relu_variance_is_kept_by_kaiming_and_halved_per_layer_by_xavier():
    # A single ReLU network's mean square is roughly log-normal around its expectation (1 under
    # Kaiming, 2^-L under Xavier, gain 1) with a log-std of about 1 at depth 50 and width 256, so
    # the check is on the geometric mean over 8 seeds (log-std ~0.4): within a factor 3 of 1.
    # Xavier's normal draws are Kaiming's divided by sqrt(2) and ReLU is positively homogeneous,
    # so the same seed's Xavier network is its Kaiming network times 2^(-l/2): exactly 2^-50.
    kaiming, xavier = [], []
    for seed in range(8):
        for init, out in (("kaiming_normal", kaiming), ("xavier_normal", xavier)):
            r = gradient_flow("relu", init, depth=50, width=256, batch=256, seed=seed)
            out.append(r.activation_mean[-1] ** 2 + r.activation_std[-1] ** 2)
            assert np.all(np.isfinite(r.grad_norm)) and np.all(r.activation_std > 0)
    kaiming, xavier = np.array(kaiming), np.array(xavier)
    assert 1 / 3 < math.exp(np.mean(np.log(kaiming))) < 3
    assert 1 / 10 < math.exp(np.mean(np.log(xavier / 2.0 ** -50))) < 10
    np.testing.assert_allclose(xavier, kaiming * 2.0 ** -50, rtol=1e-10)


def test_vanishing_sigmoid_gradients():
    r = gradient_flow("sigmoid", "xavier_normal", depth=30, width=64)
    assert np.all(np.diff(r.grad_norm) > 0)  # the gradient shrinks on the way down
    assert r.grad_norm[0] < 1e-12 * r.grad_norm[-1]
    assert np.all(r.mean_derivative <= 0.25)


def assert_nothing_is_nan(r):
    for field in r.__dataclass_fields__:
        value = getattr(r, field)
        assert not np.any(np.isnan(value)), field


@pytest.mark.parametrize("kwargs", [
    dict(activation="relu", init="normal", depth=100, width=512, std=10.0),
    dict(activation="sigmoid", init="normal", depth=100, width=128, std=10.0),
    dict(activation="sigmoid", init="xavier_uniform", depth=100, width=64),
    dict(activation="tanh", init="normal", depth=100, width=64, std=100.0, residual=True),
    dict(activation="leaky_relu", init="kaiming_normal", depth=100, width=16, negative_slope=1e10),
    dict(activation="selu", init="normal", depth=100, width=64, std=1e3),
    dict(activation="gelu", init="normal", depth=50, width=64, std=1e3, layer_norm=True),
    dict(activation="relu", init="normal", depth=10, width=4, bias=1.7e308),
    dict(activation="relu", init="normal", depth=10, width=4, bias=-1.7e308),
    dict(activation="relu", init="kaiming_uniform", depth=10, width=8, gain=1e300),
    dict(activation="elu", init="normal", depth=20, width=1, layer_norm=True, residual=True),
    dict(activation="tanh", init="normal", depth=5, width=8, std=1e300, layer_norm=True),
    dict(activation="swish", init="normal", depth=5, width=8, std=1e300, bias=1e308, layer_norm=True, residual=True),
], ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_extreme_settings_never_give_nan_or_warnings(kwargs):
    r = gradient_flow(batch=16, **kwargs)
    assert_nothing_is_nan(r)
    assert r.histograms.sum(axis=1).max() <= 16 * kwargs["width"]


def test_overflow_is_reported_as_inf():
    r = gradient_flow("relu", "normal", depth=100, width=64, batch=8, std=1e3)
    overflowed = np.isinf(r.activation_std)
    first = int(np.argmax(overflowed))
    assert 0 < first < 100 and np.all(overflowed[first:]) and not overflowed[:first].any()
    assert np.all(np.isinf(r.activation_mean[first:])) and np.all(np.isinf(r.mean_derivative[first:]))
    assert np.all(r.histograms[first:] == 0) and np.all(r.histograms[:first].sum(axis=1) == 8 * 64)
    assert np.all(np.isinf(r.grad_norm)) and np.all(np.isinf(r.weight_grad_norm))  # the loss itself overflowed
    assert_nothing_is_nan(r)


# ---- linear layers collapse ----------------------------------------------------------------------------
def test_linear_is_the_identity_with_slope_one():
    x = np.linspace(-1e6, 1e6, 11)
    c = evaluate("linear", x)
    np.testing.assert_array_equal(c.y, x)
    np.testing.assert_array_equal(c.dy, 1.0)
    np.testing.assert_array_equal(c.d2y, 0.0)
    assert c.y is not c.x  # its own array
    p = properties("linear")
    assert p.output_range == (-math.inf, math.inf) and p.saturation == () and p.max_derivative == 1.0
    assert p.monotonic and p.zero_centred


def torch_product(weights, residual):
    """A_depth ... A_1 with torch: the weight of each nn.Linear layer (plus I with a residual)."""
    factors = [t(w) + (torch.eye(w.shape[0], dtype=torch.float64) if residual else 0) for w in weights]
    return torch.linalg.multi_dot(factors[::-1]) if len(factors) > 1 else factors[0]


@pytest.mark.parametrize("residual", [False, True], ids=["chain", "residual"])
@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_a_linear_network_is_the_product_of_its_weights_as_torch_computes_it(bias, residual):
    r = gradient_flow("linear", "xavier_normal", depth=7, width=12, batch=9, seed=5, bias=bias, residual=residual)
    layers, outputs, _ = torch_mlp(r, "linear", {}, bias, residual, False)
    network = outputs[-1].detach()
    np.testing.assert_allclose(r.outputs, network.numpy(), rtol=1e-12, atol=1e-13)
    c = act.collapse(r.weights, r.inputs, r.outputs, bias=bias, residual=residual)
    product = torch_product(r.weights, residual)
    np.testing.assert_allclose(c.product.matrix, product.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.product.singular_values, torch.linalg.svdvals(product).numpy(), rtol=1e-10)
    # the offset is where the biases end up: the network applied to zero inputs
    with torch.no_grad():
        h = torch.zeros(1, 12, dtype=torch.float64)
        for layer in layers:
            h = h + layer(h) if residual else layer(h)
    np.testing.assert_allclose(c.offset, h.numpy()[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c.single, network.numpy(), rtol=1e-11, atol=1e-12)
    assert c.error < 1e-13


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu", "sigmoid", "leaky_relu"])
def test_a_non_linear_network_is_not_one_matrix(name):
    r = gradient_flow(name, "kaiming_normal", depth=6, width=16, batch=32, seed=2)
    c = act.collapse(r.weights, r.inputs, r.outputs)
    assert c.error > 0.05
    layers, outputs, _ = torch_mlp(r, name, {}, 0.0, False, False)
    gap = torch.linalg.norm(outputs[-1].detach() - t(r.inputs) @ torch_product(r.weights, False).T)
    biggest = max(float(torch.linalg.norm(outputs[-1].detach())), float(np.linalg.norm(c.single)))
    assert c.error == pytest.approx(float(gap) / biggest, rel=1e-9)


def test_layer_norm_breaks_the_collapse_of_linear_layers():
    r = gradient_flow("linear", "xavier_normal", depth=5, width=16, batch=8, layer_norm=True)
    assert act.collapse(r.weights, r.inputs, r.outputs).error > 0.05


def test_product_stays_finite_at_any_depth_and_scale():
    for std, sign in ((1e3, 1), (1e-4, -1)):
        r = gradient_flow("linear", "normal", depth=100, width=16, batch=4, std=std)
        with np.errstate(all="raise"):
            product = act.weight_product(r.weights)
        assert np.all(np.isfinite(product.unit)) and np.abs(product.unit).max() == 1.0
        assert np.all(np.isfinite(product.log10_singular_values))
        assert sign * product.log10_scale > 250  # beyond float64 as one number: kept as a scale
        # the scaled product's singular values are the exact ones times the scale
        np.testing.assert_allclose(product.log10_singular_values,
                                   np.log10(np.linalg.svd(product.unit, compute_uv=False)) + product.log10_scale)
        c = act.collapse(r.weights, r.inputs, r.outputs, product=product)
        assert not np.any(np.isnan(c.single))
        if sign > 0:
            assert c.error == math.inf and np.all(np.isinf(r.outputs))
            assert np.all(np.isinf(product.singular_values))
        else:
            assert c.error < 1e-9 and np.all(product.singular_values < 1e-300)


def test_a_zero_product_has_zero_singular_values():
    weights = np.zeros((3, 4, 4))
    weights[0] = np.eye(4)
    product = act.weight_product(weights)
    np.testing.assert_array_equal(product.singular_values, 0.0)
    assert np.all(product.log10_singular_values == -math.inf)
    np.testing.assert_array_equal(product.matrix, 0.0)


@pytest.mark.parametrize("call, param", [
    (lambda: act.weight_product(np.zeros((2, 3, 4))), "weights"),
    (lambda: act.weight_product(np.full((2, 3, 3), math.nan)), "weights"),
    (lambda: act.weight_product(np.zeros((0, 3, 3))), "weights"),
    (lambda: act.weight_product(np.eye(3)[None], residual="no"), "residual"),
    (lambda: act.collapse(np.eye(3)[None], np.zeros((2, 4)), np.zeros((2, 4))), "inputs"),
    (lambda: act.collapse(np.eye(3)[None], np.zeros((2, 3)), np.zeros((1, 3))), "outputs"),
    (lambda: act.collapse(np.eye(3)[None], np.zeros((2, 3)), np.zeros((2, 3)), bias=math.nan), "bias"),
    (lambda: act.collapse(np.eye(3)[None], np.zeros((2, 3)), np.zeros((2, 3)),
                          product=act.weight_product(np.eye(4)[None])), "product"),
])
def test_bad_collapse_input_is_refused_naming_the_parameter(call, param):
    with pytest.raises(ValueError) as error:
        call()
    assert str(error.value).startswith(param + ":"), str(error.value)


# ---- bad input --------------------------------------------------------------------------------------
BAD = [
    (evaluate, ("swish_x", [0.0]), {}, "name"),
    (evaluate, ("relu", [0.0, math.nan]), {}, "x"),
    (evaluate, ("relu", [math.inf]), {}, "x"),
    (evaluate, ("relu", [0.0]), {"negative_slope": 0.1}, "negative_slope"),
    (evaluate, ("leaky_relu", [0.0]), {"slope": 0.1}, "slope"),
    (evaluate, ("leaky_relu", [0.0]), {"negative_slope": math.nan}, "negative_slope"),
    (evaluate, ("elu", [0.0]), {"alpha": math.inf}, "alpha"),
    (evaluate, ("swish", [0.0]), {"beta": "2"}, "beta"),
    (evaluate, ("swish", [0.0]), {"beta": True}, "beta"),
    (evaluate, ("softplus", [0.0]), {"beta": 0.0}, "beta"),
    (evaluate, ("softplus", [0.0]), {"threshold": -math.inf}, "threshold"),
    (properties, ("tanh",), {"threshold": 0.0}, "threshold"),
    (properties, ("tanh",), {"threshold": math.nan}, "threshold"),
    (properties, ("tanh",), {"x_lim": -1.0}, "x_lim"),
    (properties, ("tanh",), {"x_lim": math.inf}, "x_lim"),
    (properties, ("tahn",), {}, "name"),
    (properties, ("elu",), {"alpha": math.nan}, "alpha"),
    (softmax, ([1.0, 2.0], 0.0), {}, "temperature"),
    (softmax, ([1.0, 2.0], -1.0), {}, "temperature"),
    (softmax, ([1.0, 2.0], math.nan), {}, "temperature"),
    (softmax, ([1.0, 2.0], math.inf), {}, "temperature"),
    (softmax, ([],), {}, "logits"),
    (softmax, ([[1.0, 2.0]],), {}, "logits"),
    (softmax, ([1.0, math.inf],), {}, "logits"),
    (calculate_gain, ("gelu",), {}, "nonlinearity"),
    (calculate_gain, ("leaky_relu", math.nan), {}, "param"),
    (calculate_gain, ("leaky_relu", "0.2"), {}, "param"),
    (recommended_gain, ("foo",), {}, "activation"),
    (recommended_gain, ("leaky_relu",), {"negative_slope": math.inf}, "negative_slope"),
]
FLOW = dict(activation="relu", init="kaiming_normal", depth=3, width=8)
BAD_FLOW = [
    ({"activation": "Relu"}, "activation"), ({"init": "he"}, "init"), ({"init": None}, "init"),
    ({"depth": 0}, "depth"), ({"depth": 101}, "depth"), ({"depth": 2.0}, "depth"), ({"depth": True}, "depth"),
    ({"width": 0}, "width"), ({"width": 513}, "width"), ({"batch": 0}, "batch"), ({"batch": 1025}, "batch"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"gain": math.nan}, "gain"), ({"gain": -1.0}, "gain"),
    ({"gain": math.inf}, "gain"), ({"std": 0.0}, "std"), ({"std": -1.0}, "std"), ({"std": math.nan}, "std"),
    ({"bias": math.inf}, "bias"), ({"bias": math.nan}, "bias"), ({"residual": "yes"}, "residual"),
    ({"layer_norm": 1}, "layer_norm"), ({"alpha": 1.0}, "alpha"), ({"activation": "elu", "alpha": math.nan}, "alpha"),
]


@pytest.mark.parametrize("fn,args,kwargs,param", BAD, ids=[f"{f.__name__}-{p}-{i}" for i, (f, *_, p) in enumerate(BAD)])
def test_bad_input_is_refused_naming_the_parameter(fn, args, kwargs, param):
    with pytest.raises(ValueError) as error:
        fn(*args, **kwargs)
    assert str(error.value).startswith(param + ":"), str(error.value)


@pytest.mark.parametrize("change,param", BAD_FLOW, ids=[f"{p}-{i}" for i, (_, p) in enumerate(BAD_FLOW)])
def test_bad_gradient_flow_input_is_refused_naming_the_parameter(change, param):
    with pytest.raises(ValueError) as error:
        gradient_flow(**{**FLOW, **change})
    assert str(error.value).startswith(param + ":"), str(error.value)


def test_error_messages_list_the_choices():
    with pytest.raises(ValueError, match=r"^init: unknown 'foo' \(known: xavier_uniform, xavier_normal"):
        gradient_flow("relu", "foo", 2, 4)
    with pytest.raises(ValueError, match=r"^depth: must be an integer from 1 to 100, got 0$"):
        gradient_flow("relu", "normal", 0, 4)
    with pytest.raises(ValueError, match=r"^negative_slope: must be finite, got nan$"):
        evaluate("leaky_relu", [0.0], negative_slope=math.nan)
    with pytest.raises(ValueError, match=r"^activation: unknown 'foo' \(known: sigmoid, tanh, relu"):
        gradient_flow("foo", "normal", 2, 4)


# ---- module hygiene -----------------------------------------------------------------------------------
def test_module_exports_exist():
    for name in act.__all__:
        assert hasattr(act, name), name
    assert set(act.__all__) >= {"ACTIVATIONS", "INITS", "Activation", "Curves", "Properties", "SoftmaxResult",
                                "GradientFlow", "evaluate", "properties", "softmax", "calculate_gain",
                                "recommended_gain", "gradient_flow", "collapse", "weight_product", "Collapse",
                                "Product"}
