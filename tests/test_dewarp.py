"""Dense dewarping (digitizer.dewarp): a grid bent by a known smooth map comes out straight, and
a curled, tilted photo of one of our pages is read after it, where one homography fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitizer import dewarp, grid


def _bent_grid(h: int = 1200, w: int = 1600, ppm: float = 8.0):
    """Line evidence ``[h, w]`` of a 1 mm grid (heavier 5 mm lines) drawn through the map
    image px -> paper mm ``(u, v)``, which bends both line families (no homography does it)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)

    def u_of(x, y):
        return (x + 40.0 * ((y - h / 2) / (h / 2)) ** 2 + 0.05 * y) / ppm

    def v_of(x, y):
        return (y + 30.0 * ((x - w / 2) / (w / 2)) ** 2 - 0.08 * x) / ppm

    ev = np.zeros((h, w))
    for c in (u_of(x, y), v_of(x, y)):
        d_minor = (c - np.round(c)) * ppm  # px to the nearest 1 mm line
        d_major = (c / 5 - np.round(c / 5)) * 5 * ppm
        ev = np.maximum(ev, np.maximum(0.5 * np.exp(-(d_minor**2) / 0.8),
                                       np.exp(-(d_major**2) / 1.5)))  # fmt: skip
    return ev.astype(np.float32), u_of, v_of


def test_bent_grid_comes_out_straight() -> None:
    ev, u_of, v_of = _bent_grid()
    warp = dewarp.dense_dewarp(ev, prior_ppm=8.0)
    assert warp is not None
    assert warp.px_per_mm == pytest.approx(8.0, rel=0.01)
    # every rectified column is one paper u, every row one paper v: sample a lattice
    ys, xs = np.mgrid[40 : warp.map_x.shape[0] - 40 : 37, 40 : warp.map_x.shape[1] - 40 : 41]
    mx, my = warp.map_x[ys, xs], warp.map_y[ys, xs]
    inside = (mx > 5) & (mx < ev.shape[1] - 5) & (my > 5) & (my < ev.shape[0] - 5)
    assert inside.mean() > 0.5
    u = u_of(mx, my)[inside] - xs[inside] / warp.px_per_mm
    v = v_of(mx, my)[inside] - ys[inside] / warp.px_per_mm
    # paper position minus rectified position is one constant over the page, to 0.15 mm
    assert np.ptp(u) < 0.3 and np.ptp(v) < 0.3, (np.ptp(u), np.ptp(v))
    # the grid fills the region the result reports
    assert warp.region.shape[1] == 2 and len(warp.region) >= 3


def test_no_grid_gives_none() -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((600, 800)).astype(np.float32) * 0.1
    assert dewarp.dense_dewarp(noise, prior_ppm=4.0) is None


def test_estimate_maps_points_back_to_the_input() -> None:
    ev, u_of, v_of = _bent_grid()
    img = np.repeat((1.0 - 0.6 * ev)[..., None], 3, axis=2)
    ev_img = grid.line_evidence(img)
    est = grid._dense_estimate(ev_img, grid.without_ink(ev_img, img), prior_ppm=8.0)
    assert est is not None and est.source == "grid" and est.warp is not None
    assert est.px_per_mm == pytest.approx(8.0, rel=0.01)
    pts = np.array([[300.0, 200.0], [900.0, 700.0]])
    back = est.to_input(pts)
    assert np.allclose(back[0], [est.warp[0][200, 300], est.warp[1][200, 300]], atol=1e-3)
    rect = est.rectify(img)
    assert rect.shape[:2] == est.size
    outside = est.outside()
    assert outside is not None and outside.shape == est.size and 0 < outside.mean() < 0.9


@pytest.mark.parametrize("seed", [1])
def test_curled_photo_is_read(seed: int) -> None:
    """A clean page, curled, folded and tilted 8 degrees in perspective: one homography leaves its
    grid lines bent (no grid found), the dense dewarp reads it."""
    from digitizer.metrics import snr_db
    from digitizer.pipeline import Digitizer
    from ecgsynth import ECGPageSet
    from ecgsynth.distort.geometric import GeometricWarp
    from ecgsynth.sources import default_source

    b = ECGPageSet(seed + 1, source=default_source(), layout="3x4", preset="clean", dpi=150,
                   seed=11).render_batch([seed])  # fmt: skip
    warp = GeometricWarp(rotation_deg=8.0, perspective=0.06, scale=(1.0, 1.0), translate=0.0,
                         folds=2, fold_shift=0.004, curl=0.03, waviness=0.003, p=1.0)  # fmt: skip
    _, _, h, w = b["image"].shape
    out = warp.apply(b, warp.sample(1, h, w, torch.Generator().manual_seed(seed)))
    page = out["image"][0].permute(1, 2, 0).numpy()
    ppm = 150 / 25.4
    rec = Digitizer(keep_uncertain=True).digitize(page)
    assert rec.grid.px_per_mm == pytest.approx(ppm, rel=0.03)
    truth = b["signal"][0].numpy().astype(float)
    truth[~b["signal_mask"][0].numpy()] = np.nan
    snr = np.mean([snr_db(truth[k], rec.signal[k]) for k in range(12)])
    assert snr > 3.0, snr
