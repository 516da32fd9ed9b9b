"""Vectorisation: a trace probability map and one row of the page -> the pen's centre line.

Two steps:

1. **Tracking** (:func:`track_row`). Each pixel column of a row band holds a few vertical runs
   of trace pixels: usually one, more where a neighbouring row's tall QRS reaches in or text
   sits on the trace. A shortest path (dynamic programming over the runs, cost = vertical gap
   between consecutive runs, plus a weak pull towards the row's baseline) picks the run that
   continues the trace; where the row's own trace has left the band (a deep S wave) the path
   leaves columns out rather than jump onto a neighbour's trace, and runs a few pixels apart
   in one column (a stroke with a hole) count as one. Gives the run's extent ``[top, bottom]``
   per column.
2. **Centre line** (:func:`fit_centerline`). A pen of vertical width ``lw`` that reaches ``h``
   px sideways inks, in column ``c``, exactly the span ``[min y - lw/2, max y + lw/2]`` of the
   trace ``y(x)`` over ``x in [c - h, c + h]`` (:class:`Pen`; ``h`` and ``lw`` are measured on
   the page by :func:`estimate_pen`). The centre line is the smooth ``y(x)`` on a sub-pixel
   grid whose window minima and maxima best match every column's run ends (iteratively
   reweighted least squares: each window's arg-min and arg-max are re-assigned, then a banded
   solve). Unlike a column centroid this keeps steep QRS slopes and narrow peaks where they
   are, to a fraction of a pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded

BASELINE_PULL = 0.02  # cost per pixel of distance from the baseline (keeps the path in its row)
GAP_COST = 1.0  # cost per pixel of vertical gap between consecutive runs
SKIP_COST = 3.0  # cost per column with runs that the path leaves out (its trace is not there)
MAX_SKIP_COLUMNS = 256  # the longest stretch the path can leave out
SKIP_BEAM = 24  # older runs kept as predecessors
MERGE_HOLE_PX = 3  # a column's runs this close are one stroke with a hole
STRAIGHT_BAR_PX = 8  # a run this tall that its neighbour column repeats is a bar, not a trace
SUBPIXEL = 4  # centre-line samples per pixel column
SMOOTHNESS = 1.0  # weight of the second-difference penalty of the centre-line fit
FIT_ITERATIONS = 6
HUBER_PX = 2.0  # run ends further than this from the fit count less (text, blobs)
ROUND_PEN_TOLERANCE = 1.5  # px: a pen's sideways reach 2h and its width agree within this
MIN_LEVEL_COLUMNS = 200  # level columns needed to bound the pen's width by their runs
LEVEL_WIDTH_TOLERANCE = 0.5  # px: the width from steep strokes is at most theirs plus this


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, last)]`` index ranges of the True runs of ``mask`` ``bool [N]``."""
    d = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1))


@dataclass
class RowTrace:
    """One row's tracked trace in the rectified image.

    Attributes:
        y: ``float64 [W]`` centroid of the chosen run per pixel column (NaN where no trace).
        top, bottom: ``[W]`` extent of the chosen run per column (inclusive pixel rows, NaN
            where none).
        line_width: vertical thickness of the pen in the flattest columns (px).
        outer_top, outer_bottom: ``[W]`` the extent widened by the column's other runs that
            overlap the neighbouring columns' chosen runs (the tip of a narrow spike whose
            strokes part, :func:`_join_touching_runs`); the centre-line fit reads these.
            ``None``: ``top`` and ``bottom``.
    """

    y: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    line_width: float
    outer_top: np.ndarray | None = None
    outer_bottom: np.ndarray | None = None


@dataclass(frozen=True)
class Pen:
    """How a printed trace inks pixel columns (see the module docstring).

    Attributes:
        reach: ``h`` (px): column ``c`` shows the trace over ``[c - h, c + h]``.
        width: ``lw`` (px): vertical line width.
        measured: whether both came from steep strokes of the page (else assumed from the
            thickness of flat strokes, ``reach = width / 2``).
    """

    reach: float
    width: float
    measured: bool = True


@dataclass
class Centerline:
    """A fitted centre line: ``y[j]`` at ``x = x0 + j * step`` (NaN where the page shows no
    trace)."""

    x0: float
    step: float
    y: np.ndarray

    def sample(self, x: np.ndarray, hold: float = 0.0) -> np.ndarray:
        """``y`` at columns ``x`` ``[N]`` (linear interpolation; NaN in gaps and outside, except
        that up to ``hold`` px beyond either end the end value is held)."""
        x = np.asarray(x, dtype=np.float64)
        out = np.full(x.shape, np.nan)
        if len(self.y) == 0:
            return out
        pos = (x - self.x0) / self.step
        last = len(self.y) - 1
        reach = hold / self.step
        pos = np.where((pos < 0) & (pos >= -reach), 0.0, pos)
        pos = np.where((pos > last) & (pos <= last + reach), float(last), pos)
        inside = (pos >= 0) & (pos <= len(self.y) - 1)
        j = np.minimum(np.floor(pos[inside]).astype(np.int64), len(self.y) - 2)
        j = np.maximum(j, 0)
        f = pos[inside] - j
        y1 = self.y[np.minimum(j + 1, len(self.y) - 1)]
        out[inside] = (1 - f) * self.y[j] + f * y1
        return out


def column_runs(band: np.ndarray, threshold: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Vertical runs of ``band > threshold`` in every column of ``band`` ``[h, W]``.

    Returns ``(col, top, bottom, centroid)``, each ``[R]``, sorted by column then top; rows are
    band-relative, ``bottom`` inclusive, the centroid weighted by probability. Runs of a column
    at most :data:`MERGE_HOLE_PX` apart count as one.
    """
    on = band > threshold
    h = on.shape[0]
    padded = np.zeros((h + 2, on.shape[1]), dtype=np.int8)
    padded[1:-1] = on
    d = np.diff(padded, axis=0)
    s_row, s_col = np.nonzero(d.T == 1)  # transposed: sorted by column, then row
    e_row, e_col = np.nonzero(d.T == -1)
    top, bottom, col = s_col.astype(np.int64), e_col.astype(np.int64) - 1, s_row
    del e_row
    # runs of one column split by a small hole (a removed grid line, a faint pixel) are one
    # stroke, so that a broken vertical stroke still connects what is above and below it
    first = np.r_[True, (col[1:] != col[:-1]) | (top[1:] - bottom[:-1] - 1 > MERGE_HOLE_PX)]
    if not first.all():
        starts = np.flatnonzero(first)
        top, col = top[starts], col[starts]
        bottom = np.maximum.reduceat(bottom, starts)
    # probability-weighted centroids through cumulative sums per column
    weight = np.where(on, band, 0.0).astype(np.float64)
    cw = np.vstack([np.zeros((1, band.shape[1])), np.cumsum(weight, axis=0)])
    cy = np.vstack(
        [np.zeros((1, band.shape[1])), np.cumsum(weight * np.arange(h)[:, None], axis=0)]
    )
    mass = cw[bottom + 1, col] - cw[top, col]
    moment = cy[bottom + 1, col] - cy[top, col]
    centroid = np.where(mass > 0, moment / np.maximum(mass, 1e-12), 0.5 * (top + bottom))
    return col, top, bottom, centroid


def track_row(prob: np.ndarray, baseline: float, half_height: float, x0: int = 0,
              x1: int | None = None, threshold: float = 0.5) -> RowTrace:  # fmt: skip
    """Follow the trace of the row whose baseline is at ``baseline`` (px) in ``prob`` ``[H, W]``.

    Args:
        half_height: search band half height (px) around the baseline; a band reaching into the
            neighbouring rows lets tall complexes be followed.
        x0, x1: columns to track (default all).
    """
    hh, ww = prob.shape
    x1 = ww if x1 is None else x1
    lo = int(max(0, np.floor(baseline - half_height)))
    hi = int(min(hh, np.ceil(baseline + half_height) + 1))
    y = np.full(ww, np.nan)
    top_out, bot_out = y.copy(), y.copy()
    if hi <= lo or x1 <= x0:
        return RowTrace(y, top_out, bot_out, float("nan"))
    col, top, bottom, cen = column_runs(prob[lo:hi, x0:x1], threshold)
    if len(col) == 0:
        return RowTrace(y, top_out, bot_out, float("nan"))
    base = baseline - lo
    starts = np.searchsorted(col, np.arange(x1 - x0 + 1))
    # forward pass: best cost of ending at each run, with back-pointers. Predecessors are the
    # runs of the last columns that had runs; reaching back over such a column costs
    # SKIP_COST plus the pull of its best run (never cheaper than taking that run), so where
    # this row's trace leaves the band (a deep S wave) the path waits instead of jumping onto
    # a neighbour's trace.
    cost = np.zeros(len(col))
    back = np.full(len(col), -1)
    order = np.zeros(len(col), dtype=np.int64)  # how many columns with runs came before
    skipped = np.zeros(x1 - x0 + 1)  # skipped[o]: cost of leaving out the first o such columns
    seen = 0
    cand = np.zeros(0, dtype=np.int64)
    for c in range(x1 - x0):
        idx = np.arange(starts[c], starts[c + 1])
        if len(idx) == 0:
            continue  # no runs at all: nothing is skipped
        order[idx] = seen
        unary = BASELINE_PULL * np.abs(cen[idx] - base)
        if len(cand):
            eff = cost[cand] + skipped[seen] - skipped[order[cand] + 1]
            gap = np.maximum(
                0,
                np.maximum(top[idx][:, None] - bottom[cand][None, :] - 1,
                           top[cand][None, :] - bottom[idx][:, None] - 1),
            )  # fmt: skip
            total = eff[None, :] + GAP_COST * gap
            j = np.argmin(total, axis=1)
            cost[idx] = total[np.arange(len(idx)), j] + unary
            back[idx] = cand[j]
            # carry the older runs that might still pay off (a bounded, cheapest-first beam)
            keep = cand[seen - order[cand] < MAX_SKIP_COLUMNS]
            rank = cost[keep] - skipped[order[keep] + 1]
            cand = np.concatenate([idx, keep[np.argsort(rank)[:SKIP_BEAM]]])
        else:
            cost[idx] = unary
            cand = idx
        skipped[seen + 1] = skipped[seen] + SKIP_COST + float(unary.min())
        seen += 1
    # backtrack from the cheapest end (a run of the last columns, skips counted to the end)
    eff = cost[cand] + skipped[seen] - skipped[order[cand] + 1]
    k = int(cand[np.argmin(eff)])
    chosen = []
    while k >= 0:
        chosen.append(k)
        k = int(back[k])
    chosen = np.array(chosen[::-1])
    cols = col[chosen] + x0
    y[cols] = cen[chosen] + lo
    top_out[cols] = top[chosen] + lo
    bot_out[cols] = bottom[chosen] + lo
    thickness = bottom[chosen] - top[chosen] + 1
    outer_top, outer_bot = top_out.copy(), bot_out.copy()
    _join_touching_runs(outer_top, outer_bot, col + x0, top + lo, bottom + lo, cols)
    lw = float(np.percentile(thickness, 10)) if len(thickness) else float("nan")
    return RowTrace(y, top_out, bot_out, lw, outer_top, outer_bot)


def _join_touching_runs(top: np.ndarray, bottom: np.ndarray, col: np.ndarray, run_top: np.ndarray,
                        run_bottom: np.ndarray, cols: np.ndarray) -> None:  # fmt: skip
    """Widen, in place, the extent ``[top, bottom]`` of each path column ``cols`` to the other
    runs of that column (``col``, ``run_top``, ``run_bottom``: all runs, page rows) that
    overlap the path's run of a neighbouring column over at least half the shorter of the two.
    At the tip of a narrow spike a column holds the top of the up-stroke and, apart from it,
    the foot of the down-stroke; the path takes one of them, and the peak would be lost. A
    separator tick that only touches the trace from below or above overlaps it by a pixel or
    none, and stays out."""
    on_path = np.zeros(len(top), dtype=bool)
    on_path[cols] = True
    # a vertical bar (a separator tick): two neighbouring columns whose path runs, taller than
    # STRAIGHT_BAR_PX, start and end alike; labels touching it do not join the trace
    bar = np.zeros(len(top), dtype=bool)
    same = (
        on_path[1:] & on_path[:-1] & (np.abs(np.diff(top)) <= 3) & (np.abs(np.diff(bottom)) <= 3)
        & (bottom[1:] - top[1:] >= STRAIGHT_BAR_PX)
    )  # fmt: skip
    bar[1:] |= same
    bar[:-1] |= same
    on_path &= ~bar
    keep = on_path[col]
    c = col[keep]
    rt, rb = run_top[keep].astype(np.float64), run_bottom[keep].astype(np.float64)
    touch = np.zeros(len(c), dtype=bool)
    for d in (-1, 1):
        n = np.clip(c + d, 0, len(top) - 1)
        ok = (c + d >= 0) & (c + d < len(top)) & on_path[n]
        nt, nb = top[n], bottom[n]  # the path's run in column c + d
        overlap = np.minimum(rb, nb) - np.maximum(rt, nt) + 1
        touch |= ok & (overlap >= np.maximum(1.0, 0.5 * np.minimum(rb - rt, nb - nt) + 0.5))
    np.fmin.at(top, c[touch], rt[touch])
    np.fmax.at(bottom, c[touch], rb[touch])


def estimate_pen(traces: Sequence[RowTrace], max_reach: float = 8.0) -> Pen:
    """Measure the pen on steep strokes of ``traces`` (all rows of one page).

    Through a column where the trace rises steeply, the run's top is ``y(c + h) - lw/2`` and its
    bottom ``y(c - h) + lw/2``; so ``bottom(c + 2h) - top(c) = lw`` along a rising stroke (and
    ``bottom(c) - top(c + 2h) = lw`` along a falling one). The shift ``2h`` that makes that
    difference most constant gives the reach, the difference the width; a round nib reaches as
    far sideways as it is wide (``2h ~ lw``, within :data:`ROUND_PEN_TOLERANCE`), which rules
    out the shifts that fit long straight strokes equally well; where enough columns run level,
    the shifts searched end :data:`ROUND_PEN_TOLERANCE` twice beyond their thickness (the
    blurred flanks of steep strokes once fitted an 8 px reach to a 3 px pen, and every QRS was
    flattened). Without enough steep strokes the width comes from the flattest columns and the
    reach is half of it.
    """
    tops = [t.top for t in traces]
    bots = [t.bottom for t in traces]
    if not tops:
        return Pen(0.5, 1.0, measured=False)
    top = np.concatenate([np.r_[t, np.nan] for t in tops])  # NaN separates the rows
    bot = np.concatenate([np.r_[b, np.nan] for b in bots])
    ok = np.isfinite(top)
    if not ok.any():
        return Pen(0.5, 1.0, measured=False)
    thick = bot - top
    flat_width = max(1.0, float(np.percentile(thick[ok], 10)))
    fallback = Pen(max(0.5, 0.5 * flat_width), flat_width, measured=False)
    centre = 0.5 * (top + bot)
    before = np.r_[np.nan, centre[:-1]]
    after = np.r_[centre[1:], np.nan]
    # where the trace runs level, a column's run is the pen's width itself
    level = ok & (np.abs(before - centre) < 0.6) & (np.abs(after - centre) < 0.6)
    level_width = float(np.median(thick[level])) if level.sum() >= MIN_LEVEL_COLUMNS else None
    steep = ok & (thick > flat_width + 6.0)
    up = ok & (before > centre + 0.5) & (after < centre - 0.5)  # y decreases: the trace rises
    down = ok & (before < centre - 0.5) & (after > centre + 0.5)
    cols = np.arange(len(top))
    best: tuple[float, float, float] | None = None
    # a round nib reaches sideways as far as the level strokes are thick: shifts far beyond
    # that fit the blurred flanks of steep strokes, not the pen
    longest = 2.0 * max_reach
    if level_width is not None:
        longest = min(longest, level_width + 2.0 * ROUND_PEN_TOLERANCE)
    for shift in np.arange(0.0, longest, 0.05):
        k = int(np.floor(shift))

        def along(stroke: np.ndarray, k: int = k) -> np.ndarray:
            c = cols[steep & stroke]
            c = c[c + k + 1 < len(top)]
            return c[stroke[c + k] & stroke[c + k + 1]]  # the shifted point is on the stroke too

        cr, cf = along(up), along(down)
        diff = np.r_[np.interp(cr + shift, cols, bot) - top[cr],
                     bot[cf] - np.interp(cf + shift, cols, top)]  # fmt: skip
        if len(diff) < 12:
            continue
        width = float(np.median(diff))
        spread = float(np.mean(np.abs(diff - width)))
        if abs(width - shift) > ROUND_PEN_TOLERANCE:
            continue  # a round pen reaches sideways as far as up and down
        if best is None or spread < best[0]:
            lo, hi = np.percentile(diff, [20, 80])
            core = diff[(diff >= lo) & (diff <= hi)]
            best = (spread, 0.5 * shift, float(core.mean()) if len(core) else width)
    if best is None or best[2] <= 0:
        return fallback
    width = best[2]
    if level_width is not None:  # texture along steep strokes can make them seem wider
        width = min(width, level_width + LEVEL_WIDTH_TOLERANCE)
    return Pen(max(0.5, best[1]), width, measured=True)


def fit_centerline(trace: RowTrace, pen: Pen, x_lo: float = -np.inf, x_hi: float = np.inf,
                   sub: int = SUBPIXEL, smoothness: float = SMOOTHNESS,
                   iterations: int = FIT_ITERATIONS) -> Centerline:  # fmt: skip
    """The pen's centre line over the columns ``x_lo <= c <= x_hi`` of ``trace``.

    Finds ``y`` on a grid of ``1 / sub`` px such that, for every traced column ``c``, the
    minimum of ``y`` over ``[c - h, c + h]`` is ``top[c] + lw/2`` and the maximum is
    ``bottom[c] - lw/2`` (see the module docstring), with a small second-difference penalty that
    fills the space between constraints. Each iteration re-assigns which grid point is each
    window's minimum and maximum and solves the banded normal equations; run ends that miss the
    fit by more than :data:`HUBER_PX` are down-weighted (Huber). Grid points that no traced
    column covers are NaN.
    """
    top = trace.top if trace.outer_top is None else trace.outer_top
    bot = trace.bottom if trace.outer_bottom is None else trace.outer_bottom
    cols = np.flatnonzero(np.isfinite(top))
    cols = cols[(cols >= x_lo) & (cols <= x_hi)]
    if len(cols) == 0:
        return Centerline(0.0, 1.0 / sub, np.zeros(0))
    reach = int(round(pen.reach * sub))
    x0 = cols[0] - reach / sub
    n = (cols[-1] - cols[0]) * sub + 2 * reach + 1
    centre = (cols - cols[0]) * sub + reach  # grid index of each column
    window = (centre - reach)[:, None] + np.arange(2 * reach + 1)[None, :]
    lo_target = top[cols] + 0.5 * pen.width
    hi_target = bot[cols] - 0.5 * pen.width
    thin = hi_target < lo_target  # thinner than the pen: the run's middle
    mid = 0.5 * (top[cols] + bot[cols])
    lo_target = np.where(thin, mid, lo_target)
    hi_target = np.where(thin, mid, hi_target)
    covered = np.zeros(n, dtype=bool)
    covered[window.ravel()] = True

    y = np.interp(np.arange(n), centre, mid)
    d2 = _second_difference_band(n, smoothness)
    weight_lo = np.ones(len(cols))
    weight_hi = np.ones(len(cols))
    rows = np.arange(len(cols))
    for _ in range(iterations):
        seg = y[window]
        j_lo = window[rows, np.argmin(seg, axis=1)]
        j_hi = window[rows, np.argmax(seg, axis=1)]
        diag = np.bincount(j_lo, weight_lo, n) + np.bincount(j_hi, weight_hi, n)
        rhs = np.bincount(j_lo, weight_lo * lo_target, n) + np.bincount(
            j_hi, weight_hi * hi_target, n
        )
        ab = d2.copy()
        ab[2] += diag + 1e-9
        y = solve_banded((2, 2), ab, rhs)
        weight_lo = _huber(y[j_lo] - lo_target)
        weight_hi = _huber(y[j_hi] - hi_target)
    return Centerline(float(x0), 1.0 / sub, np.where(covered, y, np.nan))


def _second_difference_band(n: int, weight: float) -> np.ndarray:
    """``weight * D2^T D2`` (``D2``: second differences of ``n`` values) in the ``(2, 2)``
    banded layout of :func:`scipy.linalg.solve_banded`."""
    ab = np.zeros((5, n))
    if n < 3:
        return ab
    coef = (1.0, -2.0, 1.0)
    r = np.arange(n - 2)  # D2 row r has coef at columns r, r + 1, r + 2
    for a in range(3):
        for b in range(3):
            i, j = r + a, r + b  # matrix entry (i, j) gets coef[a] * coef[b]
            # banded layout: ab[2 + i - j, j] = M[i, j]
            np.add.at(ab, (2 + i - j, j), weight * coef[a] * coef[b])
    return ab


def _huber(residual: np.ndarray, k: float = HUBER_PX) -> np.ndarray:
    a = np.abs(residual)
    return np.where(a <= k, 1.0, k / np.maximum(a, 1e-12))
