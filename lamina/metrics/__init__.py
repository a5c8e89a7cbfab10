"""Metrics, as in `keras.metrics`: stateful `Metric` modules and per-sample metric functions.

>>> m = SparseCategoricalAccuracy()
>>> m.update_state(y_true, y_pred); m.result()
>>> get("mse")                      # MeanSquaredError instance
>>> get("f1_score")                 # F1Score instance (also "r2_score", "f_beta_score")
"""
import inspect

from lamina.backend import to_snake_case
from lamina.losses import (binary_crossentropy, binary_focal_crossentropy,
                           categorical_crossentropy, categorical_focal_crossentropy,
                           categorical_hinge, hinge, huber, kl_divergence, log_cosh,
                           mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                           mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy,
                           squared_hinge)
from lamina.losses import (KLD, MAE, MAPE, MSE, MSLE, kld, logcosh, mae, mape,  # noqa: F401
                           mse, msle)
from lamina.losses import Loss as _Loss
from lamina.metrics.accuracy_metrics import (Accuracy, BinaryAccuracy, CategoricalAccuracy,
                                     SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                                     TopKCategoricalAccuracy, accuracy, binary_accuracy,
                                     categorical_accuracy, sparse_categorical_accuracy,
                                     sparse_top_k_categorical_accuracy, top_k_categorical_accuracy)
from lamina.metrics.base import Mean, MeanMetricWrapper, Metric, MetricVariable, Sum
from lamina.metrics.confusion import (AUC, FalseNegatives, FalsePositives, Precision, Recall,
                                      TrueNegatives, TruePositives)
from lamina.metrics.f_score import F1Score, FBetaScore
from lamina.metrics.probabilistic import (BinaryCrossentropy, CategoricalCrossentropy,
                                          CategoricalHinge, Hinge, KLDivergence, Poisson,
                                          SparseCategoricalCrossentropy, SquaredHinge)
from lamina.metrics.regression import (CosineSimilarity, LogCoshError, MeanAbsoluteError,
                                       MeanAbsolutePercentageError, MeanSquaredError,
                                       MeanSquaredLogarithmicError, R2Score,
                                       RootMeanSquaredError)
from lamina.saving import object_registration, serialization_lib

_CLASSES = [
    Metric, Mean, Sum, MeanMetricWrapper,
    MeanSquaredError, RootMeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, LogCoshError, R2Score,
    AUC, FalseNegatives, FalsePositives, Precision, Recall, TrueNegatives, TruePositives,
    Hinge, SquaredHinge, CategoricalHinge,
    KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    F1Score, FBetaScore,
]
_FUNCTIONS = [
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy,
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,
    categorical_focal_crossentropy, sparse_categorical_crossentropy, categorical_hinge, hinge,
    squared_hinge, huber, kl_divergence, log_cosh, poisson, mean_absolute_error,
    mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error,
]
ALL_OBJECTS = set(_CLASSES)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update({
    "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
    "mse": MeanSquaredError, "MSE": MeanSquaredError,
    "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
    "rmse": RootMeanSquaredError, "logcosh": LogCoshError,
})
FUNCTIONS_DICT = {fn.__name__: fn for fn in _FUNCTIONS}
FUNCTIONS_DICT.update({"mse": mean_squared_error, "mae": mean_absolute_error,
                       "mape": mean_absolute_percentage_error,
                       "msle": mean_squared_logarithmic_error, "kld": kl_divergence,
                       "kullback_leibler_divergence": kl_divergence, "logcosh": log_cosh})


def _deserialize_function(config, custom_objects=None):
    """A metric function from a name or a `{"class_name": "function", ...}` config."""
    return serialization_lib.deserialize_keras_object(
        config, module_objects=FUNCTIONS_DICT, custom_objects=custom_objects,
        printable_module_name="metric function")


def serialize(metric):
    """Config dict of a `Metric` instance or metric function."""
    return serialization_lib.serialize_keras_object(metric)


def deserialize(config, custom_objects=None):
    """A `Metric` instance (or metric function) from `serialize`'s output or a name."""
    if isinstance(config, dict) and config.get("class_name") == "function":
        return _deserialize_function(config, custom_objects)
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="metric")


def _known():
    return ", ".join(sorted(set(ALL_OBJECTS_DICT) | set(FUNCTIONS_DICT)))


def get(identifier):
    """Resolve a metric to a `Metric` instance.

    Accepts None, a name ("mse", "categorical_accuracy", "AUC", "precision", ...), a config
    dict, a `Metric` class or instance, or a function `fn(y_true, y_pred)` (wrapped in a
    `MeanMetricWrapper` named after it).
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = object_registration.get_registered_object(identifier, None, ALL_OBJECTS_DICT)
        if obj is None:
            obj = FUNCTIONS_DICT.get(identifier)
        if obj is None:
            raise ValueError(f"Could not interpret metric identifier: {identifier!r}. "
                             f"Known metrics: {_known()}")
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if isinstance(obj, Metric):
        return obj
    if isinstance(obj, _Loss):
        return MeanMetricWrapper(obj, name=obj.name)
    if callable(obj):
        return MeanMetricWrapper(obj, name=getattr(obj, "__name__", None))
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Expected a string, "
                     "a config dict, a function, a `Metric` class or a `Metric` instance.")


__all__ = [c.__name__ for c in _CLASSES] + [f.__name__ for f in _FUNCTIONS] + [
    "MetricVariable", "get", "serialize", "deserialize",
    "mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD", "logcosh"]
