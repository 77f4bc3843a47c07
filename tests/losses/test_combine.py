"""comp448.losses.combine: deep supervision vs MONAI and a slicing oracle; multi-task linear combination."""
import functools

import pytest
import torch
import torch.nn.functional as F

from comp448.losses import bce_loss, deep_supervision_loss, dice_loss, multitask_loss

monai_losses = pytest.importorskip("monai.losses")


def pyramid(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).to(dtype)
    outs = [torch.randn(2, 1, s, s, generator=g, dtype=dtype, requires_grad=True) for s in (16, 8, 4)]
    return outs, target


def test_matches_a_slicing_oracle():
    # nearest-exact picks source index floor((i + 0.5) * scale): 2i+1 for /2, 4i+2 for /4
    outs, target = pyramid()
    targets = [target, target[..., 1::2, 1::2], target[..., 2::4, 2::4]]
    expect = sum(w * dice_loss(o, t) for w, o, t in zip((1.0, 0.5, 0.25), outs, targets))
    torch.testing.assert_close(deep_supervision_loss(outs, target, dice_loss, weights=[1.0, 0.5, 0.25]), expect)
    default = sum(dice_loss(o, t) for o, t in zip(outs, targets))                    # weights 1 each
    torch.testing.assert_close(deep_supervision_loss(outs, target, dice_loss), default)


@pytest.mark.parametrize("mode", ["same", "exp"])
def test_matches_monai_deep_supervision_loss(mode):
    outs, target = pyramid(dtype=torch.float32)
    ref = monai_losses.DeepSupervisionLoss(monai_losses.DiceLoss(sigmoid=True), weight_mode=mode)(outs, target)
    weights = None if mode == "same" else [1.0, 0.5, 0.25]
    ours = deep_supervision_loss(outs, target, dice_loss, weights=weights)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_gradient_reaches_every_output_and_tuple_or_tensor_inputs():
    outs, target = pyramid()
    loss = deep_supervision_loss(tuple(outs), target, functools.partial(bce_loss, reduction="sum"))
    loss.backward()
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for o in outs)
    single = deep_supervision_loss(outs[0], target, dice_loss)                       # bare tensor
    torch.testing.assert_close(single, dice_loss(outs[0], target))


def test_dict_outputs_follow_side_outputs_order():
    outs, target = pyramid()
    net_out = {"seg": outs[0], "seg/aux1": outs[1], "seg/aux2": outs[2], "contour": outs[0] * 2}
    w = [1.0, 0.3, 0.1]
    expect = deep_supervision_loss(outs, target, dice_loss, weights=w)
    torch.testing.assert_close(deep_supervision_loss(net_out, target, dice_loss, weights=w, task="seg"), expect)
    only_seg = {k: v for k, v in net_out.items() if k != "contour"}
    torch.testing.assert_close(deep_supervision_loss(only_seg, target, dice_loss, weights=w), expect)
    with pytest.raises(ValueError, match="task"):
        deep_supervision_loss(net_out, target, dice_loss)
    with pytest.raises(ValueError, match="nuclei"):
        deep_supervision_loss(net_out, target, dice_loss, task="nuclei")


def test_integer_label_targets_are_resized_as_labels():
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (2, 8, 8), generator=g)
    outs = [torch.randn(2, 3, s, s, generator=g, dtype=torch.float64) for s in (8, 4)]
    seen = []

    def ce(out, t):
        seen.append(t)
        return F.cross_entropy(out, t)

    loss = deep_supervision_loss(outs, labels, ce)
    assert seen[0] is labels and seen[1].dtype == torch.long
    assert torch.equal(seen[1], labels[:, 1::2, 1::2])
    torch.testing.assert_close(loss, F.cross_entropy(outs[0], labels) + F.cross_entropy(outs[1], labels[:, 1::2, 1::2]))


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(outputs=[]), ValueError, "outputs"),
    (dict(outputs="seg"), TypeError, "outputs"),
    (dict(outputs=[torch.zeros(2, 1, 4, 4), "x"]), TypeError, r"outputs\[1\]"),
    (dict(outputs=[torch.zeros(2, 16)]), ValueError, r"outputs\[0\]"),
    (dict(weights=[1.0]), ValueError, "weights"),
    (dict(weights=[1.0, -0.5]), ValueError, r"weights\[1\]"),
    (dict(weights=[1.0, float("inf")]), ValueError, r"weights\[1\]"),
    (dict(weights="ab"), TypeError, "weights"),
    (dict(loss_fn=functools.partial(bce_loss, reduction="none")), ValueError, "loss_fn"),
    (dict(loss_fn="dice"), TypeError, "loss_fn"),
    (dict(target=torch.zeros(2, 1, 1, 8, 8)), ValueError, "target"),
    (dict(target=torch.zeros(3, 1, 8, 8)), ValueError, "target"),
    (dict(target=[0.0]), TypeError, "target"),
    (dict(task="seg"), ValueError, "task"),
])
def test_deep_supervision_bad_input_names_the_argument(kwargs, exc, word):
    args = dict(outputs=[torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 4, 4)], target=torch.zeros(2, 1, 8, 8),
                loss_fn=dice_loss)
    args.update(kwargs)
    with pytest.raises(exc, match=word):
        deep_supervision_loss(**args)


# ---- multitask_loss --------------------------------------------------------------------------

def test_multitask_is_the_linear_combination_with_its_gradient():
    a = torch.tensor(2.0, requires_grad=True)
    b = torch.tensor(3.0, requires_grad=True)
    total = multitask_loss({"seg": a, "rec": b}, {"seg": 1.0, "rec": 0.1})
    assert total.item() == pytest.approx(2.3)
    total.backward()
    assert a.grad.item() == 1.0 and b.grad.item() == pytest.approx(0.1)
    assert multitask_loss({"seg": a}, {"seg": 0}).item() == 0.0       # weight 0 switches a task off


@pytest.mark.parametrize("losses, weights, exc, word", [
    ({"seg": torch.tensor(1.0), "contour": torch.tensor(1.0)}, {"seg": 1.0}, ValueError, "contour"),
    ({"seg": torch.tensor(1.0)}, {"seg": 1.0, "inner": 0.5}, ValueError, "inner"),
    ({}, {}, ValueError, "losses"),
    ({"seg": torch.ones(3)}, {"seg": 1.0}, ValueError, "seg"),
    ({"seg": 1.0}, {"seg": 1.0}, TypeError, "seg"),
    ({"seg": torch.tensor(1.0)}, {"seg": -1.0}, ValueError, "seg"),
    ({"seg": torch.tensor(1.0)}, {"seg": "1"}, TypeError, "seg"),
    ({"seg": torch.tensor(1.0)}, {"seg": float("nan")}, ValueError, "seg"),
    ({"seg": torch.tensor(1.0)}, {"seg": float("inf")}, ValueError, "seg"),
    ([torch.tensor(1.0)], {"seg": 1.0}, TypeError, "losses"),
    ({"seg": torch.tensor(1.0)}, [1.0], TypeError, "weights"),
])
def test_multitask_bad_input_names_the_argument(losses, weights, exc, word):
    with pytest.raises(exc, match=word):
        multitask_loss(losses, weights)
