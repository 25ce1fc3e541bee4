"""KerasTuner glue: one way to build a tuner of any kind, and a readable table of its trials.

A search can be spread over processes and machines with KerasTuner's own environment variables:
every process runs the same command with `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
naming the chief, and its own `KERASTUNER_TUNER_ID`; the one whose id contains `chief` runs the
oracle (it picks hyperparameters and records results, and trains nothing), the others run the
trials it hands out. `distributed_role` says which one this process is.
"""

from __future__ import annotations

import os

import keras_tuner as kt

__all__ = ["TUNERS", "distributed_role", "make_tuner", "trials_table"]

ORACLE_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def distributed_role() -> str:
    """This process's part in a distributed search, read from KerasTuner's environment.

    Returns:
        `"chief"` (serves the oracle, runs no trial), `"worker"` (runs trials for the chief) or
        `"alone"` (none of the variables set: an ordinary search in this process).

    Raises:
        ValueError: if only some of `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
            `KERASTUNER_ORACLE_PORT` are set, or the port is not a number.
    """
    present = [name for name in ORACLE_ENV if os.environ.get(name)]
    if not present:
        return "alone"
    if len(present) < len(ORACLE_ENV):
        missing = [name for name in ORACLE_ENV if name not in present]
        raise ValueError(
            f"a distributed search needs all of {', '.join(ORACLE_ENV)}; "
            f"{', '.join(missing)} not set. Received: "
            + ", ".join(f"{name}={os.environ[name]!r}" for name in present)
        )
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit():
        raise ValueError(
            "KERASTUNER_ORACLE_PORT must be a port number. "
            f"Received: KERASTUNER_ORACLE_PORT={port!r}"
        )
    # KerasTuner's own rule (keras_tuner/src/distribute/utils.py): "chief" in the id.
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


TUNERS = ("hyperband", "random", "bayesian", "grid")


def make_tuner(
    kind: str,
    hypermodel: kt.HyperModel,
    *,
    objective: str | kt.Objective = "val_loss",
    max_trials: int = 10,
    max_epochs: int = 10,
    directory: str,
    project_name: str,
    seed: int = 0,
    overwrite: bool = False,
    distribution_strategy=None,
) -> kt.Tuner:
    """Builds a KerasTuner tuner that resumes from `directory/project_name` when it exists.

    Args:
        kind: `"hyperband"`, `"random"`, `"bayesian"` or `"grid"`.
        hypermodel: The app's `HyperModel`.
        objective: What to minimise or maximise; a metric name (`"val_loss"`, `"val_accuracy"`)
            or a `kt.Objective`. Defaults to `"val_loss"`.
        max_trials: Trials to run (for Hyperband: the budget is set by `max_epochs` instead).
            Defaults to `10`.
        max_epochs: Most epochs per trial (Hyperband's `max_epochs`). Defaults to `10`.
        directory: Where the search state lives; an interrupted search resumes from it.
        project_name: Sub-folder of `directory` for this search.
        seed: Seed of the search. Defaults to `0`.
        overwrite: Start over instead of resuming. Defaults to `False`.
        distribution_strategy: A `tf.distribute` strategy each trial trains under. Defaults to
            `None`.

    Returns:
        The tuner.

    Raises:
        ValueError: if `kind` is unknown or a budget is not positive.
    """
    if kind not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={kind!r}")
    if max_trials < 1:
        raise ValueError(f"`max_trials` must be at least 1. Received: max_trials={max_trials}")
    if max_epochs < 1:
        raise ValueError(f"`max_epochs` must be at least 1. Received: max_epochs={max_epochs}")
    common = dict(
        objective=objective,
        directory=directory,
        project_name=project_name,
        seed=seed,
        overwrite=overwrite,
        distribution_strategy=distribution_strategy,
    )
    if kind == "hyperband":
        # Hyperband needs at least 2 epochs to run a bracket; fewer means plain training.
        return kt.Hyperband(hypermodel, max_epochs=max(2, max_epochs), factor=3, **common)
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    return kt.GridSearch(hypermodel, max_trials=max_trials, **common)


def trials_table(tuner: kt.Tuner, limit: int | None = None) -> str:
    """Formats the finished trials of `tuner` as a text table, best first.

    Args:
        tuner: A tuner after (or during) `search`.
        limit: Most rows. Defaults to `None` (all).

    Returns:
        A table with one row per trial: its id, score, status and hyperparameter values.
    """
    trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
    direction = tuner.oracle.objective.direction
    trials.sort(key=lambda t: t.score, reverse=direction == "max")
    if limit is not None:
        trials = trials[:limit]
    names = sorted(
        {n for t in trials for n in t.hyperparameters.values if not n.startswith("tuner/")}
    )
    header = ["trial", "score", "status", *names]
    rows = [header]
    for t in trials:
        values = t.hyperparameters.values
        rows.append(
            [t.trial_id, f"{t.score:.4f}", t.status, *(_fmt(values.get(n, "")) for n in names)]
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
