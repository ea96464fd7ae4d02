"""`make bench`: what grading costs, measured here and now.

For every assignment: the median wall time and the peak resident memory (largest process) of
grading the reference through the CLI at each isolation level this machine allows, with the
ratio of each level to `subprocess` measured in the same run; then batch throughput over copies
of the reference at --jobs 1 and 2. Figures, not pass/fail: the machines are shared and noisy.
It fails only when grading one submission would not fit Gradescope's default container
(768 MB of memory, 10 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import assignments
from grader.sandbox import isolation

GRADESCOPE_MEMORY_MB = 768
GRADESCOPE_SECONDS = 600


def _grade(a: assignments.Assignment, subs: Path, out: Path, level: str, jobs: int = 1
           ) -> tuple[float, float]:
    """Run `grader grade` in a child; return (seconds, peak RSS of its largest process in MB)."""
    cmd = [sys.executable, "-m", "grader.cli", "grade", a.name, str(subs), "--out", str(out),
           "--isolation", level, "--jobs", str(jobs), "--regrade"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"grading failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024


def _docker_available(image: str) -> str | None:
    """None when the image can be run here, else why not."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return "no DOCKER_HOST (run `make docker` or docker/start-engine.sh)"
    try:
        import docker

        docker.from_env().images.get(image)
    except Exception as exc:  # noqa: BLE001 - no SDK, no engine, no image
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _grade_in_docker(a: assignments.Assignment, folder: Path, image: str) -> tuple[float, float]:
    """Grade one submission in the image under Gradescope's limits: (seconds, peak MB)."""
    import docker
    from grader.docker_backend import start_container

    with tempfile.TemporaryDirectory(prefix="grader-bench-dk-") as res:
        start = time.perf_counter()
        c = start_container(docker.from_env(), a, folder, Path(res), image=image)
        peak = 0.0
        try:
            while c.status != "exited":
                stats = c.stats(stream=False).get("memory_stats", {})
                peak = max(peak, stats.get("max_usage", 0) or stats.get("usage", 0) or 0)
                c.reload()
            seconds = time.perf_counter() - start
        finally:
            c.remove(force=True)
    return seconds, peak / 2**20


def _assignment_figures(a: assignments.Assignment, repeat: int) -> None:
    """tests/<a>/bench.py, when there is one: figures of the reference (e.g. a3's backward)."""
    script = a.tests_dir / "bench.py"
    if not script.exists():
        return
    code = (f"import sys, json; sys.path[:0] = [{str(a.reference_dir)!r}, {str(a.tests_dir)!r}]\n"
            f"import bench, {a.module} as m; print(json.dumps(bench.bench(m)))")
    runs = []
    for _ in range(repeat):  # a fresh process each time: no warm caches between runs
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for key in runs[0]:
        print(f"  reference: {key} {statistics.median(r[key] for r in runs):.3f} (median)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="grader-bench")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--copies", type=int, default=20)
    p.add_argument("--image", default="dlgrader:latest")
    args = p.parse_args(argv)
    levels = ["subprocess"] + (["isolated"] if isolation.why_not_isolated() is None else [])
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; levels: {', '.join(levels)};"
          f" medians of {args.repeat} runs")
    too_big = []
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        for a in assignments.all_assignments():
            one = Path(tmp) / a.name / "one"
            shutil.copytree(a.reference_dir, one / "reference")
            print(f"\n{a.name}: grading the reference")
            base = None
            for level in levels:
                runs = [_grade(a, one, Path(tmp) / "out", level) for _ in range(args.repeat)]
                wall = statistics.median(r[0] for r in runs)
                peak = max(r[1] for r in runs)
                base = base or wall
                print(f"  {level:10} wall {wall:6.2f} s  peak RSS {peak:6.0f} MB  "
                      f"ratio to subprocess {wall / base:4.2f}")
                if peak > GRADESCOPE_MEMORY_MB or wall > GRADESCOPE_SECONDS:
                    too_big.append(f"{a.name} ({level}): {wall:.1f} s, {peak:.0f} MB")
            why = _docker_available(args.image)
            if why:
                print(f"  docker     skipped: {why}")
            else:
                runs = [_grade_in_docker(a, one / "reference", args.image) for _ in range(3)]
                wall = statistics.median(r[0] for r in runs)
                peak = max(r[1] for r in runs)
                print(f"  docker     wall {wall:6.2f} s  peak memory {peak:6.0f} MB  (768 MB, "
                      f"0.5 CPU: Gradescope's default; median of 3)")
                if peak > GRADESCOPE_MEMORY_MB or wall > GRADESCOPE_SECONDS:
                    too_big.append(f"{a.name} (docker): {wall:.1f} s, {peak:.0f} MB")
            _assignment_figures(a, args.repeat)
            many = Path(tmp) / a.name / "many"
            for i in range(args.copies):
                shutil.copytree(a.reference_dir, many / f"copy{i:02d}")
            for jobs in (1, 2):
                wall, _ = _grade(a, many, Path(tmp) / f"out-many-{jobs}", levels[-1], jobs)
                print(f"  batch of {args.copies} at --jobs {jobs}: {wall:6.1f} s, "
                      f"{60 * args.copies / wall:5.1f} submissions/minute")
    if too_big:
        print("\ndoes not fit Gradescope's default container (768 MB, 10 min):\n  "
              + "\n  ".join(too_big))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
