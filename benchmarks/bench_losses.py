"""Forward + backward time of comp448's losses vs MONAI's equivalents, side by side in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_losses.py            # defaults below
    .venv/bin/python benchmarks/bench_losses.py --batch 16 --size 256 --classes 3 --threads 2

Each case times loss(logits, target) + backward() on the CPU for a batch of B images of
1 x S x S (the generalised Dice on C x S x S logits with integer labels), after warm-up runs,
as the median over repeats. comp448 and MONAI alternate inside every repeat (the order flips
each time) so that load from other processes hits both alike. MONAI is a test-only
dependency of comp448; it is needed here as the reference.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from comp448.losses import dice_loss, focal_loss, generalized_dice_loss, tversky_loss


def make_cases(batch: int, size: int, classes: int, seed: int = 0):
    from monai import losses as ml

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 1, size, size, generator=g) * 3              # (B, 1, S, S)
    mask = (torch.rand(batch, 1, size, size, generator=g) > 0.7).float()     # (B, 1, S, S)
    logits_c = torch.randn(batch, classes, size, size, generator=g) * 3      # (B, C, S, S)
    labels = torch.randint(0, classes, (batch, 1, size, size), generator=g)  # (B, 1, S, S)
    eps = dict(smooth_nr=1e-5, smooth_dr=1e-5)
    return [
        ("focal (gamma=2)", logits, mask, lambda z, y: focal_loss(z, y, gamma=2.0),
         ml.FocalLoss(gamma=2.0, use_softmax=False)),
        ("focal (gamma=2, alpha=0.25)", logits, mask, lambda z, y: focal_loss(z, y, gamma=2.0, alpha=0.25),
         ml.FocalLoss(gamma=2.0, alpha=0.25, use_softmax=False)),
        ("Dice (slide 15)", logits, mask, dice_loss, ml.DiceLoss(sigmoid=True, **eps)),
        ("Dice (V-Net squared)", logits, mask, lambda z, y: dice_loss(z, y, squared=True),
         ml.DiceLoss(sigmoid=True, squared_pred=True, **eps)),
        ("Tversky (0.3, 0.7)", logits, mask, lambda z, y: tversky_loss(z, y, 0.3, 0.7),
         ml.TverskyLoss(sigmoid=True, alpha=0.3, beta=0.7, **eps)),
        (f"generalised Dice (C={classes})", logits_c, labels, generalized_dice_loss,
         ml.GeneralizedDiceLoss(softmax=True, to_onehot_y=True, **eps)),
    ]


def time_once(fn, logits, target) -> tuple[float, float]:
    z = logits.clone().requires_grad_(True)
    t0 = time.perf_counter()
    loss = fn(z, target)
    loss.backward()
    return time.perf_counter() - t0, float(loss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--classes", type=int, default=2, help="classes of the generalised Dice case (>= 2)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cases = [c for c in make_cases(args.batch, args.size, args.classes) if args.only.lower() in c[0].lower()]
    rows = []
    for name, logits, target, ours, theirs in tqdm(cases, desc="losses"):
        for _ in range(args.warmup):
            time_once(ours, logits, target)
            time_once(theirs, logits, target)
        t_ours, t_theirs = [], []
        for r in range(args.repeats):
            pair = [(ours, t_ours), (theirs, t_theirs)]
            for fn, acc in (pair if r % 2 == 0 else pair[::-1]):
                dt, value = time_once(fn, logits, target)
                acc.append(dt)
        v_ours, v_theirs = float(ours(logits, target)), float(theirs(logits, target))
        rows.append((name, statistics.median(t_ours) * 1e3, statistics.median(t_theirs) * 1e3,
                     abs(v_ours - v_theirs)))

    print(f"\nforward + backward, CPU, torch {torch.__version__}, {args.threads} thread(s), "
          f"batch {args.batch} x 1 x {args.size} x {args.size}, median of {args.repeats} "
          f"(after {args.warmup} warm-up)\n")
    print(f"| loss | comp448 (ms) | MONAI (ms) | comp448 / MONAI | abs. diff. of the values |")
    print(f"|---|---:|---:|---:|---:|")
    for name, a, b, d in rows:
        print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} | {d:.1e} |")


if __name__ == "__main__":
    main()
