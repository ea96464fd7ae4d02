"""The Slurm backend: a batch graded as one Slurm job array, submitted with submitit.

A course's cluster already has a scheduler; we use it as it is, through submitit (the well-kept
library for Slurm job arrays), and keep no scheduler of our own. The batch is cut into shards,
each shard one task of the array; a task grades its shard with the local engine (``grade_one``:
the same sandbox, limits and results.json) into the out dir, so the shared filesystem is the
only transport. A task that fails or is preempted is submitted once more; a submission that
still has no results gets an error result, never a missing row.

The sharding, the collection and the retry are plain functions; the executor is a parameter
(submitit's ``local`` or ``debug`` executor runs the tasks on this machine, for tests).
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import results
from grader.assignments import Assignment
from grader.forkserver import GradingServer
from grader.grading import (
    GradingFailed,
    Submission,
    failed,
    fingerprints,
    grade_one,
    hidden_folders,
    up_to_date,
)

SHARD_SIZE = 10  # submissions per task when --shards is not given
POLL_S = 2.0  # how often finished tasks are looked for
VANISH_S = 20.0  # a task gone from the queue this long with no result file died (NFS lags)


@dataclass
class SlurmOptions:
    """What the array asks Slurm for. ``cluster`` is submitit's executor: ``slurm``, or
    ``local``/``debug`` to run the tasks on this machine."""

    partition: str | None = None
    gpus_per_task: int = 0
    time_min: int = 60
    array_parallelism: int = 32
    shards: int | None = None
    cluster: str = "slurm"


Task = Callable[..., list[str]]


def cut(subs: list[Submission], count: int | None) -> list[list[Submission]]:
    """Cut the batch into ``count`` shards (SHARD_SIZE submissions each when None), dealt round
    robin, so their sizes differ by one at most; never an empty shard."""
    if not subs:
        return []
    count = count or -(-len(subs) // SHARD_SIZE)
    count = max(1, min(count, len(subs)))
    return [subs[i::count] for i in range(count)]


def grade_shard(assignment: Assignment, shard: list[Submission], out_dir: Path, *,
                prints: dict[str, str], isolation: str, timeout: float | None, device: str,
                hide: list[str]) -> list[str]:
    """One task of the array, on a node: grade its submissions one after the other with the
    local engine; return their names. ``grade_one`` always writes a results.json, so a task
    that returns has graded its whole shard."""
    cache = out_dir / ".reference-cache"
    with GradingServer(assignment) as server:  # start-up paid once per task
        for s in shard:
            grade_one(assignment, s, out_dir, isolation=isolation, cache=cache, hide=hide,
                      timeout=timeout, device=device,
                      extra={"fingerprint": prints[s.name], "backend": "slurm"}, server=server)
    return [s.name for s in shard]


def settle(shard: list[Submission], out_dir: Path, error: BaseException | None,
           ) -> tuple[dict[str, dict[str, Any]], list[Submission]]:
    """What a finished task leaves: the results of its shard, and the submissions to grade
    again (all of them when the task failed: what a dying task wrote is not trusted)."""
    if error is not None:
        return {}, list(shard)
    got = {s.name: res for s in shard
           if (res := results.read(out_dir / s.name / "results.json")) is not None}
    return got, [s for s in shard if s.name not in got]


def give_up(subs: list[Submission], out_dir: Path, prints: dict[str, str],
            why: str) -> dict[str, dict[str, Any]]:
    """The rows of submissions whose task failed twice: a result that is up to date (by its
    fingerprint) is kept, every other one becomes an error result saying why."""
    kept = up_to_date(subs, out_dir, prints)
    return {s.name: kept.get(s.name) or failed(s, out_dir / s.name / "results.json",
                                               GradingFailed(why)) for s in subs}


def why_failed(job: Any, error: BaseException | None) -> str:
    """The error result's words for a task that failed twice: the job, and the last line of
    its traceback or the state it ended in (never the instructor's log paths)."""
    from submitit.core.utils import FailedJobError

    if isinstance(error, FailedJobError):
        trace = str(error).split("You can check full logs")[0]
        last = [line.strip() for line in trace.splitlines() if line.strip().strip("-")][-1]
    elif isinstance(error, Vanished):
        last = str(error)
    elif error is not None:
        last = f"it ended without a result, state {job.state}"
    else:
        last = "it ended without writing a results.json"
    return f"its Slurm task failed twice (job {job.job_id}: {last[:300]})"


def slurm_queue() -> set[str] | None:
    """The ids of this user's tasks that Slurm still lists (``12_3`` for an array task), or
    None when squeue cannot tell. submitit learns that a task died without a result from
    ``sacct``; this lets a cluster that keeps no accounting tell it too."""
    try:
        proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-u", str(os.getuid())],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return set(proc.stdout.split()) if proc.returncode == 0 else None


def make_executor(folder: Path, assignment: Assignment, options: SlurmOptions) -> Any:
    """A submitit executor for the array; its folder (logs, pickles) must be on the shared
    filesystem, which is why it lives in the out dir."""
    import submitit

    _quiet(logging.getLogger("submitit"))
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    executor.update_parameters(
        name=f"grade-{assignment.name}", timeout_min=options.time_min, cpus_per_task=1,
        slurm_partition=options.partition, slurm_gpus_per_task=options.gpus_per_task or None,
        slurm_array_parallelism=options.array_parallelism)
    return executor


def _quiet(log: logging.Logger) -> None:
    """submitit logs to stdout too, where the results table goes: keep its stderr handler only,
    and drop its warning on every poll of a cluster without accounting ("Bypassing sacct
    error"), which ``slurm_queue`` makes up for."""
    for handler in list(log.handlers):
        if getattr(handler, "stream", None) is sys.stdout:
            log.removeHandler(handler)
    if not any(getattr(f, "__name__", "") == "_no_sacct_noise" for f in log.filters):
        log.addFilter(_no_sacct_noise)


def _no_sacct_noise(record: logging.LogRecord) -> bool:
    return "Bypassing sacct error" not in record.getMessage()


class Vanished(RuntimeError):
    """A task that left the queue without a result (killed, cancelled, its node lost)."""


def run_array(executor: Any, task: Task, shards: list[list[Submission]], out_dir: Path,
              prints: dict[str, str], queue: Callable[[], set[str] | None] | None = None,
              ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Submit one array task per shard and yield (name, results) as tasks finish. A failed
    task is submitted once more (alone); what is still missing then gets an error result.
    ``queue`` (``slurm_queue`` on Slurm) lists the tasks still queued: one absent from it for
    VANISH_S with no result is a task that died. Tasks still queued or running when the caller
    stops (Ctrl-C) are cancelled."""
    pending = [(job, shard, 1) for job, shard in zip(executor.map_array(task, shards), shards)]
    absent: dict[str, float] = {}  # job id -> when it was first seen gone from the queue
    try:
        while pending:
            waiting = []
            listed = queue() if queue else None
            now = time.monotonic()
            gone = set() if listed is None else {j.job_id for j, _, _ in pending} - listed
            absent = {j: absent.get(j, now) for j in gone}
            for job, shard, attempt in pending:
                finished = job.done()
                if not finished and now - absent.get(job.job_id, now) < VANISH_S:
                    waiting.append((job, shard, attempt))
                    continue
                error = job.exception() if finished else Vanished(
                    "it left the queue without a result")
                got, again = settle(shard, out_dir, error)
                yield from got.items()
                if again and attempt == 1:
                    waiting.append((executor.submit(task, again), again, 2))
                elif again:
                    yield from give_up(again, out_dir, prints, why_failed(job, error)).items()
            pending = waiting
            if pending:
                time.sleep(POLL_S)
    finally:
        for job, _, _ in pending:
            if not job.done():
                job.cancel(check=False)


def grade_batch(assignment: Assignment, subs: list[Submission], out_dir: Path,
                options: SlurmOptions, *, isolation: str = "auto", skip_done: bool = False,
                progress: Callable[[str, dict], None] | None = None,
                timeout: float | None = None,
                students: dict[str, dict[str, str]] | None = None, executor: Any = None,
                task: Task = grade_shard) -> list[tuple[str, dict[str, Any]]]:
    """Grade the batch as a Slurm job array; return (name, results) in input order and write
    the gradebook, as ``grading.grade_batch`` does. Up-to-date results are kept (the same
    fingerprints); GPUs asked for per task mean the tasks grade on ``cuda``."""
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if options.gpus_per_task else "cpu"
    prints = fingerprints(assignment, subs, device)
    done = up_to_date(subs, out_dir, prints) if skip_done else {}
    todo = [s for s in subs if s.name not in done]
    try:
        if todo:
            executor = executor or make_executor(out_dir / ".slurm", assignment, options)
            bound = functools.partial(task, assignment, out_dir=out_dir, prints=prints,
                                      isolation=isolation, timeout=timeout, device=device,
                                      hide=hidden_folders(subs))
            queue = slurm_queue if options.cluster == "slurm" else None
            for name, res in run_array(executor, bound, cut(todo, options.shards), out_dir,
                                       prints, queue):
                done[name] = res
                if progress:
                    progress(name, res)
    finally:
        rows = [(s.name, done[s.name]) for s in subs if s.name in done]
        results.write_gradebook(out_dir / "gradebook.csv", rows, students)
    return rows
