"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax. (`Activation` is in `core`.)"""
import warnings

import torch

from lamina import activations, constraints, initializers, regularizers
from lamina.engine.layer import InputSpec, Layer
from lamina.saving import serialization_lib


def _large_negative(dtype):
    """What Keras puts in masked softmax positions: -3e4 in float16, -1e9 otherwise."""
    return -3e4 if dtype == torch.float16 else -1e9


def masked_softmax(inputs, mask=None, axis=-1):
    """Softmax over `axis` (int or tuple) where positions with a false `mask` get a large
    negative logit and a zero output, as Keras's `Softmax` layer does."""
    if mask is not None:
        if mask.dtype != torch.bool:
            mask = mask > 0.5
        inputs = torch.where(mask, inputs, _large_negative(inputs.dtype))
    if isinstance(axis, (list, tuple)) and len(axis) == 1:
        axis = axis[0]
    if isinstance(axis, (list, tuple)):
        dims = tuple(a % inputs.dim() for a in axis)
        outputs = torch.exp(inputs - torch.logsumexp(inputs, dim=dims, keepdim=True))
    else:
        outputs = torch.softmax(inputs, dim=axis)
    if mask is not None:
        outputs = torch.where(mask, outputs, 0.0)
    return outputs


class _Elementwise(Layer):
    """Shape-preserving, mask-propagating layer without weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """`max_value` caps the output; below `threshold` the output is
    `negative_slope * (x - threshold)`."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError("max_value of a ReLU layer cannot be a negative value. "
                             f"Received: max_value={max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError("negative_slope of a ReLU layer cannot be None or a negative "
                             f"value. Received: negative_slope={negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError("threshold of a ReLU layer cannot be None or a negative value. "
                             f"Received: threshold={threshold}")
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope,
                                max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """`x` for `x >= 0`, `negative_slope * x` below (`alpha=` is the legacy name)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             f"negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope}")
        self.negative_slope = negative_slope

    def call(self, inputs):
        return torch.nn.functional.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """`x` if `x > 0`, else `alpha * (exp(x) - 1)`."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return torch.nn.functional.elu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Leaky ReLU with a learned slope `alpha` of shape `input_shape[1:]` (size 1 on
    `shared_axes`)."""

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif not isinstance(shared_axes, (list, tuple)):
            self.shared_axes = [shared_axes]
        else:
            self.shared_axes = list(shared_axes)

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis < len(input_shape):
                raise ValueError(f"Layer '{self.name}' (PReLU): `shared_axes` entries must be "
                                 f"in [1, {len(input_shape) - 1}]. Received: "
                                 f"shared_axes={self.shared_axes}")
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(f"Layer '{self.name}' (PReLU) needs defined dimensions for its "
                             f"`alpha` weight; got input shape {tuple(input_shape)}. Pass "
                             "`shared_axes` for the undefined axes.")
        self.alpha = self.add_weight(shape=param_shape, name="alpha",
                                     initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint)
        axes = {i: input_shape[i] for i in range(1, len(input_shape))
                if self.shared_axes and i not in self.shared_axes}
        self.input_spec = InputSpec(ndim=len(input_shape), axes=axes)

    def call(self, inputs):
        return torch.where(inputs > 0, inputs, inputs * self.alpha.to(inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": serialization_lib.serialize_keras_object(
                    self.alpha_initializer),
                "alpha_regularizer": serialization_lib.serialize_keras_object(
                    self.alpha_regularizer),
                "alpha_constraint": serialization_lib.serialize_keras_object(
                    self.alpha_constraint),
                "shared_axes": self.shared_axes}


class Softmax(_Elementwise):
    """Softmax over `axis` (int or tuple). A `mask` (true = keep) zeroes masked positions."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        if mask is not None:
            if mask.dim() > inputs.dim():
                raise ValueError("The `mask` must be broadcastable to `inputs` and must not have "
                                 f"more dimensions. Received: inputs.shape={tuple(inputs.shape)}, "
                                 f"mask.shape={tuple(mask.shape)}")
            for m, i in zip(reversed(mask.shape), reversed(inputs.shape)):
                if m not in (1, i):
                    raise ValueError("The `mask` must be broadcastable to `inputs`. Each mask "
                                     "dimension must be 1 or match the corresponding input "
                                     f"dimension. Received: inputs.shape={tuple(inputs.shape)}, "
                                     f"mask.shape={tuple(mask.shape)}")
        return masked_softmax(inputs, mask, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
