"""U-Net weight map (slide 13): comp448.targets.unet_weight_map vs the per-object brute force.

    .venv/bin/python benchmarks/bench_weightmap.py [--size 512] [--objects 120] [--repeats 5] [--plot out.png]

Builds a reproducible image of touching objects (Voronoi cells of seeded random points, cut apart by
1-px background lines as in U-Net's ground truth, plus a few background disks), then times side by side:

- brute force: one whole-image Euclidean distance transform per object, then a per-pixel sort of the
  K distances for d1 and d2 (what the definition says, and what most reimplementations do);
- comp448.targets.unet_weight_map (per-object EDT in the bounding box grown by the truncation radius);
- one scipy.ndimage.distance_transform_edt of the whole image (the floor any exact method pays).

Prints the timings (best of the rounds), the ratios and the largest absolute difference of the maps.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, watershed
from tqdm import tqdm

from comp448.targets import class_weight_map, unet_weight_map


def touching_objects(size: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    markers = np.zeros((size, size), np.int32)
    markers[rng.integers(0, size, n), rng.integers(0, size, n)] = np.arange(1, n + 1)
    labels = watershed(ndi.distance_transform_edt(markers == 0), markers)      # Voronoi cells
    yy, xx = np.mgrid[:size, :size]
    for _ in range(6):                                                          # background regions
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(size // 25, size // 10)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 0
    labels[find_boundaries(labels, mode="inner") & (labels > 0)] = 0          # 1-px gaps between cells
    return labels


def brute_force(labels, w0=10.0, sigma=5.0, progress=False):
    ks = [k for k in np.unique(labels) if k > 0]
    dist = np.stack([ndi.distance_transform_edt(labels != k) for k in tqdm(ks, disable=not progress,
                                                                          desc="brute force EDTs")])
    dist.sort(axis=0)                                                           # (K, H, W)
    w = class_weight_map(labels).astype(np.float64)
    bg = labels == 0
    w[bg] += w0 * np.exp(-(dist[0][bg] + dist[1][bg]) ** 2 / (2 * sigma ** 2))
    return w


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--objects", type=int, default=120, help="seed points (cells cut by background vanish)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timing rounds (each: 1 brute force, 5 fast, 5 EDT)")
    ap.add_argument("--plot", default=None, help="save image / weight map / difference to this PNG")
    args = ap.parse_args()

    labels = touching_objects(args.size, args.objects, args.seed)
    k = len(np.unique(labels)) - 1
    print(f"image {labels.shape}, {k} objects, {100 * np.mean(labels == 0):.1f}% background")

    brute_force(labels, progress=True)                                          # warm-up, shows progress
    # The three are timed in interleaved rounds (so that a busy machine slows all of them alike);
    # each figure is the best round.
    times = {"brute": [], "fast": [], "edt": []}
    for _ in tqdm(range(args.repeats), desc="timing rounds"):
        t, w_brute = timed(lambda: brute_force(labels))
        times["brute"].append(t)
        for _ in range(5):
            t, w_fast = timed(lambda: unet_weight_map(labels))
            times["fast"].append(t)
            t, _ = timed(lambda: ndi.distance_transform_edt(labels == 0))     # d1 alone: one EDT
            times["edt"].append(t)
    t_brute, t_fast, t_edt = (min(times[k]) for k in ("brute", "fast", "edt"))
    diff = np.abs(w_fast.astype(np.float64) - w_brute).max()

    print(f"{'method':<40}{'time [ms]':>12}")
    print(f"{'brute force (K EDTs + sort)':<40}{1e3 * t_brute:>12.1f}")
    print(f"{'comp448 unet_weight_map':<40}{1e3 * t_fast:>12.1f}")
    print(f"{'single distance_transform_edt':<40}{1e3 * t_edt:>12.1f}")
    print(f"speed-up over brute force: {t_brute / t_fast:.1f}x")
    print(f"cost relative to one EDT:  {t_fast / t_edt:.2f}x")
    print(f"max |unet_weight_map - brute force| = {diff:.2e}")

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 3, figsize=(13, 4.5))
        ax[0].imshow(labels, cmap="nipy_spectral", interpolation="nearest")
        ax[0].set_title(f"labels ({k} objects)")
        im = ax[1].imshow(w_fast, cmap="magma")
        ax[1].set_title("unet_weight_map (w0=10, sigma=5)")
        fig.colorbar(im, ax=ax[1], fraction=0.046)
        im = ax[2].imshow(np.abs(w_fast - w_brute), cmap="viridis")
        ax[2].set_title("|fast - brute force|")
        fig.colorbar(im, ax=ax[2], fraction=0.046)
        for a in ax:
            a.axis("off")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
