"""The student release: stubs from markers, public tests that work for a student, nothing hidden."""

import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_cli

from grader import release


def test_strip_solutions_replaces_blocks_and_names_the_function():
    src = '''def f(x):
    """Doc."""
    # BEGIN SOLUTION
    return x + 1
    # END SOLUTION


class C:
    def g(self):
        # BEGIN SOLUTION
        # STUB: return None
        return 42
        # END SOLUTION
'''
    stub, tasks = release.strip_solutions(src)
    assert 'raise NotImplementedError("not implemented yet: f")' in stub
    assert "        return None" in stub and "42" not in stub and "x + 1" not in stub
    assert tasks == ["f", "C.g"]
    compile(stub, "stub", "exec")


@pytest.mark.parametrize("src", [
    "def f():\n    # BEGIN SOLUTION\n    return 1\n",
    "def f():\n    return 1\n    # END SOLUTION\n",
])
def test_unbalanced_markers_are_errors(src):
    with pytest.raises(release.ReleaseError):
        release.strip_solutions(src)


def test_committed_release_is_up_to_date():
    proc = run_cli("release", "--check")
    assert proc.returncode == 0, proc.stderr


def test_release_check_notices_a_stale_release(a1, tmp_path):
    copy = tmp_path / "course"
    for part in ("reference", "tests", "assignments"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    stub = copy / "assignments" / a1.name / a1.module_file
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "release", "--check"],
                          cwd=copy, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                          "GRADER_ROOT": str(copy)})
    assert proc.returncode == 1 and a1.module_file in proc.stderr


def _student_pytest(folder):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                          cwd=folder, capture_output=True, text=True, timeout=300)


def test_public_tests_fail_on_the_stub_with_not_implemented(all_assignments, tmp_path):
    for a in all_assignments:
        folder = tmp_path / a.name
        shutil.copytree(a.release_dir, folder)
        proc = _student_pytest(folder)
        assert proc.returncode == 1, proc.stdout
        assert "not implemented yet:" in proc.stdout
        assert "grader/" not in proc.stdout  # no traceback into the engine


def test_public_tests_pass_on_the_reference(all_assignments, tmp_path):
    for a in all_assignments:
        folder = tmp_path / a.name
        shutil.copytree(a.release_dir, folder)
        for f in a.reference_dir.glob("*.py"):
            shutil.copy(f, folder / f.name)
        proc = _student_pytest(folder)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert " passed" in proc.stdout


def test_release_holds_nothing_hidden(all_assignments):
    for a in all_assignments:
        text = "\n".join(p.read_text() for p in a.release_dir.rglob("*") if p.is_file())
        for hidden in a.tests_dir.glob("test_*.py"):
            if hidden.name == release.PUBLIC_TESTS:
                continue
            for line in hidden.read_text().splitlines():
                if line.startswith("def test_"):  # the whole name: a public test may extend it
                    assert line.split("(")[0] + "(" not in text, f"{hidden.name}: {line}"
        ref = (a.reference_dir / a.module_file).read_text()
        inside, body, outside = False, [], []
        for line in ref.splitlines():
            if "# END SOLUTION" in line:
                inside = False
            if inside and line.strip() and not line.strip().startswith("#"):
                body.append(line.strip())
            elif not inside:
                outside.append(line)
            if "# BEGIN SOLUTION" in line:
                inside = True
        public = "\n".join(outside)  # the task text may quote a line of the solution
        leaked = [b for b in body if len(b) > 25 and b in text and b not in public]
        assert not leaked
        assert "BEGIN SOLUTION" not in text


def test_release_zip_works_in_a_fresh_venv_and_holds_nothing_hidden(a1, tmp_path):
    """Unzip as a student would, install the requirements in a new venv, run pytest."""
    import zipfile

    proc = run_cli("release", "a1", "--zip", "--zip-dir", str(tmp_path / "dist"))
    assert proc.returncode == 0, proc.stderr
    archive = tmp_path / "dist" / f"{a1.name}.zip"
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        text = "\n".join(z.read(n).decode() for n in names)
        z.extractall(tmp_path / "student")
    assert not [n for n in names if "reference" in n or "mutants" in n or "test_perceptron" in n]
    assert "BEGIN SOLUTION" not in text and "def test_rosenblatt" not in text
    folder = tmp_path / "student" / a1.name
    venv = tmp_path / "venv"
    subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r",
                          "requirements.txt"], cwd=folder, capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    run = [str(venv / "bin" / "python"), "-m", "pytest", "-q"]
    stub = subprocess.run(run, cwd=folder, capture_output=True, text=True, timeout=300)
    assert stub.returncode == 1 and "not implemented yet: threshold_unit" in stub.stdout, stub.stdout
    # the notebook runs top to bottom with what requirements.txt installs (ipykernel: nbconvert
    # cannot execute a notebook without a kernel)
    nb = subprocess.run([str(venv / "bin" / "python"), "-m", "nbconvert", "--to", "notebook",
                         "--execute", "--output", "executed", f"{a1.module}.ipynb"], cwd=folder,
                        capture_output=True, text=True, timeout=300)
    assert nb.returncode == 0, nb.stderr[-2000:]
    assert (folder / "executed.ipynb").exists()
    shutil.copy(a1.reference_dir / a1.module_file, folder / a1.module_file)
    ref = subprocess.run(run, cwd=folder, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0 and " passed" in ref.stdout, ref.stdout + ref.stderr
    readme = (folder / "README.md").read_text().splitlines()
    assert "    python -m pip install -r requirements.txt" in readme[:6]
    assert "    python -m pytest" in readme[:7]


def test_public_probes_keep_decorators_comments_and_grouped_imports():
    """A probe the public tests reach keeps its decorator (a context manager is no generator)
    and the comment above a constant; what they do not reach is left out."""
    probes = (
        '"""Probes."""\n\nimport contextlib\nimport numpy as np\n\n'
        "# (N, C): the cases\nCASES = [(1, 2)]\n\n\n"
        "@contextlib.contextmanager\ndef guard():\n    yield\n\n\n"
        "def used(impl):\n    with guard():\n        return impl.f(CASES)\n\n\n"
        "def hidden(impl):\n    return 0\n")
    tests = "import probes\n\ndef test_x(student):\n    student(probes.used)\n"
    out = release.public_probes(probes, tests)
    assert "import contextlib\nimport numpy as np\n" in out
    assert "@contextlib.contextmanager\ndef guard():" in out
    assert "# (N, C): the cases\nCASES" in out
    assert "def hidden" not in out
    ns: dict = {}
    exec(compile(out, "probes.py", "exec"), ns)  # noqa: S102 - our own test source
    with ns["guard"]():
        pass


def test_readme_states_the_limits_of_each_assignment(all_assignments):
    for a in all_assignments:
        readme = (a.release_dir / "README.md").read_text()
        assert f"{a.timeout:g} s for each check" in readme, a.name
        assert f"{a.memory_mb} MB of memory" in readme, a.name
