"""Image denoising with the course's autoencoders: a corrupted image in, the clean image out.

Data: scikit-learn's 1,797 8x8 digits by default (`builtin`, offline, resized to `--image-size`);
`--data mnist` or `--data tfds:fashion_mnist` for TFDS; `--data PATH` for MNIST IDX files or
one folder of images per class (grayscale, or RGB with `--channels 3`; any size, resized). The
clean images are corrupted on the fly inside the `tf.data` pipeline (`--noise gaussian` adds
N(0, level^2) and clips to [0, 1], `salt_pepper` sets a fraction `level` of the pixels to 0 or 1,
`masking` sets it to 0), fresh noise every epoch, and the model learns to output the clean image
(the slides' denoising autoencoder procedure, loss BCE or MSE). Validation and test images are
corrupted once, with noise fixed by `--seed` and each image's position, so every evaluation of a
run sees the same noisy images.

Metric: PSNR and SSIM (`i2dl_keras.metrics`) of the noisy input and of the denoised output
against the clean test images, averaged over the images. A good result: on MNIST with Gaussian
noise of standard deviation 0.5, the noisy images score about 9.4 dB; the default model (99,777
parameters, 80 epochs of batches of 32 on 5,400 images, MSE) lifts them to about 21.3 dB, a gain
of about 11.9 dB, and SSIM from about 0.43 to 0.90; with `--epochs 240` it reaches 21.4 dB, a
gain of 12.0 dB (the issue's target), in three times the training time. The course's plain conv
autoencoder (81k parameters, 20 epochs, BCE) gains about 10.2 dB (see `benchmarks/denoise.py`).

Models (`--variant`): `conv` (the default, `i2dl_keras.models.conv_autoencoder`) or the dense
autoencoders of the course, `bottleneck`, `sparse`, `contractive`, and `stacked`, which first
trains its layer pairs one at a time (greedy layer-wise pretraining on the clean images) and then
fine-tunes the whole network on the denoising task. The default conv model is U-Net-shaped, still
an encoder and a decoder: two 3x3 convolutions at full resolution (`--full-resolution-convs`),
two stride-2 stages of four 3x3 convolutions (`--convs-per-stage`), and each decoder stage also
sees the encoder's feature map of its resolution (`--skip-connections`), so the code need not
carry the fine detail; `--convs-per-stage 1 --no-skip-connections --full-resolution-convs 0`
gives the course's plain conv autoencoder. `--classify` then puts a softmax head on the trained
encoder and compares it, on `--labels-per-class` labelled training images per class, with the
same classifier trained from random weights (the slides' "stacking autoencoders, then
fine-tuning"; see `compare_classifiers` for the protocol); with `--classify-dropouts 0.5,0.7,0.8`
and `--classify-finetune-rates 0.1,0.3,0.6,1` each of the two chooses its head's dropout and its
fine-tuning rate by its own validation accuracy.

The model takes and returns float pixels in [0, 1], `image_size` square with `channels` channels.
The exported SavedModel also takes encoded PNG/JPEG bytes of any size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tempfile
import weakref
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from apps import base, plots
from i2dl_keras import data as i2dl_data
from i2dl_keras import metrics as image_metrics
from i2dl_keras.losses import (
    BinaryCrossentropy,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
)
from i2dl_keras.models import (
    bottleneck_autoencoder,
    classifier_from_encoder,
    contractive_autoencoder,
    conv_autoencoder,
    get_encoder,
    greedy_layerwise_pretrain,
    sparse_autoencoder,
    stacked_autoencoder,
    stacked_layer_pairs,
)

NAME = "denoise"
TASK = "image_classification"
TUNING_OBJECTIVE = kt.Objective("val_loss", direction="min")
NOISES = ("gaussian", "salt_pepper", "masking")
VARIANTS = ("conv", "bottleneck", "sparse", "contractive", "stacked")
DENSE_CODE_SIZE = 64
IMAGE_SUFFIXES = base.IMAGE_SUFFIXES
# What `predict` writes beside each input; such files are never read back as inputs.
DENOISED_SUFFIX = ".denoised.png"
FIGURE_SUFFIX = ".denoised-comparison.png"
PREDICT_INPUT_HELP = (
    "images to denoise (PNG/JPEG/BMP/GIF files, or folders of them); NOISY=CLEAN pairs an image "
    "with its clean original, which the figure then shows and the PSNR is measured against"
)
# Settings fixed by the trained model: `evaluate` does not offer them as flags.
MODEL_FIELDS = (
    "variant",
    "image_size",
    "channels",
    "width",
    "depth",
    "kernel_size",
    "convs_per_stage",
    "skip_connections",
    "full_resolution_convs",
    "code_size",
    "hidden",
    "sparsity_weight",
    "contraction",
    "loss",
    "num_classes",
    "train_examples",
)
MODEL_CARD_LIMITS = (
    "The model removes the one kind of corruption it was trained on (see `noise` and "
    "`noise_level` in the config); other noise levels, blur, compression artefacts or real "
    "sensor noise are not what it learned. Images of other sizes are resized to `image_size` "
    "square, and the output is that size: fine detail of larger images is lost."
)
# Per-image PSNR of identical images is infinite; averages count it as this many dB.
PSNR_CAP_DB = 100.0


@dataclasses.dataclass
class Config(base.BaseConfig):
    """Settings of the denoising autoencoder."""

    epochs: int = base.option(80, "most training epochs (early stopping may end sooner)")
    batch_size: int = base.option(
        32, "images per batch (32 denoised MNIST 0.08 dB better than 64: twice the updates)"
    )
    patience: int = base.option(10, "epochs without validation improvement before stopping")
    learning_rate: float = base.option(2e-3, "peak learning rate (cosine decay to 0)")
    image_size: int = base.option(28, "square image size in pixels (images are resized to it)")
    channels: int = base.option(1, "image channels: 1 (grayscale) or 3 (RGB)", choices=(1, 3))
    noise: str = base.option("gaussian", "corruption of the inputs", choices=NOISES)
    noise_level: float = base.option(
        0.5,
        "gaussian: standard deviation (pixels in [0, 1], clipped); salt_pepper, masking: the "
        "fraction of pixels hit",
    )
    train_noise_level: float | None = base.option(
        None, "noise level of the training inputs only (default: --noise-level)"
    )
    loss: str = base.option("mse", "reconstruction loss", choices=("mse", "bce"))
    variant: str = base.option("conv", "which autoencoder of the course", choices=VARIANTS)
    width: int = base.option(16, "conv: filters of the first stage (doubles per stage)")
    depth: int = base.option(
        2, "conv: stride-2 stages; dense variants: encoder layers including the code"
    )
    kernel_size: int = base.option(3, "conv: side of the square kernels")
    convs_per_stage: int = base.option(
        4, "conv: convolutions per encoder and per decoder stage, the strided one included"
    )
    skip_connections: bool = base.option(
        True, "conv: decoder stages also see the encoder's feature maps (a U-Net shape)"
    )
    full_resolution_convs: int = base.option(
        2,
        "conv: convolutions at the input's resolution before the first stride-2 stage (with "
        "--skip-connections the last decoder stage sees their features, not the raw image)",
    )
    code_size: int = base.option(
        0,
        f"width of a dense code; 0: the variant's default (conv: the last feature map, "
        f"dense variants: {DENSE_CODE_SIZE})",
    )
    hidden: int = base.option(256, "dense variants: units of the first hidden layer (halves)")
    sparsity_weight: float = base.option(1e-3, "sparse: weight of the L1 activity penalty")
    contraction: float = base.option(1e-3, "contractive: weight of the Jacobian penalty")
    pretrain_epochs: int = base.option(3, "stacked: epochs of each greedy pretraining stage")
    classify: bool = base.option(
        False, "after training, compare the pretrained encoder with a random one as classifier"
    )
    labels_per_class: int = base.option(10, "--classify: labelled training images per class")
    classify_epochs: int = base.option(
        100,
        "--classify: most epochs of each of the two training stages (pretrained: head on the "
        "frozen encoder, then all; from scratch: all, at the same two learning rates)",
    )
    classify_learning_rate: float = base.option(
        3e-3,
        "--classify: Adam's learning rate (the fine-tuning stage: --classify-finetune-rates "
        "times it)",
    )
    classify_patience: int = base.option(
        20, "--classify: epochs without a better validation accuracy before stopping"
    )
    classify_draws: int = base.option(
        3, "--classify: seeded draws of the labelled images, results averaged"
    )
    classify_pool: int = base.option(
        2, "--classify: max-pooling window on a convolutional code before the head (0: none)"
    )
    classify_dropout: float = base.option(0.5, "--classify: dropout rate before the head")
    classify_dropouts: str = base.option(
        "",
        "--classify: dropout rates before the head, comma-separated (e.g. 0.5,0.7,0.8), that "
        "each arm chooses from in every draw by its own validation accuracy, so that neither "
        "is judged with a head tuned for the other; empty: --classify-dropout alone",
    )
    classify_finetune_rates: str = base.option(
        "0.1",
        "--classify: learning rates of the second stage (fine-tuning everything) as fractions of "
        "--classify-learning-rate, comma-separated; with several, each arm chooses, as for "
        "--classify-dropouts (every pair of rate and dropout is a trial)",
    )
    classify_batch_size: int = base.option(
        64,
        "--classify: labelled images per batch, both arms (apart from --batch-size, the "
        "autoencoder's, so that tuning the denoiser leaves the comparison as it was)",
    )
    classify_augment: float = base.option(
        0.0,
        "--classify: random shifts up to this fraction of the image side (and rotations up to "
        "0.4 times it, in turns) of the labelled training images of both arms; 0: none",
    )
    classify_skip_features: bool = base.option(
        True,
        "--classify: the head also reads the encoder's skip feature maps (--skip-connections), "
        "pooled to the code's size",
    )
    num_classes: int = base.option(10, "number of classes (set from the data when training)")
    train_examples: int = base.option(
        0, "training examples per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size < 4:
            raise base.UsageError(f"--image-size must be at least 4, got {self.image_size}")
        for name in (
            "width",
            "depth",
            "kernel_size",
            "convs_per_stage",
            "hidden",
            "pretrain_epochs",
        ):
            if getattr(self, name) < 1:
                raise base.UsageError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        for name in (
            "labels_per_class",
            "classify_epochs",
            "classify_patience",
            "classify_draws",
            "classify_batch_size",
        ):
            if getattr(self, name) < 1:
                raise base.UsageError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if self.classify_pool < 0:
            raise base.UsageError(f"--classify-pool must be 0 or more, got {self.classify_pool}")
        if not 0.0 <= self.classify_augment < 1.0:
            raise base.UsageError(
                f"--classify-augment must be in [0, 1), got {self.classify_augment}"
            )
        if not 0.0 <= self.classify_dropout < 1.0:
            raise base.UsageError(
                f"--classify-dropout must be in [0, 1), got {self.classify_dropout}"
            )
        parse_dropouts(self.classify_dropouts)
        parse_finetune_rates(self.classify_finetune_rates)
        if self.classify_learning_rate <= 0:
            raise base.UsageError(
                f"--classify-learning-rate must be positive, got {self.classify_learning_rate}"
            )
        if self.code_size < 0:
            raise base.UsageError(f"--code-size must be 0 or more, got {self.code_size}")
        if self.full_resolution_convs < 0:
            raise base.UsageError(
                f"--full-resolution-convs must be 0 or more, got {self.full_resolution_convs}"
            )
        if self.sparsity_weight < 0 or self.contraction < 0:
            raise base.UsageError("--sparsity-weight and --contraction must be 0 or more")
        check_noise_level(self.noise, self.noise_level, "--noise-level")
        if self.train_noise_level is not None:
            check_noise_level(self.noise, self.train_noise_level, "--train-noise-level")
        if self.variant == "conv":
            factor = 2**self.depth
            if self.image_size % factor:
                raise base.UsageError(
                    f"--image-size {self.image_size} must be divisible by 2**depth = {factor} "
                    f"for the conv variant with --depth {self.depth} (each stage halves it); "
                    "change --image-size or --depth"
                )
        else:
            values = self.image_size**2 * self.channels
            if self.variant in ("bottleneck", "stacked") and dense_code_size(self) >= values:
                raise base.UsageError(
                    f"--code-size {dense_code_size(self)} must be smaller than the "
                    f"{values} pixel values of an image for the {self.variant} variant"
                )

    @property
    def effective_train_noise_level(self) -> float:
        """The noise level of the training inputs."""
        if self.train_noise_level is None:
            return self.noise_level
        return self.train_noise_level


def _parse_rates(text: str, flag: str, valid, expected: str, required: bool = False) -> list[float]:
    """Comma-separated distinct floats for which `valid` holds, else a UsageError naming `flag`."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    try:
        rates = [float(part) for part in parts]
    except ValueError:
        rates = [float("nan")]
    wrong = not all(valid(rate) for rate in rates) or len(set(rates)) != len(rates)
    if wrong or (required and not rates):
        raise base.UsageError(f"{flag} must be {expected} separated by commas, got {text!r}")
    return rates


def parse_dropouts(text: str) -> list[float]:
    """`--classify-dropouts`: `"0.5,0.7"` -> [0.5, 0.7], `""` -> [] (use `--classify-dropout`)."""
    return _parse_rates(
        text,
        "--classify-dropouts",
        lambda r: 0.0 <= r < 1.0,
        "distinct rates in [0, 1) (e.g. 0.5,0.7,0.8)",
    )


def parse_finetune_rates(text: str) -> list[float]:
    """`--classify-finetune-rates`: `"0.1,1"` -> [0.1, 1.0]; at least one, each in (0, 1]."""
    return _parse_rates(
        text,
        "--classify-finetune-rates",
        lambda r: 0.0 < r <= 1.0,
        "one or more distinct fractions in (0, 1] (e.g. 0.1,0.3,0.6,1)",
        required=True,
    )


def check_noise_level(noise: str, level: float, flag: str) -> None:
    """Raises `UsageError` unless `level` suits `noise` (a deviation <= 1 or a fraction < 1)."""
    if noise == "gaussian":
        if not 0.0 <= level <= 1.0:
            raise base.UsageError(
                f"{flag} must be in [0, 1] for --noise gaussian (a standard deviation on pixels "
                f"in [0, 1]), got {level}"
            )
    elif not 0.0 <= level < 1.0:
        raise base.UsageError(
            f"{flag} must be in [0, 1) for --noise {noise} (the fraction of pixels hit), "
            f"got {level}"
        )


def dense_code_size(config: Config) -> int:
    return config.code_size or DENSE_CODE_SIZE


# --------------------------------------------------------------------------- data


def corrupt(images: tf.Tensor, noise: str, level: float, seed: tf.Tensor) -> tf.Tensor:
    """Corrupts float images in [0, 1] with stateless random noise: the same seed, the same noise.

    - `"gaussian"`: `clip(x + level * N(0, 1), 0, 1)`;
    - `"salt_pepper"`: each value is hit with probability `level` and a hit value becomes 0 or 1
      on a fair coin flip;
    - `"masking"`: each value is set to 0 with probability `level`.

    Args:
        images: Float images of any shape (one image or a batch).
        noise: One of `NOISES`.
        level: The standard deviation (gaussian) or the probability of a hit.
        seed: Shape-`[2]` integer tensor seeding the stateless random ops.

    Returns:
        The corrupted images, of the input's shape and dtype, in [0, 1].
    """
    shape = tf.shape(images)
    level = tf.cast(level, images.dtype)
    if noise == "gaussian":
        noisy = images + level * tf.random.stateless_normal(shape, seed, dtype=images.dtype)
        return tf.clip_by_value(noisy, 0.0, 1.0)
    hit_seed, coin_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    hit = tf.random.stateless_uniform(shape, hit_seed, dtype=images.dtype) < level
    if noise == "masking":
        return tf.where(hit, tf.zeros_like(images), images)
    if noise == "salt_pepper":
        salt = tf.random.stateless_uniform(shape, coin_seed, dtype=images.dtype) < 0.5
        return tf.where(hit, tf.cast(salt, images.dtype), images)
    raise ValueError(f"`noise` must be one of {NOISES}. Received: noise={noise!r}")


def noisy_training_pairs(
    batches: tf.data.Dataset, noise: str, level: float, seed: int
) -> tf.data.Dataset:
    """`(images, anything)` batches -> `(corrupted images, images)`, fresh noise every epoch.

    The noise seeds come from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`,
    so each pass over the data (each epoch) draws new noise, repeatably for a given seed.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def pair(batch, batch_seed):
        images = batch[0]
        return corrupt(images, noise, level, batch_seed), images

    pairs = tf.data.Dataset.zip((batches, seeds)).map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.prefetch(tf.data.AUTOTUNE)


def noisy_fixed_pairs(
    batches: tf.data.Dataset, noise: str, level: float, seed: int, split: int, batch_size: int
) -> tf.data.Dataset:
    """`(images, anything)` batches -> `(corrupted images, images)` with noise fixed per image.

    Image `i` of the split (`batches` must hold `batch_size` images per batch but the last, in a
    fixed order) gets noise seeded by `(seed, split, i)`: the same noisy image on every pass and
    whatever the batch size, so evaluations of one run compare like with like.
    """
    offset = tf.constant(int(split) << 40, tf.int64)
    base_seed = tf.constant(seed, tf.int64)

    def pair(batch_index, batch):
        images = batch[0]
        first = offset + batch_index * batch_size
        indices = first + tf.range(tf.shape(images, out_type=tf.int64)[0])

        def one(args):
            image, index = args
            return corrupt(image, noise, level, tf.stack([base_seed, index]))

        noisy = tf.map_fn(one, (images, indices), fn_output_signature=images.dtype)
        return tf.ensure_shape(noisy, images.shape), images

    pairs = batches.enumerate().map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.cache().prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class DenoiseDatasets(base.Datasets):
    """`(noisy, clean)` pipelines, plus the labelled `(clean, label)` ones they are made from."""

    labelled: base.Datasets | None = None


def flat_image_folder(spec: str) -> Path | None:
    """The folder `spec` names when it holds images and no subfolders (no classes), else None."""
    lowered = spec.strip().lower()
    if lowered in ("builtin", "synthetic") or lowered.startswith("tfds:"):
        return None
    if lowered in i2dl_data.TFDS_NAMES:
        return None
    path = Path(spec).expanduser()
    if not path.is_dir():
        return None
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if any(p.is_dir() for p in entries):
        return None
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
        return None
    return path.resolve()


def _load_flat_folder(folder: Path, config: Config, purpose: str, **kwargs) -> base.Datasets:
    """Loads a folder of images without class subfolders as one class named `images`.

    The data layer reads image folders one subfolder per class; a denoiser needs no labels, so
    the folder is shown to it as the only class, through a symbolic link in a temporary folder
    (the images are decoded into memory while loading, so the link can go right after).
    """
    with tempfile.TemporaryDirectory(prefix="i2dl-denoise-") as tmp:
        link = Path(tmp) / "images"
        os.symlink(folder, link, target_is_directory=True)
        try:
            datasets = base.load_datasets(
                dataclasses.replace(config, data=tmp), TASK, purpose, **kwargs
            )
        except i2dl_data.DataError as err:
            # Name the user's files, not the link's.
            raise i2dl_data.DataError(str(err).replace(str(link), str(folder))) from None
    datasets.source_name = f"unlabelled images in {folder}"
    datasets.notes = [note.replace(str(link), str(folder)) for note in datasets.notes]
    datasets.notes.append(
        f"{folder} holds images and no class subfolders: read as one class, so --classify "
        "does not apply"
    )
    return datasets


def make_datasets(config: Config, purpose: str) -> DenoiseDatasets:
    size, channels = config.image_size, config.channels

    def preprocess(image, label):
        pixels = tf.cast(image, tf.float32) / 255.0
        return tf.ensure_shape(pixels, [size, size, channels]), label

    options = {"preprocess": preprocess, "image_size": (size, size), "channels": channels}
    folder = flat_image_folder(config.data) if config.data_format is None else None
    if folder is not None:
        labelled = _load_flat_folder(folder, config, purpose, **options)
    else:
        labelled = base.load_datasets(config, TASK, purpose, **options)
    if purpose == "train" and config.classify and len(labelled.class_names) < 2:
        raise base.UsageError(
            f"--classify needs labelled data with at least 2 classes; {labelled.source_name} "
            f"has {len(labelled.class_names)}"
        )
    noise, level, seed = config.noise, config.noise_level, config.seed
    train = validation = None
    if labelled.train is not None:
        train = noisy_training_pairs(
            labelled.train, noise, config.effective_train_noise_level, seed
        )
    if labelled.validation is not None:
        validation = noisy_fixed_pairs(
            labelled.validation, noise, level, seed, 1, config.batch_size
        )
    test = noisy_fixed_pairs(labelled.test, noise, level, seed, 2, config.batch_size)
    return DenoiseDatasets(
        train,
        validation,
        test,
        labelled.class_names,
        labelled.source_name,
        labelled.notes,
        labelled.num_examples,
        labelled=labelled,
    )


def _arrays(dataset: tf.data.Dataset, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """All `(x, y)` of a batched dataset as arrays.

    With `canonical`, in an order fixed by the contents (label, then a hash of the pixels), not
    by the pipeline: the training pipeline reshuffles on every pass, and a seeded pick of
    examples must not depend on which pass it saw.
    """
    xs, ys = [], []
    for x, y in dataset:
        xs.append(x.numpy())
        ys.append(y.numpy())
    x, y = np.concatenate(xs), np.concatenate(ys)
    if canonical:
        digests = [hashlib.blake2b(image.tobytes(), digest_size=8).hexdigest() for image in x]
        order = np.lexsort((np.asarray(digests), y))
        x, y = x[order], y[order]
    return x, y


# --------------------------------------------------------------------------- model


def _dense_units(config: Config) -> tuple[int, ...]:
    """Encoder widths of the dense variants: `hidden`, halving, then the code."""
    hidden = tuple(max(1, config.hidden // 2**i) for i in range(config.depth - 1))
    return (*hidden, dense_code_size(config))


def _loss(config: Config) -> keras.losses.Loss:
    return BinaryCrossentropy() if config.loss == "bce" else MeanSquaredError()


def build_model(config: Config) -> keras.Model:
    shape = (config.image_size, config.image_size, config.channels)
    units = _dense_units(config)
    # BCE wants probabilities. Under MSE a sigmoid output stalls: on mostly black images (MNIST)
    # it saturates at 0 within the first epoch and its gradient vanishes, so MSE gets a linear
    # output, clipped to [0, 1] wherever the app uses the model (`denoise_images`, serving).
    common = {
        "output_activation": "sigmoid" if config.loss == "bce" else "linear",
        "name": f"denoising_{config.variant}_autoencoder",
    }
    if config.variant == "conv":
        model = conv_autoencoder(
            shape,
            filters=tuple(config.width * 2**i for i in range(config.depth)),
            code_size=config.code_size or None,
            kernel_size=config.kernel_size,
            convs_per_stage=config.convs_per_stage,
            skip_connections=config.skip_connections,
            full_resolution_convs=config.full_resolution_convs,
            **common,
        )
    elif config.variant == "bottleneck":
        model = bottleneck_autoencoder(shape, units[-1], hidden=units[:-1], **common)
    elif config.variant == "sparse":
        model = sparse_autoencoder(
            shape, units[-1], hidden=units[:-1], sparsity_weight=config.sparsity_weight, **common
        )
    elif config.variant == "contractive":
        # The course's contractive encoder is one layer: `depth` and `hidden` do not apply.
        model = contractive_autoencoder(shape, units[-1], contraction=config.contraction, **common)
    else:
        model = stacked_autoencoder(shape, units=units, **common)
    steps_per_epoch = -(-config.train_examples // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * max(1, steps_per_epoch)
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=_loss(config))
    return model


class HyperModel(base.ConfigHyperModel):
    """Searches code size, depth, width, the training noise level and the learning rate.

    Beyond mapping `hp` onto a `Config`, it overrides `fit`: the training noise level shapes
    the data, not the model, so each trial re-corrupts the clean training images at its own
    level. Validation keeps `--noise-level`, so trials are scored on the same noisy images.
    Search trials train end to end: the stacked variant's greedy pretraining runs only when the
    best configuration is retrained.
    """

    build_model = staticmethod(build_model)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        config = self.config
        if config.variant == "conv":
            depths = [d for d in (2, 1, 3) if config.image_size % 2**d == 0] or [config.depth]
            code_size = hp.Choice("code_size", [0, 32, 64])
            shape = {"width": hp.Choice("width", [16, 12, 24])}
        else:
            depths = [2, 1, 3]
            limit = config.image_size**2 * config.channels
            sizes = [s for s in (64, 32, 128) if s < limit] or [max(1, limit // 2)]
            code_size = hp.Choice("code_size", sizes)
            shape = {"hidden": hp.Choice("hidden", [256, 128, 512])}
        level = config.noise_level
        top = 1.0 if config.noise == "gaussian" else 0.95
        levels = []
        for factor in (1.0, 0.75, 1.25):
            value = round(min(level * factor, top), 4)
            if value not in levels:
                levels.append(value)
        return dataclasses.replace(
            config,
            code_size=code_size,
            depth=hp.Choice("depth", depths),
            train_noise_level=hp.Choice("train_noise_level", levels),
            learning_rate=hp.Float("learning_rate", 5e-4, 5e-3, sampling="log"),
            **shape,
        )

    def fit(self, hp, model, *args, **kwargs):
        config = self.config_for(hp)
        args = list(args)
        x = args[0] if args else kwargs.pop("x")
        clean_pairs = x.map(lambda noisy, clean: (clean, clean))
        x = noisy_training_pairs(
            clean_pairs, config.noise, config.effective_train_noise_level, config.seed
        )
        return model.fit(x, *args[1:], **kwargs)


# --------------------------------------------------------------------------- training stages

# What `fit` learned beyond the history (stacked stages, the classifier comparison), kept for
# `write_report`, which writes it next to the model.
_REPORTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pretrain_stacked(
    model: keras.Model,
    images: np.ndarray,
    config: Config,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> list[dict]:
    """Greedy layer-wise pretraining of the stacked variant on clean images; one dict per stage.

    Stage k trains only `encoder_dense_k` and `decoder_dense_k` (every other weight stays as it
    is) to reconstruct the codes of the layers below, with MSE: the codes of ReLU layers are not
    in [0, 1], so BCE does not suit them.
    """
    pairs = stacked_layer_pairs(model)
    histories = greedy_layerwise_pretrain(
        model,
        images,
        epochs=config.pretrain_epochs,
        batch_size=config.batch_size,
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="mse",
        callbacks=callbacks,
        verbose=0,
    )
    return [
        {
            "stage": k,
            "trains": [encoder.name, decoder.name],
            "epochs": len(history.history["loss"]),
            "loss": [float(v) for v in history.history["loss"]],
        }
        for k, ((encoder, decoder), history) in enumerate(zip(pairs, histories), start=1)
    ]


def fit(model, datasets: DenoiseDatasets, config: Config, callbacks, verbose):
    """Trains the autoencoder: greedy pretraining first for `stacked`, then end to end."""
    history: dict[str, list] = {}
    boundaries: list[int] = []
    report: dict = {}
    if config.variant == "stacked":
        clean, _ = _arrays(datasets.labelled.train)
        stages = pretrain_stacked(model, clean, config)
        after = evaluate_model(model, datasets.test, config)
        for stage in stages:
            history.setdefault("loss", []).extend(stage["loss"])
            boundaries.append(len(history["loss"]))
            print(
                f"stacked: pretraining stage {stage['stage']} trained "
                f"{' and '.join(stage['trains'])} only: reconstruction MSE "
                f"{stage['loss'][0]:.4f} -> {stage['loss'][-1]:.4f}"
            )
        print(
            "stacked: test after pretraining, before fine-tuning: "
            + ", ".join(f"{k} {v:.4f}" for k, v in after.items())
        )
        report["stacked"] = {"pretraining": stages, "test_after_pretraining": after}
    fine = base.fit_epochs(model, datasets, config, callbacks, verbose)
    done = len(history.get("loss", []))
    for key, values in fine.items():
        # Pretraining has no validation metrics: those epochs hold None (null in metrics.json).
        history.setdefault(key, [None] * done)
        history[key] = history[key][:done] + [float(v) for v in values]
    if config.variant == "stacked":
        report["stacked"]["fine_tuning_epochs"] = len(fine.get("loss", []))
        print("stacked: fine-tuned end to end with every layer trainable")
    if config.classify:
        report["classify"] = compare_classifiers(model, datasets, config)
        c = report["classify"]
        print(
            f"classify ({c['labels_per_class']} labels per class, {c['train_examples']} "
            f"images, mean of {c['draws']} draws): pretrained encoder "
            f"{c['pretrained_accuracy']:.2%} (frozen, head only: "
            f"{c['pretrained_probe_accuracy']:.2%}), from scratch {c['scratch_accuracy']:.2%} "
            f"test accuracy, gain {c['gain_points']:+.2f} points"
        )
        if len(c["dropouts"]) * len(c["finetune_rates"]) > 1:
            print(
                "classify: head dropout / fine-tuning rate chosen by validation accuracy, per "
                f"draw: pretrained {chosen_settings(c, 'pretrained')}; from scratch "
                f"{chosen_settings(c, 'scratch')}"
            )
    if report:
        _REPORTS[model] = report
    return history, boundaries


def labelled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` examples of each class (all of a class that has fewer), seeded."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def _train_classifier(
    classifier: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    epochs: int,
    learning_rate: float,
    config: Config,
) -> int:
    """Trains with Adam, stopping early on the validation accuracy; returns the epochs run."""
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    callbacks = []
    if validation is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                mode="max",
                patience=config.classify_patience,
                restore_best_weights=True,
            )
        )
    batch_size = min(config.classify_batch_size, len(x))
    if config.classify_augment > 0:
        shift = config.classify_augment
        augment = keras.Sequential(
            [
                keras.layers.RandomTranslation(
                    shift, shift, fill_mode="constant", seed=config.seed
                ),
                keras.layers.RandomRotation(0.4 * shift, fill_mode="constant", seed=config.seed),
            ]
        )
        x = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda images, labels: (augment(images, training=True), labels))
        )
        y = None
    history = classifier.fit(
        x,
        y,
        epochs=epochs,
        batch_size=None if y is None else batch_size,
        shuffle=y is not None,  # the augmenting pipeline shuffles, seeded
        validation_data=validation,
        callbacks=callbacks,
        verbose=0,
    )
    return len(history.history["loss"])


def compare_classifiers(model: keras.Model, datasets: DenoiseDatasets, config: Config) -> dict:
    """Classifies with the trained encoder and with the same network from scratch, on few labels.

    The slides' "stacking autoencoders, then fine-tuning", in the two-step form that keeps the
    pretrained features (linear probing, then fine-tuning; Kumar et al., 2022): a head
    (`classifier_from_encoder`: the code, max-pooled `classify_pool` x `classify_pool` when it
    is a feature map, flattened, dropout `classify_dropout`, softmax) first trains on the
    frozen pretrained encoder at `classify_learning_rate`, then the whole network fine-tunes at
    a fraction of it (`classify_finetune_rates`, by default a tenth). The baseline is the same
    network, every weight trainable from random initial values, through the same two stages at
    the same two rates.
    Both arms see the same `labels_per_class` clean training images per class in batches of
    `classify_batch_size` (not the autoencoder's `batch_size`: batches of 32 instead of 64
    alone lowered the baseline by 2 points, which would have passed for a gain), start from the
    same head weights, stop early on the accuracy of the same labelled validation images
    (`classify_patience`, best weights restored; fixed epochs when there is no validation
    split) and are scored on the clean test images. This is repeated for `classify_draws`
    seeded draws of the labelled images and averaged, since 10 labels per class make one draw
    a noisy estimate. With `classify_augment`, both arms train on randomly shifted and rotated
    copies of their labelled images. With several `classify_dropouts` or
    `classify_finetune_rates`, each arm trains once per pair of dropout and fine-tuning rate in
    every draw and keeps the pair its own validation accuracy prefers (ties: the first listed,
    dropouts varying fastest), so that neither arm is judged with settings tuned for the other;
    the draw's record lists every trial. The trained autoencoder itself is left untouched (its
    weights are copied).

    How much the pretrained encoder helps depends on the baseline: on MNIST with 10 labels per class
    and the default model, 3.5 to 5.1 points without augmentation (90.1% against 86.6%, and 89.6%
    against 84.5%, in two sessions with the same seeds, 3 draws each), 4.0 to 5.2 over 9 draws
    (three trained autoencoders, three sessions: the baseline moves between sessions), 3.5 to 4.3
    (two trained autoencoders) with `classify_dropouts="0.5,0.7,0.8"`, each arm choosing per draw
    (the baseline often prefers 0.7 or 0.8 to the default 0.5), and 3.3 to 5.6, 4.6 on average, with
    `classify_finetune_rates="0.1,0.3,0.6,1"` as well (four trained autoencoders; the pretrained
    encoder fine-tunes best at 0.6 to 1 times the rate, the baseline is indifferent); with
    `classify_augment=0.1`, which lifts the from-scratch network to 93.3%, the earlier default's
    encoder helped not at all (see `benchmarks/denoise.py`).
    """
    labelled = datasets.labelled
    x_train, y_train = _arrays(labelled.train, canonical=True)
    test = _arrays(labelled.test)
    validation = _arrays(labelled.validation) if labelled.validation is not None else None
    num_classes = max(len(labelled.class_names), int(y_train.max()) + 1)
    dropouts = parse_dropouts(config.classify_dropouts) or [config.classify_dropout]
    finetune_rates = parse_finetune_rates(config.classify_finetune_rates)
    if len(dropouts) * len(finetune_rates) > 1 and validation is None:
        raise base.UsageError(
            f"--classify-dropouts {config.classify_dropouts!r} --classify-finetune-rates "
            f"{config.classify_finetune_rates!r}: choosing among several settings needs labelled "
            "validation images, and these datasets have none"
        )
    draws: list[dict] = []
    for draw in range(config.classify_draws):
        seed = config.seed + draw
        subset = labelled_subset(y_train, config.labels_per_class, seed)
        x, y = x_train[subset], y_train[subset]
        result: dict = {"seed": seed}
        for arm in ("pretrained", "scratch"):
            trials = [
                _classifier_arm(
                    arm, model, config, (x, y), validation, test, num_classes, setting, seed
                )
                for setting in itertools.product(finetune_rates, dropouts)
            ]
            # Chosen on the arm's own validation accuracy; ties go to the setting listed first.
            best = max(trials, key=lambda t: t.get("validation_accuracy", 0.0))
            result.update({f"{arm}_{key}": value for key, value in best.items()})
            if len(trials) > 1:
                result[f"{arm}_trials"] = trials
        draws.append(result)

    def mean(key: str) -> float:
        return float(np.mean([d[key] for d in draws]))

    gains = [100 * (d["pretrained_accuracy"] - d["scratch_accuracy"]) for d in draws]
    return {
        "labels_per_class": config.labels_per_class,
        "train_examples": int(len(subset)),
        "test_examples": int(len(test[1])),
        "draws": len(draws),
        "dropouts": dropouts,
        "finetune_rates": finetune_rates,
        "pretrained_probe_accuracy": mean("pretrained_probe_accuracy"),
        "pretrained_accuracy": mean("pretrained_accuracy"),
        "scratch_accuracy": mean("scratch_accuracy"),
        "gain_points": round(float(np.mean(gains)), 2),
        "gain_points_min": round(float(np.min(gains)), 2),
        "per_draw": draws,
    }


def chosen_settings(result: dict, arm: str) -> str:
    """`compare_classifiers`' choice for `arm` in each draw, as `dropout/fine-tuning rate`."""
    return " ".join(
        f"{d[f'{arm}_dropout']:g}/{d[f'{arm}_finetune_rate']:g}" for d in result["per_draw"]
    )


def _classifier_arm(
    arm: str,
    model: keras.Model,
    config: Config,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    test: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    setting: tuple[float, float],
    seed: int,
) -> dict:
    """One arm of `compare_classifiers` on one draw, with one setting: its accuracies.

    `setting` is (fine-tuning rate as a fraction of `classify_learning_rate`, head dropout).
    `pretrained`: the head trains on the frozen copy of `model`'s encoder, then everything
    fine-tunes at that fraction of the rate. `scratch`: the same network from random weights,
    every weight trainable through the same two stages. Both start from the same head weights.
    """
    finetune_rate, dropout = setting
    head = {
        "pool_size": config.classify_pool or None,
        "dropout": dropout,
        "skip_features": config.classify_skip_features,
    }
    rates = (config.classify_learning_rate, config.classify_learning_rate * finetune_rate)

    def train_stage(classifier: keras.Model, rate: float) -> int:
        return _train_classifier(
            classifier, *train, validation, config.classify_epochs, rate, config
        )

    record: dict = {"dropout": dropout, "finetune_rate": finetune_rate}
    if arm == "pretrained":
        network = build_model(config)
        network.set_weights(model.get_weights())
        keras.utils.set_random_seed(seed + 2)  # the same head for both arms
        classifier = classifier_from_encoder(
            network, num_classes, freeze_encoder=True, name="pretrained_classifier", **head
        )
        probe = train_stage(classifier, rates[0])
        record["probe_accuracy"] = _accuracy(classifier, *test)
        get_encoder(network).trainable = True
        record["epochs"] = [probe, train_stage(classifier, rates[1])]
    else:
        keras.utils.set_random_seed(seed + 1)
        network = build_model(config)
        keras.utils.set_random_seed(seed + 2)
        classifier = classifier_from_encoder(
            network, num_classes, name="scratch_classifier", **head
        )
        record["epochs"] = [train_stage(classifier, rate) for rate in rates]
    record["accuracy"] = _accuracy(classifier, *test)
    if validation is not None:
        record["validation_accuracy"] = _accuracy(classifier, *validation)
    return record


def _accuracy(classifier: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(classifier.evaluate(x, y, verbose=0, return_dict=True)["accuracy"])


# --------------------------------------------------------------------------- metric


def denoise_images(model: keras.Model, images) -> np.ndarray:
    """The model's output for float images in [0, 1], clipped to [0, 1]."""
    return np.clip(keras.ops.convert_to_numpy(model(images, training=False)), 0.0, 1.0)


def _mean_psnr(values: np.ndarray) -> float:
    return float(np.mean(np.minimum(values, PSNR_CAP_DB)))


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    """Mean PSNR (dB) and SSIM of the noisy inputs and of the denoised outputs vs. the clean."""
    scores: dict[str, list[np.ndarray]] = {
        k: [] for k in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised")
    }
    for noisy, clean in dataset:
        noisy, clean_np = noisy.numpy(), clean.numpy()
        denoised = denoise_images(model, noisy)
        scores["psnr_noisy"].append(image_metrics.psnr(noisy, clean_np))
        scores["psnr_denoised"].append(image_metrics.psnr(denoised, clean_np))
        scores["ssim_noisy"].append(image_metrics.ssim(noisy, clean_np))
        scores["ssim_denoised"].append(image_metrics.ssim(denoised, clean_np))
    result = {}
    for key, values in scores.items():
        values = np.concatenate(values)
        result[key] = _mean_psnr(values) if key.startswith("psnr") else float(np.mean(values))
    return result


def _first_batch(dataset: tf.data.Dataset, count: int) -> tuple[np.ndarray, np.ndarray]:
    noisy, clean = [], []
    for x, y in dataset:
        noisy.append(x.numpy())
        clean.append(y.numpy())
        if sum(len(b) for b in noisy) >= count:
            break
    return np.concatenate(noisy)[:count], np.concatenate(clean)[:count]


def _display(images) -> list[np.ndarray]:
    """Images as RGB in [0, 1]: `plots.image_grid` would stretch each grey image's contrast."""
    images = np.asarray(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return list(np.clip(images, 0.0, 1.0))


def write_report(run_dir: Path, model: keras.Model, datasets: DenoiseDatasets, config) -> None:
    noisy, clean = _first_batch(datasets.test, 8)
    denoised = denoise_images(model, noisy)
    n = len(noisy)
    psnr_noisy = image_metrics.psnr(noisy, clean)
    psnr_denoised = image_metrics.psnr(denoised, clean)
    plots.image_grid(
        _display(np.concatenate([noisy, denoised, clean])),
        [f"noisy {v:.1f} dB" for v in psnr_noisy]
        + [f"denoised {v:.1f} dB" for v in psnr_denoised]
        + ["clean"] * n,
        run_dir / "denoised_examples.png",
        title=f"test images: noisy ({config.noise} {config.noise_level:g}), denoised, clean",
        columns=n,
    )
    report = _REPORTS.pop(model, None)
    if report is not None:
        (run_dir / "stages.json").write_text(json.dumps(report, indent=2) + "\n")


# --------------------------------------------------------------------------- predict


def to_pixels(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 `[H, W, C]` image -> float32 `[size, size, C]` in [0, 1]."""
    image = tf.image.resize(tf.cast(image, tf.float32), [size, size], antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def decode_pixels(encoded: tf.Tensor, size: int, channels: int) -> tf.Tensor:
    """Encoded PNG/JPEG/BMP/GIF bytes of any size -> float32 `[size, size, channels]`."""
    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return to_pixels(image, size)


def _read_image(path: Path, config: Config) -> np.ndarray:
    try:
        pixels = decode_pixels(tf.constant(path.read_bytes()), config.image_size, config.channels)
    except (tf.errors.InvalidArgumentError, ValueError):
        raise base.UsageError(f"{path}: not a readable PNG/JPEG/BMP/GIF image") from None
    return pixels.numpy()


def _is_our_output(path: Path) -> bool:
    return path.name.endswith((DENOISED_SUFFIX, FIGURE_SUFFIX))


def _expand_inputs(paths: list[str]) -> list[tuple[Path, Path | None]]:
    items = []
    for text in paths:
        noisy_text, _, clean_text = text.partition("=")
        path = Path(noisy_text)
        clean = Path(clean_text) if clean_text else None
        if clean is not None and not clean.is_file():
            raise base.UsageError(f"{text}: the clean image {clean} is not a file")
        if path.is_dir():
            if clean is not None:
                raise base.UsageError(f"{text}: NOISY=CLEAN pairs files, not folders")
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix.lower() in IMAGE_SUFFIXES and not _is_our_output(p)
            )
            if not found:
                raise base.UsageError(f"{path}: no PNG/JPEG/BMP/GIF images in this folder")
            items.extend((p, None) for p in found)
        elif path.is_file():
            items.append((path, clean))
        else:
            raise base.UsageError(f"{path}: no such file or folder")
    return items


def output_paths(path: Path) -> tuple[Path, Path]:
    """Where `predict` writes the denoised PNG and the side-by-side figure of input `path`."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + DENOISED_SUFFIX), path.with_name(stem + FIGURE_SUFFIX)


def predict_inputs(model: keras.Model, config: Config, paths: list[str]) -> list[str]:
    """Denoises each input; writes `NAME.denoised.png` and a comparison figure beside it."""
    items = _expand_inputs(paths)
    inputs = {p.resolve() for p, _ in items} | {c.resolve() for _, c in items if c is not None}
    lines = []
    for path, clean_path in items:
        noisy = _read_image(path, config)
        denoised = denoise_images(model, noisy[None])[0]
        denoised_file, figure_file = output_paths(path)
        if denoised_file.resolve() in inputs or figure_file.resolve() in inputs:
            raise base.UsageError(
                f"{path}: its output {denoised_file.name} is also an input; rename one of them"
            )
        tf.io.write_file(
            str(denoised_file),
            tf.io.encode_png(tf.cast(tf.round(denoised * 255.0), tf.uint8)),
        )
        panels, captions = [noisy, denoised], ["input", "denoised"]
        line = f"{path}\t{denoised_file}\t{figure_file}"
        if clean_path is not None:
            clean = _read_image(clean_path, config)
            before = float(image_metrics.psnr(noisy, clean))
            after = float(image_metrics.psnr(denoised, clean))
            panels.append(clean)
            captions = [f"input {before:.1f} dB", f"denoised {after:.1f} dB", "clean"]
            line += f"\tPSNR {before:.2f} -> {after:.2f} dB"
        plots.image_grid(
            _display(panels), captions, figure_file, title=path.name, columns=len(panels)
        )
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- serving


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    size, channels = config.image_size, config.channels

    def from_pixels(pixels):
        return {"denoised": tf.clip_by_value(model(pixels, training=False), 0.0, 1.0)}

    def from_bytes(image_bytes):
        pixels = tf.map_fn(
            lambda b: decode_pixels(b, size, channels),
            image_bytes,
            fn_output_signature=tf.TensorSpec([size, size, channels], tf.float32),
        )
        return from_pixels(pixels)

    return {
        "serving_default": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
        "serve_pixels": (
            from_pixels,
            [tf.TensorSpec([None, size, size, channels], tf.float32, name="pixels")],
        ),
    }


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(config.seed)
    size, channels = config.image_size, config.channels
    # Two different sizes show that the bytes signature resizes whatever it is sent.
    images = [rng.integers(0, 256, (s, s, channels), dtype=np.uint8) for s in (size, size + 12)]
    encoded = np.array([tf.io.encode_png(im).numpy() for im in images], dtype=object)
    pixels = rng.random((3, size, size, channels), dtype=np.float32)
    return {"serving_default": {"image_bytes": encoded}, "serve_pixels": {"pixels": pixels}}
