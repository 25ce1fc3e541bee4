"""Semantic segmentation: a class for every pixel, with a fully convolutional network.

Data: `--data oxford_iiit_pet` (TFDS pet, background and border trimaps, resized to 128x128 by
default since its photos differ in size), `--data PATH` to a folder of `image/` + `label/` pairs
(such as ../shared/data/membrane: masks are 8-bit PNGs whose distinct values become the
classes, named by those values unless `--class-names` renames them), or `--data synthetic`
(generated shapes with exact masks, for smoke tests). Models: `--model unet` (the default,
`i2dl_keras.models.unet`), `--model fcn` (the course's FCN-8s, `i2dl_keras.models.fcn`), or
`--encoder mobilenet_v2` (`i2dl_keras.models.mobilenet_v2_unet`: a U-Net decoder on a
MobileNetV2 encoder, with `--weights imagenet|none|FILE`).

Training takes random 256x256 crops (`--crop-size`) of images at least that large (smaller
ones train whole), flipped and rotated together with their masks by Keras' image
preprocessing layers (masks by nearest neighbour, so no new class values appear), in batches
of 4, with Adam on a cosine decay from 2e-3 and pixel-wise cross-entropy plus Dice (`--loss`).
By default it runs for about 600 optimizer steps (at least 10 epochs) and never stops early:
the validation split of a small set has too few images to stop on.
Prediction pads any image to a multiple of the network's stride (mirroring its border) and
crops the result back; images larger than `--tile-size` are predicted in overlapping tiles of
which only the centres are kept (the U-Net paper's overlap-tile strategy). `--tta` averages
the probabilities of each image's 8 flips and transpositions (test-time augmentation).

Metric: intersection over union per class and its mean (`evaluate --json` prints `mean_iou`,
`iou_per_class` and `pixel_accuracy`). Expect a membrane IoU of about 0.69 and a mean IoU of
about 0.79 on the held-out membrane slices with the defaults (`benchmarks/segmentation.py`).

Input contract: images as a decoder gives them (grey or colour, 0-255, any dtype); the model
converts and scales them and returns per-pixel class probabilities (last axis: the classes).
`model.predict` takes sizes the stride divides; `Run.predict` and the SavedModel take any size.

```python
from i2dl_keras.apps import segmentation

run = segmentation.train(data="../shared/data/membrane", channels=1)
run.predict(["slice.png"])[0]["mask"]  # [H, W] class ids; run.class_names names them
```
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image

from i2dl_keras import data as i2dl_data
from i2dl_keras import dense_prediction
from i2dl_keras.apps import base, loading, plots, predictions, settings
from i2dl_keras.data import DataError
from i2dl_keras.layers import ClassNames, ImagePreprocessing
from i2dl_keras.losses.dice import Dice
from i2dl_keras.models import (
    fcn,
    fetch_imagenet_weights,
    imagenet_weights_file,
    mobilenet_v2_unet,
    unet,
)

NAME = "segmentation"
TASK = "segmentation"
TUNING_OBJECTIVE = kt.Objective("val_mean_iou", direction="max")
PREDICT_INPUT_HELP = (
    "image files (PNG, JPEG, GIF, BMP, WebP, TIFF), or folders of them; masks and overlays go "
    "to a new folder OUTPUT/segmentation/predictions-TIMESTAMP"
)
# Settings fixed by the trained model: `evaluate` does not offer them as flags.
MODEL_FIELDS = (
    "encoder",
    "weights",
    "encoder_alpha",
    "depth",
    "width",
    "upsampling",
    "batch_norm",
    "dropout",
    "channels",
    "num_classes",
    "class_names",
)
# TFDS images differ in size; they are resized to this square unless --image-size says otherwise.
TFDS_IMAGE_SIZE = 128
# `--epochs none`: as many epochs as about AUTO_STEPS optimizer steps take (many for a set of a
# few dozen images), and at least AUTO_MIN_EPOCHS passes over a large set.
AUTO_STEPS = 600
AUTO_MIN_EPOCHS = 10
ENCODER_STRIDE = 32
# Momentum of the batch-norm statistics (PyTorch's default). Keras' 0.99 takes thousands of
# steps to forget the initial statistics, more than a small segmentation set gives; inference
# would then see wrong ones.
BATCH_NORM_MOMENTUM = 0.9
# The encoder's ImageNet weights: Keras' MobileNetV2 file for 224x224 inputs (without the top).
IMAGENET_SIZE = 224
# Class colours of figures and overlays (RGB).
PALETTE = np.array(
    [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [255, 225, 25],
        [145, 30, 180],
        [70, 240, 240],
        [245, 130, 48],
        [240, 50, 230],
    ],
    dtype=np.uint8,
)


@dataclasses.dataclass
class Config(settings.ClassesConfig):
    """Settings of the segmenter."""

    data: str = settings.option(
        "oxford_iiit_pet",
        "data source: oxford_iiit_pet (TFDS), synthetic, or a folder of image/ + label/ pairs",
    )
    epochs: int | None = settings.option(
        None,
        f"training epochs; none: enough for about {AUTO_STEPS} optimizer steps, at least "
        f"{AUTO_MIN_EPOCHS}, counted from the training split (the run's config.json records the "
        "number)",
    )
    batch_size: int = settings.option(4, "images (or crops) per batch")
    learning_rate: float = settings.option(2e-3, "peak learning rate (cosine decay to 0)")
    patience: int | None = settings.option(
        None,
        "epochs without validation improvement before stopping early; none: never (a few "
        "validation images are too noisy to stop on); the best epoch's weights are restored",
    )
    model: str = settings.option("unet", "architecture", choices=("unet", "fcn"))
    encoder: str = settings.option(
        "none",
        "pretrained keras.applications encoder under a U-Net decoder (replaces --model)",
        choices=("none", "mobilenet_v2"),
    )
    weights: str = settings.option(
        "imagenet",
        "encoder weights: imagenet (from $KERAS_HOME/models, ~/.keras/models by default, else "
        "downloaded), none, or a FILE",
    )
    encoder_alpha: float = settings.option(
        1.0, "MobileNetV2 width multiplier (imagenet: 0.35, 0.5, 0.75, 1.0, 1.3 or 1.4)"
    )
    depth: int = settings.option(
        4, "2x2 poolings of the encoder: total stride 2**depth (fcn: >= 3)"
    )
    width: int = settings.option(
        16,
        "filters of the first level, doubling per level (the U-Net's full-resolution level has "
        "half as many)",
    )
    upsampling: str = settings.option(
        "transposed", "learned transposed convolution or bilinear", ("transposed", "bilinear")
    )
    batch_norm: bool = settings.option(True, "batch normalization in the U-Net's convolutions")
    dropout: float = settings.option(0.0, "dropout at the bottom (unet) or in the head (fcn)")
    loss: str = settings.option(
        "ce+dice",
        "pixel-wise cross-entropy, Dice, or their sum",
        choices=("ce", "dice", "ce+dice"),
    )
    class_weights: str = settings.option(
        "none",
        "cross-entropy class weights: none, balanced (per batch), or one per class as 3,1",
    )
    image_size: int | None = settings.option(
        None,
        f"resize images and masks to this square when loading (default: keep; TFDS: "
        f"{TFDS_IMAGE_SIZE}); a multiple of the stride",
    )
    channels: int = settings.option(
        3, "image channels the model takes (images are converted)", choices=(1, 3)
    )
    crop_size: int = settings.option(
        256,
        "train on random square crops of this size, one place per image, where the images are "
        "at least that large (smaller ones train whole, with a note); 0: whole images; a "
        "multiple of the stride",
    )
    augment: bool = settings.option(
        True, "random flips and small rotations of training images and masks together"
    )
    rotation: float = settings.option(10.0, "largest random rotation in degrees (with --augment)")
    tile_size: int = settings.option(
        512, "predict images larger than this in overlapping tiles of this size (0: never)"
    )
    tile_overlap: int = settings.option(
        192,
        "overlap of neighbouring tiles, whose centres are kept: at least twice the receptive-field "
        "radius (94 for a depth-4 U-Net) makes tiles exact",
    )
    tta: bool = settings.option(
        False,
        "test-time augmentation: average the probabilities of each image's 8 flips and "
        "transpositions when evaluating, predicting and serving (8 passes per image)",
    )
    train_examples: int = settings.option(
        0, "training images per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def __post_init__(self) -> None:
        # `--epochs none` and `--patience none` take their numbers once the data has set
        # `train_examples` (`base.train` does so before building the model), so that the run's
        # config records what ran.
        if self.train_examples > 0:
            if self.epochs is None:
                self.epochs = auto_epochs(self.train_examples, self.batch_size)
            if self.patience is None:
                self.patience = self.epochs

    def validate(self) -> None:
        # `None` (the default) is a valid --epochs and --patience here; the base checks numbers.
        numbers = {
            "epochs": 1 if self.epochs is None else self.epochs,
            "patience": 0 if self.patience is None else self.patience,
        }
        settings.ClassesConfig.validate(dataclasses.replace(self, **numbers))
        # Not `model`: `evaluate --model PATH` hands the run's path over in that field.
        checks = (
            ("encoder", ("none", "mobilenet_v2")),
            ("upsampling", ("transposed", "bilinear")),
            ("loss", ("ce", "dice", "ce+dice")),
            ("channels", (1, 3)),
        )
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise settings.UsageError(
                    f"--{_flag(name)} must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        if self.depth < 1:
            raise settings.UsageError(f"--depth must be at least 1, got {self.depth}")
        if self.model == "fcn" and self.encoder == "none" and self.depth < 3:
            raise settings.UsageError(
                f"--model fcn fuses the last three pools (FCN-8s): --depth must be at least 3, "
                f"got {self.depth}"
            )
        if self.width < 1:
            raise settings.UsageError(f"--width must be at least 1, got {self.width}")
        if not 0 <= self.dropout < 1:
            raise settings.UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.rotation <= 45:
            raise settings.UsageError(
                f"--rotation must be between 0 and 45 degrees, got {self.rotation}"
            )
        parse_class_weights(self.class_weights)
        stride = model_stride(self)
        for name in ("crop_size", "tile_size", "tile_overlap"):
            value = getattr(self, name)
            if value < 0 or value % stride:
                raise settings.UsageError(
                    f"--{_flag(name)} must be 0 or a positive multiple of {stride} (the stride of "
                    f"this network), got {value}"
                )
        if self.tile_size and self.tile_overlap >= self.tile_size:
            raise settings.UsageError(
                f"--tile-overlap ({self.tile_overlap}) must be smaller than --tile-size "
                f"({self.tile_size})"
            )
        if self.image_size is not None and (self.image_size < 0 or self.image_size % stride):
            raise settings.UsageError(
                f"--image-size must be a positive multiple of {stride} (the stride of this "
                f"network), 0 to keep the stored size, or none, got {self.image_size}"
            )
        if self.encoder != "none":
            if self.channels != 3:
                raise settings.UsageError(
                    f"--encoder {self.encoder} takes RGB images: --channels must be 3, "
                    f"got {self.channels}"
                )
            if self.weights == "imagenet":
                try:
                    imagenet_weights_file(self.encoder, IMAGENET_SIZE, self.encoder_alpha)
                except ValueError as err:
                    raise settings.UsageError(f"--weights imagenet: {err}") from None
            if self.weights not in ("imagenet", "none") and not Path(self.weights).is_file():
                raise settings.UsageError(
                    f"--weights {self.weights}: no such file; pass imagenet, none, or the path "
                    "of a MobileNetV2 (include_top=False) weights file"
                )


def _flag(name: str) -> str:
    return name.replace("_", "-")


def auto_epochs(train_examples: int, batch_size: int) -> int:
    """The epochs of `--epochs none`: about `AUTO_STEPS` optimizer steps, at least
    `AUTO_MIN_EPOCHS`."""
    steps_per_epoch = max(1, -(-train_examples // batch_size))
    return max(AUTO_MIN_EPOCHS, -(-AUTO_STEPS // steps_per_epoch))


def takes_crops(config: Config, height: int | None, width: int | None) -> bool:
    """Whether training takes `--crop-size` crops of images of this size (`None`: unknown)."""
    size = config.crop_size
    if not size:
        return False
    return height is None or width is None or (height >= size and width >= size)


def model_stride(config: Config) -> int:
    """The total stride: image sizes the network takes whole are multiples of it."""
    return ENCODER_STRIDE if config.encoder != "none" else 2**config.depth


def parse_class_weights(text: str) -> str | list[float] | None:
    """`none` -> None, `balanced` -> "balanced", `3,1` -> [3.0, 1.0]."""
    lowered = text.strip().lower()
    if lowered in ("", "none"):
        return None
    if lowered == "balanced":
        return "balanced"
    try:
        weights = [float(part) for part in lowered.split(",")]
    except ValueError:
        weights = []
    if not weights or not all(math.isfinite(w) and w >= 0 for w in weights):
        raise settings.UsageError(
            f"--class-weights must be none, balanced, or non-negative numbers separated by commas "
            f"(one per class, e.g. 3,1), got {text!r}"
        )
    return weights


def effective_image_size(config: Config) -> int | None:
    """The square size images are resized to at loading and prediction, or None to keep them."""
    if config.image_size is not None:
        return config.image_size or None
    spec = config.data.strip().lower()
    if spec.startswith("tfds:") or spec in i2dl_data.TFDS_NAMES:
        return TFDS_IMAGE_SIZE
    return None


# --------------------------------------------------------------------------- data


def joint_augment(config: Config) -> Callable | None:
    """The per-batch training augmentation of `--crop-size`, `--augment` and `--rotation`.

    Keras' image preprocessing layers transform a dict of `"images"` and
    `"segmentation_masks"` with one random draw for both: images bilinearly, masks by nearest
    neighbour, so a mask only ever holds values it held before. Every image draws its own
    rotation (mirrored borders where it reaches outside, on the whole image first so that
    crops rarely see mirrored corners), crop and flips: `keras.layers.RandomCrop` draws one
    place per call, so it is called per image, and `RandomFlip("horizontal_and_vertical")`
    draws one coin for both axes, so each axis has its own layer. (Where an image is larger
    than the crop in one direction only, `RandomCrop` centres the crop.)

    Returns:
        A map `(uint8 [B, H, W, C], uint8 [B, H, W]) -> (float32 [B, h, w, C], uint8 [B, h,
        w])` for `make_pipeline`, or `None` when there is nothing to do.
    """
    if not (config.crop_size or config.augment):
        return None
    # float32 whatever the dtype policy: masks travel as floats and must stay exact.
    kwargs = {"dtype": "float32"}
    rotate = None
    if config.augment and config.rotation:
        rotate = keras.layers.RandomRotation(
            config.rotation / 360.0, fill_mode="reflect", seed=config.seed, **kwargs
        )
    size = config.crop_size
    crop = keras.layers.RandomCrop(size, size, seed=config.seed + 1, **kwargs) if size else None
    flips = []
    if config.augment:
        flips = [
            keras.layers.RandomFlip(mode, seed=config.seed + i, **kwargs)
            for i, mode in ((2, "horizontal"), (3, "vertical"))
        ]

    def crop_each(data):
        if None in data["images"].shape[1:3]:
            raise settings.UsageError(_sizes_differ(config))
        channels = data["images"].shape[-1]

        def one(pair):
            out = crop({"images": pair[0], "segmentation_masks": pair[1]})
            return out["images"], out["segmentation_masks"]

        images, masks = tf.map_fn(
            one,
            (data["images"], data["segmentation_masks"]),
            fn_output_signature=(
                tf.TensorSpec([size, size, channels], tf.float32),
                tf.TensorSpec([size, size, 1], tf.float32),
            ),
        )
        return {"images": images, "segmentation_masks": masks}

    def augment(images, masks):
        data = {
            "images": tf.cast(images, tf.float32),
            "segmentation_masks": tf.cast(masks, tf.float32)[..., None],
        }
        if rotate is not None:
            data = rotate(data)
        if crop is not None and takes_crops(config, *images.shape[1:3]):
            data = crop_each(data)
        for flip in flips:
            data = flip(data)
        return data["images"], tf.cast(tf.round(data["segmentation_masks"][..., 0]), tf.uint8)

    return augment


def make_datasets(config: Config, purpose: str) -> loading.Datasets:
    size = effective_image_size(config)
    datasets = loading.load_datasets(
        config,
        TASK,
        purpose,
        augment=joint_augment(config) if purpose == "train" else None,
        image_size=(size, size) if size else None,
        channels=config.channels,
    )
    _check_sizes(config, datasets)
    height, width = datasets.test.element_spec[0].shape[1:3]
    if datasets.train is not None and config.crop_size and not takes_crops(config, height, width):
        datasets.notes.append(
            f"the images ({height}x{width}) are smaller than --crop-size {config.crop_size}: "
            "training on whole images"
        )
    return datasets


def _sizes_differ(config: Config) -> str:
    return (
        f"--data {config.data}: the images differ in size, so they cannot be batched; pass "
        f"--image-size N (a multiple of {model_stride(config)}) to resize them when loading"
    )


def _check_sizes(config: Config, datasets: loading.Datasets) -> None:
    """Fails early, naming the flag to change, where batches could not be formed or trained."""
    height, width = datasets.test.element_spec[0].shape[1:3]
    if height is None or width is None:
        raise settings.UsageError(_sizes_differ(config))
    stride = model_stride(config)
    if datasets.train is not None and (height % stride or width % stride):
        raise settings.UsageError(
            f"--data {config.data}: images of {height}x{width} are not multiples of {stride}, the "
            f"stride of this network, so it cannot train on them whole; pass --image-size N (a "
            f"multiple of {stride}) to resize them when loading"
        )


# --------------------------------------------------------------------------- model


def build_model(config: Config) -> keras.Model:
    """The segmenter: raw pixels in, per-pixel class probabilities out, class names inside.

    `ImagePreprocessing` converts the pixels to `config.channels` and scales them (to [0, 1],
    or to [-1, 1] for the MobileNetV2 encoder) at their own size; heights and widths must be
    multiples of `model_stride(config)` (prediction pads to them).
    """
    inputs = keras.Input((None, None, None), name="pixels")
    if config.encoder == "mobilenet_v2":
        # MobileNetV2 takes pixels in [-1, 1].
        x = ImagePreprocessing(
            None, channels=3, scale=1.0 / 127.5, offset=-1.0, name="preprocessing"
        )(inputs)
        weights = encoder_weights_file(config)
        try:
            core = mobilenet_v2_unet(
                (None, None, 3),
                config.num_classes,
                alpha=config.encoder_alpha,
                encoder_weights=weights,
                decoder_filters=config.width,
                batch_norm_momentum=BATCH_NORM_MOMENTUM,
            )
        except ValueError as err:
            if weights is None:
                raise
            raise settings.UsageError(f"--weights {config.weights}: {err}") from None
    else:
        x = ImagePreprocessing(None, channels=config.channels, name="preprocessing")(inputs)
        shape = (None, None, config.channels)
        if config.model == "fcn":
            core = fcn(
                shape,
                config.num_classes,
                base_filters=config.width,
                convs_per_stage=tuple(2 if i < 2 else 3 for i in range(config.depth)),
                head_filters=16 * config.width,
                upsampling=config.upsampling,
                skips="fcn8s",
                dropout=config.dropout,
            )
        else:
            core = unet(
                shape,
                config.num_classes,
                depth=config.depth,
                base_filters=config.width,
                # The full-resolution level costs the most per parameter: half width there
                # trains faster for about the same accuracy.
                first_level_filters=max(1, config.width // 2),
                upsampling=config.upsampling,
                use_batch_norm=config.batch_norm,
                batch_norm_momentum=BATCH_NORM_MOMENTUM,
                dropout=config.dropout,
            )
    outputs = ClassNames(settings.class_names_of(config), name="class_names")(core(x))
    model = keras.Model(inputs, outputs, name=f"{core.name}_segmenter")
    compile_segmenter(model, config)
    return model


def compile_segmenter(model: keras.Model, config: Config) -> None:
    """Compiles with Adam on a cosine decay over the planned steps, the `--loss`, pixel accuracy
    and mean IoU."""
    steps_per_epoch = -(-config.train_examples // config.batch_size)
    epochs = config.epochs
    if epochs is None:  # no data seen yet: the length `--epochs none` gives an empty set
        epochs = auto_epochs(config.train_examples, config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=epochs * max(1, steps_per_epoch)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=make_loss(config),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
            keras.metrics.MeanIoU(config.num_classes, sparse_y_pred=False, name="mean_iou"),
        ],
    )


def make_loss(config: Config) -> Dice:
    """The `--loss` and `--class-weights` settings as one `Dice` loss object."""
    weights = parse_class_weights(config.class_weights)
    if isinstance(weights, list) and len(weights) != config.num_classes:
        raise settings.UsageError(
            f"--class-weights {config.class_weights}: {len(weights)} weights for "
            f"{config.num_classes} classes; give one per class"
        )
    if config.loss == "dice":
        if weights is not None:
            raise settings.UsageError(
                "--class-weights apply to the cross-entropy: use --loss ce or ce+dice (Dice "
                "already weighs every class equally)"
            )
        return Dice()
    return Dice(
        dice_weight=1.0 if config.loss == "ce+dice" else 0.0,
        crossentropy_weight=1.0,
        class_weights=weights,
    )


def encoder_weights_file(config: Config) -> Path | str | None:
    """The encoder's weights file for `--weights`, or None for random initial weights.

    `imagenet` is Keras' MobileNetV2 file without the classifier, from the Keras cache
    (`$KERAS_HOME/models`, ~/.keras/models by default) or downloaded there by
    `i2dl_keras.models.fetch_imagenet_weights`, which fails at once when offline.

    Raises:
        settings.UsageError: if the file is neither cached nor downloadable; one line naming the
            file to place and where.
    """
    if config.weights == "none":
        return None
    if config.weights != "imagenet":
        return config.weights
    try:
        return fetch_imagenet_weights(config.encoder, IMAGENET_SIZE, config.encoder_alpha)
    except DataError as err:
        raise settings.UsageError(
            f"--weights imagenet: {err}; or pass --weights FILE, or train the encoder from "
            "scratch with --weights none"
        ) from None


class HyperModel(settings.ConfigHyperModel):
    """Searches the width, learning rate and loss of the segmenter."""

    build_model = staticmethod(build_model)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        return dataclasses.replace(
            self.config,
            width=hp.Choice("width", [8, 16, 32]),
            learning_rate=hp.Float("learning_rate", 3e-4, 3e-3, sampling="log"),
            loss=hp.Choice("loss", ["ce", "ce+dice"]),
        )


# --------------------------------------------------------------------------- prediction


def _whole(model: keras.Model, pixels: tf.Tensor, config: Config) -> tf.Tensor:
    """Probabilities `[B, H, W, K]` of any size: pad to the stride, predict, crop back."""
    height, width = tf.shape(pixels)[1], tf.shape(pixels)[2]
    padded = dense_prediction.pad_to_multiple(pixels, model_stride(config))
    probs = dense_prediction.predict_views(model, padded, config.tta)
    return probs[:, :height, :width]


def probabilities_graph(model: keras.Model, pixels: tf.Tensor, config: Config) -> tf.Tensor:
    """Per-pixel class probabilities of float pixels `[B, h, w, C]`, at their own size.

    With an image size in the config, images are resized to it (as in training) and the
    probabilities resized back; otherwise the network runs at the images' own resolution.
    """
    size = effective_image_size(config)
    if size is None:
        return _whole(model, pixels, config)
    height, width = tf.shape(pixels)[1], tf.shape(pixels)[2]
    resized = tf.image.resize(pixels, [size, size], antialias=True)
    probs = _whole(model, resized, config)
    return tf.image.resize(probs, [height, width])


def predict_probabilities(
    model: keras.Model, pixels, config: Config, batch_size: int | None = None
) -> np.ndarray:
    """Probabilities `[B, H, W, K]` of float pixels of any size; large images in `--tile-size`
    tiles overlapping by `--tile-overlap` (`i2dl_keras.dense_prediction.predict_tiled`)."""
    pixels = tf.cast(pixels, tf.float32)
    if effective_image_size(config) is not None:
        return probabilities_graph(model, pixels, config).numpy()
    return dense_prediction.predict_tiled(
        model,
        pixels,
        model_stride(config),
        tile_size=config.tile_size,
        tile_overlap=config.tile_overlap,
        tta=config.tta,
        batch_size=batch_size or config.batch_size,
    )


# --------------------------------------------------------------------------- metrics


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts `[K, K]` of pixels with true class `i` (row) and predicted class `j` (column)."""
    y_true = np.asarray(y_true, np.int64).ravel()
    y_pred = np.asarray(y_pred, np.int64).ravel()
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def metrics_from_confusion(matrix: np.ndarray) -> dict:
    """IoU per class `tp / (tp + fp + fn)`, their mean, and pixel accuracy.

    A class that is neither in the truth nor predicted has no IoU (`None`) and is left out of
    the mean, as `keras.metrics.MeanIoU` does.
    """
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
    defined = [v for v in iou if v is not None]
    return {
        "mean_iou": float(np.mean(defined)) if defined else 0.0,
        "iou_per_class": iou,
        "pixel_accuracy": float(tp.sum() / max(matrix.sum(), 1.0)),
    }


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    k = config.num_classes
    matrix = np.zeros((k, k), np.int64)
    for pixels, masks in dataset:
        predicted = predict_probabilities(model, pixels, config).argmax(-1)
        matrix += confusion_matrix(masks.numpy(), predicted, k)
    return metrics_from_confusion(matrix)


# --------------------------------------------------------------------------- pictures


def colour_masks(masks: np.ndarray) -> np.ndarray:
    """Class ids `[..., H, W]` as RGB pictures `[..., H, W, 3]`."""
    return PALETTE[np.asarray(masks) % len(PALETTE)]


def mask_values(names: Sequence[str]) -> list[int]:
    """The PNG value of each class, in class-id order, for written masks.

    Classes read from mask files are named by their mask values (e.g. 0 and 255 for the
    membrane masks), and masks are written in those values; classes with other names (from
    the data, or renamed with `--class-names`) get values spread over 0..255.
    """
    try:
        values = [int(name) for name in names]
    except ValueError:
        values = []
    if values and all(0 <= v <= 255 for v in values) and len(set(values)) == len(values):
        return values
    k = max(len(names) - 1, 1)
    return [round(i * 255 / k) for i in range(len(names))]


def write_report(
    run_dir: Path, model: keras.Model, datasets: loading.Datasets, config, result: base.FitResult
) -> dict:
    """Six test images beside their true and predicted masks."""
    images, truths, preds = [], [], []
    for pixels, masks in datasets.test:
        probs = predict_probabilities(model, pixels, config)
        images.extend(pixels.numpy().astype(np.uint8))
        truths.extend(masks.numpy())
        preds.extend(probs.argmax(-1))
        if len(images) >= 6:
            break
    pictures, captions = [], []
    for image, truth, pred in list(zip(images, truths, preds))[:6]:
        iou = metrics_from_confusion(confusion_matrix(truth, pred, config.num_classes))
        pictures += [image, colour_masks(truth), colour_masks(pred)]
        captions += ["image", "true mask", f"predicted (mean IoU {iou['mean_iou']:.2f})"]
    legend = ", ".join(
        f"{name}: {'/'.join(str(c) for c in PALETTE[i % len(PALETTE)])}"
        for i, name in enumerate(settings.class_names_of(config))
    )
    figure = plots.image_grid(
        pictures,
        captions,
        run_dir / "test_predictions.png",
        title=f"test images, true and predicted masks (colours RGB {legend})",
        columns=3,
    )
    return {"test_predictions": figure}


def overlay_figure(image: np.ndarray, mask: np.ndarray, names: Sequence[str]) -> Figure:
    """The image beside the image with the predicted classes laid over it, with a legend.

    `image` is `[H, W, C]` on the 0-255 scale (grey, RGB or RGBA), `mask` `[H, W]` class ids.
    """
    from matplotlib.patches import Patch

    pixels = np.clip(np.asarray(image, np.float32), 0, 255)
    rgb = np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels[..., :3]
    blended = 0.55 * rgb + 0.45 * colour_masks(mask)
    fig = Figure(figsize=(9, 4.8))
    axes = fig.subplots(1, 2)
    for ax, picture, title in zip(axes, (rgb, blended), ("image", "predicted classes")):
        ax.imshow(picture.astype(np.uint8))
        ax.set_title(title)
        ax.axis("off")
    handles = [
        Patch(color=PALETTE[i % len(PALETTE)] / 255.0, label=name) for i, name in enumerate(names)
    ]
    axes[1].legend(handles=handles, loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def decode(encoded: tf.Tensor, channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF bytes -> float32 pixels `[H, W, channels]` in [0, 255]."""
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return tf.cast(image, tf.float32)


def predict_inputs(run: base.Run, inputs: Any, batch_size: int) -> list[dict]:
    """`Run.predict`: one `{input, mask, class_names}` per image, the mask at the image's size.

    `inputs` are image paths, folders, arrays or PIL images (`i2dl_keras.data.read_images`);
    `mask` holds class ids `[H, W]` (uint8, or int32 beyond 256 classes) that index
    `class_names`. Images of one shape are predicted together, `batch_size` at a time; each is
    padded to the stride (or resized to `--image-size`), tiled beyond `--tile-size`, and
    averaged over its 8 flips with `--tta`, as in `evaluate`.
    """
    if batch_size < 1:
        raise settings.UsageError(f"batch_size must be at least 1, got {batch_size}")
    found = i2dl_data.read_images(inputs)
    names = run.class_names
    dtype = np.uint8 if len(names) <= 256 else np.int32
    groups: dict[tuple, list[int]] = {}
    for i, (_, pixels) in enumerate(found):
        groups.setdefault(pixels.shape, []).append(i)
    masks: list = [None] * len(found)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([found[i][1] for i in chunk])
            probs = predict_probabilities(run.model, batch, run.config, batch_size)
            for i, p in zip(chunk, probs):
                masks[i] = p.argmax(-1).astype(dtype)
    return [
        {"input": name, "mask": mask, "class_names": list(names)}
        for (name, _), mask in zip(found, masks)
    ]


def describe_predictions(run: base.Run, results: Sequence[dict]) -> list[str]:
    """Writes each mask (and overlay) as PNGs into a new folder; one line per input.

    The folder is `OUTPUT_DIR/segmentation/predictions-TIMESTAMP` (made new, never reused), so
    no earlier file is ever overwritten. Masks hold each class's `mask_values`; an overlay is
    drawn where the input is an image file. Each line reads `input<TAB>mask PNG<TAB>overlay
    PNG (or -)<TAB>share of each class`.
    """
    if not results:
        return []
    folder = predictions.fresh_folder(Path(run.config.output_dir) / NAME, "predictions")
    lines = []
    stems = predictions.output_stems([r["input"] for r in results])
    for result, unique in zip(results, stems):
        name, mask, names = result["input"], result["mask"], result["class_names"]
        source = Path(name)
        values = np.array(mask_values(names), np.uint8)
        mask_file = folder / f"{unique}_mask.png"
        with open(mask_file, "xb") as f:
            Image.fromarray(values[mask]).save(f, format="PNG")
        overlay = "-"
        if source.is_file():
            pixels = i2dl_data.read_images(str(source))[0][1]
            overlay_file = folder / f"{unique}_overlay.png"
            with open(overlay_file, "xb") as f:
                overlay_figure(pixels, mask, names).savefig(f, format="png", dpi=100)
            overlay = str(overlay_file)
        shares = np.bincount(mask.ravel(), minlength=len(names)) / mask.size
        summary = ", ".join(f"{label} {share:.1%}" for label, share in zip(names, shares))
        lines.append(f"{name}\t{mask_file}\t{overlay}\t{summary}")
    return lines


# --------------------------------------------------------------------------- serving


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    channels = config.channels

    def from_pixels(pixels):
        probabilities = probabilities_graph(model, pixels, config)
        return {
            "masks": tf.argmax(probabilities, axis=-1, output_type=tf.int32),
            "probabilities": probabilities,
        }

    def from_bytes(image_bytes):
        # Images of different sizes share one batch: each is segmented at its own size and its
        # mask padded with -1 to the largest; `heights` and `widths` say where each one ends.
        sizes = tf.map_fn(
            lambda b: tf.shape(decode(b, channels))[:2],
            image_bytes,
            fn_output_signature=tf.TensorSpec([2], tf.int32),
        )
        max_h, max_w = tf.reduce_max(sizes[:, 0]), tf.reduce_max(sizes[:, 1])

        def one(encoded):
            pixels = decode(encoded, channels)[None]
            mask = tf.argmax(probabilities_graph(model, pixels, config)[0], -1, tf.int32)
            h, w = tf.shape(mask)[0], tf.shape(mask)[1]
            return tf.pad(mask, [[0, max_h - h], [0, max_w - w]], constant_values=-1)

        masks = tf.map_fn(
            one, image_bytes, fn_output_signature=tf.TensorSpec([None, None], tf.int32)
        )
        return {"masks": masks, "heights": sizes[:, 0], "widths": sizes[:, 1]}

    return {
        "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "serve_pixels": (
            from_pixels,
            [tf.TensorSpec([None, None, None, channels], tf.float32, name="pixels")],
        ),
    }


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(config.seed)
    stride = model_stride(config)
    # Two sizes, neither a multiple of the stride: the bytes signature pads, crops and pads the
    # smaller mask with -1.
    shapes = [(stride + 3, stride + 5), (2 * stride + 1, stride - 1 if stride > 1 else 3)]
    images = [rng.integers(0, 256, (h, w, config.channels), dtype=np.uint8) for h, w in shapes]
    encoded = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    pixels = rng.uniform(0, 255, (2, stride + 2, 2 * stride - 3, config.channels))
    return {
        "serving_default": {"image_bytes": encoded},
        "serve_pixels": {"pixels": pixels.astype(np.float32)},
    }


train, load, tune = base.app_api(__name__)
