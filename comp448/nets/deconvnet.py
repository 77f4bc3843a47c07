"""DeconvNet: learning a deconvolution network for semantic segmentation (slides 6-8).

Noh, Hong, Han. "Learning deconvolution network for semantic segmentation", ICCV 2015
(arXiv 1505.04366); reference Caffe model ``HyeonwooNoh/DeconvNet``
(``DeconvNet_inference_deploy.prototxt``).

Slide 6: "also learn a multi-layer deconvolution network, which is composed of successive
deconvolution, unpooling, and rectified linear unit (ReLU) layers".
Slide 8: unpooling "records the locations of maximum activations selected during pooling in
switch variables, which are employed to place each activation back to its original pooled
location"; deconvolution "densifies sparse activations obtained by unpooling".

What is built (defaults = the reference, input 224x224):

- Encoder: VGG-16's 13 convs (3x3, pad 1) each followed by BatchNorm + ReLU; the five 2x2/2
  max-pools keep their **switches** (``MaxPool2d(return_indices=True)``).
- fc6: 7x7 conv to 4096 (224 input -> 1x1) + BN + ReLU; fc7: 1x1 conv to 4096 + BN + ReLU. No dropout.
- Decoder, the mirror image: fc6-deconv (7x7 transposed conv to 512, 1x1 -> 7x7) + BN + ReLU, then
  for each group from 5 down to 1: ``MaxUnpool2d`` with that group's switches, then 3x3
  transposed convs (pad 1) + BN + ReLU with channels
  512,512,512 | 512,512,256 | 256,256,128 | 128,64 | 64,64; finally a 1x1 conv to ``num_classes``.
- No skip connections: only the pooling switches pass from encoder to decoder.

Parameter count at the defaults (3 in, 21 classes): conv + deconv weights and biases
**251,772,245**, plus **33,408** BatchNorm affine parameters (scale and shift), so
``count_parameters`` gives 251,805,653.

Input size: any ``H, W`` whose pool5 map is at least ``fc_kernel`` (7) wide, i.e.
``H, W >= 32 * fc_kernel``. Odd sizes work: each unpooling restores the exact pre-pool size
(``output_size``), the pool's dropped last row/column comes back as zeros. Smaller inputs raise a
ValueError naming ``x``.

Output: logits ``(B, num_classes, H, W)``.

Width knob: ``base`` (VGG widths ``base * (1, 2, 4, 8, 8)``), ``fc_channels`` and ``fc_kernel``;
``DeconvNet(1, 2, base=4, fc_channels=16, fc_kernel=1)`` runs on 32x32 inputs on a CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import check_image, check_int, check_min_size
from .fcn import VGG16Encoder


def _bn_relu(layer: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(layer, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class DeconvNet(nn.Module):
    """VGG16-BN encoder with pooling switches + mirrored unpooling/deconvolution decoder.

    Args:
        in_channels: image channels. num_classes: output classes (21 for PASCAL VOC).
        base: first VGG width (64). fc_channels: width of fc6/fc7 (4096).
        fc_kernel: fc6's kernel (7); the input must be at least ``32 * fc_kernel`` pixels.
    """

    # decoder widths per group, deepest first: mirror of VGG-16 (the last conv of a group
    # goes to the next group's width)
    _DECODER = ((8, 8, 8), (8, 8, 4), (4, 4, 2), (2, 1), (1, 1))

    def __init__(self, in_channels: int = 3, num_classes: int = 21, base: int = 64,
                 fc_channels: int = 4096, fc_kernel: int = 7):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("base", base)
        check_int("fc_channels", fc_channels)
        check_int("fc_kernel", fc_kernel)
        self.in_channels, self.num_classes, self.fc_kernel = in_channels, num_classes, fc_kernel
        self.encoder = VGG16Encoder(in_channels, base, batch_norm=True, return_indices=True)
        top = self.encoder.widths[-1]
        self.fc6 = _bn_relu(nn.Conv2d(top, fc_channels, fc_kernel), fc_channels)
        self.fc7 = _bn_relu(nn.Conv2d(fc_channels, fc_channels, 1), fc_channels)
        self.fc6_deconv = _bn_relu(nn.ConvTranspose2d(fc_channels, top, fc_kernel), top)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.decoder = nn.ModuleList()
        cin = top
        for mults in self._DECODER:
            layers = []
            for m in mults:
                layers.append(_bn_relu(nn.ConvTranspose2d(cin, base * m, 3, padding=1), base * m))
                cin = base * m
            self.decoder.append(nn.Sequential(*layers))
        self.score = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_channels)
        h, w = x.shape[-2:]
        for _ in range(5):
            h, w = h // 2, w // 2
        if min(h, w) < self.fc_kernel:
            check_min_size(x, 32 * self.fc_kernel,
                           f"DeconvNet with fc_kernel={self.fc_kernel} (pool5 must be at least "
                           f"{self.fc_kernel} pixels)")
        f = self.encoder(x)                        # pool5: (B, 8b, H/32, W/32)
        y = self.fc7(self.fc6(f["pool5"]))         # (B, fc, H/32 - k + 1, W/32 - k + 1)
        y = self.fc6_deconv(y)                     # (B, 8b, H/32, W/32)
        for k, block in zip(range(5, 0, -1), self.decoder):
            size = f[f"conv{k}"].shape[-2:]        # the size before pool k
            y = self.unpool(y, f[f"indices{k}"], output_size=size)  # (B, ., size): sparse
            y = block(y)                                             # (B, ., size): dense
        return self.score(y)                       # (B, num_classes, H, W)
