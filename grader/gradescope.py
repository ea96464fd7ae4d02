"""Gradescope: the autograder zip (and the same layout for our Docker image), and the entry
point that runs inside the container.

Layout of the zip / of /autograder/source:

    setup.sh            installs a venv at /opt/grader-venv and locks this folder (docker/setup.sh)
    run_autograder      always leaves a valid results.json (docker/run_autograder)
    requirements.txt    what grading needs
    assignments.txt     the assignments this source grades (the first is the default)
    grader/             the engine
    reference/<a>/      the solution (cached reference outputs in tests/<a>/.reference-cache)
    tests/<a>/          probes, judges, assignment.toml

Inside the container ``python -m grader.gradescope`` grades /autograder/submission into
/autograder/results/results.json. AUTOGRADER_ROOT moves /autograder (for tests).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from grader import results
from grader.assignments import Assignment, all_assignments, find

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
BASE_REQUIREMENTS = ["numpy>=1.24", "pytest>=7.4", "nbformat>=5.9", "tomli>=2.0; python_version < '3.11'"]
CACHE = ".reference-cache"

# What the box holds besides the student's budget (measured in the CPU image, `docker run ...
# python -c "import torch"` and the judge's imports): a worker's resident memory once its
# preloads are imported, and the judge process (pytest, numpy, scipy.stats, sklearn.datasets).
BOX_MB = 768  # Gradescope's default container
IMPORTS_MB = {"torch": 217}  # a worker that preloads nothing else: numpy's 25 MB
PLAIN_WORKER_MB = 25
JUDGE_MB = 128


def misfit(a: Assignment, box_mb: int = BOX_MB) -> str | None:
    """Why a's memory budget does not fit a box of box_mb, or None. A budget the box cannot
    hold would give a verdict there that local grading does not (a submission within its
    budget killed by the container), so such an assignment is not packaged."""
    imports = max([IMPORTS_MB.get(m, PLAIN_WORKER_MB) for m in a.preload] or [PLAIN_WORKER_MB])
    need = a.memory_mb + imports + JUDGE_MB
    if need <= box_mb:
        return None
    return (f"{a.name}: its budget of {a.memory_mb} MB, the worker's imports ({imports} MB) and "
            f"the judge ({JUDGE_MB} MB) need {need} MB, more than the {box_mb} MB box; lower "
            "memory_mb in its assignment.toml, or choose a larger machine in Gradescope and "
            f"pass --box-memory")


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", CACHE))


def layout(chosen: list[Assignment], dest: Path, warm_cache: bool = True,
           box_mb: int = BOX_MB) -> Path:
    """Write the autograder source folder for these assignments (refused when one's memory
    budget does not fit the box: ``misfit``)."""
    problems = [why for a in chosen if (why := misfit(a, box_mb))]
    if problems:
        raise ValueError("; ".join(problems))
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    engine = Path(__file__).resolve().parent
    _copy_tree(engine, dest / "grader")
    (dest / "grader" / "bench.py").unlink(missing_ok=True)
    reqs = list(BASE_REQUIREMENTS)
    for a in chosen:
        _copy_tree(a.reference_dir, dest / "reference" / a.name)
        _copy_tree(a.tests_dir, dest / "tests" / a.name)
        for extra in ("mutants", "alternates"):
            shutil.rmtree(dest / "tests" / a.name / extra, ignore_errors=True)
        reqs += [r for r in a.requirements if r not in reqs]
    (dest / "requirements.txt").write_text("\n".join(reqs) + "\n")
    (dest / "assignments.txt").write_text("\n".join(a.name for a in chosen) + "\n")
    for script in ("setup.sh", "run_autograder"):
        shutil.copy(DOCKER_DIR / script, dest / script)
        os.chmod(dest / script, 0o755)
    if warm_cache:
        for a in chosen:
            _warm_reference_cache(a, dest / "tests" / a.name / CACHE)
    return dest


def _warm_reference_cache(a: Assignment, cache: Path) -> None:
    """Grade the reference once, so the container judges from cached reference outputs."""
    from grader.grading import Submission, grade_one

    with tempfile.TemporaryDirectory(prefix="grader-warm-") as tmp:
        res = grade_one(a, Submission("reference", a.reference_dir), Path(tmp), cache=cache)
    if res.get("score") != results.max_score(res):
        raise RuntimeError(f"{a.name}: the reference does not get full marks; not packaging it")


def write_zip(a: Assignment, out: Path, box_mb: int = BOX_MB) -> Path:
    """The autograder zip Gradescope accepts: setup.sh and run_autograder at its root."""
    with tempfile.TemporaryDirectory(prefix="grader-zip-") as tmp:
        src = layout([a], Path(tmp) / "source", box_mb=box_mb)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(src.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo.from_file(path, str(path.relative_to(src)))
                    info.external_attr = (stat.S_IFREG | (0o755 if os.access(path, os.X_OK)
                                                          else 0o644)) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, path.read_bytes())
    return out


def run(root: Path) -> int:
    """Grade root/submission into root/results/results.json (inside the container)."""
    from grader.grading import Submission, grade_one

    start = time.monotonic()
    source, results_dir = root / "source", root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in (source / "assignments.txt").read_text().split() if n]
    a, why = choose_assignment(names, source, root / "submission")
    extra: dict = {"backend": "gradescope"}
    if a is None:
        results.write(results_dir / "results.json", results.failure(why, 100, extra=extra))
        return 0
    meta = root / "submission_metadata.json"
    if meta.exists():
        try:
            data = json.loads(meta.read_text())
            extra["submission_id"] = data.get("id")
            extra["students"] = [u.get("email") for u in data.get("users", [])]
        except (OSError, ValueError, AttributeError):
            pass
    with tempfile.TemporaryDirectory(prefix="grader-gs-") as tmp:
        res = grade_one(a, Submission("submission", root / "submission"), Path(tmp),
                        cache=a.tests_dir / CACHE, hide=[str(results_dir), str(source)],
                        extra=extra)
    res["execution_time"] = round(time.monotonic() - start, 3)
    results.write(results_dir / "results.json", res)
    return 0


def choose_assignment(names: list[str], source: Path, submission: Path
                      ) -> tuple[Assignment | None, str]:
    """The assignment an image grades: GRADER_ASSIGNMENT when the instructor set it, the only one
    when the image holds one, else the one whose file names the submission uses (perceptron.py,
    attention.ipynb, ...); (None, why) when the files name none of them or several."""
    if os.environ.get("GRADER_ASSIGNMENT") or len(names) == 1:
        return find(os.environ.get("GRADER_ASSIGNMENT") or names[0], source), ""
    found = {p.name for p in submission.rglob("*") if p.is_file()} if submission.is_dir() else set()
    known = [find(n, source) for n in names]
    matches = [a for a in known if found & set(a.submit)]
    if len(matches) == 1:
        return matches[0], ""
    expected = "; ".join(f"{a.name}: {' or '.join(a.submit)}" for a in known)
    seen = ", ".join(sorted(found)[:10]) or "no files"
    return None, (f"This autograder grades {len(known)} assignments and could not tell which one "
                  f"this submission is for: it holds {seen}, and "
                  + ("its file names match several" if matches else "no file has a name it expects")
                  + f". Expected file names: {expected}. Rename your file, or ask your instructor "
                  "(who can set GRADER_ASSIGNMENT for this Gradescope assignment).")


def main() -> int:
    root = Path(os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    return run(root)


def all_or(names: list[str]) -> list[Assignment]:
    return [find(n) for n in names] if names else all_assignments()


if __name__ == "__main__":
    sys.exit(main())
