"""Text sentiment: an LSTM that reads raw sentences and says which class they express.

Data: there is no built-in text corpus, so `--data` is required: `--data PATH` for the text
formats of `i2dl_keras.data` (one file per class with one sentence per line, as the sentence
polarity data's `rt-polarity.pos`/`.neg`; aclImdb-style class folders; a CSV/TSV file with a text
and a label column; UTF-8 or Latin-1), `--data imdb` for TFDS `imdb_reviews` (`--download`
fetches it once), `--data synthetic` for smoke tests. Metric: test accuracy (and ROC AUC). The
defaults are the most accurate recipe of `benchmarks/sentiment.py` that trains in at most three
times the time of a plain bidirectional LSTM trained for three epochs: three cross-fitted LSTM
models of three epochs each, with word and recurrent dropout, averaged with an n-gram member. A
good result on the sentence polarity data is 78% or more; longer training (`--members 5 --epochs
20`) buys a little more (the figures are in `benchmarks/RESULTS.md`).

Input contract: a batch of raw strings (`model.predict` also takes a list or a NumPy `str` array);
the model tokenizes them itself and returns the probabilities of the classes, `[batch, classes]`.

Inside: `TextVectorization` (lower-cased, punctuation stripped, vocabulary adapted on the training
split only), an `Embedding` with `mask_zero=True`, `--depth` (bidirectional) LSTM layers from
`i2dl_keras.layers` (`--cell i2dl`, the course's gate equations) or Keras' cuDNN-capable LSTM
(`--cell keras`; the same function from the same weights), dropout and the head on the last LSTM
state: a sigmoid unit for two classes (read as both classes' probabilities), a softmax for more.
`--dropout` acts on the word vectors' components and before the head, `--word-dropout` on whole
word vectors, `--recurrent-dropout` on the LSTM state. For two classes the LSTM is averaged half
and half with an n-gram member, an `i2dl_keras.classic.NBSVMClassifier` on word uni- and
bigrams (Wang & Manning 2012) fitted after it on all training and validation examples
(`--no-ngram-member` leaves it out). `--members K` averages K LSTM models, cross-fitted: each
trains on all training and validation examples but its own K-th part and stops early on that
part. Every variant ends in `i2dl_keras.layers.ClassNames`.
Texts are cut at `--max-length` tokens inside the model; `--bucket` batches texts of similar
length together, so that each batch is padded only to its longest text.

```python
from i2dl_keras.apps import sentiment

run = sentiment.train(data="rt-polaritydata")
run.predict(["a gorgeous , moving film", "dull and lifeless"])[0]["label"]
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

import i2dl_keras.layers
from i2dl_keras import data as i2dl_data
from i2dl_keras.apps import base, loading, plots, predictions, settings
from i2dl_keras.classic import BaggingEnsemble
from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier
from i2dl_keras.data.vocabulary import adapt_vocabulary
from i2dl_keras.layers import ClassNames
from i2dl_keras.losses import SparseCategoricalCrossentropy
from i2dl_keras.models.text_model import TextModel

NAME = "sentiment"
TASK = "text_classification"
TUNING_OBJECTIVE = kt.Objective("val_accuracy", direction="max")
PREDICT_INPUT_HELP = (
    "sentences to classify (quote each one), or @FILE for every line of FILE as one sentence "
    "(UTF-8, or Latin-1 when not valid UTF-8); write @@text for a sentence that starts with @"
)
# Settings that shape the trained model: `evaluate` takes them from the run, not from flags.
MODEL_FIELDS = (
    "cell",
    "vocab_size",
    "embedding_dim",
    "units",
    "depth",
    "bidirectional",
    "dropout",
    "recurrent_dropout",
    "word_dropout",
    "max_length",
    "members",
    "ngram_member",
    "num_classes",
    "class_names",
)
VECTORIZER = "vectorize"
# The names of the parts of an ensemble or `--ngram-member` model: the LSTM model or ensemble,
# and the n-gram member.
LSTM_PART = "lstm"
NGRAM_MEMBER = "ngram_member"
# Bucket edges in words; the ones below `max_length` are used.
BUCKET_EDGES = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
CONFIDENTLY_WRONG_FILE = "confidently_wrong.tsv"
# Where an ensemble's finished members wait, beside the run's BackupAndRestore folder.
MEMBERS_DIR = "members"
CONFIDENTLY_WRONG_ROWS = 25

NO_DATA_HELP = (
    "--data is required: `i2dl sentiment` has no built-in text corpus. Get one of: "
    "(1) the sentence polarity data (rt-polarity.pos/.neg, one sentence per line), from "
    "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz, unpacked, "
    "then --data rt-polaritydata (any folder with one text file per class works); "
    "(2) --data imdb --download for TFDS imdb_reviews (about 80 MB, fetched once, needs network; "
    "--data-dir picks where it is kept); "
    "(3) the aclImdb folder from https://ai.stanford.edu/~amaas/data/sentiment/ as --data aclImdb; "
    "(4) a .csv/.tsv file with a header naming a text and a label column as --data FILE. "
    "--data synthetic runs a quick smoke test on generated sentences"
)


@dataclasses.dataclass
class Config(settings.ClassesConfig):
    """Settings of the sentiment classifier."""

    data: str = settings.option(
        "",
        "required: a local text path (class files, class folders, CSV/TSV), imdb, or synthetic",
    )
    epochs: int = settings.option(
        3, "most training epochs of each LSTM model (early stopping may end sooner)"
    )
    batch_size: int = settings.option(32, "sentences per batch")
    learning_rate: float = settings.option(2e-3, "peak learning rate (cosine decay to 0)")
    patience: int = settings.option(3, "epochs without validation improvement before stopping")
    cell: str = settings.option(
        "i2dl",
        "LSTM: i2dl (the course's gate equations) or keras (cuDNN on a GPU); same function",
        choices=("i2dl", "keras"),
    )
    vocab_size: int = settings.option(
        12000, "most vocabulary entries, padding and out-of-vocabulary included"
    )
    embedding_dim: int = settings.option(128, "size of the word vectors")
    units: int = settings.option(64, "LSTM units (per direction)")
    depth: int = settings.option(1, "stacked LSTM layers")
    bidirectional: bool = settings.option(True, "read each sentence in both directions")
    dropout: float = settings.option(0.5, "dropout on the word vectors and before the head")
    recurrent_dropout: float = settings.option(
        0.25, "dropout on the LSTM's recurrent state (one mask per sentence, Gal & Ghahramani)"
    )
    word_dropout: float = settings.option(
        0.3, "share of whole words (word vectors) dropped from each training sentence"
    )
    max_length: int = settings.option(200, "most tokens read per text (longer ones are cut)")
    bucket: bool = settings.option(True, "batch texts of similar length together (less padding)")
    members: int = settings.option(
        3,
        "models averaged by probability, trained one after another, each on all training and "
        "validation examples but its own held-out part (that many times the training time)",
    )
    ngram_member: bool | None = settings.option(
        None,
        "average the LSTM(s) with an NBSVM-style linear model on word uni- and bigrams, each "
        "weighted one half (two classes only); unset: on for two classes, off for more",
    )
    class_weight: str | None = settings.class_weight_option()
    train_examples: int = settings.option(
        0, "training examples per epoch (set from the data; sizes the learning-rate schedule)"
    )

    def validate(self) -> None:
        super().validate()
        if not self.data.strip() or self.data.strip().lower() == "builtin":
            raise settings.UsageError(NO_DATA_HELP)
        for name, least in (
            ("vocab_size", 3),
            ("embedding_dim", 1),
            ("units", 1),
            ("depth", 1),
            ("max_length", 1),
            ("members", 1),
            ("num_classes", 2),
        ):
            if getattr(self, name) < least:
                raise settings.UsageError(
                    f"--{name.replace('_', '-')} must be at least {least}, "
                    f"got {getattr(self, name)}"
                )
        for name in ("dropout", "recurrent_dropout", "word_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise settings.UsageError(
                    f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}"
                )
        if self.cell not in ("i2dl", "keras"):
            raise settings.UsageError(f"--cell must be i2dl or keras, got {self.cell!r}")


def data_spec(config: Config) -> str:
    """`config.data` with the app's alias applied: `imdb` means TFDS `imdb_reviews`."""
    spec = config.data.strip()
    return "imdb_reviews" if spec.lower() == "imdb" else spec


def word_count(text: tf.Tensor) -> tf.Tensor:
    """Whitespace-separated words of a scalar string: the bucketing length."""
    return tf.size(tf.strings.split(text), out_type=tf.int32)


def bucket_batches(ds: tf.data.Dataset, config: Config) -> tf.data.Dataset:
    """Re-batches a batched `(text, label)` dataset so that each batch holds similar lengths.

    Order within the data is kept up to the grouping: a training pipeline shuffled before
    batching stays shuffled, an evaluation pipeline is deterministic. The number of batches does
    not depend on the order (each bucket emits full batches, then its remainder), so it is
    counted once and declared, and Keras knows the epoch length from the start.
    """
    edges = [e for e in BUCKET_EDGES if e < config.max_length] or [config.max_length]
    lengths = np.concatenate(
        [
            np.zeros(0, np.int64),
            *ds.map(lambda text, label: tf.strings.split(text).row_lengths()).as_numpy_iterator(),
        ]
    )
    per_bucket = np.bincount(np.searchsorted(edges, lengths, side="right"))
    batches = int(np.sum(-(-per_bucket // config.batch_size)))
    return (
        ds.unbatch()
        .bucket_by_sequence_length(
            lambda text, label: word_count(text),
            bucket_boundaries=edges,
            bucket_batch_sizes=[config.batch_size] * (len(edges) + 1),
        )
        .apply(tf.data.experimental.assert_cardinality(batches))
        .prefetch(tf.data.AUTOTUNE)
    )


def make_datasets(config: Config, purpose: str) -> loading.Datasets:
    source_config = dataclasses.replace(config, data=data_spec(config))
    datasets = loading.load_datasets(source_config, TASK, purpose)
    found = len(datasets.class_names)
    if purpose != "evaluate" and found < 2:
        raise settings.UsageError(
            f"--data {config.data} has {found} class(es): a classifier needs at least two"
        )

    def finish(ds):
        return bucket_batches(ds, config) if config.bucket else ds

    datasets.train = finish(datasets.train) if datasets.train is not None else None
    datasets.validation = finish(datasets.validation) if datasets.validation is not None else None
    datasets.test = finish(datasets.test)
    return datasets


def _lstm(config: Config, return_sequences: bool, name: str) -> keras.layers.Layer:
    kind = i2dl_keras.layers.LSTM if config.cell == "i2dl" else keras.layers.LSTM
    layer = kind(
        config.units,
        recurrent_dropout=config.recurrent_dropout,
        return_sequences=return_sequences,
        name=name,
    )
    if config.bidirectional:
        layer = keras.layers.Bidirectional(layer, name=f"bi_{name}")
    return layer


def build_model(config: Config) -> keras.Model:
    """The compiled classifier of raw strings: one model, or an ensemble of `config.members`.

    One member is `build_member`'s model. Several are an `i2dl_keras.classic.BaggingEnsemble`
    of such members (built in turn, so from different initial weights) named `LSTM_PART`; with
    an n-gram member (`uses_ngram_member`), that part (one member or the ensemble) is averaged
    with an `NBSVMClassifier`. Both are wrapped in a `TextModel` that ends in `ClassNames` and is
    compiled with the members' loss and accuracy; `fit` trains the members one after another
    on their own parts of the data, then solves the n-gram member.
    """
    if config.ngram_member and config.num_classes != 2:
        raise settings.UsageError(
            f"--ngram-member needs two classes (its naive-Bayes weights are a log-ratio of "
            f"two classes' counts); the data has {config.num_classes}"
        )
    with_ngrams = uses_ngram_member(config)
    if config.members == 1 and not with_ngrams:
        return build_member(config)
    single = dataclasses.replace(config, members=1, ngram_member=False)
    if config.members == 1:
        lstm = build_member(single, LSTM_PART)
    else:
        members = [build_member(single, f"member_{k}") for k in range(1, config.members + 1)]
        lstm = BaggingEnsemble(members, name=LSTM_PART)
    text = keras.Input(shape=(), dtype="string", name="text")
    probabilities = lstm(text)
    if with_ngrams:
        ngrams = NBSVMClassifier(name=NGRAM_MEMBER)(text)
        probabilities = keras.layers.Average(name="average")([probabilities, _both_classes(ngrams)])
    outputs = ClassNames(settings.class_names_of(config), name="class_names")(probabilities)
    kind = "lstm_and_ngrams" if with_ngrams else "lstm_ensemble"
    model = TextModel(text, outputs, name=f"sentiment_{config.cell}_{kind}")
    loss, accuracy = _loss_and_accuracy()
    model.compile(loss=loss, metrics=[accuracy])
    # Only the members train; building the optimizer anyway saves it whole, so that loading
    # the file does not warn about optimizer variables it lacks.
    model.optimizer.build(model.trainable_variables)
    return model


def uses_ngram_member(config: Config) -> bool:
    """Whether the model has an n-gram member: `--ngram-member` as given, else for two classes."""
    if config.ngram_member is None:
        return config.num_classes == 2
    return config.ngram_member


def _both_classes(probability):
    """`[batch, 1]` probabilities of the second class -> `[batch, 2]` of both classes."""
    return keras.ops.concatenate([1.0 - probability, probability], axis=-1)


def _loss_and_accuracy() -> tuple[keras.losses.Loss, keras.metrics.Metric]:
    return SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def build_member(config: Config, name: str | None = None) -> keras.Model:
    """Raw strings -> TextVectorization -> Embedding(mask_zero) -> LSTM stack -> head, compiled.

    The head gives `[batch, classes]` probabilities, named by a `ClassNames` layer: a softmax,
    or for two classes a sigmoid unit `p` read as `[1 - p, p]`, so that the sparse categorical
    cross-entropy it trains with is the binary cross-entropy of `p`. The vectorizer starts
    empty: `adapt` (or the HyperModel's `fit`) sets its vocabulary from the training split
    before training.
    """
    text = keras.Input(shape=(), dtype="string", name="text")
    ids = keras.layers.TextVectorization(max_tokens=config.vocab_size, name=VECTORIZER)(text)
    # One padding column first, so that a batch of empty strings still has a (masked) step, then
    # the cut at max_length; both are ops of the functional graph and save with the model.
    ids = keras.ops.pad(ids, [[0, 0], [0, 1]])[:, : config.max_length]
    x = keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, mask_zero=True, name="embedding"
    )(ids)
    x = keras.layers.Dropout(config.dropout, name="embedding_dropout")(x)
    if config.word_dropout:
        x = keras.layers.Dropout(
            config.word_dropout, noise_shape=(None, None, 1), name="word_dropout"
        )(x)
    for i in range(config.depth):
        x = _lstm(config, i < config.depth - 1, f"lstm_{i + 1}")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    if config.num_classes == 2:
        probabilities = _both_classes(
            keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
        )
    else:
        probabilities = keras.layers.Dense(
            config.num_classes, activation="softmax", name="probabilities"
        )(x)
    outputs = ClassNames(settings.class_names_of(config), name="class_names")(probabilities)
    model = TextModel(text, outputs, name=name or f"sentiment_{config.cell}_lstm")
    # Cosine decay over the planned steps, as in the digit recognizer.
    steps_per_epoch = -(-config.train_examples // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=config.epochs * max(1, steps_per_epoch)
    )
    loss, accuracy = _loss_and_accuracy()
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=[accuracy])
    return model


def lstm_part(model: keras.Model) -> keras.Model:
    """The LSTM model, or LSTM ensemble, of a model that `build_model` built."""
    if any(layer.name == LSTM_PART for layer in model.layers):
        return model.get_layer(LSTM_PART)
    return model


def ngram_member(model: keras.Model) -> NBSVMClassifier | None:
    """The model's n-gram member (`--ngram-member`), or None."""
    return next((layer for layer in model.layers if isinstance(layer, NBSVMClassifier)), None)


def adapt_vectorizer(model: keras.Model, dataset: tf.data.Dataset) -> list[str]:
    """Sets a member's vocabulary from the texts of a `(text, label)` dataset; returns it.

    `i2dl_keras.data.adapt_vocabulary` leaves out the tokens that would not survive saving.
    """
    return adapt_vocabulary(model.get_layer(VECTORIZER), dataset.map(lambda text, label: text))


def ensemble_members(model: keras.Model) -> list[keras.Model]:
    """The LSTM models that train: an ensemble's members, or the one LSTM model."""
    part = lstm_part(model)
    return list(part.members) if isinstance(part, BaggingEnsemble) else [part]


def adapt(model: keras.Model, datasets: loading.Datasets, config: Config) -> None:
    """Adapts the vocabulary on the training split only.

    An ensemble's members adapt in `fit`, each on its own training part, and so does the n-gram
    member, to the examples it is fitted on.
    """
    members = ensemble_members(model)
    if len(members) == 1:
        adapt_vectorizer(members[0], datasets.train)


def fit(model, datasets: loading.Datasets, config: Config, callbacks, verbose) -> base.FitResult:
    """The `fit` hook of `base.train`: the LSTM model, or an ensemble's members one at a time.

    An ensemble is cross-fitted: the training and validation examples are pooled and dealt
    into as many seeded parts as there are members; member k adapts its vocabulary to, and
    trains on, all parts but the k-th, and stops early on the k-th, so every labelled example
    trains some members and the members differ in their data. Each finished member is saved in
    the run's work folder, beside the `BackupAndRestore` folder; a rerun after an interruption
    deals the same parts, loads the members that had finished and trains the rest, so at most
    the member in progress is trained again (`BackupAndRestore` follows a single model's
    epochs, so the members train without it). The history is the members' one after another,
    with a boundary after each member; `stages` holds one record per member (its examples,
    epochs, best held-out accuracy, and whether it was loaded), and one for the n-gram member,
    which has no epochs to stop early and is solved last, on all training and validation
    examples.
    """
    members = ensemble_members(model)
    if len(members) == 1:
        result = base.FitResult(base.fit_epochs(members[0], datasets, config, callbacks, verbose))
    else:
        result = _cross_fit(members, datasets, config, callbacks, verbose)
    ngrams = ngram_member(model)
    if ngrams is None:
        return result
    texts, labels = _pooled_examples(datasets.train, datasets.validation)
    if len(np.unique(labels)) < 2:
        raise i2dl_data.DataError(
            f"--data {config.data}: the training and validation examples hold one class "
            "only; --ngram-member needs examples of both"
        )
    ngrams.solve(texts, labels)
    stage = {"member": NGRAM_MEMBER, "train_examples": len(texts), "ngrams": ngrams.num_ngrams}
    print(f"{NGRAM_MEMBER}: {stage['ngrams']:,} word n-grams, fitted on {len(texts)} examples")
    return base.FitResult(result.history, result.stage_boundaries, [*(result.stages or []), stage])


def _cross_fit(members, datasets: loading.Datasets, config: Config, callbacks, verbose):
    """Trains an ensemble's members one after another, each on its own parts (see `fit`)."""
    backup = next((c for c in callbacks if isinstance(c, keras.callbacks.BackupAndRestore)), None)
    folder = Path(backup.backup_dir).parent / MEMBERS_DIR if backup is not None else None
    callbacks = [c for c in callbacks if not isinstance(c, keras.callbacks.BackupAndRestore)]
    texts, labels = _pooled_examples(datasets.train, datasets.validation)
    parts = np.random.default_rng(config.seed).permutation(len(texts)) % len(members)
    history: dict[str, list] = {}
    boundaries: list[int] = []
    stages = []
    for k, member in enumerate(members):
        saved = folder / f"{member.name}.keras" if folder is not None else None
        record = saved.with_suffix(".json") if saved is not None else None
        resumed = record is not None and record.is_file() and saved.is_file()
        if resumed:
            _copy_member(keras.saving.load_model(saved), member)
            ran = json.loads(record.read_text())
        else:
            own = dataclasses.replace(
                datasets,
                train=_text_pipeline(texts[parts != k], labels[parts != k], config, k),
                validation=_text_pipeline(texts[parts == k], labels[parts == k], config),
            )
            adapt_vectorizer(member, own.train)
            ran = base.fit_epochs(member, own, config, callbacks, verbose)
            ran = {key: [float(v) for v in values] for key, values in ran.items()}
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
                # `base.train` keeps an interrupted run's work folder when its checkpoint
                # folder exists; the members do not train with it, so it is made for them.
                Path(backup.backup_dir).mkdir(parents=True, exist_ok=True)
                member.save(saved)
                # The record lands last and whole: a member counts as done only with both.
                partial = record.with_suffix(".json.partial")
                partial.write_text(json.dumps(ran))
                os.replace(partial, record)
        for key, values in ran.items():
            history.setdefault(key, []).extend(values)
        boundaries.append(len(history.get("loss", [])))
        stage = {
            "member": member.name,
            "train_examples": int(np.sum(parts != k)),
            "held_out_examples": int(np.sum(parts == k)),
            "epochs": len(ran.get("loss", [])),
            "best_held_out_accuracy": max(ran["val_accuracy"]) if "val_accuracy" in ran else None,
            "resumed": bool(resumed),
        }
        stages.append(stage)
        best = stage["best_held_out_accuracy"]
        print(
            f"{member.name} of {len(members)}"
            + (" (trained before the interruption, loaded)" if resumed else "")
            + f": trained on {stage['train_examples']} examples, {stage['epochs']} epochs"
            + (f", best accuracy on its held-out part {best:.4f}" if best is not None else "")
        )
    return base.FitResult(history, boundaries[:-1], stages)


def _pooled_examples(*pipelines) -> tuple[np.ndarray, np.ndarray]:
    """Every `(text, label)` of the batched pipelines, in an order fixed by the contents.

    The training pipeline reshuffles on every pass; sorting makes the parts dealt from the
    result the same in every run with the same seed.
    """
    texts, labels = [], []
    for pipeline in (p for p in pipelines if p is not None):
        for x, y in pipeline:
            texts.extend(x.numpy())
            labels.extend(y.numpy())
    order = sorted(range(len(texts)), key=lambda i: (texts[i], np.asarray(labels[i]).tolist()))
    return np.array([texts[i] for i in order], dtype=object), np.array([labels[i] for i in order])


def _text_pipeline(texts, labels, config: Config, shuffle_seed: int | None = None):
    """Batches `(text, label)` arrays as `make_datasets` does; shuffled when given a seed."""
    ds = i2dl_data.make_pipeline(
        tf.data.Dataset.from_tensor_slices((texts, labels)),
        config.batch_size,
        training=shuffle_seed is not None,
        seed=config.seed * 1000 + (shuffle_seed or 0),
        deterministic=config.deterministic,
    )
    return bucket_batches(ds, config) if config.bucket else ds


def _copy_member(source: keras.Model, member: keras.Model) -> None:
    vocabulary = source.get_layer(VECTORIZER).get_vocabulary(include_special_tokens=False)
    member.get_layer(VECTORIZER).set_vocabulary(vocabulary)
    member.set_weights(source.get_weights())


class HyperModel(settings.ConfigHyperModel):
    """Searches vocabulary, embedding and LSTM sizes, depth, direction, dropouts, step size."""

    build_model = staticmethod(build_model)

    def config_for(self, hp: kt.HyperParameters) -> Config:
        return dataclasses.replace(
            self.config,
            vocab_size=hp.Choice("vocab_size", [6000, 12000, 20000]),
            embedding_dim=hp.Choice("embedding_dim", [32, 64, 128]),
            units=hp.Choice("units", [32, 64, 128]),
            depth=hp.Int("depth", 1, 2),
            bidirectional=hp.Boolean("bidirectional", default=True),
            dropout=hp.Float("dropout", 0.2, 0.6, step=0.1, default=0.5),
            word_dropout=hp.Float("word_dropout", 0.0, 0.4, step=0.1, default=0.3),
            learning_rate=hp.Float("learning_rate", 5e-4, 5e-3, sampling="log", default=2e-3),
            # Trials compare single models; `final_config` restores the ensemble settings.
            members=1,
            ngram_member=False,
        )

    def final_config(self, hp: kt.HyperParameters) -> Config:
        """The best trial's settings, retrained with the asked-for --members and --ngram-member."""
        return dataclasses.replace(
            self.config_for(hp), members=self.config.members, ngram_member=self.config.ngram_member
        )

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args, **kwargs):
        # Each trial's vocabulary comes from the training split it is fitted on (its size is a
        # hyperparameter), never from the validation data.
        train = args[0] if args else kwargs["x"]
        adapt_vectorizer(model, train)
        return model.fit(*args, **kwargs)


def _collect(model: keras.Model, dataset: tf.data.Dataset):
    """(texts, integer labels, `[n, classes]` probabilities) in one pass over `dataset`."""
    texts, labels, probs = [], [], []
    for x, y in dataset:
        texts.extend(t.decode("utf-8", errors="replace") for t in x.numpy())
        labels.append(y.numpy().reshape(-1).astype(np.int64))
        probs.append(np.asarray(model.predict_on_batch(x)))
    if not texts:
        return [], np.zeros(0, np.int64), np.zeros((0, model.output_shape[-1]), np.float32)
    return texts, np.concatenate(labels), np.concatenate(probs)


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC (one-vs-rest averaged for more than two classes); None where undefined."""
    from sklearn.metrics import roc_auc_score

    try:
        if probs.shape[1] == 2:
            return float(roc_auc_score(labels, probs[:, 1]))
        return float(roc_auc_score(labels, probs, multi_class="ovr", labels=range(probs.shape[1])))
    except ValueError:  # one class only in `labels`
        return None


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: Config) -> dict:
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    _, labels, probs = _collect(model, dataset)
    return {
        "accuracy": float(results["accuracy"]),
        "loss": float(results["loss"]),
        "auc": roc_auc(labels, probs),
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def confidently_wrong(texts, labels, probs, class_names, limit=CONFIDENTLY_WRONG_ROWS):
    """The misclassified examples, most confident first: `(confidence, true, predicted, text)`."""
    predicted = probs.argmax(-1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probs[wrong, predicted[wrong]], kind="stable")][:limit]
    return [
        (float(probs[i, predicted[i]]), class_names[labels[i]], class_names[predicted[i]], texts[i])
        for i in order
    ]


def write_report(
    run_dir: Path, model: keras.Model, datasets: loading.Datasets, config, result: base.FitResult
) -> dict:
    """The test confusion matrix, and the table of the most confidently wrong test texts."""
    texts, labels, probs = _collect(model, datasets.test)
    names = settings.class_names_of(config)
    predicted = probs.argmax(-1)
    n = config.num_classes
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    confusion = plots.confusion_matrix_plot(
        matrix,
        names,
        run_dir / "confusion_matrix.png",
        title=f"test confusion matrix (accuracy {np.mean(predicted == labels):.2%})",
    )
    rows = ["confidence\ttrue\tpredicted\ttext"]
    for confidence, true, pred, text in confidently_wrong(texts, labels, probs, names):
        rows.append(f"{confidence:.4f}\t{true}\t{pred}\t{_one_line(text)}")
    (run_dir / CONFIDENTLY_WRONG_FILE).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"confusion_matrix": confusion}


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise settings.UsageError(
            f"@{path}: cannot read it ({err.strerror or err}); @FILE names a text file with one "
            "sentence per line"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    # Newlines only: str.splitlines() would also break at \x85 and \u2028 inside sentences.
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def expand_inputs(arguments: list[str]) -> list[str]:
    """The texts that the arguments of `i2dl sentiment predict` name.

    Each argument is a text itself, `@FILE` every non-blank line of FILE (UTF-8, or Latin-1
    when not valid UTF-8), and `@@x` the text `@x`. `Run.predict` takes texts only.

    Raises:
        UsageError: for a FILE that cannot be read or holds only blank lines.
    """
    texts = []
    for item in arguments:
        if item.startswith("@@"):
            texts.append(item[1:])
        elif item.startswith("@"):
            path = Path(item[1:])
            lines = _read_lines(path)
            if not lines:
                raise settings.UsageError(
                    f"@{path}: the file holds no sentences (only blank lines)"
                )
            texts.extend(lines)
        else:
            texts.append(item)
    return texts


def predict_inputs(run: base.Run, inputs: Any, batch_size: int) -> list[dict]:
    """`Run.predict`: one `{input, label, class_id, probabilities}` per text, in input order.

    `inputs` is one text or an iterable of texts (`str`, or UTF-8 `bytes`), as
    `i2dl_keras.data.read_texts` takes them; `input` is the text and `probabilities` maps each
    class name to its probability, as `run.model.predict(texts)` gives them.
    """
    if batch_size < 1:
        raise settings.UsageError(f"batch_size must be at least 1, got {batch_size}")
    texts = i2dl_data.read_texts(inputs)
    names = run.class_names
    verbose = base.progress_verbosity() if len(texts) > 4 * batch_size else 0
    probabilities = predictions.check_finite(
        run.model.predict(tf.constant(texts), batch_size=batch_size, verbose=verbose)
    )
    results = []
    for text, probs in zip(texts, probabilities):
        best = int(np.argmax(probs))
        result = {
            "input": text,
            "label": names[best],
            "class_id": best,
            "probabilities": {n: float(p) for n, p in zip(names, probs)},
        }
        problem = i2dl_data.text_problem(text)
        if problem:
            # Scored all the same (the model gives its prior), but never silently.
            result["warning"] = f"{problem}: the prediction reflects no words"
            warnings.warn(f"input {len(results)}: {result['warning']}", stacklevel=3)
        results.append(result)
    return results


def serving_endpoints(model: keras.Model, config: Config) -> dict[str, base.export.Endpoint]:
    def from_text(text):
        probabilities = model(text, training=False)
        return {"probabilities": probabilities, "class_ids": tf.argmax(probabilities, axis=-1)}

    return {"serving_default": (from_text, [tf.TensorSpec([None], tf.string, name="text")])}


def serving_check_requests(config: Config) -> dict[str, dict[str, np.ndarray]]:
    # Non-ASCII UTF-8, an empty string, and lengths far apart in one batch.
    sentences = [
        "a gorgeous , moving film",
        "tedious and predictable . " * 12,
        "naïve , überlong — and yet charmingly so…",
        "",
    ]
    return {
        "serving_default": {"text": np.array([s.encode("utf-8") for s in sentences], dtype=object)}
    }


train, load, tune = base.app_api(__name__)
