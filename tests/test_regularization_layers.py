import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import math

import numpy as np
import pytest
import torch

import lamina
from lamina.layers.core import Dropout
from lamina.layers.regularization import (ActivityRegularization, AlphaDropout, GaussianDropout,
                                          GaussianNoise, SpatialDropout1D, SpatialDropout2D,
                                          SpatialDropout3D)

keras = pytest.importorskip("keras")

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _config_matches(ours, theirs):
    for key, value in theirs.items():
        if key in ("name", "dtype"):
            continue
        assert key in ours, key
        assert ours[key] == value, (key, ours[key], value)


# ---------------------------------------------------------------- SpatialDropout

@pytest.mark.parametrize("cls_name,shape,data_format,channel_axis", [
    ("SpatialDropout1D", (64, 5, 32), None, -1),
    ("SpatialDropout2D", (32, 3, 4, 32), None, -1),
    ("SpatialDropout2D", (32, 32, 3, 4), "channels_first", 1),
    ("SpatialDropout3D", (32, 2, 3, 2, 32), "channels_last", -1),
    ("SpatialDropout3D", (32, 32, 2, 3, 2), "channels_first", 1),
])
def test_spatial_dropout_drops_whole_channels(cls_name, shape, data_format, channel_axis):
    torch.manual_seed(0)
    kwargs = {} if data_format is None else {"data_format": data_format}
    layer = getattr(lamina.layers.regularization, cls_name)(0.4, **kwargs)
    assert isinstance(layer, Dropout)
    x = torch.rand(shape) + 1.0  # strictly positive, so zeros mean "dropped"
    out = _np(layer(x, training=True))
    moved = np.moveaxis(out, channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    xm = np.moveaxis(_np(x), channel_axis, 1).reshape(shape[0], shape[channel_axis], -1)
    dropped = (moved == 0).all(-1)
    kept = ~dropped
    # Every feature map is either entirely dropped or entirely scaled by 1 / (1 - rate).
    assert ((moved == 0).any(-1) == dropped).all()
    np.testing.assert_allclose(moved[kept], xm[kept] / 0.6, rtol=1e-6)
    assert abs(dropped.mean() - 0.4) < 0.06
    np.testing.assert_array_equal(_np(layer(x)), _np(x))  # identity at inference
    theirs = getattr(keras.layers, cls_name)(0.4, **kwargs)
    _config_matches(layer.get_config(), theirs.get_config())
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_spatial_dropout_errors_and_symbolic():
    with pytest.raises(ValueError, match="rate"):
        SpatialDropout2D(1.5)
    with pytest.raises(ValueError, match="ndim=4"):
        SpatialDropout2D(0.5)(torch.ones(2, 3, 4))
    assert tuple(SpatialDropout1D(0.3)(lamina.Input(shape=(5, 7))).shape) == (None, 5, 7)
    out = SpatialDropout2D(1.0)(torch.ones(2, 3, 3, 4), training=True)
    assert float(out.abs().sum()) == 0.0


def test_spatial_dropout_seed_is_reproducible():
    x = torch.ones(8, 4, 16)
    a = _np(SpatialDropout1D(0.5, seed=3)(x, training=True))
    b = _np(SpatialDropout1D(0.5, seed=3)(x, training=True))
    c = _np(SpatialDropout1D(0.5, seed=4)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- GaussianNoise / Dropout

def test_gaussian_noise_statistics():
    torch.manual_seed(1)
    layer = GaussianNoise(0.3)
    x = torch.full((200, 500), 2.0)
    noise = _np(layer(x, training=True)) - 2.0
    assert abs(noise.mean()) < 0.005
    assert abs(noise.std() - 0.3) < 0.005
    np.testing.assert_array_equal(_np(layer(x)), _np(x))
    np.testing.assert_array_equal(_np(layer(x, training=False)), _np(x))
    _config_matches(layer.get_config(), keras.layers.GaussianNoise(0.3).get_config())
    a = GaussianNoise(0.5, seed=7)(x, training=True)
    b = GaussianNoise(0.5, seed=7)(x, training=True)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="stddev"):
        GaussianNoise(-0.1)


def test_gaussian_dropout_statistics():
    torch.manual_seed(2)
    rate = 0.3
    layer = GaussianDropout(rate)
    x = torch.full((200, 500), 3.0)
    factor = _np(layer(x, training=True)) / 3.0
    assert abs(factor.mean() - 1.0) < 0.01
    assert abs(factor.std() - math.sqrt(rate / (1 - rate))) < 0.01
    np.testing.assert_array_equal(_np(layer(x)), _np(x))
    _config_matches(layer.get_config(), keras.layers.GaussianDropout(rate).get_config())
    assert GaussianDropout.from_config(layer.get_config()).rate == rate
    with pytest.raises(ValueError, match="rate"):
        GaussianDropout(2)


def test_alpha_dropout_statistics_and_values():
    torch.manual_seed(3)
    rate = 0.2
    layer = AlphaDropout(rate)
    x = torch.randn(400, 500)
    out = _np(layer(x, training=True))
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    dropped_value = a * alpha_p + b
    dropped = np.isclose(out, dropped_value, atol=1e-6)
    assert abs(dropped.mean() - rate) < 0.01
    np.testing.assert_allclose(out[~dropped], a * _np(x)[~dropped] + b, rtol=1e-5, atol=1e-6)
    # Self-normalising: zero mean, unit variance are kept.
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1.0) < 0.01
    np.testing.assert_array_equal(_np(layer(x)), _np(x))
    _config_matches(layer.get_config(), keras.layers.AlphaDropout(rate).get_config())


def test_alpha_dropout_noise_shape():
    layer = AlphaDropout(0.5, noise_shape=(None, 1, 6), seed=1)
    x = torch.randn(50, 4, 6)
    out = _np(layer(x, training=True))
    rate = 0.5
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    dropped = np.isclose(out, a * alpha_p - a * alpha_p * rate, atol=1e-6)
    # The same units are dropped at every step of axis 1.
    assert (dropped == dropped[:, :1, :]).all()
    assert 0.3 < dropped.mean() < 0.7
    assert layer.get_config()["noise_shape"] == (None, 1, 6)


def test_noise_layers_propagate_masks_and_shapes():
    x = torch.randn(3, 4, 5)
    x._keras_mask = torch.tensor(np.random.RandomState(0).rand(3, 4) > 0.5)
    for layer in (GaussianNoise(0.1), GaussianDropout(0.1), AlphaDropout(0.1),
                  ActivityRegularization(l1=0.1)):
        assert torch.equal(layer(x)._keras_mask, x._keras_mask)
        assert tuple(layer(lamina.Input(shape=(4, 5))).shape) == (None, 4, 5)


# ---------------------------------------------------------------- ActivityRegularization

def test_activity_regularization_matches_keras():
    x = np.random.RandomState(4).randn(4, 6).astype("float32")
    k = keras.layers.ActivityRegularization(l1=0.1, l2=0.03)
    layer = ActivityRegularization(l1=0.1, l2=0.03)
    np.testing.assert_array_equal(_np(layer(x)), x)
    k(x)
    expected = (0.1 * np.abs(x).sum() + 0.03 * np.square(x).sum()) / 4
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), expected, rtol=1e-5)
    np.testing.assert_allclose(float(layer.losses[0]), float(_np(k.losses[0])), rtol=1e-5)
    _config_matches(layer.get_config(), k.get_config())
    clone = ActivityRegularization.from_config(layer.get_config())
    assert (clone.l1, clone.l2) == (0.1, 0.03)
    xt = torch.tensor(x, requires_grad=True)
    layer(xt)
    layer.losses[0].backward()
    np.testing.assert_allclose(_np(xt.grad), (0.1 * np.sign(x) + 0.06 * x) / 4, rtol=1e-5)


def test_legacy_keras2_config_keys_are_accepted():
    layer = SpatialDropout2D.from_config({"name": "sd", "trainable": True, "dtype": "float32",
                                          "rate": 0.25, "noise_shape": None, "seed": None,
                                          "data_format": "channels_first"})
    assert (layer.rate, layer.data_format) == (0.25, "channels_first")
    assert GaussianDropout(np.float32(0.5)).rate == 0.5
