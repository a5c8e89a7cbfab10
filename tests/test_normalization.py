import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

import lamina
from lamina.layers.normalization import (BatchNormalization, GroupNormalization,
                                         LayerNormalization, UnitNormalization)

keras = pytest.importorskip("keras")

RS = np.random.RandomState(0)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _rand(*shape, scale=1.0, shift=0.0):
    return (RS.randn(*shape) * scale + shift).astype("float32")


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _assert_config_matches(ours, theirs):
    for key, value in theirs.items():
        if key in ("name", "dtype"):
            continue
        assert key in ours, key
        assert _plain(ours[key]) == _plain(value), (key, ours[key], value)


def _pair(k_cls, l_cls, x, **kwargs):
    k = k_cls(**kwargs)
    k(x)
    layer = l_cls(**kwargs)
    layer(x)
    layer.set_weights(k.get_weights())
    return k, layer


# ---------------------------------------------------------------- BatchNormalization

@pytest.mark.parametrize("shape,kwargs", [
    ((6, 5), {}),
    ((4, 7, 3), {"momentum": 0.8}),
    ((3, 5, 4, 6), {"momentum": 0.9, "epsilon": 1e-2}),
    ((3, 6, 5, 4), {"axis": 1}),
    ((3, 5, 4, 6), {"axis": 2, "center": False}),
    ((5, 4), {"scale": False}),
    ((2, 3, 4, 3, 2), {"axis": -1, "momentum": 0.5}),
])
def test_batchnorm_training_and_moving_stats_match_keras(shape, kwargs):
    x = _rand(*shape)
    k, layer = _pair(keras.layers.BatchNormalization, BatchNormalization, x,
                     gamma_initializer="random_normal", beta_initializer="random_normal", **kwargs)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    for step in range(3):
        xi = _rand(*shape, scale=1.5 + step, shift=0.5 * step)
        np.testing.assert_allclose(_np(layer(xi, training=True)), _np(k(xi, training=True)),
                                   atol=1e-5)
    for ours, theirs in zip(layer.get_weights(), k.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # Inference uses the moving statistics.
    np.testing.assert_allclose(_np(layer(x)), _np(k(x)), atol=1e-5)
    np.testing.assert_allclose(_np(layer(x, training=False)), _np(k(x, training=False)),
                               atol=1e-5)


def test_batchnorm_moving_variance_uses_biased_batch_variance():
    x = _rand(8, 3, scale=2.0, shift=1.0)
    layer = BatchNormalization()
    layer(x, training=True)
    gamma, beta, moving_mean, moving_var = layer.get_weights()
    np.testing.assert_allclose(moving_mean, 0.01 * x.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(moving_var, 0.99 + 0.01 * x.var(0), rtol=1e-6)  # ddof=0
    out = _np(layer(x, training=True))
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_batchnorm_low_precision_layer_keeps_its_moving_statistics_dtype():
    x = _rand(16, 4, 4, 3, scale=2.0, shift=1.0)
    layer = BatchNormalization(dtype="bfloat16", momentum=0.5)
    layer(torch.as_tensor(x).bfloat16(), training=True)
    assert layer.moving_mean.dtype == layer.moving_variance.dtype == torch.bfloat16
    seen = torch.as_tensor(x).bfloat16().float().numpy().reshape(-1, 3)
    moving_mean, moving_var = (_np(w.float()) for w in (layer.moving_mean, layer.moving_variance))
    np.testing.assert_allclose(moving_mean, 0.5 * seen.mean(0), rtol=1e-2)
    np.testing.assert_allclose(moving_var, 0.5 + 0.5 * seen.var(0), rtol=1e-2)


def test_batchnorm_single_sample_training_matches_keras():
    x = _rand(1, 4)
    k, layer = _pair(keras.layers.BatchNormalization, BatchNormalization, x)
    np.testing.assert_allclose(_np(layer(x, training=True)), _np(k(x, training=True)), atol=1e-6)
    for ours, theirs in zip(layer.get_weights(), k.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_batchnorm_masked_training_matches_keras():
    x = _rand(3, 5, 4, scale=2.0)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)
    k, layer = _pair(keras.layers.BatchNormalization, BatchNormalization, x, momentum=0.7)
    for _ in range(2):
        ko = k(x, training=True, mask=mask)
        lo = layer(x, training=True, mask=torch.as_tensor(mask))
        np.testing.assert_allclose(_np(lo), _np(ko), atol=1e-5)
    for ours, theirs in zip(layer.get_weights(), k.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    # The masked-out values do not affect the statistics.
    x2 = x.copy()
    x2[~mask] = 1e3
    layer2 = BatchNormalization(momentum=0.7)
    layer2(x2, training=True, mask=torch.as_tensor(mask))
    layer3 = BatchNormalization(momentum=0.7)
    layer3(x, training=True, mask=torch.as_tensor(mask))
    np.testing.assert_allclose(layer2.get_weights()[2], layer3.get_weights()[2], atol=1e-5)


def test_batchnorm_frozen_runs_in_inference_mode():
    x = _rand(6, 4, scale=3.0, shift=2.0)
    k, layer = _pair(keras.layers.BatchNormalization, BatchNormalization, x)
    k.trainable = False
    layer.trainable = False
    before = layer.get_weights()
    np.testing.assert_allclose(_np(layer(x, training=True)), _np(k(x, training=True)), atol=1e-5)
    np.testing.assert_allclose(_np(layer(x, training=True)), x / np.sqrt(1 + 1e-3), atol=1e-5)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4


def test_batchnorm_renorm_matches_keras():
    x = _rand(8, 3)
    clip = {"rmax": 1.5, "rmin": 0.5, "dmax": 0.3}
    k, layer = _pair(keras.layers.BatchNormalization, BatchNormalization, x, renorm=True,
                     renorm_clipping=clip, renorm_momentum=0.8, momentum=0.9)
    assert len(layer.get_weights()) == 7
    for step in range(3):
        xi = _rand(8, 3, scale=2.0, shift=step)
        np.testing.assert_allclose(_np(layer(xi, training=True)), _np(k(xi, training=True)),
                                   atol=1e-5)
    for ours, theirs in zip(layer.get_weights(), k.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(_np(layer(x)), _np(k(x)), atol=1e-5)


def test_batchnorm_weights_buffers_and_names():
    layer = BatchNormalization()
    layer(_rand(2, 3))
    params = dict(layer.named_parameters())
    buffers = dict(layer.named_buffers())
    assert set(params) == {"gamma", "beta"}
    assert set(buffers) == {"moving_mean", "moving_variance"}
    assert [w is t for w, t in zip(layer.weights, [layer.gamma, layer.beta, layer.moving_mean,
                                                   layer.moving_variance])] == [True] * 4
    no_scale = BatchNormalization(scale=False, center=False)
    no_scale(_rand(2, 3))
    assert len(no_scale.get_weights()) == 2


def test_batchnorm_gradients_flow():
    layer = BatchNormalization()
    x = torch.tensor(_rand(5, 3), requires_grad=True)
    (layer(x, training=True) * torch.arange(3.0)).sum().backward()
    assert x.grad is not None and layer.gamma.grad is not None and layer.beta.grad is not None
    assert float(layer.gamma.grad.abs().sum()) > 0


def test_batchnorm_config_and_symbolic_shape():
    kwargs = dict(axis=1, momentum=0.9, epsilon=1e-4, center=False,
                  gamma_regularizer="l2", beta_constraint="non_neg")
    k = keras.layers.BatchNormalization(**kwargs)
    layer = BatchNormalization(**kwargs)
    _assert_config_matches(layer.get_config(), k.get_config())
    clone = BatchNormalization.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    inp = lamina.Input(shape=(4, 5, 6))
    assert tuple(layer(inp).shape) == tuple(k(keras.Input(shape=(4, 5, 6))).shape)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="mask"):
        BatchNormalization()(_rand(2, 3, 4), mask=torch.ones(2, 3, 4, dtype=torch.bool),
                             training=True)
    with pytest.raises(ValueError, match="renorm_clipping"):
        BatchNormalization(renorm=True, renorm_clipping={"bad": 1})
    with pytest.raises(ValueError, match="single axis"):
        BatchNormalization(axis=[1, 2])
    with pytest.raises(ValueError, match="out of bounds"):
        BatchNormalization(axis=3)(_rand(2, 3))
    layer = BatchNormalization()
    layer(_rand(2, 3))
    with pytest.raises(ValueError, match="incompatible"):
        layer(_rand(2, 4))


# ---------------------------------------------------------------- LayerNormalization

@pytest.mark.parametrize("shape,kwargs", [
    ((3, 6), {}),
    ((2, 4, 5), {"epsilon": 1e-5}),
    ((2, 4, 5), {"axis": [1, 2]}),
    ((2, 3, 4, 5), {"axis": (-2, -1), "center": False}),
    ((2, 4, 5), {"scale": False}),
    ((2, 4, 5), {"rms_scaling": True}),
])
def test_layernorm_matches_keras(shape, kwargs):
    x = _rand(*shape, scale=2.0, shift=1.0)
    k, layer = _pair(keras.layers.LayerNormalization, LayerNormalization, x,
                     gamma_initializer="random_normal", beta_initializer="random_normal",
                     **kwargs)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    np.testing.assert_allclose(_np(layer(x)), _np(k(x)), atol=1e-5)
    _assert_config_matches(layer.get_config(), k.get_config())


def test_layernorm_non_trailing_axis_matches_numpy():
    x = _rand(2, 4, 5, scale=3.0)
    layer = LayerNormalization(axis=1, gamma_initializer="random_normal",
                               beta_initializer="random_normal")
    out = _np(layer(x))
    gamma, beta = layer.get_weights()
    assert gamma.shape == (4,)
    mean, var = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    expected = (x - mean) / np.sqrt(var + 1e-3) * gamma[None, :, None] + beta[None, :, None]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_layernorm_gradients_config_and_symbolic():
    layer = LayerNormalization(axis=[1, 2])
    x = torch.tensor(_rand(2, 3, 4), requires_grad=True)
    (layer(x) * torch.arange(4.0)).sum().backward()
    assert x.grad is not None and layer.gamma.grad is not None
    assert layer.get_config()["axis"] == [1, 2]
    clone = LayerNormalization.from_config(layer.get_config())
    assert clone.get_config()["axis"] == [1, 2]
    inp = lamina.Input(shape=(3, 4))
    assert tuple(LayerNormalization()(inp).shape) == (None, 3, 4)
    with pytest.raises(TypeError, match="axis"):
        LayerNormalization(axis="last")


# ---------------------------------------------------------------- GroupNormalization

@pytest.mark.parametrize("shape,kwargs", [
    ((2, 5, 4, 6), {"groups": 3}),
    ((2, 7, 8), {"groups": 4, "epsilon": 1e-5}),
    ((3, 6), {"groups": 2}),
    ((2, 6, 4, 5), {"groups": 2, "axis": 1}),
    ((2, 5, 4), {"groups": -1, "center": False}),
])
def test_groupnorm_matches_keras(shape, kwargs):
    x = _rand(*shape, scale=2.0, shift=0.5)
    k, layer = _pair(keras.layers.GroupNormalization, GroupNormalization, x,
                     gamma_initializer="random_normal", beta_initializer="random_normal",
                     **kwargs)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    np.testing.assert_allclose(_np(layer(x)), _np(k(x)), atol=1e-5)
    _assert_config_matches(layer.get_config(), k.get_config())


def test_groupnorm_errors_and_gradients():
    with pytest.raises(ValueError, match="groups"):
        GroupNormalization(groups=0)
    with pytest.raises(ValueError, match="multiple"):
        GroupNormalization(groups=4)(_rand(2, 6))
    with pytest.raises(ValueError, match="cannot be more"):
        GroupNormalization(groups=8)(_rand(2, 6))
    layer = GroupNormalization(groups=2)
    x = torch.tensor(_rand(2, 3, 4), requires_grad=True)
    (layer(x) * torch.arange(4.0)).sum().backward()
    assert x.grad is not None and layer.gamma.grad is not None
    assert tuple(GroupNormalization(groups=2)(lamina.Input(shape=(5, 4))).shape) == (None, 5, 4)


def test_groupnorm_weight_gradients_on_a_model_input_image():
    """torch's CPU backward crashed the process for a channels-last image needing no gradient
    (GroupNormalization first in a model); the gradients match numpy's formula."""
    x = _rand(2, 3, 3, 4, scale=2.0)
    layer = GroupNormalization(groups=2, epsilon=1e-3)
    weights = torch.tensor(_rand(2, 3, 3, 4))
    (layer(torch.tensor(x)) * weights).sum().backward()
    grouped = x.reshape(2, 3, 3, 2, 2)
    mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
    var = grouped.var(axis=(1, 2, 4), keepdims=True)
    normalized = ((grouped - mean) / np.sqrt(var + 1e-3)).reshape(x.shape)
    np.testing.assert_allclose(_np(layer.gamma.grad), (normalized * _np(weights)).sum((0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(layer.beta.grad), _np(weights).sum((0, 1, 2)), rtol=1e-5)


# ---------------------------------------------------------------- UnitNormalization

@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unitnorm_matches_keras(axis):
    x = _rand(3, 4, 5)
    x[0, 0] = 0.0
    k = keras.layers.UnitNormalization(axis=axis)
    layer = UnitNormalization(axis=axis)
    np.testing.assert_allclose(_np(layer(x)), _np(k(x)), atol=1e-6)
    _assert_config_matches(layer.get_config(), k.get_config())
    dims = tuple(axis) if isinstance(axis, list) else axis
    norms = np.sqrt((_np(layer(x[1:])) ** 2).sum(axis=dims))
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_unitnorm_errors_and_symbolic():
    with pytest.raises(TypeError, match="axis"):
        UnitNormalization(axis=1.5)
    with pytest.raises(ValueError, match="out of bounds"):
        UnitNormalization(axis=3)(_rand(2, 3))
    assert tuple(UnitNormalization()(lamina.Input(shape=(7,))).shape) == (None, 7)


def test_batchnorm_synchronized_single_process(tmp_path):
    dist = torch.distributed
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs a fresh torch.distributed")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    try:
        x = torch.tensor(_rand(6, 3, scale=2.0), requires_grad=True)
        synced, plain = BatchNormalization(synchronized=True), BatchNormalization()
        out = synced(x, training=True)
        np.testing.assert_allclose(_np(out), _np(plain(x, training=True)), atol=1e-5)
        for a, b in zip(synced.get_weights(), plain.get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6)
        (out * torch.arange(3.0)).sum().backward()
        assert x.grad is not None and synced.gamma.grad is not None
    finally:
        dist.destroy_process_group()
    assert BatchNormalization(synchronized=True).get_config()["synchronized"] is True


def test_batchnorm_accepts_keras2_config():
    layer = BatchNormalization.from_config({"name": "bn", "trainable": True, "dtype": "float32",
                                            "axis": [3], "momentum": 0.9, "epsilon": 1e-5,
                                            "fused": True, "center": True, "scale": True})
    assert layer.axis == 3 and layer.get_config()["axis"] == 3
    out = layer(_rand(2, 3, 3, 4), training=True)
    assert tuple(out.shape) == (2, 3, 3, 4)
