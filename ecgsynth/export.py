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
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import wfdb
from tqdm import tqdm

from .layout import LEADS, PAPER_SIZES_MM
from .sources import RecordError, RecordWarning, WfdbSource, default_source

IMAGE_FORMATS = ("png", "pdf")


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
    image_format: str = "png",
) -> ExportReport:
    """Write pages ``0 .. num-1`` of ``ECGPageSet(num, ..., seed=seed)`` into ``out``.

    ``conventions``: ``standard`` (classic pages) or ``random`` (printing conventions drawn per
    page, as in the training stream). ``image_format``: ``png`` writes ``NAME.png``; ``pdf``
    writes ``NAME.pdf``, a raster PDF page of the paper's physical size holding the same pixels
    (lossless).
    """
    from .dataset import ECGPageSet  # here: write_wfdb's users (the digitizer) skip kornia

    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; choose one of {IMAGE_FORMATS}")
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
                _write_page(out / name, batch, k, seed, i, preset, mask_unplotted, image_format)
                report.written.append(name)
    report.problems = list(dict.fromkeys(str(w.message) for w in caught if _is_input_problem(w)))
    return report


def _is_input_problem(w: warnings.WarningMessage) -> bool:
    """Warnings that report a bad or doubtful input record (sources name the file in them)."""
    return issubclass(w.category, RecordWarning)


def _write_page(stem: Path, batch: dict, k: int, seed: int, index: int, preset: str,
                mask_unplotted: bool, image_format: str = "png") -> None:  # fmt: skip
    """Write the PNG (or PDF), JSON and WFDB files of page ``k`` of ``batch``."""
    image = (batch["image"][k].clamp(0, 1) * 255).round().to(torch.uint8)
    rgb = image.permute(1, 2, 0).cpu().numpy()
    meta = batch["meta"][k]
    if image_format == "pdf":
        write_image_pdf(stem.with_suffix(".pdf"), rgb, PAPER_SIZES_MM[meta["paper"]])
    else:
        cv2.imwrite(str(stem.with_suffix(".png")), rgb[:, :, ::-1])

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


def write_image_pdf(path: Path, rgb: np.ndarray, size_mm: tuple[float, float]) -> None:
    """Write ``rgb`` ``uint8 [H, W, 3]`` as a one-page raster PDF: the page is ``size_mm``
    ``(width, height)`` (the paper's physical size) and the image fills it, its pixels stored
    losslessly (Flate). Deterministic: the same pixels give the same bytes."""
    h, w = rgb.shape[:2]
    w_pt, h_pt = size_mm[0] / 25.4 * 72.0, size_mm[1] / 25.4 * 72.0
    pixels = zlib.compress(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes(), 6)
    content = f"q {w_pt:.4f} 0 0 {h_pt:.4f} 0 0 cm /Im0 Do Q".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.4f} {h_pt:.4f}] /Contents 4 0 R "
        "/Resources << /XObject << /Im0 5 0 R >> >> >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace /DeviceRGB "
        f"/BitsPerComponent 8 /Filter /FlateDecode /Length {len(pixels)} >>\nstream\n".encode()
        + pixels
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects):
        offsets.append(len(out))
        out += f"{i + 1} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    path.write_bytes(bytes(out))


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
            image_format=args.format,
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
