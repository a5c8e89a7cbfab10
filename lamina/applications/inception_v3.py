"""InceptionV3 (Szegedy et al., CVPR 2016), layer for layer as `keras.applications.inception_v3`."""
from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
WEIGHTS_PATH = _BASE + "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_PATH_NO_TOP = _BASE + "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def conv2d_bn(x, filters, num_row, num_col, padding="same", strides=(1, 1), name=None):
    """Conv2D (no bias) -> BatchNormalization (no scale) -> ReLU."""
    bn_axis = 1 if backend.image_data_format() == "channels_first" else 3
    x = L.Conv2D(filters, (num_row, num_col), strides=strides, padding=padding, use_bias=False,
                 name=None if name is None else f"{name}_conv")(x)
    x = L.BatchNormalization(axis=bn_axis, scale=False,
                             name=None if name is None else f"{name}_bn")(x)
    return L.Activation("relu", name=name)(x)


def _avg_branch(x, filters):
    pool = L.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv2d_bn(pool, filters, 1, 1)


def _block_35(x, pool_filters, name, axis):
    """35x35 module: 1x1, 5x5, double 3x3 and pooled branches."""
    b1 = conv2d_bn(x, 64, 1, 1)
    b5 = conv2d_bn(x, 48, 1, 1)
    b5 = conv2d_bn(b5, 64, 5, 5)
    b3 = conv2d_bn(x, 64, 1, 1)
    b3 = conv2d_bn(b3, 96, 3, 3)
    b3 = conv2d_bn(b3, 96, 3, 3)
    bp = _avg_branch(x, pool_filters)
    return L.Concatenate(axis=axis, name=name)([b1, b5, b3, bp])


def _block_17(x, width, name, axis):
    """17x17 module with factorised 7x7 convolutions of `width` channels."""
    b1 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(x, width, 1, 1)
    b7 = conv2d_bn(b7, width, 1, 7)
    b7 = conv2d_bn(b7, 192, 7, 1)
    bd = conv2d_bn(x, width, 1, 1)
    bd = conv2d_bn(bd, width, 7, 1)
    bd = conv2d_bn(bd, width, 1, 7)
    bd = conv2d_bn(bd, width, 7, 1)
    bd = conv2d_bn(bd, 192, 1, 7)
    bp = _avg_branch(x, 192)
    return L.Concatenate(axis=axis, name=name)([b1, b7, bd, bp])


def _block_8(x, i, axis):
    """8x8 module with split 1x3/3x1 branches."""
    b1 = conv2d_bn(x, 320, 1, 1)
    b3 = conv2d_bn(x, 384, 1, 1)
    b3 = L.Concatenate(axis=axis, name=f"mixed9_{i}")([conv2d_bn(b3, 384, 1, 3),
                                                         conv2d_bn(b3, 384, 3, 1)])
    bd = conv2d_bn(x, 448, 1, 1)
    bd = conv2d_bn(bd, 384, 3, 3)
    bd = L.Concatenate(axis=axis)([conv2d_bn(bd, 384, 1, 3), conv2d_bn(bd, 384, 3, 1)])
    bp = _avg_branch(x, 192)
    return L.Concatenate(axis=axis, name=f"mixed{9 + i}")([b1, b3, bd, bp])


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="inception_v3"):
    """Instantiate InceptionV3 (default input 299x299, minimum 75x75, `"tf"` preprocessing).

    Arguments as `keras.applications.InceptionV3` (see `VGG16` for their meaning).
    """
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=299, min_size=75, data_format=backend.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    axis = 1 if backend.image_data_format() == "channels_first" else 3

    x = conv2d_bn(img_input, 32, 3, 3, strides=(2, 2), padding="valid")
    x = conv2d_bn(x, 32, 3, 3, padding="valid")
    x = conv2d_bn(x, 64, 3, 3)
    x = L.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv2d_bn(x, 80, 1, 1, padding="valid")
    x = conv2d_bn(x, 192, 3, 3, padding="valid")
    x = L.MaxPooling2D((3, 3), strides=(2, 2))(x)

    x = _block_35(x, 32, "mixed0", axis)
    x = _block_35(x, 64, "mixed1", axis)
    x = _block_35(x, 64, "mixed2", axis)

    b3 = conv2d_bn(x, 384, 3, 3, strides=(2, 2), padding="valid")
    bd = conv2d_bn(x, 64, 1, 1)
    bd = conv2d_bn(bd, 96, 3, 3)
    bd = conv2d_bn(bd, 96, 3, 3, strides=(2, 2), padding="valid")
    bp = L.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = L.Concatenate(axis=axis, name="mixed3")([b3, bd, bp])

    x = _block_17(x, 128, "mixed4", axis)
    x = _block_17(x, 160, "mixed5", axis)
    x = _block_17(x, 160, "mixed6", axis)
    x = _block_17(x, 192, "mixed7", axis)

    b3 = conv2d_bn(x, 192, 1, 1)
    b3 = conv2d_bn(b3, 320, 3, 3, strides=(2, 2), padding="valid")
    b7 = conv2d_bn(x, 192, 1, 1)
    b7 = conv2d_bn(b7, 192, 1, 7)
    b7 = conv2d_bn(b7, 192, 7, 1)
    b7 = conv2d_bn(b7, 192, 3, 3, strides=(2, 2), padding="valid")
    bp = L.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = L.Concatenate(axis=axis, name="mixed8")([b3, b7, bp])

    for i in range(2):
        x = _block_8(x, i, axis)

    if include_top:
        x = imagenet_utils.classifier_top(x, classes, classifier_activation, weights)
    else:
        x = imagenet_utils.pooling_top(x, pooling)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if include_top:
        return imagenet_utils.load_weights(
            model, weights, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", WEIGHTS_PATH,
            "9a0d58056eeedaa3f26cb7ebd46da564")
    return imagenet_utils.load_weights(
        model, weights, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        WEIGHTS_PATH_NO_TOP, "bcbd6486424b2319ff4ef7d526e38f63")


def preprocess_input(x, data_format=None):
    """`"tf"` preprocessing: scale pixels to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
