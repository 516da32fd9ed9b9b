"""A distortion pipeline: page effects -> one geometric warp -> camera effects.

Stages follow the physics of a scanned or photographed printout:

1. ``page``: what happens to the paper itself (texture, stains, creases, fading, notes, stamps),
   drawn in clean page coordinates;
2. ``warp``: one :class:`~ecgsynth.distort.geometric.GeometricWarp` (perspective, rotation,
   crop/pad, folds, curl), resampling the image once and moving every target;
3. ``camera``: what happens while capturing (lighting, shadows, blur, noise, colour, JPEG).

Parameters are drawn per page from that page's own ``torch.Generator`` (so a page is identical
whatever batch it is rendered in), then applied batched on the image's device.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import Distortion, params_to_json
from .geometric import GeometricWarp


@dataclass
class Pipeline:
    """``page`` effects, an optional ``warp``, ``camera`` effects (see module docstring)."""

    page: list[Distortion] = field(default_factory=list)
    warp: GeometricWarp | None = None
    camera: list[Distortion] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys = [f"{i}:{e.name}" for i, e in enumerate(self.page + self.camera)]

    @property
    def empty(self) -> bool:
        return not self.page and not self.camera and self.warp is None

    def sample(self, height: int, width: int, generators: Sequence[torch.Generator],
               device: torch.device | str) -> dict[str, dict[str, Tensor]]:  # fmt: skip
        """Draw every stage's parameters, one generator per page: ``{stage key: params}``."""
        stages = list(zip(self._keys, self.page + self.camera))
        if self.warp is not None:
            stages.append(("warp", self.warp))
        per_page = [
            {key: effect.sample(1, height, width, g, "cpu") for key, effect in stages}
            for g in generators
        ]
        return {
            key: {name: torch.cat([p[key][name] for p in per_page]).to(device)
                  for name in per_page[0][key]}
            for key, _ in stages
        }  # fmt: skip

    def apply(self, batch: dict, params: dict[str, dict[str, Tensor]],
              timings: dict[str, float] | None = None) -> dict:  # fmt: skip
        """Apply drawn ``params`` to ``batch`` (returns a new dict). With ``timings``, add each
        stage's wall time (s) under its key, for benchmarks."""
        out = dict(batch)
        n_page = len(self.page)
        steps = [(k, e) for k, e in zip(self._keys[:n_page], self.page)]
        steps += [("warp", self.warp)] if self.warp is not None else []
        steps += [(k, e) for k, e in zip(self._keys[n_page:], self.camera)]
        for key, effect in steps:
            start = time.perf_counter()
            if key == "warp":
                out = effect.apply(out, params[key])
            else:
                out["image"] = effect.apply(out["image"], params[key])
            if timings is not None:
                if out["image"].is_cuda:
                    torch.cuda.synchronize()
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
        return out

    def __call__(self, batch: dict, generators: Sequence[torch.Generator]) -> dict:
        """Sample, apply, and record each page's parameters in ``meta[i]["distortion"]``."""
        image = batch["image"]
        if self.empty:
            eye = torch.eye(3, device=image.device).expand(image.shape[0], 3, 3)
            return {**batch, "homography": eye.clone()}
        params = self.sample(image.shape[-2], image.shape[-1], generators, image.device)
        out = self.apply(batch, params)
        if "homography" not in out:
            out["homography"] = torch.eye(3, device=image.device).expand(image.shape[0], 3, 3)
        out["meta"] = [
            {**meta, "distortion": {k: params_to_json(v, i) for k, v in params.items()}}
            for i, meta in enumerate(batch["meta"])
        ]
        return out
