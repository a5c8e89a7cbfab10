"""Data-parallel training with an unchanged Keras-API script.

    torchrun --nproc_per_node=2 examples/distributed_train.py        # 2 processes (CPU: Gloo)

`fit` sees the torch.distributed environment set by torchrun, joins the process group, wraps the
model in DistributedDataParallel and gives each process its slice of every global batch. Only
process 0 prints and writes files.
"""
import os
import sys

import numpy as np

import lamina as keras
from lamina import layers

keras.utils.set_random_seed(0)  # the same initial weights on every process
rng = np.random.RandomState(0)
x = rng.rand(2048, 20).astype("float32")
y = (x.sum(axis=1) > 10).astype("float32")

model = keras.Sequential([keras.Input((20,)), layers.Dense(32, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
history = model.fit(x, y, batch_size=64, epochs=3,            # 64 = the global batch size
                    verbose=2 if keras.distribution.rank() == 0 else 0,
                    callbacks=[keras.callbacks.CSVLogger(os.path.join(out_dir, "training.csv"))])
loss, accuracy = model.evaluate(x, y, verbose=0)           # metrics summed over all processes
print(f"rank {keras.distribution.rank()}/{keras.distribution.world_size()}: "
      f"loss {loss:.4f} accuracy {accuracy:.4f}")
