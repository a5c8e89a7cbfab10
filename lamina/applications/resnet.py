"""ResNet50/101/152 (He et al., CVPR 2015) and the shared ResNet builder.

The builder also makes ResNetV2 (pre-activation, `resnet_v2.py`) and ResNeXt (`resnext.py`);
every layer name, type and weight order follows `keras.applications.resnet`.
"""
from lamina import backend
from lamina.applications import _layers as L
from lamina.applications import imagenet_utils
from lamina.engine.functional import Functional

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
WEIGHTS_HASHES = {
    "resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
    "resnext50": ("67a5b30d522ed92f75a1f16eef299d1a", "62527c363bdd9ec598bed41947b379fc"),
    "resnext101": ("34fb605428fcc7aa4d62f44404c11509", "0f678c91647380debd923963594981b3"),
}
_EPS = 1.001e-5


def _bn_axis():
    return 3 if backend.image_data_format() == "channels_last" else 1


def _bn(name):
    return L.BatchNormalization(axis=_bn_axis(), epsilon=_EPS, name=name)


def ResNet(stack_fn, preact, use_bias, include_top=True, weights="imagenet", input_tensor=None,
           input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
           name="resnet", weights_name=None, head_name="predictions", by_name=False):
    """Stem (7x7/2 conv, 3x3/2 max-pool), `stack_fn`'s residual stacks, then the head."""
    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(
        input_shape, default_size=224, min_size=32, data_format=backend.image_data_format(),
        require_flatten=include_top, weights=weights)
    img_input = imagenet_utils.image_input(input_tensor, input_shape)
    x = L.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = L.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    if not preact:
        x = _bn("conv1_bn")(x)
        x = L.Activation("relu", name="conv1_relu")(x)
    x = L.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = L.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_fn(x)
    if preact:
        x = _bn("post_bn")(x)
        x = L.Activation("relu", name="post_relu")(x)
    if include_top:
        x = imagenet_utils.classifier_top(x, classes, classifier_activation, weights,
                                          dense_name=head_name)
    else:
        x = imagenet_utils.pooling_top(x, pooling, named=True)
    model = Functional(imagenet_utils.model_inputs(input_tensor, img_input), x, name=name)
    if weights == "imagenet" and weights_name in WEIGHTS_HASHES:
        suffix, digest = (("", WEIGHTS_HASHES[weights_name][0]) if include_top
                          else ("_notop", WEIGHTS_HASHES[weights_name][1]))
        file_name = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
        return imagenet_utils.load_weights(model, weights, file_name,
                                           BASE_WEIGHTS_PATH + file_name, digest, by_name)
    return imagenet_utils.load_weights(model, weights if weights != "imagenet" else None)


# ---------------------------------------------------------------- v1 (post-activation)
def residual_block_v1(x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    """Bottleneck block 1x1 -> kxk -> 1x1 (4*filters), projection or identity shortcut."""
    if conv_shortcut:
        shortcut = L.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = L.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = _bn(f"{name}_1_bn")(x)
    x = L.Activation("relu", name=f"{name}_1_relu")(x)
    x = L.Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = _bn(f"{name}_2_bn")(x)
    x = L.Activation("relu", name=f"{name}_2_relu")(x)
    x = L.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(f"{name}_3_bn")(x)
    x = L.Add(name=f"{name}_add")([shortcut, x])
    return L.Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_v1(x, filters, blocks, stride1=2, name=None):
    x = residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


# ---------------------------------------------------------------- v2 (pre-activation)
def residual_block_v2(x, filters, kernel_size=3, stride=1, conv_shortcut=False, name=None):
    """Pre-activation bottleneck block; the stride sits on the 3x3 conv."""
    preact = _bn(f"{name}_preact_bn")(x)
    preact = L.Activation("relu", name=f"{name}_preact_relu")(preact)
    if conv_shortcut:
        shortcut = L.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    else:
        shortcut = L.MaxPooling2D(1, strides=stride)(x) if stride > 1 else x
    x = L.Conv2D(filters, 1, strides=1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = _bn(f"{name}_1_bn")(x)
    x = L.Activation("relu", name=f"{name}_1_relu")(x)
    x = L.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = L.Conv2D(filters, kernel_size, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = _bn(f"{name}_2_bn")(x)
    x = L.Activation("relu", name=f"{name}_2_relu")(x)
    x = L.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return L.Add(name=f"{name}_out")([shortcut, x])


def stack_residual_blocks_v2(x, filters, blocks, stride1=2, name=None):
    x = residual_block_v2(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = residual_block_v2(x, filters, name=f"{name}_block{i}")
    return residual_block_v2(x, filters, stride=stride1, name=f"{name}_block{blocks}")


# ---------------------------------------------------------------- ResNeXt (grouped)
def _sum_group_inputs(x):
    """(batch, h, w, groups, c_in, c_out) -> (batch, h, w, groups, c_out): the grouped sum."""
    return x.sum(dim=4)


def residual_block_x(x, filters, kernel_size=3, stride=1, groups=32, conv_shortcut=True,
                     name=None):
    """ResNeXt block: the grouped 3x3 conv is a depthwise conv (`depth_multiplier=c`) whose
    outputs are summed within each group by a `Lambda` (`*_2_reduce`), between two Reshapes."""
    if conv_shortcut:
        shortcut = L.Conv2D((64 // groups) * filters, 1, strides=stride, use_bias=False,
                            name=f"{name}_0_conv")(x)
        shortcut = _bn(f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = L.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(x)
    x = _bn(f"{name}_1_bn")(x)
    x = L.Activation("relu", name=f"{name}_1_relu")(x)
    c = filters // groups
    x = L.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = L.DepthwiseConv2D(kernel_size, strides=stride, depth_multiplier=c, use_bias=False,
                          name=f"{name}_2_conv")(x)
    spatial = tuple(x.shape[1:-1])
    if None in spatial:
        raise ValueError("ResNeXt needs a static `input_shape` (its grouped convolutions reshape "
                         f"by the spatial size). Received a feature map of shape {x.shape}.")
    x = L.Reshape(spatial + (groups, c, c))(x)
    x = L.Lambda(_sum_group_inputs, name=f"{name}_2_reduce")(x)
    x = L.Reshape(spatial + (filters,))(x)
    x = _bn(f"{name}_2_bn")(x)
    x = L.Activation("relu", name=f"{name}_2_relu")(x)
    x = L.Conv2D((64 // groups) * filters, 1, use_bias=False, name=f"{name}_3_conv")(x)
    x = _bn(f"{name}_3_bn")(x)
    x = L.Add(name=f"{name}_add")([shortcut, x])
    return L.Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_x(x, filters, blocks, stride1=2, groups=32, name=None):
    x = residual_block_x(x, filters, stride=stride1, groups=groups, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_x(x, filters, groups=groups, conv_shortcut=False,
                             name=f"{name}_block{i}")
    return x


# ---------------------------------------------------------------- entry points
def _v1(depths, weights_name, **kwargs):
    def stack_fn(x):
        x = stack_residual_blocks_v1(x, 64, depths[0], stride1=1, name="conv2")
        x = stack_residual_blocks_v1(x, 128, depths[1], name="conv3")
        x = stack_residual_blocks_v1(x, 256, depths[2], name="conv4")
        return stack_residual_blocks_v1(x, 512, depths[3], name="conv5")
    return ResNet(stack_fn, preact=False, use_bias=True, weights_name=weights_name, **kwargs)


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="resnet50"):
    """Instantiate ResNet50 (default input 224x224, minimum 32x32, `"caffe"` preprocessing).

    Args:
        include_top: include the global-pooling + Dense classifier.
        weights: `None`, `"imagenet"` or the path to a weights file.
        input_tensor: optional symbolic tensor to use as the image input.
        input_shape: shape tuple when `include_top=False`.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classes: number of classes when `include_top=True` and no weights are loaded.
        classifier_activation: activation of the top layer (`None` for logits).
        name: the model name.
    """
    return _v1((3, 4, 6, 3), "resnet50", include_top=include_top, weights=weights,
               input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
               classes=classes, classifier_activation=classifier_activation, name=name)


def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet101"):
    """Instantiate ResNet101; arguments as `ResNet50`."""
    return _v1((3, 4, 23, 3), "resnet101", include_top=include_top, weights=weights,
               input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
               classes=classes, classifier_activation=classifier_activation, name=name)


def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="resnet152"):
    """Instantiate ResNet152; arguments as `ResNet50`."""
    return _v1((3, 8, 36, 3), "resnet152", include_top=include_top, weights=weights,
               input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
               classes=classes, classifier_activation=classifier_activation, name=name)


def preprocess_input(x, data_format=None):
    """`"caffe"` preprocessing: RGB to BGR, then subtract the ImageNet channel means."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    """See `imagenet_utils.decode_predictions`."""
    return imagenet_utils.decode_predictions(preds, top=top)
