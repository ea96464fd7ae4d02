"""Devices, per-device thresholds, cuda_only judges, metrics and the leaderboard (issue 11).

Most tests are unit-sized; one grades a throwaway course (tests/z9_demo) through the real CLI.
Without a GPU the CUDA paths are exercised with a fake list of GPUs; on a GPU machine the same
grading really trains on it and the cuda_only judge runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, write_course

from grader import assignments, grading, plugin, results
from grader.assignments import parse_device

SCHEMA = json.loads(results.SCHEMA_PATH.read_text())
GPUS, WHY_NO_GPU = grading.cuda_devices()  # torch asked in a child, only where a GPU is present

TOML = """\
title = "Devices demo"
module = "demo"
forbidden_imports = ["tensorflow"]

[limits]
timeout = 60
memory_mb = 4096
cpu_seconds = 120
total_timeout = 240

[devices.cpu]
epochs = 3
min_accuracy = 0.5

[devices.cuda]
epochs = 10
min_accuracy = 0.8
timeout = 45
"""

REFERENCE = '''\
def train(epochs, device):
    """A stand-in for training: the accuracy grows with the epochs."""
    return min(1.0, 0.3 + 0.1 * epochs)
'''

PROBES = '''\
import time


def train(mod, seed, device, epochs):
    start = time.perf_counter()
    accuracy = mod.train(epochs=epochs, device=device)
    name = device
    if device.startswith("cuda"):  # only on a GPU: really touch the device the probe was given
        import torch

        name = torch.cuda.get_device_name(torch.device(device))
        float(torch.ones(4, device=device).sum())
    return {"accuracy": float(accuracy), "seconds": time.perf_counter() - start,
            "device": device, "device_name": name, "epochs": epochs}
'''

JUDGES = '''\
import probes
import pytest


@pytest.mark.points(10)
def test_train(student, device, thresholds, score):
    """Training reaches the accuracy this device asks for."""
    out = student(probes.train, seed=0, device=device, epochs=thresholds["epochs"])
    assert out["device"] == device, f"trained on {out['device']}, not {device}"
    score.trained(out["seconds"], out["device_name"])
    score.metric("accuracy", out["accuracy"])
    score.metric("epochs", out["epochs"])
    score.leaderboard("accuracy", out["accuracy"], order="desc")
    score.leaderboard("train seconds", out["seconds"], order="asc")
    assert out["accuracy"] >= thresholds["min_accuracy"], "accuracy below the threshold"


@pytest.mark.points(5)
@pytest.mark.cuda_only
def test_big(student, device):
    """The long run, on a GPU only."""
    assert student(probes.train, seed=0, device=device, epochs=50)["accuracy"] >= 0.99


@pytest.mark.points(5)
def test_plain(student):
    """A judge that needs no device."""
    out = student(probes.train, seed=0, device="cpu", epochs=1)
    assert out["device"] == "cpu" and out["accuracy"] > 0
'''


def make_course(root: Path) -> Path:
    """A throwaway course root with one assignment, z9_demo."""
    return write_course(root, "z9_demo", "demo", REFERENCE,
                        {"assignment.toml": TOML, "probes.py": PROBES, "test_demo.py": JUDGES})


def run_cli_in(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`grader ...` with GRADER_ROOT at a course of the test's making."""
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GRADER_ROOT": str(root)})


@pytest.fixture
def course(tmp_path: Path) -> Path:
    return make_course(tmp_path / "course")


@pytest.fixture
def demo(course: Path) -> assignments.Assignment:
    return assignments.find("z9", course)


# -- --device: parsing and resolution ---------------------------------------------------------
@pytest.mark.parametrize("text,want", [("auto", "auto"), ("CPU", "cpu"), (" cuda ", "cuda"),
                                       ("cuda:0", "cuda:0"), ("cuda:01", "cuda:1")])
def test_parse_device(text, want):
    assert parse_device(text) == want


@pytest.mark.parametrize("text", ["gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:\uff11", "cpu:0",
                                  "mps", ""])
def test_parse_device_refuses(text):
    with pytest.raises(ValueError, match="use auto, cpu, cuda or cuda:N"):
        parse_device(text)


def test_cli_refuses_an_unknown_device(course):
    proc = run_cli_in(course, "grade", "z9", str(course), "--device", "gpu")
    assert proc.returncode == 2 and "use auto, cpu, cuda or cuda:N" in proc.stderr


def test_cuda_visible_devices_empty_means_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert assignments.cuda_present() is False
    assert grading.resolve_device("auto") == ("cpu", [])


def test_torch_is_asked_only_where_a_gpu_is_present(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    asked = []

    def fake_run(cmd, **kw):
        asked.append(cmd)
        if cmd[-1] == "-L":
            return subprocess.CompletedProcess(cmd, 0, "GPU 0: NVIDIA Fake (UUID: GPU-1)\n", "")
        return subprocess.CompletedProcess(cmd, 0, '["NVIDIA Fake"]\n', "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(assignments.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(assignments.shutil, "which", lambda name: None)
    assert grading.resolve_device("auto") == ("cpu", []) and asked == []  # nothing to ask
    monkeypatch.setattr(assignments.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    assert grading.resolve_device("auto") == ("cuda", ["NVIDIA Fake"])
    assert asked[0] == ["/usr/bin/nvidia-smi", "-L"] and "import json, torch" in asked[1][-1]
    monkeypatch.setattr(assignments.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, "[]\n", ""))
    with pytest.raises(grading.DeviceUnavailable, match="a CPU build of torch"):
        grading.resolve_device("cuda")


@pytest.mark.skipif(bool(GPUS), reason="a GPU torch can use is here: auto is cuda")
def test_auto_is_cpu_without_a_gpu_and_cuda_is_refused(course, tmp_path):
    assert grading.resolve_device("auto") == ("cpu", [])
    with pytest.raises(grading.DeviceUnavailable, match="cuda:0"):
        grading.resolve_device("cuda:0")
    sub = tmp_path / "alice"
    sub.mkdir()
    (sub / "demo.py").write_text(REFERENCE)
    proc = run_cli_in(course, "grade", "z9", str(sub), "--device", "cuda",
                      "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "cannot grade here: --device cuda:" in proc.stderr and WHY_NO_GPU in proc.stderr
    assert not (tmp_path / "out" / "alice").exists()  # refused before anything was graded


def test_resolution_with_a_fake_gpu(monkeypatch, demo):
    monkeypatch.setattr(grading, "cuda_devices", lambda: (["Fake GPU 0", "Fake GPU 1"], ""))
    assert grading.resolve_device("auto", demo) == ("cuda", ["Fake GPU 0", "Fake GPU 1"])
    assert grading.resolve_device("cuda:1", demo)[0] == "cuda:1"
    with pytest.raises(grading.DeviceUnavailable, match="2 GPU"):
        grading.resolve_device("cuda:2", demo)
    demo.forbidden_imports.append("torch")  # a numpy-only assignment has no use for a GPU
    assert grading.resolve_device("auto", demo) == ("cpu", [])
    assert grading.resolve_device("cpu", demo) == ("cpu", [])


# -- assignment.toml: [devices.cpu], [devices.cuda] -------------------------------------------
def test_devices_tables_are_parsed(demo):
    assert demo.devices == {"cpu": {"epochs": 3, "min_accuracy": 0.5},
                            "cuda": {"epochs": 10, "min_accuracy": 0.8, "timeout": 45}}


@pytest.mark.parametrize("bad,why", [("[devices.gpu]\nx = 1\n", "unknown device kind gpu"),
                                     ("[devices]\ncpu = 3\n", "only tables"),
                                     ("[devices.cpu]\ntimeout = -1\n", "positive number")])
def test_devices_tables_are_checked(course, bad, why):
    toml = course / "tests" / "z9_demo" / "assignment.toml"
    toml.write_text(TOML.split("[devices.cpu]")[0] + bad)
    with pytest.raises(ValueError, match=why):
        assignments.find("z9", course)


# -- the spec and the worker get the device ---------------------------------------------------
def test_the_spec_carries_the_device(monkeypatch, demo, tmp_path):
    seen = {}

    def fake_run(server, spec, log, timeout):
        seen.update(json.loads(Path(spec).read_text()))
        return 0, None

    monkeypatch.setattr(grading.GradingServer, "run", fake_run)
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "demo.py").write_text(REFERENCE)
    res = grading.grade_one(demo, grading.Submission("sub", sub), tmp_path / "out",
                            device="cuda:1", device_name="Fake GPU 1")
    assert seen["device"] == "cuda:1" and seen["device_name"] == "Fake GPU 1"
    jsonschema.validate(res, SCHEMA)  # no results from the fake: a graded zero saying so


def test_the_worker_spec_gets_the_device_and_its_timeout(monkeypatch, demo, tmp_path):
    made = {}

    def fake_open_runner(spec, level, slot=0):
        made["spec"] = spec
        return object(), {"level": level}

    monkeypatch.setattr(plugin, "open_runner", fake_open_runner)
    spec = {"assignment": demo.name, "root": str(demo.root), "submission": str(tmp_path),
            "device": "cuda:1", "isolation": "subprocess"}
    s = plugin.GradingSession.for_grading(spec)
    s._open_worker()
    assert made["spec"].device == "cuda:1"
    assert made["spec"].timeout == 45  # devices.cuda.timeout beats [limits].timeout
    assert s.probe_device() == "cuda:0"  # the worker sees only its own GPU
    assert s.thresholds() == demo.devices["cuda"]
    s2 = plugin.GradingSession.for_grading({**spec, "device": "cpu"})
    s2._open_worker()
    assert made["spec"].device == "cpu" and made["spec"].timeout == 60
    assert s2.probe_device() == "cpu" and s2.thresholds()["epochs"] == 3


def test_a_missing_threshold_is_the_graders_error(demo, tmp_path):
    s = plugin.GradingSession.for_grading({"assignment": demo.name, "root": str(demo.root),
                                           "submission": str(tmp_path)})
    t = s.thresholds()
    assert t.get("nope", 7) == 7
    with pytest.raises(pytest.fail.Exception, match="not your mistake"):
        t["nope"]
    assert s.collect_errors == ["assignment.toml has no devices.cpu.nope"]


# -- metrics and the leaderboard --------------------------------------------------------------
def test_metrics_and_leaderboard_are_sanitised(demo, tmp_path):
    s = plugin.GradingSession.for_grading({"assignment": demo.name, "root": str(demo.root),
                                           "submission": str(tmp_path)})
    rec = plugin.Record(judge="test_x", name="x", points=1, visibility="visible", tags=[],
                        public=False, outcome="passed")
    s.records["x"] = rec
    score = plugin.Score(rec, s)
    score.metric("loss", float("nan"))
    score.metric("accuracy", 0.9, unit="fraction")
    score.trained(1.5, device_name="Fake GPU")
    score.leaderboard("loss", float("inf"))  # not a number a leaderboard can rank: left off
    score.leaderboard("accuracy", 0.8)
    score.leaderboard("accuracy", 0.9)  # the last one wins
    score.leaderboard("stars", "***", order="asc")
    with pytest.raises(ValueError, match="asc"):
        score.leaderboard("x", 1, order="up")
    res = s.results()
    jsonschema.validate(res, SCHEMA)
    assert res["tests"][0]["extra_data"] == {
        "metrics": {"loss": {"value": "nan"}, "accuracy": {"value": 0.9, "unit": "fraction"}},
        "train_seconds": 1.5, "device_name": "Fake GPU"}
    assert res["leaderboard"] == [{"name": "accuracy", "value": 0.9, "order": "desc"},
                                  {"name": "stars", "value": "***", "order": "asc"}]
    s.integrity = ["line 1: 'torch' is not allowed"]
    assert "leaderboard" not in s.results()  # no rank for a submission that broke the rules


def test_schema_checks_the_leaderboard():
    ok = results.build([results.TestResult("t", 1, extra_data={"metrics": {}})], 1.0,
                       leaderboard=[{"name": "accuracy", "value": 0.9, "order": "desc"}])
    jsonschema.validate(ok, SCHEMA)
    for bad in ({"name": "a", "value": 1, "order": "up"}, {"name": "a"},
                {"name": "a", "value": [1]}, {"name": "a", "value": 1, "rank": 2}):
        doc = {**ok, "leaderboard": [bad]}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SCHEMA)
    assert "leaderboard" not in results.build([], 0.0)


# -- batches: one grading per GPU at a time ---------------------------------------------------
def _fake_batch(monkeypatch, demo, tmp_path, n, **kw):
    calls, lock, live, most = [], threading.Lock(), [], [0]

    def fake_grade_one(a, sub, out_dir, *, device="cpu", device_name="", **rest):
        with lock:
            if device != "cpu" and device in live:
                calls.append((sub.name, "TWO ON ONE GPU", device))
            live.append(device)
            most[0] = max(most[0], len(live))
            calls.append((sub.name, device, device_name))
        time.sleep(0.2)
        with lock:
            live.remove(device)
        return results.build([results.TestResult("t", 1, 1, "passed")], 0.0,
                             extra={"status": "graded"})

    monkeypatch.setattr(grading, "grade_one", fake_grade_one)
    subs = []
    for i in range(n):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "demo.py").write_text(REFERENCE)
        subs.append(grading.Submission(f"s{i}", tmp_path / f"s{i}"))
    grading.grade_batch(demo, subs, tmp_path / "out", **kw)
    return calls, most[0]


def test_cuda_batch_runs_one_grading_per_gpu(monkeypatch, demo, tmp_path):
    calls, most = _fake_batch(monkeypatch, demo, tmp_path, 6, jobs=4, device="cuda",
                              gpus=["Fake GPU 0", "Fake GPU 1"])
    assert len(calls) == 6 and most <= 2
    assert {(d, n) for _, d, n in calls} <= {("cuda:0", "Fake GPU 0"), ("cuda:1", "Fake GPU 1")}


def test_one_named_gpu_grades_one_at_a_time(monkeypatch, demo, tmp_path):
    calls, most = _fake_batch(monkeypatch, demo, tmp_path, 3, jobs=4, device="cuda:1",
                              gpus=["Fake GPU 0", "Fake GPU 1"])
    assert most == 1 and {d for _, d, _ in calls} == {"cuda:1"}


def test_cpu_batch_stays_parallel(monkeypatch, demo, tmp_path):
    calls, most = _fake_batch(monkeypatch, demo, tmp_path, 5, jobs=4)
    assert {d for _, d, _ in calls} == {"cpu"} and most >= 2


def test_cuda_batch_without_gpus_is_refused(demo, tmp_path):
    with pytest.raises(grading.DeviceUnavailable):
        grading.grade_batch(demo, [], tmp_path / "out", device="cuda", gpus=[])
    with pytest.raises(grading.DeviceUnavailable, match="docker"):
        grading.grade_batch(demo, [], tmp_path / "out", device="cuda:0", gpus=["G"],
                            backend="docker")


# -- a real grading -----------------------------------------------------------------------------
def test_grading_on_the_device_in_force(course, tmp_path):
    """auto resolves here (cpu without a GPU); the judge gets the device and its thresholds, the
    cuda_only judge counts for nothing on the CPU, and metrics and the leaderboard are in a
    schema-valid results.json."""
    subs = tmp_path / "subs"
    for name, body in (("good", REFERENCE), ("weak", REFERENCE.replace("0.3 +", "0.0 +"))):
        (subs / name).mkdir(parents=True)
        (subs / name / "demo.py").write_text(body)
    out = tmp_path / "out"
    proc = run_cli_in(course, "grade", "z9", str(subs), "--out", str(out), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    on_gpu = bool(GPUS)
    kind = "cuda" if on_gpu else "cpu"
    good = json.loads((out / "good" / "results.json").read_text())
    weak = json.loads((out / "weak" / "results.json").read_text())
    for res in (good, weak):
        jsonschema.validate(res, SCHEMA)
        assert res["extra_data"]["status"] == "graded", res["output"]
        assert res["extra_data"]["device"].partition(":")[0] == kind
    train, big, plain = good["tests"]
    assert train["score"] == 10, train["output"]
    x = train["extra_data"]
    assert x["device"] == good["extra_data"]["device"]
    assert x["metrics"]["epochs"] == {"value": 10 if on_gpu else 3}  # this device's table
    assert x["metrics"]["accuracy"]["value"] == pytest.approx(1.0 if on_gpu else 0.6)
    assert x["train_seconds"] >= 0 and x["probe_seconds"] >= x["train_seconds"]
    assert x["device_name"] in (GPUS if on_gpu else ["cpu"])  # as the probe reported it
    names = {e["name"]: e for e in good["leaderboard"]}
    assert names["accuracy"]["order"] == "desc" and names["train seconds"]["order"] == "asc"
    assert plain["score"] == 5 and "extra_data" not in plain  # no device: nothing recorded
    if on_gpu:
        assert big["score"] == big["max_score"] == 5
        assert good["score"] == 20 and results.max_score(good) == 20
    else:  # skipped, and it counts for nothing: no zero out of 5
        assert big["max_score"] == 0 and big["score"] == 0 and big["status"] == "passed"
        assert "needs a CUDA device" in big["output"] and big["extra_data"]["points_on_cuda"] == 5
        assert good["score"] == 15 and results.max_score(good) == 15
        # the weak one reaches 0.3 on the CPU (min 0.5): it fails, and still only out of 15
        assert weak["tests"][0]["score"] == 0 and "below the threshold" in weak["tests"][0]["output"]
        assert weak["score"] == 5 and results.max_score(weak) == 15


def test_cuda_only_marker_is_registered():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--markers", "-p", "grader.plugin"],
                          cwd=ROOT / "tests" / "engine", capture_output=True, text=True,
                          timeout=120)
    assert "cuda_only" in proc.stdout
