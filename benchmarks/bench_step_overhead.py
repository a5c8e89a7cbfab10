"""Per-step host overhead of an eager train step: ResNet50 `fit` against the hand-written loop.

Run: python benchmarks/bench_step_overhead.py [--reps 21] [--steps 5]

Both train ResNet50 (SGD, 10 classes) on 2 images of 32x32 a step, on one CPU thread: the
kernels are as short as they get, so the time a step takes beyond the loop's is lamina's own
work per step (Python, extra small kernels, optimizer passes). On a GPU this is the time the
host needs to issue a step; a step that issues slower than the device computes it is
host-bound. Prints each runner's median ms/step and the median of the paired differences.
Many short pairs: on a shared host, 7 pairs of 10 steps gave 9.7 and 17.0 ms in two runs of one
tree, 21 pairs of 5 steps 5.0 and 4.6 ms.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import lamina  # noqa: E402
from torch_resnet50 import resnet50  # noqa: E402

BATCH, SIZE, CLASSES = 2, 32, 10


def loop_runner(x, y):
    model = nn.Sequential(*list(resnet50(CLASSES))[:-1]).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    images = x.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

    def epoch():
        perm = torch.randperm(images.shape[0])
        for start in range(0, images.shape[0], BATCH):
            idx = perm[start:start + BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(images[idx]), y[idx]).backward()
            opt.step()
    return epoch


def lamina_runner(x, y):
    model = lamina.applications.ResNet50(weights=None, input_shape=(SIZE, SIZE, 3),
                                         classes=CLASSES)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)


def ms_per_step(runners, reps, steps):
    """{name: [ms a step, one per repetition]} of `runners` (each runs one epoch of `steps`
    steps), run once untimed, then interleaved `reps` times."""
    times = {name: [] for name in runners}
    for run in runners.values():
        run()  # build, first-step allocations
    for _ in range(reps):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / steps * 1e3)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed epoch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    n = BATCH * args.steps
    x = torch.from_numpy(rng.rand(n, SIZE, SIZE, 3).astype("float32"))
    y = torch.from_numpy(rng.randint(0, CLASSES, n))
    runners = {"hand-written torch": loop_runner(x, y), "lamina": lamina_runner(x, y)}
    times = ms_per_step(runners, args.reps, args.steps)
    for name, t in times.items():
        print(f"{name}: {statistics.median(t):.1f} ms/step")
    extra = statistics.median(a - b for a, b in zip(times["lamina"], times["hand-written torch"]))
    print(f"lamina's extra time per step: {extra:.1f} ms (median of {args.reps} pairs; "
          f"ResNet50, batch {BATCH}, {SIZE}px, SGD, 1 thread, torch {torch.__version__})")


if __name__ == "__main__":
    main()
