"""Helpers for tests that build the same model in real Keras and in lamina and compare them."""
import h5py
import numpy as np
import torch

import lamina

RTOL, ATOL = 1e-5, 1e-6


def to_numpy(x):
    """A lamina or Keras (torch backend) tensor, variable or array as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_close(ours, theirs, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=rtol, atol=atol)


def fresh(keras):
    keras.backend.clear_session()
    lamina.backend.clear_session()


def mlp(K):
    """A small MLP, built by `K` (the `keras` or the `lamina` module)."""
    return K.Sequential([K.Input((4,)), K.layers.Dense(5, activation="relu"), K.layers.Dense(2)])


def seed_model(K, lstm):
    """The multi-input/multi-output model of the Keras functional guide, scaled down."""
    main_input = K.Input(shape=(10,), dtype="int32", name="main_input")
    x = K.layers.Embedding(output_dim=8, input_dim=50)(main_input)
    lstm_out = lstm(4)(x)
    aux_out = K.layers.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    aux_in = K.Input(shape=(5,), name="aux_input")
    x = K.layers.concatenate([lstm_out, aux_in])
    for _ in range(3):
        x = K.layers.Dense(6, activation="relu")(x)
    main_out = K.layers.Dense(1, activation="sigmoid", name="main_output")(x)
    return K.Model([main_input, aux_in], [main_out, aux_out])


def cnn(K, conv, bn, pool):
    """Conv -> BatchNormalization -> relu -> pooling -> Dense, from the given layer classes."""
    return K.Sequential([K.Input((8, 8, 3)), conv(4, 3, padding="same"), bn(),
                         K.layers.Activation("relu"), pool(), K.layers.Flatten(),
                         K.layers.Dense(2)])


def build_pair(keras, keras_fn, lamina_fn, **kwargs):
    """The Keras model and the lamina model from the same arguments, both with fresh names."""
    fresh(keras)
    km = keras_fn(weights=None, **kwargs)
    fresh(keras)
    lm = lamina_fn(weights=None, **kwargs)
    return km, lm


def assert_same_structure(km, lm, lamina_layers=None):
    assert lm.name == km.name
    assert ([(l.name, type(l).__name__) for l in (lamina_layers or lm.layers)]
            == [(l.name, type(l).__name__) for l in km.layers])
    assert lm.count_params() == km.count_params()
    assert [w.shape for w in lm.get_weights()] == [tuple(w.shape) for w in km.get_weights()]


def random_statistics(km, seed=0):
    """Keras's weights with non-trivial normalization statistics, gammas and betas."""
    rng = np.random.RandomState(seed)
    out = []
    for w, v in zip(km.get_weights(), km.weights):
        if v.path.endswith("variance") or v.path.endswith("gamma"):
            w = rng.uniform(0.5, 1.5, size=w.shape).astype("float32")
        elif v.path.endswith("mean") or v.path.endswith("beta"):
            w = rng.normal(0.0, 0.1, size=w.shape).astype("float32")
        out.append(w)
    return out


def save_legacy_h5(km, path):
    """A weights file in Keras 2's layout, written by real Keras."""
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, km)
