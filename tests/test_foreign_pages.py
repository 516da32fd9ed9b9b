"""The independent page maker (scripts/foreign_pages.py): truth on the ink, NaN pattern per
layout, determinism, vector PDF, artifacts, and independence from ecgsynth/digitizer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import foreign_pages as fp  # noqa: E402

LUDB = Path(__file__).resolve().parent.parent / "digitizer" / "data" / "ludb"


@pytest.fixture(scope="module")
def record() -> tuple[np.ndarray, float]:
    return fp.read_record(LUDB / "1.hea", digital_uv=True)


def _trace_points(page: fp.ForeignPage, step: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Predicted pixel ``(x, y)`` of every ``step``-th shown sample, and whether the signal is
    locally flat there (within 0.02 mV over +-10 samples)."""
    pts, flat = [], []
    ppm, gain = page.meta["px_per_mm"], page.meta["gain_mm_mv"]
    for pn in page.meta["panels"]:
        lead = fp.LEAD_NAMES.index(pn["lead"])
        for n in range(pn["start_sample"], pn["end_sample"], step):
            v = page.truth[lead, n]
            if not np.isfinite(v):
                continue
            x = pn["x0_px"] + (n - pn["start_sample"]) * pn["px_per_sample"]
            pts.append((x, pn["baseline_y_px"] - v * gain * ppm))
            win = page.truth[lead, max(n - 10, pn["start_sample"]) : n + 11]
            flat.append(bool(np.all(np.isfinite(win)) and np.ptp(win) < 0.02))
    return np.asarray(pts), np.asarray(flat)


def _ink_hits(page: fp.ForeignPage, pts: np.ndarray) -> np.ndarray:
    """Whether the 3x3 pixels around each point hold trace-coloured ink."""
    img = page.image.astype(np.float64)
    ink = np.asarray(page.meta["trace_rgb"]) * 255
    paper = np.asarray(page.meta["paper_rgb"]) * 255
    tol = 0.5 * np.linalg.norm(paper - ink)
    h, w = img.shape[:2]
    hits = []
    for x, y in pts:
        c, r = int(round(x)), int(round(y))
        if not (1 <= r < h - 1 and 1 <= c < w - 1):
            hits.append(False)
            continue
        d = np.linalg.norm(img[r - 1 : r + 2, c - 1 : c + 2] - ink, axis=-1)
        hits.append(d.min() < tol)
    return np.asarray(hits)


@pytest.mark.parametrize("profile,layout", fp.profile_layouts())
def test_truth_lies_on_the_drawn_ink(record, profile: str, layout: str) -> None:
    sig, fs = record
    page = fp.draw_page(sig, fs, profile, seed=3, dpi=200, layout=layout)
    pts, flat = _trace_points(page)
    assert len(pts) > 500
    assert _ink_hits(page, pts).mean() > 0.995
    # on flat stretches the inkiest pixel of the column is the predicted one (to ~1 px)
    img = page.image.astype(np.float64)
    ink = np.asarray(page.meta["trace_rgb"]) * 255
    offs = []
    for x, y in pts[flat]:
        c, r = int(round(x)), int(round(y))
        rows = np.arange(max(r - 4, 0), min(r + 5, img.shape[0]))
        best = rows[np.argmin(np.linalg.norm(img[rows, c] - ink, axis=-1))]
        offs.append(abs(best - y))
    assert np.median(offs) <= 1.0 and np.mean(np.asarray(offs) <= 1.5) > 0.9
    # the check can fail: the same points moved by a few pixels mostly miss the trace (where
    # the grid is told apart from the trace by its colour; else they land on grid lines)
    shifted = pts + np.array([0.0, 3.0 + page.meta["trace_width_px"]])
    ink, paper = np.asarray(page.meta["trace_rgb"]), np.asarray(page.meta["paper_rgb"])
    grid = np.asarray([page.meta["grid_major_rgb"], page.meta["grid_minor_rgb"]])
    distinct = np.linalg.norm(grid - ink, axis=-1).min() > 0.5 * np.linalg.norm(paper - ink)
    assert _ink_hits(page, shifted).mean() < (0.5 if distinct else 0.8)


def _expected_windows(layout: str) -> dict[str, list[tuple[float, float]]]:
    quarter = {0: "I II III", 1: "aVR aVL aVF", 2: "V1 V2 V3", 3: "V4 V5 V6"}
    if layout.startswith("3x4"):
        win = {n: [(2.5 * q, 2.5 * q + 2.5)] for q, names in quarter.items() for n in names.split()}
        rhythm = {"3x4": ["II"], "3x4_3r": ["II", "V1", "V5"], "3x4_0r": []}[layout]
        for n in rhythm:
            win[n] = win[n] + [(0.0, 10.0)]
        return win
    if layout == "6x2":
        return {n: [(0.0, 5.0) if i < 6 else (5.0, 10.0)] for i, n in enumerate(fp.LEAD_NAMES)}
    return {n: [(0.0, 10.0)] for n in fp.LEAD_NAMES}


@pytest.mark.parametrize("profile", fp.PROFILES)
@pytest.mark.parametrize("layout", fp.LAYOUTS)
def test_nan_pattern_matches_the_layout(profile: str, layout: str) -> None:
    fs, t = 500.0, 6000  # 12 s: the page shows the first 10 s only
    time = np.arange(t) / fs
    sig = 0.3 * np.sin(2 * np.pi * 1.1 * time)[None] * np.linspace(0.5, 1.5, 12)[:, None]
    page = fp.draw_page(sig, fs, profile, seed=0, dpi=100, layout=layout)
    assert page.truth.shape == (12, t) and page.truth.dtype == np.float32
    for name, windows in _expected_windows(layout).items():
        want = np.zeros(t, bool)
        for a, b in windows:
            want[round(a * fs) : round(b * fs)] = True
        got = np.isfinite(page.truth[fp.LEAD_NAMES.index(name)])
        assert np.array_equal(got, want), f"{profile} {layout} lead {name}"
        np.testing.assert_allclose(page.truth[fp.LEAD_NAMES.index(name)][want],
                                   sig[fp.LEAD_NAMES.index(name)][want], atol=1e-6)  # fmt: skip


def test_same_seed_same_page_other_seed_other_page(record) -> None:
    sig, fs = record
    a = fp.draw_page(sig, fs, "ge", seed=11, dpi=150)
    b = fp.draw_page(sig, fs, "ge", seed=11, dpi=150)
    c = fp.draw_page(sig, fs, "ge", seed=12, dpi=150)
    assert np.array_equal(a.image, b.image) and a.meta == b.meta
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_save_writes_truth_json_and_a_vector_pdf(record, tmp_path: Path) -> None:
    import json

    import pypdfium2 as pdfium
    import wfdb

    sig, fs = record
    page = fp.draw_page(sig, fs, "philips", seed=2, dpi=150, layout="3x4")
    files = page.save(tmp_path / "p", pdf=True)
    assert all(f.exists() for f in files) and len(files) == 5
    rec = wfdb.rdrecord(str(tmp_path / "p"))
    assert rec.sig_name == list(fp.LEAD_NAMES) and rec.units == ["mV"] * 12
    back = rec.p_signal.T
    assert np.array_equal(np.isnan(back), np.isnan(page.truth))
    assert np.nanmax(np.abs(back - page.truth)) <= 0.0006  # 1 uV steps
    assert json.loads((tmp_path / "p.json").read_text())["layout"] == "3x4"
    pdf = pdfium.PdfDocument(str(tmp_path / "p.pdf"))
    assert len(pdf) == 1
    objs = list(pdf[0].get_objects(max_depth=8))
    kinds = [o.type for o in objs]
    assert pdfium.raw.FPDF_PAGEOBJ_IMAGE not in kinds
    assert kinds.count(pdfium.raw.FPDF_PAGEOBJ_PATH) > 100  # grid lines and traces as paths
    w_pt, h_pt = pdf[0].get_size()
    paper_w, paper_h = page.meta["paper_mm"]
    assert abs(w_pt - paper_w * 72 / 25.4) < 0.5 and abs(h_pt - paper_h * 72 / 25.4) < 0.5
    assert b"/Subtype /Image" not in (tmp_path / "p.pdf").read_bytes()


def test_artifacts_are_seeded_and_keep_the_size(record) -> None:
    sig, fs = record
    img = fp.draw_page(sig, fs, "eik", seed=1, dpi=150).image
    a, b, c = (fp.add_artifacts(img, s) for s in (5, 5, 6))
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a.astype(int) - img).mean() > 1.0


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"\[12, T\]"):
        fp.draw_page(np.zeros((3, 100)), 500.0, "eik", seed=0)
    with pytest.raises(ValueError, match="unknown profile"):
        fp.draw_page(np.zeros((12, 100)), 500.0, "nope", seed=0)
    with pytest.raises(ValueError, match="missing.hea"):
        fp.read_record(Path("/nonexistent/missing.hea"))


def test_imports_neither_ecgsynth_nor_digitizer() -> None:
    tree = ast.parse((SCRIPTS / "foreign_pages.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.split(".")[0] in ("ecgsynth", "digitizer")]
    code = (
        f"import sys; sys.path.insert(0, {str(SCRIPTS)!r}); import numpy as np; "
        "import foreign_pages as fp; fp.draw_page(np.zeros((12, 1000)), 100.0, 'web', 0, 100); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ecgsynth', 'digitizer')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("profile,layout", [("eik", "3x4"), ("web", "6x2"), ("philips", "12x1")])
def test_truth_positions_are_subpixel_exact(profile: str, layout: str) -> None:
    """The trace's own ink (the page minus the same page without traces) is centred on the
    predicted baseline, and a 1 mV step on the predicted x, to a small fraction of a pixel."""
    fs, t = 500.0, 5000
    sig = np.zeros((12, t))
    step_at = (np.arange(t) % 500) >= 250  # a 1 mV square wave: rises at n = 250 + 500 k
    sig[:, step_at] = 1.0
    page = fp.draw_page(sig, fs, profile, seed=7, dpi=200, layout=layout)
    blank = fp.draw_page(np.full_like(sig, np.nan), fs, profile, seed=7, dpi=200, layout=layout)
    diff = np.abs(page.image.astype(float) - blank.image.astype(float)).sum(-1)
    ppm, gain = page.meta["px_per_mm"], page.meta["gain_mm_mv"]
    dy, dx = [], []
    for pn in page.meta["panels"]:
        s0, y0 = pn["start_sample"], pn["baseline_y_px"]
        for n in range(s0 + 20, pn["end_sample"] - 20):
            x = pn["x0_px"] + (n - s0) * pn["px_per_sample"]
            if n % 500 == 100:  # the middle of a flat 0 mV stretch: vertical centre
                c, r = int(round(x)), int(round(y0))
                rows = np.arange(r - 5, r + 6)
                w = diff[rows, c]
                dy.append((w * rows).sum() / w.sum() - y0)
            if n % 500 == 250:  # a rising edge between samples n-1 and n: horizontal centre
                xe = x - 0.5 * pn["px_per_sample"]
                r = int(round(y0 - 0.5 * gain * ppm))
                cols = np.arange(int(round(xe)) - 4, int(round(xe)) + 5)
                w = diff[r, cols]
                dx.append((w * cols).sum() / w.sum() - xe)
    assert len(dy) > 20 and len(dx) > 20
    assert abs(np.median(dy)) < 0.15 and abs(np.median(dx)) < 0.15, (np.median(dy), np.median(dx))


def test_eval_best_lag_finds_a_late_reading() -> None:
    import eval_digitizer as ed

    rng = np.random.default_rng(0)
    ref = np.convolve(rng.normal(size=3000), np.ones(25) / 25, mode="same")
    ref[:500] = np.nan  # not shown
    late = np.full_like(ref, np.nan)
    late[20:] = ref[:-20]  # read 20 samples late
    best, lag = ed.best_lag_snr_db(ref, late, max_lag=50)
    assert lag == 20 and best > 100  # exact once shifted back
    assert ed.snr_db(ref, late) < 5
    _, lag_none = ed.best_lag_snr_db(ref, np.full_like(ref, np.nan), max_lag=50)
    assert lag_none == 0


def test_cli_names_a_bad_record_and_goes_on(tmp_path: Path) -> None:
    import shutil

    recs = tmp_path / "recs"
    recs.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(LUDB / f"1{suffix}", recs / f"1{suffix}")
    (recs / "2.hea").write_text("garbage\n")
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "foreign_pages.py"), "--records", str(recs), "--out",
         str(tmp_path / "out"), "--num", "2", "--dpi", "80", "--pdf"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1
    assert "2.hea" in out.stderr and "Traceback" not in out.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 1
    assert len(list((tmp_path / "out").glob("*.pdf"))) == 1
