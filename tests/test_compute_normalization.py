"""workbench.compute.normalization against torch's batch/layer/instance/group/RMS norm and nn.BatchNorm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compute import normalization as norm
from workbench.compute.normalization import (
    KINDS,
    BatchNormState,
    batch_size_spread,
    make_input,
    make_sentences,
    normalize,
    running_stream,
    shares_stats,
    stat_index,
    update_running,
)

TOL = dict(rtol=1e-10, atol=1e-10)
EPS = 1e-5
FUZZ = settings(max_examples=30, deadline=None, database=None)


def t(x):
    return torch.from_numpy(np.array(x, dtype=np.float64))  # a writable copy


def close(actual, expected):
    np.testing.assert_allclose(actual, expected.detach().numpy() if torch.is_tensor(expected) else expected, **TOL)


def affine(shape, seed=1):
    rng = np.random.default_rng(seed)
    return 1 + 0.5 * rng.standard_normal(shape), rng.standard_normal(shape)


def torch_nchw(x, kind, groups=None, weight=None, bias=None, eps=EPS):
    x, w, b = t(x), None if weight is None else t(weight), None if bias is None else t(bias)
    if kind == "batch":
        return F.batch_norm(x, None, None, w, b, training=True, eps=eps)
    if kind == "layer":
        return F.layer_norm(x, x.shape[1:], w, b, eps=eps)
    if kind == "instance":
        return F.instance_norm(x, weight=w, bias=b, eps=eps)
    if kind == "group":
        return F.group_norm(x, groups, w, b, eps=eps)
    return F.rms_norm(x, x.shape[1:], w, eps=eps)


def torch_stats(x, kind, groups=None):
    """Biased var and mean over the reduced dims (rms: 0 and the mean square), as torch computes them."""
    x = t(x)
    if kind == "rms":
        square = x.pow(2).flatten(1).mean(1)
        return torch.zeros_like(square), square
    if kind == "group":
        var, mean = torch.var_mean(x.reshape(x.shape[0], groups, -1), dim=2, unbiased=False)
        return mean, var
    dims = {"batch": (0, *range(2, x.ndim)), "layer": tuple(range(1, x.ndim)),
            "instance": tuple(range(2, x.ndim))}[kind]
    var, mean = torch.var_mean(x, dim=dims, unbiased=False)
    return mean, var


# ---- NCHW against torch.nn.functional ---------------------------------------------------------------
SHAPES = [(2, 6, 3, 4), (1, 6, 3, 4), (4, 1, 2, 3), (3, 6, 1, 1), (5, 6, 7), (5, 6)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_affine", [False, True])
def test_nchw_matches_torch(shape, kind, with_affine):
    x = make_input(shape, seed=3)
    if kind == "instance" and math.prod(shape[2:]) == 1:  # torch: "Expected more than 1 spatial element"
        weight, bias = affine((shape[1],))
        result = normalize(x, kind, weight=weight, bias=bias)
        np.testing.assert_array_equal(result.var, 0.0)
        np.testing.assert_array_equal(result.y, np.broadcast_to(bias.reshape(-1, *[1] * (len(shape) - 2)), shape))
        return
    for groups in ([g for g in (1, 2, 3, 6) if shape[1] % g == 0] if kind == "group" else [None]):
        affine_shape = shape[1:] if kind in ("layer", "rms") else (shape[1],)
        weight, bias = affine(affine_shape) if with_affine else (None, None)
        if kind == "rms":
            bias = None  # torch's RMSNorm has no bias
        result = normalize(x, kind, groups=groups, weight=weight, bias=bias)
        close(result.y, torch_nchw(x, kind, groups, weight, bias))
        mean, var = torch_stats(x, kind, groups)
        close(result.mean, mean)
        close(result.var, var)
        assert result.y.dtype == np.float64 and result.y.shape == shape
        assert result.mean.shape == tuple(mean.shape) and result.n_stats == mean.numel()
        assert result.count * result.n_stats == x.size


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_eps_is_passed_like_torch(eps):
    x = make_input((3, 4, 2, 2), seed=5)
    for kind in KINDS:
        close(normalize(x, kind, groups=2, eps=eps).y, torch_nchw(x, kind, 2, eps=eps))


@pytest.mark.parametrize("kind, axes, n_stats, count", [
    ("batch", (0, 2, 3), 6, 2 * 3 * 4), ("layer", (1, 2, 3), 2, 6 * 3 * 4), ("rms", (1, 2, 3), 2, 6 * 3 * 4),
    ("instance", (2, 3), 12, 3 * 4), ("group", (1, 2, 3), 6, 2 * 3 * 4)])
def test_reduced_axes_and_counts(kind, axes, n_stats, count):
    result = normalize(make_input((2, 6, 3, 4)), kind, groups=3)
    assert (result.reduced_axes, result.n_stats, result.count) == (axes, n_stats, count)


def test_group_norm_with_one_group_is_layer_norm_and_with_c_groups_is_instance_norm():
    x = make_input((3, 6, 4, 5), seed=2)
    close(normalize(x, "group", groups=1).y, normalize(x, "layer").y)
    close(normalize(x, "group", groups=6).y, normalize(x, "instance").y)
    close(normalize(x, "group", groups=6).var.ravel(), normalize(x, "instance").var.ravel())


# ---- NTD: sentences of tokens -------------------------------------------------------------------
def test_ntd_layer_and_rms_are_per_token():
    x = make_input((3, 5, 8), seed=4, layout="NTD")
    weight, bias = affine((8,))
    result = normalize(x, "layer", layout="NTD", weight=weight, bias=bias)
    close(result.y, F.layer_norm(t(x), (8,), t(weight), t(bias), eps=EPS))
    var, mean = torch.var_mean(t(x), dim=2, unbiased=False)
    close(result.mean, mean)
    close(result.var, var)
    assert (result.reduced_axes, result.n_stats, result.count, result.mean.shape) == ((2,), 15, 8, (3, 5))
    rms = normalize(x, "rms", layout="NTD", weight=weight)
    close(rms.y, F.rms_norm(t(x), (8,), t(weight), eps=EPS))
    close(rms.var, t(x).pow(2).mean(2))


@pytest.mark.parametrize("kind, groups", [("batch", None), ("instance", None), ("group", 2), ("group", 4)])
def test_ntd_batch_instance_group_are_torchs_on_the_transpose(kind, groups):
    x = make_input((3, 5, 8), seed=6, layout="NTD")
    weight, bias = affine((8,))
    channels_first = t(x).transpose(1, 2)
    expected = torch_nchw(channels_first.numpy(), kind, groups, weight, bias).transpose(1, 2)
    result = normalize(x, kind, groups=groups, weight=weight, bias=bias, layout="NTD")
    close(result.y, expected)
    mean, var = torch_stats(channels_first.numpy(), kind, groups)
    close(result.mean, mean)
    close(result.var, var)
    assert result.reduced_axes == {"batch": (0, 1), "instance": (1,), "group": (1, 2)}[kind]


def test_ntd_batch_norm_with_padding_is_batchnorm1d():
    x, mask = make_sentences([5, 2, 3], 5, 6, seed=1)
    bn = torch.nn.BatchNorm1d(6, eps=EPS).double()
    expected = bn(t(x).transpose(1, 2)).transpose(1, 2)
    for given_mask in (None, mask):
        result = normalize(x, "batch", layout="NTD", mask=given_mask)
        close(result.y, expected)
        assert result.count == 15
    close(normalize(x, "batch", layout="NTD", include_padding=False).y, expected)  # no mask: nothing to exclude


@pytest.mark.parametrize("pad_value", [0.0, 7.5])
def test_ntd_batch_norm_without_padding_uses_real_tokens_only(pad_value):
    x, mask = make_sentences([4, 1, 3], 4, 5, seed=2, pad_value=pad_value)
    weight, bias = affine((5,))
    result = normalize(x, "batch", layout="NTD", mask=mask, include_padding=False, weight=weight, bias=bias)
    var, mean = torch.var_mean(t(x)[t(mask).bool()], dim=0, unbiased=False)
    close(result.mean, mean)
    close(result.var, var)
    close(result.y, (t(x) - mean) / torch.sqrt(var + EPS) * t(weight) + t(bias))  # every token, padding too
    assert result.count == 8
    other = make_sentences([4, 1, 3], 4, 5, seed=2, pad_value=pad_value + 3)[0]
    np.testing.assert_array_equal(normalize(other, "batch", layout="NTD", mask=mask, include_padding=False).mean,
                                  result.mean)


def test_padding_flag_does_not_change_per_token_kinds():
    x, mask = make_sentences([3, 1], 3, 4, seed=3)
    for kind in ("layer", "rms", "instance", "group"):
        expected = normalize(x, kind, groups=2, layout="NTD").y
        np.testing.assert_array_equal(normalize(x, kind, groups=2, layout="NTD", mask=mask,
                                                include_padding=False).y, expected)


# ---- running statistics and evaluation mode ------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_statistics_match_batchnorm2d(momentum):
    bn = torch.nn.BatchNorm2d(3, momentum=momentum, eps=EPS).double()
    with torch.no_grad():
        bn.weight.copy_(t([1.5, -0.5, 2.0]))
        bn.bias.copy_(t([0.1, 0.2, -0.3]))
    state = BatchNormState.initial(3)
    for k in range(6):
        x = make_input((4, 3, 2, 3), seed=10 + k) * (1 + 0.2 * k)
        state = update_running(state, x, momentum)
        bn.train()(t(x))
    close(state.running_mean, bn.running_mean)
    close(state.running_var, bn.running_var)
    assert state.num_batches == int(bn.num_batches_tracked) == 6
    x = make_input((5, 3, 2, 3), seed=99)
    result = normalize(x, "batch", running=state, weight=[1.5, -0.5, 2.0], bias=[0.1, 0.2, -0.3])
    close(result.y, bn.eval()(t(x)))
    np.testing.assert_array_equal(result.mean, state.running_mean)
    np.testing.assert_array_equal(result.var, state.running_var)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_statistics_of_sentences_match_batchnorm1d(momentum):
    padded = torch.nn.BatchNorm1d(4, momentum=momentum, eps=EPS).double()
    packed = torch.nn.BatchNorm1d(4, momentum=momentum, eps=EPS).double()
    with_padding, without_padding = BatchNormState.initial(4), BatchNormState.initial(4)
    for k in range(4):
        x, mask = make_sentences([3, 1 + k % 3, 2], 3, 4, seed=k)
        with_padding = update_running(with_padding, x, momentum, layout="NTD", mask=mask)
        without_padding = update_running(without_padding, x, momentum, layout="NTD", mask=mask, include_padding=False)
        padded.train()(t(x).transpose(1, 2))
        packed.train()(t(x)[t(mask).bool()])  # only the real tokens, as a packed batch
    close(with_padding.running_mean, padded.running_mean)
    close(with_padding.running_var, padded.running_var)
    close(without_padding.running_mean, packed.running_mean)
    close(without_padding.running_var, packed.running_var)
    x, _ = make_sentences([2, 3], 3, 4, seed=50)
    close(normalize(x, "batch", layout="NTD", running=without_padding).y,
          packed.eval()(t(x).transpose(1, 2)).transpose(1, 2))


def test_one_value_per_channel_keeps_the_running_variance():
    # torch raises "Expected more than 1 value per channel when training"; we update the mean only.
    state = BatchNormState(np.array([1.0, 2.0]), np.array([3.0, 4.0]), 2)
    x = np.array([[5.0, -6.0]])
    new = update_running(state, x, 0.25)
    np.testing.assert_allclose(new.running_mean, [0.75 * 1 + 0.25 * 5, 0.75 * 2 - 0.25 * 6], rtol=1e-15)
    np.testing.assert_array_equal(new.running_var, [3.0, 4.0])
    assert new.num_batches == 3
    result = normalize(x, "batch", bias=[0.5, -0.5])
    np.testing.assert_array_equal(result.y, [[0.5, -0.5]])  # var 0: the bias only
    np.testing.assert_array_equal(result.var, [0.0, 0.0])


@pytest.mark.parametrize("momentum", [0.0, 1.0])
def test_momentum_limits(momentum):
    state = BatchNormState.initial(2)
    x = make_input((3, 2, 4), seed=1)
    new = update_running(state, x, momentum)
    var, mean = torch.var_mean(t(x), dim=(0, 2), unbiased=True)
    close(new.running_mean, mean if momentum else state.running_mean)
    close(new.running_var, var if momentum else state.running_var)


def test_state_is_validated_and_read_only():
    state = BatchNormState([0, 1], [1, 2], 0)
    assert state.running_mean.dtype == np.float64 and not state.running_mean.flags.writeable
    with pytest.raises(ValueError, match="^running_var: "):
        BatchNormState([0.0], [-1.0])
    with pytest.raises(ValueError, match="^running_var: "):
        BatchNormState([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="^running_mean: "):
        BatchNormState([np.nan], [1.0])
    with pytest.raises(ValueError, match="^num_batches: "):
        BatchNormState([0.0], [1.0], -1)
    with pytest.raises(ValueError, match="^momentum: "):
        update_running(state, np.ones((2, 2)), 1.5)
    with pytest.raises(ValueError, match="^momentum: "):
        update_running(state, np.ones((2, 2)), float("nan"))
    with pytest.raises(ValueError, match="^state: "):
        update_running(state, np.ones((2, 3)))
    with pytest.raises(ValueError, match="^state: "):
        update_running(None, np.ones((2, 2)))


# ---- which cells share statistics ----------------------------------------------------------------
def formula_index(kind, shape, groups, layout):
    """The documented numbering, written out per cell."""
    out = np.empty(shape, dtype=int)
    for cell in np.ndindex(*shape):
        if layout == "NCHW":
            n, c = cell[:2]
            size_c = shape[1]
        else:
            n, tok, c = cell
            size_c = shape[2]
        out[cell] = {"batch": c, "instance": n * size_c + c,
                     "group": n * (groups or 1) + c // (size_c // (groups or 1)),
                     "layer": n if layout == "NCHW" else n * shape[1] + tok}[kind if kind != "rms" else "layer"]
    return out


@pytest.mark.parametrize("layout, shape", [("NCHW", (2, 6, 3, 4)), ("NCHW", (3, 4, 5)), ("NTD", (3, 4, 6))])
@pytest.mark.parametrize("kind", KINDS)
def test_stat_index_numbering_and_stats_order(layout, shape, kind):
    index = stat_index(kind, shape, groups=2, layout=layout)
    np.testing.assert_array_equal(index, formula_index(kind, shape, 2, layout))
    result = normalize(make_input(shape, layout=layout), kind, groups=2, layout=layout)
    assert index.max() + 1 == result.n_stats and np.bincount(index.ravel()).tolist() == [result.count] * result.n_stats
    assert result.mean.ravel()[index].shape == shape  # mean.ravel()[index] is every cell's mean


@pytest.mark.parametrize("kind, marked", [("batch", 2 * 3 * 4), ("layer", 6 * 3 * 4), ("rms", 6 * 3 * 4),
                                          ("instance", 3 * 4), ("group", 2 * 3 * 4)])
def test_shares_stats_marks_the_cells_of_one_statistic(kind, marked):
    shape = (2, 6, 3, 4)
    cells = shares_stats(kind, shape, (1, 4, 2, 0), groups=3)
    assert cells.dtype == bool and cells.shape == shape and cells.sum() == marked
    assert cells[1, 4, 2, 0]
    x = make_input(shape)
    result = normalize(x, kind, groups=3)
    assert result.count == marked
    chosen, number = x[cells], stat_index(kind, shape, 3)[1, 4, 2, 0]
    if kind == "rms":
        np.testing.assert_allclose(result.var.ravel()[number], np.mean(chosen**2), **TOL)
    else:
        np.testing.assert_allclose(result.mean.ravel()[number], chosen.mean(), **TOL)
        np.testing.assert_allclose(result.var.ravel()[number], chosen.var(), **TOL)


@pytest.mark.parametrize("index", [(2, 0, 0, 0), (0, 0, 0), (0, 0, 0, -1), (0, 0, 0, 0.0), 3])
def test_shares_stats_rejects_bad_index(index):
    with pytest.raises(ValueError, match="^index: "):
        shares_stats("batch", (2, 3, 4, 5), index)


# ---- degenerate input, validation, no side effects --------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", [0.0, 0.1, -3.7e5])
def test_constant_input_normalizes_to_exactly_zero(kind, value):
    x = np.full((3, 4, 2, 5), value)
    weight, bias = affine((4, 2, 5) if kind in ("layer", "rms") else (4,))
    result = normalize(x, kind, groups=2, weight=weight, bias=bias)
    assert np.all(np.isfinite(result.y))
    if kind == "rms":
        expected = np.sign(value) * weight / np.sqrt(1 + EPS / value**2) + bias if value else bias
        np.testing.assert_allclose(result.y, np.broadcast_to(expected, x.shape), rtol=1e-12, atol=1e-14)
    else:
        np.testing.assert_array_equal(result.y, np.broadcast_to(bias if kind == "layer" else bias.reshape(4, 1, 1),
                                                                x.shape))
        np.testing.assert_array_equal(result.mean, value)
        np.testing.assert_array_equal(result.var, 0.0)


def test_constant_sentence_features_and_tiny_and_huge_values():
    x, mask = make_sentences([3, 2], 3, 4, pad_value=1.0)
    x[:, :, 1] = 0.3
    for padding in (True, False):
        result = normalize(x, "batch", layout="NTD", mask=mask, include_padding=padding)
        np.testing.assert_array_equal(result.y[mask][:, 1], 0.0)
    for scale in (1e-300, 1e95):
        x = make_input((2, 3, 4)) * scale
        for kind in KINDS:
            result = normalize(x, kind, groups=3, eps=norm.MIN_EPS)
            assert np.all(np.isfinite(result.y)) and np.all(np.isfinite(result.var))


def bad_cases():
    x = make_input((2, 4, 3, 3))
    sentences, mask = make_sentences([3, 2], 3, 4)
    nan_x, inf_x = x.copy(), x.copy()
    nan_x[0, 1, 2, 2], inf_x[1, 0, 0, 0] = np.nan, -np.inf
    state = BatchNormState.initial(4)
    return [
        ("kind", dict(x=x, kind="batchnorm")), ("kind", dict(x=x, kind=None)),
        ("layout", dict(x=x, kind="batch", layout="NHWC")),
        ("groups", dict(x=x, kind="group", groups=3)), ("groups", dict(x=x, kind="group")),
        ("groups", dict(x=x, kind="group", groups=0)), ("groups", dict(x=x, kind="group", groups=True)),
        ("groups", dict(x=sentences, kind="group", groups=3, layout="NTD")),
        ("eps", dict(x=x, kind="layer", eps=0.0)), ("eps", dict(x=x, kind="layer", eps=-1e-5)),
        ("eps", dict(x=x, kind="layer", eps=float("nan"))), ("eps", dict(x=x, kind="layer", eps=float("inf"))),
        ("eps", dict(x=x, kind="layer", eps="1e-5")),
        ("x", dict(x=nan_x, kind="batch")), ("x", dict(x=inf_x, kind="layer")),
        ("x", dict(x=x[0, 0, 0], kind="batch")), ("x", dict(x=np.ones((2, 0, 3)), kind="batch")),
        ("x", dict(x=x, kind="batch", layout="NTD")), ("x", dict(x=np.full((2, 2), 1e200), kind="batch")),
        ("x", dict(x=np.array(["a", "b"]), kind="batch")),
        ("mask", dict(x=sentences, kind="batch", layout="NTD", mask=mask[:, :2])),
        ("mask", dict(x=sentences, kind="batch", layout="NTD", mask=mask.astype(int))),
        ("mask", dict(x=sentences, kind="batch", layout="NTD", mask=np.zeros_like(mask))),
        ("mask", dict(x=x[:, :, :, 0], kind="batch", mask=np.ones((2, 4), bool))),
        ("include_padding", dict(x=sentences, kind="batch", layout="NTD", mask=mask, include_padding=0)),
        ("weight", dict(x=x, kind="batch", weight=np.ones(3))), ("weight", dict(x=x, kind="layer", weight=np.ones(4))),
        ("weight", dict(x=x, kind="group", groups=2, weight=[1, 2, np.inf, 3])),
        ("bias", dict(x=sentences, kind="layer", layout="NTD", bias=np.ones((3, 4)))),
        ("running", dict(x=x, kind="layer", running=state)), ("running", dict(x=x, kind="batch", running="state")),
        ("running", dict(x=x[:, :3], kind="batch", running=state)),
    ]


@pytest.mark.parametrize("name, kwargs", bad_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_invalid_arguments_name_their_parameter(name, kwargs):
    x, kind = kwargs.pop("x"), kwargs.pop("kind")
    with pytest.raises(ValueError, match=f"^{name}: "):
        normalize(x, kind, **kwargs)


def test_nan_message_is_exact():
    with pytest.raises(ValueError, match=r"^x: contains NaN or infinite values$"):
        normalize(np.array([[np.nan, 1.0]]), "batch")


@pytest.mark.parametrize("kind", KINDS)
def test_input_is_not_modified_and_results_are_read_only(kind):
    x, mask = make_sentences([3, 1, 2], 3, 4)
    for data, layout, m in ((x, "NTD", mask), (make_input((2, 4, 3, 3)), "NCHW", None)):
        before, weight = data.copy(), np.ones(4) if layout == "NTD" or kind not in ("layer", "rms") else None
        data.flags.writeable = False  # any write would raise
        result = normalize(data, kind, groups=2, layout=layout, mask=m, include_padding=False, weight=weight)
        np.testing.assert_array_equal(data, before)
        assert not result.y.flags.writeable and not result.mean.flags.writeable and not result.var.flags.writeable
        assert result.y is not data


def test_integer_and_float32_input_are_computed_in_float64():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    close(normalize(x, "layer").y, torch_nchw(x.astype(np.float64), "layer"))
    assert normalize(x.astype(np.float32), "batch").y.dtype == np.float64


@FUZZ
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 3), c=st.sampled_from([1, 2, 4]), h=st.integers(1, 3),
       w=st.integers(2, 3), seed=st.integers(0, 2**16), eps=st.sampled_from([1e-5, 1e-2, 1.0]))
def test_fuzz_against_torch(kind, n, c, h, w, seed, eps):
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)) * 3 + 1
    if kind == "batch" and n * h * w == 1:
        return
    groups = 2 if c % 2 == 0 else 1
    close(normalize(x, kind, groups=groups, eps=eps).y, torch_nchw(x, kind, groups, eps=eps))


# ---- inputs for the views ---------------------------------------------------------------------------
def test_make_input_is_seeded_prefix_stable_and_ignores_global_state():
    np.random.seed(1)
    a = make_input((6, 4, 3, 3), seed=7)
    np.random.seed(2)
    np.testing.assert_array_equal(make_input((6, 4, 3, 3), seed=7), a)
    np.testing.assert_array_equal(make_input((9, 4, 3, 3), seed=7)[:6], a)
    np.testing.assert_array_equal(make_input((6, 70, 3, 3), seed=7)[:, :4], a)
    np.testing.assert_array_equal(make_input((2, 4, 3, 3), seed=7), a[:2])
    assert not np.array_equal(make_input((6, 4, 3, 3), seed=8), a)
    assert a.dtype == np.float64
    s = make_input((5, 6, 4), seed=7, layout="NTD")
    np.testing.assert_array_equal(make_input((8, 6, 9), seed=7, layout="NTD")[:5, :, :4], s)


def test_make_input_formula_and_shifts():
    x = make_input((400, 3, 50), seed=1, channel_shift=2.0, sample_shift=0.0)
    channel_means = x.mean(axis=(0, 2))
    assert np.ptp(channel_means) > 0.5  # channels clearly offset
    flat = make_input((400, 3, 50), seed=1, channel_shift=0.0, sample_shift=0.0)
    assert abs(flat.mean()) < 0.02 and abs(flat.std() - 1) < 0.02  # just z
    samples = make_input((400, 3, 50), seed=1, channel_shift=0.0, sample_shift=2.0)
    assert samples.mean(axis=(1, 2)).std() > 1.5  # samples clearly offset
    for name, kwargs in (("channel_shift", dict(channel_shift=-1.0)), ("sample_shift", dict(sample_shift=np.nan)),
                         ("seed", dict(seed=-1)), ("shape", dict(layout="NTD")), ("layout", dict(layout="NHWC"))):
        with pytest.raises(ValueError, match=f"^{name}: "):
            make_input((2, 3, 4, 5), **kwargs)


def test_make_sentences_pads_and_masks():
    x, mask = make_sentences([3, 1, 4], 4, 5, seed=2, pad_value=-9.0)
    assert x.shape == (3, 4, 5) and mask.shape == (3, 4) and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(axis=1), [3, 1, 4])
    np.testing.assert_array_equal(x[~mask], -9.0)
    np.testing.assert_array_equal(x[mask], make_input((3, 4, 5), seed=2, layout="NTD")[mask])
    features = x[mask].mean(axis=0)
    assert np.ptp(features) > 0.5  # per-feature offsets: batch norm and layer norm differ
    for lengths in ([], [0, 2], [5], [2.0], "ab"):
        with pytest.raises(ValueError, match="^lengths: "):
            make_sentences(lengths, 4, 5)


# ---- batch-size dependence ------------------------------------------------------------------------
def test_batch_size_spread():
    sizes = [1, 2, 4, 8, 16, 32, 64]
    result = batch_size_spread(sizes, seed=3)
    assert all(getattr(result, f).shape == (7,) for f in ("batch_mean_avg", "batch_var_std", "probe_spread_batch"))
    np.testing.assert_array_equal(result.probe_spread_layer, 0.0)
    np.testing.assert_array_equal(result.probe_spread_group, 0.0)
    assert result.probe_spread_batch[-1] < result.probe_spread_batch[1]
    assert result.batch_mean_std[-1] < result.batch_mean_std[1] and result.batch_var_std[-1] < result.batch_var_std[1]
    population = make_input((512, 4, 9), seed=3)
    close(result.population_mean, population[:, 0].mean())
    close(result.population_var, population[:, 0].var())
    # B = 1: the batch is the probe alone, so batch norm's statistics are instance norm's
    instance = normalize(population[:1], "instance")
    close(result.batch_mean_avg[0], instance.mean[0, 0])
    close(result.batch_var_avg[0], instance.var[0, 0])
    assert result.batch_mean_std[0] == result.batch_var_std[0] == result.probe_spread_batch[0] == 0.0


def test_batch_size_spread_with_the_whole_population_is_the_population():
    result = batch_size_spread([50], channels=2, spatial=3, population=50, draws=5, groups=2)
    population = make_input((50, 2, 3))
    close(result.batch_mean_avg[0], population[:, 0].mean())
    close(result.batch_var_avg[0], population[:, 0].var())
    assert result.batch_mean_std[0] < 1e-12 and result.probe_spread_batch[0] < 1e-12
    for name, kwargs in (("batch_sizes", dict(batch_sizes=[0])), ("batch_sizes", dict(batch_sizes=[51])),
                         ("groups", dict(batch_sizes=[2], groups=3)), ("draws", dict(batch_sizes=[2], draws=0))):
        with pytest.raises(ValueError, match=f"^{name}: "):
            batch_size_spread(population=50, channels=2, **kwargs)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_stream_matches_batchnorm(momentum):
    result = running_stream(12, batch_size=5, channels=3, spatial=4, drift=1.5, momentum=momentum, seed=2)
    assert result.inputs.shape == (12, 5, 3, 4)
    bn = torch.nn.BatchNorm2d(3, momentum=momentum, eps=EPS, affine=False).double()
    running = []
    for batch in result.inputs:
        bn.train()(t(batch)[..., None])
        running.append((float(bn.running_mean[0]), float(bn.running_var[0])))
    close(result.running_mean, [m for m, _ in running])
    close(result.running_var, [v for _, v in running])
    close(result.state.running_mean, bn.running_mean)
    close(result.state.running_var, bn.running_var)
    assert result.state.num_batches == 12
    close(result.eval_output, bn.eval()(t(result.inputs[-1])[..., None])[..., 0])
    close(result.train_output, F.batch_norm(t(result.inputs[-1]), None, None, training=True, eps=EPS))
    var, mean = torch.var_mean(t(result.inputs[:, :, 0]), dim=(1, 2), unbiased=False)
    close(result.batch_mean, mean)
    close(result.batch_var, var)


def test_running_stream_drift_and_prefix():
    short = running_stream(10, drift=2.0, seed=1)
    np.testing.assert_array_equal(running_stream(20, drift=0.0, seed=1).inputs[:10],
                                  running_stream(10, drift=0.0, seed=1).inputs)  # the noise is prefix-stable
    close(short.true_mean - short.true_mean[0], 2.0 * np.arange(10) / 10)
    close(short.true_var / short.true_var[0], np.exp(2 * 2.0 * np.arange(10) / 10))
    flat = running_stream(10, drift=0.0, seed=1)
    np.testing.assert_array_equal(flat.true_mean, flat.true_mean[0])
    with pytest.raises(ValueError, match="^momentum: "):
        running_stream(3, momentum=-0.1)
    with pytest.raises(ValueError, match="^batches: "):
        running_stream(0)


# ---- the module --------------------------------------------------------------------------------------
def test_module_exports_exist():
    for name in norm.__all__:
        assert hasattr(norm, name), name
