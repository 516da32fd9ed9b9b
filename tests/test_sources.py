"""Tests for ecgsynth.sources: real WFDB files written with wfdb.wrsamp, no mocks."""

from __future__ import annotations

import os
import pickle
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import wfdb
from helpers import shared_data
from scipy.interpolate import CubicSpline

from ecgsynth.sources import (
    LEADS,
    ArraySource,
    ECGRecord,
    LowpassSource,
    MixedSource,
    RecordError,
    RecordWarning,
    SyntheticSource,
    WfdbSource,
    canonical_lead,
    default_source,
    embedded_records_dir,
)

SHARED = shared_data()
FS = 500
LIMB = ("I", "II", "III", "aVR", "aVL", "aVF")


def needs_shared(*parts: str) -> Path:
    """Path inside the shared data folder, or skip the test when it is not there."""
    path = SHARED.joinpath(*parts)
    if not (path.exists() or path.with_suffix(".hea").exists()):
        pytest.skip(f"shared data not available: {path}")
    return path


def lead(name: str) -> int:
    return LEADS.index(name)


def write_record(
    folder: Path,
    name: str,
    signal: np.ndarray,
    sig_name: list[str],
    fs: float = FS,
    units: list[str] | None = None,
    gain: float = 1000.0,
) -> str:
    """Write ``signal`` ``[T, C]`` (physical units) as a format-16 WFDB record; return path."""
    n = signal.shape[1]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=units or ["mV"] * n,
        sig_name=sig_name,
        p_signal=np.asarray(signal, dtype=np.float64),
        fmt=["16"] * n,
        adc_gain=[gain] * n,
        baseline=[0] * n,
        write_dir=str(folder),
    )
    return str(folder / name)


def ecg_wave(seconds: float, channels: int, fs: float = FS, seed: int = 0) -> np.ndarray:
    """``[T, C]`` smooth ECG-like test signal in mV (QRS-like spikes + slow wave)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * fs))) / fs
    out = np.empty((t.size, channels))
    for c in range(channels):
        phase = np.mod(t + rng.uniform(0, 1), 0.8)
        out[:, c] = rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((phase - 0.3) / 0.02) ** 2)
        out[:, c] += 0.2 * np.sin(2 * np.pi * 0.7 * t + c)
    return out


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------------
# embedded records, resampling from real data
# ---------------------------------------------------------------------------------------------


def test_embedded_records_load_as_12_lead_mv() -> None:
    source = WfdbSource(embedded_records_dir())
    assert len(source) == 8 and not source.errors
    assert (source.fs, source.num_samples) == (500, 5000)
    rng = np.random.default_rng(0)
    for i in range(len(source)):
        rec = source.load(i, rng)
        assert isinstance(rec, ECGRecord)
        assert rec.signal.shape == (12, 5000) and rec.signal.dtype == np.float32
        assert np.isfinite(rec.signal).all()
        ptp = np.ptp(rec.signal, axis=1)
        assert (ptp > 0.1).all() and (ptp < 12).all(), (rec.name, ptp)  # mV, not uV or V
        assert (
            np.abs(rec.signal[lead("I")] + rec.signal[lead("III")] - rec.signal[lead("II")]).max()
            < 0.05
        )
        assert rec.path.endswith(rec.name) and rec.fs == 500


def test_default_source_is_lazy_mixture() -> None:
    t0 = time.perf_counter()
    mixed = default_source()
    assert time.perf_counter() - t0 < 5  # nothing simulated yet
    assert isinstance(mixed, MixedSource) and len(mixed) == 16
    assert np.allclose(mixed.weights, [0.75, 0.25])
    real = default_source(synthetic=False)
    assert isinstance(real, WfdbSource)
    rec = real.sample(np.random.default_rng(1))
    assert rec.signal.shape == (12, 5000)


def test_resample_ptbxl_100hz_to_500hz() -> None:
    path = needs_shared("ptbxl", "00001_lr")
    rec = WfdbSource(path, offset_s=0.0, center=False).load(0, np.random.default_rng(0))
    assert rec.signal.shape == (12, 5000) and np.isfinite(rec.signal).all()
    raw = wfdb.rdrecord(str(path)).p_signal  # [1000, 12] at 100 Hz
    t_out = np.arange(5000) / 500
    ref = CubicSpline(np.arange(raw.shape[0]) / 100, raw, axis=0)(t_out).T
    inner = slice(50, 4950)
    for i in range(12):
        assert corr(rec.signal[i, inner], ref[i, inner]) > 0.99, LEADS[i]


def test_resample_ptbdb_1000hz_15_leads_to_500hz() -> None:
    path = needs_shared("ptbdb", "s0010_re")
    source = WfdbSource(path, offset_s=5.0, center=False)
    rec = source.load(0, np.random.default_rng(0))
    assert rec.start_sample == 5000  # at the original 1000 Hz
    assert rec.signal.shape == (12, 5000) and np.isfinite(rec.signal).all()
    raw = wfdb.rdrecord(str(path), sampfrom=5000, sampto=15000, channels=list(range(12)))
    ref = raw.p_signal[::2].T  # plain decimation as the reference
    for i in range(12):
        assert corr(rec.signal[i], ref[i]) > 0.99, LEADS[i]
    assert np.median(np.abs(rec.signal - ref)) < 0.02


@pytest.mark.parametrize("fs_in", [100, 250, 360, 1000])
def test_resample_matches_analytic_signal(tmp_path: Path, fs_in: int) -> None:
    t = np.arange(12 * fs_in) / fs_in
    sig = np.stack([np.sin(2 * np.pi * 3 * t), np.cos(2 * np.pi * 7 * t)], axis=1)
    path = write_record(tmp_path, "sines", sig, ["I", "V1"], fs=fs_in)
    rec = WfdbSource(path, offset_s=1.0, center=False).load(0, np.random.default_rng(0))
    t_out = 1.0 + np.arange(5000) / 500
    assert rec.start_sample == fs_in
    # whole window, edges included (the reader adds margins for the resampling filter)
    assert np.abs(rec.signal[lead("I")] - np.sin(2 * np.pi * 3 * t_out)).max() < 0.003
    assert np.abs(rec.signal[lead("V1")] - np.cos(2 * np.pi * 7 * t_out)).max() < 0.003
    assert np.isnan(rec.signal[lead("II")]).all()  # one limb lead: nothing to derive


def test_resample_keeps_nan_gaps(tmp_path: Path) -> None:
    sig = ecg_wave(10, 2, fs=250)
    sig[1000:1100, 0] = np.nan  # 4.0-4.4 s
    path = write_record(tmp_path, "gap", sig, ["V1", "V2"], fs=250)
    rec = WfdbSource(path, offset_s=0, center=False).load(0, np.random.default_rng(0))
    gap = np.isnan(rec.signal[lead("V1")])
    assert gap[2000:2199].all() and not gap[:1995].any() and not gap[2205:].any()
    assert np.isfinite(rec.signal[lead("V2")]).all()


# ---------------------------------------------------------------------------------------------
# lead names, limb leads, units
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("I", "I"),
        ("Lead I", "I"),
        ("D1", "I"),
        ("mlii", "II"),
        ("DIII", "III"),
        ("AVR", "aVR"),
        ("avf", "aVF"),
        ("v5", "V5"),
        ("MV1", "V1"),
        ("C3", "V3"),
        ("-aVR", None),
        ("vx", None),
        ("ECG1", None),
        ("CM5", None),
    ],
)
def test_canonical_lead(name: str, expected: str | None) -> None:
    assert canonical_lead(name) == expected


def test_alias_lead_names(tmp_path: Path) -> None:
    sig = ecg_wave(10, 3)
    path = write_record(tmp_path, "holter", sig, ["mlii", "V5", "MLII"])
    rec = WfdbSource(path, offset_s=0, center=False).load(0, np.random.default_rng(0))
    np.testing.assert_allclose(rec.signal[lead("II")], sig[:, 0], atol=1e-3)  # first mlii wins
    np.testing.assert_allclose(rec.signal[lead("V5")], sig[:, 1], atol=1e-3)
    others = [i for i in range(12) if LEADS[i] not in ("II", "V5")]
    assert np.isnan(rec.signal[others]).all()


def test_limb_leads_derived_from_i_and_ii(tmp_path: Path) -> None:
    names = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    path = write_record(tmp_path, "eight", ecg_wave(10, 8), names)
    rec = WfdbSource(path, offset_s=0, center=False).load(0, np.random.default_rng(0))
    s = rec.signal.astype(np.float64)
    i, ii = s[lead("I")], s[lead("II")]
    np.testing.assert_allclose(s[lead("III")], ii - i, atol=1e-5)
    np.testing.assert_allclose(s[lead("aVR")], -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(s[lead("aVL")], i - ii / 2, atol=1e-5)
    np.testing.assert_allclose(s[lead("aVF")], ii - i / 2, atol=1e-5)
    assert np.isfinite(s).all()


def test_limb_leads_derived_from_other_pair(tmp_path: Path) -> None:
    path = write_record(tmp_path, "augmented", ecg_wave(10, 2, seed=5), ["aVL", "aVF"])
    s = (
        WfdbSource(path, offset_s=0, center=False)
        .load(0, np.random.default_rng(0))
        .signal.astype(float)
    )
    assert np.isfinite(s[:6]).all() and np.isnan(s[6:]).all()
    np.testing.assert_allclose(s[lead("I")] + s[lead("III")], s[lead("II")], atol=1e-5)
    np.testing.assert_allclose(s[lead("aVR")] + s[lead("aVL")] + s[lead("aVF")], 0, atol=1e-5)
    np.testing.assert_allclose(s[lead("aVL")], s[lead("I")] - s[lead("II")] / 2, atol=1e-5)


def test_microvolt_and_unknown_units(tmp_path: Path) -> None:
    sig_mv = ecg_wave(10, 2)
    uv = write_record(tmp_path, "micro", sig_mv * 1000, ["I", "V2"], units=["uV", "uV"], gain=1)
    rec = WfdbSource(uv, offset_s=0, center=False).load(0, np.random.default_rng(0))
    np.testing.assert_allclose(rec.signal[lead("V2")], sig_mv[:, 1], atol=2e-3)
    odd = write_record(tmp_path, "odd", sig_mv, ["I", "V2"], units=["bananas", "mV"])
    with pytest.warns(RecordWarning, match="odd.*unknown units.*assuming mV"):
        source = WfdbSource(odd, offset_s=0, center=False)
    rec = source.load(0, np.random.default_rng(0))
    np.testing.assert_allclose(rec.signal[lead("I")], sig_mv[:, 0], atol=2e-3)


def test_ludb_digital_microvolts_obey_einthoven() -> None:
    path = needs_shared("ludb", "1")
    rec = WfdbSource(path, amplitude="digital_uv", offset_s=0, center=False).load(
        0, np.random.default_rng(0)
    )
    s = rec.signal.astype(np.float64)
    assert np.isfinite(s).all()
    assert np.abs(s[lead("I")] + s[lead("III")] - s[lead("II")]).max() < 0.01
    assert np.abs(s[lead("aVR")] + (s[lead("I")] + s[lead("II")]) / 2).max() < 0.01
    assert 0.2 < np.ptp(s[lead("II")]) < 10  # mV
    # the header gains instead make every lead span exactly 1 mV (the documented caveat)
    header = WfdbSource(path, offset_s=0, center=False).load(0, np.random.default_rng(0)).signal
    np.testing.assert_allclose(np.ptp(header, axis=1), 1.0, atol=0.01)


# ---------------------------------------------------------------------------------------------
# windows
# ---------------------------------------------------------------------------------------------


def test_random_window_reproducible(tmp_path: Path) -> None:
    path = write_record(tmp_path, "long", ecg_wave(40, 2), ["I", "II"])
    source = WfdbSource(path)
    a = source.load(0, np.random.default_rng(7))
    b = source.load(0, np.random.default_rng(7))
    assert a.start_sample == b.start_sample
    np.testing.assert_array_equal(a.signal, b.signal)
    starts = {source.load(0, np.random.default_rng(seed)).start_sample for seed in range(8)}
    assert len(starts) > 1 and all(0 <= s <= 40 * FS - 5000 for s in starts)


def test_fixed_offset_and_clipping(tmp_path: Path) -> None:
    ramp = np.tile(np.arange(30 * FS)[:, None] * 1e-3, (1, 2))  # value = sample index / 1000
    path = write_record(tmp_path, "ramp", ramp, ["V1", "V2"])
    rec = WfdbSource(path, offset_s=2.0, center=False).load(0, np.random.default_rng(0))
    assert rec.start_sample == 1000
    np.testing.assert_allclose(rec.signal[lead("V1")], (1000 + np.arange(5000)) * 1e-3, atol=1e-3)
    late = WfdbSource(path, offset_s=100.0, center=False).load(0, np.random.default_rng(0))
    assert late.start_sample == 30 * FS - 5000


def test_short_record_pad_or_skip(tmp_path: Path) -> None:
    path = write_record(tmp_path, "short3", ecg_wave(3, 2), ["I", "II"])
    rec = WfdbSource(path).load(0, np.random.default_rng(0))
    assert rec.signal.shape == (12, 5000) and rec.start_sample == 0
    assert np.isfinite(rec.signal[lead("III"), :1500]).all()
    assert np.isnan(rec.signal[:, 1500:]).all()
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="shorter than"):
        WfdbSource(path, short="skip")


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def make_bad_folder(folder: Path) -> dict[str, str]:
    """A good record next to many bad ones; returns name -> expected problem fragment."""
    twelve = list(LEADS)
    write_record(folder, "good", ecg_wave(10, 12), twelve)
    (folder / "garbage.hea").write_text("this is not a header\n\x00 \x01 nonsense\n")
    write_record(folder, "nodat", ecg_wave(10, 2), ["I", "II"])
    os.remove(folder / "nodat.dat")
    write_record(folder, "truncated", ecg_wave(10, 12), twelve)
    data = (folder / "truncated.dat").read_bytes()
    (folder / "truncated.dat").write_bytes(data[: len(data) // 3])
    write_record(folder, "huge", ecg_wave(1, 12), twelve)  # tiny .dat ...
    header = (folder / "huge.hea").read_text().splitlines()
    first = header[0].split()
    header[0] = " ".join([*first[:3], str(10**9)])  # ... that claims 10^9 samples per lead
    (folder / "huge.hea").write_text("\n".join(header) + "\n")
    nan = np.full((10 * FS, 12), np.nan)  # wfdb writes NaN as the invalid value -32768
    write_record(folder, "allnan", nan, twelve)
    # its one ECG lead is all NaN; the other channel has data but is no lead we can draw
    mixed = np.column_stack([np.full(10 * FS, np.nan), ecg_wave(10, 1)[:, 0]])
    write_record(folder, "nanlead", mixed, ["II", "Resp"])
    write_record(folder, "twolead", ecg_wave(10, 2), ["ECG1", "ECG2"])
    write_record(folder, "short3s", ecg_wave(3, 12), twelve)
    return {
        "garbage": "cannot parse header",
        "nodat": "not found",
        "truncated": "smaller than",
        "huge": "max_samples",
        "allnan": "all samples are NaN",
        "nanlead": "none of the 12 leads can be derived: its ECG leads (II) are all NaN",
        "twolead": "no recognised ECG lead",
        "short3s": "shorter than",
    }


def test_bad_folder_scanned_without_reading(tmp_path: Path) -> None:
    expected = make_bad_folder(tmp_path)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.warns(RecordWarning) as caught:
        source = WfdbSource(tmp_path, short="skip")
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2.0 and peak < 20e6  # 10^9-sample claim refused without allocating
    assert [Path(p).name for p in source.records] == ["good"]
    problems = {Path(e.path).name: e.problem for e in source.errors}
    assert problems.keys() == expected.keys()
    for name, fragment in expected.items():
        assert fragment in problems[name], (name, problems[name])
        err = next(e for e in source.errors if Path(e.path).name == name)
        assert str(err).startswith(str(tmp_path / name) + ": ")
        assert any(name in str(w.message) for w in caught)
    rng = np.random.default_rng(0)
    assert {source.sample(rng).name for _ in range(20)} == {"good"}


def test_headers_only_scan_names_nan_records_when_drawn(tmp_path: Path) -> None:
    make_bad_folder(tmp_path)
    with pytest.warns(RecordWarning):
        source = WfdbSource(tmp_path, short="skip", check_samples=False)
    assert sorted(Path(p).name for p in source.records) == ["allnan", "good", "nanlead"]
    # they pass the header scan but fail at load, once each, with a warning naming them
    rng = np.random.default_rng(0)
    with pytest.warns(RecordWarning) as caught:
        names = {source.sample(rng).name for _ in range(40)}
    assert names == {"good"}
    messages = " ".join(str(w.message) for w in caught)
    assert "allnan: no finite sample" in messages and "nanlead: no finite sample" in messages
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning for the same record
        assert {source.sample(rng).name for _ in range(20)} == {"good"}
    assert len(source.bad_indices) == 2


def test_huge_claim_with_big_limit_fails_on_file_size(tmp_path: Path) -> None:
    make_bad_folder(tmp_path)
    t0 = time.perf_counter()
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="smaller than") as info:
        WfdbSource(tmp_path / "huge.hea", max_samples=10**13)
    assert time.perf_counter() - t0 < 2.0
    assert info.value.path == str(tmp_path / "huge")


def test_more_refusals(tmp_path: Path) -> None:
    low = write_record(tmp_path, "slow", ecg_wave(20, 2, fs=50), ["I", "II"], fs=50)
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="sampling rate 50"):
        WfdbSource(low)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RecordError, match="no usable WFDB record"):
        WfdbSource(empty)
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="header file not found"):
        WfdbSource(tmp_path / "nothing_here")


def test_all_bad_source_raises_on_sample(tmp_path: Path) -> None:
    write_record(tmp_path, "allnan", np.full((5000, 2), np.nan), ["I", "II"])
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="allnan: all samples"):
        WfdbSource(tmp_path)
    source = WfdbSource(tmp_path, check_samples=False)
    with pytest.warns(RecordWarning), pytest.raises(RecordError, match="none of the 1"):
        source.sample(np.random.default_rng(0))


def test_nan_only_after_the_first_chunk_is_still_found(tmp_path: Path) -> None:
    late = np.full((300_000, 2), np.nan)  # 10 min at 500 Hz: finite only in the last second
    late[-FS:] = ecg_wave(1, 2)
    write_record(tmp_path, "late", late, ["I", "II"])
    assert WfdbSource(tmp_path).records == [str(tmp_path / "late")]


def test_record_error_message_and_pickle() -> None:
    err = RecordError("/data/x/E1", "broken header")
    assert str(err) == "/data/x/E1: broken header" and isinstance(err, ValueError)
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.problem, str(back)) == (err.path, err.problem, str(err))


# ---------------------------------------------------------------------------------------------
# synthetic, arrays, mixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> tuple[SyntheticSource, SyntheticSource, SyntheticSource]:
    a = SyntheticSource(num_records=2, seed=3, duration_s=4.0)
    b = SyntheticSource(num_records=2, seed=3, duration_s=4.0)
    c = SyntheticSource(num_records=2, seed=4, duration_s=4.0)
    return a, b, c


def test_synthetic_deterministic(synthetic) -> None:
    a, b, c = synthetic
    ra, rb, rc = (s.load(0, np.random.default_rng(1)) for s in synthetic)
    np.testing.assert_array_equal(ra.signal, rb.signal)
    assert ra.start_sample == rb.start_sample and ra.name == rb.name
    assert not np.allclose(ra.signal, rc.signal)
    other = a.load(0, np.random.default_rng(2))
    assert other.start_sample != ra.start_sample  # windows move with the rng


def test_synthetic_shape_and_amplitude(synthetic) -> None:
    a = synthetic[0]
    rec = a.load(0, np.random.default_rng(0))
    assert rec.signal.shape == (12, 2000) and rec.signal.dtype == np.float32
    assert np.isfinite(rec.signal).all() and rec.fs == 500 and rec.path == ""
    ptp = np.ptp(rec.signal, axis=1)
    assert (ptp > 0.2).all() and (ptp < 5).all(), ptp
    assert np.abs(np.median(rec.signal, axis=1)).max() < 0.3  # baseline near 0 mV
    s = rec.signal.astype(np.float64)
    assert np.abs(s[lead("I")] + s[lead("III")] - s[lead("II")]).max() < 1e-5
    assert len(a) == 2 and a.num_samples == 2000


def test_array_source_windows() -> None:
    signals = np.random.default_rng(0).normal(size=(3, 12, 600)).astype(np.float32)
    source = ArraySource(signals, fs=100, names=["a", "b", "c"], duration_s=4.0)
    rec = source.load(1, np.random.default_rng(0))
    assert rec.name == "b" and rec.signal.shape == (12, 400) and rec.fs == 100
    np.testing.assert_array_equal(
        rec.signal, signals[1][:, rec.start_sample : rec.start_sample + 400]
    )
    rng = np.random.default_rng(1)
    fixed = ArraySource(signals, fs=100, duration_s=4.0, offset_s=1.5).load(0, rng)
    assert fixed.start_sample == 150
    short = ArraySource([signals[0][:, :100]], fs=100, duration_s=4.0).load(
        0, np.random.default_rng(0)
    )
    assert np.isfinite(short.signal[:, :100]).all() and np.isnan(short.signal[:, 100:]).all()
    with pytest.raises(ValueError):
        ArraySource([np.zeros((11, 100))], fs=100)


def test_array_source_names_and_never_draws_an_all_nan_array() -> None:
    signals = np.random.default_rng(0).normal(size=(3, 12, 600)).astype(np.float32)
    signals[1] = np.nan
    with pytest.warns(RecordWarning, match="b: all samples are NaN"):
        source = ArraySource(signals, fs=100, names=["a", "b", "c"], duration_s=4.0)
    assert [str(e) for e in source.errors] == ["b: all samples are NaN: nothing to draw"]
    rng = np.random.default_rng(0)
    assert {source.sample(rng).name for _ in range(20)} == {"a", "c"}


def test_mixed_source() -> None:
    x = np.ones((2, 12, 500), np.float32)
    first = ArraySource(x, fs=50, names=["a0", "a1"], duration_s=4.0)
    second = ArraySource(2 * x[:1], fs=50, names=["b0"], duration_s=4.0)
    mixed = MixedSource([first, second])
    assert len(mixed) == 3 and mixed.fs == 50 and mixed.num_samples == 200
    assert mixed.load(2, np.random.default_rng(0)).name == "b0"
    assert mixed.load(1, np.random.default_rng(0)).name == "a1"
    only_second = MixedSource([first, second], weights=[0, 1])
    rng = np.random.default_rng(0)
    assert {only_second.sample(rng).name for _ in range(10)} == {"b0"}
    with pytest.raises(ValueError):
        MixedSource([first, ArraySource(x, fs=50, duration_s=5.0)])
    with pytest.raises(ValueError):
        MixedSource([first, second], weights=[1, -1])


def test_lowpass_source_filters_each_finite_stretch() -> None:
    """10 Hz passes, 120 Hz is removed, NaN stays NaN, a short stretch is kept as it is, and
    draws follow the wrapped source's weights."""
    t = np.arange(2500) / 500
    slow, fast = np.sin(2 * np.pi * 10 * t), 0.5 * np.sin(2 * np.pi * 120 * t)
    x = np.tile((slow + fast).astype(np.float32), (12, 1))
    x[3, 1000:1100] = np.nan
    x[4, :2488] = np.nan  # a 12-sample stretch: too short to filter
    source = LowpassSource(ArraySource([x], fs=500, duration_s=5.0, offset_s=0), cutoff_hz=40)
    y = source.load(0, np.random.default_rng(0)).signal
    inner = slice(100, 900)
    np.testing.assert_allclose(y[0, inner], slow[inner], atol=0.02)
    assert np.isnan(y[3, 1000:1100]).all() and np.isfinite(y[3, 1100:]).all()
    np.testing.assert_allclose(y[3, 1200:1400], slow[1200:1400], atol=0.02)
    np.testing.assert_array_equal(y[4, 2488:], x[4, 2488:])
    ones = ArraySource(np.ones((1, 12, 500), np.float32), fs=50, names=["b0"], duration_s=4.0)
    mixed = MixedSource([ArraySource(x[None, :, :500], fs=50, names=["a0"], duration_s=4.0), ones],
                        weights=[0, 1])  # fmt: skip
    rng = np.random.default_rng(0)
    assert {LowpassSource(mixed, 10).sample(rng).name for _ in range(5)} == {"b0"}
    with pytest.raises(ValueError, match="cutoff_hz"):
        LowpassSource(source, cutoff_hz=300)


def test_center_removes_dc_offset(tmp_path):
    """A Holter-like record with a 5 mV offset is drawn around its own baseline."""
    t = np.arange(5000) / 500
    ecg = 0.8 * np.exp(-0.5 * ((np.mod(t, 0.8) - 0.3) / 0.015) ** 2)
    sig = np.stack([ecg + 5.0, ecg - 3.0], axis=1)
    wfdb.wrsamp("dc", fs=500, units=["mV", "mV"], sig_name=["II", "V5"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(tmp_path))  # fmt: skip
    rng = np.random.default_rng(0)
    centred = WfdbSource(tmp_path / "dc", offset_s=0).load(0, rng).signal
    raw = WfdbSource(tmp_path / "dc", offset_s=0, center=False).load(0, rng).signal
    assert abs(np.nanmedian(raw[1]) - 5.0) < 0.01
    assert abs(np.nanmedian(centred[1])) < 1e-3 and abs(np.nanmedian(centred[10])) < 1e-3
    np.testing.assert_allclose(centred[1] - centred[1, 0], raw[1] - raw[1, 0], atol=1e-4)
