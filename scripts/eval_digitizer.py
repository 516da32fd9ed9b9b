"""Measure the digitizer pipeline (issue #6 acceptance numbers).

    python scripts/eval_digitizer.py grid --num 200        # px/mm and rotation accuracy
    python scripts/eval_digitizer.py gtmask --num 8        # ground-truth mask -> SNR per layout
    python scripts/eval_digitizer.py gtmask --lowpass 40   # ... records through a 40 Hz filter
    python scripts/eval_digitizer.py gtmask --heldout --preset heavy --num 3 --seed 2024
                                                           # ... evaluate.py's heavy test pages
    python scripts/eval_digitizer.py segmenter --num 4     # ink segmenter (or --checkpoint)
                                                           # on held-out LUDB pages
    python scripts/eval_digitizer.py speed --num 5         # s/page at 200 dpi, without the model
    python scripts/eval_digitizer.py foreign --num 48      # the shipped digitizer on 48 clean +
                                                           # 48 artifact pages of the independent
                                                           # page maker (scripts/foreign_pages.py)
    python scripts/eval_digitizer.py pdf --num 20          # PDF input: the maker's vector PDFs
                                                           # read from their paths, the same at
                                                           # 200 dpi, raster PDF vs PNG

Prints a table and appends one JSON line per run to ``--log`` (default
``scripts/eval_digitizer.jsonl``).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import wfdb
from tqdm import tqdm

from digitizer.evaluation import heldout_dir, heldout_source
from digitizer.grid import detect_grid
from digitizer.metrics import score_record, snr_db
from digitizer.pipeline import Digitizer
from ecgsynth import ECGPageSet
from ecgsynth.distort.presets import PRESET_CONFIGS
from ecgsynth.sources import LowpassSource, default_source, lowpass

sys.path.insert(0, str(Path(__file__).resolve().parent))
import foreign_pages as fp  # noqa: E402  (the independent page maker, a sibling script)

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
                display_filter_hz: float | None = None, preset: str = "clean",
                heldout: bool = False) -> dict:  # fmt: skip
    """Ground-truth trace masks of ``preset`` pages (isolates grid/layout/vectorisation from
    the segmenter: what any segmenter, the U-Net included, can reach with this reader).
    ``heldout``: the held-out LUDB records, as ``evaluate.py``'s test set (``--seed 2024
    --num 3`` gives its pages), instead of the training source.

    With ``display_filter_hz`` the records are printed through a cart's display filter of that
    many Hz (:class:`~ecgsynth.sources.LowpassSource`), and the truth is the filtered signal:
    what the page shows. Two ceilings that no reader of the page can pass are reported with the
    scores: ``nyquist``, the truth against itself low-passed at the page's pixel Nyquist
    frequency (half a pixel column per sample: ~98 Hz at 200 dpi; the pen blurs further), and
    ``shift_0.1px``, the truth against itself shifted by a tenth of a pixel column (a binary
    mask places the trace start only to the pixel).
    """
    dig = Digitizer(checkpoint="ink")
    source = heldout_source() if heldout else default_source()
    if display_filter_hz:
        source = LowpassSource(source, display_filter_hz)
    out = {}
    for layout in LAYOUTS:
        ps = ECGPageSet(num, source, layout=layout, preset=preset, dpi=dpi, seed=seed)
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
    held = ", held-out LUDB" if heldout else ""
    _table(f"ground-truth mask, {preset} {dpi:g} dpi{filt}{held}", out)
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


def eval_speed(num: int, seed: int, checkpoint: str | None) -> dict:
    """Seconds per 200-dpi page of the whole digitizer (grid, segmenter, layout, vectorisation)
    with the U-Net ``checkpoint`` (default: the shipped one) and with the non-learned segmenter,
    on the same pages in one run (interleaved, so load on the machine hits both alike), plus
    the pipeline alone (ground-truth mask given)."""
    readers = {
        "ink": Digitizer(checkpoint="ink"),
        "unet": Digitizer(checkpoint=checkpoint or "unet"),
    }
    pages = []
    for i, layout in enumerate(list(LAYOUTS) * (num // len(LAYOUTS) + 1)):
        if len(pages) == num + 1:
            break
        preset = ("clean", "medium", "heavy")[i % 3]
        ps = ECGPageSet(1, layout=layout, preset=preset, dpi=200, seed=seed + i)
        pages.append(ps.render_batch([0]))
    times: dict[str, float] = {"ink": 0.0, "unet": 0.0, "mask": 0.0}
    for k, b in enumerate(pages):  # page 0 warms every path up and is not timed
        image = b["image"][0]
        for name, dig in readers.items():
            t0 = time.perf_counter()
            dig.digitize(image)
            times[name] += (time.perf_counter() - t0) * (k > 0)
        t0 = time.perf_counter()
        readers["ink"].digitize_mask(image, (b["mask"][0] > 0).float())
        times["mask"] += (time.perf_counter() - t0) * (k > 0)
    out = {f"{name}_s_per_page": t / num for name, t in times.items()}
    out["unet_over_ink"] = times["unet"] / times["ink"]
    print(f"200 dpi, {num} pages (all layouts and presets), {torch.get_num_threads()} threads:")
    model = checkpoint or "shipped"
    print(f"  digitizer with the U-Net ({model}): {out['unet_s_per_page']:.3f} s/page")
    print(f"  digitizer with the ink segmenter:  {out['ink_s_per_page']:.3f} s/page")
    print(f"  pipeline alone (mask given):       {out['mask_s_per_page']:.3f} s/page")
    print(f"  U-Net / ink: {out['unet_over_ink']:.2f}x")
    return out


def best_lag_snr_db(ref: np.ndarray, est: np.ndarray, max_lag: int) -> tuple[float, int]:
    """The best Challenge SNR (dB) over whole-sample shifts ``|lag| <= max_lag`` of ``est [T]``
    against ``ref [T]``, and that lag (samples; positive: the estimate is late). Not the
    Challenge's aligned SNR: an exact, bounded search, to tell timing errors from the rest."""
    best, best_lag = snr_db(ref, est), 0
    if not np.isfinite(est).any():
        return best, 0
    n = len(ref)
    for lag in range(-max_lag, max_lag + 1):
        shifted = np.full(n, np.nan)
        if lag >= 0:
            shifted[: n - lag] = est[lag:]
        else:
            shifted[-lag:] = est[: n + lag]
        v = snr_db(ref, shifted)
        if not np.isnan(v) and v > best:  # +inf: a perfect match
            best, best_lag = v, lag
    return best, best_lag


def _foreign_pages(num: int, seed: int) -> list[dict]:
    """``num`` page specs cycling over every (profile, layout) of the maker and the held-out
    LUDB records (digital samples / 1000 = mV, each lead's median removed), dpi U(150, 300)."""
    heads = sorted(heldout_dir().glob("*.hea"), key=lambda q: int(q.stem))
    cells = fp.profile_layouts()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(heads))
    return [{"k": k, "profile": cells[k % len(cells)][0], "layout": cells[k % len(cells)][1],
             "record": heads[order[k % len(heads)]], "dpi": float(rng.uniform(150, 300)),
             "seed": seed * 100_000 + k} for k in range(num)]  # fmt: skip


def eval_foreign(num: int, seed: int, checkpoint: str | None, gallery: Path | None,
                 out_dir: Path | None = None, keep_uncertain: bool = False) -> dict:  # fmt: skip
    """The digitizer on ``num`` clean pages of the independent page maker and the same pages
    with its artifacts, every profile and layout; scored against the page's truth (NaN where
    the page shows nothing; a lead left out scores 0 dB). Also the SNR at each lead's best
    shift within 0.25 s (timing errors vs the rest). ``out_dir`` gets ``per_lead.csv`` (with
    each lead's confidence and its factors: ``keep_uncertain`` scores every lead found, to see
    how confidence predicts the score)."""
    dig = Digitizer(checkpoint=checkpoint, keep_uncertain=keep_uncertain)
    rows, tiles = [], []
    specs = _foreign_pages(num, seed)
    for spec in tqdm(specs, desc="foreign", unit="page"):
        try:
            sig, fs = fp.read_record(spec["record"], digital_uv=True)
        except ValueError as exc:  # names the file; the other pages go on
            tqdm.write(f"error: page {spec['k']}: {exc}")
            continue
        page = fp.draw_page(sig, fs, spec["profile"], spec["seed"], spec["dpi"], spec["layout"])
        dig.fs, dig.num_samples = fs, page.truth.shape[1]
        for variant in ("clean", "artifacts"):
            img = page.image if variant == "clean" else fp.add_artifacts(page.image, spec["seed"])
            try:
                rec = dig.digitize(img)
                est, problem = rec.signal, None
                reports = {r.name: r for r in rec.leads}
                ppm_err = 100.0 * (rec.grid.px_per_mm / page.meta["px_per_mm"] - 1.0)
                layout_ok = rec.layout == spec["layout"].replace("3x4_0r", "3x4")
            except Exception as exc:  # noqa: BLE001 - a page that fails scores 0 dB, go on
                est, problem = np.full_like(page.truth, np.nan), f"{type(exc).__name__}: {exc}"
                reports = {}
                ppm_err, layout_ok = float("nan"), False
                tqdm.write(f"error: page {spec['k']} ({spec['profile']} {spec['layout']}, "
                           f"{variant}): {problem}")  # fmt: skip
            for lead, name in enumerate(fp.LEAD_NAMES):
                ref = page.truth[lead]
                if not np.isfinite(ref).any():
                    continue
                s = snr_db(ref, est[lead])
                b, lag = best_lag_snr_db(ref, est[lead], round(0.25 * fs))
                rows.append({"k": spec["k"], "profile": spec["profile"], "layout": spec["layout"],
                             "variant": variant, "record": spec["record"].stem, "lead": name,
                             "dpi": round(spec["dpi"], 1), "snr_db": s, "best_lag_snr_db": b,
                             "lag_ms": 1000.0 * lag / fs, "ppm_err_pct": ppm_err,
                             "layout_ok": layout_ok, "error": problem,
                             **_report_columns(reports.get(name))})  # fmt: skip
            first = spec["k"] == min(q["k"] for q in specs if q["profile"] == spec["profile"])
            if gallery is not None and first and (variant == "clean" or spec["k"] in (0, 7)):
                tiles.append((f"{spec['profile']} {spec['layout']} {variant}", img))
    out = _foreign_summary(rows)
    _foreign_table(out, dig.segmenter.name)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "per_lead.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        print(f"per lead: {out_dir / 'per_lead.csv'}")
    if gallery is not None:
        _foreign_gallery(tiles, gallery)
    return out


def _report_columns(report) -> dict:
    """A lead's confidence and the factors behind it (``digitizer.confidence``), for a CSV row."""
    d = report.to_dict() if report is not None else {}
    keys = ("confidence", "coverage", "calibration", "timing", "layout", "amplitude", "physics")
    return {f"conf_{k}" if k != "confidence" else k: d.get(k) for k in keys}


def _median_or_nan(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _summarise(rs: list[dict]) -> dict:
    """Means over leads; the lag is the median over the leads read at all (>= 3 dB at their
    best lag), so that leads that were not read do not pull it to 0."""
    snr = np.array([r["snr_db"] for r in rs], float)
    snr = np.where(np.isnan(snr), 0.0, snr)  # no finite score (e.g. a flat lead): 0 dB
    return {"leads": len(rs), "snr_db": float(np.mean(snr)),
            "best_lag_snr_db": float(np.nanmean([r["best_lag_snr_db"] for r in rs])),
            "median_lag_ms": _median_or_nan([r["lag_ms"] for r in rs if r["best_lag_snr_db"] >= 3]),
            "pct_below_0db": float(100.0 * np.mean(snr < 0.0)),
            "grid_within_2pct": float(np.mean(np.abs([r["ppm_err_pct"] for r in rs]) < 2.0)),
            "layout_correct": float(np.mean([r["layout_ok"] for r in rs]))}  # fmt: skip


def _foreign_summary(rows: list[dict]) -> dict:
    out: dict = {"cells": {}, "profiles": {}, "total": {}}
    for variant in ("clean", "artifacts"):
        vr = [r for r in rows if r["variant"] == variant]
        out["total"][variant] = _summarise(vr)
        for prof, lay in fp.profile_layouts():
            cell = [r for r in vr if r["profile"] == prof and r["layout"] == lay]
            if cell:
                out["cells"].setdefault(f"{prof}/{lay}", {})[variant] = _summarise(cell)
        for prof in fp.PROFILES:
            pr = [r for r in vr if r["profile"] == prof]
            if pr:
                out["profiles"].setdefault(prof, {})[variant] = _summarise(pr)
    out["total"]["all"] = _summarise(rows)
    out["errors"] = sorted({f"{r['k']} {r['variant']}: {r['error']}" for r in rows if r["error"]})
    return out


def _cell_text(c: dict | None) -> str:
    if c is None:
        return f" {'-':>43s}"
    return (f" {c['snr_db']:7.2f} / {c['best_lag_snr_db']:6.2f} {c['median_lag_ms']:6.0f} "
            f"{c['pct_below_0db']:6.1f}% {c['grid_within_2pct']:5.0%} "
            f"{c['layout_correct']:5.0%}")  # fmt: skip


def _foreign_table(out: dict, segmenter: str) -> None:
    print(f"independent page maker (scripts/foreign_pages.py), held-out LUDB, segmenter "
          f"{segmenter}; Challenge SNR dB unshifted / at the best lag (|lag| <= 0.25 s), "
          f"median best lag ms, % leads < 0 dB, px/mm within 2 %, layout read right")  # fmt: skip
    print(f"  {'':18s}" + "".join(f" {v:>43s}" for v in ("clean", "artifacts")))
    for group in ("cells", "profiles"):
        for key, v in out[group].items():
            print(f"  {key:18s}" + "".join(_cell_text(v.get(x)) for x in ("clean", "artifacts")))
    for variant in ("clean", "artifacts", "all"):
        t = out["total"][variant]
        print(f"  {'total ' + variant:18s}{_cell_text(t)}  ({t['leads']} leads)")
    for e in out["errors"]:
        print(f"  error: page {e}")


def _foreign_gallery(tiles: list[tuple[str, np.ndarray]], path: Path, width: int = 600) -> None:
    """A contact sheet of the given pages (two per row), each ``width`` px wide."""
    from PIL import Image, ImageDraw

    thumbs = []
    for title, img in tiles:
        im = Image.fromarray(img)
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
        tile = Image.new("RGB", (width, im.height + 16), (255, 255, 255))
        tile.paste(im, (0, 16))
        ImageDraw.Draw(tile).text((4, 2), title, fill=(0, 0, 0))
        thumbs.append(tile)
    cols = 2
    rows = [thumbs[i : i + cols] for i in range(0, len(thumbs), cols)]
    heights = [max(t.height for t in r) + 6 for r in rows]
    sheet = Image.new("RGB", (cols * (width + 6), sum(heights)), (255, 255, 255))
    y = 0
    for r, h in zip(rows, heights):
        for c, t in enumerate(r):
            sheet.paste(t, (c * (width + 6), y))
        y += h
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)  # small file
    print(f"gallery: {path}")


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


def eval_pdf(num: int, seed: int, checkpoint: str | None, png_pages: int = 4) -> dict:
    """Issue 15 acceptance (PDF input), scored with the Challenge SNR, unshifted, against the
    truth (NaN where the page shows nothing; a lead left out or a failed page scores 0 dB):

    - ``vector``: ``num`` vector PDFs of the independent page maker (every profile and layout,
      held-out LUDB records) read from their drawing paths, once as the maker writes them
      (matplotlib's default path simplification drops vertices up to 1/9 pt off the curve) and
      once with every sample a vertex (``path.simplify`` off);
    - ``raster200``: the same PDFs rendered at 200 dpi and read by the raster pipeline
      (``checkpoint``: the shipped U-Net by default);
    - ``png_vs_pdf``: ``png_pages`` clean ecgsynth pages exported as PNG and as raster PDF
      (``export --format pdf``), both read by the CLI's input path.
    """
    import tempfile

    import matplotlib

    from digitizer.pdf import input_pages, open_pdf, render_page
    from ecgsynth.export import export

    dig = Digitizer(checkpoint=checkpoint)
    scores: dict[str, list[float]] = {"vector": [], "vector_unsimplified": [], "raster200": []}
    per_profile: dict[str, dict[str, list[float]]] = {}
    sources: dict[str, int] = {}

    def lead_snrs(truth: np.ndarray, est: np.ndarray | None) -> list[float]:
        out = []
        for lead in range(truth.shape[0]):
            if np.isfinite(truth[lead]).any():
                s = snr_db(truth[lead], None if est is None else est[lead])
                out.append(0.0 if not np.isfinite(s) else s)
        return out

    def read_pdf(path: Path) -> np.ndarray | None:
        (page,) = list(input_pages(dig, path))
        if page.read().error is not None:
            tqdm.write(f"error: {page.error}")
            return None
        sources[page.record.source] = sources.get(page.record.source, 0) + 1
        return page.record.signal

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for spec in tqdm(_foreign_pages(num, seed), desc="pdf: vector", unit="page"):
            sig, fs = fp.read_record(spec["record"], digital_uv=True)
            page = fp.draw_page(sig, fs, spec["profile"], spec["seed"], spec["dpi"], spec["layout"])
            dig.fs, dig.num_samples = fs, page.truth.shape[1]
            cell = per_profile.setdefault(spec["profile"], {k: [] for k in scores})
            for key, simplify in (("vector", True), ("vector_unsimplified", False)):
                stem = tmp / f"{spec['k']}_{key}"
                with matplotlib.rc_context({"path.simplify": simplify}):
                    page.save(stem, pdf=True)
                s = lead_snrs(page.truth, read_pdf(stem.with_suffix(".pdf")))
                scores[key] += s
                cell[key] += s
            doc = open_pdf(tmp / f"{spec['k']}_vector.pdf")
            try:
                image = render_page(doc[0], 200.0)
            finally:
                doc.close()
            try:
                est = dig.digitize(image).signal
            except Exception as exc:  # noqa: BLE001 - a failed page scores 0 dB, go on
                tqdm.write(f"error: page {spec['k']} rasterised: {type(exc).__name__}: {exc}")
                est = None
            s = lead_snrs(page.truth, est)
            scores["raster200"] += s
            cell["raster200"] += s

        dig.fs, dig.num_samples = 500.0, 5000
        pair = {"png": [], "pdf": []}
        for fmt in ("png", "pdf"):
            export(tmp / fmt, png_pages, seed=seed, preset="clean", dpi=200.0, layout="random",
                   mask_unplotted=True, progress=False, image_format=fmt)  # fmt: skip
        for i in tqdm(range(png_pages), desc="pdf: png vs raster pdf", unit="page"):
            truth = wfdb.rdrecord(str(tmp / "png" / f"ecg_{i:05d}")).p_signal.T
            for fmt in ("png", "pdf"):
                (page,) = list(input_pages(dig, tmp / fmt / f"ecg_{i:05d}.{fmt}"))
                est = None if page.read().error is not None else page.record.signal
                pair[fmt].append(float(np.mean(lead_snrs(truth, est))))

    out = {
        "pages": num,
        "vector_snr_db": float(np.mean(scores["vector"])),
        "vector_unsimplified_snr_db": float(np.mean(scores["vector_unsimplified"])),
        "raster200_snr_db": float(np.mean(scores["raster200"])),
        "read_as": sources,
        "profiles": {
            p: {k: float(np.mean(v)) for k, v in c.items()} for p, c in per_profile.items()
        },
        "png_pages": png_pages,
        "png_snr_db": float(np.mean(pair["png"])),
        "raster_pdf_snr_db": float(np.mean(pair["pdf"])),
        "png_minus_pdf_db": float(np.mean(np.subtract(pair["png"], pair["pdf"]))),
    }
    print(
        f"PDF input, {num} vector PDFs of the independent page maker (held-out LUDB), "
        f"Challenge SNR dB, unshifted, truth NaN where not plotted; read as {sources}"
    )
    print(f"  {'':10s} {'vector':>8s} {'vector, every vertex':>21s} {'raster 200 dpi':>15s}")
    rows = {**out["profiles"], "all": {"vector": out["vector_snr_db"],
            "vector_unsimplified": out["vector_unsimplified_snr_db"],
            "raster200": out["raster200_snr_db"]}}  # fmt: skip
    for key, v in rows.items():
        print(f"  {key:10s} {v['vector']:8.2f} {v['vector_unsimplified']:21.2f} "
              f"{v['raster200']:15.2f}")  # fmt: skip
    print(f"ecgsynth clean pages, 200 dpi, {png_pages} pages: PNG {out['png_snr_db']:.2f} dB, "
          f"raster PDF {out['raster_pdf_snr_db']:.2f} dB "
          f"(difference {out['png_minus_pdf_db']:+.3f} dB)")  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("task", choices=["grid", "gtmask", "segmenter", "speed", "foreign", "pdf"])
    p.add_argument("--num", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--checkpoint",
        default=None,
        help="segmenter task: 'ink' (default), 'unet' or a U-Net path; foreign task: the default "
        "reader, 'ink', 'unet' or a path; speed task: the U-Net timed against ink (default unet)",
    )
    p.add_argument(
        "--gallery",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "docs" / "gallery_foreign.png",
        help="foreign task: where to write a contact sheet of some pages ('' = none)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/eval_foreign"),
        help="foreign task: folder for per_lead.csv",
    )
    p.add_argument(
        "--keep-uncertain",
        action="store_true",
        help="foreign task: write and score leads under the confidence threshold too",
    )
    p.add_argument("--dpi", type=float, default=200.0, help="gtmask task: page resolution")
    p.add_argument(
        "--lowpass",
        type=float,
        default=None,
        help="gtmask task: print the records through a display filter of this many Hz",
    )
    p.add_argument("--preset", default="clean", help="gtmask task: distortion preset")
    p.add_argument(
        "--heldout",
        action="store_true",
        help="gtmask task: held-out LUDB records (evaluate.py's test set with --seed 2024 --num 3)",
    )
    p.add_argument("--log", type=Path, default=Path(__file__).with_name("eval_digitizer.jsonl"))
    a = p.parse_args()
    torch.set_grad_enabled(False)
    defaults = {"grid": 200, "gtmask": 8, "segmenter": 4, "speed": 12, "foreign": 48, "pdf": 20}
    num = a.num or defaults[a.task]
    if a.task == "grid":
        res = eval_grid(num, a.seed)
    elif a.task == "gtmask":
        res = eval_gtmask(num, a.seed, a.dpi, a.lowpass, a.preset, a.heldout)
    elif a.task == "segmenter":
        res = eval_segmenter(num, a.seed, a.checkpoint or "ink")
    elif a.task == "foreign":
        gallery = None if str(a.gallery) in ("", ".") else a.gallery  # Path("") is "."
        res = eval_foreign(num, a.seed, a.checkpoint, gallery, a.out, a.keep_uncertain)
    elif a.task == "pdf":
        res = eval_pdf(num, a.seed, a.checkpoint)
    else:
        res = eval_speed(num, a.seed, a.checkpoint)
    line = {"task": a.task, "num": num, "seed": a.seed, "checkpoint": a.checkpoint,
            "dpi": a.dpi, "lowpass": a.lowpass, "preset": a.preset, "heldout": a.heldout,
            "host": platform.node(), "torch": torch.__version__, "result": res,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    with a.log.open("a") as f:
        f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
