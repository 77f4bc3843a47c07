"""k-space: the ONE centred orthonormal 2-D FFT pair and the ONE Cartesian undersampling mask of comp448.

``comp448.data`` (``synth_mri``, ``MRIDataset``) and ``comp448.nets`` (``SegNetMRI``,
``data_consistency``, ``undersample``) both import these; nothing else in the package defines a
k-space transform or a sampling mask, so a measurement made by one is read correctly by the other.

Convention (the ``fft2c`` of fastMRI and of Schlemper et al. 2018, IEEE TMI 37(2), whose
data-consistency step SegNetMRI uses):

    kspace = fftshift(fft2(ifftshift(image), norm="ortho"))      over the last two axes
    image  = fftshift(ifft2(ifftshift(kspace), norm="ortho"))

- orthonormal: sum |image|^2 = sum |kspace|^2 (Parseval), ``ifft2c(fft2c(x)) == x``;
- centred in BOTH domains: the DC coefficient (sum(image) / sqrt(H W)) sits at index
  (H // 2, W // 2) of k-space, and the image origin at (H // 2, W // 2) of the image;
- axes: an image is (..., H, W) = (..., y, x). k-space axis -2 is ky, the **phase-encoding**
  direction; axis -1 is kx, the readout (frequency-encoding) direction, which a scanner samples
  fully in every acquired line. One phase-encoding step therefore acquires one whole ROW of
  k-space, and a Cartesian undersampling mask keeps or skips whole rows.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from comp448._checks import check_number

__all__ = ["fft2c", "ifft2c", "cartesian_mask"]

_DIMS = (-2, -1)


def fft2c(image) -> torch.Tensor:
    """Centred orthonormal 2-D DFT over the last two axes (module docstring):
    ``fftshift(fft2(ifftshift(x), norm="ortho"))``. Accepts a NumPy array or a tensor, real or
    complex, (..., H, W); returns a complex tensor (..., H, W) with DC at (H // 2, W // 2)."""
    x = torch.as_tensor(image)
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=_DIMS), norm="ortho"), dim=_DIMS)


def ifft2c(kspace) -> torch.Tensor:
    """Inverse of ``fft2c``: ``fftshift(ifft2(ifftshift(k), norm="ortho"))``; complex (..., H, W)."""
    k = torch.as_tensor(kspace)
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=_DIMS), norm="ortho"), dim=_DIMS)


def cartesian_mask(shape, acceleration: float = 4.0, center_fraction: float = 0.08, seed=None) -> torch.Tensor:
    """Random Cartesian undersampling mask in the ``fft2c`` layout: float32 tensor (H, W) of 0/1 in
    which whole ROWS (phase-encoding lines ky, see the module docstring) are sampled; every column
    of a row is equal.

    ``round(H * center_fraction)`` rows (at least 1) around the centre row H // 2 (the low
    frequencies, which hold most of the image energy) are always kept; further rows are drawn
    uniformly without replacement until ``round(H / acceleration)`` rows are kept in all (only the
    centre block when it is already larger). ``acceleration = 1`` keeps every row.

    ``seed``: an int >= 0, a ``numpy.random.SeedSequence`` or ``Generator`` (drawn from), or
    ``None`` (fresh entropy). The same seed gives the same mask.
    """
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape must be a pair (H, W), got {shape!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape):
        raise TypeError(f"shape must be a pair of ints (H, W), got {shape!r}")
    if min(shape) < 1:
        raise ValueError(f"shape must be a pair of positive ints (H, W), got {shape!r}")
    check_number("acceleration", acceleration, lo=1.0)
    check_number("center_fraction", center_fraction, lo=0.0, hi=1.0, lo_open=True)
    if not (seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence))
            or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise TypeError(f"seed must be None, an int >= 0, a numpy SeedSequence or Generator, got {seed!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    H, W = int(shape[0]), int(shape[1])
    n_lines = max(int(round(H / acceleration)), 1)
    n_center = max(int(round(H * center_fraction)), 1)
    rows = np.zeros(H, bool)
    start = H // 2 - n_center // 2
    rows[start:start + n_center] = True
    rest = np.flatnonzero(~rows)
    extra = max(n_lines - int(rows.sum()), 0)
    rows[rng.choice(rest, size=min(extra, len(rest)), replace=False)] = True
    return torch.from_numpy(np.repeat(rows[:, None], W, axis=1).astype(np.float32))   # (H, W)
