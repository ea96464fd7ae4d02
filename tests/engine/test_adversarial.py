"""The adversarial submission suite: every known way to cheat or crash an autograder.

Each case is a submission for a1_perceptron: the reference or the stub with an attack planted in
one function (threshold_unit unless said otherwise) or at import time. All cases are graded in one
batch through the real CLI at the strongest isolation level this machine allows. Every case ends
with: the batch went on, results.json is written and valid, the score is what the honest part of
the submission earns (no points gained by the attack), and the output says what happened.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, left_by_sandbox_uids, read_results, run_cli

from grader import results
from grader.sandbox import isolation

ISOLATED = isolation.why_not_isolated() is None
SECRET = "sekrit-token-3141"


@dataclass
class Case:
    name: str
    code: str
    score: tuple[float, float]  # the range the submission must score in
    needle: str | None = None  # must appear in some test's output
    base: str = "reference"  # or "stub"
    where: str = "threshold_unit"  # a function name, or "import"
    needs_isolation: bool = False
    files: dict[str, str] | None = None
    needs_private_tmp: bool = False  # runs wherever the report says `temp_dir: private`
    needs_allowlist: bool = False  # runs wherever the report names the bubblewrap view
    never: str | None = None  # must appear in no test's output


CASES = [
    Case("os_exit_in_function", "import os; os._exit(0)", (90, 90), "exited with status 0"),
    Case("sys_exit_in_function", "import sys; sys.exit(3)", (90, 90), "sys.exit(3)"),
    Case("os_exit_at_import", "import os; os._exit(0)", (0, 0), "exited with status 0",
         where="import"),
    Case("sys_exit_at_import", "raise SystemExit(0)", (0, 0), "sys.exit", where="import"),
    Case("keyboard_interrupt", "raise KeyboardInterrupt", (90, 90), "KeyboardInterrupt"),
    Case("self_sigkill", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", (90, 90),
         "SIGKILL"),
    Case("busy_loop_ignoring_sigalrm", """
        import signal
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.alarm(1)
        while True:
            pass""", (90, 90), "timed out after 5 s"),
    Case("sleep_forever", "import time; time.sleep(10**6)", (90, 90), "timed out"),
    Case("warning_naming_a_grader_path", "import warnings; warnings.warn('careful: ' + np.__file__)",
         (100, 100), "UserWarning: careful: <python>/", never=sys.prefix),
    Case("getuser_without_a_passwd_entry", "import getpass; assert getpass.getuser()",
         (100, 100)),  # torch 2.11's optimisers call it; the worker's uid has no passwd entry
    Case("sleep_at_import", "import time; time.sleep(10**6)", (0, 0),
         "the tests after the first are not run", where="import"),
    Case("long_numpy_call", "a = np.ones((2500, 2500)); np.linalg.matrix_power(a, 256)",
         (90, 90), "timed out"),
    Case("fork_bomb", """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass""", (90, 90), "timed out", needs_isolation=True),
    Case("thread_bomb", """
        import threading, time
        for _ in range(100000):
            threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()""",
         (90, 90), "thread"),
    Case("memory_bomb", "x = []\nwhile True:\n    x.append(np.ones(2 * 10**8))", (90, 90),
         "ran out of memory"),
    Case("realtime_signal", "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 2)",
         (90, 90), "died"),
    Case("output_flood", "import sys\nfor _ in range(1100):\n    sys.stdout.write('x' * 10**6)",
         (90, 90), "too much output"),
    Case("invalid_utf8_and_nul_output", """
        import sys
        sys.stdout.buffer.write(b'\\xff\\xfe\\x00\\x80' * 50000)
        sys.stdout.flush()""", (100, 100), "Your code printed"),
    Case("huge_file", "open('big.bin', 'wb').write(b'0' * 200_000_000)", (90, 90),
         "file size limit"),
    Case("many_small_files", """
        import os
        os.makedirs('d', exist_ok=True)
        for i in range(100_000):
            open(f'd/{i}', 'w').close()""", (90, 100)),
    Case("tamper_with_results", """
        import os, json, time
        fake = json.dumps({"score": 100, "tests": [{"score": 100, "max_score": 100}]})
        stop = time.monotonic() + 1  # the isolated temp folder is tiny; a shared one need not be
        for top in ["{OUT}", "/tmp", "/autograder/results"]:
            for dirpath, dirs, files in os.walk(top):
                if time.monotonic() > stop:
                    break
                for name in files:
                    if name == "results.json" or name.endswith(".json"):
                        p = os.path.join(dirpath, name)
                        for attack in ("write", "chmod", "delete", "symlink"):
                            try:
                                if attack == "write":
                                    open(p, "w").write(fake)
                                elif attack == "chmod":
                                    os.chmod(p, 0o777)
                                elif attack == "delete":
                                    os.remove(p)
                                else:
                                    os.symlink("/dev/null", p)
                            except OSError:
                                pass""", (10, 10), base="stub",
         # at the subprocess level the worker is the grader's own user: anything the grader can
         # write, it can write (as root: everything), so only the isolated level can defend this
         needs_isolation=True),
    Case("list_the_temp_folders", """
        import os, sys
        seen = []
        for d in ("/tmp", "/dev/shm", "/var/tmp", "/run/lock"):
            try:
                seen += [os.path.join(d, n) for n in os.listdir(d)]
            except OSError:
                pass
        seen = [p for p in seen if not sys.prefix.startswith(p + "/")]  # a venv in /tmp shows
        if seen:
            raise SystemExit("other temp files are visible: " + ", ".join(seen[:20]))""",
         (100, 100), needs_private_tmp=True),
    Case("aa_leave_answers_behind", """
        import ctypes, os
        answer = open(__file__).read()
        for d in ("/dev/shm", "/var/tmp", "/run/lock", "/tmp"):
            try:
                open(os.path.join(d, "answers.py"), "w").write(answer)
            except OSError:
                pass
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        shm = libc.shmget(0x5EC2E7, 1 << 20, 0o1666)
        if shm >= 0:
            addr = libc.shmat(shm, None, 0)
            ctypes.memmove(addr, answer.encode(), len(answer))""", (100, 100), where="import"),
    Case("pick_up_answers", """
        import ctypes, os, time
        found = None
        stop = time.monotonic() + 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        while found is None and time.monotonic() < stop:
            for d in ("/dev/shm", "/var/tmp", "/run/lock", "/tmp"):
                try:
                    found = open(os.path.join(d, "answers.py")).read()
                except OSError:
                    pass
            shm = libc.shmget(0x5EC2E7, 0, 0)
            if found is None and shm >= 0:
                found = ctypes.string_at(libc.shmat(shm, None, 0)).decode()
            time.sleep(0.05)
        if found:
            exec(compile(found, "answers", "exec"), globals())""", (0, 0), base="stub",
         where="import", needs_allowlist=True),
    Case("walk_the_machine_for_the_reference", """
        import os, time
        stop = time.monotonic() + 1.5
        found = None
        for top in ("{COPY}", "/var/tmp", "/work", "/home", "/root", "/srv", "/opt", "/"):
            for dirpath, dirs, files in os.walk(top):
                dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
                if found or time.monotonic() > stop:
                    break
                if "perceptron.py" in files and "a1_perceptron" in dirpath:
                    text = open(os.path.join(dirpath, "perceptron.py")).read()
                    if "BEGIN SOLUTION" in text:
                        found = text
        if found:
            exec(compile(found, "found", "exec"), globals())""", (0, 0), base="stub",
         where="import", needs_allowlist=True),
    Case("undo_the_sandbox", """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x10000000 | 0x00020000) == 0:  # a user and a mount namespace
            print("ESCAPED: made a namespace")
        for path in (b"/", b"/usr", b"/tmp", b"/sandbox/submission"):
            if libc.umount2(path, 2) == 0:
                print("ESCAPED: unmounted", path)""", (10, 10), base="stub",
         never="ESCAPED", needs_allowlist=True),
    Case("forged_reply_frame", """
        import os, struct, sys
        fd = int(sys.argv[2])
        head = b'{"$dict":[["ok",true]]}'
        body = b"[" + b"[]," * 60_000_000 + b"[]]"
        os.write(fd, struct.pack(">Q", len(head)) + head)
        view = memoryview(struct.pack(">Q", len(body)) + body)
        while view:
            view = view[os.write(fd, view):]
        os._exit(0)""", (90, 90), "too many"),
    Case("daemon_outlives_probe", """
        import os, time
        if os.fork() == 0:
            os.setsid()
            time.sleep(8)
            open("{MARKER}", "w").write("still alive")
            os._exit(0)""", (100, 100), needs_isolation=True),
    Case("read_hidden_files", """
        import os
        found = dict(os.environ)
        for p in ["{ROOT}/tests/a1_perceptron/test_perceptron.py",
                  "{ROOT}/reference/a1_perceptron/perceptron.py",
                  "/proc/%d/environ" % os.getppid(), "/proc/%d/cmdline" % os.getppid()]:
            try:
                found[p] = open(p, "rb").read().decode(errors="replace")
            except OSError as e:
                found[p] = "refused: " + type(e).__name__
        print(found)""", (10, 10), base="stub", needs_isolation=True),
    Case("shipped_harness_files", "", (100, 100), files={
        "conftest.py": "def pytest_runtest_makereport(item, call):\n    raise SystemExit(0)\n",
        "pytest.ini": "[pytest]\naddopts = -p no:grader.plugin -x\n",
        "sitecustomize.py": "print('PWNED sitecustomize')\n",
        "json.py": "raise ImportError('shadowed json')\n",
        "numpy.py": "raise ImportError('shadowed numpy')\n",
        "probes.py": "raise ImportError('shadowed probes')\n",
        "test_evil.py": "def test_x():\n    assert False\n",
    }),
    Case("shipped_harness_files_on_stub", "", (0, 0), base="stub", files={
        "conftest.py": "import pytest\n@pytest.hookimpl(tryfirst=True)\n"
                       "def pytest_runtest_makereport(item, call):\n    call.excinfo = None\n",
        "json.py": "def dumps(*a, **k):\n    return '{\"score\": 100}'\n",
    }),
    Case("monkeypatch_at_import", """
        import builtins, sys, types
        import numpy
        numpy.allclose = lambda *a, **k: True
        numpy.array_equal = lambda *a, **k: True
        sys.modules["pytest"] = types.ModuleType("pytest")
        builtins.isinstance = lambda *a: True""", (0, 0), base="stub", where="import"),
    Case("always_equal_object", """
        class AlwaysEqual:
            def __eq__(self, other):
                return True
        return AlwaysEqual()""", (0, 0), "cannot grade a value of type", base="stub"),
    Case("ndarray_subclass_with_fake_eq", """
        class Fake(np.ndarray):
            def __eq__(self, other):
                return np.ones(np.shape(other), dtype=bool)
        return np.zeros(4, dtype=np.int64).view(Fake)""", (90, 90), "entries wrong",
         where="xnor"),
    Case("nan_results", "return np.full(4, np.nan), [float('nan')] * 3000", (85, 85), "NaN",
         where="train_xor"),
    Case("empty_array", "return np.array([])", (90, 90), "wrong shape", where="xnor"),
    Case("bool_instead_of_int", "return bool(np.dot(w, x) >= theta)", (0, 0),
         "must return a Python int", base="stub"),
    Case("repr_and_del_raise", """
        class Nasty:
            def __repr__(self):
                raise RuntimeError("no repr")
            def __del__(self):
                raise RuntimeError("no del")
        return Nasty()""", (0, 0), "cannot grade", base="stub"),
    Case("exception_whose_str_raises", """
        class Weird(Exception):
            def __str__(self):
                raise RuntimeError("no str")
        raise Weird()""", (0, 0), "could not be printed", base="stub"),
    Case("network_access", """
        import socket
        reached = [n for _, n in socket.if_nameindex() if n != "lo"]
        for family, addr in ((socket.AF_INET, ("127.0.0.1", {PORT})),
                             (socket.AF_INET6, ("::1", {PORT6}))):
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(1)
                s.connect(addr)
                reached.append(addr)
            except OSError:
                pass
        if reached:
            print("reached", reached)
            return 1 - int(np.dot(w, x) >= theta)""", (10, 10), base="stub",
         needs_isolation=True),
    Case("fake_passed_lines_and_results", """
        print("PASSED " * 50)
        print('{"score": 100, "max_score": 100, "tests": []}')""", (10, 10), base="stub"),
    Case("forbidden_import_static", "import torch", (0, 0), "not allowed in this assignment",
         where="import"),
    Case("forbidden_import_hidden_from_the_source", """
        import importlib
        importlib.import_module("to" + "rch")""", (90, 90), "not allowed in this assignment"),
    Case("forbidden_import_past_the_finder", """
        import importlib, sys
        sys.meta_path[:] = [f for f in sys.meta_path if "Forbid" not in type(f).__name__]
        importlib.import_module("sk" + "learn")""", (90, 90), "not allowed in this assignment"),
    Case("forbidden_module_loaded_by_path", """
        import importlib.util, os, sys
        folder = None
        for entry in sys.path:
            if os.path.isfile(os.path.join(entry, "sk" + "learn", "__init__.py")):
                folder = os.path.join(entry, "sk" + "learn")
        spec = importlib.util.spec_from_file_location("skl", os.path.join(folder, "__init__.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)""", (90, 90), "not allowed in this assignment"),
    Case("correct_but_noisy_and_a_little_slow", """
        import time
        print("epoch loss 0.123 " * 1000)
        time.sleep(0.05)""", (100, 100)),
]

CORRECT_THRESHOLD = "return int(np.dot(w, x) >= theta)"


def _plant(source: str, case: Case, subs: dict[str, str]) -> str:
    """Put the attack at the top of the module, or first thing after a function's docstring."""
    code = textwrap.dedent(case.code).strip("\n")
    for key, value in subs.items():
        code = code.replace("{" + key + "}", value)
    if case.where == "import":  # after `from __future__ import ...`, which must come first
        head, sep, tail = source.partition("from __future__ import annotations\n")
        return head + sep + code + "\n" + tail
    fn = next(n for n in ast.walk(ast.parse(source))
              if isinstance(n, ast.FunctionDef) and n.name == case.where)
    after = fn.body[0].end_lineno
    planted = textwrap.indent(code, "    ").splitlines()
    if case.base == "stub" and case.where == "threshold_unit" and not code.startswith("return"):
        planted.append("    " + CORRECT_THRESHOLD)
    lines = source.splitlines()
    return "\n".join(lines[:after] + planted + lines[after:]) + "\n"


def _listen(family: int, host: str) -> tuple[socket.socket | None, int]:
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        s.listen(8)
    except OSError:
        return None, 1
    return s, s.getsockname()[1]


def _why_no_ordinary_user() -> str | None:
    """None when this test can re-run the suite as the ordinary user `nobody`."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return "needs root and runuser to act as an ordinary user"
    proc = subprocess.run([shutil.which("runuser"), "-u", "nobody", "--", sys.executable, "-c",
                           "import grader.cli, numpy"], cwd=ROOT, capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    if proc.returncode != 0:
        return f"nobody cannot run {sys.executable} in {ROOT}"
    return None


@pytest.fixture(scope="module", params=["grader", "ordinary-user"])
def batch(a1, request):
    """All cases graded in one batch: as the grader runs here (root in CI: isolated), and again
    as an ordinary user (the subprocess level), when this machine allows both."""
    as_user = request.param == "ordinary-user"
    if as_user and _why_no_ordinary_user():
        pytest.skip(_why_no_ordinary_user())
    tmp = Path(tempfile.mkdtemp(prefix="adversarial-"))
    os.chmod(tmp, 0o777)
    subs_dir, out = tmp / "subs", tmp / "out"
    shared = tmp / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    marker = shared / "daemon-marker"
    srv4, port4 = _listen(socket.AF_INET, "127.0.0.1")
    srv6, port6 = _listen(socket.AF_INET6, "::1")
    stop = threading.Event()

    def accept(srv: socket.socket | None) -> None:
        while srv is not None and not stop.is_set():
            srv.settimeout(0.2)
            try:
                srv.accept()[0].close()
            except OSError:
                pass

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in (srv4, srv6)]
    for t in threads:
        t.start()
    # another copy of the course on this machine, readable by anyone, outside the temp folder
    copy = Path(tempfile.mkdtemp(prefix="dlgrader-copy-", dir="/var/tmp"))
    os.chmod(copy, 0o755)
    shutil.copytree(a1.reference_dir, copy / "reference" / a1.name)
    subs = {"ROOT": str(ROOT), "OUT": str(out), "MARKER": str(marker), "PORT": str(port4),
            "PORT6": str(port6), "COPY": str(copy)}
    reference = (a1.reference_dir / a1.module_file).read_text()
    stub = (a1.release_dir / a1.module_file).read_text()
    for case in CASES:
        folder = subs_dir / case.name
        folder.mkdir(parents=True)
        base = reference if case.base == "reference" else stub
        (folder / a1.module_file).write_text(_plant(base, case, subs) if case.code else base)
        for name, text in (case.files or {}).items():
            (folder / name).write_text(text)
    uid = 65534 if as_user else os.getuid()
    tmpdir = tmp / "tmp"  # the batch's own TMPDIR: other graders on this machine do not count
    tmpdir.mkdir()
    os.chmod(tmpdir, 0o1777)
    jobs = os.path.join(tmpdir, f"grader-jobs-{uid}")

    def job_dirs() -> set[str]:
        return set(os.listdir(jobs)) if os.path.isdir(jobs) else set()

    os.environ["GRADESCOPE_API_TOKEN"] = SECRET
    os.environ["TMPDIR"] = str(tmpdir)
    try:
        start = time.monotonic()
        args = ["grade", "a1", str(subs_dir), "--out", str(out), "--jobs", "2", "--timeout", "5"]
        if as_user:
            proc = subprocess.run(
                [shutil.which("runuser"), "-u", "nobody", "--", sys.executable, "-m", "grader.cli", *args],
                cwd=ROOT, capture_output=True, text=True, timeout=900,
                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "GRADER_ROOT": str(ROOT),
                     "GRADESCOPE_API_TOKEN": SECRET, "TMPDIR": str(tmpdir)})
        else:
            proc = run_cli(*args)
        elapsed = time.monotonic() - start
    finally:
        os.environ.pop("GRADESCOPE_API_TOKEN", None)
        os.environ.pop("TMPDIR", None)
        stop.set()
    time.sleep(max(0.0, 9 - elapsed))  # the daemon would have written its marker by now
    left = {p for p in os.listdir(tmpdir) if p.startswith("grader-sandbox-")} | job_dirs()
    yield out, proc, marker, left, as_user
    shutil.rmtree(copy, ignore_errors=True)
    for s in (srv4, srv6):
        if s is not None:
            s.close()
    shutil.rmtree(tmp, ignore_errors=True)


SCHEMA = json.loads(results.SCHEMA_PATH.read_text())


def test_the_batch_finishes_and_prints_every_case(batch):
    out, proc, _, _, _ = batch
    assert proc.returncode == 0, proc.stderr[-3000:]
    for case in CASES:
        assert case.name in proc.stdout


def test_a_hanging_import_costs_one_timeout_not_one_per_test(batch):
    """a1 has 11 tests and the batch a 5 s timeout: once the import has timed out, the other
    tests fail at once with the same reason (before, the submission took 11 timeouts)."""
    out, _, _, _, _ = batch
    res = read_results(out, "sleep_at_import")
    assert res["execution_time"] < 3 * 5, res["execution_time"]
    assert "importing your module timed out after 5 s" in res["tests"][0]["output"]
    assert all("importing your module timed out" in t["output"] for t in res["tests"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack_gains_nothing_and_is_explained(batch, case):
    out, proc, marker, _, as_user = batch
    isolated = ISOLATED and not as_user
    if case.needs_isolation and not isolated:
        pytest.skip("needs the isolated level: "
                    + ("graded as an ordinary user" if as_user else str(isolation.why_not_isolated())))
    res = read_results(out, case.name)
    jsonschema.validate(res, SCHEMA)
    if case.needs_private_tmp and res["extra_data"]["isolation"].get("temp_dir") != "private":
        pytest.skip("the report says this machine gives workers no private temp folder")
    if case.needs_allowlist and not res["extra_data"]["isolation"]["sandbox"].startswith("bubble"):
        pytest.skip("the report says workers do not get the allowlist view here")
    low, high = case.score
    outputs = "\n".join(t["output"] for t in res["tests"])
    assert low <= res["score"] <= high, outputs[:3000]
    if case.needle:
        assert case.needle in outputs
    if case.never:
        assert case.never not in outputs
    assert res["extra_data"]["isolation"]["level"] == ("isolated" if isolated else "subprocess")
    text = json.dumps(res)
    assert SECRET not in text  # the grader's environment never reaches student code
    if case.name == "read_hidden_files":
        assert "BEGIN SOLUTION" not in text and "def test_rosenblatt" not in text
        assert "refused" in text
    if case.name == "daemon_outlives_probe":
        assert not marker.exists(), "a process of the submission outlived its grading"


def test_no_sandbox_is_left_behind(batch):
    out, _, _, left, _ = batch
    assert not left
    assert not left_by_sandbox_uids(out)
