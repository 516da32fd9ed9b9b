"""Per-lead confidence: how each lead was found, turned into one number in [0, 1].

A lead's confidence is the product of independent factors, each 1 when that part of the
reading was measured on the page and lower when it was assumed:

==============  =========================================================================
factor          values
==============  =========================================================================
coverage        fraction of the lead's time window where the row's trace was followed
calibration     1 the row's own pulse, 0.9 another row's pulse, 0.75 the grid at the
                nominal gain, 0.5 no grid either (page size assumed)
timing          1 the row's length agrees with the grid (or a pulse edge places it),
                0.75 the row is not ``page_seconds`` long and the grid placed it
layout          1 a standard layout, 0.6 a near one (missing rows), 0.5 the closest
                layout to rows that match none
amplitude       1 a plausible ECG lead, 0.3 flat (< 0.02 mV peak to peak: a line, not a
                trace) or beyond 12 mV
==============  =========================================================================

Leads under :data:`CONFIDENCE_THRESHOLD` are written as NaN unless asked otherwise: a lead
read wrong scores below 0 dB in the Challenge's SNR, one left out scores 0 dB, so a doubtful
lead costs more when kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE_THRESHOLD = 0.5

CALIBRATION = {"pulse": 1.0, "page-pulse": 0.9, "grid": 0.75, "page-size": 0.5}
TIMING = {"length": 1.0, "pulse-edge": 1.0, "grid": 0.75}
LAYOUT = {"standard": 1.0, "near": 0.6, "closest": 0.5}
FLAT_MV, HUGE_MV = 0.02, 12.0


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
    written: bool = False  # False: left NaN (not found, or under the threshold)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["confidence"] = round(float(self.confidence), 3)
        d["coverage"] = round(float(self.coverage), 3)
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


def lead_confidence(report: LeadReport) -> float:
    """The product of the factors in the module docstring."""
    if report.row is None:
        return 0.0
    c = float(np.clip(report.coverage, 0.0, 1.0))
    c *= CALIBRATION.get(report.calibration or "", 0.5)
    c *= TIMING.get(report.timing or "", 0.75)
    c *= LAYOUT.get(report.layout or "", 0.5)
    c *= 1.0 if report.amplitude == "ok" else 0.3
    return float(np.clip(c, 0.0, 1.0))
