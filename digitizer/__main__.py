"""``python -m digitizer IMAGE_OR_PDF [...] --out DIR [--fs 500] [--num-samples 5000]
[--checkpoint ink|unet|PATH] [--overlay] [--keep-uncertain]``

Writes, per image or one-page PDF (``STEM_p1..pN`` for an N-page PDF; vector pages are read
from their drawing paths, see :mod:`digitizer.pdf`), ``DIR/STEM.hea`` + ``STEM.dat`` (12 leads
``I II III aVR aVL aVF V1..V6``, mV, NaN where the page shows nothing or the lead's confidence
is under the threshold; per-lead confidence in the header comments) and ``DIR/STEM.json``
(``{"layout", "source", "leads": [{"name", "confidence", ...}], "warnings"}``); with
``--overlay`` also ``DIR/STEM_overlay.png``. A file (or PDF page) that cannot be read gets an
``error: <file>: <problem>`` line and the others are still processed; the exit code is 1 if
any input failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from .confidence import CONFIDENCE_THRESHOLD
from .io import header_comments, write_record, write_report
from .pdf import input_pages
from .pipeline import Digitizer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m digitizer", description="ECG image -> 12-lead WFDB record"
    )
    p.add_argument(
        "images",
        nargs="+",
        type=Path,
        help="PNG/JPEG (any Pillow format) pages or PDFs (an N-page PDF gives STEM_p1..pN)",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--fs", type=float, default=500.0, help="output sampling rate (Hz)")
    p.add_argument("--num-samples", type=int, default=5000, help="output length (samples)")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="segmenter: 'ink' (the non-learned default), 'unet' (the shipped "
        "checkpoints/unet_small.pt) or a U-Net checkpoint path",
    )
    p.add_argument("--device", default="cpu", help="where the U-Net runs (cpu, cuda)")
    p.add_argument("--overlay", action="store_true", help="also write STEM_overlay.png")
    p.add_argument(
        "--keep-uncertain",
        action="store_true",
        help=f"write leads under the confidence threshold ({CONFIDENCE_THRESHOLD}) too "
        "(default: NaN)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        dig = Digitizer(args.checkpoint, fs=args.fs, num_samples=args.num_samples,
                        device=args.device, keep_uncertain=args.keep_uncertain)  # fmt: skip
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    stems: set[str] = set()
    # every input becomes pages (an image: one; a PDF: STEM or STEM_p1..pN), read one by one
    inputs = tqdm(args.images, desc="digitizing", unit="file", disable=len(args.images) < 2)
    for page in (page for path in inputs for page in input_pages(dig, path)):
        stem, path = page.stem, page.label
        if stem in stems:
            print(
                f"error: {path}: another input already wrote {stem}.hea; skipped", file=sys.stderr
            )
            failed += 1
            continue
        stems.add(stem)
        if page.read().error is not None:
            print(f"error: {page.error}", file=sys.stderr)
            failed += 1
            continue
        image, rec = page.image, page.record
        report = rec.report()
        write_record(args.out / stem, rec.signal, rec.fs, header_comments(report))
        write_report(args.out / stem, report)
        for w in rec.warnings:
            print(f"warning: {path}: {w}", file=sys.stderr)
        if args.overlay:
            cv2.imwrite(str(args.out / f"{stem}_overlay.png"), dig.overlay(image, rec)[..., ::-1])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
