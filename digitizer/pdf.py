"""PDF in: a PDF file -> pages, each an RGB image (raster pages) or drawing paths (vector pages).

Hospital archives export ECGs as PDFs: scans (a raster image per page) or vector files written
by the cart software (every trace a drawing path). This module opens a PDF safely with pypdfium2
(Apache-2.0/BSD) and gives, per page,

- its **content** (:class:`PageContent`): every stroked drawing path as polylines in page
  millimetres (``x`` right, ``y`` down from the top-left corner of the displayed page; curves
  flattened), the text objects with their boxes, and the embedded images' pixel sizes;
- its **raster**: ``uint8 [H, W, 3]`` RGB rendered at the embedded image's own resolution (the
  largest image on the page), else :data:`RASTER_DPI`, so ``px/mm = dpi / 25.4`` exactly.

:func:`input_pages` turns any input file (image or PDF) into pages to digitize: a vector page
whose paths look like an ECG is read from the paths (:func:`digitizer.vector.read_vector`, exact
to the PDF's coordinates), any other page goes through the image pipeline.

Limits (a PDF bomb must not exhaust memory; each is checked before the costly step): the file is
at most :data:`MAX_PDF_BYTES`, has at most :data:`MAX_PAGES` pages, each page at most
:data:`MAX_PAGE_MM` on a side, :data:`MAX_PAGE_OBJECTS` objects and :data:`MAX_PATH_POINTS` path
points; no embedded image and no rendering exceeds :data:`digitizer.io.MAX_PIXELS`. Encrypted
files that need a password, corrupt, truncated (no ``%%EOF`` marker near the end) and page-less
files are refused. Every refusal is an :class:`~digitizer.io.ImageError` naming the file (and the
page) and the reason.
"""

from __future__ import annotations

import ctypes
import math
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from .io import MAX_PIXELS, ImageError, read_image

PDF_SUFFIXES: tuple[str, ...] = (".pdf",)
MAX_PDF_BYTES = 256 * 2**20  # 256 MiB: far above any ECG export
MAX_PAGES = 100  # a multi-page ECG export has a handful
MAX_PAGE_MM = 1200.0  # longest side; A0 is 841 x 1189 mm
MAX_PAGE_OBJECTS = 200_000  # a dense vector ECG page has a few thousand
MAX_PATH_POINTS = 2_000_000  # 12 leads x 10 s x 1 kHz is 120k points
MAX_STREAM_BYTES = 4 * MAX_PIXELS  # decoded size of one stream: the largest image, RGBA
RASTER_DPI = 300.0  # raster resolution when the page has no embedded image
MIN_RASTER_DPI, MAX_RASTER_DPI = 72.0, 600.0  # the embedded image's dpi is clamped to this
PREVIEW_DPI = 100.0  # vector pages are rendered at this resolution for overlays only
EOF_WINDOW = 4096  # the %%EOF marker must lie in the last this many bytes
PT_PER_MM = 72.0 / 25.4
BEZIER_STEPS = 8  # a cubic Bezier curve is flattened into this many chords


@dataclass
class Polyline:
    """One stroked subpath.

    Attributes:
        points: ``float64 [N, 2]`` ``(x, y)`` in page mm (``y`` down from the top edge).
        width: stroke width (mm, after the object's transform).
        colour: stroke colour ``(r, g, b)`` in 0..255.
        closed: the subpath was closed (``h`` operator) or returns to its first point.
        order: drawing order of its path object on the page.
    """

    points: np.ndarray
    width: float
    colour: tuple[int, int, int]
    closed: bool
    order: int


@dataclass
class TextItem:
    """A text object: its string and box ``(x0, y0, x1, y1)`` in page mm (``y`` down)."""

    text: str
    box: tuple[float, float, float, float]


@dataclass
class PageContent:
    """What a PDF page is made of, in page millimetres.

    Attributes:
        size_mm: ``(width, height)`` of the displayed page (rotation applied).
        polylines: every stroked subpath, in drawing order.
        texts: the text objects.
        images: ``(px_w, px_h, (x0, y0, x1, y1) mm)`` of each embedded image.
    """

    size_mm: tuple[float, float]
    polylines: list[Polyline] = field(default_factory=list)
    texts: list[TextItem] = field(default_factory=list)
    images: list[tuple[int, int, tuple[float, float, float, float]]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# opening and checking
# --------------------------------------------------------------------------------------------


def is_pdf(path: str | os.PathLike) -> bool:
    """``True`` for a ``.pdf`` name (any case)."""
    return Path(path).suffix.lower() in PDF_SUFFIXES


def open_pdf(
    path: str | os.PathLike,
    max_pages: int = MAX_PAGES,
    max_bytes: int = MAX_PDF_BYTES,
    check_streams: bool = True,
) -> pdfium.PdfDocument:
    """Open a PDF for reading; the caller closes it.

    ``check_streams``: first measure what every compressed stream decodes to
    (:func:`_check_streams`; skip it only for a file already checked).

    Raises:
        ImageError: missing, empty, too large, not a PDF, truncated, a stream that decodes to
            more than :data:`MAX_STREAM_BYTES` (a decompression bomb), corrupt, encrypted (needs
            a password), no pages, or more than ``max_pages`` pages.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(path, "no such file")
    size = path.stat().st_size
    if size == 0:
        raise ImageError(path, "empty file")
    if size > max_bytes:
        raise ImageError(path, f"{size:,} bytes exceeds the PDF size limit of {max_bytes:,}")
    with path.open("rb") as f:
        head = f.read(1024)
        f.seek(max(0, size - EOF_WINDOW))
        tail = f.read()
    if b"%PDF-" not in head:
        raise ImageError(path, "not a PDF (no %PDF- header)")
    if b"%%EOF" not in tail:
        raise ImageError(path, "truncated PDF (no %%EOF end marker)")
    if check_streams:
        _check_streams(path)
    try:
        doc = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as err:
        # PDFium's last-error code can be stale (a page-less file sets none): the file's own
        # bytes confirm what the code says
        code = getattr(err, "err_code", None)
        encrypted, no_pages = _scan_structure(path)
        if encrypted and code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            what = "needs a password" if code == pdfium_c.FPDF_ERR_PASSWORD else "unsupported"
            raise ImageError(path, f"encrypted PDF ({what})") from None
        if no_pages:
            raise ImageError(path, "PDF has no pages") from None  # PDFium refuses these
        why = _PDFIUM_ERRORS.get(code, "PDFium could not load it")
        raise ImageError(path, f"corrupt PDF ({why})") from None
    n = len(doc)
    if n == 0:
        doc.close()
        raise ImageError(path, "PDF has no pages")
    if n > max_pages:
        doc.close()
        raise ImageError(path, f"{n} pages exceeds the limit of {max_pages}")
    return doc


_STREAM = re.compile(rb"(?<!end)stream\r?\n")
_FLATE = re.compile(rb"/(?:FlateDecode|Fl)\b")
_LZW = re.compile(rb"/(?:LZWDecode|LZW)\b")
LZW_MAX_RATIO = 2730  # a 12-bit LZW code expands to at most 4096 bytes


def _check_streams(path: Path, limit: int = MAX_STREAM_BYTES) -> None:
    """Refuse a decompression bomb before PDFium inflates it: every Flate stream is inflated
    here in 1 MiB steps, counting (never keeping) its bytes, and refused past ``limit``; an
    LZW stream is refused when its worst-case expansion could pass it.

    PDFium parses a page's whole content stream when the page is loaded, so a few kilobytes
    of Flate data that inflate to gigabytes would otherwise exhaust memory there.
    """
    data = path.read_bytes()
    for m in _STREAM.finditer(data):
        head = data[max(0, m.start() - 1024) : m.start()]
        head = head[head.rfind(b"obj") + 1 :]  # the stream's own dictionary
        if _LZW.search(head):
            end = data.find(b"endstream", m.end())
            size = (end if end >= 0 else len(data)) - m.end()
            if size * LZW_MAX_RATIO > limit:
                raise ImageError(
                    path,
                    f"an LZW stream of {size:,} bytes may decode to more than {limit:,} bytes "
                    "(refused as a decompression bomb)",
                )
        if not _FLATE.search(head):
            continue
        z = zlib.decompressobj()
        total, pos, chunk = 0, m.end(), 1 << 16
        try:
            while not z.eof and pos < len(data):
                out = z.decompress(data[pos : pos + chunk], 1 << 20)
                total += len(out)
                # bytes past the end of the Flate data stay in unconsumed_tail once eof is set
                while z.unconsumed_tail and not z.eof and total <= limit:
                    out = z.decompress(z.unconsumed_tail, 1 << 20)
                    total += len(out)
                if total > limit:
                    raise ImageError(
                        path,
                        f"a stream decodes to more than {limit:,} bytes (refused as a "
                        "decompression bomb)",
                    )
                pos += chunk
        except zlib.error:
            continue  # not valid Flate data: PDFium reports or repairs it


_PDFIUM_ERRORS = {
    pdfium_c.FPDF_ERR_FILE: "file cannot be read",
    pdfium_c.FPDF_ERR_FORMAT: "no readable PDF structure",
    pdfium_c.FPDF_ERR_PAGE: "page tree or content is broken",
}
_NO_PAGES = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+0\b|/Count\s+0\b[^>]*?/Type\s*/Pages\b")
_ENCRYPT = re.compile(rb"/Encrypt\b")


def _scan_structure(path: Path, max_bytes: int = 16 * 2**20) -> tuple[bool, bool]:
    """``(has an /Encrypt entry, page tree says /Count 0)`` from the raw bytes of a file PDFium
    could not load (to name the real problem)."""
    with path.open("rb") as f:
        data = f.read(max_bytes)
    return bool(_ENCRYPT.search(data)), bool(_NO_PAGES.search(data))


def page_size_mm(doc: pdfium.PdfDocument, index: int) -> tuple[float, float]:
    """``(width, height)`` of page ``index`` in mm, read without loading the page."""
    size = pdfium_c.FS_SIZEF()
    if not pdfium_c.FPDF_GetPageSizeByIndexF(doc.raw, index, size):
        return float("nan"), float("nan")
    return size.width / PT_PER_MM, size.height / PT_PER_MM


def pdf_page_count(path: str | os.PathLike) -> int:
    """Number of pages of a PDF (raises :class:`ImageError` as :func:`open_pdf`)."""
    doc = open_pdf(path)
    try:
        return len(doc)
    finally:
        doc.close()


def page_stems(stem: str, count: int) -> list[str]:
    """Output stems of a ``count``-page input: ``[stem]`` or ``[stem_p1, ..., stem_pN]``."""
    return [stem] if count == 1 else [f"{stem}_p{k}" for k in range(1, count + 1)]


# --------------------------------------------------------------------------------------------
# page content
# --------------------------------------------------------------------------------------------


def _display_map(page: pdfium.PdfPage) -> tuple[np.ndarray, tuple[float, float]]:
    """Affine ``[2, 3]`` from PDF page space (pt, ``y`` up) to displayed page mm (``y`` down),
    with the page's crop box and ``/Rotate`` applied; and the displayed size in mm."""
    left, bottom, right, top = page.get_cropbox()
    rot = page.get_rotation() % 360
    s = 1.0 / PT_PER_MM
    maps = {
        0: [[1, 0, -left], [0, -1, top]],
        90: [[0, 1, -bottom], [1, 0, -left]],
        180: [[-1, 0, right], [0, 1, -bottom]],
        270: [[0, -1, top], [-1, 0, right]],
    }
    m = np.array(maps.get(rot, maps[0]), dtype=np.float64) * s
    w, h = (right - left) * s, (top - bottom) * s
    return m, ((h, w) if rot in (90, 270) else (w, h))


def _matrix(obj_raw) -> np.ndarray:
    """The object's matrix as a ``[3, 3]`` affine acting on column vectors ``(x, y, 1)``."""
    m = pdfium_c.FS_MATRIX()
    if not pdfium_c.FPDFPageObj_GetMatrix(obj_raw, m):
        return np.eye(3)
    return np.array([[m.a, m.c, m.e], [m.b, m.d, m.f], [0.0, 0.0, 1.0]])


def _path_subpaths(obj_raw) -> list[tuple[np.ndarray, bool]]:
    """Subpaths of a path object in its own space: ``([N, 2] points, closed)``; cubic curves
    flattened into :data:`BEZIER_STEPS` chords."""
    n = pdfium_c.FPDFPath_CountSegments(obj_raw)
    x, y = ctypes.c_float(), ctypes.c_float()
    out: list[tuple[np.ndarray, bool]] = []
    cur: list[tuple[float, float]] = []
    closed = False
    bez: list[tuple[float, float]] = []
    for i in range(max(n, 0)):
        seg = pdfium_c.FPDFPath_GetPathSegment(obj_raw, i)
        if not seg or not pdfium_c.FPDFPathSegment_GetPoint(seg, x, y):
            continue
        kind = pdfium_c.FPDFPathSegment_GetType(seg)
        p = (float(x.value), float(y.value))
        if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
            if len(cur) > 1:
                out.append((np.asarray(cur), closed))
            cur, closed, bez = [p], False, []
        elif kind == pdfium_c.FPDF_SEGMENT_BEZIERTO:
            bez.append(p)
            if len(bez) == 3 and cur:
                p0, (c1, c2, p3) = np.asarray(cur[-1]), np.asarray(bez)
                t = np.linspace(0, 1, BEZIER_STEPS + 1)[1:, None]
                pts = (
                    (1 - t) ** 3 * p0
                    + 3 * (1 - t) ** 2 * t * c1
                    + 3 * (1 - t) * t**2 * c2
                    + t**3 * p3
                )
                cur.extend(map(tuple, pts))
                bez = []
        else:
            cur.append(p)
        if pdfium_c.FPDFPathSegment_GetClose(seg):
            closed = True
            if cur and cur[-1] != cur[0]:
                cur.append(cur[0])
    if len(cur) > 1:
        out.append((np.asarray(cur), closed))
    return out


def page_content(page: pdfium.PdfPage, label: str = "page") -> PageContent:
    """Stroked paths, texts and images of ``page`` in displayed page mm (see :class:`PageContent`).

    Form XObjects are entered (their matrices composed). Filled-only paths (glyph outlines,
    backgrounds) are left out: ECG traces, pulses and grid lines are stroked.

    Raises:
        ImageError: more than :data:`MAX_PAGE_OBJECTS` objects or :data:`MAX_PATH_POINTS` points.
    """
    disp, size = _display_map(page)
    content = PageContent(size)
    textpage = page.get_textpage()
    state = {"objects": 0, "points": 0}

    def visit(count, get, parent, mat: np.ndarray, depth: int) -> None:
        n = count(parent)
        state["objects"] += max(n, 0)
        if state["objects"] > MAX_PAGE_OBJECTS:
            raise ImageError(label, f"more than {MAX_PAGE_OBJECTS:,} page objects")
        for i in range(max(n, 0)):
            obj = get(parent, i)
            if not obj:
                continue
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            m = mat @ _matrix(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 8:
                visit(
                    pdfium_c.FPDFFormObj_CountObjects,
                    pdfium_c.FPDFFormObj_GetObject,
                    obj,
                    m,
                    depth + 1,
                )
            elif kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                _add_path(content, obj, disp @ m, len(content.polylines), state, label)
            elif kind == pdfium_c.FPDF_PAGEOBJ_TEXT:
                box = _bounds_mm(obj, disp @ mat)
                text = _text_of(obj, textpage)
                if text.strip() and box is not None:
                    content.texts.append(TextItem(text.strip(), box))
            elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE:
                w, h = ctypes.c_uint(), ctypes.c_uint()
                box = _bounds_mm(obj, disp @ mat)
                if pdfium_c.FPDFImageObj_GetImagePixelSize(obj, w, h) and box is not None:
                    content.images.append((int(w.value), int(h.value), box))

    try:
        visit(pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, page.raw, np.eye(3), 0)
    finally:
        textpage.close()
    return content


def _add_path(
    content: PageContent, obj, m: np.ndarray, order: int, state: dict, label: str
) -> None:
    fill, stroke = ctypes.c_int(), ctypes.c_int()
    if not pdfium_c.FPDFPath_GetDrawMode(obj, fill, stroke) or not stroke.value:
        return
    r, g, b, a = (ctypes.c_uint() for _ in range(4))
    pdfium_c.FPDFPageObj_GetStrokeColor(obj, r, g, b, a)
    w = ctypes.c_float()
    pdfium_c.FPDFPageObj_GetStrokeWidth(obj, w)
    width = float(w.value) * math.sqrt(abs(np.linalg.det(m[:2, :2])))  # m already in mm
    for pts, closed in _path_subpaths(obj):
        state["points"] += len(pts)
        if state["points"] > MAX_PATH_POINTS:
            raise ImageError(label, f"more than {MAX_PATH_POINTS:,} path points")
        mm = pts @ m[:2, :2].T + m[:2, 2]
        closed = closed or bool(np.allclose(mm[0], mm[-1]) and len(mm) > 2)
        colour = (int(r.value), int(g.value), int(b.value))
        content.polylines.append(Polyline(mm, width, colour, closed, order))


def _bounds_mm(obj, m: np.ndarray) -> tuple[float, float, float, float] | None:
    """Bounding box of an object (in its container's space, mapped by ``m``) in page mm."""
    lo, bo, ro, to = (ctypes.c_float() for _ in range(4))
    if not pdfium_c.FPDFPageObj_GetBounds(obj, lo, bo, ro, to):
        return None
    corners = np.array([[lo.value, bo.value], [ro.value, to.value]], dtype=np.float64)
    c = corners @ m[:2, :2].T + m[:2, 2]
    return (float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max()))


def _text_of(obj, textpage) -> str:
    n = pdfium_c.FPDFTextObj_GetText(obj, textpage.raw, None, 0)
    if n <= 2:
        return ""
    buf = (ctypes.c_ushort * (n // 2))()
    pdfium_c.FPDFTextObj_GetText(obj, textpage.raw, buf, n)
    return bytes(memoryview(buf)).decode("utf-16-le", errors="replace").rstrip("\x00")


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def raster_dpi(content: PageContent) -> float:
    """The page's raster resolution: the largest embedded image's own dpi (its pixels over its
    size on the page, the finer axis; clamped to 72..600), else :data:`RASTER_DPI`."""
    best, area = RASTER_DPI, 0.0
    for w, h, (x0, y0, x1, y1) in content.images:
        a = (x1 - x0) * (y1 - y0)
        if a > area and x1 - x0 > 1 and y1 - y0 > 1:
            area = a
            best = max(w / (x1 - x0), h / (y1 - y0)) * 25.4
    return round(float(min(max(best, MIN_RASTER_DPI), MAX_RASTER_DPI)), 3)


def render_page(
    page: pdfium.PdfPage, dpi: float, label: str = "page", max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Render ``page`` at ``dpi`` on white: RGB ``uint8 [H, W, 3]`` (``px/mm = dpi / 25.4``).

    Raises:
        ImageError: the rendering would exceed ``max_pixels`` (checked before rendering).
    """
    w_pt, h_pt = page.get_size()
    # whole pixels, rounded (not ceiled: 792 pt at 80 dpi is 880.0000000000001 px, and a
    # 1-px stretch would resample an embedded scan that otherwise maps 1:1)
    w, h = max(1, round(w_pt * dpi / 72.0)), max(1, round(h_pt * dpi / 72.0))
    if w * h > max_pixels:
        raise ImageError(
            label,
            f"renders to {w}x{h} = {w * h:,} pixels at {dpi:g} dpi, over the limit of "
            f"{max_pixels:,}",
        )
    bitmap = pdfium.PdfBitmap.new_native(w, h, pdfium_c.FPDFBitmap_BGR, rev_byteorder=True)
    try:
        bitmap.fill_rect((255, 255, 255, 255), 0, 0, w, h)
        flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
        pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, w, h, 0, flags)
        rgb = np.array(bitmap.to_numpy()[..., :3], copy=True)
    finally:
        bitmap.close()
    return rgb


def scan_pixels(page: pdfium.PdfPage, max_pixels: int = MAX_PIXELS) -> np.ndarray | None:
    """The pixels of a scanned page as stored, RGB ``uint8 [H, W, 3]``: when the page is one
    upright image covering it (nothing else drawn, no rotation or flip), its own pixels are
    the page at the image's resolution, with no resampling (a renderer would interpolate even
    at 1:1). ``None`` for any other page (render it instead)."""
    if page.get_rotation() % 360 or pdfium_c.FPDFPage_CountObjects(page.raw) != 1:
        return None
    obj = pdfium_c.FPDFPage_GetObject(page.raw, 0)
    if pdfium_c.FPDFPageObj_GetType(obj) != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return None
    m = _matrix(obj)
    left, bottom, right, top = page.get_cropbox()
    x0, x1, y0, y1 = m[0, 2], m[0, 2] + m[0, 0], m[1, 2], m[1, 2] + m[1, 1]
    tol = 0.01 * max(right - left, top - bottom)
    upright = m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] > 0 and m[1, 1] > 0
    if not upright or max(abs(x0 - left), abs(x1 - right), abs(y0 - bottom), abs(y1 - top)) > tol:
        return None
    w, h = ctypes.c_uint(), ctypes.c_uint()
    if not pdfium_c.FPDFImageObj_GetImagePixelSize(obj, w, h) or w.value * h.value > max_pixels:
        return None
    raw = pdfium_c.FPDFImageObj_GetBitmap(obj)
    if not raw:
        return None
    bitmap = pdfium.PdfBitmap.from_raw(raw)  # ours: its finalizer destroys it
    a = bitmap.to_numpy()
    if bitmap.format == pdfium_c.FPDFBitmap_Gray:
        rgb = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
    elif bitmap.format in (pdfium_c.FPDFBitmap_BGR, pdfium_c.FPDFBitmap_BGRx):
        rgb = np.ascontiguousarray(a[..., 2::-1])
    else:  # BGRA (a soft mask needs compositing) or anything unusual: render instead
        return None
    return rgb.astype(np.uint8, copy=True)


# --------------------------------------------------------------------------------------------
# inputs -> digitized pages
# --------------------------------------------------------------------------------------------


@dataclass
class InputPage:
    """One page of an input file: its output stem, then (after :meth:`read`) its reading.

    Attributes:
        stem: output stem (``STEM`` or ``STEM_pK``).
        label: how messages name the page (``file.pdf`` or ``file.pdf page K``).
        record: the :class:`~digitizer.pipeline.Digitized` result (``record.source`` says
            ``"raster"`` or ``"vector"``), ``None`` until read or when refused.
        image: the page as the image ``record.rows`` refer to (for overlays), ``uint8 [H, W, 3]``.
        error: why the file or page was refused, ``None`` when read (or not read yet).
    """

    stem: str
    label: str
    record: object | None = None
    image: np.ndarray | None = None
    error: ImageError | None = None
    load: Callable[[], tuple[object, np.ndarray]] | None = field(default=None, repr=False)

    def read(self) -> InputPage:
        """Digitize the page (once); a failure is kept in :attr:`error`, never raised."""
        if self.load is not None and self.error is None and self.record is None:
            try:
                self.record, self.image = self.load()
            except ImageError as err:
                self.error = err
            except Exception as err:  # noqa: BLE001 - one bad page must not stop the batch
                self.error = ImageError(
                    self.label, f"digitizer failed ({type(err).__name__}: {err})"
                )
            self.load = None
        return self


def input_pages(dig, path: str | os.PathLike) -> Iterator[InputPage]:
    """The pages of one input file, to digitize with ``dig`` (a
    :class:`~digitizer.pipeline.Digitizer`): an image gives one page ``STEM``; a PDF gives
    ``STEM`` (one page) or ``STEM_p1..pN``, each read from its vector paths when they look like
    an ECG, else rendered and read as an image.

    Pages are read only on :meth:`InputPage.read` (each opens the PDF for itself), so a caller
    can skip a page (a duplicate stem) without reading it, and reading one page at a time keeps
    one page's pixels in memory. A file that cannot be opened gives one page with ``error`` set.
    """
    path = Path(path)
    if not is_pdf(path):

        def load() -> tuple[object, np.ndarray]:
            image = read_image(path)
            return dig.digitize(image), image

        yield InputPage(path.stem, str(path), load=load)
        return
    try:
        count = pdf_page_count(path)
    except ImageError as err:
        yield InputPage(path.stem, str(path), error=err)
        return
    stems = page_stems(path.stem, count)
    for k, stem in enumerate(stems):
        label = str(path) if len(stems) == 1 else f"{path} page {k + 1}"
        yield InputPage(stem, label, load=partial(_digitize_pdf_page, dig, path, k, label))


def digitize_input(dig, path: str | os.PathLike) -> Iterator[InputPage]:
    """:func:`input_pages`, each page read."""
    for page in input_pages(dig, path):
        yield page.read()


def _digitize_pdf_page(dig, path: Path, k: int, label: str):
    """``(Digitized, image)`` of page ``k``: vector when the paths are an ECG, else raster."""
    doc = open_pdf(path, check_streams=False)  # checked when the pages were counted
    try:
        return _digitize_doc_page(dig, doc, k, label)
    finally:
        doc.close()


def _digitize_doc_page(dig, doc: pdfium.PdfDocument, k: int, label: str):
    from .vector import read_vector  # the vector reader imports the pipeline's result type

    w_mm, h_mm = page_size_mm(doc, k)
    if not (np.isfinite(w_mm) and np.isfinite(h_mm)) or min(w_mm, h_mm) <= 0:
        raise ImageError(label, "page has no valid size")
    if max(w_mm, h_mm) > MAX_PAGE_MM:
        raise ImageError(
            label,
            f"page of {w_mm:.0f} x {h_mm:.0f} mm exceeds the limit of {MAX_PAGE_MM:g} mm a side",
        )
    page = doc[k]
    try:
        content = page_content(page, label)
        for w, h, _ in content.images:
            if w * h > MAX_PIXELS:
                raise ImageError(
                    label,
                    f"embedded image of {w}x{h} = {w * h:,} pixels exceeds "
                    f"the limit of {MAX_PIXELS:,}",
                )
        ppm = PREVIEW_DPI / 25.4
        rec, why = read_vector(
            content,
            fs=dig.fs,
            num_samples=dig.num_samples,
            paper_speed=dig.paper_speed,
            gain=dig.gain,
            px_per_mm=ppm,
            page_seconds=dig.page_seconds,
        )
        if rec is not None:
            return rec, render_page(page, PREVIEW_DPI, label)
        image = scan_pixels(page)
        if image is not None:  # the stored scan, at its own resolution
            dpi = round(image.shape[1] / content.size_mm[0] * 25.4, 3)
        else:
            dpi = raster_dpi(content)
            image = render_page(page, dpi, label)
        del content
        rec = dig.digitize(image)
        rec.source = "raster"
        rec.warnings.insert(0, f"read as a raster page at {dpi:g} dpi ({why})")
        page_ppm = dpi / 25.4
        grid_ppm = rec.grid.px_per_mm
        if rec.grid.source == "grid" and abs(grid_ppm / page_ppm - 1) > 0.03:
            rec.warnings.append(
                f"grid gives {grid_ppm:.3f} px/mm but the page size gives {page_ppm:.3f} px/mm "
                "(the page may be scaled or the grid misread)"
            )
        return rec, image
    finally:
        page.close()
