"""Vector ECG pages: drawing paths in page mm -> a calibrated 12-lead record, never rasterised.

    polylines --classify--> grid lattice (page scale check), calibration pulses, traces
              --rows--> traces grouped into rows (top to bottom) by their level
              --leads--> lead per trace: printed labels near it, else the layout's table
              --calibrate--> t = (x - first point of the row) / speed, mV = (foot - y) / gain

Classification (all in page mm, ``y`` down):

- **grid / separators**: straight axis-aligned segments. Their positions form a lattice; its
  period (1 mm, or 5 mm when only major lines are drawn) checks the page's physical scale, and
  rescales it when the page was printed scaled (a "fit to page" export).
- **calibration pulse**: an open polyline of axis-aligned segments, at most 15 mm wide and
  2-30 mm tall, that starts and ends at its foot (the 0 mV level); its height is 1 mV. A trace
  that begins with such a prefix is split into the pulse and the trace.
- **trace**: an open, x-monotone polyline (x never goes back) at least :data:`MIN_TRACE_S` long.

Time runs left to right at ``paper_speed`` (printed ``NN mm/s`` text overrides it); the time
origin of a row is its first trace point, so a 3x4 row's panels show consecutive windows (a
row of ``k`` separate panels of ``page_seconds / k`` each shows the layout's clinical windows,
even when the printer leaves gaps between columns). The
amplitude is ``(foot - y) / height`` with the row's pulse, else ``gain`` (or printed
``NN mm/mV``) around the row's median level (its panels share one baseline). The result is
exact to the PDF's coordinate precision, up to the interpolation between drawn vertices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ecgsynth.layout import LAYOUTS, LEADS
from ecgsynth.sources import canonical_lead

from .confidence import Candidate, LeadReport, amplitude_check, merge_panels
from .grid import GridEstimate
from .pdf import PageContent, Polyline
from .pipeline import Digitized

AXIS_TOL_MM = 1e-3  # a segment this close to horizontal/vertical is axis-aligned
MIN_TRACE_S = 0.8  # shorter x-monotone polylines are not traces
ROW_TOL_MM = 8.0  # traces whose levels differ by less share a row (if they do not overlap)
OVERLAP_TOL_MM = 1.0  # traces of one row may overlap in x by this much
PULSE_WIDTH_MAX_MM = 15.0
PULSE_HEIGHT_MM = (2.0, 30.0)
LABEL_DIST_MM = 15.0  # lead labels sit at most this far above or below their row's level
LABEL_MATCH_MM = 3.0  # ... all at one offset, give or take this much
PULSE_REACH_MM = 40.0  # a pulse belongs to the row that starts (or ends) at most this far away
WINDOW_TOL = 0.15  # k traces in a row lasting page_seconds / k (this fraction) are its windows
LABEL_REACH_MM = 15.0  # ... and to the trace that starts at most this far right of it
SPEEDS_MM_S = (12.5, 25.0, 50.0)
GAINS_MM_MV = (2.5, 5.0, 10.0, 20.0, 40.0)


@dataclass
class Trace:
    """An x-monotone trace polyline: ``x``, ``y`` ``[N]`` in page mm."""

    x: np.ndarray
    y: np.ndarray
    gaps: list[tuple[float, float]] = field(default_factory=list)  # x ranges not drawn (clipped)

    def sample(self, xq: np.ndarray) -> np.ndarray:
        """``y`` at ``xq`` (linear between vertices), NaN inside :attr:`gaps`."""
        y = np.interp(xq, self.x, self.y)
        for a, b in self.gaps:
            y[(xq > a) & (xq < b)] = np.nan
        return y

    @property
    def x0(self) -> float:
        return float(self.x[0])

    @property
    def x1(self) -> float:
        return float(self.x[-1])

    def level(self) -> float:
        """The most common ``y`` along the trace, weighted by x length (the isoelectric level)."""
        return isoelectric_level(self.x, self.y)


@dataclass
class Pulse:
    """A calibration pulse: ``x0``..``x1`` and its foot (0 mV) and height (1 mV), page mm."""

    x0: float
    x1: float
    foot: float
    height: float


@dataclass
class Row:
    traces: list[Trace]
    level: float
    pulse: Pulse | None = None
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x centre, lead)

    @property
    def x_start(self) -> float:
        return self.traces[0].x0

    @property
    def y_range(self) -> tuple[float, float]:
        return (
            min(float(t.y.min()) for t in self.traces),
            max(float(t.y.max()) for t in self.traces),
        )


def isoelectric_level(x: np.ndarray, y: np.ndarray, step: float = 0.05) -> float:
    """Mode of ``y`` sampled uniformly along ``x`` (bins of ``step`` mm, lightly smoothed)."""
    if len(x) < 2 or x[-1] <= x[0]:
        return float(np.median(y))
    xs = np.arange(x[0], x[-1], step)
    ys = np.interp(xs, x, y)
    lo = ys.min()
    hist = np.bincount(np.round((ys - lo) / step).astype(np.int64)).astype(np.float64)
    hist = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    return float(lo + step * np.argmax(hist))


def resting_level(row: Row, step: float = 0.05) -> float:
    """The printed 0 mV level of a row without a pulse to tell it: the median of all its traces
    sampled every ``step`` mm (the panels of a row share one baseline, and a cart's baseline
    restoration centres each lead on it)."""
    ys = [tr.sample(np.arange(tr.x0, tr.x1, step)) for tr in row.traces if tr.x1 > tr.x0]
    y = np.concatenate(ys) if ys else np.array([])
    return float(np.nanmedian(y)) if np.isfinite(y).any() else row.level


# --------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------


def _chain(polylines: list[Polyline]) -> list[Polyline]:
    """Join consecutive polylines where one ends exactly where the next starts (a trace drawn
    as many short paths), keeping each one's style."""
    out: list[Polyline] = []
    for p in polylines:
        prev = out[-1] if out else None
        if (
            prev is not None
            and not prev.closed
            and not p.closed
            and np.allclose(prev.points[-1], p.points[0], atol=1e-6)
            and prev.colour == p.colour
        ):
            out[-1] = Polyline(
                np.vstack([prev.points, p.points[1:]]), prev.width, prev.colour, False, prev.order
            )
        else:
            out.append(p)
    return out


def _axis_aligned(pts: np.ndarray) -> np.ndarray:
    """Per segment ``[N-1]``: ``True`` where the segment is horizontal or vertical."""
    d = np.abs(np.diff(pts, axis=0))
    return (d[:, 0] <= AXIS_TOL_MM) | (d[:, 1] <= AXIS_TOL_MM)


def _as_pulse(pts: np.ndarray) -> Pulse | None:
    """The pulse drawn by ``pts`` (open, axis-aligned, foot at both ends, top above), or None."""
    if len(pts) < 4 or not _axis_aligned(pts).all():
        return None
    x, y = pts[:, 0], pts[:, 1]
    foot, top = float(y[0]), float(y.min())
    height = foot - top
    if (
        abs(y[-1] - foot) > 0.05
        or x[-1] - x[0] > PULSE_WIDTH_MAX_MM
        or x[-1] <= x[0]
        or not PULSE_HEIGHT_MM[0] <= height <= PULSE_HEIGHT_MM[1]
        or y.max() > foot + 0.05
    ):
        return None
    return Pulse(float(x[0]), float(x[-1]), foot, height)


def _split_pulse(pts: np.ndarray) -> tuple[Pulse | None, np.ndarray]:
    """A trace that starts with its pulse: ``(pulse, rest)``; the rest starts at the last point
    of the axis-aligned prefix (the first signal vertex)."""
    aligned = _axis_aligned(pts)
    k = int(np.argmin(aligned)) if not aligned.all() else len(aligned)  # aligned prefix segments
    if k < 3:
        return None, pts
    for end in range(k, 2, -1):  # the longest prefix that is a pulse
        pulse = _as_pulse(pts[: end + 1])
        if pulse is not None:
            return pulse, pts[k:]
    return None, pts


def classify(polylines: list[Polyline]) -> tuple[list[Trace], list[Pulse], list[np.ndarray]]:
    """Split stroked polylines into trace candidates (x-monotone, any length), calibration
    pulses and straight axis-aligned lines (grid, separators: ``[2, 2]`` end points)."""
    pieces: list[tuple[int, np.ndarray]] = []
    pulses: list[Pulse] = []
    lines: list[np.ndarray] = []
    for p in _chain(polylines):
        pts = p.points
        if len(pts) < 2:
            continue
        span = pts.max(axis=0) - pts.min(axis=0)
        if len(pts) == 2 or (span <= AXIS_TOL_MM).any():
            if (span <= AXIS_TOL_MM).any():
                lines.append(np.array([pts.min(axis=0), pts.max(axis=0)]))
            continue
        if p.closed:
            continue
        pulse = _as_pulse(pts)
        if pulse is not None:
            pulses.append(pulse)
            continue
        if (np.diff(pts[:, 0]) < -AXIS_TOL_MM).any():
            continue  # not a function of time: text, symbols, boxes
        pulse, rest = _split_pulse(pts)
        if pulse is not None:
            pulses.append(pulse)
        if len(rest) >= 2:
            pieces.append((p.order, rest))
    return _join_pieces(pieces), pulses, lines


def _join_pieces(pieces: list[tuple[int, np.ndarray]]) -> list[Trace]:
    """Subpaths of one path object that continue left to right are one trace (a line clipped
    at the page's edge comes out in pieces); the x ranges between them are its gaps."""
    traces: list[Trace] = []
    last_order = None
    for order, pts in pieces:
        prev = traces[-1] if traces else None
        if prev is not None and order == last_order and pts[0, 0] >= prev.x1 - AXIS_TOL_MM:
            if pts[0, 0] > prev.x1 + AXIS_TOL_MM:
                prev.gaps.append((prev.x1, float(pts[0, 0])))
            prev.x = np.concatenate([prev.x, pts[:, 0]])
            prev.y = np.concatenate([prev.y, pts[:, 1]])
        else:
            traces.append(Trace(pts[:, 0].copy(), pts[:, 1].copy()))
        last_order = order
    return traces


def lattice_period(lines: list[np.ndarray], min_lines: int = 10) -> float | None:
    """The smallest regular spacing (page mm) of the straight vertical and horizontal lines
    (each line family on its own; the finer agreeing period), or None without a lattice."""
    periods = []
    for axis in (0, 1):  # vertical lines have a fixed x; horizontal ones a fixed y
        pos = [
            float(seg[0, axis])
            for seg in lines
            if abs(seg[1, axis] - seg[0, axis]) <= AXIS_TOL_MM
            and abs(seg[1, 1 - axis] - seg[0, 1 - axis]) > 1.0
        ]
        u = np.unique(np.round(pos, 3))
        if len(u) < min_lines:
            continue
        d = np.diff(u)
        d = d[d > 0.2]
        if len(d) < min_lines - 1:
            continue
        p = float(np.median(d[d <= np.percentile(d, 30) * 1.05]))
        on = np.abs(d / p - np.round(d / p)) < 0.03
        if on.mean() >= 0.8:
            periods.append(float(np.median(d[np.round(d / p) == 1])))
    return min(periods) if periods else None


def page_unit(lines: list[np.ndarray]) -> tuple[float, str | None]:
    """Page mm per paper mm from the grid lattice (1 when the page is printed at scale or has
    no lattice), and a note when it differs."""
    p = lattice_period(lines)
    if p is None:
        return 1.0, None
    for paper_mm in (1.0, 5.0):
        unit = p / paper_mm
        if 0.85 <= unit <= 1.15:
            if abs(unit - 1.0) <= 0.005:
                return 1.0, None
            return unit, f"grid lattice of {p:.3f} mm: page printed at {unit:.1%} scale"
    return 1.0, f"grid lattice of {p:.3f} mm is neither 1 nor 5 mm; page units used"


def printed_settings(texts: list[str]) -> tuple[float | None, float | None]:
    """``(speed mm/s, gain mm/mV)`` printed on the page (``25 mm/s``, ``10 mm/mV``), if any."""
    speed = gain = None
    for t in texts:
        for m in re.finditer(r"(\d+(?:[.,]\d+)?)\s*mm\s*/\s*(s|sec|mv)\b", t, re.IGNORECASE):
            v = float(m.group(1).replace(",", "."))
            if m.group(2).lower() == "mv":
                gain = gain if gain is not None else (v if v in GAINS_MM_MV else None)
            else:
                speed = speed if speed is not None else (v if v in SPEEDS_MM_S else None)
    return speed, gain


# --------------------------------------------------------------------------------------------
# rows and leads
# --------------------------------------------------------------------------------------------


def group_rows(traces: list[Trace]) -> list[Row]:
    """Traces -> rows (top to bottom): a trace joins the row of the nearest level within
    :data:`ROW_TOL_MM` whose traces it does not overlap in x."""
    rows: list[Row] = []
    for tr, lv in sorted(((t, t.level()) for t in traces), key=lambda kv: kv[1]):
        best, dist = None, ROW_TOL_MM
        for row in rows:
            free = all(
                tr.x0 >= o.x1 - OVERLAP_TOL_MM or tr.x1 <= o.x0 + OVERLAP_TOL_MM for o in row.traces
            )
            if free and abs(row.level - lv) < dist:
                best, dist = row, abs(row.level - lv)
        if best is None:
            rows.append(Row([tr], lv))
        else:
            best.traces.append(tr)
            best.traces.sort(key=lambda t: t.x0)
    rows.sort(key=lambda r: r.level)
    return rows


def attach_pulses(rows: list[Row], pulses: list[Pulse]) -> None:
    """Give each row the pulse just left of its start or right of its end (within
    :data:`PULSE_REACH_MM`) whose foot lies within the row's trace extent, nearest in x."""
    for row in rows:
        lo, hi = row.y_range
        x_end = row.traces[-1].x1

        def gap(p: Pulse, x0: float = row.x_start, x1: float = x_end) -> float:
            return x0 - p.x1 if p.x1 <= x0 + 2 else p.x0 - x1

        cands = [
            p
            for p in pulses
            if lo - 2 <= p.foot <= hi + 2
            and (p.x1 <= row.x_start + 2 or p.x0 >= x_end - 2)
            and gap(p) < PULSE_REACH_MM
        ]
        if cands:
            row.pulse = min(cands, key=lambda p: (abs(gap(p)), abs(p.foot - row.level)))


def attach_labels(rows: list[Row], texts) -> None:
    """Give the lead-name texts to rows. Printers put every label at one offset from its
    trace's level (above, below or beside it): the offset within :data:`LABEL_DIST_MM` that
    puts most labels within :data:`LABEL_MATCH_MM` of a row is used (the smaller on a tie), and
    each label goes to the row its shifted centre is nearest to."""
    found = []
    for item in texts:
        lead = canonical_lead(item.text) if len(item.text) <= 8 else None
        if lead is not None:
            x0, y0, x1, y1 = item.box
            found.append((0.5 * (x0 + x1), 0.5 * (y0 + y1), lead))
    if not found or not rows:
        return
    levels = np.array([r.level for r in rows])
    cy = np.array([f[1] for f in found])
    offsets = {round(float(c - lv), 1) for c in cy for lv in levels if abs(c - lv) <= LABEL_DIST_MM}
    best, best_score = None, -np.inf
    for o in sorted(offsets):
        d = np.abs((cy - o)[:, None] - levels[None, :]).min(axis=1)
        score = float((d <= LABEL_MATCH_MM).sum()) - 0.01 * abs(o)
        if score > best_score:
            best, best_score = o, score
    if best is None:
        return
    d = np.abs((cy - best)[:, None] - levels[None, :])
    for (x, _, lead), dist, k in zip(found, d.min(axis=1), d.argmin(axis=1)):
        if dist <= LABEL_MATCH_MM:
            rows[int(k)].labels.append((x, lead))


@dataclass
class Segment:
    """A lead window of a row: the trace piece ``x0..x1`` (page mm) and its lead (or None)."""

    trace: Trace
    x0: float
    x1: float
    lead: str | None = None


def row_segments(row: Row) -> list[Segment]:
    """The lead windows of a row, labelled from the row's lead-name texts where they are.

    Separate traces are separate windows; a single trace with several labels along it (a
    continuous pen switching leads) is cut into equal windows, one per label."""
    labels = sorted(row.labels)
    if len(row.traces) == 1:
        tr = row.traces[0]
        inside = [(x, n) for x, n in labels if tr.x0 - LABEL_REACH_MM <= x <= tr.x1]
        if len(inside) >= 2:
            edges = np.linspace(tr.x0, tr.x1, len(inside) + 1)
            return [
                Segment(tr, float(edges[i]), float(edges[i + 1]), inside[i][1])
                for i in range(len(inside))
            ]
    segs = []
    for tr in row.traces:
        near = [
            (abs(x - tr.x0), n)
            for x, n in labels
            if tr.x0 - LABEL_REACH_MM <= x <= tr.x0 + 0.5 * (tr.x1 - tr.x0)
        ]
        segs.append(Segment(tr, tr.x0, tr.x1, min(near)[1] if near else None))
    return segs


def window_starts(row: Row, segs: list[Segment], speed: float, page_seconds: float) -> list[float]:
    """Start time (s) of each window of a row. The row's first point is t = 0 and time runs at
    ``speed`` (page mm/s); but when the row holds ``k >= 2`` separate traces that each last
    ``page_seconds / k``, they are the layout's clinical windows and trace ``c`` starts at
    ``c * page_seconds / k`` even if the printer left gaps between the columns."""
    k = len(segs)
    window = page_seconds / k
    separate = k >= 2 and len(row.traces) == k
    if separate and all(abs((s.x1 - s.x0) / speed / window - 1) <= WINDOW_TOL for s in segs):
        return [c * window for c in range(k)]
    return [(s.x0 - row.x_start) / speed for s in segs]


def _layout_tables() -> dict[str, list[tuple[str, ...]]]:
    tables = {}
    for name, (short, rhythm) in LAYOUTS.items():
        tables[name] = [tuple(r) for r in short] + [(lead,) for lead in rhythm]
    tables["3x4 (no rhythm)"] = [tuple(r) for r in LAYOUTS["3x4"][0]]
    return tables


def assign_leads(segments: list[list[Segment]], notes: list[str]) -> str:
    """Fill unlabelled windows from the standard layout with the same windows per row; returns
    the layout name (``labels`` when every window was labelled and none matched)."""
    pattern = tuple(len(s) for s in segments)
    match = next((n for n, t in _layout_tables().items() if tuple(map(len, t)) == pattern), None)
    missing = any(s.lead is None for row in segments for s in row)
    if match is not None and missing:
        table = _layout_tables()[match]
        for row, names in zip(segments, table):
            for seg, name in zip(row, names):
                seg.lead = seg.lead or name
        notes.append(f"lead names from the {match} layout")
    elif missing:
        notes.append(
            f"rows of {list(pattern)} windows match no standard layout and some have "
            "no printed lead name; those are left NaN"
        )
    return (match or "labels").replace(" (no rhythm)", "")


# --------------------------------------------------------------------------------------------
# the reader
# --------------------------------------------------------------------------------------------


def read_vector(
    content: PageContent,
    fs: float = 500.0,
    num_samples: int = 5000,
    paper_speed: float = 25.0,
    gain: float = 10.0,
    px_per_mm: float = 100 / 25.4,
    page_seconds: float = 10.0,
) -> tuple[Digitized | None, str]:
    """Read an ECG page from its drawing paths.

    Args:
        content: the page's paths and texts (:func:`digitizer.pdf.page_content`).
        fs, num_samples: output rate (Hz) and length.
        paper_speed, gain: mm/s and mm/mV used when the page prints none (gain only without a
            calibration pulse).
        px_per_mm: scale of the image that ``Digitized.rows`` (overlay points) refer to.
        page_seconds: time shown by a full row (10 s on standard printouts): a row of ``k``
            separate panels shows ``k`` consecutive windows of ``page_seconds / k``.

    Returns:
        ``(record, reason)``: the record (``source="vector"``; signal ``float32 [12,
        num_samples]`` mV, NaN where not shown) or ``None`` when the paths do not look like an
        ECG, with the reason.
    """
    notes: list[str] = []
    traces, pulses, lines = classify(content.polylines)
    unit, note = page_unit(lines)
    if note:
        notes.append(note)
    speed_txt, gain_txt = printed_settings([t.text for t in content.texts])
    speed = (speed_txt or paper_speed) * unit  # page mm per second
    if speed_txt and speed_txt != paper_speed:
        notes.append(f"{speed_txt:g} mm/s printed on the page")
    traces = [t for t in traces if t.x1 - t.x0 >= MIN_TRACE_S * speed]
    if not traces:
        return None, "no trace-like drawing paths"
    rows = group_rows(traces)
    attach_pulses(rows, pulses)
    attach_labels(rows, content.texts)
    segments = [row_segments(r) for r in rows]
    layout = assign_leads(segments, notes)
    if not any(s.lead for row in segments for s in row):
        return None, f"{len(traces)} trace paths in {len(rows)} rows but no lead identity"

    t = np.arange(num_samples) / fs
    found: dict[str, list[Candidate]] = {n: [] for n in LEADS}
    nominal_gain = (gain_txt or gain) * unit
    no_pulse = spaced = 0
    for r, (row, segs) in enumerate(zip(rows, segments)):
        if row.pulse is not None:
            base, g, calibration = row.pulse.foot, row.pulse.height, "pulse"
        else:
            no_pulse += 1
            base, g, calibration = resting_level(row), nominal_gain, "grid"
        starts = window_starts(row, segs, speed, page_seconds)
        if any(abs(t0 - (seg.x0 - row.x_start) / speed) > 0.02 for t0, seg in zip(starts, segs)):
            spaced += 1
        for c, (seg, t0) in enumerate(zip(segs, starts)):
            if seg.lead is None:
                continue
            x = seg.x0 + (t - t0) * speed
            win = (x >= seg.x0 - 1e-6) & (x <= seg.x1 + 1e-6)
            if seg.x1 < seg.trace.x1:  # a cut window ends before the next one starts
                win &= x < seg.x1 - 1e-6
            values = np.full(num_samples, np.nan)
            values[win] = (base - seg.trace.sample(x[win])) / g
            report = LeadReport(seg.lead, row=r, panel=c, coverage=1.0, calibration=calibration,
                                timing="length", layout="standard",
                                amplitude=amplitude_check(values))  # fmt: skip
            found[seg.lead].append(((seg.x1 - seg.x0) / speed, values, report))
    if spaced:
        notes.append(
            f"{spaced} row(s) with columns spaced apart: their times from the clinical windows"
        )
    if no_pulse:
        notes.append(
            f"{no_pulse} row(s) without a calibration pulse: {nominal_gain / unit:g} "
            "mm/mV around the row's median level"
        )
    signal, reports = merge_panels(found, LEADS, num_samples, drop_contradictions=False)

    w_mm, h_mm = content.size_mm
    size = (int(np.ceil(h_mm * px_per_mm)), int(np.ceil(w_mm * px_per_mm)))
    grid = GridEstimate(np.eye(3), size, 0.0, False, px_per_mm, px_per_mm, 1.0, "vector", notes)
    # pixel centres at integer coordinates: page mm m is pixel m * px_per_mm - 0.5
    overlay_rows = [
        (tr.x * px_per_mm - 0.5, tr.y * px_per_mm - 0.5) for r in rows for tr in r.traces
    ]
    rec = Digitized(signal, float(fs), LEADS, layout, grid, list(notes), overlay_rows, reports,
                    source="vector")  # fmt: skip
    missing = rec.missing_leads
    if missing:
        rec.warnings.append(f"no trace found for {', '.join(missing)} (NaN)")
    return rec, "read from the vector paths"
