"""workbench.compute.receptive_field against a closed form, torch.nn stacks and autograd."""

from __future__ import annotations

import math
import re
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workbench.compute import receptive_field as rfm
from workbench.compute.receptive_field import (
    KINDS,
    MAX_LAYERS,
    PRESET_LABELS,
    PRESETS,
    Layer,
    effective_rf,
    format_layers,
    input_region,
    parse_layers,
    preset,
    receptive_field,
    stacked_convs,
    validate,
)

FUZZ = settings(max_examples=60, deadline=None, database=None)

CUSTOM = {  # stacks with dilation, even kernels, strides above the kernel and pools with padding
    "even kernels": (Layer("conv", 4, 2, 1), Layer("maxpool", 2, 2), Layer("conv", 2), Layer("avgpool", 3, 3, 1)),
    "dilated strided": (Layer("conv", 3, 2, 2, 2), Layer("conv", 5, 1, 4, 2), Layer("maxpool", 3, 2, 1, 2),
                        Layer("conv", 3, 1, 1)),
    "stride over kernel": (Layer("conv", 3, 1, 1), Layer("conv", 1, 3), Layer("conv", 3, 1, 1), Layer("avgpool", 2, 2)),
    "no padding": (Layer("conv", 5), Layer("conv", 3, 2), Layer("maxpool", 2, 2), Layer("conv", 3)),
}


def closed_form(layers):
    """Araujo et al. (Distill 2019), eqs. 2 and 6: with S_l the product of the strides below layer l,
    rf = 1 + sum (k_eff_l - 1) S_l and the first unit's field starts at -sum p_l S_l."""
    out = []
    for top in range(1, len(layers) + 1):
        below = [math.prod(layer.stride for layer in layers[:i]) for i in range(top)]
        stack = layers[:top]
        rf = 1 + sum((layer.dilation * (layer.kernel - 1)) * s for layer, s in zip(stack, below))
        first = -sum(layer.padding * s for layer, s in zip(stack, below))
        out.append((rf, math.prod(layer.stride for layer in stack), first + (rf - 1) / 2))
    return out


def torch_stack(layers, weights="random", seed=0, max_pool=False):
    """The stack from torch.nn, one channel, float64; convs with positive weights summing to 1.
    Unless ``max_pool``, a max pool becomes an average pool: a conv with uniform weights (which,
    unlike AvgPool2d, can be dilated as MaxPool2d can)."""
    rng = np.random.default_rng(seed)
    modules = []
    for layer in layers:
        k, s, p, d = layer.kernel, layer.stride, layer.padding, layer.dilation
        if layer.kind == "conv" or (layer.kind == "maxpool" and not max_pool):
            conv = torch.nn.Conv2d(1, 1, k, s, p, d, bias=False, dtype=torch.float64)
            random = weights == "random" and layer.kind == "conv"
            w = rng.uniform(0.1, 1.0, (1, 1, k, k)) if random else np.ones((1, 1, k, k))
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(w / w.sum()))
            modules.append(conv)
        elif layer.kind == "maxpool":
            modules.append(torch.nn.MaxPool2d(k, s, p, d))
        else:
            modules.append(torch.nn.AvgPool2d(k, s, p))
    return torch.nn.Sequential(*modules)


def input_gradient(net, n, top, unit):
    """|d y / d x| of unit (unit, unit) of layer ``top`` for an n x n input of ones."""
    x = torch.ones(1, 1, n, n, dtype=torch.float64, requires_grad=True)
    net[: top + 1](x)[0, 0, unit, unit].backward()
    return x.grad[0, 0].abs().numpy()


def span(g, axis):
    """(first, last) index with a non-zero gradient along ``axis`` (0: rows)."""
    hit = np.flatnonzero(g.any(axis=1 - axis))
    return int(hit[0]), int(hit[-1])


# ---- the theoretical field --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*PRESETS, *CUSTOM])
def test_table_equals_the_closed_form(name):
    layers = PRESETS.get(name) or CUSTOM[name]
    table = receptive_field(layers)
    assert table.input_size is None and len(table.rows) == len(layers)
    for row, layer, (rf, jump, start) in zip(table.rows, layers, closed_form(layers)):
        assert (row.rf, row.jump, row.start) == (rf, jump, start)
        assert (row.name, row.kind, row.size) == (layer.name, layer.kind, None)


@pytest.mark.parametrize("name", [*PRESETS, *CUSTOM])
def test_autograd_reaches_exactly_the_theoretical_field(name):
    """Random positive weights, max pools averaged, no ReLU: nothing cancels and every path is
    linear, so the pixels with a non-zero gradient span exactly the theoretical field."""
    layers = PRESETS.get(name) or CUSTOM[name]
    last = receptive_field(layers).rows[-1]
    n = last.rf + 2 * last.jump + 8  # room for one unit whose field is inside the image
    net = torch_stack(layers)
    rows = receptive_field(layers, n).rows
    tops = [len(layers) - 1] if name in PRESETS else range(len(layers))  # every layer for the small stacks
    for top in tops:
        row = rows[top]
        unit = (row.size - 1) // 2
        g = input_gradient(net, n, top, unit)
        region = input_region(layers, top, unit, n)
        assert 0 < region.first and region.last < n - 1 and region.padding_pixels == 0
        for axis in (0, 1):
            assert span(g, axis) == (region.first, region.last)
        assert region.last - region.first + 1 == row.rf


@pytest.mark.parametrize("name", PRESETS)
def test_output_sizes_equal_torch_on_224(name):
    layers = PRESETS[name]
    table = receptive_field(layers, 224)
    y = torch.zeros(1, 1, 224, 224, dtype=torch.float64)
    for row, module in zip(table.rows, torch_stack(layers, max_pool=True)):
        y = module(y)
        assert y.shape[-2:] == (row.size, row.size), row.name


@pytest.mark.parametrize("name,layer,rf", [
    ("alexnet", "pool5", 195), ("vgg16", "conv5_3", 196), ("vgg16", "pool5", 212),
    ("resnet50_v1", "res5c_branch2c", 483), ("resnet50_v1_5", "res5c_branch2c", 427),
    ("mobilenet_v1", "conv_pw13", 315), ("dilated", "conv_d8", 31),
])
def test_known_receptive_fields(name, layer, rf):
    rows = {row.name: row for row in receptive_field(PRESETS[name], 224).rows}
    assert rows[layer].rf == rf


def test_known_sizes_and_jumps():
    vgg = receptive_field(PRESETS["vgg16"], 224).rows
    assert [r.size for r in vgg if r.kind == "maxpool"] == [112, 56, 28, 14, 7]
    assert vgg[-1].jump == 32 and vgg[-1].start == 15.5
    alex = receptive_field(PRESETS["alexnet"], 224).rows
    assert [r.size for r in alex] == [55, 27, 27, 13, 13, 13, 13, 6]
    for name in ("resnet50_v1", "resnet50_v1_5", "mobilenet_v1"):
        last = receptive_field(PRESETS[name], 224).rows[-1]
        assert (last.size, last.jump) == (7, 32)


def test_formula_shows_the_recurrence():
    rows = receptive_field((Layer("conv", 3, 2), Layer("conv", 3, 1, 0, 2), Layer("maxpool", 2, 2))).rows
    assert rows[0].formula == "rf = 1 + (3 - 1) x 1 = 3, jump = 1 x 2 = 2"
    assert rows[1].formula == "rf = 3 + (5 - 1) x 2 = 11, jump = 2 x 1 = 2"  # the dilated kernel spans 5
    assert rows[2].formula == "rf = 11 + (2 - 1) x 2 = 13, jump = 2 x 2 = 4"
    assert Layer("conv", 3, dilation=4).effective_kernel == 9


# ---- parameter counts -----------------------------------------------------------------------------
def torch_conv_params(layers, input_channels=3):
    counts, channels = [], input_channels
    for layer in layers:
        if layer.kind != "conv":
            counts.append(0)
            continue
        conv = torch.nn.Conv2d(channels, layer.channels, layer.kernel, groups=layer.groups, device="meta")
        counts.append(sum(p.numel() for p in conv.parameters()))
        channels = layer.channels
    return counts


@pytest.mark.parametrize("name", PRESETS)
def test_parameter_counts_equal_torch_conv2d(name):
    table = receptive_field(PRESETS[name])
    assert [row.params for row in table.rows] == torch_conv_params(PRESETS[name])
    assert table.total_params == sum(torch_conv_params(PRESETS[name]))


def test_vgg16_convs_have_the_torchvision_parameter_count():
    assert receptive_field(PRESETS["vgg16"]).total_params == 14_714_688
    grey = receptive_field(PRESETS["vgg16"], input_channels=1).rows[0]
    assert grey.params == 3 * 3 * 1 * 64 + 64


def test_unknown_channels_leave_counts_unknown():
    rows = receptive_field((Layer("conv", 3, channels=8), Layer("maxpool", 2, 2), Layer("conv", 3),
                            Layer("conv", 3, channels=4), Layer("conv", 1, channels=2))).rows
    assert [r.params for r in rows] == [3 * 9 * 8 + 8, 0, None, None, 4 * 2 + 2]
    assert receptive_field((Layer("conv", 3),)).total_params is None


# ---- which pixels a unit sees -------------------------------------------------------------------
PADDED = (Layer("conv", 3, 1, 1), Layer("conv", 3, 2, 2, 2), Layer("avgpool", 2, 2), Layer("conv", 3, 1, 1))


def test_input_region_by_hand():
    one = (Layer("conv", 3, padding=1),)
    assert input_region(one, 0, 0, 5) == rfm.Region(-1, 1, (0, 1), 1)
    assert input_region(one, 0, 2, 5) == rfm.Region(1, 3, (1, 3), 0)
    assert input_region(one, 0, 4, 5) == rfm.Region(3, 5, (3, 4), 1)
    wide = (Layer("conv", 1, padding=2),)  # units 0, 1, 5 and 6 see only padding
    assert input_region(wide, 0, 0, 3) == rfm.Region(-2, -2, (0, -2), 1)
    even = (Layer("conv", 3, padding=1), Layer("maxpool", 2, 2))  # rf 4, start 0.5
    assert input_region(even, 1, 0, 8) == rfm.Region(-1, 2, (0, 2), 1)
    assert input_region(even, 1, 3, 8) == rfm.Region(5, 8, (5, 7), 1)


def test_input_region_of_every_unit_equals_autograd():
    """Clipped: the non-zero gradient on the image itself. Unclipped: the same unit on an image
    with a margin of whole jumps around it, where nothing is padding."""
    n, margin = 12, 16
    net = torch_stack(PADDED, weights="uniform")
    for top, row in enumerate(receptive_field(PADDED, n).rows):
        shift = margin // row.jump
        for unit in range(row.size):
            region = input_region(PADDED, top, unit, n)
            assert span(input_gradient(net, n, top, unit), 0) == region.clipped
            wide = input_gradient(net, n + 2 * margin, top, unit + shift)
            assert span(wide, 1) == (region.first + margin, region.last + margin)
            assert region.padding_pixels == max(-region.first, 0) + max(region.last - (n - 1), 0)
        assert input_region(PADDED, top, 0, n).padding_pixels > 0  # the border units reach into padding


@pytest.mark.parametrize("layer_index,unit,message", [
    (4, 0, "layer_index: must be an integer in [0, 3], got 4"),
    (-1, 0, "layer_index: must be an integer in [0, 3], got -1"),
    (2, 3, "unit: must be an integer in [0, 2] (layer 3 (avgpool) has 3 units), got 3"),
    (0, -1, "unit: must be an integer in [0, 11]"),
    (0, 1.0, "unit: must be an integer"),
])
def test_input_region_refuses_units_outside_the_layer(layer_index, unit, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        input_region(PADDED, layer_index, unit, 12)
    with pytest.raises(ValueError, match="^input_size: "):
        input_region(PADDED, 0, 0, None)


# ---- the effective field --------------------------------------------------------------------------
def test_stacked_convs_have_std_sqrt_2n_over_3():
    n, rf, std = stacked_convs()
    np.testing.assert_array_equal(n, np.arange(1, 21))
    np.testing.assert_array_equal(rf, 2 * n + 1)
    np.testing.assert_allclose(std[:10], np.sqrt(2 * n[:10] / 3), rtol=0.01)
    np.testing.assert_allclose(std, np.sqrt(2 * n / 3), rtol=1e-9)  # exact while the field fits
    assert stacked_convs() is stacked_convs()
    for array in (n, rf, std):
        assert not array.flags.writeable
    for depth in (1, 4, 10):
        e = effective_rf((Layer("conv", 3, padding=1),) * depth, 41)
        assert e.std[0] == pytest.approx(math.sqrt(2 * depth / 3), rel=0.01)
        assert e.std[1] == pytest.approx(math.sqrt(2 * depth / 3), rel=0.01)


def test_uniform_effective_field_equals_torch_nn_autograd():
    """Max pools averaged, the stack is linear: the gradient does not depend on the input."""
    layers = tuple(Layer("avgpool", 2, 2, name=x.name) if x.kind == "maxpool" else x for x in PRESETS["vgg16"])
    ours = effective_rf(layers, 224)
    theirs = input_gradient(torch_stack(layers, weights="uniform"), 224, len(layers) - 1, 3)
    np.testing.assert_allclose(ours.gradient, theirs / theirs.max(), rtol=1e-12, atol=1e-15)
    assert ours.centre == (3, 3)


@pytest.mark.parametrize("name,size", [("vgg16", 224), ("alexnet", 224), ("mobilenet_v1", 224), ("dilated", 64),
                                       ("even kernels", 40), ("dilated strided", 40)])
@pytest.mark.parametrize("weights", ["uniform", "random"])
def test_effective_field_is_quiet_normalised_and_inside_the_theoretical_one(name, size, weights):
    layers = PRESETS.get(name) or CUSTOM[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e = effective_rf(layers, size, weights=weights, seed=3)
    g = e.gradient
    assert g.shape == (size, size) and np.all(np.isfinite(g)) and g.min() >= 0 and g.max() == 1
    last = receptive_field(layers, size).rows[-1]
    c = (last.size - 1) // 2
    region = input_region(layers, len(layers) - 1, c, size)
    assert e.centre == (c, c) and e.theoretical == (region.first, region.last)
    low, high = region.clipped
    inside = np.zeros_like(g, dtype=bool)
    inside[low:high + 1, low:high + 1] = True
    assert np.all(g[~inside] == 0) and np.any(g[inside] > 0)
    # the statistics, recomputed
    for axis in (0, 1):
        marginal = g.sum(axis=1 - axis)
        mean = np.average(np.arange(size), weights=marginal)
        assert e.std[axis] == pytest.approx(math.sqrt(np.average((np.arange(size) - mean) ** 2, weights=marginal)))
    needed = round(e.fraction_95 * (high - low + 1) ** 2)  # the largest `needed` pixels reach 95%, one fewer do not
    assert needed == pytest.approx(e.fraction_95 * (high - low + 1) ** 2, abs=1e-6)
    ordered = np.sort(g.ravel())[::-1]
    assert ordered[:needed].sum() >= 0.95 * g.sum() > ordered[: needed - 1].sum()
    assert 0 < e.fraction_95 <= 1


def test_vgg16_effective_field_is_far_smaller_than_the_theoretical_one():
    e = effective_rf(PRESETS["vgg16"], 224)
    assert e.theoretical == (6, 217)  # rf 212 around pixel 111.5
    assert max(e.std) < 212 / 6 and e.fraction_95 < 0.5


def test_max_pooling_routes_the_gradient_to_one_pixel():
    e = effective_rf((Layer("maxpool", 3, 1),), 9)
    assert np.count_nonzero(e.gradient) == 1
    pooled = effective_rf((Layer("conv", 3, padding=1), Layer("maxpool", 2, 2)), 16)
    assert np.count_nonzero(pooled.gradient) == 9  # one 3x3 window, behind the winner of the pool


def test_random_weights_are_seeded():
    layers = PRESETS["dilated"]
    a, b = effective_rf(layers, 48, "random", seed=1), effective_rf(layers, 48, "random", seed=1)
    np.testing.assert_array_equal(a.gradient, b.gradient)
    assert not np.array_equal(a.gradient, effective_rf(layers, 48, "random", seed=2).gradient)
    assert not np.array_equal(a.gradient, effective_rf(layers, 48, "uniform").gradient)


@pytest.mark.parametrize("name", ["alexnet", "dilated", *CUSTOM])
@pytest.mark.parametrize("weights,relu", [("uniform", False), ("random", False), ("random", True)])
def test_effective_field_equals_torch_autograd_with_real_max_pools(name, weights, relu):
    """The numpy forward/backward against torch.nn modules (real MaxPool2d, AvgPool2d, ReLU) on the
    same inputs and weights."""
    layers = PRESETS.get(name) or CUSTOM[name]
    size = 67 if name == "alexnet" else 40
    ours = effective_rf(layers, size, weights, relu=relu, seed=5)
    rng = np.random.default_rng([5, 0])
    images = (rng.standard_normal((rfm.RELU_SAMPLES, 1, size, size)) if relu
              else 1.0 + rfm._INPUT_NOISE * rng.uniform(0.0, 1.0, (1, 1, size, size)))
    total = np.zeros((size, size))
    for image in images:
        x = torch.from_numpy(image[None]).requires_grad_(True)
        y = x
        for i, layer in enumerate(layers):
            k, s_, p, d = layer.kernel, layer.stride, layer.padding, layer.dilation
            if layer.kind == "conv":
                conv = torch.nn.Conv2d(1, 1, k, s_, p, d, bias=False, dtype=torch.float64)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(rfm._kernel(layer, weights, 5, i)))
                y = conv(y)
                y = torch.relu(y) if relu else y
            elif layer.kind == "maxpool":
                y = torch.nn.MaxPool2d(k, s_, p, d)(y)
            else:
                y = torch.nn.AvgPool2d(k, s_, p)(y)
        c = (y.shape[-1] - 1) // 2
        y[0, 0, c, c].backward()
        total += np.abs(x.grad[0, 0].numpy())
    np.testing.assert_allclose(ours.gradient, total / total.max(), rtol=1e-10, atol=1e-14)


def test_relu_gates_paths_on_zero_mean_inputs_against_torch():
    layers = PRESETS["vgg16"][:7]  # up to conv3_1, with two max pools
    result = effective_rf(layers, 64, "random", relu=True, seed=3)
    # the same computation with torch.nn modules, one image at a time
    rng = np.random.default_rng([3, 0])
    images = rng.standard_normal((rfm.RELU_SAMPLES, 1, 64, 64))
    total = np.zeros((64, 64))
    for image in images:
        x = torch.from_numpy(image[None]).requires_grad_(True)
        y = x
        for i, layer in enumerate(layers):
            if layer.kind == "conv":
                conv = torch.nn.Conv2d(1, 1, layer.kernel, layer.stride, layer.padding, layer.dilation, bias=False,
                                       dtype=torch.float64)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(rfm._kernel(layer, "random", 3, i)))
                y = torch.relu(conv(y))
            else:
                y = torch.nn.MaxPool2d(layer.kernel, layer.stride, layer.padding)(y)
        c = (y.shape[-1] - 1) // 2
        y[0, 0, c, c].backward()
        total += np.abs(x.grad[0, 0].numpy())
    np.testing.assert_allclose(result.gradient, total / total.max(), rtol=1e-12, atol=1e-15)
    plain = effective_rf(layers, 64, "random", seed=3)
    assert not np.allclose(result.gradient, plain.gradient)  # ReLU switches paths off
    first, last = result.theoretical
    outside = np.ones((64, 64), dtype=bool)
    outside[max(first, 0): last + 1, max(first, 0): last + 1] = False
    assert np.all(result.gradient[outside] == 0)


def test_vgg16_effective_field_takes_well_under_50_ms():
    effective_rf(PRESETS["vgg16"], 224)  # torch imported and warmed up
    for weights in ("uniform", "random"):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            effective_rf(PRESETS["vgg16"], 224, weights)
            times.append(time.perf_counter() - t0)
        assert min(times) < 0.05, (weights, times)


@pytest.mark.parametrize("kwargs,message", [
    (dict(weights="gaussian"), "weights: must be one of uniform, random, got 'gaussian'"),
    (dict(input_size=2000), "input_size: at most 1024 for the effective field, got 2000"),
    (dict(input_size=0), "input_size: must be an integer >= 1, got 0"),
    (dict(input_size=1), "layer 3 (pool1): kernel 2 is larger than its padded input 1"),
    (dict(layers=(Layer("conv", 3, padding=3000),)), "input_size: 64 is too large for this stack's effective field "
                                                       "(36,772,096 padded values, at most 8,388,608)"),
    (dict(layers=(Layer("conv", 1, 3, 2),), input_size=1),  # unit 0 of 2 reads padded pixel 0 of 5
     "layers: the centre unit of the last layer sees only padding"),
    (dict(seed=-1), "seed: must be an integer >= 0, got -1"),
])
def test_effective_field_refuses_bad_input(kwargs, message):
    args = dict(layers=PRESETS["vgg16"], input_size=64) | kwargs
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        effective_rf(**args)


def test_stacked_convs_refuses_bad_depth():
    with pytest.raises(ValueError, match=r"^n_max: must be an integer in \[1, 64\], got 0"):
        stacked_convs(0)


# ---- text form -----------------------------------------------------------------------------------
def test_parse_the_documented_example():
    layers = parse_layers("conv k=11 s=4 p=2 c=64 name=conv1; maxpool k=3 s=2 name=pool1")
    assert layers == (Layer("conv", 11, 4, 2, name="conv1", channels=64), Layer("maxpool", 3, 2, name="pool1"))
    assert format_layers(layers) == "conv k=11 s=4 p=2 c=64 name=conv1; maxpool k=3 s=2 name=pool1"
    messy = "  Conv  k = 11 S=4 p =2 c= 64   name=conv1 ;maxpool k=3 s=2 name=pool1 ;  "
    assert parse_layers(messy) == layers
    grouped = Layer("conv", 3, 1, 2, 2, channels=8, groups=4)
    assert parse_layers("conv k=3 c=16; conv k=3 d=2 g=4 c=8 p=+2")[1] == grouped


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_through_text(name):
    assert parse_layers(format_layers(PRESETS[name])) == PRESETS[name]


def layer_strategy():
    def build(kind, kernel, stride, pad, dilation, name, channels, groups):
        if kind == "avgpool":
            dilation = 1
        if kind != "conv":
            pad = min(pad, kernel // 2)
        return Layer(kind, kernel, stride, pad, dilation, name, channels, groups)

    return st.builds(build, st.sampled_from(KINDS), st.integers(1, 7), st.integers(1, 4), st.integers(0, 6),
                     st.integers(1, 3), st.text("abcXYZ019_./-", max_size=8), st.sampled_from([None, 1, 6, 64]),
                     st.sampled_from([1, 1, 1, 2, 3]))


@FUZZ
@given(layers=st.lists(layer_strategy(), min_size=1, max_size=12))
def test_text_round_trip_fuzzed(layers):
    try:
        validate(layers)
    except ValueError:
        assume(False)  # groups that do not divide the channels
    text = format_layers(layers)
    assert parse_layers(text) == tuple(layers)
    assert format_layers(parse_layers(text)) == text


@pytest.mark.parametrize("text,message", [
    ("", "layers: empty text"),
    ("  ;  ", "layer 1: empty"),
    ("conv k=3;; maxpool k=2", "layer 2: empty"),
    ("conv k=3; dense k=3 name=fc6", "layer 2 (fc6): kind must be one of conv, maxpool, avgpool, got 'dense'"),
    ("k=3 conv", "layer 1 (k=3): kind must come first"),
    ("conv k=3 q=1 name=c1", "layer 1 (c1): unknown key 'q' (known: k, s, p, d, c, g, name)"),
    ("conv k=3; maxpool k=two name=pool1", "layer 2 (pool1): kernel must be an integer, got 'two'"),
    ("conv k=3 s=1.5", "layer 1 (conv): stride must be an integer, got '1.5'"),
    ("conv k=3 p=1_0", "layer 1 (conv): padding must be an integer, got '1_0'"),
    ("conv s=2 name=c", "layer 1 (c): kernel is missing"),
    ("conv k=3 k=5", "layer 1 (conv): kernel given twice"),
    ("conv k=3 same", "layer 1 (conv): 'same' is not key=value"),
    ("conv k=0 name=conv3", "layer 1 (conv3): kernel must be an integer >= 1, got 0"),
    ("conv k=3; conv k=3 p=-1 name=x", "layer 2 (x): padding must be an integer >= 0, got -1"),
    ("conv k=3 c=0", "layer 1 (conv): channels must be None or an integer >= 1, got 0"),
    ("avgpool k=3 d=2", "layer 1 (avgpool): dilation must be 1 for avgpool"),
    ("maxpool k=3 p=2 name=pool1", "layer 1 (pool1): padding 2 is more than half the kernel 3"),
    ("conv k=3 c=64 g=2", "layer 1 (conv): groups 2 does not divide the 3 input channels"),
    ("conv k=3 c=64; conv k=3 c=30 g=4 name=dw", "layer 2 (dw): groups 4 does not divide the 30 output channels"),
    ("conv k=1;" * 65, "layers: at most 64, got 65"),
])
def test_bad_text_is_refused_naming_the_layer_and_field(text, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        parse_layers(text)


@pytest.mark.parametrize("layers,input_size,message", [
    ((Layer("conv", 3),) * 3 + (Layer("conv", 0, name="conv3"),), None,
     "layer 4 (conv3): kernel must be an integer >= 1, got 0"),
    ((Layer("conv", 3), Layer("maxpool", 5, name="pool1")), 6,
     "layer 2 (pool1): kernel 5 is larger than its padded input 4"),
    ((Layer("conv", 3, dilation=3, name="d3"),), 6,
     "layer 1 (d3): kernel 3 (dilated to 7) is larger than its padded input 6"),
    ((Layer("conv", 1),) * 70, None, "layers: at most 64, got 70"),
    ((), None, "layers: need at least 1, got 0"),
    ((Layer("conv", 3), "conv k=3"), None, "layer 2: expected a Layer, got str"),
    ("conv k=3", None, "layers: expected Layer objects, got text"),
    ((Layer("conv", 3),), 0, "input_size: must be None or an integer >= 1, got 0"),
    ((Layer("conv", 3),), 3.0, "input_size: must be None or an integer >= 1, got 3.0"),
    ((Layer("conv", True),), None, "layer 1 (conv): kernel must be an integer >= 1, got True"),
    ((Layer("conv", 3, stride=0),), None, "layer 1 (conv): stride must be an integer >= 1, got 0"),
    ((Layer("conv", 3, dilation=0),), None, "layer 1 (conv): dilation must be an integer >= 1, got 0"),
    ((Layer("conv", 3, groups=0),), None, "layer 1 (conv): groups must be an integer >= 1, got 0"),
    ((Layer("conv", 3, name="conv 1"),), None, "layer 1 (conv 1): name must be text without whitespace"),
    ((Layer("pool", 3),), None, "layer 1 (pool): kind must be one of conv, maxpool, avgpool, got 'pool'"),
])
def test_validate_names_the_layer_and_field(layers, input_size, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        validate(layers, input_size)
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        receptive_field(layers, input_size)


def test_validate_accepts_the_edges():
    validate((Layer("conv", 1),) * MAX_LAYERS, 1)
    validate((Layer("maxpool", 4, 1, 2, 3, channels=7, groups=5),), 6)  # channels and groups ignored for pools
    torch.nn.MaxPool2d(4, 1, 2, 3)(torch.zeros(1, 1, 6, 6))  # torch takes it too
    validate((Layer("conv", 3, channels=32, groups=32),), 224, input_channels=32)
    with pytest.raises(ValueError, match="^input_channels: must be an integer >= 1, got 0"):
        validate((Layer("conv", 3),), input_channels=0)


# ---- presets and the module -----------------------------------------------------------------------
def test_presets_are_named_read_only_and_valid():
    assert list(PRESET_LABELS) == list(PRESETS)
    assert PRESET_LABELS["vgg16"] == "VGG-16"
    with pytest.raises(TypeError):
        PRESETS["mine"] = ()  # type: ignore[index]
    for name, layers in PRESETS.items():
        assert preset(name) is layers
        validate(layers, 224)
        assert all(layer.name for layer in layers)
    with pytest.raises(ValueError, match=r"^preset: unknown 'foo' \(known: alexnet, vgg16, resnet50_v1, "):
        preset("foo")


def test_mobilenet_is_depthwise_separable():
    layers = PRESETS["mobilenet_v1"]
    assert len([x for x in layers if x.groups > 1]) == 13
    for dw, pw in zip(layers[1::2], layers[2::2]):
        assert (dw.kernel, pw.kernel, pw.groups) == (3, 1, 1) and dw.groups == dw.channels


def test_module_exports_exist():
    for name in rfm.__all__:
        assert hasattr(rfm, name), name


def test_relu_images_go_through_in_groups_within_the_memory_bound(monkeypatch):
    """With ReLUs the field is averaged over RELU_SAMPLES images; they go through the backward pass
    in groups whose padded inputs stay within MAX_EFFECTIVE_ACTIVATIONS (all eight at once kept
    eight times the bound: 796 MB at input 1000). The same field, a fraction of the memory."""
    import tracemalloc

    layers = parse_layers("; ".join(["conv k=3 p=1", "maxpool k=2 s=2", "conv k=3 p=1", "avgpool k=2 s=2"]))

    def traced(limit):
        monkeypatch.setattr(rfm, "MAX_EFFECTIVE_ACTIVATIONS", limit)
        tracemalloc.start()
        try:
            result = effective_rf(layers, 120, weights="random", relu=True, seed=3)
            return result, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    whole, whole_peak = traced(2 ** 23)  # all eight images at once
    one_by_one, grouped_peak = traced(40_000)  # 122^2 + 120^2 + 62^2 + 60^2 = 36,728 per image: one at a time
    np.testing.assert_allclose(one_by_one.gradient, whole.gradient, rtol=1e-12, atol=0)
    assert one_by_one.std == pytest.approx(whole.std, rel=1e-12)
    assert grouped_peak < whole_peak / 3
