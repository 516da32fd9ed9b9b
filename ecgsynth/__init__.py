"""ecgsynth: synthetic paper-ECG pages with exact ground truth, batched on any torch device.

Start with :class:`ECGImageDataset` (training streams), :class:`ECGPageSet` (fixed validation
pages) or :class:`Renderer` (signals + page specs -> batch dict). Needs neither Lightning nor Hydra.
"""

from .dataset import ECGImageDataset, ECGPageSet, PageOptions, PageSynth, collate_pages
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
from .views import to_tv_tensors

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
