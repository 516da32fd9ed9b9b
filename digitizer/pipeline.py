"""The digitizer: an ECG page image -> a calibrated 12-lead record.

    image --grid.detect_grid--> rectified page --segmenter--> trace probability
          --layout.detect_layout--> rows, pulses, leads --calibration--> time axis, baseline,
          gain --vectorize--> mV at the requested fs --confidence--> per-lead confidence

This module only orchestrates. Calibration (:mod:`digitizer.calibration`) measures the page:
time runs left to right over each row, which shows ``page_seconds`` (10 s on standard
printouts), placed by the trace's own ends at the grid's scale; a 3x4 row's four panels show
consecutive quarters of it. Amplitude comes from the row's calibration pulse (1 mV, its foot is
0 mV) wherever the printer put it, else from the grid scale at ``gain`` mm/mV around the row's
isoelectric level.

Samples the page does not show (the other 7.5 s of a 3x4 short lead) are NaN, as are leads that
could not be found and, unless ``keep_uncertain``, leads under the confidence threshold
(:mod:`digitizer.confidence`); :attr:`Digitized.warnings` says which and why.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
import torch

from ecgsynth.layout import LEADS

from .calibration import (
    TIME_TOL,
    TimeAxis,
    find_pulses_in_ink,
    isoelectric_level,
    panel_spans,
    refine_pulses,
    row_ends,
    row_time_axis,
)
from .confidence import (
    CONFIDENCE_THRESHOLD,
    JUNK_REL,
    Candidate,
    LeadReport,
    amplitude_check,
    merge_panels,
)
from .grid import GridEstimate, detect_grid, grid_drift
from .io import read_image
from .layout import PageLayout, Row, detect_layout
from .segment import PageReading, Segmenter, load_segmenter
from .vectorize import Pen, RowTrace, estimate_pen, fit_centerline

PANEL_MARGIN_PX = 0.25  # columns this close to a neighbouring panel's trace are left out
BAR_PX = 3  # a separator bar's full-height columns start and end within this (px)
# a page where a learned segmenter kept under this share of the ink is read from the ink map
# too (Digitizer's second_opinion)
SECOND_OPINION = 0.6

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
        leads: per lead, how it was read (row, panel, calibration, timing, confidence in
            [0, 1], ...; :mod:`digitizer.confidence`); :attr:`confidence` collects the values.
    """

    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...]
    layout: str
    grid: GridEstimate
    warnings: list[str] = field(default_factory=list)
    rows: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    leads: list[LeadReport] = field(default_factory=list)
    source: str = "raster"  # "raster" | "vector": how the page was read

    @property
    def confidence(self) -> np.ndarray:
        """``[12]`` in [0, 1]: each lead's confidence (0 for a lead that was not found)."""
        by_name = {r.name: r.confidence for r in self.leads}
        return np.array([by_name.get(name, 0.0) for name in self.sig_name])

    def report(self) -> dict:
        """``STEM.json``'s content: layout, how the page was read, per-lead confidence."""
        return {
            "layout": self.layout,
            "source": self.source,
            "fs": self.fs,
            "px_per_mm": round(float(self.grid.px_per_mm), 4),
            "grid": self.grid.source,
            "rotation_deg": round(float(self.grid.rotation_deg), 3),
            "confidence_threshold": CONFIDENCE_THRESHOLD,
            "leads": [r.to_dict() for r in self.leads],
            "warnings": list(self.warnings),
        }

    @property
    def missing_leads(self) -> list[str]:
        """Leads with no finite sample."""
        return [n for n, s in zip(self.sig_name, self.signal) if not np.isfinite(s).any()]


def _trace_bounds(row: Row, pen: Pen) -> tuple[float, float, float]:
    """Columns ``(lo, hi)`` of the row's own trace for the centre-line fit (a calibration
    pulse's strokes are not signal), and how far (px) the end values may be held to reach a
    sample that sits on a pulse edge."""
    lo, hi, hold = -np.inf, np.inf, 1.0
    p = row.pulse
    if p is None:
        return lo, hi, hold
    if p.side == "start":
        lo = p.x1 + pen.reach + PANEL_MARGIN_PX if p.joined else row.x_start - 0.5
        hold = max(hold, lo - p.edge + 1.0) if p.joined else hold
    else:
        hi = p.x0 - pen.reach - PANEL_MARGIN_PX if p.joined else row.x_end + 0.5
        hold = max(hold, p.edge - hi + 1.0) if p.joined else hold
    return lo, hi, hold


def _tracked(trace: RowTrace, x: np.ndarray) -> float:
    """Fraction of the pixel columns spanned by ``x`` ``[N]`` where the row's trace was
    followed (the tracker found its run there)."""
    if len(x) == 0:
        return 0.0
    cols = np.arange(int(np.ceil(np.nanmin(x))), int(np.floor(np.nanmax(x))) + 1)
    cols = cols[(cols >= 0) & (cols < len(trace.y))]
    return float(np.isfinite(trace.y[cols]).mean()) if len(cols) else 0.0


def _separator(trace: RowTrace, cut: float, ppm: float) -> tuple[int, int] | None:
    """Columns ``(first, last)`` of a printed column separator (a narrow vertical stroke over
    2 mm tall within 1 mm of the panel boundary ``cut``), if the row's trace shows one. A bar
    up to 1.5 mm wide (printed bold, or blurred) counts when its full-height columns share
    their top and bottom (within :data:`BAR_PX`); a QRS at the boundary does not."""
    a, b = int(np.floor(cut - ppm)), int(np.ceil(cut + ppm)) + 1
    a, b = max(a, 0), min(b, len(trace.y))
    span = np.nan_to_num(trace.bottom[a:b] - trace.top[a:b], nan=0.0)
    tall = np.flatnonzero(span >= 2.0 * ppm)
    if len(tall) == 0:
        return None
    if tall[-1] - tall[0] + 1 <= max(2, 0.8 * ppm):
        return a + int(tall[0]), a + int(tall[-1])
    core = np.flatnonzero(span >= 0.8 * span.max())  # the bar's full-height columns
    bar = (
        core[-1] - core[0] + 1 == len(core) <= 1.5 * ppm
        and np.ptp(trace.top[a:b][core]) <= BAR_PX and np.ptp(trace.bottom[a:b][core]) <= BAR_PX
    )  # fmt: skip
    return (a + int(core[0]), a + int(core[-1])) if bar else None


def _panel_firsts(placed: list, px_per_s: float | None, pen: Pen, page_seconds: float,
                  fs: float) -> list[list[float] | None]:  # fmt: skip
    """x of the first sample of every set-apart panel (per row, ``None`` where the row's
    panels are not set apart). A panel whose two ends match its length is placed by their
    midpoint (equal pen overshoot). One that came out short lost ink at one end: it keeps the
    end that lines up (within 2 px) with the same column's panel on a row
    where both ends matched (printers align columns), else its midpoint."""
    over = max(0.0, 0.5 * pen.width - 0.5)
    out: list[list[float] | None] = []
    refs: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for _, _, spans in placed:
        for c, (a, b, exact) in enumerate(spans or []):
            if exact:
                refs.setdefault((len(spans), c), []).append((a, b))
    for _, _, spans in placed:
        if spans is None or px_per_s is None:
            out.append(None)
            continue
        k = len(spans)
        shown = (page_seconds / k - 1.0 / fs) * px_per_s  # first to last sample
        firsts = []
        for c, (a, b, exact) in enumerate(spans):
            first = 0.5 * (a + b) - 0.5 * shown
            ref = refs.get((k, c), [])
            if not exact and ref:
                if min(abs(a - ra) for ra, _ in ref) <= 2:
                    first = a + over
                elif min(abs(b - rb) for _, rb in ref) <= 2:
                    first = b - over - shown
            firsts.append(first)
        out.append(firsts)
    return out


SHARED_AXIS_MM = 1.5  # a short row placed this close to the rows that match takes their axis
SHORT_ROW_PX = 1.5  # a row this much shorter than the grid says lost ink at one end
ROW_SCALE_TOL = 0.03  # rows this close to page_seconds at the page size's scale confirm it
PULSE_AXIS_MM = 4.0  # a row placed by its pulse, as the joined rows are, may move this far


def _share_time_axis(rows: list[Row], placed: list, pen: Pen, width: int, ppm: float,
                     fs: float) -> None:  # fmt: skip
    """All rows of a standard printout start at one time. A row placed by its free ends
    (``page_seconds`` long at the grid's scale, no pulse edge) that came out shorter than the
    grid says (by over :data:`SHORT_ROW_PX`: ink lost at one end, a trace start hidden by its
    label or by a grid line as dark as the trace) is misplaced by half of what it lost; it
    takes the axis of the rows whose two ends match the grid (within a pixel; their median),
    when that is within :data:`SHARED_AXIS_MM` of its own. Rows that match keep their own
    axis (a warped page places rows a pixel or two apart).

    The rows' pulses say the same where some rows run straight out of their pulse (placed by
    its edge) and others, pulse at the start too, leave a gap there (ink lost next to the
    pulse): a row placed by its free ends whose ends do not match the grid starts where its
    own pulse edge puts it, at the joined rows' offset from theirs (median), when its trace
    starts there or later and that is within :data:`PULSE_AXIS_MM` of its own axis.
    ``placed`` is updated."""
    fit, short, loose, offsets = [], [], [], []
    for i, (row, (axis, note, spans)) in enumerate(zip(rows, placed)):
        joined = row.pulse is not None and row.pulse.joined
        if joined and row.pulse.side == "start" and note is None and spans is None:
            offsets.append(axis.x0 - row.pulse.edge)
        if note is None and spans is None and axis.source == "grid" and not joined:
            x_first, x_last, ok_first, ok_last = row_ends(row, pen, width)
            err = (x_last - x_first) - (axis.seconds - 1.0 / fs) * axis.px_per_s
            if ok_first and ok_last and abs(err) <= 1.0:
                fit.append(axis.x0)
                continue
            short_row = ok_first and ok_last and err < -SHORT_ROW_PX
            if row.pulse is not None and row.pulse.side == "start":
                loose.append((i, x_first, short_row))
            elif short_row:
                short.append(i)
    moves = []  # (row, x0, how far from its own axis it may move, px)
    for i, x_first, short_row in loose:
        x0 = rows[i].pulse.edge + float(np.median(offsets)) if offsets else np.inf
        if x0 <= x_first + 1.0:
            moves.append((i, x0, PULSE_AXIS_MM * ppm))
        elif short_row:
            short.append(i)
    if fit:
        moves += [(i, float(np.median(fit)), SHARED_AXIS_MM * ppm) for i in short]
    for i, x0, reach in moves:
        axis, note, spans = placed[i]
        if abs(axis.x0 - x0) <= reach:
            placed[i] = (replace(axis, x0=x0, anchor="page"), note, spans)


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
        min_confidence: leads under this confidence are written as NaN ...
        keep_uncertain: ... unless this is set (their confidence is still reported).
        second_opinion: a page where a learned segmenter kept under this share of the page's
            ink (:attr:`~digitizer.segment.PageReading.kept`) is read from the non-learned ink
            map too, and the reading whose leads are more confident (mean) is kept; 0: never.
            The ink-input U-Net keeps 6-88 % of the ink (median 30 %) on ECG-Image-Kit's
            wrinkled photos, which it reads worse than the ink map (3.46 vs 9.18 dB), and
            53-88 % on our held-out clean and medium pages (all but two over 60 %), which it
            reads as well or better: those are read once.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None,
                 segmenter: Segmenter | None = None, fs: float = 500.0, num_samples: int = 5000,
                 device: str | torch.device = "cpu", page_seconds: float = 10.0,
                 paper_speed: float = 25.0, gain: float = 10.0,
                 min_confidence: float = CONFIDENCE_THRESHOLD, keep_uncertain: bool = False,
                 second_opinion: float = SECOND_OPINION) -> None:  # fmt: skip
        if fs <= 0 or num_samples <= 0:
            raise ValueError("fs and num_samples must be positive")
        self.segmenter = segmenter if segmenter is not None else load_segmenter(checkpoint, device)
        self.fs = float(fs)
        self.num_samples = int(num_samples)
        self.page_seconds = page_seconds
        self.paper_speed = paper_speed
        self.gain = gain
        self.min_confidence = min_confidence
        self.keep_uncertain = keep_uncertain
        self.second_opinion = second_opinion

    # -- entry points -------------------------------------------------------------------------
    def digitize_file(self, path: str | os.PathLike) -> Digitized:
        """Read and digitize one image file (raises :class:`~digitizer.io.ImageError`)."""
        return self.digitize(read_image(path))

    def digitize(self, image: np.ndarray | torch.Tensor) -> Digitized:
        """Digitize an RGB page: ``uint8/float [H, W, 3]`` or a tensor ``[3, H, W]`` in [0, 1]."""
        img = _as_hwc_float(image)
        grid = detect_grid(img)
        rect = grid.rectify(img, border=1.0)
        page = torch.from_numpy(np.ascontiguousarray(rect.transpose(2, 0, 1)))[None]
        prob = _segment(self.segmenter, page, grid.px_per_mm)[0]
        seen = (getattr(self.segmenter, "pages", None) or [PageReading()])[0]
        rec = self._from_rectified(prob.numpy(), grid, rect, [seen.note] if seen.note else [])
        if seen.ink is not None and seen.kept < self.second_opinion and not seen.note:
            rec = self._second_opinion(rec, grid, rect, seen)
        return rec

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
    def _second_opinion(self, rec: Digitized, grid: GridEstimate, rect: np.ndarray,
                        seen: PageReading) -> Digitized:  # fmt: skip
        """``rec``, read from a learned segmenter that kept only ``seen.kept`` of the page's
        ink, or the page's reading from its ink map ``seen.ink`` (rectified frame), whichever
        has the more confident leads; its warnings say which and why."""
        other = self._from_rectified(seen.ink, grid, rect)
        mine, theirs = float(rec.confidence.mean()), float(other.confidence.mean())
        best, source = (other, "the ink map") if theirs > mine else (rec, "the model's map")
        best.warnings.append(
            f"the segmenter kept {100 * seen.kept:.0f} % of the page's ink: read from the ink map "
            f"too; kept the reading from {source} (mean lead confidence {max(mine, theirs):.2f} "
            f"vs {min(mine, theirs):.2f})"
        )
        return best

    def _from_rectified(self, prob: np.ndarray, grid: GridEstimate,
                        image: np.ndarray | None = None,
                        notes: list[str] | None = None) -> Digitized:  # fmt: skip
        warnings = list(grid.notes) + list(notes or [])
        outside = grid.outside()
        if outside is not None:  # no grid there: a desk or border, whose edges are not traces
            prob = np.where(outside, 0.0, prob).astype(prob.dtype)
        layout = detect_layout(prob, grid.px_per_mm)
        pen = estimate_pen([row.trace for row in layout.rows])
        if image is not None:
            find_pulses_in_ink(layout.rows, image, grid.px_per_mm)
            refine_pulses(layout.rows, image, pen)
        warnings += layout.notes
        # a residual tilt of a homography-rectified page (a densely dewarped page's grid is
        # straight by construction; measured there, the drift cost 0.4 dB on our heavy pages)
        tilted = image is not None and grid.source == "grid" and grid.warp is None
        drifts = [
            grid_drift(image, prob, row.baseline, row.x_start, row.x_end, grid.px_per_mm_y)
            if tilted else None
            for row in layout.rows
        ]  # fmt: skip
        signal, reports = self._assemble(layout, grid, pen, warnings, prob.shape[1], drifts)
        cut = [f"{r.name} {r.contradicted / self.fs:.2f} s" for r in reports if r.contradicted]
        if cut:
            warnings.append(
                f"left out (NaN) where the limb leads contradict each other by over {JUNK_REL:g} "
                "times their size (ink of no lead): " + ", ".join(cut)
            )
        for i, r in enumerate(reports):
            if r.written and r.confidence < self.min_confidence and not self.keep_uncertain:
                signal[i] = np.nan
                r.written = False
                warnings.append(
                    f"{r.name}: confidence {r.confidence:.2f} < {self.min_confidence:g}; "
                    "written as NaN (keep_uncertain writes it)"
                )
        rows = []
        for row in layout.rows:
            xs = np.flatnonzero(np.isfinite(row.trace.y))
            pts = grid.to_input(np.c_[xs, row.trace.y[xs]])
            rows.append((pts[:, 0], pts[:, 1]))
        rec = Digitized(signal, self.fs, LEADS, layout.name, grid, warnings, rows, reports)
        missing = rec.missing_leads
        if missing:
            warnings.append(f"no trace found for {', '.join(missing)} (NaN)")
        return rec

    def _assemble(self, layout: PageLayout, grid: GridEstimate, pen: Pen, warnings: list[str],
                  width: int, drifts: list[np.ndarray | None]
                  ) -> tuple[np.ndarray, list[LeadReport]]:  # fmt: skip
        """The record ``[12, num_samples]`` and a report per lead. ``drifts``: per row, the
        grid's residual tilt along it (:func:`~digitizer.grid.grid_drift`, or ``None``): the
        row's 0 mV line follows it from where the baseline was measured."""
        n = self.num_samples
        t = np.arange(n) / self.fs
        # the candidates per lead, longest panels first
        found: dict[str, list[Candidate]] = {name: [] for name in LEADS}
        pulse_heights = [r.pulse.height for r in layout.rows if r.pulse is not None]
        page_gain_px = float(np.median(pulse_heights)) if pulse_heights else float("nan")
        if not pulse_heights and layout.rows:
            warnings.append(
                f"no calibration pulse found; {self.gain:g} mm/mV on the grid scale and the "
                "median level as baseline"
            )
        grid_px_per_s = self.paper_speed * grid.px_per_mm_x if grid.source == "grid" else None
        placed = [self._place_row(row, len(leads), pen, width, grid_px_per_s, grid.px_per_mm_x)
                  for row, leads in zip(layout.rows, layout.leads)]  # fmt: skip
        starts = _panel_firsts(placed, grid_px_per_s, pen, self.page_seconds, self.fs)
        _share_time_axis(layout.rows, placed, pen, width, grid.px_per_mm_x, self.fs)
        scale, scale_ppm = ("grid", grid.px_per_mm_y) if grid.source == "grid" else (
            self._row_length_scale(placed, grid, warnings))  # fmt: skip
        for r, (row, leads) in enumerate(zip(layout.rows, layout.leads)):
            if not leads:
                continue
            k = len(leads)
            axis, note, spans = placed[r]
            if spans is not None:
                note = None
                warnings.append(
                    f"row at y={row.baseline:.0f}: {k} panels set apart, each placed by its "
                    "own ends at the grid's scale"
                )
            if note:
                warnings.append(note)
            x, seconds = axis.x(t), axis.seconds
            joined = row.pulse is not None and row.pulse.joined
            timing = "grid" if note else "pulse-edge" if joined else "length"
            if note and axis.ratio > 1 + TIME_TOL:
                timing = "long"  # which end holds the extra ink is not known
            if spans is not None:
                seconds, timing = self.page_seconds, "panels"
            tilt = drifts[r] if drifts[r] is not None else np.zeros(1)  # np.polyval coefficients
            if row.pulse is not None:
                base, gain_px, calibration = row.pulse.foot, row.pulse.height, "pulse"
                base -= float(np.polyval(tilt, 0.5 * (row.pulse.x0 + row.pulse.x1)))
            else:
                calibration = "page-pulse" if np.isfinite(page_gain_px) else scale
                cols = (
                    np.arange(row.x_start, row.x_end + 1) if spans is None else
                    np.concatenate([np.arange(a, b + 1) for a, b, _ in spans])
                )  # fmt: skip
                # the mode of the trace as printed: a histogram's mode can jump between two
                # near-equal peaks under a 0.05 px tilt, so the tilt is not taken out before it
                base = isoelectric_level(row.trace.y[cols]) - float(np.mean(np.polyval(tilt, cols)))
                gain_px = page_gain_px if np.isfinite(page_gain_px) else self.gain * scale_ppm
            # panel c shows t in [c, c + 1) * seconds / k; its centre line is fitted on the
            # columns that see none of the neighbouring panels' traces
            cuts = np.interp(np.arange(1, k) * seconds / k, t, x)  # x of the panel boundaries
            row_lo, row_hi, hold = _trace_bounds(row, pen)
            # panel boundaries: a separator stroke there is not signal either
            bounds = []
            for cut in cuts:
                sep = _separator(row.trace, cut, grid.px_per_mm)
                a, b = sep if sep is not None else (cut, cut)
                bounds.append((a - pen.reach - PANEL_MARGIN_PX, b + pen.reach + PANEL_MARGIN_PX))
                hold = max(hold, b - cut + pen.reach + PANEL_MARGIN_PX + 1.0, cut - a + 1.0)
            if spans is not None:
                # each panel by its own two free ends (equal pen overshoot) at the grid's scale
                step = seconds / k
                x = np.empty_like(t)
                for c in range(k):
                    sel = (t >= c * step) & (t < (c + 1) * step)
                    x[sel] = starts[r][c] + (t[sel] - c * step) * grid_px_per_s
                bounds = [(spans[c][1] + 0.5, spans[c + 1][0] - 0.5) for c in range(k - 1)]
                row_lo, row_hi = spans[0][0] - 0.5, spans[-1][1] + 0.5
                hold = 1.0 + max(0.0, 0.5 * pen.width - 0.5)
            for c, lead in enumerate(leads):
                lo = bounds[c - 1][1] if c > 0 else row_lo
                hi = bounds[c][0] if c < k - 1 else row_hi
                line = fit_centerline(row.trace, pen, lo, hi)
                window = (t >= c * seconds / k) & (t < (c + 1) * seconds / k)
                values = np.full(n, np.nan)
                at = x[window]
                values[window] = (
                    base + np.polyval(tilt, at) - line.sample(at, hold=hold)
                ) / gain_px
                report = LeadReport(
                    lead, row=r, panel=c, coverage=_tracked(row.trace, x[window]),
                    calibration=calibration, timing=timing, layout=layout.kind,
                    amplitude=amplitude_check(values),
                )  # fmt: skip
                found[lead].append((seconds / k, values, report))
        return merge_panels(found, LEADS, n)

    def _row_length_scale(self, placed: list, grid: GridEstimate, warnings: list[str]
                          ) -> tuple[str, float]:  # fmt: skip
        """Without a grid, the scale assumed from the page's size, and how far to trust it:
        the rows (each ``page_seconds`` long, placed by their own length) measure the paper's
        scale too; where their median agrees with the page size's within
        :data:`ROW_SCALE_TOL`, it is known twice over (``"row-length"``: the gain is taken at
        the rows' scale, paper being as fine across as along), else only assumed
        (``"page-size"``). Returns the calibration's name and px/mm for the gain."""
        lengths = [axis.px_per_s for axis, _, _ in placed if axis.source == "length"]
        if not lengths:
            return "page-size", grid.px_per_mm_y
        ppm = float(np.median(lengths)) / self.paper_speed
        if abs(ppm / grid.px_per_mm_x - 1.0) > ROW_SCALE_TOL:
            return "page-size", grid.px_per_mm_y
        warnings.append(
            f"no grid: the rows' length gives {ppm:.2f} px/mm (the page's size "
            f"{grid.px_per_mm_x:.2f})"
        )
        return "row-length", ppm

    def _place_row(self, row: Row, k: int, pen: Pen, width: int, grid_px_per_s: float | None,
                   ppm: float) -> tuple[TimeAxis, str | None, list | None]:  # fmt: skip
        """The row's time axis, its warning, and its panels if the printer set them apart
        (:func:`~digitizer.calibration.panel_spans`; tried when the row is longer than
        ``page_seconds`` at the grid's scale)."""
        axis, note = row_time_axis(row, pen, width, grid_px_per_s, self.page_seconds, self.fs)
        spans = None
        if note and k > 1 and grid_px_per_s is not None:
            over = max(0.0, 0.5 * pen.width - 0.5)
            drawn = (self.page_seconds / k - 1.0 / self.fs) * grid_px_per_s + 2.0 * over
            spans = panel_spans(row.trace, row.x_start, row.x_end, k, drawn, ppm)
        return axis, note, spans

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


def _segment(segmenter: Segmenter, page: torch.Tensor, px_per_mm: float) -> torch.Tensor:
    """Run ``segmenter`` on ``page [1, 3, H, W]``, passing the measured scale when it takes one
    (a plain ``f(image)`` callable, the protocol's older form, still works)."""
    try:
        takes_scale = "px_per_mm" in inspect.signature(segmenter).parameters
    except (TypeError, ValueError):  # builtins and C callables have no signature
        takes_scale = False
    return segmenter(page, px_per_mm=px_per_mm) if takes_scale else segmenter(page)
