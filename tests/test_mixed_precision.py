"""Mixed precision policies: float32 variables, low-precision compute, loss scaling."""
import numpy as np
import pytest
import torch

import lamina as keras
from lamina import layers, mixed_precision


@pytest.fixture(autouse=True)
def reset_policy():
    keras.backend.clear_session()
    yield
    mixed_precision.set_global_policy(None)


def test_policy_properties_and_errors():
    policy = mixed_precision.DTypePolicy("mixed_bfloat16")
    assert (policy.variable_dtype, policy.compute_dtype) == ("float32", "bfloat16")
    assert mixed_precision.DTypePolicy("float32").compute_dtype == "float32"
    with pytest.raises(ValueError, match="mixed_float16"):
        mixed_precision.set_global_policy("mixed_float8")


def test_mixed_bfloat16_computes_low_keeps_float32_weights_and_trains():
    mixed_precision.set_global_policy("mixed_bfloat16")
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"),
                              layers.Dense(1)])
    dense = model.layers[0]
    assert dense.kernel.dtype == torch.float32 and dense.compute_dtype == "bfloat16"
    assert model(np.ones((2, 4), "float32")).dtype == torch.bfloat16
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    x = np.random.rand(64, 4).astype("float32")
    y = x.sum(1, keepdims=True)
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert dense.kernel.dtype == torch.float32
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.predict(x[:3], verbose=0).dtype == np.float32  # numpy has no bfloat16


def test_loss_scaler_skips_overflowing_steps_and_halves_the_scale():
    param = torch.nn.Parameter(torch.ones(3))
    scaler = mixed_precision.LossScaler("cpu", initial_scale=8.0)
    param.grad = torch.tensor([8.0, 16.0, 24.0])
    assert scaler.unscale([param])
    torch.testing.assert_close(param.grad, torch.tensor([1.0, 2.0, 3.0]))
    param.grad = torch.tensor([float("inf"), 1.0, 1.0])
    assert not scaler.unscale([param])
    assert float(scaler.scale) == 4.0
