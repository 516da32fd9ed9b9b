"""Exact, loop-free rasterisation of x-monotone polylines (ECG traces) on any torch device.

A trace is a function of time, so inside one pixel column it covers a single vertical span
``[min, max]`` of the polyline over that column. We compute, for every polyline and column, the
span exactly (samples inside the column plus the linearly interpolated values on its two
borders), widen it by the line width, and paint only the pixels it touches: fixed-point coverage
per column pixel for anti-aliased coverage and its bit flag for the trace masks, giving, for a
whole batch at once,

* ``coverage`` ``[B, H, W]`` float in [0, 1]: the ink (box-filtered vertically), and
* ``bits`` ``[B, H, W]`` int32: bit ``k`` set where polyline flag ``1 << k`` touches the pixel,
* ``labels`` ``[B, H, W]`` uint8: 1 + the lowest such ``k`` (0 where no flagged line passes).

Everything is integer after the span computation, so the result is bit-identical on every device
and batch composition. Pixel centres are at integer coordinates (pixel ``j`` covers
``[j - 0.5, j + 0.5)``), matching :mod:`ecgsynth.layout`.
"""

from __future__ import annotations

import torch
from torch import Tensor

FIXED_ONE = 1024  # fixed-point scale of coverage


class PolylineCanvas:
    """Accumulates polylines for a batch of ``B`` pages of size ``(H, W)``; see module docstring.

    Usage: ``canvas.add(...)`` any number of times, then ``coverage, bits = canvas.finish()``.
    ``workspace`` (optional, int32, ``B * H * W`` elements) is reused for the coverage sums so
    that repeated renders do not page-fault fresh memory; the returned ``coverage`` lives in a
    new tensor.
    """

    def __init__(
        self,
        batch: int,
        height: int,
        width: int,
        device: torch.device | str,
        workspace: Tensor | None = None,
    ) -> None:
        self.batch, self.height, self.width = batch, height, width
        self.device = torch.device(device)
        self._spans: list[tuple[Tensor, ...]] = []
        size = batch * height * width
        if workspace is None or workspace.numel() < size or workspace.dtype != torch.int32:
            workspace = torch.empty(size, dtype=torch.int32, device=self.device)
        self._cov = workspace[:size]

    def add(self, x: Tensor, y: Tensor, page: Tensor, flag: Tensor, line_width: Tensor) -> None:
        """Add ``S`` polylines.

        Args:
            x: ``[S, N]`` float pixel x of each vertex, non-decreasing along ``N``; NaN marks
                padding after the last vertex.
            y: ``[S, N]`` float pixel y; NaN breaks the line (a gap).
            page: ``[S]`` long, the page each polyline belongs to.
            flag: ``[S]`` int32 bit flags written into ``bits`` (0 = ink only, no mask).
            line_width: ``[S]`` float line width in pixels (> 0).
        """
        if x.shape != y.shape or x.dim() != 2:
            raise ValueError(f"x and y must both be [S, N], got {tuple(x.shape)}, {tuple(y.shape)}")
        if x.shape[0] == 0:
            return
        top, bottom, col = _column_spans(x.float() + 0.5, y.float() + 0.5, line_width.float())
        a = top.clamp(0, self.height)
        b = bottom.clamp(0, self.height)
        ok = (
            torch.isfinite(top) & torch.isfinite(bottom) & (b > a) & (col >= 0) & (col < self.width)
        )
        expand = lambda t: t[:, None].expand_as(ok)[ok]  # noqa: E731
        self._spans.append((a[ok], b[ok], col[ok], expand(page), expand(flag.to(torch.int32))))

    def finish(self, label_bits: int = -1) -> tuple[Tensor, Tensor, Tensor]:
        """Paint every span. Only the flag bits in ``label_bits`` (default: all) make labels.

        Returns:
            ``coverage`` ``[B, H, W]`` float32 in [0, 1], ``bits`` ``[B, H, W]`` int32 and
            ``labels`` ``[B, H, W]`` uint8: 1 + the lowest flag bit set at the pixel, 0 if none.
        """
        h, w = self.height, self.width
        bits = torch.zeros(self.batch, h, w, dtype=torch.int32, device=self.device)
        labels = torch.zeros(self.batch, h, w, dtype=torch.uint8, device=self.device)
        self._cov.zero_()
        if self._spans:
            a, b, col, page, flag = (torch.cat(t) for t in zip(*self._spans))
            first = a.floor().long()
            count = b.ceil().long() - first  # rows touched by each span (>= 1)
            span = torch.repeat_interleave(torch.arange(len(a), device=self.device), count)
            offset = torch.arange(len(span), device=self.device) - torch.repeat_interleave(
                torch.cumsum(count, 0) - count, count
            )
            row = first[span] + offset
            rowf = row.to(a.dtype)
            cov = torch.minimum(rowf + 1, b[span]) - torch.maximum(rowf, a[span])
            cov_q = torch.round(cov.clamp(0, 1) * FIXED_ONE).to(torch.int32)
            idx = (page[span] * h + row) * w + col[span]
            self._cov.index_add_(0, idx, cov_q)
            marked = flag[span] != 0
            # one span per (polyline, column): a flag never lands twice on a pixel
            idx = idx[marked]
            bits.view(-1).index_add_(0, idx, flag[span][marked])
            value = bits.view(-1)[idx] & label_bits
            lowest = torch.log2((value & -value).double()).nan_to_num_(0.0, 0.0, 0.0)
            lowest = torch.where(value != 0, lowest.to(torch.uint8) + 1, 0).to(torch.uint8)
            labels.view(-1)[idx] = lowest  # duplicates write the same value
        coverage = self._cov.view(self.batch, h, w).float().mul_(1.0 / FIXED_ONE).clamp_(0.0, 1.0)
        return coverage, bits, labels


def _column_spans(u: Tensor, v: Tensor, line_width: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Vertical ink span of each polyline in each pixel column it crosses.

    Args:
        u, v: ``[S, N]`` vertex coordinates shifted so that column ``c`` covers ``u`` in
            ``[c, c + 1)`` and row ``r`` covers ``v`` in ``[r, r + 1)``.
        line_width: ``[S]``.

    Returns:
        ``top``, ``bottom``: ``[S, C]`` span in row units (NaN where the column is empty);
        ``col``: ``[S, C]`` long absolute column index.
    """
    s, n = u.shape
    u = torch.where(torch.isfinite(u), u, torch.full_like(u, float("inf")))
    finite = torch.isfinite(u) & torch.isfinite(v)
    if not bool(finite.any()):
        empty = u.new_empty((s, 0))
        return empty, empty, empty.long()
    big = torch.finfo(u.dtype).max
    first = torch.where(finite, u, torch.full_like(u, big)).amin(dim=1).floor()
    last = torch.where(finite, u, torch.full_like(u, -big)).amax(dim=1).floor()
    first = torch.where(first <= last, first, torch.zeros_like(first))
    last = torch.where(first <= last, last, first - 1)
    n_cols = int((last - first).max().item()) + 1
    radius = torch.clamp(torch.round(line_width * 0.5 - 0.5), min=0).long()  # horizontal widening
    pad = int(radius.max().item())
    n_cols += 2 * pad
    first = first - pad
    j = torch.arange(n_cols, device=u.device)
    col = first.long()[:, None] + j[None, :]

    # samples inside each column
    inf = torch.full_like(v, float("inf"))
    local = (u.floor() - first[:, None]).clamp(0, n_cols - 1).long()
    lo = torch.full((s, n_cols), float("inf"), device=u.device)
    hi = torch.full((s, n_cols), float("-inf"), device=u.device)
    lo.scatter_reduce_(1, local, torch.where(finite, v, inf), reduce="amin")
    hi.scatter_reduce_(1, local, torch.where(finite, v, -inf), reduce="amax")

    # polyline value on every column border (n_cols + 1 borders)
    borders = first[:, None] + torch.arange(n_cols + 1, device=u.device)[None, :].to(u.dtype)
    k = torch.searchsorted(u.contiguous(), borders.contiguous(), right=True) - 1
    k0 = k.clamp(0, n - 1)
    k1 = (k + 1).clamp(0, n - 1)
    u0, u1 = u.gather(1, k0), u.gather(1, k1)
    v0, v1 = v.gather(1, k0), v.gather(1, k1)
    inside = (k >= 0) & (k + 1 < n) & torch.isfinite(u1) & torch.isfinite(v0) & torch.isfinite(v1)
    t = ((borders - u0) / torch.where(inside, u1 - u0, torch.ones_like(u0))).clamp(0, 1)
    vb = torch.where(inside, v0 + t * (v1 - v0), torch.full_like(v0, float("nan")))
    lo = torch.fmin(torch.fmin(lo, vb[:, :-1]), vb[:, 1:])
    hi = torch.fmax(torch.fmax(hi, vb[:, :-1]), vb[:, 1:])

    # widen horizontally by the line width (per polyline radius): column c takes the span of
    # columns c - radius .. c + radius (shifts of the unwidened spans, so the reach is radius)
    lo0, hi0 = lo, hi
    for step in range(1, pad + 1):
        use = (radius >= step)[:, None]
        lo_l = torch.nn.functional.pad(lo0[:, step:], (0, step), value=float("inf"))
        lo_r = torch.nn.functional.pad(lo0[:, :-step], (step, 0), value=float("inf"))
        hi_l = torch.nn.functional.pad(hi0[:, step:], (0, step), value=float("-inf"))
        hi_r = torch.nn.functional.pad(hi0[:, :-step], (step, 0), value=float("-inf"))
        lo = torch.where(use, torch.minimum(lo, torch.minimum(lo_l, lo_r)), lo)
        hi = torch.where(use, torch.maximum(hi, torch.maximum(hi_l, hi_r)), hi)

    empty = ~torch.isfinite(lo)
    half = (line_width * 0.5)[:, None]
    top = torch.where(empty, torch.full_like(lo, float("nan")), lo - half)
    bottom = torch.where(empty, torch.full_like(hi, float("nan")), hi + half)
    return top, bottom, col
