"""Issue 14 §5: a run of plain output lines is ONE event pointing into the turn's output
file (a row per 100-byte line cost 0.92× the output again in pa.db); every reader still
gets the lines, each once, in order, and the output cap's note stays where the cut is."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import sys
from pathlib import Path

from bench.common import disk_bytes

from parallel_agents.store import MAX_SPAN, Payload, PlainRun, Raw, Store
from tests.conftest import make_repo, output_lines
from tests.reliability.helpers import pa, write_settings

LINE = "line {i:05d} " + "x" * 88  # 100 bytes with its newline


def _cat(tmp_path: Path, data: bytes) -> str:
    """An agent command that writes ``data`` to its stdout, byte for byte."""
    src = tmp_path / "out.bin"
    src.write_bytes(data)
    agent = tmp_path / "cat.py"
    agent.write_text(f"import sys\nsys.stdout.buffer.write(open({str(src)!r}, 'rb').read())\n")
    return f"{sys.executable} {agent}"


def _new(repo: Path, cmd: str) -> str:
    p = pa("new", "write", "--repo", "demo", "--json", "--cmd", cmd)
    assert p.returncode == 0, p.stderr
    sid = str(json.loads(p.stdout)["id"])
    w = pa("wait", "--timeout", "120", sid)
    assert w.returncode == 0, w.stdout + w.stderr
    return sid


def test_twenty_thousand_plain_lines_are_few_events_and_read_back_line_for_line(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 14 §5: 20,000 plain lines (blank and whitespace-only ones among them, CRLF and
    lone CR endings, non-ASCII text) are stored as far fewer event rows than lines, each
    spanning at most 64 KiB of whole lines; the store, `pa logs`, `--raw` and `--json` give
    back exactly the lines one event per line gave (blank ones left out, as before)."""
    repo = make_repo(tmp_path / "repo")
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    parts: list[bytes] = []
    for i in range(20_000):
        text = LINE.format(i=i) if i % 7 else f"héllo ✓ {i}"
        end = b"\r\n" if i % 997 == 0 else (b"\r" if i % 1009 == 0 else b"\n")
        parts.append(text.encode() + end)
        if i % 1000 == 500:
            parts.append(b"\n   \n\t\n")  # blank lines: no event, as ever
    data = b"".join(parts)
    expected = [x.decode() for x in data.splitlines() if x.strip()]
    sid = _new(repo, _cat(tmp_path, data))

    st = Store(pa_home)
    try:
        outs = st.events(sid, kinds=["output"])
        assert len(outs) <= len(expected) // 100, len(outs)
        assert output_lines(outs) == expected
        assert all(e.raw == e.payload["text"] for e in outs)
        live = st.events(sid, kinds=["output"], with_raw=False)  # as SSE reads them
        assert output_lines(live) == expected and all(e.raw is None for e in live)
        [(longest,)] = st.db.execute(
            "SELECT MAX(raw_len) FROM events WHERE session_id = ?", (sid,)
        ).fetchall()
        assert longest <= MAX_SPAN
        [result] = st.events(sid, kinds=["result"])
        assert result.payload["text"] == expected[-1]
    finally:
        st.close()

    p = pa("logs", sid)
    assert p.returncode == 0, p.stderr
    shown = p.stdout.split("\n")
    assert [x for x in shown if x and not x.startswith("[")] == expected  # no "result:" again
    assert shown[-2] == "[running → idle]"
    p = pa("logs", "--raw", sid)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:-1] == expected
    p = pa("logs", "--json", sid)
    assert p.returncode == 0, p.stderr
    assert output_lines(json.loads(x) for x in p.stdout.splitlines()) == expected


def test_a_run_ends_at_other_events_at_another_kind_and_at_64_kib() -> None:
    """issue 14 §5: plain lines coalesce only with the plain lines next to them of the same
    kind (an agent's structured events stay one per line), and a run spans whole lines up
    to 64 KiB."""
    items: list[tuple[str, Payload, Raw]] = []
    run = PlainRun(items)
    at = 0

    def line(kind: str, text: str, payload: Payload = None) -> bool:
        nonlocal at
        span = (at, len(text.encode()))
        at += span[1] + 1
        taken = run.take(kind, payload or {"text": text}, text, span)
        if not taken:
            run.close()
            items.append((kind, payload, span))
        return taken

    assert line("output", "a") and line("output", "b")
    assert not line("message", "{...}", {"text": "hi"})
    assert not line("output", "c", {"text": "c", "extra": 1})  # more than its line: its own
    assert line("raw", "not json") and line("raw", "nor this")
    assert line("output", "d")
    big = "y" * 40_000
    assert line("output", big) and line("output", big)  # the second starts a new run
    run.close()
    assert items == [
        ("output", None, (0, 3)),
        ("message", {"text": "hi"}, (4, 5)),
        ("output", {"text": "c", "extra": 1}, (10, 1)),
        ("raw", None, (12, 17)),
        ("output", None, (30, 40_002)),
        ("output", None, (40_033, 40_000)),
    ]


def test_over_the_cap_everything_kept_stays_within_the_cap(tmp_path: Path, pa_home: Path) -> None:
    """issue 14 §5: an agent writing 4 MB against output.max_bytes = 1 MB: the session
    folder and pa.db (with its WAL) grow by at most 1.1× the cap in all (the head and tail
    lines were an event row each: 1.9×), and `pa logs` says what was cut exactly between
    the last line of the head and the first of the tail."""
    cap = 1_000_000
    write_settings(f"[output]\nmax_bytes = {cap}\n")
    repo = make_repo(tmp_path / "repo")
    assert pa("repo", "add", str(repo), "--name", "demo").returncode == 0
    n = 40_000
    data = "".join(LINE.format(i=i) + "\n" for i in range(n)).encode()
    db = [pa_home / "pa.db", pa_home / "pa.db-wal"]
    before = sum(disk_bytes(p) for p in db if p.exists())
    sid = _new(repo, _cat(tmp_path, data))
    kept = sum(disk_bytes(p) for p in db if p.exists()) - before + disk_bytes(pa_home / "sessions" / sid)
    assert kept <= cap * 1.1, f"{kept:,} bytes kept for a cap of {cap:,}"

    p = pa("logs", sid)
    assert p.returncode == 0, p.stderr
    shown = [x for x in p.stdout.split("\n") if x and not re.fullmatch(r"\[\w+ → \w+\]", x)]
    [at] = [i for i, x in enumerate(shown) if "cut here" in x]
    head, tail = shown[:at], shown[at + 1 :]
    assert head == [LINE.format(i=i) for i in range(len(head))] and len(head) > 1000
    assert tail == [LINE.format(i=i) for i in range(n - len(tail), n)] and len(tail) > 1000
    cut = int(re.sub(r"[^0-9]", "", shown[at].split(" bytes")[0]))
    assert cut == (n - len(head) - len(tail)) * 100
    with contextlib.closing(sqlite3.connect(pa_home / "pa.db")) as c:
        rows = c.execute("SELECT COUNT(*) FROM events WHERE session_id = ?", (sid,)).fetchone()
    assert rows[0] < 100
