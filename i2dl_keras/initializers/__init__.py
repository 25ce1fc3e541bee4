"""i2dl_keras.initializers."""
