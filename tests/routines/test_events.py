"""issue 17: routines started by git events (--on-push, --on-pr) and the turn-timeout and
auto-merge policies: in-process, with the clock passed to ``routine_runner.drive``, real
git repositories, ``--cmd`` agents and a stand-in ``gh`` on PATH (GitHub cannot be
reached from here) that checks its argv and answers recorded JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from parallel_agents.errors import PAError, UsageError
from parallel_agents.models import Status
from parallel_agents.sessions import routine_events, routine_runner, routines
from parallel_agents.sessions.orchestrator import App
from tests.conftest import git
from tests.reliability.helpers import wait_until
from tests.workspaces.test_from_pr import gh_calls, stand_in_gh

PR_LIST = " ".join(routine_events.PR_LIST)


def _commit(repo: Path, msg: str) -> str:
    git(repo, "commit", "-q", "--allow-empty", "-m", msg)
    return git(repo, "rev-parse", "HEAD").strip()


def _prompt(app: App, sid: str | None) -> str:
    return app.store.turns(sid or "")[0].prompt


def test_on_push_runs_once_for_the_newest_new_commit(app: App, repo: Path) -> None:
    """issue 17: --on-push main: no run for the commit main had at add; two commits pushed
    between passes give one run for the newest, with {commit}; a pass again gives nothing;
    a claim cut short by a crash is never run a second time (UNIQUE per event)."""
    routines.add(app, "ci", "look at {commit}", repo="r", cmd=["true"], on_push=["main"],
                 overlap="allow", now=1000.0)  # fmt: skip
    r = app.store.routine("ci")
    assert r.next_due is None  # no due times: only events
    assert routine_runner.drive(app, now=1001.0) == []
    _commit(repo, "one")
    two = _commit(repo, "two")
    made = routine_runner.drive(app, now=1002.0)
    assert [(m.n, m.reason) for m in made] == [(1, f"push main {two[:8]}")]
    assert _prompt(app, made[0].session_id) == f"look at {two}"
    assert routine_runner.drive(app, now=1003.0) == []
    # A crash just after the claim of the next commit (before its session was made): the
    # passes after it make no second run for that commit, and the claim is settled.
    three = _commit(repo, "three")
    claim = app.store.claim_event("ci", r.id, "push:main", f"{r.id}:push:main:{three}", three,
                                  "push", 1004.0)  # fmt: skip
    assert claim is not None
    app.close()
    app2 = App.open()
    try:
        assert routine_runner.drive(app2, now=1005.0) == []
        late = claim.created_at + routine_runner.ADOPT_AFTER + 1
        assert routine_runner.drive(app2, now=late) == []
        runs = app2.store.routine_runs("ci")
        assert [(x.n, x.state) for x in runs] == [(2, "failed"), (1, "started")]
        view = routines.show(app2, "ci")
        assert view["triggers"] == ["on push main"]
        assert view["events"][0]["seen"] == three and view["trigger_error"] is None
    finally:
        app2.close()


def test_on_push_bad_input_and_a_deleted_branch(app: App, repo: Path) -> None:
    """issue 17: --on-push of a missing branch, a branch named twice and a bad --timeout are
    clear errors at add (nothing stored); a watched branch deleted later is a trigger error
    shown by `show`, not a crash, and clears when the branch is back."""
    bad: list[dict[str, object]] = [
        {"on_push": ["nope"]},
        {"on_push": ["main", "main"]},
        {"on_push": ["-x"]},
        {"on_push": ["main"], "timeout": "soon"},
    ]
    for kw in bad:
        with pytest.raises(UsageError):
            routines.add(app, "x", "p", repo="r", cmd=["true"], **kw)  # type: ignore[arg-type]
    assert app.store.routines() == []
    git(repo, "branch", "-q", "feature")
    routines.add(app, "f", "p", repo="r", cmd=["true"], on_push=["feature"], now=1000.0)
    git(repo, "branch", "-q", "-D", "feature")
    assert routine_runner.drive(app, now=1001.0) == []
    view = routines.show(app, "f")
    assert "branch 'feature' is gone" in (view["trigger_error"] or "")
    git(repo, "branch", "-q", "feature")
    assert routine_runner.drive(app, now=1002.0) == []  # the same commit: nothing new
    assert routines.show(app, "f")["trigger_error"] is None


def _prs(*numbers: int) -> dict[str, dict[str, object]]:
    prs = [{"number": n, "title": f"PR {n}", "headRefName": f"b{n}",
            "url": f"https://github.com/example/repo/pull/{n}"} for n in numbers]  # fmt: skip
    return {PR_LIST: {"stdout": json.dumps(prs)}}


def _answer(env: dict[str, str], answers: dict[str, dict[str, object]]) -> None:
    (Path(env["PATH"].split(":")[0]) / "answers.json").write_text(json.dumps(answers))


def test_on_pr_runs_each_new_pull_request_once(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 17: --on-pr asks `gh pr list` (exact argv) at add and every routines.pr_poll
    seconds; PRs open at add are not run, each new one runs once with {pr_number}, also
    across a restart; gh logged out is a trigger error in `show`, then clears."""
    env = stand_in_gh(tmp_path, _prs(3, 5))
    monkeypatch.setenv("PATH", env["PATH"])
    routines.add(app, "triage", "triage #{pr_number}", repo="r", cmd=["true"], on_pr=True,
                 overlap="allow", now=1000.0)  # fmt: skip
    assert gh_calls(env) == [routine_events.PR_LIST]
    _answer(env, _prs(3, 5, 6, 7))
    made = routine_runner.drive(app, now=1001.0)
    assert [(m.n, m.reason) for m in made] == [(1, "pr #6 PR 6"), (2, "pr #7 PR 7")]
    assert [_prompt(app, m.session_id) for m in made] == ["triage #6", "triage #7"]
    assert routine_runner.drive(app, now=1030.0) == []  # within pr_poll: gh is not asked
    assert len(gh_calls(env)) == 2
    assert routine_runner.drive(app, now=1062.0) == []  # asked again: nothing new
    assert len(gh_calls(env)) == 3
    # Restarted between the claim of #8 and its session: #8 is not run a second time.
    r = app.store.routine("triage")
    assert app.store.claim_event("triage", r.id, "pr", f"{r.id}:pr:8", "7", "pr", 1070.0)
    app.close()
    app = App.open()
    _answer(env, _prs(3, 5, 6, 7, 8))
    assert routine_runner.drive(app, now=1130.0) == []
    assert [x.n for x in app.store.routine_runs("triage")] == [3, 2, 1]
    # gh logged out: no run, the error is shown, the pass carries on.
    logged_out = "To get started with GitHub CLI, please run:  gh auth login\n"
    _answer(env, {PR_LIST: {"stderr": logged_out, "code": 4}})
    assert routine_runner.drive(app, now=1200.0) == []
    assert "not logged in" in (routines.show(app, "triage")["trigger_error"] or "")
    _answer(env, _prs(9))
    made = routine_runner.drive(app, now=1300.0)
    assert [m.reason for m in made] == ["pr #9 PR 9"]
    view = routines.show(app, "triage")
    assert view["trigger_error"] is None and view["triggers"] == ["on new pull request"]
    app.close()


def test_on_pr_needs_gh_at_add(app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 17: --on-pr without gh on PATH, or with gh logged out, is an error at add."""
    only_git = tmp_path / "only-git"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "git")
    monkeypatch.setenv("PATH", str(only_git))
    with pytest.raises(PAError, match=r"gh\) is not installed"):
        routines.add(app, "t", "p", repo="r", cmd=["true"], on_pr=True)
    env = stand_in_gh(tmp_path, {PR_LIST: {"stderr": "run gh auth login", "code": 4}})
    monkeypatch.setenv("PATH", env["PATH"])
    with pytest.raises(PAError, match="not logged in"):
        routines.add(app, "t", "p", repo="r", cmd=["true"], on_pr=True)
    assert app.store.routines() == []


def _settled(app: App, sid: str | None) -> Status:
    def done() -> Status | None:
        app.refresh()
        s = app.store.session(sid or "")
        return None if s.status.active else s.status

    return wait_until(done, timeout=30, what=f"session {sid} to end")


def test_timeout_stops_a_runs_turn(app: App) -> None:
    """issue 17: --timeout 1s: the run's turn is stopped by the supervisor after it (and
    ends failed, "timed out"), as a plan task's timeout is."""
    routines.add(app, "slow", "p", repo="r", cmd=["sleep", "60"], every=["1m"], timeout="1s")
    assert app.store.routine("slow").policies["timeout"] == 1.0
    run = routines.run_now(app, "slow")
    assert _settled(app, run["session"]) == Status.FAILED
    assert app.store.session(run["session"]).error == "timed out after 1 s and was stopped"


def test_auto_merge_through_the_merge_queue(app: App, repo: Path) -> None:
    """issue 17: --auto-merge needs the repo's check (refused at add without one); a done
    run whose check passes on the merged result is merged through the merge queue, one
    whose check fails is left for a person with the reason in its history, tried once
    per turn."""
    with pytest.raises(UsageError, match="needs a check"):
        routines.add(app, "m", "p", repo="r", cmd=["true"], every=["1m"], auto_merge=True)
    (repo / ".parallel-agents.toml").write_text('check = "test ! -f bad.txt"\n')
    git(repo, "add", ".parallel-agents.toml")
    git(repo, "commit", "-qm", "a check")
    for name in ("good", "bad"):
        routines.add(app, name, "p", repo="r", cmd=["sh", "-c", f"echo x > {name}.txt"],
                     every=["1m"], auto_merge=True, now=1000.0)  # fmt: skip
    runs = {n: routines.run_now(app, n) for n in ("good", "bad")}
    for x in runs.values():
        assert _settled(app, x["session"]) == Status.IDLE
    routine_runner.drive(app, now=1001.0)
    assert app.store.session(runs["good"]["session"]).status == Status.MERGED
    assert (repo / "good.txt").exists() and not (repo / "bad.txt").exists()
    good = routines.history(app, "good")[0]["merge"]
    assert good["status"] == "merged" and good["commit"]
    bad = routines.history(app, "bad")[0]["merge"]
    assert bad == {"status": "left", "why": "the repo's check failed on the merged result"}
    assert app.store.session(runs["bad"]["session"]).status == Status.IDLE
    head = git(repo, "rev-parse", "HEAD")
    routine_runner.drive(app, now=1002.0)  # the same turn: not tried again
    assert git(repo, "rev-parse", "HEAD") == head
    assert routines.history(app, "bad")[0]["merge"] == bad


def test_paused_events_are_not_run_and_overlap_queue_waits(app: App, repo: Path) -> None:
    """issue 17: a commit pushed while the routine is paused is not run on resume (like
    due times passed while paused); with overlap=queue a push while the previous run still
    works waits, and runs (for the newest commit) once that run has ended."""
    routines.add(app, "ci", "at {commit}", repo="r", cmd=["sleep", "60"], on_push=["main"],
                 overlap="queue", timeout="1s", now=1000.0)  # fmt: skip
    routines.pause(app, "ci")
    _commit(repo, "while paused")
    assert routine_runner.drive(app, now=1001.0) == []
    routines.resume(app, "ci", now=1002.0)
    assert routine_runner.drive(app, now=1003.0) == []
    first = _commit(repo, "first")
    [run] = routine_runner.drive(app, now=1004.0)
    assert _prompt(app, run.session_id) == f"at {first}"
    second = _commit(repo, "second")
    assert routine_runner.drive(app, now=1005.0) == []  # the first run still works: waits
    _settled(app, run.session_id)  # stopped by its 1 s timeout
    [nxt] = routine_runner.drive(app, now=1006.0)
    assert (nxt.n, nxt.reason) == (2, f"push main {second[:8]}")


def test_routine_cli_shows_event_triggers(repo: Path) -> None:
    """issue 17: `pa routine add --on-push/--timeout` (errors with a hint at add, for a
    missing branch and --auto-merge without a check), `ls` and `show` describe the event
    trigger and the policies, and --json carries what it has seen."""
    from tests.conftest import pa

    head = git(repo, "rev-parse", "HEAD").strip()
    for args in (["--on-push", "nope"], ["--on-push", "main", "--auto-merge"]):
        p = pa("routine", "add", "n", "--prompt", "x", "--cmd", "true", *args, cwd=repo)
        assert p.returncode != 0 and "error:" in p.stderr and "hint:" in p.stderr, p.stderr
    out = json.loads(pa("routine", "add", "ci", "--prompt", "at {commit}", "--cmd", "true",
                        "--on-push", "main", "--timeout", "30m", "--json", cwd=repo,
                        check=True).stdout)  # fmt: skip
    assert out["triggers"] == ["on push main"] and out["next_due"] is None
    assert out["policies"]["timeout"] == 1800.0
    assert out["events"] == [
        {"trigger": "on push main", "seen": head, "error": None, "checked_at": None}
    ]
    assert "on push main" in pa("routine", "ls", check=True).stdout
    shown = pa("routine", "show", "ci", check=True).stdout
    assert f"on push main: seen {head}" in shown and "timeout 1800s" in shown


@pytest.mark.skipif(shutil.which("gh") is None, reason="gh is not installed (scripts/test does)")
def test_on_pr_with_the_real_gh_logged_out(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 17: the real gh with an empty config: --on-pr is refused at add, saying to
    run `gh auth login` (GitHub itself is never reached)."""
    monkeypatch.setenv("GH_CONFIG_DIR", str(tmp_path / "gh-config"))
    for var in ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_TOKEN", "GITHUB_ENTERPRISE_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(PAError, match="not logged in") as e:
        routines.add(app, "t", "p", repo="r", cmd=["true"], on_pr=True)
    assert e.value.hint and e.value.hint.startswith("run `gh auth login`")
    assert app.store.routines() == []


def test_max_unreviewed_holds_back_push_runs_too(app: App, repo: Path) -> None:
    """issue 17: --max-unreviewed applies to event runs as to due times: with one run
    waiting unread, the next push is recorded as skipped with the reason; once that run
    is read, the push after it runs."""
    routines.add(app, "ci", "look at {commit}", repo="r", cmd=["true"], on_push=["main"],
                 overlap="allow", max_unreviewed=1, now=1000.0)  # fmt: skip
    _commit(repo, "one")
    first = routine_runner.drive(app, now=1001.0)
    assert [m.state for m in first] == ["started"]
    _commit(repo, "two")
    assert routine_runner.drive(app, now=1002.0) == []
    skipped = app.store.routine_runs("ci")[0]
    assert skipped.state == "skipped" and "--max-unreviewed 1" in (skipped.error or "")
    app.mark_read(first[0].session_id or "")
    _commit(repo, "three")
    assert [m.state for m in routine_runner.drive(app, now=1003.0)] == ["started"]
