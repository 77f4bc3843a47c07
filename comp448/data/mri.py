"""MRI-like phantoms with k-space and Cartesian undersampling, for SegNetMRI (slides 23-24).

The k-space transform and the sampling mask are NOT defined here: ``fft2c``, ``ifft2c`` and
``cartesian_mask`` come from ``comp448.kspace`` (re-exported by ``comp448.data`` and
``comp448.nets``), the one convention of the package:

    kspace = fftshift(fft2(ifftshift(image), norm="ortho"))      # centred orthonormal DFT
    DC coefficient at (H // 2, W // 2); rows (axis -2, ky) are phase-encoding lines and a
    Cartesian mask keeps or skips whole rows, as a scanner skips whole phase-encoding steps.

So the k-space of ``synth_mri``/``MRIDataset`` can be handed to ``comp448.nets.SegNetMRI`` and
``comp448.nets.data_consistency`` as it is.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage import data as skdata, draw, transform

from ._common import check_count, check_shape, make_rng, smooth_field
from .._checks import check_number
from ..kspace import cartesian_mask, fft2c, ifft2c

__all__ = ["synth_mri", "fft2c", "ifft2c", "cartesian_mask"]


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
      "kspace"       complex64 (H, W)           fft2c(image), fully sampled (``comp448.kspace`` layout)
      "mask_kspace"  float32 (H, W) in {0, 1}   ``cartesian_mask((H, W), acceleration, center_fraction)``:
                                                whole rows (phase-encoding lines) 0 or 1
      "zero_filled"  float32 (H, W)             |ifft2c(mask_kspace * kspace)|, the aliased magnitude
                                                image a scanner would show (``MRIDataset`` gives the
                                                network input form, see there)
      "labels"       int32 (H, W)               lesion instances 1..K
    """
    H, W = check_shape("size", size, 2, minimum=32)
    n_lesions = check_count("n_lesions", n_lesions, minimum=0)
    check_number("noise", noise, lo=0.0)
    check_number("acceleration", acceleration, lo=1.0)
    check_number("center_fraction", center_fraction, lo=0.0, hi=1.0, lo_open=True)
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
    mask = cartesian_mask((H, W), acceleration, center_fraction, rng).numpy()
    zero_filled = ifft2c(kspace * torch.from_numpy(mask)).abs()
    return {"image": img, "kspace": kspace.numpy().astype(np.complex64), "mask_kspace": mask,
            "zero_filled": zero_filled.numpy().astype(np.float32), "labels": labels}
