"""The Docker backend: the grading image gives the same scores as local grading.

Starts an engine when it can (docker/start-engine.sh: root, docker.io and debootstrap from
Debian's packages, a base image made locally) and skips, saying why, when it cannot.
"""

import os
import shutil
import subprocess

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
    build = subprocess.run(["make", "docker", f"IMAGE={IMAGE}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    yield host
    os.environ.pop("DOCKER_HOST", None)


def test_docker_backend_gives_the_same_scores(engine, all_assignments, tmp_path):
    for a in all_assignments:
        subs = tmp_path / a.name / "subs"
        for name, src in (("reference", a.reference_dir), ("stub", a.release_dir)):
            (subs / name).mkdir(parents=True)
            shutil.copy(src / a.module_file, subs / name / a.module_file)
        local, docker = tmp_path / a.name / "local", tmp_path / a.name / "docker"
        assert run_cli("grade", a.name, str(subs), "--out", str(local)).returncode == 0
        proc = run_cli("grade", a.name, str(subs), "--out", str(docker), "--backend", "docker",
                       "--image", IMAGE, "--jobs", "2")
        assert proc.returncode == 0, proc.stderr
        for name in ("reference", "stub"):
            want, got = read_results(local, name), read_results(docker, name)
            assert [t["score"] for t in got["tests"]] == [t["score"] for t in want["tests"]], (
                a.name, name, got["output"][:2000])
            assert got["extra_data"]["backend"] == "docker"
            iso = got["extra_data"]["isolation"]
            assert iso["level"] == "isolated" and iso["hidden_paths"] == "unreadable"


def test_no_container_is_left_behind(engine):
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"ancestor={IMAGE}"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == ""
