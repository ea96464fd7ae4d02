"""Gradescope's Ubuntu 22.04 image grades with Python 3.10: grade with one here, when there is one.

The engine is run from this checkout (a .pth, no install), in a fresh 3.10 venv holding only the packages
grading a1 needs; scores must match what 3.11 gives (reference 100, stub 0).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ["numpy", "pytest", "nbformat", "tomli", "pyyaml", "tqdm"]


def _python310() -> str | None:
    candidates = [shutil.which("python3.10"), "/usr/bin/python3.10",
                  *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))]
    for exe in filter(None, candidates):
        try:
            ok = subprocess.run([exe, "-c", "import sys, venv; assert sys.version_info[:2] == (3, 10)"],
                                capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return exe
    return None


PYTHON310 = _python310()


@pytest.fixture(scope="module")
def python310(tmp_path_factory) -> str:
    if PYTHON310 is None:
        pytest.skip("no Python 3.10 on this machine (Gradescope's image has one)")
    venv = tmp_path_factory.mktemp("py310") / "venv"
    subprocess.run([PYTHON310, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
                         capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"could not install {PACKAGES} for Python 3.10: {pip.stderr[-300:]}")
    site = next((venv / "lib").glob("python3.10")) / "site-packages"
    (site / "checkout.pth").write_text(f"{ROOT}\n")  # this checkout's engine, not a copy
    return str(venv / "bin" / "python")


def test_grading_works_on_python_310(python310, a1, tmp_path):
    subs = tmp_path / "subs"
    shutil.copytree(a1.reference_dir, subs / "reference")
    shutil.copytree(a1.release_dir, subs / "stub", ignore=shutil.ignore_patterns("*.ipynb"))
    out = tmp_path / "out"
    proc = subprocess.run([python310, "-m", "grader.cli", "grade", "a1", str(subs), "--out", str(out),
                           "--jobs", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GRADER_ROOT": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = {name: json.loads((out / name / "results.json").read_text())["score"]
              for name in ("reference", "stub")}
    assert scores == {"reference": 100, "stub": 0}, proc.stdout[-2000:]


def test_the_engine_unit_tests_pass_on_python_310(python310):
    tests = [str(Path(__file__).parent / f) for f in ("test_codec.py", "test_checks.py")]
    proc = subprocess.run([python310, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
