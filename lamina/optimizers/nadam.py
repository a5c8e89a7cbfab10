"""Nadam (Adam with Nesterov momentum), as in `keras.optimizers.Nadam`."""
import torch

from lamina.optimizers.base import Optimizer
from lamina.optimizers.schedules import power


class Nadam(Optimizer):
    """Adam with Nesterov momentum and the momentum-cache schedule
    `u_t = beta_1 * (1 - 0.5 * 0.96**t)` (its running product is an optimizer variable)."""

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
        var_list = list(var_list)
        dtype = var_list[0].dtype if var_list else torch.float32
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"])
        self._u_product = self.add_variable((), initializer="ones", dtype=dtype,
                                            name="u_product")

    def _update_step(self, params, grads, indices, learning_rate):
        beta_1, beta_2 = float(self.beta_1), float(self.beta_2)
        step = (self._iterations + 1).to(torch.float32)
        u_t = beta_1 * (1.0 - 0.5 * power(0.96, step))
        u_next = beta_1 * (1.0 - 0.5 * power(0.96, step + 1))
        u_product = self._u_product.to(torch.float32) * u_t
        u_product_next = u_product * u_next
        self._u_product.copy_(u_product)
        m = self._select(self._momentums, indices)
        v = self._select(self._velocities, indices)
        torch._foreach_lerp_(m, grads, 1 - beta_1)
        torch._foreach_lerp_(v, torch._foreach_mul(grads, grads), 1 - beta_2)
        # m_hat = u_next * m / (1 - u_product_next) + (1 - u_t) * g / (1 - u_product)
        m_hat = torch._foreach_mul(m, u_next / (1 - u_product_next))
        torch._foreach_add_(m_hat, torch._foreach_mul(grads, (1 - u_t) / (1 - u_product)))
        denominators = torch._foreach_div(v, 1 - power(beta_2, step))
        torch._foreach_sqrt_(denominators)
        torch._foreach_add_(denominators, float(self.epsilon))
        torch._foreach_mul_(m_hat, learning_rate)
        torch._foreach_div_(m_hat, denominators)
        torch._foreach_sub_(params, m_hat)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
