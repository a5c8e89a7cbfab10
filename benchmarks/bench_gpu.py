"""ResNet50 training on a GPU with mixed precision: lamina against a hand-written AMP loop.

Run: python benchmarks/bench_gpu.py [--batch 128] [--steps 20] [--reps 3] [--jit with|without|only]
     [--no-keras] [--profile] [--write]
(`--device cpu --batch 2 --steps 2 --reps 1` is a smoke run of the script without a GPU)

Four runners train ResNet50 (224x224, 1000 classes, SGD) on the same random images, already
on the GPU: a hand-written channels-last loop with `torch.autocast(float16)` and `GradScaler`;
lamina `fit` under the "mixed_float16" policy, eagerly and with `jit_compile=True`; and Keras 3
on torch with the same script when it is installed. They run interleaved; the table gives the
median images/s over `--reps` epochs of `--steps` steps and, separately, the first epoch's time
(building, cuDNN autotuning, compiling), and the peak GPU memory an epoch allocates beyond
what its runner already held (activations, gradients, temporaries). A fifth runner puts lamina's
ResNet50 into the hand-written loop: the gap between it and the loop is the layers', the gap
between it and `fit` is the trainer's. `--write` appends the
table to benchmarks/RESULTS.md.
"""
import argparse
import os
import statistics
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
from torch_resnet50 import resnet50 as torch_resnet50  # noqa: E402


def torch_runner(x, y, batch):
    """The loop a PyTorch user writes: channels-last, autocast float16, GradScaler, logits."""
    device = x.device
    model = nn.Sequential(*list(torch_resnet50())[:-1]).to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler(device.type)
    images = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    def epoch():
        perm = torch.randperm(images.shape[0], device=device)
        for start in range(0, images.shape[0], batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16):
                loss = F.cross_entropy(model(images[idx]), y[idx])
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    return epoch


def lamina_model_runner(x, y, batch):
    """Lamina's ResNet50 as a plain `nn.Module` in the hand-written loop: it splits lamina's gap
    into what its layers cost and what `fit` adds around them."""
    lamina.mixed_precision.set_global_policy("mixed_float16")  # the layers autocast themselves
    model = lamina.applications.ResNet50(weights=None, classifier_activation=None)
    lamina.mixed_precision.set_global_policy(None)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler(x.device.type)

    def epoch():
        perm = torch.randperm(x.shape[0], device=x.device)
        for start in range(0, x.shape[0], batch):
            idx = perm[start:start + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx], training=True).float(), y[idx])
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    return epoch


def keras_api_runner(lib, x, y, batch, jit=False):
    lib.mixed_precision.set_global_policy("mixed_float16")
    model = lib.applications.ResNet50(weights=None)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=jit)
    return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)


def timed(fn):
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def profile(runners, names):
    from torch.profiler import ProfilerActivity
    for name in names:
        with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
            timed(runners[name])
        print(f"\n{name}:\n" + p.key_averages().table(sort_by="self_device_time_total",
                                                        row_limit=15, max_name_column_width=60))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-keras", action="store_true")
    parser.add_argument("--jit", choices=["with", "without", "only"], default="with",
                        help="'only': the hand-written loop and lamina's compiled step alone")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--device", default="cuda", help="'cpu' for a smoke run of the script")
    parser.add_argument("--profile", action="store_true",
                        help="after the table, the top kernels of one epoch of torch and lamina")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    n = args.batch * args.steps
    rng = np.random.RandomState(0)
    x = torch.from_numpy(rng.rand(n, 224, 224, 3).astype("float32")).to(args.device)
    y = torch.from_numpy(rng.randint(0, 1000, n)).to(args.device)
    runners = {"hand-written torch AMP": torch_runner(x, y, args.batch)}
    if args.jit != "only":
        runners["lamina's model in the hand-written loop"] = lamina_model_runner(x, y, args.batch)
        runners["lamina eager"] = keras_api_runner(lamina, x, y, args.batch)
    if args.jit != "without":
        runners["lamina jit_compile=True"] = keras_api_runner(lamina, x, y, args.batch, jit=True)
    if not args.no_keras and args.jit != "only":
        try:
            import keras
            # Keras gets numpy: its adapters copy each batch to the device themselves
            runners["Keras 3 on torch"] = keras_api_runner(keras, x.cpu().numpy(), y.cpu().numpy(),
                                                           args.batch)
        except ImportError:
            pass
    first = {}
    for name, run in runners.items():
        first[name] = timed(run)
        print(f"{name}: first epoch {first[name]:.1f} s", flush=True)
    rates = {name: [] for name in runners}
    memory = {}
    for rep in range(args.reps):
        for name, run in runners.items():
            if rep == 0 and torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
                held = torch.cuda.memory_allocated()
            rates[name].append(n / timed(run))
            print(f"repetition {rep + 1}: {name}: {rates[name][-1]:,.0f} images/s", flush=True)
            if rep == 0 and torch.cuda.is_available():
                memory[name] = (torch.cuda.max_memory_allocated() - held) / 2**30
    base = statistics.median(rates["hand-written torch AMP"])
    card = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    lines = [f"{time.strftime('%Y-%m-%d')} | {card} | torch "
             f"{torch.__version__} | lamina {lamina.__version__} | ResNet50 fit, 224px, batch "
             f"{args.batch}, mixed float16, images/s, median of {args.reps} epochs of "
             f"{args.steps} steps", "",
             "| runner | images/s | vs hand-written | first epoch (s) | epoch's peak GPU memory "
             "beyond what it held (GiB) |", "|---|---|---|---|---|"]
    for name, r in rates.items():
        rate = statistics.median(r)
        peak = f"{memory[name]:.2f}" if name in memory else "-"
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {first[name]:.1f} | {peak} |")
    print("\n".join(lines), flush=True)
    if args.profile:
        profile(runners, [name for name in runners if "jit" not in name])
    if args.write:
        with open(os.path.join(os.path.dirname(__file__), "RESULTS.md"), "a") as f:
            f.write("\n## GPU: `python benchmarks/bench_gpu.py`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
