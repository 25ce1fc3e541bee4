"""mobilenet_v2_unet: decoder parameters by hand, any size, encoder weights from a file, saving."""

import keras
import numpy as np
import pytest

from i2dl_keras.models.mobilenet_unet import mobilenet_v2_unet
from i2dl_keras.testing import run_model_saving_test


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A MobileNetV2 (alpha 0.35, no top) weights file of seed-7 random weights."""
    keras.utils.set_random_seed(7)
    backbone = keras.applications.MobileNetV2(
        input_shape=(None, None, 3), include_top=False, weights=None, alpha=0.35
    )
    path = tmp_path_factory.mktemp("weights") / "encoder.weights.h5"
    backbone.save_weights(path)
    return path, backbone


def test_decoder_parameter_count_by_hand():
    # MobileNetV2 at alpha 0.35 rounds its widths to multiples of 8: the expansions feeding the
    # decoder have 6 * 8, 6 * 8, 6 * 16 and 6 * 32 channels, the last projection 112.
    features = [48, 48, 96, 192, 112]
    width, classes = 4, 2
    expected, c_in = 0, features[-1]
    for level in (3, 2, 1, 0):
        f = width * 2**level
        expected += 9 * c_in * f + 4 * f  # 3x3 up-convolution without bias, batch norm
        expected += 9 * (f + features[level]) * f + 4 * f  # 3x3 conv on the concatenation, BN
        c_in = f
    expected += 9 * c_in * classes + classes  # the logits' 3x3 up-convolution, with bias
    assert expected == 125_402
    model = mobilenet_v2_unet(num_classes=classes, alpha=0.35, decoder_filters=width)
    encoder = model.get_layer("mobilenet_v2_encoder")
    assert [o.shape[-1] for o in encoder.outputs] == features
    assert model.count_params() - encoder.count_params() == expected


def test_fully_convolutional():
    model = mobilenet_v2_unet(num_classes=3, alpha=0.35, decoder_filters=4)
    for h, w in ((32, 32), (64, 96)):
        probs = model(_x(1, h, w, 3)).numpy()
        assert probs.shape == (1, h, w, 3)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    fixed = mobilenet_v2_unet((64, 32, 3), num_classes=2, alpha=0.35, output_activation=None)
    assert fixed.output_shape == (None, 64, 32, 2) and fixed.layers[-1].name == "logits"


def test_tiny_training_step():
    keras.utils.set_random_seed(0)
    model = mobilenet_v2_unet(
        num_classes=2, alpha=0.35, decoder_filters=2, batch_norm_momentum=0.9,
        output_activation=None,
    )  # fmt: skip
    assert model.get_layer("up0_bn").momentum == 0.9
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    encoder = model.get_layer("mobilenet_v2_encoder")
    decoder = [w for layer in model.layers if layer is not encoder for w in layer.trainable_weights]
    watched = decoder + [
        encoder.get_layer("Conv1").kernel,
        encoder.get_layer("block_16_project").kernel,
    ]
    before = [w.numpy().copy() for w in watched]
    y = np.random.default_rng(1).integers(0, 2, size=(2, 64, 64))
    assert np.isfinite(float(model.train_on_batch(_x(2, 64, 64, 3), y)))
    unchanged = [w.path for w, b in zip(watched, before) if np.array_equal(b, w.numpy())]
    assert len(decoder) == 4 * 6 + 2 and not unchanged, unchanged


def _moving_mean_after_a_step(model):
    bn = model.get_layer("mobilenet_v2_encoder").get_layer("bn_Conv1")
    conv = model.get_layer("mobilenet_v2_encoder").get_layer("Conv1")
    before = bn.moving_mean.numpy().copy(), conv.kernel.numpy().copy()
    # Eagerly: one step of a 155-layer model runs in less time than tracing it takes.
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(_x(2, 32, 32, 3) * 3 + 1, np.zeros((2, 32, 32), "int32"))
    moved_mean = not np.allclose(before[0], bn.moving_mean.numpy())
    moved_kernel = not np.allclose(before[1], conv.kernel.numpy())
    return moved_mean, moved_kernel


def test_encoder_weights_load_from_a_file_and_freeze_batch_norm(weights_file):
    path, backbone = weights_file
    keras.utils.set_random_seed(8)  # other initial weights: only the file can match
    model = mobilenet_v2_unet(num_classes=2, alpha=0.35, encoder_weights=path, decoder_filters=4)
    encoder = model.get_layer("mobilenet_v2_encoder")
    for name in ("Conv1", "block_6_depthwise", "block_16_project", "bn_Conv1"):
        for got, expected in zip(
            encoder.get_layer(name).get_weights(), backbone.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(got, expected)
    # Fine-tuning moves the convolutions but keeps the pretrained batch-norm statistics...
    assert _moving_mean_after_a_step(model) == (False, True)
    # ...whereas an encoder trained from scratch learns them.
    scratch = mobilenet_v2_unet(num_classes=2, alpha=0.35, decoder_filters=4)
    assert _moving_mean_after_a_step(scratch) == (True, True)


def test_invalid_arguments(weights_file, tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not weights")
    cases = [
        ({"input_shape": (None, None, 1)}, r"3 channels.*Received: input_shape=\(None, None, 1\)"),
        ({"input_shape": (48, 64, 3)}, r"multiples of 32.*Received: input_shape=\(48, 64, 3\)"),
        ({"num_classes": 0}, r"Received: num_classes=0"),
        ({"alpha": 0}, r"Received: alpha=0"),
        ({"decoder_filters": 0}, r"Received: decoder_filters=0"),
        ({"batch_norm_momentum": 1.0}, r"Received: batch_norm_momentum=1.0"),
        ({"encoder_weights": tmp_path / "missing.h5"}, r"path of a weights file.*missing\.h5"),
        ({"encoder_weights": garbage}, r"cannot be loaded into MobileNetV2.*garbage\.h5"),
        (
            {"encoder_weights": weights_file[0], "alpha": 0.5},
            r"cannot be loaded into MobileNetV2\(include_top=False, alpha=0.5\)",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            mobilenet_v2_unet(**{"alpha": 0.35, **kwargs})


def test_reloads_in_a_fresh_process(weights_file, tmp_path):
    model = mobilenet_v2_unet(
        num_classes=3, alpha=0.35, encoder_weights=weights_file[0], decoder_filters=2
    )
    for w in model.non_trainable_weights:
        if "moving_" in w.path:
            w.assign(w.numpy() + 0.25)
    run_model_saving_test(model, _x(2, 32, 64, 3), atol=1e-4)
    # The frozen batch normalization of a pretrained encoder stays frozen.
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    encoder = reloaded.get_layer("mobilenet_v2_encoder")
    assert not encoder.get_layer("bn_Conv1").trainable
    assert encoder.get_layer("Conv1").trainable
