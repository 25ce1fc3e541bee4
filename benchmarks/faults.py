"""Fault injection: bad inputs and faults a user can cause, each run as a user would run it.

Run: `python benchmarks/faults.py [--work DIR]` (a few minutes on 2 CPU cores; offline).

Each case runs `python -m i2dl_keras.apps ...` in a subprocess against tiny runs trained here
on synthetic data, and prints one row: the case, the exit code, the first line of stderr, and
the verdict. A case passes when the exit code is the expected one, nothing printed a traceback,
and the files the case watches are as they should be (nothing lost, overwritten or written
outside the output folder). The script exits 1 if any case fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TINY = ["--data", "synthetic", "--epochs", "2", "--batch-size", "16"]
DIGITS = [*TINY, "--image-size", "16", "--width", "4", "--no-augment"]


@dataclass
class Outcome:
    code: int
    err: str


def i2dl(*argv: str, cwd: Path, wait: bool = True) -> Outcome | subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "i2dl_keras.apps", *argv]
    if not wait:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    return Outcome(proc.returncode, proc.stderr)


def only_run(root: Path, app: str) -> Path:
    (run,) = sorted((root / app).glob("run-*"))
    return run


def first_line(err: str) -> str:
    """The error line a user sees (the app's one-line message or a traceback's start)."""
    for marker in ("i2dl: error", "Traceback"):
        lines = [line for line in err.splitlines() if line.startswith(marker)]
        if lines:
            return lines[0][:110]
    return ""


@dataclass
class Case:
    name: str
    expected_code: int
    run: Callable[[Path], tuple[Outcome, bool]]  # -> outcome, files as they should be


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument(
        "--only", default=None, metavar="TEXT", help="run only the cases whose name contains TEXT"
    )
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="i2dl-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "out"
    print(f"training the tiny runs the cases need in {work} ...", flush=True)
    for app, flags in (
        ("digits", DIGITS),
        ("sentiment", [*TINY, "--vocab-size", "200", "--embedding-dim", "8", "--units", "4"]),
        ("denoise", [*TINY, "--image-size", "16", "--width", "4"]),
    ):
        done = i2dl(app, "train", *flags, "--output-dir", str(out), cwd=work)
        if done.code:
            print(done.err[-3000:])
            return 1
    digits_run, sentiment_run = only_run(out, "digits"), only_run(out, "sentiment")
    image = work / "x.png"
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(image)

    def case_non_finite(value: str):
        def run(w: Path):
            argv = ["digits", "train", *DIGITS, f"--learning-rate={value}"]
            got = i2dl(*argv, "--output-dir", str(w / "o"), cwd=w)
            return got, not (w / "o" / "digits").exists() or not any((w / "o" / "digits").iterdir())

        return run

    def diverging(w: Path):
        argv = ["digits", "train", *DIGITS, "--learning-rate", "1e30", "--output-dir", "o"]
        got = i2dl(*argv, cwd=w)
        return got, not list((w / "o" / "digits").glob("*"))

    def wrong_class_count(w: Path):
        argv = ["digits", "evaluate", "--model", str(digits_run), "--data", "builtin"]
        return i2dl(*argv, cwd=w), True

    def wrong_class_names(w: Path):
        names = json.loads((digits_run / "config.json").read_text())["class_names"]
        for i, name in enumerate(names):
            folder = w / "data" / f"other-{name}"
            folder.mkdir(parents=True)
            Image.fromarray(np.full((16, 16), 50 * i, np.uint8)).save(folder / "a.png")
        return i2dl("digits", "evaluate", "--model", str(digits_run), "--data", "data", cwd=w), True

    def resumed_history(w: Path):
        flags = [*DIGITS[:3], "30", *DIGITS[4:], "--patience", "40", "--output-dir", "o"]
        first = i2dl("digits", "train", *flags, cwd=w, wait=False)
        backup = w / "o" / "digits"
        deadline = time.time() + 300
        while time.time() < deadline and not list(backup.glob(".incomplete-*/backup/*.bkp")):
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
        got = i2dl("digits", "train", *flags, cwd=w)
        metrics = json.loads((only_run(w / "o", "digits") / "metrics.json").read_text())
        return got, metrics["epochs_run"] == len(metrics["history"]["loss"]) == 30

    def table_exists(w: Path):
        table = w / "preds.csv"
        table.write_text("mine\n")
        got = i2dl(
            "digits",
            "predict",
            "--model",
            str(digits_run),
            str(image),
            "--output",
            str(table),
            cwd=w,
        )
        return got, table.read_text() == "mine\n"

    def denoised_next_to_input(w: Path):
        shutil.copy(image, w / "x.png")
        (w / "x.denoised.png").write_text("mine")
        run = only_run(out, "denoise")
        got = i2dl("denoise", "predict", "--model", str(run), "x.png", "--output-dir", "o", cwd=w)
        return got, (w / "x.denoised.png").read_text() == "mine"

    def stored_output_dir(w: Path):
        run = w / "here" / "digits" / "run-x"
        shutil.copytree(digits_run, run)
        config = json.loads((run / "config.json").read_text())
        config["output_dir"] = "../../../../outside"
        (run / "config.json").write_text(json.dumps(config))
        got = i2dl("digits", "export", "--model", str(run), cwd=w)
        return got, (w / "here" / "digits" / "serving" / "1").is_dir() and not (
            w.parent / "outside"
        ).exists()

    def truncated_checkpoint(w: Path):
        flags = [*DIGITS[:3], "6", *DIGITS[4:], "--patience", "40", "--output-dir", "o"]
        first = i2dl("digits", "train", *flags, cwd=w, wait=False)
        deadline = time.time() + 300
        while time.time() < deadline and not list(w.glob("o/digits/.incomplete-*/backup/*.bkp")):
            time.sleep(0.2)
        first.kill()
        first.communicate(timeout=60)
        (latest,) = w.glob("o/digits/.incomplete-*/backup/latest.weights.h5")
        latest.write_bytes(latest.read_bytes()[:100])
        got = i2dl("digits", "train", *flags, cwd=w)
        return got, len(list((w / "o" / "digits").glob("run-*"))) == 1

    def same_run_twice(w: Path):
        # Long enough that the first run still trains while the second starts.
        flags = [*DIGITS[:3], "5000", *DIGITS[4:], "--patience", "5000", "--output-dir", "o"]
        first = i2dl("digits", "train", *flags, cwd=w, wait=False)
        deadline = time.time() + 300
        while time.time() < deadline and not list(w.glob("o/digits/.incomplete-*/backup")):
            time.sleep(0.2)
        got = i2dl("digits", "train", *flags, cwd=w)
        first.kill()
        first.communicate(timeout=60)
        return got, True

    def output_is_a_file(w: Path):
        (w / "file").write_text("x")
        got = i2dl("digits", "train", *DIGITS, "--output-dir", "file", cwd=w)
        return got, (w / "file").read_text() == "x"

    def unwritable_output(w: Path):
        return i2dl("digits", "train", *DIGITS, "--output-dir", "/proc/i2dl-faults", cwd=w), True

    def port_out_of_range(w: Path):
        return i2dl("serve", str(out), "--port", "70000", cwd=w), True

    def other_apps_model(w: Path):
        return i2dl("digits", "predict", "--model", str(sentiment_run), str(image), cwd=w), True

    def truncated_model(w: Path):
        run = w / "digits" / "run-x"
        shutil.copytree(digits_run, run)
        (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:200])
        return i2dl("digits", "evaluate", "--model", str(run), cwd=w), True

    def broken_config(text: str):
        def run(w: Path):
            copy = w / "digits" / "run-x"
            shutil.copytree(digits_run, copy)
            (copy / "config.json").write_text(text)
            return i2dl("digits", "evaluate", "--model", str(copy), cwd=w), True

        return run

    def file_named_like_an_option(w: Path):
        named = w / "exp=3.png"
        shutil.copy(image, named)
        run = only_run(out, "denoise")
        got = i2dl(
            "denoise", "predict", "--model", str(run), str(named), "--output-dir", "o", cwd=w
        )
        return got, bool(list((w / "o" / "denoise").glob("predictions-*/exp-3.denoised.png")))

    cases = [
        Case("--learning-rate nan", 2, case_non_finite("nan")),
        Case("--learning-rate inf", 2, case_non_finite("inf")),
        Case("loss becomes NaN (--learning-rate 1e30)", 2, diverging),
        Case("evaluate 4-class model on 10-class data", 2, wrong_class_count),
        Case("evaluate on folders with other class names", 2, wrong_class_names),
        Case("interrupted (SIGINT) then resumed: full history", 0, resumed_history),
        Case("predict --output onto an existing file", 2, table_exists),
        Case("denoise predict beside an existing x.denoised.png", 0, denoised_next_to_input),
        Case("export from a run whose config says ../../..", 0, stored_output_dir),
        Case("checkpoint truncated by a kill, rerun", 0, truncated_checkpoint),
        Case("the same train twice at once", 2, same_run_twice),
        Case("--output-dir is a file", 2, output_is_a_file),
        Case("--output-dir not writable (/proc)", 2, unwritable_output),
        Case("serve --port 70000", 2, port_out_of_range),
        Case("digits predict on a sentiment model", 2, other_apps_model),
        Case("truncated model.keras", 2, truncated_model),
        Case("config.json not valid JSON", 2, broken_config("{not json")),
        Case('config.json "image_size": "big"', 2, broken_config('{"image_size": "big"}')),
        Case("denoise predict on a file named exp=3.png", 0, file_named_like_an_option),
    ]
    rows, failed = [], 0
    for number, case in enumerate(cases, start=1):
        if args.only and args.only not in case.name:
            continue
        folder = work / f"case-{number:02d}"
        folder.mkdir()
        outcome, files_ok = case.run(folder)
        traceback = "Traceback" in outcome.err
        ok = outcome.code == case.expected_code and not traceback and files_ok
        failed += not ok
        verdict = "ok" if ok else "FAILED" + (" (traceback)" if traceback else "")
        if not files_ok:
            verdict += " (files)"
        rows.append((case.name, str(outcome.code), first_line(outcome.err), verdict))
        print(f"{number:2d}. {case.name}: exit {outcome.code}, {verdict}", flush=True)
    print("\n| case | exit | first line of stderr | verdict |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |")
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
