"""`Signature`: one signature of a loaded SavedModel, its tensor specs and a checked call."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
import tensorflow as tf

from i2dl_keras.serving.errors import ServingError
from i2dl_keras.serving.images import DEFAULT_MAX_IMAGE_PIXELS, check_image_bytes, is_image_input

logger = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
# TensorFlow's annotations of a runtime error: the node, the function and the Python frames
# where the graph was traced. The client gets the sentence between them.
_TF_ANNOTATION = re.compile(r"\s*(\[\[.*?\]\]|\[Op:[^\]]*\]|\{\{.*?\}\})")
_TF_FAILED_NODE = re.compile(r"Detected at node (\S+)")


@dataclasses.dataclass
class Signature:
    """One signature of a loaded SavedModel: its function and the specs of its tensors.

    Args:
        name: The signature's key, e.g. `"serving_default"`.
        fn: The concrete function, called with the inputs as keyword arguments.
        inputs: The input specs by name.
        outputs: The output specs by name.
    """

    name: str
    fn: Any
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated on axis 0 and the outputs split back."""
        specs = [*self.inputs.values(), *self.outputs.values()]
        return all(s.shape.rank and s.shape[0] is None for s in specs)

    @property
    def image_inputs(self) -> list[str]:
        """The inputs that carry encoded images: strings named like `image_bytes`."""
        return [name for name, spec in self.inputs.items() if is_image_input(name, spec)]

    def check(
        self, arrays: Mapping[str, np.ndarray], max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    ) -> None:
        """Raises `ServingError` unless `arrays` fit this signature's inputs.

        Checks that `arrays` names exactly the inputs, that each shape fits its spec, and that
        every item of an image input is an image of at most `max_image_pixels` pixels by its
        header, so that nothing too large reaches the decoder.
        """
        missing = sorted(set(self.inputs) - set(arrays))
        unknown = sorted(set(arrays) - set(self.inputs))
        if missing or unknown:
            raise ServingError(
                f"signature {self.name!r} takes the input(s) {sorted(self.inputs)}; "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown {unknown}" if unknown else "")
            )
        for key, value in arrays.items():
            check_shape(value, self.inputs[key], key)
        for key in self.image_inputs:
            check_image_bytes(arrays[key], key, max_image_pixels)

    def call(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature on checked arrays; TF's errors become a one-line `ServingError`.

        The client reads TensorFlow's own sentence (an image that fails to decode is named as
        such), without the graph trace; the full message is logged.
        """
        tensors = {k: tf.constant(v, dtype=self.inputs[k].dtype) for k, v in arrays.items()}
        try:
            outputs = self.fn(**tensors)
        except tf.errors.OpError as exc:
            logger.info("signature %r failed: %s", self.name, exc.message)
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if isinstance(exc, tf.errors.InvalidArgumentError)
                else grpc.StatusCode.INTERNAL
            )
            raise ServingError(self._error_sentence(exc.message), code) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _error_sentence(self, message: str) -> str:
        """The one line of a TensorFlow error message that says what went wrong."""
        lines = [_TF_ANNOTATION.sub("", line).strip() for line in message.splitlines()]
        lines = [
            line
            for line in lines
            if line and not line.startswith(("Graph execution error", "Detected at node", "File "))
        ]
        text = lines[-1] if lines else "the model could not run on these inputs"
        node = _TF_FAILED_NODE.search(message)
        if node and "decode" in node.group(1).lower() and self.image_inputs:
            return f"an image of input {self.image_inputs[0]!r} could not be decoded: {text}"
        return text


def shape_text(shape: tf.TensorShape) -> str:
    """A shape as TF Serving writes it: `[-1, 16, 16, 1]`, `-1` for any size."""
    if shape.rank is None:
        return "any"
    return "[" + ", ".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"


def check_shape(value: np.ndarray, spec: tf.TensorSpec, name: str) -> None:
    """Raises `ServingError` unless `value`'s shape fits `spec` (of the input `name`)."""
    want = spec.shape
    if want.rank is None:
        return
    if value.ndim != want.rank or any(
        w is not None and w != g for w, g in zip(want.as_list(), value.shape)
    ):
        raise ServingError(
            f"input {name!r} expects shape {shape_text(want)} (-1: any size), "
            f"got {list(value.shape)}"
        )
