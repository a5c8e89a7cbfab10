"""`LossScaleOptimizer`, as in `keras.mixed_precision`: dynamic loss scaling around another
optimizer, so that small float16 gradients survive. `compile()` wraps the optimizer in one when
the model's policy is "mixed_float16"; a custom loop uses it directly:

>>> optimizer = LossScaleOptimizer(SGD(0.01))
>>> optimizer.scale_loss(loss).backward()
>>> optimizer.apply([p.grad for p in params], params)  # unscaled; skipped unless all finite

The scale doubles after `dynamic_growth_steps` finite steps in a row and halves on a step whose
gradients are not all finite (that step's update is skipped).
"""
import functools

import torch

from lamina import mixed_precision
from lamina.optimizers.base import Optimizer
from lamina.saving import serialization_lib

# Base optimizer arguments Keras's serialised LossScaleOptimizers may carry, with the only
# values it accepts for them.
_BASE_DEFAULTS = {"weight_decay": None, "clipnorm": None, "global_clipnorm": None,
                  "clipvalue": None, "use_ema": False, "ema_momentum": 0.99,
                  "ema_overwrite_frequency": None, "loss_scale_factor": None,
                  "gradient_accumulation_steps": None}


class LossScaleOptimizer(Optimizer):
    """Scales the loss by a dynamic factor and unscales the gradients before `inner_optimizer`
    applies them.

    Args:
        inner_optimizer: the `Optimizer` that applies the updates.
        initial_scale: float, the first loss scale.
        dynamic_growth_steps: int, how many finite steps in a row double the scale.
    """

    def __init__(self, inner_optimizer, initial_scale=2.0 ** 15, dynamic_growth_steps=2000,
                 name=None, **kwargs):
        if not kwargs.pop("dynamic", True):
            raise ValueError("LossScaleOptimizer no longer supports `dynamic=False`. Instead, "
                             "simply set `loss_scale_factor` directly on the `inner_optimizer`.")
        for key, default in _BASE_DEFAULTS.items():
            if key in kwargs and kwargs.pop(key) != default:
                raise ValueError(f"LossScaleOptimizer does not support `{key}`. Instead, set "
                                 f"`{key}` on the `inner_optimizer`.")
        if kwargs:
            raise ValueError("LossScaleOptimizer does not support arguments: "
                             f"`{'`, `'.join(kwargs)}`.")
        if not isinstance(inner_optimizer, Optimizer):
            raise TypeError("`inner_optimizer` must be an Optimizer instance. Received: "
                            f"inner_optimizer={inner_optimizer!r}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.initial_scale = initial_scale
        self.dynamic_growth_steps = dynamic_growth_steps
        inner_optimizer.loss_scale_factor = None  # the gradients are unscaled once, here
        self._scaler = None

    def build(self, var_list):
        if self.built:
            return
        var_list = list(var_list)
        device = var_list[0].device if var_list else self._device()
        self._scaler = mixed_precision.LossScaler(device, float(self.initial_scale),
                                                  int(self.dynamic_growth_steps))
        # Keras's two variables, in its order: the scaler updates them in place.
        self._state = [("step_counter", self._scaler.growth_tracker),
                       ("dynamic_scale", self._scaler.scale)]
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self):
        return super().variables + self.inner_optimizer.variables

    def _step_tensors(self):
        return super()._step_tensors() + ([self._scaler.found_inf] if self.built else [])

    @property
    def step_counter(self):
        """Finite steps since the scale last changed (a 0-d int32 tensor), as in Keras."""
        return self._scaler.growth_tracker if self.built else torch.zeros((), dtype=torch.int32)

    @property
    def dynamic_scale(self):
        """The current loss scale (a 0-d float32 tensor)."""
        return self._scaler.scale if self.built else torch.tensor(float(self.initial_scale))

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.inner_optimizer.learning_rate = value

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def _evaluate_callable_learning_rate(self):
        self.inner_optimizer._evaluate_callable_learning_rate()

    def scale_loss(self, loss):
        return loss * (self._scaler.scale if self.built else float(self.initial_scale))

    def apply(self, grads, trainable_variables=None):
        """Unscale `grads` (in place) and apply them with the inner optimizer when they are all
        finite; then grow or shrink the scale. Nothing is read on the host on an accelerator."""
        grads = list(grads)
        if not self.built:
            if trainable_variables is None:
                raise ValueError("When passing `grads` without `variables`, the optimizer must "
                                 "already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
            self.build(trainable_variables)
        variables = (self._trainable_variables if trainable_variables is None
                     else list(trainable_variables))
        self._scaler.step([g for g in grads if g is not None],
                          functools.partial(self.inner_optimizer.apply, grads, variables),
                          variables + self.inner_optimizer.variables)

    def _step(self):
        """torch-style `step`: `apply` to the built parameters' `.grad`."""
        params = self._trainable_variables
        self._scaler.step([p.grad for p in params if p.grad is not None],
                          self.inner_optimizer._step, params + self.inner_optimizer.variables)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def state_dict(self):
        return dict(super().state_dict(), inner_optimizer=self.inner_optimizer.state_dict())

    def load_state_dict(self, state_dict):
        if "inner_optimizer" not in state_dict:
            raise ValueError("Argument `state_dict` is missing the key 'inner_optimizer'. "
                             f"Received keys: {sorted(state_dict)}")
        self.inner_optimizer.load_state_dict(state_dict["inner_optimizer"])
        super().load_state_dict(state_dict)

    def get_config(self):
        return {"name": self.name,
                "inner_optimizer": serialization_lib.serialize_keras_object(self.inner_optimizer),
                "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.optimizers import deserialize

        config = dict(config)
        inner = deserialize(config.pop("inner_optimizer"), custom_objects=custom_objects)
        return cls(inner, **config)
