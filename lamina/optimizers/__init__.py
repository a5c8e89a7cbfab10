"""Optimizers, as in `keras.optimizers`: Keras's update rules on torch tensors.

>>> opt = get("adam")
>>> type(opt).__name__, opt.learning_rate
('Adam', 0.0010000000474974513)
"""
import inspect

from lamina.optimizers import schedules
from lamina.optimizers.adadelta import Adadelta
from lamina.optimizers.adagrad import Adagrad
from lamina.optimizers.adam import Adam, AdamW
from lamina.optimizers.adamax import Adamax
from lamina.optimizers.base import Optimizer
from lamina.optimizers.loss_scale_optimizer import LossScaleOptimizer
from lamina.optimizers.nadam import Nadam
from lamina.optimizers.rmsprop import RMSprop
from lamina.optimizers.sgd import SGD
from lamina.saving import serialization_lib

ALL_OBJECTS = (Optimizer, SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam,
               LossScaleOptimizer)
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}


def serialize(optimizer):
    """The Keras config dict of `optimizer` (`{"module", "class_name", "config", ...}`)."""
    return serialization_lib.serialize_keras_object(optimizer)


def deserialize(config, custom_objects=None):
    """An optimizer from `serialize`'s output; built-in class names are case-insensitive."""
    if isinstance(config, dict) and isinstance(config.get("class_name"), str):
        if config["class_name"].lower() in ALL_OBJECTS_DICT:
            config = dict(config, class_name=config["class_name"].lower())
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="optimizer")


def get(identifier):
    """An optimizer from a name ("adam", any case), a config dict, a class or an instance."""
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = deserialize({"class_name": identifier, "config": {}})
    elif inspect.isclass(identifier) and issubclass(identifier, Optimizer):
        obj = identifier()
    else:
        obj = identifier
    if isinstance(obj, Optimizer):
        return obj
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Expected a "
                     f"name (one of {sorted(ALL_OBJECTS_DICT)}), a config dict, an Optimizer "
                     "class or an Optimizer instance.")


__all__ = ["Optimizer", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta", "Adamax",
           "Nadam", "LossScaleOptimizer", "schedules", "get", "serialize", "deserialize"]
