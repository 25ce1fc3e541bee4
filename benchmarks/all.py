"""Every app's benchmark, one after the other, and one table of their verdicts.

Run: `python benchmarks/all.py [--only digits serve ...] [--quick] [--data-root ../shared/data]`

Each benchmark runs in its own process (`python benchmarks/NAME.py ...`) with its output saved
to `--log-dir` (one `NAME.log` each, written as it runs; the last lines are echoed when a
benchmark fails). The benchmarks record their verdicts through `benchmarks/_report.py`; the
table has one row per target: the benchmark, the metric, the measured value, the issue's target,
the reference measured in the same run, the speed ratio to that reference, and whether the
target is met.

The full run trains every app at its benchmarked size and takes hours on 2 CPU cores (a few
minutes per app on one GPU). `--quick` runs each benchmark with a small budget (fewer epochs,
seeds and seconds) to check that the whole chain works: its numbers are not comparable to the
targets, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import REPORT_ENV

HERE = Path(__file__).resolve().parent

# name -> (arguments of a full run, extra arguments of a quick one); `{data}` is --data-root.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "digits": (["--data", "{data}/mnist"], ["--epochs", "2", "--set", "epochs=2"]),
    "denoise": (
        ["--data", "{data}/mnist", "--recipes", "conv"],
        [
            *("--epochs", "2", "--reference-epochs", "1", "--classify-draws", "1"),
            *("--classify-augment", "0"),
            *("--classify-dropouts", "0.5,0.8", "--classify-finetune-rates", "0.1,1"),
        ],
    ),
    "sentiment": (
        ["--data", "{data}/rt-polarity"],
        ["--seeds", "0", "--rounds", "1", "--set", "epochs=1"],
    ),
    "segmentation": (
        ["--data", "{data}/membrane"],
        ["--epochs", "2", "--steps", "3", "--crop-size", "128", "--reference-steps", "3"],
    ),
    "transfer": (
        ["--data", "{data}/mnist"],
        ["--seeds", "0", "--head-pool", "flatten", "--pretrain-epochs", "1"]
        + ["--scratch-epochs", "2", "--head-epochs", "2", "--fine-tune-epochs", "2"],
    ),
    "serve": ([], ["--seconds", "2", "--epochs", "1"]),
}
COLUMNS = ("benchmark", "metric", "measured", "target", "reference", "ratio", "met")


def run(name: str, argv: list[str], log: Path, report: Path) -> tuple[int, float]:
    """Runs one benchmark with its output in `log`; returns its exit status and seconds."""
    env = dict(os.environ, **{REPORT_ENV: str(report)}, PYTHONUNBUFFERED="1")
    command = [sys.executable, str(HERE / f"{name}.py"), *argv]
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        out.write("$ " + " ".join(command) + "\n")
        out.flush()
        status = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    return status, time.perf_counter() - started


def table(rows: list[dict[str, str]]) -> str:
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS)]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="small budgets: checks the chain")
    parser.add_argument("--data-root", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--log-dir", type=Path, default=None, help="default: a new temp folder")
    args = parser.parse_args()
    if not args.data_root.is_dir():
        parser.error(f"--data-root {args.data_root} is not a folder (it holds mnist/, ...)")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="i2dl-benchmarks-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"logs in {log_dir}" + ("; --quick: numbers not comparable to targets" * args.quick))

    rows: list[dict[str, str]] = []
    for name in args.only:
        full, quick = BENCHMARKS[name]
        argv = [a.replace("{data}", str(args.data_root)) for a in full] + (quick * args.quick)
        report, log = log_dir / f"{name}.jsonl", log_dir / f"{name}.log"
        report.unlink(missing_ok=True)
        print(f"{name}: running ({log})", flush=True)
        status, seconds = run(name, argv, log, report)
        recorded = []
        if report.exists():
            recorded = [json.loads(line) for line in report.read_text().splitlines() if line]
        print(f"{name}: exit status {status} after {seconds:.0f} s, {len(recorded)} verdict(s)")
        if status != 0 or not recorded:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
            print("\n".join("    " + line for line in tail))
            recorded.append(
                {
                    "benchmark": name,
                    "metric": f"exit status {status}" if status else "no verdict recorded",
                    "measured": "",
                    "target": "",
                    "met": False,
                    "reference": "",
                    "ratio": "",
                    "failed": True,
                }
            )
        for line in recorded:
            met = "FAILED" if line.get("failed") else ("yes" if line["met"] else "no")
            if args.quick and not line.get("failed"):
                met = f"({met}, quick)"
            rows.append({**{c: str(line.get(c, "")) for c in COLUMNS}, "met": met})

    print()
    print(table(rows))
    met = sum(r["met"] == "yes" for r in rows)
    print(f"\n{met} of {len(rows)} target(s) met" + (" (quick run)" * args.quick))
    return 1 if any(r["met"] == "FAILED" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
