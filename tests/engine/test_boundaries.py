"""What leaves the grader for people: Markdown for Gradescope, the gradebook, export archives."""

import csv
import re
import stat
import zipfile
from pathlib import Path

import pytest

from grader import exports, report, results
from grader.plugin import GradingSession, Record

HOSTILE = [
    "```\n## Instructor note: this submission deserves full marks\n```",
    "````\n<script>alert(1)</script>\n`````",
    "~~~\n<img src=x onerror=alert(1)>\n~~~",
    "   ```   \nplain\n\t```",
    "\r```\r<b>bold</b>\r\n```\n",
    "`" * 40,
    "",
]


def _commonmark_blocks(md: str) -> list[tuple[bool, list[str]]]:
    """Fenced code blocks by CommonMark 0.31 section 4.5 (``` and ~~~, written here from the spec
    rather than taken from the code under test): (is_code, lines)."""
    out: list[tuple[bool, list[str]]] = [(False, [])]
    fence = ""
    for line in re.split(r"\r\n|\r|\n", md):
        if not fence:
            m = re.fullmatch(r" {0,3}(`{3,}(?=[^`]*$)|~{3,}).*", line)
            if m:
                fence = m.group(1)
                out.append((True, []))
                continue
        else:
            m = re.fullmatch(r" {0,3}(`{3,}|~{3,})[ \t]*", line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = ""
                out.append((False, []))
                continue
        out[-1][1].append(line)
    return out


def _prose(md: str) -> str:
    return "\n".join(ln for code, lines in _commonmark_blocks(md) if not code for ln in lines)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_block_holds_any_text_whole(text):
    blocks = _commonmark_blocks(results.code_block(text))
    assert [code for code, _ in blocks] == [False, True, False]
    assert "\n".join(blocks[1][1]) == "\n".join(re.split(r"\r\n|\r|\n", text))
    assert blocks[0][1] == [] and blocks[2][1] == []


def test_student_text_in_results_stays_inside_code_blocks():
    s = GradingSession("grading", Path("nowhere"), "perceptron", spec={"extra": {}})
    for n, text in enumerate(HOSTILE):
        s.records[str(n)] = Record(judge=f"j{n}", name=f"test {n}", points=1, visibility="visible",
                                   tags=[], public=False, message=f"your code raised: {text}",
                                   stdout=[text, "\n" + text], notes=[text])
    s.integrity = [f"line 1: '{HOSTILE[1]}' is not allowed in this assignment"]
    s.collect_errors = [HOSTILE[0]]
    res = s.results()
    for md in [res["output"], *(t["output"] for t in res["tests"])]:
        prose = _prose(md)
        for needle in ("<script", "<img", "<b>", "Instructor note", "~~~"):
            assert needle not in prose, md
    assert "Your code printed:" in res["tests"][0]["output"]


def test_the_feedback_page_reads_fences_as_gradescope_does():
    out = "your code raised:\n\n" + results.code_block(HOSTILE[1] + "\n" + HOSTILE[0]) + "\n\nafter"
    page = report.render({"score": 0, "tests": [{"name": "t", "score": 0, "max_score": 1,
                                                 "status": "failed", "output": out}]}, "t")
    pre = re.findall(r"<pre>(.*?)</pre>", page, re.S)
    assert len(pre) == 1 and "&lt;script&gt;" in pre[0] and "Instructor note" in pre[0]
    assert "<script" not in page and "after" in page.split("</pre>")[1]


def test_gradebook_cells_cannot_be_formulas(tmp_path):
    evil = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    rows, people = [], {}
    for n, text in enumerate(evil):
        name = f"{text}{n}" if n % 2 else f"sub{n}"
        people[name] = {"name": text, "email": f"{text}@x"}
        rows.append((name, {"score": -5.0 if n == 0 else -0.0, "tests": [
            {"name": "=judge", "score": -1, "max_score": 1}], "extra_data": {}}))
    path = tmp_path / "gradebook.csv"
    results.write_gradebook(path, rows, people)
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    for row in table:
        for cell in row:
            assert cell[:1] not in ("=", "+", "@", "\t", "\r") and not re.match(r"-\D", cell), cell
    assert table[0][3] == "'=judge"
    assert table[1][1] == "'" + evil[0] and table[1][3:5] == ["-1", "-5.0"]
    assert table[2][0] == "'+1+11" and table[2][4] == "-0.0"


METADATA = "s1:\n  :submitters:\n  - :name: Ada\n    :email: ada@example.edu\n"


def _zip(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export/submission_metadata.yml", METADATA)
        for name, data in members.items():
            z.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/shadow")
    return path


def test_a_plain_export_unpacks_and_unpacks_again(tmp_path):
    archive = _zip(tmp_path / "export.zip", {"export/s1/": b"", "export/s1/perceptron.py": b"x = 1\n"})
    for _ in range(2):
        folder = exports.find_export(archive, tmp_path / "out")
        assert (folder / "s1" / "perceptron.py").read_bytes() == b"x = 1\n"
    assert exports.students(folder) == {"s1": {"name": "Ada", "email": "ada@example.edu", "sid": ""}}


@pytest.mark.parametrize("members, links, cap, why", [
    ({f"export/s1/f{i}.py": b"" for i in range(10)}, (), ("MAX_MEMBERS", 5), "11 members"),
    ({"export/s1/big.npy": bytes(10**6)}, (), ("MAX_MEMBER_BYTES", 10**5), "unpacks to more than"),
    ({f"export/s{i}/a.py": bytes(10**4) for i in range(20)}, (), ("MAX_TOTAL_BYTES", 10**5),
     "unpacks to more than 100,000 bytes"),
    ({"export/../../evil.py": b"x"}, (), None, "unsafe path"),
    ({"/tmp/evil.py": b"x"}, (), None, "unsafe path"),
    ({}, ("export/s1/perceptron.py",), None, "is a link or a special file"),
    ({"export/s1/a.py": b"1", "export/s1/a.py/b.py": b"2"}, (), None, "cannot unpack"),
])
def test_a_hostile_export_is_refused_with_the_reason(tmp_path, monkeypatch, members, links, cap, why):
    if cap:
        monkeypatch.setattr(exports, *cap)
    archive = _zip(tmp_path / "export.zip", members, links)
    with pytest.raises(exports.ExportError, match=re.escape(why)) as err:
        exports.find_export(archive, tmp_path / "out")
    assert str(err.value).startswith("export.zip: ") and "unpack it yourself" in str(err.value)
    assert not (tmp_path / "out" / "export").exists() and not (tmp_path / "evil.py").exists()


def test_a_member_that_inflates_past_its_header_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "MAX_MEMBER_BYTES", 10**5)
    archive = _zip(tmp_path / "export.zip", {"export/s1/big.npy": bytes(10**6)})
    data = bytearray(archive.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # claim 100 bytes everywhere
        at = data.rfind(sig)
        data[at + offset:at + offset + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(exports.ExportError, match="not a readable zip archive"):
        exports.find_export(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "export").exists()
