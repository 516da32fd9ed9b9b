"""Does per-lead confidence tell a lead worth keeping from one that costs? Measured on
ecgsynth's own pages in random printing conventions, drawn from the training records
(``ecgsynth.default_source``), never from the held-out or foreign evaluation sets.

    python scripts/calibrate_confidence.py --num 4      # 4 pages per layout x preset (48)

Every lead is read with ``keep_uncertain`` and scored (Challenge SNR, unshifted, truth NaN
where the page does not show the lead). Prints, per confidence threshold, the mean SNR when
leads under it are written as NaN (0 dB) and the share of kept leads under 0 dB; per factor
value, the leads' mean SNR; writes ``OUT/leads.csv`` and ``OUT/confidence.png`` (SNR against
confidence and against the Einthoven residual).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from tqdm import tqdm

from digitizer.confidence import CONFIDENCE_THRESHOLD, einthoven_residuals
from digitizer.metrics import snr_db
from digitizer.pipeline import Digitizer
from ecgsynth import ECGPageSet
from ecgsynth.layout import LEADS
from ecgsynth.sources import default_source

LAYOUTS = ("3x4", "3x4_3r", "6x2", "12x1")
PRESETS = ("clean", "medium", "heavy")
FACTORS = ("calibration", "timing", "layout", "amplitude")


def read_leads(num: int, seed: int, checkpoint: str | None) -> list[dict]:
    """One dict per lead found on ``num`` pages per layout x preset: its report fields, the
    Einthoven residual of its trio (NaN for chest leads) and its SNR."""
    reader = Digitizer(checkpoint=checkpoint, keep_uncertain=True)
    source = default_source()
    out = []
    jobs = [(layout, preset) for layout in LAYOUTS for preset in PRESETS]
    for layout, preset in tqdm(jobs, desc="pages", unit="set"):
        pages = ECGPageSet(num, source=source, layout=layout, preset=preset, dpi=200,
                           seed=seed, conventions="random")  # fmt: skip
        for i in range(num):
            b = pages.render_batch([i])
            truth = b["signal"][0].numpy().astype(np.float64)
            truth[~b["signal_mask"][0].numpy()] = np.nan
            rec = reader.digitize(b["image"][0])
            rel = einthoven_residuals(rec.signal, LEADS)
            for k, lead in enumerate(rec.leads):
                if lead.row is None or not np.isfinite(truth[k]).any():
                    continue
                d = lead.to_dict()  # rounded as in STEM.json
                out.append({
                    "page": f"{layout}_{preset}_{i}", "preset": preset, "lead": lead.name,
                    **{f: d[f] for f in (*FACTORS, "coverage", "physics")},
                    "residual": round(rel.get(lead.name, float("nan")), 3),
                    "confidence": d["confidence"],
                    "snr_db": round(snr_db(truth[k], rec.signal[k]), 3),
                })  # fmt: skip
    return out


def summarise(leads: list[dict]) -> None:
    """The threshold table and the mean SNR per factor value."""
    snr = np.array([r["snr_db"] for r in leads])
    conf = np.array([r["confidence"] for r in leads])
    print(f"{len(leads)} leads; kept all: mean {snr.mean():.2f} dB, {np.mean(snr < 0):.1%} < 0 dB")
    print("threshold  mean SNR (gated = 0 dB)  kept  kept < 0 dB")
    for t in (0.0, 0.2, 0.3, 0.4, CONFIDENCE_THRESHOLD, 0.6, 0.7):
        keep = conf >= t
        gated = np.where(keep, snr, 0.0)
        bad = np.mean(snr[keep] < 0) if keep.any() else float("nan")
        print(f"  {t:.2f}     {gated.mean():8.2f}              {keep.mean():5.1%}  {bad:6.1%}")
    for f in FACTORS:
        values = sorted({str(r[f]) for r in leads})
        cells = [f"{v} {np.mean([r['snr_db'] for r in leads if str(r[f]) == v]):.1f} dB "
                 f"(n={sum(str(r[f]) == v for r in leads)})" for v in values]  # fmt: skip
        print(f"  {f}: " + ", ".join(cells))


def plot(leads: list[dict], path: Path) -> None:
    """SNR against confidence and against the Einthoven residual (limb leads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"clean": "tab:green", "medium": "tab:orange", "heavy": "tab:red"}
    fig, ax = plt.subplots(1, 2, figsize=(12, 4.5))
    for preset, c in colours.items():
        sel = [r for r in leads if r["preset"] == preset]
        ax[0].scatter([r["confidence"] for r in sel], [r["snr_db"] for r in sel], s=6, c=c,
                      label=preset, alpha=0.6)  # fmt: skip
        limb = [r for r in sel if np.isfinite(r["residual"])]
        ax[1].scatter([r["residual"] for r in limb], [r["snr_db"] for r in limb], s=6, c=c,
                      alpha=0.6)  # fmt: skip
    ax[0].axvline(CONFIDENCE_THRESHOLD, c="k", lw=0.8)
    ax[0].set(xlabel="confidence", ylabel="Challenge SNR (dB, unshifted)")
    ax[1].set(xlabel="Einthoven residual / lead RMS", xlim=(0, 4))
    for a in ax:
        a.axhline(0, c="k", lw=0.8)
        a.set_ylim(-15, 30)
    ax[0].legend()
    fig.suptitle("per-lead confidence on ecgsynth pages in random conventions (training records)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num", type=int, default=4, help="pages per layout x preset")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--checkpoint", default=None, help="segmenter (default: the digitizer's)")
    ap.add_argument("--out", type=Path, default=Path("outputs/confidence"))
    args = ap.parse_args()
    leads = read_leads(args.num, args.seed, args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "leads.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(leads[0]))
        w.writeheader()
        w.writerows(leads)
    summarise(leads)
    plot(leads, args.out / "confidence.png")
    print(f"wrote {args.out / 'leads.csv'} and {args.out / 'confidence.png'}")


if __name__ == "__main__":
    main()
