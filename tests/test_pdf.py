"""PDF input: vector pages read exactly from their paths, raster pages as images, multi-page
naming, and every kind of bad PDF refused by name while the batch goes on."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest
import wfdb
from helpers import ecg_like
from pdf_pages import (
    content_bomb_pdf_bytes,
    encrypted_pdf_bytes,
    image_bomb_pdf_bytes,
    pdf_bytes,
    vector_ecg_pdf,
)

from digitizer.__main__ import main as digitize_main
from digitizer.io import ImageError
from digitizer.metrics import snr_db
from digitizer.pdf import MAX_PAGES, input_pages, open_pdf, page_content, page_stems
from digitizer.pipeline import Digitizer
from digitizer.vector import read_vector
from ecgsynth.__main__ import main as export_main
from ecgsynth.sources import embedded_records_dir

FS = 500


def _signal(seed: int = 0) -> np.ndarray:
    """A 10 s, 12-lead test signal [12, 5000] mV, each lead centred on its median (as a cart
    prints it: pages without a pulse can only tell that zero)."""
    x = ecg_like(1, seed=seed)[0].astype(np.float64)
    return x - np.median(x, axis=1, keepdims=True)


def _read(path: Path, dig=None):
    """The first page of ``path`` through the digitizer's input expansion."""
    dig = dig or Digitizer(checkpoint="ink", keep_uncertain=True)
    (page,) = list(input_pages(dig, path))
    return page.read()


def _snrs(truth: np.ndarray, est: np.ndarray) -> list[float]:
    return [snr_db(truth[i], est[i]) for i in range(12) if np.isfinite(truth[i]).any()]


@pytest.fixture(scope="module")
def ink() -> Digitizer:
    return Digitizer(checkpoint="ink")


# -- vector pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["3x4", "3x4_3r", "6x2", "12x1"])
def test_vector_page_is_read_exactly_from_its_paths(tmp_path: Path, ink, layout: str) -> None:
    truth = vector_ecg_pdf(tmp_path / "v.pdf", _signal(1), FS, layout=layout)
    page = _read(tmp_path / "v.pdf", ink)
    rec = page.record
    assert page.error is None and rec.source == "vector" and rec.layout == layout
    snrs = _snrs(truth, rec.signal)
    assert len(snrs) == 12 and min(snrs) > 60.0, snrs  # exact up to float32 coordinates
    # NaN exactly where the page shows nothing (a 3x4 short lead: 2.5 of 10 s)
    shown = np.isfinite(truth)
    got = np.isfinite(rec.signal)
    assert (got == shown).mean() > 0.999, (got != shown).sum()


def test_vector_page_without_labels_pulses_or_grid(tmp_path: Path, ink) -> None:
    """No lead names (the layout's table names the leads), no pulse (10 mm/mV around the row's
    median) and no grid (page units)."""
    sig = _signal(2)
    truth = vector_ecg_pdf(tmp_path / "bare.pdf", sig, FS, layout="12x1", labels=False,
                           pulses=False, grid=False)  # fmt: skip
    rec = _read(tmp_path / "bare.pdf", ink).record
    assert rec.source == "vector" and rec.layout == "12x1"
    assert min(_snrs(truth, rec.signal)) > 40.0
    assert any("layout" in w for w in rec.warnings) and any("pulse" in w for w in rec.warnings)


def test_labels_name_the_leads_against_the_layout_table(tmp_path: Path, ink) -> None:
    """Leads printed in a non-standard order are read by their labels, not by position."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecgsynth.layout import LEADS

    sig = _signal(3)
    order = ["V6", "I", "aVF", "V2"]  # four 10 s rows, each labelled
    with matplotlib.rc_context({"path.simplify": False}):
        fig = plt.figure(figsize=(279.4 / 25.4, 215.9 / 25.4))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, 279.4)
        ax.set_ylim(215.9, 0)
        ax.axis("off")
        for r, lead in enumerate(order):
            y0 = 40.0 + 45.0 * r
            ax.plot([8, 9, 9, 14, 14, 15], [y0, y0, y0 - 10, y0 - 10, y0, y0], "k", lw=0.5)
            x = 18.0 + np.arange(sig.shape[1]) / FS * 25.0
            ax.plot(x, y0 - 10.0 * sig[LEADS.index(lead)], "k", lw=0.5)
            ax.text(19.0, y0 - 12.0, lead, fontsize=8)
        fig.savefig(tmp_path / "custom.pdf", format="pdf")
        plt.close(fig)
    rec = _read(tmp_path / "custom.pdf", ink).record
    assert rec.source == "vector"
    for lead in order:
        i = LEADS.index(lead)
        assert snr_db(sig[i], rec.signal[i]) > 60.0, lead
    others = [i for i, n in enumerate(LEADS) if n not in order]
    assert np.isnan(rec.signal[others]).all()


def test_scaled_page_is_measured_by_its_grid(tmp_path: Path, ink) -> None:
    """A page printed at 90 % ("fit to page"): the grid lattice says 0.9 page mm per paper mm,
    and time and amplitude are read on the paper's scale."""
    truth = vector_ecg_pdf(tmp_path / "s.pdf", _signal(4), FS, layout="3x4", scale=0.9)
    rec = _read(tmp_path / "s.pdf", ink).record
    assert rec.source == "vector"
    assert any("90.0% scale" in w for w in rec.warnings), rec.warnings
    assert min(_snrs(truth, rec.signal)) > 60.0


def test_simplified_paths_still_read(tmp_path: Path) -> None:
    """matplotlib's default path simplification drops vertices (up to 1/9 pt off the curve):
    the reader interpolates between the vertices that are left."""
    truth = vector_ecg_pdf(tmp_path / "simp.pdf", _signal(5), FS, layout="6x2", simplify=True)
    doc = open_pdf(tmp_path / "simp.pdf")
    try:
        rec, _ = read_vector(page_content(doc[0]))
    finally:
        doc.close()
    assert rec is not None and np.mean(_snrs(truth, rec.signal)) > 20.0


def test_paths_that_are_not_an_ecg_fall_back_to_raster(tmp_path: Path, ink) -> None:
    """A page of line art (a grid and a circle, no traces) is rendered and read as an image."""
    stream = b"0.5 w " + b"".join(b"%d 50 m %d 560 l S " % (x, x) for x in range(50, 750, 14))
    stream += b"400 300 m 450 300 450 350 400 350 c 350 350 350 300 400 300 c S"
    (tmp_path / "art.pdf").write_bytes(pdf_bytes([stream]))
    page = _read(tmp_path / "art.pdf", ink)
    assert page.error is None and page.record.source == "raster"
    assert page.image.shape == (2550, 3300, 3)  # Letter at 300 dpi: no embedded image
    assert any("raster page at 300 dpi" in w for w in page.record.warnings)


# -- raster pages, export --format pdf -----------------------------------------------------------


def test_raster_pdf_reads_as_its_png(tmp_path: Path) -> None:
    """``export --format pdf`` embeds the page's pixels at the paper's size; the digitizer
    renders it back at the image's own resolution, pixel for pixel, and reads the same record
    as from the PNG."""
    common = ["export", "--records", str(embedded_records_dir()), "--num", "1", "--seed", "3",
              "--dpi", "100", "--layout", "3x4"]  # fmt: skip
    assert export_main([*common, "--out", str(tmp_path / "png")]) == 0
    assert export_main([*common, "--out", str(tmp_path / "pdf"), "--format", "pdf"]) == 0
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == [
        "ecg_00000.dat", "ecg_00000.hea", "ecg_00000.json", "ecg_00000.pdf"]  # fmt: skip
    png = tmp_path / "png" / "ecg_00000.png"
    pdf = tmp_path / "pdf" / "ecg_00000.pdf"
    doc = open_pdf(pdf)
    try:
        w, h = doc[0].get_size()
    finally:
        doc.close()
    assert (round(w / 72 * 25.4, 1), round(h / 72 * 25.4, 1)) == (279.4, 215.9)  # Letter
    page = _read(pdf)
    assert page.record.source == "raster"
    from digitizer.io import read_image

    assert np.array_equal(page.image, read_image(png))
    out = tmp_path / "out"
    assert digitize_main([str(png), str(pdf), "--out", str(out), "--checkpoint", "ink",
                          "--keep-uncertain"]) == 1  # fmt: skip
    # both inputs have the stem ecg_00000: the second is refused by name, unread
    rec = wfdb.rdrecord(str(out / "ecg_00000")).p_signal
    assert np.isfinite(rec).mean() > 0.3  # the page was read (3x4: 12 x 2.5 s + II 10 s)
    assert np.array_equal(np.isfinite(rec), np.isfinite(page.record.signal.T))
    assert np.nanmax(np.abs(rec - page.record.signal.T)) < 1e-3


# -- multi-page naming ---------------------------------------------------------------------------


def test_multipage_pdf_gives_stem_p1_to_pn(tmp_path: Path) -> None:
    """Page 1 and 3 are ECGs (vector), page 2 is blank: NaN leads and a warning, as an image."""
    import pypdfium2 as pdfium

    single = tmp_path / "single.pdf"
    vector_ecg_pdf(single, _signal(6), FS, layout="3x4")
    parts = [tmp_path / f"part{k}.pdf" for k in (1, 3)]
    truth = {1: vector_ecg_pdf(parts[0], _signal(7), FS, layout="3x4"),
             3: vector_ecg_pdf(parts[1], _signal(8), FS, layout="6x2")}  # fmt: skip
    multi = pdfium.PdfDocument.new()
    for k, part in enumerate(parts):
        src = pdfium.PdfDocument(str(part))
        multi.import_pages(src)
        src.close()
        if k == 0:
            multi.new_page(792, 612).close()  # the blank page 2
    with (tmp_path / "multi.pdf").open("wb") as f:
        multi.save(f)
    multi.close()

    out = tmp_path / "out"
    code = digitize_main([str(tmp_path / "multi.pdf"), str(single), "--out", str(out),
                          "--checkpoint", "ink"])  # fmt: skip
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{s}.{e}" for s in ("multi_p1", "multi_p2", "multi_p3", "single")
                           for e in ("hea", "dat", "json"))  # fmt: skip
    for k in (1, 3):
        rec = wfdb.rdrecord(str(out / f"multi_p{k}")).p_signal.T
        assert np.mean(_snrs(truth[k], rec)) > 50.0  # 1 µV WFDB resolution
    assert np.isnan(wfdb.rdrecord(str(out / "multi_p2")).p_signal).all()
    assert page_stems("x", 1) == ["x"] and page_stems("x", 2) == ["x_p1", "x_p2"]


# -- bad PDFs ------------------------------------------------------------------------------------


BAD_PDFS = {
    "encrypted": (encrypted_pdf_bytes, "encrypted"),
    "corrupt": (lambda: b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF\n", "corrupt"),
    "truncated": (lambda: pdf_bytes([b"0 0 m 100 100 l S"] * 3)[:300], "truncated"),
    "zero_pages": (lambda: pdf_bytes([]), "no pages"),
    "too_many_pages": (lambda: pdf_bytes([b""] * (MAX_PAGES + 1)), "pages exceeds the limit"),
    "huge_page": (lambda: pdf_bytes([b""], media=(5000, 5000)), "mm a side"),
    "render_bomb": (lambda: pdf_bytes([b""], media=(2800, 2800)), "pixels at 300 dpi"),
    "image_bomb": (image_bomb_pdf_bytes, "embedded image of 20000x20000"),
    "content_bomb": (content_bomb_pdf_bytes, "decompression bomb"),
    "not_a_pdf": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(100), "not a PDF"),
    "empty": (lambda: b"", "empty file"),
}


@pytest.mark.parametrize("name", sorted(BAD_PDFS))
def test_bad_pdf_is_refused_with_its_reason(tmp_path: Path, name: str) -> None:
    make, reason = BAD_PDFS[name]
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(make())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = [p.read() for p in input_pages(Digitizer(checkpoint="ink"), path)]
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(pages) == 1 and pages[0].record is None
    err = pages[0].error
    assert isinstance(err, ImageError) and str(path) in str(err) and reason in str(err), err
    assert grown_mb < 200  # refused before anything big was decoded or rendered


def test_large_but_honest_stream_is_measured_and_read(tmp_path: Path) -> None:
    """A 5 MiB content stream (the bomb check inflates it in capped steps and must stop at the
    end of the Flate data) opens quickly and is not refused."""
    import time

    path = tmp_path / "big_stream.pdf"
    path.write_bytes(content_bomb_pdf_bytes(decoded_mb=5))
    t0 = time.perf_counter()
    open_pdf(path).close()
    assert time.perf_counter() - t0 < 10.0


def test_batch_goes_on_past_bad_pdfs(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.pdf"
    vector_ecg_pdf(good, _signal(9), FS, layout="12x1")
    bad = []
    for name in ("encrypted", "truncated", "zero_pages", "huge_page"):
        bad.append(tmp_path / f"{name}.pdf")
        bad[-1].write_bytes(BAD_PDFS[name][0]())
    out = tmp_path / "out"
    code = digitize_main([str(p) for p in [bad[0], good, *bad[1:]]] + ["--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["good.dat", "good.hea", "good.json"]
    for p in bad:
        assert f"error: {p}: " in err, err


def test_rotated_page_is_read_as_displayed(tmp_path: Path, ink) -> None:
    """Carts often store a landscape ECG as a portrait page with ``/Rotate 90``: the paths are
    read in the displayed frame."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    truth = vector_ecg_pdf(tmp_path / "land.pdf", _signal(10), FS, layout="3x4")
    doc = pdfium.PdfDocument(str(tmp_path / "land.pdf"))
    page = doc[0]
    w, h = page.get_size()
    # content turned a quarter counter-clockwise onto a portrait page, displayed turned back
    assert pdfium_c.FPDFPage_TransFormWithClip(page.raw, pdfium_c.FS_MATRIX(0, 1, -1, 0, h, 0),
                                               None)  # fmt: skip
    page.set_mediabox(0, 0, h, w)
    page.set_rotation(90)
    page.gen_content()
    doc.save(str(tmp_path / "rot.pdf"))
    page.close()
    doc.close()
    rec = _read(tmp_path / "rot.pdf", ink).record
    assert rec.source == "vector" and rec.layout == "3x4"
    assert min(_snrs(truth, rec.signal)) > 60.0


def test_evaluation_digitizes_pdfs_page_by_page(tmp_path: Path) -> None:
    """``evaluate.py images=DIR``: a one-page PDF pairs with truth ``STEM``, an N-page PDF with
    ``STEM_p1..pN``; a bad PDF is listed as failed by name."""
    import pypdfium2 as pdfium

    from digitizer import evaluation as E

    images = tmp_path / "images"
    images.mkdir()
    vector_ecg_pdf(images / "one.pdf", _signal(11), FS, layout="12x1")
    parts = [tmp_path / f"part{k}.pdf" for k in (1, 2)]
    for k, part in enumerate(parts):
        vector_ecg_pdf(part, _signal(12 + k), FS, layout="3x4")
    multi = pdfium.PdfDocument.new()
    for part in parts:
        src = pdfium.PdfDocument(str(part))
        multi.import_pages(src)
        src.close()
    multi.save(str(images / "two.pdf"))
    multi.close()
    (images / "bad.pdf").write_bytes(BAD_PDFS["truncated"][0]())
    found, dup = E.find_images(images)
    assert sorted(found) == ["bad", "one", "two"] and not dup
    res = E.digitize_images(images, tmp_path / "pred", checkpoint="ink", progress=False)
    assert sorted(res.written) == ["one", "two_p1", "two_p2"]
    assert list(res.errors) == ["bad"] and "truncated" in res.errors["bad"]


@pytest.mark.parametrize("profile", ["eik", "ge", "philips", "web"])
def test_independent_makers_vector_pdfs(tmp_path: Path, ink, profile: str) -> None:
    """The independent page maker's vector PDFs (scripts/foreign_pages.py, its own printing
    conventions): exact when every sample is a vertex; as matplotlib writes them by default
    (path simplification drops vertices up to 1/9 pt off the curve) about 27 dB."""
    import sys

    import matplotlib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import foreign_pages as fp

    sig = _signal(20)
    page = fp.draw_page(sig.astype(np.float32), FS, profile, seed=3, dpi=50)
    scores = {}
    for simplify in (False, True):
        stem = tmp_path / f"{profile}_{simplify}"
        with matplotlib.rc_context({"path.simplify": simplify}):
            page.save(stem, pdf=True)
        rec = _read(stem.with_suffix(".pdf"), ink).record
        assert rec.source == "vector"
        assert rec.layout == page.meta["layout"].replace("3x4_0r", "3x4")
        scores[simplify] = float(np.mean(_snrs(page.truth, rec.signal)))
    assert scores[False] > 60.0 and scores[True] > 20.0, scores
