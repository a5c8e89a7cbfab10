"""ZeroPadding, Cropping and UpSampling layers against real Keras."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

import lamina
from lamina.layers import reshaping as R

RNG = np.random.RandomState(2)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _data(shape):
    return RNG.uniform(-1, 1, size=shape).astype("float32")


CASES = [
    ("ZeroPadding1D", (2, 5, 3), dict()),
    ("ZeroPadding1D", (2, 5, 3), dict(padding=(2, 0))),
    ("ZeroPadding1D", (2, 3, 5), dict(padding=(1, 3), data_format="channels_first")),
    ("ZeroPadding2D", (2, 4, 5, 3), dict()),
    ("ZeroPadding2D", (2, 4, 5, 3), dict(padding=2)),
    ("ZeroPadding2D", (2, 4, 5, 3), dict(padding=((0, 1), (2, 3)))),
    ("ZeroPadding2D", (2, 3, 4, 5), dict(padding=(1, 2), data_format="channels_first")),
    ("ZeroPadding3D", (1, 2, 3, 4, 2), dict()),
    ("ZeroPadding3D", (1, 2, 2, 3, 4), dict(padding=((0, 1), (2, 0), (1, 1)),
                                            data_format="channels_first")),
    ("Cropping1D", (2, 7, 3), dict()),
    ("Cropping1D", (2, 7, 3), dict(cropping=(2, 0))),
    ("Cropping1D", (2, 7, 3), dict(cropping=3)),
    ("Cropping2D", (2, 6, 7, 3), dict()),
    ("Cropping2D", (2, 6, 7, 3), dict(cropping=1)),
    ("Cropping2D", (2, 6, 7, 3), dict(cropping=((1, 2), (0, 3)))),
    ("Cropping2D", (2, 3, 6, 7), dict(cropping=(2, 1), data_format="channels_first")),
    ("Cropping3D", (1, 4, 5, 6, 2), dict()),
    ("Cropping3D", (1, 2, 4, 5, 6), dict(cropping=((0, 1), (2, 0), (1, 1)),
                                         data_format="channels_first")),
    ("UpSampling1D", (2, 4, 3), dict()),
    ("UpSampling1D", (2, 4, 3), dict(size=3)),
    ("UpSampling2D", (2, 3, 4, 2), dict()),
    ("UpSampling2D", (2, 3, 4, 2), dict(size=(3, 2))),
    ("UpSampling2D", (2, 2, 3, 4), dict(size=(1, 3), data_format="channels_first")),
    ("UpSampling2D", (2, 3, 4, 2), dict(interpolation="bilinear")),
    ("UpSampling2D", (2, 3, 4, 2), dict(size=(3, 2), interpolation="bilinear")),
    ("UpSampling2D", (2, 2, 3, 4), dict(size=(2, 3), interpolation="bilinear",
                                        data_format="channels_first")),
    ("UpSampling2D", (2, 3, 4, 2), dict(size=2, interpolation="bicubic")),
    ("UpSampling3D", (1, 2, 3, 2, 2), dict()),
    ("UpSampling3D", (1, 2, 2, 3, 2), dict(size=(1, 2, 3), data_format="channels_first")),
]


@pytest.mark.parametrize("name,shape,kwargs", CASES)
def test_matches_keras(name, shape, kwargs):
    x = _data(shape)
    ref = getattr(keras.layers, name)(**kwargs)
    expected = _np(ref(x))
    layer = getattr(R, name)(**kwargs)
    out = layer(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(_np(out), expected, atol=1e-5)
    assert layer.get_weights() == []
    sym = getattr(R, name)(**kwargs)(lamina.Input(shape=shape[1:]))
    assert tuple(sym.shape) == tuple(ref.compute_output_shape((None,) + shape[1:]))
    # Config: Keras's keys and values, and a round trip.
    mine, theirs = layer.get_config(), ref.get_config()
    assert set(theirs) <= set(mine)
    for key in set(theirs) - {"name", "dtype"}:
        assert mine[key] == theirs[key], (key, mine[key], theirs[key])
    assert getattr(R, name).from_config(mine).get_config() == mine


def test_known_numbers():
    x = torch.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    up = R.UpSampling2D(size=(2, 3))(x)[0, :, :, 0]
    assert up.tolist() == [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2],
                           [3, 3, 3, 4, 4, 4], [3, 3, 3, 4, 4, 4]]
    # Half-pixel-centre bilinear, as tf.image.resize: the edges clamp.
    row = R.UpSampling2D(size=(1, 2), interpolation="bilinear")(x)[0, 0, :, 0]
    np.testing.assert_allclose(_np(row), [1.0, 1.25, 1.75, 2.0])
    padded = R.ZeroPadding1D(padding=(1, 2))(torch.ones(1, 2, 1))[0, :, 0]
    assert padded.tolist() == [0, 1, 1, 0, 0]
    cropped = R.Cropping1D((1, 2))(torch.arange(6.0).reshape(1, 6, 1))[0, :, 0]
    assert cropped.tolist() == [1, 2, 3]


def test_cropping_is_a_view_and_gradients_flow():
    x = torch.rand(1, 6, 7, 3, requires_grad=True)
    out = R.Cropping2D(((1, 2), (3, 0)))(x)
    assert out._base is x
    total = (R.ZeroPadding2D(1)(out).sum() + R.UpSampling2D(interpolation="bilinear")(x).sum()
             + R.UpSampling3D()(x.unsqueeze(1)).sum())
    total.backward()
    grad = _np(x.grad)[0, :, :, 0]
    # The cropped window contributes 1, bilinear up-sampling 4 (sum preserved), nearest 3D 8.
    assert np.allclose(grad[1:4, 3:], 13.0) and np.allclose(grad[0], 12.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"pad2d.*expected ndim=4, found ndim=3"):
        R.ZeroPadding2D(name="pad2d")(_data((2, 5, 3)))
    with pytest.raises(ValueError, match=r"crop1d.*expected ndim=3"):
        R.Cropping1D(name="crop1d")(lamina.Input(shape=(4, 4, 3)))
    with pytest.raises(ValueError, match=r"crop2d.*smaller than.*size 4"):
        R.Cropping2D(((2, 2), (0, 0)), name="crop2d")(_data((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"crop_sym.*smaller"):
        R.Cropping2D(((1, 2), (0, 0)), name="crop_sym")(lamina.Input(shape=(3, 4, 1)))
    with pytest.raises(ValueError, match=r"up.*interpolation='area'"):
        R.UpSampling2D(interpolation="area", name="up")
    with pytest.raises(ValueError, match=r"fmt.*data_format='channels'"):
        R.UpSampling3D(data_format="channels", name="fmt")
    with pytest.raises(ValueError, match=r"padding"):
        R.ZeroPadding2D(padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"cropping"):
        R.Cropping3D(cropping=-1)
    with pytest.raises(TypeError, match=r"size"):
        R.UpSampling1D(size=(2,))
