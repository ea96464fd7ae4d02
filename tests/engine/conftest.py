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


def write_course(root: Path, name: str, module: str, reference: str,
                 tests: dict[str, str]) -> Path:
    """A throwaway course at root holding one assignment: reference/<name>/<module>.py and
    each of ``tests`` (file name -> text) in tests/<name>/."""
    (root / "reference" / name).mkdir(parents=True)
    (root / "reference" / name / f"{module}.py").write_text(reference)
    (root / "tests" / name).mkdir(parents=True)
    for file, text in tests.items():
        (root / "tests" / name / file).write_text(text)
    return root


def read_results(out: Path, name: str) -> dict:
    return json.loads((out / name / "results.json").read_text())


@pytest.fixture(scope="session")
def all_assignments() -> list[assignments.Assignment]:
    return assignments.all_assignments(ROOT)


@pytest.fixture(scope="session")
def a1() -> assignments.Assignment:
    return assignments.find("a1", ROOT)


def _in_a_container(pid: str) -> bool:
    """True for a process of a Docker container (the Docker backend's graders use the same
    numeric sandbox uids inside their containers; those are not this batch's)."""
    try:
        return "docker" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def left_by_sandbox_uids(out: Path) -> list[str]:
    """What the sandbox uids of a graded batch (read from its results) left behind: processes,
    shared memory segments, /dev/shm files, mounts and cgroups."""
    uids = {json.loads(p.read_text())["extra_data"].get("isolation", {}).get("uid")
            for p in out.glob("*/results.json")} - {None}
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields["Uid"].split()[0])
        zombie_of_a_living_parent = fields["State"].strip().startswith("Z") and fields[
            "PPid"].strip() != "1"  # dead already; its parent, not pid 1, will reap it
        if uid in uids and not _in_a_container(pid) and not zombie_of_a_living_parent:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]
            left.append(f"process {pid} of uid {uid} ({fields['Name'].strip()}, "
                        f"{fields['State'].strip()}, parent {fields['PPid'].strip()}): "
                        f"{cmd.decode(errors='replace')}")
    for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
        if int(line.split()[7]) in uids:
            left.append(f"shared memory segment {line.split()[1]}")
    left += [f"/dev/shm/{n}" for n in os.listdir("/dev/shm")
             if os.lstat(f"/dev/shm/{n}").st_uid in uids]
    left += [line for line in Path("/proc/self/mountinfo").read_text().splitlines()
             if "grader-sandbox" in line]
    for uid in uids:
        left += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/**/dlgrader-{uid}")]
    return left
