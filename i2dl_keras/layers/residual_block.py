"""ResNet's residual block: `y = activation(F(x) + shortcut(x))` (He et al., 2016)."""

from __future__ import annotations

import keras

_SHORTCUTS = ("auto", "identity", "projection")


def _normalize_kernel_size(kernel_size):
    if isinstance(kernel_size, int) and not isinstance(kernel_size, bool) and kernel_size > 0:
        return (kernel_size, kernel_size)
    if (
        isinstance(kernel_size, (tuple, list))
        and len(kernel_size) == 2
        and all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in kernel_size)
    ):
        return tuple(kernel_size)
    raise ValueError(
        "`kernel_size` must be a positive integer or a tuple of two positive integers. "
        f"Received: kernel_size={kernel_size!r}"
    )


@keras.saving.register_keras_serializable(package="i2dl_keras")
class ResidualBlock(keras.layers.Layer):
    """Residual block: a few "same" convolutions plus a skip connection.

    The block computes `y = activation(F(x) + shortcut(x))` (He et al., 2016, "Deep Residual
    Learning for Image Recognition"; the course's "skip connection"): the input is added to the
    output of a layer two or three levels deeper, before that layer's activation. If `F`'s weights
    go to zero the block reduces to `activation(x)`, which is why stacking residual blocks cannot
    make a network much worse than a shallower one.

    `F` is either the *basic* block, `conv(k x k, filters, stride) -> BN -> act -> conv(k x k,
    filters) -> BN`, or the *bottleneck* block, `conv(1x1, filters) -> BN -> act -> conv(k x k,
    filters, stride) -> BN -> act -> conv(1x1, 4 * filters) -> BN`. The bottleneck's output has
    `4 * filters` channels, as in ResNet-50/101/152 (and `keras.applications`). The stride sits on
    the `k x k` convolution (the "ResNet v1.5" placement). All convolutions use "same" padding.

    The shortcut is the identity when the input already has `F`'s output shape; otherwise (a
    stride above 1 or a change of channels) it is a 1x1 convolution with the block's stride,
    followed by batch normalization when `use_batch_norm` is set (He et al.'s option B).
    Convolutions have no bias when followed by batch normalization, whose `beta` already plays
    that role; without batch normalization they have one.

    Args:
        filters: Number of filters of the block's convolutions; the output has `filters`
            channels (basic block) or `4 * filters` (bottleneck).
        kernel_size: Size of the spatial convolution(s), an integer or a tuple of two.
            Defaults to `3`.
        strides: Stride of the block, applied once (on the spatial convolution and on the
            projection shortcut). Defaults to `1`.
        shortcut: `"identity"`, `"projection"` (a 1x1 convolution), or `"auto"` (identity when
            the shapes match, projection otherwise). Defaults to `"auto"`.
        bottleneck: Whether to use the 1x1 -> k x k -> 1x1 bottleneck form. Defaults to `False`.
        use_batch_norm: Whether to batch-normalize after every convolution. Defaults to `True`.
        activation: Activation inside `F` and after the sum. Defaults to `"relu"`.
        kernel_initializer: Initializer of every convolution kernel. Defaults to `"he_normal"`.
        kernel_regularizer: Regularizer of every convolution kernel. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: A 4D tensor `(batch, height, width, channels)`.
        training: Whether batch normalization uses batch statistics. Defaults to `None`.

    Input shape:
        `(batch, height, width, channels)`.

    Output shape:
        `(batch, ceil(height / strides), ceil(width / strides), out_channels)` with
        `out_channels = filters` (basic) or `4 * filters` (bottleneck).

    Raises:
        ValueError: if an argument is out of range, or if `shortcut="identity"` is asked for a
            block that changes the shape of its input.

    Example:

    >>> block = i2dl_keras.layers.ResidualBlock(16, strides=2)
    >>> tuple(block(np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 4, 4, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int] = 3,
        strides: int = 1,
        shortcut: str = "auto",
        bottleneck: bool = False,
        use_batch_norm: bool = True,
        activation="relu",
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"`filters` must be a positive integer. Received: filters={filters!r}")
        kernel_size = _normalize_kernel_size(kernel_size)
        if not isinstance(strides, int) or isinstance(strides, bool) or strides < 1:
            raise ValueError(f"`strides` must be a positive integer. Received: strides={strides!r}")
        if shortcut not in _SHORTCUTS:
            raise ValueError(
                f"`shortcut` must be one of {_SHORTCUTS}. Received: shortcut={shortcut!r}"
            )
        if shortcut == "identity" and strides != 1:
            raise ValueError(
                "`shortcut='identity'` needs `strides=1`: a strided block changes the spatial "
                f"shape, so the input cannot be added unchanged. Received: strides={strides}"
            )
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.shortcut = shortcut
        self.bottleneck = bool(bottleneck)
        self.use_batch_norm = bool(use_batch_norm)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.out_channels = 4 * filters if self.bottleneck else filters

        if self.bottleneck:
            specs = [
                (filters, (1, 1), 1),
                (filters, kernel_size, strides),
                (self.out_channels, (1, 1), 1),
            ]
        else:
            specs = [(filters, kernel_size, strides), (filters, kernel_size, 1)]
        # Sublayers are attributes so that Keras tracks their weights for training and saving.
        self.convs = [self._conv(f, k, s, name=f"conv{i + 1}") for i, (f, k, s) in enumerate(specs)]
        self.norms = (
            [
                keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"bn{i + 1}")
                for i in range(len(specs))
            ]
            if self.use_batch_norm
            else []
        )
        self.projection = None
        self.projection_norm = None

    def _conv(self, filters, kernel_size, strides, name):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=not self.use_batch_norm,
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
                "`ResidualBlock` expects a 4D input (batch, height, width, channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        in_channels = input_shape[-1]
        matches = self.strides == 1 and in_channels == self.out_channels
        if self.shortcut == "identity" and not matches:
            raise ValueError(
                "`shortcut='identity'` needs the input to have the block's output channels "
                f"({self.out_channels}), since x is added to F(x) unchanged; use "
                "`shortcut='auto'` or `'projection'`. "
                f"Received: shortcut='identity' with input_shape={tuple(input_shape)}"
            )
        shape = tuple(input_shape)
        for i, conv in enumerate(self.convs):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if self.use_batch_norm:
                self.norms[i].build(shape)
        if self.shortcut == "projection" or (self.shortcut == "auto" and not matches):
            self.projection = self._conv(self.out_channels, (1, 1), self.strides, "projection")
            self.projection.build(tuple(input_shape))
            if self.use_batch_norm:
                self.projection_norm = keras.layers.BatchNormalization(
                    dtype=self.dtype_policy, name="projection_bn"
                )
                self.projection_norm.build(shape)

    def call(self, inputs, training=None):
        x = inputs
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if self.use_batch_norm:
                x = self.norms[i](x, training=training)
            # The last activation waits until after the sum: y = act(F(x) + shortcut(x)).
            if i < last:
                x = self.activation(x)
        shortcut = inputs
        if self.projection is not None:
            shortcut = self.projection(inputs)
            if self.projection_norm is not None:
                shortcut = self.projection_norm(shortcut, training=training)
        return self.activation(keras.ops.add(x, shortcut))

    def compute_output_shape(self, input_shape):
        def reduce(n):
            return None if n is None else -(-n // self.strides)

        return (input_shape[0], reduce(input_shape[1]), reduce(input_shape[2]), self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": self.strides,
                "shortcut": self.shortcut,
                "bottleneck": self.bottleneck,
                "use_batch_norm": self.use_batch_norm,
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
