"""Digit recognizer: accuracy and time-to-accuracy against the classic Keras MNIST recipe.

Run: `python benchmarks/digits.py [--data ../shared/data/mnist] [--point epochs=10 ...]`

Both recipes train on the same 5,400 of the 6,000 training images (10% held out for
validation) and are scored on the same 2,000 test images, in one process, one after the other:

- reference: the classic Keras two-conv-layer MNIST CNN (Conv 32 - pool - Conv 64 - pool -
  dropout 0.5 - dense; about 35k parameters), Adam at 1e-3, batch 128, 15 epochs;
- ours: `i2dl digits train`'s default recipe (small_cnn with batch norm, augmentation, cosine
  decay), built through the app's own `make_datasets` and `build_model`.

Printed: a quality-time table of the reference, the default recipe and each `--point` variant
(test accuracy, training seconds, training time as a multiple of the reference's, and the
seconds to first reach the reference's final accuracy; test accuracy is checked after every
epoch and the checking is not timed), then the input pipeline's batch rate against the training
step rate.
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

from i2dl_keras.apps import digits  # noqa: E402


class EpochClock(keras.callbacks.Callback):
    """Records training seconds (excluding its own test evaluation) and test accuracy per epoch."""

    def __init__(self, test):
        super().__init__()
        self.test = test

    def on_train_begin(self, logs=None):
        self.elapsed, self.seconds, self.accuracy = 0.0, [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.elapsed += time.perf_counter() - self.started
        result = self.model.evaluate(self.test, verbose=0, return_dict=True)
        self.seconds.append(self.elapsed)
        self.accuracy.append(result["accuracy"])


def classic_model(shape) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="classic_keras_mnist",
    )


def fit(model, datasets, epochs):
    clock = EpochClock(datasets.test)
    model.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=epochs,
        callbacks=[clock],
        verbose=0,
        shuffle=False,  # the pipelines shuffle, seeded
    )
    return clock


def pipeline_rate(dataset, batches=200) -> float:
    """Batches per second the input pipeline delivers on its own (after one warm-up pass)."""
    for _ in dataset:
        pass
    count, started = 0, time.perf_counter()
    while count < batches:
        for _ in dataset:
            count += 1
            if count >= batches:
                break
    return count / (time.perf_counter() - started)


def train_point(base_config, overrides: dict, train_examples: int):
    """Trains `digits`' recipe with `overrides` on fresh datasets; returns (model, clock)."""
    config = dataclasses.replace(base_config, **overrides)
    keras.utils.set_random_seed(config.seed)
    data = digits.make_datasets(config, "train")
    config = dataclasses.replace(config, num_classes=10, train_examples=train_examples)
    model = digits.build_model(config)
    return model, fit(model, data, config.epochs), data, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    parser.add_argument("--data", default=str(default))
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the reference recipe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of our recipe's Config, e.g. --set width=16",
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="FIELD=VALUE[,FIELD=VALUE]",
        help="also train this variant of our recipe (repeatable), e.g. --point epochs=10",
    )
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")

    ours_config = digits.Config(data=args.data, seed=args.seed)
    ref_config = dataclasses.replace(ours_config, batch_size=128, augment=False)
    ours_config = dataclasses.replace(ours_config, **settings(digits.Config, args.set))

    keras.utils.set_random_seed(args.seed)
    ref_data = digits.make_datasets(ref_config, "train")
    examples = ref_data.num_examples["train"]
    reference = classic_model((28, 28, 1))
    reference.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    ref = fit(reference, ref_data, args.epochs)
    target = ref.accuracy[-1]

    model, ours, our_data, ours_config = train_point(ours_config, {}, examples)
    points = []
    for spec in args.point:
        overrides = settings(digits.Config, [p for p in spec.split(",") if p])
        point_model, clock, _, point_config = train_point(ours_config, overrides, examples)
        points.append((spec, point_model, clock, point_config))

    steps = -(-examples // ours_config.batch_size)
    step_rate = steps * len(ours.seconds) / ours.seconds[-1]
    batch_rate = pipeline_rate(our_data.train)

    def row(name, net, epochs, clock):
        reached = [t for t, a in zip(clock.seconds, clock.accuracy) if a >= target]
        return (
            name,
            f"{net.count_params():,}",
            str(epochs),
            f"{clock.accuracy[-1]:.2%}",
            f"{clock.seconds[-1]:.1f}",
            f"{clock.seconds[-1] / ref.seconds[-1]:.2f}x",
            f"{reached[0]:.1f}" if reached else "never",
        )

    rows = [
        ("recipe", "params", "epochs", "test acc", "train s", "x reference", f"s to {target:.2%}"),
        row("classic Keras CNN (reference)", reference, args.epochs, ref),
        row("i2dl digits default", model, ours_config.epochs, ours),
    ]
    rows += [row(spec, net, cfg.epochs, clock) for spec, net, clock, cfg in points]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, line in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    ratio = ours.seconds[-1] / ref.seconds[-1]
    print(
        f"default recipe: {ours.accuracy[-1]:.2%} test accuracy (target >= 99.20%), "
        f"training time {ratio:.2f}x the reference's (target <= 0.50x)"
    )
    print(
        f"input pipeline: {batch_rate:.0f} batches/s vs training {step_rate:.1f} steps/s: "
        f"ratio {batch_rate / step_rate:.0f}x   (target >= 10x)"
    )
    record(
        "digits",
        "test accuracy of the default recipe",
        f"{ours.accuracy[-1]:.2%}",
        ">= 99.20%",
        ours.accuracy[-1] >= 0.992,
        reference=f"{target:.2%} (classic Keras CNN)",
    )
    record(
        "digits",
        "training time of the default recipe",
        f"{ours.seconds[-1]:.1f} s",
        "<= 0.50x the reference's",
        ratio <= 0.5,
        reference=f"{ref.seconds[-1]:.1f} s",
        ratio=f"{ratio:.2f}x",
    )
    record(
        "digits",
        "input pipeline batches/s",
        f"{batch_rate:.0f}/s",
        ">= 10x the training steps/s",
        batch_rate / step_rate >= 10,
        reference=f"{step_rate:.1f} steps/s",
        ratio=f"{batch_rate / step_rate:.0f}x",
    )
    print("per-epoch test accuracy, ours:", " ".join(f"{a:.4f}" for a in ours.accuracy))
    print("per-epoch test accuracy, reference:", " ".join(f"{a:.4f}" for a in ref.accuracy))


if __name__ == "__main__":
    main()
