"""`CallbackList`: calls a list of callbacks as one.

Batch hooks are the hot path. The plan of which callback wants which batch
hook, and in which form, is made once (at construction, `set_model`,
`set_params` and `append`), never per batch:

* a callback that does not override a batch hook is never called for it;
* a callback whose hook implementation comes from a class that sets
  `_supports_tensor_logs = True` in its own body (`ProgbarLogger`,
  `TensorBoard`) receives the logs as given (0-d tensors, read lazily);
* every other callback receives a dict of Python floats, converted once per
  batch and only when at least one such callback is called.

A built-in class may also define `_batch_hook_active(self, hook)` in its
own body to say that, with its current settings, its implementation of a
batch hook has nothing to do (e.g. `ModelCheckpoint(save_freq="epoch")`).
"""

from lamina.callbacks.callback import Callback
from lamina.callbacks.callback import _pythonify_logs
from lamina.callbacks.history import History
from lamina.callbacks.progbar_logger import ProgbarLogger

__all__ = ["CallbackList"]

_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)
_BATCH_END_HOOKS = tuple(h for h in _BATCH_HOOKS if h.endswith("_end"))
# Keras 2 aliases: `Callback.on_train_batch_*` forwards to `on_batch_*`.
_ALIASES = {
    "on_train_batch_begin": "on_batch_begin",
    "on_train_batch_end": "on_batch_end",
}
_INSTANCE = object()  # marker: the hook is an instance attribute


def _flatten(callbacks):
    out = []
    for cb in callbacks:
        if isinstance(cb, (list, tuple)):
            out.extend(_flatten(cb))
        elif cb is not None:
            out.append(cb)
    return out


def _owner(cb, name):
    """The class that defines `cb.<name>`, `_INSTANCE`, or None if absent."""
    if name in getattr(cb, "__dict__", {}):
        return _INSTANCE
    for klass in type(cb).__mro__:
        if name in vars(klass):
            return klass
    return None


def _batch_hook_plan(cb, hook):
    """(method name to call, wants_raw_logs) for `hook`, or None to skip."""
    names = (hook, _ALIASES[hook]) if hook in _ALIASES else (hook,)
    for name in names:
        owner = _owner(cb, name)
        if owner is None or owner is Callback:
            continue
        if owner is _INSTANCE:
            return name, False
        active = vars(owner).get("_batch_hook_active")
        if active is not None and not active(cb, hook):
            return None
        return name, bool(vars(owner).get("_supports_tensor_logs", False))
    return None


class CallbackList(Callback):
    """Container that calls a list of `Callback` instances as one.

    Args:
        callbacks: List of `Callback` instances (nested lists are flattened).
        add_history: Whether a `History` callback should be added, if one is
            not already in `callbacks`.
        add_progbar: Whether a `ProgbarLogger` callback should be added, if
            one is not already in `callbacks`.
        model: The `Model` these callbacks are used with.
        **params: If given, passed to each callback via `set_params`
            (`verbose`, `epochs`, `steps`).
    """

    def __init__(
        self,
        callbacks=None,
        add_history=False,
        add_progbar=False,
        model=None,
        **params,
    ):
        super().__init__()
        if isinstance(callbacks, Callback) and not isinstance(
            callbacks, CallbackList
        ):
            callbacks = [callbacks]
        self.callbacks = _flatten(callbacks) if callbacks else []
        for cb in self.callbacks:
            self._check(cb)
        self._history = None
        self._progbar = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self._plan = {}
        self.set_model(model)
        self.set_params(params)  # also makes the batch-hook plan

    @staticmethod
    def _check(cb):
        if not hasattr(cb, "on_epoch_end") or not hasattr(cb, "set_model"):
            raise TypeError(
                "Expected every element of `callbacks` to be a "
                "`keras.callbacks.Callback` instance. Received: "
                f"{cb!r} of type {type(cb).__name__}"
            )

    def _make_plan(self):
        plan = {}
        for hook in _BATCH_HOOKS:
            entries = []
            for cb in self.callbacks:
                step = _batch_hook_plan(cb, hook)
                if step is not None:
                    entries.append((getattr(cb, step[0]), step[1]))
            plan[hook] = tuple(entries)
        self._plan = plan

    @property
    def needs_batch_logs(self):
        """Whether any callback reads the logs of a batch-end hook."""
        return any(self._plan.get(h) for h in _BATCH_END_HOOKS)

    def wants_batch_hook(self, hook):
        """Whether calling `hook` (e.g. "on_train_batch_end") does anything."""
        return bool(self._plan.get(hook))

    def append(self, callback):
        self._check(callback)
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params:
            callback.set_params(self.params)
        self._make_plan()

    def __iter__(self):
        return iter(self.callbacks)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)
        if hasattr(self, "_plan"):
            self._make_plan()

    def set_model(self, model):
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)
        self._make_plan()

    # -- batch hooks (hot path) ------------------------------------------
    def _call_batch_hook(self, hook, batch, logs):
        entries = self._plan[hook]
        if not entries:
            return
        converted = None
        for method, raw in entries:
            if raw:
                method(batch, logs=logs)
            else:
                if converted is None:
                    converted = _pythonify_logs(logs)
                method(batch, logs=converted)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch_hook("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch_hook("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch_hook("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch_hook("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch_hook("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch_hook("on_predict_batch_end", batch, logs)

    # Keras 2 names for the training batch hooks.
    on_batch_begin = on_train_batch_begin
    on_batch_end = on_train_batch_end

    # -- epoch / run hooks (logs are floats; one dict shared by all) ------
    def _call_hook(self, hook, *args):
        *head, logs = args
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(*head, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call_hook("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call_hook("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs=None):
        self._call_hook("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call_hook("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._call_hook("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call_hook("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call_hook("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call_hook("on_predict_end", logs)
