"""Segmenter: membrane IoU against the issue's targets, and training throughput against plain Keras.

Run: `python benchmarks/segmentation.py [--data ../shared/data/membrane] [--epochs 150]`
(`--skip-accuracy` or `--skip-throughput` runs one half only).

The recipe (the defaults here): U-Net depth 4, width 16 (the full-resolution level with 8
filters, as the app builds it), fused batch normalization (momentum 0.9), batch 4 of random
256x256 crops, Adam at 2e-3 with cosine decay over 150 epochs, no early stopping
(`--patience 150`: two validation images make the validation loss too noisy to stop on),
cross-entropy plus Dice (`--loss ce+dice`), no test-time augmentation (`--tta` to score with it).

1. Accuracy: `i2dl segmentation train`'s recipe, through `base.train` itself, on the membrane
   slices: 6 of the 24 held out for testing (`--test-fraction 0.25`), 10% of the other 18 for
   validation, random crops for training, whole 512x512 images for testing. Printed: the
   membrane class's IoU (label 0, the minority) and the mean IoU, beside the issue's targets
   (0.70 and 0.80), the score of predicting "interior" everywhere, and the same model scored
   with test-time augmentation switched the other way.
2. Throughput: the app's model (built by `build_model`, with its loss and metrics) and a plain
   Keras U-Net (Conv-ReLU pairs, max pooling, transposed convolutions, concatenation, softmax;
   Keras' sparse cross-entropy and accuracy) whose width is chosen to match the app's parameter
   count, trained on the same batches of the app's `tf.data` pipeline of augmented crops, in
   one process, taking turns step by step so that a machine busy with other work slows all
   alike. Reported: crops per second from each model's median step time (the app's model also
   with Keras' unfused batch normalization and without batch normalization, for scale), and
   what the input pipeline delivers on its own. Expect the app's model to train at about the
   plain U-Net's speed; the ratio is noisy on a busy machine.

Measured figures are in `benchmarks/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _report import record  # noqa: E402

from i2dl_keras.apps import base, segmentation  # noqa: E402
from i2dl_keras.models.unet import FusedBatchNormalization  # noqa: E402


def plain_unet(channels: int, num_classes: int, depth: int, width: int) -> keras.Model:
    """The textbook Keras U-Net: what a user would write without the library."""
    inputs = keras.Input((None, None, channels))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    skips = []
    for level in range(depth + 1):
        for _ in range(2):
            x = keras.layers.Conv2D(width * 2**level, 3, padding="same", activation="relu")(x)
        if level < depth:
            skips.append(x)
            x = keras.layers.MaxPooling2D()(x)
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2**level, 2, strides=2)(x)
        x = keras.layers.Concatenate()([skips[level], x])
        for _ in range(2):
            x = keras.layers.Conv2D(width * 2**level, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax")(x)
    return keras.Model(inputs, outputs, name=f"plain_keras_unet_w{width}")


def matched_plain_unet(target: int, channels: int, num_classes: int, depth: int) -> keras.Model:
    best = min(
        range(1, 129),
        key=lambda w: abs(plain_unet(channels, num_classes, depth, w).count_params() - target),
    )
    model = plain_unet(channels, num_classes, depth, best)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def unfused(model: keras.Model, config: segmentation.Config) -> keras.Model:
    """A fresh copy of the app's model with Keras' own `BatchNormalization`, compiled alike."""

    def clone(layer):
        kind = layer.__class__
        if isinstance(layer, FusedBatchNormalization):
            kind = keras.layers.BatchNormalization
        return kind.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    segmentation.compile_segmenter(copy, config)
    return copy


def step_rates(models: dict[str, keras.Model], dataset, steps: int) -> dict[str, float]:
    """Training crops per second of each model, from the median of its step times.

    The models take turns on the same batches, one step each, so that load from other work on
    the machine falls on all of them alike; the first step of each (tracing) is not timed.
    """
    batches = iter(dataset.repeat())
    x, y = next(batches)
    for model in models.values():
        model.train_on_batch(x, y)
    times: dict[str, list[float]] = {label: [] for label in models}
    for _ in range(steps):
        x, y = next(batches)
        for label, model in models.items():
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times[label].append(time.perf_counter() - started)
    return {name: int(x.shape[0]) / float(np.median(t)) for name, t in times.items()}


def pipeline_rate(dataset, batches: int = 50) -> float:
    """Crops per second the input pipeline delivers on its own."""
    iterator = iter(dataset.repeat())
    next(iterator)
    crops, started = 0, time.perf_counter()
    for _ in range(batches):
        crops += int(next(iterator)[0].shape[0])
    return crops / (time.perf_counter() - started)


def baseline_all_interior(datasets: base.Datasets, num_classes: int, interior: int) -> dict:
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for _, masks in datasets.test:
        matrix += segmentation.confusion_matrix(masks.numpy(), np.full(masks.shape, interior), 2)
    return segmentation.metrics_from_confusion(matrix)


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "membrane"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--loss", default="ce+dice", choices=("ce", "dice", "ce+dice"))
    parser.add_argument("--class-weights", default="none")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    # The cosine schedule runs to its end; the best epoch's weights are still restored.
    parser.add_argument("--patience", type=int, default=150)
    parser.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=segmentation.Config.tta,
        help="test-time augmentation (default: the app's)",
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="saved_models/benchmarks")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the membrane folder")

    config = segmentation.Config(
        data=args.data,
        test_fraction=0.25,
        channels=1,
        crop_size=args.crop_size,
        batch_size=args.batch_size,
        depth=args.depth,
        width=args.width,
        loss=args.loss,
        class_weights=args.class_weights,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        patience=args.patience,
        tta=args.tta,
        seed=args.seed,
        output_dir=args.output_dir,
    )
    print(f"settings: {config}\n")

    if not args.skip_accuracy:
        started = time.perf_counter()
        run = base.train(segmentation, config, echo=lambda s: print(s, flush=True))
        seconds = time.perf_counter() - started
        metrics = json.loads((run.path / base.METRICS_FILE).read_text())
        test = metrics["test"]
        datasets = segmentation.make_datasets(config, "train")
        interior = datasets.class_names.index("255")
        baseline = baseline_all_interior(datasets, len(datasets.class_names), interior)
        # The same trained model scored the other way, to show what test-time augmentation adds.
        other = dataclasses.replace(
            config, tta=not config.tta, num_classes=len(datasets.class_names)
        )
        other_test = segmentation.evaluate_model(run.model, datasets.test, other)
        print()
        table(
            [
                ("predictor", "membrane IoU", "mean IoU", "pixel acc", "epochs", "seconds"),
                (
                    '"interior" everywhere',
                    f"{baseline['iou_per_class'][0]:.3f}",
                    f"{baseline['mean_iou']:.3f}",
                    f"{baseline['pixel_accuracy']:.3f}",
                    "-",
                    "-",
                ),
                (
                    f"i2dl segmentation ({metrics['parameters']:,} parameters)",
                    f"{test['iou_per_class'][0]:.3f}",
                    f"{test['mean_iou']:.3f}",
                    f"{test['pixel_accuracy']:.3f}",
                    str(metrics["epochs_run"]),
                    f"{seconds:.0f}",
                ),
                (
                    f"  the same, {'without' if config.tta else 'with'} test-time augmentation",
                    f"{other_test['iou_per_class'][0]:.3f}",
                    f"{other_test['mean_iou']:.3f}",
                    f"{other_test['pixel_accuracy']:.3f}",
                    "-",
                    "-",
                ),
                ("target", ">= 0.700", ">= 0.800", "-", "-", "-"),
            ]
        )
        print(f"run: {run.path}\n")
        for label, value, reference, goal in (
            ("membrane IoU (class 0)", test["iou_per_class"][0], baseline["iou_per_class"][0], 0.7),
            ("mean IoU", test["mean_iou"], baseline["mean_iou"], 0.8),
        ):
            record(
                "segmentation",
                label,
                f"{value:.3f}",
                f">= {goal:.2f}",
                value >= goal,
                reference=f'"interior" everywhere {reference:.3f}',
            )

    if not args.skip_throughput:
        keras.utils.set_random_seed(args.seed)
        datasets = segmentation.make_datasets(config, "train")
        config = dataclasses.replace(
            config,
            num_classes=len(datasets.class_names),
            train_examples=datasets.num_examples["train"],
        )
        ours = segmentation.build_model(config)
        plain = matched_plain_unet(ours.count_params(), 1, config.num_classes, config.depth)
        no_bn = segmentation.build_model(dataclasses.replace(config, batch_norm=False))
        ours_label = "i2dl segmentation (the app's model)"
        plain_label = f"plain Keras U-Net (width {plain.name.rsplit('w', 1)[1]})"
        models = {
            ours_label: ours,
            "  the same with keras.layers.BatchNormalization (unfused)": unfused(ours, config),
            "  the same with --no-batch-norm": no_bn,
            plain_label: plain,
        }
        rates = step_rates(models, datasets.train, args.steps)
        table(
            [
                ("model", "parameters", "crops/s (median step)", "/ plain Keras"),
                *[
                    (k, f"{m.count_params():,}", f"{v:.2f}", f"{v / rates[plain_label]:.2f}")
                    for k, m in models.items()
                    for v in [rates[k]]
                ],
            ]
        )
        ratio = rates[ours_label] / rates[plain_label]
        print(f"\nthroughput ratio (ours / plain Keras): {ratio:.2f}   (target >= 1.00)")
        record(
            "segmentation",
            "training crops/s",
            f"{rates[ours_label]:.2f}/s",
            ">= 1x plain Keras U-Net",
            ratio >= 1.0,
            reference=f"{rates[plain_label]:.2f}/s",
            ratio=f"{ratio:.2f}x",
        )
        print(f"input pipeline alone: {pipeline_rate(datasets.train):.1f} crops/s")


if __name__ == "__main__":
    main()
