"""Local image folders at scale: our input pipeline against Keras' `image_dataset_from_directory`.

Run: `python benchmarks/data.py [--count 100000] [--size 64] [--classes 10] [--folder PATH]`

Writes a class folder of `--count` small images (half JPEG, half PNG, `--size` pixels square,
`--classes` class subfolders) into a temporary folder, or into `--folder`, where a folder that
already holds images is reused as it is. Then, in one run, on the same folder:

- setup seconds: `i2dl_keras.data.load_source` (listing plus the header check of every file)
  against `keras.utils.image_dataset_from_directory` (listing);
- batches per second (and CPU milliseconds per image, steadier on a shared machine) of each
  input pipeline alone, no model: `make_pipeline` over the source's training split (shuffled
  file names, parallel decoding, no cache) against the Keras dataset, both giving shuffled
  batches of `--batch-size` float32 images at their stored size; the two alternate, epoch by
  epoch, `--epochs` times, and the table shows the means;
- peak resident memory (`resource.getrusage`) of one training epoch of the digits app on the
  folder (`digits.train(data=FOLDER, epochs=1)`: listing, split, greyscale, resize to 28x28,
  augmentation, training, test evaluation, saving), in a child process, beside the process's
  peak before it; and, as the reference, the same model trained one epoch on
  `image_dataset_from_directory`'s 28x28 greyscale images in a child process of its own.

Expect an epoch's peak memory to grow by an amount that does not depend on how many images the
folder holds: the pipeline keeps file names, not images.
"""

from __future__ import annotations

import argparse
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


def write_folder(folder: Path, count: int, size: int, classes: int, seed: int = 0) -> None:
    """`count` images in `classes` subfolders: smooth random colour fields, a tint per class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    tints = rng.integers(0, 96, (classes, 3))
    cell = max(1, size // 8)
    for c in range(classes):
        (folder / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        c = i % classes
        coarse = rng.integers(0, 160, (-(-size // cell), -(-size // cell), 3))
        pixels = np.kron(coarse, np.ones((cell, cell, 1)))[:size, :size] + tints[c]
        image = Image.fromarray(pixels.astype(np.uint8))
        if i % 2:
            image.save(folder / f"class_{c}" / f"{i}.jpg", quality=90)
        else:
            image.save(folder / f"class_{c}" / f"{i}.png")


def image_count(folder: Path) -> int:
    return sum(1 for p in folder.glob("*/*") if p.suffix in (".jpg", ".png"))


def peak_kib() -> int:
    """The process's peak resident memory so far, in KiB (Linux's unit for ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def epoch_rate(dataset) -> tuple[float, int, float]:
    """Batches per second over one full epoch of `dataset`, the batch count, CPU seconds."""
    started, cpu, batches = time.perf_counter(), cpu_seconds(), 0
    for _ in dataset:
        batches += 1
    return batches / (time.perf_counter() - started), batches, cpu_seconds() - cpu


def child(kind: str, folder: str, batch_size: int) -> None:
    """One training epoch on the folder's 28x28 greyscale images; prints peak memory as JSON.

    `digits` trains the app itself (`digits.train`, which also splits, evaluates on the test
    split and saves the run); `keras` trains the same model on
    `image_dataset_from_directory`'s images.
    """
    import tempfile

    import keras

    from i2dl_keras.apps import digits

    keras.utils.set_random_seed(0)
    before = peak_kib()
    if kind == "digits":
        with tempfile.TemporaryDirectory(prefix="i2dl-data-run-") as out:
            run = digits.train(data=folder, epochs=1, batch_size=batch_size, output_dir=out)
            batches = -(-run.config.train_examples // batch_size)
    else:
        train = keras.utils.image_dataset_from_directory(
            folder,
            color_mode="grayscale",
            image_size=(28, 28),
            batch_size=batch_size,
            seed=0,
            verbose=False,
        )
        config = digits.Config(num_classes=len(train.class_names))
        model = digits.build_model(config)
        model.fit(train, epochs=1, verbose=0)
        batches = int(train.cardinality())
    print(json.dumps({"before": before, "peak": peak_kib(), "batches": batches}))


def measure_memory(kind: str, folder: Path, batch_size: int) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--folder", str(folder)]
    command += ["--batch-size", str(batch_size)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the {kind} memory run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(folder: Path, args) -> None:
    import keras
    import tensorflow as tf

    from i2dl_keras.data import load_source, make_pipeline

    keras.utils.set_random_seed(args.seed)
    started = time.perf_counter()
    source = load_source(str(folder), "image_classification")
    ours_setup = time.perf_counter() - started

    def to_float(image, label):
        return tf.cast(image, tf.float32), label

    ours = make_pipeline(
        source.train,
        args.batch_size,
        training=True,
        seed=args.seed,
        preprocess=to_float,
        cache=False,
    )
    started = time.perf_counter()
    theirs = keras.utils.image_dataset_from_directory(
        str(folder),
        image_size=(args.size, args.size),
        batch_size=args.batch_size,
        seed=args.seed,
        verbose=False,
    ).prefetch(tf.data.AUTOTUNE)
    keras_setup = time.perf_counter() - started

    rates = {"ours": [], "keras": []}
    cpu = {"ours": [], "keras": []}
    for _ in range(args.epochs):
        for name, dataset in (("ours", ours), ("keras", theirs)):
            rate, _, seconds = epoch_rate(dataset)
            rates[name].append(rate)
            cpu[name].append(seconds)
    ours_rate, keras_rate = (float(np.mean(rates[k])) for k in ("ours", "keras"))
    images = source.num_examples["train"]

    def cpu_ms(name):
        return f"{1000 * float(np.mean(cpu[name])) / images:.3f}"

    digits = measure_memory("digits", folder, 128)
    reference = measure_memory("keras", folder, 128)

    def mib(kib):
        return f"{kib / 1024:,.0f} MiB"

    rows = [
        ("pipeline", "setup s", "batches/s", "CPU ms/image", "peak RSS before", "after epoch"),
        ("i2dl load_source + make_pipeline", f"{ours_setup:.1f}", f"{ours_rate:.1f}")
        + (cpu_ms("ours"), "-", "-"),
        ("keras image_dataset_from_directory", f"{keras_setup:.1f}", f"{keras_rate:.1f}")
        + (cpu_ms("keras"), "-", "-"),
        ("digits.train, one epoch", "-", "-", "-") + (mib(digits["before"]), mib(digits["peak"])),
        ("same model on keras dataset, one epoch", "-", "-", "-")
        + (mib(reference["before"]), mib(reference["peak"])),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"{images:,} images of {args.size}x{args.size} in {folder}")
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(
        f"batch rate ratio (ours / keras): {ours_rate / keras_rate:.2f}   "
        f"(batches of {args.batch_size}, per-epoch rates: ours "
        + ", ".join(f"{r:.1f}" for r in rates["ours"])
        + "; keras "
        + ", ".join(f"{r:.1f}" for r in rates["keras"])
        + ")"
    )
    print(
        f"digits epoch ({digits['batches']} batches): peak memory grew by "
        f"{mib(digits['peak'] - digits['before'])}; keras reference epoch "
        f"({reference['batches']} batches): {mib(reference['peak'] - reference['before'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="images to write")
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--classes", type=int, default=10, help="class subfolders")
    parser.add_argument(
        "--folder", help="where to write the images (reused if it holds some); default: a temp dir"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs of each pipeline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("digits", "keras"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder, args.batch_size)
        return
    if args.count < args.classes * 10:
        sys.exit(f"--count must be at least 10 images per class, got {args.count}")

    with tempfile.TemporaryDirectory(prefix="i2dl-data-") as scratch:
        folder = Path(args.folder) if args.folder else Path(scratch) / "images"
        if not folder.exists() or image_count(folder) == 0:
            started = time.perf_counter()
            write_folder(folder, args.count, args.size, args.classes, args.seed)
            print(f"wrote {args.count:,} images in {time.perf_counter() - started:.0f} s")
        compare(folder, args)


if __name__ == "__main__":
    main()
