"""The glue every app shares, written once: `Run`, train, load, evaluate, predict, tune, export.

An app module supplies the task-specific pieces (see `apps/digits.py` for the reference):

- `NAME`, `TASK` and a `Config` dataclass derived from `BaseConfig` (`apps/settings.py`);
- `make_datasets(config, purpose)` returning `Datasets` (use `load_datasets`,
  `apps/loading.py`);
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
import json
import logging
import math
import os
import random
import shutil
import sys
import time
import types
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

import i2dl_keras
from i2dl_keras import distribute, export, tuning
from i2dl_keras.apps.loading import Datasets, check_classes, class_weights, from_data
from i2dl_keras.apps.settings import (
    BaseConfig,
    ClassesConfig,
    UsageError,
    class_names_of,
    config_key,
    config_to_dict,
    make_config,
)
from i2dl_keras.callbacks import EarlyStopping
from i2dl_keras.layers import ClassNames

logger = logging.getLogger("i2dl")

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
STAGES_FILE = "stages.json"


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
    config = from_data(config, datasets)
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
    config = from_data(config, datasets)
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
