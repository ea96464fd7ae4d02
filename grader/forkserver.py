"""The trusted grading process that stays up: start-up paid once per worker slot, not once per
submission.

A server imports what grading needs (pytest and its plugins, the grading plugin, the libraries
the assignment's judges and probes import at their top, such as numpy) and then only forks:
each submission is graded by a fresh child, a copy of the pristine server, that runs the judges
exactly as ``python -m grader.grading SPEC`` would and exits. So nothing of one submission
reaches the next (judge modules are imported in the child, never in the server; whatever a
child changes dies with it), a crash costs one submission, and the server kills a child that
overruns its total time. The server itself never reads a spec, runs a judge or touches student
files.

Protocol (JSON lines on the server's stdin and stdout, both ends trusted): the parent sends
``{"spec", "log", "timeout"}``; the server answers ``{"status", "timed_out"}`` once the child is
reaped.
"""

from __future__ import annotations

import ast
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grader.assignments import Assignment

START_TIMEOUT_S = 600.0  # torch's CUDA build on a cold disk
REPLY_GRACE_S = 30.0  # beyond the child's own timeout, for the server's answer
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
ALWAYS = ["pytest", "numpy", "numpy.random", "numpy.linalg", "numpy.ma", "grader.plugin",
          "grader.checks", "grader.figures", "grader.grading", "pdb", "platformdirs"]


def libraries(assignment: Assignment) -> list[str]:
    """What the server imports: the grading machinery, and the top-level imports of the
    assignment's probes and judges that are libraries (not files beside them)."""
    found = list(ALWAYS)
    local = {p.stem for p in assignment.tests_dir.glob("*.py")}
    for path in sorted(assignment.tests_dir.glob("*.py")):
        try:
            tree = ast.parse(path.read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in tree.body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     and node.level == 0 else [])
            for name in names:
                if name.partition(".")[0] not in local and name not in found:
                    found.append(name)
    return found


# -- the server ------------------------------------------------------------------------------
def _prctl(option: int, value: int) -> None:
    import ctypes

    try:
        ctypes.CDLL(None).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _send(fd: int, message: dict) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _preload(names: list[str]) -> None:
    """Import each library (one that fails is the child's to report), and pytest's own plugins,
    which pytest would import for every session."""
    import importlib

    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - the child imports it again and says why
            continue
    from _pytest.config import default_plugins

    for name in default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except Exception:  # noqa: BLE001, S112
            continue


def _child(request: dict, keep_out: tuple[int, ...], server: int) -> None:
    """In the fresh child: its own session (the server kills it as a group), no way back to
    the server's pipes, the log as stdout and stderr, then the judges. Never returns."""
    code = 3
    try:
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a server that dies takes its child along
        if os.getppid() != server:
            os._exit(code)
        for fd in keep_out:
            os.close(fd)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                      0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        from grader import grading

        code = grading.main(request["spec"])
    except BaseException:  # noqa: BLE001 - said in the log, which the parent shows
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001, S110 - nothing more can be said
                pass
        os._exit(code)


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """Wait for the child; past its timeout kill its whole group first. The child is ours and
    not yet reaped, so its pid (and group) cannot have been reused when it is killed."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    timed_out = False
    if fd is not None:
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        os.close(fd)
        timed_out = not ready
    else:  # an old kernel: poll
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, False
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.01)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return status, timed_out


def serve(names: list[str]) -> None:
    """The server's loop: preload, then one fork per request until stdin closes."""
    requests, replies = os.dup(0), os.dup(1)  # not inherited by what a child starts
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    # the end of the thread that started us ends us, even a killed batch's; Ctrl-C at the
    # terminal reaches us too (our children have sessions of their own), and so them
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _preload(names)
    _prctl(PR_SET_DUMPABLE, 0)  # no peer may trace it or read its memory through /proc
    import gc

    gc.collect()
    gc.freeze()  # the preloaded objects: never scanned again, in the server or its children
    _send(replies, {"ready": True})
    with os.fdopen(requests, "rb") as stream:
        for line in stream:
            request = json.loads(line)
            me = os.getpid()
            pid = os.fork()
            if pid == 0:
                _child(request, (requests, replies), me)
            status, timed_out = _wait(pid, float(request["timeout"]))
            _send(replies, {"status": status, "timed_out": timed_out})


# -- the parent's handle ---------------------------------------------------------------------
def jobs_root() -> Path:
    """The folder of this user's grading jobs (specs, logs, staged submissions): private to
    the user, and hidden from every worker."""
    root = Path(tempfile.gettempdir()) / f"grader-jobs-{os.getuid()}"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def trusted_env(root: Path) -> dict[str, str]:
    """The grading process's environment: no tokens or secrets of the caller, because a worker
    at the subprocess level runs as the same user and could read /proc/<parent>/environ."""
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES", "SYSTEMROOT", "DLGRADER_BWRAP",
            "DLGRADER_UID_BASE"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("LC_")}
    env["GRADER_ROOT"] = str(root)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugins grading names: the same
    return env  # verdict wherever pytest-randomly, pytest-timeout... happen to be installed


class ServerFailed(RuntimeError):
    """The server could not start or stopped answering (the submission's error, not the
    batch's)."""


class GradingServer:
    """One slot's server, started on first use and again after it dies; one submission at a
    time. ``run`` grades a spec and returns the child's exit code and, when it did not finish,
    why."""

    def __init__(self, assignment: Assignment):
        self.assignment = assignment
        self.env = trusted_env(assignment.root)
        fd, name = tempfile.mkstemp(prefix="grader-server-", suffix=".log", dir=jobs_root())
        os.close(fd)
        self.log = Path(name)  # the server's own stderr (its children log per submission)
        self.proc: subprocess.Popen | None = None
        self._buffer = b""

    def __enter__(self) -> GradingServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        cmd = [sys.executable, "-m", "grader.forkserver", *libraries(self.assignment)]
        with open(self.log, "ab") as err:  # cwd is the trusted checkout, first on sys.path
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, cwd=self.assignment.root.resolve(),
                                         env=self.env)
        self._buffer = b""
        self._reply(time.monotonic() + START_TIMEOUT_S, "ready")

    def _reply(self, deadline: float, key: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready = select.select([fd], [], [], max(0.0, left))[0] if left > 0 else []
            if not ready:
                self.close()
                raise ServerFailed(f"the grading process did not answer ({key})")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                why = self._tail()
                if why:  # the instructor's to read; the submission's result says only this
                    print(f"grader: the grading process stopped:\n{why}", file=sys.stderr)
                self.close()
                raise ServerFailed("the grading process stopped unexpectedly")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message = json.loads(line)
        if key not in message:
            self.close()
            raise ServerFailed(f"the grading process said {line[:200]!r}, not {key}")
        return message

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return ""

    def run(self, spec: Path, log: Path, timeout: float) -> tuple[int, str | None]:
        """Grade one spec in a fresh child; (exit code, None) when it finished in time, else
        (-9, why). ServerFailed when the server itself failed."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        request = {"spec": str(spec), "log": str(log), "timeout": timeout}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            self.close()
            raise ServerFailed(f"the grading process is gone ({exc})") from exc
        # (a child dies with its server: PDEATHSIG; the grace covers a server that hangs)
        done = self._reply(time.monotonic() + timeout + REPLY_GRACE_S, "status")
        if done["timed_out"]:
            return -9, f"grading took longer than {timeout:g} s in all"
        return os.waitstatus_to_exitcode(done["status"]), None

    def close(self) -> None:
        """Stop the server (stdin closed: it exits; killed if it does not)."""
        self.log.unlink(missing_ok=True)
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


class Pool:
    """A batch's servers: one per slot grading at the moment, started when first needed and
    kept for the next submission (a slot takes an idle one, else a new one)."""

    def __init__(self, assignment: Assignment):
        self.assignment = assignment
        self.idle: list[GradingServer] = []
        self.made: list[GradingServer] = []
        self.lock = threading.Lock()

    def take(self) -> GradingServer:
        with self.lock:
            if self.idle:
                return self.idle.pop()
            server = GradingServer(self.assignment)
            self.made.append(server)
            return server

    def give_back(self, server: GradingServer) -> None:
        with self.lock:
            self.idle.append(server)

    def close(self) -> None:
        with self.lock:
            made, self.made, self.idle = self.made, [], []
        for server in made:
            server.close()


if __name__ == "__main__":
    serve(sys.argv[1:])
