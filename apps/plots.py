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
    """Images in a grid with a caption above each; grayscale when they have one channel.

    Each image keeps its aspect ratio within a cell of 1.6 x 1.8 inches. All of them are drawn
    on one borderless axes whose data units are inches, which renders far faster than a
    subplot per image.
    """
    cell_width, cell_height, caption_height, margin = 1.6, 1.8, 0.3, 0.05
    title_height = 0.45 if title else 0.0
    rows = max(1, int(np.ceil(len(images) / columns)))
    width, height = cell_width * columns, cell_height * rows + title_height
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    for i, (image, caption) in enumerate(zip(images, captions)):
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        left = (i % columns) * cell_width + margin
        top = title_height + (i // columns) * cell_height + caption_height
        box_width, box_height = cell_width - 2 * margin, cell_height - caption_height - margin
        scale = min(box_width / image.shape[1], box_height / image.shape[0])
        shown_width, shown_height = image.shape[1] * scale, image.shape[0] * scale
        left += (box_width - shown_width) / 2
        ax.imshow(
            image,
            cmap="gray" if image.ndim == 2 else None,
            extent=(left, left + shown_width, top + shown_height, top),
            interpolation="nearest",
        )
        ax.text(left + shown_width / 2, top - 0.04, caption, ha="center", va="bottom", fontsize=8)
    if not len(images):
        ax.text(width / 2, height / 2, "none", ha="center", va="center")
    # Set after `imshow`, which would fit the limits to the last image.
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_aspect("auto")
    if title:
        fig.suptitle(title, y=1 - 0.1 / height, va="top")
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
