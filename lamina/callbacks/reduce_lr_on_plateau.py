"""`ReduceLROnPlateau`: lowers the learning rate when a metric plateaus."""

import warnings

import numpy as np

from lamina.callbacks.callback import _log_learning_rates
from lamina.callbacks.callback import _optimizers
from lamina.callbacks.callback import _print_msg
from lamina.callbacks.callback import _scalar
from lamina.callbacks.monitor_callback import MonitorCallback

__all__ = ["ReduceLROnPlateau"]


class ReduceLROnPlateau(MonitorCallback):
    """Reduce learning rate when a metric has stopped improving.

    After `patience` epochs without improvement of `monitor`, the learning
    rate becomes `max(lr * factor, min_lr)`, then the callback waits
    `cooldown` epochs before counting again. The current learning rate is
    logged as `learning_rate` in the epoch logs.

    Args:
        monitor: Quantity to be monitored.
        factor: Factor by which the learning rate will be reduced, `< 1`.
        patience: Number of epochs with no improvement after which the
            learning rate will be reduced.
        verbose: 0 (quiet) or 1 (update messages).
        mode: One of `{"auto", "min", "max"}`.
        min_delta: Threshold for measuring the new optimum.
        cooldown: Number of epochs to wait after a reduction before resuming
            normal operation.
        min_lr: Lower bound on the learning rate.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        **kwargs,
    ):
        if "epsilon" in kwargs:  # Keras 2 name of `min_delta`
            min_delta = kwargs.pop("epsilon")
            warnings.warn(
                "`epsilon` argument is deprecated, use `min_delta` instead.",
                stacklevel=2,
            )
        if kwargs:
            raise TypeError(
                "ReduceLROnPlateau got unexpected keyword arguments: "
                f"{sorted(kwargs)}"
            )
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(
                "ReduceLROnPlateau does not support a factor >= 1.0. "
                f"Received factor={factor}"
            )
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def _reduce(self, name, optimizer, epoch):
        old_lr = _scalar(optimizer.learning_rate)
        if old_lr <= np.float32(self.min_lr):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        optimizer.learning_rate = new_lr
        if self.verbose > 0:
            name_str = f" {name}" if name else ""
            _print_msg(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing"
                f"{name_str} learning rate to {new_lr}."
            )
        return True

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        _log_learning_rates(self.model, logs)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                "Learning rate reduction is conditioned on metric "
                f"`{self.monitor}` which is not available. Available metrics "
                f"are: {','.join(list(logs.keys()))}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                reduced = False
                for name, opt in _optimizers(self.model):
                    reduced = self._reduce(name, opt, epoch) or reduced
                if reduced:
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
