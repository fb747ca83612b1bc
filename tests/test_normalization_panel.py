"""The normalization panel, driven through its real controls and the cube; asserts on what is drawn,
with torch computing the statistics the table shows."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PySide6.QtCore import QPoint, Qt

from widgets.normalization import PARAMS, NormalizationPanel, divisors
from workbench.compute import normalization as nz
from workbench.params import ParamError


@pytest.fixture
def panel(open_panel):
    return open_panel(NormalizationPanel, 1500, 950)


def box(panel):
    return panel.cube.picture.box


def set_combo(panel, name, value):
    combo = panel.controls[name].combo
    combo.setCurrentIndex(combo.findData(value))


def cell_centre(panel, n, c, s):
    """Widget point at the middle of a visible face cell (front face for n = 0)."""
    geometry = panel.cube._layout()
    point = panel.cube._point(geometry, n, c + 0.5, s + 0.5) if n == 0 else panel.cube._point(geometry, n + 0.5, c + 0.5, 0)
    return QPoint(round(point.x()), round(point.y()))


def test_default_is_batchnorm_lighting_one_channel_through_the_batch(panel):
    n, c, s = 4, 6, 9
    assert panel.cube.picture.colors.shape == (n, c, s, 4)
    assert box(panel) == ((0, n), (0, 1), (0, s))  # channel 0, every sample and position
    colors = panel.cube.picture.colors
    accent = colors[1, 0, 0]
    lit = (colors == accent).all(axis=-1)
    assert lit[:, 0].sum() == n * s - 1 and lit.sum() == n * s - 1  # channel 0 but the hovered cell, nothing else
    assert not (colors[0, 0, 0] == accent).all()  # the hovered cell stands out
    assert panel.table.rowCount() == c and panel.table.currentRow() == 0


@pytest.mark.parametrize("method, expected", [
    ("layer", ((0, 1), (0, 6), (0, 9))), ("instance", ((0, 1), (2, 3), (0, 9))), ("group", ((0, 1), (0, 3), (0, 9))),
    ("rms", ((0, 1), (0, 6), (0, 9))), ("batch", ((0, 4), (2, 3), (0, 9)))])
def test_method_changes_the_lit_block(qtbot, panel, method, expected):
    panel.set_values({"cell_c": 2, "method": "layer" if method == "batch" else "batch"})
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        set_combo(panel, "method", method)
    assert panel.values["method"] == method
    assert box(panel) == expected
    k = panel.result.stat[panel.result.cell]
    assert (panel.result.stat == k).sum() == panel.result.norm.count


def test_hovering_a_cell_lights_its_statistic(qtbot, panel):
    set_combo(panel, "method", "instance")
    qtbot.waitUntil(lambda: panel.values["method"] == "instance")
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        qtbot.mouseClick(panel.cube, Qt.LeftButton, pos=cell_centre(panel, 0, 4, 5))
    assert (panel.values["cell_n"], panel.values["cell_c"], panel.values["cell_s"]) == (0, 4, 5)
    assert box(panel) == ((0, 1), (4, 5), (0, 9))
    assert "c = 4" in panel.readout.text() and "9 cells" in panel.readout.text()
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        qtbot.mouseClick(panel.cube, Qt.LeftButton, pos=cell_centre(panel, 2, 1, 0))  # the top face: sample 2
    assert (panel.values["cell_n"], panel.values["cell_c"]) == (2, 1)
    assert panel.table.currentRow() == 2 * 6 + 1


def test_table_shows_torchs_statistics(panel):
    x = nz.make_input((4, 6, 3, 3), seed=0, channel_shift=2.0, sample_shift=1.0)
    var, mean = torch.var_mean(torch.from_numpy(x), dim=(0, 2, 3), unbiased=False)
    for c in range(6):
        assert float(panel.table.item(c, 1).text()) == pytest.approx(mean[c].item(), abs=5e-5)
        assert float(panel.table.item(c, 2).text()) == pytest.approx(var[c].item(), abs=5e-5)
        assert panel.table.item(c, 3).text() == "36"
    y = F.batch_norm(torch.from_numpy(x), None, None, training=True, eps=1e-5).numpy()
    np.testing.assert_allclose(panel.result.y, y.reshape(4, 6, 9), atol=1e-12)


def test_choosing_a_table_row_moves_the_cell(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        panel.table.selectRow(3)
    assert panel.values["cell_c"] == 3 and box(panel) == ((0, 4), (3, 4), (0, 9))


def test_groups_slider_steps_over_divisors_and_typed_non_divisor_is_refused(qtbot, panel):
    panel.set_values({"method": "group", "channels": 12, "groups": 2})
    control = panel.controls["groups"]
    control.slider.setValue(control.to_slider(5))  # 5 does not divide 12: the slider lands on a divisor
    assert panel.values["groups"] in divisors(12) and panel.values["groups"] in (4, 6)
    before = dict(panel.values)
    control.edit.setText("5")
    control.edit.editingFinished.emit()
    assert panel.values == before
    assert "groups" in control.error_label.text() and "1, 2, 3, 4, 6, 12" in control.error_label.text()


def test_groups_follow_the_channels(panel):
    panel.set_values({"method": "group", "channels": 8, "groups": 4})
    assert panel.set_values({"channels": 9})
    assert panel.values["groups"] == 3


def test_sentences_padding_is_grey_and_can_leave_batchnorm(qtbot, panel):
    panel.set_values({"layout": "sentences", "lengths": "8,3,2,5", "tokens": 8, "channels": 4, "cell_c": 1})
    panel.compute_now()
    scene = panel.result
    assert scene.x.shape == (4, 4, 8)  # B, D, T
    assert scene.padded[1, :, 3:].all() and not scene.padded[1, :, :3].any()
    colors = panel.cube.picture.colors
    grey = colors[1, 0, 7]
    assert (colors[2, 0, 5] == grey).all() and np.ptp(grey[:3].astype(int)) < 8  # grey: no hue
    x, mask = nz.make_sentences((8, 3, 2, 5), 8, 4, seed=0)
    feature = x[..., 1]
    assert scene.mean[1] == pytest.approx(feature.mean(), abs=1e-12)  # padding counted, as nn.BatchNorm1d
    bn = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    bn(torch.from_numpy(x).transpose(1, 2))
    torch_batch_mean = (bn.running_mean / 0.1)[1].item()  # from zeros with momentum 0.1
    assert scene.mean[1] == pytest.approx(torch_batch_mean, abs=1e-12)
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        panel.controls["include_padding"].check.setChecked(False)
    assert panel.result.mean[1] == pytest.approx(feature[mask].mean(), abs=1e-12)
    assert panel.result.norm.count == 18
    assert "real tokens only" in panel.readout.text()


def test_layernorm_on_sentences_is_per_token(panel):
    panel.set_values({"layout": "sentences", "method": "layer", "cell_n": 2, "cell_s": 1})
    panel.compute_now()
    assert box(panel) == ((2, 3), (0, 6), (1, 2))
    x, _ = nz.make_sentences((7, 5, 3, 6), 8, 6, seed=0)
    y = F.layer_norm(torch.from_numpy(x), (6,), eps=1e-5).numpy()
    np.testing.assert_allclose(panel.result.y, y.transpose(0, 2, 1), atol=1e-12)


def test_small_batch_view_draws_the_spread(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        set_combo(panel, "view", "small_batches")
    spread = panel.result.spread
    items = panel.views["small_batches"]
    assert panel.stack.currentWidget() is items["canvas"]
    x, y = items["bn"].getData()
    np.testing.assert_allclose(x, np.log10(np.arange(1, 65)))
    np.testing.assert_allclose(y, spread.probe_spread_batch)
    assert not items["ln"].getData()[1].any() and not items["gn"].getData()[1].any()
    assert y[63] < y[1]
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        panel.set_values({"batch_size": 1})
    assert items["markers"][0].value() == 0.0
    assert "InstanceNorm" in panel.readout.text()


def test_train_eval_view_draws_the_running_statistics(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"view": "train_eval", "momentum": 0.3, "batches": 20})
    stream = panel.result.stream
    bn = torch.nn.BatchNorm2d(stream.inputs.shape[2], momentum=0.3, dtype=torch.float64)
    for batch in stream.inputs:
        bn(torch.tensor(batch).unsqueeze(-1))
    x, y = panel.views["train_eval"]["running_mean"].getData()
    assert len(x) == 20 and y[-1] == pytest.approx(bn.running_mean[0].item(), abs=1e-12)
    assert panel.views["train_eval"]["running_var"].getData()[1][-1] == pytest.approx(bn.running_var[0].item(), abs=1e-12)
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        panel.controls["cumulative"].check.setChecked(True)
    assert not panel.controls["momentum"].isEnabled()


def test_histograms_count_every_real_cell(panel):
    counts = panel.result.histograms.before
    assert counts.shape[0] == 6 and (counts.sum(axis=1) == 4 * 9).all()
    for i, curve in enumerate(panel.views["histograms"]["before"][:6]):  # drawn relative to the tallest bar
        assert curve.isVisible() and np.allclose(curve.getData()[1], counts[i] / counts.max())
    assert not panel.views["histograms"]["before"][6].isVisible()


@pytest.mark.parametrize("changes, name", [
    ({"lengths": "7,x"}, "lengths"), ({"eps": "nan"}, "eps"), ({"eps": 0}, "eps"), ({"channels": 65}, "channels"),
    ({"method": "weight"}, "method"), ({"groups": 4}, "groups"), ({"lengths": "1,2,3,4,5,6,7,8,9"}, "lengths")])
def test_bad_input_is_refused_naming_the_parameter(panel, changes, name):
    before = dict(panel.values)
    assert not panel.set_values(changes)
    assert panel.values == before
    with pytest.raises(ParamError, match=name):
        PARAMS.update(before, changes)


def test_lengths_and_padded_length_follow_each_other():
    values = PARAMS.resolve({"layout": "sentences", "lengths": "7,5,3,6"})
    assert PARAMS.update(values, {"tokens": 4})["lengths"] == "4,4,3,4"
    assert PARAMS.update(values, {"lengths": "12,2"})["tokens"] == 12
    assert PARAMS.update({**values, "cell_n": 3}, {"lengths": "2,2"})["cell_n"] == 1  # the cell follows into the batch
    with pytest.raises(ParamError, match="cell_n"):
        PARAMS.update(values, {"lengths": "2,2", "cell_n": 3})


@pytest.mark.parametrize("key", list(PARAMS.presets))
def test_every_preset_draws(panel, key):
    panel.apply_preset(key)
    panel.compute_now()
    assert panel.cube.picture is not None
    assert not math.isnan(float(panel.result.y.sum()))
    assert panel.stack.currentWidget() is panel.views[panel.values["view"]]["canvas"]


def test_notes_show_the_current_method(panel):
    panel.set_values({"method": "group", "channels": 8, "groups": 4})
    panel.refresh_notes()
    text = panel.notes.toPlainText()
    assert "GroupNorm" in text and "C/G × H × W" in text and "16 separate statistics" in text


def test_batch_of_one_single_pixel_normalizes_to_zeros_not_nan(panel):
    """BatchNorm in training mode on one sample of one pixel: every statistic has one cell, variance 0."""
    assert panel.set_values({"batch": 1, "height": 1, "width": 1})
    panel.compute_now()
    assert np.array_equal(panel.result.y, np.zeros((1, 6, 1)))
    assert (panel.result.var == 0).all() and "nan" not in panel.readout.text().lower()
    assert all("nan" not in panel.table.item(r, c).text().lower() for r in range(6) for c in range(4))
