"""MRI-like phantoms with k-space and Cartesian undersampling, for SegNetMRI (slides 23-24).

k-space convention (used everywhere in comp448, use ``fft2c``/``ifft2c`` to stay consistent):

    kspace = fftshift(fft2(image, norm="ortho"))        # torch.fft, over the last two axes
    image  = ifft2(ifftshift(kspace), norm="ortho")

i.e. orthonormal (energy-preserving: sum |image|^2 = sum |kspace|^2) and *centred*: the DC term
sits at index (H // 2, W // 2). Rows of k-space are phase-encoding lines (ky); a Cartesian
undersampling mask keeps whole rows, as a scanner skips whole phase-encoding steps.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage import data as skdata, draw, transform

from ._common import check_count, check_fraction, check_shape, make_rng, smooth_field
from .._checks import check_number


def fft2c(image) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes: ``fftshift(fft2(x, norm="ortho"))``.
    Accepts a NumPy array or tensor (real or complex); returns a complex tensor."""
    x = torch.as_tensor(image)
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(kspace) -> torch.Tensor:
    """Inverse of ``fft2c``: ``ifft2(ifftshift(k), norm="ortho")``. Returns a complex tensor."""
    k = torch.as_tensor(kspace)
    return torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho")


def cartesian_mask(shape, acceleration: float = 4.0, center_fraction: float = 0.08, seed=0) -> np.ndarray:
    """Random Cartesian undersampling mask, float32 (H, W) with whole rows (ky lines) 0 or 1.

    ``round(H * center_fraction)`` lines around the centre row H // 2 (the low frequencies,
    which hold most of the image energy) are always kept; further lines are drawn uniformly
    without replacement until ``round(H / acceleration)`` lines are kept in total (the centre block
    alone if it is larger). ``acceleration = 1`` keeps every line.
    """
    H, W = check_shape("shape", shape, 2, minimum=2)
    check_number("acceleration", acceleration, lo=1.0)
    center_fraction = check_fraction("center_fraction", center_fraction, lo_open=True)
    rng = make_rng(seed)
    n_lines = max(int(round(H / acceleration)), 1)
    n_center = max(int(round(H * center_fraction)), 1)
    lines = np.zeros(H, bool)
    start = H // 2 - n_center // 2
    lines[start:start + n_center] = True
    rest = np.flatnonzero(~lines)
    extra = max(n_lines - int(lines.sum()), 0)
    lines[rng.choice(rest, size=min(extra, len(rest)), replace=False)] = True
    return np.repeat(lines[:, None], W, axis=1).astype(np.float32)


def synth_mri(size=128, seed=0, acceleration: float = 4.0, *, center_fraction: float = 0.08,
              n_lesions: int = 3, noise: float = 0.01):
    """MRI-like head phantom with lesions, its k-space, an undersampling mask and the zero-filled image.

    The image is scikit-image's Shepp-Logan phantom (Shepp & Logan 1974), resized to ``size``,
    randomly rotated (+-10 deg), scaled (0.9-1.05) and shifted, multiplied by a smooth coil
    sensitivity (bias) field and given ``n_lesions`` random elliptical lesions
    (``skimage.draw.ellipse``) brighter or darker than the tissue around them, plus Gaussian
    noise of std ``noise``; then rescaled to [0, 1]. The lesions are the labelled objects.

    Returns a dict of NumPy arrays:
      "image"        float32 (H, W) in [0, 1]   fully sampled image x^fs (SegNetMRI's L^MRN target)
      "kspace"       complex64 (H, W)           fft2c(image), fully sampled (see module docstring)
      "mask_kspace"  float32 (H, W) in {0, 1}   Cartesian mask, ``cartesian_mask(acceleration, ...)``
      "zero_filled"  float32 (H, W)             |ifft2c(mask_kspace * kspace)|, the aliased input
      "labels"       int32 (H, W)               lesion instances 1..K
    """
    H, W = check_shape("size", size, 2, minimum=32)
    n_lesions = check_count("n_lesions", n_lesions, minimum=0)
    check_number("noise", noise, lo=0.0)
    check_number("acceleration", acceleration, lo=1.0)
    rng = make_rng(seed)

    ph = transform.resize(skdata.shepp_logan_phantom(), (H, W), anti_aliasing=True, order=1)
    angle = np.deg2rad(rng.uniform(-10, 10))
    scale = rng.uniform(0.9, 1.05)
    shift = rng.uniform(-0.04, 0.04, 2) * np.array([W, H])
    c = np.array([W / 2, H / 2])
    tf = transform.EuclideanTransform(translation=-c) + transform.SimilarityTransform(
        scale=scale, rotation=angle) + transform.EuclideanTransform(translation=c + shift)
    ph = transform.warp(ph, tf.inverse, order=1)
    # lesions sit in the brain: inside the skull, away from it by 8% of the field of view
    head = ndi.binary_erosion(ndi.binary_fill_holes(ph > 0.05), iterations=max(1, int(0.08 * min(H, W))))

    img = ph.copy()
    labels = np.zeros((H, W), np.int32)
    inside = np.argwhere(head)
    k = 0
    for _ in range(n_lesions * 20):
        if k == n_lesions or len(inside) == 0:
            break
        r, cc = inside[rng.integers(len(inside))]
        a, b = rng.uniform(0.025, 0.06, 2) * min(H, W)
        rr, cc2 = draw.ellipse(r, cc, a, b, shape=(H, W), rotation=rng.uniform(-np.pi, np.pi))
        if not head[rr, cc2].all() or (labels[rr, cc2] > 0).any():
            continue
        k += 1
        labels[rr, cc2] = k
        img[rr, cc2] = np.clip(np.median(ph[rr, cc2]) + rng.choice([-1, 1]) * rng.uniform(0.15, 0.35), 0.02, 1.0)
    img = img * smooth_field(rng, (H, W), max(H, W) / 3, 0.8, 1.2)
    img = img + rng.normal(0.0, noise, (H, W))
    img = np.clip(img, 0, None)
    img = (img / max(img.max(), 1e-6)).astype(np.float32)

    kspace = fft2c(torch.from_numpy(img).to(torch.complex64))
    mask = cartesian_mask((H, W), acceleration, center_fraction, rng)
    zero_filled = ifft2c(kspace * torch.from_numpy(mask)).abs()
    return {"image": img, "kspace": kspace.numpy().astype(np.complex64), "mask_kspace": mask,
            "zero_filled": zero_filled.numpy().astype(np.float32), "labels": labels}
