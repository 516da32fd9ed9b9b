"""The distortion contract: draw parameters first, apply them second.

Every distortion is a small object with two methods:

* ``sample(batch, height, width, generator, device) -> dict[str, Tensor]`` draws all random
  parameters for a batch (every tensor has a leading batch dimension ``B``) from the given
  ``torch.Generator`` only (never the global RNG), and
* ``apply(image, params) -> image`` is deterministic given ``params``: ``image`` is float32
  ``[B, 3, H, W]`` in [0, 1] and the result has the same shape and range. ``apply_`` does the
  same in place (the pipeline's path: no full-size allocation per effect), and an effect only
  computes on the pages that drew it.

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
    """Base class; subclasses implement :meth:`draw` and :meth:`_apply_` (or :meth:`apply_`
    when they pick their pages themselves)."""

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
        """Apply to a copy of ``image`` ``[B, 3, H, W]`` (``image`` itself when no page is
        active)."""
        if not bool(params["active"].any()):
            return image
        return self.apply_(image.clone(), params)

    def apply_(self, image: Tensor, params: dict[str, Tensor]) -> Tensor:
        """Apply in place to the pages of ``image`` ``[B, 3, H, W]`` whose ``active`` flag is
        set, and return it: :meth:`_apply_` runs on those pages only, with their parameters."""
        active = params["active"].cpu()
        if not bool(active.any()):
            return image
        if bool(active.all()):
            return self._apply_(image, params, None)
        pages = active.nonzero().flatten().to(image.device)
        return self._apply_(image, {k: v[pages] for k, v in params.items()}, pages)

    def _apply_(self, image: Tensor, params: dict[str, Tensor], pages: Tensor | None) -> Tensor:
        """Change ``image[pages]`` in place (every page when ``pages`` is None); ``params`` hold
        the ``S = len(pages)`` selected pages only (all active)."""
        raise NotImplementedError


class Scratch:
    """Named buffers reused from call to call: on the CPU every fresh full-size batch tensor
    costs page faults (~20 ms per 200-dpi page), more than most effects compute. Holds the
    memory between calls; not for use by two threads at once."""

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, like: Tensor, shape: tuple[int, ...] | None = None) -> Tensor:
        """A buffer of ``like``'s dtype and device and ``shape`` (default ``like.shape``);
        contents undefined."""
        shape = tuple(like.shape) if shape is None else shape
        buf = self._buffers.get(name)
        if buf is None or (buf.shape, buf.dtype, buf.device) != (shape, like.dtype, like.device):
            buf = self._buffers[name] = like.new_empty(shape)
        return buf


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
