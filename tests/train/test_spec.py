"""Loss specs against plain re-computations written out in the tests."""
import pytest
import torch
import torch.nn.functional as F

from comp448.train.spec import (AttentionBoost, DeepSupervision, MultiTask, Task, as_spec, fit_to,
                                main_output_key, select_output)

from ._standins import bce

g = torch.Generator().manual_seed(0)
B, H, W = 2, 8, 8


def rnd(*shape):
    return torch.randn(*shape, generator=g)


def mask(*shape):
    return (torch.rand(*shape, generator=g) > 0.5).float()


def test_task_single_tensor_with_weight():
    logits, y, w = rnd(B, 1, H, W), mask(B, 1, H, W), torch.rand(B, 1, H, W, generator=g)
    total, parts = Task(bce, weight="weight_map")(logits, {"mask": y, "weight_map": w})
    assert torch.allclose(total, F.binary_cross_entropy_with_logits(logits, y, weight=w))
    assert set(parts) == {"loss"}
    total, _ = Task(bce)(logits, {"mask": y})
    assert torch.allclose(total, F.binary_cross_entropy_with_logits(logits, y))


def test_task_crops_target_to_valid_output():
    logits = rnd(B, 1, 4, 4)
    y, w = mask(B, 1, 8, 8), torch.rand(B, 1, 8, 8, generator=g)
    total, _ = Task(bce, weight="w")(logits, {"mask": y, "w": w})
    expect = F.binary_cross_entropy_with_logits(logits, y[..., 2:6, 2:6], weight=w[..., 2:6, 2:6])
    assert torch.allclose(total, expect)
    with pytest.raises(ValueError, match="smaller than the output"):
        Task(bce)(rnd(B, 1, 8, 8), {"mask": mask(B, 1, 4, 4)})


def test_fit_to_multiclass_mask_becomes_class_indices():
    y = mask(B, 1, H, W)
    t = fit_to(y, rnd(B, 2, H, W), "target", "multiclass")
    assert t.dtype == torch.int64 and t.shape == (B, H, W) and torch.equal(t, y[:, 0].long())
    labels = torch.randint(0, 3, (B, 8, 8), generator=g)
    assert torch.equal(fit_to(labels, rnd(B, 3, 4, 4), "t", "multiclass"), labels[:, 2:6, 2:6])
    amps = rnd(B, 5)                                              # not a map: passes through
    assert fit_to(amps, rnd(B, 1, 5), "t", "regression") is amps


def test_select_output_and_main_key():
    t = rnd(B, 1, H, W)
    assert select_output(t, None) is t
    with pytest.raises(ValueError, match="single tensor"):
        select_output(t, "seg")
    out = {"stage1": t, "stage2": t + 1, "stage10": t + 2}
    assert main_output_key(out) == "stage10"                      # numeric, not lexicographic
    assert main_output_key({"object": t, "object/aux1": t, "contour": t}) == "object"
    assert main_output_key({"recon": t, "seg": t}) == "seg"
    with pytest.raises(ValueError, match="not among"):
        select_output(out, "seg")
    with pytest.raises(TypeError, match="outputs"):
        select_output([t], None)


def test_missing_batch_key_is_named():
    with pytest.raises(ValueError, match="weight 'weight_map' is not in the batch"):
        Task(bce, weight="weight_map")(rnd(B, 1, H, W), {"mask": mask(B, 1, H, W)})


def test_deep_supervision_equals_weighted_sum():
    y = mask(B, 1, H, W)
    out = {"seg": rnd(B, 1, H, W), "seg/aux1": rnd(B, 1, H, W), "seg/aux2": rnd(B, 1, H, W)}
    spec = DeepSupervision(bce, "seg", weights=[1.0, 0.5, 0.25])
    total, parts = spec(out, {"mask": y})
    expect = sum(w * bce(out[k], y) for w, k in zip([1.0, 0.5, 0.25], ["seg", "seg/aux1", "seg/aux2"]))
    assert torch.allclose(total, expect)
    assert spec.prediction(out) is out["seg"]
    sched = DeepSupervision(bce, "seg", weights=lambda e, n: [1.0] + [1.0 / (1 + e)] * (n - 1))
    sched.set_epoch(3)
    expect = bce(out["seg"], y) + 0.25 * (bce(out["seg/aux1"], y) + bce(out["seg/aux2"], y))
    assert torch.allclose(sched(out, {"mask": y})[0], expect)


def test_multitask_linear_combination_and_main():
    y, c = mask(B, 1, H, W), mask(B, 1, H, W)
    out = {"seg": rnd(B, 1, H, W), "contour": rnd(B, 1, H, W), "contour/aux1": rnd(B, 1, H, W)}
    spec = MultiTask({"seg": Task(bce), "contour": DeepSupervision(bce, "contour", "contour")},
                     weights={"seg": 1.0, "contour": 0.3})
    total, parts = spec(out, {"mask": y, "contour": c})
    expect = bce(out["seg"], y) + 0.3 * (bce(out["contour"], c) + bce(out["contour/aux1"], c))
    assert torch.allclose(total, expect)
    assert set(parts) == {"seg", "contour"} and spec.main == "seg" and spec.prediction(out) is out["seg"]
    plain = MultiTask({"inner": lambda p, t: ((p - t) ** 2).mean()})   # callable -> Task(output=name, target=name)
    inner = rnd(B, 1, H, W)
    assert torch.allclose(plain({"inner": inner}, {"inner": inner + 1})[0], torch.tensor(1.0))


def test_multitask_errors():
    with pytest.raises(ValueError, match="specs"):
        MultiTask({})
    with pytest.raises(ValueError, match="not in specs"):
        MultiTask({"seg": Task(bce)}, weights={"seg": 1.0, "edge": 1.0})
    with pytest.raises(ValueError, match="main"):
        MultiTask({"seg": Task(bce)}, main="edge")
    with pytest.raises(TypeError, match="loss_fn"):
        MultiTask({"seg": 3})


def test_attentionboost_matches_slide_17_by_hand():
    """c_1 = 1; beta = 1 -/+ |p - 0.5| for a correct/wrong pixel; c_{n+1} = beta_n * c_n."""
    y = mask(B, 1, H, W)
    out = {f"stage{k}": rnd(B, 1, H, W) for k in (1, 2, 3)}
    total, parts = AttentionBoost(bce)(out, {"mask": y})
    c, expect = torch.ones_like(y), 0.0
    for k in (1, 2, 3):
        z = out[f"stage{k}"]
        expect = expect + F.binary_cross_entropy_with_logits(z, y, weight=c)
        p = torch.sigmoid(z)
        correct = (p >= 0.5) == (y >= 0.5)
        beta = torch.where(correct, 1 - (p - 0.5).abs(), 1 + (p - 0.5).abs())
        c = beta * c
    assert torch.allclose(total, expect, atol=1e-6)
    assert list(parts) == ["stage1", "stage2", "stage3"]


def test_attentionboost_weights_are_constants_and_initial_map():
    y = mask(B, 1, H, W)
    z1, z2 = rnd(B, 1, H, W).requires_grad_(), rnd(B, 1, H, W).requires_grad_()
    w0 = 1 + torch.rand(B, 1, H, W, generator=g)
    total, _ = AttentionBoost(bce, initial_weight="w0", stage_weights=[0.0, 1.0])(
        {"stage1": z1, "stage2": z2}, {"mask": y, "w0": w0})
    total.backward()
    assert z1.grad is None or torch.count_nonzero(z1.grad) == 0    # stage 1 only reaches the loss via c_2: detached
    p = torch.sigmoid(z1.detach())
    beta = torch.where((p >= 0.5) == (y >= 0.5), 1 - (p - 0.5).abs(), 1 + (p - 0.5).abs())
    assert torch.allclose(total, F.binary_cross_entropy_with_logits(z2.detach(), y, weight=beta * w0), atol=1e-6)


def test_attentionboost_prediction_and_errors():
    t = rnd(B, 1, H, W)
    out = {"stage1": t, "stage2": -t}
    assert AttentionBoost(bce).prediction(out) is out["stage2"]
    mean = AttentionBoost(bce, predict="mean").prediction(out)
    assert torch.allclose(torch.sigmoid(mean), torch.full_like(t, 0.5), atol=1e-5)   # p and 1-p average to 1/2
    with pytest.raises(ValueError, match="predict"):
        AttentionBoost(bce, predict="max")
    with pytest.raises(ValueError, match="stage"):
        AttentionBoost(bce)({"seg": t}, {"mask": mask(B, 1, H, W)})
    with pytest.raises(TypeError, match="stage"):
        AttentionBoost(bce)(t, {"mask": mask(B, 1, H, W)})
    with pytest.raises(ValueError, match="stage_weights"):
        AttentionBoost(bce, stage_weights=[1.0])(out, {"mask": mask(B, 1, H, W)})


def test_as_spec_and_kind_errors():
    assert isinstance(as_spec(bce), Task)
    assert isinstance(as_spec({"seg": bce}), MultiTask)
    spec = Task(bce)
    assert as_spec(spec) is spec
    with pytest.raises(TypeError, match="loss"):
        as_spec(3)
    with pytest.raises(ValueError, match="kind"):
        Task(bce, kind="ordinal")
    with pytest.raises(TypeError, match="loss_fn"):
        Task("bce")
