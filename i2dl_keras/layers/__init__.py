"""i2dl_keras.layers."""
