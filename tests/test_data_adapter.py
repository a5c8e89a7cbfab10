"""In-memory arrays: shuffled batches are gathered several at a time and cut into views."""
import numpy as np
import pytest
import torch

from lamina.training import data_adapter


def _rows(n):
    """x row i holds i (two features), y and sample_weight hold i: alignment is checkable."""
    x = {"a": np.repeat(np.arange(n, dtype="float32")[:, None], 2, 1),
         "b": np.arange(n, dtype="float32")}
    return x, np.arange(n), np.arange(n, dtype="float32")


@pytest.mark.parametrize("gather_bytes", [1, 200, 2 ** 20])  # one batch, 2-3 batches, all
def test_shuffled_batches_match_the_permutation_gathered_batch_by_batch(monkeypatch,
                                                                        gather_bytes):
    monkeypatch.setattr(data_adapter, "GATHER_BYTES", gather_bytes)
    x, y, sw = _rows(23)
    adapter = data_adapter.ArrayAdapter(x, y, sw, batch_size=5, shuffle=True, seed=7,
                                        device=torch.device("cpu"))
    perm = torch.randperm(23, generator=torch.Generator().manual_seed(7))
    batches = list(adapter)
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    for step, (bx, by, bsw) in enumerate(batches):
        expected = perm[step * 5:step * 5 + 5]
        torch.testing.assert_close(by, expected)
        torch.testing.assert_close(bsw, expected.float())
        torch.testing.assert_close(bx["b"], expected.float())
        torch.testing.assert_close(bx["a"], expected.float()[:, None].expand(-1, 2))


def test_more_steps_than_batches_wrap_around_the_shuffled_epoch(monkeypatch):
    monkeypatch.setattr(data_adapter, "GATHER_BYTES", 2 ** 20)
    x, y, _ = _rows(10)
    adapter = data_adapter.ArrayAdapter(x["b"], y, batch_size=4, shuffle=True, steps=5,
                                        seed=3, device=torch.device("cpu"))
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(3))
    seen = [b[1].tolist() for b in adapter]
    assert seen == [perm[0:4].tolist(), perm[4:8].tolist(), perm[8:10].tolist(),
                    perm[2:6].tolist(), perm[6:10].tolist()]
