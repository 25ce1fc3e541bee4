"""`MODEL_CARD.md`: what an exported model is for, what it learned from, how well, how to call it.

Every `i2dl APP export` writes one next to the version folder it created
(`saved_models/APP/serving/MODEL_CARD.md` beside `serving/N/`, or `tflite/MODEL_CARD.md`), from
the run's `config.json` and `metrics.json` and the signatures of the artifact itself. It always
describes the version just exported; the version number is in its title. An app states its
intended use in a module-level `MODEL_CARD_USE` string (else the summary of its docstring is used)
and may add known limits in `MODEL_CARD_LIMITS`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CARD_FILE = "MODEL_CARD.md"

# (name, [(tensor name, dtype, shape)], [(tensor name, dtype, shape)]) per signature.
SignatureInfo = tuple[str, list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]


def saved_model_signatures(path: str | os.PathLike) -> list[SignatureInfo]:
    """The serving signatures of the SavedModel at `path`, read from its `saved_model.pb`."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(path) / "saved_model.pb").read_bytes())

    def tensors(infos) -> list[tuple[str, str, list[int]]]:
        return [
            (
                key,
                types_pb2.DataType.Name(info.dtype).removeprefix("DT_").lower(),
                [int(d.size) for d in info.tensor_shape.dim],
            )
            for key, info in sorted(infos.items())
        ]

    result = []
    for name, signature in sorted(saved_model.meta_graphs[0].signature_def.items()):
        if name.startswith("__"):
            continue  # the init op, not something a client calls
        result.append((name, tensors(signature.inputs), tensors(signature.outputs)))
    # The default first: it is what a request without `signature_name` gets.
    return sorted(result, key=lambda s: s[0] != "serving_default")


def tflite_signatures(path: str | os.PathLike) -> list[SignatureInfo]:
    """The signatures of the TFLite flatbuffer at `path`, as the interpreter reports them."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=str(path))

    def tensors(details) -> list[tuple[str, str, list[int]]]:
        return [
            (key, np.dtype(d["dtype"]).name, [int(x) for x in d["shape_signature"]])
            for key, d in sorted(details.items())
        ]

    result = []
    for name in sorted(interpreter.get_signature_list()):
        runner = interpreter.get_signature_runner(name)
        result.append(
            (name, tensors(runner.get_input_details()), tensors(runner.get_output_details()))
        )
    return result


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _summary(app) -> str:
    text = getattr(app, "MODEL_CARD_USE", None)
    if text:
        return " ".join(str(text).split())
    doc = (app.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) if doc else f"The {app.NAME} app's model."


def _cell(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return _cell(value)


def _shape(shape: Sequence[int]) -> str:
    return (
        "["
        + ", ".join("batch" if i == 0 and d == -1 else str(d) for i, d in enumerate(shape))
        + "]"
    )


def render_model_card(
    app,
    config: dict[str, Any],
    metrics: dict[str, Any],
    export_dir: Path,
    signatures: Sequence[SignatureInfo],
    run_dir: Path | None = None,
    artifact: str = "TF SavedModel (TF Serving layout)",
    notes: Sequence[str] = (),
) -> str:
    """The card's Markdown text (see `write_model_card`)."""
    name = app.NAME
    data = metrics.get("data", {})
    test = metrics.get("test", {})
    lines = [
        f"# Model card: {name}, version {export_dir.name}",
        "",
        f"{artifact} in `{export_dir.name}/`, exported {time.strftime('%Y-%m-%d %H:%M')} from "
        f"the run `{run_dir.name if run_dir else 'unknown'}` by i2dl_keras "
        f"{metrics.get('i2dl_keras_version', 'unknown')}.",
        "",
        "## Intended use",
        "",
        _summary(app),
        "",
        "## Data",
        "",
        f"- Source: {data.get('source', config.get('data', 'unknown'))} "
        f"(`--data {config.get('data', '?')}`).",
    ]
    counts = data.get("num_examples") or {}
    if counts:
        lines.append(
            "- Examples: "
            + ", ".join(f"{split} {count:,}" for split, count in counts.items())
            + "."
        )
    classes = data.get("class_names") or []
    if classes:
        shown = ", ".join(str(c) for c in classes[:20]) + (" ..." if len(classes) > 20 else "")
        lines.append(f"- Classes ({len(classes)}): {shown}.")
    lines += [f"- Note: {note}" for note in data.get("notes", [])]
    lines += ["", "## Metrics", ""]
    if test:
        lines += ["| test metric | value |", "| --- | --- |"]
        lines += [f"| {_cell(k)} | {_fmt(v)} |" for k, v in test.items()]
    else:
        lines.append("No test metrics were recorded for this run.")
    facts = []
    if "epochs_run" in metrics:
        facts.append(f"{metrics['epochs_run']} epoch(s) trained")
    if "train_seconds" in metrics:
        facts.append(f"{metrics['train_seconds']} s of training")
    if "parameters" in metrics:
        facts.append(f"{metrics['parameters']:,} parameters")
    if facts:
        lines += ["", ", ".join(facts).capitalize() + "."]
    if notes:
        lines += ["", " ".join(notes)]
    lines += ["", "## Configuration", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in config.items()]
    lines += ["", "## Signatures", ""]
    for signature, inputs, outputs in signatures:
        default = " (the default)" if signature == "serving_default" else ""
        lines += [
            f"`{signature}`{default}:",
            "",
            "| | tensor | dtype | shape |",
            "| --- | --- | --- | --- |",
        ]
        lines += [f"| input | `{k}` | {dt} | {_shape(s)} |" for k, dt, s in inputs]
        lines += [f"| output | `{k}` | {dt} | {_shape(s)} |" for k, dt, s in outputs]
        lines.append("")
    if signatures and artifact.startswith("TF SavedModel"):
        signature, inputs, _ = signatures[0]
        example = '{"b64": "..."}' if inputs and inputs[0][1] == "string" else "..."
        lines += [
            "Serve with `i2dl serve` (or the `tensorflow/serving` image) and call, for example,",
            "",
            "```bash",
            f"curl -d '{{\"instances\": [{example}]}}' "
            f"http://localhost:8501/v1/models/{name}:predict",
            "```",
            "",
        ]
    lines += ["## Limits", ""]
    limits = []
    extra = getattr(app, "MODEL_CARD_LIMITS", None)
    if extra:
        limits.append(" ".join(str(extra).split()))
    if str(config.get("data")) == "synthetic":
        limits.append(
            "Trained on generated smoke-test data: its predictions mean nothing on real inputs."
        )
    total = counts.get("test")
    limits.append(
        "The metrics above were measured on "
        + (f"{total:,} held-out examples of " if total else "held-out examples of ")
        + f"{data.get('source', 'the training source')} only; inputs unlike them (other "
        "sources, styles, languages or preprocessing) can do much worse, and nothing here "
        "measures that."
    )
    if classes:
        limits.append(
            f"It always answers with one of its {len(classes)} classes, even for an input that "
            "belongs to none of them; its probabilities are not calibrated."
        )
    limits.append(
        "It has not been evaluated for fairness or robustness to adversarial inputs; do not use "
        "it for decisions about people."
    )
    lines += [f"- {limit}" for limit in limits]
    return "\n".join(lines) + "\n"


def write_model_card(
    app,
    run_dir: str | os.PathLike,
    export_dir: str | os.PathLike,
    signatures: Sequence[SignatureInfo] | None = None,
    artifact: str = "TF SavedModel (TF Serving layout)",
    notes: Sequence[str] = (),
) -> Path:
    """Writes `MODEL_CARD.md` next to `export_dir` (a version folder) and returns its path.

    Args:
        app: The app module (its `NAME`, docstring, `MODEL_CARD_USE`, `MODEL_CARD_LIMITS`).
        run_dir: The run folder holding `config.json` and `metrics.json`.
        export_dir: The version folder the export wrote.
        signatures: The artifact's signatures. Defaults to `None` (read from the SavedModel in
            `export_dir`).
        artifact: What kind of file the version folder holds. Defaults to a TF SavedModel.
        notes: Extra sentences for the metrics section (such as an export check's result).
            Defaults to `()`.

    Returns:
        The path of the card.
    """
    run_dir, export_dir = Path(run_dir), Path(export_dir)
    if signatures is None:
        signatures = saved_model_signatures(export_dir)
    text = render_model_card(
        app,
        _read_json(run_dir / "config.json"),
        _read_json(run_dir / "metrics.json"),
        export_dir,
        signatures,
        run_dir=run_dir,
        artifact=artifact,
        notes=notes,
    )
    card = export_dir.parent / CARD_FILE
    tmp = card.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, card)
    return card
