"""`RNN`: runs a recurrent cell over the time axis; `StackedRNNCells`: cells stacked as one.

The loop follows Keras exactly: masked timesteps carry the previous output and states forward
(or zeros with `zero_output_for_mask`), `go_backwards` processes (and returns) the sequence in
reverse, `stateful` keeps the last states for the next call. Built-in cells run through torch's
fused `_VF` kernels when the configuration allows (no mask, no recurrent dropout in training,
not `unroll`, Keras's default activations); otherwise the input projection is computed for the
whole sequence at once and only the recurrent part runs step by step.

>>> cell = MinimalRNNCell(32)        # any Layer with `state_size` and call(inputs, states)
>>> y = RNN(cell, return_sequences=True)(x)
"""
import torch
from torch._subclasses.fake_tensor import FakeTensor

from lamina import backend, mixed_precision
from lamina.engine import keras_tensor as kt
from lamina.engine.layer import Layer
from lamina.saving import object_registration, serialization_lib


def deserialize_layer(config, custom_objects=None):
    """A layer from its Keras config dict, resolved among lamina's layers and custom objects."""
    from lamina import layers as layers_module
    from lamina.layers import wrappers
    from lamina.layers.recurrent import PUBLIC_OBJECTS

    objects = {k: v for k, v in vars(layers_module).items() if isinstance(v, type)}
    objects.update(PUBLIC_OBJECTS)
    objects.update(TimeDistributed=wrappers.TimeDistributed, Wrapper=wrappers.Wrapper)
    try:
        from lamina.engine.functional import Functional
        from lamina.engine.model import Model
        from lamina.engine.sequential import Sequential
        objects.update(Functional=Functional, Model=Model, Sequential=Sequential)
    except ImportError:  # pragma: no cover - engine always present
        pass
    return serialization_lib.deserialize_keras_object(
        config, module_objects=objects, custom_objects=custom_objects,
        printable_module_name="layer")


def clone_layer(layer, **overrides):
    """A fresh (unbuilt) copy of `layer` from its config, with `overrides` applied to it.

    Classes used inside `layer` are made resolvable, so unregistered custom cells work.
    """
    config = layer.get_config()
    config.update(overrides)
    scope = {}
    for sub in layer._flatten_layers() if isinstance(layer, Layer) else [layer]:
        scope.setdefault(type(sub).__name__, type(sub))
    for cell in _all_cells(getattr(layer, "cell", None)):
        scope.setdefault(type(cell).__name__, type(cell))
    with object_registration.custom_object_scope(scope):
        return type(layer).from_config(config)


def _all_cells(cell):
    if cell is None:
        return []
    found = [cell]
    for sub in getattr(cell, "cells", None) or []:
        found.extend(_all_cells(sub))
    return found


def _state_sizes(state_size):
    """`state_size` as a list (one entry per state; stacked cells give nested lists)."""
    if isinstance(state_size, (list, tuple)):
        return list(state_size)
    return [state_size]


def _zeros_like_sizes(sizes, batch, like):
    out = []
    for size in sizes:
        if isinstance(size, (list, tuple)):
            out.append(_zeros_like_sizes(size, batch, like))
        else:
            shape = (size,) if isinstance(size, int) else tuple(size)
            out.append(like.new_zeros((batch,) + shape))
    return out


def _call_cell(cell, inputs, states, training):
    """One cell step, `(output, new_states)`; the cell is built on first use."""
    if isinstance(cell, Layer):
        if not cell.built:
            cell._maybe_build((inputs, states), {})
        if cell._call_takes_training:
            return cell.call(inputs, states, training=training)
        return cell.call(inputs, states)
    return cell.call(inputs, states)


def _is_fake(tensor):
    return isinstance(tensor, FakeTensor)


def _step_mask(mask_t, like):
    return mask_t.view(mask_t.shape + (1,) * (like.dim() - mask_t.dim()))


class StackedRNNCells(Layer):
    """Wraps a list of cells so that they behave as one: each cell's output feeds the next."""

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        for cell in cells:
            if not hasattr(cell, "call"):
                raise ValueError("All cells must have a `call` method. Received cell without a "
                                 f"`call` method: {cell}")
            if not hasattr(cell, "state_size"):
                raise ValueError("All cells must have a `state_size` attribute. Received cell "
                                 f"without a `state_size`: {cell}")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        return _state_sizes(last.state_size)[0]

    def get_initial_state(self, batch_size=None):
        states = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            if fn is not None:
                states.append(fn(batch_size=batch_size))
            else:
                like = torch.zeros((), dtype=backend.torch_dtype(self.dtype),
                                   device=backend.device())
                zeros = _zeros_like_sizes(_state_sizes(cell.state_size), batch_size, like)
                states.append(zeros if isinstance(cell.state_size, (list, tuple)) else zeros[0])
        return states

    def build(self, input_shape):
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(tuple(input_shape))
                cell.built = True
            output_dim = getattr(cell, "output_size", None)
            if output_dim is None:
                output_dim = _state_sizes(cell.state_size)[0]
            input_shape = (input_shape[0], output_dim)

    def call(self, inputs, states, training=None):
        new_states = []
        for cell, cell_states in zip(self.cells, states):
            is_list = isinstance(cell_states, (list, tuple))
            cell_states = list(cell_states) if is_list else [cell_states]
            inputs, cell_states = _call_cell(cell, inputs, cell_states, training)
            if not isinstance(cell_states, (list, tuple)):
                cell_states = [cell_states]
            if len(cell_states) == 1 and not is_list:
                cell_states = cell_states[0]
            new_states.append(cell_states)
        return inputs, new_states

    def get_config(self):
        return {**super().get_config(),
                "cells": [serialization_lib.serialize_keras_object(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [deserialize_layer(c, custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


class RNN(Layer):
    """Base class for recurrent layers: runs `cell` over the timesteps of a 3D input.

    `cell` is a cell (a Layer with `state_size` and `call(inputs, states)`) or a list of cells
    (stacked). Call with `initial_state=` to start from given states and `mask=` (usually
    propagated from `Embedding(mask_zero=True)` or `Masking`) to skip timesteps.
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        if not hasattr(cell, "call"):
            raise ValueError(f"Argument `cell` should have a `call` method. Received: cell={cell}")
        if not hasattr(cell, "state_size"):
            raise ValueError("The RNN cell should have a `state_size` attribute (single integer "
                             "or list of integers, one integer per RNN state). "
                             f"Received: cell={cell}")
        time_major = kwargs.pop("time_major", False)
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.stateful = stateful
        self.unroll = unroll
        self.zero_output_for_mask = zero_output_for_mask
        self.time_major = bool(time_major)
        self.supports_masking = True
        self.states = None
        self._use_fused = True
        state_size = cell.state_size
        if not isinstance(state_size, (list, tuple, int)):
            raise ValueError("state_size must be an integer, or a list/tuple of integers (one "
                             f"for each state tensor). Received: state_size={state_size!r}")
        self.state_size = _state_sizes(state_size)
        self.single_state = isinstance(state_size, int)

    # ------------------------------------------------------------------ shapes and building
    def build(self, sequences_shape, initial_state_shape=None):
        sequences_shape = tuple(sequences_shape)
        if self.time_major:
            sequences_shape = (sequences_shape[1], sequences_shape[0]) + sequences_shape[2:]
        step_shape = (sequences_shape[0],) + sequences_shape[2:]
        if isinstance(self.cell, Layer):
            build_sublayer(self.cell, step_shape)
        if self.stateful:
            if sequences_shape[0] is None:
                raise ValueError("When using `stateful=True` in a RNN, the batch size must be "
                                 "static. Found dynamic batch size: "
                                 f"sequence.shape={sequences_shape}")
            if self.states is None:
                self.states = self.get_initial_state(sequences_shape[0])
        self.built = True

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, length = sequences_shape[0], sequences_shape[1]
        if self.time_major:
            batch, length = length, batch
        states_shape = []
        for size in self.state_size:
            if isinstance(size, (list, tuple)):
                states_shape.append([(batch, s) for s in size])
            else:
                states_shape.append((batch, size))
        output_size = getattr(self.cell, "output_size", None)
        if output_size is None:
            output_size = kt.flatten(self.state_size)[0]
        if self.return_sequences:
            output_shape = (length, batch, output_size) if self.time_major else (
                batch, length, output_size)
        else:
            output_shape = (batch, output_size)
        if self.return_state:
            return (output_shape, *states_shape)
        return output_shape

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None for _ in self.state_size]
        return output_mask

    # ------------------------------------------------------------------ states
    def get_initial_state(self, batch_size):
        fn = getattr(self.cell, "get_initial_state", None)
        if fn is not None:
            states = fn(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        like = torch.zeros((), dtype=backend.torch_dtype(self.dtype), device=backend.device())
        return _zeros_like_sizes(self.state_size, batch_size, like)

    def reset_states(self, states=None):
        """Zero the kept states of a stateful layer, or set them to `states` (arrays).

        A layer that is not stateful keeps no states: nothing happens (as in Keras 3, so that
        `model.reset_states()` can visit every layer)."""
        if self.states is None:
            return
        if states is None:
            self.states = kt.map_structure(torch.zeros_like, self.states)
            return
        flat = kt.flatten(self.states)
        values = kt.flatten(states if isinstance(states, (list, tuple)) else [states])
        if len(values) != len(flat):
            raise ValueError(f"Layer '{self.name}' expects {len(flat)} states, but it received "
                             f"{len(values)} state values.")
        new = []
        for old, value in zip(flat, values):
            value = torch.as_tensor(value, dtype=old.dtype, device=old.device)
            if tuple(value.shape) != tuple(old.shape):
                raise ValueError(f"State of layer '{self.name}' has shape {tuple(old.shape)}; "
                                 f"received a value of shape {tuple(value.shape)}.")
            new.append(value.clone())
        self.states = kt.pack_like(self.states, new)

    def reset_state(self, states=None):
        self.reset_states(states)

    def _initial_states(self, sequences, initial_state):
        batch = sequences.shape[0]
        if initial_state is None:
            if self.stateful:
                if self.states is None:
                    self.states = self.get_initial_state(batch)
                states = self.states
                expected = kt.flatten(states)[0].shape[0]
                if expected != batch:
                    raise ValueError("If an RNN is stateful, the batch size of the input "
                                     "sequences must be the same as the batch size of the "
                                     f"initial state.\n- Expected batch size: {expected}\n"
                                     f"- Received batch size: {batch}")
            else:
                fn = getattr(self.cell, "get_initial_state", None)
                if fn is None or isinstance(self.cell, _builtin_cell_types()):
                    return _zeros_like_sizes(self.state_size, batch, sequences)
                states = self.get_initial_state(batch)
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [
                initial_state]

        def convert(s):
            s = torch.as_tensor(s, device=sequences.device)
            return s if s.dtype == sequences.dtype else s.to(sequences.dtype)
        return kt.map_structure(convert, states)

    # ------------------------------------------------------------------ the loop
    def call(self, sequences, initial_state=None, mask=None, training=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        dtype = mixed_precision.torch_compute_dtype(self._dtype_policy)
        if sequences.dtype != dtype:
            sequences = sequences.to(dtype)
        if self.time_major:
            sequences = sequences.transpose(0, 1)
        states = self._initial_states(sequences, initial_state)
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.bool()
        cells = _all_cells(self.cell)
        _reset_dropout_masks(cells)
        try:
            result = None
            if _is_fake(sequences):  # shape inference: one step gives every shape
                result = self._shape_only(sequences, states, training)
            elif mask is None and not self.unroll and self._use_fused:
                result = self._fused(sequences, states, training)
            if result is None:
                result = self._loop(sequences, states, mask, training)
        finally:
            _reset_dropout_masks(cells)
        last_output, outputs, states = result
        if self.stateful and not _is_fake(sequences):
            self.states = kt.map_structure(lambda s: s.detach(), states)
        if self.return_sequences:
            output = outputs.transpose(0, 1) if self.time_major else outputs
        else:
            output = last_output
        if self.return_state:
            return (output, *states)
        return output

    def _fused(self, sequences, states, training):
        fn = getattr(self.cell, "_fused_sequence", None)
        if fn is None or type(self.cell).call is not _builtin_call(self.cell):
            return None
        if (torch.compiler.is_compiling() and sequences.device.type == "cpu"
                and torch.is_grad_enabled()):
            # A compiled CPU training graph fails on torch's fused LSTM kernel
            # (`mkldnn_rnn_layer`) when the sequences need no gradient: the step loop is
            # compiled instead, as torch unrolls its own kernel otherwise.
            return None
        inputs = sequences.flip(1) if self.go_backwards else sequences
        result = fn(inputs, states, training)
        if result is None:
            return None
        outputs, new_states = result
        return outputs[:, -1], outputs, new_states

    def _shape_only(self, sequences, states, training):
        output, new_states = _call_cell(self.cell, sequences[:, 0], states, training)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        outputs = None
        if self.return_sequences:
            outputs = output.unsqueeze(1).expand(
                (output.shape[0], sequences.shape[1]) + tuple(output.shape[1:]))
        return output, outputs, list(new_states)

    def _loop(self, sequences, states, mask, training):
        cell = self.cell
        project = getattr(cell, "_project", None)
        if project is not None and type(cell).call is _builtin_call(cell):
            steps = project(sequences, training).unbind(1)
            step = cell._recur
        else:
            steps = sequences.unbind(1)

            def step(x, s, training):
                return _call_cell(cell, x, s, training)
        masks = mask.unbind(1) if mask is not None else None
        order = range(len(steps) - 1, -1, -1) if self.go_backwards else range(len(steps))
        outputs, prev_output = [], None
        for t in order:
            output, new_states = step(steps[t], states, training)
            if not isinstance(new_states, (list, tuple)):
                new_states = [new_states]
            if masks is not None:
                keep = masks[t]
                if prev_output is None:
                    prev_output = torch.zeros_like(output)
                fallback = torch.zeros_like(output) if self.zero_output_for_mask else prev_output
                output = torch.where(_step_mask(keep, output), output, fallback)
                flat_new = [torch.where(_step_mask(keep, n), n, o)
                            for n, o in zip(kt.flatten(new_states), kt.flatten(states))]
                new_states = kt.pack_like(new_states, flat_new)
            states = list(new_states)
            prev_output = output
            if self.return_sequences:
                outputs.append(output)
        stacked = torch.stack(outputs, 1) if self.return_sequences else None
        return prev_output, stacked, states

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = {**super().get_config(), "return_sequences": self.return_sequences,
                  "return_state": self.return_state, "go_backwards": self.go_backwards,
                  "stateful": self.stateful, "unroll": self.unroll,
                  "zero_output_for_mask": self.zero_output_for_mask}
        if type(self) is RNN:
            config["cell"] = serialization_lib.serialize_keras_object(self.cell)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = deserialize_layer(config.pop("cell"), custom_objects)
        return cls(cell, **config)


def _builtin_cell_types():
    from lamina.layers.recurrent.cells import _Cell
    return (_Cell,)


def _builtin_call(cell):
    """The `call` of the built-in cell class `cell` derives from (None for custom cells)."""
    from lamina.layers.recurrent.cells import _Cell
    return _Cell.call if isinstance(cell, _Cell) else None


def _reset_dropout_masks(cells):
    for cell in cells:
        if hasattr(cell, "reset_dropout_mask"):
            cell.reset_dropout_mask()
        if hasattr(cell, "reset_recurrent_dropout_mask"):
            cell.reset_recurrent_dropout_mask()


class _CellRNN(RNN):
    """Shared by `SimpleRNN`, `LSTM`, `GRU`: the cell's arguments are the layer's own."""

    _cell_attrs = ()

    def __init__(self, cell, use_cudnn="auto", **kwargs):
        super().__init__(cell, **kwargs)
        from lamina.engine.layer import InputSpec
        self.input_spec = InputSpec(ndim=3)
        if use_cudnn not in ("auto", True, False):
            raise ValueError("Invalid valid received for argument `use_cudnn`. Expected one of "
                             f"{{'auto', True, False}}. Received: use_cudnn={use_cudnn}")
        self.use_cudnn = use_cudnn
        self._use_fused = use_cudnn is not False

    def __getattr__(self, name):
        if name in type(self)._cell_attrs:
            return getattr(self._modules["cell"], name)
        return super().__getattr__(name)

    def get_config(self):
        config = super().get_config()
        cell_config = self.cell.get_config()
        for key in ("name", "trainable", "dtype", "batch_input_shape"):
            cell_config.pop(key, None)
        for key, value in cell_config.items():
            config[key] = value
            if key == "bias_regularizer":
                config["activity_regularizer"] = serialization_lib.serialize_keras_object(
                    self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config.pop("cell", None)
        return cls(**config)

    @staticmethod
    def _cell_kwargs(kwargs, name, implementation=True):
        """Arguments the cell takes from the layer's keyword arguments (Keras passes these)."""
        cell_kwargs = {"dtype": kwargs.get("dtype"), "trainable": kwargs.get("trainable", True),
                       "name": name}
        value = kwargs.pop("implementation", 2)
        if implementation:
            cell_kwargs["implementation"] = value
        return cell_kwargs


def build_sublayer(layer, input_shape):
    """Build a wrapped layer from `input_shape` (and apply its pending `weights=`)."""
    if layer.built:
        return
    layer.build(input_shape)
    layer.built = True
    if getattr(layer, "_initial_weights", None) is not None:
        weights, layer._initial_weights = layer._initial_weights, None
        layer.set_weights(weights)
