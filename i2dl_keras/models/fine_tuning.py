"""Transfer learning on a backbone: a new classifier head, then fine-tuning its top blocks.

The course's recipe: freeze a pretrained backbone and train a new head on it, then unfreeze the
top few blocks and fine-tune them with a small learning rate, optionally smaller still for
lower blocks (`learning_rate_multipliers` for `i2dl_keras.optimizers.LayerwiseAdam`).
BatchNormalization layers are never unfrozen: a frozen BatchNormalization layer runs in
inference mode in Keras 3, so the small target data set never replaces the statistics learned
on the source, whatever `training` flag `fit` passes down.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras

__all__ = ["attach_head", "backbone_units", "learning_rate_multipliers", "unfreeze_top"]

_UNITS = ("blocks", "layers")
_POOLS = ("avg", "flatten")
# The block prefix of the keras.applications layer names: `block_16_` (MobileNetV2),
# `conv5_block3_` (ResNet50), `block6a_` (EfficientNet), `block5_` (VGG16), `expanded_conv_3_`.
_BLOCK = re.compile(r"^(.*?(?:block_?\d+[a-z]?|expanded_conv(?:_\d+)?))(?:_|$)")


def _block_of(layer_name: str) -> str:
    match = _BLOCK.match(layer_name)
    if match:
        return match.group(1)
    return layer_name.rsplit("_", 1)[0] if "_" in layer_name else layer_name


def backbone_units(backbone: keras.Model, unit: str = "blocks") -> list[list[keras.layers.Layer]]:
    """The backbone's learnable layers, grouped into blocks (or one per layer), input first.

    Learnable means holding weights and not being a normalisation layer: BatchNormalization
    stays frozen whatever is unfrozen, and `Normalization` is fixed preprocessing. A block is a
    run of consecutive layers whose names share the application's block prefix (`block_16_` in
    MobileNetV2, `conv5_block3_` in ResNet50, `block6a_` in EfficientNet, `block5_` in VGG16);
    a layer outside any block (e.g. MobileNetV2's last 1x1 convolution `Conv_1`) is a block of
    its own.

    Args:
        backbone: A model built by `build_backbone` (or any flat functional model).
        unit: `"blocks"` or `"layers"`. Defaults to `"blocks"`.

    Returns:
        The units, each a list of layers, from the input to the output.

    Raises:
        ValueError: For another `unit`.

    Example:

    >>> vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    >>> [layer.name for layer in i2dl_keras.models.backbone_units(vgg)[-1]]
    ['block5_conv1', 'block5_conv2', 'block5_conv3']
    """
    if unit not in _UNITS:
        raise ValueError(f"`unit` must be one of {_UNITS}. Received: unit={unit!r}")
    units: list[list[keras.layers.Layer]] = []
    last = None
    for layer in backbone.layers:
        if not layer.weights or isinstance(
            layer, (keras.layers.BatchNormalization, keras.layers.Normalization)
        ):
            continue
        key = _block_of(layer.name) if unit == "blocks" else layer.name
        if units and key == last:
            units[-1].append(layer)
        else:
            units.append([layer])
        last = key
    return units


def unfreeze_top(
    backbone: keras.Model, count: int, unit: str = "blocks"
) -> list[list[keras.layers.Layer]]:
    """Makes only the top `count` units of the backbone trainable, never a normalisation layer.

    Args:
        backbone: The backbone, e.g. `model.get_layer("backbone")` of an `attach_head` model.
        count: Units to unfreeze from the top; `-1` for all, `0` for none (the backbone is
            frozen).
        unit: `"blocks"` or `"layers"` (see `backbone_units`). Defaults to `"blocks"`.

    Returns:
        The unfrozen units, top first (the order `learning_rate_multipliers` expects).

    Raises:
        ValueError: For a `count` below -1 or another `unit`.

    Example:

    >>> vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    >>> chosen = i2dl_keras.models.unfreeze_top(vgg, 1)
    >>> [layer.name for layer in vgg.layers if layer.trainable]
    ['block5_conv1', 'block5_conv2', 'block5_conv3']
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < -1:
        raise ValueError(f"`count` must be -1 (all), 0 or more. Received: count={count!r}")
    units = backbone_units(backbone, unit)
    if count == 0:
        backbone.trainable = False
        return []
    count = len(units) if count < 0 else min(count, len(units))
    chosen = units[len(units) - count :][::-1]
    ids = {id(layer) for group in chosen for layer in group}
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = id(layer) in ids
    return chosen


def learning_rate_multipliers(
    units: Sequence[Sequence[keras.layers.Layer]], decay: float
) -> dict[str, float]:
    """Discriminative rates: `decay ** i` for the variables of the i-th unit from the top.

    Args:
        units: Units top first, as `unfreeze_top` returns them.
        decay: The factor per unit going down, in (0, 1]; 1 gives every unit the same rate.

    Returns:
        Variable path -> factor, for `i2dl_keras.optimizers.LayerwiseAdam(multipliers)`.

    Raises:
        ValueError: For a `decay` outside (0, 1].

    Example:

    >>> vgg = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    >>> rates = i2dl_keras.models.learning_rate_multipliers(
    ...     i2dl_keras.models.unfreeze_top(vgg, 2), 0.5
    ... )
    >>> rates["block5_conv1/kernel"], rates["block4_conv1/kernel"]
    (1.0, 0.5)
    """
    if not 0 < decay <= 1:
        raise ValueError(f"`decay` must be in (0, 1]. Received: decay={decay}")
    return {
        variable.path: float(decay**depth)
        for depth, unit in enumerate(units)
        for layer in unit
        for variable in layer.trainable_weights
    }


def attach_head(
    backbone: keras.Model,
    num_classes: int,
    preprocessing: Sequence[keras.layers.Layer] = (),
    pool: str = "avg",
    hidden_units: int = 0,
    dropout: float = 0.0,
    training: bool | None = False,
    prefix: str = "head_",
    name: str = "classifier",
) -> keras.Model:
    """A classifier: raw pixels -> preprocessing -> backbone -> pooling, dropout, softmax.

    The backbone is called with `training=False` for transfer learning, as the Keras guide
    says; Keras 3 lets the `training=True` of `fit` override that flag for a nested functional
    model, so what keeps BatchNormalization in inference mode is that it stays frozen (see
    `unfreeze_top`). Pass `training=None` to train the backbone as an ordinary network.

    Args:
        backbone: The feature extractor, e.g. from `build_backbone`; it stays a nested layer.
        num_classes: Number of classes, at least 2.
        preprocessing: Layers applied to the inputs first, e.g. `preprocessing_layers(name)`.
            Defaults to `()`.
        pool: `"avg"` (global average pooling, any backbone) or `"flatten"` (keeps where the
            features are; for small inputs such as digits). Defaults to `"avg"`.
        hidden_units: Units of a hidden ReLU layer before the classifier (0: none). Defaults to
            `0`.
        dropout: Dropout rate before the classifier (and before the hidden layer). Defaults to
            `0.0`.
        training: The `training` flag the backbone is called with. Defaults to `False`.
        prefix: Prefix of the head's layer names (`head_classifier`, ...). Defaults to
            `"head_"`.
        name: The model's name. Defaults to `"classifier"`.

    Returns:
        An uncompiled `keras.Model` with float32 softmax outputs `(batch, num_classes)`.

    Raises:
        ValueError: For an argument out of range.

    Example:

    >>> backbone = i2dl_keras.models.build_backbone("small_cnn", (28, 28, 3))
    >>> model = i2dl_keras.models.attach_head(backbone, 5)
    >>> model.output_shape
    (None, 5)
    """
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes}")
    if pool not in _POOLS:
        raise ValueError(f"`pool` must be one of {_POOLS}. Received: pool={pool!r}")
    if hidden_units < 0:
        raise ValueError(f"`hidden_units` must be 0 or more. Received: hidden_units={hidden_units}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    inputs = keras.Input(backbone.input_shape[1:], name="images")
    x = inputs
    for layer in preprocessing:
        x = layer(x)
    x = backbone(x, training=training)
    if pool == "flatten":
        x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    if hidden_units:
        x = keras.layers.Dropout(dropout, name=f"{prefix}hidden_dropout")(x)
        x = keras.layers.Dense(hidden_units, activation="relu", name=f"{prefix}dense")(x)
    x = keras.layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=f"{prefix}classifier"
    )(x)
    return keras.Model(inputs, outputs, name=name)
