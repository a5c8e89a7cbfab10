"""EfficientNetB0-B7 against real Keras: structure, parameter counts, predictions, weight files."""
import hashlib
import os
import urllib.error

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import lamina  # noqa: E402
from lamina.applications import efficientnet as E  # noqa: E402
from lamina.utils import file_utils  # noqa: E402

keras = pytest.importorskip("keras")
KE = keras.applications.efficientnet
from keras_reference import (  # noqa: E402
    assert_same_structure, build_pair, fresh, random_statistics, save_legacy_h5)


def _fresh():
    fresh(keras)


def _pair(name, **kwargs):
    return build_pair(keras, getattr(KE, name), getattr(E, name), **kwargs)


def _images(batch=2, size=32, seed=1):
    return np.random.RandomState(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_b0_full_size_structure_matches_keras():
    km, lm = _pair("EfficientNetB0")
    assert_same_structure(km, lm)
    assert lm.count_params() == 5_330_571  # Keras's published count
    assert lm.input_shape == (None, 224, 224, 3) and lm.output_shape == (None, 1000)
    assert lm.layers[1].name == "rescaling" and lm.layers[2].name == "normalization"
    assert lm.get_layer("block2b_drop").rate == pytest.approx(0.2 * 2 / 16)


def test_b0_predictions_match_keras_with_identical_weights():
    km, lm = _pair("EfficientNetB0", include_top=False,
                   input_shape=(32, 32, 3), pooling="avg")
    assert_same_structure(km, lm)
    weights = random_statistics(km)
    km.set_weights(weights)
    lm.set_weights(weights)
    x = _images()
    expected = np.asarray(km.predict(x, verbose=0))
    got = lm.predict(x, verbose=0)
    assert got.shape == expected.shape == (2, 1280)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def test_small_head_predictions_match_keras():
    km, lm = _pair("EfficientNetB1", input_shape=(32, 32, 3), classes=5,
                   classifier_activation=None)
    assert_same_structure(km, lm)
    weights = random_statistics(km, seed=2)
    km.set_weights(weights)
    lm.set_weights(weights)
    x = _images(seed=3)
    np.testing.assert_allclose(lm.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0)),
                               atol=1e-4, rtol=1e-5)


_slow = pytest.mark.slow


@pytest.mark.parametrize("name", [
    pytest.param("EfficientNetB1", marks=_slow), "EfficientNetB2", "EfficientNetB3",
    pytest.param("EfficientNetB4", marks=_slow), pytest.param("EfficientNetB5", marks=_slow),
    pytest.param("EfficientNetB6", marks=_slow), pytest.param("EfficientNetB7", marks=_slow)])
def test_parameter_counts_match_keras(name):
    km, lm = _pair(name)
    assert lm.name == km.name
    assert lm.count_params() == km.count_params()
    assert lm.input_shape == km.input_shape


def _no_network(url, *args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_imagenet_weights_load_like_keras(tmp_path, monkeypatch):
    """weights="imagenet": Keras's file name from the cache, the extra Rescaling, predictions."""
    kwargs = dict(include_top=False, input_shape=(32, 32, 3))
    _fresh()
    source = KE.EfficientNetB0(weights=None, **kwargs)
    source.set_weights(random_statistics(source, seed=4))
    path = tmp_path / "efficientnetb0_notop.h5"
    save_legacy_h5(source, path)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()

    from keras.src.applications import efficientnet as keras_efficientnet
    monkeypatch.setattr(keras_efficientnet.file_utils, "get_file", lambda *a, **k: str(path))
    _fresh()
    km = KE.EfficientNetB0(weights="imagenet", **kwargs)

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home" / "models")
    os.replace(path, tmp_path / "home" / "models" / "efficientnetb0_notop.h5")
    monkeypatch.setitem(E.WEIGHTS_HASHES, "b0", (md5[::-1], md5))
    monkeypatch.setattr(file_utils.urllib.request, "urlretrieve", _no_network)
    _fresh()
    lm = E.EfficientNetB0(weights="imagenet", **kwargs)
    assert ([(l.name, type(l).__name__) for l in lm.layers[:5]]
            == [(l.name, type(l).__name__) for l in km.layers[:5]])
    assert type(lm.layers[3]).__name__ == "Rescaling"
    for got, expected in zip(lm.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(got, expected)
    x = _images(seed=5)
    np.testing.assert_allclose(lm.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0)),
                               atol=1e-4, rtol=1e-5)


def test_imagenet_offline_error_names_keras_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils.urllib.request, "urlretrieve", _no_network)
    with pytest.raises(OSError) as info:
        E.EfficientNetB3(weights="imagenet")
    assert "https://storage.googleapis.com/keras-applications/efficientnetb3.h5" in str(info.value)


def test_arguments_and_helpers():
    with pytest.raises(ValueError, match="classes"):
        E.EfficientNetB0(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="softmax"):
        E.EfficientNetB0(weights="imagenet", classifier_activation="relu")
    with pytest.raises(ValueError, match="at least 32x32"):
        E.EfficientNetB0(weights=None, include_top=False, input_shape=(16, 16, 3))
    _fresh()
    inp = lamina.Input(shape=(48, 48, 3))
    model = E.EfficientNetB0(weights=None, input_tensor=inp, include_top=False, pooling="max",
                             name="tiny")
    assert model.inputs[0] is inp and model.name == "tiny"
    assert model.layers[-1].name == "max_pool" and model.output_shape == (None, 1280)
    x = _images()
    assert E.preprocess_input(x) is x
    preds = np.zeros((1, 1000), "float32")
    preds[0, 386] = 1.0
    assert E.decode_predictions(preds, top=1)[0][0][:2] == ("n02504458", "African_elephant")
    assert E.EfficientNetB5.__name__ == "EfficientNetB5"
