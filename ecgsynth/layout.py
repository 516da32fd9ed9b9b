"""Page geometry of a printed 12-lead ECG: pure millimetres, no pixels, no randomness.

A page is a list of :class:`Panel` s (one lead over one time window), calibration pulses, lead
separators, label anchors and the grid rectangle, all in millimetres from the page's top-left
corner (x to the right, y down). Where things go is a :class:`PrintConvention` (pulse placement,
where t = 0 sits, column boundaries, label placement, rhythm strips, margins, header and footer
placement); its defaults are ecgsynth's classic page. :func:`mm_to_px` turns millimetres into
pixel coordinates with the convention used everywhere in ``ecgsynth``: pixel ``(i, j)`` has its
centre at ``x = j, y = i`` and covers ``[j - 0.5, j + 0.5)``, so the page's left edge is
``x = -0.5``.

Channels: every page has :data:`NUM_CHANNELS` (= 15) trace slots. Channels 0-11 hold the
standard leads in their short panels (channel ``k`` is lead ``LEADS[k]``; on a 12x1 page the
"short" panel spans the whole 10 s), channels 12-14 hold up to three full-length rhythm strips.

Time: sample ``n`` of a ``fs`` Hz signal is drawn at ``x = x_origin + n / fs * paper_speed``
with the panel's own ``x_origin``, so the columns of a 3x4 page show consecutive windows (0-2.5 s,
2.5-5 s, ...) as clinical printouts do. Panels of a row abut (one ``x_origin`` for the row) or
leave a blank gap of ``panel_gap_mm`` (each column's ``x_origin`` moves right by one gap more, so
its time axis still starts at its window start). Voltage ``v`` (mV) is drawn at
``y = baseline - v * gain``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
NUM_LEADS = len(LEADS)
MAX_RHYTHM = 3
NUM_CHANNELS = NUM_LEADS + MAX_RHYTHM
# ``mask_bits`` bit of calibration-pulse ink (above the channel bits: ``mask`` ignores it)
PULSE_BIT = NUM_CHANNELS
TRACE_BITS = (1 << NUM_CHANNELS) - 1  # the channel bits of ``mask_bits``

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
# (the classic convention; PrintConvention varies the step's width and the gap)
PULSE_LEAD_MM = 1.0
PULSE_DURATION_S = 0.2
PULSE_GAP_MM = 2.0
EDGE_PAD_MM = 2.0  # blank between the page margin and the first (or after the last) ink of a row

PULSE_PLACEMENTS = ("start", "end", "first_row", "none")
T0_PLACEMENTS = ("pulse", "edge", "inset")
SEPARATOR_STYLES = ("ticks", "lines", "none")
LABEL_PLACEMENTS = ("above", "below", "left")
HEADER_PLACEMENTS = ("top", "bottom", "none")


@dataclass(frozen=True)
class PrintConvention:
    """How a printer arranges a page (all lengths in mm). The defaults draw the classic page.

    Pulse: ``start`` of every row, ``end`` of every row (after its last sample), ``first_row``
    only (space is kept on every row, so the columns stay aligned) or ``none``; the 1 mV step
    lasts ``pulse_width_s`` and ``pulse_gap_mm`` of blank separates it from the nearest sample.

    t = 0 of a row: ``pulse`` (``pulse_gap_mm`` after a start pulse; needs one), ``edge`` (at
    the left edge of the first panel, which begins where the plot area or the start pulse's gap
    ends) or ``inset`` (``t0_inset_mm`` into the first panel: a blank lead-in).

    Column boundaries: ``ticks`` (short marks around the baseline), full-height ``lines`` or
    ``none``; panels abut (``panel_gap_mm = 0``) or leave a blank gap, the mark in its middle.

    Labels ``above`` or ``below`` the trace at a panel's left, or ``left`` of its first sample
    (vertically centred on the baseline). ``rhythm`` lists the full-width rhythm strips (0 to
    :data:`MAX_RHYTHM` lead names, bottom rows), ``None`` = the layout's own.

    Page: ``margin_mm`` blank border; the rows fill ``top_mm`` from the top to ``bottom_mm``
    from the bottom; the header block is printed in the ``top`` band, the ``bottom`` band or
    not at all, the footer line at the ``bottom`` or ``top`` (or not); ``crop_to_grid`` prints
    the grid up to the page edges, as a scan cropped to the grid looks.
    """

    pulse: str = "start"
    pulse_width_s: float = PULSE_DURATION_S
    pulse_gap_mm: float = PULSE_GAP_MM
    t0: str = "pulse"
    t0_inset_mm: float = 0.0
    separators: str = "ticks"
    panel_gap_mm: float = 0.0
    labels: str = "above"
    rhythm: tuple[str, ...] | None = None
    margin_mm: float = 8.0
    top_mm: float = 24.0
    bottom_mm: float = 12.0
    header: str = "top"
    footer: str = "bottom"
    crop_to_grid: bool = False

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("pulse", self.pulse, PULSE_PLACEMENTS),
            ("t0", self.t0, T0_PLACEMENTS),
            ("separators", self.separators, SEPARATOR_STYLES),
            ("labels", self.labels, LABEL_PLACEMENTS),
            ("header", self.header, HEADER_PLACEMENTS),
            ("footer", self.footer, HEADER_PLACEMENTS),
        ):
            if value not in choices:
                raise ValueError(f"PrintConvention.{name} must be one of {choices}, not {value!r}")
        if self.t0 == "pulse" and self.pulse not in ("start", "first_row"):
            raise ValueError(f"t0='pulse' needs a pulse at the row start, not pulse={self.pulse!r}")
        if self.rhythm is not None:
            if len(self.rhythm) > MAX_RHYTHM or any(n not in LEADS for n in self.rhythm):
                raise ValueError(
                    f"rhythm must be at most {MAX_RHYTHM} names from {LEADS}, got {self.rhythm}"
                )
        lengths = (self.pulse_gap_mm, self.t0_inset_mm, self.panel_gap_mm, self.margin_mm,
                   self.top_mm, self.bottom_mm)  # fmt: skip
        if self.pulse_width_s <= 0 or min(lengths) < 0:
            raise ValueError(f"pulse width must be positive and lengths >= 0: {self}")

    @property
    def pulse_at_start(self) -> bool:
        """Whether rows keep room for a pulse before t = 0."""
        return self.pulse in ("start", "first_row")


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
    x_origin_mm: float  # x of sample 0 (t = 0) on this panel's time axis
    baseline_mm: float  # y of 0 mV
    box_mm: tuple[float, float, float, float]  # (x0, y0, x1, y1): time extent x row band
    label_mm: tuple[float, float]  # where the lead label goes, see label_anchor
    # "baseline-left": label_mm starts the text's baseline; "middle-right": the text ends at
    # label_mm[0] and is centred vertically on label_mm[1]
    label_anchor: str = "baseline-left"


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
    pulses: tuple[tuple[float, float], ...]  # (x of pulse start, baseline) per drawn pulse
    separators: tuple[tuple[float, float, float], ...]  # (x, y0, y1) vertical column marks
    grid_box_mm: tuple[float, float, float, float]  # (x0, y0, x1, y1) of the printed grid
    grid_origin_mm: tuple[float, float]  # a point where a major grid line crossing sits
    header_box_mm: tuple[float, float, float, float] | None  # header text area (None: no header)
    footer_y_mm: float | None  # text baseline of the footer line (None: no footer)
    row_height_mm: float
    pulse_step_mm: float = PULSE_DURATION_S * 25.0  # width of the pulse's 1 mV step
    rhythm: tuple[str, ...] = ()  # leads of the rhythm strips, top to bottom


def page_geometry(
    layout: str = "3x4",
    paper: str = "letter",
    fs: float = 500.0,
    num_samples: int = 5000,
    paper_speed: float = 25.0,
    gain: float = 10.0,
    margin_mm: float | None = None,
    header_mm: float | None = None,
    footer_mm: float | None = None,
    grid_extent: str = "page",
    convention: PrintConvention | None = None,
) -> PageGeometry:
    """Lay out a page.

    Args:
        layout: ``3x4`` (rhythm II), ``3x4_3r`` (rhythm II, V1, V5), ``6x2`` or ``12x1``.
        paper: ``letter`` or ``a4`` (landscape).
        fs, num_samples: the signal that will be drawn (``[12, num_samples]`` at ``fs`` Hz).
        paper_speed: mm/s (25 or 50). When the signal does not fit the width, each column shows
            less time (at 50 mm/s a page shows 5 s, as printers do).
        gain: mm/mV (5, 10 or 20).
        margin_mm, header_mm, footer_mm: override the convention's ``margin_mm``, ``top_mm``
            and ``bottom_mm`` (blank margin, top and bottom bands); ``None`` keeps them.
        grid_extent: ``page`` (grid inside the margin everywhere) or ``plot`` (only behind
            traces); a convention with ``crop_to_grid`` prints it to the page edges instead.
        convention: where pulses, panels, marks, labels and text go (default: the classic page).
    """
    layout = canonical_layout(layout)
    if paper not in PAPER_SIZES_MM:
        raise ValueError(f"unknown paper {paper!r}; choose one of {sorted(PAPER_SIZES_MM)}")
    if paper_speed <= 0 or gain <= 0 or fs <= 0 or num_samples <= 0:
        raise ValueError("paper_speed, gain, fs and num_samples must be positive")
    if grid_extent not in ("page", "plot"):
        raise ValueError(f"grid_extent must be 'page' or 'plot', not {grid_extent!r}")
    conv = convention if convention is not None else PrintConvention()
    margin = conv.margin_mm if margin_mm is None else margin_mm
    plot_top = conv.top_mm if header_mm is None else header_mm
    width, height = PAPER_SIZES_MM[paper]
    plot_bottom = height - (conv.bottom_mm if footer_mm is None else footer_mm)
    rows, rhythm = LAYOUTS[layout]
    rhythm = rhythm if conv.rhythm is None else conv.rhythm
    n_cols = len(rows[0])

    area_left, region_left, x_origin, step_mm, avail = _row_frame(
        conv, width, margin, n_cols, paper_speed
    )
    gap = conv.panel_gap_mm
    n_rows = len(rows) + len(rhythm)
    if avail <= 0 or plot_bottom <= plot_top:
        raise ValueError(f"convention leaves no room for the traces on {paper} paper: {conv}")
    duration = num_samples / fs
    col_s = min(duration / n_cols, avail / (n_cols * paper_speed))
    col_samples = int(round(col_s * fs))
    col_w = col_samples / fs * paper_speed

    row_h = (plot_bottom - plot_top) / n_rows
    label_dy = min(0.38 * row_h, 7.0)
    label_dy_below = min(0.45 * row_h, 8.0)

    panels: list[Panel] = []
    pulses: list[tuple[float, float]] = []
    separators: list[tuple[float, float, float]] = []
    row_specs = [(names, False) for names in rows] + [((name,), True) for name in rhythm]
    for r, (names, is_rhythm) in enumerate(row_specs):
        top = plot_top + r * row_h
        baseline = top + 0.5 * row_h
        if conv.pulse == "start" or (conv.pulse == "first_row" and r == 0):
            pulses.append((area_left, baseline))
        x1 = x_origin
        for c, name in enumerate(names):
            lead = LEADS.index(name)
            if is_rhythm:
                channel = NUM_LEADS + (r - len(rows))
                start, end, origin = 0, n_cols * col_samples, x_origin
                x0, x1 = region_left, x_origin + n_cols * col_w
            else:
                channel = lead
                start, end = c * col_samples, (c + 1) * col_samples
                origin = x_origin + c * gap if c else x_origin  # this window's time axis
                x0 = origin + c * col_w if c else region_left
                x1 = origin + (c + 1) * col_w
                if c > 0 and conv.separators != "none":
                    xs = x0 - 0.5 * gap if gap else x0
                    if conv.separators == "ticks":
                        tick = min(0.15 * row_h, 4.0)
                        separators.append((xs, baseline - tick, baseline + tick))
                    else:
                        separators.append((xs, top, top + row_h))
            end = min(end, num_samples)
            if conv.labels == "left":
                first_x = x0 if c else x_origin  # the first plotted sample
                label, anchor = (first_x - 1.0, baseline), "middle-right"
            elif conv.labels == "below":
                label, anchor = (x0 + 1.0, baseline + label_dy_below), "baseline-left"
            else:
                label, anchor = (x0 + 1.0, baseline - label_dy), "baseline-left"
            panels.append(
                Panel(
                    channel=channel,
                    lead=lead,
                    start=start,
                    end=end,
                    x_origin_mm=origin,
                    baseline_mm=baseline,
                    box_mm=(x0, top, x1, top + row_h),
                    label_mm=label,
                    label_anchor=anchor,
                )
            )
        if conv.pulse == "end":
            pulses.append((x1 + conv.pulse_gap_mm, baseline))

    if conv.crop_to_grid:
        grid_box = (0.0, 0.0, width, height)
    elif grid_extent == "page":
        grid_box = (margin, margin, width - margin, height - margin)
    else:
        grid_box = (margin, plot_top, width - margin, plot_bottom)
    area_right = width - margin - EDGE_PAD_MM
    header_box = {
        "top": (area_left, margin, area_right, plot_top),
        "bottom": (area_left, plot_bottom + 1.0, area_right, height - margin),
    }.get(conv.header)
    footer_y = {"bottom": height - margin - 1.5, "top": margin + 4.5}.get(conv.footer)
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
        header_box_mm=header_box,
        footer_y_mm=footer_y,
        row_height_mm=row_h,
        pulse_step_mm=step_mm,
        rhythm=tuple(rhythm),
    )


def _row_frame(
    conv: PrintConvention, width: float, margin: float, n_cols: int, paper_speed: float
) -> tuple[float, float, float, float, float]:
    """Horizontal frame of a row: ``[pulse slot + gap] [panels and gaps] [gap + pulse slot]``.

    Returns ``(area_left, region_left, x_origin, step_mm, avail)``: the left edge of the
    printable area (where a start pulse goes), of the first panel, t = 0, the width of the
    pulse's 1 mV step and the trace length (mm) the ``n_cols`` panels of a row can hold."""
    step_mm = conv.pulse_width_s * paper_speed
    pulse_w = 2 * PULSE_LEAD_MM + step_mm
    area_left = margin + EDGE_PAD_MM
    area_right = width - margin - EDGE_PAD_MM
    region_left = area_left + pulse_w + conv.pulse_gap_mm if conv.pulse_at_start else area_left
    x_origin = region_left + conv.t0_inset_mm if conv.t0 == "inset" else region_left
    reserve_end = pulse_w + conv.pulse_gap_mm if conv.pulse == "end" else 0.0
    avail = area_right - reserve_end - x_origin - (n_cols - 1) * conv.panel_gap_mm
    return area_left, region_left, x_origin, step_mm, avail


def trace_room_mm(
    layout: str, paper: str = "letter", paper_speed: float = 25.0,
    convention: PrintConvention | None = None,
) -> float:  # fmt: skip
    """Trace length (mm, all columns of a row together) that ``layout`` leaves on ``paper``
    under ``convention``: 10 s fit at ``paper_speed`` when it is at least ``10 * paper_speed``
    (otherwise each column shows proportionally less time)."""
    conv = convention if convention is not None else PrintConvention()
    n_cols = len(LAYOUTS[canonical_layout(layout)][0][0])
    return _row_frame(conv, PAPER_SIZES_MM[paper][0], conv.margin_mm, n_cols, paper_speed)[-1]


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
