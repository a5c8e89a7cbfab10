"""Adamax (Adam with the infinity norm), as in `keras.optimizers.Adamax`."""
import torch

from lamina.optimizers.base import Optimizer
from lamina.optimizers.schedules import power


class Adamax(Optimizer):
    """`u = max(beta_2 * u, |g|)`; `w -= lr * m / ((1 - beta_1**t) * (u + epsilon))`."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, name=None,
                 **kwargs):
        # weight_decay, clipnorm, clipvalue, global_clipnorm, ...: the arguments of `Optimizer`.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m, self._u = self.add_optimizer_variables(var_list, ["momentum", "norm"])

    def _update_step(self, params, grads, indices, learning_rate):
        beta_1 = float(self.beta_1)
        step = (self._iterations + 1).to(torch.float32)
        correction = 1 - power(beta_1, step)
        m = self._select(self._m, indices)
        u = self._select(self._u, indices)
        torch._foreach_lerp_(m, grads, 1 - beta_1)
        torch._foreach_mul_(u, float(self.beta_2))
        torch._foreach_maximum_(u, torch._foreach_abs(grads))
        denominators = torch._foreach_add(u, float(self.epsilon))
        torch._foreach_mul_(denominators, correction)
        updates = torch._foreach_mul(m, learning_rate)
        torch._foreach_div_(updates, denominators)
        torch._foreach_sub_(params, updates)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
