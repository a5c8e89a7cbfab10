#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one run of at most 9.5 minutes (one command may run
# 10, the lease is 15): ResNet50 mixed-float16 training, eager, against the hand-written AMP loop
# with the top kernels of one epoch of each; the GPU tests; then the compiled step against the
# loop. The compiled step (one graph since the sixth CPU session) compiles for minutes, so it
# runs last; the benchmark prints each repetition as it ends, so a timeout still leaves numbers.
# Offline-safe: nothing is installed, lamina runs from the checkout; Keras 3 is compared only
# where it is already installed.
#   bash benchmarks/gpu_session.sh [eager|jit] 2>&1 | tee "${OUT:-.}/gpu_session.log"
# (one part only: `eager`, the eager runners; `jit`, the tests and the compiled step)
# dynamo's graph-break and recompile messages, and inductor's reasons for skipping CUDA graphs,
# go to "${OUT:-.}/dynamo.log", apart from the table.
set -uo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
# eager runners and their profiles first, then the tests; the compile, minutes long, comes last
part="${1:-all}"
if [ "$part" != jit ]; then
    timeout 140 python3 benchmarks/bench_gpu.py --reps 5 --steps 20 --jit without --profile
fi
[ "$part" = eager ] && exit 0
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py
TORCH_LOGS=graph_breaks,recompiles,perf_hints timeout 330 python3 benchmarks/bench_gpu.py \
    --reps 3 --steps 20 --jit only 2>"${OUT:-.}/dynamo.log"
rc=$? log="${OUT:-.}/dynamo.log"
echo "exit $rc; dynamo.log: $(grep -c 'Graph break' "$log") graph breaks, $(grep -c 'Recompiling' \
    "$log") recompiles, $(grep -c 'skipping cudagraphs' "$log") CUDA graph skips; its end:"
tail -c 1500 "$log"
