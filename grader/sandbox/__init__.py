"""The sandbox: where student code runs, and how much of the machine it gets.

``open_runner`` picks the strongest isolation level this machine allows (or the one asked for),
never weakening silently: the level in force is returned with the runner and reported.
"""

from __future__ import annotations

from dataclasses import replace

from grader.sandbox import isolation
from grader.sandbox.runner import (
    InProcessRunner,
    ProbeOutcome,
    Runner,
    WorkerRunner,
    WorkerSpec,
)

LEVELS = ("auto", "subprocess", "isolated")

__all__ = ["InProcessRunner", "ProbeOutcome", "Runner", "WorkerRunner", "WorkerSpec",
           "open_runner", "LEVELS"]


class IsolationUnavailable(RuntimeError):
    """The requested isolation level cannot be had on this machine."""


def open_runner(spec: WorkerSpec, level: str = "auto", slot: int = 0) -> tuple[WorkerRunner, dict]:
    """Start a sandboxed runner; return it with a report of the isolation actually in force."""
    if level not in LEVELS:
        raise ValueError(f"unknown isolation level {level!r}; choose from {', '.join(LEVELS)}")
    why_not = isolation.why_not_isolated(spec.python) if level in ("auto", "isolated") else None
    if level == "isolated" and why_not:
        raise IsolationUnavailable(f"isolated level unavailable: {why_not}")
    use_isolated = level != "subprocess" and why_not is None
    uid, lease = isolation.lease_uid(slot) if use_isolated else (None, None)
    if uid is not None:
        isolation.kill_uid(uid)  # whatever a crashed grader left running under this uid
    limits = replace(spec.limits, isolated=use_isolated, uid=uid)
    spec = replace(spec, limits=limits)
    bind = use_isolated and isolation.needs_bound_python(spec.python)
    runner = WorkerRunner(spec, "isolated" if use_isolated else "subprocess", bind_python=bind)
    runner.lease = lease  # closed with the runner: the uid is free again
    limits, python = runner.spec.limits, runner.spec.python  # measured as the worker runs
    report = {
        "level": runner.level,
        "network": "none" if isolation.has_private_network(limits, python) else "available",
        "memory_mb": limits.memory_mb,
        "timeout_s": spec.timeout,
        "hidden_paths": "unreadable" if isolation.hides_paths(limits, python)
        else "readable (same user)",
        "temp_dir": "private" if isolation.has_private_tmp(limits, python) else "shared",
    }
    if use_isolated:
        report["uid"] = limits.uid
    if bind:
        report["python"] = "bound read-only into the sandbox (its folder is closed to other users)"
    elif why_not and level == "auto":
        report["why_not_isolated"] = why_not
    return runner, report
