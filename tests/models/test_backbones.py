"""Backbones by name: weights files (ImageNet from the cache, offline errors), preprocessing."""

import time

import keras
import numpy as np
import pytest

from i2dl_keras.data import DataError, tfds_source
from i2dl_keras.models import backbones as backbones_module
from i2dl_keras.models import (
    build_backbone,
    fetch_imagenet_weights,
    imagenet_weights_file,
    preprocessing_layers,
)

MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"


def _same_weights(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty Keras cache in tmp_path, and a download host that never answers."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(tfds_source, "host_reachable", lambda host, port, timeout=3.0: False)
    return tmp_path / "keras_home" / "models"


@pytest.mark.parametrize(
    "name, size, alpha, fname, origin_folder, hashed",
    [
        ("mobilenet_v2", 32, 0.35, MOBILENET_FILE, "mobilenet_v2/", False),
        (
            "mobilenet_v2",
            160,
            1.0,
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5",
            "mobilenet_v2/",
            False,
        ),
        (
            "mobilenet_v3_small",
            96,
            0.75,
            "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5",
            "mobilenet_v3/",
            True,
        ),
        ("vgg16", 64, 1.0, VGG16_FILE, "vgg16/", True),
    ],
)
def test_imagenet_weights_file_is_the_one_keras_publishes(
    name, size, alpha, fname, origin_folder, hashed
):
    weights = imagenet_weights_file(name, size, alpha)
    assert weights.fname == fname
    assert weights.origin == GCS + origin_folder + fname
    assert (weights.file_hash is not None) == hashed


@pytest.mark.parametrize(
    "name, alpha, received",
    [
        ("small_cnn", 1.0, "name='small_cnn'"),
        ("mobilenet_v2", 0.6, "alpha=0.6"),
        ("mobilenet_v3_large", 0.35, "alpha=0.35"),
        ("alexnet", 1.0, "name='alexnet'"),
    ],
)
def test_no_imagenet_weights_is_a_value_error(name, alpha, received):
    with pytest.raises(ValueError, match=f"Received: {received}"):
        imagenet_weights_file(name, 224, alpha)


def test_cached_imagenet_file_is_used_without_network(offline, monkeypatch):
    keras.utils.set_random_seed(3)
    stand_in = build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35)
    offline.mkdir(parents=True)
    # The legacy HDF5 format of Keras' own downloads.
    stand_in.save(offline / MOBILENET_FILE)

    def no_network(host, port, timeout=3.0):
        raise AssertionError("a cached file must not need the network")

    monkeypatch.setattr(tfds_source, "host_reachable", no_network)
    assert fetch_imagenet_weights("mobilenet_v2", 32, 0.35) == offline / MOBILENET_FILE
    keras.utils.set_random_seed(4)
    loaded = build_backbone("mobilenet_v2", (32, 32, 3), "imagenet", alpha=0.35)
    assert _same_weights(loaded, stand_in)
    assert loaded.name == "backbone"


@pytest.mark.parametrize("cached", ["nothing", "a corrupt file"])
def test_offline_imagenet_fails_fast_naming_the_file(cached, offline):
    if cached == "a corrupt file":
        offline.mkdir(parents=True)
        (offline / VGG16_FILE).write_bytes(b"half a download")
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        build_backbone("vgg16", (32, 32, 3), "imagenet")
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert "\n" not in message
    assert "storage.googleapis.com does not answer" in message
    assert f"Download {GCS}vgg16/{VGG16_FILE} elsewhere" in message
    assert message.endswith(f"place it as {offline / VGG16_FILE}")
    assert ("does not match its published hash" in message) == (cached == "a corrupt file")


def test_cache_dir_argument_overrides_keras_home(offline, tmp_path):
    with pytest.raises(DataError, match=f"place it as {tmp_path / 'elsewhere' / 'models'}"):
        fetch_imagenet_weights("vgg16", 32, cache_dir=tmp_path / "elsewhere")


def test_weights_files_load_in_both_formats(tmp_path):
    keras.utils.set_random_seed(1)
    written = build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35)
    written.save_weights(tmp_path / "random.weights.h5")
    written.save(tmp_path / "random.h5")  # the format of Keras' ImageNet files
    keras.utils.set_random_seed(2)
    assert not _same_weights(build_backbone("mobilenet_v2", (32, 32, 3), alpha=0.35), written)
    for name in ("random.weights.h5", "random.h5"):
        keras.utils.set_random_seed(2)
        loaded = build_backbone("mobilenet_v2", (32, 32, 3), tmp_path / name, alpha=0.35)
        assert _same_weights(loaded, written), name
    small = build_backbone("small_cnn", (16, 16, 3))
    small.save_weights(tmp_path / "small.weights.h5")
    keras.utils.set_random_seed(5)
    assert _same_weights(
        build_backbone("small_cnn", (16, 16, 3), tmp_path / "small.weights.h5"), small
    )


def test_wrong_or_missing_weights_file_is_a_data_error(tmp_path):
    build_backbone("small_cnn", (16, 16, 3)).save_weights(tmp_path / "small.weights.h5")
    with pytest.raises(DataError, match="small.weights.h5 into the mobilenet_v2 backbone at 32x32"):
        build_backbone("mobilenet_v2", (32, 32, 3), tmp_path / "small.weights.h5", alpha=0.35)
    with pytest.raises(DataError, match="nowhere.weights.h5 does not exist"):
        build_backbone("small_cnn", (16, 16, 3), tmp_path / "nowhere.weights.h5")


def test_efficientnet_imagenet_variance_is_squared_to_the_standard_deviation():
    # Keras' EfficientNetB0 file stores the ImageNet standard deviations as the stem
    # Normalization's variance; "imagenet" weights must give (x / 255 - mean) / std.
    backbone = keras.applications.EfficientNetB0(
        input_shape=(32, 32, 3), include_top=False, weights=None
    )
    norm = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    norm.set_weights([mean, std, np.int64(0)])
    norm.finalize_state()
    backbones_module._undo_efficientnet_variance(backbone)
    stem = keras.Model(backbone.input, norm.output)
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], "float32") * np.ones((1, 32, 32, 1), "float32")
    # (0 - 0.485) / 0.229 = -2.1179, (0.5 - 0.456) / 0.224 = 0.1964, (1 - 0.406) / 0.225 = 2.64
    expected = np.array([-2.117904, 0.196429, 2.64])
    np.testing.assert_allclose(stem(pixels).numpy()[0, 0, 0], expected, atol=1e-4)


@pytest.mark.parametrize(
    "backbone, module",
    [
        ("mobilenet_v2", keras.applications.mobilenet_v2),
        ("resnet50", keras.applications.resnet50),
        ("vgg16", keras.applications.vgg16),
        ("densenet121", keras.applications.densenet),
        ("efficientnet_b0", keras.applications.efficientnet),
        ("mobilenet_v3_small", keras.applications.mobilenet_v3),
    ],
)
def test_preprocessing_layers_match_preprocess_input(backbone, module):
    images = np.random.default_rng(0).uniform(0, 255, (2, 5, 5, 3)).astype("float32")
    x = images
    for layer in preprocessing_layers(backbone):
        x = layer(x)
    expected = module.preprocess_input(images.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(x), expected, rtol=1e-5, atol=1e-3)


def test_small_cnn_backbone_is_the_conv_part_of_small_cnn():
    backbone = build_backbone("small_cnn", (28, 28, 3))
    # 28 -> conv 5x5 -> 24 -> pool -> 12 -> conv 3x3 -> 10 -> pool -> 5; 64 filters.
    assert backbone.output_shape == (None, 5, 5, 64)
    assert [layer.name for layer in backbone.layers if layer.weights] == ["conv1", "conv2"]
    assert preprocessing_layers("small_cnn")[0].scale == pytest.approx(1 / 255)


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"name": "mobilenet_v2", "input_shape": (16, 16, 3)}, r"input_shape=\(16, 16, 3\)"),
        ({"name": "small_cnn", "input_shape": (16, 16, 1)}, r"input_shape=\(16, 16, 1\)"),
        ({"name": "mobilenet_v2", "input_shape": (32, 32, 3), "alpha": 0}, "alpha=0"),
        ({"name": "inception", "input_shape": (32, 32, 3)}, "name='inception'"),
    ],
)
def test_invalid_arguments(kwargs, received):
    with pytest.raises(ValueError, match=f"Received: {received}"):
        build_backbone(**kwargs)
