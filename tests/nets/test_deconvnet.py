"""DeconvNet: parameter counts, unpooling with the encoder's switches, sizes, training, errors."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from comp448.nets import DeconvNet, count_parameters
from ._overfit import assert_overfits


def small(**kw):
    return DeconvNet(1, 2, base=4, fc_channels=16, fc_kernel=1, **kw)


def test_parameter_count_reference():
    # written out from the reference prototxt: every conv/deconv has a bias
    vgg = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    enc = sum(a * b * 9 + b for a, b in zip(vgg[:-1], vgg[1:]))
    fc = (512 * 49 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 512 * 49 + 512)
    dec_ch = [512, 512, 512, 512, 512, 512, 256, 256, 256, 128, 128, 64, 64, 64]
    dec = sum(a * b * 9 + b for a, b in zip(dec_ch[:-1], dec_ch[1:]))
    score = 64 * 21 + 21
    assert enc + fc + dec + score == 251_772_245
    bn = 2 * (sum(vgg[1:]) + 4096 * 2 + 512 + sum(dec_ch[1:]))
    assert bn == 33_408
    with torch.device("meta"):
        m = DeconvNet()
    bn_params = sum(p.numel() for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)
                    for p in mod.parameters())
    assert bn_params == 33_408
    assert count_parameters(m) - bn_params == 251_772_245   # conv + deconv (the tested count)
    assert count_parameters(m) == 251_805_653


@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (45, 64), (70, 39)])
def test_output_size_equals_input_size(hw):
    m = small().eval()
    with torch.no_grad():
        assert m(torch.randn(2, 1, *hw)).shape == (2, 2, *hw)


def test_paper_geometry_224_with_7x7_fc6():
    m = DeconvNet(3, 21, base=2, fc_channels=8).eval()       # fc_kernel = 7
    with torch.no_grad():
        assert m(torch.randn(1, 3, 224, 224)).shape == (1, 21, 224, 224)
    with pytest.raises(ValueError, match=r"x has spatial size \(223, 224\).*>= 224"):
        m(torch.randn(1, 3, 223, 224))


def test_unpooling_uses_the_encoder_switches():
    # Brute force: an unpooled map may be non-zero only where the encoder map attained its
    # 2x2-window maximum, at most once per window, and each window sums to the unpooled value.
    torch.manual_seed(0)
    m = small().eval()
    conv_out, unpool_io = [], []
    for block in m.encoder.blocks:
        block.register_forward_hook(lambda mod, i, o: conv_out.append(o.detach().clone()))
    m.unpool.register_forward_hook(lambda mod, i, o: unpool_io.append((i[0].detach(), o.detach())))
    with torch.no_grad():
        m(torch.randn(2, 1, 64, 66))
    assert len(unpool_io) == 5
    for (inp, out), conv in zip(unpool_io, reversed(conv_out)):     # unpool5 pairs with conv5
        assert out.shape == conv.shape
        B, C, h, w = inp.shape
        win = conv[..., :2 * h, :2 * w].reshape(B, C, h, 2, w, 2)
        ow = out[..., :2 * h, :2 * w].reshape(B, C, h, 2, w, 2)
        is_max = win == win.amax(dim=(3, 5), keepdim=True)
        assert not ((ow != 0) & ~is_max).any()
        assert ((ow != 0).sum(dim=(3, 5)) <= 1).all()
        torch.testing.assert_close(ow.sum(dim=(3, 5)), inp)
        assert (out[..., 2 * h:, :] == 0).all() and (out[..., :, 2 * w:] == 0).all()


def test_forward_backward():
    torch.manual_seed(0)
    m = small()
    m(torch.randn(2, 1, 32, 40)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert sum(float(p.grad.abs().sum()) for p in m.encoder.parameters()) > 0


def test_small_deconvnet_overfits_one_batch():
    torch.manual_seed(0)
    m = small()
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    target = torch.stack([((yy - 14) ** 2 + (xx - 17) ** 2 < 60), (yy > xx)]).long()   # (2, 32, 32)
    x = torch.rand(2, 1, 32, 32) + target[:, None].float()
    assert_overfits(m, lambda: F.cross_entropy(m(x), target))


def test_errors():
    with pytest.raises(ValueError, match="in_channels"):
        DeconvNet(0)
    with pytest.raises(TypeError, match="fc_kernel"):
        DeconvNet(3, 21, fc_kernel=7.0)
    with pytest.raises(ValueError, match="num_classes"):
        DeconvNet(3, -1)
    m = small()
    with pytest.raises(ValueError, match=r"x has spatial size \(31, 40\).*>= 32"):
        m(torch.randn(2, 1, 31, 40))
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(2, 3, 32, 32))
    with pytest.raises(TypeError, match="x must be a floating"):
        m(torch.zeros(2, 1, 32, 32, dtype=torch.int64))
