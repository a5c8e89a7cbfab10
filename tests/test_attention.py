import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

import lamina
from lamina.layers.attention import AdditiveAttention, Attention, MultiHeadAttention

keras = pytest.importorskip("keras")

RS = np.random.RandomState(7)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _rand(*shape):
    return RS.randn(*shape).astype("float32")


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _config_matches(ours, theirs):
    for key, value in theirs.items():
        if key in ("name", "dtype"):
            continue
        assert key in ours, key
        assert _plain(ours[key]) == _plain(value), (key, ours[key], value)


def _close(ours, theirs, atol=1e-5):
    np.testing.assert_allclose(_np(ours), _np(theirs), atol=atol)


Q = _rand(2, 4, 3)
V = _rand(2, 5, 3)
K = _rand(2, 5, 3)
Q_MASK = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], dtype=bool)
V_MASK = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=bool)


# ---------------------------------------------------------------- Attention / AdditiveAttention

def _attention_pair(k_cls, l_cls, inputs, **kwargs):
    k = k_cls(**kwargs)
    k(inputs)
    layer = l_cls(**kwargs)
    layer(inputs)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    weights = [np.asarray(RS.rand(*w.shape) + 0.5, "float32") for w in k.get_weights()]
    k.set_weights(weights)
    layer.set_weights(weights)
    return k, layer


@pytest.mark.parametrize("cls_name,kwargs", [
    ("Attention", {}),
    ("Attention", {"use_scale": True}),
    ("Attention", {"score_mode": "concat"}),
    ("Attention", {"score_mode": "concat", "use_scale": True}),
    ("AdditiveAttention", {}),
    ("AdditiveAttention", {"use_scale": False}),
])
@pytest.mark.parametrize("with_key", [False, True])
def test_attention_layers_match_keras(cls_name, kwargs, with_key):
    inputs = [Q, V, K] if with_key else [Q, V]
    k, layer = _attention_pair(getattr(keras.layers, cls_name),
                               getattr(lamina.layers.attention, cls_name), inputs, **kwargs)
    _close(layer(inputs), k(inputs))
    masks = [Q_MASK, V_MASK]
    tmasks = [torch.as_tensor(m) for m in masks]
    _close(layer(inputs, mask=tmasks), k(inputs, mask=masks))
    _close(layer(inputs, use_causal_mask=True), k(inputs, use_causal_mask=True))
    out, scores = layer(inputs, mask=tmasks, use_causal_mask=True, return_attention_scores=True)
    k_out, k_scores = k(inputs, mask=masks, use_causal_mask=True, return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)
    _config_matches(layer.get_config(), k.get_config())
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_attention_masks_semantics():
    layer = Attention()
    out, scores = layer([Q, V], mask=[torch.as_tensor(Q_MASK), torch.as_tensor(V_MASK)],
                        return_attention_scores=True)
    scores, out = _np(scores), _np(out)
    np.testing.assert_allclose(scores[..., ~V_MASK[0]][0], 0.0, atol=1e-7)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[0, 2], 0.0)  # masked query step
    expected = np.exp(Q[1] @ V[1].T)
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(scores[1], expected, rtol=1e-5)
    np.testing.assert_allclose(out[1], expected @ V[1], atol=1e-5)


def test_attention_output_mask_eager_and_symbolic():
    q = torch.tensor(Q)
    q._keras_mask = torch.as_tensor(Q_MASK)
    v = torch.tensor(V)
    v._keras_mask = torch.as_tensor(V_MASK)
    layer = Attention()
    out = layer([q, v])
    assert torch.equal(out._keras_mask, q._keras_mask)
    explicit = layer([Q, V], mask=[torch.as_tensor(Q_MASK), torch.as_tensor(V_MASK)])
    _close(out, explicit, atol=0)
    tq = lamina.Input(shape=(4,), dtype="int32")
    tv = lamina.Input(shape=(5,), dtype="int32")
    from lamina.layers.core import Embedding
    emb = Embedding(10, 3, mask_zero=True)
    sym = Attention()([emb(tq), emb(tv)])
    assert tuple(sym.shape) == (None, 4, 3)
    assert tuple(sym._keras_mask.shape) == (None, 4)


def test_attention_symbolic_shapes():
    q, v = lamina.Input(shape=(4, 3)), lamina.Input(shape=(6, 7))
    k = lamina.Input(shape=(6, 3))
    assert tuple(Attention()([q, v, k]).shape) == (None, 4, 7)
    out, scores = AdditiveAttention()([q, v, k], return_attention_scores=True)
    assert tuple(out.shape) == (None, 4, 7) and tuple(scores.shape) == (None, 4, 6)


def test_attention_dropout_only_in_training():
    torch.manual_seed(0)
    layer = Attention(dropout=0.5)
    base = _np(layer([Q, V]))
    np.testing.assert_allclose(_np(layer([Q, V], training=False)), base)
    reps = 2000  # many draws at once: the batch repeated
    big = layer([np.tile(Q, (reps, 1, 1)), np.tile(V, (reps, 1, 1))], training=True)
    draws = _np(big).reshape(reps, *Q.shape)
    assert not np.allclose(draws[0], base)
    # Inverted dropout keeps the expectation.
    np.testing.assert_allclose(draws.mean(axis=0), base, atol=0.15)
    _, scores = layer([Q, V], training=True, return_attention_scores=True)
    np.testing.assert_allclose(_np(scores).sum(-1), 1.0, atol=1e-6)  # scores before dropout


def test_attention_gradients():
    layer = AdditiveAttention()
    q = torch.tensor(Q, requires_grad=True)
    v = torch.tensor(V, requires_grad=True)
    layer([q, v]).sum().backward()
    assert q.grad is not None and v.grad is not None and layer.scale.grad is not None
    dot = Attention(use_scale=True, score_mode="concat")
    dot([Q, V]).square().sum().backward()
    assert dot.scale.grad is not None and dot.concat_score_weight.grad is not None


def test_attention_errors():
    with pytest.raises(ValueError, match="score_mode"):
        Attention(score_mode="cosine")
    with pytest.raises(ValueError, match="list of inputs"):
        Attention()(Q)
    with pytest.raises(ValueError, match="length 2 or 3"):
        Attention()([Q])
    layer = Attention()
    with pytest.raises(ValueError, match="mask must be a list"):
        layer([Q, V], mask=torch.as_tensor(Q_MASK))


# ---------------------------------------------------------------- MultiHeadAttention

MQ = _rand(2, 4, 5)
MV = _rand(2, 6, 7)
MK = _rand(2, 6, 3)


def _mha_pair(query, value, key=None, **kwargs):
    k = keras.layers.MultiHeadAttention(**kwargs)
    layer = MultiHeadAttention(**kwargs)
    args = (query, value) if key is None else (query, value, key)
    k(*args)
    layer(*args)
    assert [w.shape for w in layer.get_weights()] == [tuple(w.shape) for w in k.get_weights()]
    weights = [RS.randn(*w.shape).astype("float32") * 0.5 for w in k.get_weights()]
    k.set_weights(weights)
    layer.set_weights(weights)
    return k, layer


@pytest.mark.parametrize("kwargs", [
    {"num_heads": 2, "key_dim": 3},
    {"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": 6},
    {"num_heads": 2, "key_dim": 3, "output_shape": (2, 3), "use_bias": False},
    {"num_heads": 2, "key_dim": 3, "use_gate": True},
    {"num_heads": 1, "key_dim": 4, "sliding_window": 2},
])
@pytest.mark.parametrize("with_key", [False, True])
def test_mha_matches_keras(kwargs, with_key):
    key = MK if with_key else None
    k, layer = _mha_pair(MQ, MV, key, **kwargs)
    args = (MQ, MV) if key is None else (MQ, MV, MK)
    _close(layer(*args), k(*args))
    out, scores = layer(*args, return_attention_scores=True)
    k_out, k_scores = k(*args, return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)
    mask = RS.rand(2, 4, 6) > 0.3
    _close(layer(*args, attention_mask=torch.as_tensor(mask)), k(*args, attention_mask=mask))
    _close(layer(*args, use_causal_mask=True), k(*args, use_causal_mask=True))
    _close(layer(*args, attention_mask=torch.as_tensor(mask), use_causal_mask=True),
           k(*args, attention_mask=mask, use_causal_mask=True))
    out, scores = layer(*args, attention_mask=torch.as_tensor(mask), use_causal_mask=True,
                        return_attention_scores=True)
    k_out, k_scores = k(*args, attention_mask=mask, use_causal_mask=True,
                        return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)
    _config_matches(layer.get_config(), k.get_config())


def test_mha_weight_order_names_and_layouts():
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, output_shape=(2, 5))
    layer(MQ, MV, MK)
    names = [r.name for _, r in layer._weight_slots()]
    assert names == ["query/kernel", "query/bias", "key/kernel", "key/bias", "value/kernel",
                     "value/bias", "attention_output/kernel", "attention_output/bias"]
    shapes = [w.shape for w in layer.get_weights()]
    assert shapes == [(5, 2, 3), (2, 3), (3, 2, 3), (2, 3), (7, 2, 4), (2, 4), (2, 4, 2, 5),
                      (2, 5)]
    # Stored transposed for F.linear; Keras layout only at the boundary.
    assert tuple(layer.query_kernel.shape) == (2, 3, 5)
    assert tuple(layer.output_kernel.shape) == (2, 5, 2, 4)
    weights = [RS.randn(*s).astype("float32") for s in shapes]
    layer.set_weights(weights)
    for ours, theirs in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(ours, theirs)
    # Hand computation of the query projection.
    q = np.einsum("btd,dhk->bthk", MQ, weights[0]) + weights[1]
    np.testing.assert_allclose(_np(layer._project(torch.tensor(MQ), layer.query_kernel,
                                                  layer.query_bias)), q, atol=1e-5)


@pytest.mark.parametrize("attention_axes", [None, 2, (1, 2)])
def test_mha_higher_rank_attention_axes_match_keras(attention_axes):
    q = _rand(2, 3, 4, 5)
    v = _rand(2, 3, 4, 6)
    k, layer = _mha_pair(q, v, num_heads=2, key_dim=3, attention_axes=attention_axes)
    _close(layer(q, v), k(q, v))
    out, scores = layer(q, v, return_attention_scores=True)
    k_out, k_scores = k(q, v, return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)
    _config_matches(layer.get_config(), k.get_config())


def test_mha_keras_masks_from_inputs():
    k, layer = _mha_pair(MQ, MV, num_heads=2, key_dim=3)
    q_mask = torch.as_tensor(RS.rand(2, 4) > 0.3)
    v_mask = torch.as_tensor(RS.rand(2, 6) > 0.3)
    v_mask[:, 0] = True

    def tensors():
        q, v = torch.tensor(MQ), torch.tensor(MV)
        q._keras_mask, v._keras_mask = q_mask, v_mask
        return q, v

    ours = layer(*tensors())
    _close(ours, k(*tensors()))
    assert torch.equal(ours._keras_mask, q_mask)
    explicit = layer(MQ, MV, query_mask=q_mask, value_mask=v_mask)
    _close(explicit, ours, atol=1e-6)
    _close(layer(MQ, MV, value_mask=v_mask), k(MQ, MV, value_mask=v_mask.numpy()))
    out, scores = layer(*tensors(), return_attention_scores=True)
    k_out, k_scores = k(*tensors(), return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)


def test_mha_symbolic_shapes_and_config_round_trip():
    q, v = lamina.Input(shape=(4, 5)), lamina.Input(shape=(6, 7))
    layer = MultiHeadAttention(num_heads=2, key_dim=3, output_shape=8, dropout=0.1,
                               kernel_regularizer="l2")
    out, scores = layer(q, v, return_attention_scores=True)
    assert tuple(out.shape) == (None, 4, 8) and tuple(scores.shape) == (None, 2, 4, 6)
    assert tuple(MultiHeadAttention(2, 3)(q, v).shape) == (None, 4, 5)
    assert layer.compute_output_shape((None, 4, 5), (None, 6, 7)) == (None, 4, 8)
    config = layer.get_config()
    assert config["attention_axes"] == (1,) and config["output_shape"] == (8,)
    clone = MultiHeadAttention.from_config(config)
    clone(np.zeros((1, 4, 5), "float32"), np.zeros((1, 6, 7), "float32"))
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in layer.get_weights()]
    assert clone.get_config() == config
    k = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, output_shape=8, dropout=0.1,
                                        kernel_regularizer="l2")
    k(keras.Input((4, 5)), keras.Input((6, 7)))
    _config_matches(config, k.get_config())


def test_mha_dropout_and_gradients():
    torch.manual_seed(0)
    k, layer = _mha_pair(MQ, MV, num_heads=2, key_dim=3, dropout=0.5)
    _close(layer(MQ, MV), k(MQ, MV))
    _close(layer(MQ, MV, training=False), k(MQ, MV, training=False))
    assert not np.allclose(_np(layer(MQ, MV, training=True)), _np(layer(MQ, MV)))
    q = torch.tensor(MQ, requires_grad=True)
    layer(q, MV, training=True).square().sum().backward()
    assert q.grad is not None
    assert all(p.grad is not None for p in layer.parameters())


def test_mha_activity_regularizer_on_each_projection():
    layer = MultiHeadAttention(num_heads=2, key_dim=3, activity_regularizer="l1")
    out = layer(MQ, MV)
    assert len(layer.losses) == 4  # query, key, value, output projections
    np.testing.assert_allclose(float(layer.losses[-1]), 0.01 * np.abs(_np(out)).sum() / 2,
                               rtol=1e-5)


def test_mha_errors():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(num_heads=0, key_dim=2)
    with pytest.raises(ValueError, match="key_dim"):
        MultiHeadAttention(num_heads=2, key_dim=None)
    with pytest.raises(ValueError, match="value_dim"):
        MultiHeadAttention(num_heads=2, key_dim=2, value_dim=-1)
    with pytest.raises(ValueError, match="attention_axes"):
        MultiHeadAttention(num_heads=2, key_dim=2, attention_axes="time")
    with pytest.raises(ValueError, match="sliding_window"):
        MultiHeadAttention(num_heads=2, key_dim=2, sliding_window=0)
    with pytest.raises(ValueError, match="value` and `key"):
        MultiHeadAttention(num_heads=2, key_dim=2)(MQ, MV, _rand(2, 5, 3))
    with pytest.raises(ValueError, match="flash attention"):
        MultiHeadAttention(num_heads=2, key_dim=2, dropout=0.1, flash_attention=True)


def test_fully_masked_rows_match_keras():
    mask = np.ones((2, 4, 6), dtype=bool)
    mask[0, 1] = False  # query step attending nowhere
    k, layer = _mha_pair(MQ, MV, num_heads=2, key_dim=3)
    _close(layer(MQ, MV, attention_mask=torch.as_tensor(mask)), k(MQ, MV, attention_mask=mask))
    out, scores = layer(MQ, MV, attention_mask=torch.as_tensor(mask),
                        return_attention_scores=True)
    k_out, k_scores = k(MQ, MV, attention_mask=mask, return_attention_scores=True)
    _close(out, k_out)
    _close(scores, k_scores)
    np.testing.assert_array_equal(_np(scores)[0, :, 1], 0.0)  # Keras's masked softmax zeroes
    v_mask = np.zeros((2, 5), dtype=bool)
    v_mask[1] = True
    k2, l2 = _attention_pair(keras.layers.Attention, Attention, [Q, V])
    _close(l2([Q, V], mask=[None, torch.as_tensor(v_mask)]), k2([Q, V], mask=[None, v_mask]))


def test_mha_keyword_call_with_arrays():
    k, layer = _mha_pair(MQ, MV, num_heads=2, key_dim=3)
    fresh = MultiHeadAttention(num_heads=2, key_dim=3)
    out = fresh(query=MQ, value=MV)
    assert tuple(out.shape) == (2, 4, 5)
    fresh.set_weights(k.get_weights())
    _close(fresh(query=MQ, value=MV, key=MV), k(query=MQ, value=MV))


def test_mha_accepts_keras2_config_keys():
    layer = MultiHeadAttention.from_config({"name": "mha", "trainable": True, "num_heads": 2,
                                            "key_dim": 3, "query_shape": [None, 4, 5],
                                            "key_shape": [None, 6, 7],
                                            "value_shape": [None, 6, 7]})
    assert tuple(layer(MQ, MV).shape) == (2, 4, 5)
