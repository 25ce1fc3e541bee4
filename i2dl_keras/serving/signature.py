"""`Signature`: one signature of a loaded SavedModel, its tensor specs and a checked call."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np
import tensorflow as tf

from i2dl_keras.serving.errors import ServingError

DEFAULT_SIGNATURE = "serving_default"


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

    def check(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Raises `ServingError` unless `arrays` names exactly this signature's inputs."""
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

    def call(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the signature on checked arrays; TF's argument errors become `ServingError`."""
        tensors = {k: tf.constant(v, dtype=self.inputs[k].dtype) for k, v in arrays.items()}
        try:
            outputs = self.fn(**tensors)
        except tf.errors.InvalidArgumentError as exc:
            raise ServingError(exc.message) from None
        except tf.errors.OpError as exc:
            raise ServingError(exc.message, grpc.StatusCode.INTERNAL) from None
        return {k: v.numpy() for k, v in outputs.items()}


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
