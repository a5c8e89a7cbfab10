"""Adadelta, as in `keras.optimizers.Adadelta` (the step is scaled by `learning_rate`)."""
import torch

from lamina.optimizers.base import Optimizer


class Adadelta(Optimizer):
    """`delta = sqrt(acc_delta + eps) / sqrt(acc_grad + eps) * g`; `w -= lr * delta`."""

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name=None, **kwargs):
        # weight_decay, clipnorm, clipvalue, global_clipnorm, ...: the arguments of `Optimizer`.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulated_grads, self._accumulated_delta_vars = self.add_optimizer_variables(
            var_list, ["accumulated_grad", "accumulated_delta_var"])

    def _update_step(self, params, grads, indices, learning_rate):
        rho, eps = float(self.rho), float(self.epsilon)
        acc_grads = self._select(self._accumulated_grads, indices)
        acc_deltas = self._select(self._accumulated_delta_vars, indices)
        torch._foreach_mul_(acc_grads, rho)
        torch._foreach_addcmul_(acc_grads, grads, grads, value=1 - rho)
        deltas = torch._foreach_add(acc_deltas, eps)
        torch._foreach_sqrt_(deltas)
        torch._foreach_mul_(deltas, grads)
        denominators = torch._foreach_add(acc_grads, eps)
        torch._foreach_sqrt_(denominators)
        torch._foreach_div_(deltas, denominators)  # the step with its sign flipped
        torch._foreach_mul_(acc_deltas, rho)
        torch._foreach_addcmul_(acc_deltas, deltas, deltas, value=1 - rho)
        torch._foreach_mul_(deltas, learning_rate)
        torch._foreach_sub_(params, deltas)

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
