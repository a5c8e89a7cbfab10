"""The Keras 2 HDF5 layout: `.h5` weight files and full-model `.h5` files.

Weights: root attributes `layer_names`, `backend`, `keras_version`; one group per layer with
the attribute `weight_names` and one dataset per weight (`dense_1/kernel:0`), trainable
weights first. Full models add the attributes `model_config` and `training_config` (JSON),
put the weights under `model_weights` and the optimizer's variables under
`optimizer_weights`. Loading pairs layers by order (layers with weights only) or by name.
"""
import json
import warnings

import numpy as np

from lamina.saving import weights_h5
from lamina.saving.config import KERAS_VERSION

HDF5_OBJECT_HEADER_LIMIT = 64512


# ------------------------------------------------------------------------ attributes
def save_attributes(group, name, data):
    """Store a list of strings as a byte-string attribute, split in chunks when too large."""
    data = [d.encode("utf8") if isinstance(d, str) else d for d in data]
    too_big = [d for d in data if len(d) > HDF5_OBJECT_HEADER_LIMIT]
    if too_big:
        raise RuntimeError("The following attributes cannot be saved to HDF5 file because they "
                           f"are larger than {HDF5_OBJECT_HEADER_LIMIT} bytes: {too_big}")
    array = np.asarray(data)
    chunks = 1
    parts = np.array_split(array, chunks)
    while any(part.nbytes > HDF5_OBJECT_HEADER_LIMIT for part in parts):
        chunks += 1
        parts = np.array_split(array, chunks)
    if chunks > 1:
        for i, part in enumerate(parts):
            group.attrs[f"{name}{i}"] = part
    else:
        group.attrs[name] = array


def load_attributes(group, name):
    """The list of strings stored by `save_attributes` (also Keras 2 and Keras 3 files)."""
    def decode(values):
        values = np.atleast_1d(values)
        if values.dtype.kind == "f":  # Keras writes an empty list as a float array
            return []
        return [v.decode("utf8") if hasattr(v, "decode") else str(v) for v in values]
    if name in group.attrs:
        return decode(group.attrs[name])
    data, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        data.extend(decode(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return data


# ------------------------------------------------------------------------ layer weights
def _layer_paths(layer):
    """id(sub-layer) -> "outer/inner/..." names from `layer` down to each nested layer."""
    paths = {}

    def visit(current, prefix):
        if id(current) in paths:
            return
        paths[id(current)] = prefix
        for sub in current._sublayers():
            visit(sub, f"{prefix}/{sub.name}")

    visit(layer, layer.name)
    return paths


def legacy_slots(layer):
    """(owner, record) of `layer`'s weights in the legacy order: trainable, then the rest."""
    slots = layer._weight_slots()
    trainable = [(l, r) for l, r in slots if layer.trainable and l.trainable and r.trainable]
    chosen = {(id(l), r.key) for l, r in trainable}
    return trainable + [(l, r) for l, r in slots if (id(l), r.key) not in chosen]


def _weight_names(layer, slots):
    paths = _layer_paths(layer)
    names, seen = [], set()
    for owner, record in slots:
        base = f"{paths.get(id(owner), owner.name)}/{record.name}"
        name, k = f"{base}:0", 1
        while name in seen:
            name, k = f"{base}_{k}:0", k + 1
        seen.add(name)
        names.append(name)
    return names


def _own_model_slots(model):
    """The model's own weights (not its layers'), e.g. `add_weight` on a subclassed model."""
    return [(model, r) for r in weights_h5.own_records(model)]


def save_weights_to_group(group, model):
    """Write `model`'s weights into `group` in the Keras 2 layout."""
    layers = model.layers
    save_attributes(group, "layer_names", [layer.name for layer in layers])
    group.attrs["backend"] = b"torch"
    group.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    for layer in sorted(layers, key=lambda l: l.name):
        _save_subset(group.create_group(layer.name), layer, legacy_slots(layer))
    _save_subset(group.create_group("top_level_model_weights"), model, _own_model_slots(model))


def _save_subset(group, layer, slots):
    names = _weight_names(layer, slots)
    save_attributes(group, "weight_names", names)
    for name, (owner, record) in zip(names, slots):
        group.create_dataset(name, data=weights_h5.keras_value(owner, record))


def _read_subset(group):
    return [np.asarray(group[name]) for name in load_attributes(group, "weight_names")]


def _check_values(label, slots, values, skip_mismatch, assignments):
    for (owner, record), value in zip(slots, values):
        expected = weights_h5.keras_shape(owner, record)
        if tuple(value.shape) != expected:
            msg = (f"Shape mismatch in {label} for weight {owner.name}/{record.name}. Weight "
                   f"expects shape {expected}. Received saved weight with shape "
                   f"{tuple(value.shape)}")
            if skip_mismatch:
                warnings.warn(f"Skipping loading weights: {msg}", stacklevel=4)
                continue
            raise ValueError(msg)
        assignments.append((owner, record, value))


def plan_load_by_order(group, model, skip_mismatch=False):
    """[(owner, record, value)] pairing weighted layers with weighted file layers, in order."""
    layers = [layer for layer in model.layers if legacy_slots(layer)]
    names = [name for name in load_attributes(group, "layer_names")
             if load_attributes(_group(group, name), "weight_names")]
    if len(names) != len(layers):
        raise ValueError("Layer count mismatch when loading weights from file. Model expected "
                         f"{len(layers)} layers, found {len(names)} saved layers.")
    assignments = []
    for k, (name, layer) in enumerate(zip(names, layers)):
        slots = legacy_slots(layer)
        values = _read_subset(_group(group, name))
        if len(values) != len(slots):
            raise ValueError(f"Weight count mismatch for layer #{k} (named {layer.name} in the "
                             f"current model, {name} in the save file). Layer expects "
                             f"{len(slots)} weight(s). Received {len(values)} saved weight(s)")
        _check_values(f"layer #{k} (named {layer.name})", slots, values, skip_mismatch,
                      assignments)
    _plan_top_level(group, model, skip_mismatch, assignments)
    return assignments


def plan_load_by_name(group, model, skip_mismatch=False):
    """[(owner, record, value)] for the model's layers whose names appear in the file."""
    index = {}
    for layer in model.layers:
        index.setdefault(layer.name, []).append(layer)
    assignments = []
    for k, name in enumerate(load_attributes(group, "layer_names")):
        if name not in index:
            continue
        values = _read_subset(_group(group, name))
        for layer in index[name]:
            slots = legacy_slots(layer)
            if len(values) != len(slots):
                msg = (f"Weight count mismatch for layer #{k} (named {layer.name}). Layer "
                       f"expects {len(slots)} weight(s). Received {len(values)} saved "
                       "weight(s)")
                if skip_mismatch:
                    warnings.warn(f"Skipping loading of weights: {msg}", stacklevel=3)
                    continue
                raise ValueError(msg)
            _check_values(f"layer #{k} (named {layer.name})", slots, values, skip_mismatch,
                          assignments)
    _plan_top_level(group, model, skip_mismatch, assignments)
    return assignments


def _plan_top_level(group, model, skip_mismatch, assignments):
    if "top_level_model_weights" not in group:
        return
    slots = _own_model_slots(model)
    values = _read_subset(_group(group, "top_level_model_weights"))
    if len(values) != len(slots):
        msg = ("Weight count mismatch for top-level weights when loading weights from file. "
               f"Model expects {len(slots)} top-level weight(s). Received {len(values)} saved "
               "top-level weight(s)")
        if skip_mismatch:
            warnings.warn(msg, stacklevel=4)
            return
        raise ValueError(msg)
    _check_values("top-level model", slots, values, skip_mismatch, assignments)


def _group(parent, name):
    if name not in parent:
        raise ValueError(f"Invalid HDF5 weights file: the group '{name}' listed in "
                         f"`layer_names` is missing from '{parent.name}'.")
    return parent[name]


# ------------------------------------------------------------------------ optimizer
def save_optimizer_weights(root, optimizer, model=None):
    """The optimizer's variables (Keras order and layout) under `optimizer_weights`."""
    values = weights_h5._optimizer_variables(optimizer, model)
    if not values:
        return
    group = root.create_group("optimizer_weights")
    names, seen = [], set()
    for base in _variable_names(optimizer):
        name, k = base, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        names.append(name)
    save_attributes(group, "weight_names", names)
    for name, value in zip(names, values):
        group.create_dataset(name, data=value)


def _variable_names(optimizer):
    """Keras's names of `optimizer.variables` ("adam/iteration", ...); a LossScaleOptimizer's
    own, then its inner optimizer's."""
    inner = getattr(optimizer, "inner_optimizer", None)
    own = len(optimizer.variables) - (len(inner.variables) if inner is not None else 0)
    state_names = [n for n, _ in getattr(optimizer, "_state", [])]
    heads = ["iteration", "learning_rate"][:own - len(state_names)]
    names = [f"{optimizer.name}/{raw}" for raw in heads + state_names]
    return names + (_variable_names(inner) if inner is not None else [])


def load_optimizer_weights(root):
    if "optimizer_weights" not in root:
        return None
    return _read_subset(root["optimizer_weights"])


def restore_optimizer(model, values):
    """Set the optimizer's variables from a legacy file: Keras 3 order, or Keras 2's without a
    learning-rate variable; anything else warns and keeps a fresh optimizer state."""
    optimizer = model.optimizer
    weights_h5.build_optimizer(model)
    target = optimizer.variables
    constant_lr = getattr(optimizer, "_learning_rate", 0) is None
    if len(values) == len(target) - 1 and len(target) >= 2 and constant_lr:
        values = [values[0], target[1].detach().cpu().numpy()] + list(values[1:])
    if len(values) == len(target):
        values = weights_h5._to_optimizer_layout(model, optimizer, values)
    shapes_match = len(values) == len(target) and all(
        tuple(t.shape) == tuple(np.shape(v)) for t, v in zip(target, values))
    if not shapes_match:
        warnings.warn("Error in loading the saved optimizer state: the file holds "
                      f"{len(values)} optimizer variables, the model's optimizer has "
                      f"{len(target)} of other shapes. As a result, your model is starting "
                      "with a freshly initialized optimizer.", stacklevel=3)
        return
    optimizer.set_weights(values)


# ------------------------------------------------------------------------ full models
def write_model(f, model, include_optimizer=True):
    """Write a full model into the open h5 file `f`."""
    from lamina.saving import config as config_lib

    f.attrs["backend"] = "torch"
    f.attrs["keras_version"] = KERAS_VERSION
    model_config = config_lib.legacy_model_config(model)
    f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
    compile_config = config_lib.get_compile_config(model)
    if compile_config:
        training = dict(compile_config)
        optimizer = training.pop("optimizer")
        training["optimizer_config"] = {"class_name": optimizer["class_name"],
                                        "config": optimizer["config"]}
        f.attrs["training_config"] = json.dumps(training).encode("utf8")
    save_weights_to_group(f.create_group("model_weights"), model)
    if include_optimizer and getattr(model, "optimizer", None) is not None and compile_config:
        save_optimizer_weights(f, model.optimizer, model)


def _decode_json(value):
    if hasattr(value, "decode"):
        value = value.decode("utf-8")
    return json.loads(value)


def read_model(f, filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from the open full-model h5 file `f`."""
    from lamina.saving import config as config_lib

    model_config = f.attrs.get("model_config")
    if model_config is None:
        raise ValueError(f"No model config found in the file at {filepath}. It holds weights "
                         "only: build the model in code and call `model.load_weights()`.")
    model = config_lib.model_from_config(_decode_json(model_config), custom_objects,
                                         safe_mode=safe_mode, compile=False)
    group = f["model_weights"] if "model_weights" in f else f
    weights_h5.apply_assignments(plan_load_by_order(group, model))
    if not compile:
        return model
    training_config = f.attrs.get("training_config")
    if training_config is None:
        warnings.warn("No training configuration found in the save file, so the model was "
                      "*not* compiled. Compile it manually.", stacklevel=3)
        return model
    try:
        config_lib.compile_from_config(model, _decode_json(training_config), custom_objects)
    except (ValueError, TypeError) as error:
        warnings.warn(f"Could not compile the model from the saved training configuration "
                      f"({error}); it is returned uncompiled.", stacklevel=3)
        return model
    values = load_optimizer_weights(f)
    if values is not None:
        restore_optimizer(model, values)
    return model
