"""Trace segmenters: an RGB page in, a trace probability map out.

A segmenter is any callable ``image [B, 3, H, W] float in [0, 1] -> prob [B, H, W] in [0, 1]``.

* :class:`InkSegmenter`: non-learned baseline and fallback. Ink is dark in *every* colour
  channel, while printed grids are light in at least one (a red grid is bright in red); paper
  shading is removed by normalising with a local paper-brightness estimate; long straight
  horizontal and vertical strokes (grid lines, in the rectified frame) are suppressed.
* :class:`UNetSegmenter`: the learned model of :mod:`digitizer.unet`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "unet_small.pt"


class Segmenter(Protocol):
    """``image [B, 3, H, W]`` float in [0, 1] at ``px_per_mm`` (the grid's scale, ``None`` if
    unknown) -> trace probability ``[B, H, W]`` in [0, 1]. A callable without the
    ``px_per_mm`` argument (the older form) is still accepted by the pipeline. A segmenter may
    also keep ``pages``, a :class:`PageReading` per page of its last call (as
    :class:`UNetSegmenter` does): the pipeline reports its note and gives a page it kept little
    of the page's ink a second opinion from the ink map."""

    name: str

    def __call__(self, image: torch.Tensor, px_per_mm: float | None = None) -> torch.Tensor: ...


class InkSegmenter:
    """Dark-ink segmentation with grid suppression (no learning).

    Args:
        line_mm: strokes straighter and longer than this (mm) are removed as grid lines.
        px_per_mm: the image scale, when known (the pipeline passes the grid estimate).
        busy_tiles: when ink is left in more than this share of the page's 5 mm squares
            after the straight lines went (traces cover under half of them, even on 12x1
            pages; a grid as dark as the trace, broken by texture, wrinkles or JPEG, covers
            nearly all), the page is read again with the grid measured and subtracted:
        strip_mm: the darkness that a column or row shows along most of each such stretch
            (grid lines, however dark, and their halo) is subtracted before thresholding (0:
            never);
        thick_mm: and ink that a square this wide (mm) fits inside is a dark area, not a
            trace.
    """

    name = "ink"

    def __init__(self, line_mm: float = 20.0, px_per_mm: float | None = None,
                 strip_mm: float = 40.0, thick_mm: float = 1.5,
                 busy_tiles: float = 0.7) -> None:  # fmt: skip
        self.line_mm = line_mm
        self.busy_tiles = busy_tiles
        self.thick_mm = thick_mm
        self.strip_mm = strip_mm
        self.px_per_mm = px_per_mm

    def __call__(self, image: torch.Tensor, px_per_mm: float | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, H, W]``; ``px_per_mm`` (the grid's) unless set here."""
        scale = self.px_per_mm or px_per_mm
        pages = image.cpu().numpy()
        return torch.stack([torch.from_numpy(self.segment(im, scale)) for im in pages])

    def segment(self, image: np.ndarray, px_per_mm: float | None = None) -> np.ndarray:
        """One page: ``[3, H, W]`` float in [0, 1] -> ``float32 [H, W]``."""
        chw = np.asarray(image, dtype=np.float32)
        h, w = chw.shape[1:]
        ppm = self.px_per_mm or px_per_mm or max(h, w) / 279.4
        brightest = chw.max(axis=0)  # channel planes are contiguous here: no transposed copy
        darkness = _darkness(brightest, ppm, keep_edges=False)
        # ink is dark in all channels; scale so that typical ink (>= 0.45 darker) is ~1
        ramp = _ink_ramp(darkness)
        prob = self._without_lines(ramp.copy(), ppm)
        if self.strip_mm and _inked_tiles(prob > 0.5, ppm) > self.busy_tiles:
            # the grid stayed: lines as dark as ink, broken by texture, wrinkles or JPEG; such
            # photos have shadows too, whose edges must stay paper
            darkness = _darkness(brightest, ppm, keep_edges=True)
            ramp = _ink_ramp(darkness)
            prob = self._without_lines(self._without_dark_grid(ramp, darkness, chw, ppm), ppm)
        return prob

    def _without_dark_grid(self, before: np.ndarray, darkness: np.ndarray, chw: np.ndarray,
                           ppm: float) -> np.ndarray:  # fmt: skip
        """A grid as dark as ink: what every column (row) shows along most of its length is
        paper or a grid line, never the sparse trace; subtract it (pixels of pure white take
        no part: the fill around a rectified page). Then ink thicker than any pen (the dark
        background beside a photographed page, a shadow's core) goes."""
        n = max(16, int(self.strip_mm * ppm))
        valid = chw.min(axis=0) < 0.999
        vertical = _strip_level(darkness, valid, n, 0)  # the level of each column: its lines
        horizontal = _strip_level(darkness, valid, n, 1)
        prob = _ink_ramp(darkness - np.maximum(vertical, horizontal))
        # a trace that crosses a line as dark as itself loses the crossing: bridge it again
        # where there is ink on both sides of the line, across it
        for level, across in ((vertical, (1, 9)), (horizontal, (9, 1))):
            _bridge(prob, before, level > 0.1, across)
        ink = (prob > 0.5).astype(np.uint8)
        # ink thicker than any pen all round (the dark background beyond a photographed
        # page's edge, a shadow's core, a filled logo) is not a trace, nor are the thinner
        # parts of the same dark area within thick_mm * 4 of it (the tapering corner of the
        # background beside a rotated page)
        k = max(5, round(self.thick_mm * ppm))
        thick = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        if thick.any():
            grown = cv2.dilate(ink, np.ones((3, 3), np.uint8))  # bridge a 1-px seam
            for _ in range(4 * k):
                more = cv2.dilate(thick, np.ones((3, 3), np.uint8)) & grown
                if np.array_equal(more, thick):
                    break
                thick = more
            prob[thick > 0] = 0.0
        return prob

    def _without_lines(self, prob: np.ndarray, ppm: float) -> np.ndarray:
        """Straight strokes (grid lines) out of an ink map ``[H, W]`` (see the class)."""
        ink = (prob > 0.5).astype(np.uint8)
        n = max(5, int(self.line_mm * ppm))
        raw = prob.copy()
        for axis in (1, 0):
            kernel = np.ones((1, n) if axis == 1 else (n, 1), np.uint8)
            lines = cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel)
            lines = _grid_lines_only(lines, ink, axis)
            # the line and its faint anti-aliased edge; ink that touches the line from beside
            # it (a trace running along a grid line as dark as it) is not the line's
            core = lines > 0
            edge = (cv2.dilate(lines, np.ones((3, 3), np.uint8)) > 0) & ~core & (ink == 0)
            lines = core | edge
            prob[lines] = 0.0
            # where a trace crossed the removed line, bridge it again: ink on both sides,
            # across the line (a closing along the other axis, only inside the removed line)
            _bridge(prob, raw, lines, (9, 1) if axis == 1 else (1, 9))
        return prob.astype(np.float32)


def _bridge(prob: np.ndarray, raw: np.ndarray, region: np.ndarray,
            across: tuple[int, int]) -> None:  # fmt: skip
    """Where a trace crossed a removed line: inside ``region`` ``bool [H, W]`` (the line),
    pixels that a closing of ``prob``'s ink by an ``across`` kernel fills and that were ink in
    ``raw`` get their ``raw`` value back, in place (ink on both sides, across the line)."""
    bridged = cv2.morphologyEx((prob > 0.5).astype(np.uint8), cv2.MORPH_CLOSE,
                               np.ones(across, np.uint8))  # fmt: skip
    fill = (bridged > 0) & region & (raw > 0.5)
    prob[fill] = raw[fill]


def _inked_tiles(ink: np.ndarray, ppm: float, tile_mm: float = 5.0) -> float:
    """The share of the ``tile_mm`` squares of ``ink`` ``bool [H, W]`` with over 1 % ink."""
    t = max(4, int(tile_mm * ppm))
    h, w = ink.shape[0] // t * t, ink.shape[1] // t * t
    if h == 0 or w == 0:
        return 0.0
    tiles = ink[:h, :w].reshape(h // t, t, w // t, t).mean(axis=(1, 3))
    return float((tiles > 0.01).mean())


def _darkness(brightest: np.ndarray, ppm: float, keep_edges: bool) -> np.ndarray:
    """How much darker than the local paper each pixel of ``brightest`` ``[H, W]`` (the
    brightest channel) is, in [0, 1]. The paper's brightness is a max filter 3 mm wide (thin
    dark strokes vanish in it), smoothed as wide. With ``keep_edges`` it is a closing (the
    max filter, then a min filter as wide) smoothed over 1 mm: the edge of a shadow stays
    where it is, where the max filter alone moves it half its width into the shadow and
    leaves a band of shadow that reads as ink (and takes the trace across it along)."""
    k = int(2 * round(1.5 * ppm) + 1)
    square = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    if keep_edges:
        paper = cv2.morphologyEx(brightest, cv2.MORPH_CLOSE, square)
        soft = int(2 * round(0.5 * ppm) + 1)
        paper = cv2.blur(paper, (soft, soft))
    else:
        paper = cv2.blur(cv2.dilate(brightest, square), (k, k))
    return np.clip(1.0 - brightest / np.maximum(paper, 0.2), 0.0, 1.0)


def _ink_ramp(darkness: np.ndarray) -> np.ndarray:
    """Ink probability from darkness against the paper: 0 up to 0.25, 1 from 0.5."""
    return np.clip((darkness - 0.25) / 0.25, 0.0, 1.0)


def _strip_level(values: np.ndarray, valid: np.ndarray, n: int, axis: int, q: float = 0.25,
                 min_valid: float = 0.5) -> np.ndarray:  # fmt: skip
    """``float32 [H, W]``: each pixel gets the ``q`` quantile of the ``valid`` values of its
    column (``axis`` 0) or row (``axis`` 1) over consecutive blocks of ``n`` pixels (the last
    block takes the remainder when it is shorter than ``n / 2``); 0 where under ``min_valid``
    of the stretch is valid. A straight grid line along ``axis`` fills its row or column and
    survives it; a trace must cover more than ``1 - q`` of a block's row (a flat baseline) to
    be taken for one. Blocks come in two staggered sets, so that a stretch of grid that one
    set's block shares with blank margin fills a block of the other."""
    out = np.zeros_like(values)
    for offset in (0, n // 2):  # two staggered sets of blocks: the larger level wins
        out = np.maximum(out, _block_level(values, valid, n, axis, q, min_valid, offset))
    return out


def _block_level(values: np.ndarray, valid: np.ndarray, n: int, axis: int, q: float,
                 min_valid: float, offset: int) -> np.ndarray:  # fmt: skip
    """:func:`_strip_level` over blocks that start at 0 and at ``offset + k n``, k >= 1."""
    size = values.shape[axis]
    starts = [0, *range(offset + n, size, n)]
    if len(starts) > 1 and size - starts[-1] < n // 2:
        starts.pop()
    ends = starts[1:] + [size]
    out = np.empty_like(values)
    for s, e in zip(starts, ends):
        block = (slice(s, e), slice(None)) if axis == 0 else (slice(None), slice(s, e))
        ok = valid[block]
        if ok.all():  # the common case, without the fill: one partial sort
            k = round(q * (e - s - 1))
            out[block] = np.take(np.partition(values[block], k, axis=axis), [k], axis=axis)
            continue
        ranked = np.sort(np.where(ok, values[block], np.inf), axis=axis)
        count = ok.sum(axis=axis, keepdims=True)
        index = np.round(q * np.maximum(count - 1, 0)).astype(np.intp)
        level = np.take_along_axis(ranked, index, axis=axis)
        level[count < min_valid * (e - s)] = 0.0
        out[block] = level
    return out


def _grid_lines_only(lines: np.ndarray, ink: np.ndarray, axis: int) -> np.ndarray:
    """The straight strokes of ``lines`` ``uint8 [H, W]`` (along ``axis``: 1 horizontal, 0
    vertical) that are grid lines: those spanning half the page, and shorter ones that end in
    paper. A flat stretch of trace (an isoelectric line can run 20 mm and more) continues into
    curved ink at both ends and is kept."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    if n <= 1:
        return lines
    h, w = lines.shape
    extent = w if axis == 1 else h
    other = ink.astype(bool) & (lines == 0)
    keep = np.zeros(n, dtype=bool)  # True: not a grid line
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    for i in range(1, n):
        length = bw[i] if axis == 1 else bh[i]
        if length >= 0.5 * extent:
            continue
        if axis == 1:  # look just beyond both ends, over the stroke's rows (+-2 px)
            r0, r1 = max(0, y[i] - 2), min(h, y[i] + bh[i] + 2)
            ends = [
                other[r0:r1, max(0, x[i] - 3) : x[i]],
                other[r0:r1, x[i] + bw[i] : x[i] + bw[i] + 3],
            ]
        else:
            c0, c1 = max(0, x[i] - 2), min(w, x[i] + bw[i] + 2)
            ends = [
                other[max(0, y[i] - 3) : y[i], c0:c1],
                other[y[i] + bh[i] : y[i] + bh[i] + 3, c0:c1],
            ]
        keep[i] = all(e.any() for e in ends)
    out = lines.copy()
    out[keep[labels]] = 0
    return out


@dataclass
class PageReading:
    """What a :class:`UNetSegmenter` found out about one page besides its map.

    Attributes:
        note: what was assumed (``""``: nothing).
        kept: the share of the page's ink (:class:`InkSegmenter`, > 0.5) that the model kept.
        ink: the page's :class:`InkSegmenter` map ``float32 [H, W]`` (``None`` unless refined).
    """

    note: str = ""
    kept: float = 1.0
    ink: np.ndarray | None = None


class UNetSegmenter:
    """Wraps a :class:`digitizer.unet.UNet` as a segmenter.

    A model with ``config.px_per_mm > 0`` reads pages at that scale: the page (at the grid's
    ``px_per_mm``, passed by the pipeline) is resampled to it (area average down, bilinear up)
    and the probabilities back to the page's pixels, so a 200-dpi page costs a quarter of its
    pixels at 4 px/mm. With a second output channel (calibration pulse) the result is the
    larger of trace and pulse probability: the ink of the rows that the pipeline measures. A
    model with ``config.ink_input`` also reads the :class:`InkSegmenter` map of the resampled
    page, as a fourth channel.

    ``refine`` (default): the model says where the trace is, the page's own ink says exactly
    where: the result is the :class:`InkSegmenter` map at full resolution within ``refine_mm``
    of the model's trace (probability > 0.3), and nothing elsewhere. The thin tips of QRS
    spikes that a 4 px/mm map rounds off come back, grid, text and clutter away from the trace
    stay out, and the centre line is read from the pen's own stroke, not from the model's
    wider, upsampled map (which cost ~5 dB on clean pages when the two were combined by their
    maximum). A stroke of ink (a connected component of the ink map) that the model marks over
    at least ``seed_share`` of its pixels is kept whole: a flat stretch of trace along a grid
    line, which the model tends to miss between the QRS complexes it marks, stays joined to
    them. A page where that keeps under ``min_kept`` of the ink is not one the model knows (on
    ECG-Image-Kit's wrinkled photos it keeps 0-3 %, on our held-out pages 23-88 %, on
    ECG-Image-Kit's clean pages over 90 %): the page's whole ink map is returned, and
    its :class:`PageReading` says so. :attr:`pages` holds, per page of the last call, that note,
    the kept share and the page's ink map (the :class:`~digitizer.pipeline.Digitizer` reads a
    page whose share is low from the ink map too: its ``second_opinion``).
    """

    name = "unet"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu",
                 tile: int | None = None, refine: bool = True, refine_mm: float = 0.75,
                 seed_share: float = 0.2, min_kept: float = 0.1) -> None:  # fmt: skip
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tile = tile
        self.refine = refine
        self.refine_mm = refine_mm
        self.seed_share = seed_share
        self.min_kept = min_kept
        self.pages: list[PageReading] = []  # per page of the last call

    @property
    def notes(self) -> list[str]:
        """Per page of the last call: what was assumed (``""``: nothing)."""
        return [p.note for p in self.pages]

    def __call__(self, image: torch.Tensor, px_per_mm: float | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] at ``px_per_mm`` (``None``: read at the page's scale)
        -> ``[B, H, W]`` on the CPU."""
        config = self.model.config
        h, w = image.shape[-2:]
        x = image.to(self.device, torch.float32)
        scale = config.px_per_mm / px_per_mm if config.px_per_mm > 0 and px_per_mm else 1.0
        if abs(scale - 1.0) > 0.02:
            size = (max(16, round(h * scale)), max(16, round(w * scale)))
            x = F.interpolate(x, size=size, mode="area" if scale < 1 else "bilinear",
                              align_corners=None if scale < 1 else False)  # fmt: skip
        if getattr(config, "ink_input", False):
            ink = InkSegmenter(px_per_mm=config.px_per_mm or px_per_mm)(x.cpu())
            x = torch.cat([x, ink[:, None].to(x)], dim=1)
        prob = self.model.predict_proba(x, tile=self.tile, channel=None)
        prob = prob.amax(dim=1) if prob.shape[1] > 1 else prob[:, 0]
        if prob.shape[-2:] != (h, w):
            prob = F.interpolate(prob[:, None], size=(h, w), mode="bilinear", align_corners=False)
            prob = prob[:, 0]
        prob = prob.float().cpu()
        self.pages = [PageReading() for _ in range(len(prob))]
        if self.refine and px_per_mm:
            k = 2 * max(1, round(self.refine_mm * px_per_mm)) + 1
            ink = InkSegmenter(px_per_mm=px_per_mm)(image).numpy()
            pages = []
            for b, (p, i) in enumerate(zip(prob.numpy(), ink)):
                inked = i > 0.5
                near = _near_trace(p > 0.3, inked, k, self.seed_share)
                kept = (near > 0)[inked].sum() / max(1, inked.sum())
                page = i * near
                self.pages[b] = PageReading(kept=float(kept), ink=i)
                if kept < self.min_kept:
                    page = i
                    self.pages[b].note = (
                        f"the U-Net marked {100 * kept:.1f} % of the page's ink (a page unlike "
                        "its training pages): read from the whole ink map"
                    )
                pages.append(torch.from_numpy(page))
            prob = torch.stack(pages)
        return prob


def _near_trace(trace: np.ndarray, ink: np.ndarray, k: int, share: float) -> np.ndarray:
    """``float32 [H, W]`` 0/1: within a ``k x k`` square of ``trace`` ``bool [H, W]``, and
    every stroke of ``ink`` ``bool [H, W]`` (8-connected) that lies there over at least
    ``share`` of its pixels."""
    near = cv2.dilate(trace.astype(np.uint8), np.ones((k, k), np.uint8))
    count, labels = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
    size = np.bincount(labels.ravel(), minlength=count)
    marked = np.bincount(labels.ravel(), weights=near.ravel(), minlength=count)
    keep = marked >= share * size
    keep[0] = False  # not ink
    return np.maximum(near, keep[labels]).astype(np.float32)


# The default reader: the CPU U-Net (checkpoints/unet_cpu.pt) reads as well as the non-learned
# segmenter on held-out LUDB and ECG-Image-Kit's pages but worse on the independent maker's
# pages with artifacts (checkpoints/README.md), so it is opt-in until one beats it everywhere.
DEFAULT_SEGMENTER = "ink"


def load_segmenter(checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> Segmenter:  # fmt: skip
    """The segmenter for ``checkpoint``.

    ``None`` gives :data:`DEFAULT_SEGMENTER`; ``"ink"`` (or ``"none"``) the non-learned
    :class:`InkSegmenter`; ``"unet"`` the shipped ``checkpoints/unet_small.pt``; a path loads
    that U-Net checkpoint (a ``ValueError`` names the file if it is not one).
    """
    if checkpoint is None:
        checkpoint = DEFAULT_SEGMENTER
    if str(checkpoint).lower() in ("ink", "none", "baseline"):
        return InkSegmenter()
    path = DEFAULT_CHECKPOINT if str(checkpoint).lower() == "unet" else Path(checkpoint)
    from .unet import load_checkpoint

    return UNetSegmenter(load_checkpoint(path, map_location=device), device)
