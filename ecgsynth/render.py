"""Batched page rendering with exact ground truth, on any torch device.

``Renderer.render(signal [B, 12, T], fs, specs)`` draws ``B`` pages (paper tint, 1/5 mm grid,
traces, calibration pulses, separators, labels and printed text) and returns a batch dict:

=================  ===========================  =============================================
key                shape / type                 meaning
=================  ===========================  =============================================
``image``          float32 ``[B, 3, H, W]``     RGB in [0, 1]
``mask``           uint8 ``[B, H, W]``          trace class map: 0 background, ``c + 1`` for
                                                channel ``c`` (lowest channel where traces
                                                overlap); channels are defined in
                                                :mod:`ecgsynth.layout`
``mask_bits``      int32 ``[B, H, W]``          bit ``c`` set where channel ``c`` is drawn
                                                (exact under overlaps; see :func:`lead_masks`);
                                                bit ``PULSE_BIT`` (15): calibration pulse ink
``points``         float32 ``[B, 15, T, 2]``    ``(x, y)`` pixel of every plotted sample per
                                                channel, NaN where not plotted
``boxes``          float32 ``[B, 15, 4]``       ``(x0, y0, x1, y1)`` panel box per channel, NaN
                                                where the page has no such channel
``channel_lead``   int64 ``[B, 15]``            lead index (into LEADS) shown by each channel,
                                                -1 if none
``signal``         float32 ``[B, 12, T]``       the input in mV (NaN kept)
``signal_mask``    bool ``[B, 12, T]``          sample drawn somewhere on the page
``fs``             float32 ``[B]``              sampling rate of ``signal`` (Hz)
``px_per_mm``      float32 ``[B]``              image scale
``meta``           list of ``B`` dicts          layout, sizes, panels (px), rhythm strips,
                                                printing ``conventions``, spec
=================  ===========================  =============================================

Pixel centres sit at integer coordinates (see :mod:`ecgsynth.layout`), so the pixel holding the
point ``(x, y)`` is ``(round(y), round(x))``. Points may lie off the canvas when a signal
leaves the page; they are still reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from .layout import (
    LEADS,
    NUM_CHANNELS,
    NUM_LEADS,
    PULSE_BIT,
    PULSE_LEAD_MM,
    TRACE_BITS,
    PageGeometry,
    PrintConvention,
    mm_to_px,
    page_geometry,
    page_size_px,
    px_per_mm,
)
from .raster import PolylineCanvas
from .spec import PageSpec
from .text import TextItem, glyph_atlas

MIN_DOT_MM = 0.25  # printed grid dots are larger than a line is wide


class Renderer:
    """Draws batches of pages on ``device``. Stateless apart from caches; cheap to create."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.atlas = glyph_atlas()
        self._workspace: dict[str, Tensor] = {}  # reused scratch: avoids page-faulting fresh RAM

    def render(self, signal: Tensor | np.ndarray, fs: float, specs: Sequence[PageSpec]) -> dict:
        """Render ``len(specs)`` pages; see the module docstring for the returned dict.

        Args:
            signal: ``[B, 12, T]`` mV, lead order LEADS, NaN where unknown (not drawn).
            fs: sampling rate of ``signal`` in Hz.
            specs: one :class:`PageSpec` per page; all must share paper and dpi.
        """
        signal = torch.as_tensor(signal, dtype=torch.float32, device=self.device)
        if signal.dim() != 3 or signal.shape[1] != NUM_LEADS or signal.shape[0] != len(specs):
            raise ValueError(
                f"signal must be [B, {NUM_LEADS}, T] with B = len(specs) = {len(specs)}, "
                f"got {tuple(signal.shape)}"
            )
        if {(s.paper, s.dpi) for s in specs} != {(specs[0].paper, specs[0].dpi)}:
            raise ValueError("all pages of a batch must share paper and dpi (one image size)")
        batch, _, num_samples = signal.shape
        ppm = px_per_mm(specs[0].dpi)
        height, width = page_size_px(specs[0].paper, specs[0].dpi)
        geoms = [_spec_geometry(s, float(fs), num_samples) for s in specs]

        canvas = PolylineCanvas(
            batch,
            height,
            width,
            self.device,
            self._scratch("cov", torch.int32, batch * height * width),
        )
        traces = self._add_traces(canvas, signal, fs, specs, geoms, ppm)
        self._add_decorations(canvas, specs, geoms, ppm)
        coverage, bits, labels = canvas.finish(TRACE_BITS)

        image = self._background(specs, geoms, ppm, height, width)
        ink = self._colors([s.style.ink_color for s in specs])
        image.lerp_(ink, coverage[:, None])
        text = self._scratch("text", torch.float32, batch * height * width)
        text = text.view(batch, height, width).zero_()
        self.atlas.draw(text, self._text_items(specs, geoms, ppm))
        image.lerp_(self._colors([s.style.text_color for s in specs]), text[:, None])

        return {
            "image": image,
            "mask": labels,
            "mask_bits": bits,
            **traces,
            "signal": signal,
            "fs": torch.full((batch,), float(fs), device=self.device),
            "px_per_mm": torch.full((batch,), ppm, device=self.device),
            "meta": [_page_meta(s, g, ppm, height, width) for s, g in zip(specs, geoms)],
        }

    def _add_traces(self, canvas, signal, fs, specs, geoms, ppm) -> dict[str, Tensor]:
        """Rasterise every panel; return points, boxes, channel_lead and signal_mask."""
        dev, (batch, _, num_samples) = self.device, signal.shape
        rows = [
            (b, p.lead, p.channel, p.start, p.end, mm_to_px(p.x_origin_mm, ppm),
             mm_to_px(p.baseline_mm, ppm), s.paper_speed * ppm / fs, s.gain * ppm,
             s.style.line_width_mm * ppm)
            for b, (s, g) in enumerate(zip(specs, geoms)) for p in g.panels
        ]  # fmt: skip
        cols = list(zip(*rows))
        page, lead, chan, start, end = (torch.tensor(c, device=dev) for c in cols[:5])
        x_org, base, px_per_sample, px_per_mv, line_w = (
            torch.tensor(c, dtype=torch.float64, device=dev) for c in cols[5:]
        )
        n = start[:, None] + torch.arange(int((end - start).max()), device=dev)[None, :]
        valid = n < end[:, None]
        n = n.clamp(max=num_samples - 1)
        values = signal[page[:, None], lead[:, None], n]
        x = (x_org[:, None] + n * px_per_sample[:, None]).float()
        y = (base[:, None] - values.double() * px_per_mv[:, None]).float()
        nan = torch.tensor(float("nan"), device=dev)
        canvas.add(torch.where(valid, x, nan), torch.where(valid, y, nan), page,
                   (1 << chan).to(torch.int32), line_w.float())  # fmt: skip

        drawn = valid & torch.isfinite(values)
        pg, ch, ld = (t[:, None].expand_as(n)[drawn] for t in (page, chan, lead))
        nn = n[drawn]
        points = torch.full((batch, NUM_CHANNELS, num_samples, 2), float("nan"), device=dev)
        points[pg, ch, nn] = torch.stack([x[drawn], y[drawn]], dim=-1)
        signal_mask = torch.zeros(batch, NUM_LEADS, num_samples, dtype=torch.bool, device=dev)
        signal_mask[pg, ld, nn] = True

        boxes = torch.full((batch, NUM_CHANNELS, 4), float("nan"))
        channel_lead = torch.full((batch, NUM_CHANNELS), -1, dtype=torch.long)
        for b, g in enumerate(geoms):
            for p in g.panels:
                boxes[b, p.channel] = torch.tensor([mm_to_px(v, ppm) for v in p.box_mm])
                channel_lead[b, p.channel] = p.lead
        return {
            "points": points,
            "boxes": boxes.to(dev),
            "channel_lead": channel_lead.to(dev),
            "signal_mask": signal_mask,
        }

    def _add_decorations(self, canvas, specs, geoms, ppm) -> None:
        """Calibration pulses (1 mV high; ``PULSE_BIT`` in ``mask_bits``, not in ``mask``) and
        column separators (ink only)."""
        shapes, pages, widths, flags = [], [], [], []
        for b, (s, g) in enumerate(zip(specs, geoms)):
            w = s.style.line_width_mm * ppm
            if s.style.pulses:
                step = g.pulse_step_mm
                dx = np.array([0, PULSE_LEAD_MM, PULSE_LEAD_MM, PULSE_LEAD_MM + step,
                               PULSE_LEAD_MM + step, 2 * PULSE_LEAD_MM + step])  # fmt: skip
                dy = np.array([0, 0, -1, -1, 0, 0]) * s.gain
                for x0, y0 in g.pulses:
                    shapes.append((x0 + dx, y0 + dy))
                    pages.append(b)
                    widths.append(w)
                    flags.append(1 << PULSE_BIT)
            if s.style.separators:
                for x0, y0, y1 in g.separators:
                    shapes.append((np.array([x0, x0]), np.array([y0, y1])))
                    pages.append(b)
                    widths.append(w)
                    flags.append(0)
        if not shapes:
            return
        xy = np.full((2, len(shapes), 6), np.nan)
        for i, (sx, sy) in enumerate(shapes):
            xy[0, i, : len(sx)] = sx * ppm - 0.5
            xy[1, i, : len(sy)] = sy * ppm - 0.5
        xy_t = torch.tensor(xy, dtype=torch.float32, device=self.device)
        canvas.add(xy_t[0], xy_t[1], torch.tensor(pages, device=self.device),
                   torch.tensor(flags, dtype=torch.int32, device=self.device),
                   torch.tensor(widths, dtype=torch.float32, device=self.device))  # fmt: skip

    def _background(self, specs, geoms, ppm, height, width) -> Tensor:
        """Paper colour with the 1 mm / 5 mm grid: ``[B, 3, H, W]``."""
        dev = self.device
        image = self._colors([s.style.paper_color for s in specs]).expand(-1, -1, height, width)
        image = image.contiguous()
        xs = torch.arange(width, device=dev, dtype=torch.float32)
        ys = torch.arange(height, device=dev, dtype=torch.float32)
        for b, (s, g) in enumerate(zip(specs, geoms)):
            st = s.style
            if st.grid == "none":
                continue
            x0, y0, x1, y1 = (mm_to_px(v, ppm) for v in g.grid_box_mm)
            inx = ((xs >= x0) & (xs <= x1)).float()
            iny = ((ys >= y0) & (ys <= y1)).float()
            ox, oy = (mm_to_px(v, ppm) for v in g.grid_origin_mm)
            for period, width_mm, color, dotted in (
                (ppm, st.grid_minor_width_mm, st.grid_minor_color, st.grid == "dots"),
                (5 * ppm, st.grid_major_width_mm, st.grid_major_color, False),
            ):
                lw = max(width_mm, MIN_DOT_MM) * ppm if dotted else width_mm * ppm
                vx = _line_profile(xs, ox, period, lw) * inx
                hy = _line_profile(ys, oy, period, lw) * iny
                if dotted:
                    alpha = hy[:, None] * vx[None, :]
                else:
                    alpha = torch.maximum(hy[:, None] * inx[None, :], iny[:, None] * vx[None, :])
                c = torch.tensor(color, device=dev).view(3, 1, 1)
                image[b].lerp_(c.expand(3, height, width), alpha[None])
        return image

    def _text_items(self, specs, geoms, ppm) -> list[TextItem]:
        items = []
        for b, (s, g) in enumerate(zip(specs, geoms)):
            st = s.style
            hx = g.header_box_mm[0] if g.header_box_mm is not None else g.grid_box_mm[0] + 2.0
            if g.header_box_mm is not None:
                for i, line in enumerate(s.header):
                    y = g.header_box_mm[1] + st.header_cap_mm * (1.2 + 2.0 * i)
                    items.append(TextItem(b, line, mm_to_px(hx, ppm), mm_to_px(y, ppm),
                                          st.header_cap_mm * ppm, st.face))  # fmt: skip
            if s.footer and g.footer_y_mm is not None:
                items.append(TextItem(b, s.footer, mm_to_px(hx, ppm), mm_to_px(g.footer_y_mm, ppm),
                                      st.header_cap_mm * ppm, st.face))  # fmt: skip
            if st.labels:
                face = st.face if st.label_face is None else st.label_face
                cap = st.label_cap_mm * ppm
                for p in g.panels:
                    name = LEADS[p.lead]
                    x, y = mm_to_px(p.label_mm[0], ppm), mm_to_px(p.label_mm[1], ppm)
                    if p.label_anchor == "middle-right":
                        x, y = x - self.atlas.text_width(name, face, cap), y + 0.5 * cap
                    items.append(TextItem(b, name, x, y, cap, face))
        return items

    def _scratch(self, name: str, dtype: torch.dtype, numel: int) -> Tensor:
        """A flat reusable buffer of at least ``numel`` elements (contents undefined)."""
        buf = self._workspace.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = self._workspace[name] = torch.empty(numel, dtype=dtype, device=self.device)
        return buf[:numel]

    def _colors(self, colors: list) -> Tensor:
        return torch.tensor(colors, dtype=torch.float32, device=self.device)[:, :, None, None]


def lead_masks(mask_bits: Tensor, num_channels: int = NUM_CHANNELS) -> Tensor:
    """Per-channel boolean masks ``[..., C, H, W]`` from ``mask_bits`` ``[..., H, W]``."""
    shifts = torch.arange(num_channels, device=mask_bits.device, dtype=torch.int32)
    return ((mask_bits[..., None, :, :] >> shifts[:, None, None]) & 1).bool()


def _line_profile(pos: Tensor, origin: float, period: float, line_width: float) -> Tensor:
    """Box-filtered coverage of lines ``origin + k * period`` (width ``line_width``) over the
    pixels centred at ``pos``."""
    m = torch.remainder(pos - origin, period)
    d = torch.minimum(m, period - m)
    half = 0.5 * line_width
    return (torch.clamp(d + half, max=0.5) - torch.clamp(d - half, min=-0.5)).clamp(0.0, 1.0)


def _spec_geometry(spec: PageSpec, fs: float, num_samples: int) -> PageGeometry:
    return _geometry(spec.layout, spec.paper, fs, num_samples, spec.paper_speed, spec.gain,
                     spec.grid_extent, spec.convention)  # fmt: skip


@lru_cache(maxsize=1024)
def _geometry(layout, paper, fs, num_samples, speed, gain, extent, convention) -> PageGeometry:
    return page_geometry(
        layout, paper, fs, num_samples, speed, gain, grid_extent=extent, convention=convention
    )


def _page_meta(spec: PageSpec, geom: PageGeometry, ppm: float, height: int, width: int) -> dict:
    """JSON-ready description of one page (pixel units)."""
    return {
        "layout": geom.layout,
        "paper": spec.paper,
        "dpi": spec.dpi,
        "width": width,
        "height": height,
        "px_per_mm": ppm,
        "paper_speed_mm_s": spec.paper_speed,
        "gain_mm_mv": spec.gain,
        "fs": geom.fs,
        "panels": [
            {
                "channel": p.channel,
                "name": LEADS[p.lead],
                "start_sample": p.start,
                "end_sample": p.end,
                "box": [mm_to_px(v, ppm) for v in p.box_mm],
                "baseline_y": mm_to_px(p.baseline_mm, ppm),
                "x_origin": mm_to_px(p.x_origin_mm, ppm),
            }
            for p in geom.panels
        ],
        "rhythm": list(geom.rhythm),
        "conventions": _convention_dict(spec.convention),
        "spec": spec.to_dict(),
    }


def _convention_dict(convention: PrintConvention) -> dict:
    """JSON-ready printing convention (``rhythm`` as a list, ``None`` = the layout's own)."""
    out = asdict(convention)
    out["rhythm"] = None if convention.rhythm is None else list(convention.rhythm)
    return out
