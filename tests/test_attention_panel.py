"""The attention panel, driven through its real controls; asserts on what is drawn."""

import json
import math
import warnings

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from widgets.attention import PARAMS, AttentionPanel, mask_text, parse_mask, token_lists
from workbench.compute import attention as att
from workbench.params import ParamError


@pytest.fixture
def panel(open_panel):
    return open_panel(AttentionPanel, 1500, 900)


def expected(values):
    """The multi-head attention the values ask for, straight from the backend."""
    queries, keys = token_lists(values)
    x_kv = att.embed(keys, values["d_model"], values["seed"], values["positional"], values["embed_scale"])
    x_q = x_kv if values["mode"] == "self" else att.embed(queries, values["d_model"], values["seed"],
                                                          values["positional"], values["embed_scale"])
    weights = att.init_weights(values["d_model"], values["heads"], values["seed"], values["tie_qk"])
    if values["mask"] == "custom":
        mask = parse_mask(values["custom_mask"])
    else:
        mask = att.combine_masks(att.padding_mask(keys, len(queries)) if "padding" in values["mask"] else None,
                                 att.causal_mask(len(queries), len(keys)) if "causal" in values["mask"] else None)
    result = att.multi_head(x_q, x_kv, weights, mask=mask, scale=None if values["scale"] else 1.0,
                            temperature=values["temperature"])
    return tuple(queries), tuple(keys), (np.ones((len(queries), len(keys)), bool) if mask is None else mask), result


def drawn(panel, key):
    return panel.maps[key].drawn


def assert_draws_expected(panel):
    queries, keys, mask, result = expected(panel.values)
    head = panel.values["head"]
    weights = result.mean_weights if head == 0 else result.weights[head - 1]
    scores = result.scores.mean(axis=0) if head == 0 else result.scores[head - 1]
    np.testing.assert_allclose(drawn(panel, "weights"), np.where(mask, weights, np.nan), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(drawn(panel, "scores"), np.where(mask, scores, np.nan), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.isnan(drawn(panel, "mask")), ~mask)
    for index in range(result.weights.shape[0] + 1):
        matrix = result.mean_weights if index == 0 else result.weights[index - 1]
        np.testing.assert_allclose(panel.mosaic.tiles[index], np.where(mask, matrix, np.nan), rtol=1e-12)
    assert panel.plots["weights"].getAxis("left").tokens == tuple(queries)
    assert panel.plots["weights"].getAxis("bottom").tokens == tuple(keys)
    return queries, keys, mask, result


def type_into(qtbot, panel, name, text):
    edit = panel.controls[name].edit
    edit.setFocus()
    edit.selectAll()
    if text.isascii():
        qtbot.keyClicks(edit, text)
    else:  # QTest types ASCII only; an input method delivers the text at once
        edit.setText(text)
    qtbot.keyClick(edit, Qt.Key_Return)


def test_default_scene_draws_the_backend_result(panel):
    queries, keys, mask, result = assert_draws_expected(panel)
    assert len(keys) == 12 and keys[-2:] == (att.PAD, att.PAD) and queries == keys
    assert not mask[:, -2:].any() and mask[:, :-2].all()  # padding: the [PAD] columns are hidden
    assert len(panel.mosaic.tiles) == 4 + 1 and [label.toPlainText() for label in panel.mosaic.labels if label.isVisible()] == [
        "mean", "head 1", "head 2", "head 3", "head 4"]
    image = panel.mosaic.image.image  # one image: five 12 x 12 tiles, 2-cell gaps, 4 rows of room for the names
    assert image.shape == (16, 5 * 12 + 4 * 2, 4)
    np.testing.assert_array_equal(image[4:, 12:14, 3], 0)  # the gap between tiles is transparent
    assert "√8" in panel.formula.text() and "12" in panel.formula.text()
    assert not panel.warning.text()
    rgba = panel.maps["weights"].image.image
    assert rgba.shape == (12, 12, 4) and np.all(rgba[:, -2:, 3] == 0) and np.all(rgba[:, :-2, 3] == 255)


def test_typing_chinese_text_makes_one_token_per_character(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        type_into(qtbot, panel, "text", "我爱深度学习")
    _, keys, _, _ = assert_draws_expected(panel)
    assert keys == ("我", "爱", "深", "度", "学", "习", att.PAD, att.PAD, att.PAD, att.PAD, att.PAD, att.PAD)


def test_causal_mask_hides_the_future_and_rows_still_sum_to_one(qtbot, panel):
    combo = panel.controls["mask"].combo
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        combo.setCurrentIndex(combo.findData("causal"))
    _, _, mask, result = assert_draws_expected(panel)
    np.testing.assert_array_equal(mask, np.tri(12, dtype=bool))
    np.testing.assert_allclose(np.nansum(drawn(panel, "weights"), axis=1), 1.0)
    assert np.all(np.isnan(drawn(panel, "scores")[np.triu_indices(12, 1)]))


def test_clicking_the_mask_starts_a_custom_mask_from_the_one_shown(qtbot, panel):
    view = panel.plots["mask"].vb
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel._mask_clicked(QPointF(3.5, 1.5))  # key 3 of query 1, as a click maps it
    assert panel.values["mask"] == "custom"
    mask = parse_mask(panel.values["custom_mask"])
    assert not mask[1, 3] and not mask[:, -2:].any() and mask.sum() == 12 * 10 - 1
    assert np.isnan(drawn(panel, "weights")[1, 3])
    assert_draws_expected(panel)
    assert view.mapSceneToView(view.mapViewToScene(QPointF(3.5, 1.5))) == QPointF(3.5, 1.5)


def test_a_query_that_sees_nothing_is_zero_flagged_and_never_nan(qtbot, panel):
    messages = []
    panel.message.connect(lambda text, error: messages.append(text))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with qtbot.waitSignal(panel.drawn, timeout=10_000):
            panel.apply_preset("fully_masked")
    _, _, mask, result = assert_draws_expected(panel)
    assert not mask[4].any() and result.fully_masked_rows == (4,)
    assert np.all(result.weights[:, 4] == 0) and np.all(result.output[4] == 0)
    assert np.all(np.isfinite(result.output)) and np.all(np.isfinite(result.weights))
    assert "4" in panel.warning.text() and "NaN" in panel.warning.text()
    assert any("sees no key" in m for m in messages)
    assert "nan" not in panel.cell_text(4, 0).lower() and "−∞" in panel.cell_text(4, 0)


def test_cross_attention_uses_decoder_queries_over_encoder_keys(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("cross")
    queries, keys, mask, result = assert_draws_expected(panel)
    assert queries == ("猫", "坐", "在", "垫", "子", "上") and len(keys) == 8
    assert drawn(panel, "weights").shape == (6, 8) and result.output.shape == (6, panel.values["d_model"])
    assert panel.controls["query_text"].isEnabled()


def test_tied_projections_draw_symmetric_scores(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("tied_qk")
    scores = drawn(panel, "scores")
    np.testing.assert_allclose(scores, scores.T, atol=1e-12)


def test_unscaled_large_dk_saturates_and_the_marker_says_so(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset("unscaled")
    _, _, mask, result = assert_draws_expected(panel)
    assert np.mean(result.weights[0][mask[:, 0]].max(axis=-1)) > 0.8  # rows nearly one-hot
    x, y = panel.here_std.getData()
    assert x[0] == pytest.approx(math.log10(512)) and y[0] > 1.0  # the logits' std is above 10
    _, weights = panel.sat_curves["max_weight", False].getData()
    assert weights[-1] > 0.9  # the dashed (unscaled) curve saturates at large d_k
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.controls["scale"].check.click()
    assert panel.values["scale"] and np.mean(panel.result.result.weights.max(axis=-1)) < 0.6


def test_clicking_a_small_heatmap_shows_that_head_large(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.mosaic.view.mouseClickEvent(_Click(panel.mosaic.view, QPointF(3 * 14 + 6, 4 + 6)))  # inside tile 3
    assert panel.values["head"] == 3
    assert_draws_expected(panel)
    assert panel.plots["weights"].titleLabel.text == "Weights: head 3"
    frame = panel.mosaic.frame.rect()
    assert (frame.left(), frame.top(), frame.width()) == (3 * 14 - 0.5, 4 - 0.5, 13)


class _Click:
    def __init__(self, view, point):
        self._pos = view.mapViewToScene(point)

    def button(self):
        return Qt.LeftButton

    def accept(self):
        pass

    def scenePos(self):
        return self._pos


def test_fewer_heads_keep_the_shown_head_valid(qtbot, panel):
    panel.set_values({"head": 4})
    qtbot.waitUntil(lambda: not panel.busy() and panel.result is not None and panel.values["head"] == 4)
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        type_into(qtbot, panel, "heads", "2")
    assert panel.values["heads"] == 2 and panel.values["head"] == 2
    assert panel.controls["head"].slider.maximum() == 2 and panel.controls["head"].slider.value() == 2
    assert len(panel.mosaic.tiles) == 3 and not panel.mosaic.labels[3].isVisible()
    assert_draws_expected(panel)


@pytest.mark.parametrize("name, text, words", [
    ("heads", "3", "does not divide d_model"),
    ("temperature", "nan", "Softmax temperature"),
    ("temperature", "inf", "Softmax temperature"),
    ("temperature", "abc", "Softmax temperature"),
    ("pad_to", "500", "Pad to length"),
])
def test_bad_numbers_are_refused_and_nothing_changes(qtbot, panel, name, text, words):
    before, shown = dict(panel.values), drawn(panel, "weights").copy()
    type_into(qtbot, panel, name, text)
    assert panel.values == before
    assert words in panel.controls[name].error_label.text()
    np.testing.assert_array_equal(drawn(panel, "weights"), shown)


@pytest.mark.parametrize("text, words", [("   ", "no tokens"), (" ".join(["w"] * 129), "129 tokens, at most 128")])
def test_bad_text_is_refused_with_the_reason(qtbot, panel, text, words):
    before = dict(panel.values)
    assert not panel.set_values({"text": text})
    assert panel.values == before
    assert words in panel.controls["text"].error_label.text() or text.strip() == ""
    assert "Sentence (keys)" in panel.controls["text"].error_label.text()


def test_a_custom_mask_of_the_wrong_shape_in_a_scene_is_refused_naming_it():
    with pytest.raises(ParamError, match=r"custom_mask.*3 x 2 cells.*12 queries and 12 keys"):
        PARAMS.resolve({"mask": "custom", "custom_mask": "11/11/11", "text": "the cat sat on the mat because it was tired"})
    with pytest.raises(ParamError, match="custom_mask.*only 0"):
        PARAMS.resolve({"mask": "custom", "custom_mask": "12/11"})


def test_the_custom_mask_follows_a_longer_sentence(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel._mask_clicked(QPointF(0.5, 0.5))
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"pad_to": 14})
    mask = parse_mask(panel.values["custom_mask"])
    assert mask.shape == (14, 14) and not mask[0, 0] and mask[12:, :].all() and mask[:, 12:].all()
    assert_draws_expected(panel)


def test_hover_readout_names_query_key_score_and_weight(panel):
    scene = panel.result
    text = panel.cell_text(2, 3)
    weight = scene.result.mean_weights[2, 3]
    assert "“sat”" in text and "“on”" in text and f"{weight:.4f}" in text
    assert "−∞" in panel.cell_text(0, 11)  # a [PAD] key under the padding mask


def test_notes_show_the_formula_with_the_current_numbers(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"d_model": 64, "heads": 2})
    panel.refresh_notes()
    text = panel.notes.toPlainText()
    assert "d_k = d_model / heads = 32" in text.replace("\u2009", " ") or "= 32" in text
    assert "{" not in text


@pytest.mark.parametrize("key", list(PARAMS.presets))
def test_every_preset_draws(qtbot, panel, key):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.apply_preset(key)
    assert_draws_expected(panel)


def test_128_tokens_by_8_heads(qtbot, panel):
    with qtbot.waitSignal(panel.drawn, timeout=10_000):
        panel.set_values({"text": " ".join(f"w{i}" for i in range(120)), "pad_to": 128, "d_model": 256, "heads": 8})
    _, keys, _, result = assert_draws_expected(panel)
    assert len(keys) == 128 and result.weights.shape == (8, 128, 128)


def test_data_export_has_no_nan(panel, tmp_path):
    from workbench.export_data import save_data
    panel.set_values({"mask": "causal"})
    panel.compute_now()
    save_data(str(tmp_path / "a.json"), "attention", panel.values, panel.result)
    data = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert data["result"]["result"]["scores"][0][0][1] is None  # -inf is written as null
    assert mask_text(np.array(data["result"]["mask"])) == mask_text(np.tri(12, dtype=bool))
