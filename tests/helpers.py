"""Shared test helpers: deterministic ECG-like signals and the SNR formula."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FS = 500


def ecg_like(batch: int, seed: int = 0, fs: int = FS, seconds: float = 10.0) -> np.ndarray:
    """Deterministic ECG-shaped test signals ``[batch, 12, T]`` in mV: slow wave + sharp QRS."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs)) / fs
    out = np.zeros((batch, 12, t.size), np.float32)
    for b in range(batch):
        rr = rng.uniform(0.6, 1.1)
        for lead in range(12):
            amp = rng.uniform(-1.8, 1.8)
            beat = np.mod(t - rng.uniform(0, rr), rr)
            qrs = amp * np.exp(-0.5 * ((beat - 0.2) / 0.012) ** 2)
            twave = 0.3 * amp * np.exp(-0.5 * ((beat - 0.45) / 0.05) ** 2)
            wander = 0.1 * np.sin(2 * np.pi * 0.3 * t + lead)
            out[b, lead] = qrs + twave + wander
    return out


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    ok = np.isfinite(ref) & np.isfinite(est)
    return float(10 * np.log10(np.mean(ref[ok] ** 2) / np.mean((ref[ok] - est[ok]) ** 2)))


def shared_data() -> Path:
    """The shared real-data folder: ``$ECGSYNTH_SHARED_DATA``, else ``shared/data`` beside the
    repository (where CI puts it), else ``/work/shared/data``. Tests that need it skip without."""
    candidates = [
        os.environ.get("ECGSYNTH_SHARED_DATA", ""),
        Path(__file__).resolve().parents[2] / "shared" / "data",
        "/work/shared/data",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return Path(candidates[1])
