"""Turning what users pass to `fit`/`evaluate`/`predict` into batches on the device.

In-memory arrays (numpy or torch, single or nested in lists/dicts) are moved to the device
once and batched by indexing; generators, `PyDataset`/`Sequence` objects and torch
`DataLoader`s are iterated and each batch is moved as it comes (pinned, non-blocking on GPU).

Epochs consume the data as in Keras: an epoch runs `steps` batches, or one pass over the data.
With `steps` given, `fit`'s next epoch carries on where the last one stopped (the position is
kept by `on_epoch_end`, which only `fit` calls, so each evaluation starts from the beginning), a
new pass (and shuffle) starting only once a pass is used up; an epoch that hits the end of a
pass ends there, with a warning.
"""
import itertools
import math
import warnings

import numpy as np
import torch

from lamina import backend
from lamina.engine import keras_tensor as kt


class PyDataset:
    """Base class for datasets served batch by batch: implement `__len__` and `__getitem__`.

    `__getitem__(index)` returns `(x, y)` or `(x, y, sample_weight)` for batch `index`;
    `on_epoch_end()` runs after every epoch.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers, self.use_multiprocessing = workers, use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError

    def on_epoch_end(self):
        pass

    @property
    def num_batches(self):
        return len(self)


Sequence = PyDataset


def to_device_tensor(value, device, cast_floats=True):
    """A numpy array / tensor / number as a torch tensor on `device` (floats as floatx)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind in "USO":
            raise TypeError(f"Data of dtype {array.dtype} cannot be converted to a tensor.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if cast_floats and tensor.is_floating_point():
        tensor = tensor.to(backend.torch_dtype(backend.floatx()))
    if tensor.device != device:
        if device.type == "cuda" and tensor.device.type == "cpu":
            tensor = tensor.pin_memory().to(device, non_blocking=True)
        else:
            tensor = tensor.to(device)
    return tensor


def structure_to_device(structure, device):
    if structure is None:
        return None
    return kt.map_structure(lambda v: to_device_tensor(v, device), structure)


def unpack_x_y_sample_weight(data):
    if isinstance(data, (list, tuple)):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data[0], data[1], data[2]
        raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                         f"`(x, y, sample_weight)`, found a tuple of length {len(data)}.")
    return data, None, None


def _num_samples(structure):
    return [int(v.shape[0]) for v in kt.flatten(structure) if v is not None]


def _is_array(value):
    return isinstance(value, (np.ndarray, torch.Tensor, list, tuple, dict)) or np.isscalar(value)


def _is_array_data(x):
    """In-memory arrays (batched by `ArrayAdapter`), not an iterable of batches."""
    return isinstance(x, (np.ndarray, torch.Tensor, dict)) or (
        isinstance(x, (list, tuple)) and all(_is_array(v) for v in x))


GATHER_BYTES = 2 ** 20  # shuffled batches gathered per index_select: about 1 MiB of them


class ArrayAdapter:
    """Batches in-memory arrays; the whole data set is moved to the device once."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False,
                 steps=None, device=None, seed=None):
        self.device = device or backend.device()
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        x = _as_array_structure(x)
        y = _as_array_structure(y)
        sample_weight = _as_array_structure(sample_weight)
        sizes = {"x": _num_samples(x), "y": _num_samples(y) if y is not None else [],
                 "sample_weight": _num_samples(sample_weight) if sample_weight is not None else []}
        every = {n for v in sizes.values() for n in v}
        if len(every) > 1:
            detail = " ".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items() if v)
            raise ValueError("Data cardinality is ambiguous. Make sure all arrays contain the "
                             f"same number of samples. {detail}")
        self.num_samples = every.pop() if every else 0
        if not self.num_samples:
            shapes = ", ".join(f"{name} of shape {tuple(v.shape)}"
                               for name, d in (("x", x), ("y", y), ("sample_weight", sample_weight))
                               if d is not None for v in kt.flatten(d) if v is not None)
            raise ValueError("The data holds no samples: `fit`, `evaluate` and `predict` need at "
                             f"least one. Received: {shapes or repr(x)}")
        self.x = structure_to_device(x, self.device)
        self.y = structure_to_device(y, self.device)
        self.sample_weight = structure_to_device(sample_weight, self.device)
        self.batch_size = batch_size or (math.ceil(self.num_samples / steps) if steps else 32)
        self.shuffle = shuffle
        self.num_batches = math.ceil(self.num_samples / self.batch_size)
        self.steps = steps or self.num_batches
        self._carries_on = bool(steps)
        self._first = self._next = 0  # the epoch's first batch; the one after the last yielded
        self._perm = None

    def __iter__(self):
        n, b, first = self.num_samples, self.batch_size, self._first
        if first == 0:  # a new pass over the data
            self._perm = self._permutation()
        last = min(self.num_batches, first + self.steps)
        perm = self._perm
        data = (self.x, self.y, self.sample_weight)
        source, offset, end = data, 0, (n if perm is None else -1)
        per_chunk = max(1, GATHER_BYTES // max(1, self._bytes_per_batch(data)))
        for batch in range(first, last):
            start, stop = batch * b, min(batch * b + b, n)
            if perm is not None and not (offset <= start and stop <= end):
                # Shuffled batches are gathered several at a time: one index_select per
                # array for `per_chunk` batches, each batch then a view of the chunk.
                offset, end = start, min(start + per_chunk * b, n)
                index = perm[offset:end]
                source = [_take(lambda v: v.index_select(0, index), d) for d in data]
            self._next = batch + 1
            yield tuple(_take(lambda v: v[start - offset:stop - offset], d) for d in source)
        if last - first < self.steps:
            _warn_ran_out(last - first)

    def _permutation(self):
        if not self.shuffle:
            return None
        if self.generator is not None:  # an order shared by all processes
            return torch.randperm(self.num_samples, generator=self.generator).to(self.device)
        return torch.randperm(self.num_samples, device=self.device)

    def _bytes_per_batch(self, data):
        arrays = [v for d in data if d is not None for v in kt.flatten(d) if v is not None]
        return self.batch_size * sum(v[:1].numel() * v.element_size() for v in arrays)

    def on_epoch_end(self):
        """The next epoch carries on after this one's last batch, given `steps` and batches
        left in the pass; else it starts a new pass."""
        self._first = self._next if self._carries_on and self._next < self.num_batches else 0


def _warn_ran_out(batches):
    warnings.warn(f"The input ran out of data after {batches} batch(es) of this epoch, which "
                  "ends there. Data for `fit` should yield at least `steps_per_epoch * epochs` "
                  "batches (`steps` for `evaluate` and `predict`).", stacklevel=2)


def _no_batches(data):
    return ValueError("The data yields no batches: `fit`, `evaluate` and `predict` need at least "
                      "one `(x,)`, `(x, y)` or `(x, y, sample_weight)` batch (a generator used up "
                      f"by an earlier call yields none). Received: {data!r}")


def _take(take, structure):
    """`take` applied to every array of `structure`, None entries kept (a plain tensor skips
    the tree walk)."""
    if structure is None or isinstance(structure, torch.Tensor):
        return None if structure is None else take(structure)
    return kt.map_structure(lambda v: None if v is None else take(v), structure)


def _as_array_structure(data):
    if data is None:
        return None
    if isinstance(data, (list, tuple)) and data and all(np.isscalar(v) for v in data):
        return np.asarray(data)
    return data


class IterableAdapter:
    """Generators, `PyDataset`/`Sequence` and torch `DataLoader`s; batches moved as they come.

    A pass over a `PyDataset` (in a new order when shuffled) or a `DataLoader` iterates it
    afresh. A generator cannot restart: as in Keras, its first two batches are read up front and
    every new pass serves them again, followed by whatever the generator still yields.
    """

    def __init__(self, data, steps=None, shuffle=False, device=None, seed=None):
        self.device = device or backend.device()
        self.data = data
        self.is_loader = isinstance(data, torch.utils.data.DataLoader)
        self.is_dataset = isinstance(data, PyDataset) or (
            hasattr(data, "__getitem__") and hasattr(data, "__len__") and not self.is_loader)
        self.per_process = self.is_loader and isinstance(
            getattr(data, "sampler", None), torch.utils.data.distributed.DistributedSampler)
        sized = self.is_dataset or (self.is_loader and hasattr(data.dataset, "__len__"))
        self.num_batches = len(data) if sized else None
        self.steps = steps or self.num_batches
        self.shuffle = shuffle and self.is_dataset
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)
        self._carries_on = bool(steps)
        self._iterator = self._first_batches = None
        if not (self.is_dataset or self.is_loader):
            self._iterator = iter(data)
            self._first_batches = list(itertools.islice(self._iterator, 2))
        if self.num_batches == 0 or self._first_batches == []:
            raise _no_batches(data)
        self._pass, self._taken, self._resume = None, 0, False

    def _new_pass(self):
        if self.is_dataset:
            order = (torch.randperm(len(self.data), generator=self.generator).tolist()
                     if self.shuffle else range(len(self.data)))
            return (self.data[i] for i in order)
        if self.is_loader:
            return iter(self.data)
        return itertools.chain(self._first_batches, self._iterator)

    def __iter__(self):
        if not self._resume:
            self._pass, self._taken = self._new_pass(), 0
        for step in range(self.steps) if self.steps else itertools.count():
            batch = next(self._pass, _END) if self._taken != self.num_batches else _END
            if batch is _END:
                if not self._taken:
                    raise _no_batches(self.data)
                self._pass = None
                _warn_ran_out(step)
                return
            self._taken += 1
            x, y, sw = unpack_x_y_sample_weight(batch)
            yield (structure_to_device(x, self.device), structure_to_device(y, self.device),
                   structure_to_device(sw, self.device))

    def on_epoch_end(self):
        """The next epoch carries on in this pass, given `steps` and batches left in it."""
        self._resume = (self._carries_on and self._pass is not None
                        and self._taken != self.num_batches)
        if self.is_dataset and hasattr(self.data, "on_epoch_end"):
            self.data.on_epoch_end()


_END = object()  # a pass's end, from `next`


def get_adapter(x, y=None, sample_weight=None, batch_size=None, shuffle=False, steps=None,
                device=None, seed=None):
    """The adapter for `x`: arrays, or an iterable of batches."""
    if _is_array_data(x):
        return ArrayAdapter(x, y, sample_weight, batch_size=batch_size, shuffle=shuffle,
                            steps=steps, device=device, seed=seed)
    if y is not None or sample_weight is not None:
        raise ValueError("`y` and `sample_weight` must not be passed when `x` is a generator, "
                         "a `PyDataset` or a `DataLoader`: yield them from `x` instead. "
                         f"Received: x={type(x).__name__}, y={type(y).__name__}")
    if x is None or isinstance(x, (str, bytes)) or (
            not hasattr(x, "__iter__") and not hasattr(x, "__getitem__")):
        raise ValueError(f"Unrecognized data type: x={x!r} (of type {type(x)})")
    return IterableAdapter(x, steps=steps, shuffle=shuffle, device=device, seed=seed)


def holds_no_samples(x):
    """True for arrays (or lists/dicts of them) of zero samples: Keras then skips validation."""
    return _is_array_data(x) and not any(_num_samples(_as_array_structure(x)))


def split_validation(x, y, sample_weight, validation_split):
    """Keras's `validation_split`: the last fraction of the arrays, taken before shuffling."""
    if not isinstance(x, (np.ndarray, torch.Tensor, list, tuple, dict)):
        raise ValueError("`validation_split` is only supported for arrays (numpy or torch), "
                         f"not for data of type {type(x).__name__}.")
    n = _num_samples(x)[0]
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise ValueError(f"Training data contains {n} samples, which is not sufficient to split "
                         f"it into a validation and training set as specified by "
                         f"`validation_split={validation_split}`.")

    def cut(structure, lo, hi):
        return None if structure is None else kt.map_structure(lambda v: v[lo:hi], structure)

    return ((cut(x, 0, split_at), cut(y, 0, split_at), cut(sample_weight, 0, split_at)),
            (cut(x, split_at, n), cut(y, split_at, n), cut(sample_weight, split_at, n)))
