"""The export CLI: the documented files, and bad inputs reported by name while the rest goes on."""

from __future__ import annotations

import json
import shutil

import numpy as np
import wfdb

from ecgsynth.__main__ import main
from ecgsynth.layout import LEADS
from ecgsynth.sources import embedded_records_dir


def test_export_cli_writes_pages_and_reports_bad_records(tmp_path, capsys):
    records = tmp_path / "records"
    records.mkdir()
    for suffix in (".hea", ".mat"):
        shutil.copy(embedded_records_dir() / f"E07504{suffix}", records)
    (records / "corrupt.hea").write_text("this is not a header\n")
    (records / "orphan.hea").write_text("orphan 1 500 5000\norphan.dat 16 1000/mV 16 0 0 0 0 II\n")
    huge = "huge 1 500 1000000000\nhuge.dat 16 1000/mV 16 0 0 0 0 II\n"
    (records / "huge.hea").write_text(huge)
    (records / "huge.dat").write_bytes(b"\0" * 64)

    code = main(["export", "--records", str(records), "--out", str(tmp_path / "out"),
                 "--num", "3", "--seed", "4", "--dpi", "60", "--layout", "3x4"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1  # pages written, but input problems were found
    for bad in ("corrupt", "orphan", "huge"):
        assert f"{bad}:" in err or f"{bad} " in err, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        f"ecg_{i:05d}{s}" for i in range(3) for s in (".png", ".json", ".hea", ".dat")
    )

    doc = json.loads((tmp_path / "out" / "ecg_00000.json").read_text())
    for key in ("fs", "px_per_mm", "width", "height", "layout", "paper_speed_mm_s", "gain_mm_mv",
                "seed", "leads"):  # fmt: skip
        assert key in doc
    lead = doc["leads"][0]
    assert {"name", "start_sample", "end_sample", "points", "box"} <= set(lead)
    assert len(lead["points"]) == lead["end_sample"] - lead["start_sample"]

    truth = wfdb.rdrecord(str(tmp_path / "out" / "ecg_00000"))
    assert truth.sig_name == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4",
                              "V5", "V6"]  # fmt: skip
    assert truth.units == ["mV"] * 12 and truth.p_signal.shape == (5000, 12)
    assert np.isfinite(truth.p_signal).all()


def test_mask_unplotted_writes_nan_where_the_page_shows_nothing(tmp_path):
    code = main(["export", "--records", str(embedded_records_dir()), "--out", str(tmp_path),
                 "--num", "1", "--dpi", "60", "--layout", "3x4", "--mask-unplotted"])  # fmt: skip
    assert code == 0
    truth = wfdb.rdrecord(str(tmp_path / "ecg_00000")).p_signal
    # 3x4 + rhythm II: lead I is shown 0-2.5 s only, II the whole 10 s
    assert np.isfinite(truth[:1250, 0]).all() and np.isnan(truth[1250:, 0]).all()
    assert np.isfinite(truth[:, 1]).all()


def test_no_usable_record_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "bad.hea").write_text("nonsense\n")
    code = main(["export", "--records", str(tmp_path), "--out", str(tmp_path / "o"), "--num", "1"])
    assert code == 2
    assert "bad" in capsys.readouterr().err


def test_records_without_a_drawable_lead_are_named_and_never_drawn(tmp_path, capsys):
    records = tmp_path / "records"
    records.mkdir()
    for suffix in (".hea", ".mat"):
        shutil.copy(embedded_records_dir() / f"E07504{suffix}", records)
    twelve = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    nan = np.full((5000, 12), np.nan)
    wfdb.wrsamp("allnan", fs=500, units=["mV"] * 12, sig_name=twelve, p_signal=nan,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12,
                write_dir=str(records))  # fmt: skip
    resp = np.column_stack([np.full(5000, np.nan), np.sin(np.arange(5000) / 50)])
    wfdb.wrsamp("nanlead", fs=500, units=["mV"] * 2, sig_name=["V2", "Resp"], p_signal=resp,
                fmt=["16"] * 2, adc_gain=[1000.0] * 2, baseline=[0] * 2,
                write_dir=str(records))  # fmt: skip

    # one page only: the bad records are named even though no page would have drawn them
    code = main(["export", "--records", str(records), "--out", str(tmp_path / "out"),
                 "--num", "1", "--seed", "1", "--dpi", "60", "--layout", "3x4"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert f"{records / 'allnan'}: all samples are NaN" in err, err
    assert f"{records / 'nanlead'}: none of the 12 leads can be derived" in err, err
    doc = json.loads((tmp_path / "out" / "ecg_00000.json").read_text())
    assert doc["source"]["record"] == "E07504"
    assert np.isfinite(wfdb.rdrecord(str(tmp_path / "out" / "ecg_00000")).p_signal).any()


def test_random_conventions_are_written_to_the_json(tmp_path):
    code = main(["export", "--out", str(tmp_path), "--num", "2", "--dpi", "50", "--seed", "3",
                 "--conventions", "random", "--mask-unplotted"])  # fmt: skip
    assert code == 0
    docs = [json.loads((tmp_path / f"ecg_{i:05d}.json").read_text()) for i in range(2)]
    for doc in docs:
        conv = doc["conventions"]
        assert {"pulse", "t0", "separators", "panel_gap_mm", "labels", "rhythm"} <= set(conv)
        assert doc["spec"]["convention"] == conv
        assert doc["rhythm"] == [lead["name"] for lead in doc["leads"] if lead["channel"] >= 12]
    assert docs[0]["conventions"] != docs[1]["conventions"]
    # the truth is NaN exactly where the page shows no sample, under any convention
    truth = wfdb.rdrecord(str(tmp_path / "ecg_00000")).p_signal
    shown = np.zeros_like(truth, dtype=bool)
    for lead in docs[0]["leads"]:
        shown[lead["start_sample"] : lead["end_sample"], LEADS.index(lead["name"])] = True
    assert np.array_equal(np.isfinite(truth), shown)


def test_format_pdf_writes_a_raster_pdf_of_the_paper_size(tmp_path):
    """``--format pdf``: NAME.pdf instead of NAME.png, the same pixels on a page of the paper's
    physical size, byte-identical for the same seed."""
    from digitizer.io import read_image
    from digitizer.pdf import open_pdf, scan_pixels

    args = ["export", "--records", str(embedded_records_dir()), "--num", "1", "--dpi", "60",
            "--layout", "3x4", "--paper", "a4"]  # fmt: skip
    for sub, fmt in (("png", "png"), ("pdf", "pdf"), ("pdf2", "pdf")):
        assert main([*args, "--out", str(tmp_path / sub), "--format", fmt]) == 0
    names = sorted(p.name for p in (tmp_path / "pdf").iterdir())
    assert names == [f"ecg_00000{s}" for s in (".dat", ".hea", ".json", ".pdf")]
    pdf = (tmp_path / "pdf" / "ecg_00000.pdf").read_bytes()
    assert pdf == (tmp_path / "pdf2" / "ecg_00000.pdf").read_bytes()
    doc = open_pdf(tmp_path / "pdf" / "ecg_00000.pdf")
    try:
        w, h = doc[0].get_size()
        assert (round(w / 72 * 25.4, 1), round(h / 72 * 25.4, 1)) == (297.0, 210.0)
        pixels = scan_pixels(doc[0])
    finally:
        doc.close()
    assert np.array_equal(pixels, read_image(tmp_path / "png" / "ecg_00000.png"))
