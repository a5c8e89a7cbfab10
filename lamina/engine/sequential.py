"""`Sequential`: a plain stack of layers.

>>> model = Sequential([Dense(64, activation="relu", input_shape=(784,)), Dense(10)])
>>> model.add(Activation("softmax"))
"""
from torch import nn

from lamina import backend
from lamina.engine.input_layer import InputLayer
from lamina.engine.keras_tensor import KerasTensor
from lamina.engine.model import Model


class Sequential(Model):
    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(trainable=trainable, name=name)
        self._stack = nn.ModuleList()
        self._functional = None
        for layer in layers or ():
            self.add(layer, rebuild=False)
        self._maybe_rebuild()

    def add(self, layer, rebuild=True):
        """Append a layer (or the `InputLayer` behind an `Input()` tensor)."""
        if isinstance(layer, KerasTensor):
            history = layer._keras_history
            if history is None or not isinstance(history[0], InputLayer):
                raise ValueError("Only input tensors may be passed to `Sequential.add()`. "
                                 f"Received: {layer}")
            layer = history[0]
        if not isinstance(layer, nn.Module):
            raise ValueError("Only instances of `keras.Layer` can be added to a Sequential "
                             f"model. Received: {layer!r} (of type {type(layer)})")
        if isinstance(layer, InputLayer) and self._stack and isinstance(self._stack[0], InputLayer):
            raise ValueError(f"Sequential model '{self.name}' has already been configured to use "
                             f"input shape {self._stack[0].batch_shape}. You cannot add a "
                             "different Input layer to it.")
        if (not self._stack and not isinstance(layer, InputLayer)
                and getattr(layer, "_batch_input_shape", None) is not None):
            self._stack.append(InputLayer(batch_shape=layer._batch_input_shape))
        names = {l.name for l in self._stack}
        if layer.name in names:
            raise ValueError(f"All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model. "
                             "Update the `name` argument to pass a unique name.")
        self._stack.append(layer)
        if rebuild:
            self._maybe_rebuild()

    def pop(self, rebuild=True):
        if not self.layers:
            raise IndexError("There are no layers in the model.")
        layer = self._stack[-1]
        del self._stack[-1]
        self._functional = None
        self.built = False
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _maybe_rebuild(self):
        self.built = False
        self._functional = None
        if self._stack and isinstance(self._stack[0], InputLayer) and len(self._stack) > 1:
            self._build_graph(self._stack[0].batch_shape)

    def _build_graph(self, batch_shape):
        from lamina.engine.functional import Functional

        if not isinstance(self._stack[0], InputLayer):
            self._stack.insert(0, InputLayer(batch_shape=batch_shape))
        x = inputs = self._stack[0]._input_tensor
        for layer in self._stack[1:]:
            x = layer(x)
        # Keras builds an inner functional model here; it takes a `functional` name too.
        self.__dict__["_functional"] = Functional(inputs, x, name=backend.unique_name("functional"))
        self.built = True

    def build(self, input_shape=None):
        if input_shape is None:
            raise ValueError("You must provide an `input_shape` argument.")
        if not self.built:
            self._build_graph(tuple(input_shape))

    def _maybe_build(self, args, kwargs):
        if not self.built:
            self._build_graph((None,) + tuple(args[0].shape[1:]))

    def call(self, inputs, training=None, mask=None):
        x = inputs
        for layer in self._stack:
            if not isinstance(layer, InputLayer):
                x = layer(x)
        return x

    @property
    def layers(self):
        return [layer for layer in self._stack if not isinstance(layer, InputLayer)]

    def _sublayers(self):
        return self.layers

    def _graph(self, what):
        if self._functional is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined {what} yet: it "
                                 "is built on its first call or with an input shape.")
        return self._functional

    @property
    def inputs(self):
        return self._graph("inputs").inputs

    @property
    def outputs(self):
        return self._graph("outputs").outputs

    @property
    def input(self):
        return self._graph("input").input

    @property
    def output(self):
        return self._graph("output").output

    @property
    def input_shape(self):
        return self._graph("input_shape").input_shape

    @property
    def output_shape(self):
        return self._graph("output_shape").output_shape

    @property
    def output_names(self):
        return [self.layers[-1].name] if self.layers else []

    @property
    def input_names(self):
        return [self._stack[0].name] if self._functional is not None else []

    # --------------------------------------------------------------- config
    def get_config(self):
        from lamina.saving import config as config_lib
        return config_lib.sequential_get_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from lamina.saving import config as config_lib
        return config_lib.sequential_from_config(cls, config, custom_objects)
