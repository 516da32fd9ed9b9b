"""Per-pixel extremes over an image's colour channels.

``image.max(axis=2)`` reduces along the innermost, 3-long axis, which numpy does ~9x slower
than an element-wise maximum of the channel planes (0.115 vs 0.013 s on a 200-dpi letter page,
2-core CPU); the grid estimate and the pulse refinement take three such extremes per page.
"""

from __future__ import annotations

import numpy as np


def channel_max(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` -> ``[H, W]``: each pixel's brightest channel (``image.max(axis=2)``)."""
    out = image[..., 0].copy()
    for c in range(1, image.shape[2]):
        np.maximum(out, image[..., c], out=out)
    return out


def channel_min(image: np.ndarray) -> np.ndarray:
    """``[H, W, C]`` -> ``[H, W]``: each pixel's darkest channel (``image.min(axis=2)``)."""
    out = image[..., 0].copy()
    for c in range(1, image.shape[2]):
        np.minimum(out, image[..., c], out=out)
    return out
