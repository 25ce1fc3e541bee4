"""Pretrained `keras.applications` backbones by name, with their ImageNet weights and preprocessing.

`build_backbone("mobilenet_v2", (160, 160, 3), weights="imagenet")` is the network without its
classifier. ImageNet weights are fetched into the Keras cache with `keras.utils.get_file`, but
only after a quick check that their host answers, so that offline the error comes in seconds
and names the file to place in the cache. `preprocessing_layers(name)` does what the backbone's
own `preprocess_input` does to 0-255 RGB pixels, with standard Keras layers that save and load
anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from i2dl_keras.data import tfds_source
from i2dl_keras.data.errors import DataError
from i2dl_keras.models.small_cnn import small_cnn

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "WeightsFile",
    "build_backbone",
    "fetch_imagenet_weights",
    "imagenet_weights_file",
    "keras_cache_dir",
    "preprocessing_layers",
]


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How a backbone is built and which preprocessing its weights expect.

    Attributes:
        application: The `keras.applications` builder, or `None` for `small_cnn`.
        preprocess: Keras' preprocessing mode for 0-255 RGB: `"tf"` (scale to [-1, 1]),
            `"caffe"` (RGB to BGR, subtract the ImageNet mean), `"torch"` (scale to [0, 1],
            normalise by the ImageNet mean and standard deviation), `"builtin"` (the network
            rescales inside itself) or `"unit"` (scale to [0, 1]).
        has_alpha: Whether the network takes a width multiplier `alpha`.
        min_size: The smallest input side in pixels.
    """

    application: Callable | None
    preprocess: str
    has_alpha: bool = False
    min_size: int = 32


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(keras.applications.MobileNetV2, "tf", has_alpha=True),
    "mobilenet_v3_small": BackboneSpec(
        keras.applications.MobileNetV3Small, "builtin", has_alpha=True
    ),
    "mobilenet_v3_large": BackboneSpec(
        keras.applications.MobileNetV3Large, "builtin", has_alpha=True
    ),
    "efficientnet_b0": BackboneSpec(keras.applications.EfficientNetB0, "builtin"),
    "efficientnet_v2_b0": BackboneSpec(keras.applications.EfficientNetV2B0, "builtin"),
    "resnet50": BackboneSpec(keras.applications.ResNet50, "caffe"),
    "vgg16": BackboneSpec(keras.applications.VGG16, "caffe"),
    "densenet121": BackboneSpec(keras.applications.DenseNet121, "torch"),
    # The convolutional part of `small_cnn`: two valid convolutions and poolings need 12 pixels.
    "small_cnn": BackboneSpec(None, "unit", min_size=12),
}
SMALL_CNN_WIDTH = 32

# keras.applications' ImageNet statistics (imagenet_utils.preprocess_input).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

# Where keras.applications publishes its weights without the top classifier, and their hashes.
_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
_FIXED_FILES = {
    "efficientnet_b0": (
        "https://storage.googleapis.com/keras-applications/",
        "efficientnetb0_notop.h5",
        "50bc09e76180e00e4465e1a485ddc09d",
    ),
    "efficientnet_v2_b0": (
        _GCS + "efficientnet_v2/",
        "efficientnetv2-b0_notop.h5",
        "893217f2bb855e2983157299931e43ff",
    ),
    "resnet50": (
        _GCS + "resnet/",
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "vgg16": (
        _GCS + "vgg16/",
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "densenet121": (
        _GCS + "densenet/",
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "30ee3e1110167f948a6b9946edeeb738",
    ),
}
_MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_V2_SIZES = (96, 128, 160, 192, 224)
_MOBILENET_V3_HASHES = {
    ("small", 0.75): "ebdb5cc8e0b497cd13a7c275d475c819",
    ("small", 1.0): "d3e8ec802a04aa4fc771ee12a9a9b836",
    ("large", 0.75): "40af19a13ebea4e2ee0c676887f69a2e",
    ("large", 1.0): "07fb09a5933dd0c8eaafa16978110389",
}


def _check_name(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(
            f"Unknown backbone: expected one of {', '.join(BACKBONES)}. Received: name={name!r}"
        )
    return BACKBONES[name]


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """A published weights file: its name in the cache, where it comes from, its hash.

    Attributes:
        fname: The file name, as `keras.utils.get_file` caches it under `models/`.
        origin: The download URL.
        file_hash: Its published MD5 (32 hex digits) or SHA-256 (64), or `None` if none is
            published.
    """

    fname: str
    origin: str
    file_hash: str | None


def imagenet_weights_file(name: str, image_size: int, alpha: float = 1.0) -> WeightsFile:
    """The ImageNet weights file (without the classifier) that Keras publishes for a backbone.

    The same file `keras.applications` would fetch for `weights="imagenet"`, `include_top=False`:
    MobileNetV2 has one per input size 96, 128, 160, 192 and 224 (other sizes use the 224 one)
    and per `alpha`; the others have one file.

    Args:
        name: A key of `BACKBONES`.
        image_size: The square input size in pixels.
        alpha: The width multiplier of the MobileNets. Defaults to `1.0`.

    Returns:
        The `WeightsFile`.

    Raises:
        ValueError: If there are no ImageNet weights for this backbone (`small_cnn`) or this
            `alpha`.
    """
    spec = _check_name(name)
    if spec.application is None:
        raise ValueError(
            f"There are no ImageNet weights for {name}: train it from random weights or load a "
            f"weights file. Received: name={name!r}"
        )
    if name == "mobilenet_v2":
        if float(alpha) not in _MOBILENET_V2_ALPHAS:
            raise ValueError(
                f"ImageNet weights of mobilenet_v2 exist for alpha "
                f"{', '.join(map(str, _MOBILENET_V2_ALPHAS))}. Received: alpha={alpha}"
            )
        rows = image_size if image_size in _MOBILENET_V2_SIZES else 224
        fname = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
        return WeightsFile(fname, _GCS + "mobilenet_v2/" + fname, None)
    if name.startswith("mobilenet_v3_"):
        kind = name.rsplit("_", 1)[1]
        file_hash = _MOBILENET_V3_HASHES.get((kind, float(alpha)))
        if file_hash is None:
            raise ValueError(
                f"ImageNet weights of {name} exist for alpha 0.75 and 1.0. Received: alpha={alpha}"
            )
        fname = f"weights_mobilenet_v3_{kind}_224_{float(alpha)}_float_no_top_v2.h5"
        return WeightsFile(fname, _GCS + "mobilenet_v3/" + fname, file_hash)
    folder, fname, file_hash = _FIXED_FILES[name]
    return WeightsFile(fname, folder + fname, file_hash)


def keras_cache_dir() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, else `~/.keras` (weights go in its `models/`)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def _file_matches(path: Path, file_hash: str) -> bool:
    digest = hashlib.sha256() if len(file_hash) == 64 else hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == file_hash


def fetch_imagenet_weights(
    name: str,
    image_size: int,
    alpha: float = 1.0,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = 3.0,
) -> Path:
    """Returns the cached ImageNet weights file of a backbone, downloading it if needed.

    A cached file (with the published hash, where there is one) is used without the network.
    Otherwise the file is downloaded with `keras.utils.get_file` once its host has answered
    within `timeout` seconds; offline, this fails at once instead of after Keras' retries.

    Args:
        name: A key of `BACKBONES`.
        image_size: The square input size in pixels.
        alpha: The width multiplier of the MobileNets. Defaults to `1.0`.
        cache_dir: The Keras cache folder; the file lands in its `models/` subfolder. Defaults
            to `None` (`keras_cache_dir()`: `$KERAS_HOME`, else `~/.keras`).
        timeout: Seconds to wait for the download host. Defaults to `3.0`.

    Returns:
        The path of the weights file.

    Raises:
        ValueError: If there are no ImageNet weights for this backbone or `alpha`.
        DataError: If the file is not cached (or fails its hash) and cannot be downloaded; the
            message names the URL and the path to place the file at.
    """
    weights = imagenet_weights_file(name, image_size, alpha)
    root = Path(cache_dir).expanduser() if cache_dir is not None else keras_cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not os.access(root, os.W_OK):
        # Where keras.utils.get_file turns when the cache folder is not writable.
        root = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"
    target = root / "models" / weights.fname
    stale = False
    if target.is_file():
        if weights.file_hash is None or _file_matches(target, weights.file_hash):
            return target
        stale = True
    url = urllib.parse.urlsplit(weights.origin)
    port = url.port or (443 if url.scheme == "https" else 80)
    problem = f"{url.hostname} does not answer (offline?)"
    if tfds_source.host_reachable(url.hostname, port, timeout):
        try:
            path = keras.utils.get_file(
                weights.fname,
                weights.origin,
                cache_dir=str(root),
                cache_subdir="models",
                file_hash=weights.file_hash,
            )
            return Path(path)
        except Exception as err:  # Keras raises a bare Exception for every network error
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            problem = f"the download failed ({first})"
    cache = (
        f"the cached {target} does not match its published hash"
        if stale
        else f"it is not in the Keras cache ({target.parent}/)"
    )
    raise DataError(
        f"Cannot fetch the ImageNet weights of {name}: {problem}, and {cache}. Download "
        f"{weights.origin} elsewhere and place it as {target}"
    )


def _small_cnn_backbone(input_shape: tuple[int, int, int]) -> keras.Model:
    net = small_cnn(input_shape, num_classes=2, width=SMALL_CNN_WIDTH, dropout=0.0)
    # Its convolutional part: everything before it flattens the feature map.
    end = next(layer for layer in net.layers if isinstance(layer, keras.layers.Flatten))
    return keras.Model(net.input, end.input)


def _undo_efficientnet_variance(backbone: keras.Model) -> None:
    """Makes an EfficientNet (V1) given the ImageNet file by path normalise as with "imagenet".

    Keras' file stores the ImageNet standard deviations as the stem `Normalization`'s variance,
    and for `weights="imagenet"` only adds a `Rescaling` by `1 / sqrt(std)` after it (see
    tensorflow/tensorflow#49930); squaring the stored values gives the same `(x - mean) / std`.
    """
    norm = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance, count = norm.get_weights()
    norm.set_weights([mean, np.square(variance), count])
    norm.finalize_state()


def build_backbone(
    name: str,
    input_shape: Sequence[int],
    weights: str | os.PathLike | None = None,
    alpha: float = 1.0,
    cache_dir: str | os.PathLike | None = None,
    model_name: str = "backbone",
) -> keras.Model:
    """Builds a backbone by name: the network without its classifier, weights loaded.

    The output is the last feature map (no pooling). The model takes what
    `preprocessing_layers(name)` gives it, not raw pixels.

    Args:
        name: A key of `BACKBONES`: `"mobilenet_v2"`, `"mobilenet_v3_small"`,
            `"mobilenet_v3_large"`, `"efficientnet_b0"`, `"efficientnet_v2_b0"`, `"resnet50"`,
            `"vgg16"`, `"densenet121"` or `"small_cnn"` (the convolutional part of
            `i2dl_keras.models.small_cnn`, for small images and offline work).
        input_shape: `(height, width, 3)`, each side at least the backbone's `min_size`.
        weights: `None` (random), `"imagenet"` (via `fetch_imagenet_weights`), or the path of
            a `.h5` / `.weights.h5` file of this backbone's weights. Defaults to `None`.
        alpha: The width multiplier of the MobileNets. Defaults to `1.0`.
        cache_dir: The Keras cache folder for ImageNet weights. Defaults to `None`
            (`$KERAS_HOME`, else `~/.keras`).
        model_name: The returned model's name. Defaults to `"backbone"`.

    Returns:
        An uncompiled `keras.Model`.

    Raises:
        ValueError: For an unknown name, a bad input shape or `alpha` without ImageNet weights.
        DataError: If the weights cannot be fetched, the file does not exist, or it does not
            fit this backbone.

    Example:

    >>> backbone = i2dl_keras.models.build_backbone("mobilenet_v2", (96, 96, 3), alpha=0.35)
    >>> backbone.output_shape
    (None, 3, 3, 1280)
    """
    spec = _check_name(name)
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] != 3 or min(shape[:2]) < spec.min_size:
        raise ValueError(
            f"`input_shape` must be (height, width, 3) with sides of at least {spec.min_size} "
            f"pixels for {name}. Received: input_shape={shape}"
        )
    if spec.has_alpha and not alpha > 0:
        raise ValueError(f"`alpha` must be positive. Received: alpha={alpha}")
    imagenet = isinstance(weights, str) and weights == "imagenet"
    if imagenet:
        path = fetch_imagenet_weights(name, shape[0], alpha, cache_dir)
    elif weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise DataError(f"The weights file {path} does not exist. Received: weights={weights}")
    else:
        path = None
    try:
        if spec.application is None:
            backbone = _small_cnn_backbone(shape)
            if path is not None:
                backbone.load_weights(path)
        else:
            kwargs = {"alpha": alpha} if spec.has_alpha else {}
            backbone = spec.application(
                input_shape=shape,
                include_top=False,
                weights=str(path) if path is not None else None,
                **kwargs,
            )
    except (ValueError, OSError, KeyError) as err:
        if path is None:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"Cannot load {path} into the {name} backbone at {shape[0]}x{shape[1]}"
            + (f" with alpha {alpha}" if spec.has_alpha else "")
            + f" ({first}): pass weights saved from the same backbone"
        ) from None
    if imagenet and name == "efficientnet_b0":
        _undo_efficientnet_variance(backbone)
    # Renamed afterwards: EfficientNetV2 reads its architecture from its `name` argument.
    backbone.name = model_name
    return backbone


def preprocessing_layers(name: str) -> list[keras.layers.Layer]:
    """Standard Keras layers that do what the backbone's `preprocess_input` does to 0-255 RGB.

    Built from `Rescaling`, `Normalization` and, for the caffe mode's RGB-to-BGR swap and mean
    subtraction, a frozen 3x3 `Dense`, rather than a `Lambda`, so that a model holding them
    saves and loads anywhere. Backbones that rescale inside themselves get none.

    Args:
        name: A key of `BACKBONES`.

    Returns:
        The layers to apply in order (new ones at every call), the first named `"preprocess"`.

    Raises:
        ValueError: For an unknown name.

    Example:

    >>> [layer.name for layer in i2dl_keras.models.preprocessing_layers("mobilenet_v2")]
    ['preprocess']
    """
    mode = _check_name(name).preprocess
    if mode == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")]
    if mode == "unit":
        return [keras.layers.Rescaling(1 / 255.0, name="preprocess")]
    if mode == "torch":
        return [
            keras.layers.Normalization(
                mean=[255.0 * m for m in _TORCH_MEAN],
                variance=[(255.0 * s) ** 2 for s in _TORCH_STD],
                name="preprocess",
            )
        ]
    if mode == "caffe":
        swap = np.eye(3, dtype=np.float32)[::-1]
        return [
            keras.layers.Dense(
                3,
                kernel_initializer=keras.initializers.Constant(swap),
                bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]),
                trainable=False,
                name="preprocess",
            )
        ]
    return []
