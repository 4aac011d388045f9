"""issue 17: a routine's HTTP trigger on a real server: `POST /api/v1/routines/NAME/fire`
with the routine's own token (shown once, stored hashed, rotated), never the server's;
bad bodies, rate limit and overlap refused with nothing started; every call recorded."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from parallel_agents import config
from parallel_agents.errors import UsageError
from tests.server.conftest import Srv, pa_cli, repo_path, start_server, wait_for

__all__ = ["repo_path", "start_server"]  # fixtures, used by name


def _fire(srv: Srv, name: str, token: str | None, body: Any = None, **kw: Any) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    return httpx.post(
        f"{srv.url}/api/v1/routines/{name}/fire", content=content, headers=headers, timeout=60
    )


def _cli(srv: Srv, *args: str) -> Any:
    p = pa_cli(*args, "--json", env=srv.env)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


def _sessions(srv: Srv) -> list[dict[str, Any]]:
    return srv.client.list_sessions(all=True)


def _db_text(home: Path) -> str:
    """Every value of every table of pa.db, as text (to look for a secret in it)."""
    con = sqlite3.connect(home / "pa.db")
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for t in tables for row in con.execute(f"SELECT * FROM {t}")
        )
    finally:
        con.close()


def test_token_shown_once_hashed_rotated_and_never_the_server_token(
    start_server: Callable[..., Srv], repo_path: Path
) -> None:
    """issue 17: `add --api` shows the token once and stores only its SHA-256; `token`
    without --rotate refuses; --rotate revokes the old one at once. The server token, a
    wrong, missing or revoked token, a routine without --api and an unknown name all get
    401 with nothing started and the call recorded; a malformed body gets 400."""
    srv = start_server()
    made = _cli(srv, "routine", "add", "hook", "--prompt", "triage: {text}", "--cmd", "cat",
                "--repo", str(repo_path), "--api")
    token = made["token"]
    assert token and made["triggers"] == ["api"] and made["next_due"] is None
    db = _db_text(srv.home)
    assert token not in db and hashlib.sha256(token.encode()).hexdigest() in db
    assert "token" not in _cli(srv, "routine", "show", "hook")
    p = pa_cli("routine", "token", "hook", env=srv.env)
    assert p.returncode != 0 and "error:" in p.stderr and "--rotate" in p.stderr, p.stderr
    _cli(srv, "routine", "add", "timed", "--prompt", "x", "--cmd", "true", "--every", "1h",
         "--repo", str(repo_path))

    refusals = [
        ("hook", srv.token),  # the server token opens every route but this one
        ("hook", None),
        ("hook", "pa_rt_wrong"),
        ("timed", srv.token),  # no --api
        ("nosuch", token),  # same answer as a wrong token: names are not revealed
    ]
    for name, tok in refusals:
        r = _fire(srv, name, tok, {"text": "x"})
        assert r.status_code == 401, (name, r.text)
        assert r.json()["error"] == "missing or wrong routine token"
    # The routine token opens /fire only: no other route, and not /fire by GET.
    hdr = {"Authorization": f"Bearer {token}"}
    assert httpx.post(f"{srv.url}/api/v1/routines/hook/run", headers=hdr).status_code == 401
    assert httpx.get(f"{srv.url}/api/v1/routines/hook/fire", headers=hdr).status_code == 401
    assert httpx.get(f"{srv.url}/api/v1/routines", headers=hdr).status_code == 401
    # Host and Origin checks still apply to the trigger.
    assert _fire(srv, "hook", token, headers={"Host": "evil.example"}).status_code == 400
    assert _fire(srv, "hook", token, headers={"Origin": "http://evil.example"}).status_code == 403
    for bad in (b"{not json", {"text": 5}, {"text": "a\x1b[31mb"}, {"text": "x", "more": 1},
                ["text"], {"text": "y" * 9000}):
        r = _fire(srv, "hook", token, bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] and r.json()["hint"]
    assert _sessions(srv) == []

    rotated = _cli(srv, "routine", "token", "hook", "--rotate")["token"]
    assert rotated != token and rotated not in _db_text(srv.home)
    assert _fire(srv, "hook", token).status_code == 401  # revoked at once
    assert _sessions(srv) == []
    ok = _fire(srv, "hook", rotated)
    assert ok.status_code == 202, ok.text
    assert ok.json()["routine"] == "hook" and ok.json()["run"] == 1 and ok.json()["session"]

    calls = _cli(srv, "routine", "calls", "hook")
    codes = [c["code"] for c in reversed(calls)]
    assert codes == [401, 401, 401] + [400] * 6 + [401, 202], calls
    assert all(c["remote"] == "127.0.0.1" for c in calls)
    assert calls[0]["run"] == 1
    assert "'nosuch'" in _db_text(srv.home)  # recorded, though no such routine
    # A routine removed takes its token along: one of the same name made again has none.
    _cli(srv, "routine", "rm", "hook")
    _cli(srv, "routine", "add", "hook", "--prompt", "x", "--cmd", "true", "--every", "1h",
         "--repo", str(repo_path))
    assert _fire(srv, "hook", rotated).status_code == 401
    assert hashlib.sha256(rotated.encode()).hexdigest() not in _db_text(srv.home)
    for secret in (token, rotated):
        assert secret not in json.dumps(calls)
        assert secret not in (srv.home / "server.log").read_text()


def test_fire_text_rate_limit_and_overlap(
    start_server: Callable[..., Srv], repo_path: Path, tmp_path: Path
) -> None:
    """issue 17: a fire's text reaches the agent's prompt ({text}, or after a prompt
    without it); overlap skip answers 409 while the previous run works; past
    routines.fire_per_minute a fire gets 429 with Retry-After and starts nothing."""
    srv = start_server("[routines]\nfire_per_minute = 3\n")
    gate = tmp_path / "gate"
    seen = tmp_path / "prompt.txt"
    # The agent writes the prompt it got, then works until the test opens the gate.
    wait = ["sh", "-c", f'cat > "{seen}"; while [ ! -e "{gate}" ]; do sleep 0.1; done']
    token = srv.client.routine_add(
        "slow", "bug report: {text}", cmd=wait, repo=str(repo_path), api=True
    )["token"]
    first = _fire(srv, "slow", token, {"text": "the login page is blank"})
    assert first.status_code == 202, first.text
    sid = first.json()["session"]
    wait_for(lambda: seen.exists() and seen.read_text() == "bug report: the login page is blank",
             30, "the prompt with the fire's text", diagnose=srv.diagnose)
    busy = _fire(srv, "slow", token, {"text": "again"})
    assert busy.status_code == 409 and "still working" in busy.json()["error"], busy.text
    gate.touch()
    srv.wait_status(sid, "idle", timeout=60)

    plain = srv.client.routine_add(
        "plain", "look at the logs", cmd=["cat"], repo=str(repo_path), api=True,
        overlap="allow",
    )["token"]
    one = _fire(srv, "plain", plain, {"text": "disk full on web-2"})
    assert one.status_code == 202, one.text
    srv.wait_output(one.json()["session"], "disk full on web-2")
    assert _fire(srv, "plain", plain).status_code == 202
    assert _fire(srv, "plain", plain).status_code == 202
    n = len(_sessions(srv))
    over = _fire(srv, "plain", plain)
    assert over.status_code == 429, over.text
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert len(_sessions(srv)) == n
    # The other routine has its own budget.
    assert _fire(srv, "slow", token).status_code == 202
    calls = srv.client.routine_calls("plain")
    assert [c["code"] for c in calls] == [429, 202, 202, 202]
    assert [c["run"] for c in calls] == [None, 3, 2, 1]
    hist = srv.client.routine_history("plain")
    assert [(h["run"], h["reason"]) for h in hist] == [(3, "api"), (2, "api"), (1, "api")]
    assert [c["code"] for c in srv.client.routine_calls("slow")] == [202, 409, 202]


def test_every_first_due_one_interval_after_add() -> None:
    """issue 17: an `--every` routine added at a fractional time is first due one interval
    later, not at once (the anchor is that time rounded up to a whole second)."""
    from datetime import UTC, datetime

    from parallel_agents.sessions import routine_schedule as rs

    t = rs.every_trigger("1h", 1000.25, 60)
    assert t["anchor"] == 1001.0
    first = rs.next_of([t], datetime.fromtimestamp(1000.25, UTC))
    assert first is not None and first.timestamp() == 1001.0 + 3600


def test_cli_api_routine_in_process(repo: Path, pa_home: Path) -> None:
    """issue 17: without a server, `pa routine add --api` prints the token once (text),
    `token` refuses without --rotate, `token --rotate --json` gives a new one, `ls` shows
    the api trigger with no next run, `calls --json` lists none yet."""
    from tests.conftest import pa

    p = pa("routine", "add", "hook", "--prompt", "t {text}", "--cmd", "true", "--api", cwd=repo,
           check=True)
    line = next(x for x in p.stdout.splitlines() if x.startswith("token"))
    first = line.split()[-1]
    assert first.startswith("pa_rt_") and "/api/v1/routines/hook/fire" in p.stdout
    assert first not in pa("routine", "show", "hook", check=True).stdout
    refused = pa("routine", "token", "hook")
    assert refused.returncode != 0 and "error:" in refused.stderr and "hint:" in refused.stderr
    new = json.loads(pa("routine", "token", "hook", "--rotate", "--json", check=True).stdout)
    assert new["token"].startswith("pa_rt_") and new["token"] != first
    db = _db_text(pa_home)
    assert first not in db and new["token"] not in db
    assert hashlib.sha256(new["token"].encode()).hexdigest() in db
    [row] = json.loads(pa("routine", "ls", "--json", check=True).stdout)
    assert row["triggers"] == ["api"] and row["next_due"] is None
    assert json.loads(pa("routine", "calls", "hook", "--json", check=True).stdout) == []
    pa("routine", "add", "timed", "--prompt", "x", "--cmd", "true", "--every", "1h", cwd=repo,
       check=True)
    no_api = pa("routine", "token", "timed", "--rotate")
    assert no_api.returncode != 0 and "no HTTP trigger" in no_api.stderr


def test_fire_per_minute_setting_is_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """issue 17: routines.fire_per_minute defaults to 6 and must be a whole number >= 1."""
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("PA_CONFIG", str(cfg))
    cfg.write_text("[routines]\nmin_interval = 5\n")
    assert config.routine_fire_per_minute(config.load_settings()) == 6
    for bad in ("0", "2.5", '"6"', "true"):
        cfg.write_text(f"[routines]\nfire_per_minute = {bad}\n")
        with pytest.raises(UsageError, match="fire_per_minute"):
            config.load_settings()


def test_max_unreviewed_holds_fires_back(repo: Path) -> None:
    """issue 17: with --max-unreviewed 1, a fire while one run waits unread in the inbox
    gets 409 and starts nothing; once that run is read, the next fire starts."""
    from parallel_agents.sessions import routine_api, routines
    from parallel_agents.sessions.orchestrator import App

    app = App.open()
    try:
        app.add_repo(repo, "r")
        token, h = routine_api.new_token()
        routines.add(app, "hook", "x {text}", repo="r", cmd=["true"], overlap="allow",
                     max_unreviewed=1, api_hash=h)
        auth = f"Bearer {token}"
        first = routine_api.fire(app, "hook", auth, b"", "127.0.0.1")
        assert first.status == 202, first.body
        held = routine_api.fire(app, "hook", auth, b"", "127.0.0.1")
        assert held.status == 409 and "unreviewed" in held.body["error"], held.body
        assert [x.n for x in app.store.routine_runs("hook")] == [1]
        app.mark_read(first.body["session"])
        assert routine_api.fire(app, "hook", auth, b"", "127.0.0.1").status == 202
        assert [c["code"] for c in routine_api.calls(app, "hook")] == [202, 409, 202]
    finally:
        app.close()
