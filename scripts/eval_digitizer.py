"""Measure the digitizer pipeline (issue #6 acceptance numbers).

    python scripts/eval_digitizer.py grid --num 200        # px/mm and rotation accuracy
    python scripts/eval_digitizer.py gtmask --num 8        # ground-truth mask -> SNR per layout
    python scripts/eval_digitizer.py gtmask --lowpass 40   # ... records through a 40 Hz filter
    python scripts/eval_digitizer.py segmenter --num 4     # ink segmenter (or --checkpoint)
                                                           # on held-out LUDB pages
    python scripts/eval_digitizer.py speed --num 5         # s/page at 200 dpi, without the model

Prints a table and appends one JSON line per run to ``--log`` (default
``scripts/eval_digitizer.jsonl``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from digitizer.evaluation import heldout_source
from digitizer.grid import detect_grid
from digitizer.metrics import score_record
from digitizer.pipeline import Digitizer
from ecgsynth import ECGPageSet
from ecgsynth.distort.presets import PRESET_CONFIGS
from ecgsynth.sources import LowpassSource, default_source, lowpass

LAYOUTS = ("3x4", "3x4_3r", "6x2", "12x1")


def _truth(b: dict) -> np.ndarray:
    sig = b["signal"][0].numpy().copy()
    sig[~b["signal_mask"][0].numpy()] = np.nan
    return sig


def _snr(b: dict, signal: np.ndarray) -> tuple[float, float]:
    rows = score_record(_truth(b), signal, float(b["fs"][0]))
    return (float(np.mean([r["snr_db"] for r in rows])),
            float(np.mean([r["aligned_snr_db"] for r in rows])))  # fmt: skip


def eval_grid(num: int, seed: int) -> dict:
    """Pages with a printed grid, dpi U(72, 300), rotation U(±15°), the medium preset."""
    cfg = copy.deepcopy(PRESET_CONFIGS["medium"])
    cfg["warp"].update(rotation_deg=15.0, p=1.0)
    rng = np.random.default_rng(seed)
    source = default_source()  # one source: its simulations are made once
    ppm_err, rot_err, pages, skipped = [], [], [], 0
    bar = tqdm(total=num, desc="grid", unit="page")
    k = 0
    while len(ppm_err) < num:
        dpi = float(rng.uniform(72, 300))
        b = ECGPageSet(1, source, preset=cfg, dpi=dpi, seed=seed * 100_000 + k).render_batch([0])
        k += 1
        style = b["meta"][0]["spec"]["style"]
        if style["grid"] == "none":
            skipped += 1
            continue
        h = b["homography"][0].double().numpy()
        true_rot = math.degrees(math.atan2(h[1, 0], h[0, 0]))
        # local scale of the warp at the image centre
        hi = np.linalg.inv(h)
        c = hi @ np.array([b["image"].shape[3] / 2, b["image"].shape[2] / 2, 1.0])
        c = c[:2] / c[2]

        def fwd(p: np.ndarray, h: np.ndarray = h) -> np.ndarray:
            q = h @ np.array([p[0], p[1], 1.0])
            return q[:2] / q[2]

        jac = np.array([fwd(c + e) - fwd(c) for e in np.eye(2)])
        true_ppm = float(b["px_per_mm"][0]) * math.sqrt(abs(np.linalg.det(jac)))
        g = detect_grid(b["image"][0].permute(1, 2, 0).numpy())
        ppm_err.append(100 * (g.px_per_mm / true_ppm - 1))
        rot_err.append(g.rotation_deg - true_rot)
        pages.append({"key": seed * 100_000 + k - 1, "dpi": round(dpi, 1), "grid": style["grid"],
                      "ppm_err_pct": round(ppm_err[-1], 3), "rot_err_deg": round(rot_err[-1], 3),
                      "source": g.source})  # fmt: skip
        bar.update()
    bar.close()
    p, r = np.abs(ppm_err), np.abs(rot_err)
    out = {
        "pages": num,
        "skipped_no_grid": skipped,
        "ppm_within_2pct": float(np.mean(p < 2)),
        "rot_within_0.3deg": float(np.mean(r < 0.3)),
        "both": float(np.mean((p < 2) & (r < 0.3))),
        "ppm_err_median_pct": float(np.median(p)),
        "rot_err_median_deg": float(np.median(r)),
        "failures": [
            q for q in pages if abs(q["ppm_err_pct"]) >= 2 or abs(q["rot_err_deg"]) >= 0.3
        ],
    }
    print(f"grid on {num} pages (dpi 72-300, ±15°, medium; {skipped} pages without grid skipped)")
    print(f"  px/mm within 2 %: {out['ppm_within_2pct']:.1%}   rotation within 0.3°: "
          f"{out['rot_within_0.3deg']:.1%}   both: {out['both']:.1%}")  # fmt: skip
    for q in out["failures"]:
        print(f"  miss: {q}")
    return out


def eval_gtmask(num: int, seed: int, dpi: float = 200.0,
                display_filter_hz: float | None = None) -> dict:  # fmt: skip
    """Ground-truth trace masks of clean pages (isolates grid/layout/vectorisation).

    With ``display_filter_hz`` the records are printed through a cart's display filter of that
    many Hz (:class:`~ecgsynth.sources.LowpassSource`), and the truth is the filtered signal:
    what the page shows. Two ceilings that no reader of the page can pass are reported with the
    scores: ``nyquist``, the truth against itself low-passed at the page's pixel Nyquist
    frequency (half a pixel column per sample: ~98 Hz at 200 dpi; the pen blurs further), and
    ``shift_0.1px``, the truth against itself shifted by a tenth of a pixel column (a binary
    mask places the trace start only to the pixel).
    """
    dig = Digitizer(checkpoint="ink")
    source = default_source()
    if display_filter_hz:
        source = LowpassSource(source, display_filter_hz)
    out = {}
    for layout in LAYOUTS:
        ps = ECGPageSet(num, source, layout=layout, preset="clean", dpi=dpi, seed=seed)
        cols: dict[str, list[float]] = {"snr_db": [], "aligned_snr_db": [], "nyquist": [],
                                        "shift_0.1px": []}  # fmt: skip
        ok = 0
        for i in tqdm(range(num), desc=f"gtmask {layout}", unit="page"):
            b = ps.render_batch([i])
            rec = dig.digitize_mask(b["image"][0], (b["mask"][0] > 0).float())
            ok += rec.layout == layout
            s, a = _snr(b, rec.signal)
            cols["snr_db"].append(s)
            cols["aligned_snr_db"].append(a)
            n, sh = _ceilings(b)
            cols["nyquist"].append(n)
            cols["shift_0.1px"].append(sh)
        out[layout] = {k: float(np.mean(v)) for k, v in cols.items()} | {"layout_correct": ok / num}
    filt = f", records through a {display_filter_hz:g} Hz filter" if display_filter_hz else ""
    _table(f"ground-truth mask, clean {dpi:g} dpi{filt}", out)
    return out


def _ceilings(b: dict) -> tuple[float, float]:
    """Mean SNR over the shown leads of the truth against its page-Nyquist low-pass and against
    itself shifted by 0.1 px (see :func:`eval_gtmask`)."""
    fs = float(b["fs"][0])
    px_per_s = b["meta"][0]["paper_speed_mm_s"] * float(b["px_per_mm"][0])
    truth = _truth(b)
    full = b["signal"][0].numpy()
    smooth = lowpass(full, fs, min(0.5 * px_per_s, 0.45 * fs))
    t = np.arange(full.shape[-1]) / fs
    shifted = np.stack([np.interp(t - 0.1 / px_per_s, t, x) for x in full])
    shifted[:, :2] = np.nan  # the first samples have nothing to shift in
    rows = [(score_record(truth, est, fs, align=False)) for est in (smooth, shifted)]
    return tuple(float(np.mean([r["snr_db"] for r in rs])) for rs in rows)


def eval_segmenter(num: int, seed: int, checkpoint: str) -> dict:
    """The digitizer on held-out LUDB pages (never used in development), per preset x layout."""
    dig = Digitizer(checkpoint=checkpoint)
    src = heldout_source()
    out = {}
    for preset in ("clean", "medium", "heavy"):
        for layout in LAYOUTS:
            ps = ECGPageSet(num, source=src, layout=layout, preset=preset, dpi=200, seed=seed)
            snr, al = [], []
            for i in tqdm(range(num), desc=f"{preset} {layout}", unit="page"):
                b = ps.render_batch([i])
                s, a = _snr(b, dig.digitize(b["image"][0]).signal)
                snr.append(s)
                al.append(a)
            out[f"{preset}/{layout}"] = {"snr_db": float(np.mean(snr)),
                                         "aligned_snr_db": float(np.mean(al))}  # fmt: skip
    _table(f"segmenter {dig.segmenter.name}, held-out LUDB, 200 dpi", out)
    return out


def eval_speed(num: int, seed: int) -> dict:
    """Seconds per 200-dpi page for grid + layout + vectorisation (mask given)."""
    dig = Digitizer(checkpoint="ink")
    ps = ECGPageSet(num + 1, layout="3x4", preset="medium", dpi=200, seed=seed)
    pages = [ps.render_batch([i]) for i in range(num + 1)]
    dig.digitize_mask(pages[0]["image"][0], (pages[0]["mask"][0] > 0).float())  # warm-up
    t0 = time.perf_counter()
    for b in pages[1:]:
        dig.digitize_mask(b["image"][0], (b["mask"][0] > 0).float())
    per_page = (time.perf_counter() - t0) / num
    print(f"pipeline without the model: {per_page:.3f} s/page (200 dpi, medium, {num} pages)")
    return {"s_per_page": per_page}


def _table(title: str, rows: dict) -> None:
    print(title)
    ceilings = "nyquist" in next(iter(rows.values()))
    head = f"  {'':16s} {'SNR dB':>8s} {'aligned':>8s}"
    print(head + (f" {'ceilings: nyquist':>18s} {'0.1 px':>7s}" if ceilings else ""))
    for key, v in rows.items():
        line = f"  {key:16s} {v['snr_db']:8.2f} {v['aligned_snr_db']:8.2f}"
        if ceilings:
            line += f" {v['nyquist']:18.2f} {v['shift_0.1px']:7.2f}"
        if "layout_correct" in v:
            line += f"  layout ok {v['layout_correct']:.0%}"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("task", choices=["grid", "gtmask", "segmenter", "speed"])
    p.add_argument("--num", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--checkpoint", default="ink", help="segmenter task: 'ink' or a U-Net path")
    p.add_argument("--dpi", type=float, default=200.0, help="gtmask task: page resolution")
    p.add_argument(
        "--lowpass",
        type=float,
        default=None,
        help="gtmask task: print the records through a display filter of this many Hz",
    )
    p.add_argument("--log", type=Path, default=Path(__file__).with_name("eval_digitizer.jsonl"))
    a = p.parse_args()
    torch.set_grad_enabled(False)
    defaults = {"grid": 200, "gtmask": 8, "segmenter": 4, "speed": 5}
    num = a.num or defaults[a.task]
    if a.task == "grid":
        res = eval_grid(num, a.seed)
    elif a.task == "gtmask":
        res = eval_gtmask(num, a.seed, a.dpi, a.lowpass)
    elif a.task == "segmenter":
        res = eval_segmenter(num, a.seed, a.checkpoint)
    else:
        res = eval_speed(num, a.seed)
    line = {"task": a.task, "num": num, "seed": a.seed, "checkpoint": a.checkpoint,
            "dpi": a.dpi, "lowpass": a.lowpass,
            "host": platform.node(), "torch": torch.__version__, "result": res,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    with a.log.open("a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
