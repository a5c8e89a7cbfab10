"""`LambdaCallback`: a callback built from plain functions."""

from lamina.callbacks.callback import Callback

__all__ = ["LambdaCallback"]


class LambdaCallback(Callback):
    """Callback for creating simple, custom callbacks on-the-fly.

    The functions are called with the same positional arguments as the
    `Callback` methods they replace: `on_epoch_begin(epoch, logs)`,
    `on_epoch_end(epoch, logs)`, `on_train_begin(logs)`,
    `on_train_end(logs)`, `on_train_batch_begin(batch, logs)`,
    `on_train_batch_end(batch, logs)`; any other hook can be passed by name
    in `kwargs`, e.g. `on_test_end=fn`.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        for name, fn in kwargs.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                known = sorted(n for n in vars(Callback) if n.startswith("on_"))
                raise ValueError(
                    f"LambdaCallback received an unknown hook `{name}`. "
                    f"Known hooks: {known}"
                )
            if fn is not None:
                setattr(self, name, fn)
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)
