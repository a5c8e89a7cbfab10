"""Peak memory of lamina `fit` and `predict` against hand-written torch, and import time.

Run: python benchmarks/bench_memory.py
Each measurement runs in a fresh Python process (peak RSS from `resource`), so the numbers are
the whole process: torch itself, the data, the model and the training.
"""
import subprocess
import sys
import textwrap

COMMON = """
import resource, sys, time
sys.path.insert(0, {bench!r})
import numpy as np, torch
from bench_fit import workloads, torch_runner, keras_api_runner
work = [w for w in workloads(quick=True) if w.name == {name!r}][0]
"""
LAMINA = "import lamina; run = keras_api_runner(lamina, work, False); run(); run()"
TORCH = "run = torch_runner(work); run(); run()"
REPORT = "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def peak_kib(name, body):
    import os

    bench = os.path.dirname(os.path.abspath(__file__))
    code = textwrap.dedent(COMMON.format(bench=bench, name=name)) + body + "\n" + REPORT
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def import_seconds(module):
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)]
    return sorted(runs)[1]


def main():
    print("| workload | hand-written torch peak RSS (MiB) | lamina peak RSS (MiB) | ratio |")
    print("|---|---|---|---|")
    for name in ("MLP fit b128", "convnet fit b128", "ResNet50 predict b8 (224px)"):
        ours, theirs = peak_kib(name, LAMINA), peak_kib(name, TORCH)
        print(f"| {name} | {theirs / 1024:.0f} | {ours / 1024:.0f} | {ours / theirs:.2f}x |")
    torch_s = import_seconds("torch")
    lamina_s = import_seconds("lamina")
    print(f"\nimport torch: {torch_s:.2f} s; import lamina (torch included): {lamina_s:.2f} s; "
          f"lamina's own share: {lamina_s - torch_s:.2f} s")


if __name__ == "__main__":
    main()
