"""Utilities, as `keras.utils`."""
import random

import numpy as np
import torch

from lamina.saving.object_registration import (CustomObjectScope, custom_object_scope,
                                               get_custom_objects, get_registered_name,
                                               get_registered_object,
                                               register_keras_serializable)
from lamina.training.data_adapter import PyDataset, Sequence
from lamina.utils.file_utils import get_file
from lamina.preprocessing.image import array_to_img, img_to_array, load_img, save_img


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels: `to_categorical([0, 2], 3)` -> 2x3 floats."""
    x = np.asarray(x, dtype="int64")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    x = x.reshape(-1)
    if num_classes is None:
        num_classes = int(x.max()) + 1
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"`to_categorical` received labels outside [0, {num_classes}): "
                         f"min={x.min()}, max={x.max()}")
    out = np.zeros((x.size, num_classes), dtype="float32")
    out[np.arange(x.size), x] = 1.0
    return out.reshape(shape + (num_classes,))


def set_random_seed(seed):
    """Seed Python's `random`, numpy and torch (CPU and CUDA) at once."""
    if not isinstance(seed, int):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def normalize(x, axis=-1, order=2):
    """Scale `x` to unit `order`-norm along `axis` (numpy in, numpy out)."""
    x = np.asarray(x, dtype="float32")
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)
