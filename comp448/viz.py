"""Plots that people would rather see than read: training curves and predictions next to targets.

Used by the training engine (``curves.png``, ``predictions.png`` in a run's output folder) and by the
notebooks. Every function returns the ``matplotlib.figure.Figure``; with ``path`` it also saves it
(and closes it, so loops that save many figures do not keep them in memory).

Layouts: images are (B, C, H, W) or (B, C, D, H, W) tensors/arrays (a 3-D volume is shown by its
middle slice along D); targets and predictions are (B, 1, ...) probabilities/masks, (B, C, ...)
class probabilities (shown as argmax) or (B, ...) integer labels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch


def _pyplot():
    import matplotlib.pyplot as plt                    # imported on first use: `import comp448.viz` stays cheap
    return plt


def _finish(fig, path):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        _pyplot().close(fig)
    return fig


def plot_curves(history: Sequence[Mapping[str, float]], keys: Sequence[str] | None = None, path=None,
                title: str | None = None):
    """Loss curves (left) and validation metrics (right) against the epoch.

    ``history`` is the engine's list of per-epoch dicts (``"epoch"``, ``"train_loss"``,
    ``"val_loss"``, ``"val_dice"``, ...). ``keys`` restricts the metrics panel (default: every
    ``val_*`` key except the loss).
    """
    if not isinstance(history, Sequence) or not history or not all(isinstance(r, Mapping) for r in history):
        raise ValueError("history must be a non-empty list of per-epoch dicts")
    plt = _pyplot()
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(10, 3.6))

    def series(k):
        pts = [(e, r[k]) for e, r in zip(epochs, history) if k in r and r[k] is not None]
        return zip(*pts) if pts else ((), ())

    for k in ("train_loss", "val_loss"):
        xs, ys = series(k)
        if xs:
            ax_l.plot(xs, ys, marker="o", ms=3, label=k)
    ax_l.set_xlabel("epoch"), ax_l.set_ylabel("loss"), ax_l.set_title("loss"), ax_l.grid(alpha=0.3)
    ax_l.legend()
    all_keys = sorted({k for r in history for k in r})
    if keys is None:
        keys = [k for k in all_keys if k.startswith("val_") and k != "val_loss"]
    unknown = [k for k in keys if k not in all_keys]
    if unknown:
        raise ValueError(f"keys {unknown} are not in the history (available: {all_keys})")
    for k in keys:
        xs, ys = series(k)
        ax_m.plot(xs, ys, marker="o", ms=3, label=k)
    ax_m.set_xlabel("epoch"), ax_m.set_title("validation"), ax_m.grid(alpha=0.3)
    if keys:
        ax_m.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _show_image(img: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) or (C, D, H, W) -> something imshow takes."""
    if img.ndim == 4:                                  # (C, D, H, W): middle slice
        img = img[:, img.shape[1] // 2]
    if img.ndim == 2:
        return img, "gray"
    if img.shape[0] == 3:
        lo, hi = img.min(), img.max()
        return np.clip((img.transpose(1, 2, 0) - lo) / (hi - lo + 1e-8), 0, 1), None
    return img[0], "gray"


def _show_map(m: np.ndarray, spatial_ndim: int) -> np.ndarray:
    """(1, ...) map, (C, ...) class probabilities (argmax) or (...) labels -> 2-D array."""
    if m.ndim == spatial_ndim + 1:
        m = m[0] if m.shape[0] == 1 else m.argmax(0)
    if m.ndim == 3:                                    # 3-D: middle slice
        m = m[m.shape[0] // 2]
    return m


def plot_predictions(images, targets, predictions, n: int = 4, path=None, threshold: float | None = None,
                     titles: Sequence[str] = ("image", "target", "prediction")):
    """A grid: one row per example with the image, the target and the prediction.

    ``threshold`` (e.g. 0.5) binarises the prediction; by default probabilities are shown as a heat map.
    """
    images, targets, predictions = _np(images), _np(targets), _np(predictions)
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be (B, C, H, W) or (B, C, D, H, W), got shape {images.shape}")
    if len(targets) != len(images) or len(predictions) != len(images):
        raise ValueError(f"images, targets and predictions must have the same batch size, got "
                         f"{len(images)}, {len(targets)}, {len(predictions)}")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    plt = _pyplot()
    n = min(n, len(images))
    spatial = images.ndim - 2
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        img, cmap = _show_image(images[i])
        tgt = _show_map(targets[i], spatial)
        pred = _show_map(predictions[i], spatial)
        if threshold is not None:
            pred = pred > threshold
        axes[i, 0].imshow(img, cmap=cmap)
        axes[i, 1].imshow(tgt, cmap="magma", interpolation="nearest")
        axes[i, 2].imshow(pred, cmap="magma", vmin=0 if threshold is None and pred.max() <= 1 else None,
                          vmax=1 if threshold is None and pred.max() <= 1 else None, interpolation="nearest")
        for j, t in enumerate(titles):
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            if i == 0:
                axes[i, j].set_title(t)
    fig.tight_layout()
    return _finish(fig, path)


def plot_throughput(results: Mapping[str, float], path=None, unit: str = "images/s", title: str | None = None):
    """A bar chart of named throughputs (e.g. the plain loop vs the engine's fast path)."""
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict {name: value}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    names, vals = list(results), [float(v) for v in results.values()]
    bars = ax.bar(names, vals, color=["#888888", "#1f77b4", "#2ca02c", "#d62728"][: len(vals)])
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom")
    ax.set_ylabel(unit)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _finish(fig, path)
