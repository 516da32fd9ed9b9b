"""Printed text from a glyph atlas rendered once, drawn in batches on any torch device.

The atlas holds every printable ASCII character (32-126) of a few Hershey faces (OpenCV's
vector fonts: sans, serif, bold, italic and two script faces that look handwritten), rendered
once on the CPU at a reference cap height. Drawing resizes a face's atlas to the wanted size
(anti-aliased, cached) and max-blends the glyph patches into a ``[B, H, W]`` alpha layer with one
scatter per (face, size): no per-image CPU drawing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

FIRST_CHAR, LAST_CHAR = 32, 126
REFERENCE_CAP_PX = 32.0
CACHE_SIZE = 96  # resized atlases kept (~1 MB each at 200 dpi)

# (name, OpenCV face, stroke thickness at the reference size)
FACES: tuple[tuple[str, int, int], ...] = (
    ("sans", cv2.FONT_HERSHEY_SIMPLEX, 2),
    ("sans-bold", cv2.FONT_HERSHEY_SIMPLEX, 4),
    ("sans-duplex", cv2.FONT_HERSHEY_DUPLEX, 2),
    ("serif", cv2.FONT_HERSHEY_COMPLEX, 2),
    ("serif-triplex", cv2.FONT_HERSHEY_TRIPLEX, 2),
    ("sans-italic", cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC, 2),
    ("script", cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2),
    ("script-complex", cv2.FONT_HERSHEY_SCRIPT_COMPLEX, 2),
)
FACE_NAMES = tuple(name for name, _, _ in FACES)
PRINTED_FACES = tuple(i for i, name in enumerate(FACE_NAMES) if not name.startswith("script"))
SCRIPT_FACES = tuple(i for i, name in enumerate(FACE_NAMES) if name.startswith("script"))


@dataclass(frozen=True)
class TextItem:
    """One line of text. ``x, y`` is the start of its baseline in pixels; ``cap`` its cap
    height in pixels; ``face`` an index into :data:`FACES`."""

    page: int
    text: str
    x: float
    y: float
    cap: float
    face: int = 0


class GlyphAtlas:
    """Alpha bitmaps ``[F, 95, CH, CW]`` of all faces, their advances and baselines (pixels)."""

    def __init__(self) -> None:
        chars = [chr(c) for c in range(FIRST_CHAR, LAST_CHAR + 1)]
        metrics = []
        for _, face, thick in FACES:
            (_, cap_h), _ = cv2.getTextSize("H", face, 1.0, 1)
            scale = REFERENCE_CAP_PX / cap_h * 0.78  # Hershey "height" includes accent room
            ascent = int(np.ceil(cap_h * scale)) + thick + 4
            descent = int(np.ceil(0.45 * cap_h * scale)) + thick
            width = max(cv2.getTextSize(ch, face, scale, thick)[0][0] for ch in chars)
            metrics.append((face, thick, scale, ascent, descent, width))
        cell_h = max(a + d for *_, a, d, _ in metrics)
        cell_w = max(w for *_, w in metrics) + 8
        self.alpha = torch.zeros(len(FACES), len(chars), cell_h, cell_w)
        self.advance = torch.zeros(len(FACES), len(chars))
        self.cap = torch.zeros(len(FACES))
        self.pad_x = 4
        self.baseline = torch.zeros(len(FACES))
        for f, (face, thick, scale, ascent, _, _) in enumerate(metrics):
            for c, ch in enumerate(chars):
                img = np.zeros((cell_h, cell_w), np.uint8)
                cv2.putText(img, ch, (self.pad_x, ascent), face, scale, 255, thick, cv2.LINE_AA)
                self.alpha[f, c] = torch.from_numpy(img).float() / 255.0
                self.advance[f, c] = cv2.getTextSize(ch, face, scale, thick)[0][0]
            rows = torch.nonzero(self.alpha[f, ord("H") - FIRST_CHAR].amax(dim=1) > 0.5)
            self.cap[f] = float(rows.max() - rows.min() + 1)
            self.baseline[f] = float(ascent)
        # resized atlases by (face, size, device); bounded, since random styles draw many sizes
        self._cache: OrderedDict[tuple[int, int, str], Tensor] = OrderedDict()

    def resized(self, face: int, cap: float, device: torch.device) -> tuple[Tensor, float]:
        """Atlas of ``face`` at cap height ``cap`` px (rounded to 1/4 px): ``[95, ch, cw]``."""
        key = (face, int(round(cap * 4)), str(device))
        scale = key[1] / 4 / float(self.cap[face])
        if key not in self._cache:
            h, w = self.alpha.shape[-2:]
            size = (max(2, int(round(h * scale))), max(2, int(round(w * scale))))
            src = self.alpha[face][:, None]
            out = F.interpolate(
                src, size=size, mode="bilinear", antialias=True, align_corners=False
            )
            self._cache[key] = out[:, 0].clamp(0, 1).to(device)
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        self._cache.move_to_end(key)
        return self._cache[key], scale

    def text_width(self, text: str, face: int, cap: float) -> float:
        """Width in pixels of ``text`` set at cap height ``cap``."""
        codes = _codes(text)
        return float(self.advance[face, codes].sum()) * cap / float(self.cap[face])

    def draw(self, alpha: Tensor, items: list[TextItem]) -> None:
        """Max-blend ``items`` into ``alpha`` ``[B, H, W]`` (in place)."""
        _, height, width = alpha.shape
        groups: dict[tuple[int, int], list[TextItem]] = {}
        for item in items:
            groups.setdefault((item.face, int(round(item.cap * 4))), []).append(item)
        flat = alpha.view(-1)
        for (face, cap4), group in groups.items():
            glyphs, scale = self.resized(face, cap4 / 4, alpha.device)
            gh, gw = glyphs.shape[-2:]
            pages, codes, xs, ys = [], [], [], []
            for item in group:
                c = _codes(item.text)
                adv = self.advance[face, c].numpy() * scale
                x = item.x + np.concatenate([[0.0], np.cumsum(adv)[:-1]]) - self.pad_x * scale
                keep = c != 0  # spaces draw nothing
                pages.append(np.full(int(keep.sum()), item.page))
                codes.append(c[keep])
                xs.append(x[keep])
                ys.append(np.full(int(keep.sum()), item.y - float(self.baseline[face]) * scale))
            code_t = torch.from_numpy(np.concatenate(codes)).to(alpha.device)
            if code_t.numel() == 0:
                continue
            x0 = torch.from_numpy(np.round(np.concatenate(xs))).long().to(alpha.device)
            y0 = torch.from_numpy(np.round(np.concatenate(ys))).long().to(alpha.device)
            page = torch.from_numpy(np.concatenate(pages)).long().to(alpha.device)
            rows = y0[:, None, None] + torch.arange(gh, device=alpha.device)[None, :, None]
            cols = x0[:, None, None] + torch.arange(gw, device=alpha.device)[None, None, :]
            inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
            idx = (page[:, None, None] * height + rows) * width + cols
            vals = glyphs[code_t]
            keep = inside & (vals > 0)
            flat.scatter_reduce_(0, idx[keep], vals[keep], reduce="amax")


def _codes(text: str) -> np.ndarray:
    """Atlas indices of ``text``; characters outside printable ASCII become '?'."""
    raw = np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8).astype(np.int64)
    raw = np.where((raw < FIRST_CHAR) | (raw > LAST_CHAR), ord("?"), raw)
    return raw - FIRST_CHAR


_ATLAS: GlyphAtlas | None = None


def glyph_atlas() -> GlyphAtlas:
    """The process-wide atlas (built on first use, ~0.1 s)."""
    global _ATLAS
    if _ATLAS is None:
        _ATLAS = GlyphAtlas()
    return _ATLAS
