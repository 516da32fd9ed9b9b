"""What happens to the paper and the print: texture, wrinkles, fold shading, stains, coffee
rings, fading, show-through, shadows, uneven light and the photocopy look.

Each effect draws small per-page parameters on the CPU (scalars, control grids, shapes in
pixels of the full image) and evaluates its fields batched on the image's device, for the
active pages only, at a reduced "work" resolution, upsampled once
(:func:`~.noise.multiply_field_`), so the full-resolution cost is one in-place pass over the
image; local effects (creases, stains) only touch their own pixels. Ranges are the values at
``strength = 1``; ``strength = 0`` (or an inactive page) leaves the page unchanged. Where no
page is active ``apply`` returns ``image``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Distortion
from .noise import (
    FastRows,
    Upsampler,
    downsample,
    hash_normal,
    map_rows_,
    multiply_field_,
    new_seeds,
    select,
    smooth_at,
    smooth_field,
    uniform,
    work_coords,
    work_size,
)

__all__ = [
    "BleedThrough",
    "CoffeeRings",
    "CreaseShading",
    "Fading",
    "PaperTexture",
    "Photocopy",
    "Shadow",
    "Stains",
    "UnevenLighting",
    "Wrinkles",
]

# absorbance (fraction of R, G, B removed at full density) of common stains
_STAIN_COLORS = torch.tensor([
    [0.35, 0.55, 0.85],  # coffee
    [0.15, 0.30, 0.75],  # tea / yellowing
    [0.45, 0.45, 0.45],  # dirt
    [0.10, 0.10, 0.12],  # water
    [0.20, 0.55, 0.50],  # red wine / blood (brownish red)
])  # fmt: skip
_STAIN_WEIGHTS = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.1])


def _page(value: Tensor) -> Tensor:
    return value.view(-1, 1, 1, 1)


def _flags(generator: torch.Generator, batch: int, count: int, p_more: float = 0.5) -> Tensor:
    """``[B, count]`` float on/off: the first always on, the others with ``p_more``."""
    on = (torch.rand(batch, count, generator=generator) < p_more).float()
    on[:, 0] = 1.0
    return on


@dataclass
class PaperTexture(Distortion):
    """Paper grain (per-pixel noise plus fibre mottle at 1/4 resolution), a paper tint between
    grey and yellowed, and slow brightness variation; multiplicative, so ink stays dark."""

    grain: tuple[float, float] = (0.01, 0.035)  # std of the per-pixel grain (relative)
    fibre: tuple[float, float] = (0.01, 0.04)  # std of the fibre mottle
    tint: tuple[float, float] = (0.02, 0.12)  # darkening of the paper (blue channel most)
    mottle: tuple[float, float] = (0.01, 0.04)  # std of the slow variation
    name: str = "paper_texture"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, s = generator, self.strength
        yellow = torch.rand(batch, 1, generator=g)
        direction = (1 - yellow) * 0.6 + yellow * torch.tensor([0.25, 0.45, 1.0])
        return {
            "seed": new_seeds(batch, g),
            "grain": s * uniform(g, (batch,), *self.grain),
            "fibre": s * uniform(g, (batch,), *self.fibre),
            "tint": 1 - s * uniform(g, (batch, 1), *self.tint) * direction,  # [B, 3]
            "mottle": s
            * _page(uniform(g, (batch,), *self.mottle))
            * torch.randn(batch, 1, 6, 6, generator=g),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        height, width = image.shape[-2:]
        size = work_size(height, width, 4)
        seed = params["seed"]
        low = smooth_field(params["mottle"], *size) + hash_normal(seed, 1, *size).mul_(
            _page(params["fibre"])
        )
        up = Upsampler(1 + low, height, width)
        tint, grain = params["tint"][:, :, None, None], _page(params["grain"])
        noise = FastRows("normal", seed + 1, 1, 0, height, width)

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            f = noise.rows(r0, r1).mul_(grain).add_(up.rows(r0, r1))
            return x.mul_(tint).mul_(f).clamp_(0.0, 1.0)

        return map_rows_(image, block, pages)


@dataclass
class Wrinkles(Distortion):
    """Crumpled paper: ``creases`` short random straight creases (height ``a_k |d_k|``, ``d_k``
    the signed distance to crease ``k``, faded out along and across it by a Gaussian window)
    lit from a random direction, so the page breaks into facets of slightly different
    brightness meeting at sharp lines, with a little darkening along each crease. Mostly
    darkens (white paper cannot get brighter)."""

    creases: int = 40
    length: tuple[float, float] = (0.02, 0.1)  # window half-length, fraction of the short side
    amplitude: tuple[float, float] = (0.02, 0.08)  # shading contrast between facets
    crease: tuple[float, float] = (0.02, 0.08)  # darkening on the crease lines
    name: str = "wrinkles"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, s, k = generator, self.strength, self.creases
        light = uniform(g, (batch,), 0.0, 2 * math.pi)
        return {
            "centre": torch.rand(batch, k, 2, generator=g) * torch.tensor([width, height]),
            "angle": uniform(g, (batch, k), 0.0, math.pi),
            "length": uniform(g, (batch, k), *self.length) * min(height, width),
            "weight": uniform(g, (batch, k), 0.3, 1.0),
            "light": torch.stack([torch.cos(light), torch.sin(light)], 1),
            "amplitude": s * uniform(g, (batch,), *self.amplitude),
            "crease": s * uniform(g, (batch,), *self.crease),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        """Each crease is evaluated only within 2.5 window lengths of its centre, on a grid 4x
        coarser than the image, and the shading is upsampled once."""
        height, width = image.shape[-2:]
        h, w = work_size(height, width, 4)
        y, x = work_coords(height, width, (h, w), image.device)
        fy, fx = height / h, width / w
        # the separable factors of every crease on the grid's rows and columns: [S, K, h or w]
        centre, length = params["centre"], params["length"][:, :, None]
        normal = torch.stack([torch.cos(params["angle"]), torch.sin(params["angle"])], -1)
        dx, dy = x[0] - centre[..., :1], y[:, 0] - centre[..., 1:]
        wx, wy = torch.exp(-((dx / length) ** 2)), torch.exp(-((dy / length) ** 2))
        px, py = dx * normal[..., :1], dy * normal[..., 1:]  # the signed distance is px + py
        facing = params["weight"] * (normal * params["light"][:, None]).sum(-1)  # [S, K]
        slope = torch.zeros(len(centre), h, w, device=image.device)
        line = torch.zeros_like(slope)
        boxes = zip(centre.tolist(), (2.5 * length[..., 0]).tolist(), facing.tolist())
        for b, (centres, reaches, faces) in enumerate(boxes):
            for k, ((cx, cy), reach, face) in enumerate(zip(centres, reaches, faces)):
                i0, i1 = max(0, int((cy - reach) / fy)), min(h, int((cy + reach) / fy) + 2)
                j0, j1 = max(0, int((cx - reach) / fx)), min(w, int((cx + reach) / fx) + 2)
                if i0 >= i1 or j0 >= j1:
                    continue
                window = wy[b, k, i0:i1, None] * wx[b, k, j0:j1]
                dist = py[b, k, i0:i1, None] + px[b, k, j0:j1]  # signed distance to the crease
                slope[b, i0:i1, j0:j1].addcmul_(window, dist.sign(), value=face)
                line[b, i0:i1, j0:j1].addcmul_(window, dist.abs_().mul_(-0.7 / fy).exp_())
        shade = _page(params["amplitude"]) * (torch.tanh(1.5 * slope[:, None]) - 0.5)
        low = 1 + shade - _page(params["crease"]) * line[:, None].clamp(max=1)
        return multiply_field_(image, low, pages)


@dataclass
class CreaseShading(Distortion):
    """Shading along straight fold lines (mostly parallel to the page edges): a thin dark core
    and a broad relief, brighter on one side and darker on the other. Only pixel values change;
    the geometric fold is :class:`~.geometric.GeometricWarp`'s job."""

    lines: int = 3  # at most this many folds per page
    darkness: tuple[float, float] = (0.05, 0.25)  # of the core line
    relief: tuple[float, float] = (0.02, 0.08)  # of the broad shading
    width: tuple[float, float] = (0.004, 0.015)  # relief width, fraction of the short side
    tilt_deg: float = 3.0
    name: str = "crease_shading"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, s, n = generator, self.strength, (batch, self.lines)
        on = _flags(g, batch, self.lines)
        across = torch.rand(n, generator=g) < 0.5  # horizontal fold: normal along y
        normal = torch.where(across, math.pi / 2, 0.0) + math.radians(self.tilt_deg) * uniform(
            g, n, -1.0, 1.0
        )
        extent = torch.where(across, float(height), float(width))
        sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
        return {
            "normal": normal,
            "offset": uniform(g, n, 0.15, 0.85) * extent,  # pixels along the normal
            "width": uniform(g, n, *self.width) * min(height, width),
            "darkness": on * s * uniform(g, n, *self.darkness),
            "relief": on * sign * s * uniform(g, n, *self.relief),
        }

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Evaluated at full resolution, only in the band of each line where its profile is
        not negligible (``|d| < 5`` widths)."""
        lines = ((params["darkness"] > 0) & params["active"][:, None]).nonzero().tolist()
        if not lines:
            return image
        height, width = image.shape[-2:]
        dev = image.device
        vals = {k: params[k].tolist() for k in ("normal", "offset", "width", "darkness", "relief")}
        for b, k in lines:
            theta, rho, w, dark, relief = (vals[n][b][k] for n in vals)
            c, s = math.cos(theta), math.sin(theta)
            y0, y1, x0, x1 = _band(c, s, rho, 5 * w, height, width)
            if y0 >= y1 or x0 >= x1:
                continue
            ys = torch.arange(y0, y1, device=dev, dtype=torch.float32)[:, None]
            xs = torch.arange(x0, x1, device=dev, dtype=torch.float32)[None, :]
            d = (xs * c + ys * s - rho) / w
            d2 = d * d
            gain = 1 + 1.65 * relief * d * torch.exp(-0.5 * d2) - dark * torch.exp(-16 * d2)
            image[b, :, y0:y1, x0:x1].mul_(gain).clamp_(0.0, 1.0)
        return image


def _band(c: float, s: float, rho: float, half: float, height: int, width: int) -> tuple:
    """Pixel box ``(y0, y1, x0, x1)`` holding ``|x c + y s - rho| <= half`` on the image."""
    if abs(s) >= abs(c):  # mostly horizontal line: a band of rows
        ys = [(rho - x * c + e) / s for x in (0, width) for e in (-half, half)]
        return max(0, math.floor(min(ys))), min(height, math.ceil(max(ys)) + 1), 0, width
    xs = [(rho - y * s + e) / c for y in (0, height) for e in (-half, half)]
    return 0, height, max(0, math.floor(min(xs))), min(width, math.ceil(max(xs)) + 1)


def _blob_geometry(g: torch.Generator, batch: int, count: int, height: int, width: int,
                   radius: tuple[float, float]) -> dict:  # fmt: skip
    """Centres ``[B, K, 2]`` (x, y px), radii ``[B, K]`` px and absorbance colours
    ``[B, K, 3]`` of ``count`` blobs per page."""
    centre = torch.rand(batch, count, 2, generator=g) * 0.9 + 0.05
    centre = centre * torch.tensor([float(width), float(height)])
    kind = torch.multinomial(_STAIN_WEIGHTS, batch * count, True, generator=g).view(batch, count)
    color = (_STAIN_COLORS[kind] * uniform(g, (batch, count, 1), 0.8, 1.2)).clamp(0, 1)
    return {
        "centre": centre,
        "radius": uniform(g, (batch, count), *radius) * min(height, width),
        "color": color,
    }


def _blob_boxes(params: dict[str, Tensor], height: int, width: int, extent: float) -> list:
    """``(page, blob, y0, y1, x0, x1)`` of every drawn blob on an active page: its centre
    +- ``extent`` radii, clipped to the image."""
    on = (params["opacity"] > 0) & params["active"][:, None]
    centre, radius = params["centre"].tolist(), params["radius"].tolist()
    boxes = []
    for b, k in on.nonzero().tolist():
        (cx, cy), r = centre[b][k], extent * radius[b][k]
        y0, y1 = max(0, math.floor(cy - r)), min(height, math.ceil(cy + r) + 1)
        x0, x1 = max(0, math.floor(cx - r)), min(width, math.ceil(cx + r) + 1)
        if y0 < y1 and x0 < x1:
            boxes.append((b, k, y0, y1, x0, x1))
    return boxes


def _polar(params: dict[str, Tensor], box: tuple, factor: int, device: torch.device) -> tuple:
    """On a ``factor`` times coarser grid over the crop ``box``: the distance to the blob
    centre in radii and the polar angle ``[h, w]``, and the grid's full-resolution pixel
    coordinates ``y`` ``[h, 1]``, ``x`` ``[1, w]``."""
    b, k, y0, y1, x0, x1 = box
    h, w = max(2, math.ceil((y1 - y0) / factor)), max(2, math.ceil((x1 - x0) / factor))
    y = y0 + (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * ((y1 - y0) / h) - 0.5
    x = x0 + (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * ((x1 - x0) / w) - 0.5
    dx, dy = x[None, :] - params["centre"][b, k, 0], y[:, None] - params["centre"][b, k, 1]
    r = torch.sqrt(dx * dx + dy * dy) / params["radius"][b, k]
    return r, torch.atan2(dy, dx), (y[:, None], x[None, :])


def _stain_crop(out: Tensor, box: tuple, density: Tensor, color: Tensor) -> None:
    """Multiply the crop ``box`` of ``out`` by ``1 - density * color`` (``density`` on the
    crop's coarse grid, upsampled bilinearly)."""
    b, _, y0, y1, x0, x1 = box
    t = 1 - density.clamp(0, 1)[None, None] * color[None, :, None, None]
    t = F.interpolate(t, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0]
    out[b, :, y0:y1, x0:x1].mul_(t)


@dataclass
class Stains(Distortion):
    """Soft blots (coffee, tea, dirt, water, wine) with irregular edges, uneven density and a
    slightly darker rim, multiplied into the page (a transmittance)."""

    count: int = 3  # at most this many per page
    radius: tuple[float, float] = (0.02, 0.1)  # fraction of the short side
    opacity: tuple[float, float] = (0.15, 0.6)
    name: str = "stains"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, k = generator, self.count
        params = _blob_geometry(g, batch, k, height, width, self.radius)
        on = _flags(g, batch, k)
        params["opacity"] = on * self.strength * uniform(g, (batch, k), *self.opacity)
        params["rim"] = uniform(g, (batch, k), 0.2, 1.0)
        params["harmonics"] = torch.randn(batch, k, 6, 2, generator=g) / torch.arange(2, 8)[:, None]
        params["ctrl"] = torch.randn(batch, k, 32, 32, generator=g)
        return params

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        height, width = image.shape[-2:]
        boxes = _blob_boxes(params, height, width, 2.2)
        harmonic = torch.arange(2, 8, device=image.device, dtype=torch.float32)[:, None, None]
        for box in boxes:
            b, k = box[:2]
            r, phi, (y, x) = _polar(params, box, 4, image.device)
            h = params["harmonics"][b, k][:, :, None, None]  # [6, 2, 1, 1]
            wobble = h[:, 0] * torch.cos(harmonic * phi) + h[:, 1] * torch.sin(harmonic * phi)
            n = smooth_at(params["ctrl"][b, k], (y[:, 0] + 0.5) / height, (x[0] + 0.5) / width)
            edge = (1 + 0.35 * wobble.sum(0)).clamp(0.3, 1.8)
            m = torch.sigmoid((1 - r / edge + 0.08 * n) / 0.04)
            rim = params["rim"][b, k] * 4 * m * (1 - m)
            density = params["opacity"][b, k] * (m * (0.8 + 0.2 * n) + rim)
            _stain_crop(image, box, density, params["color"][b, k])
        return image


@dataclass
class CoffeeRings(Distortion):
    """Ring stains left by a cup: a wobbly, partly broken rim with a faint fill inside."""

    count: int = 2  # at most this many per page
    radius: tuple[float, float] = (0.1, 0.2)  # fraction of the short side
    rim: tuple[float, float] = (0.03, 0.08)  # rim width, fraction of the radius
    opacity: tuple[float, float] = (0.4, 0.9)
    name: str = "coffee_rings"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, k = generator, self.count
        params = _blob_geometry(g, batch, k, height, width, self.radius)
        params["color"] = (_STAIN_COLORS[0] * uniform(g, (batch, k, 1), 0.8, 1.2)).clamp(0, 1)
        on = _flags(g, batch, k, p_more=0.3)
        params["opacity"] = on * self.strength * uniform(g, (batch, k), *self.opacity)
        params["rim"] = uniform(g, (batch, k), *self.rim)
        params["fill"] = uniform(g, (batch, k), 0.0, 0.12)
        params["complete"] = uniform(g, (batch, k), 0.0, 2.0)  # higher: less broken
        params["ctrl"] = torch.randn(batch, 2 * k, 8, 8, generator=g)
        return params

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        height, width = image.shape[-2:]
        boxes = _blob_boxes(params, height, width, 1.35)
        for box in boxes:
            b, k = box[:2]
            r, _, (y, x) = _polar(params, box, 2, image.device)
            n = smooth_at(params["ctrl"][b, 2 * k : 2 * k + 2], (y[:, 0] + 0.5) / height,
                          (x[0] + 0.5) / width)  # fmt: skip
            r = r * (1 + 0.03 * n[0])
            d = (r - 1) / params["rim"][b, k]  # sharp outside, slower fall-off inside
            ring = torch.where(d > 0, torch.exp(-4 * d * d), torch.exp(0.7 * d.clamp(max=0)))
            ring = ring * torch.sigmoid(3 * (n[1] + params["complete"][b, k]))
            fill = params["fill"][b, k] * torch.sigmoid((1 - r) / 0.03)
            density = params["opacity"][b, k] * (ring * (0.75 + 0.25 * n[0]) + fill)
            _stain_crop(image, box, density, params["color"][b, k])
        return image


@dataclass
class Fading(Distortion):
    """Faded print: dark pixels pulled towards the paper colour (each page's 95th percentile
    per channel) by an uneven amount: smooth blotches plus bands along one page axis."""

    amount: tuple[float, float] = (0.3, 0.85)  # largest fraction of the ink contrast removed
    name: str = "fading"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g = generator
        along_x = _page((torch.rand(batch, generator=g) < 0.5).float())
        v = torch.randn(batch, 24, generator=g)
        return {
            "amount": self.strength * uniform(g, (batch,), *self.amount),
            "blotch": torch.randn(batch, 1, 5, 5, generator=g),
            "bands": along_x * v[:, None, None, :] + (1 - along_x) * v[:, None, :, None],
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        height, width = image.shape[-2:]
        size = work_size(height, width, 8)
        field = smooth_field(params["blotch"], *size) + 0.7 * smooth_field(params["bands"], *size)
        up = Upsampler(_page(params["amount"]) * torch.sigmoid(1.5 * field + 1.0), height, width)
        sub = select(image[:, :, :: max(1, height // 256), :: max(1, width // 256)], pages)
        paper = sub.flatten(2).quantile(0.95, dim=2)[:, :, None, None]  # [S, 3, 1, 1]

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            return x.add_((paper - x).clamp_(min=0.0).mul_(up.rows(r0, r1)))

        return map_rows_(image, block, pages)


@dataclass
class BleedThrough(Distortion):
    """Show-through of the back of the sheet: the page's own ink, mirrored left-right, shifted,
    blurred and faint, darkening the paper (a double-sided printout)."""

    opacity: tuple[float, float] = (0.1, 0.35)
    shift: float = 0.03  # largest shift, fraction of the page size
    blur: tuple[float, float] = (0.4, 1.2)  # Gaussian sigma in quarter-resolution pixels
    name: str = "bleed_through"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g = generator
        return {
            "opacity": self.strength * uniform(g, (batch,), *self.opacity),
            "shift": uniform(g, (batch, 2), -self.shift, self.shift),
            "blur": uniform(g, (batch,), *self.blur),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        low = downsample(image, 4, pages)  # [S, 3, h, w]
        lum = (low * torch.tensor([0.299, 0.587, 0.114], device=low.device)[:, None, None]).sum(1)
        paper = lum.flatten(1).quantile(0.95, dim=1)[:, None, None]
        ink = (1 - lum / paper.clamp(min=1e-3)).clamp(0, 1)[:, None]
        # mirror and shift in one resampling: source x' = -x + shift (normalised coordinates)
        theta = torch.zeros(len(ink), 2, 3, device=ink.device)
        theta[:, 0, 0], theta[:, 1, 1] = -1.0, 1.0
        theta[:, :, 2] = params["shift"] * 2
        grid = F.affine_grid(theta, list(ink.shape), align_corners=False)
        ghost = F.grid_sample(ink, grid, padding_mode="zeros", align_corners=False)
        ghost = _gaussian_blur(ghost, params["blur"])
        return multiply_field_(image, 1 - _page(params["opacity"]) * ghost, pages)


def _gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur of ``x`` ``[B, 1, h, w]`` with per-page ``sigma`` ``[B]``."""
    radius = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None].clamp(min=0.1)) ** 2)
    k = k / k.sum(1, keepdim=True)
    b = x.shape[0]
    x = F.pad(x.view(1, b, *x.shape[-2:]), (radius,) * 4, mode="replicate")
    x = F.conv2d(F.conv2d(x, k.view(b, 1, 1, -1), groups=b), k.view(b, 1, -1, 1), groups=b)
    return x.view(b, 1, *x.shape[-2:])


@dataclass
class Shadow(Distortion):
    """A soft-edged shadow (a hand, a phone) reaching in from one side: the inside of a large
    rotated ellipse centred off the page, slightly blue (lit by the sky/ambient light)."""

    darkness: tuple[float, float] = (0.15, 0.45)
    softness: tuple[float, float] = (0.02, 0.12)  # edge width, fraction of the short side
    name: str = "shadow"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, short = generator, min(height, width)
        side = uniform(g, (batch,), 0.0, 2 * math.pi)  # direction the shadow comes from
        reach = uniform(g, (batch,), 0.1, 0.45)  # how far it covers the page
        axes = uniform(g, (batch, 2), 0.3, 0.8) * short
        dist = 0.5 * math.hypot(height, width) * torch.ones(batch) + axes[:, 0] - reach * short
        centre = torch.stack([width / 2 + dist * torch.cos(side),
                              height / 2 + dist * torch.sin(side)], 1)  # fmt: skip
        return {
            "centre": centre,
            "axes": axes,
            "angle": side,
            "softness": uniform(g, (batch,), *self.softness) * short,
            "darkness": self.strength * uniform(g, (batch,), *self.darkness),
            "tint": torch.stack(
                [
                    uniform(g, (batch,), 1.0, 1.05),
                    torch.ones(batch),
                    uniform(g, (batch,), 0.9, 0.98),
                ],
                1,
            ),  # fmt: skip
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        height, width = image.shape[-2:]
        y, x = work_coords(height, width, work_size(height, width, 8), image.device)
        dx, dy = x - _page(params["centre"][:, 0]), y - _page(params["centre"][:, 1])
        c, s = _page(torch.cos(params["angle"])), _page(torch.sin(params["angle"]))
        u, v = dx * c + dy * s, -dx * s + dy * c
        a, b = _page(params["axes"][:, 0]), _page(params["axes"][:, 1])
        inside = 1 - torch.sqrt((u / a) ** 2 + (v / b) ** 2)  # > 0 inside, ~distance / axis
        up = Upsampler(torch.sigmoid(inside * a / _page(params["softness"]) * 4), *image.shape[-2:])
        dark = (params["darkness"][:, None] * params["tint"])[:, :, None, None]  # [S, 3, 1, 1]

        def block(x: Tensor, r0: int, r1: int) -> Tensor:  # x (1 - m dark): the tint per channel
            return x.addcmul_(x * up.rows(r0, r1), dark, value=-1.0)

        return map_rows_(image, block, pages)


@dataclass
class UnevenLighting(Distortion):
    """Smooth illumination: a random log-gain spline times a vignette around an off-centre
    point, normalised so the page keeps its overall brightness."""

    variation: tuple[float, float] = (0.05, 0.25)  # std of the log gain
    vignette: tuple[float, float] = (0.05, 0.4)  # darkening at the far corner
    name: str = "uneven_lighting"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, s = generator, self.strength
        return {
            "ctrl": s
            * _page(uniform(g, (batch,), *self.variation))
            * torch.randn(batch, 1, 5, 5, generator=g),
            "vignette": s * uniform(g, (batch,), *self.vignette),
            "centre": uniform(g, (batch, 2), 0.25, 0.75) * torch.tensor([width, height]),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        height, width = image.shape[-2:]
        size = work_size(height, width, 8)
        y, x = work_coords(height, width, size, image.device)
        r2 = (x - _page(params["centre"][:, 0])) ** 2 + (y - _page(params["centre"][:, 1])) ** 2
        r2 = r2 / r2.amax((2, 3), keepdim=True)
        gain = torch.exp(smooth_field(params["ctrl"], *size)) * (1 - _page(params["vignette"]) * r2)
        return multiply_field_(image, gain / gain.mean((2, 3), keepdim=True), pages)


@dataclass
class Photocopy(Distortion):
    """A (repeated) photocopy: grey, steep threshold-like tone curve around a drawn threshold,
    grey haze, toner grain and black toner specks; ``strength`` mixes it with the original."""

    contrast: tuple[float, float] = (6.0, 20.0)  # slope of the tone curve
    threshold: tuple[float, float] = (0.45, 0.75)
    haze: tuple[float, float] = (0.0, 0.12)  # grey added to white
    speckle: tuple[float, float] = (0.0005, 0.004)  # fraction of pixels with a toner speck
    grain: tuple[float, float] = (0.02, 0.08)
    name: str = "photocopy"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, n = generator, (batch,)
        return {
            "mix": self.strength * uniform(g, n, 0.8, 1.0),
            "contrast": uniform(g, n, *self.contrast),
            "threshold": uniform(g, n, *self.threshold),
            "haze": uniform(g, n, *self.haze),
            "speckle": uniform(g, n, *self.speckle),
            "grain": uniform(g, n, *self.grain),
            "seed": new_seeds(batch, g),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        p = {k: _page(params[k]) for k in ("contrast", "threshold", "haze", "speckle", "grain")}
        mix = _page(params["mix"])
        noise = FastRows("uniform", params["seed"], 1, 0, *image.shape[-2:])
        lo = torch.sigmoid(-p["threshold"] * p["contrast"])
        hi = torch.sigmoid((1 - p["threshold"]) * p["contrast"])

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            lum = (x[:, :1] * 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:], alpha=0.114)
            y = torch.sigmoid((lum - p["threshold"]) * p["contrast"]).sub_(lo).div_(hi - lo)
            u = noise.rows(r0, r1)
            y = y.mul_(1 - p["haze"]).addcmul_(u.sub(0.5), p["grain"])
            y = torch.where(u < p["speckle"], 0.1, y)
            return x.lerp_(y.clamp_(0.0, 1.0).expand_as(x), mix)

        return map_rows_(image, block, pages)
