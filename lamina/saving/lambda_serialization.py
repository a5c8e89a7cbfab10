"""Serialising the Python function of a `Lambda` layer, and refusing to load it unless asked.

A lambda is stored as Keras stores it: `{"class_name": "__lambda__", "config": {"code",
"defaults", "closure"}}`, where `code` is the base64 of the `marshal`-ed bytecode. Loading that
runs code from the file, so `deserialize_function` raises unless `safe_mode=False` (or an
enclosing `SafeModeScope(False)`, which `load_model(..., safe_mode=False)` opens). A named
function is stored by name and resolved only through registered/custom objects.
"""
import base64
import binascii
import builtins
import marshal
import threading
import types

_STATE = threading.local()

_REFUSAL = ("Requested the deserialization of a `Lambda` layer whose `function` is Python "
            "bytecode stored in the file. Loading it would execute code from the file, which is "
            "disallowed by default. If you trust the source of the file, pass `safe_mode=False` "
            "to the loading function (`load_model`, `model_from_json`, `from_config`...).")


class SafeModeScope:
    """`with SafeModeScope(False):` allows loading stored bytecode inside the block."""

    def __init__(self, safe_mode=True):
        self.safe_mode = safe_mode

    def __enter__(self):
        self._previous = getattr(_STATE, "safe_mode", None)
        _STATE.safe_mode = self.safe_mode
        return self

    def __exit__(self, *exc):
        _STATE.safe_mode = self._previous


def in_safe_mode():
    """The `safe_mode` of the innermost `SafeModeScope` (None outside any scope)."""
    return getattr(_STATE, "safe_mode", None)


def enable_unsafe_deserialization():
    """Allow loading stored bytecode everywhere in this thread (Keras's global switch)."""
    _STATE.safe_mode = False


def _is_lambda(fn):
    return isinstance(fn, types.FunctionType) and fn.__name__ == "<lambda>"


def serialize_function(fn):
    """Config of a `Lambda`'s function: Keras's `__lambda__` form, or a named-function dict."""
    if _is_lambda(fn):
        code = base64.b64encode(marshal.dumps(fn.__code__)).decode("ascii")
        closure = None
        if fn.__closure__:
            closure = [cell.cell_contents for cell in fn.__closure__]
        defaults = list(fn.__defaults__) if fn.__defaults__ else None
        return {"class_name": "__lambda__",
                "config": {"code": code, "defaults": defaults, "closure": closure}}
    if callable(fn):
        from lamina.saving import serialization_lib
        return serialization_lib.serialize_keras_object(fn)
    raise ValueError(f"Invalid input type for serialization. Received: {fn!r} of type "
                     f"{type(fn).__name__}; expected a function.")


def _effective_safe_mode(safe_mode):
    if safe_mode is None:
        safe_mode = in_safe_mode()
    return safe_mode is not False


def _load_code(code, defaults, closure):
    try:
        raw = base64.b64decode(code.encode("ascii"), validate=False)
        code_object = marshal.loads(raw)
    except (ValueError, EOFError, TypeError, UnicodeEncodeError, binascii.Error) as error:
        raise ValueError("Could not load the bytecode of a `Lambda` function: it was written by "
                         f"a different Python version or is corrupt ({error}).") from error
    if not isinstance(code_object, types.CodeType):
        raise ValueError("The stored `Lambda` function is not Python bytecode.")
    cells = None
    if closure is not None:
        cells = tuple(types.CellType(value) for value in closure)
    import numpy
    import torch

    import lamina
    namespace = {"__builtins__": builtins, "np": numpy, "numpy": numpy, "torch": torch,
                 "keras": lamina, "lamina": lamina, "K": lamina.backend}
    return types.FunctionType(code_object, namespace, name=code_object.co_name,
                              argdefs=tuple(defaults) if defaults else None, closure=cells)


_PUBLIC_FUNCTION_MODULES = {"activations", "losses", "metrics", "backend"}


def _public_function(module, name):
    """`keras.activations.relu` and the like, resolved to lamina's own function (no import
    of anything outside lamina)."""
    if not isinstance(module, str) or not isinstance(name, str):
        return None
    if module == "builtins":  # Keras (torch backend) writes some activations this way
        module = "keras.activations"
    parts = module.split(".")
    if parts[0] != "keras":
        return None
    parts = parts[2:] if len(parts) > 1 and parts[1] == "src" else parts[1:]
    if not parts or parts[0] not in _PUBLIC_FUNCTION_MODULES:
        return None
    import importlib
    fn = getattr(importlib.import_module(f"lamina.{parts[0]}"), name, None)
    return fn if isinstance(fn, types.FunctionType) else None


def deserialize_function(config, safe_mode=None, custom_objects=None):
    """The function stored by `serialize_function` (or by Keras 2/3 `Lambda.get_config`).

    Stored bytecode raises `ValueError` unless `safe_mode=False`; names resolve only among
    custom/registered objects, never by importing anything.
    """
    if callable(config):
        return config
    if isinstance(config, dict) and config.get("class_name") == "__lambda__":
        if _effective_safe_mode(safe_mode):
            raise ValueError(_REFUSAL)
        inner = config.get("config") or {}
        return _load_code(inner["code"], inner.get("defaults"), inner.get("closure"))
    if isinstance(config, (list, tuple)) and config and isinstance(config[0], str):
        # Keras 2: `[code, defaults, closure]` with `function_type: "lambda"`.
        if _effective_safe_mode(safe_mode):
            raise ValueError(_REFUSAL)
        code, defaults, closure = (list(config) + [None, None])[:3]
        return _load_code(code, defaults, closure)
    from lamina.saving import object_registration, serialization_lib
    if isinstance(config, str):
        fn = object_registration.get_registered_object(config, custom_objects)
        if fn is None:
            raise ValueError(f"Unknown function {config!r} in a `Lambda` layer. Pass it in "
                             "`custom_objects` or register it with "
                             "`@register_keras_serializable()`.")
        return fn
    if isinstance(config, dict):
        try:
            return serialization_lib.deserialize_keras_object(
                config, custom_objects=custom_objects, printable_module_name="function")
        except ValueError:
            fn = _public_function(config.get("module"), config.get("config"))
            if fn is None:
                raise
            return fn
    raise ValueError(f"Could not interpret the function of a `Lambda` layer: {config!r}")
