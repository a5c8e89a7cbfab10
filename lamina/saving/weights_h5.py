"""The Keras 3 weights layout (`.weights.h5`, and `model.weights.h5` inside `.keras` files).

Keys are not layer names but the path Keras's saver walks: `layers/<snake class>[_N]/vars/<i>`,
numbered per container (`dense`, `dense_1`, ...), recursing through sub-layers by attribute
name (`bidirectional/forward_layer/cell/vars`, `time_distributed/layer/vars`,
`sequential/layers/dense/vars`); the optimizer's variables go to `optimizer/vars`. Each
`vars` group holds the layer's own weights, trainable first, in Keras layout.
"""
import warnings

import numpy as np
import torch
from torch import nn

from lamina import backend


def _name_key(name):
    return f"~{name}" if name.startswith("_") else name  # private attributes last, as Keras


def _unique(name, used):
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _children(layer):
    """(attribute, child layer or list of layers) in Keras's visiting order."""
    from lamina.engine.functional import Functional
    from lamina.engine.layer import Layer
    from lamina.engine.sequential import Sequential

    out, skip = [], set()
    if isinstance(layer, (Functional, Sequential)):
        out.append(("layers", list(layer.layers)))
        skip = {"_graph_layers", "_stack", "_functional"}
    for attr, child in sorted(layer.named_children(), key=lambda kv: _name_key(kv[0])):
        if attr in skip:
            continue
        if isinstance(child, Layer):
            out.append((attr, child))
        elif isinstance(child, (nn.ModuleList, nn.Sequential)):
            out.append((attr, list(child)))
        elif isinstance(child, nn.ModuleDict):
            out.append((attr, list(child.values())))
    return out


# Layers whose lamina implementation keeps, as its own weights named "<prefix>/<name>", what
# Keras keeps in sub-layers: prefix -> the Keras attribute holding that sub-layer. A layer
# class can declare the same with a `_keras_variable_groups` class attribute.
_VARIABLE_GROUPS = {
    "MultiHeadAttention": {"query": "query_dense", "key": "key_dense", "value": "value_dense",
                           "attention_output": "output_dense", "gate": "_gate_dense"},
}


def _variable_groups(layer):
    groups = getattr(type(layer), "_keras_variable_groups", None)
    if groups is not None:
        return groups
    for klass in type(layer).__mro__:
        if klass.__name__ in _VARIABLE_GROUPS and klass.__module__.startswith("lamina."):
            return _VARIABLE_GROUPS[klass.__name__]
    return {}


def own_records(layer):
    """The layer's own weight records in Keras's `vars` order: trainable, then the rest."""
    return ([r for r in layer._weight_records if r.trainable]
            + [r for r in layer._weight_records if not r.trainable])


def _split_groups(layer):
    """(records kept in the layer's own `vars`, [(attribute, name, records)] of sub-groups)."""
    records = own_records(layer)
    groups = _variable_groups(layer)
    if not groups:
        return records, []
    own, grouped = [], {}
    for record in records:
        prefix = record.name.split("/", 1)[0] if "/" in record.name else None
        if prefix is not None and prefix in groups:
            grouped.setdefault(prefix, []).append(record)
        else:
            own.append(record)
    return own, [(groups[prefix], prefix, recs) for prefix, recs in grouped.items()]


def walk(model):
    """[(path, layer, records, name)] for every `vars` group, in Keras's order: the model, each
    nested layer once, and the sub-groups of layers listed in `_VARIABLE_GROUPS`."""
    from lamina.engine.layer import Layer

    visited, out = set(), []

    def visit(layer, path):
        if id(layer) in visited:
            return
        visited.add(id(layer))
        own, groups = _split_groups(layer)
        out.append((path, layer, own, layer.name))
        children = _children(layer)
        if groups:
            children = sorted(children + [(attr, (name, recs)) for attr, name, recs in groups],
                              key=lambda kv: _name_key(kv[0]))
        for attr, child in children:
            sub = f"{path}/{attr}" if path else attr
            if isinstance(child, tuple):
                out.append((sub, layer, child[1], child[0]))
            elif isinstance(child, list):
                used = {}
                for item in child:
                    if isinstance(item, Layer):
                        name = _unique(backend.to_snake_case(type(item).__name__), used)
                        visit(item, f"{sub}/{name}")
            else:
                visit(child, sub)

    visit(model, "")
    return out


def keras_value(layer, record):
    from lamina.engine.layer import _to_keras_layout
    return _to_keras_layout(getattr(layer, record.key), record.layout)


def keras_shape(layer, record):
    from lamina.engine.layer import _keras_shape
    return _keras_shape(getattr(layer, record.key), record.layout)


def _vars_path(path):
    return f"{path}/vars" if path else "vars"


def _slot_layouts(model, optimizer):
    """Per optimizer variable, the Keras-to-torch permutation of the weight it tracks.

    Slots mirror their weight in torch layout (an LSTM kernel's moments are `(4u, in)`);
    files hold them in Keras layout like the weights themselves.
    """
    variables = list(optimizer.variables)
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:  # a LossScaleOptimizer: its own scalars, then the inner's variables
        return [None] * (len(variables) - len(inner.variables)) + _slot_layouts(model, inner)
    state = list(getattr(optimizer, "_state", []))
    params = list(getattr(optimizer, "_trainable_variables", []))
    layouts = [None] * len(variables)
    if not state or not params or model is None:
        return layouts
    param_layout = {id(getattr(l, r.key)): r.layout for l, r in model._weight_slots()}
    if not any(param_layout.get(id(p)) for p in params):
        return layouts
    mapping = None
    if len(state) % len(params) == 0:
        per = len(state) // len(params)
        guess = [params[i // per] for i in range(len(state))]
        if all(tuple(t.shape) == tuple(p.shape) for (_, t), p in zip(state, guess)):
            mapping = guess
    if mapping is None:
        from lamina.optimizers.base import _variable_name
        prefixes = [(_variable_name(p, i) + "_", p) for i, p in enumerate(params)]
        mapping = []
        for name, tensor in state:
            owners = [p for prefix, p in prefixes if name.startswith(prefix)
                      and tuple(p.shape) == tuple(tensor.shape)]
            if len(owners) != 1:
                warnings.warn(f"Could not match optimizer variable '{name}' to its weight; the "
                              "optimizer state is stored in lamina's internal layout.",
                              stacklevel=3)
                return layouts
            mapping.append(owners[0])
    head = len(variables) - len(state)
    for i, param in enumerate(mapping):
        layouts[head + i] = param_layout.get(id(param))
    return layouts


def _optimizer_variables(optimizer, model=None):
    """The optimizer's variables as numpy arrays, in Keras order and Keras layout."""
    layouts = _slot_layouts(model, optimizer)
    out = []
    for variable, layout in zip(optimizer.variables, layouts):
        value = variable.detach().cpu().numpy()
        out.append(np.ascontiguousarray(np.transpose(value, np.argsort(layout)))
                   if layout is not None else value)
    return out


def _to_optimizer_layout(model, optimizer, values):
    layouts = _slot_layouts(model, optimizer)
    if len(layouts) != len(values):
        return list(values)
    return [np.ascontiguousarray(np.transpose(np.asarray(v), layout)) if layout is not None
            else v for v, layout in zip(values, layouts)]


def save_to_group(root, model, include_optimizer=True):
    """Write `model`'s weights (and its optimizer's variables) under the h5 group `root`."""
    for path, layer, records, name in walk(model):
        group = root.require_group(_vars_path(path))
        group.attrs["name"] = name
        for i, record in enumerate(records):
            group.create_dataset(str(i), data=keras_value(layer, record))
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None:
        _save_optimizer(root.require_group("optimizer"), optimizer, model)


def _save_optimizer(group, optimizer, model):
    """`vars` of `optimizer` under `group`; a LossScaleOptimizer's inner optimizer again
    under `inner_optimizer/vars`, as Keras writes it."""
    variables = group.require_group("vars")
    variables.attrs["name"] = optimizer.name
    for i, value in enumerate(_optimizer_variables(optimizer, model)):
        variables.create_dataset(str(i), data=value)
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        _save_optimizer(group.require_group("inner_optimizer"), inner, model)


def _read_vars(group):
    keys = sorted(group.keys(), key=lambda k: int(k) if k.isdigit() else k)
    return [np.asarray(group[k]) for k in keys]


def plan_load(root, model, skip_mismatch=False):
    """Read and check every value first: [(layer, record, array)] to assign (no side effects)."""
    assignments = []
    for path, layer, records, _ in walk(model):
        group = root.get(_vars_path(path))
        values = _read_vars(group) if group is not None else []
        if not records and not values:
            continue
        if len(values) != len(records):
            if not records:
                msg = (f"Layer '{layer.name}' was never built and thus it doesn't have any "
                       f"variables. However the weights file lists {len(values)} variables "
                       f"for this layer (at '{_vars_path(path)}'). In most cases, this error "
                       "indicates that the layer must be built (called on data) before "
                       "loading its weights.")
            else:
                msg = (f"Layer '{layer.name}' expected {len(records)} variables, but received "
                       f"{len(values)} variables during loading (at '{_vars_path(path)}'). "
                       f"Expected: {[r.name for r in records]}")
            if skip_mismatch:
                warnings.warn(f"Skipping loading weights: {msg}", stacklevel=3)
                continue
            raise ValueError(msg)
        for record, value in zip(records, values):
            expected = keras_shape(layer, record)
            if tuple(value.shape) != expected:
                msg = (f"Shape mismatch for weight '{record.name}' of layer '{layer.name}' "
                       f"(at '{_vars_path(path)}'): the layer expects shape {expected}, the "
                       f"file holds shape {tuple(value.shape)}.")
                if skip_mismatch:
                    warnings.warn(f"Skipping loading weights: {msg}", stacklevel=3)
                    continue
                raise ValueError(msg)
            assignments.append((layer, record, value))
    return assignments


def apply_assignments(assignments):
    """Assign already-checked values (see `plan_load`); the checks make this step safe."""
    with torch.no_grad():
        for layer, record, value in assignments:
            layer._assign_weight(record, value)


def read_optimizer_values(root):
    group = root.get("optimizer/vars")
    return None if group is None else _read_vars(group)


def build_optimizer(model):
    """Create the optimizer's slots for the model's trainable weights (as `fit` would)."""
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build([p for p in model.trainable_weights if p.requires_grad])


def load_optimizer_values(model, values, build=True):
    """Restore optimizer variables saved in Keras order; warns and skips on a count mismatch."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or values is None:
        return
    if build:
        build_optimizer(model)
    target = optimizer.variables
    if optimizer.built and len(values) == len(target):
        values = _to_optimizer_layout(model, optimizer, values)
    store = {str(i): v for i, v in enumerate(values)}
    if len(store) == len(target):
        for variable, value in zip(target, values):
            if tuple(variable.shape) != tuple(np.shape(value)):
                warnings.warn(f"Skipping variable loading for optimizer '{optimizer.name}': "
                              f"saved shapes do not match the model's ({tuple(variable.shape)} "
                              f"vs {tuple(np.shape(value))}).", stacklevel=3)
                return
    optimizer.load_own_variables(store)
