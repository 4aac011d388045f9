"""Attention: unread marks, desktop notifications (a fake notify-send), `pa watch`."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.server.conftest import PA, Srv, wait_for

PY = sys.executable


class Lines:
    """Reads a pipe on a thread so the test can wait for lines with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        for line in pipe:
            self.q.put(line.rstrip("\n"))

    def until(self, pred: Callable[[list[str]], bool], timeout: float, what: str) -> list[str]:
        def check() -> bool:
            while not self.q.empty():
                self.seen.append(self.q.get())
            return pred(self.seen)

        wait_for(check, timeout, what)
        return self.seen


def test_attention_notifies_and_watch_prints(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    calls = tmp_path / "notify-calls.jsonl"
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    fake = fakebin / "notify-send"
    fake.write_text(
        f"#!{PY}\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    env = {"PATH": f"{fakebin}{os.pathsep}{os.environ['PATH']}"}
    srv = start_server(env=env)  # notify defaults to on

    full_env = {**os.environ, **env}
    watchers = {
        mode: subprocess.Popen(
            [*PA, "watch", *(["--json"] if mode == "json" else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        for mode in ("json", "text")
    }
    try:
        out = {m: Lines(p.stdout) for m, p in watchers.items()}  # type: ignore[arg-type]
        err = {m: Lines(p.stderr) for m, p in watchers.items()}  # type: ignore[arg-type]
        for m in watchers:
            err[m].until(lambda ls: any("watching" in x for x in ls), 30, "watch to connect")

        c = srv.client
        [ok] = c.new_sessions(
            "all good", repo=repo_path, cmd=[PY, "-c", "print('done')"], title="-all good"
        )
        [bad] = c.new_sessions(
            "broken", repo=repo_path, cmd=[PY, "-c", "import sys; print('oops'); sys.exit(3)"]
        )
        srv.wait_status(ok["id"], "idle")
        srv.wait_status(bad["id"], "failed")

        lines = out["json"].until(lambda ls: len(ls) >= 2, 30, "two attention events")
        got: dict[str, Any] = {}
        for line in lines:
            ev = json.loads(line)
            assert ev["kind"] == "attention"
            got[ev["session_id"]] = ev
        assert got[ok["id"]]["payload"] == {"status": "idle"}
        assert got[ok["id"]]["session"]["title"] == "-all good"
        assert got[bad["id"]]["payload"] == {"status": "failed"}
        assert got[bad["id"]]["session"]["error"].startswith("exit code 3")
        assert isinstance(got[bad["id"]]["id"], int)

        text = out["text"].until(lambda ls: len(ls) >= 2, 30, "two lines")
        line_ok = next(x for x in text if ok["id"] in x)
        line_bad = next(x for x in text if bad["id"] in x)
        assert "idle" in line_ok and "-all good" in line_ok
        assert "failed" in line_bad and "exit code 3" in line_bad

        # Desktop notifications: one per attention event, via notify-send's argv.
        recorded = wait_for(
            lambda: calls.exists() and len(calls.read_text().splitlines()) >= 2 and calls,
            15,
            "two notify-send calls",
        )
        argvs = [json.loads(x) for x in recorded.read_text().splitlines()]
        assert len(argvs) == 2
        by_title = {a[-2]: a for a in argvs}
        done = by_title["pa: -all good finished its turn"]
        assert "--urgency=normal" in done and done[-3] == "--"  # '-all' stays a title
        assert ok["id"] in done[-1]
        failed = by_title["pa: broken failed"]
        assert "--urgency=critical" in failed and "exit code 3" in failed[-1]

        # Unread until the person looks.
        assert c.get_session(ok["id"])["unread"] is True
        assert c.mark_read(ok["id"])["unread"] is False
        assert c.get_session(ok["id"])["unread"] is False
        assert c.get_session(bad["id"])["unread"] is True
    finally:
        for p in watchers.values():
            p.terminate()
            p.wait(10)
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
    for p in watchers.values():
        assert p.returncode is not None
