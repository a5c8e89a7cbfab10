"""The layer classes the application models are built from, in one namespace."""
from lamina.engine.input_layer import Input  # noqa: F401
from lamina.layers import (Activation, Add, AveragePooling2D, Concatenate, Conv2D,  # noqa: F401
                           Cropping2D, Dense, DepthwiseConv2D, Dropout, Flatten,
                           GlobalAveragePooling2D, GlobalMaxPooling2D, Lambda, MaxPooling2D,
                           Multiply, Reshape, SeparableConv2D, ZeroPadding2D, add, concatenate)
from lamina.layers.activation import ReLU, Softmax  # noqa: F401
from lamina.layers.normalization import BatchNormalization  # noqa: F401
