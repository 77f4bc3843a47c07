"""V-Net: fully convolutional volumetric segmentation with residual stages (lecture slide 26,
"Dice loss for 3D segmentation").

    Milletari, Navab, Ahmadi. "V-Net: Fully convolutional neural networks for volumetric medical
    image segmentation." 3DV 2016. https://arxiv.org/abs/1606.04797
    Authors' Caffe code: github.com/faustomilletari/VNet (train_noPooling_ResNet_cinque.prototxt)

Architecture (reference/papers.md §13):
- every convolution is 5x5x5 with padding 2 followed by a per-channel PReLU; no BatchNorm; MSRA init;
- down-sampling by a 2x2x2 stride-2 convolution (+ PReLU) that doubles the channels, not pooling;
  up-sampling by a 2x2x2 stride-2 transposed convolution (+ PReLU);
- each stage is residual: its input is added to the output of its last convolution, then PReLU;
  in stage 1 the input is tiled to 16 channels for that sum;
- widths 16, 32, 64, 128, 256 (the left stages at full, 1/2, 1/4, 1/8, 1/16 resolution);
  the right stages concatenate the up-sampled map with the left stage of the same resolution
  (widths 256, 128, 64, 32), the residual being that concatenation;
- head: 1x1x1 convolution to ``num_classes`` (2 in the paper) after the last stage; softmax and the
  squared-denominator Dice loss (``comp448.losses.dice_loss(squared=True)``) are outside the net.

Convolutions per stage. The slide shows the paper's Fig. 2: left 1, 2, 3, 3, 3 (the last is the
bottom stage), right 3, 3, 2, 1. The authors' prototxt has left 1, 1, 2, 3, 3 and right 3, 2, 1, 1
(papers.md: MISMATCH, the figure counts are reported but unverified). We follow the slide by default
(``convs="paper"``) and offer ``convs="prototxt"`` or any pair of tuples.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from comp448.nets._blocks3d import check_divisible, check_input, check_positive_int

__all__ = ["VNet", "VNET_CONVS"]

# (left stages 1..5, right stages deepest..finest)
VNET_CONVS = {
    "paper": ((1, 2, 3, 3, 3), (3, 3, 2, 1)),       # slide 26 / paper Fig. 2
    "prototxt": ((1, 1, 2, 3, 3), (3, 2, 1, 1)),    # authors' Caffe prototxt
}


class _ResStage(nn.Module):
    """``n`` x [conv5^3 -> PReLU] with the last PReLU applied after adding the residual:
    (B, c_in, S) -> (B, c, S), out = PReLU(convs(x) + residual); only the first conv maps c_in -> c."""

    def __init__(self, c: int, n: int, c_in: int | None = None):
        super().__init__()
        c_in = c if c_in is None else c_in
        self.convs = nn.ModuleList(nn.Conv3d(c_in if i == 0 else c, c, 5, padding=2) for i in range(n))
        self.acts = nn.ModuleList(nn.PReLU(c) for _ in range(n))

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        for i, (conv, act) in enumerate(zip(self.convs, self.acts)):
            x = conv(x)
            x = act(x + residual) if i == len(self.convs) - 1 else act(x)
        return x


class VNet(nn.Module):
    """V-Net (Milletari et al. 2016), slide 26.

    Args:
        in_channels: input channels (1 for prostate MRI); must divide ``base`` (the input is tiled).
        num_classes: output channels (logits); 2 in the paper.
        base: width of stage 1 (16 in the paper); stage s has ``base * 2^(s-1)`` channels.
        convs: ``"paper"`` (slide: left 1,2,3,3,3, right 3,3,2,1), ``"prototxt"`` (authors' code:
            left 1,1,2,3,3, right 3,2,1,1), or a pair ``(left 5-tuple, right 4-tuple)``.

    Input (B, in_channels, D, H, W) with D, H, W multiples of 16 (four stride-2 down-samplings; the
    paper uses 128 x 128 x 64); other sizes raise ValueError with the nearest valid sizes.
    Output: logits (B, num_classes, D, H, W).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 16, convs="paper"):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("base", base)):
            check_positive_int(name, v)
        if base % in_channels:
            raise ValueError(f"in_channels ({in_channels}) must divide base ({base}): stage 1 tiles the input "
                             f"to base channels for its residual sum")
        if isinstance(convs, str):
            if convs not in VNET_CONVS:
                raise ValueError(f"convs must be one of {sorted(VNET_CONVS)} or a pair (left 5-tuple, right 4-tuple), "
                                 f"got {convs!r}")
            left, right = VNET_CONVS[convs]
        else:
            ok = (isinstance(convs, (tuple, list)) and len(convs) == 2 and len(convs[0]) == 5 and len(convs[1]) == 4
                  and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in (*convs[0], *convs[1])))
            if not ok:
                raise ValueError(f"convs must be 'paper', 'prototxt' or a pair (left 5-tuple, right 4-tuple) of "
                                 f"ints >= 1, got {convs!r}")
            left, right = tuple(convs[0]), tuple(convs[1])
        self.in_channels, self.base, self.convs = in_channels, base, (left, right)
        w = [base * 2 ** s for s in range(5)]                         # 16, 32, 64, 128, 256
        self.stage1 = _ResStage(base, left[0], c_in=in_channels)      # residual: the tiled input
        self.downs = nn.ModuleList(nn.Sequential(nn.Conv3d(w[s], w[s + 1], 2, stride=2), nn.PReLU(w[s + 1]))
                                   for s in range(4))
        self.left = nn.ModuleList(_ResStage(w[s + 1], left[s + 1]) for s in range(4))
        # right stage j (j = 0 deepest): up from width u_in to u_in/2, concat skip -> width w[3-j]*2
        self.ups, self.right = nn.ModuleList(), nn.ModuleList()
        u_in = w[4]
        for j in range(4):
            skip_w = w[3 - j]
            self.ups.append(nn.Sequential(nn.ConvTranspose3d(u_in, skip_w, 2, stride=2), nn.PReLU(skip_w)))
            self.right.append(_ResStage(2 * skip_w, right[j]))
            u_in = 2 * skip_w
        self.head = nn.Conv3d(2 * base, num_classes, 1)
        for m in self.modules():                                      # MSRA init, as in the Caffe code
            if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("x", x, spatial_dims=3, channels=self.in_channels)
        check_divisible("x", x, 16, "V-Net down-samples 4 times by stride-2 convolutions")
        tiled = x.repeat(1, self.base // self.in_channels, 1, 1, 1)  # (B, 16, S)
        h = self.stage1(x, tiled)                                     # (B, 16, S)
        skips = [h]
        for down, stage in zip(self.downs, self.left):
            d = down(h)                                               # (B, 2c, S/2)
            h = stage(d, d)                                           # residual: the down-conv output
            skips.append(h)
        # skips: (B,16,S), (B,32,S/2), (B,64,S/4), (B,128,S/8), (B,256,S/16) = bottom
        for j, (up, stage) in enumerate(zip(self.ups, self.right)):
            cat = torch.cat([up(h), skips[3 - j]], dim=1)              # (B, 2*w, S_j)
            h = stage(cat, cat)
        return self.head(h)                                           # (B, num_classes, D, H, W)
