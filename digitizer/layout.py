"""Layout and leads: trace rows, calibration pulses, the layout and the lead of every panel.

Works on the rectified trace probability map. Rows are the peaks of a row profile built from
trace-like connected components (wider than text); their number picks the layout (4 rows:
3x4 with rhythm II; 6: 3x4 with three rhythm strips or 6x2; 12: 12x1; 3: 3x4 without rhythm).
6-row pages are told apart by content: on a 3x4_3r page the first rhythm strip repeats lead II
of the second row's first panel (same time window), on a 6x2 page that row holds aVR.

Each row is tracked by :mod:`digitizer.vectorize`. A calibration pulse (a flat-topped step of
~1 mV, separated from the trace by a small gap, at the row's left end) gives the baseline (its
foot) and the gain (its height) when present; otherwise the baseline is the row's median level
and the gain the nominal 10 mm/mV on the grid's scale.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import find_peaks

from ecgsynth.layout import LAYOUTS, LEADS

from .calibration import Pulse, find_pulse_at, runs_on, tall_strokes, trace_after_pulse
from .vectorize import RowTrace, track_row

MIN_ROW_SPACING_MM = 8.0
TRACE_MIN_WIDTH_MM = 12.0  # connected components narrower than this are text, not traces
STRAY_WIDTH_MM = 12.0  # a stretch this short, set off from the row's trace, is not trace
PULSE_SEARCH_MM = 20.0  # pulses are looked for this far into either end of a row
ROW_MM = 250.0  # a standard layout's row: 10 s at 25 mm/s
SHORT_ROW_FRACTION = 0.6  # an outer row spanning less than this of the others' span is text
JUMP_MM = 0.5  # a step between neighbouring columns of a tracked row this tall is a jump
JUMPY_SHARE = 0.25  # a row that jumps in more of its columns (and twice as often as the
# calmer rows) follows texture, not a pen: shadow mottling, a crumpled grid, handwriting


@dataclass
class Row:
    """One printed row: its trace, extent and calibration.

    Attributes:
        baseline: y (px) of 0 mV.
        trace: the tracked trace.
        x_start, x_end: first and last trace column (px, the pulse excluded).
        pulse: the row's calibration pulse, if found.
    """

    baseline: float
    trace: RowTrace
    x_start: int
    x_end: int
    pulse: Pulse | None = None


@dataclass
class PageLayout:
    """The rows of a page and what they show.

    ``leads[r]`` lists the leads of row ``r`` left to right (one entry for a rhythm strip).
    """

    name: str
    rows: list[Row]
    leads: list[tuple[str, ...]]
    notes: list[str] = field(default_factory=list)
    kind: str = "standard"  # standard | near (rows missing) | closest (matches no layout)


def trace_components(binary: np.ndarray, ppm: float, join: int = 0) -> np.ndarray:
    """Keep the connected components of ``binary`` ``[H, W]`` wider than a word of text, once
    pieces up to ``join`` px apart along a pixel row are joined."""
    ink = binary.astype(np.uint8)
    if join > 1:
        ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((1, join), np.uint8))
    joined = cv2.dilate(ink, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    wide = np.zeros(n, dtype=bool)
    wide[1:] = stats[1:, cv2.CC_STAT_WIDTH] >= TRACE_MIN_WIDTH_MM * ppm
    return wide[labels] & (binary > 0)


def without_specks(prob: np.ndarray, ppm: float, size_mm: float = 0.6) -> np.ndarray:
    """``prob`` ``[H, W]`` with the ink blobs smaller than ``size_mm`` in both directions set
    to 0: grid-line crossings and noise, which a tracker would hop along like a dotted line."""
    binary = (prob > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return prob
    limit = size_mm * ppm
    speck = np.zeros(n, dtype=bool)
    speck[1:] = (stats[1:, cv2.CC_STAT_WIDTH] < limit) & (stats[1:, cv2.CC_STAT_HEIGHT] < limit)
    if not speck.any():
        return prob
    out = prob.copy()
    out[speck[labels]] = 0.0
    return out


def find_rows(prob: np.ndarray, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Baselines (y px) of the trace rows and their profile strengths, top to bottom.

    A thin trace whose baseline lies along a grid line as dark as itself keeps only its waves
    once the line is taken out: pieces narrower than text that no row profile shows. Where such
    a row would sit in a gap inside the row sequence (over 0.6 row pitches from every row
    found), it is looked for again with pieces up to 1 mm apart joined."""
    binary = prob > 0.5
    rows, strength = _profile_peaks(trace_components(binary, ppm), ppm)
    pitch = float(np.median(np.diff(rows))) if len(rows) >= 2 else 0.0
    if len(rows) >= 2 and np.diff(rows).max() > 1.2 * pitch:  # a gap a row could sit in
        more, more_strength = _profile_peaks(trace_components(binary, ppm, round(ppm)), ppm)
        far = np.array([rows[0] < y < rows[-1] and np.min(np.abs(rows - y)) > 0.6 * pitch
                        for y in more], dtype=bool)  # fmt: skip
        if far.any():
            rows = np.concatenate([rows, more[far]])
            strength = np.concatenate([strength, more_strength[far]])
            order = np.argsort(rows)
            rows, strength = rows[order], strength[order]
    return rows, strength


def _profile_peaks(traces: np.ndarray, ppm: float) -> tuple[np.ndarray, np.ndarray]:
    """Peaks (y px, strength) of the row profile of ``traces`` ``bool [H, W]``."""
    profile = traces.mean(axis=1).astype(np.float64)
    profile = cv2.GaussianBlur(profile[None, :], (0, 0), sigmaX=max(1.0, 0.8 * ppm)).ravel()
    if profile.max() <= 0:
        return np.zeros(0), np.zeros(0)
    peaks, props = find_peaks(
        profile, height=0.2 * profile.max(), distance=max(2, int(MIN_ROW_SPACING_MM * ppm))
    )
    return peaks.astype(np.float64), props["peak_heights"]


def _stray_stretch(trace: RowTrace, x_lo: int, x_hi: int, ppm: float,
                   side: str) -> int | None:  # fmt: skip
    """Inner end of a short stretch (under 12 mm) that starts (``side="start"``) or ends the
    row and is set off from the rest by a gap of at least 1 mm: a lead label beside the trace,
    or a calibration pulse too faint to measure. It is not part of the trace, unless it
    :func:`continues <_continues>` it."""
    cols = np.flatnonzero(np.isfinite(trace.y[x_lo : x_hi + 1])) + x_lo
    breaks = np.flatnonzero(np.diff(cols) > ppm)
    if len(breaks) == 0:
        return None
    if side == "start":  # the piece and the rest, each from the gap outwards
        piece, rest = cols[breaks[0] :: -1], cols[breaks[0] + 1 :]
    else:
        piece, rest = cols[breaks[-1] + 1 :], cols[breaks[-1] :: -1]
    width_mm = (abs(int(piece[-1]) - int(piece[0])) + 1) / ppm
    if width_mm > STRAY_WIDTH_MM or _continues(trace, piece, rest[: max(2, int(ppm))], ppm):
        return None
    return int(piece[0])


def _continues(trace: RowTrace, piece: np.ndarray, beyond: np.ndarray, ppm: float) -> bool:
    """Whether the stretch at columns ``piece`` is the row's own trace, cut off by a gap in
    the ink (a flat stretch lying along a grid line as dark as itself, removed with it): it is
    as thin as a pen and level with the trace across the gap (``beyond``: the first columns
    there), with a gap of at most 5 mm. A label's glyphs are taller; a faint pulse's top lies
    10 mm off the baseline; a page edge or border stroke lies farther out."""
    near = abs(int(beyond[0]) - int(piece[0])) <= 5.0 * ppm
    thin = np.nanmax(trace.bottom[piece] - trace.top[piece]) + 1 <= 0.75 * ppm
    level = abs(np.nanmedian(trace.y[piece]) - np.nanmedian(trace.y[beyond])) <= 0.5 * ppm
    return bool(near and thin and level)


def _row_extent(trace: RowTrace, min_run: int, ppm: float) -> tuple[int, int] | None:
    """First and last trace column, leaving out a straight vertical stroke at either end (a
    page border or separator line the path ran into: a few columns whose runs are taller than
    3 mm and share their top and bottom). A QRS at the row's end is drawn over more columns
    with changing extents, and stays."""
    cols = np.flatnonzero(np.isfinite(trace.y))
    if len(cols) < min_run:
        return None
    tall = (trace.bottom[cols] - trace.top[cols]) > 3.0 * ppm
    edge = max(2, int(0.4 * ppm))
    lo, hi = 0, len(cols) - 1
    while lo < min(edge, hi) and tall[lo]:
        lo += 1
    while hi > max(len(cols) - 1 - edge, lo) and tall[hi]:
        hi -= 1
    if lo and not _straight(trace, cols[:lo]):
        lo = 0
    if hi < len(cols) - 1 and not _straight(trace, cols[hi + 1 :]):
        hi = len(cols) - 1
    return int(cols[lo]), int(cols[hi])


def _straight(trace: RowTrace, cols: np.ndarray) -> bool:
    """Whether the runs of ``cols`` form one straight vertical line (same top and bottom)."""
    return bool(np.ptp(trace.top[cols]) <= 2 and np.ptp(trace.bottom[cols]) <= 2)


def build_rows(prob: np.ndarray, ppm: float, baselines: np.ndarray) -> list[Row]:
    """Track every row (search band reaching half-way into the neighbours' bands and beyond)."""
    return _build_rows(prob, ppm, baselines)[0]


def _build_rows(prob: np.ndarray, ppm: float, baselines: np.ndarray) -> tuple[list[Row], int]:
    """:func:`build_rows` and how many candidates followed another row's trace. Tall waves
    repeated along a row (T waves of a fast rate) make a row candidate of their own, some 8 mm
    off the real baseline; it follows the real row's trace and is dropped, but the band it
    left the real row (0.9 of their spacing) cut those waves off, and the row's ends with them:
    the rows whose band changed are tracked again."""
    clean = without_specks(prob, ppm)
    halves = _band_halves(baselines, ppm)
    tracked = _track_rows(prob, clean, ppm, baselines, halves)
    rows = _drop_duplicates(tracked)
    duplicates = len(tracked) - len(rows)
    if duplicates:
        kept = np.array([r.baseline for r in rows])  # a subset of the sorted baselines
        new = _band_halves(kept, ppm)
        redo = new != halves[np.searchsorted(baselines, kept)]
        again = {r.baseline: r for r in _track_rows(prob, clean, ppm, kept[redo], new[redo])}
        rows = _drop_duplicates([again.get(r.baseline, r) for r in rows])
    return rows, duplicates


def _band_halves(baselines: np.ndarray, ppm: float) -> np.ndarray:
    """Half height (px) of each row's search band: 0.9 of the spacing to its nearer neighbour
    (40 mm for a lone row)."""
    if len(baselines) < 2:
        return np.full(len(baselines), 0.9 * 40.0 * ppm)
    spacing = np.diff(baselines)
    return 0.9 * np.minimum(np.r_[np.inf, spacing], np.r_[spacing, np.inf])


def _track_rows(prob: np.ndarray, clean: np.ndarray, ppm: float, baselines: np.ndarray,
                halves: np.ndarray) -> list[Row]:  # fmt: skip
    """One :class:`Row` per baseline whose trace and extent were found (:func:`build_rows`),
    tracked in ``clean`` (``prob`` without specks) within ``halves`` (px) of it."""
    rows: list[Row] = []
    for b, half in zip(baselines, halves):
        trace = track_row(clean, b, half)
        ext = _row_extent(trace, int(5 * ppm), ppm)
        if ext is None:
            continue
        x_start, x_end = ext
        # pulses are looked for on the untrimmed ink: their strokes are straight and vertical
        cols = np.flatnonzero(np.isfinite(trace.y))
        first, last = int(cols[0]), int(cols[-1])
        reach = int(PULSE_SEARCH_MM * ppm)
        # at either end, then past up to two stray marks before (after) it: the edge of the
        # dark background beside a photographed page
        breaks = np.flatnonzero(np.diff(cols) > 1)
        ends = [(first, "start", False), (last, "end", False)]
        ends += [
            (int(cols[i + 1]), "start", False) for i in breaks[:2] if cols[i + 1] - first < reach
        ]
        ends += [(int(cols[i]), "end", False) for i in breaks[::-1][:2] if last - cols[i] < reach]
        # and just before (after) each tall stroke within reach: a pulse that a scribble, a
        # stain's edge or the page border runs into without a gap (if what runs into it is
        # not the trace itself)
        tall = tall_strokes(trace.top, trace.bottom, ppm)
        ends += [(int(a) - 1, "start", True) for a, _ in tall if first < a < first + reach]
        ends += [(int(b) + 1, "end", True) for _, b in tall[::-1] if last - reach < b < last]
        pulse = None
        for at, side, inside in ends:
            lo, hi = (
                (at, min(last, at + reach)) if side == "start" else (max(first, at - reach), at)
            )
            pulse = find_pulse_at(trace, lo, hi, ppm, side)
            if pulse is not None and inside and _trace_beyond(trace, pulse, first, last, ppm):
                pulse = None
            if pulse is not None:
                break
        if pulse is None:
            pulse = _pulse_in_bridged_ink(prob, b, first, last, ppm)
            if pulse is not None:  # bridging may have joined a label to it: ask the row's path
                pulse.joined = _runs_out_of(trace, pulse, ppm)
        if pulse is not None:
            inner = trace_after_pulse(trace, pulse)
            if inner is None:
                continue
            x_start, x_end = (inner, x_end) if pulse.side == "start" else (x_start, inner)
        for _ in range(2):  # labels and faint pulses set off by a gap: not the trace
            lead = _stray_stretch(trace, x_start, x_end, ppm, "start")
            if lead is not None and (pulse is None or pulse.side != "start"):
                x_start = int(lead + 1 + np.flatnonzero(np.isfinite(trace.y[lead + 1 :]))[0])
            tail = _stray_stretch(trace, x_start, x_end, ppm, "end")
            if tail is not None and (pulse is None or pulse.side != "end"):
                x_end = int(np.flatnonzero(np.isfinite(trace.y[:tail]))[-1])
        if x_end - x_start < 5 * ppm:
            continue
        rows.append(Row(float(b), trace, x_start, x_end, pulse))
    return rows


PULSE_BAND_MM = (22.0, 4.0)  # a pulse rises at most this far above its row's baseline, ...
# ... and its foot sits at most this far below it
BRIDGED_GAIN_TOL = 0.05  # bridged ink may lose a stroke's faint end: its pulse must be 1 mV closely
BRIDGED_INKED = 0.6  # ... and most of its outline clear ink (_inked_outline)


def _pulse_in_bridged_ink(prob: np.ndarray, baseline: float, first: int, last: int,
                          ppm: float) -> Pulse | None:  # fmt: skip
    """The row's pulse at either end when the row's own path missed it: its strokes broken
    (a crease, faint ink) or leaning over two columns, or the path drawn off to text or a
    neighbour's pulse. The ink of the row's first (last) :data:`PULSE_SEARCH_MM` (at
    probability > 0.5, then > 0.25 with faint ink) is bridged (one column either side,
    vertical gaps up to 1 mm closed) and tracked again in a band reaching
    :data:`PULSE_BAND_MM` above and below the baseline, for one flat-topped step of 1 mV
    within :data:`BRIDGED_GAIN_TOL` (:func:`find_pulse_at`), from the end of the ink or from
    just before a tall stroke (clutter before the pulse), whose outline is mostly clear ink
    (:data:`BRIDGED_INKED`). ``prob`` ``[H, W]``, before the specks go (they hold the faint
    ends of the strokes)."""
    h, w = prob.shape
    y0 = int(max(0, baseline - PULSE_BAND_MM[0] * ppm))
    y1 = int(min(h, baseline + PULSE_BAND_MM[1] * ppm + 1))
    reach = int(PULSE_SEARCH_MM * ppm)
    close = np.ones((max(3, int(round(1.0 * ppm)) | 1), 1), np.uint8)
    ends = (
        ("start", max(0, first - 2), min(w, first + reach)),
        ("end", max(0, last - reach), min(w, last + 3)),
    )
    for (side, x0, x1), level in itertools.product(ends, (0.5, 0.25)):
        ink = (prob[y0:y1, x0:x1] > level).astype(np.uint8)
        ink = cv2.morphologyEx(cv2.dilate(ink, np.ones((1, 3), np.uint8)), cv2.MORPH_CLOSE, close)
        trace = track_row(ink.astype(np.float32), baseline - y0, float(y1 - y0))
        cols = np.flatnonzero(np.isfinite(trace.y))
        if len(cols) < 3:
            continue
        tall = tall_strokes(trace.top, trace.bottom, ppm)
        if side == "start":
            starts = [(int(cols[0]), x1 - x0 - 1)] + [(int(a) - 1, x1 - x0 - 1) for a, _ in tall]
        else:
            starts = [(0, int(cols[-1]))] + [(0, int(b) + 1) for _, b in tall[::-1]]
        for lo, hi in starts:
            pulse = find_pulse_at(trace, max(0, lo), min(x1 - x0 - 1, hi), ppm, side,
                                  BRIDGED_GAIN_TOL)  # fmt: skip
            if pulse is None or _trace_beyond(trace, pulse, int(cols[0]), int(cols[-1]), ppm):
                continue
            pulse = pulse.shifted(x0, y0)
            if _inked_outline(prob, pulse) >= BRIDGED_INKED:
                return pulse
    return None


def _runs_out_of(trace: RowTrace, pulse: Pulse, ppm: float) -> bool:
    """Whether the row's own path runs straight out of the pulse's stroke that faces the trace
    (:func:`~digitizer.calibration.runs_on`)."""
    (a0, _), (_, b1) = pulse.strokes
    beyond = trace.top[b1 + 1 :] if pulse.side == "start" else trace.top[:a0][::-1]
    return runs_on(beyond, ppm)[0]


def _inked_outline(prob: np.ndarray, pulse: Pulse) -> float:
    """The smallest share, over the pulse's two strokes and its top, of the pixels along it
    with clear ink (> 0.5) within a pixel of it: a pulse is drawn as firmly as its trace, the
    outline that faint grid remnants or mottled paper make up once bridged is not."""
    (a0, a1), (b0, b1) = pulse.strokes
    top, foot = int(round(pulse.top)), int(round(pulse.foot))
    ink = prob > 0.5
    shares = [ink[top:foot + 1, max(0, c0 - 1) : c1 + 2].any(axis=1).mean()
              for c0, c1 in ((a0, a1), (b0, b1))]  # fmt: skip
    shares.append(ink[max(0, top - 1) : top + 2, a1 + 1 : b0].any(axis=0).mean())
    return float(min(shares)) if a1 + 1 < b0 and foot > top else 0.0


def _trace_beyond(trace: RowTrace, pulse: Pulse, first: int, last: int, ppm: float) -> bool:
    """Whether the row's path before a start pulse (after an end one) runs at the pulse's
    foot or top level (within 1 mm) in most of its columns: that is the trace itself, and the
    "pulse" two strokes of a complex (a notched QRS after a flat wave). What a stain's edge or
    a scribble leaves there wanders elsewhere."""
    y = trace.y[first : pulse.x0] if pulse.side == "start" else trace.y[pulse.x1 + 1 : last + 1]
    y = y[np.isfinite(y)]
    if len(y) < 2:
        return False
    near = np.minimum(np.abs(y - pulse.foot), np.abs(y - pulse.top)) <= ppm
    return bool(near.mean() > 0.5)


def _drop_duplicates(rows: list[Row]) -> list[Row]:
    """A row candidate between two real rows (tall complexes of a neighbour) ends up following
    the neighbour's trace: drop a row whose trace mostly coincides with an earlier one's."""
    kept: list[Row] = []
    for row in sorted(rows, key=lambda r: -np.isfinite(r.trace.y).sum()):
        ok = np.isfinite(row.trace.y)
        dup = any(np.mean(np.abs(row.trace.y[ok] - k.trace.y[ok]) < 2.0) > 0.5 for k in kept)
        if not dup:
            kept.append(row)
    return sorted(kept, key=lambda r: r.baseline)


def _row_values(row: Row) -> np.ndarray:
    return row.trace.y[row.x_start : row.x_end + 1]


def _same_signal(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two equally long column series (NaN-aware)."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _same_wave(a: np.ndarray, b: np.ndarray, n: int) -> float:
    """Best correlation of the first ``n`` columns of two rows' traces ``a``, ``b`` (y px, NaN
    where not followed), each less its slow drift (a running median over ``n / 5`` columns:
    baseline wander, and the residual tilt of a photographed page, differ between rows), over
    shifts up to ``n / 60`` columns (0.04 s for a 2.5-s panel: rows start a pixel or two
    apart). On a warped photo the raw traces of one lead printed twice correlated 0.63."""
    a, b = _less_drift(a, n // 5), _less_drift(b, n // 5)
    reach = max(1, n // 60)
    rs = [_same_signal(a[max(0, -s) : n + max(0, -s)], b[max(0, s) : n + max(0, s)])
          for s in range(-reach, reach + 1)]  # fmt: skip
    return max((r for r in rs if np.isfinite(r)), default=float("nan"))


def _less_drift(y: np.ndarray, width: int) -> np.ndarray:
    """``y`` ``[N]`` less its running median over ``width`` columns (gaps bridged linearly for
    the median only; NaN stays NaN)."""
    ok = np.isfinite(y)
    if ok.sum() < 2 or width < 3:
        return y
    x = np.arange(len(y))
    filled = np.interp(x, x[ok], y[ok])
    return np.where(ok, filled - median_filter(filled, size=width, mode="nearest"), np.nan)


def _leads_of(name: str) -> list[tuple[str, ...]]:
    short, rhythm = LAYOUTS[name]
    return [tuple(r) for r in short] + [(lead,) for lead in rhythm]


# row counts of the standard layouts (3 rows: 3x4 printed without a rhythm strip)
TEMPLATES: tuple[tuple[int, str], ...] = ((3, "3x4"), (4, "3x4"), (6, "6x2"), (12, "12x1"))


def match_layout(rows: list[Row]) -> tuple[str, list[tuple[str, ...]], list[str], str]:
    """Pick the layout for the tracked rows.

    Returns ``(name, leads per row, notes, kind)``; ``kind`` is ``standard`` (a standard row
    count), ``near`` (5 rows, or a standard count once rows with short traces are left out) or
    ``closest`` (the standard layout nearest in row count; the rows with the longest traces
    are named, the others get no lead). A page is never left without leads for its layout.
    """
    notes: list[str] = []
    n = len(rows)
    if n == 4:
        return "3x4", _leads_of("3x4"), notes, "standard"
    if n == 12:
        return "12x1", _leads_of("12x1"), notes, "standard"
    if n == 3:
        notes.append("3 rows: read as 3x4 without a rhythm strip")
        return "3x4", _leads_of("3x4")[:3], notes, "standard"
    if n == 6:  # 3x4_3r when the first rhythm strip (II) repeats row 2's first panel (II)
        quarter = max(1, (rows[1].x_end - rows[1].x_start) // 4)
        r = _same_wave(_row_values(rows[3]), _row_values(rows[1]), quarter)
        if np.isfinite(r) and r > 0.8:
            return "3x4_3r", _leads_of("3x4_3r"), notes, "standard"
        return "6x2", _leads_of("6x2"), notes, "standard"
    if n == 5:
        notes.append("5 rows: read as 3x4 with rhythm strips II and V1")
        return "3x4_3r", _leads_of("3x4_3r")[:5], notes, "near"
    if n == 0:
        return "none", [], notes, "closest"
    lengths = np.array([np.isfinite(_row_values(r)).sum() for r in rows], dtype=float)
    full = np.flatnonzero(lengths >= 0.6 * lengths.max())
    counts = [c for c, _ in TEMPLATES]
    if len(full) < n and len(full) in counts:
        name, leads, more, _ = match_layout([rows[i] for i in full])
        out: list[tuple[str, ...]] = [() for _ in rows]
        for i, lead in zip(full, leads):
            out[i] = lead
        notes.append(
            f"{n} trace rows; the {len(full)} with full-length traces read as {name}, "
            f"{n - len(full)} short ones left out"
        )
        return name, out, notes + more, "near"
    count, name = min(TEMPLATES, key=lambda cn: (abs(cn[0] - n), cn[0]))
    slots = _slots(rows)
    if n < count and slots is not None and slots[-1] < count:
        # evenly spaced rows with a gap where a row was lost (a faint trace): each row keeps
        # the lead of its place on the page
        template = _leads_of(name)[:count]
        missing = sorted(set(range(count)) - set(slots))
        notes.append(
            f"{n} evenly spaced trace rows: read as {name} with row(s) "
            f"{', '.join(str(m + 1) for m in missing)} not found"
        )
        return name, [template[s] for s in slots], notes, "near"
    keep = np.sort(np.argsort(-lengths, kind="stable")[:count])
    template = _leads_of(name)[:count]
    out = [() for _ in rows]
    for i, lead in zip(keep, template):
        out[i] = lead
    notes.append(
        f"{n} trace rows match no standard layout; read as the closest, {name} "
        f"({min(count, n)} rows named, confidence lowered)"
    )
    return name, out, notes, "closest"


def _slots(rows: list[Row]) -> list[int] | None:
    """Each row's place on a page of evenly spaced rows, counted from the first one in units
    of the most common spacing; ``None`` unless every row sits within 15 % of a place and no
    two share one."""
    b = np.array([r.baseline for r in rows], dtype=float)
    if len(b) < 3:
        return None
    pitch = float(np.median(np.diff(b)))
    if pitch <= 0:
        return None
    pos = (b - b[0]) / pitch
    slots = np.round(pos).astype(int)
    if np.any(np.abs(pos - slots) > 0.15) or len(set(slots.tolist())) < len(slots):
        return None
    return slots.tolist()


def detect_layout(prob: np.ndarray, ppm: float) -> PageLayout:
    """Rows, pulses and lead names of a rectified trace probability map ``[H, W]``."""
    baselines, strength = find_rows(prob, ppm)
    candidates = len(baselines)
    notes: list[str] = []
    if candidates > 12:
        keep = np.sort(np.argsort(strength)[-12:])
        notes.append(f"{candidates} row candidates; kept the 12 strongest")
        baselines = baselines[keep]
    rows, duplicates = _build_rows(prob, ppm, baselines)
    if not rows:
        return PageLayout("none", [], [], notes + ["no ECG trace found"])
    rows, jumpy = _drop_jumpy_rows(rows, ppm)
    rows, short = _drop_outer_short_rows(rows, ppm)
    rows, off_pitch = _drop_outer_off_pitch_rows(rows)
    notes += jumpy + short + off_pitch + _agree_on_extent(rows, ppm)
    name, leads, more, kind = match_layout(rows)
    if candidates - duplicates - len(jumpy) - len(short) - len(off_pitch) > len(rows) + 2:
        # rows were picked from many candidates: clutter read as rows (a candidate that
        # followed a real row's trace is that row's tall waves, not clutter)
        kind = "closest"
    return PageLayout(name, rows, leads, notes + more, kind)


def jump_share(row: Row, ppm: float) -> float:
    """The share of neighbouring column pairs of ``row``'s tracked trace whose heights differ by
    over :data:`JUMP_MM`. A pen's trace is level but for its QRS strokes (a few % of columns,
    ~15 % at a fast rate); a path through texture jumps in a third of them."""
    y = row.trace.y[row.x_start : row.x_end + 1]
    ok = np.isfinite(y[1:]) & np.isfinite(y[:-1])
    if ok.sum() < 10:
        return 0.0
    return float(np.mean(np.abs(np.diff(y))[ok] > JUMP_MM * ppm))


def _drop_jumpy_rows(rows: list[Row], ppm: float) -> tuple[list[Row], list[str]]:
    """Leave out rows that jump in over :data:`JUMPY_SHARE` of their columns and twice as often
    as the calmer quarter of the page's rows: the tracker followed shadow mottling, a crumpled
    grid or handwriting, not a pen. At least three rows are kept."""
    if len(rows) <= 3:
        return rows, []
    share = np.array([jump_share(r, ppm) for r in rows])
    limit = max(JUMPY_SHARE, 2.0 * float(np.quantile(share, 0.25)))
    order = np.argsort(-share)[: len(rows) - 3]  # the jumpiest first, three rows stay
    drop = {int(i) for i in order if share[i] > limit}
    notes = [
        f"row at y={rows[i].baseline:.0f} jumps in {share[i]:.0%} of its columns: texture, not "
        "a trace row (left out)"
        for i in sorted(drop)
    ]
    return [r for i, r in enumerate(rows) if i not in drop], notes


def _drop_outer_short_rows(rows: list[Row], ppm: float) -> tuple[list[Row], list[str]]:
    """Leave out the top or bottom row while its trace is followed over under
    :data:`SHORT_ROW_FRACTION` of the columns the other rows cover (median): a line of header or
    footer text (patient data, speed and filter settings) read as a row. Every row of a
    standard printout spans the same time; a short row between full ones is kept (the layout
    matching decides about it). At least three rows are kept."""
    notes: list[str] = []
    while len(rows) > 3:
        # the columns the trace was followed in: a line of words leaves gaps between them
        spans = np.array([np.isfinite(r.trace.y[r.x_start : r.x_end + 1]).sum() for r in rows],
                         dtype=float)  # fmt: skip
        drop = None
        for i in (0, len(rows) - 1):
            others = np.delete(spans, i)
            if spans[i] < SHORT_ROW_FRACTION * np.median(others):
                drop = i if drop is None or spans[i] < spans[drop] else drop
        if drop is None:
            break
        r = rows[drop]
        notes.append(
            f"row at y={r.baseline:.0f} spans {spans[drop] / ppm:.0f} mm, the others "
            f"{np.median(np.delete(spans, drop)) / ppm:.0f} mm: text, not a trace row (left out)"
        )
        rows = rows[:drop] + rows[drop + 1 :]
    return rows, notes


def _drop_outer_off_pitch_rows(rows: list[Row], factor: float = 1.8) -> tuple[list[Row], list[str]]:
    """Leave out the top or bottom row while it lies more than ``factor`` times the others'
    spacing (median) from its neighbour: the rows of a printout are evenly spaced, and a line
    of header text or the page's edge far above or below them is not one of them. At least
    three rows are kept."""
    notes: list[str] = []
    while len(rows) > 3:
        gaps = np.diff([r.baseline for r in rows])
        top, bottom = gaps[0] / np.median(gaps[1:]), gaps[-1] / np.median(gaps[:-1])
        drop, ratio = (0, top) if top >= bottom else (len(rows) - 1, bottom)
        if ratio <= factor:
            break
        notes.append(
            f"row at y={rows[drop].baseline:.0f} lies {ratio:.1f} row spacings from the next: "
            "text or an edge, not a trace row (left out)"
        )
        rows = rows[:drop] + rows[drop + 1 :]
    return rows, notes


def _agree_on_extent(rows: list[Row], ppm: float, tol_mm: float = 1.5,
                     row_mm: float = ROW_MM) -> list[str]:  # fmt: skip
    """All rows of a standard printout share one time axis: a row whose start or end strays
    from the axis is reset to it. The axis is the start and end, each shared by at least two
    rows, that span ``row_mm`` within 1 % (the most shared such pair); failing that, what most
    rows agree on, a tie going to the shorter extent (the extra piece is the stray one: a
    pulse, a label, a border line followed as if it were trace)."""
    if len(rows) < 2:
        return []
    tol = tol_mm * ppm
    shared, voted = {}, {}
    for attr, prefer in (("x_start", max), ("x_end", min)):
        values = [getattr(r, attr) for r in rows]
        support = {v: sum(abs(v - w) <= tol for w in values) for v in values}
        shared[attr] = {v: n for v, n in support.items() if n >= 2}
        best = max(shared[attr].values(), default=0)
        voted[attr] = prefer((v for v, n in shared[attr].items() if n == best), default=None)
    full = [(-(shared["x_start"][s] + shared["x_end"][e]), abs(e - s - row_mm * ppm), s, e)
            for s in shared["x_start"] for e in shared["x_end"]
            if abs(e - s - row_mm * ppm) <= 0.01 * row_mm * ppm]  # fmt: skip
    start, end = min(full)[2:] if full else (voted["x_start"], voted["x_end"])
    notes = []
    for attr, agreed in (("x_start", start), ("x_end", end)):
        if agreed is None:
            continue
        for r in rows:
            if abs(getattr(r, attr) - agreed) > tol:
                notes.append(f"row at y={r.baseline:.0f}: {attr} {getattr(r, attr)} -> {agreed}")
                setattr(r, attr, agreed)
    return notes


__all__ = ["LEADS", "PageLayout", "Row", "detect_layout", "find_rows"]
