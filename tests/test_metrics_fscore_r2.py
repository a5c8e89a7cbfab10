"""F1Score, FBetaScore and R2Score against real Keras 3 (torch backend), and in compile/fit."""
import copy
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

import lamina  # noqa: E402
from lamina import metrics  # noqa: E402
from keras_reference import assert_close as _close  # noqa: E402



def _keras_result(metric):
    with warnings.catch_warnings():  # Keras warns when adjusted R2 falls back to plain R2
        warnings.simplefilter("ignore")
        return metric.result()


def _classification_batches(kind, seed, n=8, c=4, batches=3):
    """(y_true, y_pred, per-sample weight) batches; y_pred has ties and an all-zero row."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(batches):
        if kind == "multilabel":
            y_true = rng.integers(0, 2, size=(n, c)).astype("float32")
            y_pred = rng.uniform(0, 1, size=(n, c)).astype("float32")
        else:  # "onehot": one class per sample, softmax-like scores
            y_true = np.eye(c, dtype="float32")[rng.integers(0, c, size=(n,))]
            logits = rng.normal(size=(n, c))
            y_pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
        y_pred[0] = 0.0           # predicts nothing when threshold=None
        y_pred[1, :2] = 0.9       # a tie for the largest score
        y_pred[2, 0] = 0.5        # exactly on a threshold: not above it
        sw = rng.uniform(0.0, 2.0, size=(n,)).astype("float32")
        out.append((y_true, y_pred, sw))
    return out


def _run_both(ours, theirs, batches, weighted):
    for y_true, y_pred, sw in batches:
        w = sw if weighted else None
        ours.update_state(y_true, y_pred, sample_weight=w)
        theirs.update_state(y_true, y_pred, sample_weight=w)
        _close(ours.result(), _keras_result(theirs))  # after every batch: accumulation


FSCORES = [("F1Score", {"average": avg, "threshold": th})
           for avg in (None, "micro", "macro", "weighted") for th in (None, 0.5)]
FSCORES += [("FBetaScore", {"average": avg, "beta": beta, "threshold": th})
            for avg, beta, th in [(None, 2.0, None), ("micro", 0.5, 0.3), ("macro", 2.0, 0.5),
                                  ("weighted", 0.5, None), ("weighted", 3.0, 1.0)]]


@pytest.mark.parametrize("name,kwargs", FSCORES, ids=[f"{n}-{i}" for i, (n, _) in
                                                       enumerate(FSCORES)])
@pytest.mark.parametrize("kind", ["multilabel", "onehot"])
@pytest.mark.parametrize("weighted", [False, True])
def test_fscores_match_keras(name, kwargs, kind, weighted):
    ours, theirs = getattr(metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    assert ours.name == theirs.name
    batches = _classification_batches(kind, seed=len(str(kwargs)) + weighted)
    _run_both(ours, theirs, batches, weighted)
    ours.reset_state()
    theirs.reset_state()
    _close(ours.result(), _keras_result(theirs))
    assert all(float(v.abs().sum()) == 0.0 for v in ours.variables)
    _run_both(ours, theirs, batches[1:], weighted)


def test_fscore_integer_labels_and_per_element_weights():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, size=(6, 3)).astype("int32")
    y_pred = rng.uniform(size=(6, 3)).astype("float32")
    ours = metrics.FBetaScore(beta=2.0, threshold=0.5)
    theirs = keras.metrics.FBetaScore(beta=2.0, threshold=0.5)
    ours.update_state(y_true, y_pred)
    theirs.update_state(y_true, y_pred)
    _close(ours.result(), theirs.result())
    # Keras's documented example.
    m = metrics.FBetaScore(beta=2.0, threshold=0.5)
    m.update_state(np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.int32),
                   np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32))
    _close(m.result(), [0.3846154, 0.90909094, 0.8333334])
    # Weights per element (batch, classes), or (batch, 1), are accepted as well (Keras takes
    # only one weight a sample): they multiply each count.
    w = rng.uniform(size=(6, 3)).astype("float32")
    m = metrics.F1Score(threshold=0.5)
    m.update_state(y_true, y_pred, sample_weight=w)
    pred = (y_pred > 0.5).astype("float64")
    tp = (pred * y_true * w).sum(0)
    fp = (pred * (1 - y_true) * w).sum(0)
    fn = ((1 - pred) * y_true * w).sum(0)
    _close(m.result(), 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), atol=1e-5)
    column = metrics.F1Score(threshold=0.5)
    column.update_state(y_true, y_pred, sample_weight=w[:, :1])
    flat = metrics.F1Score(threshold=0.5)
    flat.update_state(y_true, y_pred, sample_weight=w[:, 0])
    _close(column.result(), flat.result())


REGRESSION = [
    {}, {"class_aggregation": None}, {"class_aggregation": "variance_weighted_average"},
    {"num_regressors": 2}, {"class_aggregation": None, "num_regressors": 5},
    {"class_aggregation": "variance_weighted_average", "num_regressors": 1},
]


@pytest.mark.parametrize("kwargs", REGRESSION, ids=[str(i) for i in range(len(REGRESSION))])
@pytest.mark.parametrize("weights", ["none", "per_sample", "per_element"])
def test_r2_matches_keras(kwargs, weights):
    rng = np.random.default_rng(9)
    ours, theirs = metrics.R2Score(**kwargs), keras.metrics.R2Score(**kwargs)
    assert ours.name == theirs.name == "r2_score"
    batches = []
    for n in (6, 5, 7):
        y_true = rng.normal(size=(n, 3)).astype("float32")
        y_pred = (y_true + 0.7 * rng.normal(size=(n, 3))).astype("float32")
        sw = {"none": None, "per_sample": rng.uniform(0.1, 2.0, size=(n,)),
              "per_element": rng.uniform(0.1, 2.0, size=(n, 3))}[weights]
        batches.append((y_true, y_pred, None if sw is None else sw.astype("float32")))
    _run_both(ours, theirs, batches, weighted=True)
    ours.reset_state()
    theirs.reset_state()
    assert all(float(v.abs().sum()) == 0.0 for v in ours.variables)
    _run_both(ours, theirs, batches[:2], weighted=True)


def test_r2_single_output_and_adjusted_fallback():
    # Keras's documented example.
    m = metrics.R2Score()
    m.update_state(np.array([[1], [4], [3]], "float32"), np.array([[2], [4], [4]], "float32"))
    assert float(m.result()) == pytest.approx(0.57142854, abs=1e-6)
    # A rank-1 y_true against (batch, 1) predictions.
    rng = np.random.default_rng(4)
    y_true = rng.normal(size=(5,)).astype("float32")
    y_pred = rng.normal(size=(5, 1)).astype("float32")
    ours, theirs = metrics.R2Score(), keras.metrics.R2Score()
    _run_both(ours, theirs, [(y_true, y_pred, None)], weighted=False)
    # n counts target values (here 5 x 2 = 10): p = 8 is adjusted, p = 9 and p = 20 fall back
    # to the plain R2.
    y_true = rng.normal(size=(5, 2)).astype("float32")
    y_pred = rng.normal(size=(5, 2)).astype("float32")
    plain = metrics.R2Score()
    plain.update_state(y_true, y_pred)
    for p in (8, 9, 20):
        ours, theirs = metrics.R2Score(num_regressors=p), keras.metrics.R2Score(num_regressors=p)
        _run_both(ours, theirs, [(y_true, y_pred, None)], weighted=False)
        if p >= 9:
            _close(ours.result(), plain.result())
    r = float(plain.result())
    ours = metrics.R2Score(num_regressors=8)
    ours.update_state(y_true, y_pred)
    assert float(ours.result()) == pytest.approx(1 - (1 - r) * 9 / (10 - 8 - 1), rel=1e-5)


def test_r2_against_numpy():
    rng = np.random.default_rng(12)
    y_true = rng.normal(size=(20, 2))
    y_pred = y_true + 0.5 * rng.normal(size=(20, 2))
    w = rng.uniform(0.2, 1.5, size=(20,))
    m = metrics.R2Score(class_aggregation=None)
    m.update_state(y_true[:12], y_pred[:12], sample_weight=w[:12])
    m.update_state(y_true[12:], y_pred[12:], sample_weight=w[12:])
    mean = (w[:, None] * y_true).sum(0) / w.sum()
    ss_tot = (w[:, None] * (y_true - mean) ** 2).sum(0)
    ss_res = (w[:, None] * (y_true - y_pred) ** 2).sum(0)
    _close(m.result(), 1 - ss_res / ss_tot, rtol=1e-4)


CONFIGS = [
    ("F1Score", {}), ("F1Score", {"average": "macro", "threshold": 0.4}),
    ("FBetaScore", {}), ("FBetaScore", {"average": "weighted", "beta": 2.0, "threshold": 0.7}),
    ("R2Score", {}), ("R2Score", {"class_aggregation": None, "num_regressors": 3}),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}),
]


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in
                                                       enumerate(CONFIGS)])
def test_configs_match_keras_and_round_trip(name, kwargs):
    ours = getattr(metrics, name)(**kwargs)
    theirs = getattr(keras.metrics, name)(**kwargs)
    assert ours.get_config() == theirs.get_config()
    back = type(ours).from_config(ours.get_config())
    assert type(back) is type(ours) and back.get_config() == ours.get_config()
    assert getattr(keras.metrics, name).from_config(ours.get_config()).get_config() == \
        theirs.get_config()
    assert metrics.deserialize(keras.metrics.serialize(theirs)).get_config() == ours.get_config()
    assert keras.metrics.deserialize(metrics.serialize(ours)).get_config() == theirs.get_config()
    named = getattr(metrics, name)(name="m", dtype="float64", **kwargs)
    assert named.get_config()["name"] == "m" and named.get_config()["dtype"] == "float64"
    assert type(named).from_config(named.get_config()).get_config() == named.get_config()


ERRORS = [
    ("FBetaScore", {"average": "samples"}, "average"),
    ("F1Score", {"average": "Macro"}, "average"),
    ("FBetaScore", {"beta": 0.0}, "beta"),
    ("FBetaScore", {"beta": -1.5}, "beta"),
    ("FBetaScore", {"beta": 2}, "beta"),  # a Python float is required, as in Keras
    ("F1Score", {"threshold": 0.0}, "threshold"),
    ("F1Score", {"threshold": 1.5}, "threshold"),
    ("FBetaScore", {"threshold": -0.2}, "threshold"),
    ("F1Score", {"threshold": 1}, "threshold"),
    ("R2Score", {"class_aggregation": "mean"}, "class_aggregation"),
    ("R2Score", {"num_regressors": -1}, "num_regressors"),
]


@pytest.mark.parametrize("name,kwargs,argument", ERRORS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(ERRORS)])
def test_bad_arguments_raise_as_keras(name, kwargs, argument):
    with pytest.raises(Exception) as theirs:
        getattr(keras.metrics, name)(**kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        getattr(metrics, name)(**kwargs)
    message = str(ours.value)
    assert f"`{argument}`" in message
    value = next(iter(kwargs.values()))
    assert f"Received: {argument}={value!r}" in message


def test_inputs_must_be_2d():
    for ours, theirs in [(metrics.F1Score(), keras.metrics.F1Score()),
                         (metrics.R2Score(), keras.metrics.R2Score())]:
        for y in (np.ones((4,), "float32"), np.ones((2, 3, 2), "float32")):
            with pytest.raises(ValueError, match="2D inputs") as info:
                ours.update_state(y, y)
            with pytest.raises(ValueError, match="2D inputs"):
                theirs.update_state(y, y)
            assert str(tuple(y.shape)) in str(info.value)
    m = metrics.F1Score()
    m.update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="3 classes"):
        m.update_state(np.eye(4), np.eye(4))


def test_get_and_names_resolve_as_in_keras():
    for identifier in ("f1_score", "r2_score", "f_beta_score", "F1Score", "FBetaScore",
                       "R2Score"):
        ours, theirs = metrics.get(identifier), keras.metrics.get(identifier)
        assert type(ours).__name__ == type(theirs).__name__
        assert ours.name == theirs.name
    with pytest.raises(ValueError):
        keras.metrics.get("fbeta_score")
    with pytest.raises(ValueError):  # not a Keras name either
        metrics.get("fbeta_score")
    config = {"class_name": "FBetaScore", "config": {"beta": 0.5, "average": "micro"}}
    m = metrics.get(config)
    assert isinstance(m, metrics.FBetaScore) and m.beta == 0.5 and m.average == "micro"
    assert metrics.F1Score()._direction == metrics.R2Score()._direction == "up"


def test_state_is_built_lazily_in_buffers():
    f1 = metrics.F1Score(average="macro")
    assert f1.variables == [] and float(f1.result()) == 0.0  # nothing seen yet
    f1.reset_state()  # no state yet: nothing to do
    f1.update_state(np.eye(3, dtype="float32"), np.eye(3, dtype="float32") * 0.8)
    assert list(f1.state_dict()) == ["true_positives", "false_positives", "false_negatives",
                                     "intermediate_weights"]
    assert all(v.shape == (3,) for v in f1.variables)
    assert all(isinstance(v, metrics.MetricVariable) for v in f1.variables)
    assert float(f1.result()) == pytest.approx(1.0, abs=1e-5)
    micro = metrics.F1Score(average="micro")
    micro.update_state(np.eye(3), np.eye(3))
    assert all(v.shape == () for v in micro.variables)

    r2 = metrics.R2Score()
    assert list(r2.state_dict()) == ["num_samples"]
    assert np.isnan(float(r2.result()))  # as a reset Keras R2Score: 0 / 0
    r2.update_state(np.ones((4, 2)), np.ones((4, 2)))
    assert list(r2.state_dict()) == ["num_samples", "squared_sum", "sum", "residual", "count"]
    theirs = keras.metrics.R2Score()
    theirs.update_state(np.ones((4, 2)), np.ones((4, 2)))
    assert [v.path.split("/")[-1] for v in theirs.variables] == list(r2.state_dict())
    assert float(r2.num_samples) == 8.0

    # A fresh metric loads saved state (building it from the shapes), copies and moves.
    rng = np.random.default_rng(2)
    y_true = rng.normal(size=(6, 2)).astype("float32")
    y_pred = rng.normal(size=(6, 2)).astype("float32")
    r2 = metrics.R2Score(num_regressors=1)
    r2.update_state(y_true, y_pred)
    loaded = metrics.R2Score(num_regressors=1)
    loaded.load_state_dict(r2.state_dict())
    _close(loaded.result(), r2.result())
    clone = copy.deepcopy(r2)
    clone.update_state(y_true, y_true)
    assert float(clone.result()) != float(r2.result())
    r2.double()
    assert all(v.dtype == torch.float64 and isinstance(v, metrics.MetricVariable)
               for v in r2.variables)
    r2.update_state(y_true, y_pred)
    assert r2.sum.dtype == torch.float64  # the alias follows the converted buffer
    f_loaded = metrics.F1Score(average="macro")
    f_loaded.load_state_dict(f1.state_dict())
    _close(f_loaded.result(), f1.result())


def test_update_state_never_reads_the_device():
    """`update_state` traces into one graph (fullgraph=True): any `.item()`, `bool(tensor)` or
    Python branch on a tensor value would break the graph and raise here."""
    rng = np.random.default_rng(0)
    y_true = torch.from_numpy(rng.integers(0, 2, size=(6, 4)).astype("float32"))
    y_pred = torch.from_numpy(rng.uniform(size=(6, 4)).astype("float32"))
    sw = torch.from_numpy(rng.uniform(size=(6,)).astype("float32"))
    for m in (metrics.F1Score(), metrics.F1Score(average="micro", threshold=0.5),
              metrics.FBetaScore(average="weighted", beta=2.0),
              metrics.R2Score(), metrics.R2Score(class_aggregation=None, num_regressors=3)):
        m.update_state(y_true, y_pred)  # builds the state (once, eagerly, as in `fit`)
        expected = copy.deepcopy(m)
        torch._dynamo.reset()
        step = torch.compile(m.update_state, fullgraph=True, backend="eager")
        step(y_true, y_pred, sw)
        step(y_true, y_pred, None)
        expected.update_state(y_true, y_pred, sw)
        expected.update_state(y_true, y_pred, None)
        _close(m.result(), expected.result())
    torch._dynamo.reset()


def _numpy_f1_per_class(y_true, scores):
    pred = (scores == scores.max(-1, keepdims=True)).astype("float64")
    tp = (pred * y_true).sum(0)
    fp = (pred * (1 - y_true)).sum(0)
    fn = ((1 - pred) * y_true).sum(0)
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)


def test_compile_with_f1_score_string_logs_the_score():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, size=(40,))]
    model = lamina.Sequential([lamina.Input((5,)), lamina.layers.Dense(3, activation="softmax")])
    # A zero learning rate keeps the weights: fit's logged score is that of predict's outputs.
    model.compile(optimizer=lamina.optimizers.SGD(learning_rate=0.0),
                  loss="categorical_crossentropy", metrics=["f1_score"])
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history
    expected = _numpy_f1_per_class(y, model.predict(x, verbose=0))
    np.testing.assert_allclose(np.asarray(history["f1_score"][0]), expected, atol=1e-5)
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    np.testing.assert_allclose(np.asarray(logs["f1_score"]), expected, atol=1e-5)
    assert isinstance(model.metrics[-1], metrics.F1Score)


def test_compile_with_r2_score_string_logs_the_score():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2)) + 0.3 * rng.normal(size=(30, 2))).astype("float32")
    w = rng.uniform(0.5, 2.0, size=(30,)).astype("float32")
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(2)])
    model.compile(optimizer=lamina.optimizers.SGD(learning_rate=0.0), loss="mse",
                  metrics=["r2_score"], weighted_metrics=["r2_score"])
    history = model.fit(x, y, sample_weight=w, batch_size=8, epochs=1, verbose=0).history
    pred = model.predict(x, verbose=0).astype("float64")

    def r2(weights):
        mean = (weights[:, None] * y).sum(0) / weights.sum()
        ss_tot = (weights[:, None] * (y - mean) ** 2).sum(0)
        ss_res = (weights[:, None] * (y - pred) ** 2).sum(0)
        return np.mean(1 - ss_res / ss_tot)

    assert history["r2_score"][0] == pytest.approx(r2(np.ones(30)), rel=1e-4, abs=1e-5)
    assert history["weighted_r2_score"][0] == pytest.approx(r2(w.astype("float64")), rel=1e-4,
                                                            abs=1e-5)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert logs["r2_score"] == pytest.approx(r2(np.ones(30)), rel=1e-4, abs=1e-5)
