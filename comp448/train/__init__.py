"""comp448.train: one training engine for every notebook, from a CPU to several GPUs.

    from comp448 import train, losses
    trainer = train.Trainer(model, train_set, val_set, loss=train.Task(losses.bce_loss),
                            config=train.TrainConfig(epochs=20, batch_size=8, lr=1e-3, out_dir="runs/unet"))
    history = trainer.fit()                 # tqdm progress, val_dice per epoch, checkpoints, plots

    python -m comp448.train --list
    python -m comp448.train unet-nuclei-cpu --out runs/unet            # CLI over the presets
    torchrun --standalone --nproc_per_node=8 -m comp448.train unet-nuclei-gpu --out runs/unet

Modules: ``engine`` (Trainer, TrainConfig, seeding, device/precision choice, run-size helpers),
``spec`` (loss specs for single, deeply supervised, multi-task and AttentionBoost outputs),
``presets`` (named runs for every main network), ``distributed`` (torchrun/DDP helpers).
"""
from comp448.train.engine import (AMP_MODES, Trainer, TrainConfig, fit, is_short_run, pick_device,
                                  resolve_amp, run_mode, scale_for_device, seed_everything)
from comp448.train.spec import AttentionBoost, DeepSupervision, LossSpec, MultiTask, Task, as_spec

__all__ = ["AMP_MODES", "Trainer", "TrainConfig", "fit", "is_short_run", "pick_device", "resolve_amp",
           "run_mode", "scale_for_device", "seed_everything", "AttentionBoost", "DeepSupervision",
           "LossSpec", "MultiTask", "Task", "as_spec", "get_preset", "list_presets", "run_preset"]


def __getattr__(name):
    if name in ("get_preset", "list_presets", "run_preset", "PRESETS"):
        from comp448.train import presets
        return getattr(presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
