"""Dense dewarping from the grid's local frequencies, for pages that one homography cannot
straighten: photographed curled, folded, bent or at a steep angle.

The printed grid defines paper coordinates ``u`` (mm to the right) and ``v`` (mm down). Around an
image point, the 1 mm vertical lines are a plane wave whose frequency vector (cycles/px) is the
gradient of ``u`` there (mm/px); the horizontal lines give the gradient of ``v``. So:

1. **Tiles.** The 2-D spectrum of each ~32 mm tile of the line evidence (ink removed) holds the
   two 1 mm line families as two peaks near radius ``1 / px_per_mm``; their sub-bin positions are
   the local gradients of ``u`` and ``v``.
2. **Fit.** Polynomials ``u(x, y)``, ``v(x, y)`` (degree 2-4, by the number of tiles) whose
   gradients match the measured ones in weighted least squares, tiles that disagree (text,
   handwriting, stains) trimmed away.
3. **Resample.** The rectified page is a regular paper grid at ``px_per_mm``: Newton steps
   invert the fitted map at every 16th output pixel, and the maps are interpolated between.

A page whose grid shows in too few tiles gives ``None`` (the caller keeps its own estimate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

TILE_MM = 32.0  # tile side; a 1 mm grid shows ~32 periods, enough for a sharp spectral peak
PAD = 1  # zero padding of the tiles' spectra
TILE_STEP = 0.5  # tiles overlap by half
MIN_TILES = 10  # fewer tiles with both line families: no dense fit
PEAK_CONTRAST = 8.0  # a family's peak over the median of its annulus
BAND = (0.88, 1.14)  # the annulus searched, in units of the page's 1 mm frequency
TRIM = 3.0  # a tile whose residual exceeds this many median residuals is dropped
REGION_REACH = 0.35  # a tile that showed the grid vouches for this fraction of its side around
# its centre (the region of the page where rows are read)
MIN_PPM, MAX_PPM = 2.0, 16.0  # px/mm search range (~50 to ~400 dpi; also the grid's)
BENT_MM = 1.0  # a fitted map within this of an affine one is flat: a homography's job, not this
MAP_STEP = 16  # output pixels between exact inversions of the map


@dataclass
class TileFrequencies:
    """Local 1 mm frequency vectors of the two grid line families.

    Attributes:
        centre: ``[N, 2]`` tile centres (x, y), input pixels.
        grad_u: ``[N, 2]`` frequency of the vertical lines (cycles/px = mm/px), ``x > 0``.
        grad_v: ``[N, 2]`` frequency of the horizontal lines, ``y > 0``.
        weight: ``[N]`` peak contrast (the weaker family's).
    """

    centre: np.ndarray
    grad_u: np.ndarray
    grad_v: np.ndarray
    weight: np.ndarray


def _spectrum(tile: np.ndarray, pad: int = 2) -> np.ndarray:
    """``log`` magnitude of the Hann-windowed, ``pad``-times zero-padded spectrum
    ``[pad * n, pad * n]``, zero frequency centred."""
    n = tile.shape[0]
    win = (tile - tile.mean()) * np.outer(np.hanning(n), np.hanning(n))
    return np.log(np.abs(np.fft.fftshift(np.fft.fft2(win, (pad * n, pad * n)))) + 1e-9)


def _subbin(spec: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Parabolic peak offset (rows, cols) around bin ``(i, j)`` of ``spec``."""

    def para(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else float(np.clip(0.5 * (a - c) / d, -0.5, 0.5))

    m = spec.shape[0]
    di = para(spec[(i - 1) % m, j], spec[i, j], spec[(i + 1) % m, j])
    dj = para(spec[i, (j - 1) % m], spec[i, j], spec[i, (j + 1) % m])
    return di, dj


def tile_side(px_per_mm: float) -> int:
    """Side (px) of the tiles: a power of two near :data:`TILE_MM`."""
    return int(np.clip(2 ** round(math.log2(TILE_MM * px_per_mm)), 32, 512))


def _starts(length: int, n: int) -> list[int]:
    """Tile starts along a side of ``length`` px: every ``TILE_STEP * n``, the last tile flush
    with the far edge."""
    starts = list(range(0, max(length - n, 0) + 1, int(n * TILE_STEP)))
    if starts[-1] < length - n:
        starts.append(length - n)
    return starts


def tile_frequencies(evidence: np.ndarray, px_per_mm: float) -> TileFrequencies:
    """The two grid families' local frequency vectors in tiles of ``evidence`` ``[H, W]``
    (half-overlapping, ~:data:`TILE_MM` side), at a page scale near ``px_per_mm``."""
    n = tile_side(px_per_mm)
    h, w = evidence.shape
    m = PAD * n
    f = (np.arange(m) - m // 2) / m
    fx, fy = np.meshgrid(f, f)
    radius = np.hypot(fx, fy) * px_per_mm
    band = (radius > BAND[0]) & (radius < BAND[1]) & ((fy > 0) | ((fy == 0) & (fx > 0)))
    rows, cols = np.nonzero(band)
    angle = np.arctan2(fy[rows, cols], fx[rows, cols])
    out: list[tuple] = []
    for y0 in _starts(h, n):
        for x0 in _starts(w, n):
            tile = evidence[y0 : y0 + n, x0 : x0 + n]
            if tile.shape != (n, n) or tile.std() < 1e-4:
                continue
            spec = _spectrum(tile.astype(np.float64), PAD)
            vals = spec[rows, cols]
            floor = float(np.median(vals))
            vecs, contrasts = [], []
            for _ in range(2):
                k = int(np.argmax(vals))
                i, j = rows[k], cols[k]
                contrasts.append(math.exp(spec[i, j] - floor))
                di, dj = _subbin(spec, i, j)
                vecs.append(np.array([(j + dj - m // 2) / m, (i + di - m // 2) / m]))
                # the other family lies at least 45 degrees away (mod 180)
                diff = np.abs((angle - angle[k] + math.pi / 2) % math.pi - math.pi / 2)
                vals = np.where(diff < math.pi / 4, -np.inf, vals)
            if min(contrasts) < PEAK_CONTRAST:
                continue
            a, b = vecs
            gu, gv = (a, b) if abs(a[0]) >= abs(b[0]) else (b, a)
            gu = gu if gu[0] > 0 else -gu
            gv = gv if gv[1] > 0 else -gv
            out.append(((x0 + (n - 1) / 2, y0 + (n - 1) / 2), gu, gv, min(contrasts)))
    if not out:
        z = np.zeros((0, 2))
        return TileFrequencies(z, z, z, np.zeros(0))
    c, gu, gv, wt = (np.array(v, dtype=np.float64) for v in zip(*out))
    return TileFrequencies(c, gu, gv, wt)


class PolyMap:
    """Image pixel ``(x, y)`` -> paper mm ``(u, v)``: two polynomials of total degree
    ``degree`` in normalised coordinates, without constant term."""

    def __init__(self, shape: tuple[int, int], degree: int) -> None:
        h, w = shape
        self.centre = np.array([(w - 1) / 2, (h - 1) / 2])
        self.scale = max(h, w) / 2
        self.terms = [(i, d - i) for d in range(1, degree + 1) for i in range(d, -1, -1)]
        self.coef = np.zeros((2, len(self.terms)))  # rows: u, v

    def _basis(self, xy: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
        """``[N, T]`` values (or derivatives per pixel) of the terms at ``xy`` ``[N, 2]``."""
        x, y = ((xy - self.centre) / self.scale).T
        cols = []
        for i, j in self.terms:
            if i < dx or j < dy:
                cols.append(np.zeros_like(x))
                continue
            c = math.perm(i, dx) * math.perm(j, dy) / self.scale ** (dx + dy)
            cols.append(c * x ** (i - dx) * y ** (j - dy))
        return np.stack(cols, axis=1)

    def fit(self, freq: TileFrequencies, keep: np.ndarray) -> np.ndarray:
        """Least-squares fit of the gradients of the kept tiles; per-tile residual ``[N]``
        (mm/px, the larger of the two families')."""
        bx, by = self._basis(freq.centre, dx=1), self._basis(freq.centre, dy=1)
        sw = np.sqrt(freq.weight)[:, None]
        design = np.r_[bx[keep] * sw[keep], by[keep] * sw[keep]]
        res = []
        for k, grad in enumerate((freq.grad_u, freq.grad_v)):
            target = np.r_[grad[keep, 0] * sw[keep, 0], grad[keep, 1] * sw[keep, 0]]
            self.coef[k] = np.linalg.lstsq(design, target, rcond=None)[0]
            pred = np.c_[bx @ self.coef[k], by @ self.coef[k]]
            res.append(np.hypot(*(pred - grad).T))
        return np.maximum(*res)

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """``[N, 2]`` paper mm of image points ``xy`` ``[N, 2]``."""
        return self._basis(xy) @ self.coef.T

    def jacobian(self, xy: np.ndarray) -> np.ndarray:
        """``[N, 2, 2]``: ``d(u, v) / d(x, y)``."""
        jx = self._basis(xy, dx=1) @ self.coef.T  # [N, 2]: du/dx, dv/dx
        jy = self._basis(xy, dy=1) @ self.coef.T
        return np.stack([jx, jy], axis=2)

    def invert(self, uv: np.ndarray, start: np.ndarray, steps: int = 5) -> np.ndarray:
        """Image points ``[N, 2]`` that map to ``uv`` ``[N, 2]`` (Newton from ``start``)."""
        xy = start.astype(np.float64).copy()
        for _ in range(steps):
            err = self(xy) - uv
            xy -= np.linalg.solve(self.jacobian(xy), err[..., None])[..., 0]
        return xy


@dataclass
class DenseWarp:
    """The result of :func:`dense_dewarp`.

    Attributes:
        map_x, map_y: ``float32 [h, w]``: input pixel of every rectified pixel (``cv2.remap``).
        px_per_mm: scale of the rectified page (the same along x and y by construction).
        rotation_deg: mean angle of the horizontal lines in the input (as in ``grid``).
        tiles: tiles that carried the fit (after trimming) / tiles that showed the grid.
        region: ``[K, 2]`` polygon (rectified px): the hull of the tiles that showed the grid
            (:data:`REGION_REACH`). Outside it lies no grid: a desk, a border, the page's edge.
    """

    map_x: np.ndarray
    map_y: np.ndarray
    px_per_mm: float
    rotation_deg: float
    tiles: tuple[int, int]
    region: np.ndarray


def _page_scale(evidence: np.ndarray, prior_ppm: float) -> float | None:
    """The 1 mm spacing (px) in the strongest local spectral peaks, read as the 1 mm, 2.5 mm or
    5 mm spacing, whichever is closest to ``prior_ppm``."""
    h, w = evidence.shape
    n = int(np.clip(2 ** round(math.log2(min(h, w) / 4)), 64, 512))
    periods, weights = [], []
    f = (np.arange(n) - n // 2) / n
    fx, fy = np.meshgrid(f, f)
    r = np.hypot(fx, fy)
    ring = (r > 1 / (5 * MAX_PPM)) & (r < 1 / MIN_PPM) & (fy >= 0)
    for y0 in range(0, max(h - n, 0) + 1, n):
        for x0 in range(0, max(w - n, 0) + 1, n):
            tile = evidence[y0 : y0 + n, x0 : x0 + n]
            if tile.shape != (n, n) or tile.std() < 1e-4:
                continue
            spec = _spectrum(tile.astype(np.float64), pad=1)
            vals = np.where(ring, spec, -np.inf)
            k = int(np.argmax(vals))
            periods.append(1.0 / r.flat[k])
            weights.append(math.exp(spec.flat[k] - np.median(spec[ring])))
    if not periods:
        return None
    logp = np.log(periods)
    order = np.argsort(logp)
    cw = np.cumsum(np.asarray(weights)[order])
    p = float(np.exp(logp[order][np.searchsorted(cw, 0.5 * cw[-1])]))
    readings = [p / k for k in (1.0, 2.5, 5.0) if 2.0 <= p / k <= 16.0]
    return min(readings, key=lambda q: abs(math.log(q / prior_ppm))) if readings else None


def dense_dewarp(evidence: np.ndarray, prior_ppm: float, degree: int | None = None
                 ) -> DenseWarp | None:  # fmt: skip
    """Dewarp a page from its grid's local frequencies (module docstring).

    Args:
        evidence: ``float32 [H, W]`` grid-line evidence with the ink taken out.
        prior_ppm: px/mm if the image were a full page (tells the 1 mm from the 5 mm spacing).
        degree: polynomial degree (default: 4 with >= 40 tiles, 3 with >= 20, else 2).

    Returns:
        A :class:`DenseWarp`, or ``None`` when too few tiles show the grid or the page is flat
        (the fitted map within :data:`BENT_MM` of an affine one everywhere).
    """
    ppm = _page_scale(evidence, prior_ppm)
    if ppm is None:
        return None
    freq = tile_frequencies(evidence, ppm)
    n = len(freq.weight)
    if n < MIN_TILES:
        return None
    # the scale the tiles measured (the first guess is the strongest peak's)
    ppm = float(np.median(1.0 / np.r_[np.hypot(*freq.grad_u.T), np.hypot(*freq.grad_v.T)]))
    if degree is None:
        degree = 4 if n >= 40 else 3 if n >= 20 else 2
    h, w = evidence.shape
    pm = PolyMap((h, w), degree)
    keep = np.ones(n, dtype=bool)
    for _ in range(3):
        res = pm.fit(freq, keep)
        limit = max(TRIM * float(np.median(res[keep])), 0.004 / ppm)
        new = res <= limit
        if new.sum() < MIN_TILES or (new == keep).all():
            break
        keep = new
    else:
        pm.fit(freq, keep)  # the last trimming still to be fitted
    # a flat page (a light grid the homography path did not trust) is not dewarped: the
    # polynomial's freedom would only add error there
    t = np.linspace(0, 1, 16)
    mesh = np.stack(np.meshgrid(t * (w - 1), t * (h - 1)), axis=-1).reshape(-1, 2)
    uv_mesh = pm(mesh)
    design = np.c_[mesh, np.ones(len(mesh))]
    affine = design @ np.linalg.lstsq(design, uv_mesh, rcond=None)[0]
    if np.abs(uv_mesh - affine).max() < BENT_MM:
        return None
    # the rectified canvas: the paper extent of the image border
    t = np.linspace(0, 1, 64)
    border = np.r_[np.c_[t * (w - 1), 0 * t], np.c_[t * (w - 1), 0 * t + h - 1],
                   np.c_[0 * t, t * (h - 1)], np.c_[0 * t + w - 1, t * (h - 1)]]  # fmt: skip
    jac = pm.jacobian(border)
    if not (np.linalg.det(jac) > 0).all():
        return None  # the fit folds over inside the page: not a plausible warp
    uv = pm(border)
    lo = uv.min(axis=0)
    size = np.ceil((uv.max(axis=0) - lo) * ppm).astype(int) + 1
    if not (np.isfinite(size).all() and (size < 3 * np.array([w, h]) + 10).all()):
        return None
    ow, oh = int(size[0]), int(size[1])
    gx = np.arange(0, ow + MAP_STEP, MAP_STEP, dtype=np.float64)
    gy = np.arange(0, oh + MAP_STEP, MAP_STEP, dtype=np.float64)
    X, Y = np.meshgrid(gx, gy)
    target = np.c_[X.ravel(), Y.ravel()] / ppm + lo
    # start from the linear part of the map at the page centre
    c = pm.centre[None]
    j0 = pm.jacobian(c)[0]
    start = c + np.linalg.solve(j0, (target - pm(c)).T).T
    xy = pm.invert(target, start)
    coarse = xy.reshape(len(gy), len(gx), 2).astype(np.float32)
    # coarse sample (i, j) belongs to output pixel (j * MAP_STEP, i * MAP_STEP)
    px, py = np.meshgrid(np.arange(ow, dtype=np.float32) / MAP_STEP,
                         np.arange(oh, dtype=np.float32) / MAP_STEP)  # fmt: skip
    full = cv2.remap(coarse, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # the region: the tiles that showed the grid, each to REGION_REACH of its side around its
    # centre (a tile half on the desk still shows the grid)
    half = REGION_REACH * tile_side(ppm)
    corners = freq.centre[:, None, :] + half * np.array([[-1, -1], [1, -1], [1, 1], [-1, 1.0]])
    seen = (pm(corners.reshape(-1, 2)) - lo) * ppm
    region = cv2.convexHull(seen.astype(np.float32))[:, 0].astype(np.float64)
    rot = float(np.degrees(np.median(np.arctan2(-freq.grad_v[keep, 0], freq.grad_v[keep, 1]))))
    return DenseWarp(
        np.ascontiguousarray(full[..., 0]), np.ascontiguousarray(full[..., 1]), ppm, rot,
        (int(keep.sum()), n), region,
    )  # fmt: skip
