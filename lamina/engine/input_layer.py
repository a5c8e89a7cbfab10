"""`Input()` and `InputLayer`: where a functional graph starts.

>>> x = Input(shape=(784,), name="pixels")
>>> x.shape
(None, 784)
"""
from lamina import backend
from lamina.engine.keras_tensor import KerasTensor
from lamina.engine.layer import Layer
from lamina.engine.node import Node


class InputLayer(Layer):
    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None,
                 input_tensor=None, name=None, **kwargs):
        legacy_shape = kwargs.pop("input_shape", None)
        legacy_batch = kwargs.pop("batch_input_shape", None)
        if name is None:
            name = backend.unique_name("input_layer")
        super().__init__(name=name, dtype=dtype, **kwargs)
        # The input's dtype: floatx's unless given, whatever the policy, as in Keras.
        self.dtype = backend.standardize_dtype(dtype or backend.floatx())
        shape = shape if shape is not None else legacy_shape
        batch_shape = batch_shape if batch_shape is not None else legacy_batch
        if input_tensor is not None:
            batch_shape = input_tensor.shape
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument to `Input`/`InputLayer`.")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        self._batch_shape = tuple(batch_shape)
        self.sparse = bool(sparse)
        self.built = True
        if input_tensor is None:
            input_tensor = KerasTensor(self._batch_shape, dtype=self.dtype, name=self.name)
        self._input_tensor = input_tensor
        Node(self, (), {}, input_tensor)

    @property
    def batch_shape(self):
        return self._batch_shape

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_shape": list(self._batch_shape), "dtype": self.dtype,
                "sparse": self.sparse, "ragged": False, "name": self.name, "optional": False}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if "batch_input_shape" in config:  # Keras 2 configs
            config["batch_shape"] = config.pop("batch_input_shape")
        config.pop("ragged", None)
        config.pop("optional", None)
        return cls(**config)


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
          tensor=None, **kwargs):
    """A symbolic input tensor: the start of a functional model."""
    if kwargs:
        legacy = kwargs.pop("batch_input_shape", None)
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to Input: {kwargs}")
        batch_shape = legacy
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       batch_shape=batch_shape, name=name, input_tensor=tensor)
    return layer._input_tensor
