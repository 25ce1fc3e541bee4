"""Every layer of i2dl_keras.layers saves, reloads in a fresh process and exports."""

import keras
import numpy as np
import pytest

from i2dl_keras import layers
from i2dl_keras.testing import run_export_test, run_model_saving_test


def _randomize(model, seed):
    # Non-default weights, so that a weight that is not saved cannot pass by being re-initialised.
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(weight.dtype))
    return model


def _image_text_model():
    image = keras.Input((6, 7, 3), name="image")
    x = layers.ContrastNormalization(3, mode="within")(image)
    x = layers.ContrastNormalization(3, mode="across")(x)
    x = layers.MaxPooling2D(3, strides=2, padding=1)(x)
    x = layers.AveragePooling2D(2, strides=1, padding=((0, 1), (0, 1)))(x)
    x = layers.AveragePooling2D(2, strides=1, padding=1, count_padding=True)(x)
    x = layers.PReLU(shared_axes=[1, 2])(x)
    x = keras.layers.Flatten()(x)
    x = layers.ClassicDropout(0.3, seed=1)(x)
    x = layers.Maxout(4, pieces=3)(x)
    x = layers.LeakyReLU(0.1)(x)
    x = layers.ELU(0.5)(x)

    tokens = keras.Input((7,), dtype="int32", name="tokens")
    t = keras.layers.Embedding(20, 6, mask_zero=True)(tokens)
    t = keras.layers.Bidirectional(layers.LSTM(5, return_sequences=True))(t)
    t = layers.LSTM(4, go_backwards=True, dropout=0.1, recurrent_dropout=0.1, seed=2)(t)

    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()([x, t]))
    return keras.Model([image, tokens], outputs)


def _cells_model():
    inputs = keras.Input((5, 3))
    x = keras.layers.RNN(layers.SimpleRNNCell(4), return_sequences=True)(inputs)
    x = keras.layers.RNN(layers.LSTMCell(3))(x)
    return keras.Model(inputs, x)


def _sentiment_like_model():
    # The later app's shape: mask_zero embeddings into a Bidirectional LSTM, in a Sequential.
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(30, 8, mask_zero=True),
            keras.layers.Bidirectional(layers.LSTM(6)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )


@pytest.mark.cold_subprocess  # the reload in a process started cold, as users run it
def test_models_reload_in_a_fresh_process_and_export():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 6, 7, 3)).astype("float32")
    tokens = np.array(
        [[3, 5, 7, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7], [0, 0, 9, 8, 0, 0, 0]], "int32"
    )
    image_text = _randomize(_image_text_model(), 1)
    cells = _randomize(_cells_model(), 2)
    sentiment = _randomize(_sentiment_like_model(), 3)
    sequences = rng.normal(size=(2, 5, 3)).astype("float32")
    review = np.array([[4, 9, 2, 0, 0], [7, 7, 1, 3, 5]], "int32")

    run_model_saving_test(
        {
            "image_text": (image_text, [image, tokens]),
            "cells": (cells, sequences),
            "sentiment": (sentiment, review),
        }
    )
    run_export_test(image_text, [image, tokens])
