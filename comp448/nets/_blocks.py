"""Shared 2D building blocks of the U-shaped networks (U-Net, DeepDistance, FourierNet,
AttentionBoost) and the input checks every 2D network uses.

- ``ConvBlock``: the "[3x3 conv + ReLU] x 2" unit of U-Net (slide 9), with an optional
  dropout between the two convolutions (DeepDistance) and optional batch norm.
- ``Encoder``: contracting path. ``depth`` max-pools; widths ``base * 2**level``.
- ``Decoder``: expansive path. Each level upsamples (a 2x2 transposed convolution that halves
  the channels, as in U-Net, or nearest-neighbour x2 that keeps them, as in DeepDistance),
  brings the skip and the upsampled map to one size, concatenates ``[skip, up]`` along the
  channels and applies a ``ConvBlock``.

Layouts: every tensor is ``(B, C, H, W)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_tensor

PADDINGS = ("valid", "same")


# ----------------------------------------------------------------------------- checks
def check_int(name: str, value, lo: int = 1) -> int:
    """A positive-integer hyper-parameter (channels, depth, width): TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    return value


def check_prob(name: str, value) -> float:
    """A dropout probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


def check_image(x, in_channels: int, name: str = "x") -> torch.Tensor:
    """``x`` must be a floating ``(B, in_channels, H, W)`` tensor."""
    check_tensor(name, x, floating=True, ndim=4)
    if x.shape[1] != in_channels:
        raise ValueError(f"{name} must have in_channels={in_channels} channels (dim 1), "
                         f"got shape {tuple(x.shape)}")
    return x


def check_min_size(x: torch.Tensor, min_size: int, why: str, name: str = "x") -> None:
    """Spatial size of ``x`` must be at least ``min_size`` in H and W."""
    h, w = x.shape[-2:]
    if h < min_size or w < min_size:
        raise ValueError(f"{name} has spatial size {(h, w)}; {why} needs H and W >= {min_size}")


def center_crop(x: torch.Tensor, size) -> torch.Tensor:
    """Crop the centre ``size = (h, w)`` of ``x`` (..., H, W); offset ``(H - h) // 2``.

    U-Net's "copy and crop" (slide 9, Ronneberger et al. 2015 Fig. 1): the encoder map is
    larger than the decoder map because valid convolutions lose a border.
    """
    check_tensor("x", x, min_ndim=2)
    h, w = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
    H, W = x.shape[-2:]
    if h > H or w > W or h < 0 or w < 0:
        raise ValueError(f"size {(h, w)} must fit inside x's spatial size {(H, W)}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top:top + h, left:left + w]


def crop_and_concat(skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """U-Net's "copy and crop" (slide 9): ``cat([center_crop(skip, up's size), up], dim=1)``.

    Slide 9: "deconvolution is applied on the concatenation of high-resolution features of an
    encoder layer and the output of the previous upsampling layer" (Ronneberger et al. 2015,
    Fig. 1, grey arrows). With unpadded convolutions the encoder map ``skip`` ``(B, C1, H, W)`` is
    larger than the upsampled map ``up`` ``(B, C2, h, w)``; it is centre-cropped (offset
    ``(H - h) // 2``) and put first. Returns ``(B, C1 + C2, h, w)``. The ``Decoder`` of
    ``padding="valid"`` networks (:class:`~comp448.nets.UNet`) uses this.
    """
    check_tensor("skip", skip, ndim=4)
    check_tensor("up", up, ndim=4)
    if skip.shape[0] != up.shape[0]:
        raise ValueError(f"skip and up must have the same batch size, got {tuple(skip.shape)} and {tuple(up.shape)}")
    if skip.shape[-2] < up.shape[-2] or skip.shape[-1] < up.shape[-1]:
        raise ValueError(f"skip {tuple(skip.shape)} must be at least as large as up {tuple(up.shape)} "
                         f"in H and W (it is cropped to up's size)")
    return torch.cat([center_crop(skip, up.shape[-2:]), up], dim=1)      # (B, C1 + C2, h, w)


def he_init(module: nn.Module) -> None:
    """He-normal weights, std sqrt(2 / fan_in) (U-Net paper, Sec. 3), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # ConvTranspose2d stores (C_in, C_out, k, k): its fan_in for the forward pass is fan_out here
            mode = "fan_out" if isinstance(m, nn.ConvTranspose2d) else "fan_in"
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- blocks
class ConvBlock(nn.Sequential):
    """conv3x3 -> [BN] -> ReLU -> [Dropout] -> conv3x3 -> [BN] -> ReLU.

    ``padding="valid"`` loses 2 pixels per conv (4 per block), ``"same"`` keeps the size.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: str = "same",
                 batch_norm: bool = False, dropout: float = 0.0):
        check_choice("padding", padding, PADDINGS)
        p = 1 if padding == "same" else 0
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate([(in_channels, out_channels), (out_channels, out_channels)]):
            layers.append(nn.Conv2d(cin, cout, 3, padding=p))
            if batch_norm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            if i == 0 and dropout > 0:
                layers.append(nn.Dropout(dropout))   # element-wise, as Keras Dropout
        super().__init__(*layers)


class Encoder(nn.Module):
    """Contracting path: ``depth + 1`` ConvBlocks with widths ``base * 2**i``, a 2x2/2 max-pool
    between consecutive blocks. ``forward`` returns ``(skips, bottom)``: the ``depth`` maps
    before each pool (shallow first) and the deepest map."""

    def __init__(self, in_channels: int, base: int, depth: int, padding: str = "same",
                 batch_norm: bool = False, block_dropout: float = 0.0):
        super().__init__()
        self.widths = [base * 2 ** i for i in range(depth + 1)]
        cins = [in_channels] + self.widths[:-1]
        self.blocks = nn.ModuleList(ConvBlock(ci, co, padding, batch_norm, block_dropout)
                                    for ci, co in zip(cins, self.widths))
        self.pool = nn.MaxPool2d(2, 2)

    def forward(self, x: torch.Tensor):
        skips = []
        for block in self.blocks[:-1]:
            x = block(x)              # (B, base*2^i, H_i, W_i)
            skips.append(x)
            x = self.pool(x)          # (B, base*2^i, H_i//2, W_i//2)
        return skips, self.blocks[-1](x)   # bottom: (B, base*2^depth, H_d, W_d)


class Decoder(nn.Module):
    """Expansive path matching an ``Encoder`` of the same ``base``/``depth``.

    ``upsample="deconv"``: ConvTranspose2d(2x2, stride 2) from ``w[i+1]`` to ``w[i]`` channels
    (U-Net's "up-convolution that halves the number of feature channels").
    ``upsample="nearest"``: nearest-neighbour x2, channels kept (DeepDistance's UpSampling2D).

    Size matching before the concatenation:
    - ``padding="valid"``: the skip is centre-cropped to the upsampled map (U-Net's crop);
    - ``padding="same"``: the upsampled map is brought to the skip's size (zero-padding at the
      bottom/right for deconv, nearest resampling to the exact size for nearest), so odd sizes
      work; for even sizes both are the plain x2 of the paper.
    """

    def __init__(self, base: int, depth: int, padding: str = "same", upsample: str = "deconv",
                 batch_norm: bool = False, block_dropout: float = 0.0):
        super().__init__()
        check_choice("padding", padding, PADDINGS)
        check_choice("upsample", upsample, ("deconv", "nearest"))
        self.padding, self.upsample = padding, upsample
        w = [base * 2 ** i for i in range(depth + 1)]
        self.ups = nn.ModuleList()
        self.blocks = nn.ModuleList()
        for i in reversed(range(depth)):  # deepest level first
            if upsample == "deconv":
                self.ups.append(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2))
                cin = 2 * w[i]
            else:
                self.ups.append(nn.Upsample(scale_factor=2, mode="nearest"))
                cin = w[i + 1] + w[i]
            self.blocks.append(ConvBlock(cin, w[i], padding, batch_norm, block_dropout))
        self.out_channels = w[0]

    def _match(self, up: torch.Tensor, skip: torch.Tensor):
        if self.padding == "valid":
            return up, center_crop(skip, up.shape[-2:])
        if up.shape[-2:] == skip.shape[-2:]:
            return up, skip
        if self.upsample == "nearest":
            return F.interpolate(up, size=skip.shape[-2:], mode="nearest"), skip
        dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
        return F.pad(up, (0, dw, 0, dh)), skip

    def forward(self, skips: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        for up, block, skip in zip(self.ups, self.blocks, reversed(skips)):
            if self.padding == "valid":                  # U-Net: copy and crop
                x = block(crop_and_concat(skip, up(x)))  # (B, w[i], h', w')
                continue
            u, s = self._match(up(x), skip)              # both (B, ., h, w)
            x = block(torch.cat([s, u], dim=1))          # (B, w[i], h', w')
        return x                                         # (B, base, H_out, W_out)
