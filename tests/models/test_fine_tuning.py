"""Fine-tuning helpers: blocks of a backbone, unfreezing the top, layerwise rates, the head."""

import keras
import numpy as np
import pytest

from i2dl_keras.models import (
    attach_head,
    backbone_units,
    build_backbone,
    learning_rate_multipliers,
    preprocessing_layers,
    unfreeze_top,
)
from i2dl_keras.testing import run_model_saving_test

# The top 2 blocks of MobileNetV2: its last 1x1 conv and its last inverted-residual block.
MOBILENET_TOP_2 = {"Conv_1", "block_16_expand", "block_16_depthwise", "block_16_project"}


@pytest.fixture(scope="module")
def vgg():
    return keras.applications.VGG16(input_shape=(32, 32, 3), include_top=False, weights=None)


@pytest.fixture(scope="module")
def mobilenet():
    return build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35)


def test_backbone_units_group_layers_into_blocks(vgg, mobilenet):
    blocks = backbone_units(vgg, "blocks")
    assert [[layer.name for layer in b] for b in blocks][-1] == [
        "block5_conv1",
        "block5_conv2",
        "block5_conv3",
    ]
    assert len(blocks) == 5 and len(backbone_units(vgg, "layers")) == 13
    top = [{layer.name for layer in b} for b in backbone_units(mobilenet)[-2:]]
    assert top == [{"block_16_expand", "block_16_depthwise", "block_16_project"}, {"Conv_1"}]
    names = {layer.name for b in backbone_units(mobilenet) for layer in b}
    assert not any("BN" in n or "bn" in n.split("_") for n in names)


def test_unfreeze_top_never_unfreezes_batchnorm(mobilenet):
    chosen = unfreeze_top(mobilenet, 2)
    assert [layer.name for layer in chosen[0]] == ["Conv_1"]
    trainable = {layer.name for layer in mobilenet.layers if layer.trainable and layer.weights}
    assert trainable == MOBILENET_TOP_2
    assert {v.path.split("/")[0] for v in mobilenet.trainable_weights} == MOBILENET_TOP_2
    everything = unfreeze_top(mobilenet, -1)
    assert len(everything) == len(backbone_units(mobilenet))
    bn = [layer for layer in mobilenet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn and not any(layer.trainable for layer in bn)
    assert unfreeze_top(mobilenet, 0) == [] and not mobilenet.trainable_weights


def test_learning_rate_multipliers_shrink_per_block_going_down(vgg):
    rates = learning_rate_multipliers(unfreeze_top(vgg, 3), 0.5)
    # 3 blocks of 3 conv layers, a kernel and a bias each.
    assert len(rates) == 18
    assert rates["block5_conv3/bias"] == 1.0
    assert rates["block4_conv1/kernel"] == 0.5
    assert rates["block3_conv2/kernel"] == 0.25
    assert set(learning_rate_multipliers(unfreeze_top(vgg, 3), 1.0).values()) == {1.0}


def test_attach_head_layers_and_shapes():
    backbone = build_backbone("small_cnn", (16, 16, 3))
    model = attach_head(
        backbone, 4, preprocessing_layers("small_cnn"), pool="flatten", hidden_units=8, dropout=0.3
    )
    assert model.output_shape == (None, 4)
    names = [layer.name for layer in model.layers]
    assert names == [
        "images",
        "preprocess",
        "backbone",
        "head_flatten",
        "head_hidden_dropout",
        "head_dense",
        "head_dropout",
        "head_classifier",
    ]
    # small_cnn on 16x16: 12 -> 6 -> 4 -> 2, 64 filters: 256 flattened features.
    assert model.get_layer("head_dense").kernel.shape == (256, 8)
    probabilities = model(np.zeros((2, 16, 16, 3), "float32")).numpy()
    np.testing.assert_allclose(probabilities.sum(-1), [1.0, 1.0], rtol=1e-6)
    pooled = attach_head(backbone, 3, prefix="p_", name="other")
    assert pooled.get_layer("p_pool").output.shape == (None, 64) and pooled.name == "other"


def test_frozen_batchnorm_keeps_its_statistics_in_training_mode(mobilenet):
    model = attach_head(mobilenet, 3, preprocessing_layers("mobilenet_v2"))
    unfreeze_top(mobilenet, 2)
    bn = mobilenet.get_layer("block_16_project_BN")
    before = bn.moving_mean.numpy().copy()
    images = np.random.default_rng(1).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    model(images, training=True)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    # What protects them: a trainable BN layer updates them even though the backbone is called
    # with training=False, as fit's training=True overrides it for a nested model.
    bn.trainable = True
    model(images, training=True)
    assert not np.array_equal(bn.moving_mean.numpy(), before)
    bn.trainable = False


def test_head_on_a_backbone_saves_and_loads_in_a_fresh_process():
    backbone = build_backbone("small_cnn", (16, 16, 3))
    # The caffe preprocessing (a frozen Dense) and a hidden layer, to cover every layer kind.
    model = attach_head(backbone, 3, preprocessing_layers("vgg16"), hidden_units=4)
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    run_model_saving_test({"transfer_head": (model, images)})


@pytest.mark.parametrize(
    "call, received",
    [
        (lambda b: backbone_units(b, "convs"), "unit='convs'"),
        (lambda b: unfreeze_top(b, -2), "count=-2"),
        (lambda b: learning_rate_multipliers([], 0.0), "decay=0.0"),
        (lambda b: learning_rate_multipliers([], 1.5), "decay=1.5"),
        (lambda b: attach_head(b, 1), "num_classes=1"),
        (lambda b: attach_head(b, 3, pool="max"), "pool='max'"),
        (lambda b: attach_head(b, 3, hidden_units=-1), "hidden_units=-1"),
        (lambda b: attach_head(b, 3, dropout=1.0), "dropout=1.0"),
    ],
)
def test_invalid_arguments(call, received):
    backbone = build_backbone("small_cnn", (16, 16, 3))
    with pytest.raises(ValueError, match=f"Received: {received}"):
        call(backbone)
