"""comp448.losses.attentionboost: the slide-17 weight update against hand-computed values and a pixel loop."""
import pytest
import torch

from comp448.losses import attentionboost_update, bce_loss


def loop_update(c, probs, target):
    """beta * c, one pixel at a time, straight from slide 17 (oracle)."""
    out = torch.empty_like(probs)
    for i in range(probs.numel()):
        p, y, w = probs.flatten()[i].item(), target.flatten()[i].item(), c.flatten()[i].item()
        correct = (p >= 0.5) == (y >= 0.5)
        beta = 1 - abs(p - 0.5) if correct else 1 + abs(p - 0.5)
        out.view(-1)[i] = beta * w
    return out


def test_hand_computed():
    probs = torch.tensor([[0.9, 0.9, 0.1, 0.5, 0.0, 1.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
    #                   correct, wrong, correct, tie, confidently wrong, confidently right
    expect = torch.tensor([[0.6, 1.4, 0.6, 1.0, 1.5, 0.5]])
    torch.testing.assert_close(attentionboost_update(torch.ones(1, 6), probs, target), expect)
    torch.testing.assert_close(attentionboost_update(torch.full((1, 6), 2.0), probs, target), 2 * expect)
    torch.testing.assert_close(attentionboost_update(torch.ones(1), probs, target), expect)   # broadcast c_1


def test_matches_pixel_loop_and_stays_in_range():
    g = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64)
    target = (torch.rand(2, 1, 5, 5, generator=g) > 0.5).double()
    c = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64) + 0.1
    out = attentionboost_update(c, probs, target)
    torch.testing.assert_close(out, loop_update(c, probs, target))
    beta = out / c
    assert beta.min() >= 0.5 and beta.max() <= 1.5


def test_weights_compound_over_stages_and_carry_no_gradient():
    g = torch.Generator().manual_seed(1)
    target = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).double()
    logits = [torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    c, total = torch.ones(1, dtype=torch.float64), 0.0
    betas = []
    for z in logits:
        total = total + bce_loss(z, target, weight=c)
        new = attentionboost_update(c, torch.sigmoid(z), target)
        assert not new.requires_grad
        betas.append(new / c)
        c = new
    torch.testing.assert_close(c, betas[0] * betas[1] * betas[2])      # c_4 = c_1 * prod beta_k
    total.backward()
    # stage 1 gets no gradient through the later stages' weights (they were computed without grad)
    p1 = torch.sigmoid(logits[0].detach())
    torch.testing.assert_close(logits[0].grad, (p1 - target) / target.numel())


def test_normalize_keeps_each_image_total_weight():
    g = torch.Generator().manual_seed(2)
    probs = torch.rand(3, 1, 4, 4, generator=g)
    target = (torch.rand(3, 1, 4, 4, generator=g) > 0.5).float()
    c = torch.rand(3, 1, 4, 4, generator=g) + 0.5
    raw = attentionboost_update(c, probs, target)
    norm = attentionboost_update(c, probs, target, normalize=True)
    torch.testing.assert_close(norm.sum((1, 2, 3)), c.sum((1, 2, 3)))
    torch.testing.assert_close(norm / norm.sum((1, 2, 3), keepdim=True), raw / raw.sum((1, 2, 3), keepdim=True))
    zero = torch.zeros(3, 1, 4, 4)
    assert (attentionboost_update(zero, probs, target, normalize=True) == 0).all()


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(probs=torch.full((2, 4), 3.0)), ValueError, "probs"),           # logits passed by mistake
    (dict(probs=torch.full((2, 4), float("nan"))), ValueError, "probs"),
    (dict(probs=torch.zeros(2, 4, dtype=torch.long)), TypeError, "probs"),
    (dict(probs=torch.zeros(2, 5)), ValueError, "target"),
    (dict(target=torch.full((2, 4), 2.0)), ValueError, "target"),
    (dict(weights=-torch.ones(2, 4)), ValueError, "weights"),
    (dict(weights=torch.ones(3, 4)), ValueError, "weights"),
    (dict(weights=torch.full((2, 4), float("inf"))), ValueError, "weights"),
    (dict(weights=1.0), TypeError, "weights"),
    (dict(normalize="yes"), TypeError, "normalize"),
])
def test_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(weights=torch.ones(2, 4), probs=torch.full((2, 4), 0.5), target=torch.zeros(2, 4))
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        attentionboost_update(**args)
