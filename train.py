"""Train the U-Net trace segmenter on the on-the-fly synthetic stream (Lightning + Hydra).

    python train.py                                    # tiny CPU run, a few minutes
    python train.py debug=fast_dev_run                 # one batch each way: a wiring check
    python train.py experiment=cpu_small               # the shipped small model (CPU)
    python train.py trainer=gpu experiment=gpu_base    # the real run (trainer=ddp: all GPUs)
    python train.py ckpt_path=PATH/last.ckpt           # resume, the data stream included
    python train.py experiment=cpu_long [resume=true]  # the shipped CPU model, run after run

seed -> data module, model, callbacks, loggers, trainer (all from ``configs/``) -> fit -> export
the best checkpoint (by ``val/snr_db``) with :func:`digitizer.unet.save_checkpoint` to
``export_path``: a plain torch file that the digitizer loads without Lightning or Hydra.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import timedelta
from typing import Any

# DataLoader workers render pages on the same cores as the training step: OpenMP threads that
# spin-wait for a busy core make every small tensor op many times slower (measured: a CPU
# training step 0.26 s instead of 2.6 s on a shared 2-core machine). Read when torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hydra
import lightning.pytorch as pl
import torch
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict

from digitizer.lightning import SegmenterModule, digitizer_available
from digitizer.unet import save_checkpoint

log = logging.getLogger("train")


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, SegmenterModule, pl.Trainer]:
    """Instantiate the data module, model and trainer (with callbacks and loggers) of ``cfg``."""
    pl.seed_everything(cfg.seed, workers=True)
    synth = OmegaConf.to_container(cfg.synth, resolve=True)
    synth["source"] = instantiate(cfg.synth.source)
    datamodule = instantiate(cfg.data, synth=synth, _convert_="all", _recursive_=False)
    init = cfg.model.get("init_weights")
    model: SegmenterModule = instantiate(
        cfg.model, _convert_="all", **({"init_weights": to_absolute_path(init)} if init else {})
    )

    callbacks_cfg = cfg.get("callbacks") or {}
    if "model_checkpoint" in callbacks_cfg and not (cfg.model.digitize and digitizer_available()):
        with open_dict(cfg):  # no end-to-end score: keep the best Dice instead
            cfg.callbacks.model_checkpoint.monitor = "val/dice"
            cfg.callbacks.model_checkpoint.filename = "step{step:06d}-dice{val/dice:.3f}"
        log.warning("validation cannot score val/snr_db: checkpoints monitor val/dice")
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def export_best(cfg: DictConfig, model: SegmenterModule, trainer: pl.Trainer) -> str | None:
    """Export the best checkpoint's U-Net (else, or with ``export_from=last``, the final
    weights) to ``cfg.export_path``."""
    if not cfg.get("export_path") or not trainer.is_global_zero:
        return None
    checkpoint = trainer.checkpoint_callback
    best = getattr(checkpoint, "best_model_path", "") if checkpoint is not None else ""
    if cfg.get("export_from", "best") == "last":
        best = ""
    meta: dict[str, Any] = {"global_step": trainer.global_step, "source": "final weights"}
    meta["total_steps"] = trainer.global_step
    meta["train_hours"] = round(model.train_seconds / 3600, 3)
    if best:
        state = torch.load(best, map_location="cpu", weights_only=False)
        model.load_state_dict(state["state_dict"])
        score = checkpoint.best_model_score
        meta.update(
            source=os.path.basename(best),
            global_step=int(state.get("global_step", trainer.global_step)),
            hours_at_step=round(float(state.get("train_seconds", 0.0)) / 3600, 3),
            monitor=checkpoint.monitor,
            best_score=None if score is None else float(score),
        )
    meta["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    meta["config"] = OmegaConf.to_container(cfg, resolve=True)
    path = to_absolute_path(cfg.export_path)
    save_checkpoint(model.net, path, **meta)
    log.info("exported %s (%s) to %s", meta["source"], meta.get("best_score"), path)
    return path


def resume_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: ``ckpt_path``, else with ``resume=true`` the
    ``last.ckpt`` of ``callbacks.model_checkpoint.dirpath`` (which must exist)."""
    if cfg.get("ckpt_path"):
        return to_absolute_path(cfg.ckpt_path)
    if not cfg.get("resume"):
        return None
    folder = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    path = to_absolute_path(os.path.join(str(folder), "last.ckpt")) if folder else ""
    if not path or not os.path.isfile(path):
        raise SystemExit(
            f"resume=true: no last.ckpt to resume from ({path or 'no checkpoint dir'})"
        )
    return path


def per_run_max_time(cfg: DictConfig, ckpt: str | None) -> None:
    """Make ``trainer.max_time`` a budget for this run: Lightning's Timer restores the time of
    the earlier runs with the checkpoint (and would stop a resumed run at once), so their time
    is added to it, in place."""
    limit = OmegaConf.select(cfg, "trainer.max_time")
    if not ckpt or not limit:
        return
    state = torch.load(ckpt, map_location="cpu", weights_only=False).get("callbacks", {})
    timer = next((v for k, v in state.items() if k.startswith("Timer")), None)
    if not timer:
        return
    if isinstance(limit, str):
        days, hours, minutes, seconds = (float(v) for v in limit.split(":"))
        limit = {"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
    budget = timedelta(**limit).total_seconds()
    done = float(timer["time_elapsed"].get("train", 0.0))
    total = int(round(budget + done))  # as DD:HH:MM:SS: the Trainer takes no DictConfig here
    minutes, seconds = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    with open_dict(cfg):
        cfg.trainer.max_time = f"{days:02d}:{hours:02d}:{minutes:02d}:{seconds:02d}"
    log.info("max_time: %.0f s for this run after %.0f s of earlier runs", budget, done)


def keep_curve(cfg: DictConfig, trainer: pl.Trainer) -> str | None:
    """Copy this run's ``metrics.csv`` (CSV logger) beside the checkpoints, as
    ``DIRPATH/metrics/RUN.csv``, so a training spread over several runs keeps its whole curve
    with its resume state (``scripts/plot_training.py`` draws them)."""
    folder = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath")
    logs = [lg for lg in trainer.loggers if isinstance(lg, pl.loggers.CSVLogger)]
    if not folder or not logs or not trainer.is_global_zero:
        return None
    source = os.path.join(logs[0].log_dir, "metrics.csv")
    if not os.path.isfile(source):
        return None
    run = os.path.basename(os.path.normpath(cfg.paths.output_dir))
    target = os.path.join(to_absolute_path(str(folder)), "metrics", f"{run}.csv")
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target)
    return target


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, export; returns the final callback metrics."""
    ckpt = resume_path(cfg)
    per_run_max_time(cfg, ckpt)
    datamodule, model, trainer = build(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt)
    export_best(cfg, model, trainer)
    keep_curve(cfg, trainer)
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


@hydra.main(version_base=None, config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
