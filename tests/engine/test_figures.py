"""Figures: PNGs a probe renders in the worker, checked by the grader, kept, and shown."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, write_course

from grader import figures, report, results
from grader.sandbox import bwrap

SCHEMA = json.loads(results.SCHEMA_PATH.read_text())


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def tiny_png(width: int = 2, height: int = 2, extra: bytes = b"") -> bytes:
    """A minimal valid greyscale PNG, made by hand."""
    raw = b"".join(b"\x00" + bytes(k % 256 for k in range(width)) for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (figures.SIGNATURE + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def matplotlib_png() -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), dpi=50)
    fig.subplots().plot([3, 2, 1.5, 1.2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# -- the checks on the bytes -----------------------------------------------------------------
def test_a_png_matplotlib_renders_and_a_minimal_one_are_accepted():
    assert figures.check_png(matplotlib_png()) == (150, 100)
    assert figures.check_png(tiny_png(3, 2)) == (3, 2)


@pytest.mark.parametrize(("data", "says"), [
    ("a string", "got a value of type str"),
    (bytearray(tiny_png()), "got a value of type bytearray"),
    (b"GIF89a" + bytes(100), "not a PNG image"),
    (b"\x89PNX\r\n\x1a\n" + tiny_png()[8:], "not a PNG image"),
    (tiny_png()[:-12], "truncated"),
    (tiny_png() + b"<html>", "data after its IEND"),
    (tiny_png()[:-5] + b"\x00\x00\x00\x00\x00", "checksum"),
    (tiny_png(4000, 2), "4000 x 2 pixels"),
    (tiny_png(2, 2001), "2 x 2001 pixels"),
    (tiny_png(extra=chunk(b"acTL", bytes(8))), "'acTL' chunk"),
    (tiny_png(extra=chunk(b"tEXt", bytes(figures.MAX_BYTES))), "the limit is 2,097,152"),
    (figures.SIGNATURE + chunk(b"IDAT", b"x") + chunk(b"IEND", b""), "first chunk must be IHDR"),
    (figures.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
     + chunk(b"IEND", b""), "no image data"),
    (figures.SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 3, 0, 0, 0, 0))
     + chunk(b"IEND", b""), "bad IHDR"),
])
def test_what_is_not_a_png_within_bounds_is_refused_in_words(data, says):
    with pytest.raises(figures.FigureError) as exc:
        figures.check_png(data)
    assert says in str(exc.value)


def test_counts_and_bytes_are_bounded_per_test_and_per_submission():
    png = tiny_png()
    fig = figures.accept("Loss <b>curve</b> `x`", png, 0, 0, 0)
    assert (fig.title, fig.width, fig.height) == ("Loss b curve /b x", 2, 2)
    for args, says in [((figures.MAX_PER_TEST, 0, 0), "a test shows at most"),
                       ((0, figures.MAX_PER_SUBMISSION, 0), "a submission shows at most"),
                       ((0, 1, figures.MAX_TOTAL_BYTES - len(png) + 1), "hold at most")]:
        with pytest.raises(figures.FigureError, match=says):
            figures.accept("t", png, *args)


# -- written next to results.json, shown on the page ----------------------------------------
def test_figures_are_written_fresh_and_read_back_only_by_their_own_names(tmp_path):
    sub = tmp_path / "alice"
    (sub / "figures").mkdir(parents=True)
    (sub / "figures" / "99-stale.png").write_bytes(tiny_png())
    figs = [figures.accept("Learned filters", tiny_png(), 0, 0, 0),
            figures.accept("Learned filters", tiny_png(3, 3), 1, 1, 0)]
    assert figures.number(figs, 2) == 4
    figures.write(sub, figs)
    assert sorted(os.listdir(sub / "figures")) == ["03-learned-filters.png", "04-learned-filters.png"]
    assert figures.read(sub, "figures/04-learned-filters.png") == tiny_png(3, 3)
    assert [p.name for p in sub.iterdir()] == ["figures"]  # no temporary folder left
    for name in ("../alice/figures/03-learned-filters.png", "figures/../../x.png", "/etc/passwd",
                 "figures/05-missing.png", None):
        assert figures.read(sub, name) is None
    (sub / "figures" / "05-bad.png").write_bytes(b"<script>")
    assert figures.read(sub, "figures/05-bad.png") is None
    shutil.rmtree(sub / "figures")
    (sub / "figures").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    figures.write(sub, figs[:1])  # a link where figures/ goes is replaced, never followed
    assert not (sub / "figures").is_symlink() and not os.listdir(tmp_path / "elsewhere")
    figures.write(sub, [])  # graded again without figures: none left from before
    assert not (sub / "figures").exists()


def test_the_page_embeds_each_figure_beside_its_test_with_the_title_escaped(tmp_path):
    fig = figures.accept("curve", matplotlib_png(), 0, 0, 0)
    figures.number([fig], 0)
    figures.write(tmp_path / "alice", [fig])
    (tmp_path / "bob.png").write_bytes(tiny_png())  # a valid PNG outside figures/
    res = {"score": 1, "extra_data": {"figures": {"2": [
        {"title": '"><script>alert(1)</script>', "file": fig.file},
        {"title": "gone", "file": "figures/02-gone.png"},
        {"title": "escape", "file": "../bob.png"}]}},
        "tests": [{"number": "1", "name": "first", "score": 0, "max_score": 1, "status": "failed",
                   "output": ""},
                  {"number": "2", "name": "second", "score": 1, "max_score": 1, "status": "passed",
                   "output": f"Figure: curve ({fig.file})"}]}
    page = report.render(res, "t", tmp_path / "alice")
    data = base64.b64encode(fig.png).decode()
    assert page.count("<img ") == 1 and f'src="data:image/png;base64,{data}"' in page
    assert 'alt="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page and "<script" not in page
    assert page.index("second") < page.index("<img ")  # beside the test it belongs to
    assert 'the figure "gone" is missing' in page and 'the figure "escape" is missing' in page
    assert "<img " not in report.render(res, "t")  # no folder: nothing read


# -- a real grading through the CLI ----------------------------------------------------------
REFERENCE = '''
def losses(n):
    return [1.0 / (1 + k) for k in range(n)]


def plot_bytes(values):
    """The student's own plot, as PNG bytes."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2), dpi=60)
    fig.subplots().plot(values)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
'''

PROBES = '''
import io
import os

import numpy as np


def curve(mod, n=20):
    """Rendered here, in the worker, with matplotlib's Agg backend."""
    import matplotlib
    from matplotlib.figure import Figure

    values = np.asarray(mod.losses(n), dtype=float)
    fig = Figure(figsize=(4, 3), dpi=80)
    ax = fig.subplots()
    ax.plot(values)
    ax.set(xlabel="epoch", ylabel="loss", title="learning curve")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return {"losses": values, "png": buf.getvalue(), "backend": matplotlib.get_backend(),
            "home": os.environ.get("HOME", "")}


def own_plot(mod):
    return mod.plot_bytes(mod.losses(5))
'''

JUDGES = '''
import probes
import pytest


@pytest.mark.points(1)
def test_curve(student, score):
    """The loss goes down"""
    out = student(probes.curve)
    score.figure("Learning curve <loss>", out["png"])
    score.note(f"backend {out['backend']} home {out['home']}")
    assert out["losses"][0] > out["losses"][-1]


@pytest.mark.points(1)
def test_own_plot(student, score):
    """Your plot, shown"""
    score.figure("your plot", student(probes.own_plot))


@pytest.mark.points(1)
def test_required_plot(student, score):
    """Your plot, required"""
    score.figure("your plot", student(probes.own_plot), required=True)
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = write_course(tmp_path_factory.mktemp("course"), "z8_figs", "figs", REFERENCE, {
        "assignment.toml": textwrap.dedent('''
            title = "Figures"
            module = "figs"
            [limits]
            timeout = 60
            memory_mb = 2048
            total_timeout = 300
        '''), "probes.py": PROBES, "test_figs.py": JUDGES})
    subs = root / "subs"
    for name, source in [("good", REFERENCE),
                         ("garbage", REFERENCE.replace("return buf.getvalue()",
                                                       'return b"\\x89PNG\\r\\n\\x1a\\nnot really"'))]:
        (subs / name).mkdir(parents=True)
        (subs / name / "figs.py").write_text(source)
    out = root / "out"
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "grade", "z8", str(subs), "--out",
                           str(out), "--jobs", "2", "--html"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "GRADER_ROOT": str(root)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_a_figure_rendered_in_the_worker_is_kept_and_named_in_results_json(graded):
    res = json.loads((graded / "good" / "results.json").read_text())
    jsonschema.validate(res, SCHEMA)
    assert res["score"] == 3, res
    assert res["extra_data"]["isolation"]["level"] != "inprocess"
    assert sorted(os.listdir(graded / "good" / "figures")) == [
        "01-learning-curve-loss.png", "02-your-plot.png", "03-your-plot.png"]
    assert figures.check_png((graded / "good/figures/01-learning-curve-loss.png").read_bytes()) \
        == (320, 240)
    curve = res["tests"][0]["output"]
    assert "Figure: Learning curve loss (figures/01-learning-curve-loss.png)" in curve
    assert "backend agg" in curve.lower() and f"home {Path.home()}" not in curve
    assert res["extra_data"]["figures"]["1"] == [
        {"title": "Learning curve loss", "file": "figures/01-learning-curve-loss.png"}]


@pytest.mark.xfail("/etc/fonts" not in bwrap.LOADER_FILES and bwrap.executable() is not None,
                   reason="the bubblewrap view lacks /etc/fonts: matplotlib's fc-list complains")
def test_rendering_prints_nothing_the_student_would_see(graded):
    res = json.loads((graded / "good" / "results.json").read_text())
    assert not any("Your code printed" in t["output"] for t in res["tests"]), res["tests"][0]


def test_the_feedback_page_embeds_the_figures(graded):
    page = (graded / "good" / "feedback.html").read_text()
    png = (graded / "good/figures/02-your-plot.png").read_bytes()
    assert page.count("<img ") == 3 and base64.b64encode(png).decode() in page
    assert 'alt="Learning curve loss"' in page and "is missing" not in page


def test_bytes_that_are_not_a_png_are_the_students_mistake_in_words(graded):
    res = json.loads((graded / "garbage" / "results.json").read_text())
    jsonschema.validate(res, SCHEMA)
    assert res["extra_data"]["status"] == "graded"
    curve, shown, required = res["tests"]
    assert curve["status"] == "passed" and "figures/01-learning-curve-loss.png" in curve["output"]
    says = "Figure 'your plot' cannot be shown: the PNG is truncated"
    assert shown["status"] == "passed" and says in shown["output"]
    assert required["status"] == "failed" and says in required["output"]
    assert sorted(os.listdir(graded / "garbage" / "figures")) == ["01-learning-curve-loss.png"]
    page = (graded / "garbage" / "feedback.html").read_text()
    assert page.count("<img ") == 1 and "cannot be shown" in page
