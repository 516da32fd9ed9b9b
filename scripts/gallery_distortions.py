"""Gallery: every distortion alone and every preset on one rendered page, as labelled montages.

    python scripts/gallery_distortions.py --out docs/gallery_distortions.png

Renders one page at 100 dpi from the embedded records, applies each effect of
:mod:`ecgsynth.distort.paper`, :mod:`~ecgsynth.distort.overlays` and
:mod:`~ecgsynth.distort.sensor` alone (``p = 1``, ``strength = 0.8``) and writes a montage of
downscaled tiles (a 256-colour PNG, ~1 MB), the clean page first, each labelled with the
effect's name, above a 1:1 strip of the page's middle showing fine detail (noise, blur, JPEG).
The low-resolution scan, the geometric warp and the ``medium`` and ``heavy`` presets follow.
Next to it, ``*_presets.png`` shows the presets larger, with the warped ground-truth trace points
drawn in red over the heavy page (they must sit on the traces).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ecgsynth.distort import GeometricWarp, build_pipeline, overlays, paper, sensor
from ecgsynth.distort.geometric import LowResolution
from ecgsynth.render import Renderer
from ecgsynth.sources import default_source
from ecgsynth.spec import sample_page_spec


def to_bgr(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float RGB -> ``[H, W, 3]`` uint8 BGR for OpenCV."""
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()[:, :, ::-1]


def effects() -> list[type]:
    """Every effect class, in module order (paper, overlays, sensor)."""
    return [getattr(m, name) for m in (paper, overlays, sensor) for name in m.__all__]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/gallery_distortions.png")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--dpi", type=float, default=100.0)
    parser.add_argument("--strength", type=float, default=0.8)
    parser.add_argument("--scale", type=float, default=0.45, help="tile size / page size")
    parser.add_argument("--cols", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    source = default_source(synthetic=False)
    rng = np.random.default_rng(args.seed)
    spec = sample_page_spec(rng, layout="3x4_3r", dpi=args.dpi)
    signal = source.sample(rng).signal[None]
    batch = Renderer(args.device).render(signal, source.fs, [spec])
    image = batch["image"]

    tiles = [("clean", image[0])]
    for k, cls in enumerate([*effects(), LowResolution]):
        effect = cls(p=1.0, strength=args.strength)
        generator = torch.Generator().manual_seed(args.seed * 1000 + k)
        params = effect.sample(1, *image.shape[-2:], generator, image.device)
        tiles.append((cls.__name__, effect.apply(image, params)[0]))
    warp = GeometricWarp(rotation_deg=8, perspective=0.05, folds=2, curl=0.03, waviness=0.003)
    params = warp.sample(1, *image.shape[-2:], torch.Generator().manual_seed(args.seed), "cpu")
    tiles.append(("GeometricWarp", warp.apply(batch, params)["image"][0]))
    presets = {}
    for name in ("medium", "heavy"):
        presets[name] = build_pipeline(name)(batch, [torch.Generator().manual_seed(args.seed)])
        tiles.append((f"preset {name}", presets[name]["image"][0]))

    rendered = []
    for name, tile in tiles:
        full = to_bgr(tile)
        small = cv2.resize(full, None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_AREA)
        # below the page: a 1:1 strip of its middle, to show fine detail (noise, blur, JPEG)
        height, width = full.shape[:2]
        y0, x0 = int(0.45 * height), (width - small.shape[1]) // 2
        strip = full[y0 : y0 + int(0.14 * height), x0 : x0 + small.shape[1]]
        small = np.ascontiguousarray(np.vstack([small, np.full_like(small[:3], 80), strip]))
        cv2.rectangle(small, (0, small.shape[0] - 30), (small.shape[1], small.shape[0]),
                      (255, 255, 255), -1)  # fmt: skip
        cv2.putText(small, name, (8, small.shape[0] - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (160, 40, 0), 2, cv2.LINE_AA)  # fmt: skip
        rendered.append(cv2.copyMakeBorder(small, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0))
    blank = np.full_like(rendered[0], 255)
    rendered += [blank] * (-len(rendered) % args.cols)
    rows = [np.hstack(rendered[i : i + args.cols]) for i in range(0, len(rendered), args.cols)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256-colour palette: noise makes true-colour PNG large, and the tiles only need to show
    # what each effect looks like
    montage = Image.fromarray(np.ascontiguousarray(np.vstack(rows)[:, :, ::-1]))
    montage = montage.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    montage.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(tiles)} tiles)")

    pages = [to_bgr(image[0]), to_bgr(presets["medium"]["image"][0])]
    heavy = np.ascontiguousarray(to_bgr(presets["heavy"]["image"][0]))
    for channel in presets["heavy"]["points"][0]:
        pts = channel[torch.isfinite(channel[:, 0])].cpu().numpy()
        for x, y in pts[::3]:
            cv2.circle(heavy, (int(round(x)), int(round(y))), 0, (0, 0, 255), -1)
    pages.append(heavy)
    side = np.hstack([cv2.resize(p, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
                      for p in pages])  # fmt: skip
    extra = out.with_name(out.stem + "_presets.png")
    Image.fromarray(side[:, :, ::-1]).quantize(256, dither=Image.Dither.NONE).save(extra)
    print(f"wrote {extra} (clean | medium | heavy with its warped trace points in red)")


if __name__ == "__main__":
    main()
