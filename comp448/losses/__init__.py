"""Losses of the lecture (slides 12-18, 25-26), computed from logits.

| slide | name | file |
|---|---|---|
| 12-13 | ``bce_loss`` (pixel weights c_p, class weights) | ``bce.py`` |
| 14 | ``focal_loss``, ``focal_loss_grad`` | ``focal.py`` |
| 15, 26 | ``dice_loss`` (slide form, ``squared=True`` = V-Net), ``generalized_dice_loss`` | ``dice.py`` |
| 16 | ``tversky_loss`` | ``tversky.py`` |
| 17 | ``attentionboost_update`` | ``attentionboost.py`` |
| 18, 19, 25 | ``multitask_loss``, ``deep_supervision_loss`` | ``combine.py`` |

Conventions (see each docstring):

- Inputs are logits ``(B, 1, *spatial)`` or ``(B, *spatial)``; targets have the same shape
  and values in [0, 1]. Probabilities are formed stably (log-sigmoid / softplus), never
  ``log(sigmoid(x))``: logits of +-200 give finite losses and gradients.
- Pixel losses (BCE, focal) take a per-pixel ``weight`` (c_p of slide 13, broadcastable)
  and ``reduction="mean" | "sum" | "none"`` over pixels.
- Region losses (Dice, Tversky, generalised Dice) are computed per image over all its
  positions, then reduced over the batch; ``eps`` (1e-5) is added to numerator and
  denominator: empty target + empty prediction -> 0, empty target + false positives -> ~1.
- Bad input raises ``TypeError``/``ValueError`` naming the argument.
"""
from comp448.losses.attentionboost import attentionboost_update
from comp448.losses.bce import bce_loss
from comp448.losses.combine import deep_supervision_loss, multitask_loss
from comp448.losses.dice import dice_loss, generalized_dice_loss
from comp448.losses.focal import focal_loss, focal_loss_grad
from comp448.losses.tversky import tversky_loss

__all__ = [
    "bce_loss", "focal_loss", "focal_loss_grad", "dice_loss", "generalized_dice_loss", "tversky_loss",
    "attentionboost_update", "deep_supervision_loss", "multitask_loss",
]
