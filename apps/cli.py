"""`i2dl APP VERB [flags]`: one command line for every app.

Flags come from the app's `Config` dataclass (`--epochs 3`, `--batch-size 64`, `--no-download`),
plus `--config FILE.json` whose keys are the same field names. Precedence: defaults, then the
file, then flags. Unknown flags or keys and wrong types are errors (exit status 2), never stack
traces; set `I2DL_DEBUG=1` to see the traceback of an error.
"""

from __future__ import annotations

import os

# TensorFlow logs a screenful at import; keep the app's own output readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import typing  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

APPS = {
    "digits": "handwritten digit recognition (LeNet-5 or a small CNN)",
    "denoise": "denoising autoencoders: corrupted images in, clean images out (PSNR, SSIM)",
    "segmentation": "semantic segmentation with a fully convolutional network (U-Net or FCN)",
    "transfer": "transfer learning: an ImageNet backbone, frozen then fine-tuned",
    "sentiment": "text sentiment: an LSTM (the course's or cuDNN) reading raw sentences",
}
VERBS = {
    "train": "train a model and save a run folder under saved_models/APP/",
    "evaluate": "evaluate a run on a data source's test split",
    "predict": "predict labels for image/text inputs",
    "tune": "search hyperparameters with KerasTuner, then retrain the best",
    "export": "export a run as a TF Serving SavedModel (or --format tflite) with a model card",
}
TUNER_KINDS = ("hyperband", "random", "bayesian", "grid")


def _apps(name: str):
    """The module `i2dl_keras.apps.NAME`, imported on first use: `i2dl --help` answers without
    loading TensorFlow."""
    return importlib.import_module(f"i2dl_keras.apps.{name}")


class CliError(Exception):
    """A mistake on the command line or in a config file."""


def _main_help() -> str:
    apps = "\n".join(f"  {name:<14}{text}" for name, text in APPS.items())
    verbs = "\n".join(f"  {name:<14}{text}" for name, text in VERBS.items())
    return (
        "usage: i2dl APP VERB [flags]   (or: python -m i2dl_keras.apps APP VERB [flags])\n\n"
        f"apps:\n{apps}\n\nverbs:\n{verbs}\n\n"
        "`i2dl APP --help` lists an app's verbs, `i2dl APP VERB --help` its flags.\n\n"
        "serve:\n  i2dl serve [saved_models] [--port 8501] [--grpc-port 8500]\n"
        "                serve every export with TF Serving's REST and gRPC APIs"
    )


def _is_list(kind: Any) -> bool:
    return typing.get_origin(kind) is list


def _type_name(kind: Any) -> str:
    return "list" if _is_list(kind) else kind.__name__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _parse_value(text: str, kind: type, optional: bool, flag: str) -> Any:
    if optional and text.lower() in ("none", "null", ""):
        return None
    if _is_list(kind):  # comma-separated; only lists of strings are settings
        return [item.strip() for item in text.split(",") if item.strip()]
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} expects {kind.__name__}, got {text!r}") from None


def _add_config_flags(
    parser: argparse.ArgumentParser, config_cls, skip: Sequence[str] = ()
) -> None:
    group = parser.add_argument_group("settings (also accepted as keys of --config FILE.json)")
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        kind, optional = _apps("settings").field_types(config_cls)[f.name]
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{help_text} (default: {default})"
        choices = f.metadata.get("choices")
        if kind is bool:
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_text,
            )
            continue

        def convert(text, kind=kind, optional=optional, flag=flag):
            return _parse_value(text, kind, optional, flag)

        convert.__name__ = _type_name(kind)
        group.add_argument(
            flag,
            dest=f.name,
            type=convert,
            default=argparse.SUPPRESS,
            choices=choices,
            metavar=_type_name(kind).upper(),
            help=help_text
            + (f"; one of {[c for c in choices if c is not None]}" if choices else ""),
        )


def load_config_file(path: str, config_cls) -> dict[str, Any]:
    """Reads `--config FILE.json`, rejecting unknown keys and values of the wrong type."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        raise CliError(f"--config {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"--config {path}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise CliError(f"--config {path}: expected a JSON object of settings")
    checked = _apps("settings").make_config(config_cls, values, where=f"--config {path}: ")
    return {key: getattr(checked, key) for key in values}


def build_parser(app_name: str, app) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"i2dl {app_name}",
        description=(app.__doc__ or "").strip().splitlines()[0],
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in VERBS.items():
        sub = verbs.add_parser(verb, help=text, description=text)
        if verb in ("evaluate", "predict", "export"):
            sub.add_argument(
                "--model",
                required=True,
                metavar="PATH",
                help="a run folder (saved_models/APP/run-...) or its .keras file",
            )
        if verb in ("train", "tune"):
            sub.add_argument("--config", metavar="FILE.json", help="settings from a JSON file")
        if verb == "evaluate":
            sub.add_argument(
                "--json",
                action="store_true",
                help="print the metrics as one JSON object on the last line",
            )
        if verb in ("predict", "export"):
            sub.add_argument(
                "--output-dir",
                default=None,
                metavar="DIR",
                help="where to write (default: the folder the run lies in, i.e. OUTPUT of "
                "OUTPUT/APP/run-...)",
            )
        if verb == "predict":
            sub.add_argument(
                "inputs",
                nargs="+",
                metavar="INPUT",
                help=getattr(app, "PREDICT_INPUT_HELP", "input files or folders"),
            )
            sub.add_argument(
                "--batch-size",
                type=_positive_int,
                default=32,
                help="inputs per model call (default: 32)",
            )
            if not hasattr(app, "describe_predictions"):
                sub.add_argument(
                    "--output",
                    metavar="FILE",
                    default=None,
                    help="also write one row per input to FILE.csv or FILE.jsonl (input, label, "
                    "probability per class); an existing file is never replaced",
                )
        if verb == "tune":
            sub.add_argument("--tuner", choices=TUNER_KINDS, default="hyperband")
            sub.add_argument("--max-trials", type=int, default=10)
            sub.add_argument("--max-epochs", type=int, default=10)
            sub.add_argument(
                "--tuner-dir",
                default=None,
                help="search state folder (default: saved_models/APP/tuning)",
            )
            sub.add_argument(
                "--overwrite",
                action="store_true",
                help="start the search over instead of resuming it",
            )
        if verb == "export":
            sub.add_argument(
                "--format",
                choices=("saved_model", "tflite", "onnx", "openvino"),
                default="saved_model",
                help="saved_model: TF Serving's layout under serving/N/; tflite: a LiteRT "
                "flatbuffer under tflite/N/; onnx or openvino: Keras' model.export under "
                "FORMAT/N/ (needs the extra of that name) (default: saved_model)",
            )
            sub.add_argument(
                "--quantize",
                choices=("int8",),
                default=None,
                help="with --format tflite: int8 weights and activations, calibrated on "
                "training inputs",
            )
            sub.add_argument(
                "--version",
                type=int,
                default=None,
                help="version number (default: one above the highest)",
            )
        if verb in ("train", "tune"):
            _add_config_flags(sub, app.Config)
        if verb == "evaluate":
            # Settings that shape the model are fixed by the trained run; `--model` is its path.
            _add_config_flags(sub, app.Config, skip=("model", *getattr(app, "MODEL_FIELDS", ())))
    return parser


def _config_values(args: argparse.Namespace, config_cls) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(config_cls)}
    values = {}
    if getattr(args, "config", None):
        values.update(load_config_file(args.config, config_cls))
    values.update({k: v for k, v in vars(args).items() if k in names})
    return values


def run(argv: Sequence[str], echo=print) -> int:
    argv = list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        echo(_main_help())
        return 0 if argv else 2
    app_name = argv[0]
    if app_name == "serve":
        from i2dl_keras.serving.cli import main as serve_main

        return serve_main(argv[1:])
    if app_name not in APPS:
        print(f"i2dl: error: unknown app {app_name!r}; choose from {sorted(APPS)}", file=sys.stderr)
        return 2
    app = _apps(app_name)
    base, settings = _apps("base"), _apps("settings")
    args = build_parser(app_name, app).parse_args(argv[1:])
    values = _config_values(args, app.Config)
    if args.verb == "train":
        base.train(app, settings.make_config(app.Config, values), echo=echo)
    elif args.verb == "tune":
        base.tune(
            app,
            settings.make_config(app.Config, values),
            tuner_kind=args.tuner,
            max_trials=args.max_trials,
            max_epochs=args.max_epochs,
            tuner_dir=args.tuner_dir,
            overwrite=args.overwrite,
            echo=echo,
        )
    elif args.verb == "evaluate":
        # `--model` is the run's path here, not the architecture field of the same name.
        values.pop("model", None)
        metrics = base.load(app, args.model).evaluate(**values)
        if args.json:
            echo(json.dumps({k: v for k, v in metrics.items() if k not in ("data", "notes")}))
        else:
            echo(f"data: {metrics.pop('data')}")
            for note in metrics.pop("notes", []):
                echo(f"note: {note}")
            for key, value in metrics.items():
                echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    elif args.verb == "predict":
        from i2dl_keras.apps import predictions

        run_ = base.load(app, args.model, output_dir=args.output_dir)
        output = getattr(args, "output", None)
        if output:
            predictions.check_new_table(output)
        # An app may read more inputs from the command line's (sentiment's `@FILE` of lines).
        inputs = getattr(app, "expand_inputs", list)(args.inputs)
        results = run_.predict(inputs, batch_size=args.batch_size)
        describe = getattr(app, "describe_predictions", predictions.describe_classifications)
        for line in describe(run_, results):
            echo(line)
        if output:
            echo(f"wrote {predictions.write_classifications(results, output, run_.class_names)}")
    elif args.verb == "export":
        if args.quantize and args.format != "tflite":
            raise CliError("--quantize int8 needs --format tflite")
        base.export_run(
            base.load(app, args.model, output_dir=args.output_dir),
            format=args.format,
            version=args.version,
            quantize=args.quantize,
            echo=echo,
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `i2dl` console script."""
    logging.basicConfig(level=logging.INFO, format="i2dl: %(message)s")
    # Keep the app's progress readable: absl and TF's Python loggers repeat warnings.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except KeyboardInterrupt:
        print(
            "\ni2dl: interrupted; rerun the same command to resume from the last epoch",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:  # a user's mistake is one line; a bug keeps its traceback
        if os.environ.get("I2DL_DEBUG") or not _is_user_error(exc):
            raise
        print(f"i2dl: error: {exc}", file=sys.stderr)
        return 2


def _is_user_error(exc: BaseException) -> bool:
    """Mistakes in what the user gave (flags, files, data); anything else is a bug."""
    from i2dl_keras.data import DataError
    from i2dl_keras.export import ExportError

    return isinstance(exc, (CliError, _apps("settings").UsageError, DataError, ExportError))


if __name__ == "__main__":
    sys.exit(main())
