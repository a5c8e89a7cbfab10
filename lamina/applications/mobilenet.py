"""MobileNet (Howard et al., 2017), layer for layer as `keras.applications.mobilenet`."""
import warnings

from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"


def spatial_size(input_shape, input_tensor=None):
    """(rows, cols) of an `input_shape` (or of a symbolic `input_tensor`), or (None, None)."""
    channels_first = backend.image_data_format() == "channels_first"
    if input_shape is not None:
        shape = tuple(input_shape)
        return (shape[1], shape[2]) if channels_first else (shape[0], shape[1])
    if input_tensor is not None and hasattr(input_tensor, "shape"):
        shape = tuple(input_tensor.shape)
        return (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    return None, None


def _conv_block(inputs, filters, alpha, kernel=(3, 3), strides=(1, 1)):
    axis = 1 if backend.image_data_format() == "channels_first" else -1
    x = L.Conv2D(int(filters * alpha), kernel, padding="same", use_bias=False, strides=strides,
                 name="conv1")(inputs)
    x = L.BatchNormalization(axis=axis, name="conv1_bn")(x)
    return L.ReLU(6.0, name="conv1_relu")(x)


def _depthwise_conv_block(inputs, pointwise_conv_filters, alpha, depth_multiplier=1,
                          strides=(1, 1), block_id=1):
    """3x3 depthwise conv + BN + ReLU6, then 1x1 pointwise conv + BN + ReLU6."""
    axis = 1 if backend.image_data_format() == "channels_first" else -1
    if strides == (1, 1):
        x = inputs
    else:
        x = L.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(inputs)
    x = L.DepthwiseConv2D((3, 3), padding="same" if strides == (1, 1) else "valid",
                          depth_multiplier=depth_multiplier, strides=strides, use_bias=False,
                          name=f"conv_dw_{block_id}")(x)
    x = L.BatchNormalization(axis=axis, name=f"conv_dw_{block_id}_bn")(x)
    x = L.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    x = L.Conv2D(int(pointwise_conv_filters * alpha), (1, 1), padding="same", use_bias=False,
                 strides=(1, 1), name=f"conv_pw_{block_id}")(x)
    x = L.BatchNormalization(axis=axis, name=f"conv_pw_{block_id}_bn")(x)
    return L.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True,
              weights="imagenet", input_tensor=None, pooling=None, classes=1000,
              classifier_activation="softmax", name=None):
    """Instantiate MobileNet (default input 224x224, `"tf"` preprocessing).

    Args:
        alpha: width multiplier (0.25, 0.5, 0.75 or 1.0 for ImageNet weights).
        depth_multiplier: depthwise multiplier (1 for ImageNet weights).
        dropout: dropout rate before the classifier.
        name: model name (default `mobilenet_{alpha:0.2f}_{rows}`).
        Other arguments as `VGG16`.
    """
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    rows, cols = spatial_size(input_shape)
    default_size = rows if rows == cols and rows in (128, 160, 192, 224) else 224
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=default_size, min_size=32,
        data_format=backend.image_data_format(), require_flatten=include_top, weights=weights)
    rows, cols = spatial_size(input_shape)
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError("If imagenet weights are being loaded, depth multiplier must be 1.  "
                             f"Received depth_multiplier={depth_multiplier}")
        if alpha not in (0.25, 0.50, 0.75, 1.0):
            raise ValueError("If imagenet weights are being loaded, alpha can be one of`0.25`, "
                             f"`0.50`, `0.75` or `1.0` only.  Received alpha={alpha}")
        if rows != cols or rows not in (128, 160, 192, 224):
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in "
                          "[128, 160, 192, 224]. Weights for input shape (224, 224) will be "
                          "loaded as the default.", stacklevel=2)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)

    x = _conv_block(img_input, 32, alpha, strides=(2, 2))
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
            (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
    for block_id, (filters, stride) in enumerate(plan, 1):
        x = _depthwise_conv_block(x, filters, alpha, depth_multiplier,
                                  strides=(stride, stride), block_id=block_id)

    if include_top:
        x = L.GlobalAveragePooling2D(keepdims=True)(x)
        x = L.Dropout(dropout, name="dropout")(x)
        x = L.Conv2D(classes, (1, 1), padding="same", name="conv_preds")(x)
        x = L.Reshape((classes,), name="reshape_2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = L.Activation(activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooling_top(x, pooling)
    if name is None:
        name = f"mobilenet_{alpha:0.2f}_{rows}"
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet":
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0"}.get(alpha, "2_5")
        suffix = "tf" if include_top else "tf_no_top"
        file_name = f"mobilenet_{alpha_text}_{rows}_{suffix}.h5"
        return imagenet_utils.load_weights(model, weights, file_name,
                                           BASE_WEIGHT_PATH + file_name)
    return imagenet_utils.load_weights(model, weights)


def preprocess_input(x, data_format=None):
    """`"tf"` preprocessing: scale pixels to [-1, 1]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
