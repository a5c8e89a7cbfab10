"""Training run used by test_callbacks_crash.py: `python crash_train.py WORKDIR [KILL_AT_EPOCH]`.

With KILL_AT_EPOCH, the run writes WORKDIR/ready when it reaches the middle of that epoch and
then waits to be killed. CSV rows are appended, so a restarted run continues the same log.
"""
import os
import sys
import time

import numpy as np

import lamina as keras
from lamina import layers

workdir = sys.argv[1]
kill_at = int(sys.argv[2]) if len(sys.argv) > 2 else None
keras.utils.set_random_seed(0)
rng = np.random.RandomState(0)
x = rng.rand(256, 8).astype("float32")
y = (x @ rng.rand(8, 1)).astype("float32")
model = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")


class WaitForKill(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == kill_at and batch == 3:
            open(os.path.join(workdir, "ready"), "w").close()
            time.sleep(60)  # killed here, in the middle of the epoch


callbacks = [keras.callbacks.BackupAndRestore(os.path.join(workdir, "backup")),
             keras.callbacks.CSVLogger(os.path.join(workdir, "log.csv"), append=True)]
if kill_at is not None:
    callbacks.append(WaitForKill())
model.fit(x, y, batch_size=32, epochs=6, verbose=0, callbacks=callbacks)
print("final loss", model.evaluate(x, y, verbose=0))
