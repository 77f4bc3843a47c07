"""FourierNet: a shape-preserving cascaded network (slides 21-22).

Cansiz et al. "FourierNet: Shape-preserving network for Henle's fiber layer segmentation in
optical coherence tomography images", IEEE Journal of Biomedical and Health Informatics, 2023.

Slide 21: "A cascaded network design: quantifies the shape of an object with a function defined on
its contour; expands this function in a Fourier series and uses the harmonic amplitudes of its
Fourier coefficients as the Fourier descriptors of the object; defines a regression task of
learning these descriptors." Slide 22: the descriptors of an object are "the first N harmonic
amplitudes" ``sqrt(a_n^2 + b_n^2)`` of the distance-to-centre function ``xi(l)`` along the contour
(``comp448.targets.fourier_descriptors`` computes them from a ground-truth mask).

What the slides fix: a cascade; a segmentation task; a regression of N harmonic amplitudes.
**Our reading of the paper** (no public FourierNet code was found, so the following are design
decisions of this package, not facts from the paper):

- stage 1 is a U-Net (``padding="same"``, the same-lab FourierLoss U-Net layout: 2x[3x3 conv + ReLU],
  max-pool, 2x2 up-convolution, concatenation) that segments the image: ``"stage1"`` logits;
- stage 2 is a second U-Net whose input is the image concatenated with stage 1's class
  probabilities (softmax over classes, or sigmoid when ``num_classes == 1``); it outputs the refined
  segmentation ``"seg"`` and, from its bottleneck (global average pooling -> Linear -> ReLU ->
  Linear), ``"amplitudes"``: N harmonic amplitudes for each object class;
- gradients flow from stage 2 into stage 1 (``detach_stage1=True`` trains the stages as separate
  steps); the regression output has no activation (amplitudes are in pixels, unnormalised, as in
  the lab's FourierLoss code, so normalise the targets, e.g. divide by the image size);
- ``n_harmonics=5`` follows the lab's FourierLoss code (its harmonic weights have 5 entries).
- A suggested loss: ``CE(stage1) + CE(seg) + lambda * MSE(amplitudes, descriptors of the ground
  truth)`` with ``comp448.losses.multitask_loss``.

Output: ``{"stage1": (B, C, H, W), "seg": (B, C, H, W), "amplitudes": (B, K, N)}`` with
``C = num_classes``, ``K = amplitude_classes`` (default ``num_classes - 1``, the object classes, or 1
when ``num_classes == 1``) and ``N = n_harmonics``. Any input size ``>= 2**depth`` works.
Width/depth knobs ``base``, ``depth``, ``hidden``.
"""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import check_image, check_int
from .unet import UNet


class FourierNet(nn.Module):
    """Two-stage cascade: segment, then segment again and regress Fourier amplitudes.

    Args:
        in_channels: image channels. num_classes: segmentation classes (2: background, object).
        n_harmonics: N, amplitudes per object class. amplitude_classes: K (default: see above).
        base, depth: width of the first U-Net level (64) and number of poolings (4).
        hidden: width of the amplitude head's hidden layer (256).
        detach_stage1: stop the gradient from stage 2 to stage 1.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, n_harmonics: int = 5,
                 amplitude_classes: int | None = None, base: int = 64, depth: int = 4, hidden: int = 256,
                 detach_stage1: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("n_harmonics", n_harmonics)
        check_int("hidden", hidden)
        if amplitude_classes is None:
            amplitude_classes = max(num_classes - 1, 1)
        check_int("amplitude_classes", amplitude_classes)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.n_harmonics, self.amplitude_classes, self.detach_stage1 = n_harmonics, amplitude_classes, detach_stage1
        self.stage1 = UNet(in_channels, num_classes, base, depth, padding="same", dropout=0.0)
        self.stage2 = UNet(in_channels + num_classes, num_classes, base, depth, padding="same", dropout=0.0)
        self.amplitude_head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),                       # (B, base*2^depth)
            nn.Linear(base * 2 ** depth, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, amplitude_classes * n_harmonics))         # (B, K*N)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        s1 = self.stage1(x)                                              # (B, C, H, W) logits
        p1 = torch.sigmoid(s1) if self.num_classes == 1 else torch.softmax(s1, dim=1)
        if self.detach_stage1:
            p1 = p1.detach()
        skips, bottom = self.stage2.features(torch.cat([x, p1], dim=1))  # bottom: (B, base*2^d, h, w)
        seg = self.stage2.head(self.stage2.decoder(skips, bottom))       # (B, C, H, W) logits
        amps = self.amplitude_head(bottom).view(-1, self.amplitude_classes, self.n_harmonics)  # (B, K, N)
        return {"stage1": s1, "seg": seg, "amplitudes": amps}
