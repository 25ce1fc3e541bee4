"""The sentiment app beyond the app contract (tests/apps/test_api.py): its report, the two-class
head, the CLI's @FILE inputs, ensembles and the n-gram member, masking, the two LSTMs, bucketing."""

import csv
import dataclasses
import json
import os
import textwrap

import keras
import keras_tuner as kt
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from i2dl_keras import data as i2dl_data
from i2dl_keras.apps import base, cli, predictions, sentiment, settings
from i2dl_keras.classic import BaggingEnsemble
from i2dl_keras.classic.nbsvm_classifier import NBSVMClassifier
from i2dl_keras.losses import SparseCategoricalCrossentropy

# Tiny, one LSTM model and one-directional: tracing a bidirectional LSTM costs seconds per
# graph; the bidirectional model is checked without training below.
TINY = [
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--vocab-size",
    "200",
    "--embedding-dim",
    "8",
    "--units",
    "4",
    "--no-bidirectional",
    "--members",
    "1",
]
FAST = ["--data", "synthetic", *TINY]
TEXTS = [
    "a wonderful , moving film",
    "dull and tedious",
    "the plot is predictable but the acting is wonderful and the score is moving",
    "boring",
    "an awful , tedious , predictable mess with a dull script",
    "wonderful",
]


def _runs(root):
    return sorted(p for p in (root / "sentiment").glob("run-*") if p.is_dir())


def _config(**kwargs) -> sentiment.Config:
    # One LSTM model unless a test asks for members or the n-gram member.
    values = dict(
        data="synthetic", vocab_size=50, embedding_dim=6, units=5, members=1, ngram_member=False
    )
    values.update(kwargs)
    return sentiment.Config(**values)


def _adapted(config: sentiment.Config) -> keras.Model:
    model = sentiment.build_model(config)
    labels = np.arange(len(TEXTS), dtype=np.float32)[:, None] % 2
    sentiment.adapt_vectorizer(model, tf.data.Dataset.from_tensor_slices((TEXTS, labels)).batch(4))
    return model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return sentiment.train(
        data="synthetic",
        epochs=1,
        batch_size=32,
        vocab_size=200,
        embedding_dim=8,
        units=4,
        bidirectional=False,
        members=1,  # the single LSTM model, whose head the tests below read
        ngram_member=False,
        output_dir=str(out),
    )


def test_recorded_metrics_are_the_saved_models(trained):
    assert (trained.path / sentiment.CONFIDENTLY_WRONG_FILE).is_file()
    assert set(trained.report) == {"training_curves", "confusion_matrix"}
    assert (trained.path / "confusion_matrix.png").is_file()
    metrics = json.loads((trained.path / "metrics.json").read_text())
    assert set(metrics["test"]) == {"accuracy", "loss", "auc"}
    assert metrics["data"]["num_examples"] == {"train": 144, "validation": 16, "test": 40}
    assert trained.config.train_examples == 144
    # The recorded accuracy and AUC are those of the saved model's test predictions.
    run = sentiment.load(trained.path)
    texts, labels, probs = sentiment._collect(
        run.model, sentiment.make_datasets(run.config, "evaluate").test
    )
    assert len(texts) == 40
    assert metrics["test"]["accuracy"] == pytest.approx(np.mean(probs.argmax(-1) == labels))
    assert metrics["test"]["auc"] == pytest.approx(roc_auc_score(labels, probs[:, 1]), abs=1e-6)


def test_confidently_wrong_table_lists_mistakes_most_confident_first(trained):
    header, *rows = (
        (trained.path / sentiment.CONFIDENTLY_WRONG_FILE).read_text("utf-8").splitlines()
    )
    assert header.split("\t") == ["confidence", "true", "predicted", "text"]
    accuracy = trained.metrics["accuracy"]
    assert len(rows) == min(sentiment.CONFIDENTLY_WRONG_ROWS, round((1 - accuracy) * 40))
    confidences = [float(r.split("\t")[0]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    for row in rows:
        confidence, true, predicted, text = row.split("\t")
        assert true != predicted and {true, predicted} == {"neg", "pos"} and text
        assert 0.5 <= float(confidence) <= 1.0


def test_confidently_wrong_orders_by_the_wrong_class_probability():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.05, 0.95], [0.2, 0.8]])
    labels = np.array([0, 0, 0, 1])
    rows = sentiment.confidently_wrong(["a", "b", "c", "d"], labels, probs, ["neg", "pos"])
    assert [(text, round(c, 2)) for c, _, _, text in rows] == [("c", 0.95), ("b", 0.6)]


def test_two_classes_read_the_sigmoid_unit_as_both_probabilities(trained):
    texts = ["tedious film", "a wonderful , moving film"]
    results = trained.predict(texts)
    unit = keras.Model(trained.model.inputs, trained.model.get_layer("probability").output)
    p = np.asarray(unit(tf.constant(texts)))[:, 0]
    assert [r["input"] for r in results] == texts
    for result, p_pos in zip(results, p):
        assert result["probabilities"] == pytest.approx({"neg": 1 - p_pos, "pos": p_pos}, abs=1e-6)
        assert result["label"] == ("pos" if p_pos > 0.5 else "neg")
    np.testing.assert_allclose(trained.model.predict(texts, verbose=0)[:, 1], p, atol=1e-6)


def test_cli_predict_writes_texts_with_commas_to_csv(trained, tmp_path, capsys):
    texts = ["a wonderful , moving film", 'dull , "tedious"']
    table = tmp_path / "predictions.csv"
    argv = ["sentiment", "predict", "--model", str(trained.path), *texts, "--output", str(table)]
    assert cli.main(argv) == 0
    results = trained.predict(texts)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[:2] == [
        f"{t}\t{r['label']}\t{r['probabilities'][r['label']]:.4f}" for t, r in zip(texts, results)
    ]
    with table.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(row["input"], row["label"]) for row in rows] == [
        (t, r["label"]) for t, r in zip(texts, results)
    ]
    assert float(rows[0]["p_pos"]) == pytest.approx(results[0]["probabilities"]["pos"], abs=1e-5)


def test_at_files_name_sentences_for_the_cli(tmp_path):
    sentences = tmp_path / "sentences.txt"
    # Latin-1 bytes (not valid UTF-8), a blank line and Windows line ends.
    sentences.write_bytes("très émouvant\r\n\r\nun désastre, señor\r\n".encode("latin-1"))
    arguments = ["a wonderful film", f"@{sentences}", "@@home"]
    assert sentiment.expand_inputs(arguments) == [
        "a wonderful film",
        "très émouvant",
        "un désastre, señor",
        "@home",
    ]
    missing = tmp_path / "nope.txt"
    with pytest.raises(settings.UsageError, match=f"@{missing}: cannot read it"):
        sentiment.expand_inputs([f"@{missing}"])
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(settings.UsageError, match="holds no sentences"):
        sentiment.expand_inputs([f"@{tmp_path / 'blank.txt'}"])


def test_predict_refuses_what_is_not_text(trained):
    with pytest.raises(i2dl_data.DataError, match="input 1: expected a string, got int"):
        trained.predict(["fine", 3])


def test_keras_file_reloads_in_a_fresh_process_with_its_vocabulary(trained, tmp_path, fresh_python):
    texts = ["a wonderful film", "", "naïve — überlong… " * 30, "dull"]
    expected = trained.model.predict(texts, verbose=0)
    vocabulary = trained.model.get_layer(sentiment.VECTORIZER).get_vocabulary()
    # The first lines of `run_model_saving_test`'s reload script (i2dl_keras/testing.py): both
    # fork from one template process that ran them (tests/conftest.py).
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import i2dl_keras
        import keras
        model = keras.saving.load_model({str(trained.path / "model.keras")!r})
        vocabulary = [str(t) for t in model.get_layer("vectorize").get_vocabulary()]
        reloaded = model.predict(np.array({texts!r}), verbose=0).tolist()
        names = i2dl_keras.layers.ClassNames.of(model)
        json.dump([vocabulary, reloaded, names], open("result.json", "w"))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = fresh_python(
        ["-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh_vocabulary, reloaded, names = json.loads((tmp_path / "result.json").read_text())
    assert fresh_vocabulary == [str(t) for t in vocabulary] and len(vocabulary) > 20
    np.testing.assert_allclose(reloaded, expected, atol=1e-6)
    assert names == ["neg", "pos"]


class _StopInSecondFit(keras.callbacks.Callback):
    """Interrupts the second `fit` it joins (an ensemble's second member) at its first batch."""

    def __init__(self):
        super().__init__()
        self.fits = 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_train_batch_begin(self, batch, logs=None):
        if self.fits == 2:
            raise KeyboardInterrupt


def test_members_are_cross_fitted_resume_and_average(tmp_path, capsys):
    config = _config(epochs=1, batch_size=32, members=2, bidirectional=False)
    config.output_dir = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        base.train(sentiment, config, echo=print, extra_callbacks=[_StopInSecondFit()])
    assert not _runs(tmp_path)
    (work,) = (tmp_path / "sentiment").glob(".incomplete-*")
    first = keras.saving.load_model(work / sentiment.MEMBERS_DIR / "member_1.keras")
    assert not (work / sentiment.MEMBERS_DIR / "member_2.json").exists()

    run = base.train(sentiment, config, echo=print)
    # The 144 training and 16 validation examples, pooled and dealt into two parts: each
    # member trains on one part and stops early on the other; the first one was loaded.
    stages = json.loads((run.path / base.STAGES_FILE).read_text())
    assert [(s["member"], s["resumed"]) for s in stages] == [
        ("member_1", True),
        ("member_2", False),
    ]
    for stage in stages:
        assert (stage["train_examples"], stage["held_out_examples"], stage["epochs"]) == (80, 80, 1)
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["stage_boundaries"] == [1] and metrics["epochs_run"] == 2
    model = keras.saving.load_model(run.path / "model.keras")
    members = sentiment.ensemble_members(model)
    assert isinstance(sentiment.lstm_part(model), BaggingEnsemble)
    assert [m.name for m in members] == ["member_1", "member_2"]
    # The member trained before the interruption is the one in the ensemble, untouched.
    for a, b in zip(first.get_weights(), members[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    texts = tf.constant(TEXTS)
    outputs = [np.asarray(m(texts, training=False)) for m in members]
    assert np.abs(outputs[0] - outputs[1]).max() > 1e-4, "members start from other weights"
    np.testing.assert_allclose(np.asarray(model(texts)), np.mean(outputs, axis=0), atol=1e-6)
    # The ensemble is a classifier of raw strings like the single model, names included.
    assert run.class_names == ["neg", "pos"]
    results = run.predict(TEXTS)
    np.testing.assert_allclose(
        [[r["probabilities"][n] for n in run.class_names] for r in results],
        run.model.predict(np.array(TEXTS), verbose=0),
        atol=1e-6,
    )
    # The ensemble's export is checked by the app contract test (tests/apps/test_api.py).
    capsys.readouterr()
    assert cli.main(["sentiment", "evaluate", "--model", str(run.path), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert evaluated["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)


# One LSTM beside the n-gram member; the default, an ensemble of LSTMs nested in the same
# hybrid, trains, reloads and serves in the app contract test (tests/apps/test_api.py).
def test_ngram_member_trains_and_saves(tmp_path):
    config = _config(epochs=1, batch_size=32, bidirectional=False, members=1, ngram_member=True)
    config.output_dir = str(tmp_path)
    run = base.train(sentiment, config, echo=print)
    model = keras.saving.load_model(run.path / "model.keras")
    lstm, ngrams = sentiment.lstm_part(model), sentiment.ngram_member(model)
    assert isinstance(ngrams, NBSVMClassifier) and ngrams.name == sentiment.NGRAM_MEMBER
    # Fitted after the LSTM, on all 160 training and validation examples.
    (ngram_stage,) = json.loads((run.path / base.STAGES_FILE).read_text())
    assert ngram_stage == {
        "member": sentiment.NGRAM_MEMBER,
        "train_examples": 160,
        "ngrams": ngrams.num_ngrams,
    }
    assert sentiment.ensemble_members(lstm) == [lstm]
    # Equal halves: the LSTM's probability of the second class and the n-gram member's.
    ngram_scores = _scores(ngrams, TEXTS)[:, 0]
    np.testing.assert_allclose(
        _scores(model, TEXTS)[:, 1], (_scores(lstm, TEXTS)[:, 1] + ngram_scores) / 2, atol=1e-6
    )
    assert np.abs(ngram_scores - 0.5).max() > 0.05, "the n-gram member was fitted"
    # Both classes' probabilities, named, from the model and from the run.
    probabilities = run.model.predict(np.array(TEXTS), verbose=0)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-6)
    assert run.class_names == ["neg", "pos"]
    assert [r["class_id"] for r in run.predict(TEXTS)] == list(probabilities.argmax(-1))
    with pytest.raises(settings.UsageError, match="--ngram-member needs two classes"):
        sentiment.build_model(_config(num_classes=3, ngram_member=True))


def test_ngram_member_is_on_by_default_for_two_classes_only():
    # The turnkey default: the app's own Config, nothing set but the data and small sizes.
    two = sentiment.Config(data="synthetic", vocab_size=50, embedding_dim=6, units=5)
    assert two.ngram_member is None and sentiment.uses_ngram_member(two)
    assert isinstance(sentiment.ngram_member(sentiment.build_model(two)), NBSVMClassifier)
    three = sentiment.build_model(dataclasses.replace(two, num_classes=3))
    assert sentiment.ngram_member(three) is None, "more classes: the LSTM alone, no error"
    assert not sentiment.uses_ngram_member(dataclasses.replace(two, ngram_member=False))


def test_pooled_examples_do_not_depend_on_the_pipeline_order():
    # An ensemble's parts are dealt from this order, so a resumed run deals the same parts.
    texts = np.array([t.encode() for t in TEXTS], dtype=object)
    labels = (np.arange(len(TEXTS)) % 2).astype(np.float32)[:, None]
    forward = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(4)
    backward = tf.data.Dataset.from_tensor_slices((texts[::-1], labels[::-1])).batch(3)
    t1, y1 = sentiment._pooled_examples(forward, None)
    t2, y2 = sentiment._pooled_examples(backward.take(1), backward.skip(1))
    assert list(t1) == list(t2) == sorted(texts) and y1.shape == (len(TEXTS), 1)
    np.testing.assert_array_equal(y1, y2)


def test_train_without_data_says_how_to_get_some(capsys):
    assert cli.main(["sentiment", "train"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, "one line"
    for hint in ("--data is required", "rt-polarity", "--data imdb --download", "aclImdb", "csv"):
        assert hint in err, hint


def test_imdb_offline_fails_fast_with_instructions(tmp_path, capsys):
    argv = ["sentiment", "train", "--data", "imdb", "--data-dir", str(tmp_path), *TINY]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "imdb_reviews" in err and "--download" in err and "--data PATH" in err


def test_bad_settings_exit_2(capsys):
    assert cli.main(["sentiment", "train", *FAST, "--dropout", "1.5"]) == 2
    assert "--dropout must be in [0, 1)" in capsys.readouterr().err
    assert cli.main(["sentiment", "train", *FAST, "--word-dropout", "1"]) == 2
    assert "--word-dropout must be in [0, 1), got 1.0" in capsys.readouterr().err


def _scores(model, texts):
    # Eager calls: tracing a bidirectional LSTM into a graph costs seconds per model.
    return model(tf.constant(texts), training=False).numpy()


@pytest.mark.parametrize("depth", [1, 2])
def test_masking_makes_padding_invisible(depth, monkeypatch):
    # Bidirectional: the backward direction meets the padding first.
    model = _adapted(_config(depth=depth))
    alone = _scores(model, ["dull and tedious"])
    padded = _scores(model, ["dull and tedious", TEXTS[2], ""])
    np.testing.assert_allclose(padded[:1], alone, atol=1e-6)
    assert abs(float(padded[0, 0] - padded[1, 0])) > 1e-6, "the model must see the words"

    # The control: the same weights without the mask score the padded sentence differently.
    embedding = keras.layers.Embedding

    def unmasked_embedding(*args, **kwargs):
        return embedding(*args, **{**kwargs, "mask_zero": False})

    monkeypatch.setattr(keras.layers, "Embedding", unmasked_embedding)
    unmasked = _adapted(_config(depth=depth))
    unmasked.set_weights(model.get_weights())
    unmasked_alone = _scores(unmasked, ["dull and tedious"])
    unmasked_padded = _scores(unmasked, ["dull and tedious", TEXTS[2]])
    assert abs(float(unmasked_padded[0, 0] - unmasked_alone[0, 0])) > 1e-5


def test_word_dropout_drops_whole_word_vectors_in_training_only():
    model = _adapted(_config(word_dropout=0.5, recurrent_dropout=0.25, bidirectional=False))
    assert model.get_layer("lstm_1").cell.recurrent_dropout == 0.25
    layer = model.get_layer("word_dropout")
    keras.utils.set_random_seed(0)
    words = np.ones((8, 50, 6), np.float32)
    out = keras.ops.convert_to_numpy(layer(words, training=True)).reshape(-1, 6)
    dropped = (out == 0.0).all(-1)
    kept = (out == 2.0).all(-1)  # the survivors are scaled by 1 / (1 - rate)
    assert (dropped | kept).all(), "a word vector is dropped whole or kept whole"
    assert 0.4 < dropped.mean() < 0.6
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(words)), words)
    # Inference is deterministic whatever the dropout settings.
    np.testing.assert_array_equal(_scores(model, TEXTS), _scores(model, TEXTS))


def test_max_length_cuts_long_texts():
    model = _adapted(_config(max_length=3, bidirectional=False))
    scores = _scores(model, ["dull and tedious", "dull and tedious film"])
    np.testing.assert_allclose(scores[0], scores[1], atol=1e-6)
    scores = _scores(model, ["dull and", "dull and tedious"])
    assert abs(float(scores[0, 0] - scores[1, 0])) > 1e-6


def test_i2dl_and_keras_lstm_give_the_same_model():
    ours = _adapted(_config(cell="i2dl", depth=2))
    theirs = _adapted(_config(cell="keras", depth=2))
    assert any(isinstance(layer.forward_layer, keras.layers.LSTM) for layer in _bidi(theirs))
    assert not any(isinstance(layer.forward_layer, keras.layers.LSTM) for layer in _bidi(ours))
    theirs.set_weights(ours.get_weights())
    batch = tf.constant(TEXTS)
    np.testing.assert_allclose(_scores(theirs, TEXTS), _scores(ours, TEXTS), atol=1e-6)
    # And the same gradients, so training follows the same path.
    labels = tf.constant(np.arange(len(TEXTS)) % 2, tf.float32)[:, None]
    grads = []
    for model in (ours, theirs):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(y=labels, y_pred=model(batch, training=False))
        grads.append(
            [
                tf.convert_to_tensor(g).numpy()
                for g in tape.gradient(loss, model.trainable_variables)
            ]
        )
    for g_ours, g_theirs in zip(*grads):
        np.testing.assert_allclose(g_ours, g_theirs, atol=1e-6)


def _bidi(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Bidirectional)]


def test_latin1_files_are_read_without_loss_and_the_vocabulary_survives_reload(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    positive = ["très émouvant , señor", "un chef-d'œuvre\x85 vraiment", "joyeux et drôle"]
    negative = ["ennuyeux", "raté et long", "sans intérêt", "pénible"]
    # Latin-1 with a byte 0x85 (Windows' ellipsis read as Latin-1: U+0085, a line break to
    # str.splitlines) inside a sentence; '\x9c' stands for 'œ' in that code page.
    (folder / "reviews.pos").write_bytes(
        "\n".join(t.replace("œ", "\x9c") for t in positive).encode("latin-1")
    )
    (folder / "reviews.neg").write_text("\n".join(negative), encoding="utf-8")
    config = _config(data=str(folder), bucket=True, validation_fraction=0.2, test_fraction=0.2)
    datasets = sentiment.make_datasets(config, "train")
    assert datasets.class_names == ["neg", "pos"]
    assert any("Latin-1" in note for note in datasets.notes)
    seen = {}
    for ds in (datasets.train, datasets.validation, datasets.test):
        for x, y in ds.unbatch():
            seen[x.numpy().decode("utf-8")] = int(y.numpy())
    expected = {t.replace("œ", "\x9c"): 1 for t in positive} | {t: 0 for t in negative}
    assert seen == expected

    model = sentiment.build_model(config)
    vocabulary = sentiment.adapt_vectorizer(
        model, tf.data.Dataset.from_tensor_slices((list(seen), list(seen.values()))).batch(4)
    )
    assert "émouvant" in vocabulary and "señor" in vocabulary
    assert not any("\x85" in token for token in vocabulary), "would split on reload"
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras")
    assert reloaded.get_layer(sentiment.VECTORIZER).get_vocabulary() == (
        model.get_layer(sentiment.VECTORIZER).get_vocabulary()
    )
    np.testing.assert_allclose(_scores(reloaded, list(seen)), _scores(model, list(seen)), atol=1e-6)


def test_bucketing_groups_lengths_and_keeps_every_example():
    rng = np.random.default_rng(0)
    texts = [" ".join(["w"] * int(n)) for n in rng.integers(1, 60, size=100)]
    labels = np.arange(100, dtype=np.float32)[:, None]
    batched = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16)
    config = _config(batch_size=16, max_length=50)
    bucketed = sentiment.bucket_batches(batched, config)
    batches = list(bucketed)
    assert int(bucketed.cardinality()) == len(batches)
    edges = [e for e in sentiment.BUCKET_EDGES if e < 50]
    padded_plain = sum(
        16 * max(len(t.split()) for t in texts[i : i + 16]) for i in range(0, 100, 16)
    )
    padded_bucketed = 0
    ids = []
    for x, y in batches:
        lengths = [len(t.split()) for t in x.numpy()]
        assert len(set(np.searchsorted(edges, lengths, side="right"))) == 1, lengths
        assert len(lengths) <= 16
        padded_bucketed += len(lengths) * max(lengths)
        ids += [int(v) for v in y.numpy()[:, 0]]
    assert sorted(ids) == list(range(100))
    assert padded_bucketed < 0.7 * padded_plain


def test_hypermodel_builds_and_adapts_in_fit():
    # Trials compare single models whatever --members says; the retraining honours it.
    config = _config(num_classes=3, epochs=1, batch_size=4, members=3)
    hypermodel = sentiment.HyperModel(config)
    hp = kt.HyperParameters()
    hp.Fixed("bidirectional", False)  # only to train faster below
    model = hypermodel.build(hp)
    assert model.output_shape == (None, 3)
    assert isinstance(model.loss, SparseCategoricalCrossentropy), "three classes: softmax head"
    # The default hyperparameters are the first of each choice: vocabulary 6,000, width 32.
    assert model.get_layer("embedding").input_dim == 6000
    assert model.get_layer("embedding").output_dim == 32
    assert sentiment.ensemble_members(model) == [model]
    assert {"vocab_size", "embedding_dim", "units", "depth", "bidirectional", "dropout"} <= set(
        hp.values
    )
    train = tf.data.Dataset.from_tensor_slices((TEXTS, np.arange(6) % 3)).batch(3)
    hypermodel.fit(hp, model, train, epochs=1, verbose=0)
    vocabulary = model.get_layer(sentiment.VECTORIZER).get_vocabulary()
    assert "wonderful" in vocabulary and "tedious" in vocabulary
    final = hypermodel.final_config(hp)
    assert final.members == 3 and final.vocab_size == hp.values["vocab_size"]
    assert not final.bidirectional, "the best trial's settings"


def test_tune_tiny_search_then_retrain(tmp_path):
    argv = ["sentiment", "tune", *FAST, "--tuner", "grid", "--max-trials", "1"]
    argv += ["--max-epochs", "1", "--output-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    (run,) = _runs(tmp_path)
    config = json.loads((run / "config.json").read_text())
    assert config["vocab_size"] in (6000, 12000, 20000), "the retrained run uses the search's"


def test_empty_and_binary_sentences_are_scored_with_a_warning(trained):
    import warnings as warnings_module

    run = trained
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        results = run.predict(["a gorgeous film", "   ", "\x00\x01\x02\x03"])
    assert [r.get("warning", "").split(":")[0] for r in results] == ["", "empty text", "not text"]
    assert len(caught) == 2
    lines = predictions.describe_classifications(run, results)
    assert lines[1].endswith("warning: empty text: the prediction reflects no words")


def test_class_weight_reaches_the_lstm_training(tmp_path):
    run = sentiment.train(
        data="synthetic",
        output_dir=str(tmp_path),
        epochs=1,
        batch_size=32,
        vocab_size=200,
        embedding_dim=8,
        units=4,
        bidirectional=False,
        members=1,
        class_weight='{"pos": 3}',
    )
    recorded = json.loads((run.path / "metrics.json").read_text())["class_weight"]
    assert recorded == {
        str(run.class_names.index("neg")): 1.0,
        str(run.class_names.index("pos")): 3.0,
    }
