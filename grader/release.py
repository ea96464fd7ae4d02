"""The student release: reference/<a> + tests/<a> -> assignments/<a>.

Code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` becomes
``raise NotImplementedError("not implemented yet: <function>")``, or the lines of the block that
start with ``# STUB:`` (uncommented) when the author wrote some. The public judges (test_public.py,
every test marked public) are copied with just the probes they use, and a README lists the tasks.
Nothing else from tests/ or reference/ is written.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from grader import notebook
from grader.assignments import Assignment

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
STUB = re.compile(r"^\s*# STUB: ?(.*)$")
PUBLIC_TESTS = "test_public.py"


class ReleaseError(ValueError):
    pass


def _enclosing_functions(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function, outermost first."""
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def strip_solutions(source: str, filename: str = "<reference>") -> tuple[str, list[str]]:
    """Return (stub source, names of the functions to implement)."""
    spans = _enclosing_functions(ast.parse(source, filename))
    out: list[str] = []
    tasks: list[str] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if not m:
            if END.match(lines[i]):
                raise ReleaseError(f"{filename}:{i + 1}: END SOLUTION without BEGIN")
            out.append(lines[i])
            i += 1
            continue
        indent, start = m.group(1), i
        stubs = []
        i += 1
        while i < len(lines) and not END.match(lines[i]):
            if BEGIN.match(lines[i]):
                raise ReleaseError(f"{filename}:{i + 1}: nested BEGIN SOLUTION")
            s = STUB.match(lines[i])
            if s:
                stubs.append(indent + s.group(1))
            i += 1
        if i == len(lines):
            raise ReleaseError(f"{filename}:{start + 1}: BEGIN SOLUTION without END")
        inside = [name for a, b, name in spans if a <= start + 1 <= b]
        name = inside[-1] if inside else "this part"
        if name not in tasks:
            tasks.append(name)
        out.extend(stubs or [f'{indent}raise NotImplementedError("not implemented yet: {name}")'])
        i += 1
    return "\n".join(out) + "\n", tasks


def public_probes(probes_source: str, tests_source: str) -> str:
    """The part of probes.py the public tests need: imports, and the definitions they reach."""
    probes = ast.parse(probes_source)
    tests = ast.parse(tests_source)
    wanted = {n.attr for n in ast.walk(tests)
              if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
              and n.value.id == "probes"}
    defs: dict[str, ast.stmt] = {}
    for node in probes.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = node
    todo, keep = list(wanted), set()
    while todo:
        name = todo.pop()
        if name in keep or name not in defs:
            continue
        keep.add(name)
        todo.extend(n.id for n in ast.walk(defs[name]) if isinstance(n, ast.Name))
    lines = probes_source.splitlines()
    out: list[str] = []
    was_import = False
    for node in probes.body:
        is_doc = (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and node is probes.body[0])
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        named = {k for k, v in defs.items() if v is node}
        if not (is_doc or is_import or named & keep):
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while start > 1 and lines[start - 2].lstrip().startswith("#"):  # its comment lines
            start -= 1
        text = "\n".join(lines[start - 1:node.end_lineno])
        sep = "\n" if is_import and was_import else "\n\n\n"
        out.append(text if not out else sep + text)
        was_import = is_import
    return "".join(out) + "\n"


def _readme(a: Assignment, module_doc: str, tasks: list[str], stub_source: str,
            public_names: list[str]) -> str:
    tree = ast.parse(stub_source)
    docs: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef):
                    doc = ast.get_docstring(sub) or ""
                    if sub.name == "__init__" and not doc:  # the class says what it builds
                        doc = ast.get_docstring(node) or ""
                    docs[f"{node.name}.{sub.name}"] = (ast.unparse(sub.args), doc)
        elif isinstance(node, ast.FunctionDef) and node.name not in docs:
            docs.setdefault(node.name, (ast.unparse(node.args), ast.get_docstring(node) or ""))
    parts = [f"# {a.name}: {a.title}", "",
             "Set up once, then self-check as often as you like (from this folder, in a fresh venv):",
             "", "    python -m pip install -r requirements.txt", "    python -m pytest", "",
             f"Work in `{a.module_file}`, or in the notebook `{a.module}.ipynb` (Jupyter or VS Code; "
             f"`python -m nbconvert --to notebook --execute {a.module}.ipynb` runs it top to bottom, "
             "and its last cell runs the self-checks).", "",
             module_doc.strip(), "",
             f"Implement the functions below in `{a.module_file}` (their docstrings say exactly what "
             "each must do), then check your work and submit.", "", "## Tasks", ""]
    for n, name in enumerate(tasks, 1):
        args, doc = docs.get(name, ("", ""))
        parts += [f"### {n}. `{name}({args})`", "", doc.strip(), ""]
    parts += [
        "## Check your work", "",
        "From this folder run `pytest`. The public self-checks run your code directly, so",
        "`pytest --pdb` drops you into a debugger at the first failure. A task you have not",
        "started fails with `not implemented yet: <function>`.", "",
        "Public checks: " + ", ".join(f"`{p}`" for p in public_names) + ".", "",
        "The public checks are a subset of the grading: hidden tests also compare your results",
        "with the reference solution on other inputs. Passing every public check is necessary,",
        "not sufficient.", "",
        "## Limits", "",
        f"Your code is graded under these limits: {a.timeout:g} s for each check, "
        f"{a.total_timeout:g} s for the whole grading, {a.memory_mb} MB of memory for your code "
        "and the checks that run it, beyond what Python and the preloaded libraries take (the "
        "same on every machine: locally, in Docker and on Gradescope), and no network. A check "
        "that runs past its time or memory fails and says which limit it reached.", "",
        "## Submit", "",
        f"Upload `{a.module_file}` (or your notebook). "
        + ("Use numpy only" if "torch" in a.forbidden_imports else "Use numpy and torch")
        + (f"; these modules are not allowed: {', '.join(a.forbidden_imports)}."
           if a.forbidden_imports else "."),
        "",
    ]
    return "\n".join(parts)


def render(a: Assignment) -> dict[str, str]:
    """Every file of the release, by path relative to assignments/<a>/."""
    files: dict[str, str] = {}
    tasks: list[str] = []
    module_doc = ""
    for ref in sorted(a.reference_dir.glob("*.py")):
        source = ref.read_text()
        stub, found = strip_solutions(source, str(ref))
        files[ref.name] = stub
        tasks += found
        if ref.name == a.module_file:
            module_doc = ast.get_docstring(ast.parse(source)) or ""
    public = a.tests_dir / PUBLIC_TESTS
    public_names: list[str] = []
    if public.exists():
        tests_src = public.read_text()
        files[f"tests/{PUBLIC_TESTS}"] = tests_src
        files["tests/probes.py"] = public_probes(a.probes_file.read_text(), tests_src)
        public_names = [n.name for n in ast.parse(tests_src).body
                        if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    files["pytest.ini"] = (
        "[pytest]\n# Self-check: runs the public tests on your own code, in this process.\n"
        "addopts = -p no:cacheprovider\ntestpaths = tests\n"
        f"grader_module = {a.module}\n"
    )
    files["conftest.py"] = (
        '"""Loads the grading plugin for the public self-checks (in this process: pytest --pdb '
        'works)."""\n\npytest_plugins = ["grader.plugin"]\n'
    )
    if a.module_file in files:
        nb = notebook.to_notebook(files[a.module_file], a.module, f"{a.name}: {a.title}")
        files[f"{a.module}.ipynb"] = notebook.dumps(nb)
    files["requirements.txt"] = "\n".join(  # the kernel and nbconvert run the notebook as is
        ["numpy>=1.24", "pytest>=7.4", "ipykernel>=6.0", "nbconvert>=7.0", *a.requirements]) + "\n"
    files["README.md"] = _readme(a, module_doc, tasks, files.get(a.module_file, ""), public_names)
    return files


ENGINE_FILES = ["__init__.py", "plugin.py", "checks.py", "codec.py", "results.py", "figures.py",
                "assignments.py", "sandbox/__init__.py", "sandbox/runner.py",
                "sandbox/worker.py", "sandbox/isolation.py", "sandbox/bwrap.py",
                "sandbox/cgroup.py", "schema/results.schema.json"]


def write_zip(a: Assignment, out_dir: Path) -> Path:
    """A self-contained zip for students: the release plus the engine files the checks need."""
    import zipfile

    engine = Path(__file__).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{a.name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for rel, text in sorted(render(a).items()):
            z.writestr(f"{a.name}/{rel}", text)
        for rel in ENGINE_FILES:
            z.write(engine / rel, f"{a.name}/grader/{rel}")
    return path


def write(a: Assignment) -> list[Path]:
    written = []
    for rel, text in render(a).items():
        path = a.release_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def check(a: Assignment) -> list[str]:
    """Paths whose committed content differs from what the sources generate."""
    stale = []
    for rel, text in render(a).items():
        path = a.release_dir / rel
        if not path.exists() or path.read_text() != text:
            stale.append(rel)
    return stale
