"""Page specifications: what one page looks like (layout, paper, scale, colours, text), drawn on
the CPU from a ``numpy.random.Generator``. Cheap (~50 µs a page); the renderer turns a list of
these plus a signal batch into pixels on any device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .layout import LAYOUTS, PAPER_SIZES_MM, canonical_layout
from .text import PRINTED_FACES

RGB = tuple[float, float, float]

# (minor, major) grid colours of common ECG papers
GRID_SCHEMES: dict[str, tuple[RGB, RGB]] = {
    "red": ((1.00, 0.76, 0.76), (0.94, 0.42, 0.42)),
    "pink": ((0.99, 0.86, 0.90), (0.93, 0.58, 0.70)),
    "green": ((0.76, 0.91, 0.78), (0.40, 0.74, 0.47)),
    "blue": ((0.78, 0.86, 0.98), (0.44, 0.60, 0.90)),
    "grey": ((0.86, 0.86, 0.86), (0.62, 0.62, 0.62)),
    "black": ((0.72, 0.72, 0.72), (0.35, 0.35, 0.35)),
}
GRID_STYLES = ("lines", "dots", "none")


@dataclass(frozen=True)
class PageStyle:
    """Colours (RGB in [0, 1]), line widths (mm) and text settings of a page."""

    paper_color: RGB = (1.0, 1.0, 1.0)
    grid: str = "lines"  # lines | dots (1 mm dots, 5 mm lines) | none
    grid_scheme: str = "red"
    grid_minor_color: RGB = GRID_SCHEMES["red"][0]
    grid_major_color: RGB = GRID_SCHEMES["red"][1]
    grid_minor_width_mm: float = 0.10
    grid_major_width_mm: float = 0.20
    ink_color: RGB = (0.0, 0.0, 0.0)
    line_width_mm: float = 0.25
    text_color: RGB = (0.0, 0.0, 0.0)
    face: int = 0  # index into ecgsynth.text.FACES
    label_cap_mm: float = 2.5
    header_cap_mm: float = 2.2
    pulses: bool = True
    separators: bool = True
    labels: bool = True


@dataclass(frozen=True)
class PageSpec:
    """Everything needed to draw one page, except the signal."""

    layout: str = "3x4"
    paper: str = "letter"
    dpi: float = 200.0
    paper_speed: float = 25.0  # mm/s
    gain: float = 10.0  # mm/mV
    grid_extent: str = "page"  # page | plot
    style: PageStyle = field(default_factory=PageStyle)
    header: tuple[str, ...] = ()
    footer: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return asdict(self)


def sample_page_spec(
    rng: np.random.Generator,
    layout: str = "random",
    paper: str = "letter",
    dpi: float = 200.0,
    paper_speed: float | tuple[float, ...] = 25.0,
    gain: float | tuple[float, ...] = 10.0,
    vary_style: bool = True,
) -> PageSpec:
    """Draw a page spec.

    Args:
        rng: the stream's generator (the only source of randomness).
        layout: a layout name or ``random`` (uniform over :data:`ecgsynth.layout.LAYOUTS`).
        paper, dpi: fixed per batch, since a batch shares one image size.
        paper_speed, gain: a value or a tuple to choose from uniformly.
        vary_style: draw colours, widths, fonts and header text; ``False`` gives the standard
            red-grid style with a drawn header.
    """
    if paper not in PAPER_SIZES_MM:
        raise ValueError(f"unknown paper {paper!r}; choose one of {sorted(PAPER_SIZES_MM)}")
    if not 50 <= dpi <= 600:
        raise ValueError(f"dpi must be in [50, 600], got {dpi}")
    name = str(rng.choice(sorted(LAYOUTS))) if layout == "random" else canonical_layout(layout)
    speed = float(rng.choice(paper_speed)) if isinstance(paper_speed, tuple) else paper_speed
    gain_ = float(rng.choice(gain)) if isinstance(gain, tuple) else gain
    style = sample_style(rng) if vary_style else PageStyle()
    extent = str(rng.choice(["page", "plot"], p=[0.7, 0.3])) if vary_style else "page"
    header, footer = sample_header(rng, speed, gain_)
    return PageSpec(name, paper, float(dpi), speed, gain_, extent, style, header, footer)


def sample_style(rng: np.random.Generator) -> PageStyle:
    """Draw a plausible printer/paper style."""
    scheme = str(rng.choice(list(GRID_SCHEMES)))
    minor, major = GRID_SCHEMES[scheme]
    jitter = rng.uniform(-0.04, 0.04, size=3)
    minor = _clip_rgb(np.add(minor, jitter))
    major = _clip_rgb(np.add(major, jitter))
    paper = _clip_rgb(1.0 - rng.uniform(0.0, 0.06) - rng.uniform(0.0, 0.02, size=3))
    dark = rng.uniform(0.0, 0.25)
    ink = _clip_rgb(dark + rng.uniform(-0.05, 0.05, size=3) + [0.0, 0.0, rng.uniform(0, 0.2)])
    grid = str(rng.choice(GRID_STYLES, p=[0.8, 0.12, 0.08]))
    return replace(
        PageStyle(),
        paper_color=paper,
        grid=grid,
        grid_scheme=scheme,
        grid_minor_color=minor,
        grid_major_color=major,
        grid_minor_width_mm=float(rng.uniform(0.05, 0.15)),
        grid_major_width_mm=float(rng.uniform(0.12, 0.3)),
        ink_color=ink,
        line_width_mm=float(rng.uniform(0.15, 0.45)),
        text_color=_clip_rgb(rng.uniform(0.0, 0.2) + np.zeros(3)),
        face=int(rng.choice(PRINTED_FACES)),
        label_cap_mm=float(rng.uniform(1.8, 3.5)),
        header_cap_mm=float(rng.uniform(1.6, 2.8)),
        pulses=bool(rng.random() < 0.9),
        separators=bool(rng.random() < 0.7),
        labels=bool(rng.random() < 0.97),
    )


_SYLLABLES = ("ka", "lo", "mer", "sen", "ta", "vin", "dor", "el", "ri", "son", "ba", "mi", "ne")


def _made_up_name(rng: np.random.Generator, parts: int) -> str:
    return "".join(rng.choice(_SYLLABLES, size=parts)).capitalize()


def sample_header(
    rng: np.random.Generator, speed: float, gain: float
) -> tuple[tuple[str, ...], str]:
    """Made-up patient/measurement header lines and the footer with speed and gain."""
    hr = int(rng.integers(45, 120))
    qt = int(rng.integers(320, 460))
    qtc = int(qt / np.sqrt(60.0 / hr))
    age = int(rng.integers(18, 95))
    date = f"{rng.integers(1995, 2025)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
    clock = f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"
    name = f"{_made_up_name(rng, 3).upper()}, {_made_up_name(rng, 2)}"
    lines = (
        f"{name}   ID: {rng.integers(10**7, 10**8)}   {age} yr   "
        f"{rng.choice(['Male', 'Female'])}   {date} {clock}",
        f"Vent. rate {hr} BPM   PR interval {rng.integers(110, 220)} ms   "
        f"QRS duration {rng.integers(70, 130)} ms   QT/QTc {qt}/{qtc} ms",
        f"P-R-T axes {rng.integers(-30, 90)} {rng.integers(-60, 120)} {rng.integers(-30, 90)}   "
        f"Room {rng.integers(1, 40)}{rng.choice(list('ABCD'))}   Loc {rng.integers(1, 20)}",
    )
    footer = (
        f"{speed:g} mm/s   {gain:g} mm/mV   0.05-{rng.choice([40, 100, 150])} Hz   "
        f"{rng.choice([50, 60])} Hz   ECG-{rng.integers(100, 999)}"
    )
    return lines, footer


def _clip_rgb(value: np.ndarray | list[float]) -> RGB:
    r, g, b = (float(v) for v in np.clip(np.asarray(value, dtype=float), 0.0, 1.0))
    return (r, g, b)
