"""Device-independent random fields and the row-chunked machinery the photometric effects share.

Per-pixel randomness comes from a counter-based hash, never from a stateful RNG, so the same
per-page ``seed`` gives the same field on the CPU and on CUDA, in any batch and any chunking:

* every page/plane gets a key from its seed, every row ``i`` and column ``j`` a key derived from
  it (``O(H + W)`` work), and pixel ``(i, j)`` the 32-bit value ``mix32(row_key ^ col_key)``;
* ``mix32`` is a two-round multiply/xor-shift finaliser on int64 tensors holding 32-bit values,
  with odd multipliers below ``2**31`` and a 32-bit mask after every multiply, so no int64
  operation can overflow (bit-identical on every device);
* :func:`uniform_rows` maps 24 bits to ``(0, 1)``; :func:`normal_rows` applies Box-Muller to the
  two 16-bit halves of one hash, giving two normals per hash (the integer bits are identical
  across devices; ``log``/``cos`` may differ by an ulp).

Large images are changed in place, in blocks of rows (:func:`map_rows_`), so temporaries stay
in cache instead of page-faulting full-resolution buffers: on a CPU this is several times
faster than whole-image ops; on CUDA one block covers the image. Smooth fields are cubic
B-splines through a coarse control grid (:func:`smooth_field`), evaluated at a reduced "work"
resolution and upsampled bilinearly per row block (:class:`Upsampler`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

MASK32 = 0xFFFFFFFF
_M1, _M2 = 0x7FEB352D, 0x5BD1E995  # odd multipliers < 2**31: products of 32-bit values fit int64
_ROW_STEP, _COL_STEP, _PLANE_STEP = 0x61C88647, 0x3C6EF372, 0x1B873593
CPU_BLOCK = 1 << 20  # elements per row block on the CPU (about 4 MB of float32)


def mix32(h: Tensor) -> Tensor:
    """Hash int64 ``h`` holding values in ``[0, 2**32)`` to well-mixed 32-bit values (in place
    when ``h`` is a fresh tensor; returns it)."""
    h ^= h >> 16
    h.mul_(_M1).bitwise_and_(MASK32)
    h ^= h >> 15
    h.mul_(_M2).bitwise_and_(MASK32)
    h ^= h >> 16
    return h


def new_seeds(batch: int, generator: torch.Generator) -> Tensor:
    """``[B]`` int64 page seeds in ``[0, 2**31)`` drawn from ``generator``."""
    return torch.randint(0, 2**31 - 1, (batch,), generator=generator, dtype=torch.int64)


def hash_rows(seed: Tensor, planes: int, r0: int, r1: int, width: int, c0: int = 0) -> Tensor:
    """32-bit hashes of rows ``r0:r1``, columns ``c0:c0 + width`` (any integers, negative
    too) of ``planes`` independent planes: int64 ``[B, planes, r1 - r0, width]``, a function of
    ``(seed, plane, row, column)`` only."""
    dev = seed.device
    plane = torch.arange(planes, device=dev, dtype=torch.int64)
    key = mix32((seed[:, None].to(torch.int64) + plane * _PLANE_STEP) & MASK32)  # [B, P]
    rows = torch.arange(r0, r1, device=dev, dtype=torch.int64)
    cols = torch.arange(c0, c0 + width, device=dev, dtype=torch.int64)
    row_key = mix32((key[:, :, None] + rows * _ROW_STEP) & MASK32)  # [B, P, R]
    col_key = mix32((mix32(key ^ 0x2545F491)[:, :, None] + cols * _COL_STEP) & MASK32)
    return mix32(row_key[:, :, :, None] ^ col_key[:, :, None, :])


def uniform_rows(seed: Tensor, channels: int, r0: int, r1: int, width: int, c0: int = 0
                 ) -> Tensor:  # fmt: skip
    """Uniform ``(0, 1)`` float32 field rows ``[B, C, r1 - r0, W]`` (24-bit resolution),
    columns from ``c0``."""
    h = hash_rows(seed, channels, r0, r1, width, c0)
    return (h >> 8).float().add_(0.5).mul_(2.0**-24)


def normal_rows(seed: Tensor, channels: int, r0: int, r1: int, width: int) -> Tensor:
    """Standard normal float32 field rows ``[B, C, r1 - r0, W]`` (Box-Muller, 2 per hash)."""
    h = hash_rows(seed, (channels + 1) // 2, r0, r1, width)
    u1 = (h >> 16).float().add_(0.5).mul_(1.0 / 65536)
    angle = (h & 0xFFFF).float().mul_(2 * math.pi / 65536)
    radius = u1.log_().mul_(-2.0).sqrt_()
    z = torch.stack([radius * torch.cos(angle), radius.mul_(angle.sin_())], dim=2)
    return z.flatten(1, 2)[:, :channels]


TABLE_SIZE = 1 << 22  # values in each master sequence of the fast fields
_TABLE_SEED = {"normal": 0x243F6A88, "uniform": 0x13198A2E}


@lru_cache(maxsize=8)
def _table(kind: str, length: int, device: torch.device) -> Tensor:
    """Master sequence of ``TABLE_SIZE`` hash values (normals scaled by ``sqrt(1/2)``, so the
    sum of two has unit variance), extended by ``length - TABLE_SIZE`` wrapped values; built on
    the CPU (bit-identical everywhere), then moved to ``device``."""
    seed = torch.tensor([_TABLE_SEED[kind]])
    if kind == "normal":
        base = normal_rows(seed, 1, 0, TABLE_SIZE // 4096, 4096).flatten().mul_(math.sqrt(0.5))
    else:
        base = uniform_rows(seed, 1, 0, TABLE_SIZE // 4096, 4096).flatten()
    return torch.cat([base, base[: length - TABLE_SIZE]]).to(device)


class FastRows:
    """Rows of a fast ``"normal"`` or ``"uniform"`` field (:func:`fast_normal_rows`,
    :func:`fast_uniform_rows`) of ``channels`` channels, rows ``r0:r1`` available: the window
    of every row is hashed once here, so taking a block of rows is one gather."""

    def __init__(self, kind: str, seed: Tensor, channels: int, r0: int, r1: int, width: int
                 ) -> None:  # fmt: skip
        length = TABLE_SIZE + -(-width // 4096) * 4096
        self.windows = _table(kind, length, seed.device).unfold(0, width, 1)  # [L', W], a view
        self.start = hash_rows(seed, 2 * channels, r0, r1, 1)[..., 0] % TABLE_SIZE  # [B, 2C, R]
        self.kind, self.channels, self.r0 = kind, channels, r0

    def rows(self, r0: int, r1: int) -> Tensor:
        """Rows ``r0:r1`` ``[B, C, r1 - r0, W]``."""
        start = self.start[:, :, r0 - self.r0 : r1 - self.r0]
        w = self.windows.index_select(0, start.flatten()).view(*start.shape, -1)
        total = w[:, : self.channels].add(w[:, self.channels :])
        return total if self.kind == "normal" else total.frac_()


def fast_normal_rows(seed: Tensor, channels: int, r0: int, r1: int, width: int) -> Tensor:
    """Standard normal field rows ``[B, C, r1 - r0, W]``, ~10x cheaper than :func:`normal_rows`:
    each value is ``(a + b) / sqrt(2)`` of two master-sequence values, the windows chosen per
    (page, channel, row) by the hash. Values are i.i.d. within a row; two rows are correlated
    only where both of their windows overlap (probability ~ ``(2 W / 2**22)**2`` per pair)."""
    return FastRows("normal", seed, channels, r0, r1, width).rows(r0, r1)


def fast_uniform_rows(seed: Tensor, channels: int, r0: int, r1: int, width: int) -> Tensor:
    """Uniform ``(0, 1)`` field rows ``[B, C, r1 - r0, W]``: ``frac(a + b)`` of two master
    values (see :func:`fast_normal_rows`)."""
    return FastRows("uniform", seed, channels, r0, r1, width).rows(r0, r1)


def hash_uniform(seed: Tensor, channels: int, height: int, width: int) -> Tensor:
    """Whole uniform field ``[B, C, H, W]`` (see :func:`uniform_rows`)."""
    return _whole(uniform_rows, seed, channels, height, width)


def hash_normal(seed: Tensor, channels: int, height: int, width: int) -> Tensor:
    """Whole standard normal field ``[B, C, H, W]`` (see :func:`normal_rows`)."""
    return _whole(normal_rows, seed, channels, height, width)


def _whole(fn: Callable, seed: Tensor, channels: int, height: int, width: int) -> Tensor:
    out = torch.empty(seed.shape[0], channels, height, width, device=seed.device)
    for r0, r1 in row_blocks(out.shape, seed.device):
        out[:, :, r0:r1] = fn(seed, channels, r0, r1, width)
    return out


def row_blocks(shape: torch.Size | tuple[int, ...], device: torch.device, multiple: int = 1
               ) -> list[tuple[int, int]]:  # fmt: skip
    """Row ranges covering ``shape`` ``[B, C, H, W]``: ~:data:`CPU_BLOCK` elements each on the
    CPU (a multiple of ``multiple`` rows, but the last), one block on other devices."""
    b, c, h, w = shape
    if device.type != "cpu":
        return [(0, h)]
    rows = max(1, CPU_BLOCK // max(1, b * c * w) // multiple) * multiple
    return [(r, min(h, r + rows)) for r in range(0, h, rows)]


def select(x: Tensor, pages: Tensor | None) -> Tensor:
    """``x[pages]`` (``x`` itself when ``pages`` is None)."""
    return x if pages is None else x.index_select(0, pages)


def map_rows_(image: Tensor, fn: Callable[[Tensor, int, int], Tensor], pages: Tensor | None = None,
              halo: int = 0, multiple: int = 1) -> Tensor:  # fmt: skip
    """In place, over row blocks of ``image`` ``[B, C, H, W]``: ``image[pages, :, r0:r1] =
    fn(block, r0, r1)`` (every page when ``pages`` is None); returns ``image``.

    ``block`` ``[S, C, r1 - r0 + 2 halo, W + 2 halo]`` holds rows ``r0 - halo : r1 + halo`` and
    ``halo`` extra columns each side, edge-replicated beyond the image; without a halo and
    ``pages`` it is a view of ``image`` that ``fn`` may change in place and return. ``fn``
    returns ``[S, C, r1 - r0, W]``. A block is written only after the next one has been read,
    so halos see the input. Blocks hold ~:data:`CPU_BLOCK` elements on the CPU (they stay in
    cache), a multiple of ``multiple`` rows each but the last; one block on other devices.
    """
    height = image.shape[-2]
    shape = (image.shape[0] if pages is None else len(pages), *image.shape[1:])
    # index_copy_ into a strided block is slow on the CPU: there, copy page by page
    targets = pages.tolist() if pages is not None and image.device.type == "cpu" else None

    def write(rows: Tensor, r0: int, r1: int) -> None:
        dst = image[:, :, r0:r1]
        if targets is not None:
            for i, page in enumerate(targets):
                dst[page].copy_(rows[i])
        elif pages is not None:
            dst.index_copy_(0, pages, rows)
        elif rows.data_ptr() != dst.data_ptr():
            dst.copy_(rows)

    pending = None
    for r0, r1 in row_blocks(shape, image.device, multiple):
        if halo:
            if r0 >= halo and r1 + halo <= height:
                rows = image[:, :, r0 - halo : r1 + halo]
            else:
                idx = torch.arange(r0 - halo, r1 + halo, device=image.device)
                rows = image.index_select(2, idx.clamp_(0, height - 1))
            block = F.pad(select(rows, pages), (halo, halo, 0, 0), mode="replicate")
        else:
            block = select(image[:, :, r0:r1], pages)
        if pending is not None:
            write(*pending)
        pending = fn(block, r0, r1), r0, r1
    if pending is not None:
        write(*pending)
    return image


def bspline_weights(pos: Tensor, n_ctrl: int) -> Tensor:
    """``[N, n_ctrl]`` uniform cubic B-spline weights (rows sum to 1) at positions ``pos``
    ``[N]`` in ``[0, 1]`` across the field, which sit at spline parameter
    ``1 + pos * (n_ctrl - 3)``: the outer control points only shape the borders."""
    t = 1.0 + pos.double().clamp(0, 1)[:, None] * (n_ctrl - 3)
    d = (t - torch.arange(n_ctrl, dtype=torch.float64, device=pos.device)[None, :]).abs()
    w = torch.where(d < 1, (4 - 6 * d**2 + 3 * d**3) / 6, ((2 - d).clamp(min=0) ** 3) / 6)
    return w.float()


@lru_cache(maxsize=64)
def bspline_matrix(n_out: int, n_ctrl: int, device: torch.device) -> Tensor:
    """:func:`bspline_weights` at the centres ``(k + 0.5) / n_out`` of ``n_out`` samples."""
    pos = (torch.arange(n_out, dtype=torch.float64) + 0.5) / n_out
    return bspline_weights(pos, n_ctrl).to(device)


def smooth_field(ctrl: Tensor, height: int, width: int) -> Tensor:
    """Cubic B-spline surface through control grid ``ctrl`` ``[B, C, gh, gw]`` (gh, gw >= 4)
    sampled on ``[B, C, height, width]``."""
    gh, gw = ctrl.shape[-2:]
    wy = bspline_matrix(height, gh, ctrl.device)
    wx = bspline_matrix(width, gw, ctrl.device)
    return wy @ ctrl @ wx.T


def smooth_at(ctrl: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """The surface of :func:`smooth_field` at positions ``y`` ``[h]``, ``x`` ``[w]`` (fractions
    of the field's height and width): ``[..., h, w]``."""
    wy = bspline_weights(y, ctrl.shape[-2]).to(ctrl.device)
    wx = bspline_weights(x, ctrl.shape[-1]).to(ctrl.device)
    return wy @ ctrl @ wx.T


def work_size(height: int, width: int, factor: int) -> tuple[int, int]:
    """Size of a ``factor`` times coarser work grid (at least 8 x 8)."""
    return max(8, -(-height // factor)), max(8, -(-width // factor))


class Upsampler:
    """Bilinear (``align_corners=False``) upsampling of ``low`` ``[B, C, h, w]`` to ``(H, W)``,
    one block of rows at a time: ``rows(r0, r1)`` -> ``[B, C, r1 - r0, W]``."""

    def __init__(self, low: Tensor, height: int, width: int) -> None:
        h = low.shape[-2]  # horizontal pass only (the vertical scale is 1)
        self.mid = F.interpolate(low, size=(h, width), mode="bilinear", align_corners=False)
        self.y0, self.y1, self.fy = _linear_taps(low.shape[-2], height, low.device)

    def rows(self, r0: int, r1: int) -> Tensor:
        a = self.mid.index_select(2, self.y0[r0:r1])
        b = self.mid.index_select(2, self.y1[r0:r1])
        return a.lerp_(b, self.fy[r0:r1, None])


@lru_cache(maxsize=64)
def _linear_taps(n_in: int, n_out: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(
        0, n_in - 1
    )
    i0 = src.floor().long()
    i1 = (i0 + 1).clamp(max=n_in - 1)
    return i0.to(device), i1.to(device), (src - i0).float().to(device)


def work_coords(height: int, width: int, size: tuple[int, int], device: torch.device
                ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Full-resolution pixel coordinates ``y`` ``[h, 1]`` and ``x`` ``[1, w]`` of the centres of
    a work grid of ``size = (h, w)`` spanning an ``height x width`` image."""
    h, w = size
    y = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * (height / h) - 0.5
    x = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * (width / w) - 0.5
    return y[:, None], x[None, :]


def multiply_field_(image: Tensor, low: Tensor, pages: Tensor | None = None) -> Tensor:
    """``image[pages] *= up(low)`` clamped to [0, 1], in place; ``low`` ``[S, 1 or C, h, w]``
    upsampled bilinearly to the image size one row block at a time."""
    up = Upsampler(low.to(image.dtype), image.shape[-2], image.shape[-1])
    return map_rows_(image, lambda x, r0, r1: x.mul_(up.rows(r0, r1)).clamp_(0.0, 1.0), pages)


def downsample(image: Tensor, factor: int, pages: Tensor | None = None) -> Tensor:
    """Box-filtered ``image[pages]`` ``[S, C, H, W]`` -> ``[S, C, H // f, W // f]`` for a power
    of two ``factor`` (trailing rows/columns dropped), by halving in row blocks."""
    h, w = image.shape[-2] // factor * factor, image.shape[-1] // factor * factor
    shape = (image.shape[0] if pages is None else len(pages), *image.shape[1:])
    out = image.new_empty(shape[0], shape[1], h // factor, w // factor)
    rows = max(factor, row_blocks(shape, image.device)[0][1] // factor * factor)
    for r0 in range(0, h, rows):
        x, r1 = select(image[:, :, r0 : min(h, r0 + rows), :w], pages), min(h, r0 + rows)
        for _ in range(int(math.log2(factor))):
            x = x[..., 0::2, :] + x[..., 1::2, :]
            x = x[..., 0::2] + x[..., 1::2]
        out[:, :, r0 // factor : r1 // factor] = x.mul_(1.0 / factor**2)
    return out


def uniform(generator: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    """Float32 uniform draws in ``[low, high)`` from ``generator`` (CPU)."""
    return low + (high - low) * torch.rand(shape, generator=generator)
