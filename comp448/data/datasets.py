"""PyTorch datasets over the synthetic generators (and over any list of image/label pairs).

Sample contract of ``SegmentationDataset`` / ``SampleDataset`` (every network of the lecture that
segments reads these keys; ``torch.utils.data.default_collate`` batches them):

  "image"   float32 tensor (C, H, W) or (C, D, H, W), values in [0, 1]
  "mask"    float32 tensor (1, *spatial), 1 on objects, 0 on background
  "labels"  int64 tensor (*spatial), instance ids 0..K
  plus, for each name in ``targets`` (computed by ``comp448.targets`` AFTER augmentation, from the
  augmented labels, so they always match the image):
  "weight_map"    (1, *spatial)  unet_weight_map(labels, **kw)           U-Net, slide 13
  "class_weights" (1, *spatial)  class_weight_map(mask, **kw)            slide 13 (cw_p)
  "contour"       (1, *spatial)  contour_map(labels, **kw)               DCAN, slide 19
  "inner"         (1, *spatial)  inner_distance_map(labels, **kw)        DeepDistance, slide 20
  "outer"         (1, *spatial)  outer_distance_map(labels, **kw)        DeepDistance, slide 20
  "amplitudes"    (N,)           fourier_descriptors(labels, n_harmonics=5) FourierNet, slides 21-22
                                 (of the largest object; zeros when there is none; 2-D only)
  all float32. ``target_kwargs={"weight_map": {"w0": 10, "sigma": 5}, ...}`` passes options.

Determinism: image i is generated from ``SeedSequence(seed, spawn_key=(0, i))`` and its
augmentation draws from ``SeedSequence(seed, spawn_key=(1, i, epoch))``, so ``ds[i]`` is the same
tensor whatever the order of access, the number of DataLoader workers or the process, for a given
(seed, epoch). Call ``ds.set_epoch(e)`` at the start of each epoch to get fresh augmentations
(as with ``DistributedSampler.set_epoch``); without it every epoch sees the same augmentation.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import check_choice
from ._common import check_count, make_rng
from .mri import ifft2c, synth_mri
from .synthetic import synth_glands, synth_nuclei, synth_oct
from .volumes import synth_blobs3d, synth_thick_thin

TARGETS = ("weight_map", "class_weights", "contour", "inner", "outer", "amplitudes")
KINDS = {  # kind -> (generator, default size, spatial dims)
    "nuclei": (synth_nuclei, 256, 2),
    "glands": (synth_glands, 256, 2),
    "oct": (synth_oct, 256, 2),
    "blobs3d": (synth_blobs3d, (32, 64, 64), 3),
}


def _seq(seed: int, *key: int) -> np.random.SeedSequence:
    make_rng(seed)  # validates seed (int >= 0)
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def compute_targets(labels: np.ndarray, targets, target_kwargs=None) -> dict[str, np.ndarray]:
    """The requested target maps of one label image, as float32 arrays (see module docstring)."""
    from .. import targets as T            # imported lazily: comp448.targets is a sibling module
    kw = dict(target_kwargs or {})
    mask = labels > 0
    out = {}
    for name in targets:
        k = dict(kw.get(name, {}))
        if name == "weight_map":
            v = T.unet_weight_map(labels, **k)
        elif name == "class_weights":
            v = T.class_weight_map(mask.astype(np.int64), **k)
        elif name == "contour":
            v = T.contour_map(labels, **k)
        elif name == "inner":
            v = T.inner_distance_map(labels, **k)
        elif name == "outer":
            v = T.outer_distance_map(labels, **k)
        else:  # amplitudes
            if labels.ndim != 2:
                raise ValueError(f"targets 'amplitudes' needs 2-D labels, got shape {labels.shape}")
            k.setdefault("n_harmonics", 5)
            n = k["n_harmonics"]
            # largest object's contour (labels, so touching objects stay separate objects)
            v = T.fourier_descriptors(labels, **k) if mask.any() else np.zeros(n)
            out[name] = np.asarray(v, np.float32).reshape(-1)
            continue
        out[name] = np.asarray(v, np.float32)[None]
    return out


class SampleDataset(Dataset):
    """Dataset over a list of ``(image, labels)`` pairs with the sample contract above.

    ``image`` is a NumPy array (C, *spatial) (or (*spatial) for one channel) with values in [0, 1];
    ``labels`` an integer array (*spatial). ``augment`` is ``None`` or a callable
    ``augment(sample, rng) -> sample`` (see ``comp448.augment``) taking and returning a dict with
    NumPy "image" (C, *spatial) and "labels" (*spatial); ``targets`` a tuple of names from
    ``TARGETS``. Use it to give real data (``load_glas``, ``load_nuclei_folder``) the same contract.
    """

    def __init__(self, pairs, augment=None, targets=(), seed: int = 0, target_kwargs=None):
        if isinstance(targets, str):
            targets = (targets,)
        for t in targets:
            check_choice("targets", t, TARGETS)
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be None or a callable t(sample, rng), got {type(augment).__name__}")
        if target_kwargs is not None and not isinstance(target_kwargs, dict):
            raise TypeError(f"target_kwargs must be a dict name -> kwargs, got {type(target_kwargs).__name__}")
        for t in target_kwargs or {}:
            check_choice("target_kwargs key", t, TARGETS)
        make_rng(seed)
        self.pairs = []
        for i, (img, lab) in enumerate(pairs):
            self.pairs.append(self._check_pair(i, img, lab))
        self.augment, self.targets, self.seed = augment, tuple(targets), int(seed)
        self.target_kwargs = dict(target_kwargs or {})
        self.epoch = 0

    @staticmethod
    def _check_pair(i, img, lab):
        img, lab = np.asarray(img, np.float32), np.asarray(lab)
        if not np.issubdtype(lab.dtype, np.integer) and lab.dtype != bool:
            raise TypeError(f"labels of sample {i} must be integer, got {lab.dtype}")
        if img.shape == lab.shape:
            img = img[None]
        if img.shape[1:] != lab.shape:
            raise ValueError(f"image of sample {i} must be (C, *spatial) with spatial == labels.shape "
                             f"{lab.shape}, got {img.shape}")
        return img, lab.astype(np.int64)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of epoch ``epoch`` (>= 0)."""
        self.epoch = check_count("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        return len(self.pairs)

    def _pair(self, i: int):
        return self.pairs[i]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} samples")
        i = i % len(self)
        img, lab = self._pair(i)
        sample = {"image": img.copy(), "labels": lab.copy()}
        if self.augment is not None:
            rng = np.random.default_rng(_seq(self.seed, 1, i, self.epoch))
            sample = self.augment(sample, rng)
            if not isinstance(sample, dict) or "image" not in sample or "labels" not in sample:
                raise TypeError("augment must return a dict with 'image' and 'labels'")
        img = np.ascontiguousarray(sample["image"], np.float32)
        lab = np.ascontiguousarray(np.rint(sample["labels"]).astype(np.int64))
        out = {"image": torch.from_numpy(img),
               "mask": torch.from_numpy((lab > 0).astype(np.float32)[None]),
               "labels": torch.from_numpy(lab)}
        for k, v in compute_targets(lab, self.targets, self.target_kwargs).items():
            out[k] = torch.from_numpy(v)
        return out


class SegmentationDataset(SampleDataset):
    """``n`` synthetic images of one ``kind`` with the sample contract of the module docstring.

    kind: "nuclei" (1 channel, touching nuclei), "glands" (3-channel H&E), "oct" (1 channel,
    one thin layer) or "blobs3d" (1 channel, 3-D). ``size`` is the generator's size / shape
    (default: the generator's default); extra keyword arguments go to the generator (e.g.
    ``touching=0.8, foreground=0.05``). Images are generated when first used and cached
    (``lazy=True``), or all at construction with a progress bar (``lazy=False``, the default), so
    epochs cost only augmentation and targets. Example::

        ds = SegmentationDataset("nuclei", 16, size=128, targets=("weight_map",), n_objects=20)
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
        batch["image"].shape, batch["weight_map"].shape   # (4, 1, 128, 128) twice
    """

    def __init__(self, kind: str, n: int, size=None, seed: int = 0, augment=None, targets=(),
                 target_kwargs=None, lazy: bool = False, progress: bool = True, **generator_kwargs):
        check_choice("kind", kind, KINDS)
        n = check_count("n", n)
        super().__init__([], augment=augment, targets=targets, seed=seed, target_kwargs=target_kwargs)
        self.kind, self.n = kind, n
        gen, default, _ = KINDS[kind]
        self.size = default if size is None else size
        self.generator_kwargs = generator_kwargs
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._pair(0)  # validates size and generator_kwargs now, not at the first batch
        if not lazy:
            from tqdm.auto import tqdm
            for i in tqdm(range(n), desc=f"generating {kind}", disable=not progress or n < 8):
                self._pair(i)

    def __len__(self) -> int:
        return self.n

    def _pair(self, i: int):
        if i not in self._cache:
            gen = KINDS[self.kind][0]
            key = "shape" if self.kind == "blobs3d" else "size"
            img, lab = gen(**{key: self.size}, seed=_seq(self.seed, 0, i), **self.generator_kwargs)
            self._cache[i] = self._check_pair(i, img, lab)
        return self._cache[i]


class MRIDataset(Dataset):
    """``n`` SegNetMRI samples from ``synth_mri`` (joint reconstruction + segmentation, slides 23-24).

    k-space layout: ``comp448.kspace`` (centred orthonormal ``fft2c``, DC at (H // 2, W // 2), the
    mask keeps whole rows = phase-encoding lines), the layout ``comp448.nets.SegNetMRI`` and
    ``data_consistency`` use, so a batch goes into the network as it is::

        out = SegNetMRI(in_channels=C)(b["zero_filled"], b["kspace"][:, 0], b["mask_kspace"][:, 0])

    and ``data_consistency(b["image"], b["kspace"][:, 0], b["mask_kspace"][:, 0])`` returns
    ``b["image"]`` (the true image is consistent with its own measurement).

    Each sample (tensors), with C = ``channels``:
      "kspace"       complex64 (1, H, W)  MEASURED k-space y = mask_kspace * fft2c(image), 0 off the mask
      "mask_kspace"  float32 (1, H, W)    Cartesian sampling mask m (whole rows)
      "zero_filled"  float32 (C, H, W)    the network input F^-1(y) = ifft2c(kspace): (real, imaginary)
                                          for C = 2 (exact); its real part for C = 1 (what
                                          ``SegNetMRI(in_channels=1)`` and ``undersample`` use for
                                          real images). Its magnitude, for display, is
                                          ``ifft2c(kspace).abs()``.
      "image"        float32 (C, H, W)    fully sampled image x^fs (reconstruction target); for C = 2
                                          the imaginary channel is 0 (the phantom is real)
      "mask"         float32 (1, H, W)    lesion segmentation target in {0, 1}
      "labels"       int64 (H, W)         lesion instances
    Sample i uses ``SeedSequence(seed, spawn_key=(0, i))``: deterministic, a new sampling mask per
    image. Generated at construction. ``kwargs`` go to ``synth_mri`` (``center_fraction``,
    ``n_lesions``, ``noise``).
    """

    def __init__(self, n: int, size=128, seed: int = 0, acceleration: float = 4.0, channels: int = 1, **kwargs):
        n = check_count("n", n)
        if channels not in (1, 2) or isinstance(channels, bool):
            raise ValueError(f"channels must be 1 (real image) or 2 (real, imaginary), got {channels!r}")
        self.channels = channels
        self.samples = []
        for i in range(n):
            d = synth_mri(size, _seq(seed, 0, i), acceleration, **kwargs)
            m = torch.from_numpy(d["mask_kspace"])                       # (H, W)
            y = m * torch.from_numpy(d["kspace"])                        # (H, W) complex64, measured
            zf = ifft2c(y)                                               # (H, W) complex64, F^-1(y)
            img = torch.from_numpy(d["image"])                           # (H, W) real
            if channels == 2:
                zf, img = torch.stack([zf.real, zf.imag]), torch.stack([img, torch.zeros_like(img)])
            else:
                zf, img = zf.real[None], img[None]
            self.samples.append({
                "kspace": y[None], "mask_kspace": m[None], "zero_filled": zf.contiguous(), "image": img,
                "mask": torch.from_numpy((d["labels"] > 0).astype(np.float32))[None],
                "labels": torch.from_numpy(d["labels"].astype(np.int64))})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return dict(self.samples[i])


class SuperResolutionDataset(Dataset):
    """``n`` DeepResolve samples from ``synth_thick_thin`` (slide 28).

    Each sample: "thick" float32 (1, D, H, W) (thick slices interpolated onto the thin grid, the
    network input), "thin" float32 (1, D, H, W) (target), "thick_slices" float32
    (1, D // factor, H, W) (the slab averages themselves). Deterministic per (seed, i).
    """

    def __init__(self, n: int, shape=(32, 64, 64), factor: int = 4, seed: int = 0, **kwargs):
        n = check_count("n", n)
        self.samples = []
        for i in range(n):
            d = synth_thick_thin(shape, factor, _seq(seed, 0, i), **kwargs)
            self.samples.append({k: torch.from_numpy(d[k])[None] for k in ("thick", "thin", "thick_slices")})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return dict(self.samples[i])
