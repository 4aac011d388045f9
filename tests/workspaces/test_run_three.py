"""Issue 16 §1, Done when: a sample repo whose run script is a tiny HTTP server; three
sessions run at once on distinct ports and each preview URL answers with its own
worktree's content (real HTTP requests, through the background server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import pa
from tests.workspaces.test_run_script import get, repo_with, until

SERVE = f"{sys.executable} -m http.server $PA_PORT --bind 127.0.0.1"


def test_three_sessions_serve_their_own_worktrees_at_once(
    tmp_path: Path, server_mode: Path
) -> None:
    """issue 16 §1: three run scripts at once, on distinct ports, each preview URL
    answering with its own worktree's index.html (the agent wrote it)."""
    repo = repo_with(tmp_path, f'run = "{SERVE}"\nports = 3\n', {"index.html": "base\n"})
    sids = []
    for n in range(3):
        agent = f"sh -c 'echo session {n} > index.html'"
        out = pa("new", f"page {n}", "--cmd", agent, "--json", cwd=repo, check=True)
        sids.append(str(json.loads(out.stdout)["id"]))
    pa("wait", *sids, check=True)
    urls = []
    try:
        for sid in sids:
            r = json.loads(pa("run", sid, "--json", check=True).stdout)
            assert r["running"]
            urls.append(r["ports"][0]["url"])
        assert len(set(urls)) == 3
        for n, (sid, url) in enumerate(zip(sids, urls, strict=True)):
            page = until(lambda url=url: get(url + "/index.html"), f"{url} to answer")
            assert page == f"session {n}\n"
            shown = json.loads(pa("show", sid, "--json", check=True).stdout)["run"]
            assert url in shown["urls"]
    finally:
        for sid in sids:
            pa("run", sid, "--stop")
    for url in urls:
        assert get(url + "/index.html") is None


def test_a_run_started_by_the_agent_through_the_server_outlives_its_turn(
    tmp_path: Path, server_mode: Path
) -> None:
    """issue 16 §1: an agent that types `pa run` during its turn has the server start the
    script (not the turn, without its tag): the wrapper's end-of-turn sweep leaves it
    running, and it answers after the turn ended."""
    repo = repo_with(tmp_path, f'run = "{SERVE}"\nports = 1\n', {"index.html": "mine\n"})
    agent = f"sh -c '{sys.executable} -m parallel_agents run $PA_SESSION_ID --json > run.json'"
    out = pa("new", "serve it", "--cmd", agent, "--json", cwd=repo, check=True)
    sid = str(json.loads(out.stdout)["id"])
    pa("wait", sid, check=True)
    try:
        r = json.loads((Path(json.loads(out.stdout)["worktree"]) / "run.json").read_text())
        url = r["ports"][0]["url"]
        assert until(lambda: get(url + "/index.html"), "the server") == "mine\n"
        assert json.loads(pa("show", sid, "--json", check=True).stdout)["run"]["running"]
    finally:
        pa("run", sid, "--stop")
