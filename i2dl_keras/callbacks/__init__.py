"""i2dl_keras.callbacks: early stopping on the validation loss or the generalization gap."""

from i2dl_keras.callbacks.early_stopping import EarlyStopping
from i2dl_keras.callbacks.generalization_gap_logger import GeneralizationGapLogger

__all__ = ["EarlyStopping", "GeneralizationGapLogger"]
