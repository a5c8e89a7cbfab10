"""Image files to arrays and back, with Pillow (`keras.utils.load_img` and friends).

>>> img = load_img("elephant.jpg", target_size=(224, 224))
>>> x = img_to_array(img)            # (224, 224, 3) float32, values 0..255
>>> save_img("copy.png", x)
"""
import io
import os
import pathlib
import warnings

import numpy as np

from lamina import backend

try:
    from PIL import Image as pil_image
except ImportError:  # pragma: no cover - Pillow is an optional dependency
    pil_image = None

_COLOR_MODES = ("grayscale", "rgb", "rgba")


def _interpolation_methods():
    resampling = getattr(pil_image, "Resampling", pil_image)
    return {"nearest": resampling.NEAREST, "bilinear": resampling.BILINEAR,
            "bicubic": resampling.BICUBIC, "hamming": resampling.HAMMING,
            "box": resampling.BOX, "lanczos": resampling.LANCZOS}


def _require_pil(what):
    if pil_image is None:
        raise ImportError(f"Could not import PIL.Image. The use of `{what}` requires Pillow "
                          "(`pip install pillow`).")


def _data_format(data_format):
    data_format = data_format or backend.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("`data_format` must be 'channels_first' or 'channels_last'. "
                         f"Received: data_format={data_format!r}")
    return data_format


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest",
             keep_aspect_ratio=False):
    """Load an image file (path or `io.BytesIO`) into a PIL image.

    Args:
        color_mode: `"grayscale"`, `"rgb"` or `"rgba"`.
        target_size: `(height, width)` to resize to, or None for the original size.
        interpolation: `"nearest"`, `"bilinear"`, `"bicubic"`, `"hamming"`, `"box"` or
            `"lanczos"`.
        keep_aspect_ratio: crop the centre to the target aspect ratio before resizing.
    """
    _require_pil("load_img")
    if isinstance(path, io.BytesIO):
        img = pil_image.open(path)
    elif isinstance(path, (str, bytes, pathlib.Path, os.PathLike)):
        with open(os.fspath(path), "rb") as f:
            img = pil_image.open(io.BytesIO(f.read()))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")
    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif color_mode == "rgb":
        if img.mode != "RGB":
            img = img.convert("RGB")
    else:
        raise ValueError(f'color_mode must be one of {list(_COLOR_MODES)}. '
                         f'Received: color_mode={color_mode!r}')
    if target_size is None:
        return img
    size = (int(target_size[1]), int(target_size[0]))  # PIL wants (width, height)
    if img.size == size:
        return img
    methods = _interpolation_methods()
    if interpolation not in methods:
        raise ValueError(f"Invalid interpolation method {interpolation!r}. Supported methods "
                         f"are {', '.join(methods)}.")
    resample = methods[interpolation]
    if not keep_aspect_ratio:
        return img.resize(size, resample)
    width, height = img.size
    crop_w = min(width, (height * size[0]) // size[1])
    crop_h = min(height, (width * size[1]) // size[0])
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return img.resize(size, resample, box=(left, top, left + crop_w, top + crop_h))


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image as a 3D numpy array (`(h, w, c)` for channels_last), dtype floatx."""
    data_format = _data_format(data_format)
    x = np.asarray(img, dtype=dtype or backend.floatx())
    if x.ndim == 3:
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x
    if x.ndim == 2:
        return x[None] if data_format == "channels_first" else x[..., None]
    raise ValueError(f"Unsupported image shape: {x.shape}")


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A 3D array as a PIL image; `scale` maps the array's min..max onto 0..255."""
    _require_pil("array_to_img")
    data_format = _data_format(data_format)
    x = np.array(x, dtype=dtype or backend.floatx())
    if x.ndim != 3:
        raise ValueError("Expected image array to have rank 3 (single image). Got array with "
                         f"shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x /= top
        x *= 255
    channels = x.shape[2]
    if channels == 4:
        return pil_image.fromarray(x.astype("uint8"), "RGBA")
    if channels == 3:
        return pil_image.fromarray(x.astype("uint8"), "RGB")
    if channels == 1:
        if np.max(x) > 255:  # 32-bit signed integer grayscale
            return pil_image.fromarray(x[:, :, 0].astype("int32"), "I")
        return pil_image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {channels}")


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Save a 3D array as an image file (format from `file_format` or the file name)."""
    img = array_to_img(x, data_format=data_format, scale=scale)
    if file_format is not None and file_format.lower() == "jpg":
        file_format = "jpeg"
    is_jpeg = (file_format or "").lower() == "jpeg" or (
        file_format is None and str(path).lower().endswith((".jpg", ".jpeg")))
    if img.mode == "RGBA" and is_jpeg:
        warnings.warn("The JPG format does not support RGBA images, converting to RGB.",
                      stacklevel=2)
        img = img.convert("RGB")
    img.save(path, format=file_format, **kwargs)
