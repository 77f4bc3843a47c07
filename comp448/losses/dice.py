"""Soft Dice losses: the slide's form, the V-Net squared form, and generalised Dice (slides 15, 26).

Slide 15::

    Dice loss = 1 - 2 * sum_p y_p * yhat_p / (sum_p y_p + sum_p yhat_p)

    Dice coefficient = 2TP / (2TP + FP + FN) = 2TP / ((TP + FN) + (TP + FP))
                     = 2TP / (actual P + estimated as P)

"This definition gives equal importance to false positive and false negative pixels."
Sudre, Li, Vercauteren, Ourselin & Cardoso, "Generalised Dice overlap as a deep learning
loss function for highly unbalanced segmentations", DLMIA 2017 (arXiv 1707.03237).

V-Net (slide 26; Milletari, Navab & Ahmadi, 3DV 2016, arXiv 1606.04797) squares the
denominator terms: D = 2 sum_i p_i g_i / (sum_i p_i^2 + sum_i g_i^2).

Conventions shared by ``dice_loss`` and ``generalized_dice_loss``:

- Per image: sums run over every position of one image (all dimensions after the batch
  dimension), the ratio is formed per image, and the B per-image losses are then averaged
  (``reduction="mean"``), summed (``"sum"``) or returned as shape ``(B,)`` (``"none"``).
  This is MONAI's ``batch=False``; smp's DiceLoss instead pools the whole batch.
- Smoothing: ``eps`` (default 1e-5) is added to numerator and denominator, as MONAI's
  ``smooth_nr = smooth_dr``: an empty target with an empty prediction gives loss 0, an empty
  target with false positives gives a loss near 1 (FPs on empty images are penalised).
- Predictions are yhat = sigmoid(logits) (binary) or softmax over channels (generalised).
"""
from __future__ import annotations

import torch

from comp448._checks import check_same_shape, check_tensor
from comp448.losses._utils import (check_eps, check_finite, check_logits_target, check_reduction,
                                   check_unit_interval, reduce_batch, sigmoid_region_sums)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5, squared: bool = False,
              reduction: str = "mean") -> torch.Tensor:
    """Soft Dice loss from logits, per image (slide 15; ``squared=True``: V-Net, slide 26).

    For each image b, with yhat = sigmoid(z) and sums over all its positions p::

        squared=False (slide 15):  loss_b = 1 - (2 sum_p y_p yhat_p + eps) / (sum_p y_p + sum_p yhat_p + eps)
        squared=True  (V-Net):     loss_b = 1 - (2 sum_p y_p yhat_p + eps) / (sum_p y_p^2 + sum_p yhat_p^2 + eps)

    For a binary target sum y^2 = sum y, so the two forms differ only through yhat^2.

    Equals MONAI ``DiceLoss(sigmoid=True, smooth_nr=eps, smooth_dr=eps, batch=False,
    squared_pred=squared)`` on ``(B, 1, *spatial)`` inputs. Differences from MONAI: comp448
    takes logits only (MONAI takes probabilities unless ``sigmoid=True``) and treats all
    non-batch dimensions as one image (a multi-channel sigmoid output is pooled over its
    channels; MONAI gives each channel its own Dice).

    Args:
        logits: raw scores z, ``(B, 1, *spatial)`` or ``(B, *spatial)``, floating point.
        target: y, same shape, values in [0, 1] (soft targets allowed).
        eps: smoothing added to numerator and denominator, >= 0 (see module docstring).
        squared: use the V-Net squared denominator.
        reduction: ``"mean" | "sum" | "none"`` over the batch; ``"none"`` returns shape ``(B,)``.
    """
    target = check_logits_target(logits, target, min_ndim=2)
    check_eps(eps)
    check_reduction(reduction)
    if not isinstance(squared, bool):
        raise TypeError(f"squared must be a bool, got {type(squared).__name__}")
    # per image b, summing over all its positions: (B,) each; squared: yhat^2 and y^2 summed
    inter, p_sum, y_sum = sigmoid_region_sums(logits, target, squared)
    loss = 1.0 - (2.0 * inter + eps) / (p_sum + y_sum + eps)      # (B,)
    return reduce_batch(loss, reduction)


def _check_gdl_target(target: torch.Tensor, logits: torch.Tensor):
    """Return ("onehot", (B, C, *spatial) float) or ("labels", (B, N) int64 labels)."""
    n_classes, spatial = logits.shape[1], logits.shape[2:]
    if target.dtype == torch.bool or target.is_floating_point():  # one-hot / soft, (B, C, *spatial)
        check_same_shape("logits", logits, "target", target)
        check_unit_interval("target", target)
        return "onehot", target.to(logits.dtype)
    if target.is_complex():
        raise TypeError(f"target must be real, got dtype {target.dtype}")
    if target.ndim == logits.ndim and target.shape[1] == 1:
        target = target[:, 0]                             # (B, 1, *spatial) -> (B, *spatial)
    if target.ndim != logits.ndim - 1 or target.shape[0] != logits.shape[0] or target.shape[1:] != spatial:
        raise ValueError(f"target with integer labels must have shape (B, *spatial) = "
                         f"{(logits.shape[0], *spatial)} or (B, 1, *spatial), got {tuple(target.shape)}")
    return "labels", target.flatten(1).long()             # (B, N); range checked by _one_hot


def _one_hot(labels: torch.Tensor, n_classes: int, dtype) -> torch.Tensor:
    """(B, N) integer labels -> (B, C, N) one-hot; labels outside [0, C-1] raise ValueError."""
    def bad_range():
        lo, hi = (int(v) for v in torch.aminmax(labels))
        return ValueError(f"target labels must lie in [0, {n_classes - 1}] (C = {n_classes} channels "
                          f"of logits), got values in [{lo}, {hi}]")

    onehot = torch.zeros(labels.shape[0], n_classes, labels.shape[1], dtype=dtype, device=labels.device)
    if labels.device.type != "cpu":                       # a GPU scatter_ would assert, not raise: check first
        lo, hi = torch.aminmax(labels)
        if int(lo) < 0 or int(hi) >= n_classes:
            raise bad_range()
        return onehot.scatter_(1, labels[:, None], 1.0)
    try:                                                  # on the CPU scatter_ itself rejects out-of-range
        return onehot.scatter_(1, labels[:, None], 1.0)   # labels, so the happy path needs no extra pass
    except (RuntimeError, IndexError):
        raise bad_range() from None


def generalized_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-5,
                          reduction: str = "mean") -> torch.Tensor:
    """Generalised Dice loss (Sudre et al. 2017) from multi-class logits, per image.

    The slide 15 Dice, summed over classes l with weights w_l inside the ratio::

        GDL_b = 1 - (2 sum_l w_l sum_n r_ln p_ln + eps) / (sum_l w_l sum_n (r_ln + p_ln) + eps)
        w_l   = 1 / (sum_n r_ln)^2

    with p = softmax(logits) over channels, r the one-hot target and n the positions of
    image b. The weights are computed from the target only (no gradient flows through them).
    A class absent from the image has w_l = inf; it gets the largest finite weight of that
    image instead (NiftyNet, the Sudre group's reference, and MONAI with ``batch=False``),
    so false positives of an absent class are still penalised. If no class is present at all
    (an all-zero target) every weight is 0 and the loss is 0, as in MONAI.

    Equals MONAI ``GeneralizedDiceLoss(softmax=True, w_type="square", smooth_nr=eps,
    smooth_dr=eps, batch=False)``. NiftyNet differs: it clamps each class denominator at 1
    and returns score 1 for NaN instead of adding eps. Note that with the square weights the
    weighted sums scale like 1/(class volume), so on large images eps = 1e-5 is not
    negligible against them (MONAI behaves the same); pass a smaller eps to approach the
    unsmoothed formula.

    Args:
        logits: raw scores, ``(B, C, *spatial)``, C >= 2, floating point.
        target: either one-hot / soft probabilities of the same shape (floating or bool, values
            in [0, 1]), or integer labels in [0, C-1] of shape ``(B, *spatial)`` or
            ``(B, 1, *spatial)``.
        eps: smoothing added to numerator and denominator, >= 0.
        reduction: ``"mean" | "sum" | "none"`` over the batch; ``"none"`` returns shape ``(B,)``.
    """
    check_tensor("logits", logits, floating=True, min_ndim=3)
    check_tensor("target", target)
    if logits.shape[1] < 2:
        raise ValueError(f"logits must have C >= 2 class channels (softmax over dim 1), "
                         f"got shape {tuple(logits.shape)}")
    check_eps(eps)
    check_reduction(reduction)
    kind, ref = _check_gdl_target(target, logits)
    prob = torch.softmax(logits, dim=1).flatten(2)        # p   (B, C, N)
    if kind == "labels":                                  # (B, N) -> one-hot r (B, C, N)
        ref = _one_hot(ref, prob.shape[1], prob.dtype)
    else:
        ref = ref.flatten(2)                              # (B, C, N)
    inter = (prob * ref).sum(2)                           # (B, C)  sum_n r_ln p_ln
    volume = ref.sum(2)                                   # (B, C)  sum_n r_ln
    union = prob.sum(2) + volume                          # (B, C)  sum_n (r_ln + p_ln)
    with torch.no_grad():
        w = 1.0 / (volume * volume)                       # inf where the class is absent
        absent = torch.isinf(w)
        w[absent] = 0.0
        w = torch.where(absent, w.amax(dim=1, keepdim=True), w)   # largest finite weight of the image
    loss = 1.0 - (2.0 * (w * inter).sum(1) + eps) / ((w * union).sum(1) + eps)   # (B,)
    if not bool(torch.isfinite(loss).all()):              # NaN/inf logits make softmax NaN: checked
        check_finite("logits", logits)                    # here, at no cost on the happy path
    return reduce_batch(loss, reduction)
