"""i2dl_keras.data: data sources (builtin, synthetic, TFDS, local files) and the tf.data pipeline.

`load_source(spec, task)` turns one `--data` string into a `Source` of unbatched `tf.data`
splits; `train_val_test` carves the splits a source lacks; `make_pipeline` batches a split for
training or evaluation. Every bad input raises `DataError` with a message fit to show a user.
"""

from i2dl_keras.data.augment import random_affine
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.idx import read_idx
from i2dl_keras.data.load import TFDS_NAMES, load_source
from i2dl_keras.data.local import detect_format
from i2dl_keras.data.pipeline import held_out_count, make_pipeline, split, train_val_test
from i2dl_keras.data.source import FORMATS, TASKS, Source

__all__ = [
    "FORMATS",
    "TASKS",
    "TFDS_NAMES",
    "DataError",
    "Source",
    "detect_format",
    "held_out_count",
    "load_source",
    "make_pipeline",
    "random_affine",
    "read_idx",
    "split",
    "train_val_test",
]
