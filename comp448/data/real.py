"""Real medical/microscopy images that ship inside the scikit-image wheel (no download).

``real_image(name)`` returns ``{"name", "image", "description", "source", "license"}`` with the
array exactly as ``skimage.data`` returns it (dtype and layout unchanged: uint8 (H, W) or
(H, W, 3), the phantom float64) and the citation the scikit-image documentation gives for it.
scikit-image's other medical sets (cells3d, human_mitosis, brain, kidney, ...) are fetched with
pooch from the internet; asking for them raises a ValueError that says so.
"""
from __future__ import annotations

from .._checks import check_choice

REAL_IMAGES = {
    "cell": dict(
        loader="cell",
        description="Cell floating in saline: quantitative phase image from a digital hologram "
                    "(qpformat), (660, 550) uint8, pixel spacing 0.107 um.",
        source="scikit-image skimage.data.cell(); from P. Müller, M. Schürmann, S. Girardo, G. Cojoc, "
               "J. Guck, 'Accurate evaluation of size and refractive index for spherical objects in "
               "quantitative phase imaging', Optics Express 26(8):10729-10743, 2018, "
               "doi:10.1364/OE.26.010729.",
        license="CC0"),
    "retina": dict(
        loader="retina",
        description="Human retina, fundus photograph of a normal left eye, (1411, 1411, 3) uint8 RGB.",
        source="scikit-image skimage.data.retina(); Wikimedia Commons "
               "'Fundus_photograph_of_normal_left_eye.jpg', M. Häggström, 'Medical gallery of Mikael "
               "Häggström 2014', WikiJournal of Medicine 1(2), doi:10.15347/wjm/2014.008.",
        license="CC0 1.0 (public domain dedication)"),
    "microaneurysms": dict(
        loader="microaneurysms",
        description="Retina with microaneurysms: green-channel crop of image 07_dr.JPG of the "
                    "High-Resolution Fundus (HRF) database, (102, 102) uint8.",
        source="scikit-image skimage.data.microaneurysms(); HRF Image Database "
               "https://www5.cs.fau.de/research/data/fundus-images/ ; A. Budai, R. Bock, A. Maier, "
               "J. Hornegger, G. Michelson, 'Robust Vessel Segmentation in Fundus Images', Int. J. "
               "Biomedical Imaging 2013, doi:10.1155/2013/154860.",
        license="CC0 (given by the owner, Andreas Maier)"),
    "immunohistochemistry": dict(
        loader="immunohistochemistry",
        description="Colonic glands, IHC staining of FHL2 protein with DAB and hematoxylin "
                    "counterstain, (512, 512, 3) uint8 RGB.",
        source="scikit-image skimage.data.immunohistochemistry(); acquired at the Center for "
               "Microscopy And Molecular Imaging (CMMI).",
        license="no known copyright restrictions"),
    "shepp_logan_phantom": dict(
        loader="shepp_logan_phantom",
        description="Shepp-Logan head phantom, (400, 400) float64 in [0, 1].",
        source="scikit-image skimage.data.shepp_logan_phantom(); L. A. Shepp, B. F. Logan, 'The "
               "Fourier reconstruction of a head section', IEEE Trans. Nuclear Science 21(3):21-43, "
               "1974, doi:10.1109/TNS.1974.6499235.",
        license="synthetic (generated)"),
}
ALIASES = {"ihc": "immunohistochemistry", "phantom": "shepp_logan_phantom"}
# scikit-image sets fetched with pooch over the network (fail offline)
NEEDS_DOWNLOAD = ("brain", "cells3d", "eagle", "human_mitosis", "kidney", "lily",
                  "nickel_solidification", "palisades_of_vogt", "protein_transport", "skin", "vortex")


def real_image(name: str) -> dict:
    """One of the real images in the scikit-image wheel, with its source citation.

    name: "cell", "retina", "microaneurysms", "immunohistochemistry" (alias "ihc") or
    "shepp_logan_phantom" (alias "phantom"). Returns a dict with "name", "image" (the array as
    ``skimage.data`` gives it), "description", "source" and "license". Loads offline in < 0.1 s.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = ALIASES.get(name, name)
    if key in NEEDS_DOWNLOAD:
        raise ValueError(f"name {name!r}: skimage.data.{key} is not in the scikit-image wheel and needs a "
                         f"download (pooch), which the course does not do; images available offline: "
                         f"{sorted(REAL_IMAGES)}")
    check_choice("name", key, REAL_IMAGES)
    import skimage.data
    info = REAL_IMAGES[key]
    image = getattr(skimage.data, info["loader"])()
    return {"name": key, "image": image, "description": info["description"],
            "source": info["source"], "license": info["license"]}
