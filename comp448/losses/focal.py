"""Binary focal loss and its closed-form gradient (slide 14).

Slide 14::

    loss(y_p, yhat_p) = -y_p * (1 - yhat_p)^gamma * log(yhat_p)
                        - (1 - y_p) * yhat_p^gamma * log(1 - yhat_p)

"Larger values of the focusing parameter gamma reduce the weights of easy-to-learn pixels
more"; gamma = 0 is binary cross entropy (slide 12). yhat_p = sigmoid(z_p).

Lin, Goyal, Girshick, He & Dollar, "Focal loss for dense object detection", ICCV 2017 /
TPAMI 2018 (arXiv 1708.02002).

How it is computed (stable from logits, never log(sigmoid(z)))::

    l              = log(1 + exp(-|z|))          (softplus(-|z|), in [0, log 2])
    log yhat       = min(z, 0) - l               (= logsigmoid(z))
    log(1 - yhat)  = min(-z, 0) - l              (= logsigmoid(-z))
    yhat^gamma     = exp(gamma * log yhat),   (1 - yhat)^gamma = exp(gamma * log(1 - yhat))

so logits of +-200 give a finite loss and a finite gradient in float32 and float64. The
backward pass is the closed form of ``focal_loss_grad`` (one fused autograd op), which makes
forward + backward faster than MONAI's ``FocalLoss`` (benchmarks/bench_losses.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from comp448._checks import check_number
from comp448.losses._utils import check_logits_target, check_reduction, check_weight, reduce_pixels


def _check_gamma_alpha(gamma, alpha) -> None:
    check_number("gamma", gamma, lo=0.0)
    if alpha is not None:
        check_number("alpha", alpha, lo=0.0, hi=1.0)


def _term_weights(target, alpha, weight):
    """Coefficients of the positive and negative log-terms: c * a1 * y and c * a0 * (1 - y)."""
    pos = target if alpha is None else alpha * target              # a1 y
    neg = torch.sub(1.0, target)                                   # 1 - y
    if alpha is not None:
        neg.mul_(1.0 - alpha)                                      # a0 (1 - y)
    if weight is not None:                                         # c_p (slide 13)
        pos, neg = pos * weight, neg.mul_(weight)                  # weight broadcasts to y's shape
    return pos, neg


def _log_sigmoids(z: torch.Tensor):
    """(log sigmoid(z), log sigmoid(-z)) sharing one softplus(-|z|)."""
    l = F.softplus(z.abs().neg_())                    # log(1 + e^{-|z|}), in [0, log 2]
    log_p = torch.clamp(z, max=0).sub_(l)              # min(z, 0) - l  = log yhat
    log_q = torch.clamp(z, min=0).add_(l).neg_()       # min(-z, 0) - l = log(1 - yhat)
    return log_p, log_q


def _powers(log_p, log_q, gamma):
    """(yhat^gamma, (1-yhat)^gamma) as exp(gamma * log); (None, None) for gamma = 0."""
    if gamma == 0:
        return None, None
    return torch.mul(log_p, gamma).exp_(), torch.mul(log_q, gamma).exp_()


def _focal_from(log_p, log_q, e_p, e_q, pos, neg):
    """-(pos * (1-yhat)^g * log yhat + neg * yhat^g * log(1-yhat)), elementwise."""
    t1 = pos * log_p if e_q is None else (pos * e_q).mul_(log_p)
    t0 = neg * log_q if e_p is None else (neg * e_p).mul_(log_q)
    return t1.add_(t0).neg_()


def _focal_grad_from(log_p, log_q, e_p, e_q, pos, neg, gamma):
    """pos * g1 + neg * g0 from the log-sigmoids and powers (see ``focal_loss_grad``)."""
    p, q = torch.exp(log_p), torch.exp(log_q)         # q = sigmoid(-z), accurate where p ~ 1
    g1 = (p * log_p).mul_(gamma).sub_(q)               # y = 1: (1-p)^g (g p log p - q)  <= 0
    g0 = q.mul_(log_q).mul_(-gamma).add_(p)            # y = 0: p^g (p - g q log q)      >= 0
    if gamma != 0:
        g1.mul_(e_q)
        g0.mul_(e_p)
    return g1.mul_(pos).add_(g0.mul_(neg))


class _FocalFn(torch.autograd.Function):
    """Focal loss (elementwise, then reduced) whose backward is the closed form g."""

    @staticmethod
    def forward(ctx, logits, pos, neg, gamma, reduction):
        log_p, log_q = _log_sigmoids(logits)
        e_p, e_q = _powers(log_p, log_q, gamma)
        ctx.save_for_backward(log_p, log_q, e_p, e_q, pos, neg)
        ctx.gamma, ctx.reduction = gamma, reduction
        return reduce_pixels(_focal_from(log_p, log_q, e_p, e_q, pos, neg), reduction)

    @staticmethod
    @once_differentiable  # double backward raises instead of silently missing terms
    def backward(ctx, grad_out):
        log_p, log_q, e_p, e_q, pos, neg = ctx.saved_tensors
        grad = _focal_grad_from(log_p, log_q, e_p, e_q, pos, neg, ctx.gamma)
        if ctx.reduction == "mean":
            grad.mul_(grad_out / grad.numel())
        else:  # "sum": scalar grad_out; "none": elementwise grad_out
            grad.mul_(grad_out)
        return grad, None, None, None, None


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float | None = None,
               weight: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Binary focal loss from logits (slide 14), optionally alpha-balanced and pixel-weighted.

    Per pixel, with yhat = sigmoid(z)::

        loss_p = c_p * [ -a1 * y * (1 - yhat)^gamma * log(yhat)
                         - a0 * (1 - y) * yhat^gamma * log(1 - yhat) ]

    with a1 = a0 = 1 when ``alpha is None`` (the slide's form) and a1 = alpha, a0 = 1 - alpha
    otherwise (Lin et al.'s alpha-balanced form: alpha_t = alpha for positives, 1 - alpha for
    negatives), and c_p the per-pixel ``weight`` of slide 13 (1 if not given).

    Conventions:

    - gamma = 0 gives BCE (``bce_loss``) exactly; gamma = 2 is the usual choice.
    - Soft targets y in [0, 1]: the loss is the slide's two-term form, linear in y. MONAI's
      ``FocalLoss`` (sigmoid) instead multiplies BCE by (1 - p_t)^gamma with
      p_t = sigmoid(z (2y - 1)); both agree for y in {0, 1}. comp448 keeps the slide's form
      so that ``focal_loss_grad``'s y g1 + (1 - y) g0 is its exact derivative.
    - alpha conventions differ between libraries (see reference/libraries.md §2.4): MONAI's
      scalar alpha (sigmoid) and torchvision's ``sigmoid_focal_loss`` weight positives by
      alpha and negatives by 1 - alpha, as here; but torchvision's default is alpha = 0.25
      (comp448 and MONAI: no alpha), MONAI's ``use_softmax=True`` gives class 0 the weight
      1 - alpha, and MONAI's per-class *sequence* alpha weights positives only (negatives x1).
    - ``reduction="mean"`` divides the weighted sum by the number of pixels (weights are not
      renormalised); ``"sum"`` is the slide's plain double sum (MONAI's ``"sum"`` first
      averages over spatial dims); ``"none"`` returns per-pixel losses shaped like ``target``.
    - The backward pass is ``focal_loss_grad`` (times c_p and the reduction's factor) in one
      fused op; if ``target`` or ``weight`` requires grad, plain autograd is used instead.
      Double backward (create_graph=True) is not supported by the fused op and raises.

    Args:
        logits: raw scores z, ``(B, 1, *spatial)`` or ``(B, *spatial)``, floating point.
        target: y, same shape, values in [0, 1] (bool/integer 0/1 masks are cast).
        gamma: focusing parameter, >= 0.
        alpha: None, or the positive-class weight in [0, 1].
        weight: per-pixel c_p, non-negative, broadcastable to ``target``.
        reduction: ``"mean" | "sum" | "none"``.
    """
    target = check_logits_target(logits, target, min_ndim=1)
    _check_gamma_alpha(gamma, alpha)
    check_reduction(reduction)
    if weight is not None:
        weight = check_weight(weight, target.shape).to(logits.dtype)
    gamma = float(gamma)
    pos, neg = _term_weights(target, alpha, weight)                  # (B, 1, *spatial) each
    if target.requires_grad or (weight is not None and weight.requires_grad):
        log_p, log_q = F.logsigmoid(logits), F.logsigmoid(-logits)  # plain autograd path
        e_p, e_q = _powers(log_p, log_q, gamma)
        return reduce_pixels(_focal_from(log_p, log_q, e_p, e_q, pos, neg), reduction)
    return _FocalFn.apply(logits, pos, neg, gamma, reduction)


def focal_loss_grad(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
                    alpha: float | None = None) -> torch.Tensor:
    """Closed-form d(focal loss)/d(logit), elementwise and unreduced (slide 14).

    With p = sigmoid(z) (Lin et al., App. B; derivation in reference/papers.md §4.2)::

        y = 1:  dFL/dz = g1 = (1 - p)^gamma * (gamma * p * log p + p - 1)        (<= 0)
        y = 0:  dFL/dz = g0 = p^gamma * (p - gamma * (1 - p) * log(1 - p))     (>= 0)
        soft y: dFL/dz = a1 * y * g1 + a0 * (1 - y) * g0

    (a1 = alpha, a0 = 1 - alpha when ``alpha`` is given, else 1). gamma = 0 gives p - y, the
    BCE gradient. This is the derivative of ``focal_loss(z, y, gamma, alpha, reduction="none")``
    with respect to each logit, so the autograd gradient of ``focal_loss(..., reduction="sum")``
    equals this tensor. Computed from logits with the log-sigmoid identities, finite for +-200.

    Args:
        logits: z, any shape, floating point.
        target: y, same shape, values in [0, 1].
        gamma: >= 0.
        alpha: None or in [0, 1].

    Returns:
        A tensor shaped like ``logits`` (no graph attached).
    """
    target = check_logits_target(logits, target, min_ndim=1)
    _check_gamma_alpha(gamma, alpha)
    with torch.no_grad():
        log_p, log_q = _log_sigmoids(logits)
        e_p, e_q = _powers(log_p, log_q, float(gamma))
        pos, neg = _term_weights(target, alpha, None)
        return _focal_grad_from(log_p, log_q, e_p, e_q, pos, neg, float(gamma))
