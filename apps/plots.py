"""The pictures the apps save next to their results.

Figures are built with matplotlib's object API (`matplotlib.figure.Figure`), not `pyplot`: no
backend is chosen or changed, nothing is shown, and a notebook displays a returned figure inline.
Each function returns its figure and, given a `path`, also writes it there as a PNG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def _finish(fig: Figure, path: Path | None) -> Figure:
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def image_file_figure(path: Path) -> Figure:
    """A figure showing a saved PNG as it is (for runs loaded from disk)."""
    from matplotlib.image import imread

    pixels = imread(path)
    height, width = pixels.shape[:2]
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(pixels)
    ax.axis("off")
    return fig


def training_curves(
    history: Mapping[str, Sequence[float]],
    path: Path | None = None,
    title: str = "",
    boundaries: Sequence[int] = (),
) -> Figure:
    """One panel per metric, training and validation together; vertical lines at `boundaries`."""
    names = [k for k in history if not k.startswith("val_") and k not in ("learning_rate", "lr")]
    if not names:
        names = list(history)
    fig = Figure(figsize=(4.5 * len(names), 3.5))
    axes = fig.subplots(1, len(names), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(history[name]) + 1)
        ax.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        for b in boundaries:
            ax.axvline(b + 0.5, color="grey", linestyle="--")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title} training curves".strip())
    return _finish(fig, path)


def confusion_matrix_plot(
    matrix: np.ndarray, class_names: Sequence[str], path: Path | None = None, title: str = ""
) -> Figure:
    """A confusion matrix with counts in the cells; rows are true classes."""
    n = len(class_names)
    fig = Figure(figsize=(1 + 0.55 * n, 1 + 0.5 * n))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 12 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            color = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title or "confusion matrix")
    return _finish(fig, path)


def image_grid(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    path: Path | None = None,
    title: str = "",
    columns: int = 8,
) -> Figure:
    """Images in a grid with a caption under each; grayscale when they have one channel."""
    count = max(1, len(images))
    rows = int(np.ceil(count / columns))
    fig = Figure(figsize=(1.6 * columns, 1.8 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, caption in zip(axes.ravel(), images, captions):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        ax.set_title(caption, fontsize=8)
    if not len(images):
        axes[0, 0].text(0.5, 0.5, "none", ha="center", va="center")
    fig.suptitle(title)
    return _finish(fig, path)
