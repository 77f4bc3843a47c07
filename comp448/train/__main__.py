"""``python -m comp448.train PRESET --out DIR [options]``: train a preset, write metrics/checkpoints/plots.

Examples::

    python -m comp448.train --list
    python -m comp448.train unet-nuclei-cpu --out runs/unet-cpu
    python -m comp448.train unet-nuclei-gpu --out runs/unet --epochs 100 --batch-size 16 --amp bf16
    python -m comp448.train unet-nuclei-cpu --out runs/unet-cpu --resume runs/unet-cpu/last.pt --epochs 20
    torchrun --standalone --nproc_per_node=8 -m comp448.train unet-nuclei-gpu --out runs/unet

DIR receives ``metrics.json`` (``val_dice`` and the rest of the best epoch's record, the history and
the config), ``last.pt`` / ``best.pt`` and ``curves.png`` / ``predictions.png``.
"""
from __future__ import annotations

import argparse
import json
import sys


def _bool(s: str):
    if s in ("auto",):
        return "auto"
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off/auto, got {s!r}")


def _size(s: str):
    parts = [int(p) for p in s.lower().replace("x", ",").split(",") if p]
    return parts[0] if len(parts) == 1 else tuple(parts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m comp448.train", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", nargs="?", help="preset name (see --list)")
    p.add_argument("--list", action="store_true", help="list the presets and exit")
    p.add_argument("--out", help="output folder (metrics.json, checkpoints, plots)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="global batch (split over torchrun processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:1 | mps")
    p.add_argument("--amp", choices=["auto", "none", "bf16", "fp16"])
    p.add_argument("--compile", type=_bool, help="on | off | auto")
    p.add_argument("--channels-last", type=_bool, help="on | off | auto")
    p.add_argument("--grad-clip", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, dest="num_workers")
    p.add_argument("--early-stopping", type=int, help="patience (validations without improvement)")
    p.add_argument("--max-steps", type=int, dest="max_steps_per_epoch", help="cap optimiser steps per epoch")
    p.add_argument("--size", type=_size, help="image size, e.g. 128 or 32x64x64")
    p.add_argument("--n-train", type=int)
    p.add_argument("--n-val", type=int)
    p.add_argument("--model", type=json.loads, dest="model_kwargs", help='network kwargs as JSON, e.g. \'{"base": 8}\'')
    p.add_argument("--full", action="store_true", help="no automatic shortening without a GPU")
    p.add_argument("--resume", help="a last.pt to continue from")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-plots", action="store_true")
    return p


def main(argv=None) -> int:
    from comp448.train import distributed as D, presets
    args = parser().parse_args(argv)
    if args.list:
        for name in presets.list_presets():
            print(f"{name:28s} {presets.get_preset(name).summary}")
        return 0
    if not args.preset:
        parser().error("a preset name is required (see --list)")
    if args.preset not in presets.PRESETS:
        parser().error(f"unknown preset {args.preset!r}; choose from {presets.list_presets()}")
    if not args.out:
        parser().error("--out DIR is required")
    info = D.init_distributed()
    try:
        overrides = {k: getattr(args, k) for k in ("epochs", "lr", "device", "amp", "compile", "channels_last",
                                                   "grad_clip", "seed", "num_workers", "early_stopping",
                                                   "max_steps_per_epoch")}
        overrides["batch_size"] = args.batch_size
        if args.no_progress:
            overrides["progress"] = False
        if args.no_plots:
            overrides["plot"] = False
        trainer = presets.run_preset(args.preset, out_dir=args.out, resume=args.resume, size=args.size,
                                     n_train=args.n_train, n_val=args.n_val, model_kwargs=args.model_kwargs,
                                     full=args.full, **overrides)
        if info.is_main:
            s = trainer.summary()
            shown = {k: s[k] for k in ("val_dice", "val_loss", "val_mse", "train_loss", "best_epoch",
                                       "epochs_run", "wall_time_s") if k in s}
            print(json.dumps(shown))
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
