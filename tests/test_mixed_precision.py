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


def test_loss_scaler_in_graph_step_puts_back_an_overflowing_update():
    param = torch.nn.Parameter(torch.ones(2))
    state = torch.zeros(2)
    scaler = mixed_precision.LossScaler("cpu", initial_scale=4.0, growth_interval=2)

    def update(grads):
        state.add_(grads[0])
        param.data.sub_(grads[0])

    scaler.apply_if_finite([torch.tensor([4.0, 8.0])], update, [param, state])
    torch.testing.assert_close(param.data, torch.tensor([0.0, -1.0]))  # the gradient / 4
    torch.testing.assert_close(state, torch.tensor([1.0, 2.0]))
    scaler.apply_if_finite([torch.tensor([float("nan"), 1.0])], update, [param, state])
    torch.testing.assert_close(param.data, torch.tensor([0.0, -1.0]))  # put back
    torch.testing.assert_close(state, torch.tensor([1.0, 2.0]))
    assert float(scaler.scale) == 2.0 and int(scaler.growth_tracker) == 0
    for _ in range(2):  # two finite steps in a row double the scale
        scaler.apply_if_finite([torch.tensor([2.0, 2.0])], update, [param, state])
    assert float(scaler.scale) == 4.0 and int(scaler.growth_tracker) == 0


def test_jit_mixed_float16_is_one_graph_and_skips_overflows_as_eager_does():
    mixed_precision.set_global_policy("mixed_float16")
    x = np.random.RandomState(0).rand(64, 4).astype("float32")
    y = 100 * x.sum(1, keepdims=True)  # a float16 gradient overflows at the initial scale
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"),
                                  layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse", jit_compile=jit)
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        history = model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        runs.append((model, history.history["loss"], graphs))
    (eager, eager_loss, _), (jit, jit_loss, graphs) = runs
    assert graphs == 1
    np.testing.assert_allclose(jit_loss, eager_loss, rtol=1e-4)
    scale = float(jit._trainer._scaler.scale)
    assert scale == float(eager._trainer._scaler.scale) < 2.0 ** 15
    skipped = 8 - int(jit.optimizer.iterations)
    assert skipped == 8 - int(eager.optimizer.iterations) == 15 - int(np.log2(scale)) > 0
    for a, b in zip(eager.get_weights(), jit.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
