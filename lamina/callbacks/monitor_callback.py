"""`MonitorCallback`: shared base of callbacks that watch one metric."""

import operator
import warnings

from lamina.callbacks.callback import Callback

__all__ = ["MonitorCallback"]

# Used for mode="auto" when the model's metric objects don't say which way
# is better (Keras reads `metric._direction`).
_UP = (
    "acc",
    "accuracy",
    "auc",
    "precision",
    "recall",
    "f1_score",
    "fbeta_score",
    "iou",
    "r2_score",
    "true_positives",
    "true_negatives",
    "cosine_similarity",
)
_DOWN = (
    "loss",
    "error",
    "crossentropy",
    "hinge",
    "false_positives",
    "false_negatives",
    "divergence",
    "mae",
    "mse",
    "mape",
    "msle",
    "poisson",
    "logcosh",
)


def _guess_direction(name):
    lowered = name.lower()
    for suffix in _DOWN:
        if lowered == suffix or lowered.endswith("_" + suffix):
            return "down"
    for suffix in _UP:
        if lowered == suffix or lowered.endswith("_" + suffix):
            return "up"
    if lowered.endswith("accuracy") or lowered.endswith("_acc"):
        return "up"
    return None


def _iter_metrics(metrics, depth=0):
    for metric in metrics or ():
        yield metric
        inner = getattr(metric, "metrics", None)
        if depth < 3 and isinstance(inner, (list, tuple)):
            yield from _iter_metrics(inner, depth + 1)


class MonitorCallback(Callback):
    """Base class for callbacks that monitor a quantity for improvement.

    Args:
        monitor: Quantity to be monitored. Defaults to `"val_loss"`.
        mode: One of `{"auto", "min", "max"}`. In `"auto"` mode the direction
            is inferred from the name of the monitored quantity.
        baseline: Initial "best" value; `None` uses the first value seen.
        min_delta: Minimum absolute change that counts as an improvement.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{self.__class__.__name__} mode '{mode}' is unknown "
                "(expected 'auto', 'min' or 'max'), fallback to auto mode.",
                stacklevel=2,
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _direction_from_model(self, name):
        try:
            metrics = getattr(self.model, "metrics", None)
        except Exception:  # a model may refuse before it is compiled
            metrics = None
        for metric in _iter_metrics(metrics):
            if getattr(metric, "name", None) == name:
                direction = getattr(metric, "_direction", None)
                if direction in ("up", "down"):
                    return direction
        return None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor
            if name.startswith("val_"):
                name = name[len("val_"):]
            direction = "down" if name == "loss" else None
            direction = self._direction_from_model(name) or direction
            direction = direction or _guess_direction(name)
            if direction is None:
                raise ValueError(
                    f"{self.__class__.__name__} callback received "
                    f"monitor={self.monitor}, but lamina isn't able to "
                    "automatically determine whether that metric should be "
                    "maximized or minimized. Pass `mode='max'` in order to "
                    "monitor based on the highest metric value, or pass "
                    "`mode='min'` in order to use the lowest value."
                )
            self.monitor_op = operator.lt if direction == "down" else operator.gt
        if self.monitor_op is operator.lt:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))
