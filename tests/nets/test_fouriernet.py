"""FourierNet: output layout, the stage-2 input, gradient wiring, counts, training, errors."""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import FourierNet, UNet, count_parameters
from ._overfit import assert_overfits


def small(**kw):
    kw.setdefault("base", 4)
    kw.setdefault("depth", 2)
    kw.setdefault("hidden", 8)
    return FourierNet(1, 2, **kw)


@pytest.mark.parametrize("hw", [(4, 4), (13, 17), (32, 32)])
def test_outputs(hw):
    m = small(n_harmonics=7).eval()
    with torch.no_grad():
        out = m(torch.randn(3, 1, *hw))
    assert list(out) == ["stage1", "seg", "amplitudes"]
    assert out["stage1"].shape == out["seg"].shape == (3, 2, *hw)
    assert out["amplitudes"].shape == (3, 1, 7)
    assert small(amplitude_classes=3)(torch.randn(1, 1, 8, 8))["amplitudes"].shape == (1, 3, 5)
    assert FourierNet(1, 4, base=2, depth=1, hidden=4)(torch.randn(1, 1, 8, 8))["amplitudes"].shape == (1, 3, 5)
    assert FourierNet(1, 1, base=2, depth=1, hidden=4)(torch.randn(1, 1, 8, 8))["amplitudes"].shape == (1, 1, 5)


@pytest.mark.parametrize("num_classes", [1, 3])
def test_stage2_sees_the_image_and_stage1_probabilities(num_classes):
    torch.manual_seed(0)
    m = FourierNet(2, num_classes, base=2, depth=1, hidden=4).eval()
    seen = []
    m.stage2.encoder.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    x = torch.randn(2, 2, 8, 8)
    with torch.no_grad():
        out = m(x)
    inp = seen[0]
    assert inp.shape == (2, 2 + num_classes, 8, 8)
    torch.testing.assert_close(inp[:, :2], x)
    s1 = out["stage1"]
    probs = torch.sigmoid(s1) if num_classes == 1 else torch.softmax(s1, dim=1)
    torch.testing.assert_close(inp[:, 2:], probs)


def test_gradient_reaches_stage1_unless_detached():
    torch.manual_seed(0)
    for detach in (False, True):
        m = small(detach_stage1=detach)
        out = m(torch.randn(1, 1, 8, 8))
        (out["seg"].sum() + out["amplitudes"].sum()).backward()
        got = [p.grad is not None and p.grad.abs().sum() > 0 for p in m.stage1.parameters()]
        assert all(got) if not detach else not any(got)


def test_parameter_count_is_two_unets_plus_head():
    with torch.device("meta"):
        m = FourierNet()
        s1, s2 = UNet(1, 2, padding="same"), UNet(3, 2, padding="same")
    head = (1024 * 256 + 256) + (256 * 5 + 5)
    assert count_parameters(m) == count_parameters(s1) + count_parameters(s2) + head
    assert count_parameters(s1) == 31_030_658


def test_small_fouriernet_overfits_one_batch():
    torch.manual_seed(0)
    m = small()
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    target = (((yy - 14) ** 2 + (xx - 17) ** 2) < 60).long()[None]
    x = torch.rand(1, 1, 32, 32) + target[:, None].float()
    amps = torch.tensor([[[0.9, 0.3, 0.2, 0.1, 0.05]]])      # (B, K, N), already normalised

    def loss():
        out = m(x)
        return F.cross_entropy(out["stage1"], target) + F.cross_entropy(out["seg"], target) \
            + F.mse_loss(out["amplitudes"], amps)
    assert_overfits(m, loss)


def test_errors():
    with pytest.raises(ValueError, match="n_harmonics"):
        FourierNet(n_harmonics=0)
    with pytest.raises(ValueError, match="amplitude_classes"):
        FourierNet(amplitude_classes=0)
    with pytest.raises(ValueError, match="depth"):
        FourierNet(depth=0)
    with pytest.raises(ValueError, match="in_channels"):
        FourierNet(in_channels=0)
    m = small()
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"x has spatial size \(3, 8\)"):
        m(torch.randn(1, 1, 3, 8))
