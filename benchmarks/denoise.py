"""Denoising autoencoders on MNIST: PSNR gain and training time per variant, and classifiers.

Run: `python benchmarks/denoise.py [--data ../shared/data/mnist] [--epochs N]
[--recipes keras-io,conv,conv-bce,conv-noskip,conv-plain,conv-plain-mse,bottleneck,sparse,
contractive,stacked] [--reference-epochs 20] [--no-classify] [--classify-draws 3]
[--classify-augment 0,0.1] [--classify-dropouts 0.5,0.7,0.8]
[--classify-finetune-rates 0.1,0.3,0.6,1] [--set FIELD=VALUE]`

Every recipe trains with the app's own code (`i2dl_keras.apps.denoise.make_datasets`,
`build_model` and `fit`, so the stacked recipe pretrains greedily before fine-tuning) on the
same 5,400 of the 6,000 training images, corrupted afresh every epoch, for `--epochs` (the
app's default) with early stopping on the same 600 validation images, and is scored on the
same 2,000 test images with the same fixed noise.

The reference, trained first in every run whether or not `--recipes` names it: `keras-io`,
the convolutional denoising autoencoder of the keras-io examples (Conv2D 32 - max-pool - Conv2D
32 - max-pool - two stride-2 Conv2DTranspose 32 - Conv2D 1 sigmoid, 3x3 kernels, ReLU; Adam,
binary cross-entropy, batches of 128) for `--reference-epochs`, with no early stopping, on the
same pipeline (noisy pixels in, clean images out; a Rescaling layer takes the pixels to [0, 1])
and scored on the same test images by the same code.

Table 1 (target: with Gaussian noise of standard deviation 0.5, a denoised PSNR at least 12 dB
above the noisy input's, with at most 100k parameters, in at most 5x the reference's training
time): per recipe, parameters, epochs run, mean PSNR and SSIM of the noisy and denoised test
images, the gain, training seconds (`fit` alone) and their multiple of the reference's.

Table 2 (target: at least 5 points of test accuracy gained): for each trained recipe and each
`--classify-augment` value, `denoise_classify.compare_classifiers`: a head on the recipe's
encoder, trained first on the frozen encoder and then fine-tuned with it, on `--labels-per-class`
labelled images per class, against the same network trained from random weights through the
same two stages, averaged over `--classify-draws` seeded draws; in every draw each arm picks its
head dropout and fine-tuning rate from the grids by its own validation accuracy.

Measured figures and the dead ends tried are in `benchmarks/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from _report import record  # noqa: E402
from _settings import settings  # noqa: E402
from denoise_classify import chosen_settings, compare_classifiers, parse_rates  # noqa: E402

from i2dl_keras.apps import base, denoise  # noqa: E402

# The plain conv autoencoder of the course.
PLAIN = {
    "width": 20,
    "kernel_size": 5,
    "convs_per_stage": 1,
    "skip_connections": False,
    "full_resolution_convs": 0,
}
# name -> Config overrides; `conv` is the app's default (U-Net-shaped, MSE).
RECIPES = {
    "conv": {},
    "conv-bce": {"loss": "bce"},
    "conv-noskip": {"skip_connections": False},
    "conv-plain": {**PLAIN, "loss": "bce"},
    "conv-plain-mse": PLAIN,
    "bottleneck": {"variant": "bottleneck"},
    "sparse": {"variant": "sparse", "code_size": 256},
    "contractive": {"variant": "contractive", "code_size": 128},
    "stacked": {"variant": "stacked"},
}
REFERENCE = "keras-io"
TARGET_GAIN_DB = 12.0
TARGET_PARAMS = 100_000
TARGET_TIME_RATIO = 5.0


def keras_io_autoencoder(config: denoise.Config) -> keras.Model:
    """The keras-io convolutional denoising autoencoder, compiled as published.

    It takes the raw 0-255 pixels of the benchmark's pipeline (a `Rescaling` layer in front
    brings them to [0, 1], the published input) and outputs images in [0, 1].
    """
    size, channels = config.image_size, config.channels
    pixels = keras.Input((size, size, channels), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0)(pixels)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D(2, padding="same")(x)
    x = keras.layers.Conv2DTranspose(32, 3, strides=2, activation="relu", padding="same")(x)
    x = keras.layers.Conv2DTranspose(32, 3, strides=2, activation="relu", padding="same")(x)
    outputs = keras.layers.Conv2D(channels, 3, activation="sigmoid", padding="same")(x)
    model = keras.Model(pixels, outputs, name="keras_io_denoising_autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    return model


def train_reference(
    config: denoise.Config, epochs: int, seed: int
) -> tuple[keras.Model, int, float]:
    """Trains the keras-io recipe on `config`'s data in batches of 128.

    Its pipelines are the app's own (`denoise.make_datasets`) with the reference's batch size:
    the same images, the same fresh training noise and the same fixed validation noise.

    Returns:
        The trained model, the epochs run and the seconds `fit` took.
    """
    config = dataclasses.replace(config, batch_size=128)
    keras.utils.set_random_seed(seed)
    data = denoise.make_datasets(config, "train")
    model = keras_io_autoencoder(config)
    started = time.perf_counter()
    history = model.fit(
        data.train,
        epochs=epochs,
        validation_data=data.validation,
        shuffle=False,  # the pipeline shuffles, seeded
        verbose=0,
    )
    return model, len(history.history["loss"]), time.perf_counter() - started


def print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--epochs", type=int, default=denoise.Config.epochs)
    parser.add_argument("--noise", default="gaussian", choices=denoise.NOISES)
    parser.add_argument("--noise-level", type=float, default=0.5)
    parser.add_argument(
        "--recipes",
        default="conv,conv-plain,bottleneck,stacked",
        help=f"comma-separated recipes to train after the reference ({REFERENCE}, always "
        "trained first)",
    )
    parser.add_argument(
        "--reference-epochs",
        type=int,
        default=20,
        help=f"epochs of the {REFERENCE} reference recipe",
    )
    parser.add_argument("--labels-per-class", type=int, default=denoise.Config.labels_per_class)
    parser.add_argument("--classify-draws", type=int, default=3)
    parser.add_argument(
        "--classify-augment",
        default="0,0.1",
        help="random shifts of the labelled images as a fraction of the side (0: none), "
        "comma-separated: one Table 2 row per value",
    )
    parser.add_argument(
        "--classify-dropouts",
        default="0.5,0.7,0.8",
        help="head dropout rates each arm chooses from per draw by its validation accuracy",
    )
    parser.add_argument(
        "--classify-finetune-rates",
        default="0.1,0.3,0.6,1",
        help="fine-tuning learning rates, as fractions of the first stage's, that each arm "
        "chooses from per draw together with the dropout",
    )
    parser.add_argument("--classify", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of every recipe's Config, e.g. --set batch_size=16",
    )
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    augments = parse_rates(args.classify_augment, "--classify-augment", 0.0, 0.99, True)
    dropouts = parse_rates(args.classify_dropouts, "--classify-dropouts", 0.0, 0.99, True)
    rates = parse_rates(args.classify_finetune_rates, "--classify-finetune-rates", 0.0, 1.0, False)
    unknown = sorted(set(names) - set(RECIPES) - {REFERENCE})
    if unknown:
        sys.exit(f"unknown recipe(s) {unknown}; choose from {sorted([REFERENCE, *RECIPES])}")
    if args.reference_epochs < 1:
        sys.exit(f"--reference-epochs must be at least 1, got {args.reference_epochs}")

    base_config = denoise.Config(
        data=args.data,
        epochs=args.epochs,
        noise=args.noise,
        noise_level=args.noise_level,
        labels_per_class=args.labels_per_class,
        seed=args.seed,
        **settings(denoise.Config, args.set),
    )
    keras.utils.set_random_seed(args.seed)
    # Labelled datasets when classifying; the images, their order and their noise are the same.
    datasets = denoise.make_datasets(
        dataclasses.replace(base_config, classify=args.classify), "train"
    )
    base_config = dataclasses.replace(
        base_config, classify=False, train_examples=datasets.num_examples["train"]
    )
    print(
        f"data: {datasets.source_name}; "
        + ", ".join(f"{k} {v:,}" for k, v in datasets.num_examples.items())
        + f"; noise {args.noise} {args.noise_level:g}\n"
    )

    denoising = [
        (
            "recipe",
            "params",
            "epochs",
            "PSNR noisy",
            "PSNR denoised",
            "gain dB",
            "SSIM noisy",
            "SSIM denoised",
            "train s",
            "x reference",
            "target",
        )
    ]
    classifying = [
        (
            "encoder of",
            "labels",
            "augment",
            "draws",
            "frozen + head acc",
            "pretrained acc",
            "scratch acc",
            "gain points",
            "per draw",
            "pretrained: dropout/fine-tune",
            "scratch: dropout/fine-tune",
            "seconds",
            "target",
        )
    ]

    def denoising_row(name, params, epochs, scores, seconds, target):
        gain = scores["psnr_denoised"] - scores["psnr_noisy"]
        denoising.append(
            (
                name,
                f"{params:,}",
                str(epochs),
                f"{scores['psnr_noisy']:.2f}",
                f"{scores['psnr_denoised']:.2f}",
                f"{gain:.2f}",
                f"{scores['ssim_noisy']:.3f}",
                f"{scores['ssim_denoised']:.3f}",
                f"{seconds:.0f}",
                f"{seconds / ref_seconds:.2f}x",
                target,
            )
        )

    reference, ref_epochs, ref_seconds = train_reference(
        base_config, args.reference_epochs, args.seed
    )
    ref_scores = denoise.evaluate_model(reference, datasets.test, base_config)
    ref_gain = ref_scores["psnr_denoised"] - ref_scores["psnr_noisy"]
    denoising_row(
        f"{REFERENCE} (reference)",
        reference.count_params(),
        ref_epochs,
        ref_scores,
        ref_seconds,
        "-",
    )
    print(
        f"{REFERENCE} (reference): gain {ref_gain:.2f} dB with {reference.count_params():,} "
        f"parameters in {ref_seconds:.0f} s",
        flush=True,
    )
    for name in names:
        if name == REFERENCE:
            continue
        config = dataclasses.replace(base_config, **RECIPES[name])
        config.validate()
        keras.utils.set_random_seed(args.seed)
        model = denoise.build_model(config)
        callbacks = [base.early_stopping(config)]
        started = time.perf_counter()
        history = denoise.fit(model, datasets, config, callbacks, verbose=0).history
        seconds = time.perf_counter() - started
        scores = denoise.evaluate_model(model, datasets.test, config)
        gain = scores["psnr_denoised"] - scores["psnr_noisy"]
        params = model.count_params()
        ratio = seconds / ref_seconds
        quality = gain >= TARGET_GAIN_DB and params <= TARGET_PARAMS
        fast = ratio <= TARGET_TIME_RATIO
        denoising_row(
            name,
            params,
            len(history["loss"]),
            scores,
            seconds,
            "met" if quality and fast else "missed",
        )
        print(
            f"{name}: gain {gain:.2f} dB with {params:,} parameters in {seconds:.0f} s "
            f"({ratio:.2f}x the reference's)",
            flush=True,
        )
        record(
            "denoise",
            f"PSNR gain, {name} ({params:,} parameters, {config.epochs} epochs)",
            f"{gain:+.2f} dB",
            f">= +{TARGET_GAIN_DB:g} dB, <= 100k parameters",
            quality,
            reference=f"noisy input {scores['psnr_noisy']:.2f} dB; {REFERENCE} {ref_gain:+.2f} dB",
        )
        record(
            "denoise",
            f"training time, {name} ({config.epochs} epochs)",
            f"{seconds:.0f} s",
            f"<= {TARGET_TIME_RATIO:g}x the reference's",
            fast,
            reference=f"{REFERENCE}, {ref_epochs} epochs: {ref_seconds:.0f} s",
            ratio=f"{ratio:.2f}x",
        )
        if args.classify:
            for augment in augments:
                started = time.perf_counter()
                result = compare_classifiers(
                    model,
                    datasets,
                    config,
                    draws=args.classify_draws,
                    dropouts=tuple(dropouts),
                    finetune_rates=tuple(rates),
                    augment=augment,
                )
                classifying.append(
                    (
                        name,
                        str(result["train_examples"]),
                        f"{augment:g}",
                        str(result["draws"]),
                        f"{result['pretrained_probe_accuracy']:.2%}",
                        f"{result['pretrained_accuracy']:.2%}",
                        f"{result['scratch_accuracy']:.2%}",
                        f"{result['gain_points']:+.2f}",
                        " ".join(
                            f"{100 * (d['pretrained_accuracy'] - d['scratch_accuracy']):+.1f}"
                            for d in result["per_draw"]
                        ),
                        chosen_settings(result, "pretrained"),
                        chosen_settings(result, "scratch"),
                        f"{time.perf_counter() - started:.0f}",
                        "met" if result["gain_points"] >= 5.0 else "missed",
                    )
                )
                record(
                    "denoise",
                    f"pretrained - scratch accuracy, {args.labels_per_class} labels/class, "
                    f"augment {augment:g}",
                    f"{result['gain_points']:+.2f} points",
                    ">= +5 points",
                    result["gain_points"] >= 5.0,
                    reference=f"scratch {result['scratch_accuracy']:.2%}",
                )
                print(
                    f"{name}: classifier gain {result['gain_points']:+.2f} points "
                    f"(augment {augment:g}): {result}",
                    flush=True,
                )
    print()
    print(
        f"Table 1: denoising (target: gain >= {TARGET_GAIN_DB:g} dB with <= 100,000 parameters "
        f"in <= {TARGET_TIME_RATIO:g}x the training time of {REFERENCE}, {ref_epochs} epochs)"
    )
    print_table(denoising)
    if args.classify:
        print(
            f"Table 2: classifiers on {args.labels_per_class} labels per class "
            "(target: pretrained >= scratch + 5 points)"
        )
        print_table(classifying)


if __name__ == "__main__":
    main()
