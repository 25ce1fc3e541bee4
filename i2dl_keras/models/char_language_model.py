"""A character-level language model: the course's one-to-many and many-to-many RNN patterns."""

from __future__ import annotations

import math
import reprlib
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from i2dl_keras.layers import _checks
from i2dl_keras.layers.lstm import LSTM

__all__ = [
    "LINE_END",
    "CharLanguageModel",
    "character_vocabulary",
    "generate",
    "next_character_dataset",
    "perplexity",
    "temperature_softmax",
]

# Ends every text and starts the context of every prediction: the model learns where lines end,
# and the first character of a text is predicted from "\n" alone.
LINE_END = "\n"
# The ids that are not characters: padding (the lookup's mask token) and out-of-vocabulary.
_PAD_ID, _OOV_ID, _FIRST_CHAR_ID = 0, 1, 2


def character_vocabulary(texts: Iterable[str]) -> list[str]:
    """The sorted distinct characters of `texts` and `LINE_END`: a `CharLanguageModel` vocabulary.

    Args:
        texts: The training texts, an iterable of strings.

    Returns:
        A sorted list of single characters, `"\\n"` included.

    Raises:
        ValueError: if `texts` is a single string or holds something other than strings.

    Example:

    >>> i2dl_keras.models.char_language_model.character_vocabulary(["abba", "cab"])
    ['\\n', 'a', 'b', 'c']
    """
    texts = _texts("texts", texts, allow_empty=True)
    return sorted(set(LINE_END).union(*texts))


@keras.saving.register_keras_serializable(package="i2dl_keras")
class CharLanguageModel(keras.Model):
    """Character-level LSTM language model: the next character's distribution at every step.

    A language model predicts each symbol from the ones before it (the course's LSTM slides:
    "predict the next word based on the previous ones"), here one character at a time:
    `p(c_1 .. c_n) = prod_t p(c_t | c_1 .. c_{t-1})`. Each character id goes through an
    embedding and `num_layers` LSTMs (`i2dl_keras.layers.LSTM`, the course's gate equations);
    a dense layer gives the logits `z_t` over the vocabulary and `p(c_{t+1} | c_1 .. c_t) =
    softmax(z_t)`. The two RNN patterns of the course's "Examples of Recurrent Neural
    Networks" slide are its two uses:

    - Many-to-many (synced sequence input and output): training with teacher forcing. The input
      is a text and the target is the same text shifted by one character, so every step is a
      classification of the next character with the cross-entropy `-log p(c_{t+1} | c_<=t)`;
      `next_character_dataset` cuts texts into such pairs.
    - One-to-many (sequence output): `generate` reads a seed text, then feeds each character it
      samples back in as the next input, carrying the LSTM states from step to step.

    Texts become ids with a `keras.layers.StringLookup` over `vocabulary` (`encode`): id 0 is
    padding, id 1 any character outside the vocabulary, ids 2 .. `vocabulary_size - 1` the
    characters in order. The vocabulary travels in the config, so a saved model reads and
    writes text on its own. `encode` pads at the end only: each step sees only the steps before
    it, so padding never changes the probabilities at real characters and needs no mask; a
    training loss over padded targets ignores them with
    `keras.losses.SparseCategoricalCrossentropy(ignore_class=0)`.

    Args:
        vocabulary: The characters the model reads and writes: a list of distinct single
            characters, or a string of them; `character_vocabulary(texts)` builds it from
            training texts. `LINE_END` (`"\\n"`) is added if missing.
        embedding_dim: Size of each character's embedding. Defaults to `32`.
        units: Units of each LSTM. Defaults to `128`.
        num_layers: Number of stacked LSTMs. Defaults to `1`.
        dropout: Dropout rate on the output of each LSTM during training, in [0, 1).
            Defaults to `0.0`.
        **kwargs: Forwarded to `keras.Model` (e.g. `name`).

    Call arguments:
        inputs: Character ids `(batch, timesteps)`, as `encode` gives them.
        training: Whether dropout is active. Defaults to `None` (Keras decides).

    Returns:
        From `call`: `(batch, timesteps, vocabulary_size)` probabilities; row `t` is the
        distribution of the character after step `t`.

    Raises:
        ValueError: if `vocabulary` is empty, has an entry that is not one character, or has
            duplicates, or if a size or rate is out of range.

    Example:

    >>> from i2dl_keras.models import char_language_model as clm
    >>> lines = ["a fine film", "a dull film"]
    >>> model = clm.CharLanguageModel(clm.character_vocabulary(lines), units=64)
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy())
    >>> model.fit(clm.next_character_dataset(model, lines, sequence_length=8), epochs=20)
    >>> clm.generate(model, "a f", length=20, temperature=0.5, seed=0)
    >>> clm.perplexity(model, ["a fine dull film"])
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str,
        embedding_dim: int = 32,
        units: int = 128,
        num_layers: int = 1,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocabulary = _vocabulary(vocabulary)
        self.embedding_dim = _checks.positive_int("embedding_dim", embedding_dim)
        self.units = _checks.positive_int("units", units)
        self.num_layers = _checks.positive_int("num_layers", num_layers)
        self.dropout = _checks.rate("dropout", dropout)
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.vocabulary, mask_token="", num_oov_indices=1, name="lookup"
        )
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, name="embedding"
        )
        self.lstms = [
            LSTM(self.units, return_sequences=True, return_state=True, name=f"lstm_{i}")
            for i in range(self.num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.head = keras.layers.Dense(self.vocabulary_size, name="logits")

    @property
    def vocabulary_size(self) -> int:
        """Number of ids: the characters plus padding (id 0) and out-of-vocabulary (id 1)."""
        return len(self.vocabulary) + _FIRST_CHAR_ID

    def build(self, input_shape: tuple) -> None:
        batch, steps = tuple(input_shape)[:2]
        shapes = [(self.embedding, (batch, steps))]
        features = self.embedding_dim
        for lstm in self.lstms:
            shapes.append((lstm, (batch, steps, features)))
            features = self.units
        shapes.append((self.head, (batch, steps, self.units)))
        for layer, shape in shapes:
            if not layer.built:
                layer.build(shape)
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        logits, _ = self.next_character_logits(inputs, training=training)
        return keras.ops.softmax(logits, axis=-1)

    def next_character_logits(
        self, ids: Any, states: list | None = None, training: bool | None = False
    ) -> tuple[Any, list]:
        """The logits of the next character at every step, and the LSTM states after the last.

        Passing the returned states back in continues the sequence where it stopped: the
        logits of `ids[:, :k]` and then `ids[:, k:]` with the first call's states are those of
        `ids` in one call. `generate` runs the model one character at a time this way.

        Args:
            ids: Character ids `(batch, timesteps)`.
            states: The states a previous call returned, or `None` to start from zeros.
                Defaults to `None`.
            training: Whether dropout is active. Defaults to `False`.

        Returns:
            `(logits, states)`: logits `(batch, timesteps, vocabulary_size)` and a list of
            `[h, C]` per LSTM, each `(batch, units)`.
        """
        if not self.built:
            self.build(tuple(keras.ops.shape(ids)))
        x = self.embedding(ids)
        new_states = []
        for i, lstm in enumerate(self.lstms):
            x, h, c = lstm(
                x, initial_state=None if states is None else states[i], training=training
            )
            new_states.append([h, c])
            x = self.dropout_layer(x, training=training)
        return self.head(x), new_states

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """Character ids of `texts`, padded with 0 at the end to the longest text.

        Args:
            texts: An iterable of strings.

        Returns:
            An `int32` array `(len(texts), longest)`.
        """
        texts = _texts("texts", texts, allow_empty=False)
        chars = tf.strings.unicode_split(tf.constant(texts, dtype=tf.string), "UTF-8")
        return self.lookup(chars).to_tensor(default_value=_PAD_ID).numpy().astype("int32")

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids: padding is dropped, unknown ids read `"\\ufffd"`.

        Args:
            ids: Character ids, a 1-D sequence.

        Returns:
            The string.
        """
        chars = []
        for i in np.asarray(ids, dtype="int64").reshape(-1):
            if i >= _FIRST_CHAR_ID:
                chars.append(self.vocabulary[i - _FIRST_CHAR_ID])
            elif i == _OOV_ID:
                chars.append("\ufffd")
        return "".join(chars)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self.vocabulary),
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
            }
        )
        return config


def temperature_softmax(logits: Any, temperature: float) -> np.ndarray:
    """The distribution `softmax(logits / T)` that sampling at temperature `T` draws from.

    `T = 1` is the model's own distribution. `T < 1` sharpens it towards the most likely
    entry and `T -> 0` tends to greedy decoding (all mass on the largest logit); `T = 0` is
    greedy exactly, a one-hot vector at the first largest logit. `T > 1` flattens it towards
    uniform. For the course's softmax example, logits `[1, 2, 3]` give `[0.09, 0.24, 0.67]`
    at `T = 1`, `[0.016, 0.117, 0.867]` at `T = 0.5` and `[0.186, 0.307, 0.506]` at `T = 2`.

    Args:
        logits: Logits, an array whose last axis holds the classes.
        temperature: `T`, a finite float >= 0.

    Returns:
        A `float64` array of the same shape; each row along the last axis sums to 1.

    Raises:
        ValueError: if `temperature` is negative or not finite.

    Example:

    >>> i2dl_keras.models.char_language_model.temperature_softmax([1.0, 2.0, 3.0], temperature=0.5)
    array([0.01587624, 0.11731043, 0.86681333])
    """
    temperature = _checks.non_negative_float("temperature", temperature)
    logits = np.asarray(logits, dtype="float64")
    if temperature == 0.0:
        return np.eye(logits.shape[-1])[np.argmax(logits, axis=-1)]
    z = logits / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def generate(
    model: CharLanguageModel,
    seed_text: str = "",
    length: int = 100,
    temperature: float = 1.0,
    seed: int | None = None,
) -> str:
    """Writes `length` characters after `seed_text`, sampling each at `temperature`.

    The one-to-many pattern: the model reads `LINE_END + seed_text` (so an empty seed starts a
    new line), then repeatedly draws the next character from `softmax(z / T)` over the
    vocabulary's characters (padding and out-of-vocabulary are never drawn; see
    `temperature_softmax`) and feeds it back in as the next input, carrying the LSTM states.
    `T = 1` samples the model's own distribution, small `T` gives its most likely, more
    repetitive continuation, and `T = 0` is greedy decoding. Sampling uses a NumPy generator
    of its own, so the same `seed` gives the same text and the caller's random state is left
    alone.

    Args:
        model: A `CharLanguageModel`.
        seed_text: The text to continue. Defaults to `""`.
        length: Number of characters to write, an integer >= 0. Defaults to `100`.
        temperature: Sampling temperature `T`, a finite float >= 0. Defaults to `1.0`.
        seed: Seed of the sampling, an integer >= 0, or `None` for a fresh one each call.
            Defaults to `None`.

    Returns:
        The `length` generated characters (without `seed_text`); line ends are `"\\n"`.

    Raises:
        ValueError: if an argument is out of range.

    Example:

    >>> from i2dl_keras.models.char_language_model import generate
    >>> generate(model, "the film ", length=60, temperature=0.5, seed=0)
    """
    model = _language_model(model)
    if not isinstance(seed_text, str):
        raise ValueError(f"`seed_text` must be a string. Received: seed_text={seed_text!r}")
    length = _checks.non_negative_int("length", length)
    temperature = _checks.non_negative_float("temperature", temperature)
    seed = _checks.optional_seed("seed", seed)
    rng = np.random.default_rng(seed)

    # One traced graph per call for every step: several times faster than eager calls.
    @tf.function(reduce_retracing=True)
    def step(ids, states):
        logits, states = model.next_character_logits(ids, states)
        return logits[0, -1, _FIRST_CHAR_ID:], states

    last, states = step(model.encode([LINE_END + seed_text]), _zero_states(model))
    chars = []
    for _ in range(length):
        probabilities = temperature_softmax(keras.ops.convert_to_numpy(last), temperature)
        index = int(rng.choice(len(probabilities), p=probabilities))
        chars.append(model.vocabulary[index])
        last, states = step(np.array([[index + _FIRST_CHAR_ID]], dtype="int32"), states)
    return "".join(chars)


def perplexity(model: CharLanguageModel, texts: Iterable[str], batch_size: int = 64) -> float:
    """The model's per-character perplexity on `texts`: 1 for certainty, about |V| for guessing.

    `PPL = exp(-(1/N) sum log p(c_t | c_<t))` over every character of every text and each
    text's closing `LINE_END` (N of them in all): the exponential of the mean cross-entropy
    the model is trained on. Each text is read from a fresh start with `LINE_END` as the
    context of its first character. A model that is sure and right scores 1; one that guesses
    uniformly among `V` characters scores `V`.

    Args:
        model: A `CharLanguageModel`.
        texts: An iterable of strings (a single string counts as one text).
        batch_size: Texts per model call. Defaults to `64`.

    Returns:
        The perplexity, a float >= 1.

    Raises:
        ValueError: if `texts` is empty or `batch_size` is not a positive integer.

    Example:

    >>> from i2dl_keras.models.char_language_model import perplexity
    >>> perplexity(model, ["a thoughtful, moving film"])
    """
    model = _language_model(model)
    texts = _texts("texts", [texts] if isinstance(texts, str) else texts, allow_empty=False)
    batch_size = _checks.positive_int("batch_size", batch_size)
    # Texts of similar length share a batch, so that little time goes into padding.
    texts = sorted(texts, key=len)
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        inputs = model.encode([LINE_END + t for t in batch])
        targets = model.encode([t + LINE_END for t in batch])
        probabilities = np.asarray(model.predict_on_batch(inputs), dtype="float64")
        picked = np.take_along_axis(probabilities, targets[..., None], axis=-1)[..., 0]
        real = targets != _PAD_ID
        total -= float(np.log(np.maximum(picked[real], np.finfo("float32").tiny)).sum())
        count += int(real.sum())
    return math.exp(total / count)


def next_character_dataset(
    model: CharLanguageModel,
    texts: Iterable[str],
    sequence_length: int = 100,
    batch_size: int = 64,
    shuffle: bool = True,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Teacher-forcing pairs for many-to-many training: windows of text and the next characters.

    The texts are joined into one stream, each followed by `LINE_END` (and the stream started
    with one), encoded, and cut into consecutive windows of `sequence_length` ids. The target
    of a window is the same window one character later, so step `t` learns
    `p(c_{t+1} | c_<=t)` from the true previous characters, not the model's own guesses. The
    last characters that do not fill a window are left out; no window holds padding.

    Args:
        model: The `CharLanguageModel` whose vocabulary encodes the texts.
        texts: The training texts, an iterable of strings.
        sequence_length: Characters per window (the steps the gradient flows back through).
            Defaults to `100`.
        batch_size: Windows per batch. Defaults to `64`.
        shuffle: Whether to shuffle the windows each epoch. Defaults to `True`.
        seed: Seed of the shuffle, an integer >= 0, or `None`. Defaults to `None`.

    Returns:
        A `tf.data.Dataset` of `(inputs, targets)`, both `int32` `(batch, sequence_length)`.

    Raises:
        ValueError: if an argument is out of range or the texts are shorter than one window.

    Example:

    >>> from i2dl_keras.models.char_language_model import next_character_dataset
    >>> model.fit(next_character_dataset(model, lines, sequence_length=64), epochs=5)
    """
    model = _language_model(model)
    texts = _texts("texts", texts, allow_empty=False)
    sequence_length = _checks.positive_int("sequence_length", sequence_length)
    batch_size = _checks.positive_int("batch_size", batch_size)
    seed = _checks.optional_seed("seed", seed)
    stream = model.encode([LINE_END + "".join(t + LINE_END for t in texts)])[0]
    windows = (len(stream) - 1) // sequence_length
    if windows < 1:
        raise ValueError(
            f"`texts` must hold more than `sequence_length` = {sequence_length} characters "
            f"(line ends included). Received: texts of {len(stream) - 1} characters"
        )
    size = windows * sequence_length
    inputs = stream[:size].reshape(windows, sequence_length)
    targets = stream[1 : size + 1].reshape(windows, sequence_length)
    dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
    if shuffle:
        dataset = dataset.shuffle(windows, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)


def _zero_states(model: CharLanguageModel) -> list:
    zeros = np.zeros((1, model.units), dtype="float32")
    return [[zeros, zeros] for _ in model.lstms]


def _vocabulary(vocabulary: Any) -> list[str]:
    items = list(vocabulary) if isinstance(vocabulary, (str, list, tuple)) else None
    bad = items is None or not items or any(not isinstance(c, str) or len(c) != 1 for c in items)
    if bad or len(set(items)) != len(items):
        raise ValueError(
            "`vocabulary` must be a non-empty list of distinct single characters (see "
            f"character_vocabulary). Received: vocabulary={reprlib.repr(vocabulary)}"
        )
    return items if LINE_END in items else [*items, LINE_END]


def _texts(name: str, texts: Any, allow_empty: bool) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ValueError(
            f"`{name}` must be an iterable of strings, not one string. "
            f"Received: {name}={reprlib.repr(texts)}"
        )
    try:
        items = list(texts)
    except TypeError:
        items = None
    if items is None or any(not isinstance(t, str) for t in items) or not (items or allow_empty):
        raise ValueError(
            f"`{name}` must be a non-empty iterable of strings. "
            f"Received: {name}={reprlib.repr(texts)}"
        )
    return items


def _language_model(model: Any) -> CharLanguageModel:
    if not isinstance(model, CharLanguageModel):
        raise ValueError(f"`model` must be a CharLanguageModel. Received: model={model!r}")
    return model
