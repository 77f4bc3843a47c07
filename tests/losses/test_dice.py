"""comp448.losses.dice: slide-15 soft Dice, V-Net squared Dice and generalised Dice vs MONAI and plain oracles."""
import pytest
import torch

from comp448.losses import dice_loss, generalized_dice_loss

monai_losses = pytest.importorskip("monai.losses")


def rand_pair(shape=(4, 1, 6, 7), soft=False, seed=0, empty_first=True):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    y = y if soft else (y > 0.6).double()
    if empty_first:
        y[0] = 0.0                      # one image with an empty target
    return z, y


def plain_dice(z, y, eps, squared=False):
    """Per-image loop over the slide's formula (oracle)."""
    out = []
    for zb, yb in zip(z, y):
        p = torch.sigmoid(zb)
        den = (p ** 2).sum() + (yb ** 2).sum() if squared else p.sum() + yb.sum()
        out.append(1 - (2 * (p * yb).sum() + eps) / (den + eps))
    return torch.stack(out)


# ---- dice_loss -------------------------------------------------------------------------------

@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_matches_monai_dice_loss(squared, soft, eps):
    z, y = rand_pair(soft=soft)
    kw = dict(sigmoid=True, smooth_nr=eps, smooth_dr=eps, batch=False, squared_pred=squared)
    for red in ("mean", "sum"):
        ref = monai_losses.DiceLoss(reduction=red, **kw)(z, y)
        torch.testing.assert_close(dice_loss(z, y, eps=eps, squared=squared, reduction=red), ref,
                                   rtol=1e-12, atol=1e-14)
    ref = monai_losses.DiceLoss(reduction="none", **kw)(z, y)          # (B, 1, 1, 1)
    torch.testing.assert_close(dice_loss(z, y, eps=eps, squared=squared, reduction="none"), ref.flatten(),
                               rtol=1e-12, atol=1e-14)


def test_matches_monai_in_3d():
    z, y = rand_pair(shape=(2, 1, 4, 5, 3))
    ref = monai_losses.DiceLoss(sigmoid=True, smooth_nr=1e-5, smooth_dr=1e-5)(z, y)
    torch.testing.assert_close(dice_loss(z, y), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("squared", [False, True])
def test_matches_per_image_loop(squared):
    z, y = rand_pair(soft=True)
    torch.testing.assert_close(dice_loss(z, y, squared=squared, reduction="none"), plain_dice(z, y, 1e-5, squared))
    # (B, *spatial) layout gives the same numbers as (B, 1, *spatial)
    torch.testing.assert_close(dice_loss(z[:, 0], y[:, 0], squared=squared), dice_loss(z, y, squared=squared))


def test_hand_computed_at_logit_zero():
    # p = 1/2 everywhere; k = 3 foreground pixels out of N = 8
    z = torch.zeros(1, 1, 2, 4, dtype=torch.float64)
    y = torch.tensor([1.0, 1.0, 1.0, 0, 0, 0, 0, 0], dtype=torch.float64).reshape(1, 1, 2, 4)
    eps = 1e-5
    assert dice_loss(z, y).item() == pytest.approx(1 - (3 + eps) / (3 + 4 + eps), abs=1e-15)
    assert dice_loss(z, y, squared=True).item() == pytest.approx(1 - (3 + eps) / (3 + 2 + eps), abs=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("squared", [False, True])
def test_empty_masks(dtype, squared):
    empty = torch.zeros(2, 1, 8, 8, dtype=dtype)
    # empty target + empty prediction -> 0
    assert dice_loss(torch.full_like(empty, -200.0), empty, squared=squared).item() == pytest.approx(0.0, abs=1e-6)
    # empty target + false positives -> near 1 (1 - eps / (FP + eps))
    fp = torch.full_like(empty, -200.0)
    fp[:, :, :2, :2] = 200.0                            # 4 false positives per image
    assert dice_loss(fp, empty, squared=squared).item() == pytest.approx(1 - 1e-5 / (4 + 1e-5), rel=1e-6)


@pytest.mark.parametrize("squared", [False, True])
def test_extreme_logits_finite_gradient(squared):
    z = torch.tensor([[[-200.0, 200.0], [200.0, -200.0]]], requires_grad=True)
    y = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    loss = dice_loss(z, y, squared=squared)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradient_matches_finite_differences(squared, reduction):
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True)
    assert torch.autograd.gradcheck(lambda a: dice_loss(a, y, squared=squared, reduction=reduction),
                                    (z.requires_grad_(),))


def test_vnet_gradient_formula():
    # papers.md §4.3: dD/dp_j = 2 [g_j (sum p^2 + sum g^2) - 2 p_j sum p g] / (sum p^2 + sum g^2)^2, eps = 0
    z, y = rand_pair(shape=(1, 1, 4, 4), empty_first=False)
    z.requires_grad_(True)
    dice_loss(z, y, eps=0.0, squared=True).backward()
    p = torch.sigmoid(z.detach())
    s = (p ** 2).sum() + (y ** 2).sum()
    d_dp = 2 * (y * s - 2 * p * (p * y).sum()) / s ** 2
    torch.testing.assert_close(z.grad, -d_dp * p * (1 - p))


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(logits=torch.zeros(4)), ValueError, "logits"),
    (dict(logits=torch.zeros(2, 4, dtype=torch.long)), TypeError, "logits"),
    (dict(logits=torch.full((2, 4), float("nan"))), ValueError, "logits"),
    (dict(target=torch.zeros(2, 5)), ValueError, "target"),
    (dict(target=torch.full((2, 4), 1.01)), ValueError, "target"),
    (dict(target=torch.full((2, 4), float("nan"))), ValueError, "target"),
    (dict(eps=-1e-5), ValueError, "eps"),
    (dict(eps="small"), TypeError, "eps"),
    (dict(squared=1), TypeError, "squared"),
    (dict(reduction="batch"), ValueError, "reduction"),
])
def test_dice_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(logits=torch.zeros(2, 4), target=torch.zeros(2, 4))
    args.update(kwargs)
    if args["logits"].shape == (4,):
        args["target"] = torch.zeros(4)
    with pytest.raises(exc, match=word):
        dice_loss(**args)


# ---- generalized_dice_loss -------------------------------------------------------------------

def multiclass(shape=(3, 4, 5, 6), seed=1):
    g = torch.Generator().manual_seed(seed)
    b, c = shape[:2]
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, c, (b, *shape[2:]), generator=g)
    labels[1][labels[1] == 2] = 0                      # class 2 absent from image 1
    labels[2][labels[2] >= 1] = 1                      # classes 2, 3 absent from image 2
    return z, labels


def plain_gdl(z, onehot, eps):
    """Sudre et al. written as loops over images and classes (oracle)."""
    out = []
    for zb, rb in zip(z, onehot):
        p = torch.softmax(zb, 0)
        vols = [rb[l].sum() for l in range(len(rb))]
        finite = [1 / v ** 2 for v in vols if v > 0]
        w = [1 / v ** 2 if v > 0 else (max(finite) if finite else 0.0) for v in vols]
        num = sum(w[l] * (rb[l] * p[l]).sum() for l in range(len(rb)))
        den = sum(w[l] * (rb[l] + p[l]).sum() for l in range(len(rb)))
        out.append(1 - (2 * num + eps) / (den + eps))
    return torch.stack(out)


def one_hot(labels, c):
    return torch.nn.functional.one_hot(labels, c).movedim(-1, 1).double()


@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_gdl_matches_monai(eps):
    z, labels = multiclass()
    kw = dict(softmax=True, w_type="square", smooth_nr=eps, smooth_dr=eps, batch=False)
    # MONAI computes the weights in float32 (ground_o.float()), hence rtol 1e-6
    ref = monai_losses.GeneralizedDiceLoss(to_onehot_y=True, **kw)(z, labels[:, None])
    torch.testing.assert_close(generalized_dice_loss(z, labels, eps=eps), ref, rtol=1e-6, atol=0)
    ref = monai_losses.GeneralizedDiceLoss(reduction="none", **kw)(z, one_hot(labels, 4))
    torch.testing.assert_close(generalized_dice_loss(z, one_hot(labels, 4), eps=eps, reduction="none"),
                               ref.flatten(), rtol=1e-6, atol=0)


def test_gdl_matches_loop_oracle_and_target_forms_agree():
    z, labels = multiclass()
    oh = one_hot(labels, 4)
    expect = plain_gdl(z, oh, 1e-5)
    torch.testing.assert_close(generalized_dice_loss(z, labels, reduction="none"), expect, rtol=1e-12, atol=0)
    torch.testing.assert_close(generalized_dice_loss(z, labels[:, None], reduction="none"), expect, rtol=1e-12, atol=0)
    torch.testing.assert_close(generalized_dice_loss(z, oh, reduction="none"), expect, rtol=1e-12, atol=0)
    torch.testing.assert_close(generalized_dice_loss(z, oh.bool(), reduction="none"), expect, rtol=1e-12, atol=0)
    torch.testing.assert_close(generalized_dice_loss(z, labels, reduction="sum"), expect.sum())
    torch.testing.assert_close(generalized_dice_loss(z, labels), expect.mean())


def test_gdl_absent_class_gets_largest_finite_weight_so_fps_count():
    # image: 6 pixels of class 0, 2 of class 1, class 2 absent -> weights 1/36, 1/4, 1/4
    labels = torch.tensor([[0, 0, 0, 0, 0, 0, 1, 1]]).reshape(1, 2, 4)
    good = torch.full((1, 3, 2, 4), -50.0, dtype=torch.float64)
    good[:, 0][labels == 0] = 50.0
    good[:, 1][labels == 1] = 50.0
    bad = good.clone()
    bad[0, :, 0, 0] = torch.tensor([-50.0, -50.0, 50.0])     # one false positive of the absent class
    assert generalized_dice_loss(good, labels).item() == pytest.approx(0.0, abs=1e-12)
    p0_tp, p1_tp = 5.0, 2.0
    num = 2 * (p0_tp / 36 + p1_tp / 4)
    den = (6 + 5) / 36 + (2 + 2) / 4 + (0 + 1) / 4
    assert generalized_dice_loss(bad, labels, eps=0.0).item() == pytest.approx(1 - num / den, rel=1e-12)


def test_gdl_all_zero_target_gives_zero():
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    assert generalized_dice_loss(z, torch.zeros(2, 3, 4, 4, dtype=torch.float64)).item() == 0.0


def test_gdl_gradient_and_extreme_logits():
    z, labels = multiclass(shape=(3, 3, 3, 3))
    assert torch.autograd.gradcheck(lambda a: generalized_dice_loss(a, labels), (z.requires_grad_(),))
    big = (torch.randn(2, 3, 4, 4) * 200).requires_grad_()
    loss = generalized_dice_loss(big, torch.randint(0, 3, (2, 4, 4)))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(big.grad).all()


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(logits=torch.zeros(2, 1, 4, 4)), ValueError, "logits"),          # C = 1
    (dict(logits=torch.zeros(2, 3)), ValueError, "logits"),
    (dict(logits=torch.zeros(2, 3, 4, 4, dtype=torch.long)), TypeError, "logits"),
    (dict(logits=torch.full((2, 3, 4, 4), float("nan"))), ValueError, "logits"),
    (dict(logits=torch.zeros(2, 3, 4, 4).index_fill_(3, torch.tensor([1]), float("inf"))), ValueError, "logits"),
    (dict(target=torch.full((2, 4, 4), 3)), ValueError, "target"),          # label >= C
    (dict(target=torch.full((2, 4, 4), -1)), ValueError, "target"),
    (dict(target=torch.zeros(2, 5, 4, dtype=torch.long)), ValueError, "target"),
    (dict(target=torch.zeros(2, 2, 4, 4)), ValueError, "target"),          # one-hot with wrong C
    (dict(target=torch.full((2, 3, 4, 4), 2.0)), ValueError, "target"),
    (dict(target=[0, 1]), TypeError, "target"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(reduction=None), ValueError, "reduction"),
])
def test_gdl_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(logits=torch.zeros(2, 3, 4, 4), target=torch.zeros(2, 4, 4, dtype=torch.long))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        generalized_dice_loss(**args)


@pytest.mark.parametrize("squared", [False, True])
def test_gradient_through_a_soft_target_uses_autograd(squared):
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True, empty_first=False)
    y = y.clamp(0.05, 0.95)
    assert torch.autograd.gradcheck(lambda a, b: dice_loss(a, b, squared=squared),
                                    (z.requires_grad_(), y.requires_grad_()))


def test_fused_backward_refuses_double_backward():
    z, y = rand_pair()
    z.requires_grad_(True)
    (g,) = torch.autograd.grad(dice_loss(z, y), z, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
