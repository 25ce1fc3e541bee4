"""Parametric ReLU: a Leaky ReLU whose negative slope is learned."""

import keras

from i2dl_keras.layers import _checks
from i2dl_keras.layers._shape_preserving import ShapePreservingLayer, leaky


@keras.saving.register_keras_serializable(package="i2dl_keras")
class PReLU(ShapePreservingLayer):
    """Parametric rectified linear unit with a learned slope `alpha` for negative inputs.

    `f(x) = x` for `x >= 0` and `alpha * x` otherwise, with `alpha` trained by backpropagation
    (He et al. 2015, "Delving Deep into Rectifiers"). The course writes it `max(alpha x, x)`,
    which is the same function only while `alpha <= 1`; a learned `alpha` may leave that range,
    so this layer computes the piecewise form. Following He et al., `alpha` starts at `0.25`.

    There is one `alpha` per input element (batch axis excluded); `shared_axes` shares it along
    the given axes, e.g. `shared_axes=[1, 2]` for images gives one `alpha` per channel (He et
    al.'s channel-wise variant).

    Args:
        shared_axes: Axis or list of axes (1-based: axis 0 is the batch) along which `alpha` is
            shared. Defaults to `None` (no sharing).
        alpha_initializer: Initializer for `alpha`. Defaults to `None`, meaning
            `keras.initializers.Constant(0.25)`.
        alpha_regularizer: Optional regularizer for `alpha`. Defaults to `None`.
        alpha_constraint: Optional constraint for `alpha`. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Input shape:
        `(batch_size, ...)`; the axes not in `shared_axes` must have known sizes.

    Output shape:
        Same shape as the input.

    Raises:
        ValueError: if `shared_axes` holds anything but positive integers, or (at build time)
            names an axis the input does not have.

    Example:

    >>> layer = i2dl_keras.layers.PReLU(shared_axes=[1, 2])
    >>> tuple(layer(np.ones((2, 8, 8, 3), "float32")).shape)
    (2, 8, 8, 3)
    >>> tuple(layer.alpha.shape)
    (1, 1, 3)
    """

    def __init__(
        self,
        shared_axes=None,
        alpha_initializer=None,
        alpha_regularizer=None,
        alpha_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            for axis in axes:
                if not _checks.is_int(axis) or axis < 1:
                    raise ValueError(
                        "`shared_axes` must be a positive integer or a list of them (axis 0 "
                        f"is the batch axis). Received: shared_axes={shared_axes!r}"
                    )
            self.shared_axes = sorted({int(a) for a in axes})
        if alpha_initializer is None:
            alpha_initializer = keras.initializers.Constant(0.25)
        self.alpha_initializer = keras.initializers.get(alpha_initializer)
        self.alpha_regularizer = keras.regularizers.get(alpha_regularizer)
        self.alpha_constraint = keras.constraints.get(alpha_constraint)

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if axis >= len(input_shape):
                raise ValueError(
                    f"`shared_axes` names axis {axis}, but the input has rank "
                    f"{len(input_shape)}. Received: shared_axes={self.shared_axes}"
                )
            param_shape[axis - 1] = 1
        if any(d is None for d in param_shape):
            raise ValueError(
                "`PReLU` needs known sizes on every axis not in `shared_axes`. "
                f"Received: input_shape={input_shape}"
            )
        self.alpha = self.add_weight(
            shape=tuple(param_shape),
            name="alpha",
            initializer=self.alpha_initializer,
            regularizer=self.alpha_regularizer,
            constraint=self.alpha_constraint,
        )

    def call(self, inputs):
        return leaky(inputs, self.alpha)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "shared_axes": self.shared_axes,
                "alpha_initializer": keras.initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": keras.regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": keras.constraints.serialize(self.alpha_constraint),
            }
        )
        return config
