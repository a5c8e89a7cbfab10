"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization.

Weights keep Keras's names, shapes and order (BatchNormalization: `gamma, beta, moving_mean,
moving_variance`; the moving statistics are buffers). The arithmetic goes through torch's fused
kernels (`F.batch_norm`, `F.layer_norm`, `F.group_norm`) wherever they compute what Keras does.
"""
import math

import torch
import torch.nn.functional as F

from lamina import backend, constraints, initializers, regularizers
from lamina.engine.layer import InputSpec, Layer
from lamina.saving import serialization_lib

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _serialize(obj):
    return serialization_lib.serialize_keras_object(obj)


def _check_axes(layer, axes, ndim):
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise ValueError(f"Axis {axis} is out of bounds for input of rank {ndim} in layer "
                             f"'{layer.name}'. Received: axis={layer.axis}")


def _output_shape_checked(layer, input_shape):
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    _check_axes(layer, axes, len(input_shape))
    return tuple(input_shape)


def _cast(tensor, dtype):
    """`tensor` in `dtype` (None stays None), without a call when it already is."""
    return tensor if tensor is None or tensor.dtype == dtype else tensor.to(dtype)


def _compute_input(x):
    """Statistics are computed in float32 at least, as Keras does."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def _gamma_beta_config(layer):
    return {"beta_initializer": _serialize(layer.beta_initializer),
            "gamma_initializer": _serialize(layer.gamma_initializer),
            "beta_regularizer": _serialize(layer.beta_regularizer),
            "gamma_regularizer": _serialize(layer.gamma_regularizer),
            "beta_constraint": _serialize(layer.beta_constraint),
            "gamma_constraint": _serialize(layer.gamma_constraint)}


def _resolve_gamma_beta(layer, beta_initializer, gamma_initializer, beta_regularizer,
                        gamma_regularizer, beta_constraint, gamma_constraint):
    layer.beta_initializer = initializers.get(beta_initializer)
    layer.gamma_initializer = initializers.get(gamma_initializer)
    layer.beta_regularizer = regularizers.get(beta_regularizer)
    layer.gamma_regularizer = regularizers.get(gamma_regularizer)
    layer.beta_constraint = constraints.get(beta_constraint)
    layer.gamma_constraint = constraints.get(gamma_constraint)


class _AllReduceSum(torch.autograd.Function):
    """Sum over the `torch.distributed` group; the gradient is summed the same way."""

    @staticmethod
    def forward(ctx, x):
        out = x.clone()
        torch.distributed.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


def _sqrt_of(initializer):
    """An initializer giving the square root of `initializer`'s values (renorm stddevs)."""
    def init(shape, dtype=None):
        return torch.sqrt(torch.as_tensor(initializer(shape, dtype=dtype)))
    return init


class BatchNormalization(Layer):
    """Normalizes over the batch with its statistics in training and with moving averages in
    inference: `gamma * (x - mean) / sqrt(var + epsilon) + beta`.

    Training calls update `moving = moving * momentum + batch_stat * (1 - momentum)` with the
    biased batch variance, as Keras. A frozen layer (`trainable=False`) runs in inference mode.
    `synchronized=True` all-reduces the statistics over `torch.distributed` when it is initialised.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        kwargs.pop("fused", None)  # Keras 2 configs: a speed hint, always fused here
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError("BatchNormalization normalizes over a single axis. "
                                 f"Received: axis={axis}")
            axis = axis[0]
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"Expected an int for the argument `axis`. Received: axis={axis!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.synchronized = synchronized
        _resolve_gamma_beta(self, beta_initializer, gamma_initializer, beta_regularizer,
                            gamma_regularizer, beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.renorm = renorm
        if renorm:
            renorm_clipping = dict(renorm_clipping or {})
            unknown = set(renorm_clipping) - {"rmax", "rmin", "dmax"}
            if unknown:
                raise ValueError("Received invalid keys for `renorm_clipping` argument: "
                                 f"{renorm_clipping}. Supported values: ['rmax', 'rmin', 'dmax'].")
            rmax, rmin = renorm_clipping.get("rmax"), renorm_clipping.get("rmin")
            dmax = renorm_clipping.get("dmax")
            if rmax is not None and rmin is not None and rmax < rmin:
                raise ValueError("rmax should be greater than rmin in the `renorm_clipping` "
                                 f"argument. Received: rmax={rmax}, rmin={rmin}.")
            if dmax is not None and dmax < 0:
                raise ValueError("dmax should be non-negative in the `renorm_clipping` "
                                 f"argument. Received: dmax={dmax}.")
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self.supports_masking = True
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        ndim = len(input_shape)
        _check_axes(self, [self.axis], ndim)
        self._axis = self.axis % ndim
        dim = input_shape[self._axis]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of the input to layer '{self.name}' "
                             f"(BatchNormalization) must have a defined dimension. "
                             f"Received input shape: {tuple(input_shape)}")
        shape = (dim,)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, name="gamma",
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, trainable=True)
        if self.center:
            self.beta = self.add_weight(shape=shape, name="beta",
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, trainable=True)
        self.moving_mean = self.add_weight(shape=shape, name="moving_mean",
                                           initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight(shape=shape, name="moving_variance",
                                               initializer=self.moving_variance_initializer,
                                               trainable=False)
        if self.renorm:
            std_init = _sqrt_of(self.moving_variance_initializer)
            self.moving_stddev = self.add_weight(shape=shape, name="moving_stddev",
                                                 initializer=std_init, trainable=False)
            self.renorm_mean = self.add_weight(shape=shape, name="renorm_mean",
                                               initializer=self.moving_mean_initializer,
                                               trainable=False)
            self.renorm_stddev = self.add_weight(shape=shape, name="renorm_stddev",
                                                 initializer=std_init, trainable=False)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: dim})

    # ------------------------------------------------------------------ helpers
    def _stat_shape(self, x):
        shape = [1] * x.dim()
        shape[self._axis] = x.shape[self._axis]
        return shape

    def _reduction_dims(self, x):
        return [d for d in range(x.dim()) if d != self._axis]

    def _sync_active(self):
        return (self.synchronized and torch.distributed.is_available()
                and torch.distributed.is_initialized())

    def _moments(self, x, mask):
        """Batch mean and biased variance, per channel (masked as Keras does)."""
        dims = self._reduction_dims(x)
        if mask is None and not self._sync_active():
            var, mean = torch.var_mean(x, dim=dims, correction=0)
            return mean, var
        if mask is None:
            weight = torch.ones((), dtype=x.dtype, device=x.device).expand_as(x)
        else:
            weight = mask.unsqueeze(-1).expand_as(x).to(x.dtype)
        keep = weight > 0
        total = torch.sum(torch.where(keep, x, 0), dim=dims)
        count = torch.sum(weight, dim=dims)
        if self._sync_active():
            total, count = _AllReduceSum.apply(total), _AllReduceSum.apply(count)
        denominator = count + backend.epsilon() if mask is not None else count
        mean = total / denominator
        diff = torch.where(keep, x - mean.reshape(self._stat_shape(x)), 0)
        squares = torch.sum(diff * diff, dim=dims)
        if self._sync_active():
            squares = _AllReduceSum.apply(squares)
        return mean, squares / denominator

    def _update(self, moving, value, momentum):
        moving.mul_(momentum).add_(value.to(moving.dtype), alpha=1.0 - momentum)

    def _normalize(self, x, mean, variance, gamma, beta):
        shape = self._stat_shape(x)
        inv = torch.rsqrt(variance + self.epsilon)
        if gamma is not None:
            inv = inv * gamma
        out = (x - mean.reshape(shape)) * inv.reshape(shape)
        if beta is not None:
            out = out + beta.reshape(shape)
        return out

    def _fused(self, x, mean, variance, gamma, beta, training, momentum=0.0):
        """`torch.batch_norm` with the channel axis moved where torch wants it, without a copy:
        on CUDA, channels-last images as a `torch.channels_last` view, which cuDNN normalizes
        in place; elsewhere as rows of channels, torch's fastest CPU layout."""
        cudnn, ndim = torch.backends.cudnn.enabled, x.dim()
        if self._axis == ndim - 1 and ndim > 2 and not (ndim > 3 and x.is_cuda):
            out = torch.batch_norm(x.reshape(-1, x.shape[-1]), gamma, beta, mean, variance,
                                   training, momentum, self.epsilon, cudnn)
            return out.reshape(x.shape)
        moved = x.movedim(self._axis, 1) if self._axis != 1 else x
        out = torch.batch_norm(moved, gamma, beta, mean, variance, training, momentum,
                               self.epsilon, cudnn)
        return out.movedim(1, self._axis) if self._axis != 1 else out

    # ------------------------------------------------------------------ call
    def call(self, inputs, training=None, mask=None):
        if mask is not None and mask.dim() != inputs.dim() - 1:
            raise ValueError("The mask provided should be one dimension less than the inputs. "
                             f"Received: mask.shape={tuple(mask.shape)}, "
                             f"inputs.shape={tuple(inputs.shape)}")
        moving_mean, moving_variance = self.moving_mean, self.moving_variance
        channels = moving_mean.shape[0]
        if inputs.dim() != self.input_spec.ndim or inputs.shape[self._axis] != channels:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"expected ndim={self.input_spec.ndim} and axis {self.axis} of "
                             f"size {channels}, but received input with shape "
                             f"{tuple(inputs.shape)}")
        # torch's kernels take float16/bfloat16 inputs with float32 statistics and parameters,
        # accumulating in float32 as Keras does, without a float32 copy of the activations.
        stats_dtype = torch.float32 if inputs.dtype in _LOW_PRECISION else inputs.dtype
        gamma, beta = _cast(self.gamma, stats_dtype), _cast(self.beta, stats_dtype)
        if not (training and self.trainable):
            return self._fused(inputs, _cast(moving_mean, stats_dtype),
                               _cast(moving_variance, stats_dtype), gamma, beta, training=False)
        count = inputs.numel() // max(channels, 1)
        if mask is None and not self.renorm and count > 1 and not self._sync_active():
            # Fused training step: torch's kernel updates the moving statistics in place, as
            # `moving * momentum + batch * (1 - momentum)`, but blends in the *unbiased* batch
            # variance. It gets the moving variance scaled by count / (count - 1), and the
            # result is scaled back: Keras's update with the biased variance, in two kernels.
            mean = _cast(moving_mean, stats_dtype)
            var = _cast(moving_variance, stats_dtype) * (count / (count - 1))
            out = self._fused(inputs, mean, var, gamma, beta, training=True,
                              momentum=1.0 - self.momentum)
            if mean is not moving_mean:
                moving_mean.copy_(mean)
            torch.mul(var, (count - 1) / count, out=moving_variance)
            return out
        x = _compute_input(inputs)
        gamma, beta = _cast(gamma, x.dtype), _cast(beta, x.dtype)
        mean, variance = self._moments(x, mask)
        if self.renorm:
            gamma, beta = self._renorm(mean, variance, gamma, beta, x.dtype)
        else:
            with torch.no_grad():
                self._update(self.moving_mean, mean, self.momentum)
                self._update(self.moving_variance, variance, self.momentum)
        return _cast(self._normalize(x, mean, variance, gamma, beta), inputs.dtype)

    def _renorm(self, mean, variance, gamma, beta, dtype):
        """Batch renormalization: corrections r, d (no gradient) folded into gamma and beta,
        then the renorm and moving statistics are updated."""
        clipping = self.renorm_clipping or {}
        with torch.no_grad():
            stddev = torch.sqrt(variance + self.epsilon)
            renorm_stddev = torch.clamp(self.renorm_stddev.to(dtype), min=math.sqrt(self.epsilon))
            r = stddev / renorm_stddev
            d = (mean - self.renorm_mean.to(dtype)) / renorm_stddev
            if clipping.get("rmin") is not None:
                r = torch.clamp(r, min=clipping["rmin"])
            if clipping.get("rmax") is not None:
                r = torch.clamp(r, max=clipping["rmax"])
            if clipping.get("dmax") is not None:
                d = torch.clamp(d, -clipping["dmax"], clipping["dmax"])
            self._update(self.renorm_mean, mean, self.renorm_momentum)
            self._update(self.renorm_stddev, stddev, self.renorm_momentum)
            self._update(self.moving_mean, mean, self.momentum)
            self._update(self.moving_stddev, stddev, self.momentum)
            self.moving_variance.copy_(torch.relu(self.moving_stddev ** 2 - self.epsilon))
        new_gamma = r if gamma is None else r * gamma
        new_beta = d if gamma is None else d * gamma
        if beta is not None:
            new_beta = new_beta + beta
        return new_gamma, new_beta

    def compute_output_shape(self, input_shape):
        return _output_shape_checked(self, input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **_gamma_beta_config(self),
                "moving_mean_initializer": _serialize(self.moving_mean_initializer),
                "moving_variance_initializer": _serialize(self.moving_variance_initializer),
                "synchronized": self.synchronized, "renorm": self.renorm,
                "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}


class LayerNormalization(Layer):
    """Normalizes each example over `axis` (an int or a list): `gamma * (x - mean) /
    sqrt(var + epsilon) + beta`. `rms_scaling=True` (deprecated in Keras) divides by
    `sqrt(var + epsilon)` only and scales by gamma."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = list(axis)
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError("Expected an int or a list/tuple of ints for the argument 'axis', "
                            f"but received: {axis!r}")
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        _resolve_gamma_beta(self, beta_initializer, gamma_initializer, beta_regularizer,
                            gamma_regularizer, beta_constraint, gamma_constraint)
        self.supports_masking = True
        self.gamma = self.beta = None

    def build(self, input_shape):
        ndim = len(input_shape)
        axes = sorted(self.axis) if isinstance(self.axis, list) else [self.axis]
        _check_axes(self, axes, ndim)
        self.axis = axes
        self._dims = sorted(a % ndim for a in axes)
        shape = tuple(input_shape[d] for d in self._dims)
        if any(d is None for d in shape):
            raise ValueError(f"Layer '{self.name}' (LayerNormalization) needs defined "
                             f"dimensions on axis {self.axis}. Received input shape: "
                             f"{tuple(input_shape)}")
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(shape=shape, name="gamma",
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint, trainable=True)
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(shape=shape, name="beta",
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint, trainable=True)
        self._trailing = self._dims == list(range(ndim - len(self._dims), ndim))

    def _broadcast(self, v, x):
        if v is None:
            return None
        shape = [1] * x.dim()
        for d in self._dims:
            shape[d] = x.shape[d]
        return v.to(x.dtype).reshape(shape)

    def call(self, inputs):
        x = _compute_input(inputs)
        if self.rms_scaling:
            variance = torch.var(x, dim=self._dims, keepdim=True, correction=0)
            out = x * torch.rsqrt(variance + self.epsilon)
            if self.gamma is not None:
                out = out * self._broadcast(self.gamma, x)
        elif self._trailing:
            out = F.layer_norm(x, x.shape[self._dims[0]:], _cast(self.gamma, x.dtype),
                               _cast(self.beta, x.dtype), self.epsilon)
        else:
            variance, mean = torch.var_mean(x, dim=self._dims, keepdim=True, correction=0)
            inv = torch.rsqrt(variance + self.epsilon)
            if self.gamma is not None:
                inv = inv * self._broadcast(self.gamma, x)
            out = (x - mean) * inv
            if self.beta is not None:
                out = out + self._broadcast(self.beta, x)
        return _cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _output_shape_checked(self, input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "rms_scaling": self.rms_scaling,
                **_gamma_beta_config(self)}


class GroupNormalization(Layer):
    """Splits the channels (`axis`) into `groups` and normalizes each group of each example.
    `groups=-1` is instance normalization (one group per channel)."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None, **kwargs):
        if not isinstance(groups, int) or (groups <= 0 and groups != -1):
            raise ValueError("Received an invalid value for argument `groups`, expected a "
                             "positive integer (or `-1` for instance normalization). "
                             f"Received: groups={groups}")
        super().__init__(**kwargs)
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        _resolve_gamma_beta(self, beta_initializer, gamma_initializer, beta_regularizer,
                            gamma_regularizer, beta_constraint, gamma_constraint)
        self.supports_masking = True
        self.gamma = self.beta = None

    def build(self, input_shape):
        ndim = len(input_shape)
        _check_axes(self, [self.axis], ndim)
        self._axis = self.axis % ndim
        dim = input_shape[self._axis]
        if dim is None:
            raise ValueError(f"Axis {self.axis} of input tensor should have a defined dimension "
                             f"but the layer received an input with shape {tuple(input_shape)}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the number "
                             f"of channels ({dim}).")
        if dim % self.groups != 0:
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the "
                             f"number of channels ({dim}).")
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: dim})
        if self.scale:
            self.gamma = self.add_weight(shape=(dim,), name="gamma",
                                         initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape=(dim,), name="beta",
                                        initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)

    def call(self, inputs):
        x = _compute_input(inputs)
        gamma, beta = _cast(self.gamma, x.dtype), _cast(self.beta, x.dtype)
        if x.dim() == 2:
            out = F.group_norm(x.unsqueeze(-1), self.groups, gamma, beta,
                               self.epsilon).squeeze(-1)
        elif self._axis == 1:
            out = F.group_norm(x, self.groups, gamma, beta, self.epsilon)
        else:
            moved = x.movedim(self._axis, 1)
            if moved.dim() > 3 and torch.is_grad_enabled() and not moved.requires_grad:
                # torch's CPU backward of a channels-last input that needs no gradient (a model's
                # input) crashes the process (torch 2.13); a contiguous copy does not.
                moved = moved.contiguous()
            out = F.group_norm(moved, self.groups, gamma, beta,
                               self.epsilon).movedim(1, self._axis)
        return _cast(out, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _output_shape_checked(self, input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                **_gamma_beta_config(self)}


class UnitNormalization(Layer):
    """Scales each example to unit L2 norm over `axis` (an int or a list)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = list(axis)
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError("Invalid value for `axis` argument: expected an int or a list/tuple "
                            f"of ints. Received: axis={axis!r}")
        self.supports_masking = True
        self.built = True

    def call(self, inputs):
        dims = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        _check_axes(self, dims if isinstance(dims, tuple) else [dims], inputs.dim())
        return F.normalize(inputs, p=2.0, dim=dims, eps=1e-12)

    def compute_output_shape(self, input_shape):
        return _output_shape_checked(self, input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
