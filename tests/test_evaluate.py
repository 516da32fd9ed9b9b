"""evaluate.py + digitizer.evaluation: WFDB folders in, tables and a report out.

Every record is a real WFDB file written to ``tmp_path`` (``ecgsynth.export.write_wfdb`` or
``wfdb.wrsamp``). Expected values are analytic or come from an independent re-implementation of the
Challenge formula in this file, applied to the files as read back by ``wfdb.rdrecord``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb

from digitizer import evaluation as E
from ecgsynth.export import write_wfdb
from ecgsynth.layout import LEADS
from ecgsynth.sources import RecordError

ROOT = Path(__file__).resolve().parents[1]
FS = 500
T = 2500  # 5 s: short records keep the aligned SNR (2-D correlation per lead) cheap
F_SINE = 2.0  # Hz: 10 whole periods in T samples, so circular shifts have closed-form SNRs


def sines(seed: int, n: int = T) -> np.ndarray:
    """``[12, n]`` mV: one whole-period sinusoid per lead, random amplitude and phase."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    amp, phase = rng.uniform(0.5, 1.5, (12, 1)), rng.uniform(0, 2 * np.pi, (12, 1))
    return amp * np.sin(2 * np.pi * F_SINE * t[None] + phase)


def sim_ecg(seconds: float = 10.0, fs: int = FS, heart_rate: int = 70) -> np.ndarray:
    """A seeded neurokit2 ECG ``[n]`` in mV."""
    nk = pytest.importorskip("neurokit2")
    x = nk.ecg_simulate(duration=seconds, sampling_rate=fs, heart_rate=heart_rate, random_state=7)
    return np.asarray(x, dtype=np.float64)


def write(folder: Path, name: str, signal: np.ndarray, fs: float = FS, names=None) -> Path:
    """Write ``signal [C, T]`` mV as ``folder/name.hea/.dat`` (format 16, 1 µV)."""
    folder.mkdir(parents=True, exist_ok=True)
    if names is None and signal.shape[0] == 12:
        write_wfdb(folder / name, signal, fs)
    else:
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * len(names),
            sig_name=list(names),
            p_signal=signal.T,
            fmt=["16"] * len(names),
            adc_gain=[1000.0] * len(names),
            baseline=[0] * len(names),
            write_dir=str(folder),
        )
    return folder / name


def read_back(stem: Path) -> np.ndarray:
    """``[C, T]`` mV as wfdb itself reads the file (independent of digitizer.evaluation)."""
    return wfdb.rdrecord(str(stem)).p_signal.T


def independent_snr(x: np.ndarray, y: np.ndarray | None) -> float:
    """The Challenge 2024 SNR re-derived from its definition (missing lead -> 0 dB)."""
    if y is None:
        return 0.0
    ref = ~np.isnan(x)
    both = ref & ~np.isnan(y)
    if not both.any():
        return 0.0
    noise = np.sum((x[both] - y[both]) ** 2)
    if noise == 0:
        return math.inf
    return 10 * np.log10(np.sum(x[both] ** 2) / noise) * both.sum() / ref.sum()


def evaluate_module():
    """``evaluate.py`` at the repository root, imported as a module."""
    spec = importlib.util.spec_from_file_location("evaluate_entry", ROOT / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return hydra_compose(config_name="evaluate", overrides=overrides)


# ------------------------------------------------------------------ reading records


def test_read_record_round_trip_and_units(tmp_path):
    x = sines(1)
    x[3, 100:200] = np.nan
    write(tmp_path, "a", x)
    sig, fs, names = E.read_record(tmp_path / "a.hea")
    assert sig.dtype == np.float32 and sig.shape == (12, T) and fs == FS and names == list(LEADS)
    assert np.array_equal(np.isnan(sig), np.isnan(x))
    assert np.nanmax(np.abs(sig - x)) <= 0.5e-3 + 1e-6  # 1 µV resolution
    wfdb.wrsamp(
        "u",
        fs=250,
        units=["uV", "uV"],
        sig_name=["II", "V1"],
        p_signal=1000 * x[:2].T,
        fmt=["16", "16"],
        adc_gain=[1.0, 1.0],
        baseline=[0, 0],
        write_dir=str(tmp_path),
    )
    sig, fs, names = E.read_record(tmp_path / "u")
    assert fs == 250 and names == ["II", "V1"]
    assert np.nanmax(np.abs(sig - x[:2])) <= 0.5e-3 + 1e-6  # µV -> mV


@pytest.mark.parametrize(
    "damage", ["no_header", "garbage_header", "empty_header", "no_dat", "short_dat"]
)
def test_read_record_names_the_file_and_the_problem(tmp_path, damage):
    write(tmp_path, "rec", sines(2))
    hea, dat = tmp_path / "rec.hea", tmp_path / "rec.dat"
    if damage == "no_header":
        hea.unlink()
        culprit, words = hea, "header file not found"
    elif damage == "garbage_header":
        hea.write_text("this is not a header\n")
        culprit, words = hea, "malformed header"
    elif damage == "empty_header":
        hea.write_text("")
        culprit, words = hea, "malformed header"
    elif damage == "no_dat":
        dat.unlink()
        culprit, words = dat, "not found"
    else:
        dat.write_bytes(dat.read_bytes()[:1000])
        culprit, words = dat, "bytes"
    with pytest.raises(RecordError) as info:
        E.read_record(tmp_path / "rec")
    assert Path(info.value.path) == culprit and words in info.value.problem
    assert "Traceback" not in str(info.value)


# ------------------------------------------------------------------ pairing, lead choice


def test_pairing_is_recursive_by_stem_and_reports_everything(tmp_path):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for name, folder in [("a", truth / "x"), ("b", truth), ("c", truth), ("d", truth)]:
        write(folder, name, sines(3))
    write(pred, "a", sines(3))  # flat prediction vs nested truth
    write(pred / "one", "c", sines(3))
    write(pred / "two", "c", sines(3))  # the same stem twice: ambiguous
    write(pred, "zzz", sines(3))  # no truth
    pairs, unmatched = E.pair_records(truth, pred, {"d": "digitizer crashed"})
    by = {p.record: p for p in pairs}
    assert list(by) == ["a", "b", "c", "d"]
    assert by["a"].prediction == pred / "a" and by["a"].problem is None
    assert by["b"].prediction is None and "no prediction" in by["b"].problem
    assert by["c"].prediction is None and "ambiguous" in by["c"].problem
    assert by["d"].problem == "digitizer crashed"
    assert [u["record"] for u in unmatched] == ["zzz"]


def test_interval_lead_is_the_longest_digitised_lead_ties_to_ii():
    est = np.full((12, 100), np.nan)
    est[:, :25] = 1.0
    assert E.interval_lead(LEADS, est, LEADS, "auto") == "II"  # all equal -> II
    est[LEADS.index("V5"), :] = 1.0
    assert E.interval_lead(LEADS, est, LEADS, "auto") == "V5"
    assert E.interval_lead(LEADS, None, None, "auto") == "II"
    assert E.interval_lead(LEADS, est, LEADS, "V1") == "V1"
    assert E.interval_lead(["I", "V1"], None, None, "II") is None


# ------------------------------------------------------------------ the CLI on a folder of cases


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """One ``python evaluate.py predictions=... truth=... out=...`` run over many cases."""
    root = tmp_path_factory.mktemp("cli")
    truth, pred, out = root / "truth", root / "pred", root / "out"
    rng = np.random.default_rng(11)
    cases: dict[str, dict] = {}

    def case(name, x, y=None, tags=None, folder=truth, **extra):
        write(folder, name, x)
        if tags:
            (folder / f"{name}.json").write_text(json.dumps(tags))
        if y is not None:
            write(pred, name, y)
        cases[name] = {"x": x, **extra}

    x = sines(10)
    case("identical", x, x.copy(), {"preset": "p1"})
    case("gain", sines(11), 0.9 * sines(11), {"preset": "p1"}, folder=truth / "nested")
    shifts = 5 + 3 * np.arange(12)
    xs = sines(12)
    case(
        "shift",
        xs,
        np.stack([np.roll(xs[k], s) for k, s in enumerate(shifts)]),
        {"preset": "p2"},
        shifts=shifts,
    )
    xn = sines(13)
    noise = rng.standard_normal(xn.shape)
    target = np.linspace(5, 35, 12)[:, None]  # dB, one per lead
    noise *= np.sqrt(
        np.mean(xn**2, 1, keepdims=True) / 10 ** (target / 10) / np.mean(noise**2, 1, keepdims=True)
    )
    case("noise", xn, xn + noise, {"preset": "p2"}, target=target[:, 0])
    xg = sines(14)
    yg = 0.9 * xg
    yg[rng.random(yg.shape) < 0.3] = np.nan
    case("gaps", xg, yg, frac=np.isfinite(yg).mean(axis=1))
    xm = sines(15)
    keep = [n for n in LEADS if n != "V4"]
    case("missing_lead", xm)
    write(pred, "missing_lead", 0.9 * np.delete(xm, LEADS.index("V4"), 0), names=keep)
    case("missing", np.tile(sim_ecg(), (12, 1)))  # an ECG: its beats all count as missed
    case("bad_header", sines(17), 0.9 * sines(17))
    (pred / "bad_header.hea").write_text("12 500 2500\nnonsense line\n")
    case("short_dat", sines(18), 0.9 * sines(18))
    (pred / "short_dat.dat").write_bytes((pred / "short_dat.dat").read_bytes()[:3000])
    # prediction at 250 Hz of the same smooth signal
    t250 = np.arange(T // 2) / 250
    x_fs = sines(19)
    rng19 = np.random.default_rng(19)
    amp, phase = rng19.uniform(0.5, 1.5, (12, 1)), rng19.uniform(0, 2 * np.pi, (12, 1))
    case("other_fs", x_fs)
    write(pred, "other_fs", amp * np.sin(2 * np.pi * F_SINE * t250[None] + phase), fs=250)
    # time-stretched copy of a 10 s ECG in every lead
    ecg = sim_ecg()
    stretch = 1.05
    slow = np.interp(np.arange(int(ecg.size * stretch)) / stretch, np.arange(ecg.size), ecg)
    case("stretch", np.tile(ecg, (12, 1)), np.tile(slow, (12, 1)), {"preset": "p1"})
    # LUDB-style lower-case names in the truth
    xl = sines(20)
    write(truth, "lower", xl, names=[n.lower() for n in LEADS])
    write(pred, "lower", 0.9 * xl)
    cases["lower"] = {"x": xl}
    # a truth record whose signal file is gone: cannot be scored, must be listed
    write(truth, "truth_gone", sines(21))
    (truth / "truth_gone.dat").unlink()
    write(pred, "truth_gone", sines(21))
    write(pred, "orphan", sines(22))  # a prediction without truth

    cmd = [
        sys.executable,
        "evaluate.py",
        f"predictions={pred}",
        f"truth={truth}",
        f"out={out}",
        "progress=false",
        "report.worst=2",
        "scoring.align_method=search",  # the Challenge's aligned SNR, and the best shift beside it
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    per_lead = pd.read_csv(out / "per_lead.csv")
    per_record = pd.read_csv(out / "per_record.csv").set_index("record")
    summary = json.loads((out / "summary.json").read_text())
    return types.SimpleNamespace(
        proc=proc,
        out=out,
        truth=truth,
        pred=pred,
        cases=cases,
        per_lead=per_lead,
        per_record=per_record,
        summary=summary,
    )


def lead_snr(cli, record: str) -> np.ndarray:
    rows = cli.per_lead[cli.per_lead["record"] == record].set_index("lead").loc[list(LEADS)]
    return rows["snr_db"].to_numpy(float)


def test_cli_writes_the_four_outputs_and_exits_nonzero_on_failures(cli):
    assert cli.proc.returncode == 1, cli.proc.stderr[-3000:]
    for name in ("per_lead.csv", "per_record.csv", "summary.json", "report.html"):
        assert (cli.out / name).stat().st_size > 0
    s = cli.summary
    for key in (
        "snr_db",
        "aligned_snr_db",
        "snr_db_median",
        "per_lead",
        "groups",
        "intervals",
        "failed",
        "missing_records",
        "missing_leads",
        "unmatched_predictions",
        "notes",
        "delineator_floor",
        "n_records",
        "n_leads",
        "challenge_snr_db",
        "challenge_aligned_snr_db",
        "best_shift_snr_db",
    ):
        assert key in s, key
    assert "without limits" in s["alignment"]["aligned_snr_db"]
    assert "not the Challenge's" in s["alignment"]["best_shift_snr_db"]
    assert set(s["per_lead"]) == set(LEADS)
    assert set(cli.per_lead.columns) >= {"record", "lead", "status", "snr_db", "aligned_snr_db"}
    assert {
        "status",
        "reason",
        "snr_db",
        "aligned_snr_db",
        "rr_error_ms",
        "qrs_error_ms",
        "qt_error_ms",
        "beats_matched",
        "preset",
    } <= set(cli.per_record.columns)
    assert "report:" in cli.proc.stdout and "SNR" in cli.proc.stdout
    html = (cli.out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # per lead, per preset, Bland-Altman, worst
    for name in ("fig_snr_per_lead.png", "fig_bland_altman.png", "fig_worst_1.png"):
        assert (cli.out / name).is_file() and name in html
    assert "62.7" in html and "−11 ± 58" in html  # the delineator's own floor is stated


def test_analytic_snr_values_through_files(cli):
    assert np.all(lead_snr(cli, "identical") == np.inf)  # same file contents: the official +inf
    assert lead_snr(cli, "gain") == pytest.approx(np.full(12, 20.0), abs=0.1)
    k = cli.cases["shift"]["shifts"]
    expected = -20 * np.log10(2 * np.abs(np.sin(np.pi * F_SINE * k / FS)))
    assert lead_snr(cli, "shift") == pytest.approx(expected, abs=0.1)
    assert lead_snr(cli, "noise") == pytest.approx(cli.cases["noise"]["target"], abs=0.1)
    assert lead_snr(cli, "gaps") == pytest.approx(20.0 * cli.cases["gaps"]["frac"], abs=0.1)
    assert lead_snr(cli, "lower") == pytest.approx(np.full(12, 20.0), abs=0.1)  # aVR == avr
    # aligned SNR: a pure shift is recovered (scored on the overlap, minus the shifted-out part)
    shift_rows = cli.per_lead[cli.per_lead["record"] == "shift"]
    assert (shift_rows["aligned_snr_db"] > 40).all()
    assert shift_rows["shift_s"].to_numpy() == pytest.approx(k / FS)
    # the best shift (not the Challenge's) is searched over a set holding the Challenge's choice
    assert (shift_rows["best_shift_snr_db"] >= shift_rows["aligned_snr_db"] - 1e-9).all()


def test_missing_lead_and_missing_record_score_zero_and_are_listed(cli):
    snr = lead_snr(cli, "missing_lead")
    v4 = LEADS.index("V4")
    assert snr[v4] == 0.0 and np.delete(snr, v4) == pytest.approx(np.full(11, 20.0), abs=0.1)
    assert "missing_lead/V4" in cli.summary["missing_leads"]
    assert np.all(lead_snr(cli, "missing") == 0.0)
    assert cli.per_record.loc["missing", "status"] == "missing"
    assert (
        cli.per_record.loc["missing", "beats_missed"]
        == cli.per_record.loc["missing", "beats_n_truth"]
        > 0
    )
    failed = {f["record"]: f for f in cli.summary["failed"]}
    assert failed["missing"]["status"] == "missing" and "missing" in cli.summary["missing_records"]
    assert [u["record"] for u in cli.summary["unmatched_predictions"]] == ["orphan"]


def test_unreadable_files_are_named_scored_zero_and_listed(cli):
    failed = {f["record"]: f for f in cli.summary["failed"]}
    bad = failed["bad_header"]
    assert bad["status"] == "unreadable" and str(cli.pred / "bad_header.hea") in bad["reason"]
    assert "malformed header" in bad["reason"]
    assert str(cli.pred / "short_dat.dat") in failed["short_dat"]["reason"]
    assert np.all(lead_snr(cli, "bad_header") == 0.0) and np.all(lead_snr(cli, "short_dat") == 0)
    gone = failed["truth_gone"]
    assert gone["status"] == "truth_unreadable" and "truth_gone.dat" in gone["reason"]
    assert "truth_gone" not in set(cli.per_lead["record"])  # nothing to score against
    assert set(failed) == {"missing", "bad_header", "short_dat", "truth_gone"}
    assert "bad_header" in cli.proc.stderr


def test_prediction_at_another_fs_is_resampled_and_noted(cli):
    assert lead_snr(cli, "other_fs").min() > 30
    assert cli.per_record.loc["other_fs", "fs"] == FS
    assert "resampled from 250 Hz" in cli.per_record.loc["other_fs", "notes"]
    assert any(n["record"] == "other_fs" for n in cli.summary["notes"])


def test_time_stretched_copy_changes_rr_and_qt_as_expected(cli):
    r = cli.per_record.loc["stretch"]
    assert r["interval_lead"] == "II" and "kept for the alignment, not scored" in r["notes"]
    assert r["rr_error_ms"] == pytest.approx(0.05 * r["truth_rr_ms"], abs=4.0)
    assert r["pred_rr_ms"] == pytest.approx(1.05 * r["truth_rr_ms"], abs=4.0)
    assert r["qt_error_ms"] > 0


def test_summary_groups_and_interval_statistics(cli):
    g = cli.summary["groups"]["preset"]
    assert set(g) == {"p1", "p2"} and g["p1"]["n_records"] == 3
    p2 = cli.per_lead[cli.per_lead["record"].isin(["shift", "noise"])]["snr_db"]
    assert g["p2"]["snr_db"] == pytest.approx(p2.mean())
    iv = cli.summary["intervals"]
    errs = cli.per_record["rr_error_ms"].to_numpy(float)
    errs = errs[np.isfinite(errs)]
    assert iv["per_record"]["rr"]["n"] == errs.size
    assert iv["per_record"]["rr"]["mae_ms"] == pytest.approx(np.abs(errs).mean())
    b = iv["beats"]
    assert b["matched"] + b["missed"] == b["n_truth"] and b["matched"] + b["extra"] == b["n_pred"]


def test_ten_noisy_records_agree_with_an_independent_challenge_formula(tmp_path):
    """10 records, 20 dB white noise, a NaN gap and a missing lead each, through run()."""
    from helpers import ecg_like

    truth, pred = tmp_path / "truth", tmp_path / "pred"
    rng = np.random.default_rng(2024)
    signals = ecg_like(10, seed=5, seconds=T / FS).astype(np.float64)
    expected = []
    for i, x in enumerate(signals):
        write(truth, f"r{i}", x)
        p = np.mean(x**2, axis=1, keepdims=True)
        y = x + np.sqrt(p / 100) * rng.standard_normal(x.shape)
        y[rng.integers(12), rng.integers(0, 1000) :][:700] = np.nan
        drop = int(rng.integers(12))
        names = [n for k, n in enumerate(LEADS) if k != drop]
        write(pred, f"r{i}", np.delete(y, drop, 0), names=names)
        xr, yr = read_back(truth / f"r{i}"), read_back(pred / f"r{i}")
        expected += [
            independent_snr(xr[k], None if k == drop else yr[names.index(n)])
            for k, n in enumerate(LEADS)
        ]
    cfg = compose(
        [
            f"predictions={pred}",
            f"truth={truth}",
            "progress=false",
            "scoring.align=false",
            "scoring.intervals=false",
            "report.worst=1",
        ]
    )
    out = tmp_path / "out"
    assert evaluate_module().run(cfg, out) == 0
    got = pd.read_csv(out / "per_lead.csv")
    assert got["snr_db"].to_numpy() == pytest.approx(expected, abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["snr_db"] == pytest.approx(np.mean(expected), abs=1e-6)
    digitised = got[got["digitised_fraction"] == 1.0]["snr_db"]
    assert digitised.mean() == pytest.approx(20.0, abs=0.3) and len(digitised) > 80


def test_usage_errors_exit_2(tmp_path, capsys):
    ev = evaluate_module()
    assert ev.run(compose([f"truth={tmp_path}"]), tmp_path / "o") == 2
    assert ev.run(compose([f"predictions={tmp_path}", f"truth={tmp_path / 'nope'}"]), tmp_path) == 2
    assert "not a directory" in capsys.readouterr().err


# ------------------------------------------------------------------ images= mode


class FakeImageError(ValueError):
    def __init__(self, path, problem):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def test_images_mode_digitizes_each_image_and_lists_failures(tmp_path, monkeypatch):
    """images= with a stand-in Digitizer (the real one has its own tests): every image is
    digitized into predictions/, an unreadable image is named and scored as missing."""
    truth = tmp_path / "truth"
    for i in range(2):
        write(truth, f"page{i}", sines(30 + i))
    images = tmp_path / "images"
    images.mkdir()
    (images / "page0.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (images / "page1.PNG").write_bytes(b"not an image at all")
    (images / "page1_overlay.png").write_bytes(b"ignored")

    class FakeDigitizer:
        def __init__(self, checkpoint=None, fs=500.0, num_samples=5000, device="cpu"):
            self.fs, self.kwargs = fs, (checkpoint, num_samples, device)

        def digitize_file(self, path):
            path = Path(path)
            if not path.read_bytes().startswith(b"\x89PNG"):
                raise FakeImageError(path, "cannot identify image file")
            sig, _, _ = E.read_record(truth / path.stem)
            return types.SimpleNamespace(
                signal=0.9 * sig,
                fs=self.fs,
                sig_name=list(LEADS),
                warnings=["grid faint"],
                layout="3x4",
            )

    monkeypatch.setitem(
        sys.modules, "digitizer.pipeline", types.SimpleNamespace(Digitizer=FakeDigitizer)
    )
    cfg = compose([f"images={images}", f"truth={truth}", "progress=false", "report.worst=1"])
    out = tmp_path / "out"
    assert evaluate_module().run(cfg, out) == 1
    assert (out / "predictions" / "page0.hea").is_file()
    assert not (out / "predictions" / "page1.hea").exists()
    rec = pd.read_csv(out / "per_record.csv").set_index("record")
    assert rec.loc["page0", "snr_db"] == pytest.approx(20.0, abs=0.1)
    assert "digitizer: grid faint" in rec.loc["page0", "notes"]
    assert rec.loc["page0", "detected_layout"] == "3x4"
    summary = json.loads((out / "summary.json").read_text())
    (fail,) = summary["failed"]
    assert fail["record"] == "page1" and "page1.PNG" in fail["reason"]
    assert "cannot identify" in fail["reason"] and rec.loc["page1", "snr_db"] == 0.0


# ------------------------------------------------------------------ held-out data, test set


def test_heldout_records_are_the_attributed_bytes_and_read_in_mv():
    folder = E.heldout_dir()
    text = (folder / "ATTRIBUTION.md").read_text()
    listed = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})  (\S+)", text))
    files = sorted(p.name for p in folder.iterdir() if p.suffix in (".hea", ".dat"))
    assert len(files) == 24 and sorted(listed) == files
    for name in files:
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == listed[name], name
    src = E.heldout_source()
    assert len(src) == 12 and not src.errors
    rng = np.random.default_rng(0)
    for i in range(len(src)):
        x = src.load(i, rng).signal.astype(np.float64)
        assert np.std(x[0] + x[2] - x[1]) < 2e-3  # Einthoven holds: one scale for all leads
        assert 0.3 < np.ptp(x[1]) < 5.0  # lead II in plausible mV (not the 1 mV header scale)


def test_synthetic_test_set_writes_images_truth_and_tags(tmp_path):
    from ecgsynth import ECGPageSet

    stems = E.make_synthetic_set(
        tmp_path,
        presets=["clean", "medium"],
        layouts=["3x4"],
        num=1,
        dpi=72,
        seed=3,
        progress=False,
    )
    assert stems == ["3x4_clean_000", "3x4_medium_000"]
    for stem in stems:
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        tags = json.loads((tmp_path / f"{stem}.json").read_text())
        assert tags["layout"] == "3x4" and stem.split("_")[1] == tags["preset"]
    clean, fs, names = E.read_record(tmp_path / "3x4_clean_000")
    medium, _, _ = E.read_record(tmp_path / "3x4_medium_000")
    page = ECGPageSet(1, E.heldout_source(), "3x4", "clean", 72, seed=3).render_batch([0])
    assert fs == float(page["fs"][0]) and names == list(LEADS) and clean.shape == (12, 5000)
    shown = page["signal_mask"][0].numpy()
    assert np.array_equal(np.isfinite(clean), shown)  # truth = what the page shows
    assert np.abs(clean - page["signal"][0].numpy())[shown].max() <= 0.5e-3 + 1e-6
    # one seed: presets differ only by their distortions
    assert np.array_equal(clean, medium, equal_nan=True)
    pairs, _ = E.pair_records(tmp_path, tmp_path)
    assert [p.tags for p in pairs] == [
        {"preset": "clean", "layout": "3x4"},
        {"preset": "medium", "layout": "3x4"},
    ]


@pytest.mark.slow
def test_default_run_scores_the_shipped_digitizer(tmp_path):
    """``python evaluate.py`` with no data arguments (a small version of the default set)."""
    pytest.importorskip("digitizer.pipeline")
    out = tmp_path / "out"
    cmd = [sys.executable, "evaluate.py", f"out={out}", "synthetic.num=1", "progress=false"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "synthetic" and summary["n_truth_records"] == 3
    assert set(summary["groups"]["preset"]) == {"clean", "medium", "heavy"}
    assert len(list((out / "testset").glob("*.png"))) == 3 and (out / "report.html").is_file()
