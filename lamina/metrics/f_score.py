"""F-scores: `FBetaScore` and its beta = 1 case `F1Score`.

Per-class counts of true positives, false positives and false negatives (and the support, the
weighted number of true labels) accumulate in place on the device. The counts are created from
the first batch, once the number of classes is known (one scalar each with `average="micro"`).
"""
import torch

from lamina import backend
from lamina.metrics.base import Metric

_AVERAGES = (None, "micro", "macro", "weighted")
_STATE_NAMES = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")


def _check_2d(metric_name, y_true, y_pred):
    """Both inputs must be `(batch_size, output_dim)` (a shape check, never a value read)."""
    if y_pred.ndim != 2 or y_true.ndim != 2:
        raise ValueError(f"{metric_name} expects 2D inputs with shape (batch_size, output_dim). "
                         f"Received input shapes: y_pred.shape={tuple(y_pred.shape)} and "
                         f"y_true.shape={tuple(y_true.shape)}.")


def _broadcast_weights(sample_weight, shape):
    """Per-element weights: a scalar, one weight a sample `(batch,)` or `(batch, 1)`, or one
    per element `(batch, output_dim)`, broadcast to `shape`."""
    if sample_weight.ndim == 1:
        sample_weight = sample_weight.unsqueeze(-1)
    return torch.broadcast_to(sample_weight, shape)


class FBetaScore(Metric):
    """F-beta score, the weighted harmonic mean of precision and recall.

    `(1 + beta**2) * precision * recall / (beta**2 * precision + recall)`, between 0 and 1, for
    multi-class and multi-label data of shape `(batch_size, num_classes)`.

    Args:
        average: None (default: one score per class), "micro" (one score from the counts of
            all classes pooled), "macro" (the unweighted mean of the per-class scores) or
            "weighted" (their mean weighted by each class's support, its number of true labels).
        beta: a Python float > 0, how much more recall weighs than precision (default 1.0).
        threshold: a Python float in (0, 1]: predictions above it count as positive. None
            (default) marks the largest prediction of each sample as positive (unless it is 0).
        name, dtype: the metric's name and the dtype of its state and result.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if average not in _AVERAGES:
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             "{None, 'micro', 'macro', 'weighted'}. "
                             f"Received: average={average!r}")
        if not isinstance(beta, float):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta!r} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError("Invalid `beta` argument value. It should be > 0. "
                             f"Received: beta={beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold!r} of type "
                                 f"'{type(threshold)}'")
            if not 0.0 < threshold <= 1.0:
                raise ValueError("Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold}")
        self.average = average
        self.beta = beta
        self.threshold = threshold
        # Counts are summed over the batch axis only, or over everything for "micro".
        self.axis = None if average == "micro" else 0
        self._num_classes = None
        self._built = False

    def _build(self, num_classes):
        self._num_classes = num_classes
        shape = () if self.average == "micro" else (num_classes,)
        for state_name in _STATE_NAMES:
            setattr(self, state_name, self.add_variable(shape=shape, initializer="zeros",
                                                        dtype=self.dtype, name=state_name))
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = self._to_state(y_true, self.dtype)
        y_pred = self._to_state(y_pred, self.dtype)
        _check_2d(type(self).__name__, y_true, y_pred)
        if not self._built:
            self._build(int(y_pred.shape[-1]))
        elif self.axis is not None and y_pred.shape[-1] != self._num_classes:
            raise ValueError(f"{type(self).__name__} was built for {self._num_classes} classes, "
                             f"but received y_pred.shape={tuple(y_pred.shape)}.")
        if self.threshold is None:
            # The largest score of each row is the prediction; an all-zero row predicts nothing.
            top = torch.amax(y_pred, dim=-1, keepdim=True)
            predicted = (y_pred >= top) & (torch.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.to(y_pred.dtype)
        weights = None
        if sample_weight is not None:
            weights = _broadcast_weights(self._to_state(sample_weight, self.dtype), y_true.shape)

        def weighted_sum(values):
            if weights is not None:
                values = values * weights
            return values.sum() if self.axis is None else values.sum(dim=self.axis)

        self.true_positives.add_(weighted_sum(predicted * y_true))
        self.false_positives.add_(weighted_sum(predicted * (1.0 - y_true)))
        self.false_negatives.add_(weighted_sum((1.0 - predicted) * y_true))
        self.intermediate_weights.add_(weighted_sum(y_true))

    def result(self):
        if not self._built:  # nothing seen yet: no class count to shape a result by
            return torch.zeros((), dtype=backend.torch_dtype(self.dtype),
                               device=self._state_device())
        eps = backend.epsilon()
        tp = self.true_positives.as_subclass(torch.Tensor)
        fp = self.false_positives.as_subclass(torch.Tensor)
        fn = self.false_negatives.as_subclass(torch.Tensor)
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        beta2 = self.beta ** 2
        score = (1.0 + beta2) * (precision * recall) / (beta2 * precision + recall + eps)
        if self.average == "weighted":
            support = self.intermediate_weights.as_subclass(torch.Tensor)
            score = torch.sum(score * (support / (support.sum() + eps)))
        elif self.average is not None:  # "micro" (already a scalar) or "macro"
            score = torch.mean(score)
        return score

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh metric has no state yet: build it from the saved counts' shape first.
        key = prefix + "true_positives"
        if not self._built and key in state_dict:
            shape = tuple(state_dict[key].shape)
            self._build(int(shape[0]) if shape else None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score, `2 * precision * recall / (precision + recall)`: `FBetaScore` with beta = 1.

    Args:
        average: None (per-class scores), "micro", "macro" or "weighted"; see `FBetaScore`.
        threshold: None (the largest prediction of each sample is positive) or a Python
            float in (0, 1] above which a prediction is positive.
        name, dtype: the metric's name and dtype.
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config
