"""Runners: how a probe gets called on an implementation.

``Runner`` is the one small interface the judges' fixtures use. ``InProcessRunner`` calls the
probe in this process (the reference, and a student's own self-check). ``WorkerRunner`` starts the
sandboxed worker (worker.py) and talks to it over a private pipe: one worker per submission,
reused across probes, killed and respawned after a timeout or a crash.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from grader import codec
from grader.sandbox import bwrap, isolation, worker
from grader.sandbox.cgroup import Cgroup
from grader.sandbox.isolation import Limits

CAPTURE_HEAD = 3000
CAPTURE_TAIL = 1000


@dataclass
class ProbeOutcome:
    """What one probe call produced: a value, or a student-readable account of what went wrong."""

    ok: bool
    value: Any = None
    kind: str = ""  # not_implemented, exception, timeout, crash, memory, exit, unencodable...
    message: str = ""
    traceback: str = ""
    stdout: str = ""
    seconds: float = 0.0

    def explain(self) -> str:
        text = self.message
        if self.traceback and self.kind != "not_implemented":
            text += "\n" + self.traceback
        return text


class Runner(Protocol):
    level: str

    def call(self, probe: str, kwargs: dict) -> ProbeOutcome: ...

    def close(self) -> None: ...


def _outcome_from_reply(reply: Any, value_bytes: bytes | None,
                        max_items: int = codec.MAX_ITEMS) -> ProbeOutcome:
    """Validate a (possibly hostile) reply and build the outcome; the value is decoded within a
    budget (``max_items``), checked before anything is built."""
    if type(reply) is not dict or type(reply.get("ok")) is not bool:
        return ProbeOutcome(False, kind="protocol", message="the worker sent a malformed reply")
    if reply["ok"]:
        if value_bytes is None:
            return ProbeOutcome(False, kind="protocol", message="the worker sent no value")
        try:
            return ProbeOutcome(True, value=codec.decode(value_bytes, max_items=max_items))
        except codec.CodecError as exc:
            return ProbeOutcome(False, kind="unencodable", message=f"could not read the result: {exc}")
    fields = {k: reply.get(k) for k in ("kind", "message", "traceback")}
    if not all(type(v) is str for v in fields.values()):
        return ProbeOutcome(False, kind="protocol", message="the worker sent a malformed reply")
    return ProbeOutcome(False, kind=fields["kind"][:40], message=fields["message"][:2000],
                        traceback=fields["traceback"][:4000])


def import_from(folder: Path, module: str, alias: str | None = None) -> ModuleType:
    """Import folder/module.py under a private name (so reference and student never collide)."""
    name = alias or module
    if name in sys.modules:
        return sys.modules[name]
    path = folder / f"{module}.py"
    if not path.exists():
        raise ModuleNotFoundError(f"no file {module}.py in {folder}")
    folder_s = str(folder)
    if folder_s not in sys.path:
        sys.path.insert(0, folder_s)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


class InProcessRunner:
    """Calls probes in this process: for the trusted reference and for self-checks."""

    level = "inprocess"

    def __init__(self, impl_dir: Path, module: str, probes: ModuleType, alias: str | None = None):
        self.impl_dir, self.module, self.probes, self.alias = impl_dir, module, probes, alias

    def _load(self) -> ModuleType:
        return import_from(self.impl_dir, self.module, self.alias)

    def call(self, probe: str, kwargs: dict) -> ProbeOutcome:
        start = time.perf_counter()
        reply = worker.call_probe(self.probes, self._load, probe, kwargs, str(self.impl_dir))
        outcome = _outcome_from_reply(reply, reply.pop("encoded", None))
        outcome.seconds = time.perf_counter() - start
        return outcome

    def close(self) -> None:
        pass


@dataclass
class WorkerSpec:
    """Everything needed to start a worker for one submission."""

    submission: Path  # a folder holding the student's files
    module: str
    probes_file: Path
    data_files: list[Path] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    timeout: float = 10.0
    limits: Limits = field(default_factory=Limits)
    python: str = sys.executable
    startup_timeout: float = 60.0
    hide: list[str] = field(default_factory=list)  # host folders the report checks are hidden
    device: str = "cpu"  # the grader's name for it: "cpu" or "cuda:N" (N among the GPUs it sees)
    preload: list[str] = field(default_factory=list)  # imported once by the zygote (torch)


def scrubbed_env(home: str, tmp: str) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (tokens, paths to hidden files) leaks in."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": tmp,
        # the worker's leased uid has no passwd entry: getpass.getuser() (which torch >= 2.10
        # calls when an optimiser is made, for its compile cache) reads these first
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8:backslashreplace",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # correctness settings of this host
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def physical_gpu(device: str) -> str:
    """The GPU behind "cuda:N": the Nth of the grader's own CUDA_VISIBLE_DEVICES when it has
    one (N counts among the GPUs the grader sees), else N."""
    index = device.partition(":")[2] or "0"
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    return visible[int(index)] if visible and int(index) < len(visible) else index


# A worker's share of its GPU: device memory is no part of a container's memory, so it does not
# follow the host budget; every torch assignment was graded under 1536 MB on an H100.
GPU_MEMORY_MB = 1536


class Watchdog:
    """Resident memory of a process tree, sampled ten times a second; above the limit the
    whole tree is killed. The fallback for torch workers where no cgroup can be had: an
    address-space limit breaks CUDA. See ``tree_memory`` for how it is counted."""

    def __init__(self, pid: int, limit_mb: int, period: float = 0.1):
        self.pid, self.limit, self.period = pid, limit_mb << 20, period
        self.fired = False
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.period):
            tree = _tree(self.pid)
            if tree_memory(tree) > self.limit:
                self.fired = True
                for pid in reversed(tree):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                return


def tree_memory(tree: list[int]) -> int:
    """Bytes a sandbox's processes hold: the sum of their PSS where /proc lets us read it (root
    with CAP_SYS_PTRACE). Otherwise (in a container, or as an ordinary user: the zygote is not
    dumpable) from /proc/<pid>/status: the first Python (the zygote) counts whole, each process
    below it only the anonymous memory beyond the zygote's (what a fork shares copy-on-write
    with the zygote is not counted twice)."""
    pss = [_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree]
    if all(v is not None for v in pss):
        return sum(pss)  # type: ignore[arg-type]
    total, base = 0, None
    for pid in tree:
        rss = _field(f"/proc/{pid}/status", "VmRSS:") or 0
        anon = (_field(f"/proc/{pid}/status", "RssAnon:") or 0) + (
            _field(f"/proc/{pid}/status", "RssShmem:") or 0)
        if base is None and _comm(pid).startswith("python"):
            base = anon
            total += rss
        elif base is not None:
            total += max(0, anon - base)
        else:
            total += rss  # bubblewrap, above the zygote: small
    return total


def _field(path: str, key: str) -> int | None:
    """A "Key: N kB" line of a /proc file, in bytes (None when unreadable)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) << 10
    except (OSError, ValueError):
        return None
    return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc), parents first."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        found.append(p)
        todo += _children(p)
    return found


class ServerExited(Exception):
    """The zygote reports that the probe server exited (with this wait status)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _kill_sandbox(bwrap_pid: int) -> None:
    """Kill a bubblewrap sandbox from the inside out: every process in its PID namespace first
    (the namespace's init, bubblewrap's reaper, reaps them), then that init (bubblewrap reaps
    it). Killing the init first would leave its namespace's dead to the host's pid 1."""
    for init in _children(bwrap_pid):
        for _ in range(3):  # a fork racing the sweep
            for pid in _tree(init)[1:]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        deadline = time.monotonic() + 1
        while _children(init) and time.monotonic() < deadline:
            time.sleep(0.005)
        try:
            os.kill(init, signal.SIGKILL)
        except OSError:
            pass


class WorkerRunner:
    """The sandboxed runner: one worker process per submission, reused across probes.

    With ``use_bwrap`` the worker runs inside the bubblewrap allowlist view (bwrap.py): it sees
    its harness and a read-only copy of the submission under /sandbox, and copies the submission
    into a fresh tmpfs work folder each time it starts. Without it (the fallback) it runs in a
    host folder of its own, owned by its uid.
    """

    def __init__(self, spec: WorkerSpec, level: str, use_bwrap: bool = False):
        self.level, self.use_bwrap = level, use_bwrap
        self.proc: subprocess.Popen | None = None
        self.lease: int | None = None
        self.root = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        name = f"dlgrader-{spec.limits.uid}" if spec.limits.uid is not None else (
            f"dlgrader-{os.getuid()}-{os.getpid()}-{self.root.name[-8:]}")
        group = Cgroup.create(name, spec.limits.memory_mb + isolation.STARTUP_MB, spec.limits.processes)
        limits = replace(spec.limits, cgroup=group,
                         address_space=spec.limits.address_space and "torch" not in spec.preload)
        self.spec = spec = replace(spec, limits=limits)
        self.harness = self.root / "harness"
        self.work = self.root / "work"
        self.capture = self.root / "capture.txt"
        self.oom_base = 0
        self.need_fork = False
        self.imported = False  # the current probe server has imported the module
        self.import_timeout: str | None = None  # set once an import has hung: not tried again
        self.watchdog: Watchdog | None = None
        self.launched: str | None = None  # warmed and not yet waited for: "" or why it failed
        self.held: dict[str, bool] = {}  # what the worker measured from inside (see _record)
        self.report: dict[str, Any] = {}  # the isolation report; the worker completes it
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    @property
    def cgroup(self) -> Cgroup | None:
        return self.spec.limits.cgroup

    def _prepare(self) -> None:
        self.harness.mkdir()
        here = Path(worker.__file__).parent
        shutil.copy(here / "worker.py", self.harness / "_grader_worker.py")
        shutil.copy(Path(codec.__file__), self.harness / "_grader_codec.py")
        shutil.copy(self.spec.probes_file, self.harness / "probes.py")
        for data in self.spec.data_files:
            shutil.copy(data, self.harness / data.name)
        self._fresh_workdir()
        os.chmod(self.root, 0o711)
        os.chmod(self.harness, 0o755)
        for f in self.harness.iterdir():
            os.chmod(f, 0o644)

    def _fresh_workdir(self) -> None:
        """A private copy of the submission (regular files and folders only), owned by the
        worker's uid; with bubblewrap it is only read, into the worker's own tmpfs."""
        if self.work.exists():
            shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.spec.submission, self.work, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".git"))
        uid = self.spec.limits.uid
        for dirpath, dirnames, filenames in os.walk(self.work):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                if uid is not None:
                    os.lchown(name, uid, uid)
                if not os.path.islink(name):
                    os.chmod(name, 0o755 if os.path.isdir(name) else 0o644)

    def _record(self, held: Any) -> None:
        """Put what the worker measured as it started into the report (the worst of every
        start: a restarted sandbox that holds less is what the submission had)."""
        held = held if type(held) is dict else {}
        for key in ("network", "tmp", "hidden"):
            self.held[key] = self.held.get(key, True) and held.get(key) is True
        self.report.update({
            "network": "none" if self.held["network"] else "available",
            "hidden_paths": "unreadable" if self.held["hidden"] else "readable",
            "temp_dir": "private" if self.held["tmp"] else "shared"})

    # -- process management -------------------------------------------------------------
    def _command(self, argv: list[str]) -> tuple[list[str], str]:
        """(command, cwd): in the bubblewrap view, or plain."""
        if not self.use_bwrap:
            return argv, str(self.work)
        view = bwrap.View(python=self.spec.python, harness=str(self.harness),
                          submission=str(self.work), tmpfs_mb=4 * self.spec.limits.file_size_mb,
                          devices=bwrap.gpu_devices(self._gpu()))
        if view.devices:
            view.extra.append("/sys")  # the driver's PCI view, which CUDA reads
        limits = self.spec.limits
        if limits.uid is not None and isolation.is_root() and not limits.reach:
            reach = isolation.reach_for(view.sources(), str(self.root))
            self.spec = replace(self.spec, limits=replace(limits, reach=reach))
        return view.command(argv, self.spec.limits.reach), "/"

    def warm(self) -> None:
        """Start the sandbox now and do not wait for it (the first call does): it boots while
        the judges are still being collected."""
        if self.proc is None and self.launched is None:
            self.launched = self._launch() or ""

    def _start(self) -> str | None:
        """Start the sandbox and its zygote cold, then fork the first probe server; return None
        when it is ready, else why it could not start."""
        return self._launch() or self._ready()

    def _launch(self) -> str | None:
        """Start the sandbox's zygote and send it its configuration; None, else why not."""
        self._kill()
        if self.cgroup is not None:  # a new zygote imports its libraries again
            try:
                self.cgroup.set_limit(self.spec.limits.memory_mb + isolation.STARTUP_MB)
            except OSError:
                pass
        inside = bwrap.INSIDE if self.use_bwrap else None
        harness = f"{inside}/harness" if inside else str(self.harness)
        work = f"{inside}/work" if inside else str(self.work)
        req_r, req_w = os.pipe()  # requests to the probe server
        rep_r, rep_w = os.pipe()  # its replies
        cin_r, cin_w = os.pipe()  # commands to the zygote
        cout_r, cout_w = os.pipe()  # the zygote's answers and news of the child
        theirs = (req_r, rep_w, cin_r, cout_w)
        fd = os.open(self.capture, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o666)
        if self.spec.limits.uid is not None:
            os.chown(self.capture, self.spec.limits.uid, self.spec.limits.uid)
        try:
            cmd, cwd = self._command([self.spec.python, "-I", f"{harness}/_grader_worker.py",
                                      *map(str, theirs)])
            if self.use_bwrap:
                isolation.adopt_orphans()
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, pass_fds=theirs, cwd=cwd,
                env=self._env(work, "/tmp" if inside else work), start_new_session=True,
                preexec_fn=self.spec.limits.preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            for f in (*theirs, req_w, rep_r, cin_w, cout_r, fd):
                os.close(f)
            return f"could not start the grading worker: {exc}"
        for f in (*theirs, fd):
            os.close(f)
        self.wfd, self.rfd, self.cfd_w, self.cfd_r = req_w, rep_r, cin_w, cout_r
        if self.cgroup is None and not self.spec.limits.address_space:
            self.watchdog = Watchdog(self.proc.pid, self.spec.limits.memory_mb + isolation.STARTUP_MB)
        own_pids = self.use_bwrap or self.spec.limits.uid is not None
        config = {"harness": harness, "work": work, "module": self.spec.module,
                  "copy_from": f"{inside}/submission" if inside else None,
                  "forbidden": list(self.spec.forbidden), "memory_mb": self.spec.limits.memory_mb,
                  "preload": [m for m in self.spec.preload if m not in self.spec.forbidden],
                  "threads": 1, "device": self.spec.device,
                  "gpu_memory_mb": max(GPU_MEMORY_MB, self.spec.limits.memory_mb), "sweep":
                  "all" if own_pids else "group", "hide": list(self.spec.hide),
                  "bound": isolation.bound_in_tmp(self.spec.python, self.use_bwrap)}
        try:
            codec.write_frame(self.cfd_w, codec.encode(config))
        except OSError:
            pass  # the zygote is gone already: _ready says so
        return None

    def _ready(self) -> str | None:
        """Wait for the zygote launched, then fork the first probe server."""
        try:
            ready = self._control(time.monotonic() + self.spec.startup_timeout, "ready")
            self._record(ready.get("held"))
        except (OSError, EOFError, TimeoutError, codec.CodecError):
            detail = self._read_capture()
            self._kill()
            return "the grading worker failed to start" + (f":\n{detail}" if detail else "")
        self._settle_memory()
        return self._fork()

    def _settle_memory(self) -> None:
        """Start the student's budget where the zygote's own memory ends (the interpreter and
        the preloaded libraries: ~630 MB for torch's CUDA build, ~225 MB for its CPU build), so
        a submission gets the same memory_mb on every machine and in every image. The address
        space limit of the fallback is settled by the worker itself (worker._settle_rlimit)."""
        budget = self.spec.limits.memory_mb
        try:
            if self.cgroup is not None:
                self.cgroup.set_limit(self.cgroup.usage_mb() + budget)
            elif self.watchdog is not None:
                self.watchdog.limit = tree_memory(_tree(self.proc.pid)) + (budget << 20)
        except OSError:
            pass  # the allowance stays: generous, never tighter than the budget

    def _gpu(self) -> str | None:
        """The host's name for this worker's GPU, or None on the CPU."""
        return physical_gpu(self.spec.device) if self.spec.device.startswith("cuda") else None

    def _env(self, home: str, tmp: str) -> dict[str, str]:
        env = scrubbed_env(home, tmp)
        gpu = self._gpu()
        if gpu is not None:  # the worker sees its one GPU, as device 0
            env["CUDA_VISIBLE_DEVICES"] = gpu
        return env

    def _fork(self) -> str | None:
        """Ask the zygote for a fresh probe server (it kills the old one and all it started)."""
        try:
            codec.write_frame(self.cfd_w, codec.encode({"cmd": "fork"}))
            self._control(time.monotonic() + 10, "forked")
        except (OSError, EOFError, TimeoutError, codec.CodecError):
            self._kill()
            return self._start()
        worker.drain(self.rfd)  # what a dead server left half-written
        if self.cgroup is not None:
            self.oom_base = self.cgroup.oom_kills()
        self.need_fork = False
        return None

    def _control(self, deadline: float, want: str) -> dict:
        """Read the zygote's messages until one holding ``want`` (news of an earlier child's
        exit is stale by then and skipped)."""
        while True:
            message = self._control_frame(deadline)
            if type(message) is dict and message.get(want):
                return message

    def _control_frame(self, deadline: float) -> Any:
        (size,) = codec.HEADER.unpack(self._read_exact(codec.HEADER.size, deadline, self.cfd_r))
        if size > 4096:
            raise codec.CodecError("malformed control message")
        return codec.decode(self._read_exact(size, deadline, self.cfd_r))

    def _kill(self) -> None:
        if self.proc is None:
            return
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.use_bwrap:  # from the inside out, so every process is reaped by its own
            _kill_sandbox(self.proc.pid)  # parent and none is left to the host's pid 1
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            isolation.reap_orphans()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.spec.limits.uid is not None and not self.use_bwrap:
            isolation.kill_uid(self.spec.limits.uid)  # no PID namespace: sweep the whole uid
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.wfd, self.rfd, self.cfd_w, self.cfd_r):
            try:
                os.close(f)
            except OSError:
                pass
        self.proc = None

    def _read_exact(self, n: int, deadline: float, fd: int | None = None) -> bytes:
        """Read n bytes from the reply pipe (or ``fd``). While waiting on the reply pipe, news
        from the zygote that the server died raises ServerExited at once."""
        fd = self.rfd if fd is None else fd
        watch = [fd] if fd == self.cfd_r else [fd, self.cfd_r]
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select(watch, [], [], left)
            if not ready:
                raise TimeoutError
            if fd not in ready:  # only the zygote spoke
                message = self._control_frame(deadline)
                if type(message) is dict and type(message.get("exited")) is int:
                    raise ServerExited(message["exited"])
                continue
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _read_frame(self, deadline: float, max_bytes: int = codec.MAX_MESSAGE_BYTES) -> bytes:
        (size,) = codec.HEADER.unpack(self._read_exact(codec.HEADER.size, deadline))
        if size > max_bytes:
            raise codec.CodecError(
                f"the result is too large to grade ({size} bytes; the limit is {max_bytes})")
        return self._read_exact(size, deadline)

    def _read_capture(self) -> str:
        try:
            with open(self.capture, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(CAPTURE_HEAD)
                tail = b""
                if size > CAPTURE_HEAD + CAPTURE_TAIL:
                    f.seek(size - CAPTURE_TAIL)
                    tail = f.read(CAPTURE_TAIL)
                elif size > CAPTURE_HEAD:
                    tail = f.read()
        except OSError:
            return ""
        text = head.decode("utf-8", errors="replace")
        if size > CAPTURE_HEAD + CAPTURE_TAIL:
            text += f"\n[... {size - CAPTURE_HEAD - CAPTURE_TAIL} bytes of output left out ...]\n"
        text += tail.decode("utf-8", errors="replace")
        return text.replace("\x00", "\\0")

    def _died(self, code: int | None) -> tuple[str, str]:
        """(kind, message) for a probe server or sandbox that ended with this exit code
        (negative: killed by that signal; None: still running but not answering)."""
        if (self.cgroup is not None and self.cgroup.oom_kills() > self.oom_base) or (
                self.watchdog is not None and self.watchdog.fired):
            return "memory", (f"ran out of memory: your code may use "
                              f"{self.spec.limits.memory_mb} MB beyond what Python and the "
                              "preloaded libraries take, and the process running it was killed")
        if code is None:
            return "crash", "the process running your code stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:  # a real-time signal has no name
                name = f"signal {-code}"
            hint = {
                "SIGKILL": "killed: out of memory, or it killed itself",
                "SIGXCPU": "it used up its CPU time limit",
                "SIGXFSZ": "it wrote more than the file size limit",
                "SIGSEGV": "it crashed in native code",
            }.get(name, "killed by a signal")
            return "crash", f"the process running your code died ({name}: {hint})"
        return "crash", (f"the process running your code exited with status {code}; "
                         "your code must not call os._exit() or exit the interpreter")

    def _sandbox_code(self) -> int | None:
        """The sandbox's exit code as a wait code (bubblewrap reports a signal as 128 + it)."""
        code = self.proc.poll() if self.proc else None
        if code is not None and self.use_bwrap and 128 < code < 128 + 65:
            return -(code - 128)
        return code

    # -- the Runner interface ------------------------------------------------------------
    def call(self, probe: str, kwargs: dict) -> ProbeOutcome:
        start = time.monotonic()
        if self.import_timeout:  # a module whose import hangs would cost every test its timeout
            return ProbeOutcome(False, kind="timeout", message=self.import_timeout, seconds=0.0)
        why = None
        if self.launched is not None:  # warmed: wait for it now
            why, self.launched = self.launched or self._ready(), None
            self.imported = False
        elif self.proc is None or self.proc.poll() is not None:
            why = self._start()
            self.imported = False
        elif self.need_fork:
            why = self._fork()
            self.imported = False
        if why:
            return ProbeOutcome(False, kind="crash", message=why)
        printed = ""  # what the module printed as it was imported
        if not self.imported:
            outcome = self._import()
            if not outcome.ok:  # it hung, raised, exited or was killed: the test's verdict
                outcome.seconds = time.monotonic() - start
                return outcome
            printed = outcome.stdout
        outcome = self._exchange(probe, kwargs)
        outcome.stdout = printed + outcome.stdout
        outcome.seconds = time.monotonic() - start
        return outcome

    def _import(self) -> ProbeOutcome:
        """Import the student's module in the new probe server, as a step timed on its own; an
        import that hangs is remembered, so the later tests fail at once for the same reason."""
        outcome = self._exchange(worker.IMPORT, {})
        self.imported = outcome.ok
        if outcome.kind == "timeout":
            outcome.message = (f"importing your module timed out after {self.spec.timeout:g} s "
                               "(an infinite loop or a long computation at the top level?)")
            self.import_timeout = outcome.message + "; the tests after the first are not run"
        return outcome

    def _exchange(self, probe: str, kwargs: dict) -> ProbeOutcome:
        """One request to the probe server and its reply, within the probe's time limit."""
        deadline = time.monotonic() + self.spec.timeout
        try:
            codec.write_frame(self.wfd, codec.encode({"probe": probe, "kwargs": kwargs}))
            reply = codec.decode(self._read_frame(deadline, max_bytes=1 << 20))
            value = None
            if type(reply) is dict and reply.get("ok") is True:
                value = self._read_frame(deadline)
            budget = codec.items_budget(self.spec.limits.memory_mb)
            outcome = _outcome_from_reply(reply, value, budget)
        except TimeoutError:
            outcome = ProbeOutcome(False, kind="timeout", message=(
                f"timed out after {self.spec.timeout:g} s: an infinite loop, a deadlock, "
                "or code far slower than it needs to be"))
        except ServerExited as exc:
            kind, message = self._died(os.waitstatus_to_exitcode(exc.status))
            outcome = ProbeOutcome(False, kind=kind, message=message)
        except (EOFError, BrokenPipeError):  # the whole sandbox went down
            time.sleep(0.05)
            kind, message = self._died(self._sandbox_code())
            outcome = ProbeOutcome(False, kind=kind, message=message)
            self._kill()
        except (OSError, codec.CodecError) as exc:
            outcome = ProbeOutcome(False, kind="protocol", message=f"could not read the result: {exc}")
        outcome.stdout = self._read_capture()
        if not outcome.ok and outcome.kind != "not_implemented":
            self.need_fork = True  # threads, memory or state left by a failed probe: a new fork
        return outcome

    def close(self) -> None:
        self._kill()
        if self.use_bwrap:  # stragglers of the measure run and of earlier sandboxes
            isolation.reap_orphans(wait=2)
        if self.cgroup is not None and not self.cgroup.remove():
            print(f"grader: the worker's cgroup {self.cgroup.folders[0]} still holds processes "
                  "after they were killed; it is left for the kernel", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)
        if self.lease is not None:
            os.close(self.lease)
            self.lease = None
