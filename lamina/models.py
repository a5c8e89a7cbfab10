"""`keras.models`: the model classes and the functions that rebuild models from files."""
from lamina.engine.functional import Functional
from lamina.engine.model import Model
from lamina.engine.sequential import Sequential
from lamina.saving import load_model, save_model


def model_from_config(config, custom_objects=None):
    """A model from its config dict (Keras 3 or Keras 2 form)."""
    from lamina.saving import saving_api
    return saving_api.model_from_config(config, custom_objects=custom_objects)


def model_from_json(json_string, custom_objects=None):
    """A model from `model.to_json()` output, lamina's or real Keras's (3 or 2)."""
    from lamina.saving import saving_api
    return saving_api.model_from_json(json_string, custom_objects=custom_objects)


def model_from_yaml(yaml_string, custom_objects=None):
    """A model from `model.to_yaml()` output (read with `yaml.safe_load` only)."""
    from lamina.saving import saving_api
    return saving_api.model_from_yaml(yaml_string, custom_objects=custom_objects)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and freshly initialised weights.

    `clone_function(layer)` makes each new layer (default: `layer.__class__.from_config(
    layer.get_config())`). Works for Sequential and functional models.
    """
    from lamina.saving import config as config_lib

    if clone_function is None:
        def clone_function(layer):
            return layer.__class__.from_config(layer.get_config())
    if isinstance(model, Sequential):
        from lamina.engine.input_layer import InputLayer
        layers = [clone_function(layer) for layer in model.layers]
        clone = Sequential(name=model.name)
        if input_tensors is not None:
            clone.add(input_tensors)
        elif model._stack and isinstance(model._stack[0], InputLayer):
            clone.add(InputLayer(batch_shape=model._stack[0].batch_shape,
                                 dtype=model._stack[0].dtype, name=model._stack[0].name))
        for layer in layers:
            clone.add(layer, rebuild=False)
        clone._maybe_rebuild()
        return clone
    if not isinstance(model, Functional):
        raise ValueError("Expected `model` argument to be a functional `Model` instance, but "
                         f"got a subclassed model instead: {model!r}")
    originals = {layer.name: layer for layer in model.layers}
    new_inputs = list(input_tensors) if isinstance(input_tensors, (list, tuple)) else (
        [input_tensors] if input_tensors is not None else None)
    input_names = [t._keras_history[0].name for t in model.inputs]

    def make_layer(entry):
        name = entry.get("name") or entry["config"]["name"]
        original = originals[name]
        if name in input_names:
            if new_inputs is not None:
                return new_inputs[input_names.index(name)]._keras_history[0]
            return original.__class__.from_config(original.get_config())
        return clone_function(original)

    return config_lib.functional_from_config(Functional, model.get_config(),
                                             make_layer=make_layer)
