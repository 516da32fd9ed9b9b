"""The digitizer: an ECG page image -> a calibrated 12-lead record.

    image --grid.detect_grid--> rectified page --segmenter--> trace probability
          --layout.detect_layout--> rows, pulses, leads --vectorize--> mV at the requested fs

Calibration: time runs left to right over each row, which shows ``page_seconds`` (10 s on
standard printouts; checked against the grid at ``paper_speed``); a 3x4 row's four panels show
consecutive quarters of it. Amplitude comes from the row's calibration pulse (1 mV, its foot is
0 mV) when present, else from the grid scale at ``gain`` mm/mV around the row's median level.

Samples the page does not show (the other 7.5 s of a 3x4 short lead) are NaN, as are leads that
could not be found; :attr:`Digitized.warnings` says which and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ecgsynth.layout import LEADS, PULSE_LEAD_MM

from .grid import GridEstimate, detect_grid
from .io import read_image
from .layout import PageLayout, Pulse, detect_layout, find_pulse
from .segment import InkSegmenter, Segmenter, load_segmenter
from .vectorize import Pen, estimate_pen, fit_centerline, track_row

PANEL_MARGIN_PX = 0.25  # columns this close to a neighbouring panel's trace are left out

LEAD_COLOURS = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (170, 110, 40), (0, 128, 128), (128, 0, 0), (0, 0, 128), (128, 128, 0),
)  # fmt: skip


@dataclass
class Digitized:
    """A digitized page.

    Attributes:
        signal: ``float32 [12, num_samples]`` mV, leads in ``sig_name`` order, NaN where the
            page shows nothing.
        fs: sampling frequency (Hz).
        sig_name: the 12 standard lead names.
        layout: detected layout (``3x4``, ``3x4_3r``, ``6x2``, ``12x1``, ``unknown``, ``none``).
        grid: the page geometry that was used.
        warnings: everything that was assumed or not found.
        rows: per row ``(x [N], y [N])`` of the tracked trace in *input* image pixels.
    """

    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...]
    layout: str
    grid: GridEstimate
    warnings: list[str] = field(default_factory=list)
    rows: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    source: str = "raster"  # "raster" | "vector": how the page was read

    @property
    def missing_leads(self) -> list[str]:
        """Leads with no finite sample."""
        return [n for n, s in zip(self.sig_name, self.signal) if not np.isfinite(s).any()]


def find_pulses_in_ink(layout: PageLayout, image: np.ndarray, ppm: float) -> None:
    """Look for the calibration pulse of rows that have none in the *ink* of the rectified
    image ``[H, W, 3]``, in a strip left of the trace: a learned segmenter (or a ground-truth
    trace mask) may leave pulses out, but they hold the exact baseline and gain."""
    for row in layout.rows:
        if row.pulse is not None:
            continue
        x_hi = row.x_start - max(1, int(0.3 * ppm))
        x_lo = max(0, row.x_start - int(15 * ppm))
        if x_hi - x_lo < 3 * ppm:
            continue
        half = 12 * ppm
        y_lo = int(max(0, row.baseline - half))
        y_hi = int(min(image.shape[0], row.baseline + half))
        strip = image[y_lo:y_hi, x_lo:x_hi].transpose(2, 0, 1)
        ink = InkSegmenter(px_per_mm=ppm).segment(strip)
        trace = track_row(ink, row.baseline - y_lo, half)
        pulse = find_pulse(trace, 0, ppm, last=True)
        if pulse is not None:
            row.pulse = Pulse(pulse.x0 + x_lo, pulse.x1 + x_lo, pulse.foot + y_lo, pulse.top + y_lo)


def refine_pulses(layout: PageLayout, image: np.ndarray, pen: Pen, ppm: float) -> None:
    """Re-measure each row's pulse foot (0 mV) and top (1 mV) to a fraction of a pixel from the
    anti-aliased ink of the rectified image ``[H, W, 3]``: the darkness-weighted centre of the
    flat strokes, column by column, median over the stroke. A binary mask only tells these
    levels to the pixel, and half a pixel of baseline is a visible offset on a small lead."""
    half = 0.5 * pen.width + 1.5
    edge = int(np.ceil(pen.reach)) + 1  # columns next to the vertical strokes are not flat
    feet = max(1, int(PULSE_LEAD_MM * ppm) - edge)  # the 1 mm feet, less the edges
    for row in layout.rows:
        p = row.pulse
        if p is None:
            continue
        foot_cols = np.r_[p.x0 : p.x0 + feet, p.x1 - feet + 1 : p.x1 + 1]
        top_cols = np.arange(p.x0 + feet + 2 * edge, p.x1 - feet - 2 * edge + 1)
        foot = _stroke_level(image, foot_cols, p.foot, half)
        top = _stroke_level(image, top_cols, p.top, half)
        if np.isfinite(foot) and abs(foot - p.foot) < 1.5:
            p.foot = foot
        if np.isfinite(top) and abs(top - p.top) < 1.5:
            p.top = top


def _stroke_level(image: np.ndarray, cols: np.ndarray, y: float, half: float) -> float:
    """Median over ``cols`` of the darkness-weighted row centre of a horizontal stroke near
    ``y`` (rows within ``half`` px)."""
    h, w = image.shape[:2]
    cols = cols[(cols >= 0) & (cols < w)]
    r0, r1 = int(np.floor(y - half)), int(np.ceil(y + half))
    if len(cols) == 0 or r0 < 0 or r1 >= h:
        return float("nan")
    rows = np.arange(r0, r1 + 1)
    bright = image[r0 : r1 + 1][:, cols].max(axis=2)  # ink is dark in every channel
    paper = float(np.percentile(image[max(0, r0 - 8) : r1 + 9][:, cols].max(axis=2), 95))
    dark = np.clip(1.0 - bright / max(paper, 1e-3), 0.0, 1.0)
    mass = dark.sum(axis=0)
    ok = mass > 0.5
    if not ok.any():
        return float("nan")
    centre = (dark * rows[:, None]).sum(axis=0)[ok] / mass[ok]
    return float(np.median(centre))


def isoelectric_level(y: np.ndarray) -> float:
    """The most frequent level (px) of a row's trace: the isoelectric line, where the pen
    rests between beats in every panel of the row. Histogram mode, refined to sub-pixel."""
    v = y[np.isfinite(y)]
    if len(v) == 0:
        return float("nan")
    lo = np.floor(v.min()) - 3
    hist = np.bincount(np.round(v - lo).astype(np.int64), minlength=1).astype(np.float64)
    hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    k = int(np.argmax(hist))
    if 0 < k < len(hist) - 1:
        a, b, c = hist[k - 1], hist[k], hist[k + 1]
        den = a - 2 * b + c
        k = k + (0.5 * (a - c) / den if den != 0 else 0.0)
    return float(lo + k)


def _as_hwc_float(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Any accepted image -> ``float32 [H, W, 3]`` in [0, 1]."""
    if isinstance(image, torch.Tensor):
        a = image.detach().cpu().numpy()
        if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
            a = a.transpose(1, 2, 0)
    else:
        a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W, 3] or [3, H, W], got shape {a.shape}")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    if a.shape[2] == 4:
        a = a[..., :3] * a[..., 3:] + (1.0 - a[..., 3:])
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.clip(a, 0.0, 1.0)


class Digitizer:
    """Image -> 12-lead record.

    Args:
        checkpoint: U-Net checkpoint path; ``None`` = the shipped one if present, else the
            non-learned :class:`~digitizer.segment.InkSegmenter`; ``"ink"`` forces the latter.
        segmenter: use this segmenter instead (overrides ``checkpoint``).
        fs, num_samples: output rate (Hz) and length.
        device: where the U-Net runs.
        page_seconds: time shown by one full row (10 s on standard printouts).
        paper_speed, gain: nominal mm/s and mm/mV, used when the page cannot tell.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None,
                 segmenter: Segmenter | None = None, fs: float = 500.0, num_samples: int = 5000,
                 device: str | torch.device = "cpu", page_seconds: float = 10.0,
                 paper_speed: float = 25.0, gain: float = 10.0) -> None:  # fmt: skip
        if fs <= 0 or num_samples <= 0:
            raise ValueError("fs and num_samples must be positive")
        self.segmenter = segmenter if segmenter is not None else load_segmenter(checkpoint, device)
        self.fs = float(fs)
        self.num_samples = int(num_samples)
        self.page_seconds = page_seconds
        self.paper_speed = paper_speed
        self.gain = gain

    # -- entry points -------------------------------------------------------------------------
    def digitize_file(self, path: str | os.PathLike) -> Digitized:
        """Read and digitize one image file (raises :class:`~digitizer.io.ImageError`)."""
        return self.digitize(read_image(path))

    def digitize(self, image: np.ndarray | torch.Tensor) -> Digitized:
        """Digitize an RGB page: ``uint8/float [H, W, 3]`` or a tensor ``[3, H, W]`` in [0, 1]."""
        img = _as_hwc_float(image)
        grid = detect_grid(img)
        rect = grid.rectify(img, border=1.0)
        seg = self.segmenter
        if isinstance(seg, InkSegmenter) and seg.px_per_mm is None:
            seg = InkSegmenter(seg.line_mm, grid.px_per_mm)
        prob = seg(torch.from_numpy(np.ascontiguousarray(rect.transpose(2, 0, 1)))[None])[0]
        return self._from_rectified(prob.numpy(), grid, rect)

    def digitize_mask(self, image: np.ndarray | torch.Tensor,
                      prob: np.ndarray | torch.Tensor) -> Digitized:  # fmt: skip
        """Digitize from a given trace probability map ``[H, W]`` of ``image`` (ground-truth
        masks, or a model run elsewhere); the geometry still comes from the image."""
        img = _as_hwc_float(image)
        p = prob.detach().cpu().float().numpy() if isinstance(prob, torch.Tensor) else prob
        p = np.asarray(p, dtype=np.float32)
        if p.shape != img.shape[:2]:
            raise ValueError(f"mask shape {p.shape} does not match image {img.shape[:2]}")
        grid = detect_grid(img)
        return self._from_rectified(grid.rectify(p, border=0.0), grid, grid.rectify(img))

    # -- internals ----------------------------------------------------------------------------
    def _from_rectified(self, prob: np.ndarray, grid: GridEstimate,
                        image: np.ndarray | None = None) -> Digitized:  # fmt: skip
        warnings = list(grid.notes)
        layout = detect_layout(prob, grid.px_per_mm)
        pen = estimate_pen([row.trace for row in layout.rows])
        if image is not None:
            find_pulses_in_ink(layout, image, grid.px_per_mm)
            refine_pulses(layout, image, pen, grid.px_per_mm)
        warnings += layout.notes
        signal = self._assemble(layout, grid, pen, warnings)
        rows = []
        for row in layout.rows:
            xs = np.flatnonzero(np.isfinite(row.trace.y))
            pts = grid.to_input(np.c_[xs, row.trace.y[xs]])
            rows.append((pts[:, 0], pts[:, 1]))
        rec = Digitized(signal, self.fs, LEADS, layout.name, grid, warnings, rows)
        missing = rec.missing_leads
        if missing:
            warnings.append(f"no trace found for {', '.join(missing)} (NaN)")
        return rec

    def _time_axis(self, row, grid: GridEstimate, t: np.ndarray, warnings: list[str]
                   ) -> tuple[np.ndarray, float]:  # fmt: skip
        """Column ``x`` of each output time ``t`` on ``row``, and the seconds the row shows.

        The row's first and last trace columns hold its first and last sample; the pen reaches
        beyond both by the same amount, so their midpoint is exact. The scale comes from the
        grid (``paper_speed`` mm/s) when it agrees with the row's length within 3 %, else from
        the length itself (a row shows ``page_seconds``).
        """
        seconds = self.page_seconds
        span = row.x_end - row.x_start
        mid = 0.5 * (row.x_start + row.x_end)
        drawn = seconds - 1.0 / self.fs  # first to last sample
        px_per_s = span / drawn if span > 0 else float("nan")
        if grid.source == "grid" and span > 0:
            grid_px_per_s = self.paper_speed * grid.px_per_mm_x
            ratio = px_per_s / grid_px_per_s
            if abs(ratio - 1) <= 0.03:
                px_per_s = grid_px_per_s
            elif abs(ratio - 1) > 0.08:
                seconds = span / grid_px_per_s + 1.0 / self.fs
                drawn = seconds - 1.0 / self.fs
                px_per_s = grid_px_per_s
                warnings.append(
                    f"row at y={row.baseline:.0f} shows {seconds:.2f} s at {self.paper_speed:g} "
                    f"mm/s, not {self.page_seconds:g} s; timing from the grid"
                )
        return mid + (t - 0.5 * drawn) * px_per_s, seconds

    def _assemble(self, layout: PageLayout, grid: GridEstimate, pen: Pen, warnings: list[str]
                  ) -> np.ndarray:  # fmt: skip
        n = self.num_samples
        t = np.arange(n) / self.fs
        # the candidates per lead, longest panels first
        found: dict[str, list[tuple[float, np.ndarray]]] = {name: [] for name in LEADS}
        pulse_heights = [r.pulse.height for r in layout.rows if r.pulse is not None]
        page_gain_px = float(np.median(pulse_heights)) if pulse_heights else float("nan")
        if not pulse_heights and layout.rows:
            warnings.append(
                f"no calibration pulse found; {self.gain:g} mm/mV on the grid scale and the "
                "median level as baseline"
            )
        for row, leads in zip(layout.rows, layout.leads):
            if not leads:
                continue
            x, seconds = self._time_axis(row, grid, t, warnings)
            if row.pulse is not None:
                base, gain_px = row.pulse.foot, row.pulse.height
            else:
                base = isoelectric_level(row.trace.y[row.x_start : row.x_end + 1])
                gain_px = (
                    page_gain_px if np.isfinite(page_gain_px) else self.gain * grid.px_per_mm_y
                )
            k = len(leads)
            # panel c shows t in [c, c + 1) * seconds / k; its centre line is fitted on the
            # columns that see none of the neighbouring panels' traces
            cuts = np.interp(np.arange(1, k) * seconds / k, t, x)  # x of the panel boundaries
            for c, lead in enumerate(leads):
                lo = cuts[c - 1] + pen.reach + PANEL_MARGIN_PX if c > 0 else -np.inf
                hi = cuts[c] - pen.reach - PANEL_MARGIN_PX if c < k - 1 else np.inf
                line = fit_centerline(row.trace, pen, lo, hi)
                window = (t >= c * seconds / k) & (t < (c + 1) * seconds / k)
                values = np.full(n, np.nan)
                values[window] = (base - line.sample(x[window], hold=1.0)) / gain_px
                found[lead].append((seconds / k, values))
        out = np.full((len(LEADS), n), np.nan, dtype=np.float32)
        for i, name in enumerate(LEADS):
            for _, values in sorted(found[name], key=lambda kv: -kv[0]):
                fill = ~np.isfinite(out[i]) & np.isfinite(values)
                out[i, fill] = values[fill]
        return out

    # -- presentation -------------------------------------------------------------------------
    def overlay(self, image: np.ndarray | torch.Tensor, rec: Digitized) -> np.ndarray:
        """The input page with the recovered traces drawn over it, ``uint8 [H, W, 3]``."""
        img = (_as_hwc_float(image) * 255.0 + 0.5).astype(np.uint8)
        out = np.ascontiguousarray(img // 2 + 127)  # lighten so the traces stand out
        thickness = max(1, int(round(rec.grid.px_per_mm * 0.25)))
        for r, (x, y) in enumerate(rec.rows):
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.sum() < 2:
                continue
            pts = np.round(np.c_[x[ok], y[ok]] * 4).astype(np.int32)  # 2 fractional bits
            colour = LEAD_COLOURS[r % len(LEAD_COLOURS)]
            cv2.polylines(out, [pts], False, colour, thickness, cv2.LINE_AA, shift=2)
        return out
