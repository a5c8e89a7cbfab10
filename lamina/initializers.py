"""Weight initializers with Keras names, defaults and configs, producing torch tensors.

Shapes are in Keras layout (Dense kernel `(in, out)`, conv kernel `(*spatial, in, out)`); the
fans follow from that layout. Tensors are created on `lamina.backend.device()` in `floatx()`
unless `dtype` says otherwise.

A `seed` makes an initializer deterministic: every call returns the same values (drawn on the
CPU with a `torch.Generator` seeded from it, so they are also the same on every device). Without
a seed, values come from torch's global RNG, so `torch.manual_seed` controls them.

>>> init = GlorotUniform(seed=1)
>>> w = init((64, 32))          # a (64, 32) float32 tensor
>>> serialize(init)["config"]
{'seed': 1, 'input_axes': None, 'output_axes': None}
"""
import math

import numpy as np
import torch

from lamina import backend
from lamina.saving import serialization_lib

# Keras's correction: the stddev of a unit normal truncated at +-2 stddev.
_TRUNCATED_STDDEV = 0.87962566103423978


def _shape(shape):
    try:
        return tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"`shape` must be a tuple of integers. Received: shape={shape!r}") from None


def _dtype(dtype):
    return backend.torch_dtype(backend.floatx() if dtype is None else dtype)


def _float_dtype(dtype, name):
    dtype = _dtype(dtype)
    if not dtype.is_floating_point:
        raise ValueError(f"{name} only produces floating-point tensors. Received: dtype={dtype}")
    return dtype


def _work_dtype(dtype):
    # Draw in at least float32 (half types lack some kernels, e.g. erfinv and qr on CPU).
    return torch.float64 if dtype == torch.float64 else torch.float32


class Initializer:
    """Base class: subclasses implement `__call__(shape, dtype=None)` and `get_config()`."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def clone(self):
        return self.__class__.from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        return torch.zeros(_shape(shape), dtype=_dtype(dtype), device=backend.device())


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return torch.ones(_shape(shape), dtype=_dtype(dtype), device=backend.device())


class Constant(Initializer):
    """Every element equal to the scalar `value`."""

    def __init__(self, value=0.0):
        if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
            value = value.item()
        self.value = value

    def __call__(self, shape, dtype=None):
        return torch.full(_shape(shape), self.value, dtype=_dtype(dtype), device=backend.device())

    def get_config(self):
        return {"value": serialization_lib.serialize_keras_object(self.value)}

    @classmethod
    def from_config(cls, config):
        value = config.get("value", 0.0)
        if isinstance(value, dict):
            value = serialization_lib.deserialize_keras_object(value)
        return cls(value)


class Identity(Initializer):
    """`gain` times the identity matrix (2D shapes only).

    Keras 3.15 writes an empty config (losing `gain`); lamina writes the same `{}` for the
    default gain and `{"gain": g}` otherwise, which Keras also reads.
    """

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        shape = _shape(shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        out = torch.eye(*shape, dtype=_dtype(dtype), device=backend.device())
        return out if self.gain == 1 else out * self.gain

    def get_config(self):
        return {} if self.gain == 1.0 else {"gain": self.gain}


class RandomInitializer(Initializer):
    """Base of the random initializers: holds the `seed` (an int or None)."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError("`seed` argument should be an integer or None. "
                             f"Received: seed={seed!r}")
        self.seed = None if seed is None else int(seed)

    def get_config(self):
        return {"seed": self.seed}

    def _draw(self, shape, dtype, fill):
        """A new tensor of `shape`, filled in place by `fill(tensor, generator)`."""
        work = _work_dtype(dtype)
        if self.seed is None:
            out = torch.empty(shape, dtype=work, device=backend.device())
            fill(out, None)
        else:
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            out = torch.empty(shape, dtype=work)
            fill(out, generator)
            out = out.to(backend.device())
        return out.to(dtype)


def _normal(mean, stddev):
    return lambda t, g: t.normal_(mean, stddev, generator=g)


def _uniform(minval, maxval):
    return lambda t, g: t.uniform_(minval, maxval, generator=g)


def _truncated_normal(mean, stddev):
    return lambda t, g: torch.nn.init.trunc_normal_(
        t, mean, stddev, mean - 2.0 * stddev, mean + 2.0 * stddev, generator=g)


class RandomNormal(RandomInitializer):
    """Normal distribution with `mean` and `stddev`."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype, type(self).__name__)
        return self._draw(_shape(shape), dtype, _normal(self.mean, self.stddev))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomInitializer):
    """Normal distribution with `mean` and `stddev`, cut at two standard deviations."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean = mean
        self.stddev = stddev
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype, type(self).__name__)
        return self._draw(_shape(shape), dtype, _truncated_normal(self.mean, self.stddev))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomUniform(RandomInitializer):
    """Uniform distribution on `[minval, maxval)`."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval = minval
        self.maxval = maxval
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype, type(self).__name__)
        return self._draw(_shape(shape), dtype, _uniform(self.minval, self.maxval))

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


def compute_fans(shape, input_axes=None, output_axes=None):
    """`(fan_in, fan_out)` of a Keras-layout weight shape.

    1D: both are the length; 2D `(in, out)`; nD conv kernels `(*spatial, in, out)` multiply
    in and out by the receptive field `prod(spatial)`. `input_axes`/`output_axes` name the axes
    explicitly instead.
    """
    shape = _shape(shape)
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[a] for a in input_axes])),
                int(np.prod([shape[a] for a in output_axes])))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


class VarianceScaling(RandomInitializer):
    """Random values with variance `scale / n`, `n` the fan chosen by `mode`.

    `distribution` is `"truncated_normal"` (stddev corrected for the truncation; `"normal"` is an
    alias), `"untruncated_normal"` or `"uniform"` (limit `sqrt(3 * scale / n)`).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None,
                 input_axes=None, output_axes=None):
        if not scale > 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale}")
        modes = ("fan_in", "fan_out", "fan_avg")
        if mode not in modes:
            raise ValueError(f"Invalid `mode` argument: expected one of {modes}. "
                             f"Received: mode={mode!r}")
        distribution = str(distribution).lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        distributions = ("truncated_normal", "untruncated_normal", "uniform")
        if distribution not in distributions:
            raise ValueError(f"Invalid `distribution` argument: expected one of {distributions}. "
                             f"Received: distribution={distribution!r}")
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.input_axes = input_axes
        self.output_axes = output_axes
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype, type(self).__name__)
        shape = _shape(shape)
        fan_in, fan_out = compute_fans(shape, self.input_axes, self.output_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        if self.distribution == "truncated_normal":
            fill = _truncated_normal(0.0, math.sqrt(variance) / _TRUNCATED_STDDEV)
        elif self.distribution == "untruncated_normal":
            fill = _normal(0.0, math.sqrt(variance))
        else:
            limit = math.sqrt(3.0 * variance)
            fill = _uniform(-limit, limit)
        return self._draw(shape, dtype, fill)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mode": self.mode,
                "distribution": self.distribution, "input_axes": self.input_axes,
                "output_axes": self.output_axes}


class _FixedVarianceScaling(VarianceScaling):
    """A VarianceScaling preset: only `seed` and the fan axes are configurable."""
    _preset = {}

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        super().__init__(seed=seed, input_axes=input_axes, output_axes=output_axes, **self._preset)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on `[-limit, limit]`, `limit = sqrt(6 / (fan_in + fan_out))`."""
    _preset = {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform"}


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with `stddev = sqrt(2 / (fan_in + fan_out))`."""
    _preset = {"scale": 1.0, "mode": "fan_avg", "distribution": "truncated_normal"}


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with `stddev = sqrt(1 / fan_in)`."""
    _preset = {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}


class LecunUniform(_FixedVarianceScaling):
    """Uniform on `[-limit, limit]`, `limit = sqrt(3 / fan_in)`."""
    _preset = {"scale": 1.0, "mode": "fan_in", "distribution": "uniform"}


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with `stddev = sqrt(2 / fan_in)`."""
    _preset = {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"}


class HeUniform(_FixedVarianceScaling):
    """Uniform on `[-limit, limit]`, `limit = sqrt(6 / fan_in)`."""
    _preset = {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"}


class Orthogonal(RandomInitializer):
    """`gain` times a random orthogonal matrix (QR of a normal matrix).

    Shapes of rank > 2 are treated as `(prod(shape[:-1]), shape[-1])` and reshaped back.
    """

    def __init__(self, gain=1.0, seed=None):
        self.gain = gain
        super().__init__(seed=seed)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype, type(self).__name__)
        shape = _shape(shape)
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        rows, cols = int(np.prod(shape[:-1])), shape[-1]
        a = self._draw((max(rows, cols), min(rows, cols)), _work_dtype(dtype), _normal(0.0, 1.0))
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).to(dtype).contiguous()

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


# Keras's public aliases: the snake-case names are the same classes.
constant = Constant
glorot_normal = GlorotNormal
glorot_uniform = GlorotUniform
he_normal = HeNormal
he_uniform = HeUniform
identity = Identity
IdentityInitializer = Identity
lecun_normal = LecunNormal
lecun_uniform = LecunUniform
ones = Ones
orthogonal = Orthogonal
OrthogonalInitializer = Orthogonal
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
zeros = Zeros

_CLASSES = [Initializer, Zeros, Ones, Constant, Identity, RandomNormal, TruncatedNormal,
            RandomUniform, VarianceScaling, GlorotUniform, GlorotNormal, LecunNormal,
            LecunUniform, HeNormal, HeUniform, Orthogonal]
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({backend.to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal,
                         "normal": RandomNormal, "uniform": RandomUniform, "one": Ones,
                         "zero": Zeros})


def serialize(initializer):
    """The Keras 3 config dict of `initializer`."""
    return serialization_lib.serialize_keras_object(initializer)


def deserialize(config, custom_objects=None):
    """An initializer from a name or a Keras config dict."""
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="initializer")


def _from_array(value):
    value = torch.as_tensor(value)

    def initialize_fn(shape, dtype=None):
        if _shape(shape) != tuple(value.shape):
            raise ValueError(f"Expected `shape` to be {tuple(value.shape)} for direct tensor as "
                             f"initializer. Received: shape={tuple(shape)}")
        return value.to(device=backend.device(), dtype=_dtype(dtype)).clone()

    return initialize_fn


def get(identifier):
    """Resolve `identifier`: a name (`"glorot_uniform"`, `"GlorotUniform"`), a config dict, a
    class (instantiated), a callable (passed through) or an array (its values). None gives None."""
    if isinstance(identifier, (torch.Tensor, np.ndarray, np.generic)):
        return _from_array(identifier)
    return serialization_lib.get_object(
        identifier, ALL_OBJECTS_DICT, "initializer", "initializers",
        "a string, a config dict, an Initializer, a callable or an array")
