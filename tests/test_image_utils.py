"""lamina.preprocessing.image: load_img / img_to_array / array_to_img / save_img vs real Keras."""
import io
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

PIL = pytest.importorskip("PIL.Image")

from lamina.preprocessing import image  # noqa: E402

keras = pytest.importorskip("keras")


@pytest.fixture()
def rgb_file(tmp_path):
    rng = np.random.RandomState(0)
    pixels = rng.randint(0, 256, size=(37, 53, 3)).astype("uint8")  # height 37, width 53
    path = tmp_path / "img.png"
    PIL.fromarray(pixels, "RGB").save(path)
    return path, pixels


def test_load_img_plain_matches_pixels_and_keras(rgb_file):
    path, pixels = rgb_file
    img = image.load_img(path)
    assert img.mode == "RGB" and img.size == (53, 37)
    np.testing.assert_array_equal(np.asarray(img), pixels)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(keras.utils.load_img(path)))


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "hamming", "box",
                                           "lanczos"])
@pytest.mark.parametrize("keep_aspect_ratio", [False, True])
def test_load_img_resize_matches_keras(rgb_file, interpolation, keep_aspect_ratio):
    path, _ = rgb_file
    kwargs = dict(target_size=(20, 30), interpolation=interpolation,
                  keep_aspect_ratio=keep_aspect_ratio)
    got = np.asarray(image.load_img(str(path), **kwargs))
    expected = np.asarray(keras.utils.load_img(str(path), **kwargs))
    assert got.shape == (20, 30, 3)
    np.testing.assert_array_equal(got, expected)


def test_load_img_keep_aspect_ratio_crops_the_centre(tmp_path):
    # 4 columns: left half black, right half white; a 2x2 target keeps the centre 2x2 square
    pixels = np.zeros((2, 4, 3), dtype="uint8")
    pixels[:, 2:] = 255
    path = tmp_path / "wide.png"
    PIL.fromarray(pixels).save(path)
    out = np.asarray(image.load_img(path, target_size=(2, 2), keep_aspect_ratio=True))
    np.testing.assert_array_equal(out[:, :, 0], [[0, 255], [0, 255]])


def test_load_img_color_modes_and_bytesio(rgb_file):
    path, pixels = rgb_file
    gray = image.load_img(path, color_mode="grayscale")
    assert gray.mode == "L"
    np.testing.assert_array_equal(np.asarray(gray),
                                  np.asarray(keras.utils.load_img(path, color_mode="grayscale")))
    rgba = image.load_img(path, color_mode="rgba")
    assert rgba.mode == "RGBA" and np.asarray(rgba)[..., 3].min() == 255
    with open(path, "rb") as f:
        from_bytes = image.load_img(io.BytesIO(f.read()))
    np.testing.assert_array_equal(np.asarray(from_bytes), pixels)


def test_load_img_errors(rgb_file):
    path, _ = rgb_file
    with pytest.raises(ValueError, match="color_mode"):
        image.load_img(path, color_mode="cmyk")
    with pytest.raises(ValueError, match="interpolation"):
        image.load_img(path, target_size=(5, 5), interpolation="cubic")
    with pytest.raises(TypeError, match="path should be path-like"):
        image.load_img(12)


def test_img_to_array_layouts_and_dtype(rgb_file):
    path, pixels = rgb_file
    img = image.load_img(path)
    x = image.img_to_array(img)
    assert x.dtype == np.float32 and x.shape == (37, 53, 3)
    np.testing.assert_array_equal(x, pixels.astype("float32"))
    np.testing.assert_array_equal(image.img_to_array(img, data_format="channels_first"),
                                  pixels.transpose(2, 0, 1))
    gray = image.load_img(path, color_mode="grayscale")
    assert image.img_to_array(gray).shape == (37, 53, 1)
    assert image.img_to_array(gray, data_format="channels_first").shape == (1, 37, 53)
    assert image.img_to_array(img, dtype="uint8").dtype == np.uint8
    np.testing.assert_array_equal(x, keras.utils.img_to_array(img))
    with pytest.raises(ValueError, match="data_format"):
        image.img_to_array(img, data_format="nhwc")


def test_array_to_img_scaling_and_modes():
    x = np.array([[[0.0], [0.5]], [[1.0], [0.25]]], dtype="float32")  # (2, 2, 1)
    img = image.array_to_img(x)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 127], [255, 63]])
    np.testing.assert_array_equal(np.asarray(img), np.asarray(keras.utils.array_to_img(x)))
    raw = np.full((2, 3, 3), 7.0)
    np.testing.assert_array_equal(np.asarray(image.array_to_img(raw, scale=False)), raw)
    assert image.array_to_img(np.zeros((2, 2, 4))).mode == "RGBA"
    assert image.array_to_img(np.full((2, 2, 1), 1000.0), scale=False).mode == "I"
    cf = np.random.RandomState(0).rand(3, 4, 5)
    np.testing.assert_array_equal(
        np.asarray(image.array_to_img(cf, data_format="channels_first")),
        np.asarray(keras.utils.array_to_img(cf, data_format="channels_first")))
    with pytest.raises(ValueError, match="rank 3"):
        image.array_to_img(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="channel number"):
        image.array_to_img(np.zeros((2, 2, 2)))


def test_save_img_round_trip(tmp_path, rgb_file):
    _, pixels = rgb_file
    path = tmp_path / "out.png"
    image.save_img(path, pixels.astype("float32"), scale=False)
    np.testing.assert_array_equal(np.asarray(image.load_img(path)), pixels)
    rgba = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, "uint8")], axis=-1)
    with pytest.warns(UserWarning, match="RGBA"):
        image.save_img(tmp_path / "out.jpg", rgba.astype("float32"), file_format="jpg",
                       scale=False)
    assert PIL.open(tmp_path / "out.jpg").mode == "RGB"
