"""The sandboxed worker: the only process that runs student code.

It is copied into the sandbox as ``_grader_worker.py`` next to ``_grader_codec.py`` and the
assignment's ``probes.py``, so it imports nothing from the ``grader`` package. It reads
length-prefixed requests from a private pipe, runs one probe per request on the student's module,
and writes the encoded result back. stdout and stderr go to a capture file that the parent reads
after each probe. The student's module is imported lazily, on the first probe, with the
submission's folder *last* on sys.path so that files like ``numpy.py`` or ``json.py`` in a
submission cannot shadow the libraries the harness uses.

The in-process runner (student self-checks, the reference) reuses ``call_probe`` from here.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import importlib.util
import os
import random
import resource
import select
import signal
import sys
import traceback
import warnings
import zlib
from types import ModuleType
from typing import Any

import numpy as np

if __name__ == "__main__":  # `python -I` leaves the harness folder off sys.path: put it first
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:  # inside the sandbox the codec sits next to this file under another name
    import _grader_codec as codec  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - in the grader's own process
    from grader import codec


def call_seed(probe: str, kwargs: dict) -> int:
    """The seed used for one probe call: the same on both sides of the boundary."""
    return zlib.crc32(codec.encode([probe, kwargs])) & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


class ForbiddenImportError(ImportError):
    """Raised when a submission imports a module the assignment forbids."""


def forbid_imports(forbidden: list[str]) -> None:
    """Refuse the forbidden modules with an audit hook, installed before any student code runs.

    A hook cannot be removed (unlike a finder on sys.meta_path, which a student can take off):
    it refuses an import by name and, so that no other road leads there (exec of the package's
    source, a loader of one's own, ctypes), any open or dlopen of a file inside the package (listing its folder is no import).
    """
    names = set(forbidden)
    folders: dict[str, str] = {}  # the package's folder -> its name
    for name in names:
        try:
            spec = importlib.util.find_spec(name)  # finds the package without running it
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            folders[os.path.realpath(folder) + os.sep] = name

    def refuse(name: str) -> None:
        raise ForbiddenImportError(
            f"the module '{name}' is not allowed in this assignment; remove 'import {name}'")

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            top = str(args[0]).partition(".")[0]
            if top in names:
                refuse(top)
        elif folders and event in ("open", "ctypes.dlopen"):
            if event == "open" and _writes(args):
                return  # no import: the read-only view refuses it anyway
            path = args[0] if args else None
            if isinstance(path, (str, bytes)) and path:
                real = os.path.realpath(os.fsdecode(path))
                for folder, name in folders.items():
                    if real.startswith(folder):
                        refuse(name)

    if names:
        sys.addaudithook(hook)


def _writes(args: tuple) -> bool:
    """True for an "open" audit event that opens for writing (mode string or os.open flags)."""
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR))


def student_frames(exc: BaseException, student_dir: str) -> str:
    """The traceback of exc restricted to frames in the student's own files."""
    student_dir = os.path.realpath(student_dir)
    lines = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<"):  # <frozen importlib...>, <string>
            continue
        path = os.path.realpath(frame.filename)
        if path.startswith(student_dir + os.sep):
            rel = os.path.relpath(path, student_dir)
            lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
            if frame.line:
                lines.append(f"    {frame.line.strip()}")
    if isinstance(exc, SyntaxError) and exc.filename:
        rel = os.path.basename(exc.filename)
        lines.append(f'  File "{rel}", line {exc.lineno}')
        if exc.text:
            lines.append(f"    {exc.text.strip()}")
    return "\n".join(lines)


def describe_exception(exc: BaseException, student_dir: str, limit_mb: int | None = None) -> dict:
    """A student-readable account of an exception raised by student code."""
    kind = "exception"
    if isinstance(exc, NotImplementedError):
        kind = "not_implemented"
        message = str(exc) or "not implemented yet"
    elif isinstance(exc, ForbiddenImportError):
        kind = "forbidden_import"
        message = str(exc)
    elif isinstance(exc, MemoryError):
        kind = "memory"
        message = "ran out of memory" + (f" (the limit is {limit_mb} MB)" if limit_mb else "")
    elif type(exc).__name__ == "OutOfMemoryError" and type(exc).__module__.startswith("torch"):
        kind = "memory"
        message = "ran out of GPU memory" + (
            f" (the limit is {limit_mb} MB of device memory)" if limit_mb else "")
    elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        kind = "file_size"
        message = "wrote too much output or too large a file (the file size limit was reached)"
    elif isinstance(exc, SystemExit):
        kind = "exit"
        message = f"your code called sys.exit({exc.code!r}); grading code must not exit"
    elif isinstance(exc, KeyboardInterrupt):
        kind = "exit"
        message = "your code raised KeyboardInterrupt"
    elif isinstance(exc, AttributeError) and isinstance(getattr(exc, "obj", None), ModuleType):
        kind = "missing"
        name = getattr(exc, "name", None) or "?"
        close = difflib.get_close_matches(name, [n for n in dir(exc.obj) if not n.startswith("_")])
        message = (f"your module has no function or class named '{name}'"
                   + (f" (did you mean '{close[0]}'? the name must match exactly)" if close else ""))
    else:
        text = _safe_str(exc)
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return {
        "ok": False,
        "kind": kind,
        "type": type(exc).__name__,
        "message": message[:2000],
        "traceback": student_frames(exc, student_dir)[:4000],
    }


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        return "<exception whose message could not be printed>"


IMPORT = "__import__"  # the request that only imports the student's module (the runner times it)


def call_probe(probes: Any, impl_loader: Any, name: str, kwargs: dict, student_dir: str,
               limit_mb: int | None = None) -> dict:
    """Run one probe and return {"ok": True, "value": ...} or an error account.

    The value is returned as encoded bytes under "encoded" so that an unencodable result is
    reported as the student's mistake rather than a crash.
    """
    seed_everything(call_seed(name, kwargs))
    try:
        impl = impl_loader()
        value = None if name == IMPORT else getattr(probes, name)(impl, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - anything student code raises is reported
        return describe_exception(exc, student_dir, limit_mb)
    try:
        return {"ok": True, "encoded": codec.encode(value)}
    except codec.CodecError as exc:
        return {"ok": False, "kind": "unencodable", "type": "TypeError",
                "message": str(exc), "traceback": ""}
    except BaseException as exc:  # noqa: BLE001 - e.g. a __len__ or __array__ that raises
        return describe_exception(exc, student_dir, limit_mb)


class _Loader:
    """Imports the student's module on first use and remembers a failure to import it."""

    def __init__(self, module: str):
        self.module = module
        self.value: Any = None
        self.error: BaseException | None = None

    def __call__(self) -> Any:
        if self.value is None and self.error is None:
            try:
                self.value = importlib.import_module(self.module)
            except BaseException as exc:  # noqa: BLE001
                self.error = exc
        if self.error is not None:
            raise self.error
        return self.value


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd: int) -> Any:
    (size,) = codec.HEADER.unpack(_read_exact(fd, codec.HEADER.size))
    return codec.decode(_read_exact(fd, size))


def _close_other_fds(keep: set[int]) -> None:
    """Close every inherited descriptor but the pipes and stdio (nothing else must lead out)."""
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _copy_submission(source: str, work: str) -> None:
    """Copy the submission into the worker's own (tmpfs) work folder: regular files only."""
    for dirpath, _dirnames, filenames in os.walk(source):
        rel = os.path.relpath(dirpath, source)
        target = os.path.normpath(os.path.join(work, rel))
        os.makedirs(target, exist_ok=True)
        for name in filenames:
            src = os.path.join(dirpath, name)
            if os.path.isfile(src) and not os.path.islink(src):
                with open(src, "rb") as fin, open(os.path.join(target, name), "wb") as fout:
                    while chunk := fin.read(1 << 20):
                        fout.write(chunk)


def _serve(rfd: int, wfd: int, config: dict) -> None:
    """The probe server (a forked child of the zygote): import the student's module lazily and
    answer probe requests until the parent closes the channel."""
    _limit_gpu(config)
    loader = _Loader(config["module"])
    while True:
        try:
            request = _read_frame(rfd)
        except EOFError:
            return
        _truncate_capture()
        reply = call_probe(probes_module, loader, request["probe"], request["kwargs"],
                           config["work"], config.get("memory_mb"))
        _flush()
        encoded = reply.pop("encoded", None)
        # the value travels already encoded: frame = header frame, then the value frame
        codec.write_frame(wfd, codec.encode(reply))
        if encoded is not None:
            codec.write_frame(wfd, encoded)


def _limit_gpu(config: dict) -> None:
    """On a GPU, cap this process's device memory before any student code runs (the zygote
    never touches CUDA: a fork after CUDA is initialised is broken)."""
    torch = sys.modules.get("torch")
    device, limit = config.get("device", "cpu"), config.get("gpu_memory_mb")
    if torch is None or not device.startswith("cuda") or not limit:
        return
    total = torch.cuda.get_device_properties(0).total_memory  # its one visible GPU
    torch.cuda.set_per_process_memory_fraction(min(1.0, (limit << 20) / total), 0)


def _preload(config: dict) -> None:
    """Import what every child needs once, in the zygote (torch: seconds), and set threads and
    determinism for the CPU."""
    for name in config.get("preload", []):
        importlib.import_module(name)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, int(config.get("threads", 1))))
        if config.get("device", "cpu") == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)


def _settle_rlimit(config: dict) -> None:
    """Where memory is bounded by an address-space limit (no cgroup, no torch), start the
    student's budget where the zygote's own address space ends, as the runner does for a
    cgroup: lowering a limit needs no privilege, and no student code has run yet."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return
    with open("/proc/self/status") as f:
        vm = next((int(line.split()[1]) << 10 for line in f if line.startswith("VmSize:")), None)
    if vm is not None:
        limit = min(soft, vm + (int(config.get("memory_mb", 0)) << 20))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _sweep(config: dict, child: int | None) -> None:
    """Kill the current child and everything it started. Inside its own PID namespace or as a
    uid of its own the zygote may kill every process it can signal (kill(-1) spares the
    caller); otherwise only the child's process group."""
    try:
        if config.get("sweep") == "all":
            os.kill(-1, signal.SIGKILL)
        elif child:
            os.killpg(child, signal.SIGKILL)
    except OSError:
        pass
    while True:  # reap every child of ours
        try:
            pid, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return
        if pid == 0:
            return


def drain(fd: int) -> None:
    """Throw away whatever is waiting in a pipe (a request the dead child never read)."""
    os.set_blocking(fd, False)
    try:
        while os.read(fd, 1 << 16):
            pass
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)


def what_holds(hide: list[str], bound: list[str]) -> dict[str, bool]:
    """Measured from inside, before the submission is copied or anything imported: no network
    interface but loopback; nothing in /tmp and /dev/shm but what the view binds there; none of
    the hidden folders can be listed. Anything that cannot be measured counts as not holding."""
    import socket

    def hidden(path: str) -> bool:
        try:
            os.listdir(path)
            return False
        except OSError:
            return True

    try:
        network = [name for _, name in socket.if_nameindex()] == ["lo"]
    except OSError:
        network = False
    try:
        tmp = all(set(os.listdir(d)) <= set(bound) for d in ("/tmp", "/dev/shm")
                  if os.path.isdir(d))
    except OSError:
        tmp = False
    return {"network": network, "tmp": tmp, "hidden": all(hidden(p) for p in hide)}


def main() -> None:
    """The zygote: set up once, then fork a fresh probe server whenever the parent asks.

    argv: the request pipe, the reply pipe, the control pipe in and the control pipe out. The
    control pipes are the zygote's alone (a child closes them): ``fork`` (answered ``forked``),
    and unasked, ``exited`` with the wait status when the child dies, so the parent never waits
    for a probe timeout to learn of a crash. The zygote is made non-dumpable, so a child cannot
    ptrace it, read its memory or open its descriptors through /proc.
    """
    global probes_module
    rfd, wfd, cin, cout = (int(a) for a in sys.argv[1:5])
    _close_other_fds({rfd, wfd, cin, cout})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing us
    config = _read_frame(cin)
    held = what_holds(config.get("hide", []), config.get("bound", []))
    harness, work = config["harness"], config["work"]
    if config.get("copy_from"):
        _copy_submission(config["copy_from"], work)
        os.chdir(work)
    sys.path.insert(0, harness)
    import probes  # type: ignore[import-not-found]  # the assignment's probes, never student code

    probes_module = probes
    _student_warnings(harness, work)
    _preload(config)
    _settle_rlimit(config)
    _set_dumpable(False)
    sys.path.append(work)  # last: a submission's numpy.py or json.py shadows nothing
    forbid_imports(config["forbidden"])
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    codec.write_frame(cout, codec.encode({"ready": True, "held": held}))
    child: int | None = None
    while True:
        ready, _, _ = select.select([cin, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 512)
            while child:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid == child:
                    child = None
                    codec.write_frame(cout, codec.encode({"exited": status}))
        if cin in ready:
            try:
                command = _read_frame(cin)
            except EOFError:
                _sweep(config, child)
                return
            if command.get("cmd") == "fork":
                _sweep(config, child)
                drain(rfd)
                child = os.fork()
                if child == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    for fd in (cin, cout, wake_r, wake_w):
                        os.close(fd)
                    if config.get("sweep") != "all":
                        os.setpgid(0, 0)
                    try:
                        _serve(rfd, wfd, config)
                    finally:
                        _flush()
                        os._exit(0)
                codec.write_frame(cout, codec.encode({"forked": True}))


probes_module: Any = None


def _student_warnings(harness: str, work: str) -> None:
    """Show warnings as a student reads them: the category and the message, and the line when
    it is in the student's own files; never a path of the grading machine (the venv, the
    harness, the sandbox) or a line of the graders' code."""
    here = os.path.realpath(work) + os.sep
    roots = sorted({(here, ""), (work.rstrip(os.sep) + os.sep, ""),
                    (harness, "<grader>"), (os.path.realpath(harness), "<grader>"),
                    (sys.prefix, "<python>"), (sys.base_prefix, "<python>")},
                   key=lambda r: -len(r[0]))

    def scrub(text: str) -> str:
        for root, name in roots:
            text = text.replace(root, name)
        return text

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
        path = os.path.realpath(filename)
        where = f" ({os.path.relpath(path, here)}, line {lineno})" if path.startswith(here) else ""
        try:
            sys.stderr.write(f"{category.__name__}: {scrub(str(message))}{where}\n")
        except (OSError, ValueError):
            pass

    warnings.showwarning = show


def _set_dumpable(flag: bool) -> None:
    """prctl(PR_SET_DUMPABLE): a non-dumpable process cannot be traced or read by its peers."""
    import ctypes

    try:
        ctypes.CDLL(None).prctl(4, int(flag), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001, S110 - a replaced or closed stream
            pass


def _truncate_capture() -> None:
    _flush()
    try:
        os.ftruncate(1, 0)
    except OSError:
        pass


if __name__ == "__main__":
    main()
