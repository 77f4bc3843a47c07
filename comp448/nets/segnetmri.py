"""SegNetMRI: joint compressed-sensing MRI reconstruction and segmentation (lecture slide 23,
"Image reconstruction as an auxiliary unsupervised task").

    Sun, Fan, Ding, Huang, Paisley. "Joint CS-MRI reconstruction and segmentation with a
    unified deep network." arXiv 1805.02165 (IPMI 2019). https://arxiv.org/abs/1805.02165

Slide 23:

    L^SegNetMRI = L^MRN + lambda L^OMSN
    L^MRN = 1/L sum_i || x_i^fs - x_i ||_2^2          (x^fs: fully sampled image)
    L^MSN = - sum_i sum_j sum_c t^gt_ijc ln t_ijc      (pixel-wise cross entropy)

What the paper states (reference/papers.md §10): the reconstruction network (MRN) is a cascade of
blocks, each an encoder-decoder followed by a data-fidelity (k-space consistency) unit; the
segmentation network (MSN) has the same encoder-decoder structure; after pre-training, the two are
fine-tuned with SHARED reconstruction encoders, and the per-block segmentations are merged into
the final one. This module builds that fine-tuned, shared-encoder network:

    x_0 = zero-filled image F^-1(m * y)
    block k = 1..K:   f_k   = Encoder_k(x_{k-1})                      U-Net encoder (skips)
                      x_cnn = x_{k-1} + RecDecoder_k(f_k)              residual reconstruction
                      x_k   = DC(x_cnn; y, m)                          data consistency, below
                      s_k   = SegDecoder_k(f_k)                        per-block segmentation logits
    seg = Merge(concat(s_1, ..., s_K))   conv3x3 -> BN -> ReLU -> conv1x1

Our reading (the paper's widths, number of blocks, lambda and the merge layer are NOT verified,
papers.md §17): a third-party reimplementation (atommic ``segnet.py``) uses U-Net encoders of 32
channels with 4 poolings, 5 cascades, and merges the concatenated per-cascade segmentations with a
3x3 conv + ReLU; those are our defaults. We add a 1x1 conv after the ReLU so that the merged output
is an unconstrained logit, and BatchNorm in the conv blocks.

Data consistency (Schlemper et al. 2018 form; with ``noise_lvl=None`` the sampled k-space entries
are replaced by the measurements, the noiseless limit):

    k = F(x_cnn);  k_dc = (1 - m) * k + m * (k + nu * y) / (1 + nu);  x = F^-1(k_dc)

Conventions: ``F`` is ``comp448.kspace.fft2c``, the package's one k-space transform (re-exported
here with ``ifft2c`` and ``cartesian_mask``): the orthonormal 2D DFT over the last two axes, centred
in both domains (``fftshift(fft2(ifftshift(x)))``), DC coefficient at (H // 2, W // 2); rows of
k-space are phase-encoding lines and ``cartesian_mask`` samples whole rows. ``comp448.data``'s
``synth_mri``/``MRIDataset`` use the same functions, so their k-space and masks go in as they are.

Images are complex, stored as 2 real channels (real, imaginary) when ``in_channels=2`` (default,
exact data consistency). With ``in_channels=1`` the image is real and the data-consistency step
keeps the real part of F^-1(k_dc); the k-space equality then holds exactly where the mask is
point-symmetric and ``y`` comes from a real image, and only approximately otherwise (a true real
image is still returned unchanged, since its own k-space agrees with y on the mask).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from comp448._checks import check_number, check_tensor
from comp448.kspace import cartesian_mask, fft2c, ifft2c      # the package's one k-space convention
from comp448.nets._blocks3d import (UDecoder, UEncoder, check_input, check_min_size, check_positive_int)

__all__ = ["SegNetMRI", "fft2c", "ifft2c", "data_consistency", "cartesian_mask", "undersample"]


def _to_complex(image: torch.Tensor) -> torch.Tensor:
    # (B, 1, H, W) real or (B, 2, H, W) (real, imag) -> (B, H, W) complex
    if image.shape[1] == 1:
        return torch.complex(image[:, 0], torch.zeros_like(image[:, 0]))
    return torch.complex(image[:, 0], image[:, 1])


def _from_complex(z: torch.Tensor, channels: int) -> torch.Tensor:
    # (B, H, W) complex -> (B, channels, H, W) real
    return z.real[:, None] if channels == 1 else torch.stack([z.real, z.imag], dim=1)


def _check_image(name: str, image) -> None:
    check_tensor(name, image, floating=True, ndim=4)
    if image.shape[1] not in (1, 2):
        raise ValueError(f"{name} must have 1 (real) or 2 (real, imaginary) channels, got shape {tuple(image.shape)}")
    if bool(torch.isnan(image).any()):
        raise ValueError(f"{name} contains NaN")


def _check_mask(mask, shape) -> torch.Tensor:
    """mask (H, W) or (B, H, W), values in {0, 1}; ``shape`` = (B, H, W). Returns it broadcastable."""
    check_tensor("mask", mask, ndim=(2, 3))
    if tuple(mask.shape) not in (tuple(shape[1:]), tuple(shape)):
        raise ValueError(f"mask must have shape (H, W) = {tuple(shape[1:])} or (B, H, W) = {tuple(shape)}, "
                         f"got {tuple(mask.shape)}")
    if mask.is_floating_point() and bool(torch.isnan(mask).any()):
        raise ValueError("mask contains NaN")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must be binary (1 = sampled k-space location, 0 = not sampled)")
    return mask


def _check_kspace(kspace, shape) -> None:
    check_tensor("kspace", kspace)
    if not kspace.is_complex():
        raise TypeError(f"kspace must be a complex tensor (B, H, W), got dtype {kspace.dtype}")
    if tuple(kspace.shape) != tuple(shape):
        raise ValueError(f"kspace must have shape (B, H, W) = {tuple(shape)}, got {tuple(kspace.shape)}")


def data_consistency(image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor,
                     noise_lvl: float | None = None) -> torch.Tensor:
    """k-space data-consistency step of each SegNetMRI block (see the module docstring).

    Args:
        image: (B, 2, H, W) complex image as (real, imaginary) channels, or (B, 1, H, W) real image.
        kspace: (B, H, W) complex measured k-space ``y`` in the ``fft2c`` layout (zeros where unsampled).
        mask: (H, W) or (B, H, W) binary sampling mask ``m`` in the same layout.
        noise_lvl: ``nu`` >= 0; ``None`` (default) replaces the sampled entries by the measurements.

    Returns the image of the same shape as ``image`` whose k-space equals ``kspace`` where ``mask``
    is 1 (exactly for 2-channel images and ``noise_lvl=None``) and keeps the network's k-space elsewhere.
    """
    _check_image("image", image)
    B, _, H, W = image.shape
    _check_kspace(kspace, (B, H, W))
    m = _check_mask(mask, (B, H, W)).to(image.dtype)
    k = fft2c(_to_complex(image))                                   # (B, H, W) complex
    if noise_lvl is None:
        k_dc = (1 - m) * k + m * kspace
    else:
        check_number("noise_lvl", noise_lvl, lo=0)
        k_dc = (1 - m) * k + m * (k + noise_lvl * kspace) / (1 + noise_lvl)
    return _from_complex(ifft2c(k_dc), image.shape[1])              # (B, C, H, W)


def undersample(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate a measurement: ``y = m * F(x)`` and the zero-filled image ``F^-1(y)``.

    Args: image (B, 1 or 2, H, W) (as in ``data_consistency``); mask (H, W) or (B, H, W).
    Returns ``(zero_filled, kspace)``: (B, C, H, W) and complex (B, H, W). For 1-channel input the
    zero-filled image is the real part.
    """
    _check_image("image", image)
    B, _, H, W = image.shape
    m = _check_mask(mask, (B, H, W)).to(image.dtype)
    y = m * fft2c(_to_complex(image))
    return _from_complex(ifft2c(y), image.shape[1]), y


class _Block(nn.Module):
    """One cascade block: shared U-Net encoder, reconstruction decoder (residual), segmentation decoder."""

    def __init__(self, in_channels: int, num_classes: int, widths):
        super().__init__()
        self.encoder = UEncoder(2, in_channels, widths)
        self.rec_decoder = UDecoder(2, widths, in_channels)
        self.seg_decoder = UDecoder(2, widths, num_classes)

    def forward(self, x):
        feats = self.encoder(x)                         # list, level l: (B, w_l, H/2^l, W/2^l)
        residual, _ = self.rec_decoder(feats)           # (B, C_in, H, W)
        seg, _ = self.seg_decoder(feats)                # (B, num_classes, H, W)
        return x + residual, seg


class SegNetMRI(nn.Module):
    """SegNetMRI (Sun et al. 2018/2019), slide 23: K cascaded reconstruction blocks with data
    consistency; segmentation decoders on the shared reconstruction encoders; merged segmentation.

    Args:
        in_channels: 2 (complex image as real/imaginary channels, default) or 1 (real image).
        num_classes: segmentation classes (MRBrainS-style: 4 = background, CSF, GM, WM).
        n_blocks: number of cascaded blocks K (default 5, our reading).
        base: width of the first U-Net level (default 32); level l has ``base * 2^l`` channels.
        depth: number of poolings per U-Net (default 4). Each spatial size must be >= 2^depth;
            sizes that are not multiples of 2^depth are handled (crop/pad in the decoders).
        noise_lvl: ``nu`` of the data-consistency step (``None`` = replace sampled entries).

    ``forward(image, kspace, mask)``:
        image: (B, in_channels, H, W) zero-filled image ``F^-1(m * y)`` (see ``undersample``).
        kspace: complex (B, H, W) measured k-space ``y`` (``fft2c`` layout, zero where unsampled).
        mask: (H, W) or (B, H, W) binary sampling mask.

    Returns (dict, ``comp448.nets`` convention):
        ``"recon"`` (B, in_channels, H, W): output of the last block (stage K);
        ``"seg"`` (B, num_classes, H, W): merged segmentation logits;
        ``"seg/aux<k>"`` (B, num_classes, H, W), k = 1..K: the segmentation logits of block k
            (use ``side_outputs(out, "seg")`` for the list [merged, block 1, ..., block K]);
        ``"recon/stage<k>"`` (B, in_channels, H, W), k = 1..K-1: the intermediate reconstructions
            (after data consistency), for a loss on every block.
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 4, n_blocks: int = 5, base: int = 32,
                 depth: int = 4, noise_lvl: float | None = None):
        super().__init__()
        if in_channels not in (1, 2) or isinstance(in_channels, bool):
            raise ValueError(f"in_channels must be 1 (real image) or 2 (real, imaginary), got {in_channels!r}")
        check_positive_int("num_classes", num_classes)
        check_positive_int("n_blocks", n_blocks)
        check_positive_int("base", base)
        check_positive_int("depth", depth, lo=0)
        if noise_lvl is not None:
            check_number("noise_lvl", noise_lvl, lo=0)
        self.in_channels, self.num_classes, self.n_blocks = in_channels, num_classes, n_blocks
        self.depth, self.noise_lvl = depth, noise_lvl
        widths = [base * 2 ** l for l in range(depth + 1)]
        self.blocks = nn.ModuleList(_Block(in_channels, num_classes, widths) for _ in range(n_blocks))
        self.merge = nn.Sequential(                                  # (B, K*C, H, W) -> (B, C, H, W)
            nn.Conv2d(n_blocks * num_classes, base, 3, padding=1, bias=False), nn.BatchNorm2d(base),
            nn.ReLU(inplace=True), nn.Conv2d(base, num_classes, 1))

    def forward(self, image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        check_input("image", image, spatial_dims=2, channels=self.in_channels)
        check_min_size("image", image, 2 ** self.depth, f"SegNetMRI's U-Nets pool {self.depth} times")
        B, _, H, W = image.shape
        _check_kspace(kspace, (B, H, W))
        _check_mask(mask, (B, H, W))
        x, segs, recons = image, [], []
        for block in self.blocks:
            x_cnn, seg = block(x)                                     # (B, C_in, H, W), (B, C, H, W)
            x = data_consistency(x_cnn, kspace, mask, self.noise_lvl)  # (B, C_in, H, W)
            segs.append(seg)
            recons.append(x)
        out = {"recon": x, "seg": self.merge(torch.cat(segs, dim=1))}
        out.update({f"seg/aux{k}": s for k, s in enumerate(segs, start=1)})
        out.update({f"recon/stage{k}": r for k, r in enumerate(recons[:-1], start=1)})
        return out
