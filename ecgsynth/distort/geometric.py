"""Geometric distortions composed into ONE sampling map, with every target moved exactly.

The warp from a clean page ``x`` to the distorted image ``u`` is ``u + e(u) = H x``:

* ``H`` ``[B, 3, 3]``: perspective (phone photos) x rotation x scale x translation, which also
  covers crop (zoom in) and padding (zoom out, the border filled with a background colour);
* ``e`` ``[B, 2, h, w]``: a smooth non-rigid displacement on a coarse node grid spanning the
  output image (crease folds, page curl, paper waviness), in output pixels.

The image is resampled once, through ``x = H^-1 (u + e(u))`` (``grid_sample``, as kornia's
``remap``), in blocks of output rows whose sampling map is interpolated from the exact map on a
coarse grid as they go (the full-resolution map is never stored). Points move
forward: ``u`` solves ``u = H x - e(u)`` by fixed-point iteration (``e`` is a contraction by
construction); the residual is checked and a warp that cannot move its points raises instead of
desynchronising them. Masks are resampled from a 2x2-OR-dilated copy with nearest sampling
(conservative: a trace never breaks, at most ~1 px wider). Boxes become the bounding boxes of
their warped outlines. ``batch["homography"]`` records ``H`` (exact for pages with ``e = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.linalg import transform_points
from kornia.geometry.transform import get_perspective_transform
from torch import Tensor

from ..layout import TRACE_BITS
from .base import Distortion, Scratch
from .noise import Upsampler, map_rows_

NODES = (24, 32)  # coarse displacement grid (rows, cols) over the output image
MAP_STRIDE = 8  # the sampling map is exact every MAP_STRIDE pixels, bilinear in between
WARP_BLOCK = 1 << 22  # output elements per row block on the CPU (grid_sample likes large ones)
FIXED_POINT_STEPS = 12
MAX_RESIDUAL_PX = 0.05


@dataclass
class GeometricWarp:
    """Random projective + non-rigid page warp. Ranges are maxima, scaled by ``strength``.

    Attributes:
        p: probability that a page is warped at all.
        strength: multiplies every range below (0 = identity).
        rotation_deg: rotation drawn uniformly in ``±rotation_deg``.
        perspective: corner displacement, a fraction of the page's short side.
        scale: zoom range ``(low, high)`` (< 1 pads, > 1 crops); scaled towards 1 by strength.
        translate: shift, a fraction of the page size.
        folds: up to this many crease folds (straight lines where the paper was folded).
        fold_shift: displacement across a fold, a fraction of the short side.
        curl: bending of one page edge, a fraction of the short side.
        waviness: random smooth displacement (paper not lying flat), fraction of the short side.
    """

    p: float = 1.0
    strength: float = 1.0
    rotation_deg: float = 3.0
    perspective: float = 0.0
    scale: tuple[float, float] = (0.95, 1.05)
    translate: float = 0.02
    folds: int = 0
    fold_shift: float = 0.003
    curl: float = 0.0
    waviness: float = 0.0

    name: str = "geometric"

    def __post_init__(self) -> None:
        self._scratch = Scratch()  # the dilated mask flags, kept between calls

    def sample(self, batch: int, height: int, width: int, generator: torch.Generator,
               device: torch.device | str = "cpu") -> dict[str, Tensor]:  # fmt: skip
        """Draw ``homography`` ``[B, 3, 3]``, ``field`` ``[B, 2, *NODES]``, ``background``
        ``[B, 3]``, ``size`` ``[B, 2]`` (h, w) and ``active`` ``[B]`` on the CPU from
        ``generator``, then move to ``device``."""
        g, s = generator, self.strength
        short = min(height, width)

        def uniform(*shape: int, low: float = -1.0, high: float = 1.0) -> Tensor:
            return low + (high - low) * torch.rand(*shape, generator=g, dtype=torch.float64)

        active = torch.rand(batch, generator=g) < self.p
        angle = uniform(batch) * math.radians(self.rotation_deg) * s
        lo, hi = (1 + (v - 1) * s for v in self.scale)
        zoom = uniform(batch, low=lo, high=hi)
        shift = uniform(batch, 2) * self.translate * s * torch.tensor([width, height])
        corners = torch.tensor([[0.0, 0.0], [width - 1, 0.0], [width - 1, height - 1],
                                [0.0, height - 1]], dtype=torch.float64)  # fmt: skip
        jitter = uniform(batch, 4, 2) * self.perspective * s * short

        center = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
        cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
        affine = torch.zeros(batch, 3, 3, dtype=torch.float64)
        affine[:, 0, 0], affine[:, 0, 1], affine[:, 1, 0], affine[:, 1, 1] = cos, -sin, sin, cos
        affine[:, :2, 2] = (
            center
            + shift
            - torch.stack([cos, sin], -1) * center[0]
            - torch.stack([-sin, cos], -1) * center[1]
        )
        affine[:, 2, 2] = 1.0
        persp = get_perspective_transform(corners.expand(batch, 4, 2).float(),
                                          (corners + jitter).float()).double()  # fmt: skip
        homography = persp @ affine

        field = self._field(batch, height, width, g, short)
        eye = torch.eye(3, dtype=torch.float64).expand(batch, 3, 3)
        homography = torch.where(active.view(-1, 1, 1), homography, eye)
        field = torch.where(active.view(-1, 1, 1, 1), field, torch.zeros_like(field))
        background = torch.where(
            (torch.rand(batch, 1, generator=g) < 0.5),
            torch.rand(batch, 1, generator=g).expand(batch, 3) * 0.35,  # dark desk
            0.85 + 0.15 * torch.rand(batch, 3, generator=g),  # scanner lid / white table
        )
        size = torch.tensor([[height, width]]).expand(batch, 2)
        params = {"homography": homography.float(), "field": field.float(),
                  "background": background, "size": size, "active": active}  # fmt: skip
        return {k: v.to(device) for k, v in params.items()}

    def _field(self, batch: int, height: int, width: int, g: torch.Generator, short: int) -> Tensor:
        """Output-space displacement at the coarse nodes, in pixels: ``[B, 2, *NODES]``."""
        s = self.strength
        ys = torch.linspace(0, height - 1, NODES[0], dtype=torch.float64)
        xs = torch.linspace(0, width - 1, NODES[1], dtype=torch.float64)
        py, px = torch.meshgrid(ys, xs, indexing="ij")
        field = torch.zeros(batch, 2, *NODES, dtype=torch.float64)
        for b in range(batch):
            n_folds = int(torch.randint(0, self.folds + 1, (1,), generator=g)) if self.folds else 0
            for _ in range(n_folds):
                # folds run roughly along a page axis (halves/thirds), slightly skewed
                vertical = bool(torch.rand(1, generator=g) < 0.5)
                theta = (0.0 if vertical else math.pi / 2) + 0.15 * (
                    float(torch.rand(1, generator=g)) - 0.5
                )
                nx, ny = math.cos(theta), math.sin(theta)
                cx = float(torch.rand(1, generator=g)) * width
                cy = float(torch.rand(1, generator=g)) * height
                amp = (2 * float(torch.rand(1, generator=g)) - 1) * self.fold_shift * s * short
                width_px = 0.04 * short * (0.5 + float(torch.rand(1, generator=g)))
                dist = (px - cx) * nx + (py - cy) * ny
                step = amp * torch.tanh(dist / width_px)
                field[b, 0] += step * nx
                field[b, 1] += step * ny
            if self.curl:
                amp = float(torch.rand(1, generator=g)) * self.curl * s * short
                edge = int(torch.randint(0, 4, (1,), generator=g))
                r = [px / (width - 1), 1 - px / (width - 1), py / (height - 1),
                     1 - py / (height - 1)][edge]  # fmt: skip
                bend = amp * r**3
                axis = 0 if edge < 2 else 1  # the curled edge moves inwards
                field[b, axis] += bend * (1 if edge in (0, 2) else -1)
                field[b, 1 - axis] += 0.3 * bend
            if self.waviness:
                coarse = torch.randn(1, 2, 4, 5, generator=g, dtype=torch.float64)
                wave = F.interpolate(coarse, size=NODES, mode="bicubic", align_corners=True)
                field[b] += wave[0] * self.waviness * s * short
        return field

    def apply(self, batch: dict, params: dict[str, Tensor]) -> dict:
        """Warp ``image``, ``mask_bits``/``mask``, ``points`` and ``boxes`` of ``batch`` into new
        tensors; pages without the warp are copied bit-exact, and cost no resampling."""
        image, bits = batch["image"], batch["mask_bits"]
        dev = image.device
        hom = params["homography"].to(dev)
        active = params["active"].cpu()
        out = dict(batch)
        warped, moved = torch.empty_like(image), torch.empty_like(bits)
        labels = torch.empty_like(batch["mask"])
        for a, b in _runs(~active):
            warped[a:b], moved[a:b], labels[a:b] = image[a:b], bits[a:b], batch["mask"][a:b]
        for a, b in _runs(active):  # batched: grid_sample's CPU kernel is parallel over pages
            source = _SourceRows(hom[a:b], params["field"][a:b].to(dev), *image.shape[-2:])
            background = params["background"][a:b].to(dev, image.dtype)
            flags = self._scratch.get("flags", bits, (b - a, bits.shape[1] + 2, bits.shape[2] + 2))
            _warp_pages(image[a:b], _dilate_flags(bits[a:b], flags), source, background,
                        warped[a:b], moved[a:b], labels[a:b])  # fmt: skip
        out["image"], out["mask_bits"], out["mask"] = warped, moved, labels
        keep = params["active"].to(dev)
        for key, fn in (("points", self.move_points), ("boxes", self._move_boxes)):
            new = fn(batch[key], params)  # pages without the warp are kept bit-exact
            out[key] = torch.where(keep.view(-1, *([1] * (new.dim() - 1))), new, batch[key])
        out["homography"] = hom
        return out

    def move_points(self, points: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Forward-map ``[B, ..., 2]`` clean pixel points (NaN stays NaN); raises if the fixed
        point iteration does not converge."""
        b = points.shape[0]
        flat = points.reshape(b, -1, 2)
        finite = torch.isfinite(flat).all(-1, keepdim=True)
        hom = params["homography"].to(points.device)
        field = params["field"].to(points.device)
        height, width = (int(v) for v in params["size"][0])
        target = transform_points(hom, torch.where(finite, flat, 0.0))
        u = target
        scale = torch.tensor([2 / (width - 1), 2 / (height - 1)], device=points.device)
        for _ in range(FIXED_POINT_STEPS):
            u = target - _sample_field(field, u * scale - 1)
        residual = (u + _sample_field(field, u * scale - 1) - target).abs()
        worst = float(residual.max()) if residual.numel() else 0.0
        if worst > MAX_RESIDUAL_PX:
            raise RuntimeError(
                f"geometric warp cannot move trace points exactly (residual {worst:.3f} px): "
                "the displacement field is too steep; lower fold_shift/curl/waviness"
            )
        return torch.where(finite, u, float("nan")).view_as(points)

    def _move_boxes(self, boxes: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Bounding boxes ``[B, K, 4]`` of the warped box outlines (16 samples per edge)."""
        t = torch.linspace(0, 1, 16, device=boxes.device)
        x0, y0, x1, y1 = boxes.unbind(-1)
        lerp = lambda a, c: a[..., None] + (c - a)[..., None] * t  # noqa: E731
        xs = torch.cat([lerp(x0, x1), x1[..., None].expand(*x1.shape, 16), lerp(x1, x0),
                        x0[..., None].expand(*x0.shape, 16)], -1)  # fmt: skip
        ys = torch.cat([y0[..., None].expand(*y0.shape, 16), lerp(y0, y1),
                        y1[..., None].expand(*y1.shape, 16), lerp(y1, y0)], -1)  # fmt: skip
        outline = self.move_points(torch.stack([xs, ys], -1), params)
        lo, hi = outline.amin(dim=-2), outline.amax(dim=-2)
        return torch.cat([lo, hi], dim=-1)


def _sample_field(field: Tensor, normalized: Tensor) -> Tensor:
    """Bilinear field values ``[B, N, 2]`` at finite normalised positions ``[B, N, 2]``."""
    values = F.grid_sample(field, normalized[:, :, None, :], mode="bilinear",
                           padding_mode="border", align_corners=True)  # fmt: skip
    return values[..., 0].transpose(1, 2)


class _SourceRows:
    """The preimage ``x = H^-1 (u + e(u))`` of every output pixel ``u``, in coordinates
    normalised to [-1, 1] (``align_corners=True``), a block of rows at a time: exact on the
    nodes of a grid every :data:`MAP_STRIDE` pixels, bilinear in between (error well below
    0.01 px). The nodes are interpolated along the rows once (``[B, ch, W, 2]``, small); each
    block of rows is one blend of two of those, so the full-resolution map is never stored."""

    def __init__(self, hom: Tensor, field: Tensor, height: int, width: int) -> None:
        b, dev = hom.shape[0], hom.device
        ch, cw = (height - 1) // MAP_STRIDE + 2, (width - 1) // MAP_STRIDE + 2
        ys = torch.arange(ch, device=dev, dtype=torch.float32) * MAP_STRIDE
        xs = torch.arange(cw, device=dev, dtype=torch.float32) * MAP_STRIDE
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        span = torch.tensor([width - 1, height - 1], device=dev, dtype=torch.float32)
        node = torch.stack([gx, gy], -1).expand(b, ch, cw, 2).reshape(b, -1, 2)
        disp = _sample_field(field, node * (2 / span) - 1)
        inv = torch.linalg.inv(hom.double()).float()
        src = transform_points(inv, node + disp) * (2 / span) - 1  # [B, ch * cw, 2]
        # node j sits at pixel j * MAP_STRIDE: interpolate along the rows, crop to the width
        src = src.view(b, ch, cw, 2).permute(0, 3, 1, 2).reshape(b * 2 * ch, 1, cw)
        wide = F.interpolate(src, size=(cw - 1) * MAP_STRIDE + 1, mode="linear", align_corners=True)
        self.mid = wide.view(b, 2, ch, -1)[..., :width].permute(0, 2, 3, 1).contiguous()

    def rows(self, r0: int, r1: int) -> Tensor:
        """The map of output rows ``r0:r1``: ``[B, r1 - r0, W, 2]`` (a new tensor)."""
        pos = torch.arange(r0, r1, device=self.mid.device)
        i0 = pos // MAP_STRIDE
        frac = (pos - i0 * MAP_STRIDE).float().mul_(1 / MAP_STRIDE)[:, None, None]
        return self.mid.index_select(1, i0).lerp_(self.mid.index_select(1, i0 + 1), frac)


def _warp_pages(image: Tensor, flags: Tensor, source: _SourceRows, background: Tensor,
                out_image: Tensor, out_bits: Tensor, out_labels: Tensor) -> None:  # fmt: skip
    """Resample ``image`` ``[S, 3, H, W]`` and its mask through ``source`` into ``out_image``,
    ``out_bits`` and their class map ``out_labels``, one block of rows at a time.

    Pixels whose preimage lies off the page show ``background`` ``[S, 3]`` (desk, scanner lid).
    The mask takes the :func:`_dilate_flags` ``flags`` ``[S, H + 2, W + 2]`` of the pixel at the
    floor of the preimage, which hold every pixel bilinear sampling reads there (conservative:
    traces never break); a floor off the page reads the zero border.
    """
    s, c, height, width = image.shape
    flags = flags.view(s, -1)
    background = background.view(s, c, 1, 1)
    half = torch.tensor([(width - 1) / 2, (height - 1) / 2], device=image.device)
    rows = max(1, WARP_BLOCK // (s * c * width)) if image.device.type == "cpu" else height
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        grid = source.rows(r0, r1)
        sampled = F.grid_sample(image, grid, mode="bilinear", padding_mode="border",
                                align_corners=True)  # fmt: skip
        x, y = grid.add_(1).mul_(half).unbind(-1)  # preimage in pixels
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
        dst = out_image[:, :, r0:r1]
        torch.where(inside[:, None], sampled, background, out=dst).clamp_(0, 1)
        col = x.floor().clamp_(-1, width).add_(1)  # flag coordinates (zero border at 0, W + 1)
        index = y.floor().clamp_(-1, height).add_(1).mul_(width + 2).add_(col).long()
        taken = flags.gather(1, index.view(s, -1)).view(s, r1 - r0, width)
        out_bits[:, r0:r1] = taken
        out_labels[:, r0:r1] = lowest_channel(taken)


def _runs(flags: Tensor) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of consecutive True values of ``flags`` ``[B]`` (CPU)."""
    runs, start = [], None
    for i, flag in enumerate([*flags.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    return runs


def _dilate_flags(bits: Tensor, out: Tensor) -> Tensor:
    """``bits`` ``[S, H, W]`` ORed with their right, lower and lower-right neighbours (each
    pixel holds its 2x2 block's flags), inside a zero border, into ``out`` ``[S, H + 2, W + 2]``
    (returned)."""
    out[:, [0, -1]] = 0
    out[:, :, [0, -1]] = 0
    inner = out[:, 1:-1, 1:-1]
    inner.copy_(bits)
    inner[:, :, :-1] |= bits[:, :, 1:]
    inner[:, :-1, :] |= bits[:, 1:, :]
    inner[:, :-1, :-1] |= bits[:, 1:, 1:]
    return out


def lowest_channel(bits: Tensor) -> Tensor:
    """Class map ``[B, H, W]`` uint8: 1 + lowest set bit of ``bits`` (0 where none), read off
    the float32 exponent of the lowest set bit (exact for powers of two). Only the channel bits
    count (:data:`~ecgsynth.layout.TRACE_BITS`): pulse ink is not a trace class."""
    bits = bits & TRACE_BITS
    lowest = (bits & -bits).float().view(torch.int32)
    return lowest.bitwise_right_shift_(23).sub_(126).clamp_(min=0).to(torch.uint8)


@dataclass
class LowResolution(Distortion):
    """A low-resolution scan: area-downsample by ``factor`` then upsample back (pixels keep
    their coordinates, so targets are unchanged). At 200 dpi the default range emulates
    70-150 dpi scanners."""

    factor: tuple[float, float] = (0.35, 0.75)
    name: str = "low_resolution"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        lo, hi = self.factor
        u = torch.rand(batch, generator=generator)
        return {"factor": 1.0 - self.strength * (1.0 - (lo + (hi - lo) * u))}

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        size = image.shape[-2:]
        for i in torch.nonzero(params["active"]).flatten().tolist():
            f = float(params["factor"][i])
            small = (max(8, round(size[0] * f)), max(8, round(size[1] * f)))
            up = Upsampler(F.interpolate(image[i : i + 1], size=small, mode="area"), *size)
            map_rows_(image[i : i + 1], lambda x, r0, r1, up=up: up.rows(r0, r1).clamp_(0, 1))
        return image
