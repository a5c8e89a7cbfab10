"""`LossScaleOptimizer` as in Keras: `compile()` wraps the optimizer under "mixed_float16", a
custom loop scales and unscales with it, and its state round-trips through `.keras` files both
ways; `loss_scale_factor` scales the loss in `fit` as Keras does."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lamina  # noqa: E402
from lamina.optimizers import SGD, Adam, LossScaleOptimizer  # noqa: E402

keras = pytest.importorskip("keras")

X = np.random.RandomState(0).rand(32, 4).astype("float32")
Y = X.sum(1, keepdims=True)


@pytest.fixture(autouse=True)
def float32_policies():
    yield
    lamina.mixed_precision.set_global_policy(None)
    keras.mixed_precision.set_global_policy("float32")


def mixed_model(lib):
    lib.mixed_precision.set_global_policy("mixed_float16")
    model = lib.Sequential([lib.Input((4,)), lib.layers.Dense(8, activation="relu"),
                            lib.layers.Dense(1, dtype="float32")])
    model.compile(optimizer=lib.optimizers.Adam(0.01), loss="mse")
    return model


def test_compile_wraps_the_optimizer_under_mixed_float16_as_keras_does():
    ours, theirs = mixed_model(lamina), mixed_model(keras)
    assert type(ours.optimizer).__name__ == type(theirs.optimizer).__name__ == "LossScaleOptimizer"
    assert ours.optimizer.name == theirs.optimizer.name == "loss_scale_optimizer"
    assert isinstance(ours.optimizer.inner_optimizer, Adam)
    ours.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    theirs.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    assert ([tuple(sorted(v.shape)) for v in ours.optimizer.variables]
            == [tuple(sorted(v.shape)) for v in theirs.optimizer.variables])  # 4 + Adam's 10
    assert int(ours.optimizer.iterations) == int(theirs.optimizer.iterations) == 4
    ours.optimizer.learning_rate = 0.5  # forwarded to the inner optimizer
    assert ours.optimizer.inner_optimizer.learning_rate == 0.5
    names = []
    for lib in (lamina, keras):  # a model keeps the policy it was built under, as in Keras
        mixed = lib.Sequential([lib.Input((4,)), lib.layers.Dense(1)])
        lib.mixed_precision.set_global_policy("float32")
        plain = lib.Sequential([lib.Input((4,)), lib.layers.Dense(1)])
        mixed.compile(optimizer="sgd", loss="mse")
        plain.compile(optimizer="sgd", loss="mse")
        names.append([type(mixed.optimizer).__name__, type(plain.optimizer).__name__])
        mixed.compile(optimizer="sgd", loss="mse", auto_scale_loss=False)
        names[-1].append(type(mixed.optimizer).__name__)
        lib.mixed_precision.set_global_policy("mixed_float16")
    assert names[0] == names[1] == ["LossScaleOptimizer", "SGD", "SGD"]


@pytest.mark.parametrize("reads_flag", [True, False])
def test_custom_loop_scales_unscales_skips_and_grows(reads_flag):
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = LossScaleOptimizer(SGD(0.1), initial_scale=8.0, dynamic_growth_steps=2)
    opt.build([w])
    opt._scaler.reads_flag = reads_flag  # False: the accelerators' path, put back on the device

    def step(factor):
        w.grad = None
        opt.scale_loss((w * factor).sum()).backward()
        opt.apply([w.grad], [w])

    step(torch.tensor([1.0, 3.0]))  # scaled gradient (8, 24), unscaled (1, 3)
    torch.testing.assert_close(w.detach(), torch.tensor([0.9, 1.7]))
    assert (float(opt.dynamic_scale), int(opt.step_counter)) == (8.0, 1)
    step(torch.tensor([float("inf"), 1.0]))  # skipped, the scale halves
    torch.testing.assert_close(w.detach(), torch.tensor([0.9, 1.7]))
    assert (float(opt.dynamic_scale), int(opt.variables[2]), int(opt.iterations)) == (4.0, 0, 1)
    step(torch.tensor([1.0, 1.0]))
    step(torch.tensor([1.0, 1.0]))  # two finite steps in a row double it
    torch.testing.assert_close(w.detach(), torch.tensor([0.7, 1.5]))
    assert (float(opt.dynamic_scale), int(opt.variables[2]), int(opt.iterations)) == (8.0, 0, 3)


def test_config_as_keras_writes_it():
    ours = LossScaleOptimizer(SGD(0.05), initial_scale=1024.0, name="lso")
    theirs = keras.mixed_precision.LossScaleOptimizer(keras.optimizers.SGD(0.05),
                                                     initial_scale=1024.0, name="lso")
    config = ours.get_config()
    expected = theirs.get_config()
    assert config.keys() == expected.keys()
    assert config["initial_scale"] == expected["initial_scale"] == 1024.0
    inner, expected_inner = config["inner_optimizer"]["config"], expected["inner_optimizer"]["config"]
    inner.pop("name"), expected_inner.pop("name")
    assert inner == expected_inner
    again = lamina.optimizers.deserialize(lamina.optimizers.serialize(ours))
    assert isinstance(again, LossScaleOptimizer) and again.initial_scale == 1024.0
    assert isinstance(lamina.optimizers.deserialize(keras.optimizers.serialize(theirs)),
                      LossScaleOptimizer)
    assert lamina.mixed_precision.LossScaleOptimizer is LossScaleOptimizer
    with pytest.raises(ValueError, match="does not support `clipnorm`"):
        LossScaleOptimizer(SGD(), clipnorm=1.0)


def test_optimizer_state_round_trips_through_keras_files(tmp_path):
    theirs = mixed_model(keras)
    theirs.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    path = str(tmp_path / "keras.keras")
    theirs.save(path)
    lamina.mixed_precision.set_global_policy("mixed_float16")  # as Keras, to compile the same
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped
        ours = lamina.models.load_model(path)
    assert int(ours.optimizer.iterations) == int(theirs.optimizer.iterations) == 8
    assert float(ours.optimizer.dynamic_scale) == float(theirs.optimizer.dynamic_scale)
    moment = ours.optimizer.inner_optimizer.variables[2]  # the first kernel's, torch layout
    np.testing.assert_allclose(moment.detach().numpy().T,
                               theirs.optimizer.inner_optimizer.variables[2].numpy(), rtol=1e-6)
    ours.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    back = str(tmp_path / "lamina.keras")
    ours.save(back)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reloaded = keras.models.load_model(back)
    assert int(reloaded.optimizer.iterations) == 12
    assert int(reloaded.optimizer.step_counter) == int(ours.optimizer.variables[2])
    np.testing.assert_allclose(reloaded.optimizer.inner_optimizer.variables[2].numpy(),
                               ours.optimizer.inner_optimizer.variables[2].detach().numpy().T,
                               rtol=1e-6)


def test_optimizer_state_round_trips_through_legacy_h5_files(tmp_path):
    theirs = mixed_model(keras)
    theirs.fit(X, Y, epochs=3, batch_size=8, verbose=0)
    path = str(tmp_path / "keras.h5")
    theirs.save(path)
    lamina.mixed_precision.set_global_policy("mixed_float16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = lamina.models.load_model(path)
    assert float(ours.optimizer.dynamic_scale) == float(theirs.optimizer.dynamic_scale)
    assert int(ours.optimizer.iterations) == int(theirs.optimizer.iterations)
    back = str(tmp_path / "lamina.h5")
    ours.save(back)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = lamina.models.load_model(back)
    np.testing.assert_allclose(again.optimizer.inner_optimizer.variables[3].detach().numpy(),
                               ours.optimizer.inner_optimizer.variables[3].detach().numpy())
    reloaded = keras.models.load_model(back)  # Keras's legacy reader builds no inner slots
    assert float(reloaded.optimizer.dynamic_scale) == float(theirs.optimizer.dynamic_scale)


def test_loss_scale_factor_scales_the_loss_in_fit_as_keras_does():
    x = np.arange(8, dtype="float32").reshape(4, 2) / 8
    y = np.ones((4, 1), "float32")
    weights = []
    for lib in (lamina, keras):
        model = lib.Sequential([lib.Input((2,)), lib.layers.Dense(1, kernel_initializer="ones")])
        model.compile(optimizer=lib.optimizers.SGD(0.1, loss_scale_factor=10.0), loss="mse")
        model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        weights.append(model.get_weights())
    for ours, theirs in zip(*weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    np.testing.assert_allclose(weights[0][1], [0.025], rtol=1e-6)  # 0.1 * -2 * mean(y - wx)
