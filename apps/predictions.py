"""What `Run.predict` and `i2dl APP predict` share: batching by shape, classifier results, and
output files that never replace an existing one."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from i2dl_keras import data as i2dl_data
from i2dl_keras.apps.base import Run, progress_verbosity
from i2dl_keras.apps.settings import UsageError


def classify_images(run: Run, inputs: Any, batch_size: int) -> list[dict]:
    """`Run.predict` of an image classifier: one `{input, label, class_id, probabilities}` each.

    Images of one shape go through the model together, in batches of `batch_size`; the model
    itself converts dtype, channels and size, so this is exactly `run.model.predict(pixels)`.
    """
    found = i2dl_data.read_images(inputs)
    names = run.class_names
    probabilities = predict_grouped(run.model, [pixels for _, pixels in found], batch_size)
    results = []
    for (name, _), probs in zip(found, probabilities):
        best = int(np.argmax(probs))
        results.append(
            {
                "input": name,
                "label": names[best],
                "class_id": best,
                "probabilities": {n: float(p) for n, p in zip(names, probs)},
            }
        )
    return results


def describe_classifications(run: Run, results: Sequence[dict]) -> list[str]:
    """One line per classified input for the CLI: the input, its label and that probability."""
    return [
        f"{' '.join(str(r['input']).split())}\t{r['label']}\t{r['probabilities'][r['label']]:.4f}"
        + (f"\twarning: {r['warning']}" if r.get("warning") else "")
        for r in results
    ]


def check_finite(outputs: Any) -> Any:
    """Returns `outputs` if every number in them is finite, else refuses them."""
    for value in keras.tree.flatten(outputs):
        value = np.asarray(value)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise UsageError(
                "the model's outputs are not finite (NaN or infinite): it cannot be used; "
                "retrain it (a lower --learning-rate usually helps)"
            )
    return outputs


def fresh_folder(parent: Path, prefix: str) -> Path:
    """Makes and returns a new folder `parent/prefix-YYYYmmdd-HHMMSS` (`-2`, `-3`, ... when one
    exists): outputs written there can never replace an earlier file."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime(f"{prefix}-%Y%m%d-%H%M%S")
    candidate, n = parent / stamp, 2
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            candidate, n = parent / f"{stamp}-{n}", n + 1


def output_stems(inputs: Sequence[str]) -> list[str]:
    """A distinct, file-safe stem per input for its output files: `a/x.png` -> `x`,
    `array[1]` -> `array-1`; a repeated stem gets `-2`, `-3`, ..."""
    stems, used = [], set()
    for name in inputs:
        stem = re.sub(r"[^\w.-]+", "-", Path(str(name)).stem).strip("-") or "image"
        unique, n = stem, 2
        while unique.lower() in used:
            unique, n = f"{stem}-{n}", n + 1
        used.add(unique.lower())
        stems.append(unique)
    return stems


TABLE_SUFFIXES = (".csv", ".jsonl")


def check_new_table(path: str | os.PathLike) -> Path:
    """Refuses an output table that exists or whose kind (CSV or JSON Lines) is unknown."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise UsageError(f"--output {path}: expected a .csv or .jsonl file name")
    if path.exists():
        raise UsageError(f"--output {path} exists; predict never replaces a file: choose another")
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: no folder {path.parent}")
    return path


def write_classifications(
    results: Sequence[dict], path: str | os.PathLike, class_names: Sequence[str]
) -> Path:
    """Writes classifications as a new CSV or JSON Lines file: input, label, class_id, and one
    probability per class (CSV columns `p_NAME`)."""
    import csv

    path = check_new_table(path)
    try:
        with path.open("x", newline="", encoding="utf-8") as f:
            if path.suffix.lower() == ".jsonl":
                for r in results:
                    f.write(json.dumps({**r, "input": str(r["input"])}) + "\n")
            else:
                writer = csv.writer(f)
                writer.writerow(["input", "label", "class_id", *(f"p_{n}" for n in class_names)])
                for r in results:
                    probabilities = [f"{r['probabilities'][n]:.6g}" for n in class_names]
                    writer.writerow([r["input"], r["label"], r["class_id"], *probabilities])
    except FileExistsError:
        raise UsageError(f"--output {path} exists; predict never replaces a file") from None
    except OSError as exc:
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None
    return path


def predict_grouped(model: keras.Model, arrays: Sequence[np.ndarray], batch_size: int) -> list:
    """`model.predict` on arrays of possibly different shapes: equal shapes share batches."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    groups: dict[tuple, list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault((array.shape, str(array.dtype)), []).append(i)
    outputs: list = [None] * len(arrays)
    verbose = progress_verbosity() if len(arrays) > 4 * batch_size else 0
    for indices in groups.values():
        batch = np.stack([arrays[i] for i in indices])
        predicted = check_finite(model.predict(batch, batch_size=batch_size, verbose=verbose))
        for i, value in zip(indices, predicted):
            outputs[i] = value
    return outputs
