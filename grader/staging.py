"""Staging: copy a submission into a folder the grader made, regular files only.

The trusted grader runs as root, and a student chooses the names, types and sizes of the files it
receives. So the trusted side never reads a student's path itself: it copies the submission here
and reads only the copy. Nothing is followed: each entry is ``lstat``-ed, opened with
``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in cannot block) relative to its folder's descriptor,
and ``fstat``-ed again; symbolic links, FIFOs, sockets and devices are not copied. Sizes are
checked before reading (a sparse 100 GB file is refused by its size, unread) and reads stop at the
cap. Copies are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` under folders opened by descriptor,
so nothing is ever written through a link. ``__pycache__`` and ``.git`` are ignored; everything
else left out is listed with the reason, for the student's results.

Caps (a submission is source, a notebook and a few small data files; the worker's own file-size
limit is 64 MB):

- ``MAX_FILE_BYTES`` = 32 MiB per file,
- ``MAX_TOTAL_BYTES`` = 128 MiB per submission,
- ``MAX_FILES`` = 2000 files,
- ``MAX_DEPTH`` = 16 levels of folders.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_BYTES = 32 << 20
MAX_TOTAL_BYTES = 128 << 20
MAX_FILES = 2000
MAX_DEPTH = 16
IGNORED = {"__pycache__", ".git"}
SOURCES = (".py", ".ipynb")  # copied first, so a large data file cannot crowd out the module
CHUNK = 1 << 20
LISTED = 20  # skipped entries named in the notice; the rest are counted
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class StagingError(ValueError):
    """Nothing of the submission can be staged; the message is for the student."""


@dataclass
class Staged:
    """What was copied and what was left out (``"name: reason"``)."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    total: int = 0

    def notice(self) -> str:
        """The skipped entries in words for results.json's output ('' when none)."""
        if not self.skipped:
            return ""
        lines = [f"- {s}" for s in self.skipped[:LISTED]]
        if len(self.skipped) > LISTED:
            lines.append(f"- ... and {len(self.skipped) - LISTED} more")
        return "Not copied for grading (only regular files are graded):\n" + "\n".join(lines)


def kind(mode: int) -> str | None:
    """None for a regular file, else what the entry is, in words."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _mb(n: int) -> str:
    """A size in words: 100 GB, 32 MB, 900 bytes."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20)):
        if n >= size:
            return f"{n / size:.0f} {unit}"
    return f"{n} bytes"


def stage_tree(source: Path, dest: Path) -> Staged:
    """Copy the folder ``source`` into ``dest``, which this creates (it must not exist)."""
    st = os.lstat(source)
    if not stat.S_ISDIR(st.st_mode):
        raise StagingError(f"{source.name} is {kind(st.st_mode)}, not a file or folder; "
                           "nothing was graded")
    staged = Staged()
    src = os.open(source, _DIR)
    try:
        os.mkdir(dest, 0o755)
        dst = os.open(dest, _DIR)
        try:
            _copy_dir(src, dst, "", 0, staged)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return staged


def stage_file(source: Path, dest: Path, name: str) -> Staged:
    """Copy the single file ``source`` into ``dest`` (created here) as ``name``."""
    staged = Staged()
    os.mkdir(dest, 0o755)
    src = os.open(source.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dst = os.open(dest, _DIR)
    try:
        _copy_file(src, source.name, dst, name, source.name, staged)
    finally:
        os.close(src)
        os.close(dst)
    if not staged.copied:
        raise StagingError(staged.skipped[0] + "; nothing was graded")
    return staged


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` (never through a link); StagingError past ``limit``."""
    try:
        fd = os.open(path, _READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StagingError(f"{path.name} is a symbolic link") from None
        raise
    try:
        st = os.fstat(fd)
        what = kind(st.st_mode)
        if what:
            raise StagingError(f"{path.name} is {what}, not a regular file")
        if st.st_size > limit:
            raise StagingError(f"{path.name} is {_mb(st.st_size)}, over the {_mb(limit)} limit")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(CHUNK, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise StagingError(f"{path.name} is over the {_mb(limit)} limit")
    return b"".join(chunks)


def _copy_dir(src: int, dst: int, rel: str, depth: int, staged: Staged) -> None:
    names: list[str] = []
    with os.scandir(src) as entries:
        for entry in entries:
            if len(names) > 4 * MAX_FILES:
                staged.skipped.append(f"{rel or './'}: over {4 * MAX_FILES} entries, the rest "
                                      "not copied")
                break
            if entry.name not in IGNORED:
                names.append(entry.name)
    names.sort(key=lambda n: (not n.endswith(SOURCES), n))
    folders = []
    for name in names:
        try:
            st = os.lstat(name, dir_fd=src)
        except OSError as exc:
            staged.skipped.append(f"{rel}{name}: could not be read ({exc.strerror})")
            continue
        if stat.S_ISDIR(st.st_mode):
            folders.append(name)
        else:
            _copy_file(src, name, dst, name, rel + name, staged, st)
    for name in folders:
        if depth + 1 > MAX_DEPTH:
            staged.skipped.append(f"{rel}{name}/: more than {MAX_DEPTH} folders deep, not copied")
            continue
        try:
            sub_src = os.open(name, _DIR, dir_fd=src)
        except OSError as exc:
            staged.skipped.append(f"{rel}{name}/: could not be opened ({exc.strerror})")
            continue
        try:
            os.mkdir(name, 0o755, dir_fd=dst)
            sub_dst = os.open(name, _DIR, dir_fd=dst)
            try:
                _copy_dir(sub_src, sub_dst, f"{rel}{name}/", depth + 1, staged)
            finally:
                os.close(sub_dst)
        finally:
            os.close(sub_src)


def _copy_file(src: int, name: str, dst: int, target: str, label: str, staged: Staged,
               st: os.stat_result | None = None) -> None:
    """Copy one entry if it is a regular file within the caps; else record why not."""
    def skip(reason: str) -> None:
        staged.skipped.append(f"{label}: {reason}")

    try:
        st = st or os.lstat(name, dir_fd=src)
    except OSError as exc:
        return skip(f"could not be read ({exc.strerror})")
    what = kind(st.st_mode)
    if what:
        return skip(f"{what}, not copied")
    if len(staged.copied) >= MAX_FILES:
        return skip(f"over the limit of {MAX_FILES} files, not copied")
    budget = min(MAX_FILE_BYTES, MAX_TOTAL_BYTES - staged.total)
    if st.st_size > MAX_FILE_BYTES:
        return skip(f"{_mb(st.st_size)}, over the {_mb(MAX_FILE_BYTES)} limit per file, not copied")
    if st.st_size > budget:
        return skip(f"the submission is over {_mb(MAX_TOTAL_BYTES)} in all, not copied")
    try:
        fd = os.open(name, _READ, dir_fd=src)
    except OSError as exc:
        return skip(f"could not be opened ({exc.strerror})")
    try:
        if kind(os.fstat(fd).st_mode):  # replaced between lstat and open
            return skip("not a regular file, not copied")
        size = _copy_bytes(fd, dst, target, budget)
    finally:
        os.close(fd)
    if size is None:
        return skip("grew past the size limit while it was copied, not copied")
    staged.copied.append(label)
    staged.total += size
    return None


def _copy_bytes(fd: int, dst: int, target: str, budget: int) -> int | None:
    """Copy at most ``budget`` bytes into a new file; None (and no file) if there were more."""
    out = os.open(target, _CREATE, 0o644, dir_fd=dst)
    size = 0
    try:
        while chunk := os.read(fd, min(CHUNK, budget + 1 - size)):
            size += len(chunk)
            if size > budget:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
    finally:
        os.close(out)
    if size > budget:
        os.unlink(target, dir_fd=dst)
        return None
    return size
