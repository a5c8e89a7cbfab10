"""Convolution layers against real Keras: outputs, weight layouts, shapes, configs, errors."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

import lamina
from lamina.layers import convolutional as C

RNG = np.random.RandomState(0)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _data(shape):
    return RNG.uniform(-1, 1, size=shape).astype("float32")


def _compare(name, input_shape, **kwargs):
    """Lamina layer `name` vs Keras's on one input; returns the lamina layer."""
    x = _data(input_shape)
    ref = getattr(keras.layers, name)(**kwargs)
    expected = _np(ref(x))
    layer = getattr(C, name)(**kwargs)
    layer(x)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in ref.get_weights()]
    layer.set_weights(ref.get_weights())
    out = layer(x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(_np(out), expected, atol=1e-5)
    for mine, theirs in zip(layer.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(mine, _np(theirs))
    # Symbolic shape inference, with a known and an unknown batch size.
    sym = getattr(C, name)(**kwargs)(lamina.Input(shape=input_shape[1:]))
    assert tuple(sym.shape) == tuple(ref.compute_output_shape((None,) + input_shape[1:]))
    return layer


CONV_CASES = [
    ("Conv1D", (2, 11, 3), dict(filters=4, kernel_size=3)),
    ("Conv1D", (2, 11, 3), dict(filters=4, kernel_size=4, strides=2, padding="same")),
    ("Conv1D", (2, 11, 3), dict(filters=4, kernel_size=3, padding="causal", dilation_rate=2)),
    ("Conv1D", (2, 10, 4), dict(filters=6, kernel_size=2, groups=2, padding="same")),
    ("Conv1D", (2, 3, 11), dict(filters=4, kernel_size=3, padding="causal",
                                data_format="channels_first", activation="relu")),
    ("Conv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=3)),
    ("Conv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=3, strides=2, padding="same")),
    ("Conv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=(4, 2), strides=2, padding="same")),
    ("Conv2D", (2, 9, 8, 3), dict(filters=5, kernel_size=4, padding="same", use_bias=False)),
    ("Conv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=3, dilation_rate=(2, 1),
                                  padding="same")),
    ("Conv2D", (2, 8, 8, 4), dict(filters=6, kernel_size=3, groups=2, activation="tanh")),
    ("Conv2D", (2, 3, 9, 8), dict(filters=4, kernel_size=(2, 3), strides=(2, 1),
                                  padding="same", data_format="channels_first")),
    ("Conv3D", (1, 6, 5, 7, 2), dict(filters=3, kernel_size=2, strides=2, padding="same")),
    ("Conv3D", (1, 2, 6, 5, 4), dict(filters=3, kernel_size=(3, 2, 2),
                                     data_format="channels_first")),
    ("Conv3D", (1, 5, 5, 5, 4), dict(filters=2, kernel_size=3, groups=2, padding="same",
                                     dilation_rate=2)),
]


@pytest.mark.parametrize("name,shape,kwargs", CONV_CASES)
def test_conv_matches_keras(name, shape, kwargs):
    _compare(name, shape, **kwargs)


DEPTHWISE_CASES = [
    ("DepthwiseConv1D", (2, 10, 3), dict(kernel_size=3, depth_multiplier=2)),
    ("DepthwiseConv1D", (2, 3, 10), dict(kernel_size=4, strides=2, padding="same",
                                         data_format="channels_first")),
    ("DepthwiseConv2D", (2, 9, 8, 3), dict(kernel_size=3, padding="same")),
    ("DepthwiseConv2D", (2, 9, 8, 3), dict(kernel_size=(2, 4), strides=2, padding="same",
                                           depth_multiplier=2)),
    ("DepthwiseConv2D", (2, 9, 8, 3), dict(kernel_size=3, dilation_rate=2, use_bias=False)),
    ("DepthwiseConv2D", (2, 3, 8, 7), dict(kernel_size=3, depth_multiplier=3,
                                           data_format="channels_first", activation="relu")),
    ("SeparableConv1D", (2, 10, 3), dict(filters=5, kernel_size=3, depth_multiplier=2)),
    ("SeparableConv1D", (2, 10, 3), dict(filters=4, kernel_size=2, strides=2, padding="same")),
    ("SeparableConv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=3, padding="same")),
    ("SeparableConv2D", (2, 9, 8, 3), dict(filters=4, kernel_size=4, strides=2, padding="same",
                                           depth_multiplier=2)),
    ("SeparableConv2D", (2, 3, 9, 8), dict(filters=4, kernel_size=3, dilation_rate=2,
                                           data_format="channels_first")),
]


@pytest.mark.parametrize("name,shape,kwargs", DEPTHWISE_CASES)
def test_depthwise_separable_match_keras(name, shape, kwargs):
    _compare(name, shape, **kwargs)


TRANSPOSE_CASES = [
    ("Conv1DTranspose", (2, 7, 3), dict(filters=4, kernel_size=3)),
    ("Conv1DTranspose", (2, 7, 3), dict(filters=4, kernel_size=3, strides=2, padding="same")),
    ("Conv1DTranspose", (2, 7, 3), dict(filters=4, kernel_size=4, strides=3, padding="valid",
                                        output_padding=2)),
    ("Conv1DTranspose", (2, 3, 7), dict(filters=2, kernel_size=2, strides=5,
                                        data_format="channels_first")),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=3)),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=3, strides=2,
                                           padding="same")),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=4, strides=2,
                                           padding="same")),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=4, padding="same")),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=(3, 4), strides=(2, 3),
                                           padding="same", output_padding=(1, 0))),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=4, kernel_size=5, strides=2,
                                           padding="same", output_padding=1)),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=2, kernel_size=3, dilation_rate=2,
                                           padding="same")),
    ("Conv2DTranspose", (2, 5, 6, 3), dict(filters=2, kernel_size=1, strides=3,
                                           padding="same", output_padding=2)),
    ("Conv2DTranspose", (2, 3, 5, 6), dict(filters=4, kernel_size=3, strides=2,
                                           data_format="channels_first", activation="relu")),
    ("Conv3DTranspose", (1, 3, 4, 2, 2), dict(filters=3, kernel_size=2, strides=2,
                                              padding="same")),
    ("Conv3DTranspose", (1, 2, 3, 4, 2), dict(filters=2, kernel_size=3, strides=(1, 2, 2),
                                              data_format="channels_first")),
]


@pytest.mark.parametrize("name,shape,kwargs", TRANSPOSE_CASES)
def test_conv_transpose_matches_keras(name, shape, kwargs):
    _compare(name, shape, **kwargs)


def test_conv_transpose_output_length_matches_keras():
    for n in (1, 4, 7):
        for k in (1, 2, 3, 4, 5):
            for s in (1, 2, 3):
                for d in ((1, 2) if s == 1 else (1,)):
                    for padding in ("valid", "same"):
                        for op in (None,) + tuple(range(s)):
                            ref = keras.layers.Conv1DTranspose(
                                1, k, strides=s, padding=padding, output_padding=op,
                                dilation_rate=d)
                            expected = ref.compute_output_shape((None, n, 1))[1]
                            assert C.conv_transpose.transpose_output_length(
                                n, k, s, d, padding, op) == expected, (n, k, s, d, padding, op)


def test_conv_transpose_windows_match_keras_for_many_sizes():
    # Every (input, kernel, stride, output_padding) combination of one axis, both paddings.
    for n, k, s, padding, op in [(4, 2, 1, "same", None), (4, 4, 1, "same", None),
                                 (4, 4, 1, "same", 0), (5, 3, 2, "same", 0),
                                 (5, 2, 3, "same", 2), (5, 5, 3, "same", 1),
                                 (3, 6, 2, "same", None), (3, 1, 2, "valid", None)]:
        _compare("Conv1DTranspose", (1, n, 2), filters=2, kernel_size=k, strides=s,
                 padding=padding, output_padding=op)


def test_aliases():
    assert C.Convolution1D is C.Conv1D and C.Convolution2D is C.Conv2D
    assert C.Convolution3D is C.Conv3D
    assert C.Convolution2DTranspose is C.Conv2DTranspose
    assert C.Convolution1DTranspose is C.Conv1DTranspose
    assert C.Convolution3DTranspose is C.Conv3DTranspose
    assert C.SeparableConvolution2D is C.SeparableConv2D


def test_weight_storage_is_what_torch_takes():
    layer = C.Conv2D(4, (3, 2), input_shape=(8, 8, 3))
    layer(_data((1, 8, 8, 3)))
    # Stored (filters, in, kh, kw) in channels_last memory, Keras (kh, kw, in, filters) outside.
    assert tuple(layer.kernel.shape) == (4, 3, 3, 2)
    assert layer.kernel.is_contiguous(memory_format=torch.channels_last)
    assert layer.get_weights()[0].shape == (3, 2, 3, 4)
    kernel = _data((3, 2, 3, 4))
    layer.set_weights([kernel, np.zeros(4, "float32")])
    np.testing.assert_array_equal(_np(layer.kernel), kernel.transpose(3, 2, 0, 1))
    assert layer.kernel.is_contiguous(memory_format=torch.channels_last)

    depthwise = C.DepthwiseConv2D(3, depth_multiplier=2)
    depthwise(_data((1, 5, 5, 4)))
    assert tuple(depthwise.kernel.shape) == (4, 2, 3, 3) and depthwise.kernel.is_contiguous()
    assert depthwise.get_weights()[0].shape == (3, 3, 4, 2)

    transpose = C.Conv2DTranspose(5, 3)
    transpose(_data((1, 4, 4, 2)))
    assert tuple(transpose.kernel.shape) == (2, 5, 3, 3)
    assert transpose.get_weights()[0].shape == (3, 3, 5, 2)

    first = C.Conv2D(4, 3, data_format="channels_first")
    first(_data((1, 3, 6, 6)))
    assert first.kernel.is_contiguous()


def test_channels_last_output_is_contiguous_without_copies():
    x = torch.rand(2, 9, 9, 3)
    for layer in (C.Conv2D(4, 3, padding="same"), C.Conv1D(4, 3, padding="same"),
                  C.Conv2D(4, 4, strides=2, padding="same"), C.Conv2DTranspose(4, 3, strides=2)):
        inputs = x if not isinstance(layer, C.Conv1D) else x[:, 0]
        out = layer(inputs)
        assert out.is_contiguous(), type(layer).__name__


def test_config_matches_keras_and_round_trips():
    pairs = [
        ("Conv2D", dict(filters=4, kernel_size=3, strides=2, padding="same", groups=1,
                        activation="relu", kernel_regularizer="l2")),
        ("Conv1D", dict(filters=2, kernel_size=5, padding="causal", dilation_rate=2)),
        ("Conv3D", dict(filters=2, kernel_size=(1, 2, 3), use_bias=False)),
        ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=2, bias_initializer="ones")),
        ("DepthwiseConv1D", dict(kernel_size=3)),
        ("SeparableConv2D", dict(filters=3, kernel_size=3, pointwise_initializer="he_normal")),
        ("SeparableConv1D", dict(filters=3, kernel_size=2)),
        ("Conv2DTranspose", dict(filters=3, kernel_size=3, strides=2, output_padding=1)),
        ("Conv1DTranspose", dict(filters=3, kernel_size=3)),
        ("Conv3DTranspose", dict(filters=3, kernel_size=3, padding="same")),
    ]
    for name, kwargs in pairs:
        mine = getattr(C, name)(**kwargs).get_config()
        theirs = getattr(keras.layers, name)(**kwargs).get_config()
        assert set(theirs) <= set(mine), (name, set(theirs) - set(mine))
        for key, value in theirs.items():
            if key in ("name", "dtype"):
                continue
            assert mine[key] == value, (name, key, mine[key], value)
        clone = getattr(C, name).from_config(mine)
        assert clone.get_config() == mine


def test_from_config_builds_same_numbers():
    layer = C.Conv2D(3, 3, strides=2, padding="same", activation="relu")
    x = _data((1, 7, 7, 2))
    y = layer(x)
    clone = C.Conv2D.from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(_np(clone(x)), _np(y), atol=1e-6)


def test_regularizer_sees_keras_layout():
    layer = C.SeparableConv2D(3, 2, depthwise_regularizer=lamina.regularizers.L1(0.5),
                              pointwise_regularizer=lamina.regularizers.L2(0.25))
    layer(_data((1, 4, 4, 2)))
    depthwise, pointwise, _ = layer.get_weights()
    expected = 0.5 * np.abs(depthwise).sum() + 0.25 * np.square(pointwise).sum()
    assert np.isclose(_np(sum(layer.losses)), expected, rtol=1e-5)


def _double(layer, shape):
    layer(torch.zeros(shape, dtype=torch.float64))
    return layer


@pytest.mark.parametrize("layer,shape", [
    (lambda: C.Conv2D(2, 4, strides=2, padding="same", dtype="float64"), (1, 5, 6, 2)),
    (lambda: C.Conv1D(2, 3, padding="causal", dtype="float64"), (1, 6, 2)),
    (lambda: C.SeparableConv2D(2, 2, padding="same", dtype="float64"), (1, 4, 4, 2)),
    (lambda: C.Conv2DTranspose(2, 4, padding="same", dtype="float64"), (1, 3, 4, 2)),
])
def test_gradients(layer, shape):
    layer = _double(layer(), shape)
    x = torch.rand(shape, dtype=torch.float64, requires_grad=True)
    params = [p for p in layer.parameters()]
    # gradcheck perturbs the parameters in place, so the layer sees every perturbation.
    assert torch.autograd.gradcheck(lambda x, *ws: layer(x), (x, *params), eps=1e-6,
                                    atol=1e-5, fast_mode=True)
    layer(x).square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in params)


def test_bad_inputs():
    layer = C.Conv2D(2, 3, name="my_conv")
    with pytest.raises(ValueError, match=r"my_conv.*expected ndim=4, found ndim=3"):
        layer(_data((2, 8, 3)))
    with pytest.raises(ValueError, match=r"my_conv.*expected ndim=4, found ndim=3"):
        C.Conv2D(2, 3, name="my_conv")(lamina.Input(shape=(8, 3)))
    layer(_data((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"my_conv.*expected ndim=4, found ndim=3"):
        layer(_data((2, 8, 3)))
    with pytest.raises(ValueError, match=r"my_conv.*axis -1.*value 3.*\(1, 8, 8, 5\)"):
        layer(_data((1, 8, 8, 5)))
    with pytest.raises(ValueError, match=r"small.*kernel size \(5, 5\).*\(3, 3\)"):
        C.Conv2D(2, 5, name="small")(_data((1, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"small2.*kernel size"):
        C.Conv2D(2, 5, name="small2")(lamina.Input(shape=(3, 3, 1)))
    with pytest.raises(ValueError, match=r"small3.*kernel size \(5,\)"):
        C.Conv1D(2, 3, dilation_rate=2, name="small3")(_data((1, 4, 1)))
    with pytest.raises(ValueError, match=r"pad.*'valid', 'same'.*padding='full'"):
        C.Conv2D(2, 3, padding="full", name="pad")
    with pytest.raises(ValueError, match=r"causal2d.*padding='causal'"):
        C.Conv2D(2, 3, padding="causal", name="causal2d")
    with pytest.raises(ValueError, match=r"fmt.*'channels_last', 'channels_first'.*"
                                         r"data_format='channels_middle'"):
        C.DepthwiseConv2D(3, data_format="channels_middle", name="fmt")
    with pytest.raises(ValueError, match=r"kernel_size"):
        C.Conv2D(2, (3, 3, 3))
    with pytest.raises(ValueError, match=r"filters"):
        C.Conv2D(0, 3)
    with pytest.raises(ValueError, match=r"groups"):
        C.Conv2D(3, 3, groups=2)
    with pytest.raises(ValueError, match=r"evenly divisible.*groups=2"):
        C.Conv2D(4, 3, groups=2)(_data((1, 5, 5, 3)))
    with pytest.raises(ValueError, match=r"output_padding.*strictly less than.*strides"):
        C.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(ValueError, match=r"dilation_rate"):
        C.Conv2D(2, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match=r"dilation_rate"):
        C.Conv2DTranspose(2, 3, strides=2, dilation_rate=2)


def test_one_layer_pads_each_input_size_as_keras():
    # An eager layer works its pads out again when the spatial size changes: odd and even
    # sizes need different "same" pads here.
    kwargs = dict(filters=3, kernel_size=4, strides=2, padding="same")
    ref, layer = keras.layers.Conv2D(**kwargs), C.Conv2D(**kwargs)
    ref.build((None, None, None, 2))
    layer.build((None, None, None, 2))
    layer.set_weights(ref.get_weights())
    for size in (9, 8, 9, 7, 7):
        x = _data((2, size, size + 1, 2))
        np.testing.assert_allclose(_np(layer(x)), _np(ref(x)), atol=1e-5)
    valid = C.Conv2D(2, 5, name="valid_after_big")
    valid(_data((1, 9, 9, 1)))
    with pytest.raises(ValueError, match=r"valid_after_big.*kernel size \(5, 5\).*\(3, 3\)"):
        valid(_data((1, 3, 3, 1)))
