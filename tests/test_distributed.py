"""Data-parallel fit on torch.distributed: 2 CPU processes with Gloo, spawned by the test.

Workers leave the process group through lamina's own exit hook (barrier, then destroy), as a
user script under torchrun does.
"""
import json
import os
import socket

import numpy as np
import torch
import torch.multiprocessing as mp

import lamina as keras
from lamina import layers


def make_data():
    rng = np.random.RandomState(0)
    x = rng.rand(64, 4).astype("float32")
    y = (x @ rng.rand(4, 1) + 0.1).astype("float32")
    return x, y


SEEN_BATCH_SIZES = set()


def record_batch_size(x):
    SEEN_BATCH_SIZES.add(int(x.shape[0]))
    return x


def make_model():
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), layers.Lambda(record_batch_size),
                              layers.Dense(3, activation="relu"), layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    return model


def torchrun_environment(rank, world, port):
    """What torchrun gives worker `rank` (and one thread each, for 2 cores)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)


def worker(rank, world, port, out_dir, shuffle):
    torchrun_environment(rank, world, port)
    model = make_model()
    x, y = make_data()
    csv = os.path.join(out_dir, f"log_rank{rank}.csv")
    SEEN_BATCH_SIZES.clear()
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=shuffle, verbose=0,
                        callbacks=[keras.callbacks.CSVLogger(csv)])
    result = {"history": history.history, "batch_sizes": sorted(SEEN_BATCH_SIZES),
              "weights": [w.tolist() for w in model.get_weights()],
              "evaluate": model.evaluate(x, y, batch_size=16, verbose=0)}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_ranks(tmp_path, shuffle):
    mp.start_processes(worker, args=(2, free_port(), str(tmp_path), shuffle), nprocs=2,
                       join=True, start_method="spawn")
    return [json.load(open(tmp_path / f"rank{r}.json")) for r in range(2)]


def test_two_ranks_equal_one_process_with_the_global_batch(tmp_path):
    ranks = run_two_ranks(tmp_path, shuffle=False)
    model = make_model()
    x, y = make_data()
    single = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
    for result in ranks:
        for got, want in zip(result["weights"], model.get_weights()):
            np.testing.assert_allclose(np.array(got), want, atol=1e-5)
        for key in ("loss", "mae"):
            np.testing.assert_allclose(result["history"][key], single[key], rtol=1e-5)
        np.testing.assert_allclose(result["evaluate"], model.evaluate(x, y, verbose=0), rtol=1e-5)
    assert ranks[0]["history"] == ranks[1]["history"]
    assert ranks[0]["batch_sizes"] == ranks[1]["batch_sizes"] == [8]  # half of each global batch
    assert (tmp_path / "log_rank0.csv").exists()
    assert not (tmp_path / "log_rank1.csv").exists()  # only rank 0 writes files


def test_shuffled_ranks_stay_in_step(tmp_path):
    ranks = run_two_ranks(tmp_path, shuffle=True)
    for a, b in zip(ranks[0]["weights"], ranks[1]["weights"]):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-6)
    assert ranks[0]["history"]["loss"][-1] < ranks[0]["history"]["loss"][0]


def test_shard_splits_a_global_batch():
    from lamina import distribution

    batch = torch.arange(10)
    assert distribution.world_size() == 1
    assert torch.equal(distribution.shard(batch), batch)


def test_readme_torchrun_example_runs(tmp_path):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "examples", "distributed_train.py")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={free_port()}", script, str(tmp_path)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    import re

    reports = dict(re.findall(r"rank (\d/2): (loss [\d.]+ accuracy [\d.]+)", result.stdout))
    assert sorted(reports) == ["0/2", "1/2"], result.stdout
    assert len(set(reports.values())) == 1  # both ranks report the same global numbers
    rows = (tmp_path / "training.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[0].startswith("epoch")  # header + 3 epochs, written once


class CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.crash_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash_epoch:
            raise RuntimeError("simulated crash")


def backup_worker(rank, world, port, out_dir, crash):
    torchrun_environment(rank, world, port)
    model = make_model()
    x, y = make_data()
    callbacks = [keras.callbacks.BackupAndRestore(os.path.join(out_dir, "backup")),
                 keras.callbacks.CSVLogger(os.path.join(out_dir, "log.csv"), append=True)]
    if crash:
        callbacks.append(CrashAtEpoch(2))
    try:
        model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=callbacks)
    except RuntimeError as error:
        assert crash and "simulated crash" in str(error)
    with open(os.path.join(out_dir, f"weights{rank}.json"), "w") as f:
        json.dump([w.tolist() for w in model.get_weights()], f)


def test_backup_and_restore_resumes_on_two_ranks(tmp_path):
    for crash in (True, False):
        mp.start_processes(backup_worker, args=(2, free_port(), str(tmp_path), crash), nprocs=2,
                           join=True, start_method="spawn")
        if crash:
            assert (tmp_path / "backup").exists()
    with open(tmp_path / "log.csv") as f:
        epochs = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert epochs == [0, 1, 2, 3]  # epochs 0-1 before the crash, 2-3 after the restart
    weights = [json.load(open(tmp_path / f"weights{r}.json")) for r in range(2)]
    for a, b in zip(*weights):
        np.testing.assert_allclose(np.array(a), np.array(b), atol=1e-6)
    assert not (tmp_path / "backup").exists()  # removed by rank 0 once training completed


def syncbn_model():
    keras.backend.clear_session()
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((4,)), layers.BatchNormalization(synchronized=True),
                              layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model


def syncbn_worker(rank, world, port, out_dir):
    torchrun_environment(rank, world, port)
    model = syncbn_model()
    x, y = make_data()
    model.fit(x * np.arange(1, 5), y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    with open(os.path.join(out_dir, f"bn{rank}.json"), "w") as f:
        json.dump([w.tolist() for w in model.get_weights()], f)


def test_synchronized_batch_normalization_matches_one_process(tmp_path):
    mp.start_processes(syncbn_worker, args=(2, free_port(), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    model = syncbn_model()
    x, y = make_data()
    model.fit(x * np.arange(1, 5), y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for rank in range(2):
        got = json.load(open(tmp_path / f"bn{rank}.json"))
        for a, b in zip(got, model.get_weights()):  # gamma, beta, moving mean/var, dense
            np.testing.assert_allclose(np.array(a), b, atol=1e-5)


def exit_worker(rank, world, port, out_dir):
    import weakref

    import torch.distributed as dist

    torchrun_environment(rank, world, port)
    model = make_model()
    x, y = make_data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    group = weakref.ref(dist.group.WORLD)
    keras.distribution._shutdown()  # lamina's exit hook, which the interpreter runs at exit
    with open(os.path.join(out_dir, f"exit{rank}.json"), "w") as f:
        json.dump({"freed": group() is None, "unwrapped": model._trainer._runner is model}, f)


def test_exit_hook_frees_the_process_group_while_python_runs(tmp_path):
    """The DistributedDataParallel wrapper holds the group; freed only in the interpreter's
    teardown, Gloo's threads could abort a finished worker (SIGABRT, now and then)."""
    mp.start_processes(exit_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True,
                       start_method="spawn")
    for rank in range(2):
        assert json.load(open(tmp_path / f"exit{rank}.json")) == {"freed": True,
                                                                    "unwrapped": True}


def user_group_worker(rank, world, port, out_dir):
    import weakref

    import torch.distributed as dist

    torchrun_environment(rank, world, port)
    dist.init_process_group("gloo")  # the script's own group, opened before any model exists
    model = make_model()
    x, y = make_data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    group = weakref.ref(dist.group.WORLD)
    keras.distribution._shutdown()
    with open(os.path.join(out_dir, f"user{rank}.json"), "w") as f:
        json.dump({"freed": group() is None}, f)


def test_a_group_the_script_opens_is_freed_at_exit(tmp_path):
    """Building a model while the group is open loads torch._dynamo, which imports
    torch.distributed.nn.functional: imported then, its default arguments would hold the group."""
    mp.start_processes(user_group_worker, args=(2, free_port(), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    for rank in range(2):
        assert json.load(open(tmp_path / f"user{rank}.json")) == {"freed": True}
