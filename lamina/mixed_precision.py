"""Mixed precision, as `keras.mixed_precision`: float32 variables, float16/bfloat16 compute.

>>> lamina.mixed_precision.set_global_policy("mixed_bfloat16")

A layer keeps the policy in force when it is created (its `dtype` argument, else the global
one), as in Keras: it casts its floating inputs to the policy's compute dtype and, under a mixed
policy, computes inside `torch.autocast`, so torch picks the low-precision kernels; weights stay
float32. A `dtype="float32"` layer in a mixed model computes in float32. With "mixed_float16",
`compile()` wraps the optimizer in a `LossScaleOptimizer`, as Keras does, which scales the loss
dynamically (with a `LossScaler`) so that small gradients survive float16.
"""
import torch

from lamina import backend

_MIXED = ("mixed_float16", "mixed_bfloat16")


class DTypePolicy:
    """A dtype policy: the dtype of the variables and the dtype of the computations."""

    def __init__(self, name=None):
        name = name or backend.floatx()
        if name not in _MIXED:
            try:
                name = backend.standardize_dtype(name)
            except ValueError:
                raise ValueError(f"Cannot convert {name!r} to a mixed precision DTypePolicy. "
                                 f"Valid policies include {', '.join(map(repr, _MIXED))} and "
                                 "dtype names such as 'float32'.") from None
        self.name = name
        self._torch_compute_dtype = backend.torch_dtype(self.compute_dtype)

    @property
    def variable_dtype(self):
        return "float32" if self.name.startswith("mixed_") else self.name

    @property
    def compute_dtype(self):
        return self.name.replace("mixed_", "")

    @property
    def is_mixed(self):
        return self.name.startswith("mixed_")

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f'<DTypePolicy "{self.name}">'


Policy = DTypePolicy
_GLOBAL = None


def set_global_policy(policy):
    """Set the policy every later layer and `fit`/`predict` use ("mixed_float16", ...).
    Also `set_dtype_policy`, as in Keras."""
    global _GLOBAL
    _GLOBAL = policy if isinstance(policy, DTypePolicy) or policy is None else DTypePolicy(policy)


def global_policy():
    return _GLOBAL or DTypePolicy(backend.floatx())


dtype_policy = global_policy  # Keras's other names for these two
set_dtype_policy = set_global_policy


def policy_for_new_layer():
    """The policy a layer created now without a `dtype` keeps, as Keras fixes it when the layer
    is created: the global one; None while that is floatx's (then read per call: the fast
    path)."""
    if _GLOBAL is None or _GLOBAL.name == backend.floatx():
        return None
    return _GLOBAL


def torch_compute_dtype(policy):
    """The torch dtype a layer with `policy` (None: floatx's) computes in, and casts its floating
    inputs to, as Keras's layers do. Cheap: asked on every layer call."""
    if policy is None:
        return getattr(torch, backend.floatx())  # "float32" -> torch.float32
    return policy._torch_compute_dtype


def autocast_for(policy, device_type):
    """The `torch.autocast` region a layer with `policy` runs in, where the current one does
    not fit it (else None): low-precision kernels under a mixed policy, none under another
    (a `dtype="float32"` layer in a mixed model computes in float32, as in Keras)."""
    enabled = torch.is_autocast_enabled(device_type)
    if policy.is_mixed:
        if enabled and torch.get_autocast_dtype(device_type) == policy._torch_compute_dtype:
            return None
        return torch.autocast(device_type, dtype=policy._torch_compute_dtype)
    return torch.autocast(device_type, enabled=False) if enabled else None


class LossScaler:
    """Dynamic loss scaling: double every `growth_interval` finite steps, halve and skip the
    update on overflow. On an accelerator, and in a compiled step, the skip never reads the
    overflow flag on the host: the update runs and is undone on the device when a gradient was
    not finite (`step`), so an eager GPU step does not wait for its backward pass to finish."""

    def __init__(self, device, initial_scale=2.0 ** 15, growth_interval=2000):
        self.scale = torch.full((), initial_scale, device=device)
        self.growth_tracker = torch.zeros((), dtype=torch.int32, device=device)
        self.found_inf = torch.zeros((), device=device)
        self.growth_interval = growth_interval
        # Skip by reading the overflow flag where that costs nothing: the CPU reads its own
        # memory; an accelerator would make the host wait for the step to finish.
        self.reads_flag = torch.device(device).type == "cpu"

    @torch.no_grad()
    def step(self, grads, update, variables):
        """Divide `grads` by the scale in place and run `update()` if they are all finite;
        adjust the scale. With `reads_flag` (the CPU) an overflow skips the update; otherwise,
        and in a compiled step, the update always runs and the values it gave `variables` (the
        weights and the optimizer's state) are put back on overflow, from copies held for the
        update's duration."""
        finite = self._unscale(grads)
        if torch.compiler.is_compiling():  # inductor fuses these into a few kernels
            before = [v.detach().clone() for v in variables]
            update()
            for variable, old in zip(variables, before):  # `out=` cannot be channels-last
                variable.copy_(torch.where(finite, variable, old))
        elif self.reads_flag:
            if finite:
                update()
        else:
            _run_and_put_back_unless(finite, update, variables)
        self._update_scale(finite)

    def _unscale(self, grads):
        """Divide `grads` by the scale in place; a 0-d tensor: whether they are all finite."""
        if torch.compiler.is_compiling():  # inductor has no kernel for torch's fused check
            torch._foreach_div_(grads, self.scale)
            return torch.stack([torch.isfinite(g).all() for g in grads]).all()
        self.found_inf.zero_()
        torch._amp_foreach_non_finite_check_and_unscale_(grads, self.found_inf,
                                                         self.scale.reciprocal())
        return self.found_inf == 0

    def _update_scale(self, finite):
        """Halve the scale on overflow; double it after `growth_interval` finite steps."""
        grown = torch.where(finite, self.growth_tracker + 1, 0)
        grow = grown >= self.growth_interval
        self.scale.copy_(torch.where(finite, torch.where(grow, self.scale * 2, self.scale),
                                     self.scale * 0.5))
        self.growth_tracker.copy_(torch.where(grow, 0, grown))


def _run_and_put_back_unless(finite, update, variables):
    """Run `update()`, then give `variables` back their values from before it unless `finite`
    (a 0-d bool tensor), without reading it. Each group of one dtype and device is copied into
    one flat tensor, so this is a handful of kernels, not two per variable (ResNet50 with SGD
    momentum has 323 variables). Runs under `no_grad` (`LossScaler.step`)."""
    groups, scattered = {}, []
    for variable in variables:
        flat = _flat(variable)
        if flat is None:
            scattered.append((variable, variable.clone()))
        else:
            groups.setdefault((flat.dtype, flat.device), []).append(flat)
    saved = [(group, torch.cat(group)) for group in groups.values()]
    update()
    for group, before in saved:
        kept = torch.where(finite, torch.cat(group), before, out=before)
        torch._foreach_copy_(group, kept.split([v.shape[0] for v in group]))
    for variable, before in scattered:
        variable.copy_(torch.where(finite, variable, before))


def _flat(tensor):
    """`tensor`'s elements as one 1-D view in the order memory holds them, where they fill a
    block (contiguous, channels-last, transposed), else None. Such views copy nothing, and on
    CUDA `_foreach_copy_` fuses contiguous tensors into a few kernels (`torch._utils`' flatten
    would copy each channels-last kernel to a contiguous one first)."""
    if not (tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last)):
        block = 1
        for stride, size in sorted((st, n) for st, n in zip(tensor.stride(), tensor.shape)
                                   if n != 1):
            if stride != block:
                return None
            block *= size
    return tensor.as_strided((tensor.numel(),), (1,), tensor.storage_offset())


def __getattr__(name):
    """`LossScaleOptimizer` lives with the optimizers (which import this module)."""
    if name == "LossScaleOptimizer":
        from lamina.optimizers import LossScaleOptimizer
        return LossScaleOptimizer
    raise AttributeError(f"module 'lamina.mixed_precision' has no attribute {name!r}")
