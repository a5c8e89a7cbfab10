"""EfficientNet B0-B7 (Tan & Le, ICML 2019), layer for layer as `keras.applications.efficientnet`.

The input preprocessing is part of the model (`Rescaling(1/255)` then `Normalization`), so
`preprocess_input` is the identity: feed float pixels in [0, 255].
"""
import math

from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional
from lamina.layers.preprocessing import Normalization, Rescaling

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/keras-applications/"
# md5 of Keras's published files: (with top, without top)
WEIGHTS_HASHES = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
}

# (kernel_size, repeats, filters_in, filters_out, expand_ratio, strides) of the 7 stages;
# every block has an identity skip (when shapes allow) and squeeze-excitation ratio 0.25.
_STAGES = [(3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2),
           (3, 3, 40, 80, 6, 2), (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2),
           (3, 1, 192, 320, 6, 1)]
DEFAULT_BLOCKS_ARGS = [
    {"kernel_size": k, "repeats": r, "filters_in": fi, "filters_out": fo, "expand_ratio": e,
     "id_skip": True, "strides": s, "se_ratio": 0.25}
    for k, r, fi, fo, e, s in _STAGES]

CONV_KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                           "config": {"scale": 2.0, "mode": "fan_out",
                                      "distribution": "truncated_normal"}}
DENSE_KERNEL_INITIALIZER = {"class_name": "VarianceScaling",
                            "config": {"scale": 1.0 / 3.0, "mode": "fan_out",
                                       "distribution": "uniform"}}
IMAGENET_STDDEV_RGB = [0.229, 0.224, 0.225]

# (width_coefficient, depth_coefficient, default_size, dropout_rate) per variant
_VARIANTS = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2),
             "b2": (1.1, 1.2, 260, 0.3), "b3": (1.2, 1.4, 300, 0.3),
             "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
             "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}


def _channel_axis():
    return 1 if backend.image_data_format() == "channels_first" else 3


def _conv(filters, kernel_size, name, strides=1, padding="same", use_bias=False,
          activation=None):
    return L.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
                    activation=activation, kernel_initializer=CONV_KERNEL_INITIALIZER, name=name)


def _bn(name):
    return L.BatchNormalization(axis=_channel_axis(), name=name)


def block(inputs, activation="swish", drop_rate=0.0, name="", filters_in=32, filters_out=16,
          kernel_size=3, strides=1, expand_ratio=1, se_ratio=0.0, id_skip=True):
    """Mobile inverted bottleneck: expand (1x1) -> depthwise -> squeeze-excite -> project."""
    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = _conv(filters, 1, name=f"{name}expand_conv")(x)
        x = _bn(f"{name}expand_bn")(x)
        x = L.Activation(activation, name=f"{name}expand_activation")(x)
    padding = "same"
    if strides == 2:
        x = L.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                            name=f"{name}dwconv_pad")(x)
        padding = "valid"
    x = L.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                          depthwise_initializer=CONV_KERNEL_INITIALIZER, name=f"{name}dwconv")(x)
    x = _bn(f"{name}bn")(x)
    x = L.Activation(activation, name=f"{name}activation")(x)

    if 0 < se_ratio <= 1:
        squeezed = max(1, int(filters_in * se_ratio))
        se = L.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
        se_shape = (filters, 1, 1) if _channel_axis() == 1 else (1, 1, filters)
        se = L.Reshape(se_shape, name=f"{name}se_reshape")(se)
        se = _conv(squeezed, 1, name=f"{name}se_reduce", use_bias=True, activation=activation)(se)
        se = _conv(filters, 1, name=f"{name}se_expand", use_bias=True, activation="sigmoid")(se)
        x = L.Multiply(name=f"{name}se_excite")([x, se])

    x = _conv(filters_out, 1, name=f"{name}project_conv")(x)
    x = _bn(f"{name}project_bn")(x)
    if id_skip and strides == 1 and filters_in == filters_out:
        if drop_rate > 0:  # stochastic depth: drop the whole residual branch per sample
            x = L.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = L.Add(name=f"{name}add")([x, inputs])
    return x


def EfficientNet(width_coefficient, depth_coefficient, default_size, dropout_rate=0.2,
                 drop_connect_rate=0.2, depth_divisor=8, activation="swish",
                 blocks_args="default", name="efficientnet", include_top=True,
                 weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", weights_name=None):
    """Build an EfficientNet scaled by `width_coefficient` (channels) and `depth_coefficient`
    (blocks per stage); `weights_name` (`"b0"`..`"b7"`) picks the ImageNet file."""
    if blocks_args == "default":
        blocks_args = DEFAULT_BLOCKS_ARGS
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=32,
        data_format=backend.image_data_format(), require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    channel_axis = _channel_axis()

    def round_filters(filters):
        filters *= width_coefficient
        rounded = max(depth_divisor, int(filters + depth_divisor / 2) // depth_divisor
                      * depth_divisor)
        if rounded < 0.9 * filters:  # never round down by more than 10%
            rounded += depth_divisor
        return int(rounded)

    def round_repeats(repeats):
        return int(math.ceil(depth_coefficient * repeats))

    x = Rescaling(1.0 / 255.0)(img_input)
    x = Normalization(axis=channel_axis)(x)
    if weights == "imagenet":
        # The ImageNet statistics store stddev**2 as variance, but the original model divides
        # by the variance: one more division by sqrt(stddev) per channel restores that.
        x = Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB])(x)

    x = L.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = _conv(round_filters(32), 3, strides=2, padding="valid", name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = L.Activation(activation, name="stem_activation")(x)

    total = float(sum(round_repeats(args["repeats"]) for args in blocks_args))
    index = 0
    for stage, args in enumerate(blocks_args):
        if args["repeats"] <= 0:
            raise ValueError("The number of repeats in `EfficientNet` must be > 0. "
                             f"Received: repeats={args['repeats']}")
        args = dict(args)
        repeats = round_repeats(args.pop("repeats"))
        args["filters_in"] = round_filters(args["filters_in"])
        args["filters_out"] = round_filters(args["filters_out"])
        for j in range(repeats):
            if j > 0:
                args["strides"] = 1
                args["filters_in"] = args["filters_out"]
            x = block(x, activation, drop_connect_rate * index / total,
                      name=f"block{stage + 1}{chr(ord('a') + j)}_", **args)
            index += 1

    x = _conv(round_filters(1280), 1, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = L.Activation(activation, name="top_activation")(x)
    if include_top:
        x = L.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout_rate > 0:
            x = L.Dropout(dropout_rate, name="top_dropout")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = L.Dense(classes, activation=classifier_activation,
                    kernel_initializer=DENSE_KERNEL_INITIALIZER, name="predictions")(x)
    else:
        x = imagenet_utils.pooling_top(x, pooling, named=True)

    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet":
        top, no_top = WEIGHTS_HASHES[weights_name]
        # Keras's published file names: efficientnetb0.h5, efficientnetb0_notop.h5, ...
        file_name = f"efficientnet{weights_name}" + (".h5" if include_top else "_notop.h5")
        return imagenet_utils.load_weights(model, weights, file_name,
                                           BASE_WEIGHTS_PATH + file_name,
                                           file_hash=top if include_top else no_top)
    return imagenet_utils.load_weights(model, weights)


def _variant(key):
    width, depth, size, dropout = _VARIANTS[key]

    def builder(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name=f"efficientnet{key}"):
        return EfficientNet(width, depth, size, dropout, name=name, include_top=include_top,
                            weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                            pooling=pooling, classes=classes,
                            classifier_activation=classifier_activation, weights_name=key)

    builder.__name__ = builder.__qualname__ = f"EfficientNet{key.upper()}"
    builder.__doc__ = (
        f"Instantiate EfficientNet{key.upper()} (default input {size}x{size}).\n\n"
        "    Preprocessing is inside the model: feed float pixels in [0, 255].\n\n"
        "    Args:\n"
        "        include_top, weights, input_tensor, input_shape, pooling, classes,\n"
        "        classifier_activation: as `VGG16`.\n"
        f"        name: model name (default `\"efficientnet{key}\"`).\n")
    builder.__module__ = __name__
    return builder


EfficientNetB0 = _variant("b0")
EfficientNetB1 = _variant("b1")
EfficientNetB2 = _variant("b2")
EfficientNetB3 = _variant("b3")
EfficientNetB4 = _variant("b4")
EfficientNetB5 = _variant("b5")
EfficientNetB6 = _variant("b6")
EfficientNetB7 = _variant("b7")


def preprocess_input(x, data_format=None):
    """The identity, as Keras: EfficientNet models rescale and normalize their inputs."""
    return x


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
