"""comp448.losses.focal: slide-14 focal loss vs MONAI, a plain formula, BCE, finite differences."""
import math

import pytest
import torch

from comp448.losses import bce_loss, focal_loss, focal_loss_grad

monai_losses = pytest.importorskip("monai.losses")


def plain_focal(z, y, gamma, alpha=None):
    """Slide 14 written naively with p = sigmoid(z) (fine for moderate logits)."""
    p = torch.sigmoid(z)
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    return -a1 * y * (1 - p) ** gamma * torch.log(p) - a0 * (1 - y) * p ** gamma * torch.log(1 - p)


def stable_focal(z, y, gamma):
    """Slide 14 with torch's logsigmoid (accurate where 1 - p is tiny), for finite differences."""
    log_p, log_q = torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)
    return -y * torch.sigmoid(-z) ** gamma * log_p - (1 - y) * torch.sigmoid(z) ** gamma * log_q


def rand_pair(shape=(3, 1, 6, 5), soft=False, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    return z, (y if soft else (y > 0.6).double())


@pytest.mark.parametrize("alpha", [None, 0.25, 0.75])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.0])
def test_matches_monai_sigmoid_focal_loss(gamma, alpha):
    # MONAI computes in float32 internally (input.float()), hence the float32-level tolerance.
    z, y = rand_pair()
    ref = monai_losses.FocalLoss(gamma=gamma, alpha=alpha, use_softmax=False, reduction="none")(z, y)
    ours = focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="none")
    torch.testing.assert_close(ours, ref.double(), rtol=2e-6, atol=1e-6)  # float32 cancellation in MONAI
    mean_ref = monai_losses.FocalLoss(gamma=gamma, alpha=alpha, use_softmax=False)(z, y)
    torch.testing.assert_close(focal_loss(z, y, gamma=gamma, alpha=alpha), mean_ref.double(), rtol=2e-6, atol=0)


def test_sum_is_the_plain_sum_unlike_monai():
    z, y = rand_pair()
    ref_none = monai_losses.FocalLoss(reduction="none")(z, y).double()
    torch.testing.assert_close(focal_loss(z, y, reduction="sum"), ref_none.sum(), rtol=2e-6, atol=0)
    monai_sum = monai_losses.FocalLoss(reduction="sum")(z, y).double()      # spatial mean first
    torch.testing.assert_close(monai_sum, ref_none.mean(dim=(2, 3)).sum(), rtol=2e-6, atol=0)


@pytest.mark.parametrize("alpha", [None, 0.3])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 5.0])
def test_matches_plain_formula_with_soft_targets(gamma, alpha):
    z, y = rand_pair(soft=True)
    torch.testing.assert_close(focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="none"),
                               plain_focal(z, y, gamma, alpha), rtol=1e-12, atol=1e-13)


def test_hand_computed_at_logit_zero():
    z = torch.zeros(1, 4, dtype=torch.float64)                      # p = 1/2
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)
    ln2 = math.log(2.0)
    torch.testing.assert_close(focal_loss(z, y, gamma=2.0, reduction="none"), torch.full((1, 4), 0.25 * ln2, dtype=torch.float64))
    torch.testing.assert_close(focal_loss(z, y, gamma=2.0, alpha=0.25, reduction="none"),
                               torch.tensor([[0.25, 0.75, 0.25, 0.75]], dtype=torch.float64) * 0.25 * ln2)


def test_focusing_downweights_easy_pixels():
    # p = 0.9 on a positive (easy) and p = 0.1 on a positive (hard): gamma=2 scales them by 0.01 and 0.81
    z = torch.log(torch.tensor([[9.0, 1 / 9]], dtype=torch.float64))
    y = torch.ones(1, 2, dtype=torch.float64)
    ratio = focal_loss(z, y, gamma=2.0, reduction="none") / bce_loss(z, y, reduction="none")
    torch.testing.assert_close(ratio, torch.tensor([[0.01, 0.81]], dtype=torch.float64))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gamma_zero_is_bce(reduction):
    z, y = rand_pair(soft=True)
    w = torch.rand(1, 1, 6, 5, dtype=torch.float64)
    torch.testing.assert_close(focal_loss(z, y, gamma=0.0, weight=w, reduction=reduction),
                               bce_loss(z, y, weight=w, reduction=reduction), rtol=1e-13, atol=1e-14)


def test_weight_multiplies_per_pixel_loss():
    z, y = rand_pair(soft=True)
    w = torch.rand(3, 1, 6, 5, dtype=torch.float64) * 3
    torch.testing.assert_close(focal_loss(z, y, alpha=0.4, weight=w, reduction="none"),
                               plain_focal(z, y, 2.0, 0.4) * w, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(focal_loss(z, y, weight=w), (plain_focal(z, y, 2.0) * w).mean())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("gamma, alpha", [(0.0, None), (0.5, 0.25), (2.0, None), (5.0, 0.8)])
def test_gradient_matches_finite_differences(gamma, alpha, reduction):
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True, scale=2.0)
    w = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda a: focal_loss(a, y, gamma=gamma, alpha=alpha, weight=w, reduction=reduction),
        (z.requires_grad_(),))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_fused_gradient_equals_autograd_of_plain_formula(gamma):
    z, y = rand_pair(soft=True)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    focal_loss(z1, y, gamma=gamma, alpha=0.3, reduction="mean").backward()
    plain_focal(z2, y, gamma, 0.3).mean().backward()
    torch.testing.assert_close(z1.grad, z2.grad, rtol=1e-10, atol=1e-15)


def test_target_and_weight_requiring_grad_use_autograd():
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True)
    y = y.clamp(0.05, 0.95)        # stay inside [0, 1] under finite-difference steps
    w = torch.rand(2, 1, 3, 3, dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda a, b, c: focal_loss(a, b, alpha=0.3, weight=c),
                                    (z.requires_grad_(), y.requires_grad_(), w.requires_grad_()))
    torch.testing.assert_close(focal_loss(z, y, weight=w), focal_loss(z.detach(), y.detach(), weight=w.detach()))


def test_double_backward_raises_instead_of_being_wrong():
    z, y = rand_pair()
    z.requires_grad_(True)
    (g,) = torch.autograd.grad(focal_loss(z, y), z, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


# ---- focal_loss_grad -------------------------------------------------------------------------

@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("label", [0.0, 1.0, 0.3])
def test_closed_form_grad_matches_central_differences(gamma, label):
    z = torch.linspace(-8, 8, 161, dtype=torch.float64)
    y = torch.full_like(z, label)
    h = 1e-6
    fd = (stable_focal(z + h, y, gamma) - stable_focal(z - h, y, gamma)) / (2 * h)
    torch.testing.assert_close(focal_loss_grad(z, y, gamma=gamma), fd, rtol=0, atol=1e-8)


def test_closed_form_grad_equals_autograd_of_summed_loss():
    z, y = rand_pair(soft=True)
    zz = z.clone().requires_grad_()
    focal_loss(zz, y, gamma=2.0, alpha=0.25, reduction="sum").backward()
    torch.testing.assert_close(focal_loss_grad(z, y, gamma=2.0, alpha=0.25), zz.grad, rtol=1e-12, atol=1e-15)
    zz.grad = None
    plain_focal(zz, y, 1.5).sum().backward()            # an oracle that is not comp448 code
    torch.testing.assert_close(focal_loss_grad(z, y, gamma=1.5), zz.grad, rtol=1e-10, atol=1e-14)


def test_closed_form_grad_special_cases():
    z, y = rand_pair()
    torch.testing.assert_close(focal_loss_grad(z, y, gamma=0.0), torch.sigmoid(z) - y, rtol=1e-13, atol=1e-15)
    g = focal_loss_grad(z, y, gamma=2.0)
    assert (g[y == 1] <= 0).all() and (g[y == 0] >= 0).all()
    soft = torch.full_like(z, 0.3)
    torch.testing.assert_close(focal_loss_grad(z, soft),
                               0.3 * focal_loss_grad(z, torch.ones_like(z)) + 0.7 * focal_loss_grad(z, torch.zeros_like(z)))
    assert not focal_loss_grad(z.requires_grad_(), y).requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_finite_loss_and_gradient(dtype):
    z = torch.tensor([[-200.0, 200.0, -200.0, 200.0]], dtype=dtype, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    loss = focal_loss(z, y, gamma=2.0, reduction="none")
    torch.testing.assert_close(loss.detach(), torch.tensor([[200.0, 0.0, 0.0, 200.0]], dtype=dtype))
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()
    torch.testing.assert_close(z.grad, torch.tensor([[-1.0, 0.0, 0.0, 1.0]], dtype=dtype))
    torch.testing.assert_close(focal_loss_grad(z.detach(), y), z.grad)
    for gamma in (0.0, 0.5):
        assert torch.isfinite(focal_loss_grad(z.detach(), y, gamma=gamma)).all()


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(gamma=-1.0), ValueError, "gamma"),
    (dict(gamma=float("nan")), ValueError, "gamma"),
    (dict(gamma="2"), TypeError, "gamma"),
    (dict(alpha=1.5), ValueError, "alpha"),
    (dict(alpha=-0.1), ValueError, "alpha"),
    (dict(reduction="median"), ValueError, "reduction"),
    (dict(logits=torch.zeros(2, 3, dtype=torch.int32)), TypeError, "logits"),
    (dict(target=torch.zeros(3, 2)), ValueError, "target"),
    (dict(target=torch.full((2, 3), 2.0)), ValueError, "target"),
    (dict(target=torch.full((2, 3), float("nan"))), ValueError, "target"),
    (dict(logits=torch.full((2, 3), float("nan"))), ValueError, "logits"),
    (dict(weight=torch.ones(3, 3)), ValueError, "weight"),
    (dict(weight=-torch.ones(1)), ValueError, "weight"),
])
def test_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(logits=torch.zeros(2, 3), target=torch.zeros(2, 3))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        focal_loss(**args)
    if "weight" not in kwargs and "reduction" not in kwargs:
        with pytest.raises(exc, match=word):
            focal_loss_grad(**args)
