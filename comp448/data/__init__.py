"""Data that ships with the course: students train every network of the lecture offline.

- synthetic images with instance labels, one generator per kind of task
  (``synth_nuclei``, ``synth_glands``, ``synth_oct``, ``synth_mri``, ``synth_blobs3d``,
  ``synth_thick_thin``), deterministic given ``seed``, with dials for touching objects and
  foreground share, and the statistics those dials move (``touching_pairs``,
  ``touching_fraction``, ``foreground_fraction``);
- ``real_image(name)``: the medical/microscopy images inside the scikit-image wheel, with sources;
- PyTorch datasets with one sample contract (``SegmentationDataset``, ``SampleDataset``,
  ``MRIDataset``, ``SuperResolutionDataset``);
- loaders for real public data already on disk (``load_glas``, ``load_nuclei_folder``); nothing
  here downloads anything.
"""
from ._common import foreground_fraction, touching_fraction, touching_pairs
from .datasets import (KINDS, TARGETS, MRIDataset, SampleDataset, SegmentationDataset,
                       SuperResolutionDataset, compute_targets)
from .loaders import load_glas, load_nuclei_folder
from .mri import cartesian_mask, fft2c, ifft2c, synth_mri
from .real import REAL_IMAGES, real_image
from .synthetic import synth_glands, synth_nuclei, synth_oct
from .volumes import synth_blobs3d, synth_thick_thin, thick_slices, upsample_slices

__all__ = [
    "synth_nuclei", "synth_glands", "synth_oct", "synth_mri", "synth_blobs3d", "synth_thick_thin",
    "fft2c", "ifft2c", "cartesian_mask", "thick_slices", "upsample_slices",
    "touching_pairs", "touching_fraction", "foreground_fraction",
    "real_image", "REAL_IMAGES",
    "SegmentationDataset", "SampleDataset", "MRIDataset", "SuperResolutionDataset",
    "compute_targets", "KINDS", "TARGETS",
    "load_glas", "load_nuclei_folder",
]
