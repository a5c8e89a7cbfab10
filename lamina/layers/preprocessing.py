"""Preprocessing layers: Rescaling and Normalization (`keras.layers`).

Constants (`scale`, `offset`, a given `mean`/`variance`) live in non-persistent buffers, so they
follow the layer across devices without becoming weights. An adaptable `Normalization` has the
non-trainable weights `mean`, `variance`, `count` (int32), in Keras's order.
"""
import itertools
import math

import numpy as np
import torch

from lamina import backend
from lamina.engine.layer import Layer


# ------------------------------------------------------------------ constants in configs
def _serialize_constant(value):
    """Keras's serialization of a scale/offset: numbers and lists as-is, arrays as `__numpy__`."""
    if isinstance(value, np.ndarray):
        return {"class_name": "__numpy__",
                "config": {"value": value.tolist(), "dtype": backend.standardize_dtype(
                    value.dtype)}}
    if isinstance(value, torch.Tensor):
        return {"class_name": "__tensor__",
                "config": {"value": value.detach().cpu().tolist(),
                           "dtype": backend.standardize_dtype(value.dtype)}}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _deserialize_constant(value):
    if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
        config = value["config"]
        return np.array(config["value"], dtype=config.get("dtype"))
    return value


def _constant_buffer(value, dtype):
    return torch.as_tensor(np.array(value), dtype=backend.torch_dtype(dtype),
                           device=backend.device())


def _compute_dtype(layer):
    return backend.torch_dtype(layer.compute_dtype)


class Rescaling(Layer):
    """`outputs = inputs * scale + offset`, in the layer's compute dtype.

    Args:
        scale: float or per-channel sequence/array (reshaped to `(C, 1, 1)` channels-first).
        offset: float or sequence/array, added after scaling.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True
        for attr, value in (("_scale", scale), ("_offset", offset)):
            if np.ndim(value) == 0:
                setattr(self, f"{attr}_const", float(np.asarray(value)))
                self.register_buffer(attr, None, persistent=False)
            else:
                tensor = _constant_buffer(value, self.dtype)
                if backend.image_data_format() == "channels_first" and tensor.ndim < 3:
                    tensor = tensor.reshape(tuple(tensor.shape) + (1,) * (3 - tensor.ndim))
                setattr(self, f"{attr}_const", None)
                self.register_buffer(attr, tensor, persistent=False)

    def call(self, inputs):
        dtype = _compute_dtype(self)
        x = inputs.to(dtype)
        scale = self._scale_const if self._scale is None else self._scale.to(dtype)
        offset = self._offset_const if self._offset is None else self._offset.to(dtype)
        return x * scale + offset

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": _serialize_constant(self.scale),
                "offset": _serialize_constant(self.offset)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["scale"] = _deserialize_constant(config["scale"])
        config["offset"] = _deserialize_constant(config.get("offset", 0.0))
        return super().from_config(config, custom_objects)


class Normalization(Layer):
    """`(inputs - mean) / max(sqrt(variance), epsilon)` (or its inverse with `invert=True`).

    Args:
        axis: int, tuple of ints or None: the axes that keep separate statistics
            (`None`: one scalar mean and variance).
        mean, variance: constants broadcast to the kept axes (both or neither); without them
            the statistics are weights set by `adapt(data)` or by loading weights.
        invert: apply the inverse transformation.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, int):
            axis = (axis,)
        elif isinstance(axis, (list, tuple)) and all(isinstance(a, int) for a in axis):
            axis = tuple(axis)
        else:
            raise TypeError(f"Layer '{self.name}' (Normalization): `axis` must be an int, a "
                            f"tuple of ints or None. Received: axis={axis!r}")
        self.axis = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = invert
        self.supports_masking = True
        self._build_input_shape = None
        if (mean is None) != (variance is None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be "
                             f"set. Received: mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must "
                                 f"have the same shape. Received: mean shape {np.shape(mean)} "
                                 f"and variance shape {np.shape(variance)}")
            if np.ndim(mean) > len(self.axis):
                raise ValueError("The rank of `mean` must be less than or equal to the number "
                                 f"of axes ({len(self.axis)}). Received: mean shape "
                                 f"{np.shape(mean)} for axis {self.axis}")

    def build(self, input_shape):
        if input_shape is None:
            return
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Layer '{self.name}' (Normalization): all `axis` values must be "
                             f"in the range [-ndim, ndim). Received inputs with ndim={ndim}, "
                             f"while axis={self.axis}")
        self._build_input_shape = input_shape
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"Layer '{self.name}' (Normalization): all `axis` values to "
                                 f"be kept must have a known shape. Received axis={self.axis}, "
                                 f"inputs.shape={input_shape}, with unknown axis at index {d}")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1
                                      for d in range(ndim))
        self._mean_and_var_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=self._mean_and_var_shape,
                                              initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance",
                                                  shape=self._mean_and_var_shape,
                                                  initializer="ones", trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int32",
                                         initializer="zeros", trainable=False)
        else:
            self.register_buffer("_const_mean", self._broadcast_constant(self.input_mean),
                                 persistent=False)
            self.register_buffer("_const_variance",
                                 self._broadcast_constant(self.input_variance),
                                 persistent=False)
        self.built = True

    def _broadcast_constant(self, value):
        value = np.asarray(value, dtype="float64")
        expanded = [1] * len(self._broadcast_shape)
        for i in range(1, value.ndim + 1):  # align the value's dims with the kept axes, right first
            expanded[self._keep_axis[-i]] = value.shape[-i]
        try:
            value = np.broadcast_to(value.reshape(expanded), self._broadcast_shape)
        except ValueError as error:
            raise ValueError(f"Layer '{self.name}' (Normalization): `mean`/`variance` of shape "
                             f"{np.shape(self.input_mean)} cannot be broadcast to the kept axes "
                             f"{self._mean_and_var_shape}.") from error
        return _constant_buffer(value, self.dtype)

    def _statistics(self):
        if self.input_mean is not None:
            return self._const_mean, self._const_variance
        return (self.adapt_mean.reshape(self._broadcast_shape),
                self.adapt_variance.reshape(self._broadcast_shape))

    def call(self, inputs):
        dtype = _compute_dtype(self)
        x = inputs.to(dtype)
        mean, variance = self._statistics()
        mean, variance = mean.to(dtype), variance.to(dtype)
        denom = torch.clamp(torch.sqrt(variance), min=backend.epsilon())
        if self.invert:
            return mean + x * denom
        return (x - mean) / denom

    # -------------------------------------------------------------- adapt
    def adapt(self, data):
        """Compute the mean and variance of `data` over the non-kept axes.

        Args:
            data: a numpy array, a torch tensor, or an iterable of batches (arrays/tensors, or
                `(x, y[, sample_weight])` tuples whose first item is used).
        """
        from lamina.training.data_adapter import PyDataset

        iterable = False
        if isinstance(data, (np.ndarray, torch.Tensor)):
            input_shape = tuple(data.shape)
        elif isinstance(data, PyDataset):
            data = (data[i] for i in range(len(data)))
            iterable = True
        elif hasattr(data, "__iter__") and not isinstance(data, (str, bytes, dict)):
            iterable = True
        else:
            raise TypeError(f"Unsupported data type: {type(data)}. `adapt` supports "
                            "`np.ndarray`, torch tensors, `keras.utils.PyDataset` and iterables "
                            "of batches (e.g. a list or a generator).")
        if iterable:
            data_iter = iter(data)
            first = next(data_iter, None)
            if first is None:
                raise ValueError("adapt() received an empty iterable (no batches). Expected at "
                                 "least one batch, e.g. layer.adapt([x]).")
            first = _first_item(first)
            if not hasattr(first, "shape"):
                raise TypeError("adapt() expects an iterable that yields arrays or tensors with "
                                "a `.shape` attribute. Got an element of type "
                                f"{type(first).__name__}.")
            input_shape = tuple(first.shape)
            data = itertools.chain([first], data_iter)
        if not self.built:
            self.build(input_shape)
        else:
            self._check_adapt_shape(input_shape)
        if self.input_mean is not None:
            raise ValueError(f"Layer '{self.name}' (Normalization) was given `mean` and "
                             "`variance` as constants; it cannot be adapted.")

        if isinstance(data, np.ndarray):
            mean = np.mean(data, axis=self._reduce_axis)
            var = np.var(data, axis=self._reduce_axis)
        elif isinstance(data, torch.Tensor):
            x = data.detach().to(_compute_dtype(self))
            mean = torch.mean(x, dim=self._reduce_axis)
            var = torch.var(x, dim=self._reduce_axis, unbiased=False)
        else:
            mean, var = self._running_statistics(data)
        with torch.no_grad():
            self.adapt_mean.copy_(torch.as_tensor(np.asarray(_to_numpy(mean)),
                                                  dtype=self.adapt_mean.dtype))
            self.adapt_variance.copy_(torch.as_tensor(np.asarray(_to_numpy(var)),
                                                      dtype=self.adapt_variance.dtype))

    def _check_adapt_shape(self, input_shape):
        for d in self._keep_axis:
            if d >= len(input_shape) or input_shape[d] != self._build_input_shape[d]:
                raise ValueError(f"The layer was built with input_shape="
                                 f"{self._build_input_shape}, but adapt() is being called with "
                                 f"data with an incompatible shape, data.shape={input_shape}")

    def _running_statistics(self, batches):
        """Mean and variance over batches, merged with the lack-of-fit sum of squares."""
        total_mean = np.zeros(self._mean_and_var_shape, dtype="float64")
        total_var = np.zeros(self._mean_and_var_shape, dtype="float64")
        total_count = 0
        for batch in batches:
            batch = np.asarray(_to_numpy(_first_item(batch)), dtype="float64")
            self._check_adapt_shape(batch.shape)
            batch_mean = np.mean(batch, axis=self._reduce_axis)
            batch_var = np.var(batch, axis=self._reduce_axis)
            count = math.prod(batch.shape[d] for d in self._reduce_axis)
            total_count += count
            weight = count / total_count
            new_mean = total_mean * (1.0 - weight) + batch_mean * weight
            total_var = ((total_var + (total_mean - new_mean) ** 2) * (1.0 - weight)
                         + (batch_var + (batch_mean - new_mean) ** 2) * weight)
            total_mean = new_mean
        return total_mean, total_var

    # -------------------------------------------------------------- config
    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": np.array(self.input_mean).tolist(),
                "variance": np.array(self.input_variance).tolist()}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("axis"), list):
            config["axis"] = tuple(config["axis"])
        return super().from_config(config, custom_objects)

    def get_build_config(self):
        if self._build_input_shape:
            return {"input_shape": list(self._build_input_shape)}
        return super().get_build_config()

    def build_from_config(self, config):
        if config and config.get("input_shape") is not None and not self.built:
            self.build(tuple(config["input_shape"]))
            self.built = True


def _first_item(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def _to_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value
