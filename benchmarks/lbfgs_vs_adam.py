"""Full-batch second-order methods against first-order ones, on two small problems.

1. A 1-16-1 tanh MLP on 64 points of sin(x), x in [-3, 3]: full-batch MSE after N
   loss-and-gradient evaluations for `LBFGS` (Armijo and strong-Wolfe line searches; every
   line-search evaluation counts), dense `BFGS` (strong Wolfe), `Newton` (Armijo; each of its
   N evaluations also computes the 49 x 49 Hessian) and Keras' Adam (N full-batch steps, its
   learning rate tuned per N over a grid; the best is reported).
2. The curve fit y = a exp(b x) + c on 32 exact points, (a, b, c) = (2, -1.5, 0.5):
   `LevenbergMarquardt`, Gauss-Newton (`damping=0`) and full-batch gradient descent (Keras'
   SGD, learning rate tuned over a grid), from an easy and a harder start.

Run: `python benchmarks/lbfgs_vs_adam.py` (CPU, a minute or two). Not run by the tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from i2dl_keras.optimizers import LBFGS, LevenbergMarquardt  # noqa: E402
from i2dl_keras.optimizers.bfgs import BFGS  # noqa: E402
from i2dl_keras.optimizers.newton import Newton  # noqa: E402

ADAM_RATES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
GD_RATES = (0.01, 0.03, 0.1, 0.3, 1.0)


def full_batch_steps(model, optimizer, x, y, steps):
    """Runs `steps` full-batch steps of a Keras optimizer on the MSE; returns the final MSE."""
    x_t, y_t = tf.constant(x), tf.constant(y)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x_t) - y_t))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    for _ in range(steps):
        step()
    return float(np.mean((keras.ops.convert_to_numpy(model(x)) - y) ** 2))


def mlp_table(budgets=(25, 50, 100, 200), seed=0):
    x = np.linspace(-3, 3, 64, dtype="float32")[:, None]
    y = np.sin(x)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(16, "tanh"), keras.layers.Dense(1)]
    )
    initial = model.get_weights()
    print("1-16-1 tanh MLP on 64 points of sin(x): full-batch MSE after N gradient evaluations")
    print(
        f"{'N':>5} | {'L-BFGS armijo':>13} | {'L-BFGS wolfe':>12} | {'BFGS':>9} | "
        f"{'Newton':>9} | {'Adam (best lr)':>20}"
    )
    print("-" * 86)
    for n in budgets:
        row = []
        for optimizer in (
            LBFGS(max_iterations=10 * n, max_evaluations=n, line_search="armijo"),
            LBFGS(max_iterations=10 * n, max_evaluations=n, line_search="wolfe"),
            BFGS(max_iterations=10 * n, max_evaluations=n),
            Newton(max_iterations=10 * n, max_evaluations=n),
        ):
            model.set_weights(initial)
            optimizer.minimize(model, x, y, loss="mse")
            row.append(float(np.mean((keras.ops.convert_to_numpy(model(x)) - y) ** 2)))
        adam = {}
        for rate in ADAM_RATES:
            model.set_weights(initial)
            adam[rate] = full_batch_steps(model, keras.optimizers.Adam(rate), x, y, n)
        best_rate = min(adam, key=lambda r: adam[r] if np.isfinite(adam[r]) else np.inf)
        adam_text = f"{adam[best_rate]:.3e} (lr={best_rate:g})"
        print(
            f"{n:>5} | {row[0]:>13.3e} | {row[1]:>12.3e} | {row[2]:>9.3e} | {row[3]:>9.3e} | "
            f"{adam_text:>20}"
        )


class ExpCurve(keras.layers.Layer):
    """y = a exp(b x) + c, with (a, b, c) in one float64 weight."""

    def __init__(self, start, **kwargs):
        super().__init__(dtype="float64", **kwargs)
        self.start = start

    def build(self, input_shape):
        self.p = self.add_weight(
            shape=(3,), initializer=keras.initializers.Constant(self.start), name="p"
        )

    def call(self, x):
        return self.p[0] * keras.ops.exp(self.p[1] * x) + self.p[2]


def curve_table(iterations=(3, 5, 10, 20), gd_steps=(100, 1000)):
    truth = np.array([2.0, -1.5, 0.5])
    x = np.linspace(0.0, 2.0, 32)[:, None]
    y = truth[0] * np.exp(truth[1] * x) + truth[2]

    def curve_model(start):
        inputs = keras.Input((1,), dtype="float64")
        return keras.Model(inputs, ExpCurve(start)(inputs))

    print()
    print("Curve fit y = a exp(b x) + c, exact data: MSE and max |parameter error|")
    print("LM = LevenbergMarquardt(damping=1e-3); Gauss-Newton = damping 0; GD = full-batch SGD")
    header = (
        f"{'start':>17} | {'method':>22} | {'Jacobian/grad evals':>19} | {'MSE':>9} | {'error':>9}"
    )
    print(header)
    print("-" * len(header))
    for start in ([1.8, -1.3, 0.4], [1.0, -0.5, 0.0]):
        label = str(tuple(start))
        for name, damping in (("LM", 1e-3), ("Gauss-Newton", 0.0)):
            for n in iterations:
                model = curve_model(start)
                with np.errstate(all="ignore"):
                    result = LevenbergMarquardt(max_iterations=n, damping=damping).minimize(
                        model, x, y
                    )
                error = float(np.max(np.abs(model.get_weights()[0] - truth)))
                evals = result.history["jacobian_evaluations"][-1]
                print(
                    f"{label:>17} | {name + f' ({n} it)':>22} | {evals:>19} | "
                    f"{result.loss:>9.2e} | {error:>9.2e}"
                )
        for n in gd_steps:
            best = None
            for rate in GD_RATES:
                model = curve_model(start)
                loss = full_batch_steps(model, keras.optimizers.SGD(rate), x, y, n)
                error = float(np.max(np.abs(model.get_weights()[0] - truth)))
                if np.isfinite(loss) and (best is None or loss < best[0]):
                    best = (loss, error, rate)
            text = f"GD lr={best[2]:g}"
            print(f"{label:>17} | {text:>22} | {n:>19} | {best[0]:>9.2e} | {best[1]:>9.2e}")


if __name__ == "__main__":
    mlp_table()
    curve_table()
