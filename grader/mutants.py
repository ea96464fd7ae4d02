"""Mutants and alternates: the proof that the judges are right both ways.

A mutant is a known-wrong version of the reference, one mistake each; it must lose the points of
the judges it names. An alternate is an independent *correct* solution (tests/<a>/alternates/
<name>/, the module or a notebook, and NOTE.txt saying in one line what makes it different),
written from the student README alone; it must get full marks.

A mutant is a TOML file in tests/<a>/mutants/: ``mistake`` (what a student got wrong),
``catches`` (the judges that must lose points), optionally ``says`` (words the failure message
must hold: it names the cause, not a symptom) and ``[[replace]]`` edits (``old`` -> ``new``)
applied to the reference module. Edits must match exactly once, so a mutant breaks loudly when
the reference changes under it instead of silently turning into the reference.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.assignments import Assignment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class Mutant:
    name: str
    mistake: str
    catches: list[str]
    edits: list[tuple[str, str]]
    says: str | None = None


def load_all(a: Assignment) -> list[Mutant]:
    out = []
    for path in sorted(a.mutants_dir.glob("*.toml")):
        with open(path, "rb") as f:
            cfg = tomllib.load(f)
        out.append(Mutant(path.stem, cfg["mistake"], list(cfg["catches"]),
                          [(r["old"], r["new"]) for r in cfg["replace"]], cfg.get("says")))
    return out


def apply(a: Assignment, m: Mutant) -> str:
    source = (a.reference_dir / a.module_file).read_text()
    for old, new in m.edits:
        n = source.count(old)
        if n != 1:
            raise ValueError(f"mutant {m.name}: {old!r} occurs {n} times in the reference")
        source = source.replace(old, new)
    try:
        compile(source, f"{m.name}.py", "exec")
    except SyntaxError as exc:  # a mutant must be a plausible student mistake, not a typo
        raise ValueError(f"mutant {m.name} does not compile: {exc}") from None
    return source


def materialise(a: Assignment, mutants: list[Mutant], into: Path) -> list[Path]:
    """Write each mutant as a submission folder: the reference with one mistake."""
    folders = []
    for m in mutants:
        folder = into / m.name
        shutil.copytree(a.reference_dir, folder, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / a.module_file).write_text(apply(a, m))
        folders.append(folder)
    return folders


def survivors(m: Mutant, res: dict[str, Any]) -> list[str]:
    """What is wrong with a mutant's grading: judges that should have caught it but did not."""
    problems = []
    judges = res.get("extra_data", {}).get("judges", {})
    by_number = {t.get("number"): t for t in res.get("tests", [])}
    for judge in m.catches:
        tests = [by_number[n] for n in judges.get(judge, []) if n in by_number]
        graded = [t for t in tests if not t.get("extra_data", {}).get("skipped")]
        if tests and not graded:  # a cuda_only judge on a machine without CUDA: not a verdict
            problems.append(f"{judge}: not graded here (it needs CUDA)")
            continue
        tests = graded
        if not tests:
            problems.append(f"{judge}: no such judge")
        elif all(t["score"] >= t["max_score"] for t in tests):
            problems.append(f"{judge}: kept full marks")
        elif m.says and not any(m.says in t.get("output", "") for t in tests):
            problems.append(f"{judge}: its message does not say {m.says!r}")
    if res.get("score", 0) >= sum(t["max_score"] for t in res.get("tests", [])):
        problems.append("the mutant kept full marks")
    return problems


@dataclass
class Alternate:
    name: str
    note: str
    folder: Path


def load_alternates(a: Assignment) -> list[Alternate]:
    """Every folder under tests/<a>/alternates/ (the submission as a student would hand it in)."""
    root = a.tests_dir / "alternates"
    found = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        note = folder / "NOTE.txt"
        text = note.read_text().strip().splitlines()[0] if note.exists() else ""
        found.append(Alternate(folder.name, text, folder))
    return found


def materialise_alternates(alternates: list[Alternate], into: Path) -> list[Path]:
    """Copy each alternate as a submission folder named alt-<name> (NOTE.txt left out)."""
    folders = []
    for alt in alternates:
        folder = into / f"alt-{alt.name}"
        shutil.copytree(alt.folder, folder, ignore=shutil.ignore_patterns("NOTE.txt",
                                                                          "__pycache__"))
        folders.append(folder)
    return folders


def lost_points(res: dict[str, Any]) -> list[str]:
    """What a correct solution lost: the tests it did not get full marks on."""
    lost = [f"{t.get('name')} ({t['score']:g}/{t['max_score']:g})" for t in res.get("tests", [])
            if t["score"] < t["max_score"]]
    if not lost and res.get("score", 0) < sum(t["max_score"] for t in res.get("tests", [])):
        lost.append(f"score {res.get('score')}")
    return lost
