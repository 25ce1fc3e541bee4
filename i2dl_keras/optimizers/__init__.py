"""i2dl_keras.optimizers."""
