"""Notebooks: turning a student's .ipynb into the module the probes import, and back.

Reading never runs the notebook. From its code cells we keep imports, function and class
definitions and constant assignments (values made only of literals, names and attribute names
such as ``np.pi``, with operators: no calls); IPython magics and shell escapes (`%`, `!`) are
dropped, cells tagged ``skip-grading`` are dropped and cells tagged ``keep`` are kept whole.
Outputs are ignored whatever their size. So a notebook that defines the functions and then trains
for twenty minutes at top level is graded on its definitions without running the loop. What is
kept still runs when the module is imported, in the sandboxed worker only: imports, class
bodies, decorators, default arguments and those constants. A notebook too large or too deeply
nested to read is a NotebookError, never a crash of the grader.

``to_notebook`` builds the student notebook from a module's source (markdown cells for the task
text, code cells for the code, a last cell that runs the public checks).
"""

from __future__ import annotations

import ast
import builtins
import json
from pathlib import Path

from grader import staging

SKIP_TAG = "skip-grading"
KEEP_TAG = "keep"
MAX_NOTEBOOK_BYTES = staging.MAX_FILE_BYTES  # what staging copies at most


class NotebookError(ValueError):
    """The notebook cannot be read; the message is for the student."""


def _is_constant(node: ast.AST) -> bool:
    """Literals, names and attribute names, with operators: no call, so no code of the
    student's (other than an operator of a class it defines) runs to compute the value."""
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.Attribute):
        return _is_constant(node.value)
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_constant(k) for k in node.keys) and all(
            _is_constant(v) for v in node.values)
    return False


def _bound(stmt: ast.stmt) -> set[str]:
    """The names a kept statement defines at the top of the module."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).partition(".")[0] for a in stmt.names}
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    return {n.id for t in targets if t is not None for n in ast.walk(t) if isinstance(n, ast.Name)}


def _keep(stmt: ast.stmt, defined: set[str]) -> bool:
    """Imports, definitions, and constants whose names are all defined by what was kept (a
    constant built from a variable of a dropped cell would fail at import)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef)):
        return True
    value = getattr(stmt, "value", None)
    if value is not None:
        names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        if not names <= defined | set(dir(builtins)):
            return False
    if isinstance(stmt, ast.Assign):
        return all(isinstance(t, (ast.Name, ast.Tuple)) for t in stmt.targets) and _is_constant(
            stmt.value)
    if isinstance(stmt, ast.AnnAssign):
        return isinstance(stmt.target, ast.Name) and (stmt.value is None or _is_constant(stmt.value))
    return False


def _strip_magics(source: str) -> str:
    lines = []
    for line in source.splitlines():
        s = line.lstrip()
        lines.append("" if s.startswith(("%", "!")) else line)
    return "\n".join(lines)


def read_cells(path: Path) -> list[dict]:
    """The code cells of a notebook, validated with nbformat when it is installed. Reads at
    most MAX_NOTEBOOK_BYTES of a regular file (never through a link)."""
    try:
        raw = staging.read_bounded(path, MAX_NOTEBOOK_BYTES).decode("utf-8")
    except staging.StagingError as exc:
        raise NotebookError(f"{exc}, not a readable notebook") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NotebookError(f"{path.name} is not a readable notebook "
                            f"({getattr(exc, 'strerror', None) or exc})") from None
    try:
        data = json.loads(raw)
    except (RecursionError, MemoryError):
        raise NotebookError(f"{path.name} is not a readable notebook (its JSON is nested too "
                            "deeply or is too large)") from None
    except ValueError as exc:
        raise NotebookError(f"{path.name} is not a readable notebook (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError(f"{path.name} is not a notebook: it has no list of cells")
    try:
        import nbformat

        nb = nbformat.reads(raw, as_version=4)
        nbformat.validate(nb)
        cells = nb.cells
    except ImportError:  # pragma: no cover - nbformat is a course dependency
        cells = data["cells"]
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds
        raise NotebookError(f"{path.name} is not a valid notebook: {str(exc)[:300]}") from None
    out = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        tags = cell.get("metadata", {}).get("tags", []) or []
        out.append({"source": str(source), "tags": list(tags)})
    return out


def to_module(path: Path) -> tuple[str, list[str]]:
    """Return (module source, notes for the student about what was left out). ``from
    __future__`` imports are moved to the top, where Python requires them (Jupyter does not)."""
    parts: list[str] = []
    notes: list[str] = []
    future: list[str] = []
    defined: set[str] = set()
    for n, cell in enumerate(read_cells(path), 1):
        if SKIP_TAG in cell["tags"]:
            continue
        try:
            part = _cell(n, cell, notes, defined, future)
        except (RecursionError, MemoryError):  # the parser's and our recursion limits
            raise NotebookError(f"code cell {n} is nested too deeply or is too large to "
                                "read") from None
        if part:
            parts.append(part)
    head = "".join(f"{line}\n" for line in dict.fromkeys(future))
    return head + "\n\n\n".join(parts) + "\n", notes


def _cell(n: int, cell: dict, notes: list[str], defined: set[str], future: list[str]
          ) -> str | None:
    """What is kept of code cell ``n``; what is left out is added to ``notes``, the names it
    defines to ``defined`` and its ``from __future__`` imports to ``future``."""
    source = _strip_magics(cell["source"])
    if not source.strip():
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(f"code cell {n} has a syntax error: {exc.msg} "
                            f"(line {exc.lineno} of the cell)") from None
    lines = source.splitlines()
    futures = [s for s in tree.body if isinstance(s, ast.ImportFrom) and s.module == "__future__"]
    for stmt in futures:
        future.append("\n".join(lines[stmt.lineno - 1:stmt.end_lineno]))
    if KEEP_TAG in cell["tags"]:
        for stmt in tree.body:
            defined |= _bound(stmt) if not isinstance(stmt, ast.Expr) else set()
        for stmt in futures:  # moved to the top of the module
            for i in range(stmt.lineno - 1, stmt.end_lineno):
                lines[i] = ""
        return f"# --- cell {n} (kept whole)\n" + "\n".join(lines)
    kept = []
    for stmt in tree.body:
        if stmt in futures:
            continue
        start = stmt.lineno - 1 - len(getattr(stmt, "decorator_list", []) or [])
        if getattr(stmt, "decorator_list", None):
            start = min(d.lineno for d in stmt.decorator_list) - 1
        chunk = "\n".join(lines[start:stmt.end_lineno])
        if _keep(stmt, defined):
            kept.append(chunk)
            defined |= _bound(stmt)
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            notes.append(f"cell {n}, line {stmt.lineno}: not run by the grader "
                         f"({type(stmt).__name__.lower()} at top level)")
    return f"# --- cell {n}\n" + "\n\n".join(kept) if kept else None


def to_notebook(source: str, module: str, title: str) -> dict:
    """A notebook version of a module: task text as markdown, code as code, a checks cell."""
    tree = ast.parse(source)
    lines = source.splitlines()
    cells: list[dict] = []
    doc = ast.get_docstring(tree) or ""
    cells.append(_md(f"# {title}\n\n{doc}\n\nComplete every function marked *not implemented "
                     f"yet*, run the last cell for the public checks, then submit this notebook "
                     f"(or the module `{module}.py`)."))
    body = [s for s in tree.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    imports = [s for s in body if isinstance(s, (ast.Import, ast.ImportFrom))]
    if imports:
        cells.append(_code("\n".join(ast.get_source_segment(source, s) or "" for s in imports)))
    for stmt in body:
        if stmt in imports:
            continue
        start = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])]) - 1
        chunk = "\n".join(lines[start:stmt.end_lineno])
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            text = ast.get_docstring(stmt) or ""
            cells.append(_md(f"### `{stmt.name}`\n\n{text}"))
        cells.append(_code(chunk))
    cells.append(_md("## Public checks\n\nRuns the public self-checks (the `tests/` folder of "
                     "this release) on the code in this notebook."))
    cells.append(_code(
        "# Runs the public checks on the definitions above; keep this cell last.\n"
        "import sys\n\n"
        "import pytest\n\n"
        f"sys.modules[{module!r}] = sys.modules['__main__']\n"
        "pytest.main(['-q', 'tests'])"
    , tags=[SKIP_TAG]))
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                    "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip() + "\n"}


def _code(text: str, tags: list[str] | None = None) -> dict:
    meta = {"tags": tags} if tags else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [],
            "source": text.rstrip() + "\n"}


def dumps(nb: dict) -> str:
    """Serialise deterministically (stable ids), so `grader release --check` can compare."""
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:03d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
