"""Grid and geometry: page rotation and perspective from a Hough transform of grid-line
evidence, and the grid spacing (px/mm) from the rectified line positions.

Steps (all on the CPU with OpenCV/numpy; a 200-dpi page takes ~0.1 s):

1. **Evidence.** Thin dark lines on the paper: a black-hat (closing minus image) of the darkest
   channel's complement, so coloured grids (red, green, blue) and grey ones both count, and
   smooth shading does not.
2. **Hough.** The probabilistic Hough transform on the thresholded evidence, with the ink
   (traces, text: dark in every channel) taken out, finds long straight segments. Grid lines
   give two families 90 degrees apart; their length-weighted median angle is the rotation.
   When the page was photographed at an angle, the lines of a family converge: a vanishing
   point is fitted to each family (least squares on homogeneous line coordinates) and a
   homography makes both families parallel and axis-aligned again.
3. **Spacing.** On the rectified evidence, the long straight strokes (an opening along each
   axis: grid lines of any colour stay, traces and dots go) give column and row profiles that
   are periodic with the 1 mm minor and 5 mm major lines. A comb fitted to their
   autocorrelation gives the 5 mm period to a fraction of a pixel, separately along x and y.

When there is no usable grid (plain paper, heavy blur), the page size gives px/mm (letter or A4,
landscape, full page) and the result says so (``source="page-size"``, low ``confidence``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ecgsynth.layout import PAPER_SIZES_MM

from .channels import channel_max, channel_min
from .dewarp import MAX_PPM, MIN_PPM, dense_dewarp

HOUGH_LONG_SIDE = 800  # the Hough transform runs on a copy scaled to this long side
MIN_ROTATION_DEG = 0.02  # smaller tilts move a 250 mm row by < 1 px end to end: not resampled
MIN_CONFIDENCE = 0.35  # weaker periodicity is not trusted as a grid (text, rows of traces)
CONVERGENCE_SIGMAS = 5.0  # a line family converges when its angle trend is this significant
MIN_CONVERGENCE_DEG = 0.3  # ... and changes the angle by at least this much across the page
DRIFT_STRIP_MM = 10.0  # grid_drift: strip width along the row
DRIFT_BAND_MM = 12.0  # ... rows within this of the row's baseline
DRIFT_MIN_STRENGTH = 0.3  # ... a strip's 1 mm periodicity (|Fourier| / L1) to be trusted
INK_DARKNESS = 0.55  # brighter than this fraction of the paper in its brightest channel: not ink


@dataclass
class GridEstimate:
    """Geometry of one page image.

    Attributes:
        homography: ``[3, 3]`` float64, input image pixel -> rectified pixel.
        size: ``(h, w)`` of the rectified image.
        rotation_deg: angle of the page's horizontal lines in the input, degrees in image
            coordinates (x right, y down: positive is clockwise on screen); rectification undoes it.
        perspective: ``True`` when converging grid lines were corrected.
        px_per_mm_x, px_per_mm_y: grid scale of the rectified image.
        confidence: 0..1, how periodic the grid looked (0 = fallback used).
        source: ``grid`` (measured) or ``page-size`` (assumed from the image size).
        notes: human-readable remarks (fallbacks, doubts).
        warp: ``(map_x, map_y)``, ``float32 [h, w]`` each: the input pixel of every rectified
            pixel, when the page was dewarped densely (:mod:`digitizer.dewarp`; then
            ``homography`` is the identity and unused), else ``None``.
        region: ``[K, 2]`` polygon (rectified px) outside which the page shows no grid (a desk,
            a border), when that was measured (dense dewarping), else ``None``.
    """

    homography: np.ndarray
    size: tuple[int, int]
    rotation_deg: float
    perspective: bool
    px_per_mm_x: float
    px_per_mm_y: float
    confidence: float
    source: str
    notes: list[str] = field(default_factory=list)
    warp: tuple[np.ndarray, np.ndarray] | None = None
    region: np.ndarray | None = None

    def outside(self) -> np.ndarray | None:
        """``bool [h, w]``: rectified pixels outside :attr:`region` (``None`` without one)."""
        if self.region is None:
            return None
        inside = np.zeros(self.size, np.uint8)
        cv2.fillPoly(inside, [np.round(self.region).astype(np.int32)], 1)
        return inside == 0

    @property
    def px_per_mm(self) -> float:
        """Mean of the x and y scales."""
        return 0.5 * (self.px_per_mm_x + self.px_per_mm_y)

    def rectify(self, image: np.ndarray, interpolation: int = cv2.INTER_LINEAR,
                border: float | tuple = 1.0) -> np.ndarray:  # fmt: skip
        """Warp ``image`` ``[H, W(, C)]`` into the rectified frame ``[h, w(, C)]``."""
        h, w = self.size
        if isinstance(border, (int, float)) and image.ndim == 3:
            border = (border,) * image.shape[2]
        if self.warp is not None:
            return cv2.remap(image, *self.warp, interpolation,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=border)  # fmt: skip
        if np.allclose(self.homography, np.eye(3)) and image.shape[:2] == (h, w):
            return image
        return cv2.warpPerspective(
            image, self.homography, (w, h), flags=interpolation,
            borderMode=cv2.BORDER_CONSTANT, borderValue=border,
        )  # fmt: skip

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Map rectified ``(x, y)`` points ``[..., 2]`` back to input pixels."""
        if self.warp is not None:
            pts = np.asarray(points, dtype=np.float32).reshape(1, -1, 2)
            out = [cv2.remap(m, pts[..., 0], pts[..., 1], cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)[0] for m in self.warp]  # fmt: skip
            return np.stack(out, axis=-1).astype(np.float64).reshape(np.shape(points))
        return _apply_h(np.linalg.inv(self.homography), points)


def _apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    flat = pts.reshape(-1, 2)
    hom = np.c_[flat, np.ones(len(flat))] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :2] / hom[:, 2:3]
    return out.reshape(pts.shape)


def line_evidence(image: np.ndarray) -> np.ndarray:
    """Thin-dark-line evidence ``float32 [H, W]`` in [0, 1] of an RGB float image ``[H, W, 3]``.

    Uses the darkest channel, so a red grid on white paper (dark in green/blue) counts as much as
    a grey one; a black-hat with a kernel wider than grid lines and traces removes paper shading.
    """
    darkest = channel_min(image) if image.ndim == 3 else image
    inv = (1.0 - darkest).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (_shading_kernel(image),) * 2)
    return np.clip(inv - cv2.morphologyEx(inv, cv2.MORPH_OPEN, kernel), 0.0, 1.0)


def _shading_kernel(image: np.ndarray) -> int:
    return max(3, int(round(min(image.shape[:2]) / 200)) | 1)


def without_ink(evidence: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``evidence`` with the ink taken out: pixels dark in *every* channel (traces, text; grid
    lines are light in at least one, or lighter than ink), so that a page dense with traces
    still shows its grid lines to the Hough transform."""
    if image.ndim != 3:
        return evidence
    k = _shading_kernel(image)
    brightest = channel_max(image).astype(np.float32)
    paper = cv2.blur(cv2.dilate(brightest, np.ones((k, k), np.uint8)), (k, k))
    ink = (brightest < INK_DARKNESS * np.maximum(paper, 0.2)).astype(np.uint8)
    out = evidence.copy()
    out[cv2.dilate(ink, np.ones((3, 3), np.uint8)) > 0] = 0.0
    return out


def straight_lines(evidence: np.ndarray, axis: int) -> np.ndarray:
    """The long straight strokes of rectified ``evidence`` along ``axis`` (1: horizontal lines,
    0: vertical): a grey-level opening with a line ~1/15 of the page's short side, which keeps
    grid lines whatever their colour and removes traces, text and dots."""
    n = max(9, int(round(min(evidence.shape) / 15)))
    kernel = np.ones((1, n) if axis == 1 else (n, 1), np.uint8)
    return cv2.morphologyEx(evidence, cv2.MORPH_OPEN, kernel)


def _hough_segments(evidence: np.ndarray) -> np.ndarray:
    """Long straight segments ``[N, 4]`` (x0, y0, x1, y1) in input pixels."""
    h, w = evidence.shape
    scale = min(1.0, HOUGH_LONG_SIDE / max(h, w))
    small = cv2.resize(evidence, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    thr = max(0.04, float(np.percentile(small, 93)))
    binary = (small > thr).astype(np.uint8) * 255
    min_len = int(0.15 * min(small.shape))
    segs = cv2.HoughLinesP(
        binary, rho=1, theta=math.pi / 720, threshold=max(30, min_len // 2),
        minLineLength=min_len, maxLineGap=max(3, int(0.01 * max(small.shape))),
    )  # fmt: skip
    if segs is None:
        return np.zeros((0, 4))
    return segs.reshape(-1, 4).astype(np.float64) / scale


def _fold90(angle_deg: np.ndarray) -> np.ndarray:
    """Fold angles into [-45, 45)."""
    return (angle_deg + 45.0) % 90.0 - 45.0


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _vanishing_point(segs: np.ndarray, weights: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Least-squares common point (homogeneous, in normalised coordinates) of segment lines."""
    p = np.c_[segs[:, :2], np.ones(len(segs))] @ norm.T
    q = np.c_[segs[:, 2:], np.ones(len(segs))] @ norm.T
    lines = np.cross(p, q)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    m = (lines * weights[:, None]).T @ lines
    _, vecs = np.linalg.eigh(m)
    return vecs[:, 0]


def _rotation_about(angle_rad: float, cx: float, cy: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    t = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    return r @ t


def _fit_canvas(h_mat: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Translate ``h_mat`` so the warped input fits a canvas; return it and the canvas size."""
    hh, ww = shape
    corners = np.array([[0, 0], [ww - 1, 0], [ww - 1, hh - 1], [0, hh - 1]], dtype=np.float64)
    out = _apply_h(h_mat, corners)
    x0, y0 = np.floor(out.min(axis=0))
    x1, y1 = np.ceil(out.max(axis=0))
    w, h = int(x1 - x0) + 1, int(y1 - y0) + 1
    if not (np.isfinite([x0, y0, x1, y1]).all() and 0 < w < 3 * ww + 10 and 0 < h < 3 * hh + 10):
        raise ValueError("rectification would blow the page up")
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]])
    return shift @ h_mat, (h, w)


def _fits_canvas(h_mat: np.ndarray, shape: tuple[int, int]) -> bool:
    try:
        _fit_canvas(h_mat, shape)
    except ValueError:
        return False
    return True


def estimate_geometry(evidence: np.ndarray, max_rotation_deg: float = 45.0
                      ) -> tuple[np.ndarray, tuple[int, int], float, bool, list[str]]:  # fmt: skip
    """Rotation (and perspective) from Hough segments of ``evidence`` ``[H, W]``.

    Returns ``(homography input->rectified, rectified size, rotation_deg, perspective, notes)``.
    """
    hh, ww = evidence.shape
    notes: list[str] = []
    segs = _hough_segments(evidence)
    if len(segs) < 4:
        notes.append("too few straight lines for a Hough rotation estimate; assuming 0 degrees")
        return np.eye(3), (hh, ww), 0.0, False, notes
    d = segs[:, 2:] - segs[:, :2]
    length = np.hypot(d[:, 0], d[:, 1])
    theta = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    folded = _fold90(theta)
    rot = _weighted_median(folded, length)
    near = np.abs(_fold90(folded - rot)) < 1.0
    # refine: length-weighted mean of the inliers (sub-bin precision)
    rot = rot + float(np.average(_fold90(folded[near] - rot), weights=length[near]))
    if abs(rot) > max_rotation_deg:
        notes.append(f"rotation {rot:.1f} deg outside ±{max_rotation_deg}; not corrected")
        return np.eye(3), (hh, ww), 0.0, False, notes

    horiz = near & (np.abs(((theta - rot) % 180) - 90) > 45)
    vert = near & ~horiz
    h_mat = _rotation_about(math.radians(-rot), (ww - 1) / 2, (hh - 1) / 2)
    perspective = False
    mid = 0.5 * (segs[:, :2] + segs[:, 2:])
    dev = _fold90(folded - rot)
    converging = _converges(dev[horiz], mid[horiz, 1] / hh, length[horiz]) or _converges(
        dev[vert], mid[vert, 0] / ww, length[vert]
    )
    if converging and horiz.sum() >= 3 and vert.sum() >= 3:
        h_persp = _perspective_correction(segs, length, horiz, vert, (hh, ww))
        if h_persp is not None and _fits_canvas(h_persp, (hh, ww)):
            h_mat, perspective = h_persp, True
        elif h_persp is not None:
            notes.append("converging grid lines gave an implausible perspective; rotation only")
    if not perspective and abs(rot) < MIN_ROTATION_DEG:
        return np.eye(3), (hh, ww), rot, False, notes  # resampling would blur more than it fixes
    h_mat, size = _fit_canvas(h_mat, (hh, ww))
    return h_mat, size, rot, perspective, notes


def spectral_rotation(evidence: np.ndarray, size: int = 1024) -> tuple[float, float]:
    """Rotation (deg, same convention as :func:`estimate_geometry`) of a dense periodic grid
    from the 2-D spectrum of the central ``size`` x ``size`` window of ``evidence``, and how
    strongly the peak stands out (peak / median of the ring, >= 1).

    A grid of period ``P`` px rotated by ``theta`` puts spectral peaks at radius ``1 / P`` in
    the directions ``theta`` and ``theta + 90``. Texture (wrinkles, shading) lives at low
    frequencies and is left out; JPEG's 8-px blocks put peaks exactly on the axes at multiples
    of 1/8, which are left out too. Unlike the Hough transform this needs no long unbroken line.
    """
    h, w = evidence.shape
    n = int(min(size, h, w))
    if n < 64:
        return 0.0, 1.0
    y0, x0 = (h - n) // 2, (w - n) // 2
    win = evidence[y0 : y0 + n, x0 : x0 + n].astype(np.float64)
    win = (win - win.mean()) * np.outer(np.hanning(n), np.hanning(n))
    mag = np.abs(np.fft.fftshift(np.fft.fft2(win)))
    f = (np.arange(n) - n // 2) / n
    fx, fy = np.meshgrid(f, f)
    radius = np.hypot(fx, fy)
    ring = (radius > 1.0 / (5 * MAX_PPM)) & (radius < 1.0 / MIN_PPM) & (fy >= 0)
    for k in range(1, 5):  # JPEG block harmonics on the axes
        for a, b in ((fx, fy), (fy, fx)):
            ring &= ~((np.abs(np.abs(a) - k / 8) <= 1.5 / n) & (np.abs(b) <= 1.5 / n))
    vals = np.where(ring, mag, 0.0)
    i = int(np.argmax(vals))
    contrast = float(vals.flat[i] / max(np.median(mag[ring]), 1e-12))
    angle = math.degrees(math.atan2(fy.flat[i], fx.flat[i]))
    return float(_fold90(np.array(angle))), contrast


def _converges(dev: np.ndarray, pos: np.ndarray, weight: np.ndarray) -> bool:
    """Whether the angles ``dev`` (deg) of one line family trend with their position ``pos``
    across the page (0..1): a weighted linear fit whose slope is both significant and large."""
    if len(dev) < 4 or np.ptp(pos) < 0.2:
        return False
    a = np.c_[np.ones_like(pos), pos] * np.sqrt(weight)[:, None]
    coef, *_ = np.linalg.lstsq(a, dev * np.sqrt(weight), rcond=None)
    resid = dev - coef[0] - coef[1] * pos
    dof = max(len(dev) - 2, 1)
    sigma2 = float(np.sum(weight * resid**2) / np.sum(weight)) * len(dev) / dof
    cov = sigma2 * np.linalg.inv(a.T @ a / np.mean(weight))
    se = math.sqrt(max(cov[1, 1], 1e-12))
    return (
        abs(coef[1]) > CONVERGENCE_SIGMAS * se and abs(coef[1]) * np.ptp(pos) > MIN_CONVERGENCE_DEG
    )


def _perspective_correction(
    segs: np.ndarray,
    length: np.ndarray,
    horiz: np.ndarray,
    vert: np.ndarray,
    shape: tuple[int, int],
) -> np.ndarray | None:
    """Homography that makes both line families parallel and axis-aligned, or ``None`` when the
    lines are parallel already (no measurable convergence)."""
    hh, ww = shape
    s = 2.0 / max(hh, ww)
    norm = np.array([[s, 0, -s * (ww - 1) / 2], [0, s, -s * (hh - 1) / 2], [0, 0, 1.0]])
    vh = _vanishing_point(segs[horiz], length[horiz], norm)
    vv = _vanishing_point(segs[vert], length[vert], norm)
    # a vanishing point beyond ~50 page sizes means parallel lines (< ~1 % convergence)
    far = 1.0 / 50.0
    if abs(vh[2]) < far * np.linalg.norm(vh[:2]) and abs(vv[2]) < far * np.linalg.norm(vv[:2]):
        return None
    horizon = np.cross(vh, vv)
    if abs(horizon[2]) < 1e-12:
        return None
    horizon = horizon / horizon[2]
    proj = np.array([[1, 0, 0], [0, 1, 0], horizon])
    # after the projective part both vanishing points lie at infinity: directions dh, dv
    dh = (proj @ vh)[:2]
    dv = (proj @ vv)[:2]
    if dh[0] < 0:
        dh = -dh
    if dv[1] < 0:
        dv = -dv
    # affine part: send dh to +x and dv to +y
    basis = np.c_[dh / np.linalg.norm(dh), dv / np.linalg.norm(dv)]
    if abs(np.linalg.det(basis)) < 0.5:
        return None
    aff = np.eye(3)
    aff[:2, :2] = np.linalg.inv(basis)
    h_mat = np.linalg.inv(norm) @ aff @ proj @ norm
    # keep the page's scale: the centre neighbourhood keeps its size
    c = np.array([(ww - 1) / 2, (hh - 1) / 2])
    j = np.array([_apply_h(h_mat, c + e) - _apply_h(h_mat, c) for e in np.eye(2)])
    scale = 1.0 / math.sqrt(abs(np.linalg.det(j)))
    if not np.isfinite(scale) or not 0.3 < scale < 3.0:
        return None
    return np.diag([scale, scale, 1.0]) @ h_mat


def _autocorr(profile: np.ndarray) -> np.ndarray:
    x = profile - profile.mean()
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(f * np.conj(f))[:n]
    return ac / (ac[0] + 1e-12)


def _comb_score(ac: np.ndarray, period: np.ndarray, harmonics: int) -> np.ndarray:
    """Mean autocorrelation at multiples of each ``period`` (linear interpolation)."""
    lags = period[:, None] * np.arange(1, harmonics + 1)[None, :]
    ok = lags < len(ac) - 1
    val = np.interp(np.where(ok, lags, 0), np.arange(len(ac)), ac)
    return (val * ok).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)


def _profile(ev: np.ndarray, axis: int) -> np.ndarray:
    """Detrended grid profile along ``axis`` (1: x, 0: y) of the rectified evidence."""
    prof = ev.mean(axis=1 - axis).astype(np.float64)
    return prof - cv2.GaussianBlur(prof[None, :], (0, 0), sigmaX=25.0).ravel()


def grid_periods(profile_x: np.ndarray, profile_y: np.ndarray, prior_ppm: float | None = None
                 ) -> tuple[float, float, float]:  # fmt: skip
    """5 mm periods (px) along x and y of a square grid, and a confidence (0..1).

    A comb over the autocorrelation of both profiles (lightly smoothed, so that 1-px lines at a
    non-integer period still score between integer lags) picks the shortest period shared by
    the two axes (scored by the weaker axis, since a grid is square while rows of traces repeat
    only down the page). That period is the 1 mm or the 5 mm line spacing: when the comb five
    times longer is clearly stronger (heavier 5 mm lines), it was the 1 mm one; when the two
    are alike (all lines equally dark, or only 5 mm lines printed) the reading whose px/mm is
    possible and closest to ``prior_ppm`` (the scale of a full page) wins. Each axis is then
    refined on its own (within ±3 %) with every harmonic the profile holds, to ~0.01 px.
    """
    profiles = [cv2.GaussianBlur(p[None, :], (0, 0), sigmaX=0.8).ravel() for p in
                (profile_x, profile_y)]  # fmt: skip
    acs = [_autocorr(p) for p in profiles]
    n = min(len(profile_x), len(profile_y))
    periods = np.arange(MIN_PPM, min(5 * MAX_PPM, n / 3), 0.05)
    if len(periods) == 0:
        return float("nan"), float("nan"), 0.0

    def joint(p: np.ndarray) -> np.ndarray:
        # the weaker axis: a square grid repeats along both, rows of traces only along y
        return np.minimum(*(_comb_score(ac, p, harmonics=6) for ac in acs))

    score = joint(periods)
    best = float(score.max())
    if best <= 0:
        return float("nan"), float("nan"), 0.0
    k = int(np.flatnonzero(score >= 0.85 * best)[0])
    while k + 1 < len(score) and score[k + 1] >= score[k]:
        k += 1
    p = float(periods[k])
    # a fine grid can score its own period lower than a multiple of it, e.g. when the
    # horizontal profile also holds the rows of traces: take the shortest divisor that one axis
    # supports nearly as well and the other at least shows
    at_p = [_comb_score(ac, np.array([p]), 6)[0] for ac in acs]
    for div in range(9, 1, -1):
        q = p / div
        if q < MIN_PPM:
            continue
        at_q = [_comb_score(ac, np.array([q]), 6)[0] for ac in acs]
        if max(a / max(b, 1e-6) for a, b in zip(at_q, at_p)) >= 0.8 and min(at_q) > 0.1:
            p = q
            break
    as_1mm_ok = MIN_PPM <= p <= MAX_PPM and 5 * p < n / 3
    as_5mm_ok = MIN_PPM <= p / 5 <= MAX_PPM
    if as_1mm_ok and joint(np.array([5 * p]))[0] > 1.3 * joint(np.array([p]))[0]:
        p5 = 5 * p  # heavier 5 mm lines: p is the 1 mm spacing
    elif as_1mm_ok and as_5mm_ok:
        prior = prior_ppm if prior_ppm else p / 5
        p5 = 5 * p if abs(np.log(p / prior)) < abs(np.log(p / 5 / prior)) else p
    else:
        p5 = 5 * p if as_1mm_ok else p
    conf = float(np.clip(joint(np.array([p5]))[0], 0.0, 1.0))
    out = []
    for ac, prof in zip(acs, profiles):
        fine = np.linspace(0.97 * p5, 1.03 * p5, 241)
        sc = _comb_score(ac, fine, harmonics=max(6, int(len(prof) / p5 / 2)))
        out.append(float(fine[np.argmax(sc)]))
    return out[0], out[1], conf


def page_size_scale(shape: tuple[int, int]) -> tuple[float, str]:
    """px/mm assuming the image is a full landscape letter or A4 page (closest aspect)."""
    h, w = shape
    if h > w:
        h, w = w, h
    best = min(PAPER_SIZES_MM.items(), key=lambda kv: abs(kv[1][0] / kv[1][1] - w / h))
    name, (wm, hm) = best
    return 0.5 * (w / wm + h / hm), name


def grid_drift(image: np.ndarray, ink: np.ndarray, y: float, x_lo: int, x_hi: int, ppm: float
               ) -> np.ndarray | None:  # fmt: skip
    """How far (px) the horizontal grid lines near row ``y`` of a rectified page sit lower at
    column x than a straight, level line, up to a constant: the coefficients ``c`` of
    ``np.polyval(c, x)``, measured over the columns ``x_lo..x_hi``.

    A rotation or perspective that the rectification left tilts a row's 0 mV line by a pixel
    or more over its length (0.1 mV on the lead farthest from the pulse); the grid shows it.
    In strips :data:`DRIFT_STRIP_MM` wide, the phase of the 1 mm period of the darkness profile
    over the rows within :data:`DRIFT_BAND_MM` of ``y`` (trace pixels, ``ink > 0.3``, left
    out) gives the lines' offset; the offsets, unwrapped along the row, are fitted by a
    quadratic in x. ``None`` where the grid is too weak or the drift implausible (over 1.5 mm
    along the row). ``image`` ``[H, W, 3]``, ``ink`` ``[H, W]``."""
    h, w = ink.shape
    half, strip = int(DRIFT_BAND_MM * ppm), max(4, int(DRIFT_STRIP_MM * ppm))
    r0, r1 = max(0, int(y) - half), min(h, int(y) + half)
    x_lo, x_hi = max(0, x_lo), min(w - 1, x_hi)
    if r1 - r0 < 4 * ppm or x_hi - x_lo < 3 * strip:
        return None
    dark = 1.0 - image[r0:r1].mean(axis=2)
    dark = np.where(ink[r0:r1] > 0.3, np.nan, dark)
    wave = np.exp(-2j * np.pi * np.arange(r0, r1) / ppm)
    xs, phase = [], []
    for a in range(x_lo, x_hi - strip + 2, strip):
        block = dark[:, a : a + strip]
        seen = np.isfinite(block).mean(axis=1) > 0.5
        if seen.mean() < 0.5:
            continue
        prof = np.zeros(len(block))
        prof[seen] = np.nanmean(block[seen], axis=1)
        prof[seen] -= prof[seen].mean()
        z, l1 = np.sum(prof * wave), np.sum(np.abs(prof))
        if l1 > 1e-6 and abs(z) >= DRIFT_MIN_STRENGTH * l1:
            xs.append(a + 0.5 * (strip - 1))
            phase.append(np.angle(z))
    if len(xs) < 3:
        return None
    dy = -np.unwrap(np.asarray(phase)) / (2 * np.pi) * ppm
    coef = np.polyfit(np.asarray(xs), dy, min(2, len(xs) - 2))
    coef[-1] = 0.0  # the level is the baseline's to tell: only the tilt along the row counts
    drift = np.polyval(coef, np.arange(x_lo, x_hi + 1, dtype=np.float64))
    return coef if np.ptp(drift) <= 1.5 * ppm else None


def _dense_estimate(ev: np.ndarray, ev_no_ink: np.ndarray, prior_ppm: float
                    ) -> GridEstimate | None:  # fmt: skip
    """The page dewarped from its grid's local frequencies (:func:`digitizer.dewarp.dense_dewarp`),
    when that leaves a grid periodic enough to trust; else ``None``."""
    warp = dense_dewarp(ev_no_ink, prior_ppm)
    if warp is None:
        return None
    ev_d = cv2.remap(ev, warp.map_x, warp.map_y, cv2.INTER_LINEAR)
    px, py, conf = grid_periods(
        _profile(straight_lines(ev_d, axis=0), axis=1),
        _profile(straight_lines(ev_d, axis=1), axis=0),
        prior_ppm=warp.px_per_mm,
    )
    if not (np.isfinite(px) and np.isfinite(py) and conf > MIN_CONFIDENCE):
        return None
    note = (f"grid lines bent (curl, folds or a steep angle): page dewarped from the grid's local "
            f"spacing in {warp.tiles[0]} of {warp.tiles[1]} tiles")  # fmt: skip
    return GridEstimate(
        np.eye(3), ev_d.shape, warp.rotation_deg, True, px / 5, py / 5, conf, "grid", [note],
        warp=(warp.map_x, warp.map_y), region=warp.region,
    )  # fmt: skip


def detect_grid(image: np.ndarray, max_rotation_deg: float = 45.0) -> GridEstimate:
    """Estimate the geometry of an RGB page image (float ``[H, W, 3]`` in [0, 1] or uint8).

    Returns a :class:`GridEstimate`; never raises on a page without grid (falls back, says so).
    """
    img = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    ev = line_evidence(img)
    prior, paper = page_size_scale(image.shape[:2])  # px/mm as a full page
    ev_no_ink = without_ink(ev, img)
    h_mat, size, rot, persp, notes = estimate_geometry(ev_no_ink, max_rotation_deg)
    ev_r = cv2.warpPerspective(ev, h_mat, (size[1], size[0]), flags=cv2.INTER_LINEAR)
    px, py, conf = grid_periods(
        _profile(straight_lines(ev_r, axis=0), axis=1),  # vertical lines: the x profile
        _profile(straight_lines(ev_r, axis=1), axis=0),
        prior_ppm=prior,
    )
    ok = np.isfinite(px) and np.isfinite(py) and conf > MIN_CONFIDENCE
    if not ok:
        # the Hough transform needs long unbroken lines; a dense grid under wrinkles, shading
        # or noise still shows in the spectrum
        spec_rot, contrast = spectral_rotation(ev)
        if contrast > 8.0 and abs(spec_rot) <= max_rotation_deg and abs(spec_rot - rot) > 0.2:
            h_s, size_s = _fit_canvas(
                _rotation_about(
                    math.radians(-spec_rot), (img.shape[1] - 1) / 2, (img.shape[0] - 1) / 2
                ),
                img.shape[:2],
            )
            ev_s = cv2.warpPerspective(ev, h_s, (size_s[1], size_s[0]), flags=cv2.INTER_LINEAR)
            qx, qy, qconf = grid_periods(
                _profile(straight_lines(ev_s, axis=0), axis=1),
                _profile(straight_lines(ev_s, axis=1), axis=0),
                prior_ppm=prior,
            )
            if np.isfinite(qx) and np.isfinite(qy) and qconf > MIN_CONFIDENCE:
                notes.append(f"rotation {spec_rot:.2f} deg from the grid's spectrum")
                h_mat, size, rot, persp = h_s, size_s, spec_rot, False
                px, py, conf, ok = qx, qy, qconf, True
    if ok:
        return GridEstimate(h_mat, size, rot, persp, px / 5, py / 5, conf, "grid", notes)
    dense = _dense_estimate(ev, ev_no_ink, prior)
    if dense is not None:
        return dense
    notes.append(
        f"no usable grid (periodicity {conf:.2f}); px/mm {prior:.2f} assumed from the image size "
        f"as a full {paper} page"
    )
    return GridEstimate(h_mat, size, rot, persp, prior, prior, 0.0, "page-size", notes)
