"""Issue 11 G through the real server: bad input is refused with 400 before anything is
created, and names travel in URLs as data (a '?' in a name is not a query string)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.errors import UsageError
from tests.conftest import git, make_repo, pa

from .conftest import Srv, pa_cli


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("env", {"A=B": "x"}),
        ("env", {"": "x"}),
        ("env", {"OK": "a\0b"}),
        ("prompt", "do\0 it"),
        ("title", "t\0"),
        ("cmd", ["true", "a\0b"]),
        ("model", "m\0"),
    ],
)
def test_api_refuses_input_no_process_can_receive(
    start_server: Callable[..., Srv], repo_path: Path, field: str, value: object
) -> None:
    """issue 11 G: env keys with '=' or empty, values and prompts with NUL are a 400, not a
    session whose turn then dies as 'interrupted — machine restarted?'."""
    srv = start_server()
    prompt = str(value) if field == "prompt" else "x"
    kw: dict[str, Any] = {"repo": str(repo_path), "cmd": ["true"]}
    if field != "prompt":
        kw[field] = value
    with pytest.raises(UsageError):
        srv.client.new_sessions(prompt, **kw)
    assert srv.client.list_sessions(all=True) == []
    assert git(repo_path, "branch", "--list", "pa/*") == ""


def test_repo_rm_with_url_syntax_in_the_name_removes_nothing_else(
    start_server: Callable[..., Srv], tmp_path: Path
) -> None:
    """issue 11 G: `pa repo rm 'other?y'` once removed the repo `other` (path segment not
    quoted); now it is an unknown name and `other` keeps its sessions."""
    srv = start_server()
    other = make_repo(tmp_path / "other")
    s = srv.client.new_sessions("x", repo=str(other), cmd=["true"])[0]
    srv.wait_status(s["id"], "idle")
    for name in ("other?y", "other#x", "other%3F", "other/"):
        p = pa_cli("repo", "rm", name)
        assert p.returncode == 2, (name, p.stdout, p.stderr)
        assert "no registered repo" in p.stderr or "is not a repo name" in p.stderr, p.stderr
    assert [r["name"] for r in srv.client.list_repos()] == ["other"]
    assert [x["id"] for x in srv.client.list_sessions(all=True)] == [s["id"]]
    for prefix in ("%", "_"):
        p = pa("show", prefix)
        assert p.returncode == 2 and "no session matches" in p.stderr, p.stderr


def test_weird_auto_registered_repo_can_be_removed_through_the_server(
    start_server: Callable[..., Srv], tmp_path: Path
) -> None:
    """issue 11 G: a repo auto-registered from a folder named 'a b?$(x)' gets a valid name
    (`pa repo add`'s rule) and `pa repo rm` of that name works through the server."""
    srv = start_server()
    weird = make_repo(tmp_path / "a b?$(x)")
    s = srv.client.new_sessions("x", repo=str(weird), cmd=["true"])[0]
    assert s["repo_name"] == "a-b-x"
    srv.wait_status(s["id"], "idle")
    assert pa_cli("discard", s["id"]).returncode == 0
    p = pa_cli("repo", "rm", "a-b-x", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["name"] == "a-b-x"
    assert srv.client.list_repos() == []
