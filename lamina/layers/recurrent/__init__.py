"""Recurrent layers: `RNN` and its cells, `SimpleRNN`, `LSTM`, `GRU`, `Bidirectional`."""
from lamina.layers.recurrent.bidirectional import Bidirectional
from lamina.layers.recurrent.cells import DropoutRNNCell, GRUCell, LSTMCell, SimpleRNNCell
from lamina.layers.recurrent.gru import GRU
from lamina.layers.recurrent.lstm import LSTM
from lamina.layers.recurrent.rnn import RNN, StackedRNNCells
from lamina.layers.recurrent.simple_rnn import SimpleRNN

PUBLIC_OBJECTS = {cls.__name__: cls for cls in (
    RNN, StackedRNNCells, SimpleRNNCell, LSTMCell, GRUCell, SimpleRNN, LSTM, GRU, Bidirectional)}

__all__ = ["RNN", "StackedRNNCells", "SimpleRNNCell", "LSTMCell", "GRUCell", "DropoutRNNCell",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional"]
