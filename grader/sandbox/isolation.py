"""What the kernel lets us take away from a worker, and the code that takes it away.

Levels (docs/ARCHITECTURE.md): ``subprocess`` (rlimits, new session, scrubbed environment,
private working copy, a network namespace when unprivileged user namespaces allow one) and
``isolated`` (as root: + a separate unprivileged uid per worker, a private mount namespace in
which the hidden paths are covered by empty read-only tmpfs mounts, RLIMIT_NPROC, no network).
``Limits.preexec`` runs in the forked child just before exec; it does everything in one place so
that the order is explicit: namespaces and mounts need root, so they come before the uid drop.
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
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REMOUNT = 32
MNT_DETACH = 2
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

SANDBOX_UID_BASE = 61000  # one uid per worker slot, so process limits and kills stay separate
SANDBOX_UID_SPAN = 2000
LEASE_DIR = "/run/grader-uid-leases"  # one place per machine, whatever TMPDIR says

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount(source: str, target: str, fstype: str, flags: int, data: str = "") -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                   data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


@dataclass
class Limits:
    """Resource limits and isolation settings for one worker."""

    memory_mb: int = 2048
    cpu_seconds: int = 600
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    isolated: bool = False
    uid: int | None = None
    hide: list[str] = field(default_factory=list)
    want_netns: bool = True
    sandbox: str | None = None  # the worker's own folder; /tmp and its parent become private
    python_home: str | None = None  # the worker's venv: bound back read-only if in a temp root
    python_bind: str | None = None  # or bound here, when the sandbox uid cannot reach it

    def _temp_roots(self) -> list[str]:
        """The folders emptied for the worker: /tmp and the one its sandbox lives in."""
        return _outermost({"/tmp", os.path.dirname(self.sandbox)}) if self.sandbox else []

    def _binds(self) -> list[tuple[str, str, bool]]:
        """(folder, where the worker sees it, writable): what shows again once the temp roots
        are emptied: the sandbox, and the venv (at ``python_bind``, or in place when it lives in
        a temp root, e.g. a checkout in /tmp). One rule, for the mounts and for has_private_tmp."""
        roots = self._temp_roots()

        def inside(p: str) -> bool:
            return any(p.startswith(r + "/") for r in roots)

        binds = [(self.sandbox, self.sandbox, True)] if self.sandbox and inside(self.sandbox) else []
        if self.python_home and self.python_bind:
            binds.append((self.python_home, self.python_bind, False))
        elif self.python_home and inside(self.python_home):
            binds.append((self.python_home, self.python_home, False))
        return binds

    def _mask(self) -> None:
        """In a fresh mount namespace: cover every hidden folder with an empty tmpfs, give the
        worker temp folders of its own (other submissions' files never show there), and bind
        back what it needs. The bound folders are opened first: the mounts may cover them."""
        binds = self._binds()
        fds = [os.open(src, os.O_RDONLY | os.O_DIRECTORY) for src, _, _ in binds]
        try:
            _mount("none", "/", "", MS_REC | MS_PRIVATE)
            for path in self.hide:
                if os.path.isdir(path):
                    _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV,
                           "size=4k,mode=000")
            roots = self._temp_roots()
            for tmp in roots:
                _mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV,
                       f"size={4 * self.file_size_mb}m,mode=1777")
            try:
                for fd, (_, target, writable) in zip(fds, binds):
                    os.makedirs(target, 0o755, exist_ok=True)
                    _mount(f"/proc/self/fd/{fd}", target, "", MS_BIND | MS_REC)
                    if not writable:
                        _mount("none", target, "", MS_REMOUNT | MS_BIND | MS_RDONLY)
            except OSError:
                for tmp in roots:  # a shared temp dir beats no sandbox
                    _libc.umount2(tmp.encode(), MNT_DETACH)
                raise
        finally:
            for fd in fds:
                os.close(fd)

    def preexec(self) -> None:
        """Runs in the child between fork and exec (the parent called setsid already)."""
        if self.isolated:
            try:  # as root; a container's seccomp profile may refuse it (then: permissions only)
                _unshare(CLONE_NEWNS | CLONE_NEWNET)
                self._mask()
            except OSError:
                pass  # measured by has_private_network() and hides_paths(), and reported
        elif self.want_netns:
            try:  # an unprivileged user namespace lets an ordinary user hide paths and the network
                uid, gid = os.getuid(), os.getgid()
                _unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET)
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{uid} {uid} 1")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
                self._mask()
            except OSError:
                pass  # measured by has_private_network() and hides_paths(), and reported
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_mb * mb, self.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_size_mb * mb, self.file_size_mb * mb))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        if self.isolated and self.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)


def _outermost(folders: set[str]) -> list[str]:
    """The folders that lie inside none of the others (a tmpfs on those covers the rest)."""
    real = {os.path.normpath(f) for f in folders if os.path.isdir(f)} - {"/"}
    return sorted(f for f in real if not any(f.startswith(o + "/") for o in real))


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


_probe_cache: dict[tuple, str | None] = {}


def _try_isolated(python: str, bind: bool) -> str | None:
    """Run numpy as the spare sandbox uid; None when it works, else the last error line."""
    limits = Limits(isolated=True, uid=sandbox_uid(SANDBOX_UID_SPAN - 1), memory_mb=4096)
    sandbox = None
    if bind:
        sandbox = tempfile.mkdtemp(prefix="grader-sandbox-")
        os.chmod(sandbox, 0o711)
        os.mkdir(os.path.join(sandbox, "python"), 0o755)
        home, python = bound_python(python, sandbox)
        limits.python_home, limits.python_bind = home, os.path.join(sandbox, "python")
    try:
        proc = subprocess.run(
            [python, "-I", "-c", "import numpy, socket; socket.create_connection"],
            preexec_fn=limits.preexec, start_new_session=True, capture_output=True,
            timeout=60, env={"PATH": "/usr/bin:/bin"}, cwd="/",
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not start an isolated process: {exc}"
    finally:
        if sandbox:
            shutil.rmtree(sandbox, ignore_errors=True)
    if proc.returncode == 0:
        return None
    err = proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return err[0] if err else f"exit status {proc.returncode}"


def venv_home(python: str) -> str:
    """The folder of the venv (or installation) whose bin/ holds this Python."""
    return os.path.dirname(os.path.dirname(os.path.abspath(python)))


def bound_python(python: str, sandbox: str) -> tuple[str, str]:
    """(the venv folder, the path its Python has once that folder is bound at sandbox/python)."""
    home = venv_home(python)
    return home, os.path.join(sandbox, "python", os.path.relpath(os.path.abspath(python), home))


def why_not_isolated(python: str = sys.executable) -> str | None:
    """None when the isolated level works here, else the reason it does not.

    A venv in a folder the sandbox uid cannot enter (a checkout under /root) is tried a second
    way: bound read-only into the worker's sandbox, where that uid can reach it.
    """
    key = ("isolated", python)
    if key in _probe_cache:
        return _probe_cache[key]
    reason: str | None = None
    if not is_root():
        reason = "the grader is not running as root, so it cannot drop to another user"
    else:
        direct = _try_isolated(python, bind=False)
        is_venv = os.path.exists(os.path.join(venv_home(python), "pyvenv.cfg"))
        if direct is not None and is_venv and _try_isolated(python, bind=True) is None:
            _probe_cache[("bind", python)] = "yes"
        elif direct is not None:
            reason = (f"an unprivileged user cannot run {python} ({direct}); make the virtual "
                      "environment from a system Python (/usr/bin/python3)")
    _probe_cache[key] = reason
    return reason


def known_facts(python: str = sys.executable) -> dict:
    """What the isolated-level trial found, for the grading processes of a batch to reuse (the
    trial imports numpy as another uid: about 0.14 s here, once per batch instead of per job)."""
    return {"python": python, "why_not_isolated": why_not_isolated(python),
            "bind": needs_bound_python(python)}


def reuse_facts(facts: dict) -> None:
    """Take what the batch's parent measured (see known_facts) instead of measuring again."""
    _probe_cache[("isolated", facts["python"])] = facts["why_not_isolated"]
    if facts["bind"]:
        _probe_cache[("bind", facts["python"])] = "yes"


def needs_bound_python(python: str = sys.executable) -> bool:
    """True when the isolated level works only with the venv bound into the sandbox."""
    return why_not_isolated(python) is None and ("bind", python) in _probe_cache


def _holds(limits: Limits, code: str, key: tuple, python: str) -> bool:
    """Run a probe snippet under these limits: True when it exits 0 (cached per process)."""
    if key not in _probe_cache:
        try:
            proc = subprocess.run([python, "-I", "-S", "-c", code], preexec_fn=limits.preexec,
                                  start_new_session=True, capture_output=True, timeout=30,
                                  env={"PATH": "/usr/bin:/bin"}, cwd="/")
            _probe_cache[key] = "yes" if proc.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            _probe_cache[key] = None
    return _probe_cache[key] is not None


def has_private_network(limits: Limits, python: str = sys.executable) -> bool:
    """True when a worker started with these limits sees no network interface but loopback."""
    code = "import socket,sys; n=[i[1] for i in socket.if_nameindex()]; sys.exit(n!=['lo'])"
    return _holds(limits, code, ("net", limits.isolated, python), python)


def has_private_tmp(limits: Limits, python: str = sys.executable) -> bool:
    """True when a worker's temp folder holds nothing but its own sandbox (and what is bound
    back there: a venv that lives in it)."""
    if not limits.sandbox:
        return False
    parent = os.path.dirname(limits.sandbox)
    mine = {os.path.relpath(target, parent).split(os.sep)[0]
            for _, target, _ in limits._binds() if target.startswith(parent + "/")}
    code = f"import os,sys; sys.exit(not set(os.listdir({parent!r})) <= {mine!r})"
    return _holds(limits, code, ("tmp", limits.isolated, parent, python), python)


def hides_paths(limits: Limits, python: str = sys.executable) -> bool:
    """True when a worker started with these limits cannot list the first hidden path."""
    if not limits.hide:
        return True
    code = (f"import os,sys\ntry:\n    sys.exit(1 if os.listdir({limits.hide[0]!r}) else 0)\n"
            "except PermissionError:\n    sys.exit(0)")
    return _holds(limits, code, ("hide", limits.isolated, tuple(limits.hide), python), python)


def hidden_paths(*paths: str | Path) -> list[str]:
    """Resolve the folders a worker must not see, dropping ones that do not exist."""
    out = []
    for p in paths:
        real = os.path.realpath(p)
        if os.path.isdir(real) and real not in out and real != "/":
            out.append(real)
    return out
