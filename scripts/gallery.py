"""Gallery: one page of each layout at 200 dpi from the embedded records, as a PNG montage.

    python scripts/gallery.py --out docs/gallery_layouts.png

Writes the montage (pages at 40 % size, 2 per row, layout name on each) and, next to it,
``*_detail.png``: a full-resolution crop of the first page showing line and text rendering.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from ecgsynth.layout import LAYOUTS
from ecgsynth.render import Renderer
from ecgsynth.sources import default_source
from ecgsynth.spec import sample_page_spec


def to_bgr(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float RGB -> ``[H, W, 3]`` uint8 BGR for OpenCV."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()[:, :, ::-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/gallery_layouts.png")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dpi", type=float, default=200.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    source = default_source(synthetic=False)
    rng = np.random.default_rng(args.seed)
    names = sorted(LAYOUTS)
    specs = [sample_page_spec(rng, layout=name, dpi=args.dpi) for name in names]
    signal = np.stack([source.sample(rng).signal for _ in names])
    pages = Renderer(args.device).render(signal, source.fs, specs)

    tiles = []
    for k, name in enumerate(names):
        img = np.ascontiguousarray(to_bgr(pages["image"][k]))
        tile = cv2.resize(img, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
        cv2.putText(tile, name, (20, tile.shape[0] - 20), cv2.FONT_HERSHEY_SIMPLEX, 1.2,
                    (200, 40, 0), 3, cv2.LINE_AA)  # fmt: skip
        tiles.append(tile)
    rows = [np.hstack(tiles[i : i + 2]) for i in range(0, len(tiles), 2)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    detail = to_bgr(pages["image"][0])[250:850, 0:1000]
    cv2.imwrite(str(out.with_name(out.stem + "_detail.png")), detail)
    print(f"wrote {out} and {out.with_name(out.stem + '_detail.png')}")


if __name__ == "__main__":
    main()
