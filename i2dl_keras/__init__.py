"""i2dl_keras: the Introduction to Deep Learning course as Keras 3 components.

Importing the package registers every component with Keras' serialization registry, so a
`.keras` file saved from any of them loads with `keras.saving.load_model` and no
`custom_objects`.
"""

__version__ = "0.1.0"

from i2dl_keras import (  # noqa: E402
    callbacks,
    classic,
    diagnostics,
    graph,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    utils,
    visualization,
)

__all__ = [
    "__version__",
    "callbacks",
    "classic",
    "diagnostics",
    "graph",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "utils",
    "visualization",
]
