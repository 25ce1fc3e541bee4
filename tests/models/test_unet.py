"""unet: parameter count by hand, full convolutionality, validation, training; fused batch norm."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.models.unet import FusedBatchNormalization, unet
from i2dl_keras.testing import run_serialization_test


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_parameter_count_by_hand():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out + c_out

    depth, channels, classes = 4, 1, 2
    filters = [64 * 2**i for i in range(depth + 1)]  # 64 ... 1024
    expected = 0
    c_in = channels
    for f in filters:  # contracting path and bottom: two 3x3 convolutions per level
        expected += conv(3, c_in, f) + conv(3, f, f)
        c_in = f
    for i in reversed(range(depth)):  # 2x2 up-convolution, concatenation, two convolutions
        expected += conv(2, filters[i + 1], filters[i])
        expected += conv(3, 2 * filters[i], filters[i]) + conv(3, filters[i], filters[i])
    expected += conv(1, 64, classes)
    model = unet()
    assert expected == 31_030_658
    assert model.count_params() == expected


def test_fully_convolutional():
    for upsampling in ("transposed", "bilinear"):
        model = unet(num_classes=3, depth=2, base_filters=4, upsampling=upsampling)
        for h, w in ((64, 64), (96, 96), (64, 96)):
            probs = model(_x(1, h, w, 1)).numpy()
            assert probs.shape == (1, h, w, 3)
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert model.get_layer("bottom_conv2").output.shape[-1] == 16


def test_tiny_training_step(train_one_step):
    model = unet(input_shape=(16, 16, 2), num_classes=2, depth=2, base_filters=2,
                 use_batch_norm=True, dropout=0.2, output_activation=None)  # fmt: skip
    assert model.layers[-1].name == "logits"
    y = np.random.default_rng(1).integers(0, 2, size=(2, 16, 16))
    train_one_step(model, _x(2, 16, 16, 2), y)


def test_invalid_arguments():
    cases = [
        ({"input_shape": (60, 64, 1)}, r"multiples of 16.*Received: input_shape=\(60, 64, 1\)"),
        ({"depth": 2, "input_shape": (6, 8, 1)}, r"multiples of 4"),
        ({"depth": 0}, r"`depth`.*Received: depth=0"),
        ({"base_filters": 1.5}, r"Received: base_filters=1.5"),
        ({"upsampling": "nearest"}, r"Received: upsampling='nearest'"),
        ({"dropout": 2}, r"Received: dropout=2"),
        ({"input_shape": (64, 64, None)}, r"Received: input_shape=\(64, 64, None\)"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            unet(**kwargs)


def _bn_pair(x, momentum=0.5, **kwargs):
    layers = (
        keras.layers.BatchNormalization(momentum=momentum, **kwargs),
        FusedBatchNormalization(momentum=momentum, **kwargs),
    )
    for layer in layers:
        layer.build(x.shape)
        layer.gamma.assign([1.0, 2.0, 3.0])
        layer.beta.assign([0.1, 0.2, 0.3])
    return layers


def test_fused_batch_normalization_is_keras_batch_normalization():
    x = _x(2, 5, 6, 3) * 3.0 + 2.0
    plain, fused = _bn_pair(x)
    # A loss whose gradients are not zero: each output weighed by its own number.
    weights = tf.constant(np.random.default_rng(5).normal(size=x.shape).astype("float32"))
    results = []
    for layer in (plain, fused):
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            y = layer(inputs, training=True)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [inputs, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance])
    for got, expected in zip(results[1], results[0]):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)
    # The moving statistics by hand: momentum 0.5 from mean 0 and variance 1, with the
    # uncorrected batch variance over the 2 * 5 * 6 values of each channel.
    np.testing.assert_allclose(
        fused.moving_variance.numpy(), 0.5 + 0.5 * x.reshape(-1, 3).var(0), rtol=1e-5
    )
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.5 * x.reshape(-1, 3).mean(0), atol=1e-5)
    # Inference uses the moving statistics.
    np.testing.assert_allclose(fused(x).numpy(), plain(x).numpy(), atol=1e-5)
    # Not trainable: inference mode even with training=True, as Keras does.
    fused.trainable = False
    before = fused.moving_mean.numpy()
    np.testing.assert_allclose(fused(x, training=True).numpy(), plain(x).numpy(), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), before)


def test_fused_batch_normalization_falls_back_where_it_cannot_fuse():
    # Channels first (axis 1): Keras' own computation, with the same results.
    x = _x(2, 3, 5, 6) * 3.0 + 2.0
    plain, fused = _bn_pair(x, axis=1)
    np.testing.assert_allclose(
        fused(x, training=True).numpy(), plain(x, training=True).numpy(), atol=1e-5
    )
    np.testing.assert_allclose(fused.moving_variance.numpy(), plain.moving_variance.numpy())


def test_fused_batch_normalization_config():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-4, name="bn")
    revived = run_serialization_test(layer)
    assert revived.momentum == 0.9 and revived.epsilon == 1e-4
    config = layer.get_config()
    assert config == {**keras.layers.BatchNormalization(**config).get_config()}


def test_batch_norm_momentum():
    model = unet(depth=1, base_filters=2, use_batch_norm=True, batch_norm_momentum=0.9)
    norms = [layer for layer in model.layers if isinstance(layer, FusedBatchNormalization)]
    assert len(norms) == 6 and all(layer.momentum == 0.9 for layer in norms)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in unet(depth=1).layers)
    with pytest.raises(ValueError, match=r"Received: batch_norm_momentum=1"):
        unet(use_batch_norm=True, batch_norm_momentum=1)


def test_first_level_filters():
    def conv(f, c_in, c_out):
        return f * f * c_in * c_out + c_out

    # Depth 2, base 8, level 0 narrowed to 4: filters 4, 16, 32.
    filters, expected, c_in = [4, 16, 32], 0, 1
    for f in filters:
        expected += conv(3, c_in, f) + conv(3, f, f)
        c_in = f
    for i in (1, 0):
        expected += conv(2, filters[i + 1], filters[i])
        expected += conv(3, 2 * filters[i], filters[i]) + conv(3, filters[i], filters[i])
    expected += conv(1, 4, 2)
    model = unet(depth=2, base_filters=8, first_level_filters=4)
    assert model.count_params() == expected
    assert model.get_layer("down0_conv2").output.shape[-1] == 4
    assert model.get_layer("down1_conv2").output.shape[-1] == 16
    assert tuple(model(_x(1, 8, 12, 1)).shape) == (1, 8, 12, 2)
    with pytest.raises(ValueError, match=r"Received: first_level_filters=0"):
        unet(first_level_filters=0)
