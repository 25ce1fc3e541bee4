"""i2dl_keras.layers: the course's layers as registered, serializable Keras layers."""

from i2dl_keras.layers.average_pooling2d import AveragePooling2D
from i2dl_keras.layers.class_names import ClassNames
from i2dl_keras.layers.classic_dropout import ClassicDropout
from i2dl_keras.layers.contractive_dense import ContractiveDense
from i2dl_keras.layers.contrast_normalization import ContrastNormalization
from i2dl_keras.layers.corruption import (
    gaussian_corruption,
    masking_corruption,
    salt_pepper_corruption,
)
from i2dl_keras.layers.elu import ELU
from i2dl_keras.layers.image_preprocessing import ImagePreprocessing
from i2dl_keras.layers.inception_block import InceptionBlock
from i2dl_keras.layers.leaky_relu import LeakyReLU
from i2dl_keras.layers.locally_connected2d import LocallyConnected2D
from i2dl_keras.layers.lstm import LSTM
from i2dl_keras.layers.lstm_cell import LSTMCell
from i2dl_keras.layers.masking_noise import MaskingNoise
from i2dl_keras.layers.max_pooling2d import MaxPooling2D
from i2dl_keras.layers.max_unpooling2d import MaxUnpooling2D
from i2dl_keras.layers.maxout import Maxout
from i2dl_keras.layers.prelu import PReLU
from i2dl_keras.layers.residual_block import ResidualBlock
from i2dl_keras.layers.salt_pepper_noise import SaltPepperNoise
from i2dl_keras.layers.simple_rnn_cell import SimpleRNNCell
from i2dl_keras.layers.ten_crop import TenCrop, ten_crops
from i2dl_keras.layers.unroll import unroll

__all__ = [
    "AveragePooling2D",
    "ClassNames",
    "ClassicDropout",
    "ContractiveDense",
    "ContrastNormalization",
    "ELU",
    "ImagePreprocessing",
    "InceptionBlock",
    "LSTM",
    "LSTMCell",
    "LocallyConnected2D",
    "LeakyReLU",
    "MaskingNoise",
    "MaxPooling2D",
    "MaxUnpooling2D",
    "Maxout",
    "PReLU",
    "ResidualBlock",
    "SaltPepperNoise",
    "SimpleRNNCell",
    "TenCrop",
    "gaussian_corruption",
    "masking_corruption",
    "salt_pepper_corruption",
    "ten_crops",
    "unroll",
]
