"""Whole-image inference for dense (per-pixel) predictors such as U-Nets and FCNs.

A fully convolutional network takes images whose sides are multiples of its total stride.
`pad_to_multiple` extends any image to such a size by mirroring its border, so the result can be
cropped back to the input size. `predict_views` optionally averages the 8 flips and
transpositions of each image (test-time augmentation). `predict_tiled` predicts images too
large for one pass in overlapping tiles and keeps only each tile's centre, the overlap-tile
strategy of the U-Net paper (Ronneberger et al. 2015).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

__all__ = ["DIHEDRAL", "pad_to_multiple", "predict_tiled", "predict_views", "tile_origins"]

# The 8 symmetries of a square grid (the dihedral group D4): whether to swap height and width,
# then which spatial axes to reverse. Each is its own inverse once undone in reverse order.
DIHEDRAL = tuple((swap, axes) for swap in (False, True) for axes in ((), (1,), (2,), (1, 2)))


def pad_to_multiple(images: tf.Tensor, multiple: int) -> tf.Tensor:
    """Pads `[B, H, W, C]` at the bottom and right to multiples of `multiple`, mirroring.

    The image is extended by its mirror image (`a b c | c b a | a b c ...`), repeated as often
    as needed, so any size works, even one smaller than the padding.

    Args:
        images: A batch `[B, H, W, C]`.
        multiple: The multiple both sides are padded to, e.g. a network's total stride.

    Returns:
        The padded batch `[B, H', W', C]`; its top-left `[H, W]` is `images`.
    """
    for axis in (1, 2):
        n = tf.shape(images)[axis]
        target = -(-n // multiple) * multiple
        mirrored = tf.concat([images, tf.reverse(images, [axis])], axis=axis)
        repeats = [1, 1, 1, 1]
        repeats[axis] = -(-target // (2 * n))
        extended = tf.tile(mirrored, repeats)
        images = extended[:, :target] if axis == 1 else extended[:, :, :target]
    return images


def predict_views(model: keras.Model, pixels, tta: bool = False) -> tf.Tensor:
    """The model's per-pixel output `[B, H, W, K]` for pixels whose sizes it takes whole.

    With `tta` (test-time augmentation), the mean of its outputs on the 8 flips and
    transpositions of the images, each mapped back: for images without a preferred orientation
    the 8 views are equally valid and their errors partly cancel.

    Args:
        model: A model from `[B, H, W, C]` to `[B, H, W, K]`.
        pixels: The batch, at sizes the model takes.
        tta: Average the 8 views. Defaults to `False`.

    Returns:
        The output, in inference mode.
    """
    if not tta:
        return model(pixels, training=False)
    total = None
    for swap, axes in DIHEDRAL:
        view = tf.transpose(pixels, [0, 2, 1, 3]) if swap else pixels
        view = tf.reverse(view, axes) if axes else view
        out = model(view, training=False)
        out = tf.reverse(out, axes) if axes else out
        out = tf.transpose(out, [0, 2, 1, 3]) if swap else out
        total = out if total is None else total + out
    return total / float(len(DIHEDRAL))


def tile_origins(length: int, tile: int, overlap: int) -> tuple[list[int], list[int]]:
    """Tile starts along one axis, and where each tile's kept part begins (plus the end).

    Tiles of `tile` pixels start every `tile - overlap` pixels, the last one flush with the end.
    Neighbours share at least `overlap` pixels and split them in the middle, so every kept pixel
    lies at least `overlap // 2` pixels inside its tile (or at the image border).

    Args:
        length: The side to cover, in pixels.
        tile: The tile's side.
        overlap: The least overlap of neighbouring tiles.

    Returns:
        `(starts, cuts)`: tile `i` starts at `starts[i]` and keeps `cuts[i]:cuts[i + 1]`.
    """
    if length <= tile:
        return [0], [0, length]
    step = tile - overlap
    starts = list(range(0, length - tile, step)) + [length - tile]
    cuts = [0] + [(a + tile + b) // 2 for a, b in zip(starts, starts[1:])] + [length]
    return starts, cuts


def predict_tiled(
    model: keras.Model,
    pixels,
    stride: int,
    tile_size: int = 0,
    tile_overlap: int = 0,
    tta: bool = False,
    batch_size: int = 8,
) -> np.ndarray:
    """The per-pixel output `[B, H, W, K]` of images of any size; large images in tiles.

    Images are padded to a multiple of `stride`. When that is larger than `tile_size`, the
    padded image is cut into overlapping tiles whose starts are multiples of the stride (so
    every tile pools on the whole image's grid), each tile is predicted, and only the centres
    are kept. With an overlap of twice the network's receptive-field radius the result equals a
    whole-image pass.

    Args:
        model: A fully convolutional model from `[B, H, W, C]` to `[B, H, W, K]`.
        pixels: The batch `[B, H, W, C]`, as the model takes them (any size).
        stride: The model's total stride: the sides it takes are multiples of it.
        tile_size: The tiles' side, a multiple of `stride`; `0` predicts whole images.
            Defaults to `0`.
        tile_overlap: The least overlap of neighbouring tiles. Defaults to `0`.
        tta: Average the 8 flips and transpositions (`predict_views`). Defaults to `False`.
        batch_size: Tiles per model call. Defaults to `8`.

    Returns:
        The output at the images' own size, as float32 NumPy.
    """
    pixels = tf.cast(pixels, tf.float32)
    height, width = int(pixels.shape[1]), int(pixels.shape[2])
    padded_h, padded_w = -(-height // stride) * stride, -(-width // stride) * stride
    padded = pad_to_multiple(pixels, stride)
    if not tile_size or (padded_h <= tile_size and padded_w <= tile_size):
        out = predict_views(model, padded, tta)
        return keras.ops.convert_to_numpy(out)[:, :height, :width]
    padded = padded.numpy()
    rows, row_cuts = tile_origins(padded_h, tile_size, tile_overlap)
    cols, col_cuts = tile_origins(padded_w, tile_size, tile_overlap)
    tile_h, tile_w = min(tile_size, padded_h), min(tile_size, padded_w)
    out = None
    for i, top in enumerate(rows):
        for j, left in enumerate(cols):
            patch = padded[:, top : top + tile_h, left : left + tile_w]
            probs = np.concatenate(
                [
                    keras.ops.convert_to_numpy(predict_views(model, patch[k : k + batch_size], tta))
                    for k in range(0, len(patch), batch_size)
                ]
            )
            if out is None:
                out = np.zeros((len(padded), padded_h, padded_w, probs.shape[-1]), np.float32)
            r0, r1 = row_cuts[i], row_cuts[i + 1]
            c0, c1 = col_cuts[j], col_cuts[j + 1]
            out[:, r0:r1, c0:c1] = probs[:, r0 - top : r1 - top, c0 - left : c1 - left]
    return out[:, :height, :width]
