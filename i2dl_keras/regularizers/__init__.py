"""i2dl_keras.regularizers: weight and activity penalties of the course."""

from i2dl_keras.regularizers.contractive import CONTRACTIVE_ACTIVATIONS, contractive_penalty

__all__ = ["CONTRACTIVE_ACTIVATIONS", "contractive_penalty"]
