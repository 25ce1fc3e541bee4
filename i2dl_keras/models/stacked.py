"""Stacking autoencoders: greedy layer-wise pretraining, then a classifier for fine-tuning.

The slides' recipe (Bengio et al., 2007; Hinton and Salakhutdinov, 2006): train a shallow
autoencoder on the input, freeze it, train a second one on the codes of the first, and so on;
then "run backpropagation on the entire network to fine-tune weights for the supervised task":
because it starts from good weights, its credit assignment is better than from a random start.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from i2dl_keras.layers import _checks
from i2dl_keras.models.autoencoders import get_decoder, get_encoder

__all__ = ["classifier_from_encoder", "greedy_layerwise_pretrain", "stacked_layer_pairs"]

_CODE_BATCH = 4096


def stacked_layer_pairs(
    autoencoder: keras.Model,
) -> list[tuple[keras.layers.Layer, keras.layers.Layer]]:
    """Returns the `(encoder_dense_k, decoder_dense_k)` layer pairs of a dense autoencoder.

    Pair k is the k-th shallow autoencoder of the stack: `encoder_dense_k` encodes the output
    of encoder layer k - 1 (the flattened input for k = 1) and `decoder_dense_k` reconstructs it.

    Args:
        autoencoder: A dense autoencoder from `i2dl_keras.models.autoencoders`
            (`stacked_autoencoder`, `bottleneck_autoencoder`, `sparse_autoencoder`,
            `contractive_autoencoder` or a dense `denoising_autoencoder`).

    Returns:
        The list of pairs, from the input side (k = 1) to the code.

    Raises:
        ValueError: if `autoencoder` is not such a model.

    Example:

    >>> ae = i2dl_keras.models.stacked_autoencoder((784,), units=(256, 64))
    >>> [(e.name, d.name) for e, d in i2dl_keras.models.stacked_layer_pairs(ae)]
    [('encoder_dense_1', 'decoder_dense_1'), ('encoder_dense_2', 'decoder_dense_2')]
    """
    encoder, decoder = get_encoder(autoencoder), get_decoder(autoencoder)
    encoder_layers = {layer.name: layer for layer in encoder.layers}
    decoder_layers = {layer.name: layer for layer in decoder.layers}
    pairs = []
    k = 1
    while f"encoder_dense_{k}" in encoder_layers and f"decoder_dense_{k}" in decoder_layers:
        pairs.append((encoder_layers[f"encoder_dense_{k}"], decoder_layers[f"decoder_dense_{k}"]))
        k += 1
    if not pairs:
        raise ValueError(
            "`autoencoder` must be a dense autoencoder from i2dl_keras.models.autoencoders, "
            "with layers encoder_dense_k / decoder_dense_k. "
            f"Received: autoencoder={autoencoder.name!r}"
        )
    return pairs


def _fresh_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    # An optimizer instance keeps slots for the variables of its first model: each stage gets a
    # new one built from the same description.
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    try:
        return keras.optimizers.get(optimizer)
    except (TypeError, ValueError):
        raise ValueError(
            "`optimizer` must be a Keras optimizer, its name or its config. "
            f"Received: optimizer={optimizer!r}"
        ) from None


def greedy_layerwise_pretrain(
    autoencoder: keras.Model,
    x: Any,
    epochs: int = 1,
    batch_size: int = 32,
    optimizer: Any = "adam",
    loss: Any = "mse",
    shuffle: bool = True,
    callbacks: list[keras.callbacks.Callback] | None = None,
    run_eagerly: bool = False,
    verbose: int = 0,
) -> list[keras.callbacks.History]:
    """Trains a dense autoencoder's layers one at a time, each on the codes of those below.

    Stage k builds the shallow autoencoder `encoder_dense_k -> decoder_dense_k` (sharing the
    layers, hence the weights, of `autoencoder`) and trains it to reconstruct its own input:
    the flattened `x` for k = 1, and for k > 1 the codes of encoder layers `1 .. k-1`, computed
    once with their weights as stage k - 1 left them. Only the two layers of stage k are in the
    stage model, so every other weight stays bit-identical. Each stage gets a fresh copy of
    `optimizer`. Layers outside the pairs take no part: a denoising autoencoder's corruption is
    not applied, while a sparse code layer's activity regularizer and a contractive layer's
    penalty are. Afterwards the whole autoencoder starts from the pretrained weights: fine-tune
    it with `fit`, or its encoder with `classifier_from_encoder`.

    Args:
        autoencoder: A dense autoencoder from `i2dl_keras.models.autoencoders`, typically
            `stacked_autoencoder`; trained in place.
        x: Training inputs, an array of shape `(n, *input_shape)`.
        epochs: Epochs per stage, a positive integer. Defaults to `1`.
        batch_size: Batch size, a positive integer. Defaults to `32`.
        optimizer: A Keras optimizer (copied per stage), its name or its config.
            Defaults to `"adam"`.
        loss: Reconstruction loss for every stage. `"mse"` suits any code activation;
            `"binary_crossentropy"` needs targets in [0, 1], i.e. sigmoid hidden layers.
            Defaults to `"mse"`.
        shuffle: Whether to shuffle each epoch. Defaults to `True`.
        callbacks: Callbacks passed to every stage's `fit` (their `self.model` is the stage
            model); they must reset their state in `on_train_begin`. Defaults to `None`.
        run_eagerly: Compile each stage with `run_eagerly`: slower per step, but no graph to
            trace, which is quicker for a few steps on tiny data and easier to debug.
            Defaults to `False`.
        verbose: Verbosity passed to `fit`. Defaults to `0`.

    Returns:
        The `keras.callbacks.History` of each stage, from the input side to the code.

    Raises:
        ValueError: if `autoencoder` is not a dense autoencoder of this package, `x` does not
            match its input shape, or an argument is malformed.

    Example:

    >>> ae = i2dl_keras.models.stacked_autoencoder((784,), units=(256, 64))
    >>> histories = i2dl_keras.models.greedy_layerwise_pretrain(ae, x_train, epochs=3)
    >>> ae.compile(optimizer="adam", loss="mse")
    >>> ae.fit(x_train, x_train, epochs=3)  # unsupervised fine-tuning of the whole stack
    """
    pairs = stacked_layer_pairs(autoencoder)
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    expected = tuple(autoencoder.inputs[0].shape[1:])
    x = np.asarray(x, dtype="float32")
    if x.ndim < 2 or tuple(x.shape[1:]) != expected:
        raise ValueError(
            f"`x` must have shape (n, {', '.join(map(str, expected))}) to match the "
            f"autoencoder's input. Received: x with shape {x.shape}"
        )
    codes = x.reshape(len(x), -1)
    histories = []
    for k, (encoder_layer, decoder_layer) in enumerate(pairs, start=1):
        stage_input = keras.Input((codes.shape[1],), name=f"stage_{k}_input")
        stage_code = encoder_layer(stage_input)
        stage = keras.Model(stage_input, decoder_layer(stage_code), name=f"pretrain_stage_{k}")
        stage.compile(optimizer=_fresh_optimizer(optimizer), loss=loss, run_eagerly=run_eagerly)
        histories.append(
            stage.fit(
                codes,
                codes,
                epochs=epochs,
                batch_size=batch_size,
                shuffle=shuffle,
                callbacks=callbacks,
                verbose=verbose,
            )
        )
        if k < len(pairs):
            # The next stage's data: this layer's codes, computed once (it is frozen from now
            # on). Calling the layer directly needs no graph trace, unlike `predict`.
            codes = np.concatenate(
                [
                    keras.ops.convert_to_numpy(encoder_layer(codes[i : i + _CODE_BATCH]))
                    for i in range(0, len(codes), _CODE_BATCH)
                ]
            )
    return histories


def classifier_from_encoder(
    autoencoder_or_encoder: keras.Model,
    num_classes: int,
    freeze_encoder: bool = False,
    pool_size: int | None = None,
    dropout: float = 0.0,
    skip_features: bool = False,
    name: str = "encoder_classifier",
) -> keras.Model:
    """Puts a softmax layer on a (pretrained) encoder, for supervised fine-tuning.

    The classifier is `input -> encoder -> [max-pool] -> [flatten] -> [dropout] ->
    Dense(num_classes, softmax)`, with the head named `"classifier_head"`. An encoder with
    several outputs (a U-Net-shaped `conv_autoencoder` with `skip_connections=True` also
    outputs its skip feature maps) is classified from its first output, the code, and with
    `skip_features=True` also from its other feature maps below the input's resolution, each
    max-pooled down to the pooled code's height and width and concatenated with it: the
    shallower maps of a U-Net hold the detail its code need not carry.

    The classifier *shares* the encoder with the autoencoder (the slides' fine-tuning updates
    the pretrained weights in place); clone the autoencoder first with
    `keras.models.clone_model` and `set_weights` to keep an untouched copy. With
    `freeze_encoder=True` the encoder's `trainable` flag is set to `False` (shared, so it also
    freezes the autoencoder's encoder) and only the head trains, a linear probe of the learned
    code; a frozen `BatchNormalization` inside a custom encoder then runs in inference mode, as
    Keras 3 does for any non-trainable BatchNormalization layer.

    Args:
        autoencoder_or_encoder: An autoencoder from `i2dl_keras.models.autoencoders` (its
            `"encoder"` is used) or any single-input encoder model.
        num_classes: Number of classes, an integer >= 2.
        freeze_encoder: Whether to freeze the encoder and train only the head. Sets the
            encoder's `trainable` flag either way. Defaults to `False`.
        pool_size: Window and stride of a max-pooling of a convolutional code before it is
            flattened (`None`: no pooling); pooling shrinks the head and tolerates small shifts,
            which matters when few labels train it. Ignored for a flat code. Defaults to `None`.
        dropout: Dropout rate on the flattened features, in [0, 1). Defaults to `0.0`.
        skip_features: Whether to also classify from the skip feature maps of a multi-output
            encoder (see above); ignored for a single-output encoder. Defaults to `False`.
        name: Name of the model. Defaults to `"encoder_classifier"`.

    Returns:
        An uncompiled `keras.Model` that outputs class probabilities; compile it with
        `sparse_categorical_crossentropy` for integer labels.

    Raises:
        ValueError: if `autoencoder_or_encoder` is not a Keras model, `num_classes` < 2, or
            `pool_size` or `dropout` is malformed.

    Example:

    >>> ae = i2dl_keras.models.stacked_autoencoder((784,), units=(256, 64))
    >>> i2dl_keras.models.greedy_layerwise_pretrain(ae, x_train, epochs=3)
    >>> clf = i2dl_keras.models.classifier_from_encoder(ae, num_classes=10)
    >>> clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    >>> clf.fit(x_train, y_train, epochs=3)
    """
    if not isinstance(autoencoder_or_encoder, keras.Model):
        raise ValueError(
            "`autoencoder_or_encoder` must be a keras.Model. "
            f"Received: autoencoder_or_encoder={autoencoder_or_encoder!r}"
        )
    if not _checks.is_int(num_classes) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if not isinstance(freeze_encoder, bool):
        raise ValueError(
            f"`freeze_encoder` must be True or False. Received: freeze_encoder={freeze_encoder!r}"
        )
    if pool_size is not None:
        pool_size = _checks.positive_int("pool_size", pool_size)
    dropout = _checks.rate("dropout", dropout)
    if not isinstance(skip_features, bool):
        raise ValueError(
            f"`skip_features` must be True or False. Received: skip_features={skip_features!r}"
        )
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")
    try:
        encoder = get_encoder(autoencoder_or_encoder)
    except ValueError:
        encoder = autoencoder_or_encoder
    if len(encoder.inputs) != 1:
        raise ValueError(
            "`autoencoder_or_encoder` must have a single input. "
            f"Received: autoencoder_or_encoder with {len(encoder.inputs)} inputs"
        )
    encoder.trainable = not freeze_encoder
    inputs = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="input")
    features = encoder(inputs)
    skips = []
    if isinstance(features, (list, tuple)):
        features, *skips = features
        # The input itself may be among the skips (a U-Net's full-resolution one): not a feature.
        skips = [s for s in skips if s.shape[1:3] != inputs.shape[1:3]] if skip_features else []
    if len(features.shape) == 4 and pool_size is not None:
        features = keras.layers.MaxPooling2D(pool_size, name="classifier_pool")(features)
    if len(features.shape) > 2:
        height = features.shape[1]
        features = keras.layers.Flatten(name="classifier_flatten")(features)
        pooled = [features]
        for k, skip in enumerate(skips, start=1):
            window = skip.shape[1] // height
            skip = keras.layers.MaxPooling2D(window, name=f"classifier_skip_pool_{k}")(skip)
            pooled.append(keras.layers.Flatten(name=f"classifier_skip_flatten_{k}")(skip))
        if len(pooled) > 1:
            features = keras.layers.Concatenate(name="classifier_concat")(pooled)
    if dropout > 0.0:
        features = keras.layers.Dropout(dropout, name="classifier_dropout")(features)
    outputs = keras.layers.Dense(int(num_classes), activation="softmax", name="classifier_head")(
        features
    )
    return keras.Model(inputs, outputs, name=name)
