"""i2dl_keras.models: builders of the course's architectures; each returns a plain Keras model."""

from i2dl_keras.models.alexnet import alexnet
from i2dl_keras.models.autoencoders import (
    bottleneck_autoencoder,
    contractive_autoencoder,
    conv_autoencoder,
    denoising_autoencoder,
    get_decoder,
    get_encoder,
    sparse_autoencoder,
    stacked_autoencoder,
)
from i2dl_keras.models.fcn import fcn
from i2dl_keras.models.inception_net import inception_net
from i2dl_keras.models.lenet5 import lenet5
from i2dl_keras.models.resnet import resnet
from i2dl_keras.models.small_cnn import small_cnn
from i2dl_keras.models.stacked import (
    classifier_from_encoder,
    greedy_layerwise_pretrain,
    stacked_layer_pairs,
)
from i2dl_keras.models.unet import unet
from i2dl_keras.models.vgg import vgg

__all__ = [
    "alexnet",
    "bottleneck_autoencoder",
    "classifier_from_encoder",
    "contractive_autoencoder",
    "conv_autoencoder",
    "denoising_autoencoder",
    "fcn",
    "get_decoder",
    "get_encoder",
    "greedy_layerwise_pretrain",
    "inception_net",
    "lenet5",
    "resnet",
    "small_cnn",
    "sparse_autoencoder",
    "stacked_autoencoder",
    "stacked_layer_pairs",
    "unet",
    "vgg",
]
