"""`keras.saving`: the object registry, (de)serialisation, and model/weights files."""
from lamina.saving.object_registration import (CustomObjectScope, custom_object_scope,
                                               get_custom_objects, get_registered_name,
                                               get_registered_object,
                                               register_keras_serializable)
from lamina.saving.serialization_lib import deserialize_keras_object, serialize_keras_object


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a `.keras` or legacy `.h5` model (see `lamina.saving.saving_api.load_model`)."""
    from lamina.saving import saving_api
    return saving_api.load_model(filepath, custom_objects=custom_objects, compile=compile,
                                 safe_mode=safe_mode)


def save_model(model, filepath, overwrite=True, **kwargs):
    """Save `model` as `.keras` or legacy `.h5` (see `lamina.saving.saving_api.save_model`)."""
    from lamina.saving import saving_api
    return saving_api.save_model(model, filepath, overwrite=overwrite, **kwargs)


def load_weights(model, filepath, skip_mismatch=False, **kwargs):
    from lamina.saving import saving_api
    return saving_api.load_weights(model, filepath, skip_mismatch=skip_mismatch, **kwargs)


def save_weights(model, filepath, overwrite=True, **kwargs):
    from lamina.saving import saving_api
    return saving_api.save_weights(model, filepath, overwrite=overwrite, **kwargs)


__all__ = ["register_keras_serializable", "custom_object_scope", "CustomObjectScope",
           "get_registered_object", "get_registered_name", "get_custom_objects",
           "serialize_keras_object", "deserialize_keras_object", "load_model", "save_model",
           "load_weights", "save_weights"]
