"""Vectorisation: a trace probability map and one row of the page -> one y per pixel column.

Each pixel column of a row band holds a few vertical runs of trace pixels: usually one, more
where a neighbouring row's tall QRS reaches in or text sits on the trace. A shortest path
(dynamic programming over the runs, cost = vertical gap between consecutive runs, plus a weak
pull towards the row's baseline) picks the run that continues the trace. The value of a column
is its run's probability-weighted centroid; :func:`column_knots` then turns the runs into the
pen's centre line, keeping steep slopes and peaks that a centroid would smooth away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_PULL = 0.02  # cost per pixel of distance from the baseline (keeps the path in its row)
GAP_COST = 1.0  # cost per pixel of vertical gap between consecutive runs


@dataclass
class RowTrace:
    """One row's trace in the rectified image.

    Attributes:
        y: ``float64 [W]`` y per pixel column (NaN where there is no trace).
        top, bottom: ``[W]`` extent of the chosen run per column (NaN where none).
        line_width: vertical thickness of the pen in flat parts (px).
        knots_x, knots_y: the pen's centre line as a polyline (see :func:`column_knots`).
    """

    y: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    line_width: float
    knots_x: np.ndarray
    knots_y: np.ndarray

    def sample(self, x: np.ndarray) -> np.ndarray:
        """The trace's y at fractional columns ``x`` ``[N]`` (NaN where not traced)."""
        return sample_knots(self.knots_x, self.knots_y, x)


def column_runs(band: np.ndarray, threshold: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Vertical runs of ``band > threshold`` in every column of ``band`` ``[h, W]``.

    Returns ``(col, top, bottom, centroid)``, each ``[R]``, sorted by column then top; rows are
    band-relative, ``bottom`` inclusive, the centroid weighted by probability.
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
        return RowTrace(y, top_out, bot_out, float("nan"), np.zeros(0), np.zeros(0))
    col, top, bottom, cen = column_runs(prob[lo:hi, x0:x1], threshold)
    if len(col) == 0:
        return RowTrace(y, top_out, bot_out, float("nan"), np.zeros(0), np.zeros(0))
    base = baseline - lo
    starts = np.searchsorted(col, np.arange(x1 - x0 + 1))
    # forward pass: best cost of ending at each run, with back-pointers
    cost = np.zeros(len(col))
    back = np.full(len(col), -1)
    prev = np.zeros(0, dtype=np.int64)
    for c in range(x1 - x0):
        idx = np.arange(starts[c], starts[c + 1])
        if len(idx) == 0:
            continue  # a gap: the next column continues from the last runs seen
        unary = BASELINE_PULL * np.abs(cen[idx] - base)
        if len(prev):
            gap = np.maximum(
                0,
                np.maximum(top[idx][:, None] - bottom[prev][None, :] - 1,
                           top[prev][None, :] - bottom[idx][:, None] - 1),
            )  # fmt: skip
            total = cost[prev][None, :] + GAP_COST * gap
            j = np.argmin(total, axis=1)
            cost[idx] = total[np.arange(len(idx)), j] + unary
            back[idx] = prev[j]
        else:
            cost[idx] = unary
        prev = idx
    # backtrack from the cheapest run of the last column that has runs
    k = int(prev[np.argmin(cost[prev])])
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
    lw = float(np.percentile(thickness, 10)) if len(thickness) else float("nan")
    kx, ky = column_knots(y, top_out, bot_out, lw)
    return RowTrace(y, top_out, bot_out, lw, kx, ky)


def column_knots(y: np.ndarray, top: np.ndarray, bottom: np.ndarray, lw: float
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Knots ``(x, y)`` of the pen's centre line from per-column runs.

    A pixel column shows the span of the signal inside it, widened by the pen. Where the trace
    rises or falls through a column, the span's inner ends (less half the line width) are the
    values at the column's left and right edges, which keeps steep QRS slopes exact instead of
    box-filtering them; at a peak or trough the outer end is the extremum (at the centre); a
    flat column (span within the pen width) gives its centroid.
    """
    ok = np.isfinite(y)
    cols = np.flatnonzero(ok)
    if len(cols) == 0:
        return np.zeros(0), np.zeros(0)
    half = 0.5 * (max(lw, 1.0) - 1.0) if np.isfinite(lw) else 0.0
    hi = top[cols] + half  # upper inner end (smaller y)
    lo = np.maximum(bottom[cols] - half, hi)
    c = y[cols]
    steep = (lo - hi) > 1.0
    prev_c = np.r_[c[0], c[:-1]]
    next_c = np.r_[c[1:], c[-1]]
    # neighbours must be adjacent columns to tell a direction
    adj_l = np.r_[False, np.diff(cols) == 1]
    adj_r = np.r_[np.diff(cols) == 1, False]
    prev_c = np.where(adj_l, prev_c, c)
    next_c = np.where(adj_r, next_c, c)
    rising = steep & (prev_c >= c) & (next_c <= c) & (prev_c > next_c)  # y decreasing = rising
    falling = steep & (prev_c <= c) & (next_c >= c) & (prev_c < next_c)
    peak = steep & ~rising & ~falling & (prev_c + next_c >= 2 * c)  # neighbours lower on screen
    trough = steep & ~rising & ~falling & ~peak
    kx: list[np.ndarray] = []
    ky: list[np.ndarray] = []
    flat = ~steep
    kx += [cols[flat].astype(np.float64)]
    ky += [c[flat]]
    for m, left, right in ((rising, lo, hi), (falling, hi, lo)):
        kx += [cols[m] - 0.5, cols[m] + 0.5]
        ky += [left[m], right[m]]
    kx += [cols[peak].astype(np.float64), cols[trough].astype(np.float64)]
    ky += [hi[peak], lo[trough]]
    x = np.concatenate(kx)
    v = np.concatenate(ky)
    order = np.argsort(x, kind="stable")
    x, v = x[order], v[order]
    # two knots on one column edge (from both neighbours): average them
    ux, inv = np.unique(x, return_inverse=True)
    vy = np.bincount(inv, weights=v) / np.bincount(inv)
    return ux, vy


def sample_knots(kx: np.ndarray, ky: np.ndarray, x: np.ndarray, max_gap: float = 2.0
                 ) -> np.ndarray:  # fmt: skip
    """Piecewise-linear value of the knots at ``x`` ``[N]``; NaN outside them or inside a gap
    wider than ``max_gap`` px (a break in the trace)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    if len(kx) == 0:
        return out
    inside = (x >= kx[0] - 0.5) & (x <= kx[-1] + 0.5)
    out[inside] = np.interp(x[inside], kx, ky)
    j = np.clip(np.searchsorted(kx, x), 1, max(len(kx) - 1, 1))
    if len(kx) > 1:
        gap = (kx[j] - kx[j - 1]) > max_gap
        between = (x > kx[j - 1]) & (x < kx[j])
        out[gap & between] = np.nan
    return out
