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

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "unet_small.pt"


class Segmenter(Protocol):
    """``image [B, 3, H, W]`` float in [0, 1] -> trace probability ``[B, H, W]`` in [0, 1]."""

    name: str

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


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

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.from_numpy(self.segment(im)) for im in image.cpu().numpy()])

    def segment(self, image: np.ndarray) -> np.ndarray:
        """One page: ``[3, H, W]`` float in [0, 1] -> ``float32 [H, W]``."""
        rgb = np.ascontiguousarray(image.transpose(1, 2, 0), dtype=np.float32)
        h, w = rgb.shape[:2]
        ppm = self.px_per_mm or max(h, w) / 279.4
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
    """Wraps a :class:`digitizer.unet.UNet` as a segmenter."""

    name = "unet"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.predict_proba(image.to(self.device)).float().cpu()


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
