"""The registry of custom objects: `register_keras_serializable`, `custom_object_scope`.

>>> @register_keras_serializable(package="my_pkg")
... class MyLayer(Layer): ...
>>> get_registered_name(MyLayer)
'my_pkg>MyLayer'
"""
import threading

_GLOBAL_CUSTOM_OBJECTS = {}
_GLOBAL_CUSTOM_NAMES = {}
_SCOPE = threading.local()


def _scope_stack():
    if not hasattr(_SCOPE, "stack"):
        _SCOPE.stack = []
    return _SCOPE.stack


class CustomObjectScope:
    """Within `with custom_object_scope({"MyLayer": MyLayer}):`, names resolve to these objects."""

    def __init__(self, custom_objects):
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self):
        _scope_stack().append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        _scope_stack().pop()


custom_object_scope = CustomObjectScope


def get_custom_objects():
    """The global dict of registered objects (mutable, as in Keras)."""
    return _GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package="Custom", name=None):
    """Class or function decorator registering the object as `package>name`."""
    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if registered in _GLOBAL_CUSTOM_OBJECTS:
            raise ValueError(f"{registered} has already been registered to "
                             f"{_GLOBAL_CUSTOM_OBJECTS[registered]}")
        _GLOBAL_CUSTOM_OBJECTS[registered] = obj
        _GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj
    return decorator


def get_registered_name(obj):
    return _GLOBAL_CUSTOM_NAMES.get(obj, getattr(obj, "__name__", type(obj).__name__))


def get_registered_object(name, custom_objects=None, module_objects=None):
    """Look `name` up in the active scopes, `custom_objects`, the registry, then `module_objects`."""
    for scope in reversed(_scope_stack()):
        if name in scope:
            return scope[name]
    for table in (custom_objects, _GLOBAL_CUSTOM_OBJECTS, module_objects):
        if table and name in table:
            return table[name]
    return None
