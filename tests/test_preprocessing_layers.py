"""Rescaling and Normalization against real Keras (outputs, weights, configs) and numpy."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lamina  # noqa: E402
from lamina.layers.preprocessing import Normalization, Rescaling  # noqa: E402

keras = pytest.importorskip("keras")

X = np.random.RandomState(0).uniform(-3, 12, size=(6, 4, 3)).astype("float32")


def _config_without_name(layer):
    return {k: v for k, v in layer.get_config().items() if k != "name"}


# ------------------------------------------------------------------ Rescaling
@pytest.mark.parametrize("scale,offset", [(1 / 255.0, 0.0), (1 / 127.5, -1.0),
                                          ([0.5, 2.0, -1.0], 0.25),
                                          (np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0]))])
def test_rescaling_matches_keras(scale, offset):
    k = keras.layers.Rescaling(scale, offset=offset)
    layer = Rescaling(scale, offset=offset)
    np.testing.assert_allclose(layer(X).numpy(), np.asarray(k(X)), rtol=1e-6, atol=1e-6)
    assert layer.get_weights() == [] and k.get_weights() == []
    assert _config_without_name(layer) == _config_without_name(k)
    clone = Rescaling.from_config(layer.get_config())
    np.testing.assert_allclose(clone(X).numpy(), layer(X).numpy())
    # Keras reads lamina's config and the other way round
    np.testing.assert_allclose(
        np.asarray(keras.layers.Rescaling.from_config(layer.get_config())(X)),
        layer(X).numpy(), rtol=1e-6)


def test_rescaling_by_hand_integer_input_and_symbolic_shape():
    x = np.arange(6, dtype="uint8").reshape(1, 2, 3)
    out = Rescaling(0.5, offset=1.0)(x)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), x.astype("float32") * 0.5 + 1.0)
    inp = lamina.Input(shape=(5, 3))
    assert Rescaling(2.0)(inp).shape == (None, 5, 3)
    assert Rescaling(2.0).compute_output_shape((None, 5, 3)) == (None, 5, 3)


def test_rescaling_gradient_flows():
    x = torch.ones(2, 3, requires_grad=True)
    Rescaling([1.0, 2.0, 3.0])(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.0, 2.0, 3.0]] * 2)


# ------------------------------------------------------------------ Normalization
@pytest.mark.parametrize("kwargs", [dict(), dict(axis=None), dict(axis=(1, 2)), dict(axis=1),
                                    dict(invert=True)])
def test_normalization_adapt_matches_keras(kwargs):
    k = keras.layers.Normalization(**kwargs)
    k.adapt(X)
    layer = Normalization(**kwargs)
    layer.adapt(X)
    kw = k.get_weights()
    assert [(w.shape, w.dtype) for w in layer.get_weights()] == [(w.shape, w.dtype) for w in kw]
    for got, expected in zip(layer.get_weights(), kw):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer(X).numpy(), np.asarray(k(X)), rtol=1e-5, atol=1e-5)
    assert _config_without_name(layer) == _config_without_name(k)


def test_normalization_adapt_statistics_by_numpy():
    layer = Normalization(axis=-1)
    layer.adapt(X)
    mean, var, count = layer.get_weights()
    np.testing.assert_allclose(mean, X.reshape(-1, 3).mean(0), rtol=1e-5)
    np.testing.assert_allclose(var, X.reshape(-1, 3).var(0), rtol=1e-5)
    assert count == 0 and count.dtype == np.int32  # as Keras 3: count is kept for old files
    expected = (X - X.reshape(-1, 3).mean(0)) / np.sqrt(X.reshape(-1, 3).var(0))
    np.testing.assert_allclose(layer(X).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_normalization_adapt_on_batches_and_tensors():
    batches = [X[:1], X[1:4], (X[4:], np.zeros(2))]  # uneven batches, an (x, y) tuple
    for data in (batches, iter(batches), torch.as_tensor(X)):
        layer = Normalization(axis=(1, 2))
        layer.adapt(data)
        mean, var, _ = layer.get_weights()
        np.testing.assert_allclose(mean, X.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var, X.var(0), rtol=1e-4, atol=1e-6)
    layer = Normalization(axis=None)  # (Keras needs TensorFlow to adapt on iterables)
    layer.adapt(b for b in (X[:2], X[2:]))
    np.testing.assert_allclose(layer.get_weights()[0], X.mean(), rtol=1e-5)
    np.testing.assert_allclose(layer.get_weights()[1], X.var(), rtol=1e-5)


@pytest.mark.parametrize("mean,variance,shape", [
    ([1.0, 2.0, 3.0], [1.0, 4.0, 9.0], (6, 4, 3)),
    (2.0, 3.0, (6, 4, 3)),
    ([[1.0, 2.0, 3.0]] * 4, [[4.0, 1.0, 0.25]] * 4, (6, 4, 3)),
])
def test_normalization_constants_match_keras(mean, variance, shape):
    axis = (1, 2) if np.ndim(mean) == 2 else -1
    k = keras.layers.Normalization(axis=axis, mean=mean, variance=variance)
    layer = Normalization(axis=axis, mean=mean, variance=variance)
    x = X.reshape(shape)
    np.testing.assert_allclose(layer(x).numpy(), np.asarray(k(x)), rtol=1e-6, atol=1e-6)
    assert layer.get_weights() == [] == k.get_weights()
    assert _config_without_name(layer) == _config_without_name(k)
    inv = Normalization(axis=axis, mean=mean, variance=variance, invert=True)
    np.testing.assert_allclose(inv(layer(x)).numpy(), x, rtol=1e-5, atol=1e-5)


def test_normalization_weights_and_config_round_trip():
    k = keras.layers.Normalization(axis=-1)
    k.build((None, 4, 3))
    layer = Normalization(axis=-1)
    layer.build((None, 4, 3))
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in k.get_weights()]
    np.testing.assert_allclose(layer(X).numpy(), X)  # zeros/ones before adapt
    weights = [np.array([1.0, -2.0, 3.0], "float32"), np.array([4.0, 0.25, 1.0], "float32"),
               np.array(7, "int32")]
    k.set_weights(weights)
    layer.set_weights(weights)
    np.testing.assert_allclose(layer(X).numpy(), np.asarray(k(X)), rtol=1e-6)
    clone = Normalization.from_config(layer.get_config())
    clone.build_from_config(layer.get_build_config())
    assert layer.get_build_config() == {"input_shape": [None, 4, 3]}
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(X).numpy(), layer(X).numpy())


def test_normalization_in_a_model_symbolic_and_gradient():
    layer = Normalization()
    layer.adapt(X)
    inp = lamina.Input(shape=(4, 3))
    out = layer(inp)
    assert out.shape == (None, 4, 3)
    model = lamina.Model(inp, out)
    np.testing.assert_allclose(model.predict(X, verbose=0), layer(X).numpy(), rtol=1e-6)
    x = torch.as_tensor(X).requires_grad_()
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad[0, 0].numpy(), 1 / np.sqrt(X.reshape(-1, 3).var(0)),
                               rtol=1e-4)


def test_normalization_errors():
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match="same shape"):
        Normalization(mean=[1.0, 2.0], variance=[1.0])
    with pytest.raises(ValueError, match="rank of `mean`"):
        Normalization(axis=-1, mean=[[1.0]], variance=[[1.0]])
    with pytest.raises(ValueError, match=r"range \[-ndim, ndim\)"):
        Normalization(axis=3).build((None, 4, 3))
    with pytest.raises(ValueError, match="known shape"):
        Normalization(axis=1).build((None, None, 3))
    layer = Normalization()
    layer.adapt(X)
    with pytest.raises(ValueError, match="incompatible shape"):
        layer.adapt(np.zeros((2, 4, 5), "float32"))
    with pytest.raises(ValueError, match="empty iterable"):
        Normalization().adapt([])
    with pytest.raises(TypeError, match="Unsupported data type"):
        Normalization().adapt(3.0)
    with pytest.raises(TypeError, match="axis"):
        Normalization(axis="channels")
