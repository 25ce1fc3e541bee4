"""Tests for the autoencoder builders: shapes, parameter counts, losses, corruption, saving."""

import keras
import numpy as np
import pytest

from i2dl_keras.layers.contractive_dense import ContractiveDense
from i2dl_keras.layers.masking_noise import MaskingNoise
from i2dl_keras.layers.salt_pepper_noise import SaltPepperNoise
from i2dl_keras.models.autoencoders import (
    bottleneck_autoencoder,
    contractive_autoencoder,
    conv_autoencoder,
    denoising_autoencoder,
    get_decoder,
    get_encoder,
    sparse_autoencoder,
    stacked_autoencoder,
)
from i2dl_keras.models.stacked import classifier_from_encoder
from i2dl_keras.testing import run_export_test, run_model_saving_test


def _data(shape, n=6, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def _tiny_autoencoders():
    """name -> (model, inputs, expected code shape without the batch axis)."""
    specs = {
        "bottleneck": (bottleneck_autoencoder((12,), code_size=3, hidden=(6,)), (12,), (3,)),
        "bottleneck_image": (bottleneck_autoencoder((4, 4, 1), code_size=5), (4, 4, 1), (5,)),
        "conv": (conv_autoencoder((16, 16, 1), filters=(4, 8)), (16, 16, 1), (4, 4, 8)),
        "conv_dense_code": (
            conv_autoencoder((8, 8, 2), filters=(4,), code_size=5),
            (8, 8, 2),
            (5,),
        ),
        "sparse_l1": (
            sparse_autoencoder((12,), code_size=16, sparsity_weight=1e-2),
            (12,),
            (16,),
        ),
        "sparse_kl": (
            sparse_autoencoder((12,), code_size=6, hidden=(8,), sparsity_target=0.1),
            (12,),
            (6,),
        ),
        "denoising_gaussian": (
            denoising_autoencoder((12,), "gaussian", 0.2, code_size=4, hidden=(), seed=1),
            (12,),
            (4,),
        ),
        "denoising_salt_pepper_conv": (
            denoising_autoencoder((8, 8, 1), "salt_pepper", 0.2, conv=True, filters=(4,), seed=1),
            (8, 8, 1),
            (4, 4, 4),
        ),
        "denoising_masking": (
            denoising_autoencoder((12,), "masking", 0.3, code_size=4, seed=1),
            (12,),
            (4,),
        ),
        "contractive": (contractive_autoencoder((12,), code_size=4, contraction=0.1), (12,), (4,)),
        "stacked": (stacked_autoencoder((12,), units=(8, 4)), (12,), (4,)),
    }
    return {name: (model, _data(shape), code) for name, (model, shape, code) in specs.items()}


def test_every_builder_reconstructs_the_input_shape_and_trains():
    for name, (model, x, code_shape) in _tiny_autoencoders().items():
        assert tuple(model(x).shape) == x.shape, name
        assert tuple(get_encoder(model)(x).shape) == (len(x), *code_shape), name
        code = np.zeros((2, *code_shape), "float32")
        assert tuple(get_decoder(model)(code).shape) == (2, *x.shape[1:]), name
        # Eager: one step needs no graph tracing, which would cost a second per model.
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", run_eagerly=True)
        before = [w.copy() for w in model.get_weights()]
        loss = model.train_on_batch(x, x)
        assert np.isfinite(loss), name
        after = model.get_weights()
        changed = [not np.array_equal(b, a) for b, a in zip(before, after)]
        # Every trainable weight (kernels and biases) moves; corruption layers have none.
        assert all(changed), f"{name}: {changed}"


def test_parameter_counts_worked_by_hand():
    # 8-3-8: (8*3 + 3) + (3*8 + 8).
    assert bottleneck_autoencoder((8,), 3, hidden=()).count_params() == 59
    # 784-128-32-128-784: 100480 + 4128 + 4224 + 101136.
    assert bottleneck_autoencoder((784,), 32, hidden=(128,)).count_params() == 209_968
    # Conv F*F*C_in*C_out + C_out: 160 + 4640 (encoder), 9248 + 4624 + 145 (decoder).
    mnist = conv_autoencoder((28, 28, 1))
    assert mnist.count_params() == 18_817 < 100_000
    assert tuple(get_encoder(mnist).output.shape) == (None, 7, 7, 32)
    out = mnist(np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype("float32"))
    assert float(keras.ops.min(out)) >= 0.0 and float(keras.ops.max(out)) <= 1.0
    # The denoising app's model: the same conv autoencoder behind a corruption layer.
    assert denoising_autoencoder((28, 28, 1), "gaussian", 0.3, conv=True).count_params() == 18_817
    # Dense code: conv 40, dense 325 / 384, transposed conv 148, output conv 37.
    assert conv_autoencoder((8, 8, 1), filters=(4,), code_size=5).count_params() == 934


def test_u_net_shaped_conv_autoencoder_worked_by_hand():
    model = conv_autoencoder((8, 8, 1), filters=(2, 4), convs_per_stage=2, skip_connections=True)
    # Encoder: 20 + 38 (stage 1: stride-2 conv 1->2, conv 2->2), 76 + 148 (stage 2: 2->4, 4->4).
    # Decoder: transposed 4->4 148, conv on [4 + 2 skip] -> 4 220, transposed 4->2 74,
    # conv on [2 + 1 input] -> 2 56, output conv 2->1 19.
    assert get_encoder(model).count_params() == 282
    assert get_decoder(model).count_params() == 517
    assert model.count_params() == 799
    names = [layer.name for layer in get_encoder(model).layers]
    assert names == [
        "encoder_input",
        "encoder_conv_1",
        "encoder_conv_1_2",
        "encoder_conv_2",
        "encoder_conv_2_2",
    ]
    x = _data((8, 8, 1), n=2)
    code, skip_1, skip_0 = get_encoder(model)(x)
    # The code first, then the feature maps from the coarsest to the input itself.
    assert tuple(code.shape) == (2, 2, 2, 4) and tuple(skip_1.shape) == (2, 4, 4, 2)
    np.testing.assert_array_equal(skip_0, x)
    # The skips carry what the code does not: with the code zeroed the output still depends
    # on the input, which a plain autoencoder's could not.
    decoder = get_decoder(model)
    zero = keras.ops.zeros_like(code)
    other = _data((8, 8, 1), n=2, seed=1)
    y1 = np.asarray(decoder([zero, skip_1, skip_0]))
    y2 = np.asarray(decoder([zero, *get_encoder(model)(other)[1:]]))
    assert np.abs(y1 - y2).max() > 1e-4
    # Without skips, `convs_per_stage` alone: the same layers, no concatenation, a single code.
    plain = conv_autoencoder((8, 8, 1), filters=(2, 4), convs_per_stage=2)
    assert plain.count_params() == 799 - 9 * 2 * 4 - 9 * 1 * 2
    assert tuple(get_encoder(plain).output.shape) == (None, 2, 2, 4)


def test_full_resolution_convs_feed_the_last_skip_worked_by_hand():
    model = conv_autoencoder(
        (8, 8, 1), filters=(2, 4), convs_per_stage=2, skip_connections=True, full_resolution_convs=2
    )
    # On top of the 799 of the same U-Net without them: convs 1->2 (20) and 2->2 (38) at 8x8;
    # the stride-2 conv 1 and the decoder's last conv read 2 feature channels where they read
    # the 1-channel input: +18 each.
    assert model.count_params() == 799 + 20 + 38 + 18 + 18
    names = [layer.name for layer in get_encoder(model).layers]
    assert names[:4] == ["encoder_input", "encoder_conv_0_1", "encoder_conv_0_2", "encoder_conv_1"]
    x = _data((8, 8, 1), n=2)
    code, skip_1, skip_0 = get_encoder(model)(x)
    # The full-resolution skip is now the convolutions' feature map, not the input.
    assert tuple(skip_0.shape) == (2, 8, 8, 2) and tuple(code.shape) == (2, 2, 2, 4)
    encoder = get_encoder(model)
    stem = keras.Model(encoder.input, encoder.get_layer("encoder_conv_0_2").output)
    np.testing.assert_allclose(skip_0, stem(x), atol=1e-6)
    # Without skip connections they still run first, and the code is unchanged in shape.
    plain = conv_autoencoder((8, 8, 1), filters=(2, 4), convs_per_stage=2, full_resolution_convs=1)
    assert plain.count_params() == 799 - 9 * 2 * 4 - 9 * 1 * 2 + 20 + 18
    assert tuple(get_encoder(plain).output.shape) == (None, 2, 2, 4)
    assert tuple(plain(x).shape) == (2, 8, 8, 1)


def test_u_net_trains_and_reloads_in_a_fresh_process():
    model = conv_autoencoder((8, 8, 1), filters=(2, 4), convs_per_stage=2, skip_connections=True)
    x = _data((8, 8, 1))
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    assert np.isfinite(model.train_on_batch(x, x))
    assert all(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
    run_model_saving_test({"unet": (model, x)})


def test_denoising_corrupts_only_in_training():
    x = _data((12,), n=64, seed=3)
    for noise, layer_cls in [
        ("gaussian", keras.layers.GaussianNoise),
        ("salt_pepper", SaltPepperNoise),
        ("masking", MaskingNoise),
    ]:
        model = denoising_autoencoder((12,), noise, 0.3, code_size=4, seed=0)
        assert isinstance(model.get_layer("corruption"), layer_cls), noise
        clean = get_decoder(model)(get_encoder(model)(x))
        np.testing.assert_allclose(model(x), clean, atol=1e-6, err_msg=noise)
        corrupted = model.get_layer("corruption")(x, training=True)
        differs = np.mean(np.asarray(corrupted) != x)
        # Gaussian noise moves every value; the other two about 30% of them.
        expected = 1.0 if noise == "gaussian" else 0.3
        assert abs(differs - expected) < 0.08, (noise, differs)
        assert not np.allclose(model(x, training=True), clean, atol=1e-4), noise


def test_sparse_loss_adds_the_sparsity_penalty_worked_in_numpy():
    x = _data((10,), n=8, seed=4)
    for target in (None, 0.2):
        model = sparse_autoencoder(
            (10,), code_size=12, sparsity_weight=0.05, sparsity_target=target
        )
        model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # no graph to trace
        h = np.asarray(get_encoder(model)(x))
        mse = np.mean((np.asarray(model(x)) - x) ** 2)
        if target is None:
            penalty = 0.05 * np.mean(np.sum(np.abs(h), axis=1))
        else:
            rho, rho_hat = target, h.mean(axis=0)
            kl = rho * np.log(rho / rho_hat) + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))
            penalty = 0.05 * kl.sum()
        assert penalty > 1e-3, target
        loss = model.evaluate(x, x, batch_size=len(x), verbose=0)
        np.testing.assert_allclose(loss, mse + penalty, rtol=1e-4, err_msg=str(target))


def test_contractive_loss_adds_the_jacobian_penalty_worked_in_numpy():
    x = _data((10,), n=8, seed=5)
    model = contractive_autoencoder((10,), code_size=4, contraction=0.5)
    assert isinstance(get_encoder(model).get_layer("encoder_dense_1"), ContractiveDense)
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)  # no graph to trace
    kernel, bias = get_encoder(model).get_layer("encoder_dense_1").get_weights()
    h = 1.0 / (1.0 + np.exp(-(x @ kernel + bias)))
    penalty = 0.5 * np.mean(np.sum((h * (1 - h)) ** 2 * (kernel**2).sum(axis=0), axis=1))
    mse = np.mean((np.asarray(model(x)) - x) ** 2)
    loss = model.evaluate(x, x, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(loss, mse + penalty, rtol=1e-4)
    assert penalty > 1e-3


def test_invalid_arguments_raise():
    cases = [
        (lambda: bottleneck_autoencoder((8,), code_size=8), "Received: code_size=8"),
        (lambda: bottleneck_autoencoder((8,), code_size=0), "Received: code_size=0"),
        (lambda: bottleneck_autoencoder((0, 4), 2), "Received: input_shape=(0, 4)"),
        (lambda: bottleneck_autoencoder((8,), 2, hidden=(4, -1)), "Received: hidden=(4, -1)"),
        (lambda: bottleneck_autoencoder((8,), 2, activation="nope"), "Received: activation='nope'"),
        (lambda: conv_autoencoder((28, 28)), "Received: input_shape=(28, 28)"),
        (lambda: conv_autoencoder((30, 28, 1)), "Received: input_shape=(30, 28, 1)"),
        (lambda: conv_autoencoder(filters=()), "Received: filters=()"),
        (lambda: conv_autoencoder(convs_per_stage=0), "Received: convs_per_stage=0"),
        (lambda: conv_autoencoder(skip_connections=1), "Received: skip_connections=1"),
        (
            lambda: conv_autoencoder(full_resolution_convs=-1),
            "Received: full_resolution_convs=-1",
        ),
        (lambda: sparse_autoencoder((8,), sparsity_weight=-1.0), "Received: sparsity_weight=-1.0"),
        (lambda: sparse_autoencoder((8,), sparsity_target=1.0), "Received: sparsity_target=1.0"),
        (
            lambda: sparse_autoencoder((8,), sparsity_target=0.1, code_activation="relu"),
            "Received: code_activation='relu'",
        ),
        (lambda: denoising_autoencoder((8,), noise="poisson"), "Received: noise='poisson'"),
        (lambda: denoising_autoencoder((8,), "gaussian", 1.5), "Received: noise_level=1.5"),
        (lambda: denoising_autoencoder((8,), "masking", 1.0), "Received: noise_level=1.0"),
        (lambda: denoising_autoencoder((8,), code_size=9), "Received: code_size=9"),
        (lambda: contractive_autoencoder((8,), activation="elu"), "Received: activation='elu'"),
        (lambda: contractive_autoencoder((8,), contraction=-1), "Received: contraction=-1"),
        (lambda: stacked_autoencoder((8,), units=()), "Received: units=()"),
        (lambda: get_encoder(keras.Sequential([keras.layers.Dense(2)])), "Received: autoencoder="),
    ]
    for build, received in cases:
        with pytest.raises(ValueError) as info:
            build()
        message = str(info.value)
        # The house format: the message ends with the offending value (a model's repr varies).
        assert message.endswith(received) or (received.endswith("=") and received in message), (
            message
        )


def test_all_autoencoders_reload_in_a_fresh_process():
    models = {name: (model, x) for name, (model, x, _) in _tiny_autoencoders().items()}
    stacked, x_stacked = models["stacked"]
    models["classifier"] = (classifier_from_encoder(stacked, num_classes=3), x_stacked)
    run_model_saving_test(models)


def test_export_dense_and_conv_autoencoders():
    run_export_test(bottleneck_autoencoder((12,), code_size=3, hidden=(6,)), _data((12,)))
    conv = denoising_autoencoder((8, 8, 1), "salt_pepper", 0.3, conv=True, filters=(4,), seed=0)
    run_export_test(conv, _data((8, 8, 1)))
