"""Notebook submissions: read without running, graded on their definitions, same scores as .py."""

import json
import shutil
import subprocess
import sys

import nbformat
import pytest
from conftest import read_results, run_cli

from grader import notebook


def _write_nb(path, cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


def test_to_module_keeps_definitions_and_drops_the_rest(tmp_path):
    nb = _write_nb(tmp_path / "x.ipynb", [
        ("markdown", "# Title", None),
        ("code", "%matplotlib inline\n!pip install torch\nimport numpy as np\nLR = 0.1\nSHAPE = (2, 3)\n"
                 "W = np.zeros(SHAPE)\nTAU = 2 * np.pi", None),
        ("code", "def f(x):\n    return x + 1\n\n@staticmethod\ndef g():\n    pass\n\n"
                 "for epoch in range(10**9):\n    f(epoch)\nmodel = f(3)\nprint(model)", None),
        ("code", "import time\ntime.sleep(10**6)", ["skip-grading"]),
        ("code", "CACHE = {}\nCACHE['k'] = f(1)", ["keep"]),
    ])
    source, notes = notebook.to_module(nb)
    assert "def f(x)" in source and "@staticmethod" in source and "LR = 0.1" in source
    assert "TAU = 2 * np.pi" in source and "CACHE['k'] = f(1)" in source
    assert "np.zeros" not in source  # a call is not a constant: it would run at import
    assert "cell 1, line 6: not run by the grader (assign at top level)" in notes
    assert "range(10**9)" not in source and "time.sleep" not in source and "!pip" not in source
    assert "model = f(3)" not in source
    assert any("for at top level" in n for n in notes)
    namespace = {}
    exec(compile(source, "nb", "exec"), namespace)  # runs instantly: no loop, no sleep
    assert namespace["f"](1) == 2


def test_a_constant_built_from_a_dropped_variable_is_dropped_too(tmp_path):
    """`a = Value(2.0)` is a call, so it is left out; `e = (a + b) * (b + 1)` names it, so it
    must be left out as well, or the module fails at import with a NameError."""
    nb = _write_nb(tmp_path / "x.ipynb", [
        ("code", "class Value:\n    def __init__(self, v):\n        self.v = v", None),
        ("code", "a = Value(2.0)\nb = Value(3.0)\ne = (a + b) * (b + 1)\nK = 2 * 3", None),
    ])
    source, notes = notebook.to_module(nb)
    assert "e = (a + b)" not in source and "K = 2 * 3" in source
    assert "cell 2, line 3: not run by the grader (assign at top level)" in notes
    exec(compile(source, "nb", "exec"), {})


def test_a_future_import_in_a_later_cell_is_moved_to_the_top(tmp_path):
    """Jupyter runs `from __future__ import annotations` in any cell; a module needs it first."""
    nb = _write_nb(tmp_path / "x.ipynb", [
        ("code", "import numpy as np", None),
        ("code", "from __future__ import annotations\n\ndef f(x: Later) -> int:\n"
                 "    return 1", None),
        ("code", "from __future__ import annotations", ["keep"]),
    ])
    source, _ = notebook.to_module(nb)
    assert source.startswith("from __future__ import annotations\n")
    assert source.count("from __future__") == 1
    namespace = {}
    exec(compile(source, "nb", "exec"), namespace)
    assert namespace["f"](0) == 1


@pytest.mark.parametrize("text, needle", [
    ('{"cells": [', "invalid JSON"),
    ("[]", "no list of cells"),
    ('{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
     "not a valid notebook"),
    (b"\xff\xfe", "not a readable notebook"),
    ("[" * 100_000, "nested too deeply"),
])
def test_malformed_notebooks_raise_a_clear_error(tmp_path, text, needle):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(notebook.NotebookError, match=needle):
        notebook.to_module(path)


def test_a_deeply_nested_cell_is_a_clear_error(tmp_path):
    nb = _write_nb(tmp_path / "x.ipynb", [("code", "x = " + "-" * 200_000 + "1", None)])
    with pytest.raises(notebook.NotebookError, match="code cell 1 is nested too deeply"):
        notebook.to_module(nb)


def test_syntax_error_in_a_cell_names_the_cell(tmp_path):
    nb = _write_nb(tmp_path / "x.ipynb", [("code", "import numpy", None), ("code", "def f(:", None)])
    with pytest.raises(notebook.NotebookError, match="code cell 2 has a syntax error"):
        notebook.to_module(nb)


@pytest.fixture(scope="module")
def graded_notebooks(all_assignments, tmp_path_factory):
    """For each assignment: the reference as the generated notebook (filled in), a notebook plus
    a broken module (module wins), a malformed notebook and the unfilled release notebook; for
    the first assignment also a notebook with a 20-minute training loop at top level (the
    converter's rule is the same for all). The reference as a module gets full marks on every
    test (test_assignments), so the notebook is held to that."""
    out = {}
    for i, a in enumerate(all_assignments):
        subs = tmp_path_factory.mktemp(f"{a.name}-nb")
        ref_source = (a.reference_dir / a.module_file).read_text()
        filled = notebook.to_notebook(ref_source, a.module, a.title)
        (subs / "notebook").mkdir()
        (subs / "notebook" / f"{a.module}.ipynb").write_text(notebook.dumps(filled))
        slow = json.loads(notebook.dumps(filled))
        slow["cells"].insert(-2, {"cell_type": "code", "metadata": {}, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "x" * 2_000_000}],
            "execution_count": 3, "source": "import time\nfor epoch in range(1200):\n    time.sleep(1)\n"})
        if i == 0:
            (subs / "slow_notebook").mkdir()
            (subs / "slow_notebook" / "my_work.ipynb").write_text(json.dumps(slow))
        (subs / "both").mkdir()
        (subs / "both" / f"{a.module}.ipynb").write_text(notebook.dumps(filled))
        (subs / "both" / a.module_file).write_text((a.release_dir / a.module_file).read_text())
        (subs / "malformed").mkdir()
        (subs / "malformed" / f"{a.module}.ipynb").write_text('{"cells": [{"cell_type": "co')
        (subs / "stub_notebook").mkdir()
        shutil.copy(a.release_dir / f"{a.module}.ipynb", subs / "stub_notebook")
        dest = tmp_path_factory.mktemp(f"{a.name}-nb-out")
        proc = run_cli("grade", a.name, str(subs), "--out", str(dest), "--jobs", "2")
        assert proc.returncode == 0, proc.stderr
        out[a.name] = dest
    return out


def _scores(res):
    return [(t["name"], t["score"]) for t in res["tests"]]


def test_notebook_and_module_get_identical_scores(graded_notebooks):
    for name, out in graded_notebooks.items():
        nb = read_results(out, "notebook")
        assert all(t["score"] == t["max_score"] for t in nb["tests"]), (name, _scores(nb))
        assert nb["score"] == 100, name
        assert nb["extra_data"]["graded_file"].endswith(".ipynb")


def test_top_level_training_loop_is_not_run(graded_notebooks):
    for name, out in list(graded_notebooks.items())[:1]:
        res = read_results(out, "slow_notebook")
        assert res["score"] == 100, name
        assert res["execution_time"] < 300
        assert "did not run" in res["output"] and "my_work.ipynb" in res["output"]


def test_module_wins_over_notebook(graded_notebooks):
    for name, out in graded_notebooks.items():
        res = read_results(out, "both")
        assert res["score"] == 0 and res["extra_data"]["graded_file"].endswith(".py"), name


def test_malformed_notebook_is_a_graded_zero_with_a_message(graded_notebooks):
    for name, out in graded_notebooks.items():
        res = read_results(out, "malformed")
        assert res["score"] == 0
        assert "not a readable notebook" in res["output"]
        assert all("not a readable notebook" in t["output"] for t in res["tests"]), name


def test_release_notebook_scores_zero(graded_notebooks):
    for name, out in graded_notebooks.items():
        res = read_results(out, "stub_notebook")
        assert res["score"] == 0 and "not implemented yet" in res["tests"][0]["output"], name


def test_release_notebook_last_cell_runs_the_public_checks(all_assignments, tmp_path):
    """Run the filled-in notebook's code cells as a kernel would, in a copy of the release."""
    for a in all_assignments:
        folder = tmp_path / a.name
        shutil.copytree(a.release_dir, folder)
        filled = notebook.to_notebook((a.reference_dir / a.module_file).read_text(), a.module, a.title)
        script = "\n\n".join(c["source"] for c in filled["cells"] if c["cell_type"] == "code")
        script += "\nimport sys as _s\n_s.exit(int(pytest.main(['-q', 'tests'])))\n"
        (folder / "as_kernel.py").write_text(script)
        (folder / a.module_file).unlink()  # only the notebook's definitions are available
        proc = subprocess.run([sys.executable, "as_kernel.py"], cwd=folder, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert " passed" in proc.stdout


def test_every_notebook_in_the_release_is_valid(all_assignments):
    for a in all_assignments:
        nb = nbformat.read(str(a.release_dir / f"{a.module}.ipynb"), as_version=4)
        nbformat.validate(nb)
        assert nb.cells[-1].metadata["tags"] == ["skip-grading"]
