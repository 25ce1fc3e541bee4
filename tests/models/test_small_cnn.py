"""small_cnn: the digit recognizer's default network."""

import numpy as np
import pytest

from i2dl_keras.models import small_cnn
from i2dl_keras.testing import run_export_test, run_model_saving_test


def test_parameter_count_by_hand():
    model = small_cnn((28, 28, 1), num_classes=10, width=32)
    conv1 = 5 * 5 * 1 * 32 + 32  # 24x24x32, pooled to 12x12
    conv2 = 3 * 3 * 32 * 64 + 64  # 10x10x64, pooled to 5x5
    dense = 5 * 5 * 64 * 10 + 10
    assert model.count_params() == conv1 + conv2 + dense == 35338
    assert model.output_shape == (None, 10)
    probs = model(np.random.default_rng(0).random((2, 28, 28, 1), dtype=np.float32))
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, atol=1e-6)


def test_smallest_input_and_bad_arguments():
    assert small_cnn((12, 12, 1)).output_shape == (None, 10)
    cases = [
        (dict(input_shape=(11, 11, 1)), "Received: input_shape=(11, 11, 1)"),
        (dict(input_shape=(28, 28)), "Received: input_shape=(28, 28)"),
        (dict(num_classes=1), "Received: num_classes=1"),
        (dict(width=0), "Received: width=0"),
        (dict(dropout=1.0), "Received: dropout=1.0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            small_cnn(**kwargs)


def test_saves_and_exports():
    model = small_cnn((16, 16, 1), num_classes=4, width=4)
    x = np.random.default_rng(1).random((3, 16, 16, 1), dtype=np.float32)
    run_model_saving_test(model, x)
    run_export_test(model, x)
