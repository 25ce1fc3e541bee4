"""An app's settings: the `Config` dataclasses, their checks, and the one usage error.

Every app's `Config` derives from `BaseConfig` (or `ClassesConfig` for a task with classes) and
declares its fields with `option`, whose help text the command line shows. `make_config` is the
one check of settings given as keyword arguments, `--config FILE.json` or a stored run folder;
`UsageError` is a mistake in what the user gave, which the CLI prints as one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from i2dl_keras import data as i2dl_data
from i2dl_keras import distribute


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


def class_weight_option() -> Any:
    """The `class_weight` field of a classifier's `Config`."""
    return option(
        None,
        "weight each class's examples in the loss: 'balanced' (inversely to its share of the "
        "training split) or a JSON object of class name -> weight, e.g. '{\"cat\": 2}'",
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
