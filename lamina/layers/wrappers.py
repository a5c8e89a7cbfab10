"""Layer wrappers: `Wrapper` (base) and `TimeDistributed`; `Bidirectional` is re-exported here
for the Keras 2 import path `keras.layers.wrappers.Bidirectional`."""
from lamina.engine import keras_tensor as kt
from lamina.engine.layer import Layer
from lamina.layers.recurrent.bidirectional import Bidirectional
from lamina.layers.recurrent.rnn import build_sublayer, deserialize_layer
from lamina.saving import serialization_lib

__all__ = ["Wrapper", "TimeDistributed", "Bidirectional"]


class Wrapper(Layer):
    """Base class for layers that wrap another layer (`self.layer`)."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Layer {layer} supplied to Wrapper isn't a supported layer type. "
                             "Please ensure wrapped layer is a valid Keras layer.")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        build_sublayer(self.layer, input_shape)
        self.built = True

    def get_config(self):
        return {**super().get_config(),
                "layer": serialization_lib.serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        layer = deserialize_layer(config.pop("layer"), custom_objects)
        return cls(layer, **config)


class TimeDistributed(Wrapper):
    """Applies `layer` (any layer or model) to every timestep of a `(batch, time, ...)` input.

    Time is folded into the batch axis, so the wrapped layer runs once on `(batch*time, ...)`.
    A `(batch, time)` mask is passed to the wrapped layer (as `(batch*time,)`) when it takes
    one, and is propagated unchanged.
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a "
                             f"`keras.layers.Layer` instance. Received: {layer}")
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _child_input_shape(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(f"Layer '{self.name}' (TimeDistributed) should be passed an input "
                             "with at least 3 dimensions (batch, time, ...). Received input "
                             f"shape: {None if input_shape is None else tuple(input_shape)}")
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape):
        build_sublayer(self.layer, self._child_input_shape(tuple(input_shape)))
        self.built = True

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._child_input_shape(tuple(input_shape)))
        return (child[0], input_shape[1], *child[1:])

    def call(self, inputs, training=None, mask=None):
        shape = tuple(inputs.shape)
        self._child_input_shape(shape)
        batch, steps = shape[0], shape[1]
        kwargs = {}
        if self.layer._call_takes_training:
            kwargs["training"] = training
        if mask is not None:
            if mask.dim() < 2 or tuple(mask.shape[:2]) != (batch, steps):
                raise ValueError(f"The `mask` passed to layer '{self.name}' (TimeDistributed) has "
                                 f"shape {tuple(mask.shape)}, incompatible with the input shape "
                                 f"{shape}: its first two dimensions must be ({batch}, {steps}).")
            if self.layer._call_takes_mask:
                kwargs["mask"] = mask.reshape((batch * steps,) + tuple(mask.shape[2:]))
        outputs = self.layer(inputs.reshape((batch * steps,) + shape[2:]), **kwargs)
        return kt.map_structure(
            lambda y: y.reshape((batch, steps) + tuple(y.shape[1:])), outputs)
