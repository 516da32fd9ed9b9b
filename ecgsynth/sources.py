"""Signal sources: 12-lead ECG windows in mV at a fixed sampling rate.

Every source yields :class:`ECGRecord` objects whose ``signal`` is float32 ``[12, T]`` in mV,
lead order :data:`LEADS`, NaN where a lead (or a stretch of it) is unknown, with
``T = num_samples = round(duration_s * fs)`` exactly.

Sources
-------
:class:`WfdbSource`
    WFDB records on disk (``.hea`` + ``.dat``/``.mat``/...). Headers are scanned and validated
    against the signal-file sizes at construction, and each record is checked to hold a finite
    sample in a recognised lead; bad records are reported in ``errors`` and skipped. Only the
    needed window is read; records at 100-1000 Hz are resampled to ``fs``.
:class:`SyntheticSource`
    neurokit2 ECGSYN 12-lead simulations, rescaled to realistic mV (see the class docstring).
:class:`ArraySource`
    In-memory arrays ``[N, 12, T]`` in mV.
:class:`MixedSource`
    Weighted mixture of sources sharing ``fs`` and ``num_samples``.

:func:`default_source` mixes the eight embedded PhysioNet/CinC 2021 records
(:func:`embedded_records_dir`, see ``data/records/ATTRIBUTION.md``) 3:1 with synthetic ones.

Randomness: every random choice (record, window start, synthetic parameters) comes from a
``numpy.random.Generator`` passed in or seeded explicitly; global RNGs are never touched.
"""

from __future__ import annotations

import abc
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import wfdb
from scipy.signal import butter, resample_poly, sosfiltfilt

from .layout import LEADS, NUM_LEADS

__all__ = [
    "LEADS",
    "LEAD_ALIASES",
    "ArraySource",
    "ECGRecord",
    "MixedSource",
    "RecordError",
    "RecordWarning",
    "SignalSource",
    "SyntheticSource",
    "WfdbSource",
    "canonical_lead",
    "default_source",
    "derive_limb_leads",
    "embedded_records_dir",
]


def _build_aliases() -> dict[str, str]:
    table: dict[str, str] = {
        # limb leads (Einthoven); ML* = modified (Holter/Mason-Likar) limb leads; D* = Dérivation
        "i": "I", "di": "I", "d1": "I", "mli": "I",
        "ii": "II", "dii": "II", "d2": "II", "mlii": "II",
        "iii": "III", "diii": "III", "d3": "III", "mliii": "III",
        # augmented limb leads (Goldberger)
        "avr": "aVR", "avl": "aVL", "avf": "aVF",
    }  # fmt: skip
    for k in range(1, 7):
        # chest leads: V1..V6, MV1..MV6 (modified chest leads), C1..C6 (IEC naming)
        for prefix in ("v", "mv", "c"):
            table[f"{prefix}{k}"] = f"V{k}"
    return table


LEAD_ALIASES: dict[str, str] = _build_aliases()
"""Normalised lead name -> canonical name in :data:`LEADS` (see :func:`canonical_lead`)."""

# Frontal-plane leads as (coefficient of I, coefficient of II): III = II - I,
# aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2. Any two distinct rows are independent.
_LIMB_COEFFS = np.array(
    [[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0], [-0.5, -0.5], [1.0, -0.5], [-0.5, 1.0]]
)

# Bytes per sample of the WFDB signal formats whose size we can check (FLAC 5xx: unknown).
_BYTES_PER_SAMPLE: dict[str, float] = {
    "8": 1.0,
    "80": 1.0,
    "16": 2.0,
    "61": 2.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4.0 / 3.0,
    "311": 4.0 / 3.0,
    "24": 3.0,
    "32": 4.0,
}
_COMPRESSED_FORMATS = {"508", "516", "524"}
# Digital value WFDB uses for "no sample" (NaN), per format (format 8 has none).
_INVALID_DIGITAL: dict[str, int] = {
    "80": -(2**7),
    "508": -(2**7),
    "310": -(2**9),
    "311": -(2**9),
    "212": -(2**11),
    "16": -(2**15),
    "61": -(2**15),
    "160": -(2**15),
    "516": -(2**15),
    "24": -(2**23),
    "524": -(2**23),
    "32": -(2**31),
}
_MAX_HEADER_BYTES = 1_000_000
_MIN_FS, _MAX_FS = 100.0, 1000.0


# --------------------------------------------------------------------------------------------
# records, errors, base class
# --------------------------------------------------------------------------------------------


@dataclass
class ECGRecord:
    """One 12-lead ECG window.

    Attributes:
        signal: float32 ``[12, T]`` in mV, lead order :data:`LEADS`, NaN where unknown.
        fs: sampling rate of ``signal`` in Hz.
        name: short record name (e.g. ``"E07500"``).
        path: record path without extension, or ``""`` for arrays / synthetic records.
        start_sample: offset of the window in the original record, in samples at the
            record's ORIGINAL sampling rate.
    """

    signal: np.ndarray
    fs: float
    name: str
    path: str = ""
    start_sample: int = 0


class RecordError(ValueError):
    """A record that cannot be used; ``str()`` is ``'<path>: <problem>'``.

    Attributes:
        path: the record (file path without extension, record name, or source description).
        problem: what is wrong, in words.
    """

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = str(problem)
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem))


class RecordWarning(UserWarning):
    """Warning about a skipped or suspicious record (message names the file)."""


def _check_rate(fs: float, duration_s: float) -> tuple[int, int]:
    if not (isinstance(fs, (int, float, np.integer, np.floating)) and float(fs).is_integer()):
        raise ValueError(f"fs must be a positive integer number of Hz, got {fs!r}")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    if not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    num_samples = int(round(duration_s * fs))
    if num_samples < 1:
        raise ValueError(f"duration_s * fs must be at least one sample, got {duration_s * fs}")
    return int(fs), num_samples


class SignalSource(abc.ABC):
    """Base class: an indexable collection of 12-lead records cut to fixed-length windows.

    Attributes:
        fs: output sampling rate (Hz).
        num_samples: output length ``T = round(duration_s * fs)`` (samples).
    """

    fs: int
    num_samples: int

    def __init__(self, fs: float, duration_s: float):
        self.fs, self.num_samples = _check_rate(fs, duration_s)
        self._bad: set[int] = set()

    @property
    def duration_s(self) -> float:
        """Output window length in seconds (``num_samples / fs``)."""
        return self.num_samples / self.fs

    @property
    def bad_indices(self) -> frozenset[int]:
        """Indices that failed to load in :meth:`sample` and are no longer drawn."""
        return frozenset(self._bad)

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of records."""

    @abc.abstractmethod
    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        """Load record ``index``; ``rng`` draws the window. Raises :class:`RecordError`."""

    def _describe(self) -> str:
        return type(self).__name__

    def warm(self) -> None:
        """Do any one-time preparation now (e.g. simulations), so a stream never stalls."""
        return None

    def sample(self, rng: np.random.Generator) -> ECGRecord:
        """Load a random record (index uniform over the records not known to be bad).

        A record that raises :class:`RecordError` is warned about once (:class:`RecordWarning`,
        the message names the file), remembered as bad and replaced by another draw.

        Raises:
            RecordError: if every record is bad (or the source is empty).
        """
        n = len(self)
        while True:
            if len(self._bad) >= n:
                raise RecordError(self._describe(), f"none of the {n} records could be loaded")
            if not self._bad:
                index = int(rng.integers(n))
            else:
                good = np.setdiff1d(np.arange(n), np.fromiter(self._bad, dtype=np.int64))
                index = int(good[rng.integers(good.size)])
            try:
                return self.load(index, rng)
            except RecordError as err:
                self._bad.add(index)
                warnings.warn(f"{err} (record skipped)", RecordWarning, stacklevel=2)


# --------------------------------------------------------------------------------------------
# lead names, limb leads, windows, resampling
# --------------------------------------------------------------------------------------------


def canonical_lead(name: str) -> str | None:
    """Map a lead name from a file to its name in :data:`LEADS`, or ``None`` if unknown.

    Matching ignores case, spaces, ``_`` and ``.``, and a leading ``lead`` (``"Lead II"``,
    ``"LEAD_V1"``). Accepted spellings (:data:`LEAD_ALIASES`):

    =======  =====================================================
    lead     accepted names (case-insensitive)
    =======  =====================================================
    I        I, DI, D1, MLI
    II       II, DII, D2, MLII
    III      III, DIII, D3, MLIII
    aVR      aVR (any case: AVR, avr)
    aVL      aVL
    aVF      aVF
    V1..V6   V1..V6, MV1..MV6 (modified chest leads), C1..C6 (IEC)
    =======  =====================================================

    Ignored (``None``): inverted leads such as ``-aVR`` (Cabrera display), Frank leads
    (``vx vy vz``), bipolar Holter leads (``CM5``...), generic names (``ECG1``) and anything else.
    ``ML*``/``MV*`` Holter leads are only approximations of the standard leads.
    """
    key = str(name).strip().lower()
    for ch in " _.":
        key = key.replace(ch, "")
    if key.startswith("lead") and len(key) > 4:
        key = key[4:]
    return LEAD_ALIASES.get(key)


def derive_limb_leads(signal: np.ndarray, present: Sequence[bool]) -> np.ndarray:
    """Fill missing frontal-plane leads from two present ones (in place, also returned).

    The six limb leads span a 2-D space: with I and II, ``III = II - I``, ``aVR = -(I+II)/2``,
    ``aVL = I - II/2``, ``aVF = II - I/2`` (Einthoven/Goldberger); any other pair of present
    limb leads is first solved for I and II. The first two present leads in the order
    I, II, III, aVR, aVL, aVF are used. Leads already present are left untouched; with fewer
    than two present limb leads nothing changes (missing leads stay NaN).

    Args:
        signal: ``[12, T]`` float array in mV, lead order :data:`LEADS`.
        present: 12 flags, True where the lead came from the data.
    """
    limb_present = [i for i in range(6) if present[i]]
    missing = [i for i in range(6) if not present[i]]
    if len(limb_present) < 2 or not missing:
        return signal
    a, b = limb_present[:2]
    inv = np.linalg.inv(_LIMB_COEFFS[[a, b]])  # [I, II] = inv @ [lead a, lead b]
    basis = inv @ np.stack([signal[a], signal[b]]).astype(np.float64)  # [2, T]: I, II
    for i in missing:
        signal[i] = _LIMB_COEFFS[i] @ basis
    return signal


def _window_start(
    length: int, needed: int, offset: int | None, rng: np.random.Generator | None
) -> int:
    """Start of a ``needed``-sample window in a ``length``-sample record.

    ``offset=None`` draws uniformly over all valid starts with ``rng``; an int is clipped to
    the valid range. Records shorter than the window start at 0.
    """
    max_start = max(0, length - needed)
    if offset is None:
        if rng is None:
            raise ValueError("a random window needs an rng")
        return int(rng.integers(max_start + 1))
    return int(min(max(int(offset), 0), max_start))


def _pad_or_crop(x: np.ndarray, length: int) -> np.ndarray:
    """``[C, n]`` -> ``[C, length]``: crop the end or pad it with NaN."""
    if x.shape[1] >= length:
        return x[:, :length]
    out = np.full((x.shape[0], length), np.nan, dtype=x.dtype)
    out[:, : x.shape[1]] = x
    return out


def _rational_ratio(fs_out: float, fs_in: float) -> tuple[int, int]:
    """``fs_out / fs_in`` as coprime integers ``(up, down)``."""
    ratio = Fraction(fs_out).limit_denominator(10_000) / Fraction(fs_in).limit_denominator(10_000)
    return ratio.numerator, ratio.denominator


def _resample_nan(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """Polyphase resampling of ``[C, n]`` by ``up/down`` that tolerates NaN.

    NaN runs are bridged by linear interpolation for filtering, then output samples whose
    nearest input samples (floor and ceil of the mapped position) were NaN are set back to NaN.
    Returns ``[C, ceil(n * up / down)]`` float64.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[1]
    mask = np.isnan(x)
    out_len = -(-n * up // down)
    if mask.all():
        return np.full((x.shape[0], out_len), np.nan)
    filled = x.copy()
    idx = np.arange(n)
    dead = np.zeros(x.shape[0], dtype=bool)
    for c in np.flatnonzero(mask.any(axis=1)):
        ok = ~mask[c]
        if not ok.any():
            filled[c] = 0.0
            dead[c] = True
        else:
            filled[c] = np.interp(idx, idx[ok], x[c, ok])
    y = resample_poly(filled, up, down, axis=1, padtype="line")[:, :out_len]
    if mask.any():
        pos = np.arange(y.shape[1]) * (down / up)
        lo = np.clip(np.floor(pos).astype(np.int64), 0, n - 1)
        hi = np.clip(np.ceil(pos).astype(np.int64), 0, n - 1)
        y[mask[:, lo] | mask[:, hi]] = np.nan
        y[dead] = np.nan
    return y


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Resample ``[C, n]`` from ``fs_in`` to ``fs_out`` Hz (polyphase; NaN runs stay NaN).

    Returns ``[C, ceil(n * fs_out / fs_in)]`` float64.
    """
    up, down = _rational_ratio(fs_out, fs_in)
    return _resample_nan(x, up, down)


# --------------------------------------------------------------------------------------------
# WFDB files
# --------------------------------------------------------------------------------------------


def _unit_scale(unit: str | None) -> float | None:
    """mV per unit of a WFDB ``units`` string, or ``None`` if not a known voltage unit."""
    key = (unit or "").strip().lower().replace(" ", "")
    if key in ("mv", "millivolt", "millivolts"):
        return 1.0
    if key in ("uv", "µv", "μv", "microvolt", "microvolts", "mcv"):
        return 1e-3
    if key in ("v", "volt", "volts"):
        return 1e3
    if key in ("nv", "nanovolt", "nanovolts"):
        return 1e-6
    return None


@dataclass(frozen=True)
class _WfdbInfo:
    """What the header scan learnt about one record (everything :meth:`WfdbSource.load` needs)."""

    path: str
    name: str
    fs: float
    sig_len: int
    channels: tuple[int, ...]  # record channel indices to read
    leads: tuple[int, ...]  # LEADS index of each read channel
    scales: tuple[float, ...]  # mV per physical unit, per read channel
    baselines: tuple[int, ...]  # digital baseline, per read channel
    invalid: tuple[int | None, ...]  # digital NaN value, per read channel


def _expand_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Folders -> their ``*.hea`` (sorted, non-recursive); files -> path without ``.hea``."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[str] = []
    for item in items:
        p = os.fspath(item)
        if os.path.isdir(p):
            names = sorted(f for f in os.listdir(p) if f.endswith(".hea"))
            out.extend(os.path.join(p, f[: -len(".hea")]) for f in names)
        elif p.endswith(".hea"):
            out.append(p[: -len(".hea")])
        else:
            out.append(p)
    return list(dict.fromkeys(out))


_CHECK_CHUNK = 100_000  # frames read at a time when looking for a finite sample


def _has_finite_sample(path: str, sig_len: int, channels: Sequence[int]) -> bool:
    """Whether any of ``channels`` of the record has a finite sample (read in chunks, stopping
    at the first chunk that has one)."""
    for start in range(0, sig_len, _CHECK_CHUNK):
        rec = wfdb.rdrecord(
            path, sampfrom=start, sampto=min(sig_len, start + _CHECK_CHUNK), channels=list(channels)
        )
        if np.isfinite(rec.p_signal).any():
            return True
    return False


def _check_drawable(
    path: str, sig_len: int, channels: Sequence[int], names: Sequence[str], n_sig: int
) -> None:
    """Refuse a record none of the 12 leads can be drawn from: no recognised channel (given
    by ``channels``, named ``names``) has a finite sample.

    Raises:
        RecordError: naming the record and saying which case it is.
    """
    try:
        if _has_finite_sample(path, sig_len, channels):
            return
        others = [ch for ch in range(n_sig) if ch not in channels]
        all_nan = not (others and _has_finite_sample(path, sig_len, others))
    except Exception as exc:  # noqa: BLE001 - any reader failure makes a bad record
        raise RecordError(path, f"cannot read samples ({type(exc).__name__}: {exc})") from None
    if all_nan:
        raise RecordError(path, "all samples are NaN: nothing to draw")
    raise RecordError(
        path,
        f"none of the 12 leads can be derived: its ECG leads ({', '.join(names)}) are all NaN",
    )


class WfdbSource(SignalSource):
    """12-lead windows from WFDB records, resampled to ``fs`` and converted to mV.

    Args:
        paths: a folder (all ``*.hea`` in it, sorted, not recursive), one record path (with or
            without ``.hea``), or a sequence of these.
        fs: output sampling rate (Hz). Records at 100-1000 Hz are resampled to it with a
            polyphase filter (``scipy.signal.resample_poly``); other rates are refused.
        duration_s: window length (s); ``num_samples = round(duration_s * fs)``.
        offset_s: window start in seconds (clipped to the record), or ``None`` for a start
            drawn uniformly over all valid starts by the ``rng`` passed to :meth:`load`.
        short: records shorter than the window: ``"pad"`` pads the end with NaN, ``"skip"``
            refuses them (listed in ``errors``).
        amplitude: ``"header"`` uses the header's gain, baseline and units (µV, mV, V;
            unknown or empty units are taken as mV with a warning). ``"digital_uv"`` ignores
            gains and units and reads the stored integers minus the header baseline as µV
            (for LUDB, whose per-lead gains make every lead span 1 mV; see the data README).
        max_samples: refuse records whose header claims more than this many samples
            (``n_sig * sig_len``).
        center: subtract each lead's median over the window, as a printer's baseline
            restoration does; without it a record with a DC offset (Holter data often has
            several mV) is drawn outside its row.
        check_samples: also read each record at construction until a finite sample of a
            recognised lead turns up (for a 10 s record: one extra read, about the cost of the
            header scan), so that a record whose samples are all NaN, or whose recognised leads
            are all NaN, is refused and named with the others.  ``False`` keeps construction to
            headers only (for very large folders); such records are then named when first drawn.

    Lead names are matched with :func:`canonical_lead`; unrecognised signals are not read,
    a repeated lead keeps its first channel, and missing limb leads are derived from two
    present ones (:func:`derive_limb_leads`). Remaining missing leads are NaN.

    Construction checks each header (parses; single segment; positive signal length;
    100-1000 Hz; at most ``max_samples``; at least one recognised lead; signal files present and
    large enough for the claimed length given their format) before any sample is read, then
    (``check_samples``) that some recognised lead has a finite sample: a record none of the 12
    leads can be drawn from is refused. Good records are listed in ``records``; bad ones become
    :class:`RecordError` in ``errors`` and are warned about (:class:`RecordWarning`).

    Raises:
        RecordError: if no usable record is found.
    """

    def __init__(
        self,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        fs: int = 500,
        duration_s: float = 10.0,
        offset_s: float | None = None,
        short: str = "pad",
        amplitude: str = "header",
        max_samples: int = 50_000_000,
        center: bool = True,
        check_samples: bool = True,
    ):
        super().__init__(fs, duration_s)
        self.center = center
        self.check_samples = check_samples
        if short not in ("pad", "skip"):
            raise ValueError(f"short must be 'pad' or 'skip', got {short!r}")
        if amplitude not in ("header", "digital_uv"):
            raise ValueError(f"amplitude must be 'header' or 'digital_uv', got {amplitude!r}")
        if offset_s is not None and not math.isfinite(offset_s):
            raise ValueError(f"offset_s must be finite or None, got {offset_s}")
        self.offset_s = offset_s
        self.short = short
        self.amplitude = amplitude
        self.max_samples = int(max_samples)
        self._label = self._make_label(paths)

        self.records: list[str] = []
        self.errors: list[RecordError] = []
        self._infos: list[_WfdbInfo] = []
        for path in _expand_paths(paths):
            try:
                info = self._scan(path)
            except Exception as exc:  # noqa: BLE001 - any header oddity makes a bad record
                err = (
                    exc
                    if isinstance(exc, RecordError)
                    else RecordError(path, f"invalid header ({type(exc).__name__}: {exc})")
                )
                self.errors.append(err)
                warnings.warn(f"{err} (record skipped)", RecordWarning, stacklevel=2)
                continue
            self._infos.append(info)
            self.records.append(path)
        if not self._infos:
            detail = "; ".join(e.problem if e.path == self._label else str(e) for e in self.errors)
            raise RecordError(
                self._label,
                f"no usable WFDB record ({len(self.errors)} bad)"
                + (f": {detail}" if detail else ""),
            )

    @staticmethod
    def _make_label(paths: Any) -> str:
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        items = [os.fspath(p) for p in items]
        if len(items) != 1:
            return f"{len(items)} WFDB paths"
        return items[0][: -len(".hea")] if items[0].endswith(".hea") else items[0]

    def _describe(self) -> str:
        return self._label

    def __len__(self) -> int:
        return len(self._infos)

    # -- header scan ----------------------------------------------------------------------

    def _needed_input_samples(self, fs_in: float) -> int:
        """Input samples (at ``fs_in``) that cover ``num_samples`` output samples."""
        up, down = _rational_ratio(self.fs, fs_in)
        return -(-self.num_samples * down // up)

    def _scan(self, path: str) -> _WfdbInfo:
        """Validate one header against its signal files without reading samples."""
        header_file = path + ".hea"
        try:
            header_size = os.path.getsize(header_file)
        except OSError:
            raise RecordError(path, "header file not found") from None
        if header_size > _MAX_HEADER_BYTES:
            raise RecordError(path, f"header file is {header_size} bytes, too large to be a header")
        try:
            header = wfdb.rdheader(path)
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad header
            raise RecordError(path, f"cannot parse header ({type(exc).__name__}: {exc})") from None
        if isinstance(header, wfdb.MultiRecord):
            raise RecordError(path, "multi-segment records are not supported")

        n_sig = header.n_sig or 0
        names = list(header.sig_name or [])
        files = list(header.file_name or [])
        if n_sig < 1 or len(names) != n_sig or len(files) != n_sig or None in files:
            raise RecordError(path, "header describes no signals")
        fs_in = header.fs
        if fs_in is None or not _MIN_FS <= float(fs_in) <= _MAX_FS:
            raise RecordError(
                path, f"sampling rate {fs_in} Hz outside the supported {_MIN_FS:g}-{_MAX_FS:g} Hz"
            )
        fs_in = float(fs_in)
        sig_len = header.sig_len
        if sig_len is None or int(sig_len) < 1:
            raise RecordError(path, "header gives no signal length")
        sig_len = int(sig_len)
        spf = [int(s or 1) for s in (header.samps_per_frame or [1] * n_sig)]
        claimed = n_sig * sig_len * max(spf)
        if claimed > self.max_samples:
            raise RecordError(
                path, f"header claims {claimed} samples, more than max_samples={self.max_samples}"
            )

        # leads to read: first channel of each recognised lead
        channels: list[int] = []
        leads: list[int] = []
        for ch, name in enumerate(names):
            lead = canonical_lead(name)
            if lead is not None and LEADS.index(lead) not in leads:
                channels.append(ch)
                leads.append(LEADS.index(lead))
        if not channels:
            raise RecordError(path, f"no recognised ECG lead among {names}")

        fmts = [str(f) if f is not None else "" for f in (header.fmt or [None] * n_sig)]
        offsets = list(header.byte_offset or [None] * n_sig)
        folder = os.path.dirname(path)
        for file_name in dict.fromkeys(files[ch] for ch in channels):
            in_file = [ch for ch in range(n_sig) if files[ch] == file_name]
            file_fmts = {fmts[ch] for ch in in_file}
            bad = sorted(f for f in file_fmts if f not in _BYTES_PER_SAMPLE)
            bad = [f for f in bad if f not in _COMPRESSED_FORMATS]
            if bad:
                raise RecordError(path, f"unsupported signal format {bad[0]!r} in {file_name}")
            full = os.path.join(folder, file_name)
            try:
                size = os.path.getsize(full)
            except OSError:
                raise RecordError(path, f"signal file {file_name} not found") from None
            if file_fmts & _COMPRESSED_FORMATS:
                continue  # FLAC: size not predictable from the header
            frame_bytes = sum(spf[ch] * _BYTES_PER_SAMPLE[fmts[ch]] for ch in in_file)
            data_bytes = math.ceil(sig_len * frame_bytes)
            # .mat (MATLAB v4) files carry a header of their own: compare the data part only
            offset = 0 if file_name.lower().endswith(".mat") else int(offsets[in_file[0]] or 0)
            if size < data_bytes + offset:
                raise RecordError(
                    path,
                    f"signal file {file_name} is {size} bytes, smaller than the "
                    f"{data_bytes + offset} bytes the header implies ({sig_len} samples x "
                    f"{len(in_file)} signals, format {'/'.join(sorted(file_fmts))})",
                )

        needed = self._needed_input_samples(fs_in)
        if self.short == "skip" and sig_len < needed:
            raise RecordError(
                path,
                f"record is {sig_len / fs_in:g} s, shorter than the required {needed / fs_in:g} s",
            )

        if self.check_samples:
            _check_drawable(path, sig_len, channels, [names[ch] for ch in channels], n_sig)

        units = list(header.units or [None] * n_sig)
        scales: list[float] = []
        odd_units: list[str] = []
        for ch in channels:
            scale = _unit_scale(units[ch])
            if scale is None:
                odd_units.append(f"{names[ch]}={units[ch]!r}")
                scale = 1.0
            scales.append(scale)
        if odd_units and self.amplitude == "header":
            warnings.warn(
                f"{path}: unknown units ({', '.join(odd_units)}), assuming mV",
                RecordWarning,
                stacklevel=3,
            )
        baseline = list(header.baseline or [None] * n_sig)
        adc_zero = list(header.adc_zero or [None] * n_sig)
        baselines = tuple(
            int(baseline[ch] if baseline[ch] is not None else (adc_zero[ch] or 0))
            for ch in channels
        )
        return _WfdbInfo(
            path=path,
            name=os.path.basename(path),
            fs=fs_in,
            sig_len=sig_len,
            channels=tuple(channels),
            leads=tuple(leads),
            scales=tuple(scales),
            baselines=baselines,
            invalid=tuple(_INVALID_DIGITAL.get(fmts[ch]) for ch in channels),
        )

    # -- loading --------------------------------------------------------------------------

    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        """Read record ``index``'s window (start drawn by ``rng`` unless ``offset_s`` is set).

        Returns:
            :class:`ECGRecord` with float32 ``[12, num_samples]`` mV at ``fs``;
            ``start_sample`` is at the record's own sampling rate.

        Raises:
            RecordError: for any problem reading or converting the record.
        """
        info = self._infos[index]
        try:
            return self._load(info, rng)
        except RecordError:
            raise
        except Exception as exc:  # noqa: BLE001 - report any reader failure as a bad record
            raise RecordError(
                info.path, f"cannot read samples ({type(exc).__name__}: {exc})"
            ) from None

    def _load(self, info: _WfdbInfo, rng: np.random.Generator) -> ECGRecord:
        up, down = _rational_ratio(self.fs, info.fs)
        needed = self._needed_input_samples(info.fs)
        if info.sig_len < needed and self.short == "skip":
            raise RecordError(
                info.path,
                f"record is {info.sig_len / info.fs:g} s, shorter than the required "
                f"{needed / info.fs:g} s",
            )
        offset = None if self.offset_s is None else int(round(self.offset_s * info.fs))
        start = _window_start(info.sig_len, needed, offset, rng)

        # read a margin on each side so the resampling filter sees real signal at the edges;
        # the left margin is a multiple of `down` so the output grid stays aligned
        left = right = 0
        if (up, down) != (1, 1):
            margin = -(-(math.ceil(10 * max(up, down) / up) + 2) // down) * down
            left = min(start, margin) // down * down
            right = max(0, min(margin, info.sig_len - (start + needed)))
        sampfrom = start - left
        sampto = min(info.sig_len, start + needed + right)

        physical = self.amplitude == "header"
        rec = wfdb.rdrecord(
            info.path,
            sampfrom=sampfrom,
            sampto=sampto,
            channels=list(info.channels),
            physical=physical,
        )
        if physical:
            data = np.asarray(rec.p_signal, dtype=np.float64)
            data = data * np.asarray(info.scales)[None, :]
        else:
            data = np.asarray(rec.d_signal, dtype=np.float64)
            for j, bad in enumerate(info.invalid):
                if bad is not None:
                    data[np.asarray(rec.d_signal)[:, j] == bad, j] = np.nan
            data = (data - np.asarray(info.baselines, dtype=np.float64)[None, :]) / 1000.0
        if data.shape != (sampto - sampfrom, len(info.channels)):
            raise RecordError(
                info.path,
                f"read {data.shape[0]} x {data.shape[1]} samples, expected "
                f"{sampto - sampfrom} x {len(info.channels)}",
            )

        full = np.full((NUM_LEADS, data.shape[0]), np.nan)
        present = [False] * NUM_LEADS
        for j, lead in enumerate(info.leads):
            full[lead] = data[:, j]
            present[lead] = True
        derive_limb_leads(full, present)

        if (up, down) != (1, 1):
            full = _resample_nan(full, up, down)
            full = full[:, left * up // down :]
        out = _pad_or_crop(full, self.num_samples).astype(np.float32)
        if not np.isfinite(out).any():
            raise RecordError(info.path, "no finite sample in the window")
        if self.center:
            finite = np.isfinite(out).any(axis=1)
            out[finite] -= np.nanmedian(out[finite], axis=1, keepdims=True)
        return ECGRecord(out, float(self.fs), info.name, info.path, int(start))


# --------------------------------------------------------------------------------------------
# synthetic, arrays, mixtures
# --------------------------------------------------------------------------------------------

# Target peak-to-peak size (mV) of the simulated leads kept from neurokit2 (before the
# per-record and per-lead random factors); roughly the medians of the CinC 2021 records.
_SYNTH_TARGET_PTP_MV: dict[str, float] = {
    "I": 1.0,
    "II": 1.2,
    "V1": 1.4,
    "V2": 2.0,
    "V3": 2.1,
    "V4": 2.0,
    "V5": 1.7,
    "V6": 1.4,
}
_SYNTH_TRANSIENT_S = 2.0  # ECGSYN settles from its initial state within ~1-2 s
_SYNTH_SLACK_S = 2.0  # extra simulated time so windows can move
_SYNTH_ATTEMPTS = 4  # simulations tried per record when glitches are detected
_SYNTH_MAX_IRREGULARITY = 0.3  # see _beat_irregularity


def _beat_irregularity(x: np.ndarray, fs: float) -> float:
    """How much the worst beat of any lead departs from that lead's median beat.

    ECGSYN (neurokit2) integrates each lead with an adaptive ODE solver that now and then
    steps across a narrow QRS Gaussian: that beat is malformed and the baseline jumps, then
    relaxes over ~1 s. Beats are found from the summed absolute slope of all leads, each
    R-to-R interval is resampled to 200 points (ECGSYN shapes are defined in phase), and the
    largest absolute deviation from the median beat is returned, per lead relative to its
    peak-to-peak span (clean records: about 0.05-0.25; glitches: about 0.25-0.9).

    Args:
        x: ``[L, T]`` leads (any unit), finite.
        fs: sampling rate (Hz).

    Returns:
        The deviation (dimensionless); 0.0 when fewer than four beats are found.
    """
    from scipy.signal import find_peaks

    x = np.asarray(x, dtype=np.float64)
    x = x / np.maximum(np.ptp(x, axis=1, keepdims=True), 1e-9)
    slope = np.abs(np.diff(x, axis=1)).sum(axis=0)
    peaks, _ = find_peaks(
        slope, distance=max(1, int(0.25 * fs)), height=0.4 * np.percentile(slope, 99.5)
    )
    if peaks.size < 4:
        return 0.0
    grid = np.linspace(0.0, 1.0, 200, endpoint=False)
    t = np.arange(x.shape[1])
    beats = np.stack(
        [
            np.stack([np.interp(a + grid * (b - a), t, lead) for lead in x])
            for a, b in zip(peaks[:-1], peaks[1:])
        ],
        axis=1,
    )  # [L, beats, 200]
    median = np.median(beats, axis=1, keepdims=True)
    return float(np.abs(beats - median).max())


class SyntheticSource(SignalSource):
    """Simulated 12-lead ECGs (neurokit2 ``ecg_simulate(method="multileads")``, ECGSYN).

    Record ``k`` uses ``rng_k = default_rng(SeedSequence([seed, k]))``: it draws the heart
    rate (uniform in ``heart_rate``, bpm), an overall amplitude factor (0.7-1.3) and per-lead
    factors (0.85-1.15), then seeds the simulation. Each record is simulated once, lazily
    (about 1-3 s each), and cached in memory; :meth:`warm` simulates all of them.
    Same ``seed`` -> same records.

    Units: neurokit2 min-max normalises every simulated lead on its own to span exactly
    -0.4 ... 1.2 (nominally mV, 1.6 mV peak-to-peak), so amplitudes are identical across leads,
    baselines sit at arbitrary levels, and the limb leads do not obey Einthoven's law. Its lead
    II is dominated by the T wave (QRS about a fifth of the span). We therefore drop the first
    2 s (start-up transient), subtract each lead's median (the isoelectric level), rescale
    I, II, V1-V6 to realistic peak-to-peak sizes (about 1-2 mV, ``_SYNTH_TARGET_PTP_MV``) and
    recompute III, aVR, aVL, aVF from I and II so the limb leads are consistent.
    No noise is added (``noise=0``).

    Glitches: neurokit2's adaptive ODE solver sometimes steps over a QRS in one lead (in about
    half of 10-s simulations some lead has a malformed beat followed by a baseline jump that
    relaxes over ~1 s). A simulation whose beats are inconsistent (:func:`_beat_irregularity`)
    is redone with ``SeedSequence([seed, k, attempt])``, up to ``_SYNTH_ATTEMPTS`` times,
    keeping the most regular one. Small glitches can still slip through; they are drawn
    faithfully (the ground truth is the same signal), they only look less physiological.

    Args:
        num_records: number of distinct simulated records.
        seed: base seed.
        fs: sampling rate (Hz) of the simulation and of the output.
        duration_s: output window (s); ``duration_s + 2`` s are kept so windows can move.
        heart_rate: ``(low, high)`` bpm range of the per-record heart rate.
    """

    def __init__(
        self,
        num_records: int = 8,
        seed: int = 0,
        fs: int = 500,
        duration_s: float = 10.0,
        heart_rate: tuple[float, float] = (50.0, 110.0),
    ):
        super().__init__(fs, duration_s)
        if num_records < 1:
            raise ValueError(f"num_records must be at least 1, got {num_records}")
        lo, hi = (float(v) for v in heart_rate)
        if not 20.0 <= lo <= hi <= 250.0:
            raise ValueError(f"heart_rate must be a (low, high) range in 20-250 bpm: {heart_rate}")
        self.num_records = int(num_records)
        self.seed = int(seed)
        self.heart_rate = (lo, hi)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.num_records

    def _describe(self) -> str:
        return f"SyntheticSource(seed={self.seed})"

    def _name(self, k: int) -> str:
        return f"SYN{self.seed}-{k:03d}"

    def warm(self) -> None:
        """Simulate (and cache) every record now."""
        for k in range(self.num_records):
            self._get(k)

    def _get(self, k: int) -> np.ndarray:
        if not 0 <= k < self.num_records:
            raise IndexError(f"record {k} out of range 0..{self.num_records - 1}")
        if k not in self._cache:
            self._cache[k] = self._simulate(k)
        return self._cache[k]

    def _simulate(self, k: int) -> np.ndarray:
        """Simulate record ``k``: float32 ``[12, num_samples + 2 s]`` in mV.

        The first attempt uses ``SeedSequence([seed, k])``; if its beats are inconsistent
        (:func:`_beat_irregularity` above ``_SYNTH_MAX_IRREGULARITY``, i.e. an ECGSYN solver
        glitch), attempt ``a`` uses ``SeedSequence([seed, k, a])``, keeping the most regular.
        """
        kept = [LEADS.index(lead) for lead in _SYNTH_TARGET_PTP_MV]
        best: tuple[float, np.ndarray] | None = None
        for attempt in range(_SYNTH_ATTEMPTS):
            entropy = [self.seed, k] if attempt == 0 else [self.seed, k, attempt]
            sig = self._simulate_once(k, np.random.default_rng(np.random.SeedSequence(entropy)))
            score = _beat_irregularity(sig[kept], self.fs)
            if best is None or score < best[0]:
                best = (score, sig)
            if score <= _SYNTH_MAX_IRREGULARITY:
                break
        assert best is not None
        return best[1]

    def _simulate_once(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """One neurokit2 simulation, cleaned and rescaled (see the class docstring)."""
        import neurokit2 as nk

        hr = float(rng.uniform(*self.heart_rate))
        overall = float(rng.uniform(0.7, 1.3))
        per_lead = rng.uniform(0.85, 1.15, size=len(_SYNTH_TARGET_PTP_MV))
        skip = int(round(_SYNTH_TRANSIENT_S * self.fs))
        keep = self.num_samples + int(round(_SYNTH_SLACK_S * self.fs))
        duration = (skip + keep) / self.fs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = nk.ecg_simulate(
                duration=duration,
                sampling_rate=self.fs,
                noise=0.0,
                heart_rate=hr,
                method="multileads",
                random_state=rng,
            )
        raw = np.full((NUM_LEADS, skip + keep), np.nan)
        for lead in LEADS:
            col = np.asarray(frame[lead], dtype=np.float64)[: skip + keep]
            raw[LEADS.index(lead), : col.size] = col
        raw = raw[:, skip:]
        n_ok = int(np.isfinite(raw).all(axis=0).sum())
        if n_ok < self.num_samples:
            raise RecordError(self._name(k), f"simulation returned only {n_ok} usable samples")
        raw = raw[:, :n_ok]
        out = np.full_like(raw, np.nan)
        present = [False] * NUM_LEADS
        for (lead, target), factor in zip(_SYNTH_TARGET_PTP_MV.items(), per_lead):
            i = LEADS.index(lead)
            x = raw[i] - np.median(raw[i])
            span = float(np.percentile(x, 99.9) - np.percentile(x, 0.1))
            out[i] = x * (target * overall * factor / max(span, 1e-6))
            present[i] = True
        derive_limb_leads(out, present)
        return out.astype(np.float32)

    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        """Window of simulated record ``index`` (start drawn uniformly by ``rng``)."""
        sig = self._get(index)
        start = _window_start(sig.shape[1], self.num_samples, None, rng)
        window = sig[:, start : start + self.num_samples].copy()
        return ECGRecord(window, float(self.fs), self._name(index), "", start)


class ArraySource(SignalSource):
    """Records held in memory, already in mV at ``fs``.

    Args:
        signals: float array ``[N, 12, T]`` or a sequence of ``[12, T_i]`` arrays (mV, lead
            order :data:`LEADS`, NaN allowed). Kept as float32 (copied only if needed).
        fs: sampling rate of the arrays (Hz); also the output rate (no resampling).
        names: one name per record (default ``"array0000"``...).
        duration_s: output window (s).
        offset_s: fixed window start (s, clipped) or ``None`` for a random start per load.

    An array with no finite sample is listed in ``errors``, warned about
    (:class:`RecordWarning`) and never drawn by :meth:`sample`.
    """

    def __init__(
        self,
        signals: np.ndarray | Sequence[np.ndarray],
        fs: int,
        names: Sequence[str] | None = None,
        duration_s: float = 10.0,
        offset_s: float | None = None,
    ):
        super().__init__(fs, duration_s)
        arrays = [np.asarray(s, dtype=np.float32) for s in signals]
        if not arrays:
            raise ValueError("ArraySource needs at least one signal")
        for i, a in enumerate(arrays):
            if a.ndim != 2 or a.shape[0] != NUM_LEADS or a.shape[1] < 1:
                raise ValueError(f"signal {i} must be [12, T] with T >= 1, got {a.shape}")
        if names is None:
            names = [f"array{i:04d}" for i in range(len(arrays))]
        names = [str(n) for n in names]
        if len(names) != len(arrays):
            raise ValueError(f"{len(names)} names for {len(arrays)} signals")
        self.signals = arrays
        self.names = names
        self.offset_s = offset_s
        self.errors: list[RecordError] = []
        for i, (a, name) in enumerate(zip(arrays, names)):
            if not np.isfinite(a).any():
                err = RecordError(name, "all samples are NaN: nothing to draw")
                self.errors.append(err)
                self._bad.add(i)
                warnings.warn(f"{err} (record skipped)", RecordWarning, stacklevel=2)

    def __len__(self) -> int:
        return len(self.signals)

    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        """Window of array ``index``; padded with NaN if the array is shorter."""
        sig = self.signals[index]
        offset = None if self.offset_s is None else int(round(self.offset_s * self.fs))
        start = _window_start(sig.shape[1], self.num_samples, offset, rng)
        window = _pad_or_crop(sig[:, start : start + self.num_samples], self.num_samples).copy()
        if not np.isfinite(window).any():
            raise RecordError(self.names[index], "no finite sample in the window")
        return ECGRecord(window, float(self.fs), self.names[index], "", start)


class LowpassSource(SignalSource):
    """Another source seen through an ECG cart's display filter: a zero-phase Butterworth
    low-pass (the "0.05-40 Hz" of a printout's footer), so that the page shows what a cart
    prints and the ground truth is that same filtered signal.

    Args:
        source: the records to filter (its ``fs`` and ``num_samples`` are kept).
        cutoff_hz: -3 dB frequency of the low-pass (40, 100 and 150 Hz are common settings).
        order: filter order (applied forwards and backwards, so the effective order doubles).

    Each finite stretch of a lead is filtered on its own; stretches too short for the filter
    are kept unfiltered, NaN stays NaN.
    """

    def __init__(self, source: SignalSource, cutoff_hz: float = 40.0, order: int = 4):
        super().__init__(source.fs, source.duration_s)
        self.num_samples = source.num_samples
        if not 0 < cutoff_hz < source.fs / 2:
            raise ValueError(f"cutoff_hz must be in (0, {source.fs / 2}) Hz, got {cutoff_hz}")
        self.source = source
        self.cutoff_hz = float(cutoff_hz)
        self._sos = butter(order, cutoff_hz, fs=source.fs, output="sos")

    def __len__(self) -> int:
        return len(self.source)

    @property
    def bad_indices(self) -> frozenset[int]:
        return self.source.bad_indices

    def _describe(self) -> str:
        return f"{self.source._describe()} low-passed at {self.cutoff_hz:g} Hz"

    def warm(self) -> None:
        self.source.warm()

    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        return self._filtered(self.source.load(index, rng))

    def sample(self, rng: np.random.Generator) -> ECGRecord:
        """Draw as the wrapped source does (its weights and bad-record handling), then filter."""
        return self._filtered(self.source.sample(rng))

    def _filtered(self, record: ECGRecord) -> ECGRecord:
        x = lowpass(record.signal, self.fs, self.cutoff_hz, self._sos)
        return ECGRecord(x, record.fs, record.name, record.path, record.start_sample)


def lowpass(signal: np.ndarray, fs: float, cutoff_hz: float, sos: np.ndarray | None = None,
            order: int = 4) -> np.ndarray:  # fmt: skip
    """Zero-phase Butterworth low-pass of ``signal`` ``[..., T]`` (float32 out), each finite
    stretch on its own; stretches too short for the filter and NaN are kept as they are."""
    if sos is None:
        sos = butter(order, cutoff_hz, fs=fs, output="sos")
    x = np.array(signal, dtype=np.float64)
    pad = 3 * (2 * len(sos) + 1)  # sosfiltfilt's default edge padding
    for lead in x.reshape(-1, x.shape[-1]):
        finite = np.isfinite(lead)
        edges = np.flatnonzero(np.diff(np.r_[0, finite.astype(np.int8), 0]))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a > pad:
                lead[a:b] = sosfiltfilt(sos, lead[a:b])
    return x.astype(np.float32)


class MixedSource(SignalSource):
    """Several sources as one: indices are concatenated, :meth:`sample` draws by weight.

    Args:
        sources: sub-sources, all with the same ``fs`` and ``num_samples``.
        weights: non-negative sampling weight per sub-source (normalised); default
            proportional to the sub-sources' lengths (uniform over all records).

    Raises:
        ValueError: on mismatched ``fs``/``num_samples`` or invalid weights.
    """

    def __init__(self, sources: Sequence[SignalSource], weights: Sequence[float] | None = None):
        sources = list(sources)
        if not sources:
            raise ValueError("MixedSource needs at least one source")
        fs, num_samples = sources[0].fs, sources[0].num_samples
        for s in sources[1:]:
            if s.fs != fs or s.num_samples != num_samples:
                raise ValueError(
                    f"all sources must share fs and num_samples: {fs} Hz x {num_samples} vs "
                    f"{s.fs} Hz x {s.num_samples} ({type(s).__name__})"
                )
        super().__init__(fs, num_samples / fs)
        self.num_samples = num_samples
        w = np.asarray(
            [len(s) for s in sources] if weights is None else list(weights), dtype=np.float64
        )
        if w.shape != (len(sources),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {len(sources)} non-negative numbers with a positive sum"
            )
        self.sources = sources
        self.weights = w / w.sum()
        self._ends = np.cumsum([len(s) for s in sources])
        self._exhausted: set[int] = set()

    def __len__(self) -> int:
        return int(self._ends[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self._ends, index, side="right"))
        start = 0 if k == 0 else int(self._ends[k - 1])
        return k, index - start

    def warm(self) -> None:
        """Warm every sub-source."""
        for source in self.sources:
            source.warm()

    def load(self, index: int, rng: np.random.Generator) -> ECGRecord:
        """Load global ``index`` from the sub-source it falls in."""
        k, local = self._locate(index)
        return self.sources[k].load(local, rng)

    def sample(self, rng: np.random.Generator) -> ECGRecord:
        """Pick a sub-source by weight, then let it sample; fully bad sub-sources are dropped."""
        while True:
            w = self.weights.copy()
            w[list(self._exhausted)] = 0.0
            if w.sum() <= 0:
                raise RecordError("MixedSource", "every sub-source with weight > 0 failed")
            k = int(rng.choice(len(w), p=w / w.sum()))
            try:
                return self.sources[k].sample(rng)
            except RecordError as err:
                self._exhausted.add(k)
                warnings.warn(f"{err} (sub-source dropped)", RecordWarning, stacklevel=2)


# --------------------------------------------------------------------------------------------
# defaults
# --------------------------------------------------------------------------------------------


def embedded_records_dir() -> Path:
    """Folder of the WFDB records shipped with the package (CinC 2021, CC BY 4.0)."""
    return Path(__file__).parent / "data" / "records"


def default_source(
    fs: int = 500, duration_s: float = 10.0, synthetic: bool = True, seed: int = 0
) -> SignalSource:
    """The embedded records, mixed 3:1 with a :class:`SyntheticSource` when ``synthetic``.

    The synthetic records are simulated on :meth:`SignalSource.warm` (the datasets call it
    before their first page, ~2 s per record) or lazily on first use.
    """
    real = WfdbSource(embedded_records_dir(), fs=fs, duration_s=duration_s)
    if not synthetic:
        return real
    synth = SyntheticSource(seed=seed, fs=fs, duration_s=duration_s)
    return MixedSource([real, synth], weights=[3.0, 1.0])
