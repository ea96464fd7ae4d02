"""Feedback a student can act on: five realistic mistakes, and the HTML page."""

import json
import os
import re
import shutil
import subprocess

import pytest
from conftest import read_results, run_cli

from grader import report

MISTAKES = {  # name: (edit to the reference, what the message must say)
    "typo_in_function_name": (("def threshold_unit(", "def treshold_unit("),
                              "no function or class named 'threshold_unit' (did you mean 'treshold_unit'?"),
    "wrong_shape": (("return np.stack([h1, h2], axis=1)", "return np.stack([h1, h2], axis=0)"),
                    "wrong shape: expected (4, 2), got (2, 4) (transposed?)"),
    "exception": (("gate = logic_gate(\"AND\")", "gate = logic_gate(\"and\")"), "unknown gate 'and'"),
    "nan": (("losses.append(float(np.mean(0.5 * (y - t) ** 2)))",
             "losses.append(float(np.mean(0.5 * (y - t) ** 2)) * np.nan)"), "NaN"),
    "slow_loop": (("h = sigmoid(X @ W1 + b1)", "h = sigmoid(X @ W1 + b1)\n        __import__('time').sleep(0.01)"),
                  "timed out after 3 s"),
}


@pytest.fixture(scope="module")
def graded(a1, tmp_path_factory):
    subs = tmp_path_factory.mktemp("mistakes")
    ref = (a1.reference_dir / a1.module_file).read_text()
    ref = ref.replace('h1 = logic_gate("AND").predict(X)', 'gate = logic_gate("AND")\n    h1 = gate.predict(X)')
    for name, ((old, new), _) in MISTAKES.items():
        assert old in ref, name
        (subs / name).mkdir()
        (subs / name / a1.module_file).write_text(ref.replace(old, new))
    out = tmp_path_factory.mktemp("mistakes-out")
    proc = run_cli("grade", "a1", str(subs), "--out", str(out), "--jobs", "2", "--timeout", "3",
                   "--html")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_gets_a_message_that_says_what_to_fix(graded, name):
    res = read_results(graded, name)
    assert res["score"] < 100
    outputs = "\n".join(t["output"] for t in res["tests"] if t["status"] == "failed")
    assert MISTAKES[name][1] in outputs
    if name == "exception":
        assert 'File "perceptron.py"' in outputs and "ValueError" in outputs
        assert "grader" not in outputs.replace("grader could not", "")


def test_feedback_page_is_written_and_escapes_student_text(graded):
    page = (graded / "typo_in_function_name" / "feedback.html").read_text()
    assert "<script" not in page and "threshold_unit" in page and "/ 100" in page
    res = {"score": 0, "tests": [{"name": "<b>x</b>", "score": 0, "max_score": 1,
                                  "status": "failed", "output": "```\n<script>alert(1)</script>\n```"}]}
    html = report.render(res, "t")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_feedback_page_renders_in_headless_chromium(graded, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium here (apt-get install chromium)")
    shot = tmp_path / "feedback.png"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1300",
         f"--screenshot={shot}", (graded / "wrong_shape" / "feedback.html").as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.exists() and os.path.getsize(shot) > 10_000, proc.stderr[-2000:]


LONG = "x" * 400  # one unbreakable traceback line, as a long path or repr gives


@pytest.mark.parametrize("width", [390, 1100])  # a phone and a laptop
def test_notice_shows_and_long_lines_wrap_in_chromium(tmp_path, width):
    """The notice box holds its text (a <p> around the output's <div> rendered it empty), and a
    long line wraps instead of pushing the result and points columns off-screen."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium here (apt-get install chromium)")
    res = {"score": 0, "output": "graded file perceptron_v2.py: the only .py file found",
           "tests": [{"name": "test", "number": "1", "score": 0, "max_score": 10,
                      "status": "failed", "output": f"```\n  File \"{LONG}.py\", line 3\n```\n"
                      f"  {LONG}"}]}
    page = report.render(res, "t").replace(
        "</body>", "<script>document.body.dataset.probe = JSON.stringify({"
        "wide: document.documentElement.scrollWidth, inner: window.innerWidth, "
        "notice: document.querySelector('.notice').textContent.length})</script></body>")
    path = tmp_path / "page.html"
    path.write_text(page)
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},900",
         "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["notice"] > 20
    assert probe["wide"] <= probe["inner"]  # headless Chromium widens a window below 500 px
