"""The floats panel, driven through its real controls; asserts on what is drawn."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from widgets.floats import FloatsPanel, STANDARD
from workbench.compute import floats as fl


@pytest.fixture
def panel(open_panel):
    return open_panel(FloatsPanel, 1500, 1000)


def enter(qtbot, panel, text):
    edit = panel.controls["value"].edit
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key_Return)


def strip_bits(panel, key):
    return int(panel.strips[key].cells.text(), 2)


def table(panel):
    return {panel.table.item(r, 0).text(): [panel.table.item(r, c).text() for c in range(1, 6)]
            for r in range(panel.table.rowCount())}


def test_default_shows_point_one_in_four_formats(panel):
    assert list(panel.strips) == ["fp32", "fp16", "bf16", "fp8_e4m3"]
    for key in panel.strips:
        assert strip_bits(panel, key) == fl.encode(0.1, fl.FORMATS[key])
    assert "0.0999755859375" in panel.strips["fp16"].value.text()
    rows = table(panel)
    assert rows["FP16 (half)"][0] == "0.09997558594" and rows["FP16 (half)"][3] == "0x2e66"
    assert "(−1)⁰ × 2¹¹⁻¹⁵ × 1.1001100110₂ = 1 × 2⁻⁴ × 1.599609375" == panel.strips["fp16"].formula.text()


def test_typing_a_hex_pattern_reads_it_in_the_chosen_format(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        enter(qtbot, panel, "0x3c00")
    assert strip_bits(panel, "fp16") == 0x3C00
    assert strip_bits(panel, "fp32") == 0x3F800000
    assert table(panel)["FP32 (single)"][0] == "1"


def test_clicking_a_bit_flips_it_everywhere(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        enter(qtbot, panel, "1")
    cells = panel.strips["fp16"].cells
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        qtbot.mouseClick(cells, Qt.LeftButton, pos=cells.cell_rect(15).center())  # the sign bit
    assert panel.values["value"] == "0xbc00" and panel.values["pattern_format"] == "fp16"
    assert strip_bits(panel, "fp16") == 0xBC00
    assert table(panel)["BF16 (bfloat16)"][0] == "-1"
    assert panel.controls["value"].edit.text() == "0xbc00"


@pytest.mark.parametrize("text", ["abc", "", "0x", "1.2.3", "0x1ffff", "0b" + "1" * 17])
def test_bad_values_are_refused_next_to_the_entry(qtbot, panel, text):
    before = dict(panel.values)
    enter(qtbot, panel, text)
    assert panel.values == before
    error = panel.controls["value"].error_label
    assert error.isVisibleTo(panel) and "value" in error.text()
    assert panel.controls["value"].edit.text() == "0.1"


def test_huge_literal_shows_each_formats_overflow(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"value": "1e99999", "show_fp8_e5m2": True})
    rows = table(panel)
    assert rows["FP16 (half)"][0] == "+∞"
    assert rows["FP8 E4M3"][0] == "448"  # torch saturates e4m3fn
    assert rows["FP8 E5M2"][0] == "+∞"
    assert "nan" not in " ".join(" ".join(r) for r in rows.values()).lower().replace("nan)", "")


def test_nan_where_a_format_has_none(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"value": "nan", "show_fp4_e2m1": True})
    assert panel.strips["fp4_e2m1"].value.text().startswith("cannot store")
    assert strip_bits(panel, "fp16") == 0x7E00
    assert not panel.set_values({"value": "nan", **{f"show_{k}": k == "fp4_e2m1" for k in STANDARD}})


def test_custom_format_matches_e5m2(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"show_custom": True, "custom_exponent": 5, "custom_mantissa": 2, "show_fp8_e5m2": True,
                          "value": "3.3"})
    assert strip_bits(panel, "custom") == strip_bits(panel, "fp8_e5m2") == fl.encode(3.3, fl.FP8_E5M2)


def test_density_tie_goes_to_even(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("fp8_ties")
    x = panel.density_near.data["x"]
    np.testing.assert_allclose(x, [1.0, 1.125])
    filled = [b.style() != Qt.NoBrush for b in panel.density_near.data["brush"]]
    assert filled == [True, False]
    assert "halfway" in panel.zoom_caption.toPlainText()
    assert len(panel.density_ticks.data) == len(fl.representable_values(fl.FP8_E4M3))


def test_loss_scaling_bars_match_the_backend(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"scale_exp": 16, "grad_median": 1e-7})
    samples = fl.lognormal_samples(1e-7, 1.5, n=1_000_000, seed=0)
    expected = fl.scaling_stats(samples, fl.FP16, 16)
    bars = panel.share_bars.opts
    fp16_row = list(panel.strips).index("fp16")
    widths = bars["width"][4 * fp16_row: 4 * fp16_row + 4]
    np.testing.assert_allclose(widths, [expected.underflow, expected.subnormal, expected.normal, expected.overflow])
    assert f"{expected.underflow:.1%}" in panel.share_labels[fp16_row].textItem.toPlainText()
    _, shares = panel.hist_curve.getData()
    assert shares.sum() == pytest.approx(1.0, abs=1e-3)


def test_slider_changes_the_scale(qtbot, panel):
    control = panel.controls["scale_exp"]
    assert control.slider.minimum() == 0 and control.slider.maximum() == 100  # one tick per integer -40..60
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        control.slider.setValue(control.to_slider(20))
    assert panel.values["scale_exp"] == 20
    assert panel.result.scaling[0].scale_exp == 20


def test_long_exact_values_are_shortened_honestly_and_given_whole_in_the_tooltip(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"show_fp64": True})
    strip = panel.strips["fp64"]
    assert "1.00000000000000005551…e-1" in strip.value.text()  # a prefix of the exact value, not a rounding
    assert "0.1000000000000000055511151231257827021181583404541015625" in strip.value.toolTip()
    assert strip.value.toolTip() and not panel.strips["fp32"].value.toolTip()
    assert "0.100000001490116119384765625" in panel.strips["fp32"].value.text()


def test_sixty_four_bits_fit_a_projector_window(qtbot):
    from widgets.style import Style

    panel = FloatsPanel(Style(presentation=True))
    qtbot.addWidget(panel)
    panel.set_notes_visible(False)
    panel.show()
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"show_fp64": True, "show_tf32": True, "show_fp8_e5m2": True})
    assert panel.minimumSizeHint().width() <= 1600 - 40


def test_bits_flip_from_the_keyboard_and_every_cell_is_hit_where_it_is_drawn(qtbot, panel):
    cells = panel.strips["fp8_e4m3"].cells
    assert [cells.index_at(cells.cell_rect(i).center()) for i in range(8)] == list(range(8))
    assert cells.index_at(QPoint(cells.cell_rect(0).right() + 5, 2)) is None  # right of the last cell
    cells.setFocus()
    qtbot.keyClick(cells, Qt.Key_Right)  # from the sign bit to the top exponent bit
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        qtbot.keyClick(cells, Qt.Key_Space)
    assert panel.values["pattern_format"] == "fp8_e4m3"
    assert strip_bits(panel, "fp8_e4m3") == fl.encode(0.1, fl.FP8_E4M3) ^ (1 << 6)


def test_bit_indices_mark_where_each_field_starts_and_ends(panel):
    assert panel.strips["fp16"].cells.labelled_indices() == [15, 14, 10, 9, 0]
    assert panel.strips["fp32"].cells.labelled_indices() == [31, 30, 23, 22, 0]
    cells = panel.strips["fp8_e4m3"].cells
    assert cells.labelled_indices() == [7, 6, 3, 2, 0]
    assert cells.cell_rect(7).top() > 0  # the index row sits above the cells


@pytest.mark.parametrize("text, english, chinese", [
    ("abc", "not a number: 'abc'", "不是数字：'abc'"),
    ("0x", "no hex digits after '0x'", "中 '0x' 之后没有十六进制数字"),
    ("0x3c0g", "invalid hex digit(s) 'g'", "无效的十六进制数字 'g'"),
    ("-0x3c00", "a bit pattern cannot have a sign", "位模式不能带符号"),
])
def test_refused_input_is_explained_in_the_interface_language(qtbot, style, text, english, chinese):
    from workbench.i18n import set_language

    for language, expected in (("en", english), ("zh_CN", chinese)):
        set_language(language)
        try:
            panel = FloatsPanel(style)
            qtbot.addWidget(panel)
            before = dict(panel.values)
            assert not panel.set_values({"value": text})
            assert expected in panel.controls["value"].error_label.text()
            assert panel.values == before
        finally:
            set_language("en")


def test_a_format_that_cannot_store_the_input_says_why_in_chinese(qtbot, style):
    from workbench.i18n import set_language

    set_language("zh_CN")
    try:
        panel = FloatsPanel(style)
        qtbot.addWidget(panel)
        assert panel.set_values({"value": "nan", "show_fp4_e2m1": True})
        panel.compute_now()
        assert "fp4_e2m1 没有 NaN 编码" in panel.strips["fp4_e2m1"].value.text()
    finally:
        set_language("en")


@pytest.mark.parametrize("pattern", ["0x7e00", "0xffff"])
def test_a_nan_bit_pattern_is_nan_in_every_format_that_has_one(qtbot, panel, pattern):
    panel.set_values({"show_fp4_e2m1": True})
    with qtbot.waitSignal(panel.drawn, timeout=5000):
        enter(qtbot, panel, pattern)
    assert panel.values["value"] == pattern
    for key, strip in panel.strips.items():
        if key == "fp4_e2m1":
            assert "fp4_e2m1 has no NaN encoding" in strip.value.text()
        else:
            assert "NaN" in strip.value.text() and np.isnan(fl.decode(strip_bits(panel, key), fl.FORMATS[key]))
