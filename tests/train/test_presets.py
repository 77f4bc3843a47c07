"""Every preset builds and runs one tiny step on the CPU; run-size scaling; the CLI."""
import json
import math

import pytest
import torch

from comp448 import nets
from comp448.train import presets
from comp448.train.__main__ import main
from comp448.train.engine import Trainer

NAMES = presets.list_presets()
TINY_RUN = dict(n_train=2, n_val=2, epochs=1, batch_size=2, max_steps_per_epoch=1, device="cpu", progress=False,
                plot=False, num_workers=0, compile=False)


def smoke(name, **extra):
    p = presets.get_preset(name)
    b = presets.build(name, **{**p.tiny, **TINY_RUN, **extra})
    tr = Trainer(b.model, b.train_set, b.val_set, b.loss, b.config)
    return tr, tr.fit()


def test_expected_presets_exist():
    for name in ("unet-nuclei-cpu", "unet-nuclei-gpu", "dcan-glands-gpu", "deepdistance-nuclei-gpu",
                 "fouriernet-oct-gpu", "unet3d-blobs-gpu", "vnet-blobs-gpu", "voxresnet-blobs-gpu",
                 "segnetmri-gpu", "deepresolve-gpu", "attentionboost-glands-gpu"):
        assert name in NAMES
    with pytest.raises(ValueError, match="preset must be one of"):
        presets.get_preset("unet-nuclei-tpu")


def test_cpu_preset_one_step():
    tr, hist = smoke("unet-nuclei-cpu")
    assert math.isfinite(hist[0]["train_loss"]) and 0.0 <= hist[0]["val_dice"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_preset_runs_one_tiny_step(name):
    tr, hist = smoke(name)
    rec = hist[0]
    assert math.isfinite(rec["train_loss"]) and math.isfinite(rec["val_loss"])
    assert tr.monitor in rec and math.isfinite(rec[tr.monitor])
    assert tr.global_step == 1


@pytest.mark.slow
def test_paper_unet_preset_has_31m_parameters(monkeypatch):
    """unet-nuclei-gpu at full size is the paper's network (Fig. 1), counted layer by layer here."""
    monkeypatch.setenv("COMP448_RUN_MODE", "full")
    p = presets.get_preset("unet-nuclei-gpu")
    model = p.model(**p.model_kwargs)

    def conv(cin, cout, k=3):
        return cin * cout * k * k + cout
    widths = [64, 128, 256, 512, 1024]
    enc = sum(conv(a, b) + conv(b, b) for a, b in zip([1] + widths[:-1], widths))
    dec = sum(conv(b, a, 2) + conv(2 * a, a) + conv(a, a) for a, b in zip(widths[:-1], widths[1:]))
    expected = enc + dec + conv(64, 2, 1)
    assert expected == 31_030_658
    assert nets.count_parameters(model) == expected
    assert model.pad == 92                                       # 388 + 2*92 = 572 -> 388
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 388, 388)).shape == (1, 2, 388, 388)


def test_mirror_pad_output_covers_the_tile():
    for depth, pad, tile in ((2, 20, 36), (3, 44, 68)):
        net = presets.MirrorPad(nets.UNet(1, 2, base=2, depth=depth, padding="valid"))
        assert net.pad == pad
        with torch.no_grad():
            assert net(torch.zeros(1, 1, tile, tile)).shape[-2:] == (tile, tile)


@pytest.mark.slow
def test_run_modes_change_the_size(monkeypatch):
    monkeypatch.setenv("COMP448_RUN_MODE", "cpu")
    sizes = {}
    for mode in ("cpu", "grader"):
        monkeypatch.setenv("COMP448_RUN_MODE", mode)
        b = presets.build("unet-nuclei-cpu", model_kwargs=dict(base=2, depth=2), size=32)
        sizes[mode] = (len(b.train_set), b.config.epochs)
    p = presets.get_preset("unet-nuclei-cpu")
    assert sizes["cpu"] == (p.n_train, p.config["epochs"])                   # CPU preset: full size on a CPU
    assert sizes["grader"] == (p.grader["n_train"], p.grader["epochs"])      # nbgrader: shortened
    monkeypatch.setenv("COMP448_RUN_MODE", "cpu")
    g = presets.get_preset("deepresolve-gpu")
    b = presets.build("deepresolve-gpu", model_kwargs=dict(width=4, depth=2), n_train=1, n_val=1)
    assert b.size == g.short["size"] and b.config.epochs == g.short["epochs"]
    assert presets.build("deepresolve-gpu", model_kwargs=dict(width=4, depth=2), n_train=1, n_val=1,
                         size=(8, 16, 16), full=True).config.epochs == g.config["epochs"]


def test_cli_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in NAMES)


def test_cli_runs_a_preset_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["unet-nuclei-cpu", "--out", str(out), "--epochs", "2", "--batch-size", "2", "--n-train", "4",
               "--n-val", "2", "--size", "32", "--model", '{"base": 4, "depth": 2}', "--device", "cpu",
               "--amp", "bf16", "--lr", "0.01", "--no-progress"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["val_dice"] <= 1.0 and m["preset"] == "unet-nuclei-cpu" and m["amp"] == "bf16"
    assert m["config"]["lr"] == 0.01 and m["config"]["batch_size"] == 2 and len(m["history"]) == 2
    for f in ("last.pt", "best.pt", "curves.png", "predictions.png"):
        assert (out / f).is_file()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["val_dice"] == m["val_dice"]
    # resume: one more epoch on top of the two
    rc = main(["unet-nuclei-cpu", "--out", str(out), "--epochs", "3", "--batch-size", "2", "--n-train", "4",
               "--n-val", "2", "--size", "32", "--model", '{"base": 4, "depth": 2}', "--device", "cpu",
               "--amp", "bf16", "--lr", "0.01", "--no-progress", "--resume", str(out / "last.pt")])
    assert rc == 0 and len(json.loads((out / "metrics.json").read_text())["history"]) == 3


@pytest.mark.parametrize("argv, msg", [
    (["nope", "--out", "x"], "unknown preset"),
    (["unet-nuclei-cpu"], "--out DIR is required"),
    ([], "a preset name is required"),
    (["unet-nuclei-cpu", "--out", "x", "--compile", "maybe"], "on/off/auto"),
    (["unet-nuclei-cpu", "--out", "x", "--amp", "fp8"], "invalid choice"),
])
def test_cli_errors(argv, msg, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert msg in capsys.readouterr().err


def test_side_weight_schedule_and_loss_helpers():
    w = presets._side_weights(10)
    assert w(0, 4) == [1.0, 1.0, 1.0, 1.0] and w(5, 3) == [1.0, 0.5, 0.5] and w(20, 2) == [1.0, 0.0]
    logits = torch.randn(2, 2, 4, 4)
    target = torch.randint(0, 2, (2, 4, 4))
    weight = torch.rand(2, 1, 4, 4)
    # weighted CE written out: -log softmax at the true class, times c_p, averaged over pixels
    logp = torch.log_softmax(logits, 1).gather(1, target[:, None])
    assert torch.allclose(presets.cross_entropy(logits, target, weight), (-logp * weight).mean(), atol=1e-6)
    # V-Net Dice on the softmax foreground (squares in the denominator), written out
    p1 = torch.softmax(logits, 1)[:, 1]
    g = target.float()
    d = 1 - (2 * (p1 * g).sum((1, 2)) + 1e-5) / ((p1 ** 2).sum((1, 2)) + (g ** 2).sum((1, 2)) + 1e-5)
    assert torch.allclose(presets.softmax_dice(logits, target), d.mean(), atol=1e-5)
