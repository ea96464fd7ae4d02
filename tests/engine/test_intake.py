"""Intake: a misfiled submission is graded when it can be, and told why when it cannot.

One batch through the real CLI holds each case (a renamed file, folders one and two deep, a zip
in the batch folder and one given as the submission, a notebook of another name, notes.txt
alone, an empty folder, two candidates, a stray notes.txt, a folder of loose files), then unit
tests of the rules (grader.intake) and of the zip's bounds.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, read_results, run_cli

from grader import intake, notebook, results, staging
from grader.grading import Submission, discover, stage

REFERENCE = (ROOT / "reference" / "a1_perceptron" / "perceptron.py").read_text()
EXPECTED = "`perceptron.py` or `perceptron.ipynb`"


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture(scope="module")
def batch(a1, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intake")
    subs, loose, out = tmp / "subs", tmp / "loose", tmp / "out"
    stub = (a1.release_dir / a1.module_file).read_text()
    _write(subs / "v2" / "Perceptron_v2.py", REFERENCE)
    _write(subs / "nested1" / "perceptron" / "perceptron.py", REFERENCE)
    _write(subs / "nested2" / "alice" / "perceptron" / "perceptron.py", REFERENCE)
    _write(subs / "nested2" / "alice" / "notes.md", "my notes\n")
    _write(subs / "nb" / "my solution.ipynb",
           notebook.dumps(notebook.to_notebook(REFERENCE, a1.module, a1.title)))
    _write(subs / "notes_only" / "notes.txt", "I could not finish\n")
    (subs / "empty").mkdir()
    _write(subs / "two" / "Perceptron_v1.py", stub)
    _write(subs / "two" / "Perceptron_v2.py", REFERENCE)
    _zip(subs / "erin.zip", {"erin/perceptron.py": REFERENCE, "erin/README.md": "hi\n"})
    _write(subs / "notes.txt", "grading notes of the TA\n")
    _zip(tmp / "dave.zip", {"perceptron.py": REFERENCE, "notes.md": "done\n"})
    _write(loose / "alice.py", REFERENCE)
    _write(loose / "bob.py", stub)
    _write(loose / "carol.ipynb", notebook.dumps(notebook.to_notebook(REFERENCE, a1.module,
                                                                      a1.title)))
    proc = run_cli("grade", "a1", str(subs), str(tmp / "dave.zip"), str(loose), "--out", str(out),
                   "--jobs", "2", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "gradebook.csv", newline="") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    return {"out": out, "rows": rows, "proc": proc}


def _graded(batch, name: str) -> dict:
    return read_results(batch["out"], name)


def test_every_input_gets_one_row(batch):
    assert sorted(batch["rows"]) == sorted([
        "v2", "nested1", "nested2", "nb", "notes_only", "empty", "two", "erin", "notes",
        "dave", "alice", "bob", "carol"])
    schema = json.loads(results.SCHEMA_PATH.read_text())
    for name in batch["rows"]:
        jsonschema.validate(_graded(batch, name), schema)


def test_the_only_python_file_is_graded_and_the_results_say_so(batch):
    res = _graded(batch, "v2")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "Perceptron_v2.py"
    assert ("Graded `Perceptron_v2.py` as `perceptron.py`: it is the only Python file in the "
            "submission") in res["output"]


def test_the_only_notebook_of_another_name_is_graded(batch):
    res = _graded(batch, "nb")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "my solution.ipynb"
    assert "Graded `my solution.ipynb` as `perceptron.py`: it is the only notebook" in res["output"]


def test_a_submission_one_folder_deep_is_graded(batch):
    res = _graded(batch, "nested1")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "perceptron/perceptron.py"
    assert "folder `perceptron/`" in res["output"]


def test_a_submission_two_folders_deep_is_graded(batch):
    res = _graded(batch, "nested2")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "alice/perceptron/perceptron.py"


def test_a_zip_in_the_batch_folder_is_one_students_submission(batch):
    res = _graded(batch, "erin")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "erin/perceptron.py"
    assert "Unpacked `erin.zip`" in res["output"]


def test_a_zip_given_as_the_submission_is_unpacked(batch):
    res = _graded(batch, "dave")
    assert res["score"] == 100
    assert res["extra_data"]["graded_file"] == "perceptron.py"
    assert "Unpacked `dave.zip`" in res["output"]


def test_notes_alone_is_a_zero_that_lists_what_was_found(batch):
    for name in ("notes_only", "notes"):  # in a student's folder, and stray in the batch folder
        res = _graded(batch, name)
        assert res["score"] == 0 and res["extra_data"]["status"] == "graded", name
        assert "graded_file" not in res["extra_data"], name
        assert "`notes.txt`" in res["output"] and EXPECTED in res["output"], name
        assert "ModuleNotFoundError" not in json.dumps(res), name
        assert float(batch["rows"][name]["total"]) == 0


def test_an_empty_folder_claims_no_graded_file(batch):
    res = _graded(batch, "empty")
    assert res["score"] == 0
    assert "graded_file" not in res["extra_data"]
    assert "The submission is empty" in res["output"] and EXPECTED in res["output"]


def test_two_candidates_are_a_zero_that_lists_both(batch):
    res = _graded(batch, "two")
    assert res["score"] == 0
    assert "graded_file" not in res["extra_data"]
    assert "`Perceptron_v1.py`, `Perceptron_v2.py`" in res["output"]
    assert EXPECTED in res["output"]


def test_a_folder_of_loose_files_is_a_batch(batch):
    assert "loose" not in batch["rows"]
    scores = {n: _graded(batch, n)["score"] for n in ("alice", "bob", "carol")}
    assert scores == {"alice": 100, "bob": 0, "carol": 100}
    assert _graded(batch, "alice")["extra_data"]["graded_file"] == "alice.py"
    assert _graded(batch, "carol")["extra_data"]["graded_file"] == "carol.ipynb"


# -- the rules, without grading ---------------------------------------------------------------

def test_what_is_one_submission_and_what_is_a_batch(a1, tmp_path):
    def folder(name: str, files: list[str]) -> Path:
        for f in files:
            _write(tmp_path / name / f, "x = 1\n")
        (tmp_path / name).mkdir(exist_ok=True)
        return tmp_path / name

    one = {"expected": ["perceptron.py", "helper.py", "data/x.csv"],
           "renamed": ["Perceptron_v2.py", "notes.txt"],
           "notes": ["notes.txt"]}
    many = {"loose": ["alice.py", "bob.py", "carol.ipynb"],
            "with_folder": ["bob.py", "carol/Carol.py"],
            "with_zip": ["bob.py", "carol.zip"],
            "folders": ["alice/perceptron.py", "bob/notes.txt"],
            "empty": []}
    for name, files in one.items():
        assert intake.is_one_submission(a1, folder(name, files)), name
    for name, files in many.items():
        assert not intake.is_one_submission(a1, folder(name, files)), name
    export = tmp_path / "export"  # a Gradescope export's student folder is one, whatever it holds
    _write(export / "submission_metadata.yml", "{}\n")
    _write(export / "submission_7" / "v1.py", "x = 1\n")
    _write(export / "submission_7" / "v2.py", "x = 1\n")
    assert [s.name for s in discover(a1, [export / "submission_7"])] == ["submission_7"]
    assert [s.name for s in discover(a1, [tmp_path / "loose"])] == ["alice", "bob", "carol"]


def test_descent_through_wrapping_folders_is_bounded(a1, tmp_path):
    deep = tmp_path / "deep"
    _write(deep / "a" / "b" / "c" / "d" / "e" / "perceptron.py", REFERENCE)
    (tmp_path / "work").mkdir()
    with pytest.raises(intake.NothingToGrade, match="a/b/c/d/e/perceptron.py"):
        stage(a1, Submission("deep", deep), tmp_path / "work")


def test_a_macos_zip_of_a_folder_is_graded_without_its_resource_forks(a1, tmp_path):
    archive = _zip(tmp_path / "frank.zip", {
        "frank/Perceptron_v2.py": REFERENCE, "frank/.DS_Store": "x",
        "frank/test_mine.py": "def test_x():\n    pass\n",
        "__MACOSX/frank/._Perceptron_v2.py": "resource fork"})
    (tmp_path / "work").mkdir()
    folder, info = stage(a1, Submission("frank", archive), tmp_path / "work")
    assert (folder / "perceptron.py").read_text() == REFERENCE
    assert info["graded_file"] == "frank/Perceptron_v2.py"
    assert "Graded `frank/Perceptron_v2.py` as `perceptron.py`" in info["notice"]


def test_a_zip_is_unpacked_safely_or_refused(a1, tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    bad = {"dotdot": {"../evil.py": "x = 1\n", "perceptron.py": REFERENCE},
           "absolute": {"/tmp/dlgrader-intake-evil.py": "x = 1\n", "perceptron.py": REFERENCE}}
    for name, members in bad.items():
        work = tmp_path / f"work-{name}"
        work.mkdir()
        with pytest.raises(staging.StagingError, match="unsafe path"):
            stage(a1, Submission(name, _zip(tmp_path / f"{name}.zip", members)), work)
    linked = tmp_path / "linked.zip"
    with zipfile.ZipFile(linked, "w") as z:
        info = zipfile.ZipInfo("perceptron.py")
        info.external_attr = 0o120777 << 16  # a symbolic link to /etc/passwd
        z.writestr(info, "/etc/passwd")
    (tmp_path / "work-link").mkdir()
    with pytest.raises(staging.StagingError, match="a link or a special file"):
        stage(a1, Submission("linked", linked), tmp_path / "work-link")
    monkeypatch.setattr(intake, "ZIP_MAX_TOTAL_BYTES", 10**5)  # a zip bomb, in small
    bomb = _zip(tmp_path / "bomb.zip", {"perceptron.py": REFERENCE, "w.npy": "0" * 10**6})
    (tmp_path / "work-bomb").mkdir()
    with pytest.raises(staging.StagingError, match="unpacks to more than 100,000 bytes"):
        stage(a1, Submission("bomb", bomb), tmp_path / "work-bomb")
    real = _zip(outside / "real.zip", {"perceptron.py": REFERENCE})
    (tmp_path / "elsewhere.zip").symlink_to(real)
    (tmp_path / "work-symlink").mkdir()
    with pytest.raises(staging.StagingError, match="symbolic link"):  # a batch entry: not followed
        stage(a1, Submission("elsewhere", tmp_path / "elsewhere.zip"), tmp_path / "work-symlink")
    assert sorted(os.listdir(outside)) == ["real.zip"]
    assert not os.path.lexists("/tmp/dlgrader-intake-evil.py")
    assert not os.path.lexists(tmp_path / "evil.py")
