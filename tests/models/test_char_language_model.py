"""CharLanguageModel: many-to-many training, one-to-many generation at a temperature, perplexity."""

import math
from collections import Counter

import keras
import numpy as np
import pytest

from i2dl_keras.models.char_language_model import (
    CharLanguageModel,
    character_vocabulary,
    generate,
    next_character_dataset,
    perplexity,
    temperature_softmax,
)
from i2dl_keras.testing import run_model_saving_test, run_serialization_test

# Ids: 0 padding, 1 out of vocabulary, 2 "\n", 3 "a", 4 "b".
VOCABULARY = ["\n", "a", "b"]


def _constant_model(bias, vocabulary=VOCABULARY) -> CharLanguageModel:
    """A model whose next-character logits are `bias` whatever it has read."""
    model = CharLanguageModel(vocabulary, embedding_dim=2, units=3)
    model.build((None, None))
    model.head.kernel.assign(np.zeros(model.head.kernel.shape, "float32"))
    model.head.bias.assign(np.asarray(bias, "float32"))
    return model


def _trained_on(lines, epochs=12, units=16) -> CharLanguageModel:
    model = CharLanguageModel(character_vocabulary(lines), embedding_dim=8, units=units)
    model.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy())
    data = next_character_dataset(model, lines, sequence_length=10, batch_size=8, seed=0)
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # the dataset shuffles
    return model


def test_character_vocabulary_is_sorted_and_holds_the_line_end():
    assert character_vocabulary(["abba", "cab"]) == ["\n", "a", "b", "c"]
    assert character_vocabulary([]) == ["\n"]


def test_encode_and_decode():
    model = CharLanguageModel(VOCABULARY, embedding_dim=2, units=3)
    # Padded with 0 at the end; "z" is out of the vocabulary (id 1).
    np.testing.assert_array_equal(model.encode(["ab", "z", "b\n"]), [[3, 4], [1, 0], [4, 2]])
    assert model.decode([3, 4, 0, 1, 2]) == "ab\ufffd\n"
    assert model.vocabulary_size == 5


def test_vocabulary_gets_the_line_end():
    assert CharLanguageModel("ba", units=2).vocabulary == ["b", "a", "\n"]


def test_next_character_dataset_shifts_by_one_character():
    model = CharLanguageModel(["\n", "a", "b", "c"], embedding_dim=2, units=3)
    data = next_character_dataset(model, ["ab", "c"], sequence_length=2, shuffle=False)
    ((inputs, targets),) = list(data.as_numpy_iterator())
    # The stream "\nab\nc\n" is ids [2, 3, 4, 2, 5, 2]: two whole windows of 2 and their targets.
    np.testing.assert_array_equal(inputs, [[2, 3], [4, 2]])
    np.testing.assert_array_equal(targets, [[3, 4], [2, 5]])


def test_states_continue_a_sequence():
    keras.utils.set_random_seed(0)
    model = CharLanguageModel(VOCABULARY, embedding_dim=4, units=5, num_layers=2, dropout=0.5)
    ids = model.encode(["abba\nab", "ba\nbbaa"])
    whole, _ = model.next_character_logits(ids)
    first, states = model.next_character_logits(ids[:, :3])
    rest, _ = model.next_character_logits(ids[:, 3:], states)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, atol=1e-5)
    probabilities = keras.ops.convert_to_numpy(model(ids))
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, keras.ops.softmax(whole), atol=1e-6)


def test_temperature_softmax_worked_example():
    logits = [1.0, 2.0, 3.0]
    # The course's softmax example at T = 1, to its two decimals.
    np.testing.assert_allclose(temperature_softmax(logits, 1.0), [0.09, 0.24, 0.67], atol=0.005)
    # softmax([2, 4, 6]) and softmax([0.5, 1, 1.5]), worked out in NumPy.
    expected_cold = [0.01587624, 0.11731043, 0.86681333]
    np.testing.assert_allclose(temperature_softmax(logits, 0.5), expected_cold, atol=1e-7)
    expected_hot = [0.18632372, 0.30719589, 0.50648039]
    np.testing.assert_allclose(temperature_softmax(logits, 2.0), expected_hot, atol=1e-7)
    np.testing.assert_array_equal(temperature_softmax(logits, 0.0), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(temperature_softmax(logits, 0.01), [0.0, 0.0, 1.0], atol=1e-40)
    # Rows along the last axis; ties at T = 0 go to the first largest logit.
    np.testing.assert_array_equal(temperature_softmax([[5.0, 5.0], [0.0, 1.0]], 0.0), np.eye(2))


@pytest.mark.parametrize(
    "temperature, expected",
    [(0.5, [0.01587624, 0.11731043, 0.86681333]), (2.0, [0.18632372, 0.30719589, 0.50648039])],
)
def test_generate_samples_softmax_of_logits_over_temperature(temperature, expected):
    # Character logits [1, 2, 3] for "\n", "a", "b"; padding and out-of-vocabulary get 10 and
    # must never be drawn.
    model = _constant_model([10.0, 10.0, 1.0, 2.0, 3.0])
    text = generate(model, "ab", length=1000, temperature=temperature, seed=0)
    counts = Counter(text)
    assert len(text) == 1000 and set(counts) <= set(VOCABULARY)
    frequencies = [counts[c] / len(text) for c in VOCABULARY]
    # Over 3 standard deviations of a frequency from 1000 draws, and less than the distance
    # to softmax(logits) at T = 1, [0.09, 0.24, 0.67].
    np.testing.assert_allclose(frequencies, expected, atol=0.05)


def test_generate_is_deterministic_for_a_seed_and_greedy_when_cold():
    keras.utils.set_random_seed(3)
    model = CharLanguageModel(["\n", "a", "b", "c", "d"], embedding_dim=4, units=8)
    model.build((None, None))
    # Logits spread over several units, so that T = 1e-3 leaves no near ties.
    model.head.kernel.assign(model.head.kernel * 50.0)
    state = np.random.get_state()
    first = generate(model, "ab", length=30, temperature=1.0, seed=7)
    assert generate(model, "ab", length=30, temperature=1.0, seed=7) == first
    assert generate(model, "ab", length=30, temperature=1.0, seed=8) != first
    assert np.array_equal(np.random.get_state()[1], state[1])  # the caller's NumPy state
    # Greedy by hand: rerun the whole text through the many-to-many model and take the most
    # likely character each time.
    text = "\nab"
    for _ in range(12):
        probabilities = keras.ops.convert_to_numpy(model(model.encode([text])))[0, -1]
        text += model.vocabulary[int(np.argmax(probabilities[2:]))]
    assert generate(model, "ab", length=12, temperature=0.0) == text[3:]
    assert generate(model, "ab", length=12, temperature=1e-3, seed=0) == text[3:]


def test_perplexity_worked_example():
    # p = softmax(log p) = 0.1 padding, 0.1 unknown, 0.2 "\n", 0.2 "a", 0.4 "b" at every step.
    model = _constant_model(np.log([0.1, 0.1, 0.2, 0.2, 0.4]))
    # Targets "a", "b", "\n" and "b", "\n": (0.2**3 * 0.4**2) ** (-1/5).
    assert perplexity(model, ["ab", "b"]) == pytest.approx(3.789291416275995, abs=1e-4)
    # An unknown character is scored as the unknown id: (0.1 * 0.2) ** (-1/2).
    assert perplexity(model, "z") == pytest.approx(math.sqrt(50.0), abs=1e-4)


def test_perplexity_ignores_padding():
    keras.utils.set_random_seed(0)
    model = CharLanguageModel(VOCABULARY, embedding_dim=4, units=6)
    texts = ["a", "abbab", "", "ba"]
    one_by_one = perplexity(model, texts, batch_size=1)
    assert perplexity(model, texts, batch_size=4) == pytest.approx(one_by_one, rel=1e-5)
    # Not a constant: a different text set scores differently.
    assert perplexity(model, ["bbbbbbbb"]) != pytest.approx(one_by_one, rel=1e-3)


def test_learns_a_repetitive_text():
    lines = ["abcd"] * 40
    model = _trained_on(lines)
    # Each character fixes the next one: a perfect model scores 1, guessing among 5 scores 5.
    assert perplexity(model, ["abcd", "abcd"]) < 1.05
    assert generate(model, "", length=15, temperature=1.0, seed=0) == "abcd\nabcd\nabcd\n"


def test_config_and_fresh_process_reload():
    keras.utils.set_random_seed(0)
    vocabulary = ["\n", " ", "a", "\x85", "\u2028", "é"]  # line breaks Keras' assets split on
    model = CharLanguageModel(vocabulary, embedding_dim=3, units=4, num_layers=2, dropout=0.25)
    ids = model.encode(["a \x85é", "\u2028a"])
    model(ids)
    revived = run_serialization_test(model)
    assert revived.vocabulary == vocabulary and revived.num_layers == 2
    run_model_saving_test(model, ids, atol=1e-6)


def test_saved_model_keeps_its_vocabulary(tmp_path):
    model = CharLanguageModel(["\n", "a", "\x85", "\u2028"], embedding_dim=2, units=3)
    model.build((None, None))
    model.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    assert isinstance(loaded, CharLanguageModel) and loaded.vocabulary == model.vocabulary
    np.testing.assert_array_equal(loaded.encode(["a\x85\u2028\n"]), [[3, 4, 5, 2]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"vocabulary": []}, "vocabulary"),
        ({"vocabulary": ["a", "a"]}, "distinct.*Received: vocabulary="),
        ({"vocabulary": ["ab"]}, "single characters.*Received: vocabulary="),
        ({"vocabulary": "ab", "units": 0}, "Received: units=0"),
        ({"vocabulary": "ab", "num_layers": 0}, "Received: num_layers=0"),
        ({"vocabulary": "ab", "dropout": 1.0}, "Received: dropout=1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CharLanguageModel(**kwargs)


def test_functions_reject_bad_arguments():
    model = CharLanguageModel(VOCABULARY, embedding_dim=2, units=3)
    with pytest.raises(ValueError, match="Received: temperature=-0.5"):
        generate(model, "a", length=3, temperature=-0.5)
    with pytest.raises(ValueError, match="Received: length=-1"):
        generate(model, "a", length=-1)
    with pytest.raises(ValueError, match="Received: temperature=nan"):
        temperature_softmax([1.0, 2.0], float("nan"))
    with pytest.raises(ValueError, match="not one string.*Received: texts="):
        next_character_dataset(model, "abab", sequence_length=2)
    with pytest.raises(ValueError, match="more than `sequence_length` = 10.*Received: texts"):
        next_character_dataset(model, ["ab"], sequence_length=10)
    with pytest.raises(ValueError, match="non-empty.*Received: texts="):
        perplexity(model, [])
    with pytest.raises(ValueError, match="CharLanguageModel. Received: model="):
        perplexity(keras.Sequential([keras.layers.Dense(1)]), ["a"])


@pytest.mark.slow
def test_rt_polarity_beats_the_unigram_baseline(shared_data):
    lines = []
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        path = shared_data / "rt-polarity" / name
        lines += path.read_text(encoding="latin-1").splitlines()
    np.random.default_rng(0).shuffle(lines)
    train, held_out = lines[:3000], lines[-300:]
    # Unigram baseline: each character (line ends included) by its training frequency, with
    # add-one smoothing over the vocabulary and one unknown symbol.
    counts = Counter("".join(line + "\n" for line in train))
    vocabulary = character_vocabulary(train)
    total = sum(counts.values()) + len(vocabulary) + 1
    held_out_chars = "".join(line + "\n" for line in held_out)
    unigram = math.exp(-np.mean([math.log((counts[c] + 1) / total) for c in held_out_chars]))
    assert 15.0 < unigram < 25.0

    keras.utils.set_random_seed(0)
    model = CharLanguageModel(vocabulary, embedding_dim=16, units=96)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy())
    data = next_character_dataset(model, train, sequence_length=64, batch_size=64, seed=0)
    model.fit(data, epochs=2, verbose=0, shuffle=False)  # the dataset shuffles
    assert perplexity(model, held_out) < 0.5 * unigram
