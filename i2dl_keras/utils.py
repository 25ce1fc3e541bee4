"""i2dl_keras.utils: the course's shape arithmetic (conv output, parameters, receptive field)."""
