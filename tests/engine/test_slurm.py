"""The Slurm backend: sharding, collection and retry on submitit's local executor, then a real
one-node Slurm cluster that this file starts and stops itself."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, read_results, run_cli

from grader import assignments, grading, mutants, slurm_backend
from grader.grading import discover

pytest.importorskip("submitit")

EXAMPLES = ROOT / "examples" / "submissions" / "a1_perceptron"
EXPECTED = {"alice_correct": 100.0, "bob_partly_wrong": 50.0, "carol_empty_stub": 0.0,
            "dave_crashes": 0.0}


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    """The example batch (right, partly wrong, an empty stub) and one that crashes on import."""
    subs = tmp_path / "subs"
    shutil.copytree(EXAMPLES, subs)
    (subs / "dave_crashes").mkdir()
    (subs / "dave_crashes" / "perceptron.py").write_text("raise RuntimeError('boom')\n")
    return subs


def _on_local_executor(a1, subs: Path, out: Path, task=slurm_backend.grade_shard, **kw):
    options = slurm_backend.SlurmOptions(cluster="local", shards=2, time_min=5)
    seen: list[str] = []
    rows = slurm_backend.grade_batch(a1, discover(a1, [subs]), out, options, task=task,
                                     progress=lambda name, res: seen.append(name), **kw)
    return dict(rows), seen


def _gradebook(out: Path) -> dict[str, float]:
    with open(out / "gradebook.csv") as f:
        return {r["submission"]: float(r["total"]) for r in csv.DictReader(f)}


def dies_on_first_attempt(assignment, shard, out_dir, **kw):
    """The task of alice_correct's shard is killed the first time it runs (no result, no
    exception: as when its node is lost)."""
    marker = out_dir / ".died"
    if any(s.name == "alice_correct" for s in shard) and not marker.exists():
        marker.touch()
        os._exit(9)
    return slurm_backend.grade_shard(assignment, shard, out_dir, **kw)


def alice_kills_her_node(assignment, shard, out_dir, **kw):
    """A task that fails every time for the shard holding alice_correct."""
    if any(s.name == "alice_correct" for s in shard):
        raise RuntimeError("node lost while grading")
    return slurm_backend.grade_shard(assignment, shard, out_dir, **kw)


@pytest.fixture
def importable_tests(monkeypatch):
    """The local executor's task processes unpickle the injected tasks by reference."""
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
        here, str(ROOT), os.environ.get("PYTHONPATH")])))


def test_cut_deals_every_submission_once_and_never_an_empty_shard():
    subs = [grading.Submission(f"s{i}", Path(f"s{i}")) for i in range(23)]
    shards = slurm_backend.cut(subs, None)
    assert [len(s) for s in shards] == [8, 8, 7]
    assert sorted(s.name for shard in shards for s in shard) == sorted(s.name for s in subs)
    assert [len(s) for s in slurm_backend.cut(subs[:2], 5)] == [1, 1]
    assert slurm_backend.cut([], 3) == []


def test_local_executor_gives_the_scores_of_local_grading_and_a_rerun_skips_them(a1, batch,
                                                                                  tmp_path):
    local = dict(grading.grade_batch(a1, discover(a1, [batch]), tmp_path / "local"))
    out = tmp_path / "slurm"
    rows, seen = _on_local_executor(a1, batch, out)
    assert {n: r["score"] for n, r in rows.items()} == EXPECTED
    assert {n: r["score"] for n, r in local.items()} == EXPECTED
    assert sorted(seen) == sorted(EXPECTED)
    assert _gradebook(out) == EXPECTED
    assert read_results(out, "bob_partly_wrong")["extra_data"]["backend"] == "slurm"
    assert len(list((out / ".slurm").glob("*_result.pkl"))) == 2  # one per shard
    first = (out / "alice_correct" / "results.json").stat().st_mtime_ns
    rows, seen = _on_local_executor(a1, batch, out, skip_done=True)
    assert seen == [] and {n: r["score"] for n, r in rows.items()} == EXPECTED
    assert (out / "alice_correct" / "results.json").stat().st_mtime_ns == first
    assert len(list((out / ".slurm").glob("*_result.pkl"))) == 2  # nothing submitted


def test_a_task_that_dies_is_resubmitted_once_and_grades_its_shard(a1, batch, tmp_path,
                                                                   importable_tests):
    out = tmp_path / "out"
    rows, seen = _on_local_executor(a1, batch, out, task=dies_on_first_attempt)
    assert (out / ".died").exists()
    assert len(list((out / ".slurm").glob("*_result.pkl"))) == 2  # the killed task left none
    assert {n: r["score"] for n, r in rows.items()} == EXPECTED
    assert sorted(seen) == sorted(EXPECTED)
    assert all(r["extra_data"]["status"] == "graded" for r in rows.values())


def test_a_task_that_fails_twice_leaves_error_results_and_a_full_gradebook(a1, batch, tmp_path,
                                                                           importable_tests):
    out = tmp_path / "out"
    rows, seen = _on_local_executor(a1, batch, out, task=alice_kills_her_node)
    lost = [s.name for s in slurm_backend.cut(discover(a1, [batch]), 2)[0]]
    assert "alice_correct" in lost and len(lost) == 2
    for name in lost:
        res = read_results(out, name)
        assert res["score"] == 0 and res["extra_data"]["status"] == "error"
        assert "its Slurm task failed twice" in res["output"]
        assert "node lost while grading" in res["output"]
    kept = {n: s for n, s in EXPECTED.items() if n not in lost}
    assert {n: rows[n]["score"] for n in kept} == kept
    assert rows.keys() == EXPECTED.keys() and sorted(seen) == sorted(EXPECTED)
    assert _gradebook(out) == {**EXPECTED, **dict.fromkeys(lost, 0.0)}


# -- a real one-node cluster ---------------------------------------------------------------
DAEMONS = ("slurmctld", "slurmd", "munged", "sinfo")
UP_WAIT_S = 60


def _install_slurm() -> str:
    """Install Slurm and munge when missing; why not, or ''."""
    if all(shutil.which(d) for d in DAEMONS):
        return ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "Slurm is not installed, and only root on Debian/Ubuntu can install it here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "slurmctld",
                                             "slurmd", "slurm-client", "munge"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode:
            return f"{' '.join(cmd[:2])} failed: {proc.stderr.strip()[-300:]}"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slurm_conf(state: Path, munge_socket: Path) -> str:
    host = socket.gethostname()
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True,
                          timeout=30).stdout.splitlines()[0]  # this host's real CPUs, memory
    return "\n".join([
        "ClusterName=dlgrader-test", f"SlurmctldHost={host}", "SlurmUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={munge_socket}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "MpiDefault=none",
        "ReturnToService=2", f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
        f"StateSaveLocation={state / 'ctld'}", f"SlurmdSpoolDir={state / 'spool'}",
        f"SlurmctldPidFile={state / 'slurmctld.pid'}", f"SlurmdPidFile={state / 'slurmd.pid'}",
        f"SlurmctldLogFile={state / 'slurmctld.log'}", f"SlurmdLogFile={state / 'slurmd.log'}",
        node, f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


def _node_idle() -> str:
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                          timeout=10)
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A one-node Slurm cluster (munged, slurmctld, slurmd) of its own: its own munge key and
    socket, its own ports and state, all under a tmp dir; torn down even on failure."""
    why = _install_slurm()
    if why:
        pytest.skip(why)
    state = tmp_path_factory.mktemp("slurm")
    for d in ("ctld", "spool", "munge"):
        (state / d).mkdir(mode=0o700)
    key = state / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = state / "munge" / "munge.socket"
    conf = state / "slurm.conf"
    conf.write_text(_slurm_conf(state, munge_socket))
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    daemons: list[subprocess.Popen] = []
    try:
        for cmd in (["munged", "-F", "--force", f"--key-file={key}", f"--socket={munge_socket}",
                     f"--pid-file={state / 'munge' / 'munged.pid'}",
                     f"--log-file={state / 'munge' / 'munged.log'}",
                     f"--seed-file={state / 'munge' / 'munged.seed'}"],
                    ["slurmctld", "-D", "-f", str(conf)], ["slurmd", "-D", "-f", str(conf)]):
            daemons.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
            time.sleep(1)
        deadline = time.monotonic() + UP_WAIT_S
        while _node_idle() != "idle":
            if time.monotonic() > deadline or any(d.poll() is not None for d in daemons):
                logs = "; ".join(f"{p.name}: {p.read_text()[-300:]}"
                                 for p in state.glob("*.log"))
                pytest.skip(f"the one-node Slurm cluster did not come up in {UP_WAIT_S} s "
                            f"(sinfo says {_node_idle()!r}; {logs})")
            time.sleep(1)
        yield conf
    finally:
        subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, timeout=30)
        for d in reversed(daemons):
            d.terminate()
            try:
                d.wait(timeout=15)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait(timeout=15)
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        shutil.rmtree(state, ignore_errors=True)


def test_a_real_slurm_cluster_grades_the_batch_like_local_grading(slurm_cluster, a1, batch,
                                                                  tmp_path):
    local = {n: r["score"] for n, r in grading.grade_batch(a1, discover(a1, [batch]),
                                                            tmp_path / "local")}
    assert local == EXPECTED
    out = tmp_path / "out"
    proc = run_cli("grade", "a1", str(batch), "--out", str(out), "--backend", "slurm",
                   "--shards", "2", "--time", "5", "--partition", "debug", timeout=170)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _gradebook(out) == local
    assert {n: read_results(out, n)["score"] for n in local} == local
    assert all(f"{n}: " in proc.stderr for n in EXPECTED)  # progress, as the tasks finished
    jobs = {p.name.split("_")[0] for p in (out / ".slurm").glob("*_result.pkl")}
    assert len(jobs) == 1, jobs  # both shards are tasks of one array


def _queued_second_task() -> str:
    """The array's second task while Slurm lists it (held back by --array-parallelism 1)."""
    listed = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True,
                            timeout=10).stdout.split()
    return next((t for t in listed if t.endswith("_1")), "")


def test_a_task_killed_on_the_real_cluster_is_resubmitted(slurm_cluster, batch, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader.cli", "grade", "a1", str(batch), "--out", str(out),
         "--backend", "slurm", "--shards", "2", "--array-parallelism", "1", "--time", "5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GRADER_ROOT": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not (task := _queued_second_task()):
            assert time.monotonic() < deadline and proc.poll() is None, "no array was queued"
            time.sleep(0.2)
        subprocess.run(["scancel", task], check=True, timeout=30)
        _, stderr = proc.communicate(timeout=150)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    assert _gradebook(out) == EXPECTED
    jobs = {p.name.split("_")[0] for p in (out / ".slurm").glob("*_result.pkl")}
    assert len(jobs) == 2, jobs  # the array's first task, then the killed one submitted again
    assert not list((out / ".slurm").glob(f"{task}_result.pkl"))


def _mixed_batch(a, into: Path, size: int) -> Path:
    """``size`` submissions of many scores: the example batch, every mutant of the assignment
    (the reference with one known mistake) and copies of them, each copy a file of its own."""
    sources = [a.reference_dir]
    sources += sorted(p for p in EXAMPLES.iterdir() if p.is_dir()) if a.short == "a1" else []
    sources += mutants.materialise(a, mutants.load_all(a), into / "mutants")
    subs = into / "subs"
    for i in range(size):
        folder = subs / f"s{i:02d}"
        shutil.copytree(sources[i % len(sources)], folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
        with open(folder / a.module_file, "a") as f:
            f.write(f"\n# copy {i}\n")
    return subs


def test_fifty_submissions_grade_on_the_cluster_as_they_do_locally(slurm_cluster, a1, tmp_path):
    """Issue 19's batch: 50 a1 submissions through the one-node cluster, in 5 tasks of 10, give
    every score local grading gives."""
    subs = _mixed_batch(a1, tmp_path, 50)
    local = {n: r["score"] for n, r in grading.grade_batch(a1, discover(a1, [subs]),
                                                            tmp_path / "local", jobs=2)}
    assert len(local) == 50 and len(set(local.values())) >= 5 and local["s00"] == 100, local
    out = tmp_path / "out"
    proc = run_cli("grade", "a1", str(subs), "--out", str(out), "--backend", "slurm",
                   "--time", "10", "--partition", "debug", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _gradebook(out) == local
    assert len(list((out / ".slurm").glob("*_result.pkl"))) == 5  # one task per 10


def test_ten_a4_submissions_grade_on_the_cluster_as_they_do_locally(slurm_cluster, tmp_path):
    """Issue 19's torch batch: 10 a4 submissions (the reference and mutants), on the cluster
    and locally, the same scores."""
    a4 = assignments.find("a4", ROOT)
    subs = _mixed_batch(a4, tmp_path, 10)
    local = {n: r["score"] for n, r in grading.grade_batch(a4, discover(a4, [subs]),
                                                            tmp_path / "local", jobs=2)}
    assert local["s00"] == 100 and min(local.values()) < 100, local  # the reference, mutants
    out = tmp_path / "out"
    proc = run_cli("grade", "a4", str(subs), "--out", str(out), "--backend", "slurm",
                   "--shards", "2", "--time", "30", "--partition", "debug", timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _gradebook(out) == local


QUIET = """
import logging, sys
from pathlib import Path
from grader import assignments, slurm_backend
options = slurm_backend.SlurmOptions(cluster="local", shards=1, time_min=1)
slurm_backend.make_executor(Path(sys.argv[1]), assignments.find("a1"), options)
log = logging.getLogger("submitit")
log.warning("Call #3 - Bypassing sacct error boom, status may be inaccurate.")
log.warning("a warning worth reading")
"""


def test_submitit_says_nothing_on_stdout_and_no_sacct_noise(tmp_path):
    """The results table is on stdout: submitit's logger keeps its stderr handler only, and the
    warning of every poll of a cluster without accounting is dropped."""
    proc = subprocess.run([sys.executable, "-c", QUIET, str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "GRADER_ROOT": str(ROOT)},
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "Bypassing" not in proc.stderr
    assert "a warning worth reading" in proc.stderr


def test_isolated_on_slurm_as_an_ordinary_user_is_refused_up_front(monkeypatch, capsys, batch):
    """The tasks run as the submitting user; only root can drop to a sandbox uid, so asking for
    the isolated level as anyone else is one message before anything is submitted, not an error
    result per submission."""
    from grader import cli

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(slurm_backend, "grade_batch", lambda *a, **k: pytest.fail("submitted"))
    code = cli.main(["grade", "a1", str(batch), "--backend", "slurm", "--isolation", "isolated"])
    assert code == 2 and "needs the Slurm tasks to run as root" in capsys.readouterr().err
