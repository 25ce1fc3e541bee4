"""i2dl_keras.optimizers: decoupled weight decay and the course's full-batch optimizers.

`DecoupledWeightDecay` wraps any Keras optimizer for `model.compile`; `LBFGS` and
`LevenbergMarquardt` train small models on the full batch through their `minimize` method and
return an `OptimizationResult`. The course's first-order rules (SGD, momentum, Nesterov, RMSprop,
Adam) are Keras' own optimizers; `tests/optimizers/test_course_update_rules.py` pins them to the
course's formulas.
"""

from i2dl_keras.optimizers.decoupled_weight_decay import DecoupledWeightDecay
from i2dl_keras.optimizers.lbfgs import LBFGS
from i2dl_keras.optimizers.levenberg_marquardt import LevenbergMarquardt
from i2dl_keras.optimizers.optimization_result import OptimizationResult

__all__ = ["LBFGS", "DecoupledWeightDecay", "LevenbergMarquardt", "OptimizationResult"]
