"""VGG19 (Simonyan & Zisserman, ICLR 2015), layer for layer as `keras.applications.vgg19`."""
from lamina.applications.vgg16 import build_vgg, decode_predictions, preprocess_input

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"
WEIGHTS_PATH = _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_PATH_NO_TOP = _BASE + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
_HASHES = ("cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6")

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    """Instantiate VGG19 (default input 224x224, minimum 32x32, `"caffe"` preprocessing).

    Arguments as `VGG16`.
    """
    return build_vgg((2, 2, 4, 4, 4), include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, name,
                     (("vgg19_weights_tf_dim_ordering_tf_kernels.h5", WEIGHTS_PATH, _HASHES[0]),
                      ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", WEIGHTS_PATH_NO_TOP,
                       _HASHES[1])))
