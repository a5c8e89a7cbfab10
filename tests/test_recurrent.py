import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from lamina.engine.input_layer import Input
from lamina.engine.model import Model
from lamina.layers.core import Dense, Embedding, Masking
from lamina.layers.recurrent import (GRU, LSTM, RNN, Bidirectional, GRUCell, LSTMCell, SimpleRNN,
                                     SimpleRNNCell, StackedRNNCells)
from lamina.layers.recurrent import cells as cells_module
from lamina.engine.layer import Layer

LAMINA = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN, "LSTMCell": LSTMCell,
          "GRUCell": GRUCell, "SimpleRNNCell": SimpleRNNCell, "Embedding": Embedding,
          "Masking": Masking, "Bidirectional": Bidirectional, "Dense": Dense}
RNG = np.random.RandomState(0)
X = RNG.randn(3, 7, 5).astype("float32")


def np_(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def as_tuple(y):
    return tuple(y) if isinstance(y, (tuple, list)) else (y,)


def randomize(klayer, seed=1):
    """Give a Keras layer/model random weights (so biases and forget gates matter)."""
    rng = np.random.RandomState(seed)
    klayer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                        for w in klayer.get_weights()])


def assert_same(lam_out, keras_out, atol=1e-5):
    lam_out, keras_out = as_tuple(lam_out), as_tuple(keras_out)
    assert len(lam_out) == len(keras_out)
    for a, b in zip(lam_out, keras_out):
        if isinstance(b, (list, tuple)):
            assert_same(a, b, atol)
        else:
            np.testing.assert_allclose(np_(a), np_(b), atol=atol)


def pair(name, *args, **kwargs):
    """The same layer in Keras and lamina, built on X, with equal random weights."""
    k = getattr(keras.layers, name)(*args, **kwargs)
    k(X)
    randomize(k)
    lam = LAMINA[name](*args, **{kk: v for kk, v in kwargs.items()})
    lam(X)
    lam.set_weights(k.get_weights())
    return k, lam


CONFIGS = [{}, {"return_sequences": True}, {"return_state": True},
           {"go_backwards": True, "return_sequences": True, "return_state": True}]
LAYERS = [("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}), ("SimpleRNN", {}),
          ("SimpleRNN", {"activation": "relu"}), ("LSTM", {"use_bias": False})]


@pytest.mark.parametrize("name,kw", LAYERS)
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_keras_fused_and_general(name, kw, config):
    k, lam = pair(name, 4, **kw, **config)
    expected = k(X)
    assert_same(lam(X), expected)
    for variant in ({"use_cudnn": False}, {"unroll": True}):
        if name == "SimpleRNN" and "use_cudnn" in variant:
            variant = {"unroll": True}
        other = LAMINA[name](4, **kw, **config, **variant)
        other(X)
        other.set_weights(k.get_weights())
        assert_same(other(X), expected)


def _spy_fused(monkeypatch, cls):
    calls = []
    original = cls._fused_sequence

    def spy(self, *args):
        result = original(self, *args)
        calls.append(result is not None)
        return result
    monkeypatch.setattr(cls, "_fused_sequence", spy)
    return calls


@pytest.mark.parametrize("name,cell", [("LSTM", LSTMCell), ("GRU", GRUCell),
                                       ("SimpleRNN", SimpleRNNCell)])
def test_default_config_uses_fused_kernel(monkeypatch, name, cell):
    calls = _spy_fused(monkeypatch, cell)
    layer = LAMINA[name](4)
    layer(X)
    assert calls == [True]
    LAMINA[name](4, use_cudnn=False if name != "SimpleRNN" else "auto", unroll=True)(X)
    assert calls == [True]  # unroll takes the step loop
    gru = GRU(4, reset_after=False)
    gru(X)
    if name == "GRU":
        assert calls == [True, False]


def test_long_sequence_matches_keras():
    x = RNG.randn(2, 60, 3).astype("float32")
    for name, kw in [("LSTM", {}), ("GRU", {"reset_after": False})]:
        k = getattr(keras.layers, name)(8, return_sequences=True, **kw)
        k(x)
        randomize(k)
        for variant in ({}, {"unroll": True}):
            lam = LAMINA[name](8, return_sequences=True, **kw, **variant)
            lam(x)
            lam.set_weights(k.get_weights())
            assert_same(lam(x), k(x), atol=1e-4)


def _masked_models(name, layer_kwargs, padding, wrap=None):
    tokens = np.array([[3, 4, 5, 6, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7], [2, 9, 0, 0, 0, 0, 0]])
    if padding == "left":
        tokens = np.array([np.concatenate([r[r == 0], r[r != 0]]) for r in tokens])
    models = []
    for fw, layers in ((keras, keras.layers), (None, LAMINA)):
        inp = (keras.Input if fw else Input)(shape=(7,), dtype="int32")
        emb = (layers.Embedding if fw else layers["Embedding"])(10, 5, mask_zero=True)(inp)
        rnn = (getattr(layers, name) if fw else layers[name])(4, **layer_kwargs)
        if wrap:
            rnn = (getattr(layers, wrap[0]) if fw else layers[wrap[0]])(rnn, **wrap[1])
        out = rnn(emb)
        models.append((keras.Model if fw else Model)(inp, out))
    kmodel, lmodel = models
    randomize(kmodel)
    lmodel.set_weights(kmodel.get_weights())
    return kmodel, lmodel, tokens


@pytest.mark.parametrize("name,kw", [("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
                                     ("SimpleRNN", {})])
@pytest.mark.parametrize("padding", ["right", "left"])
@pytest.mark.parametrize("config", [{}, {"return_sequences": True},
                                    {"return_sequences": True, "go_backwards": True}])
def test_embedding_mask_matches_keras(name, kw, padding, config):
    kmodel, lmodel, tokens = _masked_models(name, {**kw, **config}, padding)
    assert_same(lmodel(tokens), kmodel(tokens))


def test_masked_return_state_and_zero_output_for_mask():
    kmodel, lmodel, tokens = _masked_models(
        "LSTM", {"return_sequences": True, "return_state": True, "zero_output_for_mask": True},
        "right")
    out = lmodel(tokens)
    assert_same(out, kmodel(tokens))
    assert np.all(np_(out[0])[0, 4:] == 0)  # masked steps are zeros


def test_masking_layer_matches_keras():
    x = X.copy()
    x[0, 5:] = 0.0
    x[1, :2] = 0.0
    k_in, l_in = keras.Input((7, 5)), Input((7, 5))
    kmodel = keras.Model(k_in, keras.layers.GRU(4, return_sequences=True)(
        keras.layers.Masking()(k_in)))
    lmodel = Model(l_in, GRU(4, return_sequences=True)(Masking()(l_in)))
    randomize(kmodel)
    lmodel.set_weights(kmodel.get_weights())
    assert_same(lmodel(x), kmodel(x))


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("config", [{}, {"return_sequences": True},
                                    {"return_sequences": True, "return_state": True}])
def test_bidirectional_matches_keras(merge_mode, config):
    k = keras.layers.Bidirectional(keras.layers.LSTM(4, **config), merge_mode=merge_mode)
    k(X)
    randomize(k)
    lam = Bidirectional(LSTM(4, **config), merge_mode=merge_mode)
    lam(X)
    lam.set_weights(k.get_weights())
    assert_same(lam(X), k(X))
    assert [w.shape for w in lam.get_weights()] == [tuple(w.shape) for w in k.get_weights()]


@pytest.mark.parametrize("inner", ["GRU", "SimpleRNN"])
@pytest.mark.parametrize("padding", ["right", "left"])
def test_bidirectional_with_mask_matches_keras(inner, padding):
    kmodel, lmodel, tokens = _masked_models(inner, {"return_sequences": True}, padding,
                                            wrap=("Bidirectional", {"merge_mode": "concat"}))
    assert_same(lmodel(tokens), kmodel(tokens))
    kmodel, lmodel, tokens = _masked_models(inner, {}, padding,
                                            wrap=("Bidirectional", {"merge_mode": "ave"}))
    assert_same(lmodel(tokens), kmodel(tokens))


def test_bidirectional_naming_weights_and_config():
    layer = Bidirectional(LSTM(3, name="enc"))
    assert layer.forward_layer.name == "forward_enc"
    assert layer.backward_layer.name == "backward_enc"
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    layer(X)
    weights = layer.get_weights()
    assert [w.shape for w in weights] == [(5, 12), (3, 12), (12,)] * 2
    assert len({id(w) for w in layer.weights}) == 6
    config = layer.get_config()
    kconfig = keras.layers.Bidirectional(keras.layers.LSTM(3, name="enc")).get_config()
    assert set(config) >= set(kconfig) - {"dtype"}
    assert config["layer"]["config"]["name"] == "forward_enc"
    assert config["backward_layer"]["config"]["go_backwards"] is True
    clone = Bidirectional.from_config(config)
    clone(X)
    clone.set_weights(weights)
    assert_same(clone(X), layer(X))
    back = Bidirectional(LSTM(3), backward_layer=GRU(3, go_backwards=True), merge_mode="sum",
                         weights=None)
    assert isinstance(back.backward_layer, GRU)
    with pytest.raises(ValueError, match="merge mode"):
        Bidirectional(LSTM(3), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards"):
        Bidirectional(LSTM(3), backward_layer=LSTM(3))


def test_bidirectional_weights_argument_and_initial_state():
    ref = Bidirectional(GRU(3, return_state=True))
    ref(X)
    weights = ref.get_weights()
    layer = Bidirectional(GRU(3, return_state=True), weights=weights)
    layer(X)
    for a, b in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    out, h_fwd, h_bwd = layer(X)
    assert out.shape == (3, 6) and h_fwd.shape == (3, 3)
    k = keras.layers.Bidirectional(keras.layers.GRU(3))
    h0 = [RNG.randn(3, 3).astype("float32") for _ in range(2)]
    k(X, initial_state=h0)
    randomize(k)
    lam = Bidirectional(GRU(3))
    lam(X)
    lam.set_weights(k.get_weights())
    assert_same(lam(X, initial_state=[torch.tensor(h) for h in h0]), k(X, initial_state=h0))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_stateful_matches_keras(name):
    k, lam = pair(name, 4, stateful=True, return_sequences=True)
    k.reset_state()
    lam.reset_states()
    x2 = RNG.randn(*X.shape).astype("float32")
    assert_same(lam(X), k(X))
    assert_same(lam(x2), k(x2))  # continues from the kept states
    assert_same(lam.states, [np_(s) for s in k.states])
    continued = np_(lam(x2))
    lam.reset_states()
    k.reset_state()
    assert all(np.all(np_(s) == 0) for s in lam.states)
    fresh = lam(x2)
    assert_same(fresh, k(x2))
    assert not np.allclose(np_(fresh), continued)
    for s in lam.states:
        assert not s.requires_grad
    with pytest.raises(ValueError, match="batch size"):
        lam(X[:2])
    LSTM(2).reset_states()  # not stateful: nothing to reset, no error (Keras 3)
    with pytest.raises(AttributeError):
        Bidirectional(LSTM(2)).reset_states()


def test_stateful_symbolic_needs_batch_size():
    with pytest.raises(ValueError, match="static"):
        LSTM(2, stateful=True)(Input((4, 3)))
    out = LSTM(2, stateful=True)(Input((4, 3), batch_size=3))
    assert out.shape == (3, 2)


def test_stateful_reset_states_with_values():
    layer = GRU(2, stateful=True)
    layer(X)
    layer.reset_states([np.ones((3, 2), "float32")])
    np.testing.assert_array_equal(np_(layer.states[0]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        layer.reset_states([np.ones((2, 2), "float32")])


class MinimalCell(Layer):
    """Keras's documented MinimalRNNCell, written with torch ops."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        output = inputs @ self.kernel + torch.tanh(states[0] @ self.recurrent_kernel)
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class KerasMinimalCell(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        ops = keras.ops
        output = ops.matmul(inputs, self.kernel) + ops.tanh(
            ops.matmul(states[0], self.recurrent_kernel))
        return output, [output]


@pytest.mark.parametrize("config", [{}, {"return_sequences": True, "go_backwards": True},
                                    {"return_state": True}])
def test_custom_cell_matches_keras(config):
    k = keras.layers.RNN(KerasMinimalCell(4), **config)
    k(X)
    randomize(k)
    lam = RNN(MinimalCell(4), **config)
    lam(X)
    lam.set_weights(k.get_weights())
    assert_same(lam(X), k(X))
    bi = Bidirectional(RNN(MinimalCell(4)))  # unregistered custom cell still clones
    bi(X)
    assert isinstance(bi.backward_layer.cell, MinimalCell)


def test_custom_cell_with_mask_and_config_round_trip():
    kmodel, lmodel = None, None
    tokens = np.array([[0, 0, 3, 4, 5, 6, 7], [1, 2, 3, 0, 0, 0, 0]])
    k_in, l_in = keras.Input((7,), dtype="int32"), Input((7,), dtype="int32")
    kmodel = keras.Model(k_in, keras.layers.RNN(KerasMinimalCell(3), return_sequences=True)(
        keras.layers.Embedding(10, 5, mask_zero=True)(k_in)))
    lmodel = Model(l_in, RNN(MinimalCell(3), return_sequences=True)(
        Embedding(10, 5, mask_zero=True)(l_in)))
    randomize(kmodel)
    lmodel.set_weights(kmodel.get_weights())
    assert_same(lmodel(tokens), kmodel(tokens))
    layer = RNN(MinimalCell(3), return_sequences=True)
    config = layer.get_config()
    assert config["cell"]["class_name"] == "MinimalCell"
    clone = RNN.from_config(config, custom_objects={"MinimalCell": MinimalCell})
    assert isinstance(clone.cell, MinimalCell) and clone.return_sequences


@pytest.mark.parametrize("config", [{}, {"return_sequences": True, "return_state": True}])
def test_stacked_cells_match_keras(config):
    k = keras.layers.RNN([keras.layers.LSTMCell(4), keras.layers.GRUCell(3),
                          keras.layers.SimpleRNNCell(2)], **config)
    k(X)
    randomize(k)
    lam = RNN([LSTMCell(4), GRUCell(3), SimpleRNNCell(2)], **config)
    assert isinstance(lam.cell, StackedRNNCells)
    lam(X)
    assert [w.shape for w in lam.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    lam.set_weights(k.get_weights())
    out, expected = lam(X), k(X)
    assert_same(out, expected)
    if config:
        assert isinstance(out[1], list) and len(out[1]) == 2 and len(out[3]) == 1


def test_rnn_with_builtin_cell_matches_layer():
    cell_layer = RNN(LSTMCell(4), return_sequences=True)
    cell_layer(X)
    layer = LSTM(4, return_sequences=True)
    layer(X)
    layer.set_weights(cell_layer.get_weights())
    assert_same(cell_layer(X), layer(X))


def test_initial_state_matches_keras():
    h0, c0 = RNG.randn(3, 4).astype("float32"), RNG.randn(3, 4).astype("float32")
    k = keras.layers.LSTM(4, return_sequences=True)
    k(X, initial_state=[h0, c0])
    randomize(k)
    for variant in ({}, {"use_cudnn": False}):
        lam = LSTM(4, return_sequences=True, **variant)
        lam(X)
        lam.set_weights(k.get_weights())
        assert_same(lam(X, initial_state=[h0, c0]), k(X, initial_state=[h0, c0]))
    # symbolic initial states in a functional model
    x_in, h_in, c_in = Input((7, 5)), Input((4,)), Input((4,))
    lstm = LSTM(4)
    model = Model([x_in, h_in, c_in], lstm(x_in, initial_state=[h_in, c_in]))
    lstm.set_weights(k.get_weights())
    assert_same(model([X, h0, c0]), k(X, initial_state=[h0, c0])[:, -1])


@pytest.mark.parametrize("name,kw", [("LSTM", {}), ("GRU", {}), ("GRU", {"reset_after": False}),
                                     ("SimpleRNN", {})])
def test_weights_config_and_round_trip(name, kw):
    k, lam = pair(name, 4, **kw)
    assert [w.shape for w in lam.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    assert [w.shape for w in lam.cell.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    assert lam.cell.name == k.cell.name
    kconfig, config = k.get_config(), lam.get_config()
    kconfig.pop("dtype"), config.pop("dtype")
    config.pop("name"), kconfig.pop("name")
    assert config == kconfig
    kcell, cell = k.cell.get_config(), lam.cell.get_config()
    for c in (kcell, cell):
        c.pop("dtype"), c.pop("name")
    assert cell == kcell
    clone = type(lam).from_config(lam.get_config())
    clone(X)
    clone.set_weights(lam.get_weights())
    assert_same(clone(X), lam(X))
    rnn = RNN(getattr(cells_module, name + "Cell")(4, **kw), return_sequences=True)
    kr = keras.layers.RNN(getattr(keras.layers, name + "Cell")(4, **kw), return_sequences=True)
    c1, c2 = rnn.get_config(), kr.get_config()
    assert set(c1) == set(c2)
    assert c1["cell"]["class_name"] == c2["cell"]["class_name"]
    assert c1["cell"]["module"] == "keras.layers"
    clone = RNN.from_config(c1)
    assert type(clone.cell) is type(rnn.cell)
    stacked = RNN([LSTMCell(2), GRUCell(3)])
    clone = RNN.from_config(stacked.get_config())
    assert [type(c) for c in clone.cell.cells] == [LSTMCell, GRUCell]


def test_keras_config_loads_into_lamina():
    config = keras.layers.LSTM(3, return_sequences=True, dropout=0.1).get_config()
    config.pop("dtype")
    layer = LSTM.from_config(config)
    assert layer.units == 3 and layer.return_sequences and layer.dropout == 0.1
    legacy = {"name": "gru_old", "trainable": True, "units": 3, "implementation": 2,
              "time_major": False, "reset_after": False, "return_sequences": False}
    assert GRU.from_config(legacy).reset_after is False


def test_symbolic_shapes_match_keras():
    for shape in [(7, 5), (None, 5)]:
        for kwargs in [{}, {"return_sequences": True}, {"return_state": True},
                       {"return_sequences": True, "return_state": True}]:
            kout = keras.layers.LSTM(4, **kwargs)(keras.Input(shape))
            lout = LSTM(4, **kwargs)(Input(shape))
            assert [t.shape for t in as_tuple(lout)] == [tuple(t.shape) for t in as_tuple(kout)]
            kout = keras.layers.Bidirectional(keras.layers.GRU(4, **kwargs))(keras.Input(shape))
            lout = Bidirectional(GRU(4, **kwargs))(Input(shape))
            assert [t.shape for t in as_tuple(lout)] == [tuple(t.shape) for t in as_tuple(kout)]
    layer = LSTM(4, return_sequences=True, return_state=True)
    assert layer.compute_output_shape((2, 7, 5)) == \
        keras.layers.LSTM(4, return_sequences=True, return_state=True).compute_output_shape(
            (2, 7, 5))
    out = Bidirectional(LSTM(4), merge_mode=None)(Input((7, 5)))
    assert [t.shape for t in out] == [(None, 4), (None, 4)]


def test_gradients_flow_and_agree_between_paths():
    x = torch.tensor(X, requires_grad=True)
    for name, kw in [("LSTM", {}), ("GRU", {}), ("SimpleRNN", {})]:
        grads = []
        for variant in ({}, {"unroll": True}):
            layer = LAMINA[name](4, return_sequences=True, **kw, **variant)
            layer(X)
            if grads:
                layer.set_weights(weights)
            weights = layer.get_weights()
            x.grad = None
            layer(x).square().sum().backward()
            grads.append([np_(w.grad) for w in layer.weights] + [np_(x.grad)])
            assert all(w.grad is not None for w in layer.weights)
        for a, b in zip(*grads):
            np.testing.assert_allclose(a, b, atol=1e-5)
    bi = Bidirectional(GRU(3, reset_after=False))
    bi(X).sum().backward()
    assert all(w.grad is not None and torch.any(w.grad != 0) for w in bi.weights)


def test_dropout_training_and_inference():
    torch.manual_seed(0)
    for name in ("LSTM", "GRU", "SimpleRNN"):
        plain = LAMINA[name](4, return_sequences=True)
        plain(X)
        drop = LAMINA[name](4, return_sequences=True, dropout=0.5, recurrent_dropout=0.5)
        drop(X)
        drop.set_weights(plain.get_weights())
        assert_same(drop(X), plain(X))  # inference: no dropout
        trained = drop(X, training=True)
        assert not np.allclose(np_(trained), np_(plain(X)))
        drop_in = LAMINA[name](4, return_sequences=True, dropout=0.999, seed=3)
        drop_in(X)
        drop_in.set_weights(plain.get_weights())
        zero_in = LAMINA[name](4, return_sequences=True)
        zero_in(X)
        zero_in.set_weights(plain.get_weights())
        # all inputs dropped: same as running on zeros
        assert_same(drop_in(X, training=True), zero_in(np.zeros_like(X)), atol=1e-5)
        assert drop.cell._dropout_mask is None  # masks are not kept between calls


def test_unit_forget_bias_and_initializers():
    layer = LSTM(3)
    layer(X)
    bias = layer.get_weights()[2]
    np.testing.assert_array_equal(bias, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    recurrent = layer.get_weights()[1]
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(3), atol=1e-5)  # orthogonal
    assert LSTM(3, unit_forget_bias=False, bias_initializer="ones").units == 3
    layer = LSTM(3, unit_forget_bias=False, bias_initializer="ones")
    layer(X)
    np.testing.assert_array_equal(layer.get_weights()[2], np.ones(12))
    assert layer.cell.kernel.shape == (12, 5)  # stored in torch layout


def test_regularizers_and_properties():
    layer = GRU(3, kernel_regularizer="l2", recurrent_regularizer="l1", activity_regularizer="l2")
    layer(X)
    assert len(layer.losses) >= 2
    assert layer.units == 3 and layer.reset_after is True
    assert layer.kernel_regularizer is layer.cell.kernel_regularizer


def test_time_major():
    layer = LSTM(4, return_sequences=True, time_major=True)
    ref = LSTM(4, return_sequences=True)
    ref(X)
    layer(np.ascontiguousarray(X.transpose(1, 0, 2)))
    layer.set_weights(ref.get_weights())
    out = layer(np.ascontiguousarray(X.transpose(1, 0, 2)))
    assert out.shape == (7, 3, 4)
    np.testing.assert_allclose(np_(out).transpose(1, 0, 2), np_(ref(X)), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="ndim=3"):
        LSTM(3)(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match="units"):
        LSTM(0)
    with pytest.raises(ValueError, match="use_cudnn"):
        GRU(2, use_cudnn="yes")
    with pytest.raises(ValueError, match="state_size"):
        RNN(Dense(3))
    with pytest.raises(ValueError, match="Bidirectional"):
        Bidirectional("lstm")
