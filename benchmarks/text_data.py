"""Local text at scale: streamed class folders and CSV against Keras' `text_dataset_from_directory`.

Run: `python benchmarks/text_data.py [--count 50000] [--csv-rows 200000] [--folder PATH]`

Writes an aclImdb-sized corpus into a temporary folder, or into `--folder` (reused when it
already holds one): `--count` short reviews as `.txt` files in two class folders, `neg/` and
`pos/`, and a CSV file of `--csv-rows` reviews with a text and a label column. Each pipeline then
runs in a child process of its own, so that its memory is its own, and makes one pass:

- setup seconds: `i2dl_keras.data.load_source` (listing plus the check pass that reads and
  decodes every file, or parses every row, once) against `keras.utils.text_dataset_from_directory`
  (listing);
- examples per second, and CPU milliseconds per 1,000 examples (steadier on a shared machine), of
  one pass of shuffled batches of `--batch-size` texts: `make_pipeline` over the source's
  training split (shuffled file names or row offsets, read in parallel, no cache) against the
  Keras dataset; for the CSV, against `tf.data.experimental.CsvDataset` (TensorFlow's own CSV
  parser, the two columns as strings, shuffled with a buffer of 10,000 rows) for scale;
- peak resident memory (`resource.getrusage`) growth of the setup and of the pass.

The pipelines take turns, `--repeats` times; the table shows the means.

Expect the streamed folder to read about as fast as Keras' dataset, its setup to take longer (it
reads every file once), and the memory of both passes to stay far below the size of the texts.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

WORDS = {
    "neg": "dull boring awful waste bad worst tedious mess weak poor".split(),
    "pos": "great moving superb fine best brilliant touching fun strong rich".split(),
    "any": (
        "the a film movie plot actor scene story and of to is it that this was as with for "
        "but his her on at by an be one all who they from so like has just about out more"
    ).split(),
}
CLASSES = ("neg", "pos")
FOLDER, TABLE = "reviews", "reviews.csv"


def review(rng: np.random.Generator, label: str) -> str:
    """A review of 20 to 400 words, mostly common ones, with aclImdb's `<br />` breaks."""
    count = int(rng.integers(20, 400))
    pool = WORDS["any"] * 4 + WORDS[label]
    words = [pool[i] for i in rng.integers(0, len(pool), count)]
    for position in rng.integers(0, count, count // 60):
        words[position] += ".<br /><br />"
    return " ".join(words).capitalize() + "."


def write_folder(folder: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = CLASSES[i % 2]
        rating = int(rng.integers(1, 5)) if label == "neg" else int(rng.integers(7, 11))
        (folder / label / f"{i // 2}_{rating}.txt").write_text(review(rng, label), "utf-8")


def write_table(path: Path, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed + 1)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for i in range(rows):
            label = CLASSES[i % 2]
            writer.writerow([review(rng, label), "negative" if label == "neg" else "positive"])


def text_file_count(folder: Path) -> int:
    return sum(1 for name in CLASSES for _ in (folder / name).glob("*.txt"))


def peak_kib() -> int:
    """The process's peak resident memory so far, in KiB (Linux's unit for ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(kind: str, data: Path, batch_size: int, seed: int) -> None:
    """Setup and one pass of one pipeline; prints what it measured as JSON."""
    import keras
    import tensorflow as tf

    from i2dl_keras.data import load_source, make_pipeline

    keras.utils.set_random_seed(seed)
    base = peak_kib()
    started = time.perf_counter()
    if kind in ("ours_folder", "ours_csv"):
        source = load_source(str(data), "text_classification")
        dataset = make_pipeline(source.train, batch_size, training=True, seed=seed, cache=False)
    elif kind == "keras_folder":
        dataset = keras.utils.text_dataset_from_directory(
            str(data), batch_size=batch_size, seed=seed, verbose=False
        ).prefetch(tf.data.AUTOTUNE)
    else:
        dataset = (
            tf.data.experimental.CsvDataset(str(data), [tf.string, tf.string], header=True)
            .shuffle(10_000, seed=seed)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
    setup = time.perf_counter() - started
    before, cpu, examples = peak_kib(), cpu_seconds(), 0
    started = time.perf_counter()
    for batch in dataset:
        examples += int(batch[0].shape[0])
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    result = {
        "setup": setup,
        "rate": examples / seconds,
        "cpu_ms": 1e6 * cpu / examples,
        "examples": examples,
        "setup_growth": before - base,
        "pass_growth": peak_kib() - before,
    }
    print(json.dumps(result))


def measure(kind: str, data: Path, args) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--folder", str(data)]
    command += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the {kind} run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB"


def compare(root: Path, args) -> None:
    folder, table = root / FOLDER, root / TABLE
    texts = sum(p.stat().st_size for name in CLASSES for p in (folder / name).glob("*.txt"))
    pipelines = [
        ("i2dl text folders (streamed)", "ours_folder", folder),
        ("keras text_dataset_from_directory", "keras_folder", folder),
        ("i2dl CSV table (streamed)", "ours_csv", table),
        ("tf.data CsvDataset (reference)", "tf_csv", table),
    ]
    # The pipelines take turns, `--repeats` times, so that a busy spell of a shared machine
    # does not fall on one of them only; the table shows means, and the largest memory growth.
    trials = {kind: [] for _, kind, _ in pipelines}
    for _ in range(args.repeats):
        for _, kind, data in pipelines:
            trials[kind].append(measure(kind, data, args))
    runs = []
    for name, kind, _ in pipelines:
        results = trials[kind]
        summary = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        for key in ("setup_growth", "pass_growth"):
            summary[key] = max(r[key] for r in results)
        summary["examples"] = results[0]["examples"]
        runs.append((name, summary))
    header = (
        "pipeline",
        "examples",
        "setup s",
        "examples/s",
        "CPU ms/1k",
        "setup RSS +",
        "pass RSS +",
    )
    rows = [header] + [
        (
            name,
            f"{r['examples']:,}",
            f"{r['setup']:.1f}",
            f"{r['rate']:,.0f}",
            f"{r['cpu_ms']:.0f}",
            mib(r["setup_growth"]),
            mib(r["pass_growth"]),
        )
        for name, r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(
        f"{text_file_count(folder):,} text files ({texts / 2**20:,.0f} MiB) in {folder}; "
        f"{table.stat().st_size / 2**20:,.0f} MiB CSV {table}; batches of {args.batch_size}, "
        f"means of {args.repeats} runs"
    )
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    ours, keras_run = runs[0][1], runs[1][1]
    print()
    print(
        f"text folders, ours / keras: examples/s {ours['rate'] / keras_run['rate']:.2f}, "
        f"CPU per example {ours['cpu_ms'] / keras_run['cpu_ms']:.2f}, "
        f"setup seconds {ours['setup'] / keras_run['setup']:.2f}"
    )
    csv_ours, csv_tf = runs[2][1], runs[3][1]
    print(
        f"CSV, ours / CsvDataset: examples/s {csv_ours['rate'] / csv_tf['rate']:.2f}, "
        f"CPU per example {csv_ours['cpu_ms'] / csv_tf['cpu_ms']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="text files to write")
    parser.add_argument("--csv-rows", type=int, default=200_000, help="CSV rows to write")
    parser.add_argument(
        "--folder", help="where to write the corpus (reused if it holds one); default: a temp dir"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each pipeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--child",
        choices=("ours_folder", "keras_folder", "ours_csv", "tf_csv"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.folder), args.batch_size, args.seed)
        return
    if args.count < 20 or args.csv_rows < 20:
        sys.exit("--count and --csv-rows must be at least 20")

    with tempfile.TemporaryDirectory(prefix="i2dl-text-") as scratch:
        root = Path(args.folder) if args.folder else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        if not (root / FOLDER).exists() or text_file_count(root / FOLDER) == 0:
            started = time.perf_counter()
            write_folder(root / FOLDER, args.count, args.seed)
            print(f"wrote {args.count:,} text files in {time.perf_counter() - started:.0f} s")
        if not (root / TABLE).exists():
            started = time.perf_counter()
            write_table(root / TABLE, args.csv_rows, args.seed)
            print(f"wrote {args.csv_rows:,} CSV rows in {time.perf_counter() - started:.0f} s")
        compare(root, args)


if __name__ == "__main__":
    main()
