"""GoogLeNet's inception block: parallel 1x1, 3x3, 5x5 convolutions and a max pool, concatenated."""

from __future__ import annotations

import keras


def _check_filters(name, value, allow_none):
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        expected = "a positive integer or `None`" if allow_none else "a positive integer"
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="i2dl_keras")
class InceptionBlock(keras.layers.Layer):
    """Inception block: every filter size at once, stacked on the channel axis.

    Instead of choosing one filter size, the block runs four branches in parallel on the same
    input and concatenates their outputs along the channels (Szegedy et al., 2015, "Going Deeper
    with Convolutions"; the course's "inception layer"):

    1. a 1x1 convolution with `filters_1x1` filters;
    2. a 3x3 convolution with `filters_3x3` filters;
    3. a 5x5 convolution with `filters_5x5` filters;
    4. a 3x3 max pool with stride 1, optionally followed by a 1x1 "pool projection" convolution
       with `filters_pool` filters.

    All branches use "same" padding and stride 1, so they keep the spatial size and can be
    concatenated. In the *naive* version (the paper's figure 2a) the 3x3 and 5x5 convolutions see
    all `C_in` input channels, and the pool branch passes all `C_in` channels on, so the channel
    count grows from block to block. The version *with dimension reductions* (figure 2b, used in
    GoogLeNet) puts 1x1 convolutions with `reduce_3x3` and `reduce_5x5` filters in front of the
    3x3 and 5x5 convolutions and a 1x1 projection after the pool, which cuts the parameter count
    (each convolution has `F * F * C_in * C_out + C_out` parameters) and the computation.
    Every convolution, reductions included, is followed by the activation.

    Args:
        filters_1x1: Filters of the 1x1 branch.
        filters_3x3: Filters of the 3x3 convolution.
        filters_5x5: Filters of the 5x5 convolution.
        filters_pool: Filters of the 1x1 projection after the max pool, or `None` for no
            projection (the pool branch then outputs `C_in` channels). Required when
            `naive=False`. Defaults to `None`.
        reduce_3x3: Filters of the 1x1 reduction in front of the 3x3 convolution. Required when
            `naive=False`, must be `None` when `naive=True`. Defaults to `None`.
        reduce_5x5: Filters of the 1x1 reduction in front of the 5x5 convolution. Required when
            `naive=False`, must be `None` when `naive=True`. Defaults to `None`.
        naive: Whether to build the naive block, without 1x1 reductions. Defaults to `False`.
        activation: Activation after every convolution. Defaults to `"relu"`.
        kernel_initializer: Initializer of every convolution kernel. Defaults to
            `"glorot_uniform"`.
        kernel_regularizer: Regularizer of every convolution kernel. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 4D tensor `(batch, height, width, channels)`.

    Input shape:
        `(batch, height, width, C_in)`.

    Output shape:
        `(batch, height, width, filters_1x1 + filters_3x3 + filters_5x5 + P)` with
        `P = filters_pool`, or `P = C_in` when `filters_pool` is `None`.

    Raises:
        ValueError: if a filter count is not a positive integer, or the reductions do not agree
            with `naive`.

    Example:

    >>> block = i2dl_keras.layers.InceptionBlock(
    ...     64, 128, 32, filters_pool=32, reduce_3x3=96, reduce_5x5=16
    ... )
    >>> tuple(block(np.zeros((1, 28, 28, 192), "float32")).shape)
    (1, 28, 28, 256)
    """

    def __init__(
        self,
        filters_1x1: int,
        filters_3x3: int,
        filters_5x5: int,
        filters_pool: int | None = None,
        reduce_3x3: int | None = None,
        reduce_5x5: int | None = None,
        naive: bool = False,
        activation="relu",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_filters("filters_1x1", filters_1x1, allow_none=False)
        _check_filters("filters_3x3", filters_3x3, allow_none=False)
        _check_filters("filters_5x5", filters_5x5, allow_none=False)
        _check_filters("filters_pool", filters_pool, allow_none=True)
        naive = bool(naive)
        for name, value in (("reduce_3x3", reduce_3x3), ("reduce_5x5", reduce_5x5)):
            if naive and value is not None:
                raise ValueError(
                    f"`{name}` must be `None` when `naive=True`: the naive block has no 1x1 "
                    f"reductions. Received: {name}={value!r}"
                )
            if not naive:
                _check_filters(name, value, allow_none=False)
        if not naive and filters_pool is None:
            raise ValueError(
                "`filters_pool` must be a positive integer when `naive=False`: the block with "
                "dimension reductions projects the pooled input with a 1x1 convolution. "
                "Received: filters_pool=None"
            )
        self.filters_1x1 = filters_1x1
        self.filters_3x3 = filters_3x3
        self.filters_5x5 = filters_5x5
        self.filters_pool = filters_pool
        self.reduce_3x3 = reduce_3x3
        self.reduce_5x5 = reduce_5x5
        self.naive = naive
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        # Each branch is a list of layers applied in order; the branches are concatenated in the
        # order 1x1, 3x3, 5x5, pool.
        branch_3x3 = [self._conv(filters_3x3, 3, "conv_3x3")]
        branch_5x5 = [self._conv(filters_5x5, 5, "conv_5x5")]
        if not naive:
            branch_3x3.insert(0, self._conv(reduce_3x3, 1, "reduce_3x3"))
            branch_5x5.insert(0, self._conv(reduce_5x5, 1, "reduce_5x5"))
        branch_pool = [
            keras.layers.MaxPooling2D(
                3, strides=1, padding="same", dtype=self.dtype_policy, name="pool"
            )
        ]
        if filters_pool is not None:
            branch_pool.append(self._conv(filters_pool, 1, "pool_proj"))
        self.branches = [[self._conv(filters_1x1, 1, "conv_1x1")], branch_3x3, branch_5x5]
        self.branches.append(branch_pool)

    def _conv(self, filters, kernel_size, name):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            activation=self.activation,
            kernel_initializer=keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "`InceptionBlock` expects a 4D input (batch, height, width, channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        for branch in self.branches:
            shape = tuple(input_shape)
            for layer in branch:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs):
        outputs = []
        for branch in self.branches:
            x = inputs
            for layer in branch:
                x = layer(x)
            outputs.append(x)
        return keras.ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        pool_channels = input_shape[-1] if self.filters_pool is None else self.filters_pool
        channels = (
            None
            if pool_channels is None
            else self.filters_1x1 + self.filters_3x3 + self.filters_5x5 + pool_channels
        )
        return (*tuple(input_shape[:-1]), channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters_1x1": self.filters_1x1,
                "filters_3x3": self.filters_3x3,
                "filters_5x5": self.filters_5x5,
                "filters_pool": self.filters_pool,
                "reduce_3x3": self.reduce_3x3,
                "reduce_5x5": self.reduce_5x5,
                "naive": self.naive,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "kernel_regularizer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
