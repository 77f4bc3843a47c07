"""Synthetic 2-D images with instance labels, one generator per kind of task of the lecture.

- ``synth_nuclei``  fluorescence nuclei, many touching: U-Net weight map (slide 13), DeepDistance (slide 20)
- ``synth_glands``  H&E colon glands in RGB: DCAN contours (slide 19), AttentionBoost (slide 17)
- ``synth_oct``     OCT B-scan with a thin curved layer (Henle's fibre layer): FourierNet (slides 21-22)

All three are deterministic functions of ``seed`` (one ``numpy.random.Generator`` drives
everything) and take two dials that the lecture's "challenges" slide (10) is about:
``touching`` (share of objects placed in contact with another one, "separation of touching
objects") and ``foreground`` (share of object pixels, "imbalanced classes"). The measured values
are available through ``touching_fraction`` / ``touching_pairs`` / ``foreground_fraction``.

Layouts: grayscale images are float32 (H, W) in [0, 1]; RGB images are float32 (3, H, W) in
[0, 1] (channels first, as PyTorch wants them); labels are int32 (H, W), 0 = background,
1..K = instances.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import color, draw, segmentation

from ._common import (check_count, check_fraction, check_shape, make_rng, place_objects,
                      smooth_field, star_polygon, unit_noise)
from .._checks import check_number


def _polygon_sampler(radius: float, irregularity: float, elongation: float, radius_jitter: float):
    """sample_offsets(rng) for ``place_objects``: pixels of a random star polygon around (0, 0)."""
    def sample(rng):
        r = radius * np.exp(rng.normal(0.0, radius_jitter))
        v = star_polygon(rng, r, irregularity, elongation)
        R = int(np.ceil(np.abs(v).max())) + 1
        rr, cc = draw.polygon(v[:, 0] + R, v[:, 1] + R, shape=(2 * R + 1, 2 * R + 1))
        if len(rr) == 0:
            rr, cc = np.array([R]), np.array([R])
        return np.stack([rr - R, cc - R], axis=1)
    return sample


def _inner_distance(labels: np.ndarray) -> np.ndarray:
    """Distance (px) from each object pixel to the nearest background pixel or border with another
    object (0 on the background): object interiors are 'thick', seams between touching objects thin."""
    inner = (labels > 0) & ~segmentation.find_boundaries(labels, mode="inner")
    return ndi.distance_transform_edt(inner)


def _mean_radius(shape, n_objects: int, foreground: float) -> float:
    return float(np.sqrt(foreground * np.prod(shape) / (n_objects * np.pi)))


# ============================================================================ nuclei
def synth_nuclei(size=256, n_objects: int = 60, touching: float = 0.5, seed=0, *,
                 foreground: float = 0.2, irregularity: float = 0.25, elongation: float = 0.35,
                 blur: float = 1.2, photons: float = 200.0, illumination: float = 0.35,
                 out_of_focus: int = 3):
    """Fluorescence-like (DAPI/Hoechst) nuclei image with instance labels, many nuclei touching.

    Stands for the cell images of the U-Net paper (Ronneberger et al. 2015, slide 13: "separation
    of touching objects", weight map c_p = cw_p + w0 exp(-(d1+d2)^2 / (2 sigma^2))) and of
    DeepDistance (Koyuncu et al. 2020, slide 20). Image formation, in order:

    1. outlines: random Fourier radii (``irregularity``) stretched by up to ``1 + elongation``,
       rasterised with ``skimage.draw.polygon``; a share ``touching`` of the nuclei is pushed
       against an earlier one until they share a border (see ``place_objects``);
    2. intensity: per-nucleus brightness (DNA content) times chromatin texture (filtered noise,
       darker nucleoli), falling off towards each nucleus' border so seams stay faintly visible;
    3. a few unlabelled, strongly blurred out-of-focus nuclei and a dim background haze;
    4. a smooth illumination field (vignetting/uneven excitation, depth ``illumination``);
    5. optical blur: Gaussian point-spread function of std ``blur`` px;
    6. shot noise: Poisson counts with ``photons`` expected photons at full intensity, plus
       Gaussian read noise; clipped to [0, 1].

    ``foreground`` sets the mean nucleus size (mean area = foreground * H * W / n_objects); the
    measured share is a little lower because nuclei are cut by the border or dropped when the image
    is crowded. Returns ``(image float32 (H, W) in [0, 1], labels int32 (H, W))``.
    """
    H, W = check_shape("size", size, 2)
    n_objects = check_count("n_objects", n_objects)
    touching = check_fraction("touching", touching)
    foreground = check_fraction("foreground", foreground, lo_open=True, hi=0.7)
    for name, v in [("irregularity", irregularity), ("elongation", elongation), ("blur", blur),
                    ("illumination", illumination)]:
        check_number(name, v, lo=0.0)
    check_number("photons", photons, lo=0.0, lo_open=True)
    out_of_focus = check_count("out_of_focus", out_of_focus, minimum=0)
    rng = make_rng(seed)

    radius = _mean_radius((H, W), n_objects, foreground)
    labels, _ = place_objects(rng, (H, W), n_objects, touching,
                              _polygon_sampler(radius, irregularity, elongation, 0.18), gap=2)
    K = int(labels.max())

    # 2. nucleus intensity: brightness x texture x edge profile
    brightness = np.concatenate([[0.0], rng.uniform(0.45, 1.0, K)])
    texture = 1.0 + 0.18 * unit_noise(rng, (H, W), 1.0)
    nucleoli = ndi.gaussian_filter((rng.random((H, W)) < 0.004).astype(float), 1.3) * 25
    texture = np.clip(texture - 0.5 * np.clip(nucleoli, 0, 1), 0.2, None)
    d = _inner_distance(labels)
    profile = 1.0 - 0.7 * np.exp(-d / 1.5)
    signal = brightness[labels] * texture * profile * (labels > 0)

    # 3. out-of-focus nuclei (unlabelled) and background haze
    ghosts = np.zeros((H, W))
    for _ in range(out_of_focus):
        r = radius * rng.uniform(0.8, 1.3)
        rr, cc = draw.disk((rng.uniform(0, H), rng.uniform(0, W)), r, shape=(H, W))
        ghosts[rr, cc] = rng.uniform(0.1, 0.25)
    signal = signal + ndi.gaussian_filter(ghosts, radius * 0.6) * (labels == 0)
    signal = signal + 0.04 + smooth_field(rng, (H, W), max(H, W) / 6, 0.0, 0.04)

    # 4. illumination, 5. blur, 6. shot + read noise
    signal = signal * smooth_field(rng, (H, W), max(H, W) / 3, 1.0 - illumination, 1.0)
    signal = ndi.gaussian_filter(signal, blur) if blur > 0 else signal
    signal = 0.85 * signal / max(np.percentile(signal, 99.9), 1e-6)
    image = rng.poisson(np.clip(signal, 0, None) * photons) / photons
    image = image + rng.normal(0.0, 0.01, (H, W))
    return np.clip(image, 0.0, 1.0).astype(np.float32), labels


# ============================================================================ glands
def synth_glands(size=256, seed=0, *, n_objects: int = 7, touching: float = 0.2,
                 foreground: float = 0.4, stain_variation: float = 0.05, irregularity: float = 0.3,
                 elongation: float = 0.6):
    """H&E-stained colon tissue with glands (lumen + epithelial ring + stroma) and gland labels.

    Stands for the GlaS / Warwick-QU images of DCAN (Chen et al. 2016/2017, slide 19) and
    AttentionBoost (Gunesli et al. 2020, slide 17). Each gland is an irregular elongated outline
    (instance label = the whole gland, lumen included, as in the GlaS annotation) with

    - an epithelial ring of columnar cells: dense, elongated, hematoxylin-dark nuclei along the
      basal side (perpendicular to the basement membrane), pink-purple cytoplasm with pale mucin
      vacuoles (goblet cells);
    - a lumen: almost white, with faint eosinophilic secretion;
    - around it stroma: eosin-pink fibres, scattered spindle and round (lymphocyte) nuclei, and
      white retraction clefts next to some glands.

    Colour is formed physically: hematoxylin and eosin optical densities are mixed through a stain
    matrix (Beer-Lambert, ``skimage.color.combine_stains`` with ``rgb_from_hed``); the stain
    vectors are perturbed by ``stain_variation`` and the two stain amounts scaled per image, so
    stain colour varies from seed to seed as between labs. ``touching`` is the share of glands
    placed in contact with another one (rare in benign tissue, common in high-grade cancer);
    ``foreground`` the target share of gland pixels. Returns ``(image float32 (3, H, W) in [0, 1],
    labels int32 (H, W))``.
    """
    H, W = check_shape("size", size, 2, minimum=32)
    n_objects = check_count("n_objects", n_objects)
    touching = check_fraction("touching", touching)
    foreground = check_fraction("foreground", foreground, lo_open=True, hi=0.7)
    for name, v in [("stain_variation", stain_variation), ("irregularity", irregularity),
                    ("elongation", elongation)]:
        check_number(name, v, lo=0.0)
    rng = make_rng(seed)
    s = min(H, W) / 256.0                        # feature scale relative to a 256 px tile

    radius = _mean_radius((H, W), n_objects, foreground)
    labels, _ = place_objects(rng, (H, W), n_objects, touching,
                              _polygon_sampler(radius, irregularity, elongation, 0.2),
                              gap=max(3, int(6 * s)), min_inside=0.5)
    gland = labels > 0
    d_in = _inner_distance(labels)
    d_out = ndi.distance_transform_edt(~gland)

    # epithelium thickness: ~10 px at 256 px, varying along the gland; the rest is lumen
    thick = (12.0 * s) * (1.0 + 0.25 * unit_noise(rng, (H, W), 6 * s)) + 1.0
    max_d = ndi.maximum(d_in, labels, np.arange(K + 1)) if (K := int(labels.max())) else np.zeros(1)
    thick = np.minimum(thick, 0.7 * np.asarray(max_d)[labels] + 1.0)
    epi = gland & (d_in < thick)
    lumen = gland & ~epi

    # stain optical densities (hematoxylin, eosin)
    # wavy collagen fibres: stripes along the level lines of a smooth random field
    phase = 2 * np.pi * (18.0 / max(s, 0.25)) * smooth_field(rng, (H, W), 25 * s) \
        + 0.6 * unit_noise(rng, (H, W), 2 * s)
    fib = np.cos(phase) * (0.6 + 0.4 * smooth_field(rng, (H, W), 3 * s))
    od_h = np.full((H, W), 0.10) + 0.03 * unit_noise(rng, (H, W), 2)
    od_e = 0.38 + 0.12 * fib + 0.06 * unit_noise(rng, (H, W), 20 * s)
    od_e[epi] = 0.45 + 0.05 * unit_noise(rng, (H, W), 1.5)[epi]
    od_h[epi] = 0.25
    od_e[lumen] = 0.04 + 0.06 * np.clip(unit_noise(rng, (H, W), 3 * s), 0, None)[lumen]
    od_h[lumen] = 0.02

    # goblet-cell mucin vacuoles: pale round holes in the epithelium
    vac = (rng.random((H, W)) < 0.015 / max(s, 0.5) ** 2) & epi & (d_in > 0.45 * thick)
    vac = ndi.binary_dilation(vac, iterations=max(1, int(2 * s))) & epi
    od_e[vac] *= 0.3
    od_h[vac] = 0.05

    # nuclei: epithelial (basal, elongated perpendicular to the border) and stromal
    nuc = np.zeros((H, W), float)
    gy, gx = np.gradient(ndi.gaussian_filter(d_in, 1.5))
    band = np.argwhere(epi & (np.abs(d_in - 0.35 * thick) < 1.5))
    taken = np.zeros((H, W), bool)                 # greedy spacing: one nucleus per ~4 px of ring
    for r, c in band[rng.permutation(len(band))]:
        if taken[r, c]:
            continue
        rr, cc = draw.disk((r, c), 3.6 * s, shape=(H, W))
        taken[rr, cc] = True
        ang = np.arctan2(gy[r, c], gx[r, c])
        rr, cc = draw.ellipse(r, c, 4.2 * s, 1.9 * s, shape=(H, W), rotation=np.pi / 2 - ang)
        nuc[rr, cc] = rng.uniform(0.75, 1.0)
    stroma = ~gland & (d_out > 2)
    pts = np.argwhere(stroma)
    for r, c in pts[rng.permutation(len(pts))[: int(H * W * 0.0025)]]:
        if rng.random() < 0.5:      # spindle (fibroblast)
            rr, cc = draw.ellipse(r, c, 4.0 * s, 1.2 * s, shape=(H, W), rotation=rng.uniform(0, np.pi))
        else:                       # lymphocyte
            rr, cc = draw.disk((r, c), 1.8 * s, shape=(H, W))
        nuc[rr, cc] = 1.0
    nuc = ndi.gaussian_filter(nuc, 0.5) * (1.0 + 0.15 * unit_noise(rng, (H, W), 0.8))
    od_h = od_h + 1.25 * nuc
    od_e = od_e * (1 - 0.5 * np.clip(nuc, 0, 1))

    # white retraction clefts just outside some glands
    cleft = (d_out > 0) & (d_out < 1.5 + 2.5 * s) & (smooth_field(rng, (H, W), 8 * s) > 0.7)
    od_h[cleft] *= 0.1
    od_e[cleft] *= 0.1

    # Beer-Lambert colour with a perturbed stain matrix and per-image stain amounts
    M = color.rgb_from_hed.copy()
    M[:2] += rng.normal(0.0, stain_variation, (2, 3))
    M[:2] = np.abs(M[:2]) / np.linalg.norm(M[:2], axis=1, keepdims=True)
    amounts = rng.uniform(0.8, 1.2, 2)
    od = np.stack([od_h * amounts[0], od_e * amounts[1], np.zeros((H, W))], axis=-1)
    log_adjust = -np.log(1e-6)                    # combine_stains multiplies by this factor
    rgb = color.combine_stains(np.clip(od, 0, None) / log_adjust, M)
    rgb = ndi.gaussian_filter(rgb, (0.6, 0.6, 0)) * rng.uniform(0.92, 0.98)
    rgb = rgb + rng.normal(0.0, 0.012, rgb.shape)
    image = np.clip(rgb, 0.0, 1.0).transpose(2, 0, 1).astype(np.float32)
    return image, labels


# ============================================================================ OCT
def synth_oct(size=256, seed=0, *, layer_contrast: float = 1.0, speckle: float = 1.0,
              fovea: float | None = None, tilt: float = 0.15, looks: int = 4):
    """OCT-like retinal B-scan (rows = depth, columns = A-scans) with the thin curved Henle's fibre
    layer (HFL) labelled as one object.

    Stands for the OCT images of FourierNet (Cansiz et al. 2023, slides 21-22), whose target is a
    single thin, curved, hard-to-see layer whose *shape* the Fourier descriptors encode. From the
    vitreous down: RNFL, GCL, IPL, INL, OPL, **HFL**, ONL, ELM, ellipsoid zone, RPE, choroid. The
    inner layers thin out into a foveal pit at column ``fovea`` (random near the centre when
    None); the HFL is thickest beside the pit and tapers to nothing a few hundred microns away,
    so its mask is a closed crescent. Image formation: reflectivity per layer (the HFL only
    ``1 + 2 layer_contrast`` times brighter than the ONL below it), depth attenuation, fully developed
    speckle (complex Gaussian field, laterally correlated, averaged over ``looks`` repeated
    B-scans as scanners do; ``speckle`` = 0 switches it off) and
    log compression to [0, 1], as on a scanner's display. ``tilt`` is the maximal slope of the
    retina (scan not perpendicular). Returns ``(image float32 (H, W) in [0, 1], labels int32
    (H, W) with 0 and 1)``.
    """
    H, W = check_shape("size", size, 2, minimum=32)
    check_number("layer_contrast", layer_contrast, lo=0.0)
    check_number("speckle", speckle, lo=0.0)
    check_number("tilt", tilt, lo=0.0, hi=1.0)
    looks = check_count("looks", looks)
    if fovea is not None:
        check_number("fovea", fovea, lo=0.0, hi=1.0)
    rng = make_rng(seed)
    x = np.arange(W, dtype=float)
    xf = W * (fovea if fovea is not None else rng.uniform(0.4, 0.6))
    pit_w = W * rng.uniform(0.07, 0.10)
    pit = np.exp(-0.5 * ((x - xf) / pit_w) ** 2)                  # 1 at the fovea, 0 far away
    wiggle = lambda amp, sig: amp * H * ndi.gaussian_filter1d(rng.standard_normal(W), sig, mode="nearest") \
        * np.sqrt(sig)                                             # noqa: E731

    # the outer retina (RPE) is a gently curved, tilted line; inner layers stack above it
    base = H * rng.uniform(0.58, 0.66) + rng.uniform(-tilt, tilt) * (x - W / 2) \
        - H * rng.uniform(0.0, 0.25) * ((x - W / 2) / W) ** 2 + wiggle(0.002, W / 10)
    inner = 1.0 - 0.92 * pit                                      # inner layers vanish in the pit
    t = {
        "RNFL": H * 0.035 * inner * (1 + 0.6 * (x > xf) * np.clip((x - xf) / (0.5 * W), 0, 1)),
        "GCL": H * 0.045 * inner * (1 + 0.4 * np.exp(-0.5 * ((np.abs(x - xf) - 2.2 * pit_w) / pit_w) ** 2)),
        "IPL": H * 0.035 * inner,
        "INL": H * 0.035 * inner,
        "OPL": H * 0.02 * (1 - 0.5 * pit),
    }
    # HFL: thickest just beside the pit, tapering to 0 about 4 pit widths away
    reach = np.clip(1 - (np.abs(x - xf) / (rng.uniform(3.2, 4.2) * pit_w)) ** 2, 0, None)
    hfl = H * rng.uniform(0.035, 0.05) * reach * (1 - 0.35 * pit) * (1 + 0.1 * wiggle(1, W / 20) / max(H, 1))
    onl_total = H * 0.09 * (1 + 0.5 * pit)
    t["HFL"] = np.minimum(hfl, 0.8 * onl_total)
    t["ONL"] = onl_total - t["HFL"]
    t["ELM"] = np.full(W, H * 0.006)
    t["EZ"] = np.full(W, H * 0.012)
    t["IZ"] = np.full(W, H * 0.01)
    t["RPE"] = np.full(W, H * 0.02)
    t["CHOROID"] = H * 0.12 * np.ones(W) + wiggle(0.004, W / 15)
    names = list(t)
    above = sum(t[n] for n in names[: names.index("RPE")])              # retina above the RPE
    top = base - above                                                  # ILM: dips into the pit
    bounds = np.cumsum(np.stack([top] + [t[n] for n in names]), axis=0)   # (len+1, W) layer tops
    refl = {"RNFL": 0.5, "GCL": 0.12, "IPL": 0.3, "INL": 0.05, "OPL": 0.25,
            "HFL": 0.02 * (1 + 2.0 * layer_contrast), "ONL": 0.02, "ELM": 0.15, "EZ": 0.7,
            "IZ": 0.25, "RPE": 1.0, "CHOROID": 0.25}
    levels = np.array([4e-4] + [refl[n] for n in names] + [0.01])      # vitreous ... sclera

    y = np.arange(H, dtype=float)[:, None] + 0.5
    index = (y[None] >= bounds[:, None, :]).sum(0)                       # (H, W) layer 0..len+1
    # sub-pixel smooth transitions between layers
    R = ndi.gaussian_filter(levels[index], (0.7, 0.0))
    choroid = (index == names.index("CHOROID") + 1)
    R = R * np.where(choroid, 0.6 + 0.8 * smooth_field(rng, (H, W), (2.0, 4.0)), 1.0)
    R = R * (1 + 0.15 * unit_noise(rng, (H, W), (1.0, 6.0)))            # layer texture
    depth = np.clip(y - top[None], 0, None)
    R = np.clip(R, 0, None) * np.exp(-2.0 * depth / H)                    # attenuation

    if speckle > 0:                # fully developed speckle, averaged over `looks` B-scans
        sp = np.zeros((H, W))
        for _ in range(looks):
            field = ndi.gaussian_filter(rng.standard_normal((H, W)), (0.6, 1.2)) + \
                1j * ndi.gaussian_filter(rng.standard_normal((H, W)), (0.6, 1.2))
            sp += np.abs(field) ** 2
        sp /= sp.mean()
        I = R * (1 - min(speckle, 1.0) + min(speckle, 1.0) * sp)
    else:
        I = R
    I = I + 3e-4 * rng.exponential(1.0, (H, W))                       # noise floor
    dyn = 1e-4                                                          # 40 dB display range
    image = np.log10(np.clip(I, dyn, None) / dyn) / np.log10(1.0 / dyn)

    k = names.index("HFL") + 1
    mask = (index == k) & (t["HFL"][None, :] > 0.5)
    lab, n = ndi.label(mask)
    if n > 1:
        mask = lab == (np.argmax(np.bincount(lab.ravel())[1:]) + 1)
    return np.clip(image, 0, 1).astype(np.float32), mask.astype(np.int32)
