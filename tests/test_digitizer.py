"""The digitizer pipeline: image I/O, grid, layout, vectorisation, Digitizer and the CLI."""

from __future__ import annotations

import copy
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from PIL import Image

from digitizer.calibration import find_pulses_in_ink, refine_pulses
from digitizer.grid import detect_grid, grid_drift
from digitizer.io import ImageError, read_image, write_record
from digitizer.layout import detect_layout
from digitizer.metrics import score_record
from digitizer.pipeline import Digitizer
from digitizer.vectorize import Pen, RowTrace, estimate_pen, fit_centerline, track_row
from ecgsynth import ECGPageSet
from ecgsynth.distort.presets import PRESET_CONFIGS
from ecgsynth.layout import LEADS
from ecgsynth.raster import PolylineCanvas

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ink() -> Digitizer:
    return Digitizer(checkpoint="ink")


def _page(layout: str = "3x4", preset: str | dict = "clean", dpi: float = 200.0, seed: int = 7,
          index: int = 0) -> dict:  # fmt: skip
    return ECGPageSet(index + 1, layout=layout, preset=preset, dpi=dpi, seed=seed).render_batch(
        [index]
    )


def _truth(batch: dict) -> np.ndarray:
    sig = batch["signal"][0].numpy().copy()
    sig[~batch["signal_mask"][0].numpy()] = np.nan
    return sig


def _mean_snr(truth: np.ndarray, estimate: np.ndarray) -> float:
    rows = score_record(truth, estimate, 500.0, align=False)
    return float(np.mean([r["snr_db"] for r in rows]))


# -- image I/O ------------------------------------------------------------------------------
def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width x height`` and holds no pixel data (a bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "I;16"])
def test_read_image_modes(tmp_path: Path, mode: str) -> None:
    rgb = np.full((80, 120, 3), 200, np.uint8)
    rgb[40, :, :] = 0
    im = Image.fromarray(rgb)
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.fromarray(np.where(rgb[..., 0] == 0, 255, 0).astype(np.uint8)))
    elif mode == "I;16":
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    else:
        im = im.convert(mode)
    im.save(tmp_path / "x.png")
    out = read_image(tmp_path / "x.png")
    assert out.shape == (80, 120, 3) and out.dtype == np.uint8
    assert out[40, 5].max() < 20  # the dark line survives every conversion
    expected_background = 255 if mode == "RGBA" else 200  # transparent = white paper
    assert abs(int(out[10, 5, 0]) - expected_background) <= 6  # palette quantisation


def test_read_image_jpeg(tmp_path: Path) -> None:
    Image.fromarray(np.full((90, 90, 3), 128, np.uint8)).save(tmp_path / "a.jpg", quality=90)
    assert read_image(tmp_path / "a.jpg").shape == (90, 90, 3)


def test_bad_images_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:120])
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 100_000, 100_000)
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tiny)
    cases = {
        empty: "empty",
        text: "not a readable image",
        truncated: "cannot decode",
        bomb: "exceeds the limit",
        tiny: "too small",
        tmp_path / "missing.png": "no such file",
    }
    for path, problem in cases.items():
        with pytest.raises(ImageError) as err:
            read_image(path)
        assert str(path) in str(err.value) and problem in str(err.value)
    with pytest.raises(ImageError, match="exceeds"):
        read_image(good, max_pixels=1000)


def test_write_record_round_trip(tmp_path: Path) -> None:
    sig = np.sin(np.linspace(0, 20, 5000, dtype=np.float32))[None].repeat(12, 0)
    sig[3, :2500] = np.nan
    write_record(tmp_path / "r", sig, 500.0)
    rec = wfdb.rdrecord(str(tmp_path / "r"))
    assert rec.sig_name == list(LEADS) and rec.units == ["mV"] * 12 and rec.fs == 500
    back = rec.p_signal.T
    assert np.isnan(back[3, :2500]).all()
    np.testing.assert_allclose(back[0], sig[0], atol=1e-3)


# -- grid --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dpi, seed", [(100.0, 3), (200.0, 5), (300.0, 8)])
def test_grid_rotation_and_scale(dpi: float, seed: int) -> None:
    cfg = copy.deepcopy(PRESET_CONFIGS["medium"])
    cfg["warp"].update(rotation_deg=15.0, p=1.0, scale=(1.0, 1.0), folds=0)
    page = ECGPageSet(1, preset=cfg, dpi=dpi, seed=seed)
    # pick a style with a printed grid (a page without one is the fallback's test)
    for k in range(10):
        page = ECGPageSet(1, preset=cfg, dpi=dpi, seed=seed + 100 * k)
        b = page.render_batch([0])
        if b["meta"][0]["spec"]["style"]["grid"] != "none":
            break
    h = b["homography"][0].double().numpy()
    true_rot = math.degrees(math.atan2(h[1, 0], h[0, 0]))
    g = detect_grid(b["image"][0].permute(1, 2, 0).numpy())
    assert g.source == "grid"
    assert abs(g.rotation_deg - true_rot) < 0.3
    assert abs(g.px_per_mm / float(b["px_per_mm"][0]) - 1) < 0.02


@pytest.mark.parametrize("dpi, seed", [(80.0, 9), (160.0, 4)])
def test_grid_scale_on_12x1_pages(dpi: float, seed: int) -> None:
    """12x1 rows repeat every 15 mm, three 5 mm squares: the grid's period must still win."""
    cfg = copy.deepcopy(PRESET_CONFIGS["medium"])
    cfg["warp"].update(rotation_deg=15.0, p=1.0, scale=(1.0, 1.0), folds=0)
    for k in range(10):
        b = ECGPageSet(1, layout="12x1", preset=cfg, dpi=dpi, seed=seed + 100 * k).render_batch([0])
        if b["meta"][0]["spec"]["style"]["grid"] != "none":
            break
    g = detect_grid(b["image"][0].permute(1, 2, 0).numpy())
    h = b["homography"][0].double().numpy()
    assert g.source == "grid"
    assert abs(g.rotation_deg - math.degrees(math.atan2(h[1, 0], h[0, 0]))) < 0.3
    assert abs(g.px_per_mm / float(b["px_per_mm"][0]) - 1) < 0.02


def test_grid_fallback_on_blank_page() -> None:
    g = detect_grid(np.ones((850, 1100, 3), np.float32))
    assert g.source == "page-size" and g.confidence == 0.0
    assert abs(g.px_per_mm - 1100 / 279.4) < 0.1
    assert any("no usable grid" in n for n in g.notes)


@pytest.mark.parametrize("drop_px", [0.0, 3.0, -2.0])
def test_grid_drift_measures_a_residual_tilt_under_a_trace(drop_px: float) -> None:
    """A grid whose lines fall ``drop_px`` over 1200 px (a rotation the rectification left),
    with a dark trace over it, gives that drop along the row to a tenth of a pixel."""
    ppm, h, w = 7.87, 400, 1200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frac = np.mod((yy - drop_px * xx / w) / ppm, 1.0)
    d_h = np.minimum(frac, 1.0 - frac) * ppm  # distance to the nearest horizontal line
    frac = np.mod(xx / ppm, 1.0)
    d_v = np.minimum(frac, 1.0 - frac) * ppm
    grid = 0.35 * np.exp(-0.5 * (np.minimum(d_h, d_v) / 0.6) ** 2)
    trace = np.abs(yy - (200 + 40 * np.sin(xx / 25.0))) < 1.5
    img = np.repeat((1.0 - np.maximum(grid, 0.9 * trace))[..., None], 3, axis=2)
    coef = grid_drift(img.astype(np.float32), trace.astype(np.float32), 200.0, 0, w - 1, ppm)
    assert coef is not None
    assert abs(np.polyval(coef, w - 1.0) - np.polyval(coef, 0.0) - drop_px) < 0.1
    blank = np.ones_like(img, dtype=np.float32)
    assert grid_drift(blank, np.zeros((h, w), np.float32), 200.0, 0, w - 1, ppm) is None


# -- vectorisation -------------------------------------------------------------------------------
def test_track_row_follows_its_own_trace_past_a_neighbour() -> None:
    prob = np.zeros((120, 200), np.float32)
    prob[40, :] = 1.0  # this row's trace: flat at y = 40
    prob[70:100, 100] = 1.0  # a tall spike of the row below reaching into the band
    prob[85, :] = 1.0
    tr = track_row(prob, baseline=40.0, half_height=50.0)
    assert np.allclose(tr.y, 40.0)


def test_track_row_waits_where_its_trace_leaves_the_band() -> None:
    """A deep S wave leaves the band while the row above reaches in: the path leaves those
    columns out (NaN) instead of jumping onto the neighbour, and a small hole in a vertical
    stroke does not break it."""
    prob = np.zeros((400, 120), np.float32)
    prob[200, :51] = prob[200, 70:] = 1.0  # this row, flat at y = 200, ...
    prob[200:400, 50] = 1.0  # ... dives below the band (y > 290) at column 50
    prob[200:400, 70] = 1.0  # ... and comes back at column 70
    prob[125, 52:69] = 1.0  # the row above's trace, inside the band meanwhile
    prob[203:206, 70] = 0.0  # a hole in the returning stroke
    tr = track_row(prob, baseline=200.0, half_height=90.0)
    assert np.isnan(tr.y[52:69]).all()
    np.testing.assert_allclose(tr.y[:50], 200.0)
    np.testing.assert_allclose(tr.y[71:], 200.0)
    assert tr.top[70] == 200 and tr.bottom[70] == 290  # one run through the hole, to the band


def test_track_row_keeps_the_tip_of_a_split_spike_but_not_a_label_on_a_tick() -> None:
    """Near the tip of a narrow spike printed faint, a column holds the up-stroke's top apart
    from the foot of the down-stroke (a hole of many pixels); the path takes the foot, nearer
    the baseline, and the column's extent must still reach the tip. A label stroke touching a
    separator tick from below is not joined to the trace beside the tick."""
    prob = np.zeros((200, 120), np.float32)
    prob[100, :] = 1.0  # baseline
    prob[55:101, 50] = 1.0  # the up-stroke
    prob[20:91, 51] = 1.0  # its top, apart from the foot at y = 100 (a 9 px hole)
    prob[18:96, 52] = 1.0  # the down-stroke's top ...
    prob[99:102, 52] = 1.0  # ... apart from its foot
    prob[40:102, 53] = 1.0
    prob[70:131, 80:83] = 1.0  # a separator tick across the trace
    prob[125:136, 83] = prob[133:141, 84] = 1.0  # a label's stroke touching its bottom
    tr = track_row(prob, baseline=100.0, half_height=90.0)
    assert tr.outer_top[51] == 20 and tr.outer_top[52] == 18  # the tip stays in the extents
    assert tr.top[51] == 100  # (the path's own run: the foot)
    assert tr.outer_top[83] == 100 and tr.outer_bottom[83] == 100  # the label does not join
    line = fit_centerline(tr, Pen(0.5, 1.0))
    assert np.nanmin(line.y) < 22.0  # the centre line reaches the tip


def _beats(x: np.ndarray) -> np.ndarray:
    """A row of narrow R waves (sigma 2.5 px), S waves and broad T waves, y down (px)."""
    y = np.full_like(x, 100.0)
    for c in (40, 140, 240, 340):
        y -= 60 * np.exp(-0.5 * ((x - c) / 2.5) ** 2)
        y += 20 * np.exp(-0.5 * ((x - c - 6) / 2.0) ** 2)
        y -= 12 * np.exp(-0.5 * ((x - c - 40) / 9.0) ** 2)
    return y


@pytest.mark.parametrize("width", [1.0, 2.7, 4.85])
def test_centerline_keeps_steep_strokes_and_peaks(width: float) -> None:
    """Drawn by the real raster with a pen of ``width`` px, the trace is recovered to a
    fraction of a pixel, where the column centroid is off by many pixels on the QRS."""
    x = np.arange(10, 390, 0.3937)  # 500 Hz at 200 dpi and 25 mm/s
    y = _beats(x)
    canvas = PolylineCanvas(1, 200, 400, "cpu")
    xt, yt = (torch.tensor(v, dtype=torch.float32)[None] for v in (x, y))
    one = torch.tensor([1], dtype=torch.int32)
    canvas.add(xt, yt, torch.tensor([0]), one, torch.tensor([width]))
    _, bits, _ = canvas.finish()
    trace = track_row((bits[0] > 0).numpy().astype(np.float32), 100.0, 90.0)
    pen = estimate_pen([trace])
    reach = max(0, round(width / 2 - 0.5)) + 0.5  # the raster's sideways reach
    assert pen.measured and abs(pen.reach - reach) < 0.1 and abs(pen.width - width) < 1.0
    inner = (x > 15) & (x < 385)
    err = fit_centerline(trace, pen).sample(x)[inner] - y[inner]
    traced = np.flatnonzero(np.isfinite(trace.y))
    centroid = np.interp(x[inner], traced, trace.y[traced]) - y[inner]
    assert np.isfinite(err).all()
    assert np.sqrt(np.mean(err**2)) < 0.35 and np.abs(err).max() < 1.0
    assert np.sqrt(np.mean(centroid**2)) > 0.45  # what the fit is measured against


def test_centerline_marks_breaks_nan_and_holds_ends() -> None:
    top = np.full(60, np.nan)
    top[5:25], top[35:55] = 49.0, 49.0
    trace = RowTrace(top + 1.0, top.copy(), top + 2.0, 3.0)
    line = fit_centerline(trace, Pen(1.5, 3.0))
    v = line.sample(np.array([15.0, 30.0, 45.0, 3.0, 2.0]), hold=1.0)
    np.testing.assert_allclose(v[[0, 2, 3]], 50.0, atol=1e-6)  # 3.0 is held from the end
    assert np.isnan(v[1]) and np.isnan(v[4])  # inside the break; beyond the hold


def test_pen_reach_stays_near_the_level_width_on_a_blurred_page(ink: Digitizer) -> None:
    """A held-out medium page (black grid, wrinkles, a 2.6 px pen): the flanks of its steep
    strokes once fitted a sideways reach of 8 px (the search's limit), which flattened every
    QRS (1.4 dB). A round nib reaches about as far as the level strokes are thick."""
    from digitizer.evaluation import heldout_source

    pages = ECGPageSet(1, heldout_source(), layout="6x2", preset="medium", dpi=200.0, seed=2024)
    b = pages.render_batch([0])
    image = b["image"][0].permute(1, 2, 0).numpy()
    grid = detect_grid(image)
    rect = torch.from_numpy(grid.rectify(image, border=1.0).transpose(2, 0, 1).copy())[None]
    layout = detect_layout(ink.segmenter(rect, grid.px_per_mm)[0].numpy(), grid.px_per_mm)
    pen = estimate_pen([r.trace for r in layout.rows])
    assert 2 * pen.reach <= pen.width + 3.0
    assert _mean_snr(_truth(b), ink.digitize(image).signal) > 8.0


# -- the pipeline -----------------------------------------------------------------------------
def test_pulses_give_baseline_and_gain_to_a_tenth_of_a_pixel() -> None:
    """The pulses are in the image, not in the trace mask: found in the ink, their levels
    measured on the anti-aliased strokes."""
    for k in range(10):
        b = _page("3x4", seed=21 + k)
        if b["meta"][0]["spec"]["style"]["pulses"]:
            break
    meta = b["meta"][0]
    image = b["image"][0].permute(1, 2, 0).numpy()
    grid = detect_grid(image)
    layout = detect_layout(grid.rectify((b["mask"][0] > 0).float().numpy(), border=0.0),
                           grid.px_per_mm)  # fmt: skip
    find_pulses_in_ink(layout.rows, grid.rectify(image), grid.px_per_mm)
    pen = estimate_pen([r.trace for r in layout.rows])
    refine_pulses(layout.rows, grid.rectify(image), pen)
    baselines = sorted({p["baseline_y"] for p in meta["panels"]})
    gain_px = meta["gain_mm_mv"] * meta["px_per_mm"]
    assert len(layout.rows) == len(baselines) == 4
    for row, truth in zip(layout.rows, baselines):
        assert row.pulse is not None
        assert abs(row.pulse.foot - truth) < 0.15
        assert abs(row.pulse.height / gain_px - 1) < 0.005


@pytest.mark.parametrize("layout", ["3x4", "3x4_3r", "6x2", "12x1"])
def test_ground_truth_mask_recovers_signal(ink: Digitizer, layout: str) -> None:
    b = _page(layout)
    rec = ink.digitize_mask(b["image"][0], (b["mask"][0] > 0).float())
    assert rec.layout == layout
    assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
    # every plotted sample is recovered, nothing else
    truth = _truth(b)
    shown = np.isfinite(truth)
    assert np.isfinite(rec.signal[shown]).mean() > 0.97
    assert _mean_snr(truth, rec.signal) > 8.0  # loose floor; numbers in scripts/eval_digitizer.py


def test_ink_segmenter_end_to_end_clean(ink: Digitizer) -> None:
    b = _page("3x4", seed=11)
    rec = ink.digitize(b["image"][0])
    assert rec.layout == "3x4"
    assert _mean_snr(_truth(b), rec.signal) > 3.0


def test_output_rate_and_length(ink: Digitizer) -> None:
    b = _page("3x4")
    dig = Digitizer(segmenter=ink.segmenter, fs=250.0, num_samples=3000)
    rec = dig.digitize_mask(b["image"][0], (b["mask"][0] > 0).float())
    assert rec.signal.shape == (12, 3000) and rec.fs == 250.0
    assert np.isnan(rec.signal[:, 2500:]).all()  # the page shows 10 s only
    lead_ii = rec.signal[1, :2500]
    assert np.isfinite(lead_ii).mean() > 0.97


def test_blank_page_gives_nan_and_says_so(ink: Digitizer) -> None:
    rec = ink.digitize(np.full((850, 1100, 3), 255, np.uint8))
    assert np.isnan(rec.signal).all()
    assert rec.layout == "none"
    assert any("no ECG trace" in w for w in rec.warnings)
    assert len(rec.missing_leads) == 12


def test_accepts_tensor_greyscale_and_rgba(ink: Digitizer) -> None:
    b = _page("3x4")
    img = b["image"][0]
    rgb = ink.digitize(img).signal
    grey = (img.mean(0).numpy() * 255).astype(np.uint8)
    rgba = np.concatenate([(img.permute(1, 2, 0).numpy() * 255).astype(np.uint8),
                           np.full((*grey.shape, 1), 255, np.uint8)], axis=2)  # fmt: skip
    for other in (grey, rgba):
        sig = ink.digitize(other).signal
        assert sig.shape == rgb.shape
        assert np.isfinite(sig).sum() > 0.5 * np.isfinite(rgb).sum()


def test_overlay_draws_over_the_input(ink: Digitizer) -> None:
    b = _page("3x4")
    rec = ink.digitize_mask(b["image"][0], (b["mask"][0] > 0).float())
    ov = ink.overlay(b["image"][0], rec)
    assert ov.shape == (*b["image"].shape[2:], 3) and ov.dtype == np.uint8
    on_trace = (b["mask"][0] > 0).numpy()
    colourful = ov.max(axis=2).astype(int) - ov.min(axis=2) > 60
    assert colourful[on_trace].mean() > 0.5


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises((ValueError, OSError), match="nope.pt"):
        Digitizer(checkpoint=tmp_path / "nope.pt")


# -- command line -------------------------------------------------------------------------------
def test_cli_processes_good_files_and_names_bad_ones(tmp_path: Path) -> None:
    b = _page("3x4", dpi=100.0)
    img = (b["image"][0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "page.png")
    Image.fromarray(img).save(tmp_path / "photo.jpg", quality=85)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "digitizer", str(tmp_path / "page.png"),
         str(tmp_path / "broken.png"), str(tmp_path / "photo.jpg"), "--out", str(out),
         "--overlay", "--fs", "250", "--num-samples", "2500", "--checkpoint", "ink",
         "--keep-uncertain"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"error: {tmp_path / 'broken.png'}:" in proc.stderr
    assert "Traceback" not in proc.stderr
    for stem in ("page", "photo"):
        rec = wfdb.rdrecord(str(out / stem))
        assert rec.sig_name == list(LEADS) and rec.fs == 250 and rec.sig_len == 2500
        assert np.isfinite(rec.p_signal).any()
        assert (out / f"{stem}_overlay.png").is_file()
    assert not (out / "broken.hea").exists()


def test_cli_all_good_exits_zero(tmp_path: Path) -> None:
    Image.fromarray(np.full((400, 520, 3), 255, np.uint8)).save(tmp_path / "blank.png")
    proc = subprocess.run(
        [sys.executable, "-m", "digitizer", str(tmp_path / "blank.png"), "--out",
         str(tmp_path / "o"), "--checkpoint", "ink"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "no ECG trace found" in proc.stderr  # a warning, with NaN leads written
    assert np.isnan(wfdb.rdrecord(str(tmp_path / "o" / "blank")).p_signal).all()


def test_segmenter_protocol_accepts_any_callable() -> None:
    b = _page("3x4")
    truth_prob = (b["mask"][0] > 0).float()

    class Oracle:
        name = "oracle"

        def __call__(self, image: torch.Tensor) -> torch.Tensor:
            return truth_prob[None]

    rec = Digitizer(segmenter=Oracle()).digitize(b["image"][0])
    assert rec.layout == "3x4" and _mean_snr(_truth(b), rec.signal) > 8.0


def test_pen_width_is_bounded_by_the_level_runs() -> None:
    """Blur or texture along the steep strokes (their runs 2 px longer at both ends) would make
    the pen seem 2.6 px wide; where the trace runs level, a column's run is the pen itself
    (1 px), and the width stays within half a pixel of it."""
    x = np.arange(10, 390, 0.3937)
    canvas = PolylineCanvas(1, 200, 400, "cpu")
    xt, yt = (torch.tensor(v, dtype=torch.float32)[None] for v in (x, _beats(x)))
    one = torch.tensor([1], dtype=torch.int32)
    canvas.add(xt, yt, torch.tensor([0]), one, torch.tensor([1.0]))
    _, bits, _ = canvas.finish()
    trace = track_row((bits[0] > 0).numpy().astype(np.float32), 100.0, 90.0)
    steep = (trace.bottom - trace.top) > 6
    top, bottom = (
        np.where(steep, trace.top - 2, trace.top),
        np.where(steep, trace.bottom + 2, trace.bottom),
    )
    textured = RowTrace(trace.y, top, bottom, trace.line_width)
    assert estimate_pen([trace]).width == pytest.approx(1.0, abs=0.3)
    assert estimate_pen([textured]).width <= 1.0 + 0.5 + 1e-6
