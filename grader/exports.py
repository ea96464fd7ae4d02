"""Gradescope's "Export Submissions" archive as input to a batch.

The archive (a .zip, or the folder it unpacks to) holds one folder per submission and a
submission_metadata.yml mapping each folder to its submitters (Ruby-style keys, ``:name:``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

METADATA = "submission_metadata.yml"


def find_export(path: Path, unpack_to: Path) -> Path | None:
    """The folder holding submission_metadata.yml, unpacking a .zip first; None if not an export."""
    if path.is_file() and path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            if not any(n.endswith(METADATA) for n in z.namelist()):
                return None
            target = unpack_to / path.stem
            for member in z.infolist():  # refuse absolute paths and .. (zip slip)
                dest = (target / member.filename).resolve()
                if not str(dest).startswith(str(target.resolve())):
                    raise ValueError(f"unsafe path in {path.name}: {member.filename}")
            z.extractall(target)
        path = target
    if not path.is_dir():
        return None
    hits = sorted(path.rglob(METADATA), key=lambda p: len(p.parts))
    return hits[0].parent if hits else None


def _key(d: dict, name: str) -> Any:
    for k in (f":{name}", name, f":{name}:"):
        if k in d:
            return d[k]
    return None


def students(folder: Path) -> dict[str, dict[str, str]]:
    """Submission folder name -> {"name": ..., "email": ..., "sid": ...} (several joined by '; ')."""
    import yaml

    data = yaml.safe_load((folder / METADATA).read_text(encoding="utf-8")) or {}
    out: dict[str, dict[str, str]] = {}
    for sub, info in data.items():
        people = _key(info or {}, "submitters") or []
        out[str(sub)] = {field: "; ".join(str(_key(p, field) or "") for p in people)
                         for field in ("name", "email", "sid")}
    return out
