"""The results writer: Gradescope's results.json, and what is derived from it.

results.json is the one result format (docs/ARCHITECTURE.md); gradebook.csv and the terminal table
are built from a set of them. Only the trusted process calls this module.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).parent / "schema" / "results.schema.json"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet cell starting so is a formula


def code_block(text: str) -> str:
    """A fenced Markdown code block that ``text`` cannot leave, for anything a student controls.

    A fence closes only on a line of at least as many backticks as opened it (CommonMark 4.5), so
    the fence is one backtick longer than the longest run in the text. Inside the block, raw HTML
    and Markdown are shown as text.
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


@dataclass
class TestResult:
    name: str
    max_score: float
    score: float = 0.0
    status: str = "failed"
    output: str = ""
    number: str = ""
    tags: list[str] = field(default_factory=list)
    visibility: str = "visible"
    extra_data: dict[str, Any] = field(default_factory=dict)  # the spec's per-test extra_data

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "number": self.number,
            "score": round(self.score, 4),
            "max_score": self.max_score,
            "status": self.status,
            "output": self.output,
            "output_format": "md",
            "visibility": self.visibility,
        }
        if self.tags:
            out["tags"] = list(self.tags)
        if self.extra_data:
            out["extra_data"] = dict(self.extra_data)
        return out


def build(tests: list[TestResult], execution_time: float, output: str = "",
          extra: dict[str, Any] | None = None,
          leaderboard: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Assemble a results.json document (numbers tests 1, 2, ... in order). ``leaderboard``:
    Gradescope's entries ``{"name", "value", "order": "asc"|"desc"}``, left out when empty."""
    for i, t in enumerate(tests, 1):
        t.number = t.number or str(i)
    doc: dict[str, Any] = {
        "score": round(sum(t.score for t in tests), 4),
        "execution_time": round(max(0.0, execution_time), 3),
        "output": output,
        "output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": extra or {},
        "tests": [t.as_json() for t in tests],
    }
    if leaderboard:
        doc["leaderboard"] = [dict(e) for e in leaderboard]
    return doc


def failure(message: str, max_score: float, extra: dict[str, Any] | None = None,
            execution_time: float = 0.0) -> dict[str, Any]:
    """A results.json for a submission that could not be graded at all: score 0, and why."""
    test = TestResult(name="Submission could be graded", max_score=max_score, output=message)
    return build([test], execution_time, output=message, extra=extra)


def max_score(results: dict[str, Any]) -> float:
    return float(sum(t.get("max_score", 0) for t in results.get("tests", [])))


def write(path: Path, results: dict[str, Any]) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def read(path: Path) -> dict[str, Any] | None:
    """Read a results.json, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tests"), list) else None


def status_of(results: dict[str, Any]) -> str:
    extra = results.get("extra_data", {})
    return extra.get("status", "graded")


def write_gradebook(path: Path, rows: list[tuple[str, dict[str, Any]]],
                    students: dict[str, dict[str, str]] | None = None) -> None:
    """One row per submission, one column per test, then total, max and status."""
    test_names: list[str] = []
    for _, res in rows:
        for t in res.get("tests", []):
            if t["name"] not in test_names:
                test_names.append(t["name"])
    people = students or {}
    with_people = bool(people)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        head = ["submission"] + (["student", "email"] if with_people else [])
        w.writerow(_cells(head + test_names + ["total", "max", "status", "isolation"]))
        for name, res in rows:
            scores = {t["name"]: t.get("score", 0) for t in res.get("tests", [])}
            who = people.get(name, {})
            row = [name] + ([who.get("name", ""), who.get("email", "")] if with_people else [])
            row += [scores.get(t, "") for t in test_names]
            extra = res.get("extra_data", {})
            row += [res.get("score", 0), max_score(res), status_of(res),
                    extra.get("isolation", {}).get("level", "")]
            w.writerow(_cells(row))


def _cells(row: list[Any]) -> list[Any]:
    """Text that a spreadsheet would run as a formula gets a leading quote (OWASP's advice for CSV
    injection: names and emails come from students); numbers stay numbers."""
    return [f"'{c}" if isinstance(c, str) and c[:1] in _FORMULA_STARTS else c for c in row]


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table of scores for the terminal."""
    lines = [("submission", "score", "status", "isolation", "failed tests")]
    for name, res in rows:
        failed = [t.get("number", "?") for t in res.get("tests", []) if t.get("status") == "failed"]
        extra = res.get("extra_data", {})
        lines.append((
            name,
            f"{res.get('score', 0):g}/{max_score(res):g}",
            status_of(res),
            extra.get("isolation", {}).get("level", "-"),
            ",".join(failed[:12]) + ("..." if len(failed) > 12 else "") or "-",
        ))
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
