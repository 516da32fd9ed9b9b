"""Gallery: a curled, folded page photographed at an angle, as the digitizer reads it.

    python scripts/gallery_dewarp.py --out docs/gallery_dewarp.png

Renders one page from the embedded records (150 dpi), bends it with ecgsynth's geometric warp at
the ``heavy`` preset's strength (perspective, rotation, curl, folds, waviness; no other
artifact), digitizes it and writes two panels side by side: the input with the recovered traces
drawn over it, and the page the digitizer measured (dewarped by :mod:`digitizer.dewarp`, its
rows straight), with the region where the grid was seen outlined. Prints the mean SNR of the
reading against the page's truth.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch
from PIL import Image

from digitizer.metrics import snr_db
from digitizer.pipeline import Digitizer
from ecgsynth import ECGPageSet
from ecgsynth.distort.geometric import GeometricWarp
from ecgsynth.sources import default_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/gallery_dewarp.png")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layout", default="3x4")
    parser.add_argument("--width", type=int, default=900, help="width of each panel, px")
    args = parser.parse_args()

    pages = ECGPageSet(args.seed + 1, source=default_source(), layout=args.layout,
                       preset="clean", dpi=150, seed=11)  # fmt: skip
    batch = pages.render_batch([args.seed])
    warp = GeometricWarp(rotation_deg=8.0, perspective=0.06, scale=(1.0, 1.0), translate=0.0,
                         folds=2, fold_shift=0.004, curl=0.03, waviness=0.003, p=1.0)  # fmt: skip
    _, _, h, w = batch["image"].shape
    out = warp.apply(batch, warp.sample(1, h, w, torch.Generator().manual_seed(args.seed)))
    page = out["image"][0].permute(1, 2, 0).numpy()

    dig = Digitizer(keep_uncertain=True)
    rec = dig.digitize(page)
    truth = batch["signal"][0].numpy().astype(float)
    truth[~batch["signal_mask"][0].numpy()] = np.nan
    snr = np.mean([snr_db(truth[k], rec.signal[k]) for k in range(12)])
    print(f"grid: {rec.grid.source}, {rec.grid.px_per_mm:.3f} px/mm (true {150 / 25.4:.3f}); "
          f"layout {rec.layout}; mean SNR {snr:.1f} dB; notes: {rec.grid.notes}")  # fmt: skip

    left = dig.overlay(page, rec)[:, :, ::-1]
    rect = (np.clip(rec.grid.rectify(page), 0, 1) * 255).astype(np.uint8)[:, :, ::-1].copy()
    if rec.grid.region is not None:
        cv2.polylines(rect, [np.round(rec.grid.region).astype(np.int32)], True, (40, 160, 40), 3)
    panels = []
    for img, label in ((left, "input, traces read"), (rect, "dewarped page (grid region)")):
        s = args.width / img.shape[1]
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cv2.putText(img, label, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 160), 2)
        panels.append(img)
    height = max(p.shape[0] for p in panels)
    panels = [cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, 8, cv2.BORDER_CONSTANT,
                                 value=(255, 255, 255)) for p in panels]  # fmt: skip
    sheet = np.ascontiguousarray(np.hstack(panels)[:, :, ::-1])
    Image.fromarray(sheet).quantize(256).save(args.out, optimize=True)  # 256 colours: small
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
