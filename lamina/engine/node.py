"""A `Node` records one call of a layer on symbolic tensors: the graph's edges.

Every time a layer is called on `KerasTensor`s it gains an inbound node; `get_output_at(i)`
reads the outputs of call `i`.
"""
from lamina.engine.keras_tensor import KerasTensor, flatten


class Node:
    def __init__(self, layer, call_args=(), call_kwargs=None, outputs=None):
        self.layer = layer
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs or {})
        self.outputs = outputs
        self.input_tensors = [x for x in flatten((self.call_args, self.call_kwargs))
                              if isinstance(x, KerasTensor)]
        self.output_tensors = flatten(outputs)
        self.is_input = not self.input_tensors
        node_index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, tensor in enumerate(self.output_tensors):
            tensor._keras_history = (layer, node_index, i)
        for parent in self.parent_nodes:
            parent.layer._outbound_nodes.append(self)

    @property
    def parent_nodes(self):
        parents = []
        for tensor in self.input_tensors:
            layer, node_index, _ = tensor._keras_history
            parents.append(layer._inbound_nodes[node_index])
        return parents

    @property
    def input_shapes(self):
        return [t.shape for t in self.input_tensors]

    @property
    def output_shapes(self):
        return [t.shape for t in self.output_tensors]

    def __repr__(self):
        return f"<Node layer={self.layer.name} inputs={len(self.input_tensors)}>"
