"""The `grader` command: list, grade, release."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grader import assignments, results
from grader.sandbox import LEVELS


def _progress(total: int):  # noqa: ANN202
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a course dependency
        tqdm = None
    if tqdm is None or total < 2 or not sys.stderr.isatty():
        count = [0]

        def plain(name: str, res: dict) -> None:
            count[0] += 1
            print(f"[{count[0]}/{total}] {name}: {res.get('score', 0):g}/"
                  f"{results.max_score(res):g}", file=sys.stderr, flush=True)

        return plain, lambda: None
    bar = tqdm(total=total, unit="submission", file=sys.stderr)

    def tick(name: str, res: dict) -> None:
        bar.set_postfix_str(f"{name}: {res.get('score', 0):g}")
        bar.update(1)

    return tick, bar.close


def cmd_list(args: argparse.Namespace) -> int:
    for a in assignments.all_assignments():
        print(f"{a.name:16} {a.short:4} {a.title}")
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from grader import exports
    from grader.grading import DeviceUnavailable, discover, grade_batch, resolve_device

    a = assignments.find(args.assignment)
    out = Path(args.out or f"out/{a.name}")
    paths, people = [], {}
    for p in map(Path, args.submissions):
        export = exports.find_export(p, out / ".exports")
        if export is not None:
            people.update(exports.students(export))
            paths += [d for d in sorted(export.iterdir()) if d.is_dir() and d.name in people]
        else:
            paths.append(p)
    if args.backend == "local":
        from grader.sandbox import refusal

        why = refusal(args.isolation)
        if why:
            print(f"grader: cannot grade here: {why}", file=sys.stderr)
            return 2
    if args.backend == "slurm":
        return _grade_on_slurm(args, a, paths, people, out)
    try:  # before the batch: a device that cannot be had is an error, never a silent CPU
        docker_auto = args.backend == "docker" and args.device == "auto"
        device, gpus = ("cpu", []) if docker_auto else resolve_device(args.device, a)
        if device != "cpu" and args.backend == "docker":
            raise DeviceUnavailable(f"--device {args.device}: the docker backend grades on the "
                                    "CPU (use --device cpu)")
    except DeviceUnavailable as exc:
        print(f"grader: cannot grade here: {exc}", file=sys.stderr)
        return 2
    if device != "cpu":
        print(f"grader: grading on {device} ({', '.join(gpus)}), one grading per GPU at a time",
              file=sys.stderr)
    subs = discover(a, paths)
    if not subs:
        print("no submissions found", file=sys.stderr)
        return 2
    tick, close = _progress(len(subs))
    try:
        rows = grade_batch(a, subs, out, jobs=args.jobs, isolation=args.isolation,
                           skip_done=not args.regrade, progress=tick, timeout=args.timeout,
                           backend=args.backend, image=args.image, students=people,
                           device=device, gpus=gpus)
    except KeyboardInterrupt:
        close()
        print(f"\ninterrupted: finished results and gradebook are in {out}", file=sys.stderr)
        return 130
    close()
    return _finish(args, a, rows, out)


def _finish(args: argparse.Namespace, a: assignments.Assignment, rows: list, out: Path) -> int:
    if args.html:
        from grader import report

        for name, _ in rows:
            report.write(out / name / "results.json", f"{a.name}: {a.title} ({name})")
    print(results.table(rows))
    print(f"\nresults: {out}/<submission>/results.json   gradebook: {out}/gradebook.csv")
    return 0


def _grade_on_slurm(args: argparse.Namespace, a: assignments.Assignment, paths: list[Path],
                    people: dict, out: Path) -> int:
    """The batch as one Slurm job array (grader.slurm_backend); the tasks pick their device:
    the GPUs --gpus-per-task asks for, else the CPU."""
    from grader import slurm_backend
    from grader.grading import discover

    if args.device != "auto":
        print("grader: --backend slurm grades on the GPUs --gpus-per-task asks for (leave "
              "--device out)", file=sys.stderr)
        return 2
    if args.isolation == "isolated" and os.geteuid() != 0:  # the tasks run as this user
        print("grader: cannot grade here: --isolation isolated needs the Slurm tasks to run as "
              "root (they run as the user who submits them, and only root can drop student "
              "code to a sandbox uid); leave --isolation out for the strongest level each node "
              "allows", file=sys.stderr)
        return 2
    subs = discover(a, paths)
    if not subs:
        print("no submissions found", file=sys.stderr)
        return 2
    options = slurm_backend.SlurmOptions(
        partition=args.partition, gpus_per_task=args.gpus_per_task, time_min=args.time,
        array_parallelism=args.array_parallelism, shards=args.shards)
    tick, close = _progress(len(subs))
    try:
        rows = slurm_backend.grade_batch(a, subs, out, options, isolation=args.isolation,
                                         skip_done=not args.regrade, progress=tick,
                                         timeout=args.timeout, students=people)
    except KeyboardInterrupt:
        close()
        print(f"\ninterrupted (the array's tasks are cancelled): finished results and "
              f"gradebook are in {out}", file=sys.stderr)
        return 130
    close()
    return _finish(args, a, rows, out)


def cmd_release(args: argparse.Namespace) -> int:
    from grader import release

    chosen = [assignments.find(args.assignment)] if args.assignment else assignments.all_assignments()
    stale = []
    for a in chosen:
        if args.check:
            diffs = release.check(a)
            if diffs:
                stale.append(f"{a.name}: {', '.join(diffs)}")
        else:
            for path in release.write(a):
                print(path)
            if args.zip:
                print(release.write_zip(a, Path(args.zip_dir)))
    if stale:
        print("the student release is stale; run `grader release`:\n  " + "\n  ".join(stale),
              file=sys.stderr)
        return 1
    if args.check:
        print(f"release up to date: {', '.join(a.name for a in chosen)}")
    return 0


def cmd_mutants(args: argparse.Namespace) -> int:
    """Grade every mutant (each must lose its judges' points) and every alternate (each must
    get full marks)."""
    import tempfile

    from grader import mutants
    from grader.grading import Submission, grade_batch

    a = assignments.find(args.assignment)
    found = mutants.load_all(a)
    alternates = mutants.load_alternates(a)
    with tempfile.TemporaryDirectory(prefix="grader-mutants-") as tmp:
        folders = mutants.materialise(a, found, Path(tmp) / "subs")
        subs = [Submission(f.name, f, judges=m.catches) for f, m in zip(folders, found)]
        subs += [Submission(f.name, f) for f in
                 mutants.materialise_alternates(alternates, Path(tmp) / "subs")]
        out = Path(args.out) if args.out else Path(tmp) / "out"
        rows = dict(grade_batch(a, subs, out, jobs=args.jobs, isolation=args.isolation))
    bad = 0
    for m in found:
        res = rows[m.name]
        problems = mutants.survivors(m, res)
        bad += bool(problems)
        verdict = "caught" if not problems else "SURVIVED: " + "; ".join(problems)
        print(f"{m.name:36} {res.get('score', 0):>6g}/{results.max_score(res):g}  {verdict}")
    print(f"{len(found) - bad} of {len(found)} mutants caught (each graded on the judges it "
          "names only)")
    unfair = 0
    for alt in alternates:
        res = rows[f"alt-{alt.name}"]
        lost = mutants.lost_points(res)
        unfair += bool(lost)
        verdict = "full marks" if not lost else "LOST POINTS: " + "; ".join(lost)
        print(f"alternate {alt.name:26} {res.get('score', 0):>6g}/{results.max_score(res):g}  "
              f"{verdict}  ({alt.note[:60]})")
    print(f"{len(alternates) - unfair} of {len(alternates)} alternates got full marks")
    return 1 if bad or unfair else 0


def cmd_gradescope(args: argparse.Namespace) -> int:
    from grader import gradescope

    if not args.layout and len(args.assignments) != 1:
        print("grader gradescope: name one assignment (or use --layout DIR)", file=sys.stderr)
        return 2
    try:
        if args.layout:
            chosen = gradescope.all_or(args.assignments)
            print(gradescope.layout(chosen, Path(args.layout), box_mb=args.box_memory))
        else:
            a = assignments.find(args.assignments[0])
            print(gradescope.write_zip(a, Path(args.out or f"dist/{a.name}-autograder.zip"),
                                       box_mb=args.box_memory))
    except (ValueError, LookupError) as exc:
        print(f"grader gradescope: {exc}", file=sys.stderr)
        return 2
    return 0


def _device(text: str) -> str:
    try:
        return assignments.parse_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grader", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the assignments").set_defaults(func=cmd_list)

    g = sub.add_parser("grade", help="grade submissions (folders, .py files, or folders of them)")
    g.add_argument("assignment", help="a1_perceptron, a1 or perceptron")
    g.add_argument("submissions", nargs="+")
    g.add_argument("--out", help="output folder (default out/<assignment>)")
    g.add_argument("--jobs", "-j", type=int, default=1,
                   help="submissions graded at once (local and docker backends)")
    g.add_argument("--isolation", choices=LEVELS, default="auto",
                   help="auto picks the strongest level this machine allows")
    g.add_argument("--regrade", action="store_true",
                   help="grade again even submissions whose results are up to date (by default "
                   "a rerun skips a submission when neither it nor the graders changed)")
    g.add_argument("--timeout", type=float, default=None, help="per-probe timeout in seconds")
    g.add_argument("--html", action="store_true", help="also write <out>/<name>/feedback.html")
    g.add_argument("--backend", choices=("local", "docker", "slurm"), default="local",
                   help="docker: grade each submission in the grading image (DOCKER_HOST); "
                   "slurm: grade the batch as a Slurm job array (the out dir must be on a "
                   "filesystem the nodes share)")
    g.add_argument("--image", default="dlgrader:latest", help="the grading image (make docker)")
    g.add_argument("--device", type=_device, default="auto", metavar="auto|cpu|cuda[:N]",
                   help="where probes train: auto (default) is cuda when torch sees a GPU here "
                   "(never for an assignment that forbids torch), else cpu; cuda hands each "
                   "grading a free GPU (one grading per GPU at a time), cuda:N uses GPU N")
    s = g.add_argument_group("slurm", "with --backend slurm")
    s.add_argument("--partition", help="the partition (default: the cluster's default)")
    s.add_argument("--gpus-per-task", type=int, default=0, metavar="N",
                   help="GPUs per task; with any, the tasks grade on cuda (torch assignments)")
    s.add_argument("--time", type=int, default=60, metavar="MIN",
                   help="time limit of one task, in minutes (default 60)")
    s.add_argument("--array-parallelism", type=int, default=32, metavar="K",
                   help="tasks running at once (default 32)")
    s.add_argument("--shards", type=int, default=None, metavar="S",
                   help="tasks in the array (default: one per 10 submissions)")
    g.set_defaults(func=cmd_grade)

    m = sub.add_parser("mutants", help="grade every mutant; fail when one keeps its points")
    m.add_argument("assignment")
    m.add_argument("--jobs", "-j", type=int, default=2)
    m.add_argument("--out", help="keep the mutants' results here")
    m.add_argument("--isolation", choices=LEVELS, default="auto")
    m.set_defaults(func=cmd_mutants)

    gs = sub.add_parser("gradescope", help="write an autograder zip for Gradescope")
    gs.add_argument("assignments", nargs="*")
    gs.add_argument("--out", help="zip path (default dist/<a>-autograder.zip)")
    gs.add_argument("--layout", help="write the unzipped source folder here instead "
                    "(all assignments when none is named; used by `make docker`)")
    gs.add_argument("--box-memory", type=int, default=768, metavar="MB",
                    help="the memory of the Gradescope machine the autograder will run on "
                    "(default 768, Gradescope's default); an assignment whose budget does not "
                    "fit is refused")
    gs.set_defaults(func=cmd_gradescope)

    r = sub.add_parser("release", help="regenerate assignments/<a>/ from reference/ and tests/")
    r.add_argument("assignment", nargs="?")
    r.add_argument("--check", action="store_true", help="fail when the committed release is stale")
    r.add_argument("--zip", action="store_true", help="also write one self-contained zip each")
    r.add_argument("--zip-dir", default="dist", help="where the zips go (default dist/)")
    r.set_defaults(func=cmd_release)
    return p


def main(argv: list[str] | None = None) -> int:
    from grader.exports import ExportError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (assignments.UnknownAssignment, FileNotFoundError, ExportError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
