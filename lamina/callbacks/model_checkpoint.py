"""`ModelCheckpoint`: saves the model or its weights during training."""

import os
import re
import warnings

import numpy as np

from lamina.callbacks.callback import _is_chief
from lamina.callbacks.callback import _print_msg
from lamina.callbacks.callback import _pythonify_logs
from lamina.callbacks.monitor_callback import MonitorCallback

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(MonitorCallback):
    """Callback to save the model or model weights at some frequency.

    Args:
        filepath: Path to save the model file. It may contain named
            formatting options filled with `epoch` (1-based), `batch` (with
            an integer `save_freq`) and the keys of the logs, e.g.
            `"{epoch:02d}-{val_loss:.2f}.keras"`. It must end in
            `.weights.h5` when `save_weights_only=True`, else in `.keras` or
            `.h5`.
        monitor: The metric name to monitor (`"val_"`-prefixed for
            validation metrics).
        verbose: 0 (silent) or 1 (messages when the callback saves).
        save_best_only: Only save when the monitored quantity improved.
        save_weights_only: Save with `model.save_weights(filepath)` instead
            of `model.save(filepath)`.
        mode: One of `{"auto", "min", "max"}`.
        save_freq: `"epoch"` or an integer number of batches.
        initial_value_threshold: Initial "best" value of the monitored
            metric (used with `save_best_only=True`).

    Files are written by the chief process only under `torch.distributed`.
    """

    _supports_tensor_logs = True  # batch logs are read only on the batches it saves at

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool)
        ):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. "
                "Expected save_freq are 'epoch' or integer values"
            )
        if save_weights_only:
            if not self.filepath.endswith((".weights.h5", ".h5", ".hdf5", ".safetensors")):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`"
                    ", the filepath provided must end in `.weights.h5` "
                    "(Keras weights format), or `.h5`/`.hdf5` (Keras 2 weights). "
                    f"Received: filepath={self.filepath}"
                )
        elif not self.filepath.endswith((".keras", ".h5", ".hdf5")):
            raise ValueError(
                "The filepath provided must end in `.keras` "
                "(Keras model format), or `.h5`/`.hdf5` (legacy Keras 2 model). "
                f"Received: filepath={self.filepath}"
            )

    def _batch_hook_active(self, hook):
        return self.save_freq != "epoch"

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch,
                             logs=_pythonify_logs(logs))

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add_batches = batch + 1  # a new epoch started
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch, batch, logs, filepath):
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                _print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Can save best model only with {self.monitor} available.",
                stacklevel=2,
            )
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(
                "Can save best model only when `monitor` is "
                f"a scalar value. Received: {current}. "
                "Falling back to `save_best_only=False`.",
                stacklevel=2,
            )
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                _print_msg(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from "
                    f"{best_str} to {current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            _print_msg(
                f"\nEpoch {epoch + 1}: {self.monitor} did not improve from "
                f"{best_str}"
            )
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        if not _is_chief():
            return
        if os.path.isdir(filepath):
            raise IOError(
                "Please specify a non-directory filepath for "
                "ModelCheckpoint. Filepath used is an existing "
                f"directory: {filepath}"
            )
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            _print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    def _get_file_path(self, epoch, batch, logs):
        """Fills the `filepath` template for this epoch (and batch)."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". '
                f"Reason: {e}"
            ) from None

    def _checkpoint_exists(self, filepath):
        return os.path.exists(filepath)

    def _get_most_recently_modified_file_matching_pattern(self, pattern):
        """The newest file matching the `filepath` template, or None.

        Ties in modification time are broken by the largest file name.
        """
        dir_name = os.path.dirname(pattern) or "."
        base_regex = "^" + re.sub(r"{.*}", r".*", os.path.basename(pattern)) + "$"
        latest_time = 0
        latest_path = None
        n_latest = 0
        largest_path = None
        if os.path.isdir(dir_name):
            for name in os.listdir(dir_name):
                if not re.match(base_regex, name):
                    continue
                path = os.path.join(os.path.dirname(pattern), name)
                mtime = os.path.getmtime(path)
                if largest_path is None or path > largest_path:
                    largest_path = path
                if mtime > latest_time:
                    latest_time, latest_path, n_latest = mtime, path, 1
                elif mtime == latest_time:
                    n_latest += 1
        return latest_path if n_latest == 1 else largest_path
