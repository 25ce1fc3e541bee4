"""The data an app trains on: `load_datasets` turns `--data` into batched train, validation
and test pipelines (`Datasets`), and the run's classes and class weights come from them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from i2dl_keras import data as i2dl_data
from i2dl_keras import distribute
from i2dl_keras.apps.settings import (
    CACHE_MODES,
    BaseConfig,
    ClassesConfig,
    UsageError,
    class_names_of,
    config_to_dict,
)


@dataclasses.dataclass
class Datasets:
    """Batched pipelines and what the user should know about where they came from."""

    train: tf.data.Dataset | None
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    class_names: list[str]
    source_name: str
    notes: list[str]
    num_examples: dict[str, int] = dataclasses.field(default_factory=dict)
    # Class id -> loss weight, set by `train` from `--class-weight`; for every `fit` of the run.
    class_weight: dict[int, float] | None = None


def class_weights(config: BaseConfig, datasets: Datasets) -> dict[int, float] | None:
    """The loss weight of each class id that `config.class_weight` asks for, or `None`.

    `"balanced"` gives class `c` the weight `n / (k * n_c)` (n training examples, k classes,
    n_c of them in class `c`), so every class weighs as much in total; a JSON object names some
    classes' weights, the others keep 1.

    Raises:
        UsageError: for a value that is neither, or names a class the data does not have.
    """
    spec = getattr(config, "class_weight", None)
    if not spec:
        return None
    names = class_names_of(config)
    if spec == "balanced":
        counts = np.zeros(len(names))
        for _, labels in datasets.train:
            counts += np.bincount(np.asarray(labels).reshape(-1).astype(int), minlength=len(names))
        if (counts == 0).any():
            empty = [n for n, c in zip(names, counts) if c == 0]
            raise UsageError(f"--class-weight balanced: no training examples of {empty}")
        return {i: float(counts.sum() / (len(names) * c)) for i, c in enumerate(counts)}
    try:
        given = json.loads(spec)
    except json.JSONDecodeError:
        given = None
    if not isinstance(given, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in given.values()
    ):
        raise UsageError(
            f"--class-weight must be 'balanced' or a JSON object of class name -> weight >= 0, "
            f"got {spec!r}"
        )
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UsageError(f"--class-weight names unknown classes {unknown}; the classes: {names}")
    return {i: float(given.get(name, 1.0)) for i, name in enumerate(names)}


def load_datasets(
    config: BaseConfig,
    task: str,
    purpose: str,
    preprocess: Callable | None = None,
    augment: Callable | None = None,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    select: Callable[[i2dl_data.Source], i2dl_data.Source] | None = None,
) -> Datasets:
    """Loads `config.data` and builds the pipelines an app needs.

    The pipelines cache their examples as `config.cache` says (see `make_pipeline`); with a
    file path, each split has its own files, named after the path, a hash of the settings
    that decide the examples, and the split.

    Args:
        config: The run's config (data source, fractions, batch size, seed).
        task: The data layer's task name.
        purpose: `"train"` (train/validation/test splits; a test fraction is held out when the
            source has no test split) or `"evaluate"` (only the test split, or the whole
            source when it has none).
        preprocess: Per-example `(x, y) -> (x, y)` map. Defaults to `None`.
        augment: Per-batch `(x, y) -> (x, y)` map for training batches. Defaults to `None`.
        image_size: Resize images at load time. Defaults to `None`.
        channels: Force 1 or 3 image channels. Defaults to `None`.
        select: `Source -> Source` applied between loading and splitting, e.g. to keep some
            classes or a few labels per class. Defaults to `None`.

    Returns:
        The `Datasets`.
    """
    cache_prefix = _cache_prefix(
        config,
        {"task": task, "purpose": purpose, "image_size": image_size, "channels": channels},
    )
    source = i2dl_data.load_source(
        config.data,
        task,
        data_dir=config.data_dir,
        data_format=config.data_format,
        encoding=config.encoding,
        skip_bad_files=config.skip_bad_files,
        download=config.download,
        image_size=image_size,
        channels=channels,
        seed=config.seed,
    )
    if select is not None:
        source = select(source)
    notes = list(source.notes)

    def pipeline(ds, training, split):
        ds = i2dl_data.make_pipeline(
            ds,
            config.batch_size,
            training=training,
            seed=config.seed,
            preprocess=preprocess,
            augment=augment if training else None,
            cache=config.cache if cache_prefix is None else f"{cache_prefix}-{split}",
            deterministic=config.deterministic,
        )
        # In-memory sources cannot be sharded by file across workers: shard by element.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return ds.with_options(options)

    if purpose == "evaluate":
        if source.test is not None:
            test, count = source.test, source.num_examples.get("test")
        else:
            test, count = source.train, source.num_examples.get("train")
            notes.append("the source has no test split of its own: evaluating on all of it")
        return Datasets(
            None,
            None,
            pipeline(test, False, "test"),
            source.class_names,
            source.name,
            notes,
            {"test": count} if count is not None else {},
        )
    train, validation, test, split_notes = i2dl_data.train_val_test(
        source,
        validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    notes.extend(split_notes)
    counts = {
        name: _count(ds)
        for name, ds in (("train", train), ("validation", validation), ("test", test))
    }
    return Datasets(
        pipeline(train, True, "train"),
        pipeline(validation, False, "validation"),
        pipeline(test, False, "test"),
        source.class_names,
        source.name,
        notes,
        counts,
    )


# Settings that do not change which examples a pipeline caches, nor their preprocessing.
_NOT_DATA = (
    "epochs",
    "batch_size",
    "learning_rate",
    "patience",
    "min_epochs",
    "strategy",
    "mixed_precision",
    "output_dir",
    "overfit_batches",
    "cache",
)


def _cache_prefix(config: BaseConfig, loading: Mapping[str, Any]) -> str | None:
    """The prefix of a run's `--cache PATH` files, or `None` when it caches in memory or not.

    The name ends in a hash of the settings that decide the cached examples (the app, the data
    source, the split fractions and seed, the app's preprocessing settings, ...), so runs with
    other data settings never read each other's files; runs that differ only in training
    settings (epochs, learning rate, ...) share them.
    """
    if config.cache in CACHE_MODES:
        return None
    path = Path(config.cache).expanduser().absolute()
    prefix = path / "cache" if path.is_dir() else path
    settings = {k: v for k, v in config_to_dict(config).items() if k not in _NOT_DATA}
    if os.path.exists(config.data):
        settings["data"] = os.path.abspath(config.data)
    settings.update(loading, app=type(config).__module__, worker=distribute.task_name())
    text = json.dumps(settings, sort_keys=True, default=str)
    return f"{prefix}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def _count(ds: tf.data.Dataset) -> int:
    n = int(ds.cardinality())
    if n >= 0:
        return n
    return sum(1 for _ in ds)


def from_data(config: BaseConfig, datasets: Datasets) -> BaseConfig:
    """Fills the config fields that the data decides (classes, training-set size).

    The class names are the data's, unless the user named the classes (e.g. the mask values of
    a segmentation set); then there must be as many names as the data has classes.
    """
    names = {f.name for f in dataclasses.fields(config)}
    derived = {}
    if isinstance(config, ClassesConfig) and datasets.class_names:
        found = list(datasets.class_names)
        if config.class_names and len(config.class_names) != len(found):
            raise UsageError(
                f"--class-names gives {len(config.class_names)} names, but --data "
                f"{config.data} has {len(found)} classes ({', '.join(found)})"
            )
        derived["num_classes"] = len(found)
        derived["class_names"] = list(config.class_names or found)
    if "train_examples" in names and "train" in datasets.num_examples:
        derived["train_examples"] = datasets.num_examples["train"]
    return dataclasses.replace(config, **derived)


def check_classes(
    config: BaseConfig, datasets: Datasets, trained_on: Sequence[str] | None = None
) -> None:
    """Refuses data whose classes differ from those the run was trained on.

    The number of classes must match, and so must the names where the data has some and the
    names of the training data (`trained_on`) are known: a folder `seven/` is not class 7 of a
    model whose data named it otherwise.
    """
    if not isinstance(config, ClassesConfig) or not datasets.class_names:
        return
    found, trained = list(datasets.class_names), class_names_of(config)
    if len(found) != len(trained) or (trained_on and found != list(trained_on)):
        expected = list(trained_on or trained)
        raise UsageError(
            f"--data {config.data} has the classes {found}, but the model was trained on "
            f"{expected}; evaluate it on data with the same classes"
        )
