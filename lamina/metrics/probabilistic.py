"""Crossentropy, divergence and hinge metrics: means of the matching loss functions."""
from lamina.losses import (binary_crossentropy, categorical_crossentropy, categorical_hinge, hinge,
                           kl_divergence, poisson, sparse_categorical_crossentropy, squared_hinge)
from lamina.metrics.base import MeanMetricWrapper


class _LossMetric(MeanMetricWrapper):
    """Mean of a loss function; config holds name, dtype and the attributes in `_params`."""

    _params = ()

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype}
        config.update({p: getattr(self, p) for p in self._params})
        return config


class KLDivergence(_LossMetric):
    """Mean Kullback-Leibler divergence."""

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(fn=kl_divergence, name=name, dtype=dtype)
        self._direction = "down"


class Poisson(_LossMetric):
    """Mean Poisson loss."""

    def __init__(self, name="poisson", dtype=None):
        super().__init__(fn=poisson, name=name, dtype=dtype)
        self._direction = "down"


class BinaryCrossentropy(_LossMetric):
    """Mean binary crossentropy."""

    _params = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0):
        super().__init__(binary_crossentropy, name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self._direction = "down"


class CategoricalCrossentropy(_LossMetric):
    """Mean categorical crossentropy."""

    _params = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0, axis=-1):
        super().__init__(categorical_crossentropy, name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self._direction = "down"


class SparseCategoricalCrossentropy(_LossMetric):
    """Mean sparse categorical crossentropy."""

    _params = ("from_logits", "ignore_class", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False,
                 ignore_class=None, axis=-1):
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis
        self._direction = "down"


class Hinge(_LossMetric):
    """Mean hinge loss."""

    def __init__(self, name="hinge", dtype=None):
        super().__init__(fn=hinge, name=name, dtype=dtype)
        self._direction = "down"


class SquaredHinge(_LossMetric):
    """Mean squared hinge loss."""

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(fn=squared_hinge, name=name, dtype=dtype)
        self._direction = "down"


class CategoricalHinge(_LossMetric):
    """Mean categorical hinge loss."""

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(fn=categorical_hinge, name=name, dtype=dtype)
        self._direction = "down"
