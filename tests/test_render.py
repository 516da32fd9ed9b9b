"""The renderer's ground truth is exact: masks hold every point, points read back to the signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import ecg_like, snr_db

from ecgsynth.layout import LAYOUTS, NUM_CHANNELS, page_size_px
from ecgsynth.raster import PolylineCanvas
from ecgsynth.render import Renderer, lead_masks
from ecgsynth.spec import PageSpec, sample_page_spec

FS = 500


@pytest.fixture(scope="module")
def pages() -> dict:
    rng = np.random.default_rng(1)
    specs = [sample_page_spec(rng, layout=name) for name in sorted(LAYOUTS)]
    return Renderer().render(ecg_like(len(specs)), FS, specs)


def test_shapes_and_ranges(pages):
    b = len(LAYOUTS)
    h, w = page_size_px("letter", 200)
    assert pages["image"].shape == (b, 3, h, w) and pages["image"].dtype == torch.float32
    assert float(pages["image"].min()) >= 0.0 and float(pages["image"].max()) <= 1.0
    assert pages["mask"].shape == (b, h, w) and pages["mask"].dtype == torch.uint8
    assert pages["points"].shape == (b, NUM_CHANNELS, 5000, 2)
    assert pages["boxes"].shape == (b, NUM_CHANNELS, 4)
    assert pages["signal_mask"].shape == (b, 12, 5000)
    assert [m["layout"] for m in pages["meta"]] == sorted(LAYOUTS)


def test_every_point_lies_on_its_own_trace_mask(pages):
    masks = lead_masks(pages["mask_bits"])  # [B, C, H, W]
    _, _, h, w = masks.shape
    checked = 0
    for b, meta in enumerate(pages["meta"]):
        for panel in meta["panels"]:
            c = panel["channel"]
            pts = pages["points"][b, c]
            pts = pts[torch.isfinite(pts[:, 0])]
            col, row = pts[:, 0].round().long(), pts[:, 1].round().long()
            inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
            assert inside.float().mean() > 0.99
            hit = masks[b, c, row[inside], col[inside]]
            assert bool(hit.all()), f"{meta['layout']} channel {c}: {int((~hit).sum())} misses"
            # the class map shows some trace at every point too
            assert bool((pages["mask"][b, row[inside], col[inside]] > 0).all())
            checked += int(inside.sum())
    assert checked > 10_000


def test_points_read_back_to_the_signal_above_40_db(pages):
    """Invert the documented mapping (metadata only) at 200 dpi and compare with the input."""
    signal = pages["signal"].numpy()
    for b, meta in enumerate(pages["meta"]):
        ppm, fs = meta["px_per_mm"], meta["fs"]
        for panel in meta["panels"]:
            pts = pages["points"][b, panel["channel"]].numpy()
            n = np.flatnonzero(np.isfinite(pts[:, 0]))
            assert n[0] == panel["start_sample"] and n[-1] == panel["end_sample"] - 1
            t = (pts[n, 0] - panel["x_origin"]) / (meta["paper_speed_mm_s"] * ppm)
            np.testing.assert_allclose(t * fs, n, atol=1e-2)
            mv = (panel["baseline_y"] - pts[n, 1]) / (meta["gain_mm_mv"] * ppm)
            lead = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
            ref = signal[b, lead.index(panel["name"]), n]
            assert snr_db(ref, mv) > 40.0


def test_pixels_read_back_to_the_signal(pages):
    """A column-centroid vectoriser on the per-channel mask recovers the signal: the raster
    itself (not only its metadata) is faithful."""
    masks = lead_masks(pages["mask_bits"]).numpy()
    signal = pages["signal"].numpy()
    scores = []
    for b, meta in enumerate(pages["meta"]):
        ppm, fs = meta["px_per_mm"], meta["fs"]
        for panel in meta["panels"]:
            m = masks[b, panel["channel"]].astype(np.float64)
            rows = np.arange(m.shape[0])[:, None]
            weight = m.sum(axis=0)
            cols = np.flatnonzero(weight > 0)
            y = (m[:, cols] * rows).sum(axis=0) / weight[cols]
            t = (cols - panel["x_origin"]) / (meta["paper_speed_mm_s"] * ppm)
            n = np.arange(panel["start_sample"], panel["end_sample"])
            ref = signal[b, pages["channel_lead"][b, panel["channel"]].item(), n]
            est = np.interp(n / fs, t, (panel["baseline_y"] - y) / (meta["gain_mm_mv"] * ppm))
            scores.append(snr_db(ref[5:-5], est[5:-5]))
    print(f"mask read-back SNR: mean {np.mean(scores):.1f} dB, min {min(scores):.1f} dB")
    assert np.mean(scores) > 20.0, scores
    assert min(scores) > 12.0, scores


def test_same_seed_same_pixels_and_batch_independent():
    sig = ecg_like(3, seed=4)
    specs = [sample_page_spec(np.random.default_rng(i), layout="random") for i in range(3)]
    again = [sample_page_spec(np.random.default_rng(i), layout="random") for i in range(3)]
    assert specs == again
    r = Renderer()
    full = r.render(sig, FS, specs)
    alone = r.render(sig[1:2], FS, specs[1:2])
    assert torch.equal(full["image"][1:2], alone["image"])
    assert torch.equal(full["mask_bits"][1:2], alone["mask_bits"])
    other = r.render(sig, FS, [sample_page_spec(np.random.default_rng(9), layout="random")] * 3)
    assert not torch.equal(full["image"], other["image"])


def test_nan_leads_are_not_drawn():
    sig = ecg_like(1)
    sig[0, 3] = np.nan  # aVR missing
    sig[0, 1, 1000:1500] = np.nan  # a gap in II
    out = Renderer().render(sig, FS, [PageSpec(layout="3x4")])
    assert not out["signal_mask"][0, 3].any()
    assert torch.isnan(out["points"][0, 3]).all()
    assert not bool((out["mask_bits"] & (1 << 3)).any())
    assert not out["signal_mask"][0, 1, 1000:1500].any()
    assert out["signal_mask"][0, 1, :1000].all()


def test_ink_is_darker_than_paper_on_traces(pages):
    img = pages["image"]
    on = img.mean(1)[pages["mask"] > 0]
    off = img.mean(1)[pages["mask"] == 0]
    assert float(on.mean()) < float(off.mean()) - 0.2


def test_raster_coverage_is_exact_for_a_flat_line():
    canvas = PolylineCanvas(1, 20, 20, "cpu")
    x = torch.tensor([[2.0, 15.0]])
    y = torch.tensor([[10.25, 10.25]])
    canvas.add(x, y, torch.tensor([0]), torch.tensor([1], dtype=torch.int32), torch.tensor([1.0]))
    coverage, bits, labels = canvas.finish()
    # line spans y in [9.75, 10.75]; pixel rows cover [r - 0.5, r + 0.5)
    col = coverage[0, :, 8]
    assert col[10].item() == pytest.approx(0.75, abs=1e-3)
    assert col[11].item() == pytest.approx(0.25, abs=1e-3)
    assert col.sum().item() == pytest.approx(1.0, abs=1e-3)
    assert bits[0, 10, 8] == 1 and bits[0, 11, 8] == 1 and bits[0, 9, 8] == 0
    assert labels[0, 10, 8] == 1 and labels[0, 0, 0] == 0
    # a vertical step from 4 to 16 within column 8 fills the whole span
    canvas = PolylineCanvas(1, 20, 20, "cpu")
    x = torch.tensor([[2.0, 8.0, 8.0, 15.0]])
    y = torch.tensor([[4.0, 4.0, 16.0, 16.0]])
    canvas.add(x, y, torch.tensor([0]), torch.tensor([2], dtype=torch.int32), torch.tensor([1.0]))
    coverage, bits, labels = canvas.finish()
    assert bool((coverage[0, 4:17, 8] == 1).all())
    assert labels[0, 10, 8] == 2


@pytest.mark.parametrize("width", [1.0, 2.7, 4.85, 7.0])
def test_thick_pen_reaches_sideways_by_its_radius(width: float):
    """Column c of a steep stroke shows the trace over [c - h, c + h] with h = r + 1/2,
    r = round(width / 2 - 1/2): the span's ends are y(c +- h) -+ width / 2 (to the pixel)."""
    slope = 4.0  # px per px, rising on screen (y decreases)
    canvas = PolylineCanvas(1, 260, 60, "cpu")
    x = torch.linspace(5.0, 55.0, 501)[None]
    canvas.add(x, 240.0 - slope * (x - 5.0), torch.tensor([0]),
               torch.tensor([1], dtype=torch.int32), torch.tensor([width]))  # fmt: skip
    _, bits, _ = canvas.finish()
    h = max(0.0, round(width / 2 - 0.5)) + 0.5
    for c in range(20, 40):
        rows = torch.nonzero(bits[0, :, c]).ravel()
        top = 240.0 - slope * (c + h - 5.0) - width / 2
        bottom = 240.0 - slope * (c - h - 5.0) + width / 2
        assert abs(int(rows.min()) - top) <= 0.5 + 1e-6
        assert abs(int(rows.max()) - bottom) <= 0.5 + 1e-6


def test_bad_batches_are_refused():
    r = Renderer()
    with pytest.raises(ValueError, match="signal must be"):
        r.render(np.zeros((2, 12, 100)), FS, [PageSpec()])
    with pytest.raises(ValueError, match="share paper and dpi"):
        r.render(np.zeros((2, 12, 100)), FS, [PageSpec(), PageSpec(dpi=100)])
    with pytest.raises(ValueError, match="unknown layout"):
        sample_page_spec(np.random.default_rng(0), layout="5x5")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    sig = ecg_like(2)
    specs = [sample_page_spec(np.random.default_rng(i)) for i in range(2)]
    cpu = Renderer("cpu").render(sig, FS, specs)
    gpu = Renderer("cuda").render(sig, FS, specs)
    assert torch.equal(cpu["mask_bits"], gpu["mask_bits"].cpu())
    assert float((cpu["image"] - gpu["image"].cpu()).abs().max()) < 1e-4


def test_pulse_ink_has_its_own_bit_and_stays_out_of_the_trace_mask():
    from ecgsynth.layout import PULSE_BIT

    spec = PageSpec(layout="3x4", dpi=100.0)
    with_pulse = Renderer().render(ecg_like(1), FS, [spec])
    pulse = ((with_pulse["mask_bits"] >> PULSE_BIT) & 1).bool()[0]
    # a 1 mV pulse per row (4 rows), each ~10 mm of stroke at 100 dpi: hundreds of pixels
    assert pulse.sum() > 200
    assert (with_pulse["mask"][0][pulse] == 0).float().mean() > 0.9  # not a trace class
    assert int(with_pulse["mask"].max()) <= NUM_CHANNELS
    # every channel bit still reads back as the class map
    assert torch.equal(lead_masks(with_pulse["mask_bits"]).any(1), with_pulse["mask"] > 0)
