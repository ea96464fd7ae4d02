"""What the kernel lets us take away from a worker, and the code that takes it away.

Levels (docs/ARCHITECTURE.md): ``isolated`` (as root: a leased uid per worker, its own cgroup,
and the bubblewrap allowlist view of the machine) and ``subprocess`` (an ordinary user: the
same view where unprivileged user namespaces allow it, rlimits). Where bubblewrap cannot run
(inside Docker the default seccomp profile refuses ``unshare``) the worker runs ``plain``: uid
drop, file modes and the container's ``--network none``. As root the subprocess level is
refused: a worker running as root could undo anything done to it.

``Limits.preexec`` runs in the forked child just before exec, as the grader: it joins the
cgroup, sets the rlimits and drops to the sandbox uid, in that order (the first needs root).
The trials (``why_not_isolated``, ``measure``) run a snippet exactly as a worker would be run
and report what held, so the report says what is in force, never what was merely asked for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace

from grader.sandbox import bwrap
from grader.sandbox.cgroup import Cgroup

# One uid per worker slot, so process limits and kills stay separate. The grading image moves
# the range (DLGRADER_UID_BASE=63000): a host grader's sweep (kill(-1) as its uid) must never
# reach a container's workers, which share the kernel's uids.
SANDBOX_UID_BASE = int(os.environ.get("DLGRADER_UID_BASE", "61000"))
SANDBOX_UID_SPAN = 2000
LEASE_DIR = "/run/grader-uid-leases"  # one place per machine, whatever TMPDIR says
TRIAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/"}
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 0x4000, 1 << 18
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _bind_privately(pairs: list[tuple[str, str]]) -> None:
    """In a new mount namespace of this process only: bind each host folder at its alias."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _check(_libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate")
    for src, alias in pairs:
        _check(_libc.mount(src.encode(), alias.encode(), None, MS_BIND | MS_REC, None),
               f"bind {src}")


def adopt_orphans() -> None:
    """Become a child subreaper: bubblewrap's outer process exits without reaping the init of
    its PID namespace, which would be left to the host's pid 1 (a zombie of a sandbox uid that
    lingers until pid 1 gets to it); as a subreaper we get it and reap it (reap_orphans)."""
    _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans(wait: float = 1.0) -> None:
    """Reap the bubblewrap processes handed to us as a subreaper (see adopt_orphans), waiting
    up to ``wait`` seconds for ones still dying. Only processes named bwrap are touched: the
    runner's own bwrap child is reaped by its Popen before this is called."""
    me, deadline = os.getpid(), time.monotonic() + wait
    while True:
        adopted = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index(b"(") + 1:stat.rindex(b")")]
            fields = stat[stat.rindex(b")") + 2:].split()
            if comm == b"bwrap" and int(fields[1]) == me:
                adopted.append(int(pid))
        for pid in adopted:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not adopted or time.monotonic() > deadline:
            return
        time.sleep(0.005)


def unreachable(path: str) -> bool:
    """True when a user with no rights of its own cannot reach path: a folder above it lacks o+x."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if not os.stat(folder).st_mode & 0o001:
            return True
        if folder == "/":
            return False
        folder = os.path.dirname(folder)


def reach_for(paths: list[str], folder: str) -> dict[str, str]:
    """For each path the sandbox uid cannot reach, an empty alias under ``folder`` (a folder it
    can reach) where the worker's preexec binds it (``Limits.reach``). Only root needs this."""
    aliases: dict[str, str] = {}
    for i, path in enumerate(p for p in paths if unreachable(p)):
        alias = os.path.join(folder, f"reach-{i}")
        if os.path.isdir(path):
            os.makedirs(alias, 0o755, exist_ok=True)
        else:
            open(alias, "a").close()
            os.chmod(alias, 0o644)
        aliases[path] = alias
    return aliases


STARTUP_MB = 2048  # what a worker may take while it imports its libraries, before the budget


@dataclass
class Limits:
    """Resource limits and the identity of one worker."""

    memory_mb: int = 2048
    cpu_seconds: int = 600
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    uid: int | None = None  # a leased sandbox uid (the isolated level), or the grader's own
    cgroup: Cgroup | None = None  # memory, processes and CPU share by cgroup when there is one
    reach: dict[str, str] = field(default_factory=dict)  # host folder -> alias the uid reaches
    address_space: bool = True  # RLIMIT_AS when there is no cgroup (never for torch: CUDA)

    @property
    def memory_mechanism(self) -> str:
        if self.cgroup:
            return self.cgroup.mechanism
        return "rlimit (address space)" if self.address_space else "watchdog (resident memory)"

    def preexec(self) -> None:
        """Runs in the child between fork and exec (the parent called setsid already)."""
        if self.reach:  # as root, before the uid drop
            _bind_privately(list(self.reach.items()))
        if self.cgroup is not None:
            self.cgroup.join()
        elif self.address_space:  # the fallback; it breaks CUDA (then the runner's watchdog)
            mb = (self.memory_mb + STARTUP_MB) << 20  # the worker settles it after its imports
            resource.setrlimit(resource.RLIMIT_AS, (mb, mb))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        fsize = self.file_size_mb << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        if self.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)


def is_root() -> bool:
    return os.geteuid() == 0


def sandbox_uid(slot: int) -> int:
    return SANDBOX_UID_BASE + slot % SANDBOX_UID_SPAN


def lease_uid(start: int = 0) -> tuple[int, int]:
    """Claim a sandbox uid no other grader on this machine is using: (uid, lock fd).

    The claim is an flock on a file in a root-only folder; it lasts while the fd is open (and ends
    when the process dies), so concurrent batches never share a uid or kill each other's workers.
    """
    import fcntl

    folder = LEASE_DIR if os.path.isdir(os.path.dirname(LEASE_DIR)) else "/tmp/grader-uid-leases"
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for i in range(SANDBOX_UID_SPAN - 1):  # the last uid is kept for why_not_isolated()
        uid = sandbox_uid((start + i) % (SANDBOX_UID_SPAN - 1))
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return uid, fd
    raise RuntimeError("no free sandbox uid: too many graders running at once")


def kill_uid(uid: int) -> None:
    """Kill every process running as uid (root only): fork, become uid, kill(-1)."""
    for _ in range(3):  # a fork bomb may race the first sweep
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            except BaseException:  # noqa: BLE001
                pass
            os._exit(0)
        os.waitpid(pid, 0)


def bwrap_disabled() -> bool:
    """``DLGRADER_BWRAP=0`` runs workers without bubblewrap (the fallback, for tests)."""
    return os.environ.get("DLGRADER_BWRAP", "1") == "0"


def run_snippet(python: str, code: str, limits: Limits, use_bwrap: bool, harness: str,
                submission: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``python -I -`` with code on stdin (never on a command line others could read),
    exactly as a worker with these limits would be run."""
    argv, cwd, folder = [python, "-I", "-"], submission, None
    if use_bwrap:
        view = bwrap.View(python=python, harness=harness, submission=submission,
                          tmpfs_mb=4 * limits.file_size_mb)
        if limits.uid is not None and is_root():
            folder = tempfile.mkdtemp(prefix="grader-reach-")
            os.chmod(folder, 0o711)
            limits = replace(limits, reach=reach_for(view.sources(), folder))
        argv, cwd = view.command(argv, limits.reach), "/"
    if use_bwrap:
        adopt_orphans()
    try:
        return subprocess.run(argv, preexec_fn=limits.preexec, start_new_session=True,
                              input=code.encode(), capture_output=True, timeout=timeout,
                              env=TRIAL_ENV, cwd=cwd)
    finally:
        if use_bwrap:
            reap_orphans()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


_facts: dict[tuple, dict] = {}


def _trial(python: str, uid: int | None, use_bwrap: bool) -> str | None:
    """Import numpy in a worker-like process: None when it works, else the last error line."""
    empty = "/var/empty" if os.path.isdir("/var/empty") else "/"
    limits = Limits(uid=uid, memory_mb=4096)
    try:
        proc = run_snippet(python, "import numpy", limits, use_bwrap, empty, empty)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not start a sandboxed process: {exc}"
    if proc.returncode == 0:
        return None
    err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return err[0] if err else f"exit status {proc.returncode}"


def sandbox_facts(python: str = sys.executable) -> dict:
    """What this machine allows, measured once: ``why_not_isolated`` (None when the isolated level
    works), ``bwrap`` (workers get the allowlist view) and ``why_no_bwrap``."""
    key = (python, bwrap_disabled())
    if key in _facts:
        return _facts[key]
    uid = sandbox_uid(SANDBOX_UID_SPAN - 1) if is_root() else None
    if bwrap_disabled():
        why_no_bwrap: str | None = "turned off (DLGRADER_BWRAP=0)"
    elif bwrap.executable() is None:
        why_no_bwrap = "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    else:
        why_no_bwrap = _trial(python, uid, use_bwrap=True)
    why_not: str | None = None
    if not is_root():
        why_not = "the grader is not running as root, so it cannot drop to another user"
    elif why_no_bwrap is not None:
        plain = _trial(python, uid, use_bwrap=False)
        if plain is not None:
            why_not = (f"an unprivileged user cannot run {python} ({plain}), and bubblewrap, "
                       f"which could show it to one, is unavailable ({why_no_bwrap})")
    facts = {"python": python, "why_not_isolated": why_not, "bwrap": why_no_bwrap is None,
             "why_no_bwrap": why_no_bwrap, "disabled": bwrap_disabled()}
    _facts[key] = facts
    return facts


def why_not_isolated(python: str = sys.executable) -> str | None:
    """None when the isolated level works here, else the reason it does not."""
    return sandbox_facts(python)["why_not_isolated"]


def reuse_facts(facts: dict) -> None:
    """Take what the batch's parent measured (see sandbox_facts) instead of measuring again."""
    _facts[(facts["python"], facts["disabled"])] = facts


def bound_in_tmp(python: str, use_bwrap: bool) -> list[str]:
    """What may show in a worker's /tmp: a venv that lives in /tmp (a checkout there) is bound
    back at its place, and its top folder is all that shows."""
    if not use_bwrap:
        return []
    return sorted({p.split("/")[2] for p in bwrap.interpreter_folders(python)
                   if p.startswith("/tmp/")})


def hidden_paths(*paths: str | os.PathLike) -> list[str]:
    """Resolve the folders a worker must not see, dropping ones that do not exist."""
    out = []
    for p in paths:
        real = os.path.realpath(p)
        if os.path.isdir(real) and real not in out and real != "/":
            out.append(real)
    return out
