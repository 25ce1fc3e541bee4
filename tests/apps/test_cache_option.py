"""`--cache`: keep decoded examples in memory or in files, for every app; bad paths are one line."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from i2dl_keras.apps import cli, digits, settings

TINY = dict(epochs=1, batch_size=8, image_size=12, width=4, augment=False)


@pytest.fixture
def folder(tmp_path):
    """Two classes of 8x8 grey PNGs, 15 each: dark blobs and bright bars."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name, level in (("dark", 40), ("bright", 200)):
        (root / name).mkdir(parents=True)
        for i in range(15):
            pixels = np.clip(level + rng.integers(-20, 20, (8, 8)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _epoch(ds):
    return sum(int(x.shape[0]) for x, _ in ds)


def _moved_away(root):
    away = root.with_name("away")
    root.rename(away)
    return away


def test_memory_keeps_the_decoded_images_after_the_first_epoch(folder, tmp_path):
    config = digits.Config(data=str(folder), cache="memory", **TINY)
    datasets = digits.make_datasets(config, "train")
    first = _epoch(datasets.train)
    _moved_away(folder)  # a second epoch that read the files would fail now
    assert _epoch(datasets.train) == first == datasets.num_examples["train"]


def test_auto_reads_an_image_folder_every_epoch(folder):
    datasets = digits.make_datasets(digits.Config(data=str(folder), **TINY), "train")
    _epoch(datasets.train)
    _moved_away(folder)
    with pytest.raises(tf.errors.NotFoundError):
        _epoch(datasets.train)


def test_a_path_caches_each_split_in_files_named_after_it(folder, tmp_path):
    prefix = tmp_path / "cache" / "digits"
    prefix.parent.mkdir()
    config = digits.Config(data=str(folder), cache=str(prefix), **TINY)
    datasets = digits.make_datasets(config, "train")
    for name in ("train", "validation", "test"):
        _epoch(getattr(datasets, name))
    files = sorted(os.listdir(prefix.parent))
    assert files and all(f.startswith("digits-") for f in files)
    for name in ("train", "validation", "test"):
        assert any(f.endswith(f"-{name}.index") for f in files), files
    _moved_away(folder)
    assert _epoch(datasets.train) == datasets.num_examples["train"]


def test_training_with_a_cache(folder, tmp_path):
    memory = digits.train(data=str(folder), cache="memory", output_dir=str(tmp_path), **TINY)
    assert 0 <= memory.metrics["accuracy"] <= 1
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    files = digits.train(
        data=str(folder), cache=str(cache_dir), output_dir=str(tmp_path / "out"), **TINY
    )
    assert 0 <= files.metrics["accuracy"] <= 1
    written = os.listdir(cache_dir)
    assert any(f.startswith("cache-") and f.endswith("-train.index") for f in written), written
    # The cache belongs to the training run: a loaded run reads its data as `auto` does.
    assert digits.load(files.path).config.cache == "auto"


def test_a_missing_or_unwritable_cache_folder_is_one_line(tmp_path, capsys):
    missing = tmp_path / "missing" / "cache"
    with pytest.raises(settings.UsageError, match=r"^--cache .*missing.* does not exist"):
        digits.train(data="synthetic", cache=str(missing), output_dir=str(tmp_path), **TINY)
    argv = ["digits", "train", "--cache", str(missing), "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--cache" in err and "does not exist" in err and len(err.splitlines()) == 1
    if os.path.isdir("/proc/self"):  # nobody, root included, can create files in /proc
        with pytest.raises(
            settings.UsageError, match="^--cache /proc/x: cannot write to the folder"
        ):
            digits.Config(cache="/proc/x").validate()
    with pytest.raises(settings.UsageError, match="--cache must be auto, memory or a file path"):
        digits.Config(cache=" ").validate()


def test_help_shows_the_cache_flag(capsys):
    with pytest.raises(SystemExit):
        cli.main(["digits", "train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--cache STR" in out and "memory (for data that fit in memory)" in out
    assert "(default: auto)" in out.split("--cache STR", 1)[1]
