"""Tversky loss (slide 16).

Slide 16::

    Tversky loss = 1 - sum_p y_p yhat_p / ( sum_p y_p yhat_p
                                            + alpha * sum_p yhat_p (1 - y_p)     <- penalty for FPs
                                            + beta  * sum_p y_p (1 - yhat_p) )   <- penalty for FNs

"Allows giving different levels of importance to false positive and false negative pixels."
Salehi, Erdogmus & Gholipour, "Tversky loss function for image segmentation using 3D fully
convolutional deep networks", MLMI 2017 (arXiv 1706.05721).
"""
from __future__ import annotations

import torch  # noqa: F401  (tensor types in annotations)

from comp448._checks import check_number
from comp448.losses._utils import (check_eps, check_logits_target, check_reduction, reduce_batch,
                                   sigmoid_region_sums)


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5, beta: float = 0.5,
                 eps: float = 1e-5, reduction: str = "mean") -> torch.Tensor:
    """Tversky loss from logits, per image (slide 16). ``alpha`` weights FPs, ``beta`` FNs.

    For each image b, with yhat = sigmoid(z) and sums over all its positions p::

        TP = sum_p y_p yhat_p,  FP = sum_p yhat_p (1 - y_p),  FN = sum_p y_p (1 - yhat_p)
        loss_b = 1 - (TP + eps) / (TP + alpha FP + beta FN + eps)

    Special cases: alpha = beta = 0.5 is the slide-15 Dice loss (exactly so with eps = 0;
    with smoothing, ``tversky_loss(eps=e)`` equals ``dice_loss(eps=2e)``), alpha = beta = 1 is
    the soft Jaccard (IoU) loss. Salehi et al. favour beta > alpha (e.g. 0.3/0.7) to penalise
    false negatives more, i.e. to raise recall.

    The per-image reduction and the eps convention follow ``dice_loss``: empty target with
    empty prediction gives 0, empty target with false positives gives nearly 1 (if alpha > 0).
    Equals MONAI ``TverskyLoss(sigmoid=True, alpha, beta, smooth_nr=eps, smooth_dr=eps,
    batch=False)`` on ``(B, 1, *spatial)`` inputs (MONAI: "alpha: weight of false positives,
    beta: weight of false negatives", the same convention). Beware that some libraries swap
    the two (e.g. Keras before its PR #23333, see reference/libraries.md §3).

    Args:
        logits: raw scores z, ``(B, 1, *spatial)`` or ``(B, *spatial)``, floating point.
        target: y, same shape, values in [0, 1] (soft targets allowed).
        alpha: weight of false positives, >= 0.
        beta: weight of false negatives, >= 0.
        eps: smoothing added to numerator and denominator, >= 0.
        reduction: ``"mean" | "sum" | "none"`` over the batch; ``"none"`` returns shape ``(B,)``.
    """
    target = check_logits_target(logits, target, min_ndim=2)
    check_number("alpha", alpha, lo=0.0)
    check_number("beta", beta, lo=0.0)
    check_eps(eps)
    check_reduction(reduction)
    tp, p_sum, y_sum = sigmoid_region_sums(logits, target)   # (B,) each, over all positions of an image
    fp = p_sum - tp                                       # = sum yhat (1 - y)
    fn = y_sum - tp                                       # = sum y (1 - yhat)
    loss = 1.0 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)
    return reduce_batch(loss, reduction)
