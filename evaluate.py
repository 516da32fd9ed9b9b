"""Score digitised ECGs against their ground truth (Hydra entry point, ``configs/evaluate.yaml``).

::

    python evaluate.py predictions=DIR truth=DIR    # WFDB folders, paired by file stem
    python evaluate.py images=DIR truth=DIR         # digitize every image first, then score
    python evaluate.py                              # fixed synthetic test set, default digitizer

Writes ``per_lead.csv``, ``per_record.csv``, ``intervals_per_beat.csv``, ``summary.json`` and
``report.html`` (+ ``fig_*.png``) into the run folder (``out=DIR``, default
``outputs/DATE/TIME``), prints the headline and the report's path, and exits with status 1 when
any truth record could not be scored or had no readable prediction (everything is still
written), 2 on a usage error. The work is done by :mod:`digitizer.evaluation` and
:mod:`digitizer.report`.
"""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from digitizer import evaluation as E
from digitizer import metrics as M
from digitizer.report import write_report


def _folder(value: Any, key: str) -> Path:
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise ValueError(f"{key}={value}: not a directory")
    return path


def _mode(cfg: DictConfig) -> str:
    """``predictions``, ``images`` or ``synthetic``; raises ValueError on a bad combination."""
    if cfg.predictions is not None and cfg.images is not None:
        raise ValueError("give predictions=DIR or images=DIR, not both")
    if cfg.predictions is not None or cfg.images is not None:
        if cfg.truth is None:
            raise ValueError("truth=DIR is required with predictions= or images=")
        return "predictions" if cfg.predictions is not None else "images"
    if cfg.truth is not None:
        raise ValueError("truth=DIR needs predictions=DIR or images=DIR")
    return "synthetic"


def run(cfg: DictConfig, out: Path) -> int:
    """Evaluate as configured, writing everything into ``out``; return the exit status."""
    start = time.perf_counter()
    try:
        mode = _mode(cfg)
        truth = _folder(cfg.truth, "truth") if cfg.truth is not None else None
        preds = _folder(cfg.predictions, "predictions") if mode == "predictions" else None
        images = _folder(cfg.images, "images") if mode == "images" else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    progress = bool(cfg.progress)
    context: dict[str, Any] = {"mode": mode}

    if mode == "synthetic":
        syn = cfg.synthetic
        truth = images = out / "testset"
        E.make_synthetic_set(
            truth,
            presets=list(syn.presets),
            layouts=list(syn.layouts),
            num=int(syn.num),
            dpi=float(syn.dpi),
            seed=int(syn.seed),
            device=str(cfg.device),
            batch_size=int(syn.batch_size),
            progress=progress,
            mask_unplotted=bool(syn.get("mask_unplotted", True)),
            conventions=str(syn.get("conventions", "standard")),
        )
        context["source"] = f"held-out LUDB records in {E.heldout_dir()}"
        context["synthetic"] = OmegaConf.to_container(syn, resolve=True)

    digitized = None
    if images is not None:
        preds = out / "predictions"
        try:
            digitized = E.digitize_images(
                images,
                preds,
                checkpoint=cfg.checkpoint,
                fs=float(cfg.fs),
                num_samples=int(cfg.num_samples),
                device=str(cfg.device),
                overlay=bool(cfg.overlay),
                progress=progress,
            )
        except Exception as exc:  # noqa: BLE001 - the digitizer could not be built at all
            print(
                f"error: cannot build the digitizer: {type(exc).__name__}: {exc}", file=sys.stderr
            )
            return 2
        context["checkpoint"] = cfg.checkpoint

    assert truth is not None and preds is not None
    pairs, unmatched = E.pair_records(truth, preds, digitized.errors if digitized else None)
    if digitized is not None:
        for pair in pairs:
            pair.notes += digitized.notes.get(pair.record, [])
            pair.tags.update(digitized.tags.get(pair.record, {}))
    sc = cfg.scoring
    ev = E.evaluate_pairs(
        pairs,
        align=bool(sc.align),
        align_method=str(sc.align_method),
        intervals=bool(sc.intervals),
        lead=str(sc.interval_lead),
        tol_ms=float(sc.tol_ms),
        progress=progress,
    )
    ev.summary.update(
        mode=mode,
        truth=str(truth),
        predictions=str(preds),
        images=str(images) if images is not None else None,
        unmatched_predictions=unmatched,
        alignment=alignment_note(str(sc.align_method)),
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    if digitized is not None:
        ev.summary["digitizer_errors"] = [
            {"record": k, "error": v} for k, v in sorted(digitized.errors.items())
        ]
    ev.summary["scoring_runtime_s"] = time.perf_counter() - start
    paths = E.write_tables(ev, out)
    ctx = (
        "<p>"
        + "<br>".join(
            f"<b>{html.escape(k)}</b>: {html.escape(str(v))}"
            for k, v in {**context, "truth": truth, "predictions": preds, "images": images}.items()
            if v is not None
        )
        + "</p>"
    )
    report = write_report(
        out,
        ev.per_lead,
        ev.per_record,
        ev.summary,
        lambda row: E.load_pair(row.truth_path, row.prediction_path or None),
        worst=int(cfg.report.worst),
        context=ctx,
    )
    _print_headline(ev.summary, paths, report)
    return 1 if ev.summary["failed"] else 0


def alignment_note(method: str) -> dict[str, Any]:
    """What ``aligned_snr_db`` and ``best_shift_snr_db`` mean, for ``summary.json``."""
    note: dict[str, Any] = {
        "method": method,
        "aligned_snr_db": "PhysioNet Challenge 2024 alignment: 2-D cross-correlation of quantised "
        "(256 levels), smoothed (sigma 0.5) signal images; shift and offset applied without limits",
        "best_shift_snr_db": None,
    }
    if method in ("search", "best_shift"):
        note["best_shift_snr_db"] = (
            f"not the Challenge's: exact best shift (|shift| <= {M.MAX_SHIFT_S} s) and offset "
            f"(|offset| <= {M.MAX_OFFSET_MV} mV)"
        )
        note["max_shift_s"], note["max_offset_mv"] = M.MAX_SHIFT_S, M.MAX_OFFSET_MV
    return note


def _print_headline(summary: dict[str, Any], paths: dict[str, Path], report: Path) -> None:
    def f(v: Any, unit: str = "") -> str:
        return "n/a" if v is None or v != v else f"{v:.2f}{unit}"

    best = summary.get("best_shift_snr_db")
    extra = "" if best is None or best != best else f"; best shift, not the Challenge's {f(best)}"
    print(
        f"SNR {f(summary['snr_db'], ' dB')} (aligned {f(summary['aligned_snr_db'], ' dB')}{extra})"
        f" over {summary['n_leads']} record x lead cells of {summary['n_records']} records"
    )
    for tag, groups in summary.get("groups", {}).items():
        print(
            f"  per {tag}: " + ", ".join(f"{k} {f(g['snr_db'], ' dB')}" for k, g in groups.items())
        )
    iv = summary.get("intervals")
    if iv:
        pr = iv["per_record"]
        print(
            "intervals (median beat, prediction - truth, bias/MAE ms): "
            + ", ".join(
                f"{k.upper()} {f(pr[k]['bias_ms'])}/{f(pr[k]['mae_ms'])}"
                for k in ("rr", "qrs", "qt")
            )
            + f"; beats matched {100 * iv['beats']['match_fraction']:.1f} %"
        )
    failed = summary["failed"]
    if failed:
        print(f"{len(failed)} record(s) failed or missing:", file=sys.stderr)
        for item in failed[:20]:
            print(f"  {item['record']}: {item['status']}: {item['reason']}", file=sys.stderr)
        if len(failed) > 20:
            print(f"  ... and {len(failed) - 20} more (summary.json)", file=sys.stderr)
    print(f"tables: {paths['per_record'].parent}")
    print(f"report: {report.resolve()}")


@hydra.main(version_base=None, config_path="configs", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: run into the Hydra run folder and exit with :func:`run`'s status."""
    status = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
