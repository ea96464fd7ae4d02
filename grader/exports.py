"""Gradescope's "Export Submissions" archive as input to a batch.

The archive (a .zip, or the folder it unpacks to) holds one folder per submission and a
submission_metadata.yml mapping each folder to its submitters (Ruby-style keys, ``:name:``).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

METADATA = "submission_metadata.yml"
# An export is a class's code and notebooks: far below these, and a zip bomb far above them.
MAX_MEMBERS = 50_000
MAX_MEMBER_BYTES = 256 * 1024 * 1024
MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024 * 1024


class ExportError(ValueError):
    """An export archive refused before or while unpacking; the message tells the instructor why."""


def find_export(path: Path, unpack_to: Path) -> Path | None:
    """The folder holding submission_metadata.yml, unpacking a .zip first; None if not an export."""
    if path.is_file() and path.suffix == ".zip":
        target = unpack_to / path.stem
        try:
            with zipfile.ZipFile(path) as z:
                if not any(n.endswith(METADATA) for n in z.namelist()):
                    return None
                if target.exists():
                    shutil.rmtree(target)  # ours, from an earlier run: unpack afresh
                unpack(z, target)
        except ExportError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise ExportError(f"{path.name}: {exc}; if you trust this archive, unpack it "
                              "yourself and pass the folder") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise ExportError(f"{path.name} is not a readable zip archive ({exc})") from None
        path = target
    if not path.is_dir():
        return None
    hits = sorted(path.rglob(METADATA), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None


def unpack(z: zipfile.ZipFile, target: Path, *, max_members: int | None = None,
           max_member_bytes: int | None = None, max_total_bytes: int | None = None) -> None:
    """Extract regular files and folders only (no absolute path, no ``..``, no link or special
    file), counting the bytes as they inflate: a header's sizes are the archive's claim, not a
    bound. The limits default to an export's (MAX_*); grader.intake passes a submission's.
    ExportError says what was refused; ``target`` may then hold part of the archive."""
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_member_bytes = MAX_MEMBER_BYTES if max_member_bytes is None else max_member_bytes
    max_total_bytes = MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
    members = z.infolist()
    if len(members) > max_members:
        raise ExportError(f"{len(members):,} members, the limit is {max_members:,}")
    total = 0
    for info in members:
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts:
            raise ExportError(f"unsafe path {info.filename!r}")
        if stat.S_IFMT(info.external_attr >> 16) not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ExportError(f"{info.filename!r} is a link or a special file")
        dest = target.joinpath(*name.parts)
        try:
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            with z.open(info) as src, open(dest, "xb") as out:  # "x": a repeated name is refused
                while chunk := src.read(1024 * 1024):
                    size, total = size + len(chunk), total + len(chunk)
                    if size > max_member_bytes:
                        raise ExportError(f"{info.filename!r} unpacks to more than "
                                          f"{max_member_bytes:,} bytes")
                    if total > max_total_bytes:
                        raise ExportError(f"it unpacks to more than {max_total_bytes:,} bytes")
                    out.write(chunk)
        except OSError as exc:
            raise ExportError(f"cannot unpack {info.filename!r}: {exc.strerror}") from None


def _key(d: dict, name: str) -> Any:
    for k in (f":{name}", name, f":{name}:"):
        if k in d:
            return d[k]
    return None


def students(folder: Path) -> dict[str, dict[str, str]]:
    """Submission folder name -> {"name": ..., "email": ..., "sid": ...} (several joined by '; ')."""
    import yaml

    with open(folder / METADATA, "rb") as f:
        text = f.read(MAX_METADATA_BYTES + 1)
    if len(text) > MAX_METADATA_BYTES:
        raise ExportError(f"{METADATA} is larger than {MAX_METADATA_BYTES:,} bytes")
    data = yaml.safe_load(text.decode("utf-8")) or {}
    out: dict[str, dict[str, str]] = {}
    for sub, info in data.items():
        people = _key(info or {}, "submitters") or []
        out[str(sub)] = {field: "; ".join(_text(_key(p, field)) for p in people)
                         for field in ("name", "email", "sid")}
    return out


def _text(value: Any) -> str:
    """A scalar as text; anything else (a YAML alias tree, say) is not a name."""
    return str(value) if isinstance(value, (str, int, float)) else ""
