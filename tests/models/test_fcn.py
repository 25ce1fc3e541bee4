"""fcn: FCN-8s parameter count, full convolutionality, skip fusion, validation, training."""

import keras
import numpy as np
import pytest

from i2dl_keras.models.fcn import fcn


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def test_fcn8s_parameter_count_by_hand():
    def conv(f, c_in, c_out, bias=True):
        return f * f * c_in * c_out + (c_out if bias else 0)

    k = 21
    vgg16_convs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256),
                   (256, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512),
                   (512, 512)]  # fmt: skip
    expected = sum(conv(3, a, b) for a, b in vgg16_convs)
    expected += conv(7, 512, 4096) + conv(1, 4096, 4096) + conv(1, 4096, k)  # fc6, fc7, score
    expected += conv(4, k, k, bias=False) + conv(1, 512, k)  # 2x up, score of pool4
    expected += conv(4, k, k, bias=False) + conv(1, 256, k)  # 2x up, score of pool3
    expected += conv(16, k, k, bias=False)  # 8x up
    model = fcn()
    assert expected == 134_489_759
    assert model.count_params() == expected


def test_fully_convolutional_for_every_skip_variant():
    cases = [
        # (skips, upsampling, fused skip score layers, input sizes for one model)
        ("fcn32s", "transposed", set(), [(64, 64), (96, 96)]),
        ("fcn16s", "transposed", {"score_pool4"}, [(64, 64), (96, 96)]),
        ("fcn8s", "transposed", {"score_pool4", "score_pool3"}, [(64, 64), (96, 96), (64, 96)]),
        ("fcn8s", "bilinear", {"score_pool4", "score_pool3"}, [(64, 64), (96, 64)]),
    ]
    for skips, upsampling, fused, sizes in cases:
        model = fcn(num_classes=3, base_filters=2, head_filters=8, head_kernel_size=3,
                    upsampling=upsampling, skips=skips)  # fmt: skip
        assert model.name == skips
        names = {layer.name for layer in model.layers}
        assert {n for n in names if n.startswith("score_pool")} == fused
        for h, w in sizes:
            probs = model(_x(1, h, w, 3)).numpy()
            assert probs.shape == (1, h, w, 3), (skips, upsampling)
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_skip_scores_start_at_zero_so_fcn8s_starts_as_fcn32s():
    # With bilinear upsampling and zero skip scores, fusing adds nothing at initialization:
    # FCN-8s's logits equal the stride-32 scores upsampled by 32 in three bilinear steps.
    model = fcn(num_classes=2, base_filters=2, head_filters=4, upsampling="bilinear",
                output_activation=None, dropout=0.0)  # fmt: skip
    for name in ("score_pool4", "score_pool3"):
        assert not np.any(model.get_layer(name).kernel.numpy())
    x = _x(1, 64, 64, 3)
    score = keras.Model(model.input, model.get_layer("score").output)(x)
    up = keras.layers.UpSampling2D(2, interpolation="bilinear")
    expected = keras.layers.UpSampling2D(8, interpolation="bilinear")(up(up(score)))
    np.testing.assert_allclose(model(x).numpy(), expected.numpy(), atol=1e-5, rtol=0)


def test_tiny_training_step(train_one_step):
    model = fcn(num_classes=3, base_filters=2, head_filters=8, head_kernel_size=3)
    y = np.random.default_rng(1).integers(0, 3, size=(2, 32, 32))
    train_one_step(model, _x(2, 32, 32, 3), y, learning_rate=0.05)


def test_invalid_arguments():
    cases = [
        ({"input_shape": (48, 64, 3)}, r"multiples of 32.*Received: input_shape=\(48, 64, 3\)"),
        ({"convs_per_stage": (1, 1), "skips": "fcn8s"}, r"at least 3 stages.*Received"),
        ({"convs_per_stage": (1, 0, 1)}, r"Received: convs_per_stage=\(1, 0, 1\)"),
        ({"skips": "fcn4s"}, r"`skips`.*Received: skips='fcn4s'"),
        ({"upsampling": "nearest"}, r"Received: upsampling='nearest'"),
        ({"base_filters": 0}, r"Received: base_filters=0"),
        ({"head_filters": -4}, r"Received: head_filters=-4"),
        ({"num_classes": 0}, r"Received: num_classes=0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            fcn(**kwargs)
    # Three stages have a total stride of 8, and then 40 is fine.
    model = fcn(input_shape=(40, 40, 1), num_classes=2, base_filters=2, head_filters=4,
                convs_per_stage=(1, 1, 1))  # fmt: skip
    assert model.output_shape == (None, 40, 40, 2)
