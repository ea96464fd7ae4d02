"""`make bench`: what grading costs, measured here and now.

For every assignment: the median wall time and the peak resident memory (largest process) of
grading the reference through the CLI with each sandbox this machine allows (the bubblewrap
allowlist, the fallback without it, and the sandbox as it was before Sandbox v2, checked out
from git), runs interleaved and the ratios taken in the same run; then batch throughput over
copies of the reference at --jobs 1 and 2. Figures, not pass/fail: the machines are shared and noisy.
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
from dataclasses import dataclass, field
from pathlib import Path

from grader import assignments
from grader.sandbox import isolation

GRADESCOPE_MEMORY_MB = 768
GRADESCOPE_SECONDS = 600


SANDBOX_V1 = "b52bab2"  # the last commit before Sandbox v2 (issue 10), for the comparison
PER_SUBMISSION = "4c54c17"  # the last commit that started a grading process per submission


@dataclass
class Variant:
    """One way of grading: a sandbox setting, or another checkout of the grader."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    tree: Path | None = None  # run this checkout's grader (cwd first on sys.path), not ours


def _variants(tmp: Path) -> list[Variant]:
    level = "isolated" if isolation.why_not_isolated() is None else "subprocess"
    found = [Variant(f"{level}, " + ("bubblewrap" if isolation.sandbox_facts()["bwrap"]
                                     else "no bubblewrap"))]
    os.environ["DLGRADER_BWRAP"] = "0"
    try:
        if isolation.sandbox_facts()["why_not_isolated"] is None or not isolation.is_root():
            found.append(Variant(f"{level}, fallback", {"DLGRADER_BWRAP": "0"}))
    finally:
        del os.environ["DLGRADER_BWRAP"]
    old = _checkout(SANDBOX_V1, tmp)
    if old is not None:
        found.append(Variant(f"before v2 ({SANDBOX_V1})", tree=old))
    return found


def _cuda_torch() -> str:
    """The CUDA version torch here was built for ('' for a CPU build or no torch): a CUDA
    build's resident memory is not what Gradescope's CPU image uses."""
    proc = subprocess.run([sys.executable, "-c", "import torch; print(torch.version.cuda or '')"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _checkout(commit: str, tmp: Path) -> Path | None:
    """This repository's tree at ``commit``, unpacked under tmp (None, said why, without git)."""
    folder = tmp / f"tree-{commit}"
    root = Path(__file__).resolve().parent.parent
    git = subprocess.run(f"mkdir -p {folder} && git -C {root} archive {commit} | tar -x -C {folder}",
                         shell=True, capture_output=True)
    if git.returncode != 0:
        print(f"  (no comparison with {commit}: {git.stderr.decode().strip()[:120]})")
        return None
    return folder


def _batches(a: assignments.Assignment, tmp: Path, copies: int, repeat: int,
             per_submission: Path | None) -> None:
    """Batch throughput over copies of the reference at --jobs 1 and 2: this grader (one
    grading process per slot, kept up) against the one that started a process per submission,
    interleaved, medians of ``repeat``; seconds per submission are the batch's wall time
    (the CLI's own start-up included) over its size."""
    many = tmp / a.name / "many"
    for i in range(copies):
        shutil.copytree(a.reference_dir, many / f"copy{i:02d}")
    variants = [Variant("a process per slot")]
    if per_submission is not None and (per_submission / "tests" / a.name).is_dir():
        variants.append(Variant(f"a process per submission ({PER_SUBMISSION})",
                                tree=per_submission))
    for jobs in (1, 2):
        runs: dict[str, list[float]] = {v.name: [] for v in variants}
        for _ in range(repeat):
            for v in variants:
                runs[v.name].append(_grade(a, many, tmp / f"out-many-{jobs}", v, jobs)[0])
        base = statistics.median(runs[variants[-1].name])
        for v in variants:
            wall = statistics.median(runs[v.name])
            print(f"  batch of {copies} at --jobs {jobs}, {v.name:36} {wall / copies:5.2f} "
                  f"s/submission, {60 * copies / wall:6.1f} submissions/minute, "
                  f"ratio {wall / base:4.2f}")


def _grade(a: assignments.Assignment, subs: Path, out: Path, variant: Variant | None = None,
           jobs: int = 1) -> tuple[float, float]:
    """Run `grader grade` in a child; return (seconds, peak RSS of its largest process in MB)."""
    variant = variant or Variant("default")
    cmd = [sys.executable, "-m", "grader.cli", "grade", a.name, str(subs), "--out", str(out),
           "--jobs", str(jobs), "--regrade"]
    env = {**os.environ, **variant.env}
    if variant.tree:  # its grading processes too (PYTHONPATH beats the venv's editable install)
        env["GRADER_ROOT"] = env["PYTHONPATH"] = str(variant.tree)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            cwd=variant.tree)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"grading failed: {' '.join(cmd)}")
    return seconds, usage.ru_maxrss / 1024


BURNER = """
import os as _os, time as _time
for _ in range(6):  # CPU-burning children that outlive the import by a few seconds
    if _os.fork() == 0:
        _os.setsid()  # a session of its own: the kernel's autogroups alone would share by session
        _end = _time.monotonic() + 6
        while _time.monotonic() < _end:
            pass
        _os._exit(0)
_time.sleep(4)
"""


def _neighbour_slowdown(a: assignments.Assignment, tmp: Path, variant: Variant,
                        repeat: int) -> float:
    """How much longer correct submissions take to grade (their own execution_time) while a
    submission's children burn every core beside them (--jobs 2), than alone (--jobs 1):
    the median over ``repeat`` runs of the ratio of medians."""
    subs = tmp / "neighbour" / "subs"
    shutil.rmtree(subs.parent, ignore_errors=True)
    names = [f"n{i}" for i in range(6)]
    for name in ("aa_warm", "burner", *names):
        shutil.copytree(a.reference_dir, subs / name)
    source = subs / "burner" / a.module_file
    source.write_text(source.read_text() + BURNER)
    alone = subs.parent / "alone"
    for name in names:
        shutil.copytree(subs / name, alone / name)
    out = subs.parent / "out"

    def took() -> float:
        return statistics.median(
            json.loads((out / n / "results.json").read_text())["execution_time"] for n in names)

    ratios = []
    for _ in range(repeat):
        _grade(a, alone, out, variant, 1)
        by_itself = took()
        _grade(a, subs, out, variant, 2)
        ratios.append(took() / by_itself)
    return statistics.median(ratios)


def _warm_vs_cold(a: assignments.Assignment, repeat: int) -> tuple[float, float]:
    """(cold, warm) seconds to a fresh worker with torch imported: a new sandbox whose zygote
    imports torch, against a fork of that zygote (what replaces a worker after a failed probe).
    Medians of ``repeat``."""
    from grader.sandbox import WorkerSpec, open_runner
    from grader.sandbox.isolation import Limits

    spec = WorkerSpec(submission=a.reference_dir, module=a.module, probes_file=a.probes_file,
                      limits=Limits(memory_mb=4096), preload=["torch"])
    runner, _ = open_runner(spec)
    cold, warm = [], []
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            runner._start()
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            runner._fork()
            warm.append(time.perf_counter() - start)
    finally:
        runner.close()
    return statistics.median(cold), statistics.median(warm)


TORCH_PROBE = ("import resource, time; t = time.perf_counter(); import torch; "
               "y = torch.nn.Linear(256, 256)(torch.randn(64, 256)).sum().item(); "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def _torch_in_the_box(image: str) -> str:
    """Torch in Gradescope's box: the image's size, and the seconds and peak resident memory of
    a process that imports torch and runs a layer, under 768 MB and half a CPU."""
    import docker

    client = docker.from_env()
    size = client.images.get(image).attrs.get("Size", 0) / 2**30
    try:
        out = client.containers.run(image, ["/opt/grader-venv/bin/python", "-c", TORCH_PROBE],
                                    network_mode="none", mem_limit="768m", nano_cpus=500_000_000,
                                    remove=True).decode().split()
    except Exception as exc:  # noqa: BLE001 - no torch in the image, a failed run
        return f"image {size:.2f} GB; torch: {str(exc)[:120]}"
    return (f"image {size:.2f} GB; torch in the box: import + a layer {float(out[0]):.2f} s, "
            f"peak {int(out[1]) / 1024:.0f} MB of 768")


def _container_start(image: str, repeat: int = 3) -> str:
    """What one container costs before any grading: the median seconds of starting, running
    `true` in and removing a container of the image, and the engine's storage driver (vfs copies
    the image's whole root filesystem for every container; overlay2 does not)."""
    import docker

    client = docker.from_env()
    took = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.containers.run(image, ["true"], network_mode="none", remove=True)
        took.append(time.perf_counter() - start)
    return (f"a container's start and removal {statistics.median(took):.2f} s (median of "
            f"{repeat}; storage driver {client.info().get('Driver', '?')})")


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
    p.add_argument("--assignment", help="only this one (e.g. a1)")
    p.add_argument("--batch-repeat", type=int, default=3, help="runs of each batch (median)")
    p.add_argument("--only-batches", action="store_true",
                   help="only the batch throughput (no per-sandbox, Docker or figure runs)")
    args = p.parse_args(argv)
    runs = args.batch_repeat if args.only_batches else args.repeat
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; medians of {runs} "
          "runs, the variants interleaved")
    too_big = []
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        per_submission = _checkout(PER_SUBMISSION, Path(tmp))
        chosen = ([assignments.find(args.assignment)] if args.assignment
                  else assignments.all_assignments())
        if args.only_batches:
            for a in chosen:
                print(f"\n{a.name}:")
                _batches(a, Path(tmp), args.copies, args.batch_repeat, per_submission)
            return 0
        variants = _variants(Path(tmp))
        cuda_torch = _cuda_torch()
        if not _docker_available(args.image):
            print(f"\n{args.image}: {_torch_in_the_box(args.image)}")
            print(f"{args.image}: {_container_start(args.image)}")
        cold, warm = _warm_vs_cold(assignments.all_assignments()[0], args.repeat)
        print(f"\na fresh worker with torch imported: cold start {cold:.2f} s, warm fork "
              f"{warm:.3f} s ({cold / warm:.0f}x; medians of {args.repeat})")
        for a in chosen:
            one = Path(tmp) / a.name / "one"
            shutil.copytree(a.reference_dir, one / "reference")
            print(f"\n{a.name}: grading the reference")
            # an older checkout compared with has no assignment written after it
            here = [v for v in variants if v.tree is None or (v.tree / "tests" / a.name).is_dir()]
            for v in variants:
                if v not in here:
                    print(f"  {v.name:28} has no {a.name}: not compared")
            runs: dict[str, list[tuple[float, float]]] = {v.name: [] for v in here}
            for _ in range(args.repeat):
                for v in here:
                    runs[v.name].append(_grade(a, one, Path(tmp) / "out", v))
            base = statistics.median(r[0] for r in runs[here[-1].name])
            for v in here:
                wall = statistics.median(r[0] for r in runs[v.name])
                peak = max(r[1] for r in runs[v.name])
                print(f"  {v.name:28} wall {wall:6.2f} s  peak RSS {peak:6.0f} MB  "
                      f"ratio to {here[-1].name}: {wall / base:4.2f}")
                if v is variants[0] and (peak > GRADESCOPE_MEMORY_MB or wall > GRADESCOPE_SECONDS):
                    if "torch" in a.preload and cuda_torch:  # not what the box runs
                        print(f"  {'':28} (torch here is a CUDA build, {cuda_torch}; the box "
                              "runs its CPU build: the docker line says whether it fits)")
                    else:
                        too_big.append(f"{a.name} ({v.name}): {wall:.1f} s, {peak:.0f} MB")
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
            if a.module == "perceptron":
                for v in variants:
                    ratio = _neighbour_slowdown(a, Path(tmp), v, 3)
                    print(f"  {v.name:28} a correct submission beside a CPU burner at --jobs 2: "
                          f"{ratio:4.2f}x its time alone (median of 3)")
            _assignment_figures(a, args.repeat)
            _batches(a, Path(tmp), args.copies, args.batch_repeat, per_submission)
    if too_big:
        print("\ndoes not fit Gradescope's default container (768 MB, 10 min):\n  "
              + "\n  ".join(too_big))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
