"""Datasets of synthetic ECG pages for any training loop (no Lightning or Hydra needed).

* :class:`ECGImageDataset` — infinite (or ``length``-limited) ``IterableDataset``.
  Batched mode (``batch_size=B``, the fast path) yields ready batch dicts on ``device``; use it
  with ``DataLoader(ds, batch_size=None)``. Per-sample mode (``batch_size=None``) yields single
  pages for your own collate (:func:`collate_pages`) and CPU workers; with ``render=False`` it
  yields only signals and page seeds, and :class:`PageSynth` renders the collated batch on the
  GPU (e.g. in Lightning's ``on_after_batch_transfer``).
* :class:`ECGPageSet` — finite, index-seeded, map-style set for validation and test: page ``i``
  depends only on ``(seed, i)``, so it is identical every epoch and under any worker/rank layout
  (and identical to page ``i`` of ``python -m ecgsynth export`` with the same options).

Printing conventions (:class:`~ecgsynth.layout.PrintConvention`: pulse placement, gaps, marks,
labels, rhythm strips, margins, grids, trace widths) are drawn per page with
``conventions="random"``, the default of the training stream :class:`ECGImageDataset`;
:class:`ECGPageSet` defaults to ``"standard"`` (the classic page), so fixed validation and test
sets stay what they were.

Seeding: page ``p`` of a rank's stream is drawn from ``SeedSequence([seed, epoch, rank, p])``.
DataLoader worker ``w`` of ``W`` renders items ``w, w + W, ...`` (an item is a batch, or a page in
per-sample mode), so workers never repeat a page and the stream is the same for any worker
count. The worker comes from ``get_worker_info()`` and the rank from ``torch.distributed`` (or
the ``RANK`` environment variable), both resolved when iteration starts; a stream resumes
exactly from :meth:`ECGImageDataset.state_dict`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from .distort import Pipeline, build_pipeline
from .render import Renderer
from .sources import SignalSource, default_source
from .spec import CONVENTIONS, PageSpec, sample_page_spec


@dataclass(frozen=True)
class PageOptions:
    """How pages are drawn: layout (or ``random``), paper, dpi, distortion preset (a name in
    :data:`ecgsynth.distort.PRESETS` or a pipeline config dict, see :func:`build_pipeline`) and
    printing conventions (``random`` or ``standard``, see :func:`sample_page_spec`)."""

    layout: str = "random"
    paper: str = "letter"
    dpi: float = 200.0
    preset: str | dict = "clean"
    conventions: str = "random"

    @cached_property
    def pipeline(self) -> Pipeline:
        """The distortion pipeline of :attr:`preset` (validated on construction)."""
        return build_pipeline(self.preset)

    def __post_init__(self) -> None:
        self.pipeline  # noqa: B018 - fail early on a bad preset
        if self.conventions not in CONVENTIONS:
            raise ValueError(f"conventions must be one of {CONVENTIONS}, not {self.conventions!r}")

    def spec(self, spec_seed: int) -> PageSpec:
        """The page spec drawn from ``spec_seed`` (see :func:`page_seeds`)."""
        rng = np.random.default_rng(spec_seed)
        return sample_page_spec(
            rng, layout=self.layout, paper=self.paper, dpi=self.dpi, conventions=self.conventions
        )


def page_seeds(key: Sequence[int]) -> tuple[np.random.Generator, int]:
    """The record generator and the spec seed (an int64) of the page keyed by ``key``."""
    record_rng = np.random.default_rng(np.random.SeedSequence([*key, 0]))
    return record_rng, _int64_seed([*key, 1])


def distortion_generator(spec_seed: int) -> torch.Generator:
    """The torch generator that draws a page's distortions, derived from its spec seed."""
    return torch.Generator().manual_seed(_int64_seed([spec_seed, 2]))


def _int64_seed(entropy: list[int]) -> int:
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def render_pages(
    renderer: Renderer, source: SignalSource, options: PageOptions, keys: Sequence[Sequence[int]]
) -> dict:
    """Draw and render the pages keyed by ``keys`` as one batch (see :mod:`ecgsynth.render`)."""
    source.warm()  # one-time simulations happen here, not in the middle of a stream
    records, specs, generators = [], [], []
    for key in keys:
        record_rng, spec_seed = page_seeds(key)
        records.append(source.sample(record_rng))
        specs.append(options.spec(spec_seed))
        generators.append(distortion_generator(spec_seed))
    signal = torch.from_numpy(np.stack([rec.signal for rec in records]))
    batch = options.pipeline(renderer.render(signal, source.fs, specs), generators)
    for meta, rec, key in zip(batch["meta"], records, keys):
        meta["source"] = {"record": rec.name, "path": rec.path, "start_sample": rec.start_sample}
        meta["key"] = list(key)
    return batch


def split_batch(batch: dict) -> list[dict]:
    """Batch dict -> list of per-page dicts (tensors lose the leading dimension)."""
    n = len(batch["meta"])
    return [{key: value[i] for key, value in batch.items()} for i in range(n)]


def collate_pages(samples: Sequence[dict]) -> dict:
    """Collate per-page dicts: tensors are stacked (every target has a fixed shape: points are
    padded to ``[15, T, 2]`` with NaN, boxes to ``[15, 4]``), ``meta`` becomes a list. Pages of
    one batch must share image size and ``T``."""
    out: dict = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else list(values)
    return out


def stream_position() -> tuple[int, int, int, int]:
    """``(rank, world_size, worker, num_workers)`` of the calling process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank, world, worker, workers


class ECGImageDataset(IterableDataset):
    """Synthetic ECG pages on the fly; see the module docstring.

    Args:
        source: signal source (default: embedded real records + neurokit2 simulation).
        layout: ``3x4``, ``3x4_3r``, ``6x2``, ``12x1`` or ``random``.
        preset: distortion preset (``clean``, ``medium``, ``heavy``) or a pipeline config dict.
        dpi, paper: page resolution and size (one image size per stream).
        batch_size: pages per yielded batch; ``None`` yields single pages.
        device: where batches are rendered (batched mode). ``cuda`` renders in the main process:
            use ``num_workers=0``.
        seed: stream seed.
        length: items (batches or pages) per epoch per rank; ``None`` = infinite.
        render: ``False`` (per-sample mode only) yields ``signal``, ``fs`` and ``page_seed`` for
            :class:`PageSynth` instead of rendered pages.
        conventions: ``random`` draws printing conventions per page (the variety of real
            printers); ``standard`` draws every page with the classic convention.
    """

    def __init__(
        self,
        source: SignalSource | None = None,
        layout: str = "random",
        preset: str | dict = "clean",
        dpi: float = 200.0,
        paper: str = "letter",
        batch_size: int | None = 8,
        device: str | torch.device = "cpu",
        seed: int = 0,
        length: int | None = None,
        render: bool = True,
        conventions: str = "random",
    ) -> None:
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive or None, got {batch_size}")
        if not render and batch_size is not None:
            raise ValueError("render=False is a per-sample mode: pass batch_size=None")
        self.source = source or default_source()
        self.options = PageOptions(layout, paper, dpi, preset, conventions)
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.seed = seed
        self.length = length
        self.render = render
        self.epoch = 0
        self.position = 0  # items yielded in this epoch (counted in the iterating process)
        self._start = 0
        self._renderer: Renderer | None = None

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (a new, distinct stream) from its beginning."""
        self.epoch, self.position, self._start = epoch, 0, 0

    def state_dict(self) -> dict:
        """Where the stream stands: ``{"seed", "epoch", "position"}`` (items consumed)."""
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly after ``state["position"]`` items of ``state["epoch"]``. With
        DataLoader workers the iterating process cannot count for you: pass the number of items
        the loop received as ``position``."""
        if state["seed"] != self.seed:
            raise ValueError(f"state is for seed {state['seed']}, this dataset has {self.seed}")
        self.epoch, self.position, self._start = (
            state["epoch"],
            state["position"],
            state["position"],
        )

    def __iter__(self) -> Iterator[dict]:
        rank, _, worker, workers = stream_position()
        if get_worker_info() is not None and self.device.type == "cuda" and self.render:
            raise RuntimeError(
                "ECGImageDataset renders on CUDA in the main process: use num_workers=0, "
                "or device='cpu' with workers"
            )
        if self._renderer is None and self.render:
            self._renderer = Renderer(self.device)
        # worker w yields items start + w, start + w + workers, ...: the DataLoader's round-robin
        # then delivers items in order, and a resumed loader continues with item `start`
        item = self._start + worker
        per_item = self.batch_size or 1
        while self.length is None or item < self.length:
            first = item * per_item
            keys = [(self.seed, self.epoch, rank, first + j) for j in range(per_item)]
            out = self._make(keys)
            if workers == 1:
                self.position = item + 1  # before yielding: state_dict() counts what was received
            yield out
            item += workers

    def _make(self, keys: list[tuple[int, ...]]) -> dict:
        if not self.render:
            record_rng, spec_seed = page_seeds(keys[0])
            return {
                "signal": torch.from_numpy(self.source.sample(record_rng).signal),
                "fs": torch.tensor(float(self.source.fs)),
                "page_seed": torch.tensor(spec_seed, dtype=torch.int64),
            }
        batch = render_pages(self._renderer, self.source, self.options, keys)
        return batch if self.batch_size is not None else split_batch(batch)[0]

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an infinite ECGImageDataset has no length (pass length=...)")
        return self.length


class ECGPageSet(Dataset):
    """``num`` fixed pages for validation/test; page ``i`` depends only on ``(seed, i)``.
    ``conventions`` defaults to ``standard`` (classic pages); ``random`` as in the stream."""

    def __init__(
        self,
        num: int,
        source: SignalSource | None = None,
        layout: str = "random",
        preset: str | dict = "clean",
        dpi: float = 200.0,
        paper: str = "letter",
        seed: int = 0,
        conventions: str = "standard",
    ) -> None:
        self.num = num
        self.seed = seed
        self.source = source or default_source()
        self.options = PageOptions(layout, paper, dpi, preset, conventions)
        self._renderer: Renderer | None = None

    def __len__(self) -> int:
        return self.num

    def key(self, index: int) -> tuple[int, int]:
        """Seed key of page ``index``."""
        if not 0 <= index < self.num:
            raise IndexError(f"page {index} out of range [0, {self.num})")
        return (self.seed, index)

    def __getitem__(self, index: int) -> dict:
        return split_batch(self.render_batch([index]))[0]

    def render_batch(self, indices: Sequence[int], device: str | torch.device = "cpu") -> dict:
        """Render pages ``indices`` together on ``device`` (fast evaluation path)."""
        if self._renderer is None or self._renderer.device != torch.device(device):
            self._renderer = Renderer(device)
        return render_pages(
            self._renderer, self.source, self.options, [self.key(i) for i in indices]
        )


class PageSynth(nn.Module):
    """Renders a collated batch of ``{"signal", "page_seed"}`` (from
    ``ECGImageDataset(batch_size=None, render=False)``) on the batch's device.

    ``forward(batch) -> batch dict`` as in :mod:`ecgsynth.render`.
    """

    def __init__(self, layout: str = "random", preset: str = "clean", dpi: float = 200.0,
                 paper: str = "letter", conventions: str = "random") -> None:  # fmt: skip
        super().__init__()
        self.options = PageOptions(layout, paper, dpi, preset, conventions)
        self._renderer: Renderer | None = None

    def forward(self, batch: dict) -> dict:
        signal = batch["signal"]
        if self._renderer is None or self._renderer.device != signal.device:
            self._renderer = Renderer(signal.device)
        seeds = [int(s) for s in batch["page_seed"].tolist()]
        fs = float(batch["fs"].flatten()[0])
        pages = self._renderer.render(signal, fs, [self.options.spec(s) for s in seeds])
        return self.options.pipeline(pages, [distortion_generator(s) for s in seeds])
