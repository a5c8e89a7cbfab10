"""`Metric`, the base of all metrics, and the averaging metrics `Mean`, `Sum`, `MeanMetricWrapper`.

A metric is a `torch.nn.Module` whose state lives in buffers: it follows `.to(device)` and
appears in `state_dict()`. `update_state` changes the state in place on the device, without
waiting on the host, so it can run every training step.
"""
import torch

from lamina import backend
from lamina import losses as losses_module
from lamina.losses import _tensor, apply_mask, squeeze_or_expand_to_same_rank
from lamina.saving import serialization_lib


def _rebuild_variable(data):
    return MetricVariable.wrap(data)


class MetricVariable(torch.Tensor):
    """A metric state buffer with Keras's variable methods (`assign`, `assign_add`, ...).

    Torch ops on it return plain tensors and cost nothing extra.
    """

    __torch_function__ = torch._C._disabled_torch_function_impl

    @staticmethod
    def wrap(data):
        return torch.Tensor._make_subclass(MetricVariable, data.detach(), False)

    def _value_like(self, value):
        if isinstance(value, (int, float, bool)):
            return value
        return _tensor(value, self.dtype, device=self.device)

    def assign(self, value):
        self.copy_(self._value_like(value))
        return self

    def assign_add(self, value):
        self.add_(self._value_like(value))
        return self

    def assign_sub(self, value):
        self.sub_(self._value_like(value))
        return self

    @property
    def value(self):
        return self

    def numpy(self, *, force=False):
        return self.as_subclass(torch.Tensor).detach().cpu().numpy()

    def __deepcopy__(self, memo):
        out = MetricVariable.wrap(self.as_subclass(torch.Tensor).clone())
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        return _rebuild_variable, (self.as_subclass(torch.Tensor).detach().clone(),)

    def __repr__(self, *, tensor_contents=None):
        return repr(self.as_subclass(torch.Tensor))


def _initial_value(initializer, shape, dtype):
    shape = tuple(shape) if isinstance(shape, (list, tuple, torch.Size)) else (
        () if shape is None else (int(shape),))
    if initializer is None or initializer in ("zeros", "Zeros", "zero"):
        return torch.zeros(shape, dtype=dtype)
    if initializer in ("ones", "Ones", "one"):
        return torch.ones(shape, dtype=dtype)
    if isinstance(initializer, (int, float)):
        return torch.full(shape, float(initializer), dtype=dtype)
    if isinstance(initializer, str) or isinstance(initializer, dict):
        from lamina import initializers
        initializer = initializers.get(initializer)
    if callable(initializer):
        return _tensor(initializer(shape, dtype=backend.standardize_dtype(dtype)), dtype)
    raise ValueError(f"Could not interpret initializer: {initializer!r}. Expected 'zeros', "
                     "'ones', a number or a callable `(shape, dtype) -> tensor`.")


class Metric(torch.nn.Module):
    """Base class of metrics: `update_state`, `result`, `reset_state`, state in buffers.

    Subclasses create their state with `add_variable` in `__init__`, change it in place in
    `update_state(y_true, y_pred, sample_weight=None)` and read it in `result()`. Calling the
    metric updates it and returns the result.
    """

    def __init__(self, dtype=None, name=None):
        super().__init__()
        self.name = name or backend.unique_name(backend.to_snake_case(type(self).__name__))
        self._dtype = losses_module._compute_dtype(dtype)
        self._variable_names = []
        self._variable_aliases = {}
        self._device = backend.device()

    def __init_subclass__(cls, **kwargs):
        # Metrics are never differentiated: run their state code without building a graph.
        super().__init_subclass__(**kwargs)
        for method in ("update_state", "result", "reset_state"):
            fn = cls.__dict__.get(method)
            if fn is not None and not getattr(fn, "_lamina_no_grad", False):
                wrapped = torch.no_grad()(fn)
                wrapped._lamina_no_grad = True
                setattr(cls, method, wrapped)

    @property
    def dtype(self):
        return self._dtype

    # -- state ---------------------------------------------------------------------------
    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """Create a state buffer (a `MetricVariable`) on `backend.device()` and return it."""
        if "_variable_names" not in self.__dict__:
            raise RuntimeError("You forgot to call `super().__init__()` in the `__init__()` "
                               "method of your metric. Go add it!")
        base = (name or "variable").replace("/", "_").replace(".", "_")
        key, i = base, 1
        while key in self._buffers or (hasattr(self, key) and key not in self._buffers):
            key, i = f"{base}_{i}", i + 1
        dtype = backend.torch_dtype(dtype or self._dtype)
        value = _initial_value(initializer, shape, dtype).to(self._state_device())
        variable = MetricVariable.wrap(value)
        self.register_buffer(key, variable)
        self._variable_names.append(key)
        return variable

    def add_weight(self, name=None, shape=(), initializer="zeros", dtype=None, **kwargs):
        """Alias of `add_variable` (Keras 2 argument order: `name` first)."""
        if not isinstance(name, (str, type(None))):  # Keras 3 order: add_weight(shape, ...)
            name, shape = None, name
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    @property
    def variables(self):
        """The state buffers of this metric, then those of its sub-metrics."""
        out = [self._buffers[k] for k in self._variable_names]
        for module in self.children():
            if isinstance(module, Metric):
                out.extend(module.variables)
        return out

    def _state_device(self):
        return self._device

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        self._device = fn(torch.empty(0, device=self._device)).device  # where `.to()` went
        for key in self._variable_names:  # `.to()` may return plain tensors: re-wrap them.
            buf = self._buffers[key]
            if buf is not None and not isinstance(buf, MetricVariable):
                self._buffers[key] = MetricVariable.wrap(buf)
        return out

    def __setattr__(self, name, value):
        # `self.tp = self.add_variable(name="true_positives")`: keep `self.tp` pointing at the
        # live buffer (it is replaced by `.to(device)`), so store an alias instead of a copy.
        if isinstance(value, MetricVariable) and "_buffers" in self.__dict__ \
                and name not in self._buffers:
            for key in self.__dict__.get("_variable_names", ()):
                if self._buffers[key] is value:
                    self._variable_aliases[name] = key
                    return
        super().__setattr__(name, value)

    def __getattr__(self, name):
        aliases = self.__dict__.get("_variable_aliases")
        if aliases and name in aliases:
            return self._buffers[aliases[name]]
        return super().__getattr__(name)

    # -- API -----------------------------------------------------------------------------
    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement `update_state()`.")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement `result()`.")

    def reset_state(self):
        """Set every state variable back to zero, in place."""
        for variable in self.variables:
            variable.zero_()

    def reset_states(self):
        """Keras 2 name of `reset_state`."""
        self.reset_state()

    def forward(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"

    __str__ = __repr__

    def _to_state(self, x, dtype=None):
        """Inputs as tensors on the state's device (numpy arrays, lists and numbers too)."""
        return None if x is None else _tensor(x, dtype, device=self._state_device())


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype, device=None):
    """Keras's rule: weights broadcast against per-sample values, other axes reduced."""
    mask = getattr(values, "_keras_mask", None)
    values = _tensor(values, dtype, device=device)
    if sample_weight is not None:
        sample_weight = _tensor(sample_weight, dtype, like=values)
        if mask is not None:
            sample_weight = apply_mask(sample_weight, _tensor(mask, like=values), dtype, "sum")
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim, values_ndim = sample_weight.ndim, values.ndim
        if values_ndim > weight_ndim:
            values = reduce_fn(values, tuple(range(weight_ndim, values_ndim)))
        sample_weight = torch.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, tuple(range(1, values.ndim)))
    return values, sample_weight


def _mean(x, dims):
    return torch.mean(x, dim=dims)


def _sum(x, dims):
    return torch.sum(x, dim=dims)


class Sum(Metric):
    """Weighted sum of the values seen."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, values, sample_weight=None):
        values, _ = reduce_to_samplewise_values(values, sample_weight, _sum, self.dtype,
                                                self._state_device())
        self.total.add_(values.sum())

    def result(self):
        return self.total.as_subclass(torch.Tensor).clone()


class Mean(Metric):
    """Weighted mean of the values seen: `sum(w * v) / sum(w)`."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, values, sample_weight=None):
        self._accumulate(values, sample_weight)

    def _accumulate(self, values, sample_weight=None):
        values, sample_weight = reduce_to_samplewise_values(values, sample_weight, _mean,
                                                            self.dtype, self._state_device())
        self.total.add_(values.sum())
        if sample_weight is not None:
            self.count.add_(sample_weight.sum())
        else:
            self.count.add_(values.shape[0] if values.ndim >= 1 else 1)

    def result(self):
        return losses_module._divide_no_nan(self.total.as_subclass(torch.Tensor),
                                            self.count.as_subclass(torch.Tensor))


class MeanMetricWrapper(Mean):
    """Mean of `fn(y_true, y_pred, **kwargs)` over all samples seen (weighted by sample_weight)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs
        try:  # wrapping a Keras loss: lower is better
            if fn in losses_module.ALL_OBJECTS or type(fn) in losses_module.ALL_OBJECTS:
                self._direction = "down"
        except TypeError:  # unhashable callable
            pass

    def update_state(self, y_true, y_pred, sample_weight=None):
        mask = getattr(y_pred, "_keras_mask", None)
        y_true, y_pred = self._to_state(y_true), self._to_state(y_pred)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        sample_weight = apply_mask(self._to_state(sample_weight, self.dtype),
                                   None if mask is None else self._to_state(mask),
                                   self.dtype, "sum")
        self._accumulate(values, sample_weight)

    def get_config(self):
        config = super().get_config()
        config["fn"] = serialization_lib.serialize_keras_object(self._fn)
        config.update(serialization_lib.serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            from lamina.metrics import _deserialize_function
            config["fn"] = _deserialize_function(config["fn"])
        return cls(**config)
