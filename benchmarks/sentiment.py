r"""Sentiment app on the sentence polarity data: accuracy against training time, and throughput.

Accuracy: the `i2dl_keras.apps.sentiment` model (its defaults, or the settings given with
`--set KEY=VALUE`), and any further recipes given with `--point KEY=VALUE,...`, trained as
`i2dl sentiment train` trains them on ../shared/data/rt-polarity (8,000 sentences), with one
fixed 80/20 train/test split (split seed 0; 10% of the training part validates for early
stopping) and one run per initialisation/shuffling seed. With them, once per seed, runs the
reference: a plain BiLSTM written with public Keras as a user would (TextVectorization,
Embedding(64), Bidirectional(keras.layers.LSTM(64)), a sigmoid Dense unit, Adam, three epochs on
the whole training part). The runs interleave by seed. The quality-time table at the end gives
each recipe's mean test accuracy, its training seconds (vocabulary and `fit`) by the wall clock
and in CPU time, and their ratios to the reference's. Targets: a mean of 78%, in at most three
times the reference's time; the CPU time is the steadier measure on a shared machine, where the
wall clock also counts the other processes' turns. For scale it first prints the test accuracy
of `i2dl_keras.classic.NBSVMClassifier` (naive-Bayes-weighted logistic regression on word uni-
and bigrams, Wang & Manning 2012) fitted on the training part; for a model with an n-gram member
it also prints the test accuracy of the LSTM part and of the n-gram member on their own.

Throughput: training examples per second of the app's LSTM model (one member), of the same model
with the other LSTM implementation (`cell`), and of a plain Keras model of the same size
(TextVectorization padding to `max_length` + Embedding + Bidirectional `keras.layers.LSTM` +
Dense), all fed the same bucketed pipeline, one epoch each in turn after a warm-up epoch, median
of the rounds. Target: at least the plain Keras model's rate.

The measured figures are in `benchmarks/RESULTS.md`.

    python benchmarks/sentiment.py                      # both parts, the app's defaults
    python benchmarks/sentiment.py --part accuracy --seeds 0 1 2
    python benchmarks/sentiment.py --part throughput --rounds 3
    python benchmarks/sentiment.py --part accuracy --seeds 0 --point members=1,epochs=20 \
        --point members=5,epochs=20                     # more points of the curve
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import record  # noqa: E402
from _settings import settings  # noqa: E402

from i2dl_keras.apps import base, loading, sentiment  # noqa: E402
from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "rt-polarity"


def datasets_for(config: sentiment.Config) -> tuple[loading.Datasets, sentiment.Config]:
    """The fixed split (split seed 0, whatever `config.seed`), and the config the data fills."""
    split_config = dataclasses.replace(config, seed=0)
    datasets = sentiment.make_datasets(split_config, "train")
    return datasets, loading.from_data(config, datasets)


def train_once(config: sentiment.Config, verbose: int = 0) -> dict:
    """Trains as `i2dl sentiment train` does (early stopping on the validation loss).

    `seconds` and `cpu_seconds` cover the vocabulary and `fit` (every member, and the n-gram
    member's solve), not reading the data or testing. With `members` > 1 the epochs are those
    of all the members together. With `ngram_member`, `parts` holds the test accuracy of the
    LSTM part and of the n-gram member on their own.
    """
    keras.utils.set_random_seed(config.seed)
    datasets, config = datasets_for(config)
    model = sentiment.build_model(config)
    started = _clock()
    sentiment.adapt(model, datasets, config)
    # The app's own fit: one model, or an ensemble's members one after another.
    history = sentiment.fit(model, datasets, config, [base.early_stopping(config)], verbose).history
    seconds = _since(started)
    metrics = sentiment.evaluate_model(model, datasets.test, config)
    ngrams = sentiment.ngram_member(model)
    if ngrams is not None:
        metrics["parts"] = {}
        for name, part in (("LSTM", sentiment.lstm_part(model)), ("n-grams", ngrams)):
            # The last column is the second class's probability: the LSTM part gives both
            # classes', the n-gram member that one only.
            _, labels, probs = sentiment._collect(part, datasets.test)
            metrics["parts"][name] = float(np.mean((probs[:, -1] > 0.5) == labels))
    metrics.update(
        epochs=len(history["loss"]), test_examples=datasets.num_examples["test"], **seconds
    )
    return metrics


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(started: tuple[float, float]) -> dict[str, float]:
    """Wall-clock and CPU seconds (all of the process's threads) since `_clock()` gave `started`.

    On a shared machine the wall clock also counts the time other processes held the cores;
    the CPU time counts the work done, so the ratios of CPU times are the steadier ones.
    """
    wall, cpu = _clock()
    return {"seconds": wall - started[0], "cpu_seconds": cpu - started[1]}


def _texts_and_labels(dataset) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    for x, y in dataset.unbatch():
        texts.append(x.numpy().decode("utf-8"))
        labels.append(int(y.numpy().reshape(-1)[0]))
    return texts, labels


def linear_reference(config: sentiment.Config) -> float:
    """Test accuracy of the app's n-gram model alone, fitted on the training part, same split.

    `NBSVMClassifier` with its defaults (the `--ngram-member` model): nothing is tuned on the
    test part. It shows how hard this particular split is.
    """
    datasets, _ = datasets_for(config)
    train_texts, train_labels = _texts_and_labels(datasets.train)
    test_texts, test_labels = _texts_and_labels(datasets.test)
    member = NBSVMClassifier().solve(train_texts, train_labels)
    probabilities = keras.ops.convert_to_numpy(member(np.array(test_texts, dtype=object)))[:, 0]
    return float(np.mean((probabilities > 0.5) == np.array(test_labels)))


REFERENCE_NAME = "reference: plain BiLSTM(64), 3 epochs"


def reference_recipe(config: sentiment.Config, seed: int) -> dict:
    """The plain recipe the app's time is measured against, as a user would write it.

    TextVectorization (padding each batch to its longest text) + Embedding(64, mask_zero) +
    Bidirectional(keras.layers.LSTM(64)) + a sigmoid Dense unit, Adam with its defaults, batches
    of 32 shuffled once per epoch, three epochs on the whole training part (the app's training
    and validation examples), no early stopping. The times cover the vocabulary and `fit`.
    """
    keras.utils.set_random_seed(seed)
    datasets, _ = datasets_for(config)
    texts, labels = _texts_and_labels(datasets.train)
    more_texts, more_labels = _texts_and_labels(datasets.validation)
    texts, labels = np.array(texts + more_texts), np.array(labels + more_labels, np.float32)
    test_texts, test_labels = _texts_and_labels(datasets.test)
    started = _clock()
    vectorize = keras.layers.TextVectorization(max_tokens=sentiment.Config.vocab_size)
    vectorize.adapt(texts)
    model = keras.Sequential(
        [
            keras.Input(shape=(), dtype="string"),
            vectorize,
            keras.layers.Embedding(sentiment.Config.vocab_size, 64, mask_zero=True),
            keras.layers.Bidirectional(keras.layers.LSTM(64)),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    train = tf.data.Dataset.from_tensor_slices((texts, labels))
    train = train.shuffle(len(texts), seed=seed).batch(32)
    model.fit(train, epochs=3, verbose=0)
    seconds = _since(started)
    test = tf.data.Dataset.from_tensor_slices((test_texts, np.array(test_labels))).batch(256)
    accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    return {"accuracy": float(accuracy), "epochs": 3, **seconds}


def _recipe_name(overrides: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items()) or "app defaults"


def accuracy_part(recipes: dict[str, sentiment.Config], seeds: list[int], verbose: int = 0) -> None:
    """Trains every recipe and the reference once per seed, interleaved, then tabulates them.

    Interleaving spreads a shared machine's changing load over all the recipes alike. The
    first recipe is the one the verdicts are recorded for.
    """
    first = next(iter(recipes.values()))
    print(f"accuracy on {first.data} (fixed 80/20 split, split seed 0), seeds {seeds}")
    linear = linear_reference(first)
    print(
        "for scale, NB-weighted logistic regression on word uni+bigrams (NBSVM-style), same "
        f"split: {linear:.4f}",
        flush=True,
    )
    print(f"{'seed':>4}  {'accuracy':>8}  {'auc':>6}  {'epochs':>6}  {'wall s':>7}  {'CPU s':>7}")
    runs: dict[str, list[dict]] = {REFERENCE_NAME: [], **{name: [] for name in recipes}}
    for seed in seeds:
        for name in runs:
            if name == REFERENCE_NAME:
                m = reference_recipe(first, seed)
                m["auc"] = float("nan")
            else:
                m = train_once(dataclasses.replace(recipes[name], seed=seed), verbose)
            runs[name].append(m)
            print(
                f"{seed:>4}  {m['accuracy']:>8.4f}  {m['auc']:>6.4f}  {m['epochs']:>6}  "
                f"{m['seconds']:>7.1f}  {m['cpu_seconds']:>7.1f}  {name}",
                flush=True,
            )
            if "parts" in m:
                print("      alone: " + ", ".join(f"{k} {v:.4f}" for k, v in m["parts"].items()))

    def mean(name: str, key: str) -> float:
        return statistics.mean(m[key] for m in runs[name])

    def ratio(name: str, key: str) -> float:
        return mean(name, key) / mean(REFERENCE_NAME, key)

    print(
        f"\nquality and training time, mean of seeds {seeds} (test examples: "
        f"{runs[next(iter(recipes))][0]['test_examples']}; targets: accuracy >= 0.78, "
        "time <= 3x the reference's)"
    )
    print(
        f"{'accuracy':>8}  {'std':>6}  {'wall s':>7}  {'x ref':>5}  {'CPU s':>7}  {'x ref':>5}  "
        "recipe"
    )
    for name, ms in runs.items():
        accuracies = [m["accuracy"] for m in ms]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(
            f"{statistics.mean(accuracies):>8.4f}  {spread:>6.4f}  "
            f"{mean(name, 'seconds'):>7.1f}  {ratio(name, 'seconds'):>5.2f}  "
            f"{mean(name, 'cpu_seconds'):>7.1f}  {ratio(name, 'cpu_seconds'):>5.2f}  {name}"
        )
    name = next(iter(recipes))
    accuracy = mean(name, "accuracy")
    spread = statistics.stdev(m["accuracy"] for m in runs[name]) if len(seeds) > 1 else 0.0
    record(
        "sentiment",
        f"test accuracy, mean of {len(seeds)} seed(s)",
        f"{accuracy:.2%} (sd {spread:.2%})",
        ">= 78.00%",
        accuracy >= 0.78,
        reference=(
            f"plain BiLSTM(64), 3 epochs {mean(REFERENCE_NAME, 'accuracy'):.2%}; "
            f"NBSVM bigrams {linear:.2%}"
        ),
    )
    record(
        "sentiment",
        f"training CPU seconds (wall-clock ratio {ratio(name, 'seconds'):.2f}x)",
        f"{mean(name, 'cpu_seconds'):.0f} s",
        "<= 3x plain BiLSTM(64), 3 epochs",
        ratio(name, "cpu_seconds") <= 3,
        reference=f"{mean(REFERENCE_NAME, 'cpu_seconds'):.0f} s",
        ratio=f"{ratio(name, 'cpu_seconds'):.2f}x",
    )


def plain_keras_model(config: sentiment.Config) -> keras.Model:
    """The tutorial model of the same size: fixed-length padding, Keras LSTM, no i2dl parts."""
    text = keras.Input(shape=(), dtype="string")
    x = keras.layers.TextVectorization(
        max_tokens=config.vocab_size, output_sequence_length=config.max_length, name="vectorize"
    )(text)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, mask_zero=True)(x)
    x = keras.layers.Dropout(config.dropout)(x)
    for i in range(config.depth):
        lstm = keras.layers.LSTM(config.units, return_sequences=i < config.depth - 1)
        x = keras.layers.Bidirectional(lstm)(x) if config.bidirectional else lstm(x)
    x = keras.layers.Dropout(config.dropout)(x)
    out = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(text, out, name="plain_keras")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def throughput_part(config: sentiment.Config, rounds: int) -> None:
    # The rate of one LSTM model: an ensemble trains its members one after another at that rate.
    config = dataclasses.replace(config, members=1, ngram_member=False)
    keras.utils.set_random_seed(0)
    datasets, config = datasets_for(config)
    n = datasets.num_examples["train"]
    models = {
        f"app's LSTM model (--cell {config.cell})": sentiment.build_model(config),
        "app --cell " + ("keras" if config.cell == "i2dl" else "i2dl"): sentiment.build_model(
            dataclasses.replace(config, cell="keras" if config.cell == "i2dl" else "i2dl")
        ),
        f"plain Keras (pads to {config.max_length})": plain_keras_model(config),
    }
    for model in models.values():
        sentiment.adapt_vectorizer(model, datasets.train)
        model.fit(datasets.train, epochs=1, verbose=0, shuffle=False)  # tracing, warm-up
    print(
        f"training throughput, {n} examples/epoch, batch {config.batch_size}, "
        f"bucket={config.bucket}, {rounds} round(s) of one epoch each, interleaved"
    )
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            started = time.perf_counter()
            model.fit(datasets.train, epochs=1, verbose=0, shuffle=False)
            rates[name].append(n / (time.perf_counter() - started))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    ours, plain = list(medians)[0], list(medians)[2]
    record(
        "sentiment",
        "training examples/s",
        f"{medians[ours]:.0f}/s",
        ">= 1x plain Keras LSTM",
        medians[ours] >= medians[plain],
        reference=f"{medians[plain]:.0f}/s",
        ratio=f"{medians[ours] / medians[plain]:.2f}x",
    )
    for name, values in rates.items():
        params = models[name].count_params()
        print(
            f"{name:<34} {statistics.median(values):>8.0f} examples/s "
            f"(rounds: {', '.join(f'{v:.0f}' for v in values)}; {params:,} parameters)"
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part", choices=("accuracy", "throughput", "both"), default="both", help="what to run"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="one accuracy run per seed"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed epochs per model in the throughput part"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an i2dl_keras.apps.sentiment Config setting, e.g. members=5 (repeatable)",
    )
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help="another recipe for the quality-time table: comma-separated settings as for --set, "
        "applied to the app's defaults (repeatable; accuracy part)",
    )
    parser.add_argument("--data", default=str(DATA), help="the sentence polarity data folder")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: not found (see ../shared/data/README.md)")
    overrides = settings(sentiment.Config, args.set)
    config = sentiment.Config(data=args.data, **overrides)
    config.validate()
    recipes = {_recipe_name(overrides): config}
    for point in args.point:
        more = settings(sentiment.Config, [p for p in point.split(",") if p])
        recipes[_recipe_name(more)] = sentiment.Config(data=args.data, **more)
        recipes[_recipe_name(more)].validate()
    print(f"settings: {overrides or 'defaults'}; {keras.backend.backend()} backend")
    if args.part in ("accuracy", "both"):
        accuracy_part(recipes, args.seeds, args.verbose)
    if args.part in ("throughput", "both"):
        throughput_part(config, args.rounds)


if __name__ == "__main__":
    main()
