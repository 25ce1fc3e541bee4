"""i2dl_keras.graph: a small reverse-mode computational graph of NumPy operations.

Course notes, "Neural Networks as Computational Graph": nodes are computations, directed edges
connect them, and the derivative of a complicated function is assembled from the small local
derivatives of its nodes. `ComputationalGraph` builds such a graph operation by operation, runs
the forward pass as it is built, and `backward` runs backpropagation: the chain rule applied from
the output back to every node, `dL/dx = sum over children c of (dL/dc)(dc/dx)`. Each node keeps
its forward value and its gradient, so a whole backward pass can be read as a table (`table`)
or drawn (`plot`). Everything is float64 NumPy; it is a teaching tool, not a training engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ComputationalGraph", "Node"]

Axis = int | Sequence[int] | None


def _as_array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or not np.all(np.isfinite(array)):
        raise ValueError(
            f"Argument `{name}` must be an array-like of finite numbers. Received: {name}={value!r}"
        )
    return array


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sums `grad` over the axes that broadcasting added or stretched to reach its shape."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


def _format(array: np.ndarray | None, precision: int) -> str:
    if array is None:
        return "-"
    if array.ndim == 0:
        return f"{float(array):.{precision}g}"
    text = np.array2string(
        array, precision=precision, threshold=6, edgeitems=1, separator=", ", suppress_small=True
    )
    return " ".join(text.split())


def _summary(array: np.ndarray | None, precision: int) -> str:
    """A short form for plot labels: small arrays in full, larger ones as shape and norm."""
    if array is None or array.size <= 3:
        return _format(array, precision)
    return f"{array.shape}, norm {np.linalg.norm(array):.{precision}g}"


class Node:
    """One node of a `ComputationalGraph`: an input, or the result of one operation.

    Nodes are made by the graph's methods (`graph.input`, `graph.add`, ...), never directly.
    `+`, `-`, `*` and `@` between two nodes of the same graph call `add`, `subtract`,
    `multiply` and `matmul`.

    Attributes:
        graph: The `ComputationalGraph` that holds it.
        name: The node's name, unique in its graph.
        op: The operation that computed it (`"input"` for inputs and parameters).
        inputs: The nodes it was computed from, in argument order.
        value: Its forward value, a float64 array (0-d for a scalar).
        grad: `d output / d node` from the last `backward` call, an array of `value`'s shape,
            or `None` when the output does not depend on this node or `backward` has not run.
    """

    def __init__(
        self,
        graph: ComputationalGraph,
        name: str,
        op: str,
        inputs: tuple[Node, ...],
        value: np.ndarray,
        backward: Callable[[np.ndarray], tuple[np.ndarray, ...]] | None,
    ):
        self.graph = graph
        self.name = name
        self.op = op
        self.inputs = inputs
        self.value = value
        self.grad: np.ndarray | None = None
        self._local_backward = backward

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of `value`."""
        return self.value.shape

    def __repr__(self) -> str:
        return f"<Node {self.name}: {self.op}, value={_format(self.value, 4)}>"

    def __add__(self, other: Node) -> Node:
        return self.graph.add(self, other) if isinstance(other, Node) else NotImplemented

    def __sub__(self, other: Node) -> Node:
        return self.graph.subtract(self, other) if isinstance(other, Node) else NotImplemented

    def __mul__(self, other: Node) -> Node:
        return self.graph.multiply(self, other) if isinstance(other, Node) else NotImplemented

    def __matmul__(self, other: Node) -> Node:
        return self.graph.matmul(self, other) if isinstance(other, Node) else NotImplemented


class ComputationalGraph:
    """A reverse-mode computational graph: forward values as it is built, gradients on demand.

    Every method that takes nodes computes its result at once (the forward pass) and stores the
    local derivative it needs. `backward(output)` then visits the nodes that `output` depends on
    in reverse order of creation (a reverse topological order, since a node is always created
    after its inputs) and applies the chain rule: each node passes `upstream * local derivative`
    to its inputs, and a node used several times sums what its uses send back. Operations
    broadcast like NumPy; the gradient of a broadcast operand is summed back to its shape.

    The local derivatives are the course's: `sigmoid' = sigmoid (1 - sigmoid)`,
    `tanh' = 1 - tanh^2`, `relu' = [x > 0]`, the softmax Jacobian
    `d s_i / d z_j = s_i (delta_ij - s_j)`, and for the softmax cross-entropy
    `dL/ds = y_hat - y` (averaged over the batch). Every operation raises a `ValueError` when
    an operand is not a node of this graph or `name` is empty or already taken.

    Example:
        ```python
        g = i2dl_keras.graph.ComputationalGraph()
        x, y, z = g.input(-2.0, "x"), g.input(5.0, "y"), g.input(-4.0, "z")
        f = (x + y) * z  # f = -12
        g.backward(f)  # x.grad = y.grad = z.value = -4, z.grad = x + y = 3
        print(g.table())  # one row per node: name, op, inputs, value, grad
        fig = g.plot()  # a matplotlib Figure; fig.savefig("graph.png")
        ```
    """

    def __init__(self):
        self.nodes: list[Node] = []

    # -- building ---------------------------------------------------------------------------

    def _new(
        self,
        op: str,
        inputs: tuple[Node, ...],
        value: np.ndarray,
        backward: Callable[[np.ndarray], tuple[np.ndarray, ...]] | None,
        name: str | None,
    ) -> Node:
        if name is None:
            name = f"{op}{len(self.nodes)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(f"Argument `name` must be a non-empty string. Received: name={name!r}")
        if any(node.name == name for node in self.nodes):
            raise ValueError(
                f"Argument `name` must be unique in the graph; a node is already called "
                f"{name!r}. Received: name={name!r}"
            )
        node = Node(self, name, op, inputs, np.asarray(value, dtype=np.float64), backward)
        self.nodes.append(node)
        return node

    def _check(self, *nodes: Node) -> None:
        for index, node in enumerate(nodes):
            if not isinstance(node, Node) or node.graph is not self:
                raise ValueError(
                    "Operation arguments must be nodes of this graph (made by its `input` or "
                    f"operation methods). Received: argument {index}={node!r}"
                )

    def input(self, value: Any, name: str | None = None) -> Node:
        """Adds a leaf node: an input or a parameter, holding `value`.

        Args:
            value: A number or array-like of finite numbers (stored as float64).
            name: The node's name, unique in the graph. Defaults to `None`, meaning
                `"input<index>"`.

        Returns:
            The new node.

        Raises:
            ValueError: if `value` is not numeric and finite, or `name` is empty or taken.
        """
        return self._new("input", (), _as_array(value, "value"), None, name)

    def _elementwise(
        self,
        op: str,
        a: Node,
        b: Node,
        forward: Callable[[np.ndarray, np.ndarray], np.ndarray],
        backward: Callable[[np.ndarray], tuple[np.ndarray, ...]],
        name: str | None,
    ) -> Node:
        """Adds the node `forward(a.value, b.value)` of two operands whose shapes broadcast."""
        self._check(a, b)
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"`{op}` needs operands whose shapes broadcast. "
                f"Received: a.shape={a.shape}, b.shape={b.shape}"
            ) from None
        return self._new(op, (a, b), forward(a.value, b.value), backward, name)

    def add(self, a: Node, b: Node, name: str | None = None) -> Node:
        """`a + b` (broadcasting); the upstream gradient passes unchanged to both.

        Args:
            a: A node.
            b: A node whose shape broadcasts with `a`'s.
            name: The result's name. Defaults to `None` (`"add<index>"`).

        Returns:
            The new node.

        Raises:
            ValueError: if the shapes do not broadcast.
        """

        def backward(g):
            return _unbroadcast(g, a.shape), _unbroadcast(g, b.shape)

        return self._elementwise("add", a, b, np.add, backward, name)

    def subtract(self, a: Node, b: Node, name: str | None = None) -> Node:
        """`a - b` (broadcasting); `b` receives the negated upstream gradient.

        Takes, returns and raises as `add` does; `name` defaults to `"subtract<index>"`.
        """

        def backward(g):
            return _unbroadcast(g, a.shape), _unbroadcast(-g, b.shape)

        return self._elementwise("subtract", a, b, np.subtract, backward, name)

    def multiply(self, a: Node, b: Node, name: str | None = None) -> Node:
        """Element-wise `a * b` (broadcasting); each operand's gradient is upstream times the other.

        Takes, returns and raises as `add` does; `name` defaults to `"multiply<index>"`.
        """

        def backward(g):
            return _unbroadcast(g * b.value, a.shape), _unbroadcast(g * a.value, b.shape)

        return self._elementwise("multiply", a, b, np.multiply, backward, name)

    def matmul(self, a: Node, b: Node, name: str | None = None) -> Node:
        """The matrix product `a @ b` of 1-D or 2-D operands.

        With `C = A B` and upstream `G = dL/dC`: `dL/dA = G B^T` and `dL/dB = A^T G`. A 1-D `a`
        is a row vector and a 1-D `b` a column vector, as in NumPy.

        Args:
            a: A 1-D or 2-D node, e.g. a batch of inputs `(batch, in)`.
            b: A 1-D or 2-D node whose first dimension is `a`'s last, e.g. a kernel
                `(in, out)`.
            name: The result's name. Defaults to `None` (`"matmul<index>"`).

        Returns:
            The new node.

        Raises:
            ValueError: if an operand is not 1-D or 2-D or the inner dimensions differ.
        """
        self._check(a, b)
        if a.value.ndim not in (1, 2) or b.value.ndim not in (1, 2) or a.shape[-1] != b.shape[0]:
            raise ValueError(
                "`matmul` needs 1-D or 2-D operands with a.shape[-1] == b.shape[0]. "
                f"Received: a.shape={a.shape}, b.shape={b.shape}"
            )
        a2 = a.value.reshape(1, -1) if a.value.ndim == 1 else a.value
        b2 = b.value.reshape(-1, 1) if b.value.ndim == 1 else b.value

        def backward(g):
            g2 = g.reshape(a2.shape[0], b2.shape[1])
            return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)

        return self._new("matmul", (a, b), a.value @ b.value, backward, name)

    def _reduce(self, op: str, x: Node, axis: Axis, name: str | None) -> Node:
        self._check(x)
        axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
        valid = axes is None or (
            isinstance(axes, Sequence)
            and all(isinstance(i, int) and not isinstance(i, bool) for i in axes)
            and all(-x.value.ndim <= i < x.value.ndim for i in axes)
            and len({i % x.value.ndim for i in axes}) == len(axes)
        )
        if not valid:
            raise ValueError(
                f"Argument `axis` must be None, or an int or distinct ints in "
                f"[-{x.value.ndim}, {x.value.ndim}) for an input of shape {x.shape}. "
                f"Received: axis={axis!r}"
            )
        axes = tuple(range(x.value.ndim)) if axes is None else tuple(i % x.value.ndim for i in axes)
        count = int(np.prod([x.shape[i] for i in axes]))
        scale = 1.0 / count if op == "mean" else 1.0

        def backward(g):
            return (np.broadcast_to(np.expand_dims(g, axes) * scale, x.shape).copy(),)

        value = x.value.sum(axis=axes) * scale
        return self._new(op, (x,), value, backward, name)

    def sum(self, x: Node, axis: Axis = None, name: str | None = None) -> Node:
        """Sum over `axis`; every summand receives the upstream gradient.

        Args:
            x: A node.
            axis: An axis or axes to sum over. Defaults to `None` (all, giving a scalar).
            name: The result's name. Defaults to `None` (`"sum<index>"`).

        Returns:
            The new node.

        Raises:
            ValueError: if `axis` is not a valid axis (or distinct axes) of `x`.
        """
        return self._reduce("sum", x, axis, name)

    def mean(self, x: Node, axis: Axis = None, name: str | None = None) -> Node:
        """Mean over `axis`; each of the `n` averaged entries receives `upstream / n`.

        Takes, returns and raises as `sum` does; `name` defaults to `"mean<index>"`.
        """
        return self._reduce("mean", x, axis, name)

    def sigmoid(self, x: Node, name: str | None = None) -> Node:
        """`sigma(x) = 1 / (1 + exp(-x))`, with the local derivative `sigma (1 - sigma)`.

        Args:
            x: A node.
            name: The result's name. Defaults to `None` (`"sigmoid<index>"`).

        Returns:
            The new node.
        """
        self._check(x)
        # exp of a non-positive number only: no overflow warnings for large |x|.
        e = np.exp(-np.abs(x.value))
        s = np.where(x.value >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return self._new("sigmoid", (x,), s, lambda g: (g * s * (1.0 - s),), name)

    def tanh(self, x: Node, name: str | None = None) -> Node:
        """`tanh(x)`, with the local derivative `1 - tanh(x)^2`.

        Takes and returns what `sigmoid` does; `name` defaults to `"tanh<index>"`.
        """
        self._check(x)
        t = np.tanh(x.value)
        return self._new("tanh", (x,), t, lambda g: (g * (1.0 - t**2),), name)

    def relu(self, x: Node, name: str | None = None) -> Node:
        """`max(0, x)`; the gradient passes where `x > 0` and is 0 elsewhere (also at 0).

        Takes and returns what `sigmoid` does; `name` defaults to `"relu<index>"`.
        """
        self._check(x)
        active = x.value > 0
        return self._new(
            "relu", (x,), np.where(active, x.value, 0.0), lambda g: (g * active,), name
        )

    def softmax(self, z: Node, name: str | None = None) -> Node:
        """Softmax over the last axis, `s_j = exp(z_j) / sum_k exp(z_k)`.

        The backward pass applies the course's Jacobian, `d s_j / d z_j = s_j (1 - s_j)` and
        `d s_i / d z_j = -s_i s_j` for `i != j`, to the upstream gradient `g`:
        `dL/dz = s * (g - sum_i g_i s_i)`.

        Args:
            z: A node of scores, `(classes,)` or `(batch, classes)`.
            name: The result's name. Defaults to `None` (`"softmax<index>"`).

        Returns:
            The new node.

        Raises:
            ValueError: if `z` is a scalar.
        """
        self._check(z)
        if z.value.ndim == 0:
            raise ValueError(f"`softmax` needs at least 1-D scores. Received: z.shape={z.shape}")
        e = np.exp(z.value - z.value.max(axis=-1, keepdims=True))
        s = e / e.sum(axis=-1, keepdims=True)
        return self._new(
            "softmax", (z,), s, lambda g: (s * (g - (g * s).sum(axis=-1, keepdims=True)),), name
        )

    def mse(self, prediction: Node, target: Any, name: str | None = None) -> Node:
        """Mean squared error `MSE = (1/N) sum (t - p)^2` over all entries, a scalar.

        For `(batch, outputs)` arrays this is Keras' `MeanSquaredError` (the mean over the
        outputs, then over the batch). The gradient is `dL/dp = 2 (p - t) / N`.

        Args:
            prediction: A node `p`.
            target: The targets `t`, an array-like of `p`'s shape (a constant: it gets no
                gradient).
            name: The result's name. Defaults to `None` (`"mse<index>"`).

        Returns:
            The new, scalar node.

        Raises:
            ValueError: if `target` is not numeric or its shape differs from `p`'s.
        """
        self._check(prediction)
        t = _as_array(target, "target")
        if t.shape != prediction.shape:
            raise ValueError(
                "Argument `target` must have the prediction's shape "
                f"{prediction.shape}. Received: target.shape={t.shape}"
            )
        diff = prediction.value - t
        return self._new(
            "mse", (prediction,), np.mean(diff**2), lambda g: (g * 2.0 * diff / diff.size,), name
        )

    def softmax_cross_entropy(self, logits: Node, labels: Any, name: str | None = None) -> Node:
        """Softmax followed by the cross-entropy, averaged over the batch, a scalar.

        Course notes: `L = -log(y_hat_y)` with `y_hat = softmax(s)`, and `dL/ds = y_hat - y`
        (here divided by the batch size, as the loss is the batch mean). Computed in one step
        with a stable log-softmax, like Keras' `SparseCategoricalCrossentropy(from_logits=True)`
        (integer labels) and `CategoricalCrossentropy(from_logits=True)` (one-hot or soft
        labels).

        Args:
            logits: A node of scores `s`, `(classes,)` or `(batch, classes)`.
            labels: Integer class indices of shape `logits.shape[:-1]`, or target distributions
                (e.g. one-hot) of `logits`' shape. A constant: it gets no gradient.
            name: The result's name. Defaults to `None` (`"softmax_cross_entropy<index>"`).

        Returns:
            The new, scalar node.

        Raises:
            ValueError: if `logits` is not 1-D or 2-D, or `labels` has neither shape, or holds
                indices outside `[0, classes)`.
        """
        self._check(logits)
        z = logits.value
        if z.ndim not in (1, 2):
            raise ValueError(
                "`softmax_cross_entropy` needs 1-D or 2-D logits. "
                f"Received: logits.shape={logits.shape}"
            )
        raw = np.asarray(labels)
        classes = z.shape[-1]
        if raw.shape == z.shape[:-1] and np.issubdtype(raw.dtype, np.integer):
            if raw.size and (raw.min() < 0 or raw.max() >= classes):
                raise ValueError(
                    f"Argument `labels` must hold class indices in [0, {classes}). "
                    f"Received: labels={labels!r}"
                )
            y = np.eye(classes)[raw]
        elif raw.shape == z.shape:
            y = _as_array(raw, "labels")
        else:
            raise ValueError(
                f"Argument `labels` must be integer indices of shape {z.shape[:-1]} or "
                f"distributions of shape {z.shape}. Received: labels={labels!r}"
            )
        shifted = z - z.max(axis=-1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        batch = 1 if z.ndim == 1 else z.shape[0]
        loss = -(y * log_softmax).sum() / batch
        y_hat = np.exp(log_softmax)
        return self._new(
            "softmax_cross_entropy", (logits,), loss, lambda g: (g * (y_hat - y) / batch,), name
        )

    # -- backpropagation --------------------------------------------------------------------

    def backward(self, output: Node, grad: Any = None) -> None:
        """Backpropagation: fills `node.grad = d output / d node` for every node.

        Gradients from an earlier call are cleared first, so calling it twice gives the same
        result. Nodes that `output` does not depend on (including nodes made after it) get
        `grad = None`.

        Args:
            output: The node to differentiate, usually the scalar loss.
            grad: The gradient to start from, `d L / d output` for some outer `L`, an array of
                `output`'s shape. Defaults to `None`, meaning `1` for a scalar output.

        Raises:
            ValueError: if `output` is not a node of this graph, is not a scalar and no `grad`
                is given, or `grad`'s shape differs from `output`'s.
        """
        self._check(output)
        if grad is None:
            if output.value.ndim != 0:
                raise ValueError(
                    "Argument `grad` is needed for a non-scalar output, e.g. ones of its shape "
                    f"{output.shape}. Received: grad=None"
                )
            seed = np.ones(())
        else:
            seed = _as_array(grad, "grad")
            if seed.shape != output.shape:
                raise ValueError(
                    f"Argument `grad` must have the output's shape {output.shape}. "
                    f"Received: grad.shape={seed.shape}"
                )
        needed = {id(output)}
        for node in reversed(self.nodes[: self.nodes.index(output) + 1]):
            if id(node) in needed:
                needed.update(id(parent) for parent in node.inputs)
        for node in self.nodes:
            node.grad = np.zeros_like(node.value) if id(node) in needed else None
        output.grad = seed.copy()
        for node in reversed(self.nodes):
            if node.grad is None or node._local_backward is None:
                continue
            for parent, parent_grad in zip(node.inputs, node._local_backward(node.grad)):
                parent.grad = parent.grad + parent_grad

    # -- reading ----------------------------------------------------------------------------

    def table(self, precision: int = 4) -> str:
        """The nodes in creation order with their op, inputs, forward value and gradient.

        Arrays of more than 6 entries are shortened NumPy-style (`[1.0, ..., 5.0]`). A gradient
        reads `-` when `backward` has not given the node one.

        Args:
            precision: Significant digits of scalars and decimals of arrays. Defaults to `4`.

        Returns:
            The table as text, a header line then one line per node.

        Raises:
            ValueError: if `precision` is not a positive int.
        """
        if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
            raise ValueError(
                f"Argument `precision` must be a positive int. Received: precision={precision!r}"
            )
        rows = [("node", "op", "inputs", "value", "grad")]
        for node in self.nodes:
            rows.append(
                (
                    node.name,
                    node.op,
                    ", ".join(p.name for p in node.inputs) or "-",
                    _format(node.value, precision),
                    _format(node.grad, precision),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def depths(self) -> dict[str, int]:
        """Each node's layer in the graph: 0 for inputs, else 1 + the deepest of its inputs."""
        depth: dict[str, int] = {}
        for node in self.nodes:
            depth[node.name] = 1 + max((depth[p.name] for p in node.inputs), default=-1)
        return depth

    def plot(self, ax: Axes | None = None, precision: int = 3) -> Figure:
        """Draws the graph left to right, each node labelled with its value and gradient.

        Nodes are placed in columns by `depths()` (inputs on the left, the output on the
        right), with an arrow along every edge. Uses matplotlib's object API only: no backend
        is chosen and nothing is shown; a notebook displays the returned figure.

        Args:
            ax: The matplotlib axes to draw into. Defaults to `None`, meaning a new
                `matplotlib.figure.Figure` sized to the graph.
            precision: As in `table`. Defaults to `3`.

        Returns:
            The figure holding the drawing.

        Raises:
            ValueError: if the graph is empty or `precision` is not a positive int.
        """
        if not self.nodes:
            raise ValueError("The graph has no nodes to plot. Received: nodes=[]")
        if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
            raise ValueError(
                f"Argument `precision` must be a positive int. Received: precision={precision!r}"
            )
        depth = self.depths()
        columns: dict[int, list[Node]] = {}
        for node in self.nodes:
            columns.setdefault(depth[node.name], []).append(node)
        tallest = max(len(nodes) for nodes in columns.values())
        position = {}
        for d, nodes in columns.items():
            offset = (len(nodes) - 1) / 2
            for row, node in enumerate(nodes):
                position[node.name] = (float(d), offset - row)

        if ax is None:
            from matplotlib.figure import Figure

            fig = Figure(figsize=(2.4 * len(columns) + 0.4, 1.1 * tallest + 0.6))
            ax = fig.add_subplot()
        boxes = {}
        for node in self.nodes:
            label = (
                f"{node.name} ({node.op})\nvalue {_summary(node.value, precision)}"
                f"\ngrad {_summary(node.grad, precision)}"
            )
            facecolor = "#dbe9f6" if node.op == "input" else "#f2f2f2"
            boxes[node.name] = ax.text(
                *position[node.name],
                label,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round", "facecolor": facecolor},
            )
        # Arrows join the boxes' edges: their ends are given relative to the text artists.
        for node in self.nodes:
            for parent in node.inputs:
                ax.annotate(
                    "",
                    xy=(0.0, 0.5),
                    xycoords=boxes[node.name],
                    xytext=(1.0, 0.5),
                    textcoords=boxes[parent.name],
                    arrowprops={"arrowstyle": "->", "color": "0.35", "shrinkA": 4, "shrinkB": 4},
                )
        ax.set_xlim(-0.5, len(columns) - 0.5)
        ax.set_ylim(-tallest / 2, tallest / 2)
        ax.axis("off")
        return ax.figure
