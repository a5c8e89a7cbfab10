"""Model and layer configs as Keras's JSON tree, both ways.

Writing follows Keras 3 exactly: every layer is `{"module", "class_name", "config",
"registered_name", "build_config"}`, functional graphs list each layer's `inbound_nodes` as
`{"args", "kwargs"}` with `__keras_tensor__` placeholders (`keras_history = [layer, node,
index]`), and `dtype` is a serialised `DTypePolicy`. Reading also takes Keras 2 trees
(`batch_input_shape`, inbound nodes as nested lists, no `module`), and maps the `keras.*` /
`keras.src.*` module paths of real Keras files to lamina's own classes. Nothing is imported
from outside `lamina` and no code from a file is executed.
"""
import importlib
import importlib.util
import inspect
import pkgutil
import warnings

import numpy as np

from lamina.layers.operations import OPERATIONS, Operation
from lamina.saving import object_registration, serialization_lib
from lamina.saving.lambda_serialization import SafeModeScope

KERAS_VERSION = "3.15.1"  # the Keras release whose formats lamina writes

# Keras 2 wrote raw TensorFlow ops into functional graphs as these layers.
_TF_OP_LAYERS = {"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"}
_MODULE_PREFIXES = ("keras.src.", "keras.", "tf_keras.src.", "tf_keras.",
                    "tensorflow.python.keras.", "tensorflow.keras.")


# ------------------------------------------------------------------------ dtype policies
class DTypePolicyConfig(dict):
    """Keras 3's serialised `DTypePolicy` (a plain dict in JSON) that also answers `.name`,
    so passing `layer.get_config()["dtype"]` back to a layer keeps working."""

    @property
    def name(self):
        return self["config"]["name"]


def dtype_policy_config(name):
    return DTypePolicyConfig(module="keras", class_name="DTypePolicy", config={"name": name},
                             registered_name=None)


def dtype_from_config(value):
    """A dtype name from a Keras 3 `DTypePolicy` dict, a Keras 2 `Policy` dict or a name."""
    if isinstance(value, dict) and isinstance(value.get("config"), dict):
        return value["config"].get("name")
    return value


# ------------------------------------------------------------------------ class registry
_IMPORTED = []


def _import_layer_modules():
    """Import every `lamina.layers.*` module once, so each layer class is known by name."""
    if _IMPORTED:
        return
    _IMPORTED.append(True)
    import lamina.layers
    for info in pkgutil.walk_packages(lamina.layers.__path__, "lamina.layers."):
        try:
            importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - a half-written module must not break loading
            continue


def _all_subclasses(cls):
    out, stack = [], list(cls.__subclasses__())
    while stack:
        sub = stack.pop()
        out.append(sub)
        stack.extend(sub.__subclasses__())
    return out


def layer_classes():
    """`{class name: class}` of every lamina layer and model (public exports first)."""
    import lamina.layers
    from lamina.engine.functional import Functional
    from lamina.engine.input_layer import InputLayer
    from lamina.engine.layer import Layer
    from lamina.engine.model import Model
    from lamina.engine.sequential import Sequential

    table = {name: obj for name, obj in vars(lamina.layers).items()
             if inspect.isclass(obj) and issubclass(obj, Layer)}
    table.update(Functional=Functional, Sequential=Sequential, Model=Model,
                 InputLayer=InputLayer, Layer=Layer)
    _import_layer_modules()
    for cls in _all_subclasses(Layer):
        if cls.__module__.startswith("lamina.") and not cls.__name__.startswith("_"):
            table.setdefault(cls.__name__, cls)
    return table


def _from_lamina_module(module, class_name):
    """`keras.src.applications.x.Cls` -> `lamina.applications.x.Cls`, if lamina has it."""
    if not isinstance(module, str):
        return None
    for prefix in _MODULE_PREFIXES:
        if module.startswith(prefix):
            candidate = "lamina." + module[len(prefix):]
            break
    else:
        return None
    try:
        if importlib.util.find_spec(candidate) is None:
            return None
        obj = getattr(importlib.import_module(candidate), class_name, None)
    except (ImportError, ValueError):
        return None
    return obj if inspect.isclass(obj) else None


def get_layer_class(class_name, module=None, registered_name=None, custom_objects=None):
    """The class for a layer config: custom/registered objects, then lamina's own classes."""
    for name in (registered_name, class_name):
        if name:
            obj = object_registration.get_registered_object(name, custom_objects)
            if obj is not None:
                return obj
    table = layer_classes()
    if class_name in table:
        return table[class_name]
    obj = _from_lamina_module(module, class_name)
    if obj is not None:
        return obj
    raise ValueError(_unknown_layer_message(class_name, module, table, custom_objects))


def _unknown_layer_message(class_name, module, table, custom_objects):
    where = f" (module '{module}')" if module else ""
    hint = ""
    if class_name in _TF_OP_LAYERS:
        hint = (" It is a raw TensorFlow operation that Keras 2 recorded in the graph; lamina "
                "does not run TensorFlow code. Rebuild that part of the model with layers.")
    custom = sorted(set(object_registration.get_custom_objects()) | set(custom_objects or ()))
    return (f"Unknown layer: '{class_name}'{where}.{hint} Please ensure you are passing it in "
            "`custom_objects=` (or a `custom_object_scope`), or that it is registered with "
            "`@lamina.saving.register_keras_serializable()`. Known layers: "
            f"{', '.join(sorted(table))}. Registered custom objects: "
            f"{', '.join(custom) if custom else 'none'}.")


# ------------------------------------------------------------------------ config cleanup
def _accepted_kwargs(cls):
    """Keyword names `cls(...)` accepts, following `**kwargs` up the MRO (None: unknown)."""
    from lamina.engine.layer import _ALLOWED_KWARGS, Layer

    accepted = set()
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        try:
            params = inspect.signature(klass.__dict__["__init__"]).parameters.values()
        except (TypeError, ValueError):
            return None
        has_var_kw = False
        for p in params:
            if p.kind == p.VAR_KEYWORD:
                has_var_kw = True
            elif p.kind != p.VAR_POSITIONAL:
                accepted.add(p.name)
        if klass is Layer:
            return accepted | set(_ALLOWED_KWARGS)
        if not has_var_kw:
            return accepted
    return None


def normalize_layer_config(cls, config):
    """`config` ready for `cls(**config)`: dtype policies become names, and keys `cls` does not
    take whose value is None (Keras 3 extras like `quantization_config`) are dropped."""
    config = dict(config)
    if "dtype" in config:
        config["dtype"] = dtype_from_config(config["dtype"])
    if cls.__name__ == "Lambda":
        _normalize_lambda_config(config)
    accepted = _accepted_kwargs(cls)
    if accepted is not None:
        for key in [k for k in config if k not in accepted]:
            if config[key] is None:
                del config[key]
    return config


def _normalize_lambda_config(config):
    """Keras 2 `Lambda` configs: fold `function_type`/`module` keys into the function."""
    function_type = config.pop("function_type", None)
    config.pop("module", None)
    config.pop("output_shape_type", None)
    config.pop("output_shape_module", None)
    if function_type == "lambda" and isinstance(config.get("function"), str):
        config["function"] = [config["function"], None, None]


def _normalize_tree(value, custom_objects):
    """Dtype policies -> names everywhere, and nested layer configs cleaned for their class."""
    if isinstance(value, list):
        return [_normalize_tree(v, custom_objects) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "dtype":
            item = dtype_from_config(item)
        out[key] = _normalize_tree(item, custom_objects)
    class_name = out.get("class_name")
    if isinstance(class_name, str) and isinstance(out.get("config"), dict) \
            and not class_name.startswith("__"):
        cls = _quiet_layer_class(out, custom_objects)
        if cls is not None:
            out["config"] = normalize_layer_config(cls, out["config"])
    return out


def _quiet_layer_class(entry, custom_objects):
    from lamina.engine.layer import Layer
    try:
        cls = get_layer_class(entry["class_name"], entry.get("module"),
                              entry.get("registered_name"), custom_objects)
    except ValueError:
        return None
    return cls if inspect.isclass(cls) and issubclass(cls, Layer) else None


# ------------------------------------------------------------------------ serialisation
def _is_model(obj):
    from lamina.engine.model import Model
    return isinstance(obj, Model)


def _is_functional(obj):
    from lamina.engine.functional import Functional
    return isinstance(obj, Functional)


def _is_sequential(obj):
    from lamina.engine.sequential import Sequential
    return isinstance(obj, Sequential)


def _public_module(cls):
    from lamina.engine.functional import Functional
    from lamina.engine.sequential import Sequential

    if cls is Functional:
        return "keras.src.models.functional"
    if cls is Sequential:
        return "keras"
    module = cls.__module__
    if module.startswith(("lamina.layers", "lamina.engine")):
        return "keras.layers"
    if module.startswith("lamina."):
        return "keras.src." + module[len("lamina."):]
    return module


def _registered_name(cls):
    from lamina.engine.functional import Functional

    if cls is Functional:
        return "Functional"
    if cls.__module__.startswith("lamina."):
        return object_registration._GLOBAL_CUSTOM_NAMES.get(cls)
    return object_registration.get_registered_name(cls)


def _plain(value):
    """JSON-ready copy: tuples -> lists, numpy scalars -> numbers, policies -> plain dicts."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": value.tolist(), "dtype": str(value.dtype)}}
    return value


def serialize_layer(layer, legacy=False):
    """The Keras 3 dict of a layer or model (`legacy=True`: the `.h5` form, no `module`)."""
    cls = type(layer)
    config = layer.get_config()
    if isinstance(layer, Operation):  # as Keras writes its operation nodes
        return {"module": layer.module, "class_name": layer.operation, "config": config,
                "registered_name": layer.operation}
    if legacy:
        name = object_registration._GLOBAL_CUSTOM_NAMES.get(cls, cls.__name__)
        return {"class_name": name, "config": _plain(config)}
    out = {"module": _public_module(cls), "class_name": cls.__name__, "config": _plain(config),
           "registered_name": _registered_name(cls)}
    build_config = layer.get_build_config() if hasattr(layer, "get_build_config") else None
    if _is_functional(layer) and not layer._inbound_nodes:
        build_config = {"input_shape": None}
    if build_config is not None:
        out["build_config"] = _plain(build_config)
    if _is_model(layer):
        out["compile_config"] = _plain(get_compile_config(layer))
    return out


def _functional_like(cls):
    from lamina.engine.functional import Functional

    if cls.__init__ is Functional.__init__:
        return True
    spec = inspect.getfullargspec(cls.__init__)
    return spec.varargs is not None and spec.varkw is not None


def _kept_node_indices(model):
    """id(node) -> the node's index among this model's calls of its layer (Keras's numbering
    in `inbound_nodes`), and the set of the model's node ids."""
    own = {id(n) for n in model._nodes}
    for tensor in model._inputs:
        layer = tensor._keras_history[0]
        own.add(id(layer._inbound_nodes[tensor._keras_history[1]]))
    kept = {}
    for layer in model._graph_layers:
        index = 0
        for node in layer._inbound_nodes:
            if id(node) in own:
                kept[id(node)] = index
                index += 1
    return kept, own


def _history(tensor, kept, io=False):
    layer, node_index, tensor_index = tensor._keras_history
    index = kept[id(layer._inbound_nodes[node_index])]
    if io and _is_functional(layer):
        index += 1  # Keras numbers a functional's calls from 1 in `input/output_layers`
    return [layer.name, index, tensor_index]


def _serialize_node_value(value, kept):
    from lamina.engine.keras_tensor import KerasTensor

    if isinstance(value, KerasTensor):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(value.shape), "dtype": value.dtype,
                           "keras_history": _history(value, kept)}}
    if isinstance(value, (list, tuple)):
        return [_serialize_node_value(v, kept) for v in value]
    if isinstance(value, dict):
        return {k: _serialize_node_value(v, kept) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return _plain(serialization_lib.serialize_keras_object(value))


def functional_get_config(model):
    """Keras 3 config of a functional model: layers with inbound nodes, inputs, outputs."""
    from lamina.engine import keras_tensor as kt
    from lamina.engine.model import Model

    if not _functional_like(type(model)):
        return Model.get_config(model)
    kept, own = _kept_node_indices(model)
    layers = []
    for layer in model._graph_layers:  # with the operation nodes that `layers` leaves out
        entry = serialize_layer(layer, legacy=_LEGACY.active)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"args": _serialize_node_value(list(node.call_args), kept),
             "kwargs": _serialize_node_value(node.call_kwargs, kept)}
            for node in layer._inbound_nodes if id(node) in own and not node.is_input]
        layers.append(entry)
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": kt.map_structure(lambda t: _history(t, kept, io=True), _as_list(
                model._input_struct)),
            "output_layers": kt.map_structure(lambda t: _history(t, kept, io=True), _as_list(
                model._output_struct))}


def _as_list(structure):
    return list(structure) if isinstance(structure, tuple) else structure


def sequential_get_config(model):
    """Keras 3 config of a Sequential: its layers (InputLayer first when built)."""
    from lamina.engine.input_layer import InputLayer
    from lamina.engine.model import Model
    from lamina.engine.sequential import Sequential

    if type(model).__init__ is not Sequential.__init__:
        return Model.get_config(model)
    layers = [serialize_layer(layer, legacy=_LEGACY.active) for layer in model._stack]
    config = {"name": model.name, "trainable": model.trainable,
              "dtype": dtype_policy_config(model.dtype_policy.name), "layers": layers}
    if model._stack and isinstance(model._stack[0], InputLayer) and model.built:
        config["build_input_shape"] = list(model._stack[0].batch_shape)
    return config


class _LegacyFlag:
    active = False


_LEGACY = _LegacyFlag()


class legacy_scope:
    """Within it, model configs use the `.h5` form (layers without `module`)."""

    def __enter__(self):
        self._previous = _LEGACY.active
        _LEGACY.active = True

    def __exit__(self, *exc):
        _LEGACY.active = self._previous


def serialize_model(model):
    """The top-level Keras 3 dict of a model (what `to_json` and `config.json` hold)."""
    return serialize_layer(model)


def legacy_model_config(model):
    """The `model_config` of a legacy `.h5` file: `{"class_name", "config"}`."""
    with legacy_scope():
        return serialize_layer(model, legacy=True)


# ------------------------------------------------------------------------ compile config
def _loss_identifier(loss):
    from lamina import losses

    if loss is None:
        return None
    if isinstance(loss, losses.LossFunctionWrapper) and not getattr(loss, "_fn_kwargs", None) \
            and getattr(loss.fn, "__name__", None) and type(loss).__name__ in (
                "LossFunctionWrapper", "_FunctionLoss"):
        return object_registration.get_registered_name(loss.fn)
    return _plain(serialization_lib.serialize_keras_object(loss))


def _metric_identifier(metric):
    if isinstance(metric, str) or metric is None:
        return metric
    if inspect.isclass(metric):
        return metric.__name__
    return _plain(serialization_lib.serialize_keras_object(metric))


def _metrics_structure(per_output, names):
    per_output = [[_metric_identifier(m) for m in ms] for ms in per_output]
    if not any(per_output):
        return None
    if len(per_output) == 1:
        return per_output[0]
    if all(ms == per_output[0] for ms in per_output):
        return per_output[0]
    return {name: ms for name, ms in zip(names, per_output) if ms}


def get_compile_config(model):
    """Keras's `compile_config` of a model: `{}` when it was not compiled."""
    from lamina import optimizers

    trainer = getattr(model, "_trainer", None)
    if trainer is None:
        return {}
    names = list(trainer.output_names)
    loss, loss_weights = None, None
    if trainer.compile_loss is not None:
        losses_ = [_loss_identifier(l) for l in trainer.compile_loss.losses]
        loss = losses_[0] if len(losses_) == 1 else losses_
        weights = trainer.compile_loss.weights
        if any(w != 1.0 for w in weights):
            loss_weights = weights[0] if len(weights) == 1 else list(weights)
    specs = trainer.compile_metrics.specs
    return _plain({
        "optimizer": optimizers.serialize(trainer.optimizer), "loss": loss,
        "loss_weights": loss_weights, "metrics": _metrics_structure(specs[0], names),
        "weighted_metrics": _metrics_structure(specs[1], names),
        "run_eagerly": bool(trainer.run_eagerly),
        "steps_per_execution": trainer.steps_per_execution,
        "jit_compile": bool(trainer.jit_compile)})


def _deserialize_compile_value(value, module, custom_objects):
    """Strings stay names; object configs are rebuilt; lists/dicts by output are mapped."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_deserialize_compile_value(v, module, custom_objects) for v in value]
    if isinstance(value, dict) and "class_name" in value:
        try:
            return module.deserialize(value, custom_objects=custom_objects)
        except (ValueError, TypeError) as error:
            name = value.get("config", {}).get("name") if isinstance(
                value.get("config"), dict) else None
            if isinstance(name, str):
                warnings.warn(f"Could not rebuild {value['class_name']} from the saved compile "
                              f"config ({error}); using the name {name!r} instead.",
                              stacklevel=3)
                return name
            raise
    if isinstance(value, dict):
        return {k: _deserialize_compile_value(v, module, custom_objects)
                for k, v in value.items()}
    return value


def compile_from_config(model, config, custom_objects=None):
    """`model.compile(...)` from a `compile_config` or a legacy `training_config`."""
    with object_registration.CustomObjectScope(custom_objects or {}):
        _compile_from_config(model, config, custom_objects)


def _compile_from_config(model, config, custom_objects):
    from lamina import losses, metrics, optimizers

    optimizer = config.get("optimizer", config.get("optimizer_config", "rmsprop"))
    if isinstance(optimizer, dict):
        optimizer = dict(optimizer)
        name = optimizer.get("class_name", "")
        if isinstance(name, str) and ">" in name and object_registration.get_registered_object(
                name, custom_objects) is None:
            optimizer["class_name"] = name.split(">")[-1]  # tf.keras 2.11+ wrote "Custom>Adam"
        optimizer = optimizers.deserialize(optimizer, custom_objects=custom_objects)
    loss = _deserialize_compile_value(config.get("loss"), losses, custom_objects)
    metric_list = _deserialize_compile_value(config.get("metrics"), metrics, custom_objects)
    weighted = _deserialize_compile_value(config.get("weighted_metrics"), metrics,
                                          custom_objects)
    single = len(model.output_names) == 1
    if single and isinstance(metric_list, list) and len(metric_list) == 1 \
            and isinstance(metric_list[0], list):
        metric_list = metric_list[0]  # Keras 2 wrote one list per output
    if single and isinstance(weighted, list) and len(weighted) == 1 \
            and isinstance(weighted[0], list):
        weighted = weighted[0]
    model.compile(optimizer=optimizer, loss=loss, loss_weights=config.get("loss_weights"),
                  metrics=metric_list, weighted_metrics=weighted,
                  run_eagerly=bool(config.get("run_eagerly") or False),
                  steps_per_execution=config.get("steps_per_execution") or 1,
                  jit_compile=bool(config.get("jit_compile") or False))


# ------------------------------------------------------------------------ deserialisation
def _call_from_config(cls, inner, custom_objects, safe_mode):
    from lamina.engine.layer import Layer

    if inspect.isclass(cls) and issubclass(cls, Layer):
        inner = normalize_layer_config(cls, inner)
    if not hasattr(cls, "from_config"):
        return cls(**inner)
    try:
        params = inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {}
    if "custom_objects" in params:
        kwargs["custom_objects"] = custom_objects
    if "safe_mode" in params:
        kwargs["safe_mode"] = safe_mode
    return cls.from_config(inner, **kwargs)


def deserialize_layer(config, custom_objects=None, safe_mode=None, build=True):
    """A layer or model from its Keras 3 or Keras 2 dict (`{"class_name", "config", ...}`)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("A layer config must be a dict with a 'class_name' and a 'config'. "
                         f"Received: {str(config)[:200]}")
    with object_registration.CustomObjectScope(custom_objects or {}), \
            SafeModeScope(safe_mode if safe_mode is not None else _current_safe_mode()):
        config = _normalize_tree(config, custom_objects)
        cls = get_layer_class(config["class_name"], config.get("module"),
                              config.get("registered_name"), custom_objects)
        inner = config.get("config")
        if inner is None:
            inner = {}
        if isinstance(inner, list) and getattr(cls, "__name__", "") == "Sequential":
            inner = {"layers": inner}  # Keras < 2.3 stored a Sequential as its layer list
        layer = _call_from_config(cls, inner, custom_objects, safe_mode)
        build_config = config.get("build_config")
        if build and build_config and not getattr(layer, "built", True) \
                and hasattr(layer, "build_from_config"):
            layer.build_from_config(build_config)
    return layer


def _current_safe_mode():
    from lamina.saving.lambda_serialization import in_safe_mode
    return in_safe_mode()


def model_from_config(config, custom_objects=None, safe_mode=None, compile=True):
    """A model (or layer) from a Keras config dict; compiles it if the dict has a
    non-empty `compile_config`, as Keras does."""
    model = deserialize_layer(config, custom_objects=custom_objects, safe_mode=safe_mode)
    compile_config = config.get("compile_config") if isinstance(config, dict) else None
    if compile and compile_config and _is_model(model):
        compile_from_config(model, compile_config, custom_objects)
    return model


def layer_from_config(cls, config, custom_objects=None):
    """`Layer.from_config`: functional configs build a graph; others go to `cls(**config)`."""
    from lamina.engine.model import Model

    if isinstance(config, dict) and issubclass(cls, Model) and "layers" in config \
            and "input_layers" in config:
        return functional_from_config(cls, config, custom_objects)
    with object_registration.CustomObjectScope(custom_objects or {}):
        return cls(**normalize_layer_config(cls, _normalize_tree(config, custom_objects)))


class _NotReady(Exception):
    """A node refers to a layer call that has not been re-created yet."""


def _is_keras_op(entry):
    module = entry.get("module")
    return isinstance(module, str) and module.startswith(("keras.src.ops", "keras.ops"))


class _Created(dict):
    """Layers re-created so far, by name, with the Keras 2 first-node offsets noted at
    creation (Keras 2 models built on an input owned a first node, counted everywhere)."""

    def __init__(self):
        super().__init__()
        self.legacy_offsets = {}

    def add(self, name, layer):
        self[name] = layer
        built_model = _is_functional(layer) or (_is_sequential(layer) and layer.built)
        self.legacy_offsets[name] = 1 if built_model else 0


def _node_offset(created, name, legacy, io):
    """How many calls Keras numbered before the first real call of layer `name`: Keras 3
    counts one for functional models in `input_layers`/`output_layers` only."""
    if legacy:
        return created.legacy_offsets.get(name, 0)
    return 1 if io and _is_functional(created[name]) else 0


def _resolve_tensor(history, created, ops, legacy, io=False):
    name, node_index, tensor_index = history[0], history[1], history[2]
    if name in ops:
        return _OpOutput(name, ops[name])
    if name not in created:
        raise ValueError(f"Invalid functional model configuration: a node refers to layer "
                         f"'{name}', which is not in the config.")
    layer = created[name]
    index = node_index - _node_offset(created, name, legacy, io)
    if index < 0:
        index = 0
    if index >= len(layer._inbound_nodes):
        raise _NotReady(name)
    node = layer._inbound_nodes[index]
    return node.output_tensors[tensor_index]


class _OpOutput:
    """The output of a Keras operation node (not a layer), e.g. an auto-computed mask."""

    def __init__(self, name, entry):
        self.name, self.entry = name, entry


def _revive_value(value, created, ops, legacy, custom_objects):
    if isinstance(value, list):
        return [_revive_value(v, created, ops, legacy, custom_objects) for v in value]
    if not isinstance(value, dict):
        return value
    class_name = value.get("class_name")
    if class_name == "__keras_tensor__":
        return _resolve_tensor(value["config"]["keras_history"], created, ops, legacy)
    if class_name == "__tuple__":
        return tuple(_revive_value(v, created, ops, legacy, custom_objects)
                     for v in value["config"]["value"])
    if class_name == "__numpy__":
        return np.array(value["config"]["value"], dtype=value["config"]["dtype"])
    if class_name == "__bytes__":
        return value["config"]["value"].encode("utf-8")
    if class_name == "__ellipsis__":
        return Ellipsis
    if class_name == "__slice__":
        c = value["config"]
        return slice(c.get("start"), c.get("stop"), c.get("step"))
    if class_name == "__lambda__":
        raise ValueError("A node of the functional graph carries a Python lambda; lamina "
                         "does not load code from model files.")
    if isinstance(class_name, str) and "config" in value:
        return serialization_lib.deserialize_keras_object(value, custom_objects=custom_objects)
    return {k: _revive_value(v, created, ops, legacy, custom_objects) for k, v in value.items()}


def _deserialize_node(node_data, created, ops, custom_objects):
    """(args, kwargs) of one layer call from its Keras 3 dict or Keras 2 nested list."""
    if isinstance(node_data, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
        tensors, kwargs = [], {}
        for item in node_data:
            if not isinstance(item, list) or len(item) not in (3, 4) \
                    or not isinstance(item[0], str):
                raise ValueError(f"Cannot deserialize the model: invalid node data {item!r}.")
            tensors.append(_resolve_tensor(item, created, ops, legacy=True))
            if len(item) == 4 and item[3]:
                kwargs = _revive_value(dict(item[3]), created, ops, True, custom_objects)
        args = [tensors[0] if len(tensors) == 1 else tensors]
    else:
        args = _revive_value(list(node_data.get("args", [])), created, ops, False,
                             custom_objects)
        kwargs = _revive_value(dict(node_data.get("kwargs", {})), created, ops, False,
                               custom_objects)
    kwargs.pop("training", None)
    if kwargs.get("mask", 0) is None or isinstance(kwargs.get("mask"), _OpOutput):
        kwargs.pop("mask")  # lamina propagates masks itself
    for value in list(args) + list(kwargs.values()):
        for leaf in value if isinstance(value, list) else [value]:
            if isinstance(leaf, _OpOutput):
                raise ValueError(
                    f"The functional graph uses the Keras operation '{leaf.entry['class_name']}'"
                    f" ({leaf.entry.get('module')}) as a layer input; lamina rebuilds graphs "
                    "from layers only. Replace the operation with a layer (e.g. `Lambda` or a "
                    "merge layer).")
    return list(args), kwargs


def _map_io(structure, created, ops, legacy):
    if isinstance(structure, list) and len(structure) == 3 and isinstance(structure[0], str) \
            and isinstance(structure[1], int):
        return _resolve_tensor(structure, created, ops, legacy, io=True)
    if isinstance(structure, dict):
        return {k: _map_io(v, created, ops, legacy) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_map_io(v, created, ops, legacy) for v in structure]
    raise ValueError(f"Invalid functional model configuration: cannot read the inputs/outputs "
                     f"entry {structure!r}.")


def functional_from_config(cls, config, custom_objects=None, safe_mode=None, make_layer=None):
    """Rebuild a functional model by re-calling each layer on its recorded inputs.

    `make_layer(entry)` overrides how layers are created (used by `clone_model`).
    """
    config = dict(config)
    entries = config.pop("layers")
    input_layers = config.pop("input_layers")
    output_layers = config.pop("output_layers")
    name = config.pop("name", None)
    trainable = config.pop("trainable", True)
    created, queues, ops, order = _Created(), {}, {}, []
    legacy = any(isinstance(node, list) for entry in entries
                 for node in entry.get("inbound_nodes") or [])
    known = layer_classes()
    with object_registration.CustomObjectScope(custom_objects or {}):
        for entry in entries:
            layer_name = entry.get("name") or entry.get("config", {}).get("name")
            op = entry.get("class_name") if _is_keras_op(entry) else None
            if op is not None and op not in OPERATIONS and op not in known:
                ops[layer_name] = entry  # used only where it can be skipped (masks), or refused
                continue
            if op in OPERATIONS:
                layer = Operation(op, name=layer_name)
            elif make_layer is not None:
                layer = make_layer(entry)
            else:
                layer = deserialize_layer(entry, custom_objects, safe_mode, build=False)
            created.add(layer_name, layer)
            queues[layer_name] = list(entry.get("inbound_nodes") or [])
            order.append(layer_name)
        while any(queues.values()):
            progressed = False
            for layer_name in order:
                queue = queues[layer_name]
                while queue:
                    try:
                        args, kwargs = _deserialize_node(queue[0], created, ops, custom_objects)
                    except _NotReady:
                        break
                    created[layer_name](*args, **kwargs)
                    queue.pop(0)
                    progressed = True
            if not progressed:
                pending = {k: len(v) for k, v in queues.items() if v}
                raise ValueError("Invalid functional model configuration. The graph either has "
                                 "loops or disconnected nodes; these layers still have "
                                 f"unprocessed calls: {pending}")
        inputs = _map_io(input_layers, created, ops, legacy)
        outputs = _map_io(output_layers, created, ops, legacy)
    if legacy:  # Keras 2 listed single inputs/outputs as one-element lists
        inputs = inputs[0] if isinstance(inputs, list) and len(inputs) == 1 else inputs
        outputs = outputs[0] if isinstance(outputs, list) and len(outputs) == 1 else outputs
    config.pop("dtype", None)
    model = cls(inputs=inputs, outputs=outputs, name=name, **config)
    if trainable is False:
        model.trainable = False
    return model


def sequential_from_config(cls, config, custom_objects=None, safe_mode=None):
    """Rebuild a Sequential model from its layers' configs."""
    if isinstance(config, list):
        config = {"layers": config}
    if "layers" not in config:
        raise ValueError("A Sequential model configuration must be a dict containing the "
                         f"'layers' key. Received: config={str(config)[:200]}")
    model = cls(name=config.get("name"))
    for entry in config["layers"]:
        layer = deserialize_layer(entry, custom_objects, safe_mode)
        model.add(layer, rebuild=False)
    model._maybe_rebuild()
    shape = config.get("build_input_shape")
    if not model.built and isinstance(shape, (list, tuple)) and shape:
        model.build(tuple(shape))
    if config.get("trainable") is False:
        model.trainable = False
    return model


def to_shape(value):
    """A saved shape (lists, possibly nested) as tuples of ints/None."""
    if isinstance(value, (list, tuple)):
        if all(v is None or isinstance(v, int) for v in value):
            return tuple(value)
        return [to_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: to_shape(v) for k, v in value.items()}
    return value
