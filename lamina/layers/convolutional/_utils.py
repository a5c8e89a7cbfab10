"""Shared helpers of the convolution, pooling and reshaping layers.

Keras tensors are channels-last; torch kernels are channels-first. `to_torch` turns a Keras
input into the channels-first *view* torch wants (no copy: an NHWC tensor permuted to NCHW is
already `torch.channels_last` in memory) and `from_torch` turns the result back. One-dimensional
inputs get a unit height axis, so 1D work goes through the 2D kernels and keeps the same
memory-format benefit.
"""
import torch
import torch.nn.functional as F

_PADDINGS = ("valid", "same")


def standardize_tuple(value, n, name, allow_zero=False, layer=None):
    """`value` (an int or an iterable of `n` ints) as a tuple of `n` ints."""
    where = f"Layer '{layer}': " if layer else ""
    if isinstance(value, int) and not isinstance(value, bool):
        values = (value,) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(f"{where}the `{name}` argument must be an int or a tuple of {n} "
                             f"ints. Received: {name}={value!r}") from None
        if len(values) != n:
            raise ValueError(f"{where}the `{name}` argument must be a tuple of {n} integers. "
                             f"Received: {name}={value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            try:
                ok = int(v) == v
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"{where}the `{name}` argument must be a tuple of {n} "
                                 f"integers. Received: {name}={value!r}")
        if v < 0 or (v == 0 and not allow_zero):
            kind = "non-negative" if allow_zero else "positive"
            raise ValueError(f"{where}the `{name}` argument must be a tuple of {n} {kind} "
                             f"integers. Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def standardize_padding(value, layer, allow_causal=False):
    """`"valid"`, `"same"` (or `"causal"` where allowed), lower-cased; else a ValueError."""
    allowed = _PADDINGS + (("causal",) if allow_causal else ())
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(f"Layer '{layer}': the `padding` argument must be one of "
                         f"{', '.join(repr(a) for a in allowed)}. Received: padding={value!r}")
    return padding


def standardize_data_format(value, layer):
    from lamina import backend
    if value is None:
        return backend.image_data_format()
    data_format = value.lower() if isinstance(value, str) else value
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"Layer '{layer}': the `data_format` argument must be one of "
                         f"'channels_last', 'channels_first'. Received: data_format={value!r}")
    return data_format


def check_rank(layer, inputs, rank):
    if inputs.dim() != rank + 2:
        raise ValueError(f"Input 0 of layer '{layer.name}' ({type(layer).__name__}) is "
                         f"incompatible with the layer: expected ndim={rank + 2}, found "
                         f"ndim={inputs.dim()}. Full shape received: {tuple(inputs.shape)}")


def spatial_shape(shape, data_format):
    return tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])


_TO_FIRST = {3: (0, 2, 1), 4: (0, 3, 1, 2), 5: (0, 4, 1, 2, 3)}  # channels last -> first
_TO_LAST = {3: (0, 2, 1), 4: (0, 2, 3, 1), 5: (0, 2, 3, 4, 1)}  # by the tensor's rank


def to_torch(x, data_format):
    """Channels-first view of a Keras input; 1D inputs get a unit height axis."""
    if x.dim() == 3:
        x = x.unsqueeze(1) if data_format == "channels_last" else x.unsqueeze(2)
    return x.permute(_TO_FIRST[x.dim()]) if data_format == "channels_last" else x


def from_torch(y, data_format, rank):
    """Undo `to_torch` on a channels-first result."""
    if rank == 1:
        y = y.squeeze(2)
    return y.permute(_TO_LAST[y.dim()]) if data_format == "channels_last" else y


def as_torch_kernel(weight, rank):
    """A stored `(out, in, *k)` kernel as the 2D/3D kernel torch is called with (a view)."""
    return weight.unsqueeze(2) if rank == 1 else weight


def channels_last_storage(param):
    """Re-store `(a, b, *spatial)` with axis 1 innermost, the `channels_last` layout torch's
    kernels want next to a channels-last input (same shape and values, other strides)."""
    with torch.no_grad():
        param.data = param.data.movedim(1, -1).contiguous().movedim(-1, 1)


def effective_size(kernel, dilation):
    return (kernel - 1) * dilation + 1


def same_pads(size, kernel, stride, dilation=1):
    """TF/Keras `"same"` padding of one axis: `(before, after)`, the extra cell at the end."""
    k = effective_size(kernel, dilation)
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv_pads(sizes, kernel, strides, dilation, padding):
    """Per-axis `(before, after)` pads of a convolution or pooling window."""
    if padding == "same":
        return [same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation)]
    if padding == "causal":
        return [(effective_size(k, d) - 1, 0) for k, d in zip(kernel, dilation)]
    return [(0, 0)] * len(sizes)


def output_length(size, kernel, stride, dilation, padding):
    """Keras's output length of a convolution/pooling axis (None stays None)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // stride)
    return (size - effective_size(kernel, dilation)) // stride + 1


def check_output_sizes(layer, shape, data_format, kernel, strides, dilation, padding, what):
    """ValueError naming the layer when a `"valid"` window is larger than the input."""
    sizes = spatial_shape(shape, data_format)
    outs = [output_length(n, k, s, d, padding)
            for n, k, s, d in zip(sizes, kernel, strides, dilation)]
    if any(o is not None and o <= 0 for o in outs):
        need = tuple(effective_size(k, d) for k, d in zip(kernel, dilation))
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}): the {what} {need} (dilated) is "
            f"larger than the spatial input {tuple(sizes)} with padding='{padding}': computed "
            f"output size would be zero or negative. Expected spatial dimensions of at least "
            f"{need}; received input shape {tuple(shape)}.")
    return outs


def memo_pads(layer, inputs, work_out):
    """`work_out(inputs)`, a window layer's per-axis pads with its checks of the inputs' shape,
    worked out again in eager calls only when that shape (less the batch axis) changes: a layer
    mostly sees one, which passed the checks. Compiled code works them out while traced."""
    if torch.compiler.is_compiling():
        return work_out(inputs)
    memo = layer._pads_memo
    if memo is None or memo[0] != inputs.shape[1:]:
        memo = layer._pads_memo = (inputs.shape[1:], work_out(inputs))
    return memo[1]


def torch_padding(x, pads, rank, value=0.0):
    """(`x`, `padding` argument for torch): symmetric pads go to the torch kernel itself, an
    asymmetric one is applied with `F.pad` first (torch's kernels only pad symmetrically)."""
    if rank == 1:
        pads = [(0, 0)] + list(pads)
    if all(a == b for a, b in pads):
        return x, tuple(a for a, _ in pads)
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(x, flat, value=value), (0,) * len(pads)


def torch_tuple(values, rank, fill=1):
    """Per-axis arguments for the torch 2D kernel that runs a 1D operation."""
    return ((fill,) + tuple(values)) if rank == 1 else tuple(values)


def conv_function(rank):
    return F.conv3d if rank == 3 else F.conv2d
