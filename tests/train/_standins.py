"""Tiny stand-ins for the tests: a squares dataset yielding dicts and a small conv net.

They depend on nothing but torch, so the engine is tested apart from comp448.data/nets.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset


class Squares(Dataset):
    """Noisy bright rectangles: ``{"image": (1, S, S), "mask": (1, S, S), "weight_map": (1, S, S)}``.

    ``augment=True`` flips each sample with the *global* torch RNG, so a run's result depends on the
    RNG state and the resume test can tell whether it was restored.
    """

    def __init__(self, n: int = 32, size: int = 16, seed: int = 0, augment: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.masks = torch.zeros(n, 1, size, size)
        for i in range(n):
            h, w = torch.randint(3, size // 2, (2,), generator=g).tolist()
            y, x = torch.randint(0, size - h, (1,), generator=g).item(), torch.randint(0, size - w, (1,), generator=g).item()
            self.masks[i, 0, y:y + h, x:x + w] = 1.0
        self.images = self.masks + 0.35 * torch.randn(self.masks.shape, generator=g)
        self.augment = augment

    def __len__(self):
        return len(self.masks)

    def __getitem__(self, i):
        img, m = self.images[i], self.masks[i]
        if self.augment and torch.rand(()) < 0.5:
            img, m = img.flip(-1), m.flip(-1)
        return {"image": img, "mask": m, "weight_map": 1.0 + m}


def small_net(dropout: float = 0.0, out_channels: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout),
                         nn.Conv2d(8, out_channels, 3, padding=1))


def bce(logits, target, weight=None):
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)
