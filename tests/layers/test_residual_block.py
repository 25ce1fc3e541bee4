"""ResidualBlock: shapes, the identity fallback, a NumPy reference, validation and the helpers."""

import json

import keras
import numpy as np
import pytest

from i2dl_keras.layers.residual_block import ResidualBlock
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _relu(a):
    return np.maximum(a, 0.0)


def test_config():
    block = ResidualBlock(
        8,
        kernel_size=(3, 5),
        strides=2,
        shortcut="projection",
        bottleneck=True,
        use_batch_norm=False,
        activation="elu",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name="res",
    )
    config = block.get_config()
    assert config["filters"] == 8
    assert config["kernel_size"] == [3, 5]
    assert config["strides"] == 2
    assert config["shortcut"] == "projection"
    assert config["bottleneck"] is True
    assert config["use_batch_norm"] is False
    assert config["activation"] == "elu"
    assert config["kernel_regularizer"]["config"]["l2"] == pytest.approx(1e-4)
    json.dumps(config)
    revived = run_serialization_test(block)
    assert revived.kernel_size == (3, 5)
    assert isinstance(revived.kernel_regularizer, keras.regularizers.L2)


def test_output_shapes_and_shortcut_choice():
    cases = [
        # (constructor arguments, input shape, output shape, projection shortcut?)
        ({"filters": 6}, (2, 8, 8, 6), (2, 8, 8, 6), False),
        ({"filters": 6, "strides": 2}, (2, 8, 8, 6), (2, 4, 4, 6), True),
        ({"filters": 6}, (2, 8, 8, 3), (2, 8, 8, 6), True),
        # "same" padding with stride 2: ceil(7 / 2) = 4 and ceil(5 / 2) = 3.
        ({"filters": 4, "strides": 2}, (2, 7, 5, 3), (2, 4, 3, 4), True),
        ({"filters": 2, "bottleneck": True}, (2, 6, 6, 8), (2, 6, 6, 8), False),
        ({"filters": 2, "bottleneck": True}, (2, 6, 6, 2), (2, 6, 6, 8), True),
        ({"filters": 6, "shortcut": "projection"}, (2, 8, 8, 6), (2, 8, 8, 6), True),
    ]
    for kwargs, input_shape, output_shape, projected in cases:
        block = ResidualBlock(**kwargs)
        y = block(_x(input_shape))
        assert tuple(y.shape) == output_shape, kwargs
        assert block.compute_output_shape(input_shape) == output_shape, kwargs
        assert (block.projection is not None) == projected, kwargs


def test_zeroed_residual_passes_input_through_the_activation():
    x = _x((2, 6, 6, 4))
    block = ResidualBlock(4)
    block(x)
    for conv in block.convs:
        conv.kernel.assign(np.zeros(conv.kernel.shape, "float32"))
    # F(x) = BN(0) = 0 both with batch statistics and with the initial moving ones.
    for training in (False, True):
        np.testing.assert_array_equal(block(x, training=training).numpy(), _relu(x))

    linear = ResidualBlock(4, use_batch_norm=False, activation=None)
    linear(x)
    linear.set_weights([np.zeros_like(w) for w in linear.get_weights()])
    np.testing.assert_array_equal(linear(x).numpy(), x)


def test_correctness_against_numpy_basic_identity():
    # With 1x1 kernels the convolutions are per-pixel matrix products, easy to write in NumPy.
    x = _x((2, 5, 5, 3))
    block = ResidualBlock(3, kernel_size=1, use_batch_norm=False)
    block(x)
    w1, b1 = block.convs[0].kernel.numpy(), block.convs[0].bias.numpy()
    w2, b2 = block.convs[1].kernel.numpy(), block.convs[1].bias.numpy()
    expected = _relu(_relu(x @ w1[0, 0] + b1) @ w2[0, 0] + b2 + x)
    np.testing.assert_allclose(block(x).numpy(), expected, atol=1e-5, rtol=0)


def test_correctness_against_numpy_bottleneck_projection():
    x = _x((2, 5, 5, 3))
    block = ResidualBlock(2, kernel_size=1, strides=2, bottleneck=True, use_batch_norm=False)
    block(x)
    (w1, b1), (w2, b2), (w3, b3) = [(c.kernel.numpy()[0, 0], c.bias.numpy()) for c in block.convs]
    ws, bs = block.projection.kernel.numpy()[0, 0], block.projection.bias.numpy()
    assert w3.shape == (2, 8)
    h = _relu(x @ w1 + b1)
    # A 1x1 convolution with stride 2 keeps every other pixel, starting at the first.
    h = _relu(h[:, ::2, ::2] @ w2 + b2)
    residual = h @ w3 + b3
    shortcut = x[:, ::2, ::2] @ ws + bs
    expected = _relu(residual + shortcut)
    np.testing.assert_allclose(block(x).numpy(), expected, atol=1e-5, rtol=0)


def test_parameter_counts_by_hand():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out  # no bias: batch normalization follows

    bn = 4  # gamma, beta, moving mean, moving variance per channel
    identity = ResidualBlock(16)
    identity.build((None, 8, 8, 16))
    assert identity.count_params() == 2 * conv(3, 16, 16) + 2 * bn * 16 == 4736

    projection = ResidualBlock(16, strides=2)
    projection.build((None, 8, 8, 3))
    expected = conv(3, 3, 16) + conv(3, 16, 16) + conv(1, 3, 16) + 3 * bn * 16
    assert projection.count_params() == expected == 2976


def test_identity_with_mismatched_shapes_raises():
    block = ResidualBlock(8, shortcut="identity")
    with pytest.raises(ValueError, match=r"Received: shortcut='identity' with input_shape"):
        block(_x((1, 4, 4, 3)))
    with pytest.raises(ValueError, match=r"Received: strides=2"):
        ResidualBlock(8, strides=2, shortcut="identity")
    # Matching shapes are fine.
    assert ResidualBlock(3, shortcut="identity")(_x((1, 4, 4, 3))).shape == (1, 4, 4, 3)


def test_invalid_arguments():
    cases = [
        ({"filters": 0}, r"`filters`.*Received: filters=0"),
        ({"filters": 2.0}, r"`filters`.*Received: filters=2.0"),
        ({"filters": 4, "kernel_size": 0}, r"`kernel_size`.*Received: kernel_size=0"),
        ({"filters": 4, "kernel_size": (3, 3, 3)}, r"Received: kernel_size=\(3, 3, 3\)"),
        ({"filters": 4, "strides": 0}, r"`strides`.*Received: strides=0"),
        ({"filters": 4, "shortcut": "dense"}, r"`shortcut`.*Received: shortcut='dense'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            ResidualBlock(**kwargs)
    with pytest.raises(ValueError, match=r"4D input.*Received: input_shape=\(2, 5, 3\)"):
        ResidualBlock(3)(_x((2, 5, 3)))


def test_layer_helper_identity():
    run_layer_test(
        ResidualBlock,
        {"filters": 4},
        input_shape=(2, 6, 6, 4),
        expected_output_shape=(2, 6, 6, 4),
        expected_num_trainable_weights=6,  # 2 kernels, 2 x (gamma, beta)
        expected_num_non_trainable_weights=4,  # 2 x (moving mean, moving variance)
    )


def test_layer_helper_bottleneck_projection():
    run_layer_test(
        ResidualBlock,
        {"filters": 2, "strides": 2, "bottleneck": True},
        input_shape=(2, 6, 6, 3),
        expected_output_shape=(2, 3, 3, 8),
        expected_num_trainable_weights=12,  # 4 kernels, 4 x (gamma, beta)
        expected_num_non_trainable_weights=8,
    )
