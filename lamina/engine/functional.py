"""`Functional`: a model defined by a graph of layer calls on symbolic tensors.

>>> inputs = Input(shape=(784,))
>>> outputs = Dense(10)(Dense(64, activation="relu")(inputs))
>>> model = Model(inputs, outputs)      # a Functional
"""
import torch

from lamina import backend
from lamina.engine import keras_tensor as kt
from lamina.engine.keras_tensor import KerasTensor
from lamina.engine.layer import _cast_keeping_mask, _to_tensor
from lamina.engine.model import Model


def map_graph(inputs, outputs):
    """Walk the graph back from `outputs`: (nodes in execution order, layers in Keras order).

    Layers are ordered by decreasing depth (inputs deepest), ties broken by the order in which
    a depth-first walk from the outputs first reaches them, which is Keras's own rule.
    """
    finished, in_progress = set(), set()
    nodes_in_order, layer_index = [], {}

    def visit(tensor):
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        if id(node) in finished:
            return
        if id(node) in in_progress:
            raise ValueError(f"Cycle detected in the graph at layer '{layer.name}'.")
        layer_index.setdefault(layer, len(layer_index))
        in_progress.add(id(node))
        for parent in node.input_tensors:
            visit(parent)
        in_progress.discard(id(node))
        finished.add(id(node))
        nodes_in_order.append(node)

    for tensor in outputs:
        visit(tensor)

    node_depth, layer_depth = {}, {}
    for node in reversed(nodes_in_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(node.layer, 0))
        layer_depth[node.layer] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))

    for tensor in inputs:
        layer = tensor._keras_history[0]
        if layer not in layer_depth:
            layer_depth[layer] = 0
            layer_index[layer] = -1
            nodes_in_order.insert(0, layer._inbound_nodes[0])
            node_depth[id(layer._inbound_nodes[0])] = 0

    nodes = sorted(nodes_in_order, key=lambda n: -node_depth[id(n)])  # stable: keeps DFS order
    layers = sorted(layer_depth, key=lambda layer: (-layer_depth[layer], layer_index[layer]))

    computable = {id(t) for t in inputs}
    for node in nodes:
        if node.is_input:
            if id(node.output_tensors[0]) not in computable:
                raise ValueError(
                    f"Graph disconnected: cannot find the value of tensor {node.output_tensors[0]} "
                    f"at layer '{node.layer.name}'. The following model inputs were accessed "
                    f"without problem: {[t.name for t in inputs]}")
            continue
        for tensor in node.input_tensors:
            if id(tensor) not in computable:
                raise ValueError(
                    f"Graph disconnected: cannot obtain value for tensor {tensor} at layer "
                    f"'{node.layer.name}'. The following previous layers were accessed without "
                    f"issue: {[l.name for l in layers if layer_depth[l] > layer_depth[node.layer]]}")
        computable.update(id(t) for t in node.output_tensors)
    return nodes, layers


class Functional(Model):
    _casts_inputs = False  # each input goes to its `Input`'s dtype instead, in `call`

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if inputs is None:
            inputs = kwargs.pop("input", None)
        if outputs is None:
            outputs = kwargs.pop("output", None)
        if inputs is None or outputs is None:
            raise ValueError("A functional model needs `inputs` and `outputs`. Received: "
                             f"inputs={inputs}, outputs={outputs}")
        super().__init__(name=name or backend.unique_name("functional"), trainable=trainable,
                         **kwargs)
        for tensor in kt.flatten(inputs) + kt.flatten(outputs):
            if not isinstance(tensor, KerasTensor) or tensor._keras_history is None:
                raise ValueError("All `inputs` and `outputs` of a functional model must be "
                                 f"symbolic tensors from `keras.Input` and layer calls. "
                                 f"Received: {tensor!r}")
        self._input_struct, self._output_struct = inputs, outputs
        self._inputs = kt.flatten(inputs)
        self._outputs = kt.flatten(outputs)
        nodes, layers = map_graph(self._inputs, self._outputs)
        self._nodes = [n for n in nodes if not n.is_input]
        self._graph_layers = layers
        self._plan = self._make_plan()
        self.built = True
        self._batch_input_shape = None

    # --------------------------------------------------------------- structure
    @property
    def layers(self):
        """The graph's layers; Keras operation nodes (`x + y`) are not layers, as in Keras."""
        from lamina.layers.operations import Operation
        return [layer for layer in self._graph_layers if not isinstance(layer, Operation)]

    def _sublayers(self):
        return list(self._graph_layers)

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input_names(self):
        return [t._keras_history[0].name for t in self._inputs]

    @property
    def output_names(self):
        if isinstance(self._output_struct, dict):
            return sorted(self._output_struct)
        return [t._keras_history[0].name for t in self._outputs]

    @property
    def input(self):
        return self._input_struct

    @property
    def output(self):
        return self._output_struct

    @property
    def input_shape(self):
        return kt.map_structure(lambda t: t.shape, self._input_struct)

    @property
    def output_shape(self):
        return kt.map_structure(lambda t: t.shape, self._output_struct)

    # --------------------------------------------------------------- execution
    def _make_plan(self):
        """One step per node: its layer, how it is called (`calling`), the slots it reads
        and writes, and the slots it reads last. Those are emptied once it has run, so that
        each intermediate tensor is freed after its last use, as in a hand-written forward
        (else a forward pass would hold every activation of the model at once)."""
        index = {id(t): i for i, t in enumerate(self._inputs)}
        steps = []
        for node in self._nodes:
            in_ids = [index[id(t)] for t in node.input_tensors]
            # `calling`: 1, on one tensor; 2, on one list of tensors (a merge layer); 0, as the
            # node recorded it.
            alone = node.call_args[0] if len(node.call_args) == 1 and not node.call_kwargs else None
            calling = (1 if isinstance(alone, KerasTensor) else 2 if type(alone) is list and all(
                isinstance(t, KerasTensor) for t in alone) else 0)
            for t in node.output_tensors:
                index[id(t)] = len(index)
            out_ids = [index[id(t)] for t in node.output_tensors]
            steps.append((node.layer, calling, in_ids, node, out_ids))
        self._output_ids = [index[id(t)] for t in self._outputs]
        self._slot_count = len(index)
        self._input_dtypes = [backend.torch_dtype(t.dtype) for t in self._inputs]
        last_reader = {i: n for n, step in enumerate(steps) for i in step[2]}
        for i in self._output_ids:
            last_reader.pop(i, None)
        frees = [[] for _ in steps]
        for i, n in last_reader.items():
            frees[n].append(i)
        return [step + (tuple(free),) for step, free in zip(steps, frees)]

    def _flatten_inputs(self, inputs):
        if isinstance(inputs, dict):
            if isinstance(self._input_struct, dict):
                missing = set(self._input_struct) - set(inputs)
                if missing:
                    raise ValueError(f"Model '{self.name}' is missing inputs {sorted(missing)}; "
                                     f"received keys {sorted(inputs)}.")
                return kt.flatten({k: inputs[k] for k in self._input_struct})
            names = self.input_names
            unknown = set(inputs) - set(names)
            if unknown or len(inputs) != len(names):
                raise ValueError(f"Model '{self.name}' expects inputs named {names}; received a "
                                 f"dict with keys {sorted(inputs)}.")
            return [inputs[n] for n in names]
        flat = kt.flatten(inputs)
        if len(flat) != len(self._inputs):
            raise ValueError(f"Model '{self.name}' expects {len(self._inputs)} input(s), but it "
                             f"received {len(flat)} input tensors.")
        return flat

    def call(self, inputs, training=None, mask=None):
        values = [None] * self._slot_count
        flat = self._flatten_inputs(inputs)
        for i, (x, spec) in enumerate(zip(flat, self._inputs)):
            if not hasattr(x, "shape") or not hasattr(x, "dtype"):
                x = _to_tensor(x, spec.dtype)
            elif isinstance(x, torch.Tensor) and x.dtype is not self._input_dtypes[i]:
                x = _cast_keeping_mask(x, self._input_dtypes[i])  # as Keras: per input
            values[i] = x
        for layer, calling, in_ids, node, out_ids, frees in self._plan:
            if calling == 1:
                outputs = layer(values[in_ids[0]])
            elif calling == 2:
                outputs = layer([values[i] for i in in_ids])
            else:
                outputs = _call_node(layer, node, [values[i] for i in in_ids])
            if len(out_ids) == 1:
                values[out_ids[0]] = outputs if not isinstance(outputs, (list, tuple)) else outputs[0]
            else:
                for i, value in zip(out_ids, kt.flatten(outputs)):
                    values[i] = value
            for i in frees:
                values[i] = None
        results = [values[i] for i in self._output_ids]
        if isinstance(self._output_struct, (list, tuple)) and len(results) == 1:
            return results[0]  # `Model(inputs, [output])` returns the tensor, as in Keras
        return kt.pack_like(self._output_struct, results)

    def compute_output_shape(self, input_shape):
        return self.output_shape

    # --------------------------------------------------------------- config
    def get_config(self):
        from lamina.saving import config as config_lib
        return config_lib.functional_get_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.saving import config as config_lib
        return config_lib.functional_from_config(cls, config, custom_objects)


def _call_node(layer, node, tensors):
    """Call `layer` as `node` recorded it, on `tensors` in place of its symbolic inputs
    (constant arguments stay as recorded). A function of its own, so that the arguments it
    builds are dropped when it returns."""
    tensors = iter(tensors)
    args, kwargs = kt.map_structure(lambda v: next(tensors) if isinstance(v, KerasTensor) else v,
                                    (node.call_args, node.call_kwargs))
    return layer(*args, **kwargs)
