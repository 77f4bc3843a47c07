"""VoxResNet: voxelwise residual network for volumetric brain segmentation (lecture slide 27).

    Chen, Dou, Yu, Qin, Heng. "VoxResNet: Deep voxelwise residual networks for brain segmentation
    from 3D MR images." NeuroImage 170:446-455, 2018. https://arxiv.org/abs/1608.05895

Architecture, slide 27 Fig. 2 (reference/papers.md §14; the layer details are recalled from secondary
sources and NOT verified against the paper, §17):

    conv1a (32, 3^3) -> BN-ReLU -> conv1b (32, 3^3) -> BN-ReLU          level 1 (full resolution)
    conv1c (64, 3^3, stride 2) -> VoxRes x 2                            level 2 (1/2)
    BN-ReLU -> conv4 (64, 3^3, stride 2) -> VoxRes x 2                  level 3 (1/4)
    BN-ReLU -> conv7 (64, 3^3, stride 2) -> VoxRes x 2                  level 4 (1/8)
    VoxRes module:  x + conv3^3(ReLU(BN(conv3^3(ReLU(BN(x))))))        (pre-activation, 64 channels)
    side output k:  deconvolution x 2^(k-1) of level k -> classifier C_k (1^3 conv to num_classes)
    fused output:   C_1 + C_2 + C_3 + C_4  (SUM, as on the slide)

That is 25 layers: 3 + 2 (conv1a-c, conv4, conv7) + 12 (six VoxRes modules) + 4 deconvolutions +
4 classifiers. Our readings where the sources are silent: the level-1 branch takes the BN-ReLU'd
conv1b map and levels 2-4 take BN-ReLU'd VoxRes outputs (pre-activation style); a deconvolution
with factor s has kernel 2s, stride s, padding s/2 (factor 1: a 3^3 transposed conv) and
``side_channels`` = 4 outputs, as in a third-party reimplementation (txin96), followed by a ReLU
(without it deconvolution and 1^3 classifier would collapse into one linear layer). The deep-supervision
loss is on the fused output plus every C_k (``side_outputs(out, "seg")``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from comp448.nets._blocks3d import check_input, check_positive_int, crop_or_pad_to

__all__ = ["VoxResNet", "VoxRes"]


def _bn_relu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm3d(c), nn.ReLU(inplace=True))


class VoxRes(nn.Module):
    """VoxRes module (slide 27, Fig. 2b): ``x + conv(BN-ReLU(conv(BN-ReLU(x))))``, (B, c, S) -> (B, c, S)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_bn_relu(c), nn.Conv3d(c, c, 3, padding=1),
                                  _bn_relu(c), nn.Conv3d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _side(c_in: int, c_side: int, num_classes: int, factor: int) -> nn.Sequential:
    # deconvolution x factor (kernel 2f, stride f, padding f/2: size n -> f*n) -> 1^3 classifier
    deconv = (nn.ConvTranspose3d(c_in, c_side, 3, padding=1) if factor == 1 else
              nn.ConvTranspose3d(c_in, c_side, 2 * factor, stride=factor, padding=factor // 2))
    return nn.Sequential(deconv, nn.ReLU(inplace=True), nn.Conv3d(c_side, num_classes, 1))


class VoxResNet(nn.Module):
    """VoxResNet (Chen et al. 2018), slide 27.

    Args:
        in_channels: input modalities (3 in the paper: T1, T1-IR, T2-FLAIR).
        num_classes: output channels (logits); 4 for MRBrainS (background, CSF, GM, WM).
        base: width knob; conv1a/conv1b have ``base`` channels, everything after ``2 * base``
            (paper: 32 and 64).
        n_voxres: VoxRes modules per level 2-4 (paper: 2).
        side_channels: channels of each deconvolution (default 4, our reading).

    Input (B, in_channels, D, H, W), any size >= 1 (the side outputs are centre-cropped to it).
    Output: ``{"seg": C1+C2+C3+C4, "seg/aux1": C1, ..., "seg/aux4": C4}``, each
    (B, num_classes, D, H, W) logits; aux1 is the full-resolution branch.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 4, base: int = 32, n_voxres: int = 2,
                 side_channels: int = 4):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("base", base),
                        ("n_voxres", n_voxres), ("side_channels", side_channels)):
            check_positive_int(name, v)
        self.in_channels = in_channels
        b, c = base, 2 * base
        self.level1 = nn.Sequential(nn.Conv3d(in_channels, b, 3, padding=1), _bn_relu(b),   # conv1a
                                    nn.Conv3d(b, b, 3, padding=1), _bn_relu(b))             # conv1b
        self.level2 = nn.Sequential(nn.Conv3d(b, c, 3, stride=2, padding=1),                # conv1c
                                    *[VoxRes(c) for _ in range(n_voxres)])
        self.level3 = nn.Sequential(_bn_relu(c), nn.Conv3d(c, c, 3, stride=2, padding=1),   # conv4
                                    *[VoxRes(c) for _ in range(n_voxres)])
        self.level4 = nn.Sequential(_bn_relu(c), nn.Conv3d(c, c, 3, stride=2, padding=1),   # conv7
                                    *[VoxRes(c) for _ in range(n_voxres)])
        self.side_act = nn.ModuleList(_bn_relu(c) for _ in range(3))    # before the level 2-4 branches
        self.sides = nn.ModuleList([_side(b, side_channels, num_classes, 1)] +
                                   [_side(c, side_channels, num_classes, 2 ** k) for k in (1, 2, 3)])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input("x", x, spatial_dims=3, channels=self.in_channels)
        size = x.shape[2:]
        h1 = self.level1(x)                  # (B, b, S)
        h2 = self.level2(h1)                 # (B, 2b, ceil(S/2))
        h3 = self.level3(h2)                 # (B, 2b, ceil(S/4))
        h4 = self.level4(h3)                 # (B, 2b, ceil(S/8))
        feats = [h1] + [act(h) for act, h in zip(self.side_act, (h2, h3, h4))]
        aux = [crop_or_pad_to(side(f), size) for side, f in zip(self.sides, feats)]   # 4 x (B, C, S)
        out = {"seg": aux[0] + aux[1] + aux[2] + aux[3]}
        out.update({f"seg/aux{k}": a for k, a in enumerate(aux, start=1)})
        return out
