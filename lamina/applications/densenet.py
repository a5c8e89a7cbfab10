"""DenseNet121/169/201 (Huang et al., CVPR 2017), layer for layer as `keras.applications`."""
from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
_HASHES = {  # blocks -> (name, top hash, no-top hash)
    (6, 12, 24, 16): ("densenet121", "9d60b8095a5708f2dcce2bca79d332c7",
                      "30ee3e1110167f948a6b9946edeeb738"),
    (6, 12, 32, 32): ("densenet169", "d699b8f76981ab1b30698df4c175e90b",
                      "b8c4d4c20dd625c148057b9ff1c1176b"),
    (6, 12, 48, 32): ("densenet201", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                      "c13680b51ded0fb44dff2d8f86ac8bb1"),
}
_EPS = 1.001e-5


def _axis():
    return 3 if backend.image_data_format() == "channels_last" else 1


def conv_block(x, growth_rate, name):
    """BN-ReLU-1x1 conv (4*growth) -> BN-ReLU-3x3 conv (growth), concatenated onto `x`."""
    x1 = L.BatchNormalization(axis=_axis(), epsilon=_EPS, name=f"{name}_0_bn")(x)
    x1 = L.Activation("relu", name=f"{name}_0_relu")(x1)
    x1 = L.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = L.BatchNormalization(axis=_axis(), epsilon=_EPS, name=f"{name}_1_bn")(x1)
    x1 = L.Activation("relu", name=f"{name}_1_relu")(x1)
    x1 = L.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return L.Concatenate(axis=_axis(), name=f"{name}_concat")([x, x1])


def dense_block(x, blocks, name):
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction, name):
    """BN-ReLU-1x1 conv (channels * reduction) -> 2x2 average pooling."""
    x = L.BatchNormalization(axis=_axis(), epsilon=_EPS, name=f"{name}_bn")(x)
    x = L.Activation("relu", name=f"{name}_relu")(x)
    x = L.Conv2D(int(x.shape[_axis()] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return L.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(blocks, include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="densenet"):
    """A DenseNet with `blocks` conv blocks in its four dense blocks (channels_last only)."""
    if backend.image_data_format() == "channels_first":
        raise ValueError("DenseNet does not support the `channels_first` image data format. "
                         "Switch to `channels_last` by editing your local config file at "
                         "~/.keras/keras.json")
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format=backend.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)

    x = L.ZeroPadding2D(padding=((3, 3), (3, 3)))(img_input)
    x = L.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = L.BatchNormalization(axis=_axis(), epsilon=_EPS, name="conv1_bn")(x)
    x = L.Activation("relu", name="conv1_relu")(x)
    x = L.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = L.MaxPooling2D(3, strides=2, name="pool1")(x)
    for i, count in enumerate(blocks):
        x = dense_block(x, count, name=f"conv{i + 2}")
        if i < 3:
            x = transition_block(x, 0.5, name=f"pool{i + 2}")
    x = L.BatchNormalization(axis=_axis(), epsilon=_EPS, name="bn")(x)
    x = L.Activation("relu", name="relu")(x)

    if include_top:
        x = imagenet_utils.classifier_top(x, classes, classifier_activation, weights)
    else:
        x = imagenet_utils.pooling_top(x, pooling, named=True)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet":
        known = _HASHES.get(tuple(blocks))
        if known is None:
            raise ValueError("weights_path undefined")
        stem, top_hash, notop_hash = known
        suffix, digest = ("", top_hash) if include_top else ("_notop", notop_hash)
        file_name = f"{stem}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
        return imagenet_utils.load_weights(model, weights, file_name,
                                           BASE_WEIGHTS_PATH + file_name, digest)
    return imagenet_utils.load_weights(model, weights)


def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet121"):
    """Instantiate DenseNet121 (default input 224x224, `"torch"` preprocessing); arguments as
    `VGG16`."""
    return DenseNet([6, 12, 24, 16], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet169"):
    """Instantiate DenseNet169; arguments as `VGG16`."""
    return DenseNet([6, 12, 32, 32], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet201"):
    """Instantiate DenseNet201; arguments as `VGG16`."""
    return DenseNet([6, 12, 48, 32], include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name=name)


def preprocess_input(x, data_format=None):
    """`"torch"` preprocessing: scale to [0, 1], then normalise with ImageNet mean/std."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
