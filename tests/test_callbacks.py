"""Tests for lamina.callbacks and lamina.utils.progbar.

The callbacks are driven the way the trainer drives them, on a small
duck-typed model; where Keras 3 can run the same scenario, its callbacks are
driven identically and the results compared.
"""

import csv
import http.server
import json
import os
import re
import socket
import threading
import urllib.parse

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")

from lamina import callbacks as lcb  # noqa: E402
from lamina.callbacks import callback_list as callback_list_module  # noqa: E402
from lamina.callbacks.callback import Callback  # noqa: E402
from lamina.utils import progbar as progbar_module  # noqa: E402
from lamina.utils.progbar import Progbar  # noqa: E402


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


# --------------------------------------------------------------------------
# A small fake model: what the callbacks use of a lamina Model.
# --------------------------------------------------------------------------
class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self._lr = float(learning_rate)
        self.iterations = 0
        self.state = {"step": torch.tensor(0.0), "m": torch.zeros(3)}

    @property
    def learning_rate(self):
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value):
        self._lr = float(value)

    def state_dict(self):
        return {k: v.clone() for k, v in self.state.items()}

    def load_state_dict(self, state):
        self.state = {k: v.clone() for k, v in state.items()}


class FakeModel:
    def __init__(self, lr=0.1):
        self.stop_training = False
        self.optimizer = FakeOptimizer(lr)
        self.weights = [np.zeros((2, 2), "float32"), np.zeros(2, "float32")]
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, filepath, **kwargs):
        self._write(filepath)

    def save_weights(self, filepath, **kwargs):
        self._write(filepath)

    def _write(self, filepath):
        self.saved.append(os.path.basename(filepath))
        with open(filepath, "wb") as f:
            np.save(f, np.stack([self.weights[0].ravel()[:2], self.weights[1]]))

    def load_weights(self, filepath):
        with open(filepath, "rb") as f:
            data = np.load(f)
        self.weights[0] = np.tile(data[0], 2).reshape(2, 2)
        self.weights[1] = data[1].copy()


def fit_loop(cbs, model, epoch_logs, steps=2, batch_logs=None, start=0):
    """Drives callbacks like `fit`: returns the epochs actually run."""
    cbs.on_train_begin()
    ran = []
    for epoch in range(start, len(epoch_logs)):
        cbs.on_epoch_begin(epoch)
        for b in range(steps):
            cbs.on_train_batch_begin(b)
            cbs.on_train_batch_end(b, batch_logs(epoch, b) if batch_logs else {})
        model.weights[1] = np.full(2, float(epoch), "float32")
        cbs.on_epoch_end(epoch, dict(epoch_logs[epoch]))
        ran.append(epoch)
        if model.stop_training:
            break
    cbs.on_train_end(dict(epoch_logs[ran[-1]]) if ran else None)
    return ran


def drive_keras(keras_cb, model, epoch_logs, steps=2):
    """Same as `fit_loop` for a single real Keras callback."""
    keras_cb.set_model(model)
    keras_cb.set_params({"verbose": 0, "epochs": len(epoch_logs), "steps": steps})
    keras_cb.on_train_begin()
    ran = []
    for epoch, logs in enumerate(epoch_logs):
        keras_cb.on_epoch_begin(epoch)
        model.weights[1] = np.full(2, float(epoch), "float32")
        logs = dict(logs)
        keras_cb.on_epoch_end(epoch, logs)
        ran.append(epoch)
        if model.stop_training:
            break
    keras_cb.on_train_end()
    return ran


# --------------------------------------------------------------------------
# History and CallbackList
# --------------------------------------------------------------------------
def test_history_records_epoch_logs_sorted_like_keras():
    model = FakeModel()
    cbs = lcb.CallbackList(add_history=True, model=model, verbose=0, epochs=3, steps=2)
    logs = [
        {"loss": 1.0 - 0.1 * e, "accuracy": 0.5 + 0.1 * e, "val_loss": 2.0 - e}
        for e in range(3)
    ]
    fit_loop(cbs, model, logs)
    history = model.history
    assert isinstance(history, lcb.History)
    assert history.epoch == [0, 1, 2]
    assert history.params == {"verbose": 0, "epochs": 3, "steps": 2}
    assert list(history.history) == ["accuracy", "loss", "val_loss"]
    np.testing.assert_allclose(history.history["loss"], [1.0, 0.9, 0.8])
    np.testing.assert_allclose(history.history["accuracy"], [0.5, 0.6, 0.7])
    np.testing.assert_allclose(history.history["val_loss"], [2.0, 1.0, 0.0])
    assert history.model is model


def test_callback_list_adds_defaults_once():
    own = lcb.History()
    cbs = lcb.CallbackList([own], add_history=True, add_progbar=True, verbose=0,
                           epochs=1, steps=1)
    assert sum(isinstance(c, lcb.History) for c in cbs.callbacks) == 1
    assert sum(isinstance(c, lcb.ProgbarLogger) for c in cbs.callbacks) == 1
    assert cbs.callbacks[0] is own
    with pytest.raises(TypeError, match="Callback"):
        lcb.CallbackList([object()])


BATCH_HOOKS = [
    "on_batch_begin", "on_batch_end",
    "on_train_batch_begin", "on_train_batch_end",
    "on_test_batch_begin", "on_test_batch_end",
    "on_predict_batch_begin", "on_predict_batch_end",
]


def drive_batches(cbs, logs):
    for b in range(3):
        cbs.on_train_batch_begin(b)
        cbs.on_train_batch_end(b, logs)
        cbs.on_test_batch_begin(b)
        cbs.on_test_batch_end(b, logs)
        cbs.on_predict_batch_begin(b)
        cbs.on_predict_batch_end(b, logs)


def test_batch_hooks_skipped_for_callbacks_that_do_not_override(monkeypatch, tmp_path):
    calls = []
    for name in BATCH_HOOKS:
        monkeypatch.setattr(
            Callback, name, lambda self, batch, logs=None, _n=name: calls.append(_n)
        )

    class EpochOnly(Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(epoch)

    epoch_only = EpochOnly()
    model = FakeModel()
    cbs = lcb.CallbackList(
        [epoch_only, lcb.EarlyStopping(monitor="loss"),
         lcb.ModelCheckpoint(str(tmp_path / "m.keras"))],
        add_history=True, add_progbar=True, model=model, verbose=2, epochs=1, steps=3,
    )
    assert not cbs.needs_batch_logs
    for hook in BATCH_HOOKS[2:]:
        assert not cbs.wants_batch_hook(hook)
    drive_batches(cbs, {"loss": torch.tensor(0.5)})
    cbs.on_epoch_end(0, {"loss": 0.5})
    assert calls == []
    assert epoch_only.epochs == [0]


def test_batch_logs_converted_once_to_sorted_floats(monkeypatch):
    seen = []

    class Recorder(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs)

    class Keras2Style(Callback):  # overrides only the Keras 2 alias
        def on_batch_end(self, batch, logs=None):
            seen.append(logs)

    lam = lcb.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs))
    conversions = []
    original = callback_list_module._pythonify_logs
    monkeypatch.setattr(
        callback_list_module, "_pythonify_logs",
        lambda logs: conversions.append(1) or original(logs),
    )
    cbs = lcb.CallbackList([Recorder(), Keras2Style(), lam], verbose=0, epochs=1, steps=1)
    assert cbs.needs_batch_logs
    assert cbs.wants_batch_hook("on_train_batch_end")
    assert not cbs.wants_batch_hook("on_test_batch_end")
    logs = {"loss": torch.tensor(0.25), "accuracy": torch.tensor(0.75, dtype=torch.float64),
            "count": torch.tensor(3)}
    cbs.on_train_batch_end(0, logs)
    assert len(seen) == 3 and len(conversions) == 1
    assert seen[0] is seen[1] is seen[2]
    assert list(seen[0]) == ["accuracy", "count", "loss"]
    assert seen[0] == {"accuracy": 0.75, "count": 3.0, "loss": 0.25}
    assert all(type(v) is float for v in seen[0].values())


def test_tensor_logs_passed_raw_only_to_opted_in_classes(monkeypatch):
    received = {}

    class Lazy(Callback):
        _supports_tensor_logs = True

        def on_train_batch_end(self, batch, logs=None):
            received["lazy"] = logs

    class UserSubclass(Lazy):  # overrides the hook: gets floats again
        def on_train_batch_end(self, batch, logs=None):
            received["user"] = logs

    conversions = []
    original = callback_list_module._pythonify_logs
    monkeypatch.setattr(
        callback_list_module, "_pythonify_logs",
        lambda logs: conversions.append(1) or original(logs),
    )
    logs = {"loss": torch.tensor(0.5)}
    lcb.CallbackList([Lazy()]).on_train_batch_end(0, logs)
    assert received["lazy"] is logs and conversions == []
    lcb.CallbackList([Lazy(), UserSubclass()]).on_train_batch_end(0, logs)
    assert received["lazy"] is logs
    assert received["user"] == {"loss": 0.5} and len(conversions) == 1


def test_progbar_logger_wants_batch_logs_only_when_verbose_1():
    for verbose, wanted in ((1, True), (2, False), (0, False), ("auto", True)):
        cbs = lcb.CallbackList(add_progbar=True, verbose=verbose, epochs=1, steps=2)
        assert cbs.needs_batch_logs is wanted, verbose


def test_model_checkpoint_batch_hook_only_with_integer_save_freq(tmp_path):
    per_epoch = lcb.CallbackList([lcb.ModelCheckpoint(str(tmp_path / "a.keras"))])
    per_batch = lcb.CallbackList(
        [lcb.ModelCheckpoint(str(tmp_path / "a.keras"), save_freq=2)]
    )
    assert not per_epoch.wants_batch_hook("on_train_batch_end")
    assert per_batch.wants_batch_hook("on_train_batch_end")


def test_integer_save_freq_reads_the_logs_only_when_saving(tmp_path, monkeypatch):
    """BackupAndRestore never reads batch logs; ModelCheckpoint only at the batches it saves."""
    import lamina
    from lamina.callbacks import callback as callback_module

    reads = []
    original = callback_module._to_python
    monkeypatch.setattr(callback_module, "_to_python",
                        lambda v: reads.append(1) or original(v))
    model = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.RandomState(0).rand(16, 3).astype("float32")

    def reads_in_a_fit(*callbacks):  # 8 steps
        reads.clear()
        model.fit(x, x[:, :1], batch_size=2, epochs=1, verbose=0, callbacks=list(callbacks))
        return len(reads)

    at_epoch_end = reads_in_a_fit()
    assert reads_in_a_fit(lcb.BackupAndRestore(str(tmp_path / "backup"), save_freq=2)) \
        == at_epoch_end
    checkpoint = lcb.ModelCheckpoint(str(tmp_path / "m-{batch}-{loss:.4f}.weights.h5"),
                                     save_weights_only=True, save_freq=4)
    assert reads_in_a_fit(checkpoint) == at_epoch_end + 2
    assert sorted(p.name[:4] for p in tmp_path.glob("m-*")) == ["m-4-", "m-8-"]  # 1-based


# --------------------------------------------------------------------------
# Progress bar
# --------------------------------------------------------------------------
TIME = r"\d+s \d+(?:us|ms|s)/step"


def run_progbar_fit(verbose, steps=3, epochs=2):
    model = FakeModel()
    cbs = lcb.CallbackList(add_progbar=True, model=model, verbose=verbose,
                           epochs=epochs, steps=steps)
    cbs.on_train_begin()
    for epoch in range(epochs):
        cbs.on_epoch_begin(epoch)
        for b in range(steps):
            cbs.on_train_batch_end(
                b, {"loss": torch.tensor(0.5 - 0.1 * b), "accuracy": torch.tensor(0.25)}
            )
        # validation inside fit is silent
        cbs.on_test_begin()
        cbs.on_test_batch_end(0, {"loss": torch.tensor(9.0)})
        cbs.on_test_end({"loss": 9.0})
        cbs.on_epoch_end(epoch, {"loss": 0.3 + epoch, "accuracy": 0.25,
                                 "val_loss": 0.00005, "val_accuracy": 0.5})
    cbs.on_train_end()


def test_progbar_verbose_1_non_tty_prints_final_lines_only(capsys):
    run_progbar_fit(verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    bar = "\u2501" * 20
    assert re.fullmatch(
        rf"3/3 {bar} {TIME} - accuracy: 0\.2500 - loss: 0\.3000 - "
        r"val_accuracy: 0\.5000 - val_loss: 5\.0000e-05", lines[1]
    ), lines[1]
    assert re.fullmatch(rf"3/3 {bar} {TIME} - accuracy: 0\.2500 - loss: 1\.3000 .*",
                        lines[3]), lines[3]


def test_progbar_keys_added_by_callbacks_come_last(capsys):
    class AddsLR(Callback):  # like ReduceLROnPlateau, before the progbar
        def on_epoch_end(self, epoch, logs=None):
            logs["learning_rate"] = 0.125

    cbs = lcb.CallbackList([AddsLR()], add_progbar=True, verbose=2, epochs=1, steps=1)
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    cbs.on_epoch_end(0, {"val_loss": 0.5, "loss": 0.25})
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.endswith("- loss: 0.2500 - val_loss: 0.5000 - learning_rate: 0.1250"), line


def test_progbar_verbose_2_matches_keras_line(capsys, keras):
    run_progbar_fit(verbose=2)
    ours = capsys.readouterr().out.splitlines()
    # Real Keras: the same values through its ProgbarLogger.
    kcb = keras.callbacks.ProgbarLogger()
    kcb.set_params({"verbose": 2, "epochs": 2, "steps": 3})
    kcb.on_train_begin()
    for epoch in range(2):
        kcb.on_epoch_begin(epoch)
        for b in range(3):
            kcb.on_train_batch_end(b, {"loss": 0.5 - 0.1 * b, "accuracy": 0.25})
        kcb.on_epoch_end(epoch, {"accuracy": 0.25, "loss": 0.3 + epoch,
                                 "val_accuracy": 0.5, "val_loss": 0.00005})
    theirs = capsys.readouterr().out.splitlines()
    mask = lambda s: re.sub(r"\d+s - \d+(us|ms|s)/step", "T", s)  # noqa: E731
    assert [mask(s) for s in ours] == [mask(s) for s in theirs]
    assert mask(ours[1]) == (
        "3/3 - T - accuracy: 0.2500 - loss: 0.3000 - val_accuracy: 0.5000 "
        "- val_loss: 5.0000e-05"
    )


def test_progbar_tty_redraws_by_interval_and_reads_tensors_only_then(monkeypatch, capsys):
    reads = []
    original = progbar_module._to_python
    monkeypatch.setattr(progbar_module, "_to_python",
                        lambda v: reads.append(1) or original(v))
    bar = Progbar(target=5, interval=3600, stateless_metrics=())
    bar._dynamic_display = True
    for step in range(1, 5):
        bar.update(step, [("loss", torch.tensor(float(step)))])
    bar.update(5, [("loss", torch.tensor(0.125))])
    out = capsys.readouterr().out
    assert len(reads) == 2  # first draw and final draw only
    frames = out.split("\r")[1:]
    assert len(frames) == 2
    plain = [re.sub(r"\x1b\[\d+m", "", f) for f in frames]
    assert re.fullmatch(r"1/5 \u2501{4}\u2501{16} \d+s \d+(us|ms|s)/step - loss: 1\.0000",
                        plain[0].rstrip()), plain[0]
    # the last frame ends the line; spaces blank what is left of a longer earlier frame
    assert plain[1].endswith("\n") and plain[1].rstrip(" \n").endswith("loss: 0.1250")
    assert "\x1b[32m" in frames[1]  # coloured like Keras


def test_progbar_averages_stateless_and_unknown_target(capsys):
    bar = Progbar(target=None, verbose=1)
    bar.update(1, [("loss", 1.0)])
    bar.update(2, [("loss", 2.0)])
    bar.update(4, [("loss", 4.0)])  # weighted by 2 steps
    bar.update(4, finalize=True)
    out = capsys.readouterr().out
    # (1 + 2 + 4 * 2) / 4 = 2.75
    assert re.fullmatch(r"      4/Unknown \d+s \d+(us|ms|s)/step - loss: 2\.7500\n", out), out
    with pytest.raises(ValueError, match="stateful_metrics"):
        Progbar(3, stateful_metrics=["a"], stateless_metrics=["b"])


def test_progbar_logger_evaluate_and_predict(capsys):
    cbs = lcb.CallbackList(add_progbar=True, verbose=1, epochs=1, steps=2)
    cbs.on_test_begin()
    cbs.on_test_batch_end(0, {"loss": torch.tensor(1.0)})
    cbs.on_test_batch_end(1, {"loss": torch.tensor(0.5)})
    cbs.on_test_end({"loss": 0.5, "mae": 0.25})
    cbs.on_predict_begin()
    cbs.on_predict_batch_end(0, {"outputs": torch.ones(2, 2)})
    cbs.on_predict_batch_end(1, {"outputs": torch.ones(2, 2)})
    cbs.on_predict_end()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"2/2 \u2501{{20}} {TIME} - loss: 0\.5000 - mae: 0\.2500", lines[0])
    assert re.fullmatch(rf"2/2 \u2501{{20}} {TIME}", lines[1])


# --------------------------------------------------------------------------
# Monitoring callbacks, compared with Keras on scripted sequences
# --------------------------------------------------------------------------
VAL_LOSS = [1.0, 0.8, 0.82, 0.79, 0.9, 0.95, 0.97, 0.5]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(patience=2, restore_best_weights=True),
        dict(patience=1, min_delta=0.05),
        dict(patience=3, baseline=0.7, restore_best_weights=True),
        dict(patience=0, start_from_epoch=2),
    ],
)
def test_early_stopping_matches_keras(kwargs, keras):
    logs = [{"val_loss": v, "loss": 1.0} for v in VAL_LOSS]
    model = FakeModel()
    es = lcb.EarlyStopping(**kwargs)
    ran = fit_loop(lcb.CallbackList([es], model=model), model, logs)
    kmodel = FakeModel()
    kes = keras.callbacks.EarlyStopping(**kwargs)
    kran = drive_keras(kes, kmodel, logs)
    assert ran == kran
    assert es.stopped_epoch == kes.stopped_epoch
    assert es.best_epoch == kes.best_epoch
    np.testing.assert_array_equal(model.weights[1], kmodel.weights[1])


def test_early_stopping_hand_computed():
    logs = [{"val_loss": v} for v in VAL_LOSS]
    model = FakeModel()
    es = lcb.EarlyStopping(patience=2, restore_best_weights=True)
    ran = fit_loop(lcb.CallbackList([es], model=model), model, logs)
    # best 0.79 at epoch 3; epochs 4 and 5 don't improve -> stop at 5
    assert ran == [0, 1, 2, 3, 4, 5] and es.stopped_epoch == 5
    np.testing.assert_array_equal(model.weights[1], [3.0, 3.0])
    acc = [{"val_accuracy": v} for v in (0.5, 0.6, 0.55, 0.58)]
    model = FakeModel()
    es = lcb.EarlyStopping(monitor="val_accuracy", patience=1)
    assert fit_loop(lcb.CallbackList([es], model=model), model, acc) == [0, 1, 2]


def run_lr_callback(cb, logs):
    model = FakeModel(lr=1.0)
    cbs = lcb.CallbackList([cb], add_history=True, model=model)
    lrs = []
    cbs.on_train_begin()
    for epoch, entry in enumerate(logs):
        cbs.on_epoch_begin(epoch)
        cbs.on_epoch_end(epoch, dict(entry))
        lrs.append(model.optimizer.learning_rate)
    return lrs, model.history.history.get("learning_rate")


def test_reduce_lr_on_plateau_matches_keras(keras):
    vals = [1.0, 1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 0.5, 0.6]
    logs = [{"val_loss": v} for v in vals]
    kwargs = dict(factor=0.5, patience=1, cooldown=2, min_lr=0.1)
    lrs, logged = run_lr_callback(lcb.ReduceLROnPlateau(**kwargs), logs)
    # e1: no improvement -> 0.5 (cooldown 2); e2: improves; e3: cooldown over
    # -> 0.25; e4: cooldown; e5 -> 0.125; e6: cooldown; e7 -> max(0.0625, 0.1);
    # e8 improves; e9: already at min_lr, stays.
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1]
    # the logged rate is the one the epoch trained with
    assert logged == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1]
    kmodel = FakeModel(lr=1.0)
    kcb = keras.callbacks.ReduceLROnPlateau(**kwargs)
    kcb.set_model(kmodel)
    kcb.on_train_begin()
    klrs = []
    for epoch, entry in enumerate(logs):
        kcb.on_epoch_end(epoch, dict(entry))
        klrs.append(kmodel.optimizer.learning_rate)
    np.testing.assert_allclose(lrs, klrs)
    with pytest.raises(ValueError, match="factor"):
        lcb.ReduceLROnPlateau(factor=1.5)


def test_learning_rate_scheduler_both_signatures(capsys):
    lrs, logged = run_lr_callback(
        lcb.LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5),
        [{"loss": 1.0}] * 5,
    )
    assert lrs == [1.0, 1.0, 0.5, 0.25, 0.125]
    assert logged == lrs
    lrs, _ = run_lr_callback(
        lcb.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1), verbose=1),
        [{"loss": 1.0}] * 3,
    )
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.1 / 3])
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in (
        capsys.readouterr().out
    )
    bad = lcb.LearningRateScheduler(lambda epoch: "fast")
    with pytest.raises(ValueError, match="should be a float"):
        run_lr_callback(bad, [{"loss": 1.0}])


# --------------------------------------------------------------------------
# Files: CSV, checkpoints, backups
# --------------------------------------------------------------------------
def test_csv_logger_matches_keras_bytes(tmp_path, keras):
    logs = [
        {"loss": 0.5, "accuracy": 0.25, "sizes": np.array([1, 2])},
        {"loss": 0.125, "accuracy": 0.75, "sizes": np.array([3, 4])},
    ]

    def run(cls, path, append, epochs):
        cb = cls(str(path), separator=";", append=append)
        model = FakeModel()
        cb.set_model(model)
        cb.on_train_begin()
        for e in epochs:
            cb.on_epoch_end(e, dict(logs[e % 2]))
            if cls is lcb.CSVLogger:  # flushed every epoch
                with open(path) as f:
                    assert len(f.read().splitlines()) >= 1
        cb.on_train_end()

    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    for cls, path in ((lcb.CSVLogger, ours), (keras.callbacks.CSVLogger, theirs)):
        run(cls, path, False, [0, 1])
        run(cls, path, True, [2])  # append: no second header
    assert ours.read_bytes() == theirs.read_bytes()
    with open(ours, newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0] == ["epoch", "accuracy", "loss", "sizes",
                       "val_accuracy", "val_loss", "val_sizes"]
    assert rows[1] == ["0", "0.25", "0.5", '"[1, 2]"', "NA", "NA", "NA"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]


def test_model_checkpoint_filenames_and_best_only(tmp_path, keras):
    logs = [{"val_loss": v, "loss": 1.0} for v in (0.5, 0.6, 0.4, 0.45, 0.3)]
    template = str(tmp_path / "ours" / "{epoch:02d}-{val_loss:.2f}.keras")
    model = FakeModel()
    fit_loop(lcb.CallbackList([lcb.ModelCheckpoint(template, save_best_only=True)],
                              model=model), model, logs)
    assert model.saved == ["01-0.50.keras", "03-0.40.keras", "05-0.30.keras"]
    assert sorted(os.listdir(tmp_path / "ours")) == model.saved
    kmodel = FakeModel()
    ktemplate = str(tmp_path / "theirs" / "{epoch:02d}-{val_loss:.2f}.keras")
    drive_keras(keras.callbacks.ModelCheckpoint(ktemplate, save_best_only=True),
                kmodel, logs)
    assert kmodel.saved == model.saved

    model = FakeModel()
    every = lcb.ModelCheckpoint(str(tmp_path / "w-{epoch}.weights.h5"),
                                save_weights_only=True, initial_value_threshold=0.1)
    fit_loop(lcb.CallbackList([every], model=model), model, logs)
    assert model.saved == [f"w-{e}.weights.h5" for e in range(1, 6)]

    model = FakeModel()
    per_batch = lcb.ModelCheckpoint(str(tmp_path / "b-{epoch}-{batch}.keras"), save_freq=3)
    fit_loop(lcb.CallbackList([per_batch], model=model), model, logs[:2], steps=2,
             batch_logs=lambda e, b: {"loss": torch.tensor(1.0)})
    # batches seen: 1,2 | 3 (epoch 1, batch 1) -> save; 4
    assert model.saved == ["b-2-1.keras"]

    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        lcb.ModelCheckpoint("x.keras", save_weights_only=True)
    with pytest.raises(ValueError, match=r"\.keras"):
        lcb.ModelCheckpoint("x.pt")
    with pytest.raises(ValueError, match="save_freq"):
        lcb.ModelCheckpoint("x.keras", save_freq="batch")


def test_backup_and_restore_resumes_a_fresh_model_without_warnings(tmp_path):
    """The optimizer is built after `on_train_begin`; its state comes from the state file, so
    the weights file's optimizer variables are not reported as skipped."""
    import warnings

    import lamina

    x = np.random.RandomState(0).rand(16, 3).astype("float32")

    def model_and_backup():
        model = lamina.Sequential([lamina.Input((3,)), lamina.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        return model, lcb.BackupAndRestore(str(tmp_path), delete_checkpoint=False)

    first, backup = model_and_backup()
    first.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[backup])
    resumed, backup = model_and_backup()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.fit(x, x[:, :1], batch_size=4, epochs=3, verbose=0, callbacks=[backup])
    assert int(resumed.optimizer.iterations) == 12  # 8 restored, 4 more


def test_backup_and_restore_resumes_epoch_weights_and_optimizer(tmp_path):
    backup = tmp_path / "backup"
    logs = [{"loss": 1.0 / (e + 1)} for e in range(5)]

    class Interrupt(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise RuntimeError("Interrupting!")

    model = FakeModel()
    model.optimizer.state["m"] = torch.tensor([1.0, 2.0, 3.0])
    cb = lcb.BackupAndRestore(str(backup))
    with pytest.raises(RuntimeError, match="Interrupting"):
        fit_loop(lcb.CallbackList([cb, Interrupt()], model=model), model, logs)
    # three epochs done, written atomically: no temporary files are left
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "training_state.pt"]

    fresh = FakeModel()
    cb2 = lcb.BackupAndRestore(str(backup))
    cbs = lcb.CallbackList([cb2], model=fresh)
    cbs.on_train_begin()
    assert fresh._initial_epoch == 3
    np.testing.assert_array_equal(fresh.weights[1], [2.0, 2.0])  # end of epoch 2
    torch.testing.assert_close(fresh.optimizer.state["m"], torch.tensor([1.0, 2.0, 3.0]))
    ran = fit_loop(cbs, fresh, logs, start=fresh._initial_epoch)
    assert ran == [3, 4]
    assert not backup.exists()  # deleted once training completes

    keep = lcb.BackupAndRestore(str(backup), save_freq=2, delete_checkpoint=False)
    model = FakeModel()
    fit_loop(lcb.CallbackList([keep], model=model), model, logs[:2], steps=3)
    # saves every 2 batches: (epoch 0, batch 1), (1, 0), (1, 2); the epoch
    # recorded is the one to resume, i.e. the one in progress
    state = torch.load(backup / "training_state.pt", weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 2)
    assert set(state["optimizer"]) == {"step", "m"}
    with pytest.raises(ValueError, match="save_freq"):
        lcb.BackupAndRestore(str(backup), save_freq="often")


# --------------------------------------------------------------------------
# RemoteMonitor against a local server
# --------------------------------------------------------------------------
def serve_once(n_requests):
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append((self.path, dict(self.headers), self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.timeout = 5

    def run():
        for _ in range(n_requests):
            server.handle_request()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread, received


def test_remote_monitor_posts_epoch_logs():
    server, thread, received = serve_once(2)
    root = f"http://127.0.0.1:{server.server_address[1]}"
    logs = {"loss": 0.5, "val_loss": 0.25, "accuracy": 0.75}
    try:
        form = lcb.RemoteMonitor(root=root, headers={"X-Run": "7"})
        form.on_epoch_end(3, dict(logs))
        as_json = lcb.RemoteMonitor(root=root, path="/json/", send_as_json=True)
        as_json.on_epoch_end(4, dict(logs))
        thread.join(10)
    finally:
        server.server_close()
    assert len(received) == 2
    path, headers, body = received[0]
    assert path == "/publish/epoch/end/" and headers["X-Run"] == "7"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    fields = urllib.parse.parse_qs(body.decode())
    assert list(fields) == ["data"]
    assert json.loads(fields["data"][0]) == {"epoch": 3, **logs}
    path, headers, body = received[1]
    assert path == "/json/" and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"epoch": 4, **logs}


def test_remote_monitor_unreachable_warns():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cb = lcb.RemoteMonitor(root=f"http://127.0.0.1:{port}", timeout=2)
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        cb.on_epoch_end(0, {"loss": 1.0})


# --------------------------------------------------------------------------
# Small ones
# --------------------------------------------------------------------------
def test_terminate_on_nan(capsys):
    model = FakeModel()
    cbs = lcb.CallbackList([lcb.TerminateOnNaN()], model=model)
    cbs.on_train_batch_end(0, {"loss": torch.tensor(0.5)})
    assert model.stop_training is False
    cbs.on_train_batch_end(1, {"loss": torch.tensor(float("nan"))})
    assert model.stop_training is True
    assert "Batch 1: Invalid loss, terminating training" in capsys.readouterr().out
    model = FakeModel()
    cbs = lcb.CallbackList([lcb.TerminateOnNaN(raise_error=True)], model=model)
    with pytest.raises(RuntimeError, match="batch 4"):
        cbs.on_train_batch_end(4, {"loss": torch.tensor(float("inf"))})


def test_lambda_callback():
    events = []
    cb = lcb.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: events.append(("eb", epoch)),
        on_epoch_end=lambda epoch, logs: events.append(("ee", epoch, logs["loss"])),
        on_train_begin=lambda logs: events.append(("tb",)),
        on_train_end=lambda logs: events.append(("te",)),
        on_train_batch_end=lambda batch, logs: events.append(("be", batch, logs["loss"])),
        on_test_end=lambda logs: events.append(("test_end",)),
    )
    model = FakeModel()
    cbs = lcb.CallbackList([cb], model=model)
    fit_loop(cbs, model, [{"loss": 0.5}], steps=2,
             batch_logs=lambda e, b: {"loss": torch.tensor(float(b))})
    cbs.on_test_begin()
    cbs.on_test_end({"loss": 1.0})
    assert events == [("tb",), ("eb", 0), ("be", 0, 0.0), ("be", 1, 1.0),
                      ("ee", 0, 0.5), ("te",), ("test_end",)]
    with pytest.raises(ValueError, match="on_epoch_end"):
        lcb.LambdaCallback(on_epoch_finish=print)


def test_base_logger_averages_batches():
    model = FakeModel()
    weighted = lcb.BaseLogger(stateful_metrics=["acc"])
    plain = lcb.BaseLogger()
    hist = lcb.History()
    cbs2 = lcb.CallbackList([plain, hist], model=model)
    cbs2.on_train_begin()
    cbs2.on_epoch_begin(0)
    for loss in (1.0, 2.0, 6.0):
        cbs2.on_train_batch_end(0, {"loss": torch.tensor(loss)})
    cbs2.on_epoch_end(0, {"loss": 99.0})
    assert hist.history["loss"] == [3.0]
    # The CallbackList hands one dict to all callbacks: check via History.
    hist = lcb.History()
    cbs = lcb.CallbackList([weighted, hist], model=model)
    cbs.on_train_begin()
    cbs.on_epoch_begin(0)
    for loss, size, acc in ((1.0, 10, 0.1), (2.0, 10, 0.2), (4.0, 5, 0.3)):
        cbs.on_train_batch_end(0, {"loss": torch.tensor(loss), "size": size,
                                   "acc": torch.tensor(acc)})
    cbs.on_epoch_end(0, {"loss": 99.0, "val_loss": 3.0})
    np.testing.assert_allclose(hist.history["loss"], [(10 + 20 + 20) / 25])
    np.testing.assert_allclose(hist.history["acc"], [0.3])
    assert hist.history["val_loss"] == [3.0]


def test_chief_only_side_effects(tmp_path, monkeypatch, capsys):
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    model = FakeModel()
    cbs = lcb.CallbackList(
        [lcb.CSVLogger(str(tmp_path / "log.csv")),
         lcb.ModelCheckpoint(str(tmp_path / "m.keras"))],
        add_history=True, add_progbar=True, model=model, verbose=1, epochs=2, steps=1,
    )
    fit_loop(cbs, model, [{"loss": 1.0}, {"loss": 0.5}], steps=1)
    assert os.listdir(tmp_path) == [] and model.saved == []
    assert capsys.readouterr().out == ""
    assert model.history.history["loss"] == [1.0, 0.5]  # History runs everywhere


# --------------------------------------------------------------------------
# TensorBoard
# --------------------------------------------------------------------------
class FakeWeight:
    def __init__(self, path):
        self.path = path


class FakeLayer:
    def __init__(self, name, values):
        self.name = name
        self._values = values
        self.weights = [FakeWeight(f"{name}/kernel"), FakeWeight(f"{name}/bias")]

    def get_weights(self):
        return self._values


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("sink", ["torch", "tensorboard"])
def test_tensorboard_event_files(tmp_path, monkeypatch, sink):
    pytest.importorskip("tensorboard")
    from lamina.callbacks import tensorboard as tb_module

    if sink == "tensorboard":
        def no_torch(logdir):
            raise ImportError("no torch.utils.tensorboard")
        monkeypatch.setattr(tb_module, "_TorchSink", no_torch)
    model = FakeModel(lr=0.5)
    kernel = np.arange(6, dtype="float32").reshape(3, 2)
    model.layers = [FakeLayer("dense", [kernel, np.zeros(2, "float32")])]
    tb = lcb.TensorBoard(log_dir=str(tmp_path), histogram_freq=1, update_freq=2,
                         write_images=True)
    cbs = lcb.CallbackList([tb], model=model, verbose=0, epochs=2, steps=3)
    logs = [{"loss": 0.75, "val_loss": 0.5}, {"loss": 0.25, "val_loss": 0.125}]
    fit_loop(cbs, model, logs, steps=3,
             batch_logs=lambda e, b: {"loss": torch.tensor(float(10 * e + b))})
    train = read_events(tmp_path / "train")
    val = read_events(tmp_path / "validation")
    assert [(s.step, s.value) for s in train.Scalars("epoch_loss")] == [(0, 0.75), (1, 0.25)]
    assert [(s.step, s.value) for s in val.Scalars("epoch_loss")] == [(0, 0.5), (1, 0.125)]
    assert [s.value for s in train.Scalars("epoch_learning_rate")] == [0.5, 0.5]
    # batch 2, 4, 6 (global, 1-based) -> batch logs (epoch 0 b1), (1 b0), (1 b2)
    assert [(s.step, s.value) for s in train.Scalars("batch_loss")] == [
        (2, 1.0), (4, 10.0), (6, 12.0)
    ]
    tags = train.Tags()
    assert "dense/kernel/histogram" in tags["histograms"]
    hist = train.Histograms("dense/kernel/histogram")
    assert [h.step for h in hist] == [0, 1]
    assert hist[0].histogram_value.num == 6 and hist[0].histogram_value.max == 5.0
    assert hist[0].histogram_value.sum == 15.0
    assert "dense/kernel/image" in tags["images"]
    assert "val_loss" not in " ".join(val.Tags()["scalars"])


def test_tensorboard_argument_checks():
    pytest.importorskip("tensorboard")
    with pytest.raises(ValueError, match="profile_batch"):
        lcb.TensorBoard(profile_batch=(5, 2))
    with pytest.raises(ValueError, match="update_freq"):
        lcb.TensorBoard(update_freq="sometimes")
    tb = lcb.TensorBoard(profile_batch="2,4")
    assert (tb._start_batch, tb._stop_batch) == (2, 4)
    assert lcb.CallbackList([lcb.TensorBoard()]).needs_batch_logs is False


def test_tensorboard_missing_package_message(monkeypatch):
    from lamina.callbacks import tensorboard as tb_module

    monkeypatch.setattr(tb_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        lcb.TensorBoard()


def test_tensorboard_profiles_requested_batches(tmp_path):
    pytest.importorskip("tensorboard")
    model = FakeModel()
    cbs = lcb.CallbackList([lcb.TensorBoard(str(tmp_path), profile_batch=(2, 3))],
                           model=model, verbose=0, epochs=1, steps=4)
    assert cbs.wants_batch_hook("on_train_batch_begin")
    fit_loop(cbs, model, [{"loss": 1.0}], steps=4,
             batch_logs=lambda e, b: {"loss": torch.tensor(1.0)})
    traces = [f for f in os.listdir(tmp_path / "train") if f.endswith(".pt.trace.json")]
    assert len(traces) == 1
    with open(tmp_path / "train" / traces[0]) as f:
        assert "traceEvents" in json.load(f)
