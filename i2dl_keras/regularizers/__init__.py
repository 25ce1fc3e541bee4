"""i2dl_keras.regularizers: weight and activity penalties of the course.

`L1`, `L2` and `L1L2` penalise weights (`kernel_regularizer=`); `Sparsity` penalises hidden
activations (`activity_regularizer=`) for sparse autoencoders; `contractive_penalty` is the
contractive autoencoder's Jacobian penalty.
"""

from i2dl_keras.regularizers.contractive import CONTRACTIVE_ACTIVATIONS, contractive_penalty
from i2dl_keras.regularizers.l1 import L1
from i2dl_keras.regularizers.l1l2 import L1L2
from i2dl_keras.regularizers.l2 import L2
from i2dl_keras.regularizers.sparsity import Sparsity

__all__ = [
    "CONTRACTIVE_ACTIVATIONS",
    "L1",
    "L1L2",
    "L2",
    "Sparsity",
    "contractive_penalty",
]
