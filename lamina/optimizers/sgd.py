"""SGD, with optional (Nesterov) momentum, as in `keras.optimizers.SGD`."""
import torch

from lamina.optimizers.base import Optimizer, _is_number, sub_scaled_


class SGD(Optimizer):
    """Gradient descent with momentum.

    `velocity = momentum * velocity - learning_rate * g`, then `w += velocity`
    (Nesterov: `w += momentum * velocity - learning_rate * g`); plain `w -= learning_rate * g`
    when `momentum` is 0.
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None, **kwargs):
        # weight_decay, clipnorm, clipvalue, global_clipnorm, ...: the arguments of `Optimizer`.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not _is_number(momentum) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1]. "
                             f"Received: momentum={momentum!r}")
        self.momentum = momentum
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _update_step(self, params, grads, indices, learning_rate):
        if self.momentum == 0:
            sub_scaled_(params, grads, learning_rate)
            return
        momentum = float(self.momentum)
        velocities = self._select(self.momentums, indices)
        torch._foreach_mul_(velocities, momentum)
        sub_scaled_(velocities, grads, learning_rate)
        if self.nesterov:
            torch._foreach_add_(params, velocities, alpha=momentum)
            sub_scaled_(params, grads, learning_rate)
        else:
            torch._foreach_add_(params, velocities)

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
