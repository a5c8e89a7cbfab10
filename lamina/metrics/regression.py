"""Regression metrics: mean errors, root mean squared error, cosine similarity, log-cosh, R2."""
import torch

from lamina import backend

from lamina.losses import (_l2_normalize, _pair, _tensor, log_cosh, mean_absolute_error,
                           mean_absolute_percentage_error, mean_squared_error,
                           mean_squared_logarithmic_error, squeeze_or_expand_to_same_rank)
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric


def cosine_similarity(y_true, y_pred, axis=-1):
    """Cosine similarity along `axis` (1 for identical directions); the metric's version."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    return torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


class _NamedWrapper(MeanMetricWrapper):
    """A `MeanMetricWrapper` of a fixed function whose config is just name and dtype."""

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredError(_NamedWrapper):
    """Mean of squared errors."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)
        self._direction = "down"


class MeanAbsoluteError(_NamedWrapper):
    """Mean of absolute errors."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype=dtype)
        self._direction = "down"


class MeanAbsolutePercentageError(_NamedWrapper):
    """Mean absolute percentage error."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name, dtype=dtype)
        self._direction = "down"


class MeanSquaredLogarithmicError(_NamedWrapper):
    """Mean squared logarithmic error."""

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name, dtype=dtype)
        self._direction = "down"


class CosineSimilarity(MeanMetricWrapper):
    """Mean cosine similarity between labels and predictions along `axis`."""

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name, dtype=dtype, axis=axis)
        self.axis = axis
        self._direction = "up"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class LogCoshError(_NamedWrapper):
    """Mean logarithm of the hyperbolic cosine of the error."""

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name, dtype=dtype)
        self._direction = "down"


class RootMeanSquaredError(Mean):
    """Square root of the (weighted) mean of squared errors."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype=dtype)
        self._direction = "down"

    def update_state(self, y_true, y_pred, sample_weight=None):
        device = self._state_device()
        y_true = _tensor(y_true, self.dtype, device=device)
        y_pred = _tensor(y_pred, self.dtype, device=device)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        self._accumulate(torch.square(y_pred - y_true), sample_weight)

    def result(self):
        return torch.sqrt(Mean.result(self))


_CLASS_AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")


class R2Score(Metric):
    """Coefficient of determination, `1 - sum((y_true - y_pred)**2) / sum((y_true - mean)**2)`.

    One score per output column (the last axis of `(batch_size, output_dim)` inputs), from
    weighted sums kept on the device and created at the first batch. 1 is a perfect fit, 0 no
    better than predicting the mean, and it is negative when worse.

    Args:
        class_aggregation: how the per-column scores combine: "uniform_average" (default, their
            mean), "variance_weighted_average" (weighted by each column's variance of
            `y_true`) or None (one score per column), as scikit-learn's `multioutput`.
        num_regressors: number of independent regressors, for the adjusted R2
            `1 - (1 - R2) * (n - 1) / (n - num_regressors - 1)`, where `n` counts the target
            values seen; 0 (default) gives the plain R2. While `n - 1 <= num_regressors` the
            plain R2 is returned.
        name, dtype: the metric's name and dtype.
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._direction = "up"
        if class_aggregation not in _CLASS_AGGREGATIONS:
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             f"{_CLASS_AGGREGATIONS}. Received: "
                             f"class_aggregation={class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors}")
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.num_samples = self.add_variable(shape=(), initializer="zeros", name="num_samples")
        self._num_outputs = None  # set by `_build` at the first batch

    def _build(self, num_outputs):
        self._num_outputs = num_outputs
        shape = (num_outputs,)
        self.squared_sum = self.add_variable(shape=shape, initializer="zeros", name="squared_sum")
        self.sum = self.add_variable(shape=shape, initializer="zeros", name="sum")
        self.total_mse = self.add_variable(shape=shape, initializer="zeros", name="residual")
        self.count = self.add_variable(shape=shape, initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = self._to_state(y_true, self.dtype)
        y_pred = self._to_state(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if y_pred.ndim != 2 or y_true.ndim != 2:
            raise ValueError("R2Score expects 2D inputs with shape (batch_size, output_dim). "
                             f"Received input shapes: y_pred.shape={tuple(y_pred.shape)} and "
                             f"y_true.shape={tuple(y_true.shape)}.")
        if self._num_outputs is None:
            self._build(int(y_pred.shape[-1]))
        elif y_pred.shape[-1] != self._num_outputs:
            raise ValueError(f"R2Score was built for {self._num_outputs} outputs, but received "
                             f"y_pred.shape={tuple(y_pred.shape)}.")
        if sample_weight is None:
            weights = torch.ones_like(y_true)
        else:
            weights = self._to_state(sample_weight, self.dtype)
            if weights.ndim == 1:  # one weight a sample: give it the output axis
                weights = weights.unsqueeze(-1)
            weights = torch.broadcast_to(weights, y_true.shape)
        weighted_true = y_true * weights
        self.sum.add_(weighted_true.sum(dim=0))
        self.squared_sum.add_((y_true * weighted_true).sum(dim=0))
        self.total_mse.add_((torch.square(y_true - y_pred) * weights).sum(dim=0))
        self.count.add_(weights.sum(dim=0))
        self.num_samples.add_(y_true.numel())  # a shape, known on the host: no device read

    def result(self):
        if self._num_outputs is None:  # nothing seen: as a reset metric, whose 0 / 0 is NaN
            return torch.full((), float("nan"), dtype=backend.torch_dtype(self.dtype),
                              device=self._state_device())
        total_sum = self.sum.as_subclass(torch.Tensor)
        mean = total_sum / self.count.as_subclass(torch.Tensor)
        total = self.squared_sum.as_subclass(torch.Tensor) - total_sum * mean
        raw = 1.0 - self.total_mse.as_subclass(torch.Tensor) / total
        raw = torch.where(torch.isinf(raw), torch.zeros_like(raw), raw)
        if self.class_aggregation == "uniform_average":
            score = raw.mean()
        elif self.class_aggregation == "variance_weighted_average":
            score = (total * raw).sum() / total.sum()
        else:
            score = raw
        if self.num_regressors != 0:
            # Adjusted R2, where defined (n - 1 > p); chosen on the device, so nothing waits.
            n = self.num_samples.as_subclass(torch.Tensor)
            p = float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
            score = torch.where(n - 1.0 > p, adjusted, score)
        return score

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A fresh metric has no per-output state yet: build it from the saved sums' shape.
        key = prefix + "sum"
        if self._num_outputs is None and key in state_dict:
            self._build(int(state_dict[key].shape[0]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
