"""Issue 14 §5: an agent's output is stored once, capped per turn (head and tail kept, the
cut said), and a disk that fills while an agent runs ends its turn ``failed``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from parallel_agents.sessions.orchestrator import App
from parallel_agents.store import Store
from tests.conftest import make_repo, output_lines
from tests.reliability.helpers import pa, wait_until, write_settings
from tests.reliability.test_disk_full import _fill, _tmpfs

LINE = "line {i:05d} " + "x" * 88  # 100 bytes with its newline


def _writer(tmp_path: Path, n: int) -> list[str]:
    agent = tmp_path / "writer.py"
    agent.write_text(
        "import sys\n"
        f"for i in range({n}):\n"
        f"    sys.stdout.write({LINE!r}.format(i=i) + '\\n')\n"
    )
    return [sys.executable, str(agent)]


def _finished(app: App, sid: str) -> None:
    def done() -> bool:
        app.refresh()
        return not app.store.session(sid).status.active

    wait_until(done, timeout=90, what=f"session {sid} to finish")


def test_each_output_line_is_stored_once(tmp_path: Path) -> None:
    """issue 14 §5: no event row carries a copy of its output line (the output file holds
    it); `pa logs --raw` still prints every line, once, read from that file."""
    repo = make_repo(tmp_path / "repo")
    n = 2000
    app = App.open()
    try:
        app.add_repo(repo, name="demo")
        s = app.new_session("talk", repo="demo", cmd=_writer(tmp_path, n))
        _finished(app, s.id)
        copies = app.store.db.execute(
            # (the turn's result, once, repeats its last line: that is the answer, kept)
            "SELECT COUNT(*) FROM events WHERE session_id = ? AND kind != 'result'"
            " AND (raw IS NOT NULL OR instr(payload, 'line ') > 0)",
            (s.id,),
        ).fetchone()[0]
        assert copies == 0
        # (A run of plain lines is one event, its text the lines: issue 14 §5.)
        outs = app.store.events(s.id, kinds=["output"])
        assert output_lines(outs) == [LINE.format(i=i) for i in range(n)]
        assert [e.raw for e in outs] == [e.payload["text"] for e in outs]
        live = app.store.events(s.id, kinds=["output"], with_raw=False)  # as SSE reads them
        assert output_lines(live) == [LINE.format(i=i) for i in range(n)]
        assert all(e.raw is None for e in live)
    finally:
        app.close()
    p = pa("logs", "--raw", s.id)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [LINE.format(i=i) for i in range(n)]


def test_events_stored_with_their_raw_text_stay_readable(tmp_path: Path, pa_home: Path) -> None:
    """issue 14 §5: a pa.db written before the change (the raw line in ``raw``) is
    migrated and its events read back with their raw text."""
    st = Store(pa_home)
    st.add_event("s1", "output", {"text": "hello"})
    st.db.execute("UPDATE events SET raw = 'hello raw'")
    st.close()
    st = Store(pa_home)
    try:
        [e] = st.events("s1")
        assert (e.payload, e.raw) == ({"text": "hello"}, "hello raw")
    finally:
        st.close()


def test_output_over_the_cap_keeps_head_and_tail_and_says_what_was_cut(
    tmp_path: Path, pa_home: Path
) -> None:
    """issue 14 §5: with output.max_bytes = 200000, a turn writing 1 MB keeps its first
    and last lines whole, on disk and as events, and one event says how much was cut;
    `pa logs` shows it."""
    cap = 200_000
    write_settings(f"[output]\nmax_bytes = {cap}\n")
    repo = make_repo(tmp_path / "repo")
    n = 10_000
    app = App.open()
    try:
        app.add_repo(repo, name="demo")
        s = app.new_session("talk", repo="demo", cmd=_writer(tmp_path, n))
        _finished(app, s.id)
        assert app.store.session(s.id).status.value == "idle"
        stdout = app.sup.turn_files(s.id, 1).stdout
        assert stdout.stat().st_size <= cap
        evs = app.store.events(s.id, kinds=["output", "raw"])
        cuts = [i for i, e in enumerate(evs) if "output_cut" in e.payload]
        assert len(cuts) == 1, [e.payload for e in evs if e.kind == "raw"]
        head = output_lines(evs[: cuts[0]])
        tail = output_lines(evs[cuts[0] + 1 :])
        every = [LINE.format(i=i) for i in range(n)]
        assert head == every[: len(head)] and len(head) > 100
        assert tail == every[n - len(tail) :] and len(tail) > 100
        cut = evs[cuts[0]].payload["output_cut"]
        assert cut == (n - len(head) - len(tail)) * 100
        raws = [str(e.raw) for e in evs[cuts[0] + 1 :]]
        assert "\n".join(raws).split("\n") == tail  # offsets still point right
    finally:
        app.close()
    p = pa("logs", s.id)
    assert p.returncode == 0, p.stderr
    assert f"{cut:,} bytes" in p.stdout and "cut" in p.stdout


def test_a_bad_output_cap_is_refused_with_a_hint(tmp_path: Path) -> None:
    """issue 14 §5: output.max_bytes is validated: a clear error, no traceback."""
    write_settings('[output]\nmax_bytes = "lots"\n')
    p = pa("ls")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stderr.startswith("error: output.max_bytes"), p.stderr
    assert "hint:" in p.stderr


def test_a_disk_filling_while_the_agent_runs_fails_the_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 §5: the disk fills while an agent writes: its turn ends `failed` with
    "disk full" once there is room again (never a stuck `running`), and `pa wait` ends."""
    mnt = tmp_path / "small"
    with _tmpfs(mnt, "8m") as ok:
        if not ok:
            pytest.skip("needs a tmpfs mount: run the suite as root")
        monkeypatch.setenv("PA_HOME", str(mnt / "home"))
        repo = make_repo(tmp_path / "repo")
        go = tmp_path / "go"
        agent = tmp_path / "flood.py"
        agent.write_text(
            "import os, sys, time\n"
            f"while not os.path.exists({str(go)!r}):\n"
            "    time.sleep(0.01)\n"
            "while True:\n"
            "    sys.stdout.write('y' * 99 + '\\n')\n"
        )
        app = App.open()
        try:
            app.add_repo(repo, name="demo")
            s = app.new_session("flood", repo="demo", cmd=[sys.executable, str(agent)])
            files = app.sup.turn_files(s.id, 1)
            wait_until(lambda: files.pid(), timeout=30, what="the agent to start")
            ballast = _fill(mnt)
            go.write_text("")
            pid = files.pid()
            assert pid

            def gone() -> bool:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return True
                return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"

            wait_until(gone, timeout=60, what="the agent to stop writing into a full disk")
            ballast.unlink()
            _finished(app, s.id)
            sess = app.store.session(s.id)
            assert sess.status.value == "failed"
            assert "disk full" in (sess.error or ""), sess.error
            assert app.store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            app.close()
        p = pa("wait", "--timeout", "30", s.id)
        assert p.returncode == 1, p.stdout + p.stderr
        row = json.loads(pa("show", s.id, "--json").stdout)
        assert row["status"] == "failed"


def test_read_commands_work_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 §5: with PA_HOME's disk full and nothing holding pa.db open, `pa show`,
    `pa ls`, `pa logs` (also --raw), `pa diff` and `pa wait` answer from what is stored and
    write nothing."""
    mnt = tmp_path / "small"
    with _tmpfs(mnt, "8m") as ok:
        if not ok:
            pytest.skip("needs a tmpfs mount: run the suite as root")
        home = mnt / "home"
        monkeypatch.setenv("PA_HOME", str(home))
        repo = make_repo(tmp_path / "repo")
        app = App.open()
        try:
            app.add_repo(repo, name="demo")
            s = app.new_session("talk", repo="demo", cmd=_writer(tmp_path, 20))
            _finished(app, s.id)
        finally:
            app.close()
        assert pa("ls").returncode == 0  # as a user had: the CLI has run here before
        before = sorted((p.name, p.stat().st_size) for p in home.glob("pa.db*"))
        ballast = _fill(mnt)
        try:
            for args in (
                ("show", s.id),
                ("ls",),
                ("logs", s.id),
                ("logs", "--raw", s.id),
                ("diff", s.id, "--stat"),
                ("wait", s.id),
            ):
                p = pa(*args)
                assert p.returncode == 0, (args, p.stderr)
                assert "Traceback" not in p.stderr, p.stderr
                if args[0] == "logs":
                    assert LINE.format(i=19) in p.stdout, p.stdout
                elif args[0] != "diff":
                    assert s.id in p.stdout, p.stdout
            after = sorted(
                (p.name, p.stat().st_size) for p in home.glob("pa.db*") if p.stat().st_size > 8
            )
            assert after == [x for x in before if x[1] > 8]
        finally:
            ballast.unlink()
