"""Loaders for real public datasets that are already on disk (nothing here downloads).

- ``load_glas(folder)``: the Warwick-QU / MICCAI 2015 GlaS gland segmentation set (Sirinukunwattana
  et al., Medical Image Analysis 35:489-502, 2017), the data of DCAN (slide 19) and AttentionBoost
  (slide 17). Layout as distributed: ``train_1.bmp`` + ``train_1_anno.bmp``, ``testA_*``,
  ``testB_*`` and ``Grade.csv`` in one folder.
- ``load_nuclei_folder(folder)``: nuclei in the Kaggle Data Science Bowl 2018 layout
  (Caicedo et al., Nature Methods 16:1247-1253, 2019): ``<id>/images/<id>.png`` and one binary
  PNG per nucleus in ``<id>/masks/``.

Both return a list of dicts with "name", "image" float32 (C, H, W) in [0, 1] and "labels" int32
(H, W) (0 = background, 1..K = instances), ready for ``SampleDataset`` once paired:
``SampleDataset([(s["image"], s["labels"]) for s in load_glas(folder)], ...)``.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from skimage import io

from .._checks import check_choice

GLAS_SPLITS = ("train", "testA", "testB")


def _folder(folder) -> Path:
    if not isinstance(folder, (str, Path)):
        raise TypeError(f"folder must be a str or pathlib.Path, got {type(folder).__name__}")
    p = Path(folder)
    if not p.is_dir():
        raise FileNotFoundError(f"folder {str(p)!r} does not exist or is not a directory")
    return p


def _to_chw(img: np.ndarray, name: str) -> np.ndarray:
    """uint8/uint16/float image (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1]; drops alpha."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"image {name!r} must be 2-D or 2-D with channels, got shape {img.shape}")
    if img.shape[-1] == 4:
        img = img[..., :3]
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) / np.iinfo(img.dtype).max
    return np.clip(img.astype(np.float32), 0, 1).transpose(2, 0, 1)


def _read_labels(path: Path) -> np.ndarray:
    lab = np.asarray(io.imread(path))
    if lab.ndim == 3:
        if not all(np.array_equal(lab[..., 0], lab[..., c]) for c in range(1, min(lab.shape[-1], 3))):
            raise ValueError(f"annotation {path.name!r} must be a single-channel label image (or equal "
                             f"RGB channels), got different channels")
        lab = lab[..., 0]
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"annotation {path.name!r} must hold integer labels, got {lab.dtype}")
    return lab.astype(np.int32)


def _glas_grades(folder: Path) -> dict[str, str]:
    f = folder / "Grade.csv"
    if not f.exists():
        return {}
    with open(f, newline="") as fh:
        rows = [[c.strip() for c in r] for r in csv.reader(fh) if r]
    header = [h.lower() for h in rows[0]]
    col = next((i for i, h in enumerate(header) if "glas" in h), None)
    if col is None:
        col = next((i for i, h in enumerate(header) if "grade" in h), None)
    if col is None or "name" not in header[0]:
        raise ValueError(f"Grade.csv must have a 'name' column first and a grade column, got header {rows[0]}")
    return {r[0]: r[col] for r in rows[1:] if len(r) > col}


def load_glas(folder, split: str | None = None) -> list[dict]:
    """Load the GlaS (Warwick-QU) gland images from ``folder``.

    ``split``: "train", "testA", "testB" or None (all three). Each item: "name" (e.g. "train_1"),
    "split", "image" float32 (3, H, W) in [0, 1], "labels" int32 (H, W) gland instances from
    ``<name>_anno.bmp``, and "grade" ("benign" / "malignant" from Grade.csv's "grade (GlaS)"
    column, None without Grade.csv). Items are sorted by split, then by number.
    """
    folder = _folder(folder)
    if split is not None:
        check_choice("split", split, GLAS_SPLITS)
    grades = _glas_grades(folder)
    pat = re.compile(r"^(train|testA|testB)_(\d+)\.bmp$")
    found = []
    for f in folder.iterdir():
        m = pat.match(f.name)
        if m and (split is None or m.group(1) == split):
            found.append((GLAS_SPLITS.index(m.group(1)), int(m.group(2)), m.group(1), f))
    if not found:
        raise ValueError(f"folder {str(folder)!r} holds no GlaS images "
                         f"({split or 'train/testA/testB'}_<n>.bmp)")
    out = []
    for _, _, sp, f in sorted(found):
        name = f.stem
        anno = folder / f"{name}_anno.bmp"
        if not anno.exists():
            raise FileNotFoundError(f"GlaS image {f.name!r} has no annotation {anno.name!r}")
        image = _to_chw(io.imread(f), f.name)
        labels = _read_labels(anno)
        if labels.shape != image.shape[1:]:
            raise ValueError(f"annotation {anno.name!r} has shape {labels.shape}, image {image.shape[1:]}")
        out.append({"name": name, "split": sp, "image": image, "labels": labels,
                    "grade": grades.get(name)})
    return out


def load_nuclei_folder(folder) -> list[dict]:
    """Load nuclei images in the Data Science Bowl 2018 layout from ``folder``.

    ``folder/<id>/images/<id>.png`` is the image (RGBA dropped to RGB, grayscale kept as one
    channel), ``folder/<id>/masks/*.png`` one binary mask per nucleus. Labels: mask files in sorted
    name order get ids 1..K; where two masks overlap the earlier one keeps the pixel. A sample
    without a ``masks`` folder (the DSB test sets) gets ``"labels": None``. Items sorted by id.
    """
    folder = _folder(folder)
    out = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir()):
        img_path = d / "images" / f"{d.name}.png"
        if not img_path.exists():
            continue
        image = _to_chw(io.imread(img_path), img_path.name)
        labels = None
        mdir = d / "masks"
        if mdir.is_dir():
            labels = np.zeros(image.shape[1:], np.int32)
            for k, mf in enumerate(sorted(mdir.glob("*.png")), start=1):
                m = np.asarray(io.imread(mf))
                m = m[..., 0] if m.ndim == 3 else m
                if m.shape != labels.shape:
                    raise ValueError(f"mask {mf.name!r} of {d.name!r} has shape {m.shape}, image {labels.shape}")
                labels[(m > 0) & (labels == 0)] = k
        out.append({"name": d.name, "image": image, "labels": labels})
    if not out:
        raise ValueError(f"folder {str(folder)!r} holds no '<id>/images/<id>.png' samples")
    return out
