"""The sandbox on its own: the allowlist view, the cgroup, the report, the fallbacks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from grader.sandbox import WorkerSpec, bwrap, isolation, open_runner, refusal
from grader.sandbox.cgroup import Cgroup
from grader.sandbox.isolation import Limits

ISOLATED = isolation.why_not_isolated() is None
BWRAP = isolation.sandbox_facts()["bwrap"]
needs_bwrap = pytest.mark.skipif(not BWRAP, reason=f"no bubblewrap view here: "
                                 f"{isolation.sandbox_facts()['why_no_bwrap']}")


def _spec(a1, python: str = sys.executable) -> WorkerSpec:
    return WorkerSpec(submission=a1.reference_dir, module=a1.module, probes_file=a1.probes_file,
                      timeout=30, limits=Limits(memory_mb=a1.memory_mb), python=python,
                      hide=[str(a1.tests_dir), str(a1.reference_dir)])


def _grade_once(a1, python: str = sys.executable) -> tuple[bool, dict, Path]:
    runner, report = open_runner(_spec(a1, python))
    try:
        outcome = runner.call("threshold_outputs", {})
    finally:
        runner.close()
    assert outcome.ok, outcome.explain()
    return outcome.ok, report, Path(runner.root)


def test_the_report_names_what_is_in_force(a1):
    _, report, root = _grade_once(a1)
    assert report["level"] == ("isolated" if ISOLATED else "subprocess")
    assert report["memory"] in ("cgroup v1", "cgroup v2", "rlimit (address space)")
    if BWRAP:
        assert report["sandbox"] == "bubblewrap (allowlist view)"
        assert (report["network"], report["hidden_paths"], report["temp_dir"]) == (
            "none", "unreadable", "private")
    else:
        assert "bubblewrap:" in report["sandbox"]  # and why it is not in force
    assert not root.exists(), "the sandbox folder outlived its runner"


@needs_bwrap
def test_the_worker_sees_nothing_but_the_allowlist(tmp_path):
    """Another readable copy of the course, home folders, the checkout, the host's mount table:
    none of it exists inside; only the allowlisted folders do."""
    copy = Path(tempfile.mkdtemp(prefix="dlgrader-copy-", dir="/var/tmp"))
    try:
        os.chmod(copy, 0o755)
        (copy / "solution.py").write_text("ANSWER = 42\n")
        code = (
            "import json, os\n"
            "print(json.dumps({'top': sorted(os.listdir('/')), 'etc': sorted(os.listdir('/etc')),"
            " 'mounts': open('/proc/self/mounts').read(), 'pids': sorted(os.listdir('/proc'))}))\n"
            f"assert not os.path.exists({str(copy)!r})\n"
            f"assert not os.path.exists({str(ROOT / 'reference')!r})\n"
        )
        (tmp_path / "h").mkdir()
        (tmp_path / "s").mkdir()
        proc = isolation.run_snippet(sys.executable, code, Limits(), True, str(tmp_path / "h"),
                                     str(tmp_path / "s"))
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        seen = __import__("json").loads(proc.stdout)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    venv_top = Path(sys.prefix).parts[1]
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sandbox", "sbin",
               "tmp", "usr", venv_top}
    assert set(seen["top"]) <= allowed
    assert set(seen["etc"]) <= {Path(p).name for p in bwrap.LOADER_FILES}
    assert str(tmp_path) not in seen["mounts"] and "grader" not in seen["mounts"]
    assert len([p for p in seen["pids"] if p.isdigit()]) <= 3  # its own PID namespace


@pytest.fixture()
def closed_venv():
    """A venv with numpy, in a folder only root may enter."""
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


@needs_bwrap
@pytest.mark.skipif(not ISOLATED, reason=f"needs the isolated level: {isolation.why_not_isolated()}")
def test_a_venv_others_cannot_enter_is_bound_for_the_sandbox_uid(a1, closed_venv):
    uid = isolation.sandbox_uid(isolation.SANDBOX_UID_SPAN - 1)
    assert isolation._trial(closed_venv, uid, use_bwrap=False) is not None  # the uid: no way in
    _, report, _ = _grade_once(a1, closed_venv)
    assert report["level"] == "isolated" and report["sandbox"].startswith("bubblewrap")


def test_without_bubblewrap_the_report_says_so(a1, monkeypatch):
    monkeypatch.setenv("DLGRADER_BWRAP", "0")
    if isolation.is_root() and isolation.why_not_isolated() is not None:
        pytest.skip("as root without bubblewrap this venv cannot be isolated")
    _, report, _ = _grade_once(a1)
    assert report["sandbox"].endswith("bubblewrap: turned off (DLGRADER_BWRAP=0)")
    assert report["temp_dir"] == "shared"  # measured: the host's /tmp is the worker's


@pytest.mark.skipif(not isolation.is_root(), reason="only root grades with a sandbox uid")
def test_as_root_the_subprocess_level_is_refused(tmp_path):
    assert "would run student code as root" in refusal("subprocess")
    proc = run_cli("grade", "a1", str(ROOT / "reference" / "a1_perceptron"), "--out",
                   str(tmp_path), "--isolation", "subprocess")
    assert proc.returncode == 2 and "as root" in proc.stderr


@pytest.mark.skipif(Cgroup.create("dlgrader-probe", 64, 8) is None,
                    reason="no writable cgroup here (an ordinary user, a read-only /sys/fs/cgroup)")
def test_a_cgroup_bounds_memory_and_processes_and_leaves_nothing():
    Cgroup("v1", [], 0)  # the probe above made one: remove it through a fresh handle below
    group = Cgroup.create("dlgrader-probe", 64, 8)
    assert group is not None
    try:
        hog = subprocess.run([sys.executable, "-c", "b = bytearray(200 << 20)"],
                             preexec_fn=group.join, capture_output=True)
        assert hog.returncode == -9 and group.oom_kills() >= 1
        forks = subprocess.run(
            [sys.executable, "-c", "import os, sys\nfor _ in range(20):\n    os.fork() or "
             "__import__('time').sleep(5)\n"], preexec_fn=group.join, capture_output=True,
            timeout=30)
        assert b"BlockingIOError" in forks.stderr or forks.returncode != 0
    finally:
        group.remove()
    assert not any(f.exists() for f in group.folders)


def test_forbidden_modules_are_refused_even_past_the_finder(tmp_path):
    """The audit hook holds when the student empties sys.meta_path's extras or loads the
    package's files by path."""
    code = (
        "import importlib.util, os, sys\n"
        "from grader.sandbox.worker import forbid_imports, ForbiddenImportError\n"
        "forbid_imports(['sklearn'])\n"
        "try:\n    __import__('sk' + 'learn')\nexcept ForbiddenImportError:\n    print('name')\n"
        "spec = importlib.util.find_spec('numpy')\n"
        "folder = os.path.join(os.path.dirname(os.path.dirname(spec.origin)), 'sklearn')\n"
        "try:\n    open(os.path.join(folder, '__init__.py')).read()\n"
        "except ForbiddenImportError:\n    print('path')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.split() == ["name", "path"], proc.stderr[-2000:]
