"""How a benchmark hands its verdicts to `benchmarks/all.py`: one JSON line per target.

A benchmark run on its own prints its tables as before and records nothing. Run by `all.py`,
the environment variable `I2DL_BENCHMARK_REPORT` names a file, and every `record` call appends
one line to it: the measured value against the issue's target, the reference measured in the
same run and, for speed targets, the ratio to that reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REPORT_ENV = "I2DL_BENCHMARK_REPORT"


def record(
    benchmark: str,
    metric: str,
    measured: str,
    target: str,
    met: bool,
    reference: str = "",
    ratio: str = "",
) -> None:
    """Appends one verdict to the report file, when `all.py` asked for one.

    Args:
        benchmark: The app or benchmark, e.g. `"digits"`.
        metric: What was measured, e.g. `"test accuracy"`.
        measured: The measured value, formatted, e.g. `"99.02%"`.
        target: The issue's target, formatted, e.g. `">= 99.00%"`.
        met: Whether `measured` meets `target`.
        reference: The reference measured in the same run, formatted, if there is one.
        ratio: For speed targets, the ratio to the reference, formatted (e.g. `"0.29x"`).
    """
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    line = {
        "benchmark": benchmark,
        "metric": metric,
        "measured": measured,
        "target": target,
        "met": bool(met),
        "reference": reference,
        "ratio": ratio,
    }
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
