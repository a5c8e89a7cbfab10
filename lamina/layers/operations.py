"""Keras operations as nodes of a functional graph.

Keras 3 records `x + y`, `-x`, `x @ w` or `keras.ops.multiply(x, 2.0)` on symbolic tensors as
operation nodes (not layers) and saves them in a model's config under their `keras.ops` module.
lamina builds the same node as an `Operation`: a weightless layer that runs the torch function,
is left out of `model.layers` as Keras leaves it out, and is written back as Keras writes it.

>>> inputs = keras.Input((4,))
>>> outputs = inputs + keras.layers.Dense(4)(inputs)     # an "Add" operation node
"""
import torch
import torch.nn.functional as F

from lamina import backend
from lamina.engine.layer import Layer

_NUMPY = "keras.src.ops.numpy"
_NN = "keras.src.ops.nn"

# Keras class name -> (its module, the torch function with the same numpy semantics)
OPERATIONS = {
    "Add": (_NUMPY, torch.add),
    "Subtract": (_NUMPY, torch.sub),
    "Multiply": (_NUMPY, torch.mul),
    "Divide": (_NUMPY, torch.true_divide),
    "TrueDivide": (_NUMPY, torch.true_divide),
    "Power": (_NUMPY, torch.pow),
    "Matmul": (_NUMPY, torch.matmul),
    "Maximum": (_NUMPY, torch.maximum),
    "Minimum": (_NUMPY, torch.minimum),
    "Negative": (_NUMPY, torch.neg),
    "Absolute": (_NUMPY, torch.abs),
    "Exp": (_NUMPY, torch.exp),
    "Log": (_NUMPY, torch.log),
    "Sqrt": (_NUMPY, torch.sqrt),
    "Square": (_NUMPY, torch.square),
    "Tanh": (_NUMPY, torch.tanh),
    "Relu": (_NN, F.relu),
    "Sigmoid": (_NN, torch.sigmoid),
}


class Operation(Layer):
    """The Keras operation `operation` ("Add", "Multiply", ...; see `OPERATIONS`) as a node."""

    def __init__(self, operation, name=None, **kwargs):
        if operation not in OPERATIONS:
            raise ValueError(f"lamina does not implement the Keras operation {operation!r} "
                             f"as a graph node. Supported: {', '.join(sorted(OPERATIONS))}.")
        super().__init__(name=name or backend.unique_name(backend.to_snake_case(operation)),
                         **kwargs)
        self.operation = operation
        self.module, self._fn = OPERATIONS[operation]

    def call(self, *args):
        like = next(a for a in args if isinstance(a, torch.Tensor))
        return self._fn(*[a if isinstance(a, torch.Tensor)
                          else torch.as_tensor(a, dtype=like.dtype, device=like.device)
                          for a in args])

    def get_config(self):
        return {"name": self.name}

    def get_build_config(self):
        return None
