"""Touching objects (slide 13): does the U-Net weight map help separate touching nuclei?

    python benchmarks/experiment_touching.py                     # defaults below, ~2 x 3 CPU-minutes
    python benchmarks/experiment_touching.py --epochs 8 --seeds 0 1 2

Two runs that differ ONLY in the per-pixel loss weight, same network, data, seed and schedule:

- ``plain``:  BCE, every pixel weight 1;
- ``weight map``: BCE weighted by ``comp448.targets.unet_weight_map`` (w_c + w0 exp(-(d1+d2)^2 / 2 sigma^2),
  w0 = 10, sigma = 5; Ronneberger et al. 2015), which is large in the thin background gaps between
  touching nuclei.

Network: the ``unet-nuclei-cpu`` U-Net (same padding, base 16, depth 3, one logit, BatchNorm).
Data: ``SegmentationDataset("nuclei", ...)`` with ``touching=0.8`` (many touching pairs).
Evaluation on the validation images: the prediction (sigmoid > 0.5) is split into connected
components (``skimage.measure.label``, 4-connectivity) and compared with the ground-truth instances
by ``comp448.metrics.object_f1`` (GlaS: a predicted object is a true positive if it covers >= 50% of
the ground-truth object it overlaps most); pixel Dice by ``comp448.metrics.dice_score``. Two touching
nuclei predicted as one blob count as one true positive at most, so object F1 drops where pixel
Dice does not. Prints one JSON line per run and a summary; ``--json PATH`` saves all.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from skimage.measure import label as connected_components


def evaluate(trainer, val_set) -> dict:
    from comp448 import metrics
    f1, dice, n_pred, n_gt = [], [], [], []
    for i in range(len(val_set)):
        s = val_set[i]
        prob = trainer.predict(s["image"][None])[0, 0].cpu().numpy()
        pred = prob > 0.5
        gt = s["labels"].numpy()
        comps = connected_components(pred, connectivity=1)
        f1.append(metrics.object_f1(comps, gt))
        dice.append(metrics.dice_score(pred, gt > 0))
        n_pred.append(int(comps.max()))
        n_gt.append(int(gt.max()))
    return {"object_f1": float(np.mean(f1)), "dice": float(np.mean(dice)),
            "objects_predicted": int(np.sum(n_pred)), "objects_true": int(np.sum(n_gt))}


def run(weighted: bool, seed: int, a) -> dict:
    from comp448 import augment as A, data, losses, nets
    from comp448.train import Task, Trainer, TrainConfig, seed_everything
    seed_everything(seed)
    gen = dict(n_objects=a.n_objects, touching=a.touching)
    aug = A.Compose([A.RandomFlip(), A.RandomRot90()])
    train = data.SegmentationDataset("nuclei", a.n_train, size=a.size, seed=seed, augment=aug,
                                     targets=("weight_map",), progress=False, **gen)
    val = data.SegmentationDataset("nuclei", a.n_val, size=a.size, seed=seed + 10_000, progress=False, **gen)
    model = nets.UNet(1, 1, base=16, depth=3, padding="same", batch_norm=True, dropout=0.0)
    loss = Task(losses.bce_loss, weight="weight_map" if weighted else None)
    cfg = TrainConfig(epochs=a.epochs, batch_size=8, lr=3e-3, scheduler="cosine", device="cpu", amp="none",
                      compile=False, seed=seed, progress=False, plot=False, restore_best=False)
    t0 = time.perf_counter()
    trainer = Trainer(model, train, None, loss, cfg)
    trainer.fit()
    res = {"run": "weight map" if weighted else "plain", "seed": seed, "train_s": time.perf_counter() - t0,
           "train_loss": trainer.history[-1]["train_loss"], **evaluate(trainer, val)}
    print(json.dumps(res), flush=True)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-val", type=int, default=16)
    p.add_argument("--n-objects", type=int, default=15)
    p.add_argument("--touching", type=float, default=0.8)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--json")
    a = p.parse_args(argv)
    results = [run(w, s, a) for s in a.seeds for w in (False, True)]
    summary = {}
    for name in ("plain", "weight map"):
        rs = [r for r in results if r["run"] == name]
        summary[name] = {k: float(np.mean([r[k] for r in rs])) for k in ("object_f1", "dice", "objects_predicted")}
    summary["objects_true"] = results[0]["objects_true"]
    print(json.dumps({"summary": summary, "args": vars(a)}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": results, "summary": summary, "args": vars(a)}, f, indent=2)
    return results


if __name__ == "__main__":
    main()
