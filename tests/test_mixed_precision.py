"""Mixed precision policies: float32 variables, low-precision compute, loss scaling."""
import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import lamina as keras
from lamina import layers, mixed_precision

from compiled_runs import eager_and_compiled_losses


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


@pytest.mark.parametrize("pack", [list, tuple])
def test_merge_layer_casts_each_input_of_its_list_keeping_masks(pack):
    """A merge layer takes one list (or tuple) of tensors: under a mixed policy each floating
    input is cast to the compute dtype, its mask kept; integer inputs stay as they are."""
    mixed_precision.set_global_policy("mixed_bfloat16")
    a, b = torch.full((2, 3), 1.5), torch.full((2, 3), 2.25, dtype=torch.bfloat16)
    a._keras_mask, b._keras_mask = torch.tensor([True, False]), torch.tensor([False, False])
    added = layers.Add()(pack([a, b]))
    assert added.dtype == torch.bfloat16
    np.testing.assert_array_equal(added.float().numpy(), np.full((2, 3), 3.75))
    np.testing.assert_array_equal(added._keras_mask.numpy(), [True, False])
    ints = torch.arange(6).reshape(2, 3)
    joined = layers.Concatenate()(pack([ints, ints]))
    assert joined.dtype == torch.int64 and joined.tolist() == [[0, 1, 2, 0, 1, 2],
                                                             [3, 4, 5, 3, 4, 5]]


@pytest.mark.parametrize("reads_flag", [True, False])
def test_loss_scaler_step_unscales_and_skips_an_overflowing_update(reads_flag):
    param = torch.nn.Parameter(torch.ones(2))
    state = torch.zeros(2)
    scaler = mixed_precision.LossScaler("cpu", initial_scale=4.0, growth_interval=2)
    assert scaler.reads_flag
    scaler.reads_flag = reads_flag  # False: the accelerators' path, undone on the device

    def update():
        state.add_(param.grad)
        param.data.sub_(param.grad)

    def step(grad):
        param.grad = torch.tensor(grad)
        scaler.step([param.grad], update, [param, state])

    step([4.0, 8.0])
    torch.testing.assert_close(param.grad, torch.tensor([1.0, 2.0]))  # unscaled in place
    torch.testing.assert_close(param.data, torch.tensor([0.0, -1.0]))
    torch.testing.assert_close(state, torch.tensor([1.0, 2.0]))
    step([float("nan"), 1.0])
    torch.testing.assert_close(param.data, torch.tensor([0.0, -1.0]))  # skipped
    torch.testing.assert_close(state, torch.tensor([1.0, 2.0]))
    assert float(scaler.scale) == 2.0 and int(scaler.growth_tracker) == 0
    for _ in range(2):  # two finite steps in a row double the scale
        step([2.0, 2.0])
    assert float(scaler.scale) == 4.0 and int(scaler.growth_tracker) == 0
    torch.testing.assert_close(param.data, torch.tensor([-2.0, -3.0]))


class _Kernels(TorchDispatchMode):
    """Counts the ops that may launch a kernel (views only make metadata)."""
    VIEWS = {"aten::view", "aten::narrow", "aten::slice", "aten::detach", "aten::alias",
             "aten::reshape", "aten::_reshape_alias", "aten::as_strided",
             "aten::split_with_sizes"}

    def __enter__(self):
        self.count, self.copied = 0, []
        return super().__enter__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func._schema.name not in self.VIEWS
        if func._schema.name == "aten::_foreach_copy_":
            self.copied += list(args[0]) + list(args[1])
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("finite", [True, False])
def test_accelerator_put_back_is_exact_and_a_few_kernels_whatever_the_variable_count(finite):
    """The accelerators' skip (`reads_flag` False): the update always runs and is undone on
    overflow with one flat copy per dtype, not two kernels per variable. Channels-last conv
    kernels and transposed weights are read and written in place, flat, and the copy back gets
    only contiguous tensors, the ones CUDA's fused multi-tensor copy takes."""
    weights = [torch.randn(3, 2) for _ in range(40)] + [torch.randn(5), torch.randn(4, 3).t()]
    kernels = [torch.randn(8, 3, 3, 3).contiguous(memory_format=torch.channels_last)
               for _ in range(10)]
    halves = [torch.randn(4).half() for _ in range(10)]
    step = torch.tensor(7)  # alone in its dtype
    variables = weights + kernels + halves + [step]
    before = [v.clone() for v in variables]

    def update():  # what an overflowing update leaves: non-finite values everywhere
        torch._foreach_add_(weights + kernels, float("nan"))
        torch._foreach_mul_(halves, float("inf"))
        step.add_(1)

    flag = torch.tensor(finite)
    with _Kernels() as launched:
        mixed_precision._run_and_put_back_unless(flag, update, variables)
    assert launched.count <= 3 + 4 * 3  # the update's 3, then per dtype: cat, cat, where, copy
    assert launched.copied and all(t.is_contiguous() for t in launched.copied)
    for old, new in zip(before, variables):
        assert new.stride() == old.stride()
        if finite:
            assert not torch.equal(old, new)
        else:
            torch.testing.assert_close(new, old, rtol=0, atol=0)


def test_accelerator_put_back_restores_a_variable_that_is_a_strided_view():
    storage = torch.randn(4, 6)
    strided = storage[:, ::2]  # not one block of memory: copied rather than viewed flat
    dense = torch.randn(3)
    before = strided.clone(), dense.clone(), storage[:, 1::2].clone()

    def update():
        strided.fill_(float("nan"))
        dense.fill_(float("nan"))

    mixed_precision._run_and_put_back_unless(torch.tensor(False), update, [strided, dense])
    for old, new in zip(before, (strided, dense, storage[:, 1::2])):
        torch.testing.assert_close(new, old, rtol=0, atol=0)


def test_eager_mixed_float16_step_on_an_accelerator_reads_nothing_on_the_host():
    """Where reading the overflow flag would wait for the device, an overflowing eager step is
    undone on the device instead (run here on the CPU with the accelerators' setting)."""
    mixed_precision.set_global_policy("mixed_float16")
    x = torch.rand(16, 4)
    y = 1e4 * x.sum(1, keepdim=True)  # overflows float16 gradients at the initial scale
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.optimizer._scaler.reads_flag = False
    before = [w.copy() for w in model.get_weights()]
    iterations = int(model.optimizer.iterations)

    class HostReads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            HostReads.count += func is torch.ops.aten._local_scalar_dense.default
            return func(*args, **(kwargs or {}))

    with HostReads():
        model._trainer.train_step(x, y, None)
    assert HostReads.count == 0
    assert int(model.optimizer.iterations) == iterations  # skipped: weights and state put back
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


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
    scale = float(jit.optimizer.dynamic_scale)
    assert scale == float(eager.optimizer.dynamic_scale) < 2.0 ** 15
    skipped = 8 - int(jit.optimizer.iterations)
    assert skipped == 8 - int(eager.optimizer.iterations) == 15 - int(np.log2(scale)) > 0
    for a, b in zip(eager.get_weights(), jit.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_jit_mixed_float16_convnet_is_one_graph_as_eager():
    """Convolution kernels are stored channels-last: the compiled put-back of an overflowing
    step copies into them (an `out=` tensor that is not contiguous stops dynamo)."""
    mixed_precision.set_global_policy("mixed_float16")
    rng = np.random.RandomState(0)
    x, y = rng.rand(32, 8, 8, 3).astype("float32"), rng.randint(0, 3, 32)

    def build():
        return keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, activation="relu"),
                                 layers.Flatten(), layers.Dense(3, activation="softmax")])

    eager, compiled, graphs = eager_and_compiled_losses(
        build, x, y, lambda: keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    assert graphs == 1
    np.testing.assert_allclose(compiled, eager, rtol=1e-3)
