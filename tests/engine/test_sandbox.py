"""The sandbox runner on its own: the isolation report and the paths a worker can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from grader.sandbox import WorkerSpec, isolation, open_runner
from grader.sandbox.isolation import Limits

ISOLATED = isolation.why_not_isolated() is None


def _spec(a1, python: str = sys.executable) -> WorkerSpec:
    return WorkerSpec(submission=a1.reference_dir, module=a1.module, probes_file=a1.probes_file,
                      timeout=30, limits=Limits(memory_mb=a1.memory_mb), python=python)


def test_the_report_names_what_is_in_force(a1):
    runner, report = open_runner(_spec(a1))
    try:
        outcome = runner.call("threshold_outputs", {})
    finally:
        runner.close()
    assert outcome.ok, outcome.explain()
    assert report["level"] == ("isolated" if ISOLATED else "subprocess")
    assert report["temp_dir"] in ("private", "shared")
    if report["level"] == "isolated" or report["network"] == "none":  # a mount namespace held
        assert report["temp_dir"] == "private"
    assert not Path(runner.root).exists(), "the sandbox folder outlived its runner"


@pytest.fixture()
def closed_venv():
    """A venv with numpy, in a folder only root may enter (numpy is copied: this checkout's own
    venv may sit in /tmp, which a worker sees as an empty tmpfs)."""
    folder = Path(tempfile.mkdtemp(prefix="closed-venv-"))
    os.chmod(folder, 0o700)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(folder / "venv")],
                   check=True)
    site = Path(sysconfig.get_paths()["purelib"])
    inner = next((folder / "venv" / "lib").glob("python3*")) / "site-packages"
    for name in ("numpy", "numpy.libs"):
        if (site / name).is_dir():
            shutil.copytree(site / name, inner / name)
    yield str(folder / "venv" / "bin" / "python")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.skipif(not ISOLATED, reason=f"needs the isolated level: {isolation.why_not_isolated()}")
def test_a_venv_others_cannot_enter_is_bound_into_the_sandbox(a1, closed_venv):
    assert isolation._try_isolated(closed_venv, bind=False) is not None  # the sandbox uid: no
    runner, report = open_runner(_spec(a1, closed_venv), "isolated")
    try:
        outcome = runner.call("threshold_outputs", {})
    finally:
        runner.close()
    assert outcome.ok, outcome.explain()
    assert report["level"] == "isolated" and "bound" in report["python"]
    # the bind needs the worker's mount namespace, so everything else that one gives holds too
    assert (report["network"], report["hidden_paths"], report["temp_dir"]) == (
        "none", "unreadable", "private")


def test_private_tmp_mounts_cover_each_folder_once(tmp_path):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    other = tmp_path / "c"
    other.mkdir()
    assert isolation._outermost({str(inner), str(tmp_path / "a"), str(other)}) == sorted(
        [str(tmp_path / "a"), str(other)])
    assert isolation._outermost({"/", str(tmp_path / "missing")}) == []


def test_a_bound_python_keeps_its_place_in_the_venv():
    home, python = isolation.bound_python("/srv/course/.venv/bin/python", "/tmp/grader-sandbox-x")
    assert (home, python) == ("/srv/course/.venv", "/tmp/grader-sandbox-x/python/bin/python")
