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
    ``px_per_mm`` argument (the older form) is still accepted by the pipeline."""

    name: str

    def __call__(self, image: torch.Tensor, px_per_mm: float | None = None) -> torch.Tensor: ...


class InkSegmenter:
    """Dark-ink segmentation with grid suppression (no learning).

    Args:
        line_mm: strokes straighter and longer than this (mm) are removed as grid lines.
        px_per_mm: the image scale, when known (the pipeline passes the grid estimate).
    """

    name = "ink"

    def __init__(self, line_mm: float = 20.0, px_per_mm: float | None = None) -> None:
        self.line_mm = line_mm
        self.px_per_mm = px_per_mm

    def __call__(self, image: torch.Tensor, px_per_mm: float | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` -> ``[B, H, W]``; ``px_per_mm`` (the grid's) unless set here."""
        scale = self.px_per_mm or px_per_mm
        pages = image.cpu().numpy()
        return torch.stack([torch.from_numpy(self.segment(im, scale)) for im in pages])

    def segment(self, image: np.ndarray, px_per_mm: float | None = None) -> np.ndarray:
        """One page: ``[3, H, W]`` float in [0, 1] -> ``float32 [H, W]``."""
        rgb = np.ascontiguousarray(image.transpose(1, 2, 0), dtype=np.float32)
        h, w = rgb.shape[:2]
        ppm = self.px_per_mm or px_per_mm or max(h, w) / 279.4
        brightest = rgb.max(axis=2)
        # local paper brightness: a wide closing (max filter) ignores thin dark strokes
        k = int(2 * round(1.5 * ppm) + 1)
        paper = cv2.dilate(brightest, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        paper = cv2.blur(paper, (k, k))
        darkness = np.clip(1.0 - brightest / np.maximum(paper, 0.2), 0.0, 1.0)
        # ink is dark in all channels; scale so that typical ink (>= 0.45 darker) is ~1
        prob = np.clip((darkness - 0.25) / 0.25, 0.0, 1.0)
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
            across = np.ones((9, 1) if axis == 1 else (1, 9), np.uint8)
            bridged = cv2.morphologyEx((prob > 0.5).astype(np.uint8), cv2.MORPH_CLOSE, across)
            fill = (bridged > 0) & lines & (ink > 0)
            prob[fill] = raw[fill]
        return prob.astype(np.float32)


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


class UNetSegmenter:
    """Wraps a :class:`digitizer.unet.UNet` as a segmenter.

    A model with ``config.px_per_mm > 0`` reads pages at that scale: the page (at the grid's
    ``px_per_mm``, passed by the pipeline) is resampled to it (area average down, bilinear up)
    and the probabilities back to the page's pixels, so a 200-dpi page costs a quarter of its
    pixels at 4 px/mm. With a second output channel (calibration pulse) the result is the
    larger of trace and pulse probability: the ink of the rows that the pipeline measures.

    ``refine`` (default): the model says where the trace is, the page's own ink says exactly
    where: within ``refine_mm`` of the model's trace, the :class:`InkSegmenter` map at full
    resolution is added (the larger of the two), so the thin tips of QRS spikes that a
    4 px/mm map rounds off come back, while grid, text and clutter away from it stay out.
    """

    name = "unet"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu",
                 tile: int | None = None, refine: bool = True,
                 refine_mm: float = 0.75) -> None:  # fmt: skip
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tile = tile
        self.refine = refine
        self.refine_mm = refine_mm

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
        prob = self.model.predict_proba(x, tile=self.tile, channel=None)
        prob = prob.amax(dim=1) if prob.shape[1] > 1 else prob[:, 0]
        if prob.shape[-2:] != (h, w):
            prob = F.interpolate(prob[:, None], size=(h, w), mode="bilinear", align_corners=False)
            prob = prob[:, 0]
        prob = prob.float().cpu()
        if self.refine and px_per_mm:
            k = 2 * max(1, round(self.refine_mm * px_per_mm)) + 1
            near = F.max_pool2d((prob[:, None] > 0.3).float(), k, stride=1, padding=k // 2)[:, 0]
            prob = torch.maximum(prob, InkSegmenter(px_per_mm=px_per_mm)(image) * near)
        return prob


# The default reader: the shipped U-Net scores below the non-learned segmenter on every page
# maker measured so far (README, "How well it reads"), so it is opt-in until one beats it.
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
