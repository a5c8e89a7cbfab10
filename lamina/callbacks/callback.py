"""`Callback`: the base class of every training hook, plus small helpers."""

import os
import sys

from lamina.utils.progbar import _print
from lamina.utils.progbar import _to_python

__all__ = ["Callback"]


def _is_chief():
    """True unless `torch.distributed` runs and this process is not rank 0.

    File-writing callbacks and the progress bar act only on the chief.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        try:
            import torch.distributed as dist
        except ImportError:  # pragma: no cover - torch built without it
            return True
    if not dist.is_available() or not dist.is_initialized():
        return True
    return dist.get_rank() == 0


def _print_msg(message, line_break=True):
    """Prints a callback message to stdout, on the chief process only."""
    if _is_chief():
        _print(f"{message}\n" if line_break else str(message))


def _flatten_logs(logs, out, sort=True):
    items = sorted(logs.items()) if sort else logs.items()
    for key, value in items:
        if isinstance(value, dict):
            _flatten_logs(value, out, sort)
        else:
            out[key] = value
    return out


def _pythonify_logs(logs):
    """Returns a flat, key-sorted copy of `logs` with Python-float values.

    Scalar tensors are read back in one sync per (device, dtype) group;
    values that cannot become a float (arrays, strings) are kept as they are
    (non-scalar tensors as numpy arrays), like Keras's `pythonify_logs`.
    """
    if not logs:
        return {}
    flat = _flatten_logs(logs, {})
    keys = list(flat)
    values = _to_python(flat.values())
    result = {}
    for key, value in zip(keys, values):
        try:
            value = float(value)
        except (TypeError, ValueError):
            pass
        result[key] = value
    return result


def _atomic_replace(tmp_path, path):
    """fsyncs `tmp_path` then renames it over `path` (same folder)."""
    with open(tmp_path, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class Callback:
    """Base class used to build new callbacks.

    Subclass it and override the `on_*` methods of the stages you need.
    `self.model` is the model being trained (set by `set_model`) and
    `self.params` a dict with `verbose`, `epochs` and `steps` (set by
    `set_params`). Set `self.model.stop_training = True` to stop `fit`.

    Batch hooks receive `logs` whose values are Python floats. A callback
    that does not override a batch hook is never called for it, so it costs
    the training loop nothing.
    """

    def __init__(self):
        self.params = None
        self._model = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self._model = model

    @property
    def model(self):
        model = getattr(self, "_model", None)
        ddp = sys.modules.get("torch.nn.parallel")
        if ddp is not None and isinstance(
            model, ddp.DistributedDataParallel
        ):
            return model.module
        return model

    @model.setter
    def model(self, model):
        # Keras 2 callbacks sometimes assign `self.model` directly.
        self._model = model

    def on_batch_begin(self, batch, logs=None):
        """A backwards compatibility alias for `on_train_batch_begin`."""

    def on_batch_end(self, batch, logs=None):
        """A backwards compatibility alias for `on_train_batch_end`."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of an epoch (training only)."""

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of an epoch with the epoch's metrics.

        `logs` holds the training metrics and, when validation ran, the
        validation metrics prefixed with `val_`, e.g.
        `{"loss": 0.2, "accuracy": 0.7, "val_loss": 0.3}`.
        """

    def on_train_batch_begin(self, batch, logs=None):
        """Called at the beginning of a training batch in `fit`."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called at the end of a training batch in `fit`.

        `logs` holds the metric results aggregated up to this batch.
        """
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        """Called at the beginning of a batch in `evaluate` or validation."""

    def on_test_batch_end(self, batch, logs=None):
        """Called at the end of a batch in `evaluate` or validation."""

    def on_predict_batch_begin(self, batch, logs=None):
        """Called at the beginning of a batch in `predict`."""

    def on_predict_batch_end(self, batch, logs=None):
        """Called at the end of a batch in `predict`."""

    def on_train_begin(self, logs=None):
        """Called at the beginning of training."""

    def on_train_end(self, logs=None):
        """Called at the end of training with the last epoch's logs."""

    def on_test_begin(self, logs=None):
        """Called at the beginning of evaluation or validation."""

    def on_test_end(self, logs=None):
        """Called at the end of evaluation or validation."""

    def on_predict_begin(self, logs=None):
        """Called at the beginning of prediction."""

    def on_predict_end(self, logs=None):
        """Called at the end of prediction."""


def _scalar(value):
    """A Python float from a number, numpy scalar or one-element tensor."""
    return float(_to_python([value])[0])


def _optimizers(model):
    """`[(name, optimizer)]` of the model: several for a multi-optimizer."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError(
            "This callback needs a compiled model with an optimizer; "
            "received a model whose `optimizer` is None."
        )
    inner = getattr(optimizer, "optimizers", None)
    if isinstance(inner, (list, tuple)):
        return [(getattr(opt, "name", str(i)), opt) for i, opt in enumerate(inner)]
    return [(None, optimizer)]


def _log_learning_rates(model, logs):
    """Adds `learning_rate` (or `learning_rate_<name>`) to `logs`."""
    for name, opt in _optimizers(model):
        key = "learning_rate" if name is None else f"learning_rate_{name}"
        logs[key] = _scalar(opt.learning_rate)
    return logs
