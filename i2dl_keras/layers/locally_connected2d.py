"""Locally connected 2D layer: a convolution whose weights are not shared across positions."""

import keras

from i2dl_keras.layers import _checks

PADDINGS = ("valid", "same")


def _output_size(size, kernel, stride, padding):
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _same_pads(size, kernel, stride):
    """Keras' "same" padding along one dimension: (before, after), the extra one after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@keras.saving.register_keras_serializable(package="i2dl_keras")
class LocallyConnected2D(keras.layers.Layer):
    """2D locally connected layer: a convolution with separate weights at every position.

    Each output position `(i, j)` sees the same `kernel_size` window of the input as
    `keras.layers.Conv2D` would, but through its own kernel and bias instead of one kernel
    shared by all positions: the course's "locally connected layer" between a fully connected
    layer (all weights different, every input) and a convolution (local windows, shared
    weights). It keeps the convolution's local connectivity but gives up its translation
    equivariance, which suits inputs whose parts sit at fixed places (e.g. aligned faces).
    Keras 3 has no such layer.

    `y[i, j] = activation(sum over the window of x * W[i, j] + b[i, j])`. With `O_h x O_w`
    output positions (the course's `floor((N - F + 2P) / S) + 1` per dimension) it has
    `O_h * O_w` times the parameters of the matching convolution,
    `O_h * O_w * (F_h * F_w * C_in * C_out + C_out)`. The input height and width must be known
    when the layer is built.

    Args:
        filters: Number of output channels `C_out`, a positive int.
        kernel_size: Window size, an int or a pair `(height, width)`.
        strides: Step of the window, an int or a pair. Defaults to `1`.
        padding: `"valid"` (no padding) or `"same"` (zeros as Keras' `Conv2D` adds them, so
            that the output size is `ceil(N / S)`). Defaults to `"valid"`.
        activation: Activation function, anything `keras.activations.get` takes. Defaults to
            `None` (linear).
        use_bias: Whether each position has a bias per filter. Defaults to `True`.
        kernel_initializer: Initializer for the kernels. Defaults to `"glorot_uniform"`.
        bias_initializer: Initializer for the biases. Defaults to `"zeros"`.
        kernel_regularizer: Regularizer for the kernels. Defaults to `None`.
        bias_regularizer: Regularizer for the biases. Defaults to `None`.
        kernel_constraint: Constraint for the kernels. Defaults to `None`.
        bias_constraint: Constraint for the biases. Defaults to `None`.
        **kwargs: Base layer keyword arguments, such as `name`, `dtype` and
            `activity_regularizer`.

    Input shape:
        4D tensor `(batch_size, height, width, channels)` with known `height` and `width`.

    Output shape:
        `(batch_size, out_height, out_width, filters)`.

    Weights:
        `kernel` of shape `(out_height * out_width, kernel_h * kernel_w * channels, filters)`:
        row `p = i * out_width + j` is the kernel of position `(i, j)`, flattened in the order
        of a `Conv2D` kernel `(kernel_h, kernel_w, channels, filters)`; `bias` of shape
        `(out_height, out_width, filters)`.

    Raises:
        ValueError: if an argument is malformed, or (at build time) the input is not 4D, its
            height or width is unknown, or it is smaller than the window.

    Example:

    >>> layer = i2dl_keras.layers.LocallyConnected2D(filters=4, kernel_size=3)
    >>> tuple(layer(np.zeros((2, 8, 8, 3), "float32")).shape)
    (2, 6, 6, 4)
    >>> layer.count_params()  # 6 * 6 * (3 * 3 * 3 * 4 + 4)
    4032
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _checks.positive_int("filters", filters)
        self.kernel_size = _checks.int_pair("kernel_size", kernel_size)
        self.strides = _checks.int_pair("strides", strides)
        if padding not in PADDINGS:
            raise ValueError(f"`padding` must be one of {PADDINGS}. Received: padding={padding!r}")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        if not isinstance(use_bias, bool):
            raise ValueError(f"`use_bias` must be a bool. Received: use_bias={use_bias!r}")
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def _output_hw(self, input_shape):
        return tuple(
            _output_size(input_shape[axis], k, s, self.padding)
            for axis, k, s in zip((1, 2), self.kernel_size, self.strides)
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "`LocallyConnected2D` expects 4D input (batch, height, width, channels) with "
                f"known height and width. Received: input_shape={input_shape}"
            )
        out_h, out_w = self._output_hw(input_shape)
        if out_h < 1 or out_w < 1:
            raise ValueError(
                f"The input is smaller than the window {self.kernel_size}. "
                f"Received: input_shape={input_shape}"
            )
        window = self.kernel_size[0] * self.kernel_size[1] * input_shape[3]
        self.kernel = self.add_weight(
            shape=(out_h * out_w, window, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(out_h, out_w, self.filters),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )

    def call(self, inputs):
        ops = keras.ops
        (k_h, k_w), (s_h, s_w) = self.kernel_size, self.strides
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        out_h, out_w = self._output_hw(inputs.shape)
        if self.padding == "same":
            top, bottom = _same_pads(height, k_h, s_h)
            left, right = _same_pads(width, k_w, s_w)
            inputs = ops.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
        # The windows, in the order of a Conv2D kernel: (batch, out_h, out_w, k_h, k_w, c).
        windows = ops.stack(
            [
                inputs[
                    :, di : di + (out_h - 1) * s_h + 1 : s_h, dj : dj + (out_w - 1) * s_w + 1 : s_w
                ]
                for di in range(k_h)
                for dj in range(k_w)
            ],
            axis=3,
        )
        windows = ops.reshape(windows, (-1, out_h * out_w, k_h * k_w * channels))
        outputs = ops.einsum("bpk,pkf->bpf", windows, self.kernel)
        outputs = ops.reshape(outputs, (-1, out_h, out_w, self.filters))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        out_h, out_w = self._output_hw(input_shape)
        return (input_shape[0], out_h, out_w, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
                "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            }
        )
        return config
