"""The symbolic graph: layers, nodes, functional and sequential models, subclassing."""
import gc
import os
import weakref

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")

import lamina as keras  # noqa: E402
from keras_reference import to_numpy  # noqa: E402
from lamina import layers  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_names():
    keras.backend.clear_session()


def seed_multi_io_model(lib):
    """The seed's multi-input, multi-output headline model (smaller sizes)."""
    L = lib.layers
    main_input = L.Input(shape=(10,), dtype="int32", name="main_input")
    x = L.Embedding(output_dim=8, input_dim=50)(main_input)
    lstm_out = L.LSTM(4)(x) if hasattr(L, "LSTM") else L.Flatten()(x)
    auxiliary_output = L.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = L.Input(shape=(5,), name="aux_input")
    x = L.concatenate([lstm_out, auxiliary_input])
    x = L.Dense(6, activation="relu")(x)
    x = L.Dense(6, activation="relu")(x)
    x = L.Dense(6, activation="relu")(x)
    main_output = L.Dense(1, activation="sigmoid", name="main_output")(x)
    return lib.Model(inputs=[main_input, auxiliary_input], outputs=[main_output, auxiliary_output])


def test_auto_names_and_clear_session():
    assert [layers.Dense(1).name for _ in range(3)] == ["dense", "dense_1", "dense_2"]
    assert layers.BatchNormalization().name == "batch_normalization" if hasattr(
        layers, "BatchNormalization") else True
    keras.backend.clear_session()
    assert layers.Dense(1).name == "dense"
    assert keras.Input((3,)).name == "input_layer"
    assert keras.Input((3,)).name == "input_layer_1"


def test_functional_layer_order_matches_keras():
    if not hasattr(layers, "LSTM"):
        pytest.skip("LSTM not available yet")
    model = seed_multi_io_model(keras)
    assert [l.name for l in model.layers] == [
        "main_input", "embedding", "lstm", "aux_input", "concatenate", "dense", "dense_1",
        "dense_2", "main_output", "aux_output"]
    assert model.output_names == ["main_output", "aux_output"]


def test_get_weights_order_and_predict_equal_real_keras():
    real = pytest.importorskip("keras")
    if not hasattr(layers, "LSTM"):
        pytest.skip("LSTM not available yet")
    real.utils.clear_session()
    theirs = seed_multi_io_model(real)
    ours = seed_multi_io_model(keras)
    assert [l.name for l in ours.layers] == [l.name for l in theirs.layers]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())
    rng = np.random.RandomState(0)
    data = [rng.randint(1, 50, size=(4, 10)).astype("int32"), rng.rand(4, 5).astype("float32")]
    for a, b in zip(ours.predict(data, verbose=0), theirs.predict(data, verbose=0)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_symbolic_shapes_and_output_values():
    inputs = keras.Input(shape=(784,))
    x = layers.Dense(64, activation="relu")(inputs)
    outputs = layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    assert outputs.shape == (None, 10)
    assert model.name == "functional"
    x = np.random.rand(3, 784).astype("float32")
    kernel0, bias0, kernel1, bias1 = model.get_weights()
    expected = np.maximum(x @ kernel0 + bias0, 0) @ kernel1 + bias1
    expected = np.exp(expected) / np.exp(expected).sum(-1, keepdims=True)
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert model.count_params() == 784 * 64 + 64 + 64 * 10 + 10


def test_keras2_aliases_and_errors():
    a = keras.Input((4,))
    out = layers.Dense(2)(a)
    model = keras.Model(input=a, output=out)
    assert model.inputs[0] is a
    with pytest.raises(ValueError, match="expects 1 input"):
        model([np.zeros((1, 4)), np.zeros((1, 4))])
    b = keras.Input((4,))
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(b, out)


def test_layer_nodes_get_output_at():
    a = keras.Input(shape=(7, 6))
    b = keras.Input(shape=(7, 6))
    shared = layers.Dense(3)
    encoded_a = shared(a)
    encoded_b = shared(b)
    assert shared.get_output_at(0) is encoded_a
    assert shared.get_output_at(1) is encoded_b
    assert shared.get_input_at(1) is b
    assert shared.get_output_shape_at(1) == (None, 7, 3)
    with pytest.raises(AttributeError, match="multiple inbound nodes"):
        shared.output
    with pytest.raises(ValueError, match="only 2 inbound nodes"):
        shared.get_output_at(2)
    single = layers.Dense(2)
    y = single(a)
    assert single.output is y and single.output_shape == (None, 7, 2) and single.input is a
    with pytest.raises(AttributeError, match="never been called"):
        layers.Dense(2).output


def test_sequential_forms_and_pop():
    model = keras.Sequential()
    model.add(layers.Dense(units=16, activation="relu", input_dim=8))
    model.add(layers.Dense(units=4, activation="softmax"))
    assert model.built and model.output_shape == (None, 4)
    assert [l.name for l in model.layers] == ["dense", "dense_1"]
    deferred = keras.Sequential([layers.Dense(5), layers.Activation("relu")])
    assert not deferred.built
    out = deferred(np.ones((2, 3), "float32"))
    assert tuple(out.shape) == (2, 5) and deferred.built
    assert deferred.inputs[0].shape == (None, 3)
    popped = model.pop()
    assert popped.name == "dense_1" and model.output_shape == (None, 16)
    with_input = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    assert with_input.input_shape == (None, 3)
    with pytest.raises(ValueError, match="unique names"):
        keras.Sequential([layers.Dense(2, name="x"), layers.Dense(2, name="x")])


def test_nested_models_and_models_as_layers():
    inner_in = keras.Input((4,))
    inner = keras.Model(inner_in, layers.Dense(3)(inner_in), name="inner")
    outer_in = keras.Input((4,))
    outer = keras.Model(outer_in, layers.Dense(1)(inner(outer_in)))
    assert [l.name for l in outer.layers][1] == "inner"
    assert len(outer.get_weights()) == 4
    x = np.random.rand(2, 4).astype("float32")
    kernel, bias = outer.layers[2].get_weights()
    np.testing.assert_allclose(outer(x).detach().numpy(),
                               inner(x).detach().numpy() @ kernel + bias, rtol=1e-5)


def test_subclassed_model_tracks_attributes_and_losses():
    class SimpleMLP(keras.Model):
        def __init__(self, num_classes=3):
            super().__init__(name="mlp")
            self.blocks = [layers.Dense(4, activation="relu"), layers.Dense(4)]
            self.head = layers.Dense(num_classes, activation="softmax")

        def call(self, inputs, training=None):
            x = inputs
            for block in self.blocks:
                x = block(x)
            self.add_loss(0.5 * torch.sum(x ** 2))
            return self.head(x)

    model = SimpleMLP()
    out = model(np.ones((2, 5), "float32"))
    assert tuple(out.shape) == (2, 3)
    assert len(model.trainable_weights) == 6
    assert len(list(model.parameters())) == 6
    assert len(model.losses) == 1
    with pytest.raises(NotImplementedError, match="subclassed"):
        model.get_config()


def test_trainable_flag_and_weights():
    dense = layers.Dense(3)
    dense.build((None, 2))
    assert len(dense.trainable_weights) == 2
    dense.trainable = False
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    assert not dense.kernel.requires_grad
    with pytest.raises(ValueError, match="expecting 2 weights"):
        dense.set_weights([np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        dense.set_weights([np.zeros((3, 3)), np.zeros(3)])


def test_wrong_input_rank_and_unknown_kwargs():
    with pytest.raises(ValueError, match="Unrecognized keyword arguments passed to Dense"):
        layers.Dense(3, foo=1)
    dense = layers.Dense(3)
    with pytest.raises(ValueError, match="expected min_ndim=2"):
        dense(keras.Input(shape=()))
    with pytest.raises(ValueError, match="positive integer"):
        layers.Dense(0)


def test_core_layers_shapes_and_values():
    x = keras.Input((2, 3))
    assert layers.Flatten()(x).shape == (None, 6)
    assert layers.Reshape((3, 2))(x).shape == (None, 3, 2)
    assert layers.Reshape((-1,))(x).shape == (None, 6)
    assert layers.Permute((2, 1))(x).shape == (None, 3, 2)
    assert layers.RepeatVector(4)(keras.Input((5,))).shape == (None, 4, 5)
    data = np.arange(12, dtype="float32").reshape(2, 2, 3)
    np.testing.assert_array_equal(layers.Permute((2, 1))(data).numpy(), data.transpose(0, 2, 1))
    lam = layers.Lambda(lambda t, k: t * k, arguments={"k": 2.0})
    np.testing.assert_array_equal(lam(data).numpy(), data * 2)
    drop = layers.Dropout(0.5)
    np.testing.assert_array_equal(drop(data).numpy(), data)  # inference by default
    torch.manual_seed(0)
    trained = drop(torch.ones(1000), training=True)
    assert set(np.unique(trained.numpy())) <= {0.0, 2.0}
    assert 400 < int((trained == 0).sum()) < 600
    with pytest.raises(ValueError, match="total size"):
        layers.Reshape((4, 4))(x)


def test_embedding_mask_and_masking():
    emb = layers.Embedding(10, 3, mask_zero=True)
    ids = np.array([[1, 2, 0, 0]])
    out = emb(ids)
    np.testing.assert_array_equal(out._keras_mask.numpy(), [[True, True, False, False]])
    np.testing.assert_allclose(out[0, 1].detach().numpy(), emb.get_weights()[0][2])
    masking = layers.Masking(mask_value=0.0)
    seq = np.array([[[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]]], "float32")
    masked = masking(seq)
    np.testing.assert_array_equal(masked._keras_mask.numpy(), [[True, False, True]])
    legacy = layers.Embedding(10, 3, input_length=4)
    assert legacy._batch_input_shape == (None, 4)


@pytest.mark.parametrize("merge, kwargs", [
    ("Add", {}), ("Subtract", {}), ("Multiply", {}), ("Average", {}), ("Maximum", {}),
    ("Minimum", {}), ("Concatenate", {}), ("Concatenate", {"axis": 1})])
@pytest.mark.parametrize("masked", ["both", "first"])
def test_merge_layers_values_and_masks_match_real_keras(merge, kwargs, masked):
    """Masked inputs (padded steps), eager and in a functional model: values and output mask
    as Keras 3 gives them (masks OR-ed; Maximum, Minimum and Multiply skip masked steps)."""
    real = pytest.importorskip("keras")
    rng = np.random.RandomState(0)
    a, b = rng.randn(2, 4, 3).astype("float32"), rng.randn(2, 4, 3).astype("float32")
    a[0, 1], a[1, 3], b[0, 1], b[0, 2] = 0, 0, 0, 0
    results = {}
    for name, K in (("lamina", keras), ("keras", real)):
        inputs = [K.Input((4, 3)), K.Input((4, 3))]
        masking = [K.layers.Masking()(inputs[0]),
                   K.layers.Masking()(inputs[1]) if masked == "both" else inputs[1]]
        model = K.Model(inputs, getattr(K.layers, merge)(**kwargs)(masking))
        eager = getattr(K.layers, merge)(**kwargs)(
            [K.layers.Masking()(a), K.layers.Masking()(b) if masked == "both" else b])
        results[name] = []
        for out in (model([a, b]), eager):
            mask = getattr(out, "_keras_mask", None)
            results[name].append((to_numpy(out), None if mask is None else to_numpy(mask)))
    for (ours, our_mask), (theirs, their_mask) in zip(results["lamina"], results["keras"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
        assert (our_mask is None) == (their_mask is None)
        if our_mask is not None:
            np.testing.assert_array_equal(our_mask, their_mask)


def test_functional_model_runs_merge_nodes_on_lists_tuples_and_repeated_tensors():
    """A node called on one list of tensors (the fast path), on a tuple and on the same tensor
    twice gets its inputs in the order it was built with."""
    a, b = keras.Input((2,)), keras.Input((2,))
    doubled = layers.Add()([a, a])
    joined = layers.Concatenate()((b, doubled))
    outputs = layers.Subtract()([joined, layers.Concatenate()([doubled, b])])
    model = keras.Model([a, b], [doubled, joined, outputs])
    x, y = np.array([[1.0, 2.0]], "float32"), np.array([[10.0, 20.0]], "float32")
    got = [t.numpy() for t in model([x, y])]
    np.testing.assert_array_equal(got[0], [[2.0, 4.0]])
    np.testing.assert_array_equal(got[1], [[10.0, 20.0, 2.0, 4.0]])
    np.testing.assert_array_equal(got[2], [[8.0, 16.0, -8.0, -16.0]])


def test_merge_layers_values():
    a = np.array([[1.0, 5.0]], "float32")
    b = np.array([[3.0, 2.0]], "float32")
    np.testing.assert_array_equal(layers.add([a, b]).numpy(), a + b)
    np.testing.assert_array_equal(layers.subtract([a, b]).numpy(), a - b)
    np.testing.assert_array_equal(layers.multiply([a, b]).numpy(), a * b)
    np.testing.assert_array_equal(layers.average([a, b]).numpy(), (a + b) / 2)
    np.testing.assert_array_equal(layers.maximum([a, b]).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal(layers.minimum([a, b]).numpy(), np.minimum(a, b))
    np.testing.assert_array_equal(layers.concatenate([a, b]).numpy(), np.concatenate([a, b], -1))
    np.testing.assert_allclose(layers.dot([a, b], axes=1).numpy(), [[13.0]])
    with pytest.raises(ValueError, match="should be called on a list"):
        layers.Add()(keras.Input((2,)))
    with pytest.raises(ValueError, match="matching shapes"):
        layers.Concatenate(axis=1)([keras.Input((2, 3)), keras.Input((4, 5))])


def test_calls_place_inputs_on_the_device_of_the_weights():
    # 'meta' stands in for a GPU: symbolic builds probe on the weights' device, and arrays or
    # tensors from elsewhere move there on the outermost call, as Keras moves them.
    keras.backend.clear_session()
    keras.backend.set_device("meta")
    try:
        model = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(3, 3),
                                  layers.BatchNormalization(), layers.Flatten(), layers.Dense(2)])
        mha = layers.MultiHeadAttention(num_heads=2, key_dim=3)
        query = torch.rand(2, 4, 5)
        attended = mha(query, query.numpy(), attention_mask=torch.ones(2, 4, 4, dtype=torch.bool))
    finally:
        keras.backend.set_device(None)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model(np.ones((2, 6, 6, 2), "float32")).device.type == "meta"
    assert model(torch.ones(2, 6, 6, 2)).device.type == "meta"
    assert attended.device.type == "meta"
    dense = keras.Sequential([keras.Input((3,)), layers.Dense(2)]).to("meta")
    assert dense(torch.ones(1, 3)).device.type == "meta"  # a moved model takes its inputs along


class _Probe(layers.Layer):
    """Keeps weak references to the tensors it returns (the outputs it passes along)."""

    def __init__(self, probes, **kwargs):
        super().__init__(**kwargs)
        self.probes = probes

    def call(self, x):
        out = x * 1.0
        self.probes.append(weakref.ref(out))
        return out


class _Alive(layers.Layer):
    """Records, when called, which probed tensors are still alive."""

    def __init__(self, probes, seen, **kwargs):
        super().__init__(**kwargs)
        self.probes, self.seen = probes, seen

    def call(self, x):
        self.seen.append([ref() is not None for ref in self.probes])
        return x


@pytest.mark.parametrize("training", [False, True])
def test_functional_forward_frees_each_tensor_after_its_last_use(training):
    # A residual sum: the probed tensor's only reader is the Add. With the garbage collector
    # off, it must be gone by the time the next layers run (a hand-written forward drops it
    # there too), unless it is a model output or autograd saved it for the backward pass.
    probes, seen = [], []
    inputs = keras.Input((4,))
    merged = layers.Add()([_Probe(probes)(inputs), layers.Dense(4)(inputs)])
    out = _Alive(probes, seen)(layers.Dense(4)(merged))
    model = keras.Model(inputs, [out, _Probe(probes)(out)])
    probes.clear()
    seen.clear()
    gc.collect()
    gc.disable()
    try:
        with torch.inference_mode(not training):
            results = model(np.ones((2, 4), "float32"), training=training)
    finally:
        gc.enable()
    assert seen == [[False]]
    assert probes[1]() is results[1]  # outputs stay


def test_fit_predict_and_evaluate_leave_no_reference_cycles():
    # Every tensor of a step is freed by reference counting, not left for the cyclic garbage
    # collector (which on a large model held all of a forward pass's activations at once).
    inputs = keras.Input((6,))
    hidden = layers.Dense(6, activation="relu")(inputs)
    merged = layers.concatenate([layers.add([hidden, layers.Dense(6)(hidden)]), inputs])
    model = keras.Model(inputs, layers.Dense(3, activation="softmax")(merged))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.rand(16, 6).astype("float32"), np.random.randint(0, 3, 16)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    gc.collect()
    gc.disable()
    try:
        model.fit(x, y, batch_size=4, epochs=2, verbose=0)
        model.predict(x, batch_size=4, verbose=0)
        model.evaluate(x, y, batch_size=4, verbose=0)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_a_layer_built_by_hand_keeps_the_weights_set_on_it():
    layer = layers.Dense(2)
    layer.build((None, 3))
    assert layer.built
    layer.set_weights([np.ones((3, 2), "float32"), np.array([1.0, 2.0], "float32")])
    np.testing.assert_array_equal(layer(np.ones((1, 3), "float32")).detach().numpy(),
                                  [[4.0, 5.0]])


def test_a_one_element_output_list_returns_the_tensor_and_keeps_the_list_in_config():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, [layers.Dense(2)(inputs)])
    x = np.ones((4, 3), "float32")
    assert isinstance(model(x), torch.Tensor)
    assert not isinstance(model(inputs), list)
    assert model.predict(x, verbose=0).shape == (4, 2)
    assert model.predict_on_batch(x).shape == (4, 2)
    config = model.get_config()
    assert config["output_layers"] == [[model.layers[-1].name, 0, 0]]
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0))
