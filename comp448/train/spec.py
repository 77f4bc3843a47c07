"""Loss specs: which network output is compared with which batch entry, by which loss.

The networks of ``comp448.nets`` return either a tensor of logits or a dict of named outputs
(tasks ``"seg"``, ``"contour"``, ...; side outputs ``"seg/aux1"``, ...; cascade stages ``"stage1"``,
...; see ``comp448/nets/__init__.py``). A batch is a dict from ``comp448.data.SegmentationDataset``:
``"image"`` (B, C, *spatial), ``"mask"`` (B, 1, *spatial) in {0, 1}, ``"labels"`` (B, *spatial) int64,
plus any requested targets such as ``"weight_map"`` (B, 1, *spatial).

A *loss spec* is a small object that maps ``(outputs, batch)`` to ``(total_loss, parts)`` and also
says which output is the prediction to validate. Four of them cover the lecture:

==============================  ==================================================================
``Task(loss_fn, ...)``          one output vs one target, optional per-pixel weight c_p (slide 13)
``DeepSupervision(...)``        ``nets.side_outputs`` + ``losses.deep_supervision_loss`` (slide 25)
``MultiTask({...}, weights)``   per-task specs + ``losses.multitask_loss`` (slides 18-24)
``AttentionBoost(...)``         stage n weighted by c_n, c_{n+1} = beta_n * c_n (slide 17)
==============================  ==================================================================

Example (DCAN: segmentation and contour heads, each deeply supervised, equal weights)::

    spec = MultiTask({"seg": DeepSupervision(bce, task="seg", target="mask"),
                      "contour": DeepSupervision(bce, task="contour", target="contour")},
                     weights={"seg": 1.0, "contour": 1.0})
    total, parts = spec(model(batch["image"]), batch)

Conventions. ``loss_fn(logits, target, **kw)`` returns a scalar (``reduction="mean"``); when a
``weight`` key is given, the batch entry is passed as ``weight=``. If the output is spatially smaller
than the target (a valid-padding U-Net), the target and weight are centre-cropped to the output,
as in Ronneberger et al. (2015), where the loss is computed on the valid output tile only.
``kind`` says how the prediction is validated: ``"binary"`` (1 channel, sigmoid > 0.5, Dice/IoU/
precision/recall against the ``"mask"``-like target), ``"multiclass"`` (C channels, argmax, mean Dice
over classes 1..C-1 against integer labels) or ``"regression"`` (MSE and PSNR).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Mapping, Sequence

import torch

KINDS = ("binary", "multiclass", "regression")


def main_output_key(outputs: Mapping[str, torch.Tensor]) -> str:
    """The output a multi-output network is judged by: ``"seg"`` if present, else the last
    ``"stage<k>"``, else the first output that is not a side output."""
    if "seg" in outputs:
        return "seg"
    stages = sorted((k for k in outputs if k.startswith("stage") and k[5:].isdigit()), key=lambda k: int(k[5:]))
    if stages:
        return stages[-1]
    for k in outputs:
        if "/aux" not in k:
            return k
    raise ValueError(f"outputs has no main output among {list(outputs)}")


def select_output(outputs, key: str | None) -> torch.Tensor:
    """``outputs`` itself for a tensor (``key`` must be None), ``outputs[key]`` for a dict."""
    if isinstance(outputs, torch.Tensor):
        if key is not None:
            raise ValueError(f"the network returned a single tensor, but the loss spec asks for output {key!r}")
        return outputs
    if not isinstance(outputs, Mapping):
        raise TypeError(f"outputs must be a tensor or a dict of tensors, got {type(outputs).__name__}")
    key = main_output_key(outputs) if key is None else key
    if key not in outputs:
        raise ValueError(f"output {key!r} is not among the network's outputs {list(outputs)}")
    return outputs[key]


def batch_entry(batch: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in batch:
        raise ValueError(f"{what} {key!r} is not in the batch (keys: {sorted(batch)}); "
                         "request it from the dataset, e.g. targets=('weight_map',)")
    return batch[key]


def fit_to(t: torch.Tensor, like: torch.Tensor, name: str, kind: str = "binary") -> torch.Tensor:
    """Bring a target to the output ``like`` (B, C, *spatial) it is compared with.

    - ``kind="multiclass"`` and a (B, 1, *spatial) 0/1 mask against C > 1 channels: the mask becomes
      class indices (B, *spatial) int64 (class 1 = object), the form cross-entropy takes.
    - A target whose spatial size is larger than the output's (a valid-padding U-Net) is
      centre-cropped to it; a smaller one is an error.
    - Targets that are not maps (e.g. FourierNet amplitudes (B, N)) are returned unchanged.
    """
    if kind == "multiclass" and t.ndim == like.ndim and t.shape[1] == 1 and like.shape[1] > 1:
        t = t[:, 0].round().long() if t.is_floating_point() else t[:, 0].long()
    if t.ndim == like.ndim:
        have = t.shape[2:]
    elif t.ndim == like.ndim - 1 and kind == "multiclass":
        have = t.shape[1:]
    else:
        return t
    spatial = like.shape[2:]
    if tuple(have) == tuple(spatial):
        return t
    if any(h < s for h, s in zip(have, spatial)):
        raise ValueError(f"{name} spatial size {tuple(have)} is smaller than the output's {tuple(spatial)}")
    index = [slice(None)] * (t.ndim - len(spatial))
    index += [slice((h - s) // 2, (h - s) // 2 + s) for h, s in zip(have, spatial)]
    return t[tuple(index)]


class LossSpec(ABC):
    """Base class. Subclasses set ``kind`` and ``target`` and implement ``__call__`` and ``prediction``."""

    kind: str = "binary"
    target: str = "mask"
    epoch: int = 0

    @abstractmethod
    def __call__(self, outputs, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(total loss, {part name: detached part})`` for one batch."""

    @abstractmethod
    def prediction(self, outputs) -> torch.Tensor:
        """The logits (B, C, *spatial) that validation metrics are computed on."""

    def set_epoch(self, epoch: int) -> None:
        """The engine calls this before each epoch (for schedules such as decaying side weights)."""
        self.epoch = epoch


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    return kind


def _check_fn(loss_fn) -> None:
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (logits, target, **kw) -> scalar, got {type(loss_fn).__name__}")


class Task(LossSpec):
    """``loss_fn(outputs[output], batch[target], weight=batch[weight])``.

    ``output=None`` takes the tensor itself (single-output network) or the main output of a dict;
    ``weight=None`` calls ``loss_fn`` without ``weight``. Slide 13's weighted loss
    ``sum_p c_p * loss(y_p, yhat_p)`` is ``Task(losses.bce_loss, weight="weight_map")``.
    """

    def __init__(self, loss_fn: Callable, output: str | None = None, target: str = "mask",
                 weight: str | None = None, kind: str = "binary"):
        _check_fn(loss_fn)
        self.loss_fn, self.output, self.target, self.weight = loss_fn, output, target, weight
        self.kind = _check_kind(kind)

    def __call__(self, outputs, batch):
        logits = select_output(outputs, self.output)
        y = fit_to(batch_entry(batch, self.target, "target"), logits, f"target {self.target!r}", self.kind)
        kw = {}
        if self.weight is not None:
            kw["weight"] = fit_to(batch_entry(batch, self.weight, "weight"), logits, f"weight {self.weight!r}")
        loss = self.loss_fn(logits, y, **kw)
        return loss, {self.output or "loss": loss.detach()}

    def prediction(self, outputs):
        return select_output(outputs, self.output)


class DeepSupervision(LossSpec):
    """``losses.deep_supervision_loss(nets.side_outputs(outputs, task), batch[target], loss_fn, weights)``.

    Slide 25 (Zeng et al. 2017, 3D U-Net with multi-level deep supervision) and DCAN/VoxResNet:
    ``L = L_main + sum_k w_k L_aux_k``. ``weights`` is a list (main output first), ``None`` (the
    losses module's default, all 1) or a callable ``(epoch, n_outputs) -> list`` for weights decayed
    during training (the engine calls ``set_epoch`` before each epoch).
    """

    def __init__(self, loss_fn: Callable, task: str = "seg", target: str = "mask",
                 weights: Sequence[float] | Callable[[int, int], Sequence[float]] | None = None,
                 kind: str = "binary"):
        _check_fn(loss_fn)
        self.loss_fn, self.task, self.target, self.weights = loss_fn, task, target, weights
        self.kind = _check_kind(kind)

    def __call__(self, outputs, batch):
        from comp448 import losses, nets
        outs = nets.side_outputs(outputs, self.task)
        y = fit_to(batch_entry(batch, self.target, "target"), outs[0], f"target {self.target!r}", self.kind)
        w = self.weights(self.epoch, len(outs)) if callable(self.weights) else self.weights
        loss = losses.deep_supervision_loss(outs, y, self.loss_fn, weights=w)
        return loss, {self.task: loss.detach()}

    def prediction(self, outputs):
        return select_output(outputs, self.task)


class MultiTask(LossSpec):
    """``losses.multitask_loss({name: spec_name(outputs, batch)}, weights)`` (slide 18:
    the joint loss is a linear combination of the task losses). A plain callable in ``specs`` becomes
    ``Task(fn, output=name, target=name)``; a ``Task`` without ``output`` reads ``outputs[name]``.
    ``main`` names the task that validation judges (default: ``"seg"`` if present, else the first).
    """

    def __init__(self, specs: Mapping[str, LossSpec | Callable], weights: Mapping[str, float] | None = None,
                 main: str | None = None):
        if not isinstance(specs, Mapping) or not specs:
            raise ValueError("specs must be a non-empty dict {task name: loss spec or loss function}")
        self.specs = {}
        for name, s in specs.items():
            if not isinstance(s, LossSpec):
                _check_fn(s)
                s = Task(s, output=name, target=name)
            elif isinstance(s, Task) and s.output is None:
                s.output = name
            self.specs[name] = s
        self.weights = dict(weights) if weights is not None else {name: 1.0 for name in self.specs}
        unknown = set(self.weights) - set(self.specs)
        if unknown:
            raise ValueError(f"weights names tasks {sorted(unknown)} that are not in specs {list(self.specs)}")
        self.main = main or ("seg" if "seg" in self.specs else next(iter(self.specs)))
        if self.main not in self.specs:
            raise ValueError(f"main must be one of {list(self.specs)}, got {self.main!r}")
        self.kind, self.target = self.specs[self.main].kind, self.specs[self.main].target

    def __call__(self, outputs, batch):
        from comp448 import losses
        values, parts = {}, {}
        for name, s in self.specs.items():
            values[name], sub = s(outputs, batch)
            parts.update({name: values[name].detach()} if len(sub) == 1 else {f"{name}/{k}": v for k, v in sub.items()})
        return losses.multitask_loss(values, self.weights), parts

    def prediction(self, outputs):
        return self.specs[self.main].prediction(outputs)

    def set_epoch(self, epoch):
        self.epoch = epoch
        for s in self.specs.values():
            s.set_epoch(epoch)


class AttentionBoost(LossSpec):
    """Slide 17 (Gunesli et al., IEEE TMI 2020): stage n's loss is weighted per pixel by c_n,

        loss_n = sum_p c_n(p) * loss(y(p), yhat_n(p)),      c_{n+1}(p) = beta_n(p) * c_n(p),

    with beta_n from ``losses.attentionboost_update(c_n, sigmoid(stage_n).detach(), target)``
    (1 -/+ |yhat_n - 0.5| for a correct/incorrect pixel). The probabilities are detached: the weights
    are constants of each step, as in boosting. The total is ``sum_n stage_weights[n] * loss_n``.

    ``stages=None`` uses every ``"stage<k>"`` output in order. ``initial_weight=None`` starts from
    c_1 = 1; a batch key (e.g. ``"weight_map"``) starts from that map. ``renormalize=True`` rescales
    each c_{n+1} per image to the sum of c_n (AdaBoost renormalises; the paper does not say, so off
    by default; ``attentionboost_update(normalize=True)``).
    ``predict="last"`` validates the last stage, ``"mean"`` the mean of the stage probabilities.
    ``loss_fn`` must accept ``weight=`` (e.g. ``losses.bce_loss``).
    """

    def __init__(self, loss_fn: Callable, stages: Sequence[str] | None = None, target: str = "mask",
                 initial_weight: str | None = None, stage_weights: Sequence[float] | None = None,
                 renormalize: bool = False, predict: str = "last"):
        _check_fn(loss_fn)
        if predict not in ("last", "mean"):
            raise ValueError(f"predict must be 'last' or 'mean', got {predict!r}")
        self.loss_fn, self.stages, self.target = loss_fn, list(stages) if stages else None, target
        self.initial_weight, self.stage_weights = initial_weight, stage_weights
        self.renormalize, self.predict, self.kind = renormalize, predict, "binary"

    def stage_keys(self, outputs) -> list[str]:
        if not isinstance(outputs, Mapping):
            raise TypeError(f"AttentionBoost needs a dict of 'stage<k>' outputs, got {type(outputs).__name__}")
        keys = self.stages or sorted((k for k in outputs if k.startswith("stage") and k[5:].isdigit()),
                                     key=lambda k: int(k[5:]))
        if not keys:
            raise ValueError(f"no 'stage<k>' outputs among {list(outputs)}")
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise ValueError(f"stages {missing} are not among the outputs {list(outputs)}")
        if self.stage_weights is not None and len(self.stage_weights) != len(keys):
            raise ValueError(f"stage_weights has {len(self.stage_weights)} entries for {len(keys)} stages")
        return keys

    def __call__(self, outputs, batch):
        from comp448 import losses
        keys = self.stage_keys(outputs)
        first = outputs[keys[0]]
        y = fit_to(batch_entry(batch, self.target, "target"), first, f"target {self.target!r}")
        c = (torch.ones_like(y) if self.initial_weight is None else
             fit_to(batch_entry(batch, self.initial_weight, "initial_weight"), first, "initial_weight").to(y.dtype))
        total, parts = 0.0, {}
        for n, key in enumerate(keys):
            logits = outputs[key]
            loss_n = self.loss_fn(logits, y, weight=c)
            w = 1.0 if self.stage_weights is None else float(self.stage_weights[n])
            total = total + w * loss_n
            parts[key] = loss_n.detach()
            if n + 1 < len(keys):                      # c_{n+1} = beta_n * c_n
                c = losses.attentionboost_update(c, torch.sigmoid(logits.detach()), y,
                                                 normalize=self.renormalize)
        return total, parts

    def prediction(self, outputs):
        keys = self.stage_keys(outputs)
        if self.predict == "last":
            return outputs[keys[-1]]
        p = torch.stack([torch.sigmoid(outputs[k]) for k in keys]).mean(0).clamp(1e-6, 1 - 1e-6)
        return torch.logit(p)                         # logits of the mean probability


def as_spec(loss) -> LossSpec:
    """A ``LossSpec`` from a spec (returned as is), a loss function (``Task(fn)``) or a dict of
    per-task functions/specs (``MultiTask``)."""
    if isinstance(loss, LossSpec):
        return loss
    if isinstance(loss, Mapping):
        return MultiTask(loss)
    if callable(loss):
        return Task(loss)
    raise TypeError(f"loss must be a LossSpec, a loss function or a dict of them, got {type(loss).__name__}")
