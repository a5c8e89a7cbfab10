"""`predict` runs cache-sized forward passes on the CPU (large batches split, small ones joined),
with the same outputs and the same batches for callbacks."""
import numpy as np
import pytest
import torch

import lamina as keras
from lamina import layers
from lamina.training import rebatch

CPU = torch.device("cpu")


def convnet():
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                             layers.MaxPooling2D(2), layers.Flatten(),
                             layers.Dense(10, activation="softmax")])


def record_passes(monkeypatch, model):
    """The batch size of every forward pass `model` runs from now on."""
    sizes, original = [], type(model).__call__

    def call(self, *args, **kwargs):
        if self is model:
            sizes.append(int(args[0].shape[0]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(model), "__call__", call)
    return sizes


def test_chunk_is_the_largest_power_of_two_within_the_budget():
    # largest output: Conv2D's 26 x 26 x 32 float32 = 86,528 bytes per sample;
    # 16 MiB / 86,528 = 193.9 -> 128.
    assert rebatch.chunk_size(convnet(), CPU) == 128
    mlp = keras.Sequential([keras.Input((784,)), layers.Dense(64), layers.Dense(10)])
    assert rebatch.chunk_size(mlp, CPU) == 4096  # 16 MiB / (784 * 4) = 5349.9
    mlp.add(layers.Dense(8192))  # worked out once per graph: a changed Sequential has a new one
    assert rebatch.chunk_size(mlp, CPU) == 512  # 16 MiB / (8192 * 4)
    mlp.add(layers.Lambda(lambda t: t - t.mean(0)))
    assert rebatch.chunk_size(mlp, CPU) is None
    assert rebatch.chunk_size(convnet(), torch.device("cuda")) is None


def test_nested_models_count_their_inner_activations():
    inner = keras.Sequential([keras.Input((8,)), layers.Dense(1024), layers.Dense(2)])
    inputs = keras.Input((8,))
    model = keras.Model(inputs, layers.Dense(3)(inner(inputs)))
    assert rebatch._largest_activation(model) == 1024 * 4


def test_models_that_may_mix_samples_are_not_split():
    inputs = keras.Input((4,))
    with_lambda = keras.Model(inputs, layers.Lambda(lambda t: t - t.mean(0))(inputs))
    assert rebatch.chunk_size(with_lambda, CPU) is None

    class Custom(layers.Layer):
        def call(self, x):
            return x - x.mean(0)

    inputs = keras.Input((4,))
    assert rebatch.chunk_size(keras.Model(inputs, Custom()(inputs)), CPU) is None
    unknown_length = keras.Sequential([keras.Input((None, 3)), layers.Dense(2)])
    assert rebatch.chunk_size(unknown_length, CPU) is None
    stateful = keras.Sequential([keras.Input((5, 3), batch_size=4),
                                 layers.LSTM(2, stateful=True)])
    assert rebatch.chunk_size(stateful, CPU) is None


def test_predict_in_chunks_gives_the_whole_batch_outputs(monkeypatch):
    inputs = keras.Input((28, 28, 1))
    features = layers.Flatten()(layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, {"probs": layers.Dense(3, activation="softmax")(features),
                                 "raw": layers.Dense(2)(features)})
    x = np.random.RandomState(0).rand(50, 28, 28, 1).astype("float32")
    whole = model.predict(x, batch_size=50, verbose=0)
    monkeypatch.setattr(rebatch, "BUDGET", 8 * 26 * 26 * 4 * 4)  # 8 samples per chunk
    calls = record_passes(monkeypatch, model)
    chunked = model.predict(x, batch_size=50, verbose=0)
    assert calls == [8] * 6 + [2]
    assert sorted(chunked) == ["probs", "raw"]
    for key in whole:
        assert chunked[key].shape == whole[key].shape
        np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_batches_within_the_chunk_run_whole(batch_size):
    model = convnet()
    x = np.random.RandomState(1).rand(batch_size, 28, 28, 1).astype("float32")
    out = model.predict(x, verbose=0)
    np.testing.assert_allclose(out, model(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_small_batches_are_joined_and_callbacks_still_see_each_batch(monkeypatch):
    model = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="relu"),
                              layers.Dense(2, activation="softmax")])
    x = np.random.RandomState(2).rand(100, 6).astype("float32")
    seen = []

    class Outputs(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append((batch, np.array(logs["outputs"])))

    monkeypatch.setattr(rebatch, "BUDGET", 32 * 6 * 4)  # 32 samples of 6 float32 inputs
    assert rebatch.chunk_size(model, CPU) == 32
    passes = record_passes(monkeypatch, model)
    out = model.predict(x, batch_size=8, verbose=0, callbacks=[Outputs()])
    monkeypatch.undo()
    assert passes == [32, 32, 32, 4]
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert [batch for batch, _ in seen] == list(range(13))
    assert [len(o) for _, o in seen] == [8] * 12 + [4]
    np.testing.assert_allclose(np.concatenate([o for _, o in seen]), expected, rtol=1e-5,
                               atol=1e-6)
