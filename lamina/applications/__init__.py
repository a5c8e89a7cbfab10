"""`keras.applications`: pretrained image-classification models, layer for layer as Keras.

>>> from lamina.applications.resnet50 import ResNet50, preprocess_input, decode_predictions
>>> model = ResNet50(weights="imagenet")          # or weights="path/to/file.h5"
"""
from lamina.applications import (convnext, densenet, efficientnet, imagenet_utils,
                                 inception_resnet_v2, inception_v3, mobilenet, mobilenet_v2,
                                 nasnet, resnet, resnet50, resnet_v2, resnext, vgg16, vgg19,
                                 xception)
from lamina.applications.convnext import (ConvNeXtBase, ConvNeXtLarge, ConvNeXtSmall,
                                          ConvNeXtTiny, ConvNeXtXLarge)
from lamina.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from lamina.applications.efficientnet import (EfficientNetB0, EfficientNetB1, EfficientNetB2,
                                              EfficientNetB3, EfficientNetB4, EfficientNetB5,
                                              EfficientNetB6, EfficientNetB7)
from lamina.applications.inception_resnet_v2 import InceptionResNetV2
from lamina.applications.inception_v3 import InceptionV3
from lamina.applications.mobilenet import MobileNet
from lamina.applications.mobilenet_v2 import MobileNetV2
from lamina.applications.nasnet import NASNetLarge, NASNetMobile
from lamina.applications.resnet import ResNet50, ResNet101, ResNet152
from lamina.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from lamina.applications.resnext import ResNeXt50, ResNeXt101
from lamina.applications.vgg16 import VGG16
from lamina.applications.vgg19 import VGG19
from lamina.applications.xception import Xception

__all__ = [
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "EfficientNetB0", "EfficientNetB1", "EfficientNetB2", "EfficientNetB3", "EfficientNetB4",
    "EfficientNetB5", "EfficientNetB6", "EfficientNetB7", "DenseNet121", "DenseNet169", "DenseNet201", "InceptionResNetV2", "InceptionV3",
    "MobileNet", "MobileNetV2", "NASNetLarge", "NASNetMobile", "ResNeXt50", "ResNeXt101",
    "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2", "VGG16",
    "VGG19", "Xception", "convnext", "densenet", "efficientnet", "imagenet_utils", "inception_resnet_v2", "inception_v3",
    "mobilenet", "mobilenet_v2", "nasnet", "resnet", "resnet50", "resnet_v2", "resnext", "vgg16",
    "vgg19", "xception",
]
