"""Page specifications: what one page looks like (layout, paper, scale, colours, text, printing
convention), drawn on the CPU from a ``numpy.random.Generator``. Cheap (< 1 ms a page); the
renderer turns a list of these plus a signal batch into pixels on any device.

Two kinds of variety: :func:`sample_style` draws paper, ink, grid and fonts (the classic draw,
unchanged since the first release), and :func:`sample_convention` draws how the printer arranges
the page (:class:`~ecgsynth.layout.PrintConvention`) plus the printer-specific ink and grid
looks (trace widths 0.5-3 px at 200 dpi, heavy or trace-dark grids). ``sample_page_spec(...,
conventions="standard")`` gives the classic pages; ``"random"`` (the training stream) adds the
convention draws from a twin of the page generator, so the rest of the page stays what
``"standard"`` draws from the same generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .layout import (
    HEADER_PLACEMENTS,
    LABEL_PLACEMENTS,
    LAYOUTS,
    PAPER_SIZES_MM,
    PULSE_PLACEMENTS,
    SEPARATOR_STYLES,
    PrintConvention,
    canonical_layout,
    trace_room_mm,
)
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
    # heavy printer grids (drawn with wide major lines by sample_convention)
    "heavy_black": ((0.55, 0.55, 0.55), (0.05, 0.05, 0.05)),
    "heavy_grey": ((0.70, 0.70, 0.70), (0.30, 0.30, 0.30)),
    "heavy_brown": ((0.85, 0.72, 0.60), (0.45, 0.25, 0.10)),
    "heavy_blue": ((0.66, 0.76, 0.92), (0.10, 0.25, 0.65)),
}
CLASSIC_SCHEMES = ("red", "pink", "green", "blue", "grey", "black")  # what sample_style draws
HEAVY_SCHEMES = ("heavy_black", "heavy_grey", "heavy_brown", "heavy_blue")
GRID_STYLES = ("lines", "dots", "none")
CONVENTIONS = ("standard", "random")
WINDOW_S = 10.0  # what a page row shows at 25 mm/s: the clinical 10 s (4 x 2.5 s on a 3x4 row)
MIN_MARGIN_MM = 1.0


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
    label_face: int | None = None  # face of the lead labels (None: ``face``)
    label_cap_mm: float = 2.5
    header_cap_mm: float = 2.2
    # switches over the convention: False hides what the convention places
    pulses: bool = True
    separators: bool = True
    labels: bool = True


@dataclass(frozen=True)
class PageSpec:
    """Everything needed to draw one page, except the signal. ``convention`` places pulses,
    panels, marks, labels and text (see :class:`~ecgsynth.layout.PrintConvention`)."""

    layout: str = "3x4"
    paper: str = "letter"
    dpi: float = 200.0
    paper_speed: float = 25.0  # mm/s
    gain: float = 10.0  # mm/mV
    grid_extent: str = "page"  # page | plot
    style: PageStyle = field(default_factory=PageStyle)
    header: tuple[str, ...] = ()
    footer: str = ""
    convention: PrintConvention = field(default_factory=PrintConvention)

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
    conventions: str = "random",
) -> PageSpec:
    """Draw a page spec.

    Args:
        rng: the stream's generator (the only source of randomness).
        layout: a layout name or ``random`` (uniform over :data:`ecgsynth.layout.LAYOUTS`).
        paper, dpi: fixed per batch, since a batch shares one image size.
        paper_speed, gain: a value or a tuple to choose from uniformly.
        vary_style: draw colours, widths, fonts and header text; ``False`` gives the standard
            red-grid style with a drawn header.
        conventions: ``random`` also draws the printing convention and printer looks
            (:func:`sample_convention`) from a twin of ``rng`` (``rng`` advances exactly as
            with ``standard``); ``standard`` keeps the classic convention.
    """
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions must be one of {CONVENTIONS}, not {conventions!r}")
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
    spec = PageSpec(name, paper, float(dpi), speed, gain_, extent, style, header, footer)
    if conventions == "standard":
        return spec
    convention, style = sample_convention(_twin(rng), name, style, paper, speed)
    return replace(spec, style=style, convention=convention)


def _twin(rng: np.random.Generator) -> np.random.Generator:
    """A generator seeded from ``rng``'s next draw without advancing ``rng``."""
    twin = np.random.Generator(type(rng.bit_generator)(0))
    twin.bit_generator.state = rng.bit_generator.state
    return np.random.default_rng(np.random.SeedSequence([int(twin.integers(2**63)), 0xC0417]))


def sample_style(rng: np.random.Generator) -> PageStyle:
    """Draw a plausible printer/paper style."""
    scheme = str(rng.choice(list(CLASSIC_SCHEMES)))
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


def sample_convention(
    rng: np.random.Generator,
    layout: str,
    style: PageStyle | None = None,
    paper: str = "letter",
    paper_speed: float = 25.0,
) -> tuple[PrintConvention, PageStyle]:
    """Draw how a printer arranges a page of ``layout`` and how its ink and grid look.

    Returns the convention and ``style`` (default :class:`PageStyle`) with printer-specific
    changes: trace width 0.5-3 px at 200 dpi (it scales with dpi), sometimes a heavy black,
    dark grey, brown or blue grid or a grid as dark as the trace, label font and size. Text
    bands are sized to the style's text, so header, footer and rows never overlap; where labels
    sit left of the trace, the gaps leave room for them. Margins, gaps and pulse shrink until
    10 s fit on ``paper`` at ``paper_speed`` (the clinical windows: 4 x 2.5 s on a 3x4 row);
    where even the plainest page cannot hold them (50 mm/s), they are left as drawn.
    """
    style = style if style is not None else PageStyle()
    style = _printer_looks(rng, style)
    pulse = str(rng.choice(PULSE_PLACEMENTS, p=[0.55, 0.15, 0.1, 0.2]))
    pulse = pulse if style.pulses else "none"
    width_s = 0.2 if rng.random() < 0.4 else float(rng.uniform(0.1, 0.2))
    pulse_gap = float(rng.uniform(0.0, 5.0))
    if pulse in ("start", "first_row"):
        t0 = "pulse" if rng.random() < 0.7 else "inset"
    else:
        t0 = "edge" if rng.random() < 0.6 else "inset"
    inset = float(rng.uniform(1.0, 6.0)) if t0 == "inset" else 0.0
    separators = str(rng.choice(SEPARATOR_STYLES, p=[0.45, 0.25, 0.3]))
    separators = separators if style.separators else "none"
    panel_gap = 0.0 if rng.random() < 0.7 else float(rng.uniform(1.0, 8.0))
    labels = str(rng.choice(LABEL_PLACEMENTS, p=[0.6, 0.2, 0.2]))
    if labels == "left":  # room for "aVR" left of every first sample
        style = replace(style, label_cap_mm=min(style.label_cap_mm, 2.8))
        room = 3.3 * style.label_cap_mm + 1.5
        panel_gap = max(panel_gap, room)
        if t0 == "pulse":
            pulse_gap = max(pulse_gap, room)
        else:
            t0, inset = "inset", max(inset, room)
    crop = bool(rng.random() < 0.12)
    margin = float(rng.uniform(0.0, 4.0) if crop else rng.uniform(3.0, 12.0))
    header = str(rng.choice(HEADER_PLACEMENTS, p=[0.6, 0.15, 0.25]))
    footer_choices, footer_p = (("bottom", "none"), [0.7, 0.3]) if header == "top" else (
        ("bottom", "top", "none"), [0.5, 0.3, 0.2])  # fmt: skip
    footer = str(rng.choice(footer_choices, p=footer_p))
    cap = style.header_cap_mm
    header_h = 5.6 * cap  # three lines 2 caps apart, with descenders
    top = margin + {"top": header_h, "none": 0.0}.get(header, 0.0)
    top += 6.0 if footer == "top" else 0.0
    bottom = margin + (1.0 + header_h if header == "bottom" else 0.0)
    bottom += 2.0 + cap if footer == "bottom" else 0.0
    room_left = 3.3 * style.label_cap_mm + 1.5 if labels == "left" else 0.0
    convention = PrintConvention(
        pulse=pulse,
        pulse_width_s=width_s,
        pulse_gap_mm=pulse_gap,
        t0=t0,
        t0_inset_mm=inset,
        separators=separators,
        panel_gap_mm=panel_gap,
        labels=labels,
        rhythm=_sample_rhythm(rng, layout),
        margin_mm=margin,
        top_mm=top + float(rng.uniform(0.5, 6.0)),
        bottom_mm=bottom + float(rng.uniform(0.5, 5.0)),
        header=header,
        footer=footer,
        crop_to_grid=crop,
    )
    return _fit_width(convention, layout, paper, paper_speed, room_left), style


def _fit_width(
    conv: PrintConvention, layout: str, paper: str, speed: float, label_room: float
) -> PrintConvention:
    """Narrow the margin, then the blank gaps, then the pulse, until 10 s fit in a row."""
    need = WINDOW_S * speed

    def room(c: PrintConvention) -> float:
        return trace_room_mm(layout, paper, speed, c)

    no_blanks = {"pulse_gap_mm": 0.0, "t0_inset_mm": 0.0, "panel_gap_mm": 0.0}
    plainest = replace(conv, margin_mm=MIN_MARGIN_MM, pulse_width_s=0.1, **no_blanks)
    if room(conv) >= need or room(plainest) < need:
        return conv  # fits already, or never can (50 mm/s: the page shows less time by design)
    margin = max(MIN_MARGIN_MM, conv.margin_mm - 0.5 * (need - room(conv)) - 1e-6)
    conv = replace(conv, margin_mm=margin)
    short = need - room(conv)
    if short > 0:
        blanks = room(replace(conv, **no_blanks)) - room(conv)
        keep = max(0.0, 1.0 - (short + 1e-6) / blanks) if blanks > 0 else 0.0
        conv = replace(
            conv,
            pulse_gap_mm=keep * conv.pulse_gap_mm,
            t0_inset_mm=keep * conv.t0_inset_mm,
            panel_gap_mm=keep * conv.panel_gap_mm,
        )
        first = conv.t0_inset_mm if conv.t0 == "inset" else conv.pulse_gap_mm
        if conv.labels == "left" and min(first, conv.panel_gap_mm) < label_room:
            conv = replace(conv, labels="above")  # no room left of the traces any more
    if room(conv) < need:
        conv = replace(conv, pulse_width_s=0.1)
    return conv


def _sample_rhythm(rng: np.random.Generator, layout: str) -> tuple[str, ...] | None:
    """Rhythm strips of the 3x4 family (0-3, 3x4 without a strip is common), 6x2 (0-1)."""
    if layout in ("3x4", "3x4_3r"):
        options = ((), ("II",), ("V1",), ("II", "V5"), ("V1", "II"), ("II", "V1", "V5"))
        return options[int(rng.choice(len(options), p=[0.25, 0.35, 0.05, 0.06, 0.04, 0.25]))]
    if layout == "6x2":
        return ("II",) if rng.random() < 0.25 else ()
    return None


def _printer_looks(rng: np.random.Generator, style: PageStyle) -> PageStyle:
    """Trace width, heavy or trace-dark grids, label font and size (see sample_convention)."""
    px_200dpi = 25.4 / 200.0  # mm per pixel at 200 dpi
    changes: dict = {
        "line_width_mm": float(rng.uniform(0.5, 3.0)) * px_200dpi,
        "label_cap_mm": float(rng.uniform(1.5, 4.0)),
        "label_face": int(rng.choice(PRINTED_FACES)) if rng.random() < 0.5 else None,
    }
    look = rng.random()
    if look < 0.3:  # a heavy printer grid
        scheme = str(rng.choice(HEAVY_SCHEMES))
        minor, major = GRID_SCHEMES[scheme]
        jitter = rng.uniform(-0.04, 0.04, size=3)
        changes.update(
            grid_scheme=scheme,
            grid_minor_color=_clip_rgb(np.add(minor, jitter)),
            grid_major_color=_clip_rgb(np.add(major, jitter)),
            grid_minor_width_mm=float(rng.uniform(0.06, 0.18)),
            grid_major_width_mm=float(rng.uniform(0.25, 0.55)),
        )
    elif look < 0.4:  # the grid as dark as the trace
        ink = np.asarray(style.ink_color)
        changes.update(
            grid_scheme="as_ink",
            grid_minor_color=_clip_rgb(ink + 0.35 * (np.asarray(style.paper_color) - ink)),
            grid_major_color=style.ink_color,
            grid_minor_width_mm=float(rng.uniform(0.06, 0.15)),
            grid_major_width_mm=float(rng.uniform(0.15, 0.4)),
        )
    return replace(style, **changes)


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
