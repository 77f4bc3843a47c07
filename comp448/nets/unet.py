"""U-Net (slide 9) and a multi-task U-Net with one decoder per task (slide 18).

Ronneberger, Fischer, Brox. "U-Net: Convolutional networks for biomedical image segmentation",
MICCAI 2015 (arXiv 1505.04597).

Slide 9: "Long skip connections are defined between an encoder layer and the corresponding
decoder layer. Deconvolution is applied on the concatenation of high-resolution features of an
encoder layer and the output of the previous upsampling layer. U-shaped architecture with an
equal number of downsampling and upsampling layers."

What :class:`UNet` builds at the defaults (the paper's Fig. 1, 1 input channel, 2 classes,
**31,030,658** parameters):

- contracting path: ``depth = 4`` times [3x3 **unpadded** conv + ReLU] x 2 then 2x2/2 max-pool;
  widths 64, 128, 256, 512, then the bottom block at 1024;
- Dropout(0.5) at the end of the contracting path (the paper says "drop-out layers at the end of
  the contracting path"; the rate 0.5 is our choice, Caffe's usual value);
- expansive path: 2x2 up-convolution halving the channels -> concatenation with the
  **centre-cropped** encoder map ("copy and crop") -> [3x3 conv + ReLU] x 2;
- a final 1x1 conv to ``num_classes``: 23 convolutions in all;
- He-normal initial weights, std sqrt(2/N) with N the fan-in (paper, Sec. 3).

Valid convolutions make the output smaller than the input (572 -> 388) and admit only some input
sizes: every map before a pool must have an even size. :func:`unet_output_size` gives the output
size and raises a ValueError that lists the nearest valid input sizes. ``padding="same"`` pads
every 3x3 conv by 1 (as MONAI's BasicUNet): the output has the input's size, and any size
``>= 2**depth`` works (after an odd-sized pool the upsampled map is zero-padded by one row/column
at the bottom/right to the skip's size).

Output: logits ``(B, num_classes, H_out, W_out)``. Width/depth knobs: ``base``, ``depth``;
``UNet(1, 2, base=4, depth=2, padding="same")`` trains on a CPU in seconds.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .._checks import check_choice
from ._blocks import PADDINGS, Decoder, Encoder, center_crop, check_image, check_int, check_min_size, \
    check_prob, crop_and_concat, he_init

__all__ = ["UNet", "MultiTaskUNet", "unet_output_size", "center_crop", "crop_and_concat"]


def _output_size_1d(n: int, depth: int):
    """Output size of a valid-padding U-Net for input size n, or None if n is not admissible."""
    for _ in range(depth):          # encoder levels: two 3x3 valid convs, then a 2x2 pool
        n -= 4
        if n <= 0 or n % 2:
            return None
        n //= 2
    n -= 4                          # bottom block
    if n <= 0:
        return None
    for _ in range(depth):          # decoder levels: x2 up-convolution, two 3x3 valid convs
        n = 2 * n - 4
        if n <= 0:
            return None
    return n


def _nearest_valid(n: int, depth: int) -> list[int]:
    """The closest admissible input sizes below and above n (valid padding)."""
    out = []
    step = 2 ** depth
    below = next((m for m in range(n - 1, max(n - 2 * step, 0), -1) if _output_size_1d(m, depth)), None)
    if below is not None:
        out.append(below)
    m = n + 1
    while _output_size_1d(m, depth) is None:
        m += 1
    return out + [m]


def unet_output_size(input_size, depth: int = 4, padding: str = "valid"):
    """Spatial output size of :class:`UNet` for ``input_size`` (an int or an ``(H, W)`` pair).

    ``padding="valid"``: raises ValueError if a size is not admissible, naming the nearest valid
    sizes (e.g. ``unet_output_size(572) == 388``; 570 suggests 556 and 572).
    ``padding="same"``: returns the input size (any size ``>= 2**depth``).
    """
    check_int("depth", depth)
    check_choice("padding", padding, PADDINGS)
    sizes = (input_size,) if isinstance(input_size, int) else tuple(input_size)
    for s in sizes:
        check_int("input_size", s)
    out = []
    for s in sizes:
        if padding == "same":
            if s < 2 ** depth:
                raise ValueError(f"input_size {s} is too small for depth={depth} with padding='same': "
                                 f"it must be >= {2 ** depth}")
            out.append(s)
            continue
        o = _output_size_1d(s, depth)
        if o is None:
            raise ValueError(f"input_size {s} is not valid for a U-Net with depth={depth} and "
                             f"padding='valid' (every map before a pool must be even and no map may "
                             f"vanish); nearest valid sizes: {_nearest_valid(s, depth)}")
        out.append(o)
    return out[0] if isinstance(input_size, int) else tuple(out)


def _check_size(x: torch.Tensor, depth: int, padding: str) -> None:
    if padding == "same":
        check_min_size(x, 2 ** depth, f"a U-Net with depth={depth} and padding='same'")
        return
    for s in x.shape[-2:]:
        if _output_size_1d(int(s), depth) is None:
            raise ValueError(f"x has spatial size {tuple(x.shape[-2:])}; {s} is not a valid input size for "
                             f"a U-Net with depth={depth} and padding='valid'; nearest valid sizes: "
                             f"{_nearest_valid(int(s), depth)} (or use padding='same')")


class UNet(nn.Module):
    """U-Net of Ronneberger et al. 2015 (see module docstring).

    Args:
        in_channels, num_classes: input channels and output classes (1 and 2 in the paper).
        base: width of the first level (64). depth: number of poolings (4).
        padding: ``"valid"`` (paper, crop-and-concatenate) or ``"same"``.
        batch_norm: BatchNorm after every 3x3 conv (not in the paper).
        dropout: dropout rate at the end of the contracting path (0 disables it).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 64, depth: int = 4,
                 padding: str = "valid", batch_norm: bool = False, dropout: float = 0.5):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("base", base)
        check_int("depth", depth)
        check_choice("padding", padding, PADDINGS)
        check_prob("dropout", dropout)
        self.in_channels, self.num_classes, self.depth, self.padding = in_channels, num_classes, depth, padding
        self.encoder = Encoder(in_channels, base, depth, padding, batch_norm)
        self.drop = nn.Dropout(dropout)
        self.decoder = Decoder(base, depth, padding, "deconv", batch_norm)
        self.head = nn.Conv2d(base, num_classes, 1)
        he_init(self)

    def features(self, x: torch.Tensor):
        """``(skips, bottom)`` of the contracting path, after the input checks and the dropout."""
        check_image(x, self.in_channels)
        _check_size(x, self.depth, self.padding)
        skips, bottom = self.encoder(x)          # bottom: (B, base*2^depth, h, w)
        return skips, self.drop(bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, bottom = self.features(x)
        return self.head(self.decoder(skips, bottom))   # (B, num_classes, H_out, W_out)


def _check_tasks(tasks) -> dict[str, int]:
    if not isinstance(tasks, Mapping) or not tasks:
        raise TypeError(f"tasks must be a non-empty mapping task name -> output channels, got {tasks!r}")
    for name, c in tasks.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"tasks keys must be non-empty names without '/', got {name!r}")
        check_int(f"tasks[{name!r}]", c)
    return dict(tasks)


class MultiTaskUNet(nn.Module):
    """Shared U-Net encoder, one full decoder (and 1x1 head) per task (slide 18).

    Slide 18: "They consist of a shared encoder path and multiple decoder paths, one defined for
    each task. Joint loss is defined usually as a linear combination of losses defined on all
    tasks" (``comp448.losses.multitask_loss``). DeepDistance (Koyuncu et al. 2020) is the lab's
    instance of this design.

    Args:
        in_channels: input channels. tasks: ``{name: out_channels}``, e.g. the default
            ``{"seg": 2, "contour": 2}`` (object and contour maps as in DCAN).
        base, depth, padding, batch_norm, dropout: as :class:`UNet`.

    Output: ``{name: (B, out_channels, H_out, W_out)}`` in the order of ``tasks``, logits.
    """

    def __init__(self, in_channels: int = 1, tasks: Mapping[str, int] | None = None, base: int = 64,
                 depth: int = 4, padding: str = "valid", batch_norm: bool = False, dropout: float = 0.5):
        super().__init__()
        tasks = _check_tasks({"seg": 2, "contour": 2} if tasks is None else tasks)
        check_int("in_channels", in_channels)
        check_int("base", base)
        check_int("depth", depth)
        check_choice("padding", padding, PADDINGS)
        check_prob("dropout", dropout)
        self.in_channels, self.depth, self.padding, self.tasks = in_channels, depth, padding, tasks
        self.encoder = Encoder(in_channels, base, depth, padding, batch_norm)
        self.drop = nn.Dropout(dropout)
        self.decoders = nn.ModuleDict({t: Decoder(base, depth, padding, "deconv", batch_norm) for t in tasks})
        self.heads = nn.ModuleDict({t: nn.Conv2d(base, c, 1) for t, c in tasks.items()})
        he_init(self)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        _check_size(x, self.depth, self.padding)
        skips, bottom = self.encoder(x)
        bottom = self.drop(bottom)
        return {t: self.heads[t](self.decoders[t](skips, bottom)) for t in self.tasks}
