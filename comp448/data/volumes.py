"""Synthetic 3-D volumes: blobs with instance labels (3D U-Net, V-Net, VoxResNet; slides 25-27)
and thick-slice / thin-slice pairs for super-resolution (DeepResolve, slide 28).

Layout: volumes are float32 (D, H, W) = (z, y, x) in [0, 1]; labels int32 (D, H, W).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from ._common import (check_count, check_fraction, check_shape, make_rng, place_objects,
                      smooth_field, unit_noise)
from .._checks import check_number


def _blob_sampler(radius: float, irregularity: float, anisotropy: float):
    """sample_offsets(rng): voxels of a randomly rotated ellipsoid with a bumpy surface."""
    def sample(rng):
        r = radius * np.exp(rng.normal(0.0, 0.15))
        axes = r * np.exp(rng.uniform(-anisotropy, anisotropy, 3))
        R = int(np.ceil(axes.max() * (1 + 2 * irregularity))) + 1
        g = np.mgrid[-R:R + 1, -R:R + 1, -R:R + 1].reshape(3, -1).T.astype(float)
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))          # random rotation
        local = g @ q
        rho = np.sqrt(((local / axes) ** 2).sum(1))
        # surface bumps: a few random plane waves in the direction of each voxel
        dirs = rng.standard_normal((4, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        unit = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
        bump = (irregularity * np.cos(2.5 * unit @ dirs.T + rng.uniform(0, 2 * np.pi, 4))).mean(1) * 2
        keep = rho <= 1.0 + bump
        if not keep.any():
            keep[len(g) // 2] = True
        return g[keep].astype(int)
    return sample


def synth_blobs3d(shape=(32, 64, 64), seed=0, *, n_objects: int = 12, touching: float = 0.3,
                  foreground: float = 0.1, irregularity: float = 0.15, anisotropy: float = 0.3,
                  blur: float = 1.0, noise: float = 0.05, bias: float = 0.3):
    """3-D volume of bumpy ellipsoidal blobs with instance labels (an MR/microscopy-like volume).

    Stands for the volumetric data of 3D U-Net (Zeng et al. 2017, slide 25), V-Net (Milletari et
    al. 2016, slide 26; its Dice loss targets the strong foreground/background imbalance that
    ``foreground`` dials) and VoxResNet (Chen et al. 2018, slide 27). Objects are randomly
    rotated ellipsoids (axis ratios up to exp(+-``anisotropy``)) with surface bumps
    (``irregularity``), placed like the 2-D nuclei (``touching`` = share placed in contact with an
    earlier blob, see ``place_objects``). Image: per-blob intensity with internal texture on a
    textured background, a smooth multiplicative bias field (depth ``bias``, the MR "intensity
    inhomogeneity"), Gaussian blur (std ``blur`` voxels) and Gaussian noise (std ``noise``).
    Returns ``(volume float32 (D, H, W) in [0, 1], labels int32 (D, H, W))``.
    """
    shape = check_shape("shape", shape, 3, minimum=8)
    n_objects = check_count("n_objects", n_objects)
    touching = check_fraction("touching", touching)
    foreground = check_fraction("foreground", foreground, lo_open=True, hi=0.6)
    for name, v in [("irregularity", irregularity), ("anisotropy", anisotropy), ("blur", blur),
                    ("noise", noise), ("bias", bias)]:
        check_number(name, v, lo=0.0)
    rng = make_rng(seed)
    radius = float(np.cbrt(3 * foreground * np.prod(shape) / (4 * np.pi * n_objects)))
    labels, _ = place_objects(rng, shape, n_objects, touching,
                              _blob_sampler(radius, irregularity, anisotropy), gap=2, min_inside=0.6)
    K = int(labels.max())
    level = np.concatenate([[0.0], rng.uniform(0.55, 0.95, K)])
    vol = level[labels] * (1 + 0.12 * unit_noise(rng, shape, 1.0))
    # objects slightly darker at their rims, so touching blobs keep a faint seam
    from skimage.segmentation import find_boundaries
    vol = np.where(find_boundaries(labels, mode="inner"), 0.8 * vol, vol)
    vol = vol + (labels == 0) * (0.2 + 0.05 * unit_noise(rng, shape, 2.0))
    vol = vol * smooth_field(rng, shape, max(shape) / 3, 1.0 - bias, 1.0)
    vol = ndi.gaussian_filter(vol, blur) if blur > 0 else vol
    vol = vol + rng.normal(0.0, noise, shape)
    return np.clip(vol, 0.0, 1.0).astype(np.float32), labels


def thick_slices(thin, factor: int) -> np.ndarray:
    """Slab-average a (D, H, W) volume along z: slice k = mean of thin slices k*f .. k*f + f - 1.
    D must be a multiple of ``factor``. Returns (D // f, H, W)."""
    thin = np.asarray(thin)
    factor = check_count("factor", factor)
    if thin.ndim != 3 or thin.shape[0] % factor:
        raise ValueError(f"thin must be (D, H, W) with D a multiple of factor={factor}, got {thin.shape}")
    D, H, W = thin.shape
    return thin.reshape(D // factor, factor, H, W).mean(1)


def upsample_slices(thick, factor: int) -> np.ndarray:
    """Linear interpolation of thick slices back onto the thin grid, (D/f, H, W) -> (D, H, W).

    Slab k is centred on thin position k*f + (f - 1) / 2, which is exactly the geometry of
    ``torch.nn.functional.interpolate(..., mode="trilinear", align_corners=False)``; beyond the
    first and last slab centres the edge value is repeated. This is the input DeepResolve refines
    (its residual is learned on top of an interpolated thick-slice volume)."""
    factor = check_count("factor", factor)
    t = torch.as_tensor(np.asarray(thick, np.float32))[None, None]
    out = F.interpolate(t, scale_factor=(factor, 1, 1), mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def synth_thick_thin(shape=(32, 64, 64), factor: int = 4, seed=0, *, n_objects: int = 40,
                     foreground: float = 0.15, noise: float = 0.02):
    """Thick-slice / thin-slice volume pair for super-resolution (DeepResolve, Chaudhari et al.
    2018, slide 28: "generate high-resolution thin slices from low-resolution thick slices").

    The thin volume is ``synth_blobs3d`` with many small, flat-ish blobs (fine z detail that
    thick slices blur away) and a little noise. Thick slices are what a scanner measures with
    ``factor``-times thicker slices: each is the average over a slab of ``factor`` thin slices
    (``thick_slices``). Returns a dict of float32 arrays:
      "thin"          (D, H, W)            the high-resolution target
      "thick_slices"  (D // factor, H, W)  slab averages (what is acquired)
      "thick"         (D, H, W)            thick slices interpolated back onto the thin grid
                                           (``upsample_slices``), the network input
      "labels"        int32 (D, H, W)      the blobs' instance labels
    """
    shape = check_shape("shape", shape, 3, minimum=8)
    factor = check_count("factor", factor)
    if shape[0] % factor:
        raise ValueError(f"shape[0] (depth) must be a multiple of factor={factor}, got shape {shape}")
    thin, labels = synth_blobs3d(shape, seed, n_objects=n_objects, foreground=foreground,
                                 touching=0.3, anisotropy=0.6, blur=0.6, noise=noise)
    thick = thick_slices(thin, factor).astype(np.float32)
    return {"thin": thin, "thick_slices": thick, "thick": upsample_slices(thick, factor),
            "labels": labels}
