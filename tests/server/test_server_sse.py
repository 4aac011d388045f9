"""SSE: ids, kinds, heartbeats; a reconnect with Last-Event-ID gets exactly what it missed."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from parallel_agents.client import parse_sse
from tests.conftest import output_lines
from tests.server.conftest import Srv, wait_for, write_script

PY = sys.executable

LINES = """\
import sys, time
n = int(sys.argv[1])
for i in range(1, n + 1):
    print(f"line {i}", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _read(
    resp: httpx.Response, stop: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Data messages from an open SSE response until ``stop(messages)``."""
    out: list[dict[str, Any]] = []
    for msg in parse_sse(resp.iter_lines()):
        if msg["data"] is None:
            continue
        ev = json.loads(msg["data"])
        assert msg["id"] == ev["id"] and msg["event"] == ev["kind"]
        out.append(ev)
        if stop(out):
            break
    return out


def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server(env={"PA_SERVER_HEARTBEAT": "0.3"})
    script = write_script(tmp_path, "lines.py", LINES)
    ids = [
        s["id"]
        for s in srv.client.new_sessions(
            "count", repo=repo_path, cmd=[PY, str(script), "150", "0.005"], count=2
        )
    ]
    auth = {"Authorization": f"Bearer {srv.token}"}
    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as h:
        # Connect from the beginning, read some, drop the connection mid-stream.
        with h.stream("GET", "/api/v1/stream", params={"after_id": 0}) as r:
            assert r.status_code == 200
            # (40 lines: a run of lines read together is one event, issue 14 §5)
            first = _read(r, lambda evs: len(output_lines(evs)) >= 40)
        for sid in ids:
            srv.wait_status(sid, "idle")
        everything = srv.client.all_events()
        final_id = everything[-1]["id"]
        # Reconnect: Last-Event-ID as browsers send it.
        headers = {"Last-Event-ID": str(first[-1]["id"])}
        with h.stream("GET", "/api/v1/stream", headers=headers) as r:
            rest = _read(r, lambda evs: evs[-1]["id"] >= final_id)
        got = [e["id"] for e in first + rest]
        assert got == [e["id"] for e in everything]  # no gap, no duplicate, in order
        assert first + rest == [{k: v for k, v in e.items() if k != "raw"} for e in everything]

        # One session's stream, resumed with ?last_event_id= and authorised by ?token=.
        mine = [e for e in everything if e["session_id"] == ids[1]]
        cut = mine[len(mine) // 2]["id"]
        params = {"last_event_id": str(cut), "token": srv.token}
        with (
            httpx.Client(base_url=srv.url, timeout=30) as bare,
            bare.stream("GET", f"/api/v1/sessions/{ids[1][:6]}/stream", params=params) as r,
        ):
            assert r.status_code == 200
            tail = _read(r, lambda evs: evs[-1]["id"] >= mine[-1]["id"])
        assert [e["id"] for e in tail] == [e["id"] for e in mine if e["id"] > cut]
        outputs = output_lines(mine)
        assert outputs == [f"line {i}" for i in range(1, 151)]

        # Filter by kind; the stream starts with an id-only message naming its start,
        # and idle streams get heartbeat comments.
        with h.stream("GET", "/api/v1/stream", params={"kinds": "attention"}) as r:
            lines: list[str] = []
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith(": ping"):
                    break
        assert f"id: {final_id}" in lines
        [new] = srv.client.new_sessions(
            "again", repo=repo_path, cmd=[PY, str(script), "3", "0"], title="again"
        )
        with h.stream(
            "GET", "/api/v1/stream", params={"kinds": "attention", "after_id": final_id}
        ) as r:
            [att] = _read(r, lambda evs: True)
        assert att["kind"] == "attention" and att["session_id"] == new["id"]
        assert att["payload"] == {"status": "idle"}


def test_client_stream_follows_a_session(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    srv = start_server()
    script = write_script(tmp_path, "lines.py", LINES)
    [s] = srv.client.new_sessions("count", repo=repo_path, cmd=[PY, str(script), "20", "0.01"])
    seen: list[dict[str, Any]] = []
    for ev in srv.client.stream(session_id=s["id"]):
        seen.append(ev)
        if ev["kind"] == "attention":
            break
    assert output_lines(seen) == [f"line {i}" for i in range(1, 21)]
    seqs = [e["seq"] for e in seen]
    assert seqs == list(range(1, len(seqs) + 1))
    assert wait_for(lambda: srv.session(s["id"])["status"] == "idle", 10, "idle")
