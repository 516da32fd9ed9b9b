"""ecgsynth: synthetic paper-ECG pages with exact ground truth, batched on any torch device.

Start with :class:`ECGImageDataset` (training streams), :class:`ECGPageSet` (fixed validation
pages) or :class:`Renderer` (signals + page specs -> batch dict). Needs neither Lightning nor Hydra.

The datasets (with kornia's distortions) and the torchvision view are imported on first use
(PEP 562): ``import ecgsynth.layout``, as the digitizer does, loads neither (1.2 s of start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .layout import LAYOUTS, LEADS, NUM_CHANNELS, PrintConvention
from .render import Renderer, lead_masks
from .sources import (
    ArraySource,
    ECGRecord,
    LowpassSource,
    MixedSource,
    RecordError,
    SignalSource,
    SyntheticSource,
    WfdbSource,
    default_source,
)
from .spec import PageSpec, PageStyle, sample_convention, sample_page_spec

if TYPE_CHECKING:
    from .dataset import ECGImageDataset, ECGPageSet, PageOptions, PageSynth, collate_pages
    from .views import to_tv_tensors

# name -> the submodule that defines it, imported when the name is first asked for
_LAZY = {
    **dict.fromkeys(
        ("ECGImageDataset", "ECGPageSet", "PageOptions", "PageSynth", "collate_pages"), "dataset"
    ),
    "to_tv_tensors": "views",
}

__all__ = [
    "LAYOUTS",
    "LEADS",
    "NUM_CHANNELS",
    "ArraySource",
    "ECGImageDataset",
    "ECGPageSet",
    "ECGRecord",
    "LowpassSource",
    "MixedSource",
    "PageOptions",
    "PageSpec",
    "PageStyle",
    "PageSynth",
    "PrintConvention",
    "RecordError",
    "Renderer",
    "SignalSource",
    "SyntheticSource",
    "WfdbSource",
    "collate_pages",
    "default_source",
    "lead_masks",
    "sample_convention",
    "sample_page_spec",
    "to_tv_tensors",
]


def __getattr__(name: str) -> Any:
    """Import the submodule of a lazily exported ``name`` and keep the name here."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
