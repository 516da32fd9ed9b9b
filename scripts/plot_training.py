"""Draw the training curve of a run spread over several resumed runs.

    python scripts/plot_training.py                                   # checkpoints/cpu_long
    python scripts/plot_training.py --csv outputs/train/RUN/csv/metrics.csv --out curve.png

Reads every Lightning ``metrics.csv`` given (default: ``checkpoints/cpu_long/metrics/*.csv``,
which ``train.py`` copies there after each run), joins them by global step, and plots the
training loss (smoothed), the end-to-end validation SNR per preset and the validation Dice
against steps, with the training hours on a second axis.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def read_metrics(paths: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """``metric -> [(step, value), ...]`` over all files, sorted by step (a later file wins a
    step logged twice, as after a resume)."""
    series: dict[str, dict[int, float]] = {}
    for path in sorted(paths):
        with path.open() as f:
            for row in csv.DictReader(f):
                if not row.get("step"):
                    continue
                step = int(float(row["step"]))
                for key, value in row.items():
                    if key not in ("step", "epoch") and value not in ("", None):
                        series.setdefault(key, {})[step] = float(value)
    return {k: sorted(v.items()) for k, v in series.items()}


def smooth(values: np.ndarray, n: int) -> np.ndarray:
    """Moving average over ``n`` points (shorter at the start)."""
    out = np.cumsum(np.insert(values, 0, 0.0))
    k = np.minimum(np.arange(1, len(values) + 1), n)
    return (out[1:] - out[np.arange(1, len(values) + 1) - k]) / k


def plot(series: dict[str, list[tuple[int, float]]], out: Path, title: str) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    loss = np.array(series.get("train/loss", []))
    if len(loss):
        axes[0].plot(loss[:, 0], loss[:, 1], color="0.8", lw=0.6, label="per log step")
        axes[0].plot(loss[:, 0], smooth(loss[:, 1], 25), color="C0", label="smoothed")
        pulse = np.array(series.get("train/pulse_loss", []))
        if len(pulse):
            axes[0].plot(pulse[:, 0], smooth(pulse[:, 1], 25), color="C3", label="pulse (smoothed)")
        axes[0].set_ylim(0, None)
    axes[0].set(title="training loss", xlabel="step")
    for key, label, colour in (("val/snr_db", "all", "k"), ("val/snr_db/clean", "clean", "C2"),
                               ("val/snr_db/medium", "medium", "C1"),
                               ("val/snr_db/heavy", "heavy", "C3")):  # fmt: skip
        pts = np.array(series.get(key, []))
        if len(pts):
            axes[1].plot(pts[:, 0], pts[:, 1], "o-", ms=3, color=colour, label=label)
    axes[1].set(title="validation: Challenge SNR (dB, Digitizer end to end)", xlabel="step")
    dice = np.array(series.get("val/dice", []))
    if len(dice):
        axes[2].plot(dice[:, 0], dice[:, 1], "o-", ms=3)
    axes[2].set(title="validation Dice (page scale)", xlabel="step", ylim=(0, 1))
    hours = np.array(series.get("train/hours", []))
    if len(hours):
        total = f", {hours[-1, 1]:.2f} h of training, {int(hours[-1, 0])} steps"
        title += total
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--csv", type=Path, nargs="*", default=None)
    p.add_argument("--out", type=Path, default=ROOT / "checkpoints" / "unet_cpu_curve.png")
    p.add_argument("--title", default="U-Net (cpu variant), 2-core CPU")
    a = p.parse_args()
    paths = a.csv or sorted((ROOT / "checkpoints" / "cpu_long" / "metrics").glob("*.csv"))
    if not paths:
        raise SystemExit("no metrics.csv found (train with experiment=cpu_long first)")
    plot(read_metrics(paths), a.out, a.title)


if __name__ == "__main__":
    main()
