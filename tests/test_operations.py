"""Keras operation nodes (`x + y`, `2.0 - x`, `-x`, `x @ w`) in functional models, both ways
between lamina and real Keras."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lamina  # noqa: E402
from lamina.layers.operations import Operation  # noqa: E402

keras = pytest.importorskip("keras")

X = np.random.RandomState(0).rand(3, 4).astype("float32")


def build(lib):
    lib.backend.clear_session()
    inputs = lib.Input((4,))
    dense = lib.layers.Dense(4, name="dense")(inputs)
    x = inputs + dense
    x = 2.0 - x * 3.0
    x = -x / 4.0
    x = abs(x) @ np.eye(4, dtype="float32")
    return lib.Model(inputs, x ** 2)


def by_hand(weights):
    kernel, bias = weights
    x = 2.0 - (X + X @ kernel + bias) * 3.0
    return (np.abs(-x / 4.0)) ** 2


def test_operators_build_operation_nodes_left_out_of_layers():
    model = build(lamina)
    assert [l.name for l in model.layers] == ["input_layer", "dense"]
    ops = [l.operation for l in model._graph_layers if isinstance(l, Operation)]
    assert ops == ["Add", "Multiply", "Subtract", "Negative", "TrueDivide", "Absolute", "Matmul",
                   "Power"]
    np.testing.assert_allclose(model.predict(X, verbose=0), by_hand(model.get_weights()),
                               rtol=1e-5, atol=1e-6)


def test_keras_archive_with_operations_loads_and_lamina_writes_them_back(tmp_path):
    km = build(keras)
    km.save(tmp_path / "k.keras")
    lm = lamina.models.load_model(tmp_path / "k.keras")
    expected = km.predict(X, verbose=0)
    np.testing.assert_allclose(lm.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)
    assert [l.name for l in lm.layers] == [l.name for l in km.layers]

    lm.save(tmp_path / "l.keras")
    back = keras.models.load_model(tmp_path / "l.keras")
    np.testing.assert_allclose(back.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_lamina_operations_serialise_as_keras_does():
    lm, km = build(lamina), build(keras)
    lamina_ops = [e for e in lm.get_config()["layers"] if e["module"].startswith("keras.src.ops")]
    keras_ops = [e for e in km.get_config()["layers"] if e["module"].startswith("keras.src.ops")]
    strip = lambda e: {k: e[k] for k in ("module", "class_name", "config", "name")}  # noqa: E731
    assert [strip(e) for e in lamina_ops] == [strip(e) for e in keras_ops]
    assert [e["inbound_nodes"][0]["args"][0] for e in lamina_ops][2] == 2.0  # `2.0 - x` kept
    clone = lamina.models.model_from_json(lm.to_json())
    clone.set_weights(lm.get_weights())
    np.testing.assert_allclose(clone.predict(X, verbose=0), lm.predict(X, verbose=0), rtol=1e-6)


def test_unsupported_operation_is_refused_by_name():
    with pytest.raises(ValueError, match="'Einsum'.*Supported: Absolute, Add"):
        Operation("Einsum")
