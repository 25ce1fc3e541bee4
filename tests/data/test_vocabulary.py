"""adapt_vocabulary: tokens with line-break characters are left out, so a reload agrees."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from i2dl_keras.data.vocabulary import LINE_BREAKS, adapt_vocabulary

# "mess\x85" and "fun\u2028" hold characters at which str.splitlines breaks a line but
# TextVectorization does not split words.
TEXTS = ["a tedious mess\x85 , truly", "wonderful fun\u2028 film", "a wonderful film", "tedious"]


def _reloaded_vocabulary(layer, tmp_path):
    text = keras.Input(shape=(), dtype="string")
    model = keras.Model(text, layer(text))
    model.save(tmp_path / "m.keras")
    return keras.saving.load_model(tmp_path / "m.keras").layers[-1].get_vocabulary()


def test_line_break_tokens_are_dropped_and_the_vocabulary_survives_reload(tmp_path):
    layer = keras.layers.TextVectorization(max_tokens=50)
    kept = adapt_vocabulary(layer, tf.data.Dataset.from_tensor_slices(TEXTS).batch(2))
    assert sorted(kept) == sorted(["a", "tedious", "truly", "wonderful", "film"])
    assert layer.get_vocabulary() == ["", "[UNK]", *kept]
    # The dropped words read as out of vocabulary (id 1).
    ids = keras.ops.convert_to_numpy(layer(tf.constant(["mess\x85 film"])))[0]
    assert ids[0] == 1 and ids[1] == kept.index("film") + 2
    assert _reloaded_vocabulary(layer, tmp_path) == layer.get_vocabulary()


def test_plain_adapt_would_break_the_reload(tmp_path):
    # The control: what adapt_vocabulary prevents.
    layer = keras.layers.TextVectorization(max_tokens=50)
    layer.adapt(TEXTS)
    assert any(c in LINE_BREAKS for t in layer.get_vocabulary() for c in t)
    # "mess\x85" comes back as "mess" and "", which Keras refuses as a misplaced mask token.
    with pytest.raises(ValueError, match="mask token"):
        _reloaded_vocabulary(layer, tmp_path)


def test_string_lookup_and_a_clean_vocabulary_are_left_as_adapted():
    lookup = keras.layers.StringLookup()
    assert sorted(adapt_vocabulary(lookup, np.array(["b", "a\x0c", "b", "c"]))) == ["b", "c"]
    layer = keras.layers.TextVectorization(ngrams=2, output_mode="multi_hot")
    kept = adapt_vocabulary(layer, ["good film", "bad film"])
    assert sorted(kept) == ["bad", "bad film", "film", "good", "good film"]


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"Received: layer=<Dense"):
        adapt_vocabulary(keras.layers.Dense(2), ["a"])
    tf_idf = keras.layers.TextVectorization(output_mode="tf_idf")
    with pytest.raises(ValueError, match=r"Received: output_mode='tf_idf'"):
        adapt_vocabulary(tf_idf, ["a"])
