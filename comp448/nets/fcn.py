"""Fully convolutional networks FCN-32s / FCN-16s / FCN-8s (slides 3-5).

Long, Shelhamer, Darrell. "Fully convolutional networks for semantic segmentation", CVPR 2015
(arXiv 1411.4038); reference Caffe code ``shelhamer/fcn.berkeleyvision.org`` (voc-fcn*s/net.py).

Slide 3: "Converts all fully connected layers to convolutions; adds a layer that predicts
probabilities of classes at each coarse output location; upsamples the coarse outputs to
pixel-dense outputs via deconvolution (backward strided convolution)."
Slide 5: "Combines layers of the feature hierarchy and refines the spatial precision of the output":
FCN-16s adds a prediction from pool4, FCN-8s one from pool3.

What is built (the reference configuration, ``base=64, fc_channels=4096``):

- VGG-16 convolutions (13 convs 3x3, pad 1, ReLU; channels 64,64 | 128,128 | 256x3 | 512x3 | 512x3),
  each group followed by a 2x2/2 max-pool (pool1..pool5, Caffe's ceil rounding). ``conv1_1`` has
  **pad 100**.
- fc6 -> 7x7 conv to 4096 (pad 0) + ReLU + Dropout(0.5); fc7 -> 1x1 conv to 4096 + ReLU + Dropout(0.5);
  ``score_fr``: 1x1 conv to ``num_classes``.
- Skips are fused by **summing class scores** (not by concatenating features):
  FCN-16s: ``upscore2(score_fr) + crop(score_pool4(pool4))``;
  FCN-8s: then ``upscore_pool4(.) + crop(score_pool3(pool3))``.
- Upsampling layers are ``ConvTranspose2d`` without bias, stride s, kernel 2s, initialised to a
  bilinear kernel on the class diagonal (:func:`bilinear_kernel`). The paper initialised them to
  bilinear and learned them; the reference code freezes them ("no significant difference").
  ``learnable_upsampling=True`` (default) learns them, ``False`` freezes them (then the learnable
  parameter count is the reference's: FCN-32s 134,346,581, FCN-16s 134,357,354, FCN-8s 134,362,751
  for 3 input channels and 21 classes; the upsampling weights add 127,008 in FCN-8s).
- Score layers start at zero (Caffe's default filler in the reference nets).
- ``at_once=True`` scales pool4 by 0.01 and pool3 by 1e-4 before their score layers, as in the
  reference "at-once" FCN-8s that is trained from VGG-16 in one step.

Alignment (why pad 100 and the crop offsets 19, 5, 9, 27, 31). Follow the centre of a feature
cell back to input coordinates: a conv/pool with kernel k, stride s, padding p maps feature
position x to input position ``s*x + (k-1)/2 - p``; a transposed conv maps input position x to
output position ``s*x + (k-1)/2 - p``. Composing these:

- pool5 cell x sits at input ``32x - 83.5`` (conv1_1's pad 100 gives the -99), fc6 (7x7, pad 0)
  moves it to ``32x + 12.5``; upscore (k64, s32) output y sits at input ``y - 19``:
  crop offset **19** (FCN-32s).
- upscore2 (k4, s2) output y sits at ``16y - 11.5``, pool4 cell p at ``16p - 91.5``:
  offset **5**. upscore16 (k32, s16) output: offset **27** (FCN-16s).
- upscore_pool4 output z sits at ``8z - 23.5``, pool3 cell p at ``8p - 95.5``: offset **9**;
  upscore8 (k16, s8) output: offset **31** (FCN-8s).

The pad of 100 makes every map large enough that each crop fits, so **any input size >= 1
works** and the output has exactly the input's size, each output pixel centred on its input pixel.

Output: logits ``(B, num_classes, H, W)`` (no softmax; the reference loss is softmax cross
entropy summed over pixels).

Width knob: ``base`` (VGG widths ``base * (1, 2, 4, 8, 8)``) and ``fc_channels``;
``FCN8s(1, 2, base=4, fc_channels=16)`` trains on a CPU in seconds.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_tensor
from ._blocks import check_image, check_int, check_prob, he_init

# (number of 3x3 convs, width multiplier of base) for the five VGG-16 groups
VGG16_GROUPS = ((2, 1), (2, 2), (3, 4), (3, 8), (3, 8))


def bilinear_kernel(channels: int, kernel_size: int) -> torch.Tensor:
    """Bilinear upsampling weights for a ``ConvTranspose2d(channels, channels, kernel_size)``.

    As in the reference ``surgery.upsample_filt``: ``factor = (k + 1) // 2``,
    ``center = factor - 1`` (k odd) or ``factor - 0.5`` (k even),
    ``w[i, j] = (1 - |i - center| / factor) * (1 - |j - center| / factor)``, placed on the
    channel diagonal (channel c upsamples only channel c). Returns ``(channels, channels, k, k)``.
    With ``kernel_size = 2s``, ``stride = s`` and ``padding = s // 2`` the transposed convolution
    equals bilinear interpolation (``align_corners=False``) away from the border.
    """
    check_int("channels", channels)
    check_int("kernel_size", kernel_size)
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    r = 1 - (torch.arange(kernel_size, dtype=torch.float64) - center).abs() / factor  # (k,)
    filt = (r[:, None] * r[None, :]).float()                                          # (k, k)
    weight = torch.zeros(channels, channels, kernel_size, kernel_size)
    idx = torch.arange(channels)
    weight[idx, idx] = filt
    return weight


def fc_as_conv(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A fully connected layer applied as a convolution (slide 3: "converts all fully connected layers
    to convolutions"; Long et al. 2015, Sec. 3.1 and Fig. 2).

    A classifier's fully connected layer reads a ``C x k x k`` feature map flattened in ``(c, u, v)``
    order (``torch.flatten``) and computes ``s_o = b_o + sum_{c,u,v} W[o, (c*k + u)*k + v] f[c, u, v]``.
    That is a ``k x k`` convolution (stride 1, no padding) with ``W`` reshaped to ``(O, C, k, k)``:
    on the classifier's own input size it gives the same ``O`` scores as a ``1 x 1`` map, on a
    larger map it slides the classifier over every ``k x k`` window, giving a heat map.
    (FCN's fc6 is this with C = 512, k = 7; ``load_torchvision_vgg16`` copies VGG-16's weights so.)

    Args:
        features: ``(B, C, H, W)`` float, ``H, W >= k``.
        weight: the ``nn.Linear`` weight ``(O, C * k * k)``; ``k`` is found from the shapes.
        bias: ``(O,)`` or None.
    Returns:
        ``(B, O, H - k + 1, W - k + 1)``.
    """
    check_tensor("features", features, floating=True, ndim=4)
    check_tensor("weight", weight, floating=True, ndim=2)
    C = features.shape[1]
    O, n_in = weight.shape
    k = math.isqrt(n_in // C) if C and n_in % C == 0 else 0
    if k < 1 or C * k * k != n_in:
        raise ValueError(f"weight must have shape (O, C*k*k) with C={C} the channels of features, "
                         f"got {tuple(weight.shape)} ({n_in} is not {C} times a square)")
    if bias is not None:
        check_tensor("bias", bias, floating=True, ndim=1)
        if bias.shape[0] != O:
            raise ValueError(f"bias must have shape ({O},) to match weight, got {tuple(bias.shape)}")
    if features.shape[-2] < k or features.shape[-1] < k:
        raise ValueError(f"features has spatial size {tuple(features.shape[-2:])}; the layer reads "
                         f"{k}x{k} windows, so H and W must be >= {k}")
    return F.conv2d(features, weight.reshape(O, C, k, k), bias)      # (B, O, H-k+1, W-k+1)


def fuse_scores(coarse: torch.Tensor, skip: torch.Tensor, up_weight: torch.Tensor, offset: int,
                stride: int = 2) -> torch.Tensor:
    """FCN skip fusion (slide 5): upsample the coarse class scores, crop the skip scores, add.

    ``F = up(coarse) + skip[..., o:o + h, o:o + w]`` with ``up`` the transposed convolution of
    ``up_weight`` (stride ``stride``, no padding, no bias) and ``(h, w)`` its output size. FCN-16s
    fuses ``upscore2(score_fr)`` with ``score_pool4`` at offset 5, FCN-8s then ``upscore_pool4(.)``
    with ``score_pool3`` at offset 9 (see the module docstring for where the offsets come from);
    FCN fuses by **summing class scores**, not by concatenating features. :class:`FCN16s` and
    :class:`FCN8s` call this function.

    Args:
        coarse: ``(B, K, h0, w0)`` scores at the coarser stride.
        skip: ``(B, K, H, W)`` scores at the finer stride, ``H >= offset + h``, ``W >= offset + w``.
        up_weight: ``(K, K, k, k)`` transposed-convolution weight (FCN: ``k = 2 * stride``, bilinear init).
        offset: crop offset ``o >= 0``, the same for rows and columns.
        stride: of the upsampling (2 in FCN's fusions).
    Returns:
        ``(B, K, h, w)`` with ``h = (h0 - 1) * stride + k``.
    """
    check_tensor("coarse", coarse, floating=True, ndim=4)
    check_tensor("skip", skip, floating=True, ndim=4)
    check_tensor("up_weight", up_weight, floating=True, ndim=4)
    check_int("offset", offset, lo=0)
    check_int("stride", stride)
    if up_weight.shape[0] != coarse.shape[1]:
        raise ValueError(f"up_weight must have shape (K, K_out, k, k) with K={coarse.shape[1]} the channels "
                         f"of coarse, got {tuple(up_weight.shape)}")
    up = F.conv_transpose2d(coarse, up_weight, stride=stride)         # (B, K, h, w)
    h, w = up.shape[-2:]
    if skip.shape[:2] != up.shape[:2] or skip.shape[-2] < offset + h or skip.shape[-1] < offset + w:
        raise ValueError(f"skip must have shape (B, K, H, W) = ({up.shape[0]}, {up.shape[1]}, >= {offset + h}, "
                         f">= {offset + w}) to be cropped at offset {offset} to the upsampled size {(h, w)}, "
                         f"got {tuple(skip.shape)}")
    return up + skip[..., offset:offset + h, offset:offset + w]


def _bilinear_upsampler(channels: int, stride: int, padding: int, learnable: bool) -> nn.ConvTranspose2d:
    up = nn.ConvTranspose2d(channels, channels, 2 * stride, stride=stride, padding=padding, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, 2 * stride))
    up.weight.requires_grad_(learnable)
    return up


class VGG16Encoder(nn.Module):
    """The 13 convolutions and 5 max-pools of VGG-16 (Simonyan & Zisserman 2015), written here.

    Args:
        in_channels: image channels (3 for ImageNet weights).
        base: width of the first group; groups have ``base * (1, 2, 4, 8, 8)`` channels.
        batch_norm: BatchNorm after every conv (VGG16-BN, as DeconvNet's encoder).
        first_padding: padding of conv1_1 (100 in the FCN reference, 1 otherwise).
        ceil_mode: pooling rounding (Caffe rounds up; PyTorch's default rounds down).
        return_indices: the pools also return their switches (argmax locations) for MaxUnpool2d.

    ``forward(x)`` returns a dict: ``"conv<k>"`` the last conv output of group k (before the
    pool, stride 2^(k-1)), ``"pool<k>"`` after the pool (stride 2^k), and with
    ``return_indices`` also ``"indices<k>"``.

    Initialisation (``reset_parameters``): He et al., "Delving deep into rectifiers", ICCV 2015
    (arXiv 1502.01852): every conv weight ~ N(0, 2 / fan_in) with fan_in = C_in * 3 * 3
    (``kaiming_normal_(mode="fan_in", nonlinearity="relu")``), biases 0, BatchNorm at (1, 0). Each
    conv + ReLU then keeps the mean square of the activations (He et al. Eq. 10), so a signal
    reaches conv5_3 at its input scale. FCN, DeconvNet and DCAN all started from ImageNet VGG-16
    weights, which comp448 does not ship (``load_torchvision_vgg16`` copies them in when you have
    them); trained from scratch, PyTorch's default init (uniform, variance 1 / (3 fan_in)) shrinks
    the signal about 6x per layer without BatchNorm and a narrow VGG hardly trains.
    """

    def __init__(self, in_channels: int = 3, base: int = 64, batch_norm: bool = False,
                 first_padding: int = 1, ceil_mode: bool = False, return_indices: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("base", base)
        check_int("first_padding", first_padding, lo=0)
        self.in_channels = in_channels
        self.widths = [base * m for _, m in VGG16_GROUPS]
        self.return_indices = return_indices
        self.blocks = nn.ModuleList()
        cin = in_channels
        for g, (n_convs, mult) in enumerate(VGG16_GROUPS):
            layers: list[nn.Module] = []
            for i in range(n_convs):
                pad = first_padding if (g == 0 and i == 0) else 1
                layers.append(nn.Conv2d(cin, base * mult, 3, padding=pad))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(base * mult))
                layers.append(nn.ReLU(inplace=True))
                cin = base * mult
            self.blocks.append(nn.Sequential(*layers))
        self.pools = nn.ModuleList(nn.MaxPool2d(2, 2, ceil_mode=ceil_mode, return_indices=return_indices)
                                   for _ in VGG16_GROUPS)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation (He et al. 2015, see the class docstring): conv weights
        N(0, 2 / fan_in), biases 0; BatchNorm weight 1, bias 0."""
        he_init(self)                          # kaiming_normal_(fan_in, relu), zero biases
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        check_image(x, self.in_channels)
        out: dict[str, torch.Tensor] = {}
        for k, (block, pool) in enumerate(zip(self.blocks, self.pools), start=1):
            x = block(x)                       # (B, widths[k-1], h, w)
            out[f"conv{k}"] = x
            if self.return_indices:
                x, idx = pool(x)               # (B, widths[k-1], h/2, w/2), switches of the same shape
                out[f"indices{k}"] = idx
            else:
                x = pool(x)
            out[f"pool{k}"] = x
        return out


class _FCN(nn.Module):
    """Shared code of FCN-32s/16s/8s (see the module docstring).

    Args:
        in_channels, num_classes: input channels (3) and classes (21, PASCAL VOC).
        base: first VGG width (64). fc_channels: width of fc6/fc7 (4096).
        dropout: after fc6 and fc7 (0.5). learnable_upsampling: learn the bilinear-initialised
            transposed convolutions (True, the paper) or freeze them (False, the reference code).
        at_once: scale pool4 by 0.01 and pool3 by 1e-4 (reference "at-once" FCN-8s).
    """
    stride: int = 32  # 32, 16 or 8, set by the subclasses

    def __init__(self, in_channels: int = 3, num_classes: int = 21, base: int = 64,
                 fc_channels: int = 4096, dropout: float = 0.5, learnable_upsampling: bool = True,
                 at_once: bool = False):
        super().__init__()
        check_int("in_channels", in_channels)
        check_int("num_classes", num_classes)
        check_int("base", base)
        check_int("fc_channels", fc_channels)
        check_prob("dropout", dropout)
        self.in_channels, self.num_classes = in_channels, num_classes
        self.encoder = VGG16Encoder(in_channels, base, first_padding=100, ceil_mode=True)
        w = self.encoder.widths
        self.fc6 = nn.Conv2d(w[4], fc_channels, 7)          # fc6 as a 7x7 conv, pad 0
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)   # fc7 as a 1x1 conv
        self.drop = nn.Dropout(dropout)
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        scores = [self.score_fr]
        if self.stride == 32:
            self.upscore = _bilinear_upsampler(num_classes, 32, 0, learnable_upsampling)
        else:
            self.upscore2 = _bilinear_upsampler(num_classes, 2, 0, learnable_upsampling)
            self.score_pool4 = nn.Conv2d(w[3], num_classes, 1)
            scores.append(self.score_pool4)
            if self.stride == 16:
                self.upscore16 = _bilinear_upsampler(num_classes, 16, 0, learnable_upsampling)
            else:
                self.upscore_pool4 = _bilinear_upsampler(num_classes, 2, 0, learnable_upsampling)
                self.score_pool3 = nn.Conv2d(w[2], num_classes, 1)
                scores.append(self.score_pool3)
                self.upscore8 = _bilinear_upsampler(num_classes, 8, 0, learnable_upsampling)
        for s in scores:
            nn.init.zeros_(s.weight)
            nn.init.zeros_(s.bias)
        self.scale_pool4, self.scale_pool3 = (0.01, 1e-4) if at_once else (1.0, 1.0)

    @staticmethod
    def _crop(x: torch.Tensor, offset: int, size) -> torch.Tensor:
        return x[..., offset:offset + size[0], offset:offset + size[1]]

    def _score_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The score layers' outputs, before any upsampling: ``"pool5"`` (``score_fr``), and
        ``"pool4"`` / ``"pool3"`` where the variant has those skips."""
        f = self.encoder(x)                                   # pool_k: (B, ., ~(H+198)/2^k, ...)
        h = self.drop(torch.relu(self.fc6(f["pool5"])))       # (B, fc, h32, w32), h32 = pool5 - 6
        h = self.drop(torch.relu(self.fc7(h)))                # (B, fc, h32, w32)
        scores = {"pool5": self.score_fr(h)}                  # (B, C, h32, w32)
        if self.stride <= 16:
            scores["pool4"] = self.score_pool4(f["pool4"] * self.scale_pool4)
        if self.stride == 8:
            scores["pool3"] = self.score_pool3(f["pool3"] * self.scale_pool3)
        return scores

    def _fuse_and_upsample(self, scores: dict[str, torch.Tensor], size) -> torch.Tensor:
        """Skip fusion and upsampling to ``size``: linear in ``scores`` (no bias after the score layers)."""
        if self.stride == 32:
            return self._crop(self.upscore(scores["pool5"]), 19, size)   # (B, C, H, W)
        # upscore2 (k4, s2, no bias) then + score_pool4 cropped at 5: (B, C, 2*h32+2, .)
        fuse = fuse_scores(scores["pool5"], scores["pool4"], self.upscore2.weight, 5)
        if self.stride == 16:
            return self._crop(self.upscore16(fuse), 27, size)  # (B, C, H, W)
        # upscore_pool4 (k4, s2) then + score_pool3 cropped at 9: stride 8
        fuse = fuse_scores(fuse, scores["pool3"], self.upscore_pool4.weight, 9)
        return self._crop(self.upscore8(fuse), 31, size)       # (B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.in_channels)
        return self._fuse_and_upsample(self._score_maps(x), x.shape[-2:])

    @torch.no_grad()
    def score_streams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """What each stream adds to the output logits (slide 5's three lines, on one input).

        Every step after the score layers is linear (bias-free transposed convolutions, crops,
        sums), so the output splits exactly into one full-size map per score layer:
        ``"pool5"`` (``score_fr``, upsampled through every later step), ``"pool4"`` (FCN-16s/8s)
        and ``"pool3"`` (FCN-8s). Each is ``(B, C, H, W)``; in eval mode (no dropout) their sum
        equals ``forward(x)``. Computed by running the fusion with the other streams set to zero;
        no gradients.
        """
        check_image(x, self.in_channels)
        scores = self._score_maps(x)
        return {name: self._fuse_and_upsample({k: v if k == name else torch.zeros_like(v)
                                               for k, v in scores.items()}, x.shape[-2:])
                for name in scores}


class FCN32s(_FCN):
    """FCN-32s: ``score_fr`` upsampled x32 in one step (slide 5, solid line). See module docstring."""
    stride = 32


class FCN16s(_FCN):
    """FCN-16s: stride-32 scores x2, summed with pool4 scores, then x16 (slide 5, dashed line)."""
    stride = 16


class FCN8s(_FCN):
    """FCN-8s: FCN-16s's fusion x2, summed with pool3 scores, then x8 (slide 5, dotted line)."""
    stride = 8


# torchvision's ``vgg16().features`` indices of the 13 convolutions, and its classifier Linears
_TV_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def load_torchvision_vgg16(model: nn.Module, state_dict=None) -> nn.Module:
    """Copy ImageNet VGG-16 weights in torchvision's layout into ``model`` (in place).

    ``model`` is a :class:`VGG16Encoder` or a network with ``.encoder`` (a VGG16Encoder without
    batch norm) and optionally ``.fc6`` / ``.fc7`` convolutions (the FCNs). Mapping:
    ``features.{0,2,5,...,28}.weight/bias`` -> the 13 encoder convs in order;
    ``classifier.0`` (Linear 25088 -> 4096) -> ``fc6`` reshaped to ``(4096, 512, 7, 7)`` (the Linear
    reads the pool5 map flattened in (C, H, W) order, so the 7x7 conv applied to one 7x7 window
    computes the same numbers); ``classifier.3`` (4096 -> 4096) -> ``fc7`` reshaped to
    ``(4096, 4096, 1, 1)``. ``classifier.6`` (the 1000 ImageNet classes) is not used.

    ``state_dict=None`` fetches ``torchvision.models.vgg16(weights="IMAGENET1K_V1")``, which needs
    torchvision installed and the weights in the torch hub cache (or a download). Note that
    torchvision's weights expect RGB input scaled to [0, 1] and normalised with the ImageNet
    mean/std, unlike the Caffe reference (BGR, mean-subtracted 0..255).
    """
    if isinstance(model, VGG16Encoder):
        encoder, fc6, fc7 = model, None, None
    elif isinstance(getattr(model, "encoder", None), VGG16Encoder):
        encoder, fc6, fc7 = model.encoder, getattr(model, "fc6", None), getattr(model, "fc7", None)
    else:
        raise TypeError(f"model must be a VGG16Encoder or have one as .encoder, got {type(model).__name__}")
    if state_dict is None:
        try:
            import torchvision
        except ImportError as e:
            raise ImportError("load_torchvision_vgg16(model, None) needs torchvision; "
                              "pass a state_dict with torchvision's VGG-16 keys instead") from e
        state_dict = torchvision.models.vgg16(weights="IMAGENET1K_V1").state_dict()
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}")

    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    if any(isinstance(m, nn.BatchNorm2d) for m in encoder.modules()):
        raise ValueError("model's encoder has batch norm; torchvision's plain vgg16 weights fit only "
                         "an encoder built with batch_norm=False")
    pairs = [(f"features.{i}", conv, None) for i, conv in zip(_TV_CONVS, convs)]
    if fc6 is not None:
        pairs.append(("classifier.0", fc6, fc6.weight.shape))
    if fc7 is not None:
        pairs.append(("classifier.3", fc7, fc7.weight.shape))

    def fetch(key, shape):
        if key not in state_dict:
            raise ValueError(f"state_dict has no key {key!r} (expected torchvision's VGG-16 layout)")
        t = torch.as_tensor(state_dict[key])
        if t.numel() != torch.Size(shape).numel():
            raise ValueError(f"state_dict[{key!r}] has shape {tuple(t.shape)}, which does not fit "
                             f"the model's {tuple(shape)}")
        if t.ndim == len(shape) and tuple(t.shape) != tuple(shape):
            raise ValueError(f"state_dict[{key!r}] has shape {tuple(t.shape)}, expected {tuple(shape)}")
        return t.reshape(shape)

    # check every tensor before copying any, so a failure leaves the model untouched
    new = [(mod, fetch(f"{key}.weight", mod.weight.shape), fetch(f"{key}.bias", mod.bias.shape))
           for key, mod, _ in pairs]
    with torch.no_grad():
        for mod, w, b in new:
            mod.weight.copy_(w)
            mod.bias.copy_(b)
    return model
