"""The course's worked examples: the 8-3-8 autoencoder, and XOR needs a hidden layer."""

import itertools

import keras
import numpy as np

from i2dl_keras.models.autoencoders import bottleneck_autoencoder, get_encoder


def test_8_3_8_autoencoder_reproduces_one_hot_inputs_with_distinct_codes():
    keras.utils.set_random_seed(0)
    x = np.eye(8, dtype="float32")
    model = bottleneck_autoencoder(
        (8,), code_size=3, hidden=(), code_activation="sigmoid", output_activation="sigmoid"
    )
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
    # 500 full-batch steps in one epoch: one graph trace instead of one per epoch.
    repeated = np.tile(x, (500, 1))
    model.fit(repeated, repeated, batch_size=8, epochs=1, shuffle=False, verbose=0)

    out = np.asarray(model(x))
    np.testing.assert_array_equal(out.argmax(axis=1), np.arange(8))
    assert out[np.arange(8), np.arange(8)].min() > 0.5  # each input's own unit fires
    codes = np.asarray(get_encoder(model)(x))
    assert codes.shape == (8, 3)
    assert ((codes > 0.0) & (codes < 1.0)).all()  # sigmoid units, as in the slides' table
    distances = [
        np.linalg.norm(codes[i] - codes[j]) for i, j in itertools.combinations(range(8), 2)
    ]
    # Eight distinct codes in the unit cube (the slides' table has min distance ~0.4).
    assert min(distances) > 0.3, min(distances)


def test_xor_needs_a_hidden_layer():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], "float32")
    y = np.array([0, 1, 1, 0], "float32")
    repeated_x, repeated_y = np.tile(x, (150, 1)), np.tile(y, 150)

    def train(hidden_units):
        keras.utils.set_random_seed(0)
        layers = [keras.Input((2,))]
        if hidden_units:
            layers.append(keras.layers.Dense(hidden_units, activation="tanh"))
        layers.append(keras.layers.Dense(1, activation="sigmoid"))
        model = keras.Sequential(layers)
        model.compile(keras.optimizers.Adam(0.1), "binary_crossentropy")
        model.fit(repeated_x, repeated_y, batch_size=4, shuffle=False, verbose=0)
        p = np.clip(np.asarray(model(x))[:, 0].astype("float64"), 1e-7, 1 - 1e-7)
        loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        return loss, np.mean((p > 0.5) == (y == 1))

    # A single sigmoid unit draws one line: at most 3 of the 4 XOR points, and by symmetry its
    # best cross-entropy is log 2 (w = 0, b = 0), so it cannot do better than chance on loss.
    loss, accuracy = train(hidden_units=0)
    assert accuracy <= 0.75
    assert loss > np.log(2.0) - 1e-3
    # Two layers: the hidden units carve XOR out of half-planes (8 of them converge from every
    # seed tried, 4 from most).
    loss, accuracy = train(hidden_units=8)
    assert accuracy == 1.0
    assert loss < 0.05
