"""i2dl_keras.losses."""
