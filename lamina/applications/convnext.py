"""ConvNeXt (Liu et al., CVPR 2022), layer for layer as `keras.applications.convnext`.

The ImageNet normalization is part of the model (a `Normalization` layer), so
`preprocess_input` is the identity: feed pixels in [0, 255].
"""
import numpy as np
import torch

from lamina import backend, initializers
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional
from lamina.engine.layer import Layer
from lamina.engine.sequential import Sequential
from lamina.layers import LayerNormalization
from lamina.layers.preprocessing import Normalization

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/convnext/"
# sha256 of (with top, without top), as Keras publishes them
WEIGHTS_HASHES = {
    "convnext_tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
                      "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    "convnext_small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
                       "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    "convnext_base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
                      "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    "convnext_large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
                       "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    "convnext_xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
                        "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
}
_DEPTHS_SHORT, _DEPTHS_LONG = [3, 3, 9, 3], [3, 3, 27, 3]
MODEL_CONFIGS = {
    "tiny": {"depths": _DEPTHS_SHORT, "projection_dims": [96, 192, 384, 768],
             "default_size": 224},
    "small": {"depths": _DEPTHS_LONG, "projection_dims": [96, 192, 384, 768],
              "default_size": 224},
    "base": {"depths": _DEPTHS_LONG, "projection_dims": [128, 256, 512, 1024],
             "default_size": 224},
    "large": {"depths": _DEPTHS_LONG, "projection_dims": [192, 384, 768, 1536],
              "default_size": 224},
    "xlarge": {"depths": _DEPTHS_LONG, "projection_dims": [256, 512, 1024, 2048],
               "default_size": 224},
}
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_VARIANCE = ((0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2)


class StochasticDepth(Layer):
    """Drops the whole residual branch of a sample with probability `drop_path_rate` while
    training (scaling kept samples by `1 / (1 - rate)`); the identity at inference."""

    def __init__(self, drop_path_rate, **kwargs):
        super().__init__(**kwargs)
        self.drop_path_rate = drop_path_rate

    def call(self, x, training=None):
        if not training:
            return x
        keep_prob = 1.0 - self.drop_path_rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        keep = torch.floor(keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device))
        return x / keep_prob * keep

    def get_config(self):
        return {**super().get_config(), "drop_path_rate": self.drop_path_rate}


class LayerScale(Layer):
    """Multiplies the last axis by a learned per-channel scale `gamma` (Touvron et al., 2021),
    initialized to `init_values`."""

    def __init__(self, init_values, projection_dim, **kwargs):
        super().__init__(**kwargs)
        self.init_values = init_values
        self.projection_dim = projection_dim

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(self.projection_dim,),
                                     initializer=initializers.Constant(self.init_values),
                                     trainable=True, name="gamma")

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        return {**super().get_config(), "init_values": self.init_values,
                "projection_dim": self.projection_dim}


def _layer_norm(name=None):
    return LayerNormalization(epsilon=1e-6, name=name)


def ConvNeXtBlock(projection_dim, drop_path_rate=0.0, layer_scale_init_value=1e-6, name=None):
    """Depthwise 7x7 conv -> LayerNorm -> Dense(4d) -> GELU -> Dense(d) -> LayerScale, plus
    the input. Returns a function of the block's input tensor."""
    if name is None:
        name = backend.unique_name("prestem")

    def apply(inputs):
        x = L.Conv2D(filters=projection_dim, kernel_size=7, padding="same",
                     groups=projection_dim, name=f"{name}_depthwise_conv")(inputs)
        x = _layer_norm(f"{name}_layernorm")(x)
        x = L.Dense(4 * projection_dim, name=f"{name}_pointwise_conv_1")(x)
        x = L.Activation("gelu", name=f"{name}_gelu")(x)
        x = L.Dense(projection_dim, name=f"{name}_pointwise_conv_2")(x)
        if layer_scale_init_value is not None:
            x = LayerScale(layer_scale_init_value, projection_dim,
                           name=f"{name}_layer_scale")(x)
        if drop_path_rate:
            x = StochasticDepth(drop_path_rate, name=f"{name}_stochastic_depth")(x)
        else:
            x = L.Activation("linear", name=f"{name}_identity")(x)
        return inputs + x  # an operation node, as in Keras (not one of `model.layers`)

    return apply


def PreStem(name=None):
    """Normalizes [0, 255] RGB inputs with the ImageNet-1k mean and standard deviation."""
    if name is None:
        name = backend.unique_name("prestem")

    def apply(x):
        return Normalization(mean=list(_IMAGENET_MEAN), variance=list(_IMAGENET_VARIANCE),
                             name=f"{name}_prestem_normalization")(x)

    return apply


def Head(num_classes=1000, classifier_activation=None, name=None):
    """Global average pooling -> LayerNorm -> Dense classifier."""
    if name is None:
        name = backend.unique_name("head")

    def apply(x):
        x = L.GlobalAveragePooling2D(name=f"{name}_head_gap")(x)
        x = _layer_norm(f"{name}_head_layernorm")(x)
        return L.Dense(num_classes, activation=classifier_activation,
                       name=f"{name}_head_dense")(x)

    return apply


def ConvNeXt(depths, projection_dims, drop_path_rate=0.0, layer_scale_init_value=1e-6,
             default_size=224, name="convnext", include_preprocessing=True, include_top=True,
             weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", weights_name=None):
    """Build a ConvNeXt of the given stage `depths` and widths `projection_dims`."""
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=32,
        data_format=backend.image_data_format(), require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = img_input
    if include_preprocessing:
        channels_last = backend.image_data_format() == "channels_last"
        if input_shape[2 if channels_last else 0] == 3:
            x = PreStem(name=name)(x)

    stem = Sequential([
        L.Conv2D(projection_dims[0], kernel_size=4, strides=4, name=f"{name}_stem_conv"),
        _layer_norm(f"{name}_stem_layernorm"),
    ], name=f"{name}_stem")
    downsample_layers = [stem]
    for i in range(3):
        downsample_layers.append(Sequential([
            _layer_norm(f"{name}_downsampling_layernorm_{i}"),
            L.Conv2D(projection_dims[i + 1], kernel_size=2, strides=2,
                     name=f"{name}_downsampling_conv_{i}"),
        ], name=f"{name}_downsampling_block_{i}"))

    # linearly increasing drop rates over all blocks, as the original code base
    drop_rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))]
    cur = 0
    for i in range(4):
        x = downsample_layers[i](x)
        for j in range(depths[i]):
            x = ConvNeXtBlock(projection_dims[i], drop_path_rate=drop_rates[cur + j],
                              layer_scale_init_value=layer_scale_init_value,
                              name=f"{name}_stage_{i}_block_{j}")(x)
        cur += depths[i]

    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = Head(num_classes=classes, classifier_activation=classifier_activation,
                 name=name)(x)
    else:
        if pooling == "avg":
            x = L.GlobalAveragePooling2D()(x)
        elif pooling == "max":
            x = L.GlobalMaxPooling2D()(x)
        x = _layer_norm()(x)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)

    if weights == "imagenet":
        variant = weights_name.split("convnext_")[-1]
        expected = MODEL_CONFIGS[variant]
        if (list(depths) != expected["depths"]
                or list(projection_dims) != expected["projection_dims"]):
            raise ValueError(
                f"Architecture configuration does not match {weights_name} variant. When "
                "using pre-trained weights, the model architecture must match the "
                f"pre-trained configuration exactly. Expected depths: {expected['depths']}, "
                f"got: {depths}. Expected projection_dims: {expected['projection_dims']}, "
                f"got: {projection_dims}.")
        if weights_name not in name:
            raise ValueError(
                f'Model name "{name}" does not match weights variant "{weights_name}". When '
                "using imagenet weights, model name must contain the weights variant (e.g., "
                f'"convnext_{variant}").')
        with_top, no_top = WEIGHTS_HASHES[weights_name]
        file_name = name + (".h5" if include_top else "_notop.h5")
        return imagenet_utils.load_weights(model, weights, file_name,
                                           BASE_WEIGHTS_PATH + file_name,
                                           file_hash=with_top if include_top else no_top)
    return imagenet_utils.load_weights(model, weights)


def _variant(variant, doc_name):
    config = MODEL_CONFIGS[variant]

    def build(include_top=True, include_preprocessing=True, weights="imagenet",
              input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", name=f"convnext_{variant}"):
        return ConvNeXt(weights_name=f"convnext_{variant}", depths=config["depths"],
                        projection_dims=config["projection_dims"], drop_path_rate=0.0,
                        layer_scale_init_value=1e-6, default_size=config["default_size"],
                        name=name, include_top=include_top,
                        include_preprocessing=include_preprocessing, weights=weights,
                        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                        classes=classes, classifier_activation=classifier_activation)

    build.__name__ = build.__qualname__ = doc_name
    build.__doc__ = (
        f"Instantiate {doc_name} (default input 224x224, minimum 32x32).\n\n"
        "    Inputs are RGB pixels in [0, 255]; `include_preprocessing=True` (the default)\n"
        "    normalizes them inside the model. `include_top=False` ends with a\n"
        "    LayerNormalization (after the optional `pooling`). Other arguments as `VGG16`.\n")
    return build


ConvNeXtTiny = _variant("tiny", "ConvNeXtTiny")
ConvNeXtSmall = _variant("small", "ConvNeXtSmall")
ConvNeXtBase = _variant("base", "ConvNeXtBase")
ConvNeXtLarge = _variant("large", "ConvNeXtLarge")
ConvNeXtXLarge = _variant("xlarge", "ConvNeXtXLarge")


def preprocess_input(x, data_format=None):
    """The identity: ConvNeXt models normalize their inputs themselves. Kept for API parity."""
    return x


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
