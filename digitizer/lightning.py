"""Lightning wrappers that train the :class:`~digitizer.unet.UNet` trace segmenter on the
on-the-fly ``ecgsynth`` stream and validate it end to end (U-Net -> digitizer -> Challenge SNR).

* :class:`CropStream` — the training stream: an :class:`~ecgsynth.ECGImageDataset` whose every
  batch is rendered at its own random dpi and distortion preset (a batch shares one image size),
  then cut into square crops, most of them centred near a trace. Yields
  ``{"image": [N, 3, S, S] float, "mask": [N, S, S] uint8, "pulse": [N, S, S] uint8, "dpi": [N],
  "key": [N, 4], "item"}``
  with ``N = pages_per_batch * crops_per_page``.
* :class:`PageDataModule` — that stream for training (CPU DataLoader workers, or rendering on
  the training GPU in the main process) plus fixed :class:`~ecgsynth.ECGPageSet` pages for
  validation; its ``state_dict`` is the stream position, so a resumed run continues the stream.
* :class:`SegmenterModule` — BCE + soft Dice on the trace; validation runs the U-Net on whole
  pages, turns the probability map into a 12-lead record with
  the real ``digitizer.pipeline.Digitizer`` (grid, rectification, this U-Net) and scores it with
  :func:`digitizer.metrics.score_record` (``val/snr_db``, ``val/aligned_snr_db``, ``val/dice``),
  and logs overlays (TensorBoard image, else PNG files in the logger's folder).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ecgsynth.dataset import ECGImageDataset, ECGPageSet, PageOptions, collate_pages, render_pages
from ecgsynth.distort import PRESETS
from ecgsynth.layout import PULSE_BIT
from ecgsynth.sources import SignalSource, default_source

from .metrics import score_record
from .segment import InkSegmenter, UNetSegmenter
from .unet import UNet, build_unet, warm_start

__all__ = [
    "CropStream",
    "PageDataModule",
    "SegmenterModule",
    "crop_pages",
    "digitizer_available",
    "overlay_image",
    "trace_loss",
]


# --------------------------------------------------------------------------------------------
# Training stream
# --------------------------------------------------------------------------------------------


def crop_pages(
    batch: dict, size: int, per_page: int, trace_bias: float, rng: np.random.Generator,
    pulse_bias: float = 0.0,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Square crops of a rendered batch: ``per_page`` crops of ``size x size`` from each page.

    A crop is centred (with a jitter of a quarter crop) on a random calibration-pulse pixel
    with probability ``pulse_bias`` (a page without pulses: a trace pixel), on a random trace
    pixel with probability ``trace_bias``, else placed uniformly, so the network sees many
    traces and pulses and also margins, headers and grid. ``size`` is clamped to the page.
    Random choices come from ``rng`` only (the same crops on any device).

    Returns ``image [N, 3, s, s]``, ``mask [N, s, s]`` (uint8 class map), ``pulse [N, s, s]``
    (uint8, calibration-pulse ink; from ``mask_bits``, zeros without it) and ``page [N]`` (the
    source page of each crop), ``N = B * per_page``.
    """
    image, mask = batch["image"], batch["mask"]
    bits = batch.get("mask_bits")
    pulse = torch.zeros_like(mask) if bits is None else ((bits >> PULSE_BIT) & 1).to(torch.uint8)
    h, w = image.shape[-2:]
    s = min(size, h, w)
    images, masks, pulses, pages = [], [], [], []
    for b in range(image.shape[0]):
        found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for _ in range(per_page):
            u = rng.random()
            kind = "pulse" if u < pulse_bias else "trace" if u < pulse_bias + trace_bias else None
            if kind == "pulse":
                found.setdefault("pulse", torch.nonzero(pulse[b], as_tuple=True))
                if not len(found["pulse"][0]):
                    kind = "trace"
            if kind == "trace":
                found.setdefault("trace", torch.nonzero(mask[b], as_tuple=True))
            ys, xs = found[kind] if kind else ((), ())
            if len(ys):
                k = int(rng.integers(len(ys)))
                cy = int(ys[k]) + int(rng.integers(-s // 4, s // 4 + 1))
                cx = int(xs[k]) + int(rng.integers(-s // 4, s // 4 + 1))
                y0, x0 = min(max(cy - s // 2, 0), h - s), min(max(cx - s // 2, 0), w - s)
            else:  # uniform (or a page without traces, which ecgsynth layouts never make)
                y0, x0 = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
            images.append(image[b, :, y0 : y0 + s, x0 : x0 + s])
            masks.append(mask[b, y0 : y0 + s, x0 : x0 + s])
            pulses.append(pulse[b, y0 : y0 + s, x0 : x0 + s])
            pages.append(b)
    return {
        "image": torch.stack(images),
        "mask": torch.stack(masks),
        "pulse": torch.stack(pulses),
        "page": torch.tensor(pages, device=image.device),
    }


class CropStream(ECGImageDataset):
    """Infinite, sharded, resumable stream of training crops (see the module docstring).

    Item ``i`` of the stream (a batch) renders ``pages_per_batch`` pages keyed
    ``(seed, epoch, rank, i * pages_per_batch + j)`` like :class:`~ecgsynth.ECGImageDataset`,
    at a dpi drawn uniformly from ``dpi`` (integer), a preset drawn from ``presets`` (name ->
    weight) and a crop size drawn from ``crop_size`` (rounded to a multiple of 16). All of it
    comes from ``SeedSequence([*key_of_first_page, 1000])``, so the stream is the same for any
    worker count, device or resume point. ``state_dict``/``load_state_dict``/``set_epoch`` are
    the dataset's.

    Args:
        source: signal source (default: :func:`~ecgsynth.default_source`).
        layout, paper: page layout (or ``random``) and paper size.
        dpi: ``(low, high)`` range of the per-batch resolution.
        presets: preset name -> sampling weight; names are :data:`~ecgsynth.distort.PRESETS` or
            keys of ``custom_presets``.
        custom_presets: name -> pipeline config dict (see :mod:`ecgsynth.distort.presets`).
        pages_per_batch, crops_per_page: a batch has ``pages_per_batch * crops_per_page`` crops.
        crop_size: ``(low, high)`` side of the square crops, drawn per batch.
        trace_bias: probability that a crop is centred near a trace.
        pulse_bias: probability that a crop is centred near a calibration pulse.
        device: where pages are rendered (``cuda``: main process, ``num_workers=0``).
        seed: stream seed.
        conventions: printing conventions per page, ``random`` (the variety of real printers)
            or ``standard`` (ecgsynth's classic page); see :func:`ecgsynth.sample_page_spec`.
        ink_input: append each page's :class:`~digitizer.segment.InkSegmenter` map (at the
            page's dpi) to the image as a fourth channel before cropping, as a model with
            ``config.ink_input`` reads pages.
        colour_shuffle: probability that a crop's colour channels come in a random order (a
            red grid turns green or blue, paper and ink change hue; the ink map stays): pages
            printed in colours the renderer never drew.
    """

    def __init__(
        self,
        source: SignalSource | None = None,
        layout: str = "random",
        paper: str = "letter",
        dpi: Sequence[float] = (100, 300),
        presets: Mapping[str, float] | None = None,
        custom_presets: Mapping[str, dict] | None = None,
        pages_per_batch: int = 2,
        crops_per_page: int = 4,
        crop_size: Sequence[int] = (256, 512),
        trace_bias: float = 0.8,
        device: str | torch.device = "cpu",
        seed: int = 0,
        conventions: str = "random",
        pulse_bias: float = 0.0,
        ink_input: bool = False,
        colour_shuffle: float = 0.0,
    ) -> None:
        super().__init__(
            source, layout, "clean", float(dpi[0]), paper, pages_per_batch, device, seed,
            conventions=conventions,
        )  # fmt: skip
        self.dpi_range = (int(dpi[0]), int(dpi[-1]))
        if not 50 <= self.dpi_range[0] <= self.dpi_range[1] <= 600:
            raise ValueError(f"dpi range must lie in [50, 600], got {tuple(dpi)}")
        self.custom_presets = {k: dict(v) for k, v in (custom_presets or {}).items()}
        presets = dict(presets or {"clean": 1.0})
        unknown = set(presets) - set(PRESETS) - set(self.custom_presets)
        if unknown:
            raise ValueError(f"unknown preset(s) {sorted(unknown)}; known: {PRESETS}")
        weights = np.array([float(w) for w in presets.values()])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"preset weights must be >= 0 with a positive sum: {presets}")
        self.preset_names = list(presets)
        self.preset_probs = weights / weights.sum()
        self.crops_per_page = int(crops_per_page)
        self.crop_range = (int(crop_size[0]), int(crop_size[-1]))
        if not 16 <= self.crop_range[0] <= self.crop_range[1]:
            raise ValueError(f"crop_size must be a (low, high) range >= 16, got {crop_size}")
        self.trace_bias = float(trace_bias)
        self.pulse_bias = float(pulse_bias)
        self.ink_input = bool(ink_input)
        self.colour_shuffle = float(colour_shuffle)
        if not (0 <= self.pulse_bias and 0 <= self.trace_bias and
                self.pulse_bias + self.trace_bias <= 1):  # fmt: skip
            raise ValueError(f"need trace_bias, pulse_bias >= 0 with a sum <= 1: {trace_bias}, "
                             f"{pulse_bias}")  # fmt: skip
        for name in self.preset_names:  # fail on a bad preset now, not in a worker
            self._options(self.dpi_range[0], name)

    @lru_cache(maxsize=64)  # noqa: B019 - a few (dpi, preset) pairs; the stream lives for the run
    def _options(self, dpi: int, preset: str) -> PageOptions:
        config = self.custom_presets.get(preset, preset)
        o = self.options
        return PageOptions(o.layout, o.paper, float(dpi), config, o.conventions)

    def draw(self, key: Sequence[int]) -> tuple[int, str, int, np.random.Generator]:
        """``(dpi, preset, crop_size, rng)`` of the batch whose first page is keyed ``key``."""
        rng = np.random.default_rng(np.random.SeedSequence([*key, 1000]))
        dpi = int(rng.integers(self.dpi_range[0], self.dpi_range[1] + 1))
        preset = self.preset_names[int(rng.choice(len(self.preset_names), p=self.preset_probs))]
        lo, hi = self.crop_range
        size = max(16, int(rng.integers(lo, hi + 1)) // 16 * 16)
        return dpi, preset, size, rng

    def _make(self, keys: list[tuple[int, ...]]) -> dict:
        dpi, preset, size, rng = self.draw(keys[0])
        pages = render_pages(self._renderer, self.source, self._options(dpi, preset), keys)
        if self.ink_input:
            image = pages["image"]
            ink = InkSegmenter(px_per_mm=dpi / 25.4)(image)[:, None].to(image)
            pages = {**pages, "image": torch.cat([image, ink], dim=1)}
        out = crop_pages(pages, size, self.crops_per_page, self.trace_bias, rng, self.pulse_bias)
        if self.colour_shuffle:
            for i in np.flatnonzero(rng.random(len(out["image"])) < self.colour_shuffle):
                out["image"][i, :3] = out["image"][i, rng.permutation(3)]
        page = out.pop("page").cpu()
        n = len(page)
        out["key"] = torch.tensor(keys, dtype=torch.int64)[page]
        out["dpi"] = torch.full((n,), float(dpi))
        out["preset"] = [preset] * n
        out["item"] = keys[0][3] // len(keys)  # stream position of this batch
        return out


# --------------------------------------------------------------------------------------------
# Validation pages
# --------------------------------------------------------------------------------------------


class ValPages(Dataset):
    """``num`` fixed pages per (preset, layout) (:class:`~ecgsynth.ECGPageSet`, index-seeded),
    rendered on ``device`` when first read and kept in CPU memory as uint8 (what the digitizer
    sees from a PNG), so later validation epochs cost no rendering. Items are page dicts
    (``image``, ``mask``, ``signal``, ``signal_mask``, ``fs``, ``px_per_mm``) plus ``preset``
    and ``layout``. ``layout`` may be one name or a list of them."""

    def __init__(
        self,
        num: int,
        presets: Sequence[str],
        source: SignalSource,
        layout: str | Sequence[str] = "3x4",
        dpi: float = 200.0,
        paper: str = "letter",
        seed: int = 20240,
        device: str | torch.device = "cpu",
    ) -> None:
        layouts = [layout] if isinstance(layout, str) else list(layout)
        self.groups = [(p, lay) for p in presets for lay in layouts]
        self.sets = [ECGPageSet(num, source, lay, p, dpi, paper, seed) for p, lay in self.groups]
        self.device = torch.device(device)
        self.presets = list(presets)
        self.num = int(num)
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.num * len(self.sets)

    def __getitem__(self, index: int) -> dict:
        if index not in self._cache:
            group = index // self.num
            batch = self.sets[group].render_batch([index % self.num], self.device)
            keep = ("image", "mask", "signal", "signal_mask", "fs", "px_per_mm")
            page = {k: batch[k][0].cpu() for k in keep}
            page["image"] = (page["image"] * 255).round().to(torch.uint8)
            page["preset"], page["layout"] = self.groups[group]
            self._cache[index] = page
        page = dict(self._cache[index])
        page["image"] = page["image"].float() / 255
        return page


# --------------------------------------------------------------------------------------------
# Data module
# --------------------------------------------------------------------------------------------


class StreamLoader(DataLoader):
    """A DataLoader that calls ``before_iter()`` whenever an iterator is created (at each
    Lightning epoch, and once after a resume), so the data module can point the stream at the
    first batch the model has not received yet."""

    def __init__(self, *args: Any, before_iter: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_iter = before_iter

    def __iter__(self) -> Any:
        if self.before_iter is not None:
            self.before_iter()
        return super().__iter__()


class PageDataModule(pl.LightningDataModule):
    """Training stream (:class:`CropStream`) + validation pages (:class:`ValPages`).

    ``synth`` describes the pages (``source``: a :class:`~ecgsynth.sources.SignalSource` or
    ``None`` for the embedded default, ``layout``, ``paper``, ``dpi`` range, ``presets`` weights,
    ``custom_presets``, ``conventions``); the other arguments describe batches and loaders.
    ``render_device``: ``cpu`` (DataLoader workers), ``cuda``, or ``auto`` = the trainer's device
    (on a GPU, pages are rendered there in the main process and workers are not used).

    ``val`` keys: ``num`` (pages per preset and layout), ``presets``, ``layout`` (one) or
    ``layouts`` (a list), ``dpi``, ``seed``, ``batch_size``.
    """

    def __init__(
        self,
        synth: Mapping[str, Any] | None = None,
        pages_per_batch: int = 2,
        crops_per_page: int = 4,
        crop_size: Sequence[int] = (256, 512),
        trace_bias: float = 0.8,
        pulse_bias: float = 0.0,
        num_workers: int = 1,
        render_device: str = "auto",
        seed: int = 0,
        val: Mapping[str, Any] | None = None,
        ink_input: bool = False,
        colour_shuffle: float = 0.0,
    ) -> None:
        super().__init__()
        synth = dict(synth or {})
        self.source: SignalSource = synth.pop("source", None) or default_source()
        self.synth = synth
        self.pages_per_batch = pages_per_batch
        self.crops_per_page = crops_per_page
        self.crop_size = tuple(crop_size)
        self.trace_bias = trace_bias
        self.pulse_bias = pulse_bias
        self.num_workers = num_workers
        self.render_device = render_device
        self.seed = seed
        self.ink_input = ink_input
        self.colour_shuffle = colour_shuffle
        self.val = {
            "num": 4,
            "presets": ["clean"],
            "layout": "3x4",
            "dpi": 100.0,
            "seed": 20240,
            "batch_size": 1,
            **dict(val or {}),
        }
        self.train_set: CropStream | None = None
        self.val_set: ValPages | None = None
        self.consumed = 0  # training batches the model has received (the stream position)
        self._pending_state: dict | None = None

    def _device(self) -> torch.device:
        if self.render_device != "auto":
            return torch.device(self.render_device)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.strategy.root_device.type == "cuda":
            return trainer.strategy.root_device
        return torch.device("cpu")

    def make_train_stream(self) -> CropStream:
        """A new training stream from the settings (validated here, in the main process)."""
        return CropStream(
            self.source,
            layout=self.synth.get("layout", "random"),
            paper=self.synth.get("paper", "letter"),
            dpi=self.synth.get("dpi", (100, 300)),
            presets=self.synth.get("presets"),
            custom_presets=self.synth.get("custom_presets"),
            conventions=self.synth.get("conventions", "random"),
            pages_per_batch=self.pages_per_batch,
            crops_per_page=self.crops_per_page,
            crop_size=self.crop_size,
            trace_bias=self.trace_bias,
            pulse_bias=self.pulse_bias,
            device=self._device(),
            seed=self.seed,
            ink_input=self.ink_input,
            colour_shuffle=self.colour_shuffle,
        )

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets (idempotent) and simulate the synthetic pool once, before any
        worker forks, so workers inherit it instead of each re-simulating it."""
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = self.make_train_stream()
            if self._pending_state is not None:
                self.load_state_dict(self._pending_state)
        if self.val_set is None and stage in (None, "fit", "validate"):
            v = self.val
            self.val_set = ValPages(
                v["num"],
                list(v["presets"]),
                self.source,
                layout=v.get("layouts") or v["layout"],
                dpi=v["dpi"],
                paper=self.synth.get("paper", "letter"),
                seed=v["seed"],
                device=self._device(),
            )
        self.source.warm()

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup('fit') first"
        workers = self.num_workers
        if self.train_set.device.type == "cuda" and workers:
            warnings.warn(
                "pages are rendered on the GPU in the main process: num_workers=0", stacklevel=2
            )
            workers = 0
        return StreamLoader(
            self.train_set,
            before_iter=self._continue_stream,
            batch_size=None,
            num_workers=workers,
            prefetch_factor=2 if workers else None,
        )

    def _continue_stream(self) -> None:
        # Lightning epochs only pace validation: the stream is one sequence, and a new iterator
        # starts at the first batch not yet consumed (DataLoader workers and Lightning fetch
        # ahead; what they fetched but the model never received is rendered again, not skipped)
        assert self.train_set is not None
        self.train_set.load_state_dict({**self.train_set.state_dict(), "position": self.consumed})

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup('validate') first"
        # in the main process: the rendered pages are cached there for later epochs
        return DataLoader(
            self.val_set, batch_size=int(self.val["batch_size"]), collate_fn=collate_pages
        )

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # the training stream tags each batch with its position: count what the model received
        # (Lightning and DataLoader workers fetch ahead, so the dataset cannot count for us)
        if isinstance(batch, dict) and "item" in batch:
            self.consumed = int(batch["item"]) + 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The training stream's position (saved in Lightning checkpoints)."""
        if self.train_set is None:
            return {}
        return {"stream": {**self.train_set.state_dict(), "position": self.consumed}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue the stream after the last batch the checkpointed run received."""
        if "stream" not in state_dict:
            return
        if self.train_set is None:  # restored before setup(): apply it there
            self._pending_state = state_dict
            return
        self.train_set.load_state_dict(state_dict["stream"])
        self.consumed = int(state_dict["stream"]["position"])
        self._pending_state = None


# --------------------------------------------------------------------------------------------
# Loss, overlays, digitizer access
# --------------------------------------------------------------------------------------------


def trace_loss(
    logits: torch.Tensor, target: torch.Tensor, pos_weight: float = 1.0, dice_weight: float = 1.0
) -> dict[str, torch.Tensor]:
    """BCE (positives weighted by ``pos_weight``) + ``dice_weight`` x soft Dice over the batch.

    Args:
        logits: ``[B, H, W]`` trace logits.
        target: ``[B, H, W]`` float in {0, 1}.

    Returns ``{"loss", "bce", "dice"}`` (float32 scalars; Dice here is the loss ``1 - dice``).
    Dice is pooled over the whole batch, so crops without any trace do not make it explode.
    """
    logits, target = logits.float(), target.float()
    weight = torch.tensor(pos_weight, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return {"loss": bce + dice_weight * dice, "bce": bce, "dice": dice}


def overlay_image(
    image: torch.Tensor, prob: torch.Tensor, target: torch.Tensor | None = None,
    max_side: int = 1400,
) -> np.ndarray:  # fmt: skip
    """The page with the predicted trace tinted red (opacity = probability) and, if ``target``
    is given, missed trace pixels (target but ``prob < 0.5``) in blue.

    ``image [3, H, W]`` in [0, 1], ``prob [H, W]``, ``target [H, W]`` -> uint8 ``[h, w, 3]``,
    shrunk (area average) so that its longer side is at most ``max_side``.
    """
    img = image.detach().float().cpu().clamp(0, 1)
    p = prob.detach().float().cpu().clamp(0, 1)[None]
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    out = img * (1 - 0.85 * p) + red * (0.85 * p)
    if target is not None:
        missed = (target.detach().cpu() > 0) & (p[0] < 0.5)
        out = torch.where(missed[None], torch.tensor([0.0, 0.3, 1.0]).view(3, 1, 1), out)
    scale = max_side / max(out.shape[-2:])
    if scale < 1:
        size = (max(1, round(out.shape[-2] * scale)), max(1, round(out.shape[-1] * scale)))
        out = F.interpolate(out[None], size=size, mode="area")[0]
    return (out.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()


_DIGITIZER_PROBLEM: list[str] = []


def _digitizer_class() -> type | None:
    """``digitizer.pipeline.Digitizer``, or ``None`` (with one warning) when it cannot be
    imported."""
    try:
        from .pipeline import Digitizer
    except Exception as err:  # missing module or a broken one: train on, validate on Dice only
        if not _DIGITIZER_PROBLEM:
            _DIGITIZER_PROBLEM.append(f"{type(err).__name__}: {err}")
            warnings.warn(
                f"digitizer.pipeline.Digitizer is unavailable ({_DIGITIZER_PROBLEM[0]}): "
                "validation logs val/dice only, not val/snr_db",
                stacklevel=2,
            )
        return None
    return Digitizer


def digitizer_available() -> bool:
    """Whether validation can score end to end (``val/snr_db``)."""
    return _digitizer_class() is not None


# --------------------------------------------------------------------------------------------
# Lightning module
# --------------------------------------------------------------------------------------------


class SegmenterModule(pl.LightningModule):
    """Trains a :class:`~digitizer.unet.UNet` on trace masks; validates end to end.

    Args:
        net: U-Net settings: ``variant`` (``tiny``/``small``/``base``, see
            :data:`digitizer.unet.VARIANTS`) plus any :class:`~digitizer.unet.UNetConfig` field.
        lr, weight_decay, warmup_steps: AdamW with linear warm-up then cosine decay to
            ``min_lr_ratio * lr`` over the trainer's total steps.
        pos_weight, dice_weight: see :func:`trace_loss`.
        pulse_weight: weight of the calibration-pulse loss (output channel 1, when the net has
            one; the target is the renderer's ``PULSE_BIT``).
        schedule_steps: length of the cosine schedule (``None``: the trainer's total steps).
            Set it for training spread over several runs that each stop on ``max_time``.
        dilate_dpi: dilate the target by one pixel (3x3) on batches at or above this dpi
            (``None``: never). Off by default: the vectoriser takes the per-column centroid of
            the probability, which a symmetric dilation does not move, but a thicker target
            also merges traces with nearby labels and pulses.
        channels_last: train in channels-last memory format (faster convolutions on CPU and
            with mixed precision on GPU).
        digitize: run the digitizer on validation pages (``val/snr_db``); ``False``: Dice only.
        align: also report the Challenge-aligned SNR (``val/aligned_snr_db``).
        num_overlays: validation pages whose overlay is logged each epoch.
        tile: ``predict_proba`` tile size on validation pages (``None``: whole page).
        init_weights: start from this U-Net checkpoint's weights where they fit
            (:func:`~digitizer.unet.warm_start`: a model with an extra ink input starts as the
            checkpoint's model); a resumed run's own state replaces them.
    """

    def __init__(
        self,
        net: Mapping[str, Any] | None = None,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.02,
        pos_weight: float = 2.0,
        dice_weight: float = 1.0,
        pulse_weight: float = 0.5,
        schedule_steps: int | None = None,
        dilate_dpi: float | None = None,
        channels_last: bool = True,
        digitize: bool = True,
        align: bool = True,
        num_overlays: int = 2,
        tile: int | None = None,
        init_weights: str | None = None,
    ) -> None:
        super().__init__()
        net = dict(net or {"variant": "small"})
        self.save_hyperparameters()
        settings = dict(net)
        self.net: UNet = build_unet(settings.pop("variant", "small"), **settings)
        if init_weights:
            left = warm_start(self.net, init_weights)
            if left:
                warnings.warn(f"{init_weights}: no weights for {', '.join(left)}", stacklevel=2)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self._val: dict[str, Any] = {}
        self._digitizers: dict[tuple[float, int], Any] = {}
        self.train_seconds = 0.0  # training wall time over every resumed run
        self._step_start: float | None = None

    # ---- training -------------------------------------------------------------------------

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] -> logits ``[B, C, H, W]`` (0: trace, 1: pulse)."""
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return self.net(image)

    def _target(self, mask: torch.Tensor, dpi: torch.Tensor | None) -> torch.Tensor:
        target = (mask > 0).float()
        threshold = self.hparams.dilate_dpi
        if threshold is not None and dpi is not None and bool((dpi >= threshold).any()):
            dilated = F.max_pool2d(target[:, None], 3, stride=1, padding=1)[:, 0]
            target = torch.where((dpi >= threshold).view(-1, 1, 1), dilated, target)
        return target

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        h = self.hparams
        parts = trace_loss(
            logits[:, 0], self._target(batch["mask"], batch.get("dpi")), h.pos_weight,
            h.dice_weight,
        )  # fmt: skip
        n = batch["image"].shape[0]
        logs = {"train/bce": parts["bce"], "train/dice_loss": parts["dice"]}
        loss = parts["loss"]
        if logits.shape[1] > 1 and "pulse" in batch:
            pulse = trace_loss(logits[:, 1], batch["pulse"].float(), h.pos_weight, h.dice_weight)
            loss = loss + h.pulse_weight * pulse["loss"]
            logs["train/pulse_loss"] = pulse["loss"]
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log_dict(logs, batch_size=n)
        if "dpi" in batch:
            self.log("train/dpi", batch["dpi"].float().mean(), batch_size=n)
        return loss

    # training hours: wall time between training batches (data waits included, validation not)
    def on_train_start(self) -> None:
        self._step_start = time.perf_counter()

    def on_validation_end(self) -> None:
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        if self._step_start is not None:
            self.train_seconds += now - self._step_start
        self._step_start = now
        self.log("train/hours", self.train_seconds / 3600, batch_size=1)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["train_seconds"] = self.train_seconds

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.train_seconds = float(checkpoint.get("train_seconds", 0.0))

    def configure_optimizers(self) -> dict:
        decay = [p for p in self.parameters() if p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.ndim <= 1]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": self.hparams.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=self.hparams.lr,
        )
        total = self.hparams.schedule_steps or int(self.trainer.estimated_stepping_batches)
        total = max(1, total)
        warmup = min(self.hparams.warmup_steps, total // 2)
        floor = self.hparams.min_lr_ratio

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            t = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # ---- validation -----------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        presets = list(datamodule.val["presets"]) if isinstance(datamodule, PageDataModule) else []
        segmenter = UNetSegmenter(self.net.fused(), self.device, tile=self.hparams.tile)
        self._val = {"segmenter": segmenter, "presets": presets, "failures": 0}
        self._val.update(snr_db=[], aligned_snr_db=[], inter=0.0, pred=0.0, true=0.0, bce=0.0)
        self._val["pages"] = 0

    def _digitizer(self, fs: float, num_samples: int) -> Any:
        key = (float(fs), int(num_samples))
        if key not in self._digitizers:
            cls = _digitizer_class() if self.hparams.digitize else None
            # "ink" only so that no shipped model is loaded: the segmenter is set per epoch
            self._digitizers[key] = (
                None if cls is None else cls(checkpoint="ink", fs=key[0], num_samples=key[1])
            )
        digitizer = self._digitizers[key]
        if digitizer is not None:
            digitizer.segmenter = self._val["segmenter"]
        return digitizer

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        """Dice of the page-scale map (trace, plus pulse ink for a two-channel net) against the
        trace mask; SNR of the real :class:`~digitizer.pipeline.Digitizer` run on the page."""
        image = batch["image"]
        prob = torch.stack(
            [self._val["segmenter"](image[i : i + 1], float(batch["px_per_mm"][i]))[0]
             for i in range(len(image))]
        ).to(image.device)  # fmt: skip
        target = (batch["mask"] > 0).float()
        stats = self._val
        pred = (prob >= 0.5).float()
        stats["inter"] += float((pred * target).sum())
        stats["pred"] += float(pred.sum())
        stats["true"] += float(target.sum())
        stats["bce"] += float(F.binary_cross_entropy(prob.clamp(1e-6, 1 - 1e-6), target)) * len(
            image
        )
        stats["pages"] += len(image)
        for i in range(len(image)):
            self._score_page(batch, i)
            page_index = batch_idx * len(image) + i
            if page_index < self.hparams.num_overlays and self.trainer.is_global_zero:
                self._log_overlay(page_index, image[i], prob[i], target[i])

    def _score_page(self, batch: dict, i: int) -> None:
        signal = batch["signal"][i].float().cpu()
        reference = torch.where(batch["signal_mask"][i].cpu(), signal, torch.nan).numpy()
        fs = float(batch["fs"][i])
        digitizer = self._digitizer(fs, signal.shape[-1])
        if digitizer is None:
            return
        try:
            record = digitizer.digitize(batch["image"][i].float().cpu())
            estimate = np.asarray(record.signal, dtype=np.float32)
        except Exception as err:  # a failed page scores 0 dB on every lead, as in the Challenge
            self._val["failures"] += 1
            warnings.warn(
                f"digitizer failed on a validation page: {type(err).__name__}: {err}",
                stacklevel=2,
            )
            estimate = None
        rows = score_record(reference, estimate, fs, align=self.hparams.align)
        preset = batch["preset"][i] if "preset" in batch else "all"
        for row in rows:
            if not math.isnan(row["snr_db"]):
                self._val["snr_db"].append((preset, row["snr_db"]))
                self._val["aligned_snr_db"].append((preset, row["aligned_snr_db"]))

    def _reduce_sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` element-wise over all ranks."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.trainer.strategy.reduce(t, reduce_op="sum").tolist()

    def on_validation_epoch_end(self) -> None:
        s = self._val
        inter, pred, true, bce, pages, failures = self._reduce_sum(
            [s["inter"], s["pred"], s["true"], s["bce"], s["pages"], s["failures"]]
        )
        metrics = {"val/dice": (2 * inter + 1) / (pred + true + 1), "val/bce": bce / max(pages, 1)}
        if self.hparams.digitize and digitizer_available():
            metrics["val/digitize_failures"] = failures
            # every rank reduces the same list of numbers, whatever pages it was given
            groups = [(None, "all")] + [(p, p) for p in s["presets"]] * (len(s["presets"]) > 1)
            names = ["snr_db", "aligned_snr_db"] if self.hparams.align else ["snr_db"]
            sums = []
            for name in names:
                for preset, _ in groups:
                    vals = [v for p, v in s[name] if preset is None or p == preset]
                    sums += [sum(vals), len(vals)]
            sums = self._reduce_sum(sums)
            for name in names:
                for _, label in groups:
                    total, count = sums.pop(0), sums.pop(0)
                    key = f"val/{name}" if label == "all" else f"val/{name}/{label}"
                    metrics[key] = total / count if count else 0.0
        self.log_dict(metrics)
        self._val = {}

    def _log_overlay(
        self, index: int, image: torch.Tensor, prob: torch.Tensor, target: torch.Tensor
    ) -> None:
        picture = overlay_image(image, prob, target)
        for logger in self.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image(
                    f"val/overlay_{index}", picture, self.global_step, dataformats="HWC"
                )
            elif getattr(logger, "log_dir", None):
                from PIL import Image

                folder = os.path.join(logger.log_dir, "overlays")
                os.makedirs(folder, exist_ok=True)
                name = f"step{self.global_step:07d}_page{index}.png"
                Image.fromarray(picture).save(os.path.join(folder, name))
