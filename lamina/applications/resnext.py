"""ResNeXt50/101 (Xie et al., CVPR 2017) as defined by `keras_applications` 1.0.8 (Keras 2.2).

Each 3x3 grouped convolution (32 groups) is a `DepthwiseConv2D` with `depth_multiplier=c`
(`c = filters // 32`) whose outputs a `Lambda` (`*_2_reduce`) sums within each group, between two
`Reshape`s, so the models need a static `input_shape`. The head is `Dense(name="probs")`; the
ImageNet weights are loaded by layer name.
"""
from lamina.applications import imagenet_utils
from lamina.applications.resnet import ResNet, stack_residual_blocks_x


def _x(depths, weights_name, **kwargs):
    def stack_fn(x):
        x = stack_residual_blocks_x(x, 128, depths[0], stride1=1, name="conv2")
        x = stack_residual_blocks_x(x, 256, depths[1], name="conv3")
        x = stack_residual_blocks_x(x, 512, depths[2], name="conv4")
        return stack_residual_blocks_x(x, 1024, depths[3], name="conv5")
    return ResNet(stack_fn, preact=False, use_bias=False, weights_name=weights_name,
                  head_name="probs", by_name=True, **kwargs)


def ResNeXt50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnext50"):
    """Instantiate ResNeXt50 (32x4d; default input 224x224, `"torch"` preprocessing).

    Arguments as `ResNet50`.
    """
    return _x((3, 4, 6, 3), "resnext50", include_top=include_top, weights=weights,
              input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
              classes=classes, classifier_activation=classifier_activation, name=name)


def ResNeXt101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation="softmax", name="resnext101"):
    """Instantiate ResNeXt101 (32x4d); arguments as `ResNet50`."""
    return _x((3, 4, 23, 3), "resnext101", include_top=include_top, weights=weights,
              input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
              classes=classes, classifier_activation=classifier_activation, name=name)


def preprocess_input(x, data_format=None):
    """`"torch"` preprocessing: scale to [0, 1], then normalise with ImageNet mean/std."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
