"""A distortion pipeline: page effects -> one geometric warp -> camera effects.

Stages follow the physics of a scanned or photographed printout:

1. ``page``: what happens to the paper itself (texture, stains, creases, fading, notes, stamps),
   drawn in clean page coordinates;
2. ``warp``: one :class:`~ecgsynth.distort.geometric.GeometricWarp` (perspective, rotation,
   crop/pad, folds, curl), resampling the image once and moving every target;
3. ``camera``: what happens while capturing (lighting, shadows, blur, noise, colour, JPEG).

Parameters are drawn per page from that page's own ``torch.Generator`` (so a page is identical
whatever batch it is rendered in), then applied batched on the image's device: the page stage
works in place on one copy of the rendered image, the warp writes a new one, and the camera
stage works in place on that (each effect only on the pages that drew it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .base import Distortion, Scratch, params_to_json
from .geometric import GeometricWarp


@dataclass
class Pipeline:
    """``page`` effects, an optional ``warp``, ``camera`` effects (see module docstring).

    With a warp, the page stage works in a buffer the pipeline keeps between calls (the warp
    writes the image that is returned), so a pipeline is not for two threads at once."""

    page: list[Distortion] = field(default_factory=list)
    warp: GeometricWarp | None = None
    camera: list[Distortion] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._keys = [f"{i}:{e.name}" for i, e in enumerate(self.page + self.camera)]
        self._scratch = Scratch()

    @property
    def empty(self) -> bool:
        return not self.page and not self.camera and self.warp is None

    def sample(self, height: int, width: int, generators: Sequence[torch.Generator],
               device: torch.device | str) -> dict[str, dict[str, Tensor]]:  # fmt: skip
        """Draw every stage's parameters, one generator per page: ``{stage key: params}``."""
        return _to(self._draw(height, width, generators), device)

    def _draw(self, height: int, width: int, generators: Sequence[torch.Generator]
              ) -> dict[str, dict[str, Tensor]]:  # fmt: skip
        """:meth:`sample` on the CPU."""
        stages = list(zip(self._keys, self.page + self.camera))
        if self.warp is not None:
            stages.append(("warp", self.warp))
        per_page = [
            {key: effect.sample(1, height, width, g, "cpu") for key, effect in stages}
            for g in generators
        ]
        return {
            key: {name: torch.cat([p[key][name] for p in per_page]) for name in per_page[0][key]}
            for key, _ in stages
        }

    def apply(self, batch: dict, params: dict[str, dict[str, Tensor]],
              timings: dict[str, float] | None = None) -> dict:  # fmt: skip
        """Apply drawn ``params`` to ``batch`` (returns a new dict; ``batch`` is not changed).
        With ``timings``, add each stage's wall time (s) under its key, for benchmarks."""
        out = dict(batch)
        n_page = len(self.page)
        steps = [(k, e) for k, e in zip(self._keys[:n_page], self.page)]
        steps += [("warp", self.warp)] if self.warp is not None else []
        steps += [(k, e) for k, e in zip(self._keys[n_page:], self.camera)]
        owned = False  # whether out["image"] is ours to change in place
        for key, effect in steps:
            start = time.perf_counter()
            if key == "warp":
                out = effect.apply(out, params[key])  # new tensors
                owned = True
            else:
                if not owned:
                    out["image"], owned = self._working_copy(out["image"]), True
                out["image"] = effect.apply_(out["image"], params[key])
            if timings is not None:
                if out["image"].is_cuda:
                    torch.cuda.synchronize()
                timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
        return out

    def _working_copy(self, image: Tensor) -> Tensor:
        """A copy of ``image`` to change in place: before a warp (which writes the image that is
        returned), a buffer kept between calls."""
        if self.warp is None:
            return image.clone()
        return self._scratch.get("page", image).copy_(image)

    def __call__(self, batch: dict, generators: Sequence[torch.Generator]) -> dict:
        """Sample, apply, and record each page's parameters in ``meta[i]["distortion"]``."""
        image = batch["image"]
        if self.empty:
            eye = torch.eye(3, device=image.device).expand(image.shape[0], 3, 3)
            return {**batch, "homography": eye.clone()}
        drawn = self._draw(image.shape[-2], image.shape[-1], generators)
        out = self.apply(batch, _to(drawn, image.device))
        if "homography" not in out:
            out["homography"] = torch.eye(3, device=image.device).expand(image.shape[0], 3, 3)
        out["meta"] = [  # from the CPU copy: no device round trip per value
            {**meta, "distortion": {k: params_to_json(v, i) for k, v in drawn.items()}}
            for i, meta in enumerate(batch["meta"])
        ]
        return out


def _to(params: dict[str, dict[str, Tensor]], device: torch.device | str
        ) -> dict[str, dict[str, Tensor]]:  # fmt: skip
    return {key: {name: v.to(device) for name, v in p.items()} for key, p in params.items()}
