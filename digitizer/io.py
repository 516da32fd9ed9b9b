"""File I/O of the digitizer: images in (safely), WFDB records out.

Images are decoded with Pillow, which reads the header first: the pixel count is checked against
:data:`MAX_PIXELS` *before* any pixel is decoded, so a decompression bomb is refused cheaply.
Every problem becomes an :class:`ImageError` that names the file.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ecgsynth.export import write_wfdb

MAX_PIXELS = 60_000_000  # 300 dpi A3 is ~17 MP; anything far above is refused before decoding
MIN_SIDE = 64  # an ECG page smaller than this cannot be read


class ImageError(ValueError):
    """An image file that cannot be digitized; ``str(err)`` is ``"<path>: <problem>"``."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a PNG/JPEG/any Pillow image as RGB ``uint8 [H, W, 3]``.

    Greyscale, palette, 16-bit and CMYK images are converted; transparency is composited onto
    white paper.

    Raises:
        ImageError: missing, empty, unreadable, truncated, too small or too large (more than
            ``max_pixels`` pixels, refused from the header before decoding).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageError(path, "empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we apply our own limit, from the header
            try:
                with Image.open(path) as im:
                    w, h = im.size
                    if w * h > max_pixels:
                        raise ImageError(
                            path,
                            f"{w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
                            "(refused before decoding; raise max_pixels if this is intended)",
                        )
                    if min(w, h) < MIN_SIDE:
                        raise ImageError(path, f"{w}x{h} is too small for an ECG page")
                    im.load()
                    rgb = _to_rgb(im)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(path, "not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated data, bad chunks
        raise ImageError(path, f"cannot decode image ({err})") from None
    return rgb


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``uint8 [H, W, 3]`` (alpha composited onto white)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if a.size and a.max() > 255 else 255.0  # 16-bit or 8-bit values
        g = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


def write_record(stem: str | os.PathLike, signal: np.ndarray, fs: float,
                 comments: list[str] | None = None) -> None:  # fmt: skip
    """Write a digitized record: ``signal`` ``[12, T]`` mV (NaN = not shown on the page) as
    ``stem.hea`` + ``stem.dat`` with the 12 standard lead names, units mV, format 16 (1 µV),
    and ``comments`` as header comment lines (``# ...``).

    NaN samples are stored as WFDB's invalid-sample value and read back as NaN.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    sig = np.asarray(signal, dtype=np.float64)
    # format 16 at 1 µV holds ±32.7 mV; clip the (implausible) rest instead of wrapping around
    sig = np.clip(sig, -32.0, 32.0)
    write_wfdb(stem, sig, fs)
    if comments:
        with open(stem.with_suffix(".hea"), "a", encoding="utf-8") as f:
            f.writelines(f"# {line.replace(chr(10), ' ')}\n" for line in comments)


def write_report(stem: str | os.PathLike, report: dict) -> Path:
    """Write ``stem.json``: how the page was read (layout, per-lead confidence, warnings)."""
    path = Path(stem).with_suffix(".json")
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return path


def header_comments(report: dict) -> list[str]:
    """Header comment lines of a digitized record: layout and per-lead confidence."""
    conf = " ".join(f"{d['name']}={d['confidence']:.2f}" for d in report["leads"])
    return [
        f"digitized: layout {report['layout']}, read from {report['source']}",
        f"confidence: {conf}",
        f"confidence threshold: {report['confidence_threshold']} (leads under it are NaN "
        "unless --keep-uncertain)",
    ]
