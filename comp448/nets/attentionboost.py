"""AttentionBoost: a multi-stage network trained with boosting-style pixel weights (slide 17).

Gunesli, Sokmensuer, Gunduz-Demir. "AttentionBoost: Learning what to attend for gland segmentation
in histopathological images by boosting fully convolutional networks", IEEE Transactions on
Medical Imaging, 2020.

Slide 17: a "multi-stage network with a loss adjustment mechanism based on adaptive boosting", which
"modulates the attention of each stage to correct the mistakes of previous stages by adjusting the
loss weight of each pixel prediction separately":

    beta_n(p) = 1 - |y_n(p) - 0.5|  if y_n(p) is correct,   1 + |y_n(p) - 0.5|  otherwise
    c_{n+1}(p) = beta_n(p) * c_n(p)
    loss_n = sum_I sum_p c_n(p) * loss(y(p), y_n(p))

The weights are computed by ``comp448.losses.attentionboost_update(c_n, sigmoid(out["stage<n>"]), target)``
(under ``torch.no_grad()`` / on detached probabilities: boosting treats them as constants); a
training step is::

    out = net(x); c = torch.ones_like(target); loss = 0
    for n in range(1, net.num_stages + 1):
        logits = out[f"stage{n}"]
        loss = loss + bce_loss(logits, target, weight=c)
        c = attentionboost_update(c, torch.sigmoid(logits).detach(), target)

**Our reading of the paper** (no public code was found; these are design decisions of this package):
the stages share one U-Net encoder and each stage has its own U-Net decoder and 1x1 head
(``padding="same"``, 2x2 up-convolutions), so every stage sees the same features but is fitted
under its own pixel weights; the default number of stages (4), the initial weights ``c_1 = 1`` and
using the last stage at test time are our choices too.

Output: ``{"stage1": ..., "stageK": ...}``, each ``(B, num_classes, H, W)`` logits
(``num_classes = 1``: one foreground logit, the slide's binary setting). Any input size
``>= 2**depth`` works. Width/depth knobs ``base``, ``depth``.
"""
from __future__ import annotations

import torch
from torch import nn

from ._blocks import Decoder, Encoder, check_image, check_int, check_min_size, he_init


class AttentionBoostNet(nn.Module):
    """Shared encoder + ``num_stages`` decoders, one output per boosting stage.

    Args:
        in_channels: image channels (3 for H&E). num_classes: logits per stage (1).
        num_stages: K, the number of stages (4). base, depth: U-Net width (64) and poolings (4).
        batch_norm: BatchNorm after every 3x3 conv.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1, num_stages: int = 4, base: int = 64,
                 depth: int = 4, batch_norm: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("num_stages", num_stages)
        check_int("base", base)
        check_int("depth", depth)
        self.in_channels, self.num_stages, self.depth = in_channels, num_stages, depth
        self.encoder = Encoder(in_channels, base, depth, "same", batch_norm)
        self.decoders = nn.ModuleList(Decoder(base, depth, "same", "deconv", batch_norm) for _ in range(num_stages))
        self.heads = nn.ModuleList(nn.Conv2d(base, num_classes, 1) for _ in range(num_stages))
        he_init(self)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        check_min_size(x, 2 ** self.depth, f"AttentionBoostNet with depth={self.depth}")
        skips, bottom = self.encoder(x)
        return {f"stage{k}": head(dec(skips, bottom))          # (B, num_classes, H, W)
                for k, (dec, head) in enumerate(zip(self.decoders, self.heads), start=1)}
