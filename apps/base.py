"""The glue every app shares, written once: train, evaluate, predict, tune and export.

An app module supplies the task-specific pieces (see `apps/digits.py` for the reference):

- `NAME`, `TASK` and a `Config` dataclass derived from `BaseConfig`;
- `make_datasets(config, purpose)` returning `Datasets` (use `load_datasets` below);
- `build_model(config)` returning a compiled Keras model;
- optionally `adapt(model, datasets, config)`, run before training (e.g. to adapt a
  `TextVectorization` layer on the training split), and `fit(model, datasets, config,
  callbacks, verbose) -> FitResult` for apps that train in stages;
- `HyperModel`, a `ConfigHyperModel` that only maps `hp` onto a `Config`;
- `evaluate_model(model, dataset, config)` returning the task's metrics;
- `write_report(run_dir, model, datasets, config, result)` for the task's own pictures;
- `predict_inputs(model, config, paths)` returning one printable line per input;
- `serving_endpoints(model, config)` and `serving_check_requests(config)` for the export.

A task with classes derives its `Config` from `ClassesConfig`: the class names are decided from
the data when training (or named by the user), stored in the run's `config.json`, and checked
against the data when evaluating.

Artifacts land in `OUTPUT_DIR/APP/`: a run works in a hidden `.incomplete-KEY` folder (KEY is a
hash of its config) that holds the `BackupAndRestore` checkpoint, and is renamed to
`run-TIMESTAMP` only when everything in it is written. Rerunning an interrupted command resumes
from its checkpoint; a finished run is never overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import tensorflow as tf

import i2dl_keras
from i2dl_keras import data as i2dl_data
from i2dl_keras import distribute, export, tuning
from i2dl_keras.callbacks import EarlyStopping

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

    def validate(self) -> None:
        """Checks values that the types alone do not; raises `UsageError` naming the flag."""
        positive = ("epochs", "batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise UsageError(f"--learning-rate must be positive, got {self.learning_rate}")
        for name in ("patience", "min_epochs"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{_flag(name)} must be 0 or more, got {getattr(self, name)}")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise UsageError(f"--{_flag(name)} must be between 0 and 1, got {value}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


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

    def pipeline(ds, training):
        ds = i2dl_data.make_pipeline(
            ds,
            config.batch_size,
            training=training,
            seed=config.seed,
            preprocess=preprocess,
            augment=augment if training else None,
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
            pipeline(test, False),
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
        pipeline(train, True),
        pipeline(validation, False),
        pipeline(test, False),
        source.class_names,
        source.name,
        notes,
        counts,
    )


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


def check_classes(config: BaseConfig, datasets: Datasets) -> None:
    """Refuses data whose classes differ from those the run was trained on.

    The number of classes must match; the names must match too unless the run renamed them.
    """
    if not isinstance(config, ClassesConfig) or not datasets.class_names:
        return
    found, trained = list(datasets.class_names), class_names_of(config)
    if len(found) != len(trained):
        raise UsageError(
            f"--data {config.data} has {len(found)} classes ({', '.join(found)}), but the model "
            f"was trained on {len(trained)} ({', '.join(trained)})"
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


# --------------------------------------------------------------------------- artifacts


def resolve_model_path(path: str | os.PathLike) -> tuple[Path, Path]:
    """Returns `(model_file, run_dir)` for a run folder or the `.keras` file inside one."""
    path = Path(path)
    if path.is_dir():
        model_file = path / MODEL_FILE
    else:
        model_file = path
    if not model_file.is_file():
        raise UsageError(
            f"--model {path}: no {MODEL_FILE} there; pass a run folder written by "
            "`i2dl APP train` (saved_models/APP/run-...) or the .keras file in it"
        )
    return model_file, model_file.parent


def load_run(app, path: str | os.PathLike, overrides: dict[str, Any] | None = None):
    """Loads a trained model and its resolved config (with command-line overrides applied)."""
    model_file, run_dir = resolve_model_path(path)
    config_file = run_dir / CONFIG_FILE
    values = json.loads(config_file.read_text()) if config_file.is_file() else {}
    known = {f.name for f in dataclasses.fields(app.Config)}
    values = {k: v for k, v in values.items() if k in known}
    values.update(overrides or {})
    config = app.Config(**values)
    model = keras.saving.load_model(model_file)
    return model, config, run_dir


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


# --------------------------------------------------------------------------- verbs


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
    ).history


def train(
    app,
    config: BaseConfig,
    echo: Callable[[str], None] = print,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Path | None:
    """Trains `app` with `config` and writes a finished run folder; returns its path.

    `extra_callbacks` run after the built-in ones (early stopping, backup, TensorBoard), so an
    interruption they cause still leaves a checkpoint of the last finished epoch to resume from.

    Under `--strategy multi_worker` every worker runs this same function in step; only the chief
    keeps a run folder, and the others return `None`.
    """
    config.validate()
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

    root = Path(config.output_dir) / app.NAME
    if chief:
        work = root / f".incomplete-{config_key(config)}"
    else:
        # Other workers keep a backup of their own (weights are identical on every worker), so
        # a rerun resumes with or without a shared file system, and never touch the chief's
        # folder; their copy of the run is deleted at the end.
        work = root / f".incomplete-{config_key(config)}-{distribute.task_name()}"
    backup = work / "backup"
    # The epoch BackupAndRestore would resume from (Keras writes it after the weights).
    progress = backup / "training_metadata.json"
    resume_epoch = int(json.loads(progress.read_text())["epoch"]) if progress.is_file() else 0
    if workers > 1:
        epochs = distribute.gather_from_workers(strategy, resume_epoch)
        if len(set(epochs)) > 1:
            raise UsageError(
                f"the workers would resume from different epochs ({epochs}): their "
                f".incomplete-{config_key(config)}* folders under {root} disagree; delete them "
                "on every worker to start over"
            )
    if resume_epoch:
        echo(f"resuming the interrupted run in {work}")
    work.mkdir(parents=True, exist_ok=True)

    with strategy.scope():
        model = app.build_model(config)
    echo(
        f"model: {model.name}, {model.count_params():,} parameters; strategy "
        f"{type(strategy).__name__} on {strategy.num_replicas_in_sync} replica(s); "
        f"dtype policy {policy}"
    )
    callbacks = [
        early_stopping(config),
        keras.callbacks.BackupAndRestore(str(backup)),
        keras.callbacks.TensorBoard(str(work / "logs")),
        *extra_callbacks,
    ]
    if hasattr(app, "adapt"):
        app.adapt(model, datasets, config)
    started = time.perf_counter()
    verbose = 1 if sys.stdout.isatty() else 2
    if hasattr(app, "fit"):
        # Apps with several stages (transfer learning) train themselves and say where each
        # stage ended, so the curves can mark it.
        result = app.fit(model, datasets, config, callbacks, verbose)
    else:
        result = FitResult(fit_epochs(model, datasets, config, callbacks, verbose))
    history, boundaries = result.history, result.stage_boundaries
    train_seconds = time.perf_counter() - started
    fingerprint = distribute.weights_fingerprint(model)
    echo(f"weights fingerprint: {fingerprint}")
    metrics = app.evaluate_model(model, datasets.test, config)
    echo("test " + ", ".join(f"{k}: {_fmt_metric(v)}" for k, v in metrics.items()))

    model.save(work / MODEL_FILE)
    _write_json(work / CONFIG_FILE, config_to_dict(config))
    _write_json(
        work / METRICS_FILE,
        {
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
            "parameters": model.count_params(),
            "weights_fingerprint": fingerprint,
            "replicas": strategy.num_replicas_in_sync,
            "i2dl_keras_version": i2dl_keras.__version__,
        },
    )
    from apps import plots

    plots.training_curves(
        history, work / "training_curves.png", title=app.NAME, boundaries=boundaries
    )
    if result.stages is not None:
        _write_json(work / STAGES_FILE, result.stages)
    app.write_report(work, model, datasets, config, result)
    if not chief:
        shutil.rmtree(work, ignore_errors=True)
        return None
    shutil.rmtree(backup, ignore_errors=True)
    final = _final_run_dir(root)
    os.rename(work, final)
    echo(f"run saved in {final}")
    return final


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def evaluate(app, model_path, overrides: dict[str, Any], as_json: bool, echo=print) -> dict:
    """Evaluates a trained model on a source's test split (or all of it) and prints metrics."""
    model, config, _ = load_run(app, model_path, overrides)
    config.validate()
    datasets = app.make_datasets(config, "evaluate")
    check_classes(config, datasets)
    if not as_json:
        echo(f"data: {datasets.source_name}")
        for note in datasets.notes:
            echo(f"note: {note}")
    metrics = app.evaluate_model(model, datasets.test, config)
    if as_json:
        echo(json.dumps(metrics, default=_json_default))
    else:
        for key, value in metrics.items():
            echo(f"{key}: {_fmt_metric(value)}")
    return metrics


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def expand_image_inputs(paths: Sequence[str]) -> list[Path]:
    """The image files named by `predict`'s inputs: files as given, folders searched deeply."""
    files = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise UsageError(f"{path}: no PNG/JPEG/BMP/GIF images in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return files


def predict(app, model_path, inputs: Sequence[str], echo=print) -> list[str]:
    """Runs a trained model on user files and prints one line per input."""
    model, config, _ = load_run(app, model_path)
    lines = app.predict_inputs(model, config, list(inputs))
    for line in lines:
        echo(line)
    return lines


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
) -> Path | None:
    """Searches the app's hyperparameters, prints the trials, then retrains the best config.

    With KerasTuner's `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
    set, the search is shared between processes: the chief (an id containing `chief`) serves
    the oracle and runs no trial, then alone prints the table, retrains the best configuration
    and returns its run folder; the workers run trials until none are left and return `None`.
    """
    config.validate()
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
        callbacks=[early_stopping(config)],
        verbose=0,
        shuffle=False,
    )
    if role == "worker":
        echo(f"{tuner_id}: no trials left; the chief prints the results and retrains the best")
        return None
    echo(tuning.trials_table(tuner))
    best_hp = tuner.get_best_hyperparameters(1)[0]
    best = hypermodel.final_config(best_hp)
    echo(
        "best: "
        + ", ".join(f"{k}={v}" for k, v in best_hp.values.items() if not k.startswith("tuner/"))
    )
    echo("retraining the best configuration from scratch")
    return train(app, best, echo=echo)


def export_model(
    app,
    model_path,
    version: int | None = None,
    echo=print,
    format: str = "saved_model",
    quantize: str | None = None,
) -> Path:
    """Exports a trained model, checked, with a `MODEL_CARD.md` next to the version folder.

    `format="saved_model"` writes a TF SavedModel under `OUTPUT/APP/serving/N/`;
    `format="tflite"` a LiteRT flatbuffer `OUTPUT/APP/tflite/N/model.tflite` of the Keras model
    (float inputs, no decoding), optionally int8-quantized (`quantize="int8"`) with inputs of the
    training pipeline as the representative data, and compared with the Keras model on test
    inputs. Returns the version folder (SavedModel) or the `.tflite` file.
    """
    from apps import model_card

    model, config, run_dir = load_run(app, model_path)
    if format == "tflite":
        import numpy as np

        def first_inputs(dataset, count):
            batches, total = [], 0
            for x, _ in dataset:
                batches.append(keras.ops.convert_to_numpy(x))
                total += len(batches[-1])
                if total >= count:
                    break
            return np.concatenate(batches)[:count]

        datasets = app.make_datasets(config, "train")
        result = export.export_tflite(
            model,
            Path(config.output_dir) / app.NAME / "tflite",
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
            app,
            run_dir,
            result.path.parent,
            signatures=model_card.tflite_signatures(result.path),
            artifact=f"LiteRT/TFLite flatbuffer ({quantize or 'float32'}, `{result.path.name}`)",
            notes=[check],
        )
        echo(f"model card: {card}")
        return result.path
    if quantize:
        raise UsageError("--quantize applies to --format tflite only")
    serving_dir = Path(config.output_dir) / app.NAME / "serving"
    path = export.export_serving(
        model,
        app.serving_endpoints(model, config),
        serving_dir,
        app.serving_check_requests(config),
        version=version,
    )
    echo(f"exported {path} (checked in a fresh process without i2dl_keras)")
    loaded_names = ", ".join(app.serving_endpoints(model, config))
    echo(f"signatures: {loaded_names}")
    echo(f"model card: {model_card.write_model_card(app, run_dir, path)}")
    return path
