"""The grading process that stays up (grader.forkserver, issue 19): one per slot, a fresh child
per submission, nothing of one grading in the next, a child that overruns or dies costs its
submission only.

A throwaway course (tests/z8_state) whose judges report the process they ran in and fail when
an earlier grading left anything behind, in their own module or in a library module.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import write_course

from grader import assignments, forkserver, grading

TOML = """\
title = "Fork server demo"
module = "state"

[limits]
timeout = 30
memory_mb = 512
cpu_seconds = 60
total_timeout = 4
"""

PROBES = '''\
def answer(impl, x):
    return impl.answer(x)
'''

JUDGES = '''\
import os
import signal

import probes
import pytest

import grader.checks

SEEN = []  # this module's state: a judge module imported once would carry it along


@pytest.mark.points(10)
def test_fresh(student, score):
    """Each grading starts from nothing an earlier grading left."""
    assert not SEEN, "a judge module's state outlived its grading"
    assert not hasattr(grader.checks, "LEFT_BEHIND"), "an earlier grading changed a library"
    SEEN.append(1)
    grader.checks.LEFT_BEHIND = True
    score.metric("pid", os.getpid())
    score.metric("server", os.getppid())
    got = student(probes.answer, x=1)
    if got == "die":  # a grader that crashes in native code, as far as the batch can tell
        os.kill(os.getpid(), signal.SIGKILL)
    assert got == 2, "answer(1) must be 2"
'''

REFERENCE = "def answer(x):\n    return x + 1\n"
DIES = "def answer(x):\n    return 'die'\n"
HANGS = "import time\n\ndef answer(x):\n    time.sleep(25)\n    return x + 1\n"


@pytest.fixture
def course(tmp_path: Path) -> assignments.Assignment:
    root = write_course(tmp_path / "course", "z8_state", "state", REFERENCE,
                        {"assignment.toml": TOML, "probes.py": PROBES, "test_state.py": JUDGES})
    return assignments.find("z8", root)


def _subs(tmp_path: Path, sources: list[str]) -> list[grading.Submission]:
    subs = []
    for i, source in enumerate(sources):
        folder = tmp_path / "subs" / f"s{i}"
        folder.mkdir(parents=True)
        (folder / "state.py").write_text(source)
        subs.append(grading.Submission(f"s{i}", folder))
    return subs


def _metric(res: dict, name: str) -> float:
    return res["tests"][0]["extra_data"]["metrics"][name]["value"]


def test_one_server_grades_one_submission_after_another_each_from_a_fresh_child(course,
                                                                             tmp_path):
    subs = _subs(tmp_path, [REFERENCE] * 3)
    with forkserver.GradingServer(course) as server:
        got = [grading.grade_one(course, s, tmp_path / "out", server=server) for s in subs]
        server_pid = server.proc.pid
    assert [r["score"] for r in got] == [10, 10, 10], [r["tests"][0]["output"] for r in got]
    assert {_metric(r, "server") for r in got} == {server_pid}  # one server for all three
    assert len({_metric(r, "pid") for r in got}) == 3  # a fresh child for each


def test_a_batch_keeps_one_server_per_slot(course, tmp_path):
    rows = grading.grade_batch(course, _subs(tmp_path, [REFERENCE] * 4), tmp_path / "out",
                               jobs=1)
    assert [r["score"] for _, r in rows] == [10] * 4
    assert len({_metric(r, "server") for _, r in rows}) == 1


def test_a_child_that_dies_costs_its_submission_only(course, tmp_path):
    subs = _subs(tmp_path, [DIES, REFERENCE])
    with forkserver.GradingServer(course) as server:
        died = grading.grade_one(course, subs[0], tmp_path / "out", server=server)
        after = grading.grade_one(course, subs[1], tmp_path / "out", server=server)
        alive = server.proc.poll() is None
    assert died["score"] == 0 and died["extra_data"]["status"] == "error"
    assert "pytest exited with -9" in died["output"]
    assert after["score"] == 10 and alive


def test_a_child_past_the_total_time_is_killed_and_the_server_goes_on(course, tmp_path):
    subs = _subs(tmp_path, [HANGS, REFERENCE])
    with forkserver.GradingServer(course) as server:
        hung = grading.grade_one(course, subs[0], tmp_path / "out", server=server)
        after = grading.grade_one(course, subs[1], tmp_path / "out", server=server)
    assert hung["score"] == 0 and "grading took longer than 4 s in all" in hung["output"]
    assert hung["execution_time"] < 15
    assert after["score"] == 10


def test_a_server_that_dies_is_started_again(course, tmp_path):
    subs = _subs(tmp_path, [REFERENCE, REFERENCE])
    with forkserver.GradingServer(course) as server:
        first = grading.grade_one(course, subs[0], tmp_path / "out", server=server)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        second = grading.grade_one(course, subs[1], tmp_path / "out", server=server)
    assert first["score"] == second["score"] == 10
    assert _metric(first, "server") != _metric(second, "server")


def test_the_server_imports_the_libraries_of_the_judges_not_the_judges(a1):
    names = forkserver.libraries(a1)
    assert "numpy" in names and "pytest" in names and "grader.checks" in names
    assert "probes" not in names and not any(n.startswith("test_") for n in names)
