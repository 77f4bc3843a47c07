"""The training engine that every notebook, preset and benchmark uses.

One ``Trainer`` runs the same loop on a laptop CPU, an Apple GPU (MPS), one CUDA GPU or several GPUs
under ``torchrun``; only the speed knobs change with the device:

==================  ===========================================================================
knob (TrainConfig)  what it does / default
==================  ===========================================================================
``device``          ``"auto"``: CUDA, else MPS, else CPU; or force ``"cpu"``, ``"cuda:1"``, ...
``amp``             ``"auto"``: bf16 autocast on CUDA (fp16 + GradScaler on GPUs without bf16),
                    off on CPU/MPS; or ``"none"``, ``"bf16"`` (CPU or CUDA), ``"fp16"`` (CUDA only)
``channels_last``   ``"auto"``: on for CUDA (NHWC lets cuDNN use tensor-core kernels), off on CPU
``compile``         ``"auto"``: ``torch.compile`` on CUDA for full runs, off on CPU and for short
                    runs. Compiling a U-Net takes ~1 min; it pays once a run has a few hundred
                    steps at a fixed input size (each new shape recompiles). On CPU the gain is
                    small for convolution-bound nets and the compile time dominates short runs.
``grad_clip``       clip the global gradient norm (after unscaling in fp16)
``seed``            ``seed_everything(seed)`` before the model is built; the data order is drawn
                    from ``seed + epoch`` (see ``distributed.make_sampler``)
==================  ===========================================================================

Losses are computed in float32 from float32 copies of the outputs (autocast only covers the
network), so the numerically careful losses of ``comp448.losses`` keep their precision.

Each epoch: train (tqdm progress bar), validate with ``comp448.metrics`` (``val_dice``, ``val_iou``,
``val_precision``, ``val_recall`` for binary outputs), log, early-stop on ``monitor``, and, with
``out_dir``, write ``last.pt`` (everything needed to resume: model, optimiser, scheduler, grad
scaler, epoch, history, RNG states) and ``best.pt``. At the end ``out_dir`` gets ``metrics.json``,
``curves.png`` and ``predictions.png`` (``comp448.viz``). A run resumed from ``last.pt`` continues
exactly as the uninterrupted run would have (``tests/train/test_engine.py`` checks bit-equality on
the CPU).
"""
from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from comp448._checks import check_choice, check_number
from comp448.train import distributed as D
from comp448.train.spec import LossSpec, Task, as_spec, fit_to

# ---------------------------------------------------------------------------------------------
# run size, device, precision, seeding


def run_mode() -> str:
    """``"grader"`` under nbgrader (``NBGRADER_EXECUTION`` set), ``"full"`` with a CUDA GPU, else ``"cpu"``.

    ``COMP448_RUN_MODE=full|cpu|grader`` overrides the detection (e.g. to run full size on a CPU).
    MPS counts as ``"cpu"``: Apple GPUs are too slow for the paper-size runs.
    """
    forced = os.environ.get("COMP448_RUN_MODE")
    if forced:
        check_choice("COMP448_RUN_MODE", forced, ("full", "cpu", "grader"))
        return forced
    if os.environ.get("NBGRADER_EXECUTION"):
        return "grader"
    return "full" if torch.cuda.is_available() else "cpu"


def is_short_run() -> bool:
    """True when heavy training should be shortened: under nbgrader or without a CUDA GPU."""
    return run_mode() != "full"


def scale_for_device(full, short, grader=None):
    """``full`` on a CUDA GPU, ``short`` without one, ``grader`` (default ``short``) under nbgrader.

    Notebooks write e.g. ``epochs = scale_for_device(100, 3, grader=1)`` or pass dicts of settings.
    """
    mode = run_mode()
    if mode == "full":
        return full
    if mode == "grader" and grader is not None:
        return grader
    return short


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (all devices). ``deterministic=True`` also asks PyTorch for
    deterministic kernels (``torch.use_deterministic_algorithms``, cuDNN without autotuning and the
    cuBLAS workspace setting), which is slower on GPUs. Returns ``seed``."""
    check_number("seed", seed, lo=0, integer=True)
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    return seed


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` gives CUDA if available, else MPS, else CPU; a named device must exist."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu', 'cuda', 'cuda:1', 'mps', got {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was requested but MPS is not available; use device='auto' or 'cpu'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda[:i]' or 'mps', got {device!r}")
    return dev


AMP_MODES = ("auto", "none", "bf16", "fp16")


def resolve_amp(amp: str, device: torch.device) -> str:
    """The mixed-precision mode actually used: ``"none"``, ``"bf16"`` or ``"fp16"``.

    bf16 keeps float32's exponent range, so it needs no loss scaling; fp16 needs a GradScaler and is
    offered on CUDA only (GPUs older than Ampere lack fast bf16).
    """
    check_choice("amp", amp, AMP_MODES)
    if amp == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "none"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device (it uses a GradScaler), got device {device}; "
                         "use amp='bf16' or 'none'")
    if amp == "bf16" and device.type == "mps":
        raise ValueError("amp='bf16' is not supported on MPS by this engine; use amp='none'")
    return amp


# ---------------------------------------------------------------------------------------------
# configuration

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "poly")


@dataclass
class TrainConfig:
    """Every knob of a run. ``batch_size`` is the global batch (split over processes under DDP)."""

    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    optimizer: str = "adam"          # adam | adamw | sgd (momentum 0.99 as U-Net, set below)
    momentum: float = 0.9            # sgd only
    weight_decay: float = 0.0
    scheduler: str = "cosine"        # none | cosine | poly (1 - t/T)^0.9, stepped every optimiser step
    grad_clip: float | None = None   # max global gradient norm
    amp: str = "auto"
    channels_last: bool | str = "auto"
    compile: bool | str = "auto"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    num_workers: int = 0
    shuffle: bool = True
    drop_last: bool = False
    input_key: str | tuple = "image"   # a tuple of keys calls model(*[batch[k] for k in keys])
    val_batch_size: int | None = None
    val_every: int = 1
    monitor: str = "auto"            # auto: val_dice (segmentation) / val_loss (regression) / train_loss
    early_stopping: int | None = None  # patience in validations without improvement
    min_delta: float = 0.0
    restore_best: bool = True
    sync_batchnorm: bool = True
    max_steps_per_epoch: int | None = None
    max_val_batches: int | None = None
    log_every: int = 10
    progress: bool = True
    out_dir: str | None = None
    plot: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size", "val_every", "log_every"):
            check_number(name, getattr(self, name), lo=1, integer=True)
        check_number("num_workers", self.num_workers, lo=0, integer=True)
        check_number("lr", self.lr, lo=0, lo_open=True)
        check_number("momentum", self.momentum, lo=0, hi=1)
        check_number("weight_decay", self.weight_decay, lo=0)
        check_number("min_delta", self.min_delta, lo=0)
        check_number("seed", self.seed, lo=0, integer=True)
        for name in ("grad_clip",):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), lo=0, lo_open=True)
        for name in ("early_stopping", "max_steps_per_epoch", "max_val_batches", "val_batch_size"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), lo=1, integer=True)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        check_choice("amp", self.amp, AMP_MODES)
        check_choice("channels_last", self.channels_last, (True, False, "auto"))
        check_choice("compile", self.compile, (True, False, "auto"))
        keys = (self.input_key,) if isinstance(self.input_key, str) else self.input_key
        if not isinstance(keys, (tuple, list)) or not keys or not all(isinstance(k, str) for k in keys):
            raise TypeError(f"input_key must be a batch key or a tuple of keys, got {self.input_key!r}")
        self.input_key = self.input_key if isinstance(self.input_key, str) else tuple(self.input_key)

    def replace(self, **changes) -> "TrainConfig":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return TrainConfig(**{**asdict(self), **changes})


# ---------------------------------------------------------------------------------------------
# helpers


def _to_float(outputs):
    """float32 copies of (possibly autocast bf16/fp16) outputs, so losses run in float32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, Mapping):
        return {k: _to_float(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_to_float(v) for v in outputs)
    raise TypeError(f"the network must return a tensor or a dict of tensors, got {type(outputs).__name__}")


def _as_batch(batch) -> dict:
    """Batches are dicts; an ``(image, mask)`` pair (e.g. from a TensorDataset) becomes one."""
    if isinstance(batch, Mapping):
        return dict(batch)
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return {"image": batch[0], "mask": batch[1]}
    raise TypeError(f"a batch must be a dict (e.g. from comp448.data.SegmentationDataset) or an "
                    f"(image, mask) pair, got {type(batch).__name__}")


def _seed_worker(worker_id: int) -> None:
    """DataLoader workers: seed NumPy and ``random`` from the per-worker torch seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def _spatial_rank(model: nn.Module) -> int:
    """2 for a 2-D network, 3 for a 3-D one (from its convolution weights)."""
    dims = {p.ndim for p in model.parameters()}
    return 3 if 5 in dims else 2


def _poly(total: int, power: float = 0.9):
    return lambda step: max(0.0, 1.0 - step / max(total, 1)) ** power


def _cosine(total: int):
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """Train ``model`` on ``train_data`` with ``loss`` (a loss spec, a loss function or a dict).

    ``train_data``/``val_data`` are map-style datasets yielding dicts (``"image"``, ``"mask"``, ...)
    or ``(image, mask)`` pairs. ``config`` is a ``TrainConfig`` (keyword overrides may be passed
    directly). ``optimizer``/``scheduler`` may be given ready-made (``scheduler`` is stepped once per
    optimiser step). Call ``fit()``; ``history`` holds one dict per epoch.
    """

    def __init__(self, model: nn.Module, train_data, val_data=None, loss=None,
                 config: TrainConfig | None = None, optimizer=None, scheduler=None,
                 collate_fn=None, **overrides):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        cfg = config if config is not None else TrainConfig()
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(cfg).__name__}")
        self.cfg = cfg = cfg.replace(**overrides) if overrides else cfg
        if loss is None:
            from comp448 import losses
            loss = Task(losses.bce_loss)
        self.spec: LossSpec = as_spec(loss)

        # --- processes and device
        self.dist = D.dist_info()
        dev = pick_device(cfg.device)
        if self.dist.enabled and dev.type == "cuda":
            dev = torch.device("cuda", self.dist.local_rank)
        self.device = dev
        self.amp = resolve_amp(cfg.amp, dev)
        self.channels_last = (dev.type == "cuda") if cfg.channels_last == "auto" else bool(cfg.channels_last)
        self.compiled = (dev.type == "cuda" and not is_short_run()) if cfg.compile == "auto" else bool(cfg.compile)
        self.rank_dims = _spatial_rank(model)
        self.memory_format = (torch.channels_last if self.rank_dims == 2 else torch.channels_last_3d) \
            if self.channels_last else torch.contiguous_format

        # --- model: raw (for checkpoints/eval) -> DDP (gradient averaging) -> compiled (speed)
        if self.dist.enabled and cfg.sync_batchnorm:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(dev)
        if self.channels_last:
            model = model.to(memory_format=self.memory_format)
        self.model = model
        net = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP
            net = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
        self.train_model = torch.compile(net) if self.compiled else net
        self.n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)

        # --- data
        world = self.dist.world_size
        if cfg.batch_size % world:
            raise ValueError(f"batch_size ({cfg.batch_size}) must be divisible by the number of processes ({world})")
        self.train_sampler = D.make_sampler(train_data, shuffle=cfg.shuffle, seed=cfg.seed, info=self.dist)
        self.loader_generator = torch.Generator().manual_seed(cfg.seed)
        pin = dev.type == "cuda"
        self.train_loader = DataLoader(train_data, batch_size=cfg.batch_size // world, sampler=self.train_sampler,
                                       num_workers=cfg.num_workers, drop_last=cfg.drop_last, pin_memory=pin,
                                       generator=self.loader_generator, worker_init_fn=_seed_worker,
                                       collate_fn=collate_fn, persistent_workers=False)
        self.steps_per_epoch = len(self.train_loader)
        if cfg.max_steps_per_epoch is not None:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.max_steps_per_epoch)
        if self.steps_per_epoch == 0:
            raise ValueError(f"train_data ({len(train_data)} samples) gives no batch of {cfg.batch_size} "
                             f"with drop_last={cfg.drop_last}")
        self.val_loader = None if val_data is None else DataLoader(
            val_data, batch_size=cfg.val_batch_size or cfg.batch_size, shuffle=False,
            num_workers=cfg.num_workers, pin_memory=pin, collate_fn=collate_fn)

        # --- optimisation
        params = [p for p in model.parameters() if p.requires_grad]
        if optimizer is None:
            if cfg.optimizer == "adam":
                optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            elif cfg.optimizer == "adamw":
                optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            else:
                optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.optimizer = optimizer
        total = cfg.epochs * self.steps_per_epoch
        if scheduler is None and cfg.scheduler != "none":
            fn = _cosine(total) if cfg.scheduler == "cosine" else _poly(total)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
        self.scheduler = scheduler
        self.scaler = torch.amp.GradScaler(dev.type if dev.type == "cuda" else "cpu", enabled=self.amp == "fp16")

        # --- bookkeeping
        self.epoch, self.global_step = 0, 0
        self.history: list[dict[str, Any]] = []
        self.monitor, self.mode = self._monitor(val_data is not None)
        self.best, self.best_epoch, self.bad_epochs, self.best_state = None, None, 0, None
        self.val_sample = None
        self.restored_epoch = None                        # epoch whose weights fit() restored (restore_best)
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else None
        if self.out_dir is not None and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    # ----- small pieces

    def _monitor(self, has_val: bool) -> tuple[str, str]:
        m = self.cfg.monitor
        if m == "auto":
            if not has_val:
                m = "train_loss"
            else:
                m = "val_loss" if self.spec.kind == "regression" else "val_dice"
        mode = "min" if any(s in m for s in ("loss", "mse", "hausdorff")) else "max"
        return m, mode

    def autocast(self):
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype, enabled=self.amp != "none")

    @property
    def input_keys(self) -> tuple[str, ...]:
        k = self.cfg.input_key
        return (k,) if isinstance(k, str) else tuple(k)

    def to_device(self, batch) -> dict:
        batch = _as_batch(batch)
        out = {}
        for k, v in batch.items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device, non_blocking=True)
                if (self.channels_last and k in self.input_keys and v.ndim == self.rank_dims + 2
                        and v.is_floating_point()):
                    v = v.contiguous(memory_format=self.memory_format)
            out[k] = v
        return out

    def inputs(self, batch: Mapping) -> tuple:
        """The network's positional inputs from a batch (``cfg.input_key``)."""
        missing = [k for k in self.input_keys if k not in batch]
        if missing:
            raise ValueError(f"input_key {missing} not in the batch (keys: {sorted(batch)})")
        return tuple(batch[k] for k in self.input_keys)

    def forward(self, *inputs, model: nn.Module | None = None):
        """Network outputs in float32 (autocast inside)."""
        with self.autocast():
            out = (model or self.train_model)(*inputs)
        return _to_float(out)

    # ----- one optimiser step and one epoch of training

    def train_step(self, batch: Mapping) -> tuple[torch.Tensor, dict, int]:
        """forward (autocast) -> loss spec (float32) -> backward (DDP averages gradients) -> clip ->
        optimiser step (through the GradScaler) -> scheduler step. ``batch`` is already on the device.
        Returns ``(loss, parts, batch size)``; the loss is not synchronised (no ``.item()``)."""
        cfg = self.cfg
        inputs = self.inputs(batch)                              # (B/W, C, *spatial), ...
        outputs = self.forward(*inputs)
        loss, parts = self.spec(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                           cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss, parts, inputs[0].shape[0]

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, main = self.cfg, self.dist.is_main
        self.train_sampler.set_epoch(epoch)
        if hasattr(self.train_loader.dataset, "set_epoch"):   # comp448.data: fresh augmentation per epoch
            self.train_loader.dataset.set_epoch(epoch)
        self.spec.set_epoch(epoch)
        self.train_model.train()
        sums: dict[str, torch.Tensor] = {}
        n_seen = torch.zeros((), device=self.device)
        bar = tqdm(self.train_loader, total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (main and cfg.progress), leave=False, dynamic_ncols=True)
        for step, batch in enumerate(bar):
            if step >= self.steps_per_epoch:
                break
            batch = self.to_device(batch)
            loss, parts, b = self.train_step(batch)
            self.global_step += 1
            n_seen += b
            for k, v in {"loss": loss.detach(), **parts}.items():
                sums[k] = sums.get(k, 0.0) + v.float() * b
            if step % cfg.log_every == 0 and main and cfg.progress:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.2e}")
        bar.close()
        keys = sorted(sums)
        totals = D.all_reduce_sum(torch.stack([sums[k] for k in keys] + [n_seen]))   # sums over processes
        stats = {("train_loss" if k == "loss" else f"train_{k}"): float(totals[i] / totals[-1])
                 for i, k in enumerate(keys)}
        if not math.isfinite(stats["train_loss"]):
            raise FloatingPointError(f"training loss became {stats['train_loss']} in epoch {epoch + 1}; "
                                     "lower lr, set grad_clip, or use amp='bf16'/'none'")
        return stats

    # ----- validation

    @torch.no_grad()
    def evaluate(self, loader=None, max_batches: int | None = None) -> dict[str, float]:
        """Validation loss and metrics (``comp448.metrics``) of the main prediction, per image averaged.

        binary: ``val_dice``, ``val_iou``, ``val_precision``, ``val_recall`` of ``sigmoid > 0.5``
        against ``target > 0.5``; multiclass: ``val_dice`` = mean over images of the mean Dice over
        classes 1..C-1 of the argmax; regression: ``val_mse`` and ``val_psnr`` (peak = the target's
        range per image). Runs on this process only (the engine calls it on rank 0).
        """
        from comp448 import metrics
        loader = loader or self.val_loader
        if loader is None:
            raise ValueError("no validation data: pass val_data to Trainer or a loader to evaluate()")
        max_batches = max_batches or self.cfg.max_val_batches
        was_training = self.model.training
        self.model.eval()
        loss_sum, n, scores = 0.0, 0, {}
        sample = None
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            batch = self.to_device(batch)
            inputs = self.inputs(batch)
            outputs = self.forward(*inputs, model=self.model)
            loss, _ = self.spec(outputs, batch)
            b = inputs[0].shape[0]
            loss_sum, n = loss_sum + float(loss) * b, n + b
            logits = self.spec.prediction(outputs)
            target = fit_to(batch[self.spec.target], logits, f"target {self.spec.target!r}", self.spec.kind)
            for name, values in self._scores(logits, target, metrics).items():
                scores.setdefault(name, []).extend(values)
            if sample is None:
                probs = torch.sigmoid(logits) if self.spec.kind == "binary" else \
                    torch.softmax(logits, 1) if self.spec.kind == "multiclass" else logits
                try:                                          # the tile the output covers (valid U-Net)
                    shown = fit_to(inputs[0], logits, "image")
                except ValueError:                            # e.g. super-resolution: input smaller
                    shown = inputs[0]
                sample = {"image": shown.float().cpu(),
                          "target": target.float().cpu(), "prediction": probs.float().cpu()}
        self.model.train(was_training)
        self.val_sample = sample
        out = {"val_loss": loss_sum / max(n, 1)}
        out.update({f"val_{k}": float(np.mean(v)) for k, v in scores.items()})
        return out

    def _scores(self, logits, target, metrics) -> dict[str, list[float]]:
        kind = self.spec.kind
        if kind == "binary":
            pred = (logits[:, :1] > 0).cpu().numpy()                  # sigmoid(x) > 0.5  <=>  x > 0
            gt = (target > 0.5).cpu().numpy()
            res = {"dice": [], "iou": [], "precision": [], "recall": []}
            for p, g in zip(pred, gt):                                # per image (1, *spatial)
                p, g = p[0], g.reshape(p[0].shape)
                res["dice"].append(metrics.dice_score(p, g))
                res["iou"].append(metrics.iou_score(p, g))
                res["precision"].append(metrics.precision(p, g))
                res["recall"].append(metrics.recall(p, g))
            return res
        if kind == "multiclass":
            pred = logits.argmax(1).cpu().numpy()                     # (B, *spatial)
            gt = target.reshape(pred.shape).cpu().numpy()
            C = logits.shape[1]
            return {"dice": [float(np.mean([metrics.dice_score(p == c, g == c) for c in range(1, C)]))
                             for p, g in zip(pred, gt)]}
        err = (logits - target).flatten(1)                            # regression
        mse = err.pow(2).mean(1)
        rng = (target.flatten(1).amax(1) - target.flatten(1).amin(1)).clamp_min(1e-8)
        psnr = 10 * torch.log10(rng ** 2 / mse.clamp_min(1e-12))
        return {"mse": mse.cpu().tolist(), "psnr": psnr.cpu().tolist()}

    @torch.no_grad()
    def predict(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Probabilities (binary/multiclass) or values (regression) of the main output for ``inputs``
        (the tensors named by ``cfg.input_key``, batched)."""
        self.model.eval()
        batch = self.to_device(dict(zip(self.input_keys, inputs)))
        logits = self.spec.prediction(self.forward(*self.inputs(batch), model=self.model))
        if self.spec.kind == "binary":
            return torch.sigmoid(logits)
        return torch.softmax(logits, 1) if self.spec.kind == "multiclass" else logits

    # ----- checkpoints

    def state_dict(self) -> dict:
        rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
               "loader": self.loader_generator.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict(), "epoch": self.epoch, "global_step": self.global_step,
                "history": self.history, "best": self.best, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "monitor": self.monitor, "rng": rng,
                "config": asdict(self.cfg)}

    def save_checkpoint(self, path) -> Path:
        """Write everything needed to resume (rank 0 only under DDP; other ranks return at once)."""
        path = Path(path)
        if self.dist.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_save(self.state_dict(), path)
        return path

    def load_checkpoint(self, path, restore_rng: bool = True) -> "Trainer":
        """Resume from ``path`` (written by ``save_checkpoint``); ``fit()`` then continues at the next epoch.

        The file holds NumPy and Python RNG states, so it is read with ``weights_only=False``: load only
        checkpoints you wrote yourself.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"checkpoint path {str(path)!r} does not exist")
        ck = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        if self.scheduler is not None and ck["scheduler"] is not None:
            self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.epoch, self.global_step, self.history = ck["epoch"], ck["global_step"], list(ck["history"])
        self.best, self.best_epoch, self.bad_epochs = ck["best"], ck["best_epoch"], ck["bad_epochs"]
        if restore_rng:
            rng = ck["rng"]
            random.setstate(rng["python"])
            np.random.set_state(rng["numpy"])
            torch.set_rng_state(rng["torch"].cpu())
            self.loader_generator.set_state(rng["loader"].cpu())
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        return self

    # ----- the loop

    def _improved(self, record: dict) -> bool:
        value = record.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        if self.best is None:
            return True
        d = self.cfg.min_delta
        return value > self.best + d if self.mode == "max" else value < self.best - d

    def fit(self) -> list[dict]:
        """Train from ``self.epoch`` to ``cfg.epochs``; returns the history (one dict per epoch)."""
        cfg, main = self.cfg, self.dist.is_main
        for epoch in range(self.epoch, cfg.epochs):
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            record.update(self.train_epoch(epoch))
            train_time = time.perf_counter() - t0
            if self.val_loader is not None and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                record.update(D.broadcast_object(self.evaluate() if main else None))
            record["train_time_s"] = train_time
            record["epoch_time_s"] = time.perf_counter() - t0
            record["images_per_s"] = self.steps_per_epoch * cfg.batch_size / max(train_time, 1e-9)
            self.history.append(record)
            self.epoch = epoch + 1
            stop = False
            if self.monitor in record:
                if self._improved(record):
                    self.best, self.best_epoch, self.bad_epochs = record[self.monitor], epoch + 1, 0
                    if cfg.restore_best:
                        self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                    if self.out_dir is not None:
                        self.save_checkpoint(self.out_dir / "best.pt")
                else:
                    self.bad_epochs += 1
                    stop = cfg.early_stopping is not None and self.bad_epochs >= cfg.early_stopping
            if main and cfg.progress:
                shown = {k: v for k, v in record.items() if k.startswith(("train_loss", "val_")) and k != "val_loss"}
                tqdm.write(f"epoch {epoch + 1}/{cfg.epochs} " + " ".join(f"{k}={v:.4f}" for k, v in shown.items())
                           + f" ({record['epoch_time_s']:.1f} s)")
            if self.out_dir is not None:
                self.save_checkpoint(self.out_dir / "last.pt")
            if stop:
                if main and cfg.progress:
                    tqdm.write(f"early stopping: {self.monitor} did not improve for {self.bad_epochs} validations")
                break
        if cfg.restore_best and self.best_epoch is not None:
            state = self.best_state                       # None after a resume: read best.pt instead
            if state is None and self.out_dir is not None and (self.out_dir / "best.pt").is_file():
                state = torch.load(self.out_dir / "best.pt", map_location=self.device, weights_only=False)["model"]
            if state is not None:
                self.model.load_state_dict(state)
                self.restored_epoch = self.best_epoch
        if self.out_dir is not None and main:
            self.write_outputs()
        D.barrier()
        return self.history

    def summary(self) -> dict:
        """The record of the returned weights (the best epoch if restored, else the last) plus run facts."""
        if not self.history:
            raise ValueError("no epoch has run yet: call fit() first")
        rec = dict(self.history[self.restored_epoch - 1] if self.restored_epoch else self.history[-1])
        rec.update({"monitor": self.monitor, "best_epoch": self.best_epoch, "epochs_run": len(self.history),
                    "wall_time_s": sum(r["epoch_time_s"] for r in self.history), "device": str(self.device),
                    "amp": self.amp, "channels_last": self.channels_last, "compiled": self.compiled,
                    "world_size": self.dist.world_size, "n_params": self.n_params})
        return rec

    def write_outputs(self, extra: Mapping | None = None) -> None:
        """``metrics.json`` (summary + history + config), ``curves.png`` and ``predictions.png``."""
        out = self.out_dir
        summary = {**self.summary(), **(extra or {}), "history": self.history, "config": asdict(self.cfg)}
        (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=str))
        if self.cfg.plot:
            from comp448 import viz
            viz.plot_curves(self.history, path=out / "curves.png")
            if self.val_sample is not None:
                s = self.val_sample
                viz.plot_predictions(s["image"], s["target"], s["prediction"], path=out / "predictions.png")


def fit(model: nn.Module, train_data, val_data=None, loss=None, **config) -> Trainer:
    """One call: ``Trainer(model, train_data, val_data, loss, TrainConfig(**config)).fit()``; returns the trainer."""
    trainer = Trainer(model, train_data, val_data, loss, TrainConfig(**config))
    trainer.fit()
    return trainer
