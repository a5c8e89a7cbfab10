"""`LearningRateScheduler`: sets the learning rate from a schedule per epoch."""

import inspect
import numbers

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _log_learning_rates
from lamina.callbacks.callback import _optimizers
from lamina.callbacks.callback import _print_msg
from lamina.callbacks.callback import _scalar

__all__ = ["LearningRateScheduler"]


def _takes_two_args(fn):
    """Whether `fn(epoch, lr)` is the call to make (None: unknown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    positional = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 2


class LearningRateScheduler(Callback):
    """Learning rate scheduler.

    At the beginning of every epoch, sets the optimizer's learning rate to
    `schedule(epoch, lr)` (or `schedule(epoch)` for one-argument schedules),
    with `epoch` counted from 0 and `lr` the current learning rate as a
    float. The learning rate is logged as `learning_rate` in the epoch logs.

    Args:
        schedule: A function of the epoch index (and the current learning
            rate) returning the new learning rate as a float.
        verbose: 0 (quiet) or 1 (update messages).
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(
                "`schedule` must be a callable `schedule(epoch, lr)`. "
                f"Received: schedule={schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def _new_lr(self, optimizer, epoch):
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        two = _takes_two_args(self.schedule)
        if two is None:
            try:  # new API
                lr = self.schedule(epoch, _scalar(optimizer.learning_rate))
            except TypeError:  # old API, schedule(epoch)
                lr = self.schedule(epoch)
        elif two:
            lr = self.schedule(epoch, _scalar(optimizer.learning_rate))
        else:
            lr = self.schedule(epoch)
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool):
            try:
                lr = _scalar(lr)  # 0-d tensors and arrays
            except (TypeError, ValueError):
                raise ValueError(
                    "The output of the `schedule` function should be a float. "
                    f"Got: {lr}"
                ) from None
        return float(lr)

    def on_epoch_begin(self, epoch, logs=None):
        for name, opt in _optimizers(self.model):
            lr = self._new_lr(opt, epoch)
            opt.learning_rate = lr
            if self.verbose > 0:
                which = f"{name} " if name else ""
                _print_msg(
                    f"\nEpoch {epoch + 1}: LearningRateScheduler setting "
                    f"{which}learning rate to {lr}."
                )

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            _log_learning_rates(self.model, logs)
