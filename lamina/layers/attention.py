"""Attention layers: Attention (dot-product, Luong), AdditiveAttention (Bahdanau) and
MultiHeadAttention.

Where no attention scores are asked for, the products run through
`F.scaled_dot_product_attention` (masks become an additive bias, as in Keras's torch backend);
otherwise scores are computed explicitly with Keras's masked softmax (masked positions get a
large negative logit and a zero probability).

`MultiHeadAttention` keeps Keras's weights as its own, in Keras's order and layouts: query, key,
(gate,) value and output projection kernels and biases, named `query/kernel`, `query/bias`, ...
(Keras's sub-layer paths). Kernels are stored transposed for `F.linear`.
"""
import math
import string

import torch
import torch.nn.functional as F

from lamina import constraints, initializers, regularizers
from lamina.engine.layer import Layer, _to_tensor
from lamina.layers.activation import masked_softmax
from lamina.saving import serialization_lib


def _serialize(obj):
    return serialization_lib.serialize_keras_object(obj)


def _tensor(x, like=None):
    if x is None or isinstance(x, torch.Tensor):
        return x
    t = torch.as_tensor(x)
    if like is not None:
        t = t.to(like.device)
        if t.is_floating_point():
            t = t.to(like.dtype)
    return t


def _as_bool(mask):
    return mask if mask.dtype == torch.bool else mask != 0


def _sdpa_bias(mask, dtype):
    """Boolean mask (true = attend) -> additive bias, with Keras torch's large negative."""
    negative = -0.7 * (65500.0 if dtype == torch.float16 else 3.38953e38)
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    return torch.where(mask, zero, torch.tensor(negative, dtype=dtype, device=mask.device))


class Attention(Layer):
    """Dot-product attention: `softmax(query @ key^T) @ value`, on inputs `[query, value]` or
    `[query, value, key]` shaped `(batch, Tq, dim)`, `(batch, Tv, dim)`.

    `score_mode="concat"` scores with `sum(tanh(query + key))`; `use_scale` learns a scalar
    multiplier of the scores. Masks: `mask=[query_mask, value_mask]`.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = dropout
        self.seed = seed
        self.scale = None
        self.concat_score_weight = None

    def _validate_inputs(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{name} layer must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received: inputs={inputs}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer accepts inputs list of length 2 or 3, namely "
                             "[query, value] or [query, value, key]. "
                             f"Received length: {len(inputs)}.")
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                raise ValueError(f"{name} layer mask must be a list, namely "
                                 f"[query_mask, value_mask]. Received: mask={mask}.")
            if not 2 <= len(mask) <= 3:
                raise ValueError(f"{name} layer accepts mask list of length 2 or 3. "
                                 f"Received: mask={mask}.")

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(shape=(), name="scale", initializer="ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(shape=(), name="concat_score_weight",
                                                       initializer="ones")

    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(-2, -1))
            return scores * self.scale if self.scale is not None else scores
        summed = query.unsqueeze(-2) + key.unsqueeze(-3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * torch.sum(torch.tanh(summed), dim=-1)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        self._validate_inputs(inputs, mask)
        query = inputs[0]
        value = _tensor(inputs[1], query)
        key = _tensor(inputs[2], query) if len(inputs) > 2 else value
        q_mask = _tensor(mask[0], query) if mask else None
        v_mask = _tensor(mask[1], query) if mask else None
        score_mask = None
        if v_mask is not None:
            score_mask = _as_bool(v_mask).unsqueeze(-2)
        if use_causal_mask:
            rows = torch.arange(query.shape[-2], device=query.device)
            cols = torch.arange(key.shape[-2], device=query.device)
            causal = (rows[:, None] >= cols[None, :]).unsqueeze(0)
            score_mask = causal if score_mask is None else score_mask & causal
        max_value = 65504.0 if query.dtype == torch.float16 else 1.0e9
        rate = self.dropout if training else 0.0
        if self.score_mode == "dot" and not return_attention_scores:
            scaled = query * self.scale if self.scale is not None else query
            bias = None
            if score_mask is not None:
                bias = torch.where(score_mask, 0.0, -max_value).to(query.dtype)
            output = F.scaled_dot_product_attention(scaled, key, value, attn_mask=bias,
                                                    dropout_p=rate, scale=1.0)
            weights = None
        else:
            scores = self._scores(query, key)
            if score_mask is not None:
                scores = torch.where(score_mask, scores, scores - max_value)
            weights = torch.softmax(scores, dim=-1)
            dropped = F.dropout(weights, rate, training=True) if rate > 0 else weights
            output = torch.matmul(dropped, value)
        if q_mask is not None:
            output = torch.where(_as_bool(q_mask).unsqueeze(-1), output, 0.0)
        if return_attention_scores:
            return output, weights
        return output

    def compute_mask(self, inputs, mask=None):
        self._validate_inputs(inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], input_shape[1][-1])

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout, "seed": self.seed}


class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores `sum(scale * tanh(query + key))`, with `scale` a
    learned vector of size `dim` when `use_scale=True`."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(shape=(input_shape[0][-1],), name="scale",
                                         initializer="glorot_uniform")

    def _scores(self, query, key):
        summed = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))
        if self.scale is not None:
            summed = self.scale * summed
        return torch.sum(summed, dim=-1)

    def call(self, inputs, mask=None, training=None, return_attention_scores=False,
             use_causal_mask=False):
        # Additive scores are never a plain product: always the explicit path.
        output, weights = super().call(inputs, mask=mask, training=training,
                                       return_attention_scores=True,
                                       use_causal_mask=use_causal_mask)
        return (output, weights) if return_attention_scores else output

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


def _attention_equations(rank, attn_axes):
    """Einsum equations `(key, query) -> scores` and `(scores, value) -> output` for projected
    tensors of rank `rank` (`(batch, *axes, heads, dim)`), attending over `attn_axes`."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = [i for i in range(rank) if i not in attn_axes and i != rank - 1]
    source, offset = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017): `mha(query, value, key=None, ...)`.

    Projects query/key/value to `num_heads` heads of `key_dim` (`value_dim`) units, attends over
    `attention_axes` (default: all axes but batch, heads and features) and projects back to the
    query's last dimension (or `output_shape`). Weights, Keras layout: `query/kernel`
    `(dim, heads, key_dim)`, `query/bias` `(heads, key_dim)`, same for key and value,
    `attention_output/kernel` `(heads, value_dim, *output_shape)`, `attention_output/bias`.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, sliding_window=None,
                 flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError("Received an invalid value for argument `num_heads`, expected a "
                             f"positive integer. Received: num_heads={num_heads}")
        if not isinstance(key_dim, int) or key_dim <= 0:
            raise ValueError("Received an invalid value for argument `key_dim`, expected a "
                             f"positive integer. Received: key_dim={key_dim}")
        if value_dim is not None and (not isinstance(value_dim, int) or value_dim <= 0):
            raise ValueError("Received an invalid value for argument `value_dim`, expected a "
                             f"positive integer or `None`. Received: value_dim={value_dim}")
        for legacy in ("query_shape", "key_shape", "value_shape"):  # Keras 2 configs
            kwargs.pop(legacy, None)
        super().__init__(**kwargs)
        self.supports_masking = True
        self._num_heads = num_heads
        self._key_dim = key_dim
        self._value_dim = value_dim if value_dim else key_dim
        self._dropout = dropout
        self._use_bias = use_bias
        self._use_gate = use_gate
        if output_shape:
            if isinstance(output_shape, int):
                output_shape = (output_shape,)
            try:
                output_shape = tuple(int(d) for d in output_shape)
            except (TypeError, ValueError):
                raise ValueError(f"Invalid `output_shape`: {output_shape}. When specified, the "
                                 "`output_shape` should be of type tuple, list, or int.") from None
        self._output_shape = output_shape or None
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes and not isinstance(attention_axes, (list, tuple)):
            raise ValueError("`attention_axes` must be an int, list, or tuple. "
                             f"Received: attention_axes={attention_axes}")
        self._attention_axes = tuple(attention_axes) if attention_axes else None
        if sliding_window is not None and (not isinstance(sliding_window, int)
                                           or sliding_window <= 0):
            raise ValueError("`sliding_window` must be `None` or a positive integer. "
                             f"Received: sliding_window={sliding_window}")
        self._sliding_window = sliding_window
        self._flash_attention = flash_attention
        if flash_attention and dropout > 0.0:
            raise ValueError("Dropout is not supported when flash attention is enabled. "
                             "Please set dropout to 0.0 to use flash attention.")
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(key_dim))

    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)

    # ------------------------------------------------------------------ build
    def _maybe_build(self, args, kwargs):
        if not self.built and len(args) < 3 and kwargs.get("key") is None:
            value = args[1] if len(args) > 1 else kwargs.get("value")
            kwargs = {**kwargs, "key": value}
        super()._maybe_build(args, kwargs)

    def _projection(self, prefix, dim, heads_dim):
        if dim is None:
            raise ValueError(f"Layer '{self.name}' (MultiHeadAttention): the last dimension of "
                             f"the {prefix} input must be defined.")
        kernel = self.add_weight(shape=(dim, self._num_heads, heads_dim), name=f"{prefix}/kernel",
                                 initializer=self._kernel_initializer,
                                 regularizer=self._kernel_regularizer,
                                 constraint=self._kernel_constraint, layout=(1, 2, 0))
        bias = None
        if self._use_bias:
            bias = self.add_weight(shape=(self._num_heads, heads_dim), name=f"{prefix}/bias",
                                   initializer=self._bias_initializer,
                                   regularizer=self._bias_regularizer,
                                   constraint=self._bias_constraint)
        return kernel, bias

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError("All dimensions of `value` and `key`, except the last one, must be "
                             f"equal. Received: value_shape={value_shape} and "
                             f"key_shape={key_shape}")
        self.query_kernel, self.query_bias = self._projection("query", query_shape[-1],
                                                              self._key_dim)
        self.key_kernel, self.key_bias = self._projection("key", key_shape[-1], self._key_dim)
        self.gate_kernel = self.gate_bias = None
        if self._use_gate:
            self.gate_kernel, self.gate_bias = self._projection("gate", query_shape[-1],
                                                                self._value_dim)
        self.value_kernel, self.value_bias = self._projection("value", value_shape[-1],
                                                              self._value_dim)
        out_dims = self._output_shape or (query_shape[-1],)
        m = len(out_dims)
        self.output_kernel = self.add_weight(
            shape=(self._num_heads, self._value_dim) + tuple(out_dims),
            name="attention_output/kernel", initializer=self._kernel_initializer,
            regularizer=self._kernel_regularizer, constraint=self._kernel_constraint,
            layout=tuple(range(2, 2 + m)) + (0, 1))
        self.output_bias = None
        if self._use_bias:
            self.output_bias = self.add_weight(shape=tuple(out_dims),
                                               name="attention_output/bias",
                                               initializer=self._bias_initializer,
                                               regularizer=self._bias_regularizer,
                                               constraint=self._bias_constraint)
        self._out_dims = tuple(out_dims)
        rank = len(query_shape) + 1
        if self._attention_axes is None:
            self._attention_axes = tuple(range(1, rank - 2))
        else:
            self._attention_axes = tuple(a if a >= 0 else (rank - 1) + a
                                         for a in self._attention_axes)
        self._dot_product_equation, self._combine_equation, scores_rank = (
            _attention_equations(rank, self._attention_axes))
        n = len(self._attention_axes)
        self._norm_axes = tuple(range(scores_rank - n, scores_rank))
        self._standard = rank == 4 and self._attention_axes == (1,)

    # ------------------------------------------------------------------ call
    def _project(self, x, kernel, bias, activation=None):
        heads, units = kernel.shape[0], kernel.shape[1]
        out = F.linear(x, kernel.reshape(heads * units, -1),
                       None if bias is None else bias.reshape(-1))
        if activation is not None:
            out = activation(out)
        self._regularize_activity(out)
        return out.reshape(*x.shape[:-1], heads, units)

    def _regularize_activity(self, out):
        # Keras gives the activity regularizer to each projection sub-layer.
        if self._activity_regularizer is not None:
            self.add_loss(self._activity_regularizer(out) / out.shape[0])

    def _attention_mask(self, query, value, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask):
        auto = None
        for m, axis in ((query_mask, -1), (value_mask, -2), (key_mask, -2)):
            if m is not None:
                m = _as_bool(m).unsqueeze(axis)
                auto = m if auto is None else auto & m
        q_len, v_len = query.shape[1], value.shape[1]
        rows = torch.arange(q_len, device=query.device)[:, None]
        cols = torch.arange(v_len, device=query.device)[None, :]
        if use_causal_mask:
            causal = (rows >= cols).unsqueeze(0)
            auto = causal if auto is None else auto & causal
        if self._sliding_window is not None:
            window = ((rows - cols).abs() < self._sliding_window).unsqueeze(0)
            auto = window if auto is None else auto & window
        if attention_mask is not None:
            attention_mask = _as_bool(attention_mask)
        if auto is not None:
            attention_mask = auto if attention_mask is None else attention_mask & auto
        return attention_mask

    def _expand_mask(self, mask, ndim):
        axis = -len(self._attention_axes) * 2 - 1
        while mask.dim() < ndim:
            mask = mask.unsqueeze(axis)
        return mask

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False, mask=None):
        if not isinstance(query, torch.Tensor):
            query = _to_tensor(query, self.dtype)
        value = _tensor(value, query)
        key = _tensor(key, query)
        if query_mask is None:
            query_mask = getattr(query, "_keras_mask", None)
        if value_mask is None:
            value_mask = getattr(value, "_keras_mask", None)
        if key_mask is None and key is not None:
            key_mask = getattr(key, "_keras_mask", None)
        if key is None:
            key = value
        query_mask, value_mask, key_mask, attention_mask = (
            _tensor(m, query) for m in (query_mask, value_mask, key_mask, attention_mask))
        if self._flash_attention and return_attention_scores:
            raise ValueError("Returning attention scores is not supported when flash attention "
                             "is enabled. Please disable flash attention to access attention "
                             "scores.")
        causal_only = (use_causal_mask and query_mask is None and value_mask is None
                       and key_mask is None and attention_mask is None
                       and self._sliding_window is None)
        fused = self._standard and not return_attention_scores
        if not (causal_only and fused):
            attention_mask = self._attention_mask(query, value, query_mask, value_mask, key_mask,
                                                  attention_mask, use_causal_mask)
        gate = None
        if self._use_gate:
            gate = self._project(query, self.gate_kernel, self.gate_bias, torch.sigmoid)
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        rate = self._dropout if training else 0.0
        scores = None
        if fused:
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            bias = None
            if attention_mask is not None:
                bias = _sdpa_bias(self._expand_mask(attention_mask, 4), q.dtype)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=rate,
                                                 is_causal=causal_only,
                                                 scale=self._inverse_sqrt_key_dim)
            out = out.transpose(1, 2)
        else:
            scores = torch.einsum(self._dot_product_equation, k, q * self._inverse_sqrt_key_dim)
            if attention_mask is not None:
                attention_mask = self._expand_mask(attention_mask, scores.dim())
            scores = masked_softmax(scores, attention_mask, self._norm_axes)
            probs = F.dropout(scores, rate, training=True) if rate > 0 else scores
            out = torch.einsum(self._combine_equation, probs, v)
        if gate is not None:
            out = out * gate
        heads_units = out.shape[-2] * out.shape[-1]
        out = F.linear(out.reshape(*out.shape[:-2], heads_units),
                       self.output_kernel.reshape(-1, heads_units),
                       None if self.output_bias is None else self.output_bias.reshape(-1))
        self._regularize_activity(out)
        out = out.reshape(*out.shape[:-1], *self._out_dims)
        if return_attention_scores:
            return out, scores
        return out

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        return mask

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape = tuple(query_shape), tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError("All dimensions of `value` and `key`, except the last one, must be "
                             f"equal. Received: value_shape={value_shape} and "
                             f"key_shape={key_shape}")
        if self._output_shape:
            return query_shape[:-1] + self._output_shape
        return query_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self._num_heads, "key_dim": self._key_dim,
                "value_dim": self._value_dim, "dropout": self._dropout,
                "use_bias": self._use_bias, "use_gate": self._use_gate,
                "output_shape": self._output_shape, "attention_axes": self._attention_axes,
                "sliding_window": self._sliding_window,
                "kernel_initializer": _serialize(self._kernel_initializer),
                "bias_initializer": _serialize(self._bias_initializer),
                "kernel_regularizer": _serialize(self._kernel_regularizer),
                "bias_regularizer": _serialize(self._bias_regularizer),
                "activity_regularizer": _serialize(self._activity_regularizer),
                "kernel_constraint": _serialize(self._kernel_constraint),
                "bias_constraint": _serialize(self._bias_constraint), "seed": self.seed}
