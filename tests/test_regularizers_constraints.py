import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

from lamina import constraints
from lamina import regularizers

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
W2 = RNG.normal(size=(6, 4)).astype("float32")
W4 = RNG.normal(size=(3, 3, 2, 5)).astype("float32")
EPS = 1e-7


def _k(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- regularizers

def test_regularizer_values_against_numpy():
    w = torch.from_numpy(W2)
    np.testing.assert_allclose(regularizers.L1(0.3)(w).item(), 0.3 * np.abs(W2).sum(), rtol=1e-6)
    np.testing.assert_allclose(regularizers.L2(0.2)(w).item(), 0.2 * np.square(W2).sum(), rtol=1e-6)
    np.testing.assert_allclose(regularizers.L1L2(l1=0.1, l2=0.4)(w).item(),
                               0.1 * np.abs(W2).sum() + 0.4 * np.square(W2).sum(), rtol=1e-6)
    # Keras 3: no 1/2 in L2.
    assert regularizers.L2(0.5)(torch.ones(2, 2)).item() == 2.0
    # Defaults.
    np.testing.assert_allclose(regularizers.L1()(w).item(), 0.01 * np.abs(W2).sum(), rtol=1e-6)
    np.testing.assert_allclose(regularizers.L2()(w).item(), 0.01 * np.square(W2).sum(), rtol=1e-6)
    zero = regularizers.L1L2()(w)
    assert isinstance(zero, torch.Tensor) and zero.ndim == 0 and zero.item() == 0.0


def _orthogonal_reference(w, factor, mode):
    v = w if mode == "rows" else w.T
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    p = v @ v.T
    n = v.shape[0]
    off = np.abs(p - np.diag(np.diag(p))).sum()
    return factor * 0.5 * off / (n * (n - 1) / 2)


@pytest.mark.parametrize("mode", ["rows", "columns"])
def test_orthogonal_regularizer(mode):
    got = regularizers.OrthogonalRegularizer(factor=0.5, mode=mode)(torch.from_numpy(W2)).item()
    np.testing.assert_allclose(got, _orthogonal_reference(W2.astype("float64"), 0.5, mode), rtol=1e-5)
    expected = _k(keras.regularizers.OrthogonalRegularizer(factor=0.5, mode=mode)(
        keras.ops.convert_to_tensor(W2)))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    eye = torch.eye(4)
    assert regularizers.OrthogonalRegularizer(0.5)(eye).item() == 0.0
    with pytest.raises(ValueError, match="rank 2"):
        regularizers.OrthogonalRegularizer()(torch.ones(2, 2, 2))


_REG_CASES = [("L1", {}), ("L1", {"l1": 0.3}), ("L2", {}), ("L2", {"l2": 0.7}),
              ("L1L2", {"l1": 0.1, "l2": 0.2}), ("L1L2", {"l2": 0.05})]
_REG_CASES = ([(n, k, W2) for n, k in _REG_CASES] + [(n, k, W4) for n, k in _REG_CASES]
              + [("OrthogonalRegularizer", {}, W2),
                 ("OrthogonalRegularizer", {"factor": 0.2, "mode": "columns"}, W2)])


@pytest.mark.parametrize("reg_name,kwargs,w", _REG_CASES,
                         ids=[f"{n}-{k}-{w.ndim}d" for n, k, w in _REG_CASES])
def test_regularizers_match_keras(reg_name, kwargs, w):
    ours = getattr(regularizers, reg_name)(**kwargs)
    theirs = getattr(keras.regularizers, reg_name)(**kwargs)
    got = ours(torch.from_numpy(w))
    assert got.ndim == 0 and got.dtype == torch.float32
    np.testing.assert_allclose(got.item(), _k(theirs(keras.ops.convert_to_tensor(w))), rtol=1e-6)
    config = regularizers.serialize(ours)
    assert config == keras.saving.serialize_keras_object(theirs)
    back = regularizers.deserialize(config)
    assert type(back) is type(ours) and back.get_config() == ours.get_config()
    assert regularizers.get(config).get_config() == ours.get_config()
    assert keras.regularizers.deserialize(config).get_config() == theirs.get_config()


def test_regularizer_gradients_flow():
    w = torch.tensor([[1.0, -2.0]], requires_grad=True)
    (regularizers.L1L2(l1=0.1, l2=0.5)(w)).backward()
    np.testing.assert_allclose(w.grad.numpy(), [[0.1 + 1.0, -0.1 - 2.0]], rtol=1e-6)


def test_regularizer_get_and_aliases():
    assert regularizers.l1 is regularizers.L1
    assert regularizers.l2 is regularizers.L2
    assert regularizers.l1_l2 is regularizers.L1L2
    for name, cls in [("l1", regularizers.L1), ("L1", regularizers.L1), ("l2", regularizers.L2),
                      ("L2", regularizers.L2), ("l1_l2", regularizers.L1L2),
                      ("L1L2", regularizers.L1L2),
                      ("orthogonal_regularizer", regularizers.OrthogonalRegularizer),
                      ("OrthogonalRegularizer", regularizers.OrthogonalRegularizer)]:
        assert type(regularizers.get(name)) is cls, name
    assert regularizers.get("l2").l2 == 0.01
    assert regularizers.get(None) is None
    reg = regularizers.L2(0.3)
    assert regularizers.get(reg) is reg
    assert isinstance(regularizers.get(regularizers.L1), regularizers.L1)
    fn = lambda w: torch.sum(w)  # noqa: E731
    assert regularizers.get(fn) is fn
    keras_config = keras.regularizers.serialize(keras.regularizers.L1L2(l1=0.25, l2=0.5))
    assert regularizers.get(keras_config).get_config() == {"l1": 0.25, "l2": 0.5}


def test_regularizer_invalid_arguments():
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="l1"):
        regularizers.L1(float("nan"))
    with pytest.raises(ValueError, match="mode"):
        regularizers.OrthogonalRegularizer(mode="diagonal")


def test_regularizer_unknown_names():
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier") as e:
        regularizers.get("l3")
    assert "l1_l2" in str(e.value) and "L2" in str(e.value)
    with pytest.raises(ValueError, match="Unknown regularizer: 'L3'"):
        regularizers.deserialize({"class_name": "L3", "config": {}})
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        regularizers.get(0.1)


# ---------------------------------------------------------------- constraints

def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


def test_constraint_values_against_numpy():
    w = W2 * 2
    n = _norms(w, 0)
    np.testing.assert_allclose(constraints.MaxNorm(1.5)(torch.from_numpy(w)).numpy(),
                               w * np.clip(n, 0, 1.5) / (EPS + n), rtol=1e-6)
    np.testing.assert_allclose(constraints.UnitNorm()(torch.from_numpy(w)).numpy(),
                               w / (EPS + n), rtol=1e-6)
    np.testing.assert_allclose(constraints.NonNeg()(torch.from_numpy(w)).numpy(), np.maximum(w, 0))
    desired = 0.3 * np.clip(n, 1.0, 2.0) + 0.7 * n
    np.testing.assert_allclose(
        constraints.MinMaxNorm(1.0, 2.0, rate=0.3)(torch.from_numpy(w)).numpy(),
        w * desired / (EPS + n), rtol=1e-6)
    n4 = _norms(W4, (0, 1, 2))
    np.testing.assert_allclose(
        constraints.MaxNorm(1.0, axis=[0, 1, 2])(torch.from_numpy(W4)).numpy(),
        W4 * np.clip(n4, 0, 1.0) / (EPS + n4), rtol=1e-6)
    unit = constraints.UnitNorm(axis=[0, 1, 2])(torch.from_numpy(W4)).numpy()
    np.testing.assert_allclose(_norms(unit, (0, 1, 2)), 1.0, rtol=1e-6)
    t = torch.from_numpy(W2)
    assert constraints.Constraint()(t) is t


_CON_CASES = [("MaxNorm", {}), ("MaxNorm", {"max_value": 1.0, "axis": 1}), ("NonNeg", {}),
              ("UnitNorm", {}), ("UnitNorm", {"axis": -1}), ("MinMaxNorm", {}),
              ("MinMaxNorm", {"min_value": 0.5, "max_value": 1.5, "rate": 0.5, "axis": 1})]
_CON_CASES = ([(n, k, W2) for n, k in _CON_CASES] + [(n, k, W4) for n, k in _CON_CASES]
              + [("MaxNorm", {"max_value": 0.5, "axis": [0, 1, 2]}, W4),
                 ("MinMaxNorm", {"min_value": 0.5, "max_value": 1.5, "rate": 0.5,
                                 "axis": [0, 1, 2]}, W4)])


@pytest.mark.parametrize("name,kwargs,w", _CON_CASES,
                         ids=[f"{n}-{k}-{w.ndim}d" for n, k, w in _CON_CASES])
def test_constraints_match_keras(name, kwargs, w):
    ours = getattr(constraints, name)(**kwargs)
    theirs = getattr(keras.constraints, name)(**kwargs)
    got = ours(torch.from_numpy(w * 3))
    assert got.shape == w.shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), _k(theirs(w * 3)), rtol=1e-6, atol=1e-7)
    config = constraints.serialize(ours)
    assert config == keras.saving.serialize_keras_object(theirs)
    back = constraints.deserialize(config)
    assert type(back) is type(ours) and back.get_config() == ours.get_config()
    assert constraints.get(config).get_config() == ours.get_config()
    assert keras.constraints.deserialize(config).get_config() == theirs.get_config()


@pytest.mark.parametrize("cls,kwargs", [(constraints.UnitNorm, {}), (constraints.MaxNorm, {}),
                                        (constraints.MinMaxNorm, {"min_value": 0.5})])
def test_constraint_epsilon_placement(cls, kwargs):
    # Norms near epsilon make `w / (epsilon + norm)` distinguishable from other placements.
    w = (W2 * 1e-7).astype("float32")
    n = _norms(w.astype("float64"), 0)
    if cls is constraints.UnitNorm:
        expected = w / (EPS + n)
    elif cls is constraints.MaxNorm:
        expected = w * np.clip(n, 0, 2) / (EPS + n)
    else:
        expected = w * np.clip(n, 0.5, 1.0) / (EPS + n)
    got = cls(**kwargs)(torch.from_numpy(w)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    theirs = getattr(keras.constraints, cls.__name__)(**kwargs)(w)
    np.testing.assert_allclose(got, _k(theirs), rtol=1e-5)


def test_constraint_get_and_aliases():
    pairs = [("max_norm", constraints.MaxNorm), ("MaxNorm", constraints.MaxNorm),
             ("non_neg", constraints.NonNeg), ("NonNeg", constraints.NonNeg),
             ("unit_norm", constraints.UnitNorm), ("UnitNorm", constraints.UnitNorm),
             ("min_max_norm", constraints.MinMaxNorm), ("MinMaxNorm", constraints.MinMaxNorm)]
    for name, cls in pairs:
        assert getattr(constraints, name) is cls
        assert type(constraints.get(name)) is cls, name
        assert type(keras.constraints.get(name)).__name__ == cls.__name__
    assert constraints.get(None) is None
    c = constraints.MaxNorm(3)
    assert constraints.get(c) is c
    assert isinstance(constraints.get(constraints.NonNeg), constraints.NonNeg)
    keras_config = keras.constraints.serialize(keras.constraints.MaxNorm(3.0, axis=[0, 1]))
    assert constraints.get(keras_config).get_config() == {"max_value": 3.0, "axis": [0, 1]}


def test_constraint_unknown_names():
    with pytest.raises(ValueError, match="Could not interpret constraint identifier") as e:
        constraints.get("maxnorm2")
    assert "max_norm" in str(e.value) and "NonNeg" in str(e.value)
    with pytest.raises(ValueError, match="Unknown constraint: 'Clip'"):
        constraints.deserialize({"class_name": "Clip", "config": {}})
    with pytest.raises(ValueError, match="Could not interpret constraint identifier"):
        constraints.get(2)
