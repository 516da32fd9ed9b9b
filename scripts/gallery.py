"""Gallery: one page of each layout at 200 dpi from the embedded records, as a PNG montage.

    python scripts/gallery.py --out docs/gallery_layouts.png
    python scripts/gallery.py --showcase --out docs/gallery_conventions.png

Writes the montage (pages at 40 % size, 2 per row, layout name on each) and, next to it,
``*_detail.png``: a full-resolution crop of the first page showing line and text rendering.
Pages are drawn as the training stream draws them (``--conventions random``: printing
conventions vary per page) or as the classic page (``--conventions standard``).
``--showcase`` instead draws a few named printing conventions side by side.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from ecgsynth.layout import LAYOUTS, PrintConvention
from ecgsynth.render import Renderer
from ecgsynth.sources import default_source
from ecgsynth.spec import GRID_SCHEMES, PageSpec, PageStyle, sample_header, sample_page_spec

PX_200 = 25.4 / 200  # mm per pixel at 200 dpi


def to_bgr(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float RGB -> ``[H, W, 3]`` uint8 BGR for OpenCV."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()[:, :, ::-1]


def _grid(scheme: str, major_mm: float = 0.2) -> dict:
    minor, major = GRID_SCHEMES[scheme]
    return {"grid_scheme": scheme, "grid_minor_color": minor, "grid_major_color": major,
            "grid_major_width_mm": major_mm}  # fmt: skip


def showcase(dpi: float) -> list[tuple[str, PageSpec]]:
    """A few printing conventions, named: (caption, spec)."""
    base = PageStyle()
    ink = (0.05, 0.05, 0.1)
    dark = {"grid_scheme": "as_ink", "grid_minor_color": (0.5, 0.5, 0.55),
            "grid_major_color": ink, "ink_color": ink, "grid_major_width_mm": 0.3}  # fmt: skip
    pages = [
        ("classic (conventions=standard)", "3x4", base, PrintConvention()),
        ("pulse at row end, column lines, no rhythm strip", "3x4",
         replace(base, **_grid("heavy_brown", 0.4), line_width_mm=2.0 * PX_200),
         PrintConvention(pulse="end", t0="edge", separators="lines", rhythm=())),
        ("first-row pulse, labels below, gaps, 2 strips", "3x4",
         replace(base, **_grid("heavy_blue", 0.35), line_width_mm=1.0 * PX_200),
         PrintConvention(pulse="first_row", labels="below", panel_gap_mm=2.0, margin_mm=3.0,
                         rhythm=("II", "V5"), pulse_width_s=0.1, pulse_gap_mm=1.0)),
        ("no pulse, t0 inset, labels left, 0.5 px trace", "6x2",
         replace(base, **_grid("heavy_black", 0.45), line_width_mm=0.5 * PX_200,
                 label_cap_mm=2.2),
         PrintConvention(pulse="none", t0="inset", t0_inset_mm=8.0, panel_gap_mm=8.0,
                         labels="left", separators="none", margin_mm=4.0, rhythm=("II",))),
        ("cropped to grid, grid as dark as trace, header below", "3x4_3r",
         replace(base, **dark, line_width_mm=1.5 * PX_200),
         PrintConvention(crop_to_grid=True, margin_mm=1.0, header="bottom", footer="top",
                         top_mm=9.0, bottom_mm=20.0)),
        ("12x1, pulse at end, 3 px trace, dark grey grid", "12x1",
         replace(base, **_grid("heavy_grey", 0.3), line_width_mm=3.0 * PX_200, face=3),
         PrintConvention(pulse="end", t0="inset", t0_inset_mm=4.0, header="none",
                         top_mm=10.0)),
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    out = []
    for caption, layout, style, convention in pages:
        header, footer = sample_header(rng, 25.0, 10.0)
        spec = PageSpec(layout=layout, dpi=dpi, style=style, convention=convention,
                        header=header, footer=footer)  # fmt: skip
        out.append((caption, spec))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/gallery_layouts.png")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dpi", type=float, default=200.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--conventions", choices=["random", "standard"], default="random")
    parser.add_argument("--showcase", action="store_true", help="named printing conventions")
    args = parser.parse_args()

    source = default_source(synthetic=False)
    rng = np.random.default_rng(args.seed)
    if args.showcase:
        captions, specs = zip(*showcase(args.dpi))
    else:
        captions = sorted(LAYOUTS)
        specs = [sample_page_spec(rng, layout=name, dpi=args.dpi, conventions=args.conventions)
                 for name in captions]  # fmt: skip
    signal = np.stack([source.sample(rng).signal for _ in captions])
    pages = Renderer(args.device).render(signal, source.fs, list(specs))
    if not args.showcase:  # the 3x4 family's rhythm strips are a convention: name them
        captions = [f"{c}, rhythm {'+'.join(m['rhythm']) or 'none'}"
                    for c, m in zip(captions, pages["meta"])]  # fmt: skip

    tiles = []
    for k, caption in enumerate(captions):
        img = np.ascontiguousarray(to_bgr(pages["image"][k]))
        zoom = 0.3 if args.showcase else 0.4
        tile = cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA)
        scale = 1.2 if len(caption) < 30 else (0.6 if args.showcase else 0.75)
        cv2.putText(tile, caption, (20, tile.shape[0] - 20), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (200, 40, 0), 3 if scale > 1 else 2, cv2.LINE_AA)  # fmt: skip
        tiles.append(tile)
    rows = [np.hstack(tiles[i : i + 2]) for i in range(0, len(tiles), 2)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if args.showcase:
        print(f"wrote {out}")
        return
    detail = to_bgr(pages["image"][0])[250:850, 0:1000]
    cv2.imwrite(str(out.with_name(out.stem + "_detail.png")), detail)
    print(f"wrote {out} and {out.with_name(out.stem + '_detail.png')}")


if __name__ == "__main__":
    main()
