"""Inference in cache-sized forward passes.

On a CPU, a model predicts fastest when its largest activation just fits in the processor's
cache: the MNIST convnet runs ~3x faster per sample at batch 128 than at 1024, ResNet50 fastest
at batch 4, while an MLP's small batches lose most of their time to per-call overhead.
`predict` therefore runs passes of about `BUDGET` bytes of largest activation, splitting large
batches and joining small ones (in-memory arrays), for models built only from lamina's own
layers (none of which mixes samples at inference, stateful RNNs aside); the outputs, and the
batches that callbacks see, are the same.
"""
import math
import weakref

import torch

from lamina import backend
from lamina.engine import keras_tensor as kt
from lamina.training import data_adapter

BUDGET = 16 * 2 ** 20  # bytes of the largest layer output per chunk: half a server's L3


def chunk_size(model, device):
    """Samples per forward pass for `predict` on `device`, or None to keep batches whole."""
    if device.type != "cpu":
        return None
    graph = getattr(model, "_functional", None) or model
    if graph not in _PER_SAMPLE:  # once per graph: a Sequential that changes gets a new one
        per_sample = _largest_activation(graph)
        _PER_SAMPLE[graph] = per_sample if per_sample and _keeps_samples_apart(graph) else None
    per_sample = _PER_SAMPLE[graph]
    return None if per_sample is None else 2 ** int(math.log2(max(1, BUDGET // per_sample)))


_PER_SAMPLE = weakref.WeakKeyDictionary()  # graph: bytes of its largest activation


def _keeps_samples_apart(model):
    """False when a layer, nested ones included, may mix samples at inference: a `Lambda`, a
    stateful RNN, a layer or model defined outside lamina."""
    from lamina.layers.core import Lambda

    return not any(isinstance(layer, Lambda) or getattr(layer, "stateful", False)
                   or not type(layer).__module__.startswith("lamina.")
                   for layer in model._flatten_layers())


def _largest_activation(model):
    """Bytes per sample of the model's largest input or layer output, nested models' included;
    None when one is unknown (no graph, a dimension of unknown size)."""
    graph = getattr(model, "_functional", None) or model
    nodes = getattr(graph, "_nodes", None)
    if nodes is None:
        return None
    largest = 0
    for node in nodes:
        if hasattr(node.layer, "_nodes") or hasattr(node.layer, "_functional"):
            inner = _largest_activation(node.layer)
            if inner is None:
                return None
            largest = max(largest, inner)
    for tensor in list(graph._inputs) + [t for node in nodes for t in node.output_tensors]:
        if any(d is None for d in tensor.shape[1:]):
            return None
        size = math.prod(tensor.shape[1:]) * backend.torch_dtype(tensor.dtype).itemsize
        largest = max(largest, size)
    return largest


def passes(adapter, chunk):
    """The adapter's batches as forward passes, with the sizes of the batches each covers (None:
    one batch). In-memory arrays, read in order, join consecutive batches up to `chunk`."""
    batch = getattr(adapter, "batch_size", None)
    joined = (chunk // batch if chunk and isinstance(adapter, data_adapter.ArrayAdapter)
              and not adapter.shuffle and adapter.steps == math.ceil(adapter.num_samples / batch)
              else 1)
    if joined < 2:
        yield from ((x, None) for x, _, _ in adapter)
        return
    span, n = joined * batch, adapter.num_samples
    for start in range(0, n, span):
        stop = min(start + span, n)
        yield (kt.map_structure(lambda v: v[start:stop], adapter.x),
               [min(batch, stop - s) for s in range(start, stop, batch)])


def split(outputs, sizes):
    """`outputs` of one pass cut back into the batches it covered."""
    if sizes is None:
        return [outputs]
    pieces = [torch.split(t, sizes) for t in kt.flatten(outputs)]
    return [kt.pack_like(outputs, list(parts)) for parts in zip(*pieces)]


def call_in_chunks(forward, x, chunk):
    """`forward(x)` (the model called with `training=False`), run `chunk` samples at a time
    when the batch is larger."""
    size = int(kt.flatten(x)[0].shape[0])
    if chunk is None or size <= chunk:
        return forward(x)
    return join([forward(kt.map_structure(lambda v: v[start:start + chunk], x))
                 for start in range(0, size, chunk)])


def join(outputs):
    """Outputs of consecutive passes or batches (structures alike) as one structure."""
    if len(outputs) == 1:
        return outputs[0]
    return kt.pack_like(outputs[0], [torch.cat(parts) for parts in zip(*map(kt.flatten, outputs))])
