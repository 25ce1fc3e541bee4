"""TensorFlow Datasets as a `Source`, failing fast and clearly when the data is not there.

`tensorflow_datasets` is imported inside the functions: it takes seconds to import and most runs
never need it. Nothing is downloaded unless `download=True`, and then only after a quick check
(a TCP connection with a 3-second limit) that the data set's download host answers, so a user
offline gets an error at once instead of minutes of retries.
"""

from __future__ import annotations

import logging
import socket
import threading

import tensorflow as tf

from i2dl_keras.data.errors import DataError
from i2dl_keras.data.source import ReadOptions, Source

logger = logging.getLogger(__name__)

# Known names: the feature keys (x, y) per task, the splits (our name -> TFDS name), where the
# original files are downloaded from, and what local files could stand in.
KNOWN_TFDS = {
    "mnist": {
        "tasks": {"image_classification": ("image", "label")},
        "splits": {"train": "train", "test": "test"},
        "host": ("storage.googleapis.com", 443),
        "local": "a folder of MNIST IDX files (train-images-idx3-ubyte.gz, ...)",
    },
    "fashion_mnist": {
        "tasks": {"image_classification": ("image", "label")},
        "splits": {"train": "train", "test": "test"},
        "host": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
        "local": "a folder of Fashion-MNIST IDX files (train-images-idx3-ubyte.gz, ...)",
    },
    "cifar10": {
        "tasks": {"image_classification": ("image", "label")},
        "splits": {"train": "train", "test": "test"},
        "host": ("www.cs.toronto.edu", 443),
        "local": "a folder with one subfolder of images per class",
    },
    "imdb_reviews": {
        "tasks": {"text_classification": ("text", "label")},
        "splits": {"train": "train", "test": "test"},
        "host": ("ai.stanford.edu", 80),
        "local": "the unpacked aclImdb folder, text files with one example per line, or a CSV",
    },
    "tf_flowers": {
        "tasks": {"image_classification": ("image", "label")},
        "splits": {"train": "train"},
        "host": ("download.tensorflow.org", 80),
        "local": "the unpacked flower_photos folder (one subfolder of images per class)",
    },
    "cats_vs_dogs": {
        "tasks": {"image_classification": ("image", "label")},
        "splits": {"train": "train"},
        "host": ("download.microsoft.com", 443),
        "local": "the unpacked PetImages folder (Cat/ and Dog/ subfolders of images)",
    },
    "oxford_iiit_pet": {
        "tasks": {
            "image_classification": ("image", "label"),
            "segmentation": ("image", "segmentation_mask"),
        },
        "splits": {"train": "train", "test": "test"},
        "host": ("thor.robots.ox.ac.uk", 443),
        "local": "a folder with image/ and label/ subfolders of images and masks",
        # Trimap values 1 pet, 2 background, 3 border become class ids 0, 1, 2.
        "mask_values": (1, 2, 3),
    },
}

# Where TFDS itself keeps prepared copies; the fallback check for names not in the table.
DEFAULT_HOST = ("storage.googleapis.com", 443)

REACHABILITY_TIMEOUT_S = 3.0


def host_reachable(host: str, port: int, timeout: float = REACHABILITY_TIMEOUT_S) -> bool:
    """Whether a TCP connection to `host:port` opens within about `timeout` seconds.

    The attempt runs in a daemon thread so that a slow DNS lookup, which ignores socket
    timeouts, cannot hold the caller longer than the limit either.
    """
    result: dict[str, bool] = {}

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result["ok"] = True
        except OSError as err:
            logger.info("cannot reach %s:%s: %s", host, port, err)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return result.get("ok", False)


def _base_name(name: str) -> str:
    return name.split("/")[0].split(":")[0]


def _not_prepared(
    name: str, root: str, local: str | None, *, offline_host: tuple[str, int] | None = None
) -> DataError:
    local_hint = f" ({local})" if local else ""
    if offline_host is not None:
        first = (
            f"Cannot download TFDS data set {name!r}: its download host {offline_host[0]} does "
            f"not answer (offline?), and it is not prepared in {root} either"
        )
        todo = "Rerun with --download once online"
    else:
        first = f"TFDS data set {name!r} is not prepared in {root}"
        todo = "Rerun with --download while online to fetch and prepare it there"
    return DataError(f"{first}. {todo}, or pass --data PATH with local files{local_hint}.")


def _feature_keys(name: str, task: str, info) -> tuple[str, str]:
    known = KNOWN_TFDS.get(_base_name(name))
    if known is not None:
        if task not in known["tasks"]:
            raise DataError(
                f"TFDS data set {name!r} serves {', '.join(known['tasks'])}, not {task}"
            )
        return known["tasks"][task]
    features = info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    if task == "segmentation":
        x = "image" if "image" in keys else None
        y = next((k for k in ("segmentation_mask", "mask", "label") if k in keys), None)
    elif info.supervised_keys and len(info.supervised_keys) == 2:
        x, y = info.supervised_keys
    else:
        x = next((k for k in ("image", "text", "sentence") if k in keys), None)
        y = "label" if "label" in keys else None
    if x is None or y is None or not isinstance(x, str) or not isinstance(y, str):
        raise DataError(
            f"Cannot tell which features of TFDS data set {name!r} are the input and the target "
            f"for {task}; it has: {', '.join(keys) or 'no named features'}"
        )
    return x, y


def _convert(x_key, y_key, task, options: ReadOptions, mask_values):
    """The map from a TFDS feature dict to our `(x, y)` element convention."""

    def image(x):
        x = tf.convert_to_tensor(x)
        if x.dtype != tf.uint8:
            x = tf.cast(tf.clip_by_value(x, 0, 255), tf.uint8)
        if x.shape.rank == 2:
            x = x[:, :, None]
        channels = x.shape[-1]
        if options.channels == 1 and channels != 1:
            x = tf.image.rgb_to_grayscale(x[:, :, :3])
        elif options.channels == 3 and channels == 1:
            x = tf.image.grayscale_to_rgb(x)
        if options.image_size is not None:
            x = tf.image.resize(x, options.image_size, method="bilinear")
            x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
        return x

    def mask(y):
        y = tf.convert_to_tensor(y)
        if y.shape.rank == 2:
            y = y[:, :, None]
        if options.image_size is not None:
            y = tf.image.resize(y, options.image_size, method="nearest")
        y = tf.cast(y[:, :, 0], tf.int64)
        if mask_values:
            # Value -> sorted position: the same mapping local mask files get.
            y = _lookup(y, mask_values)
        return tf.cast(y, tf.uint8)

    def fn(example):
        x, y = example[x_key], example[y_key]
        if task == "text_classification":
            return tf.convert_to_tensor(x, tf.string), tf.cast(y, tf.int64)
        if task == "segmentation":
            return image(x), mask(y)
        return image(x), tf.cast(y, tf.int64)

    return fn


def _lookup(y: tf.Tensor, values) -> tf.Tensor:
    table = tf.constant(sorted(values), tf.int64)
    flat = tf.reshape(y, [-1])
    ids = tf.searchsorted(table, flat, side="left")
    return tf.reshape(ids, tf.shape(y))


def load_tfds(
    name: str,
    task: str,
    *,
    data_dir: str | None,
    download: bool,
    options: ReadOptions,
) -> Source:
    """A TFDS data set as a `Source`; see the module docstring for the download policy."""
    try:
        import tensorflow_datasets as tfds  # slow to import: only when a TFDS source is asked for
    except ImportError as err:
        raise DataError(
            f"--data {name} needs the tensorflow-datasets package, which failed to import ({err}): "
            "pip install tensorflow-datasets, or pass --data PATH with local files"
        ) from None

    base = _base_name(name)
    known = KNOWN_TFDS.get(base)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"TFDS has no data set named {name!r}; see https://www.tensorflow.org/datasets/catalog "
            "for names, or pass --data PATH for local files"
        ) from None
    except Exception as err:  # TFDS raises many kinds here (bad config, bad version, ...)
        raise DataError(f"Cannot open TFDS data set {name!r}: {err}") from None
    root = str(getattr(builder, "data_dir_root", data_dir or tfds.core.constants.DATA_DIR))
    local = known["local"] if known else None
    x_key, y_key = _feature_keys(name, task, builder.info)

    if download and not builder.is_prepared():
        host, port = known["host"] if known else DEFAULT_HOST
        logger.info("checking that %s:%s answers before downloading %s", host, port, name)
        if not host_reachable(host, port):
            raise _not_prepared(name, root, local, offline_host=(host, port))
        logger.info("downloading and preparing %s in %s", name, root)
        try:
            builder.download_and_prepare()
        except Exception as err:  # network and archive errors of every kind
            raise DataError(
                f"Downloading TFDS data set {name!r} into {root} failed: {err}"
            ) from None

    splits = dict(known["splits"]) if known else {}
    if not known:
        for split in ("train", "validation", "test"):
            if split in builder.info.splits:
                splits[split] = split
        splits.setdefault("train", "train")

    datasets, counts = {}, {}
    notes: list[str] = []
    mask_values = known.get("mask_values") if known and task == "segmentation" else None
    convert = _convert(x_key, y_key, task, options, mask_values)
    for role, split in splits.items():
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False)
        except AssertionError:
            # TFDS' way of saying "not prepared": no data under `data_dir`.
            raise _not_prepared(name, root, local) from None
        except Exception as err:
            if role == "train":
                raise DataError(
                    f"Cannot read split {split!r} of TFDS data set {name!r}: {err}"
                ) from None
            continue
        datasets[role] = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
        count = None
        if split in builder.info.splits:
            count = builder.info.splits[split].num_examples or None
        if count is None and int(ds.cardinality()) >= 0:
            count = int(ds.cardinality())
        if count is not None:
            counts[role] = count

    class_names: list[str] = []
    if task == "segmentation":
        if mask_values:
            class_names = [str(v) for v in mask_values]
        else:
            notes.append("mask values are used as class ids as they are; class names unknown")
    else:
        label = builder.info.features[y_key]
        class_names = list(getattr(label, "names", None) or [])
    if task != "text_classification" and options.image_size is None:
        shape = builder.info.features[x_key].shape
        if len(shape) >= 2 and (shape[0] is None or shape[1] is None):
            notes.append(
                f"images in TFDS {name} differ in size: pass an image size so that they can be "
                "batched"
            )
    return Source(
        name=f"TFDS {name} ({root})",
        task=task,
        train=datasets["train"],
        test=datasets.get("test"),
        validation=datasets.get("validation"),
        class_names=class_names,
        num_examples=counts,
        notes=notes,
    )
