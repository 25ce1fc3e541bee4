"""Tests for stacking autoencoders: greedy layer-wise pretraining, then supervised fine-tuning."""

import keras
import numpy as np
import pytest

from i2dl_keras.models.autoencoders import (
    conv_autoencoder,
    get_decoder,
    get_encoder,
    stacked_autoencoder,
)
from i2dl_keras.models.stacked import (
    classifier_from_encoder,
    greedy_layerwise_pretrain,
    stacked_layer_pairs,
)


def _named_weights(model):
    """Every weight of the autoencoder, keyed by layer and weight name, as NumPy copies."""
    weights = {}
    for part in (get_encoder(model), get_decoder(model)):
        for layer in part.layers:
            for w in layer.weights:
                weights[f"{layer.name}/{w.name}"] = np.array(w.numpy(), copy=True)
    return weights


class _StageRecorder(keras.callbacks.Callback):
    """Records, per stage, the stage model's layers and all autoencoder weights before/after."""

    def __init__(self, autoencoder):
        super().__init__()
        self.autoencoder = autoencoder
        self.stages = []

    def on_train_begin(self, logs=None):
        layers = [layer.name for layer in self.model.layers]
        self.stages.append({"layers": layers, "before": _named_weights(self.autoencoder)})

    def on_train_end(self, logs=None):
        self.stages[-1]["after"] = _named_weights(self.autoencoder)


def _changed(stage):
    return {k for k, v in stage["before"].items() if not np.array_equal(v, stage["after"][k])}


def test_pretraining_changes_one_pair_per_stage_then_fine_tuning_trains_the_encoder():
    # One test for both halves: fine-tuning starts from the pretrained stack, as in the slides.
    # Everything runs eagerly: a few steps on tiny data are quicker than tracing graphs.
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(48, 12)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    model = stacked_autoencoder((12,), units=(8, 4, 3))
    pairs = stacked_layer_pairs(model)
    assert [(e.name, d.name) for e, d in pairs] == [
        ("encoder_dense_1", "decoder_dense_1"),
        ("encoder_dense_2", "decoder_dense_2"),
        ("encoder_dense_3", "decoder_dense_3"),
    ]
    recorder = _StageRecorder(model)
    histories = greedy_layerwise_pretrain(
        model, x, epochs=2, batch_size=16, optimizer=keras.optimizers.Adam(0.01),
        callbacks=[recorder], run_eagerly=True,
    )  # fmt: skip
    assert len(histories) == 3 and all(len(h.history["loss"]) == 2 for h in histories)
    assert all(np.isfinite(h.history["loss"]).all() for h in histories)
    assert len(recorder.stages) == 3
    for k, stage in enumerate(recorder.stages, start=1):
        pair = {f"encoder_dense_{k}", f"decoder_dense_{k}"}
        # The stage model holds exactly the k-th encoder layer and its mirror.
        assert set(stage["layers"]) == {f"stage_{k}_input", *pair}, stage["layers"]
        expected = {f"{name}/{w}" for name in pair for w in ("kernel", "bias")}
        # Pair k's four weights all move; every other weight is bit-identical.
        assert _changed(stage) == expected, (k, _changed(stage))

    for freeze in (True, False):
        classifier = classifier_from_encoder(model, num_classes=3, freeze_encoder=freeze)
        assert classifier.output.shape == (None, 3)
        assert get_encoder(model) in classifier.layers  # shared, not copied
        classifier.compile(
            optimizer=keras.optimizers.Adam(0.05),
            loss="sparse_categorical_crossentropy",
            run_eagerly=True,
        )
        encoder_before = [w.copy() for w in get_encoder(model).get_weights()]
        decoder_before = [w.copy() for w in get_decoder(model).get_weights()]
        head_before = [w.copy() for w in classifier.get_layer("classifier_head").get_weights()]
        classifier.fit(x, y, epochs=1, batch_size=16, verbose=0)
        encoder_after = get_encoder(model).get_weights()
        encoder_moved = [not np.array_equal(b, a) for b, a in zip(encoder_before, encoder_after)]
        assert encoder_moved == [not freeze] * 6, (freeze, encoder_moved)
        head_after = classifier.get_layer("classifier_head").get_weights()
        assert all(not np.array_equal(b, a) for b, a in zip(head_before, head_after))
        # The decoder is not part of the classifier.
        for b, a in zip(decoder_before, get_decoder(model).get_weights()):
            np.testing.assert_array_equal(a, b)
        probs = np.asarray(classifier(x[:4]))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_classifier_on_a_conv_encoder_flattens_the_feature_map():
    classifier = classifier_from_encoder(conv_autoencoder((8, 8, 1), filters=(4,)), 5)
    # The encoder's 4x4x4 code map becomes 64 features, so the head has 64 * 5 + 5 weights.
    flatten = classifier.get_layer("classifier_flatten")
    assert isinstance(flatten, keras.layers.Flatten)
    assert tuple(flatten.input.shape) == (None, 4, 4, 4)
    assert tuple(flatten.output.shape) == (None, 64)
    assert classifier.get_layer("classifier_head").count_params() == 64 * 5 + 5
    out = classifier(np.zeros((2, 8, 8, 1), "float32"))
    assert tuple(out.shape) == (2, 5)


def test_classifier_pools_the_code_of_a_u_net_and_drops_out():
    # A U-Net-shaped encoder outputs [code, skips...]: the head reads the code, a 2x2x8 map here,
    # max-pooled 2x2 into 1x1x8, so the head has 8 * 5 + 5 weights.
    unet = conv_autoencoder((8, 8, 1), filters=(4, 8), convs_per_stage=2, skip_connections=True)
    classifier = classifier_from_encoder(unet, 5, pool_size=2, dropout=0.5)
    assert tuple(classifier.get_layer("classifier_pool").output.shape) == (None, 1, 1, 8)
    assert classifier.get_layer("classifier_head").count_params() == 8 * 5 + 5
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype("float32")
    code = np.asarray(get_encoder(unet)(x)[0])
    features = code.reshape(3, 1, 2, 1, 2, 8).max(axis=(2, 4)).reshape(3, 8)
    head = classifier.get_layer("classifier_head")
    kernel, bias = (np.asarray(w) for w in head.weights)
    logits = features @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # Dropout is off at inference and on in training.
    np.testing.assert_allclose(classifier(x), expected, atol=1e-5)
    assert not np.allclose(classifier(x, training=True), expected, atol=1e-5)
    assert classifier.get_layer("classifier_dropout").rate == 0.5
    # With the skip features: the 4x4x4 map of stage 1 is pooled 4x4 to the code's 1x1 and
    # concatenated (the input, the other skip, is no feature): 8 + 4 features.
    both = classifier_from_encoder(unet, 5, pool_size=2, skip_features=True)
    assert both.get_layer("classifier_head").count_params() == 12 * 5 + 5
    skip = np.asarray(get_encoder(unet)(x)[1]).max(axis=(1, 2))
    kernel, bias = (np.asarray(w) for w in both.get_layer("classifier_head").weights)
    logits = np.concatenate([features, skip], axis=1) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(both(x), expected, atol=1e-5)


def test_invalid_arguments_raise():
    x = np.zeros((4, 12), "float32")
    model = stacked_autoencoder((12,), units=(8, 4))
    cases = [
        (
            lambda: greedy_layerwise_pretrain(conv_autoencoder((8, 8, 1)), x),
            "Received: autoencoder=",
        ),
        (lambda: greedy_layerwise_pretrain(model, np.zeros((4, 11))), "with shape (4, 11)"),
        (lambda: greedy_layerwise_pretrain(model, x, epochs=0), "Received: epochs=0"),
        (lambda: greedy_layerwise_pretrain(model, x, optimizer="nope"), "optimizer='nope'"),
        (lambda: classifier_from_encoder(model, num_classes=1), "Received: num_classes=1"),
        (lambda: classifier_from_encoder("model", 3), "Received: autoencoder_or_encoder='model'"),
        (lambda: classifier_from_encoder(model, 3, freeze_encoder=1), "freeze_encoder=1"),
        (lambda: classifier_from_encoder(model, 3, pool_size=0), "Received: pool_size=0"),
        (lambda: classifier_from_encoder(model, 3, dropout=1.0), "Received: dropout=1.0"),
        (lambda: classifier_from_encoder(model, 3, skip_features=1), "skip_features=1"),
    ]
    for call, received in cases:
        with pytest.raises(ValueError) as info:
            call()
        assert received in str(info.value), str(info.value)
