"""`Optimizer`: the Keras optimizer API on torch tensors.

An optimizer is created before the weights exist (`compile(optimizer=Adam())`); `build(params)`
later creates its per-parameter state. Each update runs under `torch.no_grad()` as a handful of
`torch._foreach_*` kernels over all parameters at once, with every per-step scalar (learning
rate, bias corrections, clip factors) kept as a 0-d device tensor: nothing waits on the host.

>>> from lamina.optimizers import SGD
>>> w = torch.nn.Parameter(torch.ones(3))
>>> opt = SGD(learning_rate=0.1)
>>> _ = opt.apply_gradients([(torch.ones(3), w)])   # builds on first use
>>> [round(x, 6) for x in w.detach().tolist()]
[0.9, 0.9, 0.9]
"""
import functools
import numbers
import re
import warnings

import numpy as np
import torch

from lamina import backend
from lamina.optimizers import schedules
from lamina.saving import serialization_lib

# Keys that Keras 2 (tf.keras) wrote into optimizer configs and Keras 3 no longer takes.
_LEGACY_CONFIG_KEYS = ("is_legacy_optimizer", "jit_compile")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _learning_rate_error(value):
    return ValueError(
        "Argument `learning_rate` should be a float, an instance of LearningRateSchedule, or a "
        "callable that takes no arguments and returns the learning rate. "
        f"Received instead: learning_rate={value!r}")


def sub_scaled_(tensors, grads, factor):
    """`tensors -= grads * factor` for a 0-d device `factor` (a learning rate). On CUDA two
    multi-tensor kernels with a temporary; on the CPU, where foreach ops loop over the tensors
    anyway, one pass per tensor (`addcmul_`) without allocating a scaled copy of the gradients."""
    if tensors[0].is_cuda:
        torch._foreach_sub_(tensors, torch._foreach_mul(grads, factor))
    else:
        torch._foreach_addcmul_(tensors, grads, [factor] * len(grads), value=-1)


def _variable_name(variable, index):
    name = getattr(variable, "path", None) or getattr(variable, "name", None)
    if not isinstance(name, str) or not name:
        name = f"variable_{index}"
    return name.replace("/", "_").replace(":", "_")


class LearningRateValue(float):
    """`optimizer.learning_rate` of a constant rate: a float that also takes Keras's variable
    calls. `assign(value)` sets the optimizer's rate; `numpy()` gives it as a numpy float32.

    >>> opt = SGD(0.1)
    >>> opt.learning_rate.assign(0.01)
    """

    def __new__(cls, value, optimizer):
        self = super().__new__(cls, value)
        self._optimizer = optimizer
        return self

    def assign(self, value):
        self._optimizer.learning_rate = value

    def numpy(self):
        return np.float32(self)

    def __reduce__(self):  # copies and pickles are plain floats
        return float, (float(self),)


class Optimizer:
    """Base class of all optimizers.

    Args:
        learning_rate: float, `LearningRateSchedule`, or a callable taking no arguments.
        weight_decay: float; if set, each update first does `w -= w * weight_decay * lr`.
        clipnorm: float; clip each gradient to this L2 norm.
        clipvalue: float; clip each gradient element to `[-clipvalue, clipvalue]`.
        global_clipnorm: float; clip all gradients together to this global L2 norm.
        use_ema, ema_momentum, ema_overwrite_frequency: weight moving average (not supported
            yet: `use_ema=True` raises `NotImplementedError`).
        loss_scale_factor: float; gradients are divided by it before the update.
        gradient_accumulation_steps: int >= 2 (not supported yet: raises `NotImplementedError`).
        name: string; defaults to the snake-cased class name, made unique.

    Subclasses create state in `build` with `add_optimizer_variables` and implement
    `_update_step(params, grads, indices, learning_rate)` with foreach ops (or Keras's
    per-variable `update_step(gradient, variable, learning_rate)`).
    """

    def __init_subclass__(cls, **kwargs):
        # A subclass `build` creates slots after `super().build()`: state loaded before the
        # optimizer was built can only be restored once the outermost `build` has returned.
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            original = cls.__dict__["build"]

            @functools.wraps(original)
            def build(self, *args, **kw):
                original(self, *args, **kw)
                if self.built:
                    self._restore_pending(strict=False)

            cls.build = build

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if "lr" in kwargs:
            warnings.warn("The `lr` argument is deprecated, use `learning_rate` instead.",
                          stacklevel=3)
            learning_rate = kwargs.pop("lr")
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=3)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        clip_args = sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm))
        if clip_args > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        if gradient_accumulation_steps:
            if not gradient_accumulation_steps >= 2:
                raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                                 f"gradient_accumulation_steps={gradient_accumulation_steps}")
            raise NotImplementedError(
                "lamina optimizers do not support `gradient_accumulation_steps` yet. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}; leave it as None.")
        if use_ema:
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError("`ema_momentum` must be in the range [0, 1]. "
                                 f"Received: ema_momentum={ema_momentum}")
            raise NotImplementedError(
                "lamina optimizers do not support `use_ema=True` (weight moving averages) yet.")
        self.name = name if name is not None else backend.unique_name(
            backend.to_snake_case(type(self).__name__))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = use_ema
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps

        device = backend.device()
        self._iterations = torch.zeros((), dtype=torch.int64, device=device)
        self._learning_rate_tensor = torch.zeros((), dtype=torch.float32, device=device)
        # None: the constant in `_learning_rate_tensor`; else a schedule or a 0-arg callable.
        self._learning_rate = None
        self._host_evaluates_callable = False
        if isinstance(learning_rate, schedules.LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        else:
            self._set_constant_learning_rate(learning_rate)

        self.built = False
        self._trainable_variables = []
        self._index = {}
        self._state = []  # (name, tensor) of optimizer variables, in creation (Keras) order
        self._decay_mask = []
        self._decay_params = []
        self._constraints = []
        self._exclude_ids = set()
        self._exclude_pattern = None
        self._pending_state = None

    # ---- learning rate -------------------------------------------------------------------
    def _set_constant_learning_rate(self, value):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            self._learning_rate_tensor.copy_(value.reshape(()))
        elif _is_number(value) or (isinstance(value, np.ndarray) and value.size == 1):
            self._learning_rate_tensor.fill_(float(value))
        else:
            raise _learning_rate_error(value)
        self._learning_rate = None

    @property
    def learning_rate(self):
        """The current learning rate as a Python float (reads the device: not for every step);
        a constant one also takes `assign(value)` and `numpy()`, as Keras's variable does."""
        lr = self._learning_rate
        if lr is None:
            return LearningRateValue(float(self._learning_rate_tensor), self)
        if isinstance(lr, schedules.LearningRateSchedule):
            return float(lr(self._iterations))
        return float(lr())

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, schedules.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        if isinstance(self._learning_rate, schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not settable. "
                "If you need the learning rate to be settable, you should instantiate the "
                "optimizer with a float `learning_rate` argument.")
        self._set_constant_learning_rate(value)

    @property
    def lr(self):
        """Deprecated alias of `learning_rate` (Keras 2 code)."""
        return self.learning_rate

    @lr.setter
    def lr(self, value):
        self.learning_rate = value

    def _current_learning_rate(self):
        """The learning rate for the coming update, as a 0-d float32 device tensor. `fit`'s
        compiled steps read a callable's value from the tensor, where the host put it
        (`_evaluate_callable_learning_rate`)."""
        lr = self._learning_rate
        if lr is None or (self._host_evaluates_callable and torch.compiler.is_compiling()
                          and not isinstance(lr, schedules.LearningRateSchedule)):
            return self._learning_rate_tensor
        value = lr(self._iterations) if isinstance(lr, schedules.LearningRateSchedule) else lr()
        if isinstance(value, torch.Tensor):
            self._learning_rate_tensor.copy_(value.reshape(()))
        else:
            self._learning_rate_tensor.fill_(float(value))
        return self._learning_rate_tensor

    def _evaluate_callable_learning_rate(self):
        """Before a compiled step: a 0-argument callable learning rate, evaluated on the host
        into the tensor the step reads (traced, it would be a constant of the graph)."""
        if self._learning_rate is not None and not isinstance(self._learning_rate,
                                                              schedules.LearningRateSchedule):
            self._current_learning_rate()
            self._host_evaluates_callable = True

    @property
    def iterations(self):
        """Number of updates applied so far: a 0-d int64 tensor on the parameters' device."""
        return self._iterations

    # ---- variables -----------------------------------------------------------------------
    def _traced_settings(self):
        """What a compiled train step takes in as constants, to tell when it must be traced
        again: the Python-valued hyperparameters and the learning rate object in use (None for
        a constant rate, which the step reads from a tensor)."""
        settings = [self._learning_rate]
        for key, value in vars(self).items():
            if isinstance(value, Optimizer):
                settings.append((key, value._traced_settings()))
            elif (not key.startswith("_") and key != "built"
                  and isinstance(value, (bool, int, float, str, type(None)))):
                settings.append((key, value))
        return tuple(settings)

    def build(self, var_list):
        """Create the optimizer state for `var_list` (trainable parameters); idempotent."""
        if self.built:
            return
        var_list = list(var_list)
        device = var_list[0].device if var_list else self._iterations.device
        self._iterations = self._iterations.to(device)
        self._learning_rate_tensor = self._learning_rate_tensor.to(device)
        self._trainable_variables = var_list
        self._index = {id(v): i for i, v in enumerate(var_list)}
        self._decay_mask = [self._use_weight_decay(v) for v in var_list]
        self._decay_params = [v for v, use in zip(var_list, self._decay_mask) if use]
        self._constraints = [(i, v.constraint) for i, v in enumerate(var_list)
                             if getattr(v, "constraint", None) is not None]
        self.built = True
        self._restore_pending(strict=False)

    @property
    def variables(self):
        """State tensors in Keras order: iterations, learning rate (if constant), then slots."""
        head = [self._iterations]
        if self._learning_rate is None:
            head.append(self._learning_rate_tensor)
        return head + [t for _, t in self._state]

    def _step_tensors(self):
        """Every tensor an update writes in place, for a CUDA graph of the train step to keep at
        a fixed address."""
        return self.variables

    def _device(self):
        return self._iterations.device

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="none",
                     layout=None, name=None):
        """A new state tensor of `shape` ("zeros", "ones", a number or `fn(shape, dtype)`)."""
        dtype = backend.torch_dtype(dtype)
        shape = tuple(shape)
        if callable(initializer):
            value = torch.as_tensor(initializer(shape, dtype=dtype), dtype=dtype)
            value = value.to(self._device()).detach().clone()
        else:
            fill = {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)
            if not _is_number(fill):
                raise ValueError("Argument `initializer` should be 'zeros', 'ones', a number or a "
                                 f"callable. Received: initializer={initializer!r}")
            value = torch.full(shape, float(fill), dtype=dtype, device=self._device())
        self._state.append((name or f"variable_{len(self._state)}", value))
        return value

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """A state tensor shaped, typed and placed like `reference_variable`."""
        index = self._index.get(id(reference_variable), len(self._state))
        full_name = f"{_variable_name(reference_variable, index)}_{name or 'var'}"
        plain = initializer in ("zeros", "ones") or _is_number(initializer)
        if callable(initializer) or not plain:
            return self.add_variable(reference_variable.shape, initializer,
                                     reference_variable.dtype, name=full_name)
        fill = {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)
        value = torch.full_like(reference_variable, float(fill), requires_grad=False)
        self._state.append((full_name, value))
        return value

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """One state tensor per variable per name; names interleave per variable, as in Keras."""
        names = [name] if isinstance(name, str) else list(name)
        inits = (initializer if isinstance(initializer, (list, tuple))
                 else [initializer] * len(names))
        if len(inits) != len(names):
            raise ValueError("The number of provided names must match the number of provided "
                             f"initializers. Received name={name!r}, initializer={initializer!r}")
        out = tuple([] for _ in names)
        for variable in trainable_variables:
            for lst, var_name, init in zip(out, names, inits):
                lst.append(self.add_variable_from_reference(variable, var_name, init))
        return out[0] if isinstance(name, str) else out

    def _get_variable_index(self, variable):
        return self._index[id(variable)]

    def assign(self, variable, value):
        variable.copy_(value)

    def assign_add(self, variable, value):
        variable.add_(value)

    def assign_sub(self, variable, value):
        variable.sub_(value)

    # ---- weight decay --------------------------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables (or those whose name contains one of `var_names`) from weight decay."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before the "
                             "optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list or ()}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, variable):
        if id(variable) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None:
            name = getattr(variable, "path", None) or getattr(variable, "name", None) or ""
            if re.search(self._exclude_pattern, str(name)):
                return False
        return True

    # ---- applying updates ----------------------------------------------------------------
    def apply_gradients(self, grads_and_vars):
        """Apply `(gradient, variable)` pairs; builds on first use. Returns `iterations`."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, variables = zip(*pairs)
            self.apply(grads, variables)
        return self._iterations

    def apply(self, grads, trainable_variables=None):
        """Apply `grads`, matched to `trainable_variables` (default: the built variables)."""
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first.")
            if len(grads) != len(self._trainable_variables):
                raise ValueError(
                    "When passing `grads` as a list of gradient tensors, the gradients must "
                    f"match the built variables one-to-one. Received a list of {len(grads)} "
                    f"gradients, but the optimizer is tracking {len(self._trainable_variables)} "
                    "trainable variables.")
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
            if not self.built:
                self.build(variables)
        indices = []
        for v in variables:
            i = self._index.get(id(v))
            if i is None:
                raise ValueError(
                    f"Unknown variable: {getattr(v, 'shape', v)}. This optimizer can only be "
                    "called for the variables it was originally built with. When working with "
                    "a new set of variables, you should recreate a new optimizer instance.")
            indices.append(i)
        kept = [k for k, g in enumerate(grads) if g is not None]
        if not kept:
            raise ValueError("No gradients provided for any variable.")
        if len(kept) < len(grads):
            missing = [_variable_name(variables[k], indices[k]) for k, g in enumerate(grads)
                       if g is None]
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                          "loss. If using `model.compile()`, did you forget to provide a `loss` "
                          "argument?", stacklevel=2)
            grads = [grads[k] for k in kept]
            indices = [indices[k] for k in kept]
        params = [self._trainable_variables[i] for i in indices]
        grads = [g if isinstance(g, torch.Tensor) and g.dtype == p.dtype and g.device == p.device
                 else torch.as_tensor(np.asarray(g) if not isinstance(g, torch.Tensor) else g,
                                      dtype=p.dtype, device=p.device)
                 for g, p in zip(grads, params)]
        if indices == list(range(len(self._trainable_variables))):
            indices = None
        self._apply_indexed(indices, params, grads)

    def step(self, closure=None):
        """torch-style step: update the built parameters from their `.grad` (None: skipped)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if not self.built:
            raise ValueError("The optimizer has not been built: call "
                             "`optimizer.build(trainable_variables)` before `step()`.")
        self._step()
        return loss

    def _step(self):
        """`step`'s update, from the built parameters' `.grad`."""
        params = self._trainable_variables
        grads = [p.grad for p in params]
        indices = None
        if any(g is None for g in grads):
            indices = [i for i, g in enumerate(grads) if g is not None]
            if not indices:
                return
            params = [params[i] for i in indices]
            grads = [grads[i] for i in indices]
        self._apply_indexed(indices, params, grads)

    def zero_grad(self, set_to_none=True):
        """Clear the `.grad` of the built parameters."""
        if set_to_none:
            for p in self._trainable_variables:
                p.grad = None
        else:
            grads = [p.grad for p in self._trainable_variables if p.grad is not None]
            if grads:
                torch._foreach_zero_(grads)

    @torch.no_grad()
    def _apply_indexed(self, indices, params, grads):
        if self._pending_state is not None:
            self._restore_pending(strict=True)
        if self.loss_scale_factor is not None:
            grads = torch._foreach_div(grads, float(self.loss_scale_factor))
        grads = self._clip_gradients(grads)
        lr = self._current_learning_rate()
        if self.weight_decay:
            decayed = self._decay_params if indices is None else [
                p for i, p in zip(indices, params) if self._decay_mask[i]]
            if decayed:
                torch._foreach_mul_(decayed, 1.0 - lr * float(self.weight_decay))
        self._update_step(params, grads, indices, lr)
        if self._constraints:
            active = None if indices is None else set(indices)
            for i, constraint in self._constraints:
                if active is None or i in active:
                    variable = self._trainable_variables[i]
                    variable.copy_(constraint(variable))
        self._iterations.add_(1)

    @staticmethod
    def _select(slots, indices):
        """`slots` restricted to `indices` (None: all of them)."""
        return slots if indices is None else [slots[i] for i in indices]

    def _update_step(self, params, grads, indices, learning_rate):
        """Update `params` in place; built-in optimizers override this with foreach ops."""
        for grad, variable in zip(grads, params):
            self.update_step(grad, variable, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        raise NotImplementedError(f"{type(self).__name__} must implement `_update_step` or "
                                  "`update_step(gradient, variable, learning_rate)`.")

    def _clip_gradients(self, grads):
        if self.clipnorm and self.clipnorm > 0:
            clipnorm = float(self.clipnorm)
            # g * clipnorm / max(||g||, clipnorm), per tensor.
            factors = torch._foreach_maximum(torch._foreach_norm(grads), clipnorm)
            torch._foreach_reciprocal_(factors)
            torch._foreach_mul_(factors, clipnorm)
            return torch._foreach_mul(grads, factors)
        if self.global_clipnorm and self.global_clipnorm > 0:
            clipnorm = float(self.global_clipnorm)
            norms = [n.to(torch.float32) for n in torch._foreach_norm(grads)]
            total = torch.linalg.vector_norm(torch.stack(norms))
            # NaN/inf norms propagate into the scale, as in Keras.
            scale = clipnorm * torch.clamp(1.0 / total, max=1.0 / clipnorm) + (total - total)
            return torch._foreach_mul(grads, scale)
        if self.clipvalue and self.clipvalue > 0:
            value = float(self.clipvalue)
            return torch._foreach_clamp_min(torch._foreach_clamp_max(grads, value), -value)
        return grads

    def scale_loss(self, loss):
        """`loss * loss_scale_factor` when a factor is set."""
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    def finalize_variable_values(self, var_list):
        """Called at the end of `fit`; a no-op without EMA."""

    # ---- saving and resuming -------------------------------------------------------------
    def state_dict(self):
        """A copy of the optimizer state (for `torch.save`): iterations, learning rate, slots."""
        return {"iterations": self._iterations.detach().clone(),
                "learning_rate": self._learning_rate_tensor.detach().clone(),
                "state": [t.detach().clone() for _, t in self._state],
                "state_names": [n for n, _ in self._state]}

    def load_state_dict(self, state_dict):
        """Restore `state_dict()`'s output, in place; before `build` it is applied on build."""
        missing = {"iterations", "learning_rate", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"Argument `state_dict` is missing the keys {sorted(missing)}. "
                             f"Received keys: {sorted(state_dict)}")
        with torch.no_grad():
            self._iterations.copy_(torch.as_tensor(state_dict["iterations"]))
            self._learning_rate_tensor.copy_(torch.as_tensor(state_dict["learning_rate"]))
        self._pending_state = list(state_dict["state"])
        if self.built:
            self._restore_pending(strict=True)

    def _restore_pending(self, strict):
        saved = self._pending_state
        if saved is None:
            return
        if len(saved) != len(self._state):
            if strict:
                self._pending_state = None
                raise ValueError(
                    f"The saved optimizer state has {len(saved)} slot variables, but optimizer "
                    f"'{self.name}' has {len(self._state)}: it was built for a different set "
                    "of variables or with different options.")
            return
        with torch.no_grad():
            for (name, target), value in zip(self._state, saved):
                value = torch.as_tensor(value)
                if tuple(value.shape) != tuple(target.shape):
                    raise ValueError(f"Optimizer variable {name} has shape {tuple(target.shape)}, "
                                     f"not compatible with the saved shape {tuple(value.shape)}.")
                target.copy_(value)
        self._pending_state = None

    def set_weights(self, weights):
        """Set `variables` from a list of arrays, in order."""
        if not self.built:
            raise ValueError("You are calling `set_weights()` on an optimizer that has not yet "
                             "been built. Please call `optimizer.build(trainable_variables)` to "
                             "create the optimizer weights before calling `set_weights()`.")
        with torch.no_grad():
            for variable, weight in zip(self.variables, weights):
                weight = torch.as_tensor(np.asarray(weight))
                if tuple(variable.shape) != tuple(weight.shape):
                    raise ValueError(f"Optimizer variable has shape {tuple(variable.shape)}, "
                                     "not compatible with provided weight shape "
                                     f"{tuple(weight.shape)}.")
                variable.copy_(weight)

    def save_own_variables(self, store):
        """Write `variables` into `store` under "0", "1", ... (the `.keras` layout)."""
        for i, variable in enumerate(self.variables):
            store[str(i)] = variable.detach().cpu().numpy()

    def load_own_variables(self, store):
        """Read `variables` back from `save_own_variables`'s layout."""
        if len(store.keys()) != len(self.variables):
            msg = (f"Skipping variable loading for optimizer '{self.name}', because it has "
                   f"{len(self.variables)} variables whereas the saved optimizer has "
                   f"{len(store.keys())} variables. ")
            if len(self.variables) <= 2:
                msg += "This is likely because the optimizer has not been called/built yet."
            warnings.warn(msg, stacklevel=2)
            return
        with torch.no_grad():
            for i, variable in enumerate(self.variables):
                variable.copy_(torch.as_tensor(np.asarray(store[str(i)])))

    # ---- config --------------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        if lr is None:
            learning_rate = float(self._learning_rate_tensor)
        elif isinstance(lr, schedules.LearningRateSchedule):
            learning_rate = schedules.serialize(lr)
        else:
            learning_rate = serialization_lib.serialize_keras_object(lr)
        return {"name": self.name, "learning_rate": learning_rate,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm,
                "global_clipnorm": self.global_clipnorm, "clipvalue": self.clipvalue,
                "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in _LEGACY_CONFIG_KEYS:
            config.pop(key, None)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"],
                                                            custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"
