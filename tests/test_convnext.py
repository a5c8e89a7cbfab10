"""keras.applications.convnext against real Keras: structure, parameter counts, predictions with
identical weights, Keras weight files, the custom layers, preprocess/decode and errors."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lamina  # noqa: E402
from lamina.applications import convnext  # noqa: E402

keras = pytest.importorskip("keras")
K = keras.applications.convnext
from keras.src.applications import convnext as K_src  # noqa: E402  (LayerScale, ...)
from keras_reference import assert_same_structure, build_pair, fresh, save_legacy_h5  # noqa: E402


def _fresh():
    fresh(keras)


def _build_pair(keras_fn, lamina_fn, **kwargs):
    return build_pair(keras, keras_fn, lamina_fn, **kwargs)


def _assert_same_structure(km, lm, blocks):
    assert_same_structure(km, lm)
    adds = [op for op in lm._graph_layers if type(op).__name__ == "Operation"]
    assert len(adds) == blocks and {op.operation for op in adds} == {"Add"}  # `inputs + x`
    assert lm.input_shape == km.input_shape and lm.output_shape == km.output_shape


def _random_weights(km, seed=0):
    rng = np.random.RandomState(seed)
    out = []
    for w, v in zip(km.get_weights(), km.weights):
        if v.path.endswith("gamma") and "layernorm" in v.path:
            out.append(rng.uniform(0.5, 1.5, size=w.shape).astype("float32"))
        elif "layer_scale" in v.path:  # far from its 1e-6 init, so the blocks matter
            out.append(rng.uniform(0.2, 1.0, size=w.shape).astype("float32"))
        else:
            out.append(rng.normal(0.0, 0.1, size=w.shape).astype("float32"))
    return out


def _pixels(shape, seed=1):
    return np.random.RandomState(seed).uniform(0, 255, size=shape).astype("float32")


# ------------------------------------------------------------------ structure
def test_tiny_full_size_structure_matches_keras():
    km, lm = _build_pair(K.ConvNeXtTiny, convnext.ConvNeXtTiny)
    _assert_same_structure(km, lm, blocks=18)
    assert lm.count_params() == 28_589_128  # Keras's published count
    assert lm.layers[1].name == "convnext_tiny_prestem_normalization"
    stem = lm.get_layer("convnext_tiny_stem")
    assert [l.name for l in stem.layers] == ["convnext_tiny_stem_conv",
                                             "convnext_tiny_stem_layernorm"]
    dw = lm.get_layer("convnext_tiny_stage_2_block_8_depthwise_conv")
    assert (dw.groups, dw.kernel_size, dw.padding) == (384, (7, 7), "same")
    assert lm.get_layer("convnext_tiny_stage_0_block_0_layernorm").epsilon == 1e-6
    scale = lm.get_layer("convnext_tiny_stage_3_block_2_layer_scale")
    np.testing.assert_allclose(scale.get_weights()[0], np.full(768, 1e-6, "float32"))


@pytest.mark.parametrize("fn,params", [
    ("ConvNeXtSmall", 50_223_688),
    pytest.param("ConvNeXtBase", 88_591_464, marks=pytest.mark.slow),
    pytest.param("ConvNeXtLarge", 197_767_336, marks=pytest.mark.slow),
    pytest.param("ConvNeXtXLarge", 350_196_968, marks=pytest.mark.slow),
])
def test_other_variants_parameter_counts(fn, params):
    km, lm = _build_pair(getattr(K, fn), getattr(convnext, fn))
    assert lm.count_params() == km.count_params() == params
    assert lm.name == km.name
    assert len(lm.layers) == len(km.layers)


def test_include_top_false_pooling_and_no_preprocessing_match_keras():
    for kwargs, blocks in ((dict(include_top=False, pooling="max", input_shape=(64, 48, 3)),
                            18),
                           (dict(include_top=False, input_shape=(40, 40, 1)), 18)):
        km, lm = _build_pair(K.ConvNeXtTiny, convnext.ConvNeXtTiny, **kwargs)
        _assert_same_structure(km, lm, blocks)
    names = [l.name for l in lm.layers]
    assert not any("prestem" in n for n in names)  # 1 channel: no normalization, as Keras


# ------------------------------------------------------------------ numbers
@pytest.mark.parametrize("kwargs", [
    dict(include_top=False, input_shape=(32, 32, 3)),
    dict(include_top=True, input_shape=(32, 32, 3), classes=4),
    dict(include_top=False, input_shape=(32, 32, 3), pooling="avg",
         include_preprocessing=False),
], ids=["no_top", "top", "avg_no_preprocessing"])
def test_tiny_predictions_match_keras(kwargs):
    km, lm = _build_pair(K.ConvNeXtTiny, convnext.ConvNeXtTiny, **kwargs)
    _assert_same_structure(km, lm, blocks=18)
    weights = _random_weights(km)
    km.set_weights(weights)
    lm.set_weights(weights)
    x = _pixels((2, 32, 32, 3))
    expected = np.asarray(km.predict(x, verbose=0))
    got = lm.predict(x, verbose=0)
    assert got.shape == expected.shape
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def test_keras_weight_files_load(tmp_path):
    kwargs = dict(include_top=True, input_shape=(32, 32, 3), classes=3)
    _fresh()
    km = K.ConvNeXtTiny(weights=None, **kwargs)
    km.set_weights(_random_weights(km, seed=2))
    save_legacy_h5(km, tmp_path / "c.h5")  # the layout of Keras's ImageNet files
    km.save_weights(tmp_path / "c.weights.h5")
    x = _pixels((2, 32, 32, 3), seed=3)
    expected = np.asarray(km.predict(x, verbose=0))
    for path in ("c.h5", "c.weights.h5"):
        _fresh()
        lm = convnext.ConvNeXtTiny(weights=str(tmp_path / path), **kwargs)
        np.testing.assert_allclose(lm.predict(x, verbose=0), expected, atol=1e-4, rtol=1e-5)


def test_input_tensor_is_used():
    _fresh()
    inp = lamina.Input(shape=(32, 32, 3))
    model = convnext.ConvNeXtTiny(weights=None, include_top=False, input_tensor=inp,
                                  pooling="avg")
    assert model.inputs[0] is inp
    assert model.output_shape == (None, 768)


# ------------------------------------------------------------------ custom layers
def test_layer_scale_by_hand_and_config_like_keras():
    layer = convnext.LayerScale(0.5, 4, name="ls")
    x = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    np.testing.assert_allclose(layer(x).detach().numpy(), x.numpy() * 0.5)
    layer.set_weights([np.array([1.0, 2.0, 3.0, 4.0], "float32")])
    np.testing.assert_allclose(layer(x).detach().numpy(), x.numpy() * [1, 2, 3, 4])
    assert [w.shape for w in layer.get_weights()] == [(4,)]
    assert len(layer.trainable_weights) == 1
    config = layer.get_config()
    reference = K_src.LayerScale(0.5, 4, name="ls").get_config()
    for key in ("name", "init_values", "projection_dim", "trainable"):
        assert config[key] == reference[key]
    clone = convnext.LayerScale.from_config(config)
    assert (clone.init_values, clone.projection_dim) == (0.5, 4)
    out = layer(x.requires_grad_())
    out.sum().backward()
    assert layer.gamma.grad is not None


def test_stochastic_depth_identity_at_inference_and_drops_whole_samples():
    layer = convnext.StochasticDepth(0.5)
    x = torch.ones(64, 3, 3, 2)
    assert torch.equal(layer(x), x)
    assert torch.equal(layer(x, training=False), x)
    torch.manual_seed(0)
    out = layer(x, training=True).numpy()
    per_sample = out.reshape(64, -1)
    # each sample is dropped (all 0) or kept and scaled by 1 / keep_prob (all 2)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    assert 10 < (per_sample[:, 0] == 0).sum() < 54
    assert layer.get_config()["drop_path_rate"] == K_src.StochasticDepth(0.5).get_config()[
        "drop_path_rate"]


def test_drop_path_rate_schedule_builds_stochastic_depth_layers():
    _fresh()
    model = convnext.ConvNeXt(depths=[1, 1, 2, 1], projection_dims=[8, 16, 24, 32],
                              drop_path_rate=0.4, include_top=False, input_shape=(32, 32, 3),
                              name="tiny_test")
    rates = [l.drop_path_rate for l in model.layers
             if isinstance(l, convnext.StochasticDepth)]
    np.testing.assert_allclose(rates, [0.1, 0.2, 0.3, 0.4])  # block 0 rate 0: an identity
    assert model.get_layer("tiny_test_stage_0_block_0_identity") is not None


# ------------------------------------------------------------------ helpers and errors
def test_preprocess_input_is_identity_and_decode_predictions():
    x = _pixels((1, 2, 2, 3))
    assert convnext.preprocess_input(x) is x
    np.testing.assert_array_equal(convnext.preprocess_input(x), K.preprocess_input(x.copy()))
    preds = np.zeros((1, 1000), dtype="float32")
    preds[0, [386, 0]] = [0.9, 0.1]
    top = convnext.decode_predictions(preds, top=2)[0]
    assert [t[:2] for t in top] == [("n02504458", "African_elephant"), ("n01440764", "tench")]


def test_errors():
    with pytest.raises(ValueError, match="classes"):
        convnext.ConvNeXtTiny(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="weights"):
        convnext.ConvNeXtTiny(weights="/no/such/file.h5")
    with pytest.raises(ValueError, match="at least 32x32"):
        convnext.ConvNeXtTiny(weights=None, include_top=False, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="classifier_activation"):
        convnext.ConvNeXtTiny(weights="imagenet", classifier_activation="relu")
    with pytest.raises(ValueError, match="convnext_tiny"):  # checked before any download
        convnext.ConvNeXtTiny(weights="imagenet", include_top=False, input_shape=(32, 32, 3),
                              name="mine")
