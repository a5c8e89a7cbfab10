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
from lamina import (distribution, dtype_policies, mixed_precision, preprocessing,  # noqa: E402
                    saving)
from lamina.mixed_precision import DTypePolicy  # noqa: E402


def __getattr__(name):
    """`lamina.applications` is imported on first use: it is large and most scripts skip it."""
    if name == "applications":
        import importlib
        return importlib.import_module("lamina.applications")
    raise AttributeError(f"module 'lamina' has no attribute {name!r}")
