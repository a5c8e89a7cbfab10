#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one run of at most 9.5 minutes (one command may run
# 10, the lease is 15): the GPU tests, then ResNet50 mixed-float16 training against the
# hand-written AMP loop, with the top kernels of one epoch of each. The benchmark prints each
# repetition as it ends, so a timeout still leaves numbers (the compiled step, one graph since
# the sixth CPU session, compiles for minutes). Offline-safe: nothing is installed, lamina
# runs from the checkout; Keras 3 is compared only where it is already installed.
#   bash benchmarks/gpu_session.sh 2>&1 | tee "${OUT:-.}/gpu_session.log"
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 170 python -m pytest -q -p no:cacheprovider tests/test_gpu.py
timeout 400 python benchmarks/bench_gpu.py --reps 3 --steps 20 --profile
