"""workbench.compute.attention against torch's scaled_dot_product_attention and MultiheadAttention."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compute import attention as att
from workbench.compute.attention import (
    PAD,
    causal_mask,
    combine_masks,
    embed,
    init_weights,
    multi_head,
    pad,
    padding_mask,
    random_scores,
    saturation,
    scaled_dot_product,
    sinusoidal_encoding,
    tokenize,
)

FUZZ = settings(max_examples=40, deadline=None, database=None)


def t(x):
    return torch.from_numpy(np.array(x))  # a writable copy


def random_qkv(n_q=7, n_k=9, d_k=8, d_v=5, seed=0, lead=()):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((*lead, n_q, d_k)), rng.standard_normal((*lead, n_k, d_k)),
            rng.standard_normal((*lead, n_k, d_v)))


def masks(n_q, n_k):
    keys = ["a"] * (n_k - 3) + [PAD] * 3
    rng = np.random.default_rng(1)
    custom = rng.random((n_q, n_k)) < 0.6
    custom[2] = False  # a fully masked row
    return {"none": None, "padding": padding_mask(keys, n_q), "causal": causal_mask(n_q, n_k),
            "padding+causal": combine_masks(padding_mask(keys, n_q), causal_mask(n_q, n_k)), "custom": custom}


# ---- tokens, embeddings, encodings ----------------------------------------------------------------
def test_tokenize_splits_words_and_every_cjk_character():
    assert tokenize("The cat  sat\ton the mat.") == ["The", "cat", "sat", "on", "the", "mat."]
    assert tokenize("我爱NLP和深度学习。") == ["我", "爱", "NLP", "和", "深", "度", "学", "习", "。"]
    assert tokenize("  ") == []
    assert pad(["a", "b"], 4) == ["a", "b", PAD, PAD]
    assert pad(["a", "b"], 1) == ["a", "b"]


def test_embeddings_are_fixed_by_token_and_seed_across_processes():
    here = embed(["cat", "猫", PAD], 16, seed=3, positional=False)
    code = ("from workbench.compute.attention import embed; import sys;"
            "sys.stdout.write(embed(['cat', '猫', '[PAD]'], 16, seed=3, positional=False).tobytes().hex())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout
    assert bytes.fromhex(other) == here.tobytes()
    np.testing.assert_array_equal(embed(["cat"], 16, seed=3, positional=False)[0], here[0])  # per token, not per position
    assert not np.array_equal(embed(["cat"], 16, seed=4, positional=False), here[:1])


def test_embedding_scale_and_positional_encoding_add_up():
    tokens = ["a", "b", "c"]
    raw = embed(tokens, 8, positional=False)
    np.testing.assert_allclose(np.std(raw), 1 / math.sqrt(8), rtol=0.6)
    np.testing.assert_allclose(embed(tokens, 8, positional=False, scale=True), raw * math.sqrt(8))
    np.testing.assert_allclose(embed(tokens, 8, positional=True), raw + sinusoidal_encoding(3, 8))


@pytest.mark.parametrize("d", [1, 6, 7, 64])
def test_sinusoidal_encoding_matches_the_formula(d):
    n = 50
    pe = sinusoidal_encoding(n, d)
    ref = torch.zeros(n, d, dtype=torch.float64)  # the "annotated transformer" construction
    position = torch.arange(n, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    ref[:, 0::2] = torch.sin(position * div)
    ref[:, 1::2] = torch.cos(position * div)[:, : d // 2]
    np.testing.assert_allclose(pe, ref.numpy(), atol=1e-12)


def test_masks():
    np.testing.assert_array_equal(causal_mask(3, 4), torch.ones(3, 4, dtype=torch.bool).tril().numpy())
    m = padding_mask(["a", "b", PAD], 2)
    np.testing.assert_array_equal(m, [[True, True, False], [True, True, False]])
    np.testing.assert_array_equal(combine_masks(m, causal_mask(2, 3)), [[True, False, False], [True, True, False]])
    assert combine_masks(None, None) is None


# ---- scaled dot-product vs torch ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["none", "padding", "causal", "padding+causal", "custom"])
@pytest.mark.parametrize("scale", [None, 1.0, 0.1])
def test_scaled_dot_product_equals_torch(kind, scale):
    q, k, v = random_qkv(lead=(3,))
    mask = masks(7, 9)[kind]
    ours = scaled_dot_product(q, k, v, mask=mask, scale=scale)
    weights_t = torch_weights(q, k, mask, scale)
    out_t = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=None if mask is None else t(mask), scale=scale)
    visible = np.ones(7, dtype=bool) if mask is None else mask.any(axis=-1)
    np.testing.assert_allclose(ours.weights[..., visible, :], weights_t[..., visible, :], atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.output[..., visible, :], out_t.numpy()[..., visible, :], atol=1e-6, rtol=0)
    assert ours.fully_masked_rows == tuple(np.flatnonzero(~visible))
    for array in (ours.weights, ours.output):
        assert np.all(np.isfinite(array))
    np.testing.assert_array_equal(ours.weights[..., ~visible, :], 0.0)
    np.testing.assert_array_equal(ours.output[..., ~visible, :], 0.0)
    if mask is not None:
        assert np.all(np.isneginf(ours.scores[..., ~mask]))
        assert np.all(np.isfinite(ours.scores[..., mask]))
    if kind == "custom":  # softmax over an all -inf row is NaN; torch's fused SDPA kernel returns 0 there, as we do
        assert np.isnan(weights_t[..., 2, :]).all()
        np.testing.assert_array_equal(ours.output[..., 2, :], out_t.numpy()[..., 2, :])


def torch_weights(q, k, mask, scale):
    """The attention weights torch's math backend computes, from its reference formula."""
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = t(q) @ t(k).transpose(-2, -1) * factor
    if mask is not None:
        scores = scores.masked_fill(~t(mask), float("-inf"))
    return torch.softmax(scores, dim=-1).numpy()


@FUZZ
@given(n_q=st.integers(1, 12), n_k=st.integers(1, 12), d_k=st.integers(1, 32), seed=st.integers(0, 10_000),
       temperature=st.floats(0.05, 20.0), density=st.floats(0.0, 1.0))
def test_scaled_dot_product_fuzzed_against_torch(n_q, n_k, d_k, seed, temperature, density):
    q, k, v = random_qkv(n_q, n_k, d_k, 3, seed)
    mask = np.random.default_rng(seed).random((n_q, n_k)) < density
    ours = scaled_dot_product(q, k, v, mask=mask, temperature=temperature)
    scale = 1 / math.sqrt(d_k) / temperature  # temperature divides the logits: the same as a smaller scale
    out_t = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(mask), scale=scale).numpy()
    visible = mask.any(axis=-1)
    np.testing.assert_allclose(ours.output[visible], out_t[visible], atol=1e-6, rtol=0)
    raw = (t(q) @ t(k).T / math.sqrt(d_k)).numpy()  # the scores are reported before the temperature
    np.testing.assert_allclose(ours.scores[mask], raw[mask], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.weights.sum(axis=-1), visible.astype(float), atol=1e-12)
    assert np.all(np.isfinite(ours.output))


def test_saturated_and_masked_rows_stay_finite_and_quiet():
    q, k, v = random_qkv(d_k=512)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = scaled_dot_product(q * 100, k * 100, v, mask=np.zeros((7, 9), dtype=bool), scale=1.0)
        s = scaled_dot_product(q * 100, k * 100, v, scale=1.0)
    assert np.all(r.weights == 0) and r.fully_masked_rows == tuple(range(7))
    assert np.all(np.isfinite(s.weights)) and np.allclose(s.weights.max(axis=-1), 1.0)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf])
def test_bad_temperature_is_refused(temperature):
    q, k, v = random_qkv()
    with pytest.raises(ValueError, match="temperature"):
        scaled_dot_product(q, k, v, temperature=temperature)


# ---- multi-head vs nn.MultiheadAttention ------------------------------------------------------------
def torch_mha(w, x_q, x_kv, attn_mask=None, key_padding_mask=None):
    mha = torch.nn.MultiheadAttention(w.d_model, w.heads, bias=False, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(t(np.concatenate([w.w_q, w.w_k, w.w_v])))
        mha.out_proj.weight.copy_(t(w.w_o))
    mha.eval()
    out, weights = mha(t(x_q)[None], t(x_kv)[None], t(x_kv)[None], need_weights=True, average_attn_weights=True,
                       attn_mask=None if attn_mask is None else ~t(attn_mask),  # torch MHA: True = blocked
                       key_padding_mask=None if key_padding_mask is None else ~t(key_padding_mask)[None])
    return out[0].detach().numpy(), weights[0].detach().numpy()


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("kind", ["none", "padding", "causal", "padding+causal"])
@pytest.mark.parametrize("d_model,heads", [(16, 4), (24, 3), (8, 1)])
def test_multi_head_equals_torch_multihead_attention(cross, kind, d_model, heads):
    keys = tokenize("the cat sat on the mat") + [PAD, PAD]
    queries = tokenize("le chat est assis") if cross else keys
    x_kv = embed(keys, d_model, seed=5)
    x_q = embed(queries, d_model, seed=5) if cross else x_kv
    w = init_weights(d_model, heads, seed=2)
    real = np.array([tok != PAD for tok in keys])
    causal = causal_mask(len(queries), len(keys))
    attn_mask = causal if "causal" in kind else None
    key_padding = real if "padding" in kind else None
    ours = multi_head(x_q, x_kv, w, mask=combine_masks(attn_mask, None if key_padding is None else
                                                       padding_mask(keys, len(queries))))
    out_t, weights_t = torch_mha(w, x_q, x_kv, attn_mask, key_padding)
    np.testing.assert_allclose(ours.output, out_t, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours.mean_weights, weights_t, atol=1e-5, rtol=0)
    assert ours.weights.shape == (heads, len(queries), len(keys))
    assert ours.q.shape == (heads, len(queries), d_model // heads)


def test_tied_projections_make_self_attention_scores_symmetric():
    x = embed(tokenize("我 爱 深度学习"), 32, seed=1)
    tied = multi_head(x, x, init_weights(32, 4, seed=0, tie_qk=True))
    untied = multi_head(x, x, init_weights(32, 4, seed=0))
    np.testing.assert_allclose(tied.scores, tied.scores.transpose(0, 2, 1), atol=1e-12)
    assert not np.allclose(untied.scores, untied.scores.transpose(0, 2, 1), atol=1e-3)


def test_heads_must_divide_d_model():
    with pytest.raises(ValueError, match="heads"):
        init_weights(30, 4)


def test_weights_are_seeded_xavier_uniform():
    w = init_weights(64, 8, seed=7)
    bound = math.sqrt(6 / 128)
    for m in (w.w_q, w.w_k, w.w_v, w.w_o):
        assert m.shape == (64, 64) and np.abs(m).max() <= bound
    np.testing.assert_allclose(np.var(w.w_q), bound ** 2 / 3, rtol=0.1)  # uniform(-b, b) variance
    np.testing.assert_array_equal(init_weights(64, 8, seed=7).w_v, w.w_v)


# ---- why sqrt(d_k) ------------------------------------------------------------------------------
D_KS = (1, 4, 16, 64, 256)


def test_random_scores_are_distributed_as_explicit_dot_products():
    rng = np.random.default_rng(0)
    explicit = np.einsum("rd,rkd->rk", rng.standard_normal((20000, 16)), rng.standard_normal((20000, 3, 16)))
    drawn = random_scores((16,), 3, samples=60000)[0]
    for statistic in (np.std, lambda a: np.mean(np.abs(a)), lambda a: np.mean(a ** 4) / np.mean(a ** 2) ** 2):
        assert statistic(drawn) == pytest.approx(statistic(explicit), rel=0.03)
    # within a row the keys share q: the scores are uncorrelated but not independent (|q| is common)
    a, b = drawn[:, 0] ** 2, drawn[:, 1] ** 2
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(np.corrcoef(explicit[:, 0] ** 2, explicit[:, 1] ** 2)[0, 1], abs=0.03)


def test_random_scores_have_std_sqrt_dk():
    scores = random_scores(D_KS, 12)
    for s, d_k in zip(scores, D_KS):
        assert s.shape == (1024 // 12, 12)
        assert np.std(s) == pytest.approx(math.sqrt(d_k), rel=0.1)
    sat = saturation(scores, D_KS, scaled=True)
    np.testing.assert_allclose(sat.score_std, 1.0, rtol=0.1)  # what the scaling is for
    raw = saturation(scores, D_KS, scaled=False)
    np.testing.assert_allclose(raw.score_std, np.sqrt(D_KS), rtol=0.1)
    assert raw.max_weight[-1] > 0.9 > sat.max_weight[-1]  # unscaled rows turn one-hot
    assert raw.jacobian_norm[-1] < 0.4 * sat.jacobian_norm[-1]  # and their gradient fades
    assert np.all(np.diff(raw.jacobian_norm[1:]) < 0)  # the more so the larger d_k (from d_k = 4)


@pytest.mark.parametrize("scaled,temperature", [(True, 1.0), (False, 1.0), (True, 3.0), (False, 0.2)])
def test_saturation_statistics_equal_torch_on_the_same_scores(scaled, temperature):
    scores = random_scores(D_KS, 6, samples=120)
    sat = saturation(scores, D_KS, scaled=scaled, temperature=temperature)
    for i, (s, d_k) in enumerate(zip(scores, D_KS)):
        logits = t(s) * ((1 / math.sqrt(d_k) if scaled else 1.0) / temperature)
        p = torch.softmax(logits, dim=-1)
        entropy = torch.distributions.Categorical(probs=p).entropy().mean() / math.log(6)
        jac = torch.stack([torch.autograd.functional.jacobian(lambda z: torch.softmax(z, -1), row).norm()
                           for row in logits])
        assert sat.score_std[i] == pytest.approx(float(logits.std(unbiased=False)), rel=1e-12)
        assert sat.entropy[i] == pytest.approx(float(entropy), rel=1e-9, abs=1e-12)
        assert sat.max_weight[i] == pytest.approx(float(p.max(dim=-1).values.mean()), rel=1e-12)
        assert sat.jacobian_norm[i] == pytest.approx(float(jac.mean()), rel=1e-9, abs=1e-12)


def test_module_exports_exist():
    for name in att.__all__:
        assert hasattr(att, name), name
