"""lamina.optimizers against real Keras 3 (torch backend) and numpy hand computations."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import warnings

import numpy as np
import pytest
import torch

from lamina import optimizers
from lamina.optimizers import adam, schedules

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-6
SHAPES = [(3, 4), (4,)]


def _data(steps=5, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype("float32") for s in SHAPES]
    grads = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(steps)]
    return init, grads


def _run_lamina(opt, init, grads):
    params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    for step_grads in grads:
        opt.apply_gradients(zip([torch.tensor(g) for g in step_grads], params))
    return [p.detach().numpy() for p in params], opt


def _run_keras(opt, init, grads):
    variables = [keras.Variable(w) for w in init]
    for step_grads in grads:
        opt.apply_gradients(zip([torch.tensor(g) for g in step_grads], variables))
    return [keras.ops.convert_to_numpy(v) for v in variables], opt


# (class name, kwargs builder): builders take the schedules module so each side gets its own.
CASES = {
    "sgd": ("SGD", lambda s: {}),
    "sgd_lr": ("SGD", lambda s: {"learning_rate": 0.1}),
    "sgd_momentum": ("SGD", lambda s: {"learning_rate": 0.1, "momentum": 0.9}),
    "sgd_nesterov": ("SGD", lambda s: {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    "rmsprop": ("RMSprop", lambda s: {"learning_rate": 0.01}),
    "rmsprop_momentum": ("RMSprop", lambda s: {"learning_rate": 0.01, "momentum": 0.9}),
    "rmsprop_centered": ("RMSprop", lambda s: {"learning_rate": 0.01, "centered": True}),
    "rmsprop_centered_momentum": ("RMSprop", lambda s: {"learning_rate": 0.01, "centered": True,
                                                        "momentum": 0.5, "rho": 0.8}),
    "adam": ("Adam", lambda s: {}),
    "adam_lr": ("Adam", lambda s: {"learning_rate": 0.05, "beta_1": 0.8}),
    "adam_amsgrad": ("Adam", lambda s: {"learning_rate": 0.05, "amsgrad": True}),
    "adamw": ("AdamW", lambda s: {"learning_rate": 0.05}),
    "adamw_amsgrad": ("AdamW", lambda s: {"learning_rate": 0.05, "weight_decay": 0.1,
                                          "amsgrad": True}),
    "adagrad": ("Adagrad", lambda s: {"learning_rate": 0.1}),
    "adagrad_init": ("Adagrad", lambda s: {"learning_rate": 0.1,
                                           "initial_accumulator_value": 0.5}),
    "adadelta": ("Adadelta", lambda s: {"learning_rate": 1.0}),
    "adamax": ("Adamax", lambda s: {"learning_rate": 0.05}),
    "nadam": ("Nadam", lambda s: {"learning_rate": 0.05}),
    "nadam_default": ("Nadam", lambda s: {}),
    # A large epsilon makes its placement (inside or outside the square root) visible.
    "rmsprop_eps": ("RMSprop", lambda s: {"learning_rate": 0.05, "epsilon": 0.5}),
    "adam_eps": ("Adam", lambda s: {"learning_rate": 0.05, "epsilon": 0.5}),
    "adagrad_eps": ("Adagrad", lambda s: {"learning_rate": 0.1, "epsilon": 0.5}),
    "adadelta_eps": ("Adadelta", lambda s: {"learning_rate": 1.0, "epsilon": 0.01, "rho": 0.5}),
    "adamax_eps": ("Adamax", lambda s: {"learning_rate": 0.05, "epsilon": 0.5}),
    "nadam_eps": ("Nadam", lambda s: {"learning_rate": 0.05, "epsilon": 0.5, "beta_1": 0.8}),
    "adam_clipnorm": ("Adam", lambda s: {"learning_rate": 0.05, "clipnorm": 0.5}),
    "sgd_clipnorm": ("SGD", lambda s: {"learning_rate": 0.1, "clipnorm": 0.5}),
    "sgd_clipvalue": ("SGD", lambda s: {"learning_rate": 0.1, "clipvalue": 0.3}),
    "sgd_global_clipnorm": ("SGD", lambda s: {"learning_rate": 0.1, "global_clipnorm": 0.7}),
    "rmsprop_global_clipnorm": ("RMSprop", lambda s: {"learning_rate": 0.01,
                                                      "global_clipnorm": 0.7}),
    "sgd_weight_decay": ("SGD", lambda s: {"learning_rate": 0.1, "momentum": 0.5,
                                           "weight_decay": 0.05}),
    "adam_weight_decay": ("Adam", lambda s: {"learning_rate": 0.05, "weight_decay": 0.1}),
    "sgd_loss_scale": ("SGD", lambda s: {"learning_rate": 0.1, "loss_scale_factor": 4.0}),
    "sgd_exponential": ("SGD", lambda s: {
        "learning_rate": s.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5),
        "momentum": 0.5}),
    "adam_cosine_warmup": ("Adam", lambda s: {
        "learning_rate": s.CosineDecay(0.01, decay_steps=3, warmup_target=0.05, warmup_steps=2),
        "weight_decay": 0.1}),
    "rmsprop_piecewise": ("RMSprop", lambda s: {
        "learning_rate": s.PiecewiseConstantDecay([1, 3], [0.05, 0.01, 0.001])}),
    "adagrad_inverse_time": ("Adagrad", lambda s: {
        "learning_rate": s.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)}),
    "nadam_polynomial": ("Nadam", lambda s: {
        "learning_rate": s.PolynomialDecay(0.05, decay_steps=4, power=2.0)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras(case):
    class_name, make_kwargs = CASES[case]
    init, grads = _data()
    ours, opt = _run_lamina(getattr(optimizers, class_name)(**make_kwargs(schedules)), init, grads)
    theirs, kopt = _run_keras(getattr(keras.optimizers, class_name)(
        **make_kwargs(keras.optimizers.schedules)), init, grads)
    for a, b, w0 in zip(ours, theirs, init):
        assert not np.allclose(b, w0, rtol=0, atol=1e-4)  # the weights really moved
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    # Same optimizer variables, in the same (Keras) order.
    kvars = [keras.ops.convert_to_numpy(v) for v in kopt.variables]
    assert len(opt.variables) == len(kvars)
    for a, b in zip(opt.variables, kvars):
        np.testing.assert_allclose(a.detach().numpy(), b, rtol=RTOL, atol=ATOL)
    assert int(opt.iterations) == 5
    np.testing.assert_allclose(opt.learning_rate, float(kopt.learning_rate), rtol=1e-6)


@pytest.mark.parametrize("case", ["adam", "adam_amsgrad", "adamw_amsgrad", "adam_eps",
                                  "adam_weight_decay", "adam_cosine_warmup"])
def test_adam_fused_cpu_kernel_and_foreach_path_agree(case, monkeypatch):
    """Eager CPU updates go through torch's fused kernel, device ones through foreach ops."""
    class_name, make_kwargs = CASES[case]
    init, grads = _data()
    calls = []
    fused = adam.Adam._fused_update

    def counting(self, *args):
        calls.append(1)
        return fused(self, *args)

    monkeypatch.setattr(adam.Adam, "_fused_update", counting)
    with_kernel, _ = _run_lamina(getattr(optimizers, class_name)(**make_kwargs(schedules)),
                                 init, grads)
    assert len(calls) == 5
    monkeypatch.setattr(adam, "_fused_on_cpu", lambda params, grads: False)
    with_foreach, _ = _run_lamina(getattr(optimizers, class_name)(**make_kwargs(schedules)),
                                  init, grads)
    assert len(calls) == 5
    for a, b in zip(with_kernel, with_foreach):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("class_name,kwargs", [
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"learning_rate": 0.05, "weight_decay": 0.1}),
    ("Nadam", {"learning_rate": 0.05}),
])
def test_float64_weights_match_keras(class_name, kwargs):
    init, grads = _data()
    init = [w.astype("float64") for w in init]
    grads = [[g.astype("float64") for g in step] for step in grads]
    ours, opt = _run_lamina(getattr(optimizers, class_name)(**kwargs), init, grads)
    theirs, _ = _run_keras(getattr(keras.optimizers, class_name)(**kwargs), init, grads)
    assert all(v.dtype == torch.float64 for v in opt.variables[2:2 + len(init)])
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", ["sgd_momentum", "rmsprop_centered_momentum", "adam_amsgrad",
                                  "adamw", "nadam", "adam_cosine_warmup", "adadelta"])
def test_config_matches_keras(case):
    class_name, make_kwargs = CASES[case]
    ours = getattr(optimizers, class_name)(**make_kwargs(schedules), name="opt")
    theirs = getattr(keras.optimizers, class_name)(**make_kwargs(keras.optimizers.schedules),
                                                   name="opt")
    assert ours.get_config() == theirs.get_config()
    # A config written by Keras rebuilds the same optimizer here, and back.
    rebuilt = getattr(optimizers, class_name).from_config(theirs.get_config())
    assert rebuilt.get_config() == theirs.get_config()


def test_default_hyperparameters_match_keras():
    for name in optimizers.ALL_OBJECTS_DICT:
        if name in ("optimizer", "lossscaleoptimizer"):  # no defaults: a base, a wrapper
            continue
        ours = optimizers.get(name).get_config()
        theirs = keras.optimizers.get(name).get_config()
        ours.pop("name"), theirs.pop("name")
        assert ours == theirs, name


def test_sgd_momentum_hand_computed():
    w0, g1, g2 = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -1.0]), np.array([1.0, 0.0, 2.0])
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    opt.apply_gradients([(torch.tensor(g1, dtype=torch.float32), w)])
    v = -0.1 * g1
    np.testing.assert_allclose(w.detach().numpy(), w0 + v, rtol=1e-6)
    opt.apply_gradients([(torch.tensor(g2, dtype=torch.float32), w)])
    v = 0.9 * v - 0.1 * g2
    np.testing.assert_allclose(w.detach().numpy(), w0 - 0.1 * g1 + v, rtol=1e-6)


def test_adam_hand_computed():
    w0, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, 1e-3, -4.0])
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-7
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    optimizers.Adam(learning_rate=lr).apply_gradients([(torch.tensor(g, dtype=torch.float32), w)])
    m, v = (1 - b1) * g, (1 - b2) * g ** 2
    alpha = lr * np.sqrt(1 - b2) / (1 - b1)
    np.testing.assert_allclose(w.detach().numpy(), w0 - alpha * m / (np.sqrt(v) + eps), rtol=1e-6)


def test_nadam_and_adagrad_hand_computed():
    w0, g = np.array([1.0, -2.0]), np.array([0.5, -3.0])
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    optimizers.Adagrad(learning_rate=0.1).apply_gradients([(torch.tensor(g).float(), w)])
    expected = w0 - 0.1 * g / np.sqrt(0.1 + g ** 2 + 1e-7)
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6)

    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    optimizers.Nadam(learning_rate=0.1).apply_gradients([(torch.tensor(g).float(), w)])
    u1, u2 = 0.9 * (1 - 0.5 * 0.96), 0.9 * (1 - 0.5 * 0.96 ** 2)
    m, v = 0.1 * g, 0.001 * g ** 2
    m_hat = u2 * m / (1 - u1 * u2) + (1 - u1) * g / (1 - u1)
    expected = w0 - 0.1 * m_hat / (np.sqrt(v / 0.001) + 1e-7)
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=1e-6)


def test_learning_rate_takes_keras_variable_calls():
    """`assign` and `numpy()`, as on Keras's learning-rate variable."""
    values = []
    for opt in (optimizers.Adam(0.1), keras.optimizers.Adam(0.1)):
        opt.learning_rate.assign(0.25)
        lr = opt.learning_rate
        values.append((float(lr), lr.numpy().dtype, float(lr.numpy() * 2)))
    assert values[0] == values[1] == (0.25, np.float32, 0.5)
    w = torch.nn.Parameter(torch.zeros(1))
    opt = optimizers.SGD(0.1)
    opt.learning_rate.assign(0.5)
    opt.apply_gradients([(torch.ones(1), w)])
    np.testing.assert_allclose(w.detach().numpy(), [-0.5])


def test_learning_rate_setter_takes_effect_next_step():
    w = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.SGD(learning_rate=0.1)
    g = torch.tensor([1.0, -2.0])
    opt.apply_gradients([(g, w)])
    np.testing.assert_allclose(w.detach().numpy(), [-0.1, 0.2], rtol=1e-6)
    lr_tensor = opt._learning_rate_tensor
    opt.learning_rate = 0.5
    assert opt._learning_rate_tensor is lr_tensor  # updated in place
    assert isinstance(opt.learning_rate, float) and opt.learning_rate == 0.5
    opt.apply_gradients([(g, w)])
    np.testing.assert_allclose(w.detach().numpy(), [-0.6, 1.2], rtol=1e-6)
    # A schedule may replace the constant; a constant may not replace a schedule.
    opt.learning_rate = schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
    assert opt.learning_rate == pytest.approx(0.25)  # iterations == 2
    opt.apply_gradients([(g, w)])
    np.testing.assert_allclose(w.detach().numpy(), [-0.85, 1.7], rtol=1e-6)
    assert opt.learning_rate == pytest.approx(0.125)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1
    # A zero-argument callable is read at every step.
    value = {"lr": 0.2}
    opt2 = optimizers.SGD(learning_rate=lambda: value["lr"])
    w2 = torch.nn.Parameter(torch.zeros(1))
    opt2.apply_gradients([(torch.ones(1), w2)])
    value["lr"] = 1.0
    opt2.apply_gradients([(torch.ones(1), w2)])
    np.testing.assert_allclose(w2.detach().numpy(), [-1.2], rtol=1e-6)
    assert opt2.learning_rate == 1.0


def test_iterations_counts_steps():
    w = torch.nn.Parameter(torch.ones(2))
    opt = optimizers.Adam()
    assert opt.iterations.dtype == torch.int64 and opt.iterations.dim() == 0
    assert int(opt.iterations) == 0
    for k in range(1, 4):
        returned = opt.apply_gradients([(torch.ones(2), w)])
        assert returned is opt.iterations and int(opt.iterations) == k
    opt.apply_gradients([])  # no gradients: nothing happens
    assert int(opt.iterations) == 3


def test_step_reads_grad_and_skips_none():
    init, grads = _data(steps=2)
    a = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    b = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    opt_a, opt_b = optimizers.Adam(0.05), optimizers.Adam(0.05)
    opt_a.build(a)
    opt_a.build(a)  # idempotent
    assert len(opt_a.variables) == 2 + 2 * len(a)
    for step_grads in grads:
        for p, g in zip(a, step_grads):
            p.grad = torch.tensor(g)
        opt_a.step()
        opt_a.zero_grad()
        assert all(p.grad is None for p in a)
        opt_b.apply_gradients(zip([torch.tensor(g) for g in step_grads], b))
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # The parameter without a gradient is left alone, slots included.
    before = [t.clone() for t in opt_a.variables]
    a[0].grad = torch.ones(SHAPES[0])
    frozen = a[1].detach().clone()
    opt_a.step()
    torch.testing.assert_close(a[1].detach(), frozen, rtol=0, atol=0)
    after = opt_a.variables
    assert not torch.equal(before[2], after[2])  # a[0] momentum moved
    assert torch.equal(before[4], after[4]) and torch.equal(before[5], after[5])  # a[1] slots
    # zero_grad(set_to_none=False) zeroes in place.
    a[0].grad = torch.ones(SHAPES[0])
    opt_a.zero_grad(set_to_none=False)
    assert torch.equal(a[0].grad, torch.zeros(SHAPES[0]))


def test_apply_gradients_with_none_gradient_and_unknown_variable():
    w1, w2 = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    opt = optimizers.SGD(learning_rate=0.5)
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply_gradients([(torch.ones(2), w1), (None, w2)])
    assert torch.equal(w1.detach(), torch.full((2,), 0.5))
    assert torch.equal(w2.detach(), torch.ones(3))
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply_gradients([(torch.ones(2), torch.nn.Parameter(torch.ones(2)))])
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply_gradients([(None, w1)])
    # numpy gradients are accepted too.
    opt.apply_gradients([(np.ones(2), w1)])
    assert torch.equal(w1.detach(), torch.zeros(2))


@pytest.mark.parametrize("case", ["sgd_momentum", "rmsprop_centered_momentum", "adam_amsgrad",
                                  "adagrad", "adadelta", "adamax", "nadam", "adam_cosine_warmup"])
@pytest.mark.parametrize("before_build", [False, True])
def test_state_dict_round_trip_resumes_identically(case, before_build):
    class_name, make_kwargs = CASES[case]
    init, grads = _data(steps=5, seed=3)
    params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    opt = getattr(optimizers, class_name)(**make_kwargs(schedules))

    def train(o, ps, gs):
        for step_grads in gs:
            o.apply_gradients(zip([torch.tensor(g) for g in step_grads], ps))

    train(opt, params, grads[:3])
    saved_weights = [p.detach().clone() for p in params]
    state = opt.state_dict()
    train(opt, params, grads[3:])
    expected = [p.detach().clone() for p in params]

    resumed = [torch.nn.Parameter(w.clone()) for w in saved_weights]
    opt2 = getattr(optimizers, class_name)(**make_kwargs(schedules))
    if before_build:
        opt2.load_state_dict(state)
        opt2.build(resumed)
    else:
        opt2.build(resumed)
        opt2.load_state_dict(state)
    assert int(opt2.iterations) == 3
    assert [v.shape for v in opt2.variables] == [v.shape for v in opt.variables]
    train(opt2, resumed, grads[3:])
    for p, q in zip(resumed, expected):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=0)
    # The saved dict is a snapshot: training on did not change it.
    assert int(state["iterations"]) == 3


def test_load_state_dict_rejects_mismatch():
    p = [torch.nn.Parameter(torch.ones(2))]
    opt = optimizers.Adam()
    opt.build(p)
    with pytest.raises(ValueError, match="slot variables"):
        opt.load_state_dict(optimizers.SGD(momentum=0.5).state_dict() | {"state": [torch.ones(2)]})
    with pytest.raises(ValueError, match="missing the keys"):
        opt.load_state_dict({"state": []})


def test_save_and_load_own_variables():
    init, grads = _data(steps=2)
    _, opt = _run_lamina(optimizers.RMSprop(momentum=0.5), init, grads)
    store = {}
    opt.save_own_variables(store)
    assert sorted(store) == [str(i) for i in range(len(opt.variables))]
    params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
    opt2 = optimizers.RMSprop(momentum=0.5)
    opt2.build(params)
    opt2.load_own_variables(store)
    for a, b in zip(opt.variables, opt2.variables):
        assert torch.equal(a, b)


def test_no_host_sync_in_step(monkeypatch):
    """Every per-step path (schedule, clipping, weight decay, each optimizer) stays on device."""
    init, grads = _data(steps=2)
    cases = ["sgd_nesterov", "rmsprop_centered_momentum", "adam_amsgrad", "adamw_amsgrad",
             "adagrad", "adadelta", "adamax", "nadam", "adam_clipnorm", "sgd_clipvalue",
             "rmsprop_global_clipnorm", "sgd_exponential", "adam_cosine_warmup",
             "rmsprop_piecewise", "adagrad_inverse_time", "nadam_polynomial", "sgd_loss_scale"]
    built = []
    for case in cases:
        class_name, make_kwargs = CASES[case]
        opt = getattr(optimizers, class_name)(**make_kwargs(schedules))
        params = [torch.nn.Parameter(torch.tensor(w)) for w in init]
        opt.build(params)
        built.append((opt, params))

    def sync(*args, **kwargs):
        raise AssertionError("host sync in the optimizer step")

    # The device paths; Adam's fused CPU kernel reads the step count from CPU memory instead.
    monkeypatch.setattr(adam, "_fused_on_cpu", lambda params, grads: False)
    for name in ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__",
                 "__index__"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    for opt, params in built:
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = torch.from_numpy(g)
            opt.step()
    monkeypatch.undo()
    assert all(int(opt.iterations) == 2 for opt, _ in built)


def test_constructor_arguments():
    with pytest.warns(UserWarning, match="lr"):
        opt = optimizers.Adam(lr=0.25)
    assert opt.learning_rate == 0.25
    with pytest.warns(UserWarning, match="decay"):
        optimizers.SGD(decay=0.1)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(foo=1)
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(NotImplementedError, match="use_ema"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(NotImplementedError, match="gradient_accumulation_steps"):
        optimizers.Adam(gradient_accumulation_steps=4)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.Adam(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    opt = optimizers.Adam(ema_momentum=0.5, ema_overwrite_frequency=3, loss_scale_factor=8.0)
    assert (opt.ema_momentum, opt.ema_overwrite_frequency, opt.scale_loss(2.0)) == (0.5, 3, 16.0)


def test_names_are_unique_snake_case():
    from lamina import backend
    backend.clear_session()
    assert [optimizers.Adam().name, optimizers.Adam().name] == ["adam", "adam_1"]
    assert optimizers.RMSprop().name == "rm_sprop"  # Keras's own snake case
    assert optimizers.Adam(name="mine").name == "mine"


def test_exclude_from_weight_decay():
    kernel, bias = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[bias])
    opt.apply_gradients([(torch.zeros(2), kernel), (torch.zeros(2), bias)])
    np.testing.assert_allclose(kernel.detach().numpy(), [0.95, 0.95], rtol=1e-6)
    np.testing.assert_allclose(bias.detach().numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["bias"])


def test_get_serialize_deserialize():
    for name in ("sgd", "RMSprop", "ADAM", "adamw", "adagrad", "Adadelta", "adamax", "nadam"):
        opt = optimizers.get(name)
        assert type(opt).__name__.lower() == name.lower()
    assert isinstance(optimizers.get(optimizers.Nadam), optimizers.Nadam)
    instance = optimizers.SGD()
    assert optimizers.get(instance) is instance
    assert optimizers.get(None) is None
    with pytest.raises(ValueError, match="adamax") as info:
        optimizers.get("not_an_optimizer")
    assert "not_an_optimizer" in str(info.value)
    with pytest.raises(ValueError, match="Could not interpret"):
        optimizers.get(42)

    opt = optimizers.Adam(learning_rate=schedules.CosineDecay(0.1, 100, alpha=0.1), amsgrad=True)
    config = optimizers.serialize(opt)
    assert config["class_name"] == "Adam" and config["module"] == "keras.optimizers"
    assert config["config"]["learning_rate"] == keras.optimizers.schedules.serialize(
        keras.optimizers.schedules.CosineDecay(0.1, 100, alpha=0.1))
    clone = optimizers.deserialize(config)
    assert isinstance(clone, optimizers.Adam) and clone.get_config() == opt.get_config()
    assert isinstance(clone._learning_rate, schedules.CosineDecay)
    # A config written by real Keras loads here.
    kconfig = keras.optimizers.serialize(keras.optimizers.RMSprop(learning_rate=0.5, rho=0.7))
    ours = optimizers.get(kconfig)
    assert isinstance(ours, optimizers.RMSprop)
    assert (ours.learning_rate, ours.rho) == (0.5, 0.7)
    # Keras 2 configs carry keys Keras 3 dropped.
    legacy = {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.01,
                                               "decay": 0.0, "is_legacy_optimizer": False}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert optimizers.get(legacy).learning_rate == pytest.approx(0.01)


SCHEDULE_CASES = [
    ("ExponentialDecay", (0.1, 3, 0.5), {}),
    ("ExponentialDecay", (0.1, 3, 0.5), {"staircase": True}),
    ("PiecewiseConstantDecay", ([2, 5, 9], [1.0, 0.5, 0.1, 0.01]), {}),
    ("PolynomialDecay", (0.1, 8), {"end_learning_rate": 0.01, "power": 0.5}),
    ("PolynomialDecay", (0.1, 8), {"cycle": True}),
    ("InverseTimeDecay", (0.1, 2, 0.5), {}),
    ("InverseTimeDecay", (0.1, 2, 0.5), {"staircase": True}),
    ("CosineDecay", (0.1, 10), {"alpha": 0.1}),
    ("CosineDecay", (0.0, 10), {"warmup_target": 0.2, "warmup_steps": 4}),
    ("CosineDecayRestarts", (0.1, 4), {"alpha": 0.05, "m_mul": 0.5}),
    ("CosineDecayRestarts", (0.1, 4), {"t_mul": 1.0}),
]


@pytest.mark.parametrize("class_name,args,kwargs", SCHEDULE_CASES)
def test_schedules_match_keras(class_name, args, kwargs):
    ours = getattr(schedules, class_name)(*args, **kwargs)
    theirs = getattr(keras.optimizers.schedules, class_name)(*args, **kwargs)
    for step in (0, 1, 2, 3, 4, 5, 7, 9, 10, 13, 20, 40):
        got = ours(torch.tensor(step, dtype=torch.int64))
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        np.testing.assert_allclose(float(got), float(theirs(step)), rtol=1e-5, atol=1e-8,
                                   err_msg=f"step {step}")
        assert float(ours(step)) == pytest.approx(float(got))
    assert ours.get_config() == theirs.get_config()
    assert schedules.serialize(ours) == keras.optimizers.schedules.serialize(theirs)
    clone = schedules.deserialize(keras.optimizers.schedules.serialize(theirs))
    assert type(clone) is type(ours) and clone.get_config() == ours.get_config()
    assert getattr(schedules, class_name).from_config(ours.get_config()).get_config() == \
        ours.get_config()


def test_schedule_validation():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(NotImplementedError):
        schedules.LearningRateSchedule()(0)


def test_power_of_a_step_matches_pow():
    steps = torch.tensor([0.0, 1.0, 2.0, 10.0, 1000.0, 1e5])
    for base in (0.9, 0.96, 0.999, 0.5, 2.0):
        expected = torch.pow(torch.tensor(base, dtype=torch.float64), steps.double()).float()
        torch.testing.assert_close(schedules.power(base, steps), expected, rtol=2e-6, atol=0)
    assert schedules.power(0.0, steps).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("class_name,exps", [("Adam", 2), ("Adamax", 1), ("Nadam", 3)])
def test_compiled_update_computes_bias_corrections_once(class_name, exps):
    """Inductor copies a reused scalar `pow` into every per-element loop that reads it (Adam:
    two `pow` per 16 weights); written with `exp`, the step's corrections are computed once."""
    from torch._inductor.utils import run_and_get_code
    params = [torch.nn.Parameter(torch.randn(n)) for n in (300, 40, 7, 1000)]
    grads = [torch.randn_like(p) for p in params]
    expected = [torch.nn.Parameter(p.detach().clone()) for p in params]
    opt, eager = (getattr(optimizers, class_name)(learning_rate=0.01) for _ in range(2))
    for _ in range(2):
        eager.apply_gradients(zip(grads, expected))
    opt.apply_gradients(zip(grads, params))

    def step():
        opt.apply_gradients(zip(grads, params))

    _, code = run_and_get_code(torch.compile(step, fullgraph=True))
    code = "\n".join(code)
    assert code.count("exp(") == exps and "pow(" not in code
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-7)
