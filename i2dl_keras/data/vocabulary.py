"""Adapting a string vocabulary so that it survives a `.keras` save and reload."""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["LINE_BREAKS", "adapt_vocabulary"]

# The characters at which `str.splitlines` breaks a line. Keras writes a string vocabulary to the
# `.keras` file one token per line and reads it back with `splitlines`, while TextVectorization
# splits words at white space only, so a token such as "word\x85" (Latin-1 text can hold it)
# would come back as two tokens and shift every index after it.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def adapt_vocabulary(
    layer: keras.layers.TextVectorization | keras.layers.StringLookup, data: Any
) -> list[str]:
    """Adapts `layer` to `data`, leaving out tokens that would not survive a reload.

    `layer.adapt(data)` as usual, then every token holding a character of `LINE_BREAKS` is
    removed from the vocabulary, so it reads as out of vocabulary. Without this, a model saved
    with such a token would reload with a shifted vocabulary and answer differently.

    Args:
        layer: A `keras.layers.TextVectorization` or `keras.layers.StringLookup` whose output
            mode is not `"tf_idf"` (its weights would have to be filtered too).
        data: Whatever `layer.adapt` takes: strings as a list, array or `tf.data.Dataset`.

    Returns:
        The kept vocabulary, without the padding and out-of-vocabulary tokens.

    Raises:
        ValueError: if `layer` is not a string lookup layer or uses `output_mode="tf_idf"`.

    Example:

    >>> layer = keras.layers.TextVectorization(max_tokens=1000)
    >>> vocabulary = i2dl_keras.data.adapt_vocabulary(layer, ["a fine film", "a dull one"])
    """
    if not isinstance(layer, (keras.layers.TextVectorization, keras.layers.StringLookup)):
        raise ValueError(
            "`layer` must be a keras.layers.TextVectorization or StringLookup. "
            f"Received: layer={layer!r}"
        )
    output_mode = layer.get_config()["output_mode"]
    if output_mode == "tf_idf":
        raise ValueError(
            "`layer` must not use output_mode='tf_idf': its idf weights cannot be filtered. "
            f"Received: output_mode={output_mode!r}"
        )
    layer.adapt(data)
    vocabulary = layer.get_vocabulary(include_special_tokens=False)
    safe = [token for token in vocabulary if not any(c in LINE_BREAKS for c in str(token))]
    if len(safe) != len(vocabulary):
        layer.set_vocabulary(safe)
    return safe
