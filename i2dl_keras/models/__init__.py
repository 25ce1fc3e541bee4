"""i2dl_keras.models."""
