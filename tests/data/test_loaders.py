import numpy as np
import pytest
from skimage import io

from comp448.data import SampleDataset, load_glas, load_nuclei_folder


def write_glas(folder, names, grade=True):
    rng = np.random.default_rng(0)
    truth = {}
    for n in names:
        img = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
        lab = np.zeros((20, 24), np.uint8)
        lab[2:8, 3:9] = 1
        lab[10:18, 12:22] = 2
        io.imsave(folder / f"{n}.bmp", img, check_contrast=False)
        io.imsave(folder / f"{n}_anno.bmp", lab, check_contrast=False)
        truth[n] = (img, lab)
    if grade:
        (folder / "Grade.csv").write_text(
            "name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)\n"
            + "".join(f"{n},{i},{'benign' if i % 2 else 'malignant'},adenomatous\n" for i, n in enumerate(names)))
    return truth


def test_load_glas(tmp_path):
    names = ["train_1", "train_2", "train_10", "testA_1", "testB_3"]
    truth = write_glas(tmp_path, names)
    (tmp_path / "notes.txt").write_text("ignore me")
    items = load_glas(tmp_path)
    assert [d["name"] for d in items] == ["train_1", "train_2", "train_10", "testA_1", "testB_3"]
    d = items[2]
    img, lab = truth["train_10"]
    assert d["split"] == "train" and d["grade"] == "malignant"
    assert d["image"].dtype == np.float32 and d["image"].shape == (3, 20, 24)
    np.testing.assert_allclose(d["image"], img.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert d["labels"].dtype == np.int32 and np.array_equal(d["labels"], lab)
    assert [x["name"] for x in load_glas(tmp_path, split="testA")] == ["testA_1"]
    ds = SampleDataset([(x["image"], x["labels"]) for x in items], targets=("contour",))
    assert ds[0]["image"].shape == (3, 20, 24) and ds[0]["contour"].shape == (1, 20, 24)


def test_load_glas_without_grades(tmp_path):
    write_glas(tmp_path, ["testB_1"], grade=False)
    assert load_glas(tmp_path)[0]["grade"] is None


def test_load_glas_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder"):
        load_glas(tmp_path / "missing")
    with pytest.raises(TypeError, match="folder"):
        load_glas(3)
    with pytest.raises(ValueError, match="no GlaS images"):
        load_glas(tmp_path)
    write_glas(tmp_path, ["train_1"])
    with pytest.raises(ValueError, match="split"):
        load_glas(tmp_path, split="val")
    (tmp_path / "train_1_anno.bmp").unlink()
    with pytest.raises(FileNotFoundError, match="annotation"):
        load_glas(tmp_path)


def test_load_glas_bad_grade_csv(tmp_path):
    write_glas(tmp_path, ["train_1"])
    (tmp_path / "Grade.csv").write_text("id,score\ntrain_1,3\n")
    with pytest.raises(ValueError, match="Grade.csv"):
        load_glas(tmp_path)


def write_dsb(folder, sid, masks, rgba=True, with_masks=True):
    (folder / sid / "images").mkdir(parents=True)
    img = np.zeros((16, 18, 4 if rgba else 3), np.uint8)
    img[..., :3] = 40
    if rgba:
        img[..., 3] = 255
    io.imsave(folder / sid / "images" / f"{sid}.png", img, check_contrast=False)
    if with_masks:
        (folder / sid / "masks").mkdir()
        for name, m in masks.items():
            io.imsave(folder / sid / "masks" / f"{name}.png", (m * 255).astype(np.uint8), check_contrast=False)
    return img


def test_load_nuclei_folder(tmp_path):
    a = np.zeros((16, 18), np.uint8); a[1:5, 1:5] = 1
    b = np.zeros((16, 18), np.uint8); b[4:9, 4:9] = 1           # overlaps a at (4, 4)
    write_dsb(tmp_path, "abc", {"m1": a, "m2": b})
    write_dsb(tmp_path, "zzz", {}, rgba=False, with_masks=False)
    items = load_nuclei_folder(tmp_path)
    assert [d["name"] for d in items] == ["abc", "zzz"]
    d = items[0]
    assert d["image"].shape == (3, 16, 18) and d["image"].dtype == np.float32
    np.testing.assert_allclose(d["image"], 40 / 255, atol=1e-6)
    lab = d["labels"]
    assert lab.dtype == np.int32 and lab[4, 4] == 1 and lab[6, 6] == 2 and lab[0, 0] == 0
    assert (lab == 1).sum() == 16 and (lab == 2).sum() == 24
    assert items[1]["labels"] is None


def test_load_nuclei_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no"):
        load_nuclei_folder(tmp_path)
    write_dsb(tmp_path, "s1", {"m": np.ones((5, 5), np.uint8)})
    with pytest.raises(ValueError, match="shape"):
        load_nuclei_folder(tmp_path)
