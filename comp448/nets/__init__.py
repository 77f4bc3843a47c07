"""The sixteen dense prediction networks of the lecture.

Output convention (one for every network)
-----------------------------------------
- A single-output network returns a ``torch.Tensor`` of raw scores (logits),
  shape ``(B, C, *spatial)`` with ``C = num_classes`` (or ``out_channels``). No
  softmax/sigmoid is applied inside a network: losses in ``comp448.losses`` work
  on logits.
- A multi-output network returns a ``dict[str, torch.Tensor]`` (insertion-ordered):
  - tasks by name, e.g. ``"seg"``, ``"inner"``, ``"outer"``, ``"object"``,
    ``"contour"``, ``"recon"``, ``"amplitudes"``, ``"activation"``;
  - side outputs of deep supervision as ``"<task>/aux<k>"`` (k = 1 is the
    shallowest supervised level), already at the input's spatial size;
  - stages of a cascade as ``"stage<k>"`` (k = 1, 2, ...).
  ``side_outputs(outputs, task)`` returns ``[outputs[task], outputs[task + "/aux1"], ...]``,
  the list that ``comp448.losses.deep_supervision_loss`` takes; ``multitask_loss``
  combines per-task losses by name.

Every class takes ``in_channels`` and ``num_classes`` (or ``out_channels``) and a
width knob (``base`` / ``width``) so that a small version trains on a CPU. The default
arguments build the paper's configuration.
"""
from __future__ import annotations

import importlib

# name -> module that defines it (imported on first use, so `import comp448.nets` is cheap)
_WHERE = {
    "VGG16Encoder": "fcn", "FCN32s": "fcn", "FCN16s": "fcn", "FCN8s": "fcn",
    "bilinear_kernel": "fcn", "load_torchvision_vgg16": "fcn", "fc_as_conv": "fcn", "fuse_scores": "fcn",
    "DeconvNet": "deconvnet",
    "UNet": "unet", "MultiTaskUNet": "unet", "unet_output_size": "unet", "center_crop": "unet",
    "crop_and_concat": "unet",
    "DCAN": "dcan",
    "DeepDistance": "deepdistance",
    "FourierNet": "fouriernet",
    "SegNetMRI": "segnetmri", "data_consistency": "segnetmri", "cartesian_mask": "segnetmri",
    "undersample": "segnetmri", "fft2c": "segnetmri", "ifft2c": "segnetmri",
    "ClassNSeg": "classnseg", "activation_loss": "classnseg",
    "UNet3D": "unet3d",
    "VNet": "vnet", "VNET_CONVS": "vnet",
    "VoxResNet": "voxresnet", "VoxRes": "voxresnet",
    "DeepResolve": "deepresolve", "interpolate_slices": "deepresolve", "thick_slices": "deepresolve",
    "AttentionBoostNet": "attentionboost",
}

__all__ = sorted(_WHERE) + ["side_outputs", "count_parameters"]


def __getattr__(name: str):
    if name in _WHERE:
        module = importlib.import_module(f"{__name__}.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def side_outputs(outputs, task: str):
    """``[outputs[task], outputs[task + '/aux1'], outputs[task + '/aux2'], ...]``."""
    if not isinstance(outputs, dict):
        raise TypeError(f"outputs must be the dict a multi-output network returns, got {type(outputs).__name__}")
    if task not in outputs:
        raise ValueError(f"task {task!r} is not among the outputs {list(outputs)}")
    out, k = [outputs[task]], 1
    while f"{task}/aux{k}" in outputs:
        out.append(outputs[f"{task}/aux{k}"])
        k += 1
    return out


def count_parameters(model, trainable_only: bool = True) -> int:
    """Number of (learnable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
