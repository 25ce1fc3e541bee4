"""Transfer learning on MNIST: does a backbone pretrained on digits 0-4 help on digits 5-9?

Run: `python benchmarks/transfer.py [--data ../shared/data/mnist] [--seeds 0 1 2]
[--head-pool flatten avg]`

Source task: digits 0-4 of the MNIST training images. Target task: digits 5-9 with
`--labels-per-class` labelled training images per class (10 of all of them held out for early
stopping), scored on the test images of digits 5-9. Every row is built from the app's own pieces
(`make_datasets` with `classes` and `labels_per_class`, `build_backbone`, `classifier`,
`pretrain`, `train_stages`): the `small_cnn` backbone at 28x28, random rotations and zooms, and
the app's head reading the feature map by `--head-pool` (`flatten` or `avg`); the source network
is pretrained with the same head type.

Rows, each the mean (and standard deviation) over the seeds; each seed draws its own labelled
images and initial weights, shared by all rows of that seed:

- `scratch`: the whole network trained on the target images from its initial weights.
- `first k conv layer(s) transferred (frozen)`: Yosinski et al.'s (2014) "AnB" experiment: the
  first k conv layers copied from the pretrained backbone and frozen, the layers above trained
  from their initial weights with the head (same budget as scratch).
- `app recipe`: what `i2dl transfer train --pretrain-on ... --unfreeze -1` does: stage 1 (head
  only) then stage 2 with the whole backbone at `--fine-tune-lr`.
- `source classifier outputs (task-specific)`: the pretrained network's own 0-4 probabilities
  as the only features, frozen, with a new softmax on top.

Printed per head type: the table, and whether the app recipe beats scratch by at least 3 points
(the target). Each fit keeps the weights of its best validation loss.
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
import numpy as np  # noqa: E402
from _report import record  # noqa: E402

from i2dl_keras.apps import base, transfer  # noqa: E402
from i2dl_keras.models import backbone_units  # noqa: E402


def conv_layers(backbone: keras.Model) -> list[str]:
    return [unit[0].name for unit in backbone_units(backbone, "layers")]


def train_partly_transferred(config, datasets, initial, pretrained, k, epochs) -> float:
    """First `k` conv layers pretrained and frozen, the rest from `initial`, all trained above."""
    backbone = transfer.build_backbone(config)
    backbone.set_weights(initial)
    source = transfer.build_backbone(config)
    source.set_weights(pretrained)
    backbone.trainable = True
    for name in conv_layers(backbone)[:k]:
        layer = backbone.get_layer(name)
        layer.set_weights(source.get_layer(name).get_weights())
        layer.trainable = False
    model = transfer.classifier(backbone, config, config.num_classes, training=None)
    transfer.compile_stage(model, config, 1)
    model.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=epochs,
        callbacks=[base.early_stopping(config)],
        verbose=0,
        shuffle=False,  # the pipeline shuffles, seeded
    )
    return transfer.evaluate_model(model, datasets.test, config)["accuracy"]


def app_recipe(config, datasets, pretrained) -> float:
    model = transfer.build_model(config)
    transfer.backbone_of(model).set_weights(pretrained)
    transfer.train_stages(
        model,
        datasets.train,
        datasets.validation,
        config,
        [base.early_stopping(config)],
        report=None,
    )
    return transfer.evaluate_model(model, datasets.test, config)["accuracy"]


def source_outputs(config, datasets, source_net, epochs) -> float:
    """A new softmax on the frozen source classifier's 0-4 probabilities."""
    source_net.trainable = False
    inputs = keras.Input(source_net.input.shape[1:])
    outputs = keras.layers.Dense(config.num_classes, activation="softmax")(source_net(inputs))
    model = keras.Model(inputs, outputs)
    transfer.compile_stage(model, config, 1)
    model.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=epochs,
        callbacks=[base.early_stopping(config)],
        verbose=0,
        shuffle=False,  # the pipeline shuffles, seeded
    )
    return transfer.evaluate_model(model, datasets.test, config)["accuracy"]


RECIPE = "app recipe: head, then fine-tune all"


def run_seed(args, seed: int, head_pool: str) -> dict[str, float]:
    keras.utils.set_random_seed(seed)
    config = transfer.Config(
        data=args.data,
        backbone="small_cnn",
        weights="none",
        image_size=28,
        head_pool=head_pool,
        flip=False,
        batch_size=32,
        learning_rate=3e-3,
        patience=args.patience,
        classes=["5", "6", "7", "8", "9"],
        labels_per_class=args.labels_per_class,
        pretrain_on=args.data,
        pretrain_classes=["0", "1", "2", "3", "4"],
        pretrain_epochs=args.pretrain_epochs,
        head_epochs=args.head_epochs,
        epochs=args.fine_tune_epochs,
        unfreeze=-1,
        fine_tune_lr=args.fine_tune_lr,
        seed=seed,
    )
    datasets = transfer.make_datasets(config, "train")
    config = dataclasses.replace(config, num_classes=len(datasets.class_names))
    model = transfer.build_model(config)
    backbone = transfer.backbone_of(model)
    initial = backbone.get_weights()
    started = time.perf_counter()
    source, source_net = transfer.pretrain(model, config, report=None)
    pretrained = backbone.get_weights()
    print(
        f"{head_pool} head, seed {seed}: pretrained on digits 0-4 in "
        f"{time.perf_counter() - started:.0f} s; target: "
        + ", ".join(f"{k} {v}" for k, v in datasets.num_examples.items()),
        flush=True,
    )
    results = {"source accuracy (digits 0-4 test)": source["accuracy"]}
    for k in range(len(conv_layers(backbone)) + 1):
        name = "scratch" if k == 0 else f"first {k} conv layer(s) transferred (frozen)"
        results[name] = train_partly_transferred(
            config, datasets, initial, pretrained, k, args.scratch_epochs
        )
    results[RECIPE] = app_recipe(config, datasets, pretrained)
    results["source classifier outputs (task-specific)"] = source_outputs(
        config, datasets, source_net, args.scratch_epochs
    )
    print("  " + "; ".join(f"{k}: {v:.2%}" for k, v in results.items()), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    parser.add_argument("--data", default=str(default), help="folder of the MNIST IDX files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one row per seed")
    parser.add_argument(
        "--labels-per-class", type=int, default=20, help="labelled target images per class"
    )
    parser.add_argument("--pretrain-epochs", type=int, default=10, help="most source epochs")
    parser.add_argument(
        "--scratch-epochs", type=int, default=60, help="most epochs of the scratch and AnB rows"
    )
    parser.add_argument("--head-epochs", type=int, default=30, help="most epochs of stage 1")
    parser.add_argument("--fine-tune-epochs", type=int, default=30, help="most epochs of stage 2")
    parser.add_argument("--fine-tune-lr", type=float, default=1e-4, help="learning rate of stage 2")
    parser.add_argument("--patience", type=int, default=15, help="early-stopping patience")
    parser.add_argument(
        "--head-pool",
        nargs="+",
        default=["flatten", "avg"],
        choices=["flatten", "avg"],
        help="head types to measure, one table each",
    )
    args = parser.parse_args()
    if not Path(args.data).exists():
        sys.exit(f"no data at {args.data}: pass --data PATH to the MNIST IDX files")

    for head_pool in args.head_pool:
        started = time.perf_counter()
        per_seed = [run_seed(args, seed, head_pool) for seed in args.seeds]
        rows = list(per_seed[0])
        width = max(len(r) for r in rows)
        print(
            f"\nMNIST digits 0-4 -> 5-9, {args.labels_per_class} labels per class, "
            f"{head_pool} head, seeds {args.seeds}, {time.perf_counter() - started:.0f} s"
        )
        print(f"{'test accuracy on digits 5-9':{width}}  {'mean':>7}  {'sd':>6}  per seed")
        for row in rows:
            values = np.array([r[row] for r in per_seed])
            print(
                f"{row:{width}}  {values.mean():7.2%}  {values.std():6.2%}  "
                + "  ".join(f"{v:.2%}" for v in values)
            )
        gain = np.mean([r[RECIPE] - r["scratch"] for r in per_seed])
        verdict = "meets" if gain >= 0.03 else "misses"
        print(f"app recipe - scratch: {gain * 100:+.1f} points ({verdict} the +3 point target)\n")
        scratch = np.mean([r["scratch"] for r in per_seed])
        record(
            "transfer",
            f"pretrained - scratch accuracy ({head_pool} head, {len(args.seeds)} seeds)",
            f"{gain * 100:+.1f} points",
            ">= +3 points",
            gain >= 0.03,
            reference=f"scratch {scratch:.2%}",
        )


if __name__ == "__main__":
    main()
