"""`History`: records the epoch logs of `fit`."""

from lamina.callbacks.callback import Callback

__all__ = ["History"]


class History(Callback):
    """Callback that records events into a `History` object.

    Every `fit` adds one and returns it: `history.history` maps each metric
    name to its list of per-epoch values, `history.epoch` lists the epoch
    indices seen and `history.params` holds the training parameters.
    """

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self
