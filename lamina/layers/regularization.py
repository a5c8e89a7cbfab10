"""Regularization layers: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout, AlphaDropout,
ActivityRegularization. All are the identity at inference.

A `seed` makes the noise of a layer reproducible: it draws from its own `torch.Generator`
(one per device) seeded with it; without a seed, noise comes from torch's global RNG.
"""
import math
import numbers

import torch

from lamina import backend, regularizers
from lamina.engine.layer import InputSpec, Layer
from lamina.layers.core import Dropout

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _check_rate(rate, name="rate"):
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError(f"Invalid value received for argument `{name}`. Expected a float value "
                         f"between 0 and 1. Received: {name}={rate}")


class _Seeded:
    """Mixin: `self._generator(device)` is None without a seed, else a per-device generator."""

    def _generator(self, device):
        if self.seed is None:
            return None
        generators = self.__dict__.setdefault("_generators", {})
        key = str(device)
        if key not in generators:
            generators[key] = torch.Generator(device=device).manual_seed(int(self.seed))
        return generators[key]

    def _uniform(self, shape, like):
        return torch.rand(shape, dtype=like.dtype, device=like.device,
                          generator=self._generator(like.device))

    def _normal(self, shape, like, mean, stddev):
        noise = torch.randn(shape, dtype=like.dtype, device=like.device,
                            generator=self._generator(like.device))
        return noise * stddev + mean


class _SpatialDropout(_Seeded, Dropout):
    """Drops whole feature maps: the keep mask has size 1 on the spatial axes."""

    _ndim = None

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        _check_rate(rate)
        kwargs.pop("noise_shape", None)  # in Keras 2 configs; the shape is fixed here
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = backend.standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self._ndim)

    def _noise_shape(self, inputs):
        shape = [1] * inputs.dim()
        shape[0] = inputs.shape[0]
        channel = 1 if self.data_format == "channels_first" else -1
        shape[channel] = inputs.shape[channel]
        return shape

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = self._uniform(self._noise_shape(inputs), inputs) >= self.rate
        return torch.where(keep, inputs / (1.0 - self.rate) if self.rate < 1 else inputs, 0.0)

    def get_config(self):
        config = {**super().get_config(), "data_format": self.data_format}
        del config["noise_shape"]
        return config


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of `(batch, steps, channels)` inputs."""

    _ndim = 3

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, data_format="channels_last", seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of 4-D inputs."""

    _ndim = 4


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature volumes of 5-D inputs."""

    _ndim = 5


class GaussianNoise(_Seeded, Layer):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` in training."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_rate(stddev, "stddev")
        self.stddev = stddev
        self.seed = seed
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.stddev == 0:
            return inputs
        return inputs + self._normal(inputs.shape, inputs, 0.0, self.stddev)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Seeded, Layer):
    """Multiplies by Gaussian noise of mean 1 and stddev `sqrt(rate / (1 - rate))` in training."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_rate(rate)
        self.rate = rate
        self.seed = seed
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        stddev = math.sqrt(self.rate / (1.0 - self.rate)) if self.rate < 1 else math.inf
        return inputs * self._normal(inputs.shape, inputs, 1.0, stddev)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_Seeded, Layer):
    """Dropout that keeps the mean and variance of SELU activations: dropped units are set to
    SELU's negative saturation value, then an affine map restores the statistics."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        _check_rate(rate)
        self.rate = rate
        self.noise_shape = noise_shape
        self.seed = seed
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        shape = inputs.shape
        if self.noise_shape is not None:
            shape = [inputs.shape[i] if d is None else d for i, d in enumerate(self.noise_shape)]
        keep = (self._uniform(shape, inputs) >= self.rate).to(inputs.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * keep + alpha_p * (1 - keep)) + b

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": self.noise_shape}


class ActivityRegularization(Layer):
    """Identity that adds `l1 * sum(|x|) + l2 * sum(x**2)` (divided by the batch size, as Keras)
    to the model's losses."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1 = l1
        self.l2 = l2
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
