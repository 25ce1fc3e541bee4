"""InceptionBlock: channel bookkeeping, parameter counts, a NumPy reference and validation."""

import json

import keras
import numpy as np
import pytest

from i2dl_keras.layers.inception_block import InceptionBlock
from i2dl_keras.testing import run_layer_test, run_serialization_test


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _conv(f, c_in, c_out):
    """The course's parameter count of a convolution: F * F * C_in * C_out + C_out."""
    return f * f * c_in * c_out + c_out


def test_config():
    block = InceptionBlock(
        2,
        3,
        4,
        filters_pool=5,
        reduce_3x3=6,
        reduce_5x5=7,
        activation="tanh",
        kernel_initializer="he_uniform",
        name="inc",
    )
    config = block.get_config()
    expected = {
        "filters_1x1": 2,
        "filters_3x3": 3,
        "filters_5x5": 4,
        "filters_pool": 5,
        "reduce_3x3": 6,
        "reduce_5x5": 7,
        "naive": False,
        "activation": "tanh",
    }
    assert {k: config[k] for k in expected} == expected
    assert config["kernel_initializer"]["class_name"] == "HeUniform"
    json.dumps(config)
    run_serialization_test(block)
    run_serialization_test(InceptionBlock(2, 3, 4, naive=True))


def test_output_channels_add_up():
    x = _x((2, 7, 5, 6))
    reduced = InceptionBlock(2, 3, 4, filters_pool=5, reduce_3x3=1, reduce_5x5=1)
    assert tuple(reduced(x).shape) == (2, 7, 5, 2 + 3 + 4 + 5)
    # The naive pool branch passes all C_in = 6 input channels on.
    naive = InceptionBlock(2, 3, 4, naive=True)
    assert tuple(naive(x).shape) == (2, 7, 5, 2 + 3 + 4 + 6)
    naive_proj = InceptionBlock(2, 3, 4, filters_pool=1, naive=True)
    assert tuple(naive_proj(x).shape) == (2, 7, 5, 2 + 3 + 4 + 1)
    assert naive.compute_output_shape((None, None, None, 6)) == (None, None, None, 15)


def test_parameter_count_googlenet_3a_reduced_vs_naive():
    # Block 3a of GoogLeNet on its 28x28x192 input (Szegedy et al., 2015, table 1).
    c_in = 192
    reduced = InceptionBlock(64, 128, 32, filters_pool=32, reduce_3x3=96, reduce_5x5=16)
    reduced.build((None, 28, 28, c_in))
    expected_reduced = (
        _conv(1, c_in, 64)
        + _conv(1, c_in, 96)
        + _conv(3, 96, 128)
        + _conv(1, c_in, 16)
        + _conv(5, 16, 32)
        + _conv(1, c_in, 32)
    )
    assert expected_reduced == 163_696
    assert reduced.count_params() == expected_reduced

    naive = InceptionBlock(64, 128, 32, naive=True)
    naive.build((None, 28, 28, c_in))
    expected_naive = _conv(1, c_in, 64) + _conv(3, c_in, 128) + _conv(5, c_in, 32)
    assert expected_naive == 387_296
    assert naive.count_params() == expected_naive
    assert reduced.count_params() < naive.count_params()
    # The reductions also keep the output narrower: 256 channels instead of 64+128+32+192.
    assert reduced.compute_output_shape((None, 28, 28, c_in))[-1] == 256
    assert naive.compute_output_shape((None, 28, 28, c_in))[-1] == 416


def test_correctness_1x1_and_pool_branches_against_numpy():
    x = _x((2, 4, 5, 3))
    block = InceptionBlock(2, 1, 1, naive=True)
    y = block(x).numpy()
    conv_1x1 = block.branches[0][0]
    w, b = conv_1x1.kernel.numpy()[0, 0], conv_1x1.bias.numpy()
    np.testing.assert_allclose(y[..., :2], np.maximum(x @ w + b, 0.0), atol=1e-5, rtol=0)
    # 3x3 max pool, stride 1, "same": padding never wins a max.
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    windows = [padded[:, i : i + 4, j : j + 5] for i in range(3) for j in range(3)]
    np.testing.assert_array_equal(y[..., -3:], np.max(windows, axis=0))
    # The 3x3 and 5x5 channels sit in between, in that order, and are ReLU outputs.
    assert np.all(y[..., 2:4] >= 0)


def test_invalid_arguments():
    cases = [
        ({"filters_1x1": 0, "filters_3x3": 1, "filters_5x5": 1, "naive": True},
         r"`filters_1x1`.*Received: filters_1x1=0"),
        ({"filters_1x1": 1, "filters_3x3": -2, "filters_5x5": 1, "naive": True},
         r"`filters_3x3`.*Received: filters_3x3=-2"),
        ({"filters_1x1": 1, "filters_3x3": 1, "filters_5x5": 1.5, "naive": True},
         r"`filters_5x5`.*Received: filters_5x5=1.5"),
        ({"filters_1x1": 1, "filters_3x3": 1, "filters_5x5": 1, "filters_pool": 0, "naive": True},
         r"`filters_pool`.*Received: filters_pool=0"),
        ({"filters_1x1": 1, "filters_3x3": 1, "filters_5x5": 1, "filters_pool": 1,
          "reduce_5x5": 1}, r"`reduce_3x3`.*Received: reduce_3x3=None"),
        ({"filters_1x1": 1, "filters_3x3": 1, "filters_5x5": 1, "reduce_3x3": 1,
          "reduce_5x5": 1}, r"`filters_pool`.*Received: filters_pool=None"),
        ({"filters_1x1": 1, "filters_3x3": 1, "filters_5x5": 1, "reduce_5x5": 2, "naive": True},
         r"`reduce_5x5` must be `None`.*Received: reduce_5x5=2"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            InceptionBlock(**kwargs)
    with pytest.raises(ValueError, match=r"4D input.*Received: input_shape=\(2, 5, 3\)"):
        InceptionBlock(1, 1, 1, naive=True)(_x((2, 5, 3)))


def test_layer_helper_reduced():
    run_layer_test(
        InceptionBlock,
        {"filters_1x1": 2, "filters_3x3": 3, "filters_5x5": 2, "filters_pool": 1,
         "reduce_3x3": 2, "reduce_5x5": 1},
        input_shape=(2, 6, 6, 3),
        expected_output_shape=(2, 6, 6, 8),
        expected_num_trainable_weights=12,  # 6 convolutions, kernel and bias each
        expected_num_non_trainable_weights=0,
    )  # fmt: skip


def test_layer_helper_naive():
    run_layer_test(
        InceptionBlock,
        {"filters_1x1": 2, "filters_3x3": 3, "filters_5x5": 2, "naive": True},
        input_shape=(2, 6, 6, 3),
        expected_output_shape=(2, 6, 6, 10),
        expected_num_trainable_weights=6,
    )


def test_in_a_functional_model_weights_are_tracked():
    inputs = keras.Input((8, 8, 3))
    outputs = InceptionBlock(2, 3, 4, filters_pool=1, reduce_3x3=2, reduce_5x5=1)(inputs)
    model = keras.Model(inputs, outputs)
    expected = (
        _conv(1, 3, 2) + _conv(1, 3, 2) + _conv(3, 2, 3) + _conv(1, 3, 1) + _conv(5, 1, 4)
        + _conv(1, 3, 1)
    )  # fmt: skip
    assert model.count_params() == expected
