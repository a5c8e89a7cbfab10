"""lamina.metrics against real Keras 3 (torch backend): several updates, results, resets."""
import copy
import io
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from lamina import metrics  # noqa: E402
from keras_reference import assert_close as _close  # noqa: E402



def _batches(kind, seed=0, n=8, c=4):
    """Three (y_true, y_pred, sample_weight) batches of the given kind."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        sw = rng.uniform(0.0, 2.0, size=(n,)).astype("float32")
        if kind == "binary":
            y_true = rng.integers(0, 2, size=(n, 1)).astype("float32")
            y_pred = rng.uniform(0, 1, size=(n, 1)).astype("float32")
        elif kind == "multilabel":
            y_true = rng.integers(0, 2, size=(n, c)).astype("float32")
            y_pred = rng.uniform(0, 1, size=(n, c)).astype("float32")
        elif kind == "onehot":
            y_true = np.eye(c, dtype="float32")[rng.integers(0, c, size=(n,))]
            logits = rng.normal(size=(n, c)).astype("float32")
            y_pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
        elif kind == "sparse":
            y_true = rng.integers(0, c, size=(n,))
            logits = rng.normal(size=(n, c)).astype("float32")
            y_pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
        elif kind == "sparse_col":
            y_true = rng.integers(0, c, size=(n, 1))
            y_pred = rng.uniform(0, 1, size=(n, c)).astype("float32")
        elif kind == "logits":
            y_true = rng.integers(0, 2, size=(n, c)).astype("float32")
            y_pred = rng.normal(size=(n, c)).astype("float32") * 3
        elif kind == "positive":
            y_true = rng.uniform(0, 3, size=(n, 3)).astype("float32")
            y_pred = rng.uniform(0.01, 3, size=(n, 3)).astype("float32")
        elif kind == "classes":
            y_true = rng.integers(0, 3, size=(n,)).astype("float32")
            y_pred = rng.integers(0, 3, size=(n,)).astype("float32")
        else:  # regression
            y_true = rng.normal(size=(n, 3)).astype("float32")
            y_pred = rng.normal(size=(n, 3)).astype("float32")
        out.append((y_true, y_pred, sw))
    return out


def _run_both(ours, theirs, batches, weighted=True):
    for y_true, y_pred, sw in batches:
        w = sw if weighted else None
        ours.update_state(y_true, y_pred, sample_weight=w)
        theirs.update_state(y_true, y_pred, sample_weight=w)
    _close(ours.result(), theirs.result())


# (class name, kwargs, data kind)
MEAN_METRICS = [
    ("Accuracy", {}, "classes"),
    ("BinaryAccuracy", {}, "binary"),
    ("BinaryAccuracy", {"threshold": 0.7}, "multilabel"),
    ("CategoricalAccuracy", {}, "onehot"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_col"),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "sparse_col"),
    ("MeanSquaredError", {}, "regression"),
    ("MeanAbsoluteError", {}, "regression"),
    ("MeanAbsolutePercentageError", {}, "regression"),
    ("MeanSquaredLogarithmicError", {}, "positive"),
    ("RootMeanSquaredError", {}, "regression"),
    ("CosineSimilarity", {}, "regression"),
    ("LogCoshError", {}, "regression"),
    ("BinaryCrossentropy", {}, "multilabel"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "logits"),
    ("CategoricalCrossentropy", {}, "onehot"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "onehot"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("KLDivergence", {}, "onehot"),
    ("Poisson", {}, "positive"),
    ("Hinge", {}, "multilabel"),
    ("SquaredHinge", {}, "multilabel"),
    ("CategoricalHinge", {}, "onehot"),
]


@pytest.mark.parametrize("name,kwargs,kind", MEAN_METRICS,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MEAN_METRICS)])
def test_mean_metrics_match_keras(name, kwargs, kind):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    batches = _batches(kind)
    _run_both(ours, theirs, batches, weighted=True)
    ours.reset_state()
    theirs.reset_state()
    assert float(ours.result()) == 0.0
    assert all(float(v.abs().sum()) == 0.0 for v in ours.variables)
    _run_both(ours, theirs, batches[:2], weighted=False)


def test_mean_and_sum_match_keras():
    rng = np.random.default_rng(5)
    for ours, theirs in [(metrics.Mean(), keras.metrics.Mean()),
                         (metrics.Sum(), keras.metrics.Sum())]:
        v1, w1 = rng.normal(size=(5,)).astype("float32"), rng.uniform(size=(5,)).astype("float32")
        v2, w2 = rng.normal(size=(3, 4)).astype("float32"), rng.uniform(size=(3,)).astype("float32")
        v3 = rng.normal(size=(2, 3)).astype("float32")
        w3 = rng.uniform(size=(2, 3)).astype("float32")
        for v, w in [(v1, w1), (v2, w2), (v3, w3), (v1, None), (np.float32(2.5), None),
                     (v1, np.float32(0.5))]:
            ours.update_state(v, sample_weight=w)
            theirs.update_state(v, sample_weight=w)
            _close(ours.result(), theirs.result())
    m = metrics.Mean()
    m.update_state([1.0, 2.0, 3.0], sample_weight=[1.0, 0.0, 3.0])
    assert float(m.result()) == pytest.approx((1.0 + 9.0) / 4.0)  # sum(w*v) / sum(w)
    assert float(metrics.Mean().result()) == 0.0  # no data: 0, not NaN


def test_mean_metric_wrapper_and_function_metrics():
    rng = np.random.default_rng(6)
    ours = metrics.MeanMetricWrapper(metrics.huber, name="hub", delta=0.5)
    theirs = keras.metrics.MeanMetricWrapper(keras.metrics.huber, name="hub", delta=0.5)
    _run_both(ours, theirs, _batches("regression", seed=6))
    y_true = rng.integers(0, 2, size=(6, 3)).astype("float32")
    y_pred = rng.uniform(size=(6, 3)).astype("float32")
    for fn in ["binary_accuracy", "binary_crossentropy", "hinge", "poisson", "kl_divergence"]:
        _close(getattr(metrics, fn)(y_true, y_pred), getattr(keras.metrics, fn)(y_true, y_pred))
    onehot = np.eye(3, dtype="float32")[[0, 2, 1, 1, 0, 2]]
    labels = np.array([0, 2, 1, 1, 0, 2])
    for fn, yt in [("categorical_accuracy", onehot), ("sparse_categorical_accuracy", labels),
                   ("top_k_categorical_accuracy", onehot),
                   ("sparse_top_k_categorical_accuracy", labels)]:
        kw = {"k": 2} if "top_k" in fn else {}
        _close(getattr(metrics, fn)(yt, y_pred, **kw), getattr(keras.metrics, fn)(yt, y_pred, **kw))
    # Ties count as in the top k, as in Keras.
    tied = np.array([[0.5, 0.5, 0.0]], "float32")
    assert float(metrics.sparse_top_k_categorical_accuracy([1], tied, k=1)[0]) == 1.0
    sorted_ids = np.array([[2, 0, 1], [1, 2, 0]], "float32")
    _close(metrics.sparse_top_k_categorical_accuracy([0, 0], sorted_ids, k=2, from_sorted_ids=True),
           [1.0, 0.0])


def test_sequence_metric_with_per_sample_weights():
    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 4, size=(3, 5))
    y_pred = rng.uniform(size=(3, 5, 4)).astype("float32")
    sw = np.array([1.0, 0.0, 2.0], "float32")
    ours, theirs = metrics.SparseCategoricalAccuracy(), keras.metrics.SparseCategoricalAccuracy()
    for w in (sw, rng.uniform(size=(3, 5)).astype("float32")):
        ours.update_state(y_true, y_pred, sample_weight=w)
        theirs.update_state(y_true, y_pred, sample_weight=w)
        _close(ours.result(), theirs.result())


CONFUSION = [
    ("Precision", {}, "binary"),
    ("Precision", {"thresholds": [0.3, 0.7]}, "multilabel"),
    ("Precision", {"thresholds": [0.0, 0.5, 1.0]}, "multilabel"),  # evenly spaced: bucketed
    ("Precision", {"top_k": 2}, "multilabel"),
    ("Precision", {"class_id": 1}, "multilabel"),
    ("Precision", {"top_k": 2, "class_id": 3, "thresholds": 0.4}, "multilabel"),
    ("Recall", {}, "binary"),
    ("Recall", {"thresholds": [0.25, 0.5, 0.75, 0.9]}, "multilabel"),
    ("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "multilabel"),
    ("Recall", {"top_k": 1}, "multilabel"),
    ("Recall", {"class_id": 2}, "multilabel"),
    ("TruePositives", {}, "multilabel"),
    ("FalsePositives", {"thresholds": [0.2, 0.6]}, "multilabel"),
    ("TrueNegatives", {"thresholds": [0.0, 0.5, 1.0]}, "binary"),
    ("FalseNegatives", {}, "binary"),
]


@pytest.mark.parametrize("name,kwargs,kind", CONFUSION,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(CONFUSION)])
@pytest.mark.parametrize("weighted", [False, True])
def test_confusion_metrics_match_keras(name, kwargs, kind, weighted):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    batches = _batches(kind, seed=11)
    # Predictions exactly on thresholds must follow "strictly greater".
    batches[0][1].reshape(-1)[:3] = [0.0, 0.5, 1.0]
    _run_both(ours, theirs, batches, weighted)
    ours.reset_state()
    theirs.reset_state()
    _close(ours.result(), theirs.result())
    _run_both(ours, theirs, batches[1:], weighted)


AUCS = [
    {},
    {"curve": "PR"},
    {"curve": "PRGAIN"},
    {"summation_method": "majoring"},
    {"summation_method": "minoring", "curve": "PR"},
    {"num_thresholds": 7},
    {"thresholds": [0.1, 0.35, 0.5, 0.8]},
    {"thresholds": [0.1, 0.35, 0.5, 0.8], "curve": "PR"},
    {"multi_label": True},
    {"multi_label": True, "curve": "PR", "label_weights": [1.0, 2.0, 0.0, 0.5]},
    {"multi_label": True, "num_labels": 4, "summation_method": "minoring"},
    {"multi_label": True, "thresholds": [0.2, 0.4, 0.9]},
    {"label_weights": [1.0, 2.0, 0.5, 0.5]},
]


@pytest.mark.parametrize("kwargs", AUCS, ids=[str(i) for i in range(len(AUCS))])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_matches_keras(kwargs, weighted):
    ours, theirs = metrics.AUC(**kwargs), keras.metrics.AUC(**kwargs)
    batches = _batches("multilabel", seed=21, n=16)
    batches[0][1].reshape(-1)[:3] = [0.0, 0.5, 1.0]
    _run_both(ours, theirs, batches, weighted)
    ours.reset_state()
    theirs.reset_state()
    _run_both(ours, theirs, batches[:1], weighted)


def test_auc_binary_and_from_logits():
    for curve in ("ROC", "PR"):
        ours, theirs = metrics.AUC(curve=curve), keras.metrics.AUC(curve=curve)
        _run_both(ours, theirs, _batches("binary", seed=3, n=20), weighted=True)
        ours = metrics.AUC(curve=curve, from_logits=True)
        theirs = keras.metrics.AUC(curve=curve, from_logits=True)
        _run_both(ours, theirs, _batches("logits", seed=4), weighted=False)
    # A perfect ranking has ROC AUC ~1, a reversed one ~0.
    perfect = metrics.AUC()
    perfect.update_state([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert float(perfect.result()) == pytest.approx(1.0, abs=1e-6)
    reverse = metrics.AUC()
    reverse.update_state([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert float(reverse.result()) == pytest.approx(0.0, abs=1e-6)


def test_auc_and_precision_errors():
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XYZ")
    with pytest.raises(ValueError, match="summation"):
        metrics.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="num_labels"):
        metrics.AUC(num_labels=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.Precision(thresholds=[0.5, 1.5])


def test_configs_match_keras():
    for name, kwargs in [("Accuracy", {}), ("BinaryAccuracy", {"threshold": 0.3}),
                         ("TopKCategoricalAccuracy", {"k": 3}), ("MeanSquaredError", {}),
                         ("RootMeanSquaredError", {}), ("Precision", {"top_k": 2, "class_id": 1}),
                         ("Recall", {"thresholds": [0.2, 0.4]}), ("AUC", {"curve": "PR"}),
                         ("AUC", {"thresholds": [0.2, 0.5]}), ("Mean", {}), ("Sum", {}),
                         ("BinaryCrossentropy", {"from_logits": True}),
                         ("SparseCategoricalCrossentropy", {"ignore_class": 0}),
                         ("TruePositives", {"thresholds": [0.5]})]:
        ours = getattr(metrics, name)(name="m", **kwargs)
        theirs = getattr(keras.metrics, name)(name="m", **kwargs)
        assert ours.get_config() == theirs.get_config(), name
        back = type(ours).from_config(ours.get_config())
        assert back.get_config() == ours.get_config()
        # Keras accepts lamina's configs and vice versa.
        getattr(keras.metrics, name).from_config(ours.get_config())
        assert metrics.deserialize(keras.metrics.serialize(theirs)).get_config() == \
            ours.get_config(), name


def test_default_names_and_variables():
    assert metrics.Accuracy().name == "accuracy"
    assert metrics.RootMeanSquaredError().name == "root_mean_squared_error"
    assert metrics.Precision().name.startswith("precision")
    assert metrics.AUC().name.startswith("auc")
    assert [n for n, _ in metrics.Mean().named_buffers()] == ["total", "count"]
    auc = metrics.AUC(num_thresholds=10)
    assert list(auc.state_dict()) == ["true_positives", "false_positives", "true_negatives",
                                      "false_negatives"]
    assert all(v.shape == (10,) for v in auc.variables)


def test_state_is_buffers_and_moves_with_module():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    state = m.state_dict()
    assert set(state) == {"total", "count"} and float(state["count"]) == 2.0
    assert m.to("cpu") is m and isinstance(m.total, metrics.MetricVariable)
    m.double()
    assert m.total.dtype == torch.float64 and isinstance(m.count, metrics.MetricVariable)
    m.update_state([1], [[0.1, 0.9]])
    assert float(m.result()) == pytest.approx(2 / 3)
    m2 = metrics.SparseCategoricalAccuracy().double()
    m2.load_state_dict(m.state_dict())
    assert float(m2.result()) == pytest.approx(2 / 3)
    clone = copy.deepcopy(m)
    clone.update_state([0], [[0.9, 0.1]])
    assert float(m.result()) == pytest.approx(2 / 3) and float(clone.result()) == 0.75
    buf = io.BytesIO()
    torch.save(m, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert float(loaded.result()) == pytest.approx(2 / 3)


def test_update_state_builds_no_graph():
    logits = torch.randn(4, 3, requires_grad=True)
    for m in (metrics.CategoricalCrossentropy(from_logits=True), metrics.AUC(),
              metrics.Precision(top_k=1)):
        m.update_state(torch.eye(3)[[0, 1, 2, 0]], torch.sigmoid(logits))
        assert all(not v.requires_grad for v in m.variables)
        assert not m.result().requires_grad


def test_call_updates_then_returns_result():
    m = metrics.BinaryAccuracy()
    out = m([[1], [0]], [[0.7], [0.9]])
    assert float(out) == 0.5
    out = m([[1]], [[0.6]])
    assert float(out) == pytest.approx(2 / 3)


def test_custom_metric_keras_style():
    class BinaryTruePositives(metrics.Metric):
        def __init__(self, name="binary_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.tp = self.add_variable(shape=(), initializer="zeros", name="true_pos")
            self.seen = self.add_weight(name="seen", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true = torch.as_tensor(y_true).bool()
            y_pred = torch.as_tensor(y_pred).bool()
            values = (y_true & y_pred).float()
            if sample_weight is not None:
                values = values * torch.as_tensor(sample_weight, dtype=torch.float32)
            self.tp.assign_add(values.sum())
            self.seen.assign_add(float(values.numel()))

        def result(self):
            return self.tp

    m = BinaryTruePositives()
    m.update_state([0, 1, 1, 1], [0, 1, 0, 1], sample_weight=[1.0, 0.5, 1.0, 2.0])
    assert float(m.result()) == 2.5
    assert set(m.state_dict()) == {"true_pos", "seen"}
    m.to("cpu")
    m.update_state([1], [1])
    assert float(m.result()) == 3.5 and float(m.seen) == 5.0  # alias follows the buffer
    m.reset_state()
    assert float(m.result()) == 0.0 and float(m.seen) == 0.0
    assert [float(v) for v in m.variables] == [0.0, 0.0]

    class Forgot(metrics.Metric):
        def __init__(self):
            self.v = self.add_variable(shape=())

    with pytest.raises((RuntimeError, AttributeError)):
        Forgot()


def test_get_resolves_identifiers():
    assert metrics.get(None) is None
    assert isinstance(metrics.get("mse"), metrics.MeanSquaredError)
    assert isinstance(metrics.get("mae"), metrics.MeanAbsoluteError)
    assert isinstance(metrics.get("categorical_accuracy"), metrics.CategoricalAccuracy)
    assert isinstance(metrics.get("AUC"), metrics.AUC)
    assert isinstance(metrics.get("auc"), metrics.AUC)
    assert isinstance(metrics.get("precision"), metrics.Precision)
    assert isinstance(metrics.get("Recall"), metrics.Recall)
    assert isinstance(metrics.get("accuracy"), metrics.Accuracy)
    assert isinstance(metrics.get(metrics.Accuracy), metrics.Accuracy)
    inst = metrics.Precision(thresholds=0.3)
    assert metrics.get(inst) is inst
    wrapped = metrics.get(metrics.binary_accuracy)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "binary_accuracy"

    def my_metric(y_true, y_pred):
        return torch.abs(torch.as_tensor(y_true) - torch.as_tensor(y_pred))

    custom = metrics.get(my_metric)
    assert custom.name == "my_metric"
    assert float(custom([1.0, 2.0], [2.0, 2.0])) == 0.5
    huber = metrics.get("huber")
    assert isinstance(huber, metrics.MeanMetricWrapper) and huber.name == "huber"
    restored = metrics.get({"class_name": "AUC", "config": {"curve": "PR", "num_thresholds": 9}})
    assert isinstance(restored, metrics.AUC) and restored.curve == "PR"
    assert restored.num_thresholds == 9


def test_serialize_round_trips():
    for m in [metrics.AUC(curve="PR", thresholds=[0.2, 0.6]),
              metrics.Precision(top_k=2, class_id=1, name="p"),
              metrics.BinaryAccuracy(threshold=0.3),
              metrics.MeanMetricWrapper(metrics.huber, name="h", delta=0.25),
              metrics.SparseTopKCategoricalAccuracy(k=3)]:
        config = metrics.serialize(m)
        assert config["module"] == "keras.metrics" and config["class_name"] == type(m).__name__
        back = metrics.deserialize(config)
        assert type(back) is type(m) and back.get_config() == m.get_config()
    w = metrics.deserialize(metrics.serialize(
        metrics.MeanMetricWrapper(metrics.huber, name="h", delta=0.25)))
    assert w._fn is metrics.huber and w._fn_kwargs == {"delta": 0.25}
    # A MeanMetricWrapper written by real Keras.
    k = metrics.deserialize(keras.metrics.serialize(
        keras.metrics.MeanMetricWrapper(keras.metrics.mean_squared_error, name="k")))
    assert k._fn is metrics.mean_squared_error and k.name == "k"
    assert metrics.deserialize(metrics.serialize(metrics.categorical_accuracy)) is \
        metrics.categorical_accuracy


def test_unknown_identifiers_raise():
    with pytest.raises(ValueError, match="not_a_metric"):
        metrics.get("not_a_metric")
    with pytest.raises(ValueError, match="categorical_accuracy"):  # lists what is known
        metrics.get("not_a_metric")
    with pytest.raises(ValueError, match="3.5"):
        metrics.get(3.5)
    with pytest.raises(ValueError, match="Nope"):
        metrics.deserialize({"class_name": "Nope", "config": {}})
