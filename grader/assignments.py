"""Assignment discovery: where each assignment's reference, hidden tests and release live."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (Gradescope's Ubuntu 22.04)
    import tomli as tomllib


class UnknownAssignment(LookupError):
    pass


def course_root() -> Path:
    """The folder holding reference/ and tests/: $GRADER_ROOT, else the nearest one upwards."""
    env = os.environ.get("GRADER_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent.parent):
        for folder in (start, *start.parents):
            if (folder / "reference").is_dir() and (folder / "tests").is_dir():
                return folder
    return Path(__file__).resolve().parent.parent


@dataclass
class Assignment:
    """One assignment, as configured by tests/<name>/assignment.toml."""

    name: str
    root: Path
    title: str
    module: str
    submit: list[str]
    timeout: float = 10.0
    memory_mb: int = 2048
    cpu_seconds: int = 600
    forbidden_imports: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    total_timeout: float = 1200.0
    summary: str = ""
    requirements: list[str] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def topic(self) -> str:
        return self.name.split("_", 1)[-1]

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference" / self.name

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests" / self.name

    @property
    def release_dir(self) -> Path:
        return self.root / "assignments" / self.name

    @property
    def probes_file(self) -> Path:
        return self.tests_dir / "probes.py"

    @property
    def mutants_dir(self) -> Path:
        return self.tests_dir / "mutants"

    @property
    def module_file(self) -> str:
        return f"{self.module}.py"


def load(tests_dir: Path) -> Assignment:
    """Read tests/<name>/assignment.toml."""
    with open(tests_dir / "assignment.toml", "rb") as f:
        cfg = tomllib.load(f)
    limits = cfg.get("limits", {})
    return Assignment(
        name=tests_dir.name,
        root=tests_dir.parent.parent,
        title=cfg["title"],
        module=cfg["module"],
        submit=cfg.get("submit", [f"{cfg['module']}.py"]),
        summary=cfg.get("summary", ""),
        timeout=float(limits.get("timeout", 10)),
        memory_mb=int(limits.get("memory_mb", 2048)),
        cpu_seconds=int(limits.get("cpu_seconds", 600)),
        total_timeout=float(limits.get("total_timeout", 1200)),
        forbidden_imports=list(cfg.get("forbidden_imports", [])),
        data_files=list(cfg.get("data_files", [])),
        requirements=list(cfg.get("requirements", [])),
    )


def all_assignments(root: Path | None = None) -> list[Assignment]:
    root = root or course_root()
    tests = root / "tests"
    return [load(d) for d in sorted(tests.iterdir()) if (d / "assignment.toml").is_file()]


def find(name: str, root: Path | None = None) -> Assignment:
    """Resolve 'a1_perceptron', 'a1' or 'perceptron' to an assignment."""
    found = all_assignments(root)
    for a in found:
        if name in (a.name, a.short, a.topic):
            return a
    known = ", ".join(a.name for a in found) or "none"
    raise UnknownAssignment(f"unknown assignment {name!r}; known: {known}")


def fingerprint(paths: list[Path], salt: str = "") -> str:
    """A hash of every file under these paths (names and bytes), to know what changed."""
    h = hashlib.sha256(salt.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(
            p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and ".reference-cache" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(root) if f != root else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:24]

