"""`BackupAndRestore`: resumes an interrupted `fit` from its last backup."""

import os
import pickle
import shutil
import tempfile
import warnings

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _atomic_replace
from lamina.callbacks.callback import _is_chief

__all__ = ["BackupAndRestore"]


class BackupAndRestore(Callback):
    """Callback to back up and restore the training state.

    At the end of each epoch (or every `save_freq` batches) the weights
    (`latest.weights.h5`, through `model.save_weights`) and the training
    state (`training_state.pt`: epoch, batch and optimizer state) are written
    to `backup_dir`, each atomically. When `fit` starts again with the same
    callback, the weights and optimizer state are restored and training
    resumes at the saved epoch (through `model._initial_epoch`). The backup
    is deleted when `fit` completes, unless `delete_checkpoint=False`.

    Args:
        backup_dir: Directory where to store the backup. Not to be shared
            with other callbacks or runs.
        save_freq: `"epoch"` or an integer number of batches.
        double_checkpoint: Also keep the previous backup (`*.bkp`), used if
            the latest cannot be read.
        delete_checkpoint: Delete the backup when training completes.
    """

    _supports_tensor_logs = True  # its batch hook never reads the logs

    def __init__(
        self,
        backup_dir,
        save_freq="epoch",
        double_checkpoint=False,
        delete_checkpoint=True,
    ):
        super().__init__()
        if not backup_dir:
            raise ValueError(
                f"Empty `backup_dir` argument passed. Received: {backup_dir!r}"
            )
        if save_freq != "epoch" and (
            not isinstance(save_freq, int) or isinstance(save_freq, bool)
        ):
            raise ValueError(
                "Invalid value for argument `save_freq`. "
                f"Received: save_freq={save_freq}. "
                "Expected either 'epoch' or an integer value."
            )
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._state_path = os.path.join(self.backup_dir, "training_state.pt")
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_state_path = self._state_path + ".bkp"

    def _batch_hook_active(self, hook):
        return self.save_freq != "epoch"

    # -- restore -----------------------------------------------------------
    def on_train_begin(self, logs=None):
        try:
            self._load(self._weights_path, self._state_path)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
            if not (
                self.double_checkpoint
                and os.path.exists(self._prev_weights_path)
            ):
                raise
            self._load(self._prev_weights_path, self._prev_state_path)

    def _load(self, weights_path, state_path):
        import torch

        model = self.model
        if getattr(model, "built", True) is False:
            raise ValueError(
                "To use the BackupAndRestore callback, your model must be "
                "built before you call `fit()`. "
                f"Model {model} is unbuilt. You can build it beforehand by "
                "calling it on a batch of data."
            )
        if os.path.exists(weights_path):
            with warnings.catch_warnings():  # the optimizer, not built yet: the state file has it
                warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
                model.load_weights(weights_path)
        if os.path.exists(state_path):
            state = torch.load(state_path, map_location="cpu", weights_only=True)
            optimizer = getattr(model, "optimizer", None)
            if state.get("optimizer") is not None and optimizer is not None:
                optimizer.load_state_dict(state["optimizer"])
            self._current_epoch = int(state["epoch"])
            model._initial_epoch = self._current_epoch

    # -- backup ------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model()

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        if batch <= self._last_batch_seen:  # a new epoch started
            add_batches = batch + 1
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _save_model(self):
        if not _is_chief():
            return
        import torch

        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for src, dst in (
                (self._weights_path, self._prev_weights_path),
                (self._state_path, self._prev_state_path),
            ):
                if os.path.exists(src):
                    shutil.copyfile(src, dst)
        # Weights: written to a temporary name in the same folder, then
        # renamed over the previous backup.
        fd, tmp = tempfile.mkstemp(
            prefix=".latest-", suffix=".weights.h5", dir=self.backup_dir
        )
        os.close(fd)
        os.remove(tmp)  # some writers refuse to overwrite
        try:
            self.model.save_weights(tmp)
            _atomic_replace(tmp, self._weights_path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        optimizer = getattr(self.model, "optimizer", None)
        state = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "optimizer": (
                optimizer.state_dict()
                if optimizer is not None and hasattr(optimizer, "state_dict")
                else None
            ),
        }
        fd, tmp = tempfile.mkstemp(
            prefix=".training_state-", suffix=".pt", dir=self.backup_dir
        )
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
            _atomic_replace(tmp, self._state_path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and _is_chief() and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)
