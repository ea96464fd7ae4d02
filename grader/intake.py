"""Intake: what each input is, and which file of a submission is graded.

Two decisions, both explained in words rather than left to a ModuleNotFoundError:

``inputs`` (for ``grading.discover``): each path the instructor gives is one submission or a
folder of submissions (a batch); every entry of a batch is a submission and gets a row in the
gradebook, whatever it is. A folder is **one** submission when

1. it holds an entry named as the assignment expects (``assignment.submit``: ``perceptron.py``,
   ``perceptron.ipynb``), or
2. its parent holds ``submission_metadata.yml`` (a student's folder of a Gradescope export), or
3. it holds exactly one *candidate* (a ``.py``/``.ipynb`` file other than ``__init__.py``,
   ``conftest.py``, ``setup.py``, ``test_*.py``, ``*_test.py``) and nothing that could be
   another student's: no other candidate, no ``.zip``, no sub-folder (``Perceptron_v2.py``
   beside ``notes.txt``), or
4. it holds files but no candidate, no ``.zip`` and no sub-folder (``notes.txt`` alone: a
   graded zero that says what was found).

Any other folder is a batch: sub-folders, ``.py``/``.ipynb``/``.zip`` files and any other file
(``notes.txt``: a graded zero saying it is not a submission) are one submission each, named
after the entry (the file's stem). Hidden entries, ``__pycache__`` and ``__MACOSX`` are not
inputs. An empty folder is an empty batch.

``prepare`` (for ``grading.stage``): copies the submission with ``grader.staging`` (regular
files only, no link followed, bounded), after unpacking a ``.zip`` with the bounded,
link-refusing extraction of ``grader.exports`` into a folder the grader made; then, on the
copy only, descends through single wrapping folders (``alice/perceptron/perceptron.py``, at
most ``MAX_WRAPPERS`` levels) and picks the graded file: the module by its name, else the
expected notebook, else the only candidate at that level (a ``.py`` is renamed to the module,
a notebook becomes it; the results say so); else ``NothingToGrade``, a graded zero whose
message lists the files found and the names expected.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from grader import exports, staging
from grader.assignments import Assignment

SOURCES = (".py", ".ipynb")
NOT_INPUTS = {"__pycache__", "__MACOSX", ".git"}  # and any name starting with "."
NOT_CANDIDATES = {"__init__.py", "conftest.py", "setup.py"}  # and test_*.py, *_test.py
MAX_WRAPPERS = 4  # single wrapping folders descended (zip-of-a-folder-of-a-folder ...)
LISTED = 20  # files named in a NothingToGrade message; the rest are counted
# A submission's zip: bounded like the staged copy it becomes (grader.staging's caps), with
# room for the files staging will then leave out with a reason.
ZIP_MAX_MEMBERS = 4 * staging.MAX_FILES
ZIP_MAX_MEMBER_BYTES = staging.MAX_TOTAL_BYTES
ZIP_MAX_TOTAL_BYTES = 2 * staging.MAX_TOTAL_BYTES
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class NothingToGrade(staging.StagingError):
    """No file of the submission can be graded as the module; the message (for the student)
    lists the files found and the names expected. A graded zero, not the grader's error."""


@dataclass
class Prepared:
    """A staged submission ready to grade."""

    folder: Path  # the staged folder the worker sees; the module, if any, is at its top
    graded: str  # the graded file as the student named it, relative to the submission
    notebook: Path | None = None  # the notebook to turn into the module (None: the module)
    notes: list[str] = field(default_factory=list)  # what intake did, in words
    skipped: str = ""  # staging's notice of what was not copied


# -- inputs: one submission or a batch ----------------------------------------------------------

def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in NOT_INPUTS


def _is_source(name: str) -> bool:
    return name.lower().endswith(SOURCES)


def _is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def _is_candidate(name: str) -> bool:
    """A file that could be the solution under another name: a .py or .ipynb that is not a
    package marker, a test or pytest/setuptools configuration."""
    low = name.lower()
    return (_is_source(name) and low not in NOT_CANDIDATES
            and not low.startswith("test_") and not low.endswith("_test.py"))


def is_one_submission(assignment: Assignment, folder: Path) -> bool:
    """The rule in this module's docstring: is the folder ``folder`` one submission (else a
    batch of submissions, one per entry)?"""
    names = [n for n in os.listdir(folder) if _visible(n)]
    if set(names) & set(assignment.submit):
        return True
    if (folder.parent / exports.METADATA).is_file():
        return True
    sources, zips, dirs, others = 0, 0, 0, 0
    for name in names:
        try:
            mode = os.lstat(folder / name).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            dirs += 1
        elif _is_zip(name):
            zips += 1
        elif _is_candidate(name):
            sources += 1
        else:
            others += 1
    if zips or dirs or sources > 1:
        return False
    return sources == 1 or others > 0


def inputs(assignment: Assignment, paths: list[Path]) -> list[tuple[str, Path]]:
    """(name, path) of each submission in ``paths``, in order. The paths given are the
    instructor's and are followed; an entry of a batch folder is not (a link, FIFO or socket
    there is a submission that staging turns into a graded zero saying why)."""
    found: list[tuple[str, Path]] = []
    for p in paths:
        if not os.path.lexists(p):
            raise FileNotFoundError(f"no such submission: {p}")
        if p.is_dir() and not is_one_submission(assignment, p):
            for child in sorted(p.iterdir()):
                if not _visible(child.name):
                    continue
                if stat.S_ISDIR(child.lstat().st_mode):
                    found.append((child.name, child))
                else:  # a .py, .ipynb, .zip, a stray notes.txt, a link: each gets its row
                    found.append((child.stem or child.name, child))
        else:
            real = p.resolve() if p.is_symlink() and p.exists() else p
            found.append((p.name if p.is_dir() or not p.suffix else p.stem, real))
    return found


# -- prepare: stage, unpack, descend, choose ----------------------------------------------------

def _unzip(archive: Path, target: Path) -> None:
    """Unpack the student's zip into ``target`` (a fresh folder of the grader's), never through
    a link and within the ZIP_* bounds; StagingError says why not."""
    try:
        fd = os.open(archive, _READ)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise staging.StagingError(f"{archive.name} is a symbolic link; nothing was graded") \
                from None
        raise
    with os.fdopen(fd, "rb") as f:
        what = staging.kind(os.fstat(fd).st_mode)
        if what:
            raise staging.StagingError(f"{archive.name} is {what}, not a regular file; "
                                       "nothing was graded")
        try:
            with zipfile.ZipFile(f) as z:
                exports.unpack(z, target, max_members=ZIP_MAX_MEMBERS,
                               max_member_bytes=ZIP_MAX_MEMBER_BYTES,
                               max_total_bytes=ZIP_MAX_TOTAL_BYTES)
        except exports.ExportError as exc:
            raise staging.StagingError(f"{archive.name} could not be unpacked: {exc}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
                ValueError) as exc:
            raise staging.StagingError(f"{archive.name} is not a readable zip archive "
                                       f"({exc})") from None


def _listing(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """The visible regular files, source files and sub-folders at the top of a staged folder."""
    files, dirs = [], []
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if not _visible(entry.name):
            continue
        if entry.is_dir(follow_symlinks=False):
            dirs.append(entry.name)
        elif entry.is_file(follow_symlinks=False):
            files.append(entry.name)
    return files, [f for f in files if _is_candidate(f)], dirs


def _expected(assignment: Assignment) -> str:
    names = list(dict.fromkeys([assignment.module_file, *assignment.submit]))
    return " or ".join(f"`{n}`" for n in names)


def _nothing(assignment: Assignment, staged: staging.Staged, sources: list[str],
             where: str) -> NothingToGrade:
    expected = _expected(assignment)
    found = staged.copied
    if not found and not staged.skipped:
        head = f"The submission is empty: no files were found. Expected {expected}."
    elif len(sources) > 1:
        head = (f"Nothing was graded: none of the files is named {expected}, and there are "
                f"{len(sources)} Python files or notebooks{where} ("
                + ", ".join(f"`{s}`" for s in sources)
                + "), so the grader cannot tell which one to grade. Rename the one to grade "
                f"to {expected}.")
    else:
        head = (f"Nothing was graded: no file is named {expected}, and there is no other "
                f"Python file or notebook{where} to grade instead.")
    lines = []
    if found:
        shown = [f"- `{c}`" for c in found[:LISTED]]
        if len(found) > LISTED:
            shown.append(f"- ... and {len(found) - LISTED} more")
        lines.append("Files found:\n" + "\n".join(shown))
    if staged.skipped:
        lines.append(staged.notice())
    return NothingToGrade("\n\n".join([head, *lines]))


def prepare(assignment: Assignment, path: Path, into: Path) -> Prepared:
    """Stage the submission at ``path`` (a folder, a .zip, a single file) under ``into`` and
    choose the graded file (this module's docstring). The trusted side reads only the copy;
    the student's own path is read by grader.staging (or, for a zip, opened O_NOFOLLOW)."""
    raw, notes = into / "staged", []
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        staged = staging.stage_tree(path, raw)
    elif stat.S_ISREG(mode) and _is_zip(path.name):
        unpacked = into / "unpacked"
        os.mkdir(unpacked, 0o700)
        try:
            _unzip(path, unpacked)
            staged = staging.stage_tree(unpacked, raw)
        finally:
            shutil.rmtree(unpacked, ignore_errors=True)
        notes.append(f"Unpacked `{path.name}`.")
    else:  # a single file keeps its name here; it is the only candidate below
        staged = staging.stage_file(path, raw, path.name)

    root, prefix = raw, ""
    for _ in range(MAX_WRAPPERS):  # alice/perceptron/perceptron.py: the usual zip of a folder
        files, sources, dirs = _listing(root)
        if sources or len(dirs) != 1:
            break
        root, prefix = root / dirs[0], f"{prefix}{dirs[0]}/"
    files, sources, dirs = _listing(root)
    where = f" in `{prefix}`" if prefix else ""
    if prefix:
        notes.append(f"Graded the files in the folder `{prefix}` (the submission's only folder).")

    module = assignment.module_file
    notebooks = [n for n in assignment.submit if n.endswith(".ipynb")]
    chosen = None
    if module in files:
        graded, nb = module, None
    elif any(n in files for n in notebooks):
        graded = next(n for n in notebooks if n in files)
        nb = graded
    elif len(sources) == 1:
        graded = chosen = sources[0]
        nb = graded if graded.lower().endswith(".ipynb") else None
        kind = "notebook" if nb else "Python file"
        notes.append(f"Graded `{prefix}{graded}` as `{module}`: it is the only {kind} in "
                     + (f"`{prefix}`" if prefix else "the submission")
                     + f", and no file is named {_expected(assignment)}.")
    else:
        raise _nothing(assignment, staged, sources, where)

    folder = into / "submission"
    os.rename(root, folder)  # the copy is the grader's own: a rename, nothing followed
    if root != raw:
        shutil.rmtree(raw, ignore_errors=True)
    if chosen is not None and nb is None:
        os.rename(folder / chosen, folder / module)  # no file of that name: checked above
    return Prepared(folder=folder, graded=prefix + graded,
                    notebook=folder / nb if nb else None, notes=notes,
                    skipped=staged.notice())
