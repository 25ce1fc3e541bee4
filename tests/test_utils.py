"""Shape arithmetic: conv output sizes, conv parameter counts and receptive fields."""

import re

import keras
import numpy as np
import pytest

from i2dl_keras.layers.max_unpooling2d import MaxUnpooling2D
from i2dl_keras.utils import conv_output_size, conv_params, receptive_field


def test_conv_output_size_by_hand():
    # The course's max-pooling example: 3x5 input, 3x3 window, stride 2, zero padding 1 -> 2x3
    # (per dimension: (3 - 3 + 2) // 2 + 1 = 2 and (5 - 3 + 2) // 2 + 1 = 3), not a square.
    assert conv_output_size((3, 5), 3, padding=1, stride=2) == (2, 3)
    assert conv_output_size(32, 5) == 28  # LeNet's first conv
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(8, 3, stride=2) == 3  # floor((8 - 3) / 2) + 1
    assert conv_output_size(227, 11, stride=4) == 55  # AlexNet's first conv
    assert conv_output_size(7, 3, padding="same", stride=2) == 4
    assert conv_output_size(7, 3, padding="valid", stride=2) == 3
    assert conv_output_size((6, 9), (3, 2), padding=(0, 1), stride=(1, 3)) == (4, 4)
    assert conv_output_size([10, 10, 10], 3) == (8, 8, 8)

    # And the numbers of that example: zero padding does not change the max of positive values.
    x = np.arange(1.0, 16.0, dtype="float32").reshape(1, 3, 5, 1)
    padded = keras.layers.ZeroPadding2D(1)(x)
    pooled = keras.layers.MaxPooling2D(3, strides=2)(padded).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(pooled, [[7, 9, 10], [12, 14, 15]])


def test_conv_output_size_full_padding():
    # "Full" convolution: P = F - 1 on each side, so out = N + 2(F - 1) - F + 1 = N + F - 1.
    assert conv_output_size(5, 3, padding="full") == 7
    assert conv_output_size(1, 4, padding="full") == 4  # a 1-pixel input still fits
    assert conv_output_size(28, 5, padding="full") == 32  # undoes LeNet's 32 -> 28
    # Per dimension, each with its own P = F - 1: (6 + 4 - 3) // 2 + 1 = 4 and 9 + 5 - 1 = 13.
    assert conv_output_size((6, 9), (3, 5), padding="full", stride=(2, 1)) == (4, 13)
    # Stride 3: floor((10 + 3 - 2) / 3) + 1 = 4.
    assert conv_output_size(10, 3, padding="full", stride=3) == 4
    # Stride 1 is the length of NumPy's full convolution.
    rng = np.random.default_rng(0)
    for n, f in [(1, 1), (1, 5), (5, 1), (4, 4), (7, 3), (3, 8), (16, 5)]:
        full = np.convolve(rng.normal(size=n), rng.normal(size=f), mode="full")
        assert conv_output_size(n, f, padding="full") == len(full) == n + f - 1, (n, f)
    # And the same padding by hand through Keras: zero-pad F - 1, then a "valid" convolution.
    for size, kernel, stride in [((5, 7), (3, 2), 1), ((8, 6), (4, 3), (2, 3))]:
        pads = tuple(k - 1 for k in kernel)
        shape = keras.layers.ZeroPadding2D(pads).compute_output_shape((1, *size, 1))
        shape = keras.layers.Conv2D(1, kernel, strides=stride).compute_output_shape(shape)
        assert conv_output_size(size, kernel, padding="full", stride=stride) == tuple(shape[1:3])


def test_conv_output_size_matches_keras():
    for size, kernel, stride, padding in [
        ((28, 28), 3, 1, "valid"),
        ((28, 28), 5, 2, "same"),
        ((13, 17), (3, 5), (2, 3), "valid"),
        ((13, 17), (4, 2), (3, 2), "same"),
        ((9, 10), 2, 2, 1),
        ((11, 7), (5, 3), (2, 1), (2, 1)),
    ]:
        expected = conv_output_size(size, kernel, padding=padding, stride=stride)
        layers = []
        if not isinstance(padding, str):
            layers.append(keras.layers.ZeroPadding2D(padding))
        keras_padding = padding if isinstance(padding, str) else "valid"
        for window in (
            keras.layers.Conv2D(1, kernel, strides=stride, padding=keras_padding),
            keras.layers.MaxPooling2D(kernel, strides=stride, padding=keras_padding),
            keras.layers.AveragePooling2D(kernel, strides=stride, padding=keras_padding),
        ):
            shape = (1, *size, 2)
            for layer in [*layers, window]:
                shape = layer.compute_output_shape(shape)
            assert tuple(shape[1:3]) == expected, (size, kernel, stride, padding, window)


def test_conv_params():
    # F * F * C_in * C_out + C_out: 5x5 kernels over 3 channels, 6 filters: 5 * 5 * 3 * 6 + 6.
    assert conv_params(5, 3, 6) == 456
    assert conv_params(3, 64, 128, use_bias=False) == 73728
    for args in [(3, 1, 8, True), (5, 3, 6, True), ((3, 5), 4, 7, True), (1, 16, 4, False)]:
        layer = keras.layers.Conv2D(args[2], args[0], use_bias=args[3])
        layer.build((None, 9, 9, args[1]))
        assert conv_params(args[0], args[1], args[2], use_bias=args[3]) == layer.count_params()


def conv(k=3, s=1, d=1):
    return keras.layers.Conv2D(2, k, strides=s, dilation_rate=d)


def test_receptive_field():
    assert receptive_field([conv(), conv(), conv()]) == 7  # 1 + 2 + 2 + 2
    # 3 after the conv; the pool adds (2 - 1) * 1 and doubles the jump; the conv adds 2 * 2.
    assert receptive_field([conv(), keras.layers.MaxPooling2D(2), conv()]) == 8
    assert receptive_field([conv(s=2), conv(s=2), conv()]) == 15  # 1 + 2 + 4 + 8
    assert receptive_field([conv(d=2), conv()]) == 7  # a dilated 3x3 spans 5 pixels
    assert receptive_field([conv(k=(3, 5)), keras.layers.AveragePooling2D((2, 3))]) == (4, 7)
    assert receptive_field([keras.layers.Conv1D(2, 5), keras.layers.MaxPooling1D(3)]) == 7

    # A model: non-spatial layers are ignored and nested models are entered.
    block = keras.Sequential([conv(), keras.layers.BatchNormalization(), keras.layers.ReLU()])
    model = keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            block,
            keras.layers.MaxPooling2D(2),
            keras.layers.Dropout(0.1),
            conv(),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    assert receptive_field(model) == 8


def test_bad_arguments():
    bad_sizes = [
        (dict(input_size=0, kernel_size=3), "input_size=0"),
        (dict(input_size=5, kernel_size=-1), "kernel_size=-1"),
        (dict(input_size=5, kernel_size=3, stride=0), "stride=0"),
        (dict(input_size=5, kernel_size=3, padding=-1), "padding=-1"),
        (dict(input_size=5, kernel_size=3, padding="circular"), "padding='circular'"),
        (dict(input_size=5.0, kernel_size=3), "input_size=5.0"),
        (dict(input_size=True, kernel_size=1), "input_size=True"),
        (dict(input_size=(5, 5), kernel_size=(3, 3, 3)), "input_size=(5, 5), kernel_size="),
        (dict(input_size=2, kernel_size=5, padding=1), "kernel_size=5 with input_size=2"),
    ]
    for kwargs, received in bad_sizes:
        with pytest.raises(ValueError, match=re.escape(f"Received: {received}")):
            conv_output_size(**kwargs)
    for args, received in [
        ((0, 3, 6), "kernel_size=0"),
        ((3, 0, 6), "in_channels=0"),
        ((3, 3, 2.0), "out_channels=2.0"),
        ((3, 3, 6, "yes"), "use_bias='yes'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"Received: {received}")):
            conv_params(*args)
    for bad, reason in [
        (42, "must be a Keras model or a list of Keras layers"),
        ([keras.layers.Conv2D(2, 3), "pool"], "must be a Keras model or a list of Keras layers"),
        ([keras.layers.Dense(3)], "at least one conv or pooling layer"),
        ([keras.layers.Conv2DTranspose(2, 3)], "Conv2DTranspose is not a fixed window"),
        ([keras.layers.GlobalAveragePooling2D()], "GlobalAveragePooling2D is not a fixed"),
        ([keras.layers.Conv2D(2, 3), MaxUnpooling2D(2)], "MaxUnpooling2D is not a fixed window"),
        ([keras.layers.Conv2D(2, 3), keras.layers.Conv1D(2, 3)], "of one spatial rank"),
    ]:
        with pytest.raises(ValueError, match=re.escape(reason) + ".*Received: model_or_layers="):
            receptive_field(bad)
