"""Recurrent cells: `SimpleRNNCell`, `LSTMCell`, `GRUCell`, and the `DropoutRNNCell` mixin.

A cell processes one timestep: `call(inputs, states, training=None)` returns
`(output, new_states)`; `state_size` says how big each state is. `keras.layers.RNN` runs a cell
over a sequence.

Weights are created in Keras layout and stored transposed (`layout=(1, 0)`), i.e. as torch's RNN
kernels want them: `kernel (input_dim, n*units)` is stored `(n*units, input_dim)`. Built-in
cells also expose two internal pieces the `RNN` layer uses to go faster: `_project` (the input
projection, applied to a whole sequence at once) and `_recur` (the recurrent part of one step),
and `_fused_sequence` (a whole sequence through torch's fused `_VF` kernel when the
configuration allows it).
"""
import contextlib

import torch
import torch.nn.functional as F

from lamina import activations, backend, constraints, initializers, regularizers
from lamina.engine.layer import Layer
from lamina.saving import serialization_lib

_TANH = (activations.tanh, torch.tanh)
_SIGMOID = (activations.sigmoid, torch.sigmoid)
_RELU = (activations.relu, torch.relu, F.relu)


def _serialize(obj):
    return serialization_lib.serialize_keras_object(obj)


class DropoutRNNCell:
    """Mixin holding the dropout masks of a cell: one mask per sequence, reused at every step.

    The cell defines `dropout`, `recurrent_dropout` and `seed`; a `dropout_mask_count` attribute
    asks for that many independent masks (one per gate). The `RNN` layer resets the masks after
    each call.
    """

    def _dropout_generator(self, device):
        seed = getattr(self, "seed", None)
        if seed is None:
            return None
        generators = self.__dict__.setdefault("_dropout_generators", {})
        if device not in generators:
            generators[device] = torch.Generator(device=device).manual_seed(int(seed))
        return generators[device]

    def _create_dropout_mask(self, step_input, rate):
        generator = self._dropout_generator(step_input.device)

        def one():
            keep = torch.empty_like(step_input).bernoulli_(1.0 - rate, generator=generator)
            return keep / (1.0 - rate)

        count = getattr(self, "dropout_mask_count", None)
        return one() if count is None else [one() for _ in range(count)]

    def get_dropout_mask(self, step_input):
        if getattr(self, "_dropout_mask", None) is None and 0 < self.dropout < 1:
            self._dropout_mask = self._create_dropout_mask(step_input, self.dropout)
        return getattr(self, "_dropout_mask", None)

    def get_recurrent_dropout_mask(self, step_input):
        if (getattr(self, "_recurrent_dropout_mask", None) is None
                and 0 < self.recurrent_dropout < 1):
            self._recurrent_dropout_mask = self._create_dropout_mask(step_input,
                                                                     self.recurrent_dropout)
        return getattr(self, "_recurrent_dropout_mask", None)

    def reset_dropout_mask(self):
        self._dropout_mask = None

    def reset_recurrent_dropout_mask(self):
        self._recurrent_dropout_mask = None


def _check_units(units):
    if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
        raise ValueError("Received an invalid value for argument `units`, expected a positive "
                         f"integer, got {units}.")


def _first_state(states):
    return states[0] if isinstance(states, (list, tuple)) else states


def _broadcast_mask(mask, x):
    """A per-sample `(batch, features)` mask, shaped to multiply `x` (per step or sequence)."""
    return mask.unsqueeze(1) if x.dim() == 3 and mask.dim() == 2 else mask


class _Cell(DropoutRNNCell, Layer):
    """What the built-in cells share: arguments, weights in torch layout, dropout, config."""

    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        _check_units(units)
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self.output_size = units
        self.bias = None

    def _add_kernels(self, input_dim):
        n = self._gates * self.units
        self.kernel = self.add_weight(shape=(input_dim, n), name="kernel",
                                      initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, layout=(1, 0))
        self.recurrent_kernel = self.add_weight(shape=(self.units, n), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint,
                                                layout=(1, 0))

    def _add_bias(self, shape, initializer=None):
        self.bias = self.add_weight(shape=shape, name="bias",
                                    initializer=initializer or self.bias_initializer,
                                    regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint)

    def _input_dim(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"The last dimension of the input to cell '{self.name}' "
                             f"({type(self).__name__}) must be defined. Received input shape: "
                             f"{tuple(input_shape)}")
        return input_dim

    # ------------------------------------------------------------------ pieces of a step
    def _input_bias(self):
        return self.bias

    def _recurrent_bias(self):
        return None

    def _project(self, inputs, training=False):
        """`inputs @ kernel + input_bias` for one step `(batch, in)` or a sequence."""
        mask = self.get_dropout_mask(inputs if inputs.dim() == 2 else inputs[:, 0]) \
            if training and 0 < self.dropout < 1 else None
        bias = self._input_bias()
        if mask is None:
            return F.linear(inputs, self.kernel, bias)
        if isinstance(mask, list):  # one mask per gate
            kernels = self.kernel.chunk(len(mask), 0)
            biases = bias.chunk(len(mask), 0) if bias is not None else [None] * len(mask)
            return torch.cat([F.linear(inputs * _broadcast_mask(m, inputs), k, b)
                              for m, k, b in zip(mask, kernels, biases)], -1)
        return F.linear(inputs * _broadcast_mask(mask, inputs), self.kernel, bias)

    def _recurrent_inputs(self, h, training):
        """`h` (dropped out per gate when `recurrent_dropout` applies) for each gate block."""
        mask = self.get_recurrent_dropout_mask(h) \
            if training and 0 < self.recurrent_dropout < 1 else None
        if mask is None:
            return None
        return [h * m for m in mask] if isinstance(mask, list) else [h * mask] * self._gates

    def _recurrent_projection(self, h, training):
        """`h @ recurrent_kernel (+ recurrent bias)`, all gates, `(batch, gates*units)`."""
        dropped = self._recurrent_inputs(h, training)
        bias = self._recurrent_bias()
        if dropped is None:
            return F.linear(h, self.recurrent_kernel, bias)
        kernels = self.recurrent_kernel.chunk(self._gates, 0)
        biases = bias.chunk(self._gates, 0) if bias is not None else [None] * self._gates
        return torch.cat([F.linear(x, k, b) for x, k, b in zip(dropped, kernels, biases)], -1)

    def call(self, inputs, states, training=None):
        return self._recur(self._project(inputs, training), states, training)

    # ------------------------------------------------------------------ states and config
    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [torch.zeros((batch_size, d), dtype=backend.torch_dtype(self.dtype),
                            device=backend.device()) for d in sizes]

    def _fused_allowed(self, training):
        return not (training and 0 < self.recurrent_dropout < 1)

    def _fused_inputs(self, sequences, training):
        if training and 0 < self.dropout < 1:
            mask = self.get_dropout_mask(sequences[:, 0])
            if isinstance(mask, list):
                return None
            sequences = sequences * mask.unsqueeze(1)
        return sequences

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": _serialize(self.kernel_initializer),
                "recurrent_initializer": _serialize(self.recurrent_initializer),
                "bias_initializer": _serialize(self.bias_initializer),
                "kernel_regularizer": _serialize(self.kernel_regularizer),
                "recurrent_regularizer": _serialize(self.recurrent_regularizer),
                "bias_regularizer": _serialize(self.bias_regularizer),
                "kernel_constraint": _serialize(self.kernel_constraint),
                "recurrent_constraint": _serialize(self.recurrent_constraint),
                "bias_constraint": _serialize(self.bias_constraint),
                "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed}


def _run_fused(kernel, sequences, hx, params, has_bias):
    """torch's fused recurrence `kernel` (one layer, batch first) in the dtype of `sequences`,
    the layer's compute dtype: the weights are cast to it, as Keras casts variables, and it runs
    outside autocast (under the CPU's float16 autocast torch's LSTM kernel fails)."""
    dtype = sequences.dtype
    params = [p if p.dtype == dtype else p.to(dtype) for p in params]
    device_type = sequences.device.type
    with (torch.autocast(device_type, enabled=False) if torch.is_autocast_enabled(device_type)
          else contextlib.nullcontext()):
        return kernel(sequences, hx, params, has_bias, 1, 0.0, torch.is_grad_enabled(), False,
                      True)


def _fused_weights(weight_ih, weight_hh, bias_ih, bias_hh):
    if bias_ih is None and bias_hh is None:
        return [weight_ih, weight_hh], False
    if bias_hh is None:
        bias_hh = torch.zeros_like(bias_ih)
    if bias_ih is None:
        bias_ih = torch.zeros_like(bias_hh)
    return [weight_ih, weight_hh, bias_ih, bias_hh], True


class SimpleRNNCell(_Cell):
    """Fully-connected RNN step: `h = activation(x @ kernel + h_prev @ recurrent_kernel + bias)`.

    Weights (Keras layout): `kernel (input_dim, units)`, `recurrent_kernel (units, units)`,
    `bias (units,)`.
    """

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.state_size = units

    def build(self, input_shape):
        self._add_kernels(self._input_dim(input_shape))
        if self.use_bias:
            self._add_bias((self.units,))

    def _recur(self, x_proj, states, training=False):
        prev = _first_state(states)
        output = self.activation(x_proj + self._recurrent_projection(prev, training))
        return output, ([output] if isinstance(states, (list, tuple)) else output)

    def _fused_sequence(self, sequences, states, training):
        if self.activation in _TANH:
            kernel = torch._VF.rnn_tanh
        elif self.activation in _RELU:
            kernel = torch._VF.rnn_relu
        else:
            return None
        if not self._fused_allowed(training):
            return None
        sequences = self._fused_inputs(sequences, training)
        if sequences is None:
            return None
        params, has_bias = _fused_weights(self.kernel, self.recurrent_kernel, self.bias, None)
        outputs, h = _run_fused(kernel, sequences, _first_state(states).unsqueeze(0), params,
                                has_bias)
        return outputs, [h[0]]


class LSTMCell(_Cell):
    """Long Short-Term Memory step (Hochreiter 1997), gates `i, f, c, o` as in Keras.

    Weights (Keras layout): `kernel (input_dim, 4*units)`, `recurrent_kernel (units, 4*units)`,
    `bias (4*units,)`. `unit_forget_bias=True` starts the forget-gate bias at 1.
    """

    _gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias
        self.implementation = 1 if self.recurrent_dropout else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 4
        self.state_size = [units, units]

    def build(self, input_shape):
        self._add_kernels(self._input_dim(input_shape))
        if self.use_bias:
            initializer = self.bias_initializer
            if self.unit_forget_bias:
                base, units = self.bias_initializer, self.units

                def initializer(shape, dtype=None):
                    ones = initializers.get("ones")((units,), dtype=dtype)
                    return torch.cat([torch.as_tensor(base((units,), dtype=dtype)), ones,
                                      torch.as_tensor(base((2 * units,), dtype=dtype))])
            self._add_bias((4 * self.units,), initializer)

    def _recur(self, x_proj, states, training=False):
        h_prev, c_prev = states[0], states[1]
        z = x_proj + self._recurrent_projection(h_prev, training)
        i, f, g, o = z.chunk(4, -1)
        c = (self.recurrent_activation(f) * c_prev
             + self.recurrent_activation(i) * self.activation(g))
        h = self.recurrent_activation(o) * self.activation(c)
        return h, [h, c]

    def _fused_sequence(self, sequences, states, training):
        if (self.activation not in _TANH or self.recurrent_activation not in _SIGMOID
                or not self._fused_allowed(training)):
            return None
        sequences = self._fused_inputs(sequences, training)
        if sequences is None:
            return None
        # Keras gates i, f, c, o are torch's i, f, g, o: the stored kernels are used as they are.
        params, has_bias = _fused_weights(self.kernel, self.recurrent_kernel, self.bias, None)
        h0, c0 = states[0].unsqueeze(0), states[1].unsqueeze(0)
        outputs, h, c = _run_fused(torch._VF.lstm, sequences, (h0, c0), params, has_bias)
        return outputs, [h[0], c[0]]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["unit_forget_bias"] = self.unit_forget_bias
        return _reorder(config, ["name", "trainable", "dtype", "units", "activation",
                                 "recurrent_activation", "use_bias", "unit_forget_bias"])


class GRUCell(_Cell):
    """Gated Recurrent Unit step, gates `z, r, h` as in Keras.

    Weights (Keras layout): `kernel (input_dim, 3*units)`, `recurrent_kernel (units, 3*units)`,
    `bias (3*units,)`, or `(2, 3*units)` with `reset_after=True` (input bias, then recurrent
    bias; the default, compatible with cuDNN and torch's GRU).
    """

    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 seed=None, **kwargs):
        implementation = kwargs.pop("implementation", 2)
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer,
                         recurrent_regularizer=recurrent_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         recurrent_constraint=recurrent_constraint,
                         bias_constraint=bias_constraint, dropout=dropout,
                         recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after
        self.implementation = 1 if self.recurrent_dropout else implementation
        if self.implementation == 1:
            self.dropout_mask_count = 3
        self.state_size = units

    def build(self, input_shape):
        self._add_kernels(self._input_dim(input_shape))
        if self.use_bias:
            self._add_bias((2, 3 * self.units) if self.reset_after else (3 * self.units,))

    def _input_bias(self):
        if self.bias is None:
            return None
        return self.bias[0] if self.reset_after else self.bias

    def _recurrent_bias(self):
        return self.bias[1] if self.bias is not None and self.reset_after else None

    def _recur(self, x_proj, states, training=False):
        h_prev = _first_state(states)
        u = self.units
        x_z, x_r, x_h = x_proj.split(u, -1)
        if self.reset_after:
            inner = self._recurrent_projection(h_prev, training)
            r_z, r_r, r_h = inner.split(u, -1)
            z = self.recurrent_activation(x_z + r_z)
            r = self.recurrent_activation(x_r + r_r)
            hh = self.activation(x_h + r * r_h)
        else:
            dropped = self._recurrent_inputs(h_prev, training) or [h_prev] * 3
            k_z, k_r, k_h = self.recurrent_kernel.split(u, 0)
            z = self.recurrent_activation(x_z + F.linear(dropped[0], k_z))
            r = self.recurrent_activation(x_r + F.linear(dropped[1], k_r))
            hh = self.activation(x_h + F.linear(r * dropped[2], k_h))
        h = z * h_prev + (1 - z) * hh
        return h, ([h] if isinstance(states, (list, tuple)) else h)

    def _fused_sequence(self, sequences, states, training):
        if (not self.reset_after or self.activation not in _TANH
                or self.recurrent_activation not in _SIGMOID or not self._fused_allowed(training)):
            return None
        sequences = self._fused_inputs(sequences, training)
        if sequences is None:
            return None
        # torch orders the gates r, z, n; Keras z, r, h: swap the first two row blocks.
        bias = None if self.bias is None else _swap_zr(self.bias, 1)
        params, has_bias = _fused_weights(
            _swap_zr(self.kernel, 0), _swap_zr(self.recurrent_kernel, 0),
            None if bias is None else bias[0], None if bias is None else bias[1])
        outputs, h = _run_fused(torch._VF.gru, sequences, _first_state(states).unsqueeze(0),
                                params, has_bias)
        return outputs, [h[0]]

    def get_config(self):
        config = super().get_config()
        config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        config["reset_after"] = self.reset_after
        config = _reorder(config, ["name", "trainable", "dtype", "units", "activation",
                                   "recurrent_activation"])
        config["seed"] = config.pop("seed")
        return config


def _swap_zr(weight, dim):
    """Keras GRU gate blocks `z, r, h` along `dim` reordered to torch's `r, z, n`."""
    z, r, h = weight.chunk(3, dim)
    return torch.cat([r, z, h], dim)


def _reorder(config, first):
    """`config` with the keys `first` moved to the front (Keras's key order)."""
    out = {k: config[k] for k in first if k in config}
    out.update((k, v) for k, v in config.items() if k not in out)
    return out
