"""Merge layers, which combine a list of inputs: Add, Subtract, Multiply, Average, Maximum,
Minimum, Concatenate, Dot, and their functional forms (`add([x, y])`, `concatenate(...)`, ...).
"""
import functools

import torch
import torch.nn.functional as F

from lamina.engine.layer import Layer


class _Merge(Layer):
    _min_inputs = 2

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(
                input_shape[0], (list, tuple)):
            raise ValueError(f"A merge layer ('{self.name}') should be called on a list of "
                             f"inputs. Received: input_shape={input_shape}")
        if len(input_shape) < self._min_inputs:
            raise ValueError(f"A merge layer ('{self.name}') should be called on a list of at "
                             f"least {self._min_inputs} inputs. Got {len(input_shape)} inputs.")
        self._check_shapes(input_shape)

    def _check_shapes(self, shapes):
        ranks = {len(s) for s in shapes}
        for dims in zip(*[s[1:] for s in shapes]) if len(ranks) == 1 else ():
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(f"Inputs of layer '{self.name}' have incompatible shapes. "
                                 f"Received: input shapes={[tuple(s) for s in shapes]}")

    def call(self, inputs):
        return functools.reduce(self._merge, inputs)

    def compute_mask(self, inputs, mask=None):
        """A step is kept where any input keeps it (Keras 3); no mask unless every input has
        one."""
        if mask is None:
            return None
        _check_masks(inputs, mask)
        if any(m is None for m in mask):
            return None
        return functools.reduce(torch.logical_or, mask)


def _check_masks(inputs, mask):
    if not isinstance(mask, (list, tuple)):
        raise ValueError(f"`mask` should be a list. Received: mask={mask}")
    if not isinstance(inputs, (list, tuple)):
        raise ValueError(f"`inputs` should be a list. Received: inputs={inputs}")
    if len(mask) != len(inputs):
        raise ValueError("The lists `inputs` and `mask` should have the same length. Received: "
                         f"{len(inputs)} inputs and {len(mask)} masks")


def _spread(mask, x):
    """A step mask of `x` broadcast over its last (feature) axis."""
    return mask.unsqueeze(-1).expand(x.shape)


def _value_mask(x):
    """`x`'s Keras mask spread over its features; None without one."""
    mask = getattr(x, "_keras_mask", None)
    return None if mask is None else _spread(mask, x)


class _MaskedExtremum(_Merge):
    """Maximum or Minimum where a masked step of one input takes the other input's value, so
    that a padded step never wins."""

    def call(self, inputs):
        out, out_mask = inputs[0], _value_mask(inputs[0])
        for x in inputs[1:]:
            mask = _value_mask(x)
            if mask is not None:
                x = torch.where(mask, x, out)
            if out_mask is not None:
                out = torch.where(out_mask, out, x)
            out_mask = None if mask is None or out_mask is None else out_mask | mask
            out = self._merge(out, x)
        return out


class Add(_Merge):
    """Sum of the inputs."""
    _merge = staticmethod(torch.add)


class Subtract(_Merge):
    """`inputs[0] - inputs[1]`; exactly two inputs."""

    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"A `Subtract` layer ('{self.name}') should be called on exactly 2 "
                             f"inputs. Received: {len(input_shape)} inputs.")

    def call(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """Element-wise product of the inputs. A masked step counts as 1; where every input is
    masked (all have masks) the product is 0."""

    def call(self, inputs):
        masks = [_value_mask(x) for x in inputs]
        if all(m is None for m in masks):
            return functools.reduce(torch.mul, inputs)
        factors = [x if m is None else torch.where(m, x, 1) for x, m in zip(inputs, masks)]
        out = functools.reduce(torch.mul, factors)
        if all(m is not None for m in masks):
            out = torch.where(functools.reduce(torch.logical_or, masks), out, 0)
        return out


class Maximum(_MaskedExtremum):
    _merge = staticmethod(torch.maximum)


class Minimum(_MaskedExtremum):
    _merge = staticmethod(torch.minimum)


class Average(_Merge):
    def call(self, inputs):
        return functools.reduce(torch.add, inputs) / len(inputs)


class Concatenate(_Merge):
    """Concatenates the inputs along `axis` (default -1)."""
    _min_inputs = 1

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def _check_shapes(self, shapes):
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"A `Concatenate` layer ('{self.name}') requires inputs with "
                             f"matching shapes except for the concatenation axis. Received: "
                             f"input_shape={[tuple(s) for s in shapes]}")
        rank = ranks.pop()
        axis = self.axis % rank
        for i in range(1, rank):
            known = {s[i] for s in shapes if s[i] is not None}
            if i != axis and len(known) > 1:
                raise ValueError(f"A `Concatenate` layer ('{self.name}') requires inputs with "
                                 f"matching shapes except for the concatenation axis. Received: "
                                 f"input_shape={[tuple(s) for s in shapes]}")

    def call(self, inputs):
        return torch.cat(list(inputs), dim=self.axis)

    def compute_mask(self, inputs, mask=None):
        """The masks, broadcast over each input's features (all kept where an input has no
        mask), concatenated like the inputs; a step is kept where any of its features is."""
        if mask is None:
            return None
        _check_masks(inputs, mask)
        if all(m is None for m in mask):
            return None
        full = [torch.ones_like(x, dtype=torch.bool) if m is None
                else _spread(m, x) if m.dim() < x.dim() else m
                for x, m in zip(inputs, mask)]
        return torch.cat(full, dim=self.axis).any(dim=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product between samples of two tensors along `axes`; `normalize` gives cosine."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes
        self.normalize = normalize

    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"A `Dot` layer ('{self.name}') should be called on a list of 2 "
                             f"inputs. Received: input_shape={input_shape}")

    def _check_shapes(self, shapes):
        pass

    def call(self, inputs):
        x, y = inputs
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        ax = [a % t.dim() for a, t in zip(axes, (x, y))]
        if self.normalize:
            x = F.normalize(x, dim=ax[0])
            y = F.normalize(y, dim=ax[1])
        # Batched tensordot: contract x[ax0] with y[ax1], keep the batch axis.
        x = x.movedim(ax[0], -1)
        y = y.movedim(ax[1], 1)
        out = torch.matmul(x.reshape(x.shape[0], -1, x.shape[-1]),
                           y.reshape(y.shape[0], y.shape[1], -1))
        shape = (x.shape[0],) + tuple(x.shape[1:-1]) + tuple(y.shape[2:])
        out = out.reshape(shape)
        return out.unsqueeze(-1) if out.dim() == 1 else out

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _functional(cls):
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = cls.__name__.lower()
    merge.__doc__ = f"Functional interface to the `{cls.__name__}` layer."
    return merge


add = _functional(Add)
subtract = _functional(Subtract)
multiply = _functional(Multiply)
average = _functional(Average)
maximum = _functional(Maximum)
minimum = _functional(Minimum)
concatenate = _functional(Concatenate)


def dot(inputs, axes=-1, **kwargs):
    """Functional interface to the `Dot` layer."""
    return Dot(axes=axes, **kwargs)(inputs)
