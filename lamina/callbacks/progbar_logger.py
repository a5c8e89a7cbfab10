"""`ProgbarLogger`: prints the Keras progress bar during fit/evaluate/predict."""

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _flatten_logs
from lamina.callbacks.callback import _is_chief
from lamina.callbacks.callback import _print_msg
from lamina.utils.progbar import Progbar

__all__ = ["ProgbarLogger"]


class ProgbarLogger(Callback):
    """Callback that prints metrics to stdout.

    With `verbose=1` a bar per epoch, redrawn in place on a terminal (only
    the final line elsewhere); with `verbose=2` one line per epoch. Metrics
    are shown as given (the trainer's metrics are already running averages);
    validation metrics appear on the epoch-end line. Only the chief process
    prints when `torch.distributed` is initialised.

    Batch logs may hold device tensors: they are read back only when a line
    is drawn.

    Args:
        count_mode: Accepted for Keras 2 code; only `"steps"` is supported.
        stateful_metrics: Accepted for Keras 2 code; every metric is treated
            as stateful.
    """

    _supports_tensor_logs = True

    def __init__(self, count_mode="steps", stateful_metrics=None):
        super().__init__()
        if count_mode != "steps":
            raise ValueError(
                "`ProgbarLogger` counts steps only: expected "
                f"count_mode='steps'. Received: count_mode={count_mode!r}"
            )
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        params = params or {}
        verbose = params.get("verbose", 1)
        if verbose == "auto":
            verbose = 1
        self.verbose = verbose if _is_chief() else 0
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _batch_hook_active(self, hook):
        return self.verbose == 1

    def on_train_begin(self, logs=None):
        # Inside `fit`, validation is silent.
        self._called_in_fit = True

    def on_train_end(self, logs=None):
        self._called_in_fit = False

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            _print_msg(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        # Prediction outputs are not displayed.
        self._update_progbar(batch, None)

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(
                target=self.target,
                verbose=self.verbose,
                unit_name="step",
                stateless_metrics=(),
            )

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1  # one-indexed
        if self.verbose == 1:
            items = list(_flatten_logs(logs, {}).items()) if logs else None
            self.progbar.update(self.seen, items, finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        # Epoch logs come sorted from `CallbackList`; keys added in place by
        # other callbacks (e.g. `learning_rate`) stay last, as in Keras.
        items = list(_flatten_logs(logs, {}, sort=False).items()) if logs else None
        self.progbar.update(self.target, items, finalize=True)
