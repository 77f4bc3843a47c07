"""Run by tests/train/test_distributed.py under torchrun (2 CPU processes, gloo), or directly (1 process).

Trains the stand-in net on the stand-in data with a global batch of 8 and writes, from rank 0,
``{"state": state_dict, "history": [...], "world_size": W}`` to the path given as argv[1].
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _standins import Squares, bce, small_net  # noqa: E402

from comp448.train import Task, Trainer, TrainConfig, seed_everything  # noqa: E402
from comp448.train import distributed as D  # noqa: E402


def run(out: str | None, epochs: int = 3) -> dict:
    info = D.init_distributed()
    seed_everything(0)
    model = small_net()
    cfg = TrainConfig(epochs=epochs, batch_size=8, lr=0.05, optimizer="sgd", momentum=0.9, scheduler="cosine",
                      grad_clip=5.0, device="cpu", compile=False, progress=False, plot=False, restore_best=False)
    trainer = Trainer(model, Squares(32, augment=False), Squares(8, seed=1), loss=Task(bce), config=cfg)
    trainer.fit()
    result = {"state": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
              "history": trainer.history, "world_size": info.world_size}
    if out is not None and info.is_main:
        torch.save(result, out)
    D.cleanup()
    return result


if __name__ == "__main__":
    run(sys.argv[1])
