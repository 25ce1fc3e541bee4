"""i2dl_keras.regularizers."""
