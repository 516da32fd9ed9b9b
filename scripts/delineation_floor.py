"""How well does neurokit2's dwt delineation agree with cardiologists? (the interval-metric floor)

The clinical-interval metric of ``digitizer.metrics`` runs one neurokit2 pipeline on the ground
truth and on the digitised lead.  Its own disagreement with expert annotation bounds how much an
interval error can be blamed on the digitiser.  This script measures, per annotated beat:

* LUDB (lead II, 500 Hz, 10 s, cardiologist marks per lead): QRS onset, QRS offset and T end
  errors of neurokit2 vs the expert (nk - expert, ms), and the derived QRS width and QT;
* QTDB (lead 0, 250 Hz, ``q1c`` = cardiologist 1, corrected): the same on a window around the
  annotated beats (the expert marked boundaries looking at both leads);
* the delineator's own sensitivity: white noise at 20 dB SNR (Challenge definition, noise power =
  mean(x^2) / 100) added to LUDB lead II, per-beat change of QT / QRS / RR vs the clean signal.

Expert beats are matched to the nearest neurokit2 R peak within ``--tol-ms`` (75 ms) of the
expert's QRS peak mark.  Output: a table of n, bias, SD, MAE (ms) and the share of expert beats
matched / measured; ``--json PATH`` also writes it.

Usage::

    python scripts/delineation_floor.py [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from tqdm import tqdm

from digitizer.metrics import beat_intervals, compare_intervals, snr_db

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/ beside the repo
BEAT_SYMBOLS = set("NLRBAaJSVrFejnE/fQ?")
MEASURES = ("qrs_onset", "qrs_offset", "t_offset", "qrs_ms", "qt_ms")
LABELS = {
    "qrs_onset": "QRS onset",
    "qrs_offset": "QRS offset",
    "t_offset": "T end",
    "qrs_ms": "QRS width",
    "qt_ms": "QT",
    "rr_ms": "RR",
}


def ludb_expert_beats(path: Path, lead: str = "ii") -> list[dict[str, float]]:
    """Expert beats of one LUDB lead: sample indices of QRS peak / onset / offset and T end."""
    ann = wfdb.rdann(str(path), lead)
    sym, smp = list(ann.symbol), np.asarray(ann.sample, dtype=float)
    beats: list[dict[str, float]] = []
    for k, s in enumerate(sym):
        if s != "N":
            continue
        onset = smp[k - 1] if k > 0 and sym[k - 1] == "(" else np.nan
        offset = smp[k + 1] if k + 1 < len(sym) and sym[k + 1] == ")" else np.nan
        t_end = np.nan
        for j in range(k + 1, len(sym)):
            if sym[j] == "N":
                break
            if sym[j] == "t":
                if j + 1 < len(sym) and sym[j + 1] == ")":
                    t_end = smp[j + 1]
                break
        beats.append({"peak": smp[k], "qrs_onset": onset, "qrs_offset": offset, "t_offset": t_end})
    return beats


def qtdb_expert_beats(path: Path, fs: float, ext: str = "q1c") -> list[dict[str, float]]:
    """Expert beats of a QTDB record: ``(``/``)`` marks with ``num`` 1 bound the QRS, ``)`` with
    ``num`` 2 is the T end; beat symbols are the QRS peaks."""
    ann = wfdb.rdann(str(path), ext)
    sym, smp, num = list(ann.symbol), np.asarray(ann.sample, dtype=float), list(ann.num)
    peaks = [k for k, s in enumerate(sym) if s in BEAT_SYMBOLS]
    beats: list[dict[str, float]] = []
    for n, k in enumerate(peaks):
        prev_k = peaks[n - 1] if n > 0 else -1
        next_k = peaks[n + 1] if n + 1 < len(peaks) else len(sym)
        b = {"peak": smp[k], "qrs_onset": np.nan, "qrs_offset": np.nan, "t_offset": np.nan}
        for j in range(k - 1, prev_k, -1):
            if sym[j] == "(" and num[j] == 1 and smp[k] - smp[j] <= 0.25 * fs:
                b["qrs_onset"] = smp[j]
                break
        for j in range(k + 1, next_k):
            if sym[j] == ")" and num[j] == 1 and np.isnan(b["qrs_offset"]):
                if smp[j] - smp[k] <= 0.25 * fs:
                    b["qrs_offset"] = smp[j]
            if sym[j] == ")" and num[j] == 2 and smp[j] - smp[k] <= 1.0 * fs:
                b["t_offset"] = smp[j]
                break
        beats.append(b)
    return beats


def match_expert(
    beats: list[dict[str, float]], table: Any, fs: float, tol_ms: float, offset: int = 0
) -> tuple[int, dict[str, list[float]]]:
    """Errors (nk - expert, ms) per measure for expert beats matched to a neurokit2 R peak.

    ``offset`` is added to neurokit2 sample indices (window start in the record).
    """
    errors: dict[str, list[float]] = {m: [] for m in MEASURES}
    r = table["r_peak"].to_numpy(float) + offset
    ms = 1000.0 / fs
    matched = 0
    used: set[int] = set()
    for b in beats:
        if r.size == 0:
            break
        j = int(np.argmin(np.abs(r - b["peak"])))
        if abs(r[j] - b["peak"]) * ms > tol_ms or j in used:
            continue
        used.add(j)
        matched += 1
        row = table.iloc[j]
        for m in ("qrs_onset", "qrs_offset", "t_offset"):
            e = (row[m] + offset - b[m]) * ms
            if np.isfinite(e):
                errors[m].append(float(e))
        exp_qrs = (b["qrs_offset"] - b["qrs_onset"]) * ms
        exp_qt = (b["t_offset"] - b["qrs_onset"]) * ms
        for m, exp in (("qrs_ms", exp_qrs), ("qt_ms", exp_qt)):
            e = row[m] - exp
            if np.isfinite(e):
                errors[m].append(float(e))
    return matched, errors


def summarise(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0, "bias_ms": np.nan, "sd_ms": np.nan, "mae_ms": np.nan, "p90_abs_ms": np.nan}
    return {
        "n": int(v.size),
        "bias_ms": float(v.mean()),
        "sd_ms": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "mae_ms": float(np.abs(v).mean()),
        "p90_abs_ms": float(np.percentile(np.abs(v), 90)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N LUDB / QTDB records only")
    ap.add_argument("--tol-ms", type=float, default=75.0, help="expert-to-nk R matching (ms)")
    ap.add_argument("--noise-snr-db", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--method", default="dwt", help="nk.ecg_delineate method (project: dwt)")
    ap.add_argument("--json", type=Path, default=None, help="write the table here")
    args = ap.parse_args(argv)

    ludb = sorted((args.data / "ludb").glob("*.hea"), key=lambda p: int(p.stem))
    qtdb = sorted((args.data / "qtdb").glob("*.hea"))
    if args.limit is not None:
        ludb, qtdb = ludb[: args.limit], qtdb[: args.limit]
    t0 = time.time()
    rng = np.random.default_rng(args.seed)

    acc: dict[str, dict[str, list[float]]] = {
        "LUDB II vs cardiologists": {m: [] for m in MEASURES},
        "QTDB lead0 vs q1c": {m: [] for m in MEASURES},
        f"LUDB II +{args.noise_snr_db:g} dB noise vs clean": {m: [] for m in (*MEASURES, "rr_ms")},
    }
    counts = {k: {"records": 0, "expert_beats": 0, "matched": 0, "problems": 0} for k in acc}
    k_ludb, k_qtdb, k_noise = list(acc)
    noise_snr: list[float] = []

    jobs = [("ludb", p) for p in ludb] + [("qtdb", p) for p in qtdb]
    for kind, hea in tqdm(jobs, desc="delineation floor", unit="rec", file=sys.stderr):
        rec_path = hea.with_suffix("")
        if kind == "ludb":
            rec = wfdb.rdrecord(str(rec_path), physical=False)
            fs = float(rec.fs)
            names = [n.lower() for n in rec.sig_name]
            x = rec.d_signal[:, names.index("ii")].astype(float) / 1000.0  # uV -> mV (README)
            table = beat_intervals(x, fs, method=args.method)
            beats = ludb_expert_beats(rec_path, "ii")
            c = counts[k_ludb]
            c["records"] += 1
            c["expert_beats"] += len(beats)
            c["problems"] += bool(table.attrs.get("problem"))
            matched, errs = match_expert(beats, table, fs, args.tol_ms)
            c["matched"] += matched
            for m, v in errs.items():
                acc[k_ludb][m].extend(v)

            # delineator's own sensitivity to white noise at the chosen SNR
            sigma = np.sqrt(np.mean(x**2) / 10 ** (args.noise_snr_db / 10))
            noisy = x + sigma * rng.standard_normal(x.size)
            noise_snr.append(snr_db(x, noisy))
            res = compare_intervals(table, noisy, fs, tol_ms=50.0, method=args.method)
            c = counts[k_noise]
            c["records"] += 1
            c["expert_beats"] += res["n_truth"]
            c["matched"] += res["matched"]
            c["problems"] += bool(res["problem"])
            pb = res["per_beat"]
            for m, col in (
                ("qrs_onset", "qrs_onset_error_ms"),
                ("qrs_offset", "qrs_offset_error_ms"),
                ("t_offset", "t_offset_error_ms"),
                ("qrs_ms", "qrs_error_ms"),
                ("qt_ms", "qt_error_ms"),
                ("rr_ms", "rr_error_ms"),
            ):
                v = pb[col].to_numpy(float)
                acc[k_noise][m].extend(v[np.isfinite(v)].tolist())
        else:
            hdr = wfdb.rdheader(str(rec_path))
            fs = float(hdr.fs)
            beats = qtdb_expert_beats(rec_path, fs, "q1c")
            if not beats:
                continue
            lo = max(0, int(min(b["peak"] for b in beats) - 5 * fs))
            hi = min(hdr.sig_len, int(max(b["peak"] for b in beats) + 5 * fs))
            rec = wfdb.rdrecord(str(rec_path), sampfrom=lo, sampto=hi, channels=[0])
            x = rec.p_signal[:, 0].astype(float)
            table = beat_intervals(x, fs, method=args.method)
            c = counts[k_qtdb]
            c["records"] += 1
            c["expert_beats"] += len(beats)
            c["problems"] += bool(table.attrs.get("problem"))
            matched, errs = match_expert(beats, table, fs, args.tol_ms, offset=lo)
            c["matched"] += matched
            for m, v in errs.items():
                acc[k_qtdb][m].extend(v)

    rows: list[dict[str, Any]] = []
    for key, per in acc.items():
        c = counts[key]
        for m, values in per.items():
            s = summarise(values)
            rows.append(
                {
                    "set": key,
                    "measure": LABELS[m],
                    **s,
                    "beats": c["expert_beats"],
                    "matched_share": c["matched"] / c["expert_beats"] if c["expert_beats"] else 0,
                    "measured_share": s["n"] / c["expert_beats"] if c["expert_beats"] else 0,
                }
            )

    head = (
        f"{'set':<32} {'measure':<10} {'n':>5} {'bias':>7} {'SD':>7} {'MAE':>7} {'|e|p90':>7} "
        f"{'matched':>8} {'measured':>9}"
    )
    print(f"\nneurokit2 {args.method} delineation vs reference, errors in ms (nk - reference)")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['set']:<32} {r['measure']:<10} {r['n']:>5d} {r['bias_ms']:>7.1f} "
            f"{r['sd_ms']:>7.1f} {r['mae_ms']:>7.1f} {r['p90_abs_ms']:>7.1f} "
            f"{r['matched_share']:>8.1%} {r['measured_share']:>9.1%}"
        )
    print("-" * len(head))
    for key, c in counts.items():
        print(
            f"{key}: {c['records']} records, {c['expert_beats']} reference beats, "
            f"{c['matched']} matched, {c['problems']} records with a pipeline problem"
        )
    if noise_snr:
        print(f"noise check: Challenge SNR of the noisy copies {np.mean(noise_snr):.2f} dB (mean)")
    print(
        "matched = reference beats with a neurokit2 R peak within "
        f"{args.tol_ms:g} ms (noise rows: 50 ms); measured = share with both values present; "
        f"{time.time() - t0:.0f} s"
    )

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "rows": rows,
            "counts": counts,
            "settings": {
                "tol_ms": args.tol_ms,
                "noise_snr_db": args.noise_snr_db,
                "seed": args.seed,
                "limit": args.limit,
                "pipeline": "nk.ecg_clean -> nk.ecg_peaks -> "
                f"nk.ecg_delineate(method={args.method!r})",
            },
        }
        args.json.write_text(json.dumps(payload, indent=2, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
