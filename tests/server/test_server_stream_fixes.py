"""The live stream and the dashboard's API: issue 11 F.4 and F.7, issue 20 §5 (SSE).

- An agent's error event is named ``agent_error`` on the wire (EventSource fires messages
  named ``error`` at the connection-error handler); its JSON kind stays ``error``.
- A ``Last-Event-ID`` above the newest stored id (a reset database) resumes at the newest
  id with a ``reset`` message instead of a stream that stays silent for ever.
- ``GET /api/v1/agents`` and ``GET /api/v1/statuses`` exist; "live" is one definition.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from parallel_agents.client import parse_sse
from parallel_agents.models import Status
from tests.server.conftest import Srv, pa_cli

PY = sys.executable


class Reader:
    """SSE messages (id-only ones too) of an open response, read up to a condition; fails
    after a timeout (the server's heartbeat comments keep the reading loop turning)."""

    def __init__(self, resp: httpx.Response) -> None:
        self.deadline = 0.0
        self.msgs = parse_sse(self._lines(resp))

    def _lines(self, resp: httpx.Response) -> Iterator[str]:
        for line in resp.iter_lines():
            if time.monotonic() > self.deadline:
                raise AssertionError("the stream did not deliver in time")
            yield line

    def until(
        self, stop: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        self.deadline = time.monotonic() + timeout
        out: list[dict[str, Any]] = []
        for msg in self.msgs:
            out.append(msg)
            if stop(out):
                return out
        raise AssertionError(f"the stream ended; got {out!r}")


def test_agent_error_events_are_named_agent_error_on_the_wire(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 11 F.4: a failed command's error event reaches SSE as ``event: agent_error``
    (never ``event: error``) with the JSON kind ``error``; the client still yields it."""
    srv = start_server(env={"PA_SERVER_HEARTBEAT": "0.3"})
    cmd = [PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    [s] = srv.client.new_sessions("fail", repo=repo_path, cmd=cmd)
    srv.wait_status(s["id"], "failed")
    auth = {"Authorization": f"Bearer {srv.token}"}
    with (
        httpx.Client(base_url=srv.url, headers=auth, timeout=30) as h,
        h.stream("GET", f"/api/v1/sessions/{s['id']}/stream") as r,
    ):
        msgs = Reader(r).until(lambda m: any(x["event"] == "attention" for x in m))
    names = [m["event"] for m in msgs if m["data"] is not None]
    assert "agent_error" in names and "error" not in names
    [err] = [json.loads(m["data"]) for m in msgs if m["event"] == "agent_error"]
    assert err["kind"] == "error" and err["payload"]["message"]
    seen = []
    for ev in srv.client.stream(session_id=s["id"]):
        seen.append(ev["kind"])
        if ev["kind"] == "attention":
            break
    assert "error" in seen


def test_last_event_id_above_the_newest_resumes_at_the_newest(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """Issue 20 §5: a Last-Event-ID above the newest stored id (a database reset) is clamped
    to the newest id: the stream says ``reset`` and then delivers new events (it stayed
    silent for ever). The client's stream skips the reset and goes on."""
    srv = start_server(env={"PA_SERVER_HEARTBEAT": "0.3"})
    [first] = srv.client.new_sessions("one", repo=repo_path, cmd=[PY, "-c", "print('one')"])
    srv.wait_status(first["id"], "idle")
    newest = srv.client.all_events()[-1]["id"]
    auth = {"Authorization": f"Bearer {srv.token}"}
    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as h:
        for how in ("header", "query"):
            too_far = newest + 5000
            headers = {"Last-Event-ID": str(too_far)} if how == "header" else {}
            params = {} if how == "header" else {"last_event_id": str(too_far)}
            with h.stream("GET", "/api/v1/stream", headers=headers, params=params) as r:
                assert r.status_code == 200
                rd = Reader(r)
                head = rd.until(lambda m: any(x["event"] == "reset" for x in m))
                assert head[0]["id"] == newest and head[0]["data"] is None
                reset = head[-1]
                assert reset["id"] == newest
                assert json.loads(reset["data"]) == {"last_id": newest, "requested": too_far}
                [s] = srv.client.new_sessions(how, repo=repo_path, cmd=[PY, "-c", "print(1)"])
                sid = s["id"]
                msgs = rd.until(
                    lambda m, sid=sid: any(
                        x["data"] and json.loads(x["data"]).get("session_id") == sid for x in m
                    ),
                )
                got = json.loads(next(m["data"] for m in msgs if m["data"]))
                assert got["id"] > newest
            srv.wait_status(s["id"], "idle")
            newest = srv.client.all_events()[-1]["id"]
        # Ids that are not ids are still refused.
        r2 = h.get("/api/v1/stream", headers={"Last-Event-ID": "-1"})
        assert r2.status_code == 400
    # The Python client: a reset moves its resume point and yields nothing itself.
    made: list[dict[str, Any]] = []

    def connected() -> None:
        made.extend(srv.client.new_sessions("c", repo=repo_path, cmd=[PY, "-c", "print(2)"]))

    ev = next(srv.client.stream(after_id=newest + 99, on_connect=connected))
    assert ev["session_id"] == made[0]["id"] and ev["id"] > newest


def test_agents_and_statuses_routes(start_server: Callable[..., Srv], repo_path: Path) -> None:
    """Issue 11 F.7: GET /api/v1/agents answers (the dashboard asked it and got 404), the
    default agent first; GET /api/v1/statuses gives the one definition of "live", and the
    session list without `all` (as `pa ls`) holds exactly the live sessions."""
    srv = start_server()
    auth = {"Authorization": f"Bearer {srv.token}"}
    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as h:
        r = h.get("/api/v1/agents")
        assert r.status_code == 200, r.text
        data = r.json()
        names = [a["name"] for a in data["agents"]]
        assert names[0] == data["default"] == "command"
        assert {"claude", "codex", "command"} <= set(names)
        st = h.get("/api/v1/statuses").json()["statuses"]
        assert {x["name"]: x["live"] for x in st} == {s.value: s.live for s in Status}
        assert {x["name"] for x in st if not x["live"]} == {"merged", "discarded"}
        live = {x["name"] for x in st if x["live"]}

    made = srv.client.new_sessions("x", repo=repo_path, cmd=[PY, "-c", "print(1)"], count=2)
    for s in made:
        srv.wait_status(s["id"], "idle")
    srv.client.discard(made[1]["id"])
    listed = srv.client.list_sessions()
    assert [s["id"] for s in listed] == [made[0]["id"]]
    assert all(s["status"] in live for s in listed)
    p = pa_cli("ls", "--json", env={"PA_HOME": str(srv.home)})
    assert p.returncode == 0, p.stderr
    assert [s["id"] for s in json.loads(p.stdout)] == [made[0]["id"]]
