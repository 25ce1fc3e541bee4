"""i2dl_keras.optimizers: decoupled weight decay, layerwise rates and full-batch optimizers.

`DecoupledWeightDecay` wraps any Keras optimizer for `model.compile`; `LayerwiseAdam` is Adam
with a learning-rate factor per variable (discriminative fine-tuning); `Newton`, `BFGS`, `LBFGS`
and `LevenbergMarquardt` train small models on the full batch through their `minimize` method
and return an `OptimizationResult` (they use TensorFlow inside, so they need the TensorFlow
backend).

The course's first-order rules are Keras' own optimizers; `tests/optimizers/
test_course_update_rules.py` pins them to the course's formulas. How the symbols map:

- Gradient descent `theta -= alpha * grad`: `keras.optimizers.SGD(learning_rate=alpha)`.
- Momentum (`v = beta v + grad; theta -= alpha v`): `SGD(alpha, momentum=beta)`. Keras stores
  `m = -alpha v`, so with a learning rate that changes during training the old velocity keeps
  the old rate.
- Nesterov: `SGD(alpha, momentum=beta, nesterov=True)`. Keras' variable holds the course's
  look-ahead point `theta_k - alpha beta v_k` (the notes write `theta_k - v_k`), and the gradient
  is taken there; the course's `theta_k` is `variable - beta * m`.
- RMSprop: `RMSprop(alpha, rho=beta, epsilon=eps)`, but Keras divides by `sqrt(s + eps)`, the
  course by `sqrt(s) + eps`.
- Adam: `Adam(alpha, beta_1, beta_2, epsilon=eps)`. Keras adds epsilon before the bias
  correction, which equals the course's rule with `eps / sqrt(1 - beta_2**t)`. Erratum: the bias
  correction divides by `1 - beta**t` at step t, not by `1 - beta`.
- Weight decay `theta -= alpha grad + lambda theta` (erratum: not `lambda theta^2`):
  `DecoupledWeightDecay(optimizer, weight_decay=lambda)`.
"""

from i2dl_keras.optimizers.bfgs import BFGS
from i2dl_keras.optimizers.decoupled_weight_decay import DecoupledWeightDecay
from i2dl_keras.optimizers.layerwise_adam import LayerwiseAdam
from i2dl_keras.optimizers.lbfgs import LBFGS
from i2dl_keras.optimizers.levenberg_marquardt import LevenbergMarquardt
from i2dl_keras.optimizers.newton import Newton
from i2dl_keras.optimizers.optimization_result import OptimizationResult

__all__ = [
    "BFGS",
    "LBFGS",
    "DecoupledWeightDecay",
    "LayerwiseAdam",
    "LevenbergMarquardt",
    "Newton",
    "OptimizationResult",
]
