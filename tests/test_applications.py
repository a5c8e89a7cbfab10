"""keras.applications: every family against real Keras (names, classes, parameter counts, weight
shapes, predictions with identical weights), weight files, preprocess/decode, and `get_file`."""
import contextlib
import gzip
import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
import urllib.error
import zipfile

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lamina  # noqa: E402
from lamina import applications as apps  # noqa: E402
from lamina.applications import imagenet_utils  # noqa: E402
from lamina.utils import file_utils  # noqa: E402

keras = pytest.importorskip("keras")
from keras_reference import (  # noqa: E402
    assert_same_structure, build_pair, fresh, random_statistics, save_legacy_h5)
K = keras.applications


def _fresh():
    fresh(keras)


def _assert_same_predictions(km, lm, batch=2, seed=1):
    weights = random_statistics(km)
    km.set_weights(weights)
    lm.set_weights(weights)
    shape = (batch,) + tuple(km.input_shape[1:])
    x = np.random.RandomState(seed).uniform(-1, 1, size=shape).astype("float32")
    expected = np.asarray(km.predict(x, verbose=0))
    got = np.asarray(lm.predict(x, verbose=0))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-5)


def _keras_nasnet_mobile(**kwargs):
    # keras.applications.NASNetMobile refuses the torch backend; its builder does not.
    from keras.src.applications import nasnet as keras_nasnet
    if not kwargs.get("include_top", True) and kwargs.get("input_shape") is None:
        kwargs["input_shape"] = (224, 224, 3)
    return keras_nasnet.NASNet(kwargs.pop("input_shape", None), penultimate_filters=1056,
                               num_blocks=4, stem_block_filters=32, skip_reduction=False,
                               filter_multiplier=2, default_size=224, name="nasnet_mobile",
                               **kwargs)


# One model per family, at the smallest input the family allows: structure and predictions.
SMALL = [
    ("vgg16", K.VGG16, apps.VGG16, dict(include_top=False, input_shape=(32, 32, 3),
                                         pooling="avg")),
    ("resnet50", K.ResNet50, apps.ResNet50, dict(include_top=True, input_shape=(32, 32, 3),
                                                  classes=10)),
    ("resnet50v2", K.ResNet50V2, apps.ResNet50V2, dict(include_top=False,
                                                        input_shape=(32, 32, 3),
                                                        pooling="max")),
    ("inception_v3", K.InceptionV3, apps.InceptionV3, dict(include_top=False,
                                                            input_shape=(75, 75, 3))),
    ("inception_resnet_v2", K.InceptionResNetV2, apps.InceptionResNetV2,
     dict(include_top=False, input_shape=(75, 75, 3), pooling="avg")),
    ("xception", K.Xception, apps.Xception, dict(include_top=True, input_shape=(71, 71, 3),
                                                  classes=5)),
    ("mobilenet", K.MobileNet, apps.MobileNet, dict(include_top=True, input_shape=(32, 32, 3),
                                                     alpha=0.25, classes=7)),
    ("mobilenet_v2", K.MobileNetV2, apps.MobileNetV2, dict(include_top=True,
                                                            input_shape=(32, 32, 3),
                                                            alpha=0.35, classes=7)),
    ("densenet121", K.DenseNet121, apps.DenseNet121, dict(include_top=False,
                                                           input_shape=(32, 32, 3))),
    ("nasnet_mobile", _keras_nasnet_mobile, apps.NASNetMobile,
     dict(include_top=False, input_shape=(32, 32, 3))),
]


@pytest.mark.parametrize("keras_fn,lamina_fn,kwargs", [s[1:] for s in SMALL],
                         ids=[s[0] for s in SMALL])
def test_family_matches_keras(keras_fn, lamina_fn, kwargs):
    km, lm = build_pair(keras, keras_fn, lamina_fn, **kwargs)
    assert_same_structure(km, lm)
    _assert_same_predictions(km, lm)


_slow = pytest.mark.slow
# Full-size structure (names, classes, parameter count, weight shapes) of the other variants.
FULL = [
    ("vgg19", K.VGG19, apps.VGG19, dict(), []),
    ("mobilenet_v2_1.4", K.MobileNetV2, apps.MobileNetV2, dict(alpha=1.4), []),
    ("mobilenet_0.5_160", K.MobileNet, apps.MobileNet, dict(alpha=0.5, depth_multiplier=2,
                                                           input_shape=(160, 160, 3)), []),
    ("resnet101", K.ResNet101, apps.ResNet101, dict(), [_slow]),
    ("resnet152", K.ResNet152, apps.ResNet152, dict(), [_slow]),
    ("resnet101v2", K.ResNet101V2, apps.ResNet101V2, dict(), [_slow]),
    ("resnet152v2", K.ResNet152V2, apps.ResNet152V2, dict(), [_slow]),
    ("inception_v3", K.InceptionV3, apps.InceptionV3, dict(), [_slow]),
    ("inception_resnet_v2", K.InceptionResNetV2, apps.InceptionResNetV2, dict(), [_slow]),
    ("xception", K.Xception, apps.Xception, dict(), [_slow]),
    ("densenet169", K.DenseNet169, apps.DenseNet169, dict(), [_slow]),
    ("densenet201", K.DenseNet201, apps.DenseNet201, dict(), [_slow]),
    ("nasnet_large", K.NASNetLarge, apps.NASNetLarge, dict(), [_slow]),
    ("nasnet_mobile", _keras_nasnet_mobile, apps.NASNetMobile, dict(), [_slow]),
]


@pytest.mark.parametrize("keras_fn,lamina_fn,kwargs",
                         [pytest.param(*f[1:4], marks=f[4], id=f[0]) for f in FULL])
def test_full_size_structure_matches_keras(keras_fn, lamina_fn, kwargs):
    km, lm = build_pair(keras, keras_fn, lamina_fn, **kwargs)
    assert_same_structure(km, lm)


@_slow
@pytest.mark.parametrize("keras_fn,lamina_fn,kwargs", [
    (K.ResNet101, apps.ResNet101, dict(include_top=False, input_shape=(32, 32, 3))),
    (K.DenseNet201, apps.DenseNet201, dict(include_top=False, input_shape=(32, 32, 3))),
    (K.NASNetLarge, apps.NASNetLarge, dict(include_top=False, input_shape=(32, 32, 3))),
], ids=["resnet101", "densenet201", "nasnet_large"])
def test_large_variants_predict_like_keras(keras_fn, lamina_fn, kwargs):
    km, lm = build_pair(keras, keras_fn, lamina_fn, **kwargs)
    _assert_same_predictions(km, lm, batch=1)


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("family", ["ResNet50", "MobileNetV2"])  # pools named / unnamed by Keras
def test_pooling_without_top_matches_keras(family, pooling):
    km, lm = build_pair(keras, getattr(K, family), getattr(apps, family), include_top=False,
                        pooling=pooling, input_shape=(32, 32, 3))
    assert_same_structure(km, lm)
    assert lm.output_shape == km.output_shape


def test_known_parameter_counts():
    """Keras's published parameter counts (the README table)."""
    assert apps.ResNet50(weights=None).count_params() == 25_636_712
    assert apps.MobileNet(weights=None).count_params() == 4_253_864


# ------------------------------------------------------------------ ResNeXt (keras_applications)
def _grouped_conv_reference(x, depthwise_kernel, groups, stride):
    """A true grouped convolution (torch `groups=`) with the depthwise kernel regrouped."""
    kh, kw, channels, c = depthwise_kernel.shape
    # depthwise output channel ch*c + m, summed over the c input channels of each group
    weight = depthwise_kernel.reshape(kh, kw, groups, c, c)        # (kh, kw, g, j, m)
    weight = weight.transpose(2, 4, 3, 0, 1).reshape(groups * c, c, kh, kw)  # (g*m, j, kh, kw)
    out = torch.nn.functional.conv2d(torch.as_tensor(x).permute(0, 3, 1, 2),
                                     torch.as_tensor(np.ascontiguousarray(weight)),
                                     stride=stride, groups=groups)
    return out.permute(0, 2, 3, 1).numpy()


def test_resnext50_structure_and_published_parameter_count():
    lamina.backend.clear_session()
    model = apps.ResNeXt50(weights=None)
    assert model.count_params() == 25_097_128  # keras_applications' README
    assert model.name == "resnext50"
    names = [layer.name for layer in model.layers]
    assert names[:7] == ["input_layer", "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu",
                         "pool1_pad", "pool1_pool"]
    assert names[-2:] == ["avg_pool", "probs"]
    assert model.get_layer("conv1_conv").use_bias is False
    dw = model.get_layer("conv2_block1_2_conv")
    assert type(dw).__name__ == "DepthwiseConv2D" and dw.depth_multiplier == 4
    assert type(model.get_layer("conv2_block1_2_reduce")).__name__ == "Lambda"
    assert model.get_layer("conv5_block3_3_conv").filters == 2048
    assert model.output_shape == (None, 1000)


def test_resnext_block_is_a_grouped_convolution():
    from lamina.applications.resnet import residual_block_x

    lamina.backend.clear_session()
    inputs = lamina.Input(shape=(6, 6, 64))
    out = residual_block_x(inputs, 64, stride=2, groups=32, name="b")
    model = lamina.Model(inputs, out)
    mid = lamina.Model(inputs, model.get_layer("b_2_conv").output)
    grouped = lamina.Model(inputs, model.get_layer("b_2_reduce").output)
    x = np.random.RandomState(0).rand(2, 6, 6, 64).astype("float32")
    pre = lamina.Model(inputs, model.get_layer("b_2_pad").output).predict(x, verbose=0)
    kernel = model.get_layer("b_2_conv").get_weights()[0]         # (3, 3, 64, 2)
    expected = _grouped_conv_reference(pre, kernel, groups=32, stride=2)
    got = grouped.predict(x, verbose=0).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert mid.output_shape == (None, 3, 3, 128)
    assert model.output_shape == (None, 3, 3, 128)


def test_resnext_needs_a_static_input_shape():
    with pytest.raises(ValueError, match="static `input_shape`"):
        apps.ResNeXt50(weights=None, include_top=False)


# ------------------------------------------------------------------ arguments
def test_input_tensor_and_pooling():
    lamina.backend.clear_session()
    inp = lamina.Input(shape=(40, 40, 3))
    model = apps.MobileNetV2(weights=None, input_tensor=inp, include_top=False, pooling="avg",
                             alpha=0.35)
    assert model.inputs[0] is inp
    assert model.output_shape == (None, 1280)
    assert model.name == "mobilenetv2_0.35_None"  # as Keras: rows come from input_shape
    model = apps.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3),
                          pooling="max")
    assert model.layers[-1].name == "max_pool" and model.output_shape == (None, 2048)


def test_argument_errors():
    with pytest.raises(ValueError, match="weights"):
        apps.VGG16(weights="/no/such/file.h5")
    with pytest.raises(ValueError, match="classes"):
        apps.ResNet50(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="at least 75x75"):
        apps.InceptionV3(weights=None, include_top=False, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="static `input_shape`"):
        apps.Xception(weights=None, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match="softmax"):
        apps.VGG16(weights="imagenet", classifier_activation="relu")
    with pytest.raises(ValueError, match="alpha"):
        apps.MobileNet(weights="imagenet", alpha=0.3)


# ------------------------------------------------------------------ weight files
def test_keras_legacy_h5_loads_from_path_and_from_cache(tmp_path, monkeypatch):
    kwargs = dict(alpha=0.25, include_top=False, input_shape=(128, 128, 3))
    _fresh()
    km = K.MobileNet(weights=None, **kwargs)
    km.set_weights(random_statistics(km))
    x = np.random.RandomState(3).rand(1, 128, 128, 3).astype("float32")
    expected = np.asarray(km.predict(x, verbose=0))

    path = tmp_path / "w.h5"
    save_legacy_h5(km, path)
    lm = apps.MobileNet(weights=str(path), **kwargs)
    np.testing.assert_allclose(lm.predict(x, verbose=0), expected, atol=1e-5)

    # weights="imagenet" finds Keras's file name in $KERAS_HOME/models without any download
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home" / "models")
    os.replace(path, tmp_path / "home" / "models" / "mobilenet_2_5_128_tf_no_top.h5")
    monkeypatch.setattr(file_utils.urllib.request, "urlretrieve", _no_network)
    lm = apps.MobileNet(weights="imagenet", **kwargs)
    np.testing.assert_allclose(lm.predict(x, verbose=0), expected, atol=1e-5)


def test_keras_legacy_h5_of_resnet_family_loads(tmp_path):
    kwargs = dict(include_top=True, input_shape=(32, 32, 3), classes=3)
    km, _ = build_pair(keras, K.ResNet50V2, apps.ResNet50V2, **kwargs)
    km.set_weights(random_statistics(km))
    save_legacy_h5(km, tmp_path / "r.h5")
    lm = apps.ResNet50V2(weights=str(tmp_path / "r.h5"), **kwargs)
    x = np.random.RandomState(4).rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(lm.predict(x, verbose=0), km.predict(x, verbose=0), atol=1e-5)


def test_keras3_weights_h5_loads(tmp_path):
    kwargs = dict(alpha=0.25, include_top=True, input_shape=(32, 32, 3), classes=4)
    km, _ = build_pair(keras, K.MobileNet, apps.MobileNet, **kwargs)
    km.set_weights(random_statistics(km, seed=5))
    km.save_weights(tmp_path / "m.weights.h5")
    lm = apps.MobileNet(weights=str(tmp_path / "m.weights.h5"), **kwargs)
    x = np.random.RandomState(6).rand(2, 32, 32, 3).astype("float32")
    np.testing.assert_allclose(lm.predict(x, verbose=0), km.predict(x, verbose=0), atol=1e-5)


def _no_network(url, *args, **kwargs):
    raise urllib.error.URLError("network is unreachable")


def test_imagenet_weights_offline_error_names_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(file_utils.urllib.request, "urlretrieve", _no_network)
    with pytest.raises(OSError) as info:
        apps.VGG16(weights="imagenet", include_top=False, input_shape=(32, 32, 3))
    message = str(info.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" in message
    assert not os.listdir(tmp_path / "models")  # nothing half-written left behind


# ------------------------------------------------------------------ preprocess / decode
def test_preprocess_input_modes_by_hand():
    x = np.array([[[[10.0, 20.0, 30.0], [255.0, 0.0, 127.5]]]], dtype="float32")  # (1,1,2,3)
    caffe = imagenet_utils.preprocess_input(x.copy(), mode="caffe")
    np.testing.assert_allclose(caffe[0, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68],
                               rtol=1e-6)
    np.testing.assert_allclose(caffe[0, 0, 1], [127.5 - 103.939, 0 - 116.779, 255 - 123.68],
                               rtol=1e-6)
    tf = imagenet_utils.preprocess_input(x.copy(), mode="tf")
    np.testing.assert_allclose(tf[0, 0, 1], [1.0, -1.0, 0.0], atol=1e-7)
    th = imagenet_utils.preprocess_input(x.copy(), mode="torch")
    np.testing.assert_allclose(
        th[0, 0, 0], [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224,
                      (30 / 255 - 0.406) / 0.225], rtol=1e-5)
    # channels_first, a single 3D image, integer input (copied to float32)
    xi = np.arange(12, dtype="uint8").reshape(3, 2, 2)
    cf = imagenet_utils.preprocess_input(xi, data_format="channels_first", mode="caffe")
    assert cf.dtype == np.float32 and xi.dtype == np.uint8
    np.testing.assert_allclose(cf[0], xi[2].astype("float32") - 103.939, rtol=1e-6)
    np.testing.assert_allclose(cf[2], xi[0].astype("float32") - 123.68, rtol=1e-6)


def test_preprocess_input_matches_keras_numpy_and_torch():
    rng = np.random.RandomState(0)
    for mode, module in (("caffe", apps.resnet50), ("tf", apps.xception),
                         ("torch", apps.densenet)):
        for data_format, shape in (("channels_last", (2, 4, 5, 3)),
                                   ("channels_first", (2, 3, 4, 5))):
            x = rng.uniform(0, 255, size=shape).astype("float32")
            expected = K.imagenet_utils.preprocess_input(x.copy(), data_format=data_format,
                                                         mode=mode)
            got = module.preprocess_input(x.copy(), data_format=data_format)
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)
            got_t = imagenet_utils.preprocess_input(torch.as_tensor(x), data_format=data_format,
                                                    mode=mode)
            assert isinstance(got_t, torch.Tensor)
            np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-6, atol=1e-5)
    x = rng.uniform(0, 255, size=(1, 2, 2, 3)).astype("float32")
    np.testing.assert_allclose(apps.resnext.preprocess_input(x.copy()),
                               imagenet_utils.preprocess_input(x.copy(), mode="torch"))
    np.testing.assert_allclose(apps.vgg19.preprocess_input(x.copy()),
                               imagenet_utils.preprocess_input(x.copy(), mode="caffe"))
    np.testing.assert_allclose(apps.mobilenet_v2.preprocess_input(x.copy()), x / 127.5 - 1,
                               rtol=1e-6)


def test_preprocess_input_on_a_symbolic_input():
    inp = lamina.Input(shape=(2, 2, 3))
    model = lamina.Model(inp, apps.resnet50.preprocess_input(inp))
    x = np.random.RandomState(0).uniform(0, 255, size=(1, 2, 2, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               K.imagenet_utils.preprocess_input(x.copy(), mode="caffe"),
                               rtol=1e-6, atol=1e-5)


def test_preprocess_input_modifies_float_arrays_in_place_like_keras():
    x = np.full((1, 1, 1, 3), 255.0, dtype="float32")
    out = imagenet_utils.preprocess_input(x, mode="tf")
    assert np.shares_memory(out, x) and np.allclose(x, 1.0)


def test_preprocess_input_errors():
    with pytest.raises(ValueError, match="mode"):
        imagenet_utils.preprocess_input(np.zeros((1, 2, 2, 3)), mode="bgr")
    with pytest.raises(ValueError, match="data_format"):
        imagenet_utils.preprocess_input(np.zeros((1, 2, 2, 3)), data_format="nhwc")


def test_class_index_is_kerass_published_file():
    path = os.path.join(os.path.dirname(imagenet_utils.__file__), "imagenet_class_index.json.gz")
    with gzip.open(path, "rb") as f:
        data = f.read()
    assert hashlib.md5(data).hexdigest() == imagenet_utils.CLASS_INDEX_HASH
    index = json.loads(data)
    assert len(index) == 1000
    assert index["0"] == ["n01440764", "tench"]
    assert index["386"] == ["n02504458", "African_elephant"]
    assert index["999"] == ["n15075141", "toilet_tissue"]


def test_decode_predictions_by_hand():
    preds = np.zeros((2, 1000), dtype="float32")
    preds[0, [386, 101, 385]] = [0.7, 0.2, 0.1]
    preds[1, 0] = 1.0
    result = apps.resnet50.decode_predictions(preds, top=3)
    assert [r[:2] for r in result[0]] == [("n02504458", "African_elephant"),
                                          ("n01871265", "tusker"),
                                          ("n02504013", "Indian_elephant")]
    np.testing.assert_allclose([r[2] for r in result[0]], [0.7, 0.2, 0.1])
    assert result[1][0] == ("n01440764", "tench", np.float32(1.0))
    assert len(imagenet_utils.decode_predictions(torch.as_tensor(preds))[0]) == 5
    with pytest.raises(ValueError, match=r"\(samples, 1000\)"):
        imagenet_utils.decode_predictions(np.zeros((2, 10)))


# ------------------------------------------------------------------ get_file
class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}
    requests = []

    def do_GET(self):  # noqa: N802
        _Handler.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _server(files):
    _Handler.files, _Handler.requests = files, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_get_file_downloads_caches_and_checks_hashes(tmp_path, monkeypatch, capsys):
    payload = os.urandom(200_000)
    md5, sha = hashlib.md5(payload).hexdigest(), hashlib.sha256(payload).hexdigest()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    with _server({"/w/model.h5": payload}) as base:
        path = file_utils.get_file("model.h5", f"{base}/w/model.h5", file_hash=sha,
                                   cache_subdir="models")
        assert path == str(tmp_path / "home" / "models" / "model.h5")
        assert open(path, "rb").read() == payload
        assert "Downloading data from" in capsys.readouterr().out
        # cached: no second request, md5 accepted too (auto-detected by length)
        assert file_utils.get_file("model.h5", f"{base}/w/model.h5", file_hash=md5,
                                   cache_subdir="models") == path
        assert _Handler.requests == ["/w/model.h5"]
        # fname defaults to the URL's last path part; explicit cache_dir; default "datasets"
        other = file_utils.get_file(origin=f"{base}/w/model.h5", cache_dir=str(tmp_path / "c"))
        assert other == str(tmp_path / "c" / "datasets" / "model.h5")
        # a corrupted cached copy is downloaded again
        with open(path, "wb") as f:
            f.write(b"junk")
        file_utils.get_file("model.h5", f"{base}/w/model.h5", file_hash=sha,
                            cache_subdir="models")
        assert open(path, "rb").read() == payload
        assert file_utils.hash_file(path, "md5") == md5
        assert file_utils.validate_file(path, sha) and not file_utils.validate_file(path, md5[::-1])


def test_get_file_hash_mismatch_and_http_errors(tmp_path):
    with _server({"/f.bin": b"payload"}) as base:
        with pytest.raises(ValueError) as info:
            file_utils.get_file("f.bin", f"{base}/f.bin", file_hash="0" * 64,
                                cache_dir=str(tmp_path))
        assert "f.bin" in str(info.value) and f"{base}/f.bin" in str(info.value)
        assert "sha256" in str(info.value)
        assert not os.path.exists(tmp_path / "datasets" / "f.bin")
        with pytest.raises(OSError, match="404"):
            file_utils.get_file("missing.bin", f"{base}/missing.bin", cache_dir=str(tmp_path))
        assert os.listdir(tmp_path / "datasets") == []
    with pytest.raises(ValueError, match="origin"):
        file_utils.get_file("x")
    with pytest.raises(ValueError, match="cache_dir"):
        file_utils.get_file("a/b.h5", "http://127.0.0.1:9/b.h5", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="hash_algorithm"):
        file_utils.get_file("b.h5", "http://127.0.0.1:9/b.h5", hash_algorithm="sha1",
                            cache_dir=str(tmp_path))


def test_get_file_connection_refused_names_file_and_url(tmp_path):
    with _server({}) as base:
        dead = base  # the port is closed once the server stops
    with pytest.raises(OSError) as info:
        file_utils.get_file("w.h5", f"{dead}/w.h5", cache_dir=str(tmp_path))
    assert "w.h5" in str(info.value) and f"{dead}/w.h5" in str(info.value)


def test_get_file_extracts_tar_and_zip(tmp_path):
    tar_bytes, zip_bytes = io.BytesIO(), io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as tar:
        info = tarfile.TarInfo("data/a.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    with zipfile.ZipFile(zip_bytes, "w") as z:
        z.writestr("b.txt", "world")
    with _server({"/d.tar.gz": tar_bytes.getvalue(), "/e.zip": zip_bytes.getvalue()}) as base:
        out = file_utils.get_file("d.tar.gz", f"{base}/d.tar.gz", extract=True,
                                  cache_dir=str(tmp_path))
        assert out == str(tmp_path / "datasets" / "d_extracted")
        assert open(os.path.join(out, "data", "a.txt")).read() == "hello"
        out = file_utils.get_file(origin=f"{base}/e.zip", extract=True, cache_dir=str(tmp_path))
        assert open(os.path.join(out, "b.txt")).read() == "world"


def test_classify_image_example_runs_offline(monkeypatch, capsys):
    import importlib.util

    monkeypatch.setattr(file_utils.urllib.request, "urlretrieve", _no_network)
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "classify_image.py")
    spec = importlib.util.spec_from_file_location("classify_image", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--demo", "--top", "2"])
    assert len(results) == 2 and all(len(r) == 3 for r in results)
    assert results[0][2] >= results[1][2]
    assert "Predicted:" in capsys.readouterr().out
