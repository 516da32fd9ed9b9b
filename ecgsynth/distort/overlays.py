"""Things added on top of the page: handwritten notes and scribbles, rubber stamps, barcodes
and extra printed text.

Every overlay is a set of *items* (a note, a stroke, a stamp, a code) drawn into small boxes
``[N, h, w]`` (the glyph atlas for text, :class:`~ecgsynth.raster.PolylineCanvas` for strokes),
then composited into its page at the item's position as ink: ``image * (1 - a * (1 - color))``
(multiplicative, so traces under the ink stay visible as in real overprinting). Text is chosen
by index into fixed phrase tables, numbers by uniform draws mapped into each placeholder's
range, so all parameters are tensors. ``strength`` is the probability of each optional item
slot (the first is always used when ``strength > 0``); ``strength = 0`` draws nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..raster import PolylineCanvas
from ..text import FACE_NAMES, PRINTED_FACES, SCRIPT_FACES, TextItem, glyph_atlas
from .base import Distortion
from .noise import new_seeds, smooth_at, uniform, uniform_rows

__all__ = ["Barcode", "HandwrittenNotes", "PrintedText", "Stamps"]

# (template, (low, high) for each "{}"), numbers are drawn per note
NOTE_PHRASES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("HR {}", ((42, 150),)), ("? ischemia", ()), ("AF", ()), ("AFib?", ()), ("NSR", ()),
    ("old MI?", ()), ("ST elev.", ()), ("STEMI!", ()), ("LBBB", ()), ("RBBB", ()),
    ("compare w/ prior", ()), ("seen {}/{}", ((1, 13), (1, 29))),
    ("{}/{}/{}", ((1, 13), (1, 29), (15, 25))), ("QTc {}", ((380, 520),)),
    ("K+ {}.{}", ((3, 6), (0, 10))), ("rpt ECG", ()), ("normal", ()), ("ok", ()), ("PVCs", ()),
    ("LVH?", ()), ("pacer", ()), ("Dr {}", ((10, 99),)), ("ref. cardio", ()),
    ("JB", ()), ("MK", ()), ("A.R.", ()), ("T inv", ()), ("BP {}/{}", ((95, 180), (55, 105))),
    ("chest pain", ()), ("post-op day {}", ((1, 9),)), ("trop neg", ()), ("call me", ()),
)  # fmt: skip
STAMP_PHRASES: tuple[str, ...] = (
    "RECEIVED", "COPY", "REVIEWED", "CONFIDENTIAL", "ORIGINAL", "VERIFIED", "SCANNED",
    "CARDIOLOGY", "FILED", "URGENT", "MEDICAL RECORDS", "APPROVED",
)  # fmt: skip
PRINTED_PHRASES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("Sinus rhythm", ()), ("Normal ECG", ()), ("Abnormal ECG", ()), ("Borderline ECG", ()),
    ("Left axis deviation", ()), ("Possible inferior infarct, age undetermined", ()),
    ("Nonspecific ST and T wave abnormality", ()), ("Sinus bradycardia", ()),
    ("Sinus tachycardia", ()), ("Atrial fibrillation with rapid ventricular response", ()),
    ("Unconfirmed report", ()), ("Confirmed by: Dr. {} ({})", ((10, 99), (100, 999))),
    ("Referred by: {}", ((1000, 9999),)), ("Technician: {}", ((10, 99),)),
    ("Vent. rate {} bpm", ((45, 140),)), ("PR int {} ms  QRS dur {} ms", ((110, 220), (70, 130))),
    ("QT/QTc {}/{} ms", ((320, 460), (380, 500))), ("Page {} of {}", ((1, 2), (2, 3))),
    ("Order #{}", ((100000, 999999),)), ("Room {}  Bed {}", ((1, 40), (1, 4))),
    ("Compared with ECG of {}/{}/20{}", ((1, 13), (1, 29), (10, 25))),
)  # fmt: skip
PEN_COLORS = torch.tensor([[0.10, 0.18, 0.62], [0.05, 0.08, 0.35], [0.08, 0.08, 0.10],
                           [0.70, 0.08, 0.10]])  # fmt: skip
STAMP_COLORS = torch.tensor([[0.80, 0.10, 0.12], [0.12, 0.22, 0.70], [0.45, 0.10, 0.55]])
STROKE_POINTS = 24


def _fill(template: tuple[str, tuple[tuple[int, int], ...]], u: list[float]) -> str:
    text, ranges = template
    return text.format(*(lo + int(v * (hi - lo)) for v, (lo, hi) in zip(u, ranges)))


def _slots(g: torch.Generator, batch: int, count: int, strength: float) -> Tensor:
    """``[B, count]`` on/off: slot 0 on when ``strength > 0``, others with prob. strength."""
    on = torch.rand(batch, count, generator=g) < strength
    on[:, 0] = strength > 0
    return on


def _segments(points: Tensor) -> Tensor:
    """Polylines ``[N, P, 2]`` -> their segments ``[N, P - 1, 2, 2]``, each ordered by x (so
    x-monotone, as :class:`~ecgsynth.raster.PolylineCanvas` needs)."""
    a, b = points[:, :-1], points[:, 1:]
    swap = (a[..., 0] > b[..., 0])[..., None]
    return torch.stack([torch.where(swap, b, a), torch.where(swap, a, b)], 2)


def _draw(n: int, height: int, width: int, device: torch.device, texts: list[TextItem],
          segments: Tensor | None = None, line_width: Tensor | None = None) -> Tensor:  # fmt: skip
    """Alpha ``[n, height, width]`` of text items (``page`` = box index) and of ``segments``
    ``[n, S, 2, 2]`` (box pixels, NaN = none) drawn ``line_width`` ``[n]`` wide."""
    alpha = torch.zeros(n, height, width, device=device)
    if segments is not None:
        canvas = PolylineCanvas(n, height, width, device)
        count = segments.shape[1]
        seg = segments.reshape(-1, 2, 2).to(device)
        owner = torch.arange(n, device=device).repeat_interleave(count)
        canvas.add(seg[..., 0], seg[..., 1], owner, torch.zeros_like(owner, dtype=torch.int32),
                   line_width.to(device).float().repeat_interleave(count))  # fmt: skip
        alpha = canvas.finish()[0]
    if texts:
        glyph_atlas().draw(alpha, texts)
    return alpha


def _rotate(alpha: Tensor, angle: Tensor) -> Tensor:
    """Rotate each box ``[N, h, w]`` about its centre by ``angle`` ``[N]`` (radians)."""
    n, h, w = alpha.shape
    angle = angle.to(alpha.device, alpha.dtype)
    c, s, z = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([c, -s * h / w, z], 1), torch.stack([s * w / h, c, z], 1)], 1)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(alpha[:, None], grid, align_corners=False)[:, 0]


def _composite(image: Tensor, alpha: Tensor, page: list[int], centre: Tensor, color: Tensor,
               paint: bool = False) -> Tensor:  # fmt: skip
    """Ink boxes ``alpha`` ``[N, h, w]`` centred at ``centre`` ``[N, 2]`` (x, y px) on
    ``page`` with ``color`` ``[N, 3]`` into ``image``, in place (returned): multiply
    (transparent ink) or, with ``paint``, cover (opaque paint). Box sizes are even and the
    centre is rounded, so a box's content lands on the same pixels whatever its size (which
    depends on the other items of the batch)."""
    _, _, height, width = image.shape
    bh, bw = alpha.shape[-2:]
    if bh % 2 or bw % 2:
        raise ValueError(f"box sizes must be even, got {bh} x {bw}")
    color = color.to(image.device, image.dtype)
    for n, (b, (cx, cy)) in enumerate(zip(page, centre.tolist())):
        x, y = round(cx) - bw // 2, round(cy) - bh // 2
        ya, yb, xa, xb = max(0, y), min(height, y + bh), max(0, x), min(width, x + bw)
        if ya < yb and xa < xb:
            a = alpha[n, ya - y : yb - y, xa - x : xb - x]
            region, c = image[b, :, ya:yb, xa:xb], color[n, :, None, None]
            if paint:
                region.lerp_(c.expand_as(region), a.expand_as(region))
            else:
                region.mul_(1 - a * (1 - c))
    return image


def _centred_texts(lines: list[list[tuple[str, float, int]]]) -> tuple[int, int, list[TextItem]]:
    """Even box size ``(h, w)`` fitting every item's lines ``(text, cap, face)`` (stacked,
    centred) and their atlas items (``page`` = item index)."""
    atlas = glyph_atlas()
    w = _even(max(atlas.text_width(t, f, c) + 2 * c for item in lines for t, c, f in item))
    h = _even(max(sum(1.6 * c for _, c, _ in item) + 1.2 * item[0][1] for item in lines))
    items = []
    for n, item in enumerate(lines):
        y = (h - sum(1.6 * c for _, c, _ in item)) / 2 - 0.3 * item[0][1]
        for t, c, f in item:
            y += 1.6 * c
            items.append(TextItem(n, t, (w - atlas.text_width(t, f, c)) / 2, y, c, f))
    return h, w, items


def _even(size: float) -> int:
    """The smallest even integer >= ``size``."""
    n = math.ceil(size)
    return n + n % 2


def _strokes(g: torch.Generator, n: int, size: Tensor) -> Tensor:
    """``n`` pen strokes ``[n, STROKE_POINTS, 2]`` (pixels around their centre) of ``size``
    ``[n]``: loops, underlines, arrows, zigzags and check marks, slightly wobbly and rotated."""
    t = torch.linspace(0, 1, STROKE_POINTS)[None].expand(n, -1)
    turn = 2 * math.pi * (1.05 + 0.15 * torch.rand(n, 1, generator=g)) * t
    loop = torch.stack([0.5 * torch.cos(turn), 0.25 * torch.sin(turn)], -1)
    line = torch.stack([t - 0.5, 0.02 * torch.sin(6 * t)], -1)
    zig = torch.stack([t - 0.5, 0.1 * torch.sign(torch.sin(7 * math.pi * t + 0.1))], -1)
    head = torch.tensor([[0.5, 0.0], [0.38, -0.07], [0.5, 0.0], [0.38, 0.07]])
    arrow = torch.cat([line[:, : STROKE_POINTS - 4], head[None].expand(n, -1, -1)], 1)
    check = torch.stack([torch.where(t < 0.3, t - 0.3, (t - 0.3) * 1.2),
                         torch.where(t < 0.3, 0.3 - t, (0.3 - t) * 1.4)], -1) * 0.7  # fmt: skip
    shapes = torch.stack([loop, line, arrow, zig, check], 1)
    kind = torch.randint(0, 5, (n,), generator=g)
    wobble = 0.015 * torch.randn(n, STROKE_POINTS, 2, generator=g).cumsum(1)
    pts = shapes[torch.arange(n), kind] + wobble
    a = uniform(g, (n, 1), -0.5, 0.5)
    ca, sa = torch.cos(a), torch.sin(a)
    rot = torch.stack(
        [pts[..., 0] * ca - pts[..., 1] * sa, pts[..., 0] * sa + pts[..., 1] * ca], -1
    )
    return rot * size[:, None, None]


@dataclass
class HandwrittenNotes(Distortion):
    """Pen notes in the two script faces ("HR 72", "? ischemia", dates, initials ...) and pen
    strokes (loops, underlines, arrows, zigzags, ticks), one pen colour per page (mostly blue
    or black), placed anywhere on the page, so often over traces."""

    notes: int = 3  # note slots per page
    strokes: int = 2  # stroke slots per page
    cap: tuple[float, float] = (0.012, 0.03)  # cap height, fraction of the page height
    stroke_size: tuple[float, float] = (0.05, 0.2)  # fraction of the page height
    opacity: tuple[float, float] = (0.75, 1.0)
    name: str = "handwritten_notes"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, k, m, s = generator, self.notes, self.strokes, self.strength
        pen = torch.multinomial(torch.tensor([0.5, 0.15, 0.3, 0.05]), batch, True, generator=g)
        size = uniform(g, (batch * m,), *self.stroke_size) * height
        return {
            "note_on": _slots(g, batch, k, s),
            "phrase": torch.randint(0, len(NOTE_PHRASES), (batch, k), generator=g),
            "numbers": torch.rand(batch, k, 3, generator=g),
            "cap": uniform(g, (batch, k), *self.cap) * height,
            "face": torch.tensor(SCRIPT_FACES)[torch.randint(0, 2, (batch, k), generator=g)],
            "angle": uniform(g, (batch, k), -0.12, 0.12),
            "centre": uniform(g, (batch, k + m, 2), 0.05, 0.95) * torch.tensor([width, height]),
            "stroke_on": _slots(g, batch, m, s) & (torch.rand(batch, m, generator=g) < 0.7),
            "stroke": _strokes(g, batch * m, size).view(batch, m, STROKE_POINTS, 2),
            "width": uniform(g, (batch,), 0.0012, 0.0022) * height,
            "color": PEN_COLORS[pen] * uniform(g, (batch, 1), 0.9, 1.1),
            "opacity": uniform(g, (batch,), *self.opacity),
        }

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        p = {k: v.cpu() for k, v in params.items()}
        notes = (p["note_on"] & p["active"][:, None]).nonzero().tolist()
        strokes = (p["stroke_on"] & p["active"][:, None]).nonzero().tolist()
        if not notes and not strokes:
            return image
        dev = image.device
        if notes:
            lines = [[(_fill(NOTE_PHRASES[int(p["phrase"][b, j])], p["numbers"][b, j].tolist()),
                       float(p["cap"][b, j]), int(p["face"][b, j]))] for b, j in notes]  # fmt: skip
            h, w, items = _centred_texts(lines)
            angle = torch.stack([p["angle"][b, j] for b, j in notes])
            slant = _even(float(angle.abs().max()) * w)  # room for the slant
            h += slant
            items = [TextItem(i.page, i.text, i.x, i.y + slant / 2, i.cap, i.face) for i in items]
            alpha = _rotate(_draw(len(notes), h, w, dev, items), angle)
            self._ink(image, alpha, notes, torch.stack([p["centre"][b, j] for b, j in notes]), p)
        if strokes:
            pts = torch.stack([p["stroke"][b, j] for b, j in strokes])
            lw = p["width"][[b for b, _ in strokes]]
            size = _even(2 * float(pts.abs().amax() + lw.max()) + 4)
            alpha = _draw(len(strokes), size, size, dev, [], _segments(pts + size / 2), lw)
            centre = torch.stack([p["centre"][b, self.notes + j] for b, j in strokes])
            self._ink(image, alpha, strokes, centre, p)
        return image

    @staticmethod
    def _ink(image: Tensor, alpha: Tensor, items: list, centre: Tensor, p: dict) -> None:
        pages = [b for b, _ in items]
        opacity = p["opacity"][pages].to(image.device)[:, None, None]
        _composite(image, alpha * opacity, pages, centre, p["color"][pages])


@dataclass
class Stamps(Distortion):
    """A rubber stamp: a rectangle, double rectangle or ellipse around a word and often a date,
    red, blue or violet, semi-transparent, with uneven inking and small voids, rotated up to
    ``max_angle_deg``."""

    cap: tuple[float, float] = (0.012, 0.022)  # fraction of the page height
    opacity: tuple[float, float] = (0.5, 0.9)
    max_angle_deg: float = 20.0
    name: str = "stamps"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g = generator
        color = STAMP_COLORS[torch.randint(0, len(STAMP_COLORS), (batch,), generator=g)]
        return {
            "on": _slots(g, batch, 1, self.strength)[:, 0],
            "phrase": torch.randint(0, len(STAMP_PHRASES), (batch,), generator=g),
            "date": torch.rand(batch, 4, generator=g),  # has-date flag, day, month, year
            "shape": torch.randint(0, 3, (batch,), generator=g),  # rect, double rect, ellipse
            "cap": uniform(g, (batch,), *self.cap) * height,
            "angle": math.radians(self.max_angle_deg) * uniform(g, (batch,), -1.0, 1.0),
            "centre": uniform(g, (batch, 2), 0.1, 0.9) * torch.tensor([width, height]),
            "color": color * uniform(g, (batch, 1), 0.85, 1.1),
            "opacity": uniform(g, (batch,), *self.opacity),
            "seed": new_seeds(batch, g),
            "ctrl": torch.randn(batch, 1, 5, 5, generator=g),
        }

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        p = {k: v.cpu() for k, v in params.items()}
        pages = (p["on"] & p["active"]).nonzero().flatten().tolist()
        if not pages:
            return image
        lines = []
        for b in pages:
            cap, d = float(p["cap"][b]), p["date"][b].tolist()
            item = [(STAMP_PHRASES[int(p["phrase"][b])], cap, FACE_NAMES.index("sans-bold"))]
            if d[0] < 0.7:
                date = f"{1 + int(d[1] * 28)} {_MONTHS[int(d[2] * 12)]} 20{10 + int(d[3] * 15)}"
                item.append((date, 0.75 * cap, FACE_NAMES.index("sans-duplex")))
            lines.append(item)
        th, tw, items = _centred_texts(lines)
        cap = p["cap"][pages]
        shape = p["shape"][pages]
        # outline half-extents around each stamp's own text, then a square box for any rotation
        atlas = glyph_atlas()
        text_w = torch.tensor([max(atlas.text_width(t, f, c) for t, c, f in it) for it in lines])
        text_h = torch.tensor([sum(1.6 * c for _, c, _ in it) for it in lines])
        hx, hy = text_w / 2 + 0.5 * cap, text_h / 2 + 0.3 * cap
        ellipse = shape == 2
        hx, hy = torch.where(ellipse, hx * 1.25, hx), torch.where(ellipse, hy * 1.6, hy)
        lw = 0.14 * cap
        size = _even(2 * float(torch.hypot(hx, hy).max() + 2 * lw.max()) + 4)
        t = torch.linspace(0, 2 * math.pi, 49)
        ring = torch.stack([torch.cos(t), torch.sin(t)], -1)  # [49, 2]
        corners = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=torch.float32)
        rect = torch.cat([corners, torch.full((44, 2), float("nan"))])
        inner = (rect * (1 - 0.45 * cap / torch.minimum(hx, hy))[:, None, None]).where(
            (shape == 1)[:, None, None], torch.tensor(float("nan"))
        )
        outline = (
            torch.where(ellipse[:, None, None], ring, rect) * torch.stack([hx, hy], 1)[:, None]
        )
        segs = torch.cat(
            [_segments(outline), _segments(inner * torch.stack([hx, hy], 1)[:, None])], 1
        )
        off = (size - tw) / 2, (size - th) / 2
        items = [TextItem(i.page, i.text, i.x + off[0], i.y + off[1], i.cap, i.face) for i in items]
        alpha = _rotate(_draw(len(pages), size, size, image.device, items, segs + size / 2, lw),
                        p["angle"][pages])  # fmt: skip
        dev = image.device
        # inking texture in stamp-centred coordinates (independent of the box size)
        half = size // 2
        rel = (torch.arange(size, dtype=torch.float32) - half)[None] / (20 * cap[:, None]) + 0.5
        ctrl = p["ctrl"][pages]
        texture = torch.stack([smooth_at(ctrl[i, 0], rel[i], rel[i]) for i in range(len(pages))])
        texture = (0.8 + 0.3 * texture.to(dev)).clamp(0, 1)
        voids = uniform_rows(p["seed"][pages].to(dev), 1, -half, half, size, -half)[:, 0] > 0.1
        alpha = alpha * texture * voids * p["opacity"][pages].to(dev)[:, None, None]
        return _composite(image, alpha, pages, p["centre"][pages], p["color"][pages])


_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


@dataclass
class Barcode(Distortion):
    """A printed code block: a QR-like matrix (25 x 25 modules with three finder squares) or
    a 1-D barcode (95 modules of random bars), black on an optional white label."""

    module: tuple[float, float] = (0.0025, 0.005)  # module size, fraction of the page height
    name: str = "barcode"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g = generator
        cells = (torch.rand(batch, 25, 25, generator=g) < 0.5).float()
        finder = torch.zeros(7, 7)
        finder[[0, 6]], finder[:, [0, 6]], finder[2:5, 2:5] = 1, 1, 1
        for r, c in ((0, 0), (0, 18), (18, 0)):
            cells[:, r : r + 7, c : c + 7] = finder
            cells[:, max(r - 1, 0) : r + 8, c + (7 if c == 0 else -1)] = 0
            cells[:, r + (7 if r == 0 else -1), max(c - 1, 0) : c + 8] = 0
        runs = torch.randint(1, 4, (batch, 95), generator=g)  # bar/space widths in modules
        bars = (torch.arange(95)[None, :, None] < runs.cumsum(1)[:, None, :]).float().argmax(2) % 2
        module = uniform(g, (batch,), *self.module) * height
        return {
            "on": _slots(g, batch, 1, self.strength)[:, 0],
            "kind": (torch.rand(batch, generator=g) < 0.5).long(),  # 0 matrix, 1 bars
            "cells": cells,
            "bars": 1.0 - bars.float(),
            "module": module.clamp(min=2.0).round(),
            "centre": uniform(g, (batch, 2), 0.1, 0.9) * torch.tensor([width, height]),
            "label": (torch.rand(batch, generator=g) < 0.6).float(),
        }

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        p = {k: v.cpu() for k, v in params.items()}
        pages = (p["on"] & p["active"]).nonzero().flatten().tolist()
        if not pages:
            return image
        for b in pages:
            m = int(p["module"][b])
            if int(p["kind"][b]) == 0:
                code = p["cells"][b]
            else:
                code = p["bars"][b][None].expand(int(95 * 0.35), -1)
            code = F.pad(code, (3, 3, 3, 3)).repeat_interleave(m, 0).repeat_interleave(m, 1)
            code = F.pad(code, (0, code.shape[1] % 2, 0, code.shape[0] % 2))  # even box
            code = code.to(image.device)
            if float(p["label"][b]) > 0:  # white sticker under the code
                white = torch.ones(1, *code.shape, device=image.device)
                _composite(image, white, [b], p["centre"][b][None], torch.ones(1, 3), True)
            _composite(image, code[None], [b], p["centre"][b][None], torch.zeros(1, 3))
        return image


@dataclass
class PrintedText(Distortion):
    """Extra printed lines (interpretation statements, measurements, order numbers) in the
    printed faces, grey to black, stacked at a random place on the page."""

    lines: int = 4  # line slots per page
    cap: tuple[float, float] = (0.007, 0.012)  # fraction of the page height
    name: str = "printed_text"

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        g, k = generator, self.lines
        return {
            "on": _slots(g, batch, k, self.strength),
            "phrase": torch.randint(0, len(PRINTED_PHRASES), (batch, k), generator=g),
            "numbers": torch.rand(batch, k, 3, generator=g),
            "cap": uniform(g, (batch,), *self.cap) * height,
            "face": torch.tensor(PRINTED_FACES)[
                torch.randint(0, len(PRINTED_FACES), (batch,), generator=g)
            ],
            "origin": uniform(g, (batch, 2), 0.03, 0.8) * torch.tensor([width, height]),
            "gray": uniform(g, (batch,), 0.0, 0.3),
        }

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        p = {k: v.cpu() for k, v in params.items()}
        on = p["on"] & p["active"][:, None]
        rows = on.nonzero().tolist()
        if not rows:
            return image
        atlas = glyph_atlas()
        texts = [_fill(PRINTED_PHRASES[int(p["phrase"][b, j])], p["numbers"][b, j].tolist())
                 for b, j in rows]  # fmt: skip
        caps = [float(p["cap"][b]) for b, _ in rows]
        faces = [int(p["face"][b]) for b, _ in rows]
        w = _even(max(atlas.text_width(t, f, c) + 3 * c for t, c, f in zip(texts, caps, faces)))
        h = _even(3.0 * max(caps))
        items = [TextItem(n, t, 1.5 * c, 1.8 * c, c, f)
                 for n, (t, c, f) in enumerate(zip(texts, caps, faces))]  # fmt: skip
        alpha = _draw(len(rows), h, w, image.device, items)
        # box corner at the line's start minus the text margin (rounded in _composite)
        centre = torch.tensor([[float(p["origin"][b, 0]) - 1.5 * c + w / 2,
                                float(p["origin"][b, 1]) + 1.7 * c * (j - 1) + h / 2]
                               for (b, j), c in zip(rows, caps)])  # fmt: skip
        color = p["gray"][[b for b, _ in rows]][:, None].expand(-1, 3)
        return _composite(image, alpha, [b for b, _ in rows], centre, color)
