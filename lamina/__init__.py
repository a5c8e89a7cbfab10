"""lamina: the Keras model API, implemented natively on PyTorch.

>>> import lamina as keras
>>> model = keras.Sequential([keras.layers.Dense(10, input_shape=(4,))])
"""
from lamina import (activations, backend, callbacks, constraints, initializers, layers, losses,
                    metrics, models, optimizers, regularizers, utils)
from lamina.engine.functional import Functional
from lamina.engine.input_layer import Input, InputLayer
from lamina.engine.layer import Layer
from lamina.engine.model import Model
from lamina.engine.sequential import Sequential

__version__ = "0.1.0"
from lamina import distribution, mixed_precision  # noqa: E402
