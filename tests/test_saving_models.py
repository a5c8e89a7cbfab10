"""Whole models: the `.keras` archive and the legacy full-model `.h5`; compiled state and
optimizer state survive, so training resumes exactly; interop with real Keras 3."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import json
import zipfile

import numpy as np
import pytest
import torch

import lamina
from lamina import layers
from lamina.engine.layer import Layer
from lamina.layers.recurrent import LSTM
from lamina.models import load_model
from lamina.saving import weights_h5

keras = pytest.importorskip("keras")
from keras_reference import fresh, mlp, seed_model  # noqa: E402

RNG = np.random.RandomState(2)


@pytest.fixture(autouse=True)
def _fresh_names():
    fresh(keras)


SEED_X = [RNG.randint(0, 50, (8, 10)).astype("int32"), RNG.rand(8, 5).astype("float32")]
SEED_Y = [RNG.randint(0, 2, (8, 1)).astype("float32"), RNG.rand(8, 1).astype("float32")]
MLP_X, MLP_Y = RNG.rand(8, 4).astype("float32"), RNG.rand(8, 2).astype("float32")


def compile_seed(model):
    model.compile(optimizer="adam", loss=["binary_crossentropy", "mse"], loss_weights=[1.0, 0.2],
                  metrics=[["accuracy"], ["mae"]])
    return model


def predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def optimizer_state(model):
    """Optimizer variables in Keras order and layout (lamina or Keras model)."""
    if isinstance(model, lamina.Model):
        return weights_h5._optimizer_variables(model.optimizer, model)
    return [np.asarray(v) for v in model.optimizer.variables]


def assert_all_close(a, b, atol=1e-6, rtol=1e-7):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.asarray(u, dtype="float64"), np.asarray(v, "float64"),
                                   atol=atol, rtol=rtol)


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_compiled_model_round_trip_resumes_training_identically(tmp_path, ext):
    model = compile_seed(seed_model(lamina, LSTM))
    model.fit(SEED_X, SEED_Y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / f"m{ext}"
    model.save(path)
    loaded = load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert type(loaded.optimizer).__name__ == "Adam"
    assert int(loaded.optimizer.iterations) == 2
    assert_all_close(predict(loaded, SEED_X), predict(model, SEED_X), atol=0)
    assert_all_close(optimizer_state(loaded), optimizer_state(model), atol=0)
    # One more step on both: same optimizer state, same data -> same weights.
    torch.manual_seed(0)
    model.train_on_batch(SEED_X, SEED_Y)
    torch.manual_seed(0)
    loaded.train_on_batch(SEED_X, SEED_Y)
    assert_all_close(loaded.get_weights(), model.get_weights(), atol=1e-7)
    logs = loaded.evaluate(SEED_X, SEED_Y, verbose=0, return_dict=True)
    assert {"loss", "main_output_accuracy", "aux_output_mae"} <= set(logs)


def test_keras_archive_contents(tmp_path):
    model = mlp(lamina)
    model.compile(optimizer="sgd", loss="mse")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        assert set(archive.namelist()) == {"metadata.json", "config.json", "model.weights.h5"}
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json"))
    assert config["class_name"] == "Sequential" and config["module"] == "keras"
    assert config["compile_config"]["loss"] == "mean_squared_error"
    assert config["compile_config"]["optimizer"]["class_name"] == "SGD"
    assert config["build_config"] == {"input_shape": [None, 4]}
    assert metadata["keras_version"].startswith("3.")


def test_load_without_compile_and_uncompiled_models(tmp_path):
    model = mlp(lamina)
    model.save(tmp_path / "plain.keras")
    model.save(tmp_path / "plain.h5")
    for name in ("plain.keras", "plain.h5"):
        loaded = load_model(tmp_path / name)
        assert loaded.optimizer is None
        assert_all_close(predict(loaded, MLP_X), predict(model, MLP_X), atol=0)
    model.compile("adam", "mse")
    model.save(tmp_path / "c.keras")
    assert load_model(tmp_path / "c.keras", compile=False).optimizer is None


class Scale(Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_objects_in_load_model(tmp_path):
    inputs = lamina.Input((3,))
    model = lamina.Model(inputs, Scale(4.0)(layers.Dense(2)(inputs)))
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="Unknown layer: 'Scale'"):
        load_model(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", custom_objects={"Scale": Scale})
    x = RNG.rand(2, 3).astype("float32")
    assert_all_close(predict(loaded, x), predict(model, x), atol=0)


def test_lambda_model_refused_unless_unsafe(tmp_path):
    model = lamina.Sequential([lamina.Input((3,)), layers.Lambda(lambda t: t - 1.0)])
    for ext in (".keras", ".h5"):
        model.save(tmp_path / f"m{ext}")
        with pytest.raises(ValueError, match="safe_mode=False"):
            load_model(tmp_path / f"m{ext}")
        loaded = load_model(tmp_path / f"m{ext}", safe_mode=False)
        np.testing.assert_allclose(loaded.predict(np.ones((1, 3), "float32"), verbose=0), 0.0)


# ------------------------------------------------------------------------ errors
def test_load_model_errors(tmp_path):
    with pytest.raises(ValueError, match="File not found"):
        load_model(tmp_path / "missing.keras")
    mlp(lamina).save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="No model config found"):
        load_model(tmp_path / "w.h5")
    (tmp_path / "m.txt").write_text("hello")
    with pytest.raises(ValueError, match="File format not supported"):
        load_model(tmp_path / "m.txt")
    with pytest.raises(ValueError, match="Invalid filepath extension"):
        mlp(lamina).save(tmp_path / "m.pt")
    mlp(lamina).save(tmp_path / "m.keras")
    data = (tmp_path / "m.keras").read_bytes()
    (tmp_path / "m.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid `.keras` archive"):
        load_model(tmp_path / "m.keras")


def test_crash_mid_save_keeps_previous_archive(tmp_path, monkeypatch):
    model = mlp(lamina)
    path = tmp_path / "m.keras"
    model.save(path)
    original = path.read_bytes()
    real = zipfile.ZipFile.writestr

    def crash(self, name, data, *args, **kwargs):
        if name == "model.weights.h5":
            raise OSError("disk full")
        return real(self, name, data, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", crash)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.keras"]


# ------------------------------------------------------------------------ interop
def test_keras_written_models_load_in_lamina_and_resume(tmp_path):
    kmodel = compile_seed(seed_model(keras, keras.layers.LSTM))
    kmodel.fit(SEED_X, SEED_Y, batch_size=4, epochs=1, verbose=0)
    kmodel.save(tmp_path / "k.keras")
    kmodel.save(tmp_path / "k.h5")  # after .keras: Keras's .h5 writer pops its compile optimizer
    for name in ("k.keras", "k.h5"):
        model = load_model(tmp_path / name)
        assert [l.name for l in model.layers] == [l.name for l in kmodel.layers]
        assert_all_close(predict(model, SEED_X), predict(kmodel, SEED_X), atol=1e-5)
        assert_all_close(optimizer_state(model), optimizer_state(kmodel), atol=0)
    # lamina continues Keras's training run: one more step on each, same weights.
    model = load_model(tmp_path / "k.keras")
    model.train_on_batch(SEED_X, SEED_Y)
    kmodel.train_on_batch(SEED_X, SEED_Y)
    assert_all_close(model.get_weights(), kmodel.get_weights(), atol=1e-5)


def test_keras_written_cnn_with_batchnorm_loads_in_lamina(tmp_path):
    kmodel = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3),
                               keras.layers.BatchNormalization(), keras.layers.ReLU(),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    x = RNG.rand(4, 8, 8, 3).astype("float32")
    kmodel.compile("rmsprop", "mse")
    kmodel.fit(x, RNG.rand(4, 2), epochs=2, verbose=0)  # moves the BatchNorm statistics
    kmodel.save(tmp_path / "cnn.keras")
    model = load_model(tmp_path / "cnn.keras")
    assert_all_close(predict(model, x), predict(kmodel, x), atol=1e-5)


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_lamina_written_models_load_in_keras(tmp_path, ext):
    model = compile_seed(seed_model(lamina, LSTM))
    model.fit(SEED_X, SEED_Y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / f"m{ext}")
    kmodel = keras.models.load_model(tmp_path / f"m{ext}")
    assert [l.name for l in kmodel.layers] == [l.name for l in model.layers]
    assert_all_close(predict(kmodel, SEED_X), predict(model, SEED_X), atol=1e-5)
    if ext == ".keras":  # (Keras does not restore optimizer state from legacy .h5 files)
        assert_all_close(optimizer_state(kmodel), optimizer_state(model), atol=0)
        kmodel.train_on_batch(SEED_X, SEED_Y)
        model.train_on_batch(SEED_X, SEED_Y)
        assert_all_close(kmodel.get_weights(), model.get_weights(), atol=1e-5)


def test_keras_applications_model_moves_both_ways(tmp_path):
    from lamina import applications

    x = RNG.rand(2, 32, 32, 3).astype("float32")
    kmodel = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35,
                                            classes=5, classifier_activation=None)
    rng = np.random.RandomState(3)
    kmodel.set_weights([w + rng.uniform(0, 0.1, w.shape).astype(w.dtype)
                        for w in kmodel.get_weights()])
    kmodel.save(tmp_path / "k.keras")
    loaded = load_model(tmp_path / "k.keras")
    assert [l.name for l in loaded.layers] == [l.name for l in kmodel.layers]
    assert_all_close(predict(loaded, x), predict(kmodel, x), atol=1e-4, rtol=1e-5)
    model = applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35,
                                     classes=5, classifier_activation=None)
    model.set_weights(loaded.get_weights())
    model.save(tmp_path / "l.keras")
    kloaded = keras.models.load_model(tmp_path / "l.keras")
    assert_all_close(predict(kloaded, x), predict(kmodel, x), atol=1e-4, rtol=1e-5)


def doubled_mae(y_true, y_pred):
    return 2.0 * torch.mean(torch.abs(y_true - y_pred), dim=-1)


def test_custom_loss_function_round_trip(tmp_path):
    model = mlp(lamina)
    model.compile(optimizer="sgd", loss=doubled_mae, metrics=["mae"])
    model.save(tmp_path / "m.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "m.keras").read("config.json"))
    assert config["compile_config"]["loss"] == "doubled_mae"
    with pytest.raises(ValueError, match="doubled_mae"):
        load_model(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", custom_objects={"doubled_mae": doubled_mae})
    expected = model.evaluate(MLP_X, MLP_Y, verbose=0, return_dict=True)
    got = loaded.evaluate(MLP_X, MLP_Y, verbose=0, return_dict=True)
    assert set(got) == set(expected)
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=1e-6)
    np.testing.assert_allclose(got["loss"], 2 * got["mae"], rtol=1e-5)
