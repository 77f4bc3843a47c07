"""ClassNSeg (Nguyen et al. 2019, slide 24) and activation_loss.

Oracles: the parameter count 304,949 of papers.md §11 and a layer list written out here, the
activation a_c = mean|half c| computed by hand from the encoder output, forward hooks on the decoder
input (masking), hand-computed activation-loss values.
"""
import pytest
import torch
import torch.nn.functional as F

from comp448.nets import ClassNSeg, activation_loss, count_parameters
from ._overfit import assert_overfits


def _conv_bn(c_in, c_out):          # conv3x3 with bias + BN(weight, bias)
    return 9 * c_in * c_out + c_out + 2 * c_out


def test_paper_parameter_count_is_304949():
    enc = [(3, 8), (8, 8), (8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128)]
    shared = [(128, 64), (64, 64), (64, 32), (32, 32)]
    branch = [(32, 16), (16, 16), (16, 8), (8, 8)]
    expected = (sum(_conv_bn(a, b) for a, b in enc + shared + branch + branch)
                + (9 * 8 * 2 + 2) + (9 * 8 * 3 + 3))      # last seg / recon layers: no BN
    assert expected == 304_949
    assert count_parameters(ClassNSeg()) == 304_949


def test_paper_shapes_256():
    torch.manual_seed(0)
    m = ClassNSeg().eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 256, 256))
        latent = m.encoder(torch.randn(1, 3, 256, 256))
    assert latent.shape == (1, 128, 16, 16)
    assert list(out) == ["activation", "seg", "recon"]
    assert out["activation"].shape == (1, 2)
    assert out["seg"].shape == (1, 2, 256, 256)
    assert out["recon"].shape == (1, 3, 256, 256)


def test_paper_init():
    torch.manual_seed(0)
    m = ClassNSeg()
    w = torch.cat([mod.weight.flatten() for mod in m.modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))])
    bn = torch.cat([mod.weight for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)])
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002
    assert abs(bn.mean().item() - 0.5) < 0.01 and bn.std().item() < 0.04


def test_activation_is_mean_abs_of_latent_halves_and_prediction_rule():
    torch.manual_seed(1)
    m = ClassNSeg(base=2).eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = m(x)
        latent = m.encoder(x)                        # (3, 32, 2, 2)
    a0 = latent[:, :16].abs().mean(dim=(1, 2, 3))
    a1 = latent[:, 16:].abs().mean(dim=(1, 2, 3))
    torch.testing.assert_close(out["activation"], torch.stack([a0, a1], 1))
    assert ClassNSeg.predict(torch.tensor([[0.2, 0.3], [0.5, 0.1], [0.4, 0.4]])).tolist() == [1, 0, 1]


def _decoder_input(m, x, labels=None):
    seen = {}

    def hook(mod, inp, out):                         # returns None: the output is left alone
        seen["z"] = inp[0].detach()
    h = m.shared.register_forward_hook(hook)
    with torch.no_grad():
        out = m(x, labels)
    h.remove()
    return out, seen["z"]


def test_latent_masking_with_labels_and_with_prediction():
    torch.manual_seed(2)
    m = ClassNSeg(base=2).eval()
    x = torch.randn(2, 3, 16, 16)
    out, z = _decoder_input(m, x, torch.tensor([0, 1]))
    assert (z[0, 16:] == 0).all() and (z[0, :16] != 0).any()     # fake: keep half 0
    assert (z[1, :16] == 0).all() and (z[1, 16:] != 0).any()     # real: keep half 1
    out, z = _decoder_input(m, x)                                  # test time: predicted class
    pred = ClassNSeg.predict(out["activation"])
    for i, c in enumerate(pred.tolist()):
        assert (z[i, 16 * (1 - c): 16 * (2 - c)] == 0).all()
    # float labels {0., 1.} are accepted like ints
    out_f, z_f = _decoder_input(m, x, torch.tensor([0.0, 1.0]))
    out_i, z_i = _decoder_input(m, x, torch.tensor([0, 1]))
    torch.testing.assert_close(z_f, z_i)


def test_seg_is_logits_and_recon_in_tanh_range():
    torch.manual_seed(3)
    m = ClassNSeg(base=2, init="default")
    out = m(torch.randn(2, 3, 16, 16), torch.tensor([0, 1]))
    s = out["seg"].sum(1)
    assert not torch.allclose(s, torch.ones_like(s))               # not a softmax
    assert out["seg"].min() < 0 or out["seg"].max() > 1
    assert out["recon"].abs().max() < 1


def test_forward_backward_all_parameters_get_gradients():
    torch.manual_seed(4)
    m = ClassNSeg(in_channels=1, num_classes=3, base=2)
    x = torch.randn(2, 1, 32, 16)
    y = torch.tensor([1, 0])
    out = m(x, y)
    assert out["seg"].shape == (2, 3, 32, 16) and out["recon"].shape == (2, 1, 32, 16)
    loss = activation_loss(out["activation"], y) + out["seg"].square().mean() + out["recon"].square().mean()
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_small_version_overfits_one_batch():
    torch.manual_seed(0)
    m = ClassNSeg(base=4, init="default")
    x = F.interpolate(torch.randn(2, 3, 4, 4), size=(16, 16), mode="bilinear", align_corners=False)
    y = torch.tensor([0, 1])
    mask = (x[:, 0] > 0).long()

    def loss():
        out = m(x, y)
        return activation_loss(out["activation"], y) + F.cross_entropy(out["seg"], mask) \
            + F.mse_loss(out["recon"], torch.tanh(x))
    assert_overfits(m, loss)


def test_activation_loss_hand_computed():
    act = torch.tensor([[0.2, 0.9], [0.7, 0.1]])
    y = torch.tensor([1, 0])
    # image 0 (real): |0.9 - 1| + |0.2 - 0| = 0.3; image 1 (fake): |0.1 - 0| + |0.7 - 1| = 0.4
    torch.testing.assert_close(activation_loss(act, y, reduction="none"), torch.tensor([0.3, 0.4]))
    torch.testing.assert_close(activation_loss(act, y), torch.tensor(0.35))
    torch.testing.assert_close(activation_loss(act, y, reduction="sum"), torch.tensor(0.7))
    assert activation_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([1.0])).item() == 0.0


@pytest.mark.parametrize("bad, exc, word", [
    (lambda m: m(torch.randn(1, 3, 24, 16)), ValueError, r"24 -> 32 \(or 16\)"),     # 24 not divisible by 16
    (lambda m: m(torch.randn(1, 1, 16, 16)), ValueError, "channel"),
    (lambda m: m(torch.randn(3, 16, 16)), ValueError, "x"),
    (lambda m: m(torch.zeros(1, 3, 16, 16, dtype=torch.long)), TypeError, "floating"),
    (lambda m: m([[1.0]]), TypeError, "x"),
    (lambda m: m(torch.randn(2, 3, 16, 16), torch.tensor([0, 2])), ValueError, "labels"),
    (lambda m: m(torch.randn(2, 3, 16, 16), torch.tensor([0])), ValueError, "labels"),
    (lambda m: m(torch.randn(2, 3, 16, 16), torch.tensor([0.0, float("nan")])), ValueError, "labels"),
])
def test_forward_errors(bad, exc, word):
    m = ClassNSeg(base=2)
    with pytest.raises(exc, match=word):
        bad(m)


@pytest.mark.parametrize("kw, exc, word", [
    (dict(base=0), ValueError, "base"), (dict(base=2.5), TypeError, "base"),
    (dict(in_channels=0), ValueError, "in_channels"), (dict(num_classes=True), TypeError, "num_classes"),
    (dict(init="xavier"), ValueError, "init"),
])
def test_constructor_errors(kw, exc, word):
    with pytest.raises(exc, match=word):
        ClassNSeg(**kw)


@pytest.mark.parametrize("act, y, exc, word", [
    (torch.zeros(2, 3), torch.zeros(2), ValueError, "activation"),
    (torch.zeros(2), torch.zeros(2), ValueError, "activation"),
    (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2), TypeError, "activation"),
    (torch.zeros(2, 2), torch.zeros(3), ValueError, "labels"),
    (torch.zeros(2, 2), torch.tensor([0.0, 2.0]), ValueError, "labels"),
    (torch.zeros(2, 2), torch.tensor([0.0, float("nan")]), ValueError, "labels"),
    (torch.zeros(2, 2), [0, 1], TypeError, "labels"),
])
def test_activation_loss_errors(act, y, exc, word):
    with pytest.raises(exc, match=word):
        activation_loss(act, y)


def test_activation_loss_bad_reduction():
    with pytest.raises(ValueError, match="reduction"):
        activation_loss(torch.zeros(1, 2), torch.zeros(1), reduction="avg")
