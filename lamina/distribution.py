"""Data-parallel training on `torch.distributed`.

Launch an unchanged Keras-API script with `torchrun --nproc_per_node=N train.py`: `fit` sees the
torch.distributed environment, initialises the process group (NCCL on GPUs, Gloo on CPU), wraps
the model in `DistributedDataParallel` and splits every batch across the processes.

`batch_size` is the *global* batch size, as in Keras 3's distribution API: with 4 processes and
`batch_size=128`, each process computes 32 samples per step, and the result equals one process
training with batches of 128 in the same order. Generators, `PyDataset`s and `DataLoader`s follow
the same rule (every process reads every batch and keeps its own slice), except a `DataLoader`
with a `DistributedSampler`, whose batches are already per process.

>>> lamina.distribution.set_distribution(lamina.distribution.DataParallel())
"""
import atexit
import os
import weakref

import torch
import torch.distributed as dist

from lamina.backend import device as lamina_device

if dist.is_available():
    # Imported now, while no process group exists: its functions take `group=group.WORLD` as
    # default argument values, evaluated on first import. Imported later with a group open (as
    # torch._dynamo, which lamina's symbolic builds load through FakeTensorMode, imports it),
    # they would keep that group alive past `destroy_process_group`, to be freed in the
    # interpreter's teardown, where Gloo's threads can abort the process.
    import torch.distributed.nn.functional  # noqa: F401

_DISTRIBUTION = None
_WRAPPING = weakref.WeakSet()  # trainers that run their model in a DistributedDataParallel wrapper


class DataParallel:
    """Replicate the model on every process and split each global batch across them.

    Args:
        backend: process-group backend; default "nccl" when lamina runs on CUDA (see
            `LAMINA_DEVICE`), else "gloo".
    """

    def __init__(self, backend=None):
        self.backend = backend

    def initialize(self):
        if dist.is_initialized():
            return
        backend = self.backend or ("nccl" if lamina_device().type == "cuda" else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend=backend)
        atexit.register(_shutdown)  # lamina opened the group, so lamina closes it in order


def release_at_exit(trainer):
    """Have `trainer.unwrap()` called at exit, before the process group is destroyed."""
    _WRAPPING.add(trainer)


def _shutdown():
    """Leave together: a process exiting while its peers still talk to it aborts them. Every
    `DistributedDataParallel` wrapper holds the group, so they are dropped first: the group is
    then freed here, not during the interpreter's teardown, where Gloo's threads could abort the
    process ("terminate called without an active exception", now and then, in tests)."""
    if dist.is_initialized():
        for trainer in list(_WRAPPING):
            trainer.unwrap()
        dist.barrier()
        dist.destroy_process_group()


def set_distribution(value):
    """Use `value` (a `DataParallel`) for every later `fit`/`evaluate`; None turns it off."""
    global _DISTRIBUTION
    _DISTRIBUTION = value


def distribution():
    return _DISTRIBUTION


def maybe_initialize():
    """Join the process group when a launcher (torchrun) or `set_distribution` asks for it."""
    if dist.is_available() and not dist.is_initialized():
        launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if _DISTRIBUTION is not None or launched:
            (_DISTRIBUTION or DataParallel()).initialize()
    return is_distributed()


def is_distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    return dist.get_rank() if is_distributed() else 0


def world_size():
    return dist.get_world_size() if is_distributed() else 1


def shard(structure):
    """This process's contiguous slice of every tensor in a (nested) global batch."""
    from lamina.engine import keras_tensor as kt

    r, w = rank(), world_size()

    def cut(tensor):
        if tensor is None:
            return None
        n = tensor.shape[0]
        return tensor[n * r // w: n * (r + 1) // w]
    return None if structure is None else kt.map_structure(cut, structure)


def all_reduce_sum_(tensors):
    """Sum `tensors` in place across processes, with one collective call."""
    tensors = [t for t in tensors if t is not None]
    if not tensors or not is_distributed():
        return
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    dist.all_reduce(flat)
    offset = 0
    for t in tensors:
        size = t.numel()
        t.copy_(flat[offset:offset + size].view_as(t).to(t.dtype))
        offset += size


def broadcast_seed():
    """A random seed chosen by process 0 and shared by all (for a common shuffle order)."""
    seed = torch.randint(0, 2 ** 31 - 1, (1,))
    if is_distributed():
        if dist.get_backend() == "nccl":
            seed = seed.cuda()
        dist.broadcast(seed, src=0)
    return int(seed.item())


def barrier():
    if is_distributed():
        dist.barrier()
