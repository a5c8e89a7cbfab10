"""A host-bound training step on the CPU: the stand-in for a GPU that waits for the host.

Run: python benchmarks/bench_host_bound.py [--reps 9] [--steps 20]

16 residual blocks (1x1, 3x3 and 1x1 convolutions, each with BatchNormalization and relu, then
the skip `Add` and a relu: 179 layers, ResNet50's kinds) on 2 images of 4x4x16, SGD, one
thread. The kernels are so short that a step's time is mostly the Python that issues them, as
on a GPU whose host is the bottleneck (ResNet50 on an H200 in benchmarks/RESULTS.md). Three
runners, interleaved: a hand-written channels-last torch loop, lamina's model trained in that
same loop (its gap to the loop is the layers' Python), and lamina `fit` (its gap to the previous
runner is the trainer's). Once in float32, once under "mixed_bfloat16" (the loop in
`torch.autocast`). Prints each runner's median ms/step and its speed as a fraction of the loop's.
"""
import argparse
import os
import statistics
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))
import lamina  # noqa: E402
from bench_step_overhead import ms_per_step  # noqa: E402
from lamina import layers  # noqa: E402

BATCH, SIZE, CHANNELS, BLOCKS, CLASSES = 2, 4, 16, 16, 10
KERNELS = (1, 3, 1)


def lamina_model(policy):
    lamina.mixed_precision.set_global_policy(policy)
    try:
        inputs = lamina.Input((SIZE, SIZE, CHANNELS))
        h = inputs
        for _ in range(BLOCKS):
            skip = h
            for k in KERNELS:
                h = layers.Conv2D(CHANNELS, k, padding="same")(h)
                h = layers.Activation("relu")(layers.BatchNormalization()(h))
            h = layers.Activation("relu")(layers.Add()([h, skip]))
        outputs = layers.Dense(CLASSES)(layers.GlobalAveragePooling2D()(h))
        return lamina.Model(inputs, outputs)
    finally:
        lamina.mixed_precision.set_global_policy(None)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(CHANNELS, CHANNELS, k, padding=k // 2)
                                   for k in KERNELS)
        self.norms = nn.ModuleList(nn.BatchNorm2d(CHANNELS, eps=1e-3, momentum=0.01)
                                   for _ in KERNELS)

    def forward(self, x):
        h = x
        for conv, norm in zip(self.convs, self.norms):
            h = torch.relu(norm(conv(h)))
        return torch.relu(h + x)


class TorchModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*(Block() for _ in range(BLOCKS)))
        self.head = nn.Linear(CHANNELS, CLASSES)

    def forward(self, x):
        return self.head(self.blocks(x).mean((2, 3)))


def loop(model, images, labels, autocast):
    """The hand-written loop: one epoch of SGD steps over `images` (already batched)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def epoch():
        for x, y in zip(images, labels):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = model(x) if isinstance(model, TorchModel) else model(x, training=True)
            F.cross_entropy(out.float(), y).backward()
            opt.step()
    return epoch


def runners(x, y, policy):
    mixed = policy is not None
    labels = list(torch.from_numpy(y).split(BATCH))
    channels_first = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last)
    torch_model = TorchModel().to(memory_format=torch.channels_last)
    fitted = lamina_model(policy)
    fitted.compile(optimizer=lamina.optimizers.SGD(0.01),
                   loss=lamina.losses.SparseCategoricalCrossentropy(from_logits=True))
    return {
        "hand-written torch": loop(torch_model, channels_first.split(BATCH), labels, mixed),
        "lamina's model in that loop": loop(lamina_model(policy),
                                            torch.from_numpy(x).split(BATCH), labels, False),
        "lamina fit": lambda: fitted.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False,
                                         verbose=0),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    x = rng.rand(BATCH * args.steps, SIZE, SIZE, CHANNELS).astype("float32")
    y = rng.randint(0, CLASSES, BATCH * args.steps)
    print(f"{BLOCKS} residual blocks on {BATCH}x{SIZE}x{SIZE}x{CHANNELS}, SGD, 1 thread, "
          f"torch {torch.__version__}, median of {args.reps} epochs of {args.steps} steps")
    for policy in (None, "mixed_bfloat16"):
        times = ms_per_step(runners(x, y, policy), args.reps, args.steps)
        base = statistics.median(times["hand-written torch"])
        for name, t in times.items():
            ms = statistics.median(t)
            print(f"{policy or 'float32':15s} {name:28s} {ms:6.2f} ms/step  {base / ms:.2f}x")


if __name__ == "__main__":
    main()
