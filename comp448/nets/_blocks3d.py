"""Small building blocks and input checks shared by the 3D networks of the lecture
(UNet3D, VNet, VoxResNet, DeepResolve) and by the two reconstruction networks
(SegNetMRI, ClassNSeg), which need the same "input size must be divisible by 2^k" check.

Nothing here is public API; the networks import it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from comp448._checks import check_number, check_tensor


def check_input(name: str, x, *, spatial_dims: int, channels: int) -> torch.Tensor:
    """Check a network input: a floating tensor ``(B, channels, *spatial)`` with ``spatial_dims`` axes."""
    check_tensor(name, x, floating=True)
    layout = "(B, C, H, W)" if spatial_dims == 2 else "(B, C, D, H, W)"
    if x.ndim != spatial_dims + 2:
        raise ValueError(f"{name} must be a {spatial_dims}D batch {layout} with {spatial_dims + 2} dimensions, "
                         f"got shape {tuple(x.shape)}")
    if x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s) (in_channels), got {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def check_divisible(name: str, x: torch.Tensor, factor: int, why: str) -> None:
    """Raise ValueError unless every spatial size of ``x`` is a positive multiple of ``factor``.

    The message names the argument, the offending size and the nearest valid sizes, e.g.
    ``x: spatial size (30, 16, 16) is not divisible by 16 (...); nearest valid sizes: 30 -> 32 (or 16)``.
    """
    spatial = tuple(x.shape[2:])
    bad = [s for s in spatial if s % factor != 0]
    if bad:
        def nearest(s: int) -> str:                 # the closer multiple first (ties: the larger)
            lo, hi = (s // factor) * factor, (s // factor + 1) * factor
            if lo == 0:
                return f"{hi}"
            return f"{hi} (or {lo})" if hi - s <= s - lo else f"{lo} (or {hi})"
        hints = ", ".join(f"{s} -> {nearest(s)}" for s in dict.fromkeys(bad))
        raise ValueError(f"{name}: spatial size {spatial} is not divisible by {factor} ({why}); "
                         f"nearest valid sizes: {hints}; pad or crop the input")


def check_positive_int(name: str, value, lo: int = 1) -> int:
    """A positive integer hyper-parameter (widths, depths, counts)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    check_number(name, value, lo=lo, integer=True)
    return value


def crop_or_pad_to(x: torch.Tensor, size) -> torch.Tensor:
    """Centre-crop or zero-pad the spatial axes of ``x`` ``(B, C, *spatial)`` to ``size``.

    Used where a decoder's up-sampled map is one voxel off the encoder map it meets
    (odd input sizes) and to bring side outputs back to the input's size.
    """
    size = tuple(int(s) for s in size)
    spatial = tuple(x.shape[2:])
    if spatial == size:
        return x
    # crop first (centre), then pad (symmetric, extra voxel at the end)
    slices = [slice(None), slice(None)]
    for have, want in zip(spatial, size):
        start = max(have - want, 0) // 2
        slices.append(slice(start, start + min(have, want)))
    x = x[tuple(slices)]
    pad = []
    for have, want in reversed(list(zip(x.shape[2:], size))):   # F.pad wants the last axis first
        d = max(want - have, 0)
        pad += [d // 2, d - d // 2]
    return F.pad(x, pad) if any(pad) else x


# ---------------------------------------------------------------------------------------------
# A dimension-generic U-Net encoder/decoder (2D for SegNetMRI's blocks, 3D for UNet3D).
# Same padding everywhere; odd sizes are handled by centre-cropping/zero-padding the up-sampled
# map to the size of the encoder map it is concatenated with.

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONVT = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BN = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}


class DoubleConv(nn.Sequential):
    """2 x [conv3 (same padding) -> BN -> ReLU]: (B, c_in, *S) -> (B, c_out, *S); ``dims`` = 2 or 3."""

    def __init__(self, dims: int, c_in: int, c_out: int):
        conv, bn = _CONV[dims], _BN[dims]
        super().__init__(conv(c_in, c_out, 3, padding=1, bias=False), bn(c_out), nn.ReLU(inplace=True),
                         conv(c_out, c_out, 3, padding=1, bias=False), bn(c_out), nn.ReLU(inplace=True))


class UEncoder(nn.Module):
    """U-Net contracting path: level l has width ``widths[l]``, max-pool 2 between levels.

    (B, c_in, *S) -> list of ``len(widths)`` maps, level l of shape (B, widths[l], *S / 2^l) (floor).
    """

    def __init__(self, dims: int, c_in: int, widths):
        super().__init__()
        self.pool = _POOL[dims](2)
        self.levels = nn.ModuleList()
        for w in widths:
            self.levels.append(DoubleConv(dims, c_in, w))
            c_in = w

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, level in enumerate(self.levels):
            x = level(x if i == 0 else self.pool(x))
            feats.append(x)
        return feats


class UDecoder(nn.Module):
    """U-Net expanding path over the maps of a ``UEncoder`` with the same ``widths``.

    Each step: transposed conv 2 (stride 2) from width w_{l+1} to w_l, crop/pad to the skip's size,
    concatenate with the skip (2 w_l channels), DoubleConv to w_l. A 1x1 head maps w_0 to ``c_out``.
    ``forward`` returns ``(out, levels)``: ``out`` (B, c_out, *S) and ``levels[j]`` the decoder map at
    depth ``j`` (j = depth-1 ... 0, listed deepest first as computed) for deep-supervision heads.
    """

    def __init__(self, dims: int, widths, c_out: int):
        super().__init__()
        convt, conv = _CONVT[dims], _CONV[dims]
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for l in range(len(widths) - 2, -1, -1):                   # deepest decoder level first
            self.ups.append(convt(widths[l + 1], widths[l], 2, stride=2))
            self.blocks.append(DoubleConv(dims, 2 * widths[l], widths[l]))
        self.head = conv(widths[0], c_out, 1)

    def forward(self, feats: list[torch.Tensor]):
        x, levels = feats[-1], []
        for up, block, skip in zip(self.ups, self.blocks, reversed(feats[:-1])):
            x = crop_or_pad_to(up(x), skip.shape[2:])             # (B, w_l, *S_l)
            x = block(torch.cat([skip, x], dim=1))                  # (B, w_l, *S_l)
            levels.append(x)
        return self.head(x), levels


def check_min_size(name: str, x: torch.Tensor, factor: int, why: str) -> None:
    """Raise ValueError if a spatial size of ``x`` is smaller than ``factor`` (it would pool to 0)."""
    small = [s for s in x.shape[2:] if s < factor]
    if small:
        raise ValueError(f"{name}: spatial size {tuple(x.shape[2:])} is too small; every spatial size must be "
                         f">= {factor} ({why})")
