"""Transposed convolutions: `Conv1DTranspose`, `Conv2DTranspose`, `Conv3DTranspose`.

Output sizes follow Keras (TF) exactly: `"valid"` gives `(n - 1) * s + max(k, s)`, `"same"`
gives `n * s`, and an explicit `output_padding` gives `(n - 1) * s + k + output_padding`
(`valid`) or `(n - 1) * s + k % 2 + output_padding` (`same`), `k` the dilated kernel size. The
window is the full transposed convolution cropped by `(full - out) // 2` at the start, which
torch's own `padding`/`output_padding` express directly except when one more cell must go at
the end; then the result is narrowed (a view).
"""
import torch.nn.functional as F

from lamina import constraints, initializers, regularizers
from lamina.layers.convolutional import _utils as U
from lamina.layers.convolutional.base_conv import _ConvBase, _serialize, kernel_layout


def transpose_output_length(size, kernel, stride, dilation, padding, output_padding=None):
    """Keras's output length of one axis of a transposed convolution (None stays None)."""
    if size is None:
        return None
    k = U.effective_size(kernel, dilation)
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        return (size - 1) * stride + k + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + k % 2 + output_padding


class BaseConvTranspose(_ConvBase):
    """N-D transposed convolution (the gradient of a convolution with respect to its input)."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid",
                 output_padding=None, data_format=None, dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias, bias_initializer, bias_regularizer,
                          bias_constraint)
        self._check_positive("filters", filters)
        self.filters = filters
        self.output_padding = None
        if output_padding is not None:
            self.output_padding = U.standardize_tuple(output_padding, rank, "output_padding",
                                                      allow_zero=True, layer=self.name)
            if any(op >= s for op, s in zip(self.output_padding, self.strides)):
                raise ValueError(
                    f"Layer '{self.name}': `output_padding` must be strictly less than "
                    f"`strides` for all dimensions. Received: "
                    f"output_padding={self.output_padding}, strides={self.strides}")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape):
        channels = self._check_build_shape(input_shape)
        shape = self.kernel_size + (self.filters, channels)
        self.kernel = self._add_kernel(shape, self.kernel_initializer, self.kernel_regularizer,
                                       self.kernel_constraint, "kernel",
                                       kernel_layout(self.rank))
        self.bias = self._add_bias(self.filters)

    def _output_lengths(self, sizes):
        ops = self.output_padding or (None,) * self.rank
        return [transpose_output_length(n, k, s, d, self.padding, op) for n, k, s, d, op in
                zip(sizes, self.kernel_size, self.strides, self.dilation_rate, ops)]

    def call(self, inputs):
        self._check_inputs(inputs)
        rank = self.rank
        sizes = U.spatial_shape(inputs.shape, self.data_format)
        pads, extras, narrow = [], [], []
        for n, k, s, d, out in zip(sizes, self.kernel_size, self.strides, self.dilation_rate,
                                   self._output_lengths(sizes)):
            full = (n - 1) * s + U.effective_size(k, d)
            before = max(full - out, 0) // 2 if self.padding == "same" else 0
            extra = out - (full - 2 * before)
            pads.append(before)
            extras.append(max(extra, 0))
            narrow.append(out if extra < 0 else None)
        fn = F.conv_transpose3d if rank == 3 else F.conv_transpose2d
        y = fn(U.to_torch(inputs, self.data_format), U.as_torch_kernel(self.kernel, rank),
               self.bias, stride=U.torch_tuple(self.strides, rank),
               padding=U.torch_tuple(pads, rank, fill=0),
               output_padding=U.torch_tuple(extras, rank, fill=0),
               dilation=U.torch_tuple(self.dilation_rate, rank))
        offset = y.dim() - rank
        for axis, length in enumerate(narrow):
            if length is not None:
                y = y.narrow(offset + axis, 0, length)
        return self._activate(y)

    def compute_output_shape(self, input_shape):
        outs = tuple(self._output_lengths(U.spatial_shape(input_shape, self.data_format)))
        if self.data_format == "channels_last":
            return (input_shape[0],) + outs + (self.filters,)
        return (input_shape[0], self.filters) + outs

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters,
                  "kernel_size": self.kernel_size, "strides": self.strides,
                  "padding": self.padding, "output_padding": self.output_padding,
                  "data_format": self.data_format, "dilation_rate": self.dilation_rate,
                  **self._tail_config(),
                  "kernel_initializer": _serialize(self.kernel_initializer),
                  "bias_initializer": _serialize(self.bias_initializer),
                  "kernel_regularizer": _serialize(self.kernel_regularizer),
                  "bias_regularizer": _serialize(self.bias_regularizer),
                  "activity_regularizer": _serialize(self.activity_regularizer),
                  "kernel_constraint": _serialize(self.kernel_constraint),
                  "bias_constraint": _serialize(self.bias_constraint)}
        return config


class Conv1DTranspose(BaseConvTranspose):
    """1D transposed convolution; kernel `(k, filters, in)`."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    """2D transposed convolution; kernel `(kh, kw, filters, in)`."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    """3D transposed convolution; kernel `(kd, kh, kw, filters, in)`.

    Argument order as Keras's: `data_format` comes before `output_padding` here.
    """

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, output_padding=None, dilation_rate=(1, 1, 1),
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(3, filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, activation, use_bias, kernel_initializer,
                         bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
