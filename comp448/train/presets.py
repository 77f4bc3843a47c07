"""Named training runs: a network of ``comp448.nets``, data from ``comp448.data``, a loss spec, a config.

``python -m comp448.train --list`` prints them; ``python -m comp448.train NAME --out DIR`` runs one.
``*-cpu`` presets are sized for a 2-core laptop; ``*-gpu`` presets build the paper-size network
(the class defaults) and train it at full size on a CUDA GPU. Without a GPU (or under nbgrader) a
``*-gpu`` preset is shortened automatically by its ``short`` overrides (smaller images, fewer samples
and epochs; the network keeps its paper size unless the override says otherwise); pass
``full=True`` (``--full``) to refuse shortening.

Two-class networks (``num_classes=2``, the papers' softmax outputs) are trained with per-pixel
cross-entropy against the ``"mask"`` as class indices (``kind="multiclass"``; ``val_dice`` is then
the Dice of class 1). One-logit networks use the losses of ``comp448.losses`` (BCE, Dice).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch.nn as nn
import torch.nn.functional as F

from comp448.train.engine import Trainer, TrainConfig, run_mode
from comp448.train.spec import AttentionBoost, DeepSupervision, LossSpec, MultiTask, Task

# ------------------------------------------------------------------------- loss functions


def cross_entropy(logits, target, weight=None):
    """Per-pixel softmax cross-entropy, optionally weighted per pixel (slide 13's c_p):
    ``mean_p c_p * -log softmax(logits)_{y_p}``. logits (B, C, *spatial); target (B, *spatial) int64
    class indices (the engine turns a (B, 1, *spatial) mask into them); weight (B, 1, *spatial)."""
    ce = F.cross_entropy(logits, target.long(), reduction="none")           # (B, *spatial)
    if weight is not None:
        ce = ce * weight.reshape(ce.shape)
    return ce.mean()


def bce_dice(logits, target, weight=None):
    """``bce_loss(weight) + dice_loss``: pixel accuracy and region overlap (slides 12-15)."""
    from comp448 import losses
    return losses.bce_loss(logits, target, weight=weight) + losses.dice_loss(logits, target)


def softmax_dice(logits, target, squared=True):
    """V-Net's Dice on the softmax foreground probability of 2-class logits (slide 26):
    softmax(z)_1 = sigmoid(z_1 - z_0), so ``dice_loss`` on the logit difference is exactly it."""
    from comp448 import losses
    return losses.dice_loss(logits[:, 1:2] - logits[:, 0:1], target.unsqueeze(1).float(), squared=squared)


def mse(pred, target):
    return F.mse_loss(pred, target.reshape(pred.shape))


# ------------------------------------------------------------------------- adapters


class MirrorPad(nn.Module):
    """The U-Net paper's overlap-tile input: mirror ``pad`` pixels on each side, so a valid-padding
    U-Net's output (input - 2*pad) has the size of the original tile: pad = 92 for depth 4
    (388 -> 572 -> 388), 44 for depth 3, 20 for depth 2 (``unet_output_size``)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        from comp448.nets import unet_output_size
        self.net = net
        n = next(n for n in range(2 ** net.depth, 4096) if _admissible(unet_output_size, n, net.depth))
        self.pad = (n - unet_output_size(n, net.depth)) // 2

    def forward(self, x):                                     # (B, C, H, W) -> (B, C, H + 2p, W + 2p)
        return self.net(F.pad(x, (self.pad,) * 4, mode="reflect"))


def _admissible(fn, n, depth):
    try:
        fn(n, depth)
        return True
    except ValueError:
        return False


class SegNetMRIInputs(nn.Module):
    """``MRIDataset`` batches (zero_filled (B,C,H,W), kspace (B,1,H,W) complex, mask (B,1,H,W)) to
    ``SegNetMRI.forward(image, kspace (B,H,W), mask (B,H,W))``; both use ``comp448.kspace``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, zero_filled, kspace, mask_kspace):
        return self.net(zero_filled, kspace[:, 0], mask_kspace[:, 0])


# ------------------------------------------------------------------------- presets


@dataclass
class Preset:
    """One named run. ``data(split, n, size, seed)`` returns a dataset; ``model(**model_kwargs)`` a
    network; ``loss()`` a loss spec; ``config`` TrainConfig fields; ``short`` the overrides used when
    ``is_short_run()`` (keys ``size``, ``n_train``, ``n_val``, ``model_kwargs`` or TrainConfig fields)."""

    name: str
    summary: str
    model: Callable[..., nn.Module]
    data: Callable[..., Any]
    loss: Callable[[], LossSpec]
    size: Any
    n_train: int
    n_val: int
    config: dict
    model_kwargs: dict = field(default_factory=dict)
    short: dict = field(default_factory=dict)
    grader: dict | None = None          # overrides under nbgrader (default: ``short``)


def _seg_data(kind, augment=False, targets=(), **gen):
    def make(split, n, size, seed):
        from comp448 import augment as A, data
        aug = A.Compose([A.RandomFlip(), A.RandomRot90(ks=(1, 2, 3) if kind != "blobs3d" else (2,))]) \
            if augment and split == "train" else None
        return data.SegmentationDataset(kind, n, size=size, seed=seed + (0 if split == "train" else 10_000),
                                        augment=aug, targets=targets, progress=False, **gen)
    return make


def _mri_data(split, n, size, seed):
    """MRIDataset with complex images as (real, imaginary) channels: the zero-filled input F^-1(y),
    the measured k-space y and mask m in the ``comp448.kspace`` layout SegNetMRI uses, and the
    fully sampled target as (image, 0)."""
    from comp448 import data
    return data.MRIDataset(n, size=size, seed=seed + (0 if split == "train" else 10_000), channels=2)


def _sr_data(factor):
    def make(split, n, size, seed):
        from comp448 import data
        return data.SuperResolutionDataset(n, shape=size, factor=factor, seed=seed + (0 if split == "train" else 10_000))
    return make


def _net(name, wrap=None, **fixed):
    def make(**kw):
        from comp448 import nets
        net = getattr(nets, name)(**{**fixed, **kw})
        return wrap(net) if wrap else net
    return make


def _side_weights(epochs_to_zero=50):
    """DCAN/VoxResNet style: the main output keeps weight 1, the auxiliary ones start at 1 and decay
    linearly to 0 over ``epochs_to_zero`` epochs. A ``DeepSupervision`` weights callable."""
    return lambda epoch, n: [1.0] + [max(0.0, 1.0 - epoch / epochs_to_zero)] * (n - 1)


GPU = dict(amp="auto", channels_last="auto", compile="auto", num_workers=4)
SHORT_2D = dict(size=64, n_train=8, n_val=4, epochs=1, batch_size=2, num_workers=0)
SHORT_3D = dict(size=(16, 32, 32), n_train=4, n_val=2, epochs=1, batch_size=1, num_workers=0)

PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


_add(Preset(
    "unet-nuclei-cpu", "small same-padding U-Net (base 16, depth 3, 1 logit, BatchNorm), BCE + Dice, "
    "synthetic nuclei 128x128; reaches val Dice >= 0.85 in under 4 min on 2 CPU cores",
    _net("UNet", in_channels=1, num_classes=1, padding="same", batch_norm=True, dropout=0.0),
    _seg_data("nuclei", augment=True, n_objects=15), lambda: Task(bce_dice),
    size=128, n_train=96, n_val=16, model_kwargs=dict(base=16, depth=3),
    config=dict(epochs=5, batch_size=8, lr=3e-3, scheduler="cosine", amp="none", compile=False),
    short={}, grader=dict(n_train=32, epochs=2)))

_add(Preset(
    "unet-nuclei-gpu", "paper U-Net (Ronneberger 2015: 64..1024 channels, valid convolutions, 2-class "
    "softmax, 31M params) on 388x388 nuclei tiles mirrored to 572x572, cross-entropy weighted by "
    "the U-Net weight map (w0=10, sigma=5), SGD momentum 0.99",
    _net("UNet", wrap=MirrorPad, in_channels=1, num_classes=2, padding="valid"),
    _seg_data("nuclei", augment=True, targets=("weight_map",)),
    lambda: Task(cross_entropy, weight="weight_map", kind="multiclass"),
    size=388, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=8, lr=1e-2, optimizer="sgd", momentum=0.99, scheduler="poly",
                grad_clip=1.0, **GPU),
    short={**SHORT_2D, "size": 68, "model_kwargs": dict(depth=3)}))      # 68 + 2*44 = 156 -> 68

_add(Preset(
    "dcan-glands-gpu", "DCAN (Chen 2016): VGG-16 encoder, segmentation + contour heads, each with 3 "
    "auxiliary classifiers (weights decayed over 50 epochs), 2-class cross-entropy; synthetic glands",
    _net("DCAN", in_channels=3, num_classes=2), _seg_data("glands", augment=True, targets=("contour",)),
    lambda: MultiTask({"object": DeepSupervision(cross_entropy, "object", "mask", _side_weights(), "multiclass"),
                       "contour": DeepSupervision(cross_entropy, "contour", "contour", _side_weights(),
                                                  "multiclass")}, weights={"object": 1.0, "contour": 1.0},
                      main="object"),
    size=256, n_train=512, n_val=64,
    config=dict(epochs=80, batch_size=16, lr=1e-3, scheduler="poly", **GPU), short=SHORT_2D))

_add(Preset(
    "deepdistance-nuclei-gpu", "DeepDistance (Koyuncu 2020): shared encoder, inner- and outer-distance "
    "decoders (ReLU), MSE on both maps; synthetic nuclei",
    _net("DeepDistance", in_channels=1), _seg_data("nuclei", augment=True, targets=("inner", "outer")),
    lambda: MultiTask({"inner": Task(mse, kind="regression"), "outer": Task(mse, kind="regression")},
                      weights={"inner": 1.0, "outer": 1.0}, main="inner"),
    size=256, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=16, lr=1e-4, **GPU), short=SHORT_2D))

_add(Preset(
    "fouriernet-oct-gpu", "FourierNet (Cansiz 2023): stage-1 U-Net, stage-2 U-Net on image + stage-1 "
    "probabilities with a Fourier-amplitude head; CE(stage1) + CE(seg) + 0.1 MSE(amplitudes/size); OCT",
    _net("FourierNet", in_channels=1, num_classes=2), _seg_data("oct", targets=("amplitudes",)),
    lambda: MultiTask({"stage1": Task(cross_entropy, output="stage1", target="mask", kind="multiclass"),
                       "seg": Task(cross_entropy, output="seg", target="mask", kind="multiclass"),
                       "amplitudes": Task(lambda p, t: mse(p, t / 256.0), target="amplitudes", kind="regression")},
                      weights={"stage1": 1.0, "seg": 1.0, "amplitudes": 0.1}, main="seg"),
    size=256, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=16, lr=1e-4, **GPU), short=SHORT_2D))

_add(Preset(
    "attentionboost-glands-gpu", "AttentionBoostNet (Gunesli 2020): shared encoder, 4 stage decoders, "
    "stage n's BCE weighted by c_n, c_{n+1} = beta_n * c_n (slide 17); synthetic glands",
    _net("AttentionBoostNet", in_channels=3, num_classes=1), _seg_data("glands", augment=True),
    lambda: AttentionBoost(_bce, predict="last"),
    size=256, n_train=512, n_val=64,
    config=dict(epochs=80, batch_size=16, lr=1e-4, **GPU), short=SHORT_2D))

_add(Preset(
    "fcn8s-glands-gpu", "FCN-8s (Long 2015): VGG-16 encoder, skips from pool3/pool4, 2-class "
    "cross-entropy; synthetic glands",
    _net("FCN8s", in_channels=3, num_classes=2), _seg_data("glands", augment=True),
    lambda: Task(cross_entropy, kind="multiclass"), size=256, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=16, lr=1e-4, **GPU), short=SHORT_2D))

_add(Preset(
    "deconvnet-glands-gpu", "DeconvNet (Noh 2015): VGG-16 encoder mirrored by unpooling + deconvolution, "
    "2-class cross-entropy; synthetic glands",
    _net("DeconvNet", in_channels=3, num_classes=2), _seg_data("glands", augment=True),
    lambda: Task(cross_entropy, kind="multiclass"), size=224, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=16, lr=1e-4, **GPU),
    short={**SHORT_2D, "model_kwargs": dict(fc_kernel=2)}))     # 7x7 fc6 needs >= 224 px

_add(Preset(
    "unet3d-blobs-gpu", "3D U-Net with multi-level deep supervision (Zeng 2017): 2-class cross-entropy "
    "on the main and auxiliary outputs (weights decayed); synthetic 3-D blobs",
    _net("UNet3D", in_channels=1, num_classes=2), _seg_data("blobs3d", augment=True),
    lambda: DeepSupervision(cross_entropy, "seg", "mask", _side_weights(), "multiclass"),
    size=(64, 128, 128), n_train=256, n_val=32,
    config=dict(epochs=60, batch_size=4, lr=1e-3, **GPU), short=SHORT_3D))

_add(Preset(
    "vnet-blobs-gpu", "V-Net (Milletari 2016): residual 5x5x5 stages, PReLU, Dice loss with squares in "
    "the denominator on the softmax foreground; synthetic 3-D blobs",
    _net("VNet", in_channels=1, num_classes=2), _seg_data("blobs3d", augment=True),
    lambda: Task(softmax_dice, kind="multiclass"), size=(64, 128, 128), n_train=256, n_val=32,
    config=dict(epochs=60, batch_size=4, lr=1e-4, **GPU), short=SHORT_3D))

_add(Preset(
    "voxresnet-blobs-gpu", "VoxResNet (Chen 2018): VoxRes modules, 4 side classifiers fused, deep "
    "supervision with decayed auxiliary weights, 2-class cross-entropy; synthetic 3-D blobs",
    _net("VoxResNet", in_channels=1, num_classes=2), _seg_data("blobs3d", augment=True),
    lambda: DeepSupervision(cross_entropy, "seg", "mask", _side_weights(), "multiclass"),
    size=(64, 128, 128), n_train=256, n_val=32,
    config=dict(epochs=60, batch_size=4, lr=1e-3, **GPU), short=SHORT_3D))

_add(Preset(
    "segnetmri-gpu", "SegNetMRI (Sun 2018): 5 cascaded reconstruction U-Nets with data consistency and "
    "segmentation decoders; L = L_MRN + 0.1 L_MSN (recon MSE + deeply supervised CE); synthetic 4x MRI, "
    "complex images as (real, imaginary) channels (exact data consistency)",
    _net("SegNetMRI", wrap=SegNetMRIInputs, in_channels=2, num_classes=2), _mri_data,
    lambda: MultiTask({"recon": Task(mse, output="recon", target="image", kind="regression"),
                       "seg": DeepSupervision(cross_entropy, "seg", "mask", kind="multiclass")},
                      weights={"recon": 1.0, "seg": 0.1}, main="seg"),
    size=256, n_train=512, n_val=64,
    config=dict(epochs=60, batch_size=8, lr=1e-4, input_key=("zero_filled", "kspace", "mask_kspace"),
                **{**GPU, "amp": "none", "compile": False}),   # complex FFTs: float32, no inductor
    short={**SHORT_2D, "size": 32, "model_kwargs": dict(base=8, depth=2, n_blocks=2)}))

_add(Preset(
    "deepresolve-gpu", "DeepResolve (Chaudhari 2018): 20-layer residual 3-D CNN, thick slices (x4) "
    "-> thin slices, MSE; synthetic volumes",
    _net("DeepResolve", in_channels=1, scale_factor=4), _sr_data(4),
    lambda: Task(mse, target="thin", kind="regression"), size=(64, 128, 128), n_train=256, n_val=32,
    config=dict(epochs=60, batch_size=4, lr=1e-4, input_key="thick_slices", **GPU),
    short={**SHORT_3D, "model_kwargs": dict(width=16, depth=4)}))

# seconds-long smoke runs of every preset (tests/train/test_presets.py, ``--size``/``--model`` on the CLI)
for _name, _tiny in {
    "unet-nuclei-cpu": dict(size=32, model_kwargs=dict(base=4, depth=2)),
    "unet-nuclei-gpu": dict(size=36, model_kwargs=dict(base=4, depth=2)),
    "dcan-glands-gpu": dict(size=64, model_kwargs=dict(base=4, conv6_channels=16)),
    "deepdistance-nuclei-gpu": dict(size=32, model_kwargs=dict(base=4, depth=2)),
    "fouriernet-oct-gpu": dict(size=32, model_kwargs=dict(base=4, depth=2, hidden=16)),
    "attentionboost-glands-gpu": dict(size=32, model_kwargs=dict(base=4, depth=2)),
    "fcn8s-glands-gpu": dict(size=64, model_kwargs=dict(base=4, fc_channels=16)),
    "deconvnet-glands-gpu": dict(size=64, model_kwargs=dict(base=4, fc_channels=16, fc_kernel=2)),
    "unet3d-blobs-gpu": dict(size=(16, 16, 16), model_kwargs=dict(base=4, depth=2)),
    "vnet-blobs-gpu": dict(size=(16, 16, 16), model_kwargs=dict(base=4)),
    "voxresnet-blobs-gpu": dict(size=(16, 16, 16), model_kwargs=dict(base=4, side_channels=2)),
    "segnetmri-gpu": dict(size=32, model_kwargs=dict(base=4, depth=2, n_blocks=2)),
    "deepresolve-gpu": dict(size=(16, 16, 16), model_kwargs=dict(width=8, depth=3)),
}.items():
    PRESETS[_name].tiny = _tiny


def _bce(logits, target, weight=None):
    from comp448 import losses
    return losses.bce_loss(logits, target, weight=weight)


# ------------------------------------------------------------------------- building and running


def list_presets() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {list_presets()}, got {name!r}")
    return PRESETS[name]


@dataclass
class Built:
    """A preset made concrete: network, datasets, loss spec, config and the sizes used."""

    model: nn.Module
    train_set: Any
    val_set: Any
    loss: LossSpec
    config: TrainConfig
    size: Any
    model_kwargs: dict


def build(name: str, *, size=None, n_train: int | None = None, n_val: int | None = None,
          model_kwargs: dict | None = None, full: bool = False, seed: int | None = None, **config) -> Built:
    """The model, datasets, loss spec and ``TrainConfig`` of a preset (a :class:`Built`).

    Explicit arguments win over the preset; without a GPU (``is_short_run()``) and unless
    ``full=True`` the preset's ``short`` overrides apply first. ``config`` holds TrainConfig fields.
    """
    p = get_preset(name)
    mode = "full" if full else run_mode()
    short = {} if mode == "full" else dict(p.grader if mode == "grader" and p.grader is not None else p.short)
    mk = {**p.model_kwargs, **short.pop("model_kwargs", {}), **(model_kwargs or {})}
    size = size if size is not None else short.pop("size", p.size)
    n_train = n_train if n_train is not None else short.pop("n_train", p.n_train)
    n_val = n_val if n_val is not None else short.pop("n_val", p.n_val)
    short.pop("size", None), short.pop("n_train", None), short.pop("n_val", None)
    cfg = TrainConfig(**{**p.config, **short, **{k: v for k, v in config.items() if v is not None}})
    seed = cfg.seed if seed is None else seed
    from comp448.train.engine import seed_everything
    seed_everything(seed, cfg.deterministic)
    model = p.model(**mk)
    return Built(model, p.data("train", n_train, size, seed), p.data("val", n_val, size, seed), p.loss(), cfg,
                 size, mk)


def run_preset(name: str, out_dir: str | None = None, resume: str | None = None, **kwargs) -> Trainer:
    """Build and train a preset; with ``out_dir`` the run writes metrics.json (with the preset name
    and sizes), checkpoints and plots there. ``resume`` is a ``last.pt`` to continue from."""
    b = build(name, out_dir=out_dir, **kwargs)
    trainer = Trainer(b.model, b.train_set, b.val_set, b.loss, b.config)
    if resume:
        trainer.load_checkpoint(resume)
    trainer.fit()
    if trainer.out_dir is not None and trainer.dist.is_main:
        trainer.write_outputs(extra={"preset": name, "run_mode": run_mode(), "n_train": len(b.train_set),
                                     "n_val": len(b.val_set), "size": b.size, "model_kwargs": b.model_kwargs})
    return trainer
