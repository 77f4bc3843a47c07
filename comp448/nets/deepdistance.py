"""DeepDistance: a multi-task deep regression model for cell detection (slide 20).

Koyuncu, Gunesli, Cetin-Atalay, Gunduz-Demir. "DeepDistance: A multi-task deep regression model
for cell detection in inverted microscopy images", Medical Image Analysis 63:101720, 2020;
authors' Keras code ``canfkoyuncu/DeepDistance`` (``deepDistanceModels.py``).

Slide 20 (multi-task regression network): one shared encoder, one decoder per regression target,
the **inner distance** ``d(q) = 1 / (1 + alpha ||q - C(a_i)||^2)`` inside cell a_i and the
**normalised outer distance** ``min_b ||q - b||^2 / max_r min_b ||r - b||^2`` (both 0 on the
background); the targets are ``comp448.targets.inner_distance_map`` / ``outer_distance_map``.

What is built (the authors' code; defaults give **43,914,690** parameters for 3 input channels,
the extended model **56,450,435**):

- U-Net-like encoder with ``'same'`` padding: blocks [3x3 conv + ReLU -> Dropout(0.2) ->
  3x3 conv + ReLU] with 64, 128, 256, 512, 1024 channels, 2x2 max-pools between them;
- **separate decoders, sharing only the encoder**; each level: nearest-neighbour x2 upsampling
  (Keras UpSampling2D, not a transposed conv) -> concatenation with the encoder map -> the same
  block (512, 256, 128, 64) -> a 1x1 conv to one channel;
- outputs ``{"inner", "outer"}``, each ``(B, 1, H, W)``, passed through a **ReLU** as in the
  authors' code (distances are non-negative; ``distance_activation="none"`` returns the raw
  regression instead);
- ``extended=True`` adds a third decoder: ``{"seg", "inner", "outer"}``. The authors put a sigmoid
  on the segmentation output and train it with MSE (weights 0.1, 1, 1 for seg, inner, outer; MSE
  for the distances, 1:1 in the 2-task model). Following the package's output convention "seg" is
  returned as **logits**: apply ``torch.sigmoid`` before an MSE to reproduce the authors' loss, or use
  a BCE on the logits.

Initialisation and dead ReLU heads. A ReLU output head whose pre-activations are all <= 0 gets
no gradient at all (a dead ReLU), and training never starts. With PyTorch's default init this
happened to about half the heads of small models: the default weights (variance 1 / (3 fan_in))
shrink the signal through the ~20 convs to almost 0, so a head's output is about its random bias,
negative for half of the seeds. Hence (``DeepDistance.reset_parameters``):

- every conv: He et al. 2015 ("Delving deep into rectifiers", arXiv 1502.01852), weights
  N(0, 2 / fan_in), biases 0 (``_blocks.he_init``, as comp448's U-Net), so the features reach the
  heads at order-1 scale and vary over the image;
- the two distance heads' bias: ``DIST_BIAS = 0.1`` (> 0), about the image mean of the distance
  targets (inner ~0.09, outer ~0.05 on ``synth_nuclei``), so every head starts alive wherever
  ``w . f > -0.1`` and its first predictions are near the targets' mean. Measured: 0 dead heads in
  180 (30 seeds x 3 small widths), against ~50% with the default init.

The authors' Keras initialiser is not verified here. This prevents dead STARTS only: a ReLU head
can still die during training when the mostly-zero targets push every output below 0 (seen when
overfitting one image at lr 3e-3); ``distance_activation="none"`` gives the raw regression, which
cannot die (clamp it at 0 when reading the map).

Any input size ``>= 2**depth`` works: for odd sizes the nearest upsampling goes to the skip's
exact size (for even sizes this is exactly the x2 of the paper). Width/depth knobs ``base``,
``depth``; ``DeepDistance(1, base=4, depth=2)`` trains on a CPU in seconds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice
from ._blocks import Decoder, Encoder, check_image, check_int, check_min_size, check_prob, he_init

DIST_BIAS = 0.1   # initial bias of the ReLU distance heads (> 0: no dead start, see the module docstring)


class DeepDistance(nn.Module):
    """Shared encoder + one decoder per distance map (+ a segmentation decoder if extended).

    Args:
        in_channels: image channels (3 in the authors' code).
        base, depth: width of the first level (64) and number of poolings (4).
        extended: add the segmentation decoder ("seg", logits, ``seg_channels`` channels).
        dropout: rate of the dropout inside every block (0.2).
        distance_activation: ``"relu"`` (authors' code) or ``"none"``.
        seg_channels: channels of the "seg" output (1, a foreground logit).
    """

    def __init__(self, in_channels: int = 3, base: int = 64, depth: int = 4, extended: bool = False,
                 dropout: float = 0.2, distance_activation: str = "relu", seg_channels: int = 1):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("base", base)
        check_int("depth", depth)
        check_int("seg_channels", seg_channels)
        check_prob("dropout", dropout)
        check_choice("distance_activation", distance_activation, ("relu", "none"))
        self.in_channels, self.depth, self.distance_activation = in_channels, depth, distance_activation
        self.encoder = Encoder(in_channels, base, depth, "same", block_dropout=dropout)
        tasks = (["seg"] if extended else []) + ["inner", "outer"]
        self.decoders = nn.ModuleDict({t: Decoder(base, depth, "same", "nearest", block_dropout=dropout)
                                       for t in tasks})
        self.heads = nn.ModuleDict({t: nn.Conv2d(base, seg_channels if t == "seg" else 1, 1) for t in tasks})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal convs with zero biases (He et al. 2015); the "inner"/"outer" heads' bias
        ``DIST_BIAS`` = 0.1 so that their ReLU starts alive (module docstring). "seg" keeps bias 0."""
        he_init(self)
        for t in ("inner", "outer"):
            nn.init.constant_(self.heads[t].bias, DIST_BIAS)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        check_min_size(x, 2 ** self.depth, f"DeepDistance with depth={self.depth}")
        skips, bottom = self.encoder(x)                        # bottom: (B, base*2^depth, H/2^d, W/2^d)
        out = {}
        for t, dec in self.decoders.items():
            y = self.heads[t](dec(skips, bottom))              # (B, 1, H, W)
            out[t] = F.relu(y) if (t != "seg" and self.distance_activation == "relu") else y
        return out
