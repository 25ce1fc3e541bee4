"""Handwritten digit recognition: classify 0-9 from grayscale images.

Data: scikit-learn's 1,797 8x8 digits by default (`builtin`, offline, resized to the model's
input); `--data mnist` for TFDS MNIST; `--data PATH` for MNIST IDX files or one folder of images
per class. Metric: test accuracy. A good result: about 98-99% on `builtin`, 99% or more on MNIST
(see `benchmarks/digits.py`). Models: `--model cnn` (the default, `i2dl_keras.models.small_cnn`)
or `--model lenet5` (the course's LeNet-5).

The model takes float pixels in [0, 1], white digit on black as in MNIST, `image_size` square
with one channel. The exported SavedModel also takes encoded PNG/JPEG bytes of any size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from apps import base, plots
from i2dl_keras.data import random_affine
from i2dl_keras.losses import SparseCategoricalCrossentropy
from i2dl_keras.models import lenet5, small_cnn

NAME = "digits"
TASK = "image_classification"
TUNING_OBJECTIVE = kt.Objective("val_accuracy", direction="max")
PREDICT_INPUT_HELP = "PNG/JPEG files, or folders of them"


@dataclasses.dataclass
class Config(base.ClassesConfig):
    """Settings of the digit recognizer."""

    epochs: int = base.option(20, "most training epochs (early stopping may end sooner)")
    batch_size: int = base.option(128, "examples per batch")
    learning_rate: float = base.option(2e-3, "initial learning rate (cosine decay to 0)")
    model: str = base.option("cnn", "architecture", choices=("cnn", "lenet5"))
    image_size: int = base.option(28, "square input size in pixels")
    width: int = base.option(32, "filters of the first conv layer (the second has twice as many)")
    dropout: float = base.option(0.4, "dropout before the classifier")
    augment: bool = base.option(True, "random shifts, rotations and zooms of training batches")
    num_classes: int = base.option(10, "number of classes (set from the data when training)")
    train_examples: int = base.option(
        0, "training examples per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size < 12:
            raise base.UsageError(f"--image-size must be at least 12, got {self.image_size}")
        if self.width < 1:
            raise base.UsageError(f"--width must be at least 1, got {self.width}")
        if not 0 <= self.dropout < 1:
            raise base.UsageError(f"--dropout must be in [0, 1), got {self.dropout}")


def to_pixels(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 `[H, W, 1]` image -> float32 `[size, size, 1]` in [0, 1]."""
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def decode_pixels(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF bytes of any size -> float32 `[size, size, 1]` in [0, 1]."""
    image = tf.io.decode_image(encoded, channels=1, expand_animations=False)
    image.set_shape([None, None, 1])
    return to_pixels(image, size)


def make_datasets(config: Config, purpose: str) -> base.Datasets:
    size = config.image_size

    def preprocess(image, label):
        return to_pixels(image, size), tf.cast(label, tf.int32)

    augment = None
    if config.augment:

        def augment(images, labels):
            warped = random_affine(images, rotation=12, zoom=0.1, translation=0.1, seed=config.seed)
            return warped, labels

    return base.load_datasets(
        config, TASK, purpose, preprocess=preprocess, augment=augment, channels=1
    )


def build_model(config: Config) -> keras.Model:
    shape = (config.image_size, config.image_size, 1)
    if config.model == "lenet5":
        model = lenet5(input_shape=shape, num_classes=config.num_classes)
    else:
        model = small_cnn(shape, config.num_classes, width=config.width, dropout=config.dropout)
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


class HyperModel(base.ConfigHyperModel):
    """Searches architecture width, dropout and learning rate of the digit recognizer."""

    build_model = staticmethod(build_model)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        return dataclasses.replace(
            self.config,
            width=hp.Choice("width", [16, 32, 48]),
            dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
            learning_rate=hp.Float("learning_rate", 1e-3, 1e-2, sampling="log"),
        )


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
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
    run_dir: Path, model: keras.Model, datasets: base.Datasets, config, result: base.FitResult
) -> None:
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
    wrong = np.flatnonzero(predicted != labels)[:32]
    plots.image_grid(
        images[wrong],
        [
            f"true {datasets.class_names[labels[i]]} / pred {datasets.class_names[predicted[i]]}"
            f" ({probs[i, predicted[i]]:.2f})"
            for i in wrong
        ],
        run_dir / "misclassified.png",
        title=f"misclassified test images ({len(np.flatnonzero(predicted != labels))} in all)",
    )


def predict_inputs(model: keras.Model, config: Config, paths: list[str]) -> list[str]:
    class_names = base.class_names_of(config)
    lines = []
    for path in base.expand_image_inputs(paths):
        try:
            pixels = decode_pixels(tf.constant(path.read_bytes()), config.image_size)
        except (tf.errors.InvalidArgumentError, ValueError):
            raise base.UsageError(f"{path}: not a readable PNG/JPEG/BMP/GIF image") from None
        probs = model(pixels[None], training=False).numpy()[0]
        best = int(probs.argmax())
        lines.append(f"{path}\t{class_names[best]}\t{probs[best]:.4f}")
    return lines


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    size = config.image_size

    def from_pixels(pixels):
        probabilities = model(pixels, training=False)
        return {"class_ids": tf.argmax(probabilities, axis=-1), "probabilities": probabilities}

    def from_bytes(image_bytes):
        pixels = tf.map_fn(
            lambda b: decode_pixels(b, size),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, 1], tf.float32),
        )
        return from_pixels(pixels)

    return {
        "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "serve_pixels": (
            from_pixels,
            [tf.TensorSpec([None, size, size, 1], tf.float32, name="pixels")],
        ),
    }


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(config.seed)
    size = config.image_size
    # Two different sizes show that the bytes signature resizes whatever it is sent.
    images = [rng.integers(0, 256, (s, s, 1), dtype=np.uint8) for s in (size, size + 12)]
    encoded = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    pixels = rng.random((3, size, size, 1), dtype=np.float32)
    return {"serving_default": {"image_bytes": encoded}, "serve_pixels": {"pixels": pixels}}
