"""Geometric warps move every target with the image: points stay on the warped trace mask,
the recorded homography maps clean points onto warped ones, boxes follow."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import ecg_like
from kornia.geometry.linalg import transform_points

from ecgsynth.distort import geometric
from ecgsynth.distort.geometric import GeometricWarp
from ecgsynth.render import Renderer, lead_masks
from ecgsynth.spec import sample_page_spec

WARPS = {
    "rotation": GeometricWarp(rotation_deg=15, scale=(1, 1), translate=0),
    "perspective": GeometricWarp(rotation_deg=0, perspective=0.08, scale=(1, 1), translate=0),
    "scale_crop_pad": GeometricWarp(rotation_deg=0, scale=(0.7, 1.3), translate=0.05),
    "folds": GeometricWarp(rotation_deg=0, scale=(1, 1), translate=0, folds=3, fold_shift=0.005),
    "curl": GeometricWarp(rotation_deg=0, scale=(1, 1), translate=0, curl=0.04),
    "waviness": GeometricWarp(rotation_deg=0, scale=(1, 1), translate=0, waviness=0.005),
    "everything": GeometricWarp(
        rotation_deg=10, perspective=0.06, folds=2, curl=0.03, waviness=0.004
    ),  # fmt: skip
}
RIGID = ("rotation", "perspective", "scale_crop_pad")


@pytest.fixture(scope="module")
def pages() -> dict:
    rng = np.random.default_rng(0)
    specs = [sample_page_spec(rng, layout=name, dpi=80) for name in ("3x4", "6x2", "12x1")]
    return Renderer().render(ecg_like(3), 500, specs)


def hit_rate(batch: dict) -> float:
    masks = lead_masks(batch["mask_bits"])
    _, _, h, w = masks.shape
    hits = total = 0
    for b in range(masks.shape[0]):
        for c in range(masks.shape[1]):
            p = batch["points"][b, c]
            p = p[torch.isfinite(p[:, 0])]
            col, row = p[:, 0].round().long(), p[:, 1].round().long()
            inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
            hits += int(masks[b, c, row[inside], col[inside]].sum())
            total += int(inside.sum())
    assert total > 5000
    return hits / total


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values, NaN where the other is NaN."""
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


@pytest.mark.parametrize("name", sorted(WARPS))
def test_points_stay_on_the_warped_trace(pages, name):
    warp = WARPS[name]
    _, _, h, w = pages["image"].shape
    params = warp.sample(3, h, w, torch.Generator().manual_seed(1))
    out = warp.apply(pages, params)
    assert hit_rate(out) >= 0.99
    assert not torch.equal(out["image"], pages["image"])
    assert out["image"].shape == pages["image"].shape
    assert float(out["image"].min()) >= 0 and float(out["image"].max()) <= 1
    if name in RIGID:
        clean = pages["points"].reshape(3, -1, 2)
        mapped = transform_points(params["homography"], clean)
        err = (mapped - out["points"].reshape(3, -1, 2)).abs()
        assert float(torch.nan_to_num(err).max()) < 0.5
        assert torch.equal(torch.isnan(mapped), torch.isnan(out["points"].reshape(3, -1, 2)))


def test_boxes_contain_their_warped_points(pages):
    warp = WARPS["everything"]
    _, _, h, w = pages["image"].shape
    out = warp.apply(pages, warp.sample(3, h, w, torch.Generator().manual_seed(2)))
    for b, meta in enumerate(pages["meta"]):
        for panel in meta["panels"]:
            c = panel["channel"]
            pts = out["points"][b, c]
            pts = pts[torch.isfinite(pts[:, 0])]
            x0, y0, x1, y1 = out["boxes"][b, c]
            assert bool(((pts[:, 0] >= x0 - 1) & (pts[:, 0] <= x1 + 1)).all())
            # traces may leave their row band vertically (tall QRS): check x only, and that
            # the box centre moved like the points did
            assert abs(float((x0 + x1) / 2 - pts[:, 0].mean())) < (x1 - x0) / 2


def test_same_seed_same_warp_and_inactive_pages_are_untouched(pages):
    warp = WARPS["everything"]
    _, _, h, w = pages["image"].shape
    a = warp.apply(pages, warp.sample(3, h, w, torch.Generator().manual_seed(3)))
    b = warp.apply(pages, warp.sample(3, h, w, torch.Generator().manual_seed(3)))
    c = warp.apply(pages, warp.sample(3, h, w, torch.Generator().manual_seed(4)))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask_bits"], b["mask_bits"])
    assert not torch.equal(a["image"], c["image"])
    off = GeometricWarp(p=0.0, rotation_deg=10)
    same = off.apply(pages, off.sample(3, h, w, torch.Generator().manual_seed(3)))
    assert float((same["image"] - pages["image"]).abs().max()) < 1e-5
    assert torch.equal(same["mask_bits"], pages["mask_bits"])


def test_too_steep_a_field_raises_instead_of_desynchronising(pages):
    warp = GeometricWarp(rotation_deg=0, scale=(1, 1), translate=0, waviness=0.2)
    _, _, h, w = pages["image"].shape
    with pytest.raises(RuntimeError, match="cannot move trace points"):
        warp.apply(pages, warp.sample(3, h, w, torch.Generator().manual_seed(0)))


def test_warping_in_a_batch_with_unwarped_pages_equals_warping_alone(pages):
    """Pages without the warp are copied bit-exact; the others warp as they would alone."""
    warp = WARPS["everything"]
    _, _, h, w = pages["image"].shape
    params = warp.sample(3, h, w, torch.Generator().manual_seed(5))
    params["active"] = torch.tensor([True, False, True])
    out = warp.apply(pages, params)
    for key in ("image", "mask_bits", "mask", "points", "boxes"):
        assert same(out[key][1], pages[key][1]), key
    for i in (0, 2):
        alone = warp.apply({k: v[i : i + 1] for k, v in pages.items() if k != "meta"},
                           {k: v[i : i + 1] for k, v in params.items()})  # fmt: skip
        for key in ("image", "mask_bits", "mask", "points", "boxes"):
            assert same(out[key][i : i + 1], alone[key]), key


def test_the_warp_does_not_depend_on_its_row_blocks(pages, monkeypatch):
    warp = WARPS["everything"]
    _, _, h, w = pages["image"].shape
    params = warp.sample(3, h, w, torch.Generator().manual_seed(6))
    whole = warp.apply(pages, params)
    monkeypatch.setattr(geometric, "WARP_BLOCK", 3 * w * 7)
    blocked = warp.apply(pages, params)
    for key in ("image", "mask_bits", "mask"):
        assert torch.equal(blocked[key], whole[key]), key


def test_lowest_channel_is_one_plus_the_lowest_set_bit():
    bits = torch.arange(1 << 15, dtype=torch.int32).view(1, 128, 256)
    expected = [0] + [1 + (v & -v).bit_length() - 1 for v in range(1, 1 << 15)]
    assert geometric.lowest_channel(bits).flatten().tolist() == expected
