"""The computational graph: hand-worked backward passes, the course's numbers, TF agreement."""

import io
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from i2dl_keras.graph import ComputationalGraph


def hand_example():
    # f(x, y, z) = (x + y) * z at x = -2, y = 5, z = -4, worked by hand:
    # q = x + y = 3, f = q * z = -12; df/dz = q = 3, df/dq = z = -4, df/dx = df/dy = -4 * 1.
    g = ComputationalGraph()
    x, y, z = g.input(-2.0, "x"), g.input(5.0, "y"), g.input(-4.0, "z")
    q = g.add(x, y, "q")
    f = g.multiply(q, z, "f")
    return g, (x, y, z, q, f)


def test_hand_worked_backward_pass():
    g, (x, y, z, q, f) = hand_example()
    assert float(q.value) == 3.0 and float(f.value) == -12.0
    assert all(node.grad is None for node in g.nodes)  # no backward pass yet
    g.backward(f)
    assert {n.name: float(n.grad) for n in g.nodes} == {
        "x": -4.0,
        "y": -4.0,
        "z": 3.0,
        "q": -4.0,
        "f": 1.0,
    }
    # The operators build the same graph.
    g2 = ComputationalGraph()
    a, b, c = g2.input(-2.0), g2.input(5.0), g2.input(-4.0)
    out = (a + b) * c
    g2.backward(out)
    assert [float(n.grad) for n in (a, b, c)] == [-4.0, -4.0, 3.0]
    assert [n.op for n in g2.nodes] == ["input"] * 3 + ["add", "multiply"]


def test_course_softmax_example_and_its_derivatives():
    # The slides: softmax([1, 2, 3]) = [0.09, 0.24, 0.67], with d s_j / d z_j = s_j (1 - s_j)
    # and d s_i / d z_j = -s_i s_j. Seeding the backward pass with e_i gives row i of the
    # Jacobian, d s_i / d z.
    g = ComputationalGraph()
    z = g.input([1.0, 2.0, 3.0], "z")
    s = g.softmax(z, "s")
    np.testing.assert_array_equal(np.round(s.value, 2), [0.09, 0.24, 0.67])
    np.testing.assert_allclose(s.value, [0.0900306, 0.2447285, 0.6652410], atol=1e-7)
    g.backward(s, grad=[1.0, 0.0, 0.0])
    np.testing.assert_allclose(z.grad, [0.0819251, -0.0220331, -0.0598920], atol=1e-7)
    g.backward(s, grad=[0.0, 1.0, 0.0])
    np.testing.assert_allclose(z.grad[1], 0.1848364, atol=1e-7)
    g.backward(s, grad=[0.0, 0.0, 1.0])
    np.testing.assert_allclose(z.grad[1], -0.1628034, atol=1e-7)

    # The summary: L = -log(y_hat_y) with dL/ds = y_hat - y. Correct class 2:
    # L = -log(0.6652410) = 0.4076060, dL/ds = [0.0900306, 0.2447285, 0.6652410 - 1].
    for labels in (2, [0.0, 0.0, 1.0]):
        g = ComputationalGraph()
        scores = g.input([1.0, 2.0, 3.0], "s")
        loss = g.softmax_cross_entropy(scores, labels)
        g.backward(loss)
        np.testing.assert_allclose(float(loss.value), 0.4076060, atol=1e-7)
        np.testing.assert_allclose(scores.grad, [0.0900306, 0.2447285, -0.3347590], atol=1e-7)


def test_activation_derivatives_by_hand():
    g = ComputationalGraph()
    x = g.input([0.0, 2.0, -3.0], "x")
    g.backward(g.sum(g.sigmoid(x)))
    # sigma' = sigma (1 - sigma): sigma(0) = 0.5 -> 0.25, sigma(2) = 0.8807971 -> 0.1049936,
    # sigma(-3) = 0.0474259 -> 0.0451767.
    np.testing.assert_allclose(x.grad, [0.25, 0.1049936, 0.0451767], atol=1e-7)

    g = ComputationalGraph()
    x = g.input(0.5)
    t = g.tanh(x)
    g.backward(t)
    # tanh(0.5) = 0.4621172, tanh' = 1 - 0.4621172^2 = 0.7864477.
    np.testing.assert_allclose([float(t.value), float(x.grad)], [0.4621172, 0.7864477], atol=1e-7)

    g = ComputationalGraph()
    x = g.input([-1.0, 0.0, 2.0])
    r = g.relu(x)
    g.backward(g.sum(r))
    np.testing.assert_array_equal(r.value, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])  # 0 at x = 0, as TensorFlow

    # Saturation: sigmoid at +-40 passes (almost) no gradient, without overflow warnings.
    g = ComputationalGraph()
    x = g.input([-40.0, 40.0])
    with np.errstate(all="raise"):
        g.backward(g.sum(g.sigmoid(x)))
    assert np.all(x.grad < 1e-17)


def test_xor_two_layer_network():
    # XOR is solved by two layers: h = relu(X W + c), y = h w + b with W = [[1, 1], [1, 1]],
    # c = [0, -1], w = [1, -2], b = 0. Then the OR targets [0, 1, 1, 1] differ only at
    # (1, 1), where h = relu([2, 1]) = [2, 1] and y = 0: MSE = (0 - 1)^2 / 4 = 0.25,
    # dL/dy = 2 (y - t) / 4 = -0.5 there, so dL/dw = h^T dL/dy = [-1, -0.5], dL/db = -0.5.
    g = ComputationalGraph()
    X = g.input([[0, 0], [0, 1], [1, 0], [1, 1]], "X")
    W, c = g.input([[1, 1], [1, 1]], "W"), g.input([0, -1], "c")
    w, b = g.input([[1], [-2]], "w"), g.input([0], "b")
    y = g.relu(X @ W + c, "h") @ w + b
    np.testing.assert_array_equal(y.value, [[0], [1], [1], [0]])
    xor_loss = g.mse(y, [[0], [1], [1], [0]])
    g.backward(xor_loss)
    assert float(xor_loss.value) == 0.0 and not np.any(w.grad)

    or_loss = g.mse(y, [[0], [1], [1], [1]])
    g.backward(or_loss)
    assert float(or_loss.value) == 0.25
    np.testing.assert_allclose(w.grad, [[-1.0], [-0.5]], atol=1e-12)
    np.testing.assert_allclose(b.grad, [-0.5], atol=1e-12)
    assert xor_loss.grad is None  # the OR loss does not depend on the XOR loss


def mlp_graph(params, x, hidden, output, loss, labels):
    g = ComputationalGraph()
    nodes = {name: g.input(value, name) for name, value in params.items()}
    h = getattr(g, hidden)(g.input(x, "x") @ nodes["W1"] + nodes["b1"])
    out = h @ nodes["W2"] + nodes["b2"]
    if output:
        out = getattr(g, output)(out)
    loss_node = getattr(g, loss)(out, labels)
    g.backward(loss_node)
    return float(loss_node.value), {name: node.grad for name, node in nodes.items()}


@pytest.mark.parametrize(
    "hidden, output, loss",
    [("tanh", "sigmoid", "mse"), ("relu", None, "softmax_cross_entropy"), ("sigmoid", None, "")],
)
def test_matches_gradient_tape_on_an_mlp(hidden, output, loss):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    params = {
        "W1": rng.normal(size=(4, 5)),
        "b1": rng.normal(size=5) * 0.1,
        "W2": rng.normal(size=(5, 3)),
        "b2": rng.normal(size=3) * 0.1,
    }
    if loss == "mse":
        labels = rng.uniform(size=(6, 3))
        keras_loss = keras.losses.MeanSquaredError(dtype="float64")
    elif loss == "softmax_cross_entropy":
        labels = rng.integers(0, 3, size=6)
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    else:  # soft labels
        loss = "softmax_cross_entropy"
        labels = rng.dirichlet(np.ones(3), size=6)
        keras_loss = keras.losses.CategoricalCrossentropy(from_logits=True, dtype="float64")
    value, grads = mlp_graph(params, x, hidden, output, loss, labels)

    variables = {name: tf.Variable(v, dtype=tf.float64) for name, v in params.items()}
    activation = {"tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid}
    with tf.GradientTape() as tape:
        h = activation[hidden](tf.constant(x) @ variables["W1"] + variables["b1"])
        out = h @ variables["W2"] + variables["b2"]
        if output:
            out = activation[output](out)
        tf_loss = keras_loss(tf.constant(labels), out)
    tf_grads = tape.gradient(tf_loss, variables)
    np.testing.assert_allclose(value, float(tf_loss), rtol=1e-10)
    for name in params:
        np.testing.assert_allclose(grads[name], tf_grads[name].numpy(), rtol=1e-9, atol=1e-12)


def test_reductions_broadcasting_and_reuse():
    g = ComputationalGraph()
    x = g.input([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "x")
    b = g.input([10.0, 20.0, 30.0], "b")
    # y = sum_j mean_i (x_ij * x_ij + b_j): dy/dx = 2 x / 2 = x, dy/db = 1 per column (the
    # broadcast gradient [[0.5]*3]*2 summed over the batch axis).
    y = g.sum(g.mean(x * x + b, axis=0))
    g.backward(y)
    assert float(y.value) == pytest.approx((1 + 16 + 4 + 25 + 9 + 36) / 2 + 60)
    np.testing.assert_allclose(x.grad, x.value)
    np.testing.assert_allclose(b.grad, [1.0, 1.0, 1.0])

    g = ComputationalGraph()
    x = g.input(np.arange(6.0).reshape(2, 3))
    s = g.sum(x, axis=(0, -1))  # both axes: a scalar
    m = g.mean(x, axis=1)  # [1, 4]
    w = g.input([2.0, 3.0])
    # s = 15 is broadcast to both entries of m * w, so s * s counts twice:
    # out = 2 s^2 + sum_i m_i w_i, d out / d x_ij = 4 s + w_i / 3.
    out = g.sum(s * s + m * w)
    g.backward(out)
    np.testing.assert_allclose(m.value, [1.0, 4.0])
    assert float(out.value) == 2 * 225 + 2 + 12
    np.testing.assert_allclose(x.grad, [[60 + 2 / 3] * 3, [61.0] * 3])
    np.testing.assert_allclose(w.grad, [1.0, 4.0])

    # A matrix-vector product, a vector-matrix product and a dot product, A = [[1, 2], [3, 4]],
    # v = [1, -1]: d sum(A v) / dA = outer(1, v), d sum(v A) / dA = outer(v, 1);
    # d/dv: A^T 1 = [4, 6], A 1 = [3, 7] and 2 v = [2, -2].
    g = ComputationalGraph()
    A, v = g.input([[1.0, 2.0], [3.0, 4.0]]), g.input([1.0, -1.0])
    out = g.sum(A @ v) + g.sum(v @ A) + v @ v
    g.backward(out)
    assert float(out.value) == -2.0 - 4.0 + 2.0
    np.testing.assert_allclose(A.grad, [[2.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(v.grad, [9.0, 11.0])


def test_backward_is_repeatable_and_skips_unrelated_nodes():
    g, (x, y, z, q, f) = hand_example()
    g.backward(f)
    first = [n.grad.copy() for n in g.nodes]
    g.backward(f)  # gradients are recomputed, not accumulated
    for node, grad in zip(g.nodes, first):
        np.testing.assert_array_equal(node.grad, grad)
    later = g.multiply(f, f, "later")
    g.backward(q)  # an intermediate node: z, f and later do not feed it
    assert [float(x.grad), float(y.grad), float(q.grad)] == [1.0, 1.0, 1.0]
    assert z.grad is None and f.grad is None and later.grad is None
    g.backward(f, grad=2.0)  # an outer dL/df = 2 scales every gradient
    assert float(x.grad) == -8.0 and later.grad is None


def test_table():
    g, (x, y, z, q, f) = hand_example()
    rows = [line.split() for line in g.table().splitlines()]
    assert rows[0] == ["node", "op", "inputs", "value", "grad"]
    assert rows[2] == ["x", "input", "-", "-2", "-"]  # no gradient before backward
    g.backward(f)
    rows = [line.split() for line in g.table().splitlines()]
    assert len(rows) == 2 + len(g.nodes)
    assert rows[2:] == [
        ["x", "input", "-", "-2", "-4"],
        ["y", "input", "-", "5", "-4"],
        ["z", "input", "-", "-4", "3"],
        ["q", "add", "x,", "y", "3", "-4"],
        ["f", "multiply", "q,", "z", "-12", "1"],
    ]
    # Arrays print NumPy-style, long ones shortened; precision is significant digits.
    g = ComputationalGraph()
    v = g.input([1.0 / 3.0, 2.0], "v")
    g.input(np.arange(20.0), "long")
    g.backward(g.sum(v, name="total"))
    table = g.table(precision=3)
    assert "[0.333, 2. ]" in table and "[1., 1.]" in table and "[ 0., ..., 19.]" in table
    assert table.splitlines()[-1].split()[-2:] == ["2.33", "1"]


def test_plot():
    g, (x, y, z, q, f) = hand_example()
    g.backward(f)
    fig = g.plot()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    boxes = [t for t in ax.texts if not isinstance(t, Annotation)]
    arrows = [t for t in ax.texts if isinstance(t, Annotation)]
    assert [t.get_text().splitlines()[0] for t in boxes] == [
        "x (input)",
        "y (input)",
        "z (input)",
        "q (add)",
        "f (multiply)",
    ]
    assert boxes[2].get_text().splitlines()[1:] == ["value -4", "grad 3"]
    assert len(arrows) == 4  # x -> q, y -> q, q -> f, z -> f
    # Columns by depth: inputs at x = 0, q at 1, f at 2.
    assert [t.get_position()[0] for t in boxes] == [0.0, 0.0, 0.0, 1.0, 2.0]
    fig.savefig(io.BytesIO(), format="png")

    # Large arrays are summarised by shape and norm; an axes can be passed in.
    g = ComputationalGraph()
    big = g.input(np.full((3, 4), 2.0), "big")
    g.backward(g.mean(big, name="avg"))
    target = Figure()
    ax = target.add_subplot()
    assert g.plot(ax=ax) is target
    texts = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
    assert texts[0].splitlines()[1:] == ["value (3, 4), norm 6.93", "grad (3, 4), norm 0.289"]


def test_bad_arguments():
    g, (x, y, z, q, f) = hand_example()
    other = ComputationalGraph().input(1.0)
    with pytest.raises(ValueError, match="nodes of this graph.*Received: argument 1="):
        g.add(x, other)
    with pytest.raises(ValueError, match="Received: argument 0=3.0"):
        g.tanh(3.0)
    with pytest.raises(TypeError):
        x + 1.0
    with pytest.raises(ValueError, match="already called 'q'. Received: name='q'"):
        g.input(1.0, "q")
    with pytest.raises(ValueError, match="Received: name=''"):
        g.input(1.0, "")
    for bad in ("abc", [1.0, np.nan], [[1.0], [1.0, 2.0]]):
        with pytest.raises(ValueError, match=re.escape(f"Received: value={bad!r}")):
            g.input(bad)
    a, b = g.input(np.ones((2, 3))), g.input(np.ones((2, 3)))
    with pytest.raises(ValueError, match=re.escape("Received: a.shape=(2, 3), b.shape=(2, 3)")):
        g.matmul(a, b)
    with pytest.raises(ValueError, match=re.escape("Received: a.shape=(2, 3), b.shape=(2,)")):
        g.add(a, g.input([1.0, 2.0]))
    for axis in (2, (0, 0), 1.0, True):
        with pytest.raises(ValueError, match=re.escape(f"Received: axis={axis!r}")):
            g.sum(a, axis=axis)
    with pytest.raises(ValueError, match=re.escape("Received: target.shape=(3,)")):
        g.mse(a, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=re.escape("Received: labels=[0, 3]")):
        g.softmax_cross_entropy(a, [0, 3])
    with pytest.raises(ValueError, match=re.escape("Received: labels=[0.0, 1.0]")):
        g.softmax_cross_entropy(a, [0.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("Received: z.shape=()")):
        g.softmax(x)
    with pytest.raises(ValueError, match="Received: grad=None"):
        g.backward(a)
    with pytest.raises(ValueError, match=re.escape("Received: grad.shape=(3,)")):
        g.backward(a, grad=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="Received: precision=0"):
        g.table(precision=0)
    with pytest.raises(ValueError, match=re.escape("Received: nodes=[]")):
        ComputationalGraph().plot()
