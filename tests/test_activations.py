import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

from lamina import activations, layers

keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = np.concatenate([RNG.normal(0, 3, size=(4, 23)),
                    np.array([[-10.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 6.0, 10.0, 25.0, -25.0,
                               2.9, -2.9, 0.1, -0.1, 7.0, -7.0, 1.5, -1.5, 0.25, -0.25, 30.0]])],
                   axis=0).astype("float32")

CASES = [
    ("relu", {}), ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 6.0}),
    ("relu", {"max_value": 2.5}), ("relu", {"threshold": 0.5}),
    ("relu", {"negative_slope": 0.3, "max_value": 4.0, "threshold": 1.0}),
    ("relu", {"negative_slope": 0.3, "threshold": -1.0}),
    ("sigmoid", {}), ("softmax", {}), ("softmax", {"axis": 0}), ("softmax", {"axis": (0, 1)}),
    ("log_softmax", {}), ("log_softmax", {"axis": 0}), ("tanh", {}), ("elu", {}),
    ("elu", {"alpha": 0.5}), ("selu", {}), ("softplus", {}), ("softsign", {}), ("swish", {}),
    ("silu", {}), ("gelu", {}), ("gelu", {"approximate": True}), ("exponential", {}),
    ("hard_sigmoid", {}), ("hard_silu", {}), ("hard_swish", {}), ("linear", {}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}), ("relu6", {}), ("mish", {}),
    ("celu", {}), ("celu", {"alpha": 2.0}), ("glu", {}), ("tanh_shrink", {}), ("hard_tanh", {}),
    ("hard_shrink", {}), ("soft_shrink", {"threshold": 1.0}), ("log_sigmoid", {}),
    ("sparse_plus", {}), ("sparse_sigmoid", {}), ("squareplus", {}), ("squareplus", {"b": 1}),
    ("threshold", {"threshold": 0.5, "default_value": -2.0}),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_keras(name, kwargs):
    x = X[:, :22] if name == "glu" else X
    if name == "exponential":
        x = np.clip(x, -10, 10)
    expected = keras.ops.convert_to_numpy(getattr(keras.activations, name)(x, **kwargs))
    got = getattr(activations, name)(torch.from_numpy(x), **kwargs)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-6)


def _sparsemax_reference(row):
    # Martins & Astudillo (2016), Algorithm 1.
    z = np.sort(row)[::-1]
    cumsum = np.cumsum(z)
    k = np.arange(1, len(z) + 1)
    support = 1 + k * z > cumsum
    k_max = k[support][-1]
    tau = (cumsum[k_max - 1] - 1) / k_max
    return np.maximum(row - tau, 0)


def test_sparsemax():
    # Keras 3.15's sparsemax has a threshold bug (keras-team/keras#23425, fixed upstream in
    # #23469): its outputs do not sum to 1 when the support has more than one element. Lamina
    # computes the correct projection; compare with the paper's algorithm, and with Keras only
    # where the support has one element (there the two agree).
    got = activations.sparsemax(torch.from_numpy(X)).numpy()
    expected = np.stack([_sparsemax_reference(r.astype("float64")) for r in X])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(activations.sparsemax(torch.tensor([[0.0, 0.5, 1.0]])).numpy(),
                               [[0.0, 0.25, 0.75]], atol=1e-7)
    cols = activations.sparsemax(torch.from_numpy(X), axis=0).numpy()
    np.testing.assert_allclose(cols, np.stack([_sparsemax_reference(c) for c in X.T.astype("float64")], 1),
                               rtol=1e-6, atol=1e-6)
    one_hot_input = np.array([[1.0, 5.0, 2.0], [9.0, 0.0, -3.0]], "float32")
    np.testing.assert_allclose(
        activations.sparsemax(torch.from_numpy(one_hot_input)).numpy(),
        keras.ops.convert_to_numpy(keras.activations.sparsemax(one_hot_input)), atol=1e-7)


def test_hand_formulas():
    x = torch.tensor([-4.0, -1.0, 0.0, 2.0, 5.0])
    np.testing.assert_allclose(activations.hard_sigmoid(x).numpy(), [0, 1 / 3, 0.5, 5 / 6, 1], atol=1e-7)
    np.testing.assert_allclose(activations.relu(x, max_value=3.0).numpy(), [0, 0, 0, 2, 3])
    np.testing.assert_allclose(activations.relu(x, negative_slope=0.5, threshold=1.0).numpy(),
                               [-2.5, -1.0, -0.5, 2, 5])
    np.testing.assert_allclose(activations.leaky_relu(x).numpy(), [-0.8, -0.2, 0, 2, 5], atol=1e-7)
    assert activations.linear(x) is x


def test_numpy_and_int_inputs_become_float_tensors():
    out = activations.relu(np.array([-1, 2]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert out.tolist() == [0.0, 2.0]
    assert activations.sigmoid([0.0]).tolist() == [0.5]


def test_float64_preserved():
    x = torch.tensor([-1.0, 0.5], dtype=torch.float64)
    assert activations.gelu(x).dtype == torch.float64


def test_aliases_are_keras_aliases():
    assert activations.swish is activations.silu
    assert activations.hard_swish is activations.hard_silu


def test_get():
    assert activations.get(None) is activations.linear
    assert activations.get("relu") is activations.relu
    assert activations.get("swish") is activations.silu
    assert activations.get("hard_swish") is activations.hard_silu
    fn = lambda t: t * 2  # noqa: E731
    assert activations.get(fn) is fn
    assert activations.get({"module": "keras.activations", "class_name": "function",
                            "config": "tanh", "registered_name": None}) is activations.tanh


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "gelu", "swish", "silu",
                                  "hard_swish", "linear", "mish", "log_softmax", "selu"])
def test_serialize_matches_keras_and_round_trips(name):
    fn = activations.get(name)
    expected = keras.activations.serialize(keras.activations.get(name))
    assert activations.serialize(fn) == expected
    assert activations.deserialize(activations.serialize(fn)) is fn
    assert activations.get(activations.serialize(fn)) is fn


def test_keras_layer_config_activation_names_resolve():
    for name in ["relu", "sigmoid", "softmax", "tanh", "linear", "elu", "selu", "softplus",
                 "softsign", "exponential", "hard_sigmoid", "leaky_relu", "relu6", "gelu",
                 "silu", "mish", "log_softmax"]:
        layer = keras.layers.Dense(2, activation=name)
        stored = layer.get_config()["activation"]
        assert activations.get(stored).__name__ == keras.activations.get(stored).__name__


def test_custom_registered_activation_serializes_to_dict():
    from lamina.saving import object_registration

    def my_act(t):
        return t + 1

    object_registration._GLOBAL_CUSTOM_OBJECTS["LaminaTest>my_act"] = my_act
    object_registration._GLOBAL_CUSTOM_NAMES[my_act] = "LaminaTest>my_act"
    try:
        config = activations.serialize(my_act)
        assert config["class_name"] == "function"
        assert config["config"] == "LaminaTest>my_act"
        assert activations.deserialize(config) is my_act
    finally:
        object_registration._GLOBAL_CUSTOM_OBJECTS.pop("LaminaTest>my_act")
        object_registration._GLOBAL_CUSTOM_NAMES.pop(my_act)


def test_unknown_names():
    with pytest.raises(ValueError, match="Could not interpret activation function identifier") as e:
        activations.get("not_an_activation")
    assert "relu" in str(e.value) and "gelu" in str(e.value)
    with pytest.raises(ValueError, match="not_an_activation"):
        activations.deserialize("not_an_activation")
    with pytest.raises(ValueError, match="Could not interpret"):
        activations.get(3)


@pytest.mark.parametrize("make", [
    lambda act: layers.Dense(5, activation=act),
    lambda act: layers.Conv2D(4, 3, activation=act),
    lambda act: layers.SeparableConv2D(4, 3, activation=act),
    lambda act: layers.Conv2DTranspose(4, 3, activation=act),
])
def test_layer_relu_in_place_gives_the_out_of_place_values_and_gradients(make):
    """Layers run `relu` in place on their own output: same values and gradients as applying
    it after the layer, for the input and every weight."""
    x = torch.randn(3, 6, 6, 2)
    fused, plain = make("relu"), make(None)
    fused(x)
    plain(x)
    plain.set_weights(fused.get_weights())
    results = []
    for layer, after in ((fused, lambda t: t), (plain, torch.relu)):
        xi = x.clone().requires_grad_(True)
        out = after(layer(xi))
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        results.append([out.detach(), xi.grad] + [w.grad for w in layer.trainable_weights])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)
    assert bool((results[0][0] == 0).any())  # relu did cut something
