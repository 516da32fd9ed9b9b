"""Test PDFs: vector ECG pages drawn with matplotlib from a known signal, and hand-written PDF
bytes (tiny valid files and the bad cases the digitizer must refuse).

The vector page uses its own geometry (not ecgsynth's and not the digitizer's): Letter or A4
landscape, a 1 mm / 5 mm grid of page-long lines, a 1 mV pulse of 0.2 s at the left of each row,
panels drawn as separate polylines with the lead name above their start, 25 mm/s, 10 mm/mV.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ecgsynth.layout import LAYOUTS, LEADS

MM_PER_IN = 25.4


def vector_ecg_pdf(
    path: Path,
    signal: np.ndarray,
    fs: float,
    layout: str = "3x4",
    paper: tuple[float, float] = (279.4, 215.9),
    speed: float = 25.0,
    gain: float = 10.0,
    labels: bool = True,
    pulses: bool = True,
    grid: bool = True,
    simplify: bool = False,
    scale: float = 1.0,
) -> np.ndarray:
    """Draw ``signal`` ``[12, T]`` (mV, 10 s) as a vector PDF page; returns the truth ``[12, T]``
    with NaN where the page shows nothing. ``scale`` < 1 prints the page shrunk (every paper
    mm is ``scale`` page mm, as a "fit to page" export does)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    short, rhythm = LAYOUTS[layout]
    rows = [list(r) for r in short] + [[lead] for lead in rhythm]
    w, h = paper[0] / scale, paper[1] / scale  # in paper mm
    n = signal.shape[1]
    seconds = n / fs
    truth = np.full_like(signal, np.nan)
    with matplotlib.rc_context({"path.simplify": simplify}):
        fig = plt.figure(figsize=(paper[0] / MM_PER_IN, paper[1] / MM_PER_IN))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)  # y down, as on the page
        ax.axis("off")
        x_left, x_right = 18.0, 18.0 + seconds * speed
        top, bottom = 25.0, h - 12.0
        if grid:
            for k, x in enumerate(np.arange(x_left - 8, x_right + 1e-9, 1.0)):
                ax.plot(
                    [x, x],
                    [top - 10, bottom],
                    lw=0.6 if k % 5 == 0 else 0.2,
                    color=(1.0, 0.55, 0.55) if k % 5 == 0 else (1.0, 0.8, 0.8),
                )
            for k, y in enumerate(np.arange(top - 10, bottom + 1e-9, 1.0)):
                ax.plot(
                    [x_left - 8, x_right],
                    [y, y],
                    lw=0.6 if k % 5 == 0 else 0.2,
                    color=(1.0, 0.55, 0.55) if k % 5 == 0 else (1.0, 0.8, 0.8),
                )
        pitch = (bottom - top) / len(rows)
        for r, leads in enumerate(rows):
            base = top + (r + 0.6) * pitch
            if pulses:
                px = x_left - 7.0
                ax.plot(
                    [px, px + 1, px + 1, px + 6, px + 6, px + 7],
                    [base, base, base - gain, base - gain, base, base],
                    lw=0.5,
                    color="k",
                )
            k = len(leads)
            edges = np.round(np.linspace(0, n, k + 1)).astype(int)
            for c, lead in enumerate(leads):
                i = LEADS.index(lead)
                s = np.arange(edges[c], edges[c + 1])
                x = x_left + s / fs * speed
                ax.plot(x, base - gain * signal[i, s], lw=0.5, color="k")
                truth[i, s] = signal[i, s]
                if labels:
                    ax.text(x[0] + 1.0, base - 5.0, lead, fontsize=7)
        ax.text(10, 10, f"{speed:g} mm/s   {gain:g} mm/mV   test page", fontsize=8)
        fig.savefig(path, format="pdf")
        plt.close(fig)
    return truth


# --------------------------------------------------------------------------------------------
# hand-written PDF bytes
# --------------------------------------------------------------------------------------------


def pdf_bytes(
    pages: list[bytes],
    media: tuple[float, float] = (792.0, 612.0),
    trailer_extra: bytes = b"",
    resources: bytes = b"<< >>",
    extra: tuple[bytes, ...] = (),
) -> bytes:
    """A minimal, valid PDF with one page per content stream in ``pages`` (``media`` in pt).
    ``extra`` objects are numbered after the pages' (``3 + 2 * len(pages)`` on) and may be
    referenced from ``resources``."""
    objs: list[bytes] = []
    n = len(pages)
    kids = b" ".join(f"{3 + 2 * i} 0 R".encode() for i in range(n))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(n).encode() + b" >>")
    box = f"[0 0 {media[0]:g} {media[1]:g}]".encode()
    for i, stream in enumerate(pages):
        page = f"<< /Type /Page /Parent 2 0 R /MediaBox {box.decode()} /Contents {4 + 2 * i} 0 R"
        objs.append(page.encode() + b" /Resources " + resources + b" >>")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.extend(extra)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, body in enumerate(objs):
        offsets.append(len(out))
        out += f"{k + 1} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R ".encode() + trailer_extra
    out += f">>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def image_bomb_pdf_bytes(side: int = 20_000) -> bytes:
    """One page showing a ``side`` x ``side`` greyscale image whose Flate data is a few bytes
    (decoding it would take ``side**2`` bytes of memory)."""
    data = zlib.compress(b"\x00" * 1024)
    image = (
        (
            f"<< /Type /XObject /Subtype /Image /Width {side} /Height {side} "
            f"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode "
            f"/Length {len(data)} >>\nstream\n"
        ).encode()
        + data
        + b"\nendstream"
    )
    return pdf_bytes(
        [b"q 792 0 0 612 0 0 cm /Im0 Do Q"],
        resources=b"<< /XObject << /Im0 5 0 R >> >>",
        extra=(image,),
    )


def encrypted_pdf_bytes() -> bytes:
    """A PDF whose standard security handler needs a user password we do not have (its /U
    entry does not match the empty password)."""
    enc = (
        b"/Encrypt << /Filter /Standard /V 1 /R 2 /Length 40 /P -4 "
        b"/O <" + b"11" * 32 + b"> /U <" + b"22" * 32 + b"> >> "
        b"/ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] "
    )
    return pdf_bytes([b"0 0 m 100 100 l S"], trailer_extra=enc)


def content_bomb_pdf_bytes(decoded_mb: int = 300) -> bytes:
    """One page whose Flate content stream is a few hundred kilobytes that inflate to
    ``decoded_mb`` MiB of spaces."""
    z = zlib.compressobj(9)
    block = b" " * 2**20
    data = b"".join(z.compress(block) for _ in range(decoded_mb)) + z.flush()
    out = pdf_bytes([b"X" * len(data)])
    plain = b"<< /Length %d >>" % len(data)
    return out.replace(
        plain + b"\nstream\n" + b"X" * len(data),
        b"<< /Length %d /Filter /FlateDecode >>" % len(data) + b"\nstream\n" + data,
    )
