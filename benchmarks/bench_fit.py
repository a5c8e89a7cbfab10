"""lamina against a hand-written PyTorch loop, Keras 3 on torch and Keras 3 on JAX.

Run: python benchmarks/bench_fit.py [--quick] [--jit] [--no-keras] [--no-jax] [--reps N]
                                    [--only NAME] [--write]

Each workload is one Keras-API script run by lamina and, when installed, by Keras 3 with
KERAS_BACKEND=torch, plus the same model written as a plain PyTorch loop. Keras 3 on JAX (its
default jit_compile, i.e. XLA) runs the same script on the same data in a worker process of
this script (a backend is fixed per process), which times one run per request line read from
its stdin and writes the seconds to its stdout. All runners run interleaved, median of the
repetitions, in samples/s at steady state; the first (building, compiling) epoch is timed
separately. `--write` appends the table to benchmarks/RESULTS.md.
"""
import argparse
import contextlib
import functools
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import lamina  # noqa: E402


# ----------------------------------------------------------------------------- workloads
class Workload:
    """A Keras-API model builder, its plain-torch twin and its data."""

    def __init__(self, name, build, torch_model, loss_fn, data, batch_size, kind="fit",
                 channels_first_torch=False):
        self.name, self.build, self.torch_model, self.loss_fn = name, build, torch_model, loss_fn
        self.data, self.batch_size, self.kind = data, batch_size, kind
        self.channels_first_torch = channels_first_torch


def mlp(lib, jit=False):
    L = lib.layers
    model = lib.Sequential([lib.Input((784,)), L.Dense(64, activation="relu"),
                            L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit)
    return model


def torch_mlp():
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def convnet(lib, jit=False):
    L = lib.layers
    model = lib.Sequential([lib.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"),
                            L.MaxPooling2D(2), L.Conv2D(64, 3, activation="relu"),
                            L.MaxPooling2D(2), L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit)
    return model


def torch_convnet():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 10))


def lstm(lib, jit=False):
    L = lib.layers
    model = lib.Sequential([lib.Input((50,), dtype="int32"), L.Embedding(1000, 64), L.LSTM(32),
                            L.Dense(1, activation="sigmoid")])
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


def resnet50(lib, jit=False):
    model = lib.applications.ResNet50(weights=None)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=jit)
    return model


def torch_resnet50():
    from torch_resnet50 import resnet50 as build
    return build()


def classes(n, k, rng):
    return rng.randint(0, k, n).astype("int64")


def workloads(quick):
    rng = np.random.RandomState(0)
    n_mlp, n_conv, n_lstm = (12000, 2048, 1024) if quick else (60000, 8192, 4096)
    mlp_data = (rng.rand(n_mlp, 784).astype("float32"), classes(n_mlp, 10, rng))
    conv_data = (rng.rand(n_conv, 28, 28, 1).astype("float32"), classes(n_conv, 10, rng))
    lstm_data = (rng.randint(1, 1000, (n_lstm, 50)).astype("int64"),
                 rng.randint(0, 2, (n_lstm, 1)).astype("float32"))
    ce = lambda logits, y: F.cross_entropy(logits, y)  # noqa: E731
    bce = lambda logits, y: F.binary_cross_entropy_with_logits(logits, y)  # noqa: E731
    return [
        Workload("MLP fit b32", mlp, torch_mlp, ce, mlp_data, 32),
        Workload("MLP fit b128", mlp, torch_mlp, ce, mlp_data, 128),
        Workload("convnet fit b128", convnet, torch_convnet, ce, conv_data, 128,
                 channels_first_torch=True),
        Workload("LSTM fit b64", lstm, TorchLSTM, bce, lstm_data, 64),
        Workload("MLP predict b128", mlp, torch_mlp, None, mlp_data, 128, kind="predict"),
        Workload("convnet predict b128", convnet, torch_convnet, None, conv_data, 128,
                 kind="predict", channels_first_torch=True),
        Workload("convnet predict b1024", convnet, torch_convnet, None, conv_data, 1024,
                 kind="predict", channels_first_torch=True),
        Workload("ResNet50 predict b8 (224px)", resnet50, torch_resnet50, None,
                 (rng.rand(16 if quick else 32, 224, 224, 3).astype("float32"), None), 8,
                 kind="predict", channels_first_torch=True),
    ]


# ----------------------------------------------------------------------------- runners
def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def torch_runner(work):
    model = work.torch_model()
    x, y = (None if a is None else torch.from_numpy(a) for a in work.data)
    if work.channels_first_torch:
        x = x.permute(0, 3, 1, 2).contiguous()
    b = work.batch_size
    if work.kind == "predict":
        if not isinstance(list(model.modules())[-1], nn.Softmax):
            model = nn.Sequential(model, nn.Softmax(dim=-1))  # the Keras model outputs probabilities
        model.eval()

        def run():
            with torch.inference_mode():
                torch.cat([model(x[i:i + b]) for i in range(0, x.shape[0], b)]).numpy()
        return run
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run():
        perm = torch.randperm(x.shape[0])
        for start in range(0, x.shape[0], b):
            idx = perm[start:start + b]
            opt.zero_grad(set_to_none=True)
            loss = work.loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return run


def keras_api_runner(lib, work, jit):
    model = work.build(lib, jit=jit)
    x, y = work.data
    if work.kind == "predict":
        return lambda: model.predict(x, batch_size=work.batch_size, verbose=0)
    return lambda: model.fit(x, y, batch_size=work.batch_size, epochs=1, verbose=0)


def jax_worker(name, quick):
    """The worker process: Keras 3 on JAX times one run of workload `name` per stdin line."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever else this process prints goes to stderr
    try:
        import keras
    except ImportError as e:
        protocol.write(f"{e}\n")
        return
    work = next(w for w in workloads(quick) if w.name == name)
    run = keras_api_runner(keras, work, "auto")
    protocol.write("ready\n")
    for _ in sys.stdin:
        protocol.write(f"{timed(run)!r}\n")


@contextlib.contextmanager
def jax_clock(work, quick):
    """Yields a function that has the worker time one run and returns the seconds, or None
    when the worker cannot start; the worker ends with the block."""
    cmd = [sys.executable, os.path.abspath(__file__), "--jax-worker", work.name]
    proc = subprocess.Popen(cmd + (["--quick"] if quick else []), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, KERAS_BACKEND="jax"))

    def clock():
        proc.stdin.write("run\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the Keras-on-JAX worker exited")
        return float(line)

    try:
        status = proc.stdout.readline().strip()
        if status != "ready":
            print(f"Keras on JAX skipped: {status or 'the worker exited'}", file=sys.stderr)
        yield clock if status == "ready" else None
    finally:
        proc.stdin.close()
        proc.wait()


def jax_version():
    """The installed jax's version, read without importing it here."""
    try:
        return importlib.metadata.version("jax")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def measure(work, clocks, reps):
    """Median rates, and median ratios to the hand-written loop over the repetitions (each
    repetition runs every runner back to back, so a slow spell of a shared host hits all).
    `clocks` run their runner once and return the seconds."""
    n = work.data[0].shape[0]
    first = {name: clock() for name, clock in clocks.items()}
    rates = {name: [] for name in clocks}
    for _ in range(reps):
        for name, clock in clocks.items():
            rates[name].append(n / clock())
    ratios = {name: statistics.median(a / t for a, t in zip(r, rates["torch"]))
              for name, r in rates.items()}
    return {name: statistics.median(r) for name, r in rates.items()}, ratios, first


def versus(name, rates, ratios):
    """Rate, ratio to torch and lamina's ratio to it, of an optional runner."""
    if name not in rates:
        return "- | - | -"
    return (f"{rates[name]:,.0f} | {ratios[name]:.2f}x | "
            f"{ratios['lamina'] / ratios[name]:.2f}x")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="less data, 2 repetitions")
    parser.add_argument("--jit", action="store_true", help="lamina with compile(jit_compile=True)")
    parser.add_argument("--no-keras", action="store_true", help="skip Keras 3 on torch")
    parser.add_argument("--no-jax", action="store_true", help="skip Keras 3 on JAX")
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; 2 with --quick)")
    parser.add_argument("--only", default="", help="workloads whose name contains this")
    parser.add_argument("--jax-worker", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jax_worker:
        return jax_worker(args.jax_worker, args.quick)
    reps = args.reps or (2 if args.quick else 3)
    keras = None
    if not args.no_keras:
        try:
            import keras
        except ImportError:
            keras = None
    torch.manual_seed(0)
    lines = [f"{time.strftime('%Y-%m-%d')} | {platform.machine()} "
             f"{platform.processor() or ''} | {torch.get_num_threads()} threads | "
             f"torch {torch.__version__} | lamina {lamina.__version__} | "
             f"keras {keras.__version__ if keras else 'not installed'} | "
             f"jax {'skipped' if args.no_jax else jax_version()} | "
             f"jit_compile={args.jit} | samples/s and ratios: medians of {reps} "
             "repetitions", "",
             "| workload | hand-written torch | lamina | lamina / torch | Keras 3 on torch | "
             "Keras / torch | lamina / Keras | Keras 3 on JAX | JAX / torch | lamina / JAX | "
             "lamina first epoch (s) | JAX first epoch (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines[:1]), flush=True)
    for work in [w for w in workloads(args.quick) if args.only in w.name]:
        runners = {"torch": torch_runner(work), "lamina": keras_api_runner(lamina, work, args.jit)}
        if keras is not None:
            runners["keras"] = keras_api_runner(keras, work, False)
        clocks = {name: functools.partial(timed, run) for name, run in runners.items()}
        with contextlib.nullcontext() if args.no_jax else jax_clock(work, args.quick) as jax:
            if jax is not None:
                clocks["jax"] = jax
            rates, ratios, first = measure(work, clocks, reps)
        jax_first = f"{first['jax']:.2f}" if "jax" in first else "-"
        row = (f"| {work.name} | {rates['torch']:,.0f} | {rates['lamina']:,.0f} | "
               f"{ratios['lamina']:.2f}x | {versus('keras', rates, ratios)} | "
               f"{versus('jax', rates, ratios)} | {first['lamina']:.2f} | {jax_first} |")
        lines.append(row)
        print(row, flush=True)
    if args.write:
        path = os.path.join(os.path.dirname(__file__), "RESULTS.md")
        with open(path, "a") as f:
            f.write("\n## `python benchmarks/bench_fit.py" + (" --jit" if args.jit else "")
                    + "`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
