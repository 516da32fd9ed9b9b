"""Page geometry of a printed 12-lead ECG: pure millimetres, no pixels, no randomness.

A page is a list of :class:`Panel` s (one lead over one time window), calibration pulses, lead
separators, label anchors and the grid rectangle, all in millimetres from the page's top-left
corner (x to the right, y down). :func:`mm_to_px` turns them into pixel coordinates with the
convention used everywhere in ``ecgsynth``: pixel ``(i, j)`` has its centre at ``x = j, y = i``
and covers ``[j - 0.5, j + 0.5)``, so the page's left edge is ``x = -0.5``.

Channels: every page has :data:`NUM_CHANNELS` (= 15) trace slots. Channels 0-11 hold the
standard leads in their short panels (channel ``k`` is lead ``LEADS[k]``; on a 12x1 page the
"short" panel spans the whole 10 s), channels 12-14 hold up to three full-length rhythm strips.

Time: sample ``n`` of a ``fs`` Hz signal is drawn at ``x = x_origin + n / fs * paper_speed`` in
every panel of a row, so the columns of a 3x4 page show consecutive windows (0-2.5 s,
2.5-5 s, ...) as clinical printouts do; voltage ``v`` (mV) is drawn at
``y = baseline - v * gain``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
NUM_LEADS = len(LEADS)
MAX_RHYTHM = 3
NUM_CHANNELS = NUM_LEADS + MAX_RHYTHM

PAPER_SIZES_MM: dict[str, tuple[float, float]] = {
    "letter": (279.4, 215.9),  # landscape (width, height)
    "a4": (297.0, 210.0),
}

# rows of short panels (lead names, left to right) and rhythm strips (full width, bottom)
LAYOUTS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "3x4": (
        (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")),
        ("II",),
    ),
    "3x4_3r": (
        (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6")),
        ("II", "V1", "V5"),
    ),
    "6x2": (
        (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6")),
        (),
    ),
    "12x1": (tuple((lead,) for lead in LEADS), ()),
}
LAYOUT_ALIASES = {"3x4+r": "3x4", "3x4+1r": "3x4", "3x4+3r": "3x4_3r", "6x2": "6x2", "12x1": "12x1"}

# calibration pulse: 1 mm flat, 1 mV step for 200 ms, 1 mm flat; traces start 2 mm after it
PULSE_LEAD_MM = 1.0
PULSE_DURATION_S = 0.2
PULSE_GAP_MM = 2.0


def canonical_layout(name: str) -> str:
    """Return the canonical layout name for ``name`` (case-insensitive, aliases allowed)."""
    key = name.strip().lower()
    key = LAYOUT_ALIASES.get(key, key)
    if key not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; choose one of {sorted(LAYOUTS)} or 'random'")
    return key


@dataclass(frozen=True)
class Panel:
    """One lead drawn over one time window. Samples ``start <= n < end`` are plotted."""

    channel: int  # trace slot 0..14 (see module docstring)
    lead: int  # index into LEADS
    start: int  # first plotted sample (inclusive)
    end: int  # last plotted sample (exclusive)
    x_origin_mm: float  # x of sample 0 (t = 0) on this row
    baseline_mm: float  # y of 0 mV
    box_mm: tuple[float, float, float, float]  # (x0, y0, x1, y1): time extent x row band
    label_mm: tuple[float, float]  # (x, y) of the lead label's text baseline start


@dataclass(frozen=True)
class PageGeometry:
    """Everything positional on one page, in mm. See the module docstring for conventions."""

    layout: str
    width_mm: float
    height_mm: float
    paper_speed: float  # mm/s
    gain: float  # mm/mV
    fs: float
    panels: tuple[Panel, ...]
    pulses: tuple[tuple[float, float], ...]  # (x of pulse start, baseline) per row
    separators: tuple[tuple[float, float, float], ...]  # (x, y0, y1) short vertical ticks
    grid_box_mm: tuple[float, float, float, float]  # (x0, y0, x1, y1) of the printed grid
    grid_origin_mm: tuple[float, float]  # a point where a major grid line crossing sits
    header_box_mm: tuple[float, float, float, float]  # area for the printed header text
    footer_y_mm: float  # text baseline of the footer line (speed, gain, filter)
    row_height_mm: float


def page_geometry(
    layout: str = "3x4",
    paper: str = "letter",
    fs: float = 500.0,
    num_samples: int = 5000,
    paper_speed: float = 25.0,
    gain: float = 10.0,
    margin_mm: float = 8.0,
    header_mm: float = 24.0,
    footer_mm: float = 12.0,
    grid_extent: str = "page",
) -> PageGeometry:
    """Lay out a page.

    Args:
        layout: ``3x4`` (rhythm II), ``3x4_3r`` (rhythm II, V1, V5), ``6x2`` or ``12x1``.
        paper: ``letter`` or ``a4`` (landscape).
        fs, num_samples: the signal that will be drawn (``[12, num_samples]`` at ``fs`` Hz).
        paper_speed: mm/s (25 or 50). When the signal does not fit the width, each column shows
            less time (at 50 mm/s a page shows 5 s, as printers do).
        gain: mm/mV (5, 10 or 20).
        margin_mm, header_mm, footer_mm: blank page margin, header and footer heights.
        grid_extent: ``page`` (grid inside the margin everywhere) or ``plot`` (only behind traces).
    """
    layout = canonical_layout(layout)
    if paper not in PAPER_SIZES_MM:
        raise ValueError(f"unknown paper {paper!r}; choose one of {sorted(PAPER_SIZES_MM)}")
    if paper_speed <= 0 or gain <= 0 or fs <= 0 or num_samples <= 0:
        raise ValueError("paper_speed, gain, fs and num_samples must be positive")
    width, height = PAPER_SIZES_MM[paper]
    rows, rhythm = LAYOUTS[layout]
    n_cols = len(rows[0])

    pulse_w = 2 * PULSE_LEAD_MM + PULSE_DURATION_S * paper_speed
    x_pulse = margin_mm + 2.0
    x_origin = x_pulse + pulse_w + PULSE_GAP_MM
    avail = width - margin_mm - 2.0 - x_origin
    duration = num_samples / fs
    col_s = min(duration / n_cols, avail / (n_cols * paper_speed))
    col_samples = int(round(col_s * fs))
    col_w = col_samples / fs * paper_speed

    plot_top = header_mm
    plot_bottom = height - footer_mm
    n_rows = len(rows) + len(rhythm)
    row_h = (plot_bottom - plot_top) / n_rows
    label_dy = min(0.38 * row_h, 7.0)

    panels: list[Panel] = []
    pulses: list[tuple[float, float]] = []
    separators: list[tuple[float, float, float]] = []
    row_specs = [(names, False) for names in rows] + [((name,), True) for name in rhythm]
    for r, (names, is_rhythm) in enumerate(row_specs):
        top = plot_top + r * row_h
        baseline = top + 0.5 * row_h
        pulses.append((x_pulse, baseline))
        for c, name in enumerate(names):
            lead = LEADS.index(name)
            if is_rhythm:
                channel = NUM_LEADS + (r - len(rows))
                start, end, x0, x1 = 0, n_cols * col_samples, x_origin, x_origin + n_cols * col_w
            else:
                channel = lead
                start, end = c * col_samples, (c + 1) * col_samples
                x0, x1 = x_origin + c * col_w, x_origin + (c + 1) * col_w
                if c > 0:
                    tick = min(0.15 * row_h, 4.0)
                    separators.append((x0, baseline - tick, baseline + tick))
            end = min(end, num_samples)
            panels.append(
                Panel(
                    channel=channel,
                    lead=lead,
                    start=start,
                    end=end,
                    x_origin_mm=x_origin,
                    baseline_mm=baseline,
                    box_mm=(x0, top, x1, top + row_h),
                    label_mm=(x0 + 1.0, baseline - label_dy),
                )
            )

    if grid_extent == "page":
        grid_box = (margin_mm, margin_mm, width - margin_mm, height - margin_mm)
    elif grid_extent == "plot":
        grid_box = (x_pulse - 2.0, plot_top, width - margin_mm, plot_bottom)
    else:
        raise ValueError(f"grid_extent must be 'page' or 'plot', not {grid_extent!r}")
    return PageGeometry(
        layout=layout,
        width_mm=width,
        height_mm=height,
        paper_speed=paper_speed,
        gain=gain,
        fs=fs,
        panels=tuple(panels),
        pulses=tuple(pulses),
        separators=tuple(separators),
        grid_box_mm=grid_box,
        grid_origin_mm=(x_origin, plot_top),
        header_box_mm=(margin_mm + 2.0, margin_mm, width - margin_mm - 2.0, plot_top),
        footer_y_mm=height - margin_mm - 1.5,
        row_height_mm=row_h,
    )


def px_per_mm(dpi: float) -> float:
    """Pixels per millimetre at ``dpi`` dots per inch."""
    return dpi / 25.4


def page_size_px(paper: str, dpi: float) -> tuple[int, int]:
    """Image size ``(h, w)`` in pixels of ``paper`` (landscape) at ``dpi``."""
    width, height = PAPER_SIZES_MM[paper]
    ppm = px_per_mm(dpi)
    return int(round(height * ppm)), int(round(width * ppm))


def mm_to_px(value_mm: float, ppm: float) -> float:
    """Convert a page coordinate in mm to the pixel-centre convention (see module docstring)."""
    return value_mm * ppm - 0.5
