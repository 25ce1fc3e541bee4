"""Every CNN builder's tiny model reloads in a fresh process; three export as SavedModels."""

import numpy as np

from i2dl_keras.models.alexnet import alexnet
from i2dl_keras.models.fcn import fcn
from i2dl_keras.models.inception_net import inception_net
from i2dl_keras.models.lenet5 import lenet5
from i2dl_keras.models.resnet import resnet
from i2dl_keras.models.unet import unet
from i2dl_keras.models.vgg import vgg
from i2dl_keras.testing import run_export_test, run_model_saving_test


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


_TINY = {
    "lenet5": lambda: (lenet5(width_multiplier=0.5), _x(2, 32, 32, 1)),
    "alexnet": lambda: (
        alexnet(input_shape=(67, 67, 3), num_classes=3, width_multiplier=1 / 16,
                use_batch_norm=True),
        _x(2, 67, 67, 3),
    ),
    "vgg11": lambda: (vgg(11, input_shape=(32, 32, 3), num_classes=3, width_multiplier=1 / 32),
                      _x(2, 32, 32, 3)),
    # Bottleneck blocks, projection and identity shortcuts, batch norm moving statistics.
    "resnet": lambda: (
        resnet(blocks_per_stage=(2, 1), input_shape=(None, None, 3), num_classes=3,
               base_filters=2, bottleneck=True, stem="cifar"),
        _x(2, 16, 16, 3),
    ),
    "inception_net": lambda: (
        inception_net(input_shape=(32, 32, 3), num_classes=3, width_multiplier=1 / 16),
        _x(2, 32, 32, 3),
    ),
    "fcn": lambda: (fcn(num_classes=3, base_filters=2, head_filters=8, head_kernel_size=3),
                    _x(2, 64, 96, 3)),
    "unet": lambda: (unet(num_classes=3, depth=2, base_filters=2, use_batch_norm=True,
                          upsampling="bilinear"), _x(2, 16, 16, 1)),
}  # fmt: skip


def test_tiny_models_reload_in_a_fresh_process():
    models = {name: build() for name, build in _TINY.items()}
    for model, _ in models.values():
        # Move the batch norm statistics off their initial values, so reloading must keep them.
        for w in model.non_trainable_weights:
            if "moving_" in w.path:
                w.assign(w.numpy() + 0.25)
    run_model_saving_test(models, atol=1e-5)


def test_export_serves_the_same_numbers():
    for name in ("lenet5", "fcn", "resnet"):
        model, x = _TINY[name]()
        run_export_test(model, x, atol=1e-5)
