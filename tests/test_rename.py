"""Issue 13: `pa rename ID TITLE`, the verb that shows a new verb touches four places
(sessions/orchestrator.py, server/routes/sessions.py, client.Client, cli/sessions.py).

Real git, the real `pa` CLI with the `command` agent, in-process and through the server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, no_traceback, wait_ok


def _session(tmp_path: Path) -> tuple[Path, str, str]:
    repo = make_repo(tmp_path / "proj", {"a.txt": "base\n"})
    s = new_json("first prompt", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    return repo, sid, str(s["branch"])


def _renames_and_refuses(tmp_path: Path) -> None:
    repo, sid, branch = _session(tmp_path)
    p = pa("rename", sid, "  login:   fix the redirect loop ", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["id"] == sid and d["title"] == "login: fix the redirect loop"
    assert d["branch"] == branch  # the branch keeps its name
    assert git(repo, "branch", "--list", branch).strip()
    listed = json.loads(pa("ls", "--json").stdout)
    assert [s["title"] for s in listed if s["id"] == sid] == ["login: fix the redirect loop"]
    assert pa("rename", sid[:6], "second").stdout.startswith(f"{sid}  second")  # a prefix works
    logs = pa("logs", sid).stdout
    assert "renamed: 'first prompt' → 'login: fix the redirect loop'" in logs
    assert "renamed: 'login: fix the redirect loop' → 'second'" in logs

    for title, words in (("   ", "the title is empty"), ("x" * 201, "at most 200")):
        bad = pa("rename", sid, title)
        no_traceback(bad)
        assert bad.returncode == 2 and words in bad.stderr and "hint:" in bad.stderr, bad.stderr
    unknown = pa("rename", "ffffffff", "t")
    no_traceback(unknown)
    assert unknown.returncode != 0 and "ffffffff" in unknown.stderr
    assert json.loads(pa("show", sid, "--json").stdout)["title"] == "second"  # nothing changed


def test_rename_in_process(tmp_path: Path) -> None:
    """`pa rename` with no server (the in-process transport runs the same route)."""
    _renames_and_refuses(tmp_path)


@pytest.mark.usefixtures("server_mode")
def test_rename_through_the_server(tmp_path: Path) -> None:
    """`pa rename` through the background server: the same answers and errors."""
    _renames_and_refuses(tmp_path)
