"""Handwritten digit recognition: classify 0-9 from grayscale images.

Data: scikit-learn's 1,797 8x8 digits by default (`builtin`, offline, resized to the model's
input); `--data mnist` for TFDS MNIST; `--data PATH` for MNIST IDX files or one folder of images
per class. Metric: test accuracy. A good result: about 98-99% on `builtin`, 99% or more on MNIST
(see `benchmarks/digits.py`). Models: `--model cnn` (the default, `i2dl_keras.models.small_cnn`)
or `--model lenet5` (the course's LeNet-5). `--augment` (on) warps training images;
`--color-jitter` adds brightness and contrast changes; `--five-crop` evaluates on five crops.

Input contract: images as a decoder gives them, any size, grey or colour, pixel values 0-255 of
any dtype (white digit on black as in MNIST); the model resizes, converts and scales them itself.

```python
from i2dl_keras.apps import digits

run = digits.train(epochs=3)
run.predict(["my_digit.png"])[0]["label"]
```
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from i2dl_keras.apps import base, loading, plots, predictions, settings, signatures
from i2dl_keras.data import random_affine
from i2dl_keras.data.color_jitter import color_jitter
from i2dl_keras.layers import ClassNames, ImagePreprocessing
from i2dl_keras.layers.ten_crop import TenCrop
from i2dl_keras.losses import SparseCategoricalCrossentropy
from i2dl_keras.models import lenet5, small_cnn

NAME = "digits"
TASK = "image_classification"
TUNING_OBJECTIVE = kt.Objective("val_accuracy", direction="max")
PREDICT_INPUT_HELP = "image files (PNG, JPEG, GIF, BMP, WebP, TIFF), or folders of them"
# `--color-jitter`: brightness shifts of up to 20% of 0-255 and contrast x0.8 to x1.2.
JITTER = {"brightness": 0.2, "contrast": 0.2}
# `--five-crop`: crops of 90% of the side, about the 10% zoom that `--augment` trains with.
CROP_FRACTION = 0.9


@dataclasses.dataclass
class Config(settings.ClassesConfig):
    """Settings of the digit recognizer."""

    epochs: int = settings.option(20, "most training epochs (early stopping may end sooner)")
    batch_size: int = settings.option(128, "examples per batch")
    learning_rate: float = settings.option(2e-3, "initial learning rate (cosine decay to 0)")
    model: str = settings.option("cnn", "architecture", choices=("cnn", "lenet5"))
    image_size: int = settings.option(28, "square input size in pixels")
    width: int = settings.option(
        32, "filters of the first conv layer (the second has twice as many)"
    )
    dropout: float = settings.option(0.4, "dropout before the classifier")
    augment: bool = settings.option(True, "random shifts, rotations and zooms of training batches")
    color_jitter: bool = settings.option(
        False,
        "with --augment, also random brightness (shifts of up to 51 on 0-255) and contrast "
        "(x0.8 to x1.2) of training images",
    )
    five_crop: bool = settings.option(
        False,
        "evaluate on five crops, 0.9 of the side (the corners and the centre), averaging "
        "their probabilities",
    )
    class_weight: str | None = settings.class_weight_option()
    num_classes: int = settings.option(10, "number of classes (set from the data when training)")
    train_examples: int = settings.option(
        0, "training examples per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size < 12:
            raise settings.UsageError(f"--image-size must be at least 12, got {self.image_size}")
        if self.width < 1:
            raise settings.UsageError(f"--width must be at least 1, got {self.width}")
        if not 0 <= self.dropout < 1:
            raise settings.UsageError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.color_jitter and not self.augment:
            raise settings.UsageError("--color-jitter changes training images: it needs --augment")


def make_datasets(config: Config, purpose: str) -> loading.Datasets:
    size = config.image_size

    def preprocess(image, label):
        return signatures.resize_pixels(image, size), tf.cast(label, tf.int32)

    augment = None
    if config.augment:
        jitter = color_jitter(**JITTER, seed=config.seed + 3) if config.color_jitter else None

        def augment(images, labels):
            warped = random_affine(images, rotation=12, zoom=0.1, translation=0.1, seed=config.seed)
            if jitter is not None:
                warped = jitter(warped)
            return warped, labels

    return loading.load_datasets(
        config, TASK, purpose, preprocess=preprocess, augment=augment, channels=1
    )


def build_model(config: Config) -> keras.Model:
    size = config.image_size
    if config.model == "lenet5":
        net = lenet5(input_shape=(size, size, 1), num_classes=config.num_classes)
    else:
        net = small_cnn(
            (size, size, 1), config.num_classes, width=config.width, dropout=config.dropout
        )
    pixels = keras.Input((None, None, None), name="pixels")
    x = ImagePreprocessing(size=(size, size), channels=1, name="preprocessing")(pixels)
    outputs = ClassNames(settings.class_names_of(config), name="class_names")(net(x))
    model = keras.Model(pixels, outputs, name=f"digits_{net.name}")
    # Cosine decay over the planned steps: the course's learning-rate decay without a knob to tune.
    steps_per_epoch = -(-config.train_examples // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * max(1, steps_per_epoch)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    return model


class HyperModel(settings.ConfigHyperModel):
    """Searches architecture width, dropout and learning rate of the digit recognizer."""

    build_model = staticmethod(build_model)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        return dataclasses.replace(
            self.config,
            width=hp.Choice("width", [16, 32, 48]),
            dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
            learning_rate=hp.Float("learning_rate", 1e-3, 1e-2, sampling="log"),
        )


def five_crop_model(model: keras.Model, config: Config) -> keras.Model:
    """`model` averaged over five crops of each `image_size` image, compiled as `model` is.

    The crops (the corners and the centre, `CROP_FRACTION` of the side) are not flipped:
    digits are not mirror-symmetric. The model scales each crop back to its input size.
    """
    size = config.image_size
    pixels = keras.Input((size, size, 1))
    crop = round(CROP_FRACTION * size)
    crops = TenCrop(crop, flip=False, name="five_crop")(pixels)
    outputs = keras.layers.Average(name="average")([model(view) for view in crops])
    averaged = keras.Model(pixels, outputs, name=f"{model.name}_five_crop")
    averaged.compile(loss=SparseCategoricalCrossentropy(), metrics=["accuracy"])
    return averaged


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    if config.five_crop:
        model = five_crop_model(model, config)
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    return {"accuracy": float(results["accuracy"]), "loss": float(results["loss"])}


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
    """The test confusion matrix and the misclassified test images (five-crop when set)."""
    if config.five_crop:
        model = five_crop_model(model, config)
    images, labels, probs = _collect(model, datasets.test)
    predicted = probs.argmax(-1)
    n = len(datasets.class_names)
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    confusion = plots.confusion_matrix_plot(
        matrix,
        datasets.class_names,
        run_dir / "confusion_matrix.png",
        title=f"test confusion matrix (accuracy {np.mean(predicted == labels):.2%})",
    )
    wrong = np.flatnonzero(predicted != labels)[:32]
    misclassified = plots.image_grid(
        images[wrong] / 255.0,
        [
            f"true {datasets.class_names[labels[i]]} / pred {datasets.class_names[predicted[i]]}"
            f" ({probs[i, predicted[i]]:.2f})"
            for i in wrong
        ],
        run_dir / "misclassified.png",
        title=f"misclassified test images ({len(np.flatnonzero(predicted != labels))} in all)",
    )
    return {"confusion_matrix": confusion, "misclassified": misclassified}


predict_inputs = predictions.classify_images


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    def outputs(pixels):
        probabilities = model(pixels, training=False)
        return {"class_ids": tf.argmax(probabilities, axis=-1), "probabilities": probabilities}

    return signatures.image_endpoints(outputs, config.image_size, 1)


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    return signatures.image_check_requests(config.seed, config.image_size, 1)


train, load, tune = base.app_api(__name__)
