"""An independent ECG page maker, for tests and evaluation only (never for training).

It is written apart from ``ecgsynth`` and shares no code or drawing constants with it: pages are
drawn with matplotlib in the conventions of other printers, so that a reader tuned to our own
renderer shows it here. It imports neither ``ecgsynth`` nor ``digitizer``.

    signal [12, T] mV, fs --plan (mm, per profile)--> primitives --matplotlib Agg--> uint8 [H, W, 3]
                                                                 --matplotlib PDF--> vector page

Profiles (:data:`PROFILES`), each a set of printing conventions (:class:`Profile`):

- ``eik``: ECG-Image-Kit's (the PhysioNet Challenge 2024 pages). 25 mm/s, 10 mm/mV, Letter
  with the grid from the page's edges; the 0.2 s pulse only at the start of each row, drawn
  1.5x thicker, the first panel starting where the pulse ends (t = 0 at its trailing edge);
  every column shifted by the pulse; labels at each panel's start, 7 mm under the baseline; no
  separators; the 10 s block centred with its left gap rounded down to 0.2 s; rows spaced at
  page height / (rows + 2) from the bottom; random grid colours.
- ``ge``: a GE-like cart. Pulse at the start of every row, then a gap; short separator ticks
  at column boundaries; labels inside each panel's top left; rhythm strips II, V1, V5 (or II);
  a header with made-up patient and measurement text.
- ``philips``: a Philips-like cart. Pulse at the END of each row; labels under the trace; full
  vertical lines between columns; black or dark grey grid with heavy major lines; 12x1 pages
  at 5 mm/mV.
- ``web``: a plain web/PDF export. No pulse; 3x4 without a rhythm strip; the page is cropped to
  the grid; each label beside (left of) its panel, with room left for it; blue or brown grid;
  thick traces.

Any profile draws any layout; a profile's own layouts are those the evaluation cycles through.

Layouts: ``3x4`` (+ rhythm II), ``3x4_3r`` (+ II, V1, V5), ``3x4_0r`` (no rhythm), ``6x2``,
``12x1``. Time windows are clinical: a 3x4 row's panels show 0-2.5, 2.5-5, 5-7.5 and 7.5-10 s,
6x2 columns 0-5 and 5-10 s, rhythm strips and 12x1 rows 10 s; always at 25 mm/s.

Coordinates: the plan is in mm from the page's top-left corner. Image pixel centres are at
integer coordinates: a point at ``(x_mm, y_mm)`` is at pixel ``(x_mm * ppm - 0.5,
y_mm * ppm - 0.5)`` with ``ppm = dpi / 25.4``. The PDF page is the paper (``meta["paper_mm"]``)
with the same mm coordinates: ``x_pt = x_mm * 72 / 25.4``, ``y_pt = (paper_h - y_mm) * 72 / 25.4``
(PDF y up).

CLI: ``python scripts/foreign_pages.py --out DIR --num N --seed S [--artifacts] [--pdf]``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402

LEAD_NAMES = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
PAPERS_MM = {"letter": (279.4, 215.9), "a4": (297.0, 210.0)}  # landscape (width, height)
SPEED_MM_S = 25.0
ROW_SECONDS = 10.0
PULSE_SECONDS = 0.2
PX_REF_DPI = 200.0  # line widths are given in pixels at this resolution

# Grid colours (major line RGB); minor lines are blended toward the paper unless "as dark".
GRID_COLOURS = {
    "black": (0.0, 0.0, 0.0),
    "dark_grey": (0.3, 0.3, 0.3),
    "brown": (0.45, 0.22, 0.15),
    "blue": (0.15, 0.3, 0.75),
    "red": (0.9, 0.1, 0.1),
    "pink": (0.98, 0.62, 0.72),
    "green": (0.1, 0.55, 0.25),
}


@dataclass(frozen=True)
class Profile:
    """One printer's conventions.

    Attributes:
        name: profile name.
        layouts: the layouts this printer draws.
        pulse: ``"row_start_flush"`` (trace starts at the pulse's trailing edge),
            ``"row_start_gap"`` (a blank gap between pulse and trace), ``"row_end"`` (after the
            row's trace) or ``"none"``.
        labels: ``"below_start"`` (7 mm under the baseline at the panel start),
            ``"inside_top_left"``, ``"below_trace"`` or ``"beside_left"``.
        separators: ``"none"``, ``"ticks"`` (short marks at column boundaries) or ``"lines"``
            (full-height lines between columns).
        placement: ``"centred"`` (ECG-Image-Kit), ``"cart"`` (margins + header) or
            ``"cropped"`` (the image is the grid, no margins).
        grid_colours: names from :data:`GRID_COLOURS`, or ``"random"`` (ECG-Image-Kit's draw).
        trace_px: trace width range in px at 200 dpi.
        heavy_major: major grid lines 2-3 px (at 200 dpi) instead of 0.5-1.5.
        header: print made-up patient/measurement text.
        papers: paper sizes drawn from.
        gain_12x1: mm/mV on 12x1 pages (10 elsewhere).
    """

    name: str
    layouts: tuple[str, ...]
    pulse: str
    labels: str
    separators: str
    placement: str
    grid_colours: tuple[str, ...]
    trace_px: tuple[float, float]
    heavy_major: bool = False
    header: bool = False
    papers: tuple[str, ...] = ("letter", "a4")
    gain_12x1: float = 10.0


_PROFILES = {
    "eik": Profile(
        name="eik",
        layouts=("3x4", "6x2"),
        pulse="row_start_flush",
        labels="below_start",
        separators="none",
        placement="centred",
        grid_colours=("random", "brown", "pink", "blue", "green", "red"),
        trace_px=(1.0, 2.5),
        papers=("letter",),
    ),
    "ge": Profile(
        name="ge",
        layouts=("3x4_3r", "3x4", "6x2"),
        pulse="row_start_gap",
        labels="inside_top_left",
        separators="ticks",
        placement="cart",
        grid_colours=("red", "pink", "red", "green", "dark_grey"),
        trace_px=(0.8, 2.0),
        header=True,
    ),
    "philips": Profile(
        name="philips",
        layouts=("3x4", "12x1"),
        pulse="row_end",
        labels="below_trace",
        separators="lines",
        placement="cart",
        grid_colours=("black", "dark_grey"),
        trace_px=(0.5, 1.8),
        heavy_major=True,
        header=True,
        gain_12x1=5.0,
    ),
    "web": Profile(
        name="web",
        layouts=("3x4_0r", "6x2", "12x1"),
        pulse="none",
        labels="beside_left",
        separators="none",
        placement="cropped",
        grid_colours=("blue", "brown"),
        trace_px=(2.0, 3.0),
    ),
}
PROFILES: tuple[str, ...] = tuple(_PROFILES)
LAYOUTS: tuple[str, ...] = ("3x4", "3x4_3r", "3x4_0r", "6x2", "12x1")


def profile_layouts() -> list[tuple[str, str]]:
    """Every ``(profile, layout)`` pair the maker draws."""
    return [(p, lay) for p, prof in _PROFILES.items() for lay in prof.layouts]


# -- layouts: which lead, which time window, in which row/column ---------------------------------
def _panels(layout: str) -> list[list[tuple[int, float, float]]]:
    """Rows of panels ``(lead index, t0 s, t1 s)``, top to bottom."""
    if layout in ("3x4", "3x4_3r", "3x4_0r"):
        cols = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (9, 10, 11))
        rows = [[(cols[c][r], 2.5 * c, 2.5 * (c + 1)) for c in range(4)] for r in range(3)]
        rhythm = {"3x4": (1,), "3x4_3r": (1, 6, 10), "3x4_0r": ()}[layout]
        return rows + [[(lead, 0.0, ROW_SECONDS)] for lead in rhythm]
    if layout == "6x2":
        return [[(r, 0.0, 5.0), (r + 6, 5.0, 10.0)] for r in range(6)]
    if layout == "12x1":
        return [[(r, 0.0, ROW_SECONDS)] for r in range(12)]
    raise ValueError(f"unknown layout {layout!r}; choose from {LAYOUTS}")


# -- drawing primitives (mm, page top-left origin) ------------------------------------------------
@dataclass
class _Line:
    x: np.ndarray  # mm
    y: np.ndarray  # mm
    width_mm: float
    colour: tuple[float, float, float]
    z: float


@dataclass
class _Segments:
    segs: np.ndarray  # [N, 2, 2] mm
    width_mm: float
    colour: tuple[float, float, float]
    z: float


@dataclass
class _Text:
    x: float
    y: float
    text: str
    size_pt: float
    family: str
    colour: tuple[float, float, float]
    ha: str = "left"
    va: str = "baseline"


@dataclass
class _Plan:
    width_mm: float
    height_mm: float
    paper: tuple[float, float, float]
    items: list = field(default_factory=list)


def _render(plan: _Plan, dpi: float, pdf_path: Path | None = None) -> np.ndarray | None:
    """Draw the plan: an RGB ``uint8 [H, W, 3]`` image, or (with ``pdf_path``) a vector PDF."""
    ppm = dpi / 25.4
    w_px, h_px = round(plan.width_mm * ppm), round(plan.height_mm * ppm)
    if pdf_path is None:  # whole pixels, a hair over so that the canvas's truncation keeps all
        w_in, h_in = (w_px + 1e-6) / dpi, (h_px + 1e-6) / dpi
    else:  # the PDF page is the paper, exactly
        w_in, h_in = plan.width_mm / 25.4, plan.height_mm / 25.4
    fig = Figure(figsize=(w_in, h_in), dpi=dpi, facecolor=plan.paper)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(0.0, w_in * 25.4)
    ax.set_ylim(h_in * 25.4, 0.0)
    pt_per_mm = 72.0 / 25.4
    for it in plan.items:
        if isinstance(it, _Segments):
            ax.add_collection(
                LineCollection(
                    it.segs,
                    linewidths=it.width_mm * pt_per_mm,
                    colors=[it.colour],
                    zorder=it.z,
                    snap=True,
                    capstyle="butt",
                )
            )
        elif isinstance(it, _Line):
            ax.plot(
                it.x,
                it.y,
                lw=it.width_mm * pt_per_mm,
                color=it.colour,
                zorder=it.z,
                snap=False,
                solid_joinstyle="round",
                solid_capstyle="round",
            )
        else:
            ax.text(
                it.x,
                it.y,
                it.text,
                fontsize=it.size_pt,
                family=it.family,
                color=it.colour,
                ha=it.ha,
                va=it.va,
                zorder=5,
            )
    if pdf_path is not None:
        # every sample a vertex, as cart software writes them (matplotlib would drop points
        # up to 1/9 pt off the curve, which no reader can recover)
        with matplotlib.rc_context({"path.simplify": False}):
            fig.savefig(pdf_path, format="pdf", facecolor=plan.paper)
        return None
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    if img.shape[:2] != (h_px, w_px):
        raise RuntimeError(f"canvas is {img.shape[:2]}, expected {(h_px, w_px)}")
    return img


# -- page ---------------------------------------------------------------------------------------
@dataclass
class ForeignPage:
    """A drawn page and its truth.

    Attributes:
        image: ``uint8 [H, W, 3]`` RGB.
        truth: ``float32 [12, T]`` mV, leads in :data:`LEAD_NAMES` order, NaN where the page
            does not show that lead.
        fs: sampling rate of ``truth`` (Hz).
        meta: profile, layout, dpi, px_per_mm, paper, speed, gain, per-panel sample ranges and
            pixel geometry, pulses, colours (all pixel values in image pixels, centre-integer).
    """

    image: np.ndarray
    truth: np.ndarray
    fs: float
    meta: dict
    _plan: _Plan = field(repr=False)

    def save(self, stem: Path, pdf: bool = False) -> list[Path]:
        """Write ``stem.png``, ``stem.hea/.dat`` (12 leads, mV, 1 uV steps, NaN = missing),
        ``stem.json`` and with ``pdf`` a vector ``stem.pdf`` of the same (clean) page."""
        import wfdb

        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.image).save(stem.with_suffix(".png"))
        wfdb.wrsamp(
            stem.name,
            fs=self.fs,
            units=["mV"] * 12,
            sig_name=list(LEAD_NAMES),
            p_signal=self.truth.T.astype(np.float64),
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(stem.parent),
        )
        stem.with_suffix(".json").write_text(json.dumps(self.meta, indent=1))
        out = [stem.with_suffix(s) for s in (".png", ".hea", ".dat", ".json")]
        if pdf:
            _render(self._plan, self.meta["dpi"], stem.with_suffix(".pdf"))
            out.append(stem.with_suffix(".pdf"))
        return out


def _mix(a: tuple, b: tuple, f: float) -> tuple[float, float, float]:
    """``a`` moved a fraction ``f`` of the way to ``b``."""
    return tuple(float(x + (y - x) * f) for x, y in zip(a, b))  # type: ignore[return-value]


def _grid_colours(name: str, rng: np.random.Generator, paper: tuple) -> tuple[tuple, tuple]:
    """Major and minor grid colours."""
    if name == "random":  # ECG-Image-Kit's draw: any dark-to-mid colour, minor a bit lighter
        major = (rng.uniform(0, 0.8), rng.uniform(0, 0.5), rng.uniform(0, 0.5))
        off = rng.uniform(0, 0.2)
        minor = (major[0] + off, rng.uniform(0, 0.5) + off, rng.uniform(0, 0.5) + off)
        return tuple(map(float, major)), tuple(map(float, minor))
    major = GRID_COLOURS[name]
    if rng.random() < 0.15:  # as dark as the trace, minor lines too
        return major, major
    return major, _mix(major, paper, float(rng.uniform(0.3, 0.7)))


def _grid(
    plan: _Plan,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    origin: tuple[float, float],
    major: tuple,
    minor: tuple,
    w_major: float,
    w_minor: float,
) -> None:
    """1 mm / 5 mm grid over ``[x0, x1] x [y0, y1]`` mm with a major line through ``origin``."""
    for step, col, w, z in ((1.0, minor, w_minor, 0.0), (5.0, major, w_major, 0.1)):
        segs = []
        for axis, (lo, hi, o) in enumerate(((x0, x1, origin[0]), (y0, y1, origin[1]))):
            k = np.arange(math.ceil((lo - o) / step - 1e-9), math.floor((hi - o) / step + 1e-9) + 1)
            if step == 1.0:
                k = k[k % 5 != 0]  # minor lines only where no major line goes
            pos = o + k * step
            for p in pos:
                segs.append([[p, y0], [p, y1]] if axis == 0 else [[x0, p], [x1, p]])
        if segs:
            plan.items.append(_Segments(np.asarray(segs, float), w, col, z))


def _header_text(rng: np.random.Generator) -> list[str]:
    first = rng.choice(["ANNA", "JOHN", "MARIA", "PETER", "LENA", "OMAR", "SARA", "IVAN"])
    last = rng.choice(["SMITH", "NOVAK", "GARCIA", "MULLER", "ROSSI", "KOWALSKI", "DUBOIS"])
    hr, pr, qrs = rng.integers(50, 110), rng.integers(120, 210), rng.integers(70, 120)
    return [
        f"{last}, {first}    ID: {rng.integers(10**6, 10**7)}    "
        f"{rng.integers(1, 29):02d}-{rng.choice(['JAN', 'MAR', 'JUN', 'SEP', 'NOV'])}-20"
        f"{rng.integers(10, 26)} {rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}",
        f"Vent. rate {hr} BPM    PR interval {pr} ms    QRS duration {qrs} ms",
        f"QT/QTc {rng.integers(340, 440)}/{rng.integers(380, 470)} ms    "
        f"P-R-T axes {rng.integers(-30, 90)} {rng.integers(-30, 90)} {rng.integers(-30, 90)}",
        str(
            rng.choice(
                [
                    "Normal sinus rhythm",
                    "Sinus bradycardia",
                    "Otherwise normal ECG",
                    "Borderline ECG",
                    "Unconfirmed report",
                ]
            )
        ),
    ]


def draw_page(
    signal: np.ndarray,
    fs: float,
    profile: str,
    seed: int,
    dpi: float = 200,
    layout: str | None = None,
) -> ForeignPage:
    """Draw one page of ``signal`` in the conventions of ``profile``.

    Args:
        signal: ``[12, T]`` mV, leads in :data:`LEAD_NAMES` order (NaN samples are not drawn).
        fs: sampling rate (Hz); the page shows the first 10 s.
        profile: one of :data:`PROFILES`.
        seed: every random choice (layout if not given, paper, colours, widths, fonts, margins).
        dpi: image resolution (the PDF is vector).
        layout: any of :data:`LAYOUTS`; ``None`` draws one of the profile's own layouts
            (:attr:`Profile.layouts`, those the evaluation cycles through) from ``seed``.

    Returns:
        The page; see :class:`ForeignPage`.
    """
    if profile not in _PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {PROFILES}")
    prof = _PROFILES[profile]
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[0] != 12 or sig.shape[1] < 2:
        raise ValueError(f"signal must be [12, T] mV, got shape {sig.shape}")
    if not (fs > 0 and dpi > 0):
        raise ValueError(f"fs and dpi must be positive, got fs={fs}, dpi={dpi}")
    rng = np.random.default_rng([seed, 0xECF])
    if layout is None:
        layout = str(rng.choice(prof.layouts))
    elif layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {LAYOUTS}")
    rows = _panels(layout)
    n_rows = len(rows)
    n_t = sig.shape[1]
    ppm = dpi / 25.4
    gain = prof.gain_12x1 if layout == "12x1" else 10.0
    px = 25.4 / PX_REF_DPI  # mm per reference pixel
    paper_name = str(rng.choice(prof.papers))
    tint = float(rng.uniform(0.1, 0.6))
    paper_rgb = (1.0, 1.0, 1.0) if rng.random() < 0.6 else _mix((1, 1, 1), (1.0, 0.95, 0.85), tint)
    grey = float(rng.uniform(0.0, 0.2))
    ink = (grey, grey, grey) if rng.random() < 0.85 else (0.05, 0.05, 0.35)
    trace_w = float(rng.uniform(*prof.trace_px)) * px
    major, minor = _grid_colours(str(rng.choice(prof.grid_colours)), rng, paper_rgb)
    w_major = float(rng.uniform(2.0, 3.0) if prof.heavy_major else rng.uniform(0.5, 1.5)) * px
    w_minor = float(rng.uniform(0.5, 1.0)) * px
    family = str(rng.choice(["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "STIXGeneral"]))
    font_pt = 11.0 if prof.name == "eik" else float(rng.uniform(7.0, 12.0))
    if prof.name == "eik":
        family = "DejaVu Sans"
    row_mm = ROW_SECONDS * SPEED_MM_S
    pulse_mm = PULSE_SECONDS * SPEED_MM_S
    label_col = 0.0
    n_cols = len(rows[0])

    # -- page frame, row baselines and the x where each row's t = 0 sits -------------------------
    if prof.placement == "centred":
        page_w, page_h = PAPERS_MM[paper_name]
        # ECG-Image-Kit: grid from the page's left/bottom edges; the 10 s block centred with
        # its left gap rounded down to 0.2 s; the pulse (0.2 s) first, then the traces.
        gap_s = math.floor((page_w / SPEED_MM_S - ROW_SECONDS) / 2 / 0.2) * 0.2
        x_pulse = gap_s * SPEED_MM_S
        x_start = x_pulse + pulse_mm
        pitch = page_h / (n_rows + 2)
        n_rhythm = {"3x4": 1, "3x4_3r": 3}.get(layout, 0)
        n_lead = n_rows - n_rhythm
        # heights above the page's bottom edge: the (last) rhythm strip 3 mm over half a row,
        # each further row one pitch higher
        above = max(n_rhythm - 1, 0)
        base_up = [pitch / 2 + pitch * (n_lead - r + above) for r in range(n_lead)]
        base_up += [pitch / 2 + 3.0 + pitch * (n_rhythm - 1 - j) for j in range(n_rhythm)]
        baselines = [page_h - b for b in base_up]
        grid_box = (0.0, 0.0, page_w, page_h)
        grid_origin = (0.0, page_h)
    elif prof.placement == "cart":
        page_w, page_h = PAPERS_MM[paper_name]
        header_h = float(rng.uniform(22.0, 38.0)) if prof.header else 8.0
        footer_h = float(rng.uniform(8.0, 14.0))
        pulse_room = 1.0 + pulse_mm + 4.0
        free = page_w - row_mm - pulse_room - 4.0
        margin = float(rng.uniform(3.0, max(3.5, free)))
        pulse_gap = float(rng.uniform(1.5, 3.0))
        if prof.pulse == "row_start_gap":
            x_pulse = margin + 1.0
            x_start = x_pulse + pulse_mm + pulse_gap
        else:
            x_start = margin
            x_pulse = x_start + row_mm + pulse_gap
        pitch = (page_h - header_h - footer_h) / n_rows
        baselines = [header_h + pitch * (r + 0.55) for r in range(n_rows)]
        gx0 = float(rng.uniform(0.0, min(3.0, margin - 1.0)))
        grid_box = (gx0, header_h - 3.0, page_w - gx0, page_h - footer_h + 3.0)
        # the grid's major lines need not meet the trace's start
        grid_origin = (gx0 + float(rng.uniform(0, 5)), header_h - 3.0)
    else:  # cropped: the image is the grid
        label_col = float(rng.uniform(8.0, 12.0))
        pitch = float(rng.uniform(16.0, 22.0) if layout == "12x1" else rng.uniform(25.0, 35.0))
        x_start = label_col
        x_pulse = None
        page_w = n_cols * (label_col + row_mm / n_cols) + 2.0
        page_h = n_rows * pitch
        baselines = [pitch * (r + 0.6) for r in range(n_rows)]
        grid_box = (0.0, 0.0, page_w, page_h)
        grid_origin = (0.0, 0.0)
    plan = _Plan(page_w, page_h, paper_rgb)
    _grid(plan, *grid_box, grid_origin, major, minor, w_major, w_minor)

    # -- traces, pulses, labels, separators ----------------------------------------------------
    truth = np.full((12, n_t), np.nan, dtype=np.float32)
    panels_meta, pulses_meta = [], []

    def to_px(v: float) -> float:
        return round(v * ppm - 0.5, 4)

    for r, row in enumerate(rows):
        base = baselines[r]
        for c, (lead, t0, t1) in enumerate(row):
            s, e = min(round(t0 * fs), n_t), min(round(t1 * fs), n_t)
            x0 = x_start + t0 * SPEED_MM_S + c * label_col
            if e > s:
                n = np.arange(s, e)
                v = sig[lead, s:e]
                plan.items.append(
                    _Line(x0 + (n - s) / fs * SPEED_MM_S, base - v * gain, trace_w, ink, 2.0)
                )
                y_mm = base - v * gain  # a sample beyond the page's edge is not shown
                on_page = np.isfinite(v) & (y_mm >= 0.0) & (y_mm <= page_h)
                truth[lead, s:e] = np.where(on_page, v, np.nan)
            x1 = x0 + (t1 - t0) * SPEED_MM_S
            panels_meta.append(
                {
                    "lead": LEAD_NAMES[lead],
                    "row": r,
                    "col": c,
                    "start_sample": int(s),
                    "end_sample": int(e),
                    "t0_s": t0,
                    "t1_s": t1,
                    "x0_px": to_px(x0),
                    "px_per_sample": round(SPEED_MM_S / fs * ppm, 6),
                    "baseline_y_px": to_px(base),
                    "box": [to_px(x0), to_px(base - pitch / 2), to_px(x1), to_px(base + pitch / 2)],
                }
            )
            # labels
            if prof.labels == "below_start":
                lab = _Text(x0, base + 7.0, LEAD_NAMES[lead], font_pt, family, ink)
            elif prof.labels == "inside_top_left":
                lab = _Text(x0 + 1.0, base - 0.3 * pitch, LEAD_NAMES[lead], font_pt, family, ink)
            elif prof.labels == "below_trace":
                lab = _Text(
                    x0 + 1.0, base + 0.12 * pitch, LEAD_NAMES[lead], font_pt, family, ink, va="top"
                )
            else:
                lab = _Text(
                    x0 - 1.0, base, LEAD_NAMES[lead], font_pt, family, ink, ha="right", va="center"
                )
            plan.items.append(lab)
            if c > 0 and prof.separators == "ticks":
                plan.items.append(
                    _Line(np.array([x0, x0]), np.array([base - 3.0, base + 3.0]), trace_w, ink, 2.0)
                )
        # pulse
        if prof.pulse != "none" and x_pulse is not None:
            h = gain  # 1 mV
            pw = trace_w * (1.5 if prof.name == "eik" else 1.0)
            if prof.pulse == "row_start_flush":
                xs = [x_pulse, x_pulse, x_pulse + pulse_mm, x_pulse + pulse_mm]
                ys = [base, base - h, base - h, base]
            else:
                xs = [
                    x_pulse - 1.0,
                    x_pulse,
                    x_pulse,
                    x_pulse + pulse_mm,
                    x_pulse + pulse_mm,
                    x_pulse + pulse_mm + 1.0,
                ]
                ys = [base, base, base - h, base - h, base, base]
            plan.items.append(_Line(np.array(xs), np.array(ys), pw, ink, 2.0))
            pulses_meta.append(
                {
                    "row": r,
                    "placement": "row_end" if prof.pulse == "row_end" else "row_start",
                    "x0_px": to_px(x_pulse),
                    "x1_px": to_px(x_pulse + pulse_mm),
                    "baseline_y_px": to_px(base),
                    "top_y_px": to_px(base - h),
                }
            )
    if prof.separators == "lines" and n_cols > 1:
        lead_rows = [r for r, row in enumerate(rows) if len(row) == n_cols]
        top, bot = baselines[lead_rows[0]] - pitch / 2, baselines[lead_rows[-1]] + pitch / 2
        for c in range(1, n_cols):
            x = x_start + rows[0][c][1] * SPEED_MM_S
            plan.items.append(_Line(np.array([x, x]), np.array([top, bot]), trace_w, ink, 1.5))
    if prof.header:
        y = 6.0
        for line in _header_text(rng):
            plan.items.append(_Text(6.0, y, line, font_pt, family, ink, va="top"))
            y += font_pt * 0.3528 * 1.4
        foot = f"{SPEED_MM_S:g} mm/s   {gain:g} mm/mV   0.05-150 Hz   50 Hz"
        plan.items.append(_Text(6.0, page_h - 3.0, foot, font_pt, family, ink))
    if prof.name == "eik":  # ECG-Image-Kit prints speed and gain near the bottom
        plan.items.append(_Text(50.0, page_h - 5.0, "25mm/s", font_pt, family, ink))
        plan.items.append(_Text(100.0, page_h - 5.0, "10mm/mV", font_pt, family, ink))

    image = _render(plan, dpi)
    meta = {
        "generator": "scripts/foreign_pages.py",
        "profile": prof.name,
        "layout": layout,
        "seed": int(seed),
        "dpi": float(dpi),
        "px_per_mm": ppm,
        "paper": paper_name,
        "paper_mm": [page_w, page_h],
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "fs": float(fs),
        "num_samples": int(n_t),
        "paper_speed_mm_s": SPEED_MM_S,
        "gain_mm_mv": gain,
        "pulse": prof.pulse,
        "labels": prof.labels,
        "separators": prof.separators,
        "placement": prof.placement,
        "row_pitch_mm": pitch,
        "trace_width_px": trace_w * ppm,
        "trace_rgb": list(ink),
        "paper_rgb": list(paper_rgb),
        "grid_major_rgb": list(major),
        "grid_minor_rgb": list(minor),
        "grid_major_width_px": w_major * ppm,
        "grid_minor_width_px": w_minor * ppm,
        "font": family,
        "font_pt": font_pt,
        "panels": panels_meta,
        "pulses": pulses_meta,
        "profile_conventions": asdict(prof),
    }
    return ForeignPage(image, truth, float(fs), meta, plan)


# -- artifacts ------------------------------------------------------------------------------------
def sample_artifacts(seed: int) -> dict:
    """Draw the artifact parameters for one page (each effect on with some probability)."""
    rng = np.random.default_rng([seed, 0xA27])
    p: dict = {}
    if rng.random() < 0.7:
        p["rotation_deg"] = float(rng.uniform(-1.5, 1.5))
    if rng.random() < 0.7:
        p["lighting"] = {
            "strength": float(rng.uniform(0.1, 0.35)),
            "angle": float(rng.uniform(0, 2 * math.pi)),
            "centre": [float(rng.uniform(0, 1)), float(rng.uniform(0, 1))],
        }
    if rng.random() < 0.5:
        p["crease"] = {
            "vertical": bool(rng.random() < 0.6),
            "pos": float(rng.uniform(0.2, 0.8)),
            "tilt": float(rng.uniform(-0.03, 0.03)),
            "width_px": float(rng.uniform(2.0, 8.0)),
            "depth": float(rng.uniform(0.1, 0.3)),
        }
    if rng.random() < 0.6:
        p["blur_px"] = float(rng.uniform(0.4, 1.2))
    if rng.random() < 0.7:
        p["noise_sigma"] = float(rng.uniform(2.0, 8.0))
    if rng.random() < 0.7:
        p["jpeg_quality"] = int(rng.integers(35, 86))
    p["noise_seed"] = int(rng.integers(2**31))
    return p


def apply_artifacts(image: np.ndarray, params: dict) -> np.ndarray:
    """Apply :func:`sample_artifacts`'s parameters to an RGB ``uint8 [H, W, 3]`` image (same
    size out). The truth signal is unchanged; pixel positions in ``meta`` no longer hold."""
    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if "rotation_deg" in params:
        fill = tuple(int(v) for v in np.median(np.asarray(img)[:8].reshape(-1, 3), axis=0))
        img = img.rotate(params["rotation_deg"], resample=Image.BICUBIC, fillcolor=fill)
    a = np.asarray(img).astype(np.float32)
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if "lighting" in params:
        li = params["lighting"]
        ramp = (np.cos(li["angle"]) * xx / w + np.sin(li["angle"]) * yy / h) * 0.5 + 0.5
        cx, cy = li["centre"][0] * w, li["centre"][1] * h
        spot = np.exp(-(((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2) * 3.0)
        a *= (1.0 - li["strength"] * (0.6 * ramp + 0.4 * (1 - spot)))[..., None]
    if "crease" in params:
        cr = params["crease"]
        if cr["vertical"]:
            d = xx - (cr["pos"] * w + cr["tilt"] * yy)
        else:
            d = yy - (cr["pos"] * h + cr["tilt"] * xx)
        shade = 1.0 - cr["depth"] * np.exp(-0.5 * (d / cr["width_px"]) ** 2)
        shade += 0.5 * cr["depth"] * np.exp(-0.5 * ((d - 1.5 * cr["width_px"]) / 1.5) ** 2)
        a *= shade[..., None]
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if "blur_px" in params:
        img = img.filter(ImageFilter.GaussianBlur(params["blur_px"]))
    a = np.asarray(img).astype(np.float32)
    if "noise_sigma" in params:
        noise = np.random.default_rng(params["noise_seed"]).normal(size=a.shape)
        a = a + (params["noise_sigma"] * noise).astype(np.float32)
    out = np.clip(a, 0, 255).astype(np.uint8)
    if "jpeg_quality" in params:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=params["jpeg_quality"])
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()
    return out


def add_artifacts(image: np.ndarray, seed: int) -> np.ndarray:
    """Small rotation, uneven lighting, a crease, blur, noise and JPEG, drawn from ``seed``:
    ``uint8 [H, W, 3]`` in, same shape out."""
    return apply_artifacts(image, sample_artifacts(seed))


# -- records ------------------------------------------------------------------------------------
def read_record(
    path: Path, digital_uv: bool = False, center: bool = True
) -> tuple[np.ndarray, float]:
    """A WFDB record as ``float32 [12, T]`` mV in :data:`LEAD_NAMES` order (lead names matched
    case-insensitively; a missing lead is NaN) and its fs. ``digital_uv``: read the stored
    integers minus the header baseline as uV (LUDB, whose header gains are not the true scale).
    ``center``: subtract each lead's median over the first 10 s, as a cart's baseline
    restoration does (LUDB leads carry DC offsets of up to several mV).

    Raises:
        ValueError: naming the file, if it cannot be read or has none of the 12 leads.
    """
    import wfdb

    path = Path(path)
    try:
        rec = wfdb.rdrecord(str(path.with_suffix("")), physical=not digital_uv)
    except Exception as exc:  # noqa: BLE001 - any wfdb failure is a bad file
        raise ValueError(f"{path}: cannot read WFDB record ({exc})") from None
    if digital_uv:
        data = (rec.d_signal.astype(np.float64) - np.asarray(rec.baseline)) / 1000.0
    else:
        data = rec.p_signal.astype(np.float64)
        units = [u.lower() for u in rec.units]
        data = data * np.array([1e-3 if u in ("uv", "µv") else 1.0 for u in units])
    names = [n.strip().lower() for n in rec.sig_name]
    out = np.full((12, data.shape[0]), np.nan, dtype=np.float32)
    found = 0
    for i, lead in enumerate(LEAD_NAMES):
        if lead.lower() in names:
            out[i] = data[:, names.index(lead.lower())]
            found += 1
    if not found:
        raise ValueError(f"{path}: none of the 12 standard leads in {rec.sig_name}")
    if center:
        shown = out[:, : max(1, round(ROW_SECONDS * rec.fs))]
        with warnings.catch_warnings():  # an all-NaN lead has no median: leave it
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(shown, axis=1)
        out -= np.nan_to_num(med)[:, None].astype(np.float32)
    return out, float(rec.fs)


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Draw foreign-style ECG pages with truth.")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--records",
        type=Path,
        default=None,
        help="WFDB folder (default: the held-out LUDB records)",
    )
    p.add_argument("--profile", choices=PROFILES, default=None, help="default: cycle all")
    p.add_argument("--dpi", type=float, default=None, help="default: U(150, 300) per page")
    p.add_argument("--artifacts", action="store_true", help="also write STEM_art.png")
    p.add_argument("--pdf", action="store_true", help="also write a vector STEM.pdf")
    a = p.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    folder = a.records or root / "digitizer" / "data" / "ludb"
    ludb = a.records is None
    heads = sorted(folder.glob("*.hea"), key=lambda q: (len(q.stem), q.stem))
    if not heads:
        print(f"error: {folder}: no WFDB headers", file=sys.stderr)
        return 2
    cells = [c for c in profile_layouts() if a.profile in (None, c[0])]
    rng = np.random.default_rng(a.seed)
    failed = 0
    for k in range(a.num):
        head = heads[k % len(heads)]
        try:
            sig, fs = read_record(head, digital_uv=ludb)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        prof, lay = cells[k % len(cells)]
        dpi = a.dpi or float(rng.uniform(150, 300))
        page = draw_page(sig, fs, prof, seed=a.seed * 100_000 + k, dpi=dpi, layout=lay)
        stem = a.out / f"{k:05d}_{prof}_{lay}"
        page.save(stem, pdf=a.pdf)
        if a.artifacts:
            art = add_artifacts(page.image, seed=a.seed * 100_000 + k)
            Image.fromarray(art).save(stem.with_name(stem.name + "_art.png"))
        print(f"{stem}.png  {head.name}  {prof} {lay} {dpi:.0f} dpi")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_main())
