"""workbench.compute.training against torch.nn + torch.optim (float64), torch.nn.init's
distributions, the Playground's data sets, and a generated PyTorch script run in a subprocess.

The oracle runs use learning rates at which training is not chaotic: torch's kernels round some
operations differently (fused multiply-adds, the order of autograd's gradient accumulation), and
200 steps of a stable run keep those last-bit differences below ~1e-12, so 1e-9 is strict.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.compute import training as tr
from workbench.compute.activations import calculate_gain
from workbench.compute.training import (
    ACTIVATION_NAMES,
    DATASET_TASKS,
    DATASETS,
    FEATURES,
    INITS,
    EarlyStopping,
    NetworkSpec,
    TrainConfig,
    evaluate,
    features,
    fit,
    forward,
    grid,
    init_state,
    load_dataset,
    make_dataset,
    predict,
    pytorch_script,
    train,
    with_config,
)

RTOL, ATOL = 1e-9, 1e-12
FUZZ = settings(max_examples=30, deadline=None, database=None)

SPIRAL = make_dataset("spiral", n=200, noise=0.1, seed=3)
PLANE = make_dataset("plane", n=200, noise=0.1, seed=3)


# ---- the torch oracle ---------------------------------------------------------------------------

TORCH_MODULES = {
    "sigmoid": torch.nn.Sigmoid,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
    "elu": torch.nn.ELU,
    "selu": torch.nn.SELU,
    "gelu": torch.nn.GELU,
    "gelu_tanh": lambda: torch.nn.GELU(approximate="tanh"),
    "swish": torch.nn.SiLU,
    "mish": torch.nn.Mish,
    "softplus": torch.nn.Softplus,
    "hardsigmoid": torch.nn.Hardsigmoid,
    "hardswish": torch.nn.Hardswish,
    "relu6": torch.nn.ReLU6,
    "linear": torch.nn.Identity,
}


def torch_model(state):
    """torch.nn.Sequential with the state's weights (float64)."""
    spec = state.spec
    sizes = spec.sizes
    layers = []
    for i, width in enumerate(spec.hidden):
        layers.append(torch.nn.Linear(sizes[i], width))
        if spec.norm == "batch":
            layers.append(torch.nn.BatchNorm1d(width))
        elif spec.norm == "layer":
            layers.append(torch.nn.LayerNorm(width))
        layers.append(TORCH_MODULES[spec.layer_activations[i]]())
    layers.append(torch.nn.Linear(sizes[-2], 1))
    model = torch.nn.Sequential(*layers).double()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    norms = [m for m in model if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm))]
    with torch.no_grad():
        for layer, (w, b) in zip(linears, state.weights):
            layer.weight.copy_(torch.from_numpy(w.T.copy()))
            layer.bias.copy_(torch.from_numpy(b.copy()))
        for layer, ns in zip(norms, state.norms):
            layer.weight.copy_(torch.from_numpy(ns.gamma.copy()))
            layer.bias.copy_(torch.from_numpy(ns.beta.copy()))
            if ns.running_mean is not None:
                layer.running_mean.copy_(torch.from_numpy(ns.running_mean.copy()))
                layer.running_var.copy_(torch.from_numpy(ns.running_var.copy()))
    return model, linears, norms


def torch_optimizer(model, linears, config):
    weights = [m.weight for m in linears]
    others = [p for p in model.parameters() if all(p is not w for w in weights)]
    groups = [{"params": weights, "weight_decay": config.weight_decay},
              {"params": others, "weight_decay": 0.0}]
    c = config
    if c.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0)
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=c.lr, alpha=c.alpha, eps=c.eps, momentum=c.momentum)
    cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=c.lr, betas=c.betas, eps=c.eps)


def torch_data_loss(spec, z, y):
    if spec.task == "regression":
        return torch.nn.functional.mse_loss(z, y)
    if spec.loss == "bce":
        return torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    return torch.nn.functional.mse_loss(torch.sigmoid(z), y)


def torch_run(state, data, history):
    """Train a torch copy of ``state`` on the minibatches of ``history``: (model, linears, norms,
    losses, grad norms per step)."""
    spec, config = state.spec, state.config
    model, linears, norms = torch_model(state)
    optimizer = torch_optimizer(model, linears, config)
    x = torch.from_numpy(features(data.x_train, spec.features))
    y = torch.from_numpy(data.y_train.copy())
    weights = [m.weight for m in linears]
    losses, grad_norms = [], []
    model.train()
    for idx in history.batches:
        idx = torch.from_numpy(np.array(idx))
        optimizer.zero_grad()
        data_loss = torch_data_loss(spec, model(x[idx])[:, 0], y[idx])
        loss = data_loss
        if config.l1:
            loss = loss + config.l1 * sum(w.abs().sum() for w in weights)
        if config.l2:
            loss = loss + (config.l2 / 2) * sum(w.pow(2).sum() for w in weights)
        loss.backward()
        losses.append(data_loss.item())
        grad_norms.append([w.grad.norm().item() for w in weights])
        optimizer.step()
    return model, linears, norms, np.array(losses), np.array(grad_norms)


def assert_matches_torch(state, new, data, history, rtol=RTOL):
    model, linears, norms, losses, grad_norms = torch_run(state, data, history)
    np.testing.assert_allclose(history.loss, losses, rtol=rtol, atol=ATOL)
    np.testing.assert_allclose(history.grad_norms, grad_norms, rtol=max(rtol, 1e-8), atol=1e-10)
    for layer, (w, b) in zip(linears, new.weights):
        np.testing.assert_allclose(w, layer.weight.detach().numpy().T, rtol=rtol, atol=ATOL)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=rtol, atol=1e-10)
    for layer, ns in zip(norms, new.norms):
        np.testing.assert_allclose(ns.gamma, layer.weight.detach().numpy(), rtol=rtol, atol=ATOL)
        np.testing.assert_allclose(ns.beta, layer.bias.detach().numpy(), rtol=rtol, atol=ATOL)
        if ns.running_mean is not None:
            np.testing.assert_allclose(ns.running_mean, layer.running_mean.numpy(), rtol=rtol, atol=1e-10)
            np.testing.assert_allclose(ns.running_var, layer.running_var.numpy(), rtol=rtol, atol=ATOL)
    # evaluation mode (running statistics) and training mode (batch statistics) afterwards
    x = torch.from_numpy(features(data.x_test, new.spec.features))
    model.eval()
    with torch.no_grad():
        np.testing.assert_allclose(forward(new, data.x_test).output, model(x)[:, 0].numpy(), rtol=rtol, atol=1e-10)
        ev = evaluate(new, data)
        expected = torch_data_loss(new.spec, model(x)[:, 0], torch.from_numpy(data.y_test.copy())).item()
        assert ev.test_loss == pytest.approx(expected, rel=rtol)
        if not any(new.spec.layer_dropouts):
            model.train()
            np.testing.assert_allclose(forward(new, data.x_test, train=True).output, model(x)[:, 0].numpy(),
                                       rtol=rtol, atol=1e-10)


ORACLE_CASES = {
    "sgd": (NetworkSpec(), TrainConfig(lr=0.05)),
    "sgd-momentum-l2": (NetworkSpec(activation="relu", init="kaiming_uniform"),
                        TrainConfig(lr=0.02, momentum=0.9, l2=0.01)),
    "sgd-nesterov-wd-l1": (NetworkSpec(hidden=(6, 5, 4), activation=("tanh", "elu", "sigmoid")),
                           TrainConfig(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.01, l1=0.002)),
    "adam": (NetworkSpec(hidden=(8,), activation="gelu", features=FEATURES),
             TrainConfig(optimizer="adam", lr=0.005, batch_size=16)),
    "adam-l1-l2-wd": (NetworkSpec(hidden=(8, 8), activation="swish", init="xavier_normal"),
                      TrainConfig(optimizer="adam", lr=0.003, l1=1e-3, l2=1e-2, weight_decay=1e-2,
                                  betas=(0.8, 0.99), eps=1e-7)),
    "adamw": (NetworkSpec(hidden=(8, 8), activation="leaky_relu", init="kaiming_normal"),
              TrainConfig(optimizer="adamw", lr=0.003, weight_decay=0.1)),
    "rmsprop": (NetworkSpec(hidden=(8, 8), activation="tanh", features=("x1", "x2", "x1*x2")),
                TrainConfig(optimizer="rmsprop", lr=0.002, weight_decay=0.01, l2=0.01)),
    "rmsprop-momentum": (NetworkSpec(hidden=(8,), activation="softplus"),
                         TrainConfig(optimizer="rmsprop", lr=0.001, momentum=0.5, alpha=0.9)),
    "batchnorm-sgd": (NetworkSpec(hidden=(8, 8), norm="batch", activation="relu"),
                      TrainConfig(lr=0.02, momentum=0.9, batch_size=8, l2=1e-3)),
    "batchnorm-rmsprop": (NetworkSpec(hidden=(6, 6), norm="batch", activation="tanh"),
                          TrainConfig(optimizer="rmsprop", lr=1e-3, batch_size=12)),
    "layernorm-adam": (NetworkSpec(hidden=(8, 6), norm="layer", activation="mish"),
                       TrainConfig(optimizer="adam", lr=0.003, l1=1e-3, weight_decay=1e-3)),
    "layernorm-sgd": (NetworkSpec(hidden=(5, 5), norm="layer", activation="selu", init="normal", init_std=0.5),
                      TrainConfig(lr=0.01, momentum=0.5, batch_size=7)),
    "mse-classification": (NetworkSpec(hidden=(8,), loss="mse"), TrainConfig(lr=0.1)),
    "logistic": (NetworkSpec(hidden=(), features=("x1", "x2", "x1^2", "x2^2")), TrainConfig(lr=0.01)),
}


@pytest.mark.parametrize("case", ORACLE_CASES)
def test_training_equals_torch(case):
    spec, config = ORACLE_CASES[case]
    state = init_state(spec, config, seed=1)
    new, history = train(state, SPIRAL, 200)
    assert len(history.batches) == 200 and new.step == 200 and history.diverged_step is None
    assert_matches_torch(state, new, SPIRAL, history)


@pytest.mark.parametrize("config", [TrainConfig(lr=0.01, momentum=0.9, l2=1e-3),
                                    TrainConfig(optimizer="adam", lr=0.003, weight_decay=0.01)])
def test_regression_equals_torch(config):
    spec = NetworkSpec(hidden=(8, 8), activation="tanh", task="regression")
    assert spec.loss == "mse"
    state = init_state(spec, config, seed=2)
    new, history = train(state, PLANE, 200)
    assert_matches_torch(state, new, PLANE, history)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_equals_torch(name):
    """Forward pass (every hidden layer and the output) and 30 training steps, so the derivative too."""
    spec = NetworkSpec(hidden=(6, 5), activation=name, features=("x1", "x2", "sin x1"))
    state = init_state(spec, TrainConfig(lr=0.02), seed=4)
    model, _, _ = torch_model(state)
    x = SPIRAL.x_test
    result = forward(state, x)
    h = torch.from_numpy(features(x, spec.features))
    assert np.array_equal(result.inputs, h.numpy())
    hidden = []
    with torch.no_grad():
        for module in model:
            h = module(h)
            if not isinstance(module, torch.nn.Linear):
                hidden.append(h.numpy())
    for ours, theirs in zip(result.hidden, hidden):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(result.output, h[:, 0].numpy(), rtol=1e-12, atol=1e-14)
    new, history = train(state, SPIRAL, 30)
    # torch's float64 hardsigmoid backward uses the float32 constant 1/6 (3e-8 off); ours is exact,
    # as in the activations module
    assert_matches_torch(state, new, SPIRAL, history, rtol=1e-6 if name == "hardsigmoid" else RTOL)


def test_batch_norm_with_a_single_point_last_batch_is_skipped():
    data = make_dataset("circle", n=43, seed=1)  # 21 training points: batches 10, 10, (1 skipped)
    state = init_state(NetworkSpec(norm="batch"), TrainConfig(lr=0.05, batch_size=10))
    new, history = train(state, data, 5)
    assert [len(b) for b in history.batches] == [10, 10, 10, 10, 10]
    assert history.epoch_ends == (1, 3) and new.epoch == 2 and new.position == 10
    assert_matches_torch(state, new, data, history)
    with pytest.raises(ValueError, match="batch_size"):
        init_state(NetworkSpec(norm="batch"), TrainConfig(batch_size=1))


# ---- initialisation -----------------------------------------------------------------------------

def torch_gain(activation):
    if activation in ("sigmoid", "tanh", "relu", "selu"):
        return calculate_gain(activation)
    if activation == "leaky_relu":
        return calculate_gain("leaky_relu", 0.01)
    return 1.0


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "leaky_relu", "selu", "gelu", "linear"])
def test_initial_weights_have_torch_init_distributions(init, activation):
    spec = NetworkSpec(hidden=(40, 24), activation=activation, init=init, init_std=0.3)
    seeds = 60
    draws = [init_state(spec, TrainConfig(), seed=s).weights for s in range(seeds)]
    for layer, (fan_in, fan_out) in enumerate(zip(spec.sizes[:-1], spec.sizes[1:])):
        w = np.stack([d[layer][0] for d in draws])
        assert w.shape == (seeds, fan_in, fan_out)
        assert all(np.array_equal(d[layer][1], np.zeros(fan_out)) for d in draws)
        gain = torch_gain(activation) if layer < 2 else 1.0
        t = torch.empty(fan_out, fan_in, dtype=torch.float64)
        if init == "zeros":
            assert not w.any()
            continue
        if init == "xavier_uniform":
            bound = gain * math.sqrt(6 / (fan_in + fan_out))
            torch.nn.init.xavier_uniform_(t, gain=gain)
        elif init == "kaiming_uniform":
            bound = gain * math.sqrt(3 / fan_in)
            std = gain / math.sqrt(fan_in)
            nl = activation if activation in ("tanh", "relu", "selu", "leaky_relu") and layer < 2 else "linear"
            torch.nn.init.kaiming_uniform_(t, a=0.01 if nl == "leaky_relu" else 0, nonlinearity=nl)
        elif init == "xavier_normal":
            std = gain * math.sqrt(2 / (fan_in + fan_out))
            torch.nn.init.xavier_normal_(t, gain=gain)
        elif init == "kaiming_normal":
            std = gain / math.sqrt(fan_in)
            nl = activation if activation in ("tanh", "relu", "selu", "leaky_relu") and layer < 2 else "linear"
            torch.nn.init.kaiming_normal_(t, a=0.01 if nl == "leaky_relu" else 0, nonlinearity=nl)
        else:
            std = 0.3
            torch.nn.init.normal_(t, std=0.3)
        if init.endswith("uniform"):
            # bounds: inside, and reached to within a small fraction; torch's own draw likewise
            assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
            assert t.abs().max().item() <= bound
            std = bound / math.sqrt(3)
        # five standard errors of the sample std and mean
        assert w.std() == pytest.approx(std, rel=5 / math.sqrt(2 * w.size))
        assert abs(w.mean()) < 5 * std / math.sqrt(w.size)
        assert t.std().item() == pytest.approx(std, rel=5 / math.sqrt(2 * t.numel()))


def test_initial_weights_depend_only_on_seed_sizes_init_and_activations():
    base = init_state(NetworkSpec(hidden=(8, 8)), TrainConfig(), seed=5)
    for spec, config in [(NetworkSpec(hidden=(8, 8), dropout=0.3, norm="batch"), TrainConfig(lr=1.0, seed=9)),
                         (NetworkSpec(hidden=(8, 8), norm="layer", task="regression"),
                          TrainConfig(optimizer="adam", batch_size=3))]:
        other = init_state(spec, config, seed=5)
        for (w0, b0), (w1, b1) in zip(base.weights, other.weights):
            assert np.array_equal(w0, w1) and np.array_equal(b0, b1)
    assert not np.array_equal(init_state(NetworkSpec(), TrainConfig(), seed=6).weights[0][0], base.weights[0][0])
    # a unit added to the first layer keeps the other units' incoming weights
    wider = init_state(NetworkSpec(hidden=(9, 8), init="normal"), TrainConfig(), seed=5)
    narrow = init_state(NetworkSpec(hidden=(8, 8), init="normal"), TrainConfig(), seed=5)
    assert np.array_equal(wider.weights[0][0][:, :8], narrow.weights[0][0])
    ns = init_state(NetworkSpec(norm="batch"), TrainConfig()).norms
    assert all(np.all(n.gamma == 1) and np.all(n.beta == 0) and np.all(n.running_mean == 0)
               and np.all(n.running_var == 1) for n in ns)
    assert init_state(NetworkSpec(norm="layer"), TrainConfig()).norms[0].running_mean is None


# ---- dropout, linear networks, forward ------------------------------------------------------------

def test_dropout_is_identity_in_eval_and_averages_to_it_in_training():
    spec = NetworkSpec(hidden=(16, 12), activation="relu", dropout=(0.2, 0.5))
    plain = NetworkSpec(hidden=(16, 12), activation="relu")
    state = init_state(spec, TrainConfig(), seed=2)
    reference = init_state(plain, TrainConfig(), seed=2)
    x = SPIRAL.x_test[:5]
    eval_out = forward(state, x).output
    assert np.array_equal(eval_out, forward(reference, x).output)
    assert np.array_equal(predict(state, x), predict(reference, x))
    # the output is linear in the last layer's dropout: its mean over masks is the eval output
    one = NetworkSpec(hidden=(16,), activation="tanh", dropout=0.5)
    s1 = init_state(one, TrainConfig(), seed=3)
    many = np.repeat(x, 20000, axis=0)
    out = forward(s1, many, train=True, seed=1).output.reshape(5, -1)
    spread = out.std(axis=1) / math.sqrt(out.shape[1])
    assert np.all(np.abs(out.mean(axis=1) - forward(s1, x).output) < 5 * spread + 1e-12)
    h = forward(s1, many, train=True, seed=1).hidden[0]
    kept = h != 0
    assert kept.mean() == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(h[kept], 2 * forward(s1, many).hidden[0][kept], rtol=1e-15)
    # the same seed, the same masks
    assert np.array_equal(out.ravel(), forward(s1, many, train=True, seed=1).output)


@pytest.mark.parametrize("depth", [1, 3, 8])
def test_linear_network_has_a_straight_boundary(depth):
    spec = NetworkSpec(hidden=(7,) * depth, activation="linear", init="normal", init_std=0.6)
    state = init_state(spec, TrainConfig(lr=1e-4), seed=depth)
    state, history = train(state, SPIRAL, 50)
    assert history.diverged_step is None
    points = grid(32)
    z = forward(state, points).output
    a = np.column_stack([points, np.ones(len(points))])
    coef, *_ = np.linalg.lstsq(a, z, rcond=None)
    np.testing.assert_allclose(a @ coef, z, rtol=1e-9, atol=1e-9 * np.abs(z).max())
    # and the one affine map is the product of the layers
    w, b = state.weights[0]
    for wi, bi in state.weights[1:]:
        w, b = w @ wi, b @ wi + bi
    np.testing.assert_allclose(coef, [w[0, 0], w[1, 0], b[0]], rtol=1e-8, atol=1e-10)


def test_forward_shapes_and_predict():
    state = init_state(NetworkSpec(hidden=(8, 3), features=("x1", "x2^2")), TrainConfig())
    points = grid(64)
    result = forward(state, points)
    assert result.output.shape == (4096,) and [h.shape for h in result.hidden] == [(4096, 8), (4096, 3)]
    assert result.inputs.shape == (4096, 2) and not result.output.flags.writeable
    p = predict(state, points)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-result.output)), rtol=1e-14)
    reg = init_state(NetworkSpec(task="regression"), TrainConfig())
    assert np.array_equal(predict(reg, points), forward(reg, points).output)
    for bad in [np.zeros((3, 3)), [[np.nan, 0.0]], "text"]:
        with pytest.raises(ValueError, match="x"):
            forward(state, bad)


# ---- training mechanics -------------------------------------------------------------------------

@pytest.mark.parametrize("spec, config", [
    (NetworkSpec(), TrainConfig()),
    (NetworkSpec(hidden=(8, 6), dropout=(0.3, 0.1), norm="batch"), TrainConfig(optimizer="adam", lr=0.01, batch_size=7)),
    (NetworkSpec(hidden=(5,), norm="layer", dropout=0.2), TrainConfig(optimizer="rmsprop", momentum=0.5)),
    (NetworkSpec(), TrainConfig(momentum=0.9, nesterov=True, l1=1e-3)),
])
def test_training_in_pieces_equals_training_at_once(spec, config):
    data = make_dataset("xor", n=130, noise=0.2, seed=1)  # 65 training points
    state = init_state(spec, config)
    whole, h_whole = train(state, data, 200)
    for cuts in [(100, 100), (1, 3, 196), (13, 0, 52, 135)]:
        s, losses, batches, ends = state, [], [], 0
        for k in cuts:
            s, h = train(s, data, k)
            losses.extend(h.loss)
            batches.extend(h.batches)
            ends += h.epochs
        assert s == whole  # every field: weights, buffers, statistics, permutation, generator state
        assert np.array_equal(s._flat, whole._flat)
        assert (s.step, s.epoch, s.position, s.optimizer_step) == (whole.step, whole.epoch, whole.position,
                                                                    whole.optimizer_step)
        assert np.array_equal(losses, h_whole.loss) and ends == h_whole.epochs
        assert all(np.array_equal(a, b) for a, b in zip(batches, h_whole.batches))


def test_minibatches_are_slices_of_a_permutation_per_epoch():
    data = make_dataset("gauss", n=50, seed=2)  # 25 training points
    state = init_state(NetworkSpec(), TrainConfig(batch_size=10, seed=4))
    new, history = train(state, data, 7)
    sizes = [len(b) for b in history.batches]
    assert sizes == [10, 10, 5, 10, 10, 5, 10]
    for e in range(2):
        epoch = np.concatenate(history.batches[3 * e: 3 * e + 3])
        assert np.array_equal(epoch, np.random.default_rng([4, e]).permutation(25))
    assert history.epoch_ends == (2, 5) and history.epochs == 2
    assert new.epoch == 2 and new.position == 10 and new.permutation is not None
    assert history.grad_norms.shape == (7, 3) and np.all(history.grad_norms > 0)
    assert history.first_step == 0 and train(new, data, 1)[1].first_step == 7


def test_new_data_of_another_size_starts_the_epoch_over():
    state, _ = train(init_state(NetworkSpec(), TrainConfig()), SPIRAL, 3)
    other = make_dataset("spiral", n=60, seed=1)
    new, history = train(state, other, 4)
    assert np.array_equal(np.concatenate(history.batches[:3]),
                          np.random.default_rng([0, 0]).permutation(30))
    assert new.epoch == 1 and new.position == 10


def test_with_config_changes_training_midway():
    data = SPIRAL
    state, _ = train(init_state(NetworkSpec(), TrainConfig(optimizer="adam", lr=0.01)), data, 33)
    faster = with_config(state, TrainConfig(optimizer="adam", lr=0.02, batch_size=4, l2=1e-3))
    assert faster.optimizer_step == 33 and np.array_equal(faster._flat, state._flat)
    _, h = train(faster, data, 3)
    assert [len(b) for b in h.batches] == [4, 4, 4]  # a new batch size acts at once
    assert np.array_equal(h.batches[0], state.permutation[state.position: state.position + 4])
    switched = with_config(state, TrainConfig(optimizer="sgd", momentum=0.9))
    assert switched.optimizer_step == 0 and "momentum_buffer" not in switched.optimizer_buffers
    assert all(np.array_equal(a, b) for a, b in zip(switched.parameters(), state.parameters()))
    after, _ = train(switched, data, 1)
    assert "momentum_buffer" in after.optimizer_buffers
    # a change of learning rate continues exactly as torch does when its param_group's lr changes
    spec, config = NetworkSpec(hidden=(6,)), TrainConfig(optimizer="adam", lr=0.01)
    s0 = init_state(spec, config)
    s1, h1 = train(s0, data, 40)
    s2, h2 = train(with_config(s1, TrainConfig(optimizer="adam", lr=0.002)), data, 40)
    model, linears, _ = torch_model(s0)
    opt = torch_optimizer(model, linears, config)
    x = torch.from_numpy(features(data.x_train))
    y = torch.from_numpy(data.y_train.copy())
    for k, idx in enumerate(h1.batches + h2.batches):
        if k == 40:
            for group in opt.param_groups:
                group["lr"] = 0.002
        opt.zero_grad()
        rows = torch.from_numpy(np.array(idx))
        torch.nn.functional.binary_cross_entropy_with_logits(model(x[rows])[:, 0], y[rows]).backward()
        opt.step()
    for layer, (w, b) in zip(linears, s2.weights):
        np.testing.assert_allclose(w, layer.weight.detach().numpy().T, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("spec, data", [
    (NetworkSpec(task="regression"), PLANE),
    (NetworkSpec(hidden=(8, 8, 8), activation="relu", task="regression"), PLANE),
    (NetworkSpec(norm="batch", task="regression"), PLANE),
    (NetworkSpec(norm="layer", activation="elu", task="regression"), PLANE),
    (NetworkSpec(hidden=(8, 8, 8), activation="linear"), SPIRAL),
])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_divergence_is_reported_with_the_last_finite_state(spec, data, momentum):
    state = init_state(spec, TrainConfig(lr=1e3, momentum=momentum))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            new, history = train(state, data, 5000)
            again, h2 = train(new, data, 10)
            forward(new, grid(8))
            evaluate(new, data)
    assert history.diverged_step is not None and new.diverged_step == history.diverged_step
    assert new.step == history.diverged_step == history.first_step + len(history.loss)
    assert np.all(np.isfinite(new._flat)) and np.all(np.isfinite(history.loss))
    assert again is new and len(h2.loss) == 0 and h2.diverged_step == new.diverged_step
    # the last finite state is the one reached by training exactly that many steps
    replay, _ = train(state, data, new.step)
    assert np.array_equal(replay._flat, new._flat) and replay.diverged_step is None


def test_evaluate_matches_a_direct_computation():
    state, _ = train(init_state(NetworkSpec(), TrainConfig(lr=0.1)), SPIRAL, 100)
    ev = evaluate(state, SPIRAL)
    z = forward(state, SPIRAL.x_test).output
    y = SPIRAL.y_test
    expected = np.mean(np.logaddexp(0, z) - y * z)
    assert ev.test_loss == pytest.approx(expected, rel=1e-12)
    assert ev.test_accuracy == np.mean((z > 0) == (y == 1))
    reg = evaluate(init_state(NetworkSpec(task="regression"), TrainConfig()), PLANE)
    assert reg.train_accuracy is None and reg.test_accuracy is None and reg.train_loss > 0
    with pytest.raises(ValueError, match="data"):
        evaluate(state, PLANE)


def test_early_stopping_keeps_the_best_epoch():
    data = make_dataset("xor", n=60, noise=0.5, seed=1)
    state = init_state(NetworkSpec(hidden=(32, 32), activation="relu"), TrainConfig(optimizer="adam", lr=0.02))
    result = fit(state, data, 300, early_stopping=EarlyStopping(patience=5))
    stop = result.early_stopping
    assert stop.stopped and len(result.test_loss) < 300
    best = int(np.argmin(result.test_loss))
    assert stop.best_epoch == result.epochs[best] and stop.best_loss == result.test_loss[best]
    assert result.epochs[-1] - stop.best_epoch == 5
    assert evaluate(stop.best_state, data).test_loss == stop.best_loss
    # the record: a worse loss waits, a better one resets, the same object once stopped
    es = EarlyStopping(patience=2)
    s = result.state
    es = es.update(s, 1.0)
    assert es.best_loss == 1.0 and es.best_epoch == s.epoch and es.best_state is s and not es.stopped
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_train_epoch_and_dropout_masks():
    state = init_state(NetworkSpec(hidden=(8, 5, 3), dropout=(0.5, 0.0, 0.2)), TrainConfig(batch_size=7))
    part, _ = train(state, SPIRAL, 4)
    done, history = tr.train_epoch(part, SPIRAL)  # 100 points: 15 steps an epoch, 11 left
    assert len(history.loss) == 11 and history.epochs == 1 and done.position == 0 and done.epoch == 1
    assert np.array_equal(done._flat, train(state, SPIRAL, 15)[0]._flat)
    masks = tr.dropout_masks(state.spec, 40, seed=3)
    assert [m.shape for m in masks] == [(40, 8), (40, 5), (40, 3)] and masks[1].all()
    hidden = forward(state, SPIRAL.x_test[:40], train=True, seed=3).hidden
    plain = forward(state, SPIRAL.x_test[:40]).hidden[0]
    np.testing.assert_array_equal(hidden[0], np.where(masks[0], plain * 2.0, 0.0))
    assert not hidden[2][~masks[2]].any() and hidden[2][masks[2]].all()


def test_fit_reports_per_epoch_losses():
    state = init_state(NetworkSpec(), TrainConfig())
    result = fit(state, SPIRAL, 3)
    assert list(result.epochs) == [1, 2, 3] and result.state.epoch == 3 and result.state.position == 0
    again = train(state, SPIRAL, 30)[0]  # 100 training points, batch 10: 10 steps an epoch
    assert np.array_equal(again._flat, result.state._flat)
    assert result.test_loss[-1] == evaluate(again, SPIRAL).test_loss


# ---- the generated PyTorch script ---------------------------------------------------------------

SCRIPT_CASES = [
    (NetworkSpec(hidden=(8, 8), activation="tanh", norm="batch", dropout=0.1),
     TrainConfig(optimizer="adamw", lr=0.01, weight_decay=0.01, l2=1e-3, batch_size=16),
     {"name": "spiral", "n": 300, "noise": 0.1, "seed": 0}),
    (NetworkSpec(hidden=(6, 4), activation=("relu", "gelu"), norm="layer", task="regression",
                 features=("x1", "x2", "sin x1", "x1*x2")),
     TrainConfig(optimizer="sgd", lr=0.02, momentum=0.9, nesterov=True, l1=1e-3, seed=3),
     {"name": "multigauss", "n": 200, "noise": 0.05, "seed": 2}),
    (NetworkSpec(hidden=(5,), activation="sigmoid", loss="mse"),
     TrainConfig(optimizer="rmsprop", lr=0.003, momentum=0.2),
     {"name": "xor", "n": 100, "seed": 1}),
    (NetworkSpec(hidden=(), features=("x1", "x2", "x1^2", "x2^2")),
     TrainConfig(optimizer="adam", lr=0.05, batch_size=7, l1=1e-3),
     {"name": "circle", "n": 61, "noise": 0.1, "train_fraction": 0.6, "seed": 5}),
]


def run_script(text: str, folder) -> list[tuple[str, str, str]]:
    """Run a generated script on its own (no workbench on the path); its (epoch, train, test) rows."""
    path = folder / "run.py"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True,
                         cwd=folder, env=env, timeout=120)
    return re.findall(r"epoch (\d+) train_loss (\S+) test_loss (\S+)", out.stdout)


@pytest.mark.parametrize("case", range(len(SCRIPT_CASES)))
def test_pytorch_script_reproduces_the_losses(case, tmp_path):
    spec, config, args = SCRIPT_CASES[case]
    epochs = 4
    text = pytorch_script(spec, config, args, epochs)
    rows = run_script(text, tmp_path)
    assert len(rows) == epochs
    name = args["name"]
    data = make_dataset(name, **{k: v for k, v in args.items() if k != "name"})
    result = fit(init_state(spec, config), data, epochs)
    np.testing.assert_allclose([float(r[1]) for r in rows], result.train_loss, rtol=1e-9)
    np.testing.assert_allclose([float(r[2]) for r in rows], result.test_loss, rtol=1e-9)
    assert "workbench" not in text.split('"""', 2)[2].replace("the workbench", "").replace("workbench's", "")


# ---- data sets and features ---------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_datasets_are_deterministic_and_shaped(name):
    data = make_dataset(name, n=201, noise=0.2, train_fraction=0.7, seed=11)
    assert data.task == DATASET_TASKS[name] and data.name == name
    assert data.x_train.shape == (140, 2) and data.x_test.shape == (61, 2)
    assert data.y_train.shape == (140,) and data.y_test.shape == (61,)
    for a in (data.x_train, data.y_train, data.x_test, data.y_test):
        assert a.dtype == np.float64 and not a.flags.writeable and np.all(np.isfinite(a))
    x = np.concatenate([data.x_train, data.x_test])
    assert np.abs(x).max() < 12 and np.abs(x).max() > 2
    y = np.concatenate([data.y_train, data.y_test])
    if data.task == "classification":
        assert set(np.unique(y)) == {0.0, 1.0}
    else:
        assert np.abs(y).max() <= 2.0 and len(np.unique(y)) > 100
    again = make_dataset(name, n=201, noise=0.2, train_fraction=0.7, seed=11)
    assert again == data and np.array_equal(again.x_train, data.x_train)
    other = make_dataset(name, n=201, noise=0.2, train_fraction=0.7, seed=12)
    assert other != data and not np.array_equal(other.x_train, data.x_train)


def test_dataset_shapes_follow_the_playground():
    clean = make_dataset("circle", n=400)
    x = np.concatenate([clean.x_train, clean.x_test])
    y = np.concatenate([clean.y_train, clean.y_test])
    r = np.hypot(x[:, 0], x[:, 1])
    assert np.all(r[y == 1] <= 2.5) and np.all(r[y == 0] >= 3.5) and (y == 1).sum() == 200
    xor = make_dataset("xor", n=400)
    x = np.concatenate([xor.x_train, xor.x_test])
    y = np.concatenate([xor.y_train, xor.y_test])
    assert np.array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(float)) and np.abs(x).min() >= 0.3
    for name, f in [("sine", lambda u: 3 * np.sin(u)), ("cubic", lambda u: u ** 3 / 36), ("abs", lambda u: abs(u) - 3)]:
        d = make_dataset(name, n=300)
        assert np.array_equal(d.y_train, (d.x_train[:, 1] > f(d.x_train[:, 0])).astype(float))
    plane = make_dataset("plane", n=100)
    np.testing.assert_allclose(plane.y_train, plane.x_train.sum(axis=1) / 10, rtol=1e-15)
    noisy = make_dataset("xor", n=400, noise=0.5)
    x = np.concatenate([noisy.x_train, noisy.x_test])
    y = np.concatenate([noisy.y_train, noisy.y_test])
    assert 0.05 < np.mean(y != (x[:, 0] * x[:, 1] >= 0)) < 0.4
    assert len(make_dataset("spiral", n=500).y_train) == 250


@pytest.mark.parametrize("kwargs, field", [
    ({"name": "moons"}, "name"), ({"name": "xor", "n": 3}, "n"), ({"name": "xor", "n": 10 ** 6}, "n"),
    ({"name": "xor", "noise": -0.1}, "noise"), ({"name": "xor", "noise": math.nan}, "noise"),
    ({"name": "xor", "train_fraction": 1.0}, "train_fraction"), ({"name": "xor", "seed": -1}, "seed"),
    ({"name": "xor", "n": 10.0}, "n"),
])
def test_make_dataset_refuses_bad_arguments(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        make_dataset(**kwargs)


def test_features():
    x = np.array([[1.0, 2.0], [-0.5, 3.0]])
    f = features(x, FEATURES)
    expected = np.column_stack([x[:, 0], x[:, 1], x[:, 0] ** 2, x[:, 1] ** 2, x[:, 0] * x[:, 1],
                                np.sin(x[:, 0]), np.sin(x[:, 1])])
    np.testing.assert_array_equal(f, expected)
    assert np.array_equal(features(x, ["x2^2", "x1"]), expected[:, [3, 0]])
    for bad in [("x3",), (), ("x1", "x1"), "x1"]:
        with pytest.raises(ValueError, match="names"):
            features(x, bad)


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_dataset(tmp_path):
    rows = "".join(f"{i * 0.5},{-i},{i % 2}\n" for i in range(10))
    data = load_dataset(write(tmp_path, "x1,x2,label\n" + rows), train_fraction=0.6, seed=3)
    assert data.task == "classification" and data.x_train.shape == (6, 2) and data.name == "data.csv"
    both = np.concatenate([data.x_train, data.x_test])
    assert sorted(both[:, 0]) == [i * 0.5 for i in range(10)]
    same = load_dataset(write(tmp_path, rows, "plain.csv"), train_fraction=0.6, seed=3)
    assert np.array_equal(same.x_train, data.x_train) and np.array_equal(same.y_test, data.y_test)
    reg = load_dataset(write(tmp_path, "".join(f"{i},{i},{i * 0.1}\n" for i in range(8)), "r.csv"))
    assert reg.task == "regression" and len(reg.y_train) == 4
    spaced = load_dataset(write(tmp_path, " 1 , 2 , 0 \n\n3,4,1\n5,6,1\r\n7,8,0\n", "s.csv"))
    assert spaced.task == "classification" and len(spaced.y_train) + len(spaced.y_test) == 4


@pytest.mark.parametrize("text, line, problem", [
    ("x1,x2,label\n1,2,0\n3,4\n5,6,1\n7,8,0\n", 3, "columns"),
    ("1,2,0\n3,4,1,9\n5,6,1\n7,8,0\n", 2, "columns"),
    ("1,2,0\n3,4,1\n5,six,1\n7,8,0\n", 3, "not a number"),
    ("1,2,0\n3,4,1\n5,6,nan\n7,8,0\n", 3, "not finite"),
    ("1,2,0\n3,inf,1\n5,6,1\n7,8,0\n", 2, "not finite"),
    ("x1,x2\n1,2\n", 1, "columns"),
    ("x1,x2,y\n1,2,0\n3,4,1\n5,6,1\n", 4, "at least 4"),
    ("", 1, "at least 4"),
])
def test_load_dataset_refuses_bad_files(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}, line {line}: .*{problem}"):
        load_dataset(path)


def test_load_dataset_refuses_odd_files(tmp_path):
    with pytest.raises(ValueError, match=re.escape(str(tmp_path)) + ".*not a regular file"):
        load_dataset(tmp_path)
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(21 * 2 ** 20)
    with pytest.raises(ValueError, match="big.csv.*too large"):
        load_dataset(big)
    many = write(tmp_path, "1,2,0\n" * 100_001, "many.csv")
    with pytest.raises(ValueError, match="many.csv, line 100001: more than 100000 rows"):
        load_dataset(many)
    assert len(load_dataset(write(tmp_path, "1,2,0\n" * 100_000, "ok.csv")).y_train) == 50_000
    with pytest.raises(ValueError, match="missing.csv"):
        load_dataset(tmp_path / "missing.csv")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"1,2,0\n\xff\xfe,1,1\n")
    with pytest.raises(ValueError, match="bin.csv, line 2: not UTF-8"):
        load_dataset(binary)


# ---- validation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, field", [
    ({"hidden": (8,) * 9}, "hidden"), ({"hidden": (65,)}, "hidden"), ({"hidden": (0,)}, "hidden"),
    ({"hidden": 8}, "hidden"), ({"activation": "swishy"}, "activation"),
    ({"activation": ("tanh",)}, "activation"), ({"features": ()}, "features"),
    ({"features": ("x1", "x9")}, "features"), ({"init": "orthogonal"}, "init"),
    ({"dropout": 1.0}, "dropout"), ({"dropout": (0.1, 0.2, 0.3)}, "dropout"), ({"norm": "group"}, "norm"),
    ({"task": "ranking"}, "task"), ({"loss": "hinge"}, "loss"), ({"init_std": 0.0}, "init_std"),
])
def test_network_spec_validation(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        NetworkSpec(**kwargs)


@pytest.mark.parametrize("kwargs, field", [
    ({"optimizer": "adagrad"}, "optimizer"), ({"lr": 0.0}, "lr"), ({"lr": math.inf}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"momentum": 1.0}, "momentum"), ({"nesterov": 1}, "nesterov"),
    ({"betas": (0.9,)}, "betas"), ({"betas": (0.9, 1.0)}, "betas"), ({"eps": 0.0}, "eps"),
    ({"alpha": -0.1}, "alpha"), ({"l1": -1.0}, "l1"), ({"l2": math.nan}, "l2"),
    ({"weight_decay": -0.1}, "weight_decay"), ({"seed": -1}, "seed"), ({"lr": "0.1"}, "lr"),
])
def test_train_config_validation(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        TrainConfig(**kwargs)


def test_other_validation():
    state = init_state(NetworkSpec(), TrainConfig())
    with pytest.raises(ValueError, match="steps"):
        train(state, SPIRAL, -1)
    with pytest.raises(ValueError, match="data"):
        train(state, PLANE, 1)
    with pytest.raises(ValueError, match="spec"):
        init_state("spec", TrainConfig())
    with pytest.raises(ValueError, match="config"):
        with_config(state, {"lr": 0.1})
    with pytest.raises(ValueError, match="dataset_args"):
        pytorch_script(NetworkSpec(), TrainConfig(), {"n": 10}, 2)
    with pytest.raises(ValueError, match="dataset_args"):
        pytorch_script(NetworkSpec(), TrainConfig(), {"name": "xor", "points": 10}, 2)
    with pytest.raises(ValueError, match="dataset_args"):
        pytorch_script(NetworkSpec(), TrainConfig(), {"name": "plane"}, 2)
    assert NetworkSpec(task="regression", loss="bce").loss == "mse"
    assert NetworkSpec(hidden=[4, 4], activation=["relu", "tanh"]).activation == ("relu", "tanh")
    assert NetworkSpec(hidden=(), activation=()).layer_activations == ()


def test_backend_imports_neither_qt_nor_torch():
    code = ("import sys, workbench.compute.training\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'PySide6', 'pyqtgraph', 'widgets'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ---- any valid spec and config computes ---------------------------------------------------------

@st.composite
def specs(draw):
    hidden = tuple(draw(st.lists(st.integers(1, 64), max_size=8)))
    names = st.sampled_from(ACTIVATION_NAMES)
    activation = draw(st.one_of(names, st.tuples(*[names] * len(hidden))))
    dropout = draw(st.one_of(st.floats(0.0, 0.9), st.tuples(*[st.floats(0.0, 0.9)] * len(hidden))))
    return NetworkSpec(
        hidden=hidden, activation=activation, dropout=dropout,
        features=tuple(draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=7, unique=True))),
        init=draw(st.sampled_from(INITS)), norm=draw(st.sampled_from([None, "batch", "layer"])),
        task=draw(st.sampled_from(["classification", "regression"])), loss=draw(st.sampled_from(["bce", "mse"])),
        init_std=draw(st.floats(1e-3, 10.0)))


configs = st.builds(
    TrainConfig, optimizer=st.sampled_from(["sgd", "adam", "adamw", "rmsprop"]),
    lr=st.floats(1e-6, 1e4), batch_size=st.integers(2, 300), momentum=st.floats(0.0, 0.99),
    nesterov=st.booleans(), l1=st.floats(0.0, 1.0), l2=st.floats(0.0, 1.0),
    weight_decay=st.floats(0.0, 1.0), seed=st.integers(0, 2 ** 32),
)


@FUZZ
@given(spec=specs(), config=configs, steps=st.integers(0, 40), seed=st.integers(0, 1000))
def test_any_valid_spec_and_config_computes(spec, config, steps, seed):
    data = SPIRAL if spec.task == "classification" else PLANE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = init_state(spec, config, seed=seed)
        new, history = train(state, data, steps)
        assert len(history.loss) == new.step - state.step <= steps
        assert history.grad_norms.shape == (len(history.loss), len(spec.hidden) + 1)
        if new.diverged_step is None:
            assert new.step == steps
        assert np.all(np.isfinite(new._flat)) and np.all(np.isfinite(history.loss))
        result = forward(new, SPIRAL.x_test[:7], train=True, seed=1)
        assert result.output.shape == (7,)
        assert [h.shape for h in result.hidden] == [(7, w) for w in spec.hidden]
        ev = evaluate(new, data)
        assert isinstance(ev.test_loss, float)


def test_pytorch_script_of_a_csv_file_reproduces_the_losses(tmp_path):
    rng = np.random.default_rng(4)
    points = rng.uniform(-4, 4, (50, 2))
    csv_path = tmp_path / "points.csv"
    csv_path.write_text("x1,x2,value\n" + "".join(f"{float(a)!r},{float(b)!r},{float(a * b / 4)!r}\n" for a, b in points))
    spec = NetworkSpec(hidden=(5,), task="regression")
    config = TrainConfig(optimizer="adam", lr=0.02, batch_size=8)
    args = {"path": str(csv_path), "train_fraction": 0.6, "seed": 2}
    rows = run_script(pytorch_script(spec, config, args, 3, init_seed=7), tmp_path)
    result = fit(init_state(spec, config, seed=7), load_dataset(csv_path, train_fraction=0.6, seed=2), 3)
    np.testing.assert_allclose([float(r[1]) for r in rows], result.train_loss, rtol=1e-9)
    with pytest.raises(ValueError, match="'name' is not an argument of load_dataset"):
        pytorch_script(spec, config, {**args, "name": "xor"}, 3)


def test_a_label_column_must_hold_zeros_and_ones(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("x1,x2,label\n0,0,0\n1,1,1\n2,2,1\n3,3,2\n4,4,0\n")
    with pytest.raises(ValueError, match=r"labels.csv, line 5: label 2 is not 0 or 1"):
        load_dataset(path)
    path.write_text("x1,x2,value\n0,0,0\n1,1,1\n2,2,1\n3,3,2\n4,4,0\n")
    assert load_dataset(path).task == "regression"
