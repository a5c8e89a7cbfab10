"""Adagrad, as in `keras.optimizers.Adagrad`."""
import torch

from lamina.optimizers.base import Optimizer


class Adagrad(Optimizer):
    """`acc += g**2`; `w -= lr * g / sqrt(acc + epsilon)`.

    `acc` starts at `initial_accumulator_value`.
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name=None,
                 **kwargs):
        # weight_decay, clipnorm, clipvalue, global_clipnorm, ...: the arguments of `Optimizer`.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list, "accumulator", initializer=float(self.initial_accumulator_value))

    def _update_step(self, params, grads, indices, learning_rate):
        accumulators = self._select(self._accumulators, indices)
        torch._foreach_addcmul_(accumulators, grads, grads)
        denominators = torch._foreach_add(accumulators, float(self.epsilon))
        torch._foreach_sqrt_(denominators)
        updates = torch._foreach_mul(grads, learning_rate)
        torch._foreach_div_(updates, denominators)
        torch._foreach_sub_(params, updates)

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value,
                       "epsilon": self.epsilon})
        return config
