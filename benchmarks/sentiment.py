r"""Sentiment app on the sentence polarity data: accuracy over seeds, and training throughput.

Accuracy: the `i2dl_keras.apps.sentiment` model (its defaults, or the settings given with
`--set KEY=VALUE`) trained as `i2dl sentiment train` trains it on ../shared/data/rt-polarity
(8,000 sentences), with one fixed 80/20 train/test split (split seed 0; 10% of the training
part validates for early stopping) and one run per initialisation/shuffling seed; prints each
seed's test accuracy, AUC, epochs and time, then the mean and spread. Target: a mean of 78%. For
scale it first prints the test accuracy, on the same split, of
`i2dl_keras.classic.NBSVMClassifier` (naive-Bayes-weighted logistic regression on word uni- and
bigrams, Wang & Manning 2012) fitted on the training part.
With `--set ngram_member=true` it also prints the test accuracy of the LSTM part and of the
n-gram member on their own.

Throughput: training examples per second of the app's model, of the same model with the other
LSTM implementation (`cell`), and of a plain Keras model of the same size (TextVectorization
padding to `max_length` + Embedding + Bidirectional `keras.layers.LSTM` + Dense), all fed the
same bucketed pipeline, one epoch each in turn after a warm-up epoch, median of the rounds.
Target: at least the plain Keras model's rate.

Expect about 75.5% with the defaults and about 79% with the best recipe (the last command below);
the measured figures are in `benchmarks/RESULTS.md`.

    python benchmarks/sentiment.py                      # both parts
    python benchmarks/sentiment.py --part accuracy --seeds 0 1 2
    python benchmarks/sentiment.py --part throughput --rounds 3
    python benchmarks/sentiment.py --part accuracy --seeds 0 1 2 --set members=5 \
        --set word_dropout=0.3 --set embedding_dim=128 --set recurrent_dropout=0.25 \
        --set ngram_member=true                         # the best recipe
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _report import record  # noqa: E402
from _settings import settings  # noqa: E402

from i2dl_keras.apps import base, sentiment  # noqa: E402
from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "rt-polarity"


def datasets_for(config: sentiment.Config) -> tuple[base.Datasets, sentiment.Config]:
    """The fixed split (split seed 0, whatever `config.seed`), and the config the data fills."""
    split_config = dataclasses.replace(config, seed=0)
    datasets = sentiment.make_datasets(split_config, "train")
    return datasets, base._from_data(config, datasets)


def train_once(config: sentiment.Config, verbose: int = 0) -> dict:
    """Trains as `i2dl sentiment train` does (early stopping on the validation loss).

    With `members` > 1 the epochs are those of all the members together. With `ngram_member`,
    `parts` holds the test accuracy of the LSTM part and of the n-gram member on their own.
    """
    keras.utils.set_random_seed(config.seed)
    datasets, config = datasets_for(config)
    model = sentiment.build_model(config)
    sentiment.adapt(model, datasets, config)
    started = time.perf_counter()
    # The app's own fit: one model, or an ensemble's members one after another.
    history = sentiment.fit(model, datasets, config, [base.early_stopping(config)], verbose).history
    seconds = time.perf_counter() - started
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
        epochs=len(history["loss"]), seconds=seconds, test_examples=datasets.num_examples["test"]
    )
    return metrics


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


def accuracy_part(config: sentiment.Config, seeds: list[int], verbose: int = 0) -> None:
    print(f"accuracy on {config.data} (fixed 80/20 split, split seed 0), seeds {seeds}")
    linear = linear_reference(config)
    print(
        "for scale, NB-weighted logistic regression on word uni+bigrams (NBSVM-style), same "
        f"split: {linear:.4f}",
        flush=True,
    )
    print(f"{'seed':>4}  {'accuracy':>8}  {'auc':>6}  {'epochs':>6}  {'seconds':>7}")
    accuracies = []
    for seed in seeds:
        m = train_once(dataclasses.replace(config, seed=seed), verbose)
        accuracies.append(m["accuracy"])
        print(
            f"{seed:>4}  {m['accuracy']:>8.4f}  {m['auc']:>6.4f}  {m['epochs']:>6}  "
            f"{m['seconds']:>7.1f}",
            flush=True,
        )
        if "parts" in m:
            print("      alone: " + ", ".join(f"{k} {v:.4f}" for k, v in m["parts"].items()))
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(
        f"mean {statistics.mean(accuracies):.4f}  std {spread:.4f}  "
        f"min {min(accuracies):.4f}  max {max(accuracies):.4f}  "
        f"(test examples: {m['test_examples']}; target mean >= 0.78)"
    )
    mean = statistics.mean(accuracies)
    record(
        "sentiment",
        f"test accuracy, mean of {len(seeds)} seed(s)",
        f"{mean:.2%} (sd {spread:.2%})",
        ">= 78.00%",
        mean >= 0.78,
        reference=f"NBSVM-style bigrams {linear:.2%}",
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
    keras.utils.set_random_seed(0)
    datasets, config = datasets_for(config)
    n = datasets.num_examples["train"]
    models = {
        f"app default (--cell {config.cell})": sentiment.build_model(config),
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
    parser.add_argument("--data", default=str(DATA), help="the sentence polarity data folder")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"{args.data}: not found (see ../shared/data/README.md)")
    overrides = settings(sentiment.Config, args.set)
    config = sentiment.Config(data=args.data, **overrides)
    config.validate()
    if (config.members > 1 or config.ngram_member) and args.part != "accuracy":
        raise SystemExit(
            "--set members=N and ngram_member=true: the throughput part compares single models; "
            "add --part accuracy"
        )
    print(f"settings: {overrides or 'defaults'}; {keras.backend.backend()} backend")
    if args.part in ("accuracy", "both"):
        accuracy_part(config, args.seeds, args.verbose)
    if args.part in ("throughput", "both"):
        throughput_part(config, args.rounds)


if __name__ == "__main__":
    main()
