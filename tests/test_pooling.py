"""Pooling layers against real Keras and against numpy window-by-window references."""
import itertools
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

import lamina
from lamina.layers import pooling as P

RNG = np.random.RandomState(1)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _data(shape):
    return RNG.uniform(-1, 1, size=shape).astype("float32")


def _compare(name, input_shape, **kwargs):
    x = _data(input_shape)
    ref = getattr(keras.layers, name)(**kwargs)
    expected = _np(ref(x))
    layer = getattr(P, name)(**kwargs)
    out = layer(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(_np(out), expected, atol=1e-5)
    assert layer.get_weights() == []
    sym = getattr(P, name)(**kwargs)(lamina.Input(shape=input_shape[1:]))
    assert tuple(sym.shape) == tuple(ref.compute_output_shape((None,) + input_shape[1:]))
    return layer


def _reference_pool(x, pool, strides, padding, mode, channels_last=True):
    """Window-by-window numpy pooling with Keras/TF semantics: padded cells never count."""
    if not channels_last:
        x = np.moveaxis(x, 1, -1)
    spatial = x.shape[1:-1]
    pads, outs = [], []
    for n, k, s in zip(spatial, pool, strides):
        if padding == "same":
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append(total // 2)
        else:
            out = (n - k) // s + 1
            pads.append(0)
        outs.append(out)
    y = np.zeros((x.shape[0],) + tuple(outs) + (x.shape[-1],), "float32")
    for index in itertools.product(*[range(o) for o in outs]):
        window = [slice(max(i * s - p, 0), min(i * s - p + k, n)) for i, s, p, k, n in
                  zip(index, strides, pads, pool, spatial)]
        cells = x[(slice(None),) + tuple(window)]
        cells = cells.reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None),) + index] = cells.max(1) if mode == "max" else cells.mean(1)
    return y if channels_last else np.moveaxis(y, -1, 1)


POOL_CASES = [
    ("MaxPooling1D", (2, 9, 3), dict()),
    ("MaxPooling1D", (2, 9, 3), dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling1D", (2, 3, 9), dict(pool_size=2, strides=1, padding="same",
                                     data_format="channels_first")),
    ("MaxPooling2D", (2, 7, 8, 3), dict()),
    ("MaxPooling2D", (2, 7, 8, 3), dict(pool_size=3, strides=2, padding="same")),
    ("MaxPooling2D", (2, 7, 8, 3), dict(pool_size=(2, 3), strides=(1, 2), padding="same")),
    ("MaxPooling2D", (2, 3, 7, 8), dict(pool_size=3, strides=1, data_format="channels_first")),
    ("MaxPooling3D", (1, 5, 4, 6, 2), dict(pool_size=2, padding="same")),
    ("MaxPooling3D", (1, 2, 5, 4, 6), dict(pool_size=(1, 2, 3), strides=1,
                                           data_format="channels_first")),
    ("AveragePooling1D", (2, 9, 3), dict(pool_size=2)),
    ("AveragePooling1D", (2, 9, 3), dict(pool_size=3, strides=1, padding="same")),
    ("AveragePooling2D", (2, 7, 8, 3), dict(pool_size=(2, 2))),
    ("AveragePooling2D", (2, 7, 8, 3), dict(pool_size=3, strides=1, padding="same")),
    ("AveragePooling2D", (2, 7, 8, 3), dict(pool_size=2, strides=1, padding="same")),
    ("AveragePooling2D", (2, 3, 7, 8), dict(pool_size=3, strides=2, padding="valid",
                                            data_format="channels_first")),
    ("AveragePooling3D", (1, 5, 4, 6, 2), dict(pool_size=2)),
    ("AveragePooling3D", (1, 5, 5, 5, 2), dict(pool_size=3, strides=1, padding="same")),
]


@pytest.mark.parametrize("name,shape,kwargs", POOL_CASES)
def test_pooling_matches_keras(name, shape, kwargs):
    _compare(name, shape, **kwargs)


@pytest.mark.parametrize("name,shape,pool,strides", [
    ("AveragePooling1D", (2, 4, 3), 3, 2),
    ("AveragePooling1D", (2, 8, 3), 4, 3),
    ("AveragePooling2D", (2, 6, 7, 3), (3, 2), (2, 2)),
    ("AveragePooling2D", (2, 8, 8, 3), 4, 1),
    ("AveragePooling3D", (1, 4, 5, 6, 2), 2, 2),
    ("MaxPooling2D", (2, 6, 7, 3), (3, 2), (2, 2)),
    ("MaxPooling3D", (1, 4, 5, 6, 2), 3, 2),
])
def test_same_padding_with_asymmetric_pads_excludes_padding(name, shape, pool, strides):
    # Keras's (TF/JAX) semantics: the average is over the real cells only. (The Keras torch
    # backend pads asymmetric windows by replicating the edge, which differs here; lamina
    # follows the TF/JAX numbers that trained Keras weights expect.)
    x = _data(shape)
    layer = getattr(P, name)(pool_size=pool, strides=strides, padding="same")
    rank = len(shape) - 2
    pool = (pool,) * rank if isinstance(pool, int) else pool
    strides = (strides,) * rank if isinstance(strides, int) else strides
    mode = "max" if name.startswith("Max") else "average"
    expected = _reference_pool(x, pool, strides, "same", mode)
    np.testing.assert_allclose(_np(layer(x)), expected, atol=1e-6)
    first = getattr(P, name)(pool_size=pool, strides=strides, padding="same",
                             data_format="channels_first")
    xf = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    np.testing.assert_allclose(_np(first(xf)), np.moveaxis(expected, -1, 1), atol=1e-6)


def test_reference_agrees_with_keras_on_symmetric_padding():
    # The numpy reference itself is checked against Keras where Keras's backends all agree.
    x = _data((2, 7, 8, 3))
    for mode, cls in (("average", keras.layers.AveragePooling2D),
                      ("max", keras.layers.MaxPooling2D)):
        expected = _np(cls(pool_size=3, strides=1, padding="same")(x))
        np.testing.assert_allclose(_reference_pool(x, (3, 3), (1, 1), "same", mode),
                                   expected, atol=1e-6)


GLOBAL_CASES = [
    (name, shape, dict(data_format=fmt, keepdims=keep))
    for name, shape in (("GlobalMaxPooling1D", (2, 5, 3)), ("GlobalAveragePooling1D", (2, 5, 3)),
                        ("GlobalMaxPooling2D", (2, 4, 5, 3)),
                        ("GlobalAveragePooling2D", (2, 4, 5, 3)),
                        ("GlobalMaxPooling3D", (2, 3, 4, 5, 2)),
                        ("GlobalAveragePooling3D", (2, 3, 4, 5, 2)))
    for fmt in ("channels_last", "channels_first") for keep in (False, True)
]


@pytest.mark.parametrize("name,shape,kwargs", GLOBAL_CASES)
def test_global_pooling_matches_keras(name, shape, kwargs):
    _compare(name, shape, **kwargs)


@pytest.mark.parametrize("data_format,keepdims", [("channels_last", False),
                                                  ("channels_first", True)])
def test_global_average_pooling1d_mask(data_format, keepdims):
    x = _data((3, 5, 4)) if data_format == "channels_last" else _data((3, 4, 5))
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 0]], bool)
    ref = keras.layers.GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims)
    expected = _np(ref(x, mask=mask))
    layer = P.GlobalAveragePooling1D(data_format=data_format, keepdims=keepdims)
    out = layer(torch.as_tensor(x), mask=torch.as_tensor(mask))
    np.testing.assert_allclose(_np(out), expected, atol=1e-6)
    if data_format == "channels_last":
        by_hand = (x * mask[:, :, None]).sum(1) / mask.sum(1)[:, None]
    else:
        by_hand = (x * mask[:, None, :]).sum(2) / mask.sum(1)[:, None]
    np.testing.assert_allclose(_np(out).reshape(3, 4), by_hand, atol=1e-6)
    assert layer.supports_masking and layer.compute_mask(x, mask) is None


def test_global_average_pooling1d_mask_from_embedding():
    from lamina.layers.core import Embedding
    ids = torch.tensor([[3, 4, 0, 0], [1, 2, 5, 0]])
    embed = Embedding(6, 3, mask_zero=True)
    pooled = P.GlobalAveragePooling1D()(embed(ids))
    vectors = _np(embed.embeddings)
    np.testing.assert_allclose(_np(pooled[0]), vectors[[3, 4]].mean(0), atol=1e-6)
    np.testing.assert_allclose(_np(pooled[1]), vectors[[1, 2, 5]].mean(0), atol=1e-6)


def test_aliases():
    assert P.MaxPool1D is P.MaxPooling1D and P.MaxPool2D is P.MaxPooling2D
    assert P.MaxPool3D is P.MaxPooling3D and P.AvgPool1D is P.AveragePooling1D
    assert P.AvgPool2D is P.AveragePooling2D and P.AvgPool3D is P.AveragePooling3D
    assert P.GlobalAvgPool2D is P.GlobalAveragePooling2D
    assert P.GlobalMaxPool2D is P.GlobalMaxPooling2D
    assert P.GlobalAvgPool1D is P.GlobalAveragePooling1D
    assert P.GlobalMaxPool3D is P.GlobalMaxPooling3D


def test_defaults_and_config_round_trip():
    assert P.MaxPooling2D().get_config()["strides"] == (2, 2)
    assert P.AveragePooling2D().pool_size == (2, 2)  # Keras 2's default, still accepted
    for name, kwargs in [("MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),
                         ("AveragePooling1D", dict(pool_size=2)),
                         ("MaxPooling3D", dict(data_format="channels_first")),
                         ("GlobalAveragePooling2D", dict(keepdims=True)),
                         ("GlobalMaxPooling1D", dict(data_format="channels_first"))]:
        mine = getattr(P, name)(**kwargs).get_config()
        theirs = getattr(keras.layers, name)(**kwargs).get_config()
        assert set(theirs) <= set(mine)
        for key in set(theirs) - {"name", "dtype"}:
            assert mine[key] == theirs[key], (name, key)
        assert getattr(P, name).from_config(mine).get_config() == mine


def test_gradients():
    x = torch.rand(1, 5, 6, 2, dtype=torch.float64, requires_grad=True)
    # float64 layers: a float32 layer casts its inputs to float32, as in Keras
    for layer in (P.AveragePooling2D(3, strides=2, padding="same", dtype="float64"),
                  P.MaxPooling2D(3, strides=2, padding="same", dtype="float64"),
                  P.GlobalAveragePooling2D(dtype="float64")):
        assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-5, fast_mode=True)
    P.AveragePooling2D(2, padding="same")(x).sum().backward()
    assert x.grad is not None


def test_channels_last_output_is_contiguous():
    x = torch.rand(2, 8, 8, 3)
    assert P.MaxPooling2D(3, strides=2, padding="same")(x).is_contiguous()
    assert P.AveragePooling2D(2)(x).is_contiguous()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"pool2d.*expected ndim=4, found ndim=3"):
        P.MaxPooling2D(name="pool2d")(_data((2, 8, 3)))
    pool = P.MaxPooling2D(name="checked_again")
    pool(_data((2, 8, 8, 3)))  # a good shape first: each new shape is checked again
    with pytest.raises(ValueError, match=r"checked_again.*expected ndim=4, found ndim=3"):
        pool(_data((2, 8, 3)))
    with pytest.raises(ValueError, match=r"checked_again.*pool size \(2, 2\).*\(1, 1\)"):
        pool(_data((2, 1, 1, 3)))
    with pytest.raises(ValueError, match=r"pool1d.*expected ndim=3"):
        P.MaxPooling1D(name="pool1d")(lamina.Input(shape=(4, 4, 3)))
    with pytest.raises(ValueError, match=r"big.*pool size \(5, 5\).*\(3, 3\)"):
        P.AveragePooling2D(5, name="big")(_data((1, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"big2.*pool size"):
        P.MaxPooling2D(4, name="big2")(lamina.Input(shape=(3, 8, 1)))
    with pytest.raises(ValueError, match=r"full.*'valid', 'same'.*padding='full'"):
        P.MaxPooling2D(padding="full", name="full")
    with pytest.raises(ValueError, match=r"fmt.*data_format='NHWC'"):
        P.GlobalMaxPooling2D(data_format="NHWC", name="fmt")
    with pytest.raises(ValueError, match=r"gap.*expected ndim=4, found ndim=2"):
        P.GlobalAveragePooling2D(name="gap")(_data((2, 3)))
    with pytest.raises(ValueError, match=r"pool_size"):
        P.MaxPooling2D(pool_size=(2, 2, 2))


@pytest.mark.parametrize("name", ["MaxPooling2D", "AveragePooling2D"])
def test_one_layer_pads_each_input_size(name):
    # Eager calls work the pads out again when the spatial size changes: odd and even sizes
    # need different (here asymmetric) "same" pads; checked against the window-by-window
    # reference, which holds Keras's TF/JAX numbers.
    layer = getattr(P, name)(pool_size=3, strides=2, padding="same")
    mode = "max" if name.startswith("Max") else "average"
    for size in (9, 8, 9, 7, 7):
        x = _data((2, size, size + 1, 3))
        np.testing.assert_allclose(_np(layer(x)), _reference_pool(x, (3, 3), (2, 2), "same", mode),
                                   atol=1e-6)
    valid = getattr(P, name)(pool_size=5, name="valid_after_big")
    valid(_data((1, 9, 9, 1)))
    with pytest.raises(ValueError, match=r"valid_after_big.*pool size \(5, 5\).*\(3, 3\)"):
        valid(_data((1, 3, 3, 1)))
