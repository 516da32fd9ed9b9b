"""U-Net trace segmenter: RGB page ``[B, 3, H, W]`` in [0, 1] -> logits ``[B, C, H, W]``.

A pure ``torch.nn.Module`` (no Lightning, no Hydra), so the digitizer can load a checkpoint with
torch alone. Channel 0 of the output is the trace-vs-background logit (trace = ``mask > 0`` in an
``ecgsynth`` batch); further channels are free for other classes.

* Any ``H, W``: the input is padded (replicate) to a multiple of ``2**depth`` and the output is
  cropped back, so an output pixel always matches its input pixel.
* Normalisation of the input happens inside the module (fixed per-channel mean/std buffers), so
  callers pass images exactly as ``ecgsynth`` and :mod:`digitizer.io` produce them.
* ``norm="batch"`` (default): in ``eval()`` the network is purely convolutional, so a crop, a
  full page and a tile of it see the same function (crops at training time, pages at inference)
  and :meth:`UNet.predict_proba` can tile large pages exactly. Batch statistics are taken over
  ``B x H x W`` pixels, so even a batch of one crop has thousands of samples per channel.
  ``norm="group"`` (GroupNorm) is independent of the batch but normalises over the whole input,
  which then differs between a training crop and an inference page.
* Checkpoints are plain dicts (:func:`save_checkpoint` / :func:`load_checkpoint`), not Lightning
  checkpoints: ``{"format": "ecgsynth-unet/1", "config", "state_dict", "meta"}``.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = [
    "CHECKPOINT_FORMAT",
    "VARIANTS",
    "UNet",
    "UNetConfig",
    "build_unet",
    "load_checkpoint",
    "save_checkpoint",
    "warm_start",
]

CHECKPOINT_FORMAT = "ecgsynth-unet/1"


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`UNet` (everything needed to rebuild it from a checkpoint)."""

    in_channels: int = 3
    out_channels: int = 1  # channel 0 = trace logit, channel 1 (if any) = calibration pulse
    px_per_mm: float = 0.0  # the page scale the model reads (0: the page's own scale)
    depth: int = 4  # number of 2x downsamplings; inputs are padded to a multiple of 2**depth
    width: int = 16  # channels at full resolution; doubled at every level...
    max_width: int = 256  # ...up to this
    norm: str = "batch"  # batch | group | none
    full_res_convs: int = 1  # 3x3 convs at full resolution, in the encoder and in the decoder
    encoder_convs: int = 2  # per lower level, the first one strided (it does the downsampling)
    decoder_convs: int = 1  # per lower level, after upsampling and adding the skip
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)  # input normalisation, per input channel
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    # the last input channel is the page's ink map (digitizer.segment.InkSegmenter at the scale
    # the model reads), which callers append: UNetSegmenter and the training stream
    ink_input: bool = False

    def __post_init__(self) -> None:
        if min(self.depth, self.width, self.in_channels, self.out_channels) < 1:
            raise ValueError(f"depth, width and channel counts must be positive: {self}")
        if self.norm not in ("batch", "group", "none"):
            raise ValueError(f"norm must be batch, group or none, got {self.norm!r}")
        if self.full_res_convs < 1 or self.encoder_convs < 1 or self.decoder_convs < 0:
            raise ValueError("need full_res_convs >= 1, encoder_convs >= 1, decoder_convs >= 0")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError("mean and std need one value per input channel")
        if self.ink_input and self.in_channels != 4:
            raise ValueError(f"ink_input takes RGB + ink: in_channels 4, got {self.in_channels}")
        if self.px_per_mm < 0:
            raise ValueError(f"px_per_mm must be >= 0 (0: the page's scale), got {self.px_per_mm}")

    def channels(self, level: int) -> int:
        """Feature channels at ``level`` (0 = full resolution)."""
        return min(self.width * 2**level, self.max_width)


#: Named sizes. ``cpu``: the CPU model, trace + pulse at 4 px/mm (a 200-dpi Letter page is read
#: at a quarter of its pixels: about 0.2 s on two cores); ``cpu_ink``: the same, reading the
#: page's ink map as a fourth channel; ``small``: the same net at the page's own scale (about
#: 1 s); ``base``: GPU training and inference; ``tiny``: tests and smoke runs.
_CPU: dict[str, Any] = {"depth": 4, "width": 8, "max_width": 64, "out_channels": 2,
                        "px_per_mm": 4.0}  # fmt: skip
VARIANTS: dict[str, dict[str, Any]] = {
    "tiny": {"depth": 3, "width": 4, "max_width": 16},
    "cpu": _CPU,
    "cpu_ink": {
        **_CPU,
        "in_channels": 4,
        "ink_input": True,
        "mean": (0.5,) * 4,
        "std": (0.25, 0.25, 0.25, 0.5),
    },
    "small": {"depth": 4, "width": 8, "max_width": 64},
    "base": {"depth": 5, "width": 32, "max_width": 256, "full_res_convs": 2, "decoder_convs": 2},
}


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, 8), channels)
    return nn.Identity()


def _convs(c_in: int, c_out: int, norm: str, n: int, stride: int = 1) -> list[nn.Module]:
    """``n`` x (3x3 conv -> norm -> ReLU); the first conv has ``stride``."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [
            nn.Conv2d(
                c_in if i == 0 else c_out, c_out, 3, stride if i == 0 else 1, 1, bias=norm == "none"
            ),  # fmt: skip
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
        ]
    return layers


class UNet(nn.Module):
    """Encoder-decoder with additive skip connections; see the module docstring.

    ``forward(image [B, in_channels, H, W] float in [0, 1]) -> logits [B, out_channels, H, W]``.
    Build it from keyword arguments (the fields of :class:`UNetConfig`) or a config.

    Built for CPU speed at full page resolution, where every full-size tensor pass costs tens of
    milliseconds: strided 3x3 convs downsample (no pooling pass), 2x2 transposed convs upsample
    and project in one op, and skips are added rather than concatenated (no copy, and the conv
    after it reads ``c`` instead of ``3c`` channels). :meth:`predict_proba` also folds batch norm
    into the convs and runs channels-last.
    """

    def __init__(self, config: UNetConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        if config is not None and kwargs:
            raise TypeError("pass either a UNetConfig or keyword arguments, not both")
        if config is None:
            kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
            config = UNetConfig(**kwargs)
        self.config = c = config
        self.register_buffer("mean", torch.tensor(c.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(c.std).view(1, -1, 1, 1), persistent=False)
        ch = [c.channels(i) for i in range(c.depth + 1)]
        self.encoders = nn.ModuleList(
            [nn.Sequential(*_convs(c.in_channels, ch[0], c.norm, c.full_res_convs))]
            + [
                nn.Sequential(*_convs(ch[i - 1], ch[i], c.norm, c.encoder_convs, stride=2))
                for i in range(1, c.depth + 1)
            ]
        )
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in range(c.depth)
        )
        self.decoders = nn.ModuleList(
            nn.Sequential(
                *_convs(ch[i], ch[i], c.norm, c.full_res_convs if i == 0 else c.decoder_convs)
            )
            for i in range(c.depth)
        )
        self.head = nn.Conv2d(ch[0], c.out_channels, 1)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this."""
        return 2**self.config.depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, H, W]`` in [0, 1] -> logits ``[B, C_out, H, W]`` (any ``H, W``)."""
        if image.ndim != 4 or image.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected [B, {self.config.in_channels}, H, W], got {tuple(image.shape)}"
            )
        h, w = image.shape[-2:]
        m = self.multiple
        pad_h, pad_w = -h % m, -w % m
        x = (image - self.mean) / self.std
        if pad_h or pad_w:
            # replicate, not zeros: a black border would look like ink to the first layers
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(self.config.depth)):
            x = self.decoders[i](self.upsamplers[i](x) + skips.pop())
        return self.head(x)[..., :h, :w]

    def fused(self) -> UNet:
        """An eval-mode copy for inference: batch norm folded into the preceding convs (one
        memory pass fewer per layer) and channels-last weights (faster oneDNN kernels). Same
        outputs as ``self.eval()`` up to float rounding."""
        net = copy.deepcopy(self).eval()
        for block in [*net.encoders, *net.decoders]:
            for j in range(len(block) - 1):
                if isinstance(block[j], nn.Conv2d) and isinstance(block[j + 1], nn.BatchNorm2d):
                    block[j] = fuse_conv_bn_eval(block[j], block[j + 1])
                    block[j + 1] = nn.Identity()
        return net.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def predict_proba(
        self, image: torch.Tensor, tile: int | None = None, overlap: int = 64,
        channel: int | None = 0,
    ) -> torch.Tensor:  # fmt: skip
        """Probabilities (sigmoid of the logits): ``[B, 3, H, W] -> [B, H, W]`` for one output
        ``channel`` (0: trace), or ``[B, C, H, W]`` for all of them (``channel=None``).

        Uses the eval-mode network (:meth:`fused`; this module's own mode is untouched) without
        gradients, on this module's device, at the input's own scale (:meth:`UNetSegmenter
        <digitizer.segment.UNetSegmenter>` resamples to ``config.px_per_mm``). ``tile`` bounds
        memory on large pages: the image is processed in ``tile x tile`` windows overlapping by
        ``overlap`` pixels and each output pixel is taken from a window where it lies at least
        ``overlap`` pixels from a window border (away from the image border), so with
        ``norm="batch"`` tiling changes nothing beyond what the network sees outside that margin.
        """
        if image.ndim != 4:
            raise ValueError(f"predict_proba takes a batch [B, 3, H, W], got {tuple(image.shape)}")
        net = self.fused()
        pick = slice(None) if channel is None else channel
        image = image.to(self.mean.device, self.mean.dtype).contiguous(
            memory_format=torch.channels_last
        )
        h, w = image.shape[-2:]
        if tile is None or (h <= tile and w <= tile):
            return torch.sigmoid(net(image)[:, pick])
        if tile <= 2 * overlap:
            raise ValueError(f"tile ({tile}) must exceed 2 * overlap ({overlap})")
        channels = () if channel is not None else (self.config.out_channels,)
        out = image.new_empty(image.shape[0], *channels, h, w)
        step = tile - 2 * overlap
        for y0 in range(0, h, step):
            y1 = min(y0 + step, h)
            wy0 = max(0, min(y0 - overlap, h - tile))  # window [wy0, wy0 + tile) holds the core
            for x0 in range(0, w, step):
                x1 = min(x0 + step, w)
                wx0 = max(0, min(x0 - overlap, w - tile))
                logits = net(image[..., wy0 : wy0 + tile, wx0 : wx0 + tile])[:, pick]
                out[..., y0:y1, x0:x1] = torch.sigmoid(
                    logits[..., y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0]
                )
        return out

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def build_unet(variant: str = "small", **overrides: Any) -> UNet:
    """A :class:`UNet` of a named size (:data:`VARIANTS`), with optional field overrides."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown U-Net variant {variant!r}; available: {', '.join(VARIANTS)}")
    return UNet(**{**VARIANTS[variant], **overrides})


def save_checkpoint(model: UNet, path: str | os.PathLike, **meta: Any) -> None:
    """Write ``{"format", "config", "state_dict", "meta"}`` to ``path`` (parents created).

    ``meta`` holds anything JSON-like you want to keep with the weights (training config,
    validation scores, steps). Tensors are saved on the CPU.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"save_checkpoint takes a UNet, got {type(model).__name__}")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta,
    }
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a truncated checkpoint behind


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> UNet:
    """Rebuild the :class:`UNet` saved by :func:`save_checkpoint`, in eval mode.

    The checkpoint's ``meta`` is available as ``model.meta``. Raises ``ValueError`` naming the
    path and the problem for a missing, unreadable, foreign or inconsistent file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle, zip and torch errors all mean "not a readable checkpoint"
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        hint = " (a Lightning checkpoint? export it with save_checkpoint)" if (
            isinstance(payload, dict) and "pytorch-lightning_version" in payload
        ) else ""  # fmt: skip
        raise ValueError(f"{path}: not an {CHECKPOINT_FORMAT} checkpoint (found {found!r}){hint}")
    known = {f.name for f in fields(UNetConfig)}
    config = payload.get("config")
    if not isinstance(config, dict) or set(config) - known:
        raise ValueError(f"{path}: bad U-Net config {config!r}")
    try:
        model = UNet(**config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ValueError(f"{path}: weights do not match the stored config ({err})") from err
    model.meta = dict(payload.get("meta") or {})
    return model.to(map_location).eval()


def warm_start(model: UNet, path: str | os.PathLike) -> list[str]:
    """Copy the weights of the checkpoint at ``path`` into ``model``, in place, where the two
    agree: every tensor of the same shape, and a convolution's filters for the input channels
    both have where the model's takes more (the first one, in a model that reads more channels:
    it starts with zero weights on the new ones, so it computes what the checkpoint did).
    Returns the names of the tensors left as they were (``ValueError`` for a file
    :func:`load_checkpoint` refuses)."""
    source = load_checkpoint(path).state_dict()
    target = model.state_dict()
    left = []
    with torch.no_grad():
        for name, value in target.items():
            old = source.get(name)
            if old is not None and old.shape == value.shape:
                value.copy_(old)
            elif (old is not None and old.ndim == 4 and value.ndim == 4
                  and old.shape[0] == value.shape[0] and old.shape[2:] == value.shape[2:]
                  and old.shape[1] < value.shape[1]):  # fmt: skip
                value.zero_()
                value[:, : old.shape[1]] = old
            else:
                left.append(name)
    return left
