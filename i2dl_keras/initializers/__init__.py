"""i2dl_keras.initializers: the course's weight initializations and the fans they depend on."""

from i2dl_keras.initializers.fans import compute_fans
from i2dl_keras.initializers.he import He
from i2dl_keras.initializers.large_gaussian import LargeGaussian
from i2dl_keras.initializers.small_gaussian import SmallGaussian
from i2dl_keras.initializers.sobel import Sobel
from i2dl_keras.initializers.xavier import Xavier
from i2dl_keras.initializers.zeros import Zeros

__all__ = ["He", "LargeGaussian", "SmallGaussian", "Sobel", "Xavier", "Zeros", "compute_fans"]
