"""Write a static synthetic dataset to disk (``python -m ecgsynth export``).

Page ``i`` is page ``i`` of :class:`ecgsynth.dataset.ECGPageSet` with the same options. Per
page ``NAME`` (``ecg_00000``, ...): ``NAME.png`` (RGB), ``NAME.json`` (geometry, per-lead points
and boxes, printing conventions, spec, seed) and the ground truth ``NAME.hea``/``NAME.dat`` (12
standard leads, mV, at the source fs). Page ``i`` depends only on ``(seed, i)`` and the inputs,
never on batch size or device order.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import wfdb
from tqdm import tqdm

from .dataset import ECGPageSet
from .layout import LEADS
from .sources import RecordError, RecordWarning, WfdbSource, default_source


@dataclass
class ExportReport:
    """What an export did: pages written and every input problem met (nothing is dropped
    silently)."""

    written: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def export(
    out: str | Path,
    num: int,
    seed: int = 0,
    records: str | Path | None = None,
    preset: str = "clean",
    dpi: float = 200.0,
    layout: str = "random",
    device: str = "cpu",
    mask_unplotted: bool = False,
    batch_size: int = 8,
    paper: str = "letter",
    progress: bool = True,
    conventions: str = "standard",
) -> ExportReport:
    """Write pages ``0 .. num-1`` of ``ECGPageSet(num, ..., seed=seed)`` into ``out``.
    ``conventions``: ``standard`` (classic pages) or ``random`` (printing conventions drawn per
    page, as in the training stream)."""
    out = Path(out)
    report = ExportReport()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = WfdbSource(records) if records is not None else default_source()
        pages = ECGPageSet(num, source, layout, preset, dpi, paper, seed, conventions)
        out.mkdir(parents=True, exist_ok=True)
        for first in tqdm(range(0, num, batch_size), desc="export", unit="batch",
                          disable=not progress):  # fmt: skip
            indices = list(range(first, min(num, first + batch_size)))
            batch = pages.render_batch(indices, device)
            for k, i in enumerate(indices):
                name = f"ecg_{i:05d}"
                _write_page(out / name, batch, k, seed, i, preset, mask_unplotted)
                report.written.append(name)
    report.problems = list(dict.fromkeys(str(w.message) for w in caught if _is_input_problem(w)))
    return report


def _is_input_problem(w: warnings.WarningMessage) -> bool:
    """Warnings that report a bad or doubtful input record (sources name the file in them)."""
    return issubclass(w.category, RecordWarning)


def _write_page(stem: Path, batch: dict, k: int, seed: int, index: int, preset: str,
                mask_unplotted: bool) -> None:  # fmt: skip
    """Write the PNG, JSON and WFDB files of page ``k`` of ``batch``."""
    image = (batch["image"][k].clamp(0, 1) * 255).round().to(torch.uint8)
    cv2.imwrite(str(stem.with_suffix(".png")), image.permute(1, 2, 0).cpu().numpy()[:, :, ::-1])

    meta = batch["meta"][k]
    points = batch["points"][k].cpu().numpy()
    leads = []
    for panel in meta["panels"]:
        pts = points[panel["channel"], panel["start_sample"] : panel["end_sample"]]
        leads.append({
            "name": panel["name"],
            "channel": panel["channel"],
            "start_sample": panel["start_sample"],
            "end_sample": panel["end_sample"],
            "baseline_y": round(panel["baseline_y"], 3),
            "box": [round(v, 3) for v in panel["box"]],
            "points": [None if not math.isfinite(x) else [round(float(x), 3), round(float(y), 3)]
                       for x, y in pts],
        })  # fmt: skip
    doc = {
        "name": stem.name,
        "seed": seed,
        "index": index,
        "preset": preset,
        "fs": meta["fs"],
        "num_samples": int(batch["signal"].shape[-1]),
        "px_per_mm": meta["px_per_mm"],
        "width": meta["width"],
        "height": meta["height"],
        "dpi": meta["dpi"],
        "layout": meta["layout"],
        "paper": meta["paper"],
        "paper_speed_mm_s": meta["paper_speed_mm_s"],
        "gain_mm_mv": meta["gain_mm_mv"],
        "rhythm": meta["rhythm"],
        "conventions": meta["conventions"],
        "source": meta["source"],
        "mask_unplotted": mask_unplotted,
        "homography": batch["homography"][k].cpu().tolist(),
        "distortion": meta.get("distortion", {}),
        "spec": meta["spec"],
        "leads": leads,
    }
    stem.with_suffix(".json").write_text(json.dumps(doc, separators=(",", ":")))

    signal = batch["signal"][k].cpu().numpy().astype(np.float64)
    if mask_unplotted:
        signal[~batch["signal_mask"][k].cpu().numpy()] = np.nan
    write_wfdb(stem, signal, meta["fs"])


def write_wfdb(stem: Path, signal: np.ndarray, fs: float) -> None:
    """Write ``signal`` ``[12, T]`` (mV, NaN allowed) as ``stem.hea``/``stem.dat`` (format 16,
    1 µV resolution; NaN becomes WFDB's invalid sample and reads back as NaN)."""
    wfdb.wrsamp(
        stem.name,
        fs=fs,
        units=["mV"] * len(LEADS),
        sig_name=list(LEADS),
        p_signal=signal.T,
        fmt=["16"] * len(LEADS),
        adc_gain=[1000.0] * len(LEADS),
        baseline=[0] * len(LEADS),
        write_dir=str(stem.parent),
    )


def main_export(args) -> int:
    """CLI body for ``python -m ecgsynth export``; returns the exit code."""
    try:
        report = export(
            out=args.out,
            num=args.num,
            seed=args.seed,
            records=args.records,
            preset=args.preset,
            dpi=args.dpi,
            layout=args.layout,
            device=args.device,
            mask_unplotted=args.mask_unplotted,
            batch_size=args.batch,
            paper=args.paper,
            conventions=args.conventions,
        )
    except (RecordError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems:
        print(f"error: {problem}", file=sys.stderr)
    summary = f"wrote {len(report.written)} pages to {args.out}"
    if report.problems:
        summary += f"; {len(report.problems)} input problem(s) reported above"
    print(summary)
    return 1 if report.problems else 0
