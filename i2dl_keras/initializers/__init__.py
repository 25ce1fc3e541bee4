"""i2dl_keras.initializers: the course's weight initializations and the fans they depend on."""

from i2dl_keras.initializers.fans import compute_fans
from i2dl_keras.initializers.he import He
from i2dl_keras.initializers.xavier import Xavier

__all__ = ["He", "Xavier", "compute_fans"]
