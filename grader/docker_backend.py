"""The docker backend: each submission graded inside the grading image, as Gradescope would.

One container per submission: ``--network none``, Gradescope's default limits (768 MB, half a
CPU) unless told otherwise, the submission mounted read-only at /autograder/submission and the
results read back from a mounted /autograder/results. Containers are always removed (each has
a name of its own, so one a failed API call left behind is found), and an engine that fails
costs one submission an error result, never the batch.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from grader import results
from grader.assignments import Assignment

GRADESCOPE_MEMORY = "768m"
GRADESCOPE_NANO_CPUS = 500_000_000
API_TIMEOUT_S = 300  # one API call; a loaded engine on vfs took over 60 s to start a container
API_TRIES = 3
CONTAINER_UID_BASE = 63000  # the image's default too (docker/Dockerfile)
CONTAINER_UID_BASES = 500  # the last base's trial uid (base + 1999) stays below nobody (65534)
API_PAUSE_S = 2.0


def uid_base(slot: int) -> int:
    """The first sandbox uid of a container, from the submission's place in the batch (those
    graded at once are near each other in it). Containers share the kernel's uids, and
    RLIMIT_NPROC counts a uid's processes across all of them: containers graded at once must not
    lease the same uid, nor a host grader's (61000-62999)."""
    return CONTAINER_UID_BASE + slot % CONTAINER_UID_BASES


def start_container(client: Any, a: Assignment, submission: Path, results_dir: Path, *,
                    image: str, memory: str = GRADESCOPE_MEMORY,
                    nano_cpus: int = GRADESCOPE_NANO_CPUS, name: str | None = None,
                    slot: int = 0) -> Any:
    """Start run_autograder on one submission folder, results into results_dir (detached)."""
    return client.containers.run(
        image, "/autograder/run_autograder", detach=True, network_mode="none", name=name,
        mem_limit=memory, memswap_limit=memory, nano_cpus=nano_cpus,
        environment={"GRADER_ASSIGNMENT": a.name, "DLGRADER_UID_BASE": str(uid_base(slot))},
        volumes={str(submission): {"bind": "/autograder/submission", "mode": "ro"},
                 str(results_dir): {"bind": "/autograder/results", "mode": "rw"}})


def _remove(client: Any, name: str) -> None:
    """Remove the container of this name, whatever state a failed call left it in ("Created"
    after a start that timed out on our side)."""
    for _ in range(API_TRIES):
        try:
            client.containers.get(name).remove(force=True)
            return
        except Exception as exc:  # noqa: BLE001 - the SDK's NotFound, or the engine is slow
            if type(exc).__name__ == "NotFound":
                return
            time.sleep(API_PAUSE_S)


def _start_with_retries(client: Any, name: str, **kwargs: Any) -> Any:
    """Start the container, again after a failed call (a slow engine answers late): a leftover
    of the failed try is removed first. Raises the last error after API_TRIES tries."""
    for attempt in range(API_TRIES):
        try:
            return start_container(client, name=name, **kwargs)
        except Exception:  # noqa: BLE001 - requests' timeouts, the SDK's APIError
            _remove(client, name)
            if attempt == API_TRIES - 1:
                raise
            time.sleep(API_PAUSE_S * (attempt + 1))
    raise AssertionError("unreachable")


def grade_one(a: Assignment, sub: Any, out_dir: Path, *, image: str = "dlgrader:latest",
              memory: str = GRADESCOPE_MEMORY, nano_cpus: int = GRADESCOPE_NANO_CPUS,
              timeout: float | None = None, client: Any = None, slot: int = 0) -> dict[str, Any]:
    """Grade one submission in a fresh container; always return (and write) a results.json.
    A Docker API call that fails or times out is tried again; if the engine still fails, this
    submission gets an error result (the batch goes on) and its container is removed."""
    from grader.grading import stage

    start = time.monotonic()
    out_dir = out_dir.resolve()
    result_path = out_dir / sub.name / "results.json"
    work = Path(tempfile.mkdtemp(prefix="grader-docker-"))
    name = f"dlgrader-{uuid.uuid4().hex[:16]}"
    wait_s = timeout or a.total_timeout + 60
    try:
        if client is None:
            import docker  # the SDK; DOCKER_HOST picks the engine

            client = docker.from_env(timeout=API_TIMEOUT_S)
        folder, _ = stage(a, sub, work)
        (work / "results").mkdir()
        problem = None
        try:
            container = _start_with_retries(client, name, a=a, submission=folder,
                                            results_dir=work / "results", image=image,
                                            memory=memory, nano_cpus=nano_cpus, slot=slot)
        except Exception as exc:  # noqa: BLE001
            container, problem = None, f"the Docker engine did not start it: {exc}"
        if container is not None:
            try:
                status = container.wait(timeout=wait_s)
                if status.get("StatusCode", 1) != 0:
                    problem = f"the container exited with status {status.get('StatusCode')}"
            except Exception as exc:  # noqa: BLE001 - the SDK raises requests' timeout types
                problem = f"the container did not finish in time ({type(exc).__name__})"
                try:
                    container.kill()
                except Exception:  # noqa: BLE001 - gone already
                    pass
        res = results.read(work / "results" / "results.json")
        if res is None:
            res = results.failure(f"The grading container left no results ({problem}).", 100.0,
                                  extra={"submission": sub.name, "status": "error"},
                                  execution_time=time.monotonic() - start)
        res.setdefault("extra_data", {}).update({"submission": sub.name, "backend": "docker",
                                                 "image": image})
        results.write(result_path, res)
        return res
    finally:
        if client is not None:
            _remove(client, name)
        shutil.rmtree(work, ignore_errors=True)
