"""The activations panel, driven through its real controls; asserts on what is drawn."""

import math
import warnings

import numpy as np
import pytest
from PySide6.QtCore import Qt

from widgets.activations import NAMES, PARAMS, ActivationsPanel, activation_params, gain_for, log10_clipped, plot_floor
from workbench.compute import activations as act


@pytest.fixture
def panel(open_panel):
    return open_panel(ActivationsPanel, 1500, 950)


def drawn(curve):
    x, y = curve.getData()
    return np.asarray(x), np.asarray(y)


def expected_flow(values):
    name = values["depth_activation"]
    return act.gradient_flow(name, values["init"], values["depth"], values["width"], batch=values["batch"],
                             seed=values["seed"], gain=gain_for(values), std=values["init_std"], bias=values["bias"],
                             residual=values["residual"], layer_norm=values["layer_norm"],
                             **activation_params(name, values))


def type_into(qtbot, panel, name, text):
    edit = panel.controls[name].edit
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key_Return)


def test_default_curves_are_the_backend_curves(panel):
    v = panel.values
    for name in ("sigmoid", "tanh", "relu"):
        x = np.linspace(v["x_min"], v["x_max"], 401)
        expected = act.evaluate(name, x)
        for kind in ("y", "dy"):
            xs, ys = drawn(panel.lines[name, kind])
            np.testing.assert_array_equal(xs, x)
            np.testing.assert_array_equal(ys, getattr(expected, kind))
            assert panel.lines[name, kind].isVisible()
        assert not panel.lines[name, "d2y"].isVisible()
    assert not panel.lines["gelu", "y"].isVisible()
    assert len(panel.curve_legend.items) == 3


def test_a_parameter_slider_redraws_its_curve(qtbot, panel):
    panel.controls["show_leaky_relu"].check.click()
    qtbot.waitUntil(lambda: panel.lines["leaky_relu", "y"].isVisible(), timeout=5000)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        type_into(qtbot, panel, "negative_slope", "0.3")
    xs, ys = drawn(panel.lines["leaky_relu", "y"])
    np.testing.assert_allclose(ys, np.where(xs > 0, xs, 0.3 * xs))
    _, dys = drawn(panel.lines["leaky_relu", "dy"])
    assert dys[0] == pytest.approx(0.3)


def test_relu_dead_zone_is_marked_on_its_curve(panel):
    mark = panel.dead_marks["relu"]
    assert mark.isVisible() and not panel.dead_marks["sigmoid"].isVisible()
    xs, ys = drawn(mark)
    assert np.all(ys[xs < -1e-9] == 0) and np.all(np.isnan(ys[xs > 1e-9]))
    assert len(set(panel.colors.values())) == len(NAMES)  # every activation its own colour


def test_dragging_the_probe_reads_every_curve(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.probe_line.setValue(-2.0)
    assert panel.values["probe_x"] == -2.0
    text = panel.readout.text()
    s = act.evaluate("sigmoid", np.array([-2.0]))
    assert f"f = {s.y[0]:.4g}" in text and f"f′ = {s.dy[0]:.4g}" in text and "x = -2" in text
    xs, ys = panel.probe_dots.getData()
    assert set(np.round(xs, 9)) == {-2.0} and len(ys) == 6  # f and f' of three curves


def test_saturation_bands_follow_the_depth_activation(qtbot, panel):
    bands = [b.getRegion() for b in panel.bands if b.isVisible()]
    sat = act.properties("sigmoid", threshold=0.01).saturation  # beyond |x| ~ 4.6 at the default x range
    assert len(bands) == len([s for s in sat if min(s[1], 6) > max(s[0], -6)])
    combo = panel.controls["depth_activation"].combo
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        combo.setCurrentIndex(combo.findData("relu"))
    visible = [(b.getRegion(), label.toPlainText()) for b, label in zip(panel.bands, panel.band_labels) if b.isVisible()]
    assert len(visible) == 1
    (lo, hi), text = visible[0]
    assert lo == pytest.approx(-6.0) and hi == pytest.approx(0.0, abs=0.02) and "dead" in text


def test_depth_view_is_the_backend_gradient_flow(panel):
    flow = expected_flow(panel.values)
    floor = plot_floor(*(getattr(flow, key) for key in panel.depth_curves))
    for key, curve in panel.depth_curves.items():
        xs, ys = drawn(curve)
        np.testing.assert_array_equal(xs, np.arange(1, 21))
        np.testing.assert_allclose(ys, log10_clipped(getattr(flow, key), floor))
    _, last = drawn(panel.hist_curves[2])
    np.testing.assert_allclose(last, flow.histograms[-1] / flow.histograms[-1].sum())
    assert panel.hist_legend.items[2][1].text == "layer 20"


def test_xavier_fades_and_he_holds_a_relu_signal(qtbot, panel):
    stds = {}
    for key in ("relu_xavier", "relu_he"):
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            panel.apply_preset(key)
        _, ys = drawn(panel.depth_curves["activation_std"])
        stds[key] = ys
    assert stds["relu_xavier"][-1] < stds["relu_xavier"][0] - 5  # log10: more than 5 decades lost over 50 layers
    assert abs(stds["relu_he"][-1] - stds["relu_he"][0]) < 1


def test_sigmoid_gradient_vanishes_through_ten_layers(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("sigmoid_vanishing")
    _, product = drawn(panel.depth_curves["derivative_product"])
    assert product[-1] <= 10 * math.log10(0.25) + 1e-9  # at most 0.25 per layer
    _, grads = drawn(panel.depth_curves["grad_norm"])
    assert grads[0] < grads[-1] - 3  # the first layer's gradient is thousands of times smaller


def test_dying_relu_has_dead_units_and_leaky_relu_has_none(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("dying_relu")
    assert "100% dead" in panel.depth_note.toPlainText() and panel.result.flow.grad_norm[0] == 0
    assert "bottom edge" in panel.depth_note.toPlainText()
    flow = panel.result.flow
    floor = plot_floor(*(getattr(flow, key) for key in panel.depth_curves))
    _, grads = drawn(panel.depth_curves["grad_norm"])
    assert grads[0] == math.log10(floor) < grads[-1]  # the zero gradient sits on the floor, a decade below the rest
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("leaky_rescue")
    assert "0% dead" in panel.depth_note.toPlainText() and panel.result.flow.grad_norm[0] > 1e-3


def test_softmax_bars_and_jacobian(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        type_into(qtbot, panel, "temperature", "0.5")
    logits = np.array([panel.values[f"logit_{i}"] for i in range(1, 6)])
    expected = act.softmax(logits, 0.5)
    np.testing.assert_allclose(panel.bars.opts["height"], expected.probabilities)
    np.testing.assert_allclose(panel.jac_image.image, expected.jacobian)
    assert panel.jac_texts[0][0].toPlainText() == f"{expected.jacobian[0, 0]:.2f}"


@pytest.mark.parametrize("changes, words", [
    ({"x_min": 7.0}, "must be less than x_max"),
    ({"x_min": "nan"}, "x from"),
    ({"depth": 0}, "Depth"),
    ({"depth": 101}, "Depth"),
    ({"width": 1000}, "Width"),
    ({"init": "orthogonal"}, "init"),
    ({"depth_activation": "swishy"}, "depth_activation"),
    ({"swish_beta": "inf"}, "Swish beta"),
    ({"probe_x": 40.0}, "outside the x range"),
])
def test_bad_input_is_refused_and_nothing_changes(panel, changes, words):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    assert not panel.set_values(changes)
    assert panel.values == before
    assert any(words in m for m in messages)


@pytest.mark.parametrize("name", list(NAMES))
def test_every_activation_drives_the_depth_view(qtbot, panel, name):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"depth_activation": name, "softplus_threshold": 5.0})
    assert panel.result.focus == name
    flow = expected_flow(panel.values)
    floor = plot_floor(*(getattr(flow, key) for key in panel.depth_curves))
    np.testing.assert_allclose(drawn(panel.depth_curves["grad_norm"])[1], log10_clipped(flow.grad_norm, floor))


def test_bands_cover_a_wide_view(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"x_min": -30.0, "x_max": 30.0})
    regions = sorted(b.getRegion() for b in panel.bands if b.isVisible())
    assert regions[0][0] == pytest.approx(-30.0) and regions[-1][1] == pytest.approx(30.0)


def test_a_narrower_range_pulls_the_probe_inside(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"x_max": 0.5})
    assert panel.values["probe_x"] == 0.5


def test_exploding_network_is_shown_without_nan_or_warnings(qtbot, panel):
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with qtbot.waitSignal(panel.drawn, timeout=30_000):
            panel.set_values({"depth_activation": "relu", "init": "normal", "init_std": 10.0, "depth": 100,
                              "width": 256})
    for curve in panel.depth_curves.values():
        assert np.all(np.isfinite(drawn(curve)[1]))
    assert np.all(np.isfinite(panel.result.flow.grad_norm) | np.isposinf(panel.result.flow.grad_norm))


def test_notes_show_the_init_numbers(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("relu_he")
    panel.refresh_notes()
    text = panel.notes.toPlainText()
    assert f"{math.sqrt(2) / math.sqrt(128):.4g}" in text and "{" not in text


@pytest.mark.parametrize("key", list(PARAMS.presets))
def test_every_preset_draws(qtbot, panel, key):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset(key)
    shown = [n for n in NAMES if panel.values[f"show_{n}"]]
    for name in shown:
        assert panel.lines[name, "y"].isVisible()
    assert np.all(np.isfinite(drawn(panel.depth_curves["grad_norm"])[1]))


# ---- linear layers collapse into one matrix ------------------------------------------------------------
def test_linear_is_an_activation_with_its_own_colour_and_curve(qtbot, panel):
    assert "linear" in NAMES and panel.controls["depth_activation"].combo.findData("linear") >= 0
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"show_linear": True})
    xs, ys = drawn(panel.lines["linear", "y"])
    np.testing.assert_array_equal(ys, xs)
    np.testing.assert_array_equal(drawn(panel.lines["linear", "dy"])[1], 1.0)
    assert len(set(panel.colors.values())) == len(NAMES)


def test_one_matrix_plot_shows_the_product_and_that_a_linear_net_is_it(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("linear_collapse")
    values = panel.values
    flow = expected_flow(values)
    product = act.weight_product(flow.weights)
    xs, ys = drawn(panel.sv_curve)
    np.testing.assert_array_equal(xs, np.arange(1, 33))
    np.testing.assert_allclose(ys, product.log10_singular_values, rtol=1e-12)
    collapse = panel.result.collapse
    assert collapse.error < 1e-12
    note = panel.collapse_note.toPlainText()
    assert "net(x) = M x + c" in note and "on 64 probe inputs" in note and f"{collapse.error:.2g}" in note
    curve = panel.sv_curve
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"depth_activation": "relu"})
    assert panel.sv_curve is curve  # updated in place
    np.testing.assert_allclose(drawn(panel.sv_curve)[1], product.log10_singular_values, rtol=1e-12)  # same weights
    assert panel.result.collapse.error > 0.1
    assert "net(x) ≠ M x + c: ReLU" in panel.collapse_note.toPlainText()
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"depth_activation": "linear", "layer_norm": True})
    assert "LayerNorm" in panel.collapse_note.toPlainText() and panel.result.collapse.error > 0.1
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"layer_norm": False, "residual": True, "bias": 0.5})
    assert panel.result.collapse.error < 1e-12  # residual and bias: still one affine map, (I + W_L) ⋯ (I + W_1) x + c


def test_an_overflowing_linear_net_says_so_without_nan(qtbot, panel):
    """Beyond the panel's ranges (std 1000 over 100 layers: 10^390), as the backend allows."""
    import dataclasses
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"depth_activation": "linear"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flow = act.gradient_flow("linear", "normal", 100, 16, batch=4, std=1e3)
        collapse = act.collapse(flow.weights, flow.inputs, flow.outputs)
        scene = dataclasses.replace(panel.result, flow=flow, collapse=collapse)
        for _ in panel.draw(scene):  # every step at once
            pass
    assert collapse.error == math.inf and "overflow" in panel.collapse_note.toPlainText()
    assert np.all(np.isfinite(drawn(panel.sv_curve)[1]))


def test_a_new_bias_keeps_the_products_of_the_weights(qtbot, panel, monkeypatch):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"depth_activation": "linear"})
    product = panel.result.collapse.product
    calls = []
    monkeypatch.setattr(act, "weight_product", lambda *args: calls.append(args))
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"bias": 0.3})
    assert calls == [] and panel.result.collapse.product is product  # the same weights: the product remembered


def test_the_legend_lists_the_shown_curves_and_keeps_their_rows(qtbot, panel):
    def listed():
        return [label.text for _, label in panel.curve_legend.items]

    first = dict(zip(listed(), panel.curve_legend.items))
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"show_tanh": False, "show_gelu": True})
    assert listed() == ["Sigmoid", "ReLU", "GELU"]
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"show_tanh": True, "show_gelu": False})
    assert listed() == ["Sigmoid", "Tanh", "ReLU"]
    assert dict(zip(listed(), panel.curve_legend.items)) == first  # the same sample and label objects
    layout = panel.curve_legend.layout
    shown = [item for row in range(layout.rowCount()) for col in range(layout.columnCount())
             if (item := layout.itemAt(row, col)) is not None]
    assert len(shown) == 6 and all(item.isVisible() for item in shown)
    gelu_sample, gelu_label = panel._legend_rows["gelu"]
    assert not gelu_label.isVisible() and not gelu_sample.isVisible()
    assert panel.curve_legend.height() < 4 * gelu_label.height()  # three rows tall, no gap left by GELU


def test_showing_curves_adds_no_items_to_the_scene(qtbot, panel):
    scene = panel.curve_plot.scene()
    before = len(scene.items())
    for shown in (True, False):
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            assert panel.set_values({"show_" + name: shown for name in ("elu", "selu", "mish", "softplus", "relu6")})
        assert len(scene.items()) == before
