"""compile/fit/evaluate/predict: numbers checked by hand, the seed's examples, bad input."""
import warnings

import numpy as np
import pytest
import torch

import lamina as keras
from lamina import layers

from compiled_runs import eager_and_compiled_losses


@pytest.fixture(autouse=True)
def fresh():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def dense_model(units=1, input_dim=3, activation=None):
    model = keras.Sequential([keras.Input((input_dim,)), layers.Dense(units, activation=activation)])
    return model


def test_train_on_batch_sgd_step_matches_hand_computation():
    model = dense_model()
    w = np.array([[0.5], [-1.0], [2.0]], "float32")
    b = np.array([0.1], "float32")
    model.set_weights([w, b])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], "float32")
    y = np.array([[1.0], [0.0]], "float32")
    loss = model.train_on_batch(x, y)
    pred = x @ w + b
    assert loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-6)
    grad_pred = 2 * (pred - y) / len(x)
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - 0.1 * x.T @ grad_pred, rtol=1e-6)
    np.testing.assert_allclose(new_b, b - 0.1 * grad_pred.sum(0), rtol=1e-6)


def test_fit_history_evaluate_and_predict_values():
    rng = np.random.RandomState(0)
    x = rng.rand(64, 3).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype("float32")
    model = dense_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse", metrics=["mae"])
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert sorted(history.history) == ["loss", "mae"]
    assert len(history.history["loss"]) == 30 and history.epoch == list(range(30))
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    loss, mae = model.evaluate(x, y, verbose=0)
    pred = model.predict(x, verbose=0)
    assert loss == pytest.approx(float(np.mean((pred - y) ** 2)), rel=1e-4)
    assert mae == pytest.approx(float(np.mean(np.abs(pred - y))), rel=1e-4)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["loss"] == pytest.approx(loss)
    np.testing.assert_allclose(model.predict_on_batch(x[:5]), pred[:5], rtol=1e-6)


def test_sample_weight_and_class_weight_reduce_like_keras():
    model = dense_model(2, activation="softmax")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.rand(4, 3).astype("float32")
    y = np.array([0, 1, 1, 0])
    probs = model.predict(x, verbose=0)
    per_sample = -np.log(np.clip(probs[np.arange(4), y], 1e-7, 1))
    sw = np.array([1.0, 0.0, 2.0, 0.5], "float32")
    weighted = model.evaluate(x, y, sample_weight=sw, verbose=0)
    assert weighted == pytest.approx(float(np.sum(per_sample * sw) / 4), rel=1e-5)
    before = model.get_weights()
    loss = model.train_on_batch(x, y, class_weight={0: 3.0, 1: 1.0})
    cw = np.where(y == 0, 3.0, 1.0)
    assert loss == pytest.approx(float(np.sum(per_sample * cw) / 4), rel=1e-5)
    assert not np.allclose(before[0], model.get_weights()[0])


def test_seed_sequential_hello_world():
    model = keras.Sequential()
    model.add(layers.Dense(units=64, activation="relu", input_dim=100))
    model.add(layers.Dense(units=64, activation="relu"))
    model.add(layers.Dense(units=10, activation="softmax"))
    with pytest.warns(Warning):
        sgd = keras.optimizers.SGD(lr=0.01, momentum=0.9, nesterov=True)
    model.compile(loss=keras.losses.categorical_crossentropy, optimizer=sgd,
                  metrics=keras.metrics.Accuracy)
    x = np.random.rand(256, 100).astype("float32")
    y = keras.utils.to_categorical(np.random.randint(10, size=256), 10)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"]
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss_and_metrics = model.evaluate(x, y, batch_size=128, verbose=0)
    assert len(loss_and_metrics) == 2
    classes = model.predict(x, batch_size=128, verbose=0)
    assert classes.shape == (256, 10)
    np.testing.assert_allclose(classes.sum(-1), 1.0, rtol=1e-5)


def test_accuracy_string_resolves_by_loss_and_shape():
    x = np.random.rand(32, 4).astype("float32")
    cases = [
        (2, "softmax", "sparse_categorical_crossentropy", np.random.randint(2, size=32),
         "SparseCategoricalAccuracy"),
        (2, "softmax", "categorical_crossentropy",
         keras.utils.to_categorical(np.random.randint(2, size=32), 2), "CategoricalAccuracy"),
        (1, "sigmoid", "binary_crossentropy", np.random.randint(2, size=(32, 1)), "BinaryAccuracy"),
    ]
    for units, act, loss, y, expected in cases:
        model = dense_model(units, 4, act)
        model.compile(optimizer="sgd", loss=loss, metrics=["accuracy"])
        model.fit(x, y, epochs=1, verbose=0)
        assert [type(m).__name__ for m in model.metrics][-1] == expected
        assert model.metrics_names == ["loss", "accuracy"]


def seed_multi_io(lstm=True):
    main_input = keras.Input(shape=(12,), dtype="int32", name="main_input")
    x = layers.Embedding(output_dim=8, input_dim=100)(main_input)
    lstm_out = layers.LSTM(6)(x) if lstm else layers.Flatten()(x)
    auxiliary_output = layers.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    auxiliary_input = keras.Input(shape=(5,), name="aux_input")
    x = layers.concatenate([lstm_out, auxiliary_input])
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dense(16, activation="relu")(x)
    main_output = layers.Dense(1, activation="sigmoid", name="main_output")(x)
    return keras.Model(inputs=[main_input, auxiliary_input],
                       outputs=[main_output, auxiliary_output])


def test_seed_multi_input_multi_output_with_dicts():
    model = seed_multi_io(lstm=hasattr(layers, "LSTM"))
    model.compile(optimizer="rmsprop",
                  loss={"main_output": "binary_crossentropy", "aux_output": "binary_crossentropy"},
                  loss_weights={"main_output": 1, "aux_output": 0.2}, metrics=["accuracy"])
    rng = np.random.RandomState(0)
    headline = rng.randint(1, 100, size=(64, 12))
    additional = rng.rand(64, 5).astype("float32")
    labels = rng.randint(2, size=(64, 1)).astype("float32")
    history = model.fit({"main_input": headline, "aux_input": additional},
                        {"main_output": labels, "aux_output": labels},
                        epochs=2, batch_size=16, verbose=0, validation_split=0.25)
    assert sorted(history.history) == sorted([
        "loss", "main_output_loss", "aux_output_loss", "main_output_accuracy",
        "aux_output_accuracy", "val_loss", "val_main_output_loss", "val_aux_output_loss",
        "val_main_output_accuracy", "val_aux_output_accuracy"])
    logs = model.evaluate([headline, additional], [labels, labels], verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["main_output_loss"] + 0.2 * logs["aux_output_loss"],
                                         rel=1e-5)
    with pytest.raises(ValueError, match="unexpected keys.*main_outptu"):
        model.fit([headline, additional], {"main_outptu": labels, "aux_output": labels}, verbose=0)


def test_seed_shared_layer_model_and_missing_targets_error():
    tweet_a = keras.Input(shape=(7, 4))
    tweet_b = keras.Input(shape=(7, 4))
    shared = layers.LSTM(5) if hasattr(layers, "LSTM") else layers.Flatten()
    merged = layers.concatenate([shared(tweet_a), shared(tweet_b)], axis=-1)
    predictions = layers.Dense(1, activation="sigmoid")(merged)
    model = keras.Model(inputs=[tweet_a, tweet_b], output=predictions)
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    data_a = np.random.rand(32, 7, 4).astype("float32")
    data_b = np.random.rand(32, 7, 4).astype("float32")
    with pytest.raises(ValueError, match="needs target values"):
        model.fit([data_a, data_b], epochs=1, verbose=0)
    labels = np.random.randint(2, size=(32, 1))
    history = model.fit([data_a, data_b], labels, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def test_bad_input_errors():
    model = dense_model(2, 3)
    with pytest.raises(ValueError, match="'not_a_loss'.*mean_squared_error"):
        model.compile(optimizer="sgd", loss="not_a_loss")
    with pytest.raises(ValueError, match="not_an_optimizer"):
        model.compile(optimizer="not_an_optimizer", loss="mse")
    with pytest.raises(ValueError, match="not_a_metric"):
        model.compile(optimizer="sgd", loss="mse", metrics=["not_a_metric"])
        model.fit(np.zeros((2, 3)), np.zeros((2, 2)), verbose=0)
    with pytest.raises(ValueError, match="not_an_activation"):
        layers.Dense(2, activation="not_an_activation")
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"Data cardinality is ambiguous.*'x' sizes: 10.*'y' sizes: 9"):
        model.fit(np.zeros((10, 3)), np.zeros((9, 2)), verbose=0)
    with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(\d+, 5\)"):
        model.fit(np.zeros((10, 5)), np.zeros((10, 2)), verbose=0)
    for predict in (lambda x: model.predict(x, verbose=0), model.predict_on_batch):
        with pytest.raises(ValueError, match=r"expected shape=\(None, 3\), found shape=\(10, 2, 3\)"):
            predict(np.zeros((10, 2, 3)))  # Dense alone would broadcast over the extra axis
    with pytest.raises(ValueError, match="compile"):
        dense_model().fit(np.zeros((2, 3)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"Arguments not recognized: \{'foo': 1\}"):
        model.evaluate(np.zeros((2, 3)), np.zeros((2, 2)), foo=1)


def test_generators_pydataset_and_dataloader():
    x = np.random.rand(40, 3).astype("float32")
    y = np.random.rand(40, 1).astype("float32")

    def generator():
        while True:
            for i in range(0, 40, 10):
                yield x[i:i + 10], y[i:i + 10]

    class Data(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epochs_ended = 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 10:(i + 1) * 10], y[i * 10:(i + 1) * 10]

        def on_epoch_end(self):
            self.epochs_ended += 1

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=10)
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse")
    reference = model.evaluate(x, y, verbose=0)
    assert model.evaluate(generator(), steps=4, verbose=0) == pytest.approx(reference, rel=1e-6)
    assert model.evaluate(loader, verbose=0) == pytest.approx(reference, rel=1e-6)
    data = Data()
    assert model.evaluate(data, verbose=0) == pytest.approx(reference, rel=1e-6)
    history = model.fit(data, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and data.epochs_ended == 3
    model.fit(generator(), steps_per_epoch=4, epochs=2, verbose=0)
    model.fit(loader, epochs=1, verbose=0)
    assert model.predict(loader, verbose=0).shape == (40, 1)


def test_callbacks_receive_batch_floats_and_can_stop():
    class LossHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.losses = []

        def on_batch_end(self, batch, logs=None):
            self.losses.append(logs.get("loss"))
            if len(self.losses) == 5:
                self.model.stop_training = True

    model = dense_model()
    model.compile(optimizer="sgd", loss="mse")
    history = LossHistory()
    model.fit(np.random.rand(100, 3), np.random.rand(100, 1), batch_size=10, epochs=3,
              verbose=0, callbacks=[history])
    assert len(history.losses) == 5 and all(isinstance(v, float) for v in history.losses)
    assert history.params["steps"] == 10 and history.params["epochs"] == 3


def test_progress_bar_output(capsys):
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(np.random.rand(20, 3), np.random.rand(20, 1), batch_size=10, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "2/2 - " in out and "loss: " in out and "mae: " in out


def test_subclassed_model_trains_with_add_loss():
    class SimpleMLP(keras.Model):
        def __init__(self, use_bn=False, use_dp=False, num_classes=10):
            super().__init__(name="mlp")
            self.use_dp = use_dp
            self.dense1 = layers.Dense(32, activation="relu")
            self.dense2 = layers.Dense(num_classes, activation="softmax")
            if use_dp:
                self.dp = layers.Dropout(0.5)

        def call(self, inputs, training=None):
            x = self.dense1(inputs)
            if self.use_dp:
                x = self.dp(x, training=training)
            self.add_loss(1e-3 * torch.mean(x ** 2))
            return self.dense2(x)

    model = SimpleMLP(use_dp=True)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.rand(128, 20).astype("float32")
    y = np.random.randint(10, size=128)
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x[:3], verbose=0).shape == (3, 10)
    model.summary(print_fn=lambda line: None)


def test_regularizer_loss_is_added_to_training_loss():
    model = keras.Sequential([keras.Input((2,)),
                              layers.Dense(1, kernel_regularizer=keras.regularizers.L2(0.5),
                                           use_bias=False)])
    model.set_weights([np.array([[1.0], [2.0]], "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    x = np.array([[1.0, 1.0]], "float32")
    y = np.array([[0.0]], "float32")
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(9.0 + 0.5 * (1 + 4), rel=1e-6)


def test_summary_table(capsys):
    model = seed_multi_io(lstm=False)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert 'Model: "functional"' in text
    assert "main_input (InputLayer)" in text and "Connected to" in text
    assert "concatenate (Concatenate)" in text and "flatten[0][0]" in text
    total = model.count_params()
    assert f"Total params: {total:,}" in text
    with pytest.raises(ValueError, match="not yet been built"):
        keras.Sequential([layers.Dense(2)]).summary()


def test_crossentropy_uses_the_logits_behind_softmax_and_sigmoid():
    """As Keras's TensorFlow backend: a softmax/sigmoid output keeps its logits, so the loss is
    exact even where probabilities round to 0 (no clipping at epsilon)."""
    model = keras.Sequential([keras.Input((2,)), layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[100.0, 0.0], [0.0, 0.0]], "float32"), np.zeros(2, "float32")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.array([[1.0, 0.0]], "float32")
    assert model.evaluate(x, np.array([1]), verbose=0) == pytest.approx(100.0, rel=1e-5)
    probs = keras.activations.softmax(torch.tensor([[100.0, 0.0]]))
    assert float(keras.losses.sparse_categorical_crossentropy(torch.tensor([1]), probs)[0]) \
        == pytest.approx(100.0)
    assert float(keras.losses.sparse_categorical_crossentropy(
        torch.tensor([1]), probs.detach().clone())[0]) == pytest.approx(-np.log(1e-7), rel=1e-4)
    logit = torch.tensor([[-30.0]])
    assert float(keras.losses.binary_crossentropy(
        torch.tensor([[1.0]]), keras.activations.sigmoid(logit))[0]) == pytest.approx(30.0)


def test_jit_compile_traces_the_whole_train_step_into_one_graph():
    """Forward, gradients, metrics, the Adam update, weight and activity regularizers
    (`add_loss`), a constraint and BatchNormalization's moving statistics: one graph, training
    exactly as eagerly."""
    def run(jit):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((8,)),
            layers.Dense(16, use_bias=False, kernel_regularizer="l2",
                         kernel_constraint=keras.constraints.MaxNorm(0.5)),
            layers.BatchNormalization(), layers.Activation("relu"),
            layers.Dense(3, activation="softmax", activity_regularizer="l2")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=jit)
        x = np.random.RandomState(0).rand(64, 8).astype("float32")
        history = model.fit(x, np.arange(64) % 3, batch_size=16, epochs=3, shuffle=False,
                            verbose=0)
        return model.get_weights(), history.history

    eager_weights, eager_history = run(False)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*jit_compile")
        jit_weights, jit_history = run(True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["graph_break"]
    moving_mean = jit_weights[3]
    assert np.abs(moving_mean).max() > 1e-3  # updated inside the graph
    for a, b in zip(eager_weights, jit_weights):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(jit_history[key], eager_history[key], rtol=1e-6)


def test_jit_step_still_sees_new_batch_shapes_sample_and_class_weights():
    """The compiled step keeps its guards on the batch: a last partial batch, sample weights
    and class weights arriving in a later `fit` all train exactly as eagerly."""
    rng = np.random.RandomState(0)
    x = rng.rand(70, 4).astype("float32")
    y = rng.randint(0, 3, 70)
    weights = rng.rand(70).astype("float32")

    def run(jit):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3, activation="softmax")])
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                      jit_compile=jit)
        losses = []
        for extra in ({}, {"sample_weight": weights}, {"class_weight": {0: 3.0, 1: 0.0, 2: 1.0}},
                      {}):
            history = model.fit(x, y, batch_size=16, shuffle=False, verbose=0, **extra)
            losses += history.history["loss"]
        return model.get_weights(), losses

    eager_weights, eager_losses = run(False)
    jit_weights, jit_losses = run(True)
    np.testing.assert_allclose(jit_losses, eager_losses, rtol=1e-5)
    for a, b in zip(eager_weights, jit_weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_jit_step_follows_a_layer_frozen_between_fits():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(4), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x, y = np.random.RandomState(0).rand(32, 4).astype("float32"), np.ones((32, 1), "float32")
    model.fit(x, y, batch_size=8, verbose=0)
    model.layers[0].trainable = False
    frozen = model.layers[0].get_weights()
    trained = model.layers[1].get_weights()
    model.fit(x, y, batch_size=8, verbose=0)
    for a, b in zip(frozen, model.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(trained[0], model.layers[1].get_weights()[0])


def test_jit_steps_of_two_models_alike_in_shapes_stay_apart():
    def run(jit):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        models = []
        for activation in ("relu", "tanh"):
            model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation=activation),
                                      layers.Dense(1)])
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
            models.append(model)
        x = np.random.RandomState(0).randn(32, 4).astype("float32")
        for model in models + models:
            model.fit(x, x.sum(1, keepdims=True), batch_size=8, verbose=0)
        return [w for model in models for w in model.get_weights()]

    for a, b in zip(run(False), run(True)):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_fit_flushes_denormals_only_while_it_runs():
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(torch.tensor(1e-40) * 1.0))

    model = dense_model()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 3)), np.zeros((4, 1)), verbose=0, callbacks=[Probe()])
    assert seen == [0.0]
    assert float(torch.tensor(1e-40) * 1.0) > 0.0


def test_jit_compile_falls_back_to_eager_when_the_compiler_fails(monkeypatch):
    class InductorBug(Exception):
        pass

    InductorBug.__module__ = "torch._inductor.exc"

    def codegen(*args):
        raise InductorBug()  # as a failed `assert` in inductor arrives: no message

    def broken_compile(fn, **kwargs):
        return codegen

    monkeypatch.setattr(torch, "compile", broken_compile)
    model = dense_model()
    model.set_weights([np.ones((3, 1), "float32"), np.zeros(1, "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    x = np.ones((4, 3), "float32")
    with pytest.warns(UserWarning, match="running it eagerly from now on") as caught:
        model.fit(x, np.zeros((4, 1), "float32"), batch_size=2, epochs=2, verbose=0)
    assert np.all(model.get_weights()[0] < 1.0)  # the eager steps did train
    line = codegen.__code__.co_firstlineno + 1
    assert f"(InductorBug, raised at {__file__}:{line})" in str(caught[0].message)


@pytest.mark.parametrize("version, device, reorders", [
    ("2.11.0", "cuda", False), ("2.12.0", "cuda", None), ("2.11.0", "cpu", None)])
def test_jit_compile_avoids_inductors_foreach_reordering_bug_before_torch_2_12(
        monkeypatch, version, device, reorders):
    """pytorch/pytorch#176591: on accelerators before torch 2.12, inductor's loop reordering
    after fusion fails an assert when foreach updates fuse with reductions."""
    from lamina.training.trainer import _compile
    seen = {}

    def recording_compile(fn, options=None, **kwargs):
        seen.update(options)
        return fn

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setattr(torch, "__version__", torch.torch_version.TorchVersion(version))
    _compile(lambda: None, torch.device(device))
    assert seen.get("loop_ordering_after_fusion") is reorders


@pytest.mark.parametrize("device, static, graphs", [
    ("cuda", True, True), ("cuda", False, None), ("cpu", True, None)])
def test_jit_compile_replays_a_step_with_listed_state_as_a_cuda_graph_on_cuda(
        monkeypatch, device, static, graphs):
    """The tensors a CUDA-graphed step updates are marked static once, before its first call
    (cudagraphs keeps them at their addresses instead of copying them in and out)."""
    from lamina.training.trainer import _compile
    seen, marked = {}, []
    state = [torch.zeros(2), torch.ones(())]

    def recording_compile(fn, options=None, **kwargs):
        seen.update(options)
        return fn

    monkeypatch.setattr(torch, "compile", recording_compile)
    monkeypatch.setattr(torch._dynamo, "mark_static_address",
                        lambda tensor, guard: marked.append((tensor, guard)))
    step = _compile(lambda: "stepped", torch.device(device),
                    static=(lambda: state) if static else None)
    assert seen.get("triton.cudagraphs") is graphs and marked == []
    assert step() == step() == "stepped"
    assert [(id(t), guard) for t, guard in marked] == (
        [(id(t), False) for t in state] if graphs else [])


class BatchHooks(keras.callbacks.Callback):
    """Records every batch hook call as (hook, step, number of predicted rows or None)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(self, hook, batch, logs):
        rows = len(logs["outputs"]) if logs and "outputs" in logs else None
        self.calls.append((hook, batch, rows))

    def on_train_batch_begin(self, batch, logs=None):
        self._record("train_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._record("train_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._record("test_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._record("test_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._record("predict_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._record("predict_end", batch, logs)


def test_steps_per_execution_runs_batch_callbacks_once_per_group_of_batches():
    x = np.random.RandomState(0).rand(40, 3).astype("float32")  # 10 batches of 4
    y = x.sum(axis=1, keepdims=True)
    models = []
    for group in (1, 3):
        keras.utils.set_random_seed(0)
        model = dense_model()
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=group)
        hooks = BatchHooks()
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[hooks])
        models.append((model, hooks))
    (single, hooks1), (grouped, hooks3) = models
    for a, b in zip(single.get_weights(), grouped.get_weights()):
        np.testing.assert_array_equal(a, b)  # every batch still takes its own step
    assert [c[1] for c in hooks1.calls if c[0] == "train_end"] == list(range(10))
    # Keras numbers groups by their first and last step, the short last group included.
    assert hooks3.calls == [("train_begin", 0, None), ("train_end", 2, None),
                            ("train_begin", 3, None), ("train_end", 5, None),
                            ("train_begin", 6, None), ("train_end", 8, None),
                            ("train_begin", 9, None), ("train_end", 11, None)]
    hooks3.calls.clear()
    grouped.evaluate(x, y, batch_size=8, verbose=0, callbacks=[hooks3])  # 5 batches
    assert hooks3.calls == [("test_begin", 0, None), ("test_end", 2, None),
                            ("test_begin", 3, None), ("test_end", 5, None)]
    hooks3.calls.clear()
    out = grouped.predict(x, batch_size=4, verbose=0, callbacks=[hooks3])
    assert hooks3.calls == [("predict_begin", 0, None), ("predict_end", 2, 12),
                            ("predict_begin", 3, None), ("predict_end", 5, 12),
                            ("predict_begin", 6, None), ("predict_end", 8, 12),
                            ("predict_begin", 9, None), ("predict_end", 11, 4)]
    np.testing.assert_allclose(out, single.predict(x, verbose=0), rtol=1e-6)


def test_steps_per_execution_group_outputs_come_whole_when_predict_joins_batches():
    model = keras.Sequential([keras.Input((6,)), layers.Dense(2)])
    model.compile(loss="mse", steps_per_execution=4)
    x = np.random.RandomState(2).rand(100, 6).astype("float32")  # 13 batches of 8
    outputs = []

    class Outputs(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            outputs.append((batch, np.array(logs["outputs"])))

    out = model.predict(x, batch_size=8, verbose=0, callbacks=[Outputs()])
    assert [(b, len(o)) for b, o in outputs] == [(3, 32), (7, 32), (11, 32), (15, 4)]
    np.testing.assert_array_equal(np.concatenate([o for _, o in outputs]), out)


def test_stop_training_takes_effect_at_the_end_of_a_group():
    x = np.zeros((40, 3), "float32")
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4)
    steps = []

    class Stop(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)
            self.model.stop_training = True

    model.fit(x, x[:, :1], batch_size=4, epochs=3, verbose=0, callbacks=[Stop()])
    assert steps == [3]
    assert model.optimizer.iterations.item() == 4


@pytest.mark.parametrize("value", [0, -2, 1.5, "auto", True])
def test_steps_per_execution_must_be_a_positive_integer(value):
    with pytest.raises(ValueError, match=r"`steps_per_execution` must be a positive integer\. "
                                         rf"Received: steps_per_execution={value!r}"):
        dense_model().compile(loss="mse", steps_per_execution=value)


def test_jit_steps_per_execution_runs_four_steps_a_compiled_call_as_eager_does():
    x = np.random.RandomState(0).rand(88, 3).astype("float32")  # 5 batches of 16 and one of 8
    y = x.sum(axis=1, keepdims=True)
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = dense_model()
        model.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=jit,
                      steps_per_execution=4)
        hooks = BatchHooks()
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*jit_compile")
            history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                                callbacks=[hooks])
        runs.append((model, history.history, hooks.calls,
                     torch._dynamo.utils.counters["stats"]["unique_graphs"]))
    (eager, eager_logs, eager_calls, _), (jit, jit_logs, jit_calls, graphs) = runs
    # One step of 16, one of 8 (the last batch), and four steps of 16 in one call.
    assert graphs == 3
    assert jit_calls == eager_calls and len(jit_calls) == 3 * 4
    for key in ("loss", "mae"):
        np.testing.assert_allclose(jit_logs[key], eager_logs[key], rtol=1e-5)
    assert int(jit.optimizer.iterations) == int(eager.optimizer.iterations) == 18
    for a, b in zip(eager.get_weights(), jit.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_jit_cpu_forward_passes_skip_inductor_layout_optimization(monkeypatch):
    """Measured on the CPU: predict 1.0-1.38x faster without it, the train step 1.5x slower."""
    options, compile_ = {}, torch.compile

    def recording(fn, **kwargs):
        options[fn.__name__] = kwargs["options"]
        return compile_(fn, **kwargs)

    monkeypatch.setattr(torch, "compile", recording)
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 1), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    model.predict(x, verbose=0)
    assert options["_predict_forward"]["layout_optimization"] is False
    assert options["_test_forward"]["layout_optimization"] is False
    assert "layout_optimization" not in options["_whole_train_step"]


def test_jit_predict_runs_a_compiled_forward_that_follows_the_weights():
    model = dense_model(units=2, activation="relu")
    model.compile(loss="mse", jit_compile=True)
    x = np.random.RandomState(0).rand(10, 3).astype("float32") - 0.5
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for scale in (1.0, -2.0):
        w = scale * np.arange(6, dtype="float32").reshape(3, 2)
        b = np.array([0.1, -0.1], "float32")
        model.set_weights([w, b])
        expected = np.maximum(x @ w + b, 0)
        np.testing.assert_allclose(model.predict(x, batch_size=4, verbose=0), expected,
                                   rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(model.predict_on_batch(x[:4]), expected[:4], rtol=1e-6,
                                   atol=1e-7)
    np.testing.assert_allclose(model.predict_on_batch(x), expected, rtol=1e-6, atol=1e-7)
    # predict joins the small batches into one pass of 10; predict_on_batch runs 4, then 10
    # (predict's graph: its input is no inference tensor either): two graphs, each reused after
    # the weights changed.
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2


def test_jit_evaluate_and_predict_of_an_activity_regularized_model_compile_once():
    """`add_loss` in a compiled forward pass recompiled it at every batch (the layer's list of
    losses grew), until dynamo's limit made it run eagerly."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = layers.Dense(4, activity_regularizer="l2")(inputs)
    model = keras.Model(inputs, layers.Dense(1)(hidden))
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    x = np.random.RandomState(0).rand(48, 3).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    model.fit(x[:8], y[:8], batch_size=4, epochs=1, verbose=0)
    torch._dynamo.utils.counters.clear()
    compiled = model.evaluate(x, y, batch_size=4, verbose=0)
    for _ in range(10):
        model.predict_on_batch(x[:4])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2  # evaluate, predict
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_allclose(compiled, model.evaluate(x, y, batch_size=4, verbose=0),
                               rtol=1e-5)


def test_jit_steps_follow_optimizer_settings_changed_between_fits_as_eager_does():
    """A compiled step held the hyperparameters and the learning rate (a callable's value, or
    the constant a schedule replaced) of its first trace."""
    x = np.random.RandomState(0).rand(32, 3).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    runs = []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        state = {"lr": 0.05}
        model = dense_model(units=1)
        model.compile(optimizer=keras.optimizers.SGD(lambda: state["lr"], momentum=0.5),
                      loss="mse", jit_compile=jit)
        losses = []
        for change in (None, "callable", "momentum", "schedule"):
            if change == "callable":
                state["lr"] = 0.01
            elif change == "momentum":
                model.optimizer.momentum, model.optimizer.weight_decay = 0.9, 0.5
            elif change == "schedule":
                model.optimizer.learning_rate = keras.optimizers.schedules.ExponentialDecay(
                    0.02, decay_steps=2, decay_rate=0.5)
            losses += model.fit(x, y, batch_size=8, epochs=1, shuffle=False,
                                verbose=0).history["loss"]
        runs.append((losses, model.get_weights()))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    for eager, compiled in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)


def test_a_metric_object_given_to_a_second_model_starts_from_zero():
    """Its state from the first model leaked into the second's first epoch."""
    metric = keras.metrics.MeanSquaredError()
    x = np.random.RandomState(0).rand(12, 3).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    for _ in range(2):
        model = dense_model()
        model.compile(optimizer="sgd", loss="mse", metrics=[metric])
        logs = model.fit(x, y, batch_size=4, epochs=1, verbose=0).history
        np.testing.assert_allclose(logs["mean_squared_error"], logs["loss"], rtol=1e-6)


def test_compile_options_read_and_set_on_the_model_as_in_keras():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)])
    assert (model.jit_compile, model.run_eagerly, model.steps_per_execution) == (False, False, 1)
    model.compile(optimizer="sgd", loss="mse", jit_compile="auto")
    assert model.jit_compile is False  # Keras on torch: "auto" runs eagerly
    with pytest.warns(UserWarning, match="If `run_eagerly` is True, then `jit_compile` cannot"):
        model.compile(optimizer="sgd", loss="mse", jit_compile=True, run_eagerly=True)
    assert (model.jit_compile, model.run_eagerly) == (False, True)
    x, y = np.random.rand(8, 3).astype("float32"), np.random.rand(8, 1).astype("float32")
    model.fit(x, y, batch_size=4, verbose=0)
    assert model._trainer._compiled_train is None
    model.run_eagerly = False
    model.jit_compile = True  # taken up by the next fit
    model.steps_per_execution = 2
    model.fit(x, y, batch_size=4, verbose=0)
    assert model._trainer._compiled_train is not None and model._trainer._unroll == 2
    with pytest.raises(ValueError, match="`steps_per_execution` must be a positive integer"):
        model.steps_per_execution = 0


def test_jit_trains_an_lstm_on_the_model_inputs_as_eager_does():
    """torch's compiled CPU LSTM kernel fails in training graphs when its sequences need no
    gradient (an LSTM right after the Input): the compiled step runs the step loop instead."""
    rng = np.random.RandomState(0)
    x, y = rng.rand(32, 6, 4).astype("float32"), rng.randint(0, 3, 32)

    def build():
        return keras.Sequential([keras.Input((6, 4)), layers.LSTM(5),
                                 layers.Dense(3, activation="softmax")])

    eager, compiled, graphs = eager_and_compiled_losses(
        build, x, y, "adam", "sparse_categorical_crossentropy")
    assert graphs == 1
    np.testing.assert_allclose(compiled, eager, rtol=1e-4)


def test_model_calls_outside_the_steps_run_in_inference_mode_as_in_keras():
    # Keras resolves `training` per call: a callback's `model(x)` during `fit`, or `model(x)`
    # after `train_on_batch`, is an inference call (no dropout, no moving-statistics update).
    model = keras.Sequential([keras.Input((5,)), layers.Dropout(0.5),
                              layers.BatchNormalization(momentum=0.0)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((4, 5), 3.0, "float32")
    moving_mean = lambda: model.layers[1].get_weights()[2]  # noqa: E731
    seen = []

    class CallsTheModel(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(self.model(x).detach().numpy())

        def on_epoch_end(self, epoch, logs=None):
            before = moving_mean()
            seen.append(self.model(x).detach().numpy())
            np.testing.assert_array_equal(moving_mean(), before)

    model.fit(x, x, epochs=2, verbose=0, callbacks=[CallsTheModel()])
    assert len(seen) == 4

    def inference():
        gamma, beta, mean, variance = model.layers[1].get_weights()
        return gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta

    np.testing.assert_allclose(seen[-1], inference(), rtol=1e-5)
    model.train_on_batch(x, x)
    before = moving_mean()
    out = model(x).detach().numpy()
    np.testing.assert_array_equal(moving_mean(), before)
    np.testing.assert_allclose(out, inference(), rtol=1e-5)
    assert not model.training and not model.layers[0].training


def test_plain_torch_modules_in_a_layer_train_in_fit_and_rest_outside_it():
    class TorchInside(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = torch.nn.Dropout(0.5)
            self.modes = []

        def call(self, inputs):
            self.modes.append(self.inner.training)
            return self.inner(inputs)

    layer = TorchInside()
    model = keras.Sequential([keras.Input((3,)), layer, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    layer.modes.clear()
    model.fit(x, y, batch_size=2, epochs=1, validation_data=(x, y), verbose=0)
    assert layer.modes == [True, True, False, False]  # two train steps, two validation steps
    model.predict(x, batch_size=4, verbose=0)
    model.train_on_batch(x, y)
    assert layer.modes[-2:] == [False, True]
    assert not layer.inner.training


def test_class_weight_weighs_the_training_loss_of_its_own_call_only():
    # Dense(1) with unit kernel and lr 0: predictions are row sums, losses hand-computed.
    x = np.array([[1.0, 0.0], [0.5, 0.5], [2.0, 1.0], [0.0, 0.0]], "float32")
    y = np.array([[0.0], [0.6], [1.0], [2.0]], "float32")  # 0.6 rounds to class 1
    squared = (x.sum(1) - y[:, 0]) ** 2
    weights = np.array([1.0, 3.0, 3.0, 1.0])  # class 2 is not listed: it weighs 1
    model = dense_model(input_dim=2)
    model.set_weights([np.ones((2, 1), "float32"), np.zeros(1, "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    history = model.fit(x, y, batch_size=4, class_weight={0: 1.0, 1: 3.0}, verbose=0,
                        validation_data=(x, y)).history
    assert history["loss"][0] == pytest.approx((weights * squared).mean(), rel=1e-6)
    assert history["val_loss"][0] == pytest.approx(squared.mean(), rel=1e-6)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(squared.mean(), rel=1e-6)
    model.train_on_batch(x, y, class_weight={1: 3.0})
    assert model.test_on_batch(x, y) == pytest.approx(squared.mean(), rel=1e-6)
    with pytest.raises(ValueError, match="`class_weight` and `sample_weight` cannot be given"):
        model.fit(x, y, class_weight={0: 2.0}, sample_weight=np.ones(4), verbose=0)
    inputs = keras.Input((2,))
    two = keras.Model(inputs, [layers.Dense(1)(inputs), layers.Dense(1)(inputs)])
    two.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="only supported for models with a single output"):
        two.fit(x, [y, y], class_weight={0: 2.0}, verbose=0)


def test_validation_freq_takes_a_list_of_epochs():
    model = dense_model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 1), "float32")
    seen = []

    class Epochs(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, "val_loss" in logs))

    history = model.fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 3],
                        verbose=0, callbacks=[Epochs()])
    assert seen == [(0, True), (1, False), (2, True), (3, False)]
    assert len(history.history["val_loss"]) == 2
    with pytest.raises(ValueError, match="`validation_freq` must be an integer or a list"):
        model.fit(x, y, validation_data=(x, y), validation_freq="2", verbose=0)


def test_a_metric_in_both_metrics_and_weighted_metrics_logs_a_weighted_twin():
    model = dense_model()
    model.set_weights([np.ones((3, 1), "float32"), np.zeros(1, "float32")])
    model.compile(optimizer="sgd", loss="mse", loss_weights=[2.0], metrics=["mae"],
                  weighted_metrics=["mae"])
    x = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "float32")
    y = np.zeros((2, 1), "float32")
    logs = model.evaluate(x, y, sample_weight=np.array([3.0, 1.0]), verbose=0, return_dict=True)
    assert logs == pytest.approx({"loss": 2 * 3.0 / 2, "mae": 0.5, "weighted_mae": 3.0 / 4})


def test_compile_refuses_a_model_that_overrides_the_train_step():
    class CustomStep(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

        def train_step(self, data):
            return {}

    with pytest.raises(NotImplementedError, match=r"defines \['train_step'\].*do not call"):
        CustomStep().compile(optimizer="sgd", loss="mse")


def test_loss_reset_metrics_and_get_metrics_result_as_in_keras():
    model = dense_model()
    assert model.loss is None
    model.set_weights([np.ones((3, 1), "float32"), np.zeros(1, "float32")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"])
    assert model.loss == "mse"
    model.evaluate(np.ones((2, 3), "float32"), np.zeros((2, 1), "float32"), verbose=0)
    assert model.get_metrics_result() == {"loss": 9.0, "mae": 3.0}
    model.reset_metrics()
    assert model.get_metrics_result() == {"loss": 0.0, "mae": 0.0}


def test_returned_log_dicts_are_sorted_by_key_and_lists_follow_metrics_names():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"b": layers.Dense(1)(inputs), "a": layers.Dense(1)(inputs)})
    model.compile(optimizer="sgd", loss="mse", metrics={"a": ["mae"], "b": ["mse"]})
    x, y = np.ones((4, 3), "float32"), {"a": np.ones((4, 1)), "b": np.zeros((4, 1))}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["a_loss", "a_mae", "b_loss", "b_mse", "loss"]
    values = model.evaluate(x, y, verbose=0)
    assert values == pytest.approx([logs[name] for name in model.metrics_names])
    assert model.metrics_names[0] == "loss"
    assert list(model.train_on_batch(x, y, return_dict=True)) == list(logs)


class _InPlaceWrites(torch.utils._python_dispatch.TorchDispatchMode):
    """Storages that existed before the mode was entered and that some op wrote in place."""

    def __init__(self):
        super().__init__()
        self.fresh, self.written = set(), set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        schema = func._schema
        values = dict(zip((a.name for a in schema.arguments), args)) | kwargs
        writes = [values.get(a.name) for a in schema.arguments
                  if a.alias_info is not None and a.alias_info.is_write]
        for tensor in writes:
            if isinstance(tensor, torch.Tensor) and _storage(tensor) not in self.fresh:
                self.written.add(_storage(tensor))
        if not writes and not any(r.alias_info for r in schema.returns):
            for tensor in torch.utils._pytree.tree_leaves(out):
                if isinstance(tensor, torch.Tensor):
                    self.fresh.add(_storage(tensor))
        return out


def _storage(tensor):
    return tensor.untyped_storage().data_ptr()


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam", "loss_scale"])
def test_whole_train_step_lists_all_the_state_it_updates(monkeypatch, optimizer):
    """On CUDA the whole step is one CUDA graph, which takes in-place updates only of tensors
    marked static: `_step_state` must list every tensor the step writes besides the model's."""
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: fn)  # the step runs eagerly
    inner = (keras.optimizers.Adam(0.01) if optimizer == "adam"
             else keras.optimizers.SGD(0.1, momentum=0.9))
    opt = keras.optimizers.LossScaleOptimizer(inner) if optimizer == "loss_scale" else inner
    model = keras.Sequential([layers.Input((4,)), layers.Dense(8, activation="relu"),
                              layers.BatchNormalization(), layers.Dense(3)])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy",
                           keras.metrics.SparseCategoricalCrossentropy(from_logits=True)],
                  jit_compile=True)
    x, y = np.random.rand(8, 4).astype("float32"), np.arange(8) % 3
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    trainer = model._trainer
    xt, yt = torch.as_tensor(x[:4]), torch.as_tensor(y[:4])
    with _InPlaceWrites() as writes:
        trainer._whole_train_step(xt, yt, None)
    model_state = {_storage(t) for t in [*model.parameters(), *model.buffers()]}
    listed = {_storage(t) for t in trainer._step_state()}
    assert writes.written - model_state, "the step updated no state of its own"
    assert writes.written - model_state - listed == set()
