"""Printing conventions: every convention keeps the ground truth exact, puts pulses, marks and
labels where it says, and is drawn per page (reproducibly) by the random stream."""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from helpers import ecg_like, snr_db

from ecgsynth.dataset import ECGImageDataset, ECGPageSet, PageOptions
from ecgsynth.layout import LEADS, NUM_LEADS, TRACE_BITS, PrintConvention, page_geometry
from ecgsynth.render import Renderer, lead_masks
from ecgsynth.sources import ArraySource
from ecgsynth.spec import HEAVY_SCHEMES, PageSpec, PageStyle, sample_page_spec

FS = 500
DPI = 100.0
BARE = PageStyle(grid="none", labels=False)  # only traces, pulses and marks are ink

# one page per convention value (and a few combinations), each named for the failure message
CASES: dict[str, tuple[str, PrintConvention]] = {
    "classic": ("3x4", PrintConvention()),
    "pulse_end": ("3x4", PrintConvention(pulse="end", t0="edge", pulse_gap_mm=3.0)),
    "pulse_first_row": ("6x2", PrintConvention(pulse="first_row", pulse_width_s=0.1)),
    "pulse_none_edge": ("12x1", PrintConvention(pulse="none", t0="edge")),
    "t0_inset": ("3x4_3r", PrintConvention(t0="inset", t0_inset_mm=5.0, pulse_gap_mm=0.5)),
    "lines_gap": ("3x4", PrintConvention(separators="lines", panel_gap_mm=3.0, margin_mm=1.0)),
    "no_marks": ("6x2", PrintConvention(separators="none", panel_gap_mm=3.0, labels="below")),
    "labels_left": ("3x4", PrintConvention(labels="left", pulse_gap_mm=9.0, panel_gap_mm=9.0)),
    "no_rhythm": ("3x4", PrintConvention(rhythm=())),
    "two_strips": (
        "3x4",
        PrintConvention(
            rhythm=("II", "V5"), pulse="end", t0="inset", t0_inset_mm=2.0, margin_mm=3.0
        ),
    ),  # fmt: skip
    "6x2_strip": (
        "6x2",
        PrintConvention(rhythm=("II",), header="bottom", footer="top", top_mm=16.0, bottom_mm=30.0),
    ),  # fmt: skip
    "cropped": (
        "3x4_3r",
        PrintConvention(
            crop_to_grid=True,
            margin_mm=1.0,
            header="none",
            footer="none",
            top_mm=4.0,
            bottom_mm=4.0,
        ),
    ),  # fmt: skip
}


def spec_of(layout: str, convention: PrintConvention, style: PageStyle = BARE) -> PageSpec:
    return PageSpec(layout=layout, dpi=DPI, style=style, convention=convention)


@pytest.fixture(scope="module")
def pages() -> dict:
    specs = [spec_of(layout, conv) for layout, conv in CASES.values()]
    return Renderer().render(ecg_like(len(specs), seed=2), FS, specs)


@pytest.fixture(scope="module")
def flat() -> dict:
    """The same pages with flat traces: pulses and marks are the only ink off the baseline."""
    specs = [spec_of(layout, conv) for layout, conv in CASES.values()]
    return Renderer().render(np.zeros((len(specs), NUM_LEADS, 5000), np.float32), FS, specs)


@pytest.fixture(scope="module")
def random_pages() -> dict:
    specs = [sample_page_spec(np.random.default_rng(100 + i), dpi=DPI) for i in range(8)]
    return Renderer().render(ecg_like(len(specs), seed=5), FS, specs)


def check_truth(batch: dict, names: list[str]) -> None:
    """Every plotted point lies on its own channel's mask, and reads back to the signal through
    the panel's documented time axis and baseline."""
    masks = lead_masks(batch["mask_bits"])
    _, _, h, w = masks.shape
    signal = batch["signal"].numpy()
    for b, meta in enumerate(batch["meta"]):
        ppm = meta["px_per_mm"]
        for panel in meta["panels"]:
            c, where = panel["channel"], f"{names[b]} channel {panel['channel']}"
            pts = batch["points"][b, c]
            n = torch.nonzero(torch.isfinite(pts[:, 0])).ravel()
            assert int(n[0]) == panel["start_sample"] and int(n[-1]) == panel["end_sample"] - 1
            col, row = pts[n, 0].round().long(), pts[n, 1].round().long()
            inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
            assert inside.float().mean() > 0.98, where
            hit = masks[b, c, row[inside], col[inside]]
            assert bool(hit.all()), f"{where}: {int((~hit).sum())} points off their mask"
            t = (pts[n, 0].double().numpy() - panel["x_origin"]) / (meta["paper_speed_mm_s"] * ppm)
            np.testing.assert_allclose(t * meta["fs"], n.numpy(), atol=1e-2, err_msg=where)
            mv = (panel["baseline_y"] - pts[n, 1].double().numpy()) / (meta["gain_mm_mv"] * ppm)
            assert snr_db(signal[b, LEADS.index(panel["name"]), n.numpy()], mv) > 40.0, where


def test_every_convention_keeps_points_on_their_own_mask(pages):
    check_truth(pages, list(CASES))


def test_random_conventions_keep_points_on_their_own_mask(random_pages):
    check_truth(random_pages, [f"random page {i}" for i in range(8)])


def test_signal_mask_is_false_where_the_page_shows_no_sample(pages, random_pages):
    """``signal_mask`` is exactly the union of the panels' windows, for every convention."""
    for batch in (pages, random_pages):
        for b, meta in enumerate(batch["meta"]):
            shown = np.zeros((NUM_LEADS, batch["signal"].shape[-1]), bool)
            for p in meta["panels"]:
                shown[LEADS.index(p["name"]), p["start_sample"] : p["end_sample"]] = True
            assert np.array_equal(batch["signal_mask"][b].numpy(), shown)


def test_3x4_without_rhythm_strip_shows_ii_for_its_window_only(pages):
    b = list(CASES).index("no_rhythm")
    assert pages["meta"][b]["rhythm"] == []
    ii = pages["signal_mask"][b, LEADS.index("II")]
    assert ii[:1250].all() and not ii[1250:].any()
    assert torch.isnan(pages["points"][b, NUM_LEADS:]).all()
    assert torch.isnan(pages["boxes"][b, NUM_LEADS:]).all()
    assert not bool(((pages["mask_bits"][b] & TRACE_BITS) >> NUM_LEADS).any())
    assert (pages["channel_lead"][b, NUM_LEADS:] == -1).all()


def test_two_rhythm_strips_show_their_leads_for_the_whole_page(pages):
    b = list(CASES).index("two_strips")
    assert pages["meta"][b]["rhythm"] == ["II", "V5"]
    assert pages["channel_lead"][b, NUM_LEADS:].tolist() == [1, 10, -1]
    assert pages["signal_mask"][b, [1, 10]].all()  # II and V5: all 10 s
    v1 = pages["signal_mask"][b, LEADS.index("V1")]  # no V1 strip: its third-column window only
    assert v1[2500:3750].all() and not v1[:2500].any() and not v1[3750:].any()
    assert torch.isnan(pages["points"][b, NUM_LEADS + 2]).all()


def test_panel_gaps_keep_consecutive_windows(pages):
    """With a gap, column c still shows samples [c T/4, (c+1) T/4), drawn from its own t = 0;
    the boxes leave the gap blank."""
    meta = pages["meta"][list(CASES).index("lines_gap")]
    gap_px = 3.0 * meta["px_per_mm"]
    row = [p for p in meta["panels"] if p["name"] in ("I", "aVR", "V1", "V4")]
    assert [p["start_sample"] for p in row] == [0, 1250, 2500, 3750]
    for left, right in zip(row, row[1:]):
        assert right["start_sample"] == left["end_sample"]
        assert right["box"][0] - left["box"][2] == pytest.approx(gap_px, abs=1e-6)
        assert right["x_origin"] - left["x_origin"] == pytest.approx(gap_px, abs=1e-6)


def off_mask_ink(batch: dict, b: int) -> np.ndarray:
    """``[H, W]`` pixels inked but on no trace mask: pulses and column marks (no grid, no text)."""
    ink = batch["image"][b].mean(0) < 0.6
    return (ink & ((batch["mask_bits"][b] & TRACE_BITS) == 0)).numpy()


def rows_of(meta: dict) -> list[list[dict]]:
    rows: dict[float, list[dict]] = {}
    for p in meta["panels"]:
        rows.setdefault(round(p["baseline_y"], 3), []).append(p)
    return [sorted(r, key=lambda p: p["box"][0]) for _, r in sorted(rows.items())]


def pulse_columns(batch: dict, b: int, row: list[dict]) -> np.ndarray:
    """x of off-mask ink within 3 px of the row's baseline-to-1 mV band."""
    meta = batch["meta"][b]
    base, top = row[0]["baseline_y"], row[0]["baseline_y"] - meta["gain_mm_mv"] * meta["px_per_mm"]
    ys, xs = np.nonzero(off_mask_ink(batch, b))
    sel = (ys > top - 3) & (ys < base + 3)
    return xs[sel]


@pytest.mark.parametrize("name", ["classic", "pulse_end", "pulse_first_row", "pulse_none_edge"])
def test_pulse_is_where_the_convention_says(flat, name):
    b = list(CASES).index(name)
    meta, conv = flat["meta"][b], CASES[name][1]
    ppm = meta["px_per_mm"]
    pulse_w = (2.0 + conv.pulse_width_s * meta["paper_speed_mm_s"]) * ppm
    for r, row in enumerate(rows_of(meta)):
        xs = pulse_columns(flat, b, row)
        first_x, last_x = row[0]["x_origin"], row[-1]["box"][2]
        drawn = conv.pulse == "start" or (conv.pulse == "first_row" and r == 0)
        if conv.pulse == "end":
            xs = xs[xs > last_x]
            assert xs.size, f"{name} row {r}: no pulse after the last sample"
            assert xs.min() >= last_x + conv.pulse_gap_mm * ppm - 2
            assert xs.max() <= last_x + conv.pulse_gap_mm * ppm + pulse_w + 2
            assert xs.max() - xs.min() >= pulse_w - 3  # the whole pulse, not a stray mark
        elif drawn:
            xs = xs[xs < first_x]
            assert xs.size and xs.max() - xs.min() >= pulse_w - 3, f"{name} row {r}"
            assert xs.max() <= first_x - conv.pulse_gap_mm * ppm + 2
        else:
            assert not (xs < first_x).any() and not (xs > last_x + 2).any(), f"{name} row {r}"


def test_pulse_is_one_millivolt_tall(flat):
    b = list(CASES).index("pulse_end")
    meta = flat["meta"][b]
    ink = off_mask_ink(flat, b)
    row = rows_of(meta)[0]
    x0 = int(np.ceil(row[-1]["box"][2])) + 1
    ys = np.nonzero(ink[:, x0:].any(axis=1))[0]
    ys = ys[np.abs(ys - row[0]["baseline_y"]) < 30 * meta["px_per_mm"]]
    height_mm = (ys.max() - ys.min()) / meta["px_per_mm"]
    line_mm = BARE.line_width_mm
    assert height_mm == pytest.approx(meta["gain_mm_mv"], abs=line_mm + 2 / meta["px_per_mm"])


@pytest.mark.parametrize("name", ["classic", "lines_gap", "no_marks"])
def test_column_marks_follow_the_convention(flat, name):
    """Ticks are short and centred on the baseline, lines span the row, ``none`` draws none;
    with a gap, the mark sits in its middle."""
    b = list(CASES).index(name)
    meta, conv = flat["meta"][b], CASES[name][1]
    ink = off_mask_ink(flat, b)
    ppm = meta["px_per_mm"]
    for row in rows_of(meta):
        if len(row) < 2:
            continue
        left, right = row[0], row[1]
        x = int(round(0.5 * (left["box"][2] + right["box"][0])))
        y0, y1 = int(round(left["box"][1])), int(round(left["box"][3]))
        column = ink[y0:y1, x - 1 : x + 2].any(axis=1)
        if conv.separators == "none":
            assert not column.any()
        elif conv.separators == "lines":
            assert column.mean() > 0.9
        else:
            ys = np.nonzero(column)[0] + y0
            assert ys.size and abs(0.5 * (ys.min() + ys.max()) - left["baseline_y"]) < 2
            assert (ys.max() - ys.min()) < 0.5 * (y1 - y0) and (ys.max() - ys.min()) > 1 * ppm


def test_labels_are_placed_as_the_convention_says():
    """Labels above/below sit on that side of the baseline; ``left`` labels end before the
    panel's first sample."""
    style = PageStyle(grid="none")
    names = ["above", "below", "left"]
    conv = PrintConvention(separators="none", pulse_gap_mm=9.0, panel_gap_mm=9.0)
    specs = [spec_of("3x4", replace(conv, labels=n), style) for n in names]
    out = Renderer().render(np.zeros((3, NUM_LEADS, 5000), np.float32), FS, specs)
    for b, name in enumerate(names):
        text = ((out["image"][b].mean(0) < 0.6) & (out["mask_bits"][b] == 0)).numpy()
        panel = next(p for p in out["meta"][b]["panels"] if p["name"] == "aVL")
        x0, y0, x1, y1 = (int(round(v)) for v in panel["box"])
        base = int(round(panel["baseline_y"]))
        if name == "left":
            band = text[base - 15 : base + 15, x0 - 40 : x0]
            assert band.any() and np.nonzero(band.any(0))[0].max() < 40 - 2
            assert not text[y0:y1, x0 + 5 : x0 + 60].any()
        else:
            above = text[y0 : base - 3, x0 : x0 + 40].any()
            below = text[base + 3 : y1, x0 : x0 + 40].any()
            assert (above, below) == ((True, False) if name == "above" else (False, True))


def test_standard_gives_the_classic_spec_and_random_only_adds_conventions():
    for seed in range(20):
        rng_s, rng_r = np.random.default_rng(seed), np.random.default_rng(seed)
        std = sample_page_spec(rng_s, conventions="standard")
        rnd = sample_page_spec(rng_r)  # random is the default
        assert std.convention == PrintConvention() and std.style.label_face is None
        assert replace(rnd, style=std.style, convention=std.convention) == std
        assert rng_s.bit_generator.state == rng_r.bit_generator.state  # same draws consumed
    assert PageSpec().convention == PrintConvention()


def test_random_conventions_cover_every_value():
    specs = [sample_page_spec(np.random.default_rng(s), layout="3x4", paper=paper)
             for s in range(300) for paper in ("letter", "a4")]  # fmt: skip
    conv = [s.convention for s in specs]
    assert {c.pulse for c in conv} == {"start", "end", "first_row", "none"}
    assert {c.t0 for c in conv} == {"pulse", "edge", "inset"}
    assert {c.separators for c in conv} == {"ticks", "lines", "none"}
    assert {c.labels for c in conv} == {"above", "below", "left"}
    assert {len(c.rhythm) for c in conv} == {0, 1, 2, 3}
    assert {c.header for c in conv} == {"top", "bottom", "none"}
    assert {c.crop_to_grid for c in conv} == {True, False}
    assert any(c.panel_gap_mm > 0 for c in conv) and any(c.panel_gap_mm == 0 for c in conv)
    widths = np.array([c.pulse_width_s for c in conv])
    assert widths.min() >= 0.1 and widths.max() <= 0.2 and widths.min() < 0.12
    px = np.array([s.style.line_width_mm for s in specs]) * 200 / 25.4  # px at 200 dpi
    assert px.min() >= 0.5 and px.max() <= 3.0 and px.min() < 0.7 and px.max() > 2.7
    schemes = {s.style.grid_scheme for s in specs}
    assert set(HEAVY_SCHEMES) <= schemes and "as_ink" in schemes
    dark = [s.style for s in specs if s.style.grid_scheme == "as_ink"]
    assert all(st.grid_major_color == st.ink_color for st in dark)
    assert len({s.style.label_face for s in specs}) > 2
    assert {s.layout for s in specs} == {"3x4"}  # the layout stays; strips are a convention


@pytest.mark.parametrize("paper", ["letter", "a4"])
def test_random_conventions_keep_the_clinical_windows(paper):
    """At 25 mm/s every drawn convention leaves room for 10 s: 4 x 2.5 s on a 3x4 row."""
    window = {"3x4": 1250, "3x4_3r": 1250, "6x2": 2500, "12x1": 5000}
    for seed in range(300):
        spec = sample_page_spec(np.random.default_rng(seed), paper=paper)
        geom = page_geometry(spec.layout, paper, FS, 5000, spec.paper_speed, spec.gain,
                             convention=spec.convention)  # fmt: skip
        short = [(p.start, p.end) for p in geom.panels if p.channel < NUM_LEADS]
        assert {e - s for s, e in short} == {window[spec.layout]}, spec.convention
        assert all(p.end - p.start == 5000 for p in geom.panels if p.channel >= NUM_LEADS)


def test_same_seed_same_random_page(random_pages):
    specs = [sample_page_spec(np.random.default_rng(100 + i), dpi=DPI) for i in range(2)]
    again = Renderer().render(ecg_like(8, seed=5)[:2], FS, specs)
    assert torch.equal(again["image"], random_pages["image"][:2])
    assert torch.equal(again["mask_bits"], random_pages["mask_bits"][:2])
    assert [m["conventions"] for m in random_pages["meta"][:2]] == [
        m["conventions"] for m in again["meta"]
    ]
    assert specs[0].convention != specs[1].convention


def test_conventions_are_recorded_in_meta(random_pages):
    for meta in random_pages["meta"]:
        conv = PrintConvention(**{
            **meta["conventions"],
            "rhythm": None if meta["conventions"]["rhythm"] is None
            else tuple(meta["conventions"]["rhythm"]),
        })  # fmt: skip
        assert asdict(conv) == meta["spec"]["convention"]
        strips = [p["name"] for p in meta["panels"] if p["channel"] >= NUM_LEADS]
        assert meta["rhythm"] == strips


def test_page_sets_stay_standard_and_the_stream_is_random():
    source = ArraySource(ecg_like(2, seed=3, seconds=12.0), fs=FS)
    fixed = ECGPageSet(2, source, dpi=50, seed=1).render_batch([0, 1])
    assert all(m["conventions"] == asdict(PrintConvention()) | {"rhythm": None}
               for m in fixed["meta"])  # fmt: skip
    stream = next(iter(ECGImageDataset(source, dpi=50, batch_size=4, seed=1)))
    assert len({str(m["conventions"]) for m in stream["meta"]}) > 1
    classic = next(iter(ECGImageDataset(source, dpi=50, batch_size=2, seed=1,
                                        conventions="standard")))  # fmt: skip
    assert all(m["conventions"]["pulse"] == "start" for m in classic["meta"])


def test_bad_conventions_are_refused():
    with pytest.raises(ValueError, match="t0='pulse' needs a pulse"):
        PrintConvention(pulse="end")
    with pytest.raises(ValueError, match="PrintConvention.labels"):
        PrintConvention(labels="inside")
    with pytest.raises(ValueError, match="rhythm"):
        PrintConvention(rhythm=("II", "V1", "V5", "V6"))
    with pytest.raises(ValueError, match="conventions must be"):
        sample_page_spec(np.random.default_rng(0), conventions="fancy")
    with pytest.raises(ValueError, match="conventions must be"):
        PageOptions(conventions="fancy")
    with pytest.raises(ValueError, match="no room"):
        Renderer().render(
            ecg_like(1), FS, [spec_of("3x4", PrintConvention(top_mm=150.0, bottom_mm=80.0))]
        )
