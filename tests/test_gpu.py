"""On a CUDA device: placement, training, mixed precision, jit and saving agree with the CPU.

Skipped where torch sees no GPU (CI); run on a GPU machine with `pytest tests/test_gpu.py`
(the rest of the suite stays on the CPU there, see conftest.py).
"""
import numpy as np
import pytest
import torch

import lamina as keras
from lamina import layers, mixed_precision

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def fresh_session():
    keras.backend.set_device("cuda")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    mixed_precision.set_global_policy(None)
    keras.backend.set_device(None)


def convnet():
    return keras.Sequential([keras.Input((12, 12, 3)), layers.Conv2D(8, 3, activation="relu"),
                             layers.BatchNormalization(), layers.MaxPooling2D(2),
                             layers.Flatten(), layers.Dense(4, activation="softmax")])


def data(n=64):
    rng = np.random.RandomState(0)
    return rng.rand(n, 12, 12, 3).astype("float32"), rng.randint(0, 4, n)


def on_cpu(build, weights):
    keras.backend.set_device("cpu")
    model = build()
    model.set_weights(weights)
    keras.backend.set_device("cuda")
    return model


def test_weights_live_on_the_gpu_and_predictions_match_the_cpu():
    model = convnet()
    assert all(w.device.type == "cuda" for w in model.parameters())
    x, _ = data()
    gpu = model.predict(x, verbose=0)
    assert isinstance(gpu, np.ndarray)
    cpu = on_cpu(convnet, model.get_weights()).predict(x, verbose=0)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)  # cuDNN may use TF32 for convolutions


def test_fit_from_numpy_and_from_gpu_tensors_trains():
    x, y = data()
    for inputs in ((x, y), (torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda())):
        keras.backend.clear_session()
        model = convnet()
        model.compile(optimizer=keras.optimizers.Adam(0.01),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(*inputs, batch_size=16, epochs=8, verbose=0).history
        assert history["loss"][-1] < 0.7 * history["loss"][0]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_float32_weights(policy):
    mixed_precision.set_global_policy(policy)
    model = convnet()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    x, y = data()
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0).history
    assert all(w.dtype == torch.float32 for w in model.parameters())
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < 0.7 * history["loss"][0]


@pytest.mark.parametrize("policy,jit", [(None, False), ("mixed_float16", False),
                                        ("mixed_float16", True)])
def test_train_steps_never_wait_for_the_gpu(policy, jit):
    """No host read per step: CUDA raises on any synchronizing call in sync-debug mode."""
    mixed_precision.set_global_policy(policy)
    model = convnet()
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), jit_compile=jit,
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    batch = torch.from_numpy(x[:16]).cuda(), torch.from_numpy(y[:16]).cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            model._trainer.train_step(*batch, None)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_jit_compile_matches_eager_on_the_gpu_replaying_one_cuda_graph_per_step():
    """The whole compiled step, metrics, momentum and moving statistics included, runs as a
    CUDA graph (recorded once, no skip) and trains as the eager step does."""
    from torch._dynamo.utils import counters
    x, y = data()
    results, before = [], dict(counters["inductor"])
    for jit in (False, True):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((12, 12, 3)), layers.Flatten(),
                                  layers.Dense(16, activation="relu"),
                                  layers.BatchNormalization(), layers.Dense(4)])
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), jit_compile=jit,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
        results.append((model.get_weights(), history["loss"] + history["accuracy"]))
    (eager, eager_logs), (compiled, compiled_logs) = results
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(b, a, atol=1e-4)
    np.testing.assert_allclose(compiled_logs, eager_logs, atol=1e-4)
    assert counters["inductor"]["cudagraph_skips"] == before.get("cudagraph_skips", 0)
    recorded = counters["inductor"]["cudagraph_recorded_non_static_inputs"]
    assert recorded > before.get("cudagraph_recorded_non_static_inputs", 0)


def test_lstm_on_cudnn_matches_the_cpu():
    def build():
        return keras.Sequential([keras.Input((20, 5)), layers.LSTM(7, return_sequences=True),
                                 layers.GRU(3)])
    model = build()
    x = np.random.RandomState(1).rand(4, 20, 5).astype("float32")
    cpu = on_cpu(build, model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), cpu.predict(x, verbose=0), atol=1e-4)


def test_saved_gpu_model_loads_with_the_same_predictions(tmp_path):
    model = convnet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        loaded = keras.models.load_model(tmp_path / name)
        assert next(loaded.parameters()).device.type == "cuda"
        np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                                   atol=1e-6)
