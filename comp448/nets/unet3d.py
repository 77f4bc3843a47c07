"""3D U-Net with multi-level deep supervision (lecture slide 25, "3D U-net for MR image segmentation").

    Zeng, Yang, Li, Zheng et al. "3D U-net with multi-level deep supervision: fully automatic
    segmentation of proximal femur in 3D MR images." MLMI 2017, LNCS 10541.
    https://link.springer.com/chapter/10.1007/978-3-319-67389-9_32

What the paper states (reference/papers.md §12): a deeply supervised 3D U-Net-like FCN mapping
the whole volume to labels, with multi-level deep supervision against vanishing gradients.
The layer widths, which decoder levels are supervised and the auxiliary weights are NOT verified
(papers.md §17; the authors' code repository holds only a README). Our reading, a design choice:

    encoder   level l = 0..depth: 2 x [conv3^3 -> BN -> ReLU], width base * 2^l, max-pool 2 between
              (3D U-Net of Cicek et al. 2016 style; defaults base 32, depth 3: widths 32, 64, 128, 256)
    decoder   transposed conv 2^3 stride 2, concatenate the encoder map, 2 x [conv3^3 -> BN -> ReLU]
    main head 1^3 conv on the finest decoder level                                   -> "seg"
    aux heads 1^3 conv on decoder level k (at 1/2^k resolution), k = 1..depth-1, trilinearly
              up-sampled to the input size                                          -> "seg/aux<k>"

The deep-supervision loss is L = L_main + sum_k w_k L_k (``comp448.losses.deep_supervision_loss``
on ``side_outputs(out, "seg")``), with w_k decayed during training as in DCAN/VoxResNet.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from comp448.nets._blocks3d import UDecoder, UEncoder, check_input, check_min_size, check_positive_int

__all__ = ["UNet3D"]


class UNet3D(nn.Module):
    """3D U-Net with multi-level deep supervision (Zeng et al. 2017), slide 25.

    Args:
        in_channels: input channels (1 for a single MR sequence).
        num_classes: output channels (logits); 2 for femur vs background.
        base: width of the first level (default 32); level l has ``base * 2^l`` channels.
        depth: number of max-poolings (default 3).
        deep_supervision: add the auxiliary heads (default True). With False the network returns
            the ``"seg"`` tensor alone.

    Input (B, in_channels, D, H, W), every size >= 2^depth; sizes need NOT be multiples of 2^depth
    (the up-sampled maps are centre-cropped/zero-padded to the encoder maps).

    Output: ``{"seg": (B, num_classes, D, H, W), "seg/aux1": ..., "seg/aux<depth-1>": ...}`` (all
    logits at the input size; aux1 is the shallowest supervised level, at 1/2 resolution), or the
    ``"seg"`` tensor when ``deep_supervision=False``. Same outputs in train and eval mode.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 32, depth: int = 3,
                 deep_supervision: bool = True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("base", base)):
            check_positive_int(name, v)
        check_positive_int("depth", depth)
        if not isinstance(deep_supervision, bool):
            raise TypeError(f"deep_supervision must be a bool, got {type(deep_supervision).__name__}")
        self.in_channels, self.depth, self.deep_supervision = in_channels, depth, deep_supervision
        widths = [base * 2 ** l for l in range(depth + 1)]
        self.encoder = UEncoder(3, in_channels, widths)
        self.decoder = UDecoder(3, widths, num_classes)
        # aux head k sits on decoder level k (width widths[k]), k = 1..depth-1
        self.aux_heads = nn.ModuleList(nn.Conv3d(widths[k], num_classes, 1) for k in range(1, depth)) \
            if deep_supervision else nn.ModuleList()

    def forward(self, x: torch.Tensor):
        check_input("x", x, spatial_dims=3, channels=self.in_channels)
        check_min_size("x", x, 2 ** self.depth, f"UNet3D pools {self.depth} times")
        feats = self.encoder(x)                         # level l: (B, base*2^l, S/2^l)
        seg, levels = self.decoder(feats)               # (B, C, D, H, W); levels deepest first
        if not self.deep_supervision:
            return seg
        out = {"seg": seg}
        by_level = levels[::-1]                         # by_level[k]: decoder map at 1/2^k resolution
        for k, head in enumerate(self.aux_heads, start=1):
            aux = head(by_level[k])                     # (B, C, S/2^k)
            out[f"seg/aux{k}"] = F.interpolate(aux, size=x.shape[2:], mode="trilinear", align_corners=False)
        return out
