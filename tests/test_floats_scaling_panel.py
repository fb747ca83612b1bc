"""The floats panel's new formats and its Block scaling view, driven through the panel and asserted on
what is drawn; and format toggles that move nothing below the rows."""

import math

import numpy as np
import pytest
from PySide6.QtCore import Qt

from widgets.floats import ROW_KEYS, SIDE_BY_SIDE, FloatsPanel, _share
from workbench import soak
from workbench.compute import floats as fl


@pytest.fixture
def panel(open_panel):
    return open_panel(FloatsPanel, 1500, 1000)


def draw(qtbot, panel, **values):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        assert panel.set_values(values)


def summary(panel):
    return [[panel.summary.item(r, c).text() for c in range(8)] for r in range(panel.summary.rowCount())]


def test_showing_and_hiding_formats_moves_nothing_below_the_rows(qtbot, panel):
    view_size = panel.plots.size()
    counts = soak.item_counts(panel)
    for key in ("fp64", "e8m0", "fp8_e4m3fnuz", "fp6_e2m3", "custom", "tf32", "fp4_e2m1", "fp8_e3m4"):
        draw(qtbot, panel, **{f"show_{key}": True})
        assert key in panel.strips and panel.strips[key].isVisible()
        assert panel.plots.size() == view_size  # the plots' view is never resized: no axis regenerates
        assert soak.item_counts(panel) == counts  # items shown and hidden, never made or dropped
    shown = [k for k in ROW_KEYS if panel.values[f"show_{k}"]]
    assert list(panel.strips) == shown
    assert [panel.table.item(r, 0).text() for r in range(panel.table.rowCount()) if not panel.table.isRowHidden(r)] == [
        panel.strips[k].fmt.label for k in shown]
    assert len(panel.range_labels) == len(shown) == len(panel.share_labels)
    assert len(panel.range_bars.opts["x0"]) == 2 * len(shown)
    for key in ("fp64", "e8m0", "custom"):
        draw(qtbot, panel, **{f"show_{key}": False})
        assert not panel.all_strips[key].isVisible() and panel.plots.size() == view_size
    assert soak.item_counts(panel) == counts


def test_e8m0_has_no_sign_or_mantissa_cells_and_rounds_ties_up(qtbot, panel):
    draw(qtbot, panel, show_e8m0=True, value="3", density_format="e8m0")
    strip = panel.strips["e8m0"]
    assert [strip.cells.field(i) for i in range(8)] == ["exponent"] * 8
    assert strip.cells.text() == "10000001" and "=\u00a04  (normal, 0x81)" in strip.value.text()
    assert strip.formula.text() == "2¹²⁹⁻¹²⁷ × 1₂ = 2²"
    assert "tie goes up" in panel.zoom_caption.toPlainText()
    assert panel.result.pattern_kinds[0xFF] == fl.KINDS.index("nan") and list(panel.result.pattern_kinds).count(
        fl.KINDS.index("normal")) == 255
    draw(qtbot, panel, value="0")
    assert "NaN" in strip.value.text()
    rows = {panel.table.item(r, 0).text(): panel.table.item(r, 5).text() for r in range(panel.table.rowCount())}
    assert rows["E8M0 (MX scale)"] == "zero: this format has no zero (NaN)"


def test_fnuz_draws_its_nan_where_negative_zero_would_be(qtbot, panel):
    draw(qtbot, panel, show_fp8_e4m3fnuz=True, density_format="fp8_e4m3fnuz", value="-0")
    assert panel.strips["fp8_e4m3fnuz"].cells.text() == "00000000" and panel.strips["fp8_e4m3"].cells.text() == "10000000"
    image = panel.kinds_image.image  # every pattern of the format, 16 to a row: 0x80 opens row 8
    assert image.shape == (16, 16) and image[8, 0] == fl.KINDS.index("nan") and image[0, 0] == fl.KINDS.index("zero")
    assert "0x80 is NaN" in panel.density_caption.toPlainText()
    draw(qtbot, panel, value="0x80", pattern_format="fp8_e4m3fnuz")
    strip = panel.strips["fp8_e4m3fnuz"]
    assert "NaN" in strip.value.text() and "where −0 would be" in strip.formula.text()
    assert panel.strips["fp8_e4m3"].cells.text() == "11111111"  # NaN in the OCP format: S.1111.111, the sign kept


def test_a_bit_flip_on_e8m0_reads_the_pattern_in_e8m0(qtbot, panel):
    draw(qtbot, panel, show_e8m0=True, value="1")
    cells = panel.strips["e8m0"].cells
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        qtbot.mouseClick(cells, Qt.LeftButton, pos=cells.cell_rect(0).center())
    assert panel.values["value"] == "0x7e" and panel.values["pattern_format"] == "e8m0"
    assert "=\u00a00.5" in panel.strips["e8m0"].value.text()


def test_the_scaling_page_is_built_when_first_shown(qtbot, open_panel):
    panel = open_panel(FloatsPanel, 1400, 900)
    assert "scaling" not in panel.page_widgets and "formats" in panel.page_widgets
    draw(qtbot, panel, view="scaling")
    assert "scaling" in panel.page_widgets and panel.pages.currentWidget() is panel.page_widgets["scaling"]
    canvas = panel.qcanvas
    draw(qtbot, panel, view="formats")
    draw(qtbot, panel, view="scaling")
    assert panel.qcanvas is canvas and panel.pages.count() == 2
    assert not panel.controls["value"].isEnabled() and panel.controls["tensor_rows"].isEnabled()
    assert not panel.controls["element"].isEnabled()  # the recipe decides; Custom opens them
    draw(qtbot, panel, recipe="custom")
    assert panel.controls["element"].isEnabled() and not panel.controls["role"].isEnabled()


def test_the_scaling_view_draws_the_backends_numbers(qtbot, panel):
    draw(qtbot, panel, view="scaling")
    v = panel.values
    tensor = fl.example_tensor("outliers", v["tensor_rows"], v["tensor_cols"], std=v["tensor_std"],
                               outliers=v["outliers"], outlier_size=v["outlier_size"], seed=v["tensor_seed"])
    expected = [fl.quantize_recipe(tensor, name) for name in ("mxfp4", *SIDE_BY_SIDE)]
    rows = summary(panel)
    for row, q in zip(rows, expected):
        assert row[1] == f"{q.stats.bits_per_value:.4g}" and row[2] == f"{q.stats.sqnr_db:.3g}"
        assert row[5] == _share(q.stats.flushed) and row[6] == _share(q.stats.saturated)
    assert rows[0][1] == "4.25" and rows[4][1] == f"{4.5 + 32 / tensor.size:.4g}"
    assert "MXFP4 on 16 × 256 values" in panel.scaling_status.text() and "128 scales" in panel.scaling_status.text()
    row = panel.result.row
    assert row == int(np.argmax(np.abs(tensor).max(axis=1)))  # the row holding the largest value
    x, y = panel.row_items["after"].data()
    kept = expected[0].dequantized[row] != 0
    np.testing.assert_allclose(y, np.log10(np.abs(expected[0].dequantized[row][kept])))
    flushed_x, _ = panel.row_items["flushed"].data()
    assert len(flushed_x) == np.count_nonzero((tensor[row] != 0) & (expected[0].dequantized[row] == 0)) > 0
    for image in (*panel.heat_images.values(), *panel.side_images):
        assert image.image.shape == (16, 256, 4)


def test_one_outlier_ruins_a_per_tensor_fp4_scale_and_not_a_block_scale(qtbot, panel):
    draw(qtbot, panel, view="scaling", outliers=1, outlier_size=1000.0, recipe="custom", element="fp4_e2m1",
         granularity="tensor", scale_format="fp32")
    rows = summary(panel)
    assert rows[0][0].startswith("This view: Custom: FP4 E2M1") and rows[0][5] == "100.0%"
    per_tensor, mxfp4, nvfp4 = (panel.result.main, panel.result.side[2], panel.result.side[3])
    assert per_tensor.stats.flushed > 0.99 and mxfp4.stats.flushed < 0.1 and nvfp4.stats.flushed < 0.1
    row = panel.result.row
    column = int(np.argmax(np.abs(panel.result.tensor[row])))
    block = slice(column // 32 * 32, column // 32 * 32 + 32)
    for image, block_lost in ((panel.side_images[2], 30 / 31), (panel.heat_images["error"], 30 / 31)):
        lost = np.all(image.image[..., :3] == panel._luts["error"][253][:3], axis=-1)  # bright: relative error 1
        assert lost[row, block].mean() >= block_lost  # the outlier's block: all but the outlier flushed
    mx_lost = np.all(panel.side_images[2].image[..., :3] == panel._luts["error"][253][:3], axis=-1)
    mx_lost[row, block] = False
    assert mx_lost.mean() < 0.15  # elsewhere MXFP4 loses only the smallest values of each block
    per_tensor_lost = np.all(panel.heat_images["error"].image[..., :3] == panel._luts["error"][253][:3], axis=-1)
    assert per_tensor_lost.mean() > 0.99  # one FP4 scale for the tensor: everything but the outlier


def test_nan_and_inf_in_a_tensor_are_shown_not_printed(qtbot, panel):
    draw(qtbot, panel, view="scaling", tensor_kind="gaussian", inject="inf", recipe="mxfp8_e4m3")
    assert "1 NaN scale: its block is NaN" in panel.scaling_status.text()
    rows = summary(panel)
    assert rows[0][7] == f"{32 / 4096:.1%}" and rows[1][7] == "100.0%"  # per tensor: 448 / inf, the whole tensor
    shown = " ".join([panel.scaling_status.text(), panel.scaling_legend.text()] + [t for r in rows for t in r])
    assert "nan" not in shown.replace("NaN", "")
    magenta = panel.heat_images["values"].image[0, 256 // 3]
    assert tuple(magenta) == (204, 0, 204, 255)


def test_typed_values_are_read_and_bad_ones_refused_naming_the_parameter(qtbot, panel):
    draw(qtbot, panel, view="scaling", tensor_kind="typed", typed_values="1, 2.5, nan, -inf, 1000, 0.01")
    assert panel.result.tensor.shape == (1, 6) and panel.result.main.stats.nan > 0
    before = dict(panel.values)
    for text in ("1, two, 3", "", "1 2; 3"):
        assert not panel.set_values({"typed_values": text})
        assert panel.values == before
        assert "typed_values" in panel.controls["typed_values"].error_label.text()
    assert not panel.set_values({"block_size": "33"}) and panel.values == before
    assert "block_size" in panel.controls["block_size"].error_label.text()


def test_bad_custom_formats_are_refused_naming_the_parameter(panel):
    before = dict(panel.values)
    assert not panel.set_values({"custom_specials": "fnuz", "custom_signed": False})
    assert panel.values == before and "custom_specials" in panel.controls["custom_specials"].error_label.text()
    assert not panel.set_values({"custom_exponent": 11, "custom_mantissa": 52, "custom_bias_shift": 3})
    assert panel.values == before
    assert panel.set_values({"show_custom": True, "custom_exponent": 4, "custom_mantissa": 3, "custom_bias_shift": 1,
                             "custom_specials": "fnuz"})
    panel.compute_now()
    assert panel.strips["custom"].fmt.bias == 8 and "E4M3 (custom, bias 8, fnuz)" in panel.strips["custom"].name.text()
    assert np.array_equal(fl.representable_values(panel.strips["custom"].fmt),
                          fl.representable_values(fl.FP8_E4M3FNUZ))


def test_the_scaling_view_in_chinese(qtbot, style):
    from workbench.i18n import set_language

    set_language("zh_CN")
    try:
        panel = FloatsPanel(style)
        qtbot.addWidget(panel)
        assert panel.set_values({"view": "scaling", "inject": "nan"})
        panel.compute_now()
        assert "量化 16 × 256 个值" in panel.scaling_status.text() and "缩放因子" in panel.scaling_status.text()
        assert panel.summary.horizontalHeaderItem(1).text() == "每值位数"
        assert summary(panel)[0][0].startswith("本视图")
        assert "颜色（对数刻度）" in panel.scaling_legend.text()
    finally:
        set_language("en")


def test_delayed_scaling_saturates_a_growing_tensor(qtbot, panel):
    draw(qtbot, panel, view="scaling", tensor_kind="gaussian", recipe="fp8_tensor", amax_history=16, amax_growth=1.5)
    q = panel.result.main
    assert q.amax_used is not None and q.amax_used < np.max(np.abs(panel.result.tensor))
    assert q.stats.saturated > 0 and "delayed scaling" in panel.scaling_status.text()
    assert summary(panel)[1][0] == "FP8 per tensor (delayed, 16 steps)"
    draw(qtbot, panel, amax_history=0)
    assert panel.result.main.amax_used is None and panel.result.main.stats.saturated == 0
    assert math.isclose(panel.result.main.scales.item(), float(np.float32(np.max(np.abs(panel.result.tensor)) / 448)))
