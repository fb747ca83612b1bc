"""The receptive-field panel, driven through its real controls and table; asserts on what is drawn."""

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from widgets.receptive_field import PARAMS, ReceptiveFieldPanel, scene_image
from workbench.compute import receptive_field as rf
from workbench.params import ParamError


@pytest.fixture
def panel(open_panel):
    return open_panel(ReceptiveFieldPanel, 1500, 950)


def cell(panel, row, column):
    return panel.table.item(row, column).text()


def wait_erf(qtbot, panel):
    qtbot.waitUntil(lambda: not panel.busy() and panel.erf_result is not None and panel._erf_shown == panel._erf_key,
                    timeout=30_000)


def test_default_table_is_vgg16(panel):
    table = rf.receptive_field(rf.PRESETS["vgg16"], 224)
    assert panel.table.rowCount() == 18
    for r, row in enumerate(table.rows):
        assert cell(panel, r, 8) == str(row.rf) and cell(panel, r, 9) == str(row.jump) and cell(panel, r, 7) == str(row.size)
    assert cell(panel, 16, 8) == "196" and cell(panel, 17, 8) == "212"  # conv5_3, pool5
    assert panel.table.item(0, 8).toolTip() == table.rows[0].formula


def test_cells_of_rows_added_later_are_editable_where_the_layer_is_and_right_aligned_where_computed(panel):
    longest = max(rf.PRESETS.values(), key=len)
    assert panel.set_values({"layers": rf.format_layers(longest)})
    panel.compute_now()
    last = panel.table.rowCount() - 1
    assert last > 17  # more rows than the default's 18: cells made since
    for column in range(panel.table.columnCount()):
        item = panel.table.item(last, column)
        editable = bool(item.flags() & Qt.ItemIsEditable)
        assert editable == (column < 7) and item.flags() & Qt.ItemIsSelectable and item.flags() & Qt.ItemIsEnabled
        assert (item.textAlignment() == int(Qt.AlignRight | Qt.AlignVCenter)) == (column >= 7), column
    import shiboken6
    cells = [panel.table.item(last, column) for column in range(panel.table.columnCount())]
    assert panel.set_values({"layers": PARAMS.defaults()["layers"]})
    panel.compute_now()
    assert panel.table.rowCount() == 18
    assert not any(shiboken6.isValid(cell) for cell in cells)  # the table deleted them, and their wrappers know it


def test_nested_squares_are_the_input_regions(panel):
    layers = rf.PRESETS["vgg16"]
    rows = panel.result.regions
    assert len(rows) == 18
    last_rows, last_cols = rows[-1]
    expected = rf.input_region(layers, 17, 3, 224)
    assert (last_cols.first, last_cols.last) == (expected.first, expected.last)
    square = panel.squares[17].rect()
    assert square.left() == expected.first - 0.5 and square.width() == expected.last - expected.first + 1
    assert all(panel.squares[i].isVisible() for i in range(18))


def test_editing_a_kernel_in_the_table_recomputes(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.table.item(0, 2).setText("5")  # conv1_1: 3x3 -> 5x5 (padding stays 1)
    layers = rf.parse_layers(panel.values["layers"])
    assert layers[0].kernel == 5
    table = rf.receptive_field(layers, 224)
    assert cell(panel, 0, 8) == "5" and cell(panel, 17, 8) == str(table.rows[-1].rf)


def test_an_invalid_row_is_flagged_and_nothing_changes(qtbot, panel):
    before = dict(panel.values)
    panel.table.item(0, 3).setText("0")  # stride 0
    assert panel.values == before
    assert panel.table_note.isVisible() and "stride" in panel.table_note.text()
    assert cell(panel, 0, 3) == "1"  # the table shows the accepted network again
    panel.table.item(1, 2).setText("x")
    assert panel.values == before and "integer" in panel.table_note.text()


def test_a_kernel_larger_than_its_input_is_refused():
    with pytest.raises(ParamError, match="layers"):
        PARAMS.resolve({"layers": "conv k=3; conv k=9", "input_size": 8, "layer": 1, "unit_x": 0, "unit_y": 0})


def test_add_delete_and_move_rows(qtbot, panel):
    panel.table.selectRow(0)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.add_button.click()
    layers = rf.parse_layers(panel.values["layers"])
    assert len(layers) == 19 and layers[1].kernel == 3 and panel.values["layer"] == 2
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.up_button.click()
    assert rf.parse_layers(panel.values["layers"])[0] == layers[1]
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.delete_button.click()
    assert rf.parse_layers(panel.values["layers"]) == rf.PRESETS["vgg16"]


def test_clicking_the_input_picks_the_unit_centred_there(qtbot, panel):
    row = panel.result.table.rows[17]
    x, y = row.start + 5 * row.jump, row.start + 1 * row.jump
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"unit_x": 5, "unit_y": 1})
    rows, cols = panel.result.regions[-1]
    assert (cols.first + cols.last) / 2 == pytest.approx(x) and (rows.first + rows.last) / 2 == pytest.approx(y)


def test_border_units_show_their_padding(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"unit_x": 0, "unit_y": 0})
    rows, cols = panel.result.regions[-1]
    assert cols.padding_pixels > 0 and panel.squares[17].pen().style() == Qt.DashLine
    assert "padding" in panel.unit_label.text()


def test_effective_field_arrives_off_the_gui_thread(qtbot, panel):
    wait_erf(qtbot, panel)
    expected = rf.effective_rf(rf.PRESETS["vgg16"], 224)
    np.testing.assert_allclose(panel.erf_image.image, expected.gradient)
    assert panel.erf_square.rect().width() == expected.theoretical[1] - expected.theoretical[0] + 1
    assert f"std {expected.std[0]:.1f}" in panel.unit_label.text()
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"layer": 4, "unit_x": 50, "unit_y": 50})
    wait_erf(qtbot, panel)
    partial = rf.effective_rf(rf.PRESETS["vgg16"][:4], 224)
    np.testing.assert_allclose(panel.erf_image.image, partial.gradient)


def test_growth_plot_and_stacked_convs(panel):
    table = rf.receptive_field(rf.PRESETS["vgg16"], 224)
    _, rfs = panel.rf_curve.getData()
    np.testing.assert_allclose(rfs, np.log10([r.rf for r in table.rows]))
    n, theory, std = rf.stacked_convs()
    _, drawn = panel.stack_curves[1].getData()
    np.testing.assert_allclose(drawn, 4 * std)
    np.testing.assert_allclose(panel.stack_curves[0].getData()[1], theory)


def test_comparison_card_counts_weights(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"channels": 10})
    text = panel.card.text
    rows = {stack: (field, weights, n) for stack, field, weights, n in panel.result.comparison}
    assert rows == {"7x7": (7, 4900, 1), "3 x 3x3": (7, 2700, 3), "5x5": (5, 2500, 1), "2 x 3x3": (5, 1800, 2),
                    "1x1": (1, 100, 1)}
    assert "4,900" in text and "2,700" in text and "C = 10" in text


@pytest.mark.parametrize("key", list(PARAMS.presets))
def test_every_preset_draws(qtbot, panel, key):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset(key)
    assert rf.parse_layers(panel.values["layers"]) == rf.PRESETS[key]
    assert panel.table.rowCount() == len(rf.PRESETS[key])


def test_known_values_show_in_the_table(qtbot, panel):
    for key, value in (("resnet50_v1", 483), ("resnet50_v1_5", 427), ("mobilenet_v1", 315), ("dilated", 31)):
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            panel.apply_preset(key)
        assert cell(panel, panel.table.rowCount() - 1, 8) == str(value)


def test_notes_show_the_recurrence_with_the_current_numbers(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"layer": 3, "unit_x": 10, "unit_y": 10})
    panel.refresh_notes()
    text = panel.notes.toPlainText()
    assert "Layer 3: " + rf.receptive_field(rf.PRESETS["vgg16"], 224).rows[2].formula in text and "{" not in text


def test_the_picture_is_bundled():
    image = scene_image(224)
    assert image.shape == (224, 224, 4) and image[..., 3].min() == 255 and image.std() > 10


def test_the_input_picture_drawn_is_the_one_the_compute_scaled_to_the_input_size(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values({"input_size": 300})
    assert panel.result.image.shape == (300, 300, 4)
    np.testing.assert_array_equal(panel.result.image, scene_image(300))
    np.testing.assert_array_equal(panel.image.image, scene_image(300))


@pytest.mark.parametrize("changes, words", [
    ({"layers": "conv k=0"}, "kernel"),
    ({"layers": "; ".join(["conv k=1"] * 65)}, "64"),
    ({"layers": "dense k=3"}, "kind"),
    ({"input_size": 0}, "Input size"),
    ({"layer": 40}, "layer"),
    ({"unit_x": 7}, "unit_x"),
])
def test_bad_input_is_refused(panel, changes, words):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    assert not panel.set_values(changes)
    assert panel.values == before and any(words in m for m in messages)


def test_a_shorter_network_pulls_the_chosen_layer_and_unit_in(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"layers": "conv k=3 s=2; conv k=3"})
    assert panel.values["layer"] == 2
    size = panel.result.table.rows[-1].size
    assert panel.values["unit_x"] <= size - 1 and panel.values["unit_y"] <= size - 1
    assert math.isfinite(panel.result.table.rows[-1].rf)


def test_an_effective_field_too_large_to_trace_is_a_note_not_an_error(qtbot, panel):
    """Accepted by the declaration, refused by effective_rf (too many padded values): the plot is
    emptied and says why; no 'Could not compute', and the next network that fits draws again."""
    wait_erf(qtbot, panel)
    errors = []
    panel.message.connect(lambda text, is_error: is_error and errors.append(text))
    stack = "; ".join(["conv k=3 p=1"] * 20)  # 20 x 1026^2 = 21 M padded values at 1024 x 1024
    assert panel.set_values({"layers": stack, "input_size": 1024, "layer": 20, "unit_x": 512, "unit_y": 512})
    qtbot.waitUntil(lambda: not panel.busy() and panel._erf_shown == panel._erf_key and panel._erf_running is None,
                    timeout=30_000)
    assert panel.erf_result is None and panel.erf_image.image is None
    assert "Effective field not shown: input_size: 1024 is too large" in panel.unit_label.text()
    assert errors == []
    assert panel.set_values({"input_size": 64, "unit_x": 32, "unit_y": 32})
    wait_erf(qtbot, panel)
    assert "not shown" not in panel.unit_label.text() and panel.erf_image.image is not None


# ---- the backend's refusals in the interface language ------------------------------------------------
def test_every_backend_refusal_has_a_template_and_the_english_ones_are_the_backends():
    from widgets.receptive_field import error_templates

    assert error_templates() == dict(rf.ERRORS)  # English: word for word; a new reason needs its template here


def test_a_bad_layer_field_in_chinese_is_said_in_chinese_naming_the_field(qtbot, open_panel):
    from workbench.i18n import set_language

    set_language("zh_CN")
    panel = open_panel(ReceptiveFieldPanel, 1500, 950)
    messages = []
    panel.message.connect(lambda text, is_error: is_error and messages.append(text))
    before = dict(panel.values)
    panel.table.item(0, 3).setText("0")  # stride 0
    assert panel.values == before and cell(panel, 0, 3) == "1"
    note = panel.table_note.text()
    assert "第 1 层（conv1_1）" in note and "步长" in note and "必须是 ≥ 1 的整数" in note, note
    assert "must" not in note and "stride" not in note
    assert messages and messages[-1] == note
    panel.table.item(2, 4).setText("2")  # pool1 (2x2): padding 2 > 1
    assert "第 3 层（pool1）" in panel.table_note.text() and "填充 2 超过了核大小 2 的一半" in panel.table_note.text()
    with pytest.raises(ParamError) as refused:  # typed text (a scene, --set): the declaration's message, in Chinese
        PARAMS.resolve({**PARAMS.defaults(), "layers": "conv k=3 g=0"})
    assert "第 1 层（conv）：分组数 必须是 ≥ 1 的整数" in str(refused.value), str(refused.value)
    with pytest.raises(ParamError) as refused:  # fits the declaration, not the input size
        PARAMS.resolve({**PARAMS.defaults(), "layers": "conv k=3; conv k=9", "input_size": 8, "layer": 1})
    assert "第 2 层（conv）：核大小 9 大于填充后的输入 6" in str(refused.value), str(refused.value)


def test_backend_refusals_carry_their_reason_and_fields():
    with pytest.raises(rf.ReceptiveFieldError) as refused:
        rf.receptive_field([rf.Layer("conv", 3, stride=0, name="c1")])
    error = refused.value
    assert error.reason == "integer_at_least"
    assert error.fields == {"layer": 1, "name": "c1", "field": "stride", "low": 1, "value": 0}
    assert str(error) == "layer 1 (c1): stride must be an integer >= 1, got 0"
    with pytest.raises(rf.ReceptiveFieldError, match=r"layer 1 \(conv\): unknown key 'q'") as refused:
        rf.parse_layers("conv k=3 q=1")
    assert refused.value.reason == "unknown_key" and refused.value.fields["key"] == "q"


def test_busy_until_the_effective_field_is_shown(qtbot, panel):
    """The effective field runs on its own worker after the draw: the panel counts as busy until it
    is shown, so whoever waits for a panel to settle (the soak's memory readings, exports) waits for it."""
    wait_erf(qtbot, panel)
    assert panel.set_values({"erf_weights": "random"})
    assert panel.busy()  # the compute, its draw, or the effective field after it
    qtbot.waitUntil(lambda: not panel.busy(), timeout=30_000)
    assert panel._erf_running is None and panel._erf_shown == panel._erf_key
