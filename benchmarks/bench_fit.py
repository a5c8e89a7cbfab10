"""Throughput of lamina `fit`/`predict` against the same work as a hand-written PyTorch loop.

Run: python benchmarks/bench_fit.py [--quick] [--jit]
Both sides run in this process, interleaved, median of the repetitions; samples/s, steady state
(the first epoch, which builds and warms up, is timed separately).
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import lamina as keras  # noqa: E402
from lamina import layers  # noqa: E402


# ----------------------------------------------------------------------------- workloads
def mlp_data(n):
    rng = np.random.RandomState(0)
    return rng.rand(n, 784).astype("float32"), rng.randint(0, 10, n).astype("int64")


def lamina_mlp(jit):
    model = keras.Sequential([keras.Input((784,)), layers.Dense(64, activation="relu"),
                              layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit)
    return model


def torch_mlp():
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def lstm_data(n):
    rng = np.random.RandomState(0)
    return rng.randint(1, 1000, (n, 50)).astype("int64"), rng.randint(0, 2, (n, 1)).astype("float32")


def lamina_lstm(jit):
    model = keras.Sequential([keras.Input((50,), dtype="int64"), layers.Embedding(1000, 64),
                              layers.LSTM(32), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=jit)
    return model


class TorchLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(1000, 64)
        self.lstm = nn.LSTM(64, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(self.embedding(x))
        return self.head(h[-1])


# ----------------------------------------------------------------------------- loops
def torch_fit_epoch(model, opt, loss_fn, x, y, batch_size):
    n = x.shape[0]
    perm = torch.randperm(n)
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()


def torch_predict(model, x, batch_size):
    with torch.inference_mode():
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_fit(name, make_lamina, make_torch, loss_fn, data, batch_size, reps, jit):
    x, y = data
    n = x.shape[0]
    model = make_lamina(jit)
    first = timed(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0))
    tmodel = make_torch()
    topt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    torch_fit_epoch(tmodel, topt, loss_fn, tx, ty, batch_size)
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(n / timed(lambda: model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)))
        theirs.append(n / timed(lambda: torch_fit_epoch(tmodel, topt, loss_fn, tx, ty, batch_size)))
    return name, statistics.median(ours), statistics.median(theirs), first


def run_predict(name, make_lamina, make_torch, x, batch_size, reps):
    model = make_lamina(False)
    tmodel = make_torch().eval()
    tx = torch.from_numpy(x)
    model.predict(x, batch_size=batch_size, verbose=0)
    torch_predict(tmodel, tx, batch_size)
    n = x.shape[0]
    ours, theirs = [], []
    for _ in range(reps):
        ours.append(n / timed(lambda: model.predict(x, batch_size=batch_size, verbose=0)))
        theirs.append(n / timed(lambda: torch_predict(tmodel, tx, batch_size)))
    return name, statistics.median(ours), statistics.median(theirs), None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller data, 2 repetitions")
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    reps = 2 if args.quick else args.reps
    n_mlp = 12000 if args.quick else 60000
    n_lstm = 1024 if args.quick else 4096
    torch.manual_seed(0)

    def ce(logits, labels):
        return F.cross_entropy(logits, labels)

    def bce(logits, labels):
        return F.binary_cross_entropy_with_logits(logits, labels)

    rows = [
        run_fit("MLP fit b32", lamina_mlp, torch_mlp, ce, mlp_data(n_mlp), 32, reps, args.jit),
        run_fit("MLP fit b128", lamina_mlp, torch_mlp, ce, mlp_data(n_mlp), 128, reps, args.jit),
        run_fit("LSTM fit b64", lamina_lstm, TorchLSTM, bce, lstm_data(n_lstm), 64, reps, args.jit),
        run_predict("MLP predict b128", lamina_mlp, torch_mlp, mlp_data(n_mlp)[0], 128, reps),
    ]
    print(f"\n{time.strftime('%Y-%m-%d')} | {platform.processor() or platform.machine()} | "
          f"{torch.get_num_threads()} threads | torch {torch.__version__} | "
          f"jit_compile={args.jit}\n")
    print("| workload | lamina (samples/s) | hand-written torch (samples/s) | ratio | first epoch (s) |")
    print("|---|---|---|---|---|")
    for name, ours, theirs, first in rows:
        first_text = f"{first:.2f}" if first is not None else "-"
        print(f"| {name} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}x | {first_text} |")


if __name__ == "__main__":
    main()
