"""Transfer learning: reuse a pretrained backbone, train a new head on it, then fine-tune its top.

The course's recipe: freeze a `keras.applications` backbone and train only a new classifier head
on it (stage 1, `--head-epochs` at `--learning-rate`), then unfreeze its top `--unfreeze` blocks
and fine-tune them with a much smaller rate (stage 2, `--epochs` at `--fine-tune-lr`), optionally
smaller still for lower blocks (`--lr-layer-decay`). BatchNormalization stays frozen, so the small
target data never replaces the statistics learned on the source. Validation metrics after each
stage are saved in `stages.json`.

Backbones: `--backbone mobilenet_v2` (default) and the others of `i2dl_keras.models.BACKBONES`,
or `small_cnn` for small images. Weights: `--weights imagenet` (cached in `$KERAS_HOME/models`,
default `~/.keras`; offline, the error names the file to place there), `--weights FILE` or
`--weights none`; `--pretrain-on SPEC` first trains the backbone on another labelled source.
Data: `--data tf_flowers` (default), `cats_vs_dogs`, a folder of one subfolder per class, or
`synthetic`; `--classes` keeps some classes and `--labels-per-class N` a few labels of each.
`--augment` (on) flips, rotates and zooms training images; `--color-jitter` adds brightness,
contrast and saturation changes; `--ten-crop` evaluates on ten crops.

Metric: test accuracy (and top-5 accuracy with 5 or more classes). Expect about 90% on
tf_flowers with MobileNetV2 and ImageNet weights (see `benchmarks/transfer.py` for the offline
MNIST measurement).

Input contract: images as a decoder gives them, any size, grey or colour, pixel values 0-255 of
any dtype; the model converts them to RGB, squashes them to `image_size` and preprocesses them.

```python
from i2dl_keras.apps import transfer

run = transfer.train(data="my_photos/", epochs=3)
run.predict(["photo.jpg"])[0]["label"]
```
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from i2dl_keras.apps import base, loading, plots, predictions, settings, signatures
from i2dl_keras.data import DataError
from i2dl_keras.data import selection as data_selection
from i2dl_keras.data.color_jitter import color_jitter
from i2dl_keras.layers import ClassNames, ImagePreprocessing
from i2dl_keras.layers.ten_crop import TenCrop
from i2dl_keras.losses import SparseCategoricalCrossentropy
from i2dl_keras.models import (
    BACKBONES,
    attach_head,
    backbones,
    imagenet_weights_file,
    learning_rate_multipliers,
    preprocessing_layers,
    unfreeze_top,
)
from i2dl_keras.optimizers import LayerwiseAdam

NAME = "transfer"
TASK = "image_classification"
TUNING_OBJECTIVE = kt.Objective("val_accuracy", direction="max")
PREDICT_INPUT_HELP = "image files (PNG, JPEG, GIF, BMP, WebP, TIFF), or folders of them"
# `--color-jitter`: brightness shifts of up to 20% of 0-255, contrast x0.8 to x1.2, saturation
# x2/3 to x1.5.
JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.5}
# `--ten-crop`: crops of 90% of the side, about the 10% zoom that `--augment` trains with.
CROP_FRACTION = 0.9
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
# The name of the nested network (preprocessing, backbone, head) inside the model.
CLASSIFIER = "classifier"
# In the run's backup folder: stage 1's progress per epoch, then its final record.
STAGE1_PROGRESS = "stage1_progress.weights.h5"
STAGE1_LOG = "stage1_log.csv"
STAGE1_RECORD = "stage1.json"
STAGE1_WEIGHTS = "stage1_weights.npz"


@dataclasses.dataclass
class Config(settings.ClassesConfig):
    """Settings of the transfer-learning classifier."""

    data: str = settings.option(
        "tf_flowers", "data source: a TFDS name (tf_flowers, cats_vs_dogs), a folder, synthetic"
    )
    epochs: int = settings.option(
        10, "most fine-tuning epochs (stage 2; early stopping may end it)"
    )
    batch_size: int = settings.option(32, "examples per batch")
    learning_rate: float = settings.option(
        1e-3, "learning rate of the head while the backbone is frozen (stage 1) and of pretraining"
    )
    backbone: str = settings.option("mobilenet_v2", "pretrained network", choices=tuple(BACKBONES))
    weights: str = settings.option(
        "imagenet", "backbone weights: imagenet, none, or a .h5 / .weights.h5 file"
    )
    alpha: float = settings.option(1.0, "width multiplier of the MobileNets")
    image_size: int = settings.option(160, "square input size in pixels (images are resized)")
    head_pool: str = settings.option(
        "avg",
        "how the head reads the feature map: global average (any backbone) or flatten (keeps "
        "where features are; for small inputs such as digits)",
        choices=("avg", "flatten"),
    )
    head_width: int = settings.option(0, "units of a hidden dense layer in the head (0: no layer)")
    dropout: float = settings.option(0.2, "dropout before the classifier")
    head_epochs: int = settings.option(10, "most epochs of stage 1 (backbone frozen; 0: skip)")
    unfreeze: int = settings.option(
        3, "top blocks (or layers) of the backbone fine-tuned in stage 2 (0: none, -1: all)"
    )
    unfreeze_unit: str = settings.option(
        "blocks", "what --unfreeze counts", choices=("blocks", "layers")
    )
    fine_tune_lr: float = settings.option(1e-5, "learning rate of stage 2")
    lr_layer_decay: float = settings.option(
        1.0, "discriminative rates: each lower unfrozen block learns this times slower (1: off)"
    )
    augment: bool = settings.option(True, "random flips, rotations and zooms of training batches")
    flip: bool = settings.option(True, "random horizontal flips (turn off for digits and text)")
    color_jitter: bool = settings.option(
        False,
        "with --augment, also random brightness (shifts of up to 51 on 0-255), contrast "
        "(x0.8 to x1.2) and saturation (x2/3 to x1.5) of training images",
    )
    class_weight: str | None = settings.class_weight_option()
    ten_crop: bool = settings.option(
        False,
        "evaluate on ten crops, 0.9 of the side (the corners, the centre and their mirror "
        "images; five without --flip), averaging their probabilities",
    )
    classes: list[str] | None = settings.option(
        None, "keep only these classes (names or ids, comma-separated); all when not given"
    )
    labels_per_class: int = settings.option(
        0, "keep this many labelled training examples per class (0: all)"
    )
    pretrain_on: str | None = settings.option(
        None, "first pretrain the backbone on this labelled source (a --data spec)"
    )
    pretrain_classes: list[str] | None = settings.option(
        None, "classes of --pretrain-on to use (names or ids, comma-separated); all when not given"
    )
    pretrain_epochs: int = settings.option(10, "most pretraining epochs")
    top_k: int = settings.option(3, "classes that predict prints per input")
    num_classes: int = settings.option(5, "number of classes (set from the data when training)")

    def validate(self) -> None:
        super().validate()
        spec = BACKBONES[self.backbone]
        if self.image_size < spec.min_size:
            raise settings.UsageError(
                f"--image-size must be at least {spec.min_size} for --backbone {self.backbone}, "
                f"got {self.image_size}"
            )
        if spec.has_alpha and self.alpha <= 0:
            raise settings.UsageError(f"--alpha must be positive, got {self.alpha}")
        weights = self.weights.strip()
        if weights.lower() == "imagenet":
            if spec.application is None:
                raise settings.UsageError(
                    f"--weights imagenet: there are no ImageNet weights for --backbone "
                    f"{self.backbone}; pass --weights none (optionally with --pretrain-on SPEC) "
                    "or --weights FILE"
                )
            try:
                imagenet_weights_file(self.backbone, self.image_size, self.alpha)
            except ValueError as err:
                raise settings.UsageError(f"--weights imagenet: {err}") from None
        elif weights.lower() != "none":
            if not weights.endswith(".h5"):
                raise settings.UsageError(
                    f"--weights {weights}: expected imagenet, none, or a .h5 / .weights.h5 file "
                    "of backbone weights"
                )
            if not Path(weights).expanduser().is_file():
                raise settings.UsageError(f"--weights {weights}: no such file")
        if self.color_jitter and not self.augment:
            raise settings.UsageError("--color-jitter changes training images: it needs --augment")
        if self.head_width < 0:
            raise settings.UsageError(f"--head-width must be 0 or more, got {self.head_width}")
        if not 0 <= self.dropout < 1:
            raise settings.UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.head_epochs < 0:
            raise settings.UsageError(f"--head-epochs must be 0 or more, got {self.head_epochs}")
        if self.unfreeze < -1:
            raise settings.UsageError(
                f"--unfreeze must be -1 (all), 0 or more, got {self.unfreeze}"
            )
        if self.head_epochs == 0 and self.unfreeze == 0:
            raise settings.UsageError(
                "--head-epochs 0 with --unfreeze 0 trains nothing: give the head epochs or "
                "unfreeze part of the backbone"
            )
        if self.fine_tune_lr <= 0:
            raise settings.UsageError(f"--fine-tune-lr must be positive, got {self.fine_tune_lr}")
        if not 0 < self.lr_layer_decay <= 1:
            raise settings.UsageError(
                f"--lr-layer-decay must be in (0, 1] (1 turns it off), got {self.lr_layer_decay}"
            )
        if self.labels_per_class < 0:
            raise settings.UsageError(
                f"--labels-per-class must be 0 (all) or more, got {self.labels_per_class}"
            )
        if self.pretrain_epochs < 1:
            raise settings.UsageError(
                f"--pretrain-epochs must be at least 1, got {self.pretrain_epochs}"
            )
        if self.top_k < 1:
            raise settings.UsageError(f"--top-k must be at least 1, got {self.top_k}")
        for flag, tokens in (
            ("--classes", self.classes),
            ("--pretrain-classes", self.pretrain_classes),
        ):
            if tokens and len(set(tokens)) != len(tokens):
                raise settings.UsageError(f"{flag} {','.join(tokens)}: names a class twice")
            if tokens is not None and len(tokens) == 1:
                raise settings.UsageError(f"{flag} {','.join(tokens)}: keep at least two classes")


# --------------------------------------------------------------------------- data


def _selector(config: Config, purpose: str, flag: str) -> Callable:
    """Keeps `config.classes` and, for training, `labels_per_class` labels of each.

    When the source has no test split, one is held out of the whole source first, so the test
    examples are not a share of the few labelled ones.
    """
    per_class = config.labels_per_class if purpose == "train" else 0

    def select(source):
        if per_class:
            source = data_selection.hold_out_test(source, config.test_fraction, config.seed)
        if config.classes:
            try:
                source = data_selection.select_classes(source, config.classes)
            except DataError as err:
                raise DataError(f"{flag}: {err}") from None
        if per_class:
            source = data_selection.sample_per_class(source, per_class, config.seed)
        return source

    return select


def load_datasets(
    config: Config,
    purpose: str,
    preprocess: Callable,
    augment: Callable | None,
    flag: str = "--classes",
) -> loading.Datasets:
    """`loading.load_datasets` with the class selection between loading and splitting."""
    size = config.image_size
    return loading.load_datasets(
        config,
        TASK,
        purpose,
        preprocess=preprocess,
        augment=augment,
        image_size=(size, size),
        channels=3,
        select=_selector(config, purpose, flag),
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
    jitter = color_jitter(**JITTER, seed=config.seed + 3) if config.color_jitter else None

    def augment(images, labels):
        for layer in layers:
            images = layer(images, training=True)
        if jitter is not None:
            images = jitter(images)
        return images, labels

    return augment


def make_datasets(config: Config, purpose: str) -> loading.Datasets:
    return load_datasets(config, purpose, _to_float, _augmenter(config))


# --------------------------------------------------------------------------- model


def build_backbone(config: Config) -> keras.Model:
    """The backbone named `"backbone"`, with the weights `config.weights` asks for."""
    weights = config.weights.strip()
    size = config.image_size
    chosen = {"none": None, "imagenet": "imagenet"}.get(weights.lower(), weights)
    try:
        return backbones.build_backbone(config.backbone, (size, size, 3), chosen, config.alpha)
    except DataError as err:
        hint = (
            "; or pass the file as --weights FILE, or use --weights none or --pretrain-on SPEC"
            if chosen == "imagenet"
            else ""
        )
        raise settings.UsageError(f"--weights {weights}: {err}{hint}") from None


def classifier(
    backbone: keras.Model,
    config: Config,
    num_classes: int,
    training: bool | None = False,
    prefix: str = "head_",
    name: str = "classifier",
) -> keras.Model:
    """RGB pixels (0-255, `image_size` square) -> the backbone's preprocessing -> `backbone` ->
    the head `config` describes.

    `training=False` for the transfer model, `None` for ordinary training (pretraining and
    from-scratch baselines).
    """
    return attach_head(
        backbone,
        num_classes,
        preprocessing_layers(config.backbone),
        pool=config.head_pool,
        hidden_units=config.head_width,
        dropout=config.dropout,
        training=training,
        prefix=prefix,
        name=name,
    )


def _metrics(num_classes: int) -> list:
    metrics: list = ["accuracy"]
    if num_classes >= 5:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5_accuracy"))
    return metrics


def build_model(config: Config) -> keras.Model:
    """Raw pixels -> RGB at `image_size` -> the `classifier` -> `ClassNames`, in its stage-1
    state: backbone frozen, compiled at `learning_rate`.

    The classifier is a nested model named `"classifier"`; `backbone_of(model)` finds the
    backbone inside it.
    """
    size = config.image_size
    backbone = build_backbone(config)
    net = classifier(backbone, config, config.num_classes, False, "head_", CLASSIFIER)
    backbone.trainable = False
    pixels = keras.Input((None, None, None), name="pixels")
    # The backbone's own preprocessing layers inside `net` expect 0-255: no scaling here.
    x = ImagePreprocessing(size=(size, size), channels=3, scale=1.0, name="preprocessing")(pixels)
    outputs = ClassNames(settings.class_names_of(config), name="class_names")(net(x))
    model = keras.Model(pixels, outputs, name=f"transfer_{config.backbone}")
    compile_stage(model, config, 1)
    return model


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone (the layer named `"backbone"`) of a model `build_model` built."""
    return model.get_layer(CLASSIFIER).get_layer("backbone")


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


# --------------------------------------------------------------------------- stages


def _backup(callbacks) -> keras.callbacks.BackupAndRestore | None:
    return next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)


def _backup_epoch(backup: keras.callbacks.BackupAndRestore | None) -> int:
    """The epoch `backup` resumes from: what its `training_metadata.json` records, else 0."""
    if backup is None:
        return 0
    path = Path(backup.backup_dir) / "training_metadata.json"
    return int(json.loads(path.read_text())["epoch"]) if path.is_file() else 0


def _stage1_callbacks(callbacks: list, state_dir: Path | None) -> list:
    """Stage 1's callbacks: a weights checkpoint and a log per epoch in place of the backup.

    `BackupAndRestore` would make `fit` start stage 2 from stage 1's resumed epoch; the
    checkpoint and log let a rerun resume stage 1 with an explicit `initial_epoch` instead.
    """
    kept = [c for c in callbacks if not isinstance(c, keras.callbacks.BackupAndRestore)]
    if state_dir is None or len(kept) == len(callbacks):
        return kept
    state_dir.mkdir(parents=True, exist_ok=True)
    index = next(
        i for i, c in enumerate(callbacks) if isinstance(c, keras.callbacks.BackupAndRestore)
    )
    own = [
        keras.callbacks.ModelCheckpoint(str(state_dir / STAGE1_PROGRESS), save_weights_only=True),
        keras.callbacks.CSVLogger(str(state_dir / STAGE1_LOG), append=True),
    ]
    return kept[:index] + own + kept[index:]


def _stage1_progress(model: keras.Model, state_dir: Path | None) -> tuple[int, dict]:
    """Epochs of stage 1 finished before an interruption and their history; loads their weights."""
    if state_dir is None:
        return 0, {}
    log, weights = state_dir / STAGE1_LOG, state_dir / STAGE1_PROGRESS
    if not (log.is_file() and weights.is_file()):
        return 0, {}
    with log.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return 0, {}
    model.optimizer.build(model.trainable_variables)  # so its state loads too
    model.load_weights(weights)
    history = {k: [float(row[k]) for row in rows] for k in rows[0] if k != "epoch"}
    return int(rows[-1]["epoch"]) + 1, history


def _load_stage1(model: keras.Model, state_dir: Path | None):
    if state_dir is None or not (state_dir / STAGE1_RECORD).is_file():
        return None
    record = json.loads((state_dir / STAGE1_RECORD).read_text())
    with np.load(state_dir / STAGE1_WEIGHTS) as saved:
        model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    return record["history"], int(record["end_epoch"]), record["report"]


def _save_stage1(model, state_dir: Path, history: dict, end_epoch: int, report: dict) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    np.savez(state_dir / STAGE1_WEIGHTS, *model.get_weights())
    tmp = state_dir / (STAGE1_RECORD + ".tmp")
    tmp.write_text(json.dumps({"history": history, "end_epoch": end_epoch, "report": report}))
    os.replace(tmp, state_dir / STAGE1_RECORD)  # written last: it marks stage 1 as finished


def _report_stage(model, validation, what: str, epochs: int, report) -> dict:
    result = model.evaluate(validation, return_dict=True, verbose=0) if validation else {}
    entry = {
        "stage": what,
        "epochs_run": epochs,
        "validation": {k: float(v) for k, v in result.items()},
    }
    if report is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in entry["validation"].items())
        report(f"{what}: {epochs} epoch(s); validation {shown}")
    return entry


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
    report: Callable[[str], None] | None = print,
    class_weight: dict[int, float] | None = None,
) -> base.FitResult:
    """Stage 1 (head only) then stage 2 (top of the backbone), one epoch count across both.

    Stage 1 runs epochs `[0, head_epochs)` with the backbone frozen; stage 2 runs from where
    stage 1 ended (early stopping may end it sooner) for `config.epochs` epochs, or up to
    `end_epoch` when given (the tuner's budget); `initial_epoch` skips what an earlier trial
    trained. With a `BackupAndRestore` among `callbacks`, a rerun after an interruption resumes
    the stage it interrupted: stage 1 from its own checkpoint, stage 2 from the backup.

    Returns:
        The `FitResult`: metric -> values over the epochs run in both stages, the number of
        epochs after which stage 1 ended (none when only one stage ran), and each stage's
        validation metrics as `stages`.
    """
    callbacks = list(callbacks)
    backup = _backup(callbacks)
    state_dir = Path(backup.backup_dir) / "stages" if backup is not None else None
    backbone = backbone_of(model)
    stages: list[dict] = []
    history1: dict = {}
    resumed = _load_stage1(model, state_dir)
    if resumed is not None:
        history1, stage1_end, entry = resumed
        stages.append(entry)
        if report is not None:
            report(f"stage 1 finished before the interruption (epoch {stage1_end}); resuming")
    elif initial_epoch < config.head_epochs and (end_epoch is None or end_epoch > initial_epoch):
        backbone.trainable = False
        compile_stage(model, config, 1)
        done, earlier = _stage1_progress(model, state_dir)
        start = max(initial_epoch, done)
        if done and report is not None:
            report(f"resuming stage 1 after epoch {done}")
        result = model.fit(
            train,
            validation_data=validation,
            epochs=min(config.head_epochs, end_epoch or config.head_epochs),
            initial_epoch=start,
            callbacks=_stage1_callbacks(callbacks, state_dir),
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
            class_weight=class_weight,
        )
        ran = result.history
        keys = list(dict.fromkeys([*earlier, *ran]))
        history1 = {k: earlier.get(k, []) + ran.get(k, []) for k in keys}
        stage1_end = start + len(ran.get("loss", []))
        entry = _report_stage(
            model, validation, "stage 1 (head only, backbone frozen)", stage1_end, report
        )
        stages.append(entry)
        if config.unfreeze and state_dir is not None:
            _save_stage1(model, state_dir, history1, stage1_end, entry)
    else:
        stage1_end = initial_epoch
    history2: dict = {}
    stop = end_epoch if end_epoch is not None else stage1_end + config.epochs
    if config.unfreeze and stop > stage1_end:
        chosen = unfreeze_top(backbone, config.unfreeze, config.unfreeze_unit)
        compile_stage(model, config, 2, chosen)
        # BackupAndRestore resumes an interrupted stage 2 from the epoch its metadata records.
        start = max(stage1_end, _backup_epoch(backup))
        history2 = model.fit(
            train,
            validation_data=validation,
            epochs=stop,
            initial_epoch=start,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, seeded
            class_weight=class_weight,
        ).history
        # Epochs of stage 2 in all: those before an interruption, then those run here.
        ran2 = start - stage1_end + len(history2.get("loss", []))
        layers = sum(len(unit) for unit in chosen)
        what = (
            f"stage 2 (fine-tuning the top {len(chosen)} {config.unfreeze_unit} = {layers} "
            f"layers at {config.fine_tune_lr:g}"
            + (f", x{config.lr_layer_decay:g} per block down" if config.lr_layer_decay < 1 else "")
            + ")"
        )
        stages.append(_report_stage(model, validation, what, ran2, report))
    keys = list(dict.fromkeys([*history1, *history2]))
    history = {k: [float(v) for v in history1.get(k, []) + history2.get(k, [])] for k in keys}
    ran1 = len(history1.get("loss", []))
    boundaries = [ran1] if ran1 and history2 else []
    return base.FitResult(history, boundaries, stages)


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
    datasets = load_datasets(
        source_config, "train", _to_float, _augmenter(source_config), "--pretrain-classes"
    )
    if report is not None:
        report(
            f"pretraining the {config.backbone} backbone on {datasets.source_name} "
            f"({len(datasets.class_names)} classes; "
            + ", ".join(f"{k} {v:,}" for k, v in datasets.num_examples.items())
            + ")"
        )
    backbone = backbone_of(model)
    net = train_classifier(backbone, datasets, config, config.pretrain_epochs, verbose)
    result = net.evaluate(datasets.test, return_dict=True, verbose=0)
    metrics = {k: float(v) for k, v in result.items()}
    if report is not None:
        report("pretraining test " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    backbone.trainable = False
    return metrics, net


def train_classifier(
    backbone: keras.Model,
    datasets: loading.Datasets,
    config: Config,
    epochs: int,
    verbose: Any = 0,
) -> keras.Model:
    """Trains `backbone` whole with a new head on `datasets` (BN in training mode); returns it.

    This is how `pretrain` trains on the source, and how a from-scratch baseline is trained.
    """
    net = classifier(backbone, config, len(datasets.class_names), None, "pretrain_", "pretraining")
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
        callbacks=[base.BuildOptimizer(), base.early_stopping(config)],
        verbose=verbose,
        shuffle=False,
    )
    return net


def fit(model, datasets, config, callbacks, verbose) -> base.FitResult:
    """The `fit` hook of `apps.base.train`: optional pretraining, then the two stages.

    The work folder of the run (the parent of the `BackupAndRestore` folder) receives the
    pretrained backbone, so that a rerun after an interruption does not pretrain again.
    """
    backup = _backup(callbacks)
    stage1_done = (
        backup is not None and (Path(backup.backup_dir) / "stages" / STAGE1_RECORD).is_file()
    )
    if config.pretrain_on and not stage1_done:
        saved = Path(backup.backup_dir).parent / PRETRAINED_FILE if backup is not None else None
        backbone = backbone_of(model)
        if saved is not None and saved.is_file():
            print(f"using the backbone pretrained before the interruption ({saved})")
            backbone.load_weights(saved)
        else:
            pretrain(model, config, verbose)
            if saved is not None:
                backbone.save_weights(saved)
                print(f"pretrained backbone saved as {PRETRAINED_FILE} (reuse: --weights FILE)")
    return train_stages(
        model,
        datasets.train,
        datasets.validation,
        config,
        callbacks,
        verbose,
        class_weight=datasets.class_weight,
    )


class HyperModel(settings.ConfigHyperModel):
    """Searches head width, dropout, unfreeze depth and both learning rates.

    `fit` runs both stages: `--head-epochs` of head training, then fine-tuning up to the
    tuner's epoch budget (`--max-epochs`), so pass `--head-epochs` below `--max-epochs`.
    """

    build_model = staticmethod(build_model)

    def __init__(self, config: Config | None = None, **kwargs):
        if config is not None and config.pretrain_on:
            raise settings.UsageError(
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
        fitted = train_stages(
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
        result.history = fitted.history
        result.epoch = list(range(len(fitted.history.get("loss", []))))
        return result


# --------------------------------------------------------------------------- metrics, report


def ten_crop_model(model: keras.Model, config: Config) -> keras.Model:
    """`model` averaged over ten crops of each `image_size` image, compiled as `model` is.

    The crops are the corners and the centre, `CROP_FRACTION` of the side, and their mirror
    images (these only with `config.flip`); the model scales each crop back to its input size.
    """
    size = config.image_size
    pixels = keras.Input((size, size, 3))
    crop = round(CROP_FRACTION * size)
    crops = TenCrop(crop, flip=config.flip, name="ten_crop")(pixels)
    outputs = keras.layers.Average(name="average")([model(view) for view in crops])
    averaged = keras.Model(pixels, outputs, name=f"{model.name}_ten_crop")
    averaged.compile(loss=SparseCategoricalCrossentropy(), metrics=_metrics(config.num_classes))
    return averaged


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    if config.ten_crop:
        model = ten_crop_model(model, config)
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


def write_report(
    run_dir: Path, model: keras.Model, datasets: loading.Datasets, config, result: base.FitResult
) -> dict:
    """The test confusion matrix and the misclassified test images (ten-crop when set)."""
    if config.ten_crop:
        model = ten_crop_model(model, config)
    images, labels, probs = _collect(model, datasets.test)
    predicted = probs.argmax(-1)
    names = settings.class_names_of(config)
    n = len(names)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    confusion = plots.confusion_matrix_plot(
        matrix,
        names,
        run_dir / "confusion_matrix.png",
        title=f"test confusion matrix (accuracy {np.mean(predicted == labels):.2%})",
    )
    wrong = np.flatnonzero(predicted != labels)
    misclassified = plots.image_grid(
        np.clip(images[wrong[:32]] / 255.0, 0.0, 1.0),
        [
            f"true {names[labels[i]]} / pred {names[predicted[i]]} ({probs[i, predicted[i]]:.2f})"
            for i in wrong[:32]
        ],
        run_dir / "misclassified.png",
        title=f"misclassified test images ({len(wrong)} in all)",
    )
    return {"confusion_matrix": confusion, "misclassified": misclassified}


# --------------------------------------------------------------------------- predict, serve


def describe_predictions(run: base.Run, results: list[dict]) -> list[str]:
    """One line per input: the input, then the `top_k` classes and their probabilities, most
    likely first, tab-separated."""
    k = min(run.config.top_k, len(run.class_names))
    lines = []
    for result in results:
        # A stable sort: classes of equal probability keep their class-id order.
        ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])[:k]
        lines.append("\t".join([result["input"], *(f"{n}\t{p:.4f}" for n, p in ranked)]))
    return lines


predict_inputs = predictions.classify_images


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    k = min(config.top_k, config.num_classes)

    def outputs(pixels):
        probabilities = model(pixels, training=False)
        top = tf.math.top_k(probabilities, k=k)
        return {
            "class_ids": tf.argmax(probabilities, axis=-1),
            "probabilities": probabilities,
            "top_k_class_ids": top.indices,
            "top_k_probabilities": top.values,
        }

    return signatures.image_endpoints(outputs, config.image_size, 3)


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    return signatures.image_check_requests(config.seed, config.image_size, 3)


train, load, tune = base.app_api(__name__)
