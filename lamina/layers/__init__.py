"""The Keras layers, as `keras.layers`."""
from lamina.engine.input_layer import Input, InputLayer
from lamina.engine.layer import InputSpec, Layer
from lamina.layers.core import (Activation, Dense, Dropout, Embedding, Flatten, Lambda, Masking,
                                Permute, RepeatVector, Reshape)
from lamina.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply,
                                   Subtract, add, average, concatenate, dot, maximum, minimum,
                                   multiply, subtract)
