"""Shared helpers for the engine's own tests: run the real CLI, read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import assignments

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `grader ...` as a user would, in a child process."""
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GRADER_ROOT": str(ROOT)})


def read_results(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


@pytest.fixture(scope="session")
def all_assignments() -> list[assignments.Assignment]:
    return assignments.all_assignments(ROOT)


@pytest.fixture(scope="session")
def a1() -> assignments.Assignment:
    return assignments.find("a1", ROOT)
