import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from lamina.engine.input_layer import Input
from lamina.engine.model import Model
from lamina.layers.core import Dense, Dropout, Embedding
from lamina.layers.recurrent import LSTM, Bidirectional
from lamina.layers import wrappers
from lamina.layers.wrappers import TimeDistributed, Wrapper

RNG = np.random.RandomState(0)
X = RNG.randn(3, 5, 4).astype("float32")


def np_(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def randomize(obj, seed=1):
    rng = np.random.RandomState(seed)
    obj.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                     for w in obj.get_weights()])


def test_time_distributed_dense_matches_keras():
    k = keras.layers.TimeDistributed(keras.layers.Dense(3, activation="tanh"))
    k(X)
    randomize(k)
    lam = TimeDistributed(Dense(3, activation="tanh"))
    lam(X)
    assert [w.shape for w in lam.get_weights()] == [(4, 3), (3,)]
    lam.set_weights(k.get_weights())
    np.testing.assert_allclose(np_(lam(X)), np_(k(X)), atol=1e-6)
    x4 = RNG.randn(2, 3, 6, 4).astype("float32")  # extra axes fold too
    np.testing.assert_allclose(np_(lam(x4)), np_(k(x4)), atol=1e-6)


def _classifier(fw, Input_, Model_, Dense_):
    inp = Input_((4,))
    hidden = Dense_(8, activation="relu")(inp)
    return Model_(inp, Dense_(3, activation="softmax")(hidden))


def test_time_distributed_over_functional_model_matches_keras():
    """An image (here: vector) classifier turned into a sequence classifier."""
    k_inner = _classifier(keras, keras.Input, keras.Model, keras.layers.Dense)
    l_inner = _classifier(None, Input, Model, Dense)
    randomize(k_inner)
    l_inner.set_weights(k_inner.get_weights())
    k_seq_in, l_seq_in = keras.Input((5, 4)), Input((5, 4))
    k_model = keras.Model(k_seq_in, keras.layers.TimeDistributed(k_inner)(k_seq_in))
    l_out = TimeDistributed(l_inner)(l_seq_in)
    assert l_out.shape == (None, 5, 3)
    l_model = Model(l_seq_in, l_out)
    assert len(l_model.get_weights()) == 4
    out = l_model(X)
    np.testing.assert_allclose(np_(out), np_(k_model(X)), atol=1e-6)
    np.testing.assert_allclose(np_(out).sum(-1), np.ones((3, 5)), atol=1e-5)
    # the sequence model trains end to end: gradients reach the wrapped model's weights
    l_model(torch.tensor(X)).square().sum().backward()
    assert all(w.grad is not None for w in l_inner.weights)


def test_time_distributed_mask_propagates_to_rnn():
    tokens = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [0, 0, 9, 1, 2]])
    models = []
    for layers_, Input_, Model_ in ((keras.layers, keras.Input, keras.Model),
                                    (None, Input, Model)):
        inp = Input_((5,), dtype="int32")
        if layers_ is not None:
            x = layers_.Embedding(10, 4, mask_zero=True)(inp)
            x = layers_.TimeDistributed(layers_.Dense(6))(x)
            out = layers_.LSTM(3, return_sequences=True)(x)
        else:
            x = Embedding(10, 4, mask_zero=True)(inp)
            x = TimeDistributed(Dense(6))(x)
            assert x._keras_mask is not None and x._keras_mask.shape == (None, 5)
            out = LSTM(3, return_sequences=True)(x)
        models.append(Model_(inp, out))
    k_model, l_model = models
    randomize(k_model)
    l_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(np_(l_model(tokens)), np_(k_model(tokens)), atol=1e-5)
    td = TimeDistributed(Dense(2))
    y = td(torch.tensor(X), mask=torch.tensor(tokens != 0))
    assert y._keras_mask.shape == (3, 5)


def test_time_distributed_passes_training_and_mask():
    seen = {}

    class Probe(Dense):
        def call(self, inputs, training=None, mask=None):
            seen["training"], seen["mask"] = training, mask
            return super().call(inputs)

    td = TimeDistributed(Probe(2))
    mask = torch.tensor(RNG.rand(3, 5) > 0.5)
    td(torch.tensor(X), training=True, mask=mask)
    assert seen["training"] is True
    assert torch.equal(seen["mask"], mask.reshape(15))
    drop = TimeDistributed(Dropout(0.5))
    assert torch.equal(drop(torch.tensor(X)), torch.tensor(X))
    assert not torch.equal(drop(torch.tensor(X), training=True), torch.tensor(X))


def test_time_distributed_errors():
    td = TimeDistributed(Dense(3), name="frames")
    with pytest.raises(ValueError, match=r"frames.*\(2, 4\)"):
        td(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        TimeDistributed(Dense(3))(Input((4,)))
    td(X)
    with pytest.raises(ValueError, match=r"frames.*\(3, 4\)"):
        td(np.zeros((3, 4), "float32"))
    with pytest.raises(ValueError, match="mask"):
        td(torch.tensor(X), mask=torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="Layer"):
        TimeDistributed("dense")


def test_time_distributed_config_build_and_shape():
    td = TimeDistributed(Dense(3, activation="relu"))
    td.build((None, 5, 4))
    assert [w.shape for w in td.get_weights()] == [(4, 3), (3,)]
    assert td.compute_output_shape((None, 5, 4)) == (None, 5, 3)
    config = td.get_config()
    k_config = keras.layers.TimeDistributed(keras.layers.Dense(3, activation="relu")).get_config()
    assert set(config) >= set(k_config) - {"dtype"}
    assert config["layer"]["class_name"] == "Dense"
    clone = TimeDistributed.from_config(config)
    clone(X)
    clone.set_weights(td.get_weights())
    np.testing.assert_allclose(np_(clone(X)), np_(td(X)), atol=1e-6)
    for key in ("quantization_config", "dtype"):  # Dense/base-layer concerns, not the wrapper's
        k_config["layer"]["config"].pop(key, None)
    k_config.pop("dtype")
    k_loaded = TimeDistributed.from_config(k_config)  # a real Keras config loads
    assert isinstance(k_loaded.layer, Dense) and k_loaded.layer.units == 3


def test_module_exports():
    assert wrappers.Bidirectional is Bidirectional
    assert issubclass(TimeDistributed, Wrapper)
    assert set(wrappers.__all__) == {"Wrapper", "TimeDistributed", "Bidirectional"}
