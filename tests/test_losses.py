"""lamina.losses against real Keras 3 (torch backend) on the same numpy data."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from lamina import losses  # noqa: E402

RTOL, ATOL = 1e-5, 1e-6
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None, "none"]


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _close(ours, theirs):
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, c = 6, 4
    logits = rng.normal(size=(n, c)).astype("float32") * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, c, size=(n,))
    onehot = np.eye(c, dtype="float32")[labels]
    return {
        "n": n, "c": c, "logits": logits, "probs": probs.astype("float32"),
        "labels": labels, "onehot": onehot,
        "reg_true": rng.normal(size=(n, 3)).astype("float32"),
        "reg_pred": rng.normal(size=(n, 3)).astype("float32"),
        "pos_true": rng.uniform(0, 3, size=(n, 3)).astype("float32"),
        "pos_pred": rng.uniform(0.01, 3, size=(n, 3)).astype("float32"),
        "bin_true": rng.integers(0, 2, size=(n, 3)).astype("float32"),
        "bin_prob": rng.uniform(0, 1, size=(n, 3)).astype("float32"),
        "bin_logit": rng.normal(size=(n, 3)).astype("float32") * 3,
        "sw": rng.uniform(0.1, 2.0, size=(n,)).astype("float32"),
    }


# (class name, constructor kwargs, y_true key, y_pred key)
CASES = [
    ("MeanSquaredError", {}, "reg_true", "reg_pred"),
    ("MeanAbsoluteError", {}, "reg_true", "reg_pred"),
    ("MeanAbsolutePercentageError", {}, "reg_true", "reg_pred"),
    ("MeanSquaredLogarithmicError", {}, "pos_true", "pos_pred"),
    ("Huber", {}, "reg_true", "reg_pred"),
    ("Huber", {"delta": 0.3}, "reg_true", "reg_pred"),
    ("LogCosh", {}, "reg_true", "reg_pred"),
    ("KLDivergence", {}, "probs", "probs_shift"),
    ("Poisson", {}, "pos_true", "pos_pred"),
    ("Hinge", {}, "bin_true", "reg_pred"),
    ("Hinge", {}, "reg_true", "reg_pred"),
    ("SquaredHinge", {}, "bin_true", "reg_pred"),
    ("CategoricalHinge", {}, "onehot", "logits"),
    ("CosineSimilarity", {}, "reg_true", "reg_pred"),
    ("CosineSimilarity", {"axis": 0}, "reg_true", "reg_pred"),
    ("CategoricalCrossentropy", {}, "onehot", "probs"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "onehot", "probs"),
    ("CategoricalCrossentropy", {"from_logits": True}, "onehot", "logits"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "onehot", "logits"),
    ("CategoricalCrossentropy", {}, "onehot", "unnormalized"),
    ("SparseCategoricalCrossentropy", {}, "labels", "probs"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "labels", "logits"),
    ("SparseCategoricalCrossentropy", {}, "labels_col", "probs"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "labels_float", "logits"),
    ("BinaryCrossentropy", {}, "bin_true", "bin_prob"),
    ("BinaryCrossentropy", {"label_smoothing": 0.1}, "bin_true", "bin_prob"),
    ("BinaryCrossentropy", {"from_logits": True}, "bin_true", "bin_logit"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, "bin_true", "bin_logit"),
    ("BinaryCrossentropy", {}, "bin_true", "bin_extreme"),
    ("BinaryFocalCrossentropy", {}, "bin_true", "bin_prob"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "gamma": 3.0, "from_logits": True,
                                 "label_smoothing": 0.1}, "bin_true", "bin_logit"),
    ("CategoricalFocalCrossentropy", {}, "onehot", "probs"),
    ("CategoricalFocalCrossentropy", {"from_logits": True, "alpha": 0.5}, "onehot", "logits"),
]


def _get(data, key):
    if key == "probs_shift":
        return np.roll(data["probs"], 1, axis=0)
    if key == "unnormalized":
        return data["probs"] * 3.0
    if key == "labels_col":
        return data["labels"].reshape(-1, 1)
    if key == "labels_float":
        return data["labels"].astype("float32")
    if key == "bin_extreme":
        x = data["bin_prob"].copy()
        x[0, 0], x[1, 1] = 0.0, 1.0
        return x
    return data[key]


@pytest.mark.parametrize("name,kwargs,tkey,pkey", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None])
def test_loss_class_matches_keras(data, name, kwargs, tkey, pkey, reduction):
    y_true, y_pred = _get(data, tkey), _get(data, pkey)
    ours = getattr(losses, name)(reduction=reduction, **kwargs)
    theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)
    _close(ours(torch.as_tensor(y_true), torch.as_tensor(y_pred)), theirs(y_true, y_pred))
    if kwargs.get("axis") == 0:  # per-feature values: no per-sample weights
        return
    _close(ours(y_true, y_pred, sample_weight=data["sw"]),
           theirs(y_true, y_pred, sample_weight=data["sw"]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("sw_kind", ["none", "vector", "column", "scalar"])
def test_reductions_match_keras(data, reduction, sw_kind):
    y_true, y_pred = data["onehot"], data["logits"]
    sw = {"none": None, "vector": data["sw"], "column": data["sw"][:, None],
          "scalar": np.float32(0.7)}[sw_kind]
    ours = losses.CategoricalCrossentropy(from_logits=True, reduction=reduction)
    theirs = keras.losses.CategoricalCrossentropy(from_logits=True, reduction=reduction)
    _close(ours(y_true, y_pred, sample_weight=sw), theirs(y_true, y_pred, sample_weight=sw))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_sequence_losses_with_timestep_weights(reduction):
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 5, size=(3, 4))
    y_pred = rng.normal(size=(3, 4, 5)).astype("float32")
    sw = rng.uniform(0.5, 1.5, size=(3, 4)).astype("float32")
    for sw_ in (sw, sw[:, :1]):
        ours = losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
        theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
        _close(ours(y_true, y_pred, sample_weight=sw_), theirs(y_true, y_pred, sample_weight=sw_))


def test_per_sample_weights_broadcast_over_timesteps():
    # Keras 3 needs (N, 1) weights here; lamina also takes (N,) and aligns them with samples.
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 5, size=(3, 4))
    y_pred = rng.normal(size=(3, 4, 5)).astype("float32")
    sw = np.array([0.5, 1.0, 2.0], "float32")
    ours = losses.SparseCategoricalCrossentropy(from_logits=True)(y_true, y_pred, sample_weight=sw)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        y_true, y_pred, sample_weight=sw[:, None])
    _close(ours, theirs)


@pytest.mark.parametrize("reduction",
                         ["sum_over_batch_size", "sum", "mean_with_sample_weight", None])
@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_ignore_class_matches_keras(reduction, from_logits):
    rng = np.random.default_rng(3)
    y_true = np.array([[0, 1, -1, 2], [1, -1, -1, 0]])
    y_pred = rng.uniform(0.05, 1, size=(2, 4, 3)).astype("float32")
    sw = np.array([[1.0, 2.0, 1.0, 1.0], [0.5, 0.5, 0.5, 3.0]], "float32")
    ours = losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1,
                                                reduction=reduction)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=-1,
                                                        reduction=reduction)
    _close(ours(y_true, y_pred), theirs(y_true, y_pred))
    _close(ours(y_true, y_pred, sample_weight=sw), theirs(y_true, y_pred, sample_weight=sw))
    # Per-sample weights (Keras 3 fails on these in place; lamina broadcasts them).
    per_sample = np.array([1.0, 0.5], "float32")
    _close(ours(y_true, y_pred, sample_weight=per_sample),
           theirs(y_true, y_pred, sample_weight=np.repeat(per_sample[:, None], 4, 1)))


def test_sparse_class_axis_and_rank3(data):
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 3, size=(2, 5))
    y_pred = rng.normal(size=(2, 3, 5)).astype("float32")
    ours = losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True, axis=1)
    theirs = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True, axis=1)
    _close(ours, theirs)
    probs = torch.softmax(torch.as_tensor(y_pred), 1).numpy()
    _close(losses.sparse_categorical_crossentropy(y_true, probs, axis=1),
           keras.losses.sparse_categorical_crossentropy(y_true, probs, axis=1))


@pytest.mark.parametrize("fn", ["mean_squared_error", "mean_absolute_error", "huber", "log_cosh",
                                "mean_absolute_percentage_error", "cosine_similarity"])
def test_functions_squeeze_rank1_against_column(fn):
    y_true = np.array([1.0, 2.0, 3.0], "float32")
    y_pred = np.array([[1.5], [1.0], [2.0]], "float32")
    _close(getattr(losses, fn)(y_true, y_pred), getattr(keras.losses, fn)(y_true, y_pred))


def test_function_values_and_aliases(data):
    _close(losses.mse(data["reg_true"], data["reg_pred"]),
           np.mean((data["reg_true"] - data["reg_pred"]) ** 2, axis=-1))
    assert losses.mse is losses.mean_squared_error and losses.MAE is losses.mean_absolute_error
    assert losses.kld is losses.kl_divergence
    assert losses.msle is losses.mean_squared_logarithmic_error
    # Binary-crossentropy by hand: clipped probabilities.
    p = np.clip(data["bin_prob"], 1e-7, 1 - 1e-7).astype("float64")
    t = data["bin_true"]
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(-1)
    _close(losses.binary_crossentropy(t, data["bin_prob"]), expected)
    # Categorical crossentropy renormalises predictions by their sum.
    unnorm = data["probs"] * 5
    _close(losses.categorical_crossentropy(data["onehot"], unnorm),
           -np.log(np.clip(data["probs"], 1e-7, 1 - 1e-7))[np.arange(data["n"]), data["labels"]])


def test_hinge_label_conversion():
    y_pred = torch.tensor([[0.3, -0.8]])
    # {0,1} labels become {-1,1}: max(1 - (-1)(0.3), 0) = 1.3 and max(1 - 1(-0.8), 0) = 1.8.
    assert losses.hinge(torch.tensor([[0.0, 1.0]]), y_pred).item() == pytest.approx((1.3 + 1.8) / 2)
    # Labels that are not all in {0, 1} are used as they are.
    out = losses.hinge(torch.tensor([[-1.0, 2.0]]), y_pred)
    assert out.item() == pytest.approx((1.3 + 2.6) / 2)


def test_gradients_flow_and_no_nan():
    logits = torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    loss.backward()
    expected = torch.nn.functional.cross_entropy(logits.detach(), y)
    assert torch.allclose(loss.detach(), expected)
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    probs = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    out = losses.BinaryCrossentropy()(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), probs)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(probs.grad).all()


def test_loss_dtype_and_input_conversion():
    loss = losses.MeanSquaredError(dtype="float64")
    out = loss([[1, 2]], [[1.5, 2.5]])
    assert out.dtype == torch.float64 and out.item() == pytest.approx(0.25)
    assert losses.MeanSquaredError().dtype == "float32"
    out32 = losses.MeanSquaredError()(torch.ones(2, 2, dtype=torch.float16), torch.zeros(2, 2))
    assert out32.dtype == torch.float32


def test_invalid_reduction_and_shapes():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="average")
    with pytest.raises(ValueError, match="same shape"):
        losses.binary_crossentropy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="axis"):
        losses.categorical_crossentropy(np.eye(2), np.eye(2), axis=True)


def test_names_and_configs_match_keras():
    for name in ["MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
                 "MeanSquaredLogarithmicError", "Huber", "LogCosh", "KLDivergence", "Poisson",
                 "Hinge", "SquaredHinge", "CategoricalHinge", "CosineSimilarity",
                 "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
                 "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy"]:
        ours, theirs = getattr(losses, name)(), getattr(keras.losses, name)()
        assert ours.name == theirs.name
        ours_cfg, theirs_cfg = ours.get_config(), theirs.get_config()
        # Keras drops `delta`/`axis` from some configs; lamina keeps them, all else is equal.
        assert {k: v for k, v in ours_cfg.items() if k in theirs_cfg} == theirs_cfg, name
        assert set(ours_cfg) - set(theirs_cfg) <= {"delta", "axis"}, name
        # Keras accepts lamina's configs.
        getattr(keras.losses, name).from_config(ours_cfg)


def test_custom_loss_subclass_and_auto_name():
    class MyAbsLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return torch.abs(y_true - y_pred)

    a, b = MyAbsLoss(), MyAbsLoss()
    assert a.name.startswith("my_abs_loss") and a.name != b.name
    assert a([1.0, 2.0], [2.0, 4.0]).item() == pytest.approx(1.5)
    assert a([1.0, 2.0], [2.0, 4.0], sample_weight=[1.0, 0.0]).item() == pytest.approx(0.5)
    assert MyAbsLoss(reduction="sum")([1.0, 2.0], [2.0, 4.0]).item() == pytest.approx(3.0)


def test_get_serialize_deserialize_round_trips():
    assert losses.get(None) is None
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("categorical_crossentropy") is losses.categorical_crossentropy
    inst = losses.get("CategoricalCrossentropy")
    assert isinstance(inst, losses.CategoricalCrossentropy)
    assert isinstance(losses.get(losses.Huber), losses.Huber)
    h = losses.Huber(delta=2.5, reduction="sum", name="h")
    assert losses.get(h) is h
    restored = losses.get({"class_name": "Huber", "config": {"delta": 2.5, "reduction": "sum"}})
    assert isinstance(restored, losses.Huber) and restored.delta == 2.5
    assert restored.reduction == "sum"
    cfg = losses.serialize(h)
    assert cfg["class_name"] == "Huber" and cfg["module"] == "keras.losses"
    back = losses.deserialize(cfg)
    assert back.get_config() == h.get_config()
    y_t, y_p = np.array([[0.0, 3.0]]), np.array([[1.0, 0.0]])
    _close(back(y_t, y_p), h(y_t, y_p))
    fn_cfg = losses.serialize(losses.binary_crossentropy)
    assert losses.deserialize(fn_cfg) is losses.binary_crossentropy
    # A function config written by real Keras.
    assert losses.deserialize(keras.losses.serialize(keras.losses.poisson)) is losses.poisson
    # A class config written by real Keras.
    k = losses.deserialize(keras.losses.serialize(keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.3)))
    assert isinstance(k, losses.CategoricalCrossentropy) and k.label_smoothing == 0.3
    wrapper = losses.LossFunctionWrapper(losses.huber, name="wrapped", delta=0.5)
    w2 = losses.deserialize(losses.serialize(wrapper))
    assert w2.fn is losses.huber and w2._fn_kwargs == {"delta": 0.5} and w2.name == "wrapped"
    _close(w2(y_t, y_p), keras.losses.Huber(delta=0.5)(y_t, y_p))


def test_unknown_identifiers_raise():
    with pytest.raises(ValueError, match="not_a_loss"):
        losses.get("not_a_loss")
    with pytest.raises(ValueError, match="mean_squared_error"):  # lists what is known
        losses.get("not_a_loss")
    with pytest.raises(ValueError, match="42"):
        losses.get(42)
    with pytest.raises(ValueError, match="Nope"):
        losses.deserialize({"class_name": "Nope", "config": {}})


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean_with_sample_weight"])
def test_mask_on_predictions_matches_keras(reduction):
    from keras.src import backend as kbackend

    rng = np.random.default_rng(8)
    y_true = rng.normal(size=(3, 4, 2)).astype("float32")
    mask = torch.tensor([[True, True, False, False], [True, True, True, True],
                         [True, False, False, False]])
    sw = np.array([[1.0], [2.0], [0.5]], "float32")
    ours_pred = torch.as_tensor(rng.normal(size=(3, 4, 2)).astype("float32"))
    ours_pred._keras_mask = mask
    theirs_pred = ours_pred.clone()
    kbackend.set_keras_mask(theirs_pred, mask)
    full = np.repeat(sw, 4, axis=1)  # Keras 3 needs the weights at the mask's shape here
    for ours_sw, theirs_sw in ((None, None), (full, full), (sw, full), (sw[:, 0], full)):
        ours = losses.MeanSquaredError(reduction=reduction)(y_true, ours_pred,
                                                             sample_weight=ours_sw)
        theirs = keras.losses.MeanSquaredError(reduction=reduction)(y_true, theirs_pred,
                                                                      sample_weight=theirs_sw)
        if reduction == "mean_with_sample_weight" and ours_sw is not None \
                and ours_sw.shape != full.shape:
            continue  # divisor is sum(sample_weight) as given: differs by construction
        _close(ours, theirs)
