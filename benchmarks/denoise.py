"""Denoising autoencoders on MNIST: PSNR gain per variant, and pretrained-encoder classifiers.

Run: `python benchmarks/denoise.py [--data ../shared/data/mnist] [--epochs 20]
[--recipes conv,conv-mse,conv-small,conv-k3,bottleneck,sparse,contractive,stacked] [--no-classify]`

Every recipe trains with the app's own code (`apps.denoise.make_datasets`, `build_model` and
`fit`, so the stacked recipe pretrains greedily before fine-tuning) on the same 5,400 of the
6,000 training images, corrupted afresh every epoch, with early stopping on the same 600
validation images, and is scored on the same 2,000 test images with the same fixed noise.

Table 1 (the issue's target: with Gaussian noise of standard deviation 0.5, a denoised PSNR at
least 12 dB above the noisy input's, with at most 100k parameters): per recipe, parameters,
epochs run, mean PSNR and SSIM of the noisy and denoised test images, the gain, seconds.

Table 2 (the target: at least 5 points of accuracy gained): for each trained recipe, a softmax
head on its encoder fine-tuned on `--labels-per-class` labelled training images per class,
against the same network from random weights on the same images (`compare_classifiers`).
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

from apps import denoise  # noqa: E402
from i2dl_keras.callbacks import EarlyStopping  # noqa: E402

# name -> Config overrides; `conv` is the app's default.
RECIPES = {
    "conv": {},
    "conv-mse": {"loss": "mse"},
    "conv-small": {"width": 16, "kernel_size": 3},  # conv_autoencoder's default: 16, 32 filters
    "conv-k3": {"width": 32, "kernel_size": 3},
    "bottleneck": {"variant": "bottleneck"},
    "sparse": {"variant": "sparse", "code_size": 256},
    "contractive": {"variant": "contractive", "code_size": 128},
    "stacked": {"variant": "stacked"},
}


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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--noise", default="gaussian", choices=denoise.NOISES)
    parser.add_argument("--noise-level", type=float, default=0.5)
    parser.add_argument("--recipes", default="conv,conv-small,bottleneck,stacked")
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--classify", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        sys.exit(f"unknown recipe(s) {unknown}; choose from {sorted(RECIPES)}")

    base_config = denoise.Config(
        data=args.data,
        epochs=args.epochs,
        noise=args.noise,
        noise_level=args.noise_level,
        labels_per_class=args.labels_per_class,
        seed=args.seed,
    )
    keras.utils.set_random_seed(args.seed)
    datasets = denoise.make_datasets(base_config, "train")
    base_config = dataclasses.replace(
        base_config, num_classes=10, train_examples=datasets.num_examples["train"]
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
            "target",
        )
    ]
    classifying = [
        (
            "encoder of",
            "labels",
            "pretrained acc",
            "scratch acc",
            "gain points",
            "seconds",
            "target",
        )
    ]
    for name in names:
        config = dataclasses.replace(base_config, **RECIPES[name])
        config.validate()
        keras.utils.set_random_seed(args.seed)
        model = denoise.build_model(config)
        callbacks = [
            EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
        ]
        started = time.perf_counter()
        history, _ = denoise.fit(model, datasets, config, callbacks, verbose=0)
        seconds = time.perf_counter() - started
        scores = denoise.evaluate_model(model, datasets.test, config)
        gain = scores["psnr_denoised"] - scores["psnr_noisy"]
        params = model.count_params()
        met = gain >= 12.0 and params <= 100_000
        denoising.append(
            (
                name,
                f"{params:,}",
                str(len(history["loss"])),
                f"{scores['psnr_noisy']:.2f}",
                f"{scores['psnr_denoised']:.2f}",
                f"{gain:.2f}",
                f"{scores['ssim_noisy']:.3f}",
                f"{scores['ssim_denoised']:.3f}",
                f"{seconds:.0f}",
                "met" if met else "missed",
            )
        )
        print(f"{name}: gain {gain:.2f} dB with {params:,} parameters in {seconds:.0f} s")
        if args.classify:
            started = time.perf_counter()
            result = denoise.compare_classifiers(model, datasets, config)
            classifying.append(
                (
                    name,
                    str(result["train_examples"]),
                    f"{result['pretrained_accuracy']:.2%}",
                    f"{result['scratch_accuracy']:.2%}",
                    f"{result['gain_points']:+.2f}",
                    f"{time.perf_counter() - started:.0f}",
                    "met" if result["gain_points"] >= 5.0 else "missed",
                )
            )
            print(f"{name}: classifier gain {result['gain_points']:+.2f} points")
    print()
    print("Table 1: denoising (target: gain >= 12 dB with <= 100,000 parameters)")
    print_table(denoising)
    if args.classify:
        print(
            f"Table 2: classifiers on {args.labels_per_class} labels per class "
            "(target: pretrained >= scratch + 5 points)"
        )
        print_table(classifying)


if __name__ == "__main__":
    main()
