"""Pooling layers: `MaxPooling1D/2D/3D`, `AveragePooling1D/2D/3D` and the global poolings.

`"same"` padding is Keras's (TF's): the extra cell of an odd total goes at the end; max pooling
ignores padded cells and average pooling divides by the number of real cells in each window.
Symmetric pads go to torch's kernels; an asymmetric one is applied with `F.pad` first.
"""
import torch
import torch.nn.functional as F

from lamina.engine.layer import InputSpec, Layer
from lamina.layers.convolutional import _utils as U

_MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}
_AVG_POOL = {2: F.avg_pool2d, 3: F.avg_pool3d}


class BasePooling(Layer):
    """Sliding-window max or average over the spatial axes."""

    rank = None
    pool_mode = None

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(name=name, **kwargs)
        rank = self.rank
        self.pool_size = U.standardize_tuple(pool_size, rank, "pool_size", layer=self.name)
        strides = self.pool_size if strides is None else strides
        self.strides = U.standardize_tuple(strides, rank, "strides", layer=self.name)
        self.padding = U.standardize_padding(padding, self.name)
        self.data_format = U.standardize_data_format(data_format, self.name)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _check(self, shape):
        return U.check_output_sizes(self, tuple(shape), self.data_format, self.pool_size,
                                    self.strides, (1,) * self.rank, self.padding, "pool size")

    def build(self, input_shape):
        self._check(input_shape)

    _pads_memo = None  # (input shape less the batch axis, its pads)

    def _work_out_pads(self, inputs):
        U.check_rank(self, inputs, self.rank)
        self._check(inputs.shape)
        return U.conv_pads(U.spatial_shape(inputs.shape, self.data_format), self.pool_size,
                           self.strides, (1,) * self.rank, self.padding)

    def call(self, inputs):
        pads = U.memo_pads(self, inputs, self._work_out_pads)
        x = U.to_torch(inputs, self.data_format)
        kernel = U.torch_tuple(self.pool_size, self.rank)
        strides = U.torch_tuple(self.strides, self.rank)
        dims = max(self.rank, 2)
        if self.pool_mode == "max":
            lowest = (float("-inf") if x.is_floating_point() else torch.iinfo(x.dtype).min)
            x, padding = U.torch_padding(x, pads, self.rank, value=lowest)
            y = _MAX_POOL[dims](x, kernel, strides, padding)
        else:
            y = _average(x, pads, kernel, strides, self.rank, dims)
        if y.dtype != inputs.dtype:  # torch's CPU autocast pools 3D windows in float32
            y = y.to(inputs.dtype)
        return U.from_torch(y, self.data_format, self.rank)

    def compute_output_shape(self, input_shape):
        outs = tuple(self._check(input_shape))
        if self.data_format == "channels_last":
            return (input_shape[0],) + outs + (input_shape[-1],)
        return (input_shape[0], input_shape[1]) + outs

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


def _average(x, pads, kernel, strides, rank, dims):
    """Average over the real (unpadded) cells of each window."""
    padded, padding = U.torch_padding(x, pads, rank)
    if padded is x:  # symmetric: torch's kernel pads and leaves the pads out of the count
        return _AVG_POOL[dims](x, kernel, strides, padding, count_include_pad=False)
    sums = _AVG_POOL[dims](padded, kernel, strides, divisor_override=1)
    ones = x.new_ones((1, 1) + tuple(x.shape[2:]))
    counts = _AVG_POOL[dims](U.torch_padding(ones, pads, rank)[0], kernel, strides,
                             divisor_override=1)
    return sums / counts


class MaxPooling1D(BasePooling):
    """Max over windows of `pool_size` steps of `(batch, steps, features)`."""
    rank, pool_mode = 1, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class MaxPooling2D(BasePooling):
    """Max over `pool_size` windows of `(batch, height, width, channels)`."""
    rank, pool_mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class MaxPooling3D(BasePooling):
    """Max over `pool_size` windows of `(batch, depth, height, width, channels)`."""
    rank, pool_mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling1D(BasePooling):
    """Mean over windows of `pool_size` steps (`pool_size` defaults to 2, as in Keras 2)."""
    rank, pool_mode = 1, "average"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling2D(BasePooling):
    """Mean over `pool_size` windows (`pool_size` defaults to `(2, 2)`, as in Keras 2)."""
    rank, pool_mode = 2, "average"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling3D(BasePooling):
    """Mean over `pool_size` windows (`pool_size` defaults to `(2, 2, 2)`, as in Keras 2)."""
    rank, pool_mode = 3, "average"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, name=name, **kwargs)


class BaseGlobalPooling(Layer):
    """Max or mean over all spatial axes; `keepdims=True` keeps them with size 1."""

    rank = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = U.standardize_data_format(data_format, self.name)
        self.keepdims = keepdims
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _axes(self):
        start = 1 if self.data_format == "channels_last" else 2
        return tuple(range(start, start + self.rank))

    def compute_output_shape(self, input_shape):
        channels_last = self.data_format == "channels_last"
        channels = input_shape[-1] if channels_last else input_shape[1]
        if not self.keepdims:
            return (input_shape[0], channels)
        ones = (1,) * self.rank
        return ((input_shape[0],) + ones + (channels,) if channels_last
                else (input_shape[0], channels) + ones)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class _GlobalMax(BaseGlobalPooling):
    def call(self, inputs):
        U.check_rank(self, inputs, self.rank)
        return torch.amax(inputs, dim=self._axes(), keepdim=self.keepdims)


class _GlobalAverage(BaseGlobalPooling):
    def call(self, inputs):
        U.check_rank(self, inputs, self.rank)
        return torch.mean(inputs, dim=self._axes(), keepdim=self.keepdims)


class GlobalMaxPooling1D(_GlobalMax):
    """Max over the steps axis of `(batch, steps, features)`."""
    rank = 1


class GlobalMaxPooling2D(_GlobalMax):
    """Max over height and width."""
    rank = 2


class GlobalMaxPooling3D(_GlobalMax):
    """Max over depth, height and width."""
    rank = 3


class GlobalAveragePooling1D(BaseGlobalPooling):
    """Mean over the steps axis; with a mask `(batch, steps)`, the mean of the unmasked steps."""

    rank = 1

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        U.check_rank(self, inputs, self.rank)
        steps = 1 if self.data_format == "channels_last" else 2
        if mask is None:
            return torch.mean(inputs, dim=steps, keepdim=self.keepdims)
        weights = mask.to(torch.bool).unsqueeze(2 if steps == 1 else 1)
        total = torch.where(weights, inputs, 0).sum(dim=steps, keepdim=self.keepdims)
        count = weights.to(inputs.dtype).sum(dim=steps, keepdim=self.keepdims)
        return total / count

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling2D(_GlobalAverage):
    """Mean over height and width."""
    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    """Mean over depth, height and width."""
    rank = 3


MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
