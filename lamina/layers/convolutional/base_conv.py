"""`Conv1D`, `Conv2D`, `Conv3D` and the pieces every convolution layer shares.

Kernels are stored as torch wants them, `(filters, in // groups, *kernel_size)`, with the input
channels innermost in memory when the data is channels-last, so `F.conv2d` runs in
`torch.channels_last` without re-laying out input or kernel. `get_weights()` still gives Keras's
`(*kernel_size, in // groups, filters)`.
"""

from lamina import activations, constraints, initializers, regularizers
from lamina.engine.layer import InputSpec, Layer
from lamina.layers.convolutional import _utils as U
from lamina.saving import serialization_lib


def _serialize(obj):
    return serialization_lib.serialize_keras_object(obj)


def kernel_layout(rank):
    """Permutation from Keras `(*k, a, b)` to torch `(b, a, *k)`."""
    return (rank + 1, rank) + tuple(range(rank))


class _ConvBase(Layer):
    """Arguments, checks and the torch call shared by all convolution layers."""

    rank = None
    _allow_causal = False

    def _init_common(self, kernel_size, strides, padding, data_format, dilation_rate,
                     activation, use_bias, bias_initializer, bias_regularizer, bias_constraint):
        name = self.name
        self.kernel_size = U.standardize_tuple(kernel_size, self.rank, "kernel_size", layer=name)
        self.strides = U.standardize_tuple(strides, self.rank, "strides", layer=name)
        self.dilation_rate = U.standardize_tuple(dilation_rate, self.rank, "dilation_rate",
                                                 layer=name)
        self.padding = U.standardize_padding(padding, name, allow_causal=self._allow_causal)
        self.data_format = U.standardize_data_format(data_format, name)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    @staticmethod
    def _check_positive(name, value):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"Invalid value for argument `{name}`. Expected a strictly "
                             f"positive integer. Received {name}={value}.")

    def _input_channels(self, input_shape):
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        if channels is None:
            raise ValueError(f"Layer '{self.name}' ({type(self).__name__}): the channel "
                             f"dimension of the inputs must be defined. Received input shape "
                             f"{tuple(input_shape)}")
        return channels

    def _check_build_shape(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Input 0 of layer '{self.name}' ({type(self).__name__}) is "
                             f"incompatible with the layer: expected ndim={self.rank + 2}, "
                             f"found ndim={len(input_shape)}. Full shape received: "
                             f"{tuple(input_shape)}")
        channels = self._input_channels(input_shape)
        axis = -1 if self.data_format == "channels_last" else 1
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={axis: channels})
        self._channels = channels
        return channels

    def _check_inputs(self, inputs):
        """Rank and channel count of an eager call (shape arithmetic only, no host sync)."""
        U.check_rank(self, inputs, self.rank)
        axis = -1 if self.data_format == "channels_last" else 1
        if inputs.shape[axis] != self._channels:
            raise ValueError(f"Input 0 of layer '{self.name}' ({type(self).__name__}) is "
                             f"incompatible with the layer: expected axis {axis} of input shape "
                             f"to have value {self._channels}, but received input with shape "
                             f"{tuple(inputs.shape)}")

    def _add_kernel(self, shape, initializer, regularizer, constraint, name, layout,
                    channels_last=True):
        weight = self.add_weight(shape=shape, name=name, initializer=initializer,
                                 regularizer=regularizer, constraint=constraint, layout=layout)
        if channels_last and self.data_format == "channels_last":
            U.channels_last_storage(weight)
        return weight

    def _add_bias(self, size):
        if not self.use_bias:
            return None
        return self.add_weight(shape=(size,), name="bias", initializer=self.bias_initializer,
                               regularizer=self.bias_regularizer,
                               constraint=self.bias_constraint)

    _pads_memo = None  # (input shape less the batch axis, its pads)

    def _pads(self, inputs):
        """Per-axis pads for `inputs`, whose rank, channels and spatial size are checked when
        their shape is new."""
        return U.memo_pads(self, inputs, self._work_out_pads)

    def _work_out_pads(self, inputs):
        self._check_inputs(inputs)
        shape = tuple(inputs.shape)
        U.check_output_sizes(self, shape, self.data_format, self.kernel_size,
                             self.strides, self.dilation_rate, self.padding, "kernel size")
        return U.conv_pads(U.spatial_shape(shape, self.data_format), self.kernel_size,
                           self.strides, self.dilation_rate, self.padding)

    def _convolve(self, x, weight, bias, pads, groups, strides=None, dilation=None):
        """Run the torch convolution on a channels-first `x` (1D as 2D)."""
        rank = self.rank
        x, padding = U.torch_padding(x, pads, rank)
        return U.conv_function(rank)(
            x, U.as_torch_kernel(weight, rank), bias,
            stride=U.torch_tuple(strides or self.strides, rank),
            padding=padding,
            dilation=U.torch_tuple(dilation or self.dilation_rate, rank),
            groups=groups)

    def _activate(self, y):
        """The activation of a channels-first result `y`, returned in the layer's data format
        (a plain relu in place on `y`, see `activations.apply_to_layer_output`)."""
        return activations.apply_to_layer_output(
            self.activation, y, lambda out: U.from_torch(out, self.data_format, self.rank))

    def _output_shape(self, input_shape, channels):
        outs = U.check_output_sizes(self, tuple(input_shape), self.data_format, self.kernel_size,
                                    self.strides, self.dilation_rate, self.padding,
                                    "kernel size")
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(outs) + (channels,)
        return (input_shape[0], channels) + tuple(outs)

    def _common_config(self):
        return {"kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate}

    def _tail_config(self):
        return {"activation": activations.serialize(self.activation), "use_bias": self.use_bias}


class BaseConv(_ConvBase):
    """N-D convolution: `activation(conv(inputs, kernel) + bias)`."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate,
                          activation, use_bias, bias_initializer, bias_regularizer,
                          bias_constraint)
        self._check_positive("filters", filters)
        self._check_positive("groups", groups)
        if lora_rank:
            raise NotImplementedError(f"Layer '{self.name}': LoRA (`lora_rank`) is not "
                                      "supported on convolution layers yet.")
        self.filters, self.groups = filters, groups
        self.lora_rank, self.lora_alpha = lora_rank, lora_alpha
        if filters % groups:
            raise ValueError("The number of filters must be evenly divisible by the number of "
                             f"groups. Received: groups={groups}, filters={filters}.")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def build(self, input_shape):
        channels = self._check_build_shape(input_shape)
        if channels % self.groups:
            raise ValueError("The number of input channels must be evenly divisible by the "
                             f"number of groups. Received groups={self.groups}, but the input "
                             f"has {channels} channels (full input shape is "
                             f"{tuple(input_shape)}).")
        self.compute_output_shape(input_shape)
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self._add_kernel(shape, self.kernel_initializer, self.kernel_regularizer,
                                       self.kernel_constraint, "kernel",
                                       kernel_layout(self.rank))
        self.bias = self._add_bias(self.filters)

    def call(self, inputs):
        pads = self._pads(inputs)
        x = U.to_torch(inputs, self.data_format)
        y = self._convolve(x, self.kernel, self.bias, pads, self.groups)
        return self._activate(y)

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, self.filters)

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters, **self._common_config(),
                  "groups": self.groups, **self._tail_config(),
                  "kernel_initializer": _serialize(self.kernel_initializer),
                  "bias_initializer": _serialize(self.bias_initializer),
                  "kernel_regularizer": _serialize(self.kernel_regularizer),
                  "bias_regularizer": _serialize(self.bias_regularizer),
                  "activity_regularizer": _serialize(self.activity_regularizer),
                  "kernel_constraint": _serialize(self.kernel_constraint),
                  "bias_constraint": _serialize(self.bias_constraint)}
        return config


class Conv1D(BaseConv):
    """1D convolution over `(batch, steps, channels)`; `padding` may also be `"causal"`."""

    _allow_causal = True

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv2D(BaseConv):
    """2D convolution over `(batch, height, width, channels)`; kernel `(kh, kw, in, filters)`."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


class Conv3D(BaseConv):
    """3D convolution over `(batch, depth, height, width, channels)`."""

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid",
                 data_format=None, dilation_rate=(1, 1, 1), groups=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(3, filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         kernel_regularizer, bias_regularizer, activity_regularizer,
                         kernel_constraint, bias_constraint, **kwargs)


Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
