"""Confusion-matrix metrics: TruePositives..., Precision, Recall and AUC.

Counts are accumulated per threshold on the device. Evenly spaced thresholds (AUC's default)
use Keras's bucketed algorithm: one scatter-add into `num_thresholds` buckets and a reverse
cumulative sum, instead of comparing every prediction with every threshold.
"""
import math

import numpy as np
import torch

from lamina import backend
from lamina.losses import _divide_no_nan, _tensor, squeeze_or_expand_to_same_rank
from lamina.metrics.base import Metric

NEG_INF = -1e10
TRUE_POSITIVES, FALSE_POSITIVES = "tp", "fp"
TRUE_NEGATIVES, FALSE_NEGATIVES = "tn", "fn"
_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


def parse_init_thresholds(thresholds, default_threshold=0.5):
    """`thresholds` as a list of floats in [0, 1] (the default when None)."""
    if thresholds is None:
        return [float(default_threshold)]
    values = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    invalid = [t for t in values if t is None or t < 0 or t > 1]
    if invalid:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {invalid}")
    return [float(t) for t in values]


def is_evenly_distributed_thresholds(thresholds):
    """Whether `thresholds` are `i / (n - 1)` for `i` in `0..n-1` (n >= 3)."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=backend.epsilon()))


def _filter_top_k(x, k):
    """Keep the `k` largest entries along the last axis; the others become NEG_INF."""
    indices = torch.topk(x, k, dim=-1).indices
    mask = torch.zeros_like(x).scatter_(-1, indices, 1.0)
    return x * mask + NEG_INF * (1 - mask)


def _reverse_cumsum(x):
    return torch.flip(torch.cumsum(torch.flip(x, (0,)), dim=0), (0,))


def _update_bucketed(variables, y_true, y_pred, num_thresholds, multi_label, sample_weight,
                     label_weights, thresholds_with_epsilon):
    weights = None
    if sample_weight is not None:
        weights = torch.broadcast_to(sample_weight.to(y_pred.dtype), y_pred.shape)
    if label_weights is not None:
        label_weights = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape)
        weights = label_weights if weights is None else weights * label_weights
    y_pred = torch.clamp(y_pred, 0.0, 1.0)
    y_true = (y_true != 0).to(y_pred.dtype)
    if not multi_label:
        y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
        weights = None if weights is None else weights.reshape(-1)
    true_labels = y_true if weights is None else y_true * weights
    false_labels = (1.0 - y_true) if weights is None else (1.0 - y_true) * weights
    # Prediction p is above threshold i/(n-1) exactly when ceil(p * (n-1)) - 1 >= i.
    buckets = torch.ceil(y_pred * (num_thresholds - 1)) - 1
    if thresholds_with_epsilon:
        buckets = torch.relu(buckets)
    buckets = buckets.long()
    # Out-of-range buckets (-1: at or below the first threshold) go to a dropped extra slot.
    buckets = torch.where((buckets >= 0) & (buckets < num_thresholds), buckets,
                          torch.full_like(buckets, num_thresholds))
    if multi_label:
        num_labels = y_pred.shape[-1]
        index = (buckets * num_labels + torch.arange(num_labels, device=buckets.device)).reshape(-1)
        shape = (num_thresholds + 1, num_labels)
    else:
        index, shape = buckets, (num_thresholds + 1,)

    def bucket_sums(data):
        out = torch.zeros(math.prod(shape), dtype=data.dtype, device=data.device)
        out.index_add_(0, index, data.reshape(-1))
        return out.reshape(shape)[:num_thresholds]

    tp = _reverse_cumsum(bucket_sums(true_labels))
    fp = _reverse_cumsum(bucket_sums(false_labels))
    if TRUE_POSITIVES in variables:
        variables[TRUE_POSITIVES].add_(tp)
    if FALSE_POSITIVES in variables:
        variables[FALSE_POSITIVES].add_(fp)
    if TRUE_NEGATIVES in variables:
        variables[TRUE_NEGATIVES].add_(false_labels.sum(0) - fp)
    if FALSE_NEGATIVES in variables:
        variables[FALSE_NEGATIVES].add_(true_labels.sum(0) - tp)


def _update_tiled(variables, y_true, y_pred, thresholds, multi_label, sample_weight, label_weights):
    if multi_label:
        preds, labels = y_pred.unsqueeze(0), (y_true != 0).unsqueeze(0)
        thresholds = thresholds.reshape(-1, 1, 1)
    else:
        preds, labels = y_pred.reshape(1, -1), (y_true != 0).reshape(1, -1)
        thresholds = thresholds.reshape(-1, 1)
    weights = None
    if sample_weight is not None:
        weights = torch.broadcast_to(sample_weight.to(y_pred.dtype), y_pred.shape)
        weights = weights.reshape(preds.shape)
    if label_weights is not None and not multi_label:
        lw = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape).reshape(preds.shape)
        weights = lw if weights is None else weights * lw
    pred_is_pos = preds > thresholds

    def count(cond):
        if weights is None:
            return cond.sum(1).to(y_pred.dtype)
        return torch.where(cond, weights, torch.zeros_like(weights)).sum(1)

    if TRUE_POSITIVES in variables:
        variables[TRUE_POSITIVES].add_(count(labels & pred_is_pos))
    if FALSE_POSITIVES in variables:
        variables[FALSE_POSITIVES].add_(count(~labels & pred_is_pos))
    if TRUE_NEGATIVES in variables:
        variables[TRUE_NEGATIVES].add_(count(~labels & ~pred_is_pos))
    if FALSE_NEGATIVES in variables:
        variables[FALSE_NEGATIVES].add_(count(labels & ~pred_is_pos))


def update_confusion_matrix_variables(variables, y_true, y_pred, thresholds, top_k=None,
                                      class_id=None, sample_weight=None, multi_label=False,
                                      label_weights=None, thresholds_distributed_evenly=False,
                                      thresholds_tensor=None):
    """Add this batch's weighted tp/fp/tn/fn counts per threshold to `variables`, in place.

    `variables` maps "tp", "fp", "tn", "fn" to state tensors of shape `(num_thresholds,)`
    (or `(num_thresholds, num_labels)` with `multi_label`). A prediction is positive at a
    threshold when it is strictly greater than it.
    """
    if multi_label and label_weights is not None:
        raise ValueError("`label_weights` for multilabel data should be handled outside of "
                         "`update_confusion_matrix_variables` when `multi_label` is True.")
    invalid = [k for k in variables if k not in (TRUE_POSITIVES, FALSE_POSITIVES,
                                                 TRUE_NEGATIVES, FALSE_NEGATIVES)]
    if invalid or not variables:
        raise ValueError(f"Invalid keys: {invalid}. "
                         "Valid variable keys are 'tp', 'fp', 'tn', 'fn'.")
    state = next(iter(variables.values()))
    dtype, device = state.dtype, state.device
    y_true = _tensor(y_true, dtype, device=device)
    y_pred = _tensor(y_pred, dtype, device=device)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = _tensor(sample_weight, dtype, device=device).unsqueeze(-1)
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight,
                                                          expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes), found shape: {tuple(y_pred.shape)}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if label_weights is not None:
        label_weights = label_weights.to(device=device, dtype=dtype)
    if thresholds_distributed_evenly:
        with_epsilon = thresholds[0] < 0.0 or thresholds[-1] > 1.0
        return _update_bucketed(variables, y_true, y_pred, len(thresholds), multi_label,
                                sample_weight, label_weights, with_epsilon)
    if thresholds_tensor is None:
        thresholds_tensor = torch.tensor(thresholds, dtype=dtype, device=device)
    thresholds_tensor = thresholds_tensor.to(device=device, dtype=dtype)
    return _update_tiled(variables, y_true, y_pred, thresholds_tensor, multi_label, sample_weight,
                         label_weights)


class _ThresholdedMetric(Metric):
    """Holds parsed thresholds, and a device copy of them, for the confusion metrics."""

    def _set_thresholds(self, thresholds, default_threshold=0.5):
        self.thresholds = parse_init_thresholds(thresholds, default_threshold)
        self._thresholds_distributed_evenly = is_evenly_distributed_thresholds(self.thresholds)
        self.register_buffer("_threshold_values", torch.tensor(
            self.thresholds, dtype=backend.torch_dtype(self.dtype), device=self._state_device()),
            persistent=False)


class _ConfusionMatrixConditionCount(_ThresholdedMetric):
    def __init__(self, confusion_matrix_cond, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._confusion_matrix_cond = confusion_matrix_cond
        self.init_thresholds = thresholds
        self._set_thresholds(thresholds)
        self.accumulator = self.add_variable(shape=(len(self.thresholds),), initializer="zeros",
                                             name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None):
        update_confusion_matrix_variables(
            {self._confusion_matrix_cond: self.accumulator}, y_true, y_pred, self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight, thresholds_tensor=self._threshold_values)

    def result(self):
        values = self.accumulator.as_subclass(torch.Tensor).clone()
        return values[0] if len(self.thresholds) == 1 else values

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of true positives (per threshold)."""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(TRUE_POSITIVES, thresholds=thresholds, name=name, dtype=dtype)


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of false positives (per threshold)."""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(FALSE_POSITIVES, thresholds=thresholds, name=name, dtype=dtype)


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of true negatives (per threshold)."""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(TRUE_NEGATIVES, thresholds=thresholds, name=name, dtype=dtype)


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of false negatives (per threshold)."""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(FALSE_NEGATIVES, thresholds=thresholds, name=name, dtype=dtype)


class _PrecisionRecall(_ThresholdedMetric):
    _other = None  # "fp" for precision, "fn" for recall
    _other_name = None

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self._set_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self.true_positives = self.add_variable(shape=(len(self.thresholds),),
                                                initializer="zeros", name="true_positives")
        self.add_variable(shape=(len(self.thresholds),), initializer="zeros",
                          name=self._other_name)

    def update_state(self, y_true, y_pred, sample_weight=None):
        update_confusion_matrix_variables(
            {TRUE_POSITIVES: self.true_positives, self._other: getattr(self, self._other_name)},
            y_true, y_pred, self.thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly, top_k=self.top_k,
            class_id=self.class_id, sample_weight=sample_weight,
            thresholds_tensor=self._threshold_values)

    def result(self):
        tp = self.true_positives.as_subclass(torch.Tensor)
        other = getattr(self, self._other_name).as_subclass(torch.Tensor)
        result = _divide_no_nan(tp, tp + other)
        return result[0] if len(self.thresholds) == 1 else result

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """`tp / (tp + fp)`: how many predicted positives are positive.

    Args:
        thresholds: float or list of floats in [0, 1]; a prediction above one is positive
            (default 0.5, or "any of the top k" with `top_k`). A list gives one value each.
        top_k: only the `k` largest predictions of each sample count as positive.
        class_id: only this class (last axis index) is considered.
    """

    _other, _other_name = FALSE_POSITIVES, "false_positives"


class Recall(_PrecisionRecall):
    """`tp / (tp + fn)`: how many positives are predicted positive. Same arguments as Precision."""

    _other, _other_name = FALSE_NEGATIVES, "false_negatives"


class AUC(Metric):
    """Approximate area under the ROC or PR curve, from counts at `num_thresholds` thresholds.

    Args:
        num_thresholds: number of thresholds (evenly spaced in [0, 1]); default 200.
        curve: "ROC" (default), "PR" or "PRGAIN".
        summation_method: "interpolation" (default; for PR, Davis & Goadrich's interpolation),
            "minoring" or "majoring".
        thresholds: explicit thresholds instead of `num_thresholds`.
        multi_label: one curve per label (averaged with `label_weights`) instead of treating
            every label as a separate sample.
        from_logits: apply a sigmoid to predictions first.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            thresholds = sorted(float(t) for t in thresholds)
            self._thresholds_distributed_evenly = is_evenly_distributed_thresholds(
                np.array([0.0] + thresholds + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        # End points just outside [0, 1] absorb floating point imprecision.
        self._thresholds = [0.0 - backend.epsilon()] + thresholds + [1.0 + backend.epsilon()]
        curve_key = str(getattr(curve, "value", curve)).lower()
        if curve_key not in _CURVES:
            raise ValueError(f'Invalid AUC curve value: "{curve}". '
                             'Expected values are ["PR", "ROC", "PRGAIN"]')
        self.curve = _CURVES[curve_key]
        method = str(getattr(summation_method, "value", summation_method)).lower()
        if method not in _SUMMATIONS:
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             'Expected values are ["interpolation", "majoring", "minoring"]')
        self.summation_method = method
        self.multi_label = multi_label
        self.num_labels = num_labels
        self._from_logits = from_logits
        if label_weights is not None:
            label_weights = _tensor(label_weights, self.dtype, device=self._state_device())
        self.register_buffer("label_weights", label_weights, persistent=False)
        self.register_buffer("_threshold_values", torch.tensor(
            self._thresholds, dtype=backend.torch_dtype(self.dtype), device=self._state_device()),
            persistent=False)
        self._built = False
        if multi_label:
            if num_labels:
                self._build([None, num_labels])
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _build(self, shape):
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError("`y_pred` must have rank 2 when `multi_label=True`. Found rank "
                                 f"{len(shape)}. Full shape received for `y_pred`: {tuple(shape)}")
            self._num_labels = shape[1]
            variable_shape = (self.num_thresholds, self._num_labels)
        else:
            variable_shape = (self.num_thresholds,)
        self._build_input_shape = shape
        for var_name in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            self.add_variable(shape=variable_shape, initializer="zeros", name=var_name)
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = self._to_state(y_pred)
        if not self._built:
            self._build(tuple(y_pred.shape))
        if self._from_logits:
            y_pred = torch.sigmoid(y_pred)
        update_confusion_matrix_variables(
            {TRUE_POSITIVES: self.true_positives, TRUE_NEGATIVES: self.true_negatives,
             FALSE_POSITIVES: self.false_positives, FALSE_NEGATIVES: self.false_negatives},
            y_true, y_pred, self._thresholds,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            sample_weight=sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
            thresholds_tensor=self._threshold_values)

    def _average(self, per_threshold_terms):
        if not self.multi_label:
            return per_threshold_terms.sum()
        by_label = per_threshold_terms.sum(0)
        if self.label_weights is None:
            return by_label.mean()
        return _divide_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum())

    def interpolate_pr_auc(self):
        """PR-AUC with Davis & Goadrich (2006) interpolation between thresholds."""
        n = self.num_thresholds
        tp = self.true_positives.as_subclass(torch.Tensor)
        fp = self.false_positives.as_subclass(torch.Tensor)
        fn = self.false_negatives.as_subclass(torch.Tensor)
        dtp = tp[:n - 1] - tp[1:]
        p = tp + fp
        dp = p[:n - 1] - p[1:]
        prec_slope = _divide_no_nan(dtp, torch.clamp(dp, min=0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = torch.where((p[:n - 1] > 0) & (p[1:] > 0),
                                   _divide_no_nan(p[:n - 1], torch.clamp(p[1:], min=0)),
                                   torch.ones_like(p[1:]))
        increments = _divide_no_nan(prec_slope * (dtp + intercept * torch.log(safe_p_ratio)),
                                    torch.clamp(tp[1:] + fn[1:], min=0))
        return self._average(increments)

    def result(self):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self.interpolate_pr_auc()
        n = self.num_thresholds
        tp = self.true_positives.as_subclass(torch.Tensor)
        fp = self.false_positives.as_subclass(torch.Tensor)
        tn = self.true_negatives.as_subclass(torch.Tensor)
        fn = self.false_negatives.as_subclass(torch.Tensor)
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, _divide_no_nan(tp, tp + fp)
        else:  # PRGAIN
            scaling = _divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scaling * _divide_no_nan(fn, tp)
            precision_gain = 1.0 - scaling * _divide_no_nan(fp, tp)
            recall_gain = torch.where(tp == 0, torch.zeros_like(recall_gain), recall_gain)
            precision_gain = torch.where(tp == 0, torch.ones_like(precision_gain), precision_gain)
            x, y = torch.clamp(recall_gain, min=0.0), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[:n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[:n - 1], y[1:])
        else:
            heights = torch.maximum(y[:n - 1], y[1:])
        return self._average((x[:n - 1] - x[1:]) * heights)

    def reset_state(self):
        if self._built:
            for variable in self.variables:
                variable.zero_()

    def get_config(self):
        label_weights = self.label_weights
        config = {
            "num_thresholds": self.num_thresholds, "curve": self.curve,
            "summation_method": self.summation_method, "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": None if label_weights is None else label_weights.tolist(),
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return {**super().get_config(), **config}
