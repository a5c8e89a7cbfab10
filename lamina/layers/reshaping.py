"""Spatial reshaping layers: `ZeroPadding1D/2D/3D`, `Cropping1D/2D/3D`, `UpSampling1D/2D/3D`.

(`Flatten`, `Reshape`, `Permute` and `RepeatVector` live in `lamina.layers.core`.)
Cropping returns a view; nearest up-sampling is one broadcast-and-reshape copy.
"""
import torch.nn.functional as F

from lamina.engine.layer import InputSpec, Layer
from lamina.layers.convolutional import _utils as U

_INTERPOLATIONS = {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}


def _pairs(value, rank, name, layer):
    """`value` as `rank` `(before, after)` pairs: an int, `rank` ints, or `rank` pairs."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (U.standardize_tuple(value, 2, name, allow_zero=True, layer=layer),) * rank
    if rank == 1:
        return (U.standardize_tuple(value, 2, name, allow_zero=True, layer=layer),)
    if not hasattr(value, "__len__") or len(value) != rank:
        raise ValueError(f"Layer '{layer}': `{name}` should be an int, a tuple of {rank} ints, "
                         f"or a tuple of {rank} tuples of 2 ints. Received: {name}={value!r}.")
    return tuple(U.standardize_tuple(v, 2, f"entry {i} of {name}", allow_zero=True, layer=layer)
                 for i, v in enumerate(value))


def _spatial_axes(rank, data_format):
    start = 1 if data_format == "channels_last" else 2
    return range(start, start + rank)


class _SpatialLayer(Layer):
    rank = None

    def _setup(self, data_format):
        self.data_format = U.standardize_data_format(data_format, self.name)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _resize_shape(self, input_shape, fn):
        shape = list(input_shape)
        for i, axis in enumerate(_spatial_axes(self.rank, self.data_format)):
            if shape[axis] is not None:
                shape[axis] = fn(i, shape[axis])
        return tuple(shape)


class _ZeroPadding(_SpatialLayer):
    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(data_format)
        self.padding = _pairs(padding, self.rank, "padding", self.name)

    def call(self, inputs):
        U.check_rank(self, inputs, self.rank)
        flat = []
        axes = list(_spatial_axes(self.rank, self.data_format))
        for axis in range(inputs.dim() - 1, axes[0] - 1, -1):  # F.pad lists the last axis first
            flat.extend(self.padding[axis - axes[0]] if axis in axes else (0, 0))
        return F.pad(inputs, flat)

    def compute_output_shape(self, input_shape):
        return self._resize_shape(input_shape, lambda i, n: n + sum(self.padding[i]))

    def get_config(self):
        padding = self.padding[0] if self.rank == 1 else self.padding
        return {**super().get_config(), "padding": padding, "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pads the steps axis with zeros: `padding` is an int or `(left, right)`."""
    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """Pads height and width with zeros: an int, `(h, w)` or `((top, bottom), (left, right))`."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    """Pads depth, height and width with zeros."""
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format, **kwargs)


class _Cropping(_SpatialLayer):
    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(data_format)
        self.cropping = _pairs(cropping, self.rank, "cropping", self.name)

    def _cropped(self, i, n):
        left, right = self.cropping[i]
        if left + right >= n:
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}): values in `cropping` must be "
                f"smaller than the corresponding spatial dimension of the input. Received: "
                f"cropping={self.cropping} for a spatial dimension of size {n}.")
        return n - left - right

    def call(self, inputs):
        U.check_rank(self, inputs, self.rank)
        out = inputs
        for i, axis in enumerate(_spatial_axes(self.rank, self.data_format)):
            out = out.narrow(axis, self.cropping[i][0], self._cropped(i, inputs.shape[axis]))
        return out

    def compute_output_shape(self, input_shape):
        return self._resize_shape(input_shape, self._cropped)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def get_config(self):
        cropping = self.cropping[0] if self.rank == 1 else self.cropping
        return {**super().get_config(), "cropping": cropping, "data_format": self.data_format}


class Cropping1D(_Cropping):
    """Crops the steps axis: `cropping` is an int or `(left, right)`."""
    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, "channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        return config


class Cropping2D(_Cropping):
    """Crops height and width: an int, `(h, w)` or `((top, bottom), (left, right))`."""
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crops depth, height and width."""
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format, **kwargs)


def _repeat_nearest(x, sizes, axes):
    """Repeat each cell `sizes[i]` times along `axes[i]` (one broadcast, one copy)."""
    unit, expanded, final = [], [], []
    for axis, n in enumerate(x.shape):
        unit.append(n)
        expanded.append(n)
        final.append(n)
        if axis in axes:
            factor = sizes[axes.index(axis)]
            unit.append(1)
            expanded.append(factor)
            final[-1] = n * factor
    return x.reshape(unit).expand(expanded).reshape(final)


class _UpSampling(_SpatialLayer):
    def __init__(self, size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(data_format)
        self.size = U.standardize_tuple(size, self.rank, "size", layer=self.name)

    def call(self, inputs):
        U.check_rank(self, inputs, self.rank)
        return _repeat_nearest(inputs, self.size,
                               list(_spatial_axes(self.rank, self.data_format)))

    def compute_output_shape(self, input_shape):
        return self._resize_shape(input_shape, lambda i, n: n * self.size[i])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times."""
    rank = 1

    def __init__(self, size=2, **kwargs):
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"Expected an integer value for `size`, got {type(size)}.")
        super().__init__(size, "channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        config["size"] = self.size[0]
        return config


class UpSampling2D(_UpSampling):
    """Repeats rows and columns (`"nearest"`), or resizes with `"bilinear"`/`"bicubic"`
    interpolation (half-pixel centres, as Keras's `ops.image.resize`)."""
    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format, **kwargs)
        mode = interpolation.lower() if isinstance(interpolation, str) else interpolation
        if mode not in _INTERPOLATIONS:
            raise ValueError(f"Layer '{self.name}': the `interpolation` argument must be one "
                             f"of {', '.join(repr(m) for m in _INTERPOLATIONS)}. Received: "
                             f"interpolation={interpolation!r}")
        self.interpolation = mode

    def call(self, inputs):
        if self.interpolation == "nearest":
            return super().call(inputs)
        U.check_rank(self, inputs, self.rank)
        x = U.to_torch(inputs, self.data_format)
        size = (x.shape[2] * self.size[0], x.shape[3] * self.size[1])
        y = F.interpolate(x, size=size, mode=_INTERPOLATIONS[self.interpolation],
                          align_corners=False)
        return U.from_torch(y, self.data_format, self.rank)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    """Repeats each cell `size` times along depth, height and width."""
    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format, **kwargs)
