"""The sandbox: where student code runs, and how much of the machine it gets.

``open_runner`` picks the strongest isolation level this machine allows (or the one asked for),
never weakening silently: the level in force is returned with the runner and reported.
"""

from __future__ import annotations

import sys
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
           "IsolationUnavailable", "open_runner", "refusal", "LEVELS"]


class IsolationUnavailable(RuntimeError):
    """The requested isolation level cannot be had on this machine."""


def refusal(level: str, python: str = sys.executable) -> str | None:
    """Why workers cannot be started at this level here, or None: as root, student code only
    ever runs as a sandbox uid (a worker running as root could undo its own sandbox)."""
    if level not in LEVELS:
        return f"unknown isolation level {level!r}; choose from {', '.join(LEVELS)}"
    why_not = isolation.why_not_isolated(python)
    if isolation.is_root() and level == "subprocess":
        return ("as root, --isolation subprocess would run student code as root; "
                "use --isolation auto or isolated")
    if why_not and (level == "isolated" or isolation.is_root()):
        return f"the isolated level is unavailable: {why_not}"
    return None


UNMEASURED = "not measured (no worker started)"


def open_runner(spec: WorkerSpec, level: str = "auto", slot: int = 0) -> tuple[WorkerRunner, dict]:
    """Start a sandboxed runner; return it with a report of the isolation actually in force."""
    why = refusal(level, spec.python)
    if why:
        raise IsolationUnavailable(why)
    facts = isolation.sandbox_facts(spec.python)
    why_not = facts["why_not_isolated"]
    use_isolated = level != "subprocess" and why_not is None
    uid, lease = isolation.lease_uid(slot) if use_isolated else (None, None)
    if uid is not None and not facts["bwrap"]:  # (a sandbox dies with its grader: bwrap's
        isolation.kill_uid(uid)  # --die-with-parent) whatever a crashed grader left running
    spec = replace(spec, limits=replace(spec.limits, uid=uid))
    runner = WorkerRunner(spec, "isolated" if use_isolated else "subprocess",
                          use_bwrap=facts["bwrap"])
    runner.lease = lease  # closed with the runner: the uid is free again
    limits = runner.spec.limits
    if facts["bwrap"]:
        sandbox = "bubblewrap (allowlist view)"
    else:
        sandbox = ("uid and file modes" if use_isolated else "none") + (
            f"; bubblewrap: {facts['why_no_bwrap']}")
    report = {
        "level": runner.level,
        "sandbox": sandbox,
        "memory": limits.memory_mechanism,
        "network": UNMEASURED,
        "memory_mb": limits.memory_mb,
        "timeout_s": spec.timeout,
        "hidden_paths": UNMEASURED,
        "temp_dir": UNMEASURED,
    }
    if use_isolated:
        report["uid"] = limits.uid
    elif why_not and level == "auto":
        report["why_not_isolated"] = why_not
    runner.report = report  # measured as the worker runs, never assumed: it fills these in
    return runner, report
