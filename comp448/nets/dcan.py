"""DCAN: deep contour-aware network (slide 19).

Chen, Qi, Yu, Heng. "DCAN: Deep contour-aware networks for accurate gland segmentation",
CVPR 2016 (arXiv 1604.02677); journal version Chen et al., Medical Image Analysis 2017 (the URL on
slide 19; the slide's title is the CVPR paper's). Winner of the MICCAI 2015 GlaS challenge.

Slide 19 (contour-aware networks, Fig. 3 of the paper): one shared down-sampling path, two
up-sampling branches, one predicting the object (gland) probability and one its **contour**, each
from several levels of the feature hierarchy with **auxiliary supervision** of every level; at test
time a pixel is an object pixel when ``p_object >= 0.5`` and ``p_contour < 0.5``, which separates
touching objects. Targets: ``comp448.targets.contour_map``; losses:
``comp448.losses.deep_supervision_loss`` on ``side_outputs(out, "object")`` and ``(out, "contour")``,
combined with ``multitask_loss``.

What is built (facts from the hover_net reimplementation ``vqdang/hover_net`` ``src/model/dcan.py``;
the deconvolution upsampling from the paper, [recalled - unverified]):

- shared encoder: VGG-16's 13 convs (3x3, pad 1, ReLU) and 5 max-pools (rounding up so any input
  size works), then conv6: 7x7 conv to 1024 (pad 3) + ReLU + Dropout(0.5) + 1x1 conv to 1024 + ReLU;
- three levels: conv4_3 (stride 8), conv5_3 (stride 16), conv6 (stride 32);
- per task ("object", "contour") and per level: a 1x1 conv to ``num_classes`` scores, then a
  transposed conv (kernel 2s, stride s, padding s/2) initialised to bilinear upsampling
  (:func:`comp448.nets.fcn.bilinear_kernel`; learnable unless ``learnable_upsampling=False``),
  cropped to the input size. With these settings the output pixel y of a stride-s map sits at input
  position ``s*x + s/2 - 1/2``, the same as the feature cell x, so all levels are aligned;
- the fused logit of a task is the **sum** of its levels (hover_net: resize + 1x1 conv per level,
  then sum; a 1x1 conv and a bilinear upsampling commute, so this is the same operation).

Output (logits, all ``(B, num_classes, H, W)``):
``{"object", "object/aux1", "object/aux2", "object/aux3", "contour", "contour/aux1", ...}``; aux1 is
the shallowest level (conv4_3), aux3 the deepest (conv6); ``out[task] = sum of its aux``.

Width knobs ``base``, ``conv6_channels``, ``conv6_kernel``; ``DCAN(1, 1, base=4,
conv6_channels=16, conv6_kernel=1)`` trains on a CPU in seconds. Initialisation: He et al. 2015
(``DCAN.reset_parameters``), since we train from scratch where the authors fine-tuned ImageNet VGG-16.
"""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import check_image, check_int, check_prob, he_init
from .fcn import VGG16Encoder, _bilinear_upsampler

TASKS = ("object", "contour")
STRIDES = (8, 16, 32)


class DCAN(nn.Module):
    """Contour-aware multi-task FCN with multi-level auxiliary outputs (see module docstring).

    Args:
        in_channels: image channels (3 for H&E). num_classes: scores per task (2 = softmax
            background/foreground as in the paper; 1 gives a single sigmoid logit).
        base: first VGG width (64). conv6_channels, conv6_kernel: conv6 width (1024) and kernel (7).
        dropout: after conv6 (0.5). learnable_upsampling: learn the bilinear-initialised deconvs.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, base: int = 64,
                 conv6_channels: int = 1024, conv6_kernel: int = 7, dropout: float = 0.5,
                 learnable_upsampling: bool = True):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("base", base)
        check_int("conv6_channels", conv6_channels)
        check_int("conv6_kernel", conv6_kernel)
        if conv6_kernel % 2 == 0:
            raise ValueError(f"conv6_kernel must be odd (so that 'same' padding keeps the size), got {conv6_kernel}")
        check_prob("dropout", dropout)
        self.in_channels = in_channels
        self.encoder = VGG16Encoder(in_channels, base, ceil_mode=True)
        w = self.encoder.widths
        self.conv6 = nn.Sequential(
            nn.Conv2d(w[4], conv6_channels, conv6_kernel, padding=conv6_kernel // 2), nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Conv2d(conv6_channels, conv6_channels, 1), nn.ReLU(inplace=True))
        level_channels = (w[3], w[4], conv6_channels)
        self.classifiers = nn.ModuleDict({
            t: nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in level_channels) for t in TASKS})
        self.upsamplers = nn.ModuleDict({
            t: nn.ModuleList(_bilinear_upsampler(num_classes, s, s // 2, learnable_upsampling) for s in STRIDES)
            for t in TASKS})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """From-scratch initialisation (the authors started from ImageNet VGG-16 weights, which we do
        not ship). He et al. 2015 (arXiv 1502.01852) for every conv followed by a ReLU: the VGG
        encoder (``VGG16Encoder.reset_parameters``) and conv6, weights N(0, 2 / fan_in), biases 0.
        The 1x1 classifiers feed no ReLU: N(0, 1 / fan_in) (He's gain for a linear layer), biases 0,
        so each level's logits start at about the scale of its features. The transposed convs
        keep their bilinear-interpolation initialisation."""
        self.encoder.reset_parameters()
        he_init(self.conv6)
        for heads in self.classifiers.values():
            for m in heads:
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="linear")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        H, W = x.shape[-2:]
        f = self.encoder(x)
        levels = [f["conv4"],                 # (B, 8b, ceil(H/8), ceil(W/8))
                  f["conv5"],                 # (B, 8b, ceil(H/16), .)
                  self.conv6(f["pool5"])]     # (B, conv6, ceil(H/32), .)
        out: dict[str, torch.Tensor] = {}
        for t in TASKS:
            aux = [up(cls(feat))[..., :H, :W]          # (B, num_classes, H, W) each
                   for feat, cls, up in zip(levels, self.classifiers[t], self.upsamplers[t])]
            out[t] = aux[0] + aux[1] + aux[2]          # fused logit: sum of the levels
            for k, a in enumerate(aux, start=1):
                out[f"{t}/aux{k}"] = a
        return out
