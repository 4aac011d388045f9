"""Sessions: an interrupted `pa discard`, sessions stuck in ``starting`` (their worktree
finished or removed), and ``running`` sessions whose agent process is gone.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents import git
from parallel_agents.errors import PAError
from parallel_agents.git import pool
from parallel_agents.models import Session, Status
from parallel_agents.ops.doctor._files import _mtime, _read, _real, _unlink
from parallel_agents.ops.doctor._report import Finding, Report

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App


def _check_discards(app: App, rep: Report, repair: bool) -> None:
    """A `pa discard` killed after its archive was complete (its ``discarding`` intent is
    recorded) but before the session was marked discarded: finish it from the archive."""
    for s in app.store.sessions():
        intent = s.options.get("discarding")
        if not intent or s.status == Status.DISCARDED:
            continue
        ref = intent.get("ref")
        repo_path = Path(app.store.repo(s.repo_id).path)
        f = rep.add(
            Finding(
                "discard_incomplete",
                s.id,
                f"`pa discard {s.id}` was interrupted; its archive {ref} is complete",
                repo=s.repo_name,
                fix=f"finish the discard (then `pa restore {s.id}` brings it all back)",
            )
        )
        if ref and git.rev_parse(repo_path, ref) != intent.get("commit"):
            f.detail = f"`pa discard {s.id}` was interrupted and its archive {ref} is missing"
            f.fix = None
            continue
        if repair:
            try:
                app.finish_discard(app.store.session(s.id))
                f.repaired = True
            except PAError as e:
                f.error = e.message


def _check_sessions(app: App, rep: Report, repair: bool, grace: float) -> None:
    now = time.time()
    for s in app.store.sessions(statuses=[Status.STARTING, Status.RUNNING, Status.NEEDS_INPUT]):
        if s.interactive:
            continue
        if s.status == Status.STARTING:
            if now - s.updated_at < grace:
                continue
            _stuck_starting(app, rep, repair, s)
        else:
            _maybe_dead(app, rep, s)


def _launch_file(app: App, s: Session, n: int) -> Path | None:
    """The turn's launch.json when a wrapper was started for it (or was about to be)."""
    return app.sup.turn_files(s.id, n).launch()


def _stuck_starting(app: App, rep: Report, repair: bool, s: Session) -> None:
    turns = app.store.turns(s.id)
    last = turns[-1] if turns else None
    launch = _launch_file(app, s, last.n) if last is not None else None
    if last is not None and launch is not None and last.status == "pending":
        # The agent was (or may have been) started: never start it a second time. Hand it
        # to the supervisor, which reads its output and sees whether it finished, runs on
        # or died (then the session is marked interrupted, not silently re-run).
        f = rep.add(
            Finding(
                "stuck_starting",
                s.id,
                f"turn {last.n} was launched but the session never left starting",
                repo=s.repo_name,
                fix="mark it running so the supervisor reads its output and decides",
            )
        )
        if repair:
            with app.store.tx() as db:
                app.store.update_turn(db, s.id, last.n, status="running", started_at=_mtime(launch))
                app.store.set_status(s.id, Status.RUNNING, db=db, error=None)
            f.repaired = True
        return
    repo = app.store.repo(s.repo_id)
    health = _session_worktree(Path(repo.path), s)
    if last is not None:
        f = rep.add(
            Finding(
                "stuck_starting",
                s.id,
                f"stuck in starting with no agent process ({health or 'worktree ok'})",
                repo=s.repo_name,
                fix="queue it again" if health in (None, "fixable") else "mark it failed",
            )
        )
        if not repair:
            return
        if health == "fixable":
            health = _complete_worktree(Path(repo.path), s, pristine=False)
        if health is None:
            files = app.sup.turn_files(s.id, last.n)
            if files.dir.exists():  # an aborted launch: keep it for reference, out of the way
                os.rename(files.dir, files.dir.with_name(f"{last.n}.aborted-{int(time.time())}"))
            app.store.set_status(s.id, Status.QUEUED, error=None)
        else:
            app.store.set_status(
                s.id,
                Status.FAILED,
                error=f"the session could not start: its worktree is {health}; pa discard {s.id}",
            )
        f.repaired = True
        return
    # No turn stored: `pa new` died while creating the worktree, before the prompt was saved.
    f = rep.add(
        Finding(
            "stuck_starting",
            s.id,
            f"pa new was interrupted while creating the worktree ({health or 'worktree complete'})",
            repo=s.repo_name,
            fix="finish or remove the worktree and mark the session failed",
        )
    )
    if not repair:
        return
    if health == "fixable":
        health = _complete_worktree(Path(repo.path), s, pristine=True)
    if health is None:
        msg = (
            "pa new was interrupted before the prompt was saved; the worktree is ready: "
            f"continue with `pa send {s.id} PROMPT`, or `pa discard {s.id}`"
        )
    else:
        _remove_leftovers(Path(repo.path), s, app)
        msg = "pa new was interrupted while creating the worktree; start again with pa new"
    app.store.set_status(s.id, Status.FAILED, error=msg)
    f.repaired = True


def _session_worktree(repo_path: Path, s: Session) -> str | None:
    """None when the session's worktree is complete; "fixable"; or what is wrong."""
    wt = Path(s.worktree)
    if not wt.is_dir():
        return "missing"
    adm = pool.admin_dir(wt)
    if adm is None or not adm.is_dir():
        return "not a git worktree"
    gitdir = _read(adm / "gitdir")
    if gitdir is None or _real(str(Path(gitdir).parent)) != _real(str(wt)):
        return "fixable"
    head = _read(adm / "HEAD") or ""
    if head != f"ref: refs/heads/{s.branch}":
        return (
            "fixable"
            if head in (s.base_commit, f"ref: refs/heads/{s.branch}")
            else (f"on an unexpected HEAD ({head[:60]})")
        )
    if not (adm / "index").exists() or not git.ref_exists(repo_path, f"refs/heads/{s.branch}"):
        return "fixable"
    return None


def _complete_worktree(repo_path: Path, s: Session, *, pristine: bool) -> str | None:
    """Finish an interrupted creation or pool take; None when the worktree is complete."""
    wt = Path(s.worktree)
    adm = pool.admin_dir(wt)
    assert adm is not None
    try:
        git.run(["worktree", "repair", str(wt)], repo_path)
        ref = f"refs/heads/{s.branch}"
        if not git.ref_exists(repo_path, ref):
            git.run(["update-ref", ref, s.base_commit, pool.ZERO_OID], repo_path)
        if (_read(adm / "HEAD") or "") != f"ref: {ref}":
            git.run(["symbolic-ref", "HEAD", ref], wt)
        if not (adm / "index").exists():
            if not pristine:
                return "without an index (its checkout never finished)"
            # Nothing ran here yet (no turn was ever stored): finish the checkout.
            _unlink(adm / "index.lock")
            git.run(["reset", "--hard", "--quiet"], wt)
    except (PAError, OSError) as e:
        return f"broken ({e})"
    return _session_worktree(repo_path, s)


def _remove_leftovers(repo_path: Path, s: Session, app: App) -> None:
    """A never-started session's partial worktree and branch: archive if needed, remove."""
    wt = Path(s.worktree)
    if wt.exists():
        with contextlib.suppress(PAError, OSError):
            pool.archive_dirty(repo_path, wt, f"orphan-{s.id}")
        trash = app.settings.worktree_root / s.repo_name / pool.POOL_DIR / pool.TRASH_DIR
        with contextlib.suppress(PAError, OSError):
            pool.unregister(repo_path, wt, trash)
            pool.empty_trash(trash)
    if "branch" in (s.options.get("from") or {}):
        return  # the user's own branch (pa new --from-branch, issue 16 §4) is never deleted
    head = git.rev_parse(repo_path, f"refs/heads/{s.branch}")
    if head == s.base_commit:  # the branch holds nothing but the base: nothing to keep
        git.run(["update-ref", "-d", f"refs/heads/{s.branch}", head], repo_path, check=False)


def _maybe_dead(app: App, rep: Report, s: Session) -> None:
    turn = app.store.last_turn(s.id)
    if turn is None or turn.status != "running":
        return
    files = app.sup.turn_files(s.id, turn.n)
    if files.exit_info() is not None:
        return  # finished; the supervisor will read it on its next tick
    from parallel_agents.runtime import local

    wpid = files.wrapper_pid()
    if wpid is not None and local.alive(wpid):
        return
    launch = files.launch()
    if wpid is None and launch is not None and time.time() - _mtime(launch) < 30:
        return
    rep.add(
        Finding(
            "dead_running",
            s.id,
            f"{s.status.value}, but the agent process of turn {turn.n} is gone",
            repo=s.repo_name,
            fix="let the supervisor read what is left and mark it interrupted",
        )
    )
