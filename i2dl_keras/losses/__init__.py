"""i2dl_keras.losses: the course's loss functions, each as a function and a `keras.losses.Loss`.

Each loss class is a `LossFunctionWrapper` around its function: the class only names the
function's arguments, their defaults and their checks.

The loss classes `L1` and `L2` are registered as `"i2dl_keras>L1Loss"` and `"i2dl_keras>L2Loss"`
so that they do not collide with the regularizers of the same names.
"""

from i2dl_keras.losses.binary_crossentropy import BinaryCrossentropy, binary_crossentropy
from i2dl_keras.losses.categorical_crossentropy import (
    CategoricalCrossentropy,
    categorical_crossentropy,
)
from i2dl_keras.losses.dice import Dice, dice
from i2dl_keras.losses.l1 import L1, l1
from i2dl_keras.losses.l2 import L2, l2
from i2dl_keras.losses.loss_function_wrapper import LossFunctionWrapper
from i2dl_keras.losses.mean_squared_error import MeanSquaredError, mean_squared_error
from i2dl_keras.losses.multiclass_hinge import MulticlassHinge, multiclass_hinge
from i2dl_keras.losses.sparse_categorical_crossentropy import (
    SparseCategoricalCrossentropy,
    sparse_categorical_crossentropy,
)

__all__ = [
    "L1",
    "L2",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "Dice",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "MulticlassHinge",
    "SparseCategoricalCrossentropy",
    "binary_crossentropy",
    "categorical_crossentropy",
    "dice",
    "l1",
    "l2",
    "mean_squared_error",
    "multiclass_hinge",
    "sparse_categorical_crossentropy",
]
