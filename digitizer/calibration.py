"""Calibration: what a row's ink says about volts and seconds.

Everything here is measured on the page; nothing assumes how a particular printer draws.

- **Pulses** (:func:`find_pulse_at`). A calibration pulse is a 1 mV step: a vertical stroke up,
  a flat top 0.06-0.3 s long, a vertical stroke down. Printers put it at the start of a row, at
  its end, on some rows only or nowhere; some leave a gap between it and the trace, others run
  the trace straight out of its trailing edge (ECG-Image-Kit, the Challenge 2024 pages). Its
  foot is 0 mV and its height is the gain; the edge it shares with the trace, when it does,
  places the trace's first (or last) sample: :data:`JOINED_LEAD_S` inside the stroke's centre
  (:func:`row_ends`), which :func:`refine_pulses` measures to a tenth of a pixel.
- **Time axis** (:func:`row_time_axis`). A row shows ``page_seconds`` of signal (10 s on
  standard printouts) from its first to its last sample. Where each end lies comes from the
  trace itself: a free trace end overshoots its sample by the pen's half width, the same at
  both ends, so the midpoint of two free ends is exact; an end joined to a pulse is placed by
  its edge. Two free ends further apart or closer than the pen explains (ink lost under a
  grid line as dark as the trace) give way to the end beside the row's pulse. The scale is
  the grid's at the nominal paper speed (measured over the whole page); the row's length says
  whether it shows ``page_seconds`` (else it is another duration, or cut off by the image
  border and placed by its other end). Without a grid, the row's length is the scale.

Shapes: traces are :class:`~digitizer.vectorize.RowTrace` (per-column arrays ``[W]``); images
are rectified ``float32 [H, W, 3]`` in [0, 1]; x and y are pixel columns and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .channels import channel_max
from .segment import InkSegmenter
from .vectorize import Pen, RowTrace, track_row, true_runs

PULSE_GAINS_MM = (5.0, 10.0, 20.0)  # a pulse is 1 mV: this tall at 5, 10 or 20 mm/mV
PULSE_GAIN_TOL = 0.12  # relative tolerance on the pulse height
PULSE_TOP_MM = (1.2, 11.0)  # flat top: 0.06-0.3 s at 25 mm/s, up to 0.2 s at 50 mm/s
PULSE_LEAD_IN_MM = 4.0  # the rising stroke sits this close to the row's end (feet, if any)
JOIN_GAP_MM = 0.25  # a break this long (2 px at least) after the pulse separates it from the trace
# a trace joined to its pulse starts this long before the centre of the pulse's falling stroke:
# ECG-Image-Kit (the Challenge 2024 pages) draws the pulse as a polyline at the record's rate
# that steps down between its samples 101 and 102 (from 0), and the trace from sample 100: 1.5
# samples at 500 Hz, 0.6 px at 200 dpi (on its pages the trace read 3 ms early without it)
JOINED_LEAD_S = 0.003
EDGE_MOVE_PX = 1.5  # a stroke centre further than this from the tracked edge is not the edge
FOOT_MAX_MM = 2.5  # the flat foot after a pulse's last stroke is at most this long
TIME_TOL = 0.03  # row length vs grid at the nominal speed: agree within this -> use the length
PLACE_TOL = 0.005  # ... within this, both free ends place the row; beyond, the pulse's side


@dataclass
class Pulse:
    """A calibration pulse.

    Attributes:
        x0, x1: first and last column of its ink (feet included).
        foot, top: y (px) of 0 mV and of 1 mV (stroke centres).
        side: ``"start"`` (left of the row's trace) or ``"end"`` (right of it).
        edge: x (px) of its vertical stroke that faces the trace (its centre, to a tenth of a
            pixel after :func:`refine_pulses`).
        joined: the trace runs straight out of (or into) that edge, so the edge places the
            trace's first (last) sample (:func:`row_ends`).
    """

    x0: int
    x1: int
    foot: float
    top: float
    side: str = "start"
    edge: float = float("nan")
    joined: bool = False
    strokes: tuple[tuple[int, int], tuple[int, int]] = ((0, -1), (0, -1))  # left, right columns

    @property
    def height(self) -> float:
        return self.foot - self.top

    def shifted(self, dx: int, dy: int, joined: bool | None = None) -> Pulse:
        """The same pulse, found in a crop, in the coordinates of the page it was cut from."""
        (a0, a1), (b0, b1) = self.strokes
        return replace(self, x0=self.x0 + dx, x1=self.x1 + dx, foot=self.foot + dy,
                       top=self.top + dy, edge=self.edge + dx,
                       joined=self.joined if joined is None else joined,
                       strokes=((a0 + dx, a1 + dx), (b0 + dx, b1 + dx)))  # fmt: skip


def find_pulse_at(trace: RowTrace, x_lo: int, x_hi: int, ppm: float, side: str = "start",
                  gain_tol: float = PULSE_GAIN_TOL) -> Pulse | None:  # fmt: skip
    """The calibration pulse at one end of the row's trace between columns ``[x_lo, x_hi]``.

    Looks for, from that end inwards: optional feet, a stroke about 1 mV tall (at 5, 10 or 20
    mm/mV, within ``gain_tol``), a flat top 1.2-11 mm long, and a second tall stroke. Works
    whether the trace follows after a gap or straight from the edge. ``None`` if the row shows
    no pulse there.
    """
    if side not in ("start", "end"):
        raise ValueError(f"side must be 'start' or 'end', not {side!r}")
    sl = slice(x_lo, x_hi + 1)
    top, bot = trace.top[sl], trace.bottom[sl]
    if side == "end":
        top, bot = top[::-1], bot[::-1]
    finite = np.isfinite(top)
    first = np.flatnonzero(finite)
    if len(first) < 3:
        return None
    n = min(len(top), first[0] + int(round((PULSE_LEAD_IN_MM + PULSE_TOP_MM[1] + 2) * ppm)))
    top, bot = top[:n], bot[:n]
    span = np.where(np.isfinite(top), bot - top, 0.0)
    strokes = tall_strokes(top, bot, ppm)
    if len(strokes) < 2 or strokes[0][0] - first[0] > PULSE_LEAD_IN_MM * ppm:
        return None
    r0, r1 = strokes[0]
    for f0, f1 in strokes[1:]:  # the second stroke: the first one that reaches the foot
        width_mm = (f0 - r1 - 1) / ppm
        if not PULSE_TOP_MM[0] <= width_mm <= PULSE_TOP_MM[1]:
            return None
        flat = top[r1 + 1 : f0]
        if len(flat) < 2 or not np.isfinite(flat).all():
            return None
        level = float(np.median(flat))
        # the pulse's own stroke thickness (often drawn bolder than the trace)
        lw = max(1.0, float(np.median(bot[r1 + 1 : f0] - flat)) + 1.0)
        foot = float(np.max(bot[_stroke_columns(top, bot, r0, r1, level + max(2.0, lw))]))
        foot -= 0.5 * (lw - 1)
        top_y = level + 0.5 * (lw - 1)
        height = foot - top_y
        if height <= 0 or np.percentile(np.abs(flat - level), 90) > max(1.5, 0.08 * height):
            return None  # not flat-topped: a QRS, not a pulse
        if not any(abs(height / (g * ppm) - 1) <= gain_tol for g in PULSE_GAINS_MM):
            return None  # not 1 mV at a standard gain
        if span[f0 : f1 + 1].max() >= 0.75 * height:
            break
        # else a mark under the top (a crease, a letter), not the stroke back to the foot
    else:
        return None
    # after the second stroke: a short foot and a gap (the pulse ends there), or the trace
    # straight on (joined: no gap within a foot's length)
    joined, gap = runs_on(top[f1 + 1 :], ppm)
    end = int(f1)
    if gap is not None and not joined:
        end = int(f1 + gap)  # the foot belongs to the pulse
    # the stroke's own columns reach up to the top; a steep trace that leaves it may make the
    # tall cluster wider, but does not reach the pulse's top there
    at_top = np.flatnonzero(top[f0 : f1 + 1] <= level + max(1.5, 0.5 * lw)) + f0
    edge = float(np.mean(at_top)) if len(at_top) else 0.5 * (f0 + f1)
    if side == "start":
        x0, x1, edge_x = x_lo + int(first[0]), x_lo + end, x_lo + edge
        strokes = ((x_lo + r0, x_lo + r1), (x_lo + f0, x_lo + f1))
    else:
        x0, x1, edge_x = x_hi - end, x_hi - int(first[0]), x_hi - edge
        strokes = ((x_hi - f1, x_hi - f0), (x_hi - r1, x_hi - r0))
    return Pulse(x0, x1, foot, top_y, side, float(edge_x), bool(joined), strokes)


def runs_on(beyond: np.ndarray, ppm: float) -> tuple[bool, int | None]:
    """Whether the trace runs on straight from a pulse's stroke: ``beyond`` ``[N]`` is the
    row's path (NaN where none) from the column after the stroke outwards. Joined: ink there
    and no gap (:data:`JOIN_GAP_MM`) within a foot's length (:data:`FOOT_MAX_MM`). Also the
    offset of the first gap (``None``: none): a pulse that is not joined ends there."""
    after = np.isfinite(beyond[: int(round((FOOT_MAX_MM + 1.0) * ppm))])
    gaps = [a for a, b in true_runs(~after) if b - a + 1 >= max(2.0, JOIN_GAP_MM * ppm)]
    joined = bool(after.any()) and not (gaps and gaps[0] <= FOOT_MAX_MM * ppm)
    return joined, (int(gaps[0]) if gaps else None)


def tall_strokes(top: np.ndarray, bottom: np.ndarray, ppm: float) -> list[tuple[int, int]]:
    """Column runs ``[(first, last)]`` where a row's path ``top``/``bottom`` ``[N]`` (NaN where
    none) spans at least 3/4 of a pulse at the lowest gain: a pulse's vertical strokes (or a
    QRS's)."""
    span = np.nan_to_num(bottom - top, nan=0.0)
    return true_runs(span >= 0.75 * PULSE_GAINS_MM[0] * ppm)


def _stroke_columns(top: np.ndarray, bot: np.ndarray, c0: int, c1: int, reach: float
                    ) -> np.ndarray:  # fmt: skip
    """The columns of ``c0..c1`` that make one stroke with those reaching up to ``reach``
    (their runs overlap, column to column): the path may take a neighbouring row's stroke in
    a column beside the pulse's own. All of them when none reaches up that far."""
    cols = np.arange(c0, c1 + 1)
    keep = top[cols] <= reach
    if not keep.any():
        return cols
    for order in (cols, cols[::-1]):  # grow right, then left, through overlapping runs
        for a, b in zip(order[:-1], order[1:]):
            if keep[a - c0] and top[b] <= bot[a] + 1 and bot[b] >= top[a] - 1:
                keep[b - c0] = True
    return cols[keep]


def trace_after_pulse(trace: RowTrace, pulse: Pulse) -> int | None:
    """First (``start`` pulse) or last (``end`` pulse) trace column beyond the pulse."""
    if pulse.side == "start":
        after = np.flatnonzero(np.isfinite(trace.y[pulse.x1 + 1 :]))
        return int(pulse.x1 + 1 + after[0]) if len(after) else None
    before = np.flatnonzero(np.isfinite(trace.y[: pulse.x0]))
    return int(before[-1]) if len(before) else None


def find_pulses_in_ink(rows: list, image: np.ndarray, ppm: float) -> None:
    """Look for the calibration pulse of rows that have none in the *ink* of the rectified
    image ``[H, W, 3]``, in strips left and right of the trace: a learned segmenter (or a
    ground-truth trace mask) may leave pulses out, but they hold the exact baseline and gain.
    ``rows`` are :class:`~digitizer.layout.Row` s (their ``pulse`` is set in place)."""
    h, w = image.shape[:2]
    for row in rows:
        if row.pulse is not None:
            continue
        half = 12 * ppm
        y_lo = int(max(0, row.baseline - half))
        y_hi = int(min(h, row.baseline + half))
        for side in ("start", "end"):
            if side == "start":
                x_lo, x_hi = (
                    max(0, row.x_start - int(15 * ppm)),
                    row.x_start - max(1, int(0.3 * ppm)),
                )
            else:
                x_lo, x_hi = row.x_end + max(1, int(0.3 * ppm)), min(w, row.x_end + int(15 * ppm))
            if x_hi - x_lo < 3 * ppm:
                continue
            strip = image[y_lo:y_hi, x_lo:x_hi].transpose(2, 0, 1)
            ink = InkSegmenter(px_per_mm=ppm).segment(strip)
            trace = track_row(ink, row.baseline - y_lo, half)
            cols = np.flatnonzero(np.isfinite(trace.y))
            if len(cols) < 3:
                continue
            # the stretch nearest the trace (in ink, grid-line removal may nick the pulse)
            breaks = np.flatnonzero(np.diff(cols) > max(2, int(1.0 * ppm)))
            if side == "start":
                lo = int(cols[breaks[-1] + 1]) if len(breaks) else int(cols[0])
                hi = int(cols[-1])
            else:
                lo, hi = int(cols[0]), int(cols[breaks[0]]) if len(breaks) else int(cols[-1])
            pulse = find_pulse_at(trace, lo, hi, ppm, side)
            if pulse is None:
                continue
            row.pulse = pulse.shifted(x_lo, y_lo, joined=False)
            break


def refine_pulses(rows: list, image: np.ndarray, pen: Pen) -> None:
    """Re-measure each row's pulse foot (0 mV), top (1 mV) and edge to a fraction of a pixel
    from the anti-aliased ink of the rectified image ``[H, W, 3]``. A binary mask only tells
    them to the pixel: half a pixel of baseline is a visible offset on a small lead, and half a
    pixel of time (1.3 ms at 200 dpi) costs several dB on a sharp QRS.

    Foot and top: the darkness-weighted centre of the flat strokes, column by column, median
    over the stroke. The feet are whatever flat ink lies outside the two vertical strokes (none
    on pages whose trace leaves the pulse straight from its edge: the foot then stays as
    tracked). Edge: the darkness-weighted centre of the stroke facing the trace, row by row over
    its middle half, median."""
    half = 0.5 * pen.width + 1.5
    edge = int(np.ceil(pen.reach)) + 1  # columns next to the vertical strokes are not flat
    bright = channel_max(image)  # ink is dark in every channel
    for row in rows:
        p = row.pulse
        if p is None:
            continue
        (r0, r1), (f0, f1) = p.strokes
        if r1 < r0 or f1 < f0:
            continue
        foot_cols = np.r_[p.x0 : r0 - edge + 1, f1 + edge : p.x1 + 1]
        top_cols = np.arange(r1 + 2 * edge, f0 - 2 * edge + 1)
        top = _stroke_level(bright, top_cols, p.top, half)
        if np.isfinite(top) and abs(top - p.top) < 1.5:
            p.top = top
        if len(foot_cols) >= 2:
            foot = _stroke_level(bright, foot_cols, p.foot, half)
            if np.isfinite(foot) and abs(foot - p.foot) < 1.5:
                p.foot = foot
        x = _stroke_centre(bright, p.strokes[1] if p.side == "start" else p.strokes[0],
                           p.top, p.foot)  # fmt: skip
        if np.isfinite(x) and abs(x - p.edge) <= EDGE_MOVE_PX:
            p.edge = x


def _stroke_centre(bright: np.ndarray, stroke: tuple[int, int], top: float, foot: float
                   ) -> float:  # fmt: skip
    """Darkness-weighted x of a vertical stroke spanning columns ``stroke`` between ``top`` and
    ``foot`` (px): median over the rows of its middle half; NaN if not measurable. In each row
    only the stroke's own run of ink counts (a trace leaving the pulse steeply can run beside
    it), and rows where that run is wider than most (the trace touching it) are left out."""
    h, w = bright.shape
    c0, c1 = stroke[0] - 3, stroke[1] + 4
    y0, y1 = int(np.ceil(top + 0.25 * (foot - top))), int(np.floor(foot - 0.25 * (foot - top)))
    if c0 - 4 < 0 or c1 + 4 > w or y1 - y0 < 2 or y0 < 0 or y1 >= h:
        return float("nan")
    block = bright[y0 : y1 + 1, c0 - 4 : c1 + 4]
    paper = float(np.percentile(block, 95))
    dark = np.clip(1.0 - block / max(paper, 1e-3), 0.0, 1.0)
    bg = np.median(np.c_[dark[:, :3], dark[:, -3:]], axis=1, keepdims=True)
    ink = np.clip(dark[:, 4:-4] - bg, 0.0, None)
    cols = np.arange(c0, c1)
    middle = int(round(0.5 * (stroke[0] + stroke[1]))) - c0
    centres, widths = [], []
    for row in ink:
        inked = row > 0.3 * row.max() if row.max() > 0.2 else np.zeros_like(row, bool)
        if not inked[middle]:
            continue
        a = middle - int(np.argmin(inked[middle::-1])) if not inked[: middle + 1].all() else 0
        b = middle + int(np.argmin(inked[middle:])) if not inked[middle:].all() else len(row)
        run = slice(max(0, a), min(len(row), b + 1))  # the run with its anti-aliased tails
        mass = row[run].sum()
        centres.append(float((row[run] * cols[run]).sum() / mass))
        widths.append(b - a)
    if len(centres) < 2:
        return float("nan")
    widths = np.asarray(widths)
    keep = widths <= np.median(widths) + 1
    return float(np.median(np.asarray(centres)[keep]))


def _stroke_level(bright: np.ndarray, cols: np.ndarray, y: float, half: float) -> float:
    """Median over ``cols`` of the darkness-weighted row centre of a horizontal stroke near
    ``y`` (rows within ``half`` px) of the image's brightest channel ``[H, W]``."""
    h, w = bright.shape
    cols = cols[(cols >= 0) & (cols < w)]
    r0, r1 = int(np.floor(y - half)), int(np.ceil(y + half))
    if len(cols) == 0 or r0 < 0 or r1 >= h:
        return float("nan")
    rows = np.arange(r0, r1 + 1)
    paper = float(np.percentile(bright[max(0, r0 - 8) : r1 + 9][:, cols], 95))
    dark = np.clip(1.0 - bright[r0 : r1 + 1][:, cols] / max(paper, 1e-3), 0.0, 1.0)
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


@dataclass
class TimeAxis:
    """Where a row's samples lie: ``x(t) = x0 + t * px_per_s`` for ``0 <= t < seconds``.

    ``source`` says where the scale came from (``"grid"`` at the nominal speed, or
    ``"length"``: the row's own length when there is no grid); ``anchor`` which end(s) placed
    the row (``both``: the midpoint of two free ends); ``ratio`` the row's drawn length over
    ``page_seconds`` at the grid's scale (over 1: ink beyond the trace at one end or the other)."""

    x0: float
    px_per_s: float
    seconds: float
    source: str
    anchor: str
    ratio: float = 1.0

    def x(self, t: np.ndarray) -> np.ndarray:
        return self.x0 + t * self.px_per_s


def row_ends(row, pen: Pen, width: int, px_per_s: float = 0.0
             ) -> tuple[float, float, bool, bool]:  # fmt: skip
    """x of the row's first and last sample, and whether each end is trustworthy.

    A free end overshoots by the pen's half width; an end joined to a pulse lies
    :data:`JOINED_LEAD_S` (at ``px_per_s``) inside its edge; an end at the image border may be
    cut off (not trusted)."""
    over = max(0.0, 0.5 * pen.width - 0.5)
    lead = JOINED_LEAD_S * px_per_s
    p = row.pulse
    if p is not None and p.joined and p.side == "start":
        x_first = p.edge - lead
    else:
        x_first = row.x_start + over
    if p is not None and p.joined and p.side == "end":
        x_last = p.edge + lead
    else:
        x_last = row.x_end - over
    margin = 2
    return x_first, x_last, row.x_start > margin, row.x_end < width - 1 - margin


def row_time_axis(row, pen: Pen, width: int, grid_px_per_s: float | None,
                  page_seconds: float, fs: float) -> tuple[TimeAxis, str | None]:  # fmt: skip
    """The time axis of one row (see the module docstring), and a warning if it is assumed.

    Args:
        row: a :class:`~digitizer.layout.Row`.
        width: the rectified image's width (an end at its border may be cut off).
        grid_px_per_s: px per second from the grid at the nominal paper speed (``None``: no
            grid was found).
        page_seconds: time shown by one full row; ``fs``: the output rate (the last sample is
            drawn at ``page_seconds - 1 / fs``).
    """
    drawn = page_seconds - 1.0 / fs
    grid_ok = grid_px_per_s is not None and np.isfinite(grid_px_per_s)
    scale = grid_px_per_s if grid_ok else (row.x_end - row.x_start) / drawn
    x_first, x_last, ok_first, ok_last = row_ends(row, pen, width, scale)
    span = x_last - x_first
    length_px_per_s = span / drawn if span > 0 else float("nan")
    p = row.pulse
    anchor = "both"
    if p is not None and p.joined:
        anchor = p.side  # that end is exact
    elif not ok_first and ok_last:
        anchor = "end"  # cut at the left border
    elif ok_first and not ok_last:
        anchor = "start"
    if not grid_ok:
        return TimeAxis(x_first, length_px_per_s, page_seconds, "length", "both"), None
    ratio = length_px_per_s / grid_px_per_s
    note = None
    seconds = page_seconds
    false_join = (
        p is not None and p.joined and ratio > 1 + PLACE_TOL
        and (ok_last if p.side == "start" else ok_first)
    )  # fmt: skip
    if false_join:
        # longer than the grid allows from the pulse edge: the trace did not run out of the
        # pulse, ink bridged the printer's gap (blur, a crease); the free far end places it
        anchor = "end" if p.side == "start" else "start"
    elif anchor == "both" and p is not None and abs(ratio - 1) > PLACE_TOL:
        # the two free ends disagree with the grid by more than the pen can explain: one of
        # them lost or gained ink (a trace start hidden under a grid line as dark as it, a
        # label); the end beside the pulse, which the printer set at a fixed place, is kept
        anchor = p.side
    if abs(ratio - 1) > TIME_TOL and not false_join:
        # not page_seconds long at the nominal speed: another duration, or cut off by the image
        # border (then its panels keep their page_seconds windows)
        anchor = "end" if anchor == "end" else "start"
        if ok_first and ok_last:
            seconds = span / grid_px_per_s + 1.0 / fs
        note = (
            f"row at y={row.baseline:.0f} is {span / grid_px_per_s:.2f} s long at the grid's "
            f"scale, not {page_seconds:g} s; timing from the grid, anchored at its {anchor}"
        )
    # the grid's scale (measured over the whole page) with the row placed by its exact end(s):
    # a joined pulse edge, else both free ends through their midpoint (equal pen overshoot)
    shown = seconds - 1.0 / fs
    if anchor == "start":
        x0 = x_first
    elif anchor == "end":
        x0 = x_last - shown * grid_px_per_s
    else:
        x0 = 0.5 * (x_first + x_last) - 0.5 * shown * grid_px_per_s
    return TimeAxis(x0, grid_px_per_s, seconds, "grid", anchor, float(ratio)), note


PANEL_GAP_MM = 0.3  # a break in the trace at least this long may separate two panels
PANEL_LENGTH_TOL = (0.5, 0.008)  # a panel's drawn length matches within max(mm, fraction)
PANEL_SHORT_MM = 2.0  # ... or is at most this much shorter (ink lost at one end)


def panel_spans(trace: RowTrace, x_lo: int, x_hi: int, k: int, panel_px: float, ppm: float
                ) -> list[tuple[int, int, bool]] | None:  # fmt: skip
    """The ``k`` panels of a row whose printer set them apart (a gap, a lead label between
    them), as ``[(first, last, exact)]`` trace columns, left to right (``exact``: both ends
    match the length); ``None`` if the row does not show them.

    A panel is a stretch of trace between two breaks (or the row's ends) whose drawn length is
    ``panel_px`` (its share of the row's time at the grid's scale) within
    :data:`PANEL_LENGTH_TOL`; what lies between panels (labels, separators, blank paper) is not
    signal. The best matching stretches are taken first, then ones up to
    :data:`PANEL_SHORT_MM` short (not exact); overlapping ones are left out.
    """
    cols = np.flatnonzero(np.isfinite(trace.y[x_lo : x_hi + 1])) + x_lo
    if k < 1 or len(cols) < 2 or not np.isfinite(panel_px) or panel_px <= 0:
        return None
    breaks = np.flatnonzero(np.diff(cols) > max(2.0, PANEL_GAP_MM * ppm))
    starts = np.r_[cols[0], cols[breaks + 1]]
    ends = np.r_[cols[breaks], cols[-1]]
    tol = max(PANEL_LENGTH_TOL[0] * ppm, PANEL_LENGTH_TOL[1] * panel_px)
    # every stretch of about a panel's length, best matches first; overlapping ones are not
    # both panels (a label's start can pair with a break late in the next panel)
    length = ends[None, :] - starts[:, None]
    err = np.abs(length - panel_px)
    # then stretches that lost some ink at one end (a label's last letter over the trace's
    # first millimetre), up to PANEL_SHORT_MM short: placed by their midpoint
    short = (length < panel_px - tol) & (length >= panel_px - PANEL_SHORT_MM * ppm)
    err = np.where(err <= tol, err, np.where(short, err + 1e6, np.inf))
    i, j = np.nonzero(np.isfinite(err))
    spans: list[tuple[int, int, bool]] = []
    for n in np.argsort(err[i, j], kind="stable"):
        a, b = int(starts[i[n]]), int(ends[j[n]])
        if all(b < s or a > e for s, e, _ in spans):
            spans.append((a, b, bool(err[i[n], j[n]] <= tol)))
    spans.sort()
    return spans if len(spans) == k else None
