"""comp448.losses.tversky: slide-16 Tversky loss vs MONAI, Dice, Jaccard and hand-computed cases."""
import pytest
import torch

from comp448.losses import dice_loss, tversky_loss

monai_losses = pytest.importorskip("monai.losses")


def rand_pair(shape=(4, 1, 6, 7), soft=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    y = y if soft else (y > 0.6).double()
    y[0] = 0.0
    return z, y


@pytest.mark.parametrize("alpha, beta", [(0.5, 0.5), (0.3, 0.7), (0.7, 0.3), (1.0, 1.0), (0.0, 2.0)])
@pytest.mark.parametrize("soft", [False, True])
def test_matches_monai_tversky_loss(alpha, beta, soft):
    z, y = rand_pair(soft=soft)
    kw = dict(sigmoid=True, alpha=alpha, beta=beta, smooth_nr=1e-5, smooth_dr=1e-5, batch=False)
    for red in ("mean", "sum"):
        torch.testing.assert_close(tversky_loss(z, y, alpha, beta, reduction=red),
                                   monai_losses.TverskyLoss(reduction=red, **kw)(z, y), rtol=1e-12, atol=1e-14)
    ref = monai_losses.TverskyLoss(reduction="none", **kw)(z, y)
    torch.testing.assert_close(tversky_loss(z, y, alpha, beta, reduction="none"), ref.flatten(),
                               rtol=1e-12, atol=1e-14)


def test_half_half_is_dice():
    z, y = rand_pair(soft=True)
    # with smoothing: Tversky(eps) = (TP + eps) / (0.5 (sum p + sum y) + eps) = Dice(2 eps)
    torch.testing.assert_close(tversky_loss(z, y, 0.5, 0.5, eps=1e-5, reduction="none"),
                               dice_loss(z, y, eps=2e-5, reduction="none"), rtol=1e-13, atol=1e-15)
    z[0, 0, 0, 0] = 5.0      # no image may have an empty target and prediction when eps = 0
    y[0, 0, 0, 0] = 1.0
    torch.testing.assert_close(tversky_loss(z, y, 0.5, 0.5, eps=0.0), dice_loss(z, y, eps=0.0), rtol=1e-13, atol=0)
    torch.testing.assert_close(tversky_loss(z, y), dice_loss(z, y), rtol=1e-5, atol=1e-6)   # defaults


def test_one_one_is_soft_jaccard():
    z, y = rand_pair(soft=True)
    p = torch.sigmoid(z)
    inter, eps = (p * y).sum((1, 2, 3)), 1e-5
    jaccard = 1 - (inter + eps) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) - inter + eps)
    torch.testing.assert_close(tversky_loss(z, y, 1.0, 1.0, reduction="none"), jaccard)


def test_alpha_weights_false_positives_beta_false_negatives():
    y = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    y[..., :2, :] = 1.0                                    # 8 foreground pixels
    only_fp = torch.where(y > 0, 200.0, -200.0).double()
    only_fp[..., 3, :2] = 200.0                            # + 2 false positives
    only_fn = torch.where(y > 0, 200.0, -200.0).double()
    only_fn[..., 0, :2] = -200.0                           # 2 of the 8 missed
    for a, b in [(0.3, 0.7), (0.7, 0.3), (1.0, 0.0)]:
        # hand computed with eps = 0: TP = 8, FP = 2  /  TP = 6, FN = 2
        assert tversky_loss(only_fp, y, a, b, eps=0).item() == pytest.approx(1 - 8 / (8 + a * 2), rel=1e-12)
        assert tversky_loss(only_fn, y, a, b, eps=0).item() == pytest.approx(1 - 6 / (6 + b * 2), rel=1e-12)


def test_empty_masks():
    empty = torch.zeros(2, 1, 8, 8)
    assert tversky_loss(torch.full_like(empty, -200.0), empty).item() == pytest.approx(0.0, abs=1e-6)
    fp = torch.full_like(empty, -200.0)
    fp[..., 0, :4] = 200.0
    assert tversky_loss(fp, empty, 0.3, 0.7).item() == pytest.approx(1 - 1e-5 / (0.3 * 4 + 1e-5), rel=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_matches_finite_differences(reduction):
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True)
    assert torch.autograd.gradcheck(lambda a: tversky_loss(a, y, 0.3, 0.7, reduction=reduction),
                                    (z.requires_grad_(),))


def test_extreme_logits_finite_gradient():
    z = torch.tensor([[[-200.0, 200.0], [200.0, -200.0]]], requires_grad=True)
    y = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    loss = tversky_loss(z, y, 0.3, 0.7)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(alpha=-0.1), ValueError, "alpha"),
    (dict(beta=-1.0), ValueError, "beta"),
    (dict(alpha=float("nan")), ValueError, "alpha"),
    (dict(beta=None), TypeError, "beta"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(reduction="mean_batch"), ValueError, "reduction"),
    (dict(logits=torch.zeros(2, 4, dtype=torch.bool)), TypeError, "logits"),
    (dict(logits=torch.full((2, 4), float("-inf"))), ValueError, "logits"),
    (dict(target=torch.zeros(2, 1, 4)), ValueError, "target"),
    (dict(target=torch.full((2, 4), -1.0)), ValueError, "target"),
])
def test_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(logits=torch.zeros(2, 4), target=torch.zeros(2, 4))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        tversky_loss(**args)


def test_gradient_through_a_soft_target_uses_autograd():
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True)
    y = y.clamp(0.05, 0.95)
    assert torch.autograd.gradcheck(lambda a, b: tversky_loss(a, b, 0.3, 0.7),
                                    (z.requires_grad_(), y.requires_grad_()))
