import socket

import numpy as np
import pytest

from comp448.data import REAL_IMAGES, real_image

SHAPES = {"cell": ((660, 550), np.uint8), "retina": ((1411, 1411, 3), np.uint8),
          "microaneurysms": ((102, 102), np.uint8), "immunohistochemistry": ((512, 512, 3), np.uint8),
          "shepp_logan_phantom": ((400, 400), np.float64)}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("real_image tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_loads_offline_with_source(name, no_network):
    d = real_image(name)
    shape, dtype = SHAPES[name]
    assert d["name"] == name and d["image"].shape == shape and d["image"].dtype == dtype
    assert "skimage.data." + name in d["source"] and d["license"] and d["description"]


def test_sources_cite_a_reference():
    for name in REAL_IMAGES:
        src = real_image(name)["source"]
        assert ("doi:" in src) or ("CMMI" in src), name


def test_aliases():
    assert real_image("ihc")["name"] == "immunohistochemistry"
    assert real_image("phantom")["name"] == "shepp_logan_phantom"


@pytest.mark.parametrize("name", ["cells3d", "human_mitosis", "brain", "kidney"])
def test_download_sets_refused(name, no_network):
    with pytest.raises(ValueError, match="download"):
        real_image(name)


def test_unknown_and_bad_type():
    with pytest.raises(ValueError, match="name"):
        real_image("lena")
    with pytest.raises(TypeError, match="name"):
        real_image(3)
