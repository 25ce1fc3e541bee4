"""i2dl_keras.data: data sources (builtin, synthetic, TFDS, local files) and the tf.data pipeline.

`load_source(spec, task)` turns one `--data` string into a `Source` of unbatched `tf.data`
splits (for an autoencoder, any image source or a folder of unlabelled images); `select_classes`,
`sample_per_class` and `hold_out_test` cut a source down; `train_val_test` carves the splits a
source lacks; `make_pipeline` batches a split for training or evaluation. Every bad input
raises `DataError` with a message fit to show a user.
"""

from i2dl_keras.data.augment import random_affine
from i2dl_keras.data.color_jitter import color_jitter
from i2dl_keras.data.errors import DataError
from i2dl_keras.data.idx import read_idx
from i2dl_keras.data.inputs import read_images, read_texts, text_problem
from i2dl_keras.data.load import TFDS_NAMES, load_source
from i2dl_keras.data.local import detect_format
from i2dl_keras.data.pipeline import held_out_count, make_pipeline, split, train_val_test
from i2dl_keras.data.selection import hold_out_test, sample_per_class, select_classes
from i2dl_keras.data.source import FORMATS, TASKS, Source
from i2dl_keras.data.vocabulary import adapt_vocabulary

__all__ = [
    "FORMATS",
    "TASKS",
    "TFDS_NAMES",
    "DataError",
    "Source",
    "adapt_vocabulary",
    "color_jitter",
    "detect_format",
    "held_out_count",
    "hold_out_test",
    "load_source",
    "make_pipeline",
    "random_affine",
    "read_idx",
    "read_images",
    "read_texts",
    "sample_per_class",
    "select_classes",
    "split",
    "text_problem",
    "train_val_test",
]
