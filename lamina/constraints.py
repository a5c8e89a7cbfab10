"""Weight constraints with Keras names: projections applied to a weight after each update.

A constraint receives the weight **in Keras layout** (Dense kernel `(in, out)`, Conv2D kernel
`(kh, kw, in, out)`) and returns the projected weight in that layout; `axis` refers to that
layout (e.g. `MaxNorm(axis=[0, 1, 2])` for each Conv2D filter). Layers that keep a weight in
another layout convert it before and after calling.

>>> MaxNorm(2.0)(torch.full((4, 1), 3.0))   # column norm 6 -> 2
tensor([[1.],
        [1.],
        [1.],
        [1.]])
"""

import torch

from lamina import backend
from lamina.saving import serialization_lib


def _dims(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


def _norms(w, axis):
    return torch.sqrt(torch.sum(torch.square(w), dim=_dims(axis), keepdim=True))


class Constraint:
    """Base class: `__call__(w)` returns the projected weight (the identity here)."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    """Rescales the weights along `axis` so that their L2 norm is at most `max_value`."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        self.axis = axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = torch.clamp(norms, 0, self.max_value)
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative weights to zero."""

    def __call__(self, w):
        return torch.clamp(w, min=0)


class UnitNorm(Constraint):
    """Rescales the weights along `axis` to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (backend.epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the L2 norm along `axis` towards `[min_value, max_value]`:
    `norm <- rate * clip(norm, min_value, max_value) + (1 - rate) * norm`."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = axis

    def __call__(self, w):
        norms = _norms(w, self.axis)
        desired = (self.rate * torch.clamp(norms, self.min_value, self.max_value)
                   + (1 - self.rate) * norms)
        return w * (desired / (backend.epsilon() + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


# Keras's public aliases.
max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_CLASSES = [Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm]
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({backend.to_snake_case(cls.__name__): cls for cls in _CLASSES})


def serialize(constraint):
    """The Keras 3 config dict of `constraint`."""
    return serialization_lib.serialize_keras_object(constraint)


def deserialize(config, custom_objects=None):
    """A constraint from a name or a Keras config dict."""
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="constraint")


def get(identifier):
    """Resolve `identifier`: a name, a config dict, a class (instantiated) or a callable (passed
    through). None gives None."""
    return serialization_lib.get_object(identifier, ALL_OBJECTS_DICT, "constraint", "constraints",
                                        "a string, a config dict, a Constraint or a callable")
