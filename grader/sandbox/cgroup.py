"""One cgroup per worker: memory, process count and a fair CPU share that the kernel enforces.

Why a cgroup and not rlimits: RLIMIT_AS counts address space, not memory, so it breaks CUDA
(and refuses torch's CUDA build below about 2 GB) while letting calloc'd pages through; a cgroup
counts what is resident, kills the whole worker when it is exceeded, and says so
(``oom_kills``). Every worker's cgroup is a sibling under the grader's own cgroup, so the
kernel's default equal weights give each worker the same CPU share: a busy neighbour no longer
starves another.

cgroup v1 (separate ``memory``, ``pids``, ``cpu`` hierarchies, as on this machine) and v2 (one
unified hierarchy, when the grader's own cgroup may delegate controllers) are both handled.
``Cgroup.create`` returns None where neither can be had (an ordinary user, a container with a
read-only /sys/fs/cgroup): the caller falls back to rlimits and reports it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpu")
REMOVE_WAIT_S = 30.0  # how long a worker's last processes may take to exit


def _own_paths() -> dict[str, str]:
    """The grader's own cgroup per controller ("" for the v2 hierarchy), from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            paths[c] = path
    return paths


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


class Cgroup:
    """The cgroup folders of one worker (one per v1 controller, or one v2 folder)."""

    def __init__(self, version: str, folders: list[Path], memory_mb: int):
        self.version, self.folders, self.memory_mb = version, folders, memory_mb

    @classmethod
    def create(cls, name: str, memory_mb: int, processes: int) -> Cgroup | None:
        """Make the worker's cgroup with its limits set; None when this machine offers none."""
        try:
            if (ROOT / "cgroup.controllers").exists():
                return cls._create_v2(name, memory_mb, processes)
            if (ROOT / "memory" / "cgroup.procs").exists():
                return cls._create_v1(name, memory_mb, processes)
        except OSError:
            return None
        return None

    @classmethod
    def _create_v1(cls, name: str, memory_mb: int, processes: int) -> Cgroup:
        own = _own_paths()
        folders = []
        try:
            for c in V1_CONTROLLERS:
                folder = ROOT / c / own.get(c, "/").lstrip("/") / name
                folder.mkdir(exist_ok=True)
                folders.append(folder)
            mem, pids, _ = folders
            _write(mem / "memory.limit_in_bytes", str(memory_mb << 20))
            if (mem / "memory.memsw.limit_in_bytes").exists():  # no swapping past the limit
                _write(mem / "memory.memsw.limit_in_bytes", str(memory_mb << 20))
            _write(pids / "pids.max", str(processes))
        except OSError:
            cls("v1", folders, memory_mb).remove()
            raise
        return cls("v1", folders, memory_mb)

    @classmethod
    def _create_v2(cls, name: str, memory_mb: int, processes: int) -> Cgroup:
        parent = ROOT / _own_paths().get("", "/").lstrip("/")
        enabled = (parent / "cgroup.subtree_control").read_text().split()
        missing = [c for c in ("memory", "pids", "cpu") if c not in enabled]
        if missing:  # fails (EBUSY) when the grader's own cgroup holds processes: no delegation
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        folder = parent / name
        folder.mkdir(exist_ok=True)
        group = cls("v2", [folder], memory_mb)
        try:
            _write(folder / "memory.max", str(memory_mb << 20))
            if (folder / "memory.swap.max").exists():
                _write(folder / "memory.swap.max", "0")
            _write(folder / "pids.max", str(processes))
        except OSError:
            group.remove()
            raise
        return group

    def usage_mb(self) -> int:
        """What the cgroup's processes hold now (resident memory and the page cache they
        brought in), in MB."""
        name = "memory.current" if self.version == "v2" else "memory.usage_in_bytes"
        return int((self.folders[0] / name).read_text()) >> 20

    def set_limit(self, memory_mb: int) -> None:
        """Move the memory limit (v1 keeps memory+swap equal to it: raised first when the limit
        goes up, lowered last when it goes down, as the kernel requires)."""
        folder, value = self.folders[0], str(memory_mb << 20)
        if self.version == "v2":
            _write(folder / "memory.max", value)
        else:
            memsw = folder / "memory.memsw.limit_in_bytes"
            order = ["memory.limit_in_bytes", memsw.name]
            if memsw.exists() and memory_mb > self.memory_mb:
                order.reverse()
            for name in order:
                if (folder / name).exists():
                    _write(folder / name, value)
        self.memory_mb = memory_mb

    @property
    def mechanism(self) -> str:
        return f"cgroup {self.version}"

    def join(self) -> None:
        """Move the calling process into the cgroup (runs in the child before exec, as root)."""
        pid = str(os.getpid())
        for folder in self.folders:
            _write(folder / "cgroup.procs", pid)

    def _pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.folders:
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except OSError:
                pass
        return found

    def oom_kills(self) -> int:
        """How many processes the kernel has killed in this cgroup for exceeding its memory
        (compare before and after a probe: the count never goes down)."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            lines = (self.folders[0] / name).read_text().splitlines()
        except OSError:
            return 0
        counts = dict(line.split() for line in lines if len(line.split()) == 2)
        return int(counts.get("oom_kill", "0"))

    def kill(self, wait: float = 1.0) -> None:
        """Kill every process in the cgroup (cgroup.kill on v2; a sweep until empty on v1),
        waiting up to ``wait`` seconds for the last to go."""
        if self.version == "v2" and (self.folders[0] / "cgroup.kill").exists():
            try:
                _write(self.folders[0] / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while True:
            pids = self._pids()
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def remove(self, wait: float = REMOVE_WAIT_S) -> bool:
        """Kill what is left and remove the folders; False when one is still there after
        ``wait`` seconds. A cgroup holding processes cannot be removed, and a killed process
        leaves it only once it has exited: one freeing gigabytes on a loaded machine can take
        seconds, so the sweep and the removal are repeated until the deadline."""
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            self.kill(wait=min(1.0, max(0.0, deadline - time.monotonic())))
            left = []
            for folder in reversed(self.folders):
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(folder)
            if not left:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(0.2, delay * 2)
