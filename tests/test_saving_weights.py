"""Weight files: the legacy Keras 2 `.h5` layout, Keras 3 `.weights.h5`, `.safetensors`;
round trips, interop with real Keras 3 both ways, errors that leave weights untouched, and
atomic writes."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import h5py
import numpy as np
import pytest

import lamina
from lamina import layers
from lamina.layers.convolutional import Conv2D
from lamina.layers.normalization import BatchNormalization
from lamina.layers.pooling import MaxPooling2D
from lamina.layers.recurrent import LSTM
from lamina.saving import atomic, legacy_h5, weights_h5

keras = pytest.importorskip("keras")
from keras_reference import cnn, fresh, mlp, seed_model  # noqa: E402

RNG = np.random.RandomState(1)


@pytest.fixture(autouse=True)
def _fresh_names():
    fresh(keras)


def lamina_cnn():
    return cnn(lamina, Conv2D, BatchNormalization, MaxPooling2D)


def keras_cnn():
    return cnn(keras, keras.layers.Conv2D, keras.layers.BatchNormalization,
               keras.layers.MaxPooling2D)


CASES = {
    "mlp": (lambda: mlp(lamina), lambda: mlp(keras), RNG.rand(3, 4).astype("float32")),
    "seed": (lambda: seed_model(lamina, LSTM), lambda: seed_model(keras, keras.layers.LSTM),
             [RNG.randint(0, 50, (3, 10)).astype("int32"), RNG.rand(3, 5).astype("float32")]),
    "cnn": (lamina_cnn, keras_cnn, RNG.rand(2, 8, 8, 3).astype("float32")),
}


def predict(model, x):
    out = model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]


def randomize(model):
    """Distinct, non-trivial values for every weight (BatchNorm variances stay positive)."""
    model.set_weights([RNG.uniform(0.5, 1.5, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


def assert_weights_equal(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------------------ layouts
def test_legacy_h5_layout(tmp_path):
    model = randomize(lamina_cnn())
    model.save_weights(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "r") as f:
        names = legacy_h5.load_attributes(f, "layer_names")
        assert names == [l.name for l in model.layers]
        text = {k: v.decode() if isinstance(v, bytes) else v for k, v in f.attrs.items()
                if k in ("backend", "keras_version")}
        assert text["backend"] == "torch" and text["keras_version"].startswith("3.")
        assert legacy_h5.load_attributes(f["conv2d"], "weight_names") == [
            "conv2d/kernel:0", "conv2d/bias:0"]
        assert legacy_h5.load_attributes(f["batch_normalization"], "weight_names") == [
            f"batch_normalization/{n}:0" for n in ("gamma", "beta", "moving_mean",
                                                   "moving_variance")]
        assert legacy_h5.load_attributes(f["flatten"], "weight_names") == []
        kernel = np.asarray(f["conv2d"]["conv2d/kernel:0"])
    assert kernel.shape == (3, 3, 3, 4)  # Keras layout, not torch's (out, in, kh, kw)
    np.testing.assert_array_equal(kernel, model.layers[0].get_weights()[0])


def test_legacy_attributes_are_chunked_when_large(tmp_path):
    names = [f"layer_with_a_long_name_{i:05d}" for i in range(3000)]
    with h5py.File(tmp_path / "a.h5", "w") as f:
        legacy_h5.save_attributes(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names0" in f.attrs
        assert legacy_h5.load_attributes(f, "layer_names") == names


def _datasets(path):
    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = obj.shape
    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


@pytest.mark.parametrize("case", ["seed", "cnn"])
def test_weights_h5_layout_matches_keras(tmp_path, case):
    build, kbuild, _ = CASES[case]
    build().save_weights(tmp_path / "l.weights.h5")
    kbuild().save_weights(tmp_path / "k.weights.h5")
    ours, theirs = _datasets(tmp_path / "l.weights.h5"), _datasets(tmp_path / "k.weights.h5")
    assert ours == theirs
    assert "layers/lstm/cell/vars/0" in ours or "layers/conv2d/vars/0" in ours


def test_nested_wrappers_paths_match_keras(tmp_path):
    from lamina.layers.recurrent import GRUCell, RNN, Bidirectional
    from lamina.layers.wrappers import TimeDistributed

    def build(K, lstm, bi, td, rnn, cell, bn):
        inner = K.Sequential([K.layers.Dense(3), bn()], name="inner")
        i = K.Input((5, 4))
        x = bi(lstm(3, return_sequences=True))(i)
        x = td(K.layers.Dense(4))(x)
        x = rnn([cell(2), cell(3)], return_sequences=True)(x)
        return K.Model(i, inner(K.layers.Flatten()(x)))
    kmodel = build(keras, keras.layers.LSTM, keras.layers.Bidirectional,
                   keras.layers.TimeDistributed, keras.layers.RNN, keras.layers.GRUCell,
                   keras.layers.BatchNormalization)
    model = build(lamina, LSTM, Bidirectional, TimeDistributed, RNN, GRUCell,
                  BatchNormalization)
    kmodel.save_weights(tmp_path / "k.weights.h5")
    model.save_weights(tmp_path / "l.weights.h5")
    assert _datasets(tmp_path / "l.weights.h5") == _datasets(tmp_path / "k.weights.h5")
    x = RNG.rand(2, 5, 4).astype("float32")
    randomize(kmodel).save_weights(tmp_path / "k.weights.h5")
    model.load_weights(tmp_path / "k.weights.h5")
    np.testing.assert_allclose(predict(model, x)[0], predict(kmodel, x)[0], atol=1e-5)


# ------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("ext", [".h5", ".weights.h5", ".safetensors"])
def test_round_trip(tmp_path, case, ext):
    build, _, x = CASES[case]
    source, target = randomize(build()), build()
    path = tmp_path / f"w{ext}"
    source.save_weights(path)
    target.load_weights(path)
    assert_weights_equal(source, target)
    for a, b in zip(predict(source, x), predict(target, x)):
        np.testing.assert_array_equal(a, b)


def test_safetensors_file_is_standard(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = randomize(mlp(lamina))
    model.save_weights(tmp_path / "w.safetensors")
    tensors = safetensors_numpy.load_file(str(tmp_path / "w.safetensors"))
    np.testing.assert_array_equal(tensors["layers/dense/vars/0"], model.get_weights()[0])


# ------------------------------------------------------------------------ interop
@pytest.mark.parametrize("case", sorted(CASES))
def test_keras_written_weights_load_in_lamina(tmp_path, case):
    build, kbuild, x = CASES[case]
    kmodel = randomize(kbuild())
    kmodel.save_weights(tmp_path / "k.weights.h5")
    kmodel.save(tmp_path / "k.h5")  # legacy layout, read through `load_weights`
    for name in ("k.weights.h5", "k.h5"):
        model = build()
        model.load_weights(tmp_path / name)
        for a, b in zip(predict(model, x), predict(kmodel, x)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_lamina_written_weights_load_in_keras(tmp_path, case):
    build, kbuild, x = CASES[case]
    model = randomize(build())
    model.save_weights(tmp_path / "l.weights.h5")
    model.save_weights(tmp_path / "l.h5")
    for name in ("l.weights.h5", "l.h5"):
        kmodel = kbuild()
        kmodel.load_weights(tmp_path / name)
        for a, b in zip(predict(kmodel, x), predict(model, x)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------ by name, mismatches
def test_load_by_name_and_skip_mismatch(tmp_path):
    source = randomize(lamina.Sequential([lamina.Input((4,)), layers.Dense(5, name="a"),
                                          layers.Dense(3, name="b"), layers.Dense(2, name="c")]))
    source.save_weights(tmp_path / "w.h5")
    other = lamina.Sequential([lamina.Input((4,)), layers.Dense(5, name="a"),
                               layers.Dense(7, name="b"), layers.Dense(2, name="z")])
    before = other.get_weights()
    with pytest.raises(ValueError, match="Shape mismatch"):
        other.load_weights(tmp_path / "w.h5", by_name=True)
    assert all(np.array_equal(u, v) for u, v in zip(before, other.get_weights()))
    with pytest.warns(UserWarning, match="Skipping"):
        other.load_weights(tmp_path / "w.h5", by_name=True, skip_mismatch=True)
    after = other.get_weights()
    np.testing.assert_array_equal(after[0], source.get_weights()[0])  # "a" loaded
    np.testing.assert_array_equal(after[2], before[2])                 # "b" skipped
    np.testing.assert_array_equal(after[4], before[4])                 # "z" not in file


def test_topological_errors_leave_weights_unchanged(tmp_path):
    source = randomize(mlp(lamina))
    source.save_weights(tmp_path / "w.h5")
    source.save_weights(tmp_path / "w.weights.h5")
    deeper = lamina.Sequential([lamina.Input((4,)), layers.Dense(5), layers.Dense(5),
                                layers.Dense(2)])
    wider = lamina.Sequential([lamina.Input((4,)), layers.Dense(5), layers.Dense(3)])
    for model, path, pattern in [
            (deeper, "w.h5", "Layer count mismatch.*expected 3 layers, found 2"),
            (wider, "w.h5", r"Shape mismatch.*expects shape \(5, 3\).*\(5, 2\)"),
            (wider, "w.weights.h5", r"expects shape \(5, 3\), the file holds shape \(5, 2\)"),
            (deeper, "w.weights.h5", r"expects shape \(5, 5\), the file holds shape \(5, 2\)"),
            (lamina.Sequential([lamina.Input((4,)), layers.Dense(5), layers.Dense(2),
                                layers.Dense(2)]), "w.weights.h5",
             "expected 2 variables, but received 0")]:
        before = model.get_weights()
        with pytest.raises(ValueError, match=pattern):
            model.load_weights(tmp_path / path)
        assert all(np.array_equal(u, v) for u, v in zip(before, model.get_weights()))


def test_weight_count_mismatch_message(tmp_path):
    lamina.Sequential([lamina.Input((4,)), layers.Dense(2, use_bias=False)]).save_weights(
        tmp_path / "w.h5")
    model = lamina.Sequential([lamina.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match=r"Weight count mismatch for layer #0.*expects 2 "
                                         r"weight\(s\). Received 1"):
        model.load_weights(tmp_path / "w.h5")


@pytest.mark.parametrize("ext", [".h5", ".weights.h5", ".safetensors", ".keras"])
def test_corrupt_and_truncated_files_leave_weights_unchanged(tmp_path, ext):
    source, target = randomize(mlp(lamina)), mlp(lamina)
    path = tmp_path / f"w{ext}"
    if ext == ".keras":
        source.save(path)
    else:
        source.save_weights(path)
    data = path.read_bytes()
    before = target.get_weights()
    for broken in (data[: len(data) // 2], b"not a weights file at all" * 10):
        path.write_bytes(broken)
        with pytest.raises(ValueError, match="corrupt|truncated|not a valid|not a readable"):
            target.load_weights(path)
        assert all(np.array_equal(u, v) for u, v in zip(before, target.get_weights()))


def test_unbuilt_model_and_bad_paths(tmp_path):
    randomize(mlp(lamina)).save_weights(tmp_path / "w.weights.h5")
    unbuilt = lamina.Sequential([layers.Dense(5), layers.Dense(2)])
    with pytest.raises(ValueError, match="never built"):
        unbuilt.load_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        mlp(lamina).save_weights(tmp_path / "w.txt")
    with pytest.raises(FileNotFoundError):
        mlp(lamina).load_weights(tmp_path / "missing.h5")
    with pytest.raises(ValueError, match="by_name"):
        mlp(lamina).load_weights(tmp_path / "w.weights.h5", by_name=True)


# ------------------------------------------------------------------------ atomic writes
@pytest.mark.parametrize("ext", [".h5", ".weights.h5"])
def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch, ext):
    path = tmp_path / f"w{ext}"
    model = randomize(mlp(lamina))
    model.save_weights(path)
    original = path.read_bytes()
    writer = (legacy_h5, "save_weights_to_group") if ext == ".h5" else (weights_h5,
                                                                         "save_to_group")
    real = getattr(*writer)

    def crash(group, *args, **kwargs):
        real(group, *args, **kwargs)  # the data is written...
        raise RuntimeError("disk on fire")  # ...but the save never completes
    monkeypatch.setattr(*writer, crash)
    randomize(model)
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.save_weights(path)
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind


def test_overwrite_false_keeps_file(tmp_path):
    path = tmp_path / "w.weights.h5"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        mlp(lamina).save_weights(path, overwrite=False)
    assert path.read_bytes() == b"keep me"


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.bin"
    atomic.write_bytes(path, b"one")
    with pytest.raises(KeyError):
        with atomic.atomic_write(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"two")
            raise KeyError("boom")
    assert path.read_bytes() == b"one"
    atomic.write_bytes(path, b"three")
    assert path.read_bytes() == b"three" and os.listdir(tmp_path) == ["f.bin"]


def test_multi_head_attention_weights_match_keras(tmp_path):
    def build(K):
        q, v = K.Input((4, 6)), K.Input((5, 6))
        return K.Model([q, v], K.layers.MultiHeadAttention(2, 3)(q, v))
    kmodel, model = randomize(build(keras)), build(lamina)
    kmodel.save_weights(tmp_path / "k.weights.h5")
    model.save_weights(tmp_path / "l.weights.h5")
    layout = _datasets(tmp_path / "l.weights.h5")
    assert layout == _datasets(tmp_path / "k.weights.h5")
    assert "layers/multi_head_attention/query_dense/vars/0" in layout
    model.load_weights(tmp_path / "k.weights.h5")
    x = [RNG.rand(2, 4, 6).astype("float32"), RNG.rand(2, 5, 6).astype("float32")]
    np.testing.assert_allclose(predict(model, x)[0], predict(kmodel, x)[0], rtol=1e-5,
                               atol=1e-5)
