"""comp448.losses.bce: slide 12-13 BCE against a plainly written formula and hand-computed values."""
import math

import pytest
import torch

from comp448.losses import bce_loss



def plain_bce(z, y):
    """-y log p - (1 - y) log(1 - p), written naively (fine for moderate logits)."""
    p = torch.sigmoid(z)
    return -y * torch.log(p) - (1 - y) * torch.log(1 - p)


def rand_pair(shape=(3, 1, 5, 6), soft=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    y = torch.rand(shape, generator=g, dtype=torch.float64)
    return z, (y if soft else (y > 0.6).double())


def test_hand_computed_values_and_reductions():
    z = torch.tensor([[0.0, math.log(3.0), -math.log(3.0)]])     # p = 1/2, 3/4, 1/4
    y = torch.tensor([[1.0, 1.0, 0.0]])
    expect = torch.tensor([[math.log(2.0), math.log(4 / 3), math.log(4 / 3)]])
    torch.testing.assert_close(bce_loss(z, y, reduction="none"), expect)
    torch.testing.assert_close(bce_loss(z, y, reduction="sum"), expect.sum())
    torch.testing.assert_close(bce_loss(z, y), expect.mean())


@pytest.mark.parametrize("soft", [False, True])
def test_matches_plain_formula(soft):
    z, y = rand_pair(soft=soft)
    torch.testing.assert_close(bce_loss(z, y, reduction="none"), plain_bce(z, y), rtol=1e-12, atol=1e-12)


def test_layout_without_channel_dim_is_the_same():
    z, y = rand_pair()
    assert torch.allclose(bce_loss(z[:, 0], y[:, 0]), bce_loss(z, y), rtol=0, atol=1e-15)


def test_pixel_weight_map_multiplies_each_pixel_loss():
    z, y = rand_pair()
    w = torch.rand(1, 1, 5, 6, dtype=torch.float64) * 4                # broadcast over the batch
    per_pixel = plain_bce(z, y) * w
    torch.testing.assert_close(bce_loss(z, y, weight=w, reduction="none"), per_pixel)
    torch.testing.assert_close(bce_loss(z, y, weight=w, reduction="sum"), per_pixel.sum())
    torch.testing.assert_close(bce_loss(z, y, weight=w), per_pixel.mean())   # not renormalised
    torch.testing.assert_close(bce_loss(z, y, weight=w[0, 0]), per_pixel.mean())  # (H, W) map


def test_class_weights_equal_the_explicit_class_weight_map():
    z, y = rand_pair(soft=True)
    w_map = 0.3 * (1 - y) + 2.5 * y
    torch.testing.assert_close(bce_loss(z, y, class_weights=(0.3, 2.5), reduction="none"),
                               plain_bce(z, y) * w_map)
    # class_weights and weight combine multiplicatively
    extra = torch.full_like(y, 2.0)
    torch.testing.assert_close(bce_loss(z, y, weight=extra, class_weights=(0.3, 2.5)),
                               2 * bce_loss(z, y, class_weights=(0.3, 2.5)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_give_finite_loss_and_gradient(dtype):
    z = torch.tensor([[-200.0, 200.0, -200.0, 200.0]], dtype=dtype, requires_grad=True)
    y = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    loss = bce_loss(z, y, reduction="none")
    torch.testing.assert_close(loss.detach(), torch.tensor([[200.0, 0.0, 0.0, 200.0]], dtype=dtype))
    loss.sum().backward()
    assert torch.isfinite(z.grad).all()
    torch.testing.assert_close(z.grad, torch.tensor([[-1.0, 0.0, 0.0, 1.0]], dtype=dtype))


def test_gradient_matches_finite_differences():
    z, y = rand_pair(shape=(2, 1, 3, 3), soft=True)
    w = torch.rand(2, 1, 3, 3, dtype=torch.float64)
    for red in ("mean", "sum", "none"):
        assert torch.autograd.gradcheck(lambda a: bce_loss(a, y, weight=w, reduction=red),
                                        (z.requires_grad_(),))


def test_gradient_is_sigmoid_minus_target():
    z, y = rand_pair(soft=True)
    z.requires_grad_(True)
    bce_loss(z, y, reduction="sum").backward()
    torch.testing.assert_close(z.grad, torch.sigmoid(z.detach()) - y)


def test_integer_and_bool_targets_are_accepted():
    z, y = rand_pair()
    torch.testing.assert_close(bce_loss(z, y.long()), bce_loss(z, y))
    torch.testing.assert_close(bce_loss(z, y.bool()), bce_loss(z, y))


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(logits=[0.0]), TypeError, "logits"),
    (dict(logits=torch.zeros(2, 3, dtype=torch.long)), TypeError, "logits"),
    (dict(target=torch.zeros(2, 4)), ValueError, "target"),
    (dict(target=torch.full((2, 3), 1.5)), ValueError, "target"),
    (dict(target=torch.full((2, 3), -0.1)), ValueError, "target"),
    (dict(target=torch.full((2, 3), float("nan"))), ValueError, "target"),
    (dict(logits=torch.full((2, 3), float("nan"))), ValueError, "logits"),
    (dict(logits=torch.full((2, 3), float("inf"))), ValueError, "logits"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(weight=torch.ones(4)), ValueError, "weight"),
    (dict(weight=-torch.ones(2, 3)), ValueError, "weight"),
    (dict(weight=torch.full((2, 3), float("nan"))), ValueError, "weight"),
    (dict(weight=[1.0]), TypeError, "weight"),
    (dict(class_weights=(1.0,)), ValueError, "class_weights"),
    (dict(class_weights=(1.0, -2.0)), ValueError, "class_weights"),
])
def test_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(logits=torch.zeros(2, 3), target=torch.zeros(2, 3))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        bce_loss(**args)
