"""Scoring of digitised ECG records against ground truth, folder against folder.

This module is the plumbing of ``evaluate.py``; the scores themselves are
:mod:`digitizer.metrics` (Challenge-2024 SNR, neurokit2 intervals) and the HTML report is
:mod:`digitizer.report`.

* :func:`read_record` reads any WFDB record (``.hea`` + ``.dat``/``.mat``) as ``[C, T]`` mV and
  turns every problem into a :class:`~ecgsynth.sources.RecordError` naming the file.
* :func:`find_records` / :func:`pair_records`: records are found **recursively** (``**/*.hea``)
  and paired by **file stem** (the name without ``.hea``), so the two trees may be organised
  differently (e.g. a flat ``python -m digitizer --out`` folder against a nested truth tree).
  A stem present twice in one tree is ambiguous and reported. A truth record without a prediction
  is scored as missing (0 dB per lead) and listed; a prediction without a truth record is listed.
* :func:`evaluate_pairs` scores every pair: SNR per record x lead (plain and aligned), and the
  clinical intervals of one lead per record (:func:`interval_lead`). A prediction at another
  sampling rate is resampled to the truth's rate (noted per record); a different length is
  NaN-padded or cropped to the truth's (noted).
* :func:`write_tables` writes ``per_lead.csv``, ``per_record.csv``, ``intervals_per_beat.csv`` and
  ``summary.json``.
* :func:`heldout_source` (12 LUDB records never used in training), :func:`make_synthetic_set`
  (the fixed test set of ``python evaluate.py``) and :func:`digitize_images` (images -> WFDB
  predictions with the shipped digitizer) feed the same scoring.

Record tags (``preset``, ``layout``, ...) come from a JSON sidecar ``STEM.json`` next to the truth
record (as written by ``python -m ecgsynth export`` and :func:`make_synthetic_set`): its string
values under :data:`TAG_KEYS` become columns and summary groups.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
import wfdb
from tqdm import tqdm

from digitizer import metrics as M
from digitizer.io import read_image, write_record
from ecgsynth.export import write_wfdb
from ecgsynth.layout import LEADS
from ecgsynth.sources import (
    RecordError,
    WfdbSource,
    canonical_lead,
    resample,
)

__all__ = [
    "DELINEATOR_FLOOR",
    "IMAGE_SUFFIXES",
    "TAG_KEYS",
    "Evaluation",
    "Pair",
    "digitize_images",
    "evaluate_pairs",
    "find_images",
    "find_records",
    "heldout_dir",
    "heldout_source",
    "interval_lead",
    "load_pair",
    "make_synthetic_set",
    "pair_records",
    "read_record",
    "write_tables",
]

#: Sidecar JSON keys that become record tags (group columns).
TAG_KEYS: tuple[str, ...] = ("preset", "layout")
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".pdf")
#: The delineator's own error (README "Scoring", ``scripts/delineation_floor.py``), ms.
DELINEATOR_FLOOR: dict[str, Any] = {
    "method": "neurokit2 dwt",
    "ludb_qt_mae_ms": 62.7,
    "ludb_qt_bias_sd_ms": [16.0, 87.0],
    "ludb_qrs_onset_bias_ms": -50.0,
    "ludb_qrs_width_bias_sd_ms": [72.6, 63.9],
    "white_noise_20db_qt_change_bias_sd_ms": [-11.1, 57.6],
    "white_noise_20db_qrs_change_bias_sd_ms": [-6.4, 44.6],
    "source": "README 'Scoring'; python scripts/delineation_floor.py (170 LUDB records, lead II)",
}
_INTERVALS = ("rr", "qrs", "qt")
# bytes per sample of the fixed-size WFDB formats (to name a truncated signal file clearly)
_BYTES_PER_SAMPLE = {
    "8": 1.0,
    "80": 1.0,
    "16": 2.0,
    "61": 2.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
    "24": 3.0,
    "32": 4.0,
}
_MV_PER_UNIT = {"mv": 1.0, "millivolt": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


# --------------------------------------------------------------------------------------------
# reading records
# --------------------------------------------------------------------------------------------


def _stem(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix.lower() == ".hea" else p


def read_record(path: str | os.PathLike) -> tuple[np.ndarray, float, list[str]]:
    """Read a WFDB record as channels-first millivolts.

    Args:
        path: record path with or without ``.hea`` (e.g. ``out/ecg_00001``).

    Returns:
        ``(signal, fs, names)``: float32 ``[C, T]`` in mV (NaN where WFDB stores its invalid
        value), the sampling rate in Hz, and the ``C`` signal names as written in the header.
        Units ``uV``/``V`` are converted; unknown or empty units are taken as mV.

    Raises:
        RecordError: ``path`` = the file at fault (``.hea`` or signal file), ``problem`` = what is
            wrong: missing or unparsable header, multi-segment record, no signals, missing or
            truncated signal file, unreadable samples. wfdb tracebacks never escape.
    """
    stem = _stem(path)
    hea = stem.with_name(stem.name + ".hea")
    if not hea.is_file():
        raise RecordError(str(hea), "header file not found")
    try:
        header = wfdb.rdheader(str(stem))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a malformed header
        raise RecordError(str(hea), f"malformed header ({type(exc).__name__}: {exc})") from None
    if isinstance(header, wfdb.MultiRecord):
        raise RecordError(str(hea), "multi-segment records are not supported")
    n_sig = int(header.n_sig or 0)
    files = list(header.file_name or [])
    if n_sig < 1 or len(files) != n_sig or None in files:
        raise RecordError(str(hea), "header describes no signals")
    if not (header.fs and float(header.fs) > 0):
        raise RecordError(str(hea), f"invalid sampling rate {header.fs!r}")
    if header.sig_len is None or int(header.sig_len) < 1:
        raise RecordError(str(hea), "header gives no signal length")
    sig_len = int(header.sig_len)
    fmts = [str(f) for f in (header.fmt or [""] * n_sig)]
    for name in dict.fromkeys(files):
        full = stem.parent / name
        if not full.is_file():
            raise RecordError(str(full), f"signal file named in {hea.name} not found")
        in_file = [k for k in range(n_sig) if files[k] == name]
        if name.lower().endswith(".mat") or any(fmts[k] not in _BYTES_PER_SAMPLE for k in in_file):
            continue
        need = math.ceil(sig_len * sum(_BYTES_PER_SAMPLE[fmts[k]] for k in in_file))
        need += int((header.byte_offset or [0] * n_sig)[in_file[0]] or 0)
        size = full.stat().st_size
        if size < need:
            raise RecordError(
                str(full),
                f"signal file is {size} bytes, the header {hea.name} implies {need} "
                f"({sig_len} samples x {len(in_file)} signals)",
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = wfdb.rdrecord(str(stem), physical=True)
    except Exception as exc:  # noqa: BLE001
        raise RecordError(
            str(stem.parent / files[0]), f"cannot read samples ({type(exc).__name__}: {exc})"
        ) from None
    data = np.asarray(rec.p_signal, dtype=np.float64)
    if data.shape != (sig_len, n_sig):
        raise RecordError(
            str(stem.parent / files[0]),
            f"read {data.shape} samples, header {hea.name} says ({sig_len}, {n_sig})",
        )
    units = list(rec.units or [""] * n_sig)
    scale = [_MV_PER_UNIT.get(str(u or "").strip().lower(), 1.0) for u in units]
    signal = (data * np.asarray(scale)[None, :]).T.astype(np.float32)
    return signal, float(rec.fs), [str(n) for n in rec.sig_name]


# --------------------------------------------------------------------------------------------
# finding and pairing
# --------------------------------------------------------------------------------------------


def _natural_key(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _index_by_stem(paths: Sequence[Path]) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """``{stem: path}`` of unique stems and ``{stem: [paths]}`` of stems found more than once."""
    seen: dict[str, list[Path]] = {}
    for p in paths:
        seen.setdefault(p.stem if p.suffix else p.name, []).append(p)
    unique = {s: ps[0] for s, ps in seen.items() if len(ps) == 1}
    dup = {s: sorted(ps) for s, ps in seen.items() if len(ps) > 1}
    return unique, dup


def find_records(folder: str | os.PathLike) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """WFDB records under ``folder`` (recursive).

    Returns:
        ``({stem: record path without extension}, {stem: [paths]} for stems found twice)``.

    Raises:
        FileNotFoundError: if ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    heads = sorted(p.with_suffix("") for p in root.rglob("*.hea") if p.is_file())
    unique, dup = _index_by_stem([h.with_name(h.name + ".hea") for h in heads])
    strip = {s: p.with_suffix("") for s, p in unique.items()}
    return strip, {s: [p.with_suffix("") for p in ps] for s, ps in dup.items()}


def find_images(folder: str | os.PathLike) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Images (``.png .jpg .jpeg .pdf``, any case) under ``folder`` (recursive), by stem; files
    named ``*_overlay.*`` (the digitizer's own overlays) are not inputs and are left out. An
    N-page PDF is one entry here; :func:`digitize_images` writes its pages as ``STEM_p1..pN``.

    Returns:
        ``({stem: path}, {stem: [paths]} for stems found twice)``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_overlay")
    )
    return _index_by_stem(files)


@dataclass
class Pair:
    """One truth record and what was predicted for it.

    Attributes:
        record: the stem shared by truth and prediction.
        truth: truth record path without extension.
        prediction: prediction record path without extension, or ``None`` (missing).
        problem: why the prediction is missing (``None`` when it exists).
        tags: group labels (``preset``, ``layout``, ...).
        notes: remarks carried into the tables (e.g. digitizer warnings).
    """

    record: str
    truth: Path
    prediction: Path | None
    problem: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_tags(truth: Path) -> dict[str, str]:
    """Tags of a truth record from its sidecar ``STEM.json`` (keys :data:`TAG_KEYS`), if any."""
    side = truth.with_name(truth.name + ".json")
    if not side.is_file():
        return {}
    try:
        doc = json.loads(side.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, Mapping):
        return {}
    return {k: str(doc[k]) for k in TAG_KEYS if isinstance(doc.get(k), (str, int, float))}


def pair_records(
    truth_dir: str | os.PathLike,
    pred_dir: str | os.PathLike,
    prediction_problems: Mapping[str, str] | None = None,
) -> tuple[list[Pair], list[dict[str, str]]]:
    """Pair every truth record with the prediction of the same stem.

    Args:
        truth_dir: folder of ground-truth records (searched recursively).
        pred_dir: folder of predicted records (searched recursively).
        prediction_problems: ``{stem: reason}`` for predictions known to have failed upstream
            (e.g. the digitizer raised); used as the reason when the prediction is absent.

    Returns:
        ``(pairs, unmatched)``: one :class:`Pair` per truth stem (natural sort order; a stem that
        is ambiguous in either tree gets ``prediction=None`` and the reason), and the predictions
        with no truth record (``{"record", "path"}``), which cannot be scored.
    """
    problems = dict(prediction_problems or {})
    truth, truth_dup = find_records(truth_dir)
    preds, pred_dup = find_records(pred_dir)
    pairs: list[Pair] = []
    for stem in sorted(set(truth) | set(truth_dup), key=_natural_key):
        if stem in truth_dup:
            where = ", ".join(str(p) for p in truth_dup[stem])
            pairs.append(Pair(stem, truth_dup[stem][0], None, f"ambiguous truth stem: {where}"))
            continue
        t = truth[stem]
        if stem in pred_dup:
            where = ", ".join(str(p) for p in pred_dup[stem])
            pred, problem = None, f"ambiguous prediction stem: {where}"
        elif stem in preds:
            pred, problem = preds[stem], None
        else:
            pred, problem = None, problems.get(stem, f"no prediction record {stem}.hea")
        pairs.append(Pair(stem, t, pred, problem, read_tags(t)))
    known = set(truth) | set(truth_dup)
    unmatched = [
        {"record": s, "path": str(p)}
        for s, p in sorted(preds.items(), key=lambda kv: _natural_key(kv[0]))
        if s not in known
    ]
    return pairs, unmatched


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def _canonical(names: Sequence[str]) -> list[str]:
    """Lead names mapped to :data:`LEADS` spelling where recognised (``avr`` -> ``aVR``)."""
    return [canonical_lead(n) or str(n) for n in names]


def conform(
    estimate: np.ndarray, est_fs: float, fs: float, length: int, crop: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Bring a prediction ``[C, T']`` at ``est_fs`` onto the truth grid ``[C, length]`` at ``fs``.

    A different rate is resampled (polyphase, NaN-tolerant: NaN runs stay NaN); then a short end
    is NaN-padded and a long one cropped -- or, with ``crop=False``, kept: the Challenge's
    alignment can move those samples into the window (they are never scored where the truth
    ends). Returns the signal (float64, ``[C, length]`` or longer) and notes saying what was done.
    """
    y = np.asarray(estimate, dtype=np.float64)
    notes: list[str] = []
    if not math.isclose(est_fs, fs, rel_tol=1e-9):
        y = resample(y, est_fs, fs)
        notes.append(f"prediction resampled from {est_fs:g} Hz to the truth's {fs:g} Hz")
    if y.shape[1] != length:
        longer = y.shape[1] > length
        action = ("cropped" if crop else "kept for the alignment, not scored") if longer else None
        notes.append(
            f"prediction has {y.shape[1]} samples at {fs:g} Hz, truth {length}: "
            + (action or "NaN-padded")
        )
        if crop or not longer:
            out = np.full((y.shape[0], length), np.nan)
            n = min(length, y.shape[1])
            out[:, :n] = y[:, :n]
            y = out
    return y, notes


def interval_lead(
    names: Sequence[str],
    estimate: np.ndarray | None,
    est_names: Sequence[str] | None,
    prefer: str = "II",
) -> str | None:
    """The lead whose clinical intervals are compared for one record.

    ``prefer="auto"``: the lead digitised over the most samples (the 10-s rhythm strip on a 3x4
    page), ties (and a missing prediction) going to II, then the order of :data:`LEADS`. A lead
    name: that lead. Returns ``None`` if the truth lacks the lead.
    """
    folded = {str(n).casefold(): str(n) for n in names}
    if prefer != "auto":
        return folded.get(prefer.casefold())
    order = ["II", *[n for n in LEADS if n != "II"]]
    order += [n for n in names if n not in order]
    candidates = [folded[n.casefold()] for n in order if n.casefold() in folded]
    if not candidates:
        return None
    if estimate is None or est_names is None:
        return candidates[0]
    count = {
        str(n).casefold(): int(np.isfinite(estimate[i]).sum()) for i, n in enumerate(est_names)
    }
    return max(candidates, key=lambda n: (count.get(n.casefold(), 0), -candidates.index(n)))


def load_pair(
    truth: str | os.PathLike, prediction: str | os.PathLike | None
) -> tuple[np.ndarray, np.ndarray | None, float, list[str]]:
    """Truth and prediction on one grid, for drawing.

    Returns:
        ``(truth [C, T] mV, prediction [C, T] mV in the truth's lead order (NaN rows for leads it
        lacks) or None, fs, truth lead names)``. The prediction goes through :func:`conform`.

    Raises:
        RecordError: if either record cannot be read.
    """
    ref, fs, names = read_record(truth)
    names = _canonical(names)
    if not prediction:
        return ref, None, fs, names
    raw, est_fs, raw_names = read_record(prediction)
    y, _ = conform(raw, est_fs, fs, ref.shape[1])
    folded = [n.casefold() for n in _canonical(raw_names)]
    pred = np.full(ref.shape, np.nan, dtype=np.float32)
    for i, n in enumerate(names):
        if n.casefold() in folded:
            pred[i] = y[folded.index(n.casefold())]
    return ref, pred, fs, names


@dataclass
class Evaluation:
    """All scores of one run.

    Attributes:
        per_lead: one row per record x lead (:func:`digitizer.metrics.score_record` columns +
            tags).
        per_record: one row per truth record (status, reason, notes, tags, SNR means, intervals).
        per_beat: matched beats of the interval lead of every record (errors in ms).
        summary: headline numbers and lists (see :func:`evaluate_pairs`).
    """

    per_lead: pd.DataFrame
    per_record: pd.DataFrame
    per_beat: pd.DataFrame
    summary: dict[str, Any]


def _stats(errors: Sequence[float]) -> dict[str, float]:
    """Bias, MAE, SD (ddof 1) and the 95 % limits of agreement of finite errors, ms."""
    e = np.asarray(errors, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size == 0:
        nan = float("nan")
        return {
            "n": 0,
            "bias_ms": nan,
            "mae_ms": nan,
            "sd_ms": nan,
            "loa_low_ms": nan,
            "loa_high_ms": nan,
        }
    bias = float(e.mean())
    sd = float(e.std(ddof=1)) if e.size > 1 else float("nan")
    return {
        "n": int(e.size),
        "bias_ms": bias,
        "mae_ms": float(np.abs(e).mean()),
        "sd_ms": sd,
        "loa_low_ms": bias - 1.96 * sd,
        "loa_high_ms": bias + 1.96 * sd,
    }


def _mean(values: Any) -> float:
    """NaN-ignoring mean as in the headline (``+inf`` propagates); NaN if nothing finite-or-inf."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if v.size and not np.isnan(v).all() else float("nan")


def _interval_row(res: dict[str, Any] | None, lead: str | None, problem: str | None) -> dict:
    """Per-record interval columns from a :func:`digitizer.metrics.compare_intervals` result."""
    nan = float("nan")
    row: dict[str, Any] = {"interval_lead": lead or ""}
    for k in ("n_truth", "n_pred", "matched", "missed", "extra"):
        row[f"beats_{k}"] = res[k] if res else 0
    row["match_fraction"] = res["match_fraction"] if res else nan
    for key in _INTERVALS:
        for part in ("truth", "pred"):
            row[f"{part}_{key}_ms"] = res[f"{part}_{key}_ms"] if res else nan
        row[f"{key}_error_ms"] = res[f"{key}_error_ms"] if res else nan
    row["interval_problem"] = (res or {}).get("problem") or problem or ""
    return row


def evaluate_pairs(
    pairs: Sequence[Pair],
    *,
    align: bool = True,
    align_method: str = "challenge",
    intervals: bool = True,
    lead: str = "auto",
    tol_ms: float = 50.0,
    progress: bool = True,
) -> Evaluation:
    """Score every pair: SNR per record x lead and the clinical intervals of one lead per record.

    A truth record that cannot be read cannot be scored: it is listed in ``failed`` (status
    ``truth_unreadable``) and left out of the means. A missing or unreadable prediction is scored
    as missing (0 dB on every lead, every truth beat missed) and listed with its reason.

    Args:
        pairs: from :func:`pair_records`.
        align, align_method: the Challenge's aligned SNR, and with ``align_method="search"``
            also the best-shift SNR (not the Challenge's), as in
            :func:`digitizer.metrics.score_record`.
        intervals: compute the clinical intervals (neurokit2, ~0.3 s a record).
        lead: interval lead, ``"auto"`` or a lead name (see :func:`interval_lead`).
        tol_ms: R-peak matching tolerance of :func:`digitizer.metrics.compare_intervals`.
        progress: show a tqdm bar.

    Returns:
        :class:`Evaluation`. ``summary`` holds the metrics summary of
        :func:`digitizer.metrics.score_records` (headline ``snr_db`` / ``aligned_snr_db`` over
        record x lead, medians, ``missing_records``, ``missing_leads``, ...) plus ``per_lead``
        (means per lead), ``groups`` (means per tag value), ``intervals`` (bias / MAE / SD of the
        per-record median-beat errors and of matched beats, beat counts), ``failed``
        (``{record, status, reason}``), ``notes`` and ``delineator_floor``.
    """
    records: dict[str, dict[str, Any]] = {}
    beats: list[pd.DataFrame] = []

    def scored() -> Iterator[dict[str, Any]]:
        for pair in tqdm(pairs, desc="score", unit="record", disable=not progress):
            info: dict[str, Any] = {
                "record": pair.record,
                "status": "ok",
                "reason": "",
                "notes": list(pair.notes),
                **pair.tags,
                "truth_path": str(pair.truth),
                "prediction_path": str(pair.prediction) if pair.prediction else "",
            }
            records[pair.record] = info
            if pair.problem and pair.problem.startswith("ambiguous truth"):
                info.update(status="truth_unreadable", reason=pair.problem)
                continue
            try:
                ref, fs, names = read_record(pair.truth)
            except RecordError as err:
                info.update(status="truth_unreadable", reason=str(err))
                continue
            names = _canonical(names)
            est, est_names = None, None
            if pair.prediction is None:
                info.update(status="missing", reason=pair.problem or "no prediction")
            else:
                try:
                    raw, est_fs, raw_names = read_record(pair.prediction)
                    est, conform_notes = conform(raw, est_fs, fs, ref.shape[1], crop=False)
                    est_names = _canonical(raw_names)
                    info["notes"] += conform_notes
                except RecordError as err:
                    info.update(status="unreadable", reason=str(err))
            info["fs"] = fs
            if intervals:
                name = interval_lead(names, est, est_names, lead)
                res, problem = None, None
                if name is None:
                    problem = f"truth has no lead {lead}"
                else:
                    t_lead = ref[[n.casefold() for n in names].index(name.casefold())]
                    p_lead = np.full(ref.shape[1], np.nan)
                    if est is not None:
                        folded = [n.casefold() for n in est_names]
                        if name.casefold() in folded:
                            p_lead = est[folded.index(name.casefold()), : ref.shape[1]]
                    res = M.compare_intervals(t_lead, p_lead, fs, tol_ms)
                    pb = res["per_beat"].copy()
                    pb.insert(0, "record", pair.record)
                    for k, v in pair.tags.items():
                        pb[k] = v
                    beats.append(pb)
                info.update(_interval_row(res, name, problem))
            yield {
                "record": pair.record,
                "reference": ref,
                "estimate": est,
                "fs": fs,
                "names": names,
                "estimate_names": est_names,
            }

    per_lead_rows, per_record_rows, summary = M.score_records(
        scored(), align=align, align_method=align_method
    )
    return _assemble(records, per_lead_rows, per_record_rows, summary, beats, intervals)


def _assemble(
    records: dict[str, dict[str, Any]],
    per_lead_rows: list[dict[str, Any]],
    per_record_rows: list[dict[str, Any]],
    summary: dict[str, Any],
    beats: list[pd.DataFrame],
    intervals: bool,
) -> Evaluation:
    """Join the metrics rows with record info; compute the summary's groups and intervals."""
    info = pd.DataFrame(list(records.values()))
    if info.empty:
        info = pd.DataFrame(columns=["record", "status", "reason", "notes"])
    info["notes"] = info["notes"].map(lambda n: "; ".join(n) if isinstance(n, list) else "")
    tag_cols = [c for c in TAG_KEYS if c in info.columns]
    scores = pd.DataFrame(per_record_rows)
    if not scores.empty:
        scores = scores.drop(columns=["missing_record"])
        per_record = info.merge(scores, on="record", how="left")
    else:
        per_record = info.reindex(columns=[*info.columns, "n_leads", "snr_db", "aligned_snr_db"])
    first = ["record", "status", "reason", *tag_cols, "snr_db", "aligned_snr_db", "pearson_r"]
    first = [c for c in first if c in per_record]
    per_record = per_record[first + [c for c in per_record.columns if c not in first]]
    per_lead = pd.DataFrame(per_lead_rows)
    if not per_lead.empty and tag_cols:
        per_lead = per_lead.merge(info[["record", *tag_cols]], on="record", how="left")
    per_beat = pd.concat(beats, ignore_index=True) if beats else pd.DataFrame()

    summary = dict(summary)
    summary["n_truth_records"] = len(per_record)
    summary["per_lead"] = {}
    if not per_lead.empty:
        for name, grp in per_lead.groupby("lead", sort=False):
            summary["per_lead"][str(name)] = {
                "n": len(grp),
                "snr_db": _mean(grp["snr_db"]),
                "aligned_snr_db": _mean(grp["aligned_snr_db"]),
                "best_shift_snr_db": _mean(grp["best_shift_snr_db"]),
            }
    summary["groups"] = {}
    for tag in tag_cols:
        groups: dict[str, Any] = {}
        for value, grp in sorted(
            per_record.groupby(tag, sort=False, dropna=True), key=lambda kv: _tag_order(kv[0])
        ):
            cells = per_lead[per_lead[tag] == value] if not per_lead.empty else per_lead
            entry: dict[str, Any] = {
                "n_records": len(grp),
                "n_failed": int((grp["status"] != "ok").sum()),
                "snr_db": _mean(cells["snr_db"]) if len(cells) else float("nan"),
                "aligned_snr_db": _mean(cells["aligned_snr_db"]) if len(cells) else float("nan"),
                "best_shift_snr_db": (
                    _mean(cells["best_shift_snr_db"]) if len(cells) else float("nan")
                ),
            }
            if intervals and "qt_error_ms" in grp:
                for key in _INTERVALS:
                    entry[f"{key}_mae_ms"] = _stats(grp[f"{key}_error_ms"])["mae_ms"]
                entry["match_fraction"] = _ratio(grp["beats_matched"], grp["beats_n_truth"])
            groups[str(value)] = entry
        summary["groups"][tag] = groups
    if intervals and "qt_error_ms" in per_record:
        summary["intervals"] = _interval_summary(per_record, per_beat)
    failed = per_record[per_record["status"] != "ok"]
    summary["failed"] = [
        {"record": r.record, "status": r.status, "reason": r.reason} for r in failed.itertuples()
    ]
    summary["notes"] = [
        {"record": r.record, "note": r.notes} for r in per_record.itertuples() if r.notes
    ]
    summary["delineator_floor"] = DELINEATOR_FLOOR
    return Evaluation(per_lead, per_record, per_beat, summary)


def _tag_order(value: Any) -> tuple[int, list[Any]]:
    """Sort key of group values: presets from light to heavy, then natural order."""
    known = ("clean", "medium", "heavy")
    text = str(value)
    return (known.index(text) if text in known else len(known), _natural_key(text))


def _ratio(num: pd.Series, den: pd.Series) -> float:
    d = float(np.nansum(den.to_numpy(float)))
    return float(np.nansum(num.to_numpy(float)) / d) if d > 0 else float("nan")


def _interval_summary(per_record: pd.DataFrame, per_beat: pd.DataFrame) -> dict[str, Any]:
    """Bias / MAE / SD of median-beat (per record) and matched-beat errors; beat counts."""
    out: dict[str, Any] = {
        "definition": "prediction minus truth, ms; per record: median beat; neurokit2 dwt",
        "per_record": {k: _stats(per_record[f"{k}_error_ms"]) for k in _INTERVALS},
        "per_beat": {
            k: _stats(per_beat[f"{k}_error_ms"] if f"{k}_error_ms" in per_beat else [])
            for k in _INTERVALS
        },
    }
    counts = {
        k: int(np.nansum(per_record[f"beats_{k}"].to_numpy(float)))
        for k in ("n_truth", "n_pred", "matched", "missed", "extra")
    }
    counts["match_fraction"] = counts["matched"] / counts["n_truth"] if counts["n_truth"] else 0.0
    out["beats"] = counts
    out["problems"] = [
        {"record": r.record, "problem": r.interval_problem}
        for r in per_record.itertuples()
        if isinstance(r.interval_problem, str) and r.interval_problem
    ]
    return out


# --------------------------------------------------------------------------------------------
# output tables
# --------------------------------------------------------------------------------------------


def jsonable(obj: Any) -> Any:
    """Plain-JSON copy: numpy scalars -> Python, NaN -> ``null``, +-inf -> ``"inf"``/``"-inf"``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_tables(ev: Evaluation, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``per_lead.csv``, ``per_record.csv``, ``intervals_per_beat.csv``, ``summary.json``.

    CSV floats are written in full precision (``inf`` for a perfect lead); in ``summary.json``
    NaN is ``null`` and infinity the string ``"inf"``. Returns ``{name: path}``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_lead": out / "per_lead.csv",
        "per_record": out / "per_record.csv",
        "per_beat": out / "intervals_per_beat.csv",
        "summary": out / "summary.json",
    }
    ev.per_lead.to_csv(paths["per_lead"], index=False)
    ev.per_record.to_csv(paths["per_record"], index=False)
    ev.per_beat.to_csv(paths["per_beat"], index=False)
    paths["summary"].write_text(json.dumps(jsonable(ev.summary), indent=2, allow_nan=False))
    return paths


# --------------------------------------------------------------------------------------------
# held-out source, synthetic test set, digitizing a folder
# --------------------------------------------------------------------------------------------


def heldout_dir() -> Path:
    """Folder of the 12 held-out LUDB records (see its ``ATTRIBUTION.md``)."""
    return Path(__file__).parent / "data" / "ludb"


def heldout_source(fs: int = 500, duration_s: float = 10.0) -> WfdbSource:
    """The 12 LUDB v1.0.1 records shipped in ``digitizer/data/ludb`` (never used in training,
    which draws from :func:`ecgsynth.default_source`), read as digital samples / 1000 = mV."""
    return WfdbSource(heldout_dir(), fs=fs, duration_s=duration_s, amplitude="digital_uv")


def make_synthetic_set(
    out_dir: str | os.PathLike,
    presets: Sequence[str] = ("clean", "medium", "heavy"),
    layouts: Sequence[str] = ("3x4",),
    num: int = 6,
    dpi: float = 200.0,
    seed: int = 2024,
    device: str = "cpu",
    batch_size: int = 2,
    source: Any = None,
    progress: bool = True,
    mask_unplotted: bool = True,
    conventions: str = "standard",
) -> list[str]:
    """Render the fixed test set: ``num`` pages per (layout, preset) of
    ``ECGPageSet(num, source, layout, preset, dpi, seed=seed)``.

    With one seed for all, page ``i`` of every preset shows the same signal window on the same
    page style: presets differ only by their distortions (a paired comparison).

    Writes per page ``STEM = {layout}_{preset}_{i:03d}``: ``STEM.png`` (RGB), the truth
    ``STEM.hea``/``.dat`` (``batch["signal"]``: 12 leads, mV, at ``batch["fs"]``) and
    ``STEM.json`` (tags ``preset``, ``layout`` and the page's source record, seed and index).

    Args:
        source: signal source (default :func:`heldout_source`).
        mask_unplotted: the truth is NaN where the page does not show the lead (the other
            7.5 s of a 3x4 short lead), as in ``export --mask-unplotted``: a digitizer is scored
            on what the page shows. ``False`` keeps all 10 s of every lead, which caps a 3x4
            short lead at a quarter of its SNR (the Challenge's digitised-fraction factor).
        conventions: printing conventions of the pages: ``standard`` (ecgsynth's classic page,
            the fixed test set) or ``random`` (drawn per page, as in the training stream).

    Returns:
        The stems written.
    """
    from ecgsynth import ECGPageSet

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = source if source is not None else heldout_source()
    jobs = [(lay, pre, i) for lay in layouts for pre in presets for i in range(num)]
    stems: list[str] = []
    bar = tqdm(total=len(jobs), desc="render test set", unit="page", disable=not progress)
    for layout in layouts:
        for preset in presets:
            pages = ECGPageSet(num, source, layout=layout, preset=preset, dpi=dpi, seed=seed,
                               conventions=conventions)  # fmt: skip
            for first in range(0, num, batch_size):
                idx = list(range(first, min(num, first + batch_size)))
                batch = pages.render_batch(idx, device)
                for k, i in enumerate(idx):
                    stem = out / f"{layout}_{preset}_{i:03d}"
                    _write_page(
                        stem,
                        batch,
                        k,
                        {"preset": preset, "layout": layout, "seed": seed, "index": i, "dpi": dpi},
                        mask_unplotted,
                    )
                    stems.append(stem.name)
                    bar.update(1)
    bar.close()
    return stems


def _write_page(stem: Path, batch: dict, k: int, tags: dict[str, Any],
                mask_unplotted: bool = True) -> None:  # fmt: skip
    """PNG + truth WFDB + sidecar JSON of page ``k`` of a rendered batch."""
    image = (batch["image"][k].clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = image.permute(1, 2, 0).cpu().numpy()
    cv2.imwrite(str(stem.with_suffix(".png")), np.ascontiguousarray(rgb[:, :, ::-1]))
    fs = float(batch["fs"][k])
    signal = batch["signal"][k].cpu().numpy().astype(np.float64)
    if mask_unplotted:
        signal[~batch["signal_mask"][k].cpu().numpy()] = np.nan
    write_wfdb(stem, signal, fs)
    meta = batch["meta"][k]
    doc = {**tags, "fs": fs, "source": meta.get("source", {}), "page_layout": meta.get("layout")}
    stem.with_name(stem.name + ".json").write_text(json.dumps(jsonable(doc), indent=1))


@dataclass
class DigitizeResult:
    """What :func:`digitize_images` did: records written, failures and per-image notes."""

    written: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)


def digitize_images(
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    checkpoint: str | None = None,
    fs: float = 500.0,
    num_samples: int = 5000,
    device: str = "cpu",
    overlay: bool = False,
    progress: bool = True,
    digitizer_factory: Callable[..., Any] | None = None,
) -> DigitizeResult:
    """Digitize every image under ``images_dir`` (see :func:`find_images`) into
    ``out_dir/STEM.hea``/``.dat`` (and ``STEM_overlay.png`` with ``overlay``); a PDF gives
    ``STEM`` (one page) or ``STEM_p1..pN`` (see :func:`digitizer.pdf.input_pages`), which pair
    with truth records of those names.

    An image that fails (unreadable file, digitizer error) is recorded in ``errors`` with the
    message and the loop goes on; two images with one stem are both refused.

    Args:
        digitizer_factory: builds the digitizer (default ``digitizer.pipeline.Digitizer``);
            called with ``checkpoint, fs, num_samples, device``.

    """
    if digitizer_factory is None:
        from digitizer.pipeline import Digitizer  # imported here: torch/cv2 only when digitizing

        digitizer_factory = Digitizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, dup = find_images(images_dir)
    result = DigitizeResult()
    for stem, paths in dup.items():
        result.errors[stem] = "several images share this stem: " + ", ".join(map(str, paths))
    dig = digitizer_factory(checkpoint=checkpoint, fs=fs, num_samples=num_samples, device=device)
    items = sorted(images.items(), key=lambda kv: _natural_key(kv[0]))
    for stem, path in tqdm(items, desc="digitize", unit="image", disable=not progress):
        if path.suffix.lower() == ".pdf":
            from digitizer.pdf import input_pages

            for page in input_pages(dig, path):
                if page.read().error is not None:
                    result.errors[page.stem] = str(page.error)
                    continue
                _store_page(result, out, page.stem, path, dig, page.record, overlay,
                            lambda page=page: page.image)  # fmt: skip
            continue
        try:
            rec = dig.digitize_file(path)
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the others
            named = hasattr(exc, "problem")  # ImageError / RecordError already name the file
            result.errors[stem] = str(exc) if named else f"{path}: {type(exc).__name__}: {exc}"
            continue
        _store_page(result, out, stem, path, dig, rec, overlay, lambda path=path: read_image(path))
    return result


def _store_page(result: DigitizeResult, out: Path, stem: str, path: Path, dig: Any, rec: Any,
                overlay: bool, image: Callable[[], np.ndarray]) -> None:  # fmt: skip
    """Write one digitized page as ``out/STEM`` (and its overlay); record it in ``result``."""
    try:
        signal = np.asarray(rec.signal, dtype=np.float64)
        names = _canonical(list(rec.sig_name))
        order = [names.index(n) for n in LEADS] if set(LEADS) <= set(names) else None
        if order is None or signal.shape[0] != len(names):
            raise ValueError(f"digitizer returned leads {list(rec.sig_name)}")
        write_record(out / stem, signal[order], float(rec.fs))
        if overlay:
            cv2.imwrite(
                str(out / f"{stem}_overlay.png"),
                np.ascontiguousarray(dig.overlay(image(), rec)[:, :, ::-1]),
            )
    except Exception as exc:  # noqa: BLE001 - one bad image must not stop the others
        named = hasattr(exc, "problem")  # ImageError / RecordError already name the file
        result.errors[stem] = str(exc) if named else f"{path}: {type(exc).__name__}: {exc}"
        return
    result.written.append(stem)
    result.notes[stem] = [f"digitizer: {w}" for w in (rec.warnings or [])]
    if getattr(rec, "layout", None):
        result.tags[stem] = {"detected_layout": str(rec.layout)}
