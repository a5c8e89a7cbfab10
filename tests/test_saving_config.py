"""Configs, JSON and YAML: round trips, and trees moving between lamina and real Keras 3
(and Keras 2 JSON) with equal predictions."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import json

import numpy as np
import pytest
import yaml

import lamina
from lamina import layers
from lamina.engine.layer import Layer
from lamina.layers.recurrent import LSTM
from lamina.models import clone_model, model_from_config, model_from_json, model_from_yaml
from lamina.saving import (custom_object_scope, get_registered_object,
                           register_keras_serializable, saving_api)

keras = pytest.importorskip("keras")
from keras_reference import cnn, fresh, mlp, seed_model  # noqa: E402

RNG = np.random.RandomState(0)


@pytest.fixture(autouse=True)
def _fresh_names():
    fresh(keras)


SEED_X = [RNG.randint(0, 50, (3, 10)).astype("int32"), RNG.rand(3, 5).astype("float32")]
SEED_LAYERS = ["main_input", "embedding", "lstm", "aux_input", "concatenate", "dense",
               "dense_1", "dense_2", "main_output", "aux_output"]


def predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def assert_same(a, b, atol=1e-5):
    a, b = predict(*a), predict(*b)
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=atol)


# ------------------------------------------------------------------------ round trips
def test_sequential_config_json_yaml_round_trip():
    model = mlp(lamina)
    x = RNG.rand(3, 4).astype("float32")
    for rebuilt in (lamina.Sequential.from_config(model.get_config()),
                    model_from_json(model.to_json()), model_from_yaml(model.to_yaml()),
                    model_from_config(json.loads(model.to_json()))):
        assert [l.name for l in rebuilt.layers] == ["dense", "dense_1"]
        assert rebuilt.get_config() == model.get_config()
        rebuilt.set_weights(model.get_weights())
        assert_same((rebuilt, x), (model, x), atol=0)
    assert yaml.safe_load(model.to_yaml()) == json.loads(model.to_json())
    assert json.loads(model.to_json(indent=2)) == json.loads(model.to_json())


def test_functional_seed_model_round_trip_keeps_layer_order():
    model = seed_model(lamina, LSTM)
    assert [l.name for l in model.layers] == SEED_LAYERS
    for rebuilt in (model_from_json(model.to_json()), lamina.Model.from_config(model.get_config()),
                    model_from_yaml(model.to_yaml())):
        assert [l.name for l in rebuilt.layers] == SEED_LAYERS
        assert [l.name for l in rebuilt.inputs] == ["main_input", "aux_input"]
        assert [w.shape for w in rebuilt.get_weights()] == [w.shape for w in model.get_weights()]
        rebuilt.set_weights(model.get_weights())
        assert_same((rebuilt, SEED_X), (model, SEED_X), atol=0)


def test_shared_layers_and_nested_models_round_trip():
    ii = lamina.Input((3,))
    inner = lamina.Model(ii, layers.Dense(3, activation="tanh")(ii), name="inner_f")
    seq = lamina.Sequential([lamina.Input((3,)), layers.Dense(2)], name="inner_s")
    a, b = lamina.Input((3,), name="a"), lamina.Input((3,), name="b")
    shared = layers.Dense(3, name="shared")
    merged = layers.concatenate([inner(shared(a)), inner(shared(b))])
    model = lamina.Model([a, b], [layers.Dense(2, name="out")(merged), seq(inner(a))])
    x = [RNG.rand(2, 3).astype("float32"), RNG.rand(2, 3).astype("float32")]
    config = json.loads(model.to_json())["config"]
    assert config["output_layers"] == [["out", 0, 0], ["inner_s", 0, 0]]
    rebuilt = model_from_json(model.to_json())
    assert [l.name for l in rebuilt.layers] == [l.name for l in model.layers]
    rebuilt.set_weights(model.get_weights())
    assert_same((rebuilt, x), (model, x), atol=0)
    k = keras.models.model_from_json(model.to_json())
    k.set_weights(model.get_weights())
    assert_same((k, x), (model, x))


def test_layer_config_matches_keras():
    ours = layers.Dense(3, activation="relu", name="d").get_config()
    theirs = keras.layers.Dense(3, activation="relu", name="d").get_config()
    theirs.pop("quantization_config")
    assert ours == theirs
    assert ours["dtype"] == {"module": "keras", "class_name": "DTypePolicy",
                             "config": {"name": "float32"}, "registered_name": None}
    # A policy dict (Keras 3) or a name both work as `dtype`.
    assert layers.Dense.from_config(theirs).dtype == "float32"
    assert layers.Dense(2, dtype=ours["dtype"]).dtype == "float32"


def test_build_config_matches_keras():
    model = seed_model(lamina, LSTM)
    kmodel = seed_model(keras, keras.layers.LSTM)
    ours = json.loads(model.to_json())["config"]["layers"]
    theirs = json.loads(kmodel.to_json())["config"]["layers"]
    assert [l.get("build_config") for l in ours] == [l.get("build_config") for l in theirs]
    assert [l["inbound_nodes"] and l["inbound_nodes"][0]["args"] for l in ours] == \
        [l["inbound_nodes"] and l["inbound_nodes"][0]["args"] for l in theirs]


def test_clone_model_same_architecture_new_weights():
    model = seed_model(lamina, LSTM)
    clone = clone_model(model)
    assert [l.name for l in clone.layers] == SEED_LAYERS
    assert all(a is not b for a, b in zip(clone.layers, model.layers))
    clone.set_weights(model.get_weights())
    assert_same((clone, SEED_X), (model, SEED_X), atol=0)
    seq = mlp(lamina)
    seq_clone = clone_model(seq)
    seq_clone.set_weights(seq.get_weights())
    x = RNG.rand(2, 4).astype("float32")
    assert_same((seq_clone, x), (seq, x), atol=0)


# ------------------------------------------------------------------------ interop with Keras
def _keras_to_lamina(kmodel, x):
    model = model_from_json(kmodel.to_json())
    assert [l.name for l in model.layers] == [l.name for l in kmodel.layers]
    model.set_weights(kmodel.get_weights())
    assert_same((model, x), (kmodel, x))


def _lamina_to_keras(model, x):
    kmodel = keras.models.model_from_json(model.to_json())
    assert [l.name for l in kmodel.layers] == [l.name for l in model.layers]
    kmodel.set_weights(model.get_weights())
    assert_same((kmodel, x), (model, x))


def test_json_interop_sequential_mlp():
    x = RNG.rand(3, 4).astype("float32")
    _keras_to_lamina(mlp(keras), x)
    _lamina_to_keras(mlp(lamina), x)


def test_json_interop_seed_model():
    _keras_to_lamina(seed_model(keras, keras.layers.LSTM), SEED_X)
    _lamina_to_keras(seed_model(lamina, LSTM), SEED_X)


def test_json_interop_cnn_with_batchnorm():
    from lamina.layers.convolutional import Conv2D
    from lamina.layers.normalization import BatchNormalization
    from lamina.layers.pooling import MaxPooling2D

    x = RNG.rand(2, 8, 8, 3).astype("float32")
    kmodel = cnn(keras, keras.layers.Conv2D, keras.layers.BatchNormalization,
                 keras.layers.MaxPooling2D)
    # Non-trivial moving statistics, so that inference really uses them.
    kmodel.layers[1].set_weights([w + RNG.rand(*w.shape).astype("float32")
                                  for w in kmodel.layers[1].get_weights()])
    _keras_to_lamina(kmodel, x)
    _lamina_to_keras(cnn(lamina, Conv2D, BatchNormalization, MaxPooling2D), x)


def test_keras_mask_op_node_is_rebuilt_as_mask_propagation():
    def build(K, lstm):
        t = K.Input((6,), dtype="int32")
        return K.Model(t, lstm(3)(K.layers.Embedding(10, 4, mask_zero=True)(t)))
    kmodel = build(keras, keras.layers.LSTM)
    ops = [l for l in json.loads(kmodel.to_json())["config"]["layers"]
           if l["class_name"] == "NotEqual"]
    assert ops, "Keras writes a not_equal op node for the mask"
    x = np.array([[1, 2, 3, 0, 0, 0], [4, 0, 0, 0, 0, 0]], "int32")
    _keras_to_lamina(kmodel, x)
    _lamina_to_keras(build(lamina, LSTM), x)


KERAS2_DENSE = {"trainable": True, "dtype": "float32", "use_bias": True,
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
                "kernel_regularizer": None, "bias_regularizer": None,
                "activity_regularizer": None, "kernel_constraint": None,
                "bias_constraint": None}


def _k2_dense(name, units, activation, inbound=None):
    entry = {"class_name": "Dense",
             "config": dict(KERAS2_DENSE, name=name, units=units, activation=activation)}
    if inbound is not None:
        entry.update(name=name, inbound_nodes=inbound)
    return entry


def test_keras2_functional_json_with_nested_model_and_shared_layer():
    inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "inner_in"}},
        _k2_dense("inner_dense", 3, "tanh")]},
        # Keras 2 numbered a built nested model's calls from 1.
        "name": "inner", "inbound_nodes": [[["shared", 0, 0, {}]], [["shared", 1, 0, {}]]]}
    config = {"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": name},
         "name": name, "inbound_nodes": []} for name in ("in_a", "in_b")] + [
        _k2_dense("shared", 3, "relu", [[["in_a", 0, 0, {}]], [["in_b", 0, 0, {}]]]),
        inner,
        {"class_name": "Concatenate", "config": {"name": "concatenate", "trainable": True,
                                                 "dtype": "float32", "axis": -1},
         "name": "concatenate", "inbound_nodes": [[["inner", 1, 0, {}], ["inner", 2, 0, {}]]]},
        _k2_dense("out", 2, "linear", [[["concatenate", 0, 0, {}]]])],
        "input_layers": [["in_a", 0, 0], ["in_b", 0, 0]],
        "output_layers": [["out", 0, 0]]}, "keras_version": "2.12.0", "backend": "tensorflow"}
    model = model_from_json(json.dumps(config))
    assert [l.name for l in model.layers] == ["in_a", "in_b", "shared", "inner", "concatenate",
                                              "out"]
    w = model.get_weights()
    assert [a.shape for a in w] == [(4, 3), (3,), (3, 3), (3,), (6, 2), (2,)]
    x = [RNG.rand(3, 4).astype("float32"), RNG.rand(3, 4).astype("float32")]

    def branch(v):
        return np.tanh(np.maximum(v @ w[0] + w[1], 0) @ w[2] + w[3])
    expected = np.concatenate([branch(x[0]), branch(x[1])], -1) @ w[4] + w[5]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    # The same graph written back in Keras 3 form loads in Keras.
    kmodel = keras.models.model_from_json(model.to_json())
    kmodel.set_weights(w)
    np.testing.assert_allclose(kmodel.predict(x, verbose=0), expected, atol=1e-5)


def test_keras2_sequential_json_with_batch_input_shape():
    config = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        dict(_k2_dense("dense", 3, "relu"), config=dict(_k2_dense("dense", 3, "relu")["config"],
                                                         batch_input_shape=[None, 4])),
        {"class_name": "Dropout", "config": {"name": "dropout", "trainable": True,
                                             "dtype": "float32", "rate": 0.5,
                                             "noise_shape": None, "seed": None}},
        _k2_dense("dense_1", 2, "softmax")]}, "keras_version": "2.4.0",
        "backend": "tensorflow"}
    model = model_from_json(json.dumps(config))
    assert model.input_shape == (None, 4)
    w = model.get_weights()
    x = RNG.rand(3, 4).astype("float32")
    logits = np.maximum(x @ w[0] + w[1], 0) @ w[2] + w[3]
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-6)


# ------------------------------------------------------------------------ custom objects
class Scale(Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _custom_model():
    inputs = lamina.Input((3,))
    return lamina.Model(inputs, Scale(3.0, name="scale")(layers.Dense(2)(inputs)))


def test_unknown_class_raises_clear_error_listing_known():
    text = _custom_model().to_json()
    with pytest.raises(ValueError, match=r"Unknown layer: 'Scale'") as info:
        model_from_json(text)
    assert "Dense" in str(info.value) and "custom_objects" in str(info.value)
    x = RNG.rand(2, 3).astype("float32")
    model = _custom_model()
    for rebuilt in (model_from_json(text, custom_objects={"Scale": Scale}),):
        rebuilt.set_weights(model.get_weights())
        assert_same((rebuilt, x), (model, x), atol=0)
    with custom_object_scope({"Scale": Scale}):
        assert model_from_json(text).layers[-1].factor == 3.0


def test_registered_class_loads_without_custom_objects():
    @register_keras_serializable(package="lamina_tests")
    class Shift(Layer):
        def __init__(self, offset=1.0, **kwargs):
            super().__init__(**kwargs)
            self.offset = offset

        def call(self, inputs):
            return inputs + self.offset

        def get_config(self):
            return {**super().get_config(), "offset": self.offset}

    inputs = lamina.Input((2,))
    model = lamina.Model(inputs, Shift(0.5)(inputs))
    entry = json.loads(model.to_json())["config"]["layers"][1]
    assert entry["registered_name"] == "lamina_tests>Shift"
    assert get_registered_object("lamina_tests>Shift") is Shift
    rebuilt = model_from_json(model.to_json())
    np.testing.assert_allclose(rebuilt.predict(np.ones((1, 2), "float32"), verbose=0), 1.5)


def test_tf_op_layers_get_a_specific_hint():
    config = {"class_name": "TFOpLambda", "config": {"name": "tf.math.add", "function":
                                                     "math.add"}}
    with pytest.raises(ValueError, match="TensorFlow operation"):
        saving_api.model_from_config(config)


# ------------------------------------------------------------------------ safety
def test_lambda_bytecode_is_refused_in_safe_mode():
    model = lamina.Sequential([lamina.Input((3,)), layers.Lambda(lambda t: t * 2 + 1)])
    text = model.to_json()
    function = json.loads(text)["config"]["layers"][1]["config"]["function"]
    assert function["class_name"] == "__lambda__"
    with pytest.raises(ValueError, match="safe_mode=False"):
        model_from_json(text)
    with pytest.raises(ValueError, match="safe_mode=False"):
        model_from_yaml(model.to_yaml())
    x = RNG.rand(2, 3).astype("float32")
    unsafe = saving_api.model_from_json(text, safe_mode=False)
    np.testing.assert_allclose(unsafe.predict(x, verbose=0), x * 2 + 1, rtol=1e-6)
    # Keras-written lambdas are refused the same way.
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 3)])
    with pytest.raises(ValueError, match="safe_mode=False"):
        model_from_json(kmodel.to_json())


def test_yaml_loading_never_constructs_python_objects():
    evil = "!!python/object/apply:os.system ['echo pwned']"
    with pytest.raises(ValueError, match="YAML"):
        model_from_yaml(evil)


def test_subclassed_model_config_raises_with_guidance(tmp_path):
    class Sub(lamina.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Sub()
    model(np.ones((1, 3), "float32"))
    for action in (model.to_json, model.to_yaml, model.get_config,
                   lambda: model.save(tmp_path / "m.keras"),
                   lambda: model.save(tmp_path / "m.h5")):
        with pytest.raises(NotImplementedError, match="get_config"):
            action()
    assert not list(tmp_path.iterdir())


def test_lambda_with_named_functions_loads_safely():
    x = np.array([[-1.0, 0.5, 2.0]], "float32")
    kmodel = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(keras.activations.relu)])
    np.testing.assert_allclose(model_from_json(kmodel.to_json()).predict(x, verbose=0),
                               [[0.0, 0.5, 2.0]])
    model = lamina.Sequential([lamina.Input((3,)), layers.Lambda(lamina.activations.tanh)])
    np.testing.assert_allclose(keras.models.model_from_json(model.to_json()).predict(x, verbose=0),
                               np.tanh(x), rtol=1e-6)

    def halve(t):
        return t / 2
    text = lamina.Sequential([lamina.Input((3,)), layers.Lambda(halve)]).to_json()
    with pytest.raises(ValueError, match="halve"):
        model_from_json(text)
    np.testing.assert_allclose(
        model_from_json(text, custom_objects={"halve": halve}).predict(x, verbose=0), x / 2)


def test_model_nested_in_a_wrapper_serialises_under_keras_module():
    import lamina as lam
    from lamina.saving import serialization_lib

    inner = lam.Sequential([lam.Input((3,)), lam.layers.Dense(2)])
    config = serialization_lib.serialize_keras_object(inner)
    assert (config["module"], config["class_name"]) == ("keras", "Sequential")
    assert serialization_lib.serialize_keras_object(lam.layers.Dense(2))["module"] == "keras.layers"
    outer = lam.Sequential([lam.Input((4, 3)), lam.layers.TimeDistributed(inner)])
    rebuilt = lam.models.model_from_json(outer.to_json())
    x = np.random.rand(2, 4, 3).astype("float32")
    rebuilt.set_weights(outer.get_weights())
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), outer.predict(x, verbose=0),
                               rtol=1e-6)
