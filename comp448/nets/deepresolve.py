"""DeepResolve: residual 3D CNN from thick-slice to thin-slice MR volumes (lecture slide 28,
"Super-resolution imaging using 3D networks").

    Chaudhari, Fang, Kogan, Wood, Stevens, Gibbons, Lee, Gold, Hargreaves. "Super-resolution
    musculoskeletal MRI using deep learning." Magn Reson Med 80(5):2139-2154, 2018.
    https://doi.org/10.1002/mrm.27178

What is known (reference/papers.md §15): a 3D CNN learns a RESIDUAL mapping from thick-slice to
thin-slice knee volumes at the same slice centres; trained on 124 DESS volumes with 0.7 mm slices;
compared with tricubic and Fourier interpolation by SSIM, pSNR and RMSE. The architecture is NOT
verified (papers.md §17); reported: about 20 3D conv layers of 64 filters 3^3 with ReLU, a residual
skip from the interpolated input, L2 loss. This module builds exactly that:

    x_thin0 = Interp_slice(x_thick)                  interpolate along the slice axis only,
                                                     by ``scale_factor``, slice centres aligned
    y       = x_thin0 + CNN(x_thin0)                 CNN = depth x conv3^3, ReLU between them

Our choices: the slice axis is D of (B, C, D, H, W) by default; ``interpolation="cubic"`` (default)
is the 1D cubic convolution along the slice axis (the slice-axis part of the paper's tricubic
baseline; other axes are untouched); the last conv is initialised to zero so that the untrained
network returns the interpolation exactly. ``thick_slices`` simulates thick slices by averaging
groups of ``factor`` thin slices (a simple slab model, also our choice).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from comp448._checks import check_choice, check_tensor
from comp448.nets._blocks3d import check_input, check_positive_int

__all__ = ["DeepResolve", "interpolate_slices", "thick_slices"]


def _check_axis(slice_axis) -> int:
    if isinstance(slice_axis, bool) or slice_axis not in (2, 3, 4, -3, -2, -1):
        raise ValueError(f"slice_axis must be a spatial axis of (B, C, D, H, W): 2, 3, 4 (or -3, -2, -1), "
                         f"got {slice_axis!r}")
    return slice_axis % 5


def _check_volume(x) -> None:
    check_tensor("x", x, floating=True, ndim=5)
    if any(s == 0 for s in x.shape):
        raise ValueError(f"x must not be empty, got shape {tuple(x.shape)}")


def interpolate_slices(x: torch.Tensor, scale_factor: int, slice_axis: int = 2,
                       mode: str = "cubic") -> torch.Tensor:
    """Interpolate a volume (B, C, D, H, W) along ``slice_axis`` only, n slices -> n * scale_factor.

    Slice centres are aligned (``align_corners=False``): thick slice i covers thin slices
    i*f .. i*f+f-1 and sits at their centre. ``mode``: ``"cubic"`` (Keys cubic convolution, as in
    ``torch``'s bicubic, a = -0.75), ``"linear"`` or ``"nearest"``; edges are clamped.
    """
    _check_volume(x)
    check_positive_int("scale_factor", scale_factor)
    check_choice("mode", mode, ("cubic", "linear", "nearest"))
    ax = _check_axis(slice_axis)
    v = x.movedim(ax, -1)                                        # (B, C, a, b, n) slice axis last
    B, C, a, b, n = v.shape
    v = v.reshape(B, C * a, b, n)                                # 2D images (b, n), batch of columns
    size = (b, n * scale_factor)                                 # the b axis is unchanged (identity)
    if mode == "cubic":
        v = F.interpolate(v, size=size, mode="bicubic", align_corners=False)
    elif mode == "linear":
        v = F.interpolate(v, size=size, mode="bilinear", align_corners=False)
    else:
        v = F.interpolate(v, size=size, mode="nearest-exact")
    return v.reshape(B, C, a, b, n * scale_factor).movedim(-1, ax)


def thick_slices(x: torch.Tensor, factor: int, slice_axis: int = 2) -> torch.Tensor:
    """Simulate a thick-slice acquisition: average groups of ``factor`` consecutive thin slices.

    (B, C, D, H, W) with the slice-axis size a multiple of ``factor`` -> that size divided by ``factor``.
    """
    _check_volume(x)
    check_positive_int("factor", factor)
    ax = _check_axis(slice_axis)
    n = x.shape[ax]
    if n % factor:
        raise ValueError(f"x: slice-axis size {n} is not a multiple of factor {factor}; "
                         f"nearest valid sizes {max(factor, n // factor * factor)} or {(n // factor + 1) * factor}")
    v = x.movedim(ax, -1)
    v = v.reshape(*v.shape[:-1], n // factor, factor).mean(-1)
    return v.movedim(-1, ax)


class DeepResolve(nn.Module):
    """DeepResolve (Chaudhari et al. 2018), slide 28: thick-slice volume -> thin-slice volume.

    Args:
        in_channels: channels of the volume (1 for one MR contrast); the output has the same number.
        out_channels: must equal ``in_channels`` (the residual is added to the interpolated input);
            ``None`` means ``in_channels``.
        scale_factor: thin slices per thick slice (default 3, our choice; the paper evaluates several).
        width: filters per conv layer (reported 64).
        depth: number of 3^3 conv layers (reported about 20); at least 2.
        slice_axis: spatial axis of (B, C, D, H, W) that holds the slices (default 2 = D).
        interpolation: ``"cubic"`` (default), ``"linear"`` or ``"nearest"`` (see ``interpolate_slices``).

    Input (B, in_channels, D, H, W), any sizes. Output (B, in_channels, D * scale_factor, H, W) for
    ``slice_axis=2``: the thin-slice volume (an intensity, not a logit).
    """

    def __init__(self, in_channels: int = 1, out_channels: int | None = None, scale_factor: int = 3,
                 width: int = 64, depth: int = 20, slice_axis: int = 2, interpolation: str = "cubic"):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        if out_channels is not None and out_channels != in_channels:
            raise ValueError(f"out_channels must equal in_channels ({in_channels}) because the network adds a "
                             f"residual to the interpolated input, got {out_channels!r}")
        check_positive_int("scale_factor", scale_factor)
        check_positive_int("width", width)
        check_positive_int("depth", depth, lo=2)
        check_choice("interpolation", interpolation, ("cubic", "linear", "nearest"))
        self.in_channels, self.scale_factor = in_channels, scale_factor
        self.slice_axis, self.interpolation = _check_axis(slice_axis), interpolation
        layers: list[nn.Module] = [nn.Conv3d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv3d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        last = nn.Conv3d(width, in_channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(*layers, last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input("x", x, spatial_dims=3, channels=self.in_channels)
        base = interpolate_slices(x, self.scale_factor, self.slice_axis, self.interpolation)  # (B, C, f*D, H, W)
        return base + self.body(base)                                                        # residual learning
