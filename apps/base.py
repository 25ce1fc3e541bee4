"""The glue every app shares, written once: `Run`, train, load, evaluate, predict, tune, export.

An app module supplies the task-specific pieces (see `apps/digits.py` for the reference):

- `NAME`, `TASK` and a `Config` dataclass derived from `BaseConfig`;
- `make_datasets(config, purpose)` returning `Datasets` (use `load_datasets` below);
- `build_model(config)` returning a compiled Keras model that takes raw inputs (decoded pixels
  of any dtype and size, or strings) and, for a task with classes, ends in a `ClassNames` layer;
- optionally `adapt(model, datasets, config)`, run before training (e.g. to adapt a
  `TextVectorization` layer on the training split), and `fit(model, datasets, config,
  callbacks, verbose) -> FitResult` for apps that train in stages;
- `HyperModel`, a `ConfigHyperModel` that only maps `hp` onto a `Config`;
- `evaluate_model(model, dataset, config)` returning the task's metrics;
- `write_report(run_dir, model, datasets, config, result)` returning the task's own figures;
- `predict_inputs(run, inputs, batch_size)` returning one structured result per input, and
  optionally `describe_predictions(run, results)`, the lines `i2dl APP predict` prints;
- `serving_endpoints(model, config)` and `serving_check_requests(config)` for the export;
- last, `train, load, tune = app_api(__name__)`: the app's Python API.

A task with classes derives its `Config` from `ClassesConfig`: the class names are decided from
the data when training (or named by the user), stored in the model and the run's `config.json`,
and checked against the data when evaluating.

Artifacts land in `OUTPUT_DIR/APP/`: a run works in a hidden `.incomplete-KEY` folder (KEY is a
hash of its config) that holds the `BackupAndRestore` checkpoint, and is renamed to
`run-TIMESTAMP` only when everything in it is written. Rerunning an interrupted command resumes
from its checkpoint; a finished run is never overwritten.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
import types
import typing
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

import i2dl_keras
from i2dl_keras import data as i2dl_data
from i2dl_keras import distribute, export, tuning
from i2dl_keras.callbacks import EarlyStopping
from i2dl_keras.layers import ClassNames

logger = logging.getLogger("i2dl")

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
STAGES_FILE = "stages.json"


class UsageError(ValueError):
    """A mistake in the settings or inputs a user gave: the message says what was expected.

    The CLI prints it as one line (exit status 2); any other exception is a bug and shows its
    traceback.
    """


def option(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    """A `Config` field with the help text (and allowed values) its command-line flag shows."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass
class BaseConfig:
    """Settings every app has; an app's `Config` adds its own fields after these."""

    data: str = option("builtin", "data source: builtin, synthetic, a TFDS name or a local path")
    data_dir: str | None = option(None, "TFDS data folder (where prepared data sets live)")
    data_format: str | None = option(
        None,
        "force the format of a local path",
        choices=(None, *i2dl_data.FORMATS),
    )
    download: bool = option(False, "let TFDS download the data set (needs network)")
    encoding: str | None = option(None, "text encoding of local text files (default: detect)")
    skip_bad_files: bool = option(False, "skip unreadable files instead of stopping")
    cache: str = option(
        "auto",
        "keep the decoded examples for later epochs: auto (in memory, but image folders are read "
        "again every epoch), memory (for data that fit in memory), or PATH, a prefix of cache "
        "files for data that fit on disk (a folder: files in it); runs with the same data "
        "settings reuse the files, so delete them when the data change",
    )
    epochs: int = option(20, "most training epochs (early stopping may end sooner)")
    batch_size: int = option(64, "examples per batch")
    learning_rate: float = option(1e-3, "peak learning rate")
    patience: int = option(5, "epochs without validation improvement before stopping")
    min_epochs: int = option(
        0, "warm-up epochs that early stopping ignores (neither stops nor keeps them as best)"
    )
    validation_fraction: float = option(0.1, "share of training data held out for validation")
    test_fraction: float = option(0.2, "share held out for testing when the data has no test split")
    seed: int = option(0, "seed for splits, shuffling, augmentation and initial weights")
    deterministic: bool = option(False, "deterministic data order and ops (slower)")
    strategy: str = option("auto", "tf.distribute strategy", choices=distribute.STRATEGIES)
    mixed_precision: bool = option(False, "mixed_float16 on a GPU (ignored on CPU)")
    output_dir: str = option("saved_models", "where runs and exports are written")
    overfit_batches: int = option(
        0,
        "sanity check: train on this many training batches only, without early stopping, and "
        "report whether the loss approaches zero (0: off)",
    )

    def validate(self) -> None:
        """Checks values that the types alone do not; raises `UsageError` naming the flag."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UsageError(f"--{_flag(f.name)} must be a finite number, got {value}")
        positive = ("epochs", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise UsageError(f"--learning-rate must be positive, got {self.learning_rate}")
        for name in ("patience", "min_epochs", "overfit_batches"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{_flag(name)} must be 0 or more, got {getattr(self, name)}")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise UsageError(f"--{_flag(name)} must be between 0 and 1, got {value}")
        _check_cache(self.cache)


def _flag(name: str) -> str:
    return name.replace("_", "-")


CACHE_MODES = ("auto", "memory")


def _check_cache(cache: str) -> None:
    """Refuses a `--cache` path whose files could not be written."""
    if cache in CACHE_MODES:
        return
    if not cache.strip():
        raise UsageError("--cache must be auto, memory or a file path prefix, got ''")
    path = Path(cache).expanduser().absolute()
    folder = path if path.is_dir() or cache.endswith(("/", os.sep)) else path.parent
    if not folder.is_dir():
        raise UsageError(
            f"--cache {cache}: the folder {folder} does not exist; create it or choose a path "
            "in an existing folder"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".i2dl-cache-check-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"--cache {cache}: cannot write to the folder {folder}: {exc.strerror or exc}"
        ) from None


@dataclasses.dataclass
class ClassesConfig(BaseConfig):
    """Settings of a task with classes: their number and names come from the data."""

    num_classes: int = option(2, "number of classes (set from the data when training)")
    class_names: list[str] | None = option(
        None, "class names, comma-separated, in class-id order (default: from the data)"
    )

    def validate(self) -> None:
        super().validate()
        if self.num_classes < 1:
            raise UsageError(f"--num-classes must be at least 1, got {self.num_classes}")
        if self.class_names is not None and len(set(self.class_names)) != len(self.class_names):
            raise UsageError(f"--class-names must be distinct, got {self.class_names}")


def class_names_of(config: BaseConfig) -> list[str]:
    """The run's class names in class-id order (`"0"`, `"1"`, ... where none were recorded)."""
    names = getattr(config, "class_names", None)
    if names:
        return list(names)
    return [str(i) for i in range(getattr(config, "num_classes", 0))]


def config_to_dict(config: BaseConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_key(config: BaseConfig) -> str:
    """A short hash of everything that defines a run's result, to find its interrupted twin."""
    payload = config_to_dict(config)
    payload.pop("output_dir", None)
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


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


def class_weight_option() -> Any:
    """The `class_weight` field of a classifier's `Config`."""
    return option(
        None,
        "weight each class's examples in the loss: 'balanced' (inversely to its share of the "
        "training split) or a JSON object of class name -> weight, e.g. '{\"cat\": 2}'",
    )


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


def _from_data(config: BaseConfig, datasets: Datasets) -> BaseConfig:
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


class ConfigHyperModel(kt.HyperModel):
    """A HyperModel that maps hyperparameters onto an app `Config` and nothing more.

    Subclasses implement `config_for(hp)`; `build(hp)` then calls the app's `build_model` on it,
    and `tune` retrains `final_config(best hp)` with the ordinary training path.
    """

    build_model: Callable[[BaseConfig], keras.Model]

    def __init__(self, config: BaseConfig | None = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def config_for(self, hp: kt.HyperParameters) -> BaseConfig:
        raise NotImplementedError

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        return type(self).build_model(self.config_for(hp))

    def final_config(self, hp: kt.HyperParameters) -> BaseConfig:
        """The configuration `tune` retrains: `config_for(hp)`, unless a subclass's trials
        simplify settings that the final model should keep."""
        return self.config_for(hp)


# --------------------------------------------------------------------------- settings


def field_types(config_cls) -> dict[str, tuple[Any, bool]]:
    """Field name -> (base type, optional?) of a `Config`: `str | None` -> `(str, True)`."""
    hints = typing.get_type_hints(config_cls)
    found = {}
    for f in dataclasses.fields(config_cls):
        hint, optional = hints[f.name], False
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint, optional = args[0], True
        found[f.name] = (hint, optional)
    return found


def type_name(kind: Any) -> str:
    return "list of strings" if typing.get_origin(kind) is list else kind.__name__


def make_config(config_cls, values: Mapping[str, Any], where: str = "") -> BaseConfig:
    """Builds a `Config` from field values, refusing unknown names and values of the wrong type.

    The one check of settings, for keyword arguments of the Python API, `--config FILE.json`
    and stored run folders alike (`where` prefixes the message, e.g. the file's name).

    Raises:
        UsageError: naming the setting and what it expects.
    """
    types_ = field_types(config_cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise UsageError(f"{where}unknown setting(s) {unknown}; known settings: {sorted(types_)}")
    checked = {}
    for key, value in values.items():
        kind, optional = types_[key]
        if value is None and optional:
            checked[key] = value
            continue
        if typing.get_origin(kind) is list:
            ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            value = list(value) if ok else value
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        else:
            ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if not ok:
            raise UsageError(f"{where}{key} expects {type_name(kind)}, got {value!r}")
        checked[key] = value
    return config_cls(**checked)


@contextlib.contextmanager
def caller_state():
    """Runs a block and then restores the global state that belongs to the caller.

    Training seeds Python's, NumPy's and TensorFlow's global random generators and may switch
    Keras' dtype policy (mixed precision); all of them are put back as they were, so calling the
    API from a notebook or another program leaves its state alone.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    tf_seed = tf.compat.v1.get_seed(None)[0]
    policy = keras.config.dtype_policy()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        tf.random.set_seed(tf_seed)
        keras.config.set_dtype_policy(policy)


def progress_verbosity() -> int:
    """Keras' progress bar in a terminal or a notebook, one line per epoch in a log file."""
    return 1 if sys.stdout.isatty() or "ipykernel" in sys.modules else 2


# --------------------------------------------------------------------------- runs


@dataclasses.dataclass(eq=False)
class Run:
    """A trained model of an app with its settings and results: what `train`, `load` and `tune`
    return.

    Attributes:
        app: The app module (`i2dl_keras.apps.digits`, ...).
        model: The trained `keras.Model`; it takes raw inputs (decoded pixels or strings).
        config: The resolved `Config` the model was trained with.
        path: The run folder, or `None` (a worker of a multi-worker run keeps none).
        history: Metric name -> one value per epoch, every epoch of the run.
        metrics: The test metrics measured when training ended.
    """

    app: types.ModuleType
    model: keras.Model
    config: BaseConfig
    path: Path | None = None
    history: dict[str, list] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    report: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def class_names(self) -> list[str] | None:
        """The class names the model carries, in class-id order (`None` for tasks without)."""
        if not isinstance(self.config, ClassesConfig):
            return None
        return ClassNames.of(self.model) or class_names_of(self.config)

    @property
    def data_class_names(self) -> list[str] | None:
        """The class names of the data the run was trained on, where the run folder says."""
        if self.path is None:
            return None
        return _read_json_file(self.path / METRICS_FILE).get("data", {}).get("class_names")

    def evaluate(self, data: str | None = None, **fields: Any) -> dict:
        """Metrics on a data source's test split (or all of it); `data=None` is the run's own.

        Other keyword arguments change settings that do not shape the model (`batch_size`,
        `data_dir`, ...).
        """
        return evaluate(self, data=data, **fields)

    def predict(self, inputs: Any, batch_size: int = 32) -> list:
        """Predictions for what a user holds, one result per input; see the app's docstring."""
        return self.app.predict_inputs(self, inputs, batch_size)

    def export(
        self,
        format: str = "saved_model",
        *,
        version: int | None = None,
        quantize: str | None = None,
    ) -> Path:
        """Exports the model, checked against it, under `config.output_dir`; see `export`."""
        return export_run(self, format=format, version=version, quantize=quantize)

    def figures(self) -> list:
        """The report's matplotlib figures (also saved as PNGs in the run folder)."""
        if self.report:
            return list(self.report.values())
        if self.path is None:
            return []
        from i2dl_keras.apps import plots

        return [plots.image_file_figure(p) for p in sorted(self.path.glob("*.png"))]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_fmt_metric(v)}" for k, v in self.metrics.items())
        return f"<Run {self.app.NAME} {self.path or '(not saved)'}: {shown}>"


def resolve_model_path(path: str | os.PathLike) -> tuple[Path, Path]:
    """Returns `(model_file, run_dir)` for a run folder or the `.keras` file inside one."""
    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise UsageError(
            f"{path}: no {MODEL_FILE} there; pass a run folder written by `train` "
            "(saved_models/APP/run-...) or the .keras file in it"
        )
    return model_file, model_file.parent


def _read_json_file(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise UsageError(f"{path}: expected a JSON object")
    return values


def load(app, path: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> Run:
    """Loads a run folder written by `train` (or a `.keras` file) as a `Run`.

    What the run writes later (exports, predictions) goes under `output_dir`; by default where
    the run folder itself lies (`OUTPUT/APP/run-...` -> `OUTPUT`), never where its stored
    settings say. Nor is the training run's `cache` kept: data read for the loaded run are
    cached as `cache="auto"` does, unless `evaluate` is given another `cache`.
    """
    model_file, run_dir = resolve_model_path(path)
    config_file = run_dir / CONFIG_FILE
    saved = _read_json_file(run_dir / METRICS_FILE)
    if saved.get("app", app.NAME) != app.NAME:
        raise UsageError(
            f"{run_dir} is a run of the {saved['app']} app; load it with "
            f"i2dl_keras.apps.{saved['app']} (i2dl {saved['app']} ...)"
        )
    values = _read_json_file(config_file)
    known = {f.name for f in dataclasses.fields(app.Config)}
    # Where the training run cached its data belongs to that machine and run, not to the model.
    values = {k: v for k, v in values.items() if k in known and k != "cache"}
    if output_dir is None:
        in_layout = config_file.is_file() and run_dir.parent.name == app.NAME
        output_dir = run_dir.parent.parent if in_layout else BaseConfig.output_dir
    values["output_dir"] = str(output_dir)
    config = make_config(app.Config, values, where=f"{config_file}: ")
    try:
        model = keras.saving.load_model(model_file)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "not found" in reason.lower() or isinstance(exc, zipfile.BadZipFile):
            # Keras reports a damaged archive as missing; the file is there.
            reason = "the file is damaged or not a Keras archive"
        raise UsageError(f"{model_file}: not a readable .keras model ({reason})") from None
    if isinstance(config, ClassesConfig) and ClassNames.of(model):
        names = ClassNames.of(model)
        config = dataclasses.replace(config, class_names=names, num_classes=len(names))
    return Run(
        app,
        model,
        config,
        run_dir if config_file.is_file() else None,
        history=saved.get("history", {}),
        metrics=saved.get("test", {}),
    )


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _final_run_dir(root: Path) -> Path:
    stamp = time.strftime("run-%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 2
    while candidate.exists():
        candidate, n = root / f"{stamp}-{n}", n + 1
    return candidate


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# --------------------------------------------------------------------------- verbs


class BuildOptimizer(keras.callbacks.Callback):
    """Creates the optimizer's variables before the first training step.

    Without a distribution strategy, Keras creates them while tracing that step, and a trace that
    creates variables is run twice, which costs a short run or a tuning trial much of its time.
    Built here, under the model's strategy, from the variables that are trainable when `fit`
    starts (a fine-tuning stage recompiles with a new optimizer after unfreezing).
    """

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if optimizer is None or optimizer.built or not self.model.built:
            return
        if self.model.trainable_variables:
            with self.model.distribute_strategy.scope():
                optimizer.build(self.model.trainable_variables)


def early_stopping(config: BaseConfig) -> EarlyStopping:
    """The run's early stopping: on the validation loss, `--patience`, `--min-epochs` warm-up.

    The best epoch's weights are restored, also when the epochs run out first.
    """
    return EarlyStopping(
        monitor="val_loss",
        patience=config.patience,
        restore_best_weights=True,
        start_from_epoch=config.min_epochs,
    )


@dataclasses.dataclass
class FitResult:
    """What training produced besides the weights, for `metrics.json` and the report.

    Attributes:
        history: Metric name -> one value per epoch (`None` where a stage had no such metric).
        stage_boundaries: Epoch counts at which a training stage ended, to mark on the curves.
        stages: A JSON-serializable account of the stages (e.g. per-stage validation metrics),
            written to `stages.json` in the run folder when not `None`.
    """

    history: dict[str, list]
    stage_boundaries: list[int] = dataclasses.field(default_factory=list)
    stages: Any = None


def fit_epochs(model: keras.Model, datasets: Datasets, config: BaseConfig, callbacks, verbose):
    """`model.fit` on the training split for `config.epochs`, validated; returns the history."""
    return model.fit(
        datasets.train,
        validation_data=datasets.validation,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # the pipeline shuffles, seeded
        class_weight=datasets.class_weight,
    ).history


def train(
    app,
    config: BaseConfig,
    echo: Callable[[str], None] = print,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Run:
    """Trains `app` with `config`, writes a finished run folder and returns the `Run`.

    `extra_callbacks` run after the built-in ones (early stopping, backup, TensorBoard), so an
    interruption they cause still leaves a checkpoint of the last finished epoch to resume from.

    Under `--strategy multi_worker` every worker runs this same function in step; only the chief
    keeps a run folder (the others' `Run.path` is `None`).
    """
    config.validate()
    with caller_state():
        return _train(app, config, echo, extra_callbacks)


def _train(app, config, echo, extra_callbacks) -> Run:
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = distribute.enable_mixed_precision(config.mixed_precision)
    strategy = distribute.get_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    workers = distribute.num_workers(strategy)
    if workers > 1 and config.batch_size % strategy.num_replicas_in_sync:
        # Keras all-reduces a first batch across workers to learn its shapes: they must agree.
        raise UsageError(
            f"--batch-size {config.batch_size} must be a multiple of the "
            f"{strategy.num_replicas_in_sync} replicas of a multi-worker run"
        )

    datasets = app.make_datasets(config, "train")
    echo(
        f"data: {datasets.source_name}; "
        + ", ".join(f"{k} {v:,}" for k, v in datasets.num_examples.items())
    )
    for note in datasets.notes:
        echo(f"note: {note}")
    config = _from_data(config, datasets)
    datasets.class_weight = class_weights(config, datasets)
    if config.overfit_batches:
        # The course's sanity check: a model that cannot fit a few batches has a bug.
        datasets.train = datasets.train.take(config.overfit_batches).cache()
        echo(f"overfitting {config.overfit_batches} training batch(es) as a sanity check")
    if datasets.class_weight:
        echo(
            "class weights: "
            + ", ".join(
                f"{n} {w:.3g}"
                for n, w in zip(class_names_of(config), datasets.class_weight.values())
            )
        )

    root = Path(config.output_dir) / app.NAME
    if chief:
        work = root / f".incomplete-{config_key(config)}"
    else:
        # Other workers keep a backup of their own (weights are identical on every worker), so
        # a rerun resumes with or without a shared file system, and never touch the chief's
        # folder; their copy of the run is deleted at the end.
        work = root / f".incomplete-{config_key(config)}-{distribute.task_name()}"
    existed = work.exists()
    _make_folder(work)
    with _exclusive(work):
        try:
            return _train_in(
                app, config, datasets, work, root, strategy, policy, echo, extra_callbacks
            )
        except BaseException:
            # A run that failed before its first checkpoint leaves nothing behind.
            if not existed and not (work / BACKUP).exists():
                shutil.rmtree(work, ignore_errors=True)
            raise


BACKUP = "backup"
HISTORY_FILE = "history.csv"


def _make_folder(folder: Path) -> None:
    """Creates `folder` and checks it is writable: a one-line error naming it otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"cannot write to {folder}: {exc.strerror or exc}; choose another --output-dir"
        ) from None


@contextlib.contextmanager
def _exclusive(work: Path):
    """Holds a lock on a run's work folder, so that two identical runs never share it."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock
        yield
        return
    with open(work / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(
                f"the same run is already training in {work} (another process holds it); "
                "wait for it to finish, or change a setting or --output-dir"
            ) from None
        yield


def _resume_epoch(backup: Path, echo) -> int:
    """The epoch `BackupAndRestore` resumes from; a damaged checkpoint is never resumed.

    Keras keeps the checkpoint before the latest (`double_checkpoint`): when a kill left the
    latest half-written, the one before it takes its place; when both are damaged, the folder
    is moved aside and training starts fresh.
    """
    latest = (backup / "latest.weights.h5", backup / "training_metadata.json")
    previous = tuple(Path(f"{p}.bkp") for p in latest)
    if not backup.exists():
        return 0
    for weights, metadata in (latest, previous):
        epoch = _checkpoint_epoch(weights, metadata)
        if epoch is not None:
            if weights != latest[0]:
                for older, newer in zip(previous, latest):
                    shutil.copyfile(older, newer)
                echo(f"note: the last checkpoint in {backup} was damaged; using the one before")
            return epoch
    if not any(p.exists() for p in (*latest, *previous)):
        return 0  # no Keras checkpoint yet (an app may keep its own state in the folder)
    aside = backup.with_name(f"{BACKUP}-damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.rename(backup, aside)
    echo(f"note: the resume checkpoint was damaged; moved it to {aside} and started afresh")
    return 0


def _checkpoint_epoch(weights: Path, metadata: Path) -> int | None:
    """The epoch of a readable checkpoint, or `None` when it is missing or damaged."""
    import h5py

    try:
        epoch = int(json.loads(metadata.read_text())["epoch"])
        with h5py.File(weights, "r") as f:
            f.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch


def _logged_history(path: Path) -> dict[str, list]:
    """Every epoch's logs written by `CSVLogger`, before and after an interruption."""
    import csv

    with path.open(newline="") as f:
        rows = {int(row["epoch"]): row for row in csv.DictReader(f)}
    history: dict[str, list] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch":
                history.setdefault(key, []).append(float(value) if value else None)
    return history


class TrainingDiverged(UsageError):
    """The loss became NaN or infinite: nothing of the run is kept."""


def overfit_verdict(losses: Sequence[float]) -> dict:
    """Whether training on a few batches drove the loss towards zero (the course's check)."""
    first, last = float(losses[0]), float(losses[-1])
    passed = last <= max(0.05, 0.1 * first)
    verdict = (
        f"the loss fell from {first:.4g} to {last:.4g}: the model can fit these batches"
        if passed
        else f"the loss only fell from {first:.4g} to {last:.4g}: check the model, the labels "
        "and the learning rate, or train more epochs"
    )
    return {"overfit_batches_loss": [first, last], "passed": passed, "verdict": verdict}


def _check_finite_history(history: dict, work: Path) -> None:
    losses = history.get("loss", [])
    bad = next((i for i, v in enumerate(losses) if v is not None and not math.isfinite(v)), None)
    if bad is not None:
        shutil.rmtree(work, ignore_errors=True)
        raise TrainingDiverged(
            f"training diverged: the loss became {losses[bad]} in epoch {bad + 1}; nothing was "
            "saved. Lower --learning-rate (or check the data for NaN or infinite values)"
        )


def _train_in(app, config, datasets, work, root, strategy, policy, echo, extra_callbacks) -> Run:
    chief = distribute.is_chief(strategy)
    backup = work / BACKUP
    resume_epoch = _resume_epoch(backup, echo)
    if distribute.num_workers(strategy) > 1:
        epochs = distribute.gather_from_workers(strategy, resume_epoch)
        if len(set(epochs)) > 1:
            raise UsageError(
                f"the workers would resume from different epochs ({epochs}): their "
                f".incomplete-{config_key(config)}* folders under {root} disagree; delete them "
                "on every worker to start over"
            )
    if resume_epoch:
        echo(f"resuming the interrupted run in {work}")
    elif (work / HISTORY_FILE).exists():
        (work / HISTORY_FILE).unlink()  # the log of a run that saved no checkpoint

    with strategy.scope():
        model = app.build_model(config)
    if isinstance(config, ClassesConfig) and ClassNames.of(model) != class_names_of(config):
        raise AssertionError(
            f"{app.NAME}.build_model must end in a ClassNames layer holding "
            f"{class_names_of(config)}; found {ClassNames.of(model)}"
        )
    echo(
        f"model: {model.name}, {model.count_params():,} parameters; strategy "
        f"{type(strategy).__name__} on {strategy.num_replicas_in_sync} replica(s); "
        f"dtype policy {policy}"
    )
    callbacks = [
        BuildOptimizer(),  # first: the backup restores into the optimizer's variables
        keras.callbacks.TerminateOnNaN(),
        *([] if config.overfit_batches else [early_stopping(config)]),
        keras.callbacks.BackupAndRestore(str(backup), double_checkpoint=True),
        keras.callbacks.TensorBoard(str(work / "logs")),
        *extra_callbacks,
    ]
    if hasattr(app, "adapt"):
        app.adapt(model, datasets, config)
    started = time.perf_counter()
    verbose = progress_verbosity()
    if hasattr(app, "fit"):
        # Apps with several stages (transfer learning) train themselves and say where each
        # stage ended, so the curves can mark it.
        result = app.fit(model, datasets, config, callbacks, verbose)
    else:
        # The log survives an interruption, so a resumed run's history covers every epoch.
        # It writes before the checkpoint does: an epoch trained again after a kill between the
        # two is logged twice, and the later row wins.
        log = keras.callbacks.CSVLogger(str(work / HISTORY_FILE), append=True)
        fit_epochs(model, datasets, config, [log, *callbacks], verbose)
        result = FitResult(_logged_history(work / HISTORY_FILE))
    history = result.history
    _check_finite_history(history, work)
    if config.overfit_batches:
        result.stages = overfit_verdict(history.get("loss", []))
        echo(f"overfit check: {result.stages['verdict']}")
    train_seconds = time.perf_counter() - started
    fingerprint = distribute.weights_fingerprint(model)
    echo(f"weights fingerprint: {fingerprint}")
    metrics = app.evaluate_model(model, datasets.test, config)
    echo("test " + ", ".join(f"{k}: {_fmt_metric(v)}" for k, v in metrics.items()))
    try:
        figures = _write_run(
            app,
            model,
            config,
            datasets,
            result,
            metrics,
            work,
            strategy,
            fingerprint,
            train_seconds,
        )
    except OSError as exc:
        # The checkpoint stays: rerunning the command finishes the run without training again.
        raise UsageError(
            f"could not write the run to {work}: {exc.strerror or exc}; free some space or fix "
            "the folder's permissions, then rerun the same command to finish it"
        ) from None
    run = Run(app, model, config, None, history=history, metrics=metrics, report=figures)
    if not chief:
        shutil.rmtree(work, ignore_errors=True)
        return run
    final = _final_run_dir(root)
    os.rename(work, final)
    shutil.rmtree(final / BACKUP, ignore_errors=True)
    for leftover in (final / ".lock", final / HISTORY_FILE):
        leftover.unlink(missing_ok=True)
    echo(f"run saved in {final}")
    run.path = final
    return run


def _write_run(
    app, model, config, datasets, result, metrics, work, strategy, fingerprint, train_seconds
) -> dict:
    history, boundaries = result.history, result.stage_boundaries
    model.save(work / MODEL_FILE)
    _write_json(work / CONFIG_FILE, config_to_dict(config))
    _write_json(
        work / METRICS_FILE,
        {
            "app": app.NAME,
            "test": metrics,
            "history": history,
            "epochs_run": len(history.get("loss", [])),
            "stage_boundaries": boundaries,
            "train_seconds": round(train_seconds, 2),
            "data": {
                "source": datasets.source_name,
                "num_examples": datasets.num_examples,
                "notes": datasets.notes,
                "class_names": datasets.class_names,
            },
            "class_weight": datasets.class_weight,
            "parameters": model.count_params(),
            "weights_fingerprint": fingerprint,
            "replicas": strategy.num_replicas_in_sync,
            "i2dl_keras_version": i2dl_keras.__version__,
        },
    )
    from i2dl_keras.apps import plots

    figures = {
        "training_curves": plots.training_curves(
            history, work / "training_curves.png", title=app.NAME, boundaries=boundaries
        )
    }
    if result.stages is not None:
        _write_json(work / STAGES_FILE, result.stages)
    figures.update(app.write_report(work, model, datasets, config, result) or {})
    return figures


def evaluate(run: Run, data: str | None = None, **fields: Any) -> dict:
    """The task's metrics of a run's model on a data source's test split (or all of it).

    Args:
        run: The `Run`.
        data: A data source (as `Config.data`). Defaults to `None` (the run's own).
        **fields: Other settings that do not shape the model, e.g. `batch_size`.

    Raises:
        UsageError: for a setting that shapes the model, or data whose classes differ from the
            model's.
    """
    shaping = {"model", "num_classes", "class_names", *getattr(run.app, "MODEL_FIELDS", ())}
    fixed = sorted(set(fields) & shaping)
    if fixed:
        raise UsageError(f"{fixed} shape the trained model and cannot change when evaluating")
    values = config_to_dict(run.config)
    values.update(fields)
    if data is not None:
        values["data"] = data
    config = make_config(run.app.Config, values)
    config.validate()
    with caller_state():
        datasets = run.app.make_datasets(config, "evaluate")
        check_classes(config, datasets, run.data_class_names)
        metrics = run.app.evaluate_model(run.model, datasets.test, config)
    metrics["data"] = datasets.source_name
    if datasets.notes:
        metrics["notes"] = list(datasets.notes)
    return metrics


def tune(
    app,
    config: BaseConfig,
    *,
    tuner_kind: str = "hyperband",
    max_trials: int = 10,
    max_epochs: int = 10,
    tuner_dir: str | None = None,
    overwrite: bool = False,
    echo=print,
) -> tuple[Run | None, kt.Tuner]:
    """Searches the app's hyperparameters, prints the trials, then retrains the best config.

    Returns `(run, tuner)`: the retrained best configuration and the KerasTuner tuner.

    With KerasTuner's `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
    set, the search is shared between processes: the chief (an id containing `chief`) serves
    the oracle and runs no trial, then alone prints the table, retrains the best configuration
    and returns its run; the workers run trials until none are left and return no run.
    """
    config.validate()
    with caller_state():
        tuner, best = _search(
            app, config, tuner_kind, max_trials, max_epochs, tuner_dir, overwrite, echo
        )
    if best is None:
        return None, tuner
    echo("retraining the best configuration from scratch")
    return train(app, best, echo=echo), tuner


def _search(app, config, tuner_kind, max_trials, max_epochs, tuner_dir, overwrite, echo):
    role = tuning.distributed_role()
    if config.strategy == "multi_worker":
        raise UsageError(
            "tune does not run trials under --strategy multi_worker; spread a search over "
            "machines with KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT"
        )
    keras.utils.set_random_seed(config.seed)
    datasets = app.make_datasets(config, "train")
    config = _from_data(config, datasets)
    hypermodel = app.HyperModel(config)
    directory = tuner_dir or str(Path(config.output_dir) / app.NAME / "tuning")
    project = f"{tuner_kind}-{config_key(config)}"
    # Trials use every local GPU when there are several (the strategy of the final training).
    strategy = distribute.get_strategy(config.strategy)
    tuner = tuning.make_tuner(
        tuner_kind,
        hypermodel,
        objective=app.TUNING_OBJECTIVE,
        max_trials=max_trials,
        max_epochs=max_epochs,
        directory=directory,
        project_name=project,
        seed=config.seed,
        # Only the chief may start over: a worker would delete the search the chief serves.
        overwrite=overwrite and role != "worker",
        distribution_strategy=strategy if strategy.num_replicas_in_sync > 1 else None,
    )
    echo(f"tuning with {tuner_kind} in {Path(directory) / project} (rerun to resume)")
    oracle = f"{os.environ.get('KERASTUNER_ORACLE_IP')}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    if role == "chief":
        echo(
            f"serving the search at {oracle} as {tuner_id}; trials run on the workers (same "
            "command, KERASTUNER_TUNER_ID=tuner1, tuner2, ...)"
        )
    elif role == "worker":
        echo(f"running trials for the chief at {oracle} as {tuner_id}")
    tuner.search(
        datasets.train,
        validation_data=datasets.validation,
        epochs=max_epochs,
        callbacks=[BuildOptimizer(), early_stopping(config)],
        verbose=0,
        shuffle=False,
    )
    if role == "worker":
        echo(f"{tuner_id}: no trials left; the chief prints the results and retrains the best")
        return tuner, None
    echo(tuning.trials_table(tuner))
    best_hp = tuner.get_best_hyperparameters(1)[0]
    echo(
        "best: "
        + ", ".join(f"{k}={v}" for k, v in best_hp.values.items() if not k.startswith("tuner/"))
    )
    return tuner, hypermodel.final_config(best_hp)


def export_run(
    run: Run,
    format: str = "saved_model",
    version: int | None = None,
    quantize: str | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Exports a run's model, checked, with a `MODEL_CARD.md` next to the version folder.

    `format="saved_model"` writes a TF SavedModel under `OUTPUT/APP/serving/N/` whose
    signatures return `classes` (names) beside `class_ids` and `probabilities` for classifiers;
    `format="tflite"` a LiteRT flatbuffer `OUTPUT/APP/tflite/N/model.tflite` of the Keras model,
    optionally int8-quantized (`quantize="int8"`) with inputs of the training pipeline as the
    representative data, and compared with the Keras model on test inputs; `format="onnx"` or
    `"openvino"` the model through Keras' own `model.export` under `OUTPUT/APP/FORMAT/N/`,
    checked with ONNX Runtime or OpenVINO's runtime (optional extras: the error names the one to
    install). Returns the version folder (SavedModel) or the exported file.
    """
    from i2dl_keras.apps import model_card

    app, model, config = run.app, run.model, run.config
    if run.path is None:
        raise UsageError("this run has no run folder to export from; save it with train first")
    if format not in EXPORT_FORMATS:
        raise UsageError(f"format must be one of {list(EXPORT_FORMATS)}, got {format!r}")
    if quantize not in (None, "int8"):
        raise UsageError(f"quantize must be None or 'int8', got {quantize!r}")
    if format in export.CONVERTERS:
        if quantize:
            raise UsageError("--quantize applies to --format tflite only")
        return _export_converted(run, format, version, echo)
    if format == "tflite":
        return _export_tflite(run, version, quantize, echo)
    if quantize:
        raise UsageError("--quantize applies to --format tflite only")
    endpoints = app.serving_endpoints(model, config)
    if run.class_names:
        from i2dl_keras.apps.signatures import with_class_outputs

        endpoints = {k: with_class_outputs(e, run.class_names) for k, e in endpoints.items()}
    path = export.export_serving(
        model,
        endpoints,
        Path(config.output_dir) / app.NAME / "serving",
        app.serving_check_requests(config),
        version=version,
    )
    echo(f"exported {path} (checked in a fresh process without i2dl_keras)")
    echo(f"signatures: {', '.join(endpoints)}")
    echo(f"model card: {model_card.write_model_card(app, run.path, path)}")
    return path


EXPORT_FORMATS = ("saved_model", "tflite", *export.CONVERTERS)


def _first_inputs(dataset: tf.data.Dataset, count: int) -> np.ndarray:
    batches, total = [], 0
    for x, _ in dataset:
        batches.append(keras.ops.convert_to_numpy(x))
        total += len(batches[-1])
        if total >= count:
            break
    return np.concatenate(batches)[:count]


def _export_converted(run: Run, format: str, version, echo) -> Path:
    from i2dl_keras.apps import model_card

    datasets = run.app.make_datasets(run.config, "evaluate")
    check = _first_inputs(datasets.test, 32)
    path, worst = export.export_converted(
        run.model,
        Path(run.config.output_dir) / run.app.NAME / format,
        format,
        check_inputs=check,
        version=version,
    )
    note = (
        f"The {format} model was checked against the Keras model on {len(check)} test inputs: "
        f"largest output difference {worst:.2g}."
    )
    echo(f"exported {path}")
    echo(note)
    card = model_card.write_model_card(
        run.app,
        run.path,
        path.parent,
        signatures=[],
        artifact=f"{format} (`{path.name}`, through Keras' model.export)",
        notes=[note],
    )
    echo(f"model card: {card}")
    return path


def _export_tflite(run: Run, version, quantize, echo) -> Path:
    from i2dl_keras.apps import model_card

    first_inputs = _first_inputs
    datasets = run.app.make_datasets(run.config, "train")
    result = export.export_tflite(
        run.model,
        Path(run.config.output_dir) / run.app.NAME / "tflite",
        check_inputs=first_inputs(datasets.test, 64),
        representative_inputs=first_inputs(datasets.train, 256) if quantize else None,
        quantize=quantize,
        version=version,
    )
    agreement = "" if result.agreement is None else f", top-1 agreement {result.agreement:.1%}"
    check = (
        f"The {quantize or 'float32'} TFLite model was checked against the Keras model on "
        f"{min(64, datasets.num_examples.get('test', 64))} test inputs: largest output "
        f"difference {result.max_abs_diff:.2g}{agreement}."
    )
    echo(f"exported {result.path}")
    echo(check)
    card = model_card.write_model_card(
        run.app,
        run.path,
        result.path.parent,
        signatures=model_card.tflite_signatures(result.path),
        artifact=f"LiteRT/TFLite flatbuffer ({quantize or 'float32'}, `{result.path.name}`)",
        notes=[check],
    )
    echo(f"model card: {card}")
    return result.path


# --------------------------------------------------------------------------- the Python API


def app_api(module_name: str):
    """`train`, `load` and `tune` functions of the app module `module_name`, for its namespace.

    Each app module ends with `train, load, tune = base.app_api(__name__)`, so that
    `i2dl_keras.apps.digits.train(epochs=3)` works as `i2dl digits train --epochs 3` does.
    """

    def app():
        return sys.modules[module_name]

    def train_app(config: BaseConfig | None = None, **fields: Any) -> Run:
        """Trains the app and returns the `Run`; `fields` are the app's `Config` fields."""
        return train(app(), _config(app(), config, fields))

    def load_app(path: str | os.PathLike, output_dir: str | os.PathLike | None = None) -> Run:
        """Loads a run folder written by `train` (or its `.keras` file) as a `Run`.

        Exports and predictions go under `output_dir` (default: where the run folder lies).
        """
        return load(app(), path, output_dir)

    def tune_app(
        config: BaseConfig | None = None,
        *,
        tuner: str = "hyperband",
        max_trials: int = 10,
        max_epochs: int = 10,
        directory: str | None = None,
        overwrite: bool = False,
        **fields: Any,
    ) -> tuple[Run | None, kt.Tuner]:
        """Searches hyperparameters with KerasTuner, retrains the best; `(run, tuner)`."""
        return tune(
            app(),
            _config(app(), config, fields),
            tuner_kind=tuner,
            max_trials=max_trials,
            max_epochs=max_epochs,
            tuner_dir=directory,
            overwrite=overwrite,
        )

    for function, name in ((train_app, "train"), (load_app, "load"), (tune_app, "tune")):
        function.__name__ = function.__qualname__ = name
        function.__module__ = module_name
    return train_app, load_app, tune_app


def _config(app, config: BaseConfig | None, fields: Mapping[str, Any]) -> BaseConfig:
    if config is not None and not isinstance(config, app.Config):
        raise UsageError(f"config must be a {app.__name__}.Config, got {type(config).__name__}")
    values = config_to_dict(config) if config is not None else {}
    values.update(fields)
    return make_config(app.Config, values)
