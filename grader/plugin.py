"""The grading protocol as one pytest plugin.

Markers: ``points(n)``, ``visibility(v)``, ``tags(*t)``, ``public``, ``cuda_only``. Fixtures:
``student`` (runs a probe on the submission: in the sandboxed worker when grading, in this process
for a student's own self-check), ``reference`` (runs a probe on reference/<a> in this trusted
process, cached), ``score`` (partial credit, metrics, the leaderboard), ``device`` (the device a
probe must use) and ``thresholds`` (assignment.toml's ``[devices.<kind>]`` for that device). In
grading mode (``--grader-spec``) the plugin collects every judge's outcome and writes
results.json; failure messages never include judge source or hidden values.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import os
import stat
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from grader import codec, results
from grader.assignments import (
    Assignment,
    cuda_present,
    device_kind,
    find,
    fingerprint,
    parse_device,
)
from grader.checks import GradingFailure
from grader.sandbox import (
    InProcessRunner,
    IsolationUnavailable,
    ProbeOutcome,
    Runner,
    WorkerSpec,
    open_runner,
)
from grader.sandbox.isolation import Limits, hidden_paths, reuse_facts

STDOUT_LIMIT = 3000
PREPARED: dict[str, GradingSession] = {}  # spec path -> its session, sandbox booting (prepare)
_SESSION = pytest.StashKey["GradingSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--grader-spec", default=None, help="grading spec (JSON) written by `grader`")
    parser.addini("grader_module", "self-check: the student's module name", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points this judge is worth")
    config.addinivalue_line("markers", "visibility(v): hidden, after_due_date, after_published, visible")
    config.addinivalue_line("markers", "tags(*names): Gradescope tags")
    config.addinivalue_line("markers", "public: shipped to students as a self-check")
    config.addinivalue_line("markers", "cuda_only: needs a CUDA device; skipped without one, "
                            "and then it counts for nothing (max_score 0)")
    spec_path = config.getoption("--grader-spec")
    if spec_path:
        if spec_path not in PREPARED:  # grading.main prepares it before pytest starts
            prepare(spec_path)
        config.stash[_SESSION] = PREPARED.pop(spec_path)
    else:
        config.stash[_SESSION] = GradingSession.for_selfcheck(
            config.rootpath, config.getini("grader_module"))


@dataclass
class Record:
    judge: str
    name: str
    points: float
    visibility: str
    tags: list[str]
    public: bool
    outcome: str = "failed"
    message: str = ""
    fraction: float | None = None
    stdout: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: list[Any] = field(default_factory=list)  # grader.figures.Figure, shown beside it
    extra: dict[str, Any] = field(default_factory=dict)  # the test's extra_data: device, metrics
    skipped: str = ""  # why a cuda_only judge did not run (it then counts for nothing)


class GradingSession:
    """State of one pytest session: the runners, the reference cache, the judges' records."""

    def __init__(self, mode: str, student_dir: Path, module: str,
                 assignment: Assignment | None = None, spec: dict | None = None):
        self.mode, self.student_dir, self.module = mode, student_dir, module
        self.assignment, self.spec = assignment, spec or {}
        self.records: dict[str, Record] = {}
        self.selfcheck_notes: list[str] = []
        self._student: Runner | None = None
        self._reference: Runner | None = None
        self.isolation: dict[str, Any] = {"level": "inprocess"}
        self.started = time.monotonic()
        self.collect_errors: list[str] = []
        self.integrity: list[str] = []
        self.leaderboard: dict[str, dict[str, Any]] = {}  # name -> Gradescope's entry
        self._device: str | None = None
        self.answers: dict[bytes, ProbeOutcome] = {}  # the submission's answers (student_call)

    # -- devices --------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The device in force: the spec's (``cpu`` or ``cuda:N``, the grader's numbering); in
        a student's self-check $GRADER_DEVICE, else ``cuda:0`` when torch here sees a GPU (only
        asked when a judge needs the device, and only where an NVIDIA GPU is present)."""
        if self._device is None:
            if self.mode == "grading":
                self._device = str(self.spec.get("device") or "cpu")
            else:
                self._device = parse_device(os.environ.get("GRADER_DEVICE") or "auto")
                if self._device == "auto":
                    self._device = _local_device()
                elif self._device == "cuda":
                    self._device = "cuda:0"
        return self._device

    def probe_device(self) -> str:
        """The device a probe is told to use. A grading worker sees only its own GPU, which is
        therefore ``cuda:0`` in there, whatever N the grader gave it."""
        if self.mode == "grading" and device_kind(self.device) == "cuda":
            return "cuda:0"
        return self.device

    def thresholds(self) -> dict[str, Any]:
        """``[devices.<kind>]`` of assignment.toml for the device in force (a copy)."""
        if self.mode != "grading" or self.assignment is None:
            raise pytest.UsageError("the thresholds fixture is only available to hidden judges")
        return Thresholds(self, device_kind(self.device),
                          self.assignment.devices.get(device_kind(self.device), {}))

    @classmethod
    def for_grading(cls, spec: dict) -> GradingSession:
        a = find(spec["assignment"], Path(spec["root"]))
        s = cls("grading", Path(spec["submission"]), spec.get("module") or a.module, a, spec)
        s.integrity = static_violations(s.student_dir / f"{s.module}.py", a.forbidden_imports)
        return s

    @classmethod
    def for_selfcheck(cls, rootpath: Path, module: str) -> GradingSession:
        return cls("selfcheck", rootpath, module)

    # -- runners --------------------------------------------------------------------------
    def student_runner(self, probes: Any) -> Runner:
        if self._student is None:
            if self.mode == "selfcheck":
                self._student = InProcessRunner(self.student_dir, self.module, probes)
            else:
                try:
                    self._student = self._open_worker()
                except IsolationUnavailable as exc:  # the grader's fault, never the student's
                    self.collect_errors.append(f"no sandbox for student code: {exc}")
                    pytest.fail("The autograder could not start a sandbox for your code; "
                                "this is not your mistake (your instructor has been told).",
                                pytrace=False)
        return self._student

    def student_call(self, probes: Any, probe: str, kwargs: dict) -> ProbeOutcome:
        """Run a probe on the submission. A question answered once (the same probe with the
        same arguments) is not asked again: probes are seeded, so the answer would be the same
        (the reference's cache rests on this too); each judge gets its own copy of it. A probe
        that failed is asked again, in a fresh probe server."""
        key = codec.encode([probe, kwargs])
        kept = self.answers.get(key)
        if kept is not None:
            return replace(kept, value=copy.deepcopy(kept.value))
        out = self.student_runner(probes).call(probe, kwargs)
        if out.ok:
            self.answers[key] = replace(out, value=copy.deepcopy(out.value))
        return out

    def warm_student(self) -> None:
        """Start the sandbox now, without waiting for it (the first judge waits for it)."""
        if self.mode != "grading" or self._student is not None:
            return
        try:
            self._student = self._open_worker()
        except IsolationUnavailable:
            return  # the first judge that needs it fails and says why
        warm = getattr(self._student, "warm", None)
        if warm is not None:
            warm()

    def _open_worker(self) -> Runner:
        a = self.assignment
        assert a is not None
        hide = hidden_paths(a.root / "tests", a.root / "reference", a.root / ".git",
                            *self.spec.get("hide", []))
        limits = Limits(memory_mb=a.memory_mb, cpu_seconds=a.cpu_seconds)
        spec = WorkerSpec(
            submission=self.student_dir, module=self.module, probes_file=a.probes_file,
            data_files=[a.tests_dir / d for d in a.data_files], forbidden=a.forbidden_imports,
            timeout=float(self.spec.get("timeout") or a.timeout), limits=limits, hide=hide,
            device=self.device, preload=a.preload,
        )
        device_timeout = a.devices.get(device_kind(self.device), {}).get("timeout")
        if device_timeout and not self.spec.get("timeout"):  # --timeout still wins
            spec.timeout = float(device_timeout)
        facts = self.spec.get("isolation_facts")
        if facts and facts.get("python") == spec.python:
            reuse_facts(facts)
        runner, self.isolation = open_runner(spec, self.spec.get("isolation", "auto"),
                                             slot=int(self.spec.get("slot", 0)))
        return runner

    def reference_call(self, probes: Any, probe: str, kwargs: dict) -> ProbeOutcome:
        if self.mode != "grading" or self.assignment is None:
            raise pytest.UsageError("the reference fixture is only available to hidden judges")
        key = self._cache_key(probe, kwargs)
        cache_dir = self.spec.get("cache")
        path = Path(cache_dir) / f"{key}.json" if cache_dir else None
        if path is not None and path.exists():
            return ProbeOutcome(True, value=codec.decode(path.read_bytes()))
        if self._reference is None:
            a = self.assignment
            self._reference = InProcessRunner(a.reference_dir, a.module, probes,
                                              alias=f"_reference_{a.module}")
        outcome = self._reference.call(probe, kwargs)
        if outcome.ok and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{time.monotonic_ns()}.tmp")
            tmp.write_bytes(codec.encode(outcome.value))
            tmp.replace(path)
        return outcome

    def _cache_key(self, probe: str, kwargs: dict) -> str:
        a = self.assignment
        assert a is not None
        sources = fingerprint([a.probes_file, a.reference_dir])
        return hashlib.sha256(sources.encode() + codec.encode([probe, kwargs])).hexdigest()[:32]

    def close(self) -> None:
        if self._student is not None:
            self._student.close()

    # -- results --------------------------------------------------------------------------
    def results(self) -> dict[str, Any]:
        tests: list[results.TestResult] = []
        judges: dict[str, list[str]] = {}
        figs: dict[str, list[dict[str, str]]] = {}  # test number -> its figures
        shown = 0
        for n, rec in enumerate(self.records.values(), 1):
            judges.setdefault(rec.judge, []).append(str(n))
            if rec.outcome == "skipped":  # a cuda_only judge without CUDA: worth nothing here
                tests.append(results.TestResult(
                    name=rec.name, max_score=0, score=0, status="passed",
                    output=f"Skipped: {rec.skipped}. It counts for nothing in this grading "
                    f"(0 of 0 points; it is worth {rec.points:g} on a GPU).", tags=rec.tags,
                    visibility=rec.visibility,
                    extra_data={"skipped": rec.skipped, "points_on_cuda": rec.points}))
                continue
            passed = rec.outcome == "passed"
            frac = rec.fraction if rec.fraction is not None else (1.0 if passed else 0.0)
            # messages quote the student's exceptions and values, so they are fenced too
            said = "\n".join([rec.message, *rec.notes]).strip()
            out = results.code_block(said) if said else ""
            printed = "".join(rec.stdout).strip()
            if printed:
                out += "\n\nYour code printed:\n\n" + results.code_block(printed[:STDOUT_LIMIT])
            if rec.figures:  # named figures/NN-slug.png, written by pytest_sessionfinish
                from grader import figures  # lazily: self-check zips ship without it

                shown = figures.number(rec.figures, shown)
                figs[str(n)] = [{"title": f.title, "file": f.file} for f in rec.figures]
                out += "".join(f"\n\nFigure: {f.title} ({f.file})" for f in rec.figures)
            tests.append(results.TestResult(
                name=rec.name, max_score=rec.points, score=rec.points * frac,
                status="passed" if passed else "failed", output=out.strip(),
                tags=rec.tags, visibility=rec.visibility, extra_data=rec.extra))
        output = self.spec.get("extra", {}).get("notice", "")
        if self.integrity:
            for t in tests:
                t.score = 0.0
            tests.append(results.TestResult(
                name="Integrity: only the allowed modules are imported", max_score=0,
                output=results.code_block("\n".join(self.integrity)) + "\n\nAll points are "
                "withheld until the submission follows the assignment's import rules."))
            output += "\n\nIntegrity check failed:\n\n" + results.code_block("\n".join(self.integrity))
        if self.collect_errors:
            output += "\n\nThe autograder itself failed (tell your instructor):\n\n" + (
                results.code_block("\n".join(self.collect_errors)))
        extra = {
            "assignment": self.assignment.name if self.assignment else "",
            "graded_file": f"{self.module}.py",
            "isolation": self.isolation,
            "status": "error" if self.collect_errors else "graded",
            "judges": judges,
            "device": self.device if self.mode == "grading" else "",
        }
        if self.spec.get("device_name"):
            extra["device_name"] = self.spec["device_name"]
        if figs:
            extra["figures"] = figs
        extra.update(self.spec.get("extra", {}))
        board = [] if self.integrity else list(self.leaderboard.values())  # no rank for a cheat
        return results.build(tests, time.monotonic() - self.started, output.strip(), extra,
                             leaderboard=board)


def prepare(spec_path: str) -> None:
    """Open the grading session of a spec and start its sandbox booting, before pytest starts
    (the grading process's first step: the worker then boots while pytest configures itself
    and collects the judges); pytest_configure takes the session."""
    PREPARED[spec_path] = GradingSession.for_grading(json.loads(Path(spec_path).read_text()))
    PREPARED[spec_path].warm_student()


def static_violations(path: Path, forbidden: list[str]) -> list[str]:
    """Forbidden imports found in the source without running it (import, __import__, importlib).

    ``path`` is the staged copy (a regular file within staging's caps); it is still read with
    O_NOFOLLOW and a byte bound, and a module too deeply nested to parse is reported here (the
    worker cannot import it either), so the trusted process never reads unboundedly or crashes."""
    if not forbidden:
        return []
    limit = 32 << 20  # grader.staging.MAX_FILE_BYTES (this module ships without staging.py)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        source = f.read(limit + 1)
    try:
        if len(source) > limit:
            raise MemoryError
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    except (RecursionError, MemoryError):
        return [f"{path.name} is too large or too deeply nested to check its imports"]
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        for n in names:
            if n.partition(".")[0] in forbidden:
                found.append(f"line {node.lineno}: '{n}' is not allowed in this assignment "
                             f"(forbidden: {', '.join(forbidden)})")
    return found


def _session(config: pytest.Config) -> GradingSession:
    return config.stash[_SESSION]


def _marker_arg(item: pytest.Item, name: str, default: Any) -> Any:
    m = item.get_closest_marker(name)
    return m.args[0] if m and m.args else default


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    s = _session(config)
    only = s.spec.get("judges") if s.mode == "grading" else None
    if only is not None:  # a mutant is graded on the judges it names, nothing else
        dropped = [it for it in items if getattr(it, "originalname", it.name) not in only]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [it for it in items if it not in dropped]
    items.sort(key=lambda it: it.get_closest_marker("public") is None)  # public checks first
    for item in items:
        doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
        first = " ".join(doc.strip().split("\n\n")[0].split()) if doc.strip() else item.name
        callspec = getattr(item, "callspec", None)
        if callspec is not None and doc.strip():
            first += f" [{callspec.id}]"
        tags = item.get_closest_marker("tags")
        s.records[item.nodeid] = Record(
            judge=getattr(item, "originalname", item.name), name=first, points=float(_marker_arg(item, "points", 0)),
            visibility=_marker_arg(item, "visibility", "visible"),
            tags=list(tags.args) if tags else [],
            public=item.get_closest_marker("public") is not None)
        if item.get_closest_marker("cuda_only") and device_kind(s.device) != "cuda":
            why = f"it needs a CUDA device and this grading runs on {s.device}"
            s.records[item.nodeid].skipped = why
            item.add_marker(pytest.mark.skip(reason=why))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _collect_errors.append(f"{report.nodeid}: {str(report.longrepr)[-1500:]}")


_collect_errors: list[str] = []


def _short_message(excinfo: pytest.ExceptionInfo, visible: bool) -> str:
    exc = excinfo.value
    if isinstance(exc, (GradingFailure, pytest.fail.Exception)):
        return str(exc)
    if isinstance(exc, AssertionError):
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"check failed: {first}" if visible and first else "a check on your result failed"
    if isinstance(exc, pytest.skip.Exception):
        return str(exc)
    return (f"the grader could not check your result ({type(exc).__name__}: "
            f"{str(exc)[:300]}); check the type and shape of what you return")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    s = _session(item.config)
    rec = s.records.get(item.nodeid)
    if rec is None:
        return
    if rec.skipped and report.skipped:  # cuda_only without CUDA: counts for nothing
        rec.outcome = "skipped"
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        rec.outcome = "passed" if report.passed else "failed"
        if call.excinfo is not None and not report.passed:
            rec.message = _short_message(call.excinfo, rec.visibility == "visible")
            report.longrepr = rec.message  # no judge source, no hidden values


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    s = _session(session.config)
    s.close()
    s.collect_errors.extend(_collect_errors)
    out = s.spec.get("results")
    if s.mode == "grading" and out and exitstatus != pytest.ExitCode.INTERRUPTED:
        res = s.results()  # numbers the figures: write them (or clear stale ones) first
        from grader import figures

        try:
            figures.write(Path(out).parent, [f for r in s.records.values() for f in r.figures])
        except OSError as exc:  # the grader's trouble: the grades are still written
            s.collect_errors.append(f"the figures could not be written: {exc.strerror or exc}")
            for r in s.records.values():
                r.figures.clear()
            res = s.results()
        results.write(Path(out), res)


class ProbeCaller:
    """What a judge's ``student``/``reference`` fixture is: call it with a probe and arguments."""

    def __init__(self, session: GradingSession, record: Record | None, side: str):
        self.session, self.record, self.side = session, record, side

    def outcome(self, probe: Any, **kwargs: Any) -> ProbeOutcome:
        """Run the probe and return the whole outcome (for judges that expect an error)."""
        probes = sys.modules[probe.__module__]
        if self.side == "reference":
            return self.session.reference_call(probes, probe.__name__, kwargs)
        out = self.session.student_call(probes, probe.__name__, kwargs)
        if out.stdout and self.record is not None:
            self.record.stdout.append(out.stdout)
        if self.record is not None and "device" in self.record.extra:  # a test on a device
            spent = self.record.extra.get("probe_seconds", 0.0) + out.seconds
            self.record.extra["probe_seconds"] = round(spent, 3)
        return out

    def __call__(self, probe: Any, **kwargs: Any) -> Any:
        out = self.outcome(probe, **kwargs)
        if out.ok:
            return out.value
        if self.side == "reference":
            raise RuntimeError(f"the reference failed on {probe.__name__}: {out.explain()}")
        pytest.fail(out.explain(), pytrace=False)


@pytest.fixture
def student(request: pytest.FixtureRequest) -> ProbeCaller:
    s = _session(request.config)
    return ProbeCaller(s, s.records.get(request.node.nodeid), "student")


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> ProbeCaller:
    s = _session(request.config)
    if request.node.get_closest_marker("public"):
        raise pytest.UsageError(f"{request.node.nodeid}: public judges must not use `reference`")
    return ProbeCaller(s, None, "reference")


class Score:
    """Partial credit (``score.fraction(0.5)`` before the judge passes or fails), notes,
    figures, metrics (``metric``, ``trained``) and the leaderboard (``leaderboard``)."""

    def __init__(self, record: Record | None, session: GradingSession | None = None):
        self.record, self.session = record, session

    def fraction(self, value: float) -> None:
        if self.record is not None:
            self.record.fraction = max(0.0, min(1.0, float(value)))

    def metric(self, name: str, value: float, unit: str = "") -> None:
        """Record a measured value (a test accuracy, a loss) in this test's ``extra_data``
        (``metrics: {name: {value, unit}}``). A value that is not a finite number is kept as
        text: NaN and infinities are not JSON."""
        if self.record is not None:
            entry: dict[str, Any] = {"value": _number(value)}
            if unit:
                entry["unit"] = str(unit)
            self.record.extra.setdefault("metrics", {})[str(name)] = entry

    def trained(self, seconds: float, device_name: str = "") -> None:
        """Record a training run in this test's ``extra_data``: its seconds as the probe
        measured them in the worker (``train_seconds``) and the name of the device it ran on as
        the worker reported it (``device_name``, e.g. ``torch.cuda.get_device_name()``; by
        default the name the grader knows). The ``device`` fixture records the device itself."""
        if self.record is not None:
            self.record.extra["train_seconds"] = _number(seconds)
            if device_name:
                self.record.extra["device_name"] = str(device_name)[:100]

    def leaderboard(self, name: str, value: float | str, order: str = "desc") -> None:
        """Publish to results.json's ``leaderboard`` (Gradescope's spec: name, value, order;
        ``desc`` ranks the largest first (an accuracy), ``asc`` the smallest (seconds)). One
        entry per name, the last published wins; a number that is not finite is left off, and
        the whole leaderboard is left off when the integrity check fails."""
        if order not in ("asc", "desc"):
            raise ValueError(f"leaderboard order must be 'asc' or 'desc', not {order!r}")
        if self.session is None:
            return
        v = str(value)[:100] if isinstance(value, str) else _number(value)
        if isinstance(v, str) and not isinstance(value, str):
            return
        self.session.leaderboard[str(name)] = {"name": str(name), "value": v, "order": order}

    def note(self, text: str) -> None:
        """Add a line to the test's output (figures for the student; never hidden values). In a
        student's self-check it is printed at the end of the run instead."""
        if self.session is not None and self.session.mode == "selfcheck":
            self.session.selfcheck_notes.append(text)
        elif self.record is not None:
            self.record.notes.append(text)

    def figure(self, title: str, png: Any, *, required: bool = False) -> bool:
        """Show a PNG a probe rendered in the worker beside this test (grader/figures.py).

        Returns whether it is shown. Bytes that are not a PNG within the bounds came through the
        student's code: the test's output says why, and with ``required`` the test fails."""
        from grader import figures  # lazily: self-check zips ship without it

        if self.record is None:
            return False
        kept = [f for r in (self.session.records.values() if self.session else [self.record])
                for f in r.figures]
        try:
            fig = figures.accept(title, png, len(self.record.figures), len(kept),
                                 sum(len(f.png) for f in kept))
        except figures.FigureError as exc:
            why = f"Figure '{figures.clean_title(title)}' cannot be shown: {exc}"
            if required:
                pytest.fail(why, pytrace=False)
            self.record.notes.append(why)
            return False
        self.record.figures.append(fig)
        return True


@pytest.fixture
def score(request: pytest.FixtureRequest) -> Score:
    s = _session(request.config)
    return Score(s.records.get(request.node.nodeid), s)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """A self-check's notes (a timing table, say), printed after the results."""
    s = config.stash.get(_SESSION, None)
    if s is not None and s.selfcheck_notes:
        terminalreporter.section("notes from the self-checks")
        for text in s.selfcheck_notes:
            terminalreporter.write_line(text)


def _number(value: Any) -> float | str:
    """A finite float for results.json, else the value as text (NaN and infinities are not
    JSON, and a value may come from the student's side)."""
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return str(value)[:100]
    return f if math.isfinite(f) else str(f)


class Thresholds(dict):
    """``[devices.<kind>]`` of assignment.toml for the device in force. A key it lacks is the
    course's mistake: the grading is marked as the grader's error, never the student's."""

    def __init__(self, session: GradingSession, kind: str, values: dict[str, Any]):
        super().__init__(values)
        self.session, self.kind = session, kind

    def __missing__(self, key: str) -> Any:
        self.session.collect_errors.append(f"assignment.toml has no devices.{self.kind}.{key}")
        pytest.fail("The autograder lacks a setting for this test on this device; this is not "
                    "your mistake (your instructor has been told).", pytrace=False)


def _local_device() -> str:
    """A student's own run: ``cuda:0`` when an NVIDIA GPU is here and torch can use it."""
    if not cuda_present():
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda:0" if torch.cuda.is_available() else "cpu"


@pytest.fixture
def device(request: pytest.FixtureRequest) -> str:
    """The device the probe must use (``cpu`` or ``cuda:0``): pass it on as a keyword,
    ``student(probes.train, seed=0, device=device)``. The test's extra_data records it."""
    s = _session(request.config)
    rec = s.records.get(request.node.nodeid)
    if rec is not None:
        rec.extra["device"] = s.device
        if s.spec.get("device_name"):
            rec.extra["device_name"] = s.spec["device_name"]
    return s.probe_device()


@pytest.fixture
def thresholds(request: pytest.FixtureRequest) -> dict[str, Any]:
    """assignment.toml's ``[devices.cpu]`` or ``[devices.cuda]``, for the device in force."""
    return _session(request.config).thresholds()
