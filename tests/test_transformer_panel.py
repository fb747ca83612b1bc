"""The Transformer panel, driven through its real controls; asserts on what is drawn, with torch
or closed forms as the reference."""

import math

import numpy as np
import pytest
import torch

from widgets.transformer import PARAMS, TransformerPanel
from workbench.compute import transformer as tf
from workbench.params import ParamError


@pytest.fixture
def panel(open_panel):
    return open_panel(TransformerPanel, 1500, 920)


def show(qtbot, panel, **changes):
    """Apply ``changes`` and wait until their page is drawn."""
    with qtbot.waitSignal(panel.drawn, timeout=20_000):
        assert panel.set_values(changes)
    return panel.result.page


def set_combo(panel, name, value):
    combo = panel.controls[name].combo
    combo.setCurrentIndex(combo.findData(value))


def test_positions_page_draws_the_sinusoid_and_the_four_terms_that_sum_to_the_score(qtbot, panel):
    page = show(qtbot, panel, view="positions", n_positions=96, d_model=32, base=1000.0)
    p = torch.arange(96, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, 32, 2, dtype=torch.float64) * (-math.log(1000.0) / 32))  # the Annotated Transformer
    expected = torch.zeros(96, 32, dtype=torch.float64)
    expected[:, 0::2], expected[:, 1::2] = torch.sin(p * div), torch.cos(p * div)
    np.testing.assert_allclose(panel.pe_map.drawn, expected.numpy(), atol=1e-12)
    drawn = [heat.drawn for heat in panel.term_maps]
    np.testing.assert_allclose(sum(drawn[:4]), drawn[4], atol=1e-12)
    assert panel.pages.currentWidget() is panel.page("positions") and panel.pages.currentWidget().isVisible()
    assert set(panel.page_canvas) == {"positions"}  # the other pages are built when first shown
    k, similarity = panel.sim_curve.getData()
    np.testing.assert_allclose(similarity[k == 0], [16.0])  # d/2 at offset 0
    assert panel.learned_line.isVisible() and panel.learned_line.value() == 64
    assert "64 rows" in panel.learned_text.toPlainText()
    show(qtbot, panel, learned_max=200)
    assert not panel.learned_line.isVisible()  # a table as long as what is shown: no cut


def test_shifting_both_tokens_turns_the_arrows_but_keeps_the_score(qtbot, panel):
    first = show(qtbot, panel, view="rope", gap=5, rope_pair=1, d_model=16)
    angle = lambda v: math.atan2(v[1], v[0])  # noqa: E731
    turned = (angle(first.q_rot) - angle(first.q_pair)) - (angle(first.k_rot) - angle(first.k_pair))
    assert math.isclose(math.remainder(turned - 5 * first.theta, 2 * math.pi), 0, abs_tol=1e-12)
    assert math.isclose(first.theta, 10000.0 ** (-2 / 16))
    panel.controls["shift"].slider.setValue(panel.controls["shift"].slider.value() + 37)
    qtbot.waitUntil(lambda: not panel.busy() and panel.result.page.k_pos == 37, timeout=10_000)
    second = panel.result.page
    assert not np.allclose(second.q_rot, first.q_rot)  # the arrows moved
    assert math.isclose(second.score, first.score, abs_tol=1e-12)  # q·k did not
    np.testing.assert_allclose(panel.qk_map.drawn, first.qk_map, atol=1e-12)  # the whole map is the same
    assert "37" in panel.status.text() and "42" in panel.status.text()


def test_rope_map_is_constant_along_diagonals_for_both_layouts(qtbot, panel):
    for layout in ("half", "interleaved"):
        page = show(qtbot, panel, view="rope", layout=layout, tokens=12)
        drawn = panel.qk_map.drawn
        for offset in range(-11, 12):
            diagonal = np.diagonal(drawn, offset)
            assert np.ptp(diagonal) < 1e-12
        assert page.spread < 1e-12


def test_alibi_tiles_one_per_head_named_by_the_reference_slopes(qtbot, panel):
    show(qtbot, panel, view="rope", alibi_heads=12)
    labels = [label.toPlainText() for label in panel.alibi.labels if label.isVisible()]
    assert len(labels) == 12
    assert labels[:2] == ["m = 1/2", "m = 1/4"] and labels[8] == "m = 0.707"  # 8 heads' slopes, then every other of 16's
    assert "12 heads" in panel.alibi_plot.titleLabel.text


def test_block_counts_equal_torch_and_the_curves_equal_the_backend(qtbot, panel):
    show(qtbot, panel, view="block", depth=6)
    layer = torch.nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True)
    total = sum(p.numel() for p in layer.parameters())
    assert f"{total:,}" in panel.status.text()
    expected = tf.gradient_norms(6, 64, 4, None, norm_first=False, seq_len=16, batch=8, seed=0)
    x, y = panel.grad_curves[False, "weights"].getData()
    np.testing.assert_allclose(x, np.arange(1, 7))
    np.testing.assert_allclose(10 ** y, expected.weight_grad_norms, rtol=1e-12)
    assert panel.box_texts[1].toPlainText().startswith("Attention")  # post-norm: attention first
    with qtbot.waitSignal(panel.drawn, timeout=20_000):
        panel.controls["norm_first"].check.click()
    assert panel.values["norm_first"]
    assert panel.box_texts[1].toPlainText().startswith("LayerNorm")  # pre-norm: the norm first
    assert "final LayerNorm" in panel.box_texts[-1].toPlainText()


def test_gated_ffn_and_grouped_query_attention_in_the_diagram(qtbot, panel):
    show(qtbot, panel, view="block", activation="swiglu", heads=8, kv_heads=2, depth=2)
    counts = tf.parameter_counts(64, 8, None, "swiglu", 2)
    assert counts.d_ff == 176 and counts.ffn == 3 * 64 * 176
    attention, ffn = panel.box_texts[1].toPlainText(), panel.box_texts[4].toPlainText()
    assert "grouped-query" in attention and "KV heads: 2" in attention and "(8, 2, 16, 8)" in attention
    assert "64 → 176 → 64" in ffn and "3 matrices" in ffn and f"{counts.ffn:,} weights" in ffn


def test_warm_up_peaks_at_the_warm_up_step(qtbot, panel):
    show(qtbot, panel, view="block", warmup=1000, depth=1)
    x, y = panel.warm_curve.getData()
    peak = 64 ** -0.5 * 1000 ** -0.5
    assert math.isclose(10 ** y.max(), peak, rel_tol=1e-3)  # the sampled curve reaches the peak
    assert f"{peak:.3g}" in panel.detail.text()


def test_masks_hide_what_each_kind_may_not_see(qtbot, panel):
    show(qtbot, panel, view="kinds", tokens=10, prefix=4)
    encoder, decoder, prefix = (panel.mask_maps[k].drawn for k in ("encoder", "decoder", "prefix"))
    assert not np.isnan(encoder).any()
    assert np.array_equal(np.isnan(decoder), np.triu(np.ones((10, 10), bool), 1))
    assert not np.isnan(prefix[:, :4]).any() and np.isnan(prefix[4, 5])
    for weights in (encoder, decoder, prefix):
        np.testing.assert_allclose(np.nansum(weights, axis=1), 1.0)
    q = torch.tensor(panel.result.page.dot)  # the additive map uses the same queries and keys
    assert q.shape == (10, 10) and panel.add_map.drawn.shape == (10, 10)


def test_decoding_steps_one_row_at_a_time_and_matches_the_parallel_pass(qtbot, panel):
    page = show(qtbot, panel, view="decoding", step=3, depth=2)
    infer = panel.infer_map.drawn
    assert not np.isnan(infer[2, :3]).any() and np.isnan(infer[3:]).all()
    assert float(page.error.max()) < 1e-12
    cache = panel.cache_map.drawn
    assert cache.shape == (16, 4) and not np.isnan(cache[:3]).any() and np.isnan(cache[3:]).all()
    panel.toggle_play()
    qtbot.waitUntil(lambda: panel.values["step"] == 16, timeout=20_000)
    qtbot.waitUntil(lambda: not panel._play_timer.isActive(), timeout=5_000)
    assert panel.play_button.text() == "Play decoding"


def test_decoding_costs_and_cache_of_a_7b_model(qtbot, panel):
    panel.apply_preset("decode_7b")
    qtbot.waitUntil(lambda: not panel.busy() and panel.result is not None and panel.result.view == "decoding", timeout=20_000)
    assert "2 GiB" in panel.detail.text()  # 2 * 32 layers * 4096 * 4096 tokens * 2 bytes
    panel.apply_preset("decode_7b_gqa")
    qtbot.waitUntil(lambda: "512 MiB" in panel.detail.text(), timeout=20_000)
    lengths, flops = panel.cost_curves[True].getData()
    cost = tf.decode_cost(32, 4096, 32, 8, 4096, 2)
    assert math.isclose(10 ** flops[-1], cost.flops_with_cache, rel_tol=1e-9)


@pytest.mark.parametrize("changes, named", [
    ({"d_model": 63}, "d_model"), ({"heads": 5}, "heads"), ({"kv_heads": 3}, "kv_heads"),
    ({"base": "nan"}, "base"), ({"depth": 49}, "depth"), ({"tokens": "many"}, "tokens"),
    ({"model_heads": 30}, "model_heads"), ({"model_kv_heads": 5}, "model_kv_heads"),
    ({"prefix": 20, "tokens": 10}, "prefix"), ({"rope_pair": 40}, "rope_pair")])
def test_bad_input_is_refused_naming_the_parameter(panel, changes, named):
    before = dict(panel.values)
    messages = []
    panel.message.connect(lambda text, is_error: messages.append(text))
    assert not panel.set_values(changes)
    assert panel.values == before
    assert named in messages[-1]


def test_counts_follow_their_limits_down():
    values = PARAMS.update(PARAMS.defaults(), {"tokens": 4, "d_model": 8})
    assert values["step"] == 4 and values["prefix"] == 4 and values["rope_pair"] == 0


def test_heads_follow_d_model_and_kv_heads_follow_heads():
    values = PARAMS.update(PARAMS.defaults(), {"heads": 2})  # KV heads 4 would not divide 2
    assert (values["heads"], values["kv_heads"]) == (2, 2)
    values = PARAMS.update(PARAMS.defaults(), {"d_model": 62})  # 4 heads would not divide 62
    assert (values["heads"], values["kv_heads"]) == (2, 2)
    values = PARAMS.update(PARAMS.update(PARAMS.defaults(), {"heads": 8, "kv_heads": 4}), {"d_model": 36})
    assert (values["heads"], values["kv_heads"]) == (6, 2)  # the largest divisor of 36 up to 8; gcd(6, 4)
    with pytest.raises(ParamError, match="heads"):  # typed together, nothing follows: refused
        PARAMS.update(PARAMS.defaults(), {"heads": 8, "d_model": 36})
    values = PARAMS.update(PARAMS.defaults(), {"model_heads": 16, "model_kv_heads": 8})
    assert PARAMS.update(values, {"model_heads": 4})["model_kv_heads"] == 4


def test_a_stack_too_large_to_compute_at_every_change_is_refused_on_its_pages_only():
    wide = PARAMS.update(PARAMS.defaults(), {"d_model": 512})  # the positions page builds no stack: accepted
    with pytest.raises(ParamError, match=r"depth \(depth\): 12 layers"):
        PARAMS.update(wide, {"view": "block"})
    assert PARAMS.update(wide, {"view": "block", "depth": 8})["depth"] == 8


def test_export_and_data_from_the_command_line(tmp_path):
    import json
    import os
    import shutil
    import subprocess
    out, data = tmp_path / "decoding.png", tmp_path / "decoding.json"
    done = subprocess.run([shutil.which("workbench"), "export", "transformer", "-o", str(out), "--data", str(data),
                           "--set", "view=block", "--set", "depth=3", "--lang", "zh_CN"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000
    document = json.loads(data.read_text(encoding="utf-8"))
    grads = document["result"]["page"]["grads"]
    expected = tf.gradient_norms(3, 64, 4, None, norm_first=True, seq_len=16, batch=8, seed=0)
    np.testing.assert_allclose(grads["pre_norm"]["weight_grad_norms"], expected.weight_grad_norms, rtol=1e-12)
    assert data.stat().st_size < 200_000  # the norms, not the weights they came from
    refused = subprocess.run([shutil.which("workbench"), "export", "transformer", "-o", str(out), "--set", "heads=5"],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert refused.returncode == 2 and "heads" in refused.stderr
