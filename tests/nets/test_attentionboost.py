"""AttentionBoostNet: stage outputs, shared encoder, boosted training with the slide-17 weights."""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import AttentionBoostNet, count_parameters
from ._overfit import assert_overfits


def slide17_update(c, p, y):
    """beta = 1 - |p - 0.5| where (p >= 0.5) == y, else 1 + |p - 0.5|; returns beta * c."""
    correct = (p >= 0.5).float() == y
    beta = torch.where(correct, 1 - (p - 0.5).abs(), 1 + (p - 0.5).abs())
    return beta * c


@pytest.mark.parametrize("hw", [(4, 4), (13, 17), (32, 31)])
def test_stage_outputs(hw):
    m = AttentionBoostNet(2, 1, num_stages=3, base=2, depth=2).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 2, *hw))
    assert list(out) == ["stage1", "stage2", "stage3"]
    assert all(v.shape == (2, 1, *hw) for v in out.values())
    assert list(AttentionBoostNet(1, base=2, depth=1)(torch.randn(1, 1, 4, 4))) == [f"stage{k}" for k in range(1, 5)]


def test_stages_share_the_encoder_only():
    torch.manual_seed(0)
    m = AttentionBoostNet(1, 1, num_stages=2, base=2, depth=2)
    m(torch.randn(1, 1, 16, 16))["stage2"].sum().backward()
    assert all(p.grad is None for p in m.decoders[0].parameters())
    assert all(p.grad is not None for p in m.decoders[1].parameters())
    assert all(p.grad is not None for p in m.encoder.parameters())
    with torch.device("meta"):
        one, four = AttentionBoostNet(num_stages=1), AttentionBoostNet(num_stages=4)
    decoder_and_head = count_parameters(one) - count_parameters(one.encoder)
    assert count_parameters(four) == count_parameters(one) + 3 * decoder_and_head
    # one stage = the paper U-Net with 3 input channels (+2*64*9 weights) and 1 class (-64-1)
    assert count_parameters(one) == 31_030_658 + 2 * 64 * 9 - (64 + 1)


def test_boosted_training_overfits_one_batch():
    torch.manual_seed(0)
    m = AttentionBoostNet(1, 1, num_stages=3, base=4, depth=2)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    y = (((yy - 14) ** 2 + (xx - 17) ** 2) < 60).float()[None, None]
    x = torch.rand(1, 1, 32, 32) + y

    def boosted_loss():
        out = m(x)
        c, loss = torch.ones_like(y), 0.0
        for n in range(1, 4):
            logits = out[f"stage{n}"]
            loss = loss + F.binary_cross_entropy_with_logits(logits, y, weight=c)
            c_next = slide17_update(c, torch.sigmoid(logits).detach(), y)
            assert ((c_next / c >= 0.5) & (c_next / c <= 1.5)).all()   # beta in [0.5, 1.5]
            c = c_next
        return loss
    assert_overfits(m, boosted_loss)


def test_errors():
    with pytest.raises(ValueError, match="num_stages"):
        AttentionBoostNet(num_stages=0)
    with pytest.raises(TypeError, match="num_stages"):
        AttentionBoostNet(num_stages=2.5)
    with pytest.raises(ValueError, match="depth"):
        AttentionBoostNet(depth=0)
    with pytest.raises(ValueError, match="in_channels"):
        AttentionBoostNet(in_channels=0)
    m = AttentionBoostNet(1, base=2, depth=2)
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"x has spatial size \(2, 8\).*>= 4"):
        m(torch.randn(1, 1, 2, 8))
