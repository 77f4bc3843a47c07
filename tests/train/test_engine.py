"""Engine tests with stand-ins (tests/train/_standins.py): learning, resume, clipping, precision, errors."""
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn as nn

from comp448.train import (Task, Trainer, TrainConfig, is_short_run, pick_device, resolve_amp, run_mode,
                           scale_for_device, seed_everything)

from ._standins import Squares, bce, small_net

DROPNET = lambda: small_net(dropout=0.2)  # noqa: E731
FAST = dict(progress=False, plot=False, device="cpu", compile=False)


def make(model=small_net, n=32, val=16, loss=None, augment=False, **cfg):
    """A seeded Trainer; ``model`` is a factory called after seeding."""
    seed_everything(0)
    model = model()
    conf = TrainConfig(**{**dict(epochs=3, batch_size=8, lr=2e-2), **FAST, **cfg})
    return Trainer(model, Squares(n, augment=augment), Squares(val, seed=1) if val else None,
                   loss=loss or Task(bce), config=conf)


# ------------------------------------------------------------------ run size, seeding, device, precision

def test_run_mode_and_scaling(monkeypatch):
    monkeypatch.delenv("COMP448_RUN_MODE", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    expected = "full" if torch.cuda.is_available() else "cpu"
    assert run_mode() == expected
    assert is_short_run() == (expected != "full")
    assert scale_for_device(100, 3, grader=1) == (100 if expected == "full" else 3)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert run_mode() == "grader" and is_short_run()
    assert scale_for_device(100, 3, grader=1) == 1
    assert scale_for_device(100, 3) == 3                       # grader falls back to short
    monkeypatch.setenv("COMP448_RUN_MODE", "full")             # explicit override wins
    assert run_mode() == "full" and not is_short_run() and scale_for_device(100, 3, 1) == 100
    monkeypatch.setenv("COMP448_RUN_MODE", "fast")
    with pytest.raises(ValueError, match="COMP448_RUN_MODE"):
        run_mode()


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(()))
    seed_everything(123)
    a = draw()
    seed_everything(123)
    assert draw() == a
    seed_everything(124)
    assert draw() != a
    with pytest.raises(TypeError, match="seed"):
        seed_everything(1.5)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(-1)


def test_seed_everything_deterministic_flag():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
    seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_pick_device_and_errors():
    want = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device("auto").type == want
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device"):
        pick_device("tpu0")
    with pytest.raises(TypeError, match="device"):
        pick_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")


def test_resolve_amp():
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == "none"
    assert resolve_amp("bf16", cpu) == "bf16"
    assert resolve_amp("none", cpu) == "none"
    with pytest.raises(ValueError, match="amp='fp16' needs a CUDA"):
        resolve_amp("fp16", cpu)
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("fp8", cpu)


@pytest.mark.parametrize("bad, err", [
    (dict(epochs=0), ValueError), (dict(lr=-1.0), ValueError), (dict(lr=0.0), ValueError),
    (dict(batch_size=2.5), TypeError), (dict(optimizer="rmsprop"), ValueError),
    (dict(scheduler="step"), ValueError), (dict(amp="fp8"), ValueError), (dict(grad_clip=0.0), ValueError),
    (dict(compile="yes"), ValueError), (dict(early_stopping=0), ValueError), (dict(num_workers=-1), ValueError),
])
def test_config_rejects_bad_values(bad, err):
    name = next(iter(bad))
    with pytest.raises(err, match=name):
        TrainConfig(**bad)


def test_config_replace_rejects_unknown_field():
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig().replace(epoch=3)


# ------------------------------------------------------------------ it learns, and evaluate() is right

def test_learns_squares_and_val_dice_matches_brute_force():
    tr = make(epochs=10)
    hist = tr.fit()
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    res = tr.evaluate()
    assert res["val_dice"] > 0.85
    # oracle: Dice written plainly, per image, from the predicted probabilities
    val = Squares(16, seed=1)
    probs = tr.predict(torch.stack([val[i]["image"] for i in range(16)]))
    dices = []
    for i in range(16):
        p, g = probs[i, 0] > 0.5, val[i]["mask"][0] > 0.5
        tp, fp, fn = (p & g).sum().item(), (p & ~g).sum().item(), (~p & g).sum().item()
        dices.append(2 * tp / (2 * tp + fp + fn))
    assert res["val_dice"] == pytest.approx(np.mean(dices), abs=1e-9)
    assert 0 < res["val_precision"] <= 1 and 0 < res["val_recall"] <= 1
    assert res["val_iou"] == pytest.approx(np.mean([d / (2 - d) for d in dices]), abs=1e-9)  # IoU = D/(2-D)


def test_history_keys_and_lr_schedule():
    tr = make(epochs=4, scheduler="cosine", lr=0.1)
    hist = tr.fit()
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "val_dice", "lr", "images_per_s", "epoch_time_s"):
        assert key in hist[0]
    total = 4 * tr.steps_per_epoch
    for r in hist:   # lr at the start of epoch e: cosine over optimiser steps
        step = (r["epoch"] - 1) * tr.steps_per_epoch
        assert r["lr"] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * step / total)))
    assert tr.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_poly_schedule_and_sgd():
    tr = make(epochs=2, scheduler="poly", optimizer="sgd", lr=0.1, val=0)
    tr.fit()
    assert isinstance(tr.optimizer, torch.optim.SGD)
    half = tr.steps_per_epoch / (2 * tr.steps_per_epoch)
    assert tr.history[1]["lr"] == pytest.approx(0.1 * (1 - half) ** 0.9)
    assert tr.monitor == "train_loss"


# ------------------------------------------------------------------ checkpoint save and resume

def _run(tmp, epochs_first, epochs_total, restore_rng=True):
    # the schedule must span the full run in both halves: build with epochs_total then stop early
    tr = make(model=DROPNET, augment=True, epochs=epochs_total, out_dir=str(tmp),
              restore_best=False, scheduler="cosine")
    tr.cfg = tr.cfg.replace(epochs=epochs_first)
    tr.fit()
    seed_everything(999)                           # scramble every generator, as a new process would
    torch.rand(17)
    np.random.rand(5)
    tr2 = make(model=DROPNET, augment=True, epochs=epochs_total, out_dir=str(tmp),
               restore_best=False, scheduler="cosine")
    tr2.load_checkpoint(tmp / "last.pt", restore_rng=restore_rng)
    assert tr2.epoch == epochs_first
    tr2.fit()
    return tr2


def test_resume_continues_identically(tmp_path):
    ref = make(model=DROPNET, augment=True, epochs=4, restore_best=False, scheduler="cosine")
    ref.fit()
    resumed = _run(tmp_path / "a", 2, 4)
    for (k, a), b in zip(ref.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["train_loss"] for r in ref.history] == [r["train_loss"] for r in resumed.history]
    assert resumed.optimizer.state_dict()["state"][0]["step"] == ref.optimizer.state_dict()["state"][0]["step"]
    assert resumed.global_step == ref.global_step == 4 * ref.steps_per_epoch


def test_resume_without_rng_state_differs(tmp_path):
    """The resume test can fail: dropout and augmentation use the global RNG."""
    ref = make(model=DROPNET, augment=True, epochs=4, restore_best=False, scheduler="cosine")
    ref.fit()
    resumed = _run(tmp_path / "b", 2, 4, restore_rng=False)
    assert not all(torch.equal(a, b) for a, b in zip(ref.model.state_dict().values(),
                                                     resumed.model.state_dict().values()))


def test_outputs_written_and_best_restored(tmp_path):
    tr = make(epochs=3, out_dir=str(tmp_path), plot=True)
    tr.fit()
    for name in ("metrics.json", "last.pt", "best.pt", "curves.png", "predictions.png"):
        assert (tmp_path / name).is_file(), name
    m = json.loads((tmp_path / "metrics.json").read_text())
    best = max(r["val_dice"] for r in tr.history)
    assert m["val_dice"] == pytest.approx(best) and m["best_epoch"] == tr.best_epoch
    assert len(m["history"]) == 3 and m["config"]["epochs"] == 3 and m["device"] == "cpu"
    ck = torch.load(tmp_path / "best.pt", weights_only=False)
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, ck["model"][k])
    assert tr.evaluate()["val_dice"] == pytest.approx(best)


def test_load_checkpoint_missing_file(tmp_path):
    with pytest.raises(ValueError, match="checkpoint path"):
        make().load_checkpoint(tmp_path / "nope.pt")


# ------------------------------------------------------------------ early stopping, clipping, precision

def test_early_stopping_stops_after_patience():
    tr = make(epochs=10, early_stopping=2, min_delta=10.0)   # nothing can improve by 10: stop at 1 + 2
    assert len(tr.fit()) == 3 and tr.best_epoch == 1


def test_gradient_clipping_bounds_the_step():
    seed_everything(0)
    model = small_net()
    before = [p.detach().clone() for p in model.parameters()]
    # oracle: the unclipped gradient norm of the same first batch, by autograd
    ds = Squares(8)
    x = torch.stack([ds[i]["image"] for i in range(8)])
    y = torch.stack([ds[i]["mask"] for i in range(8)])
    probe = small_net()
    probe.load_state_dict(model.state_dict())
    bce(probe(x), y).backward()
    gnorm = torch.sqrt(sum((p.grad ** 2).sum() for p in probe.parameters())).item()
    clip = gnorm / 4
    tr = Trainer(model, ds, loss=Task(bce), config=TrainConfig(epochs=1, batch_size=8, lr=1.0, optimizer="sgd",
                 momentum=0.0, scheduler="none", grad_clip=clip, shuffle=False, **FAST))
    tr.fit()
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum() for p, b in zip(model.parameters(), before))).item()
    assert step == pytest.approx(clip, rel=1e-4)              # lr * clipped norm


def test_bf16_autocast_and_channels_last_on_cpu():
    tr = make(epochs=10, amp="bf16", channels_last=True)
    assert tr.amp == "bf16" and tr.channels_last
    assert tr.model[0].weight.is_contiguous(memory_format=torch.channels_last)
    out = tr.forward(torch.randn(2, 1, 16, 16))
    assert out.dtype == torch.float32                          # losses see float32
    with tr.autocast():
        assert tr.model(torch.randn(2, 1, 16, 16)).dtype == torch.bfloat16
    hist = tr.fit()
    assert math.isfinite(hist[-1]["train_loss"]) and max(r["val_dice"] for r in hist) > 0.8


@pytest.mark.slow
def test_torch_compile_on_cpu_matches_eager():
    eager = make(epochs=1, val=0)
    eager.fit()
    comp = make(epochs=1, val=0, compile=True)
    assert comp.compiled
    comp.fit()
    for a, b in zip(eager.model.state_dict().values(), comp.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ multiclass and regression validation

class _Fixed(nn.Module):
    """Returns its input times a learnable scale initialised to 1: predictions known in advance."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x * self.scale


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, images, targets, key):
        self.images, self.targets, self.key = images, targets, key

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], self.key: self.targets[i]}


def test_regression_metrics_hand_computed():
    x = torch.zeros(2, 1, 4, 4)
    y = x.clone()
    y[:, :, 0, 0] = 1.0                                        # error 1 on one pixel of 16: MSE 1/16
    ds = _Pairs(x, y, "target")
    tr = Trainer(_Fixed(), ds, ds, loss=Task(lambda a, b: ((a - b) ** 2).mean(), target="target", kind="regression"),
                 config=TrainConfig(epochs=1, batch_size=2, **FAST))
    res = tr.evaluate()
    assert res["val_mse"] == pytest.approx(1 / 16)
    assert res["val_psnr"] == pytest.approx(10 * math.log10(1 / (1 / 16)))   # range 1
    assert tr.monitor == "val_loss"


def test_multiclass_dice_hand_computed():
    labels = torch.tensor([[[0, 1, 1, 2], [0, 1, 2, 2]]])                  # (1, 2, 4)
    pred = torch.tensor([[[0, 1, 2, 2], [0, 1, 2, 2]]])
    logits = nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()    # (1, 3, 2, 4)
    ds = _Pairs(logits, labels, "labels")
    tr = Trainer(_Fixed(), ds, ds, loss=Task(lambda a, b: nn.functional.cross_entropy(a, b), target="labels",
                 kind="multiclass"), config=TrainConfig(epochs=1, batch_size=1, **FAST))
    d1 = 2 * 2 / (2 + 3)                                                    # class 1: tp 2, |p| 2, |g| 3
    d2 = 2 * 3 / (4 + 3)                                                    # class 2: tp 3, |p| 4, |g| 3
    assert tr.evaluate()["val_dice"] == pytest.approx((d1 + d2) / 2)


# ------------------------------------------------------------------ error paths

def test_trainer_rejects_bad_arguments():
    ds = Squares(8)
    with pytest.raises(TypeError, match="model"):
        Trainer("net", ds, loss=Task(bce))
    with pytest.raises(TypeError, match="config"):
        Trainer(small_net(), ds, loss=Task(bce), config={"epochs": 1})
    with pytest.raises(TypeError, match="loss"):
        Trainer(small_net(), ds, loss=3, config=TrainConfig(**FAST))
    with pytest.raises(ValueError, match="gives no batch"):
        Trainer(small_net(), Squares(4), loss=Task(bce), config=TrainConfig(batch_size=8, drop_last=True, **FAST))
    with pytest.raises(ValueError, match="no validation data"):
        Trainer(small_net(), ds, loss=Task(bce), config=TrainConfig(**FAST)).evaluate()


def test_batch_must_be_dict_or_pair():
    data = torch.utils.data.TensorDataset(torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8).round(),
                                          torch.zeros(4))
    tr = Trainer(small_net(), data, loss=Task(bce), config=TrainConfig(epochs=1, batch_size=2, **FAST))
    with pytest.raises(TypeError, match="batch must be a dict"):
        tr.fit()


def test_tensor_pairs_are_accepted():
    data = torch.utils.data.TensorDataset(torch.randn(4, 1, 8, 8), torch.rand(4, 1, 8, 8).round())
    tr = Trainer(small_net(), data, data, loss=Task(bce), config=TrainConfig(epochs=1, batch_size=2, **FAST))
    assert "val_dice" in tr.fit()[-1]


def test_nan_loss_raises():
    tr = make(epochs=1, val=0, loss=Task(lambda a, b: (a * float("nan")).mean()))
    with pytest.raises(FloatingPointError, match="training loss"):
        tr.fit()


def test_resumed_run_restores_best_from_disk(tmp_path):
    make(epochs=3, out_dir=str(tmp_path)).fit()
    tr = make(epochs=4, out_dir=str(tmp_path))
    tr.load_checkpoint(tmp_path / "last.pt")
    tr.fit()
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert tr.restored_epoch == tr.best_epoch == best["epoch"]
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, best["model"][k])
    assert tr.summary()["epoch"] == tr.best_epoch
    assert tr.summary()["val_dice"] == max(r["val_dice"] for r in tr.history)
