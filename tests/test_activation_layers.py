import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import warnings

import numpy as np
import pytest
import torch

import lamina
from lamina.layers.activation import ELU, PReLU, LeakyReLU, ReLU, Softmax

keras = pytest.importorskip("keras")

RS = np.random.RandomState(1)
X = (RS.randn(3, 4, 5) * 3).astype("float32")
X[0, 0, :4] = [0.0, 1.0, -1.0, 6.0]


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


@pytest.mark.parametrize("cls_name,kwargs", [
    ("ReLU", {}),
    ("ReLU", {"max_value": 6.0}),
    ("ReLU", {"negative_slope": 0.1, "threshold": 0.5}),
    ("ReLU", {"max_value": 2.0, "negative_slope": 0.2, "threshold": 1.0}),
    ("LeakyReLU", {}),
    ("LeakyReLU", {"negative_slope": 0.05}),
    ("ELU", {}),
    ("ELU", {"alpha": 0.5}),
    ("Softmax", {}),
    ("Softmax", {"axis": 1}),
    ("Softmax", {"axis": (1, 2)}),
])
def test_activation_layers_match_keras(cls_name, kwargs):
    ours = getattr(lamina.layers.activation, cls_name)(**kwargs)
    theirs = getattr(keras.layers, cls_name)(**kwargs)
    np.testing.assert_allclose(_np(ours(X)), _np(theirs(X)), atol=1e-6)
    _config_matches(ours.get_config(), theirs.get_config())
    clone = type(ours).from_config(ours.get_config())
    np.testing.assert_allclose(_np(clone(X)), _np(ours(X)), atol=0)
    assert tuple(ours(lamina.Input(shape=(4, 5))).shape) == (None, 4, 5)


def test_leaky_relu_legacy_alpha():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = LeakyReLU(alpha=0.2)
    assert layer.negative_slope == 0.2
    np.testing.assert_allclose(_np(layer(np.array([-2.0, 3.0], "float32"))), [-0.4, 3.0])


def test_activation_layer_errors():
    with pytest.raises(ValueError, match="max_value"):
        ReLU(max_value=-1)
    with pytest.raises(ValueError, match="negative_slope"):
        ReLU(negative_slope=-0.1)
    with pytest.raises(ValueError, match="threshold"):
        ReLU(threshold=None)
    with pytest.raises(ValueError, match="negative_slope"):
        LeakyReLU(negative_slope=-1)


@pytest.mark.parametrize("kwargs", [{}, {"shared_axes": [1]}, {"shared_axes": 2},
                                    {"alpha_initializer": "random_normal",
                                     "alpha_regularizer": "l2", "alpha_constraint": "non_neg"}])
def test_prelu_matches_keras(kwargs):
    k = keras.layers.PReLU(**kwargs)
    k(X)
    layer = PReLU(**kwargs)
    layer(X)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    alpha = RS.rand(*k.get_weights()[0].shape).astype("float32")
    k.set_weights([alpha])
    layer.set_weights([alpha])
    np.testing.assert_allclose(_np(layer(X)), _np(k(X)), atol=1e-6)
    _config_matches(layer.get_config(), k.get_config())
    clone = PReLU.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_prelu_gradients_and_regularizer():
    layer = PReLU(alpha_initializer="ones", alpha_regularizer="l2", shared_axes=[1])
    x = torch.tensor(X, requires_grad=True)
    layer(x).sum().backward()
    assert layer.alpha.shape == (1, 5)
    # d(out)/d(alpha) = x where x < 0.
    expected = np.where(X < 0, X, 0).sum(axis=(0, 1))
    np.testing.assert_allclose(_np(layer.alpha.grad).ravel(), expected, rtol=1e-5)
    assert x.grad is not None
    np.testing.assert_allclose(float(sum(layer.losses)), 0.01 * 5, rtol=1e-6)


def test_prelu_bad_shapes():
    with pytest.raises(ValueError, match="shared_axes"):
        PReLU(shared_axes=[3])(X)
    with pytest.raises(ValueError, match="PReLU"):
        PReLU()(lamina.Input(shape=(None, 5)))
    assert tuple(PReLU(shared_axes=1)(lamina.Input(shape=(None, 5))).shape) == (None, None, 5)


def test_softmax_mask_matches_keras():
    mask = RS.rand(3, 4, 5) > 0.4
    mask[0, 0] = False  # a fully masked row: all zeros
    k = keras.layers.Softmax()
    layer = Softmax()
    out = _np(layer(X, mask=torch.as_tensor(mask)))
    np.testing.assert_allclose(out, _np(k(X, mask=mask)), atol=1e-6)
    assert (out[~mask] == 0).all()
    np.testing.assert_allclose(out[0, 0], 0.0)
    np.testing.assert_allclose(out[1:].sum(-1)[mask[1:].any(-1)], 1.0, atol=1e-6)
    # A broadcast (batch, 1, features) float mask.
    fmask = (RS.rand(3, 1, 5) > 0.3).astype("float32")
    np.testing.assert_allclose(_np(layer(X, mask=torch.as_tensor(fmask))),
                               _np(k(X, mask=fmask)), atol=1e-6)
    # Multi-axis with a mask.
    k2, l2 = keras.layers.Softmax(axis=(1, 2)), Softmax(axis=(1, 2))
    np.testing.assert_allclose(_np(l2(X, mask=torch.as_tensor(mask))), _np(k2(X, mask=mask)),
                               atol=1e-6)


def test_softmax_mask_errors_and_gradients():
    with pytest.raises(ValueError, match="broadcastable"):
        Softmax()(X, mask=torch.ones(3, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="more dimensions"):
        Softmax()(X, mask=torch.ones(1, 3, 4, 5, dtype=torch.bool))
    x = torch.tensor(X, requires_grad=True)
    (Softmax()(x) * torch.arange(5.0)).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_activation_layers_propagate_masks():
    x = torch.tensor(X)
    x._keras_mask = torch.tensor(RS.rand(3, 4) > 0.5)
    for layer in (ReLU(), LeakyReLU(), ELU(), PReLU()):
        out = layer(x)
        assert torch.equal(out._keras_mask, x._keras_mask), type(layer).__name__
