"""Staging: root never follows a student's link, and every submission gets its results.json.

Unit tests of grader.staging (and of the bounded readers that see student files before or beside
it: fingerprint, the notebook reader, the static import check), then one batch of hostile
submissions graded through the real CLI.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, left_by_sandbox_uids, read_results, run_cli

from grader import grading, intake, notebook, results, staging
from grader.assignments import fingerprint
from grader.grading import Submission, stage
from grader.plugin import static_violations

HUGE = 100 << 30  # a sparse 100 GB file: refused by its size, never read


def _sparse(path: Path) -> Path:
    with open(path, "wb") as f:
        f.truncate(HUGE)
    return path


def _marker_notebook(a1, mark: Path, base: str = "reference") -> str:
    """The module's code as a notebook, led by a kept cell that leaves `mark` if it ever runs
    inside the trusted grader (only there is the `grader` package imported)."""
    folder = a1.reference_dir if base == "reference" else a1.release_dir
    nb = notebook.to_notebook((folder / a1.module_file).read_text(), a1.module, a1.title)
    nb["cells"].insert(2, {  # after the imports: `from __future__` stays first
        "cell_type": "code", "execution_count": None, "metadata": {"tags": ["keep"]},
        "outputs": [], "source": (
            "import sys\n"
            "if 'grader' in sys.modules:  # the trusted process, never the worker\n"
            "    try:\n"
            f"        open({str(mark)!r}, 'w').write('ran as the grader')\n"
            "    except OSError:\n"
            "        pass\n")})
    return notebook.dumps(nb)


# -- grader.staging -------------------------------------------------------------------------

def test_a_link_to_a_file_elsewhere_is_listed_not_copied(tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("ANSWER = 42\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "perceptron.py").symlink_to(secret)
    (sub / "helper.py").write_text("x = 1\n")
    staged = staging.stage_tree(sub, tmp_path / "dest")
    assert staged.copied == ["helper.py"]
    assert not os.path.lexists(tmp_path / "dest" / "perceptron.py")
    assert "perceptron.py: a symbolic link, not copied" in staged.notice()


def test_a_dangling_link_and_a_notebook_never_write_through_the_link(a1, tmp_path):
    sub, work = tmp_path / "sub", tmp_path / "work"
    sub.mkdir()
    work.mkdir()
    (sub / "perceptron.py").symlink_to("../json.py")
    mark = tmp_path / "mark"
    (sub / "perceptron.ipynb").write_text(_marker_notebook(a1, mark))
    folder, info = stage(a1, Submission("sub", sub), work)
    module = folder / "perceptron.py"
    assert module.is_file() and not module.is_symlink()
    assert "def threshold_unit" in module.read_text()
    assert not os.path.lexists(work / "json.py") and not os.path.lexists(tmp_path / "json.py")
    assert info["graded_file"] == "perceptron.ipynb"
    assert "perceptron.py: a symbolic link, not copied" in info["notice"]


def test_a_notebook_linked_to_a_root_only_file_is_not_read(a1, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    hidden = private / "solution.ipynb"
    hidden.write_text(_marker_notebook(a1, tmp_path / "mark"))
    hidden.chmod(0o600)
    sub, work = tmp_path / "sub", tmp_path / "work"
    sub.mkdir()
    work.mkdir()
    (sub / "perceptron.ipynb").symlink_to(hidden)
    with pytest.raises(intake.NothingToGrade) as err:
        stage(a1, Submission("sub", sub), work)
    assert "perceptron.ipynb: a symbolic link, not copied" in str(err.value)
    assert [p.name for p in work.rglob("*")] == ["staged"]  # nothing converted or graded
    with pytest.raises(notebook.NotebookError, match="symbolic link"):
        notebook.to_module(sub / "perceptron.ipynb")


def test_dev_zero_a_fifo_and_a_sparse_file_are_skipped_at_once(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "perceptron.py").symlink_to("/dev/zero")
    os.mkfifo(sub / "pipe.py")
    _sparse(sub / "weights.npy")
    (sub / "ok.py").write_text("x = 1\n")
    start = time.monotonic()
    staged = staging.stage_tree(sub, tmp_path / "dest")
    print_ = fingerprint([sub])
    assert time.monotonic() - start < 5
    assert staged.copied == ["ok.py"] and print_ == fingerprint([sub])
    notice = staged.notice()
    assert "perceptron.py: a symbolic link" in notice
    assert "pipe.py: a named pipe (FIFO)" in notice
    assert "weights.npy: 100 GB, over the 32 MB limit per file" in notice
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["ok.py"]


def test_a_lone_special_file_is_a_staging_error(a1, tmp_path):
    os.mkfifo(tmp_path / "fifo.py")
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    for name, what in [("fifo.py", "a named pipe"), ("zero.py", "a symbolic link")]:
        work = tmp_path / f"work-{name}"
        work.mkdir()
        with pytest.raises(staging.StagingError, match=what):
            stage(a1, Submission(name, tmp_path / name), work)


def test_the_caps_on_files_total_size_and_depth(tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "MAX_FILES", 5)
    monkeypatch.setattr(staging, "MAX_TOTAL_BYTES", 1000)
    monkeypatch.setattr(staging, "MAX_DEPTH", 2)
    sub = tmp_path / "sub"
    (sub / "a" / "b" / "c").mkdir(parents=True)
    (sub / "a" / "b" / "in_depth.txt").write_text("fine\n")
    (sub / "a" / "b" / "c" / "too_deep.txt").write_text("no\n")
    (sub / "data1.bin").write_bytes(b"0" * 600)
    (sub / "data2.bin").write_bytes(b"0" * 600)
    (sub / "perceptron.py").write_text("x = 1\n")
    staged = staging.stage_tree(sub, tmp_path / "dest")
    assert staged.copied == ["perceptron.py", "data1.bin", "a/b/in_depth.txt"]  # sources first
    assert staged.skipped == ["data2.bin: the submission is over 1000 bytes in all, not copied",
                              "a/b/c/: more than 2 folders deep, not copied"]
    for i in range(8):
        (sub / f"f{i}.txt").write_text("x")
    staged = staging.stage_tree(sub, tmp_path / "dest2")
    assert len(staged.copied) == 5
    assert sum("over the limit of 5 files" in s for s in staged.skipped) == 6
    assert not (tmp_path / "dest2" / "f7.txt").exists()


def test_a_nested_folder_is_copied_as_regular_files_and_folders(tmp_path):
    sub = tmp_path / "sub"
    (sub / "pkg" / "__pycache__").mkdir(parents=True)
    (sub / ".git").mkdir()
    (sub / ".git" / "config").write_text("x")
    (sub / "pkg" / "__init__.py").write_text("")
    (sub / "pkg" / "util.py").write_text("Y = 2\n")
    (sub / "pkg" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"\0")
    (sub / "pkg" / "loop").symlink_to("..")
    (sub / "perceptron.py").write_text("from pkg.util import Y\n")
    staged = staging.stage_tree(sub, tmp_path / "dest")
    assert sorted(staged.copied) == ["perceptron.py", "pkg/__init__.py", "pkg/util.py"]
    assert staged.skipped == ["pkg/loop: a symbolic link, not copied"]
    assert (tmp_path / "dest" / "pkg" / "util.py").read_text() == "Y = 2\n"


def test_read_bounded_reads_only_a_regular_file_within_the_limit(tmp_path):
    small = tmp_path / "small.txt"
    small.write_bytes(b"abc")
    assert staging.read_bounded(small, 3) == b"abc"
    with pytest.raises(staging.StagingError, match="limit"):
        staging.read_bounded(small, 2)
    (tmp_path / "link").symlink_to(small)
    with pytest.raises(staging.StagingError, match="symbolic link"):
        staging.read_bounded(tmp_path / "link", 10)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(staging.StagingError, match="named pipe"):
        staging.read_bounded(tmp_path / "fifo", 10)
    with pytest.raises(staging.StagingError, match="limit"):
        staging.read_bounded(_sparse(tmp_path / "huge"), 10)


# -- the other readers of student files -------------------------------------------------------

def test_fingerprint_follows_nothing_and_reads_a_bounded_prefix(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(sub / "pipe")
    huge = _sparse(sub / "huge.bin")
    start = time.monotonic()
    first = fingerprint([sub])
    assert fingerprint([huge]) and fingerprint([sub / "pipe"]) and fingerprint([sub / "zero.py"])
    assert time.monotonic() - start < 5
    os.utime(huge, ns=(1, 1))  # a large file's size and mtime stand for its unread tail
    assert fingerprint([sub]) != first
    small = tmp_path / "small.py"
    small.write_text("x = 1\n")
    expected = hashlib.sha256(b"small.py" + b"x = 1\n").hexdigest()[:24]
    assert fingerprint([small]) == expected  # small files hash as before: caches stay valid


def test_static_check_survives_deep_nesting_and_special_files(tmp_path):
    deep = tmp_path / "deep.py"
    deep.write_text("x = " + "-" * 200_000 + "1\nimport torch\n")
    assert static_violations(deep, ["torch"]) == [
        "deep.py is too large or too deeply nested to check its imports"]
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.py")
    start = time.monotonic()
    assert static_violations(tmp_path / "zero.py", ["torch"]) == []
    assert static_violations(tmp_path / "fifo.py", ["torch"]) == []
    assert time.monotonic() - start < 5


def test_the_job_folder_is_never_on_the_grading_process_path(a1, tmp_path, monkeypatch):
    """Whatever lands in the job folder (a json.py, say), the trusted process does not import it:
    it runs with the checkout as its working folder, not the job folder."""
    mark = tmp_path / "mark"

    def stage_and_plant(assignment, sub, into):
        (into / "json.py").write_text(f"open({str(mark)!r}, 'w').write('imported')\n")
        return stage(assignment, sub, into)

    monkeypatch.setattr(grading, "stage", stage_and_plant)
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(a1.reference_dir / a1.module_file, sub)
    res = grading.grade_one(a1, Submission("sub", sub), tmp_path / "out")
    assert not mark.exists()
    assert res["score"] == 100


# -- a hostile batch through the CLI ----------------------------------------------------------

def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def hostile_batch(a1, tmp_path_factory):
    """The reference, and one of each submission that used to break staging or the batch."""
    tmp = tmp_path_factory.mktemp("hostile")
    subs, out, outside = tmp / "subs", tmp / "out", tmp / "outside"
    outside.mkdir()
    reference = (a1.reference_dir / a1.module_file).read_text()
    folders = {n: subs / n for n in ("correct", "json_link", "planted_conftest", "dev_zero",
                                     "sparse", "brackets", "nested_expression")}
    for f in folders.values():
        f.mkdir(parents=True)
    (folders["correct"] / "perceptron.py").write_text(reference)
    (folders["json_link"] / "perceptron.py").symlink_to("../json.py")
    (folders["json_link"] / "perceptron.ipynb").write_text(_marker_notebook(a1, tmp / "mark"))
    (folders["planted_conftest"] / "perceptron.py").symlink_to(outside / "conftest.py")
    (folders["planted_conftest"] / "perceptron.ipynb").write_text(
        _marker_notebook(a1, tmp / "mark", base="stub"))
    (folders["dev_zero"] / "perceptron.py").symlink_to("/dev/zero")
    os.mkfifo(subs / "fifo")  # an entry of the batch folder, not a folder
    _sparse(folders["sparse"] / "perceptron.py")
    (folders["brackets"] / "perceptron.ipynb").write_text("[" * 100_000)
    (folders["nested_expression"] / "perceptron.py").write_text(
        reference + "\nx = " + "-" * 200_000 + "1\n")
    before = _tree(a1.tests_dir), _tree(a1.reference_dir)
    start = time.monotonic()
    proc = run_cli("grade", "a1", str(subs), "--out", str(out), "--jobs", "2", timeout=300)
    elapsed = time.monotonic() - start
    return {"proc": proc, "out": out, "tmp": tmp, "outside": outside, "before": before,
            "names": [*folders, "fifo"], "elapsed": elapsed}


def test_every_hostile_submission_gets_a_valid_results_json(hostile_batch):
    proc, out = hostile_batch["proc"], hostile_batch["out"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    schema = json.loads(results.SCHEMA_PATH.read_text())
    scores = {}
    for name in hostile_batch["names"]:
        res = read_results(out, name)
        jsonschema.validate(res, schema)
        scores[name] = res["score"]
    assert scores == {"correct": 100, "json_link": 100, "planted_conftest": 0, "dev_zero": 0,
                      "sparse": 0, "brackets": 0, "nested_expression": 0, "fifo": 0}
    with open(out / "gradebook.csv", newline="") as f:
        assert sorted(r["submission"] for r in csv.DictReader(f)) == sorted(scores)


def test_each_hostile_submission_is_told_why(hostile_batch):
    out = hostile_batch["out"]
    why = {"json_link": "perceptron.py: a symbolic link, not copied",
           "planted_conftest": "perceptron.py: a symbolic link, not copied",
           "dev_zero": "perceptron.py: a symbolic link, not copied",
           "sparse": "over the 32 MB limit per file",
           "brackets": "nested too deeply",
           "nested_expression": "too deeply nested",
           "fifo": "fifo: a named pipe (FIFO)"}
    for name, needle in why.items():
        res = read_results(out, name)
        text = res["output"] + "\n".join(t["output"] for t in res["tests"])
        assert needle in text, (name, text[:2000])
        assert str(ROOT) not in text and "Traceback" not in text, name
    assert read_results(out, "json_link")["extra_data"]["graded_file"] == "perceptron.ipynb"


def test_nothing_is_written_outside_the_output_folder(hostile_batch, a1):
    tmp = hostile_batch["tmp"]
    assert not (tmp / "mark").exists(), "a notebook ran inside the trusted grader"
    assert not os.path.lexists(tmp / "json.py") and not os.path.lexists(tmp / "subs" / "json.py")
    assert list(hostile_batch["outside"].iterdir()) == []
    assert (_tree(a1.tests_dir), _tree(a1.reference_dir)) == hostile_batch["before"]
    assert sorted(p.name for p in tmp.iterdir()) == ["out", "outside", "subs"]
    assert hostile_batch["elapsed"] < 120
    assert not left_by_sandbox_uids(hostile_batch["out"])
