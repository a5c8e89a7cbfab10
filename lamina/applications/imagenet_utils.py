"""ImageNet helpers shared by the application models.

`preprocess_input(x, mode=...)` scales images the way each family was trained (`"caffe"`: RGB to
BGR and mean subtraction; `"tf"`: to [-1, 1]; `"torch"`: to [0, 1] then per-channel mean/std);
`decode_predictions(preds)` turns a `(batch, 1000)` score array into `(wnid, name, score)` tuples
using the class index shipped with lamina (`imagenet_class_index.json.gz`, byte-identical to
Keras's `imagenet_class_index.json` once decompressed).
"""
import gzip
import json
import os
import warnings

import numpy as np
import torch

from lamina import activations, backend

CLASS_INDEX = None
CLASS_INDEX_PATH = ("https://storage.googleapis.com/download.tensorflow.org/"
                    "data/imagenet_class_index.json")
CLASS_INDEX_HASH = "c2c37ea517e94d9795004a39431a14cb"  # md5 of Keras's published file
_CLASS_INDEX_FILE = os.path.join(os.path.dirname(__file__), "imagenet_class_index.json.gz")

_CAFFE_MEAN = (103.939, 116.779, 123.68)  # BGR order
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------ preprocessing
def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch (or one image) of RGB pixel values in [0, 255].

    Args:
        x: numpy array, torch tensor or symbolic tensor (`keras.Input`), 3D or 4D with 3 color
            channels. A float numpy array is modified in place (as Keras does); copy it first
            to keep the original.
        data_format: `"channels_last"` or `"channels_first"` (default: the global setting).
        mode: `"caffe"`, `"tf"` or `"torch"`.
    Returns:
        The preprocessed array or tensor (float).
    """
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError("Expected mode to be one of `caffe`, `tf` or `torch`. "
                         f"Received: mode={mode}")
    if data_format is None:
        data_format = backend.image_data_format()
    elif data_format not in ("channels_first", "channels_last"):
        raise ValueError("Expected data_format to be one of `channels_first` or "
                         f"`channels_last`. Received: data_format={data_format}")
    if isinstance(x, torch.Tensor):
        return _preprocess_tensor(x, data_format, mode)
    from lamina.engine.keras_tensor import KerasTensor
    if isinstance(x, KerasTensor):  # inside a functional model: one Lambda layer
        from lamina.layers import Lambda
        return Lambda(lambda t: _preprocess_tensor(t, data_format, mode))(x)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    return _preprocess_numpy(x, data_format, mode)


def _channel_view(x, data_format, channel):
    if data_format == "channels_last":
        return x[..., channel]
    return x[channel] if x.ndim == 3 else x[:, channel]


def _flip_channels(x, data_format):
    if data_format == "channels_last":
        return x[..., ::-1]
    return x[::-1] if x.ndim == 3 else x[:, ::-1]


def _preprocess_numpy(x, data_format, mode):
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(backend.floatx(), copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        x = _flip_channels(x, data_format)  # RGB -> BGR, a view as in Keras
        mean, std = _CAFFE_MEAN, None
    for c in range(3):
        view = _channel_view(x, data_format, c)
        view -= mean[c]
        if std is not None:
            view /= std[c]
    return x


def _preprocess_tensor(x, data_format, mode):
    if not x.is_floating_point():
        x = x.to(backend.torch_dtype(backend.floatx()))
    if mode == "tf":
        return x / 127.5 - 1.0
    axis = -1 if data_format == "channels_last" else (0 if x.ndim == 3 else 1)
    shape = [1] * x.ndim
    shape[axis] = 3
    if mode == "torch":
        mean = torch.tensor(_TORCH_MEAN, dtype=x.dtype, device=x.device).reshape(shape)
        std = torch.tensor(_TORCH_STD, dtype=x.dtype, device=x.device).reshape(shape)
        return (x / 255.0 - mean) / std
    mean = torch.tensor(_CAFFE_MEAN, dtype=x.dtype, device=x.device).reshape(shape)
    return torch.flip(x, dims=(axis,)) - mean


# ------------------------------------------------------------------ decoding
def _class_index():
    global CLASS_INDEX
    if CLASS_INDEX is None:
        with gzip.open(_CLASS_INDEX_FILE, "rt", encoding="utf-8") as f:
            CLASS_INDEX = json.load(f)
    return CLASS_INDEX


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions into lists of `(class_name, class_description, score)`.

    Args:
        preds: array or tensor of shape `(samples, 1000)`.
        top: how many top-guesses to return per sample.
    """
    if isinstance(preds, torch.Tensor):
        preds = preds.detach().cpu().numpy()
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array "
                         f"of shape (samples, 1000)). Received array with shape: {preds.shape}")
    index = _class_index()
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        result = [tuple(index[str(i)]) + (pred[i],) for i in best]
        result.sort(key=lambda item: item[2], reverse=True)
        results.append(result)
    return results


# ------------------------------------------------------------------ model-building helpers
def obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten,
                       weights=None):
    """Validate a user's `input_shape` (or pick the default) for an application model."""
    channels_first = data_format == "channels_first"
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        channels = input_shape[0] if channels_first else input_shape[-1]
        if channels not in (1, 3):
            warnings.warn("This model usually expects 1 or 3 input channels. However, it was "
                          f"passed an input_shape with {channels} input channels.",
                          stacklevel=3)
        default_shape = ((channels, default_size, default_size) if channels_first
                         else (default_size, default_size, channels))
    else:
        default_shape = ((3, default_size, default_size) if channels_first
                         else (default_size, default_size, 3))
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` weights, "
                             f"`input_shape` should be {default_shape}.  "
                             f"Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers. "
                             f"Received: input_shape={input_shape}")
        channels = input_shape[0] if channels_first else input_shape[-1]
        spatial = input_shape[1:] if channels_first else input_shape[:2]
        if channels != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received "
                             f"`input_shape={input_shape}`")
        if any(d is not None and d < min_size for d in spatial):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    elif require_flatten:
        input_shape = default_shape
    else:
        input_shape = (3, None, None) if channels_first else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static `input_shape`. "
                         f"Received: input_shape={input_shape}")
    return input_shape


def correct_pad(inputs, kernel_size):
    """Zero-padding `((top, bottom), (left, right))` for a strided 'valid' convolution."""
    first = 2 if backend.image_data_format() == "channels_first" else 1
    size = inputs.shape[first:first + 2]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def validate_activation(classifier_activation, weights):
    """Pretrained heads only allow `None` or `"softmax"` as `classifier_activation`."""
    if weights is None:
        return
    fn = activations.get(classifier_activation)
    if fn not in (activations.get("softmax"), activations.get(None)):
        raise ValueError("Only `None` and `softmax` activations are allowed for the "
                         "`classifier_activation` argument when using pretrained weights, "
                         "with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation}")


def classifier_top(x, classes, classifier_activation, weights, pool_name="avg_pool",
                   dense_name="predictions", **dense_kwargs):
    """Keras's usual top: global average pooling, then the `classes`-way Dense layer."""
    from lamina.applications import _layers as L

    x = L.GlobalAveragePooling2D(name=pool_name)(x)
    validate_activation(classifier_activation, weights)
    return L.Dense(classes, activation=classifier_activation, name=dense_name, **dense_kwargs)(x)


def pooling_top(x, pooling, named=False):
    """What a model without its top ends with: the feature maps (`pooling=None`), or their
    global "avg" or "max" pooling, named `avg_pool`/`max_pool` where Keras names them."""
    from lamina.applications import _layers as L

    if pooling == "avg":
        return L.GlobalAveragePooling2D(name="avg_pool" if named else None)(x)
    if pooling == "max":
        return L.GlobalMaxPooling2D(name="max_pool" if named else None)(x)
    return x


def check_weights_arg(weights, include_top, classes):
    """Keras's checks on `weights` (None, "imagenet" or an existing file) and `classes`."""
    if not (weights in ("imagenet", None)
            or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError("The `weights` argument should be either `None` (random "
                         "initialization), 'imagenet' (pre-training on ImageNet), or the path "
                         f"to the weights file to be loaded.  Received: weights={weights}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` "
                         f"should be 1000.  Received classes={classes}")


def image_input(input_tensor, input_shape):
    """The model's input tensor: `input_tensor` if symbolic, else a new `Input`."""
    from lamina.engine.input_layer import Input
    from lamina.engine.keras_tensor import KerasTensor

    if input_tensor is None:
        return Input(shape=input_shape)
    if isinstance(input_tensor, KerasTensor):
        return input_tensor
    raise ValueError("`input_tensor` must be a symbolic tensor from `keras.Input()` or a "
                     f"layer call. Received: input_tensor={type(input_tensor).__name__}")


def source_inputs(tensor):
    """The `Input` tensors that `tensor` is computed from, in graph order."""
    found, seen = [], set()

    def visit(t):
        layer, node_index, _ = t._keras_history
        node = layer._inbound_nodes[node_index]
        if node.is_input:
            if id(t) not in seen:
                seen.add(id(t))
                found.append(t)
            return
        for parent in node.input_tensors:
            visit(parent)

    visit(tensor)
    return found[0] if len(found) == 1 else found


def model_inputs(input_tensor, img_input):
    return source_inputs(input_tensor) if input_tensor is not None else img_input


def load_weights(model, weights, file_name=None, origin=None, file_hash=None, by_name=False):
    """Load `weights`: `"imagenet"` fetches `file_name` from `origin` into the cache first."""
    if weights == "imagenet":
        if file_name is None:
            return model
        from lamina.utils.file_utils import get_file
        path = get_file(file_name, origin, cache_subdir="models", file_hash=file_hash)
        model.load_weights(path, by_name=by_name) if by_name else model.load_weights(path)
    elif weights is not None:
        model.load_weights(weights)
    return model
