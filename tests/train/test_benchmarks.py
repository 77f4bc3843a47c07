"""The training benchmark scripts run end to end at toy size (their figures are in benchmarks/RESULTS.md)."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_bench_train_toy(tmp_path):
    bench = _load("bench_train")
    res = bench.main(["--size", "16", "--batch", "2", "--steps", "1", "--warmup", "0", "--base", "2",
                      "--no-compile", "--device", "cpu", "--json", str(tmp_path / "b.json"),
                      "--plot", str(tmp_path / "b.png")])
    assert res["plain_img_s"] > 0 and res["fast_img_s"] > 0 and res["gflop_per_step"] > 0
    assert res["fast_path"] == {"amp": "bf16", "channels_last": True, "compiled": False}
    # FlopCounterMode's count, checked against the conv arithmetic of the same net written out:
    # forward FLOPs of the 3x3/2x2/1x1 convs (2 per multiply-add), x3 for forward + backward
    b, s, w = 2, 16, [2, 4, 8, 16, 32]
    conv = lambda cin, cout, k, hw: 2 * cin * cout * k * k * hw * hw * b   # noqa: E731
    fwd = sum(conv(ci, co, 3, s >> l) + conv(co, co, 3, s >> l) for l, (ci, co) in enumerate(zip([1] + w[:-1], w)))
    fwd += sum(conv(w[l + 1], w[l], 2, s >> (l + 1)) + conv(2 * w[l], w[l], 3, s >> l) + conv(w[l], w[l], 3, s >> l)
               for l in range(4))
    fwd += conv(w[0], 2, 1, s)
    # backward = grad wrt input + grad wrt weight (2x forward), except the first conv has no input grad
    expected = 3 * fwd - conv(1, w[0], 3, s)
    assert res["gflop_per_step"] * 1e9 == pytest.approx(expected, rel=1e-6)
    assert (tmp_path / "b.json").is_file() and (tmp_path / "b.png").is_file()


@pytest.mark.slow
def test_experiment_touching_toy(tmp_path):
    exp = _load("experiment_touching")
    runs = exp.main(["--size", "32", "--n-train", "4", "--n-val", "2", "--n-objects", "4", "--epochs", "1",
                     "--json", str(tmp_path / "t.json")])
    assert [r["run"] for r in runs] == ["plain", "weight map"]
    for r in runs:
        assert 0.0 <= r["object_f1"] <= 1.0 and 0.0 <= r["dice"] <= 1.0 and r["objects_true"] > 0
