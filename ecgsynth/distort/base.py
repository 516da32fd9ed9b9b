"""The distortion contract: draw parameters first, apply them second.

Every distortion is a small object with two methods:

* ``sample(batch, height, width, generator, device) -> dict[str, Tensor]`` draws all random
  parameters for a batch (every tensor has a leading batch dimension ``B``) from the given
  ``torch.Generator`` only (never the global RNG), and
* ``apply(image, params) -> image`` is deterministic given ``params``: ``image`` is float32
  ``[B, 3, H, W]`` in [0, 1] and the result has the same shape and range.

So a pipeline can be replayed exactly (``apply`` with recorded ``params``), parameters can be
written to JSON (:func:`params_to_json`), and the same seed gives the same pages on every
device. ``strength`` in [0, 1] scales how strong the drawn effects are; ``p`` is the probability
that a page gets the effect at all (a per-page ``active`` flag in ``params``).

Photometric distortions only change pixel values, so every target (masks, points, boxes) stays
valid. Geometric ones are handled by :mod:`ecgsynth.distort.geometric`, which moves targets too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Distortion:
    """Base class; subclasses implement :meth:`draw` and :meth:`apply`."""

    p: float = 1.0  # probability that a page gets this effect
    strength: float = 0.5  # 0 = none, 1 = the strongest plausible

    name: str = "distortion"

    def sample(
        self, batch: int, height: int, width: int, generator: torch.Generator, device: torch.device
    ) -> dict[str, Tensor]:
        """Draw the parameters of ``batch`` pages (adds the per-page ``active`` flag)."""
        active = torch.rand(batch, generator=generator) < self.p
        params = self.draw(batch, height, width, generator)
        params["active"] = active
        return {k: v.to(device) for k, v in params.items()}

    def draw(self, batch: int, height: int, width: int, generator: torch.Generator) -> dict:
        """Draw effect-specific parameters on the CPU (``[B, ...]`` tensors)."""
        raise NotImplementedError

    def apply(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Apply to ``image`` ``[B, 3, H, W]`` where ``params['active']``; returns a new image."""
        raise NotImplementedError


def blend_active(original: Tensor, changed: Tensor, active: Tensor) -> Tensor:
    """Keep ``original`` for pages whose ``active`` flag is False."""
    return torch.where(active.view(-1, 1, 1, 1), changed, original)


def params_to_json(params: dict[str, Tensor], index: int) -> dict:
    """Parameters of page ``index`` as JSON-ready lists (large fields summarised)."""
    out = {}
    for key, value in params.items():
        v = value[index]
        if v.numel() > 4096:
            out[key] = {"shape": list(v.shape), "mean": float(v.float().mean())}
        else:
            out[key] = v.tolist()
    return out
