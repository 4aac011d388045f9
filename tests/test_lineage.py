"""issue 18: lead and child sessions (sessions/lineage.py): the parent tag and its depth,
the caps mcp.max_depth and mcp.max_children, the merge guard, and the views.

In-process (the same routes the server runs), real git, command agents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_agents.client import Client
from parallel_agents.errors import PAError
from tests.conftest import git, make_repo, pa
from tests.server.conftest import wait_for


@pytest.fixture
def cl() -> Iterator[Client]:
    yield Client.in_process()


def _new(cl: Client, repo: Path, title: str, parent: str | None = None, **kw: Any) -> Any:
    cmd = kw.pop("cmd", "true")
    return cl.new(title, repo=str(repo), cmd=cmd, title=title, parent=parent, **kw)


def _idle(cl: Client, sid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        cl.refresh()
        s = cl.session(sid)
        return None if s["status"] in ("queued", "starting", "running") else s

    out: dict[str, Any] = wait_for(done, 60, f"session {sid} to finish")
    return out


def _config(pa_home: Path, text: str) -> None:
    import os

    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "parallel-agents" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)


def test_a_child_is_tagged_with_its_parent_and_depth(tmp_path: Path, cl: Client) -> None:
    """issue 18: `parent=` (API and Client) tags the new session with its parent and its
    depth (the parent's + 1); the JSON carries `parent`."""
    repo = make_repo(tmp_path / "repo")
    lead = _new(cl, repo, "lead")
    assert lead["parent"] is None
    child = _new(cl, repo, "child", parent=lead["id"][:6])  # a prefix names it too
    assert child["parent"] == lead["id"]
    assert child["options"]["parent"] == {"id": lead["id"], "depth": 1}
    grand = _new(cl, repo, "grandchild", parent=child["id"])
    assert grand["options"]["parent"] == {"id": child["id"], "depth": 2}
    listed = {s["id"]: s["parent"] for s in cl.sessions(all=True)}
    assert listed == {lead["id"]: None, child["id"]: lead["id"], grand["id"]: child["id"]}


def test_an_unknown_parent_is_refused_and_nothing_is_made(tmp_path: Path, cl: Client) -> None:
    """issue 18: an unknown parent is a clear error; no session, worktree or branch."""
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(PAError) as e:
        _new(cl, repo, "orphan", parent="deadbeef")
    assert "unknown parent session 'deadbeef'" in e.value.message
    assert cl.sessions(all=True) == []
    assert git(repo, "branch", "--list", "pa/*").strip() == ""


def test_pa_new_parent(tmp_path: Path) -> None:
    """issue 18: `pa new --parent ID` starts a child; `--json` names its parent."""
    repo = make_repo(tmp_path / "repo")
    lead = json.loads(pa("new", "lead", "--cmd", "true", "--json", cwd=repo, check=True).stdout)
    r = pa("new", "child", "--cmd", "true", "--parent", lead["id"], "--json", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["parent"] == lead["id"]
    r = pa("new", "x", "--cmd", "true", "--parent", "nosuch", cwd=repo)
    assert r.returncode == 2 and "error: unknown parent session 'nosuch'" in r.stderr


def test_depth_cap_names_the_setting_and_makes_nothing(tmp_path: Path, cl: Client) -> None:
    """issue 18: a child deeper than mcp.max_depth (default 2) is refused, naming the
    setting; no worktree, no branch, no session row."""
    repo = make_repo(tmp_path / "repo")
    lead = _new(cl, repo, "lead")
    child = _new(cl, repo, "child", parent=lead["id"])
    grand = _new(cl, repo, "grand", parent=child["id"])
    branches = git(repo, "branch", "--list").split()
    with pytest.raises(PAError) as e:
        _new(cl, repo, "too deep", parent=grand["id"])
    assert "mcp.max_depth = 2" in e.value.message and "depth 3" in e.value.message
    assert len(cl.sessions(all=True)) == 3
    assert git(repo, "branch", "--list").split() == branches
    made = sorted(p.name for p in Path(child["worktree"]).parent.iterdir())
    assert made == sorted(s["id"] for s in (lead, child, grand))


def test_children_cap_counts_live_children_only(tmp_path: Path, pa_home: Path) -> None:
    """issue 18: mcp.max_children caps a parent's children that are not merged or
    discarded; a discarded child frees its place."""
    _config(pa_home, "[mcp]\nmax_children = 2\n")
    cl = Client.in_process()
    repo = make_repo(tmp_path / "repo")
    lead = _new(cl, repo, "lead")
    a = _new(cl, repo, "a", parent=lead["id"])
    _new(cl, repo, "b", parent=lead["id"])
    with pytest.raises(PAError) as e:
        _new(cl, repo, "c", parent=lead["id"])
    assert "mcp.max_children = 2" in e.value.message
    assert len(cl.sessions(all=True)) == 3
    _idle(cl, a["id"])
    cl.discard(a["id"])
    c = _new(cl, repo, "c", parent=lead["id"])
    assert c["parent"] == lead["id"]


def test_a_bad_cap_setting_is_refused(tmp_path: Path, pa_home: Path) -> None:
    """issue 18: mcp.max_depth must be a whole number of 0 or more."""
    _config(pa_home, "[mcp]\nmax_depth = -1\n")
    r = pa("ls")
    assert r.returncode == 2 and "mcp.max_depth must be a whole number" in r.stderr


def test_a_child_never_merges_into_its_parents_branch(tmp_path: Path, cl: Client) -> None:
    """issue 18: a child cannot be merged into its parent's session branch, nor into the
    branch the parent's worktree has checked out (API/merge queue and `pa merge --into`);
    nothing moves, and it merges into another branch as usual."""
    repo = make_repo(tmp_path / "repo")
    lead = _new(cl, repo, "lead")
    child = _new(cl, repo, "child", parent=lead["id"], base=lead["branch"],
                 cmd="sh -c 'echo child > child.txt'")  # fmt: skip
    grand = _new(cl, repo, "grand", parent=child["id"], cmd="sh -c 'echo g > g.txt'")
    for s in (lead, child, grand):
        _idle(cl, s["id"])
    tip = git(repo, "rev-parse", lead["branch"]).strip()
    with pytest.raises(PAError) as e:
        cl.merge([child["id"]])  # its base is the lead's branch: the default target
    assert f"cannot be merged into {lead['branch']}" in e.value.message
    assert f"its parent, session {lead['id']}" in e.value.message
    assert "--into" in (e.value.hint or "")
    # a grandchild may not skip its parent either: the lead is above it
    with pytest.raises(PAError) as e:
        cl.merge([grand["id"]], into=lead["branch"])
    assert "a session above it" in e.value.message
    # what the lead's worktree has checked out is guarded too
    git(Path(lead["worktree"]), "checkout", "-q", "-b", "lead-work")
    r = pa("merge", child["id"], "--into", "lead-work")
    assert r.returncode != 0 and "is working on that branch" in r.stderr and "hint:" in r.stderr
    assert git(repo, "rev-parse", lead["branch"]).strip() == tip
    assert not (Path(lead["worktree"]) / "child.txt").exists()
    res = cl.merge([child["id"]], into="main")
    assert res["merged"] and git(repo, "show", "main:child.txt") == "child\n"


def test_views_show_parent_and_children(tmp_path: Path, cl: Client) -> None:
    """issue 18: `pa ls` lists a child under its parent marked ↳ (`--json`: `parent`),
    `pa ls --children-of ID` only the children, `pa show` the parent and the children."""
    repo = make_repo(tmp_path / "repo")
    lead = _new(cl, repo, "the lead")
    other = _new(cl, repo, "unrelated")
    a = _new(cl, repo, "child a", parent=lead["id"])
    b = _new(cl, repo, "child b", parent=lead["id"])
    rows = [ln for ln in pa("ls", "--all", check=True).stdout.splitlines() if "$" not in ln]
    order = [next(s["id"] for s in (lead, other, a, b) if s["id"] in ln)
             for ln in rows if any(s["id"] in ln for s in (lead, other, a, b))]  # fmt: skip
    assert order.index(a["id"]) == order.index(lead["id"]) + 1
    assert order.index(b["id"]) == order.index(lead["id"]) + 2
    assert "↳ child a" in next(ln for ln in rows if a["id"] in ln)
    assert "↳" not in next(ln for ln in rows if other["id"] in ln)
    listed = json.loads(pa("ls", "--all", "--json", check=True).stdout)
    assert {s["id"]: s["parent"] for s in listed}[b["id"]] == lead["id"]
    kids = json.loads(pa("ls", "--all", "--json", "--children-of", lead["id"]).stdout)
    assert sorted(s["id"] for s in kids) == sorted([a["id"], b["id"]])
    shown = json.loads(pa("show", lead["id"], "--json", check=True).stdout)
    assert [c["id"] for c in shown["children"]] == [a["id"], b["id"]]
    assert {c["title"] for c in shown["children"]} == {"child a", "child b"}
    text = pa("show", a["id"], check=True).stdout
    assert f"parent: {lead['id']}" in text
    text = pa("show", lead["id"], check=True).stdout
    assert f"child: {b['id']}" in text


def test_attempts_as_children_need_room_for_all(tmp_path: Path, pa_home: Path) -> None:
    """issue 18: `pa new --attempts N --parent ID` makes N children of ID; when fewer than
    N places are left under mcp.max_children nothing is made (no group, no session)."""
    _config(pa_home, "[mcp]\nmax_children = 3\n")
    repo = make_repo(tmp_path / "repo")
    lead = json.loads(pa("new", "lead", "--cmd", "true", "--json", cwd=repo, check=True).stdout)
    r = pa("new", "try", "--cmd", "true", "--attempts", "2", "--parent", lead["id"], "--json",
           cwd=repo)  # fmt: skip
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)["sessions"]
    assert [s["parent"] for s in made] == [lead["id"]] * 2
    cl = Client.in_process()
    groups = len(cl.groups())
    r = pa("new", "more", "--cmd", "true", "--attempts", "2", "--parent", lead["id"], cwd=repo)
    assert r.returncode != 0 and "2 more would make 4: mcp.max_children = 3" in r.stderr
    assert len(cl.sessions(all=True)) == 3 and len(cl.groups()) == groups

