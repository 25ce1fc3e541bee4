"""Image denoising with the course's autoencoders: a corrupted image in, the clean image out.

Data: any image source of `i2dl_keras.data` read for its `autoencoder` task, labels unused:
`builtin` (scikit-learn's 8x8 digits, offline), `mnist` or `tfds:NAME`, MNIST IDX files, class
folders, or a plain folder of unlabelled images (any size, resized to `--image-size`; RGB with
`--channels 3`). The clean images are corrupted in [0, 1] inside the `tf.data` pipeline
(`--noise gaussian`, `salt_pepper` or `masking`, the functions of `i2dl_keras.layers.corruption`):
fresh noise every epoch for training, noise fixed per image for validation and test, so every
evaluation of a run sees the same noisy images. The model learns to output the clean image (the
slides' denoising autoencoder, loss MSE or BCE).

Models (`--variant`): `conv`, the default, a U-Net-shaped convolutional autoencoder
(`i2dl_keras.models.conv_autoencoder`; `--convs-per-stage 1 --no-skip-connections
--full-resolution-convs 0` gives the course's plain one), or the dense autoencoders of the
course: `bottleneck`, `sparse`, `contractive` and `stacked`, which is pretrained greedily layer
pair by layer pair on the clean images before it is fine-tuned end to end.

`--classify` then shows what the pretraining is worth: a softmax head on the trained encoder,
trained on `--labels-per-class` labelled images per class (first on the frozen encoder, then
fine-tuned with it), against the same network trained from random weights on the same images;
both test accuracies go to `stages.json`. It needs labelled data (classes).

Metric: mean PSNR and SSIM of the noisy inputs and of the denoised outputs against the clean test
images. Expect the default model to lift MNIST under Gaussian noise of deviation 0.5 from about
9.4 dB to about 20 dB.

Input contract: images as a decoder gives them, any size, grey or colour, pixel values 0-255 of
any dtype; the model resizes them to `image_size` square and returns the denoised image as
floats in [0, 1] (clip them: under MSE the output layer is linear).

```python
from i2dl_keras.apps import denoise

run = denoise.train(epochs=3)
run.predict(["noisy.png"])[0]["image"]  # uint8 [image_size, image_size, channels]
```
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from i2dl_keras import metrics as image_metrics
from i2dl_keras.apps import base, loading, plots, predictions, settings, signatures
from i2dl_keras.data import read_images
from i2dl_keras.layers import (
    ImagePreprocessing,
    gaussian_corruption,
    masking_corruption,
    salt_pepper_corruption,
)
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
TASK = "autoencoder"
TUNING_OBJECTIVE = kt.Objective("val_loss", direction="min")
NOISES = ("gaussian", "salt_pepper", "masking")
VARIANTS = ("conv", "bottleneck", "sparse", "contractive", "stacked")
DENSE_CODE_SIZE = 64
# The name of the network inside the model, after its `ImagePreprocessing` layer.
NETWORK = "autoencoder"
# `predict` writes `NAME.denoised.png` per input into a new folder `PREDICTIONS-TIMESTAMP`.
DENOISED_SUFFIX = ".denoised.png"
PREDICTIONS = "predictions"
PREDICT_INPUT_HELP = (
    "images to denoise (PNG, JPEG, GIF, BMP, WebP, TIFF files, or folders of them); the "
    "denoised PNGs go to a new folder OUTPUT_DIR/denoise/predictions-TIMESTAMP"
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
class Config(settings.BaseConfig):
    """Settings of the denoising autoencoder."""

    epochs: int = settings.option(40, "most training epochs (early stopping may end sooner)")
    batch_size: int = settings.option(32, "images per batch")
    patience: int = settings.option(10, "epochs without validation improvement before stopping")
    learning_rate: float = settings.option(2e-3, "peak learning rate (cosine decay to 0)")
    image_size: int = settings.option(28, "square image size in pixels (images are resized to it)")
    channels: int = settings.option(1, "image channels: 1 (grayscale) or 3 (RGB)", choices=(1, 3))
    noise: str = settings.option("gaussian", "corruption of the inputs", choices=NOISES)
    noise_level: float = settings.option(
        0.5,
        "gaussian: standard deviation (pixels in [0, 1], clipped); salt_pepper, masking: the "
        "fraction of pixels hit",
    )
    train_noise_level: float | None = settings.option(
        None, "noise level of the training inputs only (default: --noise-level)"
    )
    loss: str = settings.option("mse", "reconstruction loss", choices=("mse", "bce"))
    variant: str = settings.option("conv", "which autoencoder of the course", choices=VARIANTS)
    width: int = settings.option(16, "conv: filters of the first stage (doubles per stage)")
    depth: int = settings.option(
        2, "conv: stride-2 stages; dense variants: encoder layers including the code"
    )
    kernel_size: int = settings.option(3, "conv: side of the square kernels")
    convs_per_stage: int = settings.option(
        4, "conv: convolutions per encoder and per decoder stage, the strided one included"
    )
    skip_connections: bool = settings.option(
        True, "conv: decoder stages also see the encoder's feature maps (a U-Net shape)"
    )
    full_resolution_convs: int = settings.option(
        2, "conv: convolutions at the input's resolution before the first stride-2 stage"
    )
    code_size: int = settings.option(
        0,
        f"width of a dense code; 0: the variant's default (conv: the last feature map, "
        f"dense variants: {DENSE_CODE_SIZE})",
    )
    hidden: int = settings.option(256, "dense variants: units of the first hidden layer (halves)")
    sparsity_weight: float = settings.option(1e-3, "sparse: weight of the L1 activity penalty")
    contraction: float = settings.option(1e-3, "contractive: weight of the Jacobian penalty")
    pretrain_epochs: int = settings.option(3, "stacked: epochs of each greedy pretraining stage")
    classify: bool = settings.option(
        False,
        "after training, compare a classifier on the trained encoder with the same network "
        "trained from scratch, on few labels (needs labelled data)",
    )
    labels_per_class: int = settings.option(10, "--classify: labelled training images per class")
    train_examples: int = settings.option(
        0, "training examples per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def validate(self) -> None:
        super().validate()
        if self.image_size < 4:
            raise settings.UsageError(f"--image-size must be at least 4, got {self.image_size}")
        for name in (
            "width",
            "depth",
            "kernel_size",
            "convs_per_stage",
            "hidden",
            "pretrain_epochs",
            "labels_per_class",
        ):
            if getattr(self, name) < 1:
                raise settings.UsageError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        if self.code_size < 0:
            raise settings.UsageError(f"--code-size must be 0 or more, got {self.code_size}")
        if self.full_resolution_convs < 0:
            raise settings.UsageError(
                f"--full-resolution-convs must be 0 or more, got {self.full_resolution_convs}"
            )
        if self.sparsity_weight < 0 or self.contraction < 0:
            raise settings.UsageError("--sparsity-weight and --contraction must be 0 or more")
        check_noise_level(self.noise, self.noise_level, "--noise-level")
        if self.train_noise_level is not None:
            check_noise_level(self.noise, self.train_noise_level, "--train-noise-level")
        if self.variant == "conv":
            factor = 2**self.depth
            if self.image_size % factor:
                raise settings.UsageError(
                    f"--image-size {self.image_size} must be divisible by 2**depth = {factor} "
                    f"for the conv variant with --depth {self.depth} (each stage halves it); "
                    "change --image-size or --depth"
                )
        else:
            values = self.image_size**2 * self.channels
            if self.variant in ("bottleneck", "stacked") and dense_code_size(self) >= values:
                raise settings.UsageError(
                    f"--code-size {dense_code_size(self)} must be smaller than the "
                    f"{values} pixel values of an image for the {self.variant} variant"
                )

    @property
    def effective_train_noise_level(self) -> float:
        """The noise level of the training inputs."""
        if self.train_noise_level is None:
            return self.noise_level
        return self.train_noise_level


def check_noise_level(noise: str, level: float, flag: str) -> None:
    """Raises `UsageError` unless `level` suits `noise` (a deviation <= 1 or a fraction < 1)."""
    if noise == "gaussian":
        if not 0.0 <= level <= 1.0:
            raise settings.UsageError(
                f"{flag} must be in [0, 1] for --noise gaussian (a standard deviation on pixels "
                f"in [0, 1]), got {level}"
            )
    elif not 0.0 <= level < 1.0:
        raise settings.UsageError(
            f"{flag} must be in [0, 1) for --noise {noise} (the fraction of pixels hit), "
            f"got {level}"
        )


def dense_code_size(config: Config) -> int:
    return config.code_size or DENSE_CODE_SIZE


# --------------------------------------------------------------------------- data


def corrupt(images: tf.Tensor, noise: str, level: float, seed: tf.Tensor) -> tf.Tensor:
    """Corrupts float images in [0, 1] with `noise` at `level`; the same seed, the same noise.

    `"gaussian"` adds N(0, level^2) and clips to [0, 1]; `"salt_pepper"` sets each value with
    probability `level` to 0 or 1; `"masking"` sets it to 0 (`i2dl_keras.layers.corruption`).

    Args:
        images: Float images of any shape (one image or a batch).
        noise: One of `NOISES`.
        level: The standard deviation (gaussian) or the probability of a hit.
        seed: Shape-`[2]` integer tensor seeding the stateless random draws.

    Returns:
        The corrupted images, of the input's shape and dtype, in [0, 1].
    """
    if noise == "gaussian":
        return gaussian_corruption(images, level, seed=seed, low=0.0, high=1.0)
    if noise == "salt_pepper":
        return salt_pepper_corruption(images, level, seed=seed)
    if noise == "masking":
        return masking_corruption(images, level, seed=seed)
    raise ValueError(f"`noise` must be one of {NOISES}. Received: noise={noise!r}")


def noisy_training_pairs(
    batches: tf.data.Dataset, noise: str, level: float, seed: int
) -> tf.data.Dataset:
    """`(images, anything)` batches -> `(corrupted pixels, images)`, fresh noise every epoch.

    `images` are float in [0, 1]; they are corrupted there (`corrupt`), and the corrupted
    images are multiplied by 255: the raw 0-255 pixels the model takes. The noise seeds come
    from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, so each pass over the
    data (each epoch) draws new noise, repeatably for a given seed.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def pair(batch, batch_seed):
        images = batch[0]
        return corrupt(images, noise, level, batch_seed) * 255.0, images

    pairs = tf.data.Dataset.zip((batches, seeds)).map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.prefetch(tf.data.AUTOTUNE)


def noisy_fixed_pairs(
    batches: tf.data.Dataset, noise: str, level: float, seed: int, split: int, batch_size: int
) -> tf.data.Dataset:
    """`(images, anything)` batches -> `(corrupted pixels, images)` with noise fixed per image.

    As `noisy_training_pairs` (corrupted in [0, 1], then on the model's 0-255 scale), but image
    `i` of the split (`batches` must hold `batch_size` images per batch but the last, in a
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
        return tf.ensure_shape(noisy, images.shape) * 255.0, images

    pairs = batches.enumerate().map(pair, num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.cache().prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class DenoiseDatasets(loading.Datasets):
    """`(noisy pixels 0-255, clean image in [0, 1])` pipelines, plus the clean ones they are
    made from.

    `clean` holds `(image, image)` pairs in [0, 1], or `(image, label)` when training with
    `--classify`.
    """

    clean: loading.Datasets | None = None


def make_datasets(config: Config, purpose: str) -> DenoiseDatasets:
    size, channels = config.image_size, config.channels

    def preprocess(image, target):
        pixels = tf.cast(image, tf.float32) / 255.0
        return tf.ensure_shape(pixels, [size, size, channels]), target

    # Only the classifier comparison needs labels; the autoencoder reads any image source.
    task = "image_classification" if config.classify and purpose == "train" else TASK
    clean = loading.load_datasets(
        config, task, purpose, preprocess=preprocess, image_size=(size, size), channels=channels
    )
    if task == "image_classification" and len(clean.class_names) < 2:
        raise settings.UsageError(
            f"--classify needs labelled data with at least 2 classes; {clean.source_name} "
            f"has {len(clean.class_names)}"
        )
    noise, level, seed = config.noise, config.noise_level, config.seed
    train = validation = None
    if clean.train is not None:
        train = noisy_training_pairs(clean.train, noise, config.effective_train_noise_level, seed)
    if clean.validation is not None:
        validation = noisy_fixed_pairs(clean.validation, noise, level, seed, 1, config.batch_size)
    test = noisy_fixed_pairs(clean.test, noise, level, seed, 2, config.batch_size)
    return DenoiseDatasets(
        train,
        validation,
        test,
        clean.class_names,
        clean.source_name,
        clean.notes,
        clean.num_examples,
        clean=clean,
    )


def image_arrays(
    dataset: tf.data.Dataset, canonical: bool = False
) -> tuple[np.ndarray, np.ndarray]:
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


def build_network(config: Config) -> keras.Model:
    """The uncompiled autoencoder of `config.variant`: images in [0, 1] to images in [0, 1].

    `build_model` puts it behind an `ImagePreprocessing` layer; `--classify` builds its
    classifiers on its encoder.
    """
    shape = (config.image_size, config.image_size, config.channels)
    units = _dense_units(config)
    # BCE wants probabilities. Under MSE a sigmoid output stalls: on mostly black images (MNIST)
    # it saturates at 0 within the first epoch and its gradient vanishes, so MSE gets a linear
    # output, clipped to [0, 1] wherever the app uses the model (`denoise_images`, serving).
    common = {
        "output_activation": "sigmoid" if config.loss == "bce" else "linear",
        "name": NETWORK,
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
    return model


def network_of(model: keras.Model) -> keras.Model:
    """The autoencoder inside a model of `build_model` (it shares the model's weights)."""
    return model.get_layer(NETWORK)


def build_model(config: Config) -> keras.Model:
    """Raw 0-255 pixels of any size -> `ImagePreprocessing` to [0, 1] -> the autoencoder."""
    size = config.image_size
    pixels = keras.Input((None, None, None), name="pixels")
    x = ImagePreprocessing(
        size=(size, size), channels=config.channels, scale=1.0 / 255.0, name="preprocessing"
    )(pixels)
    model = keras.Model(
        pixels, build_network(config)(x), name=f"denoising_{config.variant}_autoencoder"
    )
    steps_per_epoch = -(-config.train_examples // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * max(1, steps_per_epoch)
    )
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=_loss(config))
    return model


class HyperModel(settings.ConfigHyperModel):
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


def pretrain_stacked(
    model: keras.Model,
    images: np.ndarray,
    config: Config,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> list[dict]:
    """Greedy layer-wise pretraining of the stacked variant on clean images; one dict per stage.

    Stage k trains only `encoder_dense_k` and `decoder_dense_k` of `model`'s autoencoder (every
    other weight stays as it is) to reconstruct the codes of the layers below, with MSE: the
    codes of ReLU layers are not in [0, 1], so BCE does not suit them. `images` are what the
    autoencoder sees: float `[N, image_size, image_size, channels]` in [0, 1].
    """
    network = network_of(model)
    pairs = stacked_layer_pairs(network)
    histories = greedy_layerwise_pretrain(
        network,
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


def fit(model, datasets: DenoiseDatasets, config: Config, callbacks, verbose) -> base.FitResult:
    """Trains the autoencoder (greedy pretraining first for `stacked`), then `--classify`.

    The stages (the stacked pretraining, the classifier comparison) go to `stages.json`.
    """
    history: dict[str, list] = {}
    boundaries: list[int] = []
    stages: dict = {}
    if config.variant == "stacked":
        clean, _ = image_arrays(datasets.clean.train)
        pretraining = pretrain_stacked(model, clean, config)
        for stage in pretraining:
            history.setdefault("loss", []).extend(stage["loss"])
            boundaries.append(len(history["loss"]))
            print(
                f"stacked: pretraining stage {stage['stage']} ({' and '.join(stage['trains'])}): "
                f"reconstruction MSE {stage['loss'][0]:.4f} -> {stage['loss'][-1]:.4f}"
            )
        stages["stacked"] = {
            "pretraining": pretraining,
            "test_after_pretraining": evaluate_model(model, datasets.test, config),
        }
    fine = base.fit_epochs(model, datasets, config, callbacks, verbose)
    done = len(history.get("loss", []))
    for key, values in fine.items():
        # Pretraining has no validation metrics: those epochs hold None (null in metrics.json).
        history.setdefault(key, [None] * done)
        history[key] = history[key][:done] + [float(v) for v in values]
    if config.variant == "stacked":
        stages["stacked"]["fine_tuning_epochs"] = len(fine.get("loss", []))
    if config.classify:
        c = stages["classify"] = compare_classifiers(model, datasets, config)
        print(
            f"classify, {c['labels_per_class']} labels per class: pretrained encoder "
            f"{c['pretrained_accuracy']:.2%}, from scratch {c['scratch_accuracy']:.2%} "
            f"test accuracy ({c['gain_points']:+.2f} points)"
        )
    return base.FitResult(history, boundaries, stages or None)


# --------------------------------------------------------------------------- classify


@dataclasses.dataclass(frozen=True)
class ClassifierRecipe:
    """How `--classify` trains each of its two classifiers.

    The head (`i2dl_keras.models.classifier_from_encoder`): the code max-pooled `pool_size` x
    `pool_size`, with the skip feature maps pooled to its size (`skip_features`), flattened,
    dropout, softmax. Stage 1 trains at `learning_rate` (the pretrained encoder frozen, the head
    alone); stage 2 trains everything at `finetune_rate` times it. Each stage runs at most
    `epochs` epochs of batches of `batch_size`, stopping after `patience` epochs without a better
    validation accuracy (best weights restored).
    """

    pool_size: int | None = 2
    dropout: float = 0.5
    skip_features: bool = True
    learning_rate: float = 3e-3
    finetune_rate: float = 0.1
    epochs: int = 100
    patience: int = 20
    batch_size: int = 64


CLASSIFIER = ClassifierRecipe()


def labelled_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` examples of each class (all of a class that has fewer), seeded."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def labelled_splits(
    datasets: DenoiseDatasets,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple | None, tuple[np.ndarray, np.ndarray], int]:
    """`(train, validation or None, test, num_classes)` of `--classify`'s clean labelled data.

    Each split is `(images, labels)` arrays; the training split in `image_arrays`' canonical
    order, so that `labelled_subset` picks the same images whatever the pipeline's shuffle.
    """
    clean = datasets.clean
    train = image_arrays(clean.train, canonical=True)
    validation = image_arrays(clean.validation) if clean.validation is not None else None
    num_classes = max(len(clean.class_names), int(train[1].max()) + 1)
    return train, validation, image_arrays(clean.test), num_classes


def _fit_stage(
    classifier: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    learning_rate: float,
    recipe: ClassifierRecipe,
    seed: int,
    augment=None,
) -> int:
    """Trains with Adam, stopping early on the validation accuracy; returns the epochs run."""
    classifier.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    callbacks: list[keras.callbacks.Callback] = [base.BuildOptimizer()]
    if validation is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                mode="max",
                patience=recipe.patience,
                restore_best_weights=True,
            )
        )
    x, y = train
    batch_size = min(recipe.batch_size, len(x))
    if augment is not None:
        x = (
            tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .map(lambda images, labels: (augment(images), labels))
        )
        y = batch_size = None
    history = classifier.fit(
        x,
        y,
        epochs=recipe.epochs,
        batch_size=batch_size,
        shuffle=augment is None,  # the augmenting pipeline shuffles, seeded
        validation_data=validation,
        callbacks=callbacks,
        verbose=0,
    )
    return len(history.history["loss"])


def _accuracy(classifier: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(classifier.evaluate(x, y, verbose=0, return_dict=True)["accuracy"])


def train_classifier(
    arm: str,
    autoencoder: keras.Model,
    config: Config,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    test: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    seed: int,
    recipe: ClassifierRecipe | None = None,
    augment=None,
) -> dict:
    """Trains one of `--classify`'s two classifiers on `train`; returns its accuracies.

    `arm="pretrained"`: a copy of `autoencoder`'s encoder with the head; the head trains on the
    frozen encoder, then everything fine-tunes. `arm="scratch"`: the same network from random
    weights, every weight trainable through the same two stages. Both start from the same head
    weights (seeded by `seed`); `autoencoder` itself is left untouched. The classifiers take
    images in [0, 1] (`build_network`'s input), as `labelled_splits` gives them.

    Args:
        arm: `"pretrained"` or `"scratch"`.
        autoencoder: The trained autoencoder (a model of `build_model(config)`).
        config: Its config.
        train: `(images, labels)` to train on.
        validation: `(images, labels)` for early stopping, or `None` (every stage runs its
            epochs).
        test: `(images, labels)` to score.
        num_classes: Classes of the head.
        seed: Seeds the scratch network's and the head's initial weights.
        recipe: The head and the two stages; `None` means `CLASSIFIER`. Defaults to `None`.
        augment: A batch map `images -> images` applied to the training images. Defaults to
            `None`.

    Returns:
        `accuracy` (test), `validation_accuracy` (with `validation`), `epochs` of each stage
        and, for the pretrained arm, `probe_accuracy` (test, after the frozen stage).
    """
    recipe = recipe or CLASSIFIER
    head = {
        "pool_size": recipe.pool_size,
        "dropout": recipe.dropout,
        "skip_features": recipe.skip_features,
    }
    rates = (recipe.learning_rate, recipe.learning_rate * recipe.finetune_rate)
    record: dict = {}
    if arm == "pretrained":
        network = build_network(config)
        network.set_weights(network_of(autoencoder).get_weights())
        keras.utils.set_random_seed(seed + 2)  # the same head for both arms
        classifier = classifier_from_encoder(
            network, num_classes, freeze_encoder=True, name="pretrained_classifier", **head
        )
        probe = _fit_stage(classifier, train, validation, rates[0], recipe, seed, augment)
        record["probe_accuracy"] = _accuracy(classifier, *test)
        get_encoder(network).trainable = True
        tune = _fit_stage(classifier, train, validation, rates[1], recipe, seed, augment)
        record["epochs"] = [probe, tune]
    elif arm == "scratch":
        keras.utils.set_random_seed(seed + 1)
        network = build_network(config)
        keras.utils.set_random_seed(seed + 2)
        classifier = classifier_from_encoder(
            network, num_classes, name="scratch_classifier", **head
        )
        record["epochs"] = [
            _fit_stage(classifier, train, validation, rate, recipe, seed, augment) for rate in rates
        ]
    else:
        raise ValueError(f"`arm` must be 'pretrained' or 'scratch'. Received: arm={arm!r}")
    record["accuracy"] = _accuracy(classifier, *test)
    if validation is not None:
        record["validation_accuracy"] = _accuracy(classifier, *validation)
    return record


def compare_classifiers(model: keras.Model, datasets: DenoiseDatasets, config: Config) -> dict:
    """`--classify`: the pretrained encoder against training from scratch, on few labels.

    The slides' "stacking autoencoders, then fine-tuning": both arms (`train_classifier`) see
    the same `labels_per_class` clean training images per class, drawn with `config.seed`, stop
    early on the same labelled validation images and are scored on the clean test images.
    """
    train, validation, test, num_classes = labelled_splits(datasets)
    subset = labelled_subset(train[1], config.labels_per_class, config.seed)
    train = (train[0][subset], train[1][subset])
    arms = {
        arm: train_classifier(arm, model, config, train, validation, test, num_classes, config.seed)
        for arm in ("pretrained", "scratch")
    }
    pretrained, scratch = arms["pretrained"], arms["scratch"]
    return {
        "labels_per_class": config.labels_per_class,
        "train_examples": len(subset),
        "test_examples": len(test[1]),
        "seed": config.seed,
        "pretrained_probe_accuracy": pretrained["probe_accuracy"],
        "pretrained_accuracy": pretrained["accuracy"],
        "scratch_accuracy": scratch["accuracy"],
        "gain_points": round(100 * (pretrained["accuracy"] - scratch["accuracy"]), 2),
        "pretrained": pretrained,
        "scratch": scratch,
    }


# --------------------------------------------------------------------------- metric


def denoise_images(model: keras.Model, pixels) -> np.ndarray:
    """The model's output for raw 0-255 pixels, clipped to [0, 1]."""
    return np.clip(keras.ops.convert_to_numpy(model(pixels, training=False)), 0.0, 1.0)


def _mean_psnr(values: np.ndarray) -> float:
    return float(np.mean(np.minimum(values, PSNR_CAP_DB)))


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    """Mean PSNR (dB) and SSIM of the noisy inputs and of the denoised outputs vs. the clean.

    Both are measured in [0, 1]: the noisy pixels the model is given are divided by 255.
    """
    scores: dict[str, list[np.ndarray]] = {
        k: [] for k in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised")
    }
    for pixels, clean in dataset:
        pixels, clean_np = pixels.numpy(), clean.numpy()
        noisy = pixels / 255.0
        # The compiled predict step: the batches share one shape (but for the last one).
        denoised = np.clip(model.predict_on_batch(pixels), 0.0, 1.0)
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


def write_report(
    run_dir: Path,
    model: keras.Model,
    datasets: DenoiseDatasets,
    config: Config,
    result: base.FitResult,
) -> dict:
    """`denoised_examples.png`: test images noisy, denoised and clean, with their PSNR."""
    pixels, clean = _first_batch(datasets.test, 8)
    noisy = pixels / 255.0
    denoised = denoise_images(model, pixels)
    n = len(noisy)
    psnr_noisy = image_metrics.psnr(noisy, clean)
    psnr_denoised = image_metrics.psnr(denoised, clean)
    figure = plots.image_grid(
        _display(np.concatenate([noisy, denoised, clean])),
        [f"noisy {v:.1f} dB" for v in psnr_noisy]
        + [f"denoised {v:.1f} dB" for v in psnr_denoised]
        + ["clean"] * n,
        run_dir / "denoised_examples.png",
        title=f"test images: noisy ({config.noise} {config.noise_level:g}), denoised, clean",
        columns=n,
    )
    return {"denoised_examples": figure}


# --------------------------------------------------------------------------- predict


def predict_inputs(run: base.Run, inputs: Any, batch_size: int) -> list[dict]:
    """`Run.predict`: one `{"input": name, "image": denoised}` per input image, in order.

    `inputs` are read by `i2dl_keras.data.read_images` (paths, folders, arrays, PIL images);
    images of one shape go through the model together. `image` is the clipped model output as
    uint8 `[image_size, image_size, channels]`, 0-255.
    """
    found = read_images(inputs)
    outputs = predictions.predict_grouped(run.model, [pixels for _, pixels in found], batch_size)
    return [{"input": name, "image": to_uint8(out)} for (name, _), out in zip(found, outputs)]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A model output in [0, 1] (clipped first) as rounded uint8 pixels 0-255."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def describe_predictions(run: base.Run, results: Sequence[dict]) -> list[str]:
    """Writes each denoised image as a PNG into a new folder; one `input<TAB>png` line each.

    The folder is `OUTPUT_DIR/denoise/predictions-YYYYmmdd-HHMMSS` (with `-2`, `-3`, ... when
    that exists), so no existing file is ever overwritten. A file is named after its input:
    `x.png` -> `x.denoised.png`, `array[1]` -> `array-1.denoised.png`, with `-2`, `-3`, ...
    when two inputs share a name.
    """
    folder = predictions.fresh_folder(Path(run.config.output_dir) / NAME, PREDICTIONS)
    lines = []
    for result, name in zip(results, predictions.output_stems([r["input"] for r in results])):
        path = folder / f"{name}{DENOISED_SUFFIX}"
        with open(path, "xb") as file:
            file.write(tf.io.encode_png(result["image"]).numpy())
        lines.append(f"{result['input']}\t{path}")
    return lines


# --------------------------------------------------------------------------- serving


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    def outputs(pixels):
        return {"denoised": tf.clip_by_value(model(pixels, training=False), 0.0, 1.0)}

    return signatures.image_endpoints(outputs, config.image_size, config.channels)


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    return signatures.image_check_requests(config.seed, config.image_size, config.channels)


train, load, tune = base.app_api(__name__)
