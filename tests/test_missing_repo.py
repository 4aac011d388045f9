"""Issue 20 §2: a missing repository is an error message, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import make_repo, pa
from tests.foundation.test_cli_sessions import new_json, no_traceback, script, wait_ok


def two_repos(tmp_path: Path) -> tuple[Path, str, Path, list[str]]:
    """Repo `gone` with one session; repo `kept` with two sessions that conflict."""
    gone = make_repo(tmp_path / "gone", {"a.txt": "base\n"})
    kept = make_repo(tmp_path / "kept", {"shared.txt": "line\n"})
    agent = script(tmp_path, "import os\nopen('a.txt', 'w').write(os.environ['PA_PROMPT'])\n")
    g = str(new_json("x", "--cmd", agent, cwd=gone)["id"])
    ids = []
    for i in range(2):
        body = f"open('shared.txt', 'w').write('line by {i}\\n')\n"
        ids.append(
            str(new_json(f"k{i}", "--cmd", script(tmp_path, body, f"k{i}.py"), cwd=kept)["id"])
        )
    assert wait_ok(g, *ids).returncode == 0
    return gone, g, kept, ids


def test_conflicts_skips_and_flags_a_missing_repo_and_covers_the_others(tmp_path: Path) -> None:
    """issue 20 §2: `pa conflicts` with one repo deleted still forecasts the other repos and
    flags the missing one (no FileNotFoundError)."""
    gone, g, _kept, ids = two_repos(tmp_path)
    shutil.rmtree(gone)
    p = pa("conflicts", "--json")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    fc = json.loads(p.stdout)
    assert [sorted([x["a"], x["b"]]) for x in fc["pairs"]] == [sorted(ids)]
    assert fc["sessions"][g]["skipped"] and fc["sessions"][g]["clean_with_base"] is None
    [sk] = fc["skipped"]
    assert sk["repo"] == "gone" and sk["sessions"] == [g] and "pa repo move gone" in sk["hint"]
    human = pa("conflicts")
    no_traceback(human)
    assert human.returncode == 0
    assert "SKIPPED" in human.stdout and "warning: repo gone" in human.stderr
    assert "shared.txt" in human.stdout


def test_diff_of_a_session_whose_repo_is_gone_is_an_error_message(tmp_path: Path) -> None:
    """issue 20 §2: `pa diff ID` (text, --stat, --json, --turn) of a session whose repo was
    deleted prints error: + hint:, not a traceback."""
    gone, g, _kept, _ids = two_repos(tmp_path)
    shutil.rmtree(gone)
    for extra in ([], ["--stat"], ["--json"], ["--turn", "1"]):
        p = pa("diff", g, *extra)
        no_traceback(p)
        assert p.returncode == 1, (extra, p.stdout, p.stderr)
        assert "error:" in p.stderr and "is missing" in p.stderr and "hint:" in p.stderr


def test_send_is_refused_up_front_when_the_repo_is_gone_or_moved(tmp_path: Path) -> None:
    """issue 20 §2: `pa send` to a session whose repo was deleted or moved is refused before
    anything runs (no turn is queued, no agent runs in a broken worktree)."""
    gone, g, kept, ids = two_repos(tmp_path)
    kept.rename(tmp_path / "kept-moved")
    p = pa("send", ids[0], "more")
    no_traceback(p)
    assert p.returncode == 1 and "error:" in p.stderr and "pa repo move kept" in p.stderr
    shutil.rmtree(gone)
    p = pa("send", g, "more")
    no_traceback(p)
    assert p.returncode == 1 and "is missing" in p.stderr and "hint:" in p.stderr
    for sid in (g, ids[0]):
        s = json.loads(pa("show", sid, "--json").stdout)
        assert s["status"] == "idle" and len(s["turns"]) == 1
    r = pa("rollback", g, "--turn", "1")
    no_traceback(r)
    assert r.returncode == 1 and "is missing" in r.stderr


def test_send_is_refused_when_the_worktree_lost_its_link(tmp_path: Path) -> None:
    """issue 20 §2: a repo moved and a new repo put in its place: the old worktree's .git
    points nowhere; `pa send` refuses and names the way out."""
    repo = make_repo(tmp_path / "proj")
    s = new_json("x", "--cmd", "true", cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    repo.rename(tmp_path / "proj-moved")
    make_repo(tmp_path / "proj")  # a different repository at the registered path
    p = pa("send", sid, "more")
    no_traceback(p)
    assert p.returncode == 1 and "lost its link" in p.stderr and "pa repo move proj" in p.stderr


def test_merge_and_new_on_a_missing_repo_are_error_messages(tmp_path: Path) -> None:
    """issue 20 §2: `pa merge ID` and `pa new --repo NAME` on a deleted repo say so."""
    gone, g, _kept, _ids = two_repos(tmp_path)
    shutil.rmtree(gone)
    p = pa("merge", g)
    no_traceback(p)
    assert p.returncode == 1 and "is missing" in p.stderr and "pa repo move gone" in p.stderr
    p = pa("new", "--repo", "gone", "--cmd", "true", "x")
    no_traceback(p)
    assert p.returncode == 1 and "is missing" in p.stderr and "pa repo move gone" in p.stderr
    names = {s["repo_name"] for s in json.loads(pa("ls", "--json").stdout)}
    assert names == {"gone", "kept"}


def test_repo_rm_of_a_deleted_repo_unregisters_it(tmp_path: Path) -> None:
    """issue 20 §2: `pa repo rm NAME` (what doctor suggests for a deleted repo) works when
    the folder is gone instead of crashing in the warm-pool cleanup."""
    repo = make_repo(tmp_path / "proj")
    assert pa("repo", "add", str(repo)).returncode == 0
    shutil.rmtree(repo)
    p = pa("repo", "rm", "proj")
    no_traceback(p)
    assert p.returncode == 0, p.stderr
    assert json.loads(pa("repo", "ls", "--json").stdout) == []
