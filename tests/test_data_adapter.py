"""How `fit`/`evaluate`/`predict` consume data, as Keras does: shuffled arrays gathered several
batches at a time and cut into views; `steps` carrying an epoch on where the last one stopped,
or ending it where the data runs out; empty data refused."""
import numpy as np
import pytest
import torch

import lamina as keras
from lamina import layers
from lamina.training import data_adapter

RAN_OUT = "ran out of data"
CPU = torch.device("cpu")


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


def _epochs(adapter, epochs):
    """Each epoch's batches as lists of the `y` values (sample indices) they hold."""
    seen = []
    for _ in range(epochs):
        seen.append([b[1].tolist() for b in adapter])
        adapter.on_epoch_end()
    return seen


@pytest.mark.parametrize("gather_bytes", [1, 2 ** 20])
def test_steps_per_epoch_carries_on_through_the_shuffled_pass(monkeypatch, gather_bytes):
    """20 samples, batches of 8, 2 steps an epoch: epoch 1 runs the pass's last 4 samples (and
    warns), epoch 2 starts a new pass in a new order."""
    monkeypatch.setattr(data_adapter, "GATHER_BYTES", gather_bytes)
    x, y, _ = _rows(20)
    adapter = data_adapter.ArrayAdapter(x["b"], y, batch_size=8, shuffle=True, steps=2, seed=3,
                                        device=CPU)
    draws = torch.Generator().manual_seed(3)
    first, second = (torch.randperm(20, generator=draws).tolist() for _ in range(2))
    with pytest.warns(UserWarning, match=RAN_OUT):
        seen = _epochs(adapter, 4)
    assert seen == [[first[0:8], first[8:16]], [first[16:20]],
                    [second[0:8], second[8:16]], [second[16:20]]]


def test_an_evaluation_without_on_epoch_end_starts_from_the_first_batch():
    x, y, _ = _rows(20)
    adapter = data_adapter.ArrayAdapter(x["b"], y, batch_size=5, steps=1, device=CPU)
    assert [[b[1].tolist() for b in adapter] for _ in range(2)] == [[list(range(5))]] * 2


def test_steps_beyond_the_arrays_stop_at_their_end():
    x, y, _ = _rows(20)
    adapter = data_adapter.ArrayAdapter(x["b"], y, batch_size=8, steps=4, device=CPU)
    with pytest.warns(UserWarning, match=RAN_OUT):
        seen = _epochs(adapter, 2)
    every = [list(range(0, 8)), list(range(8, 16)), list(range(16, 20))]
    assert seen == [every, every]
    # Without a batch size, `steps` sets it: ceil(20 / 3) = 7.
    adapter = data_adapter.ArrayAdapter(x["b"], y, steps=3, device=CPU)
    assert [len(b[1]) for b in adapter] == [7, 7, 6]


def test_a_shuffled_pydataset_serves_its_batches_in_a_new_order_each_pass():
    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.full((2, 1), i, "float32"), np.full((2,), i)

    adapter = data_adapter.IterableAdapter(Batches(), steps=3, shuffle=True, seed=5, device=CPU)
    draws = torch.Generator().manual_seed(5)
    first, second = (torch.randperm(4, generator=draws).tolist() for _ in range(2))
    with pytest.warns(UserWarning, match=RAN_OUT):
        seen = _epochs(adapter, 3)
    assert seen == [[[i, i] for i in first[0:3]], [[first[3]] * 2],
                    [[i, i] for i in second[0:3]]]


# ---------------------------------------------------------------------- through the model
N = 20
X = np.zeros((N, 2), "float32")
Y = np.arange(N, dtype="float32")[:, None]


def _index_model():
    """Predicts 0 and never learns: with y = sample index, a batch's mae is its mean index."""
    model = keras.Sequential([keras.Input((2,)),
                              layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mae")
    return model


def _mean_index(*ranges):
    return float(np.mean([i for r in ranges for i in r]))


class _Fives(keras.utils.PyDataset):
    """Batches 0-4, 5-9, 10-14, 15-19."""

    def __init__(self, batches=4):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, i):
        return X[i * 5:i * 5 + 5], Y[i * 5:i * 5 + 5]


def _fives(batches=4):
    for i in range(batches):
        yield X[i * 5:i * 5 + 5], Y[i * 5:i * 5 + 5]


def _fit_losses(x, y=None, **kwargs):
    history = _index_model().fit(x, y, verbose=0, shuffle=False, **kwargs)
    return history.history


def test_fit_epochs_run_the_batches_keras_runs():
    """Epoch losses (sample means of the indices trained on), as in Keras 3."""
    with pytest.warns(UserWarning, match=RAN_OUT):
        losses = _fit_losses(X, Y, batch_size=8, steps_per_epoch=2, epochs=3)["loss"]
    assert losses == pytest.approx([_mean_index(range(16)), _mean_index(range(16, 20)),
                                    _mean_index(range(16))])
    with pytest.warns(UserWarning, match=RAN_OUT):  # 4 steps asked, 3 batches there
        assert _fit_losses(X, Y, batch_size=8, steps_per_epoch=4, epochs=2)["loss"] == (
            pytest.approx([_mean_index(range(20))] * 2))
    carried = [_mean_index(range(15)), _mean_index(range(15, 20)), _mean_index(range(15))]
    with pytest.warns(UserWarning, match=RAN_OUT):
        assert _fit_losses(_Fives(), steps_per_epoch=3, epochs=3)["loss"] == pytest.approx(carried)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(Y)), batch_size=5)
    with pytest.warns(UserWarning, match=RAN_OUT):
        assert _fit_losses(loader, steps_per_epoch=3, epochs=3)["loss"] == pytest.approx(carried)
    # A used-up generator serves again the two batches read up front, as Keras's does.
    with pytest.warns(UserWarning, match=RAN_OUT):
        assert _fit_losses(_fives(), epochs=3)["loss"] == pytest.approx(
            [_mean_index(range(20)), _mean_index(range(10)), _mean_index(range(10))])


def test_validation_starts_from_the_first_batch_each_epoch():
    history = _fit_losses(X, Y, batch_size=20, epochs=2, validation_data=(X, Y),
                          validation_batch_size=5, validation_steps=1)
    assert history["val_loss"] == pytest.approx([_mean_index(range(5))] * 2)
    history = _fit_losses(X, Y, batch_size=20, epochs=2, validation_data=_Fives(),
                          validation_steps=3)
    assert history["val_loss"] == pytest.approx([_mean_index(range(15))] * 2)
    history = _fit_losses(X, Y, batch_size=20, epochs=2, validation_data=_fives(),
                          validation_steps=2)
    assert history["val_loss"] == pytest.approx([_mean_index(range(10))] * 2)


def test_evaluate_and_predict_stop_where_the_arrays_end():
    model = _index_model()
    with pytest.warns(UserWarning, match=RAN_OUT):
        assert model.evaluate(X, Y, batch_size=5, steps=6, verbose=0) == pytest.approx(
            _mean_index(range(20)))
    with pytest.warns(UserWarning, match=RAN_OUT):
        np.testing.assert_array_equal(model.predict(X, batch_size=5, steps=6, verbose=0),
                                      np.zeros((20, 1), "float32"))
    assert model.evaluate(X, Y, batch_size=5, steps=2, verbose=0) == pytest.approx(
        _mean_index(range(10)))


def test_empty_data_raises():
    model = _index_model()
    for call in (lambda: model.fit(X[:0], Y[:0], verbose=0),
                 lambda: model.evaluate(X[:0], Y[:0], verbose=0)):
        with pytest.raises(ValueError, match=r"no samples.*x of shape \(0, 2\), "
                                             r"y of shape \(0, 1\)"):
            call()
    with pytest.raises(ValueError, match=r"no samples.*x of shape \(0, 2\)$"):
        model.predict(X[:0], verbose=0)
    with pytest.raises(ValueError, match="yields no batches.*Received: <generator"):
        model.fit(_fives(0), verbose=0)
    used_up = _fives()
    with pytest.warns(UserWarning, match=RAN_OUT):  # at its end, as in Keras
        assert model.evaluate(used_up, verbose=0) == pytest.approx(_mean_index(range(20)))
    with pytest.raises(ValueError, match="yields no batches"):
        model.evaluate(used_up, verbose=0)
    with pytest.raises(ValueError, match="yields no batches.*_Fives"):
        model.predict(_Fives(0), verbose=0)

    class Nothing(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(())

    with pytest.raises(ValueError, match="yields no batches.*DataLoader"):
        model.evaluate(torch.utils.data.DataLoader(Nothing(), batch_size=None), verbose=0)


def test_empty_validation_data_skips_validation_as_in_keras():
    history = _fit_losses(X, Y, batch_size=20, epochs=1, validation_data=(X[:0], Y[:0]))
    assert "val_loss" not in history


def test_a_none_target_for_an_output_without_a_loss():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, [keras.layers.Dense(1, kernel_initializer="ones")(inputs),
                                 keras.layers.Dense(1)(inputs)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=["mse", None])
    expected = float(np.mean((X.sum(1) - Y[:, 0]) ** 2))
    assert model.evaluate(X, [Y, None], verbose=0) == pytest.approx(expected, rel=1e-6)
    history = model.fit(X, [Y, None], batch_size=20, verbose=0).history
    assert history["loss"] == pytest.approx([expected], rel=1e-6)


def test_a_string_is_not_data():
    with pytest.raises(ValueError, match="Unrecognized data type: x='abc'"):
        _index_model().predict("abc", verbose=0)
