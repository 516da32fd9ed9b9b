"""Scores for a digitised ECG against its ground truth: signal fidelity and clinical intervals.

Signal fidelity follows the George B. Moody PhysioNet Challenge 2024 (ECG image digitisation).
What the official code does, as read in ``physionetchallenges/evaluation-2024`` and the final
(July 2024) ``helper_code.py`` distributed with the Challenge (``compute_snr``, ``align_signals``,
and ``evaluate_model.py``'s loop over channels):

* **SNR** per record and lead: over the samples that are finite in *both* signals,
  ``10*log10(mean(x**2) / mean((x - x_hat)**2))``, then multiplied by
  ``alpha = (#samples finite in both) / (#samples finite in the reference)``.  A shorter estimate is
  padded with NaN (so the missing tail lowers ``alpha``); extra estimate samples are ignored.
* **Perfect reconstruction**: when the noise power is exactly zero the official code returns
  ``float('inf')`` (and ``NaN`` when the reference has zero power but the noise does not).  We do
  the same, so a perfect lead scores ``+inf`` and a mean over leads that contains one is ``+inf``;
  :func:`score_records` counts such leads (``n_perfect_leads``) so that this is visible.
* **Missing record / lead**: ARCHITECTURE.md section 5 scores it 0 dB, which is also what the
  earlier official evaluator gave (it replaced a missing output by zeros: ``10*log10(x/x) = 0``).
  The final official code fills a missing output with NaN, for which ``compute_snr`` yields
  ``0 * NaN = NaN`` that its ``np.nanmean`` then drops; we keep the 0 dB convention on purpose
  (a missing lead must cost something) and list every missing record and lead.
* **Aligned SNR** (:func:`aligned_snr_db`) is the final evaluator's alignment, reproduced from
  its description (``align_signals`` in the July 2024 ``helper_code.py``): both signals are drawn
  as binary ``256 x max(T, T')`` images (one pixel per finite sample; amplitude quantised to 256
  levels over the joint finite min..max, levels counted from 1 and rounded as
  ``round(255 * (v - lo) / (hi - lo) + 1)``), each smoothed with a Gaussian (sigma 0.5 px); the
  argmax of their full 2-D cross-correlation (``scipy.signal.fftconvolve`` in float64, as there)
  against the zero-lag cell gives the lag in samples and the vertical lag, converted back to mV.
  The estimate is then moved by that shift and offset **with no limit** (samples moved out are
  dropped, the vacated end is NaN, so it lowers ``alpha``; samples of a longer estimate can move
  into the window) and scored with the SNR above.  Where the official code has no defined value
  (an estimate with no finite sample) we keep the 0 dB of a missing lead.  (One revision of
  ``evaluate_model.py`` kept the shift only within ``round(0.5 fs)`` samples and 1 mV, else
  scored the lead unshifted; the alignment here has no such gate, per ARCHITECTURE.md section 5.)
* **Best-shift SNR** (:func:`best_shift_snr_db`) is *not* the Challenge's: the exact shift
  (``|shift| <= 0.5 s``) and offset (``|offset| <= 1 mV``) that maximise the score, found by an
  exhaustive search.  It bounds what any bounded alignment could give, and is useful when the
  quantised correlation is too coarse (e.g. for an offset smaller than one quantisation level).
  ``evaluate.py scoring.align_method=search`` adds it beside the Challenge value.

Clinical intervals use neurokit2 (``ecg_clean`` -> ``ecg_peaks`` -> ``ecg_delineate(method="dwt")``)
with one pipeline for truth and prediction; see :func:`beat_intervals` and
:func:`compare_intervals`.

Conventions: signals are numpy arrays, channels-first ``[12, T]`` in mV, lead order ``LEADS``;
NaN marks samples that were not digitised.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.fft import irfft, next_fast_len, rfft, set_workers
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: Quantisation and smoothing of the Challenge 2024 alignment (which has no limits).
NUM_QUANT_LEVELS = 2**8
SMOOTH_SIGMA = 0.5
#: Limits of the best-shift search (:func:`best_shift_snr_db`, not the Challenge's alignment).
MAX_SHIFT_S = 0.5
MAX_OFFSET_MV = 1.0
#: ``align_method`` values: the Challenge alignment only, or also the best-shift search.
ALIGN_METHODS = ("challenge", "search", "best_shift")

__all__ = [
    "LEADS",
    "aligned_snr_db",
    "align_estimate",
    "beat_intervals",
    "best_shift_snr_db",
    "challenge_offsets",
    "compare_intervals",
    "pearson_r",
    "rmse_mv",
    "score_record",
    "score_records",
    "snr_db",
]


# --------------------------------------------------------------------------------------------
# Signal fidelity
# --------------------------------------------------------------------------------------------


def _pair(reference: np.ndarray, estimate: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return float64 copies ``(x [T], y [T])``; ``y`` NaN-padded / truncated to ``T``."""
    x = np.asarray(reference, dtype=np.float64).ravel()
    if estimate is None:
        return x, np.full_like(x, np.nan)
    y = np.asarray(estimate, dtype=np.float64).ravel()
    if y.size < x.size:
        y = np.concatenate([y, np.full(x.size - y.size, np.nan)])
    return x, y[: x.size]


def snr_db(reference: np.ndarray, estimate: np.ndarray | None) -> float:
    """PhysioNet Challenge 2024 SNR of one lead, in dB.

    Args:
        reference: ground truth ``[T]`` in mV (non-finite samples are not scored).
        estimate: digitised lead ``[T']`` in mV, NaN where not digitised; ``None`` = missing.
            A shorter estimate counts as NaN at the end; extra samples are ignored.

    Returns:
        ``alpha * 10*log10(mean(x**2) / mean((x - x_hat)**2))`` over samples finite in both, with
        ``alpha`` the fraction of finite reference samples that are finite in the estimate.
        ``+inf`` for zero noise (the official code's perfect score), ``0.0`` when nothing was
        digitised (or the lead is missing), ``NaN`` when the reference has no power but the
        noise has some, or when the reference has no finite sample.
    """
    x, y = _pair(reference, estimate)
    ref_ok = np.isfinite(x)
    n_ref = int(ref_ok.sum())
    if n_ref == 0:
        return float("nan")
    both = ref_ok & np.isfinite(y)
    n_both = int(both.sum())
    if n_both == 0:
        return 0.0
    xs, ys = x[both], y[both]
    p_signal = float(np.mean(xs**2))
    p_noise = float(np.mean((xs - ys) ** 2))
    if p_noise == 0.0:
        value = math.inf
    elif p_signal > 0.0:
        value = 10.0 * math.log10(p_signal / p_noise)
    else:
        return float("nan")
    return value * (n_both / n_ref)


def pearson_r(reference: np.ndarray, estimate: np.ndarray | None) -> float:
    """Pearson correlation over samples finite in both ``[T]`` signals (NaN if undefined)."""
    x, y = _pair(reference, estimate)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    xs, ys = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    den = math.sqrt(float(np.sum(xs**2)) * float(np.sum(ys**2)))
    return float(np.sum(xs * ys) / den) if den > 0 else float("nan")


def rmse_mv(reference: np.ndarray, estimate: np.ndarray | None) -> float:
    """Root-mean-square error in mV over samples finite in both ``[T]`` signals (NaN if none)."""
    x, y = _pair(reference, estimate)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(np.mean((x[ok] - y[ok]) ** 2)))


def _apply_shift(y: np.ndarray, shift: int, offset: float, length: int) -> np.ndarray:
    """``out[t] = y[t + shift] - offset`` for ``t < length``; NaN where ``t + shift`` is outside."""
    out = np.full(length, np.nan)
    lo, hi = max(0, -shift), min(length, y.size - shift)
    if hi > lo:
        out[lo:hi] = y[lo + shift : hi + shift] - offset
    return out


def _signal_image(v: np.ndarray, lo: float, hi: float, levels: int, width: int) -> np.ndarray:
    """Binary ``[levels, width]`` image of a 1-D signal: one pixel per finite sample.

    Row ``level - 1`` with ``level = round((levels - 1) * (v - lo) / (hi - lo) + 1)`` clipped to
    ``1..levels`` (the Challenge counts levels from 1; rounding after the ``+ 1`` matters at exact
    halves, where numpy rounds to even).  A flat joint range puts every sample on the first row.
    """
    img = np.zeros((levels, width))
    t = np.flatnonzero(np.isfinite(v))
    if hi > lo:
        level = np.round((levels - 1) * (v[t] - lo) / (hi - lo) + 1).astype(np.int64)
        rows = np.clip(level, 1, levels) - 1
    else:
        rows = np.zeros(t.size, dtype=np.int64)
    img[rows, t] = 1.0
    return img


def challenge_offsets(
    reference: np.ndarray,
    estimate: np.ndarray,
    levels: int = NUM_QUANT_LEVELS,
    sigma: float = SMOOTH_SIGMA,
) -> tuple[int, float]:
    """Shift (samples) and offset (mV) as the Challenge 2024 evaluator estimates them.

    Both signals become smoothed ``levels x max(T, T')`` images over their joint finite amplitude
    range; the argmax of the full 2-D cross-correlation, taken against the zero-lag cell, gives
    the lags.  (The official code finds the zero-lag cell as the argmax of the reference's
    autocorrelation: for any non-empty image that is the centre ``(levels - 1, width - 1)``, by
    Cauchy-Schwarz, so the centre is used directly.)  The correlation is the same float64
    ``fftconvolve`` of the same arrays, so near-ties resolve as they do there.

    Args:
        reference: ground truth ``[T]`` in mV (NaN = not scored).
        estimate: digitised lead ``[T']`` in mV (NaN = not digitised); any length.
        levels: amplitude quantisation levels (Challenge: 256).
        sigma: Gaussian smoothing of both images in pixels (Challenge: 0.5).

    Returns:
        ``(shift, offset)``: the estimate lags the reference by ``shift`` samples and sits
        ``offset`` mV above it; ``(0, 0.0)`` if either signal has no finite sample.
    """
    x = np.asarray(reference, dtype=np.float64).ravel()
    y = np.asarray(estimate, dtype=np.float64).ravel()
    fx, fy = np.isfinite(x), np.isfinite(y)
    if not (fx.any() and fy.any()):
        return 0, 0.0
    lo = min(float(x[fx].min()), float(y[fy].min()))
    hi = max(float(x[fx].max()), float(y[fy].max()))
    width = max(x.size, y.size)
    img_x = gaussian_filter(_signal_image(x, lo, hi, levels, width), sigma)
    img_y = gaussian_filter(_signal_image(y, lo, hi, levels, width), sigma)
    with set_workers(-1):  # threads split independent 1-D FFTs: the result is bit-identical
        corr = fftconvolve(img_x, img_y[::-1, ::-1], mode="full")  # full 2-D cross-correlation
    row, col = np.unravel_index(int(np.argmax(corr)), corr.shape)
    shift = (width - 1) - int(col)
    offset = ((levels - 1) - int(row)) / (levels - 1) * (hi - lo)
    return shift, float(offset)


def _lagged_sums(f: np.ndarray, g: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``c[k] = sum_t f[..., t] * g[..., t + lags[k]]`` for stacked rows, via FFT."""
    n = next_fast_len(f.shape[-1] + g.shape[-1] - 1, real=True)
    full = irfft(np.conj(rfft(f, n)) * rfft(g, n), n)
    return full[..., lags % n]


def _best_shift_offsets(
    x: np.ndarray, y: np.ndarray, max_shift: int, max_offset: float
) -> tuple[int, float]:
    """Shift and offset within the limits that maximise the Challenge SNR (alpha included).

    For each lag the best constant offset is the (clipped) mean difference over the overlap, so the
    search is one pass over lags; all per-lag sums are cross-correlations computed with FFTs.
    """
    a, b = np.isfinite(x).astype(float), np.isfinite(y).astype(float)
    xz, yz = np.where(a > 0, x, 0.0), np.where(b > 0, y, 0.0)
    lags = np.arange(-max_shift, max_shift + 1)
    left = np.stack([a, xz**2, a, xz, xz, a])
    right = np.stack([b, b, yz**2, yz, b, yz])
    n, sxx, syy, sxy, sx, sy = _lagged_sums(left, right, lags)
    n = np.round(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = sxx - 2.0 * sxy + syy  # sum (x - y_s)^2
        diff = sx - sy  # sum (x - y_s)
        offset = np.clip(-diff / n, -max_offset, max_offset)
        noise = np.maximum(dist + 2.0 * offset * diff + n * offset**2, 0.0) / n
        signal = sxx / n
        score = (n / a.sum()) * 10.0 * np.log10(signal / noise)
    score[~(n > 0) | ~np.isfinite(signal) | (signal <= 0)] = -np.inf
    score[np.isnan(score)] = -np.inf
    if np.all(score == -np.inf):
        return 0, 0.0
    shift = int(lags[int(np.argmax(score))])
    # FFT sums carry ~1e-13 rounding: settle the offset at the chosen lag in the sample domain,
    # trying "no offset" too so that a pure shift scores the exact perfect value (+inf)
    ys = _apply_shift(y, shift, 0.0, x.size)
    ok = np.isfinite(x) & np.isfinite(ys)
    best = float(np.clip(np.mean(ys[ok] - x[ok]), -max_offset, max_offset))
    if snr_db(x, ys) >= snr_db(x, ys - best):
        best = 0.0
    return shift, best


def _check_method(method: str) -> str:
    if method not in ALIGN_METHODS:
        raise ValueError(f"unknown alignment method {method!r} (use one of {ALIGN_METHODS})")
    return "challenge" if method == "challenge" else "best_shift"


def align_estimate(
    reference: np.ndarray,
    estimate: np.ndarray | None,
    fs: float | None = None,
    *,
    method: str = "challenge",
    max_shift_s: float | None = None,
    max_offset_mv: float | None = None,
) -> tuple[np.ndarray, int, float]:
    """Shift an estimate in time and amplitude to match its reference.

    Args:
        reference: ground truth ``[T]`` in mV.
        estimate: digitised lead ``[T']`` in mV (NaN = not digitised) or ``None``; samples past
            ``T`` take part in the alignment (they can move into the window).
        fs: sampling frequency in Hz; needed by ``"best_shift"`` (its lag limit in samples).
        method: ``"challenge"`` = the official 2-D quantised cross-correlation estimate,
            applied without limits (:func:`challenge_offsets`); ``"best_shift"`` (alias
            ``"search"``) = the exact best shift and offset within the limits -- not the
            Challenge's.
        max_shift_s: ``"best_shift"`` only: largest time shift in s (default 0.5).
        max_offset_mv: ``"best_shift"`` only: largest vertical offset in mV (default 1.0).

    Returns:
        ``(aligned [T], shift_samples, offset_mv)`` with ``aligned[t] = estimate[t + shift] -
        offset`` (NaN where unavailable).  ``shift > 0`` means the estimate was late.

    Raises:
        ValueError: for an unknown method, limits given to ``"challenge"`` (it has none), or
            ``"best_shift"`` without ``fs``.
    """
    kind = _check_method(method)
    if kind == "challenge" and (max_shift_s is not None or max_offset_mv is not None):
        raise ValueError("the Challenge alignment has no limits; use method='best_shift'")
    if kind == "best_shift" and not (fs is not None and fs > 0):
        raise ValueError(f"the best-shift search needs a positive fs, got {fs!r}")
    x, y = _pair(reference, estimate)
    if estimate is not None:
        y = np.asarray(estimate, dtype=np.float64).ravel()  # keep the samples past T for shifting
    if not (np.isfinite(x).any() and np.isfinite(y).any()):
        return _apply_shift(y, 0, 0.0, x.size), 0, 0.0
    if kind == "challenge":
        shift, offset = challenge_offsets(x, y)
    else:
        max_shift = int(round((MAX_SHIFT_S if max_shift_s is None else max_shift_s) * fs))
        limit = MAX_OFFSET_MV if max_offset_mv is None else max_offset_mv
        shift, offset = _best_shift_offsets(x, y, max_shift, limit)
    return _apply_shift(y, shift, offset, x.size), shift, offset


def aligned_snr_db(
    reference: np.ndarray, estimate: np.ndarray | None, fs: float | None = None
) -> float:
    """The Challenge 2024 aligned SNR of one lead in dB, exactly as the official evaluator has it.

    :func:`snr_db` after :func:`align_estimate` with ``method="challenge"``: the shift and offset
    of :func:`challenge_offsets`, applied without limits.  Samples shifted out of the window
    count as not digitised (they lower ``alpha``).

    Args:
        reference: ground truth ``[T]`` in mV.
        estimate: digitised lead ``[T']`` in mV (NaN = not digitised), any length, or ``None``.
        fs: accepted for symmetry with :func:`best_shift_snr_db`; the alignment works in
            samples and does not use it.

    Returns:
        The aligned SNR; ``0.0`` for a missing lead or one with no finite sample (where the
        official code has no value), ``+inf`` for a perfect match after alignment.
    """
    if estimate is None:
        return 0.0
    aligned, _, _ = align_estimate(reference, estimate, method="challenge")
    return snr_db(reference, aligned)


def best_shift_snr_db(
    reference: np.ndarray,
    estimate: np.ndarray | None,
    fs: float,
    *,
    max_shift_s: float = MAX_SHIFT_S,
    max_offset_mv: float = MAX_OFFSET_MV,
) -> float:
    """Best SNR over shifts ``|s| <= max_shift_s`` and offsets ``|c| <= max_offset_mv``, in dB.

    Not the Challenge's aligned SNR (that is :func:`aligned_snr_db`): an exact search that
    bounds what a bounded alignment can reach.  Args as in :func:`align_estimate`.
    """
    if estimate is None:
        return 0.0
    aligned, _, _ = align_estimate(
        reference,
        estimate,
        fs,
        method="best_shift",
        max_shift_s=max_shift_s,
        max_offset_mv=max_offset_mv,
    )
    return snr_db(reference, aligned)


def _fold(name: str) -> str:
    return str(name).strip().casefold()


def score_record(
    reference: np.ndarray,
    estimate: np.ndarray | None,
    fs: float,
    names: Sequence[str] = LEADS,
    estimate_names: Sequence[str] | None = None,
    *,
    record: str = "",
    align: bool = True,
    align_method: str = "challenge",
    max_shift_s: float = MAX_SHIFT_S,
    max_offset_mv: float = MAX_OFFSET_MV,
) -> list[dict[str, Any]]:
    """Score every reference lead of one record.

    Args:
        reference: ground truth ``[C, T]`` in mV, channel ``k`` named ``names[k]``.
        estimate: digitised ``[C', T']`` in mV (NaN = not digitised) or ``None`` (missing record).
        fs: sampling frequency in Hz, shared by both.
        names: reference lead names (default the 12 standard leads in ``LEADS`` order).
        estimate_names: lead names of the estimate's rows; ``None`` = same as ``names``.  Leads are
            matched case-insensitively, so any order is accepted; estimate leads that are not in
            the reference are ignored, reference leads absent from the estimate are missing.
        record: record id copied into each row.
        align: also compute the Challenge's aligned SNR (and its shift / offset).
        align_method: ``"challenge"``: the aligned SNR only; ``"search"`` (or ``"best_shift"``):
            also the best-shift SNR of :func:`best_shift_snr_db` (not the Challenge's).
        max_shift_s, max_offset_mv: limits of the best-shift search.

    Returns:
        One dict per reference lead: ``record, lead, status`` (``ok``, ``missing_record``,
        ``missing_lead``, ``not_digitised``, or ``no_reference`` when the reference lead has no
        finite sample -- then NaN, which the NaN-ignoring means skip), ``snr_db``,
        ``aligned_snr_db``, ``shift_s``, ``offset_mv`` (the Challenge alignment's),
        ``best_shift_snr_db``, ``best_shift_s``, ``best_offset_mv`` (NaN unless the best-shift
        search ran), ``pearson_r``, ``rmse_mv``, ``digitised_fraction``.  Missing or undigitised
        leads score 0 dB.
    """
    search = _check_method(align_method) == "best_shift" and align
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    names = list(names)
    if ref.shape[0] != len(names):
        raise ValueError(f"reference has {ref.shape[0]} channels but {len(names)} names")
    if len({_fold(n) for n in names}) != len(names):
        raise ValueError(f"duplicate reference lead names: {names}")
    rows_by_name: dict[str, np.ndarray] = {}
    if estimate is not None:
        est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
        est_names = names if estimate_names is None else list(estimate_names)
        if est.shape[0] != len(est_names):
            raise ValueError(f"estimate has {est.shape[0]} channels but {len(est_names)} names")
        if len({_fold(n) for n in est_names}) != len(est_names):
            raise ValueError(f"duplicate estimate lead names: {est_names}")
        rows_by_name = {_fold(n): est[i] for i, n in enumerate(est_names)}

    out: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        x = ref[k]
        y = rows_by_name.get(_fold(name))
        row: dict[str, Any] = {"record": record, "lead": name}
        if not np.isfinite(x).any():
            status = "no_reference"  # nothing to score: NaN, left out of the means
        elif y is None:
            status = "missing_record" if estimate is None else "missing_lead"
        else:
            _, y_t = _pair(x, y)
            ref_ok = np.isfinite(x)
            n_ref = int(ref_ok.sum())
            frac = float((ref_ok & np.isfinite(y_t)).sum() / n_ref) if n_ref else float("nan")
            status = "ok" if frac > 0 else "not_digitised"
        if status != "ok":
            zero = float("nan") if status == "no_reference" else 0.0
            row.update(
                status=status,
                snr_db=zero,
                aligned_snr_db=zero if align else float("nan"),
                shift_s=float("nan"),
                offset_mv=float("nan"),
                best_shift_snr_db=zero if search else float("nan"),
                best_shift_s=float("nan"),
                best_offset_mv=float("nan"),
                pearson_r=float("nan"),
                rmse_mv=float("nan"),
                digitised_fraction=0.0,
            )
            out.append(row)
            continue
        row.update(
            status=status,
            snr_db=snr_db(x, y),
            pearson_r=pearson_r(x, y),
            rmse_mv=rmse_mv(x, y),
            digitised_fraction=frac,
        )
        nan = float("nan")
        row.update(aligned_snr_db=nan, shift_s=nan, offset_mv=nan)
        row.update(best_shift_snr_db=nan, best_shift_s=nan, best_offset_mv=nan)
        if align:
            aligned, shift, offset = align_estimate(x, y, method="challenge")
            row.update(aligned_snr_db=snr_db(x, aligned), shift_s=shift / fs, offset_mv=offset)
        if search:
            aligned, shift, offset = align_estimate(
                x,
                y,
                fs,
                method="best_shift",
                max_shift_s=max_shift_s,
                max_offset_mv=max_offset_mv,
            )
            row.update(
                best_shift_snr_db=snr_db(x, aligned), best_shift_s=shift / fs, best_offset_mv=offset
            )
        out.append(row)
    return out


_SCORED = ("ok", "no_reference")  # statuses that are not a missing / undigitised lead


def _unpack_pair(pair: Any) -> dict[str, Any]:
    """Accept a mapping or a tuple ``(record, reference, estimate, fs[, names[, est_names]])``."""
    if isinstance(pair, Mapping):
        d = dict(pair)
    else:
        keys = ("record", "reference", "estimate", "fs", "names", "estimate_names")
        if not 4 <= len(pair) <= 6:
            raise ValueError("a pair is (record, reference, estimate, fs[, names[, est_names]])")
        d = dict(zip(keys, pair))
    d.setdefault("names", LEADS)
    d.setdefault("estimate_names", None)
    if d["names"] is None:
        d["names"] = LEADS
    return d


def _mean(values: Sequence[float]) -> float:
    """Challenge-style mean: NaN-ignoring, NaN when empty or all NaN (``+inf`` propagates)."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if v.size and not np.isnan(v).all() else float("nan")


def _median(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmedian(v)) if v.size and not np.isnan(v).all() else float("nan")


def score_records(
    pairs: Iterable[Any],
    *,
    align: bool = True,
    align_method: str = "challenge",
    max_shift_s: float = MAX_SHIFT_S,
    max_offset_mv: float = MAX_OFFSET_MV,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Score many records; the headline is the mean over all record x lead cells.

    Args:
        pairs: each a mapping with keys ``record, reference [C, T], estimate [C', T'] | None, fs``
            and optional ``names, estimate_names``, or the tuple ``(record, reference, estimate,
            fs[, names[, estimate_names]])``.  ``estimate=None`` marks a missing record.
        align, align_method, max_shift_s, max_offset_mv: see :func:`score_record`.

    Returns:
        ``(per_lead, per_record, summary)``: the per-lead rows of :func:`score_record`; one row per
        record (``record, n_leads, n_missing_leads, missing_record, snr_db, aligned_snr_db,
        best_shift_snr_db, pearson_r``, means over its leads); and a summary with ``snr_db`` /
        ``aligned_snr_db`` (headline means over record x lead, NaN-ignoring like the official
        ``np.nanmean``, ``+inf`` if any lead is perfect; missing leads count 0 dB), their medians,
        ``challenge_snr_db`` / ``challenge_aligned_snr_db`` (the means as the official
        ``evaluate_model.py`` prints them: it has no value for a lead without a single digitised
        sample and leaves it out of the mean), ``best_shift_snr_db`` (+ median; NaN unless the
        search ran), ``n_records, n_leads, n_perfect_leads, n_nan_leads, missing_records,
        missing_leads`` (``"record/lead"`` strings).
    """
    per_lead: list[dict[str, Any]] = []
    per_record: list[dict[str, Any]] = []
    for pair in pairs:
        d = _unpack_pair(pair)
        rows = score_record(
            d["reference"],
            d["estimate"],
            d["fs"],
            d["names"],
            d["estimate_names"],
            record=str(d["record"]),
            align=align,
            align_method=align_method,
            max_shift_s=max_shift_s,
            max_offset_mv=max_offset_mv,
        )
        per_lead.extend(rows)
        per_record.append(
            {
                "record": str(d["record"]),
                "n_leads": len(rows),
                "n_missing_leads": sum(r["status"] not in _SCORED for r in rows),
                "missing_record": d["estimate"] is None,
                "snr_db": _mean([r["snr_db"] for r in rows]),
                "aligned_snr_db": _mean([r["aligned_snr_db"] for r in rows]),
                "best_shift_snr_db": _mean([r["best_shift_snr_db"] for r in rows]),
                "pearson_r": _mean([r["pearson_r"] for r in rows]),
            }
        )
    snr = [r["snr_db"] for r in per_lead]
    snr_al = [r["aligned_snr_db"] for r in per_lead]
    snr_best = [r["best_shift_snr_db"] for r in per_lead]
    digitised = [r["status"] == "ok" for r in per_lead]
    summary = {
        "n_records": len(per_record),
        "n_leads": len(per_lead),
        "snr_db": _mean(snr),
        "snr_db_median": _median(snr),
        "aligned_snr_db": _mean(snr_al),
        "aligned_snr_db_median": _median(snr_al),
        "challenge_snr_db": _mean([v for v, ok in zip(snr, digitised) if ok]),
        "challenge_aligned_snr_db": _mean([v for v, ok in zip(snr_al, digitised) if ok]),
        "best_shift_snr_db": _mean(snr_best),
        "best_shift_snr_db_median": _median(snr_best),
        "pearson_r": _mean([r["pearson_r"] for r in per_lead]),
        "rmse_mv": _mean([r["rmse_mv"] for r in per_lead]),
        "n_perfect_leads": int(np.sum(np.isposinf(np.asarray(snr, dtype=np.float64)))),
        "n_nan_leads": int(np.sum(np.isnan(np.asarray(snr, dtype=np.float64)))),
        "missing_records": [r["record"] for r in per_record if r["missing_record"]],
        "missing_leads": [
            f"{r['record']}/{r['lead']}" for r in per_lead if r["status"] not in _SCORED
        ],
    }
    return per_lead, per_record, summary


# --------------------------------------------------------------------------------------------
# Clinical intervals (neurokit2)
# --------------------------------------------------------------------------------------------

BEAT_COLUMNS = (
    "r_peak",
    "r_time_s",
    "qrs_onset",
    "qrs_offset",
    "t_offset",
    "rr_ms",
    "qrs_ms",
    "qt_ms",
)
#: neurokit2's dwt delineator fails on segments of about 3 s; shorter inputs are padded to this.
MIN_ANALYSIS_S = 6.0


def _empty_beats(fs: float, problem: str | None) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in BEAT_COLUMNS})
    df["r_peak"] = df["r_peak"].astype(np.int64)
    df.attrs.update(fs=float(fs), problem=problem, padded_s=0.0, interpolated_samples=0)
    return df


def _nk_rate(fs: float) -> float | int:
    """neurokit2 wants an int sampling rate where it can get one."""
    return int(round(fs)) if abs(fs - round(fs)) < 1e-9 else float(fs)


def _per_beat(values: Sequence[float], rpeaks: np.ndarray, lo_s: float, hi_s: float, fs: float):
    """neurokit2 boundary list -> one value per R peak.

    The dwt delineator returns one entry per R peak, but ``ecg_delineate`` drops entries ``<= 0``;
    when the lengths differ each R peak takes the value lying in ``[R + lo_s*fs, R + hi_s*fs]``.
    """
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    if v.size == rpeaks.size:
        return v
    out = np.full(rpeaks.size, np.nan)
    finite = v[np.isfinite(v)]
    for i, r in enumerate(rpeaks):
        cand = finite[(finite >= r + lo_s * fs) & (finite <= r + hi_s * fs)]
        if cand.size:
            out[i] = cand[np.argmin(np.abs(cand - r))]
    return out


def beat_intervals(
    signal: np.ndarray,
    fs: float,
    *,
    min_duration_s: float = MIN_ANALYSIS_S,
    method: str = "dwt",
) -> pd.DataFrame:
    """Per-beat R peak, QRS and T boundaries and RR / QRS / QT intervals of one lead.

    Pipeline (identical for ground truth and digitised leads): leading / trailing NaN are trimmed
    and interior NaN gaps linearly bridged; a segment shorter than ``min_duration_s`` is padded by
    reflection on both sides (neurokit2's dwt delineator refuses short segments); then
    ``nk.ecg_clean`` (default "neurokit" filter) -> ``nk.ecg_peaks`` (R peaks) ->
    ``nk.ecg_delineate(method="dwt")``.  Beats whose R peak falls in the padding or in a bridged
    gap are dropped; boundaries outside the digitised span, or out of order (onset <= R <= offset
    < T end), become NaN.

    Args:
        signal: one lead ``[T]`` in mV, NaN = not digitised.
        fs: sampling frequency in Hz.
        min_duration_s: segments shorter than this are reflection-padded up to it.
        method: ``nk.ecg_delineate`` method; keep the default ``"dwt"`` for the project metric
            (other methods are for comparison only).

    Returns:
        DataFrame, one row per beat: ``r_peak`` (sample index into ``signal``), ``r_time_s``,
        ``qrs_onset, qrs_offset, t_offset`` (sample indices, float, NaN if not found), ``rr_ms``
        (to the previous detected beat; NaN for the first), ``qrs_ms`` (QRS onset -> offset),
        ``qt_ms`` (QRS onset -> T offset).  ``df.attrs``: ``fs``, ``problem`` (None, or a string
        saying what failed -- neurokit2 errors never propagate), ``padded_s``,
        ``interpolated_samples``.
    """
    try:
        import neurokit2 as nk
    except ImportError as exc:  # pragma: no cover - dependency of the project
        return _empty_beats(fs, f"neurokit2 unavailable: {exc}")

    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        return _empty_beats(fs, f"expected a 1-D lead, got shape {x.shape}")
    if not fs > 0:
        return _empty_beats(fs, f"invalid sampling frequency {fs!r}")
    finite = np.isfinite(x)
    if not finite.any():
        return _empty_beats(fs, "no finite samples (lead not digitised)")
    first, last = int(np.argmax(finite)), int(x.size - 1 - np.argmax(finite[::-1]))
    seg = x[first : last + 1].copy()
    gap = ~np.isfinite(seg)
    if gap.any():
        t = np.arange(seg.size)
        seg[gap] = np.interp(t[gap], t[~gap], seg[~gap])
    if seg.size < 4 or np.ptp(seg) == 0:
        return _empty_beats(fs, "flat or too short segment")

    pad = max(0, int(math.ceil((min_duration_s * fs - seg.size) / 2)))
    work = np.pad(seg, pad, mode="reflect") if pad else seg
    rate = _nk_rate(fs)
    problem: str | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cleaned = np.asarray(nk.ecg_clean(work, sampling_rate=rate), dtype=np.float64)
            _, info = nk.ecg_peaks(cleaned, sampling_rate=rate, correct_artifacts=False)
            rpk = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
        except Exception as exc:  # noqa: BLE001 - any neurokit failure becomes a result
            out = _empty_beats(fs, f"R-peak detection failed: {type(exc).__name__}: {exc}")
            out.attrs.update(padded_s=pad / fs, interpolated_samples=int(gap.sum()))
            return out
        waves: dict[str, Any] = {}
        if rpk.size == 0:
            problem = "no R peaks detected"
        else:
            try:
                _, waves = nk.ecg_delineate(cleaned, rpk, sampling_rate=rate, method=method)
            except Exception as exc:  # noqa: BLE001
                problem = f"{method} delineation failed: {type(exc).__name__}: {exc}"

    nan = np.full(rpk.size, np.nan)
    on = _per_beat(waves.get("ECG_R_Onsets", nan), rpk, -0.3, 0.0, fs) if waves else nan
    off = _per_beat(waves.get("ECG_R_Offsets", nan), rpk, 0.0, 0.3, fs) if waves else nan
    tend = _per_beat(waves.get("ECG_T_Offsets", nan), rpk, 0.05, 1.0, fs) if waves else nan

    # back to indices of ``signal``
    shift = first - pad
    r = rpk + shift
    on, off, tend = on + shift, off + shift, tend + shift
    real = (r >= first) & (r <= last)
    gap_full = np.zeros(x.size, bool)
    gap_full[first : last + 1] = gap
    real &= ~gap_full[np.clip(r, 0, x.size - 1)]

    def _inside(v: np.ndarray) -> np.ndarray:
        return np.where((v >= first) & (v <= last), v, np.nan)

    on, off, tend = _inside(on), _inside(off), _inside(tend)
    on = np.where(on <= r, on, np.nan)
    off = np.where(off >= r, off, np.nan)
    tend = np.where(~(tend <= off) & ~(tend <= r), tend, np.nan)

    rr = np.full(r.size, np.nan)
    if r.size > 1:
        ok_prev = real[1:] & real[:-1]
        rr[1:] = np.where(ok_prev, np.diff(r) * 1000.0 / fs, np.nan)
    ms = 1000.0 / fs
    df = pd.DataFrame(
        {
            "r_peak": r.astype(np.int64),
            "r_time_s": r / fs,
            "qrs_onset": on,
            "qrs_offset": off,
            "t_offset": tend,
            "rr_ms": rr,
            "qrs_ms": (off - on) * ms,
            "qt_ms": (tend - on) * ms,
        }
    )[real].reset_index(drop=True)
    if df.empty and problem is None:
        problem = "no R peaks inside the digitised span"
    df.attrs.update(
        fs=float(fs), problem=problem, padded_s=pad / fs, interpolated_samples=int(gap.sum())
    )
    return df


def _match_beats(t: np.ndarray, p: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """One-to-one matching of R peaks (samples) within ``tol`` samples, closest pairs first."""
    if t.size == 0 or p.size == 0:
        return []
    d = np.abs(t[:, None].astype(float) - p[None, :].astype(float))
    ii, jj = np.nonzero(d <= tol)
    order = np.argsort(d[ii, jj], kind="stable")
    used_t, used_p, pairs = set(), set(), []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def compare_intervals(
    truth: np.ndarray | pd.DataFrame,
    pred: np.ndarray | pd.DataFrame,
    fs: float,
    tol_ms: float = 50.0,
    *,
    method: str = "dwt",
) -> dict[str, Any]:
    """Compare the clinical intervals of a digitised lead with its ground truth.

    Both go through :func:`beat_intervals` (a precomputed table from it is accepted instead of a
    signal).  Beats are matched one-to-one by R-peak time within ``tol_ms``.

    Args:
        truth: ground-truth lead ``[T]`` in mV, or its :func:`beat_intervals` table.
        pred: digitised lead ``[T]`` in mV (NaN = not digitised), or its table.
        fs: sampling frequency in Hz.
        tol_ms: R-peak matching tolerance in ms.
        method: delineation method passed to :func:`beat_intervals` (default ``"dwt"``).

    Returns:
        dict with ``n_truth, n_pred, matched, missed`` (truth beats without a match -- with an
        all-NaN prediction every truth beat is missed), ``extra`` (unmatched predicted beats),
        ``match_fraction`` (matched / n_truth); ``per_beat`` (DataFrame of matched beats: truth /
        pred R peak and ``*_error_ms`` = pred - truth for ``r, rr, qrs, qt, qrs_onset,
        qrs_offset, t_offset``); record-level median-beat errors ``rr_error_ms, qrs_error_ms,
        qt_error_ms`` (median over pred beats minus median over truth beats, NaN if either is
        undefined) with the medians themselves (``truth_rr_ms``, ``pred_rr_ms``, ...); and
        ``problem`` (None, or what went wrong for truth and/or prediction).
    """
    t_tab = truth if isinstance(truth, pd.DataFrame) else beat_intervals(truth, fs, method=method)
    p_tab = pred if isinstance(pred, pd.DataFrame) else beat_intervals(pred, fs, method=method)
    problems = [
        f"{who}: {tab.attrs['problem']}"
        for who, tab in (("truth", t_tab), ("pred", p_tab))
        if tab.attrs.get("problem")
    ]
    tr = t_tab["r_peak"].to_numpy(np.int64)
    pr = p_tab["r_peak"].to_numpy(np.int64)
    pairs = _match_beats(tr, pr, tol_ms * fs / 1000.0)
    ms = 1000.0 / fs
    it = np.array([i for i, _ in pairs], dtype=np.int64)
    jp = np.array([j for _, j in pairs], dtype=np.int64)
    tm, pm = t_tab.iloc[it].reset_index(drop=True), p_tab.iloc[jp].reset_index(drop=True)
    per_beat = pd.DataFrame(
        {
            "truth_r_peak": tm["r_peak"].to_numpy(np.int64),
            "pred_r_peak": pm["r_peak"].to_numpy(np.int64),
            "r_error_ms": (pm["r_peak"].to_numpy(float) - tm["r_peak"].to_numpy(float)) * ms,
            "rr_error_ms": pm["rr_ms"].to_numpy(float) - tm["rr_ms"].to_numpy(float),
            "qrs_error_ms": pm["qrs_ms"].to_numpy(float) - tm["qrs_ms"].to_numpy(float),
            "qt_error_ms": pm["qt_ms"].to_numpy(float) - tm["qt_ms"].to_numpy(float),
        }
    )
    for col in ("qrs_onset", "qrs_offset", "t_offset"):
        per_beat[f"{col}_error_ms"] = (pm[col].to_numpy(float) - tm[col].to_numpy(float)) * ms

    out: dict[str, Any] = {
        "n_truth": int(tr.size),
        "n_pred": int(pr.size),
        "matched": len(pairs),
        "missed": int(tr.size - len(pairs)),
        "extra": int(pr.size - len(pairs)),
        "match_fraction": len(pairs) / tr.size if tr.size else float("nan"),
        "per_beat": per_beat,
    }
    for key in ("rr", "qrs", "qt"):
        t_med = _median(t_tab[f"{key}_ms"].to_numpy(float))
        p_med = _median(p_tab[f"{key}_ms"].to_numpy(float))
        out[f"truth_{key}_ms"] = t_med
        out[f"pred_{key}_ms"] = p_med
        out[f"{key}_error_ms"] = p_med - t_med
    out["problem"] = "; ".join(problems) if problems else None
    return out
