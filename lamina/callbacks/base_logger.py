"""`BaseLogger`: the Keras 2 callback that averages batch metrics per epoch."""

from lamina.callbacks.callback import Callback

__all__ = ["BaseLogger"]

_SKIP = ("batch", "size", "num_steps")


class BaseLogger(Callback):
    """Callback that accumulates epoch averages of metrics (Keras 2).

    At each epoch end, every metric seen in the training batch logs is
    replaced in the epoch logs by its average over the epoch's batches,
    weighted by the batch log `size` when present (else each batch counts
    once). Metrics named in `stateful_metrics` take their last batch value.
    Reading batch logs syncs with the device every batch.

    Args:
        stateful_metrics: Iterable of metric names that should not be
            averaged over the epoch.
    """

    def __init__(self, stateful_metrics=None):
        super().__init__()
        self.stateful_metrics = set(stateful_metrics or ())
        self.seen = 0
        self.totals = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.seen = 0
        self.totals = {}

    def on_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = logs.get("size", 1)
        self.seen += size * logs.get("num_steps", 1)
        for key, value in logs.items():
            if key in _SKIP:
                continue
            if key in self.stateful_metrics:
                self.totals[key] = value
            else:
                self.totals[key] = self.totals.get(key, 0.0) + value * size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for key, total in self.totals.items():
            if key in self.stateful_metrics:
                logs[key] = total
            elif self.seen:
                logs[key] = total / self.seen
