"""`TerminateOnNaN`: stops training when the loss becomes NaN or infinite."""

import math

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _print_msg

__all__ = ["TerminateOnNaN"]


class TerminateOnNaN(Callback):
    """Callback that terminates training when a NaN or Inf loss is seen.

    It reads the loss of every training batch (one device sync per batch).

    Args:
        raise_error: If False (default), stops gracefully by setting
            `model.stop_training = True`. If True, raises a `RuntimeError`
            at once, skipping the other callbacks' cleanup.
    """

    def __init__(self, raise_error=False):
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        try:
            bad = math.isnan(loss) or math.isinf(loss)
        except TypeError:
            return
        if not bad:
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. "
                f"Loss value: {loss}. Terminating training immediately."
            )
        _print_msg(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
