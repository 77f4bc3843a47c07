"""Binary cross entropy and its pixel-weighted form (slides 12-13).

Slide 12 (foreground/background classification)::

    loss = sum_{I in D_tr} sum_{p in I} loss(y_p, yhat_p)
    loss(y_p, yhat_p) = -y_p * log(yhat_p) - (1 - y_p) * log(1 - yhat_p)

Slide 13 (weighted loss functions)::

    loss = sum_{I in D_tr} sum_{p in I} c_p * loss(y_p, yhat_p)
    c_p = cw_p + w0 * exp(-[d1(p) + d2(p)]^2 / (2 sigma^2))      (U-Net weight map)

with yhat_p = sigmoid(z_p) and z_p the network's logit. Ronneberger, Fischer & Brox,
"U-Net: Convolutional networks for biomedical image segmentation", MICCAI 2015.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from comp448._checks import check_number
from comp448.losses._utils import check_logits_target, check_reduction, check_weight, reduce_pixels


def class_weight_tensor(target: torch.Tensor, class_weights) -> torch.Tensor:
    """c_p = w_bg * (1 - y_p) + w_fg * y_p for ``class_weights=(w_bg, w_fg)``."""
    if not isinstance(class_weights, (tuple, list)) or len(class_weights) != 2:
        raise ValueError(f"class_weights must be a pair (w_background, w_foreground), got {class_weights!r}")
    w_bg, w_fg = class_weights
    check_number("class_weights[0]", w_bg, lo=0.0)
    check_number("class_weights[1]", w_fg, lo=0.0)
    return w_bg + (w_fg - w_bg) * target


def bce_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
             reduction: str = "mean", *, class_weights: tuple[float, float] | None = None) -> torch.Tensor:
    """Binary cross entropy from logits, optionally pixel-weighted (slides 12-13).

    Per pixel (slide 12), with yhat_p = sigmoid(z_p)::

        loss(y_p, yhat_p) = -y_p * log(yhat_p) - (1 - y_p) * log(1 - yhat_p)
                          = softplus(z_p) - y_p * z_p            (how it is computed)

    The right-hand form is the log-sigmoid identity log(yhat) = -softplus(-z),
    log(1 - yhat) = -softplus(z) (``F.binary_cross_entropy_with_logits``); it never forms
    log(sigmoid(z)), so logits of +-200 give a finite loss and a finite gradient
    (sigmoid(z) - y). Soft targets y_p in [0, 1] are allowed.

    Weighted form (slide 13): ``loss_p * c_p`` where c_p is the product of

    - ``weight``: a per-pixel map broadcastable to ``target`` (e.g. the U-Net map of
      ``comp448.targets.unet_weight_map``, or ``comp448.targets.class_weight_map(mask)``
      for the class-frequency weights cw_p), and
    - ``class_weights=(w_bg, w_fg)``: fixed class weights, c_p = w_bg (1 - y_p) + w_fg y_p
      (linear in y_p, so soft targets get the interpolated weight).

    Either, both or neither may be given. Unlike ``pos_weight`` of
    ``torch.nn.BCEWithLogitsLoss`` (MONAI ``DiceCELoss(weight=...)`` for one channel),
    which scales only the positive log-term, both terms of the slide's c_p * loss are scaled.

    Args:
        logits: raw scores z, ``(B, 1, *spatial)`` or ``(B, *spatial)``, floating point.
        target: y, same shape, values in [0, 1] (bool/integer 0/1 masks are cast).
        weight: c_p, non-negative, broadcastable to ``target.shape``.
        reduction: ``"mean"`` = sum_p c_p loss_p / (number of pixels) (the weights are NOT
            renormalised, as in ``torch.nn.BCEWithLogitsLoss(weight=...)``), ``"sum"`` = the
            slide's double sum over the batch, ``"none"`` = per-pixel losses, shape of ``target``.
        class_weights: optional ``(w_background, w_foreground)``, both >= 0.

    Returns:
        A scalar tensor, or a tensor shaped like ``target`` for ``reduction="none"``.
    """
    target = check_logits_target(logits, target, min_ndim=1)
    check_reduction(reduction)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B, 1, *spatial)
    if class_weights is not None:
        loss = loss * class_weight_tensor(target, class_weights)
    if weight is not None:
        loss = loss * check_weight(weight, target.shape).to(loss.dtype)
    return reduce_pixels(loss, reduction)
