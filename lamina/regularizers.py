"""Weight penalties with Keras names and Keras 3 formulas: `L2 = l2 * sum(x**2)` (no 1/2).

A regularizer is called on a weight **in Keras layout** (Dense kernel `(in, out)`, conv kernel
`(*spatial, in, out)`) and returns a scalar tensor on the weight's device; layers that keep a
weight in another layout convert it before calling (this matters for `OrthogonalRegularizer`,
whose rows/columns depend on the layout).

>>> L2(0.5)(torch.ones(2, 2))
tensor(2.)
"""
import math

import numpy as np
import torch

from lamina import backend
from lamina.saving import serialization_lib


def _validate_float(value, name):
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or math.isinf(value) or math.isnan(value) or value < 0):
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. "
                         f"Received: {name}={value!r}")
    return float(value)


def _float32(value):
    # Keras keeps these factors as float32 tensors, so its configs carry the float32 value.
    return float(np.float32(value))


class Regularizer:
    """Base class: `__call__(weight)` returns a scalar penalty tensor."""

    def __call__(self, x):
        return torch.zeros((), dtype=x.dtype, device=x.device)

    def get_config(self):
        raise NotImplementedError(f"{self} does not implement get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """`l1 * sum(abs(x)) + l2 * sum(square(x))`."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _validate_float(0.0 if l1 is None else l1, "l1")
        self.l2 = _validate_float(0.0 if l2 is None else l2, "l2")

    def __call__(self, x):
        penalty = torch.zeros((), dtype=x.dtype, device=x.device)
        if self.l1:
            penalty = penalty + self.l1 * torch.sum(torch.abs(x))
        if self.l2:
            penalty = penalty + self.l2 * torch.sum(torch.square(x))
        return penalty

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """`l1 * sum(abs(x))`."""

    def __init__(self, l1=0.01):
        self.l1 = _float32(_validate_float(0.01 if l1 is None else l1, "l1"))

    def __call__(self, x):
        return self.l1 * torch.sum(torch.abs(x))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """`l2 * sum(square(x))`."""

    def __init__(self, l2=0.01):
        self.l2 = _validate_float(0.01 if l2 is None else l2, "l2")

    def __call__(self, x):
        return self.l2 * torch.sum(torch.square(x))

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (`mode="rows"`) or columns (`mode="columns"`) of a rank-2 weight towards
    orthogonality: `factor * 0.5 * sum(|off-diagonal dot products of the L2-normalised
    vectors|) / num_pairs`."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _float32(_validate_float(factor, "factor"))
        if mode not in ("rows", "columns"):
            raise ValueError('Invalid value for argument `mode`. Expected one of {"rows", '
                             f'"columns"}}. Received: mode={mode!r}')
        self.mode = mode

    def __call__(self, inputs):
        if inputs.ndim != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={tuple(inputs.shape)}")
        vectors = inputs if self.mode == "rows" else inputs.T
        inv_norm = torch.rsqrt(torch.sum(torch.square(vectors), dim=1, keepdim=True))
        vectors = vectors * torch.clamp(inv_norm, max=1.0 / backend.epsilon())
        product = vectors @ vectors.T
        size = vectors.shape[0]
        off_diagonal = product * (1.0 - torch.eye(size, dtype=product.dtype, device=product.device))
        num_pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * torch.sum(torch.abs(off_diagonal)) / num_pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras's public aliases.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_CLASSES = [Regularizer, L1, L2, L1L2, OrthogonalRegularizer]
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({backend.to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update({"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2})


def serialize(regularizer):
    """The Keras 3 config dict of `regularizer`."""
    return serialization_lib.serialize_keras_object(regularizer)


def deserialize(config, custom_objects=None):
    """A regularizer from a name or a Keras config dict."""
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="regularizer")


def get(identifier):
    """Resolve `identifier`: a name, a config dict, a class (instantiated) or a callable (passed
    through). None gives None."""
    return serialization_lib.get_object(identifier, ALL_OBJECTS_DICT, "regularizer", "regularizers",
                                        "a string, a config dict, a Regularizer or a callable")
