"""RMSprop, as in `keras.optimizers.RMSprop` (epsilon added inside the square root)."""
import torch

from lamina.optimizers.base import Optimizer


class RMSprop(Optimizer):
    """`v = rho * v + (1 - rho) * g**2`; `w -= lr * g / sqrt(v + epsilon)`.

    `centered=True` subtracts the squared moving mean of `g` inside the root; `momentum > 0`
    accumulates the increments in a momentum buffer.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, name=None, **kwargs):
        # weight_decay, clipnorm, clipvalue, global_clipnorm, ...: the arguments of `Optimizer`.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        self._momentums = []
        if self.momentum > 0:
            self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._average_gradients = []
        if self.centered:
            self._average_gradients = self.add_optimizer_variables(var_list, "average_gradient")

    def _update_step(self, params, grads, indices, learning_rate):
        rho = float(self.rho)
        velocities = self._select(self._velocities, indices)
        torch._foreach_mul_(velocities, rho)
        torch._foreach_addcmul_(velocities, grads, grads, value=1 - rho)
        denominators = torch._foreach_add(velocities, float(self.epsilon))
        if self.centered:
            averages = self._select(self._average_gradients, indices)
            torch._foreach_lerp_(averages, grads, 1 - rho)
            torch._foreach_addcmul_(denominators, averages, averages, value=-1)
        torch._foreach_sqrt_(denominators)
        increments = torch._foreach_mul(grads, learning_rate)
        torch._foreach_div_(increments, denominators)
        if self.momentum > 0:
            momentums = self._select(self._momentums, indices)
            torch._foreach_mul_(momentums, float(self.momentum))
            torch._foreach_add_(momentums, increments)
            torch._foreach_sub_(params, momentums)
        else:
            torch._foreach_sub_(params, increments)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config
