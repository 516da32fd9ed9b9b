"""Camera and scanner effects: sensor noise, blur, JPEG, colour balance, tone, screen moire.

Every class draws small per-page parameters on the CPU (``draw``) and applies them batched on
the image's device to the pages that drew the effect, in place, one block of rows at a time
(:func:`~.noise.map_rows_`). Ranges
are the values at ``strength = 1``; ``strength`` scales the drawn amount towards "no effect".
Sizes in pixels are given as fractions of the image height so that an effect looks the same at
every dpi. Where no page is active, ``apply`` returns ``image`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Distortion
from .noise import FastRows, map_rows_, new_seeds, uniform

__all__ = [
    "BrightnessContrastGamma",
    "ColorTemperature",
    "DefocusBlur",
    "GaussianNoise",
    "JPEG",
    "Moire",
    "MotionBlur",
    "ShotNoise",
]


def _per_page(value: Tensor) -> Tensor:
    return value.view(-1, 1, 1, 1)


@dataclass
class GaussianNoise(Distortion):
    """Additive i.i.d. Gaussian noise per pixel and channel, std ``strength * U(sigma)``."""

    sigma: tuple[float, float] = (0.01, 0.05)
    name: str = "gaussian_noise"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        sigma = self.strength * uniform(generator, (batch,), *self.sigma)
        return {"sigma": sigma, "seed": new_seeds(batch, generator)}

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        sigma = _per_page(params["sigma"])
        noise = FastRows("normal", params["seed"], image.shape[1], 0, *image.shape[-2:])

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            return x.addcmul_(noise.rows(r0, r1), sigma).clamp_(0.0, 1.0)

        return map_rows_(image, block, pages)


@dataclass
class ShotNoise(Distortion):
    """Photon (Poisson-like) noise: std ``k * sqrt(intensity)``, ``k = strength * U(scale)``
    (``k**2`` is the inverse of the photon count of a white pixel)."""

    scale: tuple[float, float] = (0.02, 0.08)
    name: str = "shot_noise"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        scale = self.strength * uniform(generator, (batch,), *self.scale)
        return {"scale": scale, "seed": new_seeds(batch, generator)}

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        k = _per_page(params["scale"])
        noise = FastRows("normal", params["seed"], image.shape[1], 0, *image.shape[-2:])

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            return x.addcmul_(noise.rows(r0, r1).mul_(k), x.sqrt()).clamp_(0.0, 1.0)

        return map_rows_(image, block, pages)


def _convolve_pages_(image: Tensor, kernels: Tensor, selected: Tensor) -> Tensor:
    """Convolve the ``selected`` pages ``[S]`` of ``image`` with their ``kernels`` ``[S, K, K]``
    in place (edge-replicated borders), as one grouped convolution per row block (channels
    last on the CPU: oneDNN's depthwise kernels are about twice as fast on it)."""
    c, k = image.shape[1], kernels.shape[-1]
    weight = kernels.to(image.dtype).repeat_interleave(c, 0)[:, None]  # [S * C, 1, K, K]
    pages = None if len(selected) == image.shape[0] else selected
    layout = torch.channels_last if image.device.type == "cpu" else torch.contiguous_format

    def block(x: Tensor, r0: int, r1: int) -> Tensor:
        n = x.shape[0] * c
        x = x.reshape(1, n, *x.shape[-2:]).contiguous(memory_format=layout)
        return F.conv2d(x, weight, groups=n).view(-1, c, r1 - r0, image.shape[-1])

    return map_rows_(image, block, pages, halo=k // 2)


def _kernel_grid(kernel_size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    c = torch.arange(kernel_size, device=device, dtype=torch.float32) - kernel_size // 2
    return c[None, :].expand(kernel_size, -1), c[:, None].expand(-1, kernel_size)


@dataclass
class MotionBlur(Distortion):
    """Camera shake: a straight line kernel of length ``strength * U(length) * H`` pixels at a
    uniform random angle (per page), anti-aliased."""

    length: tuple[float, float] = (0.001, 0.005)  # fraction of the image height
    name: str = "motion_blur"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        length = self.strength * uniform(generator, (batch,), *self.length) * height
        return {"length": length, "angle": uniform(generator, (batch,), 0.0, math.pi)}

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        selected = torch.nonzero(params["active"] & (params["length"] >= 0.5)).flatten()
        if len(selected) == 0:
            return image
        length, angle = params["length"][selected], params["angle"][selected]
        k = 2 * math.ceil(float(length.max()) / 2) + 1
        samples = 8 * k
        t = (torch.arange(samples, device=image.device) + 0.5) / samples - 0.5
        x = (t[None] * length[:, None] * torch.cos(angle)[:, None]) + k // 2
        y = (t[None] * length[:, None] * torch.sin(angle)[:, None]) + k // 2
        x0, y0 = x.floor().clamp(0, k - 2), y.floor().clamp(0, k - 2)
        fx, fy = (x - x0).clamp(0, 1), (y - y0).clamp(0, 1)
        kern = torch.zeros(len(selected), k * k, device=image.device)
        for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)),
                          (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
            kern.scatter_add_(1, ((y0 + dy) * k + x0 + dx).long(), w)
        kern = kern / kern.sum(1, keepdim=True)
        return _convolve_pages_(image, kern.view(-1, k, k), selected)


@dataclass
class DefocusBlur(Distortion):
    """Out-of-focus blur: an anti-aliased disc kernel of radius ``strength * U(radius) * H``."""

    radius: tuple[float, float] = (0.0004, 0.002)  # fraction of the image height
    name: str = "defocus_blur"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        return {"radius": self.strength * uniform(generator, (batch,), *self.radius) * height}

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        selected = torch.nonzero(params["active"] & (params["radius"] >= 0.25)).flatten()
        if len(selected) == 0:
            return image
        radius = params["radius"][selected]
        k = 2 * math.floor(float(radius.max()) + 0.5) + 1
        gx, gy = _kernel_grid(k, image.device)
        dist = torch.sqrt(gx**2 + gy**2)
        kern = (radius[:, None, None] + 0.5 - dist[None]).clamp(0, 1)
        kern = kern / kern.sum((1, 2), keepdim=True)
        return _convolve_pages_(image, kern, selected)


_LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
           69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55,
           64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100,
           103, 99]  # fmt: skip
_CHROMA_Q = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5
_CHROMA_Q += [47, 66] + [99] * 38
_TO_CHROMA = [[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]  # Cb, Cr from RGB


def _dct64(device: torch.device) -> Tensor:
    """2-D 8x8 DCT-II (orthonormal) as a ``[64, 64]`` matrix on row-major flattened blocks."""
    n = torch.arange(8, dtype=torch.float64)
    d = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return torch.kron(d, d).float().to(device)


@dataclass
class JPEG(Distortion):
    """Baseline JPEG round trip (4:2:0 chroma, IJG tables, 8-bit output) at a per-page quality
    drawn in ``[hi - strength * (hi - lo), hi]``; quality 95 at ``strength = 0`` (near-lossless)."""

    quality: tuple[float, float] = (20.0, 95.0)
    name: str = "jpeg"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        lo, hi = self.quality
        return {"quality": hi - self.strength * (hi - lo) * torch.rand(batch, generator=generator)}

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        q = params["quality"].float().clamp(1, 100)
        scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)[:, None]
        base = torch.tensor([_LUMA_Q, _CHROMA_Q], device=image.device, dtype=torch.float32)
        tables = ((base[None] * scale[:, None] + 50) / 100).floor().clamp(1, 255) / 255.0
        dct = _dct64(image.device)
        # quantisation folded into per-page transforms: coef / q = x @ (D^T / q); decoding
        # gives 8-bit levels (0..255)
        fwd = dct.T[None, None] / tables[:, :, None, :]  # [S, 2, 64, 64]
        inv = tables[:, :, :, None] * (255 * dct)[None, None]
        to_c = torch.tensor(_TO_CHROMA, device=image.device)

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            return _jpeg_rows(x, fwd, inv, to_c)

        return map_rows_(image, block, pages, multiple=16)


def _jpeg_rows(rows: Tensor, fwd: Tensor, inv: Tensor, to_c: Tensor) -> Tensor:
    """Encode and decode ``rows`` ``[S, 3, n, W]`` (``n`` a multiple of 16 unless they end the
    image) in place with per-page quantising DCT matrices ``fwd``/``inv`` ``[S, 2, 64, 64]``
    (luma, chroma; ``inv`` decodes to 8-bit levels)."""
    x = rows
    b, _, n, w = x.shape
    rp, wp = -(-n // 16) * 16, -(-w // 16) * 16
    if n % 2 or w % 2:  # odd sizes: pad once so that 2x2 chroma pooling tiles the block
        x = F.pad(x, (0, w % 2, 0, n % 2), mode="replicate")
    luma = (x[:, :1] * 0.299).add_(x[:, 1:2], alpha=0.587).add_(x[:, 2:], alpha=0.114)
    luma = F.pad(luma.sub_(0.5), (0, wp - x.shape[-1], 0, rp - x.shape[-2]), mode="replicate")
    luma = _code_blocks(luma, fwd[:, 0], inv[:, 0]).add_(127.5)  # [S, 1, rp, wp], 0..255
    pooled = x[..., 0::2, :] + x[..., 1::2, :]
    pooled = (pooled[..., 0::2] + pooled[..., 1::2]).mul_(0.25)
    pad = (0, wp // 2 - pooled.shape[-1], 0, rp // 2 - pooled.shape[-2])
    pooled = F.pad(pooled, pad, mode="replicate")  # [S, 3, rp/2, wp/2]
    chroma = torch.matmul(to_c, pooled.flatten(2)).view(b, 2, rp // 2, wp // 2)
    cb, cr = _code_blocks(chroma, fwd[:, 1], inv[:, 1]).unbind(1)
    # RGB = Y + (1.402 Cr, -0.344136 Cb - 0.714136 Cr, 1.772 Cb), chroma upsampled 2x (nearest)
    delta = torch.stack([cr * 1.402, (cb * -0.344136).add_(cr, alpha=-0.714136), cb * 1.772], 1)
    delta = delta.repeat_interleave(2, -1)[:, :, :, None]  # [S, 3, rp/2, 1, wp]
    y = (luma.view(b, 1, rp // 2, 2, wp) + delta).view(b, 3, rp, wp)[:, :, :n, :w]
    return torch.mul(y.round_().clamp_(0, 255), 1 / 255.0, out=rows)


def _code_blocks(x: Tensor, fwd: Tensor, inv: Tensor) -> Tensor:
    """Quantised DCT round trip of ``x`` ``[B, C, R, W]`` (multiples of 8) with per-page
    ``fwd``/``inv`` ``[B, 64, 64]``."""
    b, c, r, w = x.shape
    blocks = x.reshape(b, c, r // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, -1, 64)
    back = torch.bmm(torch.bmm(blocks, fwd).round_(), inv)
    return back.view(b, c, r // 8, w // 8, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(b, c, r, w)


@dataclass
class ColorTemperature(Distortion):
    """White-balance error: warm (red up, blue down) or cool per-channel gains with a slight
    green/magenta tint, normalised so the largest gain is 1 (whites take the cast)."""

    temperature: tuple[float, float] = (0.02, 0.15)  # relative red/blue gain change
    tint: tuple[float, float] = (0.0, 0.05)
    name: str = "color_temperature"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        sign = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
        temp = sign * self.strength * uniform(generator, (batch,), *self.temperature)
        tint = self.strength * uniform(generator, (batch,), *self.tint)
        tint = tint * torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0)
        gains = torch.stack([1 + temp, 1 + tint, 1 - temp], dim=1)
        return {"gains": gains / gains.amax(1, keepdim=True)}

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        gains = params["gains"][:, :, None, None]
        return map_rows_(image, lambda x, r0, r1: x.mul_(gains), pages)


@dataclass
class BrightnessContrastGamma(Distortion):
    """``((x ** gamma) - 0.5) * contrast + 0.5 + brightness``, clamped; ranges at strength 1,
    drawn log-uniformly around 1 for contrast and gamma."""

    brightness: tuple[float, float] = (-0.12, 0.12)
    contrast: tuple[float, float] = (0.7, 1.3)
    gamma: tuple[float, float] = (0.7, 1.5)
    name: str = "brightness_contrast_gamma"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        s, g = self.strength, generator

        def log_uniform(lo: float, hi: float) -> Tensor:
            return torch.exp(s * uniform(g, (batch,), math.log(lo), math.log(hi)))

        return {
            "brightness": s * uniform(g, (batch,), *self.brightness),
            "contrast": log_uniform(*self.contrast),
            "gamma": log_uniform(*self.gamma),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        b, c, g = (_per_page(params[k]) for k in ("brightness", "contrast", "gamma"))

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            return x.log_().mul_(g).exp_().sub_(0.5).mul_(c).add_(0.5 + b).clamp_(0.0, 1.0)

        return map_rows_(image, block, pages)


@dataclass
class Moire(Distortion):
    """Moire of a photographed screen: the product of two fine gratings (periods near the pixel
    pitch, slightly different frequency and angle) gives slow interference fringes; each
    channel's grating is phase-shifted (sub-pixels), so the fringes are coloured."""

    amplitude: tuple[float, float] = (0.03, 0.12)
    period: tuple[float, float] = (2.2, 4.0)  # pixels, first grating
    ratio: tuple[float, float] = (1.01, 1.06)  # frequency ratio of the second grating
    angle_deg: tuple[float, float] = (0.5, 5.0)  # angle between the gratings
    name: str = "moire"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g = generator
        f1 = 1.0 / uniform(g, (batch,), *self.period)
        theta1 = uniform(g, (batch,), 0.0, math.pi)
        sign = torch.where(torch.rand(batch, generator=g) < 0.5, -1.0, 1.0)
        theta2 = theta1 + sign * torch.deg2rad(uniform(g, (batch,), *self.angle_deg))
        f2 = f1 * uniform(g, (batch,), *self.ratio)
        return {
            "amplitude": self.strength * uniform(g, (batch,), *self.amplitude),
            "freq": torch.stack([f1, f2], 1),
            "angle": torch.stack([theta1, theta2], 1),
            "phase": uniform(g, (batch, 3), 0.0, 2 * math.pi),
        }

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        amp = _per_page(params["amplitude"])
        w = 2 * math.pi * params["freq"]  # [B, 2]
        kx, ky = w * torch.cos(params["angle"]), w * torch.sin(params["angle"])
        xs = torch.arange(image.shape[-1], device=image.device, dtype=torch.float32)
        # cos(a x + b y + p) = cos(a x + p) cos(b y) - sin(a x + p) sin(b y); the second grating
        # is phase-shifted per channel
        ax1 = (kx[:, 0, None] * xs)[:, None, None]  # [B, 1, 1, W]
        ax2 = (kx[:, 1, None] * xs)[:, None, None] + params["phase"][:, :, None, None]
        c1, s1, c2, s2 = torch.cos(ax1), torch.sin(ax1), torch.cos(ax2), torch.sin(ax2)

        def block(x: Tensor, r0: int, r1: int) -> Tensor:
            ys = torch.arange(r0, r1, device=x.device, dtype=torch.float32)[:, None]
            by1, by2 = _per_page(ky[:, 0]) * ys, _per_page(ky[:, 1]) * ys  # [B, 1, R, 1]
            g1 = (c1 * torch.cos(by1)).addcmul_(s1, torch.sin(by1), value=-1.0)
            g2 = (c2 * torch.cos(by2)).addcmul_(s2, torch.sin(by2), value=-1.0)
            return x.mul_(g2.mul_(g1).mul_(amp).add_(1.0)).clamp_(0.0, 1.0)

        return map_rows_(image, block, pages)
