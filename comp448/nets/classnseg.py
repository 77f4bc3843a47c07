"""ClassNSeg: the Y-shaped auto-encoder of Nguyen et al. that classifies, segments and
reconstructs from one shared encoder (lecture slide 24, "Image reconstruction as an
auxiliary unsupervised task").

    Nguyen, Fang, Yamagishi, Echizen. "Multi-task learning for detecting and segmenting
    manipulated facial images and videos." BTAS 2019. https://arxiv.org/abs/1906.06876
    Authors' code: github.com/nii-yamagishilab/ClassNSeg (model/ae.py, train.py, test_seg.py)

Slide 24 writes the joint loss as

    L = gamma_act L_act + gamma_seg L_seg + gamma_rec L_rec
    L_act = 1/N sum_i |a_{i,1} - y_i| + |a_{i,0} - (1 - y_i)|
    L_seg = 1/N sum_i || m_i log(s_i) + (1 - m_i) log(1 - s_i) ||_1
    L_rec = 1/N sum_i || x_i - x_hat_i ||_2

Architecture (reference/papers.md §11, read in the authors' model/ae.py; default arguments build it,
304,949 parameters):

    encoder  9 x [conv3x3 pad 1 -> BN -> ReLU], channels 8, 8(s2), 16, 16(s2), 32, 32(s2),
             64, 64(s2), 128: RGB (B, 3, 256, 256) -> latent (B, 128, 16, 16)
    latent   split into two halves of 64 channels; a_c = mean |half c| (c = 0 fake, 1 real);
             the half of the other class is zeroed before decoding
    shared   4 x [convT3x3 -> BN -> ReLU], 128->64, 64->64 (s2), 64->32, 32->32 (s2)
    seg      convT 32->16, 16->16 (s2), 16->8, 8->8 (s2) (+BN+ReLU each), then convT 8->2
    recon    the same, last convT 8->3 followed by tanh
    (every strided convT has padding 1, output_padding 1, so it exactly doubles the size)

Differences from the authors' code, on purpose:
- ``"seg"`` is returned as LOGITS. The authors end the segmentation branch with a Softmax and then
  feed those probabilities to ``nn.CrossEntropyLoss``, which applies log-softmax again (a double
  softmax: the loss can never reach 0 and its gradients are squashed). Returning logits lets
  ``F.cross_entropy(out["seg"], mask)`` (or the slide's binary CE on ``seg[:, 1] - seg[:, 0]``)
  compute the intended loss stably; apply ``softmax(dim=1)`` yourself for probabilities.
- ``"recon"`` keeps the tanh: it is an image, not a class score, so the no-activation rule of
  ``comp448.nets`` (which is about logits) does not apply. Its range is (-1, 1); the authors
  nevertheless compare it with an ImageNet-normalised image (range about [-2.1, 2.6]) by MSE.
- The authors' L_rec is ``nn.MSELoss`` (mean of squares), not the L2 norm the slide writes.

The activation loss lives here (``activation_loss``) because it is defined on the latent
activations that only this network has; segmentation/reconstruction losses are ordinary
(``F.cross_entropy``, ``F.mse_loss``, or ``comp448.losses``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from comp448._checks import check_choice, check_tensor
from comp448.nets._blocks3d import check_divisible, check_input, check_positive_int

__all__ = ["ClassNSeg", "activation_loss"]


def _conv(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    # conv3x3 pad 1 (stride 2 halves H, W) -> BN -> ReLU
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def _deconv(c_in: int, c_out: int, stride: int, bn_relu: bool = True) -> list[nn.Module]:
    # convT3x3 pad 1; stride 2 with output_padding 1 doubles H, W exactly
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 3, stride=stride, padding=1,
                                                  output_padding=stride - 1)]
    if bn_relu:
        layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
    return layers


class ClassNSeg(nn.Module):
    """Y-shaped auto-encoder of Nguyen et al. (BTAS 2019), slide 24.

    Args:
        in_channels: image channels (3 = RGB in the paper); the reconstruction has the same number.
        num_classes: segmentation classes (2 in the paper: pristine / manipulated pixel).
        base: width knob; encoder widths are base * (1, 1, 2, 2, 4, 4, 8, 8, 16). The paper's
            ``base=8`` gives a 128-channel latent. ``base=2`` trains on a CPU in seconds.
        init: ``"paper"`` (conv weights N(0, 0.02), BN weight N(0.5, 0.02), BN bias 0, as in the
            authors' code) or ``"default"`` (PyTorch's initialisation).

    Input: ``x`` (B, in_channels, H, W) with H, W multiples of 16 (four stride-2 convolutions;
    the paper uses 256 x 256), and optionally ``labels`` (B,) in {0, 1} (0 = fake, 1 = real).

    Output (dict, ``comp448.nets`` convention):
        ``"activation"`` (B, 2): ``[a_0, a_1]``, a_c = mean |latent half c|; predicted class
            = 1 (real) where a_1 >= a_0 (``predict``).
        ``"seg"`` (B, num_classes, H, W): segmentation logits (see the module docstring for why
            not softmax).
        ``"recon"`` (B, in_channels, H, W): reconstruction in (-1, 1) (tanh).

    Latent masking: the half that does not belong to the class is zeroed before decoding. With
    ``labels`` given the ground-truth class is used (training, as in the authors' train.py);
    without, the predicted class is used (test time, as in test_seg.py).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 8, init: str = "paper"):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("num_classes", num_classes)
        check_positive_int("base", base)
        check_choice("init", init, ("paper", "default"))
        self.in_channels, self.num_classes, self.base = in_channels, num_classes, base
        b = base
        enc: list[nn.Module] = []
        widths = [b, b, 2 * b, 2 * b, 4 * b, 4 * b, 8 * b, 8 * b, 16 * b]
        strides = [1, 2, 1, 2, 1, 2, 1, 2, 1]
        c = in_channels
        for w, s in zip(widths, strides):
            enc += _conv(c, w, s)
            c = w
        self.encoder = nn.Sequential(*enc)                      # (B, 16b, H/16, W/16)
        self.latent_channels = 16 * b
        self.shared = nn.Sequential(*_deconv(16 * b, 8 * b, 1), *_deconv(8 * b, 8 * b, 2),
                                    *_deconv(8 * b, 4 * b, 1), *_deconv(4 * b, 4 * b, 2))   # (B, 4b, H/4, W/4)

        def branch(c_out: int) -> nn.Sequential:                 # (B, 4b, H/4, W/4) -> (B, c_out, H, W)
            return nn.Sequential(*_deconv(4 * b, 2 * b, 1), *_deconv(2 * b, 2 * b, 2),
                                 *_deconv(2 * b, b, 1), *_deconv(b, b, 2),
                                 *_deconv(b, c_out, 1, bn_relu=False))
        self.segmenter = branch(num_classes)
        self.reconstructor = branch(in_channels)
        if init == "paper":
            self.apply(self._paper_init)

    @staticmethod
    def _paper_init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)                 # bias keeps PyTorch's default, as in ae.py
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 0.5, 0.02)
            nn.init.zeros_(m.bias)

    @staticmethod
    def activations(latent: torch.Tensor) -> torch.Tensor:
        """(B, 2k, h, w) latent -> (B, 2) ``[a_0, a_1]`` with a_c = mean |half c|."""
        halves = latent.reshape(latent.shape[0], 2, -1)         # (B, 2, k*h*w): half 0 = first k channels
        return halves.abs().mean(dim=2)

    @staticmethod
    def predict(activation: torch.Tensor) -> torch.Tensor:
        """(B, 2) activations -> (B,) int64 class, 1 (real) where a_1 >= a_0 (the authors' rule)."""
        return (activation[:, 1] >= activation[:, 0]).long()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_input("x", x, spatial_dims=2, channels=self.in_channels)
        check_divisible("x", x, 16, "ClassNSeg down-samples 4 times by stride-2 convolutions")
        B = x.shape[0]
        latent = self.encoder(x)                                # (B, 16b, H/16, W/16)
        act = self.activations(latent)                          # (B, 2)
        if labels is None:
            cls = self.predict(act.detach())                    # test time: predicted class
        else:
            check_tensor("labels", labels)
            if labels.shape != (B,):
                raise ValueError(f"labels must have shape (B,) = ({B},), got {tuple(labels.shape)}")
            if labels.is_floating_point() and bool(torch.isnan(labels).any()):
                raise ValueError("labels contains NaN")
            if not bool(((labels == 0) | (labels == 1)).all()):
                raise ValueError(f"labels must be 0 (fake) or 1 (real), got values {labels.unique().tolist()}")
            cls = labels.long()
        keep = F.one_hot(cls, 2).to(latent.dtype)               # (B, 2): 1 for the class's half
        h, w = latent.shape[2:]
        masked = (latent.reshape(B, 2, -1, h, w) * keep[:, :, None, None, None]).reshape(latent.shape)
        z = self.shared(masked)                                 # (B, 4b, H/4, W/4)
        return {
            "activation": act,                                  # (B, 2)
            "seg": self.segmenter(z),                           # (B, num_classes, H, W) logits
            "recon": torch.tanh(self.reconstructor(z)),         # (B, in_channels, H, W) in (-1, 1)
        }


def activation_loss(activation: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Slide 24: ``L_act = 1/N sum_i |a_{i,1} - y_i| + |a_{i,0} - (1 - y_i)|``.

    Args:
        activation: (B, 2) ``[a_0, a_1]`` as returned in ``ClassNSeg(...)(x)["activation"]``.
        labels: (B,) with y = 1 for real, 0 for fake (floats in [0, 1] accepted).
        reduction: ``"mean"`` (the slide's 1/N, N = batch size), ``"sum"`` or ``"none"`` (per image, (B,)).
    """
    check_tensor("activation", activation, floating=True, ndim=2)
    if activation.shape[1] != 2:
        raise ValueError(f"activation must have shape (B, 2), got {tuple(activation.shape)}")
    check_tensor("labels", labels, ndim=1)
    if labels.shape[0] != activation.shape[0]:
        raise ValueError(f"labels must have shape (B,) = ({activation.shape[0]},), got {tuple(labels.shape)}")
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    y = labels.to(activation.dtype)
    if bool(torch.isnan(y).any()) or bool(((y < 0) | (y > 1)).any()):
        raise ValueError("labels must lie in [0, 1] (1 = real, 0 = fake) and not be NaN")
    per = (activation[:, 1] - y).abs() + (activation[:, 0] - (1 - y)).abs()    # (B,)
    return per.mean() if reduction == "mean" else per.sum() if reduction == "sum" else per
