"""Global settings shared by every lamina module, as in `keras.backend`.

>>> from lamina import backend
>>> backend.floatx(), backend.epsilon(), backend.image_data_format()
('float32', 1e-07, 'channels_last')
"""
import collections
import os
import re

import torch

_FLOATX = "float32"
_EPSILON = 1e-7
_IMAGE_DATA_FORMAT = "channels_last"
_NAME_COUNTERS = collections.defaultdict(int)
_DEVICE = None


def floatx():
    return _FLOATX


def set_floatx(value):
    global _FLOATX
    if value not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"Unknown floatx type: {value!r}. Expected one of "
                         "'float16', 'bfloat16', 'float32', 'float64'.")
    _FLOATX = str(value)


def epsilon():
    return _EPSILON


def set_epsilon(value):
    global _EPSILON
    _EPSILON = float(value)


def image_data_format():
    return _IMAGE_DATA_FORMAT


def set_image_data_format(data_format):
    global _IMAGE_DATA_FORMAT
    data_format = str(data_format).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={data_format!r}")
    _IMAGE_DATA_FORMAT = data_format


def standardize_data_format(data_format):
    if data_format is None:
        return image_data_format()
    data_format = str(data_format).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={data_format!r}")
    return data_format


def backend():
    return "torch"


def device():
    """The device lamina creates weights and moves data to.

    `LAMINA_DEVICE` overrides the choice; otherwise CUDA when available, else CPU.
    """
    global _DEVICE
    if _DEVICE is None:
        name = os.environ.get("LAMINA_DEVICE")
        if name is None:
            name = "cuda" if torch.cuda.is_available() else "cpu"
        _DEVICE = torch.device(name)
    return _DEVICE


def set_device(name):
    """Create later weights and data on `name` ("cpu", "cuda:1", ...); None restores the default."""
    global _DEVICE
    _DEVICE = None if name is None else torch.device(name)


_DTYPES = {
    "float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
    "float64": torch.float64, "int8": torch.int8, "int16": torch.int16,
    "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8, "bool": torch.bool,
    "half": torch.float16, "float": torch.float32, "double": torch.float64,
}


def standardize_dtype(dtype):
    """The Keras string name of `dtype` (a string, numpy dtype or torch dtype)."""
    if dtype is None:
        return floatx()
    if isinstance(dtype, dict):  # a Keras 3 DTypePolicy config
        return standardize_dtype(dtype.get("config", {}).get("name", dtype.get("name")))
    if isinstance(dtype, torch.dtype):
        return str(dtype).split(".")[-1]
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"half": "float16", "float": "float32", "double": "float64",
            "int": "int64", "long": "int64"}.get(name, name)
    if name not in _DTYPES:
        raise ValueError(f"Invalid dtype: {dtype!r}")
    return name


def torch_dtype(dtype):
    """The torch dtype for a Keras dtype name (or anything `standardize_dtype` takes)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return _DTYPES[standardize_dtype(dtype)]


def is_float_dtype(dtype):
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def to_snake_case(name):
    """`BatchNormalization` -> `batch_normalization`, `Conv2D` -> `conv2d`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """Keras auto-naming: `dense`, `dense_1`, `dense_2`, ... counted per prefix."""
    count = _NAME_COUNTERS[prefix]
    _NAME_COUNTERS[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session():
    """Reset the auto-naming counters (and free cached device memory)."""
    _NAME_COUNTERS.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
