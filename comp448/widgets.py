"""Loss-weighting visualizer: sliders that redraw the weight maps and losses of slides 13, 14, 16, 17.

    from comp448.widgets import loss_weighting_visualizer
    viz = loss_weighting_visualizer()       # interactive in JupyterLab/Colab, a static figure elsewhere

Four sections, each drawn on a real label image from ``comp448.data.synth_nuclei`` (touching
nuclei) and on a real prediction of it (see ``boost_stages``):

| section | sliders | what is drawn | slide |
|---|---|---|---|
| ``weights`` | w0, sigma, class weights | c_p = cw_p + w0 exp(-(d1+d2)^2 / (2 sigma^2)) and a profile through it | 13 |
| ``focal`` | gamma | focal vs BCE loss over yhat for y = 1 and y = 0; per-pixel focal loss of the prediction | 14 |
| ``tversky`` | alpha, beta | Tversky loss of the thresholded prediction over the threshold (FP vs FN trade-off) | 16 |
| ``boost`` | stage n, normalise | AttentionBoost: prediction yhat_n, weights c_n and c_{n+1} = beta_n c_n | 17 |

Structure (so that an exercise can have students write the pieces):

- pure functions compute each panel's numbers from slider values, no plotting:
  ``example_data``, ``separate_touching``, ``weight_map``, ``focal_curves``, ``tversky_sweep``,
  ``boost_stages``;
- ``draw_*`` functions turn those numbers into a matplotlib figure;
- ``LossWeightingVisualizer`` wires sliders to them. Its ``*_fn`` arguments replace any pure
  function by a student's version with the same signature, e.g.
  ``LossWeightingVisualizer(focal_fn=my_focal_curves)``.

Frontend detection (``has_frontend``): interactive only inside an IPython kernel with ipywidgets
importable and none of these environment variables set: ``COMP448_STATIC`` (any non-empty value
other than ``0``), ``NBGRADER_EXECUTION`` (nbgrader autograding), ``CI``, ``PYTEST_CURRENT_TEST``.
Otherwise every section is drawn once, statically, at the default slider values. Figures are
shown as PNG images rendered here (``render_png``), so they appear whatever matplotlib backend the
kernel was started with (a kernel inheriting ``MPLBACKEND=Agg`` shows no ``plt.show()`` figures).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy import ndimage as ndi

from comp448._checks import check_choice, check_number

# comp448.losses and comp448.targets are imported inside the functions that use them, so that
# ``import comp448.widgets`` (and building a LossWeightingVisualizer from a student's panel
# functions) works where they are hidden, e.g. in the grading sandbox of problem set 5.

STATIC_ENV_FLAGS = ("COMP448_STATIC", "NBGRADER_EXECUTION", "CI", "PYTEST_CURRENT_TEST")
CLASS_WEIGHT_MODES = ("1/frequency", "balanced", "none")
SECTIONS = ("weights", "focal", "tversky", "boost")
DEFAULTS = {
    "weights": dict(w0=10.0, sigma=5.0, class_weights="1/frequency"),
    "focal": dict(gamma=2.0),
    "tversky": dict(alpha=0.5, beta=0.5),
    "boost": dict(stage=1, normalize=False),
}


# =============================================================================== data

def separate_touching(labels: np.ndarray) -> np.ndarray:
    """Remove the seam between touching objects, as U-Net's ground truth has a background line there.

    A pixel of object i is a seam pixel when one of its 4-neighbours belongs to another object
    j != i (j > 0). Seam pixels become background, so touching objects end up separated by a
    2-px gap, and the border term of slide 13 (which lives on background pixels) appears between
    them. Objects touching only background keep all their pixels. ``labels``: integer (H, W).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be a 2D integer array, got {labels.dtype} with shape {labels.shape}")
    cross = ndi.generate_binary_structure(2, 1)
    lab = labels.astype(np.int64)
    big = int(lab.max()) + 1                      # stands for "no object" in the minimum filter
    nb_max = ndi.maximum_filter(lab, footprint=cross, mode="constant", cval=0)       # (H, W)
    nb_min = ndi.minimum_filter(np.where(lab == 0, big, lab), footprint=cross, mode="constant", cval=big)
    seam = (lab > 0) & ((nb_max > lab) | (nb_min < lab))
    return np.where(seam, 0, labels).astype(labels.dtype)


def example_data(size: int = 128, n_objects: int = 14, touching: float = 0.6, seed: int = 0) -> dict:
    """A nuclei image with instance labels (``comp448.data.synth_nuclei``), seams removed.

    Returns ``{"image": float32 (H, W) in [0, 1], "labels": int32 (H, W) with touching objects
    separated by ``separate_touching``, "mask": float32 (H, W) in {0, 1}}``.
    """
    from comp448.data import synth_nuclei
    image, labels = synth_nuclei(size=size, n_objects=n_objects, touching=touching, seed=seed)
    labels = separate_touching(labels)
    return {"image": image, "labels": labels, "mask": (labels > 0).astype(np.float32)}


# =============================================================================== pure panel functions

def weight_map(labels: np.ndarray, w0: float, sigma: float, class_weights: str = "1/frequency") -> dict:
    """Slide 13: cw_p and c_p = cw_p + w0 exp(-(d1(p) + d2(p))^2 / (2 sigma^2)).

    ``class_weights``: ``"1/frequency"`` (``class_weight_map``: inverse pixel frequency, the rarer
    class at 1), ``"balanced"`` (mean weight 1, each class the same total weight) or ``"none"``
    (cw_p = 1). Returns ``{"class_weight": cw (H, W), "weight": c (H, W)}`` (float32).
    Ronneberger, Fischer & Brox, U-Net, MICCAI 2015, Eq. 2.
    """
    from comp448.targets import class_weight_map, unet_weight_map
    check_choice("class_weights", class_weights, CLASS_WEIGHT_MODES)
    if class_weights == "none":
        cw = np.ones(labels.shape, np.float32)
    else:
        cw = class_weight_map(labels, normalize="max" if class_weights == "1/frequency" else "mean")
    fg = labels > 0
    pair = (float(cw[~fg][0]) if (~fg).any() else 1.0, float(cw[fg][0]) if fg.any() else 1.0)
    c = unet_weight_map(labels, w0=w0, sigma=sigma, class_weights=pair)
    return {"class_weight": cw, "weight": c}


def focal_curves(gamma: float, n: int = 201, eps: float = 1e-3) -> dict:
    """Slide 14 over yhat in [eps, 1 - eps]: BCE and focal loss of one pixel, for y = 1 and y = 0.

    focal(y=1) = -(1 - yhat)^gamma log(yhat), focal(y=0) = -yhat^gamma log(1 - yhat); gamma = 0
    is BCE. Computed with ``comp448.losses.focal_loss``/``bce_loss`` on logits log(yhat / (1 - yhat)).
    Returns ``{"p", "bce1", "focal1", "bce0", "focal0"}`` (NumPy float64 arrays of length n).
    Lin, Goyal, Girshick, He & Dollar, "Focal loss for dense object detection", ICCV 2017 / TPAMI 2018.
    """
    from comp448.losses import bce_loss, focal_loss
    check_number("gamma", gamma, lo=0.0)
    p = torch.linspace(eps, 1 - eps, n, dtype=torch.float64)
    z = torch.log(p) - torch.log1p(-p)                                  # logit(p), (n,)
    out = {"p": p.numpy()}
    for y in (1, 0):
        t = torch.full_like(p, float(y))
        out[f"bce{y}"] = bce_loss(z[None], t[None], reduction="none")[0].numpy()
        out[f"focal{y}"] = focal_loss(z[None], t[None], gamma=gamma, reduction="none")[0].numpy()
    return out


def tversky_sweep(prob: np.ndarray, mask: np.ndarray, alpha: float, beta: float,
                  thresholds=None) -> dict:
    """Slide 16 on a real prediction: Tversky loss of the prediction thresholded at each t.

    For each threshold t the hard prediction yhat = [prob >= t] gives TP, FP, FN and
    loss(t) = 1 - TP / (TP + alpha FP + beta FN) (``comp448.losses.tversky_loss`` on logits of
    +-50, eps = 1e-5). Raising beta (the FN penalty) moves the best threshold down: more pixels
    called foreground, fewer false negatives, more false positives. The Dice loss (alpha = beta =
    0.5, slide 15) is returned for reference. Returns ``{"t", "loss", "dice", "fp", "fn", "best_t"}``.
    Salehi, Erdogmus & Gholipour, "Tversky loss function for image segmentation using 3D FCNs", MLMI 2017.
    """
    from comp448.losses import dice_loss, tversky_loss
    for name, v in (("alpha", alpha), ("beta", beta)):
        check_number(name, v, lo=0.0)
    if alpha == 0 and beta == 0:
        raise ValueError("alpha and beta must not both be 0 (the loss would ignore every error)")
    t = np.linspace(0.05, 0.95, 19) if thresholds is None else np.asarray(thresholds, np.float64)
    prob = torch.as_tensor(np.asarray(prob, np.float64))
    y = torch.as_tensor(np.asarray(mask, np.float64))
    hard = (prob[None] >= torch.as_tensor(t)[:, None, None]).double()           # (T, H, W)
    logits = 100.0 * hard - 50.0                                               # sigmoid -> 0 / 1
    target = y.expand_as(hard)
    loss = tversky_loss(logits, target, alpha=alpha, beta=beta, reduction="none").numpy()
    dice = dice_loss(logits, target, reduction="none").numpy()
    fp = (hard * (1 - target)).sum((1, 2)).numpy()
    fn = ((1 - hard) * target).sum((1, 2)).numpy()
    return {"t": t, "loss": loss, "dice": dice, "fp": fp, "fn": fn, "best_t": float(t[int(np.argmin(loss))])}


def _pixel_features(image: np.ndarray) -> np.ndarray:
    """(F, H, W) standardised multi-scale features: intensity, Gaussian blurs, gradient, LoG."""
    img = image.astype(np.float64)
    feats = [img] + [ndi.gaussian_filter(img, s) for s in (1, 2, 4)]
    feats += [ndi.gaussian_gradient_magnitude(img, 1.5), -ndi.gaussian_laplace(img, 2.0)]
    f = np.stack(feats)
    return (f - f.mean((1, 2), keepdims=True)) / (f.std((1, 2), keepdims=True) + 1e-8)


def _fit_stage(x: torch.Tensor, y: torch.Tensor, c: torch.Tensor, iters: int) -> torch.Tensor:
    """Weighted logistic regression: minimise sum_p c_p BCE(y_p, sigmoid(w.x_p + b)); returns logits."""
    from comp448.losses import bce_loss
    w = torch.zeros(x.shape[0] + 1, dtype=x.dtype, requires_grad=True)         # (F + 1,)
    xb = torch.cat([x, torch.ones_like(x[:1])])                                # (F + 1, P)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = bce_loss((w @ xb)[None], y[None], weight=c[None], reduction="sum") / c.sum()
        loss.backward()
        return loss
    opt.step(closure)
    return (w @ xb).detach()                                                   # (P,)


def boost_stages(image: np.ndarray, mask: np.ndarray, n_stages: int = 4, normalize: bool = False,
                 iters: int = 40) -> dict:
    """Slide 17 on a real prediction: AttentionBoost's weights over ``n_stages`` stages.

    Stage n is a pixel classifier (weighted logistic regression on multi-scale image features plus
    the previous stage's logit: a cascade, as AttentionBoost's stages are) trained on this image
    with the loss of slide 17, loss_n = sum_p c_n(p) BCE(y(p), yhat_n(p)); then
    c_{n+1} = beta_n c_n (``comp448.losses.attentionboost_update``), beta_n = 1 -/+ |yhat_n - 0.5|
    where stage n is right/wrong. c_1 = 1. The classifier stands in for a network stage so that
    every stage trains in a fraction of a second; the weight update is the paper's.

    Returns ``{"probs": [yhat_1..yhat_N], "weights": [c_1..c_{N+1}], "dice": [Dice of each stage]}``
    (NumPy (H, W) arrays). Gunesli, Sokmensuer & Gunduz-Demir, AttentionBoost, IEEE TMI 2020.
    """
    from comp448.losses import attentionboost_update
    if not isinstance(n_stages, int) or n_stages < 1:
        raise ValueError(f"n_stages must be an int >= 1, got {n_stages!r}")
    H, W = mask.shape
    feats = torch.as_tensor(_pixel_features(image)).reshape(-1, H * W)         # (F, P)
    y = torch.as_tensor(np.asarray(mask, np.float64)).reshape(-1)              # (P,)
    c = torch.ones_like(y)                                                     # c_1
    probs, weights, dice = [], [c.reshape(H, W).numpy()], []
    prev = torch.zeros_like(y)
    for _ in range(n_stages):
        x = torch.cat([feats, (prev / max(prev.abs().max().item(), 1e-8))[None]])
        logits = _fit_stage(x, y, c, iters)
        p = torch.sigmoid(logits)
        c = attentionboost_update(c[None], p[None], y[None], normalize=normalize)[0]
        hard = (p >= 0.5).double()
        dice.append(float(2 * (hard * y).sum() / (hard.sum() + y.sum()).clamp_min(1)))
        probs.append(p.reshape(H, W).numpy())
        weights.append(c.reshape(H, W).numpy())
        prev = logits
    return {"probs": probs, "weights": weights, "dice": dice}


# =============================================================================== drawing

def _plt():
    import matplotlib
    import matplotlib.pyplot as plt
    return matplotlib, plt


def _outline(ax, labels):
    from skimage.segmentation import find_boundaries
    b = find_boundaries(labels, mode="inner")
    ax.contour(b, levels=[0.5], colors="w", linewidths=0.5)


def draw_weights(data: dict, panel: dict, w0: float, sigma: float, class_weights: str):
    _, plt = _plt()
    c, cw, labels = panel["weight"], panel["class_weight"], data["labels"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].imshow(data["image"], cmap="gray")
    _outline(axes[0], labels)
    axes[0].set_title("image, objects (seams removed)")
    im = axes[1].imshow(c, cmap="magma")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set_title(f"$c_p$: w0={w0:g}, $\\sigma$={sigma:g}, cw: {class_weights}")
    row = int(np.argmax((c - cw).max(1)))                     # the row through the strongest border term
    axes[1].axhline(row, color="c", lw=0.8)
    axes[2].plot(c[row], label="$c_p$")
    axes[2].plot(cw[row], "--", label="$cw_p$")
    axes[2].fill_between(np.arange(c.shape[1]), 0, labels[row] > 0, color="0.85", step="mid",
                         transform=axes[2].get_xaxis_transform(), label="object")
    axes[2].set_title(f"profile along row {row}")
    axes[2].set_xlabel("column")
    axes[2].legend(fontsize=8)
    for ax in axes[:2]:
        ax.axis("off")
    fig.suptitle("slide 13: $c_p = cw_p + w_0 \\exp(-(d_1(p)+d_2(p))^2 / 2\\sigma^2)$", fontsize=10)
    fig.tight_layout()
    return fig


def draw_focal(data: dict, panel: dict, gamma: float, prob: np.ndarray):
    from comp448.losses import bce_loss, focal_loss
    _, plt = _plt()
    p = panel["p"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for y, ax in ((1, axes[0]), (0, axes[1])):
        ax.plot(p, panel[f"bce{y}"], "--", color="0.5", label="BCE ($\\gamma$=0)")
        ax.plot(p, panel[f"focal{y}"], label=f"focal, $\\gamma$={gamma:g}")
        ax.set_ylim(0, 5)
        ax.set_xlabel("$\\hat y_p$")
        ax.set_title(f"one pixel with $y_p$ = {y}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("loss")
    y = data["mask"].astype(np.float64)
    z = torch.as_tensor(np.log(np.clip(prob, 1e-6, 1)) - np.log(np.clip(1 - prob, 1e-6, 1)))[None]
    t = torch.as_tensor(y)[None]
    fl = focal_loss(z, t, gamma=gamma, reduction="none")[0].numpy()
    bl = bce_loss(z, t, reduction="none")[0].numpy()
    easy = ((prob >= 0.5) == (y >= 0.5))
    share_f = fl[easy].sum() / max(fl.sum(), 1e-12)
    share_b = bl[easy].sum() / max(bl.sum(), 1e-12)
    im = axes[2].imshow(fl, cmap="inferno", vmin=0, vmax=max(float(np.percentile(fl, 99.5)), 1e-6))
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    axes[2].set_title(f"focal loss per pixel; correct pixels carry\n{100 * share_f:.0f}% of it "
                      f"(BCE: {100 * share_b:.0f}%)", fontsize=9)
    axes[2].axis("off")
    fig.suptitle("slide 14: $-y(1-\\hat y)^\\gamma\\log\\hat y - (1-y)\\hat y^\\gamma\\log(1-\\hat y)$",
                 fontsize=10)
    fig.tight_layout()
    return fig


def draw_tversky(data: dict, panel: dict, alpha: float, beta: float, prob: np.ndarray):
    _, plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    t = panel["t"]
    axes[0].plot(t, panel["loss"], "o-", ms=3, label=f"Tversky $\\alpha$={alpha:g}, $\\beta$={beta:g}")
    axes[0].plot(t, panel["dice"], "--", color="0.5", label="Dice ($\\alpha=\\beta$=0.5)")
    axes[0].axvline(panel["best_t"], color="C3", lw=0.8)
    axes[0].set_xlabel("threshold t")
    axes[0].set_ylabel("loss of $[\\hat y \\geq t]$")
    axes[0].legend(fontsize=8)
    axes[0].set_title(f"best threshold {panel['best_t']:.2f}")
    axes[1].plot(t, panel["fp"], label="FP pixels")
    axes[1].plot(t, panel["fn"], label="FN pixels")
    axes[1].axvline(panel["best_t"], color="C3", lw=0.8)
    axes[1].set_xlabel("threshold t")
    axes[1].legend(fontsize=8)
    axes[1].set_title("false positives vs false negatives")
    y = data["mask"] > 0.5
    hard = prob >= panel["best_t"]
    rgb = np.zeros(y.shape + (3,))
    rgb[hard & y] = (1, 1, 1)                                   # TP white
    rgb[hard & ~y] = (1, 0.2, 0.2)                              # FP red
    rgb[~hard & y] = (0.2, 0.5, 1)                              # FN blue
    tp, fp, fn = (hard & y).sum(), (hard & ~y).sum(), (~hard & y).sum()
    axes[2].imshow(rgb)
    axes[2].set_title(f"at t={panel['best_t']:.2f}: precision {tp / max(tp + fp, 1):.2f}, "
                      f"recall {tp / max(tp + fn, 1):.2f}\nwhite TP, red FP, blue FN", fontsize=9)
    axes[2].axis("off")
    fig.suptitle("slide 16: $1 - \\sum y\\hat y / (\\sum y\\hat y + \\alpha\\sum \\hat y(1-y)"
                 " + \\beta \\sum y(1-\\hat y))$", fontsize=10)
    fig.tight_layout()
    return fig


def draw_boost(data: dict, panel: dict, stage: int, normalize: bool):
    _, plt = _plt()
    n = stage
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    axes[0].imshow(panel["probs"][n - 1], cmap="gray", vmin=0, vmax=1)
    _outline(axes[0], data["labels"])
    axes[0].set_title(f"$\\hat y_{n}$ (stage {n}), Dice {panel['dice'][n - 1]:.3f}")
    c_n, c_next = panel["weights"][n - 1], panel["weights"][n]
    vmax = max(c_n.max(), c_next.max())
    for ax, c, name in ((axes[1], c_n, f"$c_{n}$ (weights of stage {n}'s loss)"),
                        (axes[2], c_next, f"$c_{n + 1} = \\beta_{n} c_{n}$")):
        im = ax.imshow(c, cmap="viridis", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(name, fontsize=9)
    for ax in axes[:3]:
        ax.axis("off")
    stages = np.arange(1, len(panel["dice"]) + 1)
    axes[3].plot(stages, panel["dice"], "o-")
    axes[3].axvline(n, color="C3", lw=0.8)
    axes[3].set_xticks(stages)
    axes[3].set_xlabel("stage")
    axes[3].set_ylabel("Dice of $[\\hat y_n \\geq 0.5]$")
    axes[3].set_title("normalised $c$" if normalize else "unnormalised $c$ (slide)", fontsize=9)
    fig.suptitle("slide 17: $\\beta_n(p) = 1 \\mp |\\hat y_n(p) - 0.5|$ (correct / wrong), "
                 "$c_{n+1} = \\beta_n c_n$", fontsize=10)
    fig.tight_layout()
    return fig


def render_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (then closed), independent of the matplotlib backend."""
    _, plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


# =============================================================================== frontend

def has_frontend() -> bool:
    """True inside an IPython kernel with ipywidgets, unless an env flag asks for static figures."""
    for flag in STATIC_ENV_FLAGS:
        if os.environ.get(flag, "") not in ("", "0"):
            return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _show_png(png: bytes) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(Image(data=png, format="png"))


@dataclass
class LossWeightingVisualizer:
    """Wires sliders to the pure panel functions and the ``draw_*`` functions.

    ``data``: ``{"image", "labels", "mask"}`` (default ``example_data()``). The ``*_fn``
    arguments replace a pure function (same signature and return keys), e.g. a student's.
    ``n_stages``: AttentionBoost stages. ``render(section, **values)`` draws one section and
    returns the PNG bytes (also kept in ``last_png[section]``); ``widget()`` builds the ipywidgets
    UI (sliders + one output per section); ``show(sections, interactive=None)`` displays one or the
    other.
    """
    data: dict | None = None
    weight_map_fn: Callable = weight_map
    focal_fn: Callable = focal_curves
    tversky_fn: Callable = tversky_sweep
    boost_fn: Callable = boost_stages
    n_stages: int = 4
    last_png: dict = field(default_factory=dict)
    controls: dict = field(default_factory=dict, repr=False)     # section -> {slider name: widget}
    outputs: dict = field(default_factory=dict, repr=False)      # section -> ipywidgets.Output

    def __post_init__(self):
        if self.data is None:
            self.data = example_data()
        for key in ("image", "labels", "mask"):
            if key not in self.data:
                raise ValueError(f"data must have keys 'image', 'labels', 'mask'; missing {key!r}")
        if not isinstance(self.n_stages, int) or self.n_stages < 1:
            raise ValueError(f"n_stages must be an int >= 1, got {self.n_stages!r}")
        self._boost = {}

    def boost(self, normalize: bool = False) -> dict:
        """AttentionBoost stages (cached: the stages do not depend on the other sliders)."""
        if normalize not in self._boost:
            self._boost[normalize] = self.boost_fn(self.data["image"], self.data["mask"],
                                                   n_stages=self.n_stages, normalize=normalize)
        return self._boost[normalize]

    @property
    def prediction(self) -> np.ndarray:
        """The real prediction the focal and Tversky sections use: AttentionBoost's stage 1."""
        return self.boost(False)["probs"][0]

    def figure(self, section: str, **values):
        check_choice("section", section, SECTIONS)
        unknown = set(values) - set(DEFAULTS[section])
        if unknown:
            raise ValueError(f"values: unknown slider(s) {sorted(unknown)} for section {section!r}; "
                             f"expected {sorted(DEFAULTS[section])}")
        v = {**DEFAULTS[section], **values}
        d = self.data
        if section == "weights":
            return draw_weights(d, self.weight_map_fn(d["labels"], v["w0"], v["sigma"], v["class_weights"]), **v)
        if section == "focal":
            return draw_focal(d, self.focal_fn(v["gamma"]), v["gamma"], self.prediction)
        if section == "tversky":
            panel = self.tversky_fn(self.prediction, d["mask"], v["alpha"], v["beta"])
            return draw_tversky(d, panel, v["alpha"], v["beta"], self.prediction)
        stage = v["stage"]
        if not isinstance(stage, (int, np.integer)) or not 1 <= stage <= self.n_stages:
            raise ValueError(f"stage must be an int in [1, {self.n_stages}], got {stage!r}")
        return draw_boost(d, self.boost(bool(v["normalize"])), int(stage), bool(v["normalize"]))

    def render(self, section: str, **values) -> bytes:
        png = render_png(self.figure(section, **values))
        self.last_png[section] = png
        return png

    def static(self, sections=SECTIONS) -> list[bytes]:
        """Draw the sections once at the default values and display the images."""
        pngs = [self.render(s) for s in _sections(sections)]
        for png in pngs:
            _show_png(png)
        return pngs

    def widget(self, sections=SECTIONS):
        import ipywidgets as W
        from IPython.display import Image, display

        style = {"description_width": "initial"}
        common = dict(continuous_update=False, style=style)
        made = {
            "weights": dict(
                w0=W.FloatSlider(value=10.0, min=0.0, max=30.0, step=1.0, description="w0", **common),
                sigma=W.FloatSlider(value=5.0, min=1.0, max=15.0, step=0.5, description="sigma", **common),
                class_weights=W.Dropdown(options=CLASS_WEIGHT_MODES, value="1/frequency",
                                         description="class weights", style=style)),
            "focal": dict(gamma=W.FloatSlider(value=2.0, min=0.0, max=5.0, step=0.25, description="gamma", **common)),
            "tversky": dict(
                alpha=W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha (FP)", **common),
                beta=W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="beta (FN)", **common)),
            "boost": dict(
                stage=W.IntSlider(value=1, min=1, max=self.n_stages, description="stage n", **common),
                normalize=W.Checkbox(value=False, description="normalise c per image")),
        }
        titles = {"weights": "Slide 13: class weights and the U-Net border weight map",
                  "focal": "Slide 14: focal loss", "tversky": "Slide 16: Tversky loss (FP vs FN)",
                  "boost": "Slide 17: AttentionBoost's adaptive pixel weights"}
        boxes = []
        controls = self.controls
        for section in _sections(sections):
            controls[section] = made[section]
            out = W.Output()
            self.outputs[section] = out

            def redraw(change=None, section=section, out=out, ctl=made[section]):
                values = {k: w.value for k, w in ctl.items()}
                with out:
                    out.clear_output(wait=True)
                    try:
                        display(Image(data=self.render(section, **values), format="png"))
                    except (ValueError, TypeError) as err:          # e.g. alpha = beta = 0
                        print(f"cannot draw: {err}")

            for w in controls[section].values():
                w.observe(redraw, names="value")
            redraw()
            boxes.append(W.VBox([W.HTML(f"<b>{titles[section]}</b>"),
                                 W.HBox(list(controls[section].values())), out]))
        return W.VBox(boxes)

    def show(self, sections=SECTIONS, interactive: bool | None = None):
        """Display the widget UI (``interactive=True``) or the static figures (``False``) of
        ``sections`` (one name or a sequence); ``interactive=None`` asks ``has_frontend()``. Returns
        None (so a notebook cell ending in ``viz.show(...)`` prints nothing more)."""
        sections = _sections(sections)
        if interactive is None:
            interactive = has_frontend()
        if interactive:
            from IPython.display import display
            display(self.widget(sections))
        else:
            self.static(sections)


def _sections(sections) -> tuple:
    sections = (sections,) if isinstance(sections, str) else tuple(sections)
    if not sections:
        raise ValueError("sections must name at least one of " + ", ".join(SECTIONS))
    for s in sections:
        check_choice("sections", s, SECTIONS)
    return sections


def loss_weighting_visualizer(data: dict | None = None, sections=SECTIONS, interactive: bool | None = None,
                              **kwargs):
    """Build a ``LossWeightingVisualizer`` (kwargs go to it), display ``sections``, return it."""
    viz = LossWeightingVisualizer(data=data, **kwargs)
    viz.show(sections, interactive=interactive)
    return viz


__all__ = ["separate_touching", "example_data", "weight_map", "focal_curves", "tversky_sweep",
           "boost_stages", "draw_weights", "draw_focal", "draw_tversky", "draw_boost", "render_png",
           "has_frontend", "LossWeightingVisualizer", "loss_weighting_visualizer", "DEFAULTS", "SECTIONS"]
