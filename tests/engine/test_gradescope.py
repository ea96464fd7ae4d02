"""The Gradescope autograder zip: run_autograder against a folder laid out like /autograder."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest
from conftest import ROOT, read_results, run_cli

from grader import mutants, results

SCHEMA = json.loads(results.SCHEMA_PATH.read_text())


def _autograder(root, zip_path, files: dict[str, str], python=sys.executable):
    """Lay out root like Gradescope does and run the real run_autograder."""
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
    for name in ("run_autograder", "setup.sh"):
        os.chmod(root / "source" / name, 0o755)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    (root / "submission_metadata.json").write_text(json.dumps(
        {"id": 42, "users": [{"email": "ada@example.edu", "name": "Ada"}]}))
    proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], cwd=root / "source",
                          env={**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": python},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(res, SCHEMA)
    return res


@pytest.fixture(scope="module")
def zips(all_assignments, tmp_path_factory):
    out = tmp_path_factory.mktemp("zips")
    made = {}
    for a in all_assignments:
        proc = run_cli("gradescope", a.name, "--out", str(out / f"{a.name}.zip"))
        assert proc.returncode == 0, proc.stderr
        made[a.name] = out / f"{a.name}.zip"
    return made


def test_zip_has_gradescope_layout_and_no_mutants(zips):
    for name, path in zips.items():
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in z.infolist()}
        assert "setup.sh" in names and "run_autograder" in names
        assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
        assert any(n.startswith(f"tests/{name}/.reference-cache/") for n in names)
        assert not any(n.startswith(f"tests/{name}/mutants") for n in names)


def test_run_autograder_matches_grader_grade(all_assignments, zips, tmp_path):
    """The same scores through the zip as through the CLI: for the first assignment, reference,
    stub and every mutant graded both ways; for the others, the reference full marks and the stub
    0 on every test, as local grading gives them (test_assignments). The zip's path through the
    engine is the same for all; a torch assignment's suite is what costs here."""
    for i, a in enumerate(all_assignments):
        subs = {"reference": (a.reference_dir / a.module_file).read_text(),
                "stub": (a.release_dir / a.module_file).read_text()}
        out = tmp_path / a.name / "out"
        if i == 0:
            for m in mutants.load_all(a):
                subs[m.name] = mutants.apply(a, m)
            local = tmp_path / a.name / "local"
            for name, text in subs.items():
                (local / name).mkdir(parents=True)
                (local / name / a.module_file).write_text(text)
            assert run_cli("grade", a.name, str(local), "--out", str(out),
                           "--jobs", "2").returncode == 0
        with ThreadPoolExecutor(2) as pool:
            got = dict(zip(subs, pool.map(
                lambda item, a=a: _autograder(tmp_path / a.name / "gs" / item[0], zips[a.name],
                                              {a.module_file: item[1]}), subs.items())))
        for name, res in got.items():
            scores = [t["score"] for t in res["tests"]]
            if i == 0:
                assert scores == [t["score"] for t in read_results(out, name)["tests"]], name
            else:
                assert len(scores) > 1, (a.name, name, res["output"][:2000])
                assert scores == [t["max_score"] if name == "reference" else 0
                                  for t in res["tests"]], (a.name, name, res["output"][:2000])
            assert res["extra_data"]["submission_id"] == 42


HOSTILE = """import os, shutil
for target in ["/autograder/results/results.json", os.environ.get("AUTOGRADER_ROOT", "") + "/results"]:
    try:
        open(target, "w").write('{"score": 100}')
    except OSError:
        pass
shutil.rmtree(os.environ.get("AUTOGRADER_ROOT", "/autograder"), ignore_errors=True)
os._exit(0)
"""


def test_run_autograder_survives_a_hostile_submission(zips, tmp_path):
    res = _autograder(tmp_path / "gs", zips["a1_perceptron"],
                      {"perceptron.py": HOSTILE})
    assert res["score"] == 0 and "exited with status 0" in res["tests"][0]["output"]


def test_run_autograder_reports_an_engine_that_cannot_start(zips, tmp_path):
    root = tmp_path / "gs"
    shutil.rmtree(root, ignore_errors=True)
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'engine exploded' >&2\nexit 3\n")
    os.chmod(broken, 0o755)
    res = _autograder(root, zips["a1_perceptron"], {"perceptron.py": "x = 1\n"}, python=str(broken))
    assert res["score"] == 0 and "failed to start" in res["output"]
    assert res["extra_data"]["status"] == "error"


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """The all-assignments layout the Docker image is built from (made once: it grades every
    reference to fill the caches)."""
    src = tmp_path_factory.mktemp("layout") / "source"
    proc = run_cli("gradescope", "--layout", str(src))
    assert proc.returncode == 0, proc.stderr
    return src


def test_layout_for_the_docker_image(layout):
    names = (layout / "assignments.txt").read_text().split()
    assert names == sorted(p.name for p in (ROOT / "tests").iterdir() if (p / "assignment.toml").exists())


def test_the_all_assignments_image_picks_the_assignment_from_the_file_names(layout, tmp_path,
                                                                            monkeypatch):
    """Without GRADER_ASSIGNMENT the image graded everything as a1; now the submitted file
    names choose, and a submission that names none gets a zero saying what was expected."""
    from grader import gradescope

    source = tmp_path / "source"
    source.symlink_to(layout)
    names = (source / "assignments.txt").read_text().split()
    monkeypatch.delenv("GRADER_ASSIGNMENT", raising=False)
    sub = tmp_path / "submission"
    sub.mkdir()
    (sub / "attention.py").write_text("x = 1\n")
    a, _ = gradescope.choose_assignment(names, source, sub)
    assert a is not None and a.name == "a6_attention"
    (sub / "attention.py").unlink()
    (sub / "notes.txt").write_text("hello\n")
    a, why = gradescope.choose_assignment(names, source, sub)
    assert a is None and "notes.txt" in why and "perceptron.py" in why
    assert gradescope.run(tmp_path) == 0  # a graded zero, not a crash or a1's verdict
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(res, SCHEMA)
    assert res["score"] == 0 and "Expected file names" in res["tests"][0]["output"]
    monkeypatch.setenv("GRADER_ASSIGNMENT", "a2_backprop")
    a, _ = gradescope.choose_assignment(names, source, sub)
    assert a.name == "a2_backprop"


def test_a_budget_the_box_cannot_hold_is_refused(tmp_path):
    """A memory budget that Gradescope's box cannot hold (beside the worker's imports and the
    judge) would give a verdict there that local grading does not: the zip is refused, and says
    what to change. Every assignment of the course fits the default 768 MB box."""
    import dataclasses

    from grader import assignments, gradescope

    assert [a.name for a in assignments.all_assignments() if gradescope.misfit(a)] == []
    big = dataclasses.replace(assignments.find("a6"), memory_mb=1536)
    why = gradescope.misfit(big)
    assert why and "1536 MB" in why and "768 MB box" in why and "--box-memory" in why
    assert gradescope.misfit(big, box_mb=2048) is None
    with pytest.raises(ValueError, match="768 MB box"):
        gradescope.layout([big], tmp_path / "source", warm_cache=False)
    proc = run_cli("gradescope", "a1", "--box-memory", "256", "--out", str(tmp_path / "a1.zip"))
    assert proc.returncode == 2 and "256 MB box" in proc.stderr
    assert not (tmp_path / "a1.zip").exists()
