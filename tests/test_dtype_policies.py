"""Layers apply their own dtype policy as Keras's do: floating inputs are cast to the layer's
compute dtype and it computes in that dtype, whatever the global policy, checked against real
Keras (weights copied across)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import lamina  # noqa: E402

keras = pytest.importorskip("keras")

X = np.random.RandomState(0).rand(5, 4).astype("float32")


@pytest.fixture(autouse=True)
def float32_policies():
    yield
    lamina.mixed_precision.set_global_policy(None)
    keras.mixed_precision.set_global_policy("float32")


def float32_head(lib, policy="mixed_bfloat16"):
    """Keras's mixed precision guide: a mixed model whose last layers compute in float32."""
    lib.mixed_precision.set_global_policy(policy)
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(8, activation="relu"),
                           lib.layers.Dense(3, dtype="float32"),
                           lib.layers.Activation("softmax", dtype="float32")])


def mixed_layer(lib):
    """One mixed_float16 layer in a float32 model."""
    inputs = lib.Input((4,))
    hidden = lib.layers.Dense(8, dtype="mixed_float16")(inputs)
    return lib.Model(inputs, [hidden, lib.layers.Dense(2)(hidden)])


def float64_layer(lib):
    inputs = lib.Input((4,))
    hidden = lib.layers.Dense(3, dtype="float64")(inputs)
    return lib.Model(inputs, [hidden, lib.layers.Dense(2)(hidden)])


def float32_parts_in_mixed_model(lib):
    """A model and a layer made under float32, used in a model made under mixed_float16: they
    compute in float32 inside it."""
    inner_inputs = lib.Input((4,))
    inner = lib.Model(inner_inputs, lib.layers.Dense(3)(inner_inputs))
    lone = lib.layers.Dense(3)
    lib.mixed_precision.set_global_policy("mixed_float16")
    inputs = lib.Input((4,))
    a, b = inner(inputs), lone(inputs)
    return lib.Model(inputs, [a, b, lib.layers.Add()([a, b])])


def dtype_names(tensors):
    return [lamina.backend.standardize_dtype(t.dtype) for t in tensors]


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


@pytest.mark.parametrize("build", [float32_head, mixed_layer, float64_layer,
                                   float32_parts_in_mixed_model])
def test_layer_policies_give_keras_dtypes_and_values(build):
    reference = build(keras)
    model = build(lamina)
    model.set_weights(reference.get_weights())
    assert ([layer.compute_dtype for layer in model.layers]
            == [layer.compute_dtype for layer in reference.layers])
    assert dtype_names(model.outputs) == dtype_names(reference.outputs)  # symbolic
    expected = [np.asarray(t.detach().cpu().float()) for t in as_list(reference(X))]
    got = as_list(model(X))
    assert dtype_names(got) == dtype_names(as_list(reference(X)))
    for out, want in zip(got, expected):
        np.testing.assert_allclose(out.detach().float().numpy(), want, rtol=1e-2, atol=1e-3)


def test_inputs_of_another_float_dtype_are_cast_as_keras_casts_them():
    model = lamina.Sequential([lamina.Input((4,)), lamina.layers.Dense(3)])
    x = torch.from_numpy(X).double()
    assert model(x).dtype == torch.float32  # a float32 model
    assert model.layers[0](x).dtype == torch.float32  # a float32 layer
    functional = float64_layer(lamina)
    hidden, out = functional(x.half())
    assert (hidden.dtype, out.dtype) == (torch.float64, torch.float32)
    mask = torch.tensor([[True, False, True]])
    masked = torch.ones(1, 3, 4, dtype=torch.float64)
    masked._keras_mask = mask
    out = lamina.layers.Dense(2)(masked)
    assert out.dtype == torch.float32 and torch.equal(out._keras_mask, mask)  # mask kept


def test_a_float32_head_trains_in_a_mixed_float16_model():
    model = float32_head(lamina, "mixed_float16")
    model.compile(optimizer=lamina.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    y = X.argmax(1) % 3
    history = model.fit(X, y, epochs=30, batch_size=5, verbose=0)
    assert model(X).dtype == torch.float32
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]


def test_a_keras_mixed_model_file_loads_with_its_policies_and_numbers(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    reference = float32_head(keras, "mixed_float16")
    keras.mixed_precision.set_global_policy("float32")
    path = str(tmp_path / "mixed.keras")
    reference.save(path)
    model = lamina.models.load_model(path, compile=False)
    assert ([layer.dtype_policy.name for layer in model.layers]
            == [layer.dtype_policy.name for layer in reference.layers]
            == ["mixed_float16", "float32", "float32"])
    assert model.layers[0].kernel.dtype == torch.float32
    assert model.layers[0](X).dtype == torch.float16
    np.testing.assert_allclose(model.predict(X, verbose=0), reference.predict(X, verbose=0),
                               rtol=1e-2, atol=1e-3)
    again = str(tmp_path / "again.keras")
    model.save(again)  # and lamina writes the policies back
    assert ([layer.dtype_policy.name for layer in keras.models.load_model(again).layers]
            == ["mixed_float16", "float32", "float32"])


def test_dtype_policies_module_as_in_keras():
    policy = lamina.dtype_policies.get("mixed_bfloat16")
    assert (policy.compute_dtype, policy.variable_dtype) == ("bfloat16", "float32")
    assert lamina.dtype_policies.serialize(policy) == keras.dtype_policies.serialize(
        keras.dtype_policies.get("mixed_bfloat16"))
    assert lamina.dtype_policies.deserialize(
        keras.dtype_policies.serialize(keras.DTypePolicy("float16"))).name == "float16"
    assert lamina.dtype_policies.get(None).name == "float32"
    lamina.mixed_precision.set_dtype_policy("mixed_float16")
    assert lamina.mixed_precision.dtype_policy().name == "mixed_float16"
    assert isinstance(lamina.DTypePolicy("float32"), lamina.dtype_policies.DTypePolicy)
    with pytest.raises(ValueError, match="Cannot interpret `dtype` argument.*'int3'"):
        lamina.dtype_policies.get("int3")


def test_a_layer_keeps_the_policy_it_was_created_under():
    dtypes = []
    for lib in (lamina, keras):
        lib.mixed_precision.set_global_policy("mixed_bfloat16")
        built_mixed = lib.layers.Dense(2)
        lib.mixed_precision.set_global_policy("float32")
        built_plain = lib.layers.Dense(2)
        lib.mixed_precision.set_global_policy("mixed_bfloat16")
        dtypes.append([lamina.backend.standardize_dtype(layer(X).dtype)
                       for layer in (built_mixed, built_plain)]
                      + [layer.dtype_policy.name for layer in (built_mixed, built_plain)])
    assert dtypes[0] == dtypes[1] == ["bfloat16", "float32", "mixed_bfloat16", "float32"]


IMAGES = np.random.RandomState(1).rand(2, 6, 6, 3).astype("float32")
STEPS = np.random.RandomState(2).rand(2, 5, 4).astype("float32") - 0.5
VOLUMES = np.random.RandomState(3).rand(2, 4, 4, 4, 2).astype("float32")


def common_layers(lib):
    """name: (layer, its input)."""
    layers = lib.layers
    return {"Dense": (layers.Dense(3), STEPS), "Conv2D": (layers.Conv2D(2, 3), IMAGES),
            "BatchNormalization": (layers.BatchNormalization(), IMAGES),
            "LayerNormalization": (layers.LayerNormalization(), STEPS),
            "Embedding": (layers.Embedding(5, 2), np.array([[1, 2, 0]])),
            "LSTM": (layers.LSTM(3, return_sequences=True), STEPS), "GRU": (layers.GRU(3), STEPS),
            "SimpleRNN": (layers.SimpleRNN(2), STEPS), "Softmax": (layers.Softmax(), STEPS),
            "GlobalAveragePooling2D": (layers.GlobalAveragePooling2D(), IMAGES),
            "PReLU": (layers.PReLU(alpha_initializer="ones"), STEPS),
            "MaxPooling3D": (layers.MaxPooling3D(2), VOLUMES)}  # torch's CPU autocast: float32


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_common_layers_compute_in_the_mixed_dtype_as_keras_does(policy):
    """The recurrent layers included: their fused kernels run with the weights cast (torch's
    CPU float16 autocast makes its LSTM kernel fail)."""
    compute = policy[len("mixed_"):]
    built = []
    for lib in (lamina, keras):
        lib.mixed_precision.set_global_policy(policy)
        built.append(common_layers(lib))
    for name, (layer, x) in built[0].items():
        reference = built[1][name][0]
        expected = reference(x)
        assert str(expected.dtype).endswith(compute), name
        assert lamina.backend.standardize_dtype(layer(x).dtype) == compute, name
        if name in ("Dense", "LSTM", "GRU", "SimpleRNN", "PReLU"):  # same weights, same numbers
            layer.set_weights(reference.get_weights())
            np.testing.assert_allclose(layer(x).float().detach().numpy(),
                                       expected.float().detach().cpu().numpy(),
                                       rtol=3e-2, atol=3e-2)


def test_inputs_and_layer_input_dtype_as_in_keras():
    for lib in (lamina, keras):
        lib.mixed_precision.set_global_policy("float16")
        assert lib.Input((2,)).dtype == "float32"  # floatx's, whatever the policy
        assert lib.layers.Dense(2).input_dtype == "float16"
        lib.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_integer_inputs_into_dense_and_max_pooling_as_in_keras(policy):
    """Dense takes integer features; "same" max pooling pads integers with their lowest value."""
    counts = np.random.RandomState(4).randint(-9, 9, (2, 5, 5, 2)).astype("int32")
    results = []
    for lib in (keras, lamina):
        lib.mixed_precision.set_global_policy(policy)
        inputs = lib.Input((5, 5, 2), dtype="int32")
        pooled = lib.layers.MaxPooling2D(2, strides=1, padding="same")(inputs)
        model = lib.Model(inputs, [pooled, lib.layers.Dense(3)(inputs)])
        if results:
            model.set_weights(results[0][0].get_weights())
        results.append((model, model(counts)))
    (_, want), (model, got) = results
    assert [t.dtype for t in model.outputs] == ["int32", policy[-7:]]
    for out, expected in zip(got, want):
        assert out.dtype == expected.dtype
        np.testing.assert_allclose(out.detach().float().numpy(),
                                   expected.detach().float().cpu().numpy(), rtol=1e-3)
