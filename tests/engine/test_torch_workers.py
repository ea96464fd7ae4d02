"""Torch in the sandbox: warm workers (a zygote that imports torch once and forks), memory that
CUDA tolerates (a cgroup, or a watchdog where none can be had), and a neighbour left unharmed.

A throwaway course (`z7_tnet`, torch preloaded) is made in a temporary folder and graded through
the real CLI and through the runner itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, write_course

from grader import assignments
from grader.sandbox import WorkerSpec, open_runner
from grader.sandbox.isolation import Limits
from grader.sandbox.runner import Watchdog

pytest.importorskip("torch")

REFERENCE = '''
import torch


def forward(x):
    """tanh(2x), as a tensor."""
    return torch.tanh(2.0 * torch.as_tensor(x))
'''
FILES = {
    "assignment.toml": '''
title = "Torch in the sandbox"
module = "tnet"
submit = ["tnet.py"]
preload = ["torch"]

[limits]
timeout = 30
memory_mb = MEMORY_MB
total_timeout = 300
''',
    "probes.py": '''
import numpy as np


def forward(impl, seed):
    return impl.forward(np.random.default_rng(seed).normal(size=(4, 3)))
''',
    "test_tnet.py": '''
import numpy as np
import pytest

import probes


@pytest.mark.points(25)
@pytest.mark.parametrize("seed", range(4))
def test_forward(student, reference, seed):
    """forward matches tanh(2x)"""
    assert np.allclose(student(probes.forward, seed=seed), reference(probes.forward, seed=seed))
''',
}


def make_course(root: Path, memory_mb: int = 1536) -> Path:
    """A course holding one torch assignment, z7_tnet (also used by test_docker)."""
    return write_course(root, "z7_tnet", "tnet", REFERENCE, {
        name: textwrap.dedent(text).lstrip().replace("MEMORY_MB", str(memory_mb))
        for name, text in FILES.items()})


@pytest.fixture(scope="module")
def course() -> Path:
    root = Path(tempfile.mkdtemp(prefix="torch-course-"))  # an ordinary user may read it
    os.chmod(root, 0o755)
    yield make_course(root, memory_mb=512)  # less than torch's CUDA build takes on import
    shutil.rmtree(root, ignore_errors=True)


def _submission(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "tnet.py").write_text(REFERENCE.replace('    return torch.tanh', body + '\n    return torch.tanh'))
    return folder


def test_a_failing_torch_submission_pays_for_torch_once(course, tmp_path):
    """After each failed probe the server is a fresh fork of the zygote, not a new interpreter:
    a submission failing every probe is graded in less than twice the time of its first probe."""
    a = assignments.find("z7", course)
    sub = _submission(tmp_path / "crash", "    raise ValueError('wrong')")
    spec = WorkerSpec(submission=sub, module=a.module, probes_file=a.probes_file, timeout=30,
                      limits=Limits(memory_mb=a.memory_mb), preload=a.preload)
    runner, _ = open_runner(spec)
    try:
        times = []
        for seed in range(6):
            outcome = runner.call("forward", {"seed": seed})
            assert not outcome.ok and "ValueError: wrong" in outcome.message
            times.append(outcome.seconds)
    finally:
        runner.close()
    assert sum(times) < 2 * times[0], times
    assert max(times[1:]) < 0.5, times  # a fork, where a cold start imports torch for seconds


def _as_nobody() -> list[str] | None:
    """The command prefix that runs as the ordinary user `nobody`, when this machine allows it."""
    runuser = shutil.which("runuser")
    if os.geteuid() != 0 or not runuser:
        return None
    ok = subprocess.run([runuser, "-u", "nobody", "--", sys.executable, "-c", "import torch"],
                        capture_output=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    return [runuser, "-u", "nobody", "--"] if ok.returncode == 0 else None


@pytest.mark.parametrize("who", ["grader", "ordinary-user"])
def test_a_memory_hog_gets_a_zero_and_its_neighbour_is_unharmed(course, who):
    """As root the cgroup holds the memory; as an ordinary user (no cgroup) the watchdog does,
    never an address-space limit (it breaks CUDA). The budget counts from where the worker's
    imports end: 400 MB fit in a 512 MB budget though torch's CUDA build alone takes more."""
    prefix = [] if who == "grader" else _as_nobody()
    if prefix is None:
        pytest.skip("needs root, runuser and a venv that `nobody` can run")
    tmp = Path(tempfile.mkdtemp(prefix="torch-batch-"))
    os.chmod(tmp, 0o1777)
    try:
        subs = tmp / "subs"
        (subs / "correct").mkdir(parents=True)
        (subs / "correct" / "tnet.py").write_text(REFERENCE)
        _submission(subs / "hog", "    x = torch.ones(2 ** 31)  # 8 GB of float32")
        _submission(subs / "fits", "    big = torch.ones(100 * 2 ** 20, dtype=torch.float32)  # 400 MB")
        for path in (subs, subs / "correct", subs / "hog", subs / "fits"):
            os.chmod(path, 0o755)
        out = tmp / "out"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "TMPDIR": str(tmp),
               "GRADER_ROOT": str(course)}
        proc = subprocess.run([*prefix, sys.executable, "-m", "grader.cli", "grade", "z7",
                               str(subs), "--out", str(out), "--jobs", "2"], capture_output=True,
                              text=True, timeout=600, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-3000:]
        good = json.loads((out / "correct" / "results.json").read_text())
        hog = json.loads((out / "hog" / "results.json").read_text())
        fits = json.loads((out / "fits" / "results.json").read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert good["score"] == 100, good
    assert fits["score"] == 100, fits  # the 512 MB budget starts above what torch takes
    assert hog["score"] == 0
    assert all("ran out of memory: your code may use 512 MB beyond" in t["output"]
               for t in hog["tests"])
    memory = hog["extra_data"]["isolation"]["memory"]
    assert memory == ("watchdog (resident memory)" if who == "ordinary-user" else "cgroup v1") or (
        who == "grader" and memory in ("cgroup v2", "watchdog (resident memory)"))


def test_the_watchdog_kills_a_tree_over_its_limit():
    """Where no cgroup can be had, a torch worker's memory is watched, not limited by address
    space (which breaks CUDA)."""
    code = "import time\nx = bytearray(300 << 20)\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    dog = Watchdog(proc.pid, 100, period=0.05)
    start = time.monotonic()
    try:
        assert proc.wait(timeout=20) == -9
    finally:
        dog.stop()
        proc.kill()
    assert dog.fired and time.monotonic() - start < 10
