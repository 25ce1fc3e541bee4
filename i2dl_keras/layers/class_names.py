"""The class names of a classifier, carried inside the model file."""

import keras


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ClassNames(keras.layers.Layer):
    """Passes class scores through unchanged and keeps the names of the classes.

    Placed on a classifier's output, it stores the label of each class index in the model's
    own config, so a `.keras` file (and the SavedModel exported from it) knows what its
    outputs mean without a side file: `i2dl_keras.layers.ClassNames.of(model)` reads them back.
    Along the last axis, index `k` of the scores is the class `class_names[k]`.

    Args:
        class_names: One name per class, distinct non-empty strings, in class-index order.
        **kwargs: Base layer keyword arguments, such as `name`.

    Input shape:
        `(..., len(class_names))`: scores or probabilities per class.

    Output shape:
        The same as the input.

    Raises:
        ValueError: if `class_names` is empty, holds a non-string or empty name, or repeats one.

    Example:

    >>> probs = keras.layers.Dense(3, activation="softmax")(features)
    >>> outputs = i2dl_keras.layers.ClassNames(["cat", "dog", "fox"])(probs)
    """

    def __init__(self, class_names, **kwargs):
        super().__init__(**kwargs)
        names = list(class_names) if isinstance(class_names, (list, tuple)) else None
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(
                "`class_names` must be a non-empty list of non-empty strings. "
                f"Received: class_names={class_names!r}"
            )
        if len(set(names)) != len(names):
            raise ValueError(
                f"`class_names` must be distinct. Received: class_names={class_names!r}"
            )
        self.class_names = names
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != len(self.class_names):
            raise ValueError(
                f"`class_names` has {len(self.class_names)} names, but the scores have "
                f"{input_shape[-1]} classes. Received: class_names={self.class_names!r}"
            )

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"class_names": list(self.class_names)})
        return config

    @staticmethod
    def of(model: keras.Model) -> list[str] | None:
        """The class names a model carries (its last `ClassNames` layer), or `None`."""
        found = None
        for layer in getattr(model, "layers", ()):
            if isinstance(layer, ClassNames):
                found = list(layer.class_names)
            elif isinstance(layer, keras.Model):
                found = ClassNames.of(layer) or found
        return found
