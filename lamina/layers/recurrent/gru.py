"""`GRU`: Gated Recurrent Unit layer (Cho et al. 2014)."""
from lamina.layers.recurrent.cells import GRUCell
from lamina.layers.recurrent.rnn import _CellRNN


class GRU(_CellRNN):
    """Gated Recurrent Unit layer; weights live on `layer.cell`: `kernel (input_dim, 3*units)`,
    `recurrent_kernel (units, 3*units)`, `bias (2, 3*units)` (`reset_after=True`, the default)
    or `(3*units,)`, gates `z, r, h`.

    With `reset_after=True` and Keras's defaults (tanh/sigmoid, no recurrent dropout in
    training, no mask, not `unroll`) it runs torch's fused GRU kernel.
    """

    _cell_attrs = ("units", "activation", "recurrent_activation", "use_bias",
                   "kernel_initializer", "recurrent_initializer", "bias_initializer",
                   "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                   "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                   "recurrent_dropout", "reset_after", "implementation", "seed")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, reset_after=True,
                 use_cudnn="auto", **kwargs):
        cell = GRUCell(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            dropout=dropout, recurrent_dropout=recurrent_dropout, reset_after=reset_after,
            seed=seed, **self._cell_kwargs(kwargs, "gru_cell"))
        super().__init__(cell, use_cudnn=use_cudnn, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, **kwargs)
