"""Digit recognizer: accuracy and time-to-accuracy against the classic Keras MNIST recipe.

Run: `python benchmarks/digits.py [--data ../shared/data/mnist] [--epochs 15]`

Both recipes train on the same 5,400 of the 6,000 training images (10% held out for
validation) and are scored on the same 2,000 test images, in one process, one after the other:

- reference: the classic Keras two-conv-layer MNIST CNN (Conv 32 - pool - Conv 64 - pool -
  dropout 0.5 - dense; about 35k parameters), Adam at 1e-3, batch 128, 15 epochs;
- ours: `i2dl digits train`'s default recipe (small_cnn with batch norm, augmentation, cosine
  decay), built through the app's own `make_datasets` and `build_model`.

Printed: final test accuracy of each, training seconds, the seconds ours needs to first reach the
reference's final accuracy (test accuracy checked after every epoch, checking time not counted),
and the input pipeline's batch rate against the training step rate.
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
        "--skip-reference", action="store_true", help="train only our recipe (for trying settings)"
    )
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")

    ours_config = digits.Config(data=args.data, seed=args.seed)
    ref_config = dataclasses.replace(ours_config, batch_size=128, augment=False)
    ours_config = dataclasses.replace(ours_config, **settings(digits.Config, args.set))

    keras.utils.set_random_seed(args.seed)
    ref_data = digits.make_datasets(ref_config, "train")
    reference = classic_model((28, 28, 1))
    reference.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    ref = fit(reference, ref_data, args.epochs)

    keras.utils.set_random_seed(args.seed)
    our_data = digits.make_datasets(ours_config, "train")
    ours_config = dataclasses.replace(
        ours_config, num_classes=10, train_examples=ref_data.num_examples["train"]
    )
    model = digits.build_model(ours_config)
    ours = fit(model, our_data, ours_config.epochs)

    target = ref.accuracy[-1]
    reached = [s for s, a in zip(ours.seconds, ours.accuracy) if a >= target]
    time_to_target = reached[0] if reached else float("nan")
    steps = -(-ref_data.num_examples["train"] // ours_config.batch_size)
    step_rate = steps * len(ours.seconds) / ours.seconds[-1]
    batch_rate = pipeline_rate(our_data.train)

    rows = [
        ("recipe", "params", "epochs", "test acc", "train s", f"s to {target:.2%}"),
        (
            "classic Keras CNN (reference)",
            f"{reference.count_params():,}",
            str(args.epochs),
            f"{ref.accuracy[-1]:.2%}",
            f"{ref.seconds[-1]:.1f}",
            f"{ref.seconds[-1]:.1f}",
        ),
        (
            "i2dl digits default",
            f"{model.count_params():,}",
            str(ours_config.epochs),
            f"{ours.accuracy[-1]:.2%}",
            f"{ours.seconds[-1]:.1f}",
            f"{time_to_target:.1f}",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(
        f"time-to-reference-accuracy ratio (ours / reference): "
        f"{time_to_target / ref.seconds[-1]:.2f}   (target <= 0.50)"
    )
    print(f"final test accuracy of ours: {ours.accuracy[-1]:.2%}   (target >= 99.00%)")
    print(
        f"input pipeline: {batch_rate:.0f} batches/s vs training {step_rate:.1f} steps/s: "
        f"ratio {batch_rate / step_rate:.0f}x   (target >= 10x)"
    )
    record(
        "digits",
        "time to the reference's accuracy",
        f"{time_to_target:.1f} s",
        "<= 0.50x the reference's time",
        time_to_target / ref.seconds[-1] <= 0.5,
        reference=f"{ref.seconds[-1]:.1f} s to {target:.2%}",
        ratio=f"{time_to_target / ref.seconds[-1]:.2f}x",
    )
    record(
        "digits",
        "test accuracy",
        f"{ours.accuracy[-1]:.2%}",
        ">= 99.00%",
        ours.accuracy[-1] >= 0.99,
        reference=f"{target:.2%} (classic Keras CNN)",
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
