"""i2dl_keras.classic."""
