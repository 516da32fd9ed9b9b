"""Per-lead confidence: how each lead was found, turned into one number in [0, 1].

A lead's confidence is the product of independent factors, each 1 when that part of the
reading was measured on the page and lower when it was assumed:

==============  =========================================================================
factor          values
==============  =========================================================================
coverage        fraction of the lead's time window where the row's trace was followed, less
                the samples left out as contradicted (:func:`einthoven_junk`)
calibration     1 the row's own pulse, 0.9 another row's pulse or the grid at the nominal
                gain, 0.8 no grid but the rows' length agrees with the page's size, 0.5
                no grid either (page size assumed)
timing          1 the row's length agrees with the grid (or a pulse edge places it, or each
                panel, set apart from the others, has its own two ends at the grid's scale),
                0.75 the row is not ``page_seconds`` long and the grid placed it, 0.5
                it is longer (ink beyond the trace at an end not known)
layout          1 a standard layout, 0.6 a near one (missing rows), 0.5 the closest
                layout to rows that match none
amplitude       1 a plausible ECG lead, 0.3 flat (< 0.02 mV peak to peak: a line, not a
                trace) or beyond 12 mV
physics         limb leads: 1 when ``II = I + III`` (or ``aVR + aVL + aVF = 0``) holds over
                the time the page shows all three (the contradicted moments left out), down
                to 0.3 when the residual reaches :data:`REL_BAD` of the leads' RMS; the
                chest leads get the mean of the limb factors (a page misread in its limb
                leads is misread elsewhere too)
==============  =========================================================================

Leads under :data:`CONFIDENCE_THRESHOLD` are written as NaN unless asked otherwise: a lead
read wrong scores below 0 dB in the Challenge's SNR, one left out scores 0 dB, so a doubtful
lead costs more when kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .vectorize import true_runs

CONFIDENCE_THRESHOLD = 0.5

# grid 0.9: on ecgsynth's pages in random conventions (scripts/calibrate_confidence.py), leads
# of a standard layout calibrated on the grid score 9-11 dB on average (80 % above 0 dB)
# row-length 0.8: no grid, but the rows' length and the page's size give one scale
CALIBRATION = {"pulse": 1.0, "page-pulse": 0.9, "grid": 0.9, "row-length": 0.8, "page-size": 0.5}
TIMING = {"length": 1.0, "pulse-edge": 1.0, "panels": 1.0, "grid": 0.75, "long": 0.5}
LAYOUT = {"standard": 1.0, "near": 0.6, "closest": 0.5}
FLAT_MV, HUGE_MV = 0.02, 12.0
# Einthoven residual / lead RMS (einthoven_residuals): the factor is 1 up to REL_OK and 0.3
# from REL_BAD. On ecgsynth's pages in random conventions (scripts/calibrate_confidence.py),
# leads of trios with a residual under 0.8 score above 0 dB almost always, over 1.2 mostly
# below: a misread lead carries the error alone, not shared by the three.
REL_OK, REL_BAD = 0.5, 1.5
# the relations every record obeys at every instant: leads and the signs that sum them to 0
LIMB_TRIOS = ((("I", "II", "III"), (1.0, -1.0, 1.0)), (("aVR", "aVL", "aVF"), (1.0, 1.0, 1.0)))
# a moment (1/50th of the record: 0.2 s of a 10-s page) where the residual's RMS is over
# JUNK_REL times the leads' RMS is ink that is no lead (a crease, a label, a pulse stroke): the
# three leads are left out there (einthoven_junk)
JUNK_WINDOWS, JUNK_REL = 50, 2.5
FILL_AGREE_MV = 0.2  # two panels of one lead that differ more where they meet read different ink


@dataclass
class LeadReport:
    """How one lead was read (the fields of ``STEM.json``'s ``leads`` entries)."""

    name: str
    confidence: float = 0.0
    row: int | None = None  # row index on the page, top to bottom
    panel: int | None = None  # panel index within the row, left to right
    coverage: float = 0.0
    calibration: str | None = None
    timing: str | None = None
    layout: str | None = None
    amplitude: str | None = None
    physics: float = 1.0
    written: bool = False  # False: left NaN (not found, or under the threshold)
    contradicted: int = 0  # samples left out (NaN) where the limb leads contradict each other

    def to_dict(self) -> dict:
        d = asdict(self)
        d["confidence"] = round(float(self.confidence), 3)
        d["coverage"] = round(float(self.coverage), 3)
        d["physics"] = round(float(self.physics), 3)
        return d


def amplitude_check(values: np.ndarray) -> str:
    """``"ok"``, ``"flat"`` or ``"huge"`` for a lead's values ``[T]`` (mV, NaN allowed)."""
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return "flat"
    p2p = float(np.percentile(v, 99.5) - np.percentile(v, 0.5))
    if p2p < FLAT_MV:
        return "flat"
    return "huge" if p2p > HUGE_MV else "ok"


def einthoven_residuals(signal: np.ndarray, leads: tuple[str, ...]) -> dict[str, float]:
    """Per limb lead, how far the physics every 12-lead record obeys fails on ``signal``
    ``[12, T]`` mV: ``II = I + III`` and ``aVR + aVL + aVF = 0`` at every instant. Where a page
    shows the three leads of a relation over the same time (a 3x4 column, a 6x2 column, a 12x1
    page), the residual's RMS over the mean RMS of the three (near 0: all three read right;
    large: at least one was not: another row's trace, a grid line, the wrong layout). Each
    lead's median is removed first: the DC level is what a page without pulses cannot show.
    Leads of a relation shown together over fewer than 100 samples get no value."""
    out: dict[str, float] = {}
    for rows, _, res, scale in _limb_residuals(signal, leads):
        for i in rows:
            out[leads[i]] = float(np.sqrt(np.mean(res**2)) / scale)
    return out


def einthoven_junk(signal: np.ndarray, leads: tuple[str, ...]) -> np.ndarray:
    """``bool [12, T]``: the moments where a relation of :func:`einthoven_residuals` fails by
    over :data:`JUNK_REL` times its leads' RMS, for its three leads. Over a window of
    1/:data:`JUNK_WINDOWS` of the record, three leads read right agree to a fraction of their
    RMS; a residual several times their RMS is a stroke that belongs to none of them (a
    crease, a label, a pulse read as trace) in at least one, which one is not known."""
    junk = np.zeros(signal.shape, dtype=bool)
    window = max(1, signal.shape[1] // JUNK_WINDOWS)
    for rows, cols, res, scale in _limb_residuals(signal, leads):
        for part in np.array_split(np.arange(len(res)), max(1, len(res) // window)):
            if np.sqrt(np.mean(res[part] ** 2)) > JUNK_REL * scale:
                junk[np.ix_(rows, cols[part])] = True
    return junk


def _limb_residuals(signal: np.ndarray, leads: tuple[str, ...]
                    ) -> list[tuple[list[int], np.ndarray, np.ndarray, float]]:  # fmt: skip
    """Per relation of :data:`LIMB_TRIOS` shown together over at least 100 samples: its three
    rows of ``signal`` ``[12, T]``, those samples' columns ``[N]``, the residual ``[N]`` (each
    lead's median removed) and the leads' mean RMS (at least 1 uV)."""
    idx = {name: i for i, name in enumerate(leads)}
    out = []
    for trio, signs in LIMB_TRIOS:
        rows = [idx[n] for n in trio]
        ok = np.isfinite(signal[rows]).all(axis=0)
        if ok.sum() < 100:
            continue
        x = signal[rows][:, ok].astype(np.float64)
        x -= np.median(x, axis=1, keepdims=True)
        res = (np.asarray(signs)[:, None] * x).sum(axis=0)
        scale = max(float(np.mean(np.sqrt(np.mean(x**2, axis=1)))), 1e-3)
        out.append((rows, np.flatnonzero(ok), res, scale))
    return out


def einthoven_agreement(signal: np.ndarray, leads: tuple[str, ...]) -> dict[str, float]:
    """A factor in [0.3, 1] per limb lead from :func:`einthoven_residuals`: 1 up to
    :data:`REL_OK`, falling linearly to 0.3 at :data:`REL_BAD`."""
    return {
        name: float(np.clip(1.0 - 0.7 * (rel - REL_OK) / (REL_BAD - REL_OK), 0.3, 1.0))
        for name, rel in einthoven_residuals(signal, leads).items()
    }


def lead_confidence(report: LeadReport) -> float:
    """The product of the factors in the module docstring."""
    if report.row is None:
        return 0.0
    c = float(np.clip(report.coverage, 0.0, 1.0))
    c *= CALIBRATION.get(report.calibration or "", 0.5)
    c *= TIMING.get(report.timing or "", 0.75)
    c *= LAYOUT.get(report.layout or "", 0.5)
    c *= 1.0 if report.amplitude == "ok" else 0.3
    c *= report.physics
    return float(np.clip(c, 0.0, 1.0))


def finish_reports(signal: np.ndarray, reports: list[LeadReport], leads: tuple[str, ...],
                   drop_contradictions: bool = True) -> None:  # fmt: skip
    """Leave out the moments where the limb leads contradict each other far beyond their size
    (:func:`einthoven_junk`, NaN in ``signal``), add the physics factor of what remains
    (:func:`einthoven_agreement`) to ``reports`` and compute every found lead's confidence,
    in place. ``signal`` ``[12, T]`` mV, ``reports`` in lead order. ``drop_contradictions``
    False keeps every sample (leads read exactly from a PDF's paths)."""
    junk = einthoven_junk(signal, leads) if drop_contradictions else np.zeros(signal.shape, bool)
    shown = np.maximum(np.isfinite(signal).sum(axis=1), 1)
    signal[junk] = np.nan
    physics = einthoven_agreement(signal, leads)
    chest = float(np.mean(list(physics.values()))) if physics else 1.0
    for i, r in enumerate(reports):
        if r.row is None:
            continue
        r.contradicted = int(junk[i].sum())
        r.coverage *= 1.0 - r.contradicted / shown[i]  # what was left out was not followed
        r.physics = physics.get(r.name, chest if r.name.startswith("V") else 1.0)
        r.confidence = lead_confidence(r)


Candidate = tuple[float, np.ndarray, LeadReport]  # (seconds shown, values [T] mV, report)


def _fill_gaps(row: np.ndarray, values: np.ndarray) -> None:
    """Fill the NaN stretches of ``row`` ``[T]`` from ``values`` ``[T]`` (another panel of the
    same lead), in place, except a stretch where the two disagree by over
    :data:`FILL_AGREE_MV` on a sample beside it that both show: there the other panel read
    something else (a label at its row's start), not the lead."""
    both = np.isfinite(row) & np.isfinite(values)
    for a, b in true_runs(~np.isfinite(row) & np.isfinite(values)):
        beside = [k for k in (a - 1, b + 1) if 0 <= k < len(row) and both[k]]
        if any(abs(row[k] - values[k]) > FILL_AGREE_MV for k in beside):
            continue
        row[a : b + 1] = values[a : b + 1]


def merge_panels(found: dict[str, list[Candidate]], leads: tuple[str, ...], num_samples: int,
                 drop_contradictions: bool = True
                 ) -> tuple[np.ndarray, list[LeadReport]]:  # fmt: skip
    """One record ``float32 [12, num_samples]`` from every panel that showed a lead: longer
    panels first, shorter ones fill what they leave NaN (lead II's short panel under its rhythm
    strip); the longest panel's report speaks for the lead. Reports are finished
    (:func:`finish_reports`, ``drop_contradictions`` passed on) and say which leads were
    written."""
    out = np.full((len(leads), num_samples), np.nan, dtype=np.float32)
    reports = [LeadReport(name) for name in leads]
    for i, name in enumerate(leads):
        for j, (_, values, report) in enumerate(sorted(found[name], key=lambda kv: -kv[0])):
            _fill_gaps(out[i], values)
            if j == 0:
                reports[i] = report
    finish_reports(out, reports, leads, drop_contradictions)
    for report, row in zip(reports, out):
        report.written = bool(np.isfinite(row).any())
    return out, reports
