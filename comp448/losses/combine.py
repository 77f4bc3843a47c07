"""Combining losses: deep supervision (slides 19, 25) and multi-task learning (slides 18-24).

Deep supervision (3D U-Net with multi-level deep supervision, slide 25; DCAN's auxiliary
classifiers, slide 19): every supervised level k of the network produces an output, each is
compared with the target, and the losses are added::

    L = sum_k w_k * loss(output_k, target resized to output_k)

Zeng et al., "3D U-net with multi-level deep supervision: Fully automatic segmentation of
proximal femur in 3D MR images", MLMI 2017; Chen et al., "DCAN: Deep contour-aware
networks for accurate gland segmentation", MedIA 2017.

Multi-task networks (slide 18): "Joint loss is defined usually as a linear combination of
losses defined on all tasks", e.g. SegNetMRI (slide 23) L = L_MRN + lambda L_MSN and
Nguyen et al. (slide 24) L = gamma_act L_act + gamma_seg L_seg + gamma_rec L_rec.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from comp448._checks import check_number


def _resize_target(target: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize of ``target`` to the spatial size of ``output`` (B, C, *spatial).

    ``target`` is either ``(B, C', *spatial)`` (same rank as ``output``) or integer labels
    ``(B, *spatial)`` (one rank less). Uses ``nearest-exact`` (pixel-centre aligned, as MONAI's
    DeepSupervisionLoss; plain ``nearest`` shifts the image by half a pixel when downsampling).
    """
    size = tuple(output.shape[2:])
    if target.ndim == output.ndim:
        spatial, squeeze = tuple(target.shape[2:]), False
    elif target.ndim == output.ndim - 1:
        spatial, squeeze = tuple(target.shape[1:]), True
    else:
        raise ValueError(f"target must have shape (B, C, *spatial) or (B, *spatial) matching the outputs' "
                         f"(B, C, *spatial) = {tuple(output.shape)}, got {tuple(target.shape)}")
    if target.shape[0] != output.shape[0]:
        raise ValueError(f"target batch size {target.shape[0]} != output batch size {output.shape[0]}")
    if spatial == size:
        return target
    t = target.unsqueeze(1) if squeeze else target
    dtype = t.dtype
    if not t.is_floating_point():
        t = t.to(torch.float64 if dtype in (torch.int64, torch.int32) else torch.float32)
    t = F.interpolate(t, size=size, mode="nearest-exact")
    t = t.to(dtype)
    return t.squeeze(1) if squeeze else t


def deep_supervision_loss(outputs, target: torch.Tensor, loss_fn: Callable[..., torch.Tensor],
                          weights: Sequence[float] | None = None, *, task: str | None = None) -> torch.Tensor:
    """Weighted sum of one loss over a network's side outputs (deep supervision, slide 25).

    ::

        L = sum_k weights[k] * loss_fn(outputs[k], target_k)

    where ``target_k`` is ``target`` resized with nearest-neighbour sampling
    (``nearest-exact``) to the spatial size of ``outputs[k]`` when the sizes differ (so a
    binary mask stays binary and labels stay labels).

    ``outputs`` may be

    - a list/tuple of tensors ``(B, C, *spatial)``, the main output first, in any resolution;
    - the ``dict`` a comp448 multi-output network returns (see ``comp448.nets``): pass
      ``task`` and the list ``comp448.nets.side_outputs(outputs, task)`` =
      ``[outputs[task], outputs[task + "/aux1"], outputs[task + "/aux2"], ...]`` is used,
      ordered main output first and then the shallowest supervised level first. ``task`` may
      be omitted when the dict holds exactly one task (one key without "/").

    Weights default to 1 for every output (the 3D U-Net's plain sum). MONAI's
    ``DeepSupervisionLoss`` defaults instead to ``weight_mode="exp"`` (max(0.5^k, 0.0625),
    highest resolution first) and nnU-Net uses 1/2^k normalised to sum 1 with the deepest
    head dropped; pass such weights explicitly if wanted. Like MONAI, a bare tensor is
    accepted and treated as a one-element list.

    Args:
        outputs: tensor, list/tuple of tensors, or a network's output dict.
        target: ``(B, C, *spatial)`` (same rank as the outputs) or integer labels ``(B, *spatial)``.
        loss_fn: ``loss_fn(output, target) -> scalar tensor``, e.g. ``comp448.losses.dice_loss``
            or ``functools.partial(focal_loss, gamma=2)``.
        weights: one non-negative number per output, or None for all ones.
        task: which task of a dict ``outputs`` to supervise.

    Returns:
        A scalar tensor.
    """
    if isinstance(outputs, Mapping):
        from comp448.nets import side_outputs
        if task is None:
            tasks = [k for k in outputs if "/" not in k]
            if len(tasks) != 1:
                raise ValueError(f"task must be given when outputs is a dict with several tasks {tasks}")
            task = tasks[0]
        elif not isinstance(task, str):
            raise TypeError(f"task must be a str, got {type(task).__name__}")
        outputs = side_outputs(dict(outputs), task)
    elif task is not None:
        raise ValueError("task is only used when outputs is a dict; got a list/tensor with task="
                         f"{task!r}")
    if isinstance(outputs, torch.Tensor):
        outputs = [outputs]
    if not isinstance(outputs, (list, tuple)):
        raise TypeError(f"outputs must be a tensor, a list/tuple of tensors or a dict, got {type(outputs).__name__}")
    if len(outputs) == 0:
        raise ValueError("outputs must hold at least one tensor, got an empty sequence")
    for k, out in enumerate(outputs):
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"outputs[{k}] must be a torch.Tensor, got {type(out).__name__}")
        if out.ndim < 3:
            raise ValueError(f"outputs[{k}] must have shape (B, C, *spatial), got {tuple(out.shape)}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    if weights is None:
        weights = [1.0] * len(outputs)
    if isinstance(weights, torch.Tensor):
        weights = weights.tolist()
    if not isinstance(weights, Sequence) or isinstance(weights, str):
        raise TypeError(f"weights must be a sequence of numbers, got {type(weights).__name__}")
    if len(weights) != len(outputs):
        raise ValueError(f"weights must have one entry per output ({len(outputs)}), got {len(weights)}")
    for k, w in enumerate(weights):
        check_number(f"weights[{k}]", w, lo=0.0)
        if math.isinf(w):
            raise ValueError(f"weights[{k}] must be finite, got {w!r}")

    total = None
    for k, (out, w) in enumerate(zip(outputs, weights)):
        loss = loss_fn(out, _resize_target(target, out))
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor, got {shape} for outputs[{k}] "
                             f"(use a reducing loss, e.g. reduction='mean')")
        total = w * loss if total is None else total + w * loss
    return total


def multitask_loss(losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Linear combination of named task losses (multi-task networks, slide 18).

    ::

        L = sum_t weights[t] * losses[t]

    e.g. ``multitask_loss({"seg": l_seg, "rec": l_rec}, {"seg": 1.0, "rec": 0.1})`` is
    SegNetMRI's L_MRN + lambda L_MSN pattern (slide 23). The key sets must match exactly: a
    task with a loss but no weight, or a weight with no loss, raises ``ValueError`` naming it
    (silently dropping a task is a common multi-task bug). A weight of 0 switches a task off.

    Args:
        losses: task name -> scalar loss tensor (e.g. keys of a comp448 network's output dict).
        weights: task name -> non-negative finite number.

    Returns:
        A scalar tensor.
    """
    if not isinstance(losses, Mapping):
        raise TypeError(f"losses must be a dict of task name -> scalar tensor, got {type(losses).__name__}")
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a dict of task name -> number, got {type(weights).__name__}")
    if len(losses) == 0:
        raise ValueError("losses must name at least one task, got an empty dict")
    missing = [k for k in losses if k not in weights]
    if missing:
        raise ValueError(f"weights has no entry for the task(s) {missing} (losses has {list(losses)})")
    unknown = [k for k in weights if k not in losses]
    if unknown:
        raise ValueError(f"weights names unknown task(s) {unknown}, not among the losses {list(losses)}")
    total = None
    for name, loss in losses.items():
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"losses[{name!r}] must be a torch.Tensor, got {type(loss).__name__}")
        if loss.ndim != 0:
            raise ValueError(f"losses[{name!r}] must be a scalar tensor, got shape {tuple(loss.shape)}")
        w = weights[name]
        if not isinstance(w, numbers.Real) or isinstance(w, bool):
            raise TypeError(f"weights[{name!r}] must be a real number, got {type(w).__name__}")
        check_number(f"weights[{name!r}]", w, lo=0.0)
        if math.isinf(w):
            raise ValueError(f"weights[{name!r}] must be finite, got {w!r}")
        total = w * loss if total is None else total + w * loss
    return total
