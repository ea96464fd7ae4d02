"""Figures: PNG images a probe renders in the worker, checked here and kept with the results.

A probe draws with matplotlib inside the sandboxed worker and returns the PNG bytes (the codec
carries ``bytes``). It uses a ``Figure`` of its own, not pyplot, so no backend or global state is
involved (the worker's environment also says ``MPLBACKEND=Agg``)::

    def learning_curve(mod, seed=0, figure=True):
        losses = np.asarray(mod.train(...), dtype=float)
        if not figure:              # the reference side: numbers only, nothing rendered
            return {"losses": losses}
        import io
        from matplotlib.figure import Figure
        fig = Figure(figsize=(4, 3), dpi=80)
        ax = fig.subplots()
        ax.plot(losses)
        ax.set(xlabel="epoch", ylabel="loss")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return {"losses": losses, "png": buf.getvalue()}

and the judge shows it beside the test with ``score.figure("learning curve", out["png"])``.

This module is the trusted side: it never imports matplotlib and never decodes an image. It reads
the PNG's chunk structure (signature, IHDR first, every chunk's CRC, IEND last, nothing after it,
no animation or compressed metadata chunks), bounds the image's width, height and bytes, and
writes the accepted figures to ``<out>/<submission>/figures/NN-<slug>.png``. Whatever a probe
returns came through student code, so a value that fails these checks is the student's mistake,
reported in words (``FigureError``), never a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 2 * 1024 * 1024  # one figure
MAX_SIDE = 2000  # pixels, width and height
MAX_PER_TEST = 4
MAX_PER_SUBMISSION = 24
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # all figures of one submission
FOLDER = "figures"
SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG's critical chunks and the ancillary ones a renderer writes; no APNG (acTL/fcTL/fdAT: frames
# without bound) and no compressed extras (iCCP, zTXt: a browser inflates them)
CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB",
                    b"sBIT", b"bKGD", b"pHYs", b"tIME", b"tEXt", b"iTXt"})
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
FILE_NAME = re.compile(r"figures/[0-9]{2}-[a-z0-9-]{1,40}\.png")


class FigureError(ValueError):
    """A value cannot be shown as a figure; the message says why, in the student's words."""


@dataclass
class Figure:
    title: str
    png: bytes
    width: int
    height: int
    file: str = ""  # "figures/NN-slug.png", once numbered for the results


def clean_title(title: Any) -> str:
    """One line of at most 80 characters that Markdown and HTML show as written."""
    kept = "".join(c if c.isalnum() or c in " .,:;-+=/%'!?" else " " for c in str(title))
    return " ".join(kept.split())[:80].strip() or "figure"


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].strip("-") or "figure"


def check_png(data: Any) -> tuple[int, int]:
    """(width, height) of a well-formed PNG within the bounds; FigureError otherwise."""
    if type(data) is not bytes:
        raise FigureError(f"expected the PNG file's bytes, got a value of type {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise FigureError(f"the PNG is {len(data):,} bytes; the limit is {MAX_BYTES:,} "
                          "(use a smaller figsize or dpi)")
    if not data.startswith(SIGNATURE):
        raise FigureError("not a PNG image (it does not start with the PNG signature)")
    pos, size, first, has_data = len(SIGNATURE), None, True, False
    while True:
        if pos + 12 > len(data):
            raise FigureError("the PNG is truncated (it ends before its IEND chunk)")
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if length > MAX_BYTES or end > len(data):
            raise FigureError("the PNG is truncated or corrupt (a chunk runs past its end)")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(kind + body) != crc:
            raise FigureError("the PNG is corrupt (a chunk's checksum does not match)")
        if kind not in CHUNKS:
            name = kind.decode("latin-1") if kind.isalpha() else repr(kind)
            raise FigureError(f"the PNG has a '{name}' chunk, which the grader does not show "
                              "(save a plain, not animated, PNG)")
        if first != (kind == b"IHDR"):
            raise FigureError("the PNG is corrupt (its first chunk must be IHDR, and only it)")
        if first:
            if length != 13:
                raise FigureError("the PNG is corrupt (bad IHDR chunk)")
            width, height, depth, color, comp, filt, lace = struct.unpack(">IIBBBBB", body)
            if depth not in _DEPTHS.get(color, ()) or comp or filt or lace > 1:
                raise FigureError("the PNG is corrupt (bad IHDR chunk)")
            if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
                raise FigureError(f"the image is {width} x {height} pixels; at most "
                                  f"{MAX_SIDE} x {MAX_SIDE} are shown (use a smaller figsize or dpi)")
            size, first = (width, height), False
        has_data = has_data or kind == b"IDAT"
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise FigureError("the PNG has data after its IEND chunk")
    if not has_data or size is None:
        raise FigureError("the PNG is corrupt (it has no image data)")
    return size


def accept(title: Any, png: Any, in_test: int, in_submission: int, total_bytes: int) -> Figure:
    """A Figure for a value a probe returned, given how many figures (and bytes) are already kept
    for this test and this submission; FigureError says why it cannot be kept."""
    width, height = check_png(png)
    if in_test >= MAX_PER_TEST:
        raise FigureError(f"a test shows at most {MAX_PER_TEST} figures")
    if in_submission >= MAX_PER_SUBMISSION:
        raise FigureError(f"a submission shows at most {MAX_PER_SUBMISSION} figures")
    if total_bytes + len(png) > MAX_TOTAL_BYTES:
        raise FigureError(f"the figures of a submission hold at most {MAX_TOTAL_BYTES:,} bytes")
    return Figure(clean_title(title), png, width, height)


def number(figs: list[Figure], start: int) -> int:
    """Give each figure its file name ``figures/NN-slug.png`` (NN counts from start + 1)."""
    for fig in figs:
        start += 1
        fig.file = f"{FOLDER}/{start:02d}-{slug(fig.title)}.png"
    return start


def _remove(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # fd-based on Linux: follows no link inside
    else:
        os.unlink(path)


def write(submission_dir: Path, figs: list[Figure]) -> None:
    """Replace ``submission_dir/figures/`` with these (numbered) figures; with none, remove it.

    The files are written into a folder made here (mkdtemp, mode 700), each created
    O_EXCL | O_NOFOLLOW relative to that folder, and the folder is renamed into place, so a
    reader never sees half of them and a figures/ left by an earlier grading goes away."""
    target = submission_dir / FOLDER
    _remove(target)
    figs = [f for f in figs if f.file]
    if not figs:
        return
    submission_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".figures-", dir=submission_dir))
    try:
        dfd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for fig in figs:
                name = fig.file.rpartition("/")[2]
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=dfd)
                with os.fdopen(fd, "wb") as f:
                    f.write(fig.png)
        finally:
            os.close(dfd)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read(submission_dir: Path, file: Any) -> bytes | None:
    """The bytes of a figure named in a results.json (``figures/NN-slug.png`` only), re-checked;
    None when it is missing or not a figure this module would have written."""
    if type(file) is not str or not FILE_NAME.fullmatch(file):
        return None
    try:
        dfd = os.open(submission_dir / FOLDER, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(file.rpartition("/")[2], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                     dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(MAX_BYTES + 1)
    try:
        check_png(data)
    except FigureError:
        return None
    return data
