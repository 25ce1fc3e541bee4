"""i2dl_keras.models: builders of the course's architectures; each returns a plain Keras model.

Transfer learning: `build_backbone` (a `keras.applications` network by name, with its ImageNet
weights fetched offline-safely), `preprocessing_layers`, `attach_head`, `unfreeze_top` and
`learning_rate_multipliers`.
"""

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
from i2dl_keras.models.backbones import (
    BACKBONES,
    BackboneSpec,
    WeightsFile,
    build_backbone,
    fetch_imagenet_weights,
    imagenet_weights_file,
    keras_cache_dir,
    preprocessing_layers,
)
from i2dl_keras.models.char_language_model import (
    CharLanguageModel,
    character_vocabulary,
    generate,
    next_character_dataset,
    perplexity,
    temperature_softmax,
)
from i2dl_keras.models.fcn import fcn
from i2dl_keras.models.fine_tuning import (
    attach_head,
    backbone_units,
    learning_rate_multipliers,
    unfreeze_top,
)
from i2dl_keras.models.inception_net import inception_net
from i2dl_keras.models.lenet5 import lenet5
from i2dl_keras.models.mobilenet_unet import mobilenet_v2_unet
from i2dl_keras.models.resnet import resnet
from i2dl_keras.models.small_cnn import small_cnn
from i2dl_keras.models.stacked import (
    classifier_from_encoder,
    greedy_layerwise_pretrain,
    stacked_layer_pairs,
)
from i2dl_keras.models.text_model import TextModel
from i2dl_keras.models.unet import unet
from i2dl_keras.models.vgg import vgg

__all__ = [
    "CharLanguageModel",
    "character_vocabulary",
    "generate",
    "next_character_dataset",
    "perplexity",
    "temperature_softmax",
    "TextModel",
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
    "mobilenet_v2_unet",
    "resnet",
    "small_cnn",
    "sparse_autoencoder",
    "stacked_autoencoder",
    "stacked_layer_pairs",
    "unet",
    "vgg",
    "BACKBONES",
    "BackboneSpec",
    "WeightsFile",
    "build_backbone",
    "fetch_imagenet_weights",
    "imagenet_weights_file",
    "keras_cache_dir",
    "preprocessing_layers",
    "attach_head",
    "backbone_units",
    "learning_rate_multipliers",
    "unfreeze_top",
]
