"""Callbacks inside a real `fit`: learning-rate changes reach the optimizer, early stopping
restores weights, checkpoints load, TensorBoard files hold the logged values."""
import csv
import os

import numpy as np
import pytest

import lamina as keras
from lamina import layers


@pytest.fixture(autouse=True)
def fresh():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def regression_model(lr=0.1):
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse")
    return model


def data():
    rng = np.random.RandomState(0)
    x = rng.rand(32, 3).astype("float32")
    return x, (x @ np.array([[1.0], [2.0], [-1.0]])).astype("float32")


def test_learning_rate_scheduler_reaches_the_optimizer_and_the_logs():
    model = regression_model()
    seen = []
    probe = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(model.optimizer.learning_rate))
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    history = model.fit(*data(), epochs=3, verbose=0, callbacks=[schedule, probe])
    np.testing.assert_allclose(seen, [0.05, 0.025, 0.0125], rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], [0.05, 0.025, 0.0125],
                               rtol=1e-6)


def test_learning_rate_set_by_a_callback_changes_the_update():
    x, y = data()
    frozen = regression_model()
    before = frozen.get_weights()
    zero = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: setattr(frozen.optimizer, "learning_rate", 0.0))
    frozen.fit(x, y, epochs=2, verbose=0, callbacks=[zero])
    for a, b in zip(before, frozen.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_weights():
    x, y = data()
    model = regression_model(lr=0.3)
    snapshots = []
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append((logs["val_loss"], model.get_weights())))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1,
                                         restore_best_weights=True)
    # A learning rate that diverges after a few epochs makes val_loss rise, so training stops.
    diverge = keras.callbacks.LearningRateScheduler(lambda epoch: 0.3 if epoch < 3 else 5.0)
    history = model.fit(x, y, epochs=30, verbose=0, validation_data=(x, y),
                        callbacks=[diverge, keep, stop])
    assert len(history.history["loss"]) < 30
    best_loss, best_weights = min(snapshots, key=lambda item: item[0])
    for a, b in zip(model.get_weights(), best_weights):
        np.testing.assert_allclose(a, b)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(best_loss, rel=1e-5)


def test_checkpoint_templates_csv_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x, y = data()
    model = regression_model()
    template = str(tmp_path / "weights.{epoch:02d}-{val_loss:.2f}.weights.h5")
    history = model.fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[
        keras.callbacks.ModelCheckpoint(template, save_weights_only=True),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        keras.callbacks.TensorBoard(log_dir=str(tmp_path / "tb"))])
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith(".weights.h5"))
    expected = [f"weights.{e + 1:02d}-{v:.2f}.weights.h5"
                for e, v in enumerate(history.history["val_loss"])]
    assert names == sorted(expected)
    restored = regression_model()
    restored.load_weights(str(tmp_path / expected[-1]))
    for a, b in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    np.testing.assert_allclose([float(r["loss"]) for r in rows], history.history["loss"],
                               rtol=1e-6)
    train_dir = tmp_path / "tb" / "train"
    events = EventAccumulator(str(train_dir))
    events.Reload()
    tag = "epoch_loss"
    values = ([s.value for s in events.Scalars(tag)] if tag in events.Tags()["scalars"] else
              [float(t.tensor_proto.float_val[0]) for t in events.Tensors(tag)])
    np.testing.assert_allclose(values, history.history["loss"], rtol=1e-5)
