"""Segmenter: the default recipe's membrane IoU and training time against a plain U-Net.

Run: `python benchmarks/segmentation.py [--data ../shared/data/membrane]`. `--point KEY=VALUE,...`
adds a recipe (the defaults with those settings) to the table, flags such as `--epochs` change
every recipe, `--skip-accuracy` or `--skip-throughput` runs one half only.

1. Quality and time: `i2dl segmentation train --data DATA` as it runs without other flags, i.e.
   `base.train` with a Config that sets only `data` (and where runs go), on the app's own split
   of the 24 slices (seed 0: 20% held out for testing, 10% of the rest for validation). The
   reference, in the same process: a plain Keras U-Net (16, 32, 64 and 128 filters, pairs of
   Conv-BatchNorm-ReLU, max pooling, transposed convolutions, concatenation, softmax) trained
   with Adam at 1e-3 on Keras' sparse cross-entropy for `--reference-steps` (200) steps of 8
   random 256x256 crops of the same training slices, each flipped at random. Every model is
   scored on the same held-out slices, whole, with the app's IoU code. Printed per recipe: the
   membrane class's IoU (label 0, the minority), the mean IoU, the seconds of training
   (`model.fit` alone, the app's validation included) and their ratio to the reference's,
   beside the targets (0.70, 0.80, at most 2x the reference's time) and the score of
   predicting "interior" everywhere.
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
from _settings import settings  # noqa: E402

from i2dl_keras.apps import base, loading, segmentation  # noqa: E402
from i2dl_keras.models.unet import FusedBatchNormalization  # noqa: E402

MEMBRANE, INTERIOR = "0", "255"
TARGETS = {"membrane": 0.70, "mean": 0.80, "time ratio": 2.0}


def plain_unet(
    channels: int, num_classes: int, depth: int, width: int, batch_norm: bool = False
) -> keras.Model:
    """The textbook Keras U-Net: what a user would write without the library."""

    def conv(x, filters):
        if not batch_norm:
            return keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same")(x)
        # As in the app: Keras' default momentum of 0.99 would still hold 13% of the initial
        # statistics after 200 steps.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        return keras.layers.Activation("relu")(x)

    inputs = keras.Input((None, None, channels))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    skips = []
    for level in range(depth + 1):
        for _ in range(2):
            x = conv(x, width * 2**level)
        if level < depth:
            skips.append(x)
            x = keras.layers.MaxPooling2D()(x)
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2**level, 2, strides=2)(x)
        x = keras.layers.Concatenate()([skips[level], x])
        for _ in range(2):
            x = conv(x, width * 2**level)
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


def arrays(dataset) -> tuple[np.ndarray, np.ndarray]:
    """All images and masks of a batched split, as NumPy arrays."""
    pairs = [(x.numpy(), y.numpy()) for x, y in dataset]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def random_crops(images, masks, batch: int, size: int, seed: int):
    """Endless batches of random `size` x `size` crops, each flipped at random along each axis."""
    rng = np.random.default_rng(seed)
    while True:
        xs, ys = [], []
        for i in rng.integers(0, len(images), batch):
            top = rng.integers(0, images.shape[1] - size + 1)
            left = rng.integers(0, images.shape[2] - size + 1)
            x = images[i, top : top + size, left : left + size]
            y = masks[i, top : top + size, left : left + size]
            for axis in (0, 1):
                if rng.random() < 0.5:
                    x, y = np.flip(x, axis), np.flip(y, axis)
            xs.append(x)
            ys.append(y)
        yield np.stack(xs).astype("float32"), np.stack(ys)


def scores(predict, test) -> dict:
    """The app's IoU metrics of `predict` (images -> class ids) on the test split."""
    matrix = np.zeros((2, 2), np.int64)
    for pixels, masks in test:
        matrix += segmentation.confusion_matrix(masks.numpy(), predict(pixels.numpy()), 2)
    return segmentation.metrics_from_confusion(matrix)


def reference_run(config: segmentation.Config, steps: int) -> dict:
    """The reference recipe on the app's split of `config.data`: scores and training seconds."""
    grey = dataclasses.replace(config, channels=1, crop_size=0, augment=False, batch_size=1)
    datasets = segmentation.make_datasets(grey, "train")
    images, masks = arrays(datasets.train)
    keras.utils.set_random_seed(config.seed)
    model = plain_unet(1, len(datasets.class_names), depth=3, width=16, batch_norm=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    started = time.perf_counter()
    crops = random_crops(images, masks, 8, 256, config.seed)
    model.fit(crops, steps_per_epoch=steps, shuffle=False, verbose=0)
    seconds = time.perf_counter() - started
    test = scores(lambda x: model.predict(x, verbose=0).argmax(-1), datasets.test)
    return {"test": test, "seconds": seconds, "parameters": model.count_params(), "steps": steps}


def app_run(config: segmentation.Config) -> dict:
    """`base.train` with `config`: the test scores, seconds of `fit` and epochs of the run."""
    run = base.train(segmentation, config, echo=lambda s: print(s, flush=True))
    metrics = json.loads((run.path / base.METRICS_FILE).read_text())
    return {
        "test": metrics["test"],
        "seconds": metrics["train_seconds"],
        "parameters": metrics["parameters"],
        "epochs": f"{metrics['epochs_run']}/{run.config.epochs}",
        "path": run.path,
    }


def baseline_all_interior(datasets: loading.Datasets) -> dict:
    interior = datasets.class_names.index(INTERIOR)
    return scores(lambda x: np.full(x.shape[:3], interior), datasets.test)


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _name(overrides: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "app defaults"


def _summary(result: dict) -> str:
    test = result["test"]
    return (
        f"membrane IoU {test['iou_per_class'][0]:.3f}, mean IoU {test['mean_iou']:.3f}, "
        f"{result['seconds']:.0f} s of training"
    )


def accuracy_part(recipes: dict[str, segmentation.Config], reference_steps: int) -> None:
    """Trains the reference and every recipe, then prints the quality-time table.

    The first recipe is the one the verdicts are recorded for.
    """
    first = next(iter(recipes.values()))
    datasets = segmentation.make_datasets(first, "train")
    if datasets.class_names != [MEMBRANE, INTERIOR]:
        sys.exit(f"{first.data}: expected the membrane classes {[MEMBRANE, INTERIOR]}")
    print(f"split: {', '.join(datasets.notes)}\n")
    baseline = baseline_all_interior(datasets)
    print(f"reference: {reference_steps} steps of 8 random 256x256 crops", flush=True)
    reference = reference_run(first, reference_steps)
    print(f"reference: {_summary(reference)}", flush=True)
    results = {}
    for name, config in recipes.items():
        results[name] = app_run(config)
        ratio = results[name]["seconds"] / reference["seconds"]
        print(f"{name}: {_summary(results[name])} ({ratio:.2f}x the reference)", flush=True)

    def row(name, result, epochs):
        test = result["test"]
        return (
            f"{name} ({result['parameters']:,} parameters)",
            f"{test['iou_per_class'][0]:.3f}",
            f"{test['mean_iou']:.3f}",
            f"{test['pixel_accuracy']:.3f}",
            epochs,
            f"{result['seconds']:.0f}",
            f"{result['seconds'] / reference['seconds']:.2f}x",
        )

    print()
    table(
        [
            ("recipe", "membrane IoU", "mean IoU", "pixel acc", "epochs", "train s", "/ reference"),
            *[row(name, result, result["epochs"]) for name, result in results.items()],
            row("reference: plain Keras U-Net", reference, f"{reference_steps} steps"),
            (
                '"interior" everywhere',
                f"{baseline['iou_per_class'][0]:.3f}",
                f"{baseline['mean_iou']:.3f}",
                f"{baseline['pixel_accuracy']:.3f}",
                "-",
                "-",
                "-",
            ),
            (
                "target",
                f">= {TARGETS['membrane']:.2f}",
                f">= {TARGETS['mean']:.2f}",
                "-",
                "-",
                "-",
                f"<= {TARGETS['time ratio']:.1f}x",
            ),
        ]
    )
    for name, result in results.items():
        print(f"run of {name}: {result['path']}")
    ours = next(iter(results.values()))
    ratio = ours["seconds"] / reference["seconds"]
    for label, value, other, goal in (
        ("membrane IoU (class 0)", ours["test"]["iou_per_class"][0], "iou_per_class", "membrane"),
        ("mean IoU", ours["test"]["mean_iou"], "mean_iou", "mean"),
    ):
        theirs = reference["test"][other]
        theirs = theirs[0] if isinstance(theirs, list) else theirs
        record(
            "segmentation",
            label,
            f"{value:.3f}",
            f">= {TARGETS[goal]:.2f}",
            value >= TARGETS[goal],
            reference=f"plain U-Net, {reference_steps} steps: {theirs:.3f}",
        )
    record(
        "segmentation",
        "training seconds",
        f"{ours['seconds']:.0f} s",
        f"<= {TARGETS['time ratio']:.0f}x the plain U-Net's",
        ratio <= TARGETS["time ratio"],
        reference=f"{reference['seconds']:.0f} s",
        ratio=f"{ratio:.2f}x",
    )


def throughput_part(config: segmentation.Config, steps: int) -> None:
    keras.utils.set_random_seed(config.seed)
    datasets = segmentation.make_datasets(config, "train")
    config = dataclasses.replace(
        config,
        num_classes=len(datasets.class_names),
        train_examples=datasets.num_examples["train"],
    )
    ours = segmentation.build_model(config)
    plain = matched_plain_unet(
        ours.count_params(), config.channels, config.num_classes, config.depth
    )
    no_bn = segmentation.build_model(dataclasses.replace(config, batch_norm=False))
    ours_label = "i2dl segmentation (the app's model)"
    plain_label = f"plain Keras U-Net (width {plain.name.rsplit('w', 1)[1]})"
    models = {
        ours_label: ours,
        "  the same with keras.layers.BatchNormalization (unfused)": unfused(ours, config),
        "  the same with --no-batch-norm": no_bn,
        plain_label: plain,
    }
    rates = step_rates(models, datasets.train, steps)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "membrane"
    parser.add_argument("--data", default=str(default))
    # The recipe: the app's defaults unless given.
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--crop-size", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--depth", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--loss", choices=("ce", "dice", "ce+dice"))
    parser.add_argument("--class-weights")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--patience", type=int)
    parser.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="another recipe for the quality-time table: comma-separated Config settings over "
        "the app's defaults, e.g. epochs=60 (repeatable)",
    )
    parser.add_argument(
        "--reference-steps", type=int, default=200, help="training steps of the reference"
    )
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each model")
    parser.add_argument("--output-dir", default="saved_models/benchmarks")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the membrane folder")

    names = ("epochs", "crop_size", "batch_size", "depth", "width", "loss", "class_weights")
    names += ("learning_rate", "patience", "tta", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    common = dict(data=args.data, output_dir=args.output_dir)
    recipes = {_name(overrides): segmentation.Config(**common, **overrides)}
    for point in args.point:
        more = {**overrides, **settings(segmentation.Config, [p for p in point.split(",") if p])}
        recipes[_name(more)] = segmentation.Config(**common, **more)
    for config in recipes.values():
        config.validate()
    print(f"recipes: {list(recipes)}; {keras.backend.backend()} backend\n")

    if not args.skip_accuracy:
        accuracy_part(recipes, args.reference_steps)
    if not args.skip_throughput:
        throughput_part(next(iter(recipes.values())), args.steps)


if __name__ == "__main__":
    main()
