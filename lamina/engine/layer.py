"""`Layer`: the Keras layer contract on top of `torch.nn.Module`.

A layer builds its weights on the first call, from the input shape; called on symbolic
`KerasTensor`s it records a `Node` and infers output shapes without real arithmetic; called on
tensors it runs `call`. Weights are `nn.Parameter`s (trainable) or buffers (non-trainable
state), stored in whatever layout the torch kernel wants; `get_weights`/`set_weights` speak
Keras's layout through each weight's `layout` permutation.

>>> class Linear(Layer):
...     def __init__(self, units, **kwargs):
...         super().__init__(**kwargs)
...         self.units = units
...     def build(self, input_shape):
...         self.w = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
...     def call(self, inputs):
...         return inputs @ self.w
"""
import functools
import inspect

import numpy as np
import torch
from torch import nn
from torch._subclasses.fake_tensor import unset_fake_temporarily

from lamina import backend, mixed_precision
from lamina.engine import keras_tensor as kt
from lamina.engine.keras_tensor import KerasTensor
from lamina.engine.node import Node

_ALLOWED_KWARGS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "weights",
                   "input_length"}


_MISSING = object()


class _CallState:
    """State of the outermost layer call: the `training` flag and the losses added inside. One
    instance, `_CallContext`: dynamo traces writes to an object's attributes, but torch 2.11's
    cannot trace writes to a class's (2.13's can), which broke compiled steps into layer calls."""

    def __init__(self):
        self.depth = 0
        self.depth_id = 0  # counts outermost calls: losses are kept per call
        self.training = None
        self.losses = []
        self.keep_losses = True  # False inside a gradient transform, where tensors may not escape
        self.in_mixed = False  # inside a mixed-policy layer's call: floatx layers leave its autocast


_CallContext = _CallState()


class _Weight:
    """Bookkeeping for one weight: Keras name, trainability, regularizer, constraint, layout."""
    __slots__ = ("key", "name", "trainable", "regularizer", "constraint", "layout")

    def __init__(self, key, name, trainable, regularizer, constraint, layout):
        self.key, self.name, self.trainable = key, name, trainable
        self.regularizer, self.constraint, self.layout = regularizer, constraint, layout


class InputSpec:
    """What a layer accepts: `ndim`, `min_ndim`, `max_ndim`, fixed `axes` sizes."""

    def __init__(self, ndim=None, min_ndim=None, max_ndim=None, axes=None, shape=None,
                 dtype=None, allow_last_axis_squeeze=False, name=None):
        self.ndim, self.min_ndim, self.max_ndim = ndim, min_ndim, max_ndim
        self.axes = dict(axes or {})
        self.shape, self.dtype, self.name = shape, dtype, name
        if shape is not None:
            self.ndim = len(shape)


def _signature_params(fn):
    return inspect.signature(fn).parameters


class Layer(nn.Module):
    """Base class of every lamina layer and model."""

    def __init__(self, *, activity_regularizer=None, trainable=True, dtype=None, autocast=True,
                 name=None, **kwargs):
        super().__init__()
        unknown = set(kwargs) - _ALLOWED_KWARGS
        if unknown:
            raise ValueError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                             f"{ {k: kwargs[k] for k in sorted(unknown)} }")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        self.name = name or backend.unique_name(backend.to_snake_case(type(self).__name__))
        if isinstance(dtype, dict):  # a Keras 3 DTypePolicy config
            dtype = dtype.get("config", {}).get("name", dtype.get("name"))
        if isinstance(dtype, mixed_precision.DTypePolicy):
            dtype = dtype.name
        self._dtype_policy = (mixed_precision.DTypePolicy(dtype) if dtype
                              else mixed_precision.policy_for_new_layer())
        self.dtype = backend.standardize_dtype(self.dtype_policy.variable_dtype)
        self.autocast = autocast
        self.built = False
        self.supports_masking = False
        self.input_spec = None
        self._trainable = trainable
        self._weight_records = []
        self._inbound_nodes = []
        self._outbound_nodes = []
        self._own_losses = []
        self._losses_call = -1
        self.activity_regularizer = _get_regularizer(activity_regularizer)
        self._initial_weights = kwargs.get("weights")
        shape = kwargs.get("input_shape")
        if kwargs.get("input_dim") is not None:
            shape = (kwargs["input_dim"],)
        if kwargs.get("batch_input_shape") is not None:
            self._batch_input_shape = tuple(kwargs["batch_input_shape"])
        elif shape is not None:
            self._batch_input_shape = (kwargs.get("batch_size"),) + tuple(shape)
        else:
            self._batch_input_shape = None
        self.training = False  # Keras calls run in inference mode unless told otherwise.

    # ---------------------------------------------------------------- class-level facts
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        params = _signature_params(cls.call)
        cls._call_takes_training = "training" in params
        cls._call_takes_mask = "mask" in params
        cls._call_arg_names = [p for p in params if p != "self"]
        if "build" in cls.__dict__:
            cls._build_arg_names = [p for p in _signature_params(cls.build) if p != "self"]
            cls.build = _marks_built(cls.build)

    _call_takes_training = False
    _call_takes_mask = False
    _casts_inputs = True  # floating inputs to the compute dtype (a functional model: per input)
    _build_arg_names = ["input_shape"]

    # ---------------------------------------------------------------- dtypes
    @property
    def dtype_policy(self):
        return self._dtype_policy or mixed_precision.DTypePolicy(backend.floatx())

    @property
    def compute_dtype(self):
        return self.dtype_policy.compute_dtype

    @property
    def input_dtype(self):
        """The dtype floating inputs are cast to: the compute dtype."""
        return self.compute_dtype

    @property
    def variable_dtype(self):
        return self.dtype

    # ---------------------------------------------------------------- weights
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True,
                   autocast=True, regularizer=None, constraint=None, aggregation="none",
                   name=None, layout=None, **kwargs):
        """Create a weight of Keras-layout `shape`; returns the torch tensor holding it.

        `layout` is the permutation from Keras layout to the stored (torch) layout, e.g.
        `(3, 2, 0, 1)` stores a Conv2D kernel `(kh, kw, in, out)` as `(out, in, kh, kw)`.
        """
        from lamina import constraints, initializers, regularizers

        if isinstance(shape, str):  # Keras 2 order: add_weight(name, shape, ...)
            name, shape = shape, initializer if not isinstance(initializer, str) else kwargs.pop("shape")
            initializer = kwargs.pop("initializer", None)
        if kwargs:
            raise TypeError(f"add_weight() got unexpected arguments: {sorted(kwargs)}")
        shape = tuple(int(d) for d in (shape or ()))
        dtype = backend.standardize_dtype(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if backend.is_float_dtype(dtype) else "zeros"
        with unset_fake_temporarily():  # weights are real even when built during inference
            value = initializers.get(initializer)(shape, dtype=dtype)
            value = torch.as_tensor(value, dtype=backend.torch_dtype(dtype)).to(backend.device())
            if layout is not None:
                value = value.permute(*layout)
            value = value.contiguous()
        name = name or f"variable_{len(self._weight_records)}"
        key = name if _free_attr(self, name) else f"{name}_{len(self._weight_records)}"
        if trainable:
            tensor = nn.Parameter(value, requires_grad=self._trainable
                                  and backend.is_float_dtype(dtype))
            self.register_parameter(key, tensor)
        else:
            tensor = value
            self.register_buffer(key, tensor)
        self._weight_records.append(_Weight(key, name, trainable, regularizers.get(regularizer),
                                            constraints.get(constraint), layout))
        return tensor

    def __setattr__(self, attr, value):
        if isinstance(value, torch.Tensor) and "_weight_records" in self.__dict__:
            for record in self._weight_records:
                if record.key != attr and getattr(self, record.key, None) is value:
                    # A weight assigned to an attribute is re-keyed under that attribute.
                    store = self._parameters if record.trainable else self._buffers
                    del store[record.key]
                    record.key = attr
                    if attr in self.__dict__:
                        del self.__dict__[attr]
                    store[attr] = value
                    return
        if isinstance(value, list) and value and all(isinstance(v, nn.Module) for v in value):
            value = nn.ModuleList(value)
        elif (isinstance(value, dict) and value and all(isinstance(k, str) for k in value)
              and all(isinstance(v, nn.Module) for v in value.values())):
            value = nn.ModuleDict(value)
        super().__setattr__(attr, value)

    def __getattr__(self, attr):
        # Parameters, buffers and sub-modules live in nn.Module's dicts: look there first.
        store = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            found = store[table].get(attr, _MISSING) if table in store else _MISSING
            if found is not _MISSING:
                return found
        try:
            return super().__getattr__(attr)
        except AttributeError:
            # A property that raised AttributeError lands here; surface its own message.
            prop = getattr(type(self), attr, None)
            if isinstance(prop, property):
                return prop.fget(self)
            raise

    def _sublayers(self):
        """Direct sub-layers, in attribute order (lists and dicts of layers flattened)."""
        return list(_child_layers(self))

    def _flatten_layers(self, include_self=True):
        """This layer and all nested layers, depth first, each once."""
        seen, out, pending = set(), [], [self]
        while pending:
            layer = pending.pop()
            if id(layer) not in seen:
                seen.add(id(layer))
                out.append(layer)
                pending.extend(reversed(layer._sublayers()))
        return out if include_self else out[1:]

    def _weight_slots(self):
        """(layer, record) for every weight, in `weights` order."""
        slots = [(self, r) for r in self._weight_records if r.trainable]
        slots += [(self, r) for r in self._weight_records if not r.trainable]
        seen = {id(getattr(self, r.key)) for r in self._weight_records}
        for sub in self._sublayers():
            for layer, record in sub._weight_slots():
                tensor_id = id(getattr(layer, record.key))
                if tensor_id not in seen:
                    seen.add(tensor_id)
                    slots.append((layer, record))
        return slots

    @property
    def weights(self):
        return [getattr(layer, r.key) for layer, r in self._weight_slots()]

    @property
    def variables(self):
        return self.weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [getattr(layer, r.key) for layer, r in self._weight_slots()
                if r.trainable and layer.trainable]

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [getattr(layer, r.key) for layer, r in self._weight_slots()
                if not (r.trainable and layer.trainable)]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        value = bool(value)
        for layer in self._flatten_layers():
            layer._trainable = value
            for r in layer._weight_records:
                if r.trainable:
                    tensor = getattr(layer, r.key)
                    tensor.requires_grad_(value and tensor.is_floating_point())

    def get_weights(self):
        """The weights as numpy arrays, in Keras layout and order."""
        return [_to_keras_layout(getattr(layer, r.key), r.layout)
                for layer, r in self._weight_slots()]

    def set_weights(self, weights):
        slots = self._weight_slots()
        weights = list(weights)
        if len(weights) != len(slots):
            raise ValueError(
                f"You called `set_weights(weights)` on layer '{self.name}' with a weight list "
                f"of length {len(weights)}, but the layer was expecting {len(slots)} weights.")
        for (layer, record), value in zip(slots, weights):
            layer._assign_weight(record, value)

    def _assign_weight(self, record, value):
        tensor = getattr(self, record.key)
        value = np.asarray(value)
        keras_shape = _keras_shape(tensor, record.layout)
        if tuple(value.shape) != keras_shape:
            raise ValueError(
                f"Layer '{self.name}' weight '{record.name}' has shape {keras_shape}; "
                f"received a value of shape {tuple(value.shape)}.")
        new = torch.as_tensor(value, dtype=tensor.dtype)
        if record.layout is not None:
            new = new.permute(*record.layout)
        with torch.no_grad():
            tensor.copy_(new)

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer '{self.name}', but the "
                             "layer isn't built. You can build it manually via: "
                             f"`{self.name}.build(batch_input_shape)`.")
        return int(sum(np.prod(tuple(w.shape)) for w in self.weights))

    # ---------------------------------------------------------------- losses
    def add_loss(self, loss):
        """Add a scalar loss tensor; the trainer adds it to the total loss of this step. A
        compiled call counts it without keeping it in `losses` (dynamo would guard on the list's
        length and recompile at every call)."""
        if _CallContext.keep_losses and not torch.compiler.is_compiling():
            if self._losses_call != _CallContext.depth_id:
                self._own_losses = []
                self._losses_call = _CallContext.depth_id
            self._own_losses.append(loss)
        if _CallContext.depth:
            _CallContext.losses.append(loss)

    @property
    def losses(self):
        """Losses from the latest call (`add_loss`) and the weights' regularizers."""
        out = []
        for layer in self._flatten_layers():
            if layer._losses_call == _CallContext.depth_id:
                out.extend(layer._own_losses)
        out.extend(self._regularization_losses())
        return out

    def _regularization_losses(self):
        out = []
        for layer in self._flatten_layers():
            for r in layer._weight_records:
                if r.regularizer is not None:
                    out.append(r.regularizer(_keras_view(getattr(layer, r.key), r.layout)))
        return out

    # ---------------------------------------------------------------- building
    def build(self, input_shape=None):
        self.built = True

    def _maybe_build(self, args, kwargs):
        if self.built:
            return
        shapes = {}
        for i, name in enumerate(self._call_arg_names):
            value = args[i] if i < len(args) else kwargs.get(name)
            if value is not None:
                shapes[f"{name}_shape"] = kt.map_structure(_shape_of, value)
        first = kt.map_structure(_shape_of, args[0]) if args else None
        build_names = self._build_arg_names
        if len(build_names) > 1 and build_names[0] in shapes:
            self.build(**{n: shapes[n] for n in build_names if n in shapes})
        else:
            self.build(first)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop("_device_param", None)
        return super()._apply(fn, *args, **kwargs)

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        # The common, fast cases: one tensor, or one list of tensors (a merge layer's inputs).
        plain = len(args) == 1 and type(args[0]) is torch.Tensor
        listed = not plain and len(args) == 1 and _tensor_list(args[0])
        if not (plain or listed) and (kt.any_symbolic(args) or kt.any_symbolic(kwargs)):
            return self._symbolic_call(args, kwargs)
        outer = _CallContext.depth == 0
        if outer and not torch.compiler.is_compiling():
            args, kwargs = _place_inputs(self, args, kwargs)
        elif args and not plain and not listed and not isinstance(args[0], torch.Tensor):
            args = (_to_tensor(args[0], self.dtype),) + args[1:]
        if not self.built:
            self._check_input_spec(args[0] if args else None)
            self._maybe_build(args, kwargs)
        target = self._input_dtype()
        if target is not None:
            args, kwargs = _cast_floats(args, kwargs, target, plain, listed)
        training = kwargs.get("training")
        if self._call_takes_training:
            if training is None:
                training = (_CallContext.training if _CallContext.training is not None
                            else self.training)
            kwargs["training"] = training
        elif "training" in kwargs:
            del kwargs["training"]
        if self._call_takes_mask and kwargs.get("mask") is None and args:
            mask = _input_mask(args[0])
            if mask is not None:
                kwargs["mask"] = mask
        if outer:
            if not torch.compiler.is_compiling():  # a changing counter would force recompiles
                _CallContext.depth_id += 1
            _CallContext.losses = []
        previous = _CallContext.training
        _CallContext.training = training
        _CallContext.depth += 1
        try:
            outputs = self._call_in_policy(args, kwargs)
        finally:
            _CallContext.depth -= 1
            _CallContext.training = previous
        if self.activity_regularizer is not None:
            for out in kt.flatten(outputs):
                self.add_loss(self.activity_regularizer(out) / out.shape[0])
        makes_mask = type(self).compute_mask is not Layer.compute_mask
        if makes_mask or self.supports_masking:
            mask = kwargs.get("mask", _input_mask(args[0]) if args else None)
            if mask is not None or makes_mask:
                out_mask = self.compute_mask(args[0] if args else None, mask)
                if out_mask is not None:
                    _attach_mask(outputs, out_mask)
        return outputs

    def call(self, inputs, *args, **kwargs):
        return inputs

    def compute_mask(self, inputs, mask=None):
        return mask if self.supports_masking else None

    def _input_dtype(self):
        """The torch dtype floating inputs are cast to before `call`; None: as they come."""
        if self.autocast and self._casts_inputs:
            return mixed_precision.torch_compute_dtype(self._dtype_policy)
        return None

    def _call_in_policy(self, args, kwargs):
        """`call` in the `torch.autocast` region this layer's policy asks for. A layer of floatx's
        policy (no policy of its own) runs in the current region, the fast path, except inside a
        mixed layer, whose region it leaves: it computes in float32, as in Keras. A region the
        user opened around a model is kept."""
        own = self._dtype_policy
        if own is None and not _CallContext.in_mixed:
            return self.call(*args, **kwargs)
        first = args[0] if args else None
        device = (first.device if isinstance(first, torch.Tensor) else _device_of(args)).type
        amp = (mixed_precision.autocast_for(own, device) if own is not None
               else torch.autocast(device, enabled=False))
        outer, _CallContext.in_mixed = _CallContext.in_mixed, own is not None and own.is_mixed
        try:
            if amp is None:
                return self.call(*args, **kwargs)
            with amp:
                return self.call(*args, **kwargs)
        finally:
            _CallContext.in_mixed = outer

    def compute_output_shape(self, input_shape):
        raise NotImplementedError

    def _check_input_spec(self, inputs):
        spec = self.input_spec
        if spec is None or isinstance(spec, (list, tuple)) or inputs is None:
            return
        shape = tuple(inputs.shape)
        ndim = len(shape)
        if spec.ndim is not None and ndim != spec.ndim:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected ndim={spec.ndim}, found ndim={ndim}. "
                             f"Full shape received: {shape}")
        if spec.min_ndim is not None and ndim < spec.min_ndim:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
                             f"Full shape received: {shape}")
        if spec.max_ndim is not None and ndim > spec.max_ndim:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected max_ndim={spec.max_ndim}, found ndim={ndim}. "
                             f"Full shape received: {shape}")
        for axis, size in spec.axes.items():
            if size is not None and shape[axis] not in (size, None):
                raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                                 f"expected axis {axis} of input shape to have value {size}, "
                                 f"but received input with shape {shape}")

    def _symbolic_call(self, args, kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        self._check_input_spec(args[0] if args and isinstance(args[0], KerasTensor) else None)
        self._maybe_build(args, kwargs)
        outputs, out_mask = _infer_outputs(self, args, kwargs)
        for i, tensor in enumerate(kt.flatten(outputs)):
            tensor.name = self.name if i == 0 else f"{self.name}_{i}"
        if out_mask is not None:
            _attach_mask(outputs, out_mask)
        Node(self, args, kwargs, outputs)
        return outputs

    # ---------------------------------------------------------------- nodes
    def _node_attr(self, index, attr, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer '{self.name}' has never been called and thus has no "
                                 f"defined {what}.")
        if not 0 <= index < len(self._inbound_nodes):
            raise ValueError(f"Asked to get {what} at node {index}, but the layer has only "
                             f"{len(self._inbound_nodes)} inbound nodes.")
        node = self._inbound_nodes[index]
        values = node.input_tensors if attr == "input" else node.output_tensors
        if attr == "input" and node.is_input:
            values = node.output_tensors
        return values[0] if len(values) == 1 else list(values)

    def _single_node(self, what):
        if len(self._inbound_nodes) > 1:
            raise AttributeError(
                f"Layer {self.name} has multiple inbound nodes, hence the notion of "
                f'"layer {what}" is ill-defined. Use `get_{what}_at(node_index)` instead.')
        return 0

    def get_input_at(self, node_index):
        return self._node_attr(node_index, "input", "input")

    def get_output_at(self, node_index):
        return self._node_attr(node_index, "output", "output")

    def get_input_shape_at(self, node_index):
        return kt.map_structure(lambda t: t.shape, self.get_input_at(node_index))

    def get_output_shape_at(self, node_index):
        return kt.map_structure(lambda t: t.shape, self.get_output_at(node_index))

    @property
    def input(self):
        return self._node_attr(self._single_node("input"), "input", "input")

    @property
    def output(self):
        return self._node_attr(self._single_node("output"), "output", "output")

    @property
    def input_shape(self):
        return self.get_input_shape_at(self._single_node("input_shape"))

    @property
    def output_shape(self):
        return self.get_output_shape_at(self._single_node("output_shape"))

    # ---------------------------------------------------------------- config
    def get_config(self):
        """Keras's base config: name, trainable, dtype (as a `DTypePolicy` dict)."""
        from lamina.saving.config import dtype_policy_config
        from lamina.saving.serialization_lib import serialize_keras_object

        config = {"name": self.name, "trainable": self.trainable,
                  "dtype": dtype_policy_config(self.dtype_policy.name)}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = serialize_keras_object(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """`cls(**config)`; a functional model's config rebuilds its graph."""
        from lamina.saving.config import layer_from_config
        return layer_from_config(cls, config, custom_objects)

    def get_build_config(self):
        """`{"input_shape": ...}` (or `{"shapes_dict": ...}`) of the first call, as Keras."""
        if not self.built:
            return None
        if not self._inbound_nodes or not self._inbound_nodes[0].input_tensors:
            stack = self.__dict__.get("_modules", {}).get("_stack")
            if stack is not None and len(stack) and hasattr(stack[0], "batch_shape"):
                return {"input_shape": list(stack[0].batch_shape)}  # a built Sequential
            return None
        node = self._inbound_nodes[0]

        def shapes(value):
            return kt.map_structure(
                lambda t: list(t.shape) if isinstance(t, KerasTensor) else None, value)

        build_names = [n for n in self._build_arg_names if n != "kwargs"]
        if len(build_names) > 1:
            found = {}
            for i, name in enumerate(self._call_arg_names):
                value = (node.call_args[i] if i < len(node.call_args)
                         else node.call_kwargs.get(name))
                if f"{name}_shape" in build_names and value is not None:
                    found[f"{name}_shape"] = shapes(value)
            if len(found) > 1:
                return {"shapes_dict": found}
        first = node.call_args[0] if node.call_args else node.input_tensors[0]
        return {"input_shape": shapes(first)}

    def build_from_config(self, config):
        """Create the weights from `get_build_config()`'s output."""
        if not config or self.built:
            return
        from lamina.saving.config import to_shape
        if config.get("input_shape") is not None:
            self.build(to_shape(config["input_shape"]))
        elif "shapes_dict" in config:
            self.build(**{k: to_shape(v) for k, v in config["shapes_dict"].items()})
        else:
            return
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    def extra_repr(self):
        return f"name={self.name!r}"


def _cast_floats(args, kwargs, dtype, plain, listed=False):
    """`args` and `kwargs` with their floating tensors cast to `dtype` (masks kept), as Keras
    casts a layer's inputs to its compute dtype. `plain`: `args` is one tensor; `listed`: one
    list of tensors."""
    if plain:
        x = args[0]
        if x.dtype is not dtype and x.is_floating_point():
            args = (_cast_keeping_mask(x, dtype),)
    elif listed:
        if any(x.dtype is not dtype and x.is_floating_point() for x in args[0]):
            args = _cast_structure(args, dtype)
    else:
        args = _cast_structure(args, dtype)
    for key, value in kwargs.items():
        if value is not None and type(value) is not bool:  # `training`, `mask=None`: as they are
            kwargs[key] = _cast_structure(value, dtype)
    return args, kwargs


def _cast_structure(value, dtype):
    """`value` (a tensor or a structure of them), its floating tensors cast to `dtype`; itself
    when none needs it."""
    if not _needs_cast(value, dtype):
        return value
    return kt.map_structure(lambda v: _cast_keeping_mask(v, dtype) if _needs_cast(v, dtype)
                            else v, value)


def _needs_cast(value, dtype):
    """Whether `value` is, or holds, a floating tensor of another dtype than `dtype`."""
    if isinstance(value, torch.Tensor):
        return value.dtype is not dtype and value.is_floating_point()
    if isinstance(value, (list, tuple, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            if _needs_cast(item, dtype):
                return True
    return False


def _cast_keeping_mask(x, dtype):
    mask = getattr(x, "_keras_mask", None)
    x = x.to(dtype)
    if mask is not None:
        x._keras_mask = mask
    return x


def _input_mask(first):
    """The Keras mask of a layer's first input: a tensor's, or for a list of tensors the list
    of their masks (None where none has one), as Keras passes a merge layer."""
    if type(first) in (list, tuple):
        masks = [getattr(x, "_keras_mask", None) for x in first]
        return masks if any(m is not None for m in masks) else None
    return getattr(first, "_keras_mask", None)


def _tensor_list(value):
    """Whether `value` is a non-empty list or tuple of plain tensors."""
    return (type(value) in (list, tuple) and len(value) > 0
            and all(type(v) is torch.Tensor for v in value))


def _device_of(structure):
    first = structure[0] if type(structure) is tuple and structure else None
    if _tensor_list(first):
        return first[0].device
    for leaf in kt.flatten(structure):
        if isinstance(leaf, torch.Tensor):
            return leaf.device
    return backend.device()


def module_device(module):
    """Where `module`'s weights live; lamina's device while it has none."""
    for p in module.parameters():
        return p.device
    for b in module.buffers():
        return b.device
    return backend.device()


def _weights_device(layer):
    """`module_device(layer)`, asked once per outermost call: a built layer keeps one of its
    parameters at hand (moving the module swaps its data in place; `_apply` forgets it)."""
    param = layer.__dict__.get("_device_param")
    if param is None:
        param = next(layer.parameters(), None)
        if param is None:
            return module_device(layer)
        if layer.built:
            layer.__dict__["_device_param"] = param
    return param.device


def _place_inputs(layer, args, kwargs):
    """An outermost call takes arrays and tensors from anywhere, as Keras does: arrays become
    tensors and tensors move to the device of the layer's weights."""
    device = _weights_device(layer)
    if args and not isinstance(args[0], torch.Tensor):
        args = (_to_tensor(args[0], layer.dtype),) + args[1:]
    if (len(args) == 1 and type(args[0]) is torch.Tensor and args[0].device == device
            and all(v is None or type(v) is bool for v in kwargs.values())):
        return args, kwargs  # the common case: one tensor, already in place

    def place(x):
        if isinstance(x, np.ndarray):
            x = _to_tensor(x, layer.dtype)
        if isinstance(x, torch.Tensor) and x.device != device:
            mask = getattr(x, "_keras_mask", None)
            x = x.to(device)
            if mask is not None:
                x._keras_mask = mask.to(device)
        return x
    return kt.map_structure(place, args), kt.map_structure(place, kwargs)


def _marks_built(build):
    """`build` that also sets `built`, as Keras does, once the layer's own (outermost) build
    returns: a layer built by hand keeps the weights then set on it at its first call."""
    @functools.wraps(build)
    def wrapper(self, *args, **kwargs):
        result = build(self, *args, **kwargs)
        if type(self).build is wrapper:
            self.built = True
        return result
    return wrapper


def _child_layers(module):
    """The layers among `module`'s children, containers (lists, dicts) flattened in order."""
    for child in module.children():
        if isinstance(child, Layer):
            yield child
        elif isinstance(child, (nn.ModuleList, nn.ModuleDict, nn.Sequential)):
            yield from _child_layers(child)


def _attach_mask(outputs, mask):
    """Keras puts a layer's output mask on its (first) output tensor."""
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0] if outputs else None
    if isinstance(outputs, (torch.Tensor, KerasTensor)) and not isinstance(mask, (list, tuple)):
        outputs._keras_mask = mask


def _free_attr(module, name):
    return name.isidentifier() and not hasattr(module, name)


def _get_regularizer(identifier):
    if identifier is None:
        return None
    from lamina import regularizers
    return regularizers.get(identifier)


def _shape_of(x):
    if isinstance(x, (KerasTensor, torch.Tensor, np.ndarray)):
        return tuple(x.shape)
    return x


def _to_tensor(x, dtype):
    if isinstance(x, (list, tuple, dict)):
        return kt.map_structure(lambda v: _to_tensor(v, dtype), x)
    if isinstance(x, torch.Tensor) or x is None:
        return x
    array = np.asarray(x)
    if array.dtype.kind == "f":
        return torch.as_tensor(array, dtype=backend.torch_dtype(dtype), device=backend.device())
    return torch.as_tensor(array, device=backend.device())


def _keras_view(tensor, layout):
    if layout is None:
        return tensor
    return tensor.permute(*sorted(range(len(layout)), key=layout.__getitem__))


def _keras_shape(tensor, layout):
    return tuple(_keras_view(tensor, layout).shape)


def _to_keras_layout(tensor, layout):
    return _keras_view(tensor.detach(), layout).cpu().numpy().copy()


# -------------------------------------------------------------------- shape inference
_PROBE_SIZES = (83, 89)


def _fake_inputs(structure, size, mode, device):
    def make(x):
        if not isinstance(x, KerasTensor):
            return x
        shape = [size if d is None else d for d in x.shape]
        with mode:
            return torch.zeros(shape, dtype=backend.torch_dtype(x.dtype), device=device)
    return kt.map_structure(make, structure)


def _run_probe(layer, args, kwargs, size):
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    device = module_device(layer)
    fargs = _fake_inputs(args, size, mode, device)
    fkwargs = _fake_inputs(kwargs, size, mode, device)
    masks = [getattr(a, "_keras_mask", None) for a in kt.flatten(args)]
    mask = None
    if any(m is not None for m in masks):
        mask = _fake_inputs(masks[0] if len(masks) == 1 else masks, size, mode, device)
    with mode:
        if layer._call_takes_mask and "mask" not in fkwargs and mask is not None:
            fkwargs["mask"] = mask
        if layer._call_takes_training:
            fkwargs["training"] = False
        target = layer._input_dtype()
        if target is not None:
            fargs, fkwargs = _cast_floats(fargs, fkwargs, target, False)
        out = layer._call_in_policy(fargs, fkwargs)
        out_mask = None
        if layer.supports_masking or type(layer).compute_mask is not Layer.compute_mask:
            first = fargs[0] if fargs else None
            out_mask = layer.compute_mask(first, fkwargs.get("mask", mask))
    return out, out_mask


def _infer_outputs(layer, args, kwargs):
    """Output KerasTensors of `layer` on symbolic inputs, via torch's fake tensors."""
    symbolic = [t for t in kt.flatten((args, kwargs)) if isinstance(t, KerasTensor)]
    # Unknown sizes other than the batch axis need a second probe to tell which outputs vary.
    only_batch = all(d is not None for t in symbolic for d in t.shape[1:])
    try:
        first, mask = _run_probe(layer, args, kwargs, _PROBE_SIZES[0])
        second = first if only_batch else _run_probe(layer, args, kwargs, _PROBE_SIZES[1])[0]
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 - re-raised with the layer named
        if isinstance(error, (ValueError, TypeError)):
            raise
        raise ValueError(f"Exception encountered when calling layer '{layer.name}' "
                         f"({type(layer).__name__}) on symbolic inputs: {error}") from error

    batch_unknown = any(t.shape and t.shape[0] is None for t in symbolic)

    def symbolic(a, b):
        shape = tuple(None if da != db or (i == 0 and batch_unknown and da == _PROBE_SIZES[0])
                      else da for i, (da, db) in enumerate(zip(a.shape, b.shape)))
        return KerasTensor(shape, dtype=backend.standardize_dtype(a.dtype))

    outputs = kt.pack_like(first, [symbolic(a, b) for a, b in
                                   zip(kt.flatten(first), kt.flatten(second))])
    out_mask = None
    if isinstance(mask, torch.Tensor):
        out_mask = KerasTensor(tuple(None if i == 0 else d for i, d in enumerate(mask.shape)),
                               dtype=backend.standardize_dtype(mask.dtype))
    return outputs, out_mask
