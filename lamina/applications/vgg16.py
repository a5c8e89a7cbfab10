"""VGG16 (Simonyan & Zisserman, ICLR 2015), layer for layer as `keras.applications.vgg16`."""
from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
WEIGHTS_PATH = _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_PATH_NO_TOP = _BASE + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
_HASHES = ("64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc")


def build_vgg(convs_per_block, include_top, weights, input_tensor, input_shape, pooling,
              classes, classifier_activation, name, weights_files):
    """The VGG graph: five conv blocks (64..512 filters) and an optional 3-Dense head."""
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format=backend.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = img_input
    for block, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        for i in range(1, convs + 1):
            x = L.Conv2D(filters, (3, 3), activation="relu", padding="same",
                         name=f"block{block}_conv{i}")(x)
        x = L.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = L.Flatten(name="flatten")(x)
        x = L.Dense(4096, activation="relu", name="fc1")(x)
        x = L.Dense(4096, activation="relu", name="fc2")(x)
        imagenet_utils.validate_activation(classifier_activation, weights)
        x = L.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooling_top(x, pooling)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    (top_file, top_url, top_hash), (no_file, no_url, no_hash) = weights_files
    if include_top:
        return imagenet_utils.load_weights(model, weights, top_file, top_url, top_hash)
    return imagenet_utils.load_weights(model, weights, no_file, no_url, no_hash)


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    """Instantiate VGG16 (default input 224x224, minimum 32x32, `"caffe"` preprocessing).

    Args:
        include_top: include the 3 fully-connected layers at the top.
        weights: `None`, `"imagenet"` or the path to a weights file.
        input_tensor: optional symbolic tensor to use as the image input.
        input_shape: shape tuple when `include_top=False` (e.g. `(200, 200, 3)`).
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classes: number of classes when `include_top=True` and no weights are loaded.
        classifier_activation: activation of the top layer (`None` for logits).
        name: the model name.
    """
    return build_vgg((2, 2, 3, 3, 3), include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, name,
                     (("vgg16_weights_tf_dim_ordering_tf_kernels.h5", WEIGHTS_PATH, _HASHES[0]),
                      ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", WEIGHTS_PATH_NO_TOP,
                       _HASHES[1])))


def preprocess_input(x, data_format=None):
    """`"caffe"` preprocessing: RGB to BGR, then subtract the ImageNet channel means."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
