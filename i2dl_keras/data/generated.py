"""Offline sources: `builtin` (data shipped with scikit-learn) and `synthetic` (generated, seeded).

The synthetic sets are small and learnable on purpose: a model that cannot beat chance on them
has a bug, which makes them the data of the apps' smoke tests.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from i2dl_keras.data import images as image_utils
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import ReadOptions, Source

SYNTHETIC_IMAGE_CLASSES = ["horizontal", "vertical", "diagonal", "square"]
SYNTHETIC_SEGMENTATION_CLASSES = ["background", "shape"]
SYNTHETIC_TEXT_CLASSES = ["neg", "pos"]

_POSITIVE = (
    "good great excellent wonderful enjoyable brilliant moving funny charming superb "
    "delightful gripping"
).split()
_NEGATIVE = (
    "bad awful boring dull terrible poor tedious mediocre weak disappointing clumsy bland"
).split()
_FILLER = (
    "the film movie plot story was is a and with acting characters it this really quite "
    "ending script director cast of scenes"
).split()

_BUILTIN_ALTERNATIVES = {
    "segmentation": (
        "--data synthetic for generated shapes, --data oxford_iiit_pet (TFDS), or --data PATH to "
        "a folder with image/ and label/ subfolders (e.g. the membrane data)"
    ),
    "text_classification": (
        "--data synthetic for generated sentences, --data imdb_reviews (TFDS), or --data PATH to "
        "text files (e.g. rt-polarity.pos/.neg), class folders or a CSV"
    ),
}


def _finish_images(images: np.ndarray, options: ReadOptions, notes: list[str], what: str):
    if options.image_size is not None and tuple(images.shape[1:3]) != options.image_size:
        h, w = options.image_size
        notes.append(f"resized the {what} from {images.shape[1]}x{images.shape[2]} to {h}x{w}")
        images = image_utils.resize_array_images(images, options.image_size)
    return image_utils.set_channels(images, options.channels)


def load_builtin(task: str, options: ReadOptions) -> Source:
    """scikit-learn's 1,797 8x8 digits, scaled from 0..16 to 0..255 (`uint8 [8, 8, 1]`)."""
    if task != "image_classification":
        raise DataError(f"There is no builtin data for {task}: pass {_BUILTIN_ALTERNATIVES[task]}")
    from sklearn.datasets import load_digits  # scikit-learn is slow to import: only when asked

    digits = load_digits()
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    notes: list[str] = []
    images = _finish_images(images, options, notes, "8x8 digits")
    labels = digits.target.astype(np.int64)
    return Source(
        name="scikit-learn's 1,797 8x8 digits (builtin)",
        task=task,
        train=tf.data.Dataset.from_tensor_slices((images, labels)),
        test=None,
        class_names=[str(i) for i in range(10)],
        num_examples={"train": len(labels)},
        notes=notes,
    )


def _pattern(kind: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Where class `kind` is bright: stripes in three directions, or a square near the centre.

    Stripes keep a fixed phase and the square moves by at most one pixel, so each class is a
    template plus noise: easy for any model, even a linear one, as smoke-test data should be.
    """
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    period = max(2, min(h, w) // 4)
    if kind == 0:
        return y % period < period / 2
    if kind == 1:
        return x % period < period / 2
    if kind == 2:
        return (x + y) % period < period / 2
    side = max(2, min(h, w) // 2)
    top = np.clip((h - side) // 2 + rng.integers(-1, 2), 0, h - side)
    left = np.clip((w - side) // 2 + rng.integers(-1, 2), 0, w - side)
    return (y >= top) & (y < top + side) & (x >= left) & (x < left + side)


def synthetic_images(seed: int, size=(16, 16), train_per_class=40, test_per_class=10):
    """Patterned images (stripes in three directions, a square) with noise, and their labels."""
    rng = np.random.default_rng([seed, 1])
    splits = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = np.repeat(np.arange(len(SYNTHETIC_IMAGE_CLASSES)), per_class)
        rng.shuffle(labels)
        images = np.empty((len(labels), size[0], size[1], 1), dtype=np.uint8)
        for i, label in enumerate(labels):
            on = _pattern(int(label), size, rng)
            pixels = np.where(on, 190.0, 50.0) + rng.normal(0.0, 25.0, size)
            images[i, :, :, 0] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        splits[split] = (images, labels.astype(np.int64))
    return splits


def synthetic_segmentation(seed: int, size=(16, 16), n_train=48, n_test=16):
    """Images of one to three bright rectangles or discs on a dark background, with exact masks."""
    rng = np.random.default_rng([seed, 2])
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    splits = {}
    for split, count in (("train", n_train), ("test", n_test)):
        images = np.empty((count, h, w, 1), dtype=np.uint8)
        masks = np.zeros((count, h, w), dtype=np.uint8)
        for i in range(count):
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                ry = rng.uniform(0.12, 0.3) * h
                rx = rng.uniform(0.12, 0.3) * w
                if rng.random() < 0.5:
                    shape = (np.abs(y - cy) <= ry) & (np.abs(x - cx) <= rx)
                else:
                    shape = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
                masks[i][shape] = 1
            pixels = np.where(masks[i] == 1, 180.0, 60.0) + rng.normal(0.0, 20.0, size)
            images[i, :, :, 0] = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        splits[split] = (images, masks)
    return splits


def synthetic_text(seed: int, n_train=160, n_test=40):
    """Sentences of filler words with one to three positive or negative words; labels 0/1."""
    rng = np.random.default_rng([seed, 3])
    splits = {}
    for split, count in (("train", n_train), ("test", n_test)):
        labels = np.arange(count) % 2
        rng.shuffle(labels)
        texts = []
        for label in labels:
            words = list(rng.choice(_FILLER, size=rng.integers(4, 10)))
            for _ in range(rng.integers(1, 4)):
                word = rng.choice(_POSITIVE if label == 1 else _NEGATIVE)
                words.insert(int(rng.integers(0, len(words) + 1)), word)
            texts.append(" ".join(str(word) for word in words))
        splits[split] = (texts, labels.astype(np.int64))
    return splits


def load_synthetic(task: str, options: ReadOptions) -> Source:
    """A tiny generated, learnable, seeded data set for `task`, with train and test splits."""
    notes = [f"generated data (seed {options.seed}): for smoke tests, not for judging a model"]
    if task == "text_classification":
        splits = synthetic_text(options.seed)
        datasets = {
            split: tf.data.Dataset.from_tensor_slices((tf.constant(texts, dtype=tf.string), labels))
            for split, (texts, labels) in splits.items()
        }
        class_names = list(SYNTHETIC_TEXT_CLASSES)
        name = "synthetic sentences with positive and negative words"
    elif task == "segmentation":
        # Drawn at the asked size directly, so masks stay exact.
        size = options.image_size or (16, 16)
        splits = synthetic_segmentation(options.seed, size)
        datasets = {
            split: tf.data.Dataset.from_tensor_slices(
                (image_utils.set_channels(images, options.channels), masks)
            )
            for split, (images, masks) in splits.items()
        }
        class_names = list(SYNTHETIC_SEGMENTATION_CLASSES)
        name = f"synthetic {size[0]}x{size[1]} shapes with exact masks"
    else:
        size = options.image_size or (16, 16)
        splits = synthetic_images(options.seed, size)
        datasets = {
            split: tf.data.Dataset.from_tensor_slices(
                (image_utils.set_channels(images, options.channels), labels)
            )
            for split, (images, labels) in splits.items()
        }
        class_names = list(SYNTHETIC_IMAGE_CLASSES)
        name = f"synthetic {size[0]}x{size[1]} patterned images"
    return Source(
        name=name,
        task=task,
        train=datasets["train"],
        test=datasets["test"],
        class_names=class_names,
        num_examples={split: len(labels) for split, (_, labels) in splits.items()},
        notes=notes,
    )
