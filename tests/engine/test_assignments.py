"""Every assignment: the reference gets full marks, the stub zero, every mutant loses its points."""

import csv
import json
import os
import shutil
import subprocess
import sys

import jsonschema
import pytest
from conftest import ROOT, read_results, run_cli

from grader import mutants, results

SCHEMA = json.loads(results.SCHEMA_PATH.read_text())
NAMES = [a.name for a in __import__("grader.assignments").assignments.all_assignments(ROOT)]


@pytest.fixture(scope="module", params=NAMES)
def graded(request, tmp_path_factory):
    """Grade the reference and the generated stub of one assignment (`grader grade`) while
    `grader mutants` grades its mutants (each on the judges it names) and its alternates."""
    from grader.assignments import find

    a = find(request.param, ROOT)
    subs = tmp_path_factory.mktemp(f"{a.name}-subs")
    shutil.copytree(a.reference_dir, subs / "reference")
    (subs / "stub").mkdir()
    shutil.copy(a.release_dir / a.module_file, subs / "stub" / a.module_file)
    found = mutants.load_all(a)
    out = tmp_path_factory.mktemp(f"{a.name}-out")
    env = {**os.environ, "GRADER_ROOT": str(ROOT)}
    cli = [sys.executable, "-m", "grader.cli"]
    both = [subprocess.Popen([*cli, "mutants", a.name, "--out", str(out / "mutants"),
                              "--jobs", "2"], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE),
            subprocess.Popen([*cli, "grade", a.name, str(subs), "--out", str(out / "graded"),
                              "--jobs", "1"], cwd=ROOT, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    (mut_out, mut_err), (out_text, err) = (p.communicate(timeout=1200) for p in both)
    assert both[1].returncode == 0, err
    proc = subprocess.CompletedProcess(both[1].args, 0, out_text, err)
    return a, out, found, proc, mut_out


def test_reference_gets_full_marks(graded):
    a, out, *_ = graded
    res = read_results(out / "graded", "reference")
    failed = [(t["name"], t["output"]) for t in res["tests"] if t["status"] != "passed"]
    assert not failed
    assert res["score"] == results.max_score(res) == 100


def test_stub_gets_zero(graded):
    a, out, *_ = graded
    res = read_results(out / "graded", "stub")
    assert res["score"] == 0
    assert all("not implemented yet" in t["output"] for t in res["tests"])


def test_every_mutant_loses_the_points_it_names(graded):
    a, out, found, _, said = graded
    assert len(found) >= 5
    survived = {m.name: mutants.survivors(m, read_results(out / "mutants", m.name))
                for m in found}
    assert not {k: v for k, v in survived.items() if v}
    assert f"{len(found)} of {len(found)} mutants caught" in said
    for m in found:  # graded on the judges it names, and on nothing else
        assert set(read_results(out / "mutants", m.name)["extra_data"]["judges"]) == set(m.catches)


def test_every_alternate_gets_full_marks(graded):
    """Independent correct solutions, written from the student README alone, in other styles
    (loops, float32 where allowed, in-place updates, a notebook): a fair grader gives each 100."""
    a, out, *_ = graded
    alternates = mutants.load_alternates(a)
    assert len(alternates) >= 4
    assert any((alt.folder / f"{a.module}.ipynb").exists() for alt in alternates)
    lost = {alt.name: mutants.lost_points(read_results(out / "mutants", f"alt-{alt.name}"))
            for alt in alternates}
    assert not {k: v for k, v in lost.items() if v}


def test_results_validate_against_the_schema(graded):
    a, out, found, *_ = graded
    for name in ["graded/reference", "graded/stub", *(f"mutants/{m.name}" for m in found)]:
        jsonschema.validate(read_results(out, name), SCHEMA)


def test_schema_rejects_what_gradescope_would(graded):
    a, out, *_ = graded
    res = read_results(out / "graded", "reference")
    bad = json.loads(json.dumps(res))
    bad["tests"][0]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
    bad = {**res, "execution_time": "fast"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_gradebook_and_table(graded):
    a, out, found, proc, _ = graded
    with open(out / "graded" / "gradebook.csv") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert float(rows["reference"]["total"]) == 100 and float(rows["stub"]["total"]) == 0
    assert len(rows) == 2
    assert "reference" in proc.stdout and "100/100" in proc.stdout
    level = read_results(out / "graded", "reference")["extra_data"]["isolation"]["level"]
    assert level in ("isolated", "subprocess") and level in proc.stdout


def test_hidden_failures_do_not_leak_expected_values(graded):
    a, out, found, *_ = graded
    for m in found:
        for t in read_results(out / "mutants", m.name)["tests"]:
            assert "Traceback" not in t["output"]
            assert "def test_" not in t["output"] and "assert " not in t["output"]


def _without_timings(value):
    """results.json without what belongs to one run (wall-clock figures, and the sandbox uid
    leased, which depends on what else grades on the machine): the rest must repeat exactly."""
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items()
                if k not in ("execution_time", "seconds", "trained_seconds", "uid")}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def test_regrading_a_batch_five_times_gives_identical_results(tmp_path):
    """The example batch (right, wrong, crashing and misfiled submissions) graded five times:
    every results.json is the same, byte for byte once timings are left out."""
    src = ROOT / "examples/submissions/a1_perceptron"
    runs = []
    for i in range(5):
        proc = run_cli("grade", "a1", str(src), "--out", str(tmp_path / str(i)), "--jobs", "2")
        assert proc.returncode == 0, proc.stderr
        runs.append({p.parent.name: json.dumps(_without_timings(json.loads(p.read_text())),
                                               sort_keys=True)
                     for p in sorted((tmp_path / str(i)).glob("*/results.json"))})
    assert len(runs[0]) >= 3
    for run in runs[1:]:
        assert run.keys() == runs[0].keys()
        for name in run:
            assert run[name] == runs[0][name], name


def test_example_submissions_grade_as_labelled(tmp_path):
    proc = run_cli("grade", "a1", "examples/submissions/a1_perceptron", "--out", str(tmp_path),
                   "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert read_results(tmp_path, "alice_correct")["score"] == 100
    assert 0 < read_results(tmp_path, "bob_partly_wrong")["score"] < 100
    assert read_results(tmp_path, "carol_empty_stub")["score"] == 0


def test_relative_output_folder(tmp_path):
    rel = "out/engine-test-relative"
    shutil.rmtree(ROOT / rel, ignore_errors=True)
    proc = run_cli("grade", "a1", "examples/submissions/a1_perceptron/alice_correct", "--out", rel)
    assert proc.returncode == 0, proc.stderr
    assert read_results(ROOT / rel, "alice_correct")["score"] == 100
    shutil.rmtree(ROOT / rel, ignore_errors=True)


def test_single_file_submission_and_unknown_assignment(a1, tmp_path):
    f = tmp_path / "dave.py"
    f.write_text((a1.reference_dir / a1.module_file).read_text())
    proc = run_cli("grade", "perceptron", str(f), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert read_results(tmp_path / "out", "dave")["score"] == 100
    proc = run_cli("grade", "a9", str(f))
    assert proc.returncode == 2 and "unknown assignment" in proc.stderr


def test_mutants_command_reports_every_mutant_caught():
    proc = run_cli("mutants", "a1", "--jobs", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SURVIVED" not in proc.stdout and "mutants caught" in proc.stdout


def test_a_mutant_whose_edit_no_longer_applies_is_an_error(a1):
    m = mutants.Mutant("stale", "nothing", ["test_threshold_unit"], [("no such line", "x")])
    with pytest.raises(ValueError, match="occurs 0 times"):
        mutants.apply(a1, m)


def test_a_mutant_caught_with_a_message_that_misses_the_cause_is_reported():
    """`says`: a mutant must lose its points *and* the message must name the cause."""
    m = mutants.Mutant("x", "x", ["test_a"], [], says="must restore x")
    res = {"extra_data": {"judges": {"test_a": [1]}}, "score": 0,
           "tests": [{"number": 1, "score": 0, "max_score": 10, "output": "off by 1e-5"}]}
    assert mutants.survivors(m, res) == ["test_a: its message does not say 'must restore x'"]
    res["tests"][0]["output"] = "numeric_gradient must restore x after perturbing it"
    assert mutants.survivors(m, res) == []
