"""Input checks and reductions shared by the loss modules (private).

Layouts used throughout ``comp448.losses``:

- ``logits``: raw scores, ``(B, 1, *spatial)`` or ``(B, *spatial)``, floating point.
- ``target``: same shape as ``logits``, values in [0, 1]. Floating targets may be soft;
  bool and integer targets (0/1 masks) are accepted and cast to the logits' dtype.
- ``weight``: the per-pixel c_p of slide 13, any non-negative real tensor that broadcasts
  to ``target.shape`` (e.g. ``(B, 1, H, W)``, ``(1, 1, H, W)`` or ``(H, W)``).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from comp448._checks import check_choice, check_same_shape, check_tensor

REDUCTIONS = ("mean", "sum", "none")


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise ValueError if a floating tensor holds NaN or +-inf (one aminmax pass)."""
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach())  # NaN propagates; an inf shows up as lo or hi
    lo, hi = float(lo), float(hi)
    if lo != lo or hi != hi:
        raise ValueError(f"{name} must be finite, got NaN")
    if lo == float("-inf") or hi == float("inf"):
        raise ValueError(f"{name} must be finite, got inf")


def check_unit_interval(name: str, x: torch.Tensor) -> None:
    """Raise ValueError if ``x`` holds NaN or values outside [0, 1] (one pass over ``x``)."""
    if x.numel() == 0 or x.dtype == torch.bool:
        return
    lo, hi = torch.aminmax(x.detach())  # NaN propagates into both
    lo, hi = float(lo), float(hi)
    if lo != lo or hi != hi:
        raise ValueError(f"{name} contains NaN")
    if lo < 0 or hi > 1:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo:g}, {hi:g}]")


def check_logits_target(logits, target, *, min_ndim: int = 2) -> torch.Tensor:
    """Validate a (logits, target) pair of one binary task; return ``target`` as logits' dtype."""
    check_tensor("logits", logits, floating=True, min_ndim=min_ndim)
    check_tensor("target", target)
    if target.is_complex():
        raise TypeError(f"target must be a real tensor, got dtype {target.dtype}")
    check_same_shape("logits", logits, "target", target)
    check_finite("logits", logits)
    check_unit_interval("target", target)
    if target.dtype != logits.dtype:
        target = target.to(logits.dtype)
    return target


def check_weight(weight, shape: torch.Size, name: str = "weight") -> torch.Tensor:
    """Validate a per-pixel weight map c_p: real, finite, >= 0, broadcastable to ``shape``."""
    check_tensor(name, weight)
    if weight.is_complex() or weight.dtype == torch.bool:
        raise TypeError(f"{name} must be a real-valued tensor, got dtype {weight.dtype}")
    try:
        out = torch.broadcast_shapes(weight.shape, shape)
    except RuntimeError:
        out = None
    if out != tuple(shape):
        raise ValueError(f"{name} must broadcast to the target shape {tuple(shape)}, "
                         f"got shape {tuple(weight.shape)}")
    if weight.is_floating_point():
        check_finite(name, weight)
    if weight.numel() and float(weight.detach().min()) < 0:
        raise ValueError(f"{name} must be non-negative, got minimum {float(weight.detach().min()):g}")
    return weight


def reduce_pixels(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """'mean' over every element, 'sum' over every element, 'none' unchanged."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def reduce_batch(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Region losses: ``loss`` has shape (B,); 'mean'/'sum' over the batch, 'none' keeps (B,)."""
    return reduce_pixels(loss, reduction)


def check_reduction(reduction) -> None:
    check_choice("reduction", reduction, REDUCTIONS)


def check_eps(eps) -> None:
    from comp448._checks import check_number
    check_number("eps", eps, lo=0.0)


class _SigmoidStats(torch.autograd.Function):
    """Per-image sums (sum y p, sum p or sum p^2) of p = sigmoid(z), with a fused backward.

    The region losses are functions of these (B,) sums only, so the backward through the
    (B, N) pixels is one closed form: dz = sigmoid'(z) * (g_I * y + g_P * dP/dp), with
    dP/dp = 1 (sum p) or 2p (sum p^2). Autograd handles the tiny (B,) formula on top.
    """

    @staticmethod
    def forward(ctx, logits, target, squared):
        prob = torch.sigmoid(logits).flatten(1)            # (B, N)
        y = target.flatten(1)                              # (B, N)
        inter = (prob * y).sum(1)                          # (B,)  sum_p y_p yhat_p
        psum = (prob * prob).sum(1) if squared else prob.sum(1)
        ctx.save_for_backward(prob, y)
        ctx.squared, ctx.shape = squared, logits.shape
        return inter, psum

    @staticmethod
    @once_differentiable
    def backward(ctx, g_inter, g_psum):
        prob, y = ctx.saved_tensors
        grad = y * g_inter[:, None]                        # d/dp of g_I * sum y p
        if ctx.squared:
            grad.addcmul_(prob, 2.0 * g_psum[:, None])     # + g_P * 2p
        else:
            grad.add_(g_psum[:, None])                     # + g_P * 1
        grad = torch.ops.aten.sigmoid_backward(grad, prob)  # * p (1 - p)
        return grad.view(ctx.shape), None, None


def sigmoid_region_sums(logits: torch.Tensor, target: torch.Tensor, squared: bool = False):
    """(sum_p y_p yhat_p, sum_p yhat_p [or yhat_p^2], sum_p y_p [or y_p^2]) per image, each (B,)."""
    y_sum = (target * target).flatten(1).sum(1) if squared else target.flatten(1).sum(1)
    if target.requires_grad:                               # rare: plain autograd through the target too
        prob = torch.sigmoid(logits).flatten(1)
        inter = (prob * target.flatten(1)).sum(1)
        psum = (prob * prob).sum(1) if squared else prob.sum(1)
        return inter, psum, y_sum
    inter, psum = _SigmoidStats.apply(logits, target, squared)
    return inter, psum, y_sum
