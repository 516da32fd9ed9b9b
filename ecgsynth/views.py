"""torchvision ``tv_tensors`` view of one page, so ``transforms.v2`` pipelines move the targets
with the image.

``to_tv_tensors(sample)`` takes a per-page dict (from ``ECGImageDataset(batch_size=None)``,
``ECGPageSet[i]`` or :func:`ecgsynth.dataset.split_batch`) and returns:

===============  ============================================  ===============================
key              type, shape                                   note
===============  ============================================  ===============================
``image``        ``Image`` float ``[3, H, W]``
``mask``         ``Mask`` uint8 ``[H, W]``                     class map (0 = background)
``lead_masks``   ``Mask`` bool ``[15, H, W]``                  only with ``lead_masks=True``
``boxes``        ``BoundingBoxes`` XYXY ``[K, 4]``             the page's ``K`` panels
``points``       ``KeyPoints`` ``[15, T, 2]``                  NaN where not plotted
``box_channel``  long ``[K]``                                  channel of each box
===============  ============================================  ===============================

``mask_bits`` is dropped (a plain tensor would not follow the transforms: use ``lead_masks``);
everything else (``signal``, ``meta``, ...) is passed through unchanged.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from .render import lead_masks as unpack_lead_masks


def to_tv_tensors(sample: dict, lead_masks: bool = False) -> dict:
    """Wrap one page's targets as ``tv_tensors`` (see the module docstring)."""
    image = sample["image"]
    if image.dim() != 3:
        raise ValueError(f"to_tv_tensors takes one page ([3, H, W]), got {tuple(image.shape)}")
    size = tuple(image.shape[-2:])
    present = torch.isfinite(sample["boxes"][:, 0])
    out = {k: v for k, v in sample.items() if k != "mask_bits"}
    out["image"] = tv_tensors.Image(image)
    out["mask"] = tv_tensors.Mask(sample["mask"])
    out["boxes"] = tv_tensors.BoundingBoxes(
        sample["boxes"][present], format="XYXY", canvas_size=size
    )
    out["box_channel"] = torch.nonzero(present)[:, 0]
    out["points"] = tv_tensors.KeyPoints(sample["points"], canvas_size=size)
    if lead_masks:
        out["lead_masks"] = tv_tensors.Mask(unpack_lead_masks(sample["mask_bits"]))
    return out
