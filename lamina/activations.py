"""Activation functions with Keras names and signatures, computed by torch's fused ops.

>>> from lamina import activations
>>> activations.get("relu") is activations.relu
True
>>> activations.serialize(activations.swish)   # `swish` is `silu`, as in Keras
'silu'
"""
import torch
import torch.nn.functional as F

from lamina import backend
from lamina.saving import object_registration
from lamina.saving import serialization_lib


def _tensor(x):
    """Tensors pass through; arrays, lists and scalars become tensors (floatx unless float)."""
    if isinstance(x, torch.Tensor):
        return x
    x = torch.as_tensor(x, device=backend.device())
    if not x.is_floating_point():
        x = x.to(backend.torch_dtype(backend.floatx()))
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Rectified linear unit: `max(x, 0)`, with optional slope below `threshold` and a cap."""
    x = _tensor(x)
    if threshold == 0 and max_value is None:
        if negative_slope == 0:
            return torch.relu(x)
        return F.leaky_relu(x, negative_slope)
    if threshold == 0 and negative_slope == 0 and max_value == 6:
        return F.relu6(x)
    if threshold != 0:
        out = torch.where(x > threshold, x, torch.zeros((), dtype=x.dtype, device=x.device))
    else:
        out = torch.relu(x)
    if max_value is not None:
        out = out.clamp(0.0, max_value)
    if negative_slope != 0:
        out = out - negative_slope * torch.relu(threshold - x)
    return out


def apply_to_layer_output(activation, output, view=None):
    """`activation(view(output))` for a tensor a layer has just computed and holds alone (a
    Dense or convolution output; `view` gives its Keras layout). The plain `relu` runs in place
    on `output` itself, before the view (autograd copies a view's base to undo an in-place op
    on the view). That spares a second buffer as large as the output, which on the CPU means
    fresh pages to fault in: 5x faster on a convnet's 11 MB activation. The gradients of these
    layers do not need their output, so autograd allows it."""
    if activation is relu:
        output = torch.relu_(output)
        return output if view is None else view(output)
    return activation(output if view is None else view(output))


def leaky_relu(x, negative_slope=0.2):
    """`x` for `x >= 0`, `negative_slope * x` below."""
    return F.leaky_relu(_tensor(x), negative_slope)


def relu6(x):
    """`min(max(x, 0), 6)`."""
    return F.relu6(_tensor(x))


def _dims(x, axis):
    if isinstance(axis, (list, tuple)):
        return tuple(a % x.ndim for a in axis)
    return axis


def softmax(x, axis=-1):
    """Softmax over `axis` (an int or a tuple of axes)."""
    x = _tensor(x)
    if isinstance(axis, (list, tuple)):
        return torch.exp(x - torch.logsumexp(x, dim=_dims(x, axis), keepdim=True))
    return _with_logits(torch.softmax(x, dim=axis), x if axis in (-1, x.dim() - 1) else None)


def _with_logits(output, logits):
    """Remember the logits behind a softmax/sigmoid output, as Keras's TensorFlow backend does,
    so crossentropy losses can use the fused, more stable from-logits kernels."""
    if logits is not None and not torch.compiler.is_compiling():
        output._keras_logits = logits
    return output


def log_softmax(x, axis=-1):
    """Log of the softmax over `axis` (an int or a tuple of axes)."""
    x = _tensor(x)
    if isinstance(axis, (list, tuple)):
        return x - torch.logsumexp(x, dim=_dims(x, axis), keepdim=True)
    return torch.log_softmax(x, dim=axis)


def elu(x, alpha=1.0):
    """Exponential linear unit: `x` if `x > 0`, else `alpha * (exp(x) - 1)`."""
    return F.elu(_tensor(x), alpha)


def selu(x):
    """Scaled exponential linear unit (Klambauer et al., 2017)."""
    return torch.selu(_tensor(x))


def softplus(x):
    """`log(exp(x) + 1)`."""
    return F.softplus(_tensor(x))


def softsign(x):
    """`x / (abs(x) + 1)`."""
    return F.softsign(_tensor(x))


def silu(x):
    """Sigmoid linear unit (swish): `x * sigmoid(x)`."""
    return F.silu(_tensor(x))


swish = silu


def gelu(x, approximate=False):
    """Gaussian error linear unit; `approximate=True` uses the tanh formula."""
    return F.gelu(_tensor(x), approximate="tanh" if approximate else "none")


def celu(x, alpha=1.0):
    """Continuously-differentiable ELU: `max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)`."""
    return F.celu(_tensor(x), alpha)


def glu(x, axis=-1):
    """Gated linear unit: splits `axis` in halves `a, b` and returns `a * sigmoid(b)`."""
    return F.glu(_tensor(x), dim=axis)


def tanh(x):
    """Hyperbolic tangent."""
    return torch.tanh(_tensor(x))


def tanh_shrink(x):
    """`x - tanh(x)`."""
    return F.tanhshrink(_tensor(x))


def hard_tanh(x):
    """`clip(x, -1, 1)`."""
    return F.hardtanh(_tensor(x))


def hard_shrink(x, threshold=0.5):
    """`x` where `abs(x) > threshold`, else 0."""
    return F.hardshrink(_tensor(x), threshold)


def soft_shrink(x, threshold=0.5):
    """`x - threshold` above, `x + threshold` below `-threshold`, else 0."""
    return F.softshrink(_tensor(x), threshold)


def threshold(x, threshold, default_value):
    """`x` where `x > threshold`, else `default_value`."""
    return F.threshold(_tensor(x), threshold, default_value)


def sigmoid(x):
    """`1 / (1 + exp(-x))`."""
    x = _tensor(x)
    return _with_logits(torch.sigmoid(x), x)


def log_sigmoid(x):
    """`log(sigmoid(x))`, computed stably."""
    return F.logsigmoid(_tensor(x))


def hard_sigmoid(x):
    """Piecewise-linear sigmoid (Keras 3): `relu6(x + 3) / 6`."""
    return F.hardsigmoid(_tensor(x))


def sparse_sigmoid(x):
    """0 for `x <= -1`, 1 for `x >= 1`, `(x + 1) / 2` between."""
    x = _tensor(x)
    return ((x + 1.0) * 0.5).clamp(0.0, 1.0)


def hard_silu(x):
    """`x * relu6(x + 3) / 6`."""
    return F.hardswish(_tensor(x))


hard_swish = hard_silu


def sparse_plus(x):
    """0 for `x <= -1`, `x` for `x >= 1`, `(x + 1)**2 / 4` between."""
    x = _tensor(x)
    middle = torch.square(x + 1.0) * 0.25
    return torch.where(x <= -1.0, torch.zeros_like(x), torch.where(x >= 1.0, x, middle))


def squareplus(x, b=4):
    """`(x + sqrt(x**2 + b)) / 2`."""
    x = _tensor(x)
    return (x + torch.sqrt(torch.square(x) + b)) * 0.5


def sparsemax(x, axis=-1):
    """Euclidean projection of `x` onto the probability simplex along `axis`."""
    x = _tensor(x)
    z, _ = torch.sort(x, dim=axis, descending=True)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    k = torch.arange(1, x.shape[axis] + 1, dtype=x.dtype, device=x.device).reshape(shape)
    cumsum = torch.cumsum(z, dim=axis)
    support = (1.0 + k * z) > cumsum
    k_z = torch.sum(support.to(x.dtype), dim=axis, keepdim=True)
    support_sum = torch.sum(torch.where(support, z, torch.zeros_like(z)), dim=axis, keepdim=True)
    tau = (support_sum - 1.0) / k_z
    return torch.relu(x - tau)


def exponential(x):
    """`exp(x)`."""
    return torch.exp(_tensor(x))


def linear(x):
    """The identity: returns `x` unchanged."""
    return x


def mish(x):
    """`x * tanh(softplus(x))`."""
    return F.mish(_tensor(x))


_ALL = [relu, leaky_relu, relu6, softmax, log_softmax, elu, selu, softplus, softsign, silu, gelu,
        celu, glu, tanh, tanh_shrink, hard_tanh, hard_shrink, soft_shrink, threshold, sigmoid,
        log_sigmoid, hard_sigmoid, sparse_sigmoid, hard_silu, sparse_plus, squareplus, sparsemax,
        exponential, linear, mish]
ALL_OBJECTS_DICT = {fn.__name__: fn for fn in _ALL}
ALL_OBJECTS_DICT["swish"] = silu
ALL_OBJECTS_DICT["hard_swish"] = hard_silu
_BUILTINS = set(_ALL)


def serialize(activation):
    """The activation's name (`"relu"`), as Keras stores it in layer configs.

    Custom registered functions and callable objects give a Keras config dict instead.
    """
    if activation in _BUILTINS:
        return activation.__name__
    if isinstance(activation, str):
        return activation
    config = serialization_lib.serialize_keras_object(activation)
    if isinstance(config, dict) and config.get("class_name") == "function":
        config["config"] = object_registration.get_registered_name(activation)
    return config


def deserialize(config, custom_objects=None):
    """The activation function named by `config` (a name or a Keras config dict)."""
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects,
        printable_module_name="activation function")


def get(identifier):
    """Resolve `identifier`: None gives `linear`; a name or config dict gives the function;
    a callable passes through."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        obj = object_registration.get_registered_object(identifier, None, ALL_OBJECTS_DICT)
        if obj is None:
            raise ValueError(
                f"Could not interpret activation function identifier: {identifier!r}. "
                f"Known activations: {', '.join(sorted(ALL_OBJECTS_DICT))}")
        return obj
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    else:
        obj = identifier
    if callable(obj):
        return obj
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}. "
                     "Expected None, a string, a config dict or a callable.")
