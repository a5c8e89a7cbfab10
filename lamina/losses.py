"""Loss functions and `Loss` classes, as in `keras.losses`, computed with torch ops.

Functions take `(y_true, y_pred)` and return per-sample values (reduced over the last axis where
Keras does); classes add the reduction and sample weighting:

>>> loss = CategoricalCrossentropy(from_logits=True)
>>> loss(y_true, logits, sample_weight=w)      # 0-d tensor, "sum_over_batch_size"
"""
import inspect
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from lamina import backend
from lamina.saving import object_registration, serialization_lib

_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


# --------------------------------------------------------------------------------------------
# Tensor helpers (shared with lamina.metrics)
# --------------------------------------------------------------------------------------------
def _tensor(x, dtype=None, like=None, device=None):
    """`x` as a torch tensor (cast to `dtype`, on `like`'s device or `device` when given)."""
    if device is None and like is not None:
        device = like.device
    if isinstance(dtype, str):
        dtype = backend.torch_dtype(dtype)
    if isinstance(x, torch.Tensor):
        if device is not None and x.device != device:
            x = x.to(device)
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)
        return x
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
        if dtype is None and x.dtype == np.float64:
            x = x.astype(backend.floatx())
    return torch.as_tensor(x, dtype=dtype, device=device)


def _divide_no_nan(x, y):
    """`x / y`, with 0 wherever `y == 0` (no host sync)."""
    if not isinstance(y, torch.Tensor):
        return x / y if y else x * 0
    return torch.where(y == 0, torch.zeros_like(x), x / torch.where(y == 0, torch.ones_like(y), y))


def _compute_dtype(dtype):
    """Keras dtype (or dtype policy) -> compute dtype name."""
    if dtype is None:
        return backend.floatx()
    if hasattr(dtype, "compute_dtype"):
        return dtype.compute_dtype
    if isinstance(dtype, str) and dtype.startswith("mixed_"):
        return dtype[len("mixed_"):]
    return backend.standardize_dtype(dtype)


def _keras_mask(x):
    return getattr(x, "_keras_mask", None)


def _set_keras_mask(x, mask):
    try:
        x._keras_mask = mask
    except (AttributeError, RuntimeError):
        pass


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Squeeze/expand the last axis when the ranks differ by exactly 1 (Keras rule)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def _align_weights(weights, values):
    """Give per-sample `weights` of shape (N,) trailing unit axes against `values` (N, T, ...).

    Weights that already broadcast from the right (Keras 3) are left alone unless their shape
    is the leading part of `values`' shape, which is the per-sample case of Keras 2.
    """
    if weights.ndim < values.ndim and weights.ndim > 0 \
            and tuple(weights.shape) == tuple(values.shape[:weights.ndim]):
        weights = weights.reshape(tuple(weights.shape) + (1,) * (values.ndim - weights.ndim))
    return weights


def standardize_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError("Invalid value for argument `reduction`. Expected one of "
                         f"{set(_REDUCTIONS)}. Received: reduction={reduction!r}")
    return reduction


def apply_mask(sample_weight, mask, dtype, reduction):
    """Fold a boolean mask into the sample weights, as Keras does."""
    if mask is None:
        return sample_weight
    dtype = backend.torch_dtype(dtype)
    mask = _tensor(mask)
    if reduction in ("mean", "sum_over_batch_size"):
        # Valid entries get total/valid so that dividing by the total gives a mean over valid.
        valid = mask.to(dtype).sum()
        mask_weight = _divide_no_nan(torch.full_like(valid, mask.numel()), valid)
        float_mask = torch.where(mask.bool(), mask_weight, torch.zeros_like(mask_weight))
    else:
        float_mask = mask.to(dtype)
    if sample_weight is None:
        return float_mask
    sample_weight = _tensor(sample_weight, dtype, like=float_mask)
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight)
    return _align_weights(sample_weight, float_mask) * float_mask


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    if reduction is None or reduction == "none" or values.ndim == 0 or tuple(values.shape) == (0,):
        return values
    if reduction == "sum":
        return values.sum()
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(values.sum(), sample_weight.sum().to(values.dtype))
    # sum / number of elements (0 for an empty batch), in one kernel.
    return values.mean() if values.numel() else values.sum()


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None):
    """Weight `values` by `sample_weight` and `mask`, then reduce them (Keras 3 rules)."""
    reduction = standardize_reduction(reduction)
    values = _tensor(values, dtype)
    if sample_weight is not None:
        sample_weight = _tensor(sample_weight, values.dtype, like=values)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        sample_weight = sample_weight.to(values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * _align_weights(sample_weight, values)
    return reduce_values(values, sample_weight, reduction)


def _pair(y_true, y_pred):
    y_pred = _tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(backend.torch_dtype(backend.floatx()))
    y_true = _tensor(y_true, y_pred.dtype, like=y_pred)
    return y_true, y_pred


def _eps():
    return backend.epsilon()


def _l2_normalize(x, axis=-1):
    if x.ndim == 0:
        x = x.unsqueeze(0)
    inv_norm = torch.rsqrt(torch.sum(x * x, dim=axis, keepdim=True))
    return x * torch.clamp(inv_norm, max=1.0 / _eps())


def _check_axis(axis):
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError("`axis` must be of type `int`. "
                         f"Received: axis={axis!r} of type {type(axis)}")


# --------------------------------------------------------------------------------------------
# Loss functions
# --------------------------------------------------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """`mean(square(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true, y_pred):
    """`mean(abs(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """`100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    diff = torch.abs((y_true - y_pred) / torch.clamp(torch.abs(y_true), min=_eps()))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    """`mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)`, inputs floored at epsilon."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    first_log = torch.log(torch.clamp(y_pred, min=_eps()) + 1.0)
    second_log = torch.log(torch.clamp(y_true, min=_eps()) + 1.0)
    return torch.mean(torch.square(first_log - second_log), dim=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity along `axis` (-1 for identical directions)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    return -torch.sum(_l2_normalize(y_true, axis) * _l2_normalize(y_pred, axis), dim=axis)


def huber(y_true, y_pred, delta=1.0):
    """Quadratic for `|error| <= delta`, linear beyond; mean over the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    error = y_pred - y_true
    abs_error = torch.abs(error)
    linear = delta * abs_error - 0.5 * delta * delta
    return torch.mean(torch.where(abs_error <= delta, 0.5 * torch.square(error), linear), dim=-1)


def log_cosh(y_true, y_pred):
    """`mean(log(cosh(y_pred - y_true)), axis=-1)`, computed stably."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_pair(y_true, y_pred))
    x = y_pred - y_true
    return torch.mean(x + F.softplus(x * -2.0) - math.log(2.0), dim=-1)


def kl_divergence(y_true, y_pred):
    """`sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped to [epsilon, 1]."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = torch.clamp(y_true, _eps(), 1.0)
    y_pred = torch.clamp(y_pred, _eps(), 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true, y_pred):
    """`mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(y_pred - y_true * torch.log(y_pred + _eps()), dim=-1)


def _hinge_labels(y_true):
    """{0, 1} labels become {-1, 1}; any other labels are left unchanged (no host sync)."""
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true, y_pred):
    """`mean(maximum(1 - y_true * y_pred, 0), axis=-1)`; {0, 1} labels are mapped to {-1, 1}."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.clamp(1.0 - y_true * y_pred, min=0.0), dim=-1)


def squared_hinge(y_true, y_pred):
    """`mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return torch.mean(torch.square(torch.clamp(1.0 - y_true * y_pred, min=0.0)), dim=-1)


def categorical_hinge(y_true, y_pred):
    """`maximum(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`."""
    y_true, y_pred = _pair(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp(neg - pos + 1.0, min=0.0)


def _warn_single_class(fn_name, y_pred):
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn(f"In loss {fn_name}, expected y_pred.shape to be (batch_size, num_classes) "
                      f"with num_classes > 1. Received: y_pred.shape={tuple(y_pred.shape)}. "
                      "Consider using 'binary_crossentropy' if you only have 2 classes.",
                      SyntaxWarning, stacklevel=3)


def _smooth_categorical(y_true, label_smoothing):
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_true.shape[-1]
    return y_true


def _check_same_shape(y_true, y_pred):
    if y_true.shape != y_pred.shape:
        raise ValueError("Arguments `target` and `output` must have the same shape. Received: "
                         f"target.shape={tuple(y_true.shape)}, output.shape={tuple(y_pred.shape)}")


def _logits_of(y_pred, from_logits):
    """Probabilities straight from a softmax/sigmoid activation carry their logits
    (`_keras_logits`, as in Keras's TensorFlow backend): use them with the fused kernels."""
    logits = getattr(y_pred, "_keras_logits", None)
    if not from_logits and logits is not None:
        return logits, True
    return y_pred, from_logits


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Crossentropy between one-hot (or soft) labels and predictions along `axis`.

    Probabilities are renormalised to sum to 1 and clipped to [epsilon, 1 - epsilon];
    logits go through torch's fused `F.cross_entropy`.
    """
    _check_axis(axis)
    y_pred, from_logits = _logits_of(y_pred, from_logits)
    y_true, y_pred = _pair(y_true, y_pred)
    _warn_single_class("categorical_crossentropy", y_pred)
    y_true = _smooth_categorical(y_true, label_smoothing)
    _check_same_shape(y_true, y_pred)
    if y_pred.ndim < 1:
        raise ValueError("Arguments `target` and `output` must be at least rank 1. Received: "
                         f"target.shape={tuple(y_true.shape)}, output.shape={tuple(y_pred.shape)}")
    if from_logits:
        if y_pred.ndim > 1:
            class_axis = axis % y_pred.ndim
            y_pred, y_true = y_pred.movedim(class_axis, 1), y_true.movedim(class_axis, 1)
        return F.cross_entropy(y_pred, y_true, reduction="none")
    output = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
    output = torch.clamp(output, _eps(), 1.0 - _eps())
    return -torch.sum(y_true * torch.log(output), dim=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Crossentropy between integer labels and predictions along `axis`.

    Labels of shape `(N,)` or `(N, 1)` (int or float) are accepted. With `ignore_class`, those
    entries give 0 and a mask so that the reduction averages over the other entries only.
    """
    _check_axis(axis)
    y_pred, from_logits = _logits_of(y_pred, from_logits)
    y_pred = _tensor(y_pred)
    y_true = _tensor(y_true, like=y_pred)
    if y_pred.ndim < 1:
        raise ValueError("Argument `output` must be at least rank 1. "
                         f"Received: output.shape={tuple(y_pred.shape)}")
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    y_true = y_true.long()
    class_axis = axis % y_pred.ndim
    expected = tuple(d for i, d in enumerate(y_pred.shape) if i != class_axis)
    if tuple(y_true.shape) != expected:
        raise ValueError("Arguments `target` and `output` must have the same shape up until the "
                         f"last dimension: target.shape={tuple(y_true.shape)}, "
                         f"output.shape={tuple(y_pred.shape)}")
    unbatched = y_pred.ndim == 1
    if unbatched:
        y_pred, y_true = y_pred.unsqueeze(0), y_true.unsqueeze(0)
    elif class_axis != 1:
        y_pred = y_pred.movedim(class_axis, 1)
    ignore_index = -100 if ignore_class is None else int(ignore_class)
    if from_logits:
        res = F.cross_entropy(y_pred, y_true, reduction="none", ignore_index=ignore_index)
    else:
        output = y_pred / torch.sum(y_pred, dim=1, keepdim=True)
        output = torch.log(torch.clamp(output, _eps(), 1.0 - _eps()))
        res = F.nll_loss(output, y_true, reduction="none", ignore_index=ignore_index)
    if unbatched:
        res, y_true = res.squeeze(0), y_true.squeeze(0)
    if ignore_class is not None:
        _set_keras_mask(res, y_true != ignore_index)
    return res


def _binary_crossentropy_probs(y_true, y_pred):
    # Same formula as torch's kernel, written out so that it is autocast-safe.
    y_pred = torch.clamp(y_pred, _eps(), 1.0 - _eps())
    return ((y_true - 1.0) * torch.clamp(torch.log1p(-y_pred), min=-100.0)
            - y_true * torch.clamp(torch.log(y_pred), min=-100.0))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy, averaged over `axis`. Labels are smoothed towards 0.5."""
    y_pred, from_logits = _logits_of(y_pred, from_logits)
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    _check_same_shape(y_true, y_pred)
    if from_logits:
        bce = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
    else:
        bce = _binary_crossentropy_probs(y_true, y_pred)
    return torch.mean(bce, dim=axis)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy scaled by `(1 - p_t) ** gamma` (and `alpha` class balancing)."""
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    _check_same_shape(y_true, y_pred)
    bce = _binary_crossentropy_probs(y_true, y_pred)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal_bce = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        focal_bce = (y_true * alpha + (1 - y_true) * (1 - alpha)) * focal_bce
    return torch.mean(focal_bce, dim=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Categorical crossentropy scaled by `alpha * (1 - p) ** gamma`."""
    _check_axis(axis)
    y_true, y_pred = _pair(y_true, y_pred)
    _warn_single_class("categorical_focal_crossentropy", y_pred)
    y_true = _smooth_categorical(y_true, label_smoothing)
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    output = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
    output = torch.clamp(output, _eps(), 1.0 - _eps())
    cce = -y_true * torch.log(output)
    focal = alpha * torch.pow(1.0 - output, gamma) * cce
    return torch.sum(focal, dim=axis)


# Keras 2 / legacy aliases.
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = BCE = binary_crossentropy


# --------------------------------------------------------------------------------------------
# Loss classes
# --------------------------------------------------------------------------------------------
def _standard_config(config):
    config = dict(config)
    if config.get("reduction") == "auto":  # Keras 2 configs
        config["reduction"] = "sum_over_batch_size"
    return config


class Loss:
    """Base class of losses: subclasses implement `call(y_true, y_pred)` -> per-sample values.

    Args:
        name: name of the loss (default: snake_case of the class name, made unique).
        reduction: `"sum_over_batch_size"` (default), `"sum"`, `"mean"`,
            `"mean_with_sample_weight"`, `"none"` or `None`.
        dtype: dtype of the computation (default `backend.floatx()`).
    """

    # Integer labels can skip the cast to `dtype` (same values, two kernels fewer).
    _integer_labels = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or backend.unique_name(backend.to_snake_case(type(self).__name__))
        self.reduction = standardize_reduction(reduction)
        self._dtype = _compute_dtype(dtype)

    @property
    def dtype(self):
        return self._dtype

    def __call__(self, y_true, y_pred, sample_weight=None):
        in_mask = _keras_mask(y_pred)
        dtype = backend.torch_dtype(self._dtype)
        y_pred = _tensor(y_pred, dtype)
        if self._integer_labels and isinstance(y_true, torch.Tensor) \
                and not y_true.is_floating_point():
            y_true = _tensor(y_true, like=y_pred)
        else:
            y_true = _tensor(y_true, dtype, like=y_pred)
        losses = self.call(y_true, y_pred)
        out_mask = _keras_mask(losses)
        if in_mask is not None and out_mask is not None:
            mask = _tensor(in_mask, like=losses).bool() & _tensor(out_mask, like=losses).bool()
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(losses, sample_weight=sample_weight, mask=mask,
                                      reduction=self.reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement `call(y_true, y_pred)`.")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**_standard_config(config))

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A `Loss` calling `fn(y_true, y_pred, **kwargs)`."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs
        self._integer_labels = fn is sparse_categorical_crossentropy  # compile(loss="sparse_...")

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        config = super().get_config()
        config["fn"] = serialization_lib.serialize_keras_object(self.fn)
        config.update(serialization_lib.serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config and not callable(config["fn"]):
            config["fn"] = serialization_lib.deserialize_keras_object(
                config["fn"], module_objects=ALL_OBJECTS_DICT,
                printable_module_name="loss function")
        return cls(**_standard_config(config))

    def __repr__(self):
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


class _FunctionLoss(LossFunctionWrapper):
    """Shared code of the built-in losses: `fn`, `_params` (extra args) and `get_config`."""

    fn = None
    _params = ()

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None, **params):
        super().__init__(type(self).fn, reduction=reduction, name=name, dtype=dtype, **params)
        for key, value in params.items():
            setattr(self, key, value)

    def get_config(self):
        config = Loss.get_config(self)
        config.update({p: getattr(self, p) for p in self._params})
        return config


class MeanSquaredError(_FunctionLoss):
    """Mean of squares of errors between labels and predictions."""

    fn = staticmethod(mean_squared_error)

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class MeanAbsoluteError(_FunctionLoss):
    """Mean of absolute differences between labels and predictions."""

    fn = staticmethod(mean_absolute_error)

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_FunctionLoss):
    """Mean absolute percentage error."""

    fn = staticmethod(mean_absolute_percentage_error)

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_FunctionLoss):
    """Mean squared logarithmic error."""

    fn = staticmethod(mean_squared_logarithmic_error)

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class CosineSimilarity(_FunctionLoss):
    """Negative cosine similarity between labels and predictions along `axis`."""

    fn = staticmethod(cosine_similarity)
    _params = ("axis",)

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, axis=axis)


class Huber(_FunctionLoss):
    """Huber loss: quadratic for `|error| <= delta`, linear beyond."""

    fn = staticmethod(huber)
    _params = ("delta",)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, delta=delta)


class LogCosh(_FunctionLoss):
    """Logarithm of the hyperbolic cosine of the prediction error."""

    fn = staticmethod(log_cosh)

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class Hinge(_FunctionLoss):
    """Hinge loss; {0, 1} labels are mapped to {-1, 1}."""

    fn = staticmethod(hinge)

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class SquaredHinge(_FunctionLoss):
    """Squared hinge loss; {0, 1} labels are mapped to {-1, 1}."""

    fn = staticmethod(squared_hinge)

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class CategoricalHinge(_FunctionLoss):
    """Categorical hinge loss."""

    fn = staticmethod(categorical_hinge)

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class KLDivergence(_FunctionLoss):
    """Kullback-Leibler divergence."""

    fn = staticmethod(kl_divergence)

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class Poisson(_FunctionLoss):
    """Poisson loss."""

    fn = staticmethod(poisson)

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)


class BinaryCrossentropy(_FunctionLoss):
    """Crossentropy for binary (0 or 1) labels."""

    fn = staticmethod(binary_crossentropy)
    _params = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class BinaryFocalCrossentropy(_FunctionLoss):
    """Focal crossentropy for binary labels."""

    fn = staticmethod(binary_focal_crossentropy)
    _params = ("from_logits", "label_smoothing", "axis", "apply_class_balancing", "alpha", "gamma")

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class CategoricalCrossentropy(_FunctionLoss):
    """Crossentropy for one-hot (or soft) labels."""

    fn = staticmethod(categorical_crossentropy)
    _params = ("from_logits", "label_smoothing", "axis")

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(_FunctionLoss):
    """Focal crossentropy for one-hot labels."""

    fn = staticmethod(categorical_focal_crossentropy)
    _params = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy",
                 dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_FunctionLoss):
    """Crossentropy for integer labels; `ignore_class` entries are left out of the mean."""

    fn = staticmethod(sparse_categorical_crossentropy)
    _params = ("from_logits", "ignore_class", "axis")
    _integer_labels = True

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=from_logits,
                         ignore_class=ignore_class, axis=axis)


# --------------------------------------------------------------------------------------------
# get / serialize / deserialize
# --------------------------------------------------------------------------------------------
_CLASSES = [Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError,
            MeanAbsolutePercentageError, MeanSquaredLogarithmicError, CosineSimilarity, Huber,
            LogCosh, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson,
            BinaryCrossentropy, BinaryFocalCrossentropy, CategoricalCrossentropy,
            CategoricalFocalCrossentropy, SparseCategoricalCrossentropy]
_FUNCTIONS = [mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
              mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, kl_divergence,
              poisson, hinge, squared_hinge, categorical_hinge, binary_crossentropy,
              binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy,
              sparse_categorical_crossentropy]
ALL_OBJECTS = set(_CLASSES) | set(_FUNCTIONS)
ALL_OBJECTS_DICT = {obj.__name__: obj for obj in _CLASSES + _FUNCTIONS}
ALL_OBJECTS_DICT.update({
    "bce": binary_crossentropy, "BCE": binary_crossentropy,
    "kld": kl_divergence, "KLD": kl_divergence, "kullback_leibler_divergence": kl_divergence,
    "mae": mean_absolute_error, "MAE": mean_absolute_error,
    "mse": mean_squared_error, "MSE": mean_squared_error,
    "mape": mean_absolute_percentage_error, "MAPE": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error, "MSLE": mean_squared_logarithmic_error,
    "logcosh": log_cosh, "huber_loss": huber,
})


def serialize(loss):
    """Config dict of a `Loss` instance or loss function."""
    return serialization_lib.serialize_keras_object(loss)


def deserialize(name, custom_objects=None):
    """A `Loss` instance or loss function from `serialize`'s output or a name."""
    return serialization_lib.deserialize_keras_object(
        name, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="loss function")


def get(identifier):
    """Resolve a loss: None, a name, a config dict, a function, a `Loss` class or instance.

    Names of functions give the function; names of classes (and classes) give an instance.
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = object_registration.get_registered_object(identifier, None, ALL_OBJECTS_DICT)
        if obj is None:
            known = ", ".join(sorted(ALL_OBJECTS_DICT))
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}. "
                             f"Known losses: {known}")
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Expected a string, "
                     "a config dict, a function, a `Loss` class or a `Loss` instance.")


__all__ = ["Loss", "LossFunctionWrapper", "get", "serialize", "deserialize",
           "reduce_weighted_values", "squeeze_or_expand_to_same_rank"] + \
          [c.__name__ for c in _CLASSES[2:]] + [f.__name__ for f in _FUNCTIONS] + \
          ["mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD",
           "kullback_leibler_divergence", "logcosh", "bce", "BCE"]
