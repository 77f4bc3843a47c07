"""U-Net, MultiTaskUNet, unet_output_size, center_crop.

Oracles: the paper's 572 -> 388, a closed form of the valid sizes derived by hand below, the
parameter count written out layer by layer, a plain slicing crop, gradient flow per task.
"""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import MultiTaskUNet, UNet, center_crop, count_parameters, unet_output_size
from ._overfit import overfit


def closed_form_output(n, d):
    """Valid U-Net of depth d: the bottom block's input b satisfies n = 2^d b + 4 (2^d - 1)
    (each level: n = 2 m + 4). After j decoder levels the size is 2^j (b - 8) + 4, which must stay
    positive for j = 1..d, and the bottom block needs b > 4."""
    b, r = divmod(n - 4 * (2 ** d - 1), 2 ** d)
    if r or b <= 4 or any(2 ** j * (b - 8) + 4 <= 0 for j in range(1, d + 1)):
        return None
    return 2 ** d * (b - 8) + 4


def disk(n, c=(14, 17), r2=60):
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return ((yy - c[0]) ** 2 + (xx - c[1]) ** 2 < r2).long()


# ------------------------------------------------------------------------------ sizes
def test_paper_tile_572_gives_388():
    assert unet_output_size(572) == 388
    assert unet_output_size((572, 572), depth=4) == (388, 388)
    assert unet_output_size(33, depth=2, padding="same") == 33


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_output_size_matches_closed_form(depth):
    for n in range(1, 320):
        expected = closed_form_output(n, depth)
        if expected is None:
            with pytest.raises(ValueError, match=f"input_size {n} is not valid"):
                unet_output_size(n, depth)
        else:
            assert unet_output_size(n, depth) == expected


def test_invalid_size_suggests_nearest_valid_sizes():
    with pytest.raises(ValueError, match=r"nearest valid sizes: \[556, 572\]"):
        unet_output_size(570)
    with pytest.raises(ValueError, match=r"nearest valid sizes: \[188\]"):
        unet_output_size(100)                     # nothing valid below: the smallest is 188
    assert closed_form_output(188, 4) == 4 and closed_form_output(172, 4) is None


@pytest.mark.parametrize("hw", [(44, 44), (48, 60), (52, 44)])
def test_valid_forward_sizes_agree_with_unet_output_size(hw):
    m = UNet(1, 3, base=2, depth=2).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, *hw)).shape == (1, 3, *unet_output_size(hw, depth=2))


def test_valid_forward_rejects_bad_size_naming_x():
    m = UNet(1, 2, base=2, depth=2)
    with pytest.raises(ValueError, match=r"x has spatial size \(45, 44\); 45 is not a valid.*\[44, 48\]"):
        m(torch.randn(1, 1, 45, 44))


@pytest.mark.parametrize("hw", [(4, 4), (5, 9), (17, 31), (32, 33)])
def test_same_padding_keeps_any_size(hw):
    m = UNet(2, 3, base=2, depth=2, padding="same").eval()
    with torch.no_grad():
        assert m(torch.randn(2, 2, *hw)).shape == (2, 3, *hw)
    with pytest.raises(ValueError, match=r"x has spatial size \(3, 8\).*>= 4"):
        m(torch.randn(1, 2, 3, 8))
    with pytest.raises(ValueError, match="input_size 3 is too small"):
        unet_output_size(3, depth=2, padding="same")


def test_center_crop():
    x = torch.arange(7 * 8).reshape(1, 1, 7, 8)
    torch.testing.assert_close(center_crop(x, (3, 4)), x[..., 2:5, 2:6])
    torch.testing.assert_close(center_crop(x, 7), x[..., 0:7, 0:7])
    with pytest.raises(ValueError, match="size"):
        center_crop(x, (8, 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        center_crop([1, 2], 1)


# ------------------------------------------------------------------------------ parameters, init
def test_parameter_count_paper():
    chans = [64, 128, 256, 512, 1024]
    enc = sum(ci * co * 9 + co + co * co * 9 + co for ci, co in zip([1] + chans[:-1], chans))
    dec = sum((2 * c) * c * 4 + c                       # 2x2 up-conv 2c -> c
              + (2 * c) * c * 9 + c + c * c * 9 + c     # block on the concatenation 2c -> c
              for c in chans[:-1])
    assert enc + dec + 64 * 2 + 2 == 31_030_658
    with torch.device("meta"):
        assert count_parameters(UNet()) == 31_030_658
        assert count_parameters(UNet(padding="same")) == 31_030_658


def test_he_initialisation():
    torch.manual_seed(0)
    m = UNet(1, 2, base=32, depth=1)
    w = m.encoder.blocks[0][2].weight.detach()         # 32 -> 32, fan_in 288
    assert abs(float(w.std()) - (2 / 288) ** 0.5) < 0.05 * (2 / 288) ** 0.5
    assert float(m.encoder.blocks[0][0].bias.detach().abs().max()) == 0.0


def test_dropout_at_the_end_of_the_contracting_path():
    m = UNet(1, 2, base=2, depth=2, padding="same", dropout=0.5)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        m.eval()
        torch.testing.assert_close(m(x), m(x))
        m.train()
        assert not torch.allclose(m(x), m(x))


# ------------------------------------------------------------------------------ training
def test_forward_backward():
    torch.manual_seed(0)
    m = UNet(1, 2, base=4, depth=2)
    m(torch.randn(2, 1, 44, 48)).square().mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("padding,n", [("same", 32), ("valid", 60)])
def test_small_unet_overfits_one_batch(padding, n):
    torch.manual_seed(0)
    m = UNet(1, 2, base=4, depth=2, padding=padding, dropout=0.0)
    target = disk(n, (n // 2 - 2, n // 2 + 1))
    x = torch.rand(1, 1, n, n) + target[None, None].float()
    out_size = unet_output_size(n, 2, padding)
    t = center_crop(target, (out_size, out_size))[None]
    first, last = overfit(m, lambda: F.cross_entropy(m(x), t))
    assert last <= 0.1 * first, (first, last)


# ------------------------------------------------------------------------------ multi-task
def test_multitask_outputs_and_sharing():
    torch.manual_seed(0)
    m = MultiTaskUNet(1, {"seg": 2, "dist": 1}, base=4, depth=2, padding="same")
    out = m(torch.randn(2, 1, 21, 18))
    assert list(out) == ["seg", "dist"]
    assert out["seg"].shape == (2, 2, 21, 18) and out["dist"].shape == (2, 1, 21, 18)
    out["dist"].square().mean().backward()            # one task's loss
    assert all(p.grad is None for p in m.decoders["seg"].parameters())
    assert all(p.grad is not None for p in m.decoders["dist"].parameters())
    assert all(p.grad is not None for p in m.encoder.parameters())   # shared encoder


def test_multitask_parameter_count_is_encoder_plus_decoders():
    with torch.device("meta"):
        mt = MultiTaskUNet(1, {"a": 2, "b": 2, "c": 2})
        single = UNet()
    enc = count_parameters(single.encoder)
    assert count_parameters(mt) == enc + 3 * (count_parameters(single) - enc)
    assert list(MultiTaskUNet(1, base=2, depth=1, padding="same").tasks) == ["seg", "contour"]


def test_multitask_overfits():
    torch.manual_seed(0)
    m = MultiTaskUNet(1, {"seg": 2, "dist": 1}, base=4, depth=2, padding="same", dropout=0.0)
    target = disk(32)
    x = torch.rand(1, 1, 32, 32) + target[None, None].float()
    dist = target[None, None].float() * 0.5

    def loss(out):
        return F.cross_entropy(out["seg"], target[None]) + F.mse_loss(out["dist"], dist)
    first, last = overfit(m, lambda: loss(m(x)))
    assert last <= 0.1 * first, (first, last)


# ------------------------------------------------------------------------------ errors
def test_errors():
    with pytest.raises(ValueError, match="padding"):
        UNet(padding="reflect")
    with pytest.raises(ValueError, match="padding"):
        unet_output_size(572, padding="full")
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=0)
    with pytest.raises(TypeError, match="depth"):
        unet_output_size(572, depth=4.0)
    with pytest.raises(ValueError, match="input_size"):
        unet_output_size(0)
    with pytest.raises(ValueError, match="in_channels"):
        UNet(in_channels=0)
    with pytest.raises(ValueError, match="dropout"):
        UNet(dropout=-0.1)
    with pytest.raises(TypeError, match="tasks"):
        MultiTaskUNet(1, {})
    with pytest.raises(ValueError, match="tasks keys"):
        MultiTaskUNet(1, {"a/aux1": 1})
    with pytest.raises(ValueError, match=r"tasks\['a'\]"):
        MultiTaskUNet(1, {"a": 0})
    m = UNet(1, 2, base=2, depth=2, padding="same")
    with pytest.raises(ValueError, match="x must have in_channels=1"):
        m(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        m(torch.randn(1, 16, 16))


# ------------------------------------------------------------------------------ crop_and_concat
from comp448.nets import crop_and_concat  # noqa: E402


def test_crop_and_concat_slices_and_order():
    skip, up = torch.randn(2, 4, 13, 11), torch.randn(2, 3, 6, 7)
    out = crop_and_concat(skip, up)
    assert out.shape == (2, 7, 6, 7)
    torch.testing.assert_close(out[:, :4], skip[:, :, 3:9, 2:9])      # (13 - 6) // 2 = 3, (11 - 7) // 2 = 2
    torch.testing.assert_close(out[:, 4:], up)
    same = torch.randn(2, 1, 13, 11)
    torch.testing.assert_close(crop_and_concat(skip, same), torch.cat([skip, same], 1))


def test_valid_unet_forward_is_crop_and_concat_of_its_own_layers():
    """UNet(padding='valid') written out by hand with plain slicing gives the network's output."""
    torch.manual_seed(0)
    m = UNet(1, 2, base=2, depth=2, dropout=0.0).eval()
    x = torch.randn(1, 1, 44, 44)
    skips, h = m.encoder(x)
    for up, block, skip in zip(m.decoder.ups, m.decoder.blocks, reversed(skips)):
        u = up(h)
        t, l = (skip.shape[-2] - u.shape[-2]) // 2, (skip.shape[-1] - u.shape[-1]) // 2
        h = block(torch.cat([skip[..., t:t + u.shape[-2], l:l + u.shape[-1]], u], 1))
    torch.testing.assert_close(m(x), m.head(h))


@pytest.mark.parametrize("skip, up, err, match", [
    (torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 5, 4), ValueError, "skip"),
    (torch.zeros(2, 2, 8, 8), torch.zeros(1, 2, 4, 4), ValueError, "batch"),
    (torch.zeros(2, 8, 8), torch.zeros(2, 2, 4, 4), ValueError, "skip"),
    (torch.zeros(1, 2, 8, 8), [[0.0]], TypeError, "up"),
])
def test_crop_and_concat_errors(skip, up, err, match):
    with pytest.raises(err, match=match):
        crop_and_concat(skip, up)
