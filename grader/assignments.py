"""Assignment discovery: where each assignment's reference, hidden tests and release live."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (Gradescope's Ubuntu 22.04)
    import tomli as tomllib


class UnknownAssignment(LookupError):
    pass


def course_root() -> Path:
    """The folder holding reference/ and tests/: $GRADER_ROOT, else the nearest one upwards."""
    env = os.environ.get("GRADER_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent.parent):
        for folder in (start, *start.parents):
            if (folder / "reference").is_dir() and (folder / "tests").is_dir():
                return folder
    return Path(__file__).resolve().parent.parent


@dataclass
class Assignment:
    """One assignment, as configured by tests/<name>/assignment.toml."""

    name: str
    root: Path
    title: str
    module: str
    submit: list[str]
    timeout: float = 10.0
    memory_mb: int = 2048
    cpu_seconds: int = 600
    forbidden_imports: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    total_timeout: float = 1200.0
    summary: str = ""
    requirements: list[str] = field(default_factory=list)
    preload: list[str] = field(default_factory=list)  # modules the worker's zygote imports once
    devices: dict[str, dict] = field(default_factory=dict)  # [devices.cpu], [devices.cuda]

    @property
    def short(self) -> str:
        return self.name.split("_", 1)[0]

    @property
    def topic(self) -> str:
        return self.name.split("_", 1)[-1]

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference" / self.name

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests" / self.name

    @property
    def release_dir(self) -> Path:
        return self.root / "assignments" / self.name

    @property
    def probes_file(self) -> Path:
        return self.tests_dir / "probes.py"

    @property
    def mutants_dir(self) -> Path:
        return self.tests_dir / "mutants"

    @property
    def module_file(self) -> str:
        return f"{self.module}.py"


def load(tests_dir: Path) -> Assignment:
    """Read tests/<name>/assignment.toml."""
    with open(tests_dir / "assignment.toml", "rb") as f:
        cfg = tomllib.load(f)
    limits = cfg.get("limits", {})
    return Assignment(
        name=tests_dir.name,
        root=tests_dir.parent.parent,
        title=cfg["title"],
        module=cfg["module"],
        submit=cfg.get("submit", [f"{cfg['module']}.py"]),
        summary=cfg.get("summary", ""),
        timeout=float(limits.get("timeout", 10)),
        memory_mb=int(limits.get("memory_mb", 2048)),
        cpu_seconds=int(limits.get("cpu_seconds", 600)),
        total_timeout=float(limits.get("total_timeout", 1200)),
        forbidden_imports=list(cfg.get("forbidden_imports", [])),
        data_files=list(cfg.get("data_files", [])),
        requirements=list(cfg.get("requirements", [])),
        preload=list(cfg.get("preload", [])),
        devices=_devices(cfg.get("devices", {}), tests_dir.name),
    )


DEVICE_KINDS = ("cpu", "cuda")


def _devices(table: object, name: str) -> dict[str, dict]:
    """``[devices.cpu]`` and ``[devices.cuda]``: thresholds and time budgets per device kind, free
    keys for the judges (``thresholds`` fixture); ``timeout``, where given, is the per-probe
    timeout on that device. Anything else under ``[devices]`` is a mistake, said at load."""
    where = f"tests/{name}/assignment.toml"
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise ValueError(f"{where}: [devices] holds only tables ([devices.cpu], [devices.cuda])")
    unknown = sorted(set(table) - set(DEVICE_KINDS))
    if unknown:
        raise ValueError(f"{where}: unknown device kind {', '.join(unknown)} under [devices] "
                         f"(known: {', '.join(DEVICE_KINDS)})")
    for kind, values in table.items():
        t = values.get("timeout")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0):
            raise ValueError(f"{where}: devices.{kind}.timeout must be a positive number of seconds")
    return {kind: dict(values) for kind, values in table.items()}


def parse_device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` (any GPU) or ``cuda:N``, normalised; ValueError otherwise."""
    t = text.strip().lower()
    if t in ("auto", *DEVICE_KINDS):
        return t
    m = re.fullmatch(r"cuda:(\d{1,4})", t, re.ASCII)
    if m is None:
        raise ValueError(f"unknown device {text!r}: use auto, cpu, cuda or cuda:N")
    return f"cuda:{int(m.group(1))}"


def device_kind(device: str) -> str:
    """'cpu' or 'cuda': the kind that names the ``[devices.<kind>]`` table."""
    return device.partition(":")[0]


def cuda_present() -> bool:
    """Is there an NVIDIA GPU here at all? Cheap and torch-free: device nodes, else
    ``nvidia-smi -L``; False when CUDA_VISIBLE_DEVICES hides every device. Only a yes here is
    worth asking torch (in a child process) whether it can use one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if glob.glob("/dev/nvidia[0-9]*"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(ln.startswith("GPU ") for ln in out.stdout.splitlines())


def all_assignments(root: Path | None = None) -> list[Assignment]:
    root = root or course_root()
    tests = root / "tests"
    return [load(d) for d in sorted(tests.iterdir()) if (d / "assignment.toml").is_file()]


def find(name: str, root: Path | None = None) -> Assignment:
    """Resolve 'a1_perceptron', 'a1' or 'perceptron' to an assignment."""
    found = all_assignments(root)
    for a in found:
        if name in (a.name, a.short, a.topic):
            return a
    known = ", ".join(a.name for a in found) or "none"
    raise UnknownAssignment(f"unknown assignment {name!r}; known: {known}")


FINGERPRINT_PREFIX = 1 << 20  # bytes hashed per file; a larger one adds its size and mtime
FINGERPRINT_ENTRIES = 100_000  # entries walked per path; past that the rest count as one
_SKIP = ("__pycache__", ".reference-cache")


def fingerprint(paths: list[Path], salt: str = "") -> str:
    """A hash of every file under these paths (names and bytes), to know what changed.

    Student submissions come here before staging, so it is bounded and follows nothing: entries
    are lstat-ed, a link adds its target's name, a FIFO, socket or device only its kind (never
    opened), and a file over FINGERPRINT_PREFIX bytes its first bytes, size and mtime (a sparse
    100 GB file costs one small read). Small regular files hash as they always did."""
    h = hashlib.sha256(salt.encode())
    for root in paths:
        for rel, full, st in _entries(root):
            h.update(rel.encode(errors="surrogateescape"))
            h.update(_digest(full, st))
    return h.hexdigest()[:24]


def _entries(root: Path) -> list[tuple[str, Path, os.stat_result]]:
    """Every non-folder entry under root, sorted as Path.rglob's output was, without recursion."""
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode):
        return [(root.name, root, st)]
    found: list[tuple[tuple[str, ...], Path, os.stat_result]] = []
    stack: list[tuple[tuple[str, ...], Path]] = [((), root)]
    while stack and len(found) < FINGERPRINT_ENTRIES:
        parts, folder = stack.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name in _SKIP or len(found) >= FINGERPRINT_ENTRIES:
                continue
            full = folder / name
            try:
                est = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISDIR(est.st_mode):
                stack.append(((*parts, name), full))
            else:
                found.append(((*parts, name), full, est))
    found.sort(key=lambda e: e[0])
    return [("/".join(p), full, est) for p, full, est in found]


def _digest(path: Path, st: os.stat_result) -> bytes:
    """The bytes that stand for one entry (see fingerprint)."""
    if stat.S_ISLNK(st.st_mode):
        return b"\0link:" + os.fsencode(os.readlink(path))
    if not stat.S_ISREG(st.st_mode):
        return b"\0special:%o" % stat.S_IFMT(st.st_mode)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return b"\0unreadable:%d" % exc.errno
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"\0special"
        data = os.read(fd, FINGERPRINT_PREFIX + 1)  # one read: may return less; then more below
        while len(data) <= FINGERPRINT_PREFIX and (more := os.read(fd, FINGERPRINT_PREFIX + 1
                                                                   - len(data))):
            data += more
    finally:
        os.close(fd)
    if len(data) <= FINGERPRINT_PREFIX:
        return data
    return data[:FINGERPRINT_PREFIX] + b"\0size=%d\0mtime=%d" % (st.st_size, st.st_mtime_ns)

