"""Grading submissions: one trusted pytest run per submission, many at once in a batch.

``grade_batch`` prepares each submission (a folder or a single .py file) and hands its spec to
its slot's grading server (grader.forkserver), whose fresh child runs ``main(SPEC)``: the judges
with the plugin, and the plugin starts the sandboxed worker. A valid results.json is guaranteed
even when that child dies or overruns. The batch never stops for one submission.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import forkserver, intake, notebook, results, staging
from grader.assignments import Assignment, cuda_present, fingerprint, parse_device
from grader.forkserver import GradingServer, ServerFailed
from grader.sandbox import isolation as sandbox_isolation

GRADING_INI = "[pytest]\naddopts = -p no:cacheprovider\npython_files = test_*.py\n"


class DeviceUnavailable(RuntimeError):
    """The device asked for cannot be had here (said before the batch starts, never a silent
    fall back to the CPU)."""


_TORCH_GPUS = ("import json, torch\n"
               "n = torch.cuda.device_count() if torch.cuda.is_available() else 0\n"
               "print(json.dumps([torch.cuda.get_device_name(i) for i in range(n)]))\n")


def cuda_devices(python: str = sys.executable) -> tuple[list[str], str]:
    """The names of the CUDA devices torch can use here (index = N of ``cuda:N``, after the
    grader's own CUDA_VISIBLE_DEVICES), and why there are none. torch is asked in a child process,
    and only when ``cuda_present`` (device nodes, ``nvidia-smi -L``) saw a GPU, so the trusted
    process never imports torch and a machine without a GPU pays nothing."""
    if not cuda_present():
        return [], "no NVIDIA GPU here (no /dev/nvidia*, `nvidia-smi -L` lists none)"
    try:
        proc = subprocess.run([python, "-I", "-c", _TORCH_GPUS], capture_output=True, text=True,
                              timeout=300, cwd="/")
    except (OSError, subprocess.SubprocessError) as exc:
        return [], f"asking torch for its GPUs failed ({type(exc).__name__})"
    try:
        names = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (proc.stderr.strip().splitlines() or ["no answer"])[-1][:200]
        return [], f"torch cannot be asked for its GPUs ({last})"
    if not names:
        return [], "a GPU is here, but torch.cuda.is_available() is False (a CPU build of torch?)"
    return [str(n) for n in names], ""


def resolve_device(requested: str, assignment: Assignment | None = None,
                   ) -> tuple[str, list[str]]:
    """``auto`` -> ``cuda`` when torch can use a GPU here, else ``cpu`` (always ``cpu`` for an
    assignment that forbids torch: no GPU to ask for); ``cuda`` and ``cuda:N`` stay as they are
    when such a device exists, else DeviceUnavailable says why. Returns the device and the names
    of the GPUs torch sees (index = N)."""
    requested = parse_device(requested)
    if requested == "cpu" or (requested == "auto" and assignment is not None
                              and "torch" in assignment.forbidden_imports):
        return "cpu", []
    names, why = cuda_devices()
    if requested == "auto":
        return ("cuda" if names else "cpu"), names
    if not names:
        raise DeviceUnavailable(f"--device {requested}: {why}")
    index = requested.partition(":")[2]
    if index and int(index) >= len(names):
        raise DeviceUnavailable(f"--device {requested}: torch sees {len(names)} GPU(s) here "
                                f"(cuda:0 to cuda:{len(names) - 1})")
    return requested, names


class GradingFailed(RuntimeError):
    """The grading machinery failed, not the submission (a cluster task that died twice): its
    message is the submission's error result as it is."""


@dataclass
class Submission:
    name: str
    path: Path  # a folder or a single file
    judges: list[str] | None = None  # only these judges (a mutant: the ones it names); all if None


def discover(assignment: Assignment, paths: list[Path]) -> list[Submission]:
    """Each path is one submission (a .py, .ipynb or .zip file, or a folder with the student's
    files) or a folder of submissions (one per entry), by the rule in grader.intake: every
    entry of a batch folder gets a row. The paths given are the instructor's and are followed;
    an entry of a batch folder is not: a link, FIFO or socket there is a submission that
    staging turns into a graded zero saying why."""
    subs = [Submission(name, path) for name, path in intake.inputs(assignment, paths)]
    seen: dict[str, int] = {}
    for s in subs:  # two submissions with one name would share an output folder
        if s.name in seen:
            seen[s.name] += 1
            s.name = f"{s.name}-{seen[s.name]}"
        else:
            seen[s.name] = 1
    return subs


def stage(assignment: Assignment, sub: Submission, into: Path) -> tuple[Path, dict[str, str]]:
    """Copy a submission's regular files into a fresh folder (grader.staging: no links, FIFOs
    or devices, bounded sizes; a .zip unpacked first) and choose the graded file
    (grader.intake: through single wrapping folders; the module by name, else the notebook,
    else the only .py/.ipynb, renamed to the module), turning a notebook into the module.
    Return the folder and what was graded; the trusted side reads student files only from
    that folder. intake.NothingToGrade (a graded zero listing what was found) when no file
    can be graded."""
    prepared = intake.prepare(assignment, sub.path, into)
    folder, skipped = prepared.folder, prepared.skipped
    said = "\n\n".join(prepared.notes)
    info = {"graded_file": prepared.graded,
            **({"notice": "\n\n".join(filter(None, [said, skipped]))} if said or skipped
               else {})}
    if prepared.notes:
        info["intake"] = prepared.notes  # type: ignore[assignment]
    module = folder / assignment.module_file
    if prepared.notebook is None:
        return folder, info
    chosen = prepared.notebook
    notice = ""
    try:
        source, notes = notebook.to_module(chosen)
        if notes:
            notice = (f"Graded the definitions in `{chosen.name}`; the grader did not run:"
                      "\n" + "\n".join(f"- {n}" for n in notes[:20]))
    except notebook.NotebookError as exc:
        source = f"raise ImportError({str(exc)!r})\n"
        notice = f"Could not grade `{chosen.name}`: {exc}"
    if notice:
        info["notice"] = "\n\n".join(filter(None, [said, skipped, notice]))
    fd = os.open(module, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:  # a fresh file: never through a link
        f.write(source)
    return folder, info


def grade_one(assignment: Assignment, sub: Submission, out_dir: Path, *, isolation: str = "auto",
              slot: int = 0, cache: Path | None = None, hide: list[str] | None = None,
              timeout: float | None = None, extra: dict | None = None, device: str = "cpu",
              device_name: str = "", server: GradingServer | None = None) -> dict[str, Any]:
    """Grade one submission; always return (and write) a valid results.json: a failure while
    staging, converting or grading is this submission's graded zero with the reason.

    The judges run in a fresh child of ``server`` (grader.forkserver: a batch passes each slot's
    own; without one, a server is started for this submission alone).

    ``device`` is ``cpu`` or ``cuda:N`` (``auto`` and ``cuda`` are resolved here, ``cuda`` to
    ``cuda:0``; DeviceUnavailable, before anything is graded, when there is no such device)."""
    if device != "cpu" and (device in ("auto", "cuda") or not device_name):
        device, names = resolve_device(device, assignment)
        device = "cuda:0" if device == "cuda" else device
        if device != "cpu":
            device_name = names[int(device.partition(":")[2])]
    start = time.monotonic()
    out_dir = out_dir.resolve()  # the grading process runs in its own folder
    result_path = out_dir / sub.name / "results.json"
    if result_path.exists():
        result_path.unlink()
    stale = result_path.parent / "figures"  # a regrade that dies must not show old figures
    if stale.is_dir() and not stale.is_symlink():
        shutil.rmtree(stale, ignore_errors=True)
    jobs_root = forkserver.jobs_root()
    work = Path(tempfile.mkdtemp(prefix="grader-job-", dir=jobs_root))
    try:
        folder, graded = stage(assignment, sub, work)
        spec = {
            "assignment": assignment.name, "root": str(assignment.root),
            "submission": str(folder), "results": str(result_path),
            "isolation": isolation, "slot": slot, "cache": str(cache) if cache else None,
            "isolation_facts": sandbox_isolation.sandbox_facts()
            if isolation in ("auto", "isolated") else None,
            "hide": [str(out_dir.resolve()), str(jobs_root), *(hide or [])], "timeout": timeout,
            "device": device, "device_name": device_name, "judges": sub.judges,
            "extra": {"submission": sub.name, **graded, **(extra or {})},
        }
        (work / "spec.json").write_text(json.dumps(spec))
        (work / "grading.ini").write_text(GRADING_INI)
        log = work / "pytest.log"
        own = server is None  # one submission alone: a server of its own, for it alone
        if server is None:
            server = GradingServer(assignment)
        try:
            code, problem = server.run(work / "spec.json", log, assignment.total_timeout)
            if problem is None and code not in (0, 1):
                problem = f"pytest exited with {code}"
        except ServerFailed as exc:
            problem = str(exc)
        finally:
            if own:
                server.close()
        res = results.read(result_path)
        if res is None:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            msg = (f"The autograder could not grade this submission ({problem or 'no results'})."
                   "\n\n" + results.code_block(tail))
            res = results.failure(msg, max_score=100.0,
                                  extra={"submission": sub.name, "status": "error"},
                                  execution_time=time.monotonic() - start)
            results.write(result_path, res)
        return res
    except Exception as exc:  # noqa: BLE001 - one submission's failure is its zero, not the batch's
        return failed(sub, result_path, exc, time.monotonic() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def reason(exc: BaseException) -> str:
    """Why a submission could not be prepared, in the student's words: no grader paths, no
    traceback of grader code."""
    if isinstance(exc, (staging.StagingError, notebook.NotebookError, GradingFailed)):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "it is nested too deeply to be read"
    if isinstance(exc, MemoryError):
        return "it is too large to be read"
    if isinstance(exc, OSError):
        return f"one of its files could not be read ({exc.strerror or type(exc).__name__})"
    return f"it could not be read ({type(exc).__name__})"


def failed(sub: Submission, result_path: Path, exc: BaseException,
           elapsed: float = 0.0) -> dict[str, Any]:
    """Write and return the graded zero of a submission that could not be graded (status
    ``graded`` when intake found no file to grade: the student's mistake, said in words)."""
    if isinstance(exc, intake.NothingToGrade):
        res = results.failure(str(exc), max_score=100.0,
                              extra={"submission": sub.name, "status": "graded"},
                              execution_time=elapsed)
        results.write(result_path, res)
        return res
    res = results.failure(f"The autograder could not grade this submission: {reason(exc)}.",
                          max_score=100.0, extra={"submission": sub.name, "status": "error"},
                          execution_time=elapsed)
    results.write(result_path, res)
    return res


def grade_batch(assignment: Assignment, subs: list[Submission], out_dir: Path, *, jobs: int = 1,
                isolation: str = "auto", skip_done: bool = False,
                progress: Callable[[str, dict], None] | None = None,
                timeout: float | None = None, backend: str = "local",
                image: str = "dlgrader:latest",
                students: dict[str, dict[str, str]] | None = None, device: str = "cpu",
                gpus: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Grade many submissions, ``jobs`` at a time; return (name, results) in input order.

    ``device``: ``cpu`` (the default), or ``auto``/``cuda``/``cuda:N`` (resolved here unless
    ``gpus``, the names of the GPUs torch sees, comes with it). On a GPU each grading process
    holds one GPU for its whole grading, one grading per GPU at a time: ``cuda`` hands each
    grading a free GPU from a pool (at most as many jobs as GPUs), ``cuda:N`` grades one
    submission at a time on GPU N. On the CPU, ``jobs`` gradings run at once as always.
    """
    out_dir = out_dir.resolve()
    if device != "cpu" and gpus is None:
        device, gpus = resolve_device(device, assignment)
    gpus = gpus or []
    index = device.partition(":")[2]
    if device != "cpu" and (not gpus or (index and int(index) >= len(gpus))):
        raise DeviceUnavailable(f"--device {device}: torch sees {len(gpus)} GPU(s) here")
    free: queue.Queue[int] = queue.Queue()
    if device == "cuda":
        for i in range(len(gpus)):
            free.put(i)
        jobs = min(jobs, len(gpus))
    elif device != "cpu":
        jobs = 1
    if device != "cpu" and backend == "docker":
        raise DeviceUnavailable("the docker backend grades on the CPU (--device cpu)")
    if backend == "docker":
        from grader import docker_backend

        def grade(s: Submission, slot: int) -> dict[str, Any]:
            res = docker_backend.grade_one(assignment, s, out_dir, image=image, slot=slot)
            res["extra_data"]["fingerprint"] = prints[s.name]
            results.write(out_dir / s.name / "results.json", res)
            return res
    else:
        def grade(s: Submission, slot: int) -> dict[str, Any]:
            gpu = free.get() if device == "cuda" else None  # a free GPU: never two on one
            server = servers.take()
            try:
                dev = device if gpu is None else f"cuda:{gpu}"
                name = gpus[int(dev.partition(":")[2])] if dev != "cpu" else ""
                return grade_one(assignment, s, out_dir, isolation=isolation, slot=slot,
                                 cache=cache, hide=hide, timeout=timeout,
                                 extra={"fingerprint": prints[s.name]}, device=dev,
                                 device_name=name, server=server)
            finally:
                servers.give_back(server)
                if gpu is not None:
                    free.put(gpu)

    def guarded(s: Submission, slot: int) -> dict[str, Any]:
        try:
            return grade(s, slot)
        except Exception as exc:  # noqa: BLE001 - one submission's failure is its zero only
            return failed(s, out_dir / s.name / "results.json", exc)

    out_dir.mkdir(parents=True, exist_ok=True)
    servers = forkserver.Pool(assignment)  # at most `jobs` grading processes, each kept up
    cache = out_dir / ".reference-cache"
    hide = hidden_folders(subs)
    prints = fingerprints(assignment, subs, device)
    done = up_to_date(subs, out_dir, prints) if skip_done else {}
    todo = [s for s in subs if s.name not in done]
    if todo:  # fill the reference cache once, so parallel jobs do not all compute it
        first, rest = todo[0], todo[1:]
        done[first.name] = guarded(first, 0)
        if progress:
            progress(first.name, done[first.name])
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(guarded, s, i + 1): s for i, s in enumerate(rest)}
            try:
                for fut in as_completed(futures):
                    s = futures[fut]
                    done[s.name] = fut.result()
                    if progress:
                        progress(s.name, done[s.name])
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                servers.close()
                rows = [(s.name, done[s.name]) for s in subs if s.name in done]
                results.write_gradebook(out_dir / "gradebook.csv", rows, students)
    rows = [(s.name, done[s.name]) for s in subs if s.name in done]
    results.write_gradebook(out_dir / "gradebook.csv", rows, students)
    return rows


def fingerprints(assignment: Assignment, subs: list[Submission], device: str = "cpu",
                 ) -> dict[str, str]:
    """Each submission's fingerprint: its files, the graders' and the engine's, and whether it
    is graded on a GPU (results of another device are not up to date for this one)."""
    graders = fingerprint([assignment.tests_dir, assignment.reference_dir, Path(__file__).parent])
    if device != "cpu":
        graders += ":cuda"
    return {s.name: _fingerprint(s, graders) for s in subs}


def up_to_date(subs: list[Submission], out_dir: Path,
               prints: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The results in out_dir that a rerun may keep: those whose fingerprint is the
    submission's (never one whose fingerprint could not be taken)."""
    done = {}
    for s in subs:
        prev = results.read(out_dir / s.name / "results.json")
        if (prev is not None and prints[s.name]
                and prev.get("extra_data", {}).get("fingerprint") == prints[s.name]):
            done[s.name] = prev
    return done


def hidden_folders(subs: list[Submission]) -> list[str]:
    """The folders no worker of this batch may see: every submission's source folder."""
    return sorted({_source_folder(s.path) for s in subs})


def _fingerprint(sub: Submission, salt: str) -> str:
    """The submission's fingerprint, or '' (always regraded) when it cannot be taken: staging
    then says what is wrong with it."""
    try:
        return fingerprint([sub.path], salt)
    except Exception:  # noqa: BLE001 - RecursionError, MemoryError, OSError...
        return ""


def _source_folder(path: Path) -> str:
    """The folder the workers must not see: the submission's own, else the one holding it
    (resolving only the instructor's part of the path, never a student's link)."""
    parent = path.parent.resolve()
    return str(parent / path.name if path.is_dir() and not path.is_symlink() else parent)


def main(spec_path: str) -> int:
    """The grading of one spec (in a fresh child of the grading server, or as
    ``python -m grader.grading SPEC``): run the judges with the plugin."""
    import pytest

    from grader import plugin

    plugin.prepare(spec_path)  # the sandbox boots while pytest starts
    spec = json.loads(Path(spec_path).read_text())
    tests_dir = Path(spec["root"]) / "tests" / spec["assignment"]
    ini = Path(spec_path).parent / "grading.ini"
    args = [str(tests_dir), "-c", str(ini), "--rootdir", str(tests_dir),
            "--confcutdir", str(tests_dir), "-p", "grader.plugin", "--grader-spec", spec_path,
            "-q", "--no-header", "-rN", "--tb=no", "-p", "no:randomly"]
    try:
        return int(pytest.main(args))
    finally:  # pytest stopped before taking it (a usage error): its sandbox goes all the same
        for session in plugin.PREPARED.values():
            session.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
