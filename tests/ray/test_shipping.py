"""Issue 19: how code travels to a Ray node. A follow-up ships only what the node lacks;
with ``runtime.ray.repo_url`` the node fetches the repository from that URL and the
bundle carries only the session's commits; a bundle that cannot be applied fails the turn
with git's message and leaves the local worktree, branch and refs as they were."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo, pa
from tests.ray.test_ray_cluster import _turn_state


def _show(sid: str, repo: Path, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        pa("show", sid, "--json", cwd=repo, env=env, check=True).stdout
    )
    return out


def test_a_follow_up_ships_a_thin_bundle_or_nothing(cluster: Any, tmp_path: Path) -> None:
    """issue 19: the first turn ships the whole branch (`full`); a follow-up after a local
    commit on the session's branch ships only that commit (`thin`, `branch ^<what the
    node has>`) and the agent on the node sees it; a follow-up with nothing new locally
    ships nothing (`none`, 0 bytes). The checkpoint coming home is thin too."""
    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n", "big.txt": os.urandom(30_000).hex() + "\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "thin", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'ls > seen.txt'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    first = _turn_state(sid, 1)["shipped"]
    assert first["kind"] == "full" and first["commits"] == 1 and first["bytes"] > 0, first
    wt = Path(_show(sid, repo, env)["worktree"])
    # The user commits on the session's branch between turns.
    (wt / "local.txt").write_text("made here\n")
    git(wt, "add", "local.txt")
    git(wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "local")
    pa("send", sid, "again", cwd=repo, env=env, check=True, timeout=180)
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    second = _turn_state(sid, 2)
    assert second["node"] == _turn_state(sid, 1)["node"]
    shipped = second["shipped"]
    # The local commit and a snapshot of the worktree (seen.txt is uncommitted): not main's.
    assert shipped["kind"] == "thin" and shipped["commits"] == 2, shipped
    assert shipped["snapshot"], shipped
    assert 0 < shipped["bytes"] < first["bytes"], (shipped, first)
    assert "local.txt" in (wt / "seen.txt").read_text()  # the node had the local commit
    # Home comes only the turn's checkpoint, not the branch it started from (big.txt).
    assert 0 < second["home"]["bytes"] < first["bytes"] // 4, (second, first)
    assert git(wt, "log", "-1", "--format=%s").strip() == "local"  # and it stayed home
    pa("send", sid, "once more", cwd=repo, env=env, check=True, timeout=180)
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    third = _turn_state(sid, 3)["shipped"]
    assert third["kind"] == "none" and third["bytes"] == 0, third
    assert _show(sid, repo, env)["status"] == "idle"


def test_repo_url_nodes_fetch_from_it_and_the_bundle_carries_only_the_sessions_commits(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: with `runtime.ray.repo_url` (PA_RAY_REPO_URL) at a bare repository that
    holds main, the node fetches main from there: the first turn's bundle is thin and
    carries only the session's own commit (none of main's); the session works end to
    end."""
    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    git(repo, "commit", "-q", "--allow-empty", "-m", "second on main")
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    # A commit the remote lacks: the session's branch starts from it.
    (repo / "new.txt").write_text("not pushed\n")
    git(repo, "add", "new.txt")
    git(repo, "commit", "-q", "-m", "not pushed")
    env = {"PA_RAY_ADDRESS": c.address, "PA_RAY_REPO_URL": bare.as_uri()}
    s = json.loads(pa(
        "new", "from the remote", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'cat a.txt new.txt > both.txt'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    shown = _show(sid, repo, env)
    assert shown["status"] == "idle", shown
    shipped = _turn_state(sid)["shipped"]
    assert shipped["kind"] == "thin" and shipped["commits"] == 1, shipped
    assert shipped["repo_url"] == bare.as_uri()
    assert (Path(shown["worktree"]) / "both.txt").read_text() == "one\nnot pushed\n"


def test_an_unreachable_repo_url_fails_the_turn_with_gits_message(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: a `runtime.ray.repo_url` nobody can fetch from: the turn fails with
    git's own message and a hint naming the setting; the local branch and worktree are
    as they were (nothing half-made)."""
    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    missing = (tmp_path / "no-such-remote.git").as_uri()
    env = {"PA_RAY_ADDRESS": c.address, "PA_RAY_REPO_URL": missing}
    p = pa("new", "nowhere", "--runtime", "ray", "--json", "--cmd", "sh -c 'echo x > x.txt'",
           cwd=repo, env=env, timeout=180)  # fmt: skip
    sid = json.loads(p.stdout)["id"] if p.returncode == 0 else None
    if sid is not None:
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, timeout=180)
        shown = _show(sid, repo, env)
        assert shown["status"] == "failed", shown
        told = json.dumps(shown) + pa("logs", sid, cwd=repo, env=env).stdout
        wt = Path(shown["worktree"])
        assert not (wt / "x.txt").exists()
        assert git(wt, "status", "--porcelain") == ""
    else:
        told = p.stdout + p.stderr
    assert "runtime.ray.repo_url" in told, told
    assert "does not appear to be a git repository" in told, told  # git's own words
    assert not list(Path(os.environ["PA_HOME"]).glob("**/turns/*/ray.json"))  # no actor
    assert git(repo, "rev-parse", "main").strip() == git(repo, "rev-parse", "HEAD").strip()


def test_a_checkpoint_that_cannot_be_fetched_home_fails_the_turn_and_changes_nothing(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: a real git failure bringing the node's work home (a stale lock on the
    local `refs/pa/ray-out/<sid>` ref): the turn fails with git's message in `pa show`
    and `pa logs`; the local worktree, branch and refs are exactly as before the turn."""
    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "first", "--runtime", "ray", "--json",
        "--cmd", "sh -c 'echo \"$PA_PROMPT\" >> b.txt'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    shown = _show(sid, repo, env)
    wt = Path(shown["worktree"])
    ref = f"refs/pa/ray-out/{sid}"
    before = {
        "ref": git(repo, "rev-parse", ref).strip(),
        "head": git(wt, "rev-parse", "HEAD").strip(),
        "status": git(wt, "status", "--porcelain"),
        "b": (wt / "b.txt").read_text(),
    }
    lock = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    lock = (repo / lock if not lock.is_absolute() else lock) / f"{ref}.lock"
    lock.write_text("")  # a crashed git left it behind
    try:
        pa("send", sid, "second", cwd=repo, env=env, check=True, timeout=180)
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, timeout=180)
        shown = _show(sid, repo, env)
        told = json.dumps(shown) + pa("logs", sid, cwd=repo, env=env).stdout
        assert shown["status"] == "failed", shown
        assert "could not bring the node's work home" in told, told
        assert ".lock" in told and "File exists" in told, told  # git's own words
        assert git(repo, "rev-parse", ref).strip() == before["ref"]
        assert git(wt, "rev-parse", "HEAD").strip() == before["head"]
        assert git(wt, "status", "--porcelain") == before["status"]
        assert (wt / "b.txt").read_text() == before["b"] == "first\n"
    finally:
        lock.unlink(missing_ok=True)


def test_a_bundle_the_node_cannot_apply_fails_the_turn_and_a_retry_recovers(
    cluster: Any, tmp_path: Path
) -> None:
    """issue 19: a real git failure on the node (a stale `index.lock` in the session's
    worktree there) when a follow-up must move it: the turn fails with git's message in
    `pa show`, the local worktree and branch are untouched; once the lock is gone the next
    `pa send` ships again and the node sees the local commit."""
    c, _ = cluster
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    env = {"PA_RAY_ADDRESS": c.address}
    s = json.loads(pa(
        "new", "first", "--runtime", "ray", "--json", "--cmd", "sh -c 'ls > seen.txt'",
        cwd=repo, env=env, check=True, timeout=180,
    ).stdout)  # fmt: skip
    sid = s["id"]
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    wt = Path(_show(sid, repo, env)["worktree"])
    (wt / "local.txt").write_text("made here\n")
    git(wt, "add", "local.txt")
    git(wt, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "local")
    head = git(wt, "rev-parse", "HEAD").strip()
    # The node's worktree of this session (the cluster's nodes share this machine's /tmp).
    from parallel_agents.runtime.ray_runtime import namespace_for

    base = Path(os.environ.get("PA_RAY_NODE_DIR") or tempfile.gettempdir())
    node_wt = base / f"pa-ray-{namespace_for(Path(os.environ['PA_HOME']))}" / "worktrees" / sid
    gitdir = Path((node_wt / ".git").read_text().split(":", 1)[1].strip())
    lock = gitdir / "index.lock"
    lock.write_text("")
    try:
        pa("send", sid, "again", cwd=repo, env=env, timeout=180)
        pa("wait", sid, "--timeout", "120", cwd=repo, env=env, timeout=180)
        shown = _show(sid, repo, env)
        assert shown["status"] == "failed", shown
        assert "index.lock" in shown["error"] and "File exists" in shown["error"], shown
        assert git(wt, "rev-parse", "HEAD").strip() == head
        assert git(wt, "status", "--porcelain") == "?? seen.txt\n"
    finally:
        lock.unlink(missing_ok=True)
    pa("send", sid, "retry", cwd=repo, env=env, check=True, timeout=180)
    pa("wait", sid, "--timeout", "120", cwd=repo, env=env, check=True, timeout=180)
    assert _show(sid, repo, env)["status"] == "idle"
    assert "local.txt" in (wt / "seen.txt").read_text()
    assert git(wt, "rev-parse", "HEAD").strip() == head


def test_a_bad_repo_url_setting_is_refused(tmp_path: Path) -> None:
    """issue 19: `runtime.ray.repo_url` must be a string; anything else is named in the
    error with a hint, by every command."""
    cfg = tmp_path / "config.toml"
    cfg.write_text("[runtime.ray]\nrepo_url = 5\n")
    r = pa("ls", env={"PA_CONFIG": str(cfg)})
    assert r.returncode != 0
    assert "error: runtime.ray.repo_url must be a string (got 5)" in r.stderr
    assert "hint:" in r.stderr
