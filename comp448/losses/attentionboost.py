"""AttentionBoost's adaptive per-pixel loss weights (slide 17).

Slide 17 ("Adaptive loss adjustment")::

    beta_n(p) = 1 - |yhat_n(p) - 0.5|   if yhat_n(p) is correct
                1 + |yhat_n(p) - 0.5|   if yhat_n(p) is incorrect

    c_{n+1}(p) = beta_n(p) * c_n(p)

    loss_n = sum_{I in D_tr} sum_{p in I} c_n(p) * loss(y(p), yhat_n(p))

where yhat_n(p) is the foreground probability of stage n at pixel p. Each stage of the
multi-stage network is pushed to correct the mistakes of the previous ones: a confidently
correct pixel halves its weight (beta = 0.5), a confidently wrong pixel gets 1.5x.

Gunesli, Sokmensuer & Gunduz-Demir, "AttentionBoost: Learning what to attend for gland
segmentation in histopathological images by boosting fully convolutional networks",
IEEE Transactions on Medical Imaging, 2020.

Typical use (c_1 = 1 or class weights; ``bce_loss``/``focal_loss`` take c_n as ``weight``)::

    c = torch.ones_like(target)
    total = 0
    for logits_n in stage_logits:                   # e.g. outputs["stage1"], outputs["stage2"], ...
        total = total + bce_loss(logits_n, target, weight=c)
        c = attentionboost_update(c, torch.sigmoid(logits_n), target)
"""
from __future__ import annotations

import torch

from comp448._checks import check_same_shape, check_tensor
from comp448.losses._utils import check_unit_interval, check_weight


def attentionboost_update(weights: torch.Tensor, probs: torch.Tensor, target: torch.Tensor,
                          normalize: bool = False) -> torch.Tensor:
    """c_{n+1} = beta_n * c_n of slide 17, computed without gradient.

    beta_n(p) = 1 - |yhat_n(p) - 0.5| where stage n is correct on p, 1 + |yhat_n(p) - 0.5|
    where it is wrong; so beta is in [0.5, 1.5] and c_{n+1} = c_1 * prod_{k<=n} beta_k.

    Design choices (the paper's code is not public; reference/papers.md §5):

    - "Correct" means the thresholded prediction agrees with the target:
      ``(probs >= 0.5) == (target >= 0.5)``. At yhat = 0.5 both branches give beta = 1, so
      the tie rule does not matter. Soft targets are thresholded at 0.5.
    - No gradient: the weights are constants for the next stage's loss, as in boosting
      (computed under ``torch.no_grad()``; the result does not require grad even if ``probs``
      does). Backpropagating through beta would let a stage lower its weighted loss by
      changing the previous stage's confidence.
    - No renormalisation by default (the slide has none), so the total weight of an image
      drifts over the stages. ``normalize=True`` rescales c_{n+1} per image so that its sum
      equals the sum of c_n (AdaBoost-style: only the distribution over pixels changes).
    - c_1 is the caller's choice (ones, or class weights from ``comp448.targets``).

    Args:
        weights: c_n, non-negative, broadcastable to ``target.shape`` (e.g. a scalar-like
            ``torch.ones(1)`` for the first stage, or a ``(B, 1, *spatial)`` map).
        probs: yhat_n = sigmoid(stage-n logits), same shape as ``target``, values in [0, 1]
            (probabilities, not logits).
        target: y, ``(B, 1, *spatial)`` or ``(B, *spatial)``, values in [0, 1].
        normalize: keep each image's total weight (see above).

    Returns:
        c_{n+1}, shape of ``target``, dtype of ``probs``, no grad.
    """
    check_tensor("probs", probs, floating=True, min_ndim=2)
    check_tensor("target", target, min_ndim=2)
    check_same_shape("probs", probs, "target", target)
    check_unit_interval("probs", probs)
    check_unit_interval("target", target)
    check_weight(weights, target.shape, name="weights")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
    with torch.no_grad():
        probs = probs.detach()
        c = weights.detach().to(probs.dtype).expand(target.shape)       # c_n  (B, 1, *spatial)
        margin = (probs - 0.5).abs()                                    # |yhat - 0.5| in [0, 0.5]
        correct = (probs >= 0.5) == (target >= 0.5)
        beta = torch.where(correct, 1.0 - margin, 1.0 + margin)         # in [0.5, 1.5]
        c_next = beta * c                                               # c_{n+1}
        if normalize:                                                   # per image: sum c_{n+1} = sum c_n
            dims = tuple(range(1, c_next.ndim))
            old, new = c.sum(dims, keepdim=True), c_next.sum(dims, keepdim=True)   # (B, 1, ...)
            c_next = c_next * torch.where(new > 0, old / new, torch.ones_like(new))
    return c_next
