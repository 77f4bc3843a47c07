"""DeepDistance: parameter counts, outputs, nearest upsampling, shared encoder, training, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from comp448.nets import DeepDistance, count_parameters
from ._overfit import assert_overfits


def block(ci, co):
    return ci * co * 9 + co + co * co * 9 + co


def test_parameter_counts_authors_code():
    ch = [64, 128, 256, 512, 1024]
    enc = sum(block(ci, co) for ci, co in zip([3] + ch[:-1], ch))
    dec = sum(block(ch[i + 1] + ch[i], ch[i]) for i in range(4)) + 64 + 1   # nearest up: no weights
    assert enc == 18_843_200 and dec == 12_535_745
    assert enc + 2 * dec == 43_914_690 and enc + 3 * dec == 56_450_435
    with torch.device("meta"):
        assert count_parameters(DeepDistance()) == 43_914_690
        assert count_parameters(DeepDistance(extended=True)) == 56_450_435


def test_decoders_upsample_by_nearest_neighbour_not_deconvolution():
    m = DeepDistance(1, base=2, depth=2)
    assert not any(isinstance(mod, nn.ConvTranspose2d) for mod in m.modules())
    ups = [mod for mod in m.modules() if isinstance(mod, nn.Upsample)]
    assert len(ups) == 4 and all(u.mode == "nearest" and u.scale_factor == 2 for u in ups)
    drops = [mod for mod in m.modules() if isinstance(mod, nn.Dropout)]
    assert drops and all(d.p == 0.2 for d in drops)


@pytest.mark.parametrize("hw", [(4, 4), (13, 22), (32, 31)])
def test_outputs_and_sizes(hw):
    torch.manual_seed(0)
    m = DeepDistance(2, base=2, depth=2, extended=True).eval()
    with torch.no_grad():
        out = m(torch.randn(2, 2, *hw))
    assert list(out) == ["seg", "inner", "outer"]
    assert all(v.shape == (2, 1, *hw) for v in out.values())
    assert (out["inner"] >= 0).all() and (out["outer"] >= 0).all()       # ReLU outputs
    assert list(DeepDistance(1, base=2, depth=1)(torch.randn(1, 1, 8, 8))) == ["inner", "outer"]


def test_distance_activation_none_and_seg_are_raw():
    torch.manual_seed(0)
    m = DeepDistance(1, base=2, depth=1, extended=True, distance_activation="none").eval()
    for head in m.heads.values():
        nn.init.constant_(head.bias, -5.0)
    with torch.no_grad():
        out = m(torch.randn(1, 1, 8, 8))
    assert all((v < 0).any() for v in out.values())


def test_only_the_encoder_is_shared():
    torch.manual_seed(0)
    m = DeepDistance(1, base=2, depth=2)
    m(torch.randn(1, 1, 16, 16))["inner"].sum().backward()
    assert all(p.grad is None for p in m.decoders["outer"].parameters())
    assert all(p.grad is not None for p in m.decoders["inner"].parameters())
    assert all(p.grad is not None for p in m.encoder.parameters())


def maps(n=32):
    """Inner (alpha = 0.1, squared) and normalised outer distance of one disk, written plainly."""
    yy, xx = np.mgrid[:n, :n]
    mask = (yy - 14) ** 2 + (xx - 17) ** 2 < 60
    cy, cx = yy[mask].mean(), xx[mask].mean()
    inner = np.where(mask, 1 / (1 + 0.1 * ((yy - cy) ** 2 + (xx - cx) ** 2)), 0)
    d = ndimage.distance_transform_edt(mask)
    outer = np.where(mask, d ** 2 / (d ** 2).max(), 0)
    f = lambda a: torch.tensor(a, dtype=torch.float32)[None, None]
    return f(mask), f(inner), f(outer)


@pytest.mark.parametrize("seed", [0, 1])
def test_small_extended_model_overfits_one_batch(seed):
    # the raw regression: on this ONE mostly-zero target a ReLU head can start alive (see
    # test_no_dead_relu_heads_at_step_0) and still die during training (outer map, seed 0: the
    # background pushes every output below 0); capacity is what this test checks
    torch.manual_seed(seed)
    m = DeepDistance(1, base=8, depth=2, extended=True, dropout=0.0, distance_activation="none")
    mask, inner, outer = maps()
    x = mask - 0.5

    def loss():   # authors' losses: MSE everywhere, seg through a sigmoid, weights 0.1 : 1 : 1
        out = m(x)
        return 0.1 * F.mse_loss(torch.sigmoid(out["seg"]), mask) + F.mse_loss(out["inner"], inner) \
            + F.mse_loss(out["outer"], outer)
    assert_overfits(m, loss, lr=3e-3)


def test_initialisation():
    """He-normal convs (std sqrt(2 / fan_in)), zero biases, distance heads' bias DIST_BIAS > 0."""
    from comp448.nets.deepdistance import DIST_BIAS
    torch.manual_seed(0)
    m = DeepDistance(1, base=16, depth=2, extended=True)
    assert DIST_BIAS > 0
    assert m.heads["inner"].bias.item() == pytest.approx(DIST_BIAS)
    assert m.heads["outer"].bias.item() == pytest.approx(DIST_BIAS)
    assert m.heads["seg"].bias.item() == 0.0
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.weight.numel() > 2000]
    assert len(convs) > 5
    for c in convs:
        fan_in = c.in_channels * c.kernel_size[0] * c.kernel_size[1]
        assert c.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)
    assert all(not c.bias.any() for c in m.modules() if isinstance(c, nn.Conv2d) and c not in m.heads.values())


@pytest.mark.parametrize("base, depth", [(2, 1), (4, 2), (8, 2)])
def test_no_dead_relu_heads_at_step_0(base, depth):
    """The regression test for dead starts: with PyTorch's default init about half of these heads
    were <= 0 at every pixel (no gradient ever). Now, for every seed, both ReLU heads are positive
    somewhere and the step-0 MSE gradient (autograd) reaches each head and the shared encoder."""
    mask, inner, outer = maps()
    x = torch.cat([mask, 1 - mask]) - 0.5 + 0.1 * torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    tgt = {"inner": torch.cat([inner, inner.flip(-1)]), "outer": torch.cat([outer, outer.flip(-1)])}
    for seed in range(8):
        torch.manual_seed(seed)
        m = DeepDistance(1, base=base, depth=depth)
        out = m(x)
        loss = F.mse_loss(out["inner"], tgt["inner"]) + F.mse_loss(out["outer"], tgt["outer"])
        loss.backward()
        for t in ("inner", "outer"):
            assert (out[t] > 0).any(), (seed, t)
            assert m.heads[t].bias.grad.abs().item() > 0, (seed, t)
            assert m.heads[t].weight.grad.abs().sum().item() > 0, (seed, t)
        assert sum(p.grad.abs().sum().item() for p in m.encoder.parameters()) > 0, seed


def test_relu_heads_pass_gradients_where_positive():
    torch.manual_seed(0)
    m = DeepDistance(1, base=2, depth=1)
    for t in ("inner", "outer"):
        nn.init.constant_(m.heads[t].bias, 1.0)       # alive everywhere
    out = m(torch.randn(1, 1, 8, 8))
    assert (out["inner"] > 0).all()
    out["inner"].sum().backward()
    assert m.heads["inner"].bias.grad.item() == pytest.approx(64.0)   # d(sum)/d(bias) = #pixels
    m.zero_grad()
    nn.init.constant_(m.heads["outer"].bias, -100.0)  # dead everywhere: no gradient at all
    m(torch.randn(1, 1, 8, 8))["outer"].sum().backward()
    assert m.heads["outer"].bias.grad.item() == 0.0


def test_errors():
    with pytest.raises(ValueError, match="distance_activation"):
        DeepDistance(distance_activation="sigmoid")
    with pytest.raises(ValueError, match="depth"):
        DeepDistance(depth=0)
    with pytest.raises(ValueError, match="in_channels"):
        DeepDistance(in_channels=0)
    with pytest.raises(ValueError, match="dropout"):
        DeepDistance(dropout=1.5)
    m = DeepDistance(1, base=2, depth=3)
    with pytest.raises(ValueError, match=r"x has spatial size \(7, 9\).*>= 8"):
        m(torch.randn(1, 1, 7, 9))
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 3, 16, 16))
