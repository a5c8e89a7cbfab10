"""Xception (Chollet, CVPR 2017), layer for layer as `keras.applications.xception`."""
from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
TF_WEIGHTS_PATH = _BASE + "xception_weights_tf_dim_ordering_tf_kernels.h5"
TF_WEIGHTS_PATH_NO_TOP = _BASE + "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _sep_bn(x, filters, name, axis):
    x = L.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=name)(x)
    return L.BatchNormalization(axis=axis, name=f"{name}_bn")(x)


def _shortcut(x, filters, axis):
    residual = L.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
    return L.BatchNormalization(axis=axis)(residual)


def _entry_block(x, filters, block, axis, relu_first=True):
    """Two separable convs and a strided max-pool, plus a strided 1x1 projection."""
    residual = _shortcut(x, filters[1], axis)
    if relu_first:
        x = L.Activation("relu", name=f"block{block}_sepconv1_act")(x)
    x = _sep_bn(x, filters[0], f"block{block}_sepconv1", axis)
    x = L.Activation("relu", name=f"block{block}_sepconv2_act")(x)
    x = _sep_bn(x, filters[1], f"block{block}_sepconv2", axis)
    x = L.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
    return L.add([x, residual])


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="xception"):
    """Instantiate Xception (default input 299x299, minimum 71x71, `"tf"` preprocessing).

    Arguments as `VGG16`.
    """
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=299, min_size=71, data_format=backend.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    axis = 1 if backend.image_data_format() == "channels_first" else -1

    x = L.Conv2D(32, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(img_input)
    x = L.BatchNormalization(axis=axis, name="block1_conv1_bn")(x)
    x = L.Activation("relu", name="block1_conv1_act")(x)
    x = L.Conv2D(64, (3, 3), use_bias=False, name="block1_conv2")(x)
    x = L.BatchNormalization(axis=axis, name="block1_conv2_bn")(x)
    x = L.Activation("relu", name="block1_conv2_act")(x)

    x = _entry_block(x, (128, 128), 2, axis, relu_first=False)
    x = _entry_block(x, (256, 256), 3, axis)
    x = _entry_block(x, (728, 728), 4, axis)

    for i in range(8):  # middle flow
        residual = x
        prefix = f"block{i + 5}"
        for j in (1, 2, 3):
            x = L.Activation("relu", name=f"{prefix}_sepconv{j}_act")(x)
            x = _sep_bn(x, 728, f"{prefix}_sepconv{j}", axis)
        x = L.add([x, residual])

    x = _entry_block(x, (728, 1024), 13, axis)

    x = _sep_bn(x, 1536, "block14_sepconv1", axis)
    x = L.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep_bn(x, 2048, "block14_sepconv2", axis)
    x = L.Activation("relu", name="block14_sepconv2_act")(x)

    if include_top:
        x = imagenet_utils.classifier_top(x, classes, classifier_activation, weights)
    else:
        x = imagenet_utils.pooling_top(x, pooling)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if include_top:
        return imagenet_utils.load_weights(
            model, weights, "xception_weights_tf_dim_ordering_tf_kernels.h5", TF_WEIGHTS_PATH,
            "0a58e3b7378bc2990ea3b43d5981f1f6")
    return imagenet_utils.load_weights(
        model, weights, "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        TF_WEIGHTS_PATH_NO_TOP, "b0042744bf5b25fce3cb969f33bebb97")


def preprocess_input(x, data_format=None):
    """`"tf"` preprocessing: scale pixels to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
