"""Keras' SGD, momentum, Nesterov, RMSprop and Adam against the course's update rules in NumPy.

Each test runs a Keras optimizer for a few steps on the quadratic
`L(theta) = 1/2 theta^T A theta - b^T theta` (gradient `A theta - b`, computed in NumPy at the
variable's current value) and the course's rule in float64 NumPy, and compares every iterate.

Symbol map, course -> Keras, and the differences found:

- Gradient descent: `alpha` -> `learning_rate`. Identical.
- Momentum: the course keeps `v <- beta v + grad`, `theta <- theta - alpha v`; Keras keeps the
  learning-rate-scaled velocity `m <- momentum m - lr grad`, `theta <- theta + m`, so
  `m = -alpha v`. Identical for a constant learning rate; when the learning rate changes, Keras'
  old velocity keeps the old rate (Sutskever et al., 2013) while the course's is rescaled.
- Nesterov: the course's look-ahead point, `theta_k - v_k` in the notes, needs the factors that
  its own convention implies: `theta~ = theta_k - alpha beta v_k`. Keras stores that look-ahead
  point in the variable itself (Bengio et al., 2012 reformulation): the gradient Keras receives
  is evaluated at `theta~`, and the course's `theta_k` is `variable - momentum * m`.
- RMSprop: `beta` -> `rho`; Keras puts epsilon inside the root, `lr g / sqrt(s + eps)`, where the
  course writes `alpha g / (sqrt(s) + eps)`.
- Adam: `beta1, beta2` -> `beta_1, beta_2`. Keras folds the bias corrections into the step size,
  `lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)`, which equals the course's
  `alpha m^ / (sqrt(v^) + eps')` with `eps' = eps / sqrt(1 - beta_2^t)` (the "epsilon hat" of
  Kingma & Ba, sec. 2). Erratum: the bias correction divides by `1 - beta^t` at step t, not
  by `1 - beta`; the two agree at t = 1 only. A Keras detail visible at 1e-6 on float64
  variables: `ops.cast(0.999, "float64")` goes through float32, so Keras' `beta^t` uses the
  betas rounded to float32 (`1 - beta_2` is then off by about 1e-5 relative); the moment updates
  themselves use the exact Python floats.
"""

import keras
import numpy as np

A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
B = np.array([1.0, -2.0, 0.5])
THETA0 = np.array([0.8, -0.3, 1.5])
STEPS = 6
TOL = 1e-6


def grad(theta):
    return A @ theta - B


def f32(value):
    # Keras keeps the learning rate in a float32 variable; use the same value in NumPy.
    return float(np.float32(value))


def run_keras(optimizer, steps=STEPS, grad_at=grad, between_steps=None):
    """Iterates of a Keras optimizer on a float64 variable, the start included."""
    variable = keras.Variable(THETA0.copy(), dtype="float64")
    iterates = [THETA0.copy()]
    for k in range(steps):
        if between_steps is not None:
            between_steps(k, optimizer)
        g = grad_at(np.asarray(variable.numpy()))
        optimizer.apply([keras.ops.convert_to_tensor(g, "float64")], [variable])
        iterates.append(np.asarray(variable.numpy()).copy())
    return np.array(iterates)


def test_gradient_descent():
    alpha = f32(0.1)
    theta, expected = THETA0.copy(), [THETA0.copy()]
    for _ in range(STEPS):
        theta = theta - alpha * grad(theta)
        expected.append(theta)
    got = run_keras(keras.optimizers.SGD(0.1))
    np.testing.assert_allclose(got, np.array(expected), atol=TOL, rtol=0)


def course_momentum(alphas, beta, steps=STEPS):
    theta, v, out = THETA0.copy(), np.zeros(3), [THETA0.copy()]
    for k in range(steps):
        v = beta * v + grad(theta)
        theta = theta - alphas[k] * v
        out.append(theta)
    return np.array(out)


def test_momentum():
    alpha, beta = f32(0.1), 0.9
    got = run_keras(keras.optimizers.SGD(0.1, momentum=beta))
    expected = course_momentum([alpha] * STEPS, beta)
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    # Momentum must matter: plain gradient descent is far from these iterates.
    plain = run_keras(keras.optimizers.SGD(0.1))
    assert np.max(np.abs(plain - expected)) > 0.05


def test_momentum_with_changing_learning_rate_follows_the_lr_scaled_velocity():
    beta = 0.9
    alphas = [f32(0.1)] * 3 + [f32(0.02)] * (STEPS - 3)

    def drop_lr(k, optimizer):
        if k == 3:
            optimizer.learning_rate.assign(0.02)

    got = run_keras(keras.optimizers.SGD(0.1, momentum=beta), between_steps=drop_lr)
    # Keras: m <- beta m - alpha_k g; theta <- theta + m (old velocity keeps its old rate).
    theta, m, expected = THETA0.copy(), np.zeros(3), [THETA0.copy()]
    for k in range(STEPS):
        m = beta * m - alphas[k] * grad(theta)
        theta = theta + m
        expected.append(theta)
    np.testing.assert_allclose(got, np.array(expected), atol=TOL, rtol=0)
    # The course's form rescales the whole velocity by the new rate: a different trajectory.
    course = course_momentum(alphas, beta)
    assert np.max(np.abs(course - got)) > 1e-3


def test_nesterov_keras_variable_is_the_course_look_ahead_point():
    alpha, beta = f32(0.1), 0.9
    # The course's rule, with the look-ahead written out: theta~ = theta_k - alpha beta v_k.
    theta, v = THETA0.copy(), np.zeros(3)
    thetas, look_aheads = [theta.copy()], [theta.copy()]
    for _ in range(STEPS):
        look_ahead = theta - alpha * beta * v
        v = beta * v + grad(look_ahead)
        theta = theta - alpha * v
        thetas.append(theta.copy())
        look_aheads.append(theta - alpha * beta * v)
    optimizer = keras.optimizers.SGD(0.1, momentum=beta, nesterov=True)
    got = run_keras(optimizer)
    np.testing.assert_allclose(got, np.array(look_aheads), atol=TOL, rtol=0)
    # Recover the course's theta_k from Keras' state: theta = variable - momentum * m.
    m = np.asarray(optimizer.momentums[0].numpy())
    np.testing.assert_allclose(got[-1] - beta * m, thetas[-1], atol=TOL, rtol=0)
    # Nesterov differs from classical momentum after the first step.
    classical = course_momentum([alpha] * STEPS, beta)
    assert np.max(np.abs(classical[2:] - np.array(thetas)[2:])) > 1e-3


def course_rmsprop(alpha, beta, eps, eps_inside_root):
    theta, s, out = THETA0.copy(), np.zeros(3), [THETA0.copy()]
    for _ in range(STEPS):
        g = grad(theta)
        s = beta * s + (1 - beta) * g**2
        denominator = np.sqrt(s + eps) if eps_inside_root else np.sqrt(s) + eps
        theta = theta - alpha * g / denominator
        out.append(theta)
    return np.array(out)


def test_rmsprop_epsilon_goes_inside_the_root_in_keras():
    alpha, beta = f32(0.01), 0.9
    got = run_keras(keras.optimizers.RMSprop(0.01, rho=beta, epsilon=1e-7))
    np.testing.assert_allclose(
        got, course_rmsprop(alpha, beta, 1e-7, eps_inside_root=True), atol=TOL, rtol=0
    )
    # With a tiny epsilon the placement is invisible at 1e-6 ...
    np.testing.assert_allclose(
        got, course_rmsprop(alpha, beta, 1e-7, eps_inside_root=False), atol=TOL, rtol=0
    )
    # ... with a large one the course's literal form (epsilon outside the root) differs.
    big = run_keras(keras.optimizers.RMSprop(0.01, rho=beta, epsilon=0.1))
    np.testing.assert_allclose(
        big, course_rmsprop(alpha, beta, 0.1, eps_inside_root=True), atol=TOL, rtol=0
    )
    outside = course_rmsprop(alpha, beta, 0.1, eps_inside_root=False)
    assert np.max(np.abs(big - outside)) > 1e-3


def course_adam(alpha, beta1, beta2, eps, bias_correction, keras_epsilon=True):
    """The course's Adam; `bias_correction` is "step" (correct) or "constant" (the erratum)."""
    theta, m, v, out = THETA0.copy(), np.zeros(3), np.zeros(3), [THETA0.copy()]
    for t in range(1, STEPS + 1):
        g = grad(theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        # Keras computes beta**t from the betas rounded to float32 (see the module docstring).
        c1, c2 = (1 - f32(beta1) ** t, 1 - f32(beta2) ** t)
        if bias_correction == "step":
            m_hat, v_hat = m / c1, v / c2
        else:
            m_hat, v_hat = m / (1 - beta1), v / (1 - beta2)
        # Keras' epsilon is added to sqrt(v) before the bias correction: the course's epsilon
        # at step t is eps / sqrt(1 - beta2**t).
        eps_t = eps / np.sqrt(c2) if keras_epsilon else eps
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + eps_t)
        out.append(theta)
    return np.array(out)


def test_adam_matches_course_with_step_dependent_bias_correction():
    alpha, beta1, beta2, eps = f32(0.05), 0.9, 0.999, 1e-7
    got = run_keras(keras.optimizers.Adam(0.05, beta_1=beta1, beta_2=beta2, epsilon=eps))
    expected = course_adam(alpha, beta1, beta2, eps, "step")
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)


def test_adam_erratum_constant_bias_correction_does_not_match():
    alpha, beta1, beta2, eps = f32(0.05), 0.9, 0.999, 1e-7
    got = run_keras(keras.optimizers.Adam(0.05, beta_1=beta1, beta_2=beta2, epsilon=eps))
    wrong = course_adam(alpha, beta1, beta2, eps, "constant")
    # 1 - beta**1 == 1 - beta: the two forms agree on the first step only.
    np.testing.assert_allclose(got[1], wrong[1], atol=TOL, rtol=0)
    assert np.min(np.max(np.abs(got[2:] - wrong[2:]), axis=1)) > 1e-3


def test_adam_epsilon_mapping_is_visible_with_a_large_epsilon():
    alpha, beta1, beta2, eps = f32(0.05), 0.9, 0.999, 0.1
    got = run_keras(keras.optimizers.Adam(0.05, beta_1=beta1, beta_2=beta2, epsilon=eps))
    np.testing.assert_allclose(got, course_adam(alpha, beta1, beta2, eps, "step"), atol=TOL, rtol=0)
    literal = course_adam(alpha, beta1, beta2, eps, "step", keras_epsilon=False)
    assert np.max(np.abs(got - literal)) > 1e-3


def test_adam_in_model_fit_matches_numpy_on_linear_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2))
    y = x @ np.array([[1.5], [-0.5]]) + 0.3
    # float64 weights, so that the comparison is about the update rule, not float32 rounding.
    model = keras.Sequential(
        [keras.Input((2,), dtype="float64"), keras.layers.Dense(1, dtype="float64")]
    )
    w0 = rng.normal(size=(2, 1))
    model.set_weights([w0, np.zeros(1)])
    model.compile(keras.optimizers.Adam(0.1), loss="mse")
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)

    # NumPy Adam on L = mean((x w + b - y)^2), in float64.
    xd, yd = x, y
    theta = np.concatenate([w0.ravel(), [0.0]])
    m, v = np.zeros(3), np.zeros(3)
    for t in range(1, 5):
        residual = xd @ theta[:2, None] + theta[2] - yd
        g = np.concatenate([2 * (xd.T @ residual).ravel() / 8, [2 * residual.mean()]])
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        c1, c2 = 1 - f32(0.9) ** t, 1 - f32(0.999) ** t
        theta -= f32(0.1) * (m / c1) / (np.sqrt(v / c2) + 1e-7 / np.sqrt(c2))
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel.ravel(), theta[:2], atol=1e-6, rtol=0)
    np.testing.assert_allclose(bias, theta[2:], atol=1e-6, rtol=0)
