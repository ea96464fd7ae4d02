"""Batch grading at course scale: exports with names, reruns, interruptions."""

import csv
import os
import signal
import subprocess
import sys
import time
import zipfile

from conftest import ROOT, read_results, run_cli

METADATA = """submission_101:
  :submitters:
  - :name: Ada Lovelace
    :email: ada@example.edu
    :sid: '1815'
  :created_at: 2026-11-01 10:00:00 +0000
submission_102:
  :submitters:
  - :name: Alan Turing
    :email: alan@example.edu
  - :name: Grace Hopper
    :email: grace@example.edu
"""


def _export(a1, folder):
    (folder / "submission_101").mkdir(parents=True)
    (folder / "submission_102").mkdir()
    (folder / "submission_101" / "perceptron.py").write_text((a1.reference_dir / "perceptron.py").read_text())
    (folder / "submission_102" / "perceptron.py").write_text((a1.release_dir / "perceptron.py").read_text())
    (folder / "submission_metadata.yml").write_text(METADATA)


def test_gradescope_export_zip_gives_a_gradebook_with_names(a1, tmp_path):
    export = tmp_path / "assignment_1_export"
    _export(a1, export)
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in export.rglob("*"):
            z.write(p, p.relative_to(tmp_path))
    proc = run_cli("grade", "a1", str(archive), "--out", str(tmp_path / "out"), "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "out" / "gradebook.csv") as f:
        rows = {r["submission"]: r for r in csv.DictReader(f)}
    assert rows["submission_101"]["student"] == "Ada Lovelace"
    assert rows["submission_101"]["email"] == "ada@example.edu"
    assert float(rows["submission_101"]["total"]) == 100
    assert rows["submission_102"]["student"] == "Alan Turing; Grace Hopper"
    assert float(rows["submission_102"]["total"]) == 0


def test_rerun_skips_unchanged_submissions_and_regrades_changed_ones(a1, tmp_path):
    export = tmp_path / "subs"
    _export(a1, export)
    out = tmp_path / "out"
    assert run_cli("grade", "a1", str(export), "--out", str(out)).returncode == 0
    first = {n: (out / n / "results.json").stat().st_mtime_ns for n in ("submission_101", "submission_102")}
    stub = export / "submission_102" / "perceptron.py"
    stub.write_text((a1.reference_dir / "perceptron.py").read_text())
    assert run_cli("grade", "a1", str(export), "--out", str(out)).returncode == 0
    assert (out / "submission_101" / "results.json").stat().st_mtime_ns == first["submission_101"]
    assert read_results(out, "submission_102")["score"] == 100
    assert run_cli("grade", "a1", str(export), "--out", str(out), "--regrade").returncode == 0
    assert (out / "submission_101" / "results.json").stat().st_mtime_ns != first["submission_101"]


def test_ctrl_c_keeps_finished_results_and_the_gradebook(a1, tmp_path):
    subs = tmp_path / "subs"
    slow = (a1.reference_dir / "perceptron.py").read_text().replace(
        "    return int(np.dot(w, x) >= theta)", "    __import__('time').sleep(1.0)\n    return int(np.dot(w, x) >= theta)")
    for i in range(6):  # each different: nothing may be reused from an identical neighbour
        (subs / f"s{i}").mkdir(parents=True)
        (subs / f"s{i}" / "perceptron.py").write_text(f"# submission {i}\n{slow}")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", "a1", str(subs), "--out",
                             str(out)], cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GRADER_ROOT": str(ROOT)},
                            # as from a terminal: a background job of a script (CI) inherits
                            # SIGINT ignored, and Python then never raises KeyboardInterrupt
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "s0" / "results.json").exists():
        time.sleep(0.2)
    time.sleep(0.3)  # the next submission is seconds away: each call of threshold_unit sleeps 1 s
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    with open(out / "gradebook.csv") as f:
        rows = list(csv.DictReader(f))
    assert 1 <= len(rows) < 6
    for row in rows:
        assert read_results(out, row["submission"])["score"] == 100
