"""A feedback page per submission, rendered from its results.json (nothing else).

Self-contained HTML (inline CSS, no scripts) that an instructor can send as it is. Test outputs
are Markdown-ish text; they are shown escaped, with ``` fences as preformatted blocks. A test's
figures (``extra_data.figures``, files under ``figures/`` next to results.json) are embedded as
``data:`` URIs, re-checked as PNGs first, so the page still shows them when it is moved or sent
alone.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from grader import figures, results

CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d2330;padding:0 1rem}
h1{font-size:1.5rem;margin:0}.meta{color:#5b6475;margin:.2rem 0 1.2rem}
.total{font-size:2.4rem;font-weight:700}.bar{height:.6rem;background:#e6e9ef;border-radius:.3rem}
.bar>div{height:100%;border-radius:.3rem;background:#2f8f5b}
table{border-collapse:collapse;width:100%;margin-top:1.2rem;table-layout:fixed}
td,th{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e6e9ef;vertical-align:top;
overflow-wrap:anywhere}th.num{width:2.2rem}th.res{width:4.6rem}th.pts{width:5.6rem}
.passed{color:#2f8f5b;font-weight:600}.failed{color:#b3261e;font-weight:600}
.pts{white-space:nowrap;text-align:right}pre{background:#f5f6f8;padding:.5rem;overflow-x:auto;
white-space:pre-wrap;overflow-wrap:anywhere;margin:.3rem 0 0;font-size:13px}.out{color:#394150}
code{white-space:pre-wrap;overflow-wrap:anywhere;font-size:13px}.notice{background:#fff6e0;border:1px solid #f0d48a;padding:.6rem .8rem;border-radius:.3rem}
figure{margin:.5rem 0}figure img{max-width:100%;height:auto;border:1px solid #e6e9ef}
figcaption{color:#5b6475;font-size:13px}
"""

_OPENING = re.compile(r" {0,3}(`{3,})[^`]*")  # CommonMark 4.5: an info string has no backtick
_CLOSING = re.compile(r" {0,3}(`{3,})[ \t]*")


def _blocks(text: str) -> list[tuple[bool, str]]:
    """Split text into (is_code, part) by CommonMark's rule for ``` fences, as Gradescope reads it:
    a fence closes only on a line of at least as many backticks (see results.code_block)."""
    parts: list[tuple[bool, str]] = []
    lines: list[str] = []
    fence = 0
    for line in re.split(r"\r\n|\r|\n", text):
        if not fence and (m := _OPENING.fullmatch(line)):
            parts.append((False, "\n".join(lines)))
            lines, fence = [], len(m.group(1))
        elif fence and (m := _CLOSING.fullmatch(line)) and len(m.group(1)) >= fence:
            parts.append((True, "\n".join(lines)))
            lines, fence = [], 0
        else:
            lines.append(line)
    parts.append((bool(fence), "\n".join(lines)))  # an unclosed fence runs to the end
    return parts


def _render_output(text: str) -> str:
    out = []
    for code, part in _blocks(text):
        if not part.strip():
            continue
        if code:
            out.append(f"<pre>{html.escape(part.rstrip())}</pre>")
        else:  # indented lines (expected/got, traceback frames) read best in monospace
            lines = part.strip("\n").splitlines()
            text = [f"<code>{html.escape(ln)}</code>" if ln.startswith("  ") else html.escape(ln)
                    for ln in lines]
            out.append(f'<div class="out">{"<br>".join(text)}</div>')
    return "".join(out)


def _render_figures(entries: Any, folder: Path | None) -> str:
    """A test's figures as <figure> elements with the PNG inline; the title is the alt text."""
    if folder is None or type(entries) is not list:
        return ""
    out = []
    for entry in entries[:figures.MAX_PER_TEST]:
        if type(entry) is not dict:
            continue
        title = html.escape(str(entry.get("title", "figure")), quote=True)
        png = figures.read(folder, entry.get("file"))
        if png is None:
            out.append(f'<div class="out">(the figure "{title}" is missing)</div>')
            continue
        data = base64.b64encode(png).decode("ascii")
        out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{title}">'
                   f"<figcaption>{title}</figcaption></figure>")
    return "".join(out)


def render(res: dict[str, Any], title: str = "", folder: Path | None = None) -> str:
    """The HTML page for one results.json; ``folder`` holds it (and its figures/)."""
    extra = res.get("extra_data", {})
    shown = extra.get("figures") if isinstance(extra.get("figures"), dict) else {}
    total, best = float(res.get("score", 0)), results.max_score(res)
    pct = 100.0 * total / best if best else 0.0
    rows = []
    for t in res.get("tests", []):
        status = t.get("status", "failed")
        rows.append(
            f"<tr><td>{html.escape(str(t.get('number', '')))}</td>"
            f"<td>{html.escape(t.get('name', ''))}{_render_output(t.get('output', ''))}"
            f"{_render_figures(shown.get(str(t.get('number', ''))), folder)}</td>"
            f'<td class="{status}">{status}</td>'
            f'<td class="pts">{t.get("score", 0):g} / {t.get("max_score", 0):g}</td></tr>')
    notice = res.get("output", "")
    level = extra.get("isolation", {}).get("level", "")
    meta = " · ".join(x for x in (
        f"graded file {extra.get('graded_file', '')}" if extra.get("graded_file") else "",
        f"isolation {level}" if level else "", f"{res.get('execution_time', 0):g} s") if x)
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{html.escape(title or 'Feedback')}</title><style>{CSS}</style><body>"
        f"<h1>{html.escape(title or 'Feedback')}</h1><p class=meta>{html.escape(meta)}</p>"
        f'<div class=total>{total:g} / {best:g}</div>'
        f'<div class=bar><div style="width:{pct:.1f}%"></div></div>'
        # a div: a <p> cannot hold the <div>s of the rendered output (the parser would close it
        # first and leave the box empty)
        + (f'<div class=notice>{_render_output(notice)}</div>' if notice.strip() else "")
        + "<table><tr><th class=num>#</th><th>test</th><th class=res>result</th>"
        "<th class=pts>points</th></tr>"
        + "".join(rows) + "</table></body></html>\n"
    )


def write(results_path: Path, title: str = "") -> Path:
    """Write feedback.html next to results.json."""
    res = results.read(results_path) or results.failure("results.json is missing", 0)
    out = results_path.with_name("feedback.html")
    out.write_text(render(res, title, results_path.parent), encoding="utf-8")
    return out
