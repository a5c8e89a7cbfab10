"""Depthwise and separable convolutions: `DepthwiseConv1D/2D`, `SeparableConv1D/2D`.

The depthwise kernel, Keras `(*kernel_size, in, depth_multiplier)`, is stored as
`(in, depth_multiplier, *kernel_size)`: reshaping it to torch's grouped-conv weight
`(in * depth_multiplier, 1, *kernel_size)` is then a view (output channel `c * dm + m`, as Keras).
"""
from lamina import constraints, initializers, regularizers
from lamina.layers.convolutional import _utils as U
from lamina.layers.convolutional.base_conv import _ConvBase, _serialize, kernel_layout


def depthwise_layout(rank):
    """Permutation from Keras `(*k, in, dm)` to `(in, dm, *k)`."""
    return (rank, rank + 1) + tuple(range(rank))


class BaseDepthwiseConv(_ConvBase):
    """Convolves each input channel with its own `depth_multiplier` filters."""

    def __init__(self, rank, depth_multiplier, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias, bias_initializer, bias_regularizer,
                          bias_constraint)
        self._check_positive("depth_multiplier", depth_multiplier)
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def build(self, input_shape):
        channels = self._check_build_shape(input_shape)
        self.compute_output_shape(input_shape)
        shape = self.kernel_size + (channels, self.depth_multiplier)
        self.kernel = self._add_kernel(shape, self.depthwise_initializer,
                                       self.depthwise_regularizer, self.depthwise_constraint,
                                       "kernel", depthwise_layout(self.rank),
                                       channels_last=False)
        self.bias = self._add_bias(channels * self.depth_multiplier)

    def _grouped_kernel(self, kernel):
        channels, multiplier = kernel.shape[0], kernel.shape[1]
        return kernel.reshape((channels * multiplier, 1) + tuple(kernel.shape[2:])), channels

    def call(self, inputs):
        pads = self._pads(inputs)
        weight, groups = self._grouped_kernel(self.kernel)
        y = self._convolve(U.to_torch(inputs, self.data_format), weight, self.bias, pads, groups)
        return self._activate(y)

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape,
                                  self._input_channels(input_shape) * self.depth_multiplier)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier,
                **self._common_config(), **self._tail_config(),
                "depthwise_initializer": _serialize(self.depthwise_initializer),
                "bias_initializer": _serialize(self.bias_initializer),
                "depthwise_regularizer": _serialize(self.depthwise_regularizer),
                "bias_regularizer": _serialize(self.bias_regularizer),
                "activity_regularizer": _serialize(self.activity_regularizer),
                "depthwise_constraint": _serialize(self.depthwise_constraint),
                "bias_constraint": _serialize(self.bias_constraint)}


class DepthwiseConv1D(BaseDepthwiseConv):
    """Depthwise 1D convolution; kernel `(k, in, depth_multiplier)`."""

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, depth_multiplier, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    """Depthwise 2D convolution; kernel `(kh, kw, in, depth_multiplier)`."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, depth_multiplier, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)


class BaseSeparableConv(BaseDepthwiseConv):
    """A depthwise convolution followed by a pointwise (1x1) convolution to `filters`."""

    def __init__(self, rank, depth_multiplier, filters, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(rank, depth_multiplier, kernel_size, strides, padding, data_format,
                         dilation_rate, activation, use_bias, depthwise_initializer,
                         bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self._check_positive("filters", filters)
        self.filters = filters
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, input_shape):
        channels = self._check_build_shape(input_shape)
        self.compute_output_shape(input_shape)
        rank, multiplier = self.rank, self.depth_multiplier
        self.depthwise_kernel = self._add_kernel(
            self.kernel_size + (channels, multiplier), self.depthwise_initializer,
            self.depthwise_regularizer, self.depthwise_constraint, "depthwise_kernel",
            depthwise_layout(rank), channels_last=False)
        self.pointwise_kernel = self._add_kernel(
            (1,) * rank + (channels * multiplier, self.filters), self.pointwise_initializer,
            self.pointwise_regularizer, self.pointwise_constraint, "pointwise_kernel",
            kernel_layout(rank))
        self.bias = self._add_bias(self.filters)

    def call(self, inputs):
        pads = self._pads(inputs)
        weight, groups = self._grouped_kernel(self.depthwise_kernel)
        x = self._convolve(U.to_torch(inputs, self.data_format), weight, None, pads, groups)
        ones = (1,) * self.rank
        y = self._convolve(x, self.pointwise_kernel, self.bias, [(0, 0)] * self.rank, 1,
                           strides=ones, dilation=ones)
        return self._activate(y)

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, self.filters)

    def get_config(self):
        return {**_ConvBase.get_config(self), "depth_multiplier": self.depth_multiplier,
                "filters": self.filters, **self._common_config(), **self._tail_config(),
                "depthwise_initializer": _serialize(self.depthwise_initializer),
                "pointwise_initializer": _serialize(self.pointwise_initializer),
                "bias_initializer": _serialize(self.bias_initializer),
                "depthwise_regularizer": _serialize(self.depthwise_regularizer),
                "pointwise_regularizer": _serialize(self.pointwise_regularizer),
                "bias_regularizer": _serialize(self.bias_regularizer),
                "activity_regularizer": _serialize(self.activity_regularizer),
                "depthwise_constraint": _serialize(self.depthwise_constraint),
                "pointwise_constraint": _serialize(self.pointwise_constraint),
                "bias_constraint": _serialize(self.bias_constraint)}


class SeparableConv1D(BaseSeparableConv):
    """Separable 1D convolution: depthwise `(k, in, dm)` then pointwise `(1, in*dm, filters)`."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(1, depth_multiplier, filters, kernel_size, strides, padding,
                         data_format, dilation_rate, activation, use_bias,
                         depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, pointwise_constraint,
                         bias_constraint, **kwargs)


class SeparableConv2D(BaseSeparableConv):
    """Separable 2D convolution: depthwise `(kh, kw, in, dm)` then pointwise
    `(1, 1, in*dm, filters)`, then bias."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(2, depth_multiplier, filters, kernel_size, strides, padding,
                         data_format, dilation_rate, activation, use_bias,
                         depthwise_initializer, pointwise_initializer, bias_initializer,
                         depthwise_regularizer, pointwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, pointwise_constraint,
                         bias_constraint, **kwargs)


SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D
