"""Pictures of a run: training curves, confusion matrix, misclassified test digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
# Figures drawn straight to files: pyplot (0.4 s to import) manages windows, which a run never opens.
from matplotlib.figure import Figure

from digitkit.files import atomic_path


def _save(fig: Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def training_curves(history: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [h["loss"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["accuracy"] for h in history], "o-", label="train (augmented)")
    if all("val_loss" in h for h in history):
        ax_loss.plot(epochs, [h["val_loss"] for h in history], "o-", label="validation")
        ax_acc.plot(epochs, [h["val_accuracy"] for h in history], "o-", label="validation")
    ax_loss.set(title="Loss", xlabel="epoch")
    ax_acc.set(title="Accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def confusion_matrix_figure(matrix: np.ndarray, class_names, path: Path) -> None:
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    # Log colour scale: the diagonal is ~1000, the interesting mistakes are 0..10.
    shown = ax.imshow(np.log1p(matrix), cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if len(class_names[0]) > 1 else 0)
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test set)")
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > matrix.max() / 4 else "black")
    fig.colorbar(shown, ax=ax, label="log(1 + count)")
    _save(fig, path)


def misclassified_grid(images, labels, probs, class_names, path: Path, limit: int = 36) -> None:
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:limit]  # most confident mistakes first
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    # One mosaic in one axes: a subplot per digit costs a second of drawing for 36 digits.
    size, gap, caption = images.shape[1], 6, 16
    cell_w, cell_h = size + gap, size + gap + caption
    mosaic = np.zeros((rows * cell_h, cols * cell_w), np.float32)
    width = cols * 1.6
    fig = Figure(figsize=(width, width * mosaic.shape[0] / mosaic.shape[1] + 0.5))
    ax = fig.subplots()
    for k, i in enumerate(wrong):
        top, left = (k // cols) * cell_h + caption, (k % cols) * cell_w
        mosaic[top : top + size, left : left + size] = images[i]
        ax.text(left + size / 2, top - 2, f"#{i}: {class_names[labels[i]]}→{class_names[pred[i]]}\n"
                f"{probs[i, pred[i]]:.0%}", ha="center", va="bottom", fontsize=8)
    ax.imshow(mosaic, cmap="gray_r", interpolation="nearest")
    ax.axis("off")
    ax.set_title(f"Misclassified test images ({len(np.flatnonzero(pred != labels))} in all; true→predicted)")
    _save(fig, path)
