"""i2dl_keras.callbacks."""
