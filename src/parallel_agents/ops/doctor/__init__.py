"""`pa doctor`: find, and with ``repair`` fix, what a crash or a kill -9 can leave behind.

Checks, in order:

* the database (``PRAGMA integrity_check``) and a stale ``server.json``;
* per repository, under the per-repo lock (so no ``pa new`` is in its git metadata step
  meanwhile): stale git lock files left by killed git processes, registrations of
  worktrees whose folder is gone, worktrees and folders under the worktree root (or on
  ``pa/*`` branches) that no session owns, session worktrees git no longer knows,
  ``pa/*`` branches without a session, leftovers in the warm pool;
* sessions stuck in ``starting`` with no live process, ``running`` sessions whose
  process is gone, turns that ended without a checkpoint;
* checkouts (the main one or linked worktrees) a ``pa merge`` left behind their branch:
  stopped after it moved the branch and before it updated their index and files.

Nothing that may hold work is deleted before it is archived: a dirty orphan worktree is
snapshotted (untracked files included) and a commit no other branch, tag or archive
reaches is kept, under ``refs/pa/archive/orphan-<name>``. Worktrees outside the
worktree root on non-``pa/`` branches are the user's own and only reported. A worktree
or branch that a known session of another registration owns (by worktree path or by
branch, e.g. a moved repository registered a second time) is never touched: it is
reported with the ``pa repo move`` that fixes the registration.

Each family of checks is a private module of this package (``_database``, ``_server``,
``_worktrees``, ``_sessions``, ``_checkpoints``, ``_merge``, ``_processes``); ``check`` runs
them in the order above.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from parallel_agents.errors import PAError
from parallel_agents.ops.doctor._checkpoints import _check_checkpoints
from parallel_agents.ops.doctor._database import (
    _check_database,
    _check_state_without_rows,
    check_unopenable,
    database_finding,
)
from parallel_agents.ops.doctor._merge import _check_merge_checkouts
from parallel_agents.ops.doctor._pairing import _check_pairings  # issue 16 §5
from parallel_agents.ops.doctor._processes import _check_stray_processes, _Procs
from parallel_agents.ops.doctor._report import Finding, Report
from parallel_agents.ops.doctor._server import _check_server
from parallel_agents.ops.doctor._sessions import _check_discards, _check_sessions
from parallel_agents.ops.doctor._worktrees import _RepoCheck

if TYPE_CHECKING:
    from parallel_agents.sessions.orchestrator import App

__all__ = [
    "Finding",
    "Report",
    "check",
    "check_unopenable",
    "database_finding",
]

LOCK_MIN_AGE = 2.0  # a lock file younger than this may belong to a git still starting


def check(app: App, *, repair: bool = False, grace: float = 60.0) -> Report:
    """Inspect (and with ``repair`` fix) this PA_HOME. ``grace``: seconds a session may
    sit in ``starting`` before it counts as stuck (a ``pa new`` may still be working)."""
    rep = Report(repair=repair)
    if not _check_database(app, rep):
        return rep  # every further check reads the damaged file
    # With sessions missing from pa.db, "orphans" may be their work: keep them all.
    repair_repos = False if _check_state_without_rows(app, rep) else repair
    _check_server(app, rep, repair)
    procs = _Procs()
    for repo in app.store.repos():
        repo_path = Path(repo.path)
        if not (repo_path / ".git").exists():
            rep.add(
                Finding(
                    "repo_missing",
                    repo.path,
                    "the registered repository is gone; its sessions cannot be checked",
                    repo=repo.name,
                    fix=f"if it was moved: pa repo move {repo.name} NEWPATH; else pa repo rm "
                    f"{repo.name} (after discarding its sessions)",
                )
            )
            continue
        try:
            _RepoCheck(app, repo, rep, repair_repos, procs, min(grace, LOCK_MIN_AGE)).run()
        except PAError as e:
            rep.add(Finding("repo_error", repo.path, e.message, repo=repo.name))
    _check_discards(app, rep, repair)
    _check_sessions(app, rep, repair, grace)
    _check_checkpoints(app, rep, repair)
    _check_merge_checkouts(app, rep, repair)
    _check_pairings(app, rep, repair)
    _check_stray_processes(app, rep, repair)
    if repair:
        for _ in range(20):  # the supervisor decides about dead or finished processes
            if not app.sup.tick().pending:
                break
        for f in rep.findings:
            if f.kind == "dead_running":
                st = app.store.session(f.subject).status
                f.repaired = not st.active
                if not f.repaired:
                    f.error = f"still {st.value} after the supervisor's pass"
    return rep

