"""i2dl_keras.utils: shape arithmetic of the course (conv output size, parameter count, receptive field)."""
