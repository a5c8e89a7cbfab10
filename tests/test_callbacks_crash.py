"""A run killed with SIGKILL in the middle of an epoch resumes from BackupAndRestore."""
import csv
import os
import signal
import subprocess
import sys
import time

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "crash_train.py")


def test_sigkill_mid_epoch_then_resume(tmp_path):
    victim = subprocess.Popen([sys.executable, SCRIPT, str(tmp_path), "3"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (tmp_path / "ready").exists():
        assert victim.poll() is None, victim.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the training run never reached epoch 3"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    backup = tmp_path / "backup"
    assert sorted(os.listdir(backup)) == ["latest.weights.h5", "training_state.pt"]
    with open(tmp_path / "log.csv") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [0, 1, 2]

    resumed = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True,
                             text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4, 5]  # epoch 3 redone, 6 in all
    losses = [float(r["loss"]) for r in rows]
    final = float(resumed.stdout.split("final loss")[1])
    assert final < losses[0] and final == final  # finite and improved
    assert not backup.exists() or not os.listdir(backup)  # deleted once training completed
