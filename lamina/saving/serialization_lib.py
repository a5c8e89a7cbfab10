"""Turning lamina objects into Keras-3-shaped config dicts and back.

A class instance serialises to `{"module", "class_name", "config", "registered_name"}`, exactly
the tree real Keras writes, so configs move between the two both ways.
"""
import inspect

import numpy as np

from lamina import backend
from lamina.saving import object_registration

# lamina module -> the public Keras module name written in configs.
_PUBLIC_MODULES = {
    "lamina.activations": "keras.activations", "lamina.initializers": "keras.initializers",
    "lamina.regularizers": "keras.regularizers", "lamina.constraints": "keras.constraints",
    "lamina.losses": "keras.losses", "lamina.metrics": "keras.metrics",
    "lamina.optimizers.schedules": "keras.optimizers.schedules",
    "lamina.optimizers": "keras.optimizers",
}


def _public_module(obj):
    module = obj.__module__ if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj).__module__
    for prefix, public in _PUBLIC_MODULES.items():
        if module == prefix or module.startswith(prefix + "."):
            return public
    if module in ("lamina.engine.sequential", "lamina.engine.functional", "lamina.engine.model"):
        return "keras"  # where Keras 3 writes Sequential and Functional
    if module.startswith(("lamina.layers", "lamina.engine")):
        return "keras.layers"
    return module


def serialize_keras_object(obj):
    """Config dict (or plain value) for `obj`; None, numbers, strings and containers pass through."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(x) for x in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": obj.tolist(), "dtype": backend.standardize_dtype(obj.dtype)}}
    registered = object_registration._GLOBAL_CUSTOM_NAMES.get(obj if inspect.isfunction(obj) else type(obj))
    if inspect.isfunction(obj):
        return {"module": _public_module(obj), "class_name": "function",
                "config": obj.__name__, "registered_name": registered or obj.__name__}
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it has no `get_config()` method.")
    return {"module": _public_module(obj), "class_name": type(obj).__name__,
            "config": obj.get_config(), "registered_name": registered}


def deserialize_keras_object(config, module_objects=None, custom_objects=None,
                             printable_module_name="object", **from_config_kwargs):
    """Rebuild an object from `serialize_keras_object`'s output or from a plain name.

    Names resolve through custom object scopes, `custom_objects`, the registry and
    `module_objects` (the public names of the calling module). Nothing is ever imported or
    executed from the config itself.
    """
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        obj = object_registration.get_registered_object(config, custom_objects, module_objects)
        if obj is None:
            raise ValueError(_unknown(printable_module_name, config, module_objects, custom_objects))
        return obj() if inspect.isclass(obj) else obj
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"Could not interpret serialized {printable_module_name}: {config!r}")
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "function":
        name = config.get("registered_name") or inner
        obj = object_registration.get_registered_object(name, custom_objects, module_objects)
        if obj is None:
            obj = object_registration.get_registered_object(inner, custom_objects, module_objects)
        if obj is None:
            raise ValueError(_unknown(printable_module_name, name, module_objects, custom_objects))
        return obj
    cls = None
    for name in (config.get("registered_name"), class_name):
        if name:
            cls = object_registration.get_registered_object(name, custom_objects, module_objects)
            if cls is not None:
                break
    if cls is None:
        raise ValueError(_unknown(printable_module_name, class_name, module_objects, custom_objects))
    if hasattr(cls, "from_config"):
        return cls.from_config(inner, **from_config_kwargs)
    return cls(**inner)


def get_object(identifier, module_objects, kind, plural, expected):
    """The `get()` of the math modules: a name or config dict resolves through the registry and
    `module_objects`; a class is instantiated; a callable passes through; None gives None."""
    if identifier is None:
        return None
    if isinstance(identifier, str):
        obj = object_registration.get_registered_object(identifier, None, module_objects)
        if obj is None:
            raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}. "
                             f"Known {plural}: {', '.join(sorted(module_objects))}")
    elif isinstance(identifier, dict):
        obj = deserialize_keras_object(identifier, module_objects=module_objects,
                                       printable_module_name=kind)
    else:
        obj = identifier
    if inspect.isclass(obj):
        obj = obj()
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}. Expected "
                     f"{expected}.")


def _unknown(kind, name, module_objects, custom_objects):
    known = sorted(set(module_objects or ()) | set(custom_objects or ())
                   | set(object_registration.get_custom_objects()))
    return (f"Unknown {kind}: {name!r}. Please ensure you are using a `keras.utils.custom_object_scope` "
            f"and that this object is included in the scope, or registered with "
            f"`register_keras_serializable`. Known names: {', '.join(map(str, known))}")
