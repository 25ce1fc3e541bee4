"""Transfer learning: reuse an ImageNet backbone, train a new head on it, then fine-tune its top.

The course's recipe (i2dl summary, "Transfer Learning"): the low-level features a network learned
on a large data set (edges, corners, textures) serve most other image tasks, so take a pretrained
backbone from `keras.applications`, freeze it and train only a new classifier head on top
(stage 1, `--head-epochs` at `--learning-rate`); then unfreeze the top `--unfreeze N` blocks (or
layers, `--unfreeze-unit`) and fine-tune them with a much smaller rate (stage 2, `--epochs` at
`--fine-tune-lr`, 1e-5 by default), optionally with discriminative learning rates that shrink by
`--lr-layer-decay` per block going down (the course's "pre-trained layers are only updated with a
very small learning rate: different learning rates"). BatchNormalization stays in inference mode
throughout, so the small target data set never replaces the moving statistics learned on the
source: the backbone is called with `training=False` as the course and the Keras guide say, but
in Keras 3 the `training=True` of `fit` overrides that flag for nested models (keras-team/keras
#20285), so what actually guarantees it is that every BatchNormalization layer stays frozen
(`trainable=False`, which Keras 3 runs in inference mode) even inside unfrozen blocks. Metrics on
the validation split are printed after each stage and saved in `stages.json`.

Backbones: `--backbone mobilenet_v2` (default), `mobilenet_v3_small`, `mobilenet_v3_large`,
`efficientnet_b0`, `efficientnet_v2_b0`, `resnet50`, `vgg16`, `densenet121`, and `small_cnn`
(`i2dl_keras.models.small_cnn`'s conv blocks, for offline work and `--pretrain-on`). Weights:
`--weights imagenet` (Keras downloads and caches them in `~/.keras/models/`; offline, the error
names the file to place there), `--weights FILE` (a `.h5` or `.weights.h5` file of backbone
weights) or `--weights none`. `--pretrain-on SPEC` first trains the backbone on another labelled
source (e.g. MNIST digits 0-4 with `--pretrain-classes 0,1,2,3,4`), saves it as
`pretrained_backbone.weights.h5` in the run folder and transfers it to the target data.

Data: `--data tf_flowers` (TFDS, the default), `cats_vs_dogs`, a folder with one subfolder of
images per class (any sizes, resized to `--image-size`), or `synthetic`; `--classes` keeps a
subset of classes and `--labels-per-class N` keeps N labelled training examples per class.
Training batches are flipped, rotated and zoomed at random (`--no-augment`, `--no-flip`).

The model takes raw RGB pixels in 0-255 (`image_size` square, float); the backbone's own
`preprocess_input` is part of it, built from standard Keras layers. Metric: test accuracy (and
top-5 accuracy with 5 or more classes). A good result: about 90% or more on tf_flowers with
MobileNetV2 and ImageNet weights (the published figure; it could not be measured offline). On
MNIST digits 5-9 with 20 labels per class, `--backbone small_cnn --head-pool flatten` pretrained
on digits 0-4 reaches 94% against 90% from scratch (mean of 3 seeds, `benchmarks/transfer.py`);
with the global-average-pooling head, only the first conv layer transfers well there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import urllib.parse
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from apps import base, plots
from i2dl_keras import data as i2dl_data
from i2dl_keras.data.tfds_source import host_reachable
from i2dl_keras.losses import SparseCategoricalCrossentropy
from i2dl_keras.models import small_cnn

NAME = "transfer"
TASK = "image_classification"
TUNING_OBJECTIVE = kt.Objective("val_accuracy", direction="max")
PREDICT_INPUT_HELP = "PNG/JPEG files, or folders of them"
# Fixed by the trained run: `evaluate` does not offer them as flags.
MODEL_FIELDS = (
    "backbone",
    "weights",
    "alpha",
    "image_size",
    "head_pool",
    "head_width",
    "num_classes",
    "class_names",
    "pretrain_on",
    "pretrain_classes",
    "pretrain_epochs",
)
MODEL_CARD_USE = (
    "Classifies RGB photos of any size (squashed to image_size x image_size) into the classes of "
    "its training data, with a backbone pretrained on ImageNet (or on the --pretrain-on source) "
    "and a head trained on few labelled examples."
)
MODEL_CARD_LIMITS = (
    "It knows only the classes listed in class_names in config.json and gives every input one "
    "of them, however unrelated the image. Inputs are squashed to a square without keeping "
    "their aspect ratio. ImageNet features suit natural photos; on other domains (medical, "
    "satellite, documents) fewer layers transfer and more fine-tuning data is needed."
)
PRETRAINED_FILE = "pretrained_backbone.weights.h5"
STAGES_FILE = "stages.json"
SMALL_CNN_WIDTH = 32


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and which `preprocess_input` it expects.

    `preprocess` is Keras' preprocessing mode: `"tf"` (scale to [-1, 1]), `"caffe"` (RGB to BGR,
    subtract the ImageNet mean), `"torch"` (scale to [0, 1], normalise by the ImageNet mean and
    standard deviation), `"builtin"` (the application rescales inside itself) or `"unit"`
    (scale to [0, 1], for `small_cnn`).
    """

    application: Callable | None
    preprocess: str
    has_alpha: bool = False
    min_size: int = 32


BACKBONES = {
    "mobilenet_v2": BackboneSpec(keras.applications.MobileNetV2, "tf", has_alpha=True),
    "mobilenet_v3_small": BackboneSpec(
        keras.applications.MobileNetV3Small, "builtin", has_alpha=True
    ),
    "mobilenet_v3_large": BackboneSpec(
        keras.applications.MobileNetV3Large, "builtin", has_alpha=True
    ),
    "efficientnet_b0": BackboneSpec(keras.applications.EfficientNetB0, "builtin"),
    "efficientnet_v2_b0": BackboneSpec(keras.applications.EfficientNetV2B0, "builtin"),
    "resnet50": BackboneSpec(keras.applications.ResNet50, "caffe"),
    "vgg16": BackboneSpec(keras.applications.VGG16, "caffe"),
    "densenet121": BackboneSpec(keras.applications.DenseNet121, "torch"),
    # small_cnn checks its own minimum size (see build_backbone).
    "small_cnn": BackboneSpec(None, "unit", min_size=1),
}

# keras.applications' ImageNet statistics (imagenet_utils.preprocess_input).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass
class Config(base.BaseConfig):
    """Settings of the transfer-learning classifier."""

    data: str = base.option(
        "tf_flowers", "data source: a TFDS name (tf_flowers, cats_vs_dogs), a folder, synthetic"
    )
    epochs: int = base.option(10, "most fine-tuning epochs (stage 2; early stopping may end it)")
    batch_size: int = base.option(32, "examples per batch")
    learning_rate: float = base.option(
        1e-3, "learning rate of the head while the backbone is frozen (stage 1) and of pretraining"
    )
    backbone: str = base.option("mobilenet_v2", "pretrained network", choices=tuple(BACKBONES))
    weights: str = base.option(
        "imagenet", "backbone weights: imagenet, none, or a .h5 / .weights.h5 file"
    )
    alpha: float = base.option(1.0, "width multiplier of the MobileNets")
    image_size: int = base.option(160, "square input size in pixels (images are resized)")
    head_pool: str = base.option(
        "avg",
        "how the head reads the feature map: global average (any backbone) or flatten (keeps "
        "where features are; for small inputs such as digits)",
        choices=("avg", "flatten"),
    )
    head_width: int = base.option(0, "units of a hidden dense layer in the head (0: no layer)")
    dropout: float = base.option(0.2, "dropout before the classifier")
    head_epochs: int = base.option(10, "most epochs of stage 1 (backbone frozen; 0: skip)")
    unfreeze: int = base.option(
        3, "top blocks (or layers) of the backbone fine-tuned in stage 2 (0: none, -1: all)"
    )
    unfreeze_unit: str = base.option(
        "blocks", "what --unfreeze counts", choices=("blocks", "layers")
    )
    fine_tune_lr: float = base.option(1e-5, "learning rate of stage 2")
    lr_layer_decay: float = base.option(
        1.0, "discriminative rates: each lower unfrozen block learns this times slower (1: off)"
    )
    augment: bool = base.option(True, "random flips, rotations and zooms of training batches")
    flip: bool = base.option(True, "random horizontal flips (turn off for digits and text)")
    classes: str = base.option("", "keep only these classes: names or ids, comma-separated")
    labels_per_class: int = base.option(
        0, "keep this many labelled training examples per class (0: all)"
    )
    pretrain_on: str | None = base.option(
        None, "first pretrain the backbone on this labelled source (a --data spec)"
    )
    pretrain_classes: str = base.option("", "classes of --pretrain-on to use (default: all)")
    pretrain_epochs: int = base.option(10, "most pretraining epochs")
    top_k: int = base.option(3, "classes that predict prints per input")
    num_classes: int = base.option(5, "number of classes (set from the data when training)")
    class_names: str = base.option("", "JSON list of class names (set from the data)")

    def validate(self) -> None:
        super().validate()
        spec = BACKBONES[self.backbone]
        if self.image_size < spec.min_size:
            raise base.UsageError(
                f"--image-size must be at least {spec.min_size} for --backbone {self.backbone}, "
                f"got {self.image_size}"
            )
        if spec.has_alpha and self.alpha <= 0:
            raise base.UsageError(f"--alpha must be positive, got {self.alpha}")
        weights = self.weights.strip()
        if weights.lower() == "imagenet":
            if spec.application is None:
                raise base.UsageError(
                    f"--weights imagenet: there are no ImageNet weights for --backbone "
                    f"{self.backbone}; pass --weights none (optionally with --pretrain-on SPEC) "
                    "or --weights FILE"
                )
        elif weights.lower() != "none":
            if not weights.endswith(".h5"):
                raise base.UsageError(
                    f"--weights {weights}: expected imagenet, none, or a .h5 / .weights.h5 file "
                    "of backbone weights"
                )
            if not Path(weights).expanduser().is_file():
                raise base.UsageError(f"--weights {weights}: no such file")
        if self.head_width < 0:
            raise base.UsageError(f"--head-width must be 0 or more, got {self.head_width}")
        if not 0 <= self.dropout < 1:
            raise base.UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.head_epochs < 0:
            raise base.UsageError(f"--head-epochs must be 0 or more, got {self.head_epochs}")
        if self.unfreeze < -1:
            raise base.UsageError(f"--unfreeze must be -1 (all), 0 or more, got {self.unfreeze}")
        if self.head_epochs == 0 and self.unfreeze == 0:
            raise base.UsageError(
                "--head-epochs 0 with --unfreeze 0 trains nothing: give the head epochs or "
                "unfreeze part of the backbone"
            )
        if self.fine_tune_lr <= 0:
            raise base.UsageError(f"--fine-tune-lr must be positive, got {self.fine_tune_lr}")
        if not 0 < self.lr_layer_decay <= 1:
            raise base.UsageError(
                f"--lr-layer-decay must be in (0, 1] (1 turns it off), got {self.lr_layer_decay}"
            )
        if self.labels_per_class < 0:
            raise base.UsageError(
                f"--labels-per-class must be 0 (all) or more, got {self.labels_per_class}"
            )
        if self.pretrain_epochs < 1:
            raise base.UsageError(
                f"--pretrain-epochs must be at least 1, got {self.pretrain_epochs}"
            )
        if self.top_k < 1:
            raise base.UsageError(f"--top-k must be at least 1, got {self.top_k}")
        for flag, text in (
            ("--classes", self.classes),
            ("--pretrain-classes", self.pretrain_classes),
        ):
            _class_tokens(text, flag)


# --------------------------------------------------------------------------- data


def _class_tokens(text: str, flag: str) -> list[str]:
    tokens = [t.strip() for t in text.split(",")] if text.strip() else []
    if any(not t for t in tokens):
        raise base.UsageError(f"{flag} {text!r}: expected class names or ids separated by commas")
    if len(set(tokens)) != len(tokens):
        raise base.UsageError(f"{flag} {text!r}: names a class twice")
    if len(tokens) == 1:
        raise base.UsageError(f"{flag} {text!r}: keep at least two classes")
    return tokens


def _labels(ds: tf.data.Dataset) -> np.ndarray:
    return np.fromiter(ds.map(lambda x, y: y).as_numpy_iterator(), dtype=np.int64)


def _take(ds: tf.data.Dataset, mask: np.ndarray, remap: np.ndarray) -> tf.data.Dataset:
    """The elements where `mask` is true, in order, with labels mapped through `remap`."""
    keep, table = tf.constant(mask), tf.constant(remap, tf.int64)

    def kept(index, element):
        return keep[index]

    def relabelled(index, element):
        return element[0], tf.gather(table, element[1])

    picked = ds.enumerate().filter(kept).map(relabelled)
    return picked.apply(tf.data.experimental.assert_cardinality(int(mask.sum())))


def select_classes(
    source: i2dl_data.Source,
    classes: str,
    labels_per_class: int,
    seed: int,
    flag: str = "--classes",
) -> i2dl_data.Source:
    """Keeps some classes of a `Source` (renumbered 0..K-1) and a few labels per class.

    Args:
        source: The loaded source.
        classes: Class names or ids, comma-separated, in the order the new ids take; `""`
            keeps every class.
        labels_per_class: Keep this many training examples per class, drawn at random with
            `seed` (validation and test splits are kept whole); `0` keeps all.
        seed: Which training examples are kept.
        flag: The flag named in error messages. Defaults to `"--classes"`.

    Returns:
        The filtered `Source`.

    Raises:
        DataError: For a class the source does not have.
    """
    if not classes.strip() and not labels_per_class:
        return source
    labels = {
        split: _labels(ds)
        for split, ds in (("train", source.train), ("validation", source.validation))
        if ds is not None
    }
    names = list(source.class_names) or [
        str(i) for i in range(int(max(v.max(initial=0) for v in labels.values())) + 1)
    ]
    keep = list(range(len(names)))
    if classes.strip():
        keep = []
        for token in _class_tokens(classes, flag):
            if token in names:
                keep.append(names.index(token))
            elif token.isdigit() and int(token) < len(names):
                keep.append(int(token))
            else:
                raise i2dl_data.DataError(
                    f"{flag}: {source.name} has no class {token!r}; its classes are "
                    + ", ".join(names)
                )
        if len(set(keep)) != len(keep):
            raise i2dl_data.DataError(f"{flag} {classes!r} names one class twice")
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    notes = list(source.notes)
    if len(keep) < len(names):
        notes.append(
            f"kept {len(keep)} of {len(names)} classes: {', '.join(names[k] for k in keep)}"
        )
    splits, counts = {}, {}
    if source.test is not None:
        labels["test"] = _labels(source.test)
    for split, values in labels.items():
        mask = remap[np.clip(values, 0, len(names) - 1)] >= 0
        if split == "train" and labels_per_class:
            rng = np.random.default_rng([seed, 7])
            chosen = np.zeros_like(mask)
            short = []
            for old in keep:
                candidates = np.flatnonzero(mask & (values == old))
                if len(candidates) < labels_per_class:
                    short.append(f"{names[old]} ({len(candidates)})")
                chosen[rng.permutation(candidates)[:labels_per_class]] = True
            mask = chosen
            notes.append(
                f"kept {labels_per_class} labelled training examples per class (seed {seed}): "
                f"{int(mask.sum()):,} in all" + (f"; fewer in {', '.join(short)}" if short else "")
            )
        if not mask.any():
            raise i2dl_data.DataError(f"{flag}: no {split} examples of the chosen classes")
        splits[split] = _take(getattr(source, split), mask, remap)
        counts[split] = int(mask.sum())
    return dataclasses.replace(
        source,
        train=splits["train"],
        validation=splits.get("validation"),
        test=splits.get("test"),
        class_names=[names[k] for k in keep],
        num_examples=counts,
        notes=notes,
    )


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    return n if n >= 0 else sum(1 for _ in ds)


def _selector(config: Config, purpose: str) -> Callable:
    """`select_classes` for `base.load_datasets`, holding out the test split first when needed."""
    per_class = config.labels_per_class if purpose == "train" else 0

    def select(source: i2dl_data.Source) -> i2dl_data.Source:
        if per_class and source.test is None:
            # Test on held-out examples of the whole source, not on a share of the few labels.
            train, test = i2dl_data.split(source.train, config.test_fraction, config.seed)
            source = dataclasses.replace(
                source,
                train=train,
                test=test,
                num_examples={"train": _count(train), "test": _count(test)},
                notes=[
                    *source.notes,
                    f"held out {config.test_fraction:.0%} of the training examples as the test "
                    f"split (seed {config.seed}) before keeping {per_class} labels per class",
                ],
            )
        return select_classes(source, config.classes, per_class, config.seed)

    return select


def load_datasets(
    config: Config, purpose: str, preprocess: Callable, augment: Callable | None
) -> base.Datasets:
    """`base.load_datasets` with `select_classes` between loading and splitting."""
    size = config.image_size
    return base.load_datasets(
        config,
        TASK,
        purpose,
        preprocess=preprocess,
        augment=augment,
        image_size=(size, size),
        channels=3,
        select=_selector(config, purpose),
    )


def _to_float(image, label):
    return tf.cast(image, tf.float32), tf.cast(label, tf.int32)


def _augmenter(config: Config) -> Callable | None:
    if not config.augment:
        return None
    layers = [
        keras.layers.RandomRotation(0.1, seed=config.seed + 1),
        keras.layers.RandomZoom(0.1, seed=config.seed + 2),
    ]
    if config.flip:
        layers.insert(0, keras.layers.RandomFlip("horizontal", seed=config.seed))

    def augment(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        return images, labels

    return augment


def make_datasets(config: Config, purpose: str) -> base.Datasets:
    datasets = load_datasets(config, purpose, _to_float, _augmenter(config))
    if purpose == "train":
        # Like num_classes, the class names come from the data and are saved with the run.
        config.class_names = json.dumps(datasets.class_names)
    elif config.class_names and json.loads(config.class_names) != datasets.class_names:
        raise i2dl_data.DataError(
            f"--data {config.data} has the classes {datasets.class_names}, but the model was "
            f"trained on {json.loads(config.class_names)}; pass data with the same classes "
            "(and the same --classes)"
        )
    return datasets


# --------------------------------------------------------------------------- model


def preprocessing_layers(backbone: str) -> list[keras.layers.Layer]:
    """Standard Keras layers that do what the backbone's `preprocess_input` does to 0-255 RGB.

    Built from `Rescaling`, `Normalization` and a frozen 3x3 `Dense` (the caffe mode's RGB->BGR
    swap and mean subtraction) rather than a `Lambda`, so that the model saves and loads
    anywhere.
    """
    mode = BACKBONES[backbone].preprocess
    if mode == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")]
    if mode == "unit":
        return [keras.layers.Rescaling(1 / 255.0, name="preprocess")]
    if mode == "torch":
        return [
            keras.layers.Normalization(
                mean=[255.0 * m for m in _TORCH_MEAN],
                variance=[(255.0 * s) ** 2 for s in _TORCH_STD],
                name="preprocess",
            )
        ]
    if mode == "caffe":
        swap = np.eye(3, dtype=np.float32)[::-1]
        return [
            keras.layers.Dense(
                3,
                kernel_initializer=keras.initializers.Constant(swap),
                bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]),
                trainable=False,
                name="preprocess",
            )
        ]
    return []


def _cache_target(fname: str, cache_dir: str | None, cache_subdir: str) -> Path:
    """Where `keras.utils.get_file` keeps `fname` (the same rule as Keras' own)."""
    from keras.src.backend.config import keras_home

    root = os.path.expanduser(cache_dir or keras_home())
    if not os.access(root, os.W_OK):
        root = os.path.join("/tmp", ".keras")
    return Path(root) / cache_subdir / fname


@contextlib.contextmanager
def _guarded_downloads(backbone: str):
    """Makes Keras' weight download fail at once, with a useful message, when it cannot work.

    Offline, Keras' `get_file` waits on the network before it fails with a bare "URL fetch
    failure". Here a cached file is used as Keras would use it; a missing one is downloaded only
    after a 3-second check that its host answers; and every failure names the exact file to
    place in the cache or to pass as `--weights FILE`.
    """
    from keras.src.utils import file_utils

    original = file_utils.get_file

    def get_file(fname=None, origin=None, *args, **kwargs):
        fname = fname or os.path.basename(urllib.parse.urlsplit(origin).path)
        target = _cache_target(
            fname, kwargs.get("cache_dir"), kwargs.get("cache_subdir", "datasets")
        )
        file_hash = kwargs.get("file_hash") or kwargs.get("md5_hash")
        stale = target.exists() and file_hash and not file_utils.validate_file(target, file_hash)
        if target.exists() and not stale:
            return original(fname, origin, *args, **kwargs)
        url = urllib.parse.urlsplit(origin)
        port = url.port or (443 if url.scheme == "https" else 80)
        problem = f"{url.hostname} does not answer (offline?)"
        if host_reachable(url.hostname, port):
            try:
                return original(fname, origin, *args, **kwargs)
            except Exception as err:  # Keras raises a bare Exception for every network error
                problem = f"the download failed ({str(err).strip().splitlines()[0]})"
        cache = (
            f"the cached {target} does not match its published hash"
            if stale
            else f"they are not in the Keras cache ({target.parent}/)"
        )
        raise base.UsageError(
            f"--weights imagenet: cannot fetch the ImageNet weights of {backbone}: {problem}, "
            f"and {cache}. Download {origin} elsewhere and place it as {target}, or pass it as "
            f"--weights FILE (the file is {fname}); or use --weights none or --pretrain-on SPEC"
        )

    with mock.patch.object(file_utils, "get_file", get_file):
        yield


def build_backbone(config: Config) -> keras.Model:
    """The backbone without its classifier, named `"backbone"`, with the asked weights loaded."""
    spec = BACKBONES[config.backbone]
    shape = (config.image_size, config.image_size, 3)
    weights = config.weights.strip()
    imagenet = weights.lower() == "imagenet"
    if spec.application is None:
        try:
            net = small_cnn(shape, num_classes=2, width=SMALL_CNN_WIDTH, dropout=0.0)
        except ValueError as err:
            raise base.UsageError(
                f"--image-size {config.image_size} does not suit --backbone small_cnn: {err}"
            ) from None
        # Its convolutional part: everything before it flattens or pools the feature map.
        end = next(
            layer
            for layer in net.layers
            if isinstance(layer, (keras.layers.Flatten, keras.layers.GlobalAveragePooling2D))
        )
        backbone = keras.Model(net.input, end.input, name="backbone")
    else:
        kwargs: dict[str, Any] = dict(
            input_shape=shape, include_top=False, weights="imagenet" if imagenet else None
        )
        if spec.has_alpha:
            kwargs["alpha"] = config.alpha
        with _guarded_downloads(config.backbone):
            backbone = spec.application(**kwargs)
        # Renamed afterwards: EfficientNetV2 reads its architecture from its `name` argument.
        backbone.name = "backbone"
    if not imagenet and weights.lower() != "none":
        try:
            backbone.load_weights(os.path.expanduser(weights))
        except (ValueError, OSError, KeyError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise base.UsageError(
                f"--weights {weights}: cannot load it into the {config.backbone} backbone at "
                f"{config.image_size}x{config.image_size}"
                + (f" with alpha {config.alpha}" if spec.has_alpha else "")
                + f" ({first}); pass weights saved from the same backbone"
            ) from None
    return backbone


def attach_head(
    backbone: keras.Model,
    config: Config,
    num_classes: int,
    training: bool | None = False,
    prefix: str = "head_",
    name: str = "classifier",
) -> keras.Model:
    """Raw pixels -> preprocessing -> `backbone` -> pooling, dropout, [dense], softmax.

    `training=False` (the transfer model) or `None` (ordinary training, for pretraining and
    from-scratch baselines); head layers are named with `prefix`.
    """
    inputs = keras.Input((config.image_size, config.image_size, 3), name="images")
    x = inputs
    for layer in preprocessing_layers(config.backbone):
        x = layer(x)
    # training=False as the Keras guide says; but Keras 3's functional models let the training
    # flag of the outer call override it (keras-team/keras#20285), so BatchNormalization stays in
    # inference mode only because `freeze_backbone` and `unfreeze_top` never make it trainable.
    x = backbone(x, training=training)
    if config.head_pool == "flatten":
        x = keras.layers.Flatten(name=f"{prefix}flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name=f"{prefix}pool")(x)
    if config.head_width:
        x = keras.layers.Dropout(config.dropout, name=f"{prefix}hidden_dropout")(x)
        x = keras.layers.Dense(config.head_width, activation="relu", name=f"{prefix}dense")(x)
    x = keras.layers.Dropout(config.dropout, name=f"{prefix}dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name=f"{prefix}classifier"
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _metrics(num_classes: int) -> list:
    metrics: list = ["accuracy"]
    if num_classes >= 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
    return metrics


def build_model(config: Config) -> keras.Model:
    """The classifier in its stage-1 state: backbone frozen, compiled at `learning_rate`."""
    backbone = build_backbone(config)
    model = attach_head(
        backbone, config, config.num_classes, False, "head_", f"transfer_{config.backbone}"
    )
    freeze_backbone(model)
    compile_stage(model, config, 1)
    return model


# --------------------------------------------------------------------------- stages

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
    run of layers whose names share the application's block prefix (`block_16_` in MobileNetV2,
    `conv5_block3_` in ResNet50, `block6a_` in EfficientNet, `block5_` in VGG16).
    """
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


def freeze_backbone(model: keras.Model) -> None:
    model.get_layer("backbone").trainable = False


def unfreeze_top(model: keras.Model, config: Config) -> list[list[keras.layers.Layer]]:
    """Makes the top `config.unfreeze` units of the backbone trainable (never its BN layers).

    Returns:
        The unfrozen units, top first.
    """
    backbone = model.get_layer("backbone")
    units = backbone_units(backbone, config.unfreeze_unit)
    count = len(units) if config.unfreeze < 0 else min(config.unfreeze, len(units))
    chosen = units[len(units) - count :][::-1]
    ids = {id(layer) for unit in chosen for layer in unit}
    backbone.trainable = True
    for layer in backbone.layers:
        layer.trainable = id(layer) in ids
    return chosen


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam with a learning-rate multiplier per variable: discriminative fine-tuning.

    Howard & Ruder (2018, ULMFiT) fine-tune lower layers with smaller rates, since they hold the
    general features that need the least change (the course: "pre-trained layers are only
    updated with a very small learning rate"). Adam's step does not depend on the gradient's
    scale, so scaling gradients cannot do this; the rate itself is scaled per variable.

    Args:
        multipliers: Variable path (`variable.path`) -> factor on the learning rate; variables
            not named use factor 1. Defaults to `None` (plain Adam).
        **kwargs: `keras.optimizers.Adam` arguments.
    """

    def __init__(self, multipliers: dict[str, float] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.multipliers = {str(k): float(v) for k, v in (multipliers or {}).items()}
        for path, factor in self.multipliers.items():
            if not factor > 0:
                raise ValueError(
                    "Every learning-rate multiplier must be positive. "
                    f"Received: multipliers[{path!r}]={factor}"
                )
        self._scales: list[float] = []

    def build(self, var_list):
        super().build(var_list)
        self._scales = [self.multipliers.get(v.path, 1.0) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scales[self._get_variable_index(variable)]
        if scale != 1.0:
            learning_rate = learning_rate * scale
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["multipliers"] = dict(self.multipliers)
        return config


def learning_rate_multipliers(
    chosen: list[list[keras.layers.Layer]], decay: float
) -> dict[str, float]:
    """`decay ** i` for the variables of the i-th unfrozen unit from the top (the top has 1)."""
    return {
        variable.path: decay**depth
        for depth, unit in enumerate(chosen)
        for layer in unit
        for variable in layer.trainable_weights
    }


def compile_stage(
    model: keras.Model, config: Config, stage: int, chosen: list | None = None
) -> None:
    """Compiles for stage 1 (Adam at `learning_rate`) or 2 (at `fine_tune_lr`, maybe layerwise)."""
    if stage == 1:
        optimizer = keras.optimizers.Adam(config.learning_rate)
    elif config.lr_layer_decay < 1 and chosen:
        optimizer = LayerwiseAdam(
            learning_rate_multipliers(chosen, config.lr_layer_decay),
            learning_rate=config.fine_tune_lr,
        )
    else:
        optimizer = keras.optimizers.Adam(config.fine_tune_lr)
    model.compile(
        optimizer=optimizer,
        loss=SparseCategoricalCrossentropy(),
        metrics=_metrics(config.num_classes),
    )


# Validation metrics after each stage, for `write_report` (keyed by model, dropped with it).
_STAGE_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _report_stage(model, validation, what: str, epochs: int, report) -> dict:
    result = model.evaluate(validation, return_dict=True, verbose=0) if validation else {}
    entry = {
        "stage": what,
        "epochs_run": epochs,
        "validation": {k: float(v) for k, v in result.items()},
    }
    _STAGE_REPORTS.setdefault(model, []).append(entry)
    if report is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in entry["validation"].items())
        report(f"{what}: {epochs} epoch(s); validation {shown}")
    return entry


def _load_stage1(model: keras.Model, state_dir: Path | None):
    if state_dir is None or not (state_dir / "stage1.json").is_file():
        return None
    state = json.loads((state_dir / "stage1.json").read_text())
    with np.load(state_dir / "stage1_weights.npz") as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    return state["history"], int(state["end_epoch"])


def _save_stage1(model: keras.Model, state_dir: Path, history: dict, end_epoch: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    np.savez(state_dir / "stage1_weights.npz", *model.get_weights())
    tmp = state_dir / "stage1.json.tmp"
    tmp.write_text(json.dumps({"history": history, "end_epoch": end_epoch}))
    os.replace(tmp, state_dir / "stage1.json")  # written last: it marks stage 1 as finished


def train_stages(
    model: keras.Model,
    train: tf.data.Dataset,
    validation: tf.data.Dataset | None,
    config: Config,
    callbacks=(),
    verbose: Any = 0,
    *,
    initial_epoch: int = 0,
    end_epoch: int | None = None,
    state_dir: Path | None = None,
    report: Callable[[str], None] | None = print,
) -> tuple[dict[str, list[float]], list[int]]:
    """Stage 1 (head only) then stage 2 (top of the backbone), one epoch count across both.

    Stage 1 runs epochs `[0, head_epochs)` with the backbone frozen; stage 2 runs from where
    stage 1 ended (early stopping may end it sooner) for `config.epochs` epochs, or up to
    `end_epoch` when given (the tuner's budget); `initial_epoch` skips what an earlier trial
    trained. With `state_dir`, a finished stage 1 is recorded there, so that a rerun after an
    interruption in stage 2 resumes it instead of starting over.

    Returns:
        `(history, boundaries)`: metric -> values over the epochs run in both stages, and the
        number of epochs after which stage 1 ended (empty when only one stage ran).
    """
    callbacks = list(callbacks)
    history1: dict = {}
    resumed = _load_stage1(model, state_dir)
    if resumed is not None:
        history1, stage1_end = resumed
        if report is not None:
            report(f"stage 1 finished before the interruption (epoch {stage1_end}); resuming")
    elif initial_epoch < config.head_epochs and (end_epoch is None or end_epoch > initial_epoch):
        freeze_backbone(model)
        compile_stage(model, config, 1)
        model._initial_epoch = None  # BackupAndRestore sets it and Keras never resets it
        result = model.fit(
            train,
            validation_data=validation,
            epochs=min(config.head_epochs, end_epoch or config.head_epochs),
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        )
        history1 = result.history
        start = model._initial_epoch or initial_epoch
        stage1_end = start + len(history1.get("loss", []))
        _report_stage(model, validation, "stage 1 (head only, backbone frozen)", stage1_end, report)
        if config.unfreeze and state_dir is not None:
            _save_stage1(model, state_dir, history1, stage1_end)
    else:
        stage1_end = initial_epoch
    history2: dict = {}
    stop = end_epoch if end_epoch is not None else stage1_end + config.epochs
    if config.unfreeze and stop > stage1_end:
        chosen = unfreeze_top(model, config)
        compile_stage(model, config, 2, chosen)
        model._initial_epoch = None
        history2 = model.fit(
            train,
            validation_data=validation,
            epochs=stop,
            initial_epoch=stage1_end,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
        ).history
        # Epochs of stage 2 in all: those before an interruption, then those run here.
        ran2 = (model._initial_epoch or stage1_end) - stage1_end + len(history2.get("loss", []))
        layers = sum(len(unit) for unit in chosen)
        what = (
            f"stage 2 (fine-tuning the top {len(chosen)} {config.unfreeze_unit} = {layers} "
            f"layers at {config.fine_tune_lr:g}"
            + (f", x{config.lr_layer_decay:g} per block down" if config.lr_layer_decay < 1 else "")
            + ")"
        )
        _report_stage(model, validation, what, ran2, report)
    model._initial_epoch = None
    keys = list(dict.fromkeys([*history1, *history2]))
    history = {k: [float(v) for v in history1.get(k, []) + history2.get(k, [])] for k in keys}
    ran1 = len(history1.get("loss", []))
    boundaries = [ran1] if ran1 and history2 else []
    return history, boundaries


def pretrain(
    model: keras.Model, config: Config, verbose: Any = 0, report: Callable | None = print
) -> tuple[dict[str, float], keras.Model]:
    """Trains the model's backbone from its current weights on `config.pretrain_on`.

    The backbone gets a head of its own for the source's classes (`--pretrain-classes`) and is
    trained whole, with BatchNormalization in training mode (this is ordinary training, not
    fine-tuning), for at most `pretrain_epochs` with early stopping on the source's validation
    split. The target model shares the backbone, so it holds the pretrained weights afterwards.

    Returns:
        `(metrics, network)`: the test metrics on the source, and the source classifier (the
        shared backbone with the source's head).
    """
    source_config = dataclasses.replace(
        config,
        data=config.pretrain_on,
        classes=config.pretrain_classes,
        labels_per_class=0,
    )
    datasets = load_datasets(source_config, "train", _to_float, _augmenter(source_config))
    if report is not None:
        report(
            f"pretraining the {config.backbone} backbone on {datasets.source_name} "
            f"({len(datasets.class_names)} classes; "
            + ", ".join(f"{k} {v:,}" for k, v in datasets.num_examples.items())
            + ")"
        )
    backbone = model.get_layer("backbone")
    net = train_classifier(backbone, datasets, config, config.pretrain_epochs, verbose)
    result = net.evaluate(datasets.test, return_dict=True, verbose=0)
    metrics = {k: float(v) for k, v in result.items()}
    if report is not None:
        report("pretraining test " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    freeze_backbone(model)
    return metrics, net


def train_classifier(
    backbone: keras.Model,
    datasets: base.Datasets,
    config: Config,
    epochs: int,
    verbose: Any = 0,
) -> keras.Model:
    """Trains `backbone` whole with a new head on `datasets` (BN in training mode); returns it.

    This is how `pretrain` trains on the source, and how a from-scratch baseline is trained.
    """
    net = attach_head(backbone, config, len(datasets.class_names), None, "pretrain_", "pretraining")
    backbone.trainable = True
    net.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    net.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=epochs,
        callbacks=[base.early_stopping(config)],
        verbose=verbose,
        shuffle=False,
    )
    return net


def fit(model, datasets, config, callbacks, verbose):
    """The `fit` hook of `apps.base.train`: optional pretraining, then the two stages.

    The work folder of the run (the parent of the `BackupAndRestore` folder) receives the
    pretrained backbone, and the record of a finished stage 1, so that reruns resume.
    """
    backup = next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)
    state_dir = Path(backup.backup_dir) / "stages" if backup is not None else None
    if config.pretrain_on and not (state_dir and (state_dir / "stage1.json").is_file()):
        saved = Path(backup.backup_dir).parent / PRETRAINED_FILE if backup is not None else None
        backbone = model.get_layer("backbone")
        if saved is not None and saved.is_file():
            print(f"using the backbone pretrained before the interruption ({saved})")
            backbone.load_weights(saved)
        else:
            pretrain(model, config, verbose)
            if saved is not None:
                backbone.save_weights(saved)
                print(f"pretrained backbone saved as {PRETRAINED_FILE} (reuse: --weights FILE)")
    history, boundaries = train_stages(
        model,
        datasets.train,
        datasets.validation,
        config,
        callbacks,
        verbose,
        state_dir=state_dir,
    )
    if isinstance(model.optimizer, LayerwiseAdam):
        # A plain optimizer in the saved model lets it load without this module.
        model.compile(
            optimizer=keras.optimizers.Adam(config.fine_tune_lr),
            loss=SparseCategoricalCrossentropy(),
            metrics=_metrics(config.num_classes),
        )
        model.optimizer.build(model.trainable_variables)
    return history, boundaries


class HyperModel(base.ConfigHyperModel):
    """Searches head width, dropout, unfreeze depth and both learning rates.

    `fit` runs both stages: `--head-epochs` of head training, then fine-tuning up to the
    tuner's epoch budget (`--max-epochs`), so pass `--head-epochs` below `--max-epochs`.
    """

    build_model = staticmethod(build_model)

    def __init__(self, config: Config | None = None, **kwargs):
        if config is not None and config.pretrain_on:
            raise base.UsageError(
                "--pretrain-on is not searched by tune: pretrain once with `i2dl transfer "
                f"train --pretrain-on ...`, then tune with --weights RUN/{PRETRAINED_FILE}"
            )
        super().__init__(config, **kwargs)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        return dataclasses.replace(
            self.config,
            head_width=hp.Choice("head_width", [0, 64, 256]),
            dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
            unfreeze=hp.Int("unfreeze", 1, 6),
            learning_rate=hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"),
            fine_tune_lr=hp.Float("fine_tune_lr", 1e-6, 1e-4, sampling="log"),
        )

    def fit(self, hp, model, x, *args, validation_data=None, epochs=1, **kwargs):
        history, _ = train_stages(
            model,
            x,
            validation_data,
            self.config_for(hp),
            kwargs.get("callbacks") or [],
            kwargs.get("verbose", 0),
            initial_epoch=kwargs.get("initial_epoch", 0),
            end_epoch=epochs,
            report=None,
        )
        result = keras.callbacks.History()
        result.history = history
        result.epoch = list(range(len(history.get("loss", []))))
        return result


# --------------------------------------------------------------------------- metrics, report


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    metrics = {"accuracy": float(results["accuracy"])}
    if "top5_accuracy" in results:
        metrics["top5_accuracy"] = float(results["top5_accuracy"])
    metrics["loss"] = float(results["loss"])
    return metrics


def _collect(model: keras.Model, dataset: tf.data.Dataset):
    images, labels, probs = [], [], []
    for x, y in dataset:
        images.append(x.numpy())
        labels.append(y.numpy())
        probs.append(model(x, training=False).numpy())
    return np.concatenate(images), np.concatenate(labels), np.concatenate(probs)


def write_report(run_dir: Path, model: keras.Model, datasets: base.Datasets, config) -> None:
    stages = _STAGE_REPORTS.pop(model, [])
    (run_dir / STAGES_FILE).write_text(json.dumps(stages, indent=2) + "\n")
    images, labels, probs = _collect(model, datasets.test)
    predicted = probs.argmax(-1)
    n = len(datasets.class_names)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    plots.confusion_matrix_plot(
        matrix,
        datasets.class_names,
        run_dir / "confusion_matrix.png",
        title=f"test confusion matrix (accuracy {np.mean(predicted == labels):.2%})",
    )
    wrong = np.flatnonzero(predicted != labels)
    names = datasets.class_names
    plots.image_grid(
        np.clip(images[wrong[:32]] / 255.0, 0.0, 1.0),
        [
            f"true {names[labels[i]]} / pred {names[predicted[i]]} ({probs[i, predicted[i]]:.2f})"
            for i in wrong[:32]
        ],
        run_dir / "misclassified.png",
        title=f"misclassified test images ({len(wrong)} in all)",
    )


# --------------------------------------------------------------------------- predict, serve


def decode_pixels(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF bytes of any size -> float32 RGB `[size, size, 3]` in 0-255."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.image.resize(tf.cast(image, tf.float32), [size, size])


def class_names_of(config: Config) -> list[str]:
    if config.class_names:
        return list(json.loads(config.class_names))
    return [str(i) for i in range(config.num_classes)]


def predict_inputs(model: keras.Model, config: Config, paths: list[str]) -> list[str]:
    """One line per image: the path, then the top-k classes and probabilities, tab-separated."""
    names = class_names_of(config)
    k = min(config.top_k, len(names))
    lines = []
    for path in base.expand_image_inputs(paths):
        try:
            pixels = decode_pixels(tf.constant(path.read_bytes()), config.image_size)
        except (tf.errors.InvalidArgumentError, ValueError):
            raise base.UsageError(f"{path}: not a readable PNG/JPEG/BMP/GIF image") from None
        probs = model(pixels[None], training=False).numpy()[0]
        best = np.argsort(-probs, kind="stable")[:k]
        lines.append("\t".join([str(path), *(f"{names[i]}\t{probs[i]:.4f}" for i in best)]))
    return lines


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    size = config.image_size
    k = min(config.top_k, config.num_classes)

    def from_pixels(pixels):
        probabilities = model(pixels, training=False)
        top = tf.math.top_k(probabilities, k=k)
        return {
            "class_ids": tf.argmax(probabilities, axis=-1),
            "probabilities": probabilities,
            "top_k_class_ids": top.indices,
            "top_k_probabilities": top.values,
        }

    def from_bytes(image_bytes):
        pixels = tf.map_fn(
            lambda b: decode_pixels(b, size),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        return from_pixels(pixels)

    return {
        "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "serve_pixels": (
            from_pixels,
            [tf.TensorSpec([None, size, size, 3], tf.float32, name="pixels")],
        ),
    }


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(config.seed)
    size = config.image_size
    # Two sizes show that the bytes signature resizes whatever it is sent.
    images = [rng.integers(0, 256, (s, s + 3, 3), dtype=np.uint8) for s in (size, size + 12)]
    encoded = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    pixels = rng.uniform(0, 255, (3, size, size, 3)).astype(np.float32)
    return {"serving_default": {"image_bytes": encoded}, "serve_pixels": {"pixels": pixels}}
