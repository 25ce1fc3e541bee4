"""i2dl_keras.layers: the course's layers as registered, serializable Keras layers."""

from i2dl_keras.layers.average_pooling2d import AveragePooling2D
from i2dl_keras.layers.classic_dropout import ClassicDropout
from i2dl_keras.layers.contrast_normalization import ContrastNormalization
from i2dl_keras.layers.elu import ELU
from i2dl_keras.layers.leaky_relu import LeakyReLU
from i2dl_keras.layers.lstm import LSTM
from i2dl_keras.layers.lstm_cell import LSTMCell
from i2dl_keras.layers.max_pooling2d import MaxPooling2D
from i2dl_keras.layers.maxout import Maxout
from i2dl_keras.layers.prelu import PReLU
from i2dl_keras.layers.simple_rnn_cell import SimpleRNNCell
from i2dl_keras.layers.unroll import unroll

__all__ = [
    "AveragePooling2D",
    "ClassicDropout",
    "ContrastNormalization",
    "ELU",
    "LSTM",
    "LSTMCell",
    "LeakyReLU",
    "MaxPooling2D",
    "Maxout",
    "PReLU",
    "SimpleRNNCell",
    "unroll",
]
