"""The Docker backend: the grading image gives the same scores as local grading.

Starts an engine when it can (docker/start-engine.sh: root, docker.io and debootstrap from
Debian's packages, a base image made locally) and skips, saying why, when it cannot.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, read_results, run_cli

IMAGE = "dlgrader:test"


@pytest.fixture(scope="module")
def engine():
    proc = subprocess.run(["bash", str(ROOT / "docker" / "start-engine.sh")], capture_output=True,
                          text=True, timeout=1200)
    if proc.returncode != 0:
        pytest.skip(f"no Docker engine: {proc.stderr.strip().splitlines()[-1:]}")
    host = proc.stdout.strip().split("DOCKER_HOST=")[-1]
    os.environ["DOCKER_HOST"] = host
    lock = Path(os.environ.get("ENGINE_DIR", "/var/tmp/dlgrader-docker") + ".lock")
    free = subprocess.run(["flock", "--nonblock", str(lock), "true"], capture_output=True)
    # the engine it started must not keep the lock (make docker runs start-engine.sh again)
    assert free.returncode == 0, f"{lock} is still held after start-engine.sh returned"
    build = subprocess.run(["make", "docker", f"IMAGE={IMAGE}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=1500)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield host
    os.environ.pop("DOCKER_HOST", None)


def test_docker_backend_gives_the_same_scores(engine, all_assignments, tmp_path):
    """Local grading gives the reference full marks on every test and the stub 0 on every test
    (test_assignments proves it); the image must give exactly the same, test by test: every
    reference, and the first assignment's stub (the engine's path for a stub is the same for
    all)."""
    uids = {}
    for i, a in enumerate(all_assignments):
        subs = tmp_path / a.name / "subs"
        graded = ("reference", "stub") if i == 0 else ("reference",)  # the stub path is shared
        for name, src in (("reference", a.reference_dir), ("stub", a.release_dir))[:len(graded)]:
            (subs / name).mkdir(parents=True)
            shutil.copy(src / a.module_file, subs / name / a.module_file)
        docker = tmp_path / a.name / "docker"
        proc = run_cli("grade", a.name, str(subs), "--out", str(docker), "--backend", "docker",
                       "--image", IMAGE, "--jobs", "2")
        assert proc.returncode == 0, proc.stderr
        for name in graded:
            got = read_results(docker, name)
            want = [t["max_score"] if name == "reference" else 0 for t in got["tests"]]
            assert len(got["tests"]) > 1, (a.name, name, got["output"][:2000])
            assert [t["score"] for t in got["tests"]] == want, (a.name, name, got["output"][:2000])
            assert got["extra_data"]["backend"] == "docker"
            iso = got["extra_data"]["isolation"]
            assert iso["level"] == "isolated" and iso["hidden_paths"] == "unreadable"
            assert 63000 <= iso["uid"] < 65000, iso  # never a uid a host grader sweeps
            uids[a.name, name] = iso["uid"]
    first = all_assignments[0].name  # its reference and stub were graded at once (--jobs 2)
    assert uids[first, "reference"] != uids[first, "stub"], uids


def test_no_container_is_left_behind(engine):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={IMAGE}"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == ""


def test_a_torch_assignment_grades_in_the_box(engine, tmp_path):
    """The image has torch's CPU build; a torch assignment grades in Gradescope's box (768 MB,
    half a CPU) with its memory watched (a container offers no cgroup): a submission that
    allocates 8 GB gets a zero saying it ran out of memory, its neighbour full marks."""
    pytest.importorskip("torch")
    from test_torch_workers import REFERENCE, make_course

    course = make_course(tmp_path / "course", memory_mb=384)
    env = {**os.environ, "GRADER_ROOT": str(course)}
    ctx = tmp_path / "ctx"
    layout = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "--layout",
                             str(ctx / "source")], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert layout.returncode == 0, layout.stderr[-2000:]
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\n"
        "COPY source/reference/z7_tnet /autograder/source/reference/z7_tnet\n"
        "COPY source/tests/z7_tnet /autograder/source/tests/z7_tnet\n"
        "RUN chown -R root:root /autograder/source && chmod -R go-rwx /autograder/source\n")
    image = f"{IMAGE}-torch"
    build = subprocess.run(["docker", "build", "-t", image, str(ctx)], capture_output=True,
                           text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    try:
        subs = tmp_path / "subs"
        for name, extra in (("correct", ""), ("hog", "    x = torch.ones(2 ** 31)\n")):
            (subs / name).mkdir(parents=True)
            (subs / name / "tnet.py").write_text(REFERENCE.replace(
                "    return torch.tanh", extra + "    return torch.tanh"))
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "grader.cli", "grade", "z7", str(subs),
                               "--out", str(out), "--backend", "docker", "--image", image,
                               "--jobs", "2"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=1200)
        assert proc.returncode == 0, proc.stderr[-3000:]
        good, hog = read_results(out, "correct"), read_results(out, "hog")
    finally:
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
    assert good["score"] == 100, good["output"][:2000]
    assert good["extra_data"]["isolation"]["memory"] == "watchdog (resident memory)"
    assert hog["score"] == 0
    assert all("ran out of memory: your code may use 384 MB beyond" in t["output"]
               for t in hog["tests"])


class _NotFound(Exception):
    """Named as the SDK's docker.errors.NotFound is."""


_NotFound.__name__ = "NotFound"


class _FakeEngine:
    """A Docker client whose first ``fail`` container starts time out after creating the
    container (as a slow engine's do); later ones write a results.json and exit 0."""

    def __init__(self, fail: int):
        self.fail, self.alive = fail, set()
        self.containers = self

    def run(self, image, command, *, name, volumes, **kwargs):
        self.alive.add(name)
        if self.fail > 0:
            self.fail -= 1
            raise TimeoutError("UnixHTTPConnectionPool: Read timed out. (read timeout=60)")
        out = next(Path(host) for host, v in volumes.items() if v["bind"] == "/autograder/results")
        (out / "results.json").write_text('{"score": 7.0, "tests": [], "extra_data": {}}')
        return self

    def wait(self, timeout):
        return {"StatusCode": 0}

    def get(self, name):
        if name not in self.alive:
            raise _NotFound(name)
        engine = self

        class Handle:
            def remove(self, force):
                engine.alive.discard(name)

        return Handle()


@pytest.mark.parametrize("fail", [1, 5])
def test_a_failing_engine_costs_one_submission_and_leaves_no_container(fail, tmp_path,
                                                                      monkeypatch):
    """A container start that times out is tried again (its leftover removed first); an engine
    that keeps failing gives this submission an error result, not an exception that would stop
    the batch; no container is left behind either way."""
    from grader import assignments, docker_backend
    from grader.grading import Submission

    sub = tmp_path / "alice"
    sub.mkdir()
    shutil.copy(ROOT / "reference" / "a1_perceptron" / "perceptron.py", sub)
    engine = _FakeEngine(fail)
    monkeypatch.setattr(docker_backend, "API_PAUSE_S", 0.0)
    res = docker_backend.grade_one(assignments.find("a1"), Submission("alice", sub),
                                   tmp_path / "out", client=engine)
    assert engine.alive == set()
    assert read_results(tmp_path / "out", "alice") == res
    if fail < docker_backend.API_TRIES:
        assert res["score"] == 7.0
    else:
        assert res["extra_data"]["status"] == "error"
        assert "the Docker engine did not start it" in res["output"]


def test_make_docker_stops_with_the_reason_when_no_engine_can_be_had(tmp_path):
    """Before anything slow: no image is built, and make says why instead of going on."""
    refuse = tmp_path / "no-engine.sh"
    refuse.write_text('echo "start-engine: dockerd did not start: no cgroups here" >&2\nexit 1\n')
    proc = subprocess.run(["make", "docker", f"ENGINE={refuse}", "IMAGE=dlgrader:never"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "dockerd did not start: no cgroups here" in proc.stderr
    assert "make: no Docker engine" in proc.stderr
    assert "gradescope --layout" not in proc.stdout  # it stopped before laying out the image


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("flock"), reason="needs root and flock")
def test_start_engine_runs_one_at_a_time(tmp_path):
    """A second start-engine.sh waits while another holds the lock (two at once would start two
    engines or debootstrap into one rootfs)."""
    engine_dir = tmp_path / "engine"
    holder = subprocess.Popen(["flock", f"{engine_dir}.lock", "sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while (subprocess.run(["flock", "--nonblock", f"{engine_dir}.lock", "true"]).returncode == 0
               and time.monotonic() < deadline):  # until the holder has it
            time.sleep(0.05)
        proc = subprocess.run(["timeout", "3", "bash", str(ROOT / "docker" / "start-engine.sh")],
                              env={**os.environ, "ENGINE_DIR": str(engine_dir)},
                              capture_output=True, text=True)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 124, (proc.returncode, proc.stderr[-500:])  # still waiting
    assert proc.stdout == ""
