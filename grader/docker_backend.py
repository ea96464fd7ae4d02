"""The docker backend: each submission graded inside the grading image, as Gradescope would.

One container per submission: ``--network none``, Gradescope's default limits (768 MB, half a
CPU) unless told otherwise, the submission mounted read-only at /autograder/submission and the
results read back from a mounted /autograder/results. Containers are always removed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from grader import results
from grader.assignments import Assignment

GRADESCOPE_MEMORY = "768m"
GRADESCOPE_NANO_CPUS = 500_000_000


def start_container(client: Any, a: Assignment, submission: Path, results_dir: Path, *,
                    image: str, memory: str = GRADESCOPE_MEMORY,
                    nano_cpus: int = GRADESCOPE_NANO_CPUS) -> Any:
    """Start run_autograder on one submission folder, results into results_dir (detached)."""
    return client.containers.run(
        image, "/autograder/run_autograder", detach=True, network_mode="none",
        mem_limit=memory, memswap_limit=memory, nano_cpus=nano_cpus,
        environment={"GRADER_ASSIGNMENT": a.name},
        volumes={str(submission): {"bind": "/autograder/submission", "mode": "ro"},
                 str(results_dir): {"bind": "/autograder/results", "mode": "rw"}})


def grade_one(a: Assignment, sub: Any, out_dir: Path, *, image: str = "dlgrader:latest",
              memory: str = GRADESCOPE_MEMORY, nano_cpus: int = GRADESCOPE_NANO_CPUS,
              timeout: float | None = None) -> dict[str, Any]:
    """Grade one submission in a fresh container; always return (and write) a results.json."""
    import docker  # the SDK; DOCKER_HOST picks the engine
    from grader.grading import stage

    start = time.monotonic()
    out_dir = out_dir.resolve()
    result_path = out_dir / sub.name / "results.json"
    work = Path(tempfile.mkdtemp(prefix="grader-docker-"))
    container = None
    try:
        folder, _ = stage(a, sub, work)
        (work / "results").mkdir()
        container = start_container(docker.from_env(), a, folder, work / "results", image=image,
                                    memory=memory, nano_cpus=nano_cpus)
        problem = None
        try:
            status = container.wait(timeout=timeout or a.total_timeout + 60)
            if status.get("StatusCode", 1) != 0:
                problem = f"the container exited with status {status.get('StatusCode')}"
        except Exception as exc:  # noqa: BLE001 - the SDK raises requests' timeout types
            problem = f"the container did not finish in time ({type(exc).__name__})"
            container.kill()
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
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        shutil.rmtree(work, ignore_errors=True)
